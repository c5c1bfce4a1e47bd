/*
 * ktls.h - libktls: TLS handshakes under a strict policy, keys handed to kTLS.
 *
 * libktls runs a TLS 1.2/1.3 handshake with OpenSSL, then installs the
 * negotiated traffic keys into the kernel (TCP_ULP "tls", TLS_TX, TLS_RX) so
 * that record encryption happens in the kernel or on the NIC.  Where the
 * kernel cannot take a direction, the connection stays in userspace and
 * ktls_conn_info() says exactly why.
 *
 * Objects are opaque.  Every failing call leaves a one-line, human-readable
 * reason in ktls_ctx_error() / ktls_conn_error() that names the cause.
 *
 * Policy (not configurable below these floors):
 *   - a context has a role, KTLS_CLIENT or KTLS_SERVER, and refuses the other;
 *   - TLS 1.2 minimum, TLS 1.3 maximum;
 *   - forward-secret AEAD suites only (AES-GCM, ChaCha20-Poly1305);
 *   - OpenSSL security level 2: RSA/DH >= 2048 bits, ECC >= 224 bits,
 *     no SHA-1/MD5 signatures;
 *   - clients verify the peer and check the host name by default;
 *   - a context is frozen once a connection has used it, except that trust
 *     anchors may still be added.
 *
 * Threads: a frozen context may be shared by any number of threads.  A
 * connection belongs to one thread at a time.
 *
 * Key logging happens only when the SSLKEYLOGFILE environment variable is
 * set when the context is created; secrets are never logged otherwise and
 * are zeroized once they reach the kernel.  The file is opened then, never
 * through a symlink, created 0600, and refused (ktls_ctx_new fails) unless
 * it is a regular file owned by the caller that no one else may access.
 *
 * Minimal blocking client:
 *
 *     ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
 *     ktls_ctx_load_verify_locations(ctx, "ca.pem", NULL);
 *     ktls_conn *c = ktls_conn_new(ctx, fd, "example.com");
 *     if (!c || ktls_conn_handshake(c) != 0 || ktls_conn_offload(c) != 0)
 *             errx(1, "%s", c ? ktls_conn_error(c) : ktls_ctx_error(ctx));
 *     ktls_conn_write(c, "hello", 5);
 *     ktls_conn_shutdown(c);
 *     ktls_conn_free(c);
 *     ktls_ctx_free(ctx);
 */
#ifndef KTLS_H
#define KTLS_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ktls_ctx ktls_ctx;
typedef struct ktls_conn ktls_conn;

/* Roles. */
enum { KTLS_CLIENT = 1, KTLS_SERVER = 2 };

/* Peer certificate verification. */
enum { KTLS_VERIFY_NONE, KTLS_VERIFY_OPTIONAL, KTLS_VERIFY_REQUIRED };

/* Who encrypts a direction: OpenSSL in userspace, the kernel, or the NIC. */
enum { KTLS_MODE_USER, KTLS_MODE_SW, KTLS_MODE_HW };

/* Non-blocking handshakes, reads and writes return these. */
enum { KTLS_WANT_READ = -2, KTLS_WANT_WRITE = -3 };

/*
 * Why the last call on an object failed, for programs that act on the
 * cause: the agent maps these to the status NVMe/NFS see, ktlsd counts
 * failures by them.  The text from ktls_ctx_error() / ktls_conn_error()
 * says more and may be reworded; these values and their meanings are
 * stable.  Each failing call sets exactly one.
 */
enum ktls_error {
	KTLS_ERR_NONE = 0,     /* the last call succeeded */
	KTLS_ERR_INVALID,      /* bad argument, wrong role, frozen context, call out of order */
	KTLS_ERR_POLICY,       /* refused by the policy: a weak key, a version or suite outside
				* it, a peer that offered only what the policy forbids */
	KTLS_ERR_FILE,         /* a certificate, key, trust anchor or parameter file could not
				* be read or parsed */
	KTLS_ERR_PEER_CLOSED,  /* the peer closed or reset the connection without close_notify */
	KTLS_ERR_PEER_ALERT,   /* the peer sent a fatal alert: ktls_conn_peer_alert() */
	KTLS_ERR_VERIFY,       /* the peer's certificate did not verify (chain, dates,
				* revocation, none sent when one is required) */
	KTLS_ERR_HOSTNAME,     /* the certificate verified but is not for the expected name */
	KTLS_ERR_PSK_UNKNOWN,  /* no PSK identity in common: our lookup knew none the client
				* offered, or the peer answered unknown_psk_identity */
	KTLS_ERR_PSK_MISMATCH, /* the identity is known but its binder does not verify: the
				* peer holds a different key */
	KTLS_ERR_PROTOCOL,     /* the peer broke the protocol: not TLS, a malformed or
				* unexpected message, a record that fails to decrypt, overflow */
	KTLS_ERR_TIMEOUT,      /* SO_RCVTIMEO / SO_SNDTIMEO expired on a blocking socket (the
				* call returned KTLS_WANT_* as on a non-blocking one), or
				* the connection timed out (ETIMEDOUT) */
	KTLS_ERR_KERNEL,       /* the kernel refused a kTLS operation the connection needed
				* (a rekey, the second half of an install) */
	KTLS_ERR_KEY_LIMIT,    /* an AES-GCM key reached its record limit and could not be
				* rotated: the connection was closed with close_notify */
	KTLS_ERR_CLOSED,       /* the connection is finished: close_notify sent or received, or
				* an earlier fatal error (whose code this repeats instead) */
	KTLS_ERR_RESOURCE,     /* out of memory or another system resource */
	KTLS_ERR_SYSTEM,       /* another system call failed; the text names it and errno */
	KTLS_ERR_INTERNAL,     /* OpenSSL or libktls failed in a way none of the above names */
};

