/*
 * netlink_ethtool.c - NIC TLS offload features over ethtool netlink: the
 * requests behind ktls_nic_query() and ktls_nic_set().  The replies are
 * read by netlink_ethtool_parse.c.
 *
 * The code stays in libktls as public calls rather than moving into
 * ktlsctl: it shares the netlink plumbing (nlx_*) and the strict parsers
 * with sock_diag, which the library needs for itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/ethtool.h>
#include <linux/ethtool_netlink.h>
#include <linux/sockios.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include "internal.h"
#include "netlink.h"

/* ---- talking to the kernel ----------------------------------------------- */

struct ethnl {
	struct nl_sock *sk;
	int family;
};

static int ethnl_open(struct ethnl *e, char *err, size_t errlen)
{
	e->sk = nl_socket_alloc();
	if (!e->sk)
		return buf_seterr(err, errlen, "out of memory");
	int r = genl_connect(e->sk);
	if (r < 0) {
		nl_socket_free(e->sk);
		e->sk = NULL;
		return buf_seterr(err, errlen, "generic netlink: %s", nl_geterror(r));
	}
	nlx_prepare(e->sk);
	nl_socket_disable_auto_ack(e->sk);
	e->family = genl_ctrl_resolve(e->sk, ETHTOOL_GENL_NAME);
	if (e->family < 0) {
		nl_socket_free(e->sk);
		e->sk = NULL;
		return buf_seterr(err, errlen,
				  "kernel has no ethtool netlink family (needs Linux 5.6+): %s",
				  nl_geterror(e->family));
	}
	return 0;
}

static void ethnl_close(struct ethnl *e)
{
	if (e->sk)
		nl_socket_free(e->sk);
	e->sk = NULL;
}

/* A request with a header nest naming the device (by name or index). */
static struct nl_msg *ethnl_msg(struct ethnl *e, int cmd, int flags, int hdr_attr,
				const char *ifname, int ifindex, uint32_t hflags)
{
	struct nl_msg *m = nlmsg_alloc();
	if (!m)
		return NULL;
	if (!genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, e->family, 0, flags, cmd,
			 ETHTOOL_GENL_VERSION))
		goto fail;
	struct nlattr *h = nla_nest_start(m, hdr_attr | NLA_F_NESTED);
	if (!h)
		goto fail;
	if (ifname && nla_put_string(m, ETHTOOL_A_HEADER_DEV_NAME, ifname) < 0)
		goto fail;
	if (ifindex > 0 && nla_put_u32(m, ETHTOOL_A_HEADER_DEV_INDEX, (uint32_t)ifindex) < 0)
		goto fail;
	/* Always present: libnl drops an empty nest, and the kernel wants one. */
	if (nla_put_u32(m, ETHTOOL_A_HEADER_FLAGS, hflags) < 0)
		goto fail;
	nla_nest_end(m, h);
	return m;
fail:
	nlmsg_free(m);
	return NULL;
}

static int ethnl_do(struct ethnl *e, struct nl_msg *m, struct nlx_req *r)
{
	if (!m)
		return buf_seterr(r->err, r->errlen, "out of memory building a request");
	int s = nl_send_auto(e->sk, m);
	nlmsg_free(m);
	if (s < 0)
		return buf_seterr(r->err, r->errlen, "netlink send: %s", nl_geterror(s));
	return nlx_recv(e->sk, r);
}

/* Add a STRINGSETS request for set `id` to m. */
static int put_strset_req(struct nl_msg *m, uint32_t id)
{
	struct nlattr *sets = nla_nest_start(m, ETHTOOL_A_STRSET_STRINGSETS | NLA_F_NESTED);
	if (!sets)
		return -1;
	struct nlattr *set = nla_nest_start(m, ETHTOOL_A_STRINGSETS_STRINGSET | NLA_F_NESTED);
	if (!set || nla_put_u32(m, ETHTOOL_A_STRINGSET_ID, id) < 0)
		return -1;
	nla_nest_end(m, set);
	nla_nest_end(m, sets);
	return 0;
}

static int on_strset(const struct nlmsghdr *nlh, void *arg, char *err, size_t errlen)
{
	return nic_parse_strset(nlh, arg, err, errlen);
}

