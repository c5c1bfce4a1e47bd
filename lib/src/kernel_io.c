/*
 * kernel_io.c - record I/O on the directions kTLS owns: data, control
 * records (alerts, post-handshake messages), TLS 1.3 KeyUpdate both ways,
 * and the AES-GCM record limit.
 *
 * TX in the kernel, RX in OpenSSL (kernel_install.c): OpenSSL writes into
 * a sink; alerts it produces are re-sent through the kernel and a KeyUpdate
 * the peer asks for is answered by us (kernel_sink_msg).
 *
 * TLS 1.3 KeyUpdate with kernel RX: the kernel hands the KeyUpdate up as a
 * handshake record and (>= 6.14) pauses RX until a new TLS_RX key is set;
 * older kernels refuse a second TLS_RX with EBUSY, which ends the
 * connection with a reason.  Our own KeyUpdate is sent as a handshake
 * record under the old key, then TLS_TX is set again (tls.rst).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kernel.h"
#include "proto.h"

#define HS_MAX (70 * 1024) /* post-handshake message reassembly cap */

/* ---- control records ---------------------------------------------------------- */

/* One record of the given type through kTLS TX: bytes sent or -1/errno. */
static ssize_t send_ctrl(int fd, unsigned char type, const void *data, size_t len, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { (void *)data, len };
	struct msghdr m;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&cb, 0, sizeof(cb));
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.buf;
	m.msg_controllen = sizeof(cb.buf);
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = type;
	do
		n = kernel_ops.sendmsg(fd, &m, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Upper bound of the records one send of n bytes makes. */
static uint64_t records_for(size_t n)
{
	return n / REC_MAX_PLAINTEXT + 1;
}

void kernel_tx_account(struct kernel_state *ks, size_t n)
{
	if (ks)
		ks->tx_records += records_for(n);
}

int kernel_tx_needs_checks(const struct kernel_state *ks, size_t n, unsigned sends)
{
	if (!ks)
		return 0;
	if (ks->update_owed || ks->tx_dead)
		return 1;
	/* Margin: kernel_write must still find room for its KeyUpdate or close_notify. */
	return ks->p.cipher->record_limit &&
	       ks->tx_records + n / REC_MAX_PLAINTEXT + sends + 2 >= kernel_gcm_record_limit;
}

int kernel_errno_code(int e)
{
	switch (e) {
	case EPIPE:
	case ECONNRESET:
		return KTLS_ERR_PEER_CLOSED;
	case ENOMEM:
	case ENOBUFS:
		return KTLS_ERR_RESOURCE;
	default:
		return KTLS_ERR_SYSTEM;
	}
}

int kernel_send_alert(struct ktls_conn *c, int level, int desc)
{
	unsigned char a[2] = { (unsigned char)level, (unsigned char)desc };
	const char *name = proto_alert_name(desc);
	ssize_t n;

	n = send_ctrl(c->fd, REC_ALERT, a, sizeof(a), 0);
	if (n == (ssize_t)sizeof(a)) {
		kernel_tx_account(c->kernel, sizeof(a));
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return conn_would_block(c, KTLS_WANT_WRITE, "sending an alert");
	return conn_fail(c, n < 0 ? kernel_errno_code(errno) : KTLS_ERR_SYSTEM,
			 "sending alert %s through kTLS failed: %s",
			 name ? name : "unknown", n < 0 ? strerror(errno) : "short write");
}

/* An alert not asked for by the caller: best effort, the connection is failing or closing. */
static void forward_alert(struct kernel_state *k, int level, int desc)
{
	unsigned char a[2] = { (unsigned char)level, (unsigned char)desc };

	if (send_ctrl(k->fd, REC_ALERT, a, sizeof(a), MSG_DONTWAIT) == 2)
		kernel_tx_account(k, sizeof(a));
}

void kernel_sink_msg(void *arg, int write_p, int content_type, const unsigned char *p, size_t len)
{
	struct kernel_state *k = arg;

	if (content_type == SSL3_RT_HANDSHAKE && !write_p && len >= 5 && p[0] == SSL3_MT_KEY_UPDATE &&
	    p[4] == SSL_KEY_UPDATE_REQUESTED)
		k->update_owed = 1;
	if (content_type == SSL3_RT_ALERT && write_p && len >= 2)
		forward_alert(k, p[0], p[1]);
}

/* ---- rekey -------------------------------------------------------------------- */

static atomic_int rekey_cache = -1; /* real kernel only */

int kernel_probe_rekey(char *err, size_t errlen)
{
	int real = kernel_ops.setsockopt == kernel_ops_default.setsockopt;
	enum probe_rekey_step step;
	int ret, e;

	if (real && (ret = atomic_load(&rekey_cache)) >= 0) {
		if (!ret)
			buf_seterr(err, errlen, "a second TLS_TX was refused (EBUSY)");
		return ret;
	}
	e = probe_rekey(KTLS_PROBE_AES_128_GCM, kernel_ops.setsockopt, &step);
	switch (step) {
	case PROBE_REKEY_PAIR:
		buf_seterr(err, errlen, "loopback test socket: %s", strerror(e));
		return -1;
	case PROBE_REKEY_ULP:
		buf_seterr(err, errlen, "TCP_ULP \"tls\" failed: %s", strerror(e));
		return 0;
	case PROBE_REKEY_KEY:
		buf_seterr(err, errlen, "TLS_TX failed: %s", strerror(e));
		return 0;
	default:
		break;
	}
	if (e)
		buf_seterr(err, errlen, "a second TLS_TX was refused: %s", strerror(e));
	ret = !e;
	if (real)
		atomic_store(&rekey_cache, ret);
	return ret;
}

/* A fatal TX error: remembered with its KTLS_ERR_* code, and reported. */
static int tx_fail(struct ktls_conn *c, struct kernel_state *k, int code, const char *fmt, ...)
	KTLS_PRINTF(4, 5);
static int tx_fail(struct ktls_conn *c, struct kernel_state *k, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vseterr(k->tx_err, sizeof(k->tx_err), fmt, ap);
	va_end(ap);
	k->tx_dead = 1;
	k->tx_code = code;
	return conn_fail(c, code, "%s", k->tx_err);
}

/*
 * Send a KeyUpdate through kTLS and switch the kernel's TX key.  0, or
 * KTLS_WANT_WRITE (nothing changed), or -1: before anything was sent when
 * the kernel cannot rekey (connection still usable), after it when the
 * kernel refused the new key (TX is then dead).
 */
static int tx_update(struct ktls_conn *c, struct kernel_state *k, int request)
{
	unsigned char msg[5] = { SSL3_MT_KEY_UPDATE, 0, 0, 1, request ? 1 : 0 };
	unsigned char next[KEYS_MAX_SECRET];
	union tls_crypto info;
	char why[160];
	ssize_t n;
	int r = -1;

	if (k->p.version != TLS1_3_VERSION)
		return conn_fail(c, KTLS_ERR_INVALID, "key update: TLS 1.2 has no KeyUpdate");
	if (k->rekey_ok != 1) {
		int ok = kernel_probe_rekey(why, sizeof(why));
		if (ok == 0)
			return conn_fail(c, KTLS_ERR_KERNEL, "key update: this kernel cannot rekey "
					 "kTLS (needs Linux >= 6.14): %s", why);
		if (ok < 0)
			return conn_fail(c, KTLS_ERR_SYSTEM, "key update: cannot tell whether the "
					 "kernel can rekey kTLS: %s", why);
		k->rekey_ok = 1;
	}
	memcpy(next, k->tx_secret, k->secret_len);
	if (keys_next_secret(k->p.md, next, k->secret_len) ||
	    keys_info_tls13(&k->p, next, k->secret_len, 0, &info)) {
		r = conn_fail(c, KTLS_ERR_INTERNAL, "key update: deriving the next traffic key failed");
		goto out;
	}
	n = send_ctrl(c->fd, REC_HANDSHAKE, msg, sizeof(msg), 0);
	if (n != (ssize_t)sizeof(msg)) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			r = KTLS_WANT_WRITE;
		else
			r = conn_fail(c, n < 0 ? kernel_errno_code(errno) : KTLS_ERR_SYSTEM,
				      "key update: sending KeyUpdate failed: %s",
				      n < 0 ? strerror(errno) : "short write");
		goto out;
	}
	if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_TX, &info, (socklen_t)k->p.cipher->info_len)) {
		r = tx_fail(c, k, KTLS_ERR_KERNEL, "key update: KeyUpdate sent but the kernel refused the new TX "
			    "key: %s", strerror(errno));
		goto out;
	}
	memcpy(k->tx_secret, next, k->secret_len);
	k->tx_records = 0;
	k->update_owed = 0;
	r = 0;
