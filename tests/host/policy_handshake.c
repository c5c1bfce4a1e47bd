/*
 * policy_handshake.c - the policy as a peer sees it, in memory: our context
 * (SSLs made as conn.c makes them) against a plain OpenSSL peer that has
 * been made weak on purpose (security level 0, old versions, CBC/CCM/RSA
 * suites, small keys and groups, wrong names).  OpenSSL's verify codes and
 * alerts are the oracle; tests/host/policy_peers.c repeats the important
 * ones with real peer processes over TCP.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "../common/testutil.h"

struct outcome {
	int ok;            /* both sides finished */
	int failed_side;   /* first side to fail: 0 client, 1 server, -1 none */
	char reason[2][128]; /* OpenSSL reason per side ("" if it did not fail) */
	long verify;       /* client's verify result */
	long sverify;      /* server's verify result */
	char cipher[64];
	int version;
};

/*
 * Pump both sides until both finished or both failed; a side that fails
 * sends its alert, so the other side's reason is the alert it received.
 */
static void run(SSL *c, SSL *s, struct outcome *o)
{
	BIO *bc, *bs;
	int state[2] = {0, 0}; /* 0 running, 1 done, -1 failed */
	SSL *side[2] = {c, s};

	memset(o, 0, sizeof(*o));
	o->failed_side = -1;
	ERR_clear_error();
	cr_assert(BIO_new_bio_pair(&bc, 0, &bs, 0));
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 64 && (state[0] == 0 || state[1] == 0); i++)
		for (int j = 0; j < 2; j++) {
			int r, e;

			if (state[j])
				continue;
			r = SSL_do_handshake(side[j]);
			if (r == 1) {
				state[j] = 1;
				continue;
			}
			e = SSL_get_error(side[j], r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				continue;
			state[j] = -1;
			if (o->failed_side < 0)
				o->failed_side = j;
			unsigned long err = ERR_peek_error();
			snprintf(o->reason[j], sizeof(o->reason[j]), "%s",
				 err && ERR_reason_error_string(err) ? ERR_reason_error_string(err) :
								      "(no OpenSSL reason)");
			ERR_clear_error();
		}
	o->ok = state[0] == 1 && state[1] == 1;
	o->verify = SSL_get_verify_result(c);
	o->sverify = SSL_get_verify_result(s);
	if (o->ok) {
		snprintf(o->cipher, sizeof(o->cipher), "%s", SSL_get_cipher_name(c));
		o->version = SSL_version(c);
	}
}

/* A deliberately weak plain OpenSSL peer. */
static SSL_CTX *weak_peer(int server, const char *cert, int maxv, const char *ciphers,
			  const char *suites)
{
	SSL_CTX *p = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	cr_assert(p);
	SSL_CTX_set_security_level(p, 0);
	SSL_CTX_set_min_proto_version(p, TLS1_VERSION);
	if (maxv)
		SSL_CTX_set_max_proto_version(p, maxv);
	if (ciphers)
		cr_assert(SSL_CTX_set_cipher_list(p, ciphers), "%s", ciphers);
	if (suites)
		cr_assert(SSL_CTX_set_ciphersuites(p, suites), "%s", suites);
	if (cert) {
		char crt[64], key[64];

		snprintf(crt, sizeof(crt), "%s.pem", cert);
		snprintf(key, sizeof(key), "%s.key", cert);
		cr_assert(SSL_CTX_use_certificate_file(p, tu_cert(crt), SSL_FILETYPE_PEM), "%s", crt);
		cr_assert(SSL_CTX_use_PrivateKey_file(p, tu_cert(key), SSL_FILETYPE_PEM), "%s", key);
	}
	return p;
}

static ktls_ctx *our_client(void)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(c);
	cr_assert_eq(ktls_ctx_load_verify_locations(c, tu_cert("ca.pem"), NULL), 0);
	cr_assert_eq(ktls_ctx_load_verify_locations(c, tu_cert("weak-ca.pem"), NULL), 0);
	return c;
}

