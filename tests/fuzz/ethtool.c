/*
 * ethtool - ethtool generic-netlink replies through the parsers of
 * netlink_ethtool_parse.c, as a stream of messages the way ktls_nic_query
 * receives them: every message goes to nic_parse_strset (a success becomes
 * the feature string set of what follows, as the STRSET_GET reply precedes
 * the FEATURES_GET ones), nic_parse_stat_names (a device's ETH_SS_STATS)
 * and nic_parse_features (compact or verbose bitsets; with the string set
 * so far, and without one, matching by name).  Messages are delivered as
 * libnl does: each whole within its nlmsg_len, in a buffer of that size.
 */
#include <string.h>

#include "ktls_ctl.h"
#include "netlink.h"
#include "fuzz.h"

struct state {
	struct nic_strset ss;
	int have_ss;
};

static void check_nic(const struct ktls_nic *ni)
{
	FUZZ_ASSERT(memchr(ni->ifname, '\0', sizeof(ni->ifname)));
	for (int i = 0; i < KTLS_NIC_NFEAT; i++)
		FUZZ_ASSERT(ni->f[i].hw <= 1 && ni->f[i].active <= 1 && ni->f[i].wanted <= 1);
}

static void one(const struct nlmsghdr *nlh, void *arg)
{
	struct state *st = arg;
	struct nic_strset ss;
	struct ktls_nic ni;
	struct ktls_nic_counter *names = NULL;
	unsigned *idx = NULL, total = 0;
	size_t n = 0;
	char err[256];

	if (nic_parse_strset(nlh, &ss, err, sizeof(err)) == 0) {
		for (int i = 0; i < KTLS_NIC_NFEAT; i++)
			FUZZ_ASSERT(ss.idx[i] >= -1 && (ss.idx[i] < 0 || (unsigned)ss.idx[i] < ss.count));
		st->ss = ss;
		st->have_ss = 1;
	}
	if (nic_parse_stat_names(nlh, &names, &idx, &n, &total, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n; i++) {
			FUZZ_ASSERT(idx[i] < total);
			FUZZ_ASSERT(memchr(names[i].name, '\0', sizeof(names[i].name)));
		}
		free(names);
		free(idx);
	}
	if (nic_parse_features(nlh, st->have_ss ? &st->ss : NULL, &ni, err, sizeof(err)) == 0)
		check_nic(&ni);
	if (st->have_ss && nic_parse_features(nlh, NULL, &ni, err, sizeof(err)) == 0)
		check_nic(&ni);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state st = { .have_ss = 0 };

	fuzz_nlmsgs(data, size, 64, one, &st);
	return 0;
}
