/*
 * conn.c - connections: handshake, userspace record I/O, and dispatch to
 * kTLS I/O (kernel.c) for directions the kernel owns.
 *
 * Write semantics (userspace direction).  SSL_write has a retry contract:
 * after WANT_WRITE the record is already sealed inside OpenSSL, and the
 * next SSL_write must pass the same bytes again.  Callers of a write(2)-like
 * API cannot be expected to honour that, so the plaintext of the one record
 * that blocked is copied into a staging buffer, counted as written, and
 * retried from that copy at the start of the next write/sendfile/shutdown.
 * Hence:
 *   - blocking socket: ktls_conn_write writes everything (or fails);
 *   - non-blocking socket: it returns the bytes accepted (at most one record,
 *     16 KiB, of which may still sit in the staging buffer), or
 *     KTLS_WANT_WRITE when even the staged record could not be flushed;
 *   - ktls_conn_write(c, NULL, 0) only flushes: 0 once the staging buffer
 *     is empty, KTLS_WANT_WRITE while it is not.
 * ktls_conn_sendfile's userspace fallback uses the same path: it preads up
 * to 64 KiB at *offset, pushes it, and advances *offset by exactly the bytes
 * accepted, so re-calling with the advanced offset neither repeats nor skips
 * a byte (bytes read but not accepted are simply read again next time).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "internal.h"

#define STAGE_MAX (16 * 1024)  /* one TLS record of plaintext */
#define SF_CHUNK (64 * 1024)   /* sendfile fallback: pread size */
#define PEEK_LEN 11            /* record header + handshake header + version */

/*
 * The shared struct ktls_conn comes first so kernel.c and keys.c see only
 * what internal.h declares; the rest is private to this file.
 */
struct conn_impl {
	struct ktls_conn c;
	unsigned char *stage;     /* plaintext owed to a blocked SSL_write */
	size_t stage_off, stage_len;
	unsigned char *sfbuf;     /* sendfile fallback read buffer */
	char *name;               /* server name, for error messages */
	unsigned char peek[PEEK_LEN]; /* the peer's first bytes (handshake) */
	size_t npeek;
	/*
	 * After a fatal protocol error OpenSSL refuses further I/O with an
	 * empty error queue; the first reason is kept and repeated instead.
	 */
	char fatal[KTLS_ERRLEN];
	int fatal_code;           /* its KTLS_ERR_*, repeated with it */
};

/* Record the reason just set as fatal; returns -1. */
static int set_fatal(struct conn_impl *ci)
{
	snprintf(ci->fatal, sizeof(ci->fatal), "%s", ci->c.err);
	ci->fatal_code = ci->c.err_code;
	return -1;
}

/* -1 with the kept reason when the connection already failed fatally. */
static int check_fatal(struct conn_impl *ci)
{
	if (!ci->fatal[0])
		return 0;
	return conn_fail(&ci->c, ci->fatal_code, "%s", ci->fatal);
}

static struct conn_impl *impl(struct ktls_conn *c)
{
	return (struct conn_impl *)c;
}

