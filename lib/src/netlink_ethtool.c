/*
 * netlink_ethtool.c - NIC TLS offload features over ethtool netlink.
 *
 * Feature bit positions are not ABI: they come from the kernel's
 * ETH_SS_FEATURES string set (ETHTOOL_MSG_STRSET_GET) on every run.
 * Replies may use compact bitsets (what we ask for) or verbose ones (bits
 * listed with their names); both are parsed.
 *
 * "fixed" follows ethtool -k: a feature the device cannot change
 * (not in hw_features) or one the core never changes (nochange).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <linux/capability.h>
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

const char *const nic_feat_name[NIC_NFEAT] = {
	[NIC_TLS_TX] = "tls-hw-tx-offload",
	[NIC_TLS_RX] = "tls-hw-rx-offload",
	[NIC_TLS_RECORD] = "tls-hw-record",
};

/* Largest bitset we accept: the kernel has ~70 features; be generous. */
#define MAX_BITS 4096

static struct nla_policy header_pol[ETHTOOL_A_HEADER_MAX + 1] = {
	[ETHTOOL_A_HEADER_DEV_INDEX] = { .type = NLA_U32 },
	[ETHTOOL_A_HEADER_DEV_NAME] = { .type = NLA_STRING },
	[ETHTOOL_A_HEADER_FLAGS] = { .type = NLA_U32 },
};
static struct nla_policy bitset_pol[ETHTOOL_A_BITSET_MAX + 1] = {
	[ETHTOOL_A_BITSET_NOMASK] = { .type = NLA_FLAG },
	[ETHTOOL_A_BITSET_SIZE] = { .type = NLA_U32 },
	[ETHTOOL_A_BITSET_BITS] = { .type = NLA_NESTED },
};
static struct nla_policy bit_pol[ETHTOOL_A_BITSET_BIT_MAX + 1] = {
	[ETHTOOL_A_BITSET_BIT_INDEX] = { .type = NLA_U32 },
	[ETHTOOL_A_BITSET_BIT_NAME] = { .type = NLA_STRING },
	[ETHTOOL_A_BITSET_BIT_VALUE] = { .type = NLA_FLAG },
};
static struct nla_policy stringset_pol[ETHTOOL_A_STRINGSET_MAX + 1] = {
	[ETHTOOL_A_STRINGSET_ID] = { .type = NLA_U32 },
	[ETHTOOL_A_STRINGSET_COUNT] = { .type = NLA_U32 },
	[ETHTOOL_A_STRINGSET_STRINGS] = { .type = NLA_NESTED },
};
static struct nla_policy string_pol[ETHTOOL_A_STRING_MAX + 1] = {
	[ETHTOOL_A_STRING_INDEX] = { .type = NLA_U32 },
	[ETHTOOL_A_STRING_VALUE] = { .type = NLA_STRING },
};

/* Attributes of a generic netlink message, strictly. */
static int genl_attrs(const struct nlmsghdr *nlh, struct nlattr **tb, int max,
		      const char *what, char *err, size_t errlen)
{
	if (nlx_check_msg(nlh, nlh->nlmsg_len, GENL_HDRLEN, err, errlen) < 0)
		return -1;
	const struct nlattr *head =
		(const struct nlattr *)((const char *)nlmsg_data(nlh) + GENL_HDRLEN);
	int len = (int)(nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN);
	return nlx_parse(tb, max, head, len, NULL, what, err, errlen);
}

static int nested(struct nlattr **tb, int max, const struct nlattr *nla,
		  const struct nla_policy *pol, const char *what, char *err, size_t errlen)
{
	return nlx_parse(tb, max, nla_data(nla), nla_len(nla), pol, what, err, errlen);
}

/* A string attribute copied safely (the policy checked the terminator). */
static void copy_str(char *dst, size_t cap, const struct nlattr *nla)
{
	size_t n = strnlen(nla_data(nla), (size_t)nla_len(nla));
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, nla_data(nla), n);
	dst[n] = '\0';
}

/* ---- string sets ---------------------------------------------------------- */

/*
 * Walk the STRINGSETS nest of a STRSET_GET reply, calling fn for every
 * string of set `id`.  *count gets the set's size.  -1 on malformed input.
 */
