/*
 * uring_xfer.c - the public io_uring bulk path (ktls_uring.h) against a
 * real receiver: Python's ssl module reads what the transfer sends and
 * reports its length and SHA-256.
 *
 * On the host TX stays in userspace, so transfers must take the fallback
 * (ktls_uring_xfer_mode() == KTLS_MODE_USER, with the reason in the conn
 * info).  The same binary is the guest suite (tests/guest/uring_xfer):
 * in the kTLS guest (KTLS_TEST_EXPECT_KTLS=1) the same tests must splice
 * into kTLS (mode SW), and the kTLS-only cases at the end run:
 * /proc/net/tls_stat counts the offloaded connections, the RECVMSG helper
 * on a kTLS RX socket tells data from the peer's close_notify alert, and
 * the AES-GCM record limit is respected on the splice path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kernel.h" /* kernel_gcm_record_limit: lowered to reach it quickly */
#include "ktls.h"
#include "ktls_uring.h"

#include "../common/testutil.h"

static const char *client_py =
	"import ssl, socket, sys, hashlib, struct\n"
	"port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
	"ctx = ssl.create_default_context(cafile=ca)\n"
	"s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=30), server_hostname='localhost')\n"
	"h = hashlib.sha256(); n = 0\n"
	"if mode == 'vanish':\n"
	"    s.recv(1000)\n"
	"    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); s.close()\n"
	"    print('0 gone'); sys.exit(0)\n"
	"while True:\n"
	"    try: d = s.recv(1 << 20)\n"
	"    except ssl.SSLZeroReturnError: break\n"
	"    if not d: break\n"
	"    h.update(d); n += len(d)\n"
	"print(n, h.hexdigest())\n";

static struct {
	char dir[64], py[128], file[128];
	int lfd, port;
	pid_t client;
	int client_out;
	ktls_ctx *ctx;
	ktls_conn *conn;
	int fd;
	struct io_uring ring;
	unsigned char *data;
	size_t size;
} T;

#define FILE_SIZE ((1 << 20) + 3)

static void setup(void)
{
	FILE *f;
	int fd;

	signal(SIGPIPE, SIG_IGN); /* as any server must: the peer may vanish */
	snprintf(T.dir, sizeof(T.dir), "/tmp/uring-xfer-XXXXXX");
	cr_assert(mkdtemp(T.dir));
	snprintf(T.py, sizeof(T.py), "%s/client.py", T.dir);
	snprintf(T.file, sizeof(T.file), "%s/data.bin", T.dir);
	f = fopen(T.py, "w");
	cr_assert(f);
	fputs(client_py, f);
	fclose(f);
	T.size = FILE_SIZE;
	T.data = malloc(T.size);
	cr_assert(T.data);
	tu_fill(T.data, T.size, 99);
	fd = open(T.file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(tu_write_full(fd, T.data, T.size), 0);
	close(fd);
	T.lfd = tu_listen(&T.port);
	cr_assert_geq(T.lfd, 0);
	T.ctx = ktls_ctx_new(KTLS_SERVER);
	cr_assert(T.ctx);
	cr_assert_eq(ktls_ctx_load_cert_chain(T.ctx, tu_cert("server-ec.pem"), tu_cert("server-ec.key")), 0,
		     "%s", ktls_ctx_error(T.ctx));
	cr_assert_eq(io_uring_queue_init(64, &T.ring, 0), 0);
	T.fd = -1;
}

static void teardown(void)
{
	char cmd[128];

	if (T.conn)
		ktls_conn_free(T.conn);
	if (T.fd >= 0)
		close(T.fd);
	io_uring_queue_exit(&T.ring);
	ktls_ctx_free(T.ctx);
	close(T.lfd);
	free(T.data);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", T.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", T.dir);
	memset(&T, 0, sizeof(T));
}

