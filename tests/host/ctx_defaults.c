/*
 * ctx_defaults.c - a new context carries the whole policy, whatever the
 * system openssl.cnf says; the version, verify and server-only setters
 * keep to it.  Values are read back from the SSL_CTX itself, not from our
 * own bookkeeping.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "../common/testutil.h"

#define EXPECT_ERR(ctx, call, substr)                                                    \
	do {                                                                             \
		cr_expect_eq((call), -1, "%s should fail", #call);                       \
		cr_expect(strstr(ktls_ctx_error(ctx), (substr)) != NULL,                 \
			  "%s: error \"%s\" lacks \"%s\"", #call, ktls_ctx_error(ctx),   \
			  (substr));                                                     \
	} while (0)

/* EXPECT_ERR, and the failure carries code. */
#define EXPECT_ERR_CODE(ctx, call, substr, code)                                         \
	do {                                                                             \
		EXPECT_ERR(ctx, call, substr);                                           \
		cr_expect_eq(ktls_ctx_error_code(ctx), (code), "%s: code %s, want %s",    \
			     #call, ktls_error_name(ktls_ctx_error_code(ctx)),            \
			     ktls_error_name(code));                                     \
	} while (0)

#define EXPECT_OK(ctx, call)                                                             \
	cr_expect_eq((call), 0, "%s failed: %s", #call, ktls_ctx_error(ctx))

static void check_common_policy(const ktls_ctx *ctx)
{
	SSL_CTX *s = ctx->ssl;
	uint64_t o = SSL_CTX_get_options(s);
	X509_VERIFY_PARAM *p = SSL_CTX_get0_param(s);
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(s);
	struct ktls_cert_store_stats st;

	cr_expect_eq(SSL_CTX_get_security_level(s), 2);
	cr_expect_eq(SSL_CTX_get_min_proto_version(s), TLS1_2_VERSION);
	cr_expect_eq(SSL_CTX_get_max_proto_version(s), TLS1_3_VERSION);
	cr_expect(o & SSL_OP_NO_COMPRESSION, "compression must be off");
	cr_expect(o & SSL_OP_CIPHER_SERVER_PREFERENCE, "server preference must be on");
	cr_expect(o & SSL_OP_NO_RENEGOTIATION, "renegotiation must be off");
	cr_expect(!(o & SSL_OP_ENABLE_KTLS), "OpenSSL's own kTLS must be off");
	cr_expect(!(o & SSL_OP_ALLOW_CLIENT_RENEGOTIATION));
	cr_expect(!(o & SSL_OP_LEGACY_SERVER_CONNECT));
	cr_expect(!(o & SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION));
	cr_expect(!(o & SSL_OP_NO_EXTENDED_MASTER_SECRET));
	cr_expect(!(o & SSL_OP_IGNORE_UNEXPECTED_EOF), "truncation must stay detectable");
	cr_expect_eq(SSL_CTX_get_read_ahead(s), 0);
	cr_expect_eq(SSL_CTX_get_max_early_data(s), 0);
	cr_expect_eq(SSL_CTX_get_num_tickets(s), 2);
	cr_expect_eq(X509_VERIFY_PARAM_get_flags(p), X509_V_FLAG_TRUSTED_FIRST);
	cr_expect_eq(X509_VERIFY_PARAM_get_hostflags(p), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

	/* TLS 1.3 part of the list, in policy order. */
	cr_assert(sk && sk_SSL_CIPHER_num(sk) >= 3);
	cr_expect_str_eq(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, 0)), "TLS_AES_256_GCM_SHA384");
	cr_expect_str_eq(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, 1)),
			 "TLS_CHACHA20_POLY1305_SHA256");
	cr_expect_str_eq(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, 2)), "TLS_AES_128_GCM_SHA256");

	/* An SSL made from it: no post-handshake auth, no max_fragment_length. */
	SSL *ssl = SSL_new(s);
	cr_assert(ssl);
	cr_expect_eq(SSL_get_max_early_data(ssl), 0);
	cr_expect_eq(SSL_get_read_ahead(ssl), 0);
	SSL_free(ssl);

	cr_assert_eq(ktls_ctx_cert_store_stats(ctx, &st), 0);
	cr_expect(st.x509 == 0 && st.x509_ca == 0 && st.crl == 0, "trust store starts empty");
}