out:
	secure_zero(next, sizeof(next));
	secure_zero(&info, sizeof(info));
	return r;
}

/*
 * Before sending: answer a KeyUpdate the peer asked for, and keep an
 * AES-GCM key under its record limit.  *len is capped so this send stays
 * under it.  0, KTLS_WANT_WRITE or -1.
 */
static int tx_prepare(struct ktls_conn *c, struct kernel_state *k, size_t *len)
{
	uint64_t limit = kernel_gcm_record_limit, left;
	int r;

	if (k->tx_dead)
		return conn_fail(c, k->tx_code, "%s", k->tx_err);
	if (k->update_owed) {
		r = tx_update(c, k, 0);
		if (r == KTLS_WANT_WRITE)
			return r;
		if (r != 0)
			return tx_fail(c, k, c->err_code, "peer asked for a KeyUpdate we cannot give: %s",
				       c->err);
	}
	if (!k->p.cipher->record_limit)
		return 0;
	if (k->tx_records + 1 >= limit) {
		if (k->p.version == TLS1_3_VERSION) {
			r = tx_update(c, k, 0);
			if (r == KTLS_WANT_WRITE || r == 0 || k->tx_dead)
				return r;
		}
		/* No rekey: close cleanly rather than wear the key out. */
		kernel_send_alert(c, ALERT_WARNING, AD_CLOSE_NOTIFY);
		c->we_closed = 1;
		return tx_fail(c, k, KTLS_ERR_KEY_LIMIT,
			       "AES-GCM key reached its limit of %llu records and %s; the "
			       "connection was closed with close_notify",
			       (unsigned long long)limit,
			       k->p.version == TLS1_2_VERSION ? "TLS 1.2 cannot rekey"
							      : "this kernel cannot rekey kTLS");
	}
	left = limit - 1 - k->tx_records; /* records this send may still make */
	if (records_for(*len) > left)
		*len = (size_t)((left - 1) * REC_MAX_PLAINTEXT + (REC_MAX_PLAINTEXT - 1));
	return 0;
}

