/*
 * keys.c - traffic-secret capture, record counting and key derivation.
 *
 * OpenSSL 3.0 keeps traffic keys and sequence numbers private, so both are
 * observed from outside (see keys.h): the keylog callback hands us TLS 1.3
 * secrets, the msg callback every record header.  Nothing is written to
 * $SSLKEYLOGFILE unless that variable was set when the context was made,
 * and then only to a file no one else may read (keylog_open).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "keys.h"

static int ssl_idx = -1, ctx_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

/* SSL_CTX ex_data: the key log's file descriptor (an int), closed with the SSL_CTX. */
static void free_keylog(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	if (ptr) {
		close(*(int *)ptr);
		free(ptr);
	}
}

static void make_indexes(void)
{
	ssl_idx = SSL_get_ex_new_index(0, (void *)"ktls keys", NULL, NULL, NULL);
	ctx_idx = SSL_CTX_get_ex_new_index(0, (void *)"ktls keylog", NULL, NULL, free_keylog);
}

static int indexes(void)
{
	pthread_once(&idx_once, make_indexes);
	return ssl_idx >= 0 && ctx_idx >= 0 ? 0 : -1;
}

struct conn_keys *keys_of(const SSL *ssl)
{
	if (!ssl || ssl_idx < 0)
		return NULL;
	return SSL_get_ex_data(ssl, ssl_idx);
}

void keys_put_seq(unsigned char out[8], uint64_t seq)
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		out[i] = (unsigned char)seq;
}

/* ---- key log ------------------------------------------------------------ */

static int unhex(const char *s, size_t n, unsigned char *out, size_t cap)
{
	size_t i;

	if (n % 2 || n / 2 > cap)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* Append one line to the context's key log, if it has one. */
static void keylog_append(const SSL *ssl, const char *line)
{
	const int *fd = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	size_t n = strlen(line);
	char *buf;

	if (!fd)
		return;
	buf = malloc(n + 1);
	if (!buf)
		return;
	memcpy(buf, line, n);
	buf[n] = '\n';
	/* One write with O_APPEND: lines of concurrent connections never interleave. */
	if (write(*fd, buf, n + 1) < 0) {
		/* a key log is a debugging aid: a full disk must not fail the handshake */
	}
	secure_zero(buf, n + 1);
	free(buf);
}

/*
 * "LABEL <client_random> <secret>".  TLS 1.3 traffic secrets are kept; a
 * new one means that direction's keys changed, so its record count starts
 * again (the record that carried the change was counted under the old key).
 */
static void keylog_cb(const SSL *ssl, const char *line)
{
	struct conn_keys *k = keys_of(ssl);
	const char *sp1, *sp2;
	unsigned char *dst;
	size_t *dlen;
	int client, n;

	keylog_append(ssl, line);
	if (!k || k->offloaded)
		return;
	if (!strncmp(line, "CLIENT_TRAFFIC_SECRET_", 22))
		client = 1;
	else if (!strncmp(line, "SERVER_TRAFFIC_SECRET_", 22))
		client = 0;
	else
		return;
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2)
		return;
	dst = client ? k->client_secret : k->server_secret;
	dlen = client ? &k->client_len : &k->server_len;
	n = unhex(sp2 + 1, strlen(sp2 + 1), dst, KEYS_MAX_SECRET);
	if (n <= 0) {
		*dlen = 0;
		return;
	}
	*dlen = (size_t)n;
	/* Our writes use our secret: client secret = client's TX. */
	if (client != k->server)
		k->seq_tx = 0;
	else
		k->seq_rx = 0;
}

/*
 * Every record header passes here once (SSL3_RT_HEADER), in both
 * directions.  TLS 1.2 changes keys at ChangeCipherSpec: the CCS record is
 * the last under the old keys, Finished is record 0 under the new ones.
 * TLS 1.3 sends CCS only for middlebox compatibility; its key changes come
 * through keylog_cb, so CCS is not special there.
 */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	struct conn_keys *k = keys_of(ssl);
	const unsigned char *p = buf;

	if (!k)
		return;
	if (content_type == SSL3_RT_HEADER && len >= 5) {
		uint64_t *ctr = write_p ? &k->seq_tx : &k->seq_rx;

		if (p[0] == SSL3_RT_CHANGE_CIPHER_SPEC && SSL_version(ssl) != TLS1_3_VERSION)
			*ctr = 0; /* next record is the first under the new keys */
		else
			*ctr += 1;
		return;
	}
	/* After offload: TX in the kernel, RX in OpenSSL (keys.h, sink_msg). */
	if (k->offloaded && k->sink_msg && (content_type == SSL3_RT_ALERT ||
					    content_type == SSL3_RT_HANDSHAKE))
		k->sink_msg(k->sink_arg, write_p, content_type, p, len);
}

/*
 * The key log holds every traffic secret: opened once, never through a
 * symlink (a planted link would send them elsewhere), created 0600, and
 * refused when it is not a regular file of ours or others may read or
 * write it.  -1 with errno (ELOOP, EPERM, or open's) when refused.
 */
