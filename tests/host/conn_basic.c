/*
 * conn_basic.c - the connection object on loopback: role refusals,
 * non-blocking handshakes, bad peers (vanishing, garbage, truncation),
 * write/sendfile partial semantics, shutdown and info.
 * Peers here are our own conn, raw sockets fed by OpenSSL directly, or
 * offload_peer.h's OpenSSL echo peer; interop_*.c has the third-party
 * peers.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "../common/conn_test.h"
#include "../common/offload_peer.h"
#include "ktls.h"
#include "../common/testutil.h"

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(conn_basic, .init = init, .timeout = 60);

/* A client ktls_conn on fds[0] and a server one on fds[1]. */
struct pair {
	int fds[2];
	ktls_ctx *cctx, *sctx;
	ktls_conn *cli, *srv;
};

static void pair_open(struct pair *p)
{
	cr_assert_eq(tu_tcp_pair(p->fds), 0);
	p->cctx = ct_client_ctx();
	p->sctx = ct_server_ctx("server-ec");
	cr_assert(p->cctx && p->sctx);
	p->cli = ktls_conn_connect(p->cctx, p->fds[0], "localhost");
	cr_assert(p->cli, "%s", ktls_ctx_error(p->cctx));
	p->srv = ktls_conn_accept(p->sctx, p->fds[1]);
	cr_assert(p->srv, "%s", ktls_ctx_error(p->sctx));
}

/* Both handshakes on non-blocking sockets from one thread, driven by poll. */
static int pair_handshake(struct pair *p, int *wants)
{
	long long deadline = ct_now_ms() + 10000;
	int rc = 1, rs = 1;

	ct_set_nonblock(p->fds[0], 1);
	ct_set_nonblock(p->fds[1], 1);
	while (rc != 0 || rs != 0) {
		struct pollfd pf[2] = { { .fd = p->fds[0] }, { .fd = p->fds[1] } };

		if (rc != 0)
			rc = ktls_conn_handshake(p->cli);
		if (rs != 0)
			rs = ktls_conn_handshake(p->srv);
		if (rc == -1 || rs == -1) {
			fprintf(stderr, "client: %s / server: %s\n", ktls_conn_error(p->cli),
				ktls_conn_error(p->srv));
			return -1;
		}
		if (rc < 0 || rs < 0)
			(*wants)++;
		pf[0].events = rc == KTLS_WANT_WRITE ? POLLOUT : rc ? POLLIN : 0;
		pf[1].events = rs == KTLS_WANT_WRITE ? POLLOUT : rs ? POLLIN : 0;
		if ((rc || rs) && poll(pf, 2, (int)(deadline - ct_now_ms())) <= 0)
			return -1;
	}
	ct_set_nonblock(p->fds[0], 0);
	ct_set_nonblock(p->fds[1], 0);
	return 0;
}

static void pair_close(struct pair *p)
{
	ktls_conn_free(p->cli);
	ktls_conn_free(p->srv);
	ktls_ctx_free(p->cctx);
	ktls_ctx_free(p->sctx);
	if (p->fds[0] >= 0)
		close(p->fds[0]);
	if (p->fds[1] >= 0)
		close(p->fds[1]);
}

Test(conn_basic, wrong_role_refused)
{
	int fds[2];
	ktls_ctx *cctx = ct_client_ctx(), *sctx = ct_server_ctx("server-ec");

	cr_assert(cctx && sctx);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	cr_expect_null(ktls_conn_connect(sctx, fds[0], "localhost"));
	cr_expect(strstr(ktls_ctx_error(sctx), "wrong-role context"), "%s", ktls_ctx_error(sctx));
	cr_expect_eq(ktls_ctx_error_code(sctx), KTLS_ERR_INVALID);
	cr_expect_null(ktls_conn_accept(cctx, fds[1]));
	cr_expect(strstr(ktls_ctx_error(cctx), "wrong-role context"), "%s", ktls_ctx_error(cctx));
	cr_expect_eq(ktls_ctx_error_code(cctx), KTLS_ERR_INVALID);
	/* The right roles work on the same sockets. */
	ktls_conn *c = ktls_conn_connect(cctx, fds[0], "localhost");
	ktls_conn *s = ktls_conn_accept(sctx, fds[1]);
	cr_expect(c && s);
	ktls_conn_free(c);
	ktls_conn_free(s);
	ktls_ctx_free(cctx);
	ktls_ctx_free(sctx);
	close(fds[0]);
	close(fds[1]);
}

