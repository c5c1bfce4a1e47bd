/* util.c - processes, ports, files and /proc readers for the bench. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bench.h"

struct row g_rows[BENCH_MAX_ROWS];
int g_nrows;

struct row *row_add(int kind)
{
	struct row *r;

	if (g_nrows >= BENCH_MAX_ROWS) {
		fprintf(stderr, "ktls-bench: too many rows\n");
		exit(2);
	}
	r = &g_rows[g_nrows++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->sys_per_conn = r->sys_per_req = -1;
	r->ktls_tx = -1;
	return r;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Until something accepts on 127.0.0.1:port; -1 if pid died or time ran out. */
int wait_port(int port, pid_t pid, double timeout_s)
{
	return wait_port_at("127.0.0.1", port, pid, timeout_s);
}

int wait_port_at(const char *host, int port, pid_t pid, double timeout_s)
{
	double end = now_s() + timeout_s;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -1;

	while (now_s() < end) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), st;

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			close(fd);
			return 0;
		}
		close(fd);
		if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		usleep(20000);
	}
	return -1;
}

/* fork+exec with stdout/stderr into logpath (or /dev/null), pinned to cpu. */
pid_t spawn(char *const argv[], int cpu, const char *logpath)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	{
		int in = open("/dev/null", O_RDONLY);
		int out = open(logpath ? logpath : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (in < 0 || out < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		/* servers die with the bench, even when it is SIGKILLed */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(125);
		if (cpu >= 0)
			pin_cpu(cpu); /* threads and workers inherit it */
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
}

/* sig, then SIGKILL after timeout_s; the wait status, or -1. */
int stop_child(pid_t pid, int sig, double timeout_s)
{
	double end = now_s() + timeout_s;
	int st;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	while (now_s() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	return waitpid(pid, &st, 0) == pid ? st : -1;
}

/*
 * Server CPU, nanosecond resolution: the sum over the process's threads of
 * /proc/PID/task/TID/schedstat's first field (time on CPU, user + system).
 * Both servers keep their threads for the whole run, so before/after sums
 * are comparable.  -1 when schedstat is missing (then use stat_cpu_s).
 */
static double schedstat_cpu_s(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	unsigned long long sum = 0;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p2[128];
		unsigned long long ns;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "/proc/%d/task/%.40s/schedstat", (int)pid, e->d_name);
		f = fopen(p2, "re");
		if (!f)
			continue; /* a thread that just exited */
		if (fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
			n++;
		}
		fclose(f);
	}
	closedir(d);
	return n ? (double)sum / 1e9 : -1;
}

static double stat_cpu_s(pid_t pid);

double proc_cpu_s(pid_t pid)
{
	double s = schedstat_cpu_s(pid);

	return s >= 0 ? s : stat_cpu_s(pid);
}

/*
 * The fallback: utime+stime of the whole process (all its threads, live and
 * exited) from /proc/PID/stat fields 14 and 15, in clock ticks.
 */
static double stat_cpu_s(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * rchar of /proc/PID/io: bytes the process (all its threads) read with
 * read(2)-family calls, sendfile(2) included; -1 when unreadable.
 */
long long proc_read_bytes(pid_t pid)
{
	char path[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "rchar: %lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* TlsTxSw + TlsTxDevice from /proc/net/tls_stat; -1 when there is none. */
long long tls_stat_tx(void)
{
	FILE *f = fopen("/proc/net/tls_stat", "re");
	char name[64];
	long long v, sum = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &v) == 2)
		if (!strcmp(name, "TlsTxSw") || !strcmp(name, "TlsTxDevice"))
			sum += v;
	fclose(f);
	return sum;
}

long long tls_stat_counter(const char *name)
{
	FILE *f = fopen("/proc/net/tls_stat", "re");
	char k[64];
	long long v, found = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (!strcmp(k, name))
			found = v;
	fclose(f);
	return found;
}

/* A file of pseudo-random bytes (xorshift; incompressible enough) and its SHA-256. */
int make_file(const char *path, size_t size, unsigned seed, unsigned char sha[32])
{
	static uint64_t buf[1 << 14];
	uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = -1;
	size_t left = size;

	if (fd < 0 || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	while (left) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);

		for (size_t i = 0; i < (n + 7) / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		if (write(fd, buf, n) != (ssize_t)n || !EVP_DigestUpdate(md, buf, n))
			goto out;
		left -= n;
	}
	if (EVP_DigestFinal_ex(md, sha, NULL))
		rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(md);
	return rc;
}

/* Run argv, capture stdout+stderr (cap-1 bytes); exit status or -1. */
int run_cmd(char *const argv[], char *out, size_t cap)
{
	int p[2], st;
	size_t got = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		dup2(nul, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char tmp[512];
		ssize_t n = read(p[0], tmp, sizeof(tmp));

		if (n <= 0)
			break;
		if (out && got + 1 < cap) {
			size_t k = (size_t)n < cap - 1 - got ? (size_t)n : cap - 1 - got;

			memcpy(out + got, tmp, k);
			got += k;
		}
	}
	if (out && cap)
		out[got] = '\0';
	close(p[0]);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int rm_rf(const char *path)
{
	char *argv[] = { "rm", "-rf", "--", (char *)path, NULL };

	return run_cmd(argv, NULL, 0);
}

int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

const char *size_name(size_t size, char *buf, size_t cap)
{
	if (size >= (1u << 20) && size % (1u << 20) == 0)
		snprintf(buf, cap, "%zu MiB", size >> 20);
	else if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, cap, "%zu KiB", size >> 10);
	else
		snprintf(buf, cap, "%zu B", size);
	return buf;
}

/* "[3/12] nginx-tls 1 MiB  elapsed 12s  ETA 30s" on stderr. */
void progress(const struct bench *b, int done, int total, const char *what, double t_start)
{
	double el = now_s() - t_start;
	double eta = done > 0 ? el / done * (total - done) : (total * (b->seconds + 0.5));

	fprintf(stderr, "ktls-bench: [%d/%d] %s  elapsed %.0fs  ETA %.0fs\n", done + 1, total, what,
		el, eta);
}