typedef int (*string_fn)(unsigned idx, const char *name, void *arg, char *err, size_t errlen);

static int walk_strset(const struct nlmsghdr *nlh, unsigned id, unsigned *count, int *found,
		       string_fn fn, void *arg, char *err, size_t errlen)
{
	struct nlattr *tb[ETHTOOL_A_STRSET_MAX + 1];
	struct nlattr *pos, *spos, *sets;
	int rem, srem;

	*found = 0;
	if (genl_attrs(nlh, tb, ETHTOOL_A_STRSET_MAX, "strset reply", err, errlen) < 0)
		return -1;
	sets = tb[ETHTOOL_A_STRSET_STRINGSETS];
	if (!sets)
		return 0;
	struct nlattr *chk[ETHTOOL_A_STRINGSETS_MAX + 1];
	if (nested(chk, ETHTOOL_A_STRINGSETS_MAX, sets, NULL, "string sets", err, errlen) < 0)
		return -1;
	nla_for_each_nested(pos, sets, rem) {
		struct nlattr *st[ETHTOOL_A_STRINGSET_MAX + 1];
		if ((nla_type(pos)) != ETHTOOL_A_STRINGSETS_STRINGSET)
			continue;
		if (nested(st, ETHTOOL_A_STRINGSET_MAX, pos, stringset_pol, "string set", err,
			   errlen) < 0)
			return -1;
		if (!st[ETHTOOL_A_STRINGSET_ID] || nla_get_u32(st[ETHTOOL_A_STRINGSET_ID]) != id)
			continue;
		*found = 1;
		*count = st[ETHTOOL_A_STRINGSET_COUNT] ? nla_get_u32(st[ETHTOOL_A_STRINGSET_COUNT]) : 0;
		if (*count > MAX_BITS * 16)
			return buf_seterr(err, errlen, "string set %u claims %u strings", id, *count);
		if (!st[ETHTOOL_A_STRINGSET_STRINGS])
			continue;
		struct nlattr *chk2[ETHTOOL_A_STRINGS_MAX + 1];
		if (nested(chk2, ETHTOOL_A_STRINGS_MAX, st[ETHTOOL_A_STRINGSET_STRINGS], NULL,
			   "strings", err, errlen) < 0)
			return -1;
		nla_for_each_nested(spos, st[ETHTOOL_A_STRINGSET_STRINGS], srem) {
			struct nlattr *s[ETHTOOL_A_STRING_MAX + 1];
			char name[ETH_GSTRING_LEN + 1];
			if (nla_type(spos) != ETHTOOL_A_STRINGS_STRING)
				continue;
			if (nested(s, ETHTOOL_A_STRING_MAX, spos, string_pol, "string", err,
				   errlen) < 0)
				return -1;
			if (!s[ETHTOOL_A_STRING_INDEX] || !s[ETHTOOL_A_STRING_VALUE])
				return buf_seterr(err, errlen, "string without index or value");
			unsigned idx = nla_get_u32(s[ETHTOOL_A_STRING_INDEX]);
			if (idx >= *count)
				return buf_seterr(err, errlen, "string index %u beyond set size %u",
						  idx, *count);
			copy_str(name, sizeof(name), s[ETHTOOL_A_STRING_VALUE]);
			if (fn(idx, name, arg, err, errlen) < 0)
				return -1;
		}
	}
	return 0;
}

static int feat_string(unsigned idx, const char *name, void *arg, char *err, size_t errlen)
{
	struct nic_strset *ss = arg;

	(void)err;
	(void)errlen;
	for (int i = 0; i < NIC_NFEAT; i++)
		if (!strcmp(name, nic_feat_name[i]))
			ss->idx[i] = (int)idx;
	return 0;
}

int nic_parse_strset(const struct nlmsghdr *nlh, struct nic_strset *out, char *err,
		     size_t errlen)
{
	int found;

	out->count = 0;
	for (int i = 0; i < NIC_NFEAT; i++)
		out->idx[i] = -1;
	if (walk_strset(nlh, ETH_SS_FEATURES, &out->count, &found, feat_string, out, err,
			errlen) < 0)
		return -1;
	if (!found)
		return buf_seterr(err, errlen, "strset reply has no feature string set");
	return 0;
}

