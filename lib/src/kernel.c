/*
 * kernel.c - installing keys into kTLS, and record I/O on what the kernel
 * owns.
 *
 * Order of installation: TCP_ULP "tls", then TLS_TX, then TLS_RX.
 *   - ULP or TX refused: nothing is keyed, and a ULP without keys passes
 *     reads and writes straight to TCP, so OpenSSL carries on in userspace.
 *   - TX installed, RX refused (an old kernel without TLS_RX, a cipher the
 *     kernel cannot decrypt, or OpenSSL already holding bytes of the peer's
 *     next records): the socket cannot go back, but reads still reach TCP
 *     untouched, so OpenSSL keeps decrypting RX.  OpenSSL must then never
 *     write: its write BIO is replaced by a sink, alerts it produces are
 *     re-sent through the kernel, and a KeyUpdate the peer asks for is
 *     answered by us through the kernel (keys.c watches for both).
 *   - RX is never in the kernel without TX.
 *
 * TLS 1.3 KeyUpdate with kernel RX: the kernel hands the KeyUpdate up as a
 * handshake record and (>= 6.14) pauses RX until a new TLS_RX key is set;
 * older kernels refuse a second TLS_RX with EBUSY, which ends the
 * connection with a reason.  Our own KeyUpdate is sent as a handshake
 * record under the old key, then TLS_TX is set again (tls.rst).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "keys.h"
#include "kernel.h"
#include "netlink.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

enum { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_DATA = 23 };
enum { AL_CLOSE_NOTIFY = 0, AL_UNEXPECTED_MESSAGE = 10, AL_BAD_RECORD_MAC = 20,
       AL_RECORD_OVERFLOW = 22, AL_PROTOCOL_VERSION = 70, AL_INTERNAL_ERROR = 80,
       AL_USER_CANCELED = 90, AL_NO_RENEGOTIATION = 100 };
#define MAX_PLAINTEXT 16384

/* ---- seams ------------------------------------------------------------------ */

static int sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	return setsockopt(fd, level, opt, val, len);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return sendmsg(fd, msg, flags);
}

static ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
	return recvmsg(fd, msg, flags);
}

static ssize_t sys_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return sendfile(out_fd, in_fd, offset, count);
}

const struct kernel_ops kernel_ops_default = {
	sys_setsockopt, sys_sendmsg, sys_recvmsg, sys_sendfile,
};
struct kernel_ops kernel_ops = {
	sys_setsockopt, sys_sendmsg, sys_recvmsg, sys_sendfile,
};
uint64_t kernel_gcm_record_limit = KTLS_GCM_RECORD_LIMIT;

static const char *vname(int version)
{
	return version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2";
}

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
	return n / MAX_PLAINTEXT + 1;
}

