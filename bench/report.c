/*
 * report.c - the aligned table, the JSON rows and the gnuplot charts.
 * Ratios are always against rows measured in this same run.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bench.h"

static const char *kind_name[] = { "serve", "handshake", "crypto", "ktls_install" };

static const struct row *find_serve(int config_no, size_t size)
{
	for (int i = 0; i < g_nrows; i++) {
		const struct row *r = &g_rows[i];

		if (r->kind == ROW_SERVE && r->config_no == config_no && r->size == size &&
		    !r->skipped[0] && !r->error[0] && r->cpb > 0)
			return r;
	}
	return NULL;
}

static void compute_ratios(void)
{
	for (int i = 0; i < g_nrows; i++) {
		struct row *r = &g_rows[i];
		const struct row *base, *ng;

		if (r->kind != ROW_SERVE || r->skipped[0] || r->error[0] || r->cpb <= 0)
			continue;
		base = find_serve(1, r->size);
		ng = find_serve(4, r->size);
		r->ratio_base = base ? r->cpb / base->cpb : 0;
		r->ratio_nginx = ng ? r->cpb / ng->cpb : 0;
	}
}

static int has_kind(int kind)
{
	for (int i = 0; i < g_nrows; i++)
		if (g_rows[i].kind == kind)
			return 1;
	return 0;
}

static void ratio(FILE *o, double v)
{
	if (v > 0)
		fprintf(o, " %8.2fx", v);
	else
		fprintf(o, " %9s", "-");
}

/* ---- goals (issues 6 and 11): judged here for the reader, never asserted ---- */

static const struct row *find_hs(const char *cfg_prefix, const char *cert, const char *ver)
{
	for (int i = 0; i < g_nrows; i++) {
		const struct row *r = &g_rows[i];

		if (r->kind == ROW_HANDSHAKE && !r->error[0] && r->hs_per_core_s > 0 &&
		    !strncmp(r->config, cfg_prefix, strlen(cfg_prefix)) && !strcmp(r->certkind, cert) &&
		    !strcmp(r->version, ver))
			return r;
	}
	return NULL;
}

static int goals_emulated;

/*
 * v against limit; at_most: the goal is v <= limit, else v >= limit.
 * Speed ratios are not judged in the emulated guest; counts (counted = 1)
 * are, since emulation cannot change them.
 */
static void goal_judge(FILE *o, const char *what, double v, double limit, int at_most, int have,
		       const char *why, int counted, const char *unit)
{
	fprintf(o, "  %-62s ", what);
	if (!have)
		fprintf(o, "n/a (%s)\n", why);
	else if (goals_emulated && !counted)
		fprintf(o, "%7.2f%s  not judged: emulated\n", v, unit);
	else
		fprintf(o, "%7.2f%s  %s (goal %s %.2f%s)\n", v, unit,
			(at_most ? v <= limit : v >= limit) ? "met" : "NOT met", at_most ? "<=" : ">=",
			limit, unit);
}

static void goal_line(FILE *o, const char *what, double v, double limit, int at_most, int have,
		      const char *why)
{
	goal_judge(o, what, v, limit, at_most, have, why, 0, "x");
}

