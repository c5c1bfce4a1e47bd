/*
 * ctx.c - contexts: one SSL_CTX per role with the strict policy applied,
 * setters that may only tighten it, and the per-connection part of the
 * policy (server name, SNI, host check) applied to every new SSL.  What
 * is read from files or memory (our chain, trust, DH parameters):
 * ctx_load.c.
 *
 * Freezing: SSL_new() snapshots part of an SSL_CTX and shares the rest
 * (cipher list, trust store), so changing a context under live connections
 * gives mixed results.  ktls_conn_new freezes the context before SSL_new
 * (ctx_freeze), after which every setter fails except the trust-store
 * additions, which OpenSSL locks internally.  A setter checks and changes
 * under cfg_mu, and freezing takes it too: no SSL_new can run beside a
 * setter that is freeing what it reads (a cipher list, a certificate).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "proto.h"
#include "policy.h"

int ctx_enter(const struct ktls_ctx *ctx)
{
	if (!ctx) {
		errno = EINVAL;
		return -1;
	}
	ctx_clearerr(ctx);
	ERR_clear_error();
	return 0;
}

int ctx_mutable(struct ktls_ctx *ctx, const char *what, struct ktls_ctx **guard)
{
	if (ctx_enter(ctx))
		return -1;
	pthread_mutex_lock(&ctx->cfg_mu);
	if (atomic_load(&ctx->frozen)) {
		pthread_mutex_unlock(&ctx->cfg_mu);
		return ctx_fail(ctx, KTLS_ERR_INVALID, "context in use: %s cannot change after a "
				"connection was made", what);
	}
	*guard = ctx;
	return 0;
}

void ctx_setter_end(struct ktls_ctx **guard)
{
	if (*guard)
		pthread_mutex_unlock(&(*guard)->cfg_mu);
}

void ctx_freeze(struct ktls_ctx *ctx)
{
	if (atomic_load(&ctx->frozen))
		return;
	pthread_mutex_lock(&ctx->cfg_mu);
	atomic_store(&ctx->frozen, 1);
	pthread_mutex_unlock(&ctx->cfg_mu);
}

int ctx_openssl_err(const struct ktls_ctx *ctx, int code, const char *what)
{
	char r[KTLS_ERRLEN];

	if (ERR_GET_REASON(ERR_peek_error()) == ERR_R_MALLOC_FAILURE)
		code = KTLS_ERR_RESOURCE;
	return ctx_fail(ctx, code, "%s: %s", what, ssl_reason(r, sizeof(r)));
}

static int verify_bits(int mode)
{
	switch (mode) {
	case KTLS_VERIFY_OPTIONAL:
		return SSL_VERIFY_PEER;
	case KTLS_VERIFY_REQUIRED:
		return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	default:
		return SSL_VERIFY_NONE;
	}
}

/* Everything the policy fixes on a fresh SSL_CTX.  0 or -1 (reason set). */
static int apply_policy(struct ktls_ctx *ctx)
{
	SSL_CTX *s = ctx->ssl;
	X509_VERIFY_PARAM *p = SSL_CTX_get0_param(s);

	/*
	 * Start from no options at all: a system openssl.cnf may have set
	 * SSL_OP_ENABLE_KTLS (we install keys ourselves and must see every
	 * record), allowed legacy renegotiation, or anything else.
	 */
	SSL_CTX_clear_options(s, SSL_CTX_get_options(s));
	SSL_CTX_set_options(s, (SSL_OP_ALL & ~SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS) |
				       SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				       SSL_OP_NO_RENEGOTIATION | SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
	SSL_CTX_set_security_level(s, POLICY_SECLEVEL);
	if (!SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "setting the protocol versions");
	if (!SSL_CTX_set_cipher_list(s, POLICY_TLS12_DEFAULT))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "setting the TLS 1.2 suites");
	if (!SSL_CTX_set_ciphersuites(s, POLICY_TLS13_DEFAULT))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "setting the TLS 1.3 suites");
	/* keys.c counts records; read-ahead would hide bytes in OpenSSL. */
	SSL_CTX_set_read_ahead(s, 0);
	SSL_CTX_set_max_early_data(s, 0);
	SSL_CTX_set_post_handshake_auth(s, 0);
	SSL_CTX_set_tlsext_max_fragment_length(s, TLSEXT_max_fragment_length_DISABLED);
	/* Also settable from openssl.cnf; pin OpenSSL's own defaults. */
	SSL_CTX_set_dh_auto(s, 0);
	if (!SSL_CTX_set_block_padding(s, 0) || !SSL_CTX_set_num_tickets(s, 2))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "resetting padding and tickets");
	X509_VERIFY_PARAM_clear_flags(p, ~0UL);
	X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_TRUSTED_FIRST);
	X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (ctx->role == KTLS_CLIENT) {
		ctx->verify = KTLS_VERIFY_REQUIRED;
		ctx->check_hostname = 1;
	} else {
		ctx->verify = KTLS_VERIFY_NONE;
		ctx->check_hostname = 0;
		/* Resumption with client certificates needs a session id context. */
		if (!SSL_CTX_set_session_id_context(s, (const unsigned char *)"libktls", 7))
			return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "setting the session id context");
		/* Resumption by ticket only: see ktls_ctx_set_num_tickets. */
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	}
	SSL_CTX_set_verify(s, verify_bits(ctx->verify), NULL);
	return 0;
}

