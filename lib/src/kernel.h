/*
 * kernel.h - the kernel side of libktls: what kernel_install.c (keys into
 * kTLS, HW/SW placement, fallback reasons) and kernel_io.c (record I/O on
 * what the kernel owns) share, and the seams tests use.
 *
 * Every call that touches kTLS state (setsockopt of TCP_ULP/TLS_TX/TLS_RX,
 * getsockopt of SO_ERROR, sendmsg, recvmsg, sendfile) goes through kernel_ops (kernel_ops.c), so a
 * test can replace them: make TLS_RX fail with ENOPROTOOPT after TLS_TX
 * succeeded, capture the crypto_info, or emulate kTLS in userspace on a
 * host without it.  Tests must restore kernel_ops_default when done.
 */
#ifndef KTLS_KERNEL_H
#define KTLS_KERNEL_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "keys.h"

struct kernel_ops {
	int (*setsockopt)(int fd, int level, int opt, const void *val, socklen_t len);
	int (*getsockopt)(int fd, int level, int opt, void *val, socklen_t *len);
	ssize_t (*sendmsg)(int fd, const struct msghdr *msg, int flags);
	ssize_t (*recvmsg)(int fd, struct msghdr *msg, int flags);
	ssize_t (*sendfile)(int out_fd, int in_fd, off_t *offset, size_t count);
};

extern struct kernel_ops kernel_ops;               /* what the kernel side calls */
extern const struct kernel_ops kernel_ops_default; /* the real syscalls */

/*
 * How long "this kernel has no tls ULP" is believed before the next
 * offload asks again (kernel_install.c says why).  kernel_ulp_asked counts
 * the TCP_ULP attempts made; kernel_ulp_forget drops the verdict (tests).
 */
#define KTLS_ULP_RECHECK_NS 1000000000LL
extern _Atomic unsigned long kernel_ulp_asked;
void kernel_ulp_forget(void);

/*
 * nic_watch.c: whether an install can only be software because no device
 * in our namespace has TLS offload active.  predicts: before the install
 * (no syscall in steady state); confirm: after it, 1 when no device
 * changed meanwhile (one recv), else 0 and the caller asks the socket.
 * The stats count feature dumps and changes heard (tests).
 */
int nic_watch_predicts_sw(void);
/* nic_route.c: the ifindex of the device fd's route to its peer; 0 or -1. */
int nic_route_oif(int fd, int *ifindex);
int nic_watch_confirm_sw(void);
struct nic_watch_stats {
	unsigned long dumps, changes;
	_Atomic unsigned long asked;   /* installs placed by asking the socket */
};
extern struct nic_watch_stats nic_watch_stats;

/*
 * Records one AES-GCM key may protect before we rekey (TLS 1.3 with kernel
 * rekey) or close with close_notify (TLS 1.2, or no rekey): 2^24.5, the
 * s2n-tls choice, keeping the attacker's advantage below 2^-57 (RFC 8446
 * 5.5 and the AEAD limits draft) with full 16 KiB records.
 * ChaCha20-Poly1305 has no practical per-key limit (2^64 records).
 * Tests lower it with kernel_gcm_record_limit.
 */
#define KTLS_GCM_RECORD_LIMIT 23726566ULL /* floor(2^24.5) */
extern uint64_t kernel_gcm_record_limit;

/*
 * A connection's state once its keys went to the kernel (c->kernel, made
 * by kernel_install.c when TLS_TX was accepted; NULL before and without).
 * keys.c no longer tracks anything after that point.
 */
