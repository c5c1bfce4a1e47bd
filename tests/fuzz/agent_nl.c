/*
 * agent_nl - the handshake-family messages `ktlsd agent` receives, through
 * the strict parsers of agent_nl_msg.c.  The first byte picks the parser
 * (modulo 6), the rest is the message as received, in a buffer of its
 * own:
 *   0  hs_parse_accept   ACCEPT reply (sockfd, peer ids, certs, peername)
 *   1  hs_parse_ready    READY notification on the "tlshd" group
 *   2  hs_parse_family   CTRL_CMD_NEWFAMILY reply (id, multicast groups)
 *   3  hs_policy_feed    a CTRL_CMD_GETPOLICY dump: every message of the
 *                        rest in turn, then hs_policy_has for each attribute
 *   4  hs_parse_ndiag    NETLINK_SOCK_DIAG reply, for several groups
 *   5  hs_parse_nlerr    NLMSG_ERROR: ack or refusal (finding 8: INT_MIN)
 * Modes 0-2 see NLMSG_ERROR messages too, as the real ones do.
 */
#include <string.h>

#include "../../daemon/ktlsd/agent.h"
#include "fuzz.h"

static void feed(const struct nlmsghdr *nlh, void *arg)
{
	char err[256];

	hs_policy_feed(arg, nlh, nlh->nlmsg_len, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *m;
	size_t len;
	char err[256];
	int kerr = -1, r = 0;

	if (size < 1)
		return 0;
	len = size - 1;
	m = fuzz_dup(data + 1, len);
	err[0] = '\0';
	switch (data[0] % 6) {
	case 0: {
		struct hs_accept a;
		r = hs_parse_accept(m, len, 0, &a, &kerr, err, sizeof(err));
		if (r == 0) {
			FUZZ_ASSERT(a.sockfd >= 0 && a.npeerids <= HS_MAX_PEERIDS &&
				    a.ncerts <= HS_MAX_CERTS);
			FUZZ_ASSERT(memchr(a.peername, '\0', sizeof(a.peername)));
			FUZZ_ASSERT(strcmp(hs_msg_type_str(a.msg_type), "?") &&
				    strcmp(hs_auth_str(a.auth_mode), "?"));
		}
		break;
	}
	case 1: {
		uint32_t cls;
		r = hs_parse_ready(m, len, 0, &cls, err, sizeof(err));
		break;
	}
	case 2: {
		uint16_t fam;
		uint32_t grp;
		r = hs_parse_family(m, len, HS_GROUP_NAME, &fam, &grp, &kerr, err, sizeof(err));
		break;
	}
	case 3: {
		struct hs_policy p;
		hs_policy_init(&p);
		fuzz_nlmsgs(m, len, 64, feed, &p);
		for (unsigned attr = 0; attr < 66; attr++)
			FUZZ_ASSERT(hs_policy_has(&p, attr) >= -1 && hs_policy_has(&p, attr) <= 1);
		break;
	}
	case 4: {
		static const uint32_t groups[] = { 0, 1, 2, 8, 9, 33, 64, 0xffffffffu };
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
			uint32_t portid, inode;
			r = hs_parse_ndiag(m, len, groups[i], &portid, &inode, err, sizeof(err));
			FUZZ_ASSERT(r >= -1 && r <= 1);
		}
		r = 0;
		break;
	}
	case 5:
		r = hs_parse_nlerr(m, len, &kerr, err, sizeof(err));
		if (r == 0)
			FUZZ_ASSERT(kerr >= 0 && kerr <= 4095);
		break;
	}
	FUZZ_ASSERT(r == 0 || r == -1);
	FUZZ_ASSERT(memchr(err, '\0', sizeof(err)));
	if (r == -1)
		FUZZ_ASSERT(err[0]);
	free(m);
	return 0;
}
