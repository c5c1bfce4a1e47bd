/* log.c - daemon and access logs (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int access_fd = -1;

void log_msg(const char *fmt, ...)
{
	char buf[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf, sizeof(buf), "%s.%03ldZ ktlsd[%d]: ", ts, now.tv_nsec / 1000000,
		     (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
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
	char buf[700], ts[40];
	time_t t = time(NULL);
	struct tm tm;
	int n;

	if (access_fd < 0)
		return;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%d/%b/%Y:%H:%M:%S +0000", &tm);
	n = snprintf(buf, sizeof(buf), "%s - - [%s] \"%s\" %d %llu %llu.%06llu\n", host, ts,
		     line, status, (unsigned long long)bytes, (unsigned long long)(usec / 1000000),
		     (unsigned long long)(usec % 1000000));
	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;
	if (write(access_fd, buf, (size_t)n) < 0) {
		/* a full disk must not stop serving */
	}
}
