/*
 * session_resume.c - client session resumption against real servers:
 * openssl s_server (-rev: each line back reversed) and gnutls-serv
 * (--echo), TLS 1.2 tickets and TLS 1.3 PSK tickets.
 *
 * A first connection reads data (TLS 1.3 tickets come after the
 * handshake), exports its session; a second offers it, must resume
 * (ktls_info.resumed), offloads, and moves 64 KiB each way, checked byte
 * for byte by the peer's transformation.  Shared with the guest
 * (TSHARED): there both connections are in kTLS, so the TLS 1.3 tickets
 * reach OpenSSL through kTLS RX (session.c) and the resumed connection's
 * records prove its sequence numbers; here, without kTLS, the userspace
 * path.  Also with the first connection's answer (and so its tickets)
 * read through io_uring RECVMSGs (ktls_uring_recv_result).  Plus the
 * refusals: garbage, another server name, a server connection, after the
 * handshake.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <liburing.h>

#include "ktls_uring.h"

#include "../common/conn_test.h"
#include "../common/testutil.h"

TestSuite(session_resume, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 300);

enum peer_kind { S_SERVER, GNUTLS_SERV };

static int start_peer(enum peer_kind kind, const struct ct_cell *cell, int *in)
{
	char portstr[16], prio[160];
	int port = tu_free_port();

	snprintf(portstr, sizeof(portstr), "%d", port);
	*in = -1;
	if (kind == S_SERVER) {
		/* stdin held open: s_server stops at its EOF */
		char *argv[] = { "openssl", "s_server", "-quiet", "-rev", "-accept", portstr,
				 "-cert", (char *)tu_cert("server-ec.pem"), "-key",
				 (char *)tu_cert("server-ec.key"),
				 cell->version == KTLS_TLS1_3 ? "-tls1_3" : "-tls1_2",
				 cell->version == KTLS_TLS1_3 ? "-ciphersuites" : "-cipher",
				 (char *)cell->openssl, NULL };
		ct_peer = tu_spawn(argv, in, NULL);
	} else {
		ct_gnutls_priority(cell, prio, sizeof(prio));
		char *argv[] = { "gnutls-serv", "--echo", "--port", portstr, "--x509certfile",
				 (char *)tu_cert("server-ec.pem"), "--x509keyfile",
				 (char *)tu_cert("server-ec.key"), "--priority", prio, NULL };
		ct_peer = tu_spawn(argv, NULL, NULL);
	}
	cr_assert(ct_peer > 0);
	cr_assert_eq(tu_wait_port(port, 10000), 0, "the peer did not start");
	return port;
}

/* What the peer answers to out: s_server reverses each line, gnutls echoes. */
static void expected(enum peer_kind kind, const unsigned char *out, size_t len, unsigned char *want)
{
	memcpy(want, out, len);
	if (kind != S_SERVER)
		return;
	for (size_t a = 0; a < len;) {
		size_t e = a;
		while (out[e] != '\n')
			e++;
		for (size_t i = 0; i < e - a; i++)
			want[a + i] = out[e - 1 - i];
		a = e + 1;
	}
}

/* Lines of 63 letters and '\n': what both peers can answer to. */
static void lines(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (i + 1) % 64 == 0 ? '\n' : (unsigned char)('a' + (seed + i * 7 + i / 64) % 26);
}

static void exchange(enum peer_kind kind, ktls_conn *c, size_t len, unsigned seed)
{
	unsigned char *out = malloc(len), *in = malloc(len), *want = malloc(len);

	cr_assert(out && in && want && len % 64 == 0);
	lines(out, len, seed);
	expected(kind, out, len, want);
	cr_assert_eq(ct_pump(c, out, len, in, len, 60000), 0, "%s", ktls_conn_error(c));
	cr_expect_eq(memcmp(in, want, len), 0, "the peer's answer differs");
	free(out);
	free(in);
	free(want);
}

static ktls_conn *connect_to(ktls_ctx *ctx, int port, int *fd)
{
	ktls_conn *c;

	*fd = tu_connect(port);
	cr_assert_geq(*fd, 0);
	c = ktls_conn_connect(ctx, *fd, "localhost");
	cr_assert_not_null(c, "%s", ktls_ctx_error(ctx));
	return c;
}

static void expect_modes(ktls_conn *c, const char *what)
{
	struct ktls_info in;
	int want = tu_expect_ktls() ? KTLS_MODE_SW : KTLS_MODE_USER;

	cr_assert_eq(ktls_conn_info(c, &in), 0);
	cr_expect_eq(in.tx, want, "%s: tx %d (%s)", what, in.tx, in.fallback_reason);
	cr_expect_eq(in.rx, want, "%s: rx %d (%s)", what, in.rx, in.fallback_reason);
}

static void close_conn(ktls_conn *c, int fd)
{
	ktls_conn_shutdown(c);
	ktls_conn_free(c);
	close(fd);
}

