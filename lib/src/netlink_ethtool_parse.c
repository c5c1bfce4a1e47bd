/*
 * netlink_ethtool_parse.c - reading ethtool netlink replies about NIC TLS
 * offload, and deciding whether a requested change can be made.
 *
 * Feature bit positions are not ABI: they come from the kernel's
 * ETH_SS_FEATURES string set (ETHTOOL_MSG_STRSET_GET) on every run.
 * Replies may use compact bitsets (what we ask for) or verbose ones (bits
 * listed with their names); both are parsed.
 *
 * "fixed" follows ethtool -k: a feature the device cannot change
 * (not in hw_features) or one the core never changes (nochange).
 *
 * Nothing here talks to the kernel (netlink_ethtool.c does), so tests feed
 * these parsers captured and hand-built replies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/ethtool.h>
#include <linux/ethtool_netlink.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/genl/genl.h>

#include "internal.h"
#include "netlink.h"

const char *const nic_feat_name[KTLS_NIC_NFEAT] = {
	[KTLS_NIC_TLS_TX] = "tls-hw-tx-offload",
	[KTLS_NIC_TLS_RX] = "tls-hw-rx-offload",
	[KTLS_NIC_TLS_RECORD] = "tls-hw-record",
};

KTLS_API const char *ktls_nic_feature_name(int feature)
{
	if (feature < 0 || feature >= KTLS_NIC_NFEAT)
		return "unknown";
	return nic_feat_name[feature];
}

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
	for (int i = 0; i < KTLS_NIC_NFEAT; i++)
		if (!strcmp(name, nic_feat_name[i]))
			ss->idx[i] = (int)idx;
	return 0;
}

int nic_parse_strset(const struct nlmsghdr *nlh, struct nic_strset *out, char *err,
		     size_t errlen)
{
	int found;

	out->count = 0;
	for (int i = 0; i < KTLS_NIC_NFEAT; i++)
		out->idx[i] = -1;
	if (walk_strset(nlh, ETH_SS_FEATURES, &out->count, &found, feat_string, out, err,
			errlen) < 0)
		return -1;
	if (!found)
		return buf_seterr(err, errlen, "strset reply has no feature string set");
	return 0;
}

struct stat_names {
	struct ktls_nic_counter *names;
	unsigned *idx;
	size_t n;
};

static int stat_string(unsigned idx, const char *name, void *arg, char *err, size_t errlen)
{
	struct stat_names *sn = arg;

	if (!strcasestr(name, "tls"))
		return 0;
	struct ktls_nic_counter *nn = realloc(sn->names, (sn->n + 1) * sizeof(*nn));
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

int nic_parse_stat_names(const struct nlmsghdr *nlh, struct ktls_nic_counter **names,
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
		       struct ktls_nic *out, char *err, size_t errlen)
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

	for (int i = 0; i < KTLS_NIC_NFEAT; i++) {
		struct ktls_nic_feature *f = &out->f[i];
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

/* ---- changing features ------------------------------------------------- */

int nic_plan_set(const struct ktls_nic *cur, const int want[KTLS_NIC_NFEAT], int have_cap,
		 char *err, size_t errlen)
{
	int change = 0;

	for (int i = 0; i < KTLS_NIC_NFEAT; i++) {
		const struct ktls_nic_feature *f = &cur->f[i];
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