Test(conn_basic, not_a_socket_refused)
{
	int pfd[2];
	ktls_ctx *cctx = ct_client_ctx();

	cr_assert(cctx);
	cr_assert_eq(pipe(pfd), 0);
	cr_expect_null(ktls_conn_new(cctx, pfd[0], "localhost"));
	cr_expect(strstr(ktls_ctx_error(cctx), "not a socket"), "%s", ktls_ctx_error(cctx));
	cr_expect_null(ktls_conn_new(cctx, -1, "localhost"));
	cr_expect(strstr(ktls_ctx_error(cctx), "not a socket"), "%s", ktls_ctx_error(cctx));
	close(pfd[0]);
	close(pfd[1]);
	ktls_ctx_free(cctx);
}

Test(conn_basic, nonblocking_handshake_info_and_shutdown)
{
	struct pair p;
	struct ktls_info info;
	int wants = 0;
	char buf[64];

	pair_open(&p);
	cr_expect_eq(ktls_conn_info(p.cli, &info), -1, "info before the handshake must fail");
	cr_expect(strstr(ktls_conn_error(p.cli), "handshake not complete"));
	cr_expect_eq(ktls_conn_read(p.cli, buf, sizeof(buf)), -1);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	cr_expect_gt(wants, 0, "a non-blocking handshake must have asked to wait");

	cr_assert_eq(ktls_conn_info(p.cli, &info), 0);
	cr_expect_eq(info.version, KTLS_TLS1_3);
	cr_expect_str_eq(info.version_name, "TLSv1.3");
	cr_expect_eq(info.tx, KTLS_MODE_USER);
	cr_expect_eq(info.rx, KTLS_MODE_USER);
	cr_assert_not_null(info.fallback_reason);
	cr_expect_str_eq(info.fallback_reason, "offload not requested");
	cr_assert_eq(ktls_conn_info(p.srv, &info), 0);
	cr_expect_str_eq(info.cipher, "TLS_AES_256_GCM_SHA384");
	cr_expect_eq(ktls_conn_fd(p.srv), p.fds[1]);
	cr_expect_eq(ktls_conn_handshake(p.cli), 0, "a finished handshake stays finished");

	cr_assert_eq(ktls_conn_write(p.cli, "ping", 4), 4);
	cr_assert_eq(ct_read_full(p.srv, buf, 4), 0);
	cr_expect_eq(memcmp(buf, "ping", 4), 0);

	/* close_notify: the peer reads 0, every time; we cannot write after. */
	cr_assert_eq(ktls_conn_shutdown(p.cli), 0, "%s", ktls_conn_error(p.cli));
	cr_expect_eq(ktls_conn_shutdown(p.cli), 0, "a second shutdown is a no-op");
	cr_expect_eq(ktls_conn_read(p.srv, buf, sizeof(buf)), 0, "%s", ktls_conn_error(p.srv));
	cr_expect_eq(ktls_conn_read(p.srv, buf, sizeof(buf)), 0);
	cr_expect_eq(ktls_conn_write(p.cli, "x", 1), -1);
	cr_expect(strstr(ktls_conn_error(p.cli), "shut down"), "%s", ktls_conn_error(p.cli));
	/* The half-closed server can still send, then close. */
	cr_assert_eq(ktls_conn_write(p.srv, "pong", 4), 4);
	cr_assert_eq(ct_read_full(p.cli, buf, 4), 0);
	cr_assert_eq(ktls_conn_shutdown(p.srv), 0, "%s", ktls_conn_error(p.srv));
	cr_expect_eq(ktls_conn_read(p.cli, buf, sizeof(buf)), 0, "%s", ktls_conn_error(p.cli));
	pair_close(&p);
}

Test(conn_basic, free_never_closes_fd)
{
	struct pair p;
	int wants = 0;

	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	ktls_conn_free(p.cli);
	ktls_conn_free(p.srv);
	p.cli = p.srv = NULL;
	cr_expect_neq(fcntl(p.fds[0], F_GETFD), -1);
	cr_expect_neq(fcntl(p.fds[1], F_GETFD), -1);
	/* The contexts outlive nothing: freeing them first is fine too. */
	ktls_conn_free(NULL);
	pair_close(&p);
}

