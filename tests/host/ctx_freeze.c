/*
 * ctx_freeze.c - a context is frozen by its first connection: every setter
 * fails, trust may still be added and later handshakes see it, and any
 * number of threads may share it.  Connections here are SSLs made the way
 * conn.c makes them (SSL_new + ctx_prepare_ssl), handshaking in memory.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "../common/testutil.h"

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n + 1);
	cr_assert(buf);
	cr_assert_eq(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	*len = n;
	return buf;
}

/*
 * Handshake a client SSL with a server SSL over a memory BIO pair.
 * 0 when both finished; -1 when either failed.
 */
static int handshake(SSL *c, SSL *s)
{
	BIO *bc, *bs;
	int cdone = 0, sdone = 0;

	if (!BIO_new_bio_pair(&bc, 0, &bs, 0))
		return -1;
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 64 && !(cdone && sdone); i++) {
		SSL *side[2] = {c, s};
		int *done[2] = {&cdone, &sdone};

		for (int j = 0; j < 2; j++) {
			int r, e;

			if (*done[j])
				continue;
			r = SSL_do_handshake(side[j]);
			if (r == 1) {
				*done[j] = 1;
				continue;
			}
			e = SSL_get_error(side[j], r);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				return -1;
			}
		}
	}
	return cdone && sdone ? 0 : -1;
}

static ktls_ctx *server_ctx(void)
{
	ktls_ctx *s = ktls_ctx_new(KTLS_SERVER);

	cr_assert(s);
	cr_assert_eq(ktls_ctx_load_cert_chain(s, tu_cert("server-ec.pem"), tu_cert("server-ec.key")),
		     0, "%s", ktls_ctx_error(s));
	return s;
}

/* One client connection to a fresh server SSL; the client's verify result. */
static int connect_once(ktls_ctx *cctx, ktls_ctx *sctx, const char *name, long *verify)
{
	SSL *c = SSL_new(cctx->ssl), *s = SSL_new(sctx->ssl);
	int rc;

	cr_assert(c && s);
	cr_assert_eq(ctx_prepare_ssl(sctx, s, NULL), 0);
	rc = ctx_prepare_ssl(cctx, c, name);
	cr_assert_eq(rc, 0, "prepare %s: %s", name, ktls_ctx_error(cctx));
	rc = handshake(c, s);
	if (verify)
		*verify = SSL_get_verify_result(c);
	SSL_free(c);
	SSL_free(s);
	return rc;
}

#define FROZEN_MSG(what) "context in use: " what " cannot change after a connection was made"

static void expect_frozen(ktls_ctx *ctx, int rc, const char *want)
{
	cr_expect_eq(rc, -1, "a setter worked on a frozen context: %s", want);
	cr_expect_str_eq(ktls_ctx_error(ctx), want);
	cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_INVALID, "%s", want);
}