int conn_fail(struct ktls_conn *c, int code, const char *fmt, ...)
{
	va_list ap;

	c->err_code = code;
	va_start(ap, fmt);
	buf_vseterr(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

int conn_seterr(struct ktls_conn *c, const char *fmt, ...)
{
	va_list ap;

	c->err_code = KTLS_ERR_INTERNAL;
	va_start(ap, fmt);
	buf_vseterr(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

int conn_would_block(struct ktls_conn *c, int want, const char *what)
{
	int saved = errno, fl = fcntl(c->fd, F_GETFL);

	/* A blocking socket only "would block" once SO_RCVTIMEO/SO_SNDTIMEO expired. */
	if (fl >= 0 && !(fl & O_NONBLOCK))
		conn_fail(c, KTLS_ERR_TIMEOUT, "%s: timed out (%s expired)", what,
			  want == KTLS_WANT_WRITE ? "SO_SNDTIMEO" : "SO_RCVTIMEO");
	errno = saved;
	return want;
}

/* ---- SIGPIPE ---------------------------------------------------------------- */

/*
 * OpenSSL's socket BIO sends with write(2), so a peer that has gone away
 * would raise SIGPIPE and kill a caller that did not ignore it (the kTLS
 * path uses MSG_NOSIGNAL).  Around each OpenSSL I/O call the signal is
 * blocked in this thread and a SIGPIPE the call raised is consumed; one
 * that was already pending stays for the application.
 */
struct nosig {
	sigset_t old;
	int was_pending;
};

static void nosig_enter(struct nosig *ns)
{
	sigset_t pipe_set, pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	ns->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &ns->old);
}

static void nosig_leave(struct nosig *ns)
{
	int saved = errno;
	sigset_t pipe_set, pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	if (!ns->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &ns->old, NULL);
	errno = saved;
}

/* ---- the peer's first bytes, for naming what went wrong ---------------- */

/*
 * OpenSSL forgets the version a peer offered once it refuses it, and says
 * only "wrong version number" for non-TLS input.  A read callback on the
 * socket BIO keeps the first PEEK_LEN bytes the peer sent; it is removed
 * when the handshake completes.
 */
static long peek_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
		    int ret, size_t *processed)
{
	struct conn_impl *ci = (struct conn_impl *)BIO_get_callback_arg(b);

	if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && ci &&
	    ci->npeek < PEEK_LEN) {
		size_t n = *processed;
		if (n > PEEK_LEN - ci->npeek)
			n = PEEK_LEN - ci->npeek;
		memcpy(ci->peek + ci->npeek, argp, n);
		ci->npeek += n;
	}
	return ret;
}

static const char *version_name(int v)
{
	switch (v) {
	case 0x0300: return "SSL 3.0";
	case 0x0301: return "TLS 1.0";
	case 0x0302: return "TLS 1.1";
	case 0x0303: return "TLS 1.2";
	case 0x0304: return "TLS 1.3";
	default: return "an unknown version";
	}
}

/*
 * The legacy version in the peer's ClientHello/ServerHello, when its first
 * record was a hello; 0 otherwise.  Only meaningful below TLS 1.2 (TLS 1.3
 * peers put 0x0303 there and the real list in supported_versions).
 */
static int peer_hello_version(const struct conn_impl *ci)
{
	const unsigned char *p = ci->peek;

	if (ci->npeek < PEEK_LEN || p[0] != 22 || (p[5] != 1 && p[5] != 2))
		return 0;
	return p[9] << 8 | p[10];
}

/* The peer's first byte was neither a handshake nor an alert record. */
static int peer_not_tls(const struct conn_impl *ci)
{
	return ci->npeek > 0 && ci->peek[0] != 22 && ci->peek[0] != 21;
}

/* ---- OpenSSL error classification -------------------------------------- */

struct sslerr {
	unsigned long first;  /* first error of the queue (root cause) */
	int alert;            /* alert description received, or -1 */
	int reason;           /* ERR_GET_REASON(first) for ERR_LIB_SSL, else 0 */
	char text[160];
};

/* Drain the error queue, noting a received alert wherever it appears. */
static void sslerr_take(struct sslerr *e)
{
	unsigned long x;

	e->first = 0;
	e->alert = -1;
	e->reason = 0;
	while ((x = ERR_get_error()) != 0) {
		if (!e->first)
			e->first = x;
		/* A received alert is reported as reason SSL_AD_REASON_OFFSET + desc. */
		if (ERR_GET_LIB(x) == ERR_LIB_SSL && e->alert < 0 &&
		    ERR_GET_REASON(x) >= SSL_AD_REASON_OFFSET &&
		    ERR_GET_REASON(x) < SSL_AD_REASON_OFFSET + 256)
			e->alert = ERR_GET_REASON(x) - SSL_AD_REASON_OFFSET;
	}
	if (e->first && ERR_GET_LIB(e->first) == ERR_LIB_SSL)
		e->reason = ERR_GET_REASON(e->first);
	if (!e->first) {
		snprintf(e->text, sizeof(e->text), "unknown OpenSSL error");
	} else {
		const char *r = ERR_reason_error_string(e->first);
		if (r)
			snprintf(e->text, sizeof(e->text), "%s", r);
		else
			ERR_error_string_n(e->first, e->text, sizeof(e->text));
	}
}

/*
 * The code of an OpenSSL failure none of the cases below names: the TLS
 * layer's own reasons are the peer breaking the protocol (unexpected or
 * malformed messages, bad records); the rest is memory or OpenSSL itself.
 */
static int sslerr_code(const struct sslerr *e)
{
	if (ERR_GET_REASON(e->first) == ERR_R_MALLOC_FAILURE)
		return KTLS_ERR_RESOURCE;
	if (ERR_GET_REASON(e->first) == ERR_R_INTERNAL_ERROR)
		return KTLS_ERR_INTERNAL;
	return ERR_GET_LIB(e->first) == ERR_LIB_SSL ? KTLS_ERR_PROTOCOL : KTLS_ERR_INTERNAL;
}

/* OpenSSL 3.0 calls the TLS 1.3-era alerts "unknown"; name those too. */
static const char *alert_name(int desc, char *buf, size_t len)
{
	const char *n = SSL_alert_desc_string_long(desc);

	if (n && strcmp(n, "unknown") != 0)
		return n;
	switch (desc) {
	case 86: return "inappropriate fallback";
	case 109: return "missing extension";
	case 115: return "unknown PSK identity";
	case 116: return "certificate required";
	case 120: return "no application protocol";
	default:
		snprintf(buf, len, "unknown alert %d", desc);
		return buf;
	}
}

/*
 * A fatal alert received: its description is kept for
 * ktls_conn_peer_alert(); unknown_psk_identity has a code of its own.
 */
static int alert_error(struct ktls_conn *c, struct sslerr *e)
{
	c->peer_alert = e->alert;
	return conn_fail(c, e->alert == SSL_AD_UNKNOWN_PSK_IDENTITY ? KTLS_ERR_PSK_UNKNOWN
								     : KTLS_ERR_PEER_ALERT,
			 "peer sent alert: %s", alert_name(e->alert, e->text, sizeof(e->text)));
}

/* The verification failure, worded like Python's ssl module. */
static int verify_error(struct conn_impl *ci)
{
	struct ktls_conn *c = &ci->c;
	long v = SSL_get_verify_result(c->ssl);
	const char *who = c->ctx->role == KTLS_SERVER ? "client " : "";

	if (v == X509_V_ERR_HOSTNAME_MISMATCH)
		return conn_fail(c, KTLS_ERR_HOSTNAME, "certificate verify failed: Hostname "
				 "mismatch, certificate is not valid for '%s'",
				 ci->name ? ci->name : "");
	if (v == X509_V_ERR_IP_ADDRESS_MISMATCH)
		return conn_fail(c, KTLS_ERR_HOSTNAME, "certificate verify failed: IP address "
				 "mismatch, certificate is not valid for '%s'",
				 ci->name ? ci->name : "");
	if (v == X509_V_OK)
		return conn_fail(c, KTLS_ERR_VERIFY, "%scertificate verify failed", who);
	return conn_fail(c, KTLS_ERR_VERIFY, "%scertificate verify failed: %s", who,
			 X509_verify_cert_error_string(v));
}

static int min_version(const struct ktls_conn *c)
{
	int v = (int)SSL_get_min_proto_version(c->ssl);
	return v ? v : KTLS_TLS1_2;
}

/* Map a failed SSL_do_handshake to a return code and a one-line reason. */
static int handshake_error(struct conn_impl *ci, int ret)
{
	struct ktls_conn *c = &ci->c;
	int saved = errno;
	int err = SSL_get_error(c->ssl, ret);
	struct sslerr e;
	int pv;

	switch (err) {
	case SSL_ERROR_WANT_READ:
		return conn_would_block(c, KTLS_WANT_READ, "handshake");
	case SSL_ERROR_WANT_WRITE:
		return conn_would_block(c, KTLS_WANT_WRITE, "handshake");
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return conn_fail(c, KTLS_ERR_PEER_CLOSED, "peer closed the connection during the "
				 "handshake (close_notify)");
	case SSL_ERROR_SYSCALL:
		sslerr_take(&e);
		if (saved == 0)
			return conn_fail(c, KTLS_ERR_PEER_CLOSED, "peer closed the connection "
					 "during the handshake");
		if (saved == ECONNRESET || saved == EPIPE)
			return conn_fail(c, KTLS_ERR_PEER_CLOSED, "peer closed the connection "
					 "during the handshake (%s)", strerror(saved));
		return conn_fail(c, errno_code(saved), "handshake: socket error: %s",
				 strerror(saved));
	default:
		break;
	}

	sslerr_take(&e);
	if (e.alert >= 0)
		return alert_error(c, &e);
	if (psk_identity_unknown(c->ssl))
		return conn_fail(c, KTLS_ERR_PSK_UNKNOWN, "no PSK in common: none of the "
				 "identities the client offered is known (sent unknown_psk_identity)");
	switch (e.reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		return verify_error(ci);
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return conn_fail(c, KTLS_ERR_PEER_CLOSED, "peer closed the connection during the "
				 "handshake");
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_WRONG_SSL_VERSION:
		pv = peer_hello_version(ci);
		if (pv && pv < KTLS_TLS1_2)
			return conn_fail(c, KTLS_ERR_POLICY, "peer %s %s; minimum is %s",
					 c->ctx->role == KTLS_SERVER ? "offered only" : "chose",
					 version_name(pv), version_name(min_version(c)));
		return conn_fail(c, KTLS_ERR_POLICY, "no protocol version in common with the "
				 "peer (we allow %s to %s): %s",
				 version_name(min_version(c)),
				 version_name(SSL_get_max_proto_version(c->ssl)
						      ? (int)SSL_get_max_proto_version(c->ssl)
						      : KTLS_TLS1_3),
				 e.text);
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return conn_fail(c, KTLS_ERR_VERIFY, "client sent no certificate; this server "
				 "requires one (%s)", e.text);
	case SSL_R_NO_SHARED_CIPHER:
		return conn_fail(c, KTLS_ERR_POLICY, "no shared cipher: the peer offered none of "
				 "the policy's suites");
	case SSL_R_BINDER_DOES_NOT_VERIFY:
		return conn_fail(c, KTLS_ERR_PSK_MISMATCH, "handshake failed: %s", e.text);
	default:
		break;
	}
	if (peer_not_tls(ci))
		return conn_fail(c, KTLS_ERR_PROTOCOL, "peer sent non-TLS data instead of a "
				 "handshake (first byte 0x%02x): %s", ci->peek[0], e.text);
	if (ERR_GET_LIB(e.first) == ERR_LIB_SSL && ERR_GET_REASON(e.first) == SSL_R_WRONG_VERSION_NUMBER)
		return conn_fail(c, KTLS_ERR_PROTOCOL, "peer sent an unexpected record version: %s",
				 e.text);
	return conn_fail(c, sslerr_code(&e), "handshake failed: %s", e.text);
}

/* Map a failed SSL_read/SSL_write/SSL_shutdown; what is "during" the call. */
static int io_error_msg(struct conn_impl *ci, int err, int saved, const char *what)
{
	struct ktls_conn *c = &ci->c;
	struct sslerr e;

	switch (err) {
	case SSL_ERROR_WANT_READ:
		return conn_would_block(c, KTLS_WANT_READ, what);
	case SSL_ERROR_WANT_WRITE:
		return conn_would_block(c, KTLS_WANT_WRITE, what);
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		c->peer_closed = 1;
		return 0;
	case SSL_ERROR_SYSCALL:
		sslerr_take(&e);
		if (saved == 0 || saved == ECONNRESET)
			return conn_fail(c, KTLS_ERR_PEER_CLOSED, "peer closed without close_notify "
					 "(truncation)%s", saved ? ": connection reset" : "");
		if (saved == EPIPE)
			return conn_fail(c, KTLS_ERR_PEER_CLOSED, "%s: peer has closed the "
					 "connection (%s)", what, strerror(saved));
		return conn_fail(c, errno_code(saved), "%s: socket error: %s", what,
				 strerror(saved));
	default:
		break;
	}
	sslerr_take(&e);
	if (e.alert >= 0)
		return alert_error(c, &e);
	switch (e.reason) {
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return conn_fail(c, KTLS_ERR_PEER_CLOSED, "peer closed without close_notify "
				 "(truncation)");
	case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
	case SSL_R_DECRYPTION_FAILED:
		return conn_fail(c, KTLS_ERR_PROTOCOL, "%s: a record failed to decrypt (tampered "
				 "or corrupt): %s", what, e.text);
	case SSL_R_PROTOCOL_IS_SHUTDOWN:
		return conn_fail(c, KTLS_ERR_CLOSED, "%s: connection already shut down", what);
	default:
		return conn_fail(c, sslerr_code(&e), "%s: %s", what, e.text);
	}
}

/*
 * A protocol error (SSL_ERROR_SSL: an alert, a bad record) ends the
 * connection, so its reason is kept; a socket error on one direction does
 * not stop the other (data already received can still be read).
 */
static int io_error(struct conn_impl *ci, int ret, const char *what)
{
	int saved = errno;
	int err = SSL_get_error(ci->c.ssl, ret);
	int r = io_error_msg(ci, err, saved, what);

	return r == -1 && err == SSL_ERROR_SSL ? set_fatal(ci) : r;
}

/* ---- construction ------------------------------------------------------- */

KTLS_API ktls_conn *ktls_conn_new(ktls_ctx *ctx, int fd, const char *server_name)
{
	struct conn_impl *ci;
	SSL *ssl;
	int type = 0;
	socklen_t tl = sizeof(type);

	if (!ctx) {
		errno = EINVAL;
		return NULL;
	}
	ctx_clearerr(ctx);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "fd %d is not a socket%s%s", fd,
			 fd < 0 ? "" : ": ", fd < 0 ? "" : strerror(errno));
		errno = EINVAL;
		return NULL;
	}
	if (type != SOCK_STREAM) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "fd %d is not a stream (TCP) socket", fd);
		errno = EINVAL;
		return NULL;
	}
	ci = calloc(1, sizeof(*ci));
	if (!ci) {
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		return NULL;
	}
	ci->c.peer_alert = -1;
	if (server_name && !(ci->name = strdup(server_name))) {
		free(ci);
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		return NULL;
	}
	ERR_clear_error();
	ssl = SSL_new(ctx->ssl);
	if (!ssl) {
		char r[128];
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "cannot create a connection: %s",
			 ssl_reason(r, sizeof(r)));
		goto fail;
	}
	ci->c.ssl = ssl;
	/* Role first: keys_conn_new asks SSL_is_server(). */
	if (ctx->role == KTLS_SERVER)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	/* Key tracking must see every record from the first one on. */
	ci->c.keys = keys_conn_new(ssl);
	if (!ci->c.keys) {
		char r[128];
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "cannot attach key tracking: %s",
			 ssl_reason(r, sizeof(r)));
		goto fail;
	}
	if (ctx_prepare_ssl(ctx, ssl, server_name) != 0)
		goto fail; /* reason set by ctx_prepare_ssl */
	/*
	 * Partial writes: one record per SSL_write, so a blocked write owes
	 * at most one record (see the staging buffer above).  Moving buffer:
	 * the retry comes from our copy, not the caller's pointer.
	 */
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!SSL_set_fd(ssl, fd)) {
		char r[128];
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "cannot attach fd %d: %s", fd,
			 ssl_reason(r, sizeof(r)));
		goto fail;
	}
	BIO_set_callback_arg(SSL_get_rbio(ssl), (char *)ci);
	BIO_set_callback_ex(SSL_get_rbio(ssl), peek_cb);
	ctx_ref(ctx);
	ci->c.ctx = ctx;
	ci->c.fd = fd;
	ci->c.tx = ci->c.rx = KTLS_MODE_USER;
	return &ci->c;
