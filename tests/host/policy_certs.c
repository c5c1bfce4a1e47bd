/*
 * policy_certs.c - our own certificate chain under security level 2:
 * weak keys and SHA-1/MD5 signatures are refused when loaded, with a reason
 * that names the algorithm and size; Python's load_cert_chain() is the
 * oracle for which files are acceptable at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "internal.h"
#include "../common/testutil.h"

static const struct {
	const char *cert, *key, *error; /* error NULL: accepted */
} cases[] = {
	{"server-ec.pem", "server-ec.key", NULL},
	{"server-rsa.pem", "server-rsa.key", NULL},
	{"client.pem", "client.key", NULL},
	{"p224.pem", "p224.key", NULL},
	/* The issuer is weak, but only our own chain is checked at load. */
	{"weak-issued.pem", "weak-issued.key", NULL},
	{"rsa1024.pem", "rsa1024.key",
	 "certificate key too small: RSA 1024 bits, policy needs >= 2048"},
	{"p192.pem", "p192.key",
	 "certificate key too small: EC 192 bits (prime192v1), policy needs >= 224"},
	{"sha1.pem", "sha1.key", "certificate signature uses SHA-1, refused by security level 2"},
	{"md5.pem", "md5.key", "certificate signature uses MD5, refused by security level 2"},
	{"weak-issued-chain.pem", "weak-issued.key",
	 "chain certificate 1 key too small: RSA 1024 bits, policy needs >= 2048"},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

Test(policy_certs, load_time_refusals_with_reasons)
{
	for (size_t i = 0; i < NCASES; i++) {
		for (int role = KTLS_CLIENT; role <= KTLS_SERVER; role++) {
			ktls_ctx *ctx = ktls_ctx_new(role);
			char want[512];
			int rc;

			cr_assert(ctx);
			rc = ktls_ctx_load_cert_chain(ctx, tu_cert(cases[i].cert),
						      tu_cert(cases[i].key));
			if (!cases[i].error) {
				cr_expect_eq(rc, 0, "%s refused: %s", cases[i].cert,
					     ktls_ctx_error(ctx));
				cr_expect(SSL_CTX_get0_certificate(ctx->ssl) != NULL);
			} else {
				snprintf(want, sizeof(want), "%s (%s)", cases[i].error,
					 tu_cert(cases[i].cert));
				cr_expect_eq(rc, -1, "%s accepted", cases[i].cert);
				cr_expect_str_eq(ktls_ctx_error(ctx), want);
				cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_POLICY, "%s",
					     ktls_error_name(ktls_ctx_error_code(ctx)));
				cr_expect_null(SSL_CTX_get0_certificate(ctx->ssl));
			}
			ktls_ctx_free(ctx);
		}
	}
}

/* Python (its default client context: security level 2) decides the same. */
Test(policy_certs, same_verdicts_as_python)
{
	char cmd[8192], out[1024], want[1024];
	size_t used, wused = 0;

	used = snprintf(cmd, sizeof(cmd),
			"python3 -c '\nimport ssl, sys\na = sys.argv[1:]\n"
			"for i in range(0, len(a), 2):\n"
			"    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
			"    try:\n        c.load_cert_chain(a[i], a[i + 1]); print(\"ok\")\n"
			"    except ssl.SSLError as e: print(\"refused\")\n' ");
	for (size_t i = 0; i < NCASES; i++) {
		used += snprintf(cmd + used, sizeof(cmd) - used, "%s ", tu_cert(cases[i].cert));
		used += snprintf(cmd + used, sizeof(cmd) - used, "%s ", tu_cert(cases[i].key));
		wused += snprintf(want + wused, sizeof(want) - wused, "%s\n",
				  cases[i].error ? "refused" : "ok");
	}
	cr_assert_lt(used, sizeof(cmd));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0, "python3 failed: %s", out);
	cr_expect_str_eq(out, want, "python verdicts differ from the table this suite enforces");
}

static void expect_err(ktls_ctx *ctx, int rc, const char *want, int code)
{
	cr_expect_eq(rc, -1);
	cr_expect(strstr(ktls_ctx_error(ctx), want) != NULL, "\"%s\" lacks \"%s\"",
		  ktls_ctx_error(ctx), want);
	cr_expect_eq(ktls_ctx_error_code(ctx), code, "%s: %s, want %s", want,
		     ktls_error_name(ktls_ctx_error_code(ctx)), ktls_error_name(code));
}