Test(ctx_freeze, every_setter_refused_after_first_use)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT), *s = ktls_ctx_new(KTLS_SERVER);
	SSL *cs, *ss;
	struct ktls_cert_store_stats st;

	cr_assert(c && s);
	cr_expect_eq(atomic_load(&c->frozen), 0);
	cs = SSL_new(c->ssl);
	ss = SSL_new(s->ssl);
	cr_assert_eq(ctx_prepare_ssl(c, cs, "localhost"), 0);
	cr_assert_eq(ctx_prepare_ssl(s, ss, NULL), 0);
	cr_expect_eq(atomic_load(&c->frozen), 1);

	expect_frozen(c, ktls_ctx_load_cert_chain(c, tu_cert("client.pem"), tu_cert("client.key")),
		      FROZEN_MSG("the certificate chain"));
	expect_frozen(c, ktls_ctx_set_ciphers(c, "ECDHE+AESGCM"),
		      FROZEN_MSG("the TLS 1.2 cipher list"));
	expect_frozen(c, ktls_ctx_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256"),
		      FROZEN_MSG("the TLS 1.3 ciphersuites"));
	expect_frozen(c, ktls_ctx_set_min_version(c, KTLS_TLS1_3), FROZEN_MSG("the minimum version"));
	expect_frozen(c, ktls_ctx_set_max_version(c, KTLS_TLS1_2), FROZEN_MSG("the maximum version"));
	expect_frozen(c, ktls_ctx_set_verify(c, KTLS_VERIFY_OPTIONAL), FROZEN_MSG("the verify mode"));
	expect_frozen(c, ktls_ctx_set_check_hostname(c, 0), FROZEN_MSG("check_hostname"));
	expect_frozen(s, ktls_ctx_load_dh_params(s, tu_cert("dh2048.pem")),
		      FROZEN_MSG("the DH parameters"));
	expect_frozen(s, ktls_ctx_set_num_tickets(s, 0), FROZEN_MSG("num_tickets"));
	expect_frozen(s, ktls_ctx_set_verify(s, KTLS_VERIFY_REQUIRED), FROZEN_MSG("the verify mode"));

	/* Nothing changed underneath. */
	cr_expect_eq(SSL_CTX_get_min_proto_version(c->ssl), TLS1_2_VERSION);
	cr_expect_eq(SSL_CTX_get_max_proto_version(c->ssl), TLS1_3_VERSION);
	cr_expect_eq(SSL_CTX_get_verify_mode(s->ssl), SSL_VERIFY_NONE);
	cr_expect_eq(SSL_CTX_get_num_tickets(s->ssl), 2);

	/* Trust may still be added, from a file, a directory or memory. */
	cr_expect_eq(ktls_ctx_load_verify_locations(c, tu_cert("other-ca.pem"), NULL), 0, "%s",
		     ktls_ctx_error(c));
	size_t len;
	void *der = slurp(tu_cert("ca.der"), &len);
	cr_expect_eq(ktls_ctx_load_verify_mem(c, der, len), 0, "%s", ktls_ctx_error(c));
	free(der);
	cr_assert_eq(ktls_ctx_cert_store_stats(c, &st), 0);
	cr_expect(st.x509 == 2 && st.x509_ca == 2, "%u %u", st.x509, st.x509_ca);

	SSL_free(cs);
	SSL_free(ss);
	ktls_ctx_free(c);
	ktls_ctx_free(s);
}

/*
 * A capath added to a frozen context is read at once (adding a lookup
 * directory under running handshakes would race), so it counts now.
 */
Test(ctx_freeze, capath_on_frozen_context_loads_now)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT);
	struct ktls_cert_store_stats st;
	SSL *ssl;

	cr_assert(c);
	ssl = SSL_new(c->ssl);
	cr_assert_eq(ctx_prepare_ssl(c, ssl, "localhost"), 0);
	cr_assert_eq(ktls_ctx_load_verify_locations(c, NULL, tu_cert("capath")), 0, "%s",
		     ktls_ctx_error(c));
	cr_assert_eq(ktls_ctx_cert_store_stats(c, &st), 0);
	cr_expect(st.x509 == 1 && st.x509_ca == 1, "%u %u", st.x509, st.x509_ca);
	cr_expect_eq(ktls_ctx_load_verify_locations(c, NULL, tu_cert("")), -1,
		     "a directory without hashed names is an error");
	cr_expect(strstr(ktls_ctx_error(c), "no hashed certificate files"), "%s", ktls_ctx_error(c));
	SSL_free(ssl);
	ktls_ctx_free(c);
}

Test(ctx_freeze, trust_added_later_is_seen_by_later_handshakes)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT), *s = server_ctx();
	size_t len;
	void *pem = slurp(tu_cert("ca.pem"), &len);
	long v;

	cr_assert(c);
	cr_expect_eq(connect_once(c, s, "localhost", &v), -1, "no anchors yet: must fail");
	cr_expect_eq(v, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "verify result %ld", v);
	cr_assert_eq(ktls_ctx_load_verify_mem(c, pem, len), 0, "%s", ktls_ctx_error(c));
	cr_expect_eq(connect_once(c, s, "localhost", &v), 0, "verify result %ld", v);
	free(pem);
	ktls_ctx_free(c);
	ktls_ctx_free(s);
}

