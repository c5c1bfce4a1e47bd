/*
 * offload_emul.c - s2n-style self-talk: our connection offloaded into an
 * emulated kTLS (offload_emul.h) against a plain OpenSSL peer on a loopback
 * TCP pair.
 *
 * The emulator seals and opens records with EVP AEAD from exactly the
 * crypto_info libktls passed to TLS_TX/TLS_RX, so every byte the OpenSSL
 * peer accepts proves our TX key/iv/salt/sequence, and every peer record
 * we read proves RX.  Covers all 6 suites in both roles, 0/2/5 tickets,
 * KeyUpdate both ways (with and without kernel rekey), the AES-GCM record
 * limit, tampered records, received alerts, timeouts, sendfile and
 * truncation, with the KTLS_ERR_* code of each failure.
 */
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ktls_ctl.h"
#include "ktls_uring.h"

#include "../common/offload_emul.h"
#include "../common/offload_peer.h"
#include "../common/testutil.h"

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

static void fini(void)
{
	emu_off();
}

TestSuite(offload_emul, .init = init, .fini = fini, .timeout = 120);

static void expect_offloaded(struct run *r)
{
	cr_expect_eq(r->info.tx, KTLS_MODE_SW, "%s", r->info.fallback_reason);
	cr_expect_eq(r->info.rx, KTLS_MODE_SW, "%s", r->info.fallback_reason);
	cr_expect_null(r->info.fallback_reason, "%s", r->info.fallback_reason);
	/* No device here offers TLS offload: nothing to explain. */
	cr_expect_null(r->info.hw_fallback_reason, "%s", r->info.hw_fallback_reason);
}

static void expect_seq(const union tls_crypto *ci, uint64_t want, const char *what)
{
	cr_expect_eq(emu_get_seq(ci), want, "%s rec_seq %llu, want %llu", what,
		     (unsigned long long)emu_get_seq(ci), (unsigned long long)want);
}

Test(offload_emul, all_suites_both_roles_exact_sequence)
{
	for (int i = 0; i < 6; i++) {
		for (int role = KTLS_CLIENT; role <= KTLS_SERVER; role++) {
			struct run r;
			const struct suite *s = &suites[i];

			emu_on(1);
			run_start(&r, role, s, NULL);
			r.echo_bytes = 1024 * 1024;
			run_go(&r, role, NULL);
			expect_offloaded(&r);
			cr_expect_eq(emu.n_tx, 1);
			cr_expect_eq(emu.n_rx, 1);
			cr_expect_eq(emu.first_tx.info.cipher_type, s->tls_cipher, "%s", s->name);
			cr_expect_eq(emu.first_tx.info.version, s->version);
			if (s->version == KTLS_TLS1_2) {
				/* Finished was record 0 under the new keys, both ways. */
				expect_seq(&emu.first_tx, 1, s->name);
				expect_seq(&emu.first_rx, 1, s->name);
			} else {
				/* A TLS 1.3 server has already sent its tickets. */
				expect_seq(&emu.first_tx, role == KTLS_SERVER ? 2 : 0, s->name);
				expect_seq(&emu.first_rx, 0, s->name);
			}
			run_finish(&r);
			emu_off();
		}
	}
}

/* Our server sends n tickets before offload: TX starts at n. */
Test(offload_emul, server_tickets_0_2_5)
{
	static const int n[] = { 0, 2, 5 };

	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 3; j++) {
			struct run r;

			emu_on(1);
			run_start(&r, KTLS_SERVER, &suites[j], NULL);
			r.tickets = n[i];
			run_go(&r, KTLS_SERVER, NULL);
			expect_offloaded(&r);
			expect_seq(&emu.first_tx, (uint64_t)n[i], suites[j].name);
			expect_seq(&emu.first_rx, 0, suites[j].name);
			run_finish(&r);
			emu_off();
		}
	}
}

/*
 * The peer server's tickets reach our kernel RX and go on to OpenSSL
 * (session.c, sealed again under its stale read key): after some data the
 * connection has a resumable session exactly when tickets were sent, for
 * each TLS 1.3 AEAD.
 */