static int keylog_open(const char *path)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

int keys_ctx_init(SSL_CTX *ssl_ctx)
{
	const char *path;

	if (indexes() != 0) {
		errno = ENOMEM;
		return -1;
	}
	SSL_CTX_set_keylog_callback(ssl_ctx, keylog_cb);
	SSL_CTX_set_msg_callback(ssl_ctx, msg_cb);
	/* secure_getenv: a setuid program never logs secrets for its caller. */
	path = secure_getenv("SSLKEYLOGFILE");
	if (path && *path) {
		int *fd = malloc(sizeof(*fd));

		if (!fd) {
			errno = ENOMEM;
			return -1;
		}
		*fd = keylog_open(path);
		if (*fd < 0 || !SSL_CTX_set_ex_data(ssl_ctx, ctx_idx, fd)) {
			int e = *fd < 0 ? errno : ENOMEM;

			if (*fd >= 0)
				close(*fd);
			free(fd);
			errno = e;
			return -1;
		}
	}
	return 0;
}

struct conn_keys *keys_conn_new(SSL *ssl)
{
	struct conn_keys *k;

	if (indexes() != 0)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->ssl = ssl;
	k->server = SSL_is_server(ssl);
	if (!SSL_set_ex_data(ssl, ssl_idx, k)) {
		free(k);
		return NULL;
	}
	return k;
}

/* Must run before SSL_free (conn.c does). */
void keys_conn_free(struct conn_keys *k)
{
	if (!k)
		return;
	if (k->ssl)
		SSL_set_ex_data(k->ssl, ssl_idx, NULL);
	secure_zero(k, sizeof(*k));
	free(k);
}

/* ---- derivation ----------------------------------------------------------- */

/* "AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305", from the table. */
static void carried_list(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < KTLS_PROBE_NCIPHERS && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s",
				      i == 0 ? "" : i + 1 == KTLS_PROBE_NCIPHERS ? " and " : ", ",
				      proto_ciphers[i].name);
}

int keys_params(SSL *ssl, struct key_params *p, char *err, size_t errlen)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int version = SSL_version(ssl);
	char carried[128];

	memset(p, 0, sizeof(*p));
	if (!c)
		return buf_seterr(err, errlen, "no cipher negotiated");
	if (version != TLS1_2_VERSION && version != TLS1_3_VERSION)
		return buf_seterr(err, errlen, "%s cannot be offloaded (kTLS carries TLS 1.2 and 1.3)",
				  SSL_get_version(ssl));
	p->version = version;
	p->cipher = proto_cipher_by_nid(SSL_CIPHER_get_cipher_nid(c));
	p->md = SSL_CIPHER_get_handshake_digest(c);
	if (!p->cipher) {
		carried_list(carried, sizeof(carried));
		return buf_seterr(err, errlen, "cipher %s cannot be offloaded (kTLS here carries %s)",
				  SSL_CIPHER_get_name(c), carried);
	}
	if (!p->md)
		return buf_seterr(err, errlen, "cipher %s has no known hash", SSL_CIPHER_get_name(c));
	return 0;
}

/* Run OpenSSL's KDF name with params into out.  0 or -1. */
static int kdf_derive(const char *name, const OSSL_PARAM *params, unsigned char *out,
		      size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, name, NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int ret = kctx && EVP_KDF_derive(kctx, out, out_len, params) == 1 ? 0 : -1;

	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ret;
}

int keys_hkdf_expand_label(const EVP_MD *md, const unsigned char *secret, size_t secret_len,
			   const char *label, const unsigned char *ctx, size_t ctx_len,
			   unsigned char *out, size_t out_len)
{
	/* struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } */
	unsigned char info[2 + 1 + 255 + 1 + 255];
	size_t llen = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[5], *pp = params;

	if (6 + llen > 255 || ctx_len > 255 || out_len > 0xffff)
		return -1;
	info[n++] = (unsigned char)(out_len >> 8);
	info[n++] = (unsigned char)out_len;
	info[n++] = (unsigned char)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = (unsigned char)ctx_len;
	if (ctx_len)
		memcpy(info + n, ctx, ctx_len);
	n += ctx_len;

	*pp++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	*pp++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0);
	*pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
	*pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	*pp = OSSL_PARAM_construct_end();
	return kdf_derive("HKDF", params, out, out_len);
}

int keys_next_secret(const EVP_MD *md, unsigned char *secret, size_t len)
{
	unsigned char next[KEYS_MAX_SECRET];
	int r;

	if (len > sizeof(next))
		return -1;
	r = keys_hkdf_expand_label(md, secret, len, "traffic upd", NULL, 0, next, len);
	if (r == 0)
		memcpy(secret, next, len);
	secure_zero(next, sizeof(next));
	return r;
}

