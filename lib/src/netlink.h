/*
 * netlink.h - the readers of kernel kTLS state behind ktls_ctl.h, which the
 * library itself uses too (internal; the public calls are in ktls_ctl.h).
 *
 *   netlink.c                shared netlink plumbing: strict attribute
 *                            parsing, libnl sockets with extended-ack
 *                            errors, capture of raw replies for fixtures
 *   netlink_ethtool_parse.c  parsers of ethtool replies (string sets,
 *                            feature bitsets) and the set decision
 *   netlink_ethtool.c        NIC TLS offload features and driver counters
 *                            (genl "ethtool": STRSET_GET, FEATURES_GET/SET)
 *   netlink_diag.c           per-socket kTLS state (NETLINK_SOCK_DIAG, ULP
 *                            info); kernel_install.c asks it about its own sockets
 *   netlink_tlsstat.c        /proc/net/tls_stat (not netlink, but the third
 *                            view of the same kernel state); kernel_install.c reads
 *                            it to tell where an install landed
 *
 * Parsers take one netlink message (nlmsghdr included) and never trust a
 * length: a truncated or overlong attribute is an error with a reason,
 * never a silent skip.  Each returns 0 or -1 with err filled.  They are
 * separate from the calls that talk to the kernel so that tests can feed
 * them captured and hand-built replies.
 */
#ifndef KTLS_NETLINK_H
#define KTLS_NETLINK_H

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#include "ktls_ctl.h"

struct nlmsghdr;
struct nlattr;
struct nla_policy;

/* ---- netlink.c ---------------------------------------------------------- */

/*
 * Like nla_parse(), but the attribute stream must be consumed exactly:
 * libnl's own parser ignores trailing bytes, which would hide truncation.
 */
int nlx_parse(struct nlattr **tb, int maxtype, const struct nlattr *head, int len,
	      const struct nla_policy *policy, const char *what, char *err, size_t errlen);

/* The message itself must fit in buflen and be at least a header + hdrlen. */
int nlx_check_msg(const struct nlmsghdr *nlh, size_t buflen, size_t hdrlen,
		  char *err, size_t errlen);

/*
 * When $KTLS_NL_CAPTURE names a directory, every reply message received for
 * `kind` is appended raw to DIR/kind.bin (how tests/fixtures/netlink/ was
 * made).  Silent no-op otherwise.
 */
void nlx_capture(const char *kind, const struct nlmsghdr *nlh);

/* One request's receive state; on_msg sees every reply message. */
struct nl_sock;
struct nlx_req {
	int (*on_msg)(const struct nlmsghdr *nlh, void *arg, char *err, size_t errlen);
	void *arg;
	const char *kind;       /* capture name, or NULL */
	int failed;             /* on_msg refused a message (err says why) */
	int kerr;               /* errno the kernel answered, 0 if none */
	char kmsg[160];         /* the kernel's extended-ack text, if any */
	char *err;
	size_t errlen;
};

/* Ask for extended acks (the kernel's reason text) on a fresh socket. */
void nlx_prepare(struct nl_sock *sk);

/*
 * Receive replies to the request just sent until the dump ends, the single
 * reply or the ack arrives.  -1 with errno = the kernel's error (r->kerr,
 * r->kmsg) or with r->err set for malformed replies / transport failures.
 */
int nlx_recv(struct nl_sock *sk, struct nlx_req *r);

/* ---- netlink_ethtool_parse.c: ethtool replies ---------------------------- */

/* The kernel's names of KTLS_NIC_TLS_*: "tls-hw-tx-offload", ... */
extern const char *const nic_feat_name[KTLS_NIC_NFEAT];

/* Where the kernel's ETH_SS_FEATURES string set puts each of ours. */
struct nic_strset {
	unsigned count;           /* strings in the set */
	int idx[KTLS_NIC_NFEAT];  /* bit index, or -1: this kernel lacks the name */
};

/* One ETHTOOL_MSG_STRSET_GET reply carrying ETH_SS_FEATURES. */
int nic_parse_strset(const struct nlmsghdr *nlh, struct nic_strset *out,
		     char *err, size_t errlen);

/* One ETHTOOL_MSG_FEATURES_GET reply (compact or verbose bitsets). */
int nic_parse_features(const struct nlmsghdr *nlh, const struct nic_strset *ss,
		       struct ktls_nic *out, char *err, size_t errlen);

/*
 * One STRSET_GET reply with a device's ETH_SS_STATS: the names containing
 * "tls" (case-insensitive) and their indices.  *total is the set size.
 */
int nic_parse_stat_names(const struct nlmsghdr *nlh, struct ktls_nic_counter **names,
			 unsigned **idx, size_t *n, unsigned *total, char *err, size_t errlen);

/*
 * want[i]: -1 leave alone, 0 off, 1 on.  Decides without touching the
 * device: 0 nothing to change, 1 a change is needed, -1 refused (the reason
 * names the interface, the feature and why: unknown to this kernel, the
 * device lacks it, fixed, or no CAP_NET_ADMIN when have_cap is 0).
 */
int nic_plan_set(const struct ktls_nic *cur, const int want[KTLS_NIC_NFEAT], int have_cap,
		 char *err, size_t errlen);

/* ---- netlink_ethtool.c: talking to the kernel ------------------------------ */

/*
 * The bare request behind ktls_nic_set(): FEATURES_SET for exactly want[],
 * with no planning and no read-back.  For tests that must reach the
 * kernel's own checks (privilege, request encoding).
 */
int nic_send_set(const char *ifname, const int want[KTLS_NIC_NFEAT], char *err, size_t errlen);

/* Every device's features, no counters (ktls_nic_query without the ioctls). */
int nic_features_all(struct ktls_nic **out, size_t *n, char *err, size_t errlen);

/* ---- netlink_diag.c: per-socket kTLS state ------------------------------ */

/*
 * One SOCK_DIAG_BY_FAMILY reply message.  1 and *out filled when the
 * socket carries the tls ULP, 0 when it does not, -1 when malformed.
 */
int diag_parse(const struct nlmsghdr *nlh, struct ktls_sock *out, char *err, size_t errlen);

/*
 * The kTLS state of one connected TCP socket we hold (an exact sock_diag
 * lookup by its addresses): 1 with *out filled when it carries the tls
 * ULP and the kernel reported it, 0 when not (no ULP, or ULP info hidden
 * from a caller without CAP_NET_ADMIN), -1 with err.  For
 * ktls_conn_info()'s "did the NIC take this direction" (TLS_CONF_HW).
 */
int diag_query_fd(int fd, struct ktls_sock *out, char *err, size_t errlen);

/* ---- netlink_tlsstat.c: /proc/net/tls_stat ------------------------------ */

/* Parse "Name<ws>value" lines; every counter the kernel printed, in order. */
int tlsstat_parse(const char *text, struct ktls_stat_counter **out, size_t *n,
		  char *err, size_t errlen);

#endif /* KTLS_NETLINK_H */