int kernel_send_alert(struct ktls_conn *c, int level, int desc)
{
	unsigned char a[2] = { (unsigned char)level, (unsigned char)desc };
	ssize_t n;

	n = send_ctrl(c->fd, REC_ALERT, a, sizeof(a), 0);
	if (n == (ssize_t)sizeof(a)) {
		if (c->keys)
			c->keys->tx_records++;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return KTLS_WANT_WRITE;
	return conn_seterr(c, "sending alert %s through kTLS failed: %s",
			   SSL_alert_desc_string_long(desc), n < 0 ? strerror(errno) : "short write");
}

void kernel_forward_alert(struct conn_keys *k, int level, int desc)
{
	unsigned char a[2] = { (unsigned char)level, (unsigned char)desc };

	/* Best effort: the connection is failing or closing anyway. */
	if (k->fd >= 0 && send_ctrl(k->fd, REC_ALERT, a, sizeof(a), MSG_DONTWAIT) == 2)
		k->tx_records++;
}

/* ---- rekey -------------------------------------------------------------------- */

static atomic_int rekey_cache = -1; /* real kernel only */

int kernel_probe_rekey(char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct tls12_crypto_info_aes_gcm_128 info;
	int real = kernel_ops.setsockopt == sys_setsockopt;
	int ls = -1, cs = -1, as = -1, ret = -1;

	if (real && (ret = atomic_load(&rekey_cache)) >= 0) {
		if (!ret)
			buf_seterr(err, errlen, "a second TLS_TX was refused (EBUSY)");
		return ret;
	}
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen))
		goto sys;
	cs = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cs < 0 || connect(cs, (struct sockaddr *)&a, sizeof(a)))
		goto sys;
	as = accept(ls, NULL, NULL);
	if (as < 0)
		goto sys;
	if (kernel_ops.setsockopt(cs, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		ret = 0;
		buf_seterr(err, errlen, "TCP_ULP \"tls\" failed: %s", strerror(errno));
		goto out;
	}
	memset(&info, 0, sizeof(info));
	info.info.version = TLS_1_3_VERSION;
	info.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	if (kernel_ops.setsockopt(cs, SOL_TLS, TLS_TX, &info, sizeof(info))) {
		ret = 0;
		buf_seterr(err, errlen, "TLS_TX failed: %s", strerror(errno));
		goto out;
	}
	info.key[0] = 1;
	if (kernel_ops.setsockopt(cs, SOL_TLS, TLS_TX, &info, sizeof(info))) {
		ret = 0;
		buf_seterr(err, errlen, "a second TLS_TX was refused: %s", strerror(errno));
	} else {
		ret = 1;
	}
	if (real)
		atomic_store(&rekey_cache, ret);
	goto out;
sys:
	buf_seterr(err, errlen, "loopback test socket: %s", strerror(errno));
out:
	if (as >= 0)
		close(as);
	if (cs >= 0)
		close(cs);
	if (ls >= 0)
		close(ls);
	return ret;
}

static int tx_fail(struct ktls_conn *c, struct conn_keys *k, const char *fmt, ...)
	KTLS_PRINTF(3, 4);
static int tx_fail(struct ktls_conn *c, struct conn_keys *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vseterr(k->tx_err, sizeof(k->tx_err), fmt, ap);
	va_end(ap);
	k->tx_dead = 1;
	return conn_seterr(c, "%s", k->tx_err);
}

/*
 * Send a KeyUpdate through kTLS and switch the kernel's TX key.  0, or
 * KTLS_WANT_WRITE (nothing changed), or -1: before anything was sent when
 * the kernel cannot rekey (connection still usable), after it when the
 * kernel refused the new key (TX is then dead).
 */
