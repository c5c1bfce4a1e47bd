/*
 * probe_host.c - ktls_probe() and `ktlsctl probe` on the machine running
 * the host suites.
 *
 * The expectations come from an independent oracle, not from the probe:
 * this file attaches the "tls" ULP itself and reads io_uring_disabled and
 * the kernel version.  On our machines the ULP is absent, so the probe must
 * say so with the reason and report every cipher "no" with that errno; on a
 * host with kTLS (Debian's stock kernel as root) the same tests assert the
 * opposite instead of skipping.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "ktls.h"
#include "../common/testutil.h"

/* Our own attach attempt: 0 or the errno. */
static int oracle_ulp_err(void)
{
	int fds[2], err = 0;

	cr_assert_eq(tu_tcp_pair(fds), 0, "loopback pair");
	if (setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		err = errno;
	close(fds[0]);
	close(fds[1]);
	return err;
}

static int kernel_at_least(int maj, int min)
{
	struct utsname u;
	int a = 0, b = 0;

	cr_assert_eq(uname(&u), 0);
	cr_assert_eq(sscanf(u.release, "%d.%d", &a, &b), 2, "uname -r: %s", u.release);
	return a > maj || (a == maj && b >= min);
}

static int io_uring_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

Test(probe_host, ulp_matches_oracle_with_reason)
{
	struct ktls_probe p;
	int err = oracle_ulp_err();

	cr_assert_eq(ktls_probe(&p), 0);
	if (err) {
		cr_expect_eq(p.ulp, 0, "probe says ULP yes, but TCP_ULP failed here: %s", strerror(err));
		cr_expect(strstr(p.ulp_reason, "TCP_ULP \"tls\" failed") != NULL, "%s", p.ulp_reason);
		cr_expect(strstr(p.ulp_reason, strerror(err)) != NULL, "%s", p.ulp_reason);
		cr_expect(strstr(p.ulp_reason, "tcp_available_ulp") != NULL, "%s", p.ulp_reason);
		if (err == ENOENT)
			cr_expect(strstr(p.ulp_reason, "not registered: CONFIG_TLS missing or module "
							"not loaded") != NULL, "%s", p.ulp_reason);
	} else {
		cr_expect_eq(p.ulp, 1, "TCP_ULP attaches here but the probe says: %s", p.ulp_reason);
		cr_expect_str_empty(p.ulp_reason);
	}
}

Test(probe_host, ciphers_follow_the_ulp)
{
	struct ktls_probe p;
	int err = oracle_ulp_err();

	ktls_probe(&p);
	for (int v = 0; v < 2; v++)
		for (int c = 0; c < KTLS_PROBE_NCIPHERS; c++)
			for (int d = 0; d < 2; d++) {
				struct ktls_probe_result r = p.cipher[v][c][d];

				if (err) {
					cr_expect_eq(r.ok, 0, "TLS1.%d %s %s", 2 + v,
						     ktls_probe_cipher_name(c), d ? "rx" : "tx");
					cr_expect_eq(r.err, err, "TLS1.%d %s: errno %d, want %d", 2 + v,
						     ktls_probe_cipher_name(c), r.err, err);
				} else {
					/* A kTLS host: "no" must still carry its errno. */
					cr_expect(r.ok ? r.err == 0 : r.err != 0);
				}
			}
	if (err) {
		cr_expect_eq(p.zerocopy_tx.ok, 0);
		cr_expect_eq(p.zerocopy_tx.err, err);
		cr_expect_eq(p.rx_no_pad.ok, 0);
		cr_expect_eq(p.rx_no_pad.err, err);
		cr_expect_eq(p.rekey.ok, 0);
		cr_expect_eq(p.rekey.err, err);
		/* No tls module, no per-netns stats file. */
		cr_expect_eq(p.tls_stat, 0);
	} else {
		cr_expect_eq(p.cipher[0][KTLS_PROBE_AES_128_GCM][0].ok, 1,
			     "the ULP attaches but TLS 1.2 AES-128-GCM TX (4.13) does not");
		cr_expect_eq(p.tls_stat, 1);
	}
}

Test(probe_host, cipher_names)
{
	cr_expect_str_eq(ktls_probe_cipher_name(KTLS_PROBE_AES_128_GCM), "AES-128-GCM");
	cr_expect_str_eq(ktls_probe_cipher_name(KTLS_PROBE_AES_256_GCM), "AES-256-GCM");
	cr_expect_str_eq(ktls_probe_cipher_name(KTLS_PROBE_CHACHA20_POLY1305), "ChaCha20-Poly1305");
	cr_expect_str_eq(ktls_probe_cipher_name(-1), "unknown");
	cr_expect_str_eq(ktls_probe_cipher_name(KTLS_PROBE_NCIPHERS), "unknown");
}

Test(probe_host, io_uring)
{
	struct ktls_probe p;

	ktls_probe(&p);
	if (io_uring_disabled()) {
		cr_expect_eq(p.io_uring, 0);
		cr_expect_str_not_empty(p.io_uring_reason);
		return;
	}
	cr_expect_eq(p.io_uring, 1, "io_uring: %s", p.io_uring_reason);
	cr_expect_eq(p.uring_splice, 1);   /* 5.7 */
	cr_expect_eq(p.uring_sendmsg, 1);  /* 5.3 */
	cr_expect_eq(p.uring_recvmsg, 1);  /* 5.3 */
	/* Multishot RECVMSG came in 6.0; the probe submits one for real. */
	cr_expect_eq(p.uring_recvmsg_multishot, kernel_at_least(6, 0));
}

/* ---- ktlsctl probe: text and JSON agree with ktls_probe() ------------------- */

struct expect {
	char key[48];
	int ok;
	int err; /* errno behind a "no", 0 if it has a reason instead */
};

#define NKEYS 23

/* The documented key set, in output order, with ktls_probe()'s verdicts. */
static void expected(const struct ktls_probe *p, struct expect e[NKEYS])
{
	static const char *const cn[3] = { "aes-128-gcm", "aes-256-gcm", "chacha20-poly1305" };
	int n = 0;

#define PUT(k, o, er) \
	do { \
		snprintf(e[n].key, sizeof(e[n].key), "%s", k); \
		e[n].ok = (o); \
		e[n].err = (er); \
		n++; \
	} while (0)
	PUT("tls_ulp", p->ulp, 0);
	for (int v = 0; v < 2; v++)
		for (int c = 0; c < 3; c++)
			for (int d = 0; d < 2; d++) {
				char k[48];

				snprintf(k, sizeof(k), "tls1.%d_%s_%s", 2 + v, cn[c], d ? "rx" : "tx");
				PUT(k, p->cipher[v][c][d].ok, p->cipher[v][c][d].err);
			}
	PUT("zerocopy_tx", p->zerocopy_tx.ok, p->zerocopy_tx.err);
	PUT("rx_no_pad", p->rx_no_pad.ok, p->rx_no_pad.err);
	PUT("rekey", p->rekey.ok, p->rekey.err);
	PUT("tls_stat", p->tls_stat, 0);
	PUT("handshake_family", p->handshake_family, 0);
	PUT("io_uring", p->io_uring, 0);
	PUT("io_uring_splice", p->uring_splice, 0);
	PUT("io_uring_sendmsg", p->uring_sendmsg, 0);
	PUT("io_uring_recvmsg", p->uring_recvmsg, 0);
	PUT("io_uring_recvmsg_multishot", p->uring_recvmsg_multishot, 0);
#undef PUT
	cr_assert_eq(n, NKEYS);
}

static char *run_ctl(const char *args, int *status)
{
	static char out[16384];
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s' %s", tu_build("ktlsctl"), args);
	*status = tu_run(cmd, out, sizeof(out));
	return out;
}

Test(probe_host, text_output_agrees)
{
	struct ktls_probe p;
	struct expect e[NKEYS];
	struct utsname u;
	int st, i = 0;
	char *out = run_ctl("probe", &st), *save = NULL, want[2048];

	cr_assert_eq(st, 0, "ktlsctl probe exited %d", st);
	ktls_probe(&p);
	expected(&p, e);
	uname(&u);

	char *line = strtok_r(out, "\n", &save);
	snprintf(want, sizeof(want), "kernel: %s", u.release);
	cr_assert(line && !strcmp(line, want), "first line %s, want %s", line, want);
	line = strtok_r(NULL, "\n", &save);
	cr_assert(line && !strncmp(line, "tcp_available_ulp: ", 19), "%s", line);
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		if (i == NKEYS && !strncmp(line, "nic_tls_offload: ", 17))
			continue; /* the last line, checked by nic_tls_offload_line */
		cr_assert_lt(i, NKEYS, "extra line: %s", line);
		if (e[i].ok)
			snprintf(want, sizeof(want), "%s: yes", e[i].key);
		else if (e[i].err)
			snprintf(want, sizeof(want), "%s: no (%s: %s)", e[i].key,
				 strerrorname_np(e[i].err), strerror(e[i].err));
		else
			snprintf(want, sizeof(want), "%s: no (", e[i].key);
		if (e[i].ok || e[i].err)
			cr_expect_str_eq(line, want);
		else
			cr_expect(!strncmp(line, want, strlen(want)) && line[strlen(line) - 1] == ')',
				  "line '%s' should start with '%s' and give a reason", line, want);
		i++;
	}
	cr_expect_eq(i, NKEYS, "%d probe lines, want %d", i, NKEYS);
	if (!p.ulp) {
		char *r = strstr(run_ctl("probe", &st), "tls_ulp: no (");

		cr_assert(r, "no tls_ulp line");
		cr_expect(strstr(r, p.ulp_reason) == r + strlen("tls_ulp: no ("),
			  "the ULP reason must be printed whole");
	}
}

