/*
 * ctx.c - contexts: one SSL_CTX per role with the strict policy applied,
 * setters that may only tighten it, and the per-connection part of the
 * policy (server name, SNI, host check) applied to every new SSL.
 *
 * Freezing: SSL_new() snapshots part of an SSL_CTX and shares the rest
 * (cipher list, trust store), so changing a context under live connections
 * gives mixed results.  Once ctx_prepare_ssl() has run, every setter fails
 * except the trust-store additions, which OpenSSL locks internally.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "policy.h"

/* Every public entry: no stale reason, no stale OpenSSL errors. */
static int enter(const struct ktls_ctx *ctx)
{
	if (!ctx) {
		errno = EINVAL;
		return -1;
	}
	ctx_clearerr(ctx);
	ERR_clear_error();
	return 0;
}

int ctx_mutable(const struct ktls_ctx *ctx, const char *what)
{
	if (enter(ctx))
		return -1;
	if (atomic_load(&ctx->frozen))
		return ctx_seterr(ctx, "context in use: %s cannot change after a connection was "
				       "made", what);
	return 0;
}

static int openssl_err(const struct ktls_ctx *ctx, const char *what)
{
	char r[KTLS_ERRLEN];

	return ctx_seterr(ctx, "%s: %s", what, ssl_reason(r, sizeof(r)));
}

