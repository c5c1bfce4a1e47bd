/*
 * kernel.h - the seams between kernel.c and the kernel, for tests.
 *
 * Every call that touches kTLS state (setsockopt of TCP_ULP/TLS_TX/TLS_RX,
 * sendmsg, recvmsg, sendfile) goes through kernel_ops, so a test can replace
 * them: make TLS_RX fail with ENOPROTOOPT after TLS_TX succeeded, capture
 * the crypto_info, or emulate kTLS in userspace on a host without it.
 * Tests must restore kernel_ops_default when they are done.
 */
#ifndef KTLS_KERNEL_H
#define KTLS_KERNEL_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct conn_keys;

struct kernel_ops {
	int (*setsockopt)(int fd, int level, int opt, const void *val, socklen_t len);
	ssize_t (*sendmsg)(int fd, const struct msghdr *msg, int flags);
	ssize_t (*recvmsg)(int fd, struct msghdr *msg, int flags);
	ssize_t (*sendfile)(int out_fd, int in_fd, off_t *offset, size_t count);
};

extern struct kernel_ops kernel_ops;               /* what kernel.c calls */
extern const struct kernel_ops kernel_ops_default; /* the real syscalls */

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
 * Can this kernel rekey kTLS (a second TLS_TX on a TLS 1.3 socket)?  Tried
 * on a throwaway loopback pair through kernel_ops.  1 yes, 0 no (why in
 * err), -1 could not tell.
 */
int kernel_probe_rekey(char *err, size_t errlen);

/* keys.c, TX in kernel + RX in OpenSSL: send an alert OpenSSL produced. */
void kernel_forward_alert(struct conn_keys *k, int level, int desc);

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
