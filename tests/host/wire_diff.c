/*
 * wire_diff.c - on the wire, an offloaded connection behaves exactly like
 * a userspace one.
 *
 * tests/common/tls_probe.py is a TLS client of its own (key schedules and
 * records written by hand, not a TLS library) that, after a real
 * handshake, sends adversarial but well-specified traffic: tampered,
 * oversize, empty and padded records, records split and coalesced,
 * KeyUpdates valid and not, unexpected handshake messages, alerts.  Each
 * probe ends with an HTTP request and reports what it saw: responses,
 * alerts, KeyUpdates, how the connection ended.
 *
 * Every probe runs against two servers, each with offload and without:
 * ktlsd (io_uring reads, ktls_uring_recv_result) and a plain libktls server
 * in this process (ktls_conn_read).  The two reports must be identical,
 * for TLS 1.2 and 1.3, AES-128-GCM and ChaCha20-Poly1305.  The only
 * allowed differences are those the kernel's record layer forces, listed
 * in kernel_diffs[] and kernel-notes: before Linux 6.14 kTLS cannot rekey,
 * so a KeyUpdate ends an offloaded connection with internal_error; a few
 * malformed records get a different alert.  Absolute expectations
 * (the RFC's alert for each probe) hold for both, so on a host without
 * kTLS, where both sides are userspace, the suite still checks something.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "ktls.h"

#include "../common/conn_test.h"
#include "../common/testutil.h"

#define BODY_LEN 40960
#define PROBE_OUT (256 * 1024)

static const char *probe_py = "tests/common/tls_probe.py";

/* ---- the plain libktls server: ktls_conn_read, blocking sockets ---------- */

struct lib_srv {
	int lfd, port, offload;
	atomic_int stop;
	ktls_ctx *ctx;
	pthread_t th;
};

static unsigned char body[BODY_LEN];

/* Read the client's FIN (or give up) so that close(2) sends no RST. */
static void drain(int fd)
{
	char b[4096];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (poll(&p, 1, 2000) > 0 && read(fd, b, sizeof(b)) > 0)
		;
}

static void lib_serve_one(struct lib_srv *s, int fd)
{
	struct timeval tv = { .tv_sec = 10 };
	char req[4096];
	size_t got = 0;
	ktls_conn *c;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c = ktls_conn_accept(s->ctx, fd);
	if (!c || ct_handshake(c, 10000) != 0 || (s->offload && ktls_conn_offload(c) != 0))
		goto out;
	while (got < sizeof(req) - 1) {
		ssize_t n = ktls_conn_read(c, req + got, sizeof(req) - 1 - got);

		if (n <= 0) /* on -1 the library sent the alert the failure called for */
			goto out;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n")) {
			char head[128];
			int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
					  "Connection: close\r\n\r\n", BODY_LEN);

			if (ct_write_full(c, head, (size_t)hl) == 0 && ct_write_full(c, body, sizeof(body)) == 0)
				ktls_conn_shutdown(c);
			goto out;
		}
	}
out:
	shutdown(fd, SHUT_WR);
	drain(fd);
	ktls_conn_free(c);
	close(fd);
}

static void *lib_srv_main(void *arg)
{
	struct lib_srv *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd >= 0)
			lib_serve_one(s, fd);
	}
	return NULL;
}

static void lib_srv_start(struct lib_srv *s, int offload)
{
	memset(s, 0, sizeof(*s));
	s->offload = offload;
	s->ctx = ct_server_ctx("server-ec");
	cr_assert(s->ctx);
	s->lfd = tu_listen(&s->port);
	cr_assert_geq(s->lfd, 0);
	cr_assert_eq(pthread_create(&s->th, NULL, lib_srv_main, s), 0);
}

static void lib_srv_stop(struct lib_srv *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
	close(s->lfd);
	ktls_ctx_free(s->ctx);
}

/* ---- ktlsd: the io_uring path ------------------------------------------------- */

struct kd {
	pid_t pid;
	int port;
	char log[256];
};

static char root[128];