static const char *version_name(int v)
{
	switch (v) {
	case SSL3_VERSION:
		return "SSL 3.0";
	case TLS1_VERSION:
		return "TLS 1.0";
	case TLS1_1_VERSION:
		return "TLS 1.1";
	case TLS1_2_VERSION:
		return "TLS 1.2";
	case TLS1_3_VERSION:
		return "TLS 1.3";
	default:
		return NULL;
	}
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
		return openssl_err(ctx, "setting the protocol versions");
	if (!SSL_CTX_set_cipher_list(s, POLICY_TLS12_DEFAULT))
		return openssl_err(ctx, "setting the TLS 1.2 suites");
	if (!SSL_CTX_set_ciphersuites(s, POLICY_TLS13_DEFAULT))
		return openssl_err(ctx, "setting the TLS 1.3 suites");
	/* keys.c counts records; read-ahead would hide bytes in OpenSSL. */
	SSL_CTX_set_read_ahead(s, 0);
	SSL_CTX_set_max_early_data(s, 0);
	SSL_CTX_set_post_handshake_auth(s, 0);
	SSL_CTX_set_tlsext_max_fragment_length(s, TLSEXT_max_fragment_length_DISABLED);
	/* Also settable from openssl.cnf; pin OpenSSL's own defaults. */
	SSL_CTX_set_dh_auto(s, 0);
	if (!SSL_CTX_set_block_padding(s, 0) || !SSL_CTX_set_num_tickets(s, 2))
		return openssl_err(ctx, "resetting padding and tickets");
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
			return openssl_err(ctx, "setting the session id context");
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
	atomic_init(&ctx->frozen, 0);
	atomic_init(&ctx->refs, 1);
	ctx->ssl = SSL_CTX_new(role == KTLS_CLIENT ? TLS_client_method() : TLS_server_method());
	if (!ctx->ssl || apply_policy(ctx) || keys_ctx_init(ctx->ssl)) {
		ERR_clear_error();
		SSL_CTX_free(ctx->ssl);
		ctx_clearerr(ctx);
		free(ctx);
		errno = ENOMEM;
		return NULL;
	}
	/* error.c keys reasons by address: a freed context's may linger here. */
	ctx_clearerr(ctx);
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
	ctx_clearerr(ctx);
	SSL_CTX_free(ctx->ssl);
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

/* ---- our certificate chain ------------------------------------------------ */

static int no_password(char *buf, int size, int rwflag, void *u)
{
	*(int *)u = 1;
	return 0;
}

static BIO *open_file(const struct ktls_ctx *ctx, const char *what, const char *path)
{
	FILE *f = fopen(path, "re");
	BIO *b;

	if (!f) {
		ctx_seterr(ctx, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	b = BIO_new_fp(f, BIO_CLOSE);
	if (!b) {
		fclose(f);
		ctx_seterr(ctx, "out of memory");
	}
	return b;
}

/* All PEM certificates of certfile, leaf first.  NULL with the reason set. */
static STACK_OF(X509) *read_chain(const struct ktls_ctx *ctx, const char *certfile)
{
	STACK_OF(X509) *sk;
	BIO *b = open_file(ctx, "certfile", certfile);
	X509 *x;

	if (!b)
		return NULL;
	sk = sk_X509_new_null();
	if (!sk) {
		BIO_free(b);
		ctx_seterr(ctx, "out of memory");
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			ctx_seterr(ctx, "out of memory");
			goto fail;
		}
	}
	/* The loop ends at "no start line" at the end of the file; anything
	 * else is a broken certificate. */
	if (ERR_GET_LIB(ERR_peek_last_error()) != ERR_LIB_PEM ||
	    ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE ||
	    ERR_peek_error() != ERR_peek_last_error()) {
		char r[KTLS_ERRLEN];

		ctx_seterr(ctx, "certfile %s: %s", certfile, ssl_reason(r, sizeof(r)));
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		ctx_seterr(ctx, "certfile %s: no PEM certificate found", certfile);
		goto fail;
	}
	BIO_free(b);
	return sk;
fail:
	BIO_free(b);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

static EVP_PKEY *read_key(const struct ktls_ctx *ctx, const char *keyfile)
{
	BIO *b = open_file(ctx, "keyfile", keyfile);
	EVP_PKEY *k;
	int asked = 0;

	if (!b)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, no_password, &asked);
	BIO_free(b);
	if (!k) {
		ERR_clear_error();
		if (asked)
			ctx_seterr(ctx, "keyfile %s: the private key is encrypted; "
					"encrypted keys are not supported", keyfile);
		else
			ctx_seterr(ctx, "keyfile %s: no PEM private key found", keyfile);
	}
	return k;
}

KTLS_API int ktls_ctx_load_cert_chain(ktls_ctx *ctx, const char *certfile, const char *keyfile)
{
	STACK_OF(X509) *sk;
	EVP_PKEY *key = NULL;
	X509 *leaf;
	char err[KTLS_ERRLEN];
	int ret = -1;

	if (ctx_mutable(ctx, "the certificate chain"))
		return -1;
	if (!certfile)
		return ctx_seterr(ctx, "load_cert_chain: certfile is NULL");
	sk = read_chain(ctx, certfile);
	if (!sk)
		return -1;
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (policy_check_cert(sk_X509_value(sk, i), i, err, sizeof(err))) {
			ctx_seterr(ctx, "%s (%s)", err, certfile);
			goto out;
		}
	key = read_key(ctx, keyfile ? keyfile : certfile);
	if (!key)
		goto out;
	leaf = sk_X509_shift(sk);
	if (!X509_check_private_key(leaf, key)) {
		ERR_clear_error();
		ctx_seterr(ctx, "the private key in %s does not match the certificate in %s",
			   keyfile ? keyfile : certfile, certfile);
		X509_free(leaf);
		goto out;
	}
	/* One call, so a failure leaves the previous chain in place. */
	if (!SSL_CTX_use_cert_and_key(ctx->ssl, leaf, key, sk, 1))
		openssl_err(ctx, certfile);
	else
		ret = 0;
	X509_free(leaf);
out:
	EVP_PKEY_free(key);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

/* ---- trust store ---------------------------------------------------------------- */

/*
 * Add every certificate and CRL of a parsed list; nothing is added unless
 * the whole input parsed.  X509_STORE_add_* lock the store and treat an
 * object already present as success, so duplicates count once.
 */
static int add_infos(const struct ktls_ctx *ctx, STACK_OF(X509_INFO) *infos, const char *what)
{
	X509_STORE *st = SSL_CTX_get_cert_store(ctx->ssl);
	int found = 0;

	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);

		if (xi->x509) {
			if (!X509_STORE_add_cert(st, xi->x509))
				return openssl_err(ctx, what);
			found++;
		}
		if (xi->crl) {
			if (!X509_STORE_add_crl(st, xi->crl))
				return openssl_err(ctx, what);
			found++;
		}
	}
	if (!found)
		return ctx_seterr(ctx, "no certificate or CRL found in %s", what);
	return 0;
}

static int load_pem_bio(const struct ktls_ctx *ctx, BIO *b, const char *what)
{
	STACK_OF(X509_INFO) *infos;
	int asked = 0, ret;

	infos = PEM_X509_INFO_read_bio(b, NULL, no_password, &asked);
	if (!infos)
		return openssl_err(ctx, what);
	ret = add_infos(ctx, infos, what);
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	return ret;
}

static int load_file(const struct ktls_ctx *ctx, const char *path, const char *what)
{
	char name[KTLS_ERRLEN];
	BIO *b = open_file(ctx, what, path);
	int ret;

	if (!b)
		return -1;
	snprintf(name, sizeof(name), "%s %s", what, path);
	ret = load_pem_bio(ctx, b, name);
	BIO_free(b);
	return ret;
}

/* OpenSSL's c_rehash names: 8 hex digits, '.', optional 'r', digits. */
static int hashed_name(const char *n)
{
	size_t i;

	for (i = 0; i < 8; i++)
		if (!strchr("0123456789abcdef", n[i]) || !n[i])
			return 0;
	if (n[8] != '.')
		return 0;
	n += 9 + (n[9] == 'r');
	return *n && strspn(n, "0123456789") == strlen(n);
}

/*
 * capath on a context already in use: adding a lookup directory changes
 * lists that handshakes read without a lock, so load the hashed files into
 * the (locked) store now instead of lazily.
 */
static int load_dir_now(const struct ktls_ctx *ctx, const char *capath)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(capath);
	int found = 0;

	if (!d)
		return ctx_seterr(ctx, "capath %s: %s", capath, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!hashed_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", capath, de->d_name);
		if (load_file(ctx, path, "capath file")) {
			closedir(d);
			return -1;
		}
		found++;
	}
	closedir(d);
	if (!found)
		return ctx_seterr(ctx, "capath %s: no hashed certificate files (run c_rehash)",
				  capath);
	return 0;
}

