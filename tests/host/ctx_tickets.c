/*
 * ctx_tickets.c - ktls_ctx_add_ticket_key: a Python ssl client takes a
 * ticket from one server context and offers it to the next; it resumes
 * exactly when that context holds the key that sealed it (TLS 1.3 and
 * TLS 1.2), an older key still opens it, a key pushed out of the ring of
 * four no longer does, and the setter refuses what it should.
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

TestSuite(ctx_tickets, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

/* n connections; the 2nd and later offer the 1st one's session: "new", then "reused"/"new". */
static const char py_client[] =
	"import ssl, socket, sys\n"
	"port, ca, ver, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])\n"
	"ctx = ssl.create_default_context(cafile=ca)\n"
	"v = ssl.TLSVersion.TLSv1_3 if ver == '1.3' else ssl.TLSVersion.TLSv1_2\n"
	"ctx.minimum_version = ctx.maximum_version = v\n"
	"first = None\n"
	"for i in range(n):\n"
	"    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port)), server_hostname='localhost',\n"
	"                        session=first)\n"
	"    while s.recv(100): pass\n"
	"    print('reused' if s.session_reused else 'new', flush=True)\n"
	"    if first is None: first = s.session\n"
	"    s.close()\n";

static void key_fill(unsigned char k[KTLS_TICKET_KEY_LEN], unsigned seed)
{
	tu_fill(k, KTLS_TICKET_KEY_LEN, seed);
}

/* A server context holding the keys seeds[0..n) (the last one seals). */
static ktls_ctx *server_with(const unsigned *seeds, int n)
{
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	unsigned char k[KTLS_TICKET_KEY_LEN];

	cr_assert(ctx);
	for (int i = 0; i < n; i++) {
		key_fill(k, seeds[i]);
		cr_assert_eq(ktls_ctx_add_ticket_key(ctx, k), 0, "%s", ktls_ctx_error(ctx));
	}
	return ctx;
}

/*
 * The client makes nctx connections; connection i is served by ctxs[i].
 * What the client printed goes to out.
 */
static void run(const char *ver, ktls_ctx **ctxs, int nctx, char *out, size_t cap)
{
	int port = 0, l = tu_listen(&port), from;
	char portarg[16], narg[8];
	struct ct_pipe pout;

	cr_assert_geq(l, 0);
	snprintf(portarg, sizeof(portarg), "%d", port);
	snprintf(narg, sizeof(narg), "%d", nctx);
	char *argv[] = { "python3", "-c", (char *)py_client, portarg, (char *)tu_cert("ca.pem"),
			 (char *)ver, narg, NULL };
	ct_peer = tu_spawn(argv, NULL, &from);
	cr_assert_gt(ct_peer, 0);
	pout = (struct ct_pipe){ .fd = from, .buf = (unsigned char *)out, .len = cap - 1 };
	ct_pipe_start(&pout, 0);
	for (int i = 0; i < nctx; i++) {
		struct pollfd p = { .fd = l, .events = POLLIN };
		ktls_conn *c;
		int fd;

		cr_assert_eq(poll(&p, 1, 10000), 1, "connection %d never came", i);
		fd = accept(l, NULL, NULL);
		cr_assert_geq(fd, 0);
		c = ktls_conn_accept(ctxs[i], fd);
		cr_assert(c, "%s", ktls_ctx_error(ctxs[i]));
		cr_assert_eq(ktls_conn_handshake(c), 0, "connection %d: %s", i, ktls_conn_error(c));
		cr_assert_eq(ktls_conn_write(c, "x", 1), 1);
		ktls_conn_shutdown(c);
		ktls_conn_free(c);
		close(fd);
	}
	cr_assert_eq(ct_pipe_join(&pout, 10000), 0, "the client did not finish");
	out[pout.done] = '\0';
	close(from);
	close(l);
}

static void across_contexts(const char *ver)
{
	unsigned k1[] = { 1 }, k2[] = { 2 }, k1k2[] = { 1, 2 };
	ktls_ctx *ctxs[4] = { server_with(k1, 1), server_with(k1, 1), server_with(k2, 1),
			      server_with(k1k2, 2) };
	char out[256];

	run(ver, ctxs, 4, out, sizeof(out));
	/* sealed under key 1: another context with key 1 opens it, key 2 alone does
	 * not, and key 1 as the older of two still does */
	cr_expect_str_eq(out, "new\nreused\nnew\nreused\n", "TLS %s", ver);
	for (int i = 0; i < 4; i++)
		ktls_ctx_free(ctxs[i]);
}

Test(ctx_tickets, tls13_ticket_resumes_on_a_context_with_its_key)
{
	across_contexts("1.3");
}

Test(ctx_tickets, tls12_ticket_resumes_on_a_context_with_its_key)
{
	across_contexts("1.2");
}

Test(ctx_tickets, without_keys_a_new_context_does_not_resume)
{
	ktls_ctx *ctxs[2] = { ct_server_ctx("server-ec"), ct_server_ctx("server-ec") };
	char out[256];

	run("1.3", ctxs, 2, out, sizeof(out));
	cr_expect_str_eq(out, "new\nnew\n");
	ktls_ctx_free(ctxs[0]);
	ktls_ctx_free(ctxs[1]);
}

Test(ctx_tickets, ring_keeps_the_four_newest)
{
	unsigned four[] = { 1, 2, 3, 4 }, five[] = { 1, 2, 3, 4, 5 }, k1[] = { 1 };
	ktls_ctx *ctxs[3] = { server_with(k1, 1), server_with(four, 4), server_with(five, 5) };
	char out[256];

	run("1.3", ctxs, 3, out, sizeof(out));
	cr_expect_str_eq(out, "new\nreused\nnew\n", "key 1 is the oldest of four, then gone");
	for (int i = 0; i < 3; i++)
		ktls_ctx_free(ctxs[i]);
}

Test(ctx_tickets, setter_refuses_clients_duplicates_and_frozen_contexts)
{
	ktls_ctx *client = ct_client_ctx(), *server = ct_server_ctx("server-ec");
	unsigned char k[KTLS_TICKET_KEY_LEN];
	int fds[2];
	ktls_conn *c;

	key_fill(k, 9);
	cr_assert(client && server);
	cr_expect_eq(ktls_ctx_add_ticket_key(client, k), -1);
	cr_expect_eq(ktls_ctx_error_code(client), KTLS_ERR_INVALID);
	cr_expect_eq(ktls_ctx_add_ticket_key(server, NULL), -1);
	cr_expect_eq(ktls_ctx_add_ticket_key(server, k), 0, "%s", ktls_ctx_error(server));
	cr_expect_eq(ktls_ctx_add_ticket_key(server, k), -1, "the same name twice");
	cr_expect(strstr(ktls_ctx_error(server), "already"), "%s", ktls_ctx_error(server));
	cr_assert_eq(tu_tcp_pair(fds), 0);
	c = ktls_conn_accept(server, fds[0]);
	cr_assert(c);
	k[0] ^= 1;
	cr_expect_eq(ktls_ctx_add_ticket_key(server, k), -1, "a used context took a key");
	cr_expect_eq(ktls_ctx_error_code(server), KTLS_ERR_INVALID);
	ktls_conn_free(c);
	close(fds[0]);
	close(fds[1]);
	ktls_ctx_free(client);
	ktls_ctx_free(server);
}