static void report_goals(const struct bench *b, FILE *o)
{
	static const char *const certs[] = { "P-256", "RSA-2048" }, *const vers[] = { "TLSv1.2",
										     "TLSv1.3" };
	char sz[32], what[112];
	int any_ktls = 0;

	if (!has_kind(ROW_SERVE) && !has_kind(ROW_HANDSHAKE) && !has_kind(ROW_INSTALL))
		return;
	goals_emulated = b->emulated;
	fprintf(o, "\nGoals (issues 6 and 11; same-run ratios, informational%s):\n",
		b->emulated ? "; EMULATED: speed not judged, counts are" : "");
	for (int i = 0; i < b->nsizes; i++) {
		size_t size = b->sizes[i];
		const struct row *us = find_serve(3, size), *ng = find_serve(4, size);

		if (size > (64u << 20))
			continue;
		snprintf(what, sizeof(what), "%s: ktlsd userspace / nginx userspace TLS, cycles/byte",
			 size_name(size, sz, sizeof(sz)));
		goal_line(o, what, us && ng ? us->cpb / ng->cpb : 0, 0.95, 1, us && ng,
			  "row not measured");
	}
	for (int i = 0; i < b->nsizes; i++) {
		const struct row *us = find_serve(3, b->sizes[i]), *ng = find_serve(4, b->sizes[i]);

		snprintf(what, sizeof(what), "%s: syscalls per request, ktlsd userspace / nginx TLS",
			 size_name(b->sizes[i], sz, sizeof(sz)));
		goal_judge(o, what, us && ng && ng->sys_per_req > 0 ? us->sys_per_req / ng->sys_per_req
								 : 0,
			   1.0, 1, us && ng && us->sys_per_req >= 0 && ng->sys_per_req > 0,
			   "row not measured", 1, "x");
	}
	for (int i = 0; i < b->nsizes; i++)
		any_ktls |= find_serve(2, b->sizes[i]) != NULL;
	for (int i = 0; any_ktls && i < b->nsizes; i++) {
		size_t size = b->sizes[i];
		const struct row *plain = find_serve(1, size), *kt = find_serve(2, size),
				 *ng = find_serve(4, size), *ngk = find_serve(5, size);

		size_name(size, sz, sizeof(sz));
		snprintf(what, sizeof(what), "%s: ktlsd kTLS / plaintext nginx", sz);
		goal_line(o, what, kt && plain ? kt->cpb / plain->cpb : 0, 1.2, 1, kt && plain,
			  "row not measured");
		snprintf(what, sizeof(what), "%s: ktlsd kTLS / nginx userspace TLS", sz);
		goal_line(o, what, kt && ng ? kt->cpb / ng->cpb : 0, 0.45, 1, kt && ng,
			  "row not measured");
		snprintf(what, sizeof(what), "%s: ktlsd kTLS / nginx + kTLS", sz);
		goal_line(o, what, kt && ngk ? kt->cpb / ngk->cpb : 0, size <= 65536 ? 0.85 : 1.0, 1,
			  kt && ngk, "row not measured");
		snprintf(what, sizeof(what), "%s: ktlsd kTLS, body bytes copied via userspace per byte", sz);
		goal_judge(o, what, kt ? kt->copy_per_byte : 0, 0.001, 1, kt && kt->copy_per_byte >= 0,
			   "row not measured", 1, "");
		snprintf(what, sizeof(what), "%s: syscalls per request, ktlsd kTLS / nginx + kTLS", sz);
		goal_judge(o, what, kt && ngk && ngk->sys_per_req > 0 ? kt->sys_per_req / ngk->sys_per_req
								    : 0,
			   1.0, 1, kt && ngk && kt->sys_per_req >= 0 && ngk->sys_per_req > 0,
			   "row not measured", 1, "x");
	}
	if (!any_ktls && has_kind(ROW_SERVE))
		fprintf(o, "  %-62s n/a (%s)\n", "kTLS goals (cycles/byte and syscalls vs nginx+kTLS)",
			b->ktls_reason[0] ? "no kTLS on this kernel" : "ktlsd-ktls not measured");
	for (int c = 0; c < 2; c++)
		for (int v = 0; v < 2; v++) {
			const struct row *k = find_hs("ktlsd", certs[c], vers[v]),
					 *n = find_hs("nginx", certs[c], vers[v]);

			snprintf(what, sizeof(what), "handshakes/s per core, %s %s: ktlsd / nginx",
				 certs[c], vers[v]);
			goal_line(o, what, k && n ? k->hs_per_core_s / n->hs_per_core_s : 0, 1.1, 0,
				  k && n, "row not measured");
		}
	for (int i = 0; i < g_nrows; i++) {
		const struct row *r = &g_rows[i];

		if (r->kind != ROW_INSTALL || r->error[0])
			continue;
		if (b->ktls_reason[0]) {
			/* Where the kernel has no tls ULP, the verdict is kept (ktls.h). */
			snprintf(what, sizeof(what), "%s: an offload attempt without the tls ULP, us",
				 r->certkind);
			goal_judge(o, what, r->install_us, 1.0, 1, 1, "", 0, "");
			continue;
		}
		fprintf(o, "  %-62s %6.2f%%  ", "kTLS installation / server handshake CPU (P-256)",
			r->install_pct);
		if (b->emulated)
			fprintf(o, "not judged: emulated\n");
		else
			fprintf(o, "%s (goal < 5%%)\n", r->install_pct < 5 ? "met" : "NOT met");
		break;
	}
}

