/*
 * demo.c - `ktlsctl demo`: a short self-demonstration of libktls.
 *
 * A libktls server and a libktls client talk over a loopback TCP pair:
 * handshake (a self-signed ECDSA P-256 certificate for "localhost", made
 * in memory, which the client trusts and verifies), kTLS offload on both
 * ends, a transfer with ktls_conn_sendfile checked by SHA-256 on the
 * receiving side, and close_notify both ways.  Where the kernel has no
 * kTLS, the connection stays in userspace and the demo prints why.
 *
 * Output is `key: value` lines; the exit status is 0 only when the hash
 * matched and both sides shut down cleanly.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "commands.h"
#include "ktls.h"

#define DEMO_BYTES (4u << 20)
#define IO_TIMEOUT_S 60

/* ---- the certificate ------------------------------------------------------ */

/*
 * A fresh P-256 key and a self-signed certificate for localhost (SAN
 * DNS:localhost, valid one day).  The PEM cert and key go into a memfd the
 * server loads through /proc/self/fd, so the key never touches a disk; the
 * cert's PEM is also returned for the client's trust store.
 */
static int make_cert(int *memfd, char **cert_pem, size_t *cert_len)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	BIO *mem = NULL, *fdb = NULL;
	char *p;
	long n;
	int fd = -1, ok = 0;

	if (!key || !x)
		goto out;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key))
		goto out;
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:localhost");
	if (!ext || !X509_add_ext(x, ext, -1))
		goto out;
	if (!X509_sign(x, key, EVP_sha256()))
		goto out;

	fd = memfd_create("ktls-demo-cert", MFD_CLOEXEC);
	if (fd < 0)
		goto out;
	fdb = BIO_new_fd(fd, BIO_NOCLOSE);
	mem = BIO_new(BIO_s_mem());
	if (!fdb || !mem || !PEM_write_bio_X509(fdb, x) ||
	    !PEM_write_bio_PrivateKey(fdb, key, NULL, NULL, 0, NULL, NULL) ||
	    BIO_flush(fdb) != 1 || !PEM_write_bio_X509(mem, x))
		goto out;
	n = BIO_get_mem_data(mem, &p);
	if (n <= 0 || !(*cert_pem = malloc((size_t)n)))
		goto out;
	memcpy(*cert_pem, p, (size_t)n);
	*cert_len = (size_t)n;
	*memfd = fd;
	fd = -1;
	ok = 1;
out:
	if (fd >= 0)
		close(fd);
	BIO_free(fdb);
	BIO_free(mem);
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}

/* ---- helpers ----------------------------------------------------------------- */

static void hex(const unsigned char *md, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[2 * n] = '\0';
}

/* Connected loopback pair: fds[0] client, fds[1] server.  0 or -1. */
static int tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	socklen_t alen = sizeof(a);
	int l, c = -1, s = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0 &&
	    getsockname(l, (struct sockaddr *)&a, &alen) == 0 &&
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
	    connect(c, (struct sockaddr *)&a, sizeof(a)) == 0)
		s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (s < 0) {
		if (c >= 0)
			close(c);
		return -1;
	}
	/* A stuck peer must fail the demo, not hang it. */
	for (int i = 0; i < 2; i++) {
		int fd = i ? s : c;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	fds[0] = c;
	fds[1] = s;
	return 0;
}

/* ---- the server side (its own thread) ------------------------------------------ */