struct stat_names {
	struct nic_counter *names;
	unsigned *idx;
	size_t n;
};

static int stat_string(unsigned idx, const char *name, void *arg, char *err, size_t errlen)
{
	struct stat_names *sn = arg;

	if (!strcasestr(name, "tls"))
		return 0;
	struct nic_counter *nn = realloc(sn->names, (sn->n + 1) * sizeof(*nn));
	if (!nn)
		return buf_seterr(err, errlen, "out of memory");
	sn->names = nn;
	unsigned *ni = realloc(sn->idx, (sn->n + 1) * sizeof(*ni));
	if (!ni)
		return buf_seterr(err, errlen, "out of memory");
	sn->idx = ni;
	snprintf(nn[sn->n].name, sizeof(nn[sn->n].name), "%s", name);
	nn[sn->n].value = 0;
	ni[sn->n] = idx;
	sn->n++;
	return 0;
}

int nic_parse_stat_names(const struct nlmsghdr *nlh, struct nic_counter **names,
			 unsigned **idx, size_t *n, unsigned *total, char *err, size_t errlen)
{
	struct stat_names sn = { 0 };
	int found;

	*total = 0;
	if (walk_strset(nlh, ETH_SS_STATS, total, &found, stat_string, &sn, err, errlen) < 0) {
		free(sn.names);
		free(sn.idx);
		return -1;
	}
	*names = sn.names;
	*idx = sn.idx;
	*n = sn.n;
	return 0;
}

/* ---- feature bitsets ---------------------------------------------------- */

/*
 * Value of bit `idx` (or the bit called `name`) in a bitset attribute:
 * 1, 0, or -1 when malformed.
 */
static int bitset_get(const struct nlattr *bs, int idx, const char *name, int *seen,
		      char *err, size_t errlen)
{
	struct nlattr *tb[ETHTOOL_A_BITSET_MAX + 1];
	struct nlattr *pos;
	int rem;

	if (nested(tb, ETHTOOL_A_BITSET_MAX, bs, bitset_pol, "bitset", err, errlen) < 0)
		return -1;
	if (tb[ETHTOOL_A_BITSET_VALUE]) {
		/* Compact: u32 words, least significant first. */
		if (!tb[ETHTOOL_A_BITSET_SIZE])
			return buf_seterr(err, errlen, "compact bitset without a size");
		uint32_t size = nla_get_u32(tb[ETHTOOL_A_BITSET_SIZE]);
		if (size > MAX_BITS)
			return buf_seterr(err, errlen, "bitset of %u bits", size);
		size_t words = (size + 31) / 32;
		if ((size_t)nla_len(tb[ETHTOOL_A_BITSET_VALUE]) < words * 4)
			return buf_seterr(err, errlen,
					  "bitset value has %d bytes, its size needs %zu",
					  nla_len(tb[ETHTOOL_A_BITSET_VALUE]), words * 4);
		if (idx < 0 || (uint32_t)idx >= size)
			return 0;
		*seen = 1;
		uint32_t w;
		memcpy(&w, (const char *)nla_data(tb[ETHTOOL_A_BITSET_VALUE]) + (idx / 32) * 4, 4);
		return (w >> (idx % 32)) & 1;
	}
	if (!tb[ETHTOOL_A_BITSET_BITS])
		return 0;
	/* Verbose: listed bits; without a mask, listed means set. */
	int nomask = tb[ETHTOOL_A_BITSET_NOMASK] != NULL;
	struct nlattr *chk[ETHTOOL_A_BITSET_BITS_MAX + 1];
	if (nested(chk, ETHTOOL_A_BITSET_BITS_MAX, tb[ETHTOOL_A_BITSET_BITS], NULL, "bitset bits",
		   err, errlen) < 0)
		return -1;
	nla_for_each_nested(pos, tb[ETHTOOL_A_BITSET_BITS], rem) {
		struct nlattr *b[ETHTOOL_A_BITSET_BIT_MAX + 1];
		char bname[ETH_GSTRING_LEN + 1] = "";
		if (nla_type(pos) != ETHTOOL_A_BITSET_BITS_BIT)
			continue;
		if (nested(b, ETHTOOL_A_BITSET_BIT_MAX, pos, bit_pol, "bitset bit", err, errlen) < 0)
			return -1;
		if (b[ETHTOOL_A_BITSET_BIT_NAME])
			copy_str(bname, sizeof(bname), b[ETHTOOL_A_BITSET_BIT_NAME]);
		/* The index when the string set gave one, else the name. */
		int match = idx >= 0 ? b[ETHTOOL_A_BITSET_BIT_INDEX] &&
					       nla_get_u32(b[ETHTOOL_A_BITSET_BIT_INDEX]) ==
						       (uint32_t)idx
				     : bname[0] && !strcmp(bname, name);
		if (!match)
			continue;
		*seen = 1;
		return nomask || b[ETHTOOL_A_BITSET_BIT_VALUE] != NULL;
	}
	return 0;
}