static int get_feature_names(struct ethnl *e, struct nic_strset *ss, char *err, size_t errlen)
{
	struct nlx_req r = { .on_msg = on_strset, .arg = ss, .kind = "strset-features",
			     .err = err, .errlen = errlen };
	/* A header naming no device: ETH_SS_FEATURES is global. */
	struct nl_msg *m = ethnl_msg(e, ETHTOOL_MSG_STRSET_GET, 0, ETHTOOL_A_STRSET_HEADER, NULL,
				     0, 0);

	if (!m || put_strset_req(m, ETH_SS_FEATURES) < 0) {
		if (m)
			nlmsg_free(m);
		return buf_seterr(err, errlen, "out of memory");
	}
	ss->count = 0;
	for (int i = 0; i < KTLS_NIC_NFEAT; i++)
		ss->idx[i] = -1;
	if (ethnl_do(e, m, &r) < 0) {
		if (r.kerr)
			buf_seterr(err, errlen, "reading feature names: %s%s%s", strerror(r.kerr),
				   r.kmsg[0] ? ": " : "", r.kmsg);
		return -1;
	}
	if (ss->count == 0)
		return buf_seterr(err, errlen, "kernel returned no feature names");
	return 0;
}

struct feat_acc {
	const struct nic_strset *ss;
	struct ktls_nic *v;
	size_t n;
};

static int on_features(const struct nlmsghdr *nlh, void *arg, char *err, size_t errlen)
{
	struct feat_acc *a = arg;
	struct ktls_nic *nv = realloc(a->v, (a->n + 1) * sizeof(*nv));

	if (!nv)
		return buf_seterr(err, errlen, "out of memory");
	a->v = nv;
	if (nic_parse_features(nlh, a->ss, &nv[a->n], err, errlen) < 0)
		return -1;
	a->n++;
	return 0;
}

struct stat_acc {
	struct ktls_nic_counter *names;
	unsigned *idx;
	size_t n;
	unsigned total;
};

static int on_stat_names(const struct nlmsghdr *nlh, void *arg, char *err, size_t errlen)
{
	struct stat_acc *a = arg;
	free(a->names);
	free(a->idx);
	a->names = NULL;
	a->idx = NULL;
	return nic_parse_stat_names(nlh, &a->names, &a->idx, &a->n, &a->total, err, errlen);
}

/*
 * The driver's TLS counters: names from the device's ETH_SS_STATS string
 * set over netlink, values with the ETHTOOL_GSTATS ioctl (netlink carries
 * only standardised stats groups, not driver-private ones).  A device
 * without stats, or without TLS ones, leaves ncounters at 0; only a
 * transport failure is an error.
 */
static int read_counters(struct ethnl *e, struct ktls_nic *ni, char *err, size_t errlen)
{
	struct stat_acc a = { 0 };
	struct nlx_req r = { .on_msg = on_stat_names, .arg = &a, .kind = "strset-stats",
			     .err = err, .errlen = errlen };
	struct nl_msg *m = ethnl_msg(e, ETHTOOL_MSG_STRSET_GET, 0, ETHTOOL_A_STRSET_HEADER, NULL,
				     ni->ifindex, 0);
	int ret = -1;

	if (m && put_strset_req(m, ETH_SS_STATS) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	if (ethnl_do(e, m, &r) < 0) {
		if (r.kerr == EOPNOTSUPP || r.kerr == ENODEV) {
			ni->counters_read = 0;
			ret = 0;
		}
		goto out;
	}
	ni->counters_read = 1;
	if (a.n == 0) {
		ret = 0;
		goto out;
	}

	struct ethtool_stats *st = calloc(1, sizeof(*st) + (size_t)a.total * sizeof(uint64_t));
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!st || fd < 0) {
		free(st);
		if (fd >= 0)
			close(fd);
		buf_seterr(err, errlen, "%s: stats: %s", ni->ifname, strerror(errno));
		goto out;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ni->ifname);
	st->cmd = ETHTOOL_GSTATS;
	st->n_stats = a.total;
	ifr.ifr_data = (void *)st;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0 || st->n_stats != a.total) {
		/* Names without values would mislead: report none. */
		ni->counters_read = 0;
		ret = 0;
	} else {
		for (size_t i = 0; i < a.n; i++)
			a.names[i].value = st->data[a.idx[i]];
		ni->counters = a.names;
		ni->ncounters = a.n;
		a.names = NULL;
		ret = 0;
	}
	close(fd);
	free(st);
