/*
 * psk.c - TLS 1.3 external pre-shared keys (RFC 8446 4.2.11), as the
 * kernel's NVMe/TCP consumers use them: psk_dhe_ke (the PSK authenticates,
 * an (EC)DHE exchange still gives forward secrecy), one identity per
 * ClientHello, the hash fixed by the key length (32 bytes: SHA-256, 48
 * bytes: SHA-384).
 *
 * OpenSSL models an external PSK as a session: the client's "use session"
 * callback offers one, the server's "find session" callback returns one.
 * The server looks identities up from a client_hello callback instead of
 * inside find_session, because only there can it fail the handshake with
 * the alert that means what happened (unknown_psk_identity: the peer then
 * knows its key is stale; find_session can only raise internal_error).
 * find_session then merely hands back what the lookup found.
 *
 * State lives in ex_data, so struct ktls_ctx is unchanged: the client's
 * identity and key on the SSL_CTX (zeroized when it is freed), the server's
 * match on the SSL (zeroized with it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "internal.h"

#define PSK_EXT_TYPE 41 /* pre_shared_key */

struct psk_client {
	unsigned char *identity;
	size_t idlen;
	unsigned char key[KTLS_PSK_MAX_LEN];
	size_t keylen;
};

struct psk_server {
	ktls_psk_lookup_fn fn;
	void *arg;
};

/* What the server's lookup matched for one connection. */
struct psk_match {
	unsigned char *identity;
	size_t idlen;
	SSL_SESSION *sess;
};

static int idx_client = -1, idx_server = -1, idx_match = -1, idx_unknown = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void client_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	struct psk_client *pc = ptr;

	if (!pc)
		return;
	secure_zero(pc->key, sizeof(pc->key));
	free(pc->identity);
	free(pc);
}

static void server_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	free(ptr);
}

static void match_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
		       void *argp)
{
	struct psk_match *m = ptr;

	if (!m)
		return;
	SSL_SESSION_free(m->sess); /* OpenSSL cleanses the master key */
	free(m->identity);
	free(m);
}

static void idx_init(void)
{
	idx_client = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, client_free);
	idx_server = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, server_free);
	idx_match = SSL_get_ex_new_index(0, NULL, NULL, NULL, match_free);
	idx_unknown = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int indices(void)
{
	pthread_once(&idx_once, idx_init);
	return idx_client >= 0 && idx_server >= 0 && idx_match >= 0 && idx_unknown >= 0 ? 0 : -1;
}

/* The TLS 1.3 suite whose hash matches a key of this length, or NULL. */
static const char *suite_for(size_t keylen)
{
	if (keylen == 32)
		return "TLS_AES_128_GCM_SHA256";
	if (keylen == 48)
		return "TLS_AES_256_GCM_SHA384";
	return NULL;
}

/* A session carrying the key as an external PSK for the suite. */
static SSL_SESSION *psk_session(SSL *ssl, const unsigned char *key, size_t keylen)
{
	static const unsigned char aes128[2] = { 0x13, 0x01 }, aes256[2] = { 0x13, 0x02 };
	const SSL_CIPHER *c = SSL_CIPHER_find(ssl, keylen == 48 ? aes256 : aes128);
	SSL_SESSION *s;

	if (!c || !(s = SSL_SESSION_new()))
		return NULL;
	if (!SSL_SESSION_set1_master_key(s, key, keylen) || !SSL_SESSION_set_cipher(s, c) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

/* Both roles: TLS 1.3 only, the one suite the key's hash allows (client). */
static int psk_common(struct ktls_ctx *ctx)
{
	char r[KTLS_ERRLEN];

	if (!SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_3_VERSION))
		return ctx_fail(ctx, KTLS_ERR_INTERNAL, "psk: cannot require TLS 1.3: %s",
				ssl_reason(r, sizeof(r)));
	return 0;
}

/* ---- client ----------------------------------------------------------------- */

static int use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
			  SSL_SESSION **sess)
{
	struct psk_client *pc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), idx_client);
	SSL_SESSION *s;

	*sess = NULL;
	if (!pc)
		return 1; /* no PSK: an ordinary handshake */
	s = psk_session(ssl, pc->key, pc->keylen);
	if (!s)
		return 0;
	/* After a HelloRetryRequest the suite is fixed: offer only a match. */
	if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
		SSL_SESSION_free(s);
		return 1;
	}
	*id = pc->identity;
	*idlen = pc->idlen;
	*sess = s;
	return 1;
}