KTLS_API ktls_ctx *ktls_ctx_new(int role)
{
	struct ktls_ctx *ctx;

	if (role != KTLS_CLIENT && role != KTLS_SERVER) {
		errno = EINVAL;
		return NULL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		errno = ENOMEM;
		return NULL;
	}
	ctx->role = role;
	ctx_errors_init(ctx);
	atomic_init(&ctx->frozen, 0);
	pthread_mutex_init(&ctx->cfg_mu, NULL);
	atomic_init(&ctx->refs, 1);
	ctx->ssl = SSL_CTX_new(role == KTLS_CLIENT ? TLS_client_method() : TLS_server_method());
	errno = ENOMEM;
	if (!ctx->ssl || apply_policy(ctx) || keys_ctx_init(ctx->ssl)) {
		int e = errno; /* keys_ctx_init's: a refused SSLKEYLOGFILE */

		ERR_clear_error();
		SSL_CTX_free(ctx->ssl);
		ctx_errors_free(ctx);
		pthread_mutex_destroy(&ctx->cfg_mu);
		free(ctx);
		errno = e;
		return NULL;
	}
	return ctx;
}

void ctx_ref(struct ktls_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
}

void ctx_unref(struct ktls_ctx *ctx)
{
	if (atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	SSL_CTX_free(ctx->ssl);
	ctx_errors_free(ctx);
	pthread_mutex_destroy(&ctx->cfg_mu);
	free(ctx->alpn);
	free(ctx->alpn_text);
	sni_free(ctx->sni);
	free(ctx);
}

KTLS_API void ktls_ctx_free(ktls_ctx *ctx)
{
	if (ctx)
		ctx_unref(ctx);
}

KTLS_API int ktls_ctx_error_code(const ktls_ctx *ctx)
{
	return ctx_geterr_code(ctx);
}

KTLS_API const char *ktls_ctx_error(const ktls_ctx *ctx)
{
	return ctx_geterr(ctx);
}

KTLS_API int ktls_ctx_role(const ktls_ctx *ctx)
{
	return ctx ? ctx->role : -1;
}

/* ---- suites and versions --------------------------------------------------------- */

/* Narrow one version's suites: the policy checks the list, OpenSSL applies it. */
static int set_suites(ktls_ctx *ctx, const char *what, const char *list,
		      int (*narrow)(const char *, char *, size_t, char *, size_t),
		      int (*apply)(SSL_CTX *, const char *), const char *call)
{
	char names[1024], err[KTLS_ERRLEN];
	int code;

	CTX_SETTER(ctx, what);
	if ((code = narrow(list, names, sizeof(names), err, sizeof(err))))
		return ctx_fail(ctx, code, "%s", err);
	if (!apply(ctx->ssl, names))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, call);
	return 0;
}

KTLS_API int ktls_ctx_set_ciphers(ktls_ctx *ctx, const char *list)
{
	return set_suites(ctx, "the TLS 1.2 cipher list", list, policy_narrow_tls12,
			  SSL_CTX_set_cipher_list, "set_ciphers");
}

KTLS_API int ktls_ctx_set_ciphersuites(ktls_ctx *ctx, const char *list)
{
	return set_suites(ctx, "the TLS 1.3 ciphersuites", list, policy_narrow_tls13,
			  SSL_CTX_set_ciphersuites, "set_ciphersuites");
}

static int check_version(const struct ktls_ctx *ctx, int v, const char *which)
{
	const char *name = proto_version_name(v);

	if (!name)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "%s version 0x%04x: not a TLS version (use 0x0303 for "
				       "TLS 1.2, 0x0304 for TLS 1.3)", which, (unsigned)v);
	if (v < TLS1_2_VERSION)
		return ctx_fail(ctx, KTLS_ERR_POLICY, "%s version %s is below the policy minimum "
				"TLS 1.2", which, name);
	return 0;
}

KTLS_API int ktls_ctx_set_min_version(ktls_ctx *ctx, int version)
{
	int max;

	CTX_SETTER(ctx, "the minimum version");
	if (check_version(ctx, version, "minimum"))
		return -1;
	max = SSL_CTX_get_max_proto_version(ctx->ssl);
	if (max && version > max)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "minimum version %s is above the maximum %s",
				proto_version_name(version), proto_version_name(max));
	if (!SSL_CTX_set_min_proto_version(ctx->ssl, version))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "set_min_version");
	return 0;
}

KTLS_API int ktls_ctx_set_max_version(ktls_ctx *ctx, int version)
{
	int min;

	CTX_SETTER(ctx, "the maximum version");
	if (check_version(ctx, version, "maximum"))
		return -1;
	min = SSL_CTX_get_min_proto_version(ctx->ssl);
	if (version < min)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "maximum version %s is below the minimum %s",
				proto_version_name(version), proto_version_name(min));
	if (!SSL_CTX_set_max_proto_version(ctx->ssl, version))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "set_max_version");
	return 0;
}

