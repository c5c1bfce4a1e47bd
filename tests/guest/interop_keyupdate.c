/*
 * interop_keyupdate.c - TLS 1.3 KeyUpdate between our offloaded connection
 * and openssl s_server / s_client, driven by their stdin commands 'K'
 * (update, and ask us to update too) and 'k' (update only), plus our own
 * ktls_conn_key_update(conn, 1).
 *
 * Kernels with kTLS rekey (>= 6.14, KTLS_VM_KERNEL=latest): data keeps
 * flowing both ways after every update and TlsRxRekeyOk / TlsTxRekeyOk /
 * TlsRxRekeyReceived move.  Older kernels (6.12): the peer's KeyUpdate
 * ends our read with a clean error naming the missing rekey, and our own
 * key update is refused up front with the connection still usable.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

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

TestSuite(interop_keyupdate, .init = init, .timeout = 300);

/* Everything the peer process prints, searchable. */
struct out {
	int fd;
	char buf[1 << 20];
	size_t n;
	pthread_mutex_t mu;
	pthread_t th;
};

static void *out_main(void *arg)
{
	struct out *o = arg;
	char b[4096];
	ssize_t r;

	while ((r = read(o->fd, b, sizeof(b))) > 0) {
		pthread_mutex_lock(&o->mu);
		if (o->n + (size_t)r < sizeof(o->buf) - 1) {
			memcpy(o->buf + o->n, b, (size_t)r);
			o->n += (size_t)r;
			o->buf[o->n] = 0;
		}
		pthread_mutex_unlock(&o->mu);
	}
	return NULL;
}

/* Wait until the peer printed s; 0 or -1 after timeout. */
static int out_wait(struct out *o, const char *s, int timeout_ms)
{
	for (int t = 0; t < timeout_ms / 20; t++) {
		int found;
		pthread_mutex_lock(&o->mu);
		found = strstr(o->buf, s) != NULL;
		pthread_mutex_unlock(&o->mu);
		if (found)
			return 0;
		usleep(20000);
	}
	return -1;
}

