/*
 * uring_xfer_guest.c - the bulk-path suite of tests/host/uring_xfer.c,
 * run inside the kTLS guest (KTLS_TEST_EXPECT_KTLS=1): there every
 * transfer must splice into kTLS, and /proc/net/tls_stat must count the
 * offloaded connections.  Plus the RECVMSG helper on a kTLS RX socket:
 * data and the peer's close_notify alert are told apart.
 */
#include "../host/uring_xfer.c"

#include "kernel.h" /* kernel_gcm_record_limit: lowered to reach it quickly */

Test(uring, tls_stat_counts_offload)
{
	long long tx0 = tu_tls_stat("TlsTxSw"), rx0 = tu_tls_stat("TlsRxSw");
	int fd = open(T.file, O_RDONLY), cqes;
	ktls_uring_xfer *x;
	char sha[65], want[65];
	size_t len;

	cr_assert(tu_expect_ktls(), "run this suite in the guest (KTLS_TEST_EXPECT_KTLS=1)");
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

Test(uring, recvmsg_classifies_data_and_alert)
{
	char port[16], py[160], buf[256];
	char *argv[] = { "/usr/bin/python3", py, port, (char *)tu_cert("ca.pem"), NULL };
	struct ktls_uring_rx rx;
	struct io_uring_cqe *cqe;
	struct ktls_info in;
	int type = -1, n, got_data = 0, got_alert = 0;
	FILE *f;
	pid_t pid;

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
	for (int i = 0; i < 4 && !got_alert; i++) {
		ktls_uring_prep_recvmsg(io_uring_get_sqe(&T.ring), T.fd, &rx, buf, sizeof(buf));
		io_uring_submit_and_wait(&T.ring, 1);
		io_uring_peek_cqe(&T.ring, &cqe);
		n = ktls_uring_recvmsg_result(&rx, cqe, &type);
		io_uring_cqe_seen(&T.ring, cqe);
		cr_assert_geq(n, 0, "recvmsg: %s", strerror(-n));
		if (n == 0)
			break;
		if (type == KTLS_RECORD_DATA) {
			cr_expect_eq(n, 15);
			cr_expect_eq(memcmp(buf, "hello over ktls", 15), 0);
			got_data = 1;
		} else if (type == KTLS_RECORD_ALERT) {
			cr_expect_eq(n, 2);
			cr_expect(buf[0] == 1 && buf[1] == 0, "not close_notify");
			got_alert = 1;
		}
	}
	cr_expect(got_data && got_alert, "data %d alert %d", got_data, got_alert);
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