Test(ctx_defaults, role_required)
{
	int roles[] = {0, 3, -1, KTLS_CLIENT | KTLS_SERVER, 42};

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		errno = 0;
		cr_expect_null(ktls_ctx_new(roles[i]), "role %d accepted", roles[i]);
		cr_expect_eq(errno, EINVAL, "role %d: errno %d", roles[i], errno);
	}
}

Test(ctx_defaults, client)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(ctx);
	cr_expect_eq(ktls_ctx_role(ctx), KTLS_CLIENT);
	cr_expect_str_eq(ktls_ctx_error(ctx), "");
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl),
		     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	cr_expect_eq(ctx->check_hostname, 1);
	cr_expect_eq(ctx->verify, KTLS_VERIFY_REQUIRED);
	SSL *ssl = SSL_new(ctx->ssl);
	cr_assert(ssl);
	cr_expect(!SSL_is_server(ssl), "client method");
	SSL_free(ssl);
	check_common_policy(ctx);
	ktls_ctx_free(ctx);
}

Test(ctx_defaults, server)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	SSL *ssl;

	cr_assert(ctx);
	cr_expect_eq(ktls_ctx_role(ctx), KTLS_SERVER);
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl), SSL_VERIFY_NONE);
	cr_expect_eq(ctx->check_hostname, 0);
	ssl = SSL_new(ctx->ssl);
	cr_expect(SSL_is_server(ssl), "server method");
	SSL_free(ssl);
	check_common_policy(ctx);
	ktls_ctx_free(ctx);
}

/*
 * A system openssl.cnf can turn on OpenSSL's kTLS, lower the protocol
 * floor and the security level, and widen the suites.  The context must not
 * inherit any of it.  A plain SSL_CTX in the same process shows the file
 * really took effect, so this test fails if the override breaks.
 */
static char hostile_conf[64];

static void write_hostile_conf(void)
{
	FILE *f;
	int fd;

	snprintf(hostile_conf, sizeof(hostile_conf), "/tmp/ktls-hostile-XXXXXX");
	fd = mkstemp(hostile_conf);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	cr_assert(f);
	fprintf(f, "openssl_conf = init\n[init]\nssl_conf = ssl_sect\n"
		   "[ssl_sect]\nsystem_default = sys\n"
		   "[sys]\nOptions = KTLS,UnsafeLegacyRenegotiation\n"
		   "MinProtocol = TLSv1\nCipherString = ALL:@SECLEVEL=0\n"
		   "Ciphersuites = TLS_AES_128_CCM_SHA256\n");
	fclose(f);
	setenv("OPENSSL_CONF", hostile_conf, 1);
}

static void drop_hostile_conf(void)
{
	unlink(hostile_conf);
}

Test(ctx_defaults, system_config_cannot_weaken, .init = write_hostile_conf,
     .fini = drop_hostile_conf)
{
	SSL_CTX *plain = SSL_CTX_new(TLS_client_method());
	ktls_ctx *ctx;

	cr_assert(plain);
	cr_assert(SSL_CTX_get_options(plain) & SSL_OP_ENABLE_KTLS,
		  "the hostile openssl.cnf was not applied; the test proves nothing");
	cr_assert_eq(SSL_CTX_get_security_level(plain), 0);
	SSL_CTX_free(plain);

	ctx = ktls_ctx_new(KTLS_CLIENT);
	cr_assert(ctx);
	check_common_policy(ctx);
	for (int i = 3; i < sk_SSL_CIPHER_num(SSL_CTX_get_ciphers(ctx->ssl)); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(SSL_CTX_get_ciphers(ctx->ssl), i);
		cr_expect(SSL_CIPHER_is_aead(c), "%s leaked in from openssl.cnf",
			  SSL_CIPHER_get_name(c));
	}
	ktls_ctx_free(ctx);
}

