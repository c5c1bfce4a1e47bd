/*
 * metrics.h - ktlsd's Prometheus counters and the plain-HTTP endpoint
 * that exposes them (`--metrics ADDR:PORT`, GET /metrics).
 *
 * Workers count with relaxed atomics (no locks in the hot path; a new
 * label value takes a mutex once).  Label values for reasons are
 * sanitised and bounded: at most METRICS_MAX_REASONS distinct values per
 * metric, the rest count as "other".
 */
#ifndef KTLSD_METRICS_H
#define KTLSD_METRICS_H

#include <stdint.h>

#define METRICS_MAX_REASONS 16

/* modes are KTLS_MODE_* from ktls.h */
void metrics_conn(int tx, int rx);
/* reason: the library's fallback text; counted up to its first ':' or '('. */
void metrics_fallback(const char *reason);
void metrics_bytes(int tx, uint64_t n);
void metrics_handshake_ok(uint64_t usec);
/*
 * reason: ktls_error_name() of the failure's KTLS_ERR_* code ("verify",
 * "peer-closed", ...), never the error text, so the label set is fixed;
 * "timeout" also for ktlsd's own handshake deadline.
 */
void metrics_handshake_failed(const char *reason);
/* A connection reset at accept: "max-conns" or "max-conns-per-client". */
void metrics_refused(const char *reason);

/* The whole exposition text (malloc'd, NUL-terminated); NULL on ENOMEM. */
char *metrics_render(size_t *len);

/* Serve GET /metrics on the listening socket lfd from a thread of its own. */
int metrics_start(int lfd);
void metrics_stop(void);

#endif