out:
	free(a.names);
	free(a.idx);
	return ret;
}

static int query(struct ethnl *e, const char *ifname, const struct nic_strset *ss,
		 struct ktls_nic **out, size_t *n, char *err, size_t errlen)
{
	struct feat_acc a = { .ss = ss };
	struct nlx_req r = { .on_msg = on_features, .arg = &a, .kind = "features",
			     .err = err, .errlen = errlen };
	struct nl_msg *m = ethnl_msg(e, ETHTOOL_MSG_FEATURES_GET, ifname ? 0 : NLM_F_DUMP,
				     ETHTOOL_A_FEATURES_HEADER, ifname, 0,
				     ETHTOOL_FLAG_COMPACT_BITSETS);

	if (ethnl_do(e, m, &r) < 0) {
		if (r.kerr == ENODEV)
			buf_seterr(err, errlen, "no interface named '%s'", ifname ? ifname : "?");
		else if (r.kerr)
			buf_seterr(err, errlen, "reading features%s%s: %s%s%s",
				   ifname ? " of " : "", ifname ? ifname : "", strerror(r.kerr),
				   r.kmsg[0] ? ": " : "", r.kmsg);
		ktls_nic_list_free(a.v, a.n);
		return -1;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

static int cmp_ifindex(const void *a, const void *b)
{
	const struct ktls_nic *x = a, *y = b;
	return (x->ifindex > y->ifindex) - (x->ifindex < y->ifindex);
}

KTLS_API int ktls_nic_query(const char *ifname, struct ktls_nic **out, size_t *n, char *err,
			    size_t errlen)
{
	struct ethnl e;
	struct nic_strset ss;

	*out = NULL;
	*n = 0;
	if (ifname && (!*ifname || strlen(ifname) >= IF_NAMESIZE))
		return buf_seterr(err, errlen, "'%s' is not a valid interface name", ifname);
	if (ethnl_open(&e, err, errlen) < 0)
		return -1;
	if (get_feature_names(&e, &ss, err, errlen) < 0 ||
	    query(&e, ifname, &ss, out, n, err, errlen) < 0) {
		ethnl_close(&e);
		return -1;
	}
	qsort(*out, *n, sizeof(**out), cmp_ifindex);
	for (size_t i = 0; i < *n; i++)
		if (read_counters(&e, &(*out)[i], err, errlen) < 0) {
			ktls_nic_list_free(*out, *n);
			*out = NULL;
			*n = 0;
			ethnl_close(&e);
			return -1;
		}
	ethnl_close(&e);
	return 0;
}

int nic_features_all(struct ktls_nic **out, size_t *n, char *err, size_t errlen)
{
	struct ethnl e;
	struct nic_strset ss;
	int r;

	*out = NULL;
	*n = 0;
	if (ethnl_open(&e, err, errlen) < 0)
		return -1;
	r = get_feature_names(&e, &ss, err, errlen) < 0 || query(&e, NULL, &ss, out, n, err, errlen) < 0
		    ? -1 : 0;
	ethnl_close(&e);
	return r;
}

KTLS_API void ktls_nic_list_free(struct ktls_nic *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].counters);
	free(v);
}

/* ---- changing features ------------------------------------------------- */

