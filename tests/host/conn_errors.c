/*
 * conn_errors.c - failures named right, against real peers: old protocol
 * versions both ways, an untrusted certificate, a required client
 * certificate we do not have, plain HTTP sent to our TLS server, and a
 * peer that resets after the handshake.
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

TestSuite(conn_errors, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

/* The code and alert of the last serve_once/connect_once/serve_mtls failure. */
static int last_code, last_alert;

static void keep_error(const ktls_conn *c)
{
	last_code = ktls_conn_error_code(c);
	last_alert = ktls_conn_peer_alert(c);
}

/* Our server: accept one connection on l and run the handshake. */
static int serve_once(int l, char *err, size_t errlen)
{
	struct pollfd p = { .fd = l, .events = POLLIN };
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	ktls_conn *c;
	int fd, r;

	cr_assert(ctx);
	cr_assert_eq(poll(&p, 1, 10000), 1, "the client never connected");
	fd = accept(l, NULL, NULL);
	cr_assert_geq(fd, 0);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c);
	r = ktls_conn_handshake(c);
	snprintf(err, errlen, "%s", ktls_conn_error(c));
	keep_error(c);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
	return r;
}

/* Our client against whatever listens on port; handshake result. */
static int connect_once(int port, const char *name, char *err, size_t errlen, ktls_conn **keep)
{
	ktls_ctx *ctx = ct_client_ctx();
	ktls_conn *c;
	int fd, r;

	cr_assert(ctx);
	fd = ct_connect_retry(port, 10000);
	cr_assert_geq(fd, 0);
	c = ktls_conn_connect(ctx, fd, name);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	ktls_ctx_free(ctx); /* the connection holds its own reference */
	r = ktls_conn_handshake(c);
	snprintf(err, errlen, "%s", ktls_conn_error(c));
	keep_error(c);
	if (keep && r == 0) {
		*keep = c;
		return r;
	}
	ktls_conn_free(c);
	close(fd);
	return r;
}

