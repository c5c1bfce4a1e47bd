/*
 * netlink_diag.c - which TCP sockets carry the tls ULP, and how each
 * direction is encrypted, from sock_diag (NETLINK_SOCK_DIAG).
 *
 * The kernel fills INET_DIAG_ULP_INFO when INET_DIAG_INFO is requested,
 * and (up to at least 6.12) only for CAP_NET_ADMIN callers: tcp_diag
 * passes net_admin to its aux hook.  Names match ss(8) so that our output
 * and `ss -tni` can be compared word for word.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/tls.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "internal.h"
#include "netlink.h"
#include "proto.h"

static struct nla_policy ulp_pol[INET_ULP_INFO_MAX + 1] = {
	[INET_ULP_INFO_NAME] = { .type = NLA_STRING },
	[INET_ULP_INFO_TLS] = { .type = NLA_NESTED },
};
static struct nla_policy tls_pol[TLS_INFO_MAX + 1] = {
	[TLS_INFO_VERSION] = { .type = NLA_U16 },
	[TLS_INFO_CIPHER] = { .type = NLA_U16 },
	[TLS_INFO_TXCONF] = { .type = NLA_U16 },
	[TLS_INFO_RXCONF] = { .type = NLA_U16 },
	[TLS_INFO_ZC_RO_TX] = { .type = NLA_FLAG },
	[TLS_INFO_RX_NO_PAD] = { .type = NLA_FLAG },
};

KTLS_API const char *ktls_sock_version_name(int v)
{
	switch (v) {
	case TLS_1_2_VERSION: return "1.2";
	case TLS_1_3_VERSION: return "1.3";
	case 0: return "-";
	default: return "unknown";
	}
}

/* Ours from the cipher table; the kernel's others for sockets not ours. */
KTLS_API const char *ktls_sock_cipher_name(int c)
{
	const struct proto_cipher *p = proto_cipher_by_tls(c);

	if (p)
		return p->kernel_name;
	switch (c) {
	case TLS_CIPHER_AES_CCM_128: return "aes-ccm-128";
	case TLS_CIPHER_SM4_GCM: return "sm4-gcm";
	case TLS_CIPHER_SM4_CCM: return "sm4-ccm";
	case TLS_CIPHER_ARIA_GCM_128: return "aria-gcm-128";
	case TLS_CIPHER_ARIA_GCM_256: return "aria-gcm-256";
	case 0: return "-";
	default: return "unknown";
	}
}

/* ss prints TLS_CONF_BASE as "none"; we say "base" (ULP set, no key yet). */
KTLS_API const char *ktls_sock_conf_name(int c)
{
	switch (c) {
	case TLS_CONF_BASE: return "base";
	case TLS_CONF_SW: return "sw";
	case TLS_CONF_HW: return "hw";
	case TLS_CONF_HW_RECORD: return "hw-record";
	case 0: return "-";
	default: return "unknown";
	}
}

KTLS_API const char *ktls_tcp_state_name(int s)
{
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "ESTAB", [TCP_SYN_SENT] = "SYN-SENT",
		[TCP_SYN_RECV] = "SYN-RECV", [TCP_FIN_WAIT1] = "FIN-WAIT-1",
		[TCP_FIN_WAIT2] = "FIN-WAIT-2", [TCP_TIME_WAIT] = "TIME-WAIT",
		[TCP_CLOSE] = "CLOSE", [TCP_CLOSE_WAIT] = "CLOSE-WAIT",
		[TCP_LAST_ACK] = "LAST-ACK", [TCP_LISTEN] = "LISTEN",
		[TCP_CLOSING] = "CLOSING",
	};
	if (s > 0 && (size_t)s < sizeof(names) / sizeof(names[0]) && names[s])
		return names[s];
	return "UNKNOWN";
}

/* "addr:port" as ss prints it: IPv6 in brackets. */
static void fmt_addr(char *out, size_t cap, int family, const __be32 *a, uint16_t port)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family, a, ip, sizeof(ip));
	if (family == AF_INET6)
		snprintf(out, cap, "[%s]:%u", ip, port);
	else
		snprintf(out, cap, "%s:%u", ip, port);
}

