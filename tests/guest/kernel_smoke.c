/*
 * kernel_smoke.c - the guest kernel really does kTLS, checked with raw
 * setsockopt calls and no libktls: if this suite fails, nothing built on
 * top of it can pass, and the reason is the rig or the kernel, not us.
 *
 * For TLS 1.2 and 1.3 x AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305: a
 * loopback TCP pair gets the "tls" ULP, TLS_TX on one end and TLS_RX with
 * the same fixed key material on the other; data must pass unchanged, the
 * bytes on the wire must be TLS records that do not contain the plaintext,
 * a receiver with the wrong key must refuse the record, and
 * /proc/net/tls_stat must count the software TX and RX sockets.
 *
 * Guest only (KTLS_TEST_EXPECT_KTLS=1, see tests/vm/README.md).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/tls.h>

#include <criterion/criterion.h>

#include "../common/testutil.h"

/* Large enough for any of the three crypto_info structures. */
union crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

struct suite_case {
	unsigned short version;
	unsigned short cipher;
	const char *name;
};

static void guest_only(void)
{
	if (!tu_expect_ktls())
		cr_assert_fail("kernel_smoke runs only in the rig's guest "
			 "(tests/vm/run, KTLS_TEST_EXPECT_KTLS=1)");
}

/* Fixed key material; seed varies it so a "wrong key" really differs. */
static socklen_t make_info(union crypto_info *ci, unsigned short version,
			   unsigned short cipher, unsigned seed)
{
	memset(ci, 0, sizeof(*ci));
	ci->info.version = version;
	ci->info.cipher_type = cipher;
	switch (cipher) {
	case TLS_CIPHER_AES_GCM_128:
		tu_fill(ci->gcm128.key, sizeof(ci->gcm128.key), seed);
		tu_fill(ci->gcm128.iv, sizeof(ci->gcm128.iv), seed + 1);
		tu_fill(ci->gcm128.salt, sizeof(ci->gcm128.salt), seed + 2);
		return sizeof(ci->gcm128);
	case TLS_CIPHER_AES_GCM_256:
		tu_fill(ci->gcm256.key, sizeof(ci->gcm256.key), seed);
		tu_fill(ci->gcm256.iv, sizeof(ci->gcm256.iv), seed + 1);
		tu_fill(ci->gcm256.salt, sizeof(ci->gcm256.salt), seed + 2);
		return sizeof(ci->gcm256);
	case TLS_CIPHER_CHACHA20_POLY1305:
		tu_fill(ci->chacha.key, sizeof(ci->chacha.key), seed);
		tu_fill(ci->chacha.iv, sizeof(ci->chacha.iv), seed + 1);
		return sizeof(ci->chacha);
	}
	cr_assert_fail("unknown cipher %u", cipher);
	return 0;
}

/* Install one direction; fails the test with the errno otherwise. */
static void install(int fd, int dir, const union crypto_info *ci, socklen_t len,
		    const char *what)
{
	union crypto_info back;
	socklen_t blen = len;	/* the kernel wants the exact size back */

	cr_assert_eq(setsockopt(fd, SOL_TLS, dir, ci, len), 0,
		     "%s: setsockopt(SOL_TLS, %s): %s", what,
		     dir == TLS_TX ? "TLS_TX" : "TLS_RX", strerror(errno));
	/* The kernel reports back what it installed. */
	cr_assert_eq(getsockopt(fd, SOL_TLS, dir, &back, &blen), 0,
		     "%s: getsockopt(SOL_TLS): %s", what, strerror(errno));
	cr_assert_eq(back.info.cipher_type, ci->info.cipher_type, "%s", what);
	cr_assert_eq(back.info.version, ci->info.version, "%s", what);
}

static void ulp(int fd)
{
	cr_assert_eq(setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")), 0,
		     "setsockopt(TCP_ULP, \"tls\"): %s", strerror(errno));
}

/* Expected size of the record carrying n plaintext bytes. */
static size_t record_len(const struct suite_case *c, size_t n)
{
	size_t explicit_iv = 0, inner_type = 0;

	if (c->version == TLS_1_3_VERSION)
		inner_type = 1;	/* TLSInnerPlaintext content type */
	else if (c->cipher != TLS_CIPHER_CHACHA20_POLY1305)
		explicit_iv = 8;	/* TLS 1.2 AES-GCM nonce_explicit */
	return 5 + explicit_iv + n + inner_type + 16;
}

static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1;
}

