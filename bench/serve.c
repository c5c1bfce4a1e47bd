/*
 * serve.c - `ktls-bench serve`: the five server configurations, one server
 * process at a time pinned to the server CPU, each size a row measured by
 * client.c.  Per row: bytes the client verified, bytes the server's access
 * log says it sent (they must agree), server CPU from /proc/PID/stat, and
 * the rise of /proc/net/tls_stat's TX counters (a kTLS row that did not
 * really get kTLS, or a userspace row that did, is an error, not a score).
 *
 * Row 6, ktlsd-nic, runs only where the rig's TLS-offload test NIC is
 * (tests/vm/nicsim, KTLS_VM_NICSIM=1): ktlsd on ktsim0's 10.77.0.1, the
 * client threads in namespace "peer" behind ktsim1, TLS 1.2 AES-128-GCM
 * (what the test device takes), and TlsTxDevice must rise by a connection
 * each.  The device encrypts in software under emulation: its figures
 * show the machinery (counts, records, copies), never NIC speed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static const struct config {
	int no;
	const char *name, *what;
	int ktlsd, tls, ktls, nic;
} configs[] = {
	{ 1, "nginx-plain", "nginx, plaintext, sendfile on", 0, 0, 0, 0 },
	{ 2, "ktlsd-ktls", "ktlsd, kTLS TX+RX, io_uring splice", 1, 1, 1, 0 },
	{ 3, "ktlsd-user", "ktlsd --no-offload (userspace TLS)", 1, 1, 0, 0 },
	{ 4, "nginx-tls", "nginx, userspace TLS (OpenSSL)", 0, 1, 0, 0 },
	{ 5, "nginx-ktls", "nginx + kTLS (ssl_conf_command Options KTLS)", 0, 1, 1, 0 },
	{ 6, "ktlsd-nic", "ktlsd, TX on the rig's test NIC (emulated: machinery only)", 1, 1, 1, 1 },
};

#define NIC_DEV "ktsim0"
#define NIC_HOST "10.77.0.1"
#define NIC_NETNS "/run/netns/peer"
#define NIC_CIPHER12 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

/* Empty when the test NIC is here, else why row 6 cannot run. */
const char *bench_nic_missing(void)
{
	if (access("/sys/class/net/" NIC_DEV, F_OK) != 0)
		return "no TLS-offload test NIC " NIC_DEV " here (the rig's KTLS_VM_NICSIM=1 has one)";
	if (access(NIC_NETNS, F_OK) != 0)
		return "no network namespace " NIC_NETNS " for the client behind the test NIC";
	return "";
}

/*
 * Whether this ktlsd can turn TLS 1.3 session tickets off (`--tickets 0`),
 * as nginx's are for the handshake rows.  Asked once, from its --help.
 */
int ktlsd_has_tickets_opt(const struct bench *b)
{
	static int known = -1;
	char out[4096];
	char *argv[] = { (char *)b->ktlsd, "serve", "--help", NULL };

	if (known < 0)
		known = run_cmd(argv, out, sizeof(out)) >= 0 && strstr(out, "--tickets") != NULL;
	return known;
}

int ktlsd_start(const struct bench *b, struct server *s, const char *name, const char *root,
		int offload, const char *cert, const char *key)
{
	return ktlsd_start_at(b, s, name, "127.0.0.1", root, offload, cert, key);
}