static void kd_start(struct kd *k, int offload)
{
	static char listen[64], cert[400], key[400];
	const char *bin = tu_build("ktlsd");

	snprintf(k->log, sizeof(k->log), "%s/ktlsd-%d-%d.log", root, (int)getpid(), offload);
	for (int tries = 0; tries < 5; tries++) {
		char *argv[] = { (char *)bin, "serve", "--root", root, "--listen", listen, "--cert", cert,
				 "--key", key, "--foreground", "--workers", "1", "--handshake-timeout", "10",
				 "--request-timeout", "10", offload ? NULL : "--no-offload", NULL };

		k->port = tu_free_port();
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", k->port);
		snprintf(cert, sizeof(cert), "%s", tu_cert("server-ec.pem"));
		snprintf(key, sizeof(key), "%s", tu_cert("server-ec.key"));
		k->pid = fork();
		cr_assert_geq(k->pid, 0);
		if (k->pid == 0) {
			int fd = open(k->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

			dup2(fd, 1);
			dup2(fd, 2);
			execv(bin, argv);
			_exit(127);
		}
		for (int i = 0; i < 100; i++) {
			if (tu_wait_port(k->port, 100) == 0)
				return;
			if (waitpid(k->pid, NULL, WNOHANG) == k->pid)
				break; /* the free port was taken meanwhile: again */
		}
	}
	cr_assert_fail("ktlsd did not start (log %s)", k->log);
}

static void kd_stop(struct kd *k)
{
	tu_stop(k->pid, 10000);
}

/* ---- probes -------------------------------------------------------------------- */

/* Run every probe of this version and cipher against port: the JSON lines. */
static char *run_probes(int port, const char *version, const char *cipher)
{
	char cmd[512];
	char *out = malloc(PROBE_OUT);
	int rc;

	cr_assert(out);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s --port %d --version %s --cipher %s "
		 "--probe all --timeout %d 2>/dev/null", probe_py, port, version, cipher,
		 tu_in_vm() ? 20 : 5);
	rc = tu_run(cmd, out, PROBE_OUT);
	cr_assert_eq(rc, 0, "tls_probe.py exited %d: %s", rc, out);
	return out;
}

/* KTLS_WIRE_SHOW=1 prints both reports, to see what the probes saw. */
static void show_reports(const char *who, const char *version, const char *cipher, const char *off,
			 const char *user)
{
	if (getenv("KTLS_WIRE_SHOW"))
		fprintf(stderr, "== %s %s %s offloaded:\n%s== userspace:\n%s", who, version, cipher,
			off, user);
}

