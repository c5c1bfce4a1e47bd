/*
 * interop_server.c - our server against third-party clients: openssl
 * s_client and gnutls-cli (data through their stdin/stdout), a Python ssl
 * client, and curl speaking HTTP/1.1 (a POST up, the response down).
 * TLS 1.2 and 1.3 x AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 pinned on
 * the client (Python 1.3: on our side); 1 MiB each way over a blocking
 * socket, checked by SHA-256, then close_notify.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"
#include "ktls.h"

#define LEN CT_MIB

TestSuite(interop_server, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

/* Printable lines (for peers that treat stdin as text). */
static void fill_text(unsigned char *buf, size_t len, unsigned seed)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	tu_fill(buf, len, seed);
	for (size_t i = 0; i < len; i++)
		buf[i] = i % 64 == 63 ? '\n' : (unsigned char)al[buf[i] % 64];
}

/* Accept one connection (10 s) and run a blocking handshake; check the cell. */
static ktls_conn *accept_cell(int l, ktls_ctx **ctxp, const struct ct_cell *cell, int pin_ours)
{
	struct pollfd p = { .fd = l, .events = POLLIN };
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	struct ktls_info info;
	ktls_conn *c;
	int fd;

	cr_assert(ctx);
	if (pin_ours)
		cr_assert_eq(ct_pin_ctx(ctx, cell), 0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(poll(&p, 1, 10000), 1, "the client never connected");
	fd = accept(l, NULL, NULL);
	cr_assert_geq(fd, 0);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_conn_handshake(c), 0, "handshake: %s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &info), 0);
	cr_expect_eq(info.version, cell->version);
	cr_expect_str_eq(info.cipher, cell->openssl);
	cr_expect_eq(info.rx, KTLS_MODE_USER);
	cr_expect_str_eq(info.fallback_reason, "offload not requested");
	*ctxp = ctx;
	return c;
}

/* How the client ends: answers our close_notify, or may just close. */
enum { END_ANY, END_CLOSE_NOTIFY, END_NOTIFY_OR_CLOSE };

static void done(ktls_ctx *ctx, ktls_conn *c, int end)
{
	int fd = ktls_conn_fd(c);
	ssize_t r;

	cr_expect_eq(ktls_conn_shutdown(c), 0, "shutdown: %s", ktls_conn_error(c));
	if (end == END_CLOSE_NOTIFY)
		cr_expect_eq(ct_read_eof(c, 10000), 0, "the client's close_notify: %s",
			     ktls_conn_error(c));
	if (end == END_NOTIFY_OR_CLOSE) {
		/* Either way it must be named right, never data. */
		r = ct_read_eof(c, 10000);
		cr_expect(r == 0 || (r == -1 && strstr(ktls_conn_error(c), "truncation")),
			  "%zd %s", r, ktls_conn_error(c));
	}
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
}

/*
 * A client that sends its stdin and prints what it receives: we read A,
 * send B, close; its stdout must be B.
 */
static void stdio_client(char *const argv[], int l, const struct ct_cell *cell, int text, int end)
{
	unsigned char *a = malloc(LEN), *b = malloc(LEN), *rx = malloc(LEN), *out = malloc(LEN + 1);
	struct ct_pipe pin, pout;
	int to, from;
	ktls_ctx *ctx;
	ktls_conn *c;
	char h1[65], h2[65];

	if (text) {
		fill_text(a, LEN, 1);
		fill_text(b, LEN, 2);
	} else {
		tu_fill(a, LEN, 1);
		tu_fill(b, LEN, 2);
	}
	ct_peer = tu_spawn(argv, &to, &from);
	cr_assert_gt(ct_peer, 0);
	pin = (struct ct_pipe){ .fd = to, .buf = a, .len = LEN };
	pout = (struct ct_pipe){ .fd = from, .buf = out, .len = LEN + 1 };
	ct_pipe_start(&pin, 1);
	ct_pipe_start(&pout, 0);
	c = accept_cell(l, &ctx, cell, 0);
	cr_assert_eq(ct_read_full(c, rx, LEN), 0);
	cr_assert_eq(ct_write_full(c, b, LEN), 0);
	done(ctx, c, end);
	cr_expect_eq(ct_pipe_join(&pout, 10000), 0, "the client did not exit after close_notify");
	cr_expect_eq(ct_pipe_join(&pin, 10000), 0);
	tu_sha256_hex(a, LEN, h1);
	tu_sha256_hex(rx, LEN, h2);
	cr_expect_str_eq(h2, h1, "what we received");
	tu_sha256_hex(b, LEN, h1);
	tu_sha256_hex(out, pout.done, h2);
	cr_expect_str_eq(h2, h1, "what the client printed (%zu bytes)", pout.done);
	close(to);
	close(from);
	free(a);
	free(b);
	free(rx);
	free(out);
}

static void s_client_cell(int v, int ci)
{
	struct ct_cell cell = ct_cell(v, ci);
	int port = 0, l = tu_listen(&port);
	char target[32];

	cr_assert_geq(l, 0);
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_client", "-connect", target, "-servername", "localhost",
			 "-verify_hostname", "localhost", "-verify_return_error", "-CAfile",
			 (char *)tu_cert("ca.pem"), "-quiet", "-nocommands",
			 v == KTLS_TLS1_3 ? "-tls1_3" : "-tls1_2",
			 v == KTLS_TLS1_3 ? "-ciphersuites" : "-cipher", (char *)cell.openssl, NULL };
	stdio_client(argv, l, &cell, 0, END_CLOSE_NOTIFY);
	close(l);
}

