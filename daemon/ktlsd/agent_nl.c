/*
 * agent_nl.c - the agent's netlink sockets: requests sent to the kernel
 * and their replies read, with agent_nl_msg.c building and parsing the
 * bytes.
 *
 * The attribute probe is a policy dump (CTRL_CMD_GETPOLICY, Linux >= 5.10
 * for per-op dumps), never a trial DONE: a trial send only proves that
 * bytes left the socket (tlshd's bug, oracle/ktls-utils#160).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "agent.h"

/* ---- sockets ----------------------------------------------------------------- */

/*
 * With $KTLS_AGENT_CAPTURE naming a directory, every message received is
 * also written raw to DIR/KIND-PID-N.bin: how tests/fixtures/handshake/
 * was made from real kernels.
 */
void hs_capture(const char *kind, const void *msg, size_t len)
{
	static unsigned n;
	const char *dir = secure_getenv("KTLS_AGENT_CAPTURE");
	char path[512];
	int fd;

	if (!dir || !*dir)
		return;
	snprintf(path, sizeof(path), "%s/%s-%d-%u.bin", dir, kind, (int)getpid(), n++);
	/* a new file of our own, never through a planted symlink */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return;
	if (write(fd, msg, len) < 0) {
		/* a capture is a debugging aid, never a failure */
	}
	close(fd);
}

static uint32_t next_seq(void)
{
	static uint32_t seq;

	if (!seq)
		seq = (uint32_t)getpid() << 12;
	return ++seq;
}

static int nl_open(int proto, char *err, size_t errlen)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { 5, 0 };
	int one = 1;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);

	if (fd < 0)
		return hs_seterr(err, errlen, "netlink socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		hs_seterr(err, errlen, "netlink bind: %s", strerror(errno));
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The kernel's reason text for refusals; best effort. */
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	return fd;
}

int hs_socket(char *err, size_t errlen)
{
	return nl_open(NETLINK_GENERIC, err, errlen);
}

/*
 * Send one request and feed each reply message to fn until the ack, the
 * dump's end or an error.  fn returns 0 to go on, -1 to fail.  -1 with
 * *kerr for a kernel error.
 */
static int transact(const char *kind, int fd, const void *req, int reqlen,
		    int (*fn)(const void *msg, size_t len, void *arg, char *err, size_t errlen),
		    void *arg, int *kerr, char *err, size_t errlen)
{
	static unsigned char buf[32768];
	uint32_t seq = ((const struct nlmsghdr *)req)->nlmsg_seq;
	int failed = 0;

	*kerr = 0;
	if (send(fd, req, (size_t)reqlen, 0) != reqlen)
		return hs_seterr(err, errlen, "netlink send: %s", strerror(errno));
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		size_t off = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hs_seterr(err, errlen, "netlink receive: %s",
				      errno == EAGAIN ? "no reply within 5 s" : strerror(errno));
		}
		if (n == 0)
			return hs_seterr(err, errlen, "netlink receive: socket closed");
		while (off < (size_t)n) {
			const struct nlmsghdr *nlh = (const void *)(buf + off);
			size_t left = (size_t)n - off;

			if (left < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN ||
			    nlh->nlmsg_len > left)
				return hs_seterr(err, errlen, "malformed netlink reply");
			off += NLMSG_ALIGN(nlh->nlmsg_len);
			if (nlh->nlmsg_seq != seq)
				continue; /* a stale reply to an earlier request */
			if (nlh->nlmsg_type == NLMSG_DONE)
				return failed ? -1 : 0;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				int e;
				if (hs_parse_nlerr(nlh, nlh->nlmsg_len, &e, err, errlen) < 0)
					return -1;
				if (e == 0)
					return failed ? -1 : 0;
				*kerr = e;
				return hs_seterr(err, errlen, "%s", strerror(e));
			}
			hs_capture(kind, nlh, nlh->nlmsg_len);
			if (!failed && fn(nlh, nlh->nlmsg_len, arg, err, errlen) != 0)
				failed = 1; /* keep reading to the end of the reply */
			if (!(nlh->nlmsg_flags & NLM_F_MULTI) &&
			    !(((const struct nlmsghdr *)req)->nlmsg_flags & NLM_F_ACK) &&
			    !(((const struct nlmsghdr *)req)->nlmsg_flags & NLM_F_DUMP))
				return failed ? -1 : 0;
		}
	}
}

static int family_cb(const void *msg, size_t len, void *arg, char *err, size_t errlen)
{
	struct hs_family *f = arg;

	return hs_parse_family(msg, len, HS_GROUP_NAME, &f->id, &f->group, NULL, err, errlen);
}

int hs_resolve(int fd, struct hs_family *f, int *kerr, char *err, size_t errlen)
{
	unsigned char req[128];
	int n = hs_build_getfamily(req, sizeof(req), next_seq(), HS_FAMILY_NAME);

	memset(f, 0, sizeof(*f));
	return transact("family", fd, req, n, family_cb, f, kerr, err, errlen);
}

static int policy_cb(const void *msg, size_t len, void *arg, char *err, size_t errlen)
{
	return hs_policy_feed(arg, msg, len, err, errlen);
}

int hs_probe_policy(int fd, struct hs_family *f, char *err, size_t errlen)
{
	unsigned char req[128];
	struct hs_policy p;
	int kerr, n = hs_build_getpolicy(req, sizeof(req), next_seq(), f->id, HS_CMD_DONE);

	hs_policy_init(&p);
	f->remote_auth = 0;
	if (transact("policy", fd, req, n, policy_cb, &p, &kerr, err, errlen) != 0)
		return -1;
	if (hs_policy_has(&p, HS_A_DONE_STATUS) != 1)
		return hs_seterr(err, errlen, "policy dump did not describe DONE (%d messages)",
			      p.seen);
	f->remote_auth = hs_policy_has(&p, HS_A_DONE_REMOTE_AUTH) == 1;
	return 0;
}