static int tx_update(struct ktls_conn *c, struct conn_keys *k, int request)
{
	unsigned char msg[5] = { SSL3_MT_KEY_UPDATE, 0, 0, 1, request ? 1 : 0 };
	unsigned char next[KEYS_MAX_SECRET];
	union tls_crypto info;
	char why[160];
	ssize_t n;
	int r = -1;

	if (k->p.version != TLS1_3_VERSION)
		return conn_seterr(c, "key update: TLS 1.2 has no KeyUpdate");
	if (k->rekey_ok != 1) {
		int ok = kernel_probe_rekey(why, sizeof(why));
		if (ok == 0)
			return conn_seterr(c, "key update: this kernel cannot rekey kTLS (needs "
					   "Linux >= 6.14): %s", why);
		if (ok < 0)
			return conn_seterr(c, "key update: cannot tell whether the kernel can "
					   "rekey kTLS: %s", why);
		k->rekey_ok = 1;
	}
	memcpy(next, k->tx_secret, k->secret_len);
	if (keys_next_secret(k->p.md, next, k->secret_len) ||
	    keys_info_tls13(&k->p, next, k->secret_len, 0, &info)) {
		r = conn_seterr(c, "key update: deriving the next traffic key failed");
		goto out;
	}
	n = send_ctrl(c->fd, REC_HANDSHAKE, msg, sizeof(msg), 0);
	if (n != (ssize_t)sizeof(msg)) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			r = KTLS_WANT_WRITE;
		else
			r = conn_seterr(c, "key update: sending KeyUpdate failed: %s",
					n < 0 ? strerror(errno) : "short write");
		goto out;
	}
	if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_TX, &info, (socklen_t)k->p.info_len)) {
		r = tx_fail(c, k, "key update: KeyUpdate sent but the kernel refused the new TX "
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
static int tx_prepare(struct ktls_conn *c, struct conn_keys *k, size_t *len)
{
	uint64_t limit = kernel_gcm_record_limit, left;
	int r;

	if (k->tx_dead)
		return conn_seterr(c, "%s", k->tx_err);
	if (k->update_owed) {
		r = tx_update(c, k, 0);
		if (r == KTLS_WANT_WRITE)
			return r;
		if (r != 0)
			return tx_fail(c, k, "peer asked for a KeyUpdate we cannot give: %s", c->err);
	}
	if (!k->p.is_gcm)
		return 0;
	if (k->tx_records + 1 >= limit) {
		if (k->p.version == TLS1_3_VERSION) {
			r = tx_update(c, k, 0);
			if (r == KTLS_WANT_WRITE || r == 0 || k->tx_dead)
				return r;
		}
		/* No rekey: close cleanly rather than wear the key out. */
		kernel_send_alert(c, 1, AL_CLOSE_NOTIFY);
		c->we_closed = 1;
		return tx_fail(c, k, "AES-GCM key reached its limit of %llu records and %s; the "
			       "connection was closed with close_notify",
			       (unsigned long long)limit,
			       k->p.version == TLS1_2_VERSION ? "TLS 1.2 cannot rekey"
							      : "this kernel cannot rekey kTLS");
	}
	left = limit - 1 - k->tx_records; /* records this send may still make */
	if (records_for(*len) > left)
		*len = (size_t)((left - 1) * MAX_PLAINTEXT + (MAX_PLAINTEXT - 1));
	return 0;
}

static int tx_errno(struct ktls_conn *c, int e, const char *what)
{
	if (e == EAGAIN || e == EWOULDBLOCK)
		return KTLS_WANT_WRITE;
	if (e == EPIPE || e == ECONNRESET)
		return conn_seterr(c, "%s: peer closed the connection (%s)", what, strerror(e));
	return conn_seterr(c, "%s through kTLS failed: %s", what, strerror(e));
}

ssize_t kernel_write(struct ktls_conn *c, const void *buf, size_t len)
{
	struct conn_keys *k = c->keys;
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
		n = kernel_ops.sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			return done ? (ssize_t)done : tx_errno(c, e, "write");
		}
		k->tx_records += records_for((size_t)n);
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t kernel_sendfile(struct ktls_conn *c, int in_fd, off_t *offset, size_t count)
{
	struct conn_keys *k = c->keys;
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
		k->tx_records += records_for((size_t)n);
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* ---- kTLS reads ------------------------------------------------------------------ */

/* A fatal read error: remembered, reported, and the alert sent if we can. */
static int rx_fail(struct ktls_conn *c, struct conn_keys *k, int alert, const char *fmt, ...)
	KTLS_PRINTF(4, 5);
static int rx_fail(struct ktls_conn *c, struct conn_keys *k, int alert, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vseterr(k->rx_err, sizeof(k->rx_err), fmt, ap);
	va_end(ap);
	k->rx_dead = 1;
	if (alert >= 0 && k->tx_kernel && !k->tx_dead && !c->we_closed) {
		kernel_forward_alert(k, 2, alert);
		c->we_closed = 1; /* a fatal alert ends our side too */
	}
	return conn_seterr(c, "%s", k->rx_err);
}

/* The peer's KeyUpdate: next RX secret, new TLS_RX key; answer if asked. */
static int rx_update(struct ktls_conn *c, struct conn_keys *k, int requested)
{
	unsigned char next[KEYS_MAX_SECRET];
	union tls_crypto info;
	int r = 0, e;

	memcpy(next, k->rx_secret, k->secret_len);
	if (keys_next_secret(k->p.md, next, k->secret_len) ||
	    keys_info_tls13(&k->p, next, k->secret_len, 0, &info)) {
		r = rx_fail(c, k, AL_INTERNAL_ERROR, "peer sent KeyUpdate; deriving the next key failed");
		goto out;
	}
	if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_RX, &info, (socklen_t)k->p.info_len)) {
		e = errno;
		if (e == EBUSY) {
			k->rekey_ok = 0;
			r = rx_fail(c, k, AL_INTERNAL_ERROR, "peer sent KeyUpdate but this kernel "
				    "cannot rekey kTLS (needs Linux >= 6.14)");
		} else {
			r = rx_fail(c, k, AL_INTERNAL_ERROR, "peer sent KeyUpdate; the kernel refused "
				    "the new RX key: %s", strerror(e));
		}
		goto out;
	}
	k->rekey_ok = 1;
	memcpy(k->rx_secret, next, k->secret_len);
	if (requested) {
		/* Owed before our next data; try now, a full socket retries later. */
		k->update_owed = 1;
		r = tx_update(c, k, 0);
		if (r == KTLS_WANT_WRITE) {
			r = 0;
		} else if (r != 0) {
			r = rx_fail(c, k, -1, "peer asked for a KeyUpdate: %s", c->err);
		}
	}
out:
	secure_zero(next, sizeof(next));
	secure_zero(&info, sizeof(info));
	return r;
}

/* Handle the complete handshake messages in k->hs.  0 or -1. */
static int rx_handshake(struct ktls_conn *c, struct conn_keys *k)
{
	while (k->hs_len >= 4) {
		unsigned char *h = k->hs;
		size_t mlen = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
		int tls13 = k->p.version == TLS1_3_VERSION;

		if (mlen + 4 > KEYS_HS_MAX)
			return rx_fail(c, k, AL_UNEXPECTED_MESSAGE, "post-handshake message of %zu "
				       "bytes is too large", mlen);
		if (k->hs_len < mlen + 4)
			return 0; /* the rest comes in the next record */
		if (tls13 && h[0] == SSL3_MT_NEWSESSION_TICKET && !k->server) {
			/* Session tickets: this library does not resume; consumed quietly. */
		} else if (tls13 && h[0] == SSL3_MT_KEY_UPDATE) {
			if (mlen != 1 || h[4] > 1)
				return rx_fail(c, k, 50 /* decode_error */, "malformed KeyUpdate");
			if (k->hs_len != 5)
				return rx_fail(c, k, AL_UNEXPECTED_MESSAGE,
					       "KeyUpdate was not the last message of its record");
			k->hs_len = 0;
			return rx_update(c, k, h[4]);
		} else if (!tls13 && h[0] == SSL3_MT_HELLO_REQUEST && !k->server) {
			/* No renegotiation (policy): say so, keep the connection. */
			kernel_forward_alert(k, 1, AL_NO_RENEGOTIATION);
		} else {
			return rx_fail(c, k, AL_UNEXPECTED_MESSAGE, "unexpected post-handshake "
				       "message (handshake type %d)", h[0]);
		}
		memmove(k->hs, k->hs + mlen + 4, k->hs_len - mlen - 4);
		k->hs_len -= mlen + 4;
	}
	return 0;
}

static int hs_append(struct conn_keys *k, const void *p, size_t n)
{
	if (k->hs_len + n > k->hs_cap) {
		size_t cap = k->hs_cap ? k->hs_cap : 1024;
		unsigned char *nb;

		while (cap < k->hs_len + n)
			cap *= 2;
		if (cap > KEYS_HS_MAX + MAX_PLAINTEXT)
			return -1;
		nb = malloc(cap);
		if (!nb)
			return -1;
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

static const char *alert_name(int desc)
{
	const char *s = SSL_alert_desc_string_long(desc);
	return s && strcmp(s, "unknown") ? s : "unknown alert";
}

static int rx_alert(struct ktls_conn *c, struct conn_keys *k)
{
	int level = k->alert[0], desc = k->alert[1];

	k->alert_len = 0;
	if (desc == AL_CLOSE_NOTIFY) {
		c->peer_closed = 1;
		return 0;
	}
	if (desc == AL_USER_CANCELED)
		return 1; /* a close_notify follows */
	if (level == 1 && k->p.version == TLS1_2_VERSION)
		return 1; /* TLS 1.2 warnings (e.g. no_renegotiation) do not end it */
	return rx_fail(c, k, -1, "peer sent alert %s (%d, level %d)", alert_name(desc), desc, level);
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

static int rx_errno(struct ktls_conn *c, struct conn_keys *k, int e)
{
	switch (e) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return KTLS_WANT_READ;
	case EBADMSG:
		return rx_fail(c, k, AL_BAD_RECORD_MAC, "record failed to decrypt (bad_record_mac)");
	case EMSGSIZE:
		return rx_fail(c, k, AL_RECORD_OVERFLOW, "record too large or malformed (record_overflow)");
	case EINVAL:
		return rx_fail(c, k, AL_PROTOCOL_VERSION, "record has a wrong version or type "
			       "(protocol_version)");
	case EKEYEXPIRED:
		return rx_fail(c, k, -1, "kernel paused RX for a KeyUpdate that was not handled");
	case ECONNRESET:
		return rx_fail(c, k, -1, "peer reset the connection");
	default:
		return rx_fail(c, k, -1, "read through kTLS failed: %s", strerror(e));
	}
}

ssize_t kernel_read(struct ktls_conn *c, void *buf, size_t len)
{
	struct conn_keys *k = c->keys;

	if (k->rx_dead)
		return conn_seterr(c, "%s", k->rx_err);
	if (c->peer_closed || len == 0)
		return 0;
	for (;;) {
		unsigned char type;
		ssize_t n = recv_record(c->fd, buf, len, &type);
		int r;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rx_errno(c, k, errno);
		}
		if (n == 0 && type == 0)
			return rx_fail(c, k, -1, "peer closed the connection without close_notify");
		if (type == 0 || type == REC_DATA) {
			if (k->hs_len || k->alert_len)
				return rx_fail(c, k, AL_UNEXPECTED_MESSAGE, "application data inside "
					       "a fragmented handshake message or alert");
			if (n == 0)
				continue; /* empty data record */
			return n;
		}
		if (type == REC_ALERT) {
			size_t take = (size_t)n < 2 - k->alert_len ? (size_t)n : 2 - k->alert_len;

			if ((size_t)n > take)
				return rx_fail(c, k, 50, "alert record of %zd bytes", n + k->alert_len);
			memcpy(k->alert + k->alert_len, buf, take);
			k->alert_len += take;
			if (k->alert_len < 2)
				continue;
			r = rx_alert(c, k);
			if (r <= 0)
				return r;
			continue;
		}
		if (type == REC_HANDSHAKE) {
			if (hs_append(k, buf, (size_t)n))
				return rx_fail(c, k, AL_INTERNAL_ERROR, "post-handshake message too "
					       "large or out of memory");
			secure_zero(buf, (size_t)n);
			if (rx_handshake(c, k))
				return -1;
			continue;
		}
		return rx_fail(c, k, AL_UNEXPECTED_MESSAGE, "unexpected record type %d after the "
			       "handshake", type);
	}
}

/* ---- offload ---------------------------------------------------------------------- */

static void fallback(struct ktls_conn *c, const char *fmt, ...) KTLS_PRINTF(2, 3);
static void fallback(struct ktls_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->fallback, sizeof(c->fallback), fmt, ap);
	va_end(ap);
}

static void ulp_reason(struct ktls_conn *c, int e)
{
	switch (e) {
	case ENOENT:
		fallback(c, "kernel has no kTLS: TCP_ULP \"tls\" failed: %s (CONFIG_TLS missing or "
			 "module not loaded)", strerror(e));
		break;
	case ENOPROTOOPT:
		fallback(c, "kernel has no kTLS: TCP_ULP is unknown (%s; Linux < 4.13)", strerror(e));
		break;
	case ENOTCONN:
		fallback(c, "TCP_ULP \"tls\" failed: %s (kTLS needs an established TCP connection)",
			 strerror(e));
		break;
	case EEXIST:
		fallback(c, "TCP_ULP \"tls\" failed: %s (a ULP is already attached, e.g. by "
			 "OpenSSL's own kTLS)", strerror(e));
		break;
	case ENOTSOCK:
	case EOPNOTSUPP:
		fallback(c, "TCP_ULP \"tls\" failed: %s (kTLS needs a TCP socket)", strerror(e));
		break;
	default:
		fallback(c, "TCP_ULP \"tls\" failed: %s", strerror(e));
	}
}

/* Why the kernel refused a TLS_TX/TLS_RX key. */
static const char *key_hint(int e, int rx)
{
	switch (e) {
	case ENOPROTOOPT:
		return rx ? " (kernel has no TLS_RX: Linux < 4.17)" : " (kernel has no TLS_TX)";
	case EINVAL:
		return " (kernel does not know this version/cipher)";
	case ENOENT:
		return " (cipher not in the kernel crypto API: module not loaded?)";
	case EBUSY:
		return " (a key is already installed)";
	default:
		return "";
	}
}

/* Checks that need no socket call; a reason in c->fallback when not. */
static int offload_possible(struct ktls_conn *c, struct conn_keys *k, struct key_params *p)
{
	SSL *ssl = c->ssl;
	SSL_SESSION *sess = SSL_get_session(ssl);
	char why[KTLS_ERRLEN];

	if (keys_params(ssl, p, why, sizeof(why))) {
		fallback(c, "%s", why);
		return 0;
	}
	if (SSL_get_current_compression(ssl)) {
		fallback(c, "TLS compression negotiated: kTLS cannot decompress");
		return 0;
	}
	if (sess && SSL_SESSION_get_max_fragment_length(sess) != TLSEXT_max_fragment_length_DISABLED) {
		fallback(c, "max_fragment_length negotiated (%d bytes): kTLS always sends "
			 "records of up to 16 KiB", 256 << SSL_SESSION_get_max_fragment_length(sess));
		return 0;
	}
	if (BIO_get_ktls_send(SSL_get_wbio(ssl)) || BIO_get_ktls_recv(SSL_get_rbio(ssl))) {
		fallback(c, "OpenSSL's own kTLS is active on this socket (SSL_OP_ENABLE_KTLS)");
		return 0;
	}
	if (SSL_want_write(ssl) || BIO_wpending(SSL_get_wbio(ssl)) > 0) {
		fallback(c, "OpenSSL still holds an unsent record; kTLS TX would reorder it");
		return 0;
	}
	if (p->version == TLS1_3_VERSION && (!k->client_len || k->client_len != k->server_len ||
					     k->client_len != (size_t)EVP_MD_get_size(p->md))) {
		fallback(c, "TLS 1.3 traffic secrets were not captured (keylog callback replaced?)");
		return 0;
	}
	return 1;
}

/* ---- software or NIC: asked of the kernel, never guessed (ktls.h) ------------- */

int kernel_conf_mode(int conf)
{
	switch (conf) {
	case TLS_CONF_HW:
	case TLS_CONF_HW_RECORD:
		return KTLS_MODE_HW;
	case TLS_CONF_SW:
		return KTLS_MODE_SW;
	default:
		return -1; /* not reported, or no key (base) */
	}
}

int kernel_stat_mode(const struct install_stat *before, const struct install_stat *after, int rx)
{
	long long d0 = rx ? before->rx_dev : before->tx_dev, d1 = rx ? after->rx_dev : after->tx_dev;
	long long s0 = rx ? before->rx_sw : before->tx_sw, s1 = rx ? after->rx_sw : after->tx_sw;

	if (d0 < 0 || d1 < 0 || s0 < 0 || s1 < 0)
		return KTLS_MODE_SW;   /* unreadable: the NIC cannot be shown */
	if (d1 == d0)
		return KTLS_MODE_SW;   /* our install bumped one of them: not Device */
	if (s1 == s0)
		return KTLS_MODE_HW;   /* Device moved and Sw did not: ours was the NIC */
	return KTLS_MODE_SW;           /* both moved (a concurrent install): cannot tell */
}

void kernel_stat_snap(struct install_stat *s)
{
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
		{ "TlsTxDevice", offsetof(struct install_stat, tx_dev) },
		{ "TlsTxSw", offsetof(struct install_stat, tx_sw) },
		{ "TlsRxDevice", offsetof(struct install_stat, rx_dev) },
		{ "TlsRxSw", offsetof(struct install_stat, rx_sw) },
	};
	struct ktls_stat_counter *v = NULL;
	size_t n = 0;
	char err[128];

	s->tx_dev = s->tx_sw = s->rx_dev = s->rx_sw = -1;
	if (ktls_stat_read("/proc/net/tls_stat", &v, &n, err, sizeof(err)))
		return;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof(want) / sizeof(want[0]); j++)
			if (!strcmp(v[i].name, want[j].name))
				*(long long *)((char *)s + want[j].off) = (long long)v[i].value;
	free(v);
}

