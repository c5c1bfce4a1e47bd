/* log.c - daemon and access logs (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

void log_msg(const char *fmt, ...)
{
	char buf[1024], raw[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf, sizeof(buf), "%s.%03ldZ ktlsd[%d]: ", ts, now.tv_nsec / 1000000,
		     (int)getpid());
	va_start(ap, fmt);
	m = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* peers' bytes (request lines, certificate names) reach this text */
	n += (int)log_escape(buf + n, sizeof(buf) - (size_t)n - 1, raw,
			     m < 0 ? 0 : m < (int)sizeof(raw) ? (size_t)m : sizeof(raw) - 1, 0);
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void log_access_fd(int fd)
{
	access_fd = fd;
}

void log_access(const char *host, const char *line, int status, uint64_t bytes, uint64_t usec)
{
	char buf[1400], ts[40], eline[1024];
	time_t t = time(NULL);
	struct tm tm;
	int n;

	if (access_fd < 0)
		return;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%d/%b/%Y:%H:%M:%S +0000", &tm);
	log_escape(eline, sizeof(eline), line, strlen(line), 1); /* as nginx: \xHH */
	n = snprintf(buf, sizeof(buf), "%s - - [%s] \"%s\" %d %llu %llu.%06llu\n", host, ts,
		     eline, status, (unsigned long long)bytes, (unsigned long long)(usec / 1000000),
		     (unsigned long long)(usec % 1000000));
	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;
	if (write(access_fd, buf, (size_t)n) < 0) {
		/* a full disk must not stop serving */
	}
}
