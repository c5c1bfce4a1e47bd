/*
 * agent_nfs.c - `ktlsd agent` as the kernel's handshake agent for NFS over
 * TLS (RFC 9289): nfsd exporting a directory with xprtsec=tls:mtls and the
 * NFSv4.2 client mounting it over loopback, both ends' handshakes answered
 * by our agent (x509: the client verifies the server's name, nfsd presents
 * the agent's certificate and, for mtls, checks the client's).
 *
 * Debian 12's nfs-utils knows no xprtsec=, so exportfs, rpc.mountd,
 * rpc.nfsd and mount.nfs come from trixie's, unpacked into the rig's cache
 * by tests/vm/nfs-utils and named by KTLS_NFS_UTILS (tests/vm/suite sets
 * it).  The guest's root is read-only: nfs-utils' state directory
 * (/var/lib/nfs) is a tmpfs in this test's own mount namespace.
 *
 * One sequential test in phases (nfsd, its exports and the agent are
 * global to the guest): no agent (ESRCH); xprtsec=tls then mtls mounts with
 * a 4 MiB file written and read back equal by SHA-256, kTLS on both ends'
 * sockets (ss, tls_stat), every handshake_complete status 0; an mtls-only
 * export refusing TLS without a client certificate and plaintext (EPERM);
 * a server name the certificate lacks and a wrong trust anchor (EACCES,
 * status -13, the reason in the agent's log).
 * Kernels without the handshake family (6.1) must refuse with the
 * documented message instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/nvme_rig.h"
#include "../common/testutil.h"

#define BIG_BYTES (4u << 20)

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(agent_nfs, .init = init, .timeout = 240);

static char tools[512];	 /* $KTLS_NFS_UTILS/bin */
static char dir[128];	 /* this run's files */
static char agent_log[192];

