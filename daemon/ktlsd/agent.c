/*
 * agent.c - `ktlsd agent [--config FILE] [--foreground]`: the event loop.
 *
 * Start-up refuses, with the reason, when: we lack CAP_NET_ADMIN (the
 * kernel's ACCEPT is admin-only); the kernel has no "handshake" family
 * (Linux < 6.5, or CONFIG_NET_HANDSHAKE off: Debian 12's 6.1); another
 * socket already listens on group "tlshd" (tlshd or a second agent: the
 * kernel gives each request to whoever ACCEPTs first, so two agents
 * would split requests between two policies).
 *
 * Loop: one multicast socket on "tlshd" and a signalfd.  Each READY forks
 * a child that ACCEPTs and finishes one request (agent_hs.c says why a
 * process).  At most max_handshakes children run; READYs beyond that wait
 * in a counter until a child exits.  SIGHUP re-reads the configuration
 * (a broken file keeps the old one); SIGTERM/SIGINT stop taking requests,
 * children finish theirs.  A lost notification (ENOBUFS) starts one child
 * anyway: ACCEPT answers EAGAIN when nothing is pending.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "ktls_ctl.h"

#include "agent.h"
#include "clock.h"
#include "keylog.h"
#include "log.h"
#include "notify.h"

int agent_log_level = AGENT_LOG_INFO;
static int use_syslog;

void agent_log(int level, const char *fmt, ...)
{
	char buf[900];
	va_list ap;

	if (level > agent_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (use_syslog)
		syslog(level == AGENT_LOG_ERROR ? LOG_ERR : level == AGENT_LOG_INFO ? LOG_INFO
										 : LOG_DEBUG,
		       "%s", buf);
	else
		log_msg("agent: %s", buf);
}

static void usage(FILE *f)
{
	fputs("usage: ktlsd agent [--config FILE] [--foreground] [--keylog]\n"
	      "  The kernel's TLS handshake service (replaces tlshd): answers the\n"
	      "  \"handshake\" netlink family's requests from NVMe/TCP and NFS.\n"
	      "  --config FILE   key = value settings (see agent.conf.example)\n"
	      "  --foreground    log to stderr (default: syslog, as a service)\n"
	      "  --keylog        honour SSLKEYLOGFILE (refused without it; debugging only)\n"
	      "  Needs CAP_NET_ADMIN.  SIGHUP re-reads FILE.\n",
	      f);
}

static int load_conf(struct agent *ag, struct agent_conf *out)
{
	char err[300];

	agent_conf_defaults(out);
	if (!ag->config_path)
		return 0;
	if (agent_conf_load(out, ag->config_path, err, sizeof(err))) {
		agent_log(AGENT_LOG_ERROR, "config: %s", err);
		agent_conf_free(out);
		return -1;
	}
	return 0;
}

static void spawn(struct agent *ag)
{
	pid_t pid;

	if (ag->children >= ag->conf.max_handshakes) {
		ag->waiting++;
		return;
	}
	pid = fork();
	if (pid < 0) {
		agent_log(AGENT_LOG_ERROR, "fork: %s (request left to the kernel's timeout)",
			  strerror(errno));
		return;
	}
	if (pid == 0) {
		sigset_t all;
		int rc;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGHUP, SIG_DFL);
		close(ag->mc);
		close(ag->sfd);
		rc = agent_handle_one(&ag->conf, &ag->fam);
		_exit(rc);
	}
	ag->children++;
}

void agent_reap(struct agent *ag)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (ag->children)
			ag->children--;
		if (WIFSIGNALED(st))
			agent_log(AGENT_LOG_ERROR, "request process %d died of signal %d", (int)pid,
				  WTERMSIG(st));
	}
	while (ag->waiting && ag->children < ag->conf.max_handshakes && !ag->stopping) {
		ag->waiting--;
		spawn(ag);
	}
}

void agent_on_netlink(struct agent *ag)
{
	unsigned char buf[8192];
	char err[200];

	for (;;) {
		ssize_t n = recv(ag->mc, buf, sizeof(buf), MSG_DONTWAIT);
		size_t off = 0;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ENOBUFS) {
				agent_log(AGENT_LOG_ERROR, "notifications lost (ENOBUFS): "
					  "trying one ACCEPT");
				spawn(ag);
				continue;
			}
			agent_log(AGENT_LOG_ERROR, "netlink receive: %s", strerror(errno));
			return;
		}
		while (off < (size_t)n) {
			const struct nlmsghdr *nlh = (const void *)(buf + off);
			size_t left = (size_t)n - off;
			uint32_t cls = 0;

			if (left < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN ||
			    nlh->nlmsg_len > left) {
				agent_log(AGENT_LOG_ERROR, "dropping a malformed notification "
					  "(%zu bytes)", left);
				break;
			}
			off += NLMSG_ALIGN(nlh->nlmsg_len);
			hs_capture("ready", nlh, nlh->nlmsg_len);
			if (hs_parse_ready(nlh, nlh->nlmsg_len, ag->fam.id, &cls, err, sizeof(err))) {
				agent_log(AGENT_LOG_ERROR, "ignoring notification: %s", err);
				continue;
			}
			if (cls != HS_CLASS_TLSHD) {
				agent_log(AGENT_LOG_DEBUG, "READY for handler class %u: not ours", cls);
				continue;
			}
			if (!ag->stopping)
				spawn(ag);
		}
	}
}

static int on_signal(struct agent *ag)
{
	struct signalfd_siginfo si;

	while (read(ag->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			agent_reap(ag);
			break;
		case SIGHUP: {
			struct agent_conf fresh;

			notify_reloading();
			if (load_conf(ag, &fresh) == 0) {
				agent_prebuild_free();
				agent_conf_free(&ag->conf);
				ag->conf = fresh;
				agent_log_level = ag->conf.log_level;
				agent_log(AGENT_LOG_INFO, "configuration reloaded%s%s",
					  ag->config_path ? " from " : "",
					  ag->config_path ? ag->config_path : "");
				agent_prebuild(&ag->conf);
			} else {
				agent_log(AGENT_LOG_ERROR, "reload failed: keeping the previous "
					  "configuration");
			}
			notify_ready("answering handshake requests (reloaded)");
			break;
		}
		default:
			ag->stopping = 1;
			return 1;
		}
	}
	return 0;
}

/* Join "tlshd" on a fresh socket; its portid through *portid. */
static int join(struct agent *ag, uint32_t *portid, char *err, size_t errlen)
{
	struct sockaddr_nl sa;
	socklen_t sl = sizeof(sa);
	int fd = hs_socket(err, errlen);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &ag->fam.group,
		       sizeof(ag->fam.group)) != 0) {
		snprintf(err, errlen, "joining group \"%s\": %s", HS_GROUP_NAME, strerror(errno));
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*portid = sa.nl_pid;
	return fd;
}

