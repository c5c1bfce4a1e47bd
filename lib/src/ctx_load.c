/*
 * ctx_load.c - what a context reads from files or memory: our certificate
 * chain and key (checked against the policy as they load), trust anchors
 * and CRLs (PEM or DER, files, hashed directories, memory), and a server's
 * DH parameters.  Every failure names the file and what was wrong with it.
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
		ctx_fail(ctx, errno == ENOMEM ? KTLS_ERR_RESOURCE : KTLS_ERR_FILE, "%s %s: %s",
			 what, path, strerror(errno));
		return NULL;
	}
	b = BIO_new_fp(f, BIO_CLOSE);
	if (!b) {
		fclose(f);
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	}
	return b;
}

/* A read-only BIO over len bytes at p; NULL with the reason set. */
static BIO *open_mem(const struct ktls_ctx *ctx, const void *p, size_t len)
{
	BIO *b = len <= INT_MAX ? BIO_new_mem_buf(p, (int)len) : NULL;

	if (!b)
		ctx_fail(ctx, len > INT_MAX ? KTLS_ERR_INVALID : KTLS_ERR_RESOURCE,
			 len > INT_MAX ? "load_cert_chain_mem: input too large" : "out of memory");
	return b;
}

/*
 * All PEM certificates from b (freed here), leaf first; certfile names
 * the source in errors.  NULL with the reason set.
 */
static STACK_OF(X509) *read_chain(const struct ktls_ctx *ctx, BIO *b, const char *certfile)
{
	STACK_OF(X509) *sk;
	X509 *x;

	if (!b)
		return NULL;
	sk = sk_X509_new_null();
	if (!sk) {
		BIO_free(b);
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
			goto fail;
		}
	}
	/* The loop ends at "no start line" at the end of the file; anything
	 * else is a broken certificate. */
	if (ERR_GET_LIB(ERR_peek_last_error()) != ERR_LIB_PEM ||
	    ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE ||
	    ERR_peek_error() != ERR_peek_last_error()) {
		char r[KTLS_ERRLEN];

		ctx_fail(ctx, KTLS_ERR_FILE, "certfile %s: %s", certfile, ssl_reason(r, sizeof(r)));
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		ctx_fail(ctx, KTLS_ERR_FILE, "certfile %s: no PEM certificate found", certfile);
		goto fail;
	}
	BIO_free(b);
	return sk;
fail:
	BIO_free(b);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

/* The PEM private key from b (freed here); keyfile names it in errors. */
static EVP_PKEY *read_key(const struct ktls_ctx *ctx, BIO *b, const char *keyfile)
{
	EVP_PKEY *k;
	int asked = 0;

	if (!b)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, no_password, &asked);
	BIO_free(b);
	if (!k) {
		ERR_clear_error();
		if (asked)
			ctx_fail(ctx, KTLS_ERR_FILE, "keyfile %s: the private key is encrypted; "
				 "encrypted keys are not supported", keyfile);
		else
			ctx_fail(ctx, KTLS_ERR_FILE, "keyfile %s: no PEM private key found", keyfile);
	}
	return k;
}

/*
 * The chain from cb and the key from kb (both freed here), checked against
 * the policy and each other: the leaf, its key and the rest of the chain,
 * or -1 with the reason set.
 */
static int parse_chain(ktls_ctx *ctx, BIO *cb, const char *certname, BIO *kb, const char *keyname,
		       X509 **leafp, EVP_PKEY **keyp, STACK_OF(X509) **skp)
{
	STACK_OF(X509) *sk;
	EVP_PKEY *key = NULL;
	X509 *leaf;
	char err[KTLS_ERRLEN];
	int code;

	sk = read_chain(ctx, cb, certname);
	if (!sk) {
		BIO_free(kb);
		return -1;
	}
	for (int i = 0; i < sk_X509_num(sk); i++)
		if ((code = policy_check_cert(sk_X509_value(sk, i), i, err, sizeof(err)))) {
			ctx_fail(ctx, code, "%s (%s)", err, certname);
			BIO_free(kb);
			goto fail;
		}
	key = read_key(ctx, kb, keyname);
	if (!key)
		goto fail;
	leaf = sk_X509_shift(sk);
	if (!X509_check_private_key(leaf, key)) {
		ERR_clear_error();
		ctx_fail(ctx, KTLS_ERR_FILE, "the private key in %s does not match the certificate "
			 "in %s", keyname, certname);
		X509_free(leaf);
		goto fail;
	}
	*leafp = leaf;
	*keyp = key;
	*skp = sk;
	return 0;
fail:
	EVP_PKEY_free(key);
	sk_X509_pop_free(sk, X509_free);
	return -1;
}

