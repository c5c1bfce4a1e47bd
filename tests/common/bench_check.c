/* bench_check.c - checks on a `ktls-bench all --quick` run (see bench_check.h). */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_check.h"
#include "ktls.h"
#include "testutil.h"

static char bc_dir[256];
char bc_out[BC_OUT_SIZE];

static const char *bc_path(const char *name)
{
	static char p[8][400];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/%s", bc_dir, name);
	return p[k];
}

int bc_run(const char *extra, int timeout_s)
{
	char cmd[2048];

	snprintf(bc_dir, sizeof(bc_dir), "/tmp/bench-test.XXXXXX");
	cr_assert_not_null(mkdtemp(bc_dir));
	snprintf(cmd, sizeof(cmd),
		 "timeout -k 5 %d %s all --quick %s --json %s --plot %s --workdir %s 2>%s",
		 timeout_s, tu_build("ktls-bench"), extra, bc_path("out.json"), bc_path("plots"),
		 bc_path("work"), bc_path("stderr.txt"));
	return tu_run(cmd, bc_out, sizeof(bc_out));
}

void bc_cleanup(void)
{
	char cmd[400];

	if (bc_dir[0] && !getenv("KTLS_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bc_dir);
		tu_run(cmd, NULL, 0);
	}
}

static const char *bc_str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

static long long bc_int(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_int64(v) : -1;
}

static double bc_num(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_double(v) : -1;
}

static int bc_measured(json_object *o)
{
	json_object *v;

	return json_object_object_get_ex(o, "measured", &v) && json_object_get_boolean(v);
}

/* Sum of the byte column of an access log (same format the bench parses,
 * parsed again here so a bench bug cannot agree with itself). */
static unsigned long long bc_log_bytes(const char *path, unsigned long long *lines)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	unsigned long long sum = 0;

	*lines = 0;
	cr_assert_not_null(f, "no access log %s", path);
	while (fgets(line, sizeof(line), f)) {
		char *q = strrchr(line, '"');
		unsigned long long b;
		int st;

		cr_assert(q && sscanf(q + 1, " %d %llu", &st, &b) == 2, "odd log line: %s", line);
		cr_assert_eq(st, 200, "server answered %d: %s", st, line);
		sum += b;
		(*lines)++;
	}
	fclose(f);
	return sum;
}

