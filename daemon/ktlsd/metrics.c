/*
 * metrics.c - Prometheus text exposition (format 0.0.4) for ktlsd.
 *
 * The counters are process-wide relaxed atomics that every worker bumps;
 * the endpoint is one thread doing blocking accept/read/write with short
 * timeouts, one scrape at a time, so a slow scraper can never touch the
 * workers' rings.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_ctl.h"

#include "log.h"
#include "metrics.h"

#define NMODES 3

/* seconds; the last bucket, +Inf, is the count */
static const double hs_le[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS (sizeof(hs_le) / sizeof(hs_le[0]))

struct reason_slot {
	atomic_int ready;       /* name is written and final */
	char name[48];
	atomic_ullong n;
};

struct reasons {
	struct reason_slot s[METRICS_MAX_REASONS];
	atomic_ullong other;    /* past the bound */
	pthread_mutex_t mu;     /* only to claim a new slot */
};

static struct {
	atomic_ullong conns[NMODES][NMODES];
	atomic_ullong bytes[NMODES];
	atomic_ullong hs_ok, hs_sum_us;
	atomic_ullong hs_bucket[NBUCKETS]; /* not cumulative; summed on render */
	struct reasons fallback, hs_fail;
} M = {
	.fallback.mu = PTHREAD_MUTEX_INITIALIZER,
	.hs_fail.mu = PTHREAD_MUTEX_INITIALIZER,
};

/* KTLS_MODE_USER, _SW, _HW are 0, 1, 2: the array index */
static int mode_idx(int m)
{
	return m == KTLS_MODE_HW || m == KTLS_MODE_SW ? m : KTLS_MODE_USER;
}

static void inc(atomic_ullong *a, unsigned long long n)
{
	atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static unsigned long long get(atomic_ullong *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/*
 * The stable part of an error text: up to the first ':' or '(' (what
 * follows is detail such as errno text or an OpenSSL reason), characters a label
 * value can carry without escaping, no trailing blanks.
 */
static void normalise(const char *raw, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *p = raw ? raw : ""; *p && !strchr(":(", *p) && n + 1 < cap; p++)
		out[n++] = isalnum((unsigned char)*p) || strchr(" -_./+=", *p) ? *p : '_';
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	if (!n)
		snprintf(out, cap, "unknown");
}

static void reason_inc(struct reasons *r, const char *raw)
{
	char name[sizeof(r->s[0].name)];
	int i;

	normalise(raw, name, sizeof(name));
	for (i = 0; i < METRICS_MAX_REASONS; i++) {
		struct reason_slot *s = &r->s[i];

		if (!atomic_load_explicit(&s->ready, memory_order_acquire))
			break; /* slots fill in order: the rest are free */
		if (!strcmp(s->name, name)) {
			inc(&s->n, 1);
			return;
		}
	}
	pthread_mutex_lock(&r->mu);
	for (i = 0; i < METRICS_MAX_REASONS; i++) {
		struct reason_slot *s = &r->s[i];

		if (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
			memcpy(s->name, name, sizeof(name));
			atomic_store_explicit(&s->n, 1, memory_order_relaxed);
			atomic_store_explicit(&s->ready, 1, memory_order_release);
			break;
		}
		if (!strcmp(s->name, name)) { /* another thread just added it */
			inc(&s->n, 1);
			break;
		}
	}
	if (i == METRICS_MAX_REASONS)
		inc(&r->other, 1);
	pthread_mutex_unlock(&r->mu);
}

void metrics_conn(int tx, int rx)
{
	inc(&M.conns[mode_idx(tx)][mode_idx(rx)], 1);
}

void metrics_fallback(const char *reason)
{
	reason_inc(&M.fallback, reason);
}

void metrics_bytes(int tx, uint64_t n)
{
	inc(&M.bytes[mode_idx(tx)], n);
}

void metrics_handshake_ok(uint64_t usec)
{
	size_t b = 0;

	while (b < NBUCKETS && (double)usec / 1e6 > hs_le[b])
		b++;
	if (b < NBUCKETS)
		inc(&M.hs_bucket[b], 1);
	inc(&M.hs_sum_us, usec);
	inc(&M.hs_ok, 1); /* last: a scrape never sees _count below a bucket */
}

void metrics_handshake_failed(const char *reason)
{
	reason_inc(&M.hs_fail, reason);
}

static void render_reasons(FILE *f, struct reasons *r, const char *metric)
{
	for (int i = 0; i < METRICS_MAX_REASONS; i++) {
		struct reason_slot *s = &r->s[i];

		if (!atomic_load_explicit(&s->ready, memory_order_acquire))
			break;
		fprintf(f, "%s{reason=\"%s\"} %llu\n", metric, s->name, get(&s->n));
	}
	if (get(&r->other))
		fprintf(f, "%s{reason=\"other\"} %llu\n", metric, get(&r->other));
}

static void render_tls_stat(FILE *f)
{
	struct ktls_stat_counter *v = NULL;
	size_t n = 0;
	char err[160];

	fputs("# HELP ktls_kernel_tls_stat The kernel's /proc/net/tls_stat counters, as the running "
	      "kernel names them (TlsCurr* are gauges, the rest counters).\n"
	      "# TYPE ktls_kernel_tls_stat untyped\n",
	      f);
	if (ktls_stat_read(NULL, &v, &n, err, sizeof(err)) < 0) {
		fprintf(f, "# /proc/net/tls_stat unavailable: %s\n",
			errno == ENOENT ? "this kernel has no kTLS (CONFIG_TLS)" : err);
		return;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(f, "ktls_kernel_tls_stat{counter=\"%s\"} %llu\n", v[i].name, v[i].value);
	ktls_stat_free(v);
}

char *metrics_render(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	unsigned long long cum = 0;

	if (!f)
		return NULL;
	fputs("# HELP ktls_connections_total TLS connections after the handshake, by where each "
	      "direction is encrypted (user: OpenSSL in ktlsd; sw: kernel; hw: NIC).\n"
	      "# TYPE ktls_connections_total counter\n",
	      f);
	for (int t = 0; t < NMODES; t++)
		for (int r = 0; r < NMODES; r++)
			fprintf(f, "ktls_connections_total{tx=\"%s\",rx=\"%s\"} %llu\n",
				ktls_mode_name(t), ktls_mode_name(r),
				get(&M.conns[t][r]));
	fputs("# HELP ktls_fallback_total Connections left (partly) in userspace, by reason.\n"
	      "# TYPE ktls_fallback_total counter\n",
	      f);
	render_reasons(f, &M.fallback, "ktls_fallback_total");
	fputs("# HELP ktls_served_bytes_total Response body bytes sent, by TX mode.\n"
	      "# TYPE ktls_served_bytes_total counter\n",
	      f);
	for (int t = 0; t < NMODES; t++)
		fprintf(f, "ktls_served_bytes_total{tx=\"%s\"} %llu\n",
			ktls_mode_name(t), get(&M.bytes[t]));
	fprintf(f, "# HELP ktls_handshakes_total Completed TLS handshakes.\n"
		   "# TYPE ktls_handshakes_total counter\n"
		   "ktls_handshakes_total %llu\n", get(&M.hs_ok));
	fputs("# HELP ktls_handshake_failures_total Handshakes that failed or timed out, by reason.\n"
	      "# TYPE ktls_handshake_failures_total counter\n",
	      f);
	render_reasons(f, &M.hs_fail, "ktls_handshake_failures_total");
	fputs("# HELP ktls_handshake_duration_seconds From accept to handshake done.\n"
	      "# TYPE ktls_handshake_duration_seconds histogram\n",
	      f);
	{
		unsigned long long count = get(&M.hs_ok), sum = get(&M.hs_sum_us);

		for (size_t b = 0; b < NBUCKETS; b++) {
			cum += get(&M.hs_bucket[b]);
			fprintf(f, "ktls_handshake_duration_seconds_bucket{le=\"%g\"} %llu\n", hs_le[b],
				cum > count ? count : cum);
		}
		fprintf(f, "ktls_handshake_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
			   "ktls_handshake_duration_seconds_sum %.6f\n"
			   "ktls_handshake_duration_seconds_count %llu\n",
			count, (double)sum / 1e6, count);
	}
	render_tls_stat(f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- the endpoint ---------------------------------------------------------- */

static int mfd = -1;
static pthread_t mth;
static atomic_int mstop;

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the scraper went away or stalled past SO_SNDTIMEO */
		p += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, int status, const char *type, const char *body, size_t blen)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, status == 200 ? "OK" : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed" : "Bad Request",
			 type, blen);

	write_all(fd, hdr, (size_t)n);
	write_all(fd, body, blen);
}

static void serve_one(int fd)
{
	char req[4096];
	size_t got = 0;
	struct timeval tv = { 2, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);

		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	if (!strstr(req, "\r\n\r\n") && !strstr(req, "\n\n")) {
		reply(fd, 400, "text/plain", "bad request\n", 12);
		return;
	}
	if (strncmp(req, "GET ", 4)) {
		reply(fd, 405, "text/plain", "only GET /metrics\n", 18);
		return;
	}
	{
		const char *path = strchr(req, ' ') + 1;

		if (strncmp(path, "/metrics ", 9) && strncmp(path, "/metrics?", 9)) {
			reply(fd, 404, "text/plain", "try /metrics\n", 13);
			return;
		}
	}
	{
		size_t len = 0;
		char *body = metrics_render(&len);

		if (!body) {
			reply(fd, 400, "text/plain", "out of memory\n", 14);
			return;
		}
		reply(fd, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
		free(body);
	}
}

static void *metrics_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&mstop)) {
		int fd = accept4(mfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (atomic_load(&mstop))
				break;
			log_msg("metrics accept: %s", strerror(errno));
			usleep(100000); /* EMFILE and the like: back off, keep serving */
			continue;
		}
		serve_one(fd);
		close(fd);
	}
	return NULL;
}

int metrics_start(int lfd)
{
	int e;

	mfd = lfd;
	e = pthread_create(&mth, NULL, metrics_main, NULL);
	if (e) {
		log_msg("metrics thread: %s", strerror(e));
		return -1;
	}
	return 0;
}

void metrics_stop(void)
{
	if (mfd < 0)
		return;
	atomic_store(&mstop, 1);
	shutdown(mfd, SHUT_RDWR); /* a blocked accept returns EINVAL */
	pthread_join(mth, NULL);
	close(mfd);
	mfd = -1;
}