void report_table(const struct bench *b, FILE *o)
{
	char date[64], sz[32];
	time_t t = time(NULL);
	int shown_skip[8] = { 0 };

	compute_ratios();
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	fprintf(o, "ktls-bench  %s\n", date);
	fprintf(o, "kernel      %s\n", b->kernel);
	fprintf(o, "cpu         %s, %d online; clock %.2f GHz (%s)\n", b->cpu_model, b->ncpu,
		b->cpu_hz / 1e9, b->hz_source);
	fprintf(o, "tools       %s; nginx %s; %s\n", b->openssl_ver,
		b->nginx_ver[0] ? b->nginx_ver : "(not found)", b->bench_ver);
	fprintf(o, "pinning     server CPU %d, client CPU %d (-1: not pinned)\n", b->server_cpu,
		b->client_cpu);
	fprintf(o, "kTLS        %s\n", b->ktls_reason[0] ? b->ktls_reason : "available");
	if (b->emulated)
		fprintf(o, "\n*** EMULATED: this ran in the QEMU (TCG) guest of tests/vm. These numbers\n"
			   "*** check the machinery only; they are NOT performance figures.\n");

	if (has_kind(ROW_SERVE)) {
		fprintf(o, "\nServe: %d keep-alive connections, %.1f s per row, %s certificate; "
			   "cycles/byte = server CPU s x clock / bytes\n",
			b->conns, b->seconds, b->rsa ? "RSA-2048" : "ECDSA P-256");
		fprintf(o, "%-2s %-12s %-9s %-8s %-29s %7s %9s %8s %8s %9s %7s %9s %9s %8s %7s %7s\n",
			"#", "config", "size", "TLS", "cipher", "GB/s", "req/s", "p50 ms", "p99 ms",
			"srv CPU s", "cyc/B", "x plain", "x ngx-tls", "sys/conn", "sys/req", "copy/B");
		for (int i = 0; i < g_nrows; i++) {
			const struct row *r = &g_rows[i];

			if (r->kind != ROW_SERVE)
				continue;
			if (r->skipped[0]) {
				if (!shown_skip[r->config_no & 7]++)
					fprintf(o, "%-2d %-12s skipped (all sizes): %s\n", r->config_no,
						r->config, r->skipped);
				continue;
			}
			fprintf(o, "%-2d %-12s %-9s ", r->config_no, r->config,
				size_name(r->size, sz, sizeof(sz)));
			if (r->error[0]) {
				fprintf(o, "FAILED: %s\n", r->error);
				continue;
			}
			fprintf(o, "%-8s %-29s %7.3f %9.1f %8.2f %8.2f %9.2f %7.2f", r->version,
				r->cipher, r->gbps, r->rps, r->p50_ms, r->p99_ms, r->server_cpu_s,
				r->cpb);
			ratio(o, r->ratio_base);
			ratio(o, r->ratio_nginx);
			fprintf(o, " %8.1f %7.1f", r->sys_per_conn, r->sys_per_req);
			if (r->copy_per_byte >= 0)
				fprintf(o, " %7.3f\n", r->copy_per_byte);
			else
				fprintf(o, " %7s\n", "-");
		}
		for (int i = 0; i < g_nrows; i++)
			if (g_rows[i].kind == ROW_SERVE && g_rows[i].note[0] && !g_rows[i].skipped[0]) {
				fprintf(o, "note: %d %s: %s\n", g_rows[i].config_no, g_rows[i].config,
					g_rows[i].note);
				break;
			}
	}
	if (has_kind(ROW_HANDSHAKE)) {
		fprintf(o, "\nHandshakes: full (no resumption), new connection + 1 KiB GET each; "
			   "per core = handshakes / server CPU s\n");
		fprintf(o, "%-11s %-9s %-8s %-29s %5s %9s %9s %12s %9s %8s\n", "server", "cert",
			"TLS", "cipher", "conns", "hs/s", "srv CPU s", "hs/s/core", "us/hs", "p50 ms");
		for (int i = 0; i < g_nrows; i++) {
			const struct row *r = &g_rows[i];

			if (r->kind != ROW_HANDSHAKE)
				continue;
			fprintf(o, "%-11s %-9s ", r->config, r->certkind);
			if (r->error[0]) {
				fprintf(o, "FAILED: %s\n", r->error);
				continue;
			}
			fprintf(o, "%-8s %-29s %5d %9.0f %9.2f %12.0f %9.0f %8.2f\n", r->version,
				r->cipher, r->conns, r->hs_per_s, r->server_cpu_s, r->hs_per_core_s,
				r->us_per_hs, r->p50_ms);
		}
		for (int i = 0; i < g_nrows; i++)
			if (g_rows[i].kind == ROW_HANDSHAKE && g_rows[i].note[0]) {
				fprintf(o, "note: %s\n", g_rows[i].note);
				break;
			}
	}
	for (int i = 0; i < g_nrows; i++) {
		const struct row *r = &g_rows[i];

		if (r->kind != ROW_INSTALL)
			continue;
		if (r->error[0]) {
			fprintf(o, "kTLS installation (%s): FAILED: %s\n", r->certkind, r->error);
			continue;
		}
		fprintf(o, "kTLS installation, %s, TLS 1.3: ktls_conn_offload %.1f us median of %llu "
			   "= %.2f%% of the server's handshake CPU (%.0f us)%s%s%s\n",
			r->certkind, r->install_us, (unsigned long long)r->handshakes, r->install_pct,
			r->us_per_hs, r->mode[0] ? "; " : "", r->mode,
			b->ktls_reason[0] ? " (no kTLS here: this times the failed attempt and fallback)"
					  : "");
	}
	if (has_kind(ROW_CRYPTO)) {
		fprintf(o, "\nCrypto: 16 KiB records, one core; kTLS rows = loopback sender with TLS 1.3 "
			   "TX keys (CPU incl. TCP)\n");
		fprintf(o, "%-12s %-18s %8s %8s  %s\n", "engine", "cipher", "GB/s", "cyc/B", "note");
		for (int i = 0; i < g_nrows; i++) {
			const struct row *r = &g_rows[i];

			if (r->kind != ROW_CRYPTO)
				continue;
			fprintf(o, "%-12s %-18s ", r->config, r->cipher);
			if (r->skipped[0])
				fprintf(o, "skipped: %s\n", r->skipped);
			else if (r->error[0])
				fprintf(o, "FAILED: %s\n", r->error);
			else
				fprintf(o, "%8.2f %8.2f  %s\n", r->gbps, r->cpb, r->note);
		}
	}
	report_goals(b, o);
	if (b->emulated)
		fprintf(o, "\n*** EMULATED (QEMU TCG): not performance figures.\n");
}