int ktlsd_start_at(const struct bench *b, struct server *s, const char *name, const char *host,
		   const char *root, int offload, const char *cert, const char *key)
{
	char listen[64];
	char *argv[40];
	int n = 0;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/%s", b->workdir, name);
	if (mkdir(s->dir, 0755) < 0 && errno != EEXIST)
		return -1;
	snprintf(s->log, sizeof(s->log), "%s/ktlsd.log", s->dir);
	snprintf(s->access, sizeof(s->access), "%s/access.log", s->dir);
	s->port = free_port();
	if (s->port < 0)
		return -1;
	snprintf(listen, sizeof(listen), "%s:%d", host, s->port);
	argv[n++] = (char *)b->ktlsd;
	argv[n++] = "serve";
	argv[n++] = "--root";
	argv[n++] = (char *)root;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--cert";
	argv[n++] = (char *)cert;
	argv[n++] = "--key";
	argv[n++] = (char *)key;
	argv[n++] = "--workers";
	argv[n++] = "1"; /* one core: cycles/byte and handshakes per core */
	argv[n++] = "--foreground";
	argv[n++] = "--access-log";
	argv[n++] = s->access;
	argv[n++] = "--grace-period";
	argv[n++] = "1";
	argv[n++] = "--request-timeout";
	argv[n++] = "600";
	argv[n++] = "--idle-timeout";
	argv[n++] = "600";
	if (!offload)
		argv[n++] = "--no-offload";
	if (ktlsd_has_tickets_opt(b)) {
		argv[n++] = "--tickets";
		argv[n++] = "0";
	}
	argv[n] = NULL;
	s->pid = spawn(argv, b->server_cpu, s->log);
	if (s->pid < 0 || wait_port_at(host, s->port, s->pid, 10) < 0) {
		fprintf(stderr, "ktls-bench: ktlsd (%s) did not start; see %s\n", name, s->log);
		server_stop(s);
		return -1;
	}
	return 0;
}

void server_stop(struct server *s)
{
	if (s->pid > 0)
		stop_child(s->pid, SIGTERM, 5);
	s->pid = 0;
}

/*
 * Sum the byte column of an access log in the common format both servers
 * write here: HOST - - [TIME] "REQUEST" STATUS BYTES SECONDS.
 */
int access_log_bytes(const char *path, uint64_t *bytes, uint64_t *lines)
{
	FILE *f = fopen(path, "re");
	char line[2048];

	*bytes = *lines = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *q = strrchr(line, '"');
		unsigned long long v;
		int st;

		if (!q || sscanf(q + 1, "%d %llu", &st, &v) != 2)
			continue;
		*bytes += v;
		(*lines)++;
	}
	fclose(f);
	return 0;
}

struct snap {
	pid_t pid;
	double cpu0, cpu1;
	long long rd0, rd1;
};

static void snap_start(void *arg)
{
	struct snap *s = arg;

	s->cpu0 = proc_cpu_s(s->pid);
	s->rd0 = proc_read_bytes(s->pid);
}

static void snap_end(void *arg)
{
	struct snap *s = arg;

	s->cpu1 = proc_cpu_s(s->pid);
	s->rd1 = proc_read_bytes(s->pid);
}

/* Wait (up to 3 s) for the access log to account for `want` more bytes. */
static uint64_t log_settle(const char *path, uint64_t base, uint64_t want)
{
	uint64_t bytes = 0, lines;
	double end = now_s() + 3;

	do {
		if (access_log_bytes(path, &bytes, &lines) == 0 && bytes - base >= want)
			break;
		usleep(20000);
	} while (now_s() < end);
	return bytes - base;
}