KTLS_API int ktls_ctx_set_psk(ktls_ctx *ctx, const void *identity, size_t idlen,
			      const void *key, size_t keylen)
{
	struct psk_client *pc;
	const char *suite;

	CTX_SETTER(ctx, "the PSK");
	if (ctx->role != KTLS_CLIENT)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "psk: ktls_ctx_set_psk is for client "
				"contexts (a server uses ktls_ctx_set_psk_lookup)");
	if (!identity || idlen == 0 || idlen > 0xffff)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "psk: the identity must be 1 to 65535 bytes");
	if (!key || !(suite = suite_for(keylen)))
		return ctx_fail(ctx, KTLS_ERR_INVALID, "psk: a key must be 32 bytes (SHA-256) or "
				"48 bytes (SHA-384), not %zu", keylen);
	if (indices())
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "psk: out of memory");
	if (psk_common(ctx))
		return -1;
	if (!SSL_CTX_set_ciphersuites(ctx->ssl, suite)) {
		char r[KTLS_ERRLEN];
		return ctx_fail(ctx, KTLS_ERR_INTERNAL, "psk: cannot select %s: %s", suite,
				ssl_reason(r, sizeof(r)));
	}
	pc = calloc(1, sizeof(*pc));
	if (!pc || !(pc->identity = malloc(idlen))) {
		free(pc);
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "psk: out of memory");
	}
	memcpy(pc->identity, identity, idlen);
	pc->idlen = idlen;
	memcpy(pc->key, key, keylen);
	pc->keylen = keylen;
	/* Replacing frees (and zeroizes) the previous one. */
	client_free(NULL, SSL_CTX_get_ex_data(ctx->ssl, idx_client), NULL, 0, 0, NULL);
	SSL_CTX_set_ex_data(ctx->ssl, idx_client, pc);
	/*
	 * The server proves itself with the key, so there is no name to check.
	 * Verification stays on over an empty trust store: a server that
	 * ignored the PSK and sent a certificate instead is refused.
	 */
	ctx->check_hostname = 0;
	SSL_CTX_set_psk_use_session_callback(ctx->ssl, use_session_cb);
	return 0;
}

/* ---- server ------------------------------------------------------------------- */

/* Read a big-endian u16 if two bytes remain. */
static int get16(const unsigned char **p, const unsigned char *end, size_t *v)
{
	if (end - *p < 2)
		return -1;
	*v = (size_t)(*p)[0] << 8 | (*p)[1];
	*p += 2;
	return 0;
}

/*
 * client_hello callback: find the first identity of the ClientHello's
 * pre_shared_key extension the lookup knows.  None known: fail with
 * unknown_psk_identity.  No extension at all: fail too (a PSK-only server
 * has no certificate to fall back on) with handshake_failure.
 */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct psk_server *ps = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), idx_server);
	const unsigned char *ext, *p, *end;
	size_t extlen, idslen, idlen;
	unsigned char key[KTLS_PSK_MAX_LEN];

	if (!ps)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (SSL_get_ex_data(ssl, idx_match))
		return SSL_CLIENT_HELLO_SUCCESS; /* second ClientHello after HRR */
	if (!SSL_client_hello_get0_ext(ssl, PSK_EXT_TYPE, &ext, &extlen)) {
		*al = SSL_AD_HANDSHAKE_FAILURE;
		return SSL_CLIENT_HELLO_ERROR;
	}
	p = ext;
	end = ext + extlen;
	if (get16(&p, end, &idslen) || idslen > (size_t)(end - p)) {
		*al = SSL_AD_DECODE_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	end = p + idslen;
	while (p < end) {
		size_t keylen = 0;
		int r;

		if (get16(&p, end, &idlen) || idlen == 0 || (size_t)(end - p) < idlen + 4) {
			*al = SSL_AD_DECODE_ERROR;
			return SSL_CLIENT_HELLO_ERROR;
		}
		r = ps->fn(ps->arg, p, idlen, key, &keylen);
		if (r < 0) {
			secure_zero(key, sizeof(key));
			*al = SSL_AD_INTERNAL_ERROR;
			return SSL_CLIENT_HELLO_ERROR;
		}
		if (r > 0 && suite_for(keylen)) {
			struct psk_match *m = calloc(1, sizeof(*m));

			if (m && (m->identity = malloc(idlen)))
				m->sess = psk_session(ssl, key, keylen);
			secure_zero(key, sizeof(key));
			if (!m || !m->sess) {
				match_free(NULL, m, NULL, 0, 0, NULL);
				*al = SSL_AD_INTERNAL_ERROR;
				return SSL_CLIENT_HELLO_ERROR;
			}
			memcpy(m->identity, p, idlen);
			m->idlen = idlen;
			SSL_set_ex_data(ssl, idx_match, m);
			/*
			 * The suite is chosen before the PSK is checked, and a PSK
			 * whose hash differs from the suite's is silently ignored:
			 * allow only the suite this key can use.
			 */
			if (!SSL_set_ciphersuites(ssl, suite_for(keylen))) {
				*al = SSL_AD_INTERNAL_ERROR;
				return SSL_CLIENT_HELLO_ERROR;
			}
			return SSL_CLIENT_HELLO_SUCCESS;
		}
		secure_zero(key, sizeof(key));
		p += idlen + 4; /* identity, obfuscated_ticket_age */
	}
	/* OpenSSL reports only "callback failed": note why, for conn.c's code. */
	SSL_set_ex_data(ssl, idx_unknown, (void *)1);
	*al = SSL_AD_UNKNOWN_PSK_IDENTITY;
	return SSL_CLIENT_HELLO_ERROR;
}

