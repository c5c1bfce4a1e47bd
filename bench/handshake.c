/*
 * handshake.c - `ktls-bench handshake`: full handshakes per second per
 * server core, ktlsd against nginx, ECDSA P-256 and RSA-2048, TLS 1.2 and
 * 1.3.  Each connection is new: connect, full handshake (the client caches
 * nothing; nginx has tickets and its session cache off), one small GET with
 * "Connection: close", close.  Server CPU per handshake therefore includes
 * TCP accept/close and one tiny response, as wrk -H "Connection: close"
 * would.  Then the added cost of kTLS installation, timed in-process
 * around ktls_conn_offload() (on a kernel without kTLS that is the failed
 * attempt plus the fallback bookkeeping, and the row says so).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define HS_FILE_SIZE 1024

struct snap {
	pid_t pid;
	double cpu0, cpu1;
};

static void snap_start(void *arg)
{
	struct snap *s = arg;

	s->cpu0 = proc_cpu_s(s->pid);
}

static void snap_end(void *arg)
{
	struct snap *s = arg;

	s->cpu1 = proc_cpu_s(s->pid);
}

static void hs_row(struct bench *b, struct server *s, const char *srv, int rsa, int version,
		   const unsigned char *sha, struct row *r)
{
	struct snap sn = { .pid = s->pid };
	struct load l = {
		.port = s->port, .tls_on = 1, .version = version, .cafile = b->cert, .rsa = rsa,
		.path = "/hs", .size = HS_FILE_SIZE, .sha = sha, .seconds = b->seconds,
		.conns = b->conns < 4 ? b->conns : 4, .cpu = b->client_cpu, .close_each = 1,
		.on_start = snap_start, .on_end = snap_end, .arg = &sn,
	};
	struct load_result res;
	uint64_t log0, log1, lines0, lines1;

	access_log_bytes(s->access, &log0, &lines0);
	load_run(&l, &res);
	r->conns = l.conns;
	r->handshakes = res.requests;
	r->requests = res.requests;
	r->bytes = res.bytes;
	r->seconds = res.seconds;
	r->server_cpu_s = sn.cpu1 - sn.cpu0;
	r->p50_ms = res.p50_ms;
	r->p99_ms = res.p99_ms;
	snprintf(r->version, sizeof(r->version), "%s", res.version);
	snprintf(r->cipher, sizeof(r->cipher), "%s", res.cipher);
	if (r->seconds > 0)
		r->hs_per_s = (double)r->handshakes / r->seconds;
	if (r->server_cpu_s > 0)
		r->hs_per_core_s = (double)r->handshakes / r->server_cpu_s;
	if (r->handshakes)
		r->us_per_hs = r->server_cpu_s * 1e6 / (double)r->handshakes;
	/* the server must have logged each of those requests */
	for (double end = now_s() + 3; now_s() < end; usleep(20000)) {
		access_log_bytes(s->access, &log1, &lines1);
		if (lines1 - lines0 >= r->handshakes)
			break;
	}
	r->server_bytes = log1 - log0;
	if (res.error[0])
		snprintf(r->error, sizeof(r->error), "%s", res.error);
	else if (r->server_bytes != r->bytes)
		snprintf(r->error, sizeof(r->error), "client verified %llu bytes, %s logged %llu",
			 (unsigned long long)r->bytes, srv, (unsigned long long)r->server_bytes);
	else if (sn.cpu0 < 0 || sn.cpu1 < 0 || r->server_cpu_s <= 0)
		snprintf(r->error, sizeof(r->error), "no server CPU time measured (row too short?)");
}

/* ---- kTLS installation cost, in-process ---------------------------- */

struct iclient {
	int port, n;
	SSL_CTX *ctx;
	char err[200];
};

