/*
 * sock_diag - NETLINK_SOCK_DIAG replies (inet_diag_msg with ULP info and
 * its TLS nest) through diag_parse, as a dump's stream of messages
 * delivered the way libnl does.  A socket reported as kTLS has an
 * address family and NUL-terminated address strings.
 */
#include <string.h>
#include <sys/socket.h>

#include "ktls_ctl.h"
#include "netlink.h"
#include "fuzz.h"

static void one(const struct nlmsghdr *nlh, void *arg)
{
	struct ktls_sock s;
	char err[256];
	int r;

	(void)arg;
	err[0] = '\0';
	r = diag_parse(nlh, &s, err, sizeof(err));
	FUZZ_ASSERT(r >= -1 && r <= 1);
	if (r == 1) {
		FUZZ_ASSERT(s.family == AF_INET || s.family == AF_INET6);
		FUZZ_ASSERT(memchr(s.local, '\0', sizeof(s.local)) &&
			    memchr(s.peer, '\0', sizeof(s.peer)));
	}
	if (r == -1)
		FUZZ_ASSERT(err[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_nlmsgs(data, size, 64, one, NULL);
	return 0;
}
