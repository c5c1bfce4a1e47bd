/*
 * ctl_sockets.c - `ktlsctl sockets` in the rig's guest (kTLS kernel,
 * KTLS_TEST_EXPECT_KTLS=1; the rig must load inet_diag and tcp_diag).
 * kTLS loopback pairs are keyed with raw setsockopt (TCP_ULP, TLS_TX,
 * TLS_RX); each end must be listed with the state ss -tni prints for it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <linux/tls.h>

#include "../common/testutil.h"
#include "../common/raw_ktls.h"
#include "netlink.h"

static int local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	return ntohs(a.sin_port);
}

static const char *str(json_object *o, const char *k)
{
	json_object *v;
	cr_assert(json_object_object_get_ex(o, k, &v), "no %s", k);
	return json_object_get_string(v);
}

/* The JSON entry whose local address is 127.0.0.1:port, or NULL. */
static json_object *by_port(json_object *arr, int port)
{
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		if (!strcmp(str(s, "local"), want))
			return s;
	}
	return NULL;
}

/* From `ss -tni`: the tcp-ulp-tls words for the socket local -> peer. */
struct ssinfo {
	char version[16], cipher[32], rxconf[16], txconf[16];
};

static int ss_lookup(const char *ssout, const char *local, const char *peer, struct ssinfo *si)
{
	char *copy = strdup(ssout), *save = NULL, *line;
	int cur = 0, found = 0;

	memset(si, 0, sizeof(*si));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != ' ' && line[0] != '\t') {
			char st[32], l[80], p[80];
			unsigned rq, sq;
			cur = sscanf(line, "%31s %u %u %79s %79s", st, &rq, &sq, l, p) == 5 &&
			      !strcmp(l, local) && !strcmp(p, peer);
			continue;
		}
		char *t = strstr(line, "tcp-ulp-tls");
		if (!cur || !t)
			continue;
		const char *keys[] = { "version: ", "cipher: ", "rxconf: ", "txconf: " };
		char *dst[] = { si->version, si->cipher, si->rxconf, si->txconf };
		for (int k = 0; k < 4; k++) {
			char *v = strstr(t, keys[k]);
			if (v)
				sscanf(v + strlen(keys[k]), "%15s", dst[k]);
		}
		found = 1;
	}
	free(copy);
	return found;
}

Test(ctl_sockets, ktls_pairs_listed_as_ss_shows_them)
{
	static char out[65536], err[2048], ssout[65536];
	int a[2], b[2], u[2];

	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");
	raw_ktls_pair(a, TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256, 0);
	raw_ktls_pair(b, TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128, 0);
	raw_ktls_pair(u, 0, 0, 1);

	char args[64];
	snprintf(args, sizeof(args), "sockets --json pid=%d", (int)getpid());
	cr_assert_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	json_object *o = json_tokener_parse(out), *arr;
	cr_assert_not_null(o, "%s", out);
	cr_assert(json_object_object_get_ex(o, "sockets", &arr));
	cr_assert_eq(json_object_array_length(arr), 6, "%s", out);
	cr_assert_eq(tu_run("ss -tni", ssout, sizeof(ssout)), 0);

	char comm[64] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';

	struct {
		int fd;
		const char *version, *cipher, *conf;
	} want[] = {
		{ a[0], "1.3", "aes-gcm-256", "sw" }, { a[1], "1.3", "aes-gcm-256", "sw" },
		{ b[0], "1.2", "aes-gcm-128", "sw" }, { b[1], "1.2", "aes-gcm-128", "sw" },
		{ u[0], "-", "-", "base" },           { u[1], "-", "-", "base" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_object *s = by_port(arr, local_port(want[i].fd));
		cr_assert_not_null(s, "socket on port %d not listed:\n%s", local_port(want[i].fd), out);
		cr_expect_str_eq(str(s, "version"), want[i].version);
		cr_expect_str_eq(str(s, "cipher"), want[i].cipher);
		cr_expect_str_eq(str(s, "txconf"), want[i].conf);
		cr_expect_str_eq(str(s, "rxconf"), want[i].conf);
		cr_expect_str_eq(str(s, "state"), "ESTAB");
		cr_expect_str_eq(str(s, "process"), comm);
		json_object *pid;
		cr_assert(json_object_object_get_ex(s, "pid", &pid));
		cr_expect_eq(json_object_get_int(pid), (int)getpid());

		/* ss -tni on the same socket says the same thing. */
		struct ssinfo si;
		cr_assert(ss_lookup(ssout, str(s, "local"), str(s, "peer"), &si),
			  "ss -tni has no tcp-ulp-tls line for %s -> %s:\n%s", str(s, "local"),
			  str(s, "peer"), ssout);
		if (strcmp(want[i].conf, "base")) {
			cr_expect_str_eq(si.version, str(s, "version"));
			cr_expect_str_eq(si.cipher, str(s, "cipher"));
			cr_expect_str_eq(si.txconf, str(s, "txconf"));
			cr_expect_str_eq(si.rxconf, str(s, "rxconf"));
		} else {
			/* ss spells TLS_CONF_BASE "none" and omits the unset rest. */
			cr_expect_str_eq(si.txconf, "none");
			cr_expect_str_eq(si.rxconf, "none");
		}
	}
	json_object_put(o);

	/* The table has the same words in aligned columns. */
	snprintf(args, sizeof(args), "sockets pid=%d", (int)getpid());
	cr_assert_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_expect(!strncmp(out, "LOCAL", 5), "%s", out);
	char row[64];
	snprintf(row, sizeof(row), "127.0.0.1:%d", local_port(a[0]));
	char *r = strstr(out, row);
	cr_assert_not_null(r, "%s", out);
	cr_expect(strstr(r, "ESTAB") && strstr(r, "1.3") && strstr(r, "aes-gcm-256"), "%s", out);

	/* The exact lookup the library uses for ktls_conn_info(). */
	struct ktls_sock one;
	char e[256];
	cr_assert_eq(diag_query_fd(a[0], &one, e, sizeof(e)), 1, "%s", e);
	cr_expect_eq(one.version, TLS_1_3_VERSION);
	cr_expect_eq(one.cipher, TLS_CIPHER_AES_GCM_256);
	cr_expect_eq(one.txconf, TLS_CONF_SW);
	cr_expect_eq(one.rxconf, TLS_CONF_SW);
	cr_expect_eq(one.lport, local_port(a[0]));
	cr_assert_eq(diag_query_fd(u[1], &one, e, sizeof(e)), 1, "%s", e);
	cr_expect_eq(one.txconf, TLS_CONF_BASE);

	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
		close(u[i]);
	}
}

