/*
 * agent_burst.c - `ktlsd agent` under a burst of 200 handshake upcalls,
 * one in ten from a broken peer, every one answered with the right status.
 *
 * The consumer is the kernel's nvmet-tcp target (nvme_rig.h): every TCP
 * connection to its TLS port is a server-side upcall.  The peers are plain
 * OpenSSL TLS 1.3 PSK clients (not libktls), one process each, 40 at a
 * time (WINDOW says why) against an agent allowed 16 request processes:
 *   180 good ones: handshake with the right PSK, then an NVMe/TCP ICReq
 *       whose ICResp must come back through the kernel's kTLS;
 *   5 send a ClientHello cut short               -> EACCES (-13)
 *   5 use the right identity with a wrong key       -> EACCES (binder)
 *   5 offer an identity no keyring holds            -> EKEYREJECTED (-129)
 *   5 vanish after the ServerHello (FIN, no Finished) -> ETIMEDOUT (-110)
 * A connection the kernel refuses to hand over (more requests waiting for
 * an ACCEPT than it allows) is closed by the target before any agent saw
 * it; the peer tries again, as the NVMe host does, and the refusals must
 * match the kernel's handshake_submit_err events.  The kernel's
 * handshake_complete tracepoint is the judge of what the agent answered:
 * exactly one answer per peer, with its kind's status; tls_stat must count one kTLS TX and RX per good peer;
 * afterwards the agent runs on with no request processes and no extra fds.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/keyctl.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <criterion/criterion.h>

#include "../common/nvme_rig.h"
#include "../common/testutil.h"

#define PEERS 200
/*
 * Peers in flight at once.  The kernel keeps at most hn_pending_max
 * requests waiting for an ACCEPT per network namespace (3..50 by RAM) and
 * refuses the rest with EAGAIN (nvmet then drops the connection): a burst
 * wider than that tests the kernel, not the agent.
 */
#define WINDOW 40
#define IDENTITY "NVMe0R01 " RIG_HOSTNQN " " RIG_SUBNQN
#define NVME_TCP_ICREQ 0x00
#define NVME_TCP_ICRESP 0x01
#define PDU_LEN 128

enum kind { GOOD, BAD_HELLO, WRONG_KEY, UNKNOWN_ID, VANISH, KINDS };

static const char *const kind_name[KINDS] = { "good", "bad ClientHello", "wrong key",
					       "unknown identity", "vanish" };
/* The DONE status each kind must get (the tracepoint shows it negated). */
static const int kind_status[KINDS] = { 0, -13, -13, -129, -110 };

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(agent_burst, .init = init, .timeout = 300);

/* Every tenth peer is broken, the kinds taking turns. */
static enum kind kind_of(int i)
{
	return i % 10 ? GOOD : (enum kind)(1 + (i / 10) % 4);
}

static unsigned char psk[32];

struct client {
	enum kind kind;
	int fd;
	int heard;   /* the server sent something: the agent has the request */
};

/* TLS 1.3 external PSK, SHA-256, as the NVMe host offers it. */
static int use_psk(SSL *s, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		   SSL_SESSION **sess)
{
	static const unsigned char aes128gcm[] = { 0x13, 0x01 };
	static const char unknown[] = "NVMe0R01 nqn.2026-11.org.ktls:nobody " RIG_SUBNQN;
	struct client *c = SSL_get_app_data(s);
	unsigned char key[sizeof(psk)];
	SSL_SESSION *ss;

	*sess = NULL;
	if (md && EVP_MD_get_type(md) != NID_sha256)
		return 1;
	memcpy(key, psk, sizeof(key));
	if (c->kind == WRONG_KEY)
		key[0] ^= 0x80;
	ss = SSL_SESSION_new();
	if (!ss || !SSL_SESSION_set1_master_key(ss, key, sizeof(key)) ||
	    !SSL_SESSION_set_cipher(ss, SSL_CIPHER_find(s, aes128gcm)) ||
	    !SSL_SESSION_set_protocol_version(ss, TLS1_3_VERSION)) {
		SSL_SESSION_free(ss);
		return 0;
	}
	*sess = ss;
	*id = (const unsigned char *)(c->kind == UNKNOWN_ID ? unknown : IDENTITY);
	*idlen = strlen((const char *)*id);
	return 1;
}

/* Notes what the server sent; VANISH sends its FIN once the ServerHello is in. */
static void on_message(int write_p, int version, int type, const void *buf, size_t len, SSL *s,
		       void *arg)
{
	struct client *c = arg;

	(void)version;
	(void)s;
	if (write_p)
		return;
	c->heard = 1;
	if (c->kind == VANISH && type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == 2)
		shutdown(c->fd, SHUT_WR);
}