int diag_parse(const struct nlmsghdr *nlh, struct ktls_sock *out, char *err, size_t errlen)
{
	struct nlattr *tb[INET_DIAG_MAX + 1];
	struct nlattr *ulp[INET_ULP_INFO_MAX + 1];
	struct nlattr *ti[TLS_INFO_MAX + 1];
	const struct inet_diag_msg *m;
	char name[16];

	memset(out, 0, sizeof(*out));
	if (nlx_check_msg(nlh, nlh->nlmsg_len, sizeof(*m), err, errlen) < 0)
		return -1;
	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return buf_seterr(err, errlen, "unexpected sock_diag message type %u",
				  nlh->nlmsg_type);
	m = nlmsg_data(nlh);
	const struct nlattr *head =
		(const struct nlattr *)((const char *)m + NLMSG_ALIGN(sizeof(*m)));
	int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - (int)NLMSG_ALIGN(sizeof(*m));
	if (len < 0)
		len = 0;
	if (nlx_parse(tb, INET_DIAG_MAX, head, len, NULL, "sock_diag reply", err, errlen) < 0)
		return -1;
	if (!tb[INET_DIAG_ULP_INFO])
		return 0;
	if (nlx_parse(ulp, INET_ULP_INFO_MAX, nla_data(tb[INET_DIAG_ULP_INFO]),
		      nla_len(tb[INET_DIAG_ULP_INFO]), ulp_pol, "ULP info", err, errlen) < 0)
		return -1;
	if (!ulp[INET_ULP_INFO_NAME])
		return 0;
	snprintf(name, sizeof(name), "%.*s",
		 (int)strnlen(nla_data(ulp[INET_ULP_INFO_NAME]),
			      (size_t)nla_len(ulp[INET_ULP_INFO_NAME])),
		 (const char *)nla_data(ulp[INET_ULP_INFO_NAME]));
	if (strcmp(name, "tls") != 0)
		return 0; /* mptcp and friends */

	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return buf_seterr(err, errlen, "sock_diag reply with address family %u",
				  m->idiag_family);
	out->family = m->idiag_family;
	out->lport = ntohs(m->id.idiag_sport);
	out->rport = ntohs(m->id.idiag_dport);
	fmt_addr(out->local, sizeof(out->local), out->family, m->id.idiag_src, out->lport);
	fmt_addr(out->peer, sizeof(out->peer), out->family, m->id.idiag_dst, out->rport);
	out->state = m->idiag_state;
	out->uid = m->idiag_uid;
	out->inode = m->idiag_inode;

	if (ulp[INET_ULP_INFO_TLS]) {
		if (nlx_parse(ti, TLS_INFO_MAX, nla_data(ulp[INET_ULP_INFO_TLS]),
			      nla_len(ulp[INET_ULP_INFO_TLS]), tls_pol, "TLS info", err,
			      errlen) < 0)
			return -1;
		if (ti[TLS_INFO_VERSION])
			out->version = nla_get_u16(ti[TLS_INFO_VERSION]);
		if (ti[TLS_INFO_CIPHER])
			out->cipher = nla_get_u16(ti[TLS_INFO_CIPHER]);
		if (ti[TLS_INFO_TXCONF])
			out->txconf = nla_get_u16(ti[TLS_INFO_TXCONF]);
		if (ti[TLS_INFO_RXCONF])
			out->rxconf = nla_get_u16(ti[TLS_INFO_RXCONF]);
		out->zc_ro_tx = ti[TLS_INFO_ZC_RO_TX] != NULL;
		out->rx_no_pad = ti[TLS_INFO_RX_NO_PAD] != NULL;
	}
	return 1;
}

struct diag_acc {
	struct ktls_sock *v;
	size_t n;
};

static int on_diag(const struct nlmsghdr *nlh, void *arg, char *err, size_t errlen)
{
	struct diag_acc *a = arg;
	struct ktls_sock s;
	int r = diag_parse(nlh, &s, err, errlen);

	if (r <= 0)
		return r;
	struct ktls_sock *nv = realloc(a->v, (a->n + 1) * sizeof(*nv));
	if (!nv)
		return buf_seterr(err, errlen, "out of memory");
	a->v = nv;
	nv[a->n++] = s;
	return 0;
}

