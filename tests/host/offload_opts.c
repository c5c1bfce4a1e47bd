/*
 * offload_opts.c - the per-context kTLS opt-ins (zero-copy sendfile, RX
 * no-pad) and how ktls_conn_info decides software vs NIC, on the host.
 *
 * The host kernel has no kTLS: the opt-ins must be off by default, frozen
 * with the context, and reported off on a connection that fell back.  The
 * emulated kernel (offload_emul.h) refuses options 3/4 like a pre-5.19
 * kernel (a refusal is no error), and a shim that accepts them shows they
 * are requested after TLS_TX / TLS_RX, no-pad for TLS 1.3 only.  The mode
 * mapping (sock_diag conf and tls_stat deltas) is tested as functions:
 * no NIC here can put a direction in hardware.
 */
#include <signal.h>

#include <criterion/criterion.h>

#include "kernel.h"
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

TestSuite(offload_opts, .init = init, .fini = fini, .timeout = 60);

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
}

/* ---- defaults and freezing ------------------------------------------------- */

Test(offload_opts, setters_frozen_after_first_connection)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	int fds[2];
	ktls_conn *c;

	cr_assert_not_null(ctx);
	cr_assert_eq(ktls_ctx_set_zerocopy_sendfile(ctx, 1), 0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_set_rx_no_pad(ctx, 1), 0, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_set_zerocopy_sendfile(ctx, 0), 0);
	cr_assert_eq(ktls_ctx_set_rx_no_pad(ctx, 0), 0);
	cr_assert_eq(ktls_ctx_set_zerocopy_sendfile(NULL, 1), -1);
	cr_assert_eq(ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.pem"), tu_cert("server-ec.key")), 0);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	c = ktls_conn_new(ctx, fds[0], NULL);
	cr_assert_not_null(c, "%s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_zerocopy_sendfile(ctx, 1), -1);
	cr_expect(strstr(ktls_ctx_error(ctx), "zerocopy_sendfile cannot change"), "%s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_rx_no_pad(ctx, 1), -1);
	cr_expect(strstr(ktls_ctx_error(ctx), "rx_no_pad cannot change"), "%s", ktls_ctx_error(ctx));
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fds[0]);
	close(fds[1]);
}

/* Host kernel (no kTLS): the connection falls back and both read off. */
Test(offload_opts, host_fallback_reports_both_off)
{
	struct run r;

	if (tu_expect_ktls())
		cr_skip_test("guest run: tests/guest/offload_opts asserts the real kernel");
	for (int i = 0; i < 2; i++) {
		run_start(&r, KTLS_SERVER, &suites[i ? 3 : 0], NULL);
		open_opts(&r, KTLS_SERVER, &suites[i ? 3 : 0], 1, 1);
		cr_expect_eq(r.info.tx, KTLS_MODE_USER);
		cr_expect_eq(r.info.rx, KTLS_MODE_USER);
		cr_expect_eq(r.info.zerocopy_tx, 0);
		cr_expect_eq(r.info.rx_no_pad, 0);
		cr_expect(r.info.fallback_reason && strstr(r.info.fallback_reason, "kernel has no kTLS"),
			  "%s", r.info.fallback_reason);
		run_finish(&r);
	}
}

/* ---- an emulated kernel: refused, accepted, order, version ------------------- */

static int n_zc, n_nopad, bad_order;

/* Accepts options 3/4 like a >= 6.0 kernel; everything else to the emulator. */
static int shim_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	if (level == SOL_TLS && (opt == TLS_TX_ZEROCOPY_RO || opt == TLS_RX_EXPECT_NO_PAD)) {
		struct emu_sock *s = &emu.s[fd];

		if (len != sizeof(int) || *(const int *)val != 1 ||
		    !(opt == TLS_TX_ZEROCOPY_RO ? s->tx.set : s->rx.set))
			bad_order++;
		if (opt == TLS_TX_ZEROCOPY_RO)
			n_zc++;
		else
			n_nopad++;
		return 0;
	}
	return emu_setsockopt(fd, level, opt, val, len);
}

Test(offload_opts, emulated_kernel_refuses_options_no_error)
{
	struct run r;

	emu_on(0); /* the emulator answers ENOPROTOOPT to 3/4: a pre-5.19 kernel */
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	open_opts(&r, KTLS_SERVER, &suites[0], 1, 1);
	cr_expect_eq(r.info.tx, KTLS_MODE_SW, "%s", r.info.fallback_reason);
	cr_expect_eq(r.info.rx, KTLS_MODE_SW, "%s", r.info.fallback_reason);
	cr_expect_null(r.info.fallback_reason);
	cr_expect_eq(r.info.zerocopy_tx, 0);
	cr_expect_eq(r.info.rx_no_pad, 0);
	run_finish(&r);
}

