/*
 * alpn.c - Application-Layer Protocol Negotiation (RFC 7301): the
 * protocols a context offers (client) or accepts (server), and the one a
 * connection ended up with.
 *
 * The server chooses by its own order of preference, like nginx and
 * libtls; a client that offers ALPN but nothing the server accepts gets
 * the fatal no_application_protocol alert the RFC asks for (section 3.2),
 * and a client that sends no ALPN at all is served without (as nginx).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "internal.h"

#define ALPN_WIRE_MAX 1024 /* plenty: "h2,http/1.1" is 12 bytes on the wire */

/* "h2,http/1.1" -> "\x02h2\x08http/1.1"; 0 or a KTLS_ERR_* code with err set. */
static int alpn_encode(const char *list, unsigned char *out, size_t cap, size_t *len, char *err,
		       size_t errlen)
{
	const char *p = list;
	size_t n = 0;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t l = end ? (size_t)(end - p) : strlen(p);

		if (l == 0 || l > 255) {
			snprintf(err, errlen, "ALPN list \"%.60s\": each protocol must be 1 to 255 "
				 "bytes, separated by single commas", list);
			return KTLS_ERR_INVALID;
		}
		if (n + 1 + l > cap) {
			snprintf(err, errlen, "ALPN list \"%.60s\" is longer than %d bytes on the wire",
				 list, ALPN_WIRE_MAX);
			return KTLS_ERR_INVALID;
		}
		out[n++] = (unsigned char)l;
		memcpy(out + n, p, l);
		n += l;
		if (!end)
			break;
		p = end + 1;
	}
	*len = n;
	return 0;
}

/* Server: the first of our protocols that the client offered. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct ktls_ctx *ctx = arg;

	(void)ssl;
	for (size_t i = 0; i < ctx->alpn_len; i += 1u + ctx->alpn[i]) {
		const unsigned char *ours = ctx->alpn + i;

		for (unsigned int j = 0; j < inlen && j + 1u + in[j] <= inlen; j += 1u + in[j]) {
			if (in[j] == ours[0] && in[j] && !memcmp(in + j + 1, ours + 1, ours[0])) {
				*out = in + j + 1; /* into the ClientHello, as OpenSSL expects */
				*outlen = in[j];
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL; /* OpenSSL sends no_application_protocol */
}

KTLS_API int ktls_ctx_set_alpn(ktls_ctx *ctx, const char *protocols)
{
	unsigned char wire[ALPN_WIRE_MAX];
	char err[KTLS_ERRLEN];
	unsigned char *copy = NULL;
	char *text = NULL;
	size_t len = 0;
	int code;

	CTX_SETTER(ctx, "the ALPN protocols");
	if (protocols && *protocols) {
		if ((code = alpn_encode(protocols, wire, sizeof(wire), &len, err, sizeof(err))))
			return ctx_fail(ctx, code, "%s", err);
		copy = malloc(len);
		text = strdup(protocols);
		if (!copy || !text) {
			free(copy);
			free(text);
			return ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		}
		memcpy(copy, wire, len);
	}
	if (ctx->role == KTLS_CLIENT) {
		/* 0 is success here; an empty list offers none */
		if (SSL_CTX_set_alpn_protos(ctx->ssl, copy, (unsigned int)len) != 0) {
			free(copy);
			free(text);
			return ctx_openssl_err(ctx, KTLS_ERR_RESOURCE, "set_alpn");
		}
	} else {
		SSL_CTX_set_alpn_select_cb(ctx->ssl, copy ? alpn_select : NULL, copy ? ctx : NULL);
	}
	free(ctx->alpn);
	free(ctx->alpn_text);
	ctx->alpn = copy;
	ctx->alpn_len = len;
	ctx->alpn_text = text;
	return 0;
}

KTLS_API const char *ktls_conn_alpn(ktls_conn *c)
{
	const unsigned char *p;
	unsigned int len = 0;

	if (!c) {
		errno = EINVAL;
		return NULL;
	}
	if (!c->handshake_done)
		return NULL;
	if (!c->alpn[0]) {
		SSL_get0_alpn_selected(c->ssl, &p, &len);
		if (!len)
			return NULL;
		memcpy(c->alpn, p, len); /* len < 256: one wire length byte */
		c->alpn[len] = '\0';
	}
	return c->alpn;
}
