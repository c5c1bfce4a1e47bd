/*
 * selfsign.c - the certificate ktlsd uses when given none: ECDSA P-256,
 * CN and SAN localhost/127.0.0.1/::1, made once and kept in
 * ${XDG_STATE_HOME:-~/.local/state}/ktlsd/ (/var/lib/ktlsd for root), or in
 * $KTLSD_STATE_DIR when that is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "serve.h"

static int mkdirs(const char *path)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!e)
		return 0;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

static int generate(const char *cert, const char *key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	FILE *f = NULL;
	int fd, ok = 0;

	if (!pk || !x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	name = X509_get_subject_name(x);
	if (!bn || !X509_set_version(x, 2) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pk) ||
	    !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
	    !add_ext(x, NID_ext_key_usage, "serverAuth") ||
	    !add_ext(x, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") ||
	    !X509_sign(x, pk, EVP_sha256()))
		goto out;
	fd = open(key, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	if (!PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = fopen(cert, "w");
	if (!f || !PEM_write_X509(f, x) || fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	ok = 1;
out:
	if (f)
		fclose(f);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

int selfsign_ensure(char *cert, char *key, size_t cap)
{
	char dir[3072];
	const char *st = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	const char *over = getenv("KTLSD_STATE_DIR");

	if (over && *over)
		snprintf(dir, sizeof(dir), "%s", over);
	else if (geteuid() == 0)
		snprintf(dir, sizeof(dir), "/var/lib/ktlsd");
	else if (st && *st == '/')
		snprintf(dir, sizeof(dir), "%s/ktlsd", st);
	else if (home && *home)
		snprintf(dir, sizeof(dir), "%s/.local/state/ktlsd", home);
	else {
		log_msg("no --cert, and neither XDG_STATE_HOME nor HOME to keep a self-signed one in");
		return -1;
	}
	snprintf(cert, cap, "%s/localhost-cert.pem", dir);
	snprintf(key, cap, "%s/localhost-key.pem", dir);
	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0) {
		log_msg("no --cert: using the self-signed localhost certificate %s", cert);
		return 0;
	}
	if (mkdirs(dir) < 0 || generate(cert, key) < 0) {
		log_msg("cannot create a self-signed certificate in %s: %s", dir,
			errno ? strerror(errno) : "OpenSSL failed");
		return -1;
	}
	log_msg("no --cert: created a self-signed ECDSA P-256 certificate for localhost: %s (key %s)",
		cert, key);
	return 0;
}
