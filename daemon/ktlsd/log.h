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

/*
 * log_escape_name - a name a peer sent (the TLS server name), stricter than
 * log_escape, for a field of the handshake line: NULL as "-"; A-Z, a-z,
 * 0-9, '.', '-' and '_' as they are, every other byte as \xHH (so the
 * field can hold no space, '=' or parenthesis to fake another one), and a
 * name of just "-" as \x2d, apart from none.  At most LOG_NAME_MAX bytes,
 * cut at a whole character or escape and ending in "..." when cut.
 */
#define LOG_NAME_MAX 255
void log_escape_name(char out[LOG_NAME_MAX + 1], const char *name);

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * log_msg_escaped - log_msg for a line whose peer-sent or outside bytes
 * the caller has already escaped (log_escape, log_escape_name): written as
 * formatted, so that their \xHH stay as they are.
 */
void log_msg_escaped(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Access log destination: -1 for none. */
void log_access_fd(int fd);

/* host, request line, status, body bytes, duration in microseconds */
void log_access(const char *host, const char *line, int status, uint64_t bytes, uint64_t usec);

#endif
