/*
 * conn_error.c - what a connection's failure is called and which KTLS_ERR_*
 * it carries: OpenSSL's error queue, the socket's errno and the peer's
 * first bytes turned into one line a person can act on ("peer offered only
 * TLS 1.1; minimum is TLS 1.2") and a code a program can act on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "conn_impl.h"
#include "proto.h"

/* ---- setting the error -------------------------------------------------- */

/* Record the reason just set as fatal; returns -1. */
int conn_set_fatal(struct conn_impl *ci)
{
	snprintf(ci->fatal, sizeof(ci->fatal), "%s", ci->c.err);
	ci->fatal_code = ci->c.err_code;
	return -1;
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

int conn_would_block(struct ktls_conn *c, int want, const char *what)
{
	int saved = errno, fl;

	if (c->seen_nonblock)
		return want;
	fl = fcntl(c->fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		c->seen_nonblock = 1;
	/* A blocking socket only "would block" once SO_RCVTIMEO/SO_SNDTIMEO expired. */
	if (fl >= 0 && !(fl & O_NONBLOCK))
		conn_fail(c, KTLS_ERR_TIMEOUT, "%s: timed out (%s expired)", what,
			  want == KTLS_WANT_WRITE ? "SO_SNDTIMEO" : "SO_RCVTIMEO");
	errno = saved;
	return want;
}

/* ---- the peer's first bytes, for naming what went wrong ---------------- */

/*
 * OpenSSL forgets the version a peer offered once it refuses it, and says
 * only "wrong version number" for non-TLS input.  A read callback on the
 * socket BIO keeps the first PEEK_LEN bytes the peer sent; it is removed
 * when the handshake completes.
 */
long conn_peek_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
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
	const char *name = proto_version_name(v);

	return name ? name : "an unknown version";
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
	unsigned long first;  /* the TLS layer's first error, else the queue's first */
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
	/*
	 * A provider error can come before the TLS layer's own (TLS 1.2
	 * AES-GCM: the cipher's failure, then bad_record_mac): the TLS
	 * layer's names the cause.
	 */
	while ((x = ERR_get_error()) != 0) {
		if (!e->first || (ERR_GET_LIB(x) == ERR_LIB_SSL && ERR_GET_LIB(e->first) != ERR_LIB_SSL))
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

/* The alert's name, or "unknown alert N" written into buf. */
static const char *alert_name(int desc, char *buf, size_t len)
{
	const char *n = proto_alert_name(desc);

	if (n)
		return n;
	snprintf(buf, len, "unknown alert %d", desc);
	return buf;
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
int conn_handshake_error(struct conn_impl *ci, int ret)
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
	case SSL_R_INVALID_STATUS_RESPONSE:
		return conn_fail(c, KTLS_ERR_VERIFY, "OCSP check failed: %s (sent "
				 "bad_certificate_status_response)",
				 ocsp_failure(c->ssl) ? ocsp_failure(c->ssl) : e.text);
	case SSL_R_CALLBACK_FAILED:
		if (sni_refused(c->ssl)) {
			const char *n = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);

			return conn_fail(c, KTLS_ERR_POLICY, "the SNI callback refused the server name "
					 "%s%s%s (sent unrecognized_name)", n ? "\"" : "",
					 n ? n : "(none)", n ? "\"" : "");
		}
		break;
	case SSL_R_NO_APPLICATION_PROTOCOL:
		return conn_fail(c, KTLS_ERR_POLICY, "no application protocol (ALPN) in common: "
				 "the client offered none of %s (sent no_application_protocol)",
				 c->ctx->alpn_text ? c->ctx->alpn_text : "ours");
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
int conn_io_error(struct conn_impl *ci, int ret, const char *what)
{
	int saved = errno;
	int err = SSL_get_error(ci->c.ssl, ret);
	int r = io_error_msg(ci, err, saved, what);

	return r == -1 && err == SSL_ERROR_SSL ? conn_set_fatal(ci) : r;
}
