/*
 * netlink.h - the control plane's readers of kernel state (internal).
 *
 *   netlink.c          shared netlink plumbing: strict attribute parsing,
 *                      libnl sockets with extended-ack errors, capture of
 *                      raw replies for test fixtures
 *   netlink_ethtool.c  NIC TLS offload features (genl "ethtool":
 *                      STRSET_GET, FEATURES_GET/SET) and driver counters
 *   netlink_diag.c     per-socket kTLS state (NETLINK_SOCK_DIAG, ULP info)
 *   netlink_tlsstat.c  /proc/net/tls_stat (not netlink, but the third view
 *                      of the same kernel state, so it lives beside them)
 *
 * Parsers take one netlink message (nlmsghdr included) and never trust a
 * length: a truncated or overlong attribute is an error with a reason,
 * never a silent skip.  Each returns 0 or -1 with err filled.
 */
#ifndef KTLS_NETLINK_H
#define KTLS_NETLINK_H

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

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

/* ---- netlink_ethtool.c: NIC TLS offload features ----------------------- */

/* The three netdev features of kTLS offload, by their kernel names. */
enum { NIC_TLS_TX, NIC_TLS_RX, NIC_TLS_RECORD, NIC_NFEAT };
extern const char *const nic_feat_name[NIC_NFEAT]; /* "tls-hw-tx-offload", ... */

/* Where the kernel's ETH_SS_FEATURES string set puts each of ours. */
struct nic_strset {
	unsigned count;         /* strings in the set */
	int idx[NIC_NFEAT];     /* bit index, or -1: this kernel lacks the name */
};

struct nic_feature {
	int known;    /* the kernel has the feature name at all */
	int hw;       /* the device can do it (hw_features: user-changeable) */
	int wanted;   /* requested by the administrator */
	int active;   /* in effect now (dev->features) */
	int fixed;    /* cannot be changed (nochange set) */
};

struct nic_counter {
	char name[33];          /* ETH_GSTRING_LEN + NUL */
	uint64_t value;
};

struct nic_info {
	int ifindex;
	char ifname[IF_NAMESIZE];
	struct nic_feature f[NIC_NFEAT];
	int counters_read;      /* 1 when the driver's stats were read */
	size_t ncounters;       /* driver stats whose name contains "tls" */
	struct nic_counter *counters;
};

/* One ETHTOOL_MSG_STRSET_GET reply carrying ETH_SS_FEATURES. */
int nic_parse_strset(const struct nlmsghdr *nlh, struct nic_strset *out,
		     char *err, size_t errlen);

/* One ETHTOOL_MSG_FEATURES_GET reply (compact or verbose bitsets). */
int nic_parse_features(const struct nlmsghdr *nlh, const struct nic_strset *ss,
		       struct nic_info *out, char *err, size_t errlen);

/*
 * One STRSET_GET reply with a device's ETH_SS_STATS: the names containing
 * "tls" (case-insensitive) and their indices.  *total is the set size.
 */
int nic_parse_stat_names(const struct nlmsghdr *nlh, struct nic_counter **names,
			 unsigned **idx, size_t *n, unsigned *total, char *err, size_t errlen);

/*
 * Every interface (ifname NULL) or one.  Counters are read too (names over
 * netlink, values with the ETHTOOL_GSTATS ioctl: ethtool netlink has no
 * message for driver-private stats).  Free with nic_list_free().
 */
int nic_query(const char *ifname, struct nic_info **out, size_t *n, char *err, size_t errlen);
void nic_list_free(struct nic_info *v, size_t n);

/*
 * want[i]: -1 leave alone, 0 off, 1 on.  Decides without touching the
 * device: 0 nothing to change, 1 a change is needed, -1 refused (the reason
 * names the interface, the feature and why: unknown to this kernel, the
 * device lacks it, fixed, or no CAP_NET_ADMIN when have_cap is 0).
 */
