/*
 * agent_cli.c - `ktlsd agent` as a command: help and usage errors, the
 * documented refusals (no CAP_NET_ADMIN; a kernel without the handshake
 * family, which the host is; a broken or missing config file), and the
 * shipped example config and systemd unit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/agent.h"
#include "../common/testutil.h"
#include "netlink.h"

TestSuite(agent_cli, .timeout = 60);

/* Run ktlsd agent ARGS; stdout+stderr into out; the exit status. */
static int agent(const char *args, int drop_net_admin, char *out, size_t cap)
{
	int p[2], st;
	pid_t pid;
	size_t got = 0;
	ssize_t n;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char cmd[1024];
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		/*
		 * Out of the bounding set: exec cannot give it back, even to root.
		 * Without CAP_SETPCAP (not root) we never had CAP_NET_ADMIN anyway.
		 */
		if (drop_net_admin && prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) != 0 &&
		    ktls_have_net_admin())
			_exit(99);
		snprintf(cmd, sizeof(cmd), "exec %s agent %s", tu_build("ktlsd"), args);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (got < cap - 1 && (n = read(p[0], out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	st = tu_wait(pid, 20000);
	cr_assert(WIFEXITED(st), "agent did not exit: %s", out);
	return WEXITSTATUS(st);
}

Test(agent_cli, help_and_usage)
{
	char out[4096];

	cr_expect_eq(agent("--help", 0, out, sizeof(out)), 0);
	cr_expect(strstr(out, "usage: ktlsd agent [--config FILE] [--foreground]"), "%s", out);
	cr_expect_eq(agent("--bogus", 0, out, sizeof(out)), 2);
	cr_expect_eq(agent("--foreground extra", 0, out, sizeof(out)), 2);
	cr_expect(strstr(out, "unexpected argument 'extra'"), "%s", out);
}

Test(agent_cli, refuses_without_cap_net_admin)
{
	char out[4096];
	int rc = agent("--foreground", 1, out, sizeof(out));

	cr_assert_neq(rc, 99, "cannot drop CAP_NET_ADMIN here (no CAP_SETPCAP)");
	cr_expect_eq(rc, 1);
	cr_expect(strstr(out, "needs CAP_NET_ADMIN"), "%s", out);
}

Test(agent_cli, refuses_a_kernel_without_the_family)
{
	char out[4096], err[200];
	struct hs_family f;
	int kerr = 0, fd = hs_socket(err, sizeof(err)), have;

	cr_assert(fd >= 0, "%s", err);
	have = hs_resolve(fd, &f, &kerr, err, sizeof(err)) == 0;
	close(fd);
	if (have) {
		/* A host with net/handshake: the guest suite covers the service;
		 * here the probe must at least see DONE's policy. */
		fd = hs_socket(err, sizeof(err));
		cr_expect_eq(hs_probe_policy(fd, &f, err, sizeof(err)), 0, "%s", err);
		close(fd);
		return;
	}
	cr_assert_eq(kerr, ENOENT, "%s", err);
	cr_expect_eq(agent("--foreground", 0, out, sizeof(out)), 1);
	if (!ktls_have_net_admin()) {
		/* Checked first: an unprivileged run never reaches the family. */
		cr_expect(strstr(out, "needs CAP_NET_ADMIN"), "%s", out);
		return;
	}
	cr_expect(strstr(out, "kernel lacks the handshake netlink family"), "%s", out);
}

Test(agent_cli, config_file_errors)
{
	char out[4096], path[] = "/tmp/agent-cli-XXXXXX", args[256];
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert(write(fd, "# ok\nmax_handshakes = many\n", 27) == 27);
	close(fd);
	snprintf(args, sizeof(args), "--foreground --config %s", path);
	cr_expect_eq(agent(args, 0, out, sizeof(out)), 1);
	cr_expect(strstr(out, ":2: max_handshakes must be 1..4096"), "%s", out);
	unlink(path);
	cr_expect_eq(agent("--foreground --config /nonexistent/agent.conf", 0, out, sizeof(out)), 1);
	cr_expect(strstr(out, "/nonexistent/agent.conf: No such file or directory"), "%s", out);
}

static const char *root_file(const char *rel)
{
	static char p[512];
	/* Suites run from the project root (make check). */
	snprintf(p, sizeof(p), "%s", rel);
	return p;
}

Test(agent_cli, example_config_parses_and_documents_every_key)
{
	struct agent_conf c;
	char err[300], text[16384];
	FILE *f = fopen(root_file("daemon/agent.conf.example"), "r");
	size_t n;
	const char *keys[] = { "log_level", "handshake_timeout_ms", "max_handshakes", "keyrings",
			       "x509.truststore", "x509.crl", "x509.certificate",
			       "x509.private_key" };

	cr_assert(f, "daemon/agent.conf.example missing");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	agent_conf_defaults(&c);
	cr_assert_eq(agent_conf_parse(&c, text, "agent.conf.example", err, sizeof(err)), 0, "%s", err);
	agent_conf_free(&c);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_expect(strstr(text, keys[i]), "example does not mention %s", keys[i]);
}

Test(agent_cli, systemd_unit)
{
	char text[8192];
	FILE *f = fopen(root_file("daemon/ktlsd-agent.service"), "r");
	size_t n;

	cr_assert(f, "daemon/ktlsd-agent.service missing");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	cr_expect(strstr(text, "ExecStart=/usr/local/bin/ktlsd agent"), "%s", text);
	cr_expect(strstr(text, "ExecReload=/bin/kill -HUP $MAINPID"));
	cr_expect(strstr(text, "Conflicts=tlshd.service"));
	cr_expect(strstr(text, "CAP_NET_ADMIN"));
	cr_expect(strstr(text, "Before=remote-fs-pre.target"));
}