struct server {
	ktls_ctx *ctx;
	int fd;
	struct ktls_info info;
	int offloaded;                    /* handshake + offload done */
	unsigned long long received;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	int ok;
	char err[256];
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ktls_conn *c = ktls_conn_accept(s->ctx, s->fd);
	static char buf[1 << 16];
	ssize_t n;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		snprintf(s->err, sizeof(s->err), "SHA-256 unavailable");
		goto out;
	}
	if (!c) {
		snprintf(s->err, sizeof(s->err), "conn: %s", ktls_ctx_error(s->ctx));
		goto out;
	}
	if (ktls_conn_handshake(c) != 0 || ktls_conn_offload(c) != 0 ||
	    ktls_conn_info(c, &s->info) != 0) {
		snprintf(s->err, sizeof(s->err), "%s", ktls_conn_error(c));
		goto out;
	}
	s->offloaded = 1;
	while ((n = ktls_conn_read(c, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		s->received += (unsigned long long)n;
	}
	if (n != 0) {
		snprintf(s->err, sizeof(s->err), "read: %s",
			 n == -1 ? ktls_conn_error(c) : "timed out");
		goto out;
	}
	if (!EVP_DigestFinal_ex(md, s->md, &s->mdlen)) {
		snprintf(s->err, sizeof(s->err), "SHA-256 failed");
		goto out;
	}
	if (ktls_conn_shutdown(c) != 0) {
		snprintf(s->err, sizeof(s->err), "shutdown: %s", ktls_conn_error(c));
		goto out;
	}
	s->ok = 1;
out:
	ktls_conn_free(c);
	EVP_MD_CTX_free(md);
	/* Unblock a client still waiting on us after a failure. */
	if (!s->ok)
		shutdown(s->fd, SHUT_RDWR);
	return NULL;
}

/* ---- the client side ---------------------------------------------------------- */

static void print_side(const char *side, const struct ktls_info *i)
{
	printf("%s_tx: %s\n", side, ktls_mode_name(i->tx));
	printf("%s_rx: %s\n", side, ktls_mode_name(i->rx));
	printf("%s_fallback: %s\n", side, i->fallback_reason ? i->fallback_reason : "none");
}

/* Fill a memfd with `bytes` of pseudo-random data and hash it. */
static int make_payload(size_t bytes, unsigned char *md, unsigned *mdlen)
{
	int fd = memfd_create("ktls-demo-data", MFD_CLOEXEC);
	unsigned char *p;
	unsigned long long x = 0x9e3779b97f4a7c15ull ^ (unsigned long long)time(NULL);

	if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0)
		goto fail;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	for (size_t i = 0; i < bytes; i++) { /* xorshift64: fast, not secret */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
	if (!EVP_Digest(p, bytes, md, mdlen, EVP_sha256(), NULL)) {
		munmap(p, bytes);
		goto fail;
	}
	munmap(p, bytes);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int parse_args(int argc, char **argv, int *tls12, size_t *bytes)
{
	for (int i = 1; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--tls1.2")) {
			*tls12 = 1;
		} else if (!strcmp(argv[i], "--bytes") && i + 1 < argc) {
			unsigned long long v;

			errno = 0;
			v = strtoull(argv[++i], &end, 10);
			if (errno || *end || v == 0 || v > (1ull << 30)) {
				fprintf(stderr, "ktlsctl demo: --bytes wants 1..1073741824\n");
				return -1;
			}
			*bytes = (size_t)v;
		} else {
			fprintf(stderr, "ktlsctl demo: unknown option '%s'\n"
					"usage: ktlsctl demo [--tls1.2] [--bytes N]\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

int cmd_demo(int argc, char **argv)
{
	struct server srv = { 0 };
	struct ktls_info ci;
	pthread_t th;
	ktls_ctx *cctx = NULL, *sctx = NULL;
	ktls_conn *c = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char *cert_pem = NULL, path[64], h1[2 * EVP_MAX_MD_SIZE + 1], h2[sizeof(h1)];
	size_t cert_len = 0, bytes = DEMO_BYTES, sent = 0;
	off_t off = 0;
	int fds[2] = { -1, -1 }, certfd = -1, datafd = -1, tls12 = 0, started = 0, rc = 1;
	int client_ok = 0;
	char buf[64];
	ssize_t n;
	struct timespec t0, t1;

	if (parse_args(argc, argv, &tls12, &bytes) != 0)
		return 2;
	printf("demo: libktls server and client over loopback TCP, "
	       "self-signed ECDSA P-256 certificate for localhost\n");

	if (make_cert(&certfd, &cert_pem, &cert_len) != 0) {
		fprintf(stderr, "ktlsctl demo: cannot make a certificate with OpenSSL\n");
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", certfd);
	sctx = ktls_ctx_new(KTLS_SERVER);
	cctx = ktls_ctx_new(KTLS_CLIENT);
	if (!sctx || !cctx) {
		fprintf(stderr, "ktlsctl demo: ktls_ctx_new: %s\n", strerror(errno));
		goto out;
	}
	if (ktls_ctx_load_cert_chain(sctx, path, NULL) != 0) {
		fprintf(stderr, "ktlsctl demo: server certificate: %s\n", ktls_ctx_error(sctx));
		goto out;
	}
	close(certfd); /* the key lived only in this memfd */
	certfd = -1;
	if (ktls_ctx_load_verify_mem(cctx, cert_pem, cert_len) != 0) {
		fprintf(stderr, "ktlsctl demo: client trust: %s\n", ktls_ctx_error(cctx));
		goto out;
	}
	if (tls12 && ktls_ctx_set_max_version(cctx, KTLS_TLS1_2) != 0) {
		fprintf(stderr, "ktlsctl demo: %s\n", ktls_ctx_error(cctx));
		goto out;
	}
	datafd = make_payload(bytes, md, &mdlen);
	if (datafd < 0) {
		fprintf(stderr, "ktlsctl demo: cannot prepare %zu bytes: %s\n", bytes, strerror(errno));
		goto out;
	}
	if (tcp_pair(fds) != 0) {
		fprintf(stderr, "ktlsctl demo: loopback TCP pair: %s\n", strerror(errno));
		goto out;
	}

	srv.ctx = sctx;
	srv.fd = fds[1];
	if (pthread_create(&th, NULL, server_main, &srv) != 0) {
		fprintf(stderr, "ktlsctl demo: cannot start the server thread\n");
		goto out;
	}
	started = 1;

	c = ktls_conn_connect(cctx, fds[0], "localhost");
	if (!c) {
		fprintf(stderr, "ktlsctl demo: client: %s\n", ktls_ctx_error(cctx));
		goto out;
	}
	if (ktls_conn_handshake(c) != 0 || ktls_conn_offload(c) != 0 || ktls_conn_info(c, &ci) != 0) {
		fprintf(stderr, "ktlsctl demo: client: %s\n", ktls_conn_error(c));
		goto out;
	}
	printf("version: %s\n", ci.version_name);
	printf("cipher: %s\n", ci.cipher);
	print_side("client", &ci);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sent < bytes) {
		n = ktls_conn_sendfile(c, datafd, &off, bytes - sent);
		if (n <= 0) {
			fprintf(stderr, "ktlsctl demo: sendfile after %zu bytes: %s\n", sent,
				n == 0 ? "file ended early" : ktls_conn_error(c));
			goto out;
		}
		sent += (size_t)n;
	}
	if (ktls_conn_shutdown(c) != 0) {
		fprintf(stderr, "ktlsctl demo: client shutdown: %s\n", ktls_conn_error(c));
		goto out;
	}
	/* Wait for the server's close_notify: reads return 0 on a clean close. */
	n = ktls_conn_read(c, buf, sizeof(buf));
	if (n != 0) {
		fprintf(stderr, "ktlsctl demo: expected the server's close_notify, got %s\n",
			n > 0 ? "data" : ktls_conn_error(c));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	client_ok = 1;
out:
	if (!client_ok && fds[0] >= 0)
		shutdown(fds[0], SHUT_RDWR); /* let the server thread finish */
	if (started)
		pthread_join(th, NULL);
	if (srv.offloaded)
		print_side("server", &srv.info);
	if (client_ok) {
		double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;

		printf("bytes: %zu sent with ktls_conn_sendfile, %llu received (%.1f ms)\n",
		       sent, srv.received, ms);
	}
	if (srv.err[0])
		fprintf(stderr, "ktlsctl demo: server: %s\n", srv.err);
	if (client_ok && srv.ok) {
		hex(md, mdlen, h1);
		hex(srv.md, srv.mdlen, h2);
		printf("sha256_sent: %s\n", h1);
		printf("sha256_received: %s\n", h2);
		if (srv.received == bytes && srv.mdlen == mdlen && !memcmp(md, srv.md, mdlen)) {
			printf("shutdown: clean (close_notify both ways)\n");
			rc = 0;
		} else {
			fprintf(stderr, "ktlsctl demo: the received data differs from what was sent\n");
		}
	}
	printf("result: %s\n", rc == 0 ? "ok" : "FAILED");
	ktls_conn_free(c);
	ktls_ctx_free(cctx);
	ktls_ctx_free(sctx);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (datafd >= 0)
		close(datafd);
	if (certfd >= 0)
		close(certfd);
	free(cert_pem);
	return rc;
}
