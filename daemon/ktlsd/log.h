/*
 * log.h - ktlsd's two logs: the daemon log on stderr (one line per
 * connection at handshake completion, errors, lifecycle) and the access
 * log (Common Log Format plus the request's duration in seconds).
 * Each line is one write(2), so threads never interleave within a line.
 */
#ifndef KTLSD_LOG_H
#define KTLSD_LOG_H

#include <stdint.h>

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Access log destination: -1 for none. */
void log_access_fd(int fd);

/* host, request line, status, body bytes, duration in microseconds */
void log_access(const char *host, const char *line, int status, uint64_t bytes, uint64_t usec);

#endif
