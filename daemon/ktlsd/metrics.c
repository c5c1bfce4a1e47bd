/*
 * metrics.c - Prometheus text exposition (format 0.0.4) for ktlsd.
 *
 * The counters are process-wide relaxed atomics that every worker bumps;
 * the endpoint is one thread of its own polling its clients, so a slow
 * scraper can never touch the workers' rings.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_ctl.h"

#include "clock.h"
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
	struct reasons fallback, hs_fail, refused;
} M = {
	.fallback.mu = PTHREAD_MUTEX_INITIALIZER,
	.hs_fail.mu = PTHREAD_MUTEX_INITIALIZER,
	.refused.mu = PTHREAD_MUTEX_INITIALIZER,
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

void metrics_refused(const char *reason)
{
	reason_inc(&M.refused, reason);
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
	fputs("# HELP ktls_connections_refused_total Connections reset at accept, by the limit "
	      "they hit.\n"
	      "# TYPE ktls_connections_refused_total counter\n",
	      f);
	render_reasons(f, &M.refused, "ktls_connections_refused_total");
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

/*
 * One thread, but never one client at a time: a scraper that trickles its
 * request (or reads the answer slowly) would otherwise hold the endpoint
 * for as long as it keeps bytes coming.  Each client gets MCLIENT_MS from
 * accept for the whole exchange, request and response together; up to
 * MCLIENTS are served side by side with poll(2).
 */
#define MCLIENTS  64
#define MCLIENT_MS 2000

struct mclient {
	int fd;                 /* -1: free */
	uint64_t deadline;      /* ms, CLOCK_MONOTONIC */
	char req[4096];
	size_t got;
	char *out;              /* the response, once the request is complete */
	size_t outlen, outoff;
};

static int mfd = -1;
static pthread_t mth;
static atomic_int mstop;
static struct mclient mcl[MCLIENTS];

static void mclient_end(struct mclient *m)
{
	close(m->fd);
	free(m->out);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

static void respond(struct mclient *m, int status, const char *type, const char *body, size_t blen)
{
	const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found"
				: status == 405 ? "Method Not Allowed" : status == 503 ? "Service Unavailable"
				: "Bad Request";
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f) {
		mclient_end(m);
		return;
	}
	fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n\r\n", status, reason, type, blen);
	fwrite(body, 1, blen, f);
	if (fclose(f) != 0) {
		free(out);
		mclient_end(m);
		return;
	}
	m->out = out;
	m->outlen = len;
}

/* The request is complete (or cannot be): decide the response. */
static void answer(struct mclient *m)
{
	const char *path;

	if (!strstr(m->req, "\r\n\r\n") && !strstr(m->req, "\n\n")) {
		respond(m, 400, "text/plain", "bad request\n", 12);
		return;
	}
	if (strncmp(m->req, "GET ", 4)) {
		respond(m, 405, "text/plain", "only GET /metrics\n", 18);
		return;
	}
	path = m->req + 4;
	if (strncmp(path, "/metrics ", 9) && strncmp(path, "/metrics?", 9)) {
		respond(m, 404, "text/plain", "try /metrics\n", 13);
		return;
	}
	{
		size_t len = 0;
		char *body = metrics_render(&len);

		if (!body) {
			respond(m, 503, "text/plain", "out of memory\n", 14);
			return;
		}
		respond(m, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
		free(body);
	}
}

static void on_readable(struct mclient *m)
{
	ssize_t r = recv(m->fd, m->req + m->got, sizeof(m->req) - 1 - m->got, MSG_DONTWAIT);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		mclient_end(m);
		return;
	}
	m->got += (size_t)r;
	m->req[m->got] = '\0';
	if (strstr(m->req, "\r\n\r\n") || strstr(m->req, "\n\n") || m->got == sizeof(m->req) - 1)
		answer(m);
}

static void on_writable(struct mclient *m)
{
	ssize_t w = send(m->fd, m->out + m->outoff, m->outlen - m->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (w <= 0) {
		mclient_end(m);
		return;
	}
	m->outoff += (size_t)w;
	if (m->outoff == m->outlen) {
		shutdown(m->fd, SHUT_WR);
		mclient_end(m);
	}
}

static void accept_one(uint64_t now)
{
	int fd = accept4(mfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN && !atomic_load(&mstop)) {
			log_msg("metrics accept: %s", strerror(errno));
			usleep(100000); /* EMFILE and the like: back off, keep serving */
		}
		return;
	}
	for (int i = 0; i < MCLIENTS; i++)
		if (mcl[i].fd < 0) {
			mcl[i].fd = fd;
			mcl[i].deadline = now + MCLIENT_MS;
			return;
		}
	close(fd); /* not reached: the listener is polled only with a free slot */
}

static void *metrics_main(void *arg)
{
	struct pollfd pf[MCLIENTS + 1];
	int who[MCLIENTS + 1];

	(void)arg;
	for (int i = 0; i < MCLIENTS; i++)
		mcl[i].fd = -1;
	while (!atomic_load(&mstop)) {
		uint64_t now = now_ms(), next = now + 1000;
		int n = 0, nfree = 0, r;

		for (int i = 0; i < MCLIENTS; i++) {
			struct mclient *m = &mcl[i];

			if (m->fd < 0) {
				nfree++;
				continue;
			}
			if (now >= m->deadline) {
				mclient_end(m); /* too slow, whichever way */
				nfree++;
				continue;
			}
			if (m->deadline < next)
				next = m->deadline;
			pf[n] = (struct pollfd){ .fd = m->fd, .events = m->out ? POLLOUT : POLLIN };
			who[n++] = i;
		}
		if (nfree) {
			pf[n] = (struct pollfd){ .fd = mfd, .events = POLLIN };
			who[n++] = -1;
		}
		r = poll(pf, (nfds_t)n, (int)(next - now));
		if (r < 0 && errno != EINTR) {
			log_msg("metrics poll: %s", strerror(errno));
			break;
		}
		for (int k = 0; r > 0 && k < n; k++) {
			if (!pf[k].revents)
				continue;
			if (who[k] < 0)
				accept_one(now);
			else if (mcl[who[k]].out)
				on_writable(&mcl[who[k]]);
			else
				on_readable(&mcl[who[k]]);
		}
	}
	for (int i = 0; i < MCLIENTS; i++)
		if (mcl[i].fd >= 0)
			mclient_end(&mcl[i]);
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
