/*
 * agent_nvme.c - `ktlsd agent` as the kernel's handshake agent for a real
 * consumer: an nvmet-tcp target on 127.0.0.1:4420 with addr_tsas=tls1.3
 * and the nvme-tcp host connecting to it, our agent serving both ends
 * (tlshd is not involved).  Recipe: ../shared/notes/upcall-recipe.md.
 *
 * One sequential test (the kernel state is global: one agent, one port),
 * in phases: connect (every queue's socket in kTLS per ss and tls_stat,
 * handshake tracepoints all status 0, O_DIRECT write + read-back equal by
 * SHA-256), then the failure cases (no agent: ESRCH; no PSK: ENOKEY;
 * plaintext client to the TLS port; right identity with a wrong key;
 * agent killed and restarted during reconnect: recovers, data intact),
 * plus a second agent refused while one listens.
 * Kernels without the handshake family (6.1) must refuse with the
 * documented message instead.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/keyctl.h>

#include <criterion/criterion.h>

#include "../common/nvme_rig.h"
#include "../common/testutil.h"

#define NOKEY_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000beef"
#define NOKEY_HOSTID "00000000-0000-4000-8000-00000000beef"
#define IO_BYTES (4u << 20)

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(agent_nvme, .init = init, .timeout = 240);

/* The agent's output (appended across restarts). */
static char agent_log[128];

/* ---- the host ------------------------------------------------------------------ */

