/*
 * sni.c - a server's certificate chains chosen by the client's server name
 * (RFC 6066 server_name), the libtls tls_config_add_keypair_file model,
 * and a callback for callers that choose themselves (Python sni_callback).
 *
 * The chain of ktls_ctx_load_cert_chain stays in the SSL_CTX as the
 * default.  The others live here; OpenSSL's servername callback, which
 * runs while the ClientHello is processed and before the certificate type
 * is chosen, replaces the connection's certificates with the chosen chain
 * and every added chain carrying the same names (an ECDSA and an RSA one
 * for one site), and OpenSSL then picks among them by the client's
 * signature algorithms, as it does for the default.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "internal.h"

struct sni_chain {
	X509 *leaf;
	EVP_PKEY *key;
	STACK_OF(X509) *chain;
	char **names;   /* lower case: SAN DNS names, else the subject CN */
	size_t nnames;
	void *staple;   /* its OCSP staple (ocsp.c), or NULL */
	void (*staple_free)(void *);
};

struct sni_set {
	struct sni_chain *v;
	size_t n;
	ktls_sni_fn fn;
	void *arg;
};

/* Set on an SSL whose server name the callback refused (sni_refused). */
static int refused_idx = -1;
static pthread_once_t refused_once = PTHREAD_ONCE_INIT;

static void make_refused_idx(void)
{
	refused_idx = SSL_get_ex_new_index(0, (void *)"ktls sni refused", NULL, NULL, NULL);
}

int sni_refused(const SSL *ssl)
{
	return refused_idx >= 0 && SSL_get_ex_data(ssl, refused_idx) != NULL;
}

static void chain_free(struct sni_chain *c)
{
	X509_free(c->leaf);
	EVP_PKEY_free(c->key);
	sk_X509_pop_free(c->chain, X509_free);
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	if (c->staple)
		c->staple_free(c->staple);
}

void sni_free(struct sni_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		chain_free(&s->v[i]);
	free(s->v);
	free(s);
}