/* Read from our connection until s arrived; 0, or -1 with the read error. */
static int read_until(ktls_conn *c, const char *s)
{
	char got[4096] = "";
	size_t n = 0;

	while (!strstr(got, s)) {
		ssize_t r = ktls_conn_read(c, got + n, sizeof(got) - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		got[n] = 0;
		if (n >= sizeof(got) - 1)
			return -1;
	}
	return 0;
}

static void say(int to, const char *line)
{
	cr_assert_eq(tu_write_full(to, line, strlen(line)), 0);
}

/*
 * A command line for the peer: s_server/s_client act on it only when it
 * starts their stdin read and drop the rest of that read, so the next
 * line must not arrive in the same read.
 */
static void command(int to, const char *cmd)
{
	say(to, cmd);
	usleep(1500 * 1000);
}

static void write_line(ktls_conn *c, const char *line)
{
	cr_assert_eq(ktls_conn_write(c, line, strlen(line)), (ssize_t)strlen(line), "%s",
		     ktls_conn_error(c));
}

/*
 * One session: peer command cmd ('K' or 'k'), then our own key update.
 * we_are_server picks s_client as the peer, else s_server.
 */
static void session(int we_are_server)
{
	const struct suite *s = &suites[0];
	long long rx0 = tu_tls_stat("TlsRxRekeyOk"), tx0 = tu_tls_stat("TlsTxRekeyOk");
	long long recv0 = tu_tls_stat("TlsRxRekeyReceived");
	struct out *o = calloc(1, sizeof(*o));
	struct ours us;
	struct ktls_info info;
	int port, ls = -1, fd, to;
	char addr[32];
	pid_t pid;

	cr_assert(o);
	pthread_mutex_init(&o->mu, NULL);
	if (we_are_server) {
		ls = tu_listen(&port);
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
		char *argv[] = { "openssl", "s_client", "-connect", addr, "-servername", "localhost",
				 "-CAfile", (char *)tu_cert("ca.pem"), "-verify_return_error", "-tls1_3",
				 "-ciphersuites", (char *)s->name, NULL };
		pid = tu_spawn(argv, &to, &o->fd);
		cr_assert_gt(pid, 0);
		fd = accept(ls, NULL, NULL);
	} else {
		port = tu_free_port();
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
		char *argv[] = { "openssl", "s_server", "-accept", addr, "-naccept", "1", "-cert",
				 (char *)tu_cert("server-ec.pem"), "-key", (char *)tu_cert("server-ec.key"),
				 "-tls1_3", "-ciphersuites", (char *)s->name, NULL };
		pid = tu_spawn(argv, &to, &o->fd);
		cr_assert_gt(pid, 0);
		fd = -1;
		for (int i = 0; i < 600 && fd < 0; i++)
			if ((fd = tu_connect(port)) < 0)
				usleep(50000);
	}
	cr_assert_geq(fd, 0);
	pthread_create(&o->th, NULL, out_main, o);
	cr_assert_eq(ours_open(&us, we_are_server ? KTLS_SERVER : KTLS_CLIENT, s, 0, fd, NULL), 0, "%s",
		     us.err);
	cr_assert_eq(ktls_conn_offload(us.c), 0);
	cr_assert_eq(ktls_conn_info(us.c, &info), 0);
	cr_assert_eq(info.tx, KTLS_MODE_SW, "%s", info.fallback_reason);
	cr_assert_eq(info.rx, KTLS_MODE_SW, "%s", info.fallback_reason);

	write_line(us.c, "hello-before\n");
	cr_expect_eq(out_wait(o, "hello-before", 30000), 0, "peer never printed our data");
	say(to, "warm-up\n");
	cr_assert_eq(read_until(us.c, "warm-up"), 0, "%s", ktls_conn_error(us.c));

	/* The peer updates its keys and asks us to update ours. */
	command(to, "K\n");
	say(to, "peer-after-K\n");
	if (!has_rekey()) {
		cr_expect_eq(read_until(us.c, "peer-after-K"), -1);
		cr_expect_str_eq(ktls_conn_error(us.c), "peer sent KeyUpdate but this kernel cannot "
				 "rekey kTLS (needs Linux >= 6.14)");
		cr_expect_eq(ktls_conn_key_update(us.c, 1), -1, "our own update must be refused too");
		goto out;
	}
	cr_assert_eq(read_until(us.c, "peer-after-K"), 0, "%s", ktls_conn_error(us.c));
	write_line(us.c, "ours-after-K\n");
	cr_expect_eq(out_wait(o, "ours-after-K", 30000), 0, "peer could not read us after 'K'");

	/* The peer updates only its own keys. */
	command(to, "k\n");
	say(to, "peer-after-k\n");
	cr_assert_eq(read_until(us.c, "peer-after-k"), 0, "%s", ktls_conn_error(us.c));
	write_line(us.c, "ours-after-k\n");
	cr_expect_eq(out_wait(o, "ours-after-k", 30000), 0);

	/* We update and ask the peer to follow. */
	cr_assert_eq(ktls_conn_key_update(us.c, 1), 0, "%s", ktls_conn_error(us.c));
	write_line(us.c, "ours-after-our-update\n");
	cr_expect_eq(out_wait(o, "ours-after-our-update", 30000), 0);
	say(to, "peer-after-our-update\n");
	cr_assert_eq(read_until(us.c, "peer-after-our-update"), 0, "%s", ktls_conn_error(us.c));

	/* RX: K, k, the answer to ours.  TX: our answer to K, our own update. */
	cr_expect_geq(tu_tls_stat("TlsRxRekeyOk") - rx0, 3);
	cr_expect_geq(tu_tls_stat("TlsRxRekeyReceived") - recv0, 3);
	cr_expect_geq(tu_tls_stat("TlsTxRekeyOk") - tx0, 2);
	ktls_conn_shutdown(us.c);
out:
	close(to);
	tu_stop(pid, 3000);
	shutdown(fd, SHUT_RDWR);
	pthread_join(o->th, NULL);
	ours_close(&us);
	close(fd);
	if (ls >= 0)
		close(ls);
	free(o);
}

Test(interop_keyupdate, our_client_vs_s_server)
{
	session(0);
}

Test(interop_keyupdate, our_server_vs_s_client)
{
	session(1);
}
