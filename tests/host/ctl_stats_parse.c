/*
 * ctl_stats_parse.c - /proc/net/tls_stat parsing: every counter the kernel
 * prints is kept (the set differs by version), bad lines are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "netlink.h"

/* Layout of net/tls/tls_proc.c: "%-32s\t%lu\n". */

static const char k612[] =
	"TlsCurrTxSw                     \t2\n"
	"TlsCurrRxSw                     \t2\n"
	"TlsCurrTxDevice                 \t0\n"
	"TlsCurrRxDevice                 \t0\n"
	"TlsTxSw                         \t7\n"
	"TlsRxSw                         \t7\n"
	"TlsTxDevice                     \t0\n"
	"TlsRxDevice                     \t0\n"
	"TlsDecryptError                 \t1\n"
	"TlsRxDeviceResync               \t0\n"
	"TlsDecryptRetry                 \t0\n"
	"TlsRxNoPadViolation             \t0\n";

static const char knew[] =
	"TlsCurrTxSw                     \t0\n"
	"TlsTxSw                         \t18446744073709551615\n"
	"TlsRxRekeyOk                    \t3\n"
	"TlsTxRekeyOk                    \t3\n"
	"TlsRxRekeyReceived              \t3\n"
	"TlsSomethingFromTheFuture       \t42\n";

Test(stats_parse, kernel_6_12_set)
{
	struct ktls_stat_counter *v;
	size_t n;
	char err[256];

	cr_assert_eq(tlsstat_parse(k612, &v, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 12u);
	cr_expect_str_eq(v[0].name, "TlsCurrTxSw");
	cr_expect_eq(v[0].value, 2u);
	cr_expect_str_eq(v[4].name, "TlsTxSw");
	cr_expect_eq(v[4].value, 7u);
	cr_expect_str_eq(v[8].name, "TlsDecryptError");
	cr_expect_eq(v[8].value, 1u);
	cr_expect_str_eq(v[11].name, "TlsRxNoPadViolation");
	free(v);
}

Test(stats_parse, unknown_and_newer_counters_are_kept_in_order)
{
	struct ktls_stat_counter *v;
	size_t n;
	char err[256];

	cr_assert_eq(tlsstat_parse(knew, &v, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 6u);
	cr_expect_eq(v[1].value, 18446744073709551615ull);
	cr_expect_str_eq(v[2].name, "TlsRxRekeyOk");
	cr_expect_str_eq(v[5].name, "TlsSomethingFromTheFuture");
	cr_expect_eq(v[5].value, 42u);
	free(v);
}

Test(stats_parse, malformed_text_is_refused_with_the_line)
{
	struct ktls_stat_counter *v;
	size_t n;
	char err[256];

	cr_expect_eq(tlsstat_parse("", &v, &n, err, sizeof(err)), -1);
	cr_expect(strstr(err, "no counters"), "%s", err);
	cr_expect_eq(tlsstat_parse("TlsTxSw\t1\nTlsRxSw\n", &v, &n, err, sizeof(err)), -1);
	cr_expect(strstr(err, "line 2"), "%s", err);
	cr_expect_eq(tlsstat_parse("TlsTxSw\t1x\n", &v, &n, err, sizeof(err)), -1);
	cr_expect_eq(tlsstat_parse("TlsTxSw\t-1\n", &v, &n, err, sizeof(err)), -1);
	cr_expect_eq(tlsstat_parse("TlsTxSw\t99999999999999999999999\n", &v, &n, err, sizeof(err)),
		     -1);
	cr_expect_eq(tlsstat_parse("TlsTxSw 1 2\n", &v, &n, err, sizeof(err)), -1);
	/* Blank lines and a missing final newline are fine. */
	cr_assert_eq(tlsstat_parse("\nTlsTxSw 5", &v, &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 1u);
	cr_expect_eq(v[0].value, 5u);
	free(v);
}

Test(stats_parse, absent_file_says_no_ktls)
{
	struct ktls_stat_counter *v;
	size_t n;
	char err[256];

	cr_assert_eq(ktls_stat_read("/nonexistent/tls_stat", &v, &n, err, sizeof(err)), -1);
	cr_expect_eq(errno, ENOENT);
	cr_expect_str_eq(err, "kernel has no kTLS: /nonexistent/tls_stat absent");
}

/* NULL means the kernel's own file: absent here exactly when it is absent. */
Test(stats_parse, null_path_reads_proc_net_tls_stat)
{
	struct ktls_stat_counter *v = NULL;
	size_t n = 0;
	char err[256];
	int r = ktls_stat_read(NULL, &v, &n, err, sizeof(err));

	if (access(KTLS_STAT_PATH, F_OK) != 0) {
		cr_assert_eq(r, -1);
		cr_expect_eq(errno, ENOENT);
		cr_expect_str_eq(err, "kernel has no kTLS: /proc/net/tls_stat absent");
		return;
	}
	cr_assert_eq(r, 0, "%s", err);
	cr_expect_gt(n, 0u);
	ktls_stat_free(v);
}

/* The files as the rig's 6.12 and 7.3 guest kernels printed them. */
static size_t parse_fixture(const char *name, struct ktls_stat_counter **v)
{
	const char *dir = getenv("KTLS_TEST_FIXTURES");
	char path[512], err[256];
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/fixtures/netlink", name);
	cr_assert_eq(ktls_stat_read(path, v, &n, err, sizeof(err)), 0, "%s", err);
	return n;
}

Test(stats_parse, real_guest_files)
{
	struct ktls_stat_counter *v;

	cr_expect_eq(parse_fixture("guest612-tls_stat.txt", &v), 12u);
	cr_expect_str_eq(v[11].name, "TlsRxNoPadViolation");
	free(v);
	cr_expect_eq(parse_fixture("guest73-tls_stat.txt", &v), 17u, "rekey counters since 6.14");
	cr_expect_str_eq(v[4].name, "TlsTxSw");
	cr_expect_eq(v[4].value, 2u);
	cr_expect_str_eq(v[16].name, "TlsRxRekeyReceived");
	free(v);
}
