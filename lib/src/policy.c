/*
 * policy.c - what the strict policy allows.
 *
 * Suites: a caller's cipher string is expanded by OpenSSL itself on a
 * scratch SSL_CTX at security level 0 (so that nothing is silently filtered
 * out before we look at it), and every suite it selects must be one of the
 * policy's.  The caller may narrow and reorder, never widen.
 *
 * Certificates: OpenSSL's security level 2 would refuse weak keys too, but
 * with "ee key too small"; checking first lets the error name the algorithm,
 * the size found and the size needed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "policy.h"

/* One line into err; returns code (a KTLS_ERR_*, never 0) for the caller to pass on. */
static int KTLS_PRINTF(4, 5) refuse(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vseterr(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static const char *const tls12_allowed[] = {
	"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
	"DHE-RSA-AES256-GCM-SHA384",     "DHE-RSA-AES128-GCM-SHA256",
};

static const char *const tls13_allowed[] = {
	"TLS_AES_256_GCM_SHA384",
	"TLS_CHACHA20_POLY1305_SHA256",
	"TLS_AES_128_GCM_SHA256",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int in_list(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return 1;
	return 0;
}

/* Why a TLS 1.2 suite is outside the policy, most fundamental reason first. */
static const char *tls12_refusal(const SSL_CIPHER *c)
{
	int kx = SSL_CIPHER_get_kx_nid(c);
	int auth = SSL_CIPHER_get_auth_nid(c);
	int enc = SSL_CIPHER_get_cipher_nid(c);

	if (kx == NID_kx_rsa)
		return "no forward secrecy (RSA key exchange)";
	if (kx == NID_kx_psk || kx == NID_kx_rsa_psk || kx == NID_kx_dhe_psk ||
	    kx == NID_kx_ecdhe_psk)
		return "pre-shared-key suites are not allowed";
	if (kx == NID_kx_srp)
		return "SRP suites are not allowed";
	if (kx != NID_kx_ecdhe && kx != NID_kx_dhe)
		return "key exchange is not forward-secret (EC)DHE";
	if (auth == NID_auth_null)
		return "no authentication (anonymous suite)";
	if (enc == NID_undef)
		return "no encryption (NULL cipher)";
	if (!SSL_CIPHER_is_aead(c))
		return SSL_CIPHER_get_digest_nid(c) == NID_sha1 ?
			       "CBC mode with a SHA-1 MAC, not AEAD" :
			       "CBC mode, not AEAD";
	if (enc == NID_aes_128_ccm || enc == NID_aes_256_ccm)
		return "AES-CCM is excluded by policy";
	if (auth == NID_auth_dss)
		return "DSS authentication is not allowed";
	if (enc != NID_aes_128_gcm && enc != NID_aes_256_gcm && enc != NID_chacha20_poly1305)
		return "kTLS cannot carry this cipher (only AES-GCM and ChaCha20-Poly1305)";
	return "not in the policy's suite set (Python's default list)";
}

static int append(char *out, size_t outlen, size_t *used, const char *name)
{
	int n = snprintf(out + *used, outlen - *used, "%s%s", *used ? ":" : "", name);

	if (n < 0 || (size_t)n >= outlen - *used)
		return -1;
	*used += (size_t)n;
	return 0;
}

int policy_narrow_tls12(const char *list, char *out, size_t outlen, char *err, size_t errlen)
{
	SSL_CTX *scratch;
	STACK_OF(SSL_CIPHER) *sk;
	size_t used = 0;
	int n, ret;

	if (!list)
		return refuse(KTLS_ERR_INVALID, err, errlen, "cipher list is NULL");
	/* A level in the string would quietly lower the floor for the context. */
	if (strstr(list, "@SECLEVEL"))
		return refuse(KTLS_ERR_POLICY, err, errlen, "cipher list may not set @SECLEVEL "
					      "(the policy fixes security level %d)", POLICY_SECLEVEL);
	scratch = SSL_CTX_new(TLS_method());
	if (!scratch)
		return refuse(KTLS_ERR_RESOURCE, err, errlen, "out of memory");
	SSL_CTX_set_security_level(scratch, 0);
	ERR_set_mark();
	/* No TLS 1.3 suites on the scratch: only what the string selects shows. */
	if (!SSL_CTX_set_ciphersuites(scratch, "") || !SSL_CTX_set_cipher_list(scratch, list)) {
		ERR_pop_to_mark();
		ret = refuse(KTLS_ERR_INVALID, err, errlen, "cipher list \"%s\" selects no TLS 1.2 "
			     "suite", list);
		goto out;
	}
	ERR_pop_to_mark();
	sk = SSL_CTX_get_ciphers(scratch);
	n = sk ? sk_SSL_CIPHER_num(sk) : 0;
	for (int i = 0; i < n; i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
		const char *name = SSL_CIPHER_get_name(c);

		if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any)
			continue; /* a TLS 1.3 suite; those are set separately */
		if (!in_list(name, tls12_allowed, NELEM(tls12_allowed))) {
			ret = refuse(KTLS_ERR_POLICY, err, errlen, "cipher %s is not allowed: %s", name,
				   tls12_refusal(c));
			goto out;
		}
		if (append(out, outlen, &used, name)) {
			ret = refuse(KTLS_ERR_INVALID, err, errlen, "cipher list too long");
			goto out;
		}
	}
	if (!used) {
		ret = refuse(KTLS_ERR_INVALID, err, errlen, "cipher list \"%s\" selects no TLS 1.2 "
			     "suite", list);
		goto out;
	}
	ret = 0;
out:
	SSL_CTX_free(scratch);
	return ret;
}

int policy_narrow_tls13(const char *list, char *out, size_t outlen, char *err, size_t errlen)
{
	char name[64];
	size_t used = 0;
	const char *p = list;

	if (!list)
		return refuse(KTLS_ERR_INVALID, err, errlen, "ciphersuite list is NULL");
	while (*p) {
		size_t len = strcspn(p, ":");

		if (len >= sizeof(name))
			return refuse(KTLS_ERR_POLICY, err, errlen, "ciphersuite %.*s... is not allowed: "
						      "unknown name", 40, p);
		memcpy(name, p, len);
		name[len] = '\0';
		p += len + (p[len] == ':');
		if (!len)
			continue;
		if (!in_list(name, tls13_allowed, NELEM(tls13_allowed))) {
			const char *why = strstr(name, "CCM") ? "AES-CCM is excluded by policy" :
					  strncmp(name, "TLS_", 4) ? "not a TLS 1.3 ciphersuite name" :
								     "unknown ciphersuite";
			return refuse(KTLS_ERR_POLICY, err, errlen, "ciphersuite %s is not allowed: %s "
						      "(allowed: " POLICY_TLS13_DEFAULT ")", name, why);
		}
		if (append(out, outlen, &used, name))
			return refuse(KTLS_ERR_INVALID, err, errlen, "ciphersuite list too long");
	}
	if (!used)
		return refuse(KTLS_ERR_INVALID, err, errlen, "ciphersuite list is empty");
	return 0;
}

/* "RSA", "EC", ... and the minimum size the policy wants for it (0: any). */
static const char *key_kind(EVP_PKEY *k, int *min_bits)
{
	*min_bits = POLICY_MIN_RSA_BITS;
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		return "RSA";
	case EVP_PKEY_RSA_PSS:
		return "RSA-PSS";
	case EVP_PKEY_DSA:
		return "DSA";
	case EVP_PKEY_DH:
		return "DH";
	case EVP_PKEY_EC:
		*min_bits = POLICY_MIN_EC_BITS;
		return "EC";
	default:
		*min_bits = 0;
		return "key";
	}
}

int policy_check_cert(X509 *x, int index, char *err, size_t errlen)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	char what[32];
	int min_bits, bits, mdnid = NID_undef, secbits = -1;
	uint32_t flags = 0;
	const char *kind;

	if (index == 0)
		snprintf(what, sizeof(what), "certificate");
	else
		snprintf(what, sizeof(what), "chain certificate %d", index);
	if (!k)
		return refuse(KTLS_ERR_FILE, err, errlen, "%s has no usable public key", what);
	kind = key_kind(k, &min_bits);
	bits = EVP_PKEY_get_bits(k);
	if (min_bits && bits < min_bits) {
		char group[64] = "";
		size_t glen = 0;

		if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
		    EVP_PKEY_get_group_name(k, group + 2, sizeof(group) - 3, &glen) == 1) {
			group[0] = ' ';
			group[1] = '(';
			group[2 + glen] = ')';
			group[3 + glen] = '\0';
		}
		return refuse(KTLS_ERR_POLICY, err, errlen, "%s key too small: %s %d bits%s, policy needs >= %d",
				  what, kind, bits, group, min_bits);
	}
	if (!min_bits && EVP_PKEY_get_security_bits(k) < 112)
		return refuse(KTLS_ERR_POLICY, err, errlen, "%s key too weak: %d security bits, policy needs >= 112",
				  what, EVP_PKEY_get_security_bits(k));

	/* A self-signed certificate's own signature protects nothing. */
	if (X509_get_extension_flags(x) & EXFLAG_SS)
		return 0;
	if (!X509_get_signature_info(x, &mdnid, NULL, &secbits, &flags)) {
		ERR_clear_error();
		return refuse(KTLS_ERR_POLICY, err, errlen, "%s has an unknown signature algorithm",
			      what);
	}
	if (mdnid == NID_sha1)
		return refuse(KTLS_ERR_POLICY, err, errlen, "%s signature uses SHA-1, refused by security level %d",
				  what, POLICY_SECLEVEL);
	if (mdnid == NID_md5 || mdnid == NID_md5_sha1)
		return refuse(KTLS_ERR_POLICY, err, errlen, "%s signature uses MD5, refused by security level %d",
				  what, POLICY_SECLEVEL);
	if (secbits >= 0 && secbits < 112)
		return refuse(KTLS_ERR_POLICY, err, errlen, "%s signature too weak (%d bits), refused by "
					      "security level %d", what, secbits, POLICY_SECLEVEL);
	return 0;
}

int policy_check_dh(EVP_PKEY *dh, char *err, size_t errlen)
{
	int bits = EVP_PKEY_get_bits(dh);

	if (bits < POLICY_MIN_RSA_BITS)
		return refuse(KTLS_ERR_POLICY, err, errlen, "DH parameters too small: %d bits, policy needs >= %d",
				  bits, POLICY_MIN_RSA_BITS);
	return 0;
}