Test(offload_emul, client_consumes_tickets_0_2_5)
{
	static const int n[] = { 0, 2, 5 };

	for (int i = 0; i < 3; i++) {
		struct run r;
		char why[256];
		ssize_t len;

		emu_on(1);
		run_start(&r, KTLS_CLIENT, &suites[i], NULL);
		r.peer.tickets = n[i];
		run_go(&r, KTLS_CLIENT, NULL);
		expect_offloaded(&r);
		expect_seq(&emu.first_rx, 0, suites[i].name);
		cr_assert_eq(echo_check(r.us.c, 4096, 1024, why, sizeof(why)), 0, "%s", why);
		len = ktls_conn_session(r.us.c, NULL, 0);
		if (n[i])
			cr_expect_gt(len, 0, "%s: %d tickets through kTLS RX, no session: %s",
				     suites[i].name, n[i], ktls_conn_error(r.us.c));
		else
			cr_expect_eq(len, 0, "%s: no ticket, yet a session", suites[i].name);
		run_finish(&r);
		emu_off();
	}
}

/* Tickets read through a 1-byte buffer: control records reassembled. */
Test(offload_emul, tiny_reads_across_tickets)
{
	struct run r;
	char b[8] = "";
	ssize_t n;

	emu_on(1);
	run_start(&r, KTLS_CLIENT, &suites[1], NULL);
	r.peer.tickets = 5;
	run_go(&r, KTLS_CLIENT, NULL);
	expect_offloaded(&r);
	cr_assert_eq(ktls_conn_write(r.us.c, "hello", 5), 5);
	for (int i = 0; i < 5; i++) {
		n = ktls_conn_read(r.us.c, b + i, 1);
		cr_assert_eq(n, 1, "byte %d: %zd %s", i, n, ktls_conn_error(r.us.c));
	}
	cr_expect_str_eq(b, "hello");
	run_finish(&r);
	emu_off();
}

/* Peer KeyUpdate(update_requested): RX re-keyed, ours sent, TX re-keyed. */
Test(offload_emul, peer_key_update_followed)
{
	for (int i = 0; i < 3; i++) {
		struct run r;

		emu_on(1);
		run_start(&r, i == 1 ? KTLS_SERVER : KTLS_CLIENT, &suites[i], NULL);
		r.peer.keyupdate_at = 100 * 1024;
		run_go(&r, i == 1 ? KTLS_SERVER : KTLS_CLIENT, NULL);
		expect_offloaded(&r);
		run_finish(&r);
		cr_expect_eq(r.peer.keyupdates_sent, 1);
		cr_expect_eq(emu.n_rx, 2, "RX re-keyed once (%d)", emu.n_rx);
		cr_expect_eq(emu.n_tx, 2, "TX re-keyed once (%d)", emu.n_tx);
		cr_expect_eq(emu.keyupdates_tx, 1);
		emu_off();
	}
}

/* Without kernel rekey a peer KeyUpdate ends the connection and says why. */
Test(offload_emul, peer_key_update_without_rekey)
{
	struct run r;
	char why[256];

	emu_on(0);
	run_start(&r, KTLS_CLIENT, &suites[0], NULL);
	r.peer.keyupdate_at = 1;
	run_go(&r, KTLS_CLIENT, NULL);
	cr_expect_eq(echo_check(r.us.c, 128 * 1024, 16384, why, sizeof(why)), -1);
	cr_expect(strstr(why, "peer sent KeyUpdate but this kernel cannot rekey kTLS (needs Linux "
			      ">= 6.14)"), "%s", why);
	cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_KERNEL);
	run_abort(&r);
	emu_off();
}

/* ktls_conn_key_update from our side, asking the peer to update too. */
Test(offload_emul, our_key_update_both_ways)
{
	for (int i = 0; i < 3; i++) {
		struct run r;
		char why[256];

		emu_on(1);
		run_start(&r, KTLS_SERVER, &suites[i], NULL);
		run_go(&r, KTLS_SERVER, NULL);
		expect_offloaded(&r);
		cr_expect_eq(echo_check(r.us.c, 64 * 1024, 16384, why, sizeof(why)), 0, "%s", why);
		cr_assert_eq(ktls_conn_key_update(r.us.c, 1), 0, "%s", ktls_conn_error(r.us.c));
		cr_expect_eq(emu.keyupdates_tx, 1);
		run_finish(&r);
		cr_expect_eq(emu.n_rx, 2, "the peer's answering KeyUpdate re-keyed RX");
		emu_off();
	}
}

