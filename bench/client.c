/*
 * client.c - the load client: N threads, one connection each (or a new
 * connection per request in handshake mode), HTTP/1.1 GETs over plain TCP
 * or OpenSSL with one TLS version and one suite, verifying every response
 * (status 200, Content-Length equal to the file's size, no stray bytes) and
 * the SHA-256 of a sample of bodies, so a broken server cannot score.
 * OpenSSL directly, not libktls: the servers under test meet an independent
 * peer.  Threads are pinned away from the server's CPU.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "bench.h"

#define BODY_BUF (256 * 1024)
#define SAMPLE_EVERY 16

struct cconn {
	int fd;
	SSL *ssl;
};

struct worker {
	const struct load *l;
	SSL_CTX *ctx;
	pthread_barrier_t *bar;
	const volatile double *deadline;
	pthread_t th;
	uint64_t bytes, reqs, sampled;
	double *lat;
	size_t nlat, caplat;
	char err[200];
	char version[16], cipher[64];
	unsigned char *buf;
};

static void ssl_err(char *out, size_t cap, const char *what, SSL *ssl, int rc)
{
	unsigned long e = ERR_get_error();
	int se = ssl ? SSL_get_error(ssl, rc) : 0;

	if (e)
		snprintf(out, cap, "%s: %s", what, ERR_reason_error_string(e));
	else if (se == SSL_ERROR_SYSCALL || se == SSL_ERROR_ZERO_RETURN)
		snprintf(out, cap, "%s: %s", what, errno ? strerror(errno) : "connection closed by server");
	else
		snprintf(out, cap, "%s: SSL error %d", what, se);
	ERR_clear_error();
}

SSL_CTX *client_ctx(const char *cafile, int version, int rsa, const char *cipher12, char *err,
		    size_t cap)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	int v = version == KTLS_TLS1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;

	if (!c || !SSL_CTX_set_min_proto_version(c, v) || !SSL_CTX_set_max_proto_version(c, v) ||
	    SSL_CTX_load_verify_locations(c, cafile, NULL) != 1 ||
	    !SSL_CTX_set_ciphersuites(c, "TLS_AES_256_GCM_SHA384") ||
	    !SSL_CTX_set_cipher_list(c, cipher12 ? cipher12
						 : rsa ? "ECDHE-RSA-AES256-GCM-SHA384"
						       : "ECDHE-ECDSA-AES256-GCM-SHA384")) {
		ssl_err(err, cap, "client SSL_CTX", NULL, 0);
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	/* every handshake full: nothing cached, nothing offered back */
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
	return c;
}

static int c_open(struct worker *w, struct cconn *c)
{
	const struct load *l = w->l;
	const char *host = l->host ? l->host : "127.0.0.1";
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)l->port) };
	int one = 1, rc;

	c->ssl = NULL;
	c->fd = -1;
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		snprintf(w->err, sizeof(w->err), "bad server address %s", host);
		return -1;
	}
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(w->err, sizeof(w->err), "connect %s:%d: %s", host, l->port, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!l->tls_on)
		return 0;
	c->ssl = SSL_new(w->ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || !SSL_set_tlsext_host_name(c->ssl, "localhost") ||
	    !SSL_set1_host(c->ssl, "localhost")) {
		ssl_err(w->err, sizeof(w->err), "SSL_new", NULL, 0);
		return -1;
	}
	rc = SSL_connect(c->ssl);
	if (rc != 1) {
		long vr = SSL_get_verify_result(c->ssl);

		if (vr != X509_V_OK)
			snprintf(w->err, sizeof(w->err), "handshake: certificate: %s",
				 X509_verify_cert_error_string(vr));
		else
			ssl_err(w->err, sizeof(w->err), "handshake", c->ssl, rc);
		return -1;
	}
	if (!w->version[0]) {
		snprintf(w->version, sizeof(w->version), "%s", SSL_get_version(c->ssl));
		snprintf(w->cipher, sizeof(w->cipher), "%s", SSL_get_cipher_name(c->ssl));
	}
	return 0;
}