fail:
	if (ci->c.keys)
		keys_conn_free(ci->c.keys);
	SSL_free(ssl);
	free(ci->name);
	free(ci);
	return NULL;
}

static const char *role_name(int role)
{
	return role == KTLS_SERVER ? "KTLS_SERVER" : role == KTLS_CLIENT ? "KTLS_CLIENT" : "role-less";
}

KTLS_API ktls_conn *ktls_conn_connect(ktls_ctx *ctx, int fd, const char *server_name)
{
	if (ctx && ctx->role != KTLS_CLIENT) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "wrong-role context: ktls_conn_connect needs a "
			 "KTLS_CLIENT context, this one is %s", role_name(ctx->role));
		errno = EINVAL;
		return NULL;
	}
	return ktls_conn_new(ctx, fd, server_name);
}

KTLS_API ktls_conn *ktls_conn_accept(ktls_ctx *ctx, int fd)
{
	if (ctx && ctx->role != KTLS_SERVER) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "wrong-role context: ktls_conn_accept needs a "
			 "KTLS_SERVER context, this one is %s", role_name(ctx->role));
		errno = EINVAL;
		return NULL;
	}
	return ktls_conn_new(ctx, fd, NULL);
}

KTLS_API void ktls_conn_free(ktls_conn *c)
{
	struct conn_impl *ci;

	if (!c)
		return;
	ci = impl(c);
	/* SSL_set_fd made a BIO_NOCLOSE socket BIO: the fd stays open. */
	if (c->keys)
		keys_conn_free(c->keys);
	SSL_free(c->ssl);
	ctx_unref(c->ctx);
	if (ci->stage) {
		secure_zero(ci->stage, STAGE_MAX);
		free(ci->stage);
	}
	if (ci->sfbuf) {
		secure_zero(ci->sfbuf, SF_CHUNK);
		free(ci->sfbuf);
	}
	free(ci->name);
	free(ci);
}