/* The ClientHello a stock OpenSSL client would send (via memory BIOs). */
static size_t client_hello(unsigned char *out, size_t cap)
{
	SSL_CTX *sc = SSL_CTX_new(TLS_client_method());
	SSL *s = SSL_new(sc);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	char *data;
	long n;

	SSL_set_bio(s, rb, wb);
	SSL_set_connect_state(s);
	SSL_set_tlsext_host_name(s, "localhost");
	cr_assert_eq(SSL_do_handshake(s), -1);
	n = BIO_get_mem_data(wb, &data);
	cr_assert_gt(n, 50);
	cr_assert_lt((size_t)n, cap);
	memcpy(out, data, (size_t)n);
	SSL_free(s);
	SSL_CTX_free(sc);
	return (size_t)n;
}

/* The error code of the last server_against_raw failure. */
static int raw_code;

/* Our server against raw bytes on fds[0]; returns the handshake result. */
static int server_against_raw(const void *raw, size_t len, int then_close, char *err, size_t errlen)
{
	int fds[2], r;
	ktls_ctx *sctx = ct_server_ctx("server-ec");
	ktls_conn *s;

	cr_assert(sctx);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	s = ktls_conn_accept(sctx, fds[1]);
	cr_assert(s);
	if (len)
		cr_assert_eq(tu_write_full(fds[0], raw, len), 0);
	if (then_close) {
		close(fds[0]);
		fds[0] = -1;
	}
	r = ct_handshake(s, 10000);
	snprintf(err, errlen, "%s", ktls_conn_error(s));
	raw_code = ktls_conn_error_code(s);
	ktls_conn_free(s);
	ktls_ctx_free(sctx);
	if (fds[0] >= 0)
		close(fds[0]);
	close(fds[1]);
	return r;
}

Test(conn_basic, peer_vanishes_mid_handshake)
{
	unsigned char ch[4096];
	size_t n = client_hello(ch, sizeof(ch));
	char err[256];

	cr_expect_eq(server_against_raw(ch, n / 2, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "peer closed the connection during the handshake"), "%s", err);
	cr_expect_eq(raw_code, KTLS_ERR_PEER_CLOSED, "%s", ktls_error_name(raw_code));
	/* Nothing at all before the close. */
	cr_expect_eq(server_against_raw(NULL, 0, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "peer closed the connection during the handshake"), "%s", err);
	cr_expect_eq(raw_code, KTLS_ERR_PEER_CLOSED, "%s", ktls_error_name(raw_code));
}

/* A blocking socket whose SO_RCVTIMEO expires: the call returns as a
 * non-blocking one would, and the code says it timed out. */
Test(conn_basic, receive_timeout_on_a_blocking_socket)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };
	int fds[2];
	ktls_ctx *cctx = ct_client_ctx();
	ktls_conn *c;

	cr_assert(cctx);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	cr_assert_eq(setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	c = ktls_conn_connect(cctx, fds[0], "localhost");
	cr_assert(c, "%s", ktls_ctx_error(cctx));
	/* The peer (fds[1]) never answers the ClientHello. */
	cr_expect_eq(ktls_conn_handshake(c), KTLS_WANT_READ);
	cr_expect_eq(ktls_conn_error_code(c), KTLS_ERR_TIMEOUT, "%s: %s",
		     ktls_error_name(ktls_conn_error_code(c)), ktls_conn_error(c));
	cr_expect(strstr(ktls_conn_error(c), "SO_RCVTIMEO"), "%s", ktls_conn_error(c));
	ktls_conn_free(c);
	ktls_ctx_free(cctx);
	close(fds[0]);
	close(fds[1]);
}

Test(conn_basic, garbage_instead_of_client_hello)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	unsigned char junk[512];
	char err[256];

	cr_expect_eq(server_against_raw(http, sizeof(http) - 1, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "non-TLS data") && strstr(err, "0x47"), "%s", err);
	tu_fill(junk, sizeof(junk), 7);
	junk[0] = 0x00;
	cr_expect_eq(server_against_raw(junk, sizeof(junk), 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "non-TLS data"), "%s", err);
}

