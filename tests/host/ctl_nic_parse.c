/*
 * ctl_nic_parse.c - ethtool netlink parsing against stored replies
 * (tests/fixtures/netlink/: host-* captured from a real kernel by
 * capture.py, hand-* built from the documented attribute layout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <linux/netlink.h>

#include "netlink.h"

struct fixture {
	unsigned char *buf;
	size_t len;
	const struct nlmsghdr *msg[64];
	size_t n;
};

static void load(const char *name, struct fixture *f)
{
	const char *dir = getenv("KTLS_TEST_FIXTURES");
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/fixtures/netlink", name);
	FILE *fp = fopen(path, "rb");
	cr_assert_not_null(fp, "fixture %s missing", path);
	f->buf = malloc(1 << 16);
	f->len = fread(f->buf, 1, 1 << 16, fp);
	fclose(fp);
	cr_assert_gt(f->len, 0);
	f->n = 0;
	for (size_t off = 0; off + NLMSG_HDRLEN <= f->len && f->n < 64;) {
		const struct nlmsghdr *h = (const void *)(f->buf + off);
		cr_assert_leq(off + h->nlmsg_len, f->len, "fixture %s is cut short", name);
		f->msg[f->n++] = h;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
}

static void strset(struct nic_strset *ss)
{
	struct fixture f;
	char err[256];

	load("host-strset-features.bin", &f);
	cr_assert_eq(nic_parse_strset(f.msg[0], ss, err, sizeof(err)), 0, "%s", err);
	free(f.buf);
}

Test(nic_parse, public_feature_names_are_the_kernels)
{
	for (int i = 0; i < KTLS_NIC_NFEAT; i++)
		cr_expect_str_eq(ktls_nic_feature_name(i), nic_feat_name[i]);
	cr_expect_str_eq(ktls_nic_feature_name(KTLS_NIC_TLS_RECORD), "tls-hw-record");
	cr_expect_str_eq(ktls_nic_feature_name(-1), "unknown");
	cr_expect_str_eq(ktls_nic_feature_name(KTLS_NIC_NFEAT), "unknown");
}

Test(nic_parse, host_strset_names_the_three_tls_features)
{
	struct nic_strset ss;

	strset(&ss);
	cr_assert_gt(ss.count, 40u, "a real kernel has dozens of features");
	for (int i = 0; i < KTLS_NIC_NFEAT; i++) {
		cr_assert_geq(ss.idx[i], 0, "%s not in the string set", nic_feat_name[i]);
		cr_assert_lt((unsigned)ss.idx[i], ss.count);
	}
	cr_assert_neq(ss.idx[KTLS_NIC_TLS_TX], ss.idx[KTLS_NIC_TLS_RX]);
	cr_assert_neq(ss.idx[KTLS_NIC_TLS_RX], ss.idx[KTLS_NIC_TLS_RECORD]);
}

Test(nic_parse, host_devices_have_no_tls_offload)
{
	struct nic_strset ss;
	struct fixture f;
	struct ktls_nic ni;
	char err[256];
	int saw_lo = 0;

	strset(&ss);
	load("host-features-compact.bin", &f);
	cr_assert_geq(f.n, 1u);
	for (size_t i = 0; i < f.n; i++) {
		cr_assert_eq(nic_parse_features(f.msg[i], &ss, &ni, err, sizeof(err)), 0, "%s", err);
		cr_assert_gt(ni.ifindex, 0);
		saw_lo |= !strcmp(ni.ifname, "lo");
		for (int k = 0; k < KTLS_NIC_NFEAT; k++) {
			cr_expect(ni.f[k].known);
			cr_expect(!ni.f[k].hw, "%s %s", ni.ifname, nic_feat_name[k]);
			cr_expect(!ni.f[k].active);
			cr_expect(ni.f[k].fixed);
		}
	}
	cr_assert(saw_lo);
	free(f.buf);
}

/*
 * The compact word/bit order we decode must agree, bit for bit, with the
 * kernel's own verbose listing of the same state, over every feature.
 */