/* Run an nfs-utils tool (output captured): its exit status. */
static int nfs_tool(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int nfs_tool(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int n = snprintf(cmd, sizeof(cmd), "%s/", tools);

	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	return tu_run(cmd, out, cap);
}

/*
 * mount.nfs localhost:PATH on dir/mnt.  retry=0: a refused mount fails at
 * once instead of retrying for two minutes.  Exit status; output in out.
 */
static int nfs_mount(const char *path, const char *xprtsec, char *out, size_t cap)
{
	return nfs_tool(out, cap, "mount.nfs localhost:%s %s/mnt -o vers=4.2,retry=0%s%s", path, dir,
			xprtsec ? ",xprtsec=" : "", xprtsec ? xprtsec : "");
}

static void nfs_umount(void)
{
	char mnt[192];

	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	cr_assert_eq(umount(mnt), 0, "umount %s: %s", mnt, strerror(errno));
}

/* kTLS sockets on port 2049 (either end) per ss(8). */
static int ss_ktls_2049(void)
{
	char out[16384];
	int n = 0;

	tu_run("ss -tnie '( sport = :2049 or dport = :2049 )' 2>&1", out, sizeof(out));
	for (char *p = out; (p = strstr(p, "tcp-ulp-tls version: 1.3")); p++)
		n++;
	return n;
}

static void file_sha(const char *path, int direct, char sha[65])
{
	void *buf = NULL;
	int fd = open(path, O_RDONLY | (direct ? O_DIRECT : 0));

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(posix_memalign(&buf, 4096, BIG_BYTES), 0);
	cr_assert_eq(tu_read_full(fd, buf, BIG_BYTES), 0, "%s: short read", path);
	tu_sha256_hex(buf, BIG_BYTES, sha);
	free(buf);
	close(fd);
}

/* The agent with this trust anchor; our test server certificate for both ends. */
static pid_t agent_with(const char *truststore)
{
	char conf[192], text[1024];
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/agent.conf", dir);
	snprintf(text, sizeof(text),
		 "log_level = info\nx509.truststore = %s\nx509.certificate = %s\nx509.private_key = %s\n",
		 tu_cert(truststore), tu_cert("server-ec.pem"), tu_cert("server-ec.key"));
	rig_write_file(conf, text);
	pid = rig_agent_start(agent_log, conf);
	rig_agent_wait_listening(pid, agent_log);
	return pid;
}

/*
 * nfs-utils' state lives in /var/lib/nfs, on the guest's read-only root:
 * give this process (and the daemons it starts) a mount namespace with a
 * tmpfs there.  Mounts made from here on stay out of the other suites'.
 */
static void private_state_dir(void)
{
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(mount("tmpfs", "/var/lib", "tmpfs", 0, "mode=0755"), 0, "%s", strerror(errno));
	cr_assert_eq(mkdir("/var/lib/nfs", 0755), 0);
	cr_assert_eq(mkdir("/var/lib/nfs/v4recovery", 0700), 0);
}

/* dir/export (the NFSv4 root, tls or mtls) and dir/export/m (mtls only). */
static pid_t server_start(void)
{
	char path[192], out[4096];
	pid_t mountd;
	int r;

	if (access("/proc/fs/nfsd/threads", F_OK) != 0)
		cr_assert_eq(mount("nfsd", "/proc/fs/nfsd", "nfsd", 0, NULL), 0, "nfsd fs: %s",
			     strerror(errno));
	snprintf(path, sizeof(path), "%s/export", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/export/hello", dir);
	rig_write_file(path, "hello over TLS\n");
	snprintf(path, sizeof(path), "%s/export/m", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	/* a file system of its own: an export needs one for its own options */
	cr_assert_eq(mount("tmpfs", path, "tmpfs", 0, NULL), 0);
	snprintf(path, sizeof(path), "%s/export/m/only-mtls", dir);
	rig_write_file(path, "client certificate checked\n");

	/*
	 * exportfs exits 1 over the missing /etc/exports even when it exported
	 * what it was given: the table it wrote is what counts.
	 */
	nfs_tool(out, sizeof(out), "exportfs -o rw,no_root_squash,insecure,fsid=0,xprtsec=tls:mtls "
		 "'*:%s/export'", dir);
	nfs_tool(out, sizeof(out), "exportfs -o rw,no_root_squash,insecure,fsid=2,xprtsec=mtls "
		 "'*:%s/export/m'", dir);
	cr_assert_eq(rig_read_text("/var/lib/nfs/etab", out, sizeof(out)), 0, "no etab written");
	cr_assert(strstr(out, "xprtsec=tls:mtls") && strstr(out, "xprtsec=mtls)"), "etab: %s", out);

	/* NFSv4 only: mountd needs no rpcbind and answers the kernel's export upcalls. */
	mountd = fork();
	cr_assert(mountd >= 0);
	if (mountd == 0) {
		char exe[600], lg[192];
		int fd;

		snprintf(lg, sizeof(lg), "%s/mountd.log", dir);
		fd = open(lg, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		snprintf(exe, sizeof(exe), "%s/rpc.mountd", tools);
		execl(exe, "rpc.mountd", "-F", "-N", "2", "-N", "3", (char *)NULL);
		_exit(127);
	}
	/* The shortest grace period, then ended at once: nothing to reclaim. */
	rig_put("/proc/fs/nfsd/nfsv4gracetime", "10");
	rig_put("/proc/fs/nfsd/nfsv4leasetime", "10");
	cr_assert_eq(nfs_tool(out, sizeof(out), "rpc.nfsd -N 3 4"), 0, "rpc.nfsd: %s", out);
	/*
	 * Kernels with legacy client tracking (6.12) take the end at once.
	 * Without it (7.x) nfsd wants nfsdcld, which we do not run: tracking
	 * stays off, the write is refused with EBUSY, and the grace period
	 * runs its 10 s, during which the client retries its OPENs itself.
	 */
	r = rig_put("/proc/fs/nfsd/v4_end_grace", "Y");
	cr_assert(r == 0 || r == EBUSY, "ending the grace period: %s", strerror(r));
	if (r)
		fprintf(stderr, "agent_nfs: no client tracking here: the 10 s grace period runs\n");
	return mountd;
}

static void server_stop(pid_t mountd)
{
	char out[1024];

	nfs_tool(out, sizeof(out), "rpc.nfsd 0");
	nfs_tool(out, sizeof(out), "exportfs -ua");
	tu_stop(mountd, 3000);
}

Test(agent_nfs, nfs_v4_2_over_tls_through_our_agent)
{
	char out[8192], sha_w[65], sha_srv[65], sha_r[65], bad[64], path[640];
	const char *base = getenv("KTLS_NFS_UTILS");
	long long tx0, rx0;
	int ok, nbad, r;
	pid_t agent, mountd;
	void *buf = NULL;
	int fd;

	cr_assert(tu_expect_ktls(), "guest suite: KTLS_TEST_EXPECT_KTLS=1 expected");
	snprintf(dir, sizeof(dir), "/tmp/agent-nfs-%d", (int)getpid());
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(agent_log, sizeof(agent_log), "%s/agent.log", dir);
	if (!rig_kernel_has_upcall()) {
		/* 6.1: the documented refusal, not a skip. */
		rig_assert_agent_refuses(agent_log);
		return;
	}
	cr_assert(base && *base, "KTLS_NFS_UTILS is not set: run the guest suites through tests/vm/suite, "
		  "or set KTLS_NFS_UTILS=$(tests/vm/nfs-utils)");
	snprintf(tools, sizeof(tools), "%s/bin", base);
	snprintf(path, sizeof(path), "%s/mount.nfs", tools);
	cr_assert_eq(access(path, X_OK), 0, "%s: %s (tests/vm/nfs-utils makes it)", path, strerror(errno));

	private_state_dir();
	rig_trace_setup();
	mountd = server_start();
	snprintf(path, sizeof(path), "%s/mnt", dir);
	cr_assert_eq(mkdir(path, 0755), 0);

	/* 1. No agent: the client's upcall finds nobody; the mount fails at once. */
	r = nfs_mount("/", "tls", out, sizeof(out));
	cr_assert_neq(r, 0, "mounted without an agent");
	cr_assert(strstr(out, "No such process"), "no agent: expected ESRCH, got: %s", out);

	agent = agent_with("ca.pem");

	/* 2. xprtsec=tls: the client verifies nfsd's certificate, sends none. */
	tx0 = tu_tls_stat("TlsCurrTxSw");
	rx0 = tu_tls_stat("TlsCurrRxSw");
	rig_trace_clear();
	r = nfs_mount("/", "tls", out, sizeof(out));
	cr_assert_eq(r, 0, "mount xprtsec=tls: %s\nagent log: %s", out, agent_log);
	cr_expect_eq(tu_tls_stat("TlsCurrTxSw") - tx0, 2, "TX kTLS sockets (client + nfsd)");
	cr_expect_eq(tu_tls_stat("TlsCurrRxSw") - rx0, 2, "RX kTLS sockets (client + nfsd)");
	cr_expect_eq(ss_ktls_2049(), 2, "ss: kTLS sockets on port 2049");
	snprintf(path, sizeof(path), "%s/mnt/hello", dir);
	cr_assert_eq(rig_read_text(path, out, sizeof(out)), 0, "%s: %s", path, strerror(errno));
	cr_assert_str_eq(out, "hello over TLS\n");

	cr_assert_eq(posix_memalign(&buf, 4096, BIG_BYTES), 0);
	tu_fill(buf, BIG_BYTES, 2049);
	tu_sha256_hex(buf, BIG_BYTES, sha_w);
	snprintf(path, sizeof(path), "%s/mnt/big", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(tu_write_full(fd, buf, BIG_BYTES), 0, "write: %s", strerror(errno));
	cr_assert_eq(fsync(fd), 0, "fsync: %s", strerror(errno));
	close(fd);
	free(buf);
	snprintf(path, sizeof(path), "%s/export/big", dir);
	file_sha(path, 0, sha_srv);
	cr_assert_str_eq(sha_srv, sha_w, "the server's copy differs from what the client wrote");
	nfs_umount();

	/* 3. xprtsec=mtls: a fresh mount (no client cache) reads it back, O_DIRECT. */
	r = nfs_mount("/", "mtls", out, sizeof(out));
	cr_assert_eq(r, 0, "mount xprtsec=mtls: %s", out);
	snprintf(path, sizeof(path), "%s/mnt/big", dir);
	file_sha(path, 1, sha_r);
	cr_assert_str_eq(sha_r, sha_w, "read back over mtls differs");
	cr_expect_eq(ss_ktls_2049(), 2, "ss: kTLS sockets on port 2049 (mtls)");
	nfs_umount();
	r = nfs_mount("/m", "mtls", out, sizeof(out));
	cr_assert_eq(r, 0, "mount of the mtls-only export with a client certificate: %s", out);
	snprintf(path, sizeof(path), "%s/mnt/only-mtls", dir);
	cr_assert_eq(rig_read_text(path, out, sizeof(out)), 0, "%s: %s", path, strerror(errno));
	cr_assert_str_eq(out, "client certificate checked\n");
	nfs_umount();

	rig_trace_tally(&ok, &nbad, bad, sizeof(bad));
	if (ok < 6 || nbad) {
		tu_run("grep handshake_complete " RIG_TRACE "/trace | head -20", out, sizeof(out));
		fprintf(stderr, "trace:\n%s\n", out);
	}
	cr_expect_geq(ok, 6, "handshake_complete status=0 events (3 mounts x 2 ends)");
	cr_expect_eq(nbad, 0, "failed handshakes: %s", bad);
	cr_expect(rig_wait_log(agent_log, "handshake ok: client anon peer 127.0.0.1:2049 TLSv1.3", 5000),
		  "agent log: the tls client");
	cr_expect(rig_log_has(agent_log, "handshake ok: client x509 peer 127.0.0.1:2049 TLSv1.3"),
		  "agent log: the mtls client");
	cr_expect(rig_log_has(agent_log, "handshake ok: server x509"), "agent log: nfsd's side");
	cr_expect(rig_log_has(agent_log, "kTLS tx sw rx sw"), "agent log: keys in kTLS");

	/* 4. The mtls-only export: TLS without a client certificate, and plaintext, refused. */
	rig_trace_clear();
	r = nfs_mount("/m", "tls", out, sizeof(out));
	cr_assert_neq(r, 0, "mtls-only export mounted with xprtsec=tls");
	cr_expect(strstr(out, "Operation not permitted"), "tls to mtls-only: expected EPERM, got: %s", out);
	/* the handshake itself succeeds: nfsd refuses the client afterwards */
	rig_trace_tally(&ok, &nbad, bad, sizeof(bad));
	cr_expect(ok >= 2 && nbad == 0, "tls to mtls-only: %d ok, %d failed handshakes (%s)", ok, nbad, bad);
	rig_trace_clear();
	r = nfs_mount("/", NULL, out, sizeof(out));
	cr_assert_neq(r, 0, "TLS export mounted in plaintext");
	cr_expect(strstr(out, "Operation not permitted"), "plaintext: expected EPERM, got: %s", out);
	cr_expect_eq(rig_trace_count("handshake_submit"), 0, "plaintext: a handshake was asked for");

	/*
	 * 5. A server name the certificate does not carry (127.0.0.2 is
	 * loopback too; the certificate names localhost, 127.0.0.1 and ::1).
	 */
	rig_trace_clear();
	r = nfs_tool(out, sizeof(out), "mount.nfs 127.0.0.2:/ %s/mnt -o vers=4.2,retry=0,xprtsec=tls", dir);
	cr_assert_neq(r, 0, "mounted although the certificate does not name 127.0.0.2");
	cr_expect(strstr(out, "access denied by server"), "wrong name: expected EACCES, got: %s", out);
	cr_expect(rig_wait_log(agent_log, "peer 127.0.0.2:2049: certificate verify failed: "
			       "IP address mismatch, certificate is not valid for '127.0.0.2' -> status EACCES",
			       5000),
		  "agent log: the client's name check");
	rig_trace_tally(&ok, &nbad, bad, sizeof(bad));
	cr_expect_str_eq(bad, "status=-13", "wrong name: EACCES expected in handshake_complete");

	/* 6. A trust anchor that did not issue nfsd's certificate: EACCES, with the reason. */
	tu_stop(agent, 3000);
	agent = agent_with("other-ca.pem");
	rig_trace_clear();
	r = nfs_mount("/", "tls", out, sizeof(out));
	cr_assert_neq(r, 0, "mounted although the server's certificate is not trusted");
	cr_expect(strstr(out, "access denied by server"), "wrong CA: expected EACCES, got: %s", out);
	rig_trace_tally(&ok, &nbad, bad, sizeof(bad));
	cr_expect_eq(ok, 0, "wrong CA: a handshake succeeded");
	cr_expect_str_eq(bad, "status=-13", "wrong CA: EACCES expected in handshake_complete");
	cr_expect(rig_wait_log(agent_log, "certificate verify failed: unable to get local issuer certificate "
			       "-> status EACCES", 5000), "agent log: the client's verify failure");

	tu_stop(agent, 3000);
	server_stop(mountd);
	snprintf(path, sizeof(path), "%s/export/m", dir);
	umount(path);
	for (int i = 0; i < 50 && tu_tls_stat("TlsCurrTxSw") != tx0; i++)
		usleep(100000);
	cr_expect_eq(tu_tls_stat("TlsCurrTxSw"), tx0, "kTLS sockets left open after nfsd stopped");
}
