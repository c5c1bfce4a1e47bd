/*
 * sysinfo.c - what machine produced the numbers: kernel, CPU model, the
 * clock used to turn CPU seconds into cycles, tool versions, whether kTLS
 * works here (and why not), and whether this is the emulated QEMU guest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bench.h"

/* First line of `cmd args` output, trimmed; "" when it does not run. */
static void tool_version(char *const argv[], const char *prefix, char *out, size_t cap)
{
	char buf[512], *nl, *p;

	out[0] = '\0';
	if (run_cmd(argv, buf, sizeof(buf)) != 0)
		return;
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	p = prefix ? strstr(buf, prefix) : NULL;
	p = p ? p + strlen(prefix) : buf;
	{
		size_t l = strlen(p) < cap - 1 ? strlen(p) : cap - 1;

		memcpy(out, p, l);
		out[l] = '\0';
	}
}

/* "cpu MHz" and "model name" from /proc/cpuinfo. */
static double cpuinfo(char *model, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[512];
	double mhz = 0;

	snprintf(model, cap, "unknown");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');

		if (!v)
			continue;
		v += 2;
		v[strcspn(v, "\n")] = '\0';
		if (!strncmp(line, "model name", 10) && !strcmp(model, "unknown"))
			snprintf(model, cap, "%s", v);
		else if (!strncmp(line, "cpu MHz", 7) && mhz == 0)
			mhz = atof(v);
	}
	fclose(f);
	return mhz * 1e6;
}

#if defined(__x86_64__)
/*
 * The core clock, measured: a chain of dependent register-register adds
 * retires one per cycle on any x86 core since the P6, so adds per
 * thread-CPU-second is the clock the bench ran at (turbo included), which
 * "cpu MHz" (often the nominal or TSC rate in a VM) is not.  Register, not
 * immediate, operands: Golden Cove and later fold `add $imm` chains in the
 * renamer and would read 5x too fast.  Our machines have no PMU to ask.
 */
static double measured_hz(void)
{
	double best = 0;

	for (int t = 0; t < 5; t++) {
		unsigned long x = 0, y = 1, n = 2000000;
		double c0 = thread_cpu_s(), c1;

		for (unsigned long i = 0; i < n; i++)
			__asm__ volatile(".rept 100\n\tadd %1, %0\n\t.endr" : "+r"(x) : "r"(y));
		c1 = thread_cpu_s();
		if (c1 > c0 && (double)n * 100 / (c1 - c0) > best)
			best = (double)n * 100 / (c1 - c0);
	}
	return best;
}
#else
static double measured_hz(void)
{
	return 0;
}
#endif

void sysinfo_collect(struct bench *b)
{
	struct utsname u;
	double info_hz, meas_hz;
	char *ngv[] = { (char *)b->nginx, "-v", NULL };
	char *gpv[] = { "gnuplot", "--version", NULL };
	char host[64] = "";

	if (uname(&u) == 0)
		snprintf(b->kernel, sizeof(b->kernel), "%.20s %.64s %.20s", u.sysname, u.release, u.machine);
	info_hz = cpuinfo(b->cpu_model, sizeof(b->cpu_model));
	b->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (b->cpu_hz > 0) {
		snprintf(b->hz_source, sizeof(b->hz_source), "--cpu-hz (given)");
	} else if ((meas_hz = measured_hz()) > 0) {
		b->cpu_hz = meas_hz;
		snprintf(b->hz_source, sizeof(b->hz_source),
			 "measured: dependent-add loop, 1 add/cycle (/proc/cpuinfo says %.0f MHz)",
			 info_hz / 1e6);
	} else if (info_hz > 0) {
		b->cpu_hz = info_hz;
		snprintf(b->hz_source, sizeof(b->hz_source), "/proc/cpuinfo \"cpu MHz\"");
	} else {
		b->cpu_hz = 1e9;
		snprintf(b->hz_source, sizeof(b->hz_source), "unknown: assumed 1 GHz (use --cpu-hz)");
	}
	snprintf(b->openssl_ver, sizeof(b->openssl_ver), "%s", OpenSSL_version(OPENSSL_VERSION));
	tool_version(ngv, "nginx version: ", b->nginx_ver, sizeof(b->nginx_ver));
	tool_version(gpv, NULL, b->gnuplot_ver, sizeof(b->gnuplot_ver));
	snprintf(b->bench_ver, sizeof(b->bench_ver), "ktls-bench 0.1.0");

	gethostname(host, sizeof(host) - 1);
	b->emulated = getenv("KTLS_VM_RELEASE") != NULL || !strcmp(host, "ktls-vm");

	ktls_probe(&b->probe);
	b->ktls_reason[0] = '\0';
	if (!b->probe.ulp) {
		snprintf(b->ktls_reason, sizeof(b->ktls_reason), "no kTLS on this kernel: %s",
			 b->probe.ulp_reason);
	} else {
		int v = b->tls == KTLS_TLS1_3 ? 1 : 0;
		/* the suite the client asks for: AES-256-GCM in both versions */
		const struct ktls_probe_result *tx = &b->probe.cipher[v][KTLS_PROBE_AES_256_GCM][0];

		if (!tx->ok)
			snprintf(b->ktls_reason, sizeof(b->ktls_reason),
				 "kTLS TX for %s AES-256-GCM refused: %s",
				 v ? "TLS 1.3" : "TLS 1.2", strerror(tx->err));
	}
}
