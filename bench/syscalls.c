/*
 * syscalls.c - a server's syscalls per connection and per request,
 * counted the same way for ktlsd and nginx: `strace -f -c` attached to
 * every process of the server (all their threads) while the client makes
 * a fixed number of connections and requests.  Counts are what emulation
 * cannot distort; the time strace adds does not matter here.
 *
 *   A: conns connections x 1 request      B: conns x (1 + reqs) requests
 *   per request    = (B - A) / (conns * reqs)
 *   per connection = A / conns - per request
 * so "per connection" is everything but the requests: accept, handshake,
 * key installation, close.  ktlsd's io_uring work shows as io_uring_enter
 * calls, which is what it costs in syscalls.  With --workdir the two
 * strace summaries stay next to the server's logs.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MAX_PIDS 64

/* The server and its child processes (nginx: master and workers). */
static int server_pids(pid_t root, pid_t *out, int cap)
{
	char path[96], line[1024];
	struct dirent *e;
	DIR *d;
	int n = 0;

	out[n++] = root;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)root);
	if (!(d = opendir(path)))
		return n;
	while ((e = readdir(d)) && n < cap) {
		FILE *f;
		char *tok, *save;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/children", (int)root, e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(line, sizeof(line), f))
			for (tok = strtok_r(line, " \n", &save); tok && n < cap;
			     tok = strtok_r(NULL, " \n", &save))
				out[n++] = (pid_t)atoi(tok);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Every thread of every pid has a tracer. */
static int all_traced(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		char path[96], line[128];
		struct dirent *e;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)pids[i]);
		if (!(d = opendir(path)))
			return 0;
		while ((e = readdir(d))) {
			FILE *f;
			int traced = 0;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%.20s/status", (int)pids[i],
				 e->d_name);
			if (!(f = fopen(path, "r")))
				continue;
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, "TracerPid:", 10)) {
					traced = atoi(line + 10) != 0;
					break;
				}
			fclose(f);
			if (!traced) {
				closedir(d);
				return 0;
			}
		}
		closedir(d);
	}
	return 1;
}

/* The "calls" column of strace -c's total line, or -1. */
static long long summary_calls(const char *file)
{
	char line[256];
	long long calls = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		double pct, secs;
		long long usecs, n;

		if (strstr(line, " total") &&
		    sscanf(line, "%lf %lf %lld %lld", &pct, &secs, &usecs, &n) == 4)
			calls = n;
	}
	fclose(f);
	return calls;
}

/* Copy the summary next to the server's logs (often another filesystem). */
static void keep_file(const char *from, const char *to)
{
	char buf[4096];
	FILE *in = fopen(from, "r"), *out = in ? fopen(to, "w") : NULL;
	size_t n;

	while (out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	if (out)
		fclose(out);
	if (in)
		fclose(in);
}

/* One traced workload: the server's syscalls, or -1 with err. */
static long long traced_run(pid_t server, const struct load *base, int conns, int reqs,
			    const char *keep, uint64_t *requests, char *err, size_t errlen)
{
	char file[] = "/tmp/ktls-bench-strace-XXXXXX", pidbuf[MAX_PIDS][16];
	char *argv[8 + 2 * MAX_PIDS];
	pid_t pids[MAX_PIDS], tracer;
	struct load l = *base;
	struct load_result res;
	int fd = mkstemp(file), n, a = 0;
	long long calls;
	double end;

	if (fd < 0) {
		snprintf(err, errlen, "mkstemp: %s", strerror(errno));
		return -1;
	}
	close(fd);
	n = server_pids(server, pids, MAX_PIDS);
	argv[a++] = "strace";
	argv[a++] = "-f";
	argv[a++] = "-c";
	argv[a++] = "-q";
	argv[a++] = "-o";
	argv[a++] = file;
	for (int i = 0; i < n; i++) {
		snprintf(pidbuf[i], sizeof(pidbuf[i]), "%d", (int)pids[i]);
		argv[a++] = "-p";
		argv[a++] = pidbuf[i];
	}
	argv[a] = NULL;
	tracer = spawn(argv, -1, NULL);
	for (end = now_s() + 5; tracer > 0 && !all_traced(pids, n) && now_s() < end;)
		usleep(10000);
	if (tracer < 0 || !all_traced(pids, n)) {
		snprintf(err, errlen, "strace could not attach to the server (is strace installed, "
			 "and ptrace allowed?)");
		if (tracer > 0)
			stop_child(tracer, SIGINT, 5);
		unlink(file);
		return -1;
	}
	l.seconds = 0;
	l.conns = 1;
	l.on_start = l.on_end = NULL;
	l.count_conns = conns;
	l.count_reqs = reqs;
	load_run(&l, &res);
	*requests += res.requests;
	usleep(100000); /* the server's close and log after our last read */
	stop_child(tracer, SIGINT, 10);
	calls = summary_calls(file);
	if (keep)
		keep_file(file, keep);
	unlink(file);
	if (res.error[0]) {
		snprintf(err, errlen, "counting run: %.140s", res.error);
		return -1;
	}
	if (calls < 0)
		snprintf(err, errlen, "no strace summary");
	return calls;
}

int syscalls_count(pid_t server, const struct load *l, int conns, int reqs, const char *keep,
		   struct syscall_counts *c)
{
	char ka[400], kb[400];
	long long a, b;

	c->per_conn = c->per_req = -1;
	c->requests = 0;
	c->error[0] = '\0';
	if (keep) {
		snprintf(ka, sizeof(ka), "%s-%dx1.txt", keep, conns);
		snprintf(kb, sizeof(kb), "%s-%dx%d.txt", keep, conns, 1 + reqs);
	}
	if ((a = traced_run(server, l, conns, 1, keep ? ka : NULL, &c->requests, c->error,
			    sizeof(c->error))) < 0 ||
	    (b = traced_run(server, l, conns, 1 + reqs, keep ? kb : NULL, &c->requests, c->error,
			    sizeof(c->error))) < 0)
		return -1;
	c->per_req = (double)(b - a) / ((double)conns * reqs);
	c->per_conn = (double)a / conns - c->per_req;
	return 0;
}