static int tx_errno(struct ktls_conn *c, int e, const char *what)
{
	if (e == EAGAIN || e == EWOULDBLOCK)
		return conn_would_block(c, KTLS_WANT_WRITE, what);
	if (e == EPIPE || e == ECONNRESET)
		return conn_fail(c, KTLS_ERR_PEER_CLOSED, "%s: peer closed the connection (%s)", what,
				 strerror(e));
	return conn_fail(c, kernel_errno_code(e), "%s through kTLS failed: %s", what, strerror(e));
}

ssize_t kernel_write(struct ktls_conn *c, const void *buf, size_t len, int more)
{
	struct kernel_state *k = c->kernel;
	const unsigned char *p = buf;
	size_t done = 0;

	while (done < len) {
		size_t chunk = len - done;
		struct iovec iov;
		struct msghdr m;
		ssize_t n;
		int r = tx_prepare(c, k, &chunk);

		if (r != 0)
			return done ? (ssize_t)done : r;
		iov.iov_base = (void *)(p + done);
		iov.iov_len = chunk;
		memset(&m, 0, sizeof(m));
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		/* No MSG_WAITALL: kTLS TX refuses it (EOPNOTSUPP). */
		n = kernel_ops.sendmsg(c->fd, &m, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			return done ? (ssize_t)done : tx_errno(c, e, "write");
		}
		kernel_tx_account(k, (size_t)n);
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * sendfile(2) has no MSG_NOSIGNAL, and a kTLS socket whose peer is gone
 * raises SIGPIPE like any socket.  Around the call the signal is blocked
 * in this thread and one the call raised is consumed; one already pending
 * stays for the application.  (Four syscalls per call: fine for bulk.)
 */
struct pipe_guard {
	sigset_t old;
	int was_pending;
};

static void pipe_guard_enter(struct pipe_guard *g)
{
	sigset_t pipe_set, pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

static void pipe_guard_leave(struct pipe_guard *g)
{
	int saved = errno;
	sigset_t pipe_set, pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved;
}

static ssize_t sendfile_loop(struct ktls_conn *c, int in_fd, off_t *offset, size_t count)
{
	struct kernel_state *k = c->kernel;
	size_t done = 0;

	while (done < count) {
		size_t chunk = count - done;
		ssize_t n;
		int r = tx_prepare(c, k, &chunk);

		if (r != 0)
			return done ? (ssize_t)done : r;
		n = kernel_ops.sendfile(c->fd, in_fd, offset, chunk);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			return done ? (ssize_t)done : tx_errno(c, e, "sendfile");
		}
		if (n == 0)
			break; /* end of file */
		kernel_tx_account(k, (size_t)n);
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t kernel_sendfile(struct ktls_conn *c, int in_fd, off_t *offset, size_t count)
{
	struct pipe_guard g;
	ssize_t n;

	pipe_guard_enter(&g);
	n = sendfile_loop(c, in_fd, offset, count);
	pipe_guard_leave(&g);
	return n;
}

/* ---- kTLS reads ------------------------------------------------------------------ */

/*
 * A fatal read error: remembered with its KTLS_ERR_* code, reported, and
 * the alert (-1 none) sent if we can.
 */
static int rx_fail(struct ktls_conn *c, struct kernel_state *k, int code, int alert,
		   const char *fmt, ...) KTLS_PRINTF(5, 6);
static int rx_fail(struct ktls_conn *c, struct kernel_state *k, int code, int alert,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vseterr(k->rx_err, sizeof(k->rx_err), fmt, ap);
	va_end(ap);
	k->rx_dead = 1;
	k->rx_code = code;
	if (alert >= 0 && !k->tx_dead && !c->we_closed) {
		forward_alert(k, ALERT_FATAL, alert);
		c->we_closed = 1; /* a fatal alert ends our side too */
	}
	return conn_fail(c, code, "%s", k->rx_err);
}

/* The peer's KeyUpdate: next RX secret, new TLS_RX key; our answer owed if asked. */
static int rx_update(struct ktls_conn *c, struct kernel_state *k, int requested)
{
	unsigned char next[KEYS_MAX_SECRET];
	union tls_crypto info;
	int r = 0, e;

	memcpy(next, k->rx_secret, k->secret_len);
	if (keys_next_secret(k->p.md, next, k->secret_len) ||
	    keys_info_tls13(&k->p, next, k->secret_len, 0, &info)) {
		r = rx_fail(c, k, KTLS_ERR_INTERNAL, AD_INTERNAL_ERROR,
			    "peer sent KeyUpdate; deriving the next key failed");
		goto out;
	}
	if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_RX, &info, (socklen_t)k->p.cipher->info_len)) {
		e = errno;
		if (e == EBUSY) {
			k->rekey_ok = 0;
			r = rx_fail(c, k, KTLS_ERR_KERNEL, AD_INTERNAL_ERROR, "peer sent KeyUpdate but this kernel "
				    "cannot rekey kTLS (needs Linux >= 6.14)");
		} else {
			r = rx_fail(c, k, KTLS_ERR_KERNEL, AD_INTERNAL_ERROR, "peer sent KeyUpdate; the kernel refused "
				    "the new RX key: %s", strerror(e));
		}
		goto out;
	}
	k->rekey_ok = 1;
	memcpy(k->rx_secret, next, k->secret_len);
	/*
	 * Ours goes out before our next data record (RFC 8446 4.6.3), as
	 * OpenSSL does it: a reader that never writes again never sends one.
	 */
	if (requested)
		k->update_owed = 1;
out:
	secure_zero(next, sizeof(next));
	secure_zero(&info, sizeof(info));
	return r;
}

/* Handle the complete handshake messages in k->hs.  0 or -1. */
static int rx_handshake(struct ktls_conn *c, struct kernel_state *k)
{
	while (k->hs_len >= 4) {
		unsigned char *h = k->hs;
		size_t mlen = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
		int tls13 = k->p.version == TLS1_3_VERSION;

		if (mlen + 4 > HS_MAX)
			return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_UNEXPECTED_MESSAGE, "post-handshake message of %zu "
				       "bytes is too large", mlen);
		if (k->hs_len < mlen + 4)
			return 0; /* the rest comes in the next record */
		if (tls13 && h[0] == SSL3_MT_NEWSESSION_TICKET && !k->server) {
			/* For ktls_conn_session; one OpenSSL would not take is dropped. */
			session_take_ticket(c, k, h, mlen + 4);
		} else if (tls13 && h[0] == SSL3_MT_KEY_UPDATE) {
			/* the alerts OpenSSL sends for the same faults */
			if (mlen == 0)
				return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_DECODE_ERROR, "empty KeyUpdate");
			if (mlen != 1 || h[4] > 1)
				return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_ILLEGAL_PARAMETER,
					       "malformed KeyUpdate (%zu bytes, request_update %d)", mlen, h[4]);
			if (k->hs_len != 5)
				return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_UNEXPECTED_MESSAGE,
					       "KeyUpdate was not the last message of its record");
			k->hs_len = 0;
			return rx_update(c, k, h[4]);
		} else if (!tls13 && (k->server ? h[0] == SSL3_MT_CLIENT_HELLO
						: h[0] == SSL3_MT_HELLO_REQUEST)) {
			/*
			 * No renegotiation (policy): say so, keep the connection,
			 * as OpenSSL does with SSL_OP_NO_RENEGOTIATION.
			 */
			forward_alert(k, ALERT_WARNING, AD_NO_RENEGOTIATION);
		} else {
			return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_UNEXPECTED_MESSAGE, "unexpected post-handshake "
				       "message (handshake type %d)", h[0]);
		}
		memmove(k->hs, k->hs + mlen + 4, k->hs_len - mlen - 4);
		k->hs_len -= mlen + 4;
	}
	return 0;
}