/* A capath is searched lazily: counted only once a handshake used it. */
Test(ctx_freeze, capath_counted_after_handshake)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT), *s = server_ctx();
	struct ktls_cert_store_stats st;

	cr_assert(c);
	cr_assert_eq(ktls_ctx_load_verify_locations(c, NULL, tu_cert("capath")), 0);
	cr_assert_eq(ktls_ctx_cert_store_stats(c, &st), 0);
	cr_expect_eq(st.x509, 0);
	cr_expect_eq(connect_once(c, s, "localhost", NULL), 0);
	cr_assert_eq(ktls_ctx_cert_store_stats(c, &st), 0);
	cr_expect(st.x509 == 1 && st.x509_ca == 1, "%u %u", st.x509, st.x509_ca);
	ktls_ctx_free(c);
	ktls_ctx_free(s);
}

/* ---- server_name handling ------------------------------------------------------- */

static SSL *prepared(ktls_ctx *ctx, const char *name, int expect_rc)
{
	SSL *ssl = SSL_new(ctx->ssl);

	cr_assert(ssl);
	cr_expect_eq(ctx_prepare_ssl(ctx, ssl, name), expect_rc, "name %s: %s",
		     name ? name : "(null)", ktls_ctx_error(ctx));
	return ssl;
}

Test(ctx_freeze, server_name_rules)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT), *s = ktls_ctx_new(KTLS_SERVER);
	ktls_ctx *nocheck = ktls_ctx_new(KTLS_CLIENT);
	SSL *ssl;
	char *ip;

	cr_assert(c && s && nocheck);
	cr_assert_eq(ktls_ctx_set_check_hostname(nocheck, 0), 0);

	SSL_free(prepared(c, "", -1));
	cr_expect_str_eq(ktls_ctx_error(c), "server_name cannot be empty or start with a dot");
	SSL_free(prepared(c, ".example.com", -1));
	cr_expect_str_eq(ktls_ctx_error(c), "server_name cannot be empty or start with a dot");
	SSL_free(prepared(c, NULL, -1));
	cr_expect_str_eq(ktls_ctx_error(c), "check_hostname requires server_name");
	SSL_free(prepared(nocheck, NULL, 0));
	SSL_free(prepared(s, "localhost", -1));
	cr_expect(strstr(ktls_ctx_error(s), "a server connection takes no server_name"), "%s",
		  ktls_ctx_error(s));

	/* A name: SNI and the host to verify. */
	ssl = prepared(c, "localhost", 0);
	cr_expect_str_eq(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "localhost");
	cr_expect_str_eq(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0), "localhost");
	cr_expect_eq(X509_VERIFY_PARAM_get_hostflags(SSL_get0_param(ssl)),
		     X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	cr_expect_eq(SSL_get_verify_mode(ssl), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	SSL_free(ssl);

	/* IP literals: no SNI, an IP to match instead of a host. */
	const char *ips[] = {"127.0.0.1", "::1", "2001:db8::7"};
	for (size_t i = 0; i < 3; i++) {
		ssl = prepared(c, ips[i], 0);
		cr_expect_null(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "SNI for %s",
			       ips[i]);
		cr_expect_null(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0));
		ip = X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));
		cr_expect(ip != NULL, "no IP pinned for %s", ips[i]);
		OPENSSL_free(ip);
		SSL_free(ssl);
	}

	/* check_hostname off: SNI still sent, nothing pinned (as Python). */
	ssl = prepared(nocheck, "localhost", 0);
	cr_expect_str_eq(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "localhost");
	cr_expect_null(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0));
	SSL_free(ssl);

	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	SSL_free(prepared(c, longname, -1));
	cr_expect_str_eq(ktls_ctx_error(c), "server_name is longer than 255 bytes");

	ktls_ctx_free(c);
	ktls_ctx_free(s);
	ktls_ctx_free(nocheck);
}

