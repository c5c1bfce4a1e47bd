/*
 * stats.c - `ktlsctl stats`: the kernel's kTLS counters from
 * /proc/net/tls_stat, every one the running kernel prints (the set grows
 * with versions), optionally watched with per-interval deltas.
 *
 *   ktlsctl stats [--json] [--watch SECONDS [--count N]] [--file PATH]
 *
 * --watch prints the counters, then every SECONDS the counters with their
 * change since the previous sample; --count N stops after N intervals.
 * --file reads another copy of the file (tests, a saved snapshot).
 * A kernel without kTLS has no file: "kernel has no kTLS: /proc/net/tls_stat
 * absent" on stderr and exit status 1 (there are no counters to report,
 * which is different from counters that are all zero).
 *
 * JSON (stable; fields are only ever added):
 *   one-shot:  {"counters": {"TlsCurrTxSw": int, ...}}       kernel order
 *   --watch:   one object per line (JSON Lines), first sample has no deltas:
 *              {"sample": int, "interval_s": num, "counters": {...},
 *               "deltas": {"TlsCurrTxSw": int, ...}}   deltas may be negative
 *              for gauges (TlsCurr*)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "commands.h"
#include "ktls_ctl.h"

static long long delta_of(const struct ktls_stat_counter *prev, size_t pn,
			  const struct ktls_stat_counter *c)
{
	for (size_t i = 0; i < pn; i++)
		if (!strcmp(prev[i].name, c->name))
			return (long long)(c->value - prev[i].value);
	return (long long)c->value; /* a counter that appeared counts from 0 */
}

static void print_sample(const struct ktls_stat_counter *v, size_t n,
			 const struct ktls_stat_counter *prev, size_t pn, int json, long sample,
			 double interval)
{
	if (json) {
		json_object *o = json_object_new_object(), *c = json_object_new_object();
		if (interval > 0) {
			json_object_object_add(o, "sample", json_object_new_int64(sample));
			json_object_object_add(o, "interval_s", json_object_new_double(interval));
		}
		for (size_t i = 0; i < n; i++)
			json_object_object_add(c, v[i].name, json_object_new_uint64(v[i].value));
		json_object_object_add(o, "counters", c);
		if (prev) {
			json_object *d = json_object_new_object();
			for (size_t i = 0; i < n; i++)
				json_object_object_add(d, v[i].name,
						       json_object_new_int64(delta_of(prev, pn, &v[i])));
			json_object_object_add(o, "deltas", d);
		}
		int flags = interval > 0 ? JSON_C_TO_STRING_PLAIN
					 : JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED;
		puts(json_object_to_json_string_ext(o, flags | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		int w = 7; /* "COUNTER" */
		for (size_t i = 0; i < n; i++)
			if ((int)strlen(v[i].name) > w)
				w = (int)strlen(v[i].name);
		if (interval > 0)
			printf("%ssample %ld\n", sample ? "\n" : "", sample);
		if (prev)
			printf("%-*s  %20s  %12s\n", w, "COUNTER", "VALUE", "DELTA");
		else
			printf("%-*s  %20s\n", w, "COUNTER", "VALUE");
		for (size_t i = 0; i < n; i++) {
			if (prev)
				printf("%-*s  %20llu  %+12lld\n", w, v[i].name, v[i].value,
				       delta_of(prev, pn, &v[i]));
			else
				printf("%-*s  %20llu\n", w, v[i].name, v[i].value);
		}
	}
	fflush(stdout);
}

static int usage(void)
{
	fprintf(stderr, "usage: ktlsctl stats [--json] [--watch SECONDS [--count N]] "
			"[--file PATH]\n");
	return 2;
}

int cmd_stats(int argc, char **argv)
{
	const char *path = KTLS_STAT_PATH;
	int json = 0;
	double interval = 0;
	long count = -1;
	char err[256];

	for (int i = 1; i < argc; i++) {
		char *end;
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--watch") && i + 1 < argc) {
			interval = strtod(argv[++i], &end);
			if (*end || !(interval >= 0.01 && interval <= 86400)) {
				fprintf(stderr, "ktlsctl stats: --watch takes seconds (0.01..86400)\n");
				return usage();
			}
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = strtol(argv[++i], &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "ktlsctl stats: --count takes a positive number\n");
				return usage();
			}
		} else if (!strcmp(argv[i], "--file") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		} else {
			fprintf(stderr, "ktlsctl stats: unexpected argument '%s'\n", argv[i]);
			return usage();
		}
	}
	if (count > 0 && interval <= 0) {
		fprintf(stderr, "ktlsctl stats: --count needs --watch\n");
		return usage();
	}

	struct ktls_stat_counter *cur, *prev = NULL;
	size_t n, pn = 0;
	if (ktls_stat_read(path, &cur, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "ktlsctl stats: %s\n", err);
		return 1;
	}
	print_sample(cur, n, NULL, 0, json, 0, interval);
	if (interval <= 0) {
		ktls_stat_free(cur);
		return 0;
	}

	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long s = 1; count < 0 || s <= count; s++) {
		/* Absolute deadlines: intervals do not drift with our own work. */
		long long ns = next.tv_nsec + (long long)(interval * 1e9);
		next.tv_sec += (time_t)(ns / 1000000000LL);
		next.tv_nsec = (long)(ns % 1000000000LL);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		ktls_stat_free(prev);
		prev = cur;
		pn = n;
		if (ktls_stat_read(path, &cur, &n, err, sizeof(err)) < 0) {
			fprintf(stderr, "ktlsctl stats: %s\n", err);
			ktls_stat_free(prev);
			return 1;
		}
		print_sample(cur, n, prev, pn, json, s, interval);
	}
	ktls_stat_free(prev);
	ktls_stat_free(cur);
	return 0;
}