/* Protocol versions as they appear on the wire. */
#define KTLS_TLS1_2 0x0303
#define KTLS_TLS1_3 0x0304

struct ktls_cert_store_stats {
	unsigned x509;    /* certificates in the trust store */
	unsigned x509_ca; /* ... of which are CAs (X509_check_ca() != 0) */
	unsigned crl;     /* CRLs in the trust store */
};

struct ktls_info {
	int version;              /* KTLS_TLS1_2 or KTLS_TLS1_3 */
	const char *version_name; /* "TLSv1.2", "TLSv1.3" */
	const char *cipher;       /* OpenSSL name, e.g. "TLS_AES_256_GCM_SHA384" */
	int tx, rx;               /* KTLS_MODE_* for each direction */
	const char *fallback_reason; /* NULL when both directions are in the kernel */
	int zerocopy_tx, rx_no_pad;  /* per-context opt-ins the kernel accepted (0/1) */
	/*
	 * TX is in kernel software although the device this socket sends
	 * through has tls-hw-tx-offload on: why ("TLS 1.3: the kernel hands
	 * devices TLS 1.2 only", the device declined the cipher, ...).  NULL
	 * otherwise, including whenever no device here offers TLS offload.
	 */
	const char *hw_fallback_reason;
	int resumed;                 /* the handshake resumed a session (ticket/PSK) */
};

/* ------------------------------------------------------------------ */
/* Contexts                                                            */
/* ------------------------------------------------------------------ */

/*
 * ktls_ctx_new - a context for one role with the strict policy applied.
 * Returns NULL with errno EINVAL for any role other than KTLS_CLIENT or
 * KTLS_SERVER, ENOMEM when OpenSSL cannot allocate, and ELOOP (a symlink),
 * EPERM (not a regular file of ours, or group/other may access it) or
 * open(2)'s errno when SSLKEYLOGFILE is set but cannot be used safely.
 * Client default: KTLS_VERIFY_REQUIRED, host name checked.
 * Server default: KTLS_VERIFY_NONE (no client certificate requested).
 * The trust store starts empty; load anchors with ktls_ctx_load_verify_*.
 */
ktls_ctx *ktls_ctx_new(int role);

/* ktls_ctx_free - release a context.  Connections made from it keep their
 * own reference, so it may be freed before them.  NULL is accepted. */
void ktls_ctx_free(ktls_ctx *ctx);

/*
 * ktls_ctx_error - the reason the last call on ctx in this thread failed
 * ("" if it succeeded).  Kept per context, and per thread within it (a
 * frozen context may be shared): an error on one context never shows on
 * another, and each thread sees the failure of its own call.  The string
 * stays valid until this thread's next call on ctx, or ktls_ctx_free.
 * ktls_conn_new/_connect/_accept report here too, as they return no conn.
 */
const char *ktls_ctx_error(const ktls_ctx *ctx);

/*
 * ktls_ctx_error_code - KTLS_ERR_* of the same failure, KTLS_ERR_NONE if
 * the last call on ctx in this thread succeeded.
 */
int ktls_ctx_error_code(const ktls_ctx *ctx);

/* ktls_ctx_role - KTLS_CLIENT or KTLS_SERVER. */
int ktls_ctx_role(const ktls_ctx *ctx);

/*
 * ktls_ctx_load_cert_chain - our certificate chain (PEM, leaf first) and
 * private key (PEM; keyfile NULL means it is in certfile).  Weak keys
 * (RSA < 2048, ECC < 224 bits) and SHA-1/MD5-signed leaves are refused here,
 * with the reason.  Both roles accept a chain (a client uses it for mTLS).
 * Returns 0, or -1 with the reason in ktls_ctx_error().
 */
int ktls_ctx_load_cert_chain(ktls_ctx *ctx, const char *certfile, const char *keyfile);

/*
 * ktls_ctx_load_cert_chain_mem - the same from memory: PEM chain (leaf
 * first) in cert_pem, PEM key in key_pem (NULL: in cert_pem too).  For a
 * program that no longer may open its key files itself (ktlsd reloads
 * after dropping privileges).  The caller owns and clears the buffers.
 */