static ktls_ctx *our_server(const char *cert)
{
	ktls_ctx *s = ktls_ctx_new(KTLS_SERVER);
	char crt[64], key[64];

	cr_assert(s);
	snprintf(crt, sizeof(crt), "%s.pem", cert);
	snprintf(key, sizeof(key), "%s.key", cert);
	cr_assert_eq(ktls_ctx_load_cert_chain(s, tu_cert(crt), tu_cert(key)), 0, "%s",
		     ktls_ctx_error(s));
	return s;
}

/* Our client to a plain server. */
static void client_to(ktls_ctx *ours, SSL_CTX *peer, const char *name, struct outcome *o)
{
	SSL *c = SSL_new(ours->ssl), *s = SSL_new(peer);

	cr_assert(c && s);
	cr_assert_eq(ctx_prepare_ssl(ours, c, name), 0, "%s", ktls_ctx_error(ours));
	run(c, s, o);
	SSL_free(c);
	SSL_free(s);
}

/* A plain client to our server. */
static void server_for(ktls_ctx *ours, SSL_CTX *peer, struct outcome *o)
{
	SSL *c = SSL_new(peer), *s = SSL_new(ours->ssl);

	cr_assert(c && s);
	cr_assert_eq(ctx_prepare_ssl(ours, s, NULL), 0, "%s", ktls_ctx_error(ours));
	run(c, s, o);
	SSL_free(c);
	SSL_free(s);
}

#define EXPECT_REFUSED(o, side, why)                                                        \
	do {                                                                                \
		cr_expect(!(o).ok, "handshake succeeded (%s)", (o).cipher);                 \
		cr_expect_eq((o).failed_side, side, "side %d failed: %s", (o).failed_side,  \
			     (o).reason);                                                   \
		cr_expect(strstr((o).reason, why) != NULL, "reason \"%s\" lacks \"%s\"",    \
			  (o).reason, why);                                                 \
	} while (0)

/* ---- our client -------------------------------------------------------------------- */

Test(policy_handshake, client_default_negotiates_tls13_aes256)
{
	ktls_ctx *c = our_client();
	SSL_CTX *p = weak_peer(1, "server-ec", 0, NULL, NULL);
	struct outcome o;

	client_to(c, p, "localhost", &o);
	cr_expect(o.ok, "%s", o.reason[0]);
	cr_expect_eq(o.version, TLS1_3_VERSION);
	cr_expect_str_eq(o.cipher, "TLS_AES_256_GCM_SHA384");
	SSL_CTX_free(p);
	ktls_ctx_free(c);
}

Test(policy_handshake, client_refuses_weak_server_certificates)
{
	static const struct {
		const char *cert;
		long code;
	} weak[] = {
		{"rsa1024", X509_V_ERR_EE_KEY_TOO_SMALL},
		{"sha1", X509_V_ERR_CA_MD_TOO_WEAK},
		{"md5", X509_V_ERR_CA_MD_TOO_WEAK},
		{"weak-issued", X509_V_ERR_CA_KEY_TOO_SMALL},
		{"untrusted", X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
	};
	ktls_ctx *c = our_client();

	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++)
		for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
			SSL_CTX *p = weak_peer(1, weak[i].cert, v, NULL, NULL);
			struct outcome o;

			client_to(c, p, "localhost", &o);
			cr_expect(!o.ok, "%s accepted at 0x%x", weak[i].cert, v);
			cr_expect_eq(o.failed_side, 0, "%s", weak[i].cert);
			cr_expect_str_eq(o.reason[0], "certificate verify failed", "%s", weak[i].cert);
			cr_expect_eq(o.verify, weak[i].code, "%s at 0x%x: verify %ld (%s)",
				     weak[i].cert, v, o.verify,
				     X509_verify_cert_error_string(o.verify));
			SSL_CTX_free(p);
		}
	ktls_ctx_free(c);
}

/* Python parity (its §4.2 "critical nuance"): without verification the
 * peer's key size is not judged. */
Test(policy_handshake, verify_none_accepts_weak_server_key)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT);
	SSL_CTX *p = weak_peer(1, "rsa1024", 0, NULL, NULL);
	struct outcome o;

	cr_assert(c);
	cr_assert_eq(ktls_ctx_set_check_hostname(c, 0), 0);
	cr_assert_eq(ktls_ctx_set_verify(c, KTLS_VERIFY_NONE), 0);
	client_to(c, p, "localhost", &o);
	cr_expect(o.ok, "%s", o.reason[0]);
	SSL_CTX_free(p);
	ktls_ctx_free(c);
}