/* ---- handshake and info -------------------------------------------------- */

KTLS_API int ktls_conn_handshake(ktls_conn *c)
{
	struct nosig ns;
	int r;

	if (!c)
		return -1;
	if (c->handshake_done)
		return 0;
	if (check_fatal(impl(c)))
		return -1;
	ERR_clear_error();
	errno = 0;
	nosig_enter(&ns);
	r = SSL_do_handshake(c->ssl);
	nosig_leave(&ns);
	if (r != 1) {
		r = handshake_error(impl(c), r);
		return r == -1 ? set_fatal(impl(c)) : r;
	}
	c->handshake_done = 1;
	BIO_set_callback_ex(SSL_get_rbio(c->ssl), NULL);
	BIO_set_callback_arg(SSL_get_rbio(c->ssl), NULL);
	if (!c->offload_tried)
		snprintf(c->fallback, sizeof(c->fallback), "offload not requested");
	return 0;
}

KTLS_API int ktls_conn_info(const ktls_conn *c, struct ktls_info *out)
{
	const SSL_CIPHER *ciph;

	if (!c || !out) {
		errno = EINVAL;
		return -1;
	}
	if (!c->handshake_done)
		return conn_fail((struct ktls_conn *)c, KTLS_ERR_INVALID, "info: handshake not "
				 "complete");
	memset(out, 0, sizeof(*out));
	out->version = SSL_version(c->ssl);
	out->version_name = SSL_get_version(c->ssl);
	ciph = SSL_get_current_cipher(c->ssl);
	out->cipher = ciph ? SSL_CIPHER_get_name(ciph) : "";
	out->tx = c->tx;
	out->rx = c->rx;
	out->zerocopy_tx = c->zc_tx;
	out->rx_no_pad = c->rx_no_pad;
	if (c->tx != KTLS_MODE_USER && c->rx != KTLS_MODE_USER)
		out->fallback_reason = NULL;
	else
		out->fallback_reason = c->fallback[0] ? c->fallback : "offload not requested";
	return 0;
}