int ktls_ctx_load_cert_chain_mem(ktls_ctx *ctx, const void *cert_pem, size_t certlen,
				 const void *key_pem, size_t keylen);

/*
 * ktls_ctx_add_cert_chain - server: one more certificate chain and key (PEM
 * files, as ktls_ctx_load_cert_chain, under the same policy), served to
 * clients whose server name (SNI) it carries: a DNS name of its
 * subjectAltName (the subject's CN when it has none; "*.example.com"
 * matches one label).  Added chains that carry the same names and differ in
 * key type (ECDSA, RSA) are offered together, and the client's signature
 * algorithms pick one, as for the default chain.  A client that sends no
 * name, or one no added chain carries, gets the chain of
 * ktls_ctx_load_cert_chain.  Chains are numbered 1, 2, ... in the order
 * added (0: the default), for ktls_ctx_set_sni_callback.
 */
int ktls_ctx_add_cert_chain(ktls_ctx *ctx, const char *certfile, const char *keyfile);
/* ktls_ctx_add_cert_chain_mem - the same from PEM bytes in memory (key_pem
 * NULL: the key is in cert_pem), as ktls_ctx_load_cert_chain_mem. */
int ktls_ctx_add_cert_chain_mem(ktls_ctx *ctx, const void *cert_pem, size_t certlen,
				const void *key_pem, size_t keylen);

/*
 * ktls_ctx_set_sni_callback - server: choose the chain yourself (Python's
 * sni_callback), instead of by name.  fn gets the server name the client
 * sent (NULL when none) and returns the number of a chain (0 the default,
 * n the n-th added, which brings the added chains of the same names with
 * it), or -1 to end the handshake with the unrecognized_name alert.  Runs
 * on whatever thread drives a handshake of this context.
 */
typedef int (*ktls_sni_fn)(void *arg, const char *server_name);
int ktls_ctx_set_sni_callback(ktls_ctx *ctx, ktls_sni_fn fn, void *arg);

/*
 * ktls_ctx_load_verify_locations - add trust anchors (and CRLs) from a PEM
 * file and/or a hashed directory (capath is searched lazily, as OpenSSL
 * does; on a frozen context its hashed files are read at once instead,
 * since adding a lookup directory under running handshakes would race).
 * At least one must be non-NULL.  Allowed on a frozen context.
 */
int ktls_ctx_load_verify_locations(ktls_ctx *ctx, const char *cafile, const char *capath);

/*
 * ktls_ctx_load_verify_mem - add trust anchors from memory: one or more PEM
 * certificates/CRLs, or one or more concatenated DER certificates (or
 * CRLs).  Nothing is added unless the whole input parses.  Allowed
 * on a frozen context.  Duplicates are ignored.
 */
int ktls_ctx_load_verify_mem(ktls_ctx *ctx, const void *pem_or_der, size_t len);

/*
 * ktls_ctx_set_ciphers - narrow the TLS 1.2 suites (OpenSSL cipher-list
 * syntax).  The result must be a non-empty subset of the policy's set; a
 * list naming any suite outside it is refused, naming that suite.
 */
int ktls_ctx_set_ciphers(ktls_ctx *ctx, const char *openssl_tls12_list);

/*
 * ktls_ctx_set_ciphersuites - narrow the TLS 1.3 suites (colon-separated
 * IANA names).  Only TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256
 * and TLS_AES_128_GCM_SHA256 are allowed.
 */
int ktls_ctx_set_ciphersuites(ktls_ctx *ctx, const char *tls13_list);

/* ktls_ctx_set_min_version - KTLS_TLS1_2 or KTLS_TLS1_3; lower is refused. */
int ktls_ctx_set_min_version(ktls_ctx *ctx, int version);

/* ktls_ctx_set_max_version - KTLS_TLS1_2 or KTLS_TLS1_3, not below the minimum. */
int ktls_ctx_set_max_version(ktls_ctx *ctx, int version);

/*
 * ktls_ctx_set_verify - KTLS_VERIFY_*.  On a client, NONE is refused while
 * host name checking is on (turn it off first), as Python does.  On a
 * server, OPTIONAL/REQUIRED request a client certificate (mTLS).
 */
int ktls_ctx_set_verify(ktls_ctx *ctx, int mode);

/*
 * ktls_ctx_set_check_hostname - client only.  Turning it on while verify
 * is NONE raises verify to REQUIRED.  Wildcards match one whole left-most
 * label only ("f*.example.com" never matches).
 */
int ktls_ctx_set_check_hostname(ktls_ctx *ctx, int on);

/*
 * ktls_ctx_set_alpn - the application protocols (RFC 7301 ALPN), most
 * preferred first, comma-separated: "h2,http/1.1".  A client offers them;
 * a server picks the first of its own that the client offered, answers a
 * client that offered none of them with the fatal no_application_protocol
 * alert (its handshake fails with KTLS_ERR_POLICY, the client's with
 * KTLS_ERR_PEER_ALERT, alert 120), and serves a client that sent no ALPN
 * at all without one.  NULL or "" removes the list.  Each protocol is 1 to
 * 255 bytes.  ktls_conn_alpn tells what was selected.
 */