/* Start the Python receiver, accept it, handshake, offload, go non-blocking. */
static void connect_client(const char *mode)
{
	char port[16];
	char *argv[] = { "/usr/bin/python3", T.py, port, (char *)tu_cert("ca.pem"), (char *)mode, NULL };
	struct ktls_info in;

	snprintf(port, sizeof(port), "%d", T.port);
	T.client = tu_spawn(argv, NULL, &T.client_out);
	cr_assert_gt(T.client, 0);
	T.fd = accept(T.lfd, NULL, NULL);
	cr_assert_geq(T.fd, 0);
	T.conn = ktls_conn_accept(T.ctx, T.fd);
	cr_assert(T.conn, "%s", ktls_ctx_error(T.ctx));
	cr_assert_eq(ktls_conn_handshake(T.conn), 0, "%s", ktls_conn_error(T.conn));
	cr_assert_eq(ktls_conn_offload(T.conn), 0, "%s", ktls_conn_error(T.conn));
	cr_assert_eq(ktls_conn_info(T.conn, &in), 0);
	if (tu_expect_ktls())
		cr_assert_neq(in.tx, KTLS_MODE_USER, "guest: TX not offloaded: %s",
			      in.fallback_reason ? in.fallback_reason : "?");
	else
		cr_assert(in.tx == KTLS_MODE_USER && in.fallback_reason && *in.fallback_reason,
			  "host: expected the userspace fallback with a reason");
	cr_assert_eq(fcntl(T.fd, F_SETFL, fcntl(T.fd, F_GETFL) | O_NONBLOCK), 0);
}

/* Close our side cleanly and collect "LEN SHA" from the client. */
static void finish_client(size_t *len, char sha[65])
{
	char out[256] = "";
	ssize_t n;
	int st;

	ktls_conn_shutdown(T.conn);
	shutdown(T.fd, SHUT_WR);
	{
		size_t got = 0;

		while (got < sizeof(out) - 1 && (n = read(T.client_out, out + got, sizeof(out) - 1 - got)) > 0)
			got += (size_t)n;
		out[got] = '\0';
	}
	close(T.client_out);
	st = tu_wait(T.client, 30000);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "client failed (status 0x%x): %s", st, out);
	*len = strtoul(out, NULL, 10);
	snprintf(sha, 65, "%s", strchr(out, ' ') ? strchr(out, ' ') + 1 : "");
	sha[64] = '\0';
}

/* Drive one transfer to its end on the ring; returns 1 or -1. */
static int run_xfer(ktls_uring_xfer *x, int fd, off_t off, size_t len, int *cqes)
{
	static char tagbase __attribute__((aligned(8)));
	uint64_t ud = (uint64_t)(uintptr_t)&tagbase;
	int r = ktls_uring_xfer_start(x, &T.ring, fd, off, len, ud);

	*cqes = 0;
	while (r == 0) {
		struct io_uring_cqe *cqe;

		cr_assert_geq(io_uring_submit_and_wait(&T.ring, 1), 0);
		cr_assert_eq(io_uring_peek_cqe(&T.ring, &cqe), 0);
		cr_assert(ktls_uring_owns(cqe->user_data), "foreign CQE 0x%llx",
			  (unsigned long long)cqe->user_data);
		cr_assert_eq(ktls_uring_ptr(cqe->user_data), (void *)&tagbase);
		r = ktls_uring_xfer_cqe(x, &T.ring, cqe);
		io_uring_cqe_seen(&T.ring, cqe);
		(*cqes)++;
	}
	if (r != 0)
		cr_assert_eq(ktls_uring_xfer_busy(x), 0, "ended with SQEs in flight");
	/* Done means sent: no record of it may still wait in userspace. */
	if (r == 1)
		cr_assert_eq(ktls_conn_write(T.conn, NULL, 0), 0, "a record still staged after the end");
	return r;
}

static void expect_mode(ktls_uring_xfer *x)
{
	if (tu_expect_ktls())
		cr_expect_neq(ktls_uring_xfer_mode(x), KTLS_MODE_USER, "guest: transfer not spliced");
	else
		cr_expect_eq(ktls_uring_xfer_mode(x), KTLS_MODE_USER, "host: transfer must fall back");
}

TestSuite(uring, .init = setup, .fini = teardown, .timeout = 120);

Test(uring, whole_file)
{
	int fd = open(T.file, O_RDONLY), cqes;
	char sha[65], want[65];
	ktls_uring_xfer *x;
	size_t len;

	cr_assert_geq(fd, 0);
	connect_client("read");
	x = ktls_uring_xfer_new(T.conn);
	cr_assert(x);
	expect_mode(x);
	cr_assert_eq(run_xfer(x, fd, 0, T.size, &cqes), 1, "%s", ktls_uring_xfer_error(x));
	cr_expect_eq(ktls_uring_xfer_sent(x), T.size);
	cr_expect_str_eq(ktls_uring_xfer_error(x), "");
	cr_expect_eq(ktls_uring_xfer_error_code(x), KTLS_ERR_NONE);
	ktls_uring_xfer_free(x);
	close(fd);
	finish_client(&len, sha);
	tu_sha256_hex(T.data, T.size, want);
	cr_expect_eq(len, T.size);
	cr_expect_str_eq(sha, want);
}