KTLS_API int ktls_ctx_load_verify_locations(ktls_ctx *ctx, const char *cafile, const char *capath)
{
	struct stat st;

	if (enter(ctx))
		return -1;
	if (!cafile && !capath)
		return ctx_seterr(ctx, "load_verify_locations: cafile and capath are both NULL");
	if (cafile && load_file(ctx, cafile, "cafile"))
		return -1;
	if (!capath)
		return 0;
	if (stat(capath, &st))
		return ctx_seterr(ctx, "capath %s: %s", capath, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ctx_seterr(ctx, "capath %s: %s", capath, strerror(ENOTDIR));
	if (atomic_load(&ctx->frozen))
		return load_dir_now(ctx, capath);
	if (!SSL_CTX_load_verify_dir(ctx->ssl, capath))
		return openssl_err(ctx, capath);
	return 0;
}

/* One or more concatenated DER certificates or CRLs. */
static int load_der(const struct ktls_ctx *ctx, const unsigned char *buf, size_t len)
{
	STACK_OF(X509_INFO) *infos = sk_X509_INFO_new_null();
	const unsigned char *p = buf, *end = buf + len;
	int ret = -1;

	if (!infos)
		return ctx_seterr(ctx, "out of memory");
	while (p < end) {
		const unsigned char *q = p;
		X509_INFO *xi = X509_INFO_new();

		if (!xi || !sk_X509_INFO_push(infos, xi)) {
			X509_INFO_free(xi);
			ctx_seterr(ctx, "out of memory");
			goto out;
		}
		xi->x509 = d2i_X509(NULL, &q, end - p);
		if (!xi->x509) {
			q = p;
			xi->crl = d2i_X509_CRL(NULL, &q, end - p);
		}
		if (!xi->x509 && !xi->crl) {
			ERR_clear_error();
			if (p == buf)
				ctx_seterr(ctx, "no certificate or CRL found in memory "
						"(neither PEM nor DER)");
			else
				ctx_seterr(ctx, "memory: bytes from offset %zu are not a DER "
						"certificate or CRL", (size_t)(p - buf));
			goto out;
		}
		p = q;
	}
	ret = add_infos(ctx, infos, "memory");
out:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	return ret;
}

KTLS_API int ktls_ctx_load_verify_mem(ktls_ctx *ctx, const void *data, size_t len)
{
	BIO *b;
	int ret;

	if (enter(ctx))
		return -1;
	if (!data && len)
		return ctx_seterr(ctx, "load_verify_mem: data is NULL");
	if (!len)
		return ctx_seterr(ctx, "no certificate or CRL found in memory (empty)");
	if (len > INT_MAX)
		return ctx_seterr(ctx, "load_verify_mem: %zu bytes is too large", len);
	if (!memmem(data, len, "-----BEGIN ", 11))
		return load_der(ctx, data, len);
	b = BIO_new_mem_buf(data, (int)len);
	if (!b)
		return ctx_seterr(ctx, "out of memory");
	ret = load_pem_bio(ctx, b, "memory");
	BIO_free(b);
	return ret;
}

KTLS_API int ktls_ctx_cert_store_stats(const ktls_ctx *ctx, struct ktls_cert_store_stats *out)
{
	X509_STORE *st;
	STACK_OF(X509_OBJECT) *objs;

	if (enter(ctx))
		return -1;
	if (!out)
		return ctx_seterr(ctx, "cert_store_stats: out is NULL");
	memset(out, 0, sizeof(*out));
	st = SSL_CTX_get_cert_store(ctx->ssl);
	/* Handshakes may add lazily found capath entries meanwhile. */
	if (!X509_STORE_lock(st))
		return openssl_err(ctx, "locking the trust store");
	objs = X509_STORE_get0_objects(st);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);

		switch (X509_OBJECT_get_type(o)) {
		case X509_LU_X509:
			out->x509++;
			if (X509_check_ca(X509_OBJECT_get0_X509(o)))
				out->x509_ca++;
			break;
		case X509_LU_CRL:
			out->crl++;
			break;
		default:
			break;
		}
	}
	X509_STORE_unlock(st);
	return 0;
}

