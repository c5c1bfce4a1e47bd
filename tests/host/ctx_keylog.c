/*
 * ctx_keylog.c - SSLKEYLOGFILE: secrets go only to a file of ours that no
 * one else can read, never through a symlink; otherwise the context is
 * refused rather than logging somewhere unsafe (issue 12, finding 4).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"
#include "ktls.h"

static char dir[64];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ktls-keylog-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];

	unsetenv("SSLKEYLOGFILE");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(ctx_keylog, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 60);

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

/* A TLS 1.3 handshake over loopback between two fresh contexts. */
static void handshake(void)
{
	int fds[2], rc = 1, rs = 1;
	ktls_ctx *cctx = ct_client_ctx(), *sctx = ct_server_ctx("server-ec");
	ktls_conn *cli, *srv;
	long long deadline = ct_now_ms() + 10000;

	cr_assert(cctx && sctx);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	cli = ktls_conn_connect(cctx, fds[0], "localhost");
	srv = ktls_conn_accept(sctx, fds[1]);
	cr_assert(cli && srv);
	ct_set_nonblock(fds[0], 1);
	ct_set_nonblock(fds[1], 1);
	while (rc || rs) {
		struct pollfd pf[2] = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN } };

		if (rc)
			rc = ktls_conn_handshake(cli);
		if (rs)
			rs = ktls_conn_handshake(srv);
		cr_assert(rc != -1 && rs != -1, "%s / %s", ktls_conn_error(cli), ktls_conn_error(srv));
		cr_assert_lt(ct_now_ms(), deadline);
		if (rc || rs)
			poll(pf, 2, 100);
	}
	ktls_conn_free(cli);
	ktls_conn_free(srv);
	ktls_ctx_free(cctx);
	ktls_ctx_free(sctx);
	close(fds[0]);
	close(fds[1]);
}

Test(ctx_keylog, created_0600_and_written)
{
	char p[128], buf[8192];
	struct stat st;
	ssize_t n;
	int fd;

	path_in(p, sizeof(p), "keys.log");
	setenv("SSLKEYLOGFILE", p, 1);
	handshake();
	cr_assert_eq(stat(p, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	/* both ends of the handshake log: client and server traffic secrets, twice */
	cr_expect(strstr(buf, "CLIENT_TRAFFIC_SECRET_0 "), "%s", buf);
	cr_expect(strstr(buf, "SERVER_TRAFFIC_SECRET_0 "), "%s", buf);
}

Test(ctx_keylog, existing_private_file_appended)
{
	char p[128], buf[64];
	int fd;

	path_in(p, sizeof(p), "keys.log");
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "# mine\n", 7), 7);
	close(fd);
	setenv("SSLKEYLOGFILE", p, 1);
	handshake();
	fd = open(p, O_RDONLY);
	cr_assert_eq(read(fd, buf, 7), 7);
	close(fd);
	cr_expect_eq(memcmp(buf, "# mine\n", 7), 0, "appended, not truncated");
}

Test(ctx_keylog, symlink_refused)
{
	char p[128], target[128];
	struct stat st;
	ktls_ctx *ctx;

	path_in(target, sizeof(target), "elsewhere");
	path_in(p, sizeof(p), "keys.log");
	cr_assert_eq(symlink(target, p), 0);
	setenv("SSLKEYLOGFILE", p, 1);
	errno = 0;
	ctx = ktls_ctx_new(KTLS_SERVER);
	cr_expect_null(ctx, "a context logging through a symlink");
	cr_expect_eq(errno, ELOOP, "errno %d", errno);
	cr_expect_neq(stat(target, &st), 0, "the symlink's target was created");
	ktls_ctx_free(ctx);
}

Test(ctx_keylog, readable_by_others_refused)
{
	static const mode_t modes[] = { 0644, 0640, 0602, 0660 };
	char p[128];

	path_in(p, sizeof(p), "keys.log");
	setenv("SSLKEYLOGFILE", p, 1);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		ktls_ctx *ctx;
		int fd = open(p, O_WRONLY | O_CREAT, 0600);

		cr_assert_geq(fd, 0);
		close(fd);
		cr_assert_eq(chmod(p, modes[i]), 0);
		errno = 0;
		ctx = ktls_ctx_new(KTLS_CLIENT);
		cr_expect_null(ctx, "mode %o accepted", modes[i]);
		cr_expect_eq(errno, EPERM, "mode %o: errno %d", modes[i], errno);
		ktls_ctx_free(ctx);
	}
}

Test(ctx_keylog, not_a_regular_file_refused)
{
	ktls_ctx *ctx;

	setenv("SSLKEYLOGFILE", "/dev/null", 1);
	ctx = ktls_ctx_new(KTLS_CLIENT);
	cr_expect_null(ctx, "/dev/null accepted as a key log");
	ktls_ctx_free(ctx);
	unsetenv("SSLKEYLOGFILE");
	ctx = ktls_ctx_new(KTLS_CLIENT);
	cr_expect(ctx, "without SSLKEYLOGFILE: %s", strerror(errno));
	ktls_ctx_free(ctx);
}
