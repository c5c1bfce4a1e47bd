/*
 * sni.c - certificate chains chosen by server name: our server with the
 * default chain (server-ec, localhost) and added ones (sni-a: a.test;
 * sni-b-ec and sni-b-rsa: b.test, *.b.test) against openssl s_client,
 * which prints the certificate it got.  By name, by the client's
 * signature algorithms within a name (ECDSA or RSA), the default for no
 * name or an unknown one, the callback's choice and its refusal
 * (unrecognized_name), an OCSP staple only with its own certificate.
 * After each handshake our side offloads and sends 32 KiB that s_client
 * must print: in the guest (TSHARED) through kTLS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"

TestSuite(sni, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 120);

#define TAIL "end-of-sni-test-data"

static char server_err[512]; /* our handshake's failure, when it failed */
static char served_name[300]; /* ktls_conn_server_name after the handshake, "(none)" for NULL */

static ktls_ctx *sni_ctx(void)
{
	ktls_ctx *ctx = ct_server_ctx("server-ec");

	cr_assert_not_null(ctx);
	cr_assert_eq(ktls_ctx_add_cert_chain(ctx, tu_cert("sni-a.pem"), tu_cert("sni-a.key")), 0, "%s",
		     ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_add_cert_chain(ctx, tu_cert("sni-b-ec.pem"), tu_cert("sni-b-ec.key")), 0,
		     "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_add_cert_chain(ctx, tu_cert("sni-b-rsa.pem"), tu_cert("sni-b-rsa.key")),
		     0, "%s", ktls_ctx_error(ctx));
	return ctx;
}

/* After the handshake: offload, then 32 KiB ending in TAIL for s_client to print. */
static void serve(ktls_conn *c, void *arg)
{
	static char data[32768];
	struct ktls_info in;
	int want = tu_expect_ktls() ? KTLS_MODE_SW : KTLS_MODE_USER;

	(void)arg;
	snprintf(served_name, sizeof(served_name), "%s",
		 ktls_conn_server_name(c) ? ktls_conn_server_name(c) : "(none)");
	cr_assert_eq(ktls_conn_offload(c), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &in), 0);
	cr_expect_eq(in.tx, want, "tx %d: %s", in.tx, in.fallback_reason);
	memset(data, 'x', sizeof(data));
	memcpy(data + sizeof(data) - sizeof(TAIL), TAIL "\n", sizeof(TAIL));
	cr_expect_eq(ct_write_full(c, data, sizeof(data)), 0, "%s", ktls_conn_error(c));
}

/* s_client with extra arguments against ctx; our handshake's result. */
static int s_client(ktls_ctx *ctx, const char *const extra[], char *out, size_t cap)
{
	int hs = ct_s_client(ctx, extra, out, cap, serve, NULL, server_err, sizeof(server_err));

	cr_assert_neq(hs, -2, "s_client did not run");
	return hs;
}

/* The certificate s_client got (its subject's CN), and that the data came. */
static void expect_served(ktls_ctx *ctx, const char *const extra[], const char *cn, const char *what)
{
	static char out[262144];
	char subj[64];

	cr_assert_eq(s_client(ctx, extra, out, sizeof(out)), 0, "%s: handshake failed:\n%s", what, out);
	snprintf(subj, sizeof(subj), "subject=CN = %s\n", cn);
	cr_expect(strstr(out, subj), "%s: want %s; s_client printed:\n%.3000s", what, cn, out);
	cr_expect(strstr(out, "Verify return code: 0 (ok)"), "%s: did not verify", what);
	cr_expect(strstr(out, TAIL), "%s: the 32 KiB after the handshake did not arrive", what);
}