Test(policy_certs, file_and_key_errors)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	char want[512];

	cr_assert(ctx);
	snprintf(want, sizeof(want), "certfile %s: No such file or directory",
		 tu_cert("no-such.pem"));
	expect_err(ctx, ktls_ctx_load_cert_chain(ctx, tu_cert("no-such.pem"), NULL), want,
		   KTLS_ERR_FILE);
	expect_err(ctx, ktls_ctx_load_cert_chain(ctx, NULL, NULL), "certfile is NULL",
		   KTLS_ERR_INVALID);
	expect_err(ctx, ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.key"), NULL),
		   "no PEM certificate found", KTLS_ERR_FILE);
	/* No key in the cert file and none given. */
	expect_err(ctx, ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.pem"), NULL),
		   "no PEM private key found", KTLS_ERR_FILE);
	expect_err(ctx, ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.pem"), tu_cert("ca.pem")),
		   "no PEM private key found", KTLS_ERR_FILE);
	snprintf(want, sizeof(want), "the private key in %s does not match the certificate in %s",
		 tu_cert("server-rsa.key"), tu_cert("server-ec.pem"));
	expect_err(ctx, ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.pem"),
						  tu_cert("server-rsa.key")), want, KTLS_ERR_FILE);
	/* Never prompts on a terminal for a pass phrase. */
	expect_err(ctx, ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.pem"),
						  tu_cert("server-ec-enc.key")),
		   "the private key is encrypted; encrypted keys are not supported", KTLS_ERR_FILE);
	cr_expect_null(SSL_CTX_get0_certificate(ctx->ssl), "a failed load installed something");

	/* A corrupted certificate is named as such, not as "no certificate". */
	char path[] = "/tmp/ktls-broken-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	dprintf(fd, "-----BEGIN CERTIFICATE-----\nMIIBnotbase64!!\n-----END CERTIFICATE-----\n");
	close(fd);
	cr_expect_eq(ktls_ctx_load_cert_chain(ctx, path, tu_cert("server-ec.key")), -1);
	snprintf(want, sizeof(want), "certfile %s: ", path);
	cr_expect(strncmp(ktls_ctx_error(ctx), want, strlen(want)) == 0, "%s", ktls_ctx_error(ctx));
	cr_expect(strstr(ktls_ctx_error(ctx), "no PEM certificate found") == NULL, "%s",
		  ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_FILE);
	unlink(path);
	ktls_ctx_free(ctx);
}

static X509 *read_cert(const char *name)
{
	FILE *f = fopen(tu_cert(name), "r");
	X509 *x;

	cr_assert(f, "%s", name);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(x, "%s", name);
	return x;
}

Test(policy_certs, combined_file_and_failure_keeps_previous)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	X509 *ec = read_cert("server-ec.pem");

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec-combined.pem"), NULL), 0,
		     "%s", ktls_ctx_error(ctx));
	cr_expect_eq(X509_cmp(SSL_CTX_get0_certificate(ctx->ssl), ec), 0);
	cr_expect_eq(SSL_CTX_check_private_key(ctx->ssl), 1);

	cr_expect_eq(ktls_ctx_load_cert_chain(ctx, tu_cert("p192.pem"), tu_cert("p192.key")), -1);
	cr_expect_eq(X509_cmp(SSL_CTX_get0_certificate(ctx->ssl), ec), 0,
		     "the refused chain replaced the good one");
	X509_free(ec);
	ktls_ctx_free(ctx);
}

Test(policy_certs, chain_certificates_are_kept)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	STACK_OF(X509) *chain = NULL;
	char path[] = "/tmp/ktls-chain-XXXXXX", cmd[1024], out[16];
	int fd = mkstemp(path);

	cr_assert(ctx && fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "cat %s %s > %s", tu_cert("server-ec.pem"), tu_cert("ca.pem"),
		 path);
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0);
	cr_assert_eq(ktls_ctx_load_cert_chain(ctx, path, tu_cert("server-ec.key")), 0, "%s",
		     ktls_ctx_error(ctx));
	unlink(path);
	cr_assert(SSL_CTX_get0_chain_certs(ctx->ssl, &chain));
	cr_expect_eq(chain ? sk_X509_num(chain) : 0, 1, "the CA after the leaf is the chain");
	ktls_ctx_free(ctx);
}

/* A file's bytes (malloc'd) and length. */
static char *file_bytes(const char *name, size_t *len)
{
	FILE *f = fopen(tu_cert(name), "rb");
	char *b = malloc(1 << 16);

	cr_assert(f && b, "%s", name);
	*len = fread(b, 1, 1 << 16, f);
	fclose(f);
	return b;
}

/* From memory, the same verdicts and reasons as from files (ktlsd's reload after --user). */
Test(policy_certs, from_memory_same_verdicts)
{
	for (size_t i = 0; i < NCASES; i++) {
		ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
		size_t cl, kl;
		char *c = file_bytes(cases[i].cert, &cl), *k = file_bytes(cases[i].key, &kl);
		int rc = ktls_ctx_load_cert_chain_mem(ctx, c, cl, k, kl);

		if (!cases[i].error) {
			cr_expect_eq(rc, 0, "%s: %s", cases[i].cert, ktls_ctx_error(ctx));
			cr_expect_eq(SSL_CTX_check_private_key(ctx->ssl), 1, "%s", cases[i].cert);
		} else {
			cr_expect_eq(rc, -1, "%s accepted from memory", cases[i].cert);
			cr_expect(strstr(ktls_ctx_error(ctx), cases[i].error), "%s: %s", cases[i].cert,
				  ktls_ctx_error(ctx));
		}
		free(c);
		free(k);
		ktls_ctx_free(ctx);
	}
	{
		ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
		size_t cl, kl;
		char *c = file_bytes("server-ec-combined.pem", &cl), *k = file_bytes("server-rsa.key", &kl);

		cr_expect_eq(ktls_ctx_load_cert_chain_mem(ctx, c, cl, NULL, 0), 0, "key in the same buffer: %s",
			     ktls_ctx_error(ctx));
		cr_expect_eq(ktls_ctx_load_cert_chain_mem(ctx, c, cl, k, kl), -1);
		cr_expect(strstr(ktls_ctx_error(ctx), "does not match"), "%s", ktls_ctx_error(ctx));
		cr_expect_eq(ktls_ctx_load_cert_chain_mem(ctx, NULL, 0, NULL, 0), -1);
		cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_INVALID);
		cr_expect_eq(ktls_ctx_load_cert_chain_mem(ctx, "junk", 4, NULL, 0), -1);
		cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_FILE);
		free(c);
		free(k);
		ktls_ctx_free(ctx);
	}
}