KTLS_API int ktls_conn_fd(const ktls_conn *c)
{
	return c ? c->fd : -1;
}

KTLS_API int ktls_conn_error_code(const ktls_conn *c)
{
	return c && c->err[0] ? c->err_code : KTLS_ERR_NONE;
}

KTLS_API int ktls_conn_peer_alert(const ktls_conn *c)
{
	return c ? c->peer_alert : -1;
}

KTLS_API const char *ktls_conn_error(const ktls_conn *c)
{
	return c ? c->err : "";
}

/* ---- userspace I/O --------------------------------------------------------- */

/* The handshake is done and nothing failed fatally since; else -1. */
static int need_handshake(struct ktls_conn *c, const char *what)
{
	if (!c->handshake_done)
		return conn_fail(c, KTLS_ERR_INVALID, "%s: handshake not complete", what);
	return check_fatal(impl(c));
}

/* Push the staged plaintext: 0 once empty, KTLS_WANT_*, or -1. */
static int stage_flush(struct conn_impl *ci)
{
	while (ci->stage_len > 0) {
		struct nosig ns;
		size_t n = 0;
		int ok;

		ERR_clear_error();
		errno = 0;
		nosig_enter(&ns);
		ok = SSL_write_ex(ci->c.ssl, ci->stage + ci->stage_off, ci->stage_len, &n);
		nosig_leave(&ns);
		if (!ok)
			return io_error(ci, 0, "write");
		ci->stage_off += n;
		ci->stage_len -= n;
	}
	ci->stage_off = 0;
	return 0;
}