Test(policy_handshake, client_refuses_old_versions_and_weak_suites)
{
	static const struct {
		const char *what, *cert;
		int maxv;
		const char *ciphers, *suites, *reason;
	} cases[] = {
		{"TLS 1.0 only", "server-rsa", TLS1_VERSION, "ALL:@SECLEVEL=0", NULL,
		 "tlsv1 alert protocol version"},
		{"TLS 1.1 only", "server-rsa", TLS1_1_VERSION, "ALL:@SECLEVEL=0", NULL,
		 "tlsv1 alert protocol version"},
		{"CBC only", "server-rsa", TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384",
		 NULL, "handshake failure"},
		{"RSA key exchange only", "server-rsa", TLS1_2_VERSION, "AES128-GCM-SHA256", NULL,
		 "handshake failure"},
		{"CCM only (1.2)", "server-ec", TLS1_2_VERSION, "ECDHE-ECDSA-AES128-CCM", NULL,
		 "handshake failure"},
		{"CCM only (1.3)", "server-ec", TLS1_3_VERSION, NULL, "TLS_AES_128_CCM_SHA256",
		 "handshake failure"},
		{"DHE-1024", "server-rsa", TLS1_2_VERSION, "DHE-RSA-AES128-GCM-SHA256", NULL,
		 "dh key too small"},
		{"P-192 certificate", "p192", TLS1_2_VERSION, NULL, NULL, "handshake failure"},
	};
	ktls_ctx *c = our_client();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL_CTX *p = weak_peer(1, cases[i].cert, cases[i].maxv, cases[i].ciphers,
				       cases[i].suites);
		struct outcome o;

		if (strcmp(cases[i].what, "DHE-1024") == 0) {
			BIO *f = BIO_new_file(tu_cert("dh1024.pem"), "r");
			EVP_PKEY *dh = f ? PEM_read_bio_Parameters(f, NULL) : NULL;

			cr_assert(dh);
			BIO_free(f);
			cr_assert(SSL_CTX_set0_tmp_dh_pkey(p, dh));
		}
		client_to(c, p, "localhost", &o);
		cr_expect(!o.ok, "%s: accepted (%s)", cases[i].what, o.cipher);
		cr_expect(strstr(o.reason[0], cases[i].reason) != NULL, "%s: \"%s\" lacks \"%s\"",
			  cases[i].what, o.reason[0], cases[i].reason);
		SSL_CTX_free(p);
	}
	ktls_ctx_free(c);
}

Test(policy_handshake, client_hostname_rules)
{
	static const struct {
		const char *cert, *name;
		long verify; /* X509_V_OK: accepted */
	} cases[] = {
		{"server-ec", "localhost", X509_V_OK},
		{"server-ec", "127.0.0.1", X509_V_OK},
		{"server-ec", "::1", X509_V_OK},
		{"server-ec", "example.com", X509_V_ERR_HOSTNAME_MISMATCH},
		{"server-ec", "127.0.0.2", X509_V_ERR_IP_ADDRESS_MISMATCH},
		{"wildcard", "foo.example.com", X509_V_OK},
		{"wildcard", "a.b.example.com", X509_V_ERR_HOSTNAME_MISMATCH},
		{"wildcard", "example.com", X509_V_ERR_HOSTNAME_MISMATCH},
		/* No partial wildcards: f*.example.com never matches. */
		{"partial-wildcard", "foo.example.com", X509_V_ERR_HOSTNAME_MISMATCH},
	};
	ktls_ctx *c = our_client();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL_CTX *p = weak_peer(1, cases[i].cert, 0, NULL, NULL);
		struct outcome o;

		client_to(c, p, cases[i].name, &o);
		cr_expect_eq(o.ok, cases[i].verify == X509_V_OK, "%s as %s: %s", cases[i].cert,
			     cases[i].name, o.reason[0]);
		cr_expect_eq(o.verify, cases[i].verify, "%s as %s: verify %ld (%s)", cases[i].cert,
			     cases[i].name, o.verify, X509_verify_cert_error_string(o.verify));
		SSL_CTX_free(p);
	}
	ktls_ctx_free(c);
}

