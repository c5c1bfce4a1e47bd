/*
 * nic_offload.c - the SmartNIC path end to end on the rig's test NIC
 * (tests/vm/nicsim: ktsim0 offloads TLS TX, its peer ktsim1 sits in
 * namespace "peer").  tests/vm/suite boots a second guest with
 * KTLS_VM_NICSIM=1 for the nic_* suites; without the device every test
 * here fails, by name.
 *
 * Each test is one case of nic_offload.py, which drives ktlsd, Python ssl
 * and curl clients, ktlsctl, ss, tc and /proc/net/tls_stat, and prints
 * every check it made; on failure its output is shown.  The cases share
 * the device and the kernel's counters: the script serializes them, and
 * the library-level test here takes the same lock.
 *
 * That one, ktls_info_through_the_device, is libktls itself against a plain
 * OpenSSL peer (offload_peer.h) across the device, in both roles and all
 * six suites: what ktls_conn_info says, and the data echoed intact.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "../common/offload_peer.h"
#include "../common/testutil.h"

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");
}

/* Under TCG a 64 MiB download through the device takes 10-20 s. */
TestSuite(nic_offload, .init = init, .timeout = 600);

static void run_case(const char *name)
{
	static char out[65536];
	char cmd[512];
	int st;

	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/guest/nic_offload.py %s 2>&1", name);
	st = tu_run(cmd, out, sizeof(out));
	cr_log_info("nic_offload.py %s:\n%s", name, out);
	cr_assert_eq(st, 0, "nic_offload.py %s failed (exit %d):\n%s", name, st, out);
	cr_assert(strstr(out, "ok: "), "nic_offload.py %s checked nothing:\n%s", name, out);
}

/* 0 B to 64 MiB by Python ssl and curl: tx=hw everywhere it is visible. */
Test(nic_offload, download_on_the_device)
{
	run_case("download");
}

/* ktlsctl sockets says hw for TX, and agrees with ss -tni. */
Test(nic_offload, sockets_show_hw)
{
	run_case("sockets");
}

/* tx off: the next connection is sw, the open one keeps going; tx on: hw. */
Test(nic_offload, feature_toggle)
{
	run_case("toggle");
}

/* TLS 1.3, ChaCha20 and a cipher the device declines: kernel SW, with why. */
Test(nic_offload, refused_lands_on_kernel_sw)
{
	run_case("refused");
}

/* TLS_TX_ZEROCOPY_RO in effect on the device (sock_diag), data intact. */
Test(nic_offload, zerocopy_sendfile)
{
	run_case("zerocopy");
}

/* The device goes down mid-transfer: the kernel moves TX to software. */
Test(nic_offload, device_down_mid_transfer)
{
	run_case("device_down");
}

/* 1% loss both ways: retransmitted records are encrypted again, correctly. */
Test(nic_offload, retransmissions_under_loss)
{
	run_case("loss");
}

/* ktls-bench's ktlsd-nic row: measured, TLS 1.2 on the device, no copies. */
Test(nic_offload, bench_row)
{
	run_case("bench");
}

/* ---- libktls across the device --------------------------------------------------- */

/* A TCP socket created in network namespace "peer" (this thread returns). */
static int socket_in_peer(void)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int peer = open("/run/netns/peer", O_RDONLY | O_CLOEXEC), fd;

	cr_assert(self >= 0 && peer >= 0, "no namespace peer: booted without KTLS_VM_NICSIM=1?");
	cr_assert_eq(setns(peer, CLONE_NEWNET), 0, "setns peer");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(setns(self, CLONE_NEWNET), 0, "setns back");
	close(self);
	close(peer);
	cr_assert_geq(fd, 0);
	return fd;
}

/*
 * A connected pair across the test NIC: fds[0] ours in this namespace,
 * fds[1] the peer's in "peer".  Our side is on ktsim0 either way: as the
 * server on 10.77.0.1, or as the client connecting to 10.77.0.2.
 */
static void device_pair(int role, int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int l = role == KTLS_SERVER ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : socket_in_peer();
	int c = role == KTLS_SERVER ? socket_in_peer() : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, role == KTLS_SERVER ? "10.77.0.1" : "10.77.0.2", &a.sin_addr);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0, "bind");
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0, "connect across the device");
	int acc = accept(l, NULL, NULL);
	cr_assert_geq(acc, 0);
	close(l);
	fds[0] = role == KTLS_SERVER ? acc : c;
	fds[1] = role == KTLS_SERVER ? c : acc;
}

/* Where the kernel puts TX for this suite on the test NIC, and the reason. */
static int expected_tx(const struct suite *s, const char **why)
{
	if (s->version == KTLS_TLS1_3) {
		*why = "ktsim0 has tls-hw-tx-offload on, but the kernel hands devices TLS 1.2 only";
		return KTLS_MODE_SW;
	}
	if (s->tls_cipher == 54 /* TLS_CIPHER_CHACHA20_POLY1305 */) {
		*why = "ktsim0 has tls-hw-tx-offload on, but the kernel hands devices AES-GCM only";
		return KTLS_MODE_SW;
	}
	if (s->tls_cipher == 52 /* TLS_CIPHER_AES_GCM_256: the device's aes256=0 */) {
		*why = "ktsim0 has tls-hw-tx-offload on but declined this TLS 1.2 AES-256-GCM context";
		return KTLS_MODE_SW;
	}
	*why = NULL;
	return KTLS_MODE_HW;
}

Test(nic_offload, ktls_info_through_the_device)
{
	int lock = open("/run/ktls-nic.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	cr_assert(lock >= 0 && flock(lock, LOCK_EX) == 0, "the suite's lock");
	for (int role = KTLS_CLIENT; role <= KTLS_SERVER; role++) {
		for (int i = 0; i < 6; i++) {
			const struct suite *s = &suites[i];
			const char *why;
			int want = expected_tx(s, &why);
			struct run r;

			run_start(&r, role, s, NULL);
			close(r.fds[0]);
			close(r.fds[1]);
			device_pair(role, r.fds);
			r.peer.fd = r.fds[1];
			run_go(&r, role, NULL);
			cr_expect_eq(r.info.tx, want, "%s %s: tx %d, want %d (%s)",
				     role == KTLS_SERVER ? "server" : "client", s->name, r.info.tx, want,
				     r.info.hw_fallback_reason ? r.info.hw_fallback_reason : "no reason");
			cr_expect_eq(r.info.rx, KTLS_MODE_SW, "%s: the device offers no RX", s->name);
			if (why)
				cr_expect(r.info.hw_fallback_reason &&
						  strstr(r.info.hw_fallback_reason, why),
					  "%s: reason '%s', want '%s'", s->name,
					  r.info.hw_fallback_reason, why);
			else
				cr_expect_null(r.info.hw_fallback_reason, "%s: %s", s->name,
					       r.info.hw_fallback_reason);
			run_finish(&r);
		}
	}
	close(lock);
}
