/* log.c - daemon and access logs (see log.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"

static int access_fd = -1;

size_t log_escape(char *out, size_t cap, const char *in, size_t len, int quote)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!cap)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c >= 0x7f || c == '\\' || (quote && c == '"')) {
			if (o + 4 >= cap)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

/* A byte log_escape_name shows as it is (i: its index in name). */
static int name_plain(const char *name, size_t i)
{
	unsigned char c = (unsigned char)name[i];

	if (c == '-')
		return i > 0 || name[1]; /* a lone "-" would read as none */
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_';
}

void log_escape_name(char out[LOG_NAME_MAX + 1], const char *name)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, full = 0, room = LOG_NAME_MAX;

	if (!name) {
		memcpy(out, "-", 2);
		return;
	}
	for (size_t i = 0; name[i] && full <= LOG_NAME_MAX; i++)
		full += name_plain(name, i) ? 1 : 4;
	if (full > LOG_NAME_MAX)
		room -= 3; /* for the "..." that says it was cut */
	for (size_t i = 0; name[i]; i++) {
		unsigned char c = (unsigned char)name[i];

		if (name_plain(name, i)) {
			if (o + 1 > room)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 4 > room)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (full > LOG_NAME_MAX) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static void log_write(int escape, const char *fmt, va_list ap)
{
	char buf[1024], raw[1024], ts[32];
	struct timespec now;
	struct tm tm;
	int n, m;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf, sizeof(buf), "%s.%03ldZ ktlsd[%d]: ", ts, now.tv_nsec / 1000000,
		     (int)getpid());
	m = vsnprintf(raw, sizeof(raw), fmt, ap);
	len = m < 0 ? 0 : m < (int)sizeof(raw) ? (size_t)m : sizeof(raw) - 1;
	if (escape) {
		/* peers' bytes (request lines, certificate names) reach this text */
		n += (int)log_escape(buf + n, sizeof(buf) - (size_t)n - 1, raw, len, 0);
	} else {
		if (len > sizeof(buf) - (size_t)n - 1)
			len = sizeof(buf) - (size_t)n - 1;
		memcpy(buf + n, raw, len);
		n += (int)len;
	}
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void log_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(1, fmt, ap);
	va_end(ap);
}

void log_msg_escaped(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(0, fmt, ap);
	va_end(ap);
}

void log_access_fd(int fd)
{
	access_fd = fd;
}

/*
 * The access log is written once per request, so it is formatted by hand:
 * snprintf and strftime (with gmtime_r's lock) cost about 4% of a 16 KiB
 * response's server CPU, measured with perf.  The time stamp is built once
 * per second and per thread.
 */
static char *put_str(char *p, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	memcpy(p, s, n);
	return p + n;
}

/* "[04/Dec/2026:11:43:21 +0000]" for t, cached for the current second. */
static const char *access_time(time_t t)
{
	static __thread time_t cached = (time_t)-1;
	static __thread char ts[40];

	if (t != cached) {
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "[%d/%b/%Y:%H:%M:%S +0000]", &tm);
		cached = t;
	}
	return ts;
}

void log_access(const char *host, const char *line, int status, uint64_t bytes, uint64_t usec)
{
	/* host (64) + time (30) + escaped line (1024) + numbers (60) fit */
	char buf[1280], *p = buf;

	if (access_fd < 0)
		return;
	p = put_str(p, host, 64);
	p = put_str(p, " - - ", 5);
	p = put_str(p, access_time(time(NULL)), 40);
	p = put_str(p, " \"", 2);
	p += log_escape(p, 1024, line, strlen(line), 1); /* as nginx: \xHH */
	p = put_str(p, "\" ", 2);
	p = fmt_u64(p, status < 0 ? 0 : (uint64_t)status, 1);
	*p++ = ' ';
	p = fmt_u64(p, bytes, 1);
	*p++ = ' ';
	p = fmt_u64(p, usec / 1000000, 1);
	*p++ = '.';
	p = fmt_u64(p, usec % 1000000, 6);
	*p++ = '\n';
	if (write(access_fd, buf, (size_t)(p - buf)) < 0) {
		/* a full disk must not stop serving */
	}
}
