/* conn_test.c - helpers for the connection suites (see conn_test.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "conn_test.h"
#include "testutil.h"

long long ct_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int ct_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

ktls_ctx *ct_client_ctx(void)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	if (ctx && ktls_ctx_load_verify_locations(ctx, tu_cert("ca.pem"), NULL) != 0) {
		fprintf(stderr, "ct_client_ctx: %s\n", ktls_ctx_error(ctx));
		ktls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

ktls_ctx *ct_server_ctx(const char *name)
{
	char crt[64], key[64];
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);

	snprintf(crt, sizeof(crt), "%s.pem", name);
	snprintf(key, sizeof(key), "%s.key", name);
	if (ctx && ktls_ctx_load_cert_chain(ctx, tu_cert(crt), tu_cert(key)) != 0) {
		fprintf(stderr, "ct_server_ctx: %s\n", ktls_ctx_error(ctx));
		ktls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

int ct_wait(int fd, ssize_t want, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = want == KTLS_WANT_WRITE ? POLLOUT : POLLIN };
	long long left = deadline - ct_now_ms();

	if (left <= 0)
		return -1;
	return poll(&p, 1, (int)left) > 0 ? 0 : -1;
}

int ct_handshake(ktls_conn *c, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;
	int r;

	while ((r = ktls_conn_handshake(c)) == KTLS_WANT_READ || r == KTLS_WANT_WRITE)
		if (ct_wait(ktls_conn_fd(c), r, deadline))
			return -9;
	return r;
}

int ct_pump(ktls_conn *c, const unsigned char *out, size_t outlen, unsigned char *in,
	    size_t inlen, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;
	size_t sent = 0, got = 0;
	int fd = ktls_conn_fd(c), flushed = outlen == 0;

	ct_set_nonblock(fd, 1);
	while (!flushed || got < inlen) {
		short ev = 0;
		ssize_t r;

		if (!flushed) {
			/* A zero-length write flushes the staged record. */
			r = ktls_conn_write(c, out + sent, outlen - sent);
			if (r >= 0) {
				sent += (size_t)r;
				if (sent == outlen && r == 0)
					flushed = 1;
			} else if (r == KTLS_WANT_WRITE) {
				ev |= POLLOUT;
			} else if (r == KTLS_WANT_READ) {
				ev |= POLLIN;
			} else {
				fprintf(stderr, "ct_pump write: %s\n", ktls_conn_error(c));
				return -1;
			}
		}
		if (got < inlen) {
			r = ktls_conn_read(c, in + got, inlen - got);
			if (r > 0) {
				got += (size_t)r;
			} else if (r == KTLS_WANT_READ) {
				ev |= POLLIN;
			} else if (r == KTLS_WANT_WRITE) {
				ev |= POLLOUT;
			} else {
				fprintf(stderr, "ct_pump read after %zu/%zu: %zd %s\n", got, inlen, r,
					ktls_conn_error(c));
				return -1;
			}
		}
		if (ev) {
			struct pollfd p = { .fd = fd, .events = ev };
			long long left = deadline - ct_now_ms();
			if (left <= 0 || poll(&p, 1, (int)left) < 0) {
				fprintf(stderr, "ct_pump: timeout, sent %zu/%zu got %zu/%zu\n", sent,
					outlen, got, inlen);
				return -1;
			}
		}
	}
	ct_set_nonblock(fd, 0);
	return 0;
}

