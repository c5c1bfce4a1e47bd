/*
 * tickets.c - session ticket keys a server context seals its tickets with
 * (ktls_ctx_add_ticket_key), so that tickets outlive the context: a new
 * context with the same keys (a reload, another process or host) resumes
 * them, and rotation keeps the previous keys opening tickets for a while.
 *
 * Without keys of its own a context uses the keys OpenSSL makes for each
 * SSL_CTX.  With them, OpenSSL's ticket callback seals with the newest key
 * (AES-256-CBC + HMAC-SHA256, RFC 5077's recommended construction, as
 * OpenSSL's own) and opens with whichever key the ticket names; a ticket
 * under an older key still resumes and is replaced by one under the newest.
 * The key ring lives in SSL_CTX ex_data and is wiped with the SSL_CTX.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "internal.h"

#define TICKET_KEYS_MAX 4

struct ticket_keys {
	int n;                                             /* newest first */
	unsigned char k[TICKET_KEYS_MAX][KTLS_TICKET_KEY_LEN]; /* name | HMAC key | AES key */
};

static int idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void keys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int i, long argl, void *argp)
{
	(void)parent, (void)ad, (void)i, (void)argl, (void)argp;
	if (ptr) {
		OPENSSL_cleanse(ptr, sizeof(struct ticket_keys));
		free(ptr);
	}
}

static void make_index(void)
{
	idx = SSL_CTX_get_ex_new_index(0, (void *)"ktls ticket keys", NULL, NULL, keys_free);
}

/* OpenSSL's ticket key callback: 1 sealed/opened with the newest key, 2 with an older one. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	const struct ticket_keys *tk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), idx);
	OSSL_PARAM params[2];
	const unsigned char *k = NULL;
	int i = 0;

	if (!tk || tk->n == 0)
		return -1;
	if (enc) {
		k = tk->k[0];
		if (RAND_bytes(iv, 16) <= 0)
			return -1;
		memcpy(name, k, 16);
	} else {
		for (i = 0; i < tk->n && !k; i++)
			if (!CRYPTO_memcmp(name, tk->k[i], 16))
				k = tk->k[i];
		if (!k)
			return 0; /* not ours (any more): a full handshake */
		i--;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(hctx, k + 16, 32, params))
		return -1;
	if (enc ? !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k + 48, iv)
		: !EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k + 48, iv))
		return -1;
	return enc || i == 0 ? 1 : 2;
}

KTLS_API int ktls_ctx_add_ticket_key(ktls_ctx *ctx, const unsigned char key[KTLS_TICKET_KEY_LEN])
{
	struct ticket_keys *tk;

	CTX_SETTER(ctx, "the ticket keys");
	if (ctx->role != KTLS_SERVER)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "ticket keys apply to server contexts only");
	if (!key)
		return ctx_fail(ctx, KTLS_ERR_INVALID, "ticket key is NULL");
	pthread_once(&idx_once, make_index);
	if (idx < 0)
		return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
	tk = SSL_CTX_get_ex_data(ctx->ssl, idx);
	if (!tk) {
		tk = calloc(1, sizeof(*tk));
		if (!tk || !SSL_CTX_set_ex_data(ctx->ssl, idx, tk)) {
			free(tk);
			return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		}
		if (!SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx->ssl, ticket_cb))
			return ctx_openssl_err(ctx, KTLS_ERR_INTERNAL, "set_ticket_key_cb");
	}
	for (int i = 0; i < tk->n; i++)
		if (!CRYPTO_memcmp(tk->k[i], key, 16))
			return ctx_fail(ctx, KTLS_ERR_INVALID, "a ticket key with this name is already "
					"in the context");
	if (tk->n == TICKET_KEYS_MAX)
		OPENSSL_cleanse(tk->k[--tk->n], KTLS_TICKET_KEY_LEN); /* the oldest goes */
	memmove(tk->k[1], tk->k[0], (size_t)tk->n * KTLS_TICKET_KEY_LEN);
	memcpy(tk->k[0], key, KTLS_TICKET_KEY_LEN);
	tk->n++;
	return 0;
}
