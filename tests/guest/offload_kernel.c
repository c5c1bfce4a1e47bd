/*
 * offload_kernel.c - ktls_conn_offload into the real kernel (the rig's
 * guest, KTLS_TEST_EXPECT_KTLS=1), against a plain OpenSSL peer.
 *
 * Offload must happen: every suite in both roles, 0/2/5 tickets, data the
 * peer sent right behind its Finished, sendfile, tampered records (a small
 * TCP proxy flips a ciphertext byte) and KeyUpdate, which is followed on
 * kernels with rekey (>= 6.14) and ends the connection with a reason on
 * older ones.  /proc/net/tls_stat must move accordingly.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "internal.h"
#include "kernel.h"
#include "netlink.h"
#include "../common/offload_peer.h"
#include "../common/testutil.h"

static int kmaj, kmin;

static void init(void)
{
	struct utsname u;

	signal(SIGPIPE, SIG_IGN);
	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");
	cr_assert_eq(uname(&u), 0);
	cr_assert_eq(sscanf(u.release, "%d.%d", &kmaj, &kmin), 2);
}

static int has_rekey(void)
{
	return kmaj > 6 || (kmaj == 6 && kmin >= 14);
}

/*
 * /proc/net/tls_stat is per network namespace and suites run in parallel
 * (run-suites --jobs 2): counters are checked to move at least as much as
 * this test makes them move.
 */
TestSuite(offload_kernel, .init = init, .timeout = 300);

static long long tstat(const char *n)
{
	return tu_tls_stat(n);
}

static void expect_offloaded(struct run *r)
{
	cr_expect_eq(r->info.tx, KTLS_MODE_SW, "%s", r->info.fallback_reason);
	cr_expect_eq(r->info.rx, KTLS_MODE_SW, "%s", r->info.fallback_reason);
	cr_expect_null(r->info.fallback_reason, "%s", r->info.fallback_reason);
}

Test(offload_kernel, all_suites_both_roles)
{
	for (int i = 0; i < 6; i++) {
		for (int role = KTLS_CLIENT; role <= KTLS_SERVER; role++) {
			long long tx0 = tstat("TlsTxSw"), rx0 = tstat("TlsRxSw");
			struct run r;

			run_start(&r, role, &suites[i], NULL);
			r.echo_bytes = 1024 * 1024;
			run_go(&r, role, NULL);
			expect_offloaded(&r);
			cr_expect_geq(tstat("TlsTxSw") - tx0, 1, "%s", suites[i].name);
			cr_expect_geq(tstat("TlsRxSw") - rx0, 1, "%s", suites[i].name);
			run_finish(&r);
		}
	}
}

/*
 * The lean install (issue 11): no device in the guest has TLS offload, so
 * installs are placed as SW without asking the socket, and sock_diag on
 * the same socket afterwards agrees.
 */
Test(offload_kernel, lean_install_agrees_with_sock_diag)
{
	unsigned long a0 = nic_watch_stats.asked;

	for (int i = 0; i < 4; i++) {
		struct ktls_sock ts;
		char err[128];
		struct run r;

		run_start(&r, i % 2 ? KTLS_CLIENT : KTLS_SERVER, &suites[i], NULL);
		run_go(&r, i % 2 ? KTLS_CLIENT : KTLS_SERVER, NULL);
		expect_offloaded(&r);
		memset(&ts, 0, sizeof(ts));
		cr_assert_eq(diag_query_fd(ktls_conn_fd(r.us.c), &ts, err, sizeof(err)), 1, "%s", err);
		cr_expect_eq(ts.txconf, TLS_CONF_SW, "sock_diag TX conf %d", ts.txconf);
		cr_expect_eq(ts.rxconf, TLS_CONF_SW, "sock_diag RX conf %d", ts.rxconf);
		run_finish(&r);
	}
	cr_expect_eq(nic_watch_stats.asked - a0, 0, "installs asked the socket");
}

Test(offload_kernel, tickets_0_2_5_both_roles)
{
	static const int n[] = { 0, 2, 5 };

	for (int i = 0; i < 3; i++) {
		for (int role = KTLS_CLIENT; role <= KTLS_SERVER; role++) {
			struct run r;

			run_start(&r, role, &suites[i], NULL);
			r.tickets = n[i];
			r.peer.tickets = n[i];
			run_go(&r, role, NULL);
			expect_offloaded(&r);
			run_finish(&r);
		}
	}
}

static void slow_after_finished(const SSL *ssl, int where, int ret)
{
	if ((where & SSL_CB_ACCEPT_LOOP) && SSL_get_state(ssl) == TLS_ST_SW_FINISHED)
		usleep(300 * 1000);
}