static void c_close(struct cconn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* our close_notify; we do not wait for theirs */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* >0 bytes, 0 clean end, -1 error (in w->err). */
static ssize_t c_read(struct worker *w, struct cconn *c, void *buf, size_t n)
{
	if (c->ssl) {
		int rc = SSL_read(c->ssl, buf, (int)(n > 1 << 30 ? 1 << 30 : n));

		if (rc > 0)
			return rc;
		if (SSL_get_error(c->ssl, rc) == SSL_ERROR_ZERO_RETURN)
			return 0;
		errno = 0;
		ssl_err(w->err, sizeof(w->err), "read", c->ssl, rc);
		return -1;
	}
	for (;;) {
		ssize_t r = read(c->fd, buf, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			snprintf(w->err, sizeof(w->err), "read: %s", strerror(errno));
		return r;
	}
}

static int c_write(struct worker *w, struct cconn *c, const char *buf, size_t n)
{
	while (n) {
		ssize_t r = c->ssl ? SSL_write(c->ssl, buf, (int)n) : write(c->fd, buf, n);

		if (r <= 0) {
			if (c->ssl)
				ssl_err(w->err, sizeof(w->err), "write", c->ssl, (int)r);
			else
				snprintf(w->err, sizeof(w->err), "write: %s", strerror(errno));
			return -1;
		}
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Content-Length from a header block; -1 when absent or malformed. */
static long long content_length(const char *h, size_t len)
{
	const char *p = h, *end = h + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			break;
		if ((size_t)(nl - p) > 15 && !strncasecmp(p, "Content-Length:", 15)) {
			char *e;
			long long v = strtoll(p + 15, &e, 10);

			return e == p + 15 || v < 0 ? -1 : v;
		}
		p = nl + 1;
	}
	return -1;
}

/* One GET, fully read and checked. */
static int get(struct worker *w, struct cconn *c, int sample, int close_after)
{
	const struct load *l = w->l;
	char req[256], *hend = NULL;
	size_t have = 0, body_have, want = l->size, got;
	unsigned char md[32];
	EVP_MD_CTX *m = NULL;
	double t0 = now_s();
	long long cl;
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", l->path,
			 close_after ? "Connection: close\r\n" : "");

	if (c_write(w, c, req, (size_t)n) < 0)
		return -1;
	/* header block: read up to 16 KiB until the blank line */
	while (!hend) {
		ssize_t r;

		if (have >= 16384) {
			snprintf(w->err, sizeof(w->err), "response header over 16 KiB");
			return -1;
		}
		r = c_read(w, c, w->buf + have, 16384 - have);
		if (r <= 0) {
			if (r == 0)
				snprintf(w->err, sizeof(w->err), "server closed before a response");
			return -1;
		}
		have += (size_t)r;
		hend = memmem(w->buf, have, "\r\n\r\n", 4);
	}
	if (strncmp((char *)w->buf, "HTTP/1.1 200 ", 13) != 0) {
		snprintf(w->err, sizeof(w->err), "status line \"%.40s\", not 200", (char *)w->buf);
		return -1;
	}
	cl = content_length((char *)w->buf, (size_t)(hend - (char *)w->buf) + 2);
	if (cl != (long long)want) {
		snprintf(w->err, sizeof(w->err), "Content-Length %lld, file is %zu bytes", cl, want);
		return -1;
	}
	body_have = have - (size_t)(hend + 4 - (char *)w->buf);
	if (body_have > want) {
		snprintf(w->err, sizeof(w->err), "%zu bytes beyond Content-Length", body_have - want);
		return -1;
	}
	if (sample) {
		m = EVP_MD_CTX_new();
		if (!m || !EVP_DigestInit_ex(m, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(m, hend + 4, body_have)) {
			snprintf(w->err, sizeof(w->err), "SHA-256 init failed");
			EVP_MD_CTX_free(m);
			return -1;
		}
	}
	got = body_have;
	while (got < want) {
		size_t ask = want - got < BODY_BUF ? want - got : BODY_BUF;
		ssize_t r = c_read(w, c, w->buf, ask);

		if (r <= 0) {
			if (r == 0)
				snprintf(w->err, sizeof(w->err), "server ended the body at %zu of %zu bytes",
					 got, want);
			EVP_MD_CTX_free(m);
			return -1;
		}
		if (m)
			EVP_DigestUpdate(m, w->buf, (size_t)r);
		got += (size_t)r;
	}
	if (m) {
		int ok = EVP_DigestFinal_ex(m, md, NULL) && !memcmp(md, l->sha, 32);

		EVP_MD_CTX_free(m);
		if (!ok) {
			snprintf(w->err, sizeof(w->err), "body SHA-256 differs from the file's");
			return -1;
		}
		w->sampled++;
	}
	w->bytes += want;
	w->reqs++;
	if (w->nlat == w->caplat) {
		size_t nc = w->caplat ? w->caplat * 2 : 4096;
		double *nl = realloc(w->lat, nc * sizeof(*nl));

		if (!nl) {
			snprintf(w->err, sizeof(w->err), "out of memory");
			return -1;
		}
		w->lat = nl;
		w->caplat = nc;
	}
	w->lat[w->nlat++] = now_s() - t0;
	return 0;
}

/* The ktlsd-nic row: this thread's sockets live in the client's namespace. */
static int enter_netns(struct worker *w)
{
	int fd, rc;

	if (!w->l->netns)
		return 0;
	fd = open(w->l->netns, O_RDONLY | O_CLOEXEC);
	rc = fd < 0 ? -1 : setns(fd, CLONE_NEWNET);
	if (rc < 0)
		snprintf(w->err, sizeof(w->err), "entering network namespace %s: %s", w->l->netns,
			 strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct cconn c = { .fd = -1 };
	int ok = enter_netns(w) == 0;

	if (w->l->count_conns) {
		pthread_barrier_wait(w->bar);
		pthread_barrier_wait(w->bar);
		for (int i = 0; ok && i < w->l->count_conns; i++) {
			ok = c_open(w, &c) == 0;
			for (int j = 0; ok && j < w->l->count_reqs; j++)
				ok = get(w, &c, 0, j == w->l->count_reqs - 1) == 0;
			c_close(&c);
		}
		return NULL;
	}
	if (ok && !w->l->close_each && c_open(w, &c) < 0)
		ok = 0;
	pthread_barrier_wait(w->bar); /* all connected */
	pthread_barrier_wait(w->bar); /* clock started */
	while (ok && now_s() < *w->deadline) {
		if (w->l->close_each) {
			if (c_open(w, &c) < 0 || get(w, &c, w->reqs % SAMPLE_EVERY == 0, 1) < 0)
				ok = 0;
			c_close(&c);
		} else if (get(w, &c, w->reqs % SAMPLE_EVERY == 0, 0) < 0) {
			ok = 0;
		}
	}
	c_close(&c);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int load_run(const struct load *l, struct load_result *r)
{
	struct worker *w = calloc((size_t)l->conns, sizeof(*w));
	pthread_barrier_t bar;
	volatile double deadline = 0;
	SSL_CTX *ctx = NULL;
	double t0;
	size_t nlat = 0;
	double *all;
	int started = 0;

	memset(r, 0, sizeof(*r));
	if (!w) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	if (l->tls_on && !(ctx = client_ctx(l->cafile, l->version, l->rsa, l->cipher12, r->error, sizeof(r->error)))) {
		free(w);
		return -1;
	}
	pthread_barrier_init(&bar, NULL, (unsigned)l->conns + 1);
	for (int i = 0; i < l->conns; i++) {
		w[i].l = l;
		w[i].ctx = ctx;
		w[i].bar = &bar;
		w[i].deadline = &deadline;
		w[i].buf = malloc(BODY_BUF > 16384 ? BODY_BUF : 16384);
		if (!w[i].buf || pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
			/* cannot un-create a barrier party: fail the whole run loudly */
			fprintf(stderr, "ktls-bench: cannot start client thread %d\n", i);
			exit(1);
		}
		if (l->cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(l->cpu, &set);
			pthread_setaffinity_np(w[i].th, sizeof(set), &set);
		}
		started++;
	}
	pthread_barrier_wait(&bar);
	if (l->on_start)
		l->on_start(l->arg);
	t0 = now_s();
	deadline = t0 + l->seconds;
	pthread_barrier_wait(&bar);
	for (int i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	r->seconds = now_s() - t0;
	if (l->on_end)
		l->on_end(l->arg);
	for (int i = 0; i < started; i++) {
		r->bytes += w[i].bytes;
		r->requests += w[i].reqs;
		r->sampled += w[i].sampled;
		nlat += w[i].nlat;
		if (w[i].err[0] && !r->error[0])
			snprintf(r->error, sizeof(r->error), "connection %d: %s", i, w[i].err);
		if (w[i].version[0] && !r->version[0]) {
			snprintf(r->version, sizeof(r->version), "%s", w[i].version);
			snprintf(r->cipher, sizeof(r->cipher), "%s", w[i].cipher);
		}
	}
	all = nlat ? malloc(nlat * sizeof(*all)) : NULL;
	if (all) {
		size_t k = 0;

		for (int i = 0; i < started; i++) {
			memcpy(all + k, w[i].lat, w[i].nlat * sizeof(*all));
			k += w[i].nlat;
		}
		qsort(all, nlat, sizeof(*all), cmp_d);
		r->p50_ms = all[nlat / 2] * 1e3;
		r->p99_ms = all[nlat * 99 / 100 < nlat ? nlat * 99 / 100 : nlat - 1] * 1e3;
		free(all);
	}
	for (int i = 0; i < started; i++) {
		free(w[i].lat);
		free(w[i].buf);
	}
	pthread_barrier_destroy(&bar);
	SSL_CTX_free(ctx);
	free(w);
	if (!r->error[0] && l->count_conns &&
	    r->requests != (uint64_t)l->conns * (uint64_t)(l->count_conns * l->count_reqs))
		snprintf(r->error, sizeof(r->error), "%llu of %d requests completed",
			 (unsigned long long)r->requests, l->conns * l->count_conns * l->count_reqs);
	if (!r->error[0] && r->requests == 0)
		snprintf(r->error, sizeof(r->error), "no request completed in %.1f s", l->seconds);
	return r->error[0] ? -1 : 0;
}
