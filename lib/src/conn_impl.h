/*
 * conn_impl.h - the whole connection object, shared by conn.c (lifecycle,
 * handshake, userspace I/O) and conn_error.c (what a failure is called
 * and which KTLS_ERR_* it carries).  kernel_*.c and keys.c see only the
 * struct ktls_conn of internal.h.  Private to libktls.
 */
#ifndef KTLS_CONN_IMPL_H
#define KTLS_CONN_IMPL_H

#include <stddef.h>

#include <openssl/bio.h>

#include "internal.h"

#define PEEK_LEN 11 /* record header + handshake header + version */

/* The shared struct ktls_conn comes first: a ktls_conn * is a conn_impl *. */
struct conn_impl {
	struct ktls_conn c;
	unsigned char *stage;     /* plaintext owed to a blocked SSL_write */
	size_t stage_off, stage_len;
	unsigned char *sfbuf;     /* sendfile fallback read buffer */
	int tx_more;              /* the BIO sends with MSG_MORE: records follow */
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

static inline struct conn_impl *impl(struct ktls_conn *c)
{
	return (struct conn_impl *)c;
}

/* Record the reason just set (c.err, c.err_code) as fatal; returns -1. */
int conn_set_fatal(struct conn_impl *ci);

/*
 * Read callback on the socket BIO during the handshake: keeps the first
 * PEEK_LEN bytes the peer sent (ci is the callback argument), so that a
 * refusal can name the version it offered or that it was not TLS at all.
 */
long conn_peek_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
		  int ret, size_t *processed);

/*
 * A failed SSL_do_handshake (ret its return value): KTLS_WANT_* to retry,
 * or -1 with a one-line reason and its KTLS_ERR_* set on the connection.
 */
int conn_handshake_error(struct conn_impl *ci, int ret);

/*
 * A failed SSL_read/SSL_write/SSL_shutdown; what names the call.  0 for
 * close_notify received, KTLS_WANT_*, or -1 with the reason set.  A
 * protocol error ends the connection, so its reason is kept as fatal; a
 * socket error on one direction does not stop the other.
 */
int conn_io_error(struct conn_impl *ci, int ret, const char *what);

#endif /* KTLS_CONN_IMPL_H */
