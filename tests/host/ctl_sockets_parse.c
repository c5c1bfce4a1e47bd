/*
 * ctl_sockets_parse.c - sock_diag parsing against stored replies: a real dump
 * from the host (no socket has the tls ULP) and a hand-built reply for a
 * kTLS socket with TX on the NIC (uapi inet_diag.h / tls.h layout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <linux/netlink.h>
#include <linux/tls.h>
#include <sys/socket.h>

#include "netlink.h"

static unsigned char *load(const char *name, size_t *len)
{
	const char *dir = getenv("KTLS_TEST_FIXTURES");
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/fixtures/netlink", name);
	FILE *fp = fopen(path, "rb");
	cr_assert_not_null(fp, "fixture %s missing", path);
	unsigned char *buf = malloc(1 << 16);
	*len = fread(buf, 1, 1 << 16, fp);
	fclose(fp);
	cr_assert_gt(*len, 0);
	return buf;
}

Test(sockets_parse, real_host_dump_has_no_tls_sockets)
{
	size_t len, n = 0;
	unsigned char *buf = load("host-sock-diag.bin", &len);
	char err[256];

	for (size_t off = 0; off + NLMSG_HDRLEN <= len; n++) {
		const struct nlmsghdr *h = (const void *)(buf + off);
		struct ktls_sock s;
		cr_assert_leq(off + h->nlmsg_len, len);
		cr_assert_eq(diag_parse(h, &s, err, sizeof(err)), 0, "message %zu: %s", n, err);
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	cr_assert_gt(n, 0u);
	free(buf);
}

Test(sockets_parse, hand_built_ktls_socket_with_nic_tx)
{
	size_t len;
	unsigned char *buf = load("hand-sock-diag-tls.bin", &len);
	struct ktls_sock s;
	char err[256];

	cr_assert_eq(diag_parse((void *)buf, &s, err, sizeof(err)), 1, "%s", err);
	cr_expect_eq(s.family, AF_INET);
	cr_expect_str_eq(s.local, "10.0.0.1:443");
	cr_expect_str_eq(s.peer, "10.0.0.2:50000");
	cr_expect_eq(s.lport, 443);
	cr_expect_eq(s.rport, 50000);
	cr_expect_str_eq(ktls_tcp_state_name(s.state), "ESTAB");
	cr_expect_eq(s.uid, 1000u);
	cr_expect_eq(s.inode, 424242u);
	/* The words ss -tni prints for the same attributes. */
	cr_expect_str_eq(ktls_sock_version_name(s.version), "1.3");
	cr_expect_str_eq(ktls_sock_cipher_name(s.cipher), "aes-gcm-256");
	cr_expect_str_eq(ktls_sock_conf_name(s.txconf), "hw");
	cr_expect_str_eq(ktls_sock_conf_name(s.rxconf), "sw");
	cr_expect(s.zc_ro_tx);
	cr_expect(s.rx_no_pad);
	free(buf);
}

Test(sockets_parse, every_cut_is_refused_or_a_clean_prefix)
{
	size_t len;
	unsigned char *buf = load("hand-sock-diag-tls.bin", &len);
	const struct nlmsghdr *h = (const void *)buf;
	unsigned char *copy = malloc(h->nlmsg_len);
	char err[256];
	int refused = 0;

	for (size_t cut = NLMSG_HDRLEN; cut < h->nlmsg_len; cut++) {
		struct ktls_sock s;
		memcpy(copy, h, cut);
		((struct nlmsghdr *)copy)->nlmsg_len = (unsigned)cut;
		int r = diag_parse((void *)copy, &s, err, sizeof(err));
		/* The ULP nest is the only attribute: a cut right after the
		 * fixed header is a socket without ULP info; any other cut loses
		 * part of the header or lands inside the nest. */
		if (cut == NLMSG_HDRLEN + 72) {
			cr_assert_eq(r, 0, "bare inet_diag_msg: %s", err);
			continue;
		}
		cr_assert_eq(r, -1, "cut at %zu of %u parsed (%d)", cut, h->nlmsg_len, r);
		refused++;
	}
	cr_assert_gt(refused, 50);
	free(copy);
	free(buf);
}