Test(ctx_defaults, versions)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(ctx);
	EXPECT_ERR_CODE(ctx, ktls_ctx_set_min_version(ctx, 0x0302),
			"minimum version TLS 1.1 is below the policy minimum TLS 1.2",
			KTLS_ERR_POLICY);
	EXPECT_ERR(ctx, ktls_ctx_set_min_version(ctx, 0x0301), "TLS 1.0 is below");
	EXPECT_ERR(ctx, ktls_ctx_set_min_version(ctx, 0x0300), "SSL 3.0 is below");
	EXPECT_ERR_CODE(ctx, ktls_ctx_set_min_version(ctx, 42), "version 0x002a: not a TLS version",
			KTLS_ERR_INVALID);
	EXPECT_ERR(ctx, ktls_ctx_set_min_version(ctx, 0x0305), "not a TLS version");
	EXPECT_ERR(ctx, ktls_ctx_set_max_version(ctx, 0x0302),
		   "maximum version TLS 1.1 is below the policy minimum TLS 1.2");
	cr_expect_eq(SSL_CTX_get_min_proto_version(ctx->ssl), TLS1_2_VERSION, "refusal changed it");

	EXPECT_OK(ctx, ktls_ctx_set_min_version(ctx, KTLS_TLS1_3));
	cr_expect_eq(SSL_CTX_get_min_proto_version(ctx->ssl), TLS1_3_VERSION);
	EXPECT_ERR_CODE(ctx, ktls_ctx_set_max_version(ctx, KTLS_TLS1_2),
			"maximum version TLS 1.2 is below the minimum TLS 1.3", KTLS_ERR_INVALID);
	EXPECT_OK(ctx, ktls_ctx_set_min_version(ctx, KTLS_TLS1_2));
	EXPECT_OK(ctx, ktls_ctx_set_max_version(ctx, KTLS_TLS1_2));
	cr_expect_eq(SSL_CTX_get_max_proto_version(ctx->ssl), TLS1_2_VERSION);
	EXPECT_ERR(ctx, ktls_ctx_set_min_version(ctx, KTLS_TLS1_3),
		   "minimum version TLS 1.3 is above the maximum TLS 1.2");
	EXPECT_OK(ctx, ktls_ctx_set_max_version(ctx, KTLS_TLS1_3));
	cr_expect_str_eq(ktls_ctx_error(ctx), "", "a successful call leaves no reason");
	cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_NONE);
	ktls_ctx_free(ctx);
}

/* Python's SSLContext rules: test_check_hostname / test_verify_mode_protocol. */
Test(ctx_defaults, client_verify_and_check_hostname)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(ctx);
	EXPECT_ERR(ctx, ktls_ctx_set_verify(ctx, KTLS_VERIFY_NONE),
		   "cannot set verify mode NONE while check_hostname is on");
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl),
		     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	EXPECT_ERR(ctx, ktls_ctx_set_verify(ctx, 42), "unknown verify mode 42");
	EXPECT_ERR(ctx, ktls_ctx_set_verify(ctx, -1), "unknown verify mode -1");

	/* OPTIONAL = verify what is presented (a server always presents). */
	EXPECT_OK(ctx, ktls_ctx_set_verify(ctx, KTLS_VERIFY_OPTIONAL));
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl), SSL_VERIFY_PEER);
	EXPECT_OK(ctx, ktls_ctx_set_check_hostname(ctx, 1));
	cr_expect_eq(ctx->verify, KTLS_VERIFY_OPTIONAL, "OPTIONAL is kept, as in Python");

	EXPECT_OK(ctx, ktls_ctx_set_check_hostname(ctx, 0));
	EXPECT_OK(ctx, ktls_ctx_set_verify(ctx, KTLS_VERIFY_NONE));
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl), SSL_VERIFY_NONE);
	/* Turning the name check on raises NONE to REQUIRED. */
	EXPECT_OK(ctx, ktls_ctx_set_check_hostname(ctx, 1));
	cr_expect_eq(ctx->verify, KTLS_VERIFY_REQUIRED);
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl),
		     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	ktls_ctx_free(ctx);
}

Test(ctx_defaults, server_verify_modes)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);

	cr_assert(ctx);
	EXPECT_OK(ctx, ktls_ctx_set_verify(ctx, KTLS_VERIFY_OPTIONAL));
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl), SSL_VERIFY_PEER);
	EXPECT_OK(ctx, ktls_ctx_set_verify(ctx, KTLS_VERIFY_REQUIRED));
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl),
		     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	EXPECT_OK(ctx, ktls_ctx_set_verify(ctx, KTLS_VERIFY_NONE));
	cr_expect_eq(SSL_CTX_get_verify_mode(ctx->ssl), SSL_VERIFY_NONE);
	EXPECT_ERR(ctx, ktls_ctx_set_check_hostname(ctx, 1),
		   "check_hostname applies to client contexts only");
	EXPECT_OK(ctx, ktls_ctx_set_check_hostname(ctx, 0));
	ktls_ctx_free(ctx);
}