int ktls_ctx_set_alpn(ktls_ctx *ctx, const char *protocols);

/*
 * ktls_ctx_set_ocsp_staple_file / ktls_ctx_set_ocsp_staple_mem - server
 * only, after the certificate is loaded: send this DER OCSP response
 * (from the CA's responder, e.g. `openssl ocsp -respout`) to clients that
 * ask for the certificate's status (RFC 6066 status_request; TLS 1.2 and
 * 1.3), as nginx's ssl_stapling_file.  It is checked here: it must be a
 * successful response about our certificate (serial and issuer), saying
 * good, and current (5 minutes of clock skew allowed); otherwise the call
 * fails with KTLS_ERR_INVALID and the reason ("OCSP staple not used: it is
 * stale ...") and nothing is stapled.  Once its nextUpdate passes it is no
 * longer sent.  It belongs to the chain loaded or added last
 * (ktls_ctx_load_cert_chain, ktls_ctx_add_cert_chain): call it after each
 * chain that has one; each keeps its own, and a client is stapled only
 * the response about the certificate it is served.  NULL (or len 0)
 * removes that chain's.  Replace it by building a new
 * context (a reload).
 */
int ktls_ctx_set_ocsp_staple_file(ktls_ctx *ctx, const char *path);
int ktls_ctx_set_ocsp_staple_mem(ktls_ctx *ctx, const void *der, size_t len);

/*
 * ktls_ctx_set_ocsp_require - client only: ask for the server's OCSP
 * response and fail the handshake (KTLS_ERR_VERIFY, "OCSP check failed:
 * ...", alert bad_certificate_status_response) unless one is stapled that
 * is signed by the certificate's issuer (or a responder it delegated) under
 * our trust anchors, is about the server's certificate, says good and is
 * current.  Needs verification on.  Off by default, as in Python and libtls.
 */
int ktls_ctx_set_ocsp_require(ktls_ctx *ctx, int on);

/*
 * ktls_ctx_load_dh_params - server only: PEM DH parameters (>= 2048 bits)
 * enabling the TLS 1.2 DHE-RSA-AES-GCM suites.  Smaller groups are refused.
 */
int ktls_ctx_load_dh_params(ktls_ctx *ctx, const char *pemfile);

/*
 * ktls_ctx_set_num_tickets - server only: TLS 1.3 session tickets sent
 * after each handshake (default 2, as OpenSSL).  0 means no resumption for
 * either version: no TLS 1.3 tickets and no TLS 1.2 (RFC 5077) tickets.
 * With n > 0 a TLS 1.2 client that asks gets one ticket per full handshake.
 * Tickets are sealed with keys the context makes when it is created, so
 * every connection (and thread) using the context can resume them, and
 * none made by another context.  Server contexts keep no session cache, so
 * TLS 1.2 session IDs never resume (as nginx's default "ssl_session_cache
 * none"): a per-process cache would resume only on the process that made
 * the session, and is lost on reload.
 */
int ktls_ctx_set_num_tickets(ktls_ctx *ctx, unsigned n);

/*
 * ktls_ctx_add_ticket_key - server only: seal session tickets (TLS 1.3
 * and TLS 1.2) with this key from now on instead of the context's own, so
 * that tickets outlive the context: another context with the same keys (a
 * reload, another process, another host) resumes them.  A key is
 * KTLS_TICKET_KEY_LEN bytes: a 16-byte key name, a 32-byte HMAC-SHA256 key
 * and a 32-byte AES-256-CBC key (the layout of nginx's 80-byte
 * ssl_session_ticket_key files).  Keys added earlier keep opening tickets
 * (a client resuming with one gets a new ticket under the newest key); the
 * context keeps the 4 newest and wipes the rest.  Rotate by adding keys to
 * a new context; like every setter, not on a frozen context.  The key is
 * copied and wiped when the context is freed; names must differ.
 */
#define KTLS_TICKET_KEY_LEN 80
int ktls_ctx_add_ticket_key(ktls_ctx *ctx, const unsigned char key[KTLS_TICKET_KEY_LEN]);

/*
 * TLS 1.3 external pre-shared keys (RFC 8446), as NVMe/TCP uses them:
 * psk_dhe_ke (the PSK authenticates, (EC)DHE still gives forward secrecy),
 * one identity per ClientHello.  The key length fixes the hash and thus the
 * suite: 32 bytes -> SHA-256, TLS_AES_128_GCM_SHA256; 48 bytes -> SHA-384,
 * TLS_AES_256_GCM_SHA384.  Either call also raises the minimum to TLS 1.3.
 */
#define KTLS_PSK_MAX_LEN 64