int nic_plan_set(const struct nic_info *cur, const int want[NIC_NFEAT], int have_cap,
		 char *err, size_t errlen);

/*
 * Apply want[] to ifname with ETHTOOL_MSG_FEATURES_SET and read back the
 * result into *after (its counters are not read).  -1 with the reason.
 * *changed says whether a request was sent.
 */
int nic_set(const char *ifname, const int want[NIC_NFEAT], struct nic_info *after,
	    int *changed, char *err, size_t errlen);

/*
 * The bare request behind nic_set(): FEATURES_SET for exactly want[], with
 * no planning and no read-back.  For tests that must reach the kernel's
 * own checks (privilege, request encoding).
 */
int nic_send_set(const char *ifname, const int want[NIC_NFEAT], char *err, size_t errlen);

/* Whether the calling process has CAP_NET_ADMIN in its effective set. */
int nl_have_net_admin(void);

/* ---- netlink_diag.c: per-socket kTLS state ------------------------------ */

struct tls_sock {
	int family;                   /* AF_INET or AF_INET6 */
	char local[64], peer[64];     /* "127.0.0.1:443", "[::1]:443" */
	uint16_t lport, rport;
	int state;                    /* TCP_* */
	uint32_t uid;
	uint64_t inode;
	int version;                  /* 0x0303, 0x0304, 0 when not reported */
	int cipher;                   /* TLS_CIPHER_*, 0 when not reported */
	int txconf, rxconf;           /* TLS_CONF_*, 0 when not reported */
	int zc_ro_tx, rx_no_pad;      /* flags */
	int pid;                      /* owning process, 0 when unknown */
	char comm[32];
};

/*
 * One SOCK_DIAG_BY_FAMILY reply message.  1 and *out filled when the
 * socket carries the tls ULP, 0 when it does not, -1 when malformed.
 */
int diag_parse(const struct nlmsghdr *nlh, struct tls_sock *out, char *err, size_t errlen);

/*
 * Every TCP socket (IPv4 and IPv6) with the tls ULP.  When none is found,
 * why says the most likely reason (no kTLS in the kernel, no privilege to
 * see ULP info, or simply none).  Free *out with free().
 */
int diag_query(struct tls_sock **out, size_t *n, char *why, size_t whylen,
	       char *err, size_t errlen);

/*
 * The kTLS state of one connected TCP socket we hold (an exact sock_diag
 * lookup by its addresses): 1 with *out filled when it carries the tls
 * ULP and the kernel reported it, 0 when not (no ULP, or ULP info hidden
 * from a caller without CAP_NET_ADMIN), -1 with err.  For
 * ktls_conn_info()'s "did the NIC take this direction" (TLS_CONF_HW).
 */
int diag_query_fd(int fd, struct tls_sock *out, char *err, size_t errlen);

/* Fill pid/comm from /proc/[pid]/fd socket links (best effort). */
void diag_owners(struct tls_sock *v, size_t n);

/* Names as ss(8) prints them ("1.3", "aes-gcm-256", "sw"); never NULL. */
const char *tls_version_str(int version);
const char *tls_cipher_str(int cipher);
const char *tls_conf_str(int conf);
const char *tcp_state_str(int state);

/* ---- netlink_tlsstat.c: /proc/net/tls_stat ------------------------------ */

struct tls_counter {
	char name[48];
	unsigned long long value;
};

/* Parse "Name<ws>value" lines; every counter the kernel printed, in order. */
int tlsstat_parse(const char *text, struct tls_counter **out, size_t *n,
		  char *err, size_t errlen);

/*
 * Read and parse path (normally /proc/net/tls_stat).  -1 with errno ENOENT
 * when the file is absent (no kTLS in this kernel or netns).
 */
int tlsstat_read(const char *path, struct tls_counter **out, size_t *n,
		 char *err, size_t errlen);

#endif /* KTLS_NETLINK_H */
