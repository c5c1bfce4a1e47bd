/*
 * ocsp.c - OCSP stapling: our server staples a good response that openssl
 * s_client -status shows (TLS 1.3 and 1.2) and refuses, naming why, a
 * stale, revoked, wrong-certificate or non-OCSP one; our client with
 * ktls_ctx_set_ocsp_require accepts openssl s_server's good staple and
 * fails, naming why, without one or with a bad one.  The responses come
 * from tests/certs/make-certs.sh (signed by the test CA).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"
#include "ktls.h"

TestSuite(ocsp, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

/* s_client -status against a server context; what it printed. */
static void s_client_status(ktls_ctx *ctx, const char *ver, char *out, size_t cap)
{
	char err[256];

	cr_assert_eq(ct_s_client(ctx, (const char *const[]){ "-servername", "localhost", "-status",
							     ver, NULL },
				 out, cap, NULL, NULL, err, sizeof(err)),
		     0, "handshake: %s", err);
}

static void staple_good(const char *ver)
{
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	char out[32768];

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_ocsp_staple_file(ctx, tu_cert("server-ec.ocsp.der")), 0, "%s",
		     ktls_ctx_error(ctx));
	s_client_status(ctx, ver, out, sizeof(out));
	cr_expect(strstr(out, "OCSP Response Status: successful"), "%s: %s", ver, out);
	cr_expect(strstr(out, "Cert Status: good"), "%s: %s", ver, out);
	ktls_ctx_free(ctx);
}

Test(ocsp, staple_seen_by_s_client_tls13)
{
	staple_good("-tls1_3");
}

Test(ocsp, staple_seen_by_s_client_tls12)
{
	staple_good("-tls1_2");
}

Test(ocsp, bad_staples_refused_with_the_reason)
{
	static const struct {
		const char *file, *why;
	} bad[] = {
		{ "server-ec-stale.ocsp.der", "it is stale" },
		{ "server-ec-revoked.ocsp.der", "revoked" },
		{ "server-rsa.ocsp.der", "about another certificate" },
		{ "ca.der", "not a DER OCSP response" },
	};
	char out[32768];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ktls_ctx *ctx = ct_server_ctx("server-ec");

		cr_assert(ctx);
		cr_expect_eq(ktls_ctx_set_ocsp_staple_file(ctx, tu_cert(bad[i].file)), -1, "%s taken",
			     bad[i].file);
		cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_INVALID, "%s", bad[i].file);
		cr_expect(strstr(ktls_ctx_error(ctx), bad[i].why), "%s: %s", bad[i].file,
			  ktls_ctx_error(ctx));
		if (i == 0) { /* and then nothing is stapled */
			s_client_status(ctx, "-tls1_3", out, sizeof(out));
			cr_expect(strstr(out, "OCSP response: no response sent"), "%s", out);
		}
		ktls_ctx_free(ctx);
	}
}

Test(ocsp, setters_refuse_wrong_roles_and_order)
{
	ktls_ctx *server = ktls_ctx_new(KTLS_SERVER), *client = ct_client_ctx();

	cr_assert(server && client);
	cr_expect_eq(ktls_ctx_set_ocsp_staple_file(server, tu_cert("server-ec.ocsp.der")), -1);
	cr_expect(strstr(ktls_ctx_error(server), "load the certificate first"), "%s",
		  ktls_ctx_error(server));
	cr_expect_eq(ktls_ctx_set_ocsp_staple_file(client, tu_cert("server-ec.ocsp.der")), -1);
	cr_expect_eq(ktls_ctx_set_ocsp_require(server, 1), -1);
	cr_expect_eq(ktls_ctx_error_code(server), KTLS_ERR_INVALID);
	ktls_ctx_free(server);
	ktls_ctx_free(client);
}

/* Our client requiring a staple against openssl s_server stapling status_file (NULL: none). */
static int require_against_s_server(const char *status_file, char *err, size_t errlen)
{
	int port = tu_free_port(), fd, r, ac = 0;
	char portarg[32];
	char *argv[16];
	ktls_ctx *ctx = ct_client_ctx();
	ktls_conn *c;

	snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", port);
	argv[ac++] = "openssl";
	argv[ac++] = "s_server";
	argv[ac++] = "-quiet";
	argv[ac++] = "-naccept";
	argv[ac++] = "1";
	argv[ac++] = "-accept";
	argv[ac++] = portarg;
	argv[ac++] = "-cert";
	argv[ac++] = (char *)tu_cert("server-ec.pem");
	argv[ac++] = "-key";
	argv[ac++] = (char *)tu_cert("server-ec.key");
	if (status_file) {
		argv[ac++] = "-status_file";
		argv[ac++] = (char *)tu_cert(status_file);
	}
	argv[ac] = NULL;
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_gt(ct_peer, 0);
	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_ocsp_require(ctx, 1), 0, "%s", ktls_ctx_error(ctx));
	fd = ct_connect_retry(port, 10000);
	cr_assert_geq(fd, 0);
	c = ktls_conn_connect(ctx, fd, "localhost");
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	r = ktls_conn_handshake(c);
	snprintf(err, errlen, "%s", r ? ktls_conn_error(c) : "");
	if (r == 0)
		cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_NONE);
	else
		cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_VERIFY, "%s", err);
	if (r == 0)
		ktls_conn_shutdown(c);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
	tu_stop(ct_peer, 2000);
	ct_peer = 0;
	return r;
}

Test(ocsp, client_requires_a_good_staple)
{
	char err[300];

	cr_expect_eq(require_against_s_server("server-ec.ocsp.der", err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(require_against_s_server(NULL, err, sizeof(err)), -1);
	cr_expect(strstr(err, "OCSP check failed: the server stapled no OCSP response"), "%s", err);
	cr_expect_eq(require_against_s_server("server-ec-stale.ocsp.der", err, sizeof(err)), -1);
	cr_expect(strstr(err, "stale"), "%s", err);
	cr_expect_eq(require_against_s_server("server-rsa.ocsp.der", err, sizeof(err)), -1);
	cr_expect(strstr(err, "another certificate"), "%s", err);
}