int keys_tls12_prf(const EVP_MD *md, const unsigned char *secret, size_t secret_len,
		   const char *label, const unsigned char *seed, size_t seed_len,
		   unsigned char *out, size_t out_len)
{
	size_t llen = strlen(label);
	unsigned char *ls;
	OSSL_PARAM params[4], *pp = params;
	int ret;

	ls = malloc(llen + seed_len);
	if (!ls)
		return -1;
	memcpy(ls, label, llen);
	memcpy(ls + llen, seed, seed_len);
	*pp++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0);
	*pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secret_len);
	*pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, ls, llen + seed_len);
	*pp = OSSL_PARAM_construct_end();
	ret = kdf_derive("TLS1-PRF", params, out, out_len);
	secure_zero(ls, llen + seed_len);
	free(ls);
	return ret;
}

/*
 * Place the key, the salt, the iv and the sequence into the cipher's
 * struct, where its table row says they go.
 */
static void fill_info(const struct proto_cipher *pc, int version, const unsigned char *key,
		      const unsigned char *salt, const unsigned char *iv, uint64_t seq,
		      union tls_crypto *out)
{
	unsigned char *base = (unsigned char *)out;

	memset(out, 0, sizeof(*out));
	out->info.version = (unsigned short)version;
	out->info.cipher_type = (unsigned short)pc->tls_cipher;
	memcpy(base + pc->key_off, key, pc->key_len);
	if (pc->salt_len)
		memcpy(base + pc->salt_off, salt, pc->salt_len);
	memcpy(base + pc->iv_off, iv, pc->iv_len);
	keys_put_seq(base + pc->rec_seq_off, seq);
}

int keys_info_tls13(const struct key_params *p, const unsigned char *secret, size_t secret_len,
		    uint64_t seq, union tls_crypto *out)
{
	const struct proto_cipher *pc = p->cipher;
	unsigned char key[32], nonce[12];
	int r = -1;

	if (!secret_len || pc->key_len > sizeof(key) || pc->salt_len + pc->iv_len != sizeof(nonce))
		return -1;
	if (keys_hkdf_expand_label(p->md, secret, secret_len, "key", NULL, 0, key, pc->key_len) ||
	    keys_hkdf_expand_label(p->md, secret, secret_len, "iv", NULL, 0, nonce, sizeof(nonce)))
		goto out;
	/* The 12-byte nonce base splits into salt and iv (GCM: 4 + 8, ChaCha20: 0 + 12). */
	fill_info(pc, TLS_1_3_VERSION, key, nonce, nonce + pc->salt_len, seq, out);
	r = 0;
out:
	secure_zero(key, sizeof(key));
	secure_zero(nonce, sizeof(nonce));
	return r;
}

int keys_info_tls12(SSL *ssl, const struct key_params *p, int tx, uint64_t seq,
		    union tls_crypto *out)
{
	const struct proto_cipher *pc = p->cipher;
	unsigned char ms[SSL_MAX_MASTER_KEY_LENGTH], seed[2 * SSL3_RANDOM_SIZE];
	unsigned char block[2 * 32 + 2 * 12], nonce[8];
	const unsigned char *key, *iv;
	/* Explicit-nonce ciphers take only the salt from the key block. */
	size_t fixed_iv_len = pc->explicit_nonce ? pc->salt_len : pc->salt_len + pc->iv_len;
	size_t mslen, blen = 2 * pc->key_len + 2 * fixed_iv_len;
	SSL_SESSION *sess = SSL_get_session(ssl);
	int client_dir = tx ? !SSL_is_server(ssl) : SSL_is_server(ssl);
	int r = -1;

	if (!sess || blen > sizeof(block) || (pc->explicit_nonce && pc->iv_len != sizeof(nonce)))
		return -1;
	mslen = SSL_SESSION_get_master_key(sess, ms, sizeof(ms));
	/* key expansion seed is server_random + client_random (RFC 5246 6.3). */
	if (mslen == 0 || SSL_get_server_random(ssl, seed, SSL3_RANDOM_SIZE) != SSL3_RANDOM_SIZE ||
	    SSL_get_client_random(ssl, seed + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE) != SSL3_RANDOM_SIZE)
		goto out;
	if (keys_tls12_prf(p->md, ms, mslen, "key expansion", seed, sizeof(seed), block, blen))
		goto out;
	/* client_write_key | server_write_key | client_write_IV | server_write_IV (AEAD: no MAC keys) */
	key = block + (client_dir ? 0 : pc->key_len);
	iv = block + 2 * pc->key_len + (client_dir ? 0 : fixed_iv_len);
	if (pc->explicit_nonce) {
		/* The explicit nonce: the sequence number, unique under this key. */
		keys_put_seq(nonce, seq);
		fill_info(pc, TLS_1_2_VERSION, key, iv, nonce, seq, out);
	} else {
		fill_info(pc, TLS_1_2_VERSION, key, iv, iv + pc->salt_len, seq, out);
	}
	r = 0;
out:
	secure_zero(ms, sizeof(ms));
	secure_zero(block, sizeof(block));
	return r;
}
