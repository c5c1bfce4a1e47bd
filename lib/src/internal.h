/*
 * internal.h - what the files of libktls share.  Never installed.
 *
 * File map (one concern each):
 *   error.c   per-object error strings (thread-safe for shared contexts)
 *   ctx.c     contexts and the enforced policy
 *   conn.c    connections: handshake, userspace I/O, dispatch to kTLS I/O
 *   keys.c    traffic-secret capture, record counting, key derivation
 *   kernel.c  installing keys into kTLS and kTLS record I/O (mockable seams)
 *   probe.c   what the running kernel offers
 */
#ifndef KTLS_INTERNAL_H
#define KTLS_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <pthread.h>

#include <openssl/ssl.h>

#include "ktls.h"

#define KTLS_API __attribute__((visibility("default")))
#define KTLS_PRINTF(f, a) __attribute__((format(printf, f, a)))

#define KTLS_ERRLEN 256

/* ---- error.c ---------------------------------------------------------- */

/*
 * A context may be shared by threads, so its error string is kept per
 * thread (the last failure of a call on that context in this thread).
 * A connection belongs to one thread at a time and keeps its own buffer.
 */
int ctx_seterr(const struct ktls_ctx *ctx, const char *fmt, ...) KTLS_PRINTF(2, 3);
const char *ctx_geterr(const struct ktls_ctx *ctx);
void ctx_clearerr(const struct ktls_ctx *ctx);

/* Format into buf; returns -1 so callers can `return seterr(...)`. */
int buf_seterr(char *buf, size_t len, const char *fmt, ...) KTLS_PRINTF(3, 4);
int buf_vseterr(char *buf, size_t len, const char *fmt, va_list ap);

/*
 * The most useful line of OpenSSL's error queue ("ee key too small"),
 * then the queue is cleared.  Never NULL.
 */
const char *ssl_reason(char *buf, size_t len);

/* Overwrite secrets in a way the compiler cannot elide. */
void secure_zero(void *p, size_t n);

#endif /* KTLS_INTERNAL_H */