/*
 * TX moved to the kernel while plaintext was staged.  ktls_conn_offload
 * keeps TX in userspace while OpenSSL holds a sealed record, so staged
 * bytes here were never sealed (e.g. the write blocked on OpenSSL's own
 * KeyUpdate): the kernel sends them, still ahead of anything newer.
 */
static int stage_flush_kernel(struct conn_impl *ci)
{
	while (ci->stage_len > 0) {
		ssize_t n = kernel_write(&ci->c, ci->stage + ci->stage_off, ci->stage_len);
		if (n <= 0)
			return n == 0 ? KTLS_WANT_WRITE : (int)n;
		ci->stage_off += (size_t)n;
		ci->stage_len -= (size_t)n;
	}
	ci->stage_off = 0;
	return 0;
}

/*
 * Write through OpenSSL: bytes accepted (all of them on a blocking socket),
 * KTLS_WANT_* when nothing could be accepted, -1 on error.
 */
static ssize_t user_write(struct conn_impl *ci, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t done = 0;
	int r;

	r = stage_flush(ci);
	if (r != 0)
		return r;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		size_t chunk = len - done < STAGE_MAX ? len - done : STAGE_MAX;
		struct nosig ns;
		size_t n = 0;
		int ok;

		ERR_clear_error();
		errno = 0;
		nosig_enter(&ns);
		ok = SSL_write_ex(ci->c.ssl, p + done, chunk, &n);
		nosig_leave(&ns);
		if (ok) {
			done += n;
			continue;
		}
		r = io_error(ci, 0, "write");
		if (r == KTLS_WANT_WRITE || r == KTLS_WANT_READ) {
			/* OpenSSL may hold this chunk sealed: owe exactly these bytes. */
			if (!ci->stage && !(ci->stage = malloc(STAGE_MAX)))
				return done ? (ssize_t)done
					    : conn_fail(&ci->c, KTLS_ERR_RESOURCE, "write: out of memory");
			memcpy(ci->stage, p + done, chunk);
			ci->stage_off = 0;
			ci->stage_len = chunk;
			return (ssize_t)(done + chunk);
		}
		if (r == 0) /* close_notify arrived while writing: report it on read */
			r = conn_fail(&ci->c, KTLS_ERR_CLOSED, "write: peer has sent close_notify");
		return done ? (ssize_t)done : r;
	}
	return (ssize_t)done;
}