static void gnutls_cell(int v, int ci)
{
	struct ct_cell cell = ct_cell(v, ci);
	int port = 0, l = tu_listen(&port);
	char portarg[16], prio[160];

	cr_assert_geq(l, 0);
	snprintf(portarg, sizeof(portarg), "%d", port);
	ct_gnutls_priority(&cell, prio, sizeof(prio));
	char *argv[] = { "gnutls-cli", "-p", portarg, "--x509cafile", (char *)tu_cert("ca.pem"),
			 "--verify-hostname", "localhost", "--sni-hostname", "localhost",
			 "--priority", prio, "--logfile", "/dev/null", "127.0.0.1", NULL };
	/* gnutls-cli exits on our close_notify without answering it. */
	stdio_client(argv, l, &cell, 1, END_NOTIFY_OR_CLOSE);
	close(l);
}

/* Sends n bytes of its stdin, reads n back, expects close_notify, answers. */
static const char py_client[] =
	"import hashlib, socket, ssl, sys\n"
	"port, ver, cipher, ca, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])\n"
	"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
	"ctx.load_verify_locations(ca)\n"
	"if ver == '1.2':\n"
	"    ctx.maximum_version = ssl.TLSVersion.TLSv1_2\n"
	"    ctx.set_ciphers(cipher)\n"
	"else:\n"
	"    ctx.minimum_version = ssl.TLSVersion.TLSv1_3\n"
	"data = sys.stdin.buffer.read(n)\n"
	"t = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port)), server_hostname='localhost')\n"
	"t.sendall(data)\n"
	"h = hashlib.sha256()\n"
	"got = 0\n"
	"while got < n:\n"
	"    d = t.recv(n - got)\n"
	"    if not d:\n"
	"        sys.exit('early EOF')\n"
	"    h.update(d)\n"
	"    got += len(d)\n"
	"if t.recv(10) != b'':\n"
	"    sys.exit('data after the expected end')\n"
	"v = t.version()\n"
	"t.unwrap()\n"
	"print(h.hexdigest(), v, flush=True)\n";