/* Whether the running kernel has the tls ULP registered. */
static int kernel_has_tls_ulp(void)
{
	char buf[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");

	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (char *t = strtok(buf, " \t\n"); t; t = strtok(NULL, " \t\n"))
		if (!strcmp(t, "tls"))
			return 1;
	return 0;
}

static int ulp_info_visible(void);

KTLS_API int ktls_sock_list(struct ktls_sock **out, size_t *n, char *why, size_t whylen,
			    char *err, size_t errlen)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct diag_acc a = { 0 };
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	*out = NULL;
	*n = 0;
	if (why && whylen)
		why[0] = '\0';
	if (!sk)
		return buf_seterr(err, errlen, "out of memory");
	r = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (r < 0) {
		nl_socket_free(sk);
		return buf_seterr(err, errlen, "sock_diag netlink: %s", nl_geterror(r));
	}
	nlx_prepare(sk);
	nl_socket_disable_auto_ack(sk);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		struct inet_diag_req_v2 req;
		memset(&req, 0, sizeof(req));
		req.sdiag_family = (uint8_t)families[i];
		req.sdiag_protocol = IPPROTO_TCP;
		req.idiag_ext = 1 << (INET_DIAG_INFO - 1); /* brings ULP info along */
		req.idiag_states = ~0u;
		r = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &req, sizeof(req));
		if (r < 0) {
			buf_seterr(err, errlen, "sock_diag send: %s", nl_geterror(r));
			goto fail;
		}
		struct nlx_req rq = { .on_msg = on_diag, .arg = &a, .kind = "sock-diag",
				      .err = err, .errlen = errlen };
		if (nlx_recv(sk, &rq) < 0) {
			/* A kernel without IPv6 answers ENOENT for that family. */
			if (rq.kerr == ENOENT && families[i] == AF_INET6)
				continue;
			if (rq.kerr == ENOENT)
				buf_seterr(err, errlen, "sock_diag: this kernel cannot report TCP sockets "
					   "(inet_diag/tcp_diag not loaded and not loadable)");
			else if (rq.kerr)
				buf_seterr(err, errlen, "sock_diag: %s%s%s", strerror(rq.kerr),
					   rq.kmsg[0] ? ": " : "", rq.kmsg);
			goto fail;
		}
	}
	nl_socket_free(sk);
	*out = a.v;
	*n = a.n;
	if (a.n == 0 && why && whylen) {
		int has = kernel_has_tls_ulp();
		if (has == 0)
			snprintf(why, whylen, "no socket uses the tls ULP: kernel has no kTLS "
					      "(tcp_available_ulp lacks tls)");
		else if (!ktls_have_net_admin() && ulp_info_visible() != 1)
			snprintf(why, whylen, "no socket with the tls ULP is visible: the kernel "
					      "reports ULP info to CAP_NET_ADMIN only");
		else
			snprintf(why, whylen, "no socket uses the tls ULP");
	}
	return 0;
fail:
	nl_socket_free(sk);
	free(a.v);
	return -1;
}

struct one_acc {
	struct ktls_sock *out;
	int found;
};

static int on_one(const struct nlmsghdr *nlh, void *arg, char *err, size_t errlen)
{
	struct one_acc *a = arg;
	int r = diag_parse(nlh, a->out, err, errlen);

	if (r < 0)
		return -1;
	a->found = r;
	return 0;
}