Test(probe_host, json_output_agrees)
{
	struct ktls_probe p;
	struct expect e[NKEYS];
	int st;
	char *out = run_ctl("probe --json", &st);
	json_object *root, *o, *ok, *en;

	cr_assert_eq(st, 0);
	root = json_tokener_parse(out);
	cr_assert(root && json_object_is_type(root, json_type_object), "not a JSON object:\n%s", out);
	ktls_probe(&p);
	expected(&p, e);
	cr_expect_eq(json_object_object_length(root), NKEYS + 3); /* + nic_tls_offload */
	cr_expect(json_object_object_get_ex(root, "kernel", &o) && json_object_is_type(o, json_type_string));
	cr_expect(json_object_object_get_ex(root, "tcp_available_ulp", &o) &&
		  json_object_is_type(o, json_type_string));
	for (int i = 0; i < NKEYS; i++) {
		cr_assert(json_object_object_get_ex(root, e[i].key, &o), "missing %s", e[i].key);
		cr_assert(json_object_object_get_ex(o, "ok", &ok) && json_object_is_type(ok, json_type_boolean),
			  "%s.ok", e[i].key);
		cr_expect_eq(json_object_get_boolean(ok), e[i].ok, "%s", e[i].key);
		if (e[i].ok)
			continue;
		cr_expect(json_object_object_get_ex(o, "reason", &en), "%s has no reason", e[i].key);
		if (e[i].err) {
			cr_assert(json_object_object_get_ex(o, "errno", &en), "%s has no errno", e[i].key);
			cr_expect_str_eq(json_object_get_string(en), strerrorname_np(e[i].err), "%s", e[i].key);
		}
	}
	json_object_put(root);

	/* An independent parser agrees it is JSON. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "'%s' probe --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
		 "print(d[\"tls_ulp\"][\"ok\"], d[\"io_uring\"][\"ok\"])'",
		 tu_build("ktlsctl"));
	char py[64];
	cr_assert_eq(tu_run(cmd, py, sizeof(py)), 0, "python3 cannot parse the JSON");
	snprintf(cmd, sizeof(cmd), "%s %s\n", p.ulp ? "True" : "False", p.io_uring ? "True" : "False");
	cr_expect_str_eq(py, cmd);
}

/*
 * No device here does kTLS offload (lo never does): the last line says
 * "none", and the JSON lists no interface.  Oracle: lo is among the
 * interfaces and the line names none of them.
 */
Test(probe_host, nic_tls_offload_line)
{
	int st;
	char *out = run_ctl("probe", &st), *l;
	json_object *root, *o, *v;

	cr_assert_eq(st, 0);
	l = strstr(out, "\nnic_tls_offload: ");
	cr_assert(l, "no nic_tls_offload line:\n%s", out);
	l += strlen("\nnic_tls_offload: ");
	cr_expect(!strcmp(l, "none\n"), "want 'none' as the last line, got '%s'", l);

	out = run_ctl("probe --json", &st);
	cr_assert_eq(st, 0);
	root = json_tokener_parse(out);
	cr_assert(root && json_object_object_get_ex(root, "nic_tls_offload", &o), "%s", out);
	cr_expect(json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v));
	cr_assert(json_object_object_get_ex(o, "interfaces", &v) &&
		  json_object_is_type(v, json_type_array));
	cr_expect_eq(json_object_array_length(v), 0);
	json_object_put(root);
	cr_expect_eq(access("/sys/class/net/lo", F_OK), 0, "no lo to look at");
}

