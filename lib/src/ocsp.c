/*
 * ocsp.c - OCSP stapling (RFC 6066 status_request, RFC 6960 responses).
 *
 * Server: a DER response from the CA, checked once when it is set (for our
 * own certificate: serial and issuer name hash; status good; inside its
 * validity period) and sent to clients that ask, until its nextUpdate
 * passes.  A response that fails a check is refused with the reason, so
 * the caller can say why nothing is stapled.
 *
 * Client (opt-in): the handshake fails unless the server staples a
 * response that verifies (signed by the certificate's issuer or a
 * responder it delegated, chaining to our trust store), is for the
 * server's certificate, says good, and is current.
 *
 * State lives in ex_data, freed with the SSL_CTX.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "internal.h"

#define OCSP_SKEW 300 /* seconds of clock difference tolerated, as OpenSSL's tools */
#define OCSP_MAX_DER (64 * 1024)

struct staple {
	unsigned char *der;
	size_t len;
	X509 *cert;         /* the certificate it is about: stapled only with it */
	time_t next_update; /* 0: the response names none */
};

static int staple_idx = -1, why_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void staple_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int i, long argl, void *argp)
{
	struct staple *st = ptr;

	(void)parent, (void)ad, (void)i, (void)argl, (void)argp;
	if (st) {
		free(st->der);
		X509_free(st->cert);
		free(st);
	}
}

static void staple_free_ptr(void *st)
{
	staple_free(NULL, st, NULL, 0, 0, NULL);
}

static void make_indexes(void)
{
	staple_idx = SSL_CTX_get_ex_new_index(0, (void *)"ktls ocsp staple", NULL, NULL, staple_free);
	why_idx = SSL_get_ex_new_index(0, (void *)"ktls ocsp failure", NULL, NULL, NULL);
}

static int indexes(void)
{
	pthread_once(&idx_once, make_indexes);
	return staple_idx >= 0 && why_idx >= 0 ? 0 : -1;
}

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

/* The single response about cert (same serial and issuer name hash), or NULL. */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *bs, X509 *cert)
{
	for (int i = 0; i < OCSP_resp_count(bs); i++) {
		OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
		ASN1_OCTET_STRING *name_hash = NULL;
		ASN1_OBJECT *md_oid = NULL;
		ASN1_INTEGER *serial = NULL;
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned int hl = 0;
		const EVP_MD *md;

		if (!OCSP_id_get0_info(&name_hash, &md_oid, NULL, &serial,
				       (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(sr)))
			continue;
		if (ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(cert)) != 0)
			continue;
		md = EVP_get_digestbyobj(md_oid);
		if (!md || !X509_NAME_digest(X509_get_issuer_name(cert), md, h, &hl))
			continue;
		if ((int)hl == ASN1_STRING_length(name_hash) &&
		    !memcmp(h, ASN1_STRING_get0_data(name_hash), hl))
			return sr;
	}
	return NULL;
}

/*
 * The checks both sides make on a response about cert: successful, about
 * cert, good, current.  NULL when it passes, else why not; *next gets its
 * nextUpdate (0: none).
 */
static const char *check_response(OCSP_RESPONSE *resp, X509 *cert, OCSP_BASICRESP **bsp,
				  time_t *next)
{
	ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL, *rev = NULL;
	OCSP_BASICRESP *bs;
	OCSP_SINGLERESP *sr;
	int status, reason;

	*bsp = NULL;
	if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
		return "the responder did not answer successfully";
	bs = OCSP_response_get1_basic(resp);
	if (!bs)
		return "not a basic OCSP response";
	*bsp = bs;
	sr = find_single(bs, cert);
	if (!sr)
		return "it is about another certificate (serial or issuer differ)";
	status = OCSP_single_get0_status(sr, &reason, &rev, &this_upd, &next_upd);
	*next = asn1_time(next_upd);
	if (status == V_OCSP_CERTSTATUS_REVOKED)
		return "it says the certificate is revoked";
	if (status != V_OCSP_CERTSTATUS_GOOD)
		return "it says the certificate's status is unknown";
	if (!OCSP_check_validity(this_upd, next_upd, OCSP_SKEW, -1)) {
		ERR_clear_error();
		return next_upd && *next < time(NULL) ? "it is stale (its nextUpdate has passed)"
						       : "its thisUpdate is in the future";
	}
	return NULL;
}

/* Server: staple to clients that ask, while the response is current. */
static int server_status_cb(SSL *ssl, void *arg)
{
	const struct ktls_ctx *ctx = arg;
	const struct staple *st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), staple_idx);
	const X509 *served = SSL_get_certificate(ssl);
	unsigned char *copy;

	if (SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp)
		return SSL_TLSEXT_ERR_NOACK;
	/* the staple of the chain chosen (by key type, or by name: sni.c), if it has one */
	if (!st || st->cert != served)
		st = sni_staple_for(ctx->sni, served);
	if (!st)
		return SSL_TLSEXT_ERR_NOACK;
	if (st->next_update && st->next_update + OCSP_SKEW < time(NULL))
		return SSL_TLSEXT_ERR_NOACK; /* went stale while we ran: send nothing */
	copy = OPENSSL_memdup(st->der, st->len);
	if (!copy || !SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)st->len)) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