Test(sni, chosen_by_name_then_by_key_type)
{
	ktls_ctx *ctx = sni_ctx();
	static const struct {
		const char *args[8];
		const char *cn, *what;
	} cases[] = {
		{ { "-noservername", NULL }, "server-ec", "no server name: the default" },
		{ { "-servername", "localhost", NULL }, "server-ec", "localhost: the default" },
		{ { "-servername", "a.test", NULL }, "sni-a", "a.test" },
		{ { "-servername", "A.TEST", NULL }, "sni-a", "names compare without case" },
		{ { "-servername", "b.test", "-sigalgs", "ecdsa_secp256r1_sha256", NULL }, "sni-b-ec",
		  "b.test, client takes ECDSA" },
		{ { "-servername", "b.test", "-sigalgs", "rsa_pss_rsae_sha256", NULL }, "sni-b-rsa",
		  "b.test, client takes RSA only" },
		{ { "-servername", "www.b.test", "-sigalgs", "rsa_pss_rsae_sha256", NULL }, "sni-b-rsa",
		  "*.b.test" },
		{ { "-servername", "x.www.b.test", NULL }, "server-ec", "a wildcard is one label" },
		{ { "-servername", "unknown.test", NULL }, "server-ec", "an unknown name: the default" },
		{ { "-servername", "b.test", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", NULL },
		  "sni-b-rsa", "TLS 1.2, b.test, an RSA suite" },
		{ { "-servername", "b.test", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", NULL },
		  "sni-b-ec", "TLS 1.2, b.test, an ECDSA suite" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *sent = !strcmp(cases[i].args[0], "-servername") ? cases[i].args[1] : "(none)";

		served_name[0] = '\0';
		expect_served(ctx, cases[i].args, cases[i].cn, cases[i].what);
		/* ktls_conn_server_name: the name as the client wrote it ("A.TEST" too) */
		cr_expect_str_eq(served_name, sent, "%s: ktls_conn_server_name", cases[i].what);
	}
	cr_expect_null(ktls_conn_server_name(NULL));
	ktls_ctx_free(ctx);
}

/* A client's ktls_conn_server_name is the name it sends: none for an IP literal. */
Test(sni, client_server_name_is_the_one_sent)
{
	ktls_ctx *ctx = ct_client_ctx();
	ktls_conn *c;
	int sv[2];

	cr_assert_not_null(ctx);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = ktls_conn_connect(ctx, sv[0], "a.test");
	cr_assert_not_null(c, "%s", ktls_ctx_error(ctx));
	cr_expect_str_eq(ktls_conn_server_name(c), "a.test");
	ktls_conn_free(c);
	c = ktls_conn_connect(ctx, sv[0], "127.0.0.1");
	cr_assert_not_null(c, "%s", ktls_ctx_error(ctx));
	cr_expect_null(ktls_conn_server_name(c), "an IP literal is not sent as SNI");
	ktls_conn_free(c);
	close(sv[0]);
	close(sv[1]);
	ktls_ctx_free(ctx);
}

static int pick(void *arg, const char *name)
{
	int *calls = arg;

	(*calls)++;
	if (!name)
		return 0;
	if (!strcmp(name, "second.example"))
		return 2; /* sni-b-ec, and sni-b-rsa with it */
	if (!strcmp(name, "refuse.example"))
		return -1;
	return 0;
}

Test(sni, callback_chooses_and_refuses)
{
	ktls_ctx *ctx = sni_ctx();
	static char out[262144];
	int calls = 0;

	cr_assert_eq(ktls_ctx_set_sni_callback(ctx, pick, &calls), 0, "%s", ktls_ctx_error(ctx));
	/* the chain's own names do not matter to the callback: -verify_hostname off */
	expect_served(ctx, (const char *const[]){ "-servername", "second.example", "-sigalgs",
						   "rsa_pss_rsae_sha256", NULL },
		      "sni-b-rsa", "callback: chain 2 brings its RSA twin");
	expect_served(ctx, (const char *const[]){ "-servername", "a.test", NULL }, "server-ec",
		      "callback: 0 is the default, whatever the name");
	cr_expect_neq(s_client(ctx, (const char *const[]){ "-servername", "refuse.example", NULL },
			       out, sizeof(out)), 0, "a refused name completed the handshake");
	/* s_client reports the alert on stderr; it read just that alert record */
	cr_expect(strstr(out, "SSL handshake has read 7 bytes"), "s_client saw:\n%.2000s", out);
	cr_expect(strstr(server_err, "the SNI callback refused the server name \"refuse.example\" "
			 "(sent unrecognized_name)"), "our side: %s", server_err);
	cr_expect_eq(calls, 3);
	ktls_ctx_free(ctx);
}

/* The serial of the certificate an OCSP response s_client printed is about. */
static int staple_about(const char *out, const char *cn)
{
	char cmd[400], serial[128];
	const char *p = strstr(out, "Serial Number: ");

	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -serial | cut -d= -f2",
		 tu_cert(cn));
	if (!p || tu_run(cmd, serial, sizeof(serial)) != 0)
		return 0;
	serial[strcspn(serial, "\n")] = '\0';
	return strncasecmp(p + 15, serial, strlen(serial)) == 0;
}

/*
 * A staple belongs to the chain loaded or added last: server-ec's is sent
 * with server-ec, sni-a's with sni-a, and b.test's chain, with none, gets
 * none (never another certificate's).
 */
Test(sni, ocsp_staple_per_chain)
{
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	static char out[262144];

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_ocsp_staple_file(ctx, tu_cert("server-ec.ocsp.der")), 0, "%s",
		     ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_add_cert_chain(ctx, tu_cert("sni-a.pem"), tu_cert("sni-a.key")), 0);
	/* checked against the chain just added: server-ec's response is not about it */
	cr_expect_eq(ktls_ctx_set_ocsp_staple_file(ctx, tu_cert("server-ec.ocsp.der")), -1);
	cr_expect(strstr(ktls_ctx_error(ctx), "about another certificate"), "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_set_ocsp_staple_file(ctx, tu_cert("sni-a.ocsp.der")), 0, "%s",
		     ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_add_cert_chain(ctx, tu_cert("sni-b-ec.pem"), tu_cert("sni-b-ec.key")), 0);
	cr_assert_eq(s_client(ctx, (const char *const[]){ "-servername", "localhost", "-status", NULL },
			      out, sizeof(out)), 0);
	cr_expect(strstr(out, "Cert Status: good") && staple_about(out, "server-ec.pem"),
		  "localhost: %.3000s", out);
	cr_assert_eq(s_client(ctx, (const char *const[]){ "-servername", "a.test", "-status", NULL },
			      out, sizeof(out)), 0);
	cr_expect(strstr(out, "Cert Status: good") && staple_about(out, "sni-a.pem"),
		  "a.test: %.3000s", out);
	cr_assert_eq(s_client(ctx, (const char *const[]){ "-servername", "b.test", "-status", NULL },
			      out, sizeof(out)), 0);
	cr_expect(strstr(out, "OCSP response: no response sent"), "b.test got a staple: %.2000s", out);
	ktls_ctx_free(ctx);
}

Test(sni, refusals_name_the_cause)
{
	ktls_ctx *server = ct_server_ctx("server-ec"), *client = ct_client_ctx();

	cr_assert(server && client);
	cr_expect_eq(ktls_ctx_add_cert_chain(client, tu_cert("sni-a.pem"), tu_cert("sni-a.key")), -1);
	cr_expect(strstr(ktls_ctx_error(client), "server contexts only"), "%s", ktls_ctx_error(client));
	cr_expect_eq(ktls_ctx_set_sni_callback(client, pick, NULL), -1);
	cr_expect_eq(ktls_ctx_add_cert_chain(server, tu_cert("sni-a.pem"), tu_cert("sni-b-ec.key")), -1);
	cr_expect(strstr(ktls_ctx_error(server), "does not match"), "%s", ktls_ctx_error(server));
	cr_expect_eq(ktls_ctx_add_cert_chain(server, tu_cert("rsa1024.pem"), tu_cert("rsa1024.key")), -1,
		     "a weak key is refused here too");
	cr_expect_eq(ktls_ctx_error_code(server), KTLS_ERR_POLICY, "%s", ktls_ctx_error(server));
	cr_expect_eq(ktls_ctx_add_cert_chain(server, "/nonexistent.pem", NULL), -1);
	ktls_ctx_free(server);
	ktls_ctx_free(client);
}
