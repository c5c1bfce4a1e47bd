/*
 * keys_derive.c - key derivation against independent oracles.
 *
 *   - TLS 1.3 HKDF-Expand-Label against RFC 8448's "Simple 1-RTT Handshake"
 *     trace (section 3): traffic secrets -> write key / iv, and how they land
 *     in the kernel's crypto_info (salt | iv, rec_seq);
 *   - "traffic upd" (KeyUpdate) against OpenSSL's own update, seen through
 *     its keylog callback (SHA-256 and SHA-384 suites);
 *   - the TLS 1.2 PRF and key block against a Python hmac implementation
 *     of RFC 5246 section 5 run by /usr/bin/python3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "keys.h"
#include "../common/testutil.h"

TestSuite(keys_derive, .timeout = 60);

static size_t unhex(const char *h, unsigned char *out)
{
	size_t n = 0;
	for (; h[0] && h[1]; h += 2)
		sscanf(h, "%2hhx", &out[n++]);
	return n;
}

static void tohex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* RFC 8448 section 3, TLS_AES_128_GCM_SHA256. */
static const struct {
	const char *what, *secret, *key, *iv;
} rfc8448[] = {
	{ "server handshake", "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
	  "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30" },
	{ "client handshake", "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
	  "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f" },
	{ "server application", "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
	  "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984" },
	{ "client application", "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
	  "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9" },
};

Test(keys_derive, rfc8448_write_key_and_iv)
{
	for (size_t i = 0; i < sizeof(rfc8448) / sizeof(rfc8448[0]); i++) {
		unsigned char secret[32], want_key[16], want_iv[12], key[16], iv[12];

		unhex(rfc8448[i].secret, secret);
		unhex(rfc8448[i].key, want_key);
		unhex(rfc8448[i].iv, want_iv);
		cr_assert_eq(keys_hkdf_expand_label(EVP_sha256(), secret, 32, "key", NULL, 0, key, 16), 0);
		cr_assert_eq(keys_hkdf_expand_label(EVP_sha256(), secret, 32, "iv", NULL, 0, iv, 12), 0);
		cr_expect_arr_eq(key, want_key, 16, "%s key", rfc8448[i].what);
		cr_expect_arr_eq(iv, want_iv, 12, "%s iv", rfc8448[i].what);
	}
}