/*
 * ktls_ctx_set_psk - client: offer this identity and key.  Restricts the
 * TLS 1.3 suites to the one matching the key's hash and turns host name
 * checking off (a NULL server_name is then accepted); certificate
 * verification stays on over the (normally empty) trust store, so a server
 * that ignores the PSK and presents a certificate instead is refused.
 * Both buffers are copied; the key copy is zeroized when ctx is freed.
 * Returns 0, or -1 (wrong role, frozen context, empty identity, a key that
 * is not 32 or 48 bytes).
 */
int ktls_ctx_set_psk(ktls_ctx *ctx, const void *identity, size_t idlen,
		     const void *key, size_t keylen);

/*
 * Server-side lookup: called once per identity the ClientHello offers, in
 * order, with the raw identity bytes (not NUL-terminated).  Copy the key
 * (32 or 48 bytes) to key (KTLS_PSK_MAX_LEN bytes), set *keylen, return 1;
 * return 0 for an unknown identity, -1 for a lookup failure (internal_error
 * alert).  When no identity is known the handshake fails with the
 * unknown_psk_identity alert, and with handshake_failure when the client
 * offered no PSK at all (such a server has no certificate to fall back on).
 * A key whose length is neither 32 nor 48 counts as unknown.  May run on
 * any thread that drives a handshake of this context.
 */
typedef int (*ktls_psk_lookup_fn)(void *arg, const unsigned char *identity, size_t idlen,
				  unsigned char *key, size_t *keylen);

/* ktls_ctx_set_psk_lookup - server: authenticate clients by PSK only. */
int ktls_ctx_set_psk_lookup(ktls_ctx *ctx, ktls_psk_lookup_fn fn, void *arg);

/*
 * ktls_ctx_set_crl_check - consult the CRLs loaded into the trust store
 * (ktls_ctx_load_verify_*): KTLS_CRL_LEAF checks the peer's certificate,
 * KTLS_CRL_CHAIN every certificate of its chain.  A certificate checked
 * without a CRL from its issuer then fails ("unable to get certificate
 * CRL"), a revoked one with "certificate revoked".  Default KTLS_CRL_NONE
 * (loaded CRLs are not consulted, as in Python).  Not on a frozen context.
 */
enum { KTLS_CRL_NONE, KTLS_CRL_LEAF, KTLS_CRL_CHAIN };
int ktls_ctx_set_crl_check(ktls_ctx *ctx, int mode);

/*
 * ktls_ctx_set_zerocopy_sendfile - after TLS_TX, set TLS_TX_ZEROCOPY_RO
 * (Linux >= 5.19): with NIC (device) offload, sendfile pages go to the
 * NIC without the kernel's copy.  Only takes effect with KTLS_MODE_HW TX.
 * Safe only when the file does not change while it is being sent: the NIC
 * reads the page cache late, and a retransmitted record built from changed
 * pages fails the peer's integrity check (the connection dies).  Off by
 * default.  A kernel refusal is not an error.  ktls_info.zerocopy_tx is 1
 * only when the kernel accepted it and TX is KTLS_MODE_HW (software kTLS
 * accepts the flag but ignores it; sock_diag and ss show it the same way).
 * Not on a frozen context.
 */
int ktls_ctx_set_zerocopy_sendfile(ktls_ctx *ctx, int on);

/*
 * ktls_ctx_set_rx_no_pad - after TLS_RX on a TLS 1.3 connection, set
 * TLS_RX_EXPECT_NO_PAD (Linux >= 6.0): the kernel decrypts straight into
 * the reader's buffer, assuming records carry no padding.  Safe only with
 * peers that never pad (OpenSSL, GnuTLS and the kernel do not by default);
 * a padded record still decrypts correctly, but costs a second decryption
 * and counts in /proc/net/tls_stat TlsRxNoPadViolation.  Ignored for TLS
 * 1.2.  Off by default; refusal is not an error (ktls_info.rx_no_pad says).
 * Not on a frozen context.
 */
int ktls_ctx_set_rx_no_pad(ktls_ctx *ctx, int on);

/*
 * ktls_ctx_cert_store_stats - counts the trust store as Python's
 * SSLContext.cert_store_stats() does.  Lazily searched capath entries
 * appear only once a handshake has looked them up.
 */
int ktls_ctx_cert_store_stats(const ktls_ctx *ctx, struct ktls_cert_store_stats *out);

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/*
 * ktls_conn_new - a connection of the context's role on a connected TCP
 * socket.  server_name (client only) is the name to send as SNI and to
 * verify: a DNS name or an IP literal (verified against IP SANs, no SNI).
 * "" and names starting with '.' are refused; NULL is refused while host
 * name checking is on.  A server passes NULL.  Freezes ctx.
 * Returns NULL with the reason in ktls_ctx_error(ctx).
 */
ktls_conn *ktls_conn_new(ktls_ctx *ctx, int fd, const char *server_name);