static void *iclient_main(void *arg)
{
	struct iclient *c = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	for (int i = 0; i < c->n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		SSL *ssl = SSL_new(c->ctx);
		char byte;

		if (fd < 0 || !ssl || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    !SSL_set_fd(ssl, fd) || !SSL_set1_host(ssl, "localhost") ||
		    SSL_connect(ssl) != 1 || SSL_read(ssl, &byte, 1) != 1) {
			snprintf(c->err, sizeof(c->err), "install client: connection %d failed", i);
			SSL_free(ssl);
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void install_row(struct bench *b, int rsa, struct row *r)
{
	int n = b->quick || b->emulated ? 30 : 300, lfd, port, done = 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	double *ins = calloc((size_t)n, sizeof(double)), *hs = calloc((size_t)n, sizeof(double));
	struct iclient ic = { .n = n };
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	pthread_t th;
	struct ktls_info info;

	r->conns = 1;
	snprintf(r->version, sizeof(r->version), "TLSv1.3");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ins || !hs || !ctx || lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 16) < 0 || getsockname(lfd, (struct sockaddr *)&a, &al) < 0 ||
	    ktls_ctx_load_cert_chain(ctx, b->cert, b->key) != 0 ||
	    ktls_ctx_set_num_tickets(ctx, 0) != 0) {
		snprintf(r->error, sizeof(r->error), "install: setup failed: %s",
			 ctx ? ktls_ctx_error(ctx) : strerror(errno));
		goto out;
	}
	port = ntohs(a.sin_port);
	ic.port = port;
	ic.ctx = client_ctx(b->cert, KTLS_TLS1_3, rsa, NULL, r->error, sizeof(r->error));
	if (!ic.ctx || pthread_create(&th, NULL, iclient_main, &ic) != 0)
		goto out;
	for (; done < n; done++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		ktls_conn *c = fd >= 0 ? ktls_conn_accept(ctx, fd) : NULL;
		double c0, c1, w0, w1;

		if (!c) {
			snprintf(r->error, sizeof(r->error), "install: accept: %s",
				 fd < 0 ? strerror(errno) : ktls_ctx_error(ctx));
			if (fd >= 0)
				close(fd);
			break;
		}
		c0 = thread_cpu_s();
		if (ktls_conn_handshake(c) != 0) {
			snprintf(r->error, sizeof(r->error), "install: handshake: %s", ktls_conn_error(c));
			ktls_conn_free(c);
			close(fd);
			break;
		}
		c1 = thread_cpu_s();
		w0 = now_s();
		if (ktls_conn_offload(c) != 0) {
			snprintf(r->error, sizeof(r->error), "install: offload: %s", ktls_conn_error(c));
			ktls_conn_free(c);
			close(fd);
			break;
		}
		w1 = now_s();
		hs[done] = (c1 - c0) * 1e6;
		ins[done] = (w1 - w0) * 1e6;
		if (done == 0 && ktls_conn_info(c, &info) == 0) {
			snprintf(r->cipher, sizeof(r->cipher), "%s", info.cipher);
			if (info.tx == KTLS_MODE_USER)
				snprintf(r->mode, sizeof(r->mode), "failed attempt");
			else
				snprintf(r->mode, sizeof(r->mode), "%s TX, %s RX",
					 info.tx == KTLS_MODE_HW ? "HW" : "SW",
					 info.rx == KTLS_MODE_USER ? "user" : info.rx == KTLS_MODE_HW ? "HW" : "SW");
			if (info.fallback_reason)
				snprintf(r->note, sizeof(r->note), "%s", info.fallback_reason);
		}
		if (ktls_conn_write(c, "x", 1) != 1) {
			snprintf(r->error, sizeof(r->error), "install: write: %s", ktls_conn_error(c));
			ktls_conn_free(c);
			close(fd);
			break;
		}
		ktls_conn_free(c);
		close(fd);
	}
	if (done < n)
		shutdown(lfd, SHUT_RDWR); /* let the client thread fail out */
	pthread_join(th, NULL);
	if (!r->error[0] && ic.err[0])
		snprintf(r->error, sizeof(r->error), "%s", ic.err);
	if (done == n) {
		qsort(ins, (size_t)n, sizeof(double), cmp_d);
		qsort(hs, (size_t)n, sizeof(double), cmp_d);
		r->handshakes = (uint64_t)n;
		r->install_us = ins[n / 2];
		r->us_per_hs = hs[n / 2];
		r->install_pct = r->us_per_hs > 0 ? r->install_us / r->us_per_hs * 100 : 0;
	}
out:
	SSL_CTX_free(ic.ctx);
	ktls_ctx_free(ctx);
	if (lfd >= 0)
		close(lfd);
	free(ins);
	free(hs);
}

int bench_handshake(struct bench *b)
{
	static const int versions[2] = { KTLS_TLS1_2, KTLS_TLS1_3 };
	char root[300], fpath[340], cert[300], key[300];
	unsigned char sha[32];
	int failed = 0, done = 0, total = 2 * (2 * 2 + 1);
	double t_start = now_s();
	/* like for like: where kTLS works, nginx installs keys as ktlsd does */
	int nginx_ktls = !b->ktls_reason[0];

	snprintf(root, sizeof(root), "%s/www", b->workdir);
	snprintf(fpath, sizeof(fpath), "%s/hs", root);
	if ((mkdir(root, 0755) < 0 && errno != EEXIST) ||
	    make_file(fpath, HS_FILE_SIZE, 99, sha) < 0) {
		fprintf(stderr, "ktls-bench: making %s: %s\n", fpath, strerror(errno));
		return -1;
	}
	for (int rsa = 0; rsa < 2; rsa++) {
		const char *ck = rsa ? "RSA-2048" : "P-256";
		struct bench bb = *b;

		if (certs_make(b, rsa, cert, key, sizeof(cert)) < 0)
			return -1;
		snprintf(bb.cert, sizeof(bb.cert), "%s", cert);
		snprintf(bb.key, sizeof(bb.key), "%s", key);
		for (int srv = 0; srv < 2; srv++) {
			struct server s;
			char name[48];
			const char *cfg = srv == 0 ? "ktlsd" : nginx_ktls ? "nginx-ktls" : "nginx-tls";
			int up;

			snprintf(name, sizeof(name), "hs-%s-%s", cfg, rsa ? "rsa" : "p256");
			up = srv == 0 ? ktlsd_start(&bb, &s, name, root, 1, cert, key)
				      : nginx_start(&bb, &s, name, root, 1, nginx_ktls, cert, key);
			for (int v = 0; v < 2; v++) {
				struct row *r = row_add(ROW_HANDSHAKE);
				char what[96];

				snprintf(r->config, sizeof(r->config), "%s", cfg);
				snprintf(r->certkind, sizeof(r->certkind), "%s", ck);
				if (srv == 0 && v == 1 && !ktlsd_has_tickets_opt(b))
					snprintf(r->note, sizeof(r->note),
						 "ktlsd has no --tickets option: it sends its default TLS 1.3 "
						 "session tickets (the client never uses them)");
				snprintf(what, sizeof(what), "handshake %s %s TLS 1.%d", cfg, ck, v ? 3 : 2);
				progress(b, done++, total, what, t_start);
				if (up < 0)
					snprintf(r->error, sizeof(r->error), "server did not start (log: %.180s)",
						 s.log);
				else
					hs_row(&bb, &s, cfg, rsa, versions[v], sha, r);
				if (r->error[0]) {
					failed++;
					fprintf(stderr, "ktls-bench: %s FAILED: %s\n", what, r->error);
				}
			}
			if (up == 0)
				server_stop(&s);
		}
		{
			struct row *r = row_add(ROW_INSTALL);
			char what[96];

			snprintf(r->config, sizeof(r->config), "ktls_conn_offload");
			snprintf(r->certkind, sizeof(r->certkind), "%s", ck);
			snprintf(what, sizeof(what), "kTLS installation cost, %s", ck);
			progress(b, done++, total, what, t_start);
			install_row(&bb, rsa, r);
			if (!r->error[0] && b->ktls_reason[0])
				snprintf(r->mode, sizeof(r->mode), "failed attempt");
			if (r->error[0]) {
				failed++;
				fprintf(stderr, "ktls-bench: %s FAILED: %s\n", what, r->error);
			}
		}
	}
	return failed ? -1 : 0;
}