Test(nic_parse, compact_and_verbose_replies_agree_on_every_bit)
{
	struct nic_strset ss;
	struct fixture c, v;
	char err[256];
	unsigned active_bits = 0;

	strset(&ss);
	load("host-features-compact.bin", &c);
	load("host-features-verbose.bin", &v);
	cr_assert_eq(c.n, v.n);
	for (unsigned bit = 0; bit < ss.count; bit++) {
		struct nic_strset one = ss;
		one.idx[0] = (int)bit;
		for (size_t i = 0; i < c.n; i++) {
			struct ktls_nic a, b;
			cr_assert_eq(nic_parse_features(c.msg[i], &one, &a, err, sizeof(err)), 0, "%s",
				     err);
			cr_assert_eq(nic_parse_features(v.msg[i], &one, &b, err, sizeof(err)), 0, "%s",
				     err);
			cr_assert_str_eq(a.ifname, b.ifname);
			cr_assert_eq(a.f[0].hw, b.f[0].hw, "%s bit %u hw", a.ifname, bit);
			cr_assert_eq(a.f[0].wanted, b.f[0].wanted, "%s bit %u wanted", a.ifname, bit);
			cr_assert_eq(a.f[0].active, b.f[0].active, "%s bit %u active", a.ifname, bit);
			cr_assert_eq(a.f[0].fixed, b.f[0].fixed, "%s bit %u fixed", a.ifname, bit);
			active_bits += (unsigned)a.f[0].active;
		}
	}
	cr_assert_gt(active_bits, 5u, "real devices have active features: the check compared something");
	free(c.buf);
	free(v.buf);
}

static void expect_hw_port(const struct ktls_nic *ni)
{
	cr_assert_str_eq(ni->ifname, "enp1s0f0np0");
	cr_assert_eq(ni->ifindex, 7);
	const struct ktls_nic_feature *tx = &ni->f[KTLS_NIC_TLS_TX], *rx = &ni->f[KTLS_NIC_TLS_RX];
	const struct ktls_nic_feature *rec = &ni->f[KTLS_NIC_TLS_RECORD];
	cr_expect(tx->known && tx->hw && tx->wanted && tx->active && !tx->fixed);
	cr_expect(rx->known && rx->hw && rx->wanted && !rx->active && !rx->fixed);
	cr_expect(!rec->hw && !rec->active && rec->fixed);
}

Test(nic_parse, hand_built_offload_capable_port_compact)
{
	struct nic_strset ss;
	struct fixture f;
	struct ktls_nic ni;
	char err[256];

	strset(&ss);
	load("hand-features-tls-hw.bin", &f);
	cr_assert_eq(nic_parse_features(f.msg[0], &ss, &ni, err, sizeof(err)), 0, "%s", err);
	expect_hw_port(&ni);
	free(f.buf);
}

Test(nic_parse, hand_built_offload_capable_port_verbose_by_name)
{
	struct nic_strset none = { .count = 0, .idx = { -1, -1, -1 } };
	struct fixture f;
	struct ktls_nic ni;
	char err[256];

	/* Verbose bitsets name their bits: no string set needed. */
	load("hand-features-tls-hw-verbose.bin", &f);
	cr_assert_eq(nic_parse_features(f.msg[0], &none, &ni, err, sizeof(err)), 0, "%s", err);
	expect_hw_port(&ni);
	free(f.buf);
}

Test(nic_parse, plan_refuses_with_interface_feature_and_reason)
{
	struct nic_strset ss;
	struct fixture f;
	struct ktls_nic hw, lo = { 0 };
	char err[256];
	int want[KTLS_NIC_NFEAT];

	strset(&ss);
	load("hand-features-tls-hw.bin", &f);
	cr_assert_eq(nic_parse_features(f.msg[0], &ss, &hw, err, sizeof(err)), 0, "%s", err);
	free(f.buf);

	/* Already wanted: nothing to do, no privilege needed. */
	memcpy(want, (int[]){ 1, -1, -1 }, sizeof(want));
	cr_expect_eq(nic_plan_set(&hw, want, 0, err, sizeof(err)), 0);
	/* A real change with CAP_NET_ADMIN. */
	memcpy(want, (int[]){ 0, 1, -1 }, sizeof(want));
	cr_expect_eq(nic_plan_set(&hw, want, 1, err, sizeof(err)), 1);
	/* ... and without it. */
	cr_expect_eq(nic_plan_set(&hw, want, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "enp1s0f0np0") && strstr(err, "CAP_NET_ADMIN"), "%s", err);
	/* The port has no TOE mode. */
	memcpy(want, (int[]){ -1, -1, 1 }, sizeof(want));
	cr_expect_eq(nic_plan_set(&hw, want, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "tls-hw-record") && strstr(err, "does not support"), "%s", err);

	/* A device without the feature, as loopback and veth are. */
	snprintf(lo.ifname, sizeof(lo.ifname), "lo");
	for (int k = 0; k < KTLS_NIC_NFEAT; k++)
		lo.f[k] = (struct ktls_nic_feature){ .known = 1, .fixed = 1 };
	memcpy(want, (int[]){ 1, -1, -1 }, sizeof(want));
	cr_expect_eq(nic_plan_set(&lo, want, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "lo:") && strstr(err, "tls-hw-tx-offload") &&
			  strstr(err, "does not support"), "%s", err);
	/* Turning off what is off is no change, on any device. */
	memcpy(want, (int[]){ 0, 0, 0 }, sizeof(want));
	cr_expect_eq(nic_plan_set(&lo, want, 0, err, sizeof(err)), 0);

	/* Fixed on (a TOE card that cannot turn record mode off). */
	lo.f[KTLS_NIC_TLS_RECORD].active = 1;
	memcpy(want, (int[]){ -1, -1, 0 }, sizeof(want));
	cr_expect_eq(nic_plan_set(&lo, want, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "fixed on"), "%s", err);
	/* A kernel that predates the feature name. */
	lo.f[KTLS_NIC_TLS_RX].known = 0;
	memcpy(want, (int[]){ -1, 1, -1 }, sizeof(want));
	cr_expect_eq(nic_plan_set(&lo, want, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "no such feature"), "%s", err);
}