/* The server sees SNI for names and none for addresses. */
static int sni_seen;
static char sni_name[256];

static int sni_cb(SSL *s, int *al, void *arg)
{
	const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

	sni_seen = n != NULL;
	snprintf(sni_name, sizeof(sni_name), "%s", n ? n : "");
	return SSL_TLSEXT_ERR_OK;
}

Test(policy_handshake, sni_for_names_only)
{
	ktls_ctx *c = our_client();
	SSL_CTX *p = weak_peer(1, "server-ec", 0, NULL, NULL);
	struct outcome o;

	SSL_CTX_set_tlsext_servername_callback(p, sni_cb);
	client_to(c, p, "localhost", &o);
	cr_expect(o.ok);
	cr_expect(sni_seen);
	cr_expect_str_eq(sni_name, "localhost");
	client_to(c, p, "127.0.0.1", &o);
	cr_expect(o.ok, "%s", o.reason[0]);
	cr_expect(!sni_seen, "SNI \"%s\" sent for an IP literal", sni_name);
	SSL_CTX_free(p);
	ktls_ctx_free(c);
}

/* ---- our server ---------------------------------------------------------------------- */

Test(policy_handshake, server_refuses_weak_clients)
{
	static const struct {
		const char *what;
		int maxv;
		const char *ciphers, *suites, *reason;
	} cases[] = {
		{"TLS 1.0 only", TLS1_VERSION, "ALL:@SECLEVEL=0", NULL, "unsupported protocol"},
		{"TLS 1.1 only", TLS1_1_VERSION, "ALL:@SECLEVEL=0", NULL, "unsupported protocol"},
		{"CBC only", TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-SHA256", NULL,
		 "no shared cipher"},
		{"RSA key exchange only", TLS1_2_VERSION, "AES128-GCM-SHA256:AES256-GCM-SHA384",
		 NULL, "no shared cipher"},
		{"CCM only (1.2)", TLS1_2_VERSION, "ECDHE-RSA-AES128-CCM:DHE-RSA-AES128-CCM", NULL,
		 "no shared cipher"},
		{"CCM only (1.3)", TLS1_3_VERSION, NULL, "TLS_AES_128_CCM_SHA256", "no shared cipher"},
		{"DHE without DH parameters", TLS1_2_VERSION, "DHE-RSA-AES128-GCM-SHA256", NULL,
		 "no shared cipher"},
		{"DHE-RSA-CHACHA20 only", TLS1_2_VERSION, "DHE-RSA-CHACHA20-POLY1305", NULL,
		 "no shared cipher"},
	};
	ktls_ctx *s = our_server("server-rsa");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL_CTX *p = weak_peer(0, NULL, cases[i].maxv, cases[i].ciphers, cases[i].suites);
		struct outcome o;

		SSL_CTX_set_verify(p, SSL_VERIFY_NONE, NULL);
		server_for(s, p, &o);
		cr_expect(!o.ok, "%s: accepted (%s)", cases[i].what, o.cipher);
		cr_expect_eq(o.failed_side, 1, "%s: side %d failed first", cases[i].what,
			     o.failed_side);
		cr_expect(strstr(o.reason[1], cases[i].reason) != NULL, "%s: \"%s\" lacks \"%s\"",
			  cases[i].what, o.reason[1], cases[i].reason);
		SSL_CTX_free(p);
	}
	ktls_ctx_free(s);
}