static int add_name(struct sni_chain *c, const unsigned char *p, int len)
{
	char **nv, *n;

	if (len <= 0 || memchr(p, '\0', (size_t)len))
		return 0; /* not a usable DNS name: skipped */
	nv = realloc(c->names, (c->nnames + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	c->names = nv;
	n = malloc((size_t)len + 1);
	if (!n)
		return -1;
	for (int i = 0; i < len; i++)
		n[i] = (char)tolower(p[i]);
	n[len] = '\0';
	c->names[c->nnames++] = n;
	return 0;
}

/* The DNS names of the subjectAltName, or the subject's CN when it has none. */
static int collect_names(struct sni_chain *c)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
	int rc = 0;

	for (int i = 0; gens && rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			rc = add_name(c, ASN1_STRING_get0_data(g->d.dNSName),
				      ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
	if (rc == 0 && c->nnames == 0) {
		X509_NAME *subj = X509_get_subject_name(c->leaf);
		int at = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		ASN1_STRING *cn = at >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at)) : NULL;

		if (cn)
			rc = add_name(c, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
	}
	ERR_clear_error();
	return rc;
}

/* name against one certificate name: exact, or "*.rest" for one label. */
static int name_matches(const char *pattern, const char *name)
{
	const char *dot;

	if (!strcasecmp(pattern, name))
		return 1;
	if (strncmp(pattern, "*.", 2) != 0)
		return 0;
	dot = strchr(name, '.');
	return dot && dot != name && !strcasecmp(pattern + 1, dot);
}

static int chain_has(const struct sni_chain *c, const char *name)
{
	for (size_t i = 0; i < c->nnames; i++)
		if (name_matches(c->names[i], name))
			return 1;
	return 0;
}

static int same_names(const struct sni_chain *a, const struct sni_chain *b)
{
	if (a->nnames != b->nnames)
		return 0;
	for (size_t i = 0; i < a->nnames; i++)
		if (strcmp(a->names[i], b->names[i]) != 0)
			return 0;
	return 1;
}

/* 0 for the default chain, i + 1 for v[i]. */
static size_t pick_by_name(const struct sni_set *s, const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (chain_has(&s->v[i], name))
			return i + 1;
	return 0;
}

static int servername_cb(SSL *ssl, int *al, void *arg)
{
	const struct sni_set *s = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct sni_chain *want;
	long pick;

	if (s->fn) {
		pick = s->fn(s->arg, name);
		if (pick < 0 || (size_t)pick > s->n) {
			if (refused_idx >= 0)
				SSL_set_ex_data(ssl, refused_idx, (void *)"refused");
			*al = SSL_AD_UNRECOGNIZED_NAME;
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		}
	} else {
		pick = (long)pick_by_name(s, name);
	}
	if (pick == 0)
		return SSL_TLSEXT_ERR_OK; /* the SSL_CTX's own chain(s) */
	want = &s->v[pick - 1];
	SSL_certs_clear(ssl);
	for (size_t i = 0; i < s->n; i++)
		if (same_names(&s->v[i], want) &&
		    !SSL_use_cert_and_key(ssl, s->v[i].leaf, s->v[i].key, s->v[i].chain, 1)) {
			*al = SSL_AD_INTERNAL_ERROR;
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		}
	return SSL_TLSEXT_ERR_OK;
}

/* The set, made (and the callback installed) on first use. */
static struct sni_set *set_of(struct ktls_ctx *ctx)
{
	if (!ctx->sni) {
		ctx->sni = calloc(1, sizeof(*ctx->sni));
		if (!ctx->sni)
			return NULL;
		SSL_CTX_set_tlsext_servername_callback(ctx->ssl, servername_cb);
		SSL_CTX_set_tlsext_servername_arg(ctx->ssl, ctx->sni);
	}
	return ctx->sni;
}

int sni_add(struct ktls_ctx *ctx, X509 *leaf, EVP_PKEY *key, STACK_OF(X509) *chain,
	    const char *certname)
{
	struct sni_set *s = set_of(ctx);
	struct sni_chain c = { 0 }, *nv;

	if (!s)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	c.leaf = leaf;
	c.key = key;
	c.chain = X509_chain_up_ref(chain);
	X509_up_ref(leaf);
	EVP_PKEY_up_ref(key);
	if (!c.chain || collect_names(&c) != 0) {
		chain_free(&c);
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	}
	if (c.nnames == 0) {
		chain_free(&c);
		return ctx_fail(ctx, KTLS_ERR_INVALID, "add_cert_chain: the certificate in %s names no "
				"server (no subjectAltName DNS name, no CN)", certname);
	}
	nv = realloc(s->v, (s->n + 1) * sizeof(*nv));
	if (!nv) {
		chain_free(&c);
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	}
	s->v = nv;
	s->v[s->n++] = c;
	return 0;
}

KTLS_API int ktls_ctx_set_sni_callback(ktls_ctx *ctx, ktls_sni_fn fn, void *arg)
{
	struct sni_set *s;

	CTX_SETTER(ctx, "the SNI callback");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "sni_callback: server contexts only");
	pthread_once(&refused_once, make_refused_idx);
	s = set_of(ctx);
	if (!s)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	s->fn = fn;
	s->arg = arg;
	return 0;
}

size_t sni_count(const struct sni_set *s)
{
	return s ? s->n : 0;
}

X509 *sni_leaf(const struct sni_set *s, int n)
{
	return s && n >= 1 && (size_t)n <= s->n ? s->v[n - 1].leaf : NULL;
}

void sni_set_staple(struct sni_set *s, int n, void *staple, void (*free_fn)(void *))
{
	struct sni_chain *c = &s->v[n - 1];

	if (c->staple)
		c->staple_free(c->staple);
	c->staple = staple;
	c->staple_free = free_fn;
}

void *sni_staple_for(const struct sni_set *s, const X509 *cert)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].leaf == cert)
			return s->v[i].staple;
	return NULL;
}