static void roundtrip(const struct suite_case *c)
{
	union crypto_info ci;
	socklen_t len;
	int fds[2];
	long long tx0, rx0;
	static unsigned char out[1 << 16], in[sizeof(out)];
	size_t off;

	guest_only();
	tx0 = tu_tls_stat("TlsTxSw");
	rx0 = tu_tls_stat("TlsRxSw");
	cr_assert(tx0 >= 0 && rx0 >= 0, "/proc/net/tls_stat lacks TlsTxSw/TlsRxSw");

	cr_assert_eq(tu_tcp_pair(fds), 0, "loopback pair: %s", strerror(errno));
	ulp(fds[0]);
	ulp(fds[1]);
	len = make_info(&ci, c->version, c->cipher, 1000);
	install(fds[0], TLS_TX, &ci, len, c->name);
	install(fds[1], TLS_RX, &ci, len, c->name);

	/* Odd sizes: a small record, full 16 KiB records and a partial tail. */
	tu_fill(out, sizeof(out), 7);
	for (off = 0; off < sizeof(out);) {
		size_t n = off == 0 ? 1 : 20000;

		if (n > sizeof(out) - off)
			n = sizeof(out) - off;
		cr_assert_eq(tu_write_full(fds[0], out + off, n), 0,
			     "%s: write %zu: %s", c->name, n, strerror(errno));
		cr_assert_eq(tu_read_full(fds[1], in + off, n), 0,
			     "%s: read %zu: %s", c->name, n, strerror(errno));
		off += n;
	}
	cr_assert_eq(memcmp(in, out, sizeof(out)), 0, "%s: data differs", c->name);

	cr_assert_geq(tu_tls_stat("TlsTxSw"), tx0 + 1, "%s: TlsTxSw did not rise", c->name);
	cr_assert_geq(tu_tls_stat("TlsRxSw"), rx0 + 1, "%s: TlsRxSw did not rise", c->name);
	close(fds[0]);
	close(fds[1]);
}

/* TX encrypts for real: the plain receiver sees one well-formed record. */
static void on_the_wire(const struct suite_case *c)
{
	union crypto_info ci;
	socklen_t len;
	int fds[2];
	const char msg[] = "kTLS smoke plaintext that must not appear on the wire";
	unsigned char rec[256];
	size_t want = record_len(c, sizeof(msg));

	guest_only();
	cr_assert_eq(tu_tcp_pair(fds), 0);
	ulp(fds[0]);
	len = make_info(&ci, c->version, c->cipher, 2000);
	install(fds[0], TLS_TX, &ci, len, c->name);
	cr_assert_eq(tu_write_full(fds[0], msg, sizeof(msg)), 0);
	cr_assert_eq(tu_read_full(fds[1], rec, want), 0, "%s: short record", c->name);
	cr_assert_eq(rec[0], 23, "%s: record type %u, want application_data", c->name, rec[0]);
	cr_assert(rec[1] == 3 && rec[2] == 3, "%s: record version %02x%02x", c->name,
		  rec[1], rec[2]);
	cr_assert_eq((size_t)(rec[3] << 8 | rec[4]), want - 5, "%s: record length", c->name);
	cr_assert_null(memmem(rec, want, "plaintext", 9), "%s: plaintext on the wire", c->name);
	cr_assert(!readable(fds[1], 50), "%s: more than one record", c->name);
	close(fds[0]);
	close(fds[1]);
}

/* RX authenticates: a record under another key is refused with EBADMSG. */
static void wrong_key(const struct suite_case *c)
{
	union crypto_info ci;
	socklen_t len;
	int fds[2];
	char buf[64];
	ssize_t n;

	guest_only();
	cr_assert_eq(tu_tcp_pair(fds), 0);
	ulp(fds[0]);
	ulp(fds[1]);
	len = make_info(&ci, c->version, c->cipher, 3000);
	install(fds[0], TLS_TX, &ci, len, c->name);
	len = make_info(&ci, c->version, c->cipher, 4000);
	install(fds[1], TLS_RX, &ci, len, c->name);
	cr_assert_eq(tu_write_full(fds[0], "secret", 6), 0);
	n = read(fds[1], buf, sizeof(buf));
	cr_assert_eq(n, -1, "%s: read %zd bytes under the wrong key", c->name, n);
	cr_assert_eq(errno, EBADMSG, "%s: errno %s, want EBADMSG", c->name, strerror(errno));
	close(fds[0]);
	close(fds[1]);
}

Test(kernel_smoke, tls_ulp_registered)
{
	char buf[256] = "", *tok, *save = NULL;
	int found = 0;
	FILE *f;

	guest_only();
	f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	cr_assert_not_null(f, "tcp_available_ulp: %s", strerror(errno));
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	cr_log_info("tcp_available_ulp: %s", buf);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		found |= strcmp(tok, "tls") == 0;
	cr_assert(found, "tcp_available_ulp has no tls");
	cr_assert_geq(tu_tls_stat("TlsCurrTxSw"), 0, "/proc/net/tls_stat missing");
}

#define CASE(ver, cipher, tag)                                                  \
	static const struct suite_case c_##tag = { ver, cipher, #tag };         \
	Test(kernel_smoke, tag##_roundtrip) { roundtrip(&c_##tag); }            \
	Test(kernel_smoke, tag##_on_the_wire) { on_the_wire(&c_##tag); }       \
	Test(kernel_smoke, tag##_wrong_key) { wrong_key(&c_##tag); }

CASE(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128, tls12_aes128gcm)
CASE(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_256, tls12_aes256gcm)
CASE(TLS_1_2_VERSION, TLS_CIPHER_CHACHA20_POLY1305, tls12_chacha20poly1305)
CASE(TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, tls13_aes128gcm)
CASE(TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256, tls13_aes256gcm)
CASE(TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305, tls13_chacha20poly1305)