Test(conn_errors, tls11_client_named)
{
	int port = 0, l = tu_listen(&port);
	char target[32], err[256];

	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_client", "-connect", target, "-tls1_1", "-cipher",
			 "DEFAULT:@SECLEVEL=0", NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(serve_once(l, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "peer offered only TLS 1.1; minimum is TLS 1.2");
	cr_expect_eq(last_code, KTLS_ERR_POLICY, "%s", ktls_error_name(last_code));
	cr_expect_eq(last_alert, -1);
	close(l);
}

Test(conn_errors, tls11_server_named)
{
	int port = tu_free_port();
	char accept_arg[32], err[256];

	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", accept_arg,
			 "-cert", (char *)tu_cert("server-rsa.pem"), "-key",
			 (char *)tu_cert("server-rsa.key"), "-tls1_1", "-cipher",
			 "DEFAULT:@SECLEVEL=0", NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(connect_once(port, "localhost", err, sizeof(err), NULL), -1);
	/* OpenSSL refuses our TLS 1.2/1.3 ClientHello with an alert. */
	cr_expect_str_eq(err, "peer sent alert: protocol version");
	cr_expect_eq(last_code, KTLS_ERR_PEER_ALERT, "%s", ktls_error_name(last_code));
	cr_expect_eq(last_alert, 70); /* protocol_version */
}

Test(conn_errors, untrusted_certificate)
{
	int port = tu_free_port();
	char accept_arg[32], err[256];

	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", accept_arg,
			 "-cert", (char *)tu_cert("untrusted.pem"), "-key",
			 (char *)tu_cert("untrusted.key"), NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(connect_once(port, "localhost", err, sizeof(err), NULL), -1);
	cr_expect_str_eq(err, "certificate verify failed: unable to get local issuer certificate");
	cr_expect_eq(last_code, KTLS_ERR_VERIFY, "%s", ktls_error_name(last_code));
}

Test(conn_errors, wrong_hostname_against_python)
{
	int port = tu_free_port();
	char portarg[16], err[256];
	static const char py[] =
		"import socket, ssl, sys\n"
		"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
		"ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n"
		"ls = socket.socket()\n"
		"ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
		"ls.bind(('127.0.0.1', int(sys.argv[1])))\n"
		"ls.listen(1)\n"
		"s, _ = ls.accept()\n"
		"try:\n"
		"    ctx.wrap_socket(s, server_side=True)\n"
		"except ssl.SSLError as e:\n"
		"    print(e.reason, flush=True)\n";

	snprintf(portarg, sizeof(portarg), "%d", port);
	char *argv[] = { (char *)ct_python(), "-c", (char *)py, portarg,
			 (char *)tu_cert("server-ec.pem"), (char *)tu_cert("server-ec.key"), NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(connect_once(port, "other.example", err, sizeof(err), NULL), -1);
	cr_expect_str_eq(err, "certificate verify failed: Hostname mismatch, certificate is not "
			      "valid for 'other.example'");
	cr_expect_eq(last_code, KTLS_ERR_HOSTNAME, "%s", ktls_error_name(last_code));
}

/* TLS 1.2: the server refuses during the handshake with an alert. */
Test(conn_errors, client_cert_required_tls12)
{
	int port = tu_free_port();
	char accept_arg[32], err[256];

	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", accept_arg,
			 "-cert", (char *)tu_cert("server-ec.pem"), "-key",
			 (char *)tu_cert("server-ec.key"), "-Verify", "1", "-CAfile",
			 (char *)tu_cert("ca.pem"), "-tls1_2", NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(connect_once(port, "localhost", err, sizeof(err), NULL), -1);
	cr_expect_str_eq(err, "peer sent alert: handshake failure");
	cr_expect_eq(last_code, KTLS_ERR_PEER_ALERT, "%s", ktls_error_name(last_code));
	cr_expect_eq(last_alert, 40); /* handshake_failure */
}

/* TLS 1.3: our handshake finishes first; the alert arrives on read. */
Test(conn_errors, client_cert_required_tls13_on_read)
{
	int port = tu_free_port();
	char accept_arg[32], err[256], buf[64];
	ktls_conn *c = NULL;
	ssize_t r;

	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", accept_arg,
			 "-cert", (char *)tu_cert("server-ec.pem"), "-key",
			 (char *)tu_cert("server-ec.key"), "-Verify", "1", "-CAfile",
			 (char *)tu_cert("ca.pem"), "-tls1_3", NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(connect_once(port, "localhost", err, sizeof(err), &c), 0, "%s", err);
	r = ktls_conn_read(c, buf, sizeof(buf));
	cr_expect_eq(r, -1);
	cr_expect_str_eq(ktls_conn_error(c), "peer sent alert: certificate required");
	cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_PEER_ALERT);
	cr_expect_eq(ktls_conn_peer_alert(c), 116); /* certificate_required */
	/* The connection is over: later calls repeat the reason and its code. */
	cr_expect_eq(ktls_conn_read(c, buf, sizeof(buf)), -1);
	cr_expect_str_eq(ktls_conn_error(c), "peer sent alert: certificate required");
	cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_PEER_ALERT);
	cr_expect_eq(ktls_conn_write(c, "x", 1), -1);
	cr_expect_str_eq(ktls_conn_error(c), "peer sent alert: certificate required");
	cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_PEER_ALERT);
	cr_expect_eq(ktls_conn_peer_alert(c), 116);
	close(ktls_conn_fd(c));
	ktls_conn_free(c);
}

