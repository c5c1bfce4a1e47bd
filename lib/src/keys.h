/*
 * keys.h - what keys.c offers the kernel side: the per-connection captured
 * secrets and record counts, and the derivations that turn them into kTLS
 * crypto_info.  keys.c never calls the kernel side.
 *
 * Sources of truth (OpenSSL 3.0 has no getter for traffic keys or record
 * sequence numbers):
 *   - TLS 1.3 traffic secrets come from the keylog callback
 *     (CLIENT_/SERVER_TRAFFIC_SECRET_0, later _N on KeyUpdate);
 *   - TLS 1.2 keys are expanded from SSL_SESSION_get_master_key() and the
 *     two randoms with the TLS 1.2 PRF;
 *   - sequence numbers are counted: the msg callback sees every record
 *     header, and a direction's counter restarts at each key change (the
 *     keylog line for TLS 1.3, a ChangeCipherSpec header for TLS 1.2).
 */
#ifndef KTLS_KEYS_H
#define KTLS_KEYS_H

#include <stdint.h>
#include <linux/tls.h>

#include <openssl/evp.h>

#include "internal.h"
#include "proto.h"

/* What the negotiated suite needs, from keys_params(). */
struct key_params {
	int version;                      /* TLS1_2_VERSION / TLS1_3_VERSION */
	const struct proto_cipher *cipher;
	const EVP_MD *md;                 /* HKDF / PRF hash */
};

#define KEYS_MAX_SECRET 64  /* EVP_MAX_MD_SIZE */

struct conn_keys {
	SSL *ssl;
	int server;                       /* SSL_is_server at creation */
	/* TLS 1.3 secrets as OpenSSL logged them (client = client's writes). */
	unsigned char client_secret[KEYS_MAX_SECRET], server_secret[KEYS_MAX_SECRET];
	size_t client_len, server_len;
	/* Records seen by OpenSSL since the last key change, per direction. */
	uint64_t seq_tx, seq_rx;

	int offloaded;                    /* keys went to the kernel (or never will): capture stops */
	/*
	 * Set by the kernel side when TX went to the kernel and RX stayed in
	 * OpenSSL, whose writes then go to a sink: every message OpenSSL meant
	 * to send, and every handshake message it received, is passed on so
	 * the kernel side can redo what matters (kernel.h, kernel_sink_msg).
	 */
	void (*sink_msg)(void *arg, int write_p, int content_type, const unsigned char *p,
			 size_t len);
	void *sink_arg;
};

/* The conn_keys attached to ssl, or NULL. */
struct conn_keys *keys_of(const SSL *ssl);

/*
 * The negotiated suite's parameters; -1 with a reason ("cipher
 * TLS_AES_128_CCM_SHA256 cannot be offloaded: kTLS here carries only ...")
 * when kTLS cannot carry it.
 */
int keys_params(SSL *ssl, struct key_params *p, char *err, size_t errlen);

/*
 * TLS 1.3 HKDF-Expand-Label(secret, label, context, out_len) (RFC 8446
 * 7.1), label without the "tls13 " prefix.  0 or -1.
 */
int keys_hkdf_expand_label(const EVP_MD *md, const unsigned char *secret, size_t secret_len,
			   const char *label, const unsigned char *ctx, size_t ctx_len,
			   unsigned char *out, size_t out_len);

/* TLS 1.3 KeyUpdate: secret = HKDF-Expand-Label(secret, "traffic upd", "", len). */
int keys_next_secret(const EVP_MD *md, unsigned char *secret, size_t len);

/* TLS 1.2 PRF(secret, label, seed) -> out (RFC 5246 5).  0 or -1. */
int keys_tls12_prf(const EVP_MD *md, const unsigned char *secret, size_t secret_len,
		   const char *label, const unsigned char *seed, size_t seed_len,
		   unsigned char *out, size_t out_len);

/*
 * crypto_info for a TLS 1.3 direction from its traffic secret and the next
 * record sequence number.  0 or -1.
 */
int keys_info_tls13(const struct key_params *p, const unsigned char *secret, size_t secret_len,
		    uint64_t seq, union tls_crypto *out);

/*
 * crypto_info for a TLS 1.2 direction (tx: ours, else the peer's) from the
 * session's master secret.  The explicit nonce of TX records starts at seq
 * (unique per record, as GnuTLS and s2n do).  0 or -1.
 */
int keys_info_tls12(SSL *ssl, const struct key_params *p, int tx, uint64_t seq,
		    union tls_crypto *out);

/* Build the 8-byte big-endian sequence number. */
void keys_put_seq(unsigned char out[8], uint64_t seq);

#endif /* KTLS_KEYS_H */
