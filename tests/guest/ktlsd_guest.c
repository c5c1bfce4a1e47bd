/*
 * ktlsd_guest.c - the ktlsd end-to-end suite (tests/host/ktlsd_serve.c)
 * inside the kTLS guest, where each connection's log line must say
 * tx=sw rx=sw, plus what only a kTLS kernel can show: /proc/net/tls_stat
 * counting one TX and one RX offload per connection, and the server's
 * user CPU time for a large file a small fraction of the fallback's.
 */
#define KTLSD_GUEST 1
#include "../host/ktlsd_serve.c"

/* Python under TCG emulation: a smaller pipelining burst (the host runs 10 000). */
__attribute__((constructor)) static void guest_env(void)
{
	setenv("KTLSD_PIPELINE_N", "1000", 0);
	/*
	 * Under TCG one 16 KiB GET takes 40-80 ms with or without the fix, so
	 * the guest only bounds gross stalls; the host run (20 ms, a delayed-ACK
	 * stall is >= 40 ms) is the check that tells TCP_NODELAY apart.
	 */
	setenv("KTLSD_NODELAY_MS", "500", 0);
}

/* --metrics in the guest: connections are tx=sw rx=sw and tls_stat is exported. */
Test(ktlsd_ops, metrics_guest_offload_and_tls_stat, .init = setup, .fini = stop, .timeout = 300)
{
	char extra[64], mp[16], cmd[400], o[65536];
	int mport = tu_free_port();

	cr_assert(tu_expect_ktls(), "guest suite: KTLS_TEST_EXPECT_KTLS=1 expected");
	snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", mport);
	snprintf(mp, sizeof(mp), "%d", mport);
	start_args(extra);
	setenv("KTLSD_METRICS_PORT", mp, 1);
	py("metrics"); /* asserts sw/sw connections and TlsTxSw moving */
	/* and with a second client: curl reads the exposition as is */
	snprintf(cmd, sizeof(cmd), "curl -sS --fail http://127.0.0.1:%d/metrics", mport);
	cr_assert_eq(tu_run(cmd, o, sizeof(o)), 0, "%s", cmd);
	cr_expect(strstr(o, "ktls_kernel_tls_stat{counter=\"TlsCurrTxSw\"}"), "%s", o);
	cr_expect(strstr(o, "ktls_connections_total{tx=\"sw\",rx=\"sw\"} "), "%s", o);
	cr_expect(!strstr(o, "ktls_connections_total{tx=\"sw\",rx=\"sw\"} 0\n"), "%s", o);
}

static long long utime_ticks(pid_t pid)
{
	char p[64], buf[1024], *s;
	long long v = -1;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (s = strrchr(buf, ')'))) {
		/* fields after ")": state(3) ... utime is field 14 */
		int field = 2;

		for (char *t = strtok(s + 1, " "); t; t = strtok(NULL, " "))
			if (++field == 14) {
				v = atoll(t);
				break;
			}
	}
	fclose(f);
	return v;
}

Test(ktlsd, tls_stat_per_connection)
{
	long long tx0 = tu_tls_stat("TlsTxSw"), rx0 = tu_tls_stat("TlsRxSw");
	long long bad0 = tu_tls_stat("TlsDecryptError");
	char cmd[1200], o[256];

	cr_assert(tu_expect_ktls(), "guest suite: KTLS_TEST_EXPECT_KTLS=1 expected");
	cr_assert_geq(tx0, 0, "/proc/net/tls_stat missing");
	for (int i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "curl -sS --fail --cacert %s -o /dev/null https://localhost:%d/m1.bin",
			 certs_ca(), S.port);
		cr_assert_eq(tu_run(cmd, o, sizeof(o)), 0, "%s", cmd);
	}
	/* curl never offloads, so each fetch is one ktlsd TX+RX; suites running
	 * in parallel may add their own, hence "at least" */
	cr_expect_geq(tu_tls_stat("TlsTxSw") - tx0, 3, "TX offloads");
	cr_expect_geq(tu_tls_stat("TlsRxSw") - rx0, 3, "RX offloads");
	/* A delta: earlier suites in the same guest tamper with records on purpose. */
	cr_expect_eq(tu_tls_stat("TlsDecryptError") - bad0, 0, "records failed to decrypt");
}

static double serve_cpu(const char *extra, const char *file)
{
	char cmd[1200], o[256];
	long long u0, u1;
	double secs;

	start_args(extra);
	u0 = utime_ticks(S.pid);
	snprintf(cmd, sizeof(cmd), "curl -sS --fail --cacert %s -o /dev/null https://localhost:%d/%s",
		 certs_ca(), S.port, file);
	cr_assert_eq(tu_run(cmd, o, sizeof(o)), 0, "%s", cmd);
	u1 = utime_ticks(S.pid);
	secs = (double)(u1 - u0) / (double)sysconf(_SC_CLK_TCK);
	tu_stop(S.pid, 8000);
	S.pid = 0;
	return secs;
}

Test(ktlsd_ops, user_cpu_offload_vs_fallback, .init = setup, .fini = stop, .timeout = 600)
{
	char *big = malloc(64 << 20);
	double off, fb;

	cr_assert(big);
	tu_fill(big, 64 << 20, 11);
	put("big.bin", big, 64 << 20);
	free(big);
	off = serve_cpu(NULL, "big.bin");
	fb = serve_cpu("--no-offload", "big.bin");
	fprintf(stderr, "ktlsd user CPU for 64 MiB: kTLS %.2f s, userspace fallback %.2f s\n", off, fb);
	cr_expect_lt(off, fb * 0.5 + 0.05, "offloaded serving used %.2f s user CPU vs %.2f s", off, fb);
}