Test(sockets_parse, wrong_types_and_lengths_are_refused)
{
	size_t len;
	unsigned char *buf = load("hand-sock-diag-tls.bin", &len);
	struct nlmsghdr *h = (void *)buf;
	struct ktls_sock s;
	char err[256];

	h->nlmsg_type = 16; /* not SOCK_DIAG_BY_FAMILY */
	cr_expect_eq(diag_parse(h, &s, err, sizeof(err)), -1);
	cr_expect(strstr(err, "type"), "%s", err);
	h->nlmsg_type = 20;
	/* TLS_INFO_VERSION squeezed to 1 byte: the u16 policy must refuse. */
	unsigned char *p = buf + NLMSG_HDRLEN + 72;  /* ULP nest */
	unsigned char *q = memmem(p, len - (size_t)(p - buf), "\x06\x00\x01\x00\x04\x03", 6);
	cr_assert_not_null(q, "TLS_INFO_VERSION not found in fixture");
	q[0] = 5;
	cr_expect_eq(diag_parse(h, &s, err, sizeof(err)), -1);
	free(buf);
}

Test(sockets_parse, names_match_ss)
{
	cr_expect_str_eq(ktls_sock_conf_name(TLS_CONF_BASE), "base");
	cr_expect_str_eq(ktls_sock_conf_name(TLS_CONF_SW), "sw");
	cr_expect_str_eq(ktls_sock_conf_name(TLS_CONF_HW_RECORD), "hw-record");
	cr_expect_str_eq(ktls_sock_cipher_name(TLS_CIPHER_AES_GCM_128), "aes-gcm-128");
	cr_expect_str_eq(ktls_sock_cipher_name(TLS_CIPHER_CHACHA20_POLY1305), "chacha20-poly1305");
	cr_expect_str_eq(ktls_sock_version_name(TLS_1_2_VERSION), "1.2");
	cr_expect_str_eq(ktls_sock_version_name(0), "-");
	cr_expect_str_eq(ktls_sock_conf_name(99), "unknown");
}

/*
 * Captured in the rig's 6.12 and 7.3 guests by capture.py ktls: a TLS 1.3
 * AES-GCM-256 pair with keys both ways, and a pair where one end has only
 * the ULP (no keys yet).
 */
static void guest_ktls_reply(const char *fixture)
{
	size_t len, tls = 0, base = 0, plain = 0;
	unsigned char *buf = load(fixture, &len);
	char err[256];

	for (size_t off = 0; off + NLMSG_HDRLEN <= len;) {
		const struct nlmsghdr *h = (const void *)(buf + off);
		struct ktls_sock s;
		int r = diag_parse(h, &s, err, sizeof(err));
		cr_assert_geq(r, 0, "%s", err);
		off += NLMSG_ALIGN(h->nlmsg_len);
		if (r == 0) {
			plain++;
			continue;
		}
		cr_expect_str_eq(ktls_tcp_state_name(s.state), "ESTAB");
		cr_expect(!strncmp(s.local, "127.0.0.1:", 10), "%s", s.local);
		if (s.txconf == TLS_CONF_BASE) {
			base++;
			cr_expect_eq(s.rxconf, TLS_CONF_BASE);
			cr_expect_str_eq(ktls_sock_version_name(s.version), "-");
			continue;
		}
		tls++;
		cr_expect_str_eq(ktls_sock_version_name(s.version), "1.3");
		cr_expect_str_eq(ktls_sock_cipher_name(s.cipher), "aes-gcm-256");
		cr_expect_str_eq(ktls_sock_conf_name(s.txconf), "sw");
		cr_expect_str_eq(ktls_sock_conf_name(s.rxconf), "sw");
		cr_expect(!s.zc_ro_tx && !s.rx_no_pad);
	}
	cr_expect_eq(tls, 2u);
	cr_expect_eq(base, 1u);
	cr_expect_eq(plain, 1u);
	free(buf);
}

Test(sockets_parse, real_guest_ktls_reply)
{
	guest_ktls_reply("guest612-sock-diag-ktls.bin");
	guest_ktls_reply("guest73-sock-diag-ktls.bin");
}
