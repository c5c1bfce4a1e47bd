/*
 * crypto.c - `ktls-bench crypto`: how fast this machine's kernel kTLS
 * encrypts, next to OpenSSL's EVP in the same run.  kTLS rows: a loopback
 * TCP pair, TLS 1.3 TX keys installed on the sender (random keys: no
 * handshake needed to measure the record path), 16 KiB writes = 16 KiB
 * records, a reader thread on the other CPU discarding ciphertext.  The
 * same pair without keys gives the plain TCP cost, so kTLS minus TCP is the
 * kernel's crypto cost per byte.  Sender CPU includes its TCP stack and the
 * loopback delivery softirq it runs.  EVP rows: one thread sealing 16 KiB
 * records in memory (what userspace TLS pays for the crypto alone).
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bench.h"

#define REC 16384

static const struct cipher {
	const char *name;
	int probe;
	const char *evp;
} ciphers[] = {
	{ "AES-128-GCM", KTLS_PROBE_AES_128_GCM, "AES-128-GCM" },
	{ "AES-256-GCM", KTLS_PROBE_AES_256_GCM, "AES-256-GCM" },
	{ "ChaCha20-Poly1305", KTLS_PROBE_CHACHA20_POLY1305, "ChaCha20-Poly1305" },
};

static double run_secs(const struct bench *b)
{
	return b->quick ? 0.3 : (b->seconds < 2 ? b->seconds : 2);
}

static void evp_row(const struct bench *b, const struct cipher *c, struct row *r)
{
	EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, c->evp, NULL);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	static unsigned char in[REC], out[REC + 64];
	unsigned char key[32], iv[12], aad[5] = { 23, 3, 3, 0x40, 0x11 }, tag[16];
	double c0, c1, end;
	uint64_t bytes = 0;
	int len;

	RAND_bytes(key, sizeof(key));
	RAND_bytes(iv, sizeof(iv));
	if (!ci || !x || !EVP_EncryptInit_ex2(x, ci, key, iv, NULL)) {
		snprintf(r->error, sizeof(r->error), "EVP %s unavailable", c->evp);
		goto out;
	}
	c0 = thread_cpu_s();
	end = now_s() + run_secs(b);
	while (now_s() < end) {
		for (int i = 0; i < 64; i++) {
			iv[11]++; /* a fresh nonce per record, as TLS does */
			if (!EVP_EncryptInit_ex2(x, NULL, NULL, iv, NULL) ||
			    !EVP_EncryptUpdate(x, NULL, &len, aad, sizeof(aad)) ||
			    !EVP_EncryptUpdate(x, out, &len, in, REC) ||
			    !EVP_EncryptFinal_ex(x, out + len, &len) ||
			    !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag)) {
				snprintf(r->error, sizeof(r->error), "EVP %s encrypt failed", c->evp);
				goto out;
			}
			bytes += REC;
		}
	}
	c1 = thread_cpu_s();
	r->bytes = bytes;
	r->seconds = c1 - c0;
	r->server_cpu_s = c1 - c0;
	r->gbps = (double)bytes / r->seconds / 1e9;
	r->cpb = r->server_cpu_s * b->cpu_hz / (double)bytes;
out:
	EVP_CIPHER_CTX_free(x);
	EVP_CIPHER_free(ci);
}

/* ---- loopback pair ---------------------------------------------------- */

struct sink {
	int fd, cpu;
	uint64_t bytes;
};

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	static char buf[1 << 18];
	ssize_t n;

	pin_cpu(s->cpu);
	while ((n = read(s->fd, buf, sizeof(buf))) > 0)
		s->bytes += (uint64_t)n;
	return NULL;
}

static int tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	fds[0] = fds[1] = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		goto fail;
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fds[1] < 0)
		goto fail;
	close(l);
	return 0;
fail:
	if (l >= 0)
		close(l);
	if (fds[0] >= 0)
		close(fds[0]);
	return -1;
}

/* TLS 1.3 TX keys for one cipher on fd (random: nobody decrypts them). */
static int install_tx(int fd, int probe_cipher)
{
	union {
		struct tls12_crypto_info_aes_gcm_128 a128;
		struct tls12_crypto_info_aes_gcm_256 a256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} ci;
	socklen_t len;
	int rc;

	memset(&ci, 0, sizeof(ci));
	RAND_bytes((unsigned char *)&ci, sizeof(ci));
	switch (probe_cipher) {
	case KTLS_PROBE_AES_128_GCM:
		ci.a128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		len = sizeof(ci.a128);
		break;
	case KTLS_PROBE_AES_256_GCM:
		ci.a256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		len = sizeof(ci.a256);
		break;
	default:
		ci.cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		len = sizeof(ci.cc);
		break;
	}
	ci.a128.info.version = TLS_1_3_VERSION;
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		return -1;
	rc = setsockopt(fd, SOL_TLS, TLS_TX, &ci, len);
	memset(&ci, 0, sizeof(ci)); /* keys are keys, even random ones */
	return rc;
}