static void resume_against(enum peer_kind kind, int version)
{
	struct ct_cell cell = ct_cell(version, 0);
	ktls_ctx *ctx = ct_client_ctx();
	unsigned char sess[8192];
	struct ktls_info in;
	ssize_t n;
	int in_fd, port, fd;
	ktls_conn *c;
	const char *who = kind == S_SERVER ? "openssl s_server" : "gnutls-serv";

	cr_assert_not_null(ctx);
	cr_assert_eq(ct_pin_ctx(ctx, &cell), 0, "%s", ktls_ctx_error(ctx));
	port = start_peer(kind, &cell, &in_fd);

	c = connect_to(ctx, port, &fd);
	cr_assert_eq(ct_handshake(c, 30000), 0, "%s: %s", who, ktls_conn_error(c));
	cr_assert_eq(ktls_conn_offload(c), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &in), 0);
	cr_expect(!in.resumed, "%s: a first handshake cannot resume", who);
	expect_modes(c, "first connection");
	exchange(kind, c, 64, 1); /* TLS 1.3: the tickets arrive before this answer */
	n = ktls_conn_session(c, NULL, 0);
	cr_assert_gt(n, 0, "%s %s: no resumable session after reading: %s", who, cell.openssl,
		     n < 0 ? ktls_conn_error(c) : "0");
	cr_assert_leq((size_t)n, sizeof(sess));
	cr_assert_eq(ktls_conn_session(c, sess, sizeof(sess)), n);
	cr_expect_eq(ktls_conn_session(c, sess, 10), -1, "a short buffer is refused");
	close_conn(c, fd);

	c = connect_to(ctx, port, &fd);
	cr_assert_eq(ktls_conn_set_session(c, sess, (size_t)n), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ct_handshake(c, 30000), 0, "%s resumed: %s", who, ktls_conn_error(c));
	cr_assert_eq(ktls_conn_offload(c), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &in), 0);
	cr_expect(in.resumed, "%s %s: the second handshake did not resume", who, in.cipher);
	cr_expect_str_eq(in.cipher, cell.openssl);
	expect_modes(c, "resumed connection");
	exchange(kind, c, 64 * 1024, 2);
	close_conn(c, fd);
	memset(sess, 0, sizeof(sess));
	ktls_ctx_free(ctx);
	if (in_fd >= 0)
		close(in_fd);
}

Test(session_resume, tls13_against_openssl_s_server)
{
	resume_against(S_SERVER, KTLS_TLS1_3);
}

Test(session_resume, tls12_against_openssl_s_server)
{
	resume_against(S_SERVER, KTLS_TLS1_2);
}

Test(session_resume, tls13_against_gnutls_serv)
{
	resume_against(GNUTLS_SERV, KTLS_TLS1_3);
}

Test(session_resume, tls12_against_gnutls_serv)
{
	resume_against(GNUTLS_SERV, KTLS_TLS1_2);
}

/*
 * want bytes through io_uring RECVMSGs on c (RX in the kernel): records
 * that are not data (the TLS 1.3 tickets) come back as KTLS_WANT_READ.
 */
static void read_via_uring(ktls_conn *c, unsigned char *buf, size_t want)
{
	struct io_uring ring;
	struct ktls_uring_rx rx;
	size_t got = 0;

	cr_assert_eq(io_uring_queue_init(4, &ring, 0), 0);
	while (got < want) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		ssize_t n;

		ktls_uring_prep_recvmsg(sqe, ktls_conn_fd(c), &rx, buf + got, want - got);
		io_uring_sqe_set_data64(sqe, 1);
		cr_assert_geq(io_uring_submit_and_wait(&ring, 1), 1);
		cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
		n = ktls_uring_recv_result(c, &rx, cqe);
		io_uring_cqe_seen(&ring, cqe);
		if (n == KTLS_WANT_READ) {
			struct pollfd p = { .fd = ktls_conn_fd(c), .events = POLLIN };

			cr_assert_geq(poll(&p, 1, 30000), 1, "no answer from the peer");
			continue;
		}
		cr_assert_gt(n, 0, "RECVMSG: %zd %s", n, ktls_conn_error(c));
		got += (size_t)n;
	}
	io_uring_queue_exit(&ring);
}

/*
 * TLS 1.3 tickets that arrive through io_uring: s_server's answer to a
 * line is read by RECVMSG, and the session exported after it resumes.
 * On a kernel without kTLS the library refuses RECVMSG results (RX is not
 * in the kernel), by name, and the rest is resume_against's.
 */