Test(conn_errors, plain_http_to_tls_server)
{
	int port = 0, l = tu_listen(&port);
	char url[64], err[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	char *argv[] = { "curl", "-s", "-m", "5", "-o", "/dev/null", url, NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(serve_once(l, err, sizeof(err)), -1);
	cr_expect(strstr(err, "non-TLS data") && strstr(err, "0x47"), "%s", err);
	cr_expect_eq(last_code, KTLS_ERR_PROTOCOL, "%s", ktls_error_name(last_code));
	close(l);
}

/* Python aborts the TCP connection (RST) after the handshake. */
Test(conn_errors, reset_by_python_is_truncation)
{
	int port = tu_free_port();
	char portarg[16], err[256], buf[64];
	ktls_conn *c = NULL;
	static const char py[] =
		"import socket, ssl, struct, sys\n"
		"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
		"ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n"
		"ls = socket.socket()\n"
		"ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
		"ls.bind(('127.0.0.1', int(sys.argv[1])))\n"
		"ls.listen(1)\n"
		"s, _ = ls.accept()\n"
		"t = ctx.wrap_socket(s, server_side=True)\n"
		"t.sendall(b'partial')\n"
		"t.recv(1)\n"
		"t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
		"t.close()\n";

	snprintf(portarg, sizeof(portarg), "%d", port);
	char *argv[] = { (char *)ct_python(), "-c", (char *)py, portarg,
			 (char *)tu_cert("server-ec.pem"), (char *)tu_cert("server-ec.key"), NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(connect_once(port, "localhost", err, sizeof(err), &c), 0, "%s", err);
	cr_assert_eq(ct_read_full(c, buf, 7), 0);
	cr_expect_eq(memcmp(buf, "partial", 7), 0);
	cr_assert_eq(ktls_conn_write(c, "x", 1), 1);
	cr_assert_eq(tu_wait(ct_peer, 5000) != -1, 1, "python did not finish");
	cr_expect_eq(ktls_conn_read(c, buf, sizeof(buf)), -1);
	cr_expect_str_eq(ktls_conn_error(c),
			 "peer closed without close_notify (truncation): connection reset");
	cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_PEER_CLOSED);
	cr_expect_eq(ktls_conn_peer_alert(c), -1);
	close(ktls_conn_fd(c));
	ktls_conn_free(c);
}

/* mTLS on our server: a client without a certificate is named; with one it works. */
static int serve_mtls(int l, char *err, size_t errlen)
{
	struct pollfd p = { .fd = l, .events = POLLIN };
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	ktls_conn *c;
	int fd, r;

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_load_verify_locations(ctx, tu_cert("ca.pem"), NULL), 0);
	cr_assert_eq(ktls_ctx_set_verify(ctx, KTLS_VERIFY_REQUIRED), 0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(poll(&p, 1, 10000), 1, "the client never connected");
	fd = accept(l, NULL, NULL);
	cr_assert_geq(fd, 0);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c);
	r = ktls_conn_handshake(c);
	snprintf(err, errlen, "%s", ktls_conn_error(c));
	keep_error(c);
	if (r == 0)
		ktls_conn_shutdown(c);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
	return r;
}

static void mtls_cell(const char *ver, int with_cert, int expect)
{
	int port = 0, l = tu_listen(&port);
	char target[32], err[256];

	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_client", "-connect", target, "-quiet", "-CAfile",
			 (char *)tu_cert("ca.pem"), (char *)ver,
			 with_cert ? "-cert" : NULL, (char *)tu_cert("client.pem"), "-key",
			 (char *)tu_cert("client.key"), NULL };
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_eq(serve_mtls(l, err, sizeof(err)), expect, "%s", err);
	if (expect)
		cr_expect_str_eq(err, "client sent no certificate; this server requires one "
				      "(peer did not return a certificate)");
	if (expect)
		cr_expect_eq(last_code, KTLS_ERR_VERIFY, "%s", ktls_error_name(last_code));
	close(l);
}

Test(conn_errors, mtls_client_without_cert_tls13) { mtls_cell("-tls1_3", 0, -1); }
Test(conn_errors, mtls_client_without_cert_tls12) { mtls_cell("-tls1_2", 0, -1); }
Test(conn_errors, mtls_client_with_cert_tls13) { mtls_cell("-tls1_3", 1, 0); }
Test(conn_errors, mtls_client_with_cert_tls12) { mtls_cell("-tls1_2", 1, 0); }
