/*
 * ctl_sockets.c - `ktlsctl sockets` on a kernel without kTLS (the host):
 * nothing on stdout, one line saying why, and the sock_diag dump really
 * covered our own TCP connection (checked through the raw capture).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>

#include "netlink.h"
#include "../common/testutil.h"

static int kernel_has_tls_ulp(void)
{
	char buf[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
		if (!strcmp(t, "tls"))
			return 1;
	return 0;
}

static const char *expected_reason(void)
{
	if (!kernel_has_tls_ulp())
		return "no socket uses the tls ULP: kernel has no kTLS (tcp_available_ulp lacks tls)";
	return "no socket uses the tls ULP";
}

Test(sockets_cli, host_without_ktls_is_empty_and_says_why)
{
	static char out[8192], err[1024];

	/* The reason is true: the tls ULP cannot be set here. */
	int fds[2];
	cr_assert_eq(tu_tcp_pair(fds), 0);
	if (!kernel_has_tls_ulp()) {
		int r = setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls"));
		cr_expect(r == -1 && errno == ENOENT, "TCP_ULP tls: %d %s", r, strerror(errno));
	}

	cr_assert_eq(tu_ktlsctl("sockets", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(out, "");
	char line[256];
	snprintf(line, sizeof(line), "%s\n", expected_reason());
	cr_expect_str_eq(err, line);

	cr_assert_eq(tu_ktlsctl("sockets --json", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	json_object *o = json_tokener_parse(out), *v;
	cr_assert_not_null(o, "%s", out);
	cr_assert(json_object_object_get_ex(o, "sockets", &v));
	cr_expect_eq(json_object_array_length(v), 0);
	cr_assert(json_object_object_get_ex(o, "reason", &v));
	cr_expect_str_eq(json_object_get_string(v), expected_reason());
	json_object_put(o);
	close(fds[0]);
	close(fds[1]);
}

Test(sockets_cli, the_dump_saw_our_connection_and_found_no_ulp)
{
	char dir[] = "/tmp/ktlsctl-cap-XXXXXX", path[300];
	static char out[8192], err[1024];
	int fds[2];
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(tu_tcp_pair(fds), 0);
	cr_assert_eq(getsockname(fds[0], (struct sockaddr *)&a, &al), 0);
	uint16_t port = ntohs(a.sin_port);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "KTLS_NL_CAPTURE=%s %s sockets --json 2>/dev/null", dir,
		 tu_build("ktlsctl"));
	cr_assert_eq(tu_run(cmd, out, sizeof(out)), 0);

	snprintf(path, sizeof(path), "%s/sock-diag.bin", dir);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "no capture written");
	static unsigned char buf[1 << 20];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	int seen = 0;
	for (size_t off = 0; off + NLMSG_HDRLEN <= len;) {
		const struct nlmsghdr *h = (const void *)(buf + off);
		const struct inet_diag_msg *m = NLMSG_DATA(h);
		struct ktls_sock s;
		cr_assert_eq(diag_parse(h, &s, err, sizeof(err)), 0, "%s", err);
		if (ntohs(m->id.idiag_sport) == port && m->idiag_family == AF_INET)
			seen = 1;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	cr_expect(seen, "our connection on port %u was not in the dump", port);
	unlink(path);
	rmdir(dir);
	close(fds[0]);
	close(fds[1]);
}

Test(sockets_cli, filters)
{
	static char out[4096], err[1024];

	cr_expect_eq(tu_ktlsctl("sockets port=443 conf=hw", out, sizeof(out), err, sizeof(err)), 0);
	cr_expect_str_eq(out, "");
	cr_expect_eq(tu_ktlsctl("sockets port=99999", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect(strstr(err, "bad filter 'port=99999'"), "%s", err);
	cr_expect_eq(tu_ktlsctl("sockets conf=fast", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect_eq(tu_ktlsctl("sockets bogus", out, sizeof(out), err, sizeof(err)), 2);
}

Test(sockets_cli, lookup_of_one_socket)
{
	int fds[2], p[2];
	struct ktls_sock s;
	char err[256];

	cr_assert_eq(tu_tcp_pair(fds), 0);
	/* Found, and carries no ULP (the host has no kTLS). */
	cr_expect_eq(diag_query_fd(fds[0], &s, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(diag_query_fd(fds[1], &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pipe(p), 0);
	cr_expect_eq(diag_query_fd(p[0], &s, err, sizeof(err)), -1);
	cr_expect(strstr(err, "socket"), "%s", err);
	int u = socket(AF_INET, SOCK_STREAM, 0);
	cr_expect_eq(diag_query_fd(u, &s, err, sizeof(err)), -1, "unconnected");
	close(u);
	close(p[0]);
	close(p[1]);
	close(fds[0]);
	close(fds[1]);
}