/* After the install: where did each kernel-owned direction land? */
static void place_directions(struct ktls_conn *c, const struct install_stat *before)
{
	struct ktls_sock ts;
	struct install_stat after;
	char err[128];
	int tx = -1, rx = -1;

	memset(&ts, 0, sizeof(ts));
	if (diag_query_fd(c->fd, &ts, err, sizeof(err)) == 1) {
		tx = kernel_conf_mode(ts.txconf);
		rx = kernel_conf_mode(ts.rxconf);
	}
	if ((c->tx != KTLS_MODE_USER && tx < 0) || (c->rx != KTLS_MODE_USER && rx < 0)) {
		kernel_stat_snap(&after);
		if (tx < 0)
			tx = kernel_stat_mode(before, &after, 0);
		if (rx < 0)
			rx = kernel_stat_mode(before, &after, 1);
	}
	if (c->tx != KTLS_MODE_USER)
		c->tx = tx;
	if (c->rx != KTLS_MODE_USER)
		c->rx = rx;
}

static int offload(struct ktls_conn *c, struct conn_keys *k)
{
	struct install_stat before;
	struct key_params p;
	union tls_crypto tx, rx;
	BIO *sink = NULL;
	const unsigned char *txs = NULL, *rxs = NULL;
	size_t pending;
	int rx_ok, e, ret = 0;

	if (!offload_possible(c, k, &p))
		return 0;
	if (p.version == TLS1_3_VERSION) {
		txs = k->server ? k->server_secret : k->client_secret;
		rxs = k->server ? k->client_secret : k->server_secret;
		if (keys_info_tls13(&p, txs, k->client_len, k->seq_tx, &tx) ||
		    keys_info_tls13(&p, rxs, k->client_len, k->seq_rx, &rx)) {
			fallback(c, "deriving the TLS 1.3 traffic keys failed");
			goto out;
		}
	} else if (keys_info_tls12(c->ssl, &p, 1, k->seq_tx, &tx) ||
		   keys_info_tls12(c->ssl, &p, 0, k->seq_rx, &rx)) {
		fallback(c, "deriving the TLS 1.2 key block failed");
		goto out;
	}
	/*
	 * RX may move to the kernel only if OpenSSL holds nothing of the peer's
	 * (read_ahead is off, so it stopped right after Finished).
	 */
	pending = (size_t)SSL_pending(c->ssl);
	rx_ok = !SSL_has_pending(c->ssl);
	/* Allocated first: once TX is in the kernel this must not fail. */
	sink = BIO_new(BIO_s_null());
	if (!sink) {
		fallback(c, "out of memory");
		goto out;
	}

	kernel_stat_snap(&before);
	if (kernel_ops.setsockopt(c->fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		ulp_reason(c, errno);
		goto out;
	}
	if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_TX, &tx, (socklen_t)p.info_len)) {
		e = errno;
		fallback(c, "kernel refused TLS_TX for %s %s: %s%s", vname(p.version), p.name,
			 strerror(e), key_hint(e, 0));
		goto out;
	}
	c->tx = KTLS_MODE_SW;
	k->tx_kernel = 1;
	k->tx_records = k->seq_tx;
	if (c->ctx->zc_sendfile) {
		int one = 1; /* the kernel wants exactly an int */
		/* Refused (Linux < 5.19) only means it stays off. */
		c->zc_tx = !kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_TX_ZEROCOPY_RO, &one,
						  sizeof(one));
	}
	if (!rx_ok) {
		fallback(c, "RX stays in userspace: OpenSSL already holds %zu byte(s) of the peer's "
			 "records; TX is in the kernel", pending);
	} else if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_RX, &rx, (socklen_t)p.info_len)) {
		e = errno;
		fallback(c, "RX stays in userspace: kernel refused TLS_RX for %s %s: %s%s; TX is in "
			 "the kernel", vname(p.version), p.name, strerror(e), key_hint(e, 1));
	} else {
		c->rx = KTLS_MODE_SW;
		k->rx_kernel = 1;
		c->fallback[0] = '\0';
		if (c->ctx->rx_no_pad && p.version == TLS1_3_VERSION) {
			unsigned one = 1;
			/* TLS 1.3 only; refused (Linux < 6.0) means it stays off. */
			c->rx_no_pad = !kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_RX_EXPECT_NO_PAD,
							      &one, sizeof(one));
		}
	}
	place_directions(c, &before);
	/*
	 * Zero-copy acts on device TX only: software kTLS accepts the flag and
	 * ignores it, and sock_diag (so ss) shows it only with TX on the NIC.
	 */
	if (c->tx != KTLS_MODE_HW)
		c->zc_tx = 0;
	if (!k->rx_kernel) {
		/*
		 * TX in the kernel, RX in OpenSSL: OpenSSL must never write to
		 * the socket again (its records would be wrapped as data).
		 */
		BIO *w = SSL_get_wbio(c->ssl);
		if (w != SSL_get_rbio(c->ssl))
			BIO_set_close(w, BIO_NOCLOSE);
		SSL_set0_wbio(c->ssl, sink);
		sink = NULL;
		k->sink_wbio = 1;
	}
	k->p = p;
	k->fd = c->fd;
	if (p.version == TLS1_3_VERSION) {
		/* Kept for KeyUpdate only; zeroized with the connection. */
		k->secret_len = k->client_len;
		memcpy(k->tx_secret, txs, k->secret_len);
		if (k->rx_kernel)
			memcpy(k->rx_secret, rxs, k->secret_len);
	}