/* The line of one probe in a report, copied into line (NULL if absent). */
static const char *probe_line(const char *out, const char *name, char *line, size_t cap)
{
	char key[96];
	const char *p, *e;

	snprintf(key, sizeof(key), "\"probe\": \"%s\"", name);
	p = strstr(out, key);
	if (!p)
		return NULL;
	while (p > out && p[-1] != '\n')
		p--;
	e = strchr(p, '\n');
	snprintf(line, cap, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
	return line;
}

/*
 * What RFC 8446/5246 and OpenSSL make every server do, offloaded or not:
 * a substring the report must hold.  Probes not listed are only compared.
 */
static const struct expect {
	const char *probe, *has;
} expects[] = {
	{ "baseline", "\"responses\": [[200, 40960," },
	{ "split_bytes", "\"responses\": [[200, 40960," },
	{ "split_header", "\"responses\": [[200, 40960," },
	{ "coalesce", "\"responses\": [[200, 40960," },
	{ "zero_len", "\"responses\": [[200, 40960," },
	{ "tamper_ciphertext", "\"alerts\": [[2, 20]]" },
	{ "tamper_tag", "\"alerts\": [[2, 20]]" },
	{ "oversize_ciphertext", "\"alerts\": [[2, 22]]" },
	{ "oversize_plaintext", "\"alerts\": [[2, 22]]" },
	{ "keyupdate", "\"responses\": [[200, 40960," },
	{ "keyupdate_requested", "\"keyupdates\": 1," },
	{ "keyupdate_x3", "\"responses\": [[200, 40960," },
	{ "keyupdate_early", "\"keyupdates\": 1," },
	{ "keyupdate_invalid", "\"responses\": []" },
	{ "keyupdate_badlen", "\"alerts\": [[2, 47]]" },
};

/*
 * Where the kernel's record layer answers differently and nothing in
 * userspace can change it (kernel-notes/README.md, "After an RX error"):
 * what the offloaded side shows instead.  version NULL: both.
 */
static const struct kernel_diff {
	const char *probe, *version, *offload_has, *why;
} kernel_diffs[] = {
	{ "unexpected_ccs", NULL, "\"alerts\": [[2, 20]]",
	  "kTLS decrypts every record, so a plaintext ChangeCipherSpec fails as EBADMSG" },
	{ "padding_only", "1.3", "\"alerts\": [[2, 20]]",
	  "kTLS reports a record without a content type as EBADMSG" },
	{ "oversize_padding", "1.3", "\"alerts\": [[2, 22]]",
	  "kTLS enforces RFC 8446 5.4 (inner plaintext <= 2^14 + 1); OpenSSL accepts it" },
	{ "tamper_type", "1.3", "\"responses\": [[200, 40960,",
	  "kTLS builds the TLS 1.3 AAD with type 23 whatever the header says" },
};

/* KeyUpdates a kernel without kTLS rekey cannot follow. */
static int needs_rekey(const char *probe)
{
	return !strcmp(probe, "keyupdate") || !strcmp(probe, "keyupdate_requested") ||
	       !strcmp(probe, "keyupdate_x3") || !strcmp(probe, "keyupdate_early");
}

/* Can this kernel rekey kTLS?  Only asked where offload really happens. */
static int kernel_rekeys(void)
{
	const char *r = getenv("KTLS_VM_RELEASE");
	int maj = 0, min = 0;

	if (!r || sscanf(r, "%d.%d", &maj, &min) != 2)
		return 1; /* the host: both sides userspace */
	return maj > 6 || (maj == 6 && min >= 14);
}

/* The documented kernel answer for this probe, NULL when it must be identical. */
static const char *kernel_answer(const char *probe, const char *version)
{
	if (!tu_expect_ktls())
		return NULL; /* no kTLS: both sides are OpenSSL */
	if (needs_rekey(probe) && !kernel_rekeys())
		return "\"alerts\": [[2, 80]]"; /* internal_error: the new key was refused */
	for (size_t i = 0; i < sizeof(kernel_diffs) / sizeof(kernel_diffs[0]); i++)
		if (!strcmp(kernel_diffs[i].probe, probe) &&
		    (!kernel_diffs[i].version || !strcmp(kernel_diffs[i].version, version)))
			return kernel_diffs[i].offload_has;
	return NULL;
}

static void compare(const char *server, const char *version, const char *cipher, int port_off,
		    int port_user)
{
	char *off = run_probes(port_off, version, cipher), *user = run_probes(port_user, version, cipher);
	char list_cmd[256], names[4096], lo[4096], lu[4096];
	const char *want;
	int n = 0;

	show_reports(server, version, cipher, off, user);
	snprintf(list_cmd, sizeof(list_cmd), "/usr/bin/python3 %s --list --version %s", probe_py,
		 version);
	cr_assert_eq(tu_run(list_cmd, names, sizeof(names)), 0, "%s", names);
	for (char *sv = NULL, *name = strtok_r(names, "\n", &sv); name; name = strtok_r(NULL, "\n", &sv)) {
		const char *a = probe_line(off, name, lo, sizeof(lo));
		const char *b = probe_line(user, name, lu, sizeof(lu));

		n++;
		cr_assert(a && b, "%s %s %s: probe %s missing from a report:\n%s\n---\n%s", server,
			  version, cipher, name, off, user);
		for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++)
			if (!strcmp(expects[i].probe, name))
				cr_expect(strstr(b, expects[i].has), "%s %s %s userspace: %s lacks %s\n%s",
					  server, version, cipher, name, expects[i].has, b);
		if ((want = kernel_answer(name, version))) {
			cr_expect(strstr(a, want), "%s %s %s: %s offloaded should show the documented "
				  "kernel answer %s:\n%s", server, version, cipher, name, want, a);
			continue;
		}
		cr_expect_str_eq(a, b, "%s %s %s: probe %s differs\n offload: %s\n    user: %s", server,
				 version, cipher, name, a, b);
	}
	cr_expect_gt(n, 10, "only %d probes listed", n);
	free(off);
	free(user);
}

/* ---- the other direction: our client against the probe as a server ----------- */

/*
 * One connection of our client to the probe server: handshake, offload (or
 * not), the request, then everything read until the end.  What it saw,
 * as one line: bytes and their hash, and how reading ended.
 */