static void run_row(struct bench *b, const struct config *c, struct server *s, size_t size,
		    const unsigned char *sha, struct row *r)
{
	char path[64];
	struct snap sn = { .pid = s->pid };
	struct load l = {
		.port = s->port, .tls_on = c->tls, .version = b->tls, .cafile = b->cert,
		.rsa = b->rsa, .path = path, .size = size, .sha = sha, .seconds = b->seconds,
		.conns = b->conns, .cpu = b->client_cpu, .on_start = snap_start,
		.on_end = snap_end, .arg = &sn,
	};
	struct load_result res;
	uint64_t log0, lines;
	long long tx0 = tls_stat_tx(), tx1, dev0 = tls_stat_counter("TlsTxDevice"), dev1;

	if (c->nic) {
		snprintf(r->note, sizeof(r->note), "TX on the rig's test NIC %s, which encrypts in "
			 "software under emulation: counts (syscalls, copies, installs), not speed",
			 NIC_DEV);
		l.host = NIC_HOST;
		l.netns = NIC_NETNS;
		l.cipher12 = NIC_CIPHER12;
		l.version = KTLS_TLS1_2; /* Linux gives devices TLS 1.2 only */
	}

	snprintf(path, sizeof(path), "/f%zu", size);
	access_log_bytes(s->access, &log0, &lines);
	load_run(&l, &res);
	tx1 = tls_stat_tx();
	dev1 = tls_stat_counter("TlsTxDevice");
	r->bytes = res.bytes;
	r->requests = res.requests;
	r->seconds = res.seconds;
	r->p50_ms = res.p50_ms;
	r->p99_ms = res.p99_ms;
	snprintf(r->version, sizeof(r->version), "%s", c->tls ? res.version : "plain");
	snprintf(r->cipher, sizeof(r->cipher), "%s", c->tls ? res.cipher : "none");
	r->server_cpu_s = sn.cpu1 - sn.cpu0;
	if (r->seconds > 0) {
		r->gbps = (double)r->bytes / r->seconds / 1e9;
		r->rps = (double)r->requests / r->seconds;
	}
	if (r->bytes)
		r->cpb = r->server_cpu_s * b->cpu_hz / (double)r->bytes;
	r->ktls_tx = tx0 >= 0 && tx1 >= 0 ? tx1 - tx0 : -1;
	/*
	 * Copies through userspace: the file bytes the server read(2)s into its
	 * own memory (rchar).  Splices and io_uring receives do not count there
	 * and ktlsd never calls sendfile(2) on these rows, so on its kTLS path
	 * this is the body bytes copied out of the kernel.  sendfile(2) counts
	 * without copying anything: nginx's sendfile rows (1, 5) show none.
	 * Userspace TLS adds the ciphertext it read (requests: small).
	 */
	r->copy_per_byte = -1;
	if ((c->ktlsd || !c->ktls) && c->tls && r->bytes && sn.rd0 >= 0 && sn.rd1 >= sn.rd0)
		r->copy_per_byte = (double)(sn.rd1 - sn.rd0) / (double)r->bytes;
	r->server_bytes = log_settle(s->access, log0, r->bytes);
	if (res.error[0]) {
		snprintf(r->error, sizeof(r->error), "%s", res.error);
	} else if (sn.cpu0 < 0 || sn.cpu1 < 0) {
		snprintf(r->error, sizeof(r->error), "cannot read the server's CPU time");
	} else if (r->server_bytes != r->bytes) {
		snprintf(r->error, sizeof(r->error),
			 "client verified %llu bytes, server's access log says %llu",
			 (unsigned long long)r->bytes, (unsigned long long)r->server_bytes);
	} else if (r->ktls_tx >= 0 && c->ktls && r->ktls_tx < b->conns) {
		snprintf(r->error, sizeof(r->error),
			 "kTLS not engaged: TlsTxSw+TlsTxDevice rose by %lld for %d connections "
			 "(see %.100s)", r->ktls_tx, b->conns, s->log);
	} else if (c->nic && (dev0 < 0 || dev1 - dev0 < b->conns)) {
		snprintf(r->error, sizeof(r->error),
			 "TX not on the device: TlsTxDevice rose by %lld for %d connections "
			 "(see %.100s)", dev1 - dev0, b->conns, s->log);
	} else if (r->ktls_tx > 0 && !c->ktls) {
		snprintf(r->error, sizeof(r->error), "kTLS engaged on a userspace row (+%lld)",
			 r->ktls_tx);
	}
	r->sys_per_conn = r->sys_per_req = -1;
	if (!r->error[0]) {
		/* Large files under strace are slow: fewer of them. */
		int big = size > (1u << 20), conns = b->quick || big ? 2 : 4,
		    reqs = b->quick || big ? 2 : 8;
		struct syscall_counts sc;
		char keep[360];

		snprintf(keep, sizeof(keep), "%s/strace-%zu", s->dir, size);
		int rc = syscalls_count(s->pid, &l, conns, reqs, b->workdir_keep ? keep : NULL, &sc);

		r->count_requests = sc.requests;
		if (rc == 0) {
			r->sys_per_conn = sc.per_conn;
			r->sys_per_req = sc.per_req;
		} else {
			snprintf(r->error, sizeof(r->error), "syscalls: %.200s", sc.error);
		}
	}
}