/* Append to the reassembly buffer: 0, or the KTLS_ERR_* of why not. */
static int hs_append(struct kernel_state *k, const void *p, size_t n)
{
	if (k->hs_len + n > k->hs_cap) {
		size_t cap = k->hs_cap ? k->hs_cap : 1024;
		unsigned char *nb;

		while (cap < k->hs_len + n)
			cap *= 2;
		if (cap > HS_MAX + REC_MAX_PLAINTEXT)
			return KTLS_ERR_PROTOCOL;
		nb = malloc(cap);
		if (!nb)
			return KTLS_ERR_RESOURCE;
		if (k->hs) {
			memcpy(nb, k->hs, k->hs_len);
			secure_zero(k->hs, k->hs_cap);
			free(k->hs);
		}
		k->hs = nb;
		k->hs_cap = cap;
	}
	memcpy(k->hs + k->hs_len, p, n);
	k->hs_len += n;
	return 0;
}

static int rx_alert(struct ktls_conn *c, struct kernel_state *k)
{
	int level = k->alert[0], desc = k->alert[1];
	const char *name = proto_alert_name(desc);

	k->alert_len = 0;
	if (desc == AD_CLOSE_NOTIFY) {
		c->peer_closed = 1;
		return 0;
	}
	if (desc == AD_USER_CANCELED)
		return 1; /* a close_notify follows */
	if (level == ALERT_WARNING && k->p.version == TLS1_2_VERSION) {
		/* We never renegotiate, so a refusal is a protocol error (as in OpenSSL). */
		if (desc == AD_NO_RENEGOTIATION)
			return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_HANDSHAKE_FAILURE,
				       "peer sent no_renegotiation, but nobody asked to renegotiate");
		return 1; /* other TLS 1.2 warnings do not end it */
	}
	/* The code says who refused; the number is kept for ktls_conn_peer_alert. */
	c->peer_alert = desc;
	return rx_fail(c, k, desc == AD_UNKNOWN_PSK_IDENTITY ? KTLS_ERR_PSK_UNKNOWN : KTLS_ERR_PEER_ALERT,
		       -1, "peer sent alert %s (%d, level %d)", name ? name : "unknown alert",
		       desc, level);
}

