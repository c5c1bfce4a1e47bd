/*
 * offload_fallback.c - ktls_conn_offload when the kernel says no.
 *
 * On the real host kernel (no kTLS here: TCP_ULP "tls" gives ENOENT) the
 * connection must fall back to userspace with the exact reason and stay
 * fully usable.  Partial failures are produced through the kernel_ops seam
 * (offload_emul.h): a refused cipher on TX, TX installed but RX refused,
 * OpenSSL already holding peer bytes, max_fragment_length.  Every case then
 * moves data both ways with a real OpenSSL peer and closes cleanly.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include <criterion/criterion.h>

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

TestSuite(offload_fallback, .init = init, .fini = fini, .timeout = 60);

/* Does this kernel list the tls ULP? (It need not be loaded yet.) */
static int kernel_has_tls(void)
{
	char out[256] = "";
	tu_run("cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; "
	       "modinfo tls >/dev/null 2>&1 && echo tls", out, sizeof(out));
	return strstr(out, "tls") != NULL;
}

Test(offload_fallback, host_kernel_says_why)
{
	struct run r;

	if (tu_expect_ktls())
		cr_skip_test("guest run: tests/guest/offload_* assert the real offload");
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	run_go(&r, KTLS_SERVER, NULL);
	if (kernel_has_tls()) {
		/* A kTLS kernel outside the rig: then it must really offload. */
		cr_expect_eq(r.info.tx, KTLS_MODE_SW);
		cr_expect_eq(r.info.rx, KTLS_MODE_SW);
		cr_expect_null(r.info.fallback_reason, "%s", r.info.fallback_reason);
	} else {
		cr_expect_eq(r.info.tx, KTLS_MODE_USER);
		cr_expect_eq(r.info.rx, KTLS_MODE_USER);
		cr_expect_str_eq(r.info.fallback_reason,
				 "kernel has no kTLS: TCP_ULP \"tls\" failed: No such file or directory "
				 "(CONFIG_TLS missing or module not loaded)");
	}
	run_finish(&r);
}

static char last_reason[256];

/*
 * One connection through offload, data both ways: its TCP_ULP attempts.
 * r->info stays, but its fallback_reason pointed into the freed
 * connection: its text is in last_reason.
 */
static unsigned long offload_asks(struct run *r)
{
	unsigned long a0 = kernel_ulp_asked;

	run_start(r, KTLS_SERVER, &suites[0], NULL);
	run_go(r, KTLS_SERVER, NULL);
	snprintf(last_reason, sizeof(last_reason), "%s",
		 r->info.fallback_reason ? r->info.fallback_reason : "");
	r->info.fallback_reason = NULL;
	run_finish(r);
	return kernel_ulp_asked - a0;
}

/*
 * Without the tls ULP the verdict is kept: the next offload asks nothing,
 * says the same, and the connection works; after KTLS_ULP_RECHECK_NS the
 * kernel is asked again (a later modprobe tls is noticed).
 */
Test(offload_fallback, missing_ulp_verdict_is_kept_then_rechecked)
{
	struct run r;

	if (tu_expect_ktls() || kernel_has_tls()) {
		/* With kTLS every connection asks: nothing is kept. */
		cr_expect_eq(offload_asks(&r), 1);
		cr_expect_eq(r.info.tx, KTLS_MODE_SW);
		cr_expect_eq(offload_asks(&r), 1);
		cr_expect_eq(r.info.tx, KTLS_MODE_SW);
		return;
	}
	kernel_ulp_forget();
	cr_expect_eq(offload_asks(&r), 1, "the first offload asks the kernel");
	cr_expect_eq(r.info.tx, KTLS_MODE_USER);
	cr_expect_eq(offload_asks(&r), 0, "the verdict was not kept");
	cr_expect_eq(r.info.tx, KTLS_MODE_USER);
	cr_expect_eq(r.info.rx, KTLS_MODE_USER);
	cr_expect_str_eq(last_reason,
			 "kernel has no kTLS: TCP_ULP \"tls\" failed: No such file or directory "
			 "(CONFIG_TLS missing or module not loaded)");
	usleep(KTLS_ULP_RECHECK_NS / 1000 + 20000);
	cr_expect_eq(offload_asks(&r), 1, "not asked again after the recheck interval");
	/* A test's seam is always asked, whatever was kept. */
	emu_on(0);
	emu.ulp_errno = ENOENT;
	cr_expect_eq(offload_asks(&r), 1, "the seam was skipped");
	emu_off();
}

