/*
 * ctl_stats.c - `ktlsctl stats` in the rig's guest: the counters are the
 * kernel's, and watch-mode deltas match the kTLS sessions this test opens
 * and closes.  One test only: parallel tests would move the same
 * counters.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <linux/tls.h>

#include "../common/testutil.h"
#include "../common/raw_ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static long long jget(json_object *o, const char *a, const char *b)
{
	json_object *x, *y;
	cr_assert(json_object_object_get_ex(o, a, &x), "no %s", a);
	cr_assert(json_object_object_get_ex(x, b, &y), "no %s.%s", a, b);
	return json_object_get_int64(y);
}

#define NPAIRS 3

Test(ctl_stats, deltas_match_the_sessions_opened_and_closed)
{
	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");

	/* One-shot: every counter, equal to the file's own values. */
	char cmd[512];
	static char out[16384];
	snprintf(cmd, sizeof(cmd), "%s stats --json", tu_build("ktlsctl"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0);
	json_object *o = json_tokener_parse(out);
	cr_assert_not_null(o, "%s", out);
	cr_expect_eq(jget(o, "counters", "TlsDecryptError"), tu_tls_stat("TlsDecryptError"));
	cr_expect_geq(jget(o, "counters", "TlsTxSw"), 0);
	json_object_put(o);

	/* Watch: baseline, open NPAIRS pairs, sample, close them, sample. */
	char *argv[] = { (char *)tu_build("ktlsctl"), "stats", "--json", "--watch", "2",
			 "--count", "2", NULL };
	int from;
	pid_t pid = tu_spawn(argv, NULL, &from);
	cr_assert_gt(pid, 0);
	FILE *f = fdopen(from, "r");
	char line[4096];
	cr_assert_not_null(fgets(line, sizeof(line), f));

	int fds[NPAIRS][2];
	for (int i = 0; i < NPAIRS; i++)
		raw_ktls_pair(fds[i], TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, 0);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	o = json_tokener_parse(line);
	cr_assert_not_null(o, "%s", line);
	/* Each pair: TX and RX keyed on both ends. */
	cr_expect_eq(jget(o, "deltas", "TlsTxSw"), 2 * NPAIRS, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsRxSw"), 2 * NPAIRS, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsCurrTxSw"), 2 * NPAIRS, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsCurrRxSw"), 2 * NPAIRS, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsTxDevice"), 0, "no NIC here: %s", line);
	cr_expect_eq(jget(o, "deltas", "TlsDecryptError"), 0, "%s", line);
	json_object_put(o);

	for (int i = 0; i < NPAIRS; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	cr_assert_not_null(fgets(line, sizeof(line), f));
	o = json_tokener_parse(line);
	cr_assert_not_null(o, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsCurrTxSw"), -2 * NPAIRS, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsCurrRxSw"), -2 * NPAIRS, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsTxSw"), 0, "%s", line);
	json_object_put(o);
	fclose(f);
	int st = tu_wait(pid, 10000);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