/* Without rekey, our key update fails before sending anything; data still flows. */
Test(offload_emul, our_key_update_without_rekey_keeps_connection)
{
	struct run r;

	emu_on(0);
	run_start(&r, KTLS_CLIENT, &suites[2], NULL);
	run_go(&r, KTLS_CLIENT, NULL);
	cr_expect_eq(ktls_conn_key_update(r.us.c, 0), -1);
	cr_expect(strstr(ktls_conn_error(r.us.c), "this kernel cannot rekey kTLS (needs Linux >= 6.14)"),
		  "%s", ktls_conn_error(r.us.c));
	cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_KERNEL);
	cr_expect_eq(emu.keyupdates_tx, 0);
	run_finish(&r);
	emu_off();
}

Test(offload_emul, key_update_refused_on_tls12)
{
	struct run r;

	emu_on(1);
	run_start(&r, KTLS_CLIENT, &suites[3], NULL);
	run_go(&r, KTLS_CLIENT, NULL);
	cr_expect_eq(ktls_conn_key_update(r.us.c, 0), -1);
	cr_expect(strstr(ktls_conn_error(r.us.c), "only in TLS 1.3"), "%s", ktls_conn_error(r.us.c));
	cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_INVALID);
	run_finish(&r);
	emu_off();
}

/* AES-GCM: the TX key is rotated before the record limit (TLS 1.3). */
Test(offload_emul, gcm_record_limit_rekeys_tls13)
{
	struct run r;

	emu_on(1);
	kernel_gcm_record_limit = 8;
	run_start(&r, KTLS_SERVER, &suites[1], NULL);
	r.tickets = 0;
	r.echo_bytes = 512 * 1024;
	run_go(&r, KTLS_SERVER, NULL);
	run_finish(&r);
	/* 32 data records + close_notify at <= 7 records per key. */
	cr_expect_geq(emu.keyupdates_tx, 4, "%llu", (unsigned long long)emu.keyupdates_tx);
	emu_off();
}

/* ChaCha20-Poly1305 has no such limit. */
Test(offload_emul, chacha_has_no_record_limit)
{
	struct run r;

	emu_on(1);
	kernel_gcm_record_limit = 8;
	run_start(&r, KTLS_SERVER, &suites[2], NULL);
	run_go(&r, KTLS_SERVER, NULL);
	run_finish(&r);
	cr_expect_eq(emu.keyupdates_tx, 0);
	emu_off();
}

/* TLS 1.2 cannot rekey: at the limit we close with close_notify and say why. */
Test(offload_emul, gcm_record_limit_closes_tls12)
{
	struct run r;
	char why[256];
	unsigned char b[64];

	emu_on(1);
	kernel_gcm_record_limit = 8;
	run_start(&r, KTLS_CLIENT, &suites[4], NULL);
	run_go(&r, KTLS_CLIENT, NULL);
	cr_expect_eq(echo_check(r.us.c, 256 * 1024, 16384, why, sizeof(why)), -1);
	cr_expect(strstr(why, "AES-GCM key reached its limit of 8 records and TLS 1.2 cannot rekey"),
		  "%s", why);
	cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_KEY_LIMIT);
	/* The peer saw our close_notify and answered with its own. */
	cr_expect_eq(ktls_conn_read(r.us.c, b, sizeof(b)) >= 0, 1, "%s", ktls_conn_error(r.us.c));
	peer_join(&r.peer);
	cr_expect(r.peer.got_close_notify, "%s", r.peer.err);
	ours_close(&r.us);
	close(r.fds[0]);
	close(r.fds[1]);
	emu_off();
}

/*
 * A tampered record: clean error that stays, and the peer reads our
 * bad_record_mac alert.  Like the kernel, the emulator then fails every send
 * until SO_ERROR is read: the alert getting through shows we read it.
 */