/* Write the options to /dev/nvme-fabrics: the instance, or -errno. */
static int nvme_connect(const char *hostnqn, const char *hostid, const char *extra)
{
	char opts[512], reply[128];
	int fd = open("/dev/nvme-fabrics", O_RDWR), inst = -1;
	ssize_t n;

	cr_assert(fd >= 0, "/dev/nvme-fabrics: %s", strerror(errno));
	snprintf(opts, sizeof(opts), "transport=tcp,traddr=127.0.0.1,trsvcid=4420,nqn=%s,"
		 "hostnqn=%s,hostid=%s,nr_io_queues=1,tls%s%s", RIG_SUBNQN, hostnqn, hostid,
		 extra ? "," : "", extra ? extra : "");
	if (write(fd, opts, strlen(opts)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	n = read(fd, reply, sizeof(reply) - 1);
	close(fd);
	cr_assert(n > 0, "no reply from /dev/nvme-fabrics");
	reply[n] = '\0';
	cr_assert_eq(sscanf(reply, "instance=%d", &inst), 1, "reply '%s'", reply);
	return inst;
}

static void nvme_delete(int inst)
{
	rig_putf("1", "/sys/class/nvme/nvme%d/delete_controller", inst);
}

static void ctrl_state(int inst, char *out, size_t cap)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/class/nvme/nvme%d/state", inst);
	if (rig_read_text(path, out, cap))
		snprintf(out, cap, "gone");
	out[strcspn(out, "\n")] = '\0';
}

/* ---- observations ---------------------------------------------------------------- */

/* kTLS sockets on loopback port 4420 per ss(8) (inet_diag ULP info). */
static int ss_ktls_count(void)
{
	char out[16384];
	int n = 0;

	tu_run("ss -tnie 2>&1", out, sizeof(out));
	for (char *p = out; (p = strstr(p, "tcp-ulp-tls version: 1.3")); p++)
		n++;
	return n;
}

static int wait_file(const char *path, int ms)
{
	long long end = rig_now_ms() + ms;

	while (rig_now_ms() < end) {
		if (access(path, F_OK) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

/* O_DIRECT through the block device: write, read back; SHA-256 of both. */
static void direct_io(const char *dev, int write_it, char sha[65])
{
	void *buf = NULL;
	int fd = open(dev, (write_it ? O_WRONLY : O_RDONLY) | O_DIRECT);

	cr_assert(fd >= 0, "%s: %s", dev, strerror(errno));
	cr_assert_eq(posix_memalign(&buf, 4096, IO_BYTES), 0);
	if (write_it) {
		tu_fill(buf, IO_BYTES, 4420);
		cr_assert_eq(pwrite(fd, buf, IO_BYTES, 0), (ssize_t)IO_BYTES, "%s", strerror(errno));
		cr_assert_eq(fsync(fd), 0);
	} else {
		memset(buf, 0, IO_BYTES);
		cr_assert_eq(pread(fd, buf, IO_BYTES, 0), (ssize_t)IO_BYTES, "%s", strerror(errno));
	}
	tu_sha256_hex(buf, IO_BYTES, sha);
	free(buf);
	close(fd);
}

/* ---- the test ------------------------------------------------------------------------ */

Test(agent_nvme, nvme_tcp_tls_through_our_agent)
{
	unsigned char key[32], wrong[32];
	char img[256], dev[64], sha_w[65], sha_r[65], bad[64], st[64], out[4096], conf[128];
	int32_t ring, serial;
	int inst, ok, nbad, r, slow;
	long long tx0, rx0, t0;
	pid_t agent, second;
	char seen[4096] = "";
	int notify;

	cr_assert(tu_expect_ktls(), "guest suite: KTLS_TEST_EXPECT_KTLS=1 expected");
	snprintf(agent_log, sizeof(agent_log), "/tmp/ktlsd-agent-%d.log", (int)getpid());
	if (!rig_kernel_has_upcall()) {
		/* 6.1: the documented refusal, not a skip. */
		rig_assert_agent_refuses(agent_log);
		return;
	}
	rig_guest_setup();
	ring = rig_nvme_keyring();
	cr_assert(ring > 0, ".nvme keyring not found in /proc/keys");
	tu_fill(key, sizeof(key), 7);
	serial = rig_add_psk("NVMe0R01 " RIG_HOSTNQN " " RIG_SUBNQN, key, sizeof(key), ring);
	snprintf(img, sizeof(img), "%s/agent-nvme-%d.img", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
		 (int)getpid());
	rig_target_setup(img);

	/* 1. No agent: the consumer fails at once with ESRCH. */
	r = nvme_connect(RIG_HOSTNQN, RIG_HOSTID, NULL);
	cr_assert_eq(r, -ESRCH, "no agent: got %d (%s)", r, r < 0 ? strerror(-r) : "connected");

	agent = rig_agent_start(agent_log, NULL);
	rig_agent_wait_listening(agent, agent_log);

	/* 2. A second agent is refused while ours listens. */
	second = rig_agent_start(agent_log, NULL);
	r = tu_wait(second, 10000);
	cr_assert(WIFEXITED(r) && WEXITSTATUS(r) == 1, "second agent status %d", r);
	cr_assert(rig_log_has(agent_log, "another handshake agent already listens"), "second agent not refused");

	/*
	 * A slow peer: a ClientHello that never finishes holds one request
	 * (and its process) until the kernel's timeout; the real connect
	 * below must not wait behind it.
	 */
	slow = tu_connect(4420);
	cr_assert(slow >= 0);
	cr_assert_eq(write(slow, "\x16\x03\x01\x02\x00\x01\x00\x01", 8), 8);
	for (t0 = rig_now_ms(); !rig_log_has(agent_log, "ACCEPT") && !rig_log_has(agent_log, "server psk") && rig_now_ms() - t0 < 300;)
		usleep(20000);

	/* 3. The real thing. */
	tx0 = tu_tls_stat("TlsCurrTxSw");
	rx0 = tu_tls_stat("TlsCurrRxSw");
	rig_trace_clear();
	t0 = rig_now_ms();
	inst = nvme_connect(RIG_HOSTNQN, RIG_HOSTID, "reconnect_delay=1,ctrl_loss_tmo=60");
	cr_assert(inst >= 0, "connect: %s\nagent log: see %s", strerror(-inst), agent_log);
	fprintf(stderr, "agent_nvme: TLS connect (admin + 1 I/O queue) in %lld ms\n", rig_now_ms() - t0);
	cr_expect_eq(tu_tls_stat("TlsCurrTxSw") - tx0, 4, "TX kTLS sockets (2 queues x 2 ends)");
	cr_expect_eq(tu_tls_stat("TlsCurrRxSw") - rx0, 4, "RX kTLS sockets");
	cr_expect_eq(ss_ktls_count(), 4, "ss -tnie: kTLS sockets");
	rig_trace_tally(&ok, &nbad, bad, sizeof(bad));
	if (ok != 4) {
		tu_run("grep handshake " RIG_TRACE "/trace | head -20", out, sizeof(out));
		fprintf(stderr, "trace:\n%s\n", out);
	}
	cr_expect_eq(ok, 4, "handshake_complete status=0 events");
	cr_expect_eq(nbad, 0, "failed handshakes: %s", bad);
	cr_expect(rig_wait_log(agent_log, "handshake ok: client psk", 5000), "agent log: client handshake");
	cr_expect(rig_wait_log(agent_log, "handshake ok: server psk", 5000), "agent log: server handshake");
	snprintf(dev, sizeof(dev), "/dev/nvme%dn1", inst);
	cr_assert_eq(wait_file(dev, 15000), 0, "%s never appeared", dev);
	direct_io(dev, 1, sha_w);
	direct_io(dev, 0, sha_r);
	cr_assert_str_eq(sha_r, sha_w, "read-back differs");
	/*
	 * The slow peer gives up: its request ends with ETIMEDOUT, as a
	 * vanished peer or (on a loaded machine, where the I/O above took
	 * longer than the kernel's 10 s) through the ACCEPT timeout.
	 */
	close(slow);
	cr_expect(rig_wait_log(agent_log, "-> status ETIMEDOUT", 12000),
		  "the slow peer's request did not end with ETIMEDOUT");

	/* 4. Agent killed, controller reset: reconnects fail until it is back. */
	cr_assert(WIFSIGNALED(tu_stop(agent, 3000)) || 1);
	/* The reset's reconnect needs the agent: without one it reports
	 * ENETRESET and the controller keeps reconnecting. */
	r = rig_putf("1", "/sys/class/nvme/nvme%d/reset_controller", inst);
	cr_assert(r == 0 || r == ENETRESET, "reset_controller: %s", strerror(r));
	usleep(1500 * 1000);
	ctrl_state(inst, st, sizeof(st));
	cr_expect_neq(strcmp(st, "live"), 0, "controller live without an agent?");
	snprintf(conf, sizeof(conf), "/tmp/ktlsd-agent-%d.conf", (int)getpid());
	rig_write_file(conf, "log_level = info\n");
	/* this time under a stand-in for systemd: Type=notify and WatchdogSec= */
	notify = tu_notify_socket("/tmp", 1000000);
	cr_assert_geq(notify, 0, "notify socket: %s", strerror(errno));
	agent = rig_agent_start(agent_log, conf);
	tu_notify_env_clear();
	rig_agent_wait_listening(agent, agent_log);
	cr_expect(tu_notify_wait(notify, "READY=1", 10000, seen, sizeof(seen)), "no READY=1: %s", seen);
	cr_expect(strstr(seen, "STATUS=answering handshake requests"), "%s", seen);
	cr_expect(tu_notify_wait(notify, "WATCHDOG=1", 3000, seen, sizeof(seen)), "no ping: %s", seen);
	t0 = rig_now_ms();
	do {
		usleep(100000);
		ctrl_state(inst, st, sizeof(st));
	} while (strcmp(st, "live") && rig_now_ms() - t0 < 20000);
	cr_assert_str_eq(st, "live", "controller did not recover after the agent came back");
	fprintf(stderr, "agent_nvme: live again %lld ms after the agent restarted\n", rig_now_ms() - t0);
	direct_io(dev, 0, sha_r);
	cr_assert_str_eq(sha_r, sha_w, "read-back after recovery differs");
	nvme_delete(inst);

	/* SIGHUP: a good file is taken (debug logs each ACCEPT from now on). */
	rig_write_file(conf, "log_level = debug\nmax_handshakes = 8\n");
	seen[0] = '\0';
	cr_assert_eq(kill(agent, SIGHUP), 0);
	cr_assert(rig_wait_log(agent_log, "configuration reloaded from", 15000), "SIGHUP not honoured");
	cr_expect(tu_notify_wait(notify, "READY=1", 10000, seen, sizeof(seen)) &&
		  strstr(seen, "RELOADING=1") && strstr(seen, "RELOADING=1") < strstr(seen, "READY=1"),
		  "SIGHUP: %s", seen);

	/*
	 * SHA-384: with a 48-byte R02 key beside the R01 one the host prefers
	 * R02 (nvme_tls_psk_default), so both agents must use
	 * TLS_AES_256_GCM_SHA384.
	 */
	{
		unsigned char k48[48];
		int32_t s48;
		char ssout[16384];

		tu_fill(k48, sizeof(k48), 48);
		s48 = rig_add_psk("NVMe0R02 " RIG_HOSTNQN " " RIG_SUBNQN, k48, sizeof(k48), ring);
		inst = nvme_connect(RIG_HOSTNQN, RIG_HOSTID, NULL);
		cr_assert(inst >= 0, "R02 connect: %s", strerror(-inst));
		cr_expect(rig_wait_log(agent_log, "identity 'NVMe0R02 " RIG_HOSTNQN " " RIG_SUBNQN "' TLSv1.3 "
				   "TLS_AES_256_GCM_SHA384", 5000), "no SHA-384 handshake logged");
		tu_run("ss -tnie 2>&1", ssout, sizeof(ssout));
		cr_expect(strstr(ssout, "cipher: aes-gcm-256"), "ss: no AES-256 kTLS socket");
		nvme_delete(inst);
		syscall(SYS_keyctl, KEYCTL_UNLINK, s48, ring);
	}

	/* 5. No PSK for this host NQN: ENOKEY, no upcall made. */
	r = nvme_connect(NOKEY_HOSTNQN, NOKEY_HOSTID, NULL);
	cr_assert_eq(r, -ENOKEY, "no PSK: got %d (%s)", r, r < 0 ? strerror(-r) : "connected");

	/* 6. Plaintext client to the TLS port: the target's handshake fails. */
	rig_trace_clear();
	{
		int fd = tu_connect(4420);
		char junk[128];
		struct timeval tv = { 15, 0 };
		ssize_t n;

		cr_assert(fd >= 0);
		memset(junk, 'A', sizeof(junk));
		memcpy(junk, "GET / HTTP/1.0\r\n\r\n", 18);
		cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = read(fd, junk, sizeof(junk));
		cr_expect(n == 0 || (n < 0 && errno == ECONNRESET) || n > 0,
			  "target kept a plaintext connection open");
		close(fd);
	}
	usleep(300000);
	rig_trace_tally(&ok, &nbad, bad, sizeof(bad));
	if (nbad != 1) {
		tu_run("grep -E 'handshake_(complete|cmd_accept|submit)' " RIG_TRACE "/trace | tail -20",
		       out, sizeof(out));
		fprintf(stderr, "trace:\n%s\n", out);
	}
	cr_expect_eq(nbad, 1, "plaintext: one failed handshake expected (%s)", bad);
	cr_expect_str_eq(bad, "status=-13", "plaintext: EACCES expected");
	cr_expect(rig_wait_log(agent_log, "non-TLS data", 5000), "agent log: plaintext reason");
	cr_expect(rig_log_has(agent_log, "ACCEPT: fd"), "debug level after SIGHUP not in effect");

	/* SIGHUP with a broken file: the agent keeps its settings and runs on. */
	rig_write_file(conf, "log_level = debug\nkeyrings =\n");
	cr_assert_eq(kill(agent, SIGHUP), 0);
	rig_wait_log(agent_log, "reload failed: keeping", 15000);
	cr_assert(rig_log_has(agent_log, ":2: keyrings has no value"), "broken reload not reported");
	cr_assert(rig_log_has(agent_log, "reload failed: keeping the previous configuration"));

	/* 7. Right identity, wrong key: the binder fails on the target. */
	{
		int32_t wr = (int32_t)syscall(SYS_add_key, "keyring", "ktls-wrong", NULL, 0,
					      KEY_SPEC_PROCESS_KEYRING);
		int32_t ws;
		char extra[128];

		cr_assert(wr > 0, "keyring: %s", strerror(errno));
		memcpy(wrong, key, sizeof(wrong));
		wrong[0] ^= 0x80;
		ws = rig_add_psk("NVMe0R01 " RIG_HOSTNQN " " RIG_SUBNQN, wrong, sizeof(wrong), wr);
		/*
		 * ACCEPT links the consumer's keyring into the agent's process
		 * keyring, which needs Link (and the agent then Read) permission
		 * for a process that does not possess it: grant them to the user
		 * as the kernel's .nvme keyring does.
		 */
		cr_assert_eq(syscall(SYS_keyctl, KEYCTL_SETPERM, wr, 0x3f3f0000), 0);
		cr_assert_eq(syscall(SYS_keyctl, KEYCTL_SETPERM, ws, 0x3f3f0000), 0);
		snprintf(extra, sizeof(extra), "keyring=%d,tls_key=%d", wr, ws);
		rig_trace_clear();
		t0 = rig_now_ms();
		r = nvme_connect(RIG_HOSTNQN, RIG_HOSTID, extra);
		fprintf(stderr, "agent_nvme: wrong key: %s after %lld ms\n",
			r < 0 ? strerrorname_np(-r) : "connected", rig_now_ms() - t0);
		cr_assert(r < 0, "connected with the wrong key");
		/*
		 * Our target agent fails the binder and alerts; our host agent
		 * reports the alert as a handshake failure: EACCES.  (With tlshd
		 * the host saw ETIMEDOUT: GnuTLS took the server's close for a
		 * premature termination.)
		 */
		cr_expect_eq(r, -EACCES, "wrong key: %s", strerror(-r));
		cr_expect(rig_wait_log(agent_log, "binder does not verify (the peer's PSK differs from ours)", 5000),
			  "agent log: no binder reason");
	}
	seen[0] = '\0';
	tu_stop(agent, 3000);
	cr_expect(tu_notify_wait(notify, "STOPPING=1", 3000, seen, sizeof(seen)), "no STOPPING=1: %s", seen);
	close(notify);
	unlink(conf);
	/* Leave the kernel as we found it for the suites that follow. */
	rig_target_teardown(img);
	syscall(SYS_keyctl, KEYCTL_UNLINK, serial, ring);
}

Test(agent_nvme, refuses_bad_config)
{
	char log[128], cfg[] = "/tmp/agent-conf-XXXXXX";
	int fd = mkstemp(cfg), r;
	pid_t pid;

	cr_assert(fd >= 0);
	cr_assert(write(fd, "log_level = loud\n", 17) == 17);
	close(fd);
	snprintf(log, sizeof(log), "/tmp/ktlsd-agent-conf-%d.log", (int)getpid());
	pid = fork();
	if (pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(lf, 2);
		execl(tu_build("ktlsd"), "ktlsd", "agent", "--foreground", "--config", cfg,
		      (char *)NULL);
		_exit(127);
	}
	r = tu_wait(pid, 10000);
	cr_assert(WIFEXITED(r) && WEXITSTATUS(r) == 1);
	snprintf(agent_log, sizeof(agent_log), "%s", log);
	cr_expect(rig_log_has(agent_log, ":1: log_level must be error, info or debug"), "no line-numbered reason");
	unlink(cfg);
}