/* One recvmsg with the record-type cmsg: bytes, type in *type (0 = none). */
static ssize_t recv_record(int fd, void *buf, size_t len, unsigned char *type)
{
	union {
		char buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { buf, len };
	struct msghdr m;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.buf;
	m.msg_controllen = sizeof(cb.buf);
	*type = 0;
	n = kernel_ops.recvmsg(fd, &m, 0);
	if (n < 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
			*type = *CMSG_DATA(cm);
	return n;
}

/*
 * A kernel RX failure (tls_err_abort() in net/tls/tls_sw.c, or the
 * strparser's tls_strp_abort_strp()) leaves its errno in sk->sk_err, and
 * TCP refuses every send while sk_err is set (tcp_sendmsg_locked: EPIPE).
 * Reading SO_ERROR clears it; the record layer's TX side is untouched, so
 * the fatal alert the failure calls for can still go out through kTLS.
 */
static void take_sock_error(int fd)
{
	int e = 0;
	socklen_t l = sizeof(e);

	(void)kernel_ops.getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
}

static int rx_errno(struct ktls_conn *c, struct kernel_state *k, int e)
{
	if (e == EBADMSG || e == EMSGSIZE || e == EINVAL)
		take_sock_error(c->fd);
	switch (e) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return conn_would_block(c, KTLS_WANT_READ, "read");
	case EBADMSG:
		return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_BAD_RECORD_MAC,
			       "record failed to decrypt (bad_record_mac)");
	case EMSGSIZE:
		return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_RECORD_OVERFLOW,
			       "record too large or malformed (record_overflow)");
	case EINVAL: /* the kernel checks legacy_record_version; OpenSSL's alert differs by version */
		if (k->p.version == TLS1_3_VERSION)
			return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_DECODE_ERROR,
				       "record has a wrong version (decode_error)");
		return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_PROTOCOL_VERSION,
			       "record has a wrong version (protocol_version)");
	case EKEYEXPIRED:
		return rx_fail(c, k, KTLS_ERR_INTERNAL, -1,
			       "kernel paused RX for a KeyUpdate that was not handled");
	case ECONNRESET:
		return rx_fail(c, k, KTLS_ERR_PEER_CLOSED, -1, "peer reset the connection");
	default:
		return rx_fail(c, k, kernel_errno_code(e), -1, "read through kTLS failed: %s", strerror(e));
	}
}