/*
 * The default chain, installed in one call so that a failure leaves the
 * previous one in place; or (sni) one more chain chosen by server name.
 */
static int load_chain(ktls_ctx *ctx, BIO *cb, const char *certname, BIO *kb, const char *keyname,
		      int sni)
{
	STACK_OF(X509) *sk;
	EVP_PKEY *key;
	X509 *leaf;
	int ret = -1;

	if (parse_chain(ctx, cb, certname, kb, keyname, &leaf, &key, &sk))
		return -1;
	if (sni) {
		ret = sni_add(ctx, leaf, key, sk, certname);
		if (ret == 0)
			ctx->last_chain = (int)sni_count(ctx->sni);
	} else if (!SSL_CTX_use_cert_and_key(ctx->ssl, leaf, key, sk, 1)) {
		ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, certname);
	} else {
		ret = 0;
		ctx->last_chain = 0;
	}
	X509_free(leaf);
	EVP_PKEY_free(key);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

/* Both files of a chain (keyfile NULL: the key is in certfile), loaded. */
static int load_chain_files(ktls_ctx *ctx, const char *call, const char *certfile,
			    const char *keyfile, int sni)
{
	BIO *cb, *kb;

	if (!certfile)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "%s: certfile is NULL", call);
	if (!keyfile)
		keyfile = certfile;
	cb = open_file(ctx, "certfile", certfile);
	if (!cb)
		return -1;
	kb = open_file(ctx, "keyfile", keyfile);
	if (!kb) {
		BIO_free(cb);
		return -1;
	}
	return load_chain(ctx, cb, certfile, kb, keyfile, sni);
}

KTLS_API int ktls_ctx_load_cert_chain(ktls_ctx *ctx, const char *certfile, const char *keyfile)
{
	CTX_SETTER(ctx, "the certificate chain");
	return load_chain_files(ctx, "load_cert_chain", certfile, keyfile, 0);
}

KTLS_API int ktls_ctx_add_cert_chain(ktls_ctx *ctx, const char *certfile, const char *keyfile)
{
	CTX_SETTER(ctx, "the certificate chains");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "add_cert_chain: server contexts only");
	return load_chain_files(ctx, "add_cert_chain", certfile, keyfile, 1);
}

/* Both buffers of a chain (key_pem NULL: the key is in cert_pem), loaded. */
static int load_chain_mem(ktls_ctx *ctx, const char *call, const void *cert_pem, size_t certlen,
			  const void *key_pem, size_t keylen, int sni)
{
	BIO *cb, *kb;

	if (!cert_pem)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "%s: cert_pem is NULL", call);
	if (!key_pem) {
		key_pem = cert_pem;
		keylen = certlen;
	}
	cb = open_mem(ctx, cert_pem, certlen);
	if (!cb)
		return -1;
	kb = open_mem(ctx, key_pem, keylen);
	if (!kb) {
		BIO_free(cb);
		return -1;
	}
	return load_chain(ctx, cb, "the certificate in memory", kb, "the key in memory", sni);
}

KTLS_API int ktls_ctx_load_cert_chain_mem(ktls_ctx *ctx, const void *cert_pem, size_t certlen,
					  const void *key_pem, size_t keylen)
{
	CTX_SETTER(ctx, "the certificate chain");
	return load_chain_mem(ctx, "load_cert_chain_mem", cert_pem, certlen, key_pem, keylen, 0);
}

KTLS_API int ktls_ctx_add_cert_chain_mem(ktls_ctx *ctx, const void *cert_pem, size_t certlen,
					 const void *key_pem, size_t keylen)
{
	CTX_SETTER(ctx, "the certificate chains");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "add_cert_chain_mem: server contexts only");
	return load_chain_mem(ctx, "add_cert_chain_mem", cert_pem, certlen, key_pem, keylen, 1);
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
				return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, what);
			found++;
		}
		if (xi->crl) {
			if (!X509_STORE_add_crl(st, xi->crl))
				return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, what);
			found++;
		}
	}
	if (!found)
		return ctx_fail(ctx, KTLS_ERR_FILE, "no certificate or CRL found in %s", what);
	return 0;
}

static int load_pem_bio(const struct ktls_ctx *ctx, BIO *b, const char *what)
{
	STACK_OF(X509_INFO) *infos;
	int asked = 0, ret;

	infos = PEM_X509_INFO_read_bio(b, NULL, no_password, &asked);
	if (!infos)
		return ctx_openssl_err(ctx, KTLS_ERR_FILE, what);
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
		return ctx_fail(ctx, KTLS_ERR_FILE, "capath %s: %s", capath, strerror(errno));
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
		return ctx_fail(ctx, KTLS_ERR_FILE, "capath %s: no hashed certificate files "
				"(run c_rehash)", capath);
	return 0;
}