int ct_read_full(ktls_conn *c, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = ktls_conn_read(c, (char *)buf + got, len - got);
		if (r <= 0) {
			fprintf(stderr, "ct_read_full after %zu/%zu: %zd %s\n", got, len, r,
				ktls_conn_error(c));
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

int ct_write_full(ktls_conn *c, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = ktls_conn_write(c, (const char *)buf + done, len - done);
		if (r <= 0) {
			fprintf(stderr, "ct_write_full: %zd %s\n", r, ktls_conn_error(c));
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

ssize_t ct_read_eof(ktls_conn *c, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;
	char b[256];
	ssize_t r;

	while ((r = ktls_conn_read(c, b, sizeof(b))) == KTLS_WANT_READ || r == KTLS_WANT_WRITE)
		if (ct_wait(ktls_conn_fd(c), r, deadline))
			return -9;
	return r;
}

/* ---- pipes to and from a spawned peer ----------------------------------- */

static void *ct_pipe_writer(void *arg)
{
	struct ct_pipe *p = arg;

	while (p->done < p->len) {
		ssize_t r = write(p->fd, p->buf + p->done, p->len - p->done);
		if (r <= 0 && errno != EINTR)
			break;
		if (r > 0)
			p->done += (size_t)r;
	}
	if (p->close_after) {
		close(p->fd);
		p->fd = -1;
	}
	return NULL;
}

/* Reads until len bytes or EOF. */
static void *ct_pipe_reader(void *arg)
{
	struct ct_pipe *p = arg;

	while (p->done < p->len) {
		ssize_t r = read(p->fd, p->buf + p->done, p->len - p->done);
		if (r == 0 || (r < 0 && errno != EINTR))
			break;
		if (r > 0)
			p->done += (size_t)r;
	}
	return NULL;
}

int ct_pipe_start(struct ct_pipe *p, int writer)
{
	signal(SIGPIPE, SIG_IGN);
	return pthread_create(&p->th, NULL, writer ? ct_pipe_writer : ct_pipe_reader, p);
}

int ct_pipe_join(struct ct_pipe *p, int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(p->th, NULL, &ts) == 0 ? 0 : -1;
}

int ct_connect_retry(int port, int timeout_ms)
{
	long long deadline = ct_now_ms() + timeout_ms;

	do {
		int fd = tu_connect(port);
		if (fd >= 0)
			return fd;
		usleep(20000);
	} while (ct_now_ms() < deadline);
	return -1;
}

const char *ct_python(void)
{
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

struct ct_cell ct_cell(int v, int cipher)
{
	static const struct ct_cell t13[] = {
		{ KTLS_TLS1_3, "TLS_AES_128_GCM_SHA256", "AES-128-GCM" },
		{ KTLS_TLS1_3, "TLS_AES_256_GCM_SHA384", "AES-256-GCM" },
		{ KTLS_TLS1_3, "TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305" },
	};
	static const struct ct_cell t12[] = {
		{ KTLS_TLS1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", "AES-128-GCM" },
		{ KTLS_TLS1_2, "ECDHE-ECDSA-AES256-GCM-SHA384", "AES-256-GCM" },
		{ KTLS_TLS1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", "CHACHA20-POLY1305" },
	};
	return v == KTLS_TLS1_3 ? t13[cipher] : t12[cipher];
}

void ct_gnutls_priority(const struct ct_cell *c, char *out, size_t cap)
{
	snprintf(out, cap, "NORMAL:-VERS-ALL:+VERS-TLS1.%d:-CIPHER-ALL:+%s",
		 c->version == KTLS_TLS1_3 ? 3 : 2, c->gnutls);
}

int ct_pin_ctx(ktls_ctx *ctx, const struct ct_cell *c)
{
	if (c->version == KTLS_TLS1_3)
		return ktls_ctx_set_min_version(ctx, KTLS_TLS1_3) ||
		       ktls_ctx_set_ciphersuites(ctx, c->openssl);
	return ktls_ctx_set_max_version(ctx, KTLS_TLS1_2) || ktls_ctx_set_ciphers(ctx, c->openssl);
}

pid_t ct_peer = -1;

void ct_suite_init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

void ct_suite_fini(void)
{
	if (ct_peer > 0)
		tu_stop(ct_peer, 2000);
	ct_peer = -1;
}

int ct_s_client(ktls_ctx *ctx, const char *const extra[], char *out, size_t cap,
		void (*serve)(ktls_conn *c, void *arg), void *arg, char *err, size_t errlen)
{
	int port = 0, l = tu_listen(&port), from = -1, fd = -1, hs = -2, n = 0;
	struct pollfd p = { .events = POLLIN };
	char target[32], *argv[40];
	struct ct_pipe pout = { .fd = -1 };
	ktls_conn *c = NULL;

	err[0] = '\0';
	out[0] = '\0';
	if (l < 0)
		return -2;
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	argv[n++] = "openssl";
	argv[n++] = "s_client";
	argv[n++] = "-connect";
	argv[n++] = target;
	argv[n++] = "-CAfile";
	argv[n++] = (char *)tu_cert("ca.pem");
	argv[n++] = "-ign_eof";
	for (int i = 0; extra[i] && n < 39; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	ct_peer = tu_spawn(argv, NULL, &from);
	if (ct_peer <= 0) {
		fprintf(stderr, "ct_s_client: cannot start openssl s_client\n");
		goto out;
	}
	pout = (struct ct_pipe){ .fd = from, .buf = (unsigned char *)out, .len = cap - 1 };
	if (ct_pipe_start(&pout, 0) != 0)
		goto out;
	p.fd = l;
	if (poll(&p, 1, 10000) != 1 || (fd = accept(l, NULL, NULL)) < 0) {
		fprintf(stderr, "ct_s_client: s_client never connected\n");
		goto join;
	}
	c = ktls_conn_accept(ctx, fd);
	if (!c) {
		snprintf(err, errlen, "%s", ktls_ctx_error(ctx));
		hs = -1;
		goto join;
	}
	hs = ktls_conn_handshake(c);
	if (hs != 0) {
		snprintf(err, errlen, "%s", ktls_conn_error(c));
	} else {
		if (serve)
			serve(c, arg);
		ktls_conn_shutdown(c);
	}
	ktls_conn_free(c);
	close(fd);
	fd = -1;
join:
	if (ct_pipe_join(&pout, 20000) != 0) {
		fprintf(stderr, "ct_s_client: s_client did not exit\n");
		hs = -2;
	} else {
		out[pout.done] = '\0';
	}
out:
	if (fd >= 0)
		close(fd);
	if (from >= 0)
		close(from);
	close(l);
	return hs;
}
