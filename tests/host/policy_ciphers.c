/*
 * policy_ciphers.c - the suite policy.
 *
 * Oracle: Python's own ssl module computes its 3.10+ default list; the test
 * (not libktls) filters it down to what kTLS carries (AEAD AES-GCM or
 * ChaCha20-Poly1305 with ECDHE/DHE), and our context must hold exactly that,
 * in that order.  Distributions that build Python with OpenSSL's default
 * list (Debian) get upstream's string applied first, quoted from CPython's
 * Modules/_ssl.c (PY_SSL_DEFAULT_CIPHER_STRING).
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "internal.h"
#include "../common/testutil.h"

#define PY_ORACLE                                                                                \
	"python3 -c '\n"                                                                         \
	"import ssl\n"                                                                           \
	"UP = \"@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:"      \
	"!SHA1:!AESCCM\"\n"                                                                      \
	"c = ssl.SSLContext(ssl.PROTOCOL_TLS_%s)\n"                                              \
	"if ssl._DEFAULT_CIPHERS != UP: c.set_ciphers(UP)\n"                                     \
	"for x in c.get_ciphers():\n"                                                            \
	"    ktls = x[\"aead\"] and x[\"symmetric\"] in (\"aes-128-gcm\", \"aes-256-gcm\", "      \
	"\"chacha20-poly1305\")\n"                                                               \
	"    fs = x[\"protocol\"] == \"TLSv1.3\" or x[\"kea\"] in (\"kx-ecdhe\", \"kx-dhe\")\n"  \
	"    if ktls and fs: print(x[\"name\"])\n"                                               \
	"'"

/* Python's filtered default list, one name per line. */
static void python_list(const char *role, char *out, size_t cap)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), PY_ORACLE, role);
	cr_assert_eq(tu_run(cmd, out, cap), 0, "python3 oracle failed");
	cr_assert(strlen(out) > 100, "python3 oracle printed too little: %s", out);
}

/* Our context's list in the same form. */
static void our_list(const ktls_ctx *ctx, char *out, size_t cap)
{
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx->ssl);
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++)
		used += snprintf(out + used, cap - used, "%s\n",
				 SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i)));
}

static void default_matches_python(int role, const char *pyrole)
{
	char py[4096], ours[4096];
	ktls_ctx *ctx = ktls_ctx_new(role);

	cr_assert(ctx);
	python_list(pyrole, py, sizeof(py));
	our_list(ctx, ours, sizeof(ours));
	cr_expect_str_eq(ours, py, "ours:\n%s\npython (filtered):\n%s", ours, py);
	ktls_ctx_free(ctx);
}

Test(policy_ciphers, client_default_is_python_filtered_to_ktls)
{
	default_matches_python(KTLS_CLIENT, "CLIENT");
}

Test(policy_ciphers, server_default_is_python_filtered_to_ktls)
{
	default_matches_python(KTLS_SERVER, "SERVER");
}

/*
 * Every TLS 1.2 suite this OpenSSL knows, one at a time: accepted exactly
 * when it is in Python's filtered list.
 */
Test(policy_ciphers, every_known_suite_against_python)
{
	char py[4096], padded[4100], line[80];
	SSL_CTX *all = SSL_CTX_new(TLS_method());
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	STACK_OF(SSL_CIPHER) *sk;
	int accepted = 0, refused = 0;

	cr_assert(all && ctx);
	python_list("CLIENT", py, sizeof(py));
	snprintf(padded, sizeof(padded), "\n%s", py);
	SSL_CTX_set_security_level(all, 0);
	cr_assert(SSL_CTX_set_cipher_list(all, "ALL:COMPLEMENTOFALL"));
	sk = SSL_CTX_get_ciphers(all);
	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
		const char *name = SSL_CIPHER_get_name(c);
		int in_py, rc;

		if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any)
			continue; /* TLS 1.3 suites: see tls13_* */
		snprintf(line, sizeof(line), "\n%s\n", name);
		in_py = strstr(padded, line) != NULL;
		rc = ktls_ctx_set_ciphers(ctx, name);
		if (in_py) {
			cr_expect_eq(rc, 0, "%s refused: %s", name, ktls_ctx_error(ctx));
			accepted++;
		} else {
			cr_expect_eq(rc, -1, "%s accepted but Python's filtered list lacks it", name);
			cr_expect(strstr(ktls_ctx_error(ctx), name) != NULL,
				  "the refusal must name %s: %s", name, ktls_ctx_error(ctx));
			refused++;
		}
	}
	cr_expect_eq(accepted, 8, "8 TLS 1.2 suites are allowed, got %d", accepted);
	cr_expect_gt(refused, 40, "only %d refusals: the sweep saw too few suites", refused);
	SSL_CTX_free(all);
	ktls_ctx_free(ctx);
}