/*
 * ktls_conn_connect / ktls_conn_accept - ktls_conn_new that also states the
 * role the caller expects: a server context given to ktls_conn_connect (or
 * a client context to ktls_conn_accept) is refused with "wrong-role context"
 * in ktls_ctx_error(), as Python refuses a PROTOCOL_TLS_CLIENT context for a
 * server socket.
 */
ktls_conn *ktls_conn_connect(ktls_ctx *ctx, int fd, const char *server_name);
ktls_conn *ktls_conn_accept(ktls_ctx *ctx, int fd);

/*
 * ktls_conn_handshake - run (or continue) the handshake.
 * Returns 0 when done, KTLS_WANT_READ / KTLS_WANT_WRITE on a non-blocking
 * socket that would block, -1 on failure (reason in ktls_conn_error(), e.g.
 * a verification error, the alert received, "peer closed the connection
 * during the handshake").
 */
int ktls_conn_handshake(ktls_conn *conn);

/*
 * ktls_conn_offload - after the handshake, install TX and RX keys into
 * kTLS with exact record sequence numbers.  Returns 0 also when the kernel
 * refused and the connection fell back to userspace (see ktls_conn_info());
 * -1 only when the connection is unusable.  Never leaves one direction
 * half-installed: either both are in the kernel, or TX alone is (RX keeps
 * running in userspace only where that is safe), or neither.
 * Key material is zeroized before it returns.
 * (TLS 1.3 keeps the current traffic secrets, which KeyUpdate needs, until
 * ktls_conn_free zeroizes them.)  With TX in the kernel, an AES-GCM key is
 * rotated by KeyUpdate before 2^24.5 records, or, where that is impossible
 * (TLS 1.2, no kernel rekey), the connection is closed with close_notify
 * and writes fail saying why.
 * A kernel without the "tls" ULP (TCP_ULP fails with ENOENT or
 * ENOPROTOOPT) is believed for one second, process-wide: offloads in that
 * second ask the kernel nothing (well under a microsecond instead of tens)
 * and report the same reason; the first one after it asks again, so a
 * later `modprobe tls` is noticed within a second.
 * Call it before the first ktls_conn_read: reading first lets OpenSSL read
 * ahead, and bytes it holds keep RX in userspace (the reason says so).
 */
int ktls_conn_offload(ktls_conn *conn);

/*
 * ktls_conn_info - negotiated version, cipher and who encrypts each way.
 * KTLS_MODE_HW vs KTLS_MODE_SW is decided once, right after the keys are
 * installed, never guessed:
 *   0. The kernel hands a direction to a NIC only through a device with
 *      tls-hw-tx-offload (tls-hw-rx-offload) active.  While no device in
 *      the process's network namespace has either (an ethtool features
 *      dump, renewed after every link notification: devices added or
 *      removed, features changed), every install is KTLS_MODE_SW and the
 *      socket is not asked.  Steady-state cost: one non-blocking recv per
 *      offload beside TCP_ULP, TLS_TX and TLS_RX.  A notification heard
 *      during the install sends this connection to step 1.  (An install
 *      in the instant between a device's offload being turned on and its
 *      notification is reported SW: HW under-reported, as in step 2.)
 *   1. sock_diag on our own socket (TLS_INFO_TXCONF/RXCONF): "hw" and
 *      "hw-record" are KTLS_MODE_HW, "sw" KTLS_MODE_SW.
 *   2. When the kernel hides the ULP info (no CAP_NET_ADMIN), the
 *      cumulative /proc/net/tls_stat counters TlsTx/RxDevice and
 *      TlsTx/RxSw read before and after our own setsockopt: each install
 *      bumps exactly one of the pair, so if Device did not move ours was
 *      software, and if Sw did not move ours was on the NIC.  When both
 *      moved (another connection in this network namespace installed keys
 *      at the same moment) the counters cannot tell, and the direction is
 *      reported as KTLS_MODE_SW; so is a direction when tls_stat is
 *      unreadable.  Only that race can under-report HW, never over-report.
 * Steps 1 and 2 cost one sock_diag query and two reads of tls_stat per
 * offload; they run only where some device has TLS offload on.  A socket
 * from another network namespace than the process's first offload is
 * judged by that namespace's devices (pass such sockets to a process in
 * their namespace when NICs differ).
 */
int ktls_conn_info(const ktls_conn *conn, struct ktls_info *out);

/*
 * ktls_conn_read - application data.  Returns bytes read, 0 on a clean
 * close_notify, KTLS_WANT_* on a non-blocking socket, -1 on error (an alert,
 * a record that failed to decrypt, the peer closing without close_notify).
 * Post-handshake handshake messages (session tickets, KeyUpdate) are
 * handled inside; they never surface as data.  Wait for the socket to
 * become readable only after KTLS_WANT_READ (or when ktls_conn_pending
 * says 0): with RX in userspace OpenSSL reads ahead (one read(2) per
 * record instead of two), and records already read from the socket wait
 * inside for the next call.
 */
