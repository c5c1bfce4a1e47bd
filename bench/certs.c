/*
 * certs.c - the one certificate every server in a run uses: self-signed for
 * localhost and 127.0.0.1, ECDSA P-256 by default or RSA-2048, made with the
 * openssl command so no server is favoured by how its key was produced.
 * The client trusts exactly this certificate and checks the host name.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

int certs_make(struct bench *b, int rsa, char *cert, char *key, size_t cap)
{
	char out[1024];
	const char *tag = rsa ? "rsa2048" : "p256";
	char *argv[24];
	int n = 0, rc;

	snprintf(cert, cap, "%s/cert-%s.pem", b->workdir, tag);
	snprintf(key, cap, "%s/key-%s.pem", b->workdir, tag);
	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
		return 0;
	argv[n++] = "openssl";
	argv[n++] = "req";
	argv[n++] = "-x509";
	argv[n++] = "-newkey";
	if (rsa) {
		argv[n++] = "rsa:2048";
	} else {
		argv[n++] = "ec";
		argv[n++] = "-pkeyopt";
		argv[n++] = "ec_paramgen_curve:P-256";
	}
	argv[n++] = "-sha256";
	argv[n++] = "-nodes";
	argv[n++] = "-days";
	argv[n++] = "7";
	argv[n++] = "-subj";
	argv[n++] = "/CN=localhost";
	argv[n++] = "-addext";
	argv[n++] = "subjectAltName=DNS:localhost,IP:127.0.0.1";
	argv[n++] = "-keyout";
	argv[n++] = key;
	argv[n++] = "-out";
	argv[n++] = cert;
	argv[n] = NULL;
	rc = run_cmd(argv, out, sizeof(out));
	if (rc != 0) {
		fprintf(stderr, "ktls-bench: openssl req failed (%d): %s\n", rc, out);
		return -1;
	}
	return 0;
}