Test(policy_handshake, server_preference_and_dhe)
{
	ktls_ctx *s = our_server("server-rsa");
	SSL_CTX *p = weak_peer(0, NULL, TLS1_2_VERSION,
			       "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384", NULL);
	SSL_CTX *dhe = weak_peer(0, NULL, TLS1_2_VERSION, "DHE-RSA-AES128-GCM-SHA256", NULL);
	struct outcome o;

	SSL_CTX_set_verify(p, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_verify(dhe, SSL_VERIFY_NONE, NULL);
	server_for(s, dhe, &o);
	cr_expect(!o.ok, "DHE chosen without DH parameters");
	ktls_ctx_free(s);

	s = our_server("server-rsa");
	cr_assert_eq(ktls_ctx_load_dh_params(s, tu_cert("dh2048.pem")), 0);
	server_for(s, p, &o);
	cr_expect(o.ok, "%s", o.reason[0]);
	cr_expect_str_eq(o.cipher, "ECDHE-RSA-AES256-GCM-SHA384", "server preference ignored");

	server_for(s, dhe, &o);
	cr_expect(o.ok, "%s", o.reason[0]);
	cr_expect_str_eq(o.cipher, "DHE-RSA-AES128-GCM-SHA256");
	SSL_CTX_free(p);
	SSL_CTX_free(dhe);
	ktls_ctx_free(s);
}

static SSL_CTX *mtls_client(const char *cert)
{
	SSL_CTX *p = weak_peer(0, cert, 0, NULL, NULL);

	SSL_CTX_set_verify(p, SSL_VERIFY_NONE, NULL);
	return p;
}

Test(policy_handshake, server_client_certificates)
{
	static const struct {
		int mode;
		const char *cert;
		long sverify; /* -1: refused for a missing certificate */
		int ok;
	} cases[] = {
		{KTLS_VERIFY_NONE, NULL, X509_V_OK, 1},
		{KTLS_VERIFY_OPTIONAL, NULL, X509_V_OK, 1},
		{KTLS_VERIFY_OPTIONAL, "client", X509_V_OK, 1},
		{KTLS_VERIFY_OPTIONAL, "rsa1024", X509_V_ERR_EE_KEY_TOO_SMALL, 0},
		{KTLS_VERIFY_REQUIRED, "client", X509_V_OK, 1},
		{KTLS_VERIFY_REQUIRED, "sha1", X509_V_ERR_CA_MD_TOO_WEAK, 0},
		{KTLS_VERIFY_REQUIRED, "untrusted", X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0},
		{KTLS_VERIFY_REQUIRED, NULL, -1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
			ktls_ctx *s = our_server("server-ec");
			SSL_CTX *p = mtls_client(cases[i].cert);
			struct outcome o;

			SSL_CTX_set_max_proto_version(p, v);
			cr_assert_eq(ktls_ctx_load_verify_locations(s, tu_cert("ca.pem"), NULL), 0);
			cr_assert_eq(ktls_ctx_set_verify(s, cases[i].mode), 0);
			server_for(s, p, &o);
			if (cases[i].ok) {
				cr_expect(o.ok, "case %zu at 0x%x: %s", i, v, o.reason[0]);
			} else {
				cr_expect(!o.ok, "case %zu at 0x%x accepted", i, v);
				cr_expect_eq(o.failed_side, 1, "case %zu: side %d", i, o.failed_side);
				if (cases[i].sverify >= 0)
					cr_expect_eq(o.sverify, cases[i].sverify,
						     "case %zu at 0x%x: %ld (%s)", i, v, o.sverify,
						     X509_verify_cert_error_string(o.sverify));
				else
					cr_expect(strstr(o.reason[1], "peer did not return a certificate"),
						  "case %zu: %s", i, o.reason[1]);
			}
			SSL_CTX_free(p);
			ktls_ctx_free(s);
		}
}

/* A TLS 1.2 client asking to renegotiate gets no_renegotiation. */
Test(policy_handshake, no_renegotiation)
{
	ktls_ctx *s = our_server("server-ec");
	SSL_CTX *p = weak_peer(0, NULL, TLS1_2_VERSION, NULL, NULL);
	SSL *c = SSL_new(p), *ss = SSL_new(s->ssl);
	struct outcome o;
	char buf[16];
	int r;

	SSL_CTX_set_verify(p, SSL_VERIFY_NONE, NULL);
	cr_assert_eq(ctx_prepare_ssl(s, ss, NULL), 0);
	run(c, ss, &o);
	cr_assert(o.ok, "%s", o.reason[0]);
	cr_assert_eq(SSL_renegotiate(c), 1);
	cr_assert_eq(SSL_do_handshake(c), -1); /* HelloRequest/ClientHello sent, waits */
	r = SSL_read(ss, buf, sizeof(buf));
	cr_expect_leq(r, 0, "server read data during a renegotiation");
	cr_expect_eq(SSL_renegotiate_pending(ss), 0, "server started renegotiating");
	r = SSL_do_handshake(c);
	cr_expect_neq(r, 1, "renegotiation completed");
	ERR_clear_error();
	SSL_free(c);
	SSL_free(ss);
	SSL_CTX_free(p);
	ktls_ctx_free(s);
}

/*
 * A TLS 1.2 server asking our client to renegotiate (HelloRequest) gets a
 * no_renegotiation alert, never a new handshake.  This is what
 * SSL_OP_NO_RENEGOTIATION adds: OpenSSL 3.0 clients renegotiate otherwise.
 */
Test(policy_handshake, client_refuses_server_renegotiation)
{
	ktls_ctx *c = our_client();
	SSL_CTX *p = weak_peer(1, "server-ec", TLS1_2_VERSION, NULL, NULL);
	SSL *cs = SSL_new(c->ssl), *ss = SSL_new(p);
	struct outcome o;
	char buf[16];
	unsigned long e;
	int r;

	cr_assert_eq(ctx_prepare_ssl(c, cs, "localhost"), 0);
	run(cs, ss, &o);
	cr_assert(o.ok, "%s", o.reason[0]);
	cr_assert_eq(SSL_renegotiate(ss), 1);
	cr_assert_eq(SSL_do_handshake(ss), 1); /* sends HelloRequest */
	r = SSL_read(cs, buf, sizeof(buf));     /* our client answers it */
	cr_expect_leq(r, 0);
	ERR_clear_error();
	r = SSL_read(ss, buf, sizeof(buf)); /* the server reads the answer */
	e = ERR_peek_error();
	cr_expect_leq(r, 0);
	cr_expect(SSL_renegotiate_pending(ss) || r < 0, "renegotiation finished");
	cr_expect(e && strstr(ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "",
			      "no renegotiation"), "server saw: %s",
		  e ? ERR_reason_error_string(e) : "(nothing)");
	ERR_clear_error();
	SSL_free(cs);
	SSL_free(ss);
	SSL_CTX_free(p);
	ktls_ctx_free(c);
}

/*
 * What the ClientHello must not ask for: post-handshake auth (a server
 * cannot request a certificate later), max_fragment_length; and nothing is
 * compressed.
 */
Test(policy_handshake, client_offers_no_pha_mfl_or_compression)
{
	ktls_ctx *c = our_client();
	SSL_CTX *p = weak_peer(1, "server-ec", 0, NULL, NULL);
	SSL *cs = SSL_new(c->ssl), *ss = SSL_new(p);
	struct outcome o;

	cr_assert_eq(ctx_prepare_ssl(c, cs, "localhost"), 0);
	run(cs, ss, &o);
	cr_assert(o.ok, "%s", o.reason[0]);
	cr_expect_eq(o.version, TLS1_3_VERSION);
	SSL_set_verify(ss, SSL_VERIFY_PEER, NULL);
	ERR_clear_error();
	cr_expect_eq(SSL_verify_client_post_handshake(ss), 0,
		     "the server could start post-handshake auth");
	cr_expect_eq(ERR_GET_REASON(ERR_peek_error()), SSL_R_EXTENSION_NOT_RECEIVED, "%s",
		     ERR_reason_error_string(ERR_peek_error()));
	ERR_clear_error();
	cr_expect_eq(SSL_SESSION_get_max_fragment_length(SSL_get_session(ss)),
		     TLSEXT_max_fragment_length_DISABLED);
	cr_expect_null(SSL_get_current_compression(cs));
	SSL_free(cs);
	SSL_free(ss);
	SSL_CTX_free(p);
	ktls_ctx_free(c);
}

/* Server preference holds for the TLS 1.3 suites too. */
Test(policy_handshake, server_preference_tls13)
{
	ktls_ctx *s = our_server("server-ec");
	SSL_CTX *p = weak_peer(0, NULL, 0, NULL,
			       "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
	struct outcome o;

	SSL_CTX_set_verify(p, SSL_VERIFY_NONE, NULL);
	server_for(s, p, &o);
	cr_expect(o.ok, "%s", o.reason[1]);
	cr_expect_eq(o.version, TLS1_3_VERSION);
	cr_expect_str_eq(o.cipher, "TLS_AES_256_GCM_SHA384");
	SSL_CTX_free(p);
	ktls_ctx_free(s);
}

/* num_tickets reaches the wire: the client counts NewSessionTicket messages. */
static int tickets_seen;

static int count_ticket(SSL *ssl, SSL_SESSION *sess)
{
	tickets_seen++;
	return 0; /* not kept */
}

Test(policy_handshake, num_tickets_sent)
{
	unsigned want[] = {2, 0, 5};

	for (int i = 0; i < 3; i++) {
		ktls_ctx *s = our_server("server-ec");
		SSL_CTX *p = weak_peer(0, NULL, 0, NULL, NULL);
		SSL *cs, *ss;
		struct outcome o;
		char buf[8];

		if (i)
			cr_assert_eq(ktls_ctx_set_num_tickets(s, want[i]), 0);
		SSL_CTX_set_verify(p, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(p, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
		SSL_CTX_sess_set_new_cb(p, count_ticket);
		cs = SSL_new(p);
		ss = SSL_new(s->ssl);
		cr_assert_eq(ctx_prepare_ssl(s, ss, NULL), 0);
		tickets_seen = 0;
		run(cs, ss, &o);
		cr_assert(o.ok, "%s", o.reason[1]);
		/* Tickets follow the server's Finished; a read makes the client see them. */
		cr_assert_eq(SSL_write(ss, "x", 1), 1);
		cr_assert_eq(SSL_read(cs, buf, sizeof(buf)), 1);
		cr_expect_eq(tickets_seen, (int)want[i], "num_tickets %u: client saw %d", want[i],
			     tickets_seen);
		SSL_free(cs);
		SSL_free(ss);
		SSL_CTX_free(p);
		ktls_ctx_free(s);
	}
}

/* What the setters narrowed is what goes on the wire. */
Test(policy_handshake, setters_reach_the_wire)
{
	ktls_ctx *c = our_client(), *c13 = our_client(), *cc = our_client();
	ktls_ctx *s12 = our_server("server-rsa");
	SSL_CTX *aes128 = weak_peer(1, "server-rsa", TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256",
				    NULL);
	SSL_CTX *any12 = weak_peer(1, "server-rsa", TLS1_2_VERSION, NULL, NULL);
	SSL_CTX *any = weak_peer(1, "server-rsa", 0, NULL, NULL);
	SSL_CTX *client = weak_peer(0, NULL, 0, NULL, NULL);
	struct outcome o;

	cr_assert_eq(ktls_ctx_set_ciphers(c, "ECDHE-RSA-AES256-GCM-SHA384"), 0);
	cr_assert_eq(ktls_ctx_set_max_version(c, KTLS_TLS1_2), 0);
	client_to(c, aes128, "localhost", &o);
	cr_expect(!o.ok, "a suite outside the narrowed list was negotiated: %s", o.cipher);
	client_to(c, any12, "localhost", &o);
	cr_expect(o.ok, "%s", o.reason[0]);
	cr_expect_str_eq(o.cipher, "ECDHE-RSA-AES256-GCM-SHA384");

	cr_assert_eq(ktls_ctx_set_min_version(c13, KTLS_TLS1_3), 0);
	client_to(c13, any12, "localhost", &o);
	cr_expect(!o.ok, "TLS 1.2 negotiated with minimum TLS 1.3");
	cr_expect(strstr(o.reason[0], "protocol version"), "%s", o.reason[0]);

	cr_assert_eq(ktls_ctx_set_ciphersuites(cc, "TLS_CHACHA20_POLY1305_SHA256"), 0);
	client_to(cc, any, "localhost", &o);
	cr_expect(o.ok, "%s", o.reason[0]);
	cr_expect_str_eq(o.cipher, "TLS_CHACHA20_POLY1305_SHA256");

	cr_assert_eq(ktls_ctx_set_max_version(s12, KTLS_TLS1_2), 0);
	SSL_CTX_set_verify(client, SSL_VERIFY_NONE, NULL);
	server_for(s12, client, &o);
	cr_expect(o.ok, "%s", o.reason[1]);
	cr_expect_eq(o.version, TLS1_2_VERSION);

	SSL_CTX_free(aes128);
	SSL_CTX_free(any12);
	SSL_CTX_free(any);
	SSL_CTX_free(client);
	ktls_ctx_free(c);
	ktls_ctx_free(c13);
	ktls_ctx_free(cc);
	ktls_ctx_free(s12);
}
