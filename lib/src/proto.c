/*
 * proto.c - the TLS protocol facts of proto.h: the cipher table, alert
 * names and version names.
 */
#include <stddef.h>

#include <openssl/obj_mac.h>

#include "internal.h"
#include "proto.h"

/* salt: its size and offset, 0 for a struct without one. */
#define CIPHER_ROW(idx, tls, nid_, nm, knm, st, salt, salt_at, explicit_, limit)              \
	[idx] = { .probe = idx, .tls_cipher = tls, .nid = nid_, .name = nm, .kernel_name = knm, \
		  .info_len = sizeof(struct st),                                               \
		  .key_len = sizeof(((struct st *)0)->key),                                    \
		  .salt_len = salt, .salt_off = salt_at,                                       \
		  .iv_len = sizeof(((struct st *)0)->iv),                                      \
		  .rec_seq_len = sizeof(((struct st *)0)->rec_seq),                            \
		  .key_off = offsetof(struct st, key),                                         \
		  .iv_off = offsetof(struct st, iv),                                           \
		  .rec_seq_off = offsetof(struct st, rec_seq),                                 \
		  .explicit_nonce = explicit_, .record_limit = limit }

const struct proto_cipher proto_ciphers[KTLS_PROBE_NCIPHERS] = {
	CIPHER_ROW(KTLS_PROBE_AES_128_GCM, TLS_CIPHER_AES_GCM_128, NID_aes_128_gcm, "AES-128-GCM",
		   "aes-gcm-128", tls12_crypto_info_aes_gcm_128, 4,
		   offsetof(struct tls12_crypto_info_aes_gcm_128, salt), 1, 1),
	CIPHER_ROW(KTLS_PROBE_AES_256_GCM, TLS_CIPHER_AES_GCM_256, NID_aes_256_gcm, "AES-256-GCM",
		   "aes-gcm-256", tls12_crypto_info_aes_gcm_256, 4,
		   offsetof(struct tls12_crypto_info_aes_gcm_256, salt), 1, 1),
	CIPHER_ROW(KTLS_PROBE_CHACHA20_POLY1305, TLS_CIPHER_CHACHA20_POLY1305,
		   NID_chacha20_poly1305, "ChaCha20-Poly1305", "chacha20-poly1305",
		   tls12_crypto_info_chacha20_poly1305, 0, 0, 0, 0),
};

const struct proto_cipher *proto_cipher_by_nid(int nid)
{
	for (size_t i = 0; i < KTLS_PROBE_NCIPHERS; i++)
		if (proto_ciphers[i].nid == nid)
			return &proto_ciphers[i];
	return NULL;
}

const struct proto_cipher *proto_cipher_by_tls(int tls_cipher)
{
	for (size_t i = 0; i < KTLS_PROBE_NCIPHERS; i++)
		if (proto_ciphers[i].tls_cipher == tls_cipher)
			return &proto_ciphers[i];
	return NULL;
}

KTLS_API const char *ktls_probe_cipher_name(int cipher)
{
	if (cipher < 0 || cipher >= KTLS_PROBE_NCIPHERS)
		return "unknown";
	return proto_ciphers[cipher].name;
}

const char *proto_alert_name(int desc)
{
	/* RFC 8446 6, and the TLS 1.2 alerts it retired (RFC 5246 7.2). */
	static const char *const names[] = {
		[0] = "close notify",
		[10] = "unexpected message",
		[20] = "bad record mac",
		[21] = "decryption failed",
		[22] = "record overflow",
		[30] = "decompression failure",
		[40] = "handshake failure",
		[41] = "no certificate",
		[42] = "bad certificate",
		[43] = "unsupported certificate",
		[44] = "certificate revoked",
		[45] = "certificate expired",
		[46] = "certificate unknown",
		[47] = "illegal parameter",
		[48] = "unknown CA",
		[49] = "access denied",
		[50] = "decode error",
		[51] = "decrypt error",
		[60] = "export restriction",
		[70] = "protocol version",
		[71] = "insufficient security",
		[80] = "internal error",
		[86] = "inappropriate fallback",
		[90] = "user canceled",
		[100] = "no renegotiation",
		[109] = "missing extension",
		[110] = "unsupported extension",
		[111] = "certificate unobtainable",
		[112] = "unrecognized name",
		[113] = "bad certificate status response",
		[114] = "bad certificate hash value",
		[115] = "unknown PSK identity",
		[116] = "certificate required",
		[120] = "no application protocol",
	};

	if (desc < 0 || (size_t)desc >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[desc];
}

const char *proto_version_name(int version)
{
	switch (version) {
	case 0x0300: return "SSL 3.0";
	case 0x0301: return "TLS 1.0";
	case 0x0302: return "TLS 1.1";
	case 0x0303: return "TLS 1.2";
	case 0x0304: return "TLS 1.3";
	default: return NULL;
	}
}
