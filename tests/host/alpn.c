/*
 * alpn.c - ALPN (ktls_ctx_set_alpn, ktls_conn_alpn) against outside peers:
 * our server under openssl s_client and Python ssl clients (the server's
 * preference wins; no overlap is the no_application_protocol alert and
 * KTLS_ERR_POLICY; no ALPN from the client is served without), our client
 * under openssl s_server, and the lists the setter refuses.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"
#include "ktls.h"

TestSuite(alpn, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

/* Accept one client on l with a server context offering protos. */
static ktls_conn *serve_one(int l, ktls_ctx **ctxp, const char *protos, int *hs)
{
	struct pollfd p = { .fd = l, .events = POLLIN };
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	ktls_conn *c;
	int fd;

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_alpn(ctx, protos), 0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(poll(&p, 1, 10000), 1, "the client never connected");
	fd = accept(l, NULL, NULL);
	cr_assert_geq(fd, 0);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	*hs = ktls_conn_handshake(c);
	*ctxp = ctx;
	return c;
}

static void end(ktls_ctx *ctx, ktls_conn *c, int shutdown)
{
	int fd = ktls_conn_fd(c);

	if (shutdown)
		ktls_conn_shutdown(c);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
}

/* openssl s_client offering alpn (NULL: no ALPN); its output in out. */
static void s_client_run(const char *alpn, const char *server_protos, char *out, size_t cap,
			 const char **selected)
{
	int port = 0, l = tu_listen(&port), hs, from;
	char target[32];
	struct ct_pipe pout;
	ktls_ctx *ctx;
	ktls_conn *c;

	cr_assert_geq(l, 0);
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_client", "-connect", target, "-servername", "localhost",
			 "-CAfile", (char *)tu_cert("ca.pem"), "-verify_return_error",
			 alpn ? "-alpn" : NULL, (char *)alpn, NULL };
	ct_peer = tu_spawn(argv, NULL, &from);
	cr_assert_gt(ct_peer, 0);
	pout = (struct ct_pipe){ .fd = from, .buf = (unsigned char *)out, .len = cap - 1 };
	ct_pipe_start(&pout, 0);
	c = serve_one(l, &ctx, server_protos, &hs);
	cr_assert_eq(hs, 0, "handshake: %s", ktls_conn_error(c));
	*selected = ktls_conn_alpn(c);
	*selected = *selected ? strdup(*selected) : NULL;
	end(ctx, c, 1);
	cr_assert_eq(ct_pipe_join(&pout, 10000), 0, "s_client did not exit");
	out[pout.done] = '\0';
	close(from);
	close(l);
}

Test(alpn, server_preference_wins_with_s_client)
{
	char out[16384];
	const char *sel;

	s_client_run("http/1.1,h2", "h2,http/1.1", out, sizeof(out), &sel);
	cr_assert_not_null(sel, "nothing selected; s_client said:\n%s", out);
	cr_expect_str_eq(sel, "h2");
	cr_expect_not_null(strstr(out, "ALPN protocol: h2"), "s_client:\n%s", out);
	free((void *)sel);
}

Test(alpn, client_without_alpn_is_served_without)
{
	char out[16384];
	const char *sel;

	s_client_run(NULL, "http/1.1", out, sizeof(out), &sel);
	cr_expect_null(sel, "selected %s", sel);
	cr_expect_not_null(strstr(out, "No ALPN negotiated"), "s_client:\n%s", out);
}

static const char py_client[] =
	"import ssl, socket, sys\n"
	"ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
	"ctx.set_alpn_protocols(sys.argv[3].split(','))\n"
	"try:\n"
	"    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))),\n"
	"                        server_hostname='localhost')\n"
	"    print('selected', s.selected_alpn_protocol(), flush=True)\n"
	"    s.close()\n"
	"except ssl.SSLError as e:\n"
	"    print('error', e, flush=True)\n";