int nic_parse_features(const struct nlmsghdr *nlh, const struct nic_strset *ss,
		       struct nic_info *out, char *err, size_t errlen)
{
	struct nlattr *tb[ETHTOOL_A_FEATURES_MAX + 1];
	struct nlattr *hd[ETHTOOL_A_HEADER_MAX + 1];

	memset(out, 0, sizeof(*out));
	if (genl_attrs(nlh, tb, ETHTOOL_A_FEATURES_MAX, "features reply", err, errlen) < 0)
		return -1;
	if (!tb[ETHTOOL_A_FEATURES_HEADER])
		return buf_seterr(err, errlen, "features reply without a device header");
	if (nested(hd, ETHTOOL_A_HEADER_MAX, tb[ETHTOOL_A_FEATURES_HEADER], header_pol,
		   "device header", err, errlen) < 0)
		return -1;
	if (!hd[ETHTOOL_A_HEADER_DEV_INDEX] || !hd[ETHTOOL_A_HEADER_DEV_NAME])
		return buf_seterr(err, errlen, "device header without index or name");
	out->ifindex = (int)nla_get_u32(hd[ETHTOOL_A_HEADER_DEV_INDEX]);
	copy_str(out->ifname, sizeof(out->ifname), hd[ETHTOOL_A_HEADER_DEV_NAME]);
	if (!tb[ETHTOOL_A_FEATURES_HW] || !tb[ETHTOOL_A_FEATURES_ACTIVE])
		return buf_seterr(err, errlen, "features reply for %s lacks the hw or active set",
				  out->ifname);

	for (int i = 0; i < NIC_NFEAT; i++) {
		struct nic_feature *f = &out->f[i];
		int idx = ss ? ss->idx[i] : -1, seen = 0;
		int v[4];
		static const int attr[4] = { ETHTOOL_A_FEATURES_HW, ETHTOOL_A_FEATURES_WANTED,
					     ETHTOOL_A_FEATURES_ACTIVE,
					     ETHTOOL_A_FEATURES_NOCHANGE };
		for (int k = 0; k < 4; k++) {
			v[k] = 0;
			if (!tb[attr[k]])
				continue;
			v[k] = bitset_get(tb[attr[k]], idx, nic_feat_name[i], &seen, err, errlen);
			if (v[k] < 0)
				return -1;
		}
		f->known = idx >= 0 || seen;
		f->hw = v[0];
		f->wanted = v[1];
		f->active = v[2];
		f->fixed = v[3] || !v[0];
	}
	return 0;
}

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
	for (int i = 0; i < NIC_NFEAT; i++)
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
	struct nic_info *v;
	size_t n;
};

static int on_features(const struct nlmsghdr *nlh, void *arg, char *err, size_t errlen)
{
	struct feat_acc *a = arg;
	struct nic_info *nv = realloc(a->v, (a->n + 1) * sizeof(*nv));

	if (!nv)
		return buf_seterr(err, errlen, "out of memory");
	a->v = nv;
	if (nic_parse_features(nlh, a->ss, &nv[a->n], err, errlen) < 0)
		return -1;
	a->n++;
	return 0;
}