KTLS_API ssize_t ktls_conn_read(ktls_conn *c, void *buf, size_t len)
{
	struct nosig ns;
	size_t n = 0;
	int ok;

	if (!c || (!buf && len)) {
		if (c)
			conn_fail(c, KTLS_ERR_INVALID, "read: buf is NULL");
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "read"))
		return -1;
	if (c->rx != KTLS_MODE_USER)
		return kernel_read(c, buf, len);
	if (c->peer_closed)
		return 0;
	if (len == 0)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	nosig_enter(&ns);
	ok = SSL_read_ex(c->ssl, buf, len, &n);
	nosig_leave(&ns);
	if (ok)
		return (ssize_t)n;
	return io_error(impl(c), 0, "read");
}

KTLS_API ssize_t ktls_conn_write(ktls_conn *c, const void *buf, size_t len)
{
	if (!c || (!buf && len)) {
		if (c)
			conn_fail(c, KTLS_ERR_INVALID, "write: buf is NULL");
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "write"))
		return -1;
	if (c->we_closed)
		return conn_fail(c, KTLS_ERR_CLOSED, "write: connection already shut down "
				 "(close_notify sent)");
	if (c->tx != KTLS_MODE_USER) {
		int r = stage_flush_kernel(impl(c));
		if (r != 0)
			return r;
		return len ? kernel_write(c, buf, len) : 0;
	}
	return user_write(impl(c), buf, len);
}

