/*
 * policy.h - the strict policy's rules that ctx.c applies: which suites are
 * allowed and how strong certificates and DH groups must be.  Private to
 * libktls (policy.c).
 */
#ifndef KTLS_POLICY_H
#define KTLS_POLICY_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/*
 * Default TLS 1.2 suites: Python 3.10's default list (in its order)
 * restricted to what kTLS can carry: forward-secret AES-GCM and
 * ChaCha20-Poly1305.  The DHE ones are usable by a server only once DH
 * parameters are loaded (OpenSSL has no automatic DH group here).
 */
#define POLICY_TLS12_DEFAULT                                                   \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"           \
	"DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"

#define POLICY_TLS13_DEFAULT                                                   \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"

#define POLICY_SECLEVEL 2
#define POLICY_MIN_RSA_BITS 2048 /* also DSA and DH */
#define POLICY_MIN_EC_BITS 224

/*
 * Expand an OpenSSL TLS 1.2 cipher string and check that every suite it
 * selects is in the policy's set.  On success writes the explicit,
 * ordered name list to out and returns 0; otherwise a KTLS_ERR_* code
 * (POLICY for a suite the policy refuses, INVALID for a list that selects
 * nothing, RESOURCE) with one line in err naming the first offending suite
 * (or why nothing was selected).
 */
int policy_narrow_tls12(const char *list, char *out, size_t outlen, char *err, size_t errlen);

/* Same for a TLS 1.3 ciphersuite list (colon-separated IANA names). */
int policy_narrow_tls13(const char *list, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Strength of one certificate of our own chain (index 0 = the leaf): key
 * size, and the signature digest unless self-signed.  0, or a KTLS_ERR_*
 * code (POLICY; FILE for a certificate without a usable key) with err.
 */
int policy_check_cert(X509 *x, int index, char *err, size_t errlen);

/* DH parameters: at least POLICY_MIN_RSA_BITS.  0, or KTLS_ERR_POLICY with err. */
int policy_check_dh(EVP_PKEY *dh, char *err, size_t errlen);

#endif /* KTLS_POLICY_H */