static void hook_slow(ktls_conn *c)
{
	SSL_set_info_callback(c->ssl, slow_after_finished);
}

Test(offload_kernel, data_right_behind_finished)
{
	for (int i = 0; i < 6; i += 3) {
		struct run r;
		char b[64];
		ssize_t n;

		run_start(&r, KTLS_SERVER, &suites[i], NULL);
		r.peer.first = "right behind Finished";
		run_go(&r, KTLS_SERVER, hook_slow);
		expect_offloaded(&r);
		n = ktls_conn_read(r.us.c, b, sizeof(b));
		cr_expect_eq(n, (ssize_t)strlen("right behind Finished"), "%zd %s", n,
			     ktls_conn_error(r.us.c));
		cr_expect(n > 0 && !memcmp(b, "right behind Finished", (size_t)n));
		run_finish(&r);
	}
}

Test(offload_kernel, sendfile)
{
	struct run r;
	char path[] = "/tmp/ktls-sendfile-XXXXXX";
	size_t len = 2 * 1024 * 1024 + 3, got = 0;
	unsigned char *data = malloc(len), *back = malloc(len);
	int fd = mkstemp(path);
	off_t off = 0;

	cr_assert(fd >= 0 && data && back);
	unlink(path);
	tu_fill(data, len, 7);
	cr_assert_eq(tu_write_full(fd, data, len), 0);
	run_start(&r, KTLS_SERVER, &suites[1], NULL);
	run_go(&r, KTLS_SERVER, NULL);
	expect_offloaded(&r);
	while ((size_t)off < len) {
		ssize_t n = ktls_conn_sendfile(r.us.c, fd, &off, 256 * 1024);
		cr_assert_gt(n, 0, "%s", ktls_conn_error(r.us.c));
		while (got < (size_t)off) {
			ssize_t m = ktls_conn_read(r.us.c, back + got, len - got);
			cr_assert_gt(m, 0, "%s", ktls_conn_error(r.us.c));
			got += (size_t)m;
		}
	}
	cr_expect_arr_eq(back, data, len);
	run_finish(&r);
	close(fd);
	free(data);
	free(back);
}

/* ---- KeyUpdate ------------------------------------------------------------ */

Test(offload_kernel, peer_key_update)
{
	long long rx_ok0 = tstat("TlsRxRekeyOk"), tx_ok0 = tstat("TlsTxRekeyOk");
	long long recv0 = tstat("TlsRxRekeyReceived");
	struct run r;
	char why[256];

	run_start(&r, KTLS_CLIENT, &suites[0], NULL);
	r.peer.keyupdate_at = 100 * 1024;
	run_go(&r, KTLS_CLIENT, NULL);
	expect_offloaded(&r);
	if (has_rekey()) {
		r.echo_bytes = 512 * 1024;
		run_finish(&r);
		cr_expect_eq(r.peer.keyupdates_sent, 1);
		cr_expect_geq(tstat("TlsRxRekeyOk") - rx_ok0, 1);
		cr_expect_geq(tstat("TlsTxRekeyOk") - tx_ok0, 1);
		cr_expect_geq(tstat("TlsRxRekeyReceived") - recv0, 1);
		return;
	}
	cr_expect_eq(echo_check(r.us.c, 512 * 1024, 16384, why, sizeof(why)), -1);
	cr_expect(strstr(why, "peer sent KeyUpdate but this kernel cannot rekey kTLS (needs Linux "
			      ">= 6.14)"), "%s", why);
	run_abort(&r);
}

Test(offload_kernel, our_key_update)
{
	long long rx_ok0 = tstat("TlsRxRekeyOk");
	struct run r;
	char why[256];
	int rc;

	run_start(&r, KTLS_SERVER, &suites[2], NULL);
	run_go(&r, KTLS_SERVER, NULL);
	expect_offloaded(&r);
	cr_expect_eq(echo_check(r.us.c, 64 * 1024, 16384, why, sizeof(why)), 0, "%s", why);
	rc = ktls_conn_key_update(r.us.c, 1);
	if (has_rekey()) {
		cr_expect_eq(rc, 0, "%s", ktls_conn_error(r.us.c));
		run_finish(&r);
		cr_expect_geq(tstat("TlsRxRekeyOk") - rx_ok0, 1, "the peer's answer re-keyed RX");
	} else {
		cr_expect_eq(rc, -1);
		cr_expect(strstr(ktls_conn_error(r.us.c), "cannot rekey kTLS (needs Linux >= 6.14)"),
			  "%s", ktls_conn_error(r.us.c));
		run_finish(&r); /* still usable */
	}
}