/* A Python client offering protos; what it printed. */
static void python_run(const char *protos, const char *server_protos, char *out, size_t cap,
		       int *hs, char *err, size_t errlen, int *code)
{
	int port = 0, l = tu_listen(&port), from;
	char portarg[16];
	struct ct_pipe pout;
	ktls_ctx *ctx;
	ktls_conn *c;

	cr_assert_geq(l, 0);
	snprintf(portarg, sizeof(portarg), "%d", port);
	char *argv[] = { "python3", "-c", (char *)py_client, portarg, (char *)tu_cert("ca.pem"),
			 (char *)protos, NULL };
	ct_peer = tu_spawn(argv, NULL, &from);
	cr_assert_gt(ct_peer, 0);
	pout = (struct ct_pipe){ .fd = from, .buf = (unsigned char *)out, .len = cap - 1 };
	ct_pipe_start(&pout, 0);
	c = serve_one(l, &ctx, server_protos, hs);
	snprintf(err, errlen, "%s", ktls_conn_error(c));
	*code = ktls_conn_error_code(c);
	end(ctx, c, *hs == 0);
	cr_assert_eq(ct_pipe_join(&pout, 10000), 0, "the Python client did not exit");
	out[pout.done] = '\0';
	close(from);
	close(l);
}

Test(alpn, python_client_gets_our_choice)
{
	char out[512], err[256];
	int hs, code;

	python_run("spdy/3,http/1.1", "h2,http/1.1", out, sizeof(out), &hs, err, sizeof(err), &code);
	cr_assert_eq(hs, 0, "%s", err);
	cr_expect_str_eq(out, "selected http/1.1\n");
}

Test(alpn, no_overlap_is_no_application_protocol)
{
	char out[512], err[256];
	int hs, code;

	python_run("h3,spdy/3", "h2,http/1.1", out, sizeof(out), &hs, err, sizeof(err), &code);
	cr_assert_eq(hs, -1, "handshake succeeded without a protocol in common");
	cr_expect_eq(code, KTLS_ERR_POLICY, "%s", err);
	cr_expect_not_null(strstr(err, "no application protocol (ALPN) in common"), "%s", err);
	cr_expect_not_null(strstr(err, "h2,http/1.1"), "%s", err);
	cr_expect_not_null(strstr(out, "no application protocol"), "the client saw: %s", out);
}

Test(alpn, our_client_with_s_server)
{
	int port = tu_free_port(), fd;
	char portarg[32];
	char *argv[] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", portarg,
			 "-cert", (char *)tu_cert("server-ec.pem"), "-key",
			 (char *)tu_cert("server-ec.key"), "-alpn", "h2,http/1.1", NULL };
	ktls_ctx *ctx = ct_client_ctx();
	ktls_conn *c;

	snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", port);
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert_gt(ct_peer, 0);
	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_alpn(ctx, "http/1.1,h2"), 0, "%s", ktls_ctx_error(ctx));
	fd = ct_connect_retry(port, 10000);
	cr_assert_geq(fd, 0);
	c = ktls_conn_connect(ctx, fd, "localhost");
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	cr_expect_null(ktls_conn_alpn(c), "an ALPN before the handshake");
	cr_assert_eq(ktls_conn_handshake(c), 0, "%s", ktls_conn_error(c));
	/* s_server picks by its own preference: h2, though we listed it second */
	cr_assert_not_null(ktls_conn_alpn(c));
	cr_expect_str_eq(ktls_conn_alpn(c), "h2");
	end(ctx, c, 1);
}

Test(alpn, setter_refuses_bad_lists_and_frozen_contexts)
{
	ktls_ctx *ctx = ct_client_ctx();
	char big[300];
	int fds[2];
	ktls_conn *c;

	cr_assert(ctx);
	cr_expect_eq(ktls_ctx_set_alpn(ctx, "h2,,http/1.1"), -1);
	cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_INVALID);
	cr_expect_not_null(strstr(ktls_ctx_error(ctx), "1 to 255 bytes"), "%s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_alpn(ctx, "h2,"), -1);
	memset(big, 'a', 256);
	big[256] = '\0';
	cr_expect_eq(ktls_ctx_set_alpn(ctx, big), -1);
	cr_expect_eq(ktls_ctx_set_alpn(ctx, big + 1), 0, "255 bytes is allowed: %s",
		     ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_alpn(ctx, ""), 0, "clearing: %s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_alpn(ctx, "http/1.1"), 0);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	c = ktls_conn_connect(ctx, fds[0], "localhost");
	cr_assert(c);
	cr_expect_eq(ktls_ctx_set_alpn(ctx, "h2"), -1, "a used context changed its ALPN");
	cr_expect_eq(ktls_ctx_error_code(ctx), KTLS_ERR_INVALID);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fds[0]);
	close(fds[1]);
}