/*
 * One record the kernel returned: n bytes of type (0 when no cmsg came,
 * which with n == 0 is the end of the stream).  The application data
 * length, KTLS_WANT_READ when the record was ours to handle (a control
 * record, an empty data record), 0 at close_notify, -1 on failure.
 */
static ssize_t rx_record(struct ktls_conn *c, struct kernel_state *k, unsigned char type,
			 void *buf, size_t n)
{
	int r;

	if (n == 0 && type == 0)
		return rx_fail(c, k, KTLS_ERR_PEER_CLOSED, -1,
			       "peer closed the connection without close_notify");
	if (type == 0 || type == REC_DATA) {
		if (k->hs_len || k->alert_len)
			return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_UNEXPECTED_MESSAGE, "application data inside "
				       "a fragmented handshake message or alert");
		return n ? (ssize_t)n : KTLS_WANT_READ;
	}
	if (type == REC_ALERT) {
		size_t take = n < 2 - k->alert_len ? n : 2 - k->alert_len;

		if (n > take)
			return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_DECODE_ERROR,
				       "alert record of %zu bytes", n + k->alert_len);
		memcpy(k->alert + k->alert_len, buf, take);
		k->alert_len += take;
		if (k->alert_len < 2)
			return KTLS_WANT_READ;
		r = rx_alert(c, k);
		return r <= 0 ? r : KTLS_WANT_READ;
	}
	if (type == REC_HANDSHAKE) {
		r = hs_append(k, buf, n);
		secure_zero(buf, n);
		if (r)
			return rx_fail(c, k, r, AD_INTERNAL_ERROR, "post-handshake message too "
				       "large or out of memory");
		return rx_handshake(c, k) ? -1 : KTLS_WANT_READ;
	}
	return rx_fail(c, k, KTLS_ERR_PROTOCOL, AD_UNEXPECTED_MESSAGE,
		       "unexpected record type %d after the handshake", type);
}

