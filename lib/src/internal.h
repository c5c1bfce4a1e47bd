/*
 * internal.h - what the files of libktls share.  Never installed.
 *
 * File map (one concern each):
 *   error.c            per-object errors: text and KTLS_ERR_* code (per thread
 *                      for shared contexts), public namers
 *   ctx.c              contexts and the enforced policy
 *   ctx_load.c         what a context reads: our chain, trust store, DH parameters
 *   policy.c           what the strict policy allows (suites, groups, keys)
 *   psk.c              TLS 1.3 external pre-shared keys
 *   conn.c             connections: handshake, userspace I/O, dispatch to kTLS I/O
 *   conn_error.c       a connection's failures: their text and KTLS_ERR_* code
 *   bio_socket.c       the socket BIO OpenSSL writes through (no SIGPIPE)
 *   keys.c             traffic-secret capture, record counting, key derivation
 *   proto.c            TLS facts: the cipher table, alert and version names
 *   kernel_install.c   keys into kTLS, HW or SW placement, fallback reasons
 *   kernel_io.c        record I/O on what kTLS owns: data, alerts, KeyUpdate
 *   kernel_ops.c       the syscalls behind the kernel_ops seam (kernel.h)
 *   uring.c            the io_uring bulk path (ktls_uring.h)
 *   probe.c            what the running kernel offers
 *   loopback.c         a throwaway loopback TCP pair for asking the kernel
 *   netlink.c          netlink plumbing the control-plane readers share
 *   netlink_diag.c     sock_diag: which sockets carry kTLS, and how
 *   netlink_tlsstat.c  /proc/net/tls_stat
 *   netlink_ethtool.c  NIC TLS offload features over ethtool netlink
 *   nic_watch.c        whether any device here has TLS offload on (kept current)
 *
 * Headers: internal.h (this), keys.h (keys.c for the kernel side), kernel.h
 * (the kernel side and its test seams), conn_impl.h (conn.c and
 * conn_error.c), proto.h, policy.h, netlink.h.
 */
#ifndef KTLS_INTERNAL_H
#define KTLS_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "ktls.h"

#define KTLS_API __attribute__((visibility("default")))
#define KTLS_PRINTF(f, a) __attribute__((format(printf, f, a)))

#define KTLS_ERRLEN 256

/* ---- error.c ---------------------------------------------------------- */

/*
 * Every failure carries a KTLS_ERR_* code (ktls.h) besides its text.
 * A context may be shared by threads, so its errors live in the context,
 * one per thread (the last failure of a call on that context in this
 * thread), freed with it.  A connection belongs to one thread at a time
 * and keeps one error of its own (conn_fail below).
 */
/* Set this thread's error on ctx; returns -1. */
int ctx_fail(const struct ktls_ctx *ctx, int code, const char *fmt, ...) KTLS_PRINTF(3, 4);
int ctx_geterr_code(const struct ktls_ctx *ctx);
/* This thread's text, valid until its next call on ctx; "" if none. */
const char *ctx_geterr(const struct ktls_ctx *ctx);
void ctx_clearerr(const struct ktls_ctx *ctx);
/* The list of a new context, and freeing it with the context. */
void ctx_errors_init(struct ktls_ctx *ctx);
void ctx_errors_free(struct ktls_ctx *ctx);

/*
 * The code for a failed system call's errno: RESOURCE for ENOMEM and
 * the like, PEER_CLOSED for ECONNRESET/EPIPE, TIMEOUT for ETIMEDOUT,
 * SYSTEM otherwise.
 */
int errno_code(int e);

/* Format into buf; returns -1 so callers can `return seterr(...)`. */
int buf_seterr(char *buf, size_t len, const char *fmt, ...) KTLS_PRINTF(3, 4);
int buf_vseterr(char *buf, size_t len, const char *fmt, va_list ap);

/*
 * The most useful line of OpenSSL's error queue ("ee key too small"),
 * then the queue is cleared.  Never NULL.
 */
const char *ssl_reason(char *buf, size_t len);

/* Overwrite secrets in a way the compiler cannot elide. */
void secure_zero(void *p, size_t n);

/*
 * bio_socket.c: a BIO_NOCLOSE socket BIO on fd whose writes never raise
 * SIGPIPE and carry MSG_MORE while *more (owned by the caller, outliving
 * the BIO) is nonzero.
 */
BIO *bio_socket_new(int fd, const int *more);

/* ---- loopback.c: a throwaway TCP pair ------------------------------------ */

/*
 * A connected AF_INET pair on 127.0.0.1.  fds[0] is the connecting end;
 * it is ESTABLISHED (what the tls ULP needs) once this returns.  0 or an
 * errno.  loopback_close closes both ends.
 */
int loopback_pair(int fds[2]);
void loopback_close(int fds[2]);