/* ---- JSON --------------------------------------------------------------- */

static void add_num(json_object *o, const char *k, double v)
{
	json_object_object_add(o, k, json_object_new_double(v));
}

static void add_int(json_object *o, const char *k, long long v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v && v[0] ? json_object_new_string(v) : NULL);
}

int report_json(const struct bench *b, const char *path)
{
	json_object *arr = json_object_new_array();
	const char *txt;
	FILE *f;
	int rc = 0;

	compute_ratios();
	for (int i = 0; i < g_nrows; i++) {
		const struct row *r = &g_rows[i];
		json_object *o = json_object_new_object(), *tools = json_object_new_object();
		int measured = !r->skipped[0] && !r->error[0];

		add_str(o, "kind", kind_name[r->kind]);
		add_str(o, "configuration", r->config);
		if (r->kind == ROW_SERVE)
			add_int(o, "config_no", r->config_no);
		json_object_object_add(o, "measured", json_object_new_boolean(measured));
		add_str(o, "skipped", r->skipped);
		add_str(o, "error", r->error);
		add_str(o, "note", r->note);
		add_str(o, "tls_version", r->version);
		add_str(o, "cipher", r->cipher);
		add_str(o, "certificate", r->certkind);
		add_int(o, "file_size", (long long)r->size);
		add_int(o, "conns", r->conns);
		add_int(o, "bytes", (long long)r->bytes);
		add_int(o, "server_bytes", (long long)r->server_bytes);
		add_int(o, "requests", (long long)r->requests);
		add_num(o, "seconds", r->seconds);
		add_num(o, "gb_per_s", r->gbps);
		add_num(o, "server_cpu_s", r->server_cpu_s);
		add_num(o, "cycles_per_byte", r->cpb);
		add_num(o, "req_per_s", r->rps);
		add_num(o, "p50_ms", r->p50_ms);
		add_num(o, "p99_ms", r->p99_ms);
		add_int(o, "ktls_tx_installs", r->ktls_tx);
		if (r->kind == ROW_SERVE) {
			add_num(o, "ratio_vs_plain", r->ratio_base);
			add_num(o, "ratio_vs_nginx_tls", r->ratio_nginx);
			add_num(o, "syscalls_per_connection", r->sys_per_conn);
			add_num(o, "syscalls_per_request", r->sys_per_req);
			add_int(o, "syscall_count_requests", (long long)r->count_requests);
			add_num(o, "userspace_copy_bytes_per_byte", r->copy_per_byte);
		}
		if (r->kind == ROW_CRYPTO)
			add_num(o, "ratio_vs_tcp", r->ratio_base);
		if (r->kind == ROW_HANDSHAKE || r->kind == ROW_INSTALL) {
			add_int(o, "handshakes", (long long)r->handshakes);
			add_num(o, "handshakes_per_s", r->hs_per_s);
			add_num(o, "handshakes_per_core_s", r->hs_per_core_s);
			add_num(o, "server_us_per_handshake", r->us_per_hs);
		}
		if (r->kind == ROW_INSTALL) {
			add_num(o, "install_us", r->install_us);
			add_num(o, "install_pct_of_handshake", r->install_pct);
			add_str(o, "install_mode", r->mode);
		}
		add_str(o, "kernel", b->kernel);
		add_str(o, "cpu_model", b->cpu_model);
		add_num(o, "cpu_hz", b->cpu_hz);
		add_str(o, "cpu_hz_source", b->hz_source);
		json_object_object_add(o, "emulated", json_object_new_boolean(b->emulated));
		add_int(o, "server_cpu", b->server_cpu);
		add_int(o, "client_cpu", b->client_cpu);
		add_str(tools, "openssl", b->openssl_ver);
		add_str(tools, "nginx", b->nginx_ver);
		add_str(tools, "gnuplot", b->gnuplot_ver);
		add_str(tools, "ktls-bench", b->bench_ver);
		json_object_object_add(o, "tool_versions", tools);
		json_object_array_add(arr, o);
	}
	txt = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	f = strcmp(path, "-") ? fopen(path, "we") : stdout;
	if (!f) {
		fprintf(stderr, "ktls-bench: --json %s: %s\n", path, strerror(errno));
		rc = -1;
	} else {
		fprintf(f, "%s\n", txt);
		if (f != stdout && fclose(f) != 0)
			rc = -1;
	}
	json_object_put(arr);
	return rc;
}

