/*
 * sockets.c - `ktlsctl sockets`: every TCP socket with the tls ULP and who
 * encrypts each direction (sock_diag, see lib/src/netlink_diag.c).
 *
 *   ktlsctl sockets [--json] [FILTER...]
 *
 * FILTER terms (all must match): port=N (either end), sport=N, dport=N,
 * pid=N, conf=base|sw|hw|hw-record (either direction).
 *
 * Names agree with `ss -tni` ("tcp-ulp-tls version: 1.3 cipher: aes-gcm-256
 * rxconf: sw txconf: sw"), except that ss prints TLS_CONF_BASE as "none".
 *
 * JSON (stable; fields are only ever added):
 *   {"sockets": [SOCK...], "reason": str|null}   reason: why the list is empty
 *   SOCK = {"family": "inet"|"inet6", "local": "ADDR:PORT", "peer": "ADDR:PORT",
 *           "state": "ESTAB"..., "uid": int, "inode": int,
 *           "version": "1.2"|"1.3"|"-", "cipher": "aes-gcm-128"...|"-",
 *           "txconf": "base"|"sw"|"hw"|"hw-record"|"-", "rxconf": (same),
 *           "zc_ro_tx": bool, "rx_no_pad": bool,
 *           "pid": int|null, "process": str|null}
 * "-" means the kernel did not report the field (ULP set, no key installed,
 * or an unprivileged caller on a kernel that hides TLS info).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "commands.h"
#include "ktls_ctl.h"

struct filter {
	long port, sport, dport, pid;
	const char *conf;
};

static int parse_num(const char *s, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_filter(const char *t, struct filter *f)
{
	const char *eq = strchr(t, '=');
	if (!eq)
		return -1;
	size_t k = (size_t)(eq - t);
	const char *v = eq + 1;
	if (k == 4 && !strncmp(t, "port", 4))
		return parse_num(v, 65535, &f->port);
	if (k == 5 && !strncmp(t, "sport", 5))
		return parse_num(v, 65535, &f->sport);
	if (k == 5 && !strncmp(t, "dport", 5))
		return parse_num(v, 65535, &f->dport);
	if (k == 3 && !strncmp(t, "pid", 3))
		return parse_num(v, 1L << 30, &f->pid);
	if (k == 4 && !strncmp(t, "conf", 4) &&
	    (!strcmp(v, "base") || !strcmp(v, "sw") || !strcmp(v, "hw") ||
	     !strcmp(v, "hw-record"))) {
		f->conf = v;
		return 0;
	}
	return -1;
}

static int match(const struct ktls_sock *s, const struct filter *f)
{
	if (f->port >= 0 && s->lport != f->port && s->rport != f->port)
		return 0;
	if (f->sport >= 0 && s->lport != f->sport)
		return 0;
	if (f->dport >= 0 && s->rport != f->dport)
		return 0;
	if (f->pid >= 0 && s->pid != f->pid)
		return 0;
	if (f->conf && strcmp(ktls_sock_conf_name(s->txconf), f->conf) &&
	    strcmp(ktls_sock_conf_name(s->rxconf), f->conf))
		return 0;
	return 1;
}

static void add_str(json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, json_object_new_string(val));
}

static json_object *sock_json(const struct ktls_sock *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "family",
			       json_object_new_string(s->family == AF_INET6 ? "inet6" : "inet"));
	json_object_object_add(o, "local", json_object_new_string(s->local));
	json_object_object_add(o, "peer", json_object_new_string(s->peer));
	add_str(o, "state", ktls_tcp_state_name(s->state));
	json_object_object_add(o, "uid", json_object_new_int64(s->uid));
	json_object_object_add(o, "inode", json_object_new_uint64(s->inode));
	add_str(o, "version", ktls_sock_version_name(s->version));
	add_str(o, "cipher", ktls_sock_cipher_name(s->cipher));
	add_str(o, "txconf", ktls_sock_conf_name(s->txconf));
	add_str(o, "rxconf", ktls_sock_conf_name(s->rxconf));
	json_object_object_add(o, "zc_ro_tx", json_object_new_boolean(s->zc_ro_tx));
	json_object_object_add(o, "rx_no_pad", json_object_new_boolean(s->rx_no_pad));
	json_object_object_add(o, "pid", s->pid ? json_object_new_int(s->pid) : NULL);
	json_object_object_add(o, "process", s->pid ? json_object_new_string(s->comm) : NULL);
	return o;
}

static void print_table(const struct ktls_sock *v, size_t n)
{
	int lw = 5, pw = 4;
	for (size_t i = 0; i < n; i++) {
		if ((int)strlen(v[i].local) > lw)
			lw = (int)strlen(v[i].local);
		if ((int)strlen(v[i].peer) > pw)
			pw = (int)strlen(v[i].peer);
	}
	printf("%-*s  %-*s  %-10s  %-7s  %-17s  %-9s  %-9s  %-16s  %s\n", lw, "LOCAL", pw,
	       "PEER", "STATE", "VERSION", "CIPHER", "TXCONF", "RXCONF", "FLAGS", "PROCESS");
	for (size_t i = 0; i < n; i++) {
		const struct ktls_sock *s = &v[i];
		char flags[32], proc[64];
		snprintf(flags, sizeof(flags), "%s%s%s", s->zc_ro_tx ? "zc_ro_tx" : "",
			 s->zc_ro_tx && s->rx_no_pad ? "," : "", s->rx_no_pad ? "rx_no_pad" : "");
		if (!flags[0])
			strcpy(flags, "-");
		if (s->pid)
			snprintf(proc, sizeof(proc), "%d/%s", s->pid, s->comm);
		else
			strcpy(proc, "-");
		printf("%-*s  %-*s  %-10s  %-7s  %-17s  %-9s  %-9s  %-16s  %s\n", lw, s->local, pw,
		       s->peer, ktls_tcp_state_name(s->state), ktls_sock_version_name(s->version),
		       ktls_sock_cipher_name(s->cipher), ktls_sock_conf_name(s->txconf),
		       ktls_sock_conf_name(s->rxconf), flags, proc);
	}
}

int cmd_sockets(int argc, char **argv)
{
	struct filter f = { -1, -1, -1, -1, NULL };
	int json = 0;
	char why[256], err[512];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: ktlsctl sockets [--json] [port=N] [sport=N] [dport=N] "
			       "[pid=N] [conf=base|sw|hw|hw-record]\n");
			return 0;
		} else if (parse_filter(argv[i], &f) < 0) {
			fprintf(stderr, "ktlsctl sockets: bad filter '%s' (port=N, sport=N, "
					"dport=N, pid=N, conf=base|sw|hw|hw-record)\n",
				argv[i]);
			return 2;
		}
	}

	struct ktls_sock *v;
	size_t n;
	if (ktls_sock_list(&v, &n, why, sizeof(why), err, sizeof(err)) < 0) {
		fprintf(stderr, "ktlsctl sockets: %s\n", err);
		return 1;
	}
	ktls_sock_owners(v, n);
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (match(&v[i], &f))
			v[kept++] = v[i];
	if (n > 0 && kept == 0)
		snprintf(why, sizeof(why), "%zu socket%s with the tls ULP, none matches the filter",
			 n, n == 1 ? "" : "s");

	if (json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();
		for (size_t i = 0; i < kept; i++)
			json_object_array_add(arr, sock_json(&v[i]));
		json_object_object_add(o, "sockets", arr);
		json_object_object_add(o, "reason", kept ? NULL : json_object_new_string(why));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (kept == 0) {
		/* Nothing on stdout: scripts see an empty list; people see why. */
		fprintf(stderr, "%s\n", why);
	} else {
		print_table(v, kept);
	}
	ktls_sock_list_free(v);
	return 0;
}