/* The server's application secret as the kernel gets it, at sequence 2. */
Test(keys_derive, rfc8448_crypto_info_layout)
{
	struct key_params p = { .version = TLS1_3_VERSION,
				.cipher = proto_cipher_by_tls(TLS_CIPHER_AES_GCM_128), .md = EVP_sha256() };
	unsigned char secret[32], key[16], iv[12];
	const unsigned char seq2[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
	union tls_crypto ci;

	unhex(rfc8448[2].secret, secret);
	unhex(rfc8448[2].key, key);
	unhex(rfc8448[2].iv, iv);
	cr_assert_eq(keys_info_tls13(&p, secret, 32, 2, &ci), 0);
	cr_expect_eq(ci.info.version, TLS_1_3_VERSION);
	cr_expect_eq(ci.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	cr_expect_arr_eq(ci.g128.key, key, 16);
	cr_expect_arr_eq(ci.g128.salt, iv, 4, "salt = iv[0..4]");
	cr_expect_arr_eq(ci.g128.iv, iv + 4, 8, "iv = iv[4..12]");
	cr_expect_arr_eq(ci.g128.rec_seq, seq2, 8);

	/* ChaCha20-Poly1305 takes the whole 12-byte iv and no salt. */
	p.cipher = proto_cipher_by_tls(TLS_CIPHER_CHACHA20_POLY1305);
	cr_assert_eq(keys_info_tls13(&p, secret, 32, 0, &ci), 0);
	cr_expect_arr_eq(ci.chacha.iv, iv, 12);
}

/* ---- traffic upd: our derivation vs OpenSSL's KeyUpdate ----------------- */

struct logged {
	char s0[2 * KEYS_MAX_SECRET + 1], sn[2 * KEYS_MAX_SECRET + 1];
};

static void keylog(const SSL *ssl, const char *line)
{
	struct logged *l = SSL_get_app_data(ssl);
	const char *sec = strrchr(line, ' ');

	if (!l || !sec || !SSL_is_server(ssl))
		return;
	if (!strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24))
		snprintf(l->s0, sizeof(l->s0), "%s", sec + 1);
	else if (!strncmp(line, "SERVER_TRAFFIC_SECRET_N ", 24))
		snprintf(l->sn, sizeof(l->sn), "%s", sec + 1);
}

/* Drive both ends of a BIO pair until fn succeeds on both (1) or fails. */
static int pump(SSL *a, SSL *b, int (*fn)(SSL *))
{
	int ra = 0, rb = 0;

	for (int i = 0; i < 100 && (ra != 1 || rb != 1); i++) {
		if (ra != 1)
			ra = fn(a);
		if (rb != 1)
			rb = fn(b);
	}
	return ra == 1 && rb == 1 ? 0 : -1;
}

/* A client/server pair over a BIO pair with one suite. */
static void make_pair(int version, const char *suite, SSL_CTX **cc, SSL_CTX **sc, SSL **c, SSL **s)
{
	BIO *b1, *b2;

	*cc = SSL_CTX_new(TLS_client_method());
	*sc = SSL_CTX_new(TLS_server_method());
	cr_assert(*cc && *sc);
	for (int i = 0; i < 2; i++) {
		SSL_CTX *x = i ? *sc : *cc;
		SSL_CTX_set_min_proto_version(x, version);
		SSL_CTX_set_max_proto_version(x, version);
		if (version == TLS1_3_VERSION)
			SSL_CTX_set_ciphersuites(x, suite);
		else
			SSL_CTX_set_cipher_list(x, suite);
	}
	cr_assert(SSL_CTX_use_certificate_chain_file(*sc, tu_cert("server-ec.pem")) == 1);
	cr_assert(SSL_CTX_use_PrivateKey_file(*sc, tu_cert("server-ec.key"), SSL_FILETYPE_PEM) == 1);
	SSL_CTX_set_keylog_callback(*sc, keylog);
	*c = SSL_new(*cc);
	*s = SSL_new(*sc);
	cr_assert(BIO_new_bio_pair(&b1, 0, &b2, 0) == 1);
	SSL_set_bio(*c, b1, b1);
	SSL_set_bio(*s, b2, b2);
	SSL_set_connect_state(*c);
	SSL_set_accept_state(*s);
}

static int one_byte(SSL *ssl)
{
	char b;
	if (SSL_is_server(ssl))
		return SSL_write(ssl, "k", 1) == 1 ? 1 : 0;
	return SSL_read(ssl, &b, 1) == 1 ? 1 : 0;
}

static void traffic_upd_case(const char *suite, const EVP_MD *md, size_t len)
{
	SSL_CTX *cc, *sc;
	SSL *c, *s;
	struct logged l = { "", "" };
	unsigned char secret[KEYS_MAX_SECRET];
	char hex[2 * KEYS_MAX_SECRET + 1];

	make_pair(TLS1_3_VERSION, suite, &cc, &sc, &c, &s);
	SSL_set_app_data(s, &l);
	cr_assert_eq(pump(c, s, SSL_do_handshake), 0);
	cr_assert_eq(strlen(l.s0), 2 * len, "%s", l.s0);
	cr_assert_eq(SSL_key_update(s, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
	cr_assert_eq(pump(s, c, one_byte), 0, "data after OpenSSL's KeyUpdate");
	cr_assert_eq(strlen(l.sn), 2 * len, "OpenSSL logged no updated secret");
	unhex(l.s0, secret);
	cr_assert_eq(keys_next_secret(md, secret, len), 0);
	tohex(secret, len, hex);
	cr_expect_str_eq(hex, l.sn, "%s: HKDF-Expand-Label(\"traffic upd\")", suite);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cc);
	SSL_CTX_free(sc);
}

Test(keys_derive, traffic_upd_matches_openssl)
{
	traffic_upd_case("TLS_AES_128_GCM_SHA256", EVP_sha256(), 32);
	traffic_upd_case("TLS_AES_256_GCM_SHA384", EVP_sha384(), 48);
	traffic_upd_case("TLS_CHACHA20_POLY1305_SHA256", EVP_sha256(), 32);
}

/* ---- TLS 1.2 PRF vs Python ------------------------------------------------- */

/* RFC 5246 P_hash in Python, hex in -> hex out. */
static const char *py_prf =
	"import hmac,hashlib,sys\n"
	"h=getattr(hashlib,sys.argv[1]);s=bytes.fromhex(sys.argv[2]);"
	"seed=sys.argv[3].encode()+bytes.fromhex(sys.argv[4]);n=int(sys.argv[5])\n"
	"a=seed;out=bytes()\n"
	"while len(out)<n:\n"
	" a=hmac.new(s,a,h).digest();out+=hmac.new(s,a+seed,h).digest()\n"
	"print(out[:n].hex())\n";

static void py(const char *md, const unsigned char *secret, size_t slen, const char *label,
	       const unsigned char *seed, size_t seedlen, size_t n, char *out, size_t cap)
{
	char s[256], sd[256], cmd[2048];

	tohex(secret, slen, s);
	tohex(seed, seedlen, sd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c '%s' %s %s '%s' %s %zu", py_prf, md, s, label,
		 sd, n);
	cr_assert_eq(tu_run(cmd, out, cap), 0, "python3 failed: %s", cmd);
	out[strcspn(out, "\n")] = 0;
}

Test(keys_derive, tls12_prf_matches_python)
{
	for (int round = 0; round < 4; round++) {
		unsigned char secret[48], seed[64], got[160];
		char want[512], gothex[512];
		int sha384 = round & 1;
		size_t n = 40 + 30 * (size_t)round;

		RAND_bytes(secret, sizeof(secret));
		RAND_bytes(seed, sizeof(seed));
		cr_assert_eq(keys_tls12_prf(sha384 ? EVP_sha384() : EVP_sha256(), secret, 48,
					    "key expansion", seed, 64, got, n), 0);
		tohex(got, n, gothex);
		py(sha384 ? "sha384" : "sha256", secret, 48, "key expansion", seed, 64, n, want,
		   sizeof(want));
		cr_expect_str_eq(gothex, want, "round %d", round);
	}
}

/*
 * A real TLS 1.2 session: the crypto_info built for each direction equals
 * the slices of the key block Python computes from the session's master
 * secret and randoms (server_random first).
 */
static void tls12_case(const char *suite, const char *md, size_t klen, size_t ivlen, int cipher)
{
	SSL_CTX *cc, *sc;
	SSL *c, *s;
	struct key_params p;
	unsigned char ms[48], seed[64], block[128];
	char want[512], err[256];
	union tls_crypto tx, rx;

	make_pair(TLS1_2_VERSION, suite, &cc, &sc, &c, &s);
	cr_assert_eq(pump(c, s, SSL_do_handshake), 0);
	cr_assert_eq(keys_params(c, &p, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(p.cipher->tls_cipher, cipher);
	cr_assert_eq(SSL_SESSION_get_master_key(SSL_get_session(c), ms, 48), 48);
	SSL_get_server_random(c, seed, 32);
	SSL_get_client_random(c, seed + 32, 32);
	py(md, ms, 48, "key expansion", seed, 64, 2 * klen + 2 * ivlen, want, sizeof(want));
	unhex(want, block);
	/* The client: TX is the client_write half, RX the server's. */
	cr_assert_eq(keys_info_tls12(c, &p, 1, 1, &tx), 0);
	cr_assert_eq(keys_info_tls12(c, &p, 0, 7, &rx), 0);
	cr_expect_eq(tx.info.version, TLS_1_2_VERSION);
	if (cipher == TLS_CIPHER_CHACHA20_POLY1305) {
		cr_expect_arr_eq(tx.chacha.key, block, 32);
		cr_expect_arr_eq(rx.chacha.key, block + 32, 32);
		cr_expect_arr_eq(tx.chacha.iv, block + 64, 12);
		cr_expect_arr_eq(rx.chacha.iv, block + 76, 12);
		cr_expect_eq(rx.chacha.rec_seq[7], 7);
	} else if (cipher == TLS_CIPHER_AES_GCM_128) {
		const unsigned char nonce1[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
		cr_expect_arr_eq(tx.g128.key, block, 16);
		cr_expect_arr_eq(rx.g128.key, block + 16, 16);
		cr_expect_arr_eq(tx.g128.salt, block + 32, 4);
		cr_expect_arr_eq(rx.g128.salt, block + 36, 4);
		cr_expect_arr_eq(tx.g128.iv, nonce1, 8, "explicit nonce starts at the sequence number");
		cr_expect_arr_eq(tx.g128.rec_seq, nonce1, 8);
	} else {
		cr_expect_arr_eq(tx.g256.key, block, 32);
		cr_expect_arr_eq(rx.g256.key, block + 32, 32);
		cr_expect_arr_eq(tx.g256.salt, block + 64, 4);
		cr_expect_arr_eq(rx.g256.salt, block + 68, 4);
	}
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cc);
	SSL_CTX_free(sc);
}

Test(keys_derive, tls12_key_block_matches_python)
{
	tls12_case("ECDHE-ECDSA-AES128-GCM-SHA256", "sha256", 16, 4, TLS_CIPHER_AES_GCM_128);
	tls12_case("ECDHE-ECDSA-AES256-GCM-SHA384", "sha384", 32, 4, TLS_CIPHER_AES_GCM_256);
	tls12_case("ECDHE-ECDSA-CHACHA20-POLY1305", "sha256", 32, 12, TLS_CIPHER_CHACHA20_POLY1305);
}

Test(keys_derive, hkdf_label_bounds)
{
	unsigned char s[32] = { 0 }, out[16];
	char label[300];

	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = 0;
	cr_expect_eq(keys_hkdf_expand_label(EVP_sha256(), s, 32, label, NULL, 0, out, 16), -1,
		     "a label over 255 bytes is refused, not truncated");
}