/* ---- suites and versions --------------------------------------------------------- */

KTLS_API int ktls_ctx_set_ciphers(ktls_ctx *ctx, const char *list)
{
	char names[1024], err[KTLS_ERRLEN];

	if (ctx_mutable(ctx, "the TLS 1.2 cipher list"))
		return -1;
	if (policy_narrow_tls12(list, names, sizeof(names), err, sizeof(err)))
		return ctx_seterr(ctx, "%s", err);
	if (!SSL_CTX_set_cipher_list(ctx->ssl, names))
		return openssl_err(ctx, "set_ciphers");
	return 0;
}

KTLS_API int ktls_ctx_set_ciphersuites(ktls_ctx *ctx, const char *list)
{
	char names[256], err[KTLS_ERRLEN];

	if (ctx_mutable(ctx, "the TLS 1.3 ciphersuites"))
		return -1;
	if (policy_narrow_tls13(list, names, sizeof(names), err, sizeof(err)))
		return ctx_seterr(ctx, "%s", err);
	if (!SSL_CTX_set_ciphersuites(ctx->ssl, names))
		return openssl_err(ctx, "set_ciphersuites");
	return 0;
}

static int check_version(const struct ktls_ctx *ctx, int v, const char *which)
{
	const char *name = version_name(v);

	if (!name)
		return ctx_seterr(ctx, "%s version 0x%04x: not a TLS version (use 0x0303 for "
				       "TLS 1.2, 0x0304 for TLS 1.3)", which, (unsigned)v);
	if (v < TLS1_2_VERSION)
		return ctx_seterr(ctx, "%s version %s is below the policy minimum TLS 1.2",
				  which, name);
	return 0;
}

KTLS_API int ktls_ctx_set_min_version(ktls_ctx *ctx, int version)
{
	int max;

	if (ctx_mutable(ctx, "the minimum version"))
		return -1;
	if (check_version(ctx, version, "minimum"))
		return -1;
	max = SSL_CTX_get_max_proto_version(ctx->ssl);
	if (max && version > max)
		return ctx_seterr(ctx, "minimum version %s is above the maximum %s",
				  version_name(version), version_name(max));
	if (!SSL_CTX_set_min_proto_version(ctx->ssl, version))
		return openssl_err(ctx, "set_min_version");
	return 0;
}

KTLS_API int ktls_ctx_set_max_version(ktls_ctx *ctx, int version)
{
	int min;

	if (ctx_mutable(ctx, "the maximum version"))
		return -1;
	if (check_version(ctx, version, "maximum"))
		return -1;
	min = SSL_CTX_get_min_proto_version(ctx->ssl);
	if (version < min)
		return ctx_seterr(ctx, "maximum version %s is below the minimum %s",
				  version_name(version), version_name(min));
	if (!SSL_CTX_set_max_proto_version(ctx->ssl, version))
		return openssl_err(ctx, "set_max_version");
	return 0;
}

/* ---- verification ------------------------------------------------------------------ */

KTLS_API int ktls_ctx_set_verify(ktls_ctx *ctx, int mode)
{
	if (ctx_mutable(ctx, "the verify mode"))
		return -1;
	if (mode != KTLS_VERIFY_NONE && mode != KTLS_VERIFY_OPTIONAL &&
	    mode != KTLS_VERIFY_REQUIRED)
		return ctx_seterr(ctx, "unknown verify mode %d", mode);
	if (mode == KTLS_VERIFY_NONE && ctx->check_hostname)
		return ctx_seterr(ctx, "cannot set verify mode NONE while check_hostname is on "
				       "(turn check_hostname off first)");
	ctx->verify = mode;
	SSL_CTX_set_verify(ctx->ssl, verify_bits(mode), NULL);
	return 0;
}