static void python_cell(int v, int ci)
{
	struct ct_cell cell = ct_cell(v, ci);
	int port = 0, l = tu_listen(&port), to, from;
	char portarg[16], nArg[16], out[256] = "", h[65];
	unsigned char *a = malloc(LEN), *b = malloc(LEN), *rx = malloc(LEN);
	struct ct_pipe pin;
	ktls_ctx *ctx;
	ktls_conn *c;
	size_t got = 0;
	ssize_t n;

	cr_assert_geq(l, 0);
	snprintf(portarg, sizeof(portarg), "%d", port);
	snprintf(nArg, sizeof(nArg), "%d", LEN);
	char *argv[] = { (char *)ct_python(), "-c", (char *)py_client, portarg,
			 v == KTLS_TLS1_3 ? "1.3" : "1.2", (char *)cell.openssl,
			 (char *)tu_cert("ca.pem"), nArg, NULL };
	tu_fill(a, LEN, 5);
	tu_fill(b, LEN, 6);
	ct_peer = tu_spawn(argv, &to, &from);
	cr_assert_gt(ct_peer, 0);
	pin = (struct ct_pipe){ .fd = to, .buf = a, .len = LEN, .close_after = 1 };
	ct_pipe_start(&pin, 1);
	/* Python cannot pin a TLS 1.3 suite: we do, on our side. */
	c = accept_cell(l, &ctx, &cell, v == KTLS_TLS1_3);
	cr_assert_eq(ct_read_full(c, rx, LEN), 0);
	cr_expect_eq(memcmp(rx, a, LEN), 0, "what we received");
	cr_assert_eq(ct_write_full(c, b, LEN), 0);
	done(ctx, c, END_CLOSE_NOTIFY);
	while (got < sizeof(out) - 1 && (n = read(from, out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	int st = tu_wait(ct_peer, 10000);
	cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "python client failed: %s", out);
	tu_sha256_hex(b, LEN, h);
	cr_expect(strncmp(out, h, 64) == 0, "python got %s, we sent %s", out, h);
	cr_expect(strstr(out, v == KTLS_TLS1_3 ? "TLSv1.3" : "TLSv1.2"), "%s", out);
	ct_pipe_join(&pin, 1000);
	close(from);
	close(l);
	free(a);
	free(b);
	free(rx);
}

/* Read an HTTP/1.1 request with a Content-Length body into body (len). */
static void read_post(ktls_conn *c, unsigned char *body, size_t len)
{
	char head[4096];
	size_t hl = 0, have;
	char *end = NULL, *cl;

	while (!end) {
		cr_assert_lt(hl, sizeof(head) - 1, "request head too long");
		ssize_t r = ktls_conn_read(c, head + hl, sizeof(head) - 1 - hl);
		cr_assert_gt(r, 0, "request: %s", ktls_conn_error(c));
		hl += (size_t)r;
		head[hl] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	cr_assert(strncmp(head, "POST /upload HTTP/1.1\r\n", 23) == 0, "%.60s", head);
	cl = strcasestr(head, "\r\ncontent-length:");
	cr_assert(cl, "no Content-Length");
	cr_assert_eq(strtoul(cl + 17, NULL, 10), len);
	have = hl - (size_t)(end + 4 - head);
	cr_assert_leq(have, len);
	memcpy(body, end + 4, have);
	cr_assert_eq(ct_read_full(c, body + have, len - have), 0);
}

static void curl_cell(int v, int ci)
{
	struct ct_cell cell = ct_cell(v, ci);
	int port = 0, l = tu_listen(&port), from, fd;
	char url[64], resolve[64], data[64], path[] = "/tmp/ktls-curl-XXXXXX", hdr[128], h1[65], h2[65];
	unsigned char *a = malloc(LEN), *b = malloc(LEN), *rx = malloc(LEN), *out = malloc(LEN + 1);
	struct ct_pipe pout;
	ktls_ctx *ctx;
	ktls_conn *c;

	cr_assert_geq(l, 0);
	tu_fill(a, LEN, 7);
	tu_fill(b, LEN, 8);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(tu_write_full(fd, a, LEN), 0);
	close(fd);
	snprintf(url, sizeof(url), "https://localhost:%d/upload", port);
	snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", port);
	snprintf(data, sizeof(data), "@%s", path);
	char *argv[] = { "curl", "-sS", "--fail", "--cacert", (char *)tu_cert("ca.pem"), "--resolve",
			 resolve, "-H", "Expect:", "--data-binary", data,
			 v == KTLS_TLS1_3 ? "--tlsv1.3" : "--tlsv1.2", "--tls-max",
			 v == KTLS_TLS1_3 ? "1.3" : "1.2",
			 v == KTLS_TLS1_3 ? "--tls13-ciphers" : "--ciphers", (char *)cell.openssl,
			 "-o", "-", url, NULL };
	ct_peer = tu_spawn(argv, NULL, &from);
	cr_assert_gt(ct_peer, 0);
	pout = (struct ct_pipe){ .fd = from, .buf = out, .len = LEN + 1 };
	ct_pipe_start(&pout, 0);
	c = accept_cell(l, &ctx, &cell, 0);
	read_post(c, rx, LEN);
	unlink(path);
	cr_expect_eq(memcmp(rx, a, LEN), 0, "the POST body differs");
	snprintf(hdr, sizeof(hdr),
		 "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", LEN);
	cr_assert_eq(ct_write_full(c, hdr, strlen(hdr)), 0);
	cr_assert_eq(ct_write_full(c, b, LEN), 0);
	/* curl may drop the connection without close_notify: not ours to judge. */
	done(ctx, c, END_ANY);
	cr_expect_eq(ct_pipe_join(&pout, 10000), 0);
	int st = tu_wait(ct_peer, 10000);
	cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "curl failed");
	tu_sha256_hex(b, LEN, h1);
	tu_sha256_hex(out, pout.done, h2);
	cr_expect_str_eq(h2, h1, "curl's output (%zu bytes)", pout.done);
	close(from);
	close(l);
	free(a);
	free(b);
	free(rx);
	free(out);
}

#define CELLS(peer)                                                                     \
	Test(interop_server, peer##_tls13_aes128) { peer##_cell(KTLS_TLS1_3, 0); }      \
	Test(interop_server, peer##_tls13_aes256) { peer##_cell(KTLS_TLS1_3, 1); }      \
	Test(interop_server, peer##_tls13_chacha) { peer##_cell(KTLS_TLS1_3, 2); }      \
	Test(interop_server, peer##_tls12_aes128) { peer##_cell(KTLS_TLS1_2, 0); }      \
	Test(interop_server, peer##_tls12_aes256) { peer##_cell(KTLS_TLS1_2, 1); }      \
	Test(interop_server, peer##_tls12_chacha) { peer##_cell(KTLS_TLS1_2, 2); }

CELLS(s_client)
CELLS(gnutls)
CELLS(python)
CELLS(curl)
