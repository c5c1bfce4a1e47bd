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
 * the device and the kernel's counters: the script serializes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "../common/testutil.h"

static void init(void)
{
	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");
}

/* Under TCG a 64 MiB download through the device takes 10-20 s. */
TestSuite(nic_offload, .init = init, .timeout = 600);

static void run_case(const char *name)
{
	static char out[65536];
	char cmd[512];
	int st;

	snprintf(cmd, sizeof(cmd), "python3 tests/guest/nic_offload.py %s 2>&1", name);
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