/* probe_cipher < 0: plain TCP. */
static void pair_row(const struct bench *b, int probe_cipher, struct row *r)
{
	static char buf[REC];
	struct sink s = { .cpu = b->client_cpu };
	int fds[2];
	pthread_t th;
	double c0, c1, w0, w1, end;
	uint64_t sent = 0;
	long long tx0 = tls_stat_tx(), tx1;

	if (tcp_pair(fds) < 0) {
		snprintf(r->error, sizeof(r->error), "loopback pair: %s", strerror(errno));
		return;
	}
	if (probe_cipher >= 0 && install_tx(fds[0], probe_cipher) < 0) {
		snprintf(r->error, sizeof(r->error), "installing kTLS TX: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	s.fd = fds[1];
	if (pthread_create(&th, NULL, sink_main, &s) != 0) {
		snprintf(r->error, sizeof(r->error), "thread: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	c0 = thread_cpu_s();
	w0 = now_s();
	end = w0 + run_secs(b);
	while (now_s() < end) {
		ssize_t n = write(fds[0], buf, sizeof(buf));

		if (n < 0) {
			snprintf(r->error, sizeof(r->error), "write: %s", strerror(errno));
			break;
		}
		sent += (uint64_t)n;
	}
	c1 = thread_cpu_s();
	w1 = now_s();
	shutdown(fds[0], SHUT_WR);
	pthread_join(th, NULL);
	tx1 = tls_stat_tx();
	close(fds[0]);
	close(fds[1]);
	r->bytes = sent;
	r->server_bytes = s.bytes; /* ciphertext: records carry 22 bytes of overhead each */
	r->seconds = w1 - w0;
	r->server_cpu_s = c1 - c0;
	r->ktls_tx = tx0 >= 0 && tx1 >= 0 ? tx1 - tx0 : -1;
	if (sent) {
		r->gbps = (double)sent / r->seconds / 1e9;
		r->cpb = r->server_cpu_s * b->cpu_hz / (double)sent;
	}
	if (!r->error[0] && s.bytes < sent)
		snprintf(r->error, sizeof(r->error), "receiver got %llu of %llu bytes",
			 (unsigned long long)s.bytes, (unsigned long long)sent);
	if (!r->error[0] && probe_cipher >= 0 && r->ktls_tx == 0)
		snprintf(r->error, sizeof(r->error), "TlsTxSw did not rise: kTLS not in use");
}

int bench_crypto(struct bench *b)
{
	cpu_set_t saved;
	int failed = 0, done = 0, total = 2 * 3 + 1;
	double t_start = now_s(), tcp_cpb = 0;
	int v13 = 1;

	sched_getaffinity(0, sizeof(saved), &saved);
	pin_cpu(b->server_cpu);
	for (size_t i = 0; i < 3; i++) {
		struct row *r = row_add(ROW_CRYPTO);
		char what[80];

		snprintf(r->config, sizeof(r->config), "openssl-evp");
		snprintf(r->cipher, sizeof(r->cipher), "%s", ciphers[i].name);
		r->size = REC;
		snprintf(what, sizeof(what), "crypto EVP %s", ciphers[i].name);
		progress(b, done++, total, what, t_start);
		evp_row(b, &ciphers[i], r);
		if (r->error[0])
			failed++;
	}
	{
		struct row *r = row_add(ROW_CRYPTO);

		snprintf(r->config, sizeof(r->config), "tcp-plain");
		snprintf(r->cipher, sizeof(r->cipher), "none");
		r->size = REC;
		progress(b, done++, total, "crypto loopback TCP, no TLS", t_start);
		pair_row(b, -1, r);
		if (r->error[0])
			failed++;
		else
			tcp_cpb = r->cpb;
	}
	for (size_t i = 0; i < 3; i++) {
		struct row *r = row_add(ROW_CRYPTO);
		const struct ktls_probe_result *tx = &b->probe.cipher[v13][ciphers[i].probe][0];
		char what[80];

		snprintf(r->config, sizeof(r->config), "ktls-sw");
		snprintf(r->cipher, sizeof(r->cipher), "%s", ciphers[i].name);
		snprintf(r->version, sizeof(r->version), "TLSv1.3");
		r->size = REC;
		if (!b->probe.ulp) {
			snprintf(r->skipped, sizeof(r->skipped), "%s", b->ktls_reason);
			continue;
		}
		if (!tx->ok) {
			snprintf(r->skipped, sizeof(r->skipped), "kernel refused TLS 1.3 %s TX: %s",
				 ciphers[i].name, strerror(tx->err));
			continue;
		}
		snprintf(what, sizeof(what), "crypto kTLS %s", ciphers[i].name);
		progress(b, done++, total, what, t_start);
		pair_row(b, ciphers[i].probe, r);
		if (r->error[0]) {
			failed++;
		} else if (tcp_cpb > 0) {
			snprintf(r->note, sizeof(r->note), "crypto alone ~%.2f c/B (kTLS minus plain TCP)",
				 r->cpb - tcp_cpb);
			r->ratio_base = r->cpb / tcp_cpb;
		}
	}
	sched_setaffinity(0, sizeof(saved), &saved);
	for (int i = 0; i < g_nrows; i++)
		if (g_rows[i].kind == ROW_CRYPTO && g_rows[i].error[0])
			fprintf(stderr, "ktls-bench: crypto %s %s FAILED: %s\n", g_rows[i].config,
				g_rows[i].cipher, g_rows[i].error);
	return failed ? -1 : 0;
}
