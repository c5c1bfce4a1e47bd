/*
 * probe_guest.c - ktls_probe(), `ktlsctl probe` and `ktlsctl demo` inside
 * the rig's guest kernels (KTLS_TEST_EXPECT_KTLS=1, KTLS_VM_KERNEL=6.1,
 * 6.12 or latest).  These are the checks behind kernel-notes/README.md's
 * feature table: every cipher x version x direction installs; zero-copy TX
 * (5.19) and RX no-pad (6.0) are accepted everywhere we boot; rekey (6.14)
 * is refused with EBUSY before 6.14 and accepted after; the "handshake"
 * genl family (net/handshake, 6.5) is absent on 6.1 and present after.
 * Expectations come from `uname -r`, cross-checked against the selector.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <criterion/criterion.h>

#include "../common/testutil.h"
#include "ktls.h"

static int kmaj, kmin;

static void kernel_version(void)
{
	struct utsname u;
	const char *sel = getenv("KTLS_VM_KERNEL");

	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");
	cr_assert_eq(uname(&u), 0);
	cr_assert_eq(sscanf(u.release, "%d.%d", &kmaj, &kmin), 2, "uname -r: %s", u.release);
	if (!sel || !*sel)
		return;
	if (!strcmp(sel, "latest"))
		cr_assert(kmaj > 6 || (kmaj == 6 && kmin >= 14),
			  "KTLS_VM_KERNEL=latest booted %s, older than 6.14", u.release);
	else
		cr_assert(!strncmp(u.release, sel, strlen(sel)) && u.release[strlen(sel)] == '.',
			  "KTLS_VM_KERNEL=%s booted %s", sel, u.release);
}

static int at_least(int maj, int min)
{
	return kmaj > maj || (kmaj == maj && kmin >= min);
}

TestSuite(probe_guest, .init = kernel_version);

Test(probe_guest, every_cipher_version_direction)
{
	struct ktls_probe p;
	long long tx0 = tu_tls_stat("TlsTxSw"), rx0 = tu_tls_stat("TlsRxSw");

	cr_assert_eq(ktls_probe(&p), 0);
	cr_assert_eq(p.ulp, 1, "tls ULP: %s", p.ulp_reason);
	cr_expect_str_empty(p.ulp_reason);
	for (int v = 0; v < 2; v++)
		for (int c = 0; c < KTLS_PROBE_NCIPHERS; c++)
			for (int d = 0; d < 2; d++)
				cr_expect(p.cipher[v][c][d].ok, "TLS1.%d %s %s: %s", 2 + v,
					  ktls_probe_cipher_name(c), d ? "RX" : "TX",
					  strerror(p.cipher[v][c][d].err));
	/* The installs were real: the kernel counted them (/proc/net/tls_stat,
	 * software crypto since virtio-net has no TLS offload). */
	cr_assert_eq(p.tls_stat, 1);
	cr_assert_geq(tx0, 0);
	cr_expect_geq(tu_tls_stat("TlsTxSw") - tx0, 6, "TlsTxSw %lld -> %lld", tx0,
		      tu_tls_stat("TlsTxSw"));
	cr_expect_geq(tu_tls_stat("TlsRxSw") - rx0, 6, "TlsRxSw %lld -> %lld", rx0,
		      tu_tls_stat("TlsRxSw"));
}

Test(probe_guest, options_by_kernel_version)
{
	struct ktls_probe p;

	ktls_probe(&p);
	cr_assert(at_least(5, 19), "the rig boots only >= 6.1");
	cr_expect(p.zerocopy_tx.ok, "TLS_TX_ZEROCOPY_RO (5.19): %s", strerror(p.zerocopy_tx.err));
	cr_expect(p.rx_no_pad.ok, "TLS_RX_EXPECT_NO_PAD (6.0): %s", strerror(p.rx_no_pad.err));
	if (at_least(6, 14)) {
		cr_expect(p.rekey.ok, "rekey on %d.%d: %s", kmaj, kmin, strerror(p.rekey.err));
	} else {
		cr_expect_eq(p.rekey.ok, 0, "rekey accepted on %d.%d (< 6.14)", kmaj, kmin);
		cr_expect_eq(p.rekey.err, EBUSY, "rekey on %d.%d: %s, want EBUSY", kmaj, kmin,
			     strerror(p.rekey.err));
	}
}