Test(offload_fallback, ulp_missing_mocked_each_suite)
{
	for (int i = 0; i < 6; i++) {
		struct run r;

		emu_on(0);
		emu.ulp_errno = ENOENT;
		run_start(&r, i % 2 ? KTLS_CLIENT : KTLS_SERVER, &suites[i], NULL);
		run_go(&r, i % 2 ? KTLS_CLIENT : KTLS_SERVER, NULL);
		cr_expect_eq(r.info.tx, KTLS_MODE_USER);
		cr_expect_eq(r.info.rx, KTLS_MODE_USER);
		cr_expect(r.info.fallback_reason && strstr(r.info.fallback_reason, "kernel has no kTLS"),
			  "%s", r.info.fallback_reason);
		cr_expect_eq(emu.n_tx + emu.n_rx, 0);
		run_finish(&r);
		emu_off();
	}
}

Test(offload_fallback, cipher_refused_on_tx)
{
	struct run r;

	emu_on(0);
	emu.tx_errno = EINVAL;
	run_start(&r, KTLS_CLIENT, &suites[2], NULL);
	run_go(&r, KTLS_CLIENT, NULL);
	cr_expect_eq(r.info.tx, KTLS_MODE_USER);
	cr_expect_eq(r.info.rx, KTLS_MODE_USER);
	cr_expect_str_eq(r.info.fallback_reason,
			 "kernel refused TLS_TX for TLS 1.3 ChaCha20-Poly1305: Invalid argument (kernel "
			 "does not know this version/cipher)");
	run_finish(&r);
}

/*
 * ULP ok, TLS_TX ok, TLS_RX refused: TX stays in the kernel (it cannot be
 * taken back), RX in OpenSSL, and OpenSSL writes nothing to the socket.
 */
Test(offload_fallback, rx_refused_keeps_tx_in_kernel)
{
	for (int i = 0; i < 6; i++) {
		struct run r;
		uint64_t before;

		emu_on(0);
		emu.rx_errno = ENOPROTOOPT;
		run_start(&r, i % 2 ? KTLS_SERVER : KTLS_CLIENT, &suites[i], NULL);
		run_go(&r, i % 2 ? KTLS_SERVER : KTLS_CLIENT, NULL);
		cr_expect_eq(r.info.tx, KTLS_MODE_SW, "suite %s", suites[i].name);
		cr_expect_eq(r.info.rx, KTLS_MODE_USER);
		cr_expect(r.info.fallback_reason &&
				  strstr(r.info.fallback_reason, "RX stays in userspace: kernel refused "
								 "TLS_RX") &&
				  strstr(r.info.fallback_reason, "Linux < 4.17"),
			  "%s", r.info.fallback_reason);
		before = emu.records_tx;
		run_finish(&r);
		/* Writes and the close_notify really went through the (emulated) kernel. */
		cr_expect_gt(emu.records_tx, before + 16);
		emu_off();
	}
}

/* In TX-only mode the peer asks for a KeyUpdate: we answer through the kernel. */
Test(offload_fallback, rx_refused_peer_keyupdate_answered_via_kernel)
{
	struct run r;

	emu_on(1);
	emu.rx_errno = ENOPROTOOPT;
	run_start(&r, KTLS_CLIENT, &suites[1], NULL);
	r.peer.keyupdate_at = 64 * 1024;
	run_go(&r, KTLS_CLIENT, NULL);
	cr_expect_eq(r.info.tx, KTLS_MODE_SW);
	cr_expect_eq(r.info.rx, KTLS_MODE_USER);
	run_finish(&r);
	cr_expect_eq(r.peer.keyupdates_sent, 1);
	cr_expect_eq(emu.keyupdates_tx, 1, "our KeyUpdate went out through the kernel");
	/* The peer decrypted everything after it, so TX really switched keys. */
	emu_off();
}