int psk_identity_unknown(const SSL *ssl)
{
	return idx_unknown >= 0 && SSL_get_ex_data(ssl, idx_unknown) != NULL;
}

static int find_session_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	struct psk_match *m = SSL_get_ex_data(ssl, idx_match);

	*sess = NULL;
	if (m && m->idlen == idlen && !memcmp(m->identity, id, idlen) &&
	    SSL_SESSION_up_ref(m->sess))
		*sess = m->sess;
	return 1;
}

KTLS_API int ktls_ctx_set_psk_lookup(ktls_ctx *ctx, ktls_psk_lookup_fn fn, void *arg)
{
	struct psk_server *ps;

	CTX_SETTER(ctx, "the PSK lookup");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "psk: ktls_ctx_set_psk_lookup is for server "
				"contexts (a client uses ktls_ctx_set_psk)");
	if (!fn)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "psk: a lookup function is required");
	if (indices())
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "psk: out of memory");
	if (psk_common(ctx))
		return -1;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "psk: out of memory");
	ps->fn = fn;
	ps->arg = arg;
	free(SSL_CTX_get_ex_data(ctx->ssl, idx_server));
	SSL_CTX_set_ex_data(ctx->ssl, idx_server, ps);
	SSL_CTX_set_client_hello_cb(ctx->ssl, client_hello_cb, NULL);
	SSL_CTX_set_psk_find_session_callback(ctx->ssl, find_session_cb);
	return 0;
}

KTLS_API int ktls_conn_psk_identity(const ktls_conn *conn, const void **identity, size_t *idlen)
{
	if (!conn || !identity || !idlen) {
		errno = EINVAL;
		return -1;
	}
	*identity = NULL;
	*idlen = 0;
	if (!conn->handshake_done || !SSL_session_reused(conn->ssl))
		return 0;
	if (conn->ctx->role == KTLS_SERVER) {
		struct psk_match *m = idx_match >= 0 ? SSL_get_ex_data(conn->ssl, idx_match) : NULL;
		if (!m)
			return 0;
		*identity = m->identity;
		*idlen = m->idlen;
		return 1;
	} else {
		struct psk_client *pc = idx_client >= 0
			? SSL_CTX_get_ex_data(conn->ctx->ssl, idx_client) : NULL;
		if (!pc)
			return 0;
		*identity = pc->identity;
		*idlen = pc->idlen;
		return 1;
	}
}

/*
 * Whether the peer proved who it is: by the PSK, or by a certificate that
 * verified (a server with KTLS_VERIFY_OPTIONAL sees clients with and
 * without one; nfsd's mtls needs to know which).
 */
KTLS_API int ktls_conn_peer_authenticated(const ktls_conn *conn)
{
	X509 *peer;
	int ok;

	if (!conn) {
		errno = EINVAL;
		return -1;
	}
	if (!conn->handshake_done)
		return 0;
	if (SSL_session_reused(conn->ssl)) {
		const void *id;
		size_t n;
		return ktls_conn_psk_identity(conn, &id, &n);
	}
	if (conn->ctx->verify == KTLS_VERIFY_NONE)
		return 0;
	peer = SSL_get1_peer_certificate(conn->ssl);
	ok = peer && SSL_get_verify_result(conn->ssl) == X509_V_OK;
	X509_free(peer);
	return ok;
}

/*
 * CRL enforcement.  Loading a CRL into the trust store does not make
 * OpenSSL consult it (nor Python: VERIFY_CRL_CHECK_LEAF is a separate
 * flag); the agent's x509.crl must mean "revoked peers are refused", so
 * the flag is set here, on the context's verify parameters, which every
 * connection copies.
 */
KTLS_API int ktls_ctx_set_crl_check(ktls_ctx *ctx, int mode)
{
	X509_VERIFY_PARAM *p;
	unsigned long all = X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;

	CTX_SETTER(ctx, "CRL checking");
	if (mode < KTLS_CRL_NONE || mode > KTLS_CRL_CHAIN)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "crl check: mode %d is not KTLS_CRL_NONE, "
				"_LEAF or _CHAIN", mode);
	p = SSL_CTX_get0_param(ctx->ssl);
	X509_VERIFY_PARAM_clear_flags(p, all);
	if (mode == KTLS_CRL_LEAF)
		X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_CRL_CHECK);
	else if (mode == KTLS_CRL_CHAIN)
		X509_VERIFY_PARAM_set_flags(p, all);
	return 0;
}