Test(conn_basic, old_version_named)
{
	/* A TLS 1.1-only ClientHello, made by OpenSSL at security level 0. */
	SSL_CTX *sc = SSL_CTX_new(TLS_client_method());
	SSL *s;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	char *data, err[256];
	long n;

	SSL_CTX_set_security_level(sc, 0);
	SSL_CTX_set_min_proto_version(sc, TLS1_1_VERSION);
	SSL_CTX_set_max_proto_version(sc, TLS1_1_VERSION);
	SSL_CTX_set_cipher_list(sc, "DEFAULT:@SECLEVEL=0");
	s = SSL_new(sc);
	SSL_set_bio(s, rb, wb);
	SSL_set_connect_state(s);
	cr_assert_eq(SSL_do_handshake(s), -1);
	n = BIO_get_mem_data(wb, &data);
	cr_assert_gt(n, 20);
	cr_expect_eq(server_against_raw(data, (size_t)n, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "peer offered only TLS 1.1; minimum is TLS 1.2");
	SSL_free(s);
	SSL_CTX_free(sc);
}

Test(conn_basic, wrong_hostname_like_python)
{
	int fds[2], wants = 0;
	struct pair p;

	(void)fds;
	(void)wants;
	cr_assert_eq(tu_tcp_pair(p.fds), 0);
	p.cctx = ct_client_ctx();
	p.sctx = ct_server_ctx("server-ec");
	p.cli = ktls_conn_connect(p.cctx, p.fds[0], "wrong.example");
	p.srv = ktls_conn_accept(p.sctx, p.fds[1]);
	cr_assert(p.cli && p.srv);
	cr_assert_eq(pair_handshake(&p, &wants), -1);
	cr_expect_str_eq(ktls_conn_error(p.cli), "certificate verify failed: Hostname mismatch, "
						  "certificate is not valid for 'wrong.example'");
	cr_expect_str_eq(ktls_conn_error(p.srv), "peer sent alert: bad certificate");
	/* A failed handshake stays failed, with the same reason. */
	cr_expect_eq(ktls_conn_handshake(p.cli), -1);
	cr_expect(strstr(ktls_conn_error(p.cli), "Hostname mismatch"), "%s", ktls_conn_error(p.cli));
	cr_expect_eq(ktls_conn_write(p.cli, "x", 1), -1);
	cr_expect(strstr(ktls_conn_error(p.cli), "handshake not complete"), "%s",
		  ktls_conn_error(p.cli));
	pair_close(&p);
}

Test(conn_basic, truncation_is_an_error)
{
	struct pair p;
	int wants = 0;
	char buf[64];

	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	cr_assert_eq(ktls_conn_write(p.srv, "last", 4), 4);
	/* Server goes away without close_notify. */
	ktls_conn_free(p.srv);
	p.srv = NULL;
	shutdown(p.fds[1], SHUT_RDWR);
	cr_assert_eq(ct_read_full(p.cli, buf, 4), 0, "data before the cut still arrives");
	cr_expect_eq(ktls_conn_read(p.cli, buf, sizeof(buf)), -1);
	cr_expect(strstr(ktls_conn_error(p.cli), "peer closed without close_notify (truncation)"),
		  "%s", ktls_conn_error(p.cli));
	pair_close(&p);
}

Test(conn_basic, reset_is_truncation)
{
	struct pair p;
	int wants = 0;
	char buf[64];
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	/* Drain the client's tickets on the server so the close is a clean RST. */
	cr_assert_eq(ktls_conn_write(p.cli, "hi", 2), 2);
	cr_assert_eq(ct_read_full(p.srv, buf, 2), 0);
	ktls_conn_free(p.srv);
	p.srv = NULL;
	setsockopt(p.fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(p.fds[1]);
	p.fds[1] = -1;
	usleep(50000);
	cr_expect_eq(ktls_conn_read(p.cli, buf, sizeof(buf)), -1);
	cr_expect(strstr(ktls_conn_error(p.cli), "truncation"), "%s", ktls_conn_error(p.cli));
	pair_close(&p);
}

/* ---- bulk: non-blocking write staging and the sendfile fallback ------------ */

struct sink {
	ktls_conn *c;
	size_t want;
	unsigned char *buf;
	size_t got;
	ssize_t last;  /* the read after want bytes: expect 0 */
	int slow;
};

static void *sink_main(void *arg)
{
	struct sink *s = arg;

	while (s->got < s->want) {
		size_t n = s->want - s->got;
		if (s->slow && n > 1000)
			n = 1000;
		ssize_t r = ktls_conn_read(s->c, s->buf + s->got, n);
		if (r <= 0) {
			s->last = r;
			return NULL;
		}
		s->got += (size_t)r;
		if (s->slow && s->got % 65536 < 1000)
			usleep(2000);
	}
	s->last = ct_read_eof(s->c, 10000);
	return NULL;
}

/*
 * Small enough that a slow reader makes writes block, not so small that
 * loopback's 64 KiB MSS trips sender-side silly-window avoidance (which
 * stalls on the persist timer).
 */
static void small_buffers(struct pair *p)
{
	int sz = 65536;
	setsockopt(p->fds[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(p->fds[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

Test(conn_basic, nonblocking_write_is_exact)
{
	struct pair p;
	size_t len = 3 * CT_MIB + 123, done = 0;
	unsigned char *data = malloc(len), *rx = malloc(len);
	struct sink s = { 0 };
	pthread_t th;
	int wants = 0, wouldblock = 0, partial = 0;
	long long deadline;

	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	small_buffers(&p);
	tu_fill(data, len, 11);
	s = (struct sink){ .c = p.srv, .want = len, .buf = rx, .slow = 1 };
	pthread_create(&th, NULL, sink_main, &s);
	ct_set_nonblock(p.fds[0], 1);
	deadline = ct_now_ms() + 30000;
	for (;;) {
		ssize_t r = ktls_conn_write(p.cli, data + done, len - done);
		if (r == KTLS_WANT_WRITE) {
			wouldblock++;
			cr_assert_eq(ct_wait(p.fds[0], r, deadline), 0, "timeout at %zu; reader got %zu, last %zd: %s",
				     done, s.got, s.last, ktls_conn_error(p.srv));
			continue;
		}
		cr_assert_geq(r, 0, "%s", ktls_conn_error(p.cli));
		if (done == len && r == 0)
			break; /* flushed */
		if (r > 0 && (size_t)r < len - done)
			partial++;
		done += (size_t)r;
	}
	cr_assert_eq(ktls_conn_shutdown(p.cli), 0, "%s", ktls_conn_error(p.cli));
	pthread_join(th, NULL);
	cr_expect_gt(wouldblock, 0, "the test must make the socket block");
	cr_expect_gt(partial, 0, "and see partial writes");
	cr_assert_eq(s.got, len);
	cr_expect_eq(memcmp(rx, data, len), 0, "bytes differ");
	cr_expect_eq(s.last, 0, "close_notify read as 0: %s", ktls_conn_error(p.srv));
	pair_close(&p);
	free(data);
	free(rx);
}

static int temp_file(const unsigned char *data, size_t len)
{
	char path[] = "/tmp/ktls-sendfile-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	if (len)
		cr_assert_eq(tu_write_full(fd, data, len), 0);
	return fd;
}

/* Blocking sendfile of the whole file (asking for more than it has). */
static void sendfile_size(size_t len)
{
	struct pair p;
	unsigned char *data = malloc(len + 1), *rx = malloc(len + 1);
	struct sink s;
	pthread_t th;
	int wants = 0, fd;
	off_t off = 0;
	ssize_t r;
	size_t total = 0;

	tu_fill(data, len, (unsigned)len);
	fd = temp_file(data, len);
	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	s = (struct sink){ .c = p.srv, .want = len, .buf = rx };
	pthread_create(&th, NULL, sink_main, &s);
	while ((r = ktls_conn_sendfile(p.cli, fd, &off, len + 1000 - total)) > 0)
		total += (size_t)r;
	cr_expect_eq(r, 0, "end of file reads as 0: %s", ktls_conn_error(p.cli));
	cr_expect_eq(total, len);
	cr_expect_eq(off, (off_t)len, "offset advanced by what was sent");
	cr_expect_eq(lseek(fd, 0, SEEK_CUR), (off_t)len, "file position untouched with an offset");
	cr_assert_eq(ktls_conn_shutdown(p.cli), 0);
	pthread_join(th, NULL);
	cr_assert_eq(s.got, len, "size %zu", len);
	cr_expect_eq(memcmp(rx, data, len), 0, "bytes differ at size %zu", len);
	cr_expect_eq(s.last, 0);
	pair_close(&p);
	close(fd);
	free(data);
	free(rx);
}

Test(conn_basic, sendfile_fallback_sizes)
{
	static const size_t sizes[] = { 0, 1, 16383, 16384, 16385, CT_MIB };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		sendfile_size(sizes[i]);
}

Test(conn_basic, sendfile_offsets_and_counts)
{
	struct pair p;
	size_t len = 100000;
	unsigned char *data = malloc(len), rx[100];
	int wants = 0, fd;
	off_t off = 1000;
	struct ktls_info info;

	tu_fill(data, len, 5);
	fd = temp_file(data, len);
	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	cr_assert_eq(ktls_conn_sendfile(p.cli, fd, &off, 50), 50);
	cr_expect_eq(off, 1050);
	cr_assert_eq(ct_read_full(p.srv, rx, 50), 0);
	cr_expect_eq(memcmp(rx, data + 1000, 50), 0);
	/* Offset at EOF: 0.  Count beyond EOF: what is there. */
	off = (off_t)len;
	cr_expect_eq(ktls_conn_sendfile(p.cli, fd, &off, 10), 0);
	off = (off_t)len - 7;
	cr_expect_eq(ktls_conn_sendfile(p.cli, fd, &off, 100), 7);
	cr_expect_eq(off, (off_t)len);
	cr_assert_eq(ct_read_full(p.srv, rx, 7), 0);
	cr_expect_eq(memcmp(rx, data + len - 7, 7), 0);
	/* NULL offset: the file position is used and advanced. */
	cr_assert_eq(lseek(fd, 20, SEEK_SET), 20);
	cr_expect_eq(ktls_conn_sendfile(p.cli, fd, NULL, 30), 30);
	cr_expect_eq(lseek(fd, 0, SEEK_CUR), 50);
	cr_assert_eq(ct_read_full(p.srv, rx, 30), 0);
	cr_expect_eq(memcmp(rx, data + 20, 30), 0);
	/* A bad fd is a clear error. */
	off = 0;
	cr_expect_eq(ktls_conn_sendfile(p.cli, -1, &off, 10), -1);
	cr_expect(strstr(ktls_conn_error(p.cli), "reading fd -1"), "%s", ktls_conn_error(p.cli));
	cr_expect_eq(off, 0);
	cr_assert_eq(ktls_conn_info(p.cli, &info), 0);
	cr_expect_eq(info.tx, KTLS_MODE_USER);
	pair_close(&p);
	close(fd);
	free(data);
}

Test(conn_basic, nonblocking_sendfile_resumes_exactly)
{
	struct pair p;
	size_t len = 2 * CT_MIB + 77;
	unsigned char *data = malloc(len), *rx = malloc(len);
	struct sink s;
	pthread_t th;
	int wants = 0, fd, wouldblock = 0;
	off_t off = 0;
	long long deadline;

	tu_fill(data, len, 3);
	fd = temp_file(data, len);
	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	small_buffers(&p);
	s = (struct sink){ .c = p.srv, .want = len, .buf = rx, .slow = 1 };
	pthread_create(&th, NULL, sink_main, &s);
	ct_set_nonblock(p.fds[0], 1);
	deadline = ct_now_ms() + 30000;
	while ((size_t)off < len) {
		off_t before = off;
		ssize_t r = ktls_conn_sendfile(p.cli, fd, &off, len - (size_t)off);
		if (r == KTLS_WANT_WRITE) {
			wouldblock++;
			cr_assert_eq(off, before, "no progress, no offset change");
			cr_assert_eq(ct_wait(p.fds[0], r, deadline), 0);
			continue;
		}
		cr_assert_gt(r, 0, "%zd: %s", r, ktls_conn_error(p.cli));
		cr_assert_eq(off, before + r, "offset advances by the return value");
	}
	/* Flush what is staged, then close. */
	for (;;) {
		ssize_t r = ktls_conn_write(p.cli, NULL, 0);
		if (r == 0)
			break;
		cr_assert_eq(r, KTLS_WANT_WRITE);
		cr_assert_eq(ct_wait(p.fds[0], r, deadline), 0);
	}
	for (;;) {
		int r = ktls_conn_shutdown(p.cli);
		if (r == 0)
			break;
		cr_assert_eq(r, KTLS_WANT_WRITE, "%s", ktls_conn_error(p.cli));
		cr_assert_eq(ct_wait(p.fds[0], r, deadline), 0);
	}
	pthread_join(th, NULL);
	cr_expect_gt(wouldblock, 0, "the test must make the socket block");
	cr_assert_eq(s.got, len);
	cr_expect_eq(memcmp(rx, data, len), 0, "bytes differ");
	cr_expect_eq(s.last, 0);
	pair_close(&p);
	close(fd);
	free(data);
	free(rx);
}

/*
 * ktls_conn_offload through the connection: on the host (no CONFIG_TLS)
 * both directions stay in userspace with a reason naming the missing ULP
 * and the connection keeps working; where kTLS must work, both move.
 */
Test(conn_basic, offload_fallback_keeps_working)
{
	struct pair p;
	struct ktls_info info;
	int wants = 0, fd;
	unsigned char data[5000], rx[5000];
	off_t off = 0;

	tu_fill(data, sizeof(data), 9);
	fd = temp_file(data, sizeof(data));
	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	cr_assert_eq(ktls_conn_offload(p.cli), 0, "%s", ktls_conn_error(p.cli));
	cr_assert_eq(ktls_conn_offload(p.srv), 0, "%s", ktls_conn_error(p.srv));
	cr_assert_eq(ktls_conn_info(p.cli, &info), 0);
	if (tu_expect_ktls()) {
		cr_expect_eq(info.tx, KTLS_MODE_SW);
		cr_expect_eq(info.rx, KTLS_MODE_SW);
		cr_expect_null(info.fallback_reason);
	} else {
		cr_expect_eq(info.tx, KTLS_MODE_USER);
		cr_expect_eq(info.rx, KTLS_MODE_USER);
		cr_assert_not_null(info.fallback_reason);
		cr_expect(strstr(info.fallback_reason, "TCP_ULP \"tls\""), "%s",
			  info.fallback_reason);
		cr_expect(strcmp(info.fallback_reason, "offload not requested") != 0);
	}
	/* Same results either way: write, sendfile, read, close_notify. */
	cr_assert_eq(ktls_conn_write(p.cli, data, 1000), 1000, "%s", ktls_conn_error(p.cli));
	cr_assert_eq(ct_read_full(p.srv, rx, 1000), 0);
	cr_expect_eq(memcmp(rx, data, 1000), 0);
	cr_assert_eq(ktls_conn_sendfile(p.cli, fd, &off, sizeof(data)), (ssize_t)sizeof(data),
		     "%s", ktls_conn_error(p.cli));
	cr_assert_eq(ct_read_full(p.srv, rx, sizeof(data)), 0);
	cr_expect_eq(memcmp(rx, data, sizeof(data)), 0);
	cr_assert_eq(ktls_conn_write(p.srv, "back", 4), 4, "%s", ktls_conn_error(p.srv));
	cr_assert_eq(ct_read_full(p.cli, rx, 4), 0);
	cr_assert_eq(ktls_conn_shutdown(p.cli), 0, "%s", ktls_conn_error(p.cli));
	cr_expect_eq(ct_read_eof(p.srv, 5000), 0, "%s", ktls_conn_error(p.srv));
	pair_close(&p);
	close(fd);
}

/*
 * Userspace ktls_conn_write_more: the head's record waits in TCP (MSG_MORE)
 * and leaves with the next write's, so the peer wakes once for both; a
 * plain write is never held.  The peer is OpenSSL (offload_peer.h), which
 * echoes every record it gets: no echo, nothing arrived.
 */
Test(conn_basic, write_more_waits_for_the_next_write)
{
	struct run r;
	struct pollfd pf;
	static unsigned char big[40000], back[40000];
	char rx[8] = "";

	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	r.tickets = 0; /* nothing of ours on the wire but what the test writes */
	peer_start(&r.peer);
	cr_assert_eq(ours_open(&r.us, KTLS_SERVER, &r.peer.s, r.tickets, r.fds[0], NULL), 0,
		     "%s (peer: %s)", r.us.err, r.peer.err);
	pf = (struct pollfd){ .fd = r.fds[0], .events = POLLIN };
	cr_assert_eq(ktls_conn_write_more(r.us.c, "HEAD", 4), 4, "%s", ktls_conn_error(r.us.c));
	cr_expect_eq(poll(&pf, 1, 200), 0, "the head's record left alone: OpenSSL echoed it");
	cr_assert_eq(ktls_conn_write(r.us.c, "BODY", 4), 4, "%s", ktls_conn_error(r.us.c));
	cr_assert_eq(ct_read_full(r.us.c, rx, 8), 0, "%s", ktls_conn_error(r.us.c));
	cr_expect_eq(memcmp(rx, "HEADBODY", 8), 0);
	/* A plain write is not held. */
	cr_assert_eq(ktls_conn_write(r.us.c, "TAIL", 4), 4, "%s", ktls_conn_error(r.us.c));
	cr_expect_eq(poll(&pf, 1, 2000), 1, "a plain write was held");
	cr_assert_eq(ct_read_full(r.us.c, rx, 4), 0, "%s", ktls_conn_error(r.us.c));
	cr_expect_eq(memcmp(rx, "TAIL", 4), 0);
	/* Records but the last of one write go with MSG_MORE; the last pushes them all. */
	tu_fill(big, sizeof(big), 3);
	cr_assert_eq(ktls_conn_write(r.us.c, big, sizeof(big)), (ssize_t)sizeof(big), "%s",
		     ktls_conn_error(r.us.c));
	cr_expect_eq(poll(&pf, 1, 2000), 1, "a three-record write was held");
	cr_assert_eq(ct_read_full(r.us.c, back, sizeof(back)), 0, "%s", ktls_conn_error(r.us.c));
	cr_expect_eq(memcmp(big, back, sizeof(big)), 0);
	run_finish(&r);
}

/* ktls_conn_pending: whether the next read returns without the socket. */
Test(conn_basic, pending_says_whether_a_read_needs_the_socket)
{
	struct pair p;
	char rx[8] = "";
	int wants = 0;

	cr_expect_eq(ktls_conn_pending(NULL), 0);
	pair_open(&p);
	cr_expect_eq(ktls_conn_pending(p.srv), 0, "before the handshake");
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	cr_expect_eq(ktls_conn_pending(p.srv), 0, "nothing sent yet");
	cr_assert_eq(ktls_conn_write(p.cli, "ab", 2), 2, "%s", ktls_conn_error(p.cli));
	cr_assert_eq(ktls_conn_write(p.cli, "cd", 2), 2, "%s", ktls_conn_error(p.cli));
	usleep(100000);
	/* the records wait in the socket: a read must fetch them */
	cr_expect_eq(ktls_conn_pending(p.srv), 0);
	cr_assert_eq(ktls_conn_read(p.srv, rx, 1), 1, "%s", ktls_conn_error(p.srv));
	cr_expect_eq(ktls_conn_pending(p.srv), 1, "the second record was read ahead");
	cr_assert_eq(ct_read_full(p.srv, rx + 1, 3), 0, "%s", ktls_conn_error(p.srv));
	cr_expect_eq(memcmp(rx, "abcd", 4), 0);
	cr_expect_eq(ktls_conn_pending(p.srv), 0, "all read");
	cr_assert_eq(ktls_conn_shutdown(p.cli), 0, "%s", ktls_conn_error(p.cli));
	cr_expect_eq(ct_read_eof(p.srv, 5000), 0, "%s", ktls_conn_error(p.srv));
	cr_expect_eq(ktls_conn_pending(p.srv), 1, "after close_notify a read returns 0 at once");
	pair_close(&p);
}

/* Writing to a peer that is gone fails cleanly; no SIGPIPE kills us. */
Test(conn_basic, write_to_vanished_peer_no_sigpipe)
{
	struct pair p;
	int wants = 0;
	unsigned char data[16384];
	ssize_t r = 0;

	pair_open(&p);
	cr_assert_eq(pair_handshake(&p, &wants), 0);
	signal(SIGPIPE, SIG_DFL);
	ktls_conn_free(p.srv);
	p.srv = NULL;
	close(p.fds[1]);
	p.fds[1] = -1;
	tu_fill(data, sizeof(data), 1);
	for (int i = 0; i < 50 && r >= 0; i++) {
		r = ktls_conn_write(p.cli, data, sizeof(data));
		usleep(2000);
	}
	cr_expect_eq(r, -1, "writes to a closed peer must fail");
	cr_expect(strstr(ktls_conn_error(p.cli), "peer"), "%s", ktls_conn_error(p.cli));
	/* A close_notify to nobody fails the same way, still without SIGPIPE. */
	cr_expect_eq(ktls_conn_shutdown(p.cli), -1);
	pair_close(&p);
}

/*
 * A server that picks TLS 1.1 (real ones refuse our AEAD-only hello with
 * an alert first, so this one is hand-made): the version is named.
 */
Test(conn_basic, server_choosing_tls11_named)
{
	static const unsigned char hello[] = {
		0x16, 0x03, 0x02, 0x00, 0x2a,             /* handshake record, TLS 1.1 */
		0x02, 0x00, 0x00, 0x26, 0x03, 0x02,       /* ServerHello, version 1.1 */
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
		0x00, 0xc0, 0x2f, 0x00,                   /* no session id, suite, null */
	};
	int fds[2];
	ktls_ctx *cctx = ct_client_ctx();
	ktls_conn *c;
	char buf[4096];

	cr_assert(cctx);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	c = ktls_conn_connect(cctx, fds[0], "localhost");
	cr_assert(c);
	ct_set_nonblock(fds[0], 1);
	cr_assert_eq(ktls_conn_handshake(c), KTLS_WANT_READ);
	cr_assert_gt(read(fds[1], buf, sizeof(buf)), 0, "our ClientHello");
	cr_assert_eq(tu_write_full(fds[1], hello, sizeof(hello)), 0);
	cr_expect_eq(ct_handshake(c, 5000), -1);
	cr_expect_str_eq(ktls_conn_error(c), "peer chose TLS 1.1; minimum is TLS 1.2");
	ktls_conn_free(c);
	ktls_ctx_free(cctx);
	close(fds[0]);
	close(fds[1]);
}