Test(offload_emul, tampered_record_bad_record_mac)
{
	for (int i = 0; i < 6; i += 5) {
		struct run r;
		char why[256];
		unsigned char b[64];

		emu_on(1);
		run_start(&r, KTLS_SERVER, &suites[i], NULL);
		run_go(&r, KTLS_SERVER, NULL);
		emu.corrupt_next_rx = 1;
		cr_expect_eq(echo_check(r.us.c, 16 * 1024, 16384, why, sizeof(why)), -1);
		cr_expect(strstr(why, "record failed to decrypt (bad_record_mac)"), "%s", why);
		cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_PROTOCOL);
		cr_expect_eq(ktls_conn_read(r.us.c, b, sizeof(b)), -1, "sticky");
		cr_expect_str_eq(ktls_conn_error(r.us.c), "record failed to decrypt (bad_record_mac)");
		cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_PROTOCOL, "the code stays too");
		shutdown(r.fds[0], SHUT_WR);
		peer_join(&r.peer);
		cr_expect(strstr(r.peer.err, "bad record mac"), "peer saw: %s", r.peer.err);
		ours_close(&r.us);
		close(r.fds[0]);
		close(r.fds[1]);
		emu_off();
	}
}

/* The peer vanishes without close_notify: an error, not EOF. */
Test(offload_emul, truncation_is_an_error)
{
	struct run r;
	unsigned char b[64];
	ssize_t n;

	emu_on(1);
	run_start(&r, KTLS_CLIENT, &suites[0], NULL);
	run_go(&r, KTLS_CLIENT, NULL);
	shutdown(r.fds[1], SHUT_WR); /* the peer's side of the TCP pair */
	n = ktls_conn_read(r.us.c, b, sizeof(b));
	cr_expect_eq(n, -1);
	cr_expect_str_eq(ktls_conn_error(r.us.c), "peer closed the connection without close_notify");
	cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_PEER_CLOSED);
	run_abort(&r);
	emu_off();
}

/* What a stubbed recvmsg hands up: one alert record, as kTLS delivers it. */
static unsigned char stub_alert[2];

static ssize_t alert_recvmsg(int fd, struct msghdr *m, int flags)
{
	struct cmsghdr *cm = CMSG_FIRSTHDR(m);

	memcpy(m->msg_iov[0].iov_base, stub_alert, sizeof(stub_alert));
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_GET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = 21; /* alert */
	return sizeof(stub_alert);
}