/* ---- probe.c: what the running kernel offers ------------------------------ */

typedef int (*probe_setsockopt_fn)(int fd, int level, int opt, const void *val, socklen_t len);

/* How far probe_rekey got: the step whose errno it returned. */
enum probe_rekey_step { PROBE_REKEY_PAIR, PROBE_REKEY_ULP, PROBE_REKEY_KEY, PROBE_REKEY_AGAIN };

/*
 * Can this kernel rekey kTLS (6.14): does a TLS 1.3 socket take a second
 * TLS_TX of the same KTLS_PROBE_* cipher?  Older kernels answer EBUSY.
 * Tried on a throwaway loopback pair through set (setsockopt, or the
 * kernel_ops seam).  0 yes, else the errno of the failing *step.
 */
int probe_rekey(int cipher, probe_setsockopt_fn set, enum probe_rekey_step *step);

/* ---- ctx.c, ctx_load.c: contexts and policy ---------------------------- */

struct ktls_ctx {
	SSL_CTX *ssl;          /* trust store, our chain, suites, versions */
	int role;              /* KTLS_CLIENT or KTLS_SERVER */
	int verify;            /* KTLS_VERIFY_* */
	int check_hostname;    /* client: verify the peer's name */
	int dh_loaded;         /* server: DHE suites usable */
	atomic_int frozen;     /* set by the first ktls_conn_new, under cfg_mu */
	pthread_mutex_t cfg_mu; /* a setter's check and change vs. freezing */
	atomic_int refs;       /* the owner's + one per live connection */
	int zc_sendfile;       /* opt-in: TLS_TX_ZEROCOPY_RO after TLS_TX */
	int rx_no_pad;         /* opt-in: TLS_RX_EXPECT_NO_PAD after TLS_RX (1.3) */
	unsigned char *alpn;   /* ALPN protocols, wire format (alpn.c), or NULL */
	size_t alpn_len;
	char *alpn_text;       /* the same as the caller gave it, for messages */
	struct sni_set *sni;   /* server: chains chosen by server name (sni.c), or NULL */
	int last_chain;        /* the chain loaded or added last: 0 default, n the n-th added */
	pthread_mutex_t err_mu; /* guards errs */
	struct ctx_err *errs;  /* per-thread last errors (error.c) */
};

/*
 * The start of every context setter: clears the last error and refuses a
 * frozen context ("context in use: <what> cannot change after a connection
 * was made").  0 with cfg_mu held and *guard = ctx, so that freezing waits
 * for the change; or -1 with the reason set (errno EINVAL for NULL).
 * Setters use CTX_SETTER, which releases the lock when they return.
 */
int ctx_mutable(struct ktls_ctx *ctx, const char *what, struct ktls_ctx **guard);
void ctx_setter_end(struct ktls_ctx **guard);

#define CTX_SETTER(ctx, what)                                                              \
	struct ktls_ctx *ctx_setter_guard_ __attribute__((cleanup(ctx_setter_end))) = NULL; \
	if (ctx_mutable((ctx), (what), &ctx_setter_guard_))                                \
		return -1

/*
 * From here on every setter fails (ktls_conn_new calls it before
 * SSL_new): a setter already under way finishes first, so a new SSL never
 * sees a half-changed SSL_CTX.
 */
void ctx_freeze(struct ktls_ctx *ctx);

/*
 * sni.c: one more certificate chain for ktls_ctx_add_cert_chain (references
 * taken, the caller keeps its own), served to clients whose server name it
 * carries; 0, or -1 with the reason set.  sni_free releases them all.
 */
int sni_add(struct ktls_ctx *ctx, X509 *leaf, EVP_PKEY *key, STACK_OF(X509) *chain,
	    const char *certname);
/* The leaf of added chain n (1-based), and its OCSP staple (ocsp.c's, freed with free_fn). */
X509 *sni_leaf(const struct sni_set *s, int n);
size_t sni_count(const struct sni_set *s);
void sni_set_staple(struct sni_set *s, int n, void *staple, void (*free_fn)(void *));
/* The staple of the added chain whose leaf is cert, or NULL. */
void *sni_staple_for(const struct sni_set *s, const X509 *cert);
void sni_free(struct sni_set *s);
/* 1 when the SNI callback refused ssl's server name (unrecognized_name sent). */
int sni_refused(const SSL *ssl);

/*
 * The start of every other public context call: refuses NULL (errno
 * EINVAL), clears this thread's last error and OpenSSL's queue.  0 or -1.
 */
int ctx_enter(const struct ktls_ctx *ctx);

/*
 * An OpenSSL call on ctx failed: "<what>: <OpenSSL's reason>" under code
 * (RESOURCE instead when OpenSSL ran out of memory).  Returns -1.
 */