static void lib_client_one(int port, int offload, const struct ct_cell *cell, char *obs, size_t cap)
{
	static const char req[] = "GET /probe.bin HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct timeval tv = { .tv_sec = 10 };
	unsigned char buf[16384], md[32];
	char hex[65];
	unsigned mdlen = 0;
	size_t total = 0;
	ssize_t r = -1;
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	ktls_ctx *ctx = ct_client_ctx();
	ktls_conn *c = NULL;
	int fd = tu_connect(port);

	cr_assert(h && ctx && fd >= 0);
	cr_assert_eq(ct_pin_ctx(ctx, cell), 0, "%s", ktls_ctx_error(ctx));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	c = ktls_conn_new(ctx, fd, "localhost");
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	if (ct_handshake(c, 10000) != 0) {
		snprintf(obs, cap, "handshake failed: %s", ktls_conn_error(c));
		goto out;
	}
	if (offload)
		cr_assert_eq(ktls_conn_offload(c), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ct_write_full(c, req, sizeof(req) - 1), 0, "%s", ktls_conn_error(c));
	while ((r = ktls_conn_read(c, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(h, buf, (size_t)r);
		total += (size_t)r;
	}
	EVP_DigestFinal_ex(h, md, &mdlen);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (r == 0) {
		ktls_conn_shutdown(c);
		snprintf(obs, cap, "client read %zu bytes sha %.16s, then close_notify", total, hex);
	} else {
		snprintf(obs, cap, "client read %zu bytes sha %.16s, then %s (peer alert %d)", total, hex,
			 ktls_error_name(ktls_conn_error_code(c)), ktls_conn_peer_alert(c));
	}
out:
	shutdown(fd, SHUT_WR);
	drain(fd);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
	EVP_MD_CTX_free(h);
}

/* Our client through every server-side probe: "probe: client ... | server JSON" lines. */
static char *client_run(const char *version, const char *cipher, int offload, char *names)
{
	char v[8], cp[16];
	char *argv[] = { "/usr/bin/python3", (char *)probe_py, "--serve", "--cert",
			 (char *)tu_cert("server-ec.pem"), "--key", (char *)tu_cert("server-ec.key"),
			 "--version", v, "--cipher", cp, "--probe", "all", "--timeout", "10", NULL };
	struct ct_cell cell = ct_cell(!strcmp(version, "1.3") ? KTLS_TLS1_3 : KTLS_TLS1_2,
				      !strcmp(cipher, "chacha20") ? 2 : 0);
	char *out = calloc(1, PROBE_OUT), line[4096], obs[512], *list = strdup(names);
	size_t used = 0;
	int from, port = 0;
	FILE *f;
	pid_t pid;

	cr_assert(out && list);
	snprintf(v, sizeof(v), "%s", version);
	snprintf(cp, sizeof(cp), "%s", cipher);
	pid = tu_spawn(argv, NULL, &from);
	cr_assert_gt(pid, 0);
	f = fdopen(from, "r");
	cr_assert(f && fgets(line, sizeof(line), f) && sscanf(line, "PORT %d", &port) == 1,
		  "the probe server did not start");
	for (char *sv = NULL, *name = strtok_r(list, "\n", &sv); name; name = strtok_r(NULL, "\n", &sv)) {
		lib_client_one(port, offload, &cell, obs, sizeof(obs));
		cr_assert(fgets(line, sizeof(line), f), "probe server ended before %s", name);
		line[strcspn(line, "\n")] = '\0';
		used += (size_t)snprintf(out + used, PROBE_OUT - used, "\"probe\": \"%s\" %s | %s\n",
					 name, obs, line);
	}
	fclose(f);
	tu_wait(pid, 10000);
	free(list);
	return out;
}

/*
 * Where the kernel answers differently on the client side too: what the
 * offloaded client's line shows instead (same causes as kernel_diffs).
 */
static const struct kernel_diff client_diffs[] = {
	{ "unexpected_ccs", NULL, "then protocol (peer alert -1)", "EBADMSG, see kernel_diffs" },
	{ "padding_only", "1.3", "then protocol (peer alert -1)", "EBADMSG, see kernel_diffs" },
	{ "oversize_padding", "1.3", "then protocol (peer alert -1)", "RFC 8446 5.4, see kernel_diffs" },
};

static const char *client_kernel_answer(const char *probe, const char *version)
{
	if (!tu_expect_ktls())
		return NULL;
	if ((!strcmp(probe, "keyupdate") || !strcmp(probe, "keyupdate_requested")) && !kernel_rekeys())
		return "then kernel";
	for (size_t i = 0; i < sizeof(client_diffs) / sizeof(client_diffs[0]); i++)
		if (!strcmp(client_diffs[i].probe, probe) &&
		    (!client_diffs[i].version || !strcmp(client_diffs[i].version, version)))
			return client_diffs[i].offload_has;
	return NULL;
}

static void client_case(const char *version, const char *cipher)
{
	char list_cmd[256], names[4096], lo[4096], lu[4096];
	char *off, *user;
	const char *want;
	int n = 0;

	snprintf(list_cmd, sizeof(list_cmd), "/usr/bin/python3 %s --serve --list --version %s",
		 probe_py, version);
	cr_assert_eq(tu_run(list_cmd, names, sizeof(names)), 0, "%s", names);
	off = client_run(version, cipher, 1, names);
	user = client_run(version, cipher, 0, names);
	show_reports("client", version, cipher, off, user);
	for (char *sv = NULL, *name = strtok_r(names, "\n", &sv); name; name = strtok_r(NULL, "\n", &sv)) {
		const char *a = probe_line(off, name, lo, sizeof(lo));
		const char *b = probe_line(user, name, lu, sizeof(lu));

		n++;
		cr_assert(a && b, "client %s %s: probe %s missing", version, cipher, name);
		cr_expect(!strstr(b, "\"error\""), "client %s %s: the probe failed: %s", version, cipher, b);
		if ((want = client_kernel_answer(name, version))) {
			cr_expect(strstr(a, want), "client %s %s: %s offloaded should show the documented "
				  "kernel answer %s:\n%s", version, cipher, name, want, a);
			continue;
		}
		cr_expect_str_eq(a, b, "client %s %s: probe %s differs\n offload: %s\n    user: %s",
				 version, cipher, name, a, b);
	}
	cr_expect_gt(n, 10, "only %d probes listed", n);
	free(off);
	free(user);
}

/* ---- the matrix ---------------------------------------------------------------- */

static void init(void)
{
	int fd;

	signal(SIGPIPE, SIG_IGN);
	tu_fill(body, sizeof(body), 7);
	snprintf(root, sizeof(root), "/tmp/ktls-wire-%d", (int)getpid());
	mkdir(root, 0755);
	{
		char p[200];

		snprintf(p, sizeof(p), "%s/probe.bin", root);
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(tu_write_full(fd, body, sizeof(body)), 0);
		close(fd);
	}
}

static void fini(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	(void)!system(cmd);
}

TestSuite(wire_diff, .init = init, .fini = fini, .timeout = 600);

static void ktlsd_case(const char *version, const char *cipher)
{
	struct kd off, user;

	kd_start(&off, 1);
	kd_start(&user, 0);
	compare("ktlsd", version, cipher, off.port, user.port);
	kd_stop(&off);
	kd_stop(&user);
}

static void lib_case(const char *version, const char *cipher)
{
	struct lib_srv off, user;

	lib_srv_start(&off, 1);
	lib_srv_start(&user, 0);
	compare("libktls", version, cipher, off.port, user.port);
	lib_srv_stop(&off);
	lib_srv_stop(&user);
}

Test(wire_diff, ktlsd_tls13_aes128gcm) { ktlsd_case("1.3", "aes128gcm"); }
Test(wire_diff, ktlsd_tls13_chacha20) { ktlsd_case("1.3", "chacha20"); }
Test(wire_diff, ktlsd_tls12_aes128gcm) { ktlsd_case("1.2", "aes128gcm"); }
Test(wire_diff, ktlsd_tls12_chacha20) { ktlsd_case("1.2", "chacha20"); }
Test(wire_diff, libktls_tls13_aes128gcm) { lib_case("1.3", "aes128gcm"); }
Test(wire_diff, libktls_tls13_chacha20) { lib_case("1.3", "chacha20"); }
Test(wire_diff, libktls_tls12_aes128gcm) { lib_case("1.2", "aes128gcm"); }
Test(wire_diff, libktls_tls12_chacha20) { lib_case("1.2", "chacha20"); }
Test(wire_diff, client_tls13_aes128gcm) { client_case("1.3", "aes128gcm"); }
Test(wire_diff, client_tls13_chacha20) { client_case("1.3", "chacha20"); }
Test(wire_diff, client_tls12_aes128gcm) { client_case("1.2", "aes128gcm"); }
Test(wire_diff, client_tls12_chacha20) { client_case("1.2", "chacha20"); }