Test(uring, ranges_back_to_back_and_empty)
{
	int fd = open(T.file, O_RDONLY), cqes;
	char sha[65], want[65];
	ktls_uring_xfer *x;
	size_t len;
	unsigned char *cat = malloc(200000);
	static char base __attribute__((aligned(8)));

	cr_assert(cat);
	connect_client("read");
	x = ktls_uring_xfer_new(T.conn);
	cr_assert(x);
	/* three ranges on one transfer object, one of them crossing records oddly */
	cr_assert_eq(run_xfer(x, fd, 12345, 100000, &cqes), 1, "%s", ktls_uring_xfer_error(x));
	cr_assert_eq(run_xfer(x, fd, 0, 1, &cqes), 1);
	cr_assert_eq(run_xfer(x, fd, (off_t)T.size - 16385, 16385, &cqes), 1);
	/* an empty transfer completes at once, queueing nothing */
	cr_expect_eq(ktls_uring_xfer_start(x, &T.ring, fd, 5, 0, (uint64_t)(uintptr_t)&base), 1);
	cr_expect_eq(io_uring_sq_ready(&T.ring), 0);
	ktls_uring_xfer_free(x);
	close(fd);
	finish_client(&len, sha);
	memcpy(cat, T.data + 12345, 100000);
	memcpy(cat + 100000, T.data, 1);
	memcpy(cat + 100001, T.data + T.size - 16385, 16385);
	tu_sha256_hex(cat, 116386, want);
	cr_expect_eq(len, 116386);
	cr_expect_str_eq(sha, want);
	free(cat);
}

Test(uring, file_shorter_than_asked)
{
	int fd = open(T.file, O_RDONLY), cqes;
	ktls_uring_xfer *x;
	char sha[65];
	size_t len;

	connect_client("read");
	x = ktls_uring_xfer_new(T.conn);
	cr_assert(x);
	cr_expect_eq(run_xfer(x, fd, (off_t)T.size - 1000, 5000, &cqes), -1);
	cr_expect(strstr(ktls_uring_xfer_error(x), "file ended"), "%s", ktls_uring_xfer_error(x));
	cr_expect_eq(ktls_uring_xfer_error_code(x), KTLS_ERR_INVALID);
	cr_expect_eq(ktls_uring_xfer_sent(x), 1000);
	ktls_uring_xfer_free(x);
	close(fd);
	finish_client(&len, sha);
	cr_expect_eq(len, 1000);
}

Test(uring, peer_vanishes)
{
	int fd = open(T.file, O_RDONLY), cqes, st;
	ktls_uring_xfer *x;
	unsigned char *big = malloc(64 << 20);
	char p[160];
	int bfd;

	/* big enough that the socket buffers cannot swallow it all */
	cr_assert(big);
	tu_fill(big, 64 << 20, 5);
	snprintf(p, sizeof(p), "%s/big.bin", T.dir);
	bfd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_eq(tu_write_full(bfd, big, 64 << 20), 0);
	free(big);
	connect_client("vanish");
	x = ktls_uring_xfer_new(T.conn);
	cr_assert(x);
	cr_expect_eq(run_xfer(x, bfd, 0, 64 << 20, &cqes), -1, "sent %llu",
		     (unsigned long long)ktls_uring_xfer_sent(x));
	cr_expect_neq(ktls_uring_xfer_error(x)[0], '\0');
	cr_expect_neq(ktls_uring_xfer_error_code(x), KTLS_ERR_NONE);
	cr_expect_lt(ktls_uring_xfer_sent(x), 64 << 20);
	ktls_uring_xfer_free(x);
	close(fd);
	close(bfd);
	close(T.client_out);
	st = tu_wait(T.client, 10000);
	cr_expect(WIFEXITED(st));
}

