/* offload_peer.c - an OpenSSL peer in a thread and our side (see offload_peer.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <criterion/criterion.h>

#include "ktls.h"
#include "offload_peer.h"
#include "testutil.h"

const struct suite suites[6] = {
	{ KTLS_TLS1_3, "TLS_AES_128_GCM_SHA256", 51 },
	{ KTLS_TLS1_3, "TLS_AES_256_GCM_SHA384", 52 },
	{ KTLS_TLS1_3, "TLS_CHACHA20_POLY1305_SHA256", 54 },
	{ KTLS_TLS1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", 51 },
	{ KTLS_TLS1_2, "ECDHE-ECDSA-AES256-GCM-SHA384", 52 },
	{ KTLS_TLS1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", 54 },
};

static void peer_fail(struct peer *p, SSL *ssl, int r, const char *what)
{
	char e[160] = "";
	unsigned long code = ERR_get_error();

	if (code)
		ERR_error_string_n(code, e, sizeof(e));
	snprintf(p->err, sizeof(p->err), "%s: ssl_error %d %s", what, ssl ? SSL_get_error(ssl, r) : 0, e);
	ERR_clear_error();
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	SSL_CTX *ctx = SSL_CTX_new(p->server ? TLS_server_method() : TLS_client_method());
	unsigned char *buf = malloc(65536);
	SSL *ssl = NULL;
	int r;

	if (!ctx || !buf)
		goto out;
	SSL_CTX_set_min_proto_version(ctx, p->s.version);
	SSL_CTX_set_max_proto_version(ctx, p->s.version);
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_KTLS);
	if (p->s.version == KTLS_TLS1_3)
		SSL_CTX_set_ciphersuites(ctx, p->s.name);
	else
		SSL_CTX_set_cipher_list(ctx, p->s.name);
	if (p->server) {
		SSL_CTX_use_certificate_chain_file(ctx, tu_cert("server-ec.pem"));
		SSL_CTX_use_PrivateKey_file(ctx, tu_cert("server-ec.key"), SSL_FILETYPE_PEM);
		SSL_CTX_set_num_tickets(ctx, (size_t)p->tickets);
	} else if (p->mfl) {
		SSL_CTX_set_tlsext_max_fragment_length(ctx, TLSEXT_max_fragment_length_1024);
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, p->fd);
	r = p->server ? SSL_accept(ssl) : SSL_connect(ssl);
	if (r != 1) {
		peer_fail(p, ssl, r, "peer handshake");
		goto out;
	}
	p->hs_ok = 1;
	if (p->first && SSL_write(ssl, p->first, (int)strlen(p->first)) <= 0) {
		peer_fail(p, ssl, -1, "peer first write");
		goto out;
	}
	while (!p->handshake_only) {
		r = SSL_read(ssl, buf, 65536);
		if (r <= 0) {
			if (SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN) {
				p->got_close_notify = 1;
				SSL_shutdown(ssl);
			} else {
				peer_fail(p, ssl, r, "peer read");
			}
			break;
		}
		if (p->keyupdate_at && p->echoed >= p->keyupdate_at && !p->keyupdates_sent) {
			if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
				peer_fail(p, ssl, 0, "peer key update");
				break;
			}
			p->keyupdates_sent++;
		}
		if (SSL_write(ssl, buf, r) != r) {
			peer_fail(p, ssl, -1, "peer write");
			break;
		}
		p->echoed += (size_t)r;
	}
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	free(buf);
	return NULL;
}

void peer_start(struct peer *p)
{
	if (pthread_create(&p->th, NULL, peer_main, p) != 0)
		abort();
}

void peer_join(struct peer *p)
{
	pthread_join(p->th, NULL);
}

int ours_open(struct ours *o, int role, const struct suite *s, int tickets, int fd,
	      void (*before_handshake)(ktls_conn *))
{
	memset(o, 0, sizeof(*o));
	o->ctx = ktls_ctx_new(role);
	if (!o->ctx)
		return snprintf(o->err, sizeof(o->err), "ktls_ctx_new failed"), -1;
	if ((role == KTLS_SERVER
		     ? ktls_ctx_load_cert_chain(o->ctx, tu_cert("server-ec.pem"), tu_cert("server-ec.key")) ||
			       ktls_ctx_set_num_tickets(o->ctx, (unsigned)tickets)
		     : ktls_ctx_load_verify_locations(o->ctx, tu_cert("ca.pem"), NULL)) ||
	    ktls_ctx_set_min_version(o->ctx, s->version) || ktls_ctx_set_max_version(o->ctx, s->version) ||
	    (s->version == KTLS_TLS1_3 ? ktls_ctx_set_ciphersuites(o->ctx, s->name)
				       : ktls_ctx_set_ciphers(o->ctx, s->name))) {
		snprintf(o->err, sizeof(o->err), "ctx: %s", ktls_ctx_error(o->ctx));
		return -1;
	}
	o->c = ktls_conn_new(o->ctx, fd, role == KTLS_SERVER ? NULL : "localhost");
	if (!o->c)
		return snprintf(o->err, sizeof(o->err), "conn: %s", ktls_ctx_error(o->ctx)), -1;
	if (before_handshake)
		before_handshake(o->c);
	if (ktls_conn_handshake(o->c) != 0)
		return snprintf(o->err, sizeof(o->err), "handshake: %s", ktls_conn_error(o->c)), -1;
	return 0;
}

void ours_close(struct ours *o)
{
	ktls_conn_free(o->c);
	ktls_ctx_free(o->ctx);
}

int echo_check(ktls_conn *c, size_t total, size_t chunk, char *why, size_t wlen)
{
	return echo_check_read(c, total, chunk, ktls_conn_read, why, wlen);
}

int echo_check_read(ktls_conn *c, size_t total, size_t chunk,
		    ssize_t (*rd)(ktls_conn *, void *, size_t), char *why, size_t wlen)
{
	unsigned char *out = malloc(chunk), *in = malloc(chunk);
	size_t done = 0;
	unsigned seed = 1;
	int ret = -1;

	while (done < total) {
		size_t n = total - done < chunk ? total - done : chunk, got = 0;
		ssize_t w;

		tu_fill(out, n, seed++);
		w = ktls_conn_write(c, out, n);
		if (w != (ssize_t)n) {
			snprintf(why, wlen, "write %zd of %zu: %s", w, n, ktls_conn_error(c));
			goto out;
		}
		while (got < n) {
			ssize_t r = rd(c, in + got, n - got);
			if (r <= 0) {
				snprintf(why, wlen, "read returned %zd after %zu bytes: %s", r, done + got,
					 ktls_conn_error(c));
				goto out;
			}
			got += (size_t)r;
		}
		if (memcmp(in, out, n)) {
			snprintf(why, wlen, "echo differs at offset %zu", done);
			goto out;
		}
		done += n;
	}
	ret = 0;
out:
	free(out);
	free(in);
	return ret;
}

void run_start(struct run *r, int role, const struct suite *s, void (*hook)(ktls_conn *))
{
	memset(r, 0, sizeof(*r));
	cr_assert_eq(tu_tcp_pair(r->fds), 0);
	r->peer.fd = r->fds[1];
	r->peer.server = role == KTLS_CLIENT;
	r->peer.s = *s;
	r->peer.tickets = 2;
	r->tickets = 2;
	r->echo_bytes = 256 * 1024;
}

void run_go(struct run *r, int role, void (*hook)(ktls_conn *))
{
	peer_start(&r->peer);
	if (ours_open(&r->us, role, &r->peer.s, r->tickets, r->fds[0], hook) != 0) {
		shutdown(r->fds[0], SHUT_RDWR);
		peer_join(&r->peer);
		cr_assert_fail("%s (peer: %s)", r->us.err, r->peer.err);
	}
	cr_assert_eq(ktls_conn_offload(r->us.c), 0, "offload: %s", ktls_conn_error(r->us.c));
	cr_assert_eq(ktls_conn_info(r->us.c, &r->info), 0);
}

void run_finish(struct run *r)
{
	char why[256];
	ssize_t n;
	char b[16];

	cr_expect_eq(echo_check(r->us.c, r->echo_bytes, 16384, why, sizeof(why)), 0, "%s (peer: %s)",
		     why, r->peer.err);
	cr_expect_eq(ktls_conn_write(r->us.c, "x", 1), 1, "%s", ktls_conn_error(r->us.c));
	n = ktls_conn_read(r->us.c, b, sizeof(b));
	cr_expect_eq(n, 1, "small echo: %zd %s", n, ktls_conn_error(r->us.c));
	cr_expect_eq(ktls_conn_shutdown(r->us.c), 0, "%s", ktls_conn_error(r->us.c));
	n = ktls_conn_read(r->us.c, b, sizeof(b));
	cr_expect_eq(n, 0, "expected the peer's close_notify, got %zd: %s", n, ktls_conn_error(r->us.c));
	peer_join(&r->peer);
	cr_expect(r->peer.got_close_notify, "peer saw no close_notify: %s", r->peer.err);
	cr_expect_str_empty(r->peer.err);
	ours_close(&r->us);
	close(r->fds[0]);
	close(r->fds[1]);
}

void run_abort(struct run *r)
{
	shutdown(r->fds[0], SHUT_RDWR);
	peer_join(&r->peer);
	ours_close(&r->us);
	close(r->fds[0]);
	close(r->fds[1]);
}