static void bc_png(const char *name)
{
	unsigned char magic[8];
	struct stat st;
	FILE *f;

	cr_assert_eq(stat(bc_path(name), &st), 0, "%s not written", name);
	cr_assert_gt(st.st_size, 1000, "%s is only %lld bytes", name, (long long)st.st_size);
	f = fopen(bc_path(name), "rb");
	cr_assert_not_null(f);
	cr_assert_eq(fread(magic, 1, 8, f), 8);
	fclose(f);
	cr_assert(!memcmp(magic, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", name);
}

void bc_check(int expect_ktls, int emulated)
{
	static const char *cfg[6] = { "", "nginx-plain", "ktlsd-ktls", "ktlsd-user", "nginx-tls",
				      "nginx-ktls" };
	char cmd[600], out[512];
	json_object *arr;
	unsigned long long cfg_bytes[6] = { 0 }, cfg_reqs[6] = { 0 };
	int nserve[6] = { 0 }, nhs = 0, ninst = 0, nevp = 0, nktls_crypto = 0;
	struct ktls_probe probe;

	/* the JSON parses with a real JSON parser, not only ours */
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
		 "print(type(d).__name__, len(d))' %s",
		 bc_path("out.json"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0, "python3 json.load failed: %s", out);
	cr_assert(!strncmp(out, "list ", 5), "JSON is not a list: %s", out);

	arr = json_object_from_file(bc_path("out.json"));
	cr_assert_not_null(arr);
	ktls_probe(&probe);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *r = json_object_array_get_idx(arr, i), *tools;
		const char *kind = bc_str(r, "kind"), *conf = bc_str(r, "configuration");
		const char *skipped = bc_str(r, "skipped");

		cr_assert_not_null(kind);
		cr_assert_not_null(conf);
		cr_assert_null(bc_str(r, "error"), "row %zu (%s %s) failed: %s", i, kind, conf,
			       bc_str(r, "error"));
		cr_assert_not_null(bc_str(r, "kernel"));
		cr_assert_not_null(bc_str(r, "cpu_model"));
		cr_assert_gt(bc_num(r, "cpu_hz"), 1e8);
		cr_assert(json_object_object_get_ex(r, "tool_versions", &tools) &&
			  bc_str(tools, "openssl") && bc_str(tools, "nginx"));
		cr_assert_eq(json_object_get_boolean(json_object_object_get(r, "emulated")),
			     emulated, "emulated flag wrong");
		if (!strcmp(kind, "serve")) {
			int no = (int)bc_int(r, "config_no");
			long long bytes = bc_int(r, "bytes"), reqs = bc_int(r, "requests");

			cr_assert(no >= 1 && no <= 5);
			cr_assert_str_eq(conf, cfg[no]);
			nserve[no]++;
			if (!expect_ktls && (no == 2 || no == 5)) {
				/* skipped, and saying why in the kernel's words */
				cr_assert(!bc_measured(r), "%s measured without kTLS", conf);
				cr_assert_not_null(skipped);
				cr_assert_not_null(strstr(skipped, probe.ulp_reason),
						   "skip reason '%s' lacks the probe's '%s'", skipped,
						   probe.ulp_reason);
				continue;
			}
			cr_assert(bc_measured(r), "%s not measured: %s", conf, skipped ? skipped : "?");
			cr_assert_gt(reqs, 0, "%s moved nothing", conf);
			cr_assert_eq(bytes, reqs * bc_int(r, "file_size"), "%s: bytes != requests x size",
				     conf);
			cr_assert_eq(bc_int(r, "server_bytes"), bytes, "%s: server log disagrees", conf);
			cr_assert_gt(bc_num(r, "seconds"), 0.5);
			cr_assert_gt(bc_num(r, "server_cpu_s"), 0, "%s: no server CPU", conf);
			cr_assert_gt(bc_num(r, "cycles_per_byte"), 0);
			cr_assert_gt(bc_num(r, "gb_per_s"), 0);
			cr_assert_gt(bc_num(r, "p99_ms"), 0);
			cr_assert_geq(bc_num(r, "p99_ms"), bc_num(r, "p50_ms"));
			/*
			 * strace counts: a connection costs at least accept and close, a
			 * request at least a read and a write of some kind.
			 */
			cr_assert_geq(bc_num(r, "syscalls_per_connection"), 2, "%s: %g syscalls/conn",
				      conf, bc_num(r, "syscalls_per_connection"));
			cr_assert_geq(bc_num(r, "syscalls_per_request"), 2, "%s: %g syscalls/request",
				      conf, bc_num(r, "syscalls_per_request"));
			if (no != 1) {
				cr_assert_str_eq(bc_str(r, "tls_version"), "TLSv1.3");
				cr_assert_str_eq(bc_str(r, "cipher"), "TLS_AES_256_GCM_SHA384");
			}
			/*
			 * Body bytes read into ktlsd's memory per byte served: none
			 * on the kTLS path (head with MSG_MORE, body spliced), all
			 * of them on the userspace path, which shows the figure moves.
			 */
			if (no == 2)
				cr_assert(bc_num(r, "userspace_copy_bytes_per_byte") >= 0 &&
					  bc_num(r, "userspace_copy_bytes_per_byte") < 0.001,
					  "%s %lld B: %g bytes copied via userspace per byte", conf,
					  bc_int(r, "file_size"), bc_num(r, "userspace_copy_bytes_per_byte"));
			if (no == 3)
				cr_assert_geq(bc_num(r, "userspace_copy_bytes_per_byte"), 0.99,
					      "%s: %g bytes read per byte", conf,
					      bc_num(r, "userspace_copy_bytes_per_byte"));
			if (expect_ktls) {
				long long tx = bc_int(r, "ktls_tx_installs");

				if (no == 2 || no == 5)
					cr_assert_geq(tx, bc_int(r, "conns"), "%s: kTLS TX rose by %lld", conf, tx);
				else
					cr_assert_eq(tx, 0, "%s: kTLS on a userspace row (%lld)", conf, tx);
			}
			/* the syscall counting's requests are in the server's log too */
			cfg_bytes[no] += (unsigned long long)bytes +
					 (unsigned long long)(bc_int(r, "syscall_count_requests") *
							      bc_int(r, "file_size"));
			cfg_reqs[no] += (unsigned long long)(reqs + bc_int(r, "syscall_count_requests"));
		} else if (!strcmp(kind, "handshake")) {
			nhs++;
			cr_assert(bc_measured(r));
			cr_assert_gt(bc_int(r, "handshakes"), 0);
			cr_assert_eq(bc_int(r, "bytes"), bc_int(r, "handshakes") * 1024);
			cr_assert_eq(bc_int(r, "server_bytes"), bc_int(r, "bytes"));
			cr_assert_gt(bc_num(r, "handshakes_per_core_s"), 0);
			cr_assert_not_null(bc_str(r, "tls_version"));
		} else if (!strcmp(kind, "ktls_install")) {
			ninst++;
			cr_assert(bc_measured(r));
			cr_assert_gt(bc_num(r, "install_us"), 0);
			cr_assert_gt(bc_num(r, "server_us_per_handshake"), 0);
			if (expect_ktls)
				cr_assert_str_eq(bc_str(r, "install_mode"), "SW TX, SW RX");
			else
				cr_assert_str_eq(bc_str(r, "install_mode"), "failed attempt");
		} else if (!strcmp(kind, "crypto")) {
			if (!strcmp(conf, "ktls-sw")) {
				nktls_crypto++;
				if (expect_ktls) {
					cr_assert(bc_measured(r), "kTLS crypto not measured: %s",
						  skipped ? skipped : "?");
					cr_assert_gt(bc_int(r, "ktls_tx_installs"), 0);
					cr_assert_geq(bc_int(r, "server_bytes"), bc_int(r, "bytes"));
				} else {
					cr_assert(!bc_measured(r));
					cr_assert_not_null(skipped);
					cr_assert_not_null(strstr(skipped, probe.ulp_reason));
				}
				continue;
			}
			if (!strcmp(conf, "openssl-evp"))
				nevp++;
			cr_assert(bc_measured(r));
			cr_assert_gt(bc_int(r, "bytes"), 0);
			cr_assert_gt(bc_num(r, "gb_per_s"), 0);
		} else {
			cr_assert_fail("unknown row kind %s", kind);
		}
	}
	json_object_put(arr);
	for (int no = 1; no <= 5; no++)
		cr_assert_eq(nserve[no], 2, "configuration %d: %d rows, want one per size", no,
			     nserve[no]);
	cr_assert_eq(nhs, 8, "handshake rows: %d, want ktlsd+nginx x P-256+RSA x 1.2+1.3", nhs);
	cr_assert_eq(ninst, 2);
	cr_assert_eq(nevp, 3);
	cr_assert_eq(nktls_crypto, 3);

	/* the servers' own logs, summed here, agree with the rows */
	for (int no = 1; no <= 5; no++) {
		char p[128];
		unsigned long long lines, sum;

		if (!cfg_reqs[no])
			continue;
		snprintf(p, sizeof(p), "work/serve-%s/access.log", cfg[no]);
		sum = bc_log_bytes(bc_path(p), &lines);
		cr_assert_eq(sum, cfg_bytes[no], "%s: access log %llu bytes, rows %llu", cfg[no], sum,
			     cfg_bytes[no]);
		cr_assert_eq(lines, cfg_reqs[no], "%s: access log %llu requests, rows %llu", cfg[no],
			     lines, cfg_reqs[no]);
	}

	bc_png("plots/cycles_per_byte.png");
	bc_png("plots/throughput.png");
	bc_png("plots/handshakes.png");

	/* the human table says what it skipped and, in the guest, what it is */
	cr_assert_not_null(strstr(bc_out, "cyc/B"), "no table on stdout");
	if (emulated)
		cr_assert_not_null(strstr(bc_out, "NOT performance figures"));
	if (!expect_ktls)
		cr_assert_not_null(strstr(bc_out, "skipped (all sizes): no kTLS on this kernel"));
}