ssize_t ktls_conn_read(ktls_conn *conn, void *buf, size_t len);

/*
 * ktls_conn_pending - 1 when the next ktls_conn_read returns without
 * waiting for the socket (data, close_notify or an error already held),
 * 0 when it needs the peer's next bytes: an event loop can then wait for
 * POLLIN at once instead of spending a read(2) on EAGAIN.  0 for NULL.
 */
int ktls_conn_pending(const ktls_conn *conn);

/*
 * ktls_conn_write - application data; bytes written, KTLS_WANT_*, or -1.
 * Blocking socket: writes everything (or fails).  Non-blocking socket:
 * returns the bytes accepted, like write(2).  Accepted bytes are committed:
 * the next call may pass any buffer.  (In userspace mode at most one record,
 * 16 KiB, of them may still be held to be retried at the start of the next
 * write, sendfile or shutdown; ktls_conn_write(conn, NULL, 0) only flushes
 * it: 0 once sent, KTLS_WANT_WRITE while the socket is full.)
 * KTLS_WANT_WRITE means nothing was accepted: wait for POLLOUT and call
 * again.  Never raises SIGPIPE.
 */
ssize_t ktls_conn_write(ktls_conn *conn, const void *buf, size_t len);

/*
 * ktls_conn_write_more - ktls_conn_write for bytes that more will follow
 * at once: a response head before its body.  With TX in the kernel it
 * sends with MSG_MORE, so kTLS keeps the bytes in its open record and the
 * next write, sendfile or splice (ktls_uring_xfer_start) fills that record
 * further: a head and a small body leave as one record, and the body is
 * never copied through userspace.  The record is sent when a write without
 * MSG_MORE (or the last splice of a transfer) ends it, so the caller must
 * follow with one.  In userspace mode the records are sealed as by
 * ktls_conn_write and sent with MSG_MORE, so that TCP holds them until the
 * next write and the head shares a segment with the body's first record.
 */
ssize_t ktls_conn_write_more(ktls_conn *conn, const void *buf, size_t len);

/*
 * ktls_conn_sendfile - send count bytes of in_fd from *offset (advanced by
 * what was sent).  Uses sendfile(2) into the kTLS socket when TX is in the
 * kernel, a read-and-encrypt loop otherwise; the peer sees the same bytes.
 * Returns bytes sent (0 when the file ends before count), KTLS_WANT_WRITE,
 * or -1.  *offset advances by exactly the return value, so after a short
 * return or KTLS_WANT_WRITE on a non-blocking socket, calling again with the
 * same offset pointer neither repeats nor skips a byte.  offset NULL uses
 * and advances in_fd's file position, as sendfile(2) does.
 */
ssize_t ktls_conn_sendfile(ktls_conn *conn, int in_fd, off_t *offset, size_t count);

/*
 * ktls_conn_key_update - TLS 1.3: send a KeyUpdate and switch our TX key
 * (asking the peer to update too when request_peer is non-zero).  On a
 * kTLS connection this needs kernel rekey support (Linux >= 6.14); without
 * it the call fails and says so, leaving the connection usable.
 */
int ktls_conn_key_update(ktls_conn *conn, int request_peer);

/*
 * ktls_conn_shutdown - send close_notify (as a kTLS alert record when TX
 * is offloaded).  Does not wait for the peer's.  0 or -1; on a
 * non-blocking socket also KTLS_WANT_WRITE (call again after POLLOUT).
 * Writing afterwards fails; reading still works until the peer's
 * close_notify reads as 0.
 */
int ktls_conn_shutdown(ktls_conn *conn);

/*
 * ktls_conn_psk_identity - after the handshake: 1 with the PSK identity
 * the peers agreed on (owned by the connection or its context), 0 when
 * the handshake did not use a PSK, -1 on bad arguments.
 */
int ktls_conn_psk_identity(const ktls_conn *conn, const void **identity, size_t *idlen);

/*
 * ktls_conn_peer_authenticated - after the handshake: 1 when the peer
 * proved its identity (an agreed PSK, or a certificate that verified
 * under a verify mode other than NONE), 0 when not (e.g. a server with
 * KTLS_VERIFY_OPTIONAL whose client sent no certificate), -1 on NULL.
 */
int ktls_conn_peer_authenticated(const ktls_conn *conn);

/*
 * ktls_conn_alpn - after the handshake: the application protocol the
 * peers agreed on with ALPN (ktls_ctx_set_alpn), owned by the connection;
 * NULL when none was negotiated (or before the handshake completed).
 */
const char *ktls_conn_alpn(ktls_conn *conn);

/*
 * ktls_conn_server_name - the server name (SNI, RFC 6066) of the
 * connection, owned by it: on a server, the host name the client sent in
 * its ClientHello (available from the ClientHello on, so also after a
 * failed handshake that got that far; on a resumed TLS 1.2 session, the
 * name of the handshake that made it), NULL when the client sent none;
 * on a client, the name it sends, NULL for an IP literal (no SNI).  A
 * server gets it as the client wrote it: any bytes but NUL, at most 255
 * of them, not checked to be a host name, so escape it before logging
 * or printing it.  NULL with EINVAL on a NULL conn.
 */