static const struct {
	const char *list, *error;
} refusals[] = {
	{"AES128-SHA", "cipher AES128-SHA is not allowed: no forward secrecy (RSA key exchange)"},
	{"AES256-GCM-SHA384",
	 "cipher AES256-GCM-SHA384 is not allowed: no forward secrecy (RSA key exchange)"},
	{"ECDHE-RSA-AES128-SHA",
	 "cipher ECDHE-RSA-AES128-SHA is not allowed: CBC mode with a SHA-1 MAC, not AEAD"},
	{"ECDHE-RSA-AES128-SHA256",
	 "cipher ECDHE-RSA-AES128-SHA256 is not allowed: CBC mode, not AEAD"},
	{"ECDHE-ECDSA-AES128-CCM",
	 "cipher ECDHE-ECDSA-AES128-CCM is not allowed: AES-CCM is excluded by policy"},
	{"DHE-RSA-AES256-CCM8",
	 "cipher DHE-RSA-AES256-CCM8 is not allowed: AES-CCM is excluded by policy"},
	{"DHE-RSA-CHACHA20-POLY1305", "cipher DHE-RSA-CHACHA20-POLY1305 is not allowed: not in "
				      "the policy's suite set (Python's default list)"},
	{"ECDHE-ECDSA-ARIA128-GCM-SHA256",
	 "cipher ECDHE-ECDSA-ARIA128-GCM-SHA256 is not allowed: kTLS cannot carry this cipher "
	 "(only AES-GCM and ChaCha20-Poly1305)"},
	{"ADH-AES128-GCM-SHA256",
	 "cipher ADH-AES128-GCM-SHA256 is not allowed: no authentication (anonymous suite)"},
	{"DHE-DSS-AES128-GCM-SHA256",
	 "cipher DHE-DSS-AES128-GCM-SHA256 is not allowed: DSS authentication is not allowed"},
	{"PSK-AES128-GCM-SHA256",
	 "cipher PSK-AES128-GCM-SHA256 is not allowed: pre-shared-key suites are not allowed"},
	{"ECDHE-ECDSA-NULL-SHA",
	 "cipher ECDHE-ECDSA-NULL-SHA is not allowed: no encryption (NULL cipher)"},
	/* Widening hidden behind allowed suites is still caught. */
	{"ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA",
	 "cipher AES128-SHA is not allowed: no forward secrecy (RSA key exchange)"},
	{"AESGCM", "cipher DHE-DSS-AES256-GCM-SHA384 is not allowed: DSS authentication is not "
		   "allowed"},
	{"ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
	 "cipher list may not set @SECLEVEL (the policy fixes security level 2)"},
	{"", "cipher list \"\" selects no TLS 1.2 suite"},
	{"NO-SUCH-CIPHER", "cipher list \"NO-SUCH-CIPHER\" selects no TLS 1.2 suite"},
	{"ECDHE+AESGCM:!ECDHE", "cipher list \"ECDHE+AESGCM:!ECDHE\" selects no TLS 1.2 suite"},
};

Test(policy_ciphers, widening_refused_naming_the_suite)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	char before[4096], after[4096];

	cr_assert(ctx);
	our_list(ctx, before, sizeof(before));
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		cr_expect_eq(ktls_ctx_set_ciphers(ctx, refusals[i].list), -1, "\"%s\" accepted",
			     refusals[i].list);
		cr_expect_str_eq(ktls_ctx_error(ctx), refusals[i].error, "for \"%s\"",
				 refusals[i].list);
	}
	our_list(ctx, after, sizeof(after));
	cr_expect_str_eq(after, before, "a refused list changed the context");
	cr_expect_eq(SSL_CTX_get_security_level(ctx->ssl), 2);
	ktls_ctx_free(ctx);
}