Test(ctl_sockets, filters_select_and_explain)
{
	static char out[16384], err[2048];
	int a[2];
	char args[96];

	cr_assert(tu_expect_ktls());
	raw_ktls_pair(a, TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, 0);
	int p = local_port(a[0]);

	snprintf(args, sizeof(args), "sockets --json sport=%d", p);
	cr_assert_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	json_object *o = json_tokener_parse(out), *arr;
	cr_assert(json_object_object_get_ex(o, "sockets", &arr));
	cr_expect_eq(json_object_array_length(arr), 1, "%s", out);
	json_object_put(o);

	snprintf(args, sizeof(args), "sockets port=%d", p);
	cr_assert_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	int rows = 0;
	for (char *s = out; (s = strstr(s, "aes-gcm-128")); s++)
		rows++;
	cr_expect_eq(rows, 2, "both ends: %s", out);

	snprintf(args, sizeof(args), "sockets port=%d conf=hw", p);
	cr_assert_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(out, "");
	cr_expect(strstr(err, "none matches the filter"), "%s", err);
	close(a[0]);
	close(a[1]);
}

/* ULP info is for CAP_NET_ADMIN: an unprivileged caller is told so. */
Test(ctl_sockets, unprivileged_view_is_explained)
{
	static char out[16384];
	int a[2];
	char cmd[512];

	cr_assert(tu_expect_ktls());
	raw_ktls_pair(a, TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256, 0);
	snprintf(cmd, sizeof(cmd),
		 "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
		 "--bounding-set=-all %s sockets --json port=%d 2>&1", tu_build("ktlsctl"),
		 local_port(a[0]));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0, "%s", out);
	json_object *o = json_tokener_parse(out), *arr, *why;
	cr_assert_not_null(o, "%s", out);
	cr_assert(json_object_object_get_ex(o, "sockets", &arr));
	if (json_object_array_length(arr) == 0) {
		cr_assert(json_object_object_get_ex(o, "reason", &why));
		cr_expect(strstr(json_object_get_string(why), "CAP_NET_ADMIN"), "%s", out);
	} else {
		/* Newer kernels show the ULP to everyone: then it must be right. */
		cr_expect_eq(json_object_array_length(arr), 2, "%s", out);
	}
	json_object_put(o);
	close(a[0]);
	close(a[1]);
}