int ctx_openssl_err(const struct ktls_ctx *ctx, int code, const char *what);

void ctx_ref(struct ktls_ctx *ctx);
void ctx_unref(struct ktls_ctx *ctx);

/*
 * Apply the per-connection part of the policy to a fresh SSL made from
 * ctx->ssl: validate server_name (empty/leading-dot/missing-with-
 * check_hostname refused), set SNI (names only, not IP literals) and the
 * host or IP to verify, verify mode.  Freezes ctx.  0, or -1 with the
 * reason set by ctx_fail().
 */
int ctx_prepare_ssl(struct ktls_ctx *ctx, SSL *ssl, const char *server_name);

/* ---- psk.c: external PSKs --------------------------------------------- */

/* Server: our lookup knew none of the identities the client offered. */
int psk_identity_unknown(const SSL *ssl);

/* ---- keys.c: secret capture, record counting, key derivation ------------ */

/*
 * Installed by ktls_ctx_new on every SSL_CTX: the keylog callback (traffic
 * secrets; also appends to $SSLKEYLOGFILE when that was set) and the msg
 * callback (record counting for exact sequence numbers).  0 or -1.
 */
int keys_ctx_init(SSL_CTX *ssl_ctx);

/* Per-connection key state, attached to the SSL as ex_data. */
struct conn_keys;
struct conn_keys *keys_conn_new(SSL *ssl);
void keys_conn_free(struct conn_keys *k);

/* ---- conn.c / kernel_*.c: connections ----------------------------------- */

struct ktls_conn {
	struct ktls_ctx *ctx;
	SSL *ssl;
	int fd;
	int handshake_done;
	int offload_tried;
	int tx, rx;                   /* KTLS_MODE_* */
	int peer_closed;              /* close_notify received */
	int we_closed;                /* close_notify sent */
	struct conn_keys *keys;
	struct kernel_state *kernel;  /* once TX went to the kernel (kernel.h) */
	char fallback[KTLS_ERRLEN];   /* why a direction stayed in userspace */
	char hw_fallback[KTLS_ERRLEN]; /* why TX is SW beside an offloading device */
	char err[KTLS_ERRLEN];
	int err_code;                 /* KTLS_ERR_* of err */
	int peer_alert;               /* fatal alert received, -1 none */
	int zc_tx, rx_no_pad;         /* opt-ins the kernel accepted */
	int seen_nonblock;            /* fd was O_NONBLOCK at a would-block */
	char alpn[256];               /* the selected ALPN protocol, once asked */
};

/* Set conn->err and its KTLS_ERR_* code; returns -1. */
int conn_fail(struct ktls_conn *c, int code, const char *fmt, ...) KTLS_PRINTF(3, 4);
/*
 * An operation on c would block: returns want (KTLS_WANT_*) as it is, and
 * on a blocking socket, where that means SO_RCVTIMEO/SO_SNDTIMEO expired,
 * also sets KTLS_ERR_TIMEOUT naming what timed out.  Once the socket was
 * seen non-blocking it is not asked again (callers switch a socket to
 * non-blocking after the handshake, not back), which saves a fcntl per
 * EAGAIN on the servers' path.
 */
int conn_would_block(struct ktls_conn *c, int want, const char *what);

/* ocsp.c: why the client's OCSP check failed the handshake on ssl, or NULL. */
const char *ocsp_failure(const SSL *ssl);

/*
 * kernel_io.c: I/O on a direction that kTLS owns.  Same return conventions as
 * the public calls (bytes, 0 = close_notify, KTLS_WANT_*, -1 with conn->err
 * set).  kernel_read consumes post-handshake handshake records (tickets,
 * KeyUpdate) itself.
 */
ssize_t kernel_read(struct ktls_conn *c, void *buf, size_t len);
/* RX in the kernel failed for good: the next kernel_read returns at once. */
int kernel_rx_failed(const struct ktls_conn *c);
/*
 * The same for a receive the caller made itself (io_uring): res is what
 * recvmsg returned (bytes or -errno), type the TLS_GET_RECORD_TYPE cmsg (0
 * when none), buf the bytes.  KTLS_WANT_READ also when a control record
 * was handled and nothing is left for the caller.
 */
ssize_t kernel_read_done(struct ktls_conn *c, int res, int type, void *buf);
ssize_t kernel_write(struct ktls_conn *c, const void *buf, size_t len, int more);
ssize_t kernel_sendfile(struct ktls_conn *c, int in_fd, off_t *offset, size_t count);
int kernel_send_alert(struct ktls_conn *c, int level, int desc);
/* kernel_install.c: the after-offload state, zeroized.  NULL is fine. */
struct kernel_state;
void kernel_state_free(struct kernel_state *ks);

#endif /* KTLS_INTERNAL_H */