/* A fatal alert from the peer: its code, its number, its name. */
Test(offload_emul, received_alert_has_code_and_number)
{
	static const struct {
		int desc, code;
		const char *text;
	} cases[] = {
		{ 40, KTLS_ERR_PEER_ALERT, "peer sent alert handshake failure (40, level 2)" },
		{ 115, KTLS_ERR_PSK_UNKNOWN, "peer sent alert unknown PSK identity (115, level 2)" },
		{ 120, KTLS_ERR_PEER_ALERT, "peer sent alert no application protocol (120, level 2)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssize_t (*emu_recv)(int, struct msghdr *, int);
		struct run r;
		unsigned char b[64];

		emu_on(1);
		run_start(&r, KTLS_CLIENT, &suites[0], NULL);
		run_go(&r, KTLS_CLIENT, NULL);
		expect_offloaded(&r);
		stub_alert[0] = 2;
		stub_alert[1] = (unsigned char)cases[i].desc;
		emu_recv = kernel_ops.recvmsg;
		kernel_ops.recvmsg = alert_recvmsg;
		cr_expect_eq(ktls_conn_read(r.us.c, b, sizeof(b)), -1);
		kernel_ops.recvmsg = emu_recv;
		cr_expect_str_eq(ktls_conn_error(r.us.c), cases[i].text);
		cr_expect_eq(ktls_conn_error_code(r.us.c), cases[i].code, "%s",
			     ktls_error_name(ktls_conn_error_code(r.us.c)));
		cr_expect_eq(ktls_conn_peer_alert(r.us.c), cases[i].desc);
		run_abort(&r);
		emu_off();
	}
}

/* SO_RCVTIMEO on a blocking socket: KTLS_WANT_READ, as on the userspace path, coded a timeout. */
Test(offload_emul, receive_timeout_on_blocking_socket)
{
	struct timeval tv = { .tv_usec = 100 * 1000 };
	struct run r;
	unsigned char b[64];

	emu_on(1);
	run_start(&r, KTLS_CLIENT, &suites[0], NULL);
	run_go(&r, KTLS_CLIENT, NULL);
	expect_offloaded(&r);
	cr_assert_eq(setsockopt(r.fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	cr_expect_eq(ktls_conn_read(r.us.c, b, sizeof(b)), KTLS_WANT_READ);
	cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_TIMEOUT, "%s", ktls_conn_error(r.us.c));
	cr_expect_str_eq(ktls_conn_error(r.us.c), "read: timed out (SO_RCVTIMEO expired)");
	run_abort(&r);
	emu_off();
}

/* sendfile through the (emulated) kernel: same bytes, offset advanced. */
Test(offload_emul, sendfile_via_kernel)
{
	for (int i = 0; i < 6; i += 4) {
		struct run r;
		char path[] = "/tmp/ktls-sendfile-XXXXXX";
		size_t len = 300 * 1000 + 7, got = 0;
		unsigned char *data = malloc(len), *back = malloc(len);
		int fd = mkstemp(path);
		off_t off = 0;
		ssize_t n;

		cr_assert(fd >= 0 && data && back);
		unlink(path);
		tu_fill(data, len, 42);
		cr_assert_eq(tu_write_full(fd, data, len), 0);
		emu_on(1);
		run_start(&r, KTLS_SERVER, &suites[i], NULL);
		run_go(&r, KTLS_SERVER, NULL);
		expect_offloaded(&r);
		while ((size_t)off < len) {
			n = ktls_conn_sendfile(r.us.c, fd, &off, len - (size_t)off);
			cr_assert_gt(n, 0, "%s", ktls_conn_error(r.us.c));
			while (got < (size_t)off) {
				ssize_t m = ktls_conn_read(r.us.c, back + got, len - got);
				cr_assert_gt(m, 0, "%s", ktls_conn_error(r.us.c));
				got += (size_t)m;
			}
		}
		cr_expect_eq((size_t)off, len);
		cr_expect_arr_eq(back, data, len);
		cr_expect_eq(ktls_conn_sendfile(r.us.c, fd, &off, 10), 0, "end of file");
		run_finish(&r);
		close(fd);
		free(data);
		free(back);
		emu_off();
	}
}

/*
 * The splice path's bookkeeping, on a real ring: with TX "in the kernel"
 * (the emulator), ktls_uring_xfer splices into what is really a plain TCP
 * socket, so a raw reader on the other end must get exactly the file's
 * bytes.  Chains of up to 16 pairs end in one CQE that says which pair
 * broke; a wrong count there loses or repeats bytes, or misreports sent.
 */
struct raw_reader {
	int fd, slow;
	unsigned char *buf;
	size_t cap, got;
	pthread_t th;
};

static void *raw_read(void *arg)
{
	struct raw_reader *rd = arg;
	ssize_t n;

	while (rd->got < rd->cap && (n = read(rd->fd, rd->buf + rd->got, rd->slow ? 4096 : rd->cap - rd->got)) > 0) {
		rd->got += (size_t)n;
		if (rd->slow && rd->got % (256 * 1024) < 4096)
			nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL); /* let the socket fill */
	}
	return NULL;
}

struct splice_case {
	size_t file_len, ask;   /* the file may be shorter than asked */
	unsigned ring_entries;
	int slow;               /* the reader stalls: the socket fills mid-chain */
	int caller_sqes;        /* the caller queues a NOP of its own before each CQE */
	/* out */
	unsigned first_sqes;    /* SQEs the start queued: the first chain */
	int cqes, result;
	uint64_t sent;
	char err[256];
};

static void splice_run(struct splice_case *sc, const unsigned char *data, unsigned char *back,
		       size_t *got)
{
	static char base __attribute__((aligned(8)));
	char path[] = "/tmp/ktls-chain-XXXXXX";
	struct raw_reader rd = { .slow = sc->slow, .buf = back, .cap = sc->ask };
	struct io_uring ring;
	ktls_uring_xfer *x;
	struct run r;
	int fd = mkstemp(path), small = 64 * 1024;

	cr_assert(fd >= 0);
	unlink(path);
	cr_assert_eq(tu_write_full(fd, data, sc->file_len), 0);
	emu_on(1);
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	r.tickets = 0;                /* nothing of ours may precede the body */
	r.peer.handshake_only = 1;
	run_go(&r, KTLS_SERVER, NULL);
	peer_join(&r.peer);
	cr_assert_str_empty(r.peer.err);
	cr_assert_eq(r.info.tx, KTLS_MODE_SW, "%s", r.info.fallback_reason);
	if (sc->slow)
		cr_assert_eq(setsockopt(r.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	cr_assert_eq(fcntl(r.fds[0], F_SETFL, fcntl(r.fds[0], F_GETFL) | O_NONBLOCK), 0);
	rd.fd = r.fds[1];
	cr_assert_eq(pthread_create(&rd.th, NULL, raw_read, &rd), 0);
	cr_assert_eq(io_uring_queue_init(sc->ring_entries, &ring, 0), 0);
	x = ktls_uring_xfer_new(r.us.c);
	cr_assert(x);
	cr_assert_eq(ktls_uring_xfer_mode(x), KTLS_MODE_SW);
	sc->result = ktls_uring_xfer_start(x, &ring, fd, 0, sc->ask, (uint64_t)(uintptr_t)&base);
	sc->first_sqes = io_uring_sq_ready(&ring);
	sc->cqes = 0;
	while (sc->result == 0) {
		struct io_uring_cqe *cqe;

		cr_assert_geq(io_uring_submit_and_wait(&ring, 1), 0);
		cr_assert_eq(io_uring_peek_cqe(&ring, &cqe), 0);
		if ((cqe->user_data & KTLS_URING_TAG_MASK) == 4) { /* the caller's own */
			io_uring_cqe_seen(&ring, cqe);
			continue;
		}
		cr_assert(ktls_uring_owns(cqe->user_data));
		cr_assert_eq(ktls_uring_ptr(cqe->user_data), (void *)&base);
		if (sc->caller_sqes) { /* leaves the transfer an odd number of free slots */
			struct io_uring_sqe *nop = io_uring_get_sqe(&ring);

			cr_assert(nop);
			io_uring_prep_nop(nop);
			io_uring_sqe_set_data64(nop, (uint64_t)(uintptr_t)&base | 4);
		}
		sc->result = ktls_uring_xfer_cqe(x, &ring, cqe);
		io_uring_cqe_seen(&ring, cqe);
		sc->cqes++;
	}
	cr_assert_eq(ktls_uring_xfer_busy(x), 0);
	while (io_uring_submit_and_wait_timeout(&ring, &(struct io_uring_cqe *){ NULL }, 1,
						 &(struct __kernel_timespec){ .tv_nsec = 50000000 },
						 NULL) == 0) { /* nothing of the transfer may post late */
		struct io_uring_cqe *cqe;

		cr_assert_eq(io_uring_peek_cqe(&ring, &cqe), 0);
		cr_assert_eq(cqe->user_data & KTLS_URING_TAG_MASK, 4, "a transfer CQE after its end");
		io_uring_cqe_seen(&ring, cqe);
	}
	sc->sent = ktls_uring_xfer_sent(x);
	snprintf(sc->err, sizeof(sc->err), "%s", ktls_uring_xfer_error(x));
	ktls_uring_xfer_free(x);
	io_uring_queue_exit(&ring);
	shutdown(r.fds[0], SHUT_WR);
	pthread_join(rd.th, NULL);
	*got = rd.got;
	ours_close(&r.us);
	close(r.fds[0]);
	close(r.fds[1]);
	close(fd);
	emu_off();
}

Test(offload_emul, uring_splice_chains_exact)
{
	const size_t mib = 1 << 20, big = 17 * mib + 12345;
	struct splice_case cases[] = {
		/* 18 pairs of 1 MiB: chains of 16 and 2; the first is 32 SQEs */
		{ .file_len = big, .ask = big, .ring_entries = 64 },
		/* the same against a stalling reader: OUTs break chains mid-way */
		{ .file_len = big, .ask = big, .ring_entries = 64, .slow = 1 },
		/* an 8-entry ring holds chains of 4 pairs */
		{ .file_len = 6 * mib, .ask = 6 * mib, .ring_entries = 8 },
		/* the file ends inside the fourth pair: sent is exactly its length */
		{ .file_len = 3 * mib + mib / 2, .ask = 6 * mib, .ring_entries = 64 },
		/*
		 * a 2-entry ring that the caller shares: a wait for room and its
		 * drain must still be queued together, or both post
		 */
		{ .file_len = 4 * mib, .ask = 4 * mib, .ring_entries = 2, .slow = 1, .caller_sqes = 1 },
	};
	const unsigned want_sqes[] = { 32, 32, 8, 12, 2 };
	unsigned char *data = malloc(big), *back = malloc(big);

	cr_assert(data && back);
	tu_fill(data, big, 7);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct splice_case *sc = &cases[i];
		size_t got = 0;

		memset(back, 0, big);
		splice_run(sc, data, back, &got);
		/* the first chain is queued whole, before any submission */
		cr_expect_eq(sc->first_sqes, want_sqes[i], "case %zu: %u SQEs queued", i, sc->first_sqes);
		if (sc->file_len == sc->ask) {
			cr_expect_eq(sc->result, 1, "case %zu: %s", i, sc->err);
			cr_expect_eq(sc->sent, sc->ask, "case %zu", i);
		} else {
			cr_expect_eq(sc->result, -1, "case %zu", i);
			cr_expect_eq(sc->sent, sc->file_len, "case %zu: sent %llu", i,
				     (unsigned long long)sc->sent);
			cr_expect(strstr(sc->err, "file ended at byte 3670016 of 6291456"), "case %zu: %s",
				  i, sc->err);
		}
		cr_expect_eq(got, sc->file_len < sc->ask ? sc->file_len : sc->ask, "case %zu: read %zu", i, got);
		cr_expect_arr_eq(back, data, got, "case %zu: bytes differ", i);
		if (i == 0) /* 2 chains, 2 CQEs, unless the socket filled (then one more per wait) */
			cr_expect_lt(sc->cqes, 18, "case 0: %d CQEs for 18 pairs", sc->cqes);
		cr_log_info("case %zu: %d CQEs", i, sc->cqes);
	}
	free(data);
	free(back);
}

/*
 * What an io_uring RECVMSG would complete with, made through the emulator
 * (a real ring would bypass it), handed to ktls_uring_recv_result: the
 * completion path must do what ktls_conn_read does.
 */
static ssize_t uring_read(ktls_conn *c, void *buf, size_t len)
{
	struct io_uring_sqe sqe;
	struct io_uring_cqe cqe;
	struct ktls_uring_rx rx;
	ssize_t n;

	do {
		ktls_uring_prep_recvmsg(&sqe, ktls_conn_fd(c), &rx, buf, len);
		n = kernel_ops.recvmsg(ktls_conn_fd(c), &rx.msg, 0);
		memset(&cqe, 0, sizeof(cqe));
		cqe.res = n < 0 ? -errno : (int)n;
		n = ktls_uring_recv_result(c, &rx, &cqe);
	} while (n == KTLS_WANT_READ);
	return n;
}

/* A peer KeyUpdate(update_requested) read through io_uring: followed and answered. */
Test(offload_emul, uring_recv_follows_key_update)
{
	struct run r;
	char why[256];

	emu_on(1);
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	r.peer.keyupdate_at = 64 * 1024;
	run_go(&r, KTLS_SERVER, NULL);
	expect_offloaded(&r);
	cr_expect_eq(echo_check_read(r.us.c, 256 * 1024, 16384, uring_read, why, sizeof(why)), 0,
		     "%s", why);
	run_finish(&r);
	cr_expect_eq(r.peer.keyupdates_sent, 1);
	cr_expect_eq(emu.n_rx, 2, "RX re-keyed once (%d)", emu.n_rx);
	cr_expect_eq(emu.n_tx, 2, "TX re-keyed once (%d)", emu.n_tx);
	cr_expect_eq(emu.keyupdates_tx, 1, "our KeyUpdate answered the peer's");
	emu_off();
}

/* A tampered record read through io_uring: bad_record_mac sent, code PROTOCOL. */
Test(offload_emul, uring_recv_tampered_record_alerts)
{
	struct run r;
	char why[256];

	emu_on(1);
	run_start(&r, KTLS_SERVER, &suites[3], NULL);
	run_go(&r, KTLS_SERVER, NULL);
	emu.corrupt_next_rx = 1;
	cr_expect_eq(echo_check_read(r.us.c, 16384, 16384, uring_read, why, sizeof(why)), -1);
	cr_expect_eq(ktls_conn_error_code(r.us.c), KTLS_ERR_PROTOCOL, "%s", ktls_conn_error(r.us.c));
	shutdown(r.fds[0], SHUT_WR);
	peer_join(&r.peer);
	cr_expect(strstr(r.peer.err, "bad record mac"), "peer saw: %s", r.peer.err);
	ours_close(&r.us);
	close(r.fds[0]);
	close(r.fds[1]);
	emu_off();
}

/* One emulated offload, data both ways: the installs that asked the socket. */
static unsigned long installs_asking(void)
{
	unsigned long a0 = nic_watch_stats.asked;
	struct run r;

	emu_on(0);
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	run_go(&r, KTLS_SERVER, NULL);
	expect_offloaded(&r);
	run_finish(&r);
	emu_off();
	return nic_watch_stats.asked - a0;
}

/*
 * The lean install (issue 11): with no TLS-offload device here (lo and
 * virtual NICs), an install is SW without a sock_diag or tls_stat read.
 * A link notification (an alias set on lo) during the next install sends
 * that one to the socket and renews the verdict; then lean again.
 */
Test(offload_emul, install_asks_the_socket_only_after_a_link_change)
{
	char out[512];
	unsigned long d0, c0;

	struct ktls_nic *v;
	size_t n;

	if (geteuid() != 0)
		cr_skip_test("needs root to set an alias on lo (CI runs as root)");
	cr_assert_eq(ktls_nic_query(NULL, &v, &n, out, sizeof(out)), 0, "%s", out);
	for (size_t i = 0; i < n; i++)
		if (v[i].f[KTLS_NIC_TLS_TX].active || v[i].f[KTLS_NIC_TLS_RX].active) {
			/* A real TLS-offload NIC here: every install must ask. */
			ktls_nic_list_free(v, n);
			cr_expect_eq(installs_asking(), 1);
			cr_expect_eq(installs_asking(), 1);
			return;
		}
	ktls_nic_list_free(v, n);
	cr_expect_eq(installs_asking(), 0, "first install asked the socket");
	d0 = nic_watch_stats.dumps;
	c0 = nic_watch_stats.changes;
	cr_expect_eq(installs_asking(), 0, "steady state asked the socket");
	cr_expect_eq(nic_watch_stats.dumps, d0, "steady state dumped the features again");
	/* The notification waits in our subscription; the next install hears it. */
	cr_assert_eq(tu_run("ip link set lo alias ktls-offload-emul 2>&1", out, sizeof(out)), 0, "%s",
		     out);
	cr_expect_eq(installs_asking(), 1, "the install after a link change did not ask");
	cr_expect_gt(nic_watch_stats.changes, c0);
	cr_expect_gt(nic_watch_stats.dumps, d0);
	tu_run("ip link set lo alias '' 2>&1", out, sizeof(out));
	cr_expect_eq(installs_asking(), 1, "the install after the alias went did not ask");
	cr_expect_eq(installs_asking(), 0, "not lean again after the change");
}

/* A connected loopback TCP pair over IPv6 ::1: fds[0] client, fds[1] server. */
static void tcp6_pair(int fds[2])
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET6, SOCK_STREAM, 0);

	cr_assert_geq(l, 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0, "bind ::1");
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
	fds[0] = socket(AF_INET6, SOCK_STREAM, 0);
	cr_assert_eq(connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0, "connect ::1");
	fds[1] = accept(l, NULL, NULL);
	cr_assert_geq(fds[1], 0);
	close(l);
}

/*
 * The egress device hw_fallback_reason names comes from the routing table
 * (nic_route.c): a loopback connection, v4 and v6, both ends, goes through
 * lo.  A socket that is not connected has no answer.
 */
Test(offload_emul, route_oif_of_a_loopback_connection_is_lo)
{
	int lo = (int)if_nametoindex("lo"), fds[2], oif, port;
	int lfd = tu_listen(&port);

	cr_assert_gt(lo, 0);
	cr_expect_eq(nic_route_oif(lfd, &oif), -1, "a listener has no peer");
	close(lfd);
	for (int v6 = 0; v6 < 2; v6++) {
		if (v6)
			tcp6_pair(fds);
		else
			cr_assert_eq(tu_tcp_pair(fds), 0);
		for (int end = 0; end < 2; end++) {
			oif = -1;
			cr_expect_eq(nic_route_oif(fds[end], &oif), 0, "v6 %d end %d", v6, end);
			cr_expect_eq(oif, lo, "v6 %d end %d: oif %d", v6, end, oif);
		}
		close(fds[0]);
		close(fds[1]);
	}
}