struct kernel_state {
	int fd;
	int server;                       /* SSL_is_server */
	struct key_params p;
	/* TLS 1.3: the secrets of the keys the kernel holds (for KeyUpdate). */
	unsigned char tx_secret[KEYS_MAX_SECRET], rx_secret[KEYS_MAX_SECRET];
	size_t secret_len;
	uint64_t tx_records;              /* records sent under the kernel TX key */
	int rx_kernel;                    /* RX in the kernel too (TX always is) */
	int update_owed;                  /* peer asked for our KeyUpdate; send before more data */
	int rekey_ok;                     /* -1 unknown, 0 no, 1 kernel accepted a rekey */
	/*
	 * TLS 1.3 client with RX here: the read key OpenSSL still holds (the
	 * secret at the install) and the sequence number it expects next, to
	 * hand it the server's session tickets (session.c).
	 */
	unsigned char ossl_rx_secret[KEYS_MAX_SECRET];
	uint64_t ossl_rx_seq;
	int ossl_rx_keyed;
	/* kernel_read: control-record reassembly */
	unsigned char *hs;
	size_t hs_len, hs_cap;
	unsigned char alert[2];
	size_t alert_len;
	/* A fatal error on a direction stays: its text and KTLS_ERR_* code. */
	int rx_dead, rx_code;
	char rx_err[KTLS_ERRLEN];
	int tx_dead, tx_code;
	char tx_err[KTLS_ERRLEN];
};

/*
 * Account one send of n bytes under the kernel TX key (an upper bound of
 * the records it made: n / 16 KiB + 1, which errs safe; a control record
 * counts 1).  The only writer of tx_records besides a key change; the
 * uring path calls it too.  ks may be NULL (TX not in the kernel).
 */
void kernel_tx_account(struct kernel_state *ks, size_t n);

/*
 * session.c: give OpenSSL a NewSessionTicket message (msg, len: header
 * included) that arrived through kTLS RX, as the record it would have read.
 * 0, or -1 when it was not taken (the connection is unaffected).
 */
int session_take_ticket(struct ktls_conn *c, struct kernel_state *k, const unsigned char *msg,
			size_t len);

/*
 * Must the next n bytes, in sends separate sends (each accounted as
 * kernel_tx_account does), go through kernel_write/kernel_sendfile (which
 * answer an owed KeyUpdate, rekey near the AES-GCM limit, report a dead
 * TX) rather than raw splices?  0 when ks is NULL (TX not in the kernel).
 */
int kernel_tx_needs_checks(const struct kernel_state *ks, size_t n, unsigned sends);

/*
 * kernel_io.c, TX in kernel + RX in OpenSSL: what OpenSSL wrote into its
 * sink (keys.h, sink_msg) redone through the kernel: alerts now, a
 * KeyUpdate the peer asked for before our next data.  arg is the state.
 */
void kernel_sink_msg(void *arg, int write_p, int content_type, const unsigned char *p, size_t len);

/*
 * The KTLS_ERR_* of a failed send, receive or splice errno: PEER_CLOSED for
 * EPIPE/ECONNRESET, RESOURCE for ENOMEM/ENOBUFS, else SYSTEM.
 */
int kernel_errno_code(int e);

/*
 * Can this kernel rekey kTLS (a second TLS_TX on a TLS 1.3 socket)?  Tried
 * on a throwaway loopback pair through kernel_ops.  1 yes, 0 no (why in
 * err), -1 could not tell.
 */
int kernel_probe_rekey(char *err, size_t errlen);

/*
 * Software or NIC (ktls.h, ktls_conn_info).  kernel_conf_mode maps a
 * sock_diag TLS_CONF_* to KTLS_MODE_HW/SW, -1 when it says neither.
 * kernel_stat_snap reads the cumulative install counters of
 * /proc/net/tls_stat (-1 each when unreadable); kernel_stat_mode decides one
 * direction (rx 0/1) from two snapshots taken around our own install.
 */
struct install_stat {
	long long tx_dev, tx_sw, rx_dev, rx_sw;
};
int kernel_conf_mode(int conf);
void kernel_stat_snap(struct install_stat *s);
int kernel_stat_mode(const struct install_stat *before, const struct install_stat *after, int rx);

#endif /* KTLS_KERNEL_H */
