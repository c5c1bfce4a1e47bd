/*
 * nic_route.c - which device does a connected socket send through?
 *
 * The kernel offers a direction to a NIC only through the socket's egress
 * device (its cached route).  When TX lands in kernel software although
 * some device here has tls-hw-tx-offload on, the reason depends on whether
 * that device is this socket's: so ask the routing table the question the
 * socket's own lookup asked (RTM_GETROUTE for its peer from its local
 * address).  Policy routing by mark, uid or oif is not replayed; the
 * answer is for explaining, never for deciding where keys go.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "internal.h"
#include "kernel.h"

struct route_req {
	struct nlmsghdr nh;
	struct rtmsg rt;
	char attrs[2 * RTA_SPACE(sizeof(struct in6_addr))];
};

static void add_addr(struct route_req *r, int type, const void *addr, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), addr, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_SPACE(len);
}

/* The address bytes of a (v4-mapped v6 counts as v4); family or -1. */
static int addr_of(const struct sockaddr_storage *ss, const void **addr, size_t *len)
{
	if (ss->ss_family == AF_INET) {
		*addr = &((const struct sockaddr_in *)ss)->sin_addr;
		*len = 4;
		return AF_INET;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*addr = &a6->s6_addr[12];
			*len = 4;
			return AF_INET;
		}
		*addr = a6;
		*len = 16;
		return AF_INET6;
	}
	return -1;
}

int nic_route_oif(int fd, int *ifindex)
{
	struct sockaddr_storage local, peer;
	socklen_t ll = sizeof(local), pl = sizeof(peer);
	const void *la, *pa;
	size_t lalen, palen;
	struct route_req req;
	union {
		struct nlmsghdr nh;
		char buf[4096];
	} resp;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int nl, fam, ret = -1;
	ssize_t n;

	if (getsockname(fd, (struct sockaddr *)&local, &ll) || getpeername(fd, (struct sockaddr *)&peer, &pl))
		return -1;
	fam = addr_of(&peer, &pa, &palen);
	if (fam < 0 || addr_of(&local, &la, &lalen) != fam)
		return -1;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.rt.rtm_family = (unsigned char)fam;
	req.rt.rtm_dst_len = (unsigned char)(palen * 8);
	req.rt.rtm_src_len = (unsigned char)(lalen * 8);
	add_addr(&req, RTA_DST, pa, palen);
	add_addr(&req, RTA_SRC, la, lalen);

	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl < 0)
		return -1;
	if (sendto(nl, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		goto out;
	do
		n = recv(nl, &resp, sizeof(resp), 0);
	while (n < 0 && errno == EINTR);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct rtmsg)) || !NLMSG_OK(&resp.nh, (size_t)n) ||
	    resp.nh.nlmsg_type != RTM_NEWROUTE)
		goto out;
	{
		struct rtmsg *rt = NLMSG_DATA(&resp.nh);
		int alen = (int)RTM_PAYLOAD(&resp.nh);

		for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int)) {
				memcpy(ifindex, RTA_DATA(a), sizeof(int));
				ret = 0;
			}
		}
	}
out:
	close(nl);
	return ret;
}