KTLS_API int ktls_ctx_load_verify_locations(ktls_ctx *ctx, const char *cafile, const char *capath)
{
	struct stat st;

	if (ctx_enter(ctx))
		return -1;
	if (!cafile && !capath)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "load_verify_locations: cafile and capath "
				"are both NULL");
	if (cafile && load_file(ctx, cafile, "cafile"))
		return -1;
	if (!capath)
		return 0;
	if (stat(capath, &st))
		return ctx_fail(ctx, KTLS_ERR_FILE, "capath %s: %s", capath, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ctx_fail(ctx, KTLS_ERR_FILE, "capath %s: %s", capath, strerror(ENOTDIR));
	if (atomic_load(&ctx->frozen))
		return load_dir_now(ctx, capath);
	if (!SSL_CTX_load_verify_dir(ctx->ssl, capath))
		return ctx_openssl_err(ctx, KTLS_ERR_FILE, capath);
	return 0;
}

/* One or more concatenated DER certificates or CRLs. */
static int load_der(const struct ktls_ctx *ctx, const unsigned char *buf, size_t len)
{
	STACK_OF(X509_INFO) *infos = sk_X509_INFO_new_null();
	const unsigned char *p = buf, *end = buf + len;
	int ret = -1;

	if (!infos)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	while (p < end) {
		const unsigned char *q = p;
		X509_INFO *xi = X509_INFO_new();

		if (!xi || !sk_X509_INFO_push(infos, xi)) {
			X509_INFO_free(xi);
			ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
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
				ctx_fail(ctx, KTLS_ERR_FILE, "no certificate or CRL found in memory "
					 "(neither PEM nor DER)");
			else
				ctx_fail(ctx, KTLS_ERR_FILE, "memory: bytes from offset %zu are not a "
					 "DER certificate or CRL", (size_t)(p - buf));
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

	if (ctx_enter(ctx))
		return -1;
	if (!data && len)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "load_verify_mem: data is NULL");
	if (!len)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "no certificate or CRL found in memory "
				"(empty)");
	if (len > INT_MAX)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "load_verify_mem: %zu bytes is too large",
				len);
	if (!memmem(data, len, "-----BEGIN ", 11))
		return load_der(ctx, data, len);
	b = BIO_new_mem_buf(data, (int)len);
	if (!b)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	ret = load_pem_bio(ctx, b, "memory");
	BIO_free(b);
	return ret;
}

KTLS_API int ktls_ctx_cert_store_stats(const ktls_ctx *ctx, struct ktls_cert_store_stats *out)
{
	X509_STORE *st;
	STACK_OF(X509_OBJECT) *objs;

	if (ctx_enter(ctx))
		return -1;
	if (!out)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "cert_store_stats: out is NULL");
	memset(out, 0, sizeof(*out));
	st = SSL_CTX_get_cert_store(ctx->ssl);
	/* Handshakes may add lazily found capath entries meanwhile. */
	if (!X509_STORE_lock(st))
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "locking the trust store");
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

/* ---- DH parameters (servers) ------------------------------------------------ */

KTLS_API int ktls_ctx_load_dh_params(ktls_ctx *ctx, const char *pemfile)
{
	char err[KTLS_ERRLEN];
	EVP_PKEY *dh;
	BIO *b;
	int code;

	CTX_SETTER(ctx, "the DH parameters");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "DH parameters apply to server contexts only");
	if (!pemfile)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "load_dh_params: pemfile is NULL");
	b = open_file(ctx, "dhfile", pemfile);
	if (!b)
		return -1;
	dh = PEM_read_bio_Parameters(b, NULL);
	BIO_free(b);
	if (!dh || EVP_PKEY_get_base_id(dh) != EVP_PKEY_DH) {
		ERR_clear_error();
		EVP_PKEY_free(dh);
		return ctx_fail(ctx, KTLS_ERR_FILE, "dhfile %s: no PEM DH parameters found", pemfile);
	}
	if ((code = policy_check_dh(dh, err, sizeof(err)))) {
		EVP_PKEY_free(dh);
		return ctx_fail(ctx, code, "%s (%s)", err, pemfile);
	}
	/* set0 takes ownership on success only. */
	if (!SSL_CTX_set0_tmp_dh_pkey(ctx->ssl, dh)) {
		EVP_PKEY_free(dh);
		return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, pemfile);
	}
	ctx->dh_loaded = 1;
	return 0;
}