Test(ctx_defaults, num_tickets_server_only)
{
	ktls_ctx *s = ktls_ctx_new(KTLS_SERVER), *c = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(s && c);
	cr_expect_eq(SSL_CTX_get_session_cache_mode(s->ssl), SSL_SESS_CACHE_OFF,
		     "server contexts resume by ticket only");
	cr_expect(!(SSL_CTX_get_options(s->ssl) & SSL_OP_NO_TICKET));
	EXPECT_OK(s, ktls_ctx_set_num_tickets(s, 0));
	cr_expect_eq(SSL_CTX_get_num_tickets(s->ssl), 0);
	cr_expect(SSL_CTX_get_options(s->ssl) & SSL_OP_NO_TICKET, "0: no TLS 1.2 tickets either");
	EXPECT_OK(s, ktls_ctx_set_num_tickets(s, 5));
	cr_expect_eq(SSL_CTX_get_num_tickets(s->ssl), 5);
	cr_expect(!(SSL_CTX_get_options(s->ssl) & SSL_OP_NO_TICKET));
	EXPECT_ERR(c, ktls_ctx_set_num_tickets(c, 1), "num_tickets applies to server contexts only");
	cr_expect_eq(SSL_CTX_get_num_tickets(c->ssl), 2);
	ktls_ctx_free(s);
	ktls_ctx_free(c);
}

Test(ctx_defaults, dh_params)
{
	ktls_ctx *s = ktls_ctx_new(KTLS_SERVER), *c = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(s && c);
	EXPECT_ERR_CODE(s, ktls_ctx_load_dh_params(s, tu_cert("dh1024.pem")),
			"DH parameters too small: 1024 bits, policy needs >= 2048", KTLS_ERR_POLICY);
	cr_expect_eq(s->dh_loaded, 0);
	EXPECT_ERR_CODE(s, ktls_ctx_load_dh_params(s, tu_cert("ca.pem")),
			"no PEM DH parameters found", KTLS_ERR_FILE);
	EXPECT_ERR_CODE(s, ktls_ctx_load_dh_params(s, tu_cert("no-such.pem")),
			"No such file or directory", KTLS_ERR_FILE);
	EXPECT_ERR_CODE(s, ktls_ctx_load_dh_params(s, NULL), "pemfile is NULL", KTLS_ERR_INVALID);
	EXPECT_OK(s, ktls_ctx_load_dh_params(s, tu_cert("dh2048.pem")));
	cr_expect_eq(s->dh_loaded, 1);
	cr_expect_eq(ktls_ctx_error_code(s), KTLS_ERR_NONE, "a success clears the code");
	EXPECT_ERR_CODE(c, ktls_ctx_load_dh_params(c, tu_cert("dh2048.pem")),
			"DH parameters apply to server contexts only", KTLS_ERR_INVALID);
	ktls_ctx_free(s);
	ktls_ctx_free(c);
}

Test(ctx_defaults, refcount)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(ctx);
	cr_expect_eq(atomic_load(&ctx->refs), 1);
	ctx_ref(ctx);
	cr_expect_eq(atomic_load(&ctx->refs), 2);
	ktls_ctx_free(ctx); /* the owner's reference; a connection's remains */
	cr_expect_eq(atomic_load(&ctx->refs), 1);
	cr_expect(SSL_CTX_get_security_level(ctx->ssl) == 2, "still usable");
	ctx_unref(ctx); /* ASan reports a leak or double free if this is wrong */
	ktls_ctx_free(NULL);
}

/* Every defined code has a name of its own; others are "?". */
Test(ctx_defaults, error_names)
{
	const char *seen[KTLS_ERR_INTERNAL + 1];

	for (int code = KTLS_ERR_NONE; code <= KTLS_ERR_INTERNAL; code++) {
		const char *n = ktls_error_name(code);

		cr_assert(n);
		cr_expect_str_neq(n, "?", "code %d has no name", code);
		for (int j = 0; j < code; j++)
			cr_expect_str_neq(n, seen[j], "codes %d and %d share \"%s\"", j, code, n);
		seen[code] = n;
	}
	cr_expect_str_eq(ktls_error_name(KTLS_ERR_NONE), "none");
	cr_expect_str_eq(ktls_error_name(KTLS_ERR_PEER_CLOSED), "peer-closed");
	cr_expect_str_eq(ktls_error_name(KTLS_ERR_PSK_UNKNOWN), "psk-unknown");
	cr_expect_str_eq(ktls_error_name(-1), "?");
	cr_expect_str_eq(ktls_error_name(KTLS_ERR_INTERNAL + 1), "?");
}

Test(ctx_defaults, null_ctx)
{
	errno = 0;
	cr_expect_eq(ktls_ctx_set_verify(NULL, KTLS_VERIFY_NONE), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect_str_eq(ktls_ctx_error(NULL), "");
}