Test(probe_guest, handshake_family)
{
	struct ktls_probe p;

	ktls_probe(&p);
	/* Debian's 6.1 has no CONFIG_NET_HANDSHAKE; 6.12 and newer have it. */
	if (at_least(6, 12))
		cr_expect_eq(p.handshake_family, 1, "no genl family \"handshake\" on %d.%d", kmaj, kmin);
	else
		cr_expect_eq(p.handshake_family, 0, "genl family \"handshake\" on %d.%d", kmaj, kmin);
}

Test(probe_guest, io_uring)
{
	struct ktls_probe p;

	ktls_probe(&p);
	cr_expect_eq(p.io_uring, 1, "%s", p.io_uring_reason);
	cr_expect(p.uring_splice && p.uring_sendmsg && p.uring_recvmsg);
	cr_expect_eq(p.uring_recvmsg_multishot, 1, "multishot RECVMSG on %d.%d (>= 6.0)", kmaj, kmin);
}

/* Value of "key: " in ktlsctl's output, copied into v. */
static int field(const char *out, const char *key, char *v, size_t vlen)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\n%s: ", key);
	p = strstr(out, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	snprintf(v, vlen, "%.*s", (int)strcspn(p, "\n"), p);
	return 0;
}

Test(probe_guest, ktlsctl_probe_says_yes)
{
	char cmd[512], buf[16384], *save = NULL;
	int lines = 0, ulp_listed = 0;

	snprintf(cmd, sizeof(cmd), "'%s' probe", tu_build("ktlsctl"));
	cr_assert_eq(tu_run(cmd, buf, sizeof(buf)), 0);
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *v = strstr(l, ": ");

		cr_assert(v, "not a key: value line: %s", l);
		*v = '\0';
		v += 2;
		lines++;
		if (!strcmp(l, "kernel"))
			continue;
		if (!strcmp(l, "tcp_available_ulp"))
			ulp_listed = strstr(v, "tls") != NULL;
		else if (!strcmp(l, "rekey") && !at_least(6, 14))
			cr_expect_str_eq(v, "no (EBUSY: Device or resource busy)");
		else if (!strcmp(l, "nic_tls_offload"))
			cr_expect_str_eq(v, "none", "lo and virtio-net have no TLS offload");
		else if (!strcmp(l, "handshake_family") && !at_least(6, 12))
			cr_expect(!strncmp(v, "no (", 4), "%s: %s", l, v);
		else
			cr_expect_str_eq(v, "yes", "%s: %s", l, v);
	}
	cr_expect_eq(lines, 26);
	cr_expect(ulp_listed, "tcp_available_ulp does not list tls");
}

/* `ktlsctl demo` offloads both ends in software and the hashes match. */
static void demo(const char *args, const char *version)
{
	static char out[8192 + 2];
	char cmd[512], v[256], h[256], buf[8192];
	long long tx0 = tu_tls_stat("TlsTxSw"), rx0 = tu_tls_stat("TlsRxSw");

	snprintf(cmd, sizeof(cmd), "'%s' demo %s", tu_build("ktlsctl"), args);
	cr_assert_eq(tu_run(cmd, buf, sizeof(buf)), 0, "ktlsctl demo %s failed:\n%s", args, buf);
	snprintf(out, sizeof(out), "\n%s", buf);
	cr_assert_eq(field(out, "version", v, sizeof(v)), 0, "%s", out);
	cr_expect_str_eq(v, version);
	for (int i = 0; i < 4; i++) {
		static const char *const k[4] = { "client_tx", "client_rx", "server_tx", "server_rx" };

		cr_assert_eq(field(out, k[i], v, sizeof(v)), 0, "%s", out);
		cr_expect_str_eq(v, "sw", "%s: %s", k[i], v);
	}
	cr_assert_eq(field(out, "client_fallback", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "none");
	cr_assert_eq(field(out, "server_fallback", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "none");
	cr_assert_eq(field(out, "sha256_sent", v, sizeof(v)), 0, "%s", out);
	cr_assert_eq(field(out, "sha256_received", h, sizeof(h)), 0);
	cr_expect_eq(strlen(v), 64);
	cr_expect_str_eq(v, h);
	cr_assert_eq(field(out, "result", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "ok");
	/* Both ends really went through kTLS. */
	cr_expect_geq(tu_tls_stat("TlsTxSw") - tx0, 2);
	cr_expect_geq(tu_tls_stat("TlsRxSw") - rx0, 2);
}

Test(probe_guest, demo_tls13_sw_both_ways, .timeout = 120)
{
	demo("", "TLSv1.3");
}

Test(probe_guest, demo_tls12_sw_both_ways, .timeout = 120)
{
	demo("--tls1.2", "TLSv1.2");
}
