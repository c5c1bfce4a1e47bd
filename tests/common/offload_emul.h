/*
 * offload_emul.h - kTLS emulated in userspace behind libktls's kernel_ops
 * seam, for hosts without kTLS.
 *
 * The emulator takes the crypto_info libktls hands to TLS_TX/TLS_RX and
 * does what the kernel would with it: seal each sendmsg as TLS records on
 * the real socket, open the peer's records on recvmsg and report their type
 * in a TLS_GET_RECORD_TYPE cmsg.  Records are sealed and opened with
 * OpenSSL's EVP AEAD directly (not libssl), so a wrong key, salt, IV or
 * sequence number shows up as the real peer failing to decrypt us, or us
 * failing to decrypt the peer's next real record.  It follows the kernel's
 * rules where libktls depends on them: exact optlen, EBUSY on a second key
 * unless rekey is on (TLS 1.3 only), EKEYEXPIRED after a KeyUpdate until the
 * new RX key, EIO for a control record without a cmsg buffer, EOPNOTSUPP
 * for MSG_WAITALL, sticky EBADMSG on RX, and sends failing with it until
 * SO_ERROR is read (tls_err_abort sets sk_err, which tls_sw_sendmsg checks).
 *
 * Knobs (emu.*) make a step fail with a chosen errno.
 */
#ifndef OFFLOAD_EMUL_H
#define OFFLOAD_EMUL_H

#include <stdint.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include "kernel.h" /* the kernel_ops seam the emulator sits behind */
#include "keys.h"

#define EMU_MAXFD 1024
#define EMU_REC (16384 + 256 + 16 + 8)

/* One direction's key as installed, and the next record's sequence number. */
struct emu_dir {
	int set;
	union tls_crypto info;
	uint64_t seq;
	unsigned char explicit_nonce[8]; /* TLS 1.2 GCM TX */
};

/* One emulated kTLS socket (indexed by fd). */
struct emu_sock {
	int ulp;
	struct emu_dir tx, rx;
	int bad;         /* sticky EBADMSG on RX */
	int sk_err;      /* the socket error a bad record left, until SO_ERROR */
	int paused;      /* KeyUpdate read, no new RX key yet */
	int pause_after; /* pause once the pending record is consumed */
	unsigned char pend[EMU_REC];
	size_t pend_off, pend_len;
	unsigned char pend_type;
};

/* The emulator's knobs, counters and sockets: emu_on() clears it. */
struct emu_state {
	int ulp_errno, tx_errno, rx_errno; /* fail that step with this errno */
	int rekey;                          /* accept a second key (TLS 1.3) */
	int corrupt_next_rx;                /* flip a ciphertext byte of the next record read */
	int n_tx, n_rx;                     /* TLS_TX / TLS_RX accepted */
	union tls_crypto first_tx, first_rx; /* what the first install passed */
	uint64_t records_tx, keyupdates_tx;  /* sealed records, KeyUpdates among them */
	struct emu_sock s[EMU_MAXFD];
};

extern struct emu_state emu;

/* The record sequence number a crypto_info carries. */
uint64_t emu_get_seq(const union tls_crypto *ci);

/* The emulated setsockopt (TCP_ULP, TLS_TX, TLS_RX), for shims to fall back on. */
int emu_setsockopt(int fd, int level, int opt, const void *val, socklen_t len);

/* Install the emulator with every knob at "works"; emu_off() restores. */
void emu_on(int rekey);

/* The real kernel_ops and record limit again. */
void emu_off(void);

#endif /* OFFLOAD_EMUL_H */