Test(probe_host, usage_and_exit_codes)
{
	int st;
	char *out;

	out = run_ctl("--help", &st);
	cr_expect_eq(st, 0);
	cr_expect(strstr(out, "usage: ktlsctl") && strstr(out, "probe") && strstr(out, "demo"), "%s", out);
	out = run_ctl("help", &st);
	cr_expect_eq(st, 0);
	cr_expect(strstr(out, "usage: ktlsctl") != NULL);
	out = run_ctl("no-such-command 2>&1", &st);
	cr_expect_eq(st, 2);
	cr_expect(strstr(out, "unknown command") && strstr(out, "usage: ktlsctl"), "%s", out);
	run_ctl("2>/dev/null", &st);
	cr_expect_eq(st, 2, "no command is a usage error");
	out = run_ctl("probe --bogus 2>&1", &st);
	cr_expect_eq(st, 2);
	cr_expect(strstr(out, "--bogus") != NULL, "%s", out);
}

/* ---- ktlsctl demo: what `make run` shows after the probe ------------------- */

/* Value of "key: " in ktlsctl's output (out starts with a newline). */
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

static void demo(const char *args, const char *version)
{
	static char out[16384 + 2];
	char v[512], h[512], cmd[64];
	const char *buf = out + 1;
	int st, err = oracle_ulp_err();
	const char *want = err ? "user" : "sw";

	snprintf(cmd, sizeof(cmd), "demo %s", args);
	out[0] = '\n';
	strcpy(out + 1, run_ctl(cmd, &st)); /* run_ctl's buffer is 16384 */
	cr_assert_eq(st, 0, "ktlsctl demo %s exited %d:%s", args, st, buf);
	cr_assert_eq(field(out, "version", v, sizeof(v)), 0, "%s", buf);
	cr_expect_str_eq(v, version);
	cr_assert_eq(field(out, "cipher", v, sizeof(v)), 0);
	cr_expect(strstr(v, "GCM") || strstr(v, "CHACHA20"), "cipher %s", v);
	for (int i = 0; i < 4; i++) {
		static const char *const k[4] = { "client_tx", "client_rx", "server_tx", "server_rx" };

		cr_assert_eq(field(out, k[i], v, sizeof(v)), 0, "%s", buf);
		cr_expect_str_eq(v, want, "%s: %s", k[i], v);
	}
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "server_fallback" : "client_fallback";

		cr_assert_eq(field(out, k, v, sizeof(v)), 0);
		if (err) {
			/* A real reason: the kernel's refusal, not a placeholder. */
			cr_expect(strcmp(v, "none") && !strstr(v, "not requested"), "%s: %s", k, v);
			cr_expect(strstr(v, "TCP_ULP") || strstr(v, "tls") || strstr(v, "kTLS"),
				  "%s does not name the kernel's refusal: %s", k, v);
		} else {
			cr_expect_str_eq(v, "none", "%s: %s", k, v);
		}
	}
	cr_assert_eq(field(out, "sha256_sent", v, sizeof(v)), 0, "%s", buf);
	cr_assert_eq(field(out, "sha256_received", h, sizeof(h)), 0);
	cr_expect_eq(strlen(v), 64);
	cr_expect_str_eq(v, h);
	cr_assert_eq(field(out, "shutdown", v, sizeof(v)), 0);
	cr_expect(strstr(v, "clean") != NULL);
	cr_assert_eq(field(out, "result", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "ok");
}

Test(probe_host, demo_tls13, .timeout = 60)
{
	demo("", "TLSv1.3");
}

Test(probe_host, demo_tls12, .timeout = 60)
{
	demo("--tls1.2", "TLSv1.2");
}

Test(probe_host, demo_bad_args)
{
	int st;
	char *out = run_ctl("demo --bytes 0 2>&1", &st);

	cr_expect_eq(st, 2);
	cr_expect(strstr(out, "--bytes") != NULL, "%s", out);
	out = run_ctl("demo --frobnicate 2>&1", &st);
	cr_expect_eq(st, 2);
	cr_expect(strstr(out, "--frobnicate") != NULL, "%s", out);
}
