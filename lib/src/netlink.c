/*
 * netlink.c - plumbing the control-plane readers share: strict attribute
 * parsing, request/reply exchange over libnl with the kernel's extended-ack
 * text kept for error messages, raw capture of replies for fixtures, and
 * whether we hold the privilege the kernel checks on these requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <linux/capability.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "internal.h"
#include "netlink.h"

int nlx_parse(struct nlattr **tb, int maxtype, const struct nlattr *head, int len,
	      const struct nla_policy *policy, const char *what, char *err, size_t errlen)
{
	const struct nlattr *nla = head;
	int rem = len;

	if (len < 0)
		return buf_seterr(err, errlen, "%s: negative attribute length", what);
	/* Walk first: every attribute must fit, and nothing may be left over. */
	while (rem >= (int)sizeof(*nla)) {
		if (nla->nla_len < sizeof(*nla) || nla->nla_len > rem)
			return buf_seterr(err, errlen,
					  "%s: truncated attribute (type %u, length %u, %d bytes left)",
					  what, nla->nla_type & NLA_TYPE_MASK, nla->nla_len, rem);
		int step = NLA_ALIGN(nla->nla_len);
		if (step > rem)
			step = rem; /* the last attribute may lack its padding */
		rem -= step;
		nla = (const struct nlattr *)((const char *)nla + step);
	}
	if (rem != 0)
		return buf_seterr(err, errlen, "%s: %d stray bytes after the last attribute",
				  what, rem);
	int r = nla_parse(tb, maxtype, (struct nlattr *)head, len,
			  (struct nla_policy *)policy);
	if (r < 0)
		return buf_seterr(err, errlen, "%s: malformed attribute (%s)", what,
				  nl_geterror(r));
	return 0;
}

int nlx_check_msg(const struct nlmsghdr *nlh, size_t buflen, size_t hdrlen,
		  char *err, size_t errlen)
{
	if (buflen < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN)
		return buf_seterr(err, errlen, "netlink message shorter than its header");
	if (nlh->nlmsg_len > buflen)
		return buf_seterr(err, errlen,
				  "netlink message truncated (claims %u bytes, has %zu)",
				  nlh->nlmsg_len, buflen);
	if (nlh->nlmsg_len < NLMSG_HDRLEN + hdrlen)
		return buf_seterr(err, errlen,
				  "netlink message too short for its family header (%u bytes)",
				  nlh->nlmsg_len);
	return 0;
}

static const char *capture_dir;
static pthread_once_t capture_once = PTHREAD_ONCE_INIT;

/*
 * Read once: the environment is not re-read on every offload, and
 * secure_getenv ignores it in a setuid or file-capability program, whose
 * caller must not pick where it writes.
 */
static void capture_init(void)
{
	const char *d = secure_getenv("KTLS_NL_CAPTURE");

	capture_dir = d && *d ? d : NULL;
}

void nlx_capture(const char *kind, const struct nlmsghdr *nlh)
{
	char path[PATH_MAX];
	int fd;

	pthread_once(&capture_once, capture_init);
	if (!capture_dir)
		return;
	if (snprintf(path, sizeof(path), "%s/%s.bin", capture_dir, kind) >= (int)sizeof(path))
		return;
	/* never through a planted symlink */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return;
	/* Best effort: a capture is a debugging aid, never a failure. */
	if (write(fd, nlh, nlh->nlmsg_len) < 0)
		(void)0;
	close(fd);
}

/* ---- exchange ------------------------------------------------------------ */

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct nlx_req *r = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	if (r->kind)
		nlx_capture(r->kind, nlh);
	if (r->on_msg && r->on_msg(nlh, r->arg, r->err, r->errlen) < 0) {
		r->failed = 1;
		return NL_STOP;
	}
	return NL_OK;
}

static int on_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct nlx_req *r = arg;
	const struct nlmsghdr *outer = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);

	(void)who;
	/* INT_MIN cannot be negated; no errno it is either. */
	r->kerr = e->error == INT_MIN ? EPROTO : e->error < 0 ? -e->error : e->error;
	r->kmsg[0] = '\0';
	if (outer->nlmsg_flags & NLM_F_ACK_TLVS) {
		/* Extended ack: TLVs follow the error (and the echoed request). */
		size_t off = NLMSG_HDRLEN + sizeof(*e);
		if (!(outer->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - NLMSG_HDRLEN;
		if (off < outer->nlmsg_len) {
			struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
			char perr[64];
			if (nlx_parse(tb, NLMSGERR_ATTR_MAX,
				      (const struct nlattr *)((const char *)outer + off),
				      (int)(outer->nlmsg_len - off), NULL, "ext ack", perr,
				      sizeof(perr)) == 0 && tb[NLMSGERR_ATTR_MSG])
				snprintf(r->kmsg, sizeof(r->kmsg), "%.*s",
					 nla_len(tb[NLMSGERR_ATTR_MSG]),
					 (const char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
		}
	}
	return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_STOP;
}

void nlx_prepare(struct nl_sock *sk)
{
	int one = 1;

	/* The kernel's own words ("feature is not changeable") beat an errno. */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
}

int nlx_recv(struct nl_sock *sk, struct nlx_req *r)
{
	struct nl_cb *own = nl_socket_get_cb(sk); /* a reference: put it back */
	struct nl_cb *cb = own ? nl_cb_clone(own) : NULL;
	int ret;

	if (own)
		nl_cb_put(own);
	if (!cb)
		return buf_seterr(r->err, r->errlen, "out of memory");
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, r);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, r);
	ret = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (r->failed)
		return -1; /* err already says what was malformed */
	if (r->kerr) {
		errno = r->kerr;
		return -1;
	}
	if (ret < 0) {
		errno = EPROTO;
		return buf_seterr(r->err, r->errlen, "netlink receive: %s", nl_geterror(ret));
	}
	return 0;
}

/* libcap would be a dependency for one syscall. */
KTLS_API int ktls_have_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[CAP_NET_ADMIN / 32].effective >> (CAP_NET_ADMIN % 32)) & 1;
}
