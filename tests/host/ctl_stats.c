/*
 * ctl_stats.c - `ktlsctl stats`: the absent-file message on a kernel
 * without kTLS, every counter of a file whatever its set, and watch-mode
 * deltas while the counters move.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "netlink.h"
#include "../common/testutil.h"

static long long jget(json_object *o, const char *a, const char *b)
{
	json_object *x, *y;
	cr_assert(json_object_object_get_ex(o, a, &x), "no %s", a);
	cr_assert(json_object_object_get_ex(x, b, &y), "no %s.%s", a, b);
	return json_object_get_int64(y);
}

static void write_file(const char *path, const char *text)
{
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(rename(tmp, path), 0); /* readers see old or new, never half */
}

Test(stats_cli, running_kernel)
{
	static char out[16384], err[1024];
	int rc = tu_ktlsctl("stats", out, sizeof(out), err, sizeof(err));

	if (access("/proc/net/tls_stat", F_OK) != 0) {
		cr_assert(!tu_expect_ktls(), "kTLS expected but /proc/net/tls_stat is absent");
		cr_expect_eq(rc, 1);
		cr_expect_str_eq(out, "");
		cr_expect_str_eq(err, "ktlsctl stats: kernel has no kTLS: /proc/net/tls_stat absent\n");
		cr_expect_eq(tu_ktlsctl("stats --json", out, sizeof(out), err, sizeof(err)), 1);
		cr_expect_str_eq(out, "");
		return;
	}
	/* A kernel with kTLS: every name in the file is in the table. */
	cr_assert_eq(rc, 0, "%s", err);
	struct ktls_stat_counter *v;
	size_t n;
	char e[256];
	cr_assert_eq(ktls_stat_read("/proc/net/tls_stat", &v, &n, e, sizeof(e)), 0, "%s", e);
	for (size_t i = 0; i < n; i++)
		cr_expect(strstr(out, v[i].name), "%s missing", v[i].name);
	free(v);
}

Test(stats_cli, every_counter_of_the_file)
{
	char dir[] = "/tmp/ktlsctl-stat-XXXXXX", path[300], args[400];
	static char out[16384], err[1024];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tls_stat", dir);
	write_file(path, "TlsCurrTxSw                     \t2\n"
			 "TlsTxSw                         \t7\n"
			 "TlsBrandNewCounter              \t18446744073709551615\n");
	snprintf(args, sizeof(args), "stats --file %s --json", path);
	cr_assert_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	json_object *o = json_tokener_parse(out);
	cr_assert_not_null(o, "%s", out);
	cr_expect_eq(jget(o, "counters", "TlsCurrTxSw"), 2);
	cr_expect_eq(jget(o, "counters", "TlsTxSw"), 7);
	json_object *c;
	json_object_object_get_ex(o, "counters", &c);
	cr_expect_eq(json_object_object_length(c), 3);
	json_object_put(o);

	snprintf(args, sizeof(args), "stats --file %s", path);
	cr_assert_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_expect(strstr(out, "COUNTER                            VALUE\n"), "%s", out);
	cr_expect(strstr(out, "TlsBrandNewCounter  18446744073709551615\n"), "%s", out);

	write_file(path, "garbage here\n");
	cr_expect_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 1);
	cr_expect(strstr(err, "not 'Name value'"), "%s", err);
	unlink(path);
	rmdir(dir);
}

Test(stats_cli, watch_reports_per_interval_deltas)
{
	char dir[] = "/tmp/ktlsctl-stat-XXXXXX", path[300];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tls_stat", dir);
	write_file(path, "TlsCurrTxSw\t2\nTlsTxSw\t1\n");

	char *argv[] = { (char *)tu_build("ktlsctl"), "stats", "--file", path, "--json",
			 "--watch", "0.5", "--count", "2", NULL };
	int from;
	pid_t pid = tu_spawn(argv, NULL, &from);
	cr_assert_gt(pid, 0);
	FILE *f = fdopen(from, "r");
	char line[2048];

	cr_assert_not_null(fgets(line, sizeof(line), f));
	json_object *o = json_tokener_parse(line);
	cr_assert_not_null(o, "%s", line);
	cr_expect_eq(jget(o, "counters", "TlsTxSw"), 1);
	cr_expect(!json_object_object_get_ex(o, "deltas", NULL), "first sample has no deltas");
	json_object_put(o);

	/* Three new sessions, one closed, between samples. */
	write_file(path, "TlsCurrTxSw\t1\nTlsTxSw\t4\n");
	cr_assert_not_null(fgets(line, sizeof(line), f));
	o = json_tokener_parse(line);
	cr_assert_not_null(o, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsTxSw"), 3, "%s", line);
	cr_expect_eq(jget(o, "deltas", "TlsCurrTxSw"), -1, "%s", line);
	cr_expect_eq(jget(o, "counters", "TlsTxSw"), 4);
	json_object_put(o);

	cr_assert_not_null(fgets(line, sizeof(line), f));
	o = json_tokener_parse(line);
	cr_expect_eq(jget(o, "deltas", "TlsTxSw"), 0);
	json_object_put(o);
	cr_expect_null(fgets(line, sizeof(line), f), "--count 2 stops after two intervals");
	fclose(f);
	int st = tu_wait(pid, 5000);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink(path);
	rmdir(dir);
}

Test(stats_cli, usage_errors)
{
	static char out[1024], err[1024];

	cr_expect_eq(tu_ktlsctl("stats --count 2", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect(strstr(err, "--count needs --watch"), "%s", err);
	cr_expect_eq(tu_ktlsctl("stats --watch 0", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect_eq(tu_ktlsctl("stats --watch x", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect_eq(tu_ktlsctl("stats --watch 1 --count 0", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect_eq(tu_ktlsctl("stats extra", out, sizeof(out), err, sizeof(err)), 2);
}