int bench_serve(struct bench *b)
{
	char root[300], name[32], fpath[340];
	unsigned char sha[BENCH_MAX_SIZES][32];
	int total = 0, done = 0, failed = 0;
	double t_start = now_s();

	snprintf(root, sizeof(root), "%s/www", b->workdir);
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "ktls-bench: mkdir %s: %s\n", root, strerror(errno));
		return -1;
	}
	for (int i = 0; i < b->nsizes; i++) {
		snprintf(fpath, sizeof(fpath), "%s/f%zu", root, b->sizes[i]);
		if (make_file(fpath, b->sizes[i], (unsigned)i + 1, sha[i]) < 0) {
			fprintf(stderr, "ktls-bench: making %s: %s\n", fpath, strerror(errno));
			return -1;
		}
	}
	for (size_t k = 0; k < sizeof(configs) / sizeof(configs[0]); k++)
		if (b->configs & (1u << configs[k].no) && !(configs[k].ktls && b->ktls_reason[0]) &&
		    !(configs[k].nic && bench_nic_missing()[0]))
			total += b->nsizes;
	for (size_t k = 0; k < sizeof(configs) / sizeof(configs[0]); k++) {
		const struct config *c = &configs[k];
		struct server s;
		int up;

		if (!(b->configs & (1u << c->no)))
			continue;
		const char *skip = c->ktls && b->ktls_reason[0] ? b->ktls_reason
				   : c->nic ? bench_nic_missing() : "";
		if (skip[0]) {
			for (int i = 0; i < b->nsizes; i++) {
				struct row *r = row_add(ROW_SERVE);

				r->config_no = c->no;
				snprintf(r->config, sizeof(r->config), "%s", c->name);
				r->size = b->sizes[i];
				r->conns = b->conns;
				snprintf(r->skipped, sizeof(r->skipped), "%s", skip);
			}
			fprintf(stderr, "ktls-bench: %d %s skipped: %s\n", c->no, c->name, skip);
			continue;
		}
		snprintf(name, sizeof(name), "serve-%s", c->name);
		up = c->ktlsd ? ktlsd_start_at(b, &s, name, c->nic ? NIC_HOST : "127.0.0.1", root,
					       c->ktls, b->cert, b->key)
			      : nginx_start(b, &s, name, root, c->tls, c->ktls, b->cert, b->key);
		for (int i = 0; i < b->nsizes; i++) {
			struct row *r = row_add(ROW_SERVE);
			char what[96], sz[32];

			r->config_no = c->no;
			snprintf(r->config, sizeof(r->config), "%s", c->name);
			r->size = b->sizes[i];
			r->conns = b->conns;
			snprintf(r->certkind, sizeof(r->certkind), "%s", c->tls ? (b->rsa ? "RSA-2048" : "P-256") : "-");
			snprintf(what, sizeof(what), "%d %s %s", c->no, c->name,
				 size_name(r->size, sz, sizeof(sz)));
			progress(b, done++, total, what, t_start);
			if (up < 0) {
				snprintf(r->error, sizeof(r->error), "server did not start (log: %.180s)", s.log);
			} else {
				run_row(b, c, &s, b->sizes[i], sha[i], r);
			}
			if (r->error[0]) {
				failed++;
				fprintf(stderr, "ktls-bench: %s FAILED: %s\n", what, r->error);
			}
		}
		if (up == 0)
			server_stop(&s);
	}
	return failed ? -1 : 0;
}