/* ---- threads --------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 40

struct shared {
	ktls_ctx *c, *s;
	void *ca, *other;
	size_t ca_len, other_len;
	pthread_barrier_t go;
};

struct result {
	int ok, failed, bad_error;
	char why[KTLS_ERRLEN];
};

static void *worker(void *arg)
{
	struct shared *sh = ((void **)arg)[0];
	struct result *res = ((void **)arg)[1];
	struct ktls_cert_store_stats st;

	pthread_barrier_wait(&sh->go);
	for (int i = 0; i < ROUNDS; i++) {
		long v;
		SSL *c = SSL_new(sh->c->ssl), *s = SSL_new(sh->s->ssl);

		if (!c || !s || ctx_prepare_ssl(sh->c, c, "localhost") ||
		    ctx_prepare_ssl(sh->s, s, NULL) || handshake(c, s) ||
		    (v = SSL_get_verify_result(c)) != X509_V_OK) {
			res->failed++;
			snprintf(res->why, sizeof(res->why), "%s", ktls_ctx_error(sh->c));
		} else {
			res->ok++;
		}
		SSL_free(c);
		SSL_free(s);
		/* Trust additions (duplicates) race with the handshakes. */
		if (i % 3 == 2 ? ktls_ctx_load_verify_locations(sh->c, tu_cert("ca.pem"), NULL) :
				 ktls_ctx_load_verify_mem(sh->c, i & 1 ? sh->ca : sh->other,
							  i & 1 ? sh->ca_len : sh->other_len)) {
			res->failed++;
			snprintf(res->why, sizeof(res->why), "%s", ktls_ctx_error(sh->c));
		}
		if (ktls_ctx_cert_store_stats(sh->c, &st) || st.x509 != 2)
			res->failed++;
		/* Each thread sees its own failure reason. */
		if (ktls_ctx_set_num_tickets(sh->s, (unsigned)i) != -1 ||
		    strcmp(ktls_ctx_error(sh->s), FROZEN_MSG("num_tickets")) != 0)
			res->bad_error++;
		if (ktls_ctx_set_min_version(sh->c, KTLS_TLS1_3) != -1 ||
		    strcmp(ktls_ctx_error(sh->c), FROZEN_MSG("the minimum version")) != 0)
			res->bad_error++;
	}
	return NULL;
}

Test(ctx_freeze, threads_share_a_frozen_context, .timeout = 120)
{
	struct shared sh;
	struct result res[THREADS];
	pthread_t t[THREADS];
	void *args[THREADS][2];

	memset(res, 0, sizeof(res));
	sh.c = ktls_ctx_new(KTLS_CLIENT);
	sh.s = server_ctx();
	cr_assert(sh.c);
	sh.ca = slurp(tu_cert("ca.pem"), &sh.ca_len);
	sh.other = slurp(tu_cert("other-ca.der"), &sh.other_len);
	cr_assert_eq(ktls_ctx_load_verify_mem(sh.c, sh.ca, sh.ca_len), 0);
	cr_assert_eq(ktls_ctx_load_verify_mem(sh.c, sh.other, sh.other_len), 0);
	pthread_barrier_init(&sh.go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		args[i][0] = &sh;
		args[i][1] = &res[i];
		cr_assert_eq(pthread_create(&t[i], NULL, worker, args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		cr_expect_eq(res[i].ok, ROUNDS, "thread %d: %d ok, %d failed (%s)", i, res[i].ok,
			     res[i].failed, res[i].why);
		cr_expect_eq(res[i].failed, 0, "thread %d", i);
		cr_expect_eq(res[i].bad_error, 0, "thread %d: wrong error strings", i);
	}
	pthread_barrier_destroy(&sh.go);
	free(sh.ca);
	free(sh.other);
	ktls_ctx_free(sh.c);
	ktls_ctx_free(sh.s);
}

/*
 * The same through the public connection API: 8 threads, each making
 * loopback TCP pairs and handshaking a ktls_conn client against a ktls_conn
 * server (non-blocking, alternating), both contexts shared by all threads.
 */
#define CONN_ROUNDS 15

static void *conn_worker(void *arg)
{
	struct shared *sh = ((void **)arg)[0];
	struct result *res = ((void **)arg)[1];

	pthread_barrier_wait(&sh->go);
	for (int i = 0; i < CONN_ROUNDS; i++) {
		int fds[2], rc[2] = {1, 1};
		ktls_conn *c = NULL, *s = NULL;

		if (tu_tcp_pair(fds)) {
			res->failed++;
			continue;
		}
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		fcntl(fds[1], F_SETFL, O_NONBLOCK);
		c = ktls_conn_connect(sh->c, fds[0], "localhost");
		s = ktls_conn_accept(sh->s, fds[1]);
		for (int n = 0; c && s && n < 2000 && (rc[0] || rc[1]); n++) {
			struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN},
					      {.fd = fds[1], .events = POLLIN}};

			if (rc[0])
				rc[0] = ktls_conn_handshake(c);
			if (rc[1])
				rc[1] = ktls_conn_handshake(s);
			if (rc[0] == -1 || rc[1] == -1)
				break;
			if (rc[0] || rc[1])
				poll(p, 2, 100);
		}
		if (rc[0] == 0 && rc[1] == 0) {
			res->ok++;
		} else {
			res->failed++;
			snprintf(res->why, sizeof(res->why), "%s | %s",
				 c ? ktls_conn_error(c) : ktls_ctx_error(sh->c),
				 s ? ktls_conn_error(s) : ktls_ctx_error(sh->s));
		}
		ktls_conn_free(c);
		ktls_conn_free(s);
		close(fds[0]);
		close(fds[1]);
		if (ktls_ctx_load_verify_mem(sh->c, sh->other, sh->other_len))
			res->failed++;
	}
	return NULL;
}

