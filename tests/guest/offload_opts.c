/*
 * offload_opts.c - the kTLS opt-ins and software-vs-NIC in the real kernel
 * (the rig's guest, KTLS_TEST_EXPECT_KTLS=1), against a plain OpenSSL peer.
 *
 * The guest has no TLS-capable NIC (virtio-net, loopback): every kernel
 * direction must read KTLS_MODE_SW, and sock_diag on the same socket must
 * agree (conf "sw", and the zero-copy / no-pad flags ktls_info reports).
 * With both opt-ins, TLS 1.3 gets no-pad, TLS 1.2 never does; zero-copy is
 * accepted but acts (and is reported) only with TX on a NIC, so it reads 0
 * here, as sock_diag says too.  Data
 * sent with sendfile comes back with the same SHA-256.
 */
#include <signal.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "kernel.h"
#include "netlink.h"
#include "../common/offload_peer.h"
#include "../common/testutil.h"

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");
}

TestSuite(offload_opts, .init = init, .timeout = 300);

/* Like ours_open, with the opt-ins set before the context freezes. */
static void open_opts(struct run *r, int role, const struct suite *s, int zc, int nopad)
{
	struct ours *o = &r->us;
	ktls_ctx *ctx = ktls_ctx_new(role);

	cr_assert_not_null(ctx);
	o->ctx = ctx;
	cr_assert_eq(ktls_ctx_set_zerocopy_sendfile(ctx, zc), 0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_set_rx_no_pad(ctx, nopad), 0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(role == KTLS_SERVER
			     ? ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.pem"), tu_cert("server-ec.key"))
			     : ktls_ctx_load_verify_locations(ctx, tu_cert("ca.pem"), NULL),
		     0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_set_min_version(ctx, s->version) ||
			     ktls_ctx_set_max_version(ctx, s->version) ||
			     (s->version == KTLS_TLS1_3 ? ktls_ctx_set_ciphersuites(ctx, s->name)
							: ktls_ctx_set_ciphers(ctx, s->name)),
		     0, "%s", ktls_ctx_error(ctx));
	peer_start(&r->peer);
	o->c = ktls_conn_new(ctx, r->fds[0], role == KTLS_SERVER ? NULL : "localhost");
	cr_assert_not_null(o->c, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_conn_handshake(o->c), 0, "%s (peer: %s)", ktls_conn_error(o->c), r->peer.err);
	cr_assert_eq(ktls_conn_offload(o->c), 0, "%s", ktls_conn_error(o->c));
	cr_assert_eq(ktls_conn_info(o->c, &r->info), 0);
	cr_assert_eq(r->info.tx, KTLS_MODE_SW, "%s", r->info.fallback_reason);
	cr_assert_eq(r->info.rx, KTLS_MODE_SW, "%s", r->info.fallback_reason);
	cr_assert_null(r->info.fallback_reason, "%s", r->info.fallback_reason);
}

/* sock_diag on our socket must say what ktls_info said. */
static void expect_diag_agrees(struct run *r)
{
	struct ktls_sock ts;
	char err[256] = "";
	int q = diag_query_fd(r->fds[0], &ts, err, sizeof(err));

	cr_assert_neq(q, -1, "diag_query_fd: %s", err);
	if (q == 0) {
		/* Hidden ULP info is allowed only to a caller without the privilege. */
		cr_assert(!ktls_have_net_admin(), "sock_diag shows no tls ULP on an offloaded socket");
		return;
	}
	cr_expect_eq(kernel_conf_mode(ts.txconf), r->info.tx, "txconf %s", ktls_sock_conf_name(ts.txconf));
	cr_expect_eq(kernel_conf_mode(ts.rxconf), r->info.rx, "rxconf %s", ktls_sock_conf_name(ts.rxconf));
	cr_expect_eq(ts.zc_ro_tx, r->info.zerocopy_tx);
	cr_expect_eq(ts.rx_no_pad, r->info.rx_no_pad);
}

/* sendfile len bytes through our connection; the peer's echo hashes the same. */
static void sendfile_sha256(struct run *r, size_t len)
{
	char path[] = "/tmp/ktls-opts-XXXXXX", want[65], got_hex[65];
	unsigned char *data = malloc(len), *back = malloc(len);
	int fd = mkstemp(path);
	off_t off = 0;
	size_t got = 0;

	cr_assert(fd >= 0 && data && back);
	unlink(path);
	tu_fill(data, len, 11);
	cr_assert_eq(tu_write_full(fd, data, len), 0);
	while ((size_t)off < len) {
		ssize_t n = ktls_conn_sendfile(r->us.c, fd, &off, 256 * 1024);
		cr_assert_gt(n, 0, "%s", ktls_conn_error(r->us.c));
		while (got < (size_t)off) {
			ssize_t m = ktls_conn_read(r->us.c, back + got, len - got);
			cr_assert_gt(m, 0, "%s", ktls_conn_error(r->us.c));
			got += (size_t)m;
		}
	}
	tu_sha256_hex(data, len, want);
	tu_sha256_hex(back, got, got_hex);
	cr_expect_str_eq(got_hex, want);
	close(fd);
	free(data);
	free(back);
}

Test(offload_opts, tls13_both_opt_ins_on)
{
	for (int role = KTLS_CLIENT; role <= KTLS_SERVER; role++) {
		struct run r;

		run_start(&r, role, &suites[role == KTLS_CLIENT ? 0 : 2], NULL);
		open_opts(&r, role, &r.peer.s, 1, 1);
		cr_expect_eq(r.info.zerocopy_tx, 0, "zero-copy reported on with software TX");
		cr_expect_eq(r.info.rx_no_pad, 1, "TLS_RX_EXPECT_NO_PAD refused (kernel < 6.0?)");
		expect_diag_agrees(&r);
		sendfile_sha256(&r, 1024 * 1024 + 3);
		run_finish(&r);
	}
}

Test(offload_opts, tls12_never_no_pad)
{
	struct run r;

	run_start(&r, KTLS_SERVER, &suites[4], NULL);
	open_opts(&r, KTLS_SERVER, &r.peer.s, 1, 1);
	cr_expect_eq(r.info.zerocopy_tx, 0);
	cr_expect_eq(r.info.rx_no_pad, 0);
	expect_diag_agrees(&r);
	sendfile_sha256(&r, 512 * 1024 + 1);
	run_finish(&r);
}

Test(offload_opts, defaults_off_and_software)
{
	struct run r;

	run_start(&r, KTLS_CLIENT, &suites[1], NULL);
	open_opts(&r, KTLS_CLIENT, &r.peer.s, 0, 0);
	cr_expect_eq(r.info.zerocopy_tx, 0);
	cr_expect_eq(r.info.rx_no_pad, 0);
	expect_diag_agrees(&r);
	run_finish(&r);
}

/*
 * The counter fallback (used when sock_diag hides ULP info) on a real
 * install: TlsTxSw/TlsRxSw move around our own offload and, with no NIC
 * able to take keys here, TlsTxDevice/TlsRxDevice cannot, so it says SW.
 */
Test(offload_opts, tls_stat_deltas_say_software)
{
	struct install_stat before, after;
	struct run r;

	kernel_stat_snap(&before);
	cr_assert(before.tx_sw >= 0 && before.tx_dev >= 0, "tls_stat unreadable in the guest");
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	open_opts(&r, KTLS_SERVER, &r.peer.s, 0, 0);
	kernel_stat_snap(&after);
	cr_expect_geq(after.tx_sw - before.tx_sw, 1);
	cr_expect_geq(after.rx_sw - before.rx_sw, 1);
	cr_expect_eq(after.tx_dev, before.tx_dev);
	cr_expect_eq(kernel_stat_mode(&before, &after, 0), KTLS_MODE_SW);
	cr_expect_eq(kernel_stat_mode(&before, &after, 1), KTLS_MODE_SW);
	run_finish(&r);
}