Test(session_resume, tls13_tickets_read_through_io_uring)
{
	struct ct_cell cell = ct_cell(KTLS_TLS1_3, 0);
	ktls_ctx *ctx = ct_client_ctx();
	unsigned char sess[8192], out[64], in[64], want[64];
	struct ktls_info info;
	ssize_t n;
	int in_fd, port, fd;
	ktls_conn *c;

	cr_assert_not_null(ctx);
	cr_assert_eq(ct_pin_ctx(ctx, &cell), 0, "%s", ktls_ctx_error(ctx));
	port = start_peer(S_SERVER, &cell, &in_fd);
	c = connect_to(ctx, port, &fd);
	cr_assert_eq(ct_handshake(c, 30000), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_offload(c), 0, "%s", ktls_conn_error(c));
	expect_modes(c, "first connection");
	lines(out, sizeof(out), 4);
	expected(S_SERVER, out, sizeof(out), want);
	cr_assert_eq(ktls_conn_write(c, out, sizeof(out)), (ssize_t)sizeof(out), "%s", ktls_conn_error(c));
	if (!tu_expect_ktls()) {
		struct io_uring_cqe cqe = { .res = 0 };
		struct ktls_uring_rx rx;

		memset(&rx, 0, sizeof(rx));
		cr_expect_eq(ktls_uring_recv_result(c, &rx, &cqe), -1);
		cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_INVALID, "%s", ktls_conn_error(c));
		close_conn(c, fd);
		ktls_ctx_free(ctx);
		close(in_fd);
		return;
	}
	read_via_uring(c, in, sizeof(in));
	cr_expect_eq(memcmp(in, want, sizeof(in)), 0, "s_server's answer differs");
	n = ktls_conn_session(c, sess, sizeof(sess));
	cr_assert_gt(n, 0, "no session after reading through io_uring: %s", n < 0 ? ktls_conn_error(c) : "0");
	close_conn(c, fd);

	c = connect_to(ctx, port, &fd);
	cr_assert_eq(ktls_conn_set_session(c, sess, (size_t)n), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ct_handshake(c, 30000), 0, "resumed: %s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_offload(c), 0, "%s", ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &info), 0);
	cr_expect(info.resumed, "the ticket read through io_uring did not resume");
	expect_modes(c, "resumed connection");
	exchange(S_SERVER, c, 16 * 1024, 5);
	close_conn(c, fd);
	memset(sess, 0, sizeof(sess));
	ktls_ctx_free(ctx);
	close(in_fd);
}

/* What is refused, by name: garbage, another server's session, wrong times and roles. */
Test(session_resume, refusals)
{
	struct ct_cell cell = ct_cell(KTLS_TLS1_3, 0);
	ktls_ctx *ctx = ct_client_ctx(), *sctx = ct_server_ctx("server-ec");
	unsigned char sess[8192], junk[64];
	ssize_t n;
	int in_fd, port, fd, fds[2];
	ktls_conn *c, *s;

	cr_assert(ctx && sctx);
	port = start_peer(S_SERVER, &cell, &in_fd);
	c = connect_to(ctx, port, &fd);
	cr_expect_eq(ktls_conn_session(c, sess, sizeof(sess)), -1);
	cr_expect(strstr(ktls_conn_error(c), "handshake not complete"), "%s", ktls_conn_error(c));
	cr_assert_eq(ct_handshake(c, 30000), 0, "%s", ktls_conn_error(c));
	exchange(S_SERVER, c, 64, 3);
	n = ktls_conn_session(c, sess, sizeof(sess));
	cr_assert_gt(n, 0, "%s", ktls_conn_error(c));
	cr_expect_eq(ktls_conn_set_session(c, sess, (size_t)n), -1);
	cr_expect(strstr(ktls_conn_error(c), "only before the handshake"), "%s", ktls_conn_error(c));
	close_conn(c, fd);

	/* the session is localhost's: not for another name */
	fd = tu_connect(port);
	c = ktls_conn_connect(ctx, fd, "other.example");
	cr_assert_not_null(c);
	cr_expect_eq(ktls_conn_set_session(c, sess, (size_t)n), -1);
	cr_expect(strstr(ktls_conn_error(c), "the session is for \"localhost\", this connection "
			 "for \"other.example\""), "%s", ktls_conn_error(c));
	memset(junk, 0x30, sizeof(junk));
	cr_expect_eq(ktls_conn_set_session(c, junk, sizeof(junk)), -1);
	cr_expect(strstr(ktls_conn_error(c), "are not a session"), "%s", ktls_conn_error(c));
	cr_expect_eq(ktls_conn_set_session(c, sess, (size_t)n - 1), -1, "truncated");
	ktls_conn_free(c);
	close(fd);

	/* servers resume by ticket, not by this call */
	cr_assert_eq(tu_tcp_pair(fds), 0);
	s = ktls_conn_accept(sctx, fds[1]);
	cr_assert_not_null(s);
	cr_expect_eq(ktls_conn_set_session(s, sess, (size_t)n), -1);
	cr_expect(strstr(ktls_conn_error(s), "a client call"), "%s", ktls_conn_error(s));
	ktls_conn_free(s);
	close(fds[0]);
	close(fds[1]);
	memset(sess, 0, sizeof(sess));
	ktls_ctx_free(ctx);
	ktls_ctx_free(sctx);
	close(in_fd);
}
