/*
 * ktls_ctl.h - the kernel's kTLS state, read for control planes.
 *
 * libktls reads this state for its own connections (which direction the
 * NIC took, what the kernel counted); a control plane wants the same views
 * for every socket and device.  Three views, each a snapshot:
 *
 *   sockets   every TCP socket carrying the tls ULP and how each direction
 *             is encrypted (NETLINK_SOCK_DIAG); names as ss(8) prints them
 *   counters  /proc/net/tls_stat, every counter the running kernel prints
 *   NICs      the TLS offload features of network devices and their
 *             drivers' TLS counters (ethtool netlink), and switching the
 *             offload on or off
 *
 * Every call that can fail returns -1 and writes a one-line reason naming
 * the cause into err (errlen bytes, always terminated); the kernel's
 * extended-ack text is included when it gave one.  Nothing here needs a
 * ktls_ctx.  Lists are allocated by the call and released by its _free.
 */
#ifndef KTLS_CTL_H
#define KTLS_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ktls_have_net_admin - whether the calling process has CAP_NET_ADMIN in
 * its effective set: the kernel asks for it to change NIC features, to
 * serve handshake upcalls and (up to at least 6.12) to show a socket's
 * ULP info.
 */
int ktls_have_net_admin(void);

/* ------------------------------------------------------------------ */
/* Sockets (sock_diag)                                                  */
/* ------------------------------------------------------------------ */

/* The numbers are the kernel's: TCP_* from <netinet/tcp.h>, TLS_* from <linux/tls.h>. */
struct ktls_sock {
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
	char comm[32];                /* its name, bytes outside printable ASCII as \xHH */
};

/*
 * ktls_sock_list - every TCP socket (IPv4 and IPv6) with the tls ULP.
 * When none is found and why is not NULL, why says the most likely reason
 * (no kTLS in the kernel, no privilege to see ULP info, or simply none).
 * 0 with *out (free with ktls_sock_list_free) and *n, or -1 with err.
 */
int ktls_sock_list(struct ktls_sock **out, size_t *n, char *why, size_t whylen,
		   char *err, size_t errlen);

/* ktls_sock_list_free - release a ktls_sock_list() result.  NULL ok. */
void ktls_sock_list_free(struct ktls_sock *v);

/*
 * ktls_sock_owners - fill pid and comm from the /proc/PID/fd socket links
 * this process may read (best effort: others stay 0 and "").
 */
void ktls_sock_owners(struct ktls_sock *v, size_t n);

/*
 * Names as ss(8) prints them ("1.3", "aes-gcm-256", "sw", "ESTAB"); "-"
 * for 0 (not reported), "unknown" ("UNKNOWN" for a state) otherwise.
 * Never NULL.  ss prints TLS_CONF_BASE as "none"; ktls_sock_conf_name says
 * "base" (ULP set, no key yet).
 */
const char *ktls_sock_version_name(int version);
const char *ktls_sock_cipher_name(int cipher);
const char *ktls_sock_conf_name(int conf);
const char *ktls_tcp_state_name(int state);

/* ------------------------------------------------------------------ */
/* Counters (/proc/net/tls_stat)                                        */
/* ------------------------------------------------------------------ */

#define KTLS_STAT_PATH "/proc/net/tls_stat"

struct ktls_stat_counter {
	char name[48];                /* as the kernel prints it: "TlsCurrTxSw" */
	unsigned long long value;
};

/*
 * ktls_stat_read - read and parse path (NULL: KTLS_STAT_PATH), every
 * counter in the kernel's order; the set grows with kernel versions.
 * 0 with *out (free with ktls_stat_free) and *n, or -1 with err and errno
 * ENOENT when the file is absent (no kTLS in this kernel or netns), EIO
 * or EINVAL when it could not be read or parsed.
 */
int ktls_stat_read(const char *path, struct ktls_stat_counter **out, size_t *n,
		   char *err, size_t errlen);

/* ktls_stat_free - release a ktls_stat_read() result.  NULL ok. */
void ktls_stat_free(struct ktls_stat_counter *v);

/* ------------------------------------------------------------------ */
/* NIC TLS offload (ethtool netlink)                                    */
/* ------------------------------------------------------------------ */

/* The three netdev features of kTLS offload. */
enum { KTLS_NIC_TLS_TX, KTLS_NIC_TLS_RX, KTLS_NIC_TLS_RECORD, KTLS_NIC_NFEAT };

/*
 * ktls_nic_feature_name - the kernel's name of a KTLS_NIC_TLS_* feature
 * ("tls-hw-tx-offload", "tls-hw-rx-offload", "tls-hw-record"), "unknown"
 * for any other value.
 */
const char *ktls_nic_feature_name(int feature);

struct ktls_nic_feature {
	int known;    /* the kernel has the feature name at all */
	int hw;       /* the device can do it (hw_features: user-changeable) */
	int wanted;   /* requested by the administrator */
	int active;   /* in effect now (dev->features) */
	int fixed;    /* cannot be changed (ethtool -k's "[fixed]") */
};

struct ktls_nic_counter {
	char name[33];                /* ETH_GSTRING_LEN + NUL */
	uint64_t value;
};

struct ktls_nic {
	int ifindex;
	char ifname[IF_NAMESIZE];
	struct ktls_nic_feature f[KTLS_NIC_NFEAT];
	int counters_read;            /* 1 when the driver's stats were read */
	size_t ncounters;             /* driver stats whose name contains "tls" */
	struct ktls_nic_counter *counters;
};

/*
 * ktls_nic_query - every interface (ifname NULL) or one, sorted by index,
 * with the driver's TLS counters (names over netlink, values with the
 * ETHTOOL_GSTATS ioctl: ethtool netlink carries no driver-private stats).
 * 0 with *out (free with ktls_nic_list_free) and *n, or -1 with err.
 */
int ktls_nic_query(const char *ifname, struct ktls_nic **out, size_t *n,
		   char *err, size_t errlen);

/* ktls_nic_list_free - release a ktls_nic_query() result.  NULL ok. */
void ktls_nic_list_free(struct ktls_nic *v, size_t n);

/*
 * ktls_nic_set - want[i] for each KTLS_NIC_TLS_*: -1 leave alone, 0 off,
 * 1 on.  Refuses before touching the device when a feature is unknown to
 * this kernel, missing from the device or fixed, or when a change is
 * needed without CAP_NET_ADMIN; the reason names the interface, the
 * feature and why.  Otherwise sends the change (only when one is needed:
 * *changed says so) and reads the features back into *after, whose
 * counters are not read.  The device may still leave a feature as it was:
 * compare after->f[i].active with want[i].  0, or -1 with err.
 */
int ktls_nic_set(const char *ifname, const int want[KTLS_NIC_NFEAT], struct ktls_nic *after,
		 int *changed, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* KTLS_CTL_H */
