/*
 * log.h - ktlsd's two logs: the daemon log on stderr (one line per
 * connection at handshake completion, errors, lifecycle) and the access
 * log (Common Log Format plus the request's duration in seconds).
 * Each line is one write(2), so threads never interleave within a line.
 *
 * Bytes a client sent end up in both (request lines, certificate names in
 * errors): both escape every byte outside printable ASCII, and '\', as
 * \xHH, so that no line carries a terminal control sequence or fakes a
 * line of its own.
 */
#ifndef KTLSD_LOG_H
#define KTLSD_LOG_H

#include <stddef.h>
#include <stdint.h>

/*
 * log_escape - in (len bytes) into out (cap bytes, NUL-terminated, cut at
 * a whole escape): bytes < 0x20, >= 0x7f and '\' as \xHH, and '"' too when
 * quote (a quoted log field, as nginx writes them).  Returns the length.
 */
size_t log_escape(char *out, size_t cap, const char *in, size_t len, int quote);

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Access log destination: -1 for none. */
void log_access_fd(int fd);

/* host, request line, status, body bytes, duration in microseconds */
void log_access(const char *host, const char *line, int status, uint64_t bytes, uint64_t usec);

#endif
