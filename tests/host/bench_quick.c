/*
 * bench_quick.c - `ktls-bench all --quick` on the host kernel (ours has no
 * kTLS; on one that has it, rows 2 and 5 must be measured and offloaded):
 * configurations 1, 3, 4 measured and honest (bytes the client verified =
 * requests x size = the server's access log), 2 and 5 skipped with the
 * kernel's reason, the kTLS installation row timing the failed attempt,
 * JSON that python3 parses, three PNGs.  And a lying server cannot score:
 * a stand-in "ktlsd" that flips one byte of each body makes the row fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ktls.h"
#include "../common/bench_check.h"
#include "../common/testutil.h"

Test(bench_quick, host_run_is_honest_and_complete)
{
	struct ktls_probe p;
	int rc = bc_run("", 150), ktls_here;

	cr_assert_eq(rc, 0, "ktls-bench --quick exited %d:\n%s", rc, bc_out);
	/* our machines: no kTLS, so rows 2 and 5 must be skipped with the reason;
	 * on a kernel with kTLS the same suite demands them measured */
	ktls_probe(&p);
	ktls_here = p.ulp && p.cipher[1][KTLS_PROBE_AES_256_GCM][0].ok;
	if (tu_expect_ktls())
		cr_assert(ktls_here, "KTLS_TEST_EXPECT_KTLS=1 but the probe finds no kTLS");
	bc_check(ktls_here, getenv("KTLS_VM_RELEASE") != NULL);
	bc_cleanup();
}

/* A server that serves the right length but wrong bytes, and logs them. */
static const char liar_py[] =
	"import sys, ssl, os, http.server\n"
	"a = sys.argv[1:]\n"
	"def opt(n): return a[a.index(n) + 1]\n"
	"root = opt('--root'); host, port = opt('--listen').rsplit(':', 1)\n"
	"log = open(opt('--access-log'), 'a', buffering=1)\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def do_GET(self):\n"
	"        d = bytearray(open(os.path.join(root, self.path.lstrip('/')), 'rb').read())\n"
	"        d[len(d) // 2] ^= 1\n"
	"        self.send_response(200)\n"
	"        self.send_header('Content-Length', str(len(d)))\n"
	"        self.end_headers()\n"
	"        self.wfile.write(d)\n"
	"        log.write('127.0.0.1 - - [x] \"GET %s HTTP/1.1\" 200 %d 0.0\\n' % (self.path, len(d)))\n"
	"    def log_message(self, *x): pass\n"
	"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"ctx.load_cert_chain(opt('--cert'), opt('--key'))\n"
	"s = http.server.ThreadingHTTPServer((host, int(port)), H)\n"
	"s.socket = ctx.wrap_socket(s.socket, server_side=True)\n"
	"s.serve_forever()\n";

Test(bench_quick, corrupted_bodies_fail_the_row)
{
	char dir[] = "/tmp/bench-liar.XXXXXX", py[128], sh[128], cmd[1024], out[16384];
	FILE *f;
	int rc;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(py, sizeof(py), "%s/liar.py", dir);
	snprintf(sh, sizeof(sh), "%s/ktlsd", dir);
	f = fopen(py, "w");
	cr_assert_not_null(f);
	fputs(liar_py, f);
	fclose(f);
	f = fopen(sh, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\nshift\nexec /usr/bin/python3 %s \"$@\"\n", py);
	fclose(f);
	chmod(sh, 0755);
	snprintf(cmd, sizeof(cmd),
		 "timeout -k 5 60 %s serve --quick --configs 3 --sizes 16K,100K --ktlsd %s "
		 "--json %s/out.json 2>&1",
		 tu_build("ktls-bench"), sh, dir);
	rc = tu_run(cmd, out, sizeof(out));
	cr_assert_eq(rc, 1, "bench exited %d against a corrupting server:\n%s", rc, out);
	cr_assert_not_null(strstr(out, "body SHA-256 differs from the file's"), "%s", out);
	cr_assert_not_null(strstr(out, "FAILED"), "%s", out);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
		 "print(sum(1 for r in d if r[\"error\"] and not r[\"measured\"]))' %s/out.json", dir);
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0);
	cr_assert_eq(atoi(out), 2, "both rows must be failed, got %s", out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	tu_run(cmd, NULL, 0);
}

Test(bench_quick, bad_options_are_refused_clearly)
{
	char cmd[512], out[4096];

	snprintf(cmd, sizeof(cmd), "%s serve --configs 7 2>&1", tu_build("ktls-bench"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 2);
	cr_assert_not_null(strstr(out, "--configs 7: want numbers 1..6"), "%s", out);
	snprintf(cmd, sizeof(cmd), "%s serve --sizes 0K 2>&1", tu_build("ktls-bench"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 2);
	cr_assert_not_null(strstr(out, "--sizes 0K"), "%s", out);
	snprintf(cmd, sizeof(cmd), "%s speed 2>&1", tu_build("ktls-bench"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 2);
	cr_assert_not_null(strstr(out, "unknown command 'speed'"), "%s", out);
	snprintf(cmd, sizeof(cmd), "%s serve --quick --ktlsd /nonexistent/ktlsd 2>&1",
		 tu_build("ktls-bench"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 2);
	cr_assert_not_null(strstr(out, "ktlsd not found at /nonexistent/ktlsd"), "%s", out);
}

Test(bench_quick, json_to_stdout_is_json_alone)
{
	char cmd[512], out[512];

	snprintf(cmd, sizeof(cmd),
		 "%s crypto --quick --json - 2>/dev/null | /usr/bin/python3 -c 'import json,sys; "
		 "d=json.load(sys.stdin); print(len([r for r in d if r[\"kind\"] == \"crypto\"]))'",
		 tu_build("ktls-bench"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0, "%s", out);
	cr_assert_eq(atoi(out), 7, "crypto rows: %s", out);
}