/* One FEATURES_SET request changing exactly the bits in want[] (acked). */
static int send_set(struct ethnl *e, const struct nic_strset *ss, const char *ifname,
		    const int want[KTLS_NIC_NFEAT], char *err, size_t errlen)
{
	/* Compact value/mask: only the bits in the mask change. */
	size_t words = (ss->count + 31) / 32;
	uint32_t *val = calloc(words, 4), *mask = calloc(words, 4);
	struct nl_msg *m = ethnl_msg(e, ETHTOOL_MSG_FEATURES_SET, 0, ETHTOOL_A_FEATURES_HEADER,
				     ifname, 0,
				     ETHTOOL_FLAG_COMPACT_BITSETS | ETHTOOL_FLAG_OMIT_REPLY);
	struct nlattr *bs = NULL;
	int bad = 0;

	for (int i = 0; i < KTLS_NIC_NFEAT; i++)
		if (want[i] >= 0 && (ss->idx[i] < 0 || (unsigned)ss->idx[i] >= ss->count))
			bad = 1;
	if (val && mask && m && !bad) {
		for (int i = 0; i < KTLS_NIC_NFEAT; i++) {
			if (want[i] < 0)
				continue;
			unsigned b = (unsigned)ss->idx[i];
			mask[b / 32] |= 1u << (b % 32);
			if (want[i])
				val[b / 32] |= 1u << (b % 32);
		}
		bs = nla_nest_start(m, ETHTOOL_A_FEATURES_WANTED | NLA_F_NESTED);
	}
	if (!bs || nla_put_u32(m, ETHTOOL_A_BITSET_SIZE, ss->count) < 0 ||
	    nla_put(m, ETHTOOL_A_BITSET_VALUE, (int)(words * 4), val) < 0 ||
	    nla_put(m, ETHTOOL_A_BITSET_MASK, (int)(words * 4), mask) < 0) {
		free(val);
		free(mask);
		if (m)
			nlmsg_free(m);
		return buf_seterr(err, errlen, bad ? "%s: this kernel lacks a requested feature"
						   : "%s: out of memory building the request",
				  ifname);
	}
	nla_nest_end(m, bs);
	free(val);
	free(mask);
	nlmsg_hdr(m)->nlmsg_flags |= NLM_F_ACK;
	struct nlx_req r = { .kind = NULL, .err = err, .errlen = errlen };
	if (ethnl_do(e, m, &r) < 0) {
		if (r.kerr == EPERM || r.kerr == EACCES)
			buf_seterr(err, errlen,
				   "%s: changing TLS offload features needs CAP_NET_ADMIN "
				   "(the kernel said: %s)", ifname, strerror(r.kerr));
		else if (r.kerr)
			buf_seterr(err, errlen, "%s: the kernel refused the change: %s%s%s", ifname,
				   strerror(r.kerr), r.kmsg[0] ? ": " : "", r.kmsg);
		return -1;
	}
	return 0;
}

int nic_send_set(const char *ifname, const int want[KTLS_NIC_NFEAT], char *err, size_t errlen)
{
	struct ethnl e;
	struct nic_strset ss;
	int ret = -1;

	if (!ifname || !*ifname || strlen(ifname) >= IF_NAMESIZE)
		return buf_seterr(err, errlen, "'%s' is not a valid interface name",
				  ifname ? ifname : "");
	if (ethnl_open(&e, err, errlen) < 0)
		return -1;
	if (get_feature_names(&e, &ss, err, errlen) == 0)
		ret = send_set(&e, &ss, ifname, want, err, errlen);
	ethnl_close(&e);
	return ret;
}

KTLS_API int ktls_nic_set(const char *ifname, const int want[KTLS_NIC_NFEAT],
			  struct ktls_nic *after, int *changed, char *err, size_t errlen)
{
	struct ethnl e;
	struct nic_strset ss;
	struct ktls_nic *cur = NULL;
	size_t n = 0;
	int ret = -1;

	*changed = 0;
	memset(after, 0, sizeof(*after));
	if (!ifname || !*ifname || strlen(ifname) >= IF_NAMESIZE)
		return buf_seterr(err, errlen, "'%s' is not a valid interface name",
				  ifname ? ifname : "");
	if (ethnl_open(&e, err, errlen) < 0)
		return -1;
	if (get_feature_names(&e, &ss, err, errlen) < 0 ||
	    query(&e, ifname, &ss, &cur, &n, err, errlen) < 0)
		goto out;
	if (n != 1) {
		buf_seterr(err, errlen, "%s: expected one features reply, got %zu", ifname, n);
		goto out;
	}
	int plan = nic_plan_set(&cur[0], want, ktls_have_net_admin(), err, errlen);
	if (plan < 0)
		goto out;
	if (plan > 0) {
		if (send_set(&e, &ss, ifname, want, err, errlen) < 0)
			goto out;
		*changed = 1;
		ktls_nic_list_free(cur, n);
		cur = NULL;
		n = 0;
		if (query(&e, ifname, &ss, &cur, &n, err, errlen) < 0)
			goto out;
		if (n != 1) {
			buf_seterr(err, errlen, "%s: expected one features reply, got %zu", ifname, n);
			goto out;
		}
	}
	*after = cur[0];
	after->counters = NULL;
	after->ncounters = 0;
	ret = 0;
out:
	ktls_nic_list_free(cur, n);
	ethnl_close(&e);
	return ret;
}