int ktlsd_agent_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "keylog", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent ag;
	char err[300], who[128], ignored[200];
	int o, kerr = 0, fd, taken, rc = 0, keylog = 0, wd_ms;
	uint64_t last_ping = 0;
	uint32_t portid = 0;
	sigset_t mask;

	memset(&ag, 0, sizeof(ag));
	ag.mc = ag.sfd = -1;
	optind = 0; /* argv starts at the first option */
	while ((o = getopt_long(argc + 1, argv - 1, "c:fh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': ag.config_path = optarg; break;
		case 'f': break;
		case 'k': keylog = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc + 1) {
		fprintf(stderr, "ktlsd agent: unexpected argument '%s'\n", argv[optind - 1]);
		return 2;
	}
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f"))
			goto fg;
	use_syslog = 1;
	openlog("ktlsd-agent", LOG_PID, LOG_DAEMON);
fg:
	{
		char warn[300];

		if (keylog_gate(keylog, warn, sizeof(warn), err, sizeof(err)) < 0) {
			fprintf(stderr, "ktlsd agent: %s\n", err);
			return 2;
		}
		if (warn[0])
			agent_log(AGENT_LOG_ERROR, "%s", warn);
	}
	if (load_conf(&ag, &ag.conf)) {
		fprintf(stderr, "ktlsd agent: bad configuration (see the log line above)\n");
		return 1;
	}
	agent_log_level = ag.conf.log_level;
	if (!ktls_have_net_admin()) {
		fprintf(stderr, "ktlsd agent: needs CAP_NET_ADMIN: the kernel accepts handshake "
			"requests only from privileged processes (run as root or grant the "
			"capability)\n");
		return 1;
	}
	fd = hs_socket(err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "ktlsd agent: %s\n", err);
		return 1;
	}
	if (hs_resolve(fd, &ag.fam, &kerr, err, sizeof(err)) != 0) {
		if (kerr == ENOENT)
			fprintf(stderr, "ktlsd agent: kernel lacks the handshake netlink family "
				"(net/handshake: Linux >= 6.5 with CONFIG_NET_HANDSHAKE); "
				"nothing to serve\n");
		else
			fprintf(stderr, "ktlsd agent: resolving \"%s\": %s\n", HS_FAMILY_NAME, err);
		close(fd);
		return 1;
	}
	if (hs_probe_policy(fd, &ag.fam, err, sizeof(err)) != 0) {
		agent_log(AGENT_LOG_ERROR, "policy dump failed (%s): DONE carries no peer ids", err);
		ag.fam.remote_auth = 0;
	}
	close(fd);
	taken = hs_group_taken(&ag.fam, 0, who, sizeof(who), ignored, sizeof(ignored), err,
			       sizeof(err));
	if (taken < 0)
		agent_log(AGENT_LOG_ERROR, "cannot list the group's listeners (%s); "
			  "make sure tlshd is stopped", err);
	if (taken > 0) {
		fprintf(stderr, "ktlsd agent: another handshake agent already listens on group "
			"\"%s\": %s; stop it first (e.g. systemctl stop tlshd)\n", HS_GROUP_NAME, who);
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	ag.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ag.mc = join(&ag, &portid, err, sizeof(err));
	if (ag.sfd < 0 || ag.mc < 0) {
		fprintf(stderr, "ktlsd agent: %s\n", ag.mc < 0 ? err : strerror(errno));
		return 1;
	}
	/* Two agents starting together: the later one sees the earlier. */
	if (hs_group_taken(&ag.fam, portid, who, sizeof(who), ignored, sizeof(ignored), err,
			   sizeof(err)) > 0) {
		fprintf(stderr, "ktlsd agent: another handshake agent already listens on group "
			"\"%s\": %s; stop it first (e.g. systemctl stop tlshd)\n", HS_GROUP_NAME, who);
		return 1;
	}
	if (ignored[0])
		agent_log(AGENT_LOG_ERROR, "note: %s also listens on group \"%s\" but cannot take "
			  "requests (ACCEPT needs CAP_NET_ADMIN); going on", ignored, HS_GROUP_NAME);
	agent_prebuild(&ag.conf);
	agent_log(AGENT_LOG_INFO, "listening: family \"%s\" id %u, group \"%s\" id %u, DONE peer "
		  "ids %s, up to %u handshakes at once", HS_FAMILY_NAME, ag.fam.id, HS_GROUP_NAME,
		  ag.fam.group, ag.fam.remote_auth ? "supported" : "not supported",
		  ag.conf.max_handshakes);
	notify_ready("answering handshake requests");
	/* Under WatchdogSec= the loop pings at half the interval: one thread, so turning is living. */
	wd_ms = (int)(notify_watchdog_usec() / 2000);
	if (wd_ms) {
		notify_watchdog();
		last_ping = now_ms();
	}
	while (!ag.stopping) {
		struct pollfd p[2] = { { ag.mc, POLLIN, 0 }, { ag.sfd, POLLIN, 0 } };
		int n = poll(p, 2, wd_ms ? wd_ms : -1);

		if (wd_ms && now_ms() - last_ping >= (uint64_t)wd_ms) {
			notify_watchdog();
			last_ping = now_ms();
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			agent_log(AGENT_LOG_ERROR, "poll: %s", strerror(errno));
			rc = 1;
			break;
		}
		if (p[1].revents && on_signal(&ag))
			break;
		if (p[0].revents)
			agent_on_netlink(&ag);
	}
	notify_stopping();
	close(ag.mc);
	agent_log(AGENT_LOG_INFO, "stopping (%u request%s still finishing on their own)",
		  ag.children, ag.children == 1 ? "" : "s");
	agent_prebuild_free();
	agent_conf_free(&ag.conf);
	close(ag.sfd);
	return rc;
}