Test(ctx_freeze, threads_share_contexts_through_ktls_conn)
{
	struct shared sh;
	struct result res[THREADS];
	pthread_t t[THREADS];
	void *args[THREADS][2];

	memset(res, 0, sizeof(res));
	sh.c = ktls_ctx_new(KTLS_CLIENT);
	sh.s = server_ctx();
	cr_assert(sh.c);
	sh.ca = NULL;
	sh.other = slurp(tu_cert("other-ca.der"), &sh.other_len);
	cr_assert_eq(ktls_ctx_load_verify_locations(sh.c, tu_cert("ca.pem"), NULL), 0);
	pthread_barrier_init(&sh.go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		args[i][0] = &sh;
		args[i][1] = &res[i];
		cr_assert_eq(pthread_create(&t[i], NULL, conn_worker, args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++)
		cr_expect_eq(res[i].ok, CONN_ROUNDS, "thread %d: %d ok, %d failed (%s)", i,
			     res[i].ok, res[i].failed, res[i].why);
	cr_expect_eq(atomic_load(&sh.c->refs), 1, "connections leaked context references");
	cr_expect_eq(atomic_load(&sh.s->refs), 1);
	pthread_barrier_destroy(&sh.go);
	free(sh.other);
	ktls_ctx_free(sh.c);
	ktls_ctx_free(sh.s);
}

/* The public path: ktls_conn_connect reports ctx_prepare_ssl's refusals. */
Test(ctx_freeze, conn_connect_reports_name_refusals)
{
	static const struct {
		const char *name, *error;
	} bad[] = {
		{"", "server_name cannot be empty or start with a dot"},
		{".example.com", "server_name cannot be empty or start with a dot"},
		{NULL, "check_hostname requires server_name"},
	};
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT);
	int fds[2];

	cr_assert(c);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ktls_conn *conn = ktls_conn_connect(c, fds[0], bad[i].name);

		cr_expect_null(conn, "name %s accepted", bad[i].name ? bad[i].name : "(null)");
		ktls_conn_free(conn);
		cr_expect_str_eq(ktls_ctx_error(c), bad[i].error);
	}
	cr_expect_eq(atomic_load(&c->refs), 1, "a refused connection kept a reference");
	close(fds[0]);
	close(fds[1]);
	ktls_ctx_free(c);
}

/* ---- errors belong to their context, and to the thread that failed ---------- */

