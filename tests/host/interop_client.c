/*
 * interop_client.c - our client against third-party servers: openssl
 * s_server (data through its stdin/stdout), gnutls-serv --echo and a
 * Python ssl echo server; TLS 1.2 and 1.3 x AES-128-GCM, AES-256-GCM,
 * ChaCha20-Poly1305 pinned on the peer; 1 MiB each way on a non-blocking
 * socket, checked by SHA-256, then close_notify both ways.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"
#include "ktls.h"

#define LEN CT_MIB

/* The peer of the running test, stopped even when an assertion fails. */

TestSuite(interop_client, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

/* Printable lines: GnuTLS's echo server handles C strings, not binary. */
static void fill_text(unsigned char *buf, size_t len, unsigned seed)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	tu_fill(buf, len, seed);
	for (size_t i = 0; i < len; i++)
		buf[i] = i % 64 == 63 ? '\n' : (unsigned char)al[buf[i] % 64];
}

/* Connect, handshake (non-blocking), check the negotiated cell. */
static ktls_conn *connect_cell(ktls_ctx **ctxp, int port, const struct ct_cell *cell, int pin_ours)
{
	ktls_ctx *ctx = ct_client_ctx();
	struct ktls_info info;
	ktls_conn *c;
	int fd;

	cr_assert(ctx);
	if (pin_ours)
		cr_assert_eq(ct_pin_ctx(ctx, cell), 0, "%s", ktls_ctx_error(ctx));
	fd = ct_connect_retry(port, 10000);
	cr_assert_geq(fd, 0, "peer never listened on %d", port);
	c = ktls_conn_connect(ctx, fd, "localhost");
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	ct_set_nonblock(fd, 1);
	cr_assert_eq(ct_handshake(c, 10000), 0, "handshake: %s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &info), 0);
	cr_expect_eq(info.version, cell->version);
	cr_expect_str_eq(info.cipher, cell->openssl);
	cr_expect_eq(info.tx, KTLS_MODE_USER);
	cr_expect_str_eq(info.fallback_reason, "offload not requested");
	*ctxp = ctx;
	return c;
}

static void finish(ktls_ctx *ctx, ktls_conn *c)
{
	int fd = ktls_conn_fd(c);
	long long deadline = ct_now_ms() + 10000;
	int r;

	while ((r = ktls_conn_shutdown(c)) == KTLS_WANT_WRITE)
		cr_assert_eq(ct_wait(fd, r, deadline), 0);
	cr_expect_eq(r, 0, "shutdown: %s", ktls_conn_error(c));
	/* The peer answers our close_notify with its own: a clean 0. */
	cr_expect_eq(ct_read_eof(c, 10000), 0, "after shutdown: %s", ktls_conn_error(c));
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
}

/* ---- openssl s_server: we send A (its stdout), it sends B (its stdin) ---- */

static void s_server_cell(int v, int ci)
{
	struct ct_cell cell = ct_cell(v, ci);
	int port = tu_free_port(), to, from;
	char portarg[32];
	unsigned char *a = malloc(LEN), *b = malloc(LEN), *rx = malloc(LEN), *out = malloc(LEN);
	char *argv[] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", portarg,
			 "-cert", (char *)tu_cert("server-ec.pem"), "-key",
			 (char *)tu_cert("server-ec.key"),
			 v == KTLS_TLS1_3 ? "-tls1_3" : "-tls1_2",
			 v == KTLS_TLS1_3 ? "-ciphersuites" : "-cipher", (char *)cell.openssl, NULL };
	struct ct_pipe pin, pout;
	ktls_ctx *ctx;
	ktls_conn *c;
	pid_t pid;
	char h1[65], h2[65];

	tu_fill(a, LEN, 1);
	tu_fill(b, LEN, 2);
	snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", port);
	ct_peer = pid = tu_spawn(argv, &to, &from);
	cr_assert_gt(pid, 0);
	pin = (struct ct_pipe){ .fd = to, .buf = b, .len = LEN };
	pout = (struct ct_pipe){ .fd = from, .buf = out, .len = LEN };
	c = connect_cell(&ctx, port, &cell, 0);
	ct_pipe_start(&pin, 1);
	ct_pipe_start(&pout, 0);
	cr_assert_eq(ct_pump(c, a, LEN, rx, LEN, 30000), 0);
	cr_assert_eq(ct_pipe_join(&pout, 10000), 0, "s_server printed %zu bytes", pout.done);
	cr_assert_eq(ct_pipe_join(&pin, 10000), 0);
	tu_sha256_hex(a, LEN, h1);
	tu_sha256_hex(out, pout.done, h2);
	cr_expect_str_eq(h2, h1, "what s_server received");
	tu_sha256_hex(b, LEN, h1);
	tu_sha256_hex(rx, LEN, h2);
	cr_expect_str_eq(h2, h1, "what we received");
	finish(ctx, c);
	close(to);
	close(from);
	int st = tu_wait(pid, 5000);
	cr_expect(st != -1 && WIFEXITED(st), "s_server did not end after close_notify");
	tu_stop(pid, 1000);
	free(a);
	free(b);
	free(rx);
	free(out);
}

/* ---- echo servers: A goes out and comes back -------------------------------- */