int kernel_rx_failed(const struct ktls_conn *c)
{
	return c->kernel && c->kernel->rx_dead;
}

ssize_t kernel_read(struct ktls_conn *c, void *buf, size_t len)
{
	struct kernel_state *k = c->kernel;

	if (k->rx_dead)
		return conn_fail(c, k->rx_code, "%s", k->rx_err);
	if (c->peer_closed || len == 0)
		return 0;
	for (;;) {
		unsigned char type;
		ssize_t n = recv_record(c->fd, buf, len, &type);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rx_errno(c, k, errno);
		}
		n = rx_record(c, k, type, buf, (size_t)n);
		if (n != KTLS_WANT_READ)
			return n;
	}
}

ssize_t kernel_read_done(struct ktls_conn *c, int res, int type, void *buf)
{
	struct kernel_state *k = c->kernel;

	if (k->rx_dead)
		return conn_fail(c, k->rx_code, "%s", k->rx_err);
	if (c->peer_closed)
		return 0;
	if (res == -EINTR)
		return KTLS_WANT_READ;
	if (res < 0)
		return rx_errno(c, k, -res);
	return rx_record(c, k, (unsigned char)type, buf, (size_t)res);
}

KTLS_API int ktls_conn_key_update(ktls_conn *c, int request_peer)
{
	int r;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (!c->handshake_done)
		return conn_fail(c, KTLS_ERR_INVALID, "key update: handshake not complete");
	if (SSL_version(c->ssl) != TLS1_3_VERSION)
		return conn_fail(c, KTLS_ERR_INVALID, "key update: KeyUpdate exists only in TLS 1.3 "
				 "(this connection is %s)", SSL_get_version(c->ssl));
	if (c->we_closed)
		return conn_fail(c, KTLS_ERR_CLOSED, "key update: connection already shut down");
	if (c->tx == KTLS_MODE_USER) {
		ERR_clear_error();
		if (!SSL_key_update(c->ssl, request_peer ? SSL_KEY_UPDATE_REQUESTED
							 : SSL_KEY_UPDATE_NOT_REQUESTED)) {
			char why[128];
			return conn_fail(c, KTLS_ERR_INTERNAL, "key update: %s",
					 ssl_reason(why, sizeof(why)));
		}
		/* Sent now if the socket takes it, else with the next write. */
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
				char why[128];
				return conn_fail(c, KTLS_ERR_INTERNAL, "key update: %s",
					 ssl_reason(why, sizeof(why)));
			}
			ERR_clear_error();
		}
		return 0;
	}
	r = tx_update(c, c->kernel, request_peer);
	return r == 0 ? 0 : r;
}