/* ---- gnuplot -------------------------------------------------------------- */

static int run_gnuplot(const char *dir, const char *name, const char *title, const char *ylabel,
		       const char *xlabel, const char *data, int ncols, const char *term)
{
	char dpath[400], spath[400], png[400], script[4096], out[1024];
	char *argv[] = { "gnuplot", spath, NULL };
	int n, rc;
	struct stat st;

	snprintf(dpath, sizeof(dpath), "%s/%s.dat", dir, name);
	snprintf(spath, sizeof(spath), "%s/%s.gp", dir, name);
	snprintf(png, sizeof(png), "%s/%s.png", dir, name);
	if (write_text(dpath, data) < 0)
		return -1;
	n = snprintf(script, sizeof(script),
		     "set terminal %s size 1000,560\n"
		     "set output '%s'\n"
		     "set title \"%s\" noenhanced\n"
		     "set ylabel '%s'\nset xlabel '%s'\n"
		     "set style data histogram\nset style histogram cluster gap 1\n"
		     "set style fill solid 0.8 border -1\nset boxwidth 0.9\n"
		     "set datafile missing '-'\nset key outside right top noenhanced\n"
		     "set yrange [0:*]\nset grid ytics\n"
		     "plot '%s' using 2:xtic(1) title columnheader(2)",
		     term, png, title, ylabel, xlabel, dpath);
	for (int c = 3; c <= ncols + 1 && n < (int)sizeof(script) - 64; c++)
		n += snprintf(script + n, sizeof(script) - (size_t)n,
			      ", '' using %d title columnheader(%d)", c, c);
	snprintf(script + n, sizeof(script) - (size_t)n, "\n");
	if (write_text(spath, script) < 0)
		return -1;
	unlink(png);
	rc = run_cmd(argv, out, sizeof(out));
	if (rc != 0 || stat(png, &st) < 0 || st.st_size == 0) {
		fprintf(stderr, "ktls-bench: gnuplot %s (%s) failed (%d): %s\n", name, term, rc, out);
		return -1;
	}
	return 0;
}