/* ---- verification ------------------------------------------------------------------ */

KTLS_API int ktls_ctx_set_verify(ktls_ctx *ctx, int mode)
{
	CTX_SETTER(ctx, "the verify mode");
	if (mode != KTLS_VERIFY_NONE && mode != KTLS_VERIFY_OPTIONAL &&
	    mode != KTLS_VERIFY_REQUIRED)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "unknown verify mode %d", mode);
	if (mode == KTLS_VERIFY_NONE && ctx->check_hostname)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "cannot set verify mode NONE while check_hostname is on "
				       "(turn check_hostname off first)");
	ctx->verify = mode;
	SSL_CTX_set_verify(ctx->ssl, verify_bits(mode), NULL);
	return 0;
}

KTLS_API int ktls_ctx_set_check_hostname(ktls_ctx *ctx, int on)
{
	CTX_SETTER(ctx, "check_hostname");
	on = !!on;
	if (ctx->role != KTLS_CLIENT) {
		if (!on)
			return 0; /* already off: a server never checks names */
		return ctx_fail(ctx, KTLS_ERR_INVALID, "check_hostname applies to client contexts "
				"only");
	}
	/* As Python: checking a name without verifying is meaningless. */
	if (on && ctx->verify == KTLS_VERIFY_NONE) {
		ctx->verify = KTLS_VERIFY_REQUIRED;
		SSL_CTX_set_verify(ctx->ssl, verify_bits(ctx->verify), NULL);
	}
	ctx->check_hostname = on;
	return 0;
}

/*
 * kTLS opt-ins: only recorded here; kernel_install.c applies them after the keys
 * are installed, and a kernel that refuses them leaves them off.
 */
KTLS_API int ktls_ctx_set_zerocopy_sendfile(ktls_ctx *ctx, int on)
{
	CTX_SETTER(ctx, "zerocopy_sendfile");
	ctx->zc_sendfile = !!on;
	return 0;
}

KTLS_API int ktls_ctx_set_rx_no_pad(ktls_ctx *ctx, int on)
{
	CTX_SETTER(ctx, "rx_no_pad");
	ctx->rx_no_pad = !!on;
	return 0;
}

/* ---- server-only settings --------------------------------------------------------- */

KTLS_API int ktls_ctx_set_num_tickets(ktls_ctx *ctx, unsigned n)
{
	CTX_SETTER(ctx, "num_tickets");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "num_tickets applies to server contexts only");
	if (!SSL_CTX_set_num_tickets(ctx->ssl, n))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "set_num_tickets");
	/* 0 means no resumption: TLS 1.2 tickets go too. */
	if (n == 0)
		SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET);
	else
		SSL_CTX_clear_options(ctx->ssl, SSL_OP_NO_TICKET);
	return 0;
}

/* ---- per connection --------------------------------------------------------------- */

int ctx_prepare_ssl(struct ktls_ctx *ctx, SSL *ssl, const char *server_name)
{
	ASN1_OCTET_STRING *ip;
	X509_VERIFY_PARAM *p = SSL_get0_param(ssl);

	ctx_clearerr(ctx);
	ctx_freeze(ctx); /* ktls_conn_new did, before SSL_new; any other caller too */
	SSL_set_verify(ssl, verify_bits(ctx->verify), NULL);
	SSL_set_read_ahead(ssl, 0);
	X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (ctx->role == KTLS_SERVER) {
		if (server_name)
			return ctx_fail(ctx, KTLS_ERR_INVALID, "a server connection takes no "
					"server_name (got \"%s\")", server_name);
		return 0;
	}
	if (!server_name) {
		if (ctx->check_hostname)
			return ctx_fail(ctx, KTLS_ERR_INVALID, "check_hostname requires server_name");
		return 0;
	}
	if (!*server_name || *server_name == '.')
		return ctx_fail(ctx, KTLS_ERR_INVALID, "server_name cannot be empty or start with "
				"a dot");
	ip = a2i_IPADDRESS(server_name);
	if (ip) {
		/* No SNI for addresses (RFC 6066 3); match an IP SAN instead. */
		ASN1_OCTET_STRING_free(ip);
		if (ctx->check_hostname && !X509_VERIFY_PARAM_set1_ip_asc(p, server_name))
			return ctx_openssl_err(ctx, KTLS_ERR_INVALID, "server_name");
		return 0;
	}
	ERR_clear_error();
	if (strlen(server_name) > 255)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "server_name is longer than 255 bytes");
	if (!SSL_set_tlsext_host_name(ssl, server_name))
		return ctx_openssl_err(ctx, KTLS_ERR_INVALID, "setting SNI");
	if (ctx->check_hostname && !SSL_set1_host(ssl, server_name))
		return ctx_openssl_err(ctx, KTLS_ERR_INVALID, "server_name");
	return 0;
}