KTLS_API int ktls_ctx_set_check_hostname(ktls_ctx *ctx, int on)
{
	if (ctx_mutable(ctx, "check_hostname"))
		return -1;
	on = !!on;
	if (ctx->role != KTLS_CLIENT) {
		if (!on)
			return 0; /* already off: a server never checks names */
		return ctx_seterr(ctx, "check_hostname applies to client contexts only");
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
 * kTLS opt-ins: only recorded here; kernel.c applies them after the keys
 * are installed, and a kernel that refuses them leaves them off.
 */
KTLS_API int ktls_ctx_set_zerocopy_sendfile(ktls_ctx *ctx, int on)
{
	if (ctx_mutable(ctx, "zerocopy_sendfile"))
		return -1;
	ctx->zc_sendfile = !!on;
	return 0;
}

KTLS_API int ktls_ctx_set_rx_no_pad(ktls_ctx *ctx, int on)
{
	if (ctx_mutable(ctx, "rx_no_pad"))
		return -1;
	ctx->rx_no_pad = !!on;
	return 0;
}

/* ---- server-only settings --------------------------------------------------------- */

KTLS_API int ktls_ctx_load_dh_params(ktls_ctx *ctx, const char *pemfile)
{
	char err[KTLS_ERRLEN];
	EVP_PKEY *dh;
	BIO *b;

	if (ctx_mutable(ctx, "the DH parameters"))
		return -1;
	if (ctx->role != KTLS_SERVER)
		return ctx_seterr(ctx, "DH parameters apply to server contexts only");
	if (!pemfile)
		return ctx_seterr(ctx, "load_dh_params: pemfile is NULL");
	b = open_file(ctx, "dhfile", pemfile);
	if (!b)
		return -1;
	dh = PEM_read_bio_Parameters(b, NULL);
	BIO_free(b);
	if (!dh || EVP_PKEY_get_base_id(dh) != EVP_PKEY_DH) {
		ERR_clear_error();
		EVP_PKEY_free(dh);
		return ctx_seterr(ctx, "dhfile %s: no PEM DH parameters found", pemfile);
	}
	if (policy_check_dh(dh, err, sizeof(err))) {
		EVP_PKEY_free(dh);
		return ctx_seterr(ctx, "%s (%s)", err, pemfile);
	}
	/* set0 takes ownership on success only. */
	if (!SSL_CTX_set0_tmp_dh_pkey(ctx->ssl, dh)) {
		EVP_PKEY_free(dh);
		return openssl_err(ctx, pemfile);
	}
	ctx->dh_loaded = 1;
	return 0;
}

KTLS_API int ktls_ctx_set_num_tickets(ktls_ctx *ctx, unsigned n)
{
	if (ctx_mutable(ctx, "num_tickets"))
		return -1;
	if (ctx->role != KTLS_SERVER)
		return ctx_seterr(ctx, "num_tickets applies to server contexts only");
	if (!SSL_CTX_set_num_tickets(ctx->ssl, n))
		return openssl_err(ctx, "set_num_tickets");
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
	/* The SSL already exists, so the context counts as used from here. */
	atomic_store(&ctx->frozen, 1);
	SSL_set_verify(ssl, verify_bits(ctx->verify), NULL);
	SSL_set_read_ahead(ssl, 0);
	X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (ctx->role == KTLS_SERVER) {
		if (server_name)
			return ctx_seterr(ctx, "a server connection takes no server_name "
					       "(got \"%s\")", server_name);
		return 0;
	}
	if (!server_name) {
		if (ctx->check_hostname)
			return ctx_seterr(ctx, "check_hostname requires server_name");
		return 0;
	}
	if (!*server_name || *server_name == '.')
		return ctx_seterr(ctx, "server_name cannot be empty or start with a dot");
	ip = a2i_IPADDRESS(server_name);
	if (ip) {
		/* No SNI for addresses (RFC 6066 3); match an IP SAN instead. */
		ASN1_OCTET_STRING_free(ip);
		if (ctx->check_hostname && !X509_VERIFY_PARAM_set1_ip_asc(p, server_name))
			return openssl_err(ctx, "server_name");
		return 0;
	}
	ERR_clear_error();
	if (strlen(server_name) > 255)
		return ctx_seterr(ctx, "server_name is longer than 255 bytes");
	if (!SSL_set_tlsext_host_name(ssl, server_name))
		return openssl_err(ctx, "setting SNI");
	if (ctx->check_hostname && !SSL_set1_host(ssl, server_name))
		return openssl_err(ctx, "server_name");
	return 0;
}