Test(ctx_freeze, errors_kept_per_context)
{
	ktls_ctx *a = ktls_ctx_new(KTLS_CLIENT), *b = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(a && b);
	cr_assert_eq(ktls_ctx_set_verify(a, 42), -1);
	cr_assert_eq(ktls_ctx_set_min_version(b, 0x0302), -1);
	/* b's failure does not hide a's. */
	cr_expect_str_eq(ktls_ctx_error(a), "unknown verify mode 42");
	cr_expect_eq(ktls_ctx_error_code(a), KTLS_ERR_INVALID);
	cr_expect(strstr(ktls_ctx_error(b), "below the policy minimum"), "%s", ktls_ctx_error(b));
	cr_expect_eq(ktls_ctx_error_code(b), KTLS_ERR_POLICY);
	/* A success on a clears a's error only. */
	cr_expect_eq(ktls_ctx_set_verify(a, KTLS_VERIFY_REQUIRED), 0);
	cr_expect_str_eq(ktls_ctx_error(a), "");
	cr_expect_eq(ktls_ctx_error_code(a), KTLS_ERR_NONE);
	cr_expect_eq(ktls_ctx_error_code(b), KTLS_ERR_POLICY);
	ktls_ctx_free(a);
	/* A new context never inherits a freed one's error (same address or not). */
	a = ktls_ctx_new(KTLS_CLIENT);
	cr_assert(a);
	cr_expect_str_eq(ktls_ctx_error(a), "");
	cr_expect_eq(ktls_ctx_error_code(a), KTLS_ERR_NONE);
	ktls_ctx_free(a);
	ktls_ctx_free(b);
}

#define NO_SUCH_CA "/nonexistent/ktls-ca.pem"

struct err_thread {
	ktls_ctx *ctx;
	pthread_barrier_t *failed, *read;
	int which;             /* 0: a frozen-context refusal, 1: a missing file */
	const char *want;      /* the text this thread's failure must show */
	int want_code;
	int wrong;             /* rounds that showed another thread's error */
	char text[256];
	int code;
};

static void *fail_then_read(void *arg)
{
	struct err_thread *t = arg;

	for (int round = 0; round < 200; round++) {
		if (t->which == 0)
			ktls_ctx_set_num_tickets(t->ctx, 3);
		else
			ktls_ctx_load_verify_locations(t->ctx, NO_SUCH_CA, NULL);
		/* Both threads have failed before either looks. */
		pthread_barrier_wait(t->failed);
		snprintf(t->text, sizeof(t->text), "%s", ktls_ctx_error(t->ctx));
		t->code = ktls_ctx_error_code(t->ctx);
		if (strcmp(t->text, t->want) != 0 || t->code != t->want_code)
			t->wrong++;
		pthread_barrier_wait(t->read);
	}
	return NULL;
}

Test(ctx_freeze, errors_kept_per_thread_on_a_shared_context)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_SERVER);
	pthread_barrier_t failed, read;
	struct err_thread t[2] = {
		{ .which = 0, .want = FROZEN_MSG("num_tickets"), .want_code = KTLS_ERR_INVALID },
		{ .which = 1, .want = "cafile " NO_SUCH_CA ": No such file or directory",
		  .want_code = KTLS_ERR_FILE },
	};
	pthread_t th[2];

	cr_assert(c);
	atomic_store(&c->frozen, 1); /* as after its first connection */
	pthread_barrier_init(&failed, NULL, 2);
	pthread_barrier_init(&read, NULL, 2);
	for (int i = 0; i < 2; i++) {
		t[i].ctx = c;
		t[i].failed = &failed;
		t[i].read = &read;
		cr_assert_eq(pthread_create(&th[i], NULL, fail_then_read, &t[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		cr_expect_str_eq(t[i].text, t[i].want);
		cr_expect_eq(t[i].code, t[i].want_code, "%s", ktls_error_name(t[i].code));
		cr_expect_eq(t[i].wrong, 0, "thread %d saw another's error %d times", i, t[i].wrong);
	}
	/* This thread made no call that failed on c. */
	cr_expect_str_eq(ktls_ctx_error(c), "");
	cr_expect_eq(ktls_ctx_error_code(c), KTLS_ERR_NONE);
	pthread_barrier_destroy(&failed);
	pthread_barrier_destroy(&read);
	ktls_ctx_free(c); /* ASan: the threads' entries go with it */
}
