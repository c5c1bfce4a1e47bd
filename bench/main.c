/*
 * ktls-bench - throughput, server CPU cycles per byte, handshake rate and
 * kernel crypto speed of ktlsd against nginx, on this machine.
 * main.c: options, the work directory, and the order of things.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static void usage(FILE *o)
{
	fprintf(o,
		"usage: ktls-bench [serve|handshake|crypto|all] [options]\n"
		"  serve       GB/s, server cycles/byte, req/s, p50/p99 over 5 server configurations:\n"
		"              1 nginx-plain  2 ktlsd-ktls  3 ktlsd-user  4 nginx-tls  5 nginx-ktls\n"
		"              6 ktlsd-nic (TX on the rig's TLS-offload test NIC, where it exists;\n"
		"              emulated: counts the machinery, not speed)\n"
		"  handshake   full handshakes/s per server core (ktlsd, nginx; P-256, RSA-2048;\n"
		"              TLS 1.2, 1.3) and the cost of kTLS installation per connection\n"
		"  crypto      kernel kTLS encryption per cipher next to OpenSSL EVP (16 KiB records)\n"
		"  all         the three (default)\n"
		"options:\n"
		"  --quick            tiny sizes, 1 s per row, 2 connections (the test mode)\n"
		"  --seconds S        per row (default 5)\n"
		"  --conns N          concurrent keep-alive connections (default 8)\n"
		"  --sizes LIST       e.g. 16K,1M,64M,256M (the default)\n"
		"  --configs LIST     serve configurations to run, e.g. 1,3,4 (default 1-5, and 6\n"
		"                     where the test NIC is; those this kernel cannot run are\n"
		"                     skipped with the reason)\n"
		"  --rsa              RSA-2048 certificate for serve rows (default ECDSA P-256)\n"
		"  --tls 1.2|1.3      TLS version for serve rows (default 1.3); cipher AES-256-GCM\n"
		"  --server-cpu N     pin servers to CPU N (default 0; -1 off)\n"
		"  --client-cpu N     pin the client to CPU N (default 1 when there are 2+ CPUs)\n"
		"  --cpu-hz HZ        clock for cycles (default: measured with a dependent-add loop)\n"
		"  --json FILE|-      write one JSON object per row (-: stdout, table to stderr)\n"
		"  --plot DIR         write gnuplot PNGs: cycles_per_byte, throughput, handshakes\n"
		"  --workdir DIR      keep server configs, logs and files there (default: temp, removed)\n"
		"  --ktlsd PATH       default: ktlsd next to this program\n"
		"  --nginx PATH       default: nginx from PATH or /usr/sbin/nginx\n"
		"Progress goes to stderr; the table to stdout.  Exit 1 if any measured row failed.\n");
}

static int parse_size(const char *s, size_t *out)
{
	char *e;
	unsigned long long v = strtoull(s, &e, 10);

	if (e == s)
		return -1;
	switch (*e) {
	case 'K': case 'k': v <<= 10; e++; break;
	case 'M': case 'm': v <<= 20; e++; break;
	case 'G': case 'g': v <<= 30; e++; break;
	default: break;
	}
	if (*e == 'i' || *e == 'B')
		e += *e == 'i' && e[1] == 'B' ? 2 : 1;
	if (*e || v == 0 || v > (8ull << 30))
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_list(struct bench *b, const char *arg, int sizes)
{
	char *dup = strdup(arg), *save = NULL, *tok;
	int rc = 0;

	if (!dup)
		return -1;
	if (sizes)
		b->nsizes = 0;
	else
		b->configs = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (sizes) {
			if (b->nsizes >= BENCH_MAX_SIZES || parse_size(tok, &b->sizes[b->nsizes]) < 0) {
				rc = -1;
				break;
			}
			b->nsizes++;
		} else {
			int c = atoi(tok);

			if (c < 1 || c > 6 || strspn(tok, "0123456789") != strlen(tok)) {
				rc = -1;
				break;
			}
			b->configs |= 1u << c;
		}
	}
	free(dup);
	return rc == 0 && (sizes ? b->nsizes : (int)b->configs) > 0 ? 0 : -1;
}

static const char *default_ktlsd(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	char *slash;

	if (n <= 0)
		return "ktlsd";
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (!slash)
		return "ktlsd";
	strcpy(slash + 1, "ktlsd");
	return path;
}

static const char *default_nginx(void)
{
	char out[256];
	char *argv[] = { "sh", "-c", "command -v nginx", NULL };
	static char path[256];

	if (run_cmd(argv, out, sizeof(out)) == 0 && out[0] == '/') {
		out[strcspn(out, "\n")] = '\0';
		snprintf(path, sizeof(path), "%s", out);
		return path;
	}
	return "/usr/sbin/nginx";
}

int main(int argc, char **argv)
{
	static struct bench B;
	struct bench *b = &B;
	const char *cmd = "all", *sizes = NULL;
	int seconds_set = 0, conns_set = 0, failed = 0;

	b->seconds = 5;
	b->conns = 8;
	b->tls = KTLS_TLS1_3;
	b->configs = 0x3e; /* 1..5 */
	if (!bench_nic_missing()[0])
		b->configs |= 1u << 6;
	b->server_cpu = 0;
	b->client_cpu = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 1 : -1;
	b->ktlsd = default_ktlsd();
	b->nginx = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (i == 1 && a[0] != '-') {
			if (strcmp(a, "serve") && strcmp(a, "handshake") && strcmp(a, "crypto") &&
			    strcmp(a, "all")) {
				fprintf(stderr, "ktls-bench: unknown command '%s'\n", a);
				usage(stderr);
				return 2;
			}
			cmd = a;
			continue;
		} else if (!strcmp(a, "--quick")) {
			b->quick = 1;
			takes = 0;
		} else if (!strcmp(a, "--rsa")) {
			b->rsa = 1;
			takes = 0;
		} else if (!v) {
			fprintf(stderr, "ktls-bench: %s needs a value\n", a);
			return 2;
		} else if (!strcmp(a, "--seconds")) {
			b->seconds = atof(v);
			seconds_set = 1;
			if (b->seconds <= 0 || b->seconds > 3600) {
				fprintf(stderr, "ktls-bench: --seconds %s: want 0 < S <= 3600\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--conns")) {
			b->conns = atoi(v);
			conns_set = 1;
			if (b->conns < 1 || b->conns > 1000) {
				fprintf(stderr, "ktls-bench: --conns %s: want 1..1000\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--sizes")) {
			sizes = v;
		} else if (!strcmp(a, "--configs")) {
			if (parse_list(b, v, 0) < 0) {
				fprintf(stderr, "ktls-bench: --configs %s: want numbers 1..6, e.g. 1,3,4\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--tls")) {
			if (!strcmp(v, "1.2"))
				b->tls = KTLS_TLS1_2;
			else if (!strcmp(v, "1.3"))
				b->tls = KTLS_TLS1_3;
			else {
				fprintf(stderr, "ktls-bench: --tls %s: want 1.2 or 1.3\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--server-cpu") || !strcmp(a, "--client-cpu")) {
			int c = atoi(v);

			if (c < -1 || c >= sysconf(_SC_NPROCESSORS_ONLN)) {
				fprintf(stderr, "ktls-bench: %s %s: no such CPU\n", a, v);
				return 2;
			}
			*(a[2] == 's' ? &b->server_cpu : &b->client_cpu) = c;
		} else if (!strcmp(a, "--cpu-hz")) {
			b->cpu_hz = atof(v);
			if (b->cpu_hz < 1e6) {
				fprintf(stderr, "ktls-bench: --cpu-hz %s: want Hz, e.g. 3.6e9\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--json")) {
			b->json_path = v;
		} else if (!strcmp(a, "--plot")) {
			b->plot_dir = v;
		} else if (!strcmp(a, "--workdir")) {
			b->workdir_keep = v;
		} else if (!strcmp(a, "--ktlsd")) {
			b->ktlsd = v;
		} else if (!strcmp(a, "--nginx")) {
			b->nginx = v;
		} else {
			fprintf(stderr, "ktls-bench: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
		i += takes;
	}
	if (b->quick) {
		if (!seconds_set)
			b->seconds = 1;
		if (!conns_set)
			b->conns = 2;
		if (!sizes)
			sizes = "16K,256K";
	}
	if (parse_list(b, sizes ? sizes : "16K,1M,64M,256M", 1) < 0) {
		fprintf(stderr, "ktls-bench: --sizes %s: want e.g. 16K,1M,64M\n", sizes);
		return 2;
	}
	if (!b->nginx)
		b->nginx = default_nginx();
	if (access(b->ktlsd, X_OK) < 0 && strcmp(cmd, "crypto")) {
		fprintf(stderr, "ktls-bench: ktlsd not found at %s (build it, or --ktlsd PATH)\n",
			b->ktlsd);
		return 2;
	}

	sysinfo_collect(b);
	if (b->emulated)
		fprintf(stderr, "ktls-bench: EMULATED guest (QEMU TCG): numbers check the machinery "
				"and are not performance figures\n");
	if (b->ktls_reason[0])
		fprintf(stderr, "ktls-bench: kTLS rows unavailable: %s\n", b->ktls_reason);
	if (b->workdir_keep) {
		if (mkdir(b->workdir_keep, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "ktls-bench: --workdir %s: %s\n", b->workdir_keep, strerror(errno));
			return 2;
		}
		snprintf(b->workdir, sizeof(b->workdir), "%s", b->workdir_keep);
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(b->workdir, sizeof(b->workdir), "%s/ktls-bench.XXXXXX", tmp ? tmp : "/tmp");
		if (!mkdtemp(b->workdir)) {
			fprintf(stderr, "ktls-bench: mkdtemp %s: %s\n", b->workdir, strerror(errno));
			return 2;
		}
	}
	if (b->workdir[0] != '/') { /* nginx resolves paths against its prefix */
		char abs[PATH_MAX];

		if (!realpath(b->workdir, abs) || strlen(abs) >= sizeof(b->workdir)) {
			fprintf(stderr, "ktls-bench: --workdir %s: cannot resolve\n", b->workdir);
			return 2;
		}
		snprintf(b->workdir, sizeof(b->workdir), "%s", abs);
	}
	chmod(b->workdir, 0755);
	if (certs_make(b, b->rsa, b->cert, b->key, sizeof(b->cert)) < 0)
		return 1;

	if ((!strcmp(cmd, "serve") || !strcmp(cmd, "all")) && bench_serve(b) < 0)
		failed = 1;
	if ((!strcmp(cmd, "handshake") || !strcmp(cmd, "all")) && bench_handshake(b) < 0)
		failed = 1;
	if ((!strcmp(cmd, "crypto") || !strcmp(cmd, "all")) && bench_crypto(b) < 0)
		failed = 1;

	/* with --json - stdout carries the JSON alone; the table moves to stderr */
	report_table(b, b->json_path && !strcmp(b->json_path, "-") ? stderr : stdout);
	fflush(stdout);
	if (b->json_path && report_json(b, b->json_path) < 0)
		failed = 1;
	if (b->plot_dir && report_plots(b, b->plot_dir) < 0)
		failed = 1;
	if (!b->workdir_keep)
		rm_rf(b->workdir);
	if (failed)
		fprintf(stderr, "ktls-bench: some rows FAILED (see above)\n");
	return failed;
}