/* Same, on a kernel that cannot rekey: the write fails and says why. */
Test(offload_fallback, rx_refused_peer_keyupdate_without_rekey)
{
	struct run r;
	char why[256];

	emu_on(0);
	emu.rx_errno = ENOPROTOOPT;
	run_start(&r, KTLS_CLIENT, &suites[0], NULL);
	r.peer.keyupdate_at = 1;
	run_go(&r, KTLS_CLIENT, NULL);
	cr_expect_eq(echo_check(r.us.c, 128 * 1024, 16384, why, sizeof(why)), -1);
	cr_expect(strstr(why, "cannot rekey kTLS (needs Linux >= 6.14)"), "%s", why);
	run_abort(&r);
	emu_off();
}

/*
 * A server that waits after its Finished so the client's Finished and
 * first data sit together in the socket when OpenSSL reads them.
 */
static void slow_after_finished(const SSL *ssl, int where, int ret)
{
	if ((where & SSL_CB_ACCEPT_LOOP) && SSL_get_state(ssl) == TLS_ST_SW_FINISHED) {
		struct timespec ts = { 0, 150 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static void hook_slow(ktls_conn *c)
{
	SSL_set_info_callback(c->ssl, slow_after_finished);
}

static void hook_slow_read_ahead(ktls_conn *c)
{
	SSL_set_info_callback(c->ssl, slow_after_finished);
	SSL_set_read_ahead(c->ssl, 1);
}

/* OpenSSL swallowed the peer's first record (read_ahead): RX must stay in userspace. */
Test(offload_fallback, peer_bytes_buffered_in_openssl)
{
	struct run r;
	char b[64];
	ssize_t n;

	emu_on(0);
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	r.peer.first = "right behind Finished";
	run_go(&r, KTLS_SERVER, hook_slow_read_ahead);
	cr_expect_eq(r.info.tx, KTLS_MODE_SW);
	cr_expect_eq(r.info.rx, KTLS_MODE_USER);
	cr_expect(r.info.fallback_reason && strstr(r.info.fallback_reason, "OpenSSL already holds"),
		  "%s", r.info.fallback_reason);
	n = ktls_conn_read(r.us.c, b, sizeof(b));
	cr_expect_eq(n, (ssize_t)strlen("right behind Finished"), "%zd %s", n, ktls_conn_error(r.us.c));
	run_finish(&r);
	emu_off();
}

/*
 * A caller that reads before offloading keeps RX in userspace, so OpenSSL
 * reads ahead (one read(2) per record): both echoed records leave the
 * socket at the first read, ktls_conn_pending says so, the offload after
 * it names the held bytes, and not one byte is lost.
 */
Test(offload_fallback, read_before_offload_reads_ahead)
{
	struct run r;
	char b[16] = "";
	size_t got = 1;
	int queued = -1;
	ssize_t n;

	emu_on(0);
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	peer_start(&r.peer);
	cr_assert_eq(ours_open(&r.us, KTLS_SERVER, &r.peer.s, r.tickets, r.fds[0], NULL), 0, "%s",
		     r.us.err);
	cr_assert_eq(ktls_conn_write(r.us.c, "abcd", 4), 4);
	cr_assert_eq(ktls_conn_write(r.us.c, "efgh", 4), 4);
	for (int i = 0; i < 200 && queued < 2 * (5 + 4 + 17); i++) { /* both echoes, TLS 1.3 */
		usleep(5000);
		ioctl(r.fds[0], FIONREAD, &queued);
	}
	cr_assert_geq(queued, 2 * (5 + 4 + 17), "the peer's two echoes did not arrive");
	cr_expect_eq(ktls_conn_pending(r.us.c), 0, "the echoes are in the socket, not in OpenSSL");
	cr_assert_eq(ktls_conn_read(r.us.c, b, 1), 1, "%s", ktls_conn_error(r.us.c));
	ioctl(r.fds[0], FIONREAD, &queued);
	cr_expect_eq(queued, 0, "OpenSSL did not read ahead: %d bytes still in the socket", queued);
	cr_expect_eq(ktls_conn_pending(r.us.c), 1, "OpenSSL holds the rest but pending says no");
	cr_assert_eq(ktls_conn_offload(r.us.c), 0, "%s", ktls_conn_error(r.us.c));
	cr_assert_eq(ktls_conn_info(r.us.c, &r.info), 0);
	cr_expect_eq(r.info.tx, KTLS_MODE_SW);
	cr_expect_eq(r.info.rx, KTLS_MODE_USER);
	cr_expect(r.info.fallback_reason && strstr(r.info.fallback_reason, "OpenSSL already holds"),
		  "%s", r.info.fallback_reason);
	while (got < 8 && (n = ktls_conn_read(r.us.c, b + got, 8 - got)) > 0)
		got += (size_t)n;
	cr_expect_str_eq(b, "abcdefgh");
	cr_expect_eq(ktls_conn_pending(r.us.c), 0, "all read, yet pending says more");
	/* OpenSSL answers our close_notify with its own: then a read needs no socket */
	cr_assert_eq(ktls_conn_shutdown(r.us.c), 0, "%s", ktls_conn_error(r.us.c));
	n = ktls_conn_read(r.us.c, b, sizeof(b));
	cr_expect_eq(n, 0, "expected the peer's close_notify, got %zd: %s", n, ktls_conn_error(r.us.c));
	cr_expect_eq(ktls_conn_pending(r.us.c), 1, "after close_notify a read returns 0 at once");
	cr_expect_eq(ktls_conn_read(r.us.c, b, sizeof(b)), 0);
	peer_join(&r.peer);
	cr_expect(r.peer.got_close_notify, "%s", r.peer.err);
	ours_close(&r.us);
	close(r.fds[0]);
	close(r.fds[1]);
	emu_off();
}

/* read_ahead off (the policy): the same bytes stay in the socket for the kernel. */
Test(offload_fallback, peer_bytes_behind_finished_reach_kernel_rx)
{
	for (int i = 0; i < 6; i += 3) {
		struct run r;
		char b[64];
		ssize_t n;

		emu_on(0);
		run_start(&r, KTLS_SERVER, &suites[i], NULL);
		r.peer.first = "right behind Finished";
		run_go(&r, KTLS_SERVER, hook_slow);
		cr_expect_eq(r.info.tx, KTLS_MODE_SW);
		cr_expect_eq(r.info.rx, KTLS_MODE_SW, "%s", r.info.fallback_reason);
		n = ktls_conn_read(r.us.c, b, sizeof(b));
		cr_expect_eq(n, (ssize_t)strlen("right behind Finished"), "%zd %s", n,
			     ktls_conn_error(r.us.c));
		cr_expect(n > 0 && !memcmp(b, "right behind Finished", (size_t)n));
		run_finish(&r);
		emu_off();
	}
}

Test(offload_fallback, max_fragment_length_refused)
{
	struct run r;

	emu_on(0);
	run_start(&r, KTLS_SERVER, &suites[3], NULL);
	r.peer.mfl = 1;
	run_go(&r, KTLS_SERVER, NULL);
	cr_expect_eq(r.info.tx, KTLS_MODE_USER);
	cr_expect_eq(r.info.rx, KTLS_MODE_USER);
	cr_expect(r.info.fallback_reason && strstr(r.info.fallback_reason, "max_fragment_length"),
		  "%s", r.info.fallback_reason);
	cr_expect_eq(emu.n_tx, 0);
	run_finish(&r);
	emu_off();
}

Test(offload_fallback, offload_before_handshake_refused)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	int fds[2];
	ktls_conn *c;

	cr_assert_eq(tu_tcp_pair(fds), 0);
	ktls_ctx_load_verify_locations(ctx, tu_cert("ca.pem"), NULL);
	c = ktls_conn_new(ctx, fds[0], "localhost");
	cr_assert(c);
	cr_expect_eq(ktls_conn_offload(c), -1);
	cr_expect_str_eq(ktls_conn_error(c), "offload: handshake not complete");
	cr_expect_eq(ktls_conn_offload(NULL), -1);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fds[0]);
	close(fds[1]);
}