static void echo_cell(pid_t pid, int port, const struct ct_cell *cell, int pin_ours, int text)
{
	unsigned char *a = malloc(LEN), *rx = malloc(LEN);
	ktls_ctx *ctx;
	ktls_conn *c;
	char h1[65], h2[65];

	if (text)
		fill_text(a, LEN, 3);
	else
		tu_fill(a, LEN, 3);
	c = connect_cell(&ctx, port, cell, pin_ours);
	cr_assert_eq(ct_pump(c, a, LEN, rx, LEN, 30000), 0);
	tu_sha256_hex(a, LEN, h1);
	tu_sha256_hex(rx, LEN, h2);
	cr_expect_str_eq(h2, h1, "echo differs");
	finish(ctx, c);
	free(a);
	free(rx);
	(void)pid;
}

static void gnutls_cell(int v, int ci)
{
	struct ct_cell cell = ct_cell(v, ci);
	int port = tu_free_port();
	char portarg[16], prio[160];
	pid_t pid;

	snprintf(portarg, sizeof(portarg), "%d", port);
	ct_gnutls_priority(&cell, prio, sizeof(prio));
	/* It logs every echoed line (stderr): keep that out of the test log. */
	char *argv[] = { "sh", "-c", "exec gnutls-serv \"$@\" >/dev/null 2>&1", "gnutls-serv", "--echo", "--crlf", "--quiet", "-p", portarg,
			 "--x509certfile", (char *)tu_cert("server-ec.pem"),
			 "--x509keyfile", (char *)tu_cert("server-ec.key"),
			 "--priority", prio, NULL };
	ct_peer = pid = tu_spawn(argv, NULL, NULL);
	cr_assert_gt(pid, 0);
	echo_cell(pid, port, &cell, 0, 1);
}

/* Echoes until close_notify, answers it, prints the SHA-256 of what it got. */
static const char py_server[] =
	"import hashlib, socket, ssl, sys\n"
	"port, ver, cipher, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]\n"
	"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"ctx.load_cert_chain(cert, key)\n"
	"if ver == '1.2':\n"
	"    ctx.maximum_version = ssl.TLSVersion.TLSv1_2\n"
	"    ctx.set_ciphers(cipher)\n"
	"else:\n"
	"    ctx.minimum_version = ssl.TLSVersion.TLSv1_3\n"
	"ls = socket.socket()\n"
	"ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"ls.bind(('127.0.0.1', port))\n"
	"ls.listen(1)\n"
	"s, _ = ls.accept()\n"
	"t = ctx.wrap_socket(s, server_side=True)\n"
	"h = hashlib.sha256()\n"
	"while True:\n"
	"    d = t.recv(65536)\n"
	"    if not d:\n"
	"        break\n"
	"    h.update(d)\n"
	"    t.sendall(d)\n"
	"v = t.version()\n"
	"t.unwrap()\n"
	"print(h.hexdigest(), v, flush=True)\n";

static void python_cell(int v, int ci)
{
	struct ct_cell cell = ct_cell(v, ci);
	int port = tu_free_port(), from;
	char portarg[16], out[256] = "";
	unsigned char *a = malloc(LEN);
	char h[65];
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	snprintf(portarg, sizeof(portarg), "%d", port);
	char *argv[] = { (char *)ct_python(), "-c", (char *)py_server, portarg,
			 v == KTLS_TLS1_3 ? "1.3" : "1.2", (char *)cell.openssl,
			 (char *)tu_cert("server-ec.pem"), (char *)tu_cert("server-ec.key"), NULL };
	ct_peer = pid = tu_spawn(argv, NULL, &from);
	cr_assert_gt(pid, 0);
	/* Python cannot pin a TLS 1.3 suite: we do, on our side. */
	echo_cell(pid, port, &cell, v == KTLS_TLS1_3, 0);
	while (got < sizeof(out) - 1 && (n = read(from, out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	int st = tu_wait(pid, 5000);
	cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "python server failed");
	tu_fill(a, LEN, 3);
	tu_sha256_hex(a, LEN, h);
	cr_expect(strncmp(out, h, 64) == 0, "python saw %s, we sent %s", out, h);
	cr_expect(strstr(out, v == KTLS_TLS1_3 ? "TLSv1.3" : "TLSv1.2"), "%s", out);
	tu_stop(pid, 1000);
	close(from);
	free(a);
}

#define CELLS(peer)                                                                     \
	Test(interop_client, peer##_tls13_aes128) { peer##_cell(KTLS_TLS1_3, 0); }      \
	Test(interop_client, peer##_tls13_aes256) { peer##_cell(KTLS_TLS1_3, 1); }      \
	Test(interop_client, peer##_tls13_chacha) { peer##_cell(KTLS_TLS1_3, 2); }      \
	Test(interop_client, peer##_tls12_aes128) { peer##_cell(KTLS_TLS1_2, 0); }      \
	Test(interop_client, peer##_tls12_aes256) { peer##_cell(KTLS_TLS1_2, 1); }      \
	Test(interop_client, peer##_tls12_chacha) { peer##_cell(KTLS_TLS1_2, 2); }

CELLS(s_server)
CELLS(gnutls)
CELLS(python)