KTLS_API int ktls_ctx_set_ocsp_staple_mem(ktls_ctx *ctx, const void *der, size_t len)
{
	const unsigned char *p = der;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp;
	struct staple *st;
	const char *why;
	X509 *cert;
	time_t next = 0;

	CTX_SETTER(ctx, "the OCSP staple");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "OCSP stapling applies to server contexts only");
	if (indexes() != 0)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	if (!der || len == 0) { /* remove */
		if (ctx->last_chain) {
			sni_set_staple(ctx->sni, ctx->last_chain, NULL, staple_free_ptr);
			return 0;
		}
		st = SSL_CTX_get_ex_data(ctx->ssl, staple_idx);
		SSL_CTX_set_ex_data(ctx->ssl, staple_idx, NULL);
		staple_free(NULL, st, NULL, 0, 0, NULL);
		return 0;
	}
	/* about the chain loaded or added last */
	cert = ctx->last_chain ? sni_leaf(ctx->sni, ctx->last_chain) : SSL_CTX_get0_certificate(ctx->ssl);
	if (!cert)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "OCSP staple: load the certificate first");
	if (len > OCSP_MAX_DER || !(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) ||
	    p != (const unsigned char *)der + len) {
		ERR_clear_error();
		return ctx_fail(ctx, KTLS_ERR_INVALID, "OCSP staple: not a DER OCSP response");
	}
	why = check_response(resp, cert, &bs, &next);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	if (why)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "OCSP staple not used: %s", why);
	st = calloc(1, sizeof(*st));
	if (!st || !(st->der = malloc(len))) {
		free(st);
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	}
	memcpy(st->der, der, len);
	st->len = len;
	X509_up_ref(cert);
	st->cert = cert;
	st->next_update = next;
	if (ctx->last_chain) {
		sni_set_staple(ctx->sni, ctx->last_chain, st, staple_free_ptr);
	} else {
		struct staple *old = SSL_CTX_get_ex_data(ctx->ssl, staple_idx);

		if (!SSL_CTX_set_ex_data(ctx->ssl, staple_idx, st)) {
			staple_free(NULL, st, NULL, 0, 0, NULL);
			return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		}
		staple_free(NULL, old, NULL, 0, 0, NULL);
	}
	SSL_CTX_set_tlsext_status_cb(ctx->ssl, server_status_cb);
	SSL_CTX_set_tlsext_status_arg(ctx->ssl, ctx);
	return 0;
}

KTLS_API int ktls_ctx_set_ocsp_staple_file(ktls_ctx *ctx, const char *path)
{
	unsigned char *buf;
	size_t n = 0;
	FILE *f;
	int r;

	if (ctx_enter(ctx))
		return -1;
	if (!path)
		return ktls_ctx_set_ocsp_staple_mem(ctx, NULL, 0);
	f = fopen(path, "rbe");
	if (!f)
		return ctx_fail(ctx, KTLS_ERR_FILE, "OCSP staple %s: %s", path, strerror(errno));
	buf = malloc(OCSP_MAX_DER + 1);
	if (buf)
		n = fread(buf, 1, OCSP_MAX_DER + 1, f);
	fclose(f);
	if (!buf)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	if (n == 0 || n > OCSP_MAX_DER) {
		free(buf);
		return ctx_fail(ctx, KTLS_ERR_FILE, "OCSP staple %s: %s", path,
				n ? "larger than 64 KiB" : "empty");
	}
	r = ktls_ctx_set_ocsp_staple_mem(ctx, buf, n);
	free(buf);
	return r;
}

/* Client: 1 to go on, 0 to fail the handshake (the reason kept on the SSL). */
static int client_status_cb(SSL *ssl, void *arg)
{
	STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
	const unsigned char *p = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp;
	const char *why = NULL;
	X509 *leaf, *issuer;
	time_t next;
	long len;

	(void)arg;
	len = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
	if (!p || len <= 0) {
		SSL_set_ex_data(ssl, why_idx, (void *)"the server stapled no OCSP response");
		return 0;
	}
	if (!chain || sk_X509_num(chain) < 2) {
		SSL_set_ex_data(ssl, why_idx, (void *)"no verified chain to check the OCSP response");
		return 0;
	}
	leaf = sk_X509_value(chain, 0);
	issuer = sk_X509_value(chain, 1);
	resp = d2i_OCSP_RESPONSE(NULL, &p, len);
	if (!resp) {
		SSL_set_ex_data(ssl, why_idx, (void *)"the stapled OCSP response does not parse");
		ERR_clear_error();
		return 0;
	}
	why = check_response(resp, leaf, &bs, &next);
	if (!why) {
		STACK_OF(X509) *untrusted = sk_X509_new_null();

		if (untrusted)
			sk_X509_push(untrusted, issuer);
		if (OCSP_basic_verify(bs, untrusted, SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), 0) <= 0)
			why = "the stapled OCSP response's signature does not verify";
		sk_X509_free(untrusted);
		ERR_clear_error();
	}
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	if (why) {
		SSL_set_ex_data(ssl, why_idx, (void *)why);
		return 0;
	}
	return 1;
}

KTLS_API int ktls_ctx_set_ocsp_require(ktls_ctx *ctx, int on)
{
	CTX_SETTER(ctx, "ocsp_require");
	if (ctx->role != KTLS_CLIENT)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "ocsp_require applies to client contexts only");
	if (indexes() != 0)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	if (on && ctx->verify == KTLS_VERIFY_NONE)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "ocsp_require needs certificate verification "
				"(verify mode is NONE)");
	SSL_CTX_set_tlsext_status_type(ctx->ssl, on ? TLSEXT_STATUSTYPE_ocsp : -1);
	if (on)
		SSL_CTX_set_tlsext_status_cb(ctx->ssl, client_status_cb);
	else
		SSL_CTX_set_tlsext_status_cb(ctx->ssl, NULL);
	return 0;
}

const char *ocsp_failure(const SSL *ssl)
{
	return why_idx >= 0 ? SSL_get_ex_data(ssl, why_idx) : NULL;
}