const char *ktls_conn_server_name(const ktls_conn *conn);

/*
 * ktls_conn_session - client, after the handshake: the connection's
 * session, to resume later with ktls_conn_set_session (Python's
 * SSLSocket.session).  Writes its DER encoding (an OpenSSL SSL_SESSION)
 * into buf and returns the length; buf NULL only sizes it.  0 when there
 * is nothing to resume yet: a TLS 1.3 server sends its tickets after the
 * handshake, so read some data first (tickets that arrive through kTLS RX
 * reach the session too); a server that sends none leaves it 0.  -1 on a
 * server connection, before the handshake, or when len is too small.
 * The bytes hold the resumption secret: whoever has them resumes as this
 * client.  Keep them as a private key and wipe them when done.
 */
ssize_t ktls_conn_session(ktls_conn *conn, unsigned char *buf, size_t len);

/*
 * ktls_conn_set_session - client, before the handshake: offer a session
 * from ktls_conn_session (TLS 1.3 PSK ticket or TLS 1.2 ticket).  Refused
 * (-1, KTLS_ERR_INVALID, the reason names it) when the bytes are not a
 * session, the session cannot be resumed, or it was made for another
 * server name than this connection's (RFC 8446 4.6.1).  The server may
 * still decline it and make a full handshake: ktls_info.resumed tells.  A
 * resumed connection offloads like any other.
 */
int ktls_conn_set_session(ktls_conn *conn, const unsigned char *der, size_t len);

/* ktls_conn_fd - the socket the connection was made on. */
int ktls_conn_fd(const ktls_conn *conn);

/* ktls_conn_error - the reason the last call on conn failed ("" if none). */
const char *ktls_conn_error(const ktls_conn *conn);

/*
 * ktls_conn_error_code - KTLS_ERR_* of the last failed call on conn
 * (KTLS_ERR_NONE before any failure; a later success does not reset it,
 * like ktls_conn_error).
 */
int ktls_conn_error_code(const ktls_conn *conn);

/*
 * ktls_conn_peer_alert - the description (0-255, RFC 8446 6) of the fatal
 * alert the peer sent, or -1 when it sent none.
 */
int ktls_conn_peer_alert(const ktls_conn *conn);

/* ktls_conn_free - release the connection; never closes its fd.  NULL ok. */
void ktls_conn_free(ktls_conn *conn);

/* ------------------------------------------------------------------ */
/* Kernel capability probe                                             */
/* ------------------------------------------------------------------ */

/* Result of one real installation attempt: 1 yes / 0 no, with the errno. */
struct ktls_probe_result {
	int ok;
	int err; /* errno when !ok, 0 otherwise */
};

enum { KTLS_PROBE_AES_128_GCM, KTLS_PROBE_AES_256_GCM, KTLS_PROBE_CHACHA20_POLY1305,
       KTLS_PROBE_NCIPHERS };

struct ktls_probe {
	int ulp;             /* the "tls" ULP attaches to a TCP socket */
	char ulp_reason[160]; /* why not, when !ulp */
	/* [version 0 = TLS 1.2, 1 = TLS 1.3][cipher][direction 0 = TX, 1 = RX] */
	struct ktls_probe_result cipher[2][KTLS_PROBE_NCIPHERS][2];
	struct ktls_probe_result zerocopy_tx;  /* TLS_TX_ZEROCOPY_RO accepted */
	struct ktls_probe_result rx_no_pad;    /* TLS_RX_EXPECT_NO_PAD accepted */
	struct ktls_probe_result rekey;        /* a second TLS_TX accepted (TLS 1.3) */
	int tls_stat;                          /* /proc/net/tls_stat exists */
	int handshake_family;                  /* genl family "handshake" resolves */
	int io_uring;                          /* io_uring_queue_init works */
	char io_uring_reason[160];
	int uring_splice, uring_sendmsg, uring_recvmsg, uring_recvmsg_multishot;
};

/*
 * ktls_probe - what this kernel offers, found by really installing keys on
 * a throwaway loopback TCP pair (never by trusting module names).
 * Returns 0; the fields say yes/no and why.
 */
int ktls_probe(struct ktls_probe *out);

/* Name of a KTLS_PROBE_* cipher, e.g. "AES-128-GCM". */
const char *ktls_probe_cipher_name(int cipher);

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

/* Stable lower-case labels for logs and metrics; "?" for unknown values. */
const char *ktls_error_name(int code);     /* "peer-closed", "verify", ... */
const char *ktls_mode_name(int mode);      /* "user", "sw", "hw" */
const char *ktls_version_name(int version); /* "TLSv1.2", "TLSv1.3" */

#ifdef __cplusplus
}
#endif

#endif /* KTLS_H */
