/*
 * conn_test.h - helpers for the connection suites (tests/host/conn_*.c,
 * interop_*.c): contexts from the test PKI, handshakes and bulk transfers
 * driven by poll on non-blocking sockets, and pipe pumps for peers that
 * speak through stdin/stdout.
 */
#ifndef KTLS_CONN_TEST_H
#define KTLS_CONN_TEST_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "ktls.h"

#define CT_MIB (1024 * 1024)

/* A thread writing buf to fd, or reading into it (ct_pipe_start). */
struct ct_pipe {
	pthread_t th;
	int fd;
	unsigned char *buf;
	size_t len;   /* to write, or capacity to read */
	size_t done;  /* written / read */
	int close_after; /* writer: close fd when done */
};

/* One interop cell: protocol version and the suite pinned on the peer. */
struct ct_cell {
	int version;          /* KTLS_TLS1_2 / KTLS_TLS1_3 */
	const char *openssl;  /* OpenSSL name, as ktls_info.cipher reports it */
	const char *gnutls;   /* GnuTLS cipher name for a priority string */
};

/* CLOCK_MONOTONIC in milliseconds. */
long long ct_now_ms(void);

/* Set or clear O_NONBLOCK; -1 on failure. */
int ct_set_nonblock(int fd, int on);

/*
 * The peer process a suite's current test spawned (openssl, gnutls, Python),
 * stopped by ct_suite_fini; ct_suite_init ignores SIGPIPE (a peer that goes
 * away must fail a write, not kill the runner).  For TestSuite(.init/.fini).
 */
extern pid_t ct_peer;
void ct_suite_init(void);
void ct_suite_fini(void);

/* A client context trusting the test CA (NULL on failure, reason on stderr). */
ktls_ctx *ct_client_ctx(void);

/* A server context with the named chain ("server-ec", "server-rsa"). */
ktls_ctx *ct_server_ctx(const char *name);

/* Wait for the direction a KTLS_WANT_* asks for; 0, or -1 on timeout. */
int ct_wait(int fd, ssize_t want, long long deadline);

/* Run the handshake to completion on any socket; 0 or what it failed with. */
int ct_handshake(ktls_conn *c, int timeout_ms);

/*
 * Send out[0..outlen) and receive exactly inlen bytes into in, interleaved
 * on a non-blocking socket (so neither side's buffers can deadlock us).
 * 0, or -1 with a message on stderr.
 */
int ct_pump(ktls_conn *c, const unsigned char *out, size_t outlen, unsigned char *in,
	    size_t inlen, int timeout_ms);

/* Blocking: read exactly len bytes; 0 or -1. */
int ct_read_full(ktls_conn *c, void *buf, size_t len);

/* Blocking: write everything; 0 or -1. */
int ct_write_full(ktls_conn *c, const void *buf, size_t len);

/* Read until close: the next read must be 0 (close_notify) within timeout. */
ssize_t ct_read_eof(ktls_conn *c, int timeout_ms);

/* Start p's thread: a writer, or a reader (until len bytes or EOF); 0 or an errno. */
int ct_pipe_start(struct ct_pipe *p, int writer);

/* Wait for a pipe thread for up to timeout_ms; 0 if it finished. */
int ct_pipe_join(struct ct_pipe *p, int timeout_ms);

/*
 * openssl s_client -connect 127.0.0.1:PORT -CAfile ca.pem -ign_eof EXTRA...
 * (extra NULL-terminated) against one connection of the server context
 * ctx: our side accepts, runs the handshake and, when it succeeded, calls
 * serve(c, arg) (NULL: nothing) and sends close_notify.  s_client's stdout
 * lands in out (NUL-terminated), our handshake's error text in err ("" on
 * success).  Returns the handshake's result, or -2 when s_client did not
 * start, connect or exit (the reason on stderr).  Sets ct_peer.
 */
int ct_s_client(ktls_ctx *ctx, const char *const extra[], char *out, size_t cap,
		void (*serve)(ktls_conn *c, void *arg), void *arg, char *err, size_t errlen);

/* Connect to 127.0.0.1:port, retrying while the peer starts; fd or -1. */
int ct_connect_retry(int port, int timeout_ms);

/* The Python the suites use as an independent TLS peer. */
const char *ct_python(void);

/* The cell of version v (KTLS_TLS1_*) and cipher 0..2 (AES-128, AES-256, ChaCha). */
struct ct_cell ct_cell(int v, int cipher);

/* A GnuTLS priority string pinning the cell. */
void ct_gnutls_priority(const struct ct_cell *c, char *out, size_t cap);

/* Pin the cell on our own context too (for peers that cannot, e.g. Python 1.3). */
int ct_pin_ctx(ktls_ctx *ctx, const struct ct_cell *c);

#endif