out:
	/* Tried once: from here on the callbacks stop keeping secrets. */
	k->offloaded = 1;
	BIO_free(sink);
	secure_zero(&tx, sizeof(tx));
	secure_zero(&rx, sizeof(rx));
	secure_zero(k->client_secret, sizeof(k->client_secret));
	secure_zero(k->server_secret, sizeof(k->server_secret));
	k->client_len = k->server_len = 0;
	return ret;
}

KTLS_API int ktls_conn_offload(ktls_conn *c)
{
	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (!c->handshake_done)
		return conn_seterr(c, "offload: handshake not complete");
	if (c->offload_tried)
		return 0;
	c->offload_tried = 1;
	if (!c->keys) {
		fallback(c, "no key tracking on this connection");
		return 0;
	}
	c->fallback[0] = '\0';
	return offload(c, c->keys);
}

KTLS_API int ktls_conn_key_update(ktls_conn *c, int request_peer)
{
	int r;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (!c->handshake_done)
		return conn_seterr(c, "key update: handshake not complete");
	if (SSL_version(c->ssl) != TLS1_3_VERSION)
		return conn_seterr(c, "key update: KeyUpdate exists only in TLS 1.3 (this "
				   "connection is %s)", SSL_get_version(c->ssl));
	if (c->we_closed)
		return conn_seterr(c, "key update: connection already shut down");
	if (c->tx == KTLS_MODE_USER) {
		ERR_clear_error();
		if (!SSL_key_update(c->ssl, request_peer ? SSL_KEY_UPDATE_REQUESTED
							 : SSL_KEY_UPDATE_NOT_REQUESTED)) {
			char why[128];
			return conn_seterr(c, "key update: %s", ssl_reason(why, sizeof(why)));
		}
		/* Sent now if the socket takes it, else with the next write. */
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
				char why[128];
				return conn_seterr(c, "key update: %s", ssl_reason(why, sizeof(why)));
			}
			ERR_clear_error();
		}
		return 0;
	}
	r = tx_update(c, c->keys, request_peer);
	return r == 0 ? 0 : r;
}
