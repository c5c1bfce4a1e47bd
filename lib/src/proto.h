/*
 * proto.h - the TLS protocol facts libktls needs, each kept once: the
 * ciphers kTLS carries (one table), record content types, alert levels and
 * names, version names, and the socket option numbers older libc headers
 * lack.
 *
 * Adding a cipher means adding its kernel struct to union tls_crypto, a
 * KTLS_PROBE_* index to ktls.h and a row to proto_ciphers; key derivation,
 * the probe and every printer read the row.
 */
#ifndef KTLS_PROTO_H
#define KTLS_PROTO_H

#include <stddef.h>
#include <linux/tls.h>

#include "ktls.h"

/* Record content types (RFC 8446 5.1). */
enum { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_DATA = 23 };

/* The largest plaintext one record carries (RFC 8446 5.1). */
#define REC_MAX_PLAINTEXT 16384

/* Alert levels (RFC 5246 7.2; TLS 1.3 keeps the byte). */
enum { ALERT_WARNING = 1, ALERT_FATAL = 2 };

/* The alert descriptions libktls sends or acts on (RFC 8446 6). */
enum {
	AD_CLOSE_NOTIFY = 0,
	AD_UNEXPECTED_MESSAGE = 10,
	AD_BAD_RECORD_MAC = 20,
	AD_RECORD_OVERFLOW = 22,
	AD_HANDSHAKE_FAILURE = 40,
	AD_ILLEGAL_PARAMETER = 47,
	AD_DECODE_ERROR = 50,
	AD_PROTOCOL_VERSION = 70,
	AD_INTERNAL_ERROR = 80,
	AD_USER_CANCELED = 90,
	AD_NO_RENEGOTIATION = 100,
	AD_UNKNOWN_PSK_IDENTITY = 115,
};

/*
 * The name of an alert description ("bad record mac", "unknown PSK
 * identity"): every alert of RFC 8446 6 and the TLS 1.2 ones it retired.
 * NULL for a number no RFC names.
 */
const char *proto_alert_name(int desc);

/* "TLS 1.2" for 0x0303 (SSL 3.0 to TLS 1.3); NULL for other numbers. */
const char *proto_version_name(int version);

/* One kTLS crypto_info, whichever cipher. */
union tls_crypto {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 g128;
	struct tls12_crypto_info_aes_gcm_256 g256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/*
 * One cipher kTLS carries.  The nonce base is always 12 bytes, salt then
 * iv: TLS 1.3 derives all 12 (RFC 8446 5.3); TLS 1.2 takes only the salt
 * from the key block when records carry an explicit nonce (AES-GCM,
 * RFC 5288), all 12 otherwise (ChaCha20-Poly1305, RFC 7905).
 */
struct proto_cipher {
	int probe;                /* KTLS_PROBE_*: also this row's index */
	int tls_cipher;           /* TLS_CIPHER_* */
	int nid;                  /* OpenSSL's NID of the AEAD */
	const char *name;         /* "AES-128-GCM": how libktls names it */
	const char *kernel_name;  /* "aes-gcm-128": how ss names it */
	size_t info_len;          /* sizeof the kernel's crypto_info struct */
	size_t key_len, salt_len, iv_len, rec_seq_len;
	size_t key_off, salt_off, iv_off, rec_seq_off; /* in that struct */
	int explicit_nonce;       /* TLS 1.2 records carry an 8-byte nonce */
	int record_limit;         /* AES-GCM: a key wears out (kernel.h) */
};

extern const struct proto_cipher proto_ciphers[KTLS_PROBE_NCIPHERS];

/* The row for an OpenSSL NID / a TLS_CIPHER_*; NULL when kTLS lacks it. */
const struct proto_cipher *proto_cipher_by_nid(int nid);
const struct proto_cipher *proto_cipher_by_tls(int tls_cipher);

#endif /* KTLS_PROTO_H */