/* A ClientHello record whose body is cut short: the server must alert. */
static int bad_hello(struct client *c)
{
	static const unsigned char rec[] = { 0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00,
					     0x04, 0x03, 0x03, 0xff, 0xff };
	unsigned char in[64];
	ssize_t n;

	if (write(c->fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		return 101;
	/* The agent alerts (a 7-byte record) and fails it; the target then closes. */
	while ((n = read(c->fd, in, sizeof(in))) > 0)
		c->heard = 1;
	return 0;
}

/*
 * One connection: 0 when the peer saw what its kind should see, 1 when
 * the kernel refused the upcall (the target closed without a byte from an
 * agent: handshake_req_submit's EAGAIN), >= 100 otherwise.
 */
static int attempt(enum kind kind)
{
	struct client c = { kind, tu_connect(RIG_PORT), 0 };
	unsigned char pdu[PDU_LEN] = { 0 };
	SSL_CTX *ctx;
	SSL *s;
	int ok, r = 0;

	if (c.fd < 0)
		return 100;
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ 60, 0 }, sizeof(struct timeval));
	if (kind == BAD_HELLO) {
		r = bad_hello(&c);
		close(c.fd);
		return r ? r : !c.heard;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
	s = SSL_new(ctx);
	SSL_set_app_data(s, &c);
	SSL_set_fd(s, c.fd);
	SSL_set_msg_callback(s, on_message);
	SSL_set_msg_callback_arg(s, &c);
	ok = SSL_connect(s) == 1;
	if (!ok && !c.heard)
		r = 1;
	else if (kind != GOOD)
		r = ok ? 102 : 0; /* the broken ones must not get through */
	else if (!ok)
		r = 103;
	if (r || kind != GOOD)
		goto out;
	/* NVMe/TCP ICReq: type, flags, hlen, pdo, plen (LE), pfv 0, hpda 0. */
	pdu[0] = NVME_TCP_ICREQ;
	pdu[2] = PDU_LEN;
	pdu[4] = PDU_LEN;
	if (SSL_write(s, pdu, PDU_LEN) != PDU_LEN) {
		r = 104;
		goto out;
	}
	memset(pdu, 0xff, sizeof(pdu));
	for (int got = 0, n; got < PDU_LEN; got += n)
		if ((n = SSL_read(s, pdu + got, PDU_LEN - got)) <= 0) {
			r = 105;
			goto out;
		}
	r = pdu[0] == NVME_TCP_ICRESP && pdu[4] == PDU_LEN ? 0 : 106;
out:
	SSL_free(s);
	SSL_CTX_free(ctx);
	close(c.fd);
	return r;
}

/*
 * A peer, in its own process.  Refused by the kernel, it tries again as
 * the NVMe host does (after a pause).  Exit status: the attempts made
 * (1..MAX_ATTEMPTS), or >= 100 when it saw something its kind should not.
 */
#define MAX_ATTEMPTS 60
static int run_client(enum kind kind)
{
	for (int a = 1; a <= MAX_ATTEMPTS; a++) {
		int r = attempt(kind);
		if (r != 1)
			return r ? r : a;
		usleep(20000 * (a < 10 ? a : 10));
	}
	return 107;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Processes whose parent is pid. */
static int count_children(pid_t pid)
{
	char path[300], line[128];
	struct dirent *e;
	DIR *d = opendir("/proc");
	int n = 0;

	while (d && (e = readdir(d))) {
		FILE *f;
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "PPid:", 5)) {
				n += atoi(line + 5) == (int)pid;
				break;
			}
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static int count_of(int status, const int *st, const int *n, int k)
{
	for (int i = 0; i < k; i++)
		if (st[i] == status)
			return n[i];
	return 0;
}

Test(agent_burst, two_hundred_upcalls_with_broken_peers)
{
	char log[128], img[256], conf[128], dump[8192];
	int st[16], n[16], k, want[KINDS] = { 0 }, bad_clients = 0, refused = 0, fds0, fds1, children;
	long long tx0, rx0, t0, t_burst;
	pid_t agent, pids[PEERS];
	int32_t ring, serial;

	cr_assert(tu_expect_ktls(), "guest suite: KTLS_TEST_EXPECT_KTLS=1 expected");
	if (!rig_kernel_has_upcall()) {
		/* 6.1: no upcalls to burst; the documented refusal, not a skip. */
		snprintf(log, sizeof(log), "/tmp/ktlsd-agent-burst-%d.log", (int)getpid());
		rig_assert_agent_refuses(log);
		unlink(log);
		return;
	}
	rig_target_teardown(NULL); /* what a failed suite before us may have left */
	rig_guest_setup();
	ring = rig_nvme_keyring();
	cr_assert(ring > 0, ".nvme keyring not found in /proc/keys");
	tu_fill(psk, sizeof(psk), 200);
	serial = rig_add_psk(IDENTITY, psk, sizeof(psk), ring);
	snprintf(img, sizeof(img), "%s/agent-burst-%d.img",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	rig_target_setup(img);
	/*
	 * The target cancels a handshake the agent has not finished within
	 * tls_handshake_timeout (10 s).  Under TCG a handshake costs ~100x
	 * its native CPU, so 200 at once need longer than that; the point
	 * here is the answers, not the emulator's speed.
	 */
	cr_assert_eq(rig_put("/sys/module/nvmet_tcp/parameters/tls_handshake_timeout", "120"), 0,
		     "nvmet_tcp tls_handshake_timeout not writable");

	snprintf(log, sizeof(log), "/tmp/ktlsd-agent-burst-%d.log", (int)getpid());
	snprintf(conf, sizeof(conf), "/tmp/ktlsd-agent-burst-%d.conf", (int)getpid());
	/* Fewer request processes than upcalls: the rest must queue. */
	rig_write_file(conf, "log_level = info\nmax_handshakes = 16\n");
	agent = rig_agent_start(log, conf);
	rig_agent_wait_listening(agent, log);
	fds0 = count_fds(agent);

	tx0 = tu_tls_stat("TlsTxSw");
	rx0 = tu_tls_stat("TlsRxSw");
	rig_trace_clear();
	t0 = rig_now_ms();
	for (int i = 0, running = 0, done = 0; done < PEERS;) {
		int r;
		pid_t p;

		if (i < PEERS && running < WINDOW) {
			want[kind_of(i)]++;
			pids[i] = fork();
			cr_assert(pids[i] >= 0, "fork: %s", strerror(errno));
			if (pids[i] == 0)
				_exit(run_client(kind_of(i)));
			i++, running++;
			continue;
		}
		p = waitpid(-1, &r, 0);
		cr_assert(p > 0, "waitpid: %s", strerror(errno));
		for (int j = 0; j < i; j++) {
			int x = WIFEXITED(r) ? WEXITSTATUS(r) : -1;
			if (pids[j] != p)
				continue;
			running--, done++;
			if (x >= 1 && x <= MAX_ATTEMPTS)
				refused += x - 1;
			else if (bad_clients++ < 10)
				cr_log_error("peer %d (%s): exit %d", j, kind_name[kind_of(j)], x);
		}
	}
	t_burst = rig_now_ms() - t0;
	/* The vanished peers' requests end when the agent reads their EOF. */
	for (t0 = rig_now_ms(); rig_now_ms() - t0 < 30000; usleep(200000)) {
		int total = 0;
		k = rig_trace_statuses(st, n, 16);
		for (int i = 0; i < k; i++)
			total += n[i];
		if (total >= PEERS)
			break;
	}
	k = rig_trace_statuses(st, n, 16);
	fprintf(stderr, "agent_burst: %d peers in %lld ms, %d attempts refused by the kernel "
		"(%d handshake_submit_err); statuses:", PEERS, t_burst, refused,
		rig_trace_count("handshake_submit_err"));
	for (int i = 0; i < k; i++)
		fprintf(stderr, " %d x%d", st[i], n[i]);
	fprintf(stderr, "\n");
	if (k != 4 || bad_clients) {
		char cmd[200];
		snprintf(cmd, sizeof(cmd), "tail -n 40 %s", log);
		tu_run(cmd, dump, sizeof(dump));
		fprintf(stderr, "agent log (tail):\n%s\n", dump);
	}
	cr_expect_eq(bad_clients, 0, "%d peers did not see what their kind should", bad_clients);
	/* A refused attempt is the kernel's doing, never an agent's silence. */
	cr_expect_eq(rig_trace_count("handshake_submit_err"), refused,
		     "kernel refusals seen by the peers vs traced");
	for (int kd = 0; kd < KINDS; kd++) {
		int expect = 0;
		for (int j = 0; j < KINDS; j++)
			expect += kind_status[j] == kind_status[kd] ? want[j] : 0;
		cr_expect_eq(count_of(kind_status[kd], st, n, k), expect, "status %d (%s and alike)",
			     kind_status[kd], kind_name[kd]);
	}
	cr_expect_eq(k, 4, "only the four expected statuses");
	cr_expect_eq(tu_tls_stat("TlsTxSw") - tx0, want[GOOD], "kTLS TX installs");
	cr_expect_eq(tu_tls_stat("TlsRxSw") - rx0, want[GOOD], "kTLS RX installs");
	cr_expect(rig_log_has(log, "binder does not verify"), "agent log: no binder reason");
	cr_expect(rig_log_has(log, "no PSK with identity 'NVMe0R01 nqn.2026-11.org.ktls:nobody"),
		  "agent log: no unknown-identity reason");
	cr_expect(!rig_log_has(log, "died of signal"), "a request process crashed");

	/* Back to baseline: no request processes left, no fds gained. */
	for (t0 = rig_now_ms(); (children = count_children(agent)) && rig_now_ms() - t0 < 10000;)
		usleep(100000);
	fds1 = count_fds(agent);
	fprintf(stderr, "agent_burst: agent fds %d before, %d after; %d request processes left\n",
		fds0, fds1, children);
	cr_expect_eq(children, 0, "request processes left");
	cr_expect_eq(fds1, fds0, "agent fds");
	cr_expect_eq(waitpid(agent, NULL, WNOHANG), 0, "agent exited");

	tu_stop(agent, 3000);
	rig_put("/sys/module/nvmet_tcp/parameters/tls_handshake_timeout", "10");
	rig_target_teardown(img);
	syscall(SYS_keyctl, KEYCTL_UNLINK, serial, ring);
	unlink(conf);
	unlink(log);
}