/* AES-GCM record limit through the real kernel (lowered for the test). */
Test(offload_kernel, gcm_record_limit)
{
	struct run r;
	char why[256];

	kernel_gcm_record_limit = 8;
	run_start(&r, KTLS_SERVER, &suites[0], NULL);
	r.tickets = 0;
	run_go(&r, KTLS_SERVER, NULL);
	expect_offloaded(&r);
	if (has_rekey()) {
		run_finish(&r);
	} else {
		cr_expect_eq(echo_check(r.us.c, 256 * 1024, 16384, why, sizeof(why)), -1);
		cr_expect(strstr(why, "this kernel cannot rekey kTLS"), "%s", why);
		run_abort(&r);
	}
	kernel_gcm_record_limit = KTLS_GCM_RECORD_LIMIT;
}

/* ---- tampering through a proxy ---------------------------------------------- */

struct proxy {
	int a, b;             /* a: towards us, b: towards the peer */
	atomic_int armed;     /* flip a byte in the next data record peer -> us */
	int flipped;
	pthread_t th;
};

/* Forward both ways; peer -> us is parsed into records so one can be hit. */
static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	static unsigned char rec[5 + 16384 + 512];
	size_t have = 0;

	for (;;) {
		struct pollfd f[2] = { { p->a, POLLIN, 0 }, { p->b, POLLIN, 0 } };
		unsigned char buf[16384];
		ssize_t n;

		if (poll(f, 2, 10000) <= 0)
			break;
		if (f[0].revents) {
			n = read(p->a, buf, sizeof(buf));
			if (n <= 0 || tu_write_full(p->b, buf, (size_t)n))
				break;
		}
		if (f[1].revents) {
			n = read(p->b, rec + have, sizeof(rec) - have);
			if (n <= 0)
				break;
			have += (size_t)n;
			while (have >= 5) {
				size_t len = 5 + ((size_t)rec[3] << 8 | rec[4]);
				if (have < len)
					break;
				if (rec[0] == 23 && atomic_load(&p->armed) && len > 30) {
					rec[len - 20] ^= 0x01;
					atomic_store(&p->armed, 0);
					p->flipped = 1;
				}
				if (tu_write_full(p->a, rec, len))
					goto out;
				memmove(rec, rec + len, have - len);
				have -= len;
			}
		}
	}
out:
	shutdown(p->a, SHUT_RDWR);
	shutdown(p->b, SHUT_RDWR);
	return NULL;
}

Test(offload_kernel, tampered_record)
{
	for (int i = 0; i < 6; i += 5) {
		long long dec0 = tstat("TlsDecryptError");
		struct proxy px = { 0 };
		int us_px[2], px_peer[2];
		struct run r;
		char why[256];
		unsigned char b[64];

		cr_assert_eq(tu_tcp_pair(us_px), 0);
		cr_assert_eq(tu_tcp_pair(px_peer), 0);
		px.a = us_px[1];
		px.b = px_peer[0];
		cr_assert_eq(pthread_create(&px.th, NULL, proxy_main, &px), 0);
		memset(&r, 0, sizeof(r));
		run_start(&r, KTLS_SERVER, &suites[i], NULL);
		close(r.fds[0]);
		close(r.fds[1]);
		r.fds[0] = us_px[0];
		r.fds[1] = px_peer[1];
		r.peer.fd = r.fds[1];
		run_go(&r, KTLS_SERVER, NULL);
		expect_offloaded(&r);
		cr_expect_eq(echo_check(r.us.c, 32 * 1024, 16384, why, sizeof(why)), 0, "%s", why);
		atomic_store(&px.armed, 1);
		cr_expect_eq(echo_check(r.us.c, 16 * 1024, 16384, why, sizeof(why)), -1);
		cr_expect(px.flipped);
		cr_expect(strstr(why, "record failed to decrypt (bad_record_mac)"), "%s", why);
		cr_expect_eq(ktls_conn_read(r.us.c, b, sizeof(b)), -1, "stays failed");
		cr_expect_geq(tstat("TlsDecryptError") - dec0, 1);
		shutdown(r.fds[0], SHUT_RDWR);
		peer_join(&r.peer);
		/*
		 * The kernel fails the socket on a bad record (tls_err_abort), so
		 * our bad_record_mac alert cannot go out: the peer sees the end.
		 */
		cr_expect_str_not_empty(r.peer.err);
		pthread_join(px.th, NULL);
		ours_close(&r.us);
		for (int j = 0; j < 2; j++) {
			close(us_px[j]);
			close(px_peer[j]);
		}
	}
}