Test(uring, bad_arguments)
{
	int fd = open(T.file, O_RDONLY);
	ktls_uring_xfer *x;

	cr_expect_null(ktls_uring_xfer_new(NULL));
	connect_client("read");
	x = ktls_uring_xfer_new(T.conn);
	cr_assert(x);
	/* user_data with tag bits set is refused: they are ours */
	cr_expect_eq(ktls_uring_xfer_start(x, &T.ring, fd, 0, 10, 0x1001), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect_eq(ktls_uring_xfer_error_code(x), KTLS_ERR_INVALID);
	cr_expect_eq(ktls_uring_xfer_start(x, &T.ring, -1, 0, 10, 0x1000), -1);
	cr_expect_eq(ktls_uring_xfer_start(x, &T.ring, fd, -5, 10, 0x1000), -1);
	cr_expect(ktls_uring_owns(0x1001) && ktls_uring_owns(0x1002) && ktls_uring_owns(0x1003));
	cr_expect(!ktls_uring_owns(0x1000) && !ktls_uring_owns(0x1004) && !ktls_uring_owns(0x1007));
	cr_expect_eq(ktls_uring_ptr(0x1003), (void *)0x1000);
	/* bits 48-55 say which step of a chain posted: also ours, also masked */
	cr_expect_eq(ktls_uring_xfer_start(x, &T.ring, fd, 0, 10, 0x1000 | 1ULL << 48), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect(ktls_uring_owns(0x0f000000001002ULL));
	cr_expect_eq(ktls_uring_ptr(0x0f000000001002ULL), (void *)0x1000);
	cr_expect_eq(ktls_uring_ptr(0x8000000000001000ULL), (void *)0x8000000000001000ULL);
	{
		/* SQPOLL's thread may submit part of a link as a chain of its own */
		struct io_uring sqpoll = { .flags = IORING_SETUP_SQPOLL };

		cr_expect_eq(ktls_uring_xfer_start(x, &sqpoll, fd, 0, 10, 0x1000), -1);
		cr_expect_eq(errno, EINVAL);
		cr_expect(strstr(ktls_uring_xfer_error(x), "SQPOLL"), "%s", ktls_uring_xfer_error(x));
	}
	ktls_uring_xfer_free(x);
	ktls_uring_xfer_free(NULL);
	close(fd);
	{
		char sha[65];
		size_t len;

		finish_client(&len, sha);
		cr_expect_eq(len, 0);
	}
}

/* The completion helper refuses what it cannot read: nothing, or no conn. */
Test(uring_rx, recv_result_refuses_bad_calls)
{
	struct ktls_uring_rx rx;
	struct io_uring_cqe cqe = { .res = 4 };

	memset(&rx, 0, sizeof(rx));
	errno = 0;
	cr_expect_eq(ktls_uring_recv_result(NULL, &rx, &cqe), -1);
	cr_expect_eq(errno, EINVAL);
}

/* ---- kTLS only: skipped on a host without it --------------------------- */

static void needs_ktls(void)
{
	if (!tu_expect_ktls())
		cr_skip_test("needs kTLS: the guest suite runs this (KTLS_TEST_EXPECT_KTLS=1)");
}

Test(uring, tls_stat_counts_offload)
{
	long long tx0 = tu_tls_stat("TlsTxSw"), rx0 = tu_tls_stat("TlsRxSw");
	int fd = open(T.file, O_RDONLY), cqes;
	ktls_uring_xfer *x;
	char sha[65], want[65];
	size_t len;

	needs_ktls();
	cr_assert_geq(tx0, 0, "/proc/net/tls_stat missing");
	connect_client("read");
	/* "at least": suites running in parallel offload connections too */
	cr_expect_geq(tu_tls_stat("TlsTxSw"), tx0 + 1, "TX not counted as offloaded");
	cr_expect_geq(tu_tls_stat("TlsRxSw"), rx0 + 1, "RX not counted as offloaded");
	x = ktls_uring_xfer_new(T.conn);
	cr_assert(x);
	cr_expect_eq(ktls_uring_xfer_mode(x), KTLS_MODE_SW);
	cr_assert_eq(run_xfer(x, fd, 0, T.size, &cqes), 1, "%s", ktls_uring_xfer_error(x));
	/* 1 MiB + 3 in 256 KiB pipe steps: a handful of CQE pairs, not one per record */
	cr_expect_leq(cqes, 2 * ((int)(T.size / 65536) + 2), "%d CQEs", cqes);
	ktls_uring_xfer_free(x);
	close(fd);
	finish_client(&len, sha);
	tu_sha256_hex(T.data, T.size, want);
	cr_expect_eq(len, T.size);
	cr_expect_str_eq(sha, want);
}

static const char *sender_py =
	"import ssl, socket, sys\n"
	"ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
	"s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='localhost')\n"
	"s.sendall(b'hello over ktls'); s = s.unwrap(); s.close()\n";

Test(uring, recv_result_data_then_close_notify)
{
	char port[16], py[160], buf[256];
	char *argv[] = { "/usr/bin/python3", py, port, (char *)tu_cert("ca.pem"), NULL };
	struct ktls_uring_rx rx;
	struct io_uring_cqe *cqe;
	struct ktls_info in;
	ssize_t n;
	size_t got = 0;
	int eof = 0;
	FILE *f;
	pid_t pid;

	needs_ktls();
	snprintf(py, sizeof(py), "%s/sender.py", T.dir);
	f = fopen(py, "w");
	cr_assert(f);
	fputs(sender_py, f);
	fclose(f);
	snprintf(port, sizeof(port), "%d", T.port);
	pid = tu_spawn(argv, NULL, NULL);
	T.fd = accept(T.lfd, NULL, NULL);
	T.conn = ktls_conn_accept(T.ctx, T.fd);
	cr_assert(T.conn);
	cr_assert_eq(ktls_conn_handshake(T.conn), 0, "%s", ktls_conn_error(T.conn));
	cr_assert_eq(ktls_conn_offload(T.conn), 0);
	ktls_conn_info(T.conn, &in);
	cr_assert_neq(in.rx, KTLS_MODE_USER, "RX not offloaded: %s", in.fallback_reason);
	/* tickets' absence, data, then close_notify: the library sorts them out */
	for (int i = 0; i < 8 && !eof; i++) {
		ktls_uring_prep_recvmsg(io_uring_get_sqe(&T.ring), T.fd, &rx, buf + got,
					sizeof(buf) - got);
		io_uring_submit_and_wait(&T.ring, 1);
		io_uring_peek_cqe(&T.ring, &cqe);
		n = ktls_uring_recv_result(T.conn, &rx, cqe);
		io_uring_cqe_seen(&T.ring, cqe);
		cr_assert(n >= 0 || n == KTLS_WANT_READ, "%s", ktls_conn_error(T.conn));
		if (n > 0)
			got += (size_t)n;
		eof = n == 0;
	}
	cr_expect(eof, "close_notify not reported as 0");
	cr_expect_eq(got, 15);
	cr_expect_eq(memcmp(buf, "hello over ktls", 15), 0);
	ktls_conn_shutdown(T.conn);
	tu_wait(pid, 10000);
}

/*
 * An AES-GCM key near its record limit: the splice path must hand over to
 * libktls, which rekeys (TLS 1.3 on kernels with kTLS rekey: the whole file
 * arrives) or closes with close_notify (the transfer fails with the reason,
 * and the peer has exactly the bytes reported sent).
 */
Test(uring, gcm_record_limit_respected)
{
	int fd = open(T.file, O_RDONLY), cqes, r;
	ktls_uring_xfer *x;
	char sha[65], want[65];
	size_t len;
	uint64_t sent;

	needs_ktls();
	kernel_gcm_record_limit = 40; /* 1 MiB + 3 needs 65 records */
	connect_client("read");
	x = ktls_uring_xfer_new(T.conn);
	cr_assert(x);
	r = run_xfer(x, fd, 0, T.size, &cqes);
	sent = ktls_uring_xfer_sent(x);
	if (r == 1) {
		cr_expect_eq(sent, T.size);
		fprintf(stderr, "uring: key limit reached, kernel rekeyed, %d CQEs\n", cqes);
	} else {
		/* libktls closed at the limit; its first reason may be consumed by a short send */
		cr_expect(strstr(ktls_uring_xfer_error(x), "limit") || strstr(ktls_uring_xfer_error(x), "close_notify"),
			  "%s", ktls_uring_xfer_error(x));
		cr_expect_leq(sent, 40ULL * 16384, "sent %llu bytes under a 40-record key",
			      (unsigned long long)sent);
		fprintf(stderr, "uring: key limit reached after %llu bytes: %s\n",
			(unsigned long long)sent, ktls_uring_xfer_error(x));
	}
	ktls_uring_xfer_free(x);
	close(fd);
	finish_client(&len, sha);
	cr_expect_eq(len, sent, "peer got %zu bytes, transfer reported %llu", len, (unsigned long long)sent);
	tu_sha256_hex(T.data, len, want);
	cr_expect_str_eq(sha, want);
	kernel_gcm_record_limit = KTLS_GCM_RECORD_LIMIT;
}