Test(offload_opts, emulated_kernel_accepts_tls13_both)
{
	for (int role = KTLS_CLIENT; role <= KTLS_SERVER; role++) {
		struct run r;

		emu_on(0);
		kernel_ops.setsockopt = shim_setsockopt;
		n_zc = n_nopad = bad_order = 0;
		run_start(&r, role, &suites[1], NULL);
		open_opts(&r, role, &suites[1], 1, 1);
		cr_expect_eq(r.info.tx, KTLS_MODE_SW);
		cr_expect_eq(r.info.rx, KTLS_MODE_SW);
		/* Asked and accepted, but in effect only with TX on a NIC. */
		cr_expect_eq(r.info.zerocopy_tx, 0);
		cr_expect_eq(r.info.rx_no_pad, 1);
		cr_expect_eq(n_zc, 1);
		cr_expect_eq(n_nopad, 1);
		cr_expect_eq(bad_order, 0, "an option came before its key or with a bad value");
		run_finish(&r);
		emu_off();
	}
}

Test(offload_opts, emulated_kernel_tls12_no_pad_not_asked)
{
	struct run r;

	emu_on(0);
	kernel_ops.setsockopt = shim_setsockopt;
	n_zc = n_nopad = bad_order = 0;
	run_start(&r, KTLS_CLIENT, &suites[3], NULL);
	open_opts(&r, KTLS_CLIENT, &suites[3], 1, 1);
	cr_expect_eq(n_zc, 1);
	cr_expect_eq(r.info.zerocopy_tx, 0); /* software TX: no effect, reported off */
	cr_expect_eq(r.info.rx_no_pad, 0);
	cr_expect_eq(n_nopad, 0, "TLS_RX_EXPECT_NO_PAD is TLS 1.3 only");
	cr_expect_eq(bad_order, 0);
	run_finish(&r);
}

Test(offload_opts, emulated_kernel_defaults_ask_nothing)
{
	struct run r;

	emu_on(0);
	kernel_ops.setsockopt = shim_setsockopt;
	n_zc = n_nopad = bad_order = 0;
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	open_opts(&r, KTLS_SERVER, &suites[0], 0, 0);
	cr_expect_eq(r.info.tx, KTLS_MODE_SW);
	cr_expect_eq(r.info.zerocopy_tx, 0);
	cr_expect_eq(r.info.rx_no_pad, 0);
	cr_expect_eq(n_zc + n_nopad, 0);
	run_finish(&r);
}

/* ---- software or NIC ----------------------------------------------------------- */

Test(offload_opts, diag_conf_maps_to_mode)
{
	cr_expect_eq(kernel_conf_mode(TLS_CONF_HW), KTLS_MODE_HW);
	cr_expect_eq(kernel_conf_mode(TLS_CONF_HW_RECORD), KTLS_MODE_HW);
	cr_expect_eq(kernel_conf_mode(TLS_CONF_SW), KTLS_MODE_SW);
	cr_expect_eq(kernel_conf_mode(TLS_CONF_BASE), -1);
	cr_expect_eq(kernel_conf_mode(0), -1);
}

Test(offload_opts, tls_stat_deltas_map_to_mode)
{
	struct install_stat b = { 10, 20, 30, 40 }, a;

	a = (struct install_stat){ 11, 20, 30, 41 }; /* TX on the NIC, RX software */
	cr_expect_eq(kernel_stat_mode(&b, &a, 0), KTLS_MODE_HW);
	cr_expect_eq(kernel_stat_mode(&b, &a, 1), KTLS_MODE_SW);
	a = (struct install_stat){ 10, 21, 31, 40 };
	cr_expect_eq(kernel_stat_mode(&b, &a, 0), KTLS_MODE_SW);
	cr_expect_eq(kernel_stat_mode(&b, &a, 1), KTLS_MODE_HW);
	a = (struct install_stat){ 11, 21, 31, 41 }; /* a concurrent install: cannot tell */
	cr_expect_eq(kernel_stat_mode(&b, &a, 0), KTLS_MODE_SW);
	cr_expect_eq(kernel_stat_mode(&b, &a, 1), KTLS_MODE_SW);
	a = (struct install_stat){ -1, -1, -1, -1 }; /* unreadable */
	cr_expect_eq(kernel_stat_mode(&b, &a, 0), KTLS_MODE_SW);
}

/* No tls_stat: every counter unreadable (-1), never a zero that would decide. */
Test(offload_opts, stat_snap_matches_the_kernel)
{
	struct install_stat s;

	kernel_stat_snap(&s);
	if (access("/proc/net/tls_stat", R_OK) == 0)
		cr_expect(s.tx_dev >= 0 && s.tx_sw >= 0 && s.rx_dev >= 0 && s.rx_sw >= 0);
	else
		cr_expect(s.tx_dev == -1 && s.tx_sw == -1 && s.rx_dev == -1 && s.rx_sw == -1);
}