Test(nic_parse, driver_stat_names_with_tls_are_picked_with_their_index)
{
	struct fixture f;
	struct ktls_nic_counter *names;
	unsigned *idx, total;
	size_t n;
	char err[256];

	load("hand-strset-stats-tls.bin", &f);
	cr_assert_eq(nic_parse_stat_names(f.msg[0], &names, &idx, &n, &total, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(total, 7u);
	cr_assert_eq(n, 5u);
	cr_expect_str_eq(names[0].name, "tx_tls_encrypted_packets");
	cr_expect_eq(idx[0], 1u);
	cr_expect_str_eq(names[4].name, "rx_tls_resync_req_pkt");
	cr_expect_eq(idx[4], 5u);
	free(names);
	free(idx);
	free(f.buf);

	/* A real virtio/loopback device: parses, and has no TLS stats. */
	load("host-strset-stats-eth0.bin", &f);
	cr_assert_eq(nic_parse_stat_names(f.msg[0], &names, &idx, &n, &total, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_eq(n, 0u);
	free(names);
	free(idx);
	free(f.buf);
}

/* Offsets where top-level attributes of a genl message begin or end. */
static int on_boundary(const struct nlmsghdr *h, size_t cut)
{
	size_t off = NLMSG_HDRLEN + 4;
	if (cut <= off)
		return cut == off;
	while (off < h->nlmsg_len) {
		const struct nlattr *a = (const void *)((const char *)h + off);
		size_t end = off + a->nla_len;
		if (cut == end || cut == NLMSG_ALIGN(end))
			return 1;
		if (cut < end)
			return 0;
		off = NLMSG_ALIGN(end);
	}
	return 0;
}

/* Every cut inside an attribute is an error with a reason, never a crash. */
static void truncations(const char *name, int features)
{
	struct nic_strset ss;
	struct fixture f;
	char err[256];

	strset(&ss);
	load(name, &f);
	const struct nlmsghdr *h = f.msg[0];
	unsigned char *copy = malloc(h->nlmsg_len);
	int refused = 0;
	for (size_t cut = NLMSG_HDRLEN; cut < h->nlmsg_len; cut++) {
		memcpy(copy, h, cut);
		((struct nlmsghdr *)copy)->nlmsg_len = (unsigned)cut;
		struct ktls_nic ni;
		struct nic_strset out;
		err[0] = '\0';
		int r = features ? nic_parse_features((void *)copy, &ss, &ni, err, sizeof(err))
				 : nic_parse_strset((void *)copy, &out, err, sizeof(err));
		if (!on_boundary(h, cut)) {
			cr_assert_eq(r, -1, "%s cut at %zu of %u parsed", name, cut, h->nlmsg_len);
			cr_assert(err[0], "no reason given");
			refused++;
		}
	}
	cr_assert_gt(refused, 10);
	free(copy);
	free(f.buf);
}

Test(nic_parse, truncated_features_replies_are_refused)
{
	truncations("hand-features-tls-hw.bin", 1);
	truncations("hand-features-tls-hw-verbose.bin", 1);
}

Test(nic_parse, truncated_strset_replies_are_refused)
{
	truncations("host-strset-features.bin", 0);
}

/* Attribute `inner` inside the top-level nest `outer` of a genl message. */
static struct nlattr *find_attr(unsigned char *p, size_t len, unsigned outer, unsigned inner)
{
	size_t off = 0;
	while (off + 4 <= len) {
		struct nlattr *a = (void *)(p + off);
		if (a->nla_len < 4 || off + a->nla_len > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == outer) {
			for (size_t o = 4; o + 4 <= a->nla_len;) {
				struct nlattr *b = (void *)(p + off + o);
				if ((b->nla_type & NLA_TYPE_MASK) == inner)
					return b;
				o += NLA_ALIGN(b->nla_len);
			}
			return NULL;
		}
		off += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

Test(nic_parse, inner_overruns_and_short_bitsets_are_refused)
{
	struct nic_strset ss;
	struct fixture f;
	struct ktls_nic ni;
	char err[256];

	strset(&ss);
	load("hand-features-tls-hw.bin", &f);
	unsigned char *body = f.buf + NLMSG_HDRLEN + 4;
	size_t blen = f.msg[0]->nlmsg_len - NLMSG_HDRLEN - 4;

	/* The HW bitset's SIZE claims more bits than its VALUE carries. */
	struct nlattr *size = find_attr(body, blen, 2 /* FEATURES_HW */, 2 /* BITSET_SIZE */);
	cr_assert_not_null(size);
	uint32_t big = 4000;
	memcpy((char *)size + 4, &big, 4);
	cr_assert_eq(nic_parse_features(f.msg[0], &ss, &ni, err, sizeof(err)), -1);
	cr_expect(strstr(err, "bitset value"), "%s", err);
	free(f.buf);

	/* An attribute inside the header nest runs past its parent. */
	load("hand-features-tls-hw.bin", &f);
	body = f.buf + NLMSG_HDRLEN + 4;
	struct nlattr *name = find_attr(body, blen, 1 /* FEATURES_HEADER */, 2 /* DEV_NAME */);
	cr_assert_not_null(name);
	name->nla_len += 64;
	cr_assert_eq(nic_parse_features(f.msg[0], &ss, &ni, err, sizeof(err)), -1);
	cr_expect(strstr(err, "truncated"), "%s", err);
	free(f.buf);

	/* A message that claims more bytes than were received. */
	load("hand-features-tls-hw.bin", &f);
	cr_assert_eq(nlx_check_msg(f.msg[0], f.msg[0]->nlmsg_len - 1, 4, err, sizeof(err)), -1);
	cr_expect(strstr(err, "truncated"), "%s", err);
	free(f.buf);
}

/*
 * Captured in the rig's guests (Debian 6.12 and 7.3): loopback and a veth
 * pair.  7.3 no longer names tls-hw-record (TOE) at all.
 */
static void guest_features(const char *prefix, int has_record)
{
	struct fixture s, f;
	struct nic_strset ss;
	struct ktls_nic ni;
	char err[256], name[128];
	int veth = 0;

	snprintf(name, sizeof(name), "%s-strset-features.bin", prefix);
	load(name, &s);
	cr_assert_eq(nic_parse_strset(s.msg[0], &ss, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(ss.idx[KTLS_NIC_TLS_RECORD] >= 0, has_record, "%s", prefix);
	snprintf(name, sizeof(name), "%s-features-compact.bin", prefix);
	load(name, &f);
	for (size_t i = 0; i < f.n; i++) {
		cr_assert_eq(nic_parse_features(f.msg[i], &ss, &ni, err, sizeof(err)), 0, "%s", err);
		veth += !strncmp(ni.ifname, "ktv", 3);
		for (int k = 0; k < KTLS_NIC_NFEAT; k++) {
			cr_expect(!ni.f[k].hw && !ni.f[k].active && ni.f[k].fixed, "%s %s %s", prefix,
				  ni.ifname, nic_feat_name[k]);
			cr_expect_eq(ni.f[k].known, k != KTLS_NIC_TLS_RECORD || has_record);
		}
	}
	cr_expect_eq(veth, 2);
	free(s.buf);
	free(f.buf);
}

Test(nic_parse, real_guest_veth_and_loopback_have_no_tls_offload)
{
	guest_features("guest612", 1);
	guest_features("guest73", 0);
}