/* Userspace sendfile: pread + encrypt; see the top of this file. */
static ssize_t user_sendfile(struct conn_impl *ci, int in_fd, off_t *offset, size_t count)
{
	size_t total = 0;
	int r;

	r = stage_flush(ci);
	if (r != 0)
		return r;
	if (!ci->sfbuf && !(ci->sfbuf = malloc(SF_CHUNK)))
		return conn_fail(&ci->c, KTLS_ERR_RESOURCE, "sendfile: out of memory");
	if (count > SSIZE_MAX)
		count = SSIZE_MAX;
	while (total < count) {
		size_t want = count - total < SF_CHUNK ? count - total : SF_CHUNK;
		ssize_t got, w;

		do
			got = pread(in_fd, ci->sfbuf, want, *offset);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			int e = errno;
			if (total)
				break;
			return conn_fail(&ci->c, e == EBADF || e == EINVAL || e == ESPIPE
						 ? KTLS_ERR_INVALID : errno_code(e),
					 "sendfile: reading fd %d at offset %lld: %s", in_fd,
					 (long long)*offset, strerror(e));
		}
		if (got == 0)
			break; /* end of file before count */
		w = user_write(ci, ci->sfbuf, (size_t)got);
		if (w < 0)
			return total ? (ssize_t)total : w;
		*offset += w;
		total += (size_t)w;
		/* Short, or a record is staged: the socket is full, report now. */
		if (w < got || ci->stage_len)
			break;
	}
	return (ssize_t)total;
}

KTLS_API ssize_t ktls_conn_sendfile(ktls_conn *c, int in_fd, off_t *offset, size_t count)
{
	off_t pos;
	ssize_t r;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "sendfile"))
		return -1;
	if (c->we_closed)
		return conn_fail(c, KTLS_ERR_CLOSED, "sendfile: connection already shut down "
				 "(close_notify sent)");
	if (c->tx != KTLS_MODE_USER) {
		r = stage_flush_kernel(impl(c));
		if (r != 0)
			return r;
		return kernel_sendfile(c, in_fd, offset, count);
	}
	if (offset)
		return user_sendfile(impl(c), in_fd, offset, count);
	/* No offset: like sendfile(2), use and advance the file position. */
	pos = lseek(in_fd, 0, SEEK_CUR);
	if (pos < 0)
		return conn_fail(c, KTLS_ERR_INVALID, "sendfile: fd %d has no file position: %s",
				 in_fd, strerror(errno));
	r = user_sendfile(impl(c), in_fd, &pos, count);
	if (r > 0 && lseek(in_fd, pos, SEEK_SET) < 0)
		return conn_fail(c, errno_code(errno), "sendfile: cannot advance fd %d: %s", in_fd,
				 strerror(errno));
	return r;
}

KTLS_API int ktls_conn_shutdown(ktls_conn *c)
{
	struct conn_impl *ci;
	struct nosig ns;
	int r;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "shutdown"))
		return -1;
	if (c->we_closed)
		return 0;
	if (c->tx != KTLS_MODE_USER) {
		r = stage_flush_kernel(impl(c));
		if (r != 0)
			return r;
		r = kernel_send_alert(c, 1, 0); /* warning, close_notify */
		if (r == 0)
			c->we_closed = 1;
		return r;
	}
	ci = impl(c);
	r = stage_flush(ci);
	if (r != 0)
		return r;
	ERR_clear_error();
	errno = 0;
	nosig_enter(&ns);
	r = SSL_shutdown(c->ssl);
	nosig_leave(&ns);
	if (r >= 0) {
		c->we_closed = 1;
		return 0;
	}
	r = io_error(ci, r, "shutdown");
	return r == 0 ? conn_fail(c, KTLS_ERR_CLOSED, "shutdown: failed") : r;
}