Test(policy_ciphers, narrowing_keeps_callers_order)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	char ours[4096];

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_ciphers(ctx, "ECDHE-RSA-AES128-GCM-SHA256:"
					       "ECDHE-ECDSA-CHACHA20-POLY1305"), 0, "%s",
		     ktls_ctx_error(ctx));
	our_list(ctx, ours, sizeof(ours));
	cr_expect_str_eq(ours, "TLS_AES_256_GCM_SHA384\nTLS_CHACHA20_POLY1305_SHA256\n"
			       "TLS_AES_128_GCM_SHA256\nECDHE-RSA-AES128-GCM-SHA256\n"
			       "ECDHE-ECDSA-CHACHA20-POLY1305\n");
	cr_assert_eq(ktls_ctx_set_ciphers(ctx, "ECDHE+AESGCM"), 0, "%s", ktls_ctx_error(ctx));
	our_list(ctx, ours, sizeof(ours));
	cr_expect_str_eq(ours, "TLS_AES_256_GCM_SHA384\nTLS_CHACHA20_POLY1305_SHA256\n"
			       "TLS_AES_128_GCM_SHA256\nECDHE-ECDSA-AES256-GCM-SHA384\n"
			       "ECDHE-RSA-AES256-GCM-SHA384\nECDHE-ECDSA-AES128-GCM-SHA256\n"
			       "ECDHE-RSA-AES128-GCM-SHA256\n");
	cr_expect_eq(SSL_CTX_get_security_level(ctx->ssl), 2);
	ktls_ctx_free(ctx);
}

Test(policy_ciphers, tls13_narrowing)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	char ours[4096];

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_ciphersuites(ctx, "TLS_CHACHA20_POLY1305_SHA256"), 0, "%s",
		     ktls_ctx_error(ctx));
	our_list(ctx, ours, sizeof(ours));
	cr_expect(strncmp(ours, "TLS_CHACHA20_POLY1305_SHA256\nECDHE-", 35) == 0, "%s", ours);
	cr_expect(strstr(ours, "TLS_AES_") == NULL, "%s", ours);

	cr_expect_eq(ktls_ctx_set_ciphersuites(ctx, "TLS_AES_128_CCM_SHA256"), -1);
	cr_expect_str_eq(ktls_ctx_error(ctx),
			 "ciphersuite TLS_AES_128_CCM_SHA256 is not allowed: AES-CCM is excluded "
			 "by policy (allowed: TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
			 "TLS_AES_128_GCM_SHA256)");
	cr_expect_eq(ktls_ctx_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_8_SHA256"),
		     -1);
	cr_expect(strstr(ktls_ctx_error(ctx), "ciphersuite TLS_AES_128_CCM_8_SHA256 is not allowed"),
		  "%s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_ciphersuites(ctx, "ECDHE-RSA-AES128-GCM-SHA256"), -1);
	cr_expect(strstr(ktls_ctx_error(ctx), "not a TLS 1.3 ciphersuite name"), "%s",
		  ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_ciphersuites(ctx, ""), -1);
	cr_expect_str_eq(ktls_ctx_error(ctx), "ciphersuite list is empty");
	cr_expect_eq(ktls_ctx_set_ciphersuites(ctx, NULL), -1);

	/* Refusals left the narrowed list alone. */
	our_list(ctx, ours, sizeof(ours));
	cr_expect(strncmp(ours, "TLS_CHACHA20_POLY1305_SHA256\nECDHE-", 35) == 0, "%s", ours);
	cr_assert_eq(ktls_ctx_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"),
		     0);
	our_list(ctx, ours, sizeof(ours));
	cr_expect(strncmp(ours, "TLS_AES_128_GCM_SHA256\nTLS_AES_256_GCM_SHA384\nECDHE-", 52) == 0,
		  "%s", ours);
	ktls_ctx_free(ctx);
}