int diag_query_fd(int fd, struct ktls_sock *out, char *err, size_t errlen)
{
	struct sockaddr_storage l, p;
	socklen_t ll = sizeof(l), pl = sizeof(p);
	struct inet_diag_req_v2 req;
	struct one_acc a = { .out = out };

	memset(out, 0, sizeof(*out));
	if (getsockname(fd, (struct sockaddr *)&l, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&p, &pl) < 0)
		return buf_seterr(err, errlen, "socket %d: %s", fd, strerror(errno));
	if (l.ss_family != p.ss_family || (l.ss_family != AF_INET && l.ss_family != AF_INET6))
		return buf_seterr(err, errlen, "socket %d is not a connected TCP/IP socket", fd);
	memset(&req, 0, sizeof(req));
	req.sdiag_family = (uint8_t)l.ss_family;
	req.sdiag_protocol = IPPROTO_TCP;
	req.idiag_ext = 1 << (INET_DIAG_INFO - 1);
	req.idiag_states = ~0u;
	req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (l.ss_family == AF_INET) {
		const struct sockaddr_in *a4 = (const void *)&l, *b4 = (const void *)&p;
		req.id.idiag_sport = a4->sin_port;
		req.id.idiag_dport = b4->sin_port;
		memcpy(req.id.idiag_src, &a4->sin_addr, 4);
		memcpy(req.id.idiag_dst, &b4->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *a6 = (const void *)&l, *b6 = (const void *)&p;
		req.id.idiag_sport = a6->sin6_port;
		req.id.idiag_dport = b6->sin6_port;
		memcpy(req.id.idiag_src, &a6->sin6_addr, 16);
		memcpy(req.id.idiag_dst, &b6->sin6_addr, 16);
	}

	struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return buf_seterr(err, errlen, "out of memory");
	int r = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (r < 0) {
		nl_socket_free(sk);
		return buf_seterr(err, errlen, "sock_diag netlink: %s", nl_geterror(r));
	}
	nlx_prepare(sk);
	nl_socket_disable_auto_ack(sk);
	r = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, 0, &req, sizeof(req));
	if (r < 0) {
		nl_socket_free(sk);
		return buf_seterr(err, errlen, "sock_diag send: %s", nl_geterror(r));
	}
	struct nlx_req rq = { .on_msg = on_one, .arg = &a, .kind = "sock-diag-one",
			      .err = err, .errlen = errlen };
	r = nlx_recv(sk, &rq);
	nl_socket_free(sk);
	if (r < 0) {
		if (rq.kerr == ENOENT)
			buf_seterr(err, errlen, "sock_diag: socket %d not found, or no TCP diag "
				   "support (inet_diag/tcp_diag)", fd);
		else if (rq.kerr)
			buf_seterr(err, errlen, "sock_diag: %s%s%s", strerror(rq.kerr),
				   rq.kmsg[0] ? ": " : "", rq.kmsg);
		return -1;
	}
	return a.found;
}

/*
 * Whether this kernel shows ULP info to us at all: 6.12 gives it only to
 * CAP_NET_ADMIN, 7.3 to everyone.  Ask about a loopback connection of our
 * own with the ULP set (no keys): 1 visible, 0 hidden, -1 cannot tell.
 */
static int ulp_info_visible(void)
{
	struct ktls_sock t;
	char err[128];
	int fds[2], r = -1;

	if (loopback_pair(fds))
		return -1;
	if (setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0) {
		r = diag_query_fd(fds[0], &t, err, sizeof(err));
		if (r > 0)
			r = 1;
	}
	loopback_close(fds);
	return r;
}

KTLS_API void ktls_sock_list_free(struct ktls_sock *v)
{
	free(v);
}

/*
 * Any process names itself (prctl PR_SET_NAME): what it chose reaches
 * terminals and logs, so bytes outside printable ASCII, and '\', become
 * \xHH, cut at a whole escape.
 */
static void comm_escape(char *out, size_t cap, const char *in)
{
	size_t o = 0;

	for (; *in; in++) {
		unsigned char ch = (unsigned char)*in;
		int esc = ch < 0x20 || ch >= 0x7f || ch == '\\';

		if (o + (esc ? 4 : 1) >= cap)
			break;
		if (esc)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

/* /proc/PID/fd/N -> "socket:[INODE]": match against the sockets we found. */
KTLS_API void ktls_sock_owners(struct ktls_sock *v, size_t n)
{
	DIR *proc;
	struct dirent *de;

	if (n == 0 || !(proc = opendir("/proc")))
		return;
	while ((de = readdir(proc))) {
		char path[300], link[64];
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		DIR *fds = opendir(path);
		if (!fds)
			continue; /* not ours to read, or gone */
		struct dirent *fe;
		while ((fe = readdir(fds))) {
			char fpath[600];
			unsigned long long ino;
			if (fe->d_name[0] == '.')
				continue;
			snprintf(fpath, sizeof(fpath), "%s/%s", path, fe->d_name);
			ssize_t l = readlink(fpath, link, sizeof(link) - 1);
			if (l <= 0)
				continue;
			link[l] = '\0';
			if (sscanf(link, "socket:[%llu]", &ino) != 1)
				continue;
			for (size_t i = 0; i < n; i++) {
				if (v[i].pid || v[i].inode != ino)
					continue;
				v[i].pid = atoi(de->d_name);
				char cpath[300];
				snprintf(cpath, sizeof(cpath), "/proc/%s/comm", de->d_name);
				FILE *c = fopen(cpath, "re");
				char raw[32];
				if (c) {
					if (fgets(raw, sizeof(raw), c)) {
						raw[strcspn(raw, "\n")] = '\0';
						comm_escape(v[i].comm, sizeof(v[i].comm), raw);
					}
					fclose(c);
				}
			}
		}
		closedir(fds);
	}
	closedir(proc);
}