struct stat_acc {
	struct nic_counter *names;
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
static int read_counters(struct ethnl *e, struct nic_info *ni, char *err, size_t errlen)
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
		 struct nic_info **out, size_t *n, char *err, size_t errlen)
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
		nic_list_free(a.v, a.n);
		return -1;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

static int cmp_ifindex(const void *a, const void *b)
{
	const struct nic_info *x = a, *y = b;
	return (x->ifindex > y->ifindex) - (x->ifindex < y->ifindex);
}

int nic_query(const char *ifname, struct nic_info **out, size_t *n, char *err, size_t errlen)
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
			nic_list_free(*out, *n);
			*out = NULL;
			*n = 0;
			ethnl_close(&e);
			return -1;
		}
	ethnl_close(&e);
	return 0;
}

void nic_list_free(struct nic_info *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].counters);
	free(v);
}

/* ---- changing features ------------------------------------------------- */

int nl_have_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[CAP_NET_ADMIN / 32].effective >> (CAP_NET_ADMIN % 32)) & 1;
}

int nic_plan_set(const struct nic_info *cur, const int want[NIC_NFEAT], int have_cap,
		 char *err, size_t errlen)
{
	int change = 0;

	for (int i = 0; i < NIC_NFEAT; i++) {
		const struct nic_feature *f = &cur->f[i];
		const char *nm = nic_feat_name[i];
		if (want[i] < 0)
			continue;
		if (!f->known)
			return buf_seterr(err, errlen,
					  "%s: cannot set %s %s: this kernel has no such feature",
					  cur->ifname, nm, want[i] ? "on" : "off");
		if (!f->hw && !f->active && want[i])
			return buf_seterr(err, errlen,
					  "%s: cannot set %s on: the device does not support it "
					  "(not among its hardware features)",
					  cur->ifname, nm);
		if (f->fixed && f->active != want[i])
			return buf_seterr(err, errlen, "%s: cannot set %s %s: the feature is fixed %s "
					  "on this device",
					  cur->ifname, nm, want[i] ? "on" : "off",
					  f->active ? "on" : "off");
		if (!f->fixed && f->wanted != want[i])
			change = 1;
	}
	if (change && !have_cap)
		return buf_seterr(err, errlen,
				  "%s: changing TLS offload features needs CAP_NET_ADMIN "
				  "(run as root or grant the capability)", cur->ifname);
	return change;
}

/* One FEATURES_SET request changing exactly the bits in want[] (acked). */
static int send_set(struct ethnl *e, const struct nic_strset *ss, const char *ifname,
		    const int want[NIC_NFEAT], char *err, size_t errlen)
{
	/* Compact value/mask: only the bits in the mask change. */
	size_t words = (ss->count + 31) / 32;
	uint32_t *val = calloc(words, 4), *mask = calloc(words, 4);
	struct nl_msg *m = ethnl_msg(e, ETHTOOL_MSG_FEATURES_SET, 0, ETHTOOL_A_FEATURES_HEADER,
				     ifname, 0,
				     ETHTOOL_FLAG_COMPACT_BITSETS | ETHTOOL_FLAG_OMIT_REPLY);
	struct nlattr *bs = NULL;
	int bad = 0;

	for (int i = 0; i < NIC_NFEAT; i++)
		if (want[i] >= 0 && (ss->idx[i] < 0 || (unsigned)ss->idx[i] >= ss->count))
			bad = 1;
	if (val && mask && m && !bad) {
		for (int i = 0; i < NIC_NFEAT; i++) {
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

int nic_send_set(const char *ifname, const int want[NIC_NFEAT], char *err, size_t errlen)
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

int nic_set(const char *ifname, const int want[NIC_NFEAT], struct nic_info *after,
	    int *changed, char *err, size_t errlen)
{
	struct ethnl e;
	struct nic_strset ss;
	struct nic_info *cur = NULL;
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
	int plan = nic_plan_set(&cur[0], want, nl_have_net_admin(), err, errlen);
	if (plan < 0)
		goto out;
	if (plan > 0) {
		if (send_set(&e, &ss, ifname, want, err, errlen) < 0)
			goto out;
		*changed = 1;
		nic_list_free(cur, n);
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
	nic_list_free(cur, n);
	ethnl_close(&e);
	return ret;
}