/* Rows of `label v1 v2 ...` with '-' where a configuration has no number. */
static int serve_plot(const struct bench *b, const char *dir, int gbps, const char *term)
{
	static const char *names[6] = { "", "nginx-plain", "ktlsd-ktls", "ktlsd-user", "nginx-tls",
					 "nginx-ktls" };
	char data[8192], sz[32], title[256];
	int n = 0, cols[6], ncols = 0;

	for (int c = 1; c <= 5; c++) {
		int any = 0;

		for (int i = 0; i < b->nsizes; i++)
			any |= find_serve(c, b->sizes[i]) != NULL;
		if (any)
			cols[ncols++] = c;
	}
	if (!ncols)
		return 0;
	n += snprintf(data + n, sizeof(data) - (size_t)n, "size");
	for (int k = 0; k < ncols; k++)
		n += snprintf(data + n, sizeof(data) - (size_t)n, " \"%d %s\"", cols[k], names[cols[k]]);
	n += snprintf(data + n, sizeof(data) - (size_t)n, "\n");
	for (int i = 0; i < b->nsizes && n < (int)sizeof(data) - 256; i++) {
		n += snprintf(data + n, sizeof(data) - (size_t)n, "\"%s\"",
			      size_name(b->sizes[i], sz, sizeof(sz)));
		for (int k = 0; k < ncols; k++) {
			const struct row *r = find_serve(cols[k], b->sizes[i]);

			if (r)
				n += snprintf(data + n, sizeof(data) - (size_t)n, " %.4f",
					      gbps ? r->gbps : r->cpb);
			else
				n += snprintf(data + n, sizeof(data) - (size_t)n, " -");
		}
		n += snprintf(data + n, sizeof(data) - (size_t)n, "\n");
	}
	snprintf(title, sizeof(title), "%s by configuration and file size (%d conns; %s)%s",
		 gbps ? "Throughput" : "Server CPU cycles per byte served", b->conns, b->kernel,
		 b->emulated ? " - EMULATED, not performance figures" : "");
	return run_gnuplot(dir, gbps ? "throughput" : "cycles_per_byte", title,
			   gbps ? "GB/s" : "server cycles / byte", "file size", data, ncols, term);
}

static int hs_plot(const struct bench *b, const char *dir, const char *term)
{
	char data[4096], title[256];
	int n = 0, any = 0;

	n += snprintf(data, sizeof(data), "case ktlsd nginx\n");
	for (int rsa = 0; rsa < 2; rsa++)
		for (int v = 2; v <= 3; v++) {
			const char *ck = rsa ? "RSA-2048" : "P-256";
			char ver[16];
			double val[2] = { -1, -1 };

			snprintf(ver, sizeof(ver), "TLSv1.%d", v);
			for (int i = 0; i < g_nrows; i++) {
				const struct row *r = &g_rows[i];

				if (r->kind != ROW_HANDSHAKE || r->error[0] || strcmp(r->certkind, ck) ||
				    strcmp(r->version, ver))
					continue;
				val[strncmp(r->config, "ktlsd", 5) ? 1 : 0] = r->hs_per_core_s;
				any = 1;
			}
			n += snprintf(data + n, sizeof(data) - (size_t)n, "\"%s %s\"", ck, ver);
			for (int k = 0; k < 2; k++)
				n += val[k] >= 0 ? snprintf(data + n, sizeof(data) - (size_t)n, " %.1f", val[k])
						 : snprintf(data + n, sizeof(data) - (size_t)n, " -");
			n += snprintf(data + n, sizeof(data) - (size_t)n, "\n");
		}
	if (!any)
		return 0;
	snprintf(title, sizeof(title), "Full TLS handshakes per second per server core (%s)%s",
		 b->kernel, b->emulated ? " - EMULATED, not performance figures" : "");
	return run_gnuplot(dir, "handshakes", title, "handshakes / s / core", "certificate, version",
			   data, 2, term);
}

int report_plots(const struct bench *b, const char *dir)
{
	const char *term = "pngcairo";
	char out[256];
	char *probe[] = { "gnuplot", "-e", "set terminal pngcairo", NULL };

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "ktls-bench: --plot %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (run_cmd(probe, out, sizeof(out)) != 0 || strstr(out, "unknown"))
		term = "png"; /* libgd terminal of builds without cairo */
	compute_ratios();
	if (serve_plot(b, dir, 0, term) < 0 || serve_plot(b, dir, 1, term) < 0 ||
	    hs_plot(b, dir, term) < 0)
		return -1;
	return 0;
}
