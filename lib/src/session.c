/*
 * session.c - client session resumption: export a connection's session,
 * offer it on a new connection, and keep TLS 1.3 tickets flowing into
 * OpenSSL after RX moved to the kernel.
 *
 * TLS 1.3 sends NewSessionTicket after the handshake, so with RX in the
 * kernel the ticket reaches kernel_read (a handshake record), not OpenSSL,
 * and OpenSSL alone can turn it into a session (the PSK comes from its
 * resumption_master_secret, which it never hands out).  So the ticket is
 * given back to OpenSSL as it would have arrived: one record sealed under
 * the read key OpenSSL still holds (the one at the install: OpenSSL read
 * nothing since) with the next sequence number it expects, read by
 * SSL_read from a memory BIO while a null BIO takes anything it might
 * write.  OpenSSL then makes the session exactly as without kTLS.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "conn_impl.h"
#include "kernel.h"
#include "proto.h"

#define TAG_LEN 16
#define REC_HDR 5

/* AEAD-seal inner (content type included) as one TLS 1.3 record into out. */
static int seal_record(const struct kernel_state *k, uint64_t seq, const unsigned char *inner,
		       size_t ilen, unsigned char *out)
{
	const struct proto_cipher *pc = k->p.cipher;
	union tls_crypto info;
	unsigned char nonce[12];
	const unsigned char *base = (const unsigned char *)&info;
	const EVP_CIPHER *ciph = EVP_get_cipherbynid(pc->nid);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n, rc = -1;
	size_t clen = ilen + TAG_LEN;

	if (!ciph || !x || pc->salt_len + pc->iv_len != sizeof(nonce) ||
	    keys_info_tls13(&k->p, k->ossl_rx_secret, k->secret_len, 0, &info))
		goto out;
	memcpy(nonce, base + pc->salt_off, pc->salt_len);
	memcpy(nonce + pc->salt_len, base + pc->iv_off, pc->iv_len);
	for (int i = 0; i < 8; i++) /* RFC 8446 5.3: the sequence XORed into the last 8 bytes */
		nonce[4 + i] ^= (unsigned char)(seq >> (56 - 8 * i));
	out[0] = SSL3_RT_APPLICATION_DATA;
	out[1] = 3;
	out[2] = 3;
	out[3] = (unsigned char)(clen >> 8);
	out[4] = (unsigned char)clen;
	if (EVP_EncryptInit_ex(x, ciph, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_IVLEN, (int)sizeof(nonce), NULL) != 1 ||
	    EVP_EncryptInit_ex(x, NULL, NULL, base + pc->key_off, nonce) != 1 ||
	    EVP_EncryptUpdate(x, NULL, &n, out, REC_HDR) != 1 ||
	    EVP_EncryptUpdate(x, out + REC_HDR, &n, inner, (int)ilen) != 1 || (size_t)n != ilen ||
	    EVP_EncryptFinal_ex(x, out + REC_HDR + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + REC_HDR + ilen) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(x);
	secure_zero(&info, sizeof(info));
	secure_zero(nonce, sizeof(nonce));
	return rc;
}

int session_take_ticket(struct ktls_conn *c, struct kernel_state *k, const unsigned char *msg,
			size_t len)
{
	size_t ilen = len + 1;
	unsigned char *inner = NULL, *rec = NULL, byte;
	BIO *mem = NULL, *null = NULL, *r = SSL_get_rbio(c->ssl), *w = SSL_get_wbio(c->ssl);
	int rc = -1, ret;

	if (!k->ossl_rx_keyed || ilen > REC_MAX_PLAINTEXT + 1)
		return -1;
	inner = malloc(ilen);
	rec = malloc(REC_HDR + ilen + TAG_LEN);
	mem = BIO_new(BIO_s_mem());
	null = BIO_new(BIO_s_null());
	if (!inner || !rec || !mem || !null)
		goto out;
	memcpy(inner, msg, len);
	inner[len] = SSL3_RT_HANDSHAKE;
	if (seal_record(k, k->ossl_rx_seq, inner, ilen, rec) ||
	    BIO_write(mem, rec, (int)(REC_HDR + ilen + TAG_LEN)) != (int)(REC_HDR + ilen + TAG_LEN))
		goto out;
	BIO_set_mem_eof_return(mem, -1); /* empty means "retry", not EOF */
	/* The SSL owns one reference of each of its BIOs: keep them across the swap. */
	BIO_up_ref(r);
	BIO_up_ref(w);
	SSL_set0_rbio(c->ssl, mem);
	SSL_set0_wbio(c->ssl, null);
	mem = null = NULL;
	ERR_clear_error();
	ret = SSL_read(c->ssl, &byte, 1);
	/* The ticket is not data: OpenSSL takes it and wants the next record. */
	rc = ret <= 0 && SSL_get_error(c->ssl, ret) == SSL_ERROR_WANT_READ ? 0 : -1;
	ERR_clear_error();
	SSL_set0_rbio(c->ssl, r);
	SSL_set0_wbio(c->ssl, w);
	k->ossl_rx_seq++;
out:
	BIO_free(mem);
	BIO_free(null);
	if (inner)
		secure_zero(inner, ilen);
	free(inner);
	free(rec);
	return rc;
}

KTLS_API ssize_t ktls_conn_session(ktls_conn *c, unsigned char *buf, size_t len)
{
	SSL_SESSION *s;
	int n;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (SSL_is_server(c->ssl))
		return conn_fail(c, KTLS_ERR_INVALID, "session: a client call (servers resume by ticket)");
	if (!c->handshake_done)
		return conn_fail(c, KTLS_ERR_INVALID, "session: handshake not complete");
	s = SSL_get1_session(c->ssl);
	if (!s || !SSL_SESSION_is_resumable(s)) {
		SSL_SESSION_free(s);
		return 0; /* TLS 1.3: no ticket read yet; or the server sends none */
	}
	{
		/*
		 * OpenSSL does not record the server name in a client's session:
		 * a copy carries it, for ktls_conn_set_session to check.
		 */
		const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
		SSL_SESSION *named = SSL_SESSION_dup(s);

		SSL_SESSION_free(s);
		s = named;
		if (!s || (sni && !SSL_SESSION_set1_hostname(s, sni))) {
			SSL_SESSION_free(s);
			return conn_fail(c, KTLS_ERR_RESOURCE, "session: out of memory");
		}
	}
	n = i2d_SSL_SESSION(s, NULL);
	if (n > 0 && buf) {
		unsigned char *p = buf;

		if ((size_t)n > len) {
			SSL_SESSION_free(s);
			return conn_fail(c, KTLS_ERR_INVALID, "session: %d bytes do not fit in %zu", n, len);
		}
		n = i2d_SSL_SESSION(s, &p);
	}
	SSL_SESSION_free(s);
	if (n <= 0)
		return conn_fail(c, KTLS_ERR_INTERNAL, "session: cannot encode it");
	return n;
}

KTLS_API int ktls_conn_set_session(ktls_conn *c, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	const char *host, *sni;
	SSL_SESSION *s;
	int rc;

	if (!c || (!der && len)) {
		errno = EINVAL;
		return -1;
	}
	if (SSL_is_server(c->ssl))
		return conn_fail(c, KTLS_ERR_INVALID, "set_session: a client call");
	if (c->handshake_done || SSL_get_state(c->ssl) != TLS_ST_BEFORE)
		return conn_fail(c, KTLS_ERR_INVALID, "set_session: only before the handshake");
	s = len > 0 && len <= INT32_MAX ? d2i_SSL_SESSION(NULL, &p, (long)len) : NULL;
	if (!s || p != der + len) {
		SSL_SESSION_free(s);
		ERR_clear_error();
		return conn_fail(c, KTLS_ERR_INVALID, "set_session: %zu bytes are not a session "
				 "from ktls_conn_session", len);
	}
	/*
	 * Only to the server it came from (RFC 8446 4.6.1: the SNI must
	 * match): a session carries that server's verified identity.
	 */
	host = SSL_SESSION_get0_hostname(s);
	sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	if ((host || sni) && (!host || !sni || strcasecmp(host, sni) != 0)) {
		rc = conn_fail(c, KTLS_ERR_INVALID, "set_session: the session is for %s%s%s, this "
			       "connection for %s%s%s", host ? "\"" : "", host ? host : "no server name",
			       host ? "\"" : "", sni ? "\"" : "", sni ? sni : "no server name",
			       sni ? "\"" : "");
		SSL_SESSION_free(s);
		return rc;
	}
	if (!SSL_SESSION_is_resumable(s) || SSL_SESSION_get_protocol_version(s) < TLS1_2_VERSION) {
		SSL_SESSION_free(s);
		return conn_fail(c, KTLS_ERR_INVALID, "set_session: the session cannot be resumed");
	}
	if (!SSL_set_session(c->ssl, s)) {
		SSL_SESSION_free(s);
		ERR_clear_error();
		return conn_fail(c, KTLS_ERR_INVALID, "set_session: OpenSSL refused the session");
	}
	SSL_SESSION_free(s);
	return 0;
}