struct accept_arg {
	struct hs_accept *out;
	uint16_t family;
	int got;
};

static int accept_cb(const void *msg, size_t len, void *arg, char *err, size_t errlen)
{
	struct accept_arg *a = arg;
	int kerr;

	if (hs_parse_accept(msg, len, a->family, a->out, &kerr, err, errlen) != 0)
		return -1;
	a->got = 1;
	return 0;
}

int hs_accept(int fd, const struct hs_family *f, struct hs_accept *out, int *kerr, char *err,
	      size_t errlen)
{
	unsigned char req[64];
	struct accept_arg a = { out, f->id, 0 };
	int n = hs_build_accept(req, sizeof(req), next_seq(), f->id);

	memset(out, 0, sizeof(*out));
	out->sockfd = -1;
	if (transact("accept", fd, req, n, accept_cb, &a, kerr, err, errlen) != 0)
		return -1;
	if (!a.got)
		return hs_seterr(err, errlen, "ACCEPT acknowledged without a reply");
	return 0;
}

static int ignore_cb(const void *msg, size_t len, void *arg, char *err, size_t errlen)
{
	return 0;
}

int hs_done(int fd, const struct hs_family *f, uint32_t status, int sockfd,
	    const int32_t *peerids, unsigned npeerids, int *kerr, char *err, size_t errlen)
{
	unsigned char req[128];
	int n = hs_build_done(req, sizeof(req), next_seq(), f->id, status, sockfd, peerids,
			      f->remote_auth ? npeerids : 0);

	if (n < 0)
		return hs_seterr(err, errlen, "DONE does not fit");
	return transact("done", fd, req, n, ignore_cb, NULL, kerr, err, errlen);
}

/* ---- the group's other listeners ------------------------------------------- */

/* 1 when pid's effective capabilities hold CAP_NET_ADMIN, 0 when not, -1 unknown. */
static int has_net_admin(int pid)
{
	char path[64], line[256];
	unsigned long long eff;
	int r = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			r = (eff >> 12) & 1; /* CAP_NET_ADMIN */
			break;
		}
	fclose(f);
	return r;
}

/*
 * "pid N (comm)" of the process holding socket inode ino into who, best
 * effort; its pid, or 0 when no process of ours to see holds it.
 */
static int owner_of(uint32_t ino, char *who, size_t wholen)
{
	char want[64], path[300], link[64];
	DIR *proc = opendir("/proc");
	struct dirent *p;

	snprintf(want, sizeof(want), "socket:[%u]", ino);
	snprintf(who, wholen, "socket inode %u", ino);
	while (proc && (p = readdir(proc))) {
		DIR *fds;
		struct dirent *d;
		int pid = atoi(p->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		if (!(fds = opendir(path)))
			continue;
		while ((d = readdir(fds))) {
			ssize_t n;
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, d->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (!strcmp(link, want)) {
				char comm[32] = "?";
				FILE *f;
				snprintf(path, sizeof(path), "/proc/%d/comm", pid);
				if ((f = fopen(path, "re"))) {
					if (fgets(comm, sizeof(comm), f))
						comm[strcspn(comm, "\n")] = '\0';
					fclose(f);
				}
				snprintf(who, wholen, "pid %d (%s)", pid, comm);
				closedir(fds);
				closedir(proc);
				return pid;
			}
		}
		closedir(fds);
	}
	if (proc)
		closedir(proc);
	return 0;
}

#define TAKEN_MAX 16

struct taken_arg {
	uint32_t group, own;
	uint32_t inode[TAKEN_MAX];
	int n;
};

static int taken_cb(const void *msg, size_t len, void *arg, char *err, size_t errlen)
{
	struct taken_arg *t = arg;
	uint32_t portid, inode;
	int r = hs_parse_ndiag(msg, len, t->group, &portid, &inode, err, errlen);

	if (r < 0)
		return -1;
	if (r == 1 && portid != t->own && t->n < TAKEN_MAX)
		t->inode[t->n++] = inode;
	return 0;
}

/*
 * Any process may join the group (the kernel does not restrict it), but
 * only one with CAP_NET_ADMIN can ACCEPT the requests announced there.  So
 * only such a listener (tlshd, another agent) makes us refuse to start;
 * others are named in ignored so that the caller can say it went on.
 */
int hs_group_taken(const struct hs_family *f, uint32_t own_portid, char *who, size_t wholen,
		   char *ignored, size_t ignlen, char *err, size_t errlen)
{
	unsigned char req[128];
	struct taken_arg t = { .group = f->group, .own = own_portid };
	int kerr, fd = nl_open(NETLINK_SOCK_DIAG, err, errlen);
	int n = hs_build_ndiag(req, sizeof(req), next_seq());
	int r;

	if (ignlen)
		ignored[0] = '\0';
	if (fd < 0)
		return -1;
	r = transact("ndiag", fd, req, n, taken_cb, &t, &kerr, err, errlen);
	close(fd);
	if (r != 0)
		return -1;
	for (int i = 0; i < t.n; i++) {
		int pid = owner_of(t.inode[i], who, wholen);

		if (pid > 0 && has_net_admin(pid) == 1)
			return 1;
		if (ignlen && !ignored[0])
			snprintf(ignored, ignlen, "%s (%s)", who,
				 pid > 0 ? "without CAP_NET_ADMIN" : "no process of ours holds it");
	}
	return 0;
}

