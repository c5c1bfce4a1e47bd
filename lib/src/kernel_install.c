/*
 * kernel_install.c - moving a connection's keys into kTLS, where each
 * direction landed (software or NIC), and why one stayed in userspace.
 *
 * Order of installation: TCP_ULP "tls", then TLS_TX, then TLS_RX.
 *   - ULP or TX refused: nothing is keyed, and a ULP without keys passes
 *     reads and writes straight to TCP, so OpenSSL carries on in userspace.
 *   - TX installed, RX refused (an old kernel without TLS_RX, a cipher the
 *     kernel cannot decrypt, or OpenSSL already holding bytes of the peer's
 *     next records): the socket cannot go back, but reads still reach TCP
 *     untouched, so OpenSSL keeps decrypting RX.  OpenSSL must then never
 *     write: its write BIO is replaced by a sink, and keys.c passes what it
 *     meant to send to kernel_sink_msg (kernel_io.c).
 *   - RX is never in the kernel without TX.
 *
 * From TLS_TX on, the connection's after-offload state is a struct
 * kernel_state (kernel.h) in c->kernel; keys.c stops tracking.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "kernel.h"
#include "netlink.h"
#include "proto.h"

void kernel_state_free(struct kernel_state *ks)
{
	if (!ks)
		return;
	if (ks->hs) {
		secure_zero(ks->hs, ks->hs_cap);
		free(ks->hs);
	}
	secure_zero(ks, sizeof(*ks));
	free(ks);
}

/* ---- fallback reasons --------------------------------------------------------------- */

static void fallback(struct ktls_conn *c, const char *fmt, ...) KTLS_PRINTF(2, 3);
static void fallback(struct ktls_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->fallback, sizeof(c->fallback), fmt, ap);
	va_end(ap);
}

/* A fixed reason, copied: the kept no-ULP verdict's path formats nothing. */
static void fallback_text(struct ktls_conn *c, const char *text)
{
	size_t n = strlen(text);

	if (n >= sizeof(c->fallback))
		n = sizeof(c->fallback) - 1;
	memcpy(c->fallback, text, n);
	c->fallback[n] = '\0';
}

static void ulp_reason(struct ktls_conn *c, int e)
{
	switch (e) {
	case ENOENT:
		fallback_text(c, "kernel has no kTLS: TCP_ULP \"tls\" failed: No such file or "
			      "directory (CONFIG_TLS missing or module not loaded)");
		break;
	case ENOPROTOOPT:
		fallback_text(c, "kernel has no kTLS: TCP_ULP is unknown (Protocol not available; "
			      "Linux < 4.13)");
		break;
	case ENOTCONN:
		fallback(c, "TCP_ULP \"tls\" failed: %s (kTLS needs an established TCP connection)",
			 strerror(e));
		break;
	case EEXIST:
		fallback(c, "TCP_ULP \"tls\" failed: %s (a ULP is already attached, e.g. by "
			 "OpenSSL's own kTLS)", strerror(e));
		break;
	case ENOTSOCK:
	case EOPNOTSUPP:
		fallback(c, "TCP_ULP \"tls\" failed: %s (kTLS needs a TCP socket)", strerror(e));
		break;
	default:
		fallback(c, "TCP_ULP \"tls\" failed: %s", strerror(e));
	}
}

/*
 * A kernel without the "tls" ULP says so for every socket, and asking
 * costs tens of microseconds (the kernel tries request_module each time).
 * So that answer (ENOENT, or ENOPROTOOPT before Linux 4.13) from the real
 * syscall is kept for KTLS_ULP_RECHECK_NS: offloads meanwhile fall back
 * for the price of a coarse clock read.  One real attempt per second costs
 * nothing at any connection rate and notices a `modprobe tls` within a
 * second.  A test's replacement seam is always asked.
 */
static _Atomic long long ulp_absent_until; /* CLOCK_MONOTONIC_COARSE ns; 0: ask */
static _Atomic int ulp_absent_errno;
_Atomic unsigned long kernel_ulp_asked;

static long long coarse_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int real_seam(void)
{
	return kernel_ops.setsockopt == kernel_ops_default.setsockopt;
}

/* The kept verdict's errno, or 0 when the kernel must be asked. */
static int ulp_known_absent(void)
{
	long long until = atomic_load_explicit(&ulp_absent_until, memory_order_relaxed);

	if (!until || !real_seam() || coarse_ns() >= until)
		return 0;
	return atomic_load_explicit(&ulp_absent_errno, memory_order_relaxed);
}

static void ulp_note(int e)
{
	if ((e != ENOENT && e != ENOPROTOOPT) || !real_seam())
		return;
	atomic_store_explicit(&ulp_absent_errno, e, memory_order_relaxed);
	atomic_store_explicit(&ulp_absent_until, coarse_ns() + KTLS_ULP_RECHECK_NS,
			      memory_order_relaxed);
}

void kernel_ulp_forget(void)
{
	atomic_store(&ulp_absent_until, 0);
}

/* Why the kernel refused a TLS_TX/TLS_RX key. */
static const char *key_hint(int e, int rx)
{
	switch (e) {
	case ENOPROTOOPT:
		return rx ? " (kernel has no TLS_RX: Linux < 4.17)" : " (kernel has no TLS_TX)";
	case EINVAL:
		return " (kernel does not know this version/cipher)";
	case ENOENT:
		return " (cipher not in the kernel crypto API: module not loaded?)";
	case EBUSY:
		return " (a key is already installed)";
	default:
		return "";
	}
}

/* Checks that need no socket call; a reason in c->fallback when not. */
static int offload_possible(struct ktls_conn *c, struct conn_keys *k, struct key_params *p)
{
	SSL *ssl = c->ssl;
	SSL_SESSION *sess = SSL_get_session(ssl);
	char why[KTLS_ERRLEN];

	if (keys_params(ssl, p, why, sizeof(why))) {
		fallback(c, "%s", why);
		return 0;
	}
	if (SSL_get_current_compression(ssl)) {
		fallback(c, "TLS compression negotiated: kTLS cannot decompress");
		return 0;
	}
	if (sess && SSL_SESSION_get_max_fragment_length(sess) != TLSEXT_max_fragment_length_DISABLED) {
		fallback(c, "max_fragment_length negotiated (%d bytes): kTLS always sends "
			 "records of up to 16 KiB", 256 << SSL_SESSION_get_max_fragment_length(sess));
		return 0;
	}
	if (BIO_get_ktls_send(SSL_get_wbio(ssl)) || BIO_get_ktls_recv(SSL_get_rbio(ssl))) {
		fallback(c, "OpenSSL's own kTLS is active on this socket (SSL_OP_ENABLE_KTLS)");
		return 0;
	}
	if (SSL_want_write(ssl) || BIO_wpending(SSL_get_wbio(ssl)) > 0) {
		fallback(c, "OpenSSL still holds an unsent record; kTLS TX would reorder it");
		return 0;
	}
	if (p->version == TLS1_3_VERSION && (!k->client_len || k->client_len != k->server_len ||
					     k->client_len != (size_t)EVP_MD_get_size(p->md))) {
		fallback(c, "TLS 1.3 traffic secrets were not captured (keylog callback replaced?)");
		return 0;
	}
	return 1;
}

/* ---- software or NIC: asked of the kernel, never guessed (ktls.h) ------------- */

int kernel_conf_mode(int conf)
{
	switch (conf) {
	case TLS_CONF_HW:
	case TLS_CONF_HW_RECORD:
		return KTLS_MODE_HW;
	case TLS_CONF_SW:
		return KTLS_MODE_SW;
	default:
		return -1; /* not reported, or no key (base) */
	}
}

int kernel_stat_mode(const struct install_stat *before, const struct install_stat *after, int rx)
{
	long long d0 = rx ? before->rx_dev : before->tx_dev, d1 = rx ? after->rx_dev : after->tx_dev;
	long long s0 = rx ? before->rx_sw : before->tx_sw, s1 = rx ? after->rx_sw : after->tx_sw;

	if (d0 < 0 || d1 < 0 || s0 < 0 || s1 < 0)
		return KTLS_MODE_SW;   /* unreadable: the NIC cannot be shown */
	if (d1 == d0)
		return KTLS_MODE_SW;   /* our install bumped one of them: not Device */
	if (s1 == s0)
		return KTLS_MODE_HW;   /* Device moved and Sw did not: ours was the NIC */
	return KTLS_MODE_SW;           /* both moved (a concurrent install): cannot tell */
}

void kernel_stat_snap(struct install_stat *s)
{
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
		{ "TlsTxDevice", offsetof(struct install_stat, tx_dev) },
		{ "TlsTxSw", offsetof(struct install_stat, tx_sw) },
		{ "TlsRxDevice", offsetof(struct install_stat, rx_dev) },
		{ "TlsRxSw", offsetof(struct install_stat, rx_sw) },
	};
	struct ktls_stat_counter *v = NULL;
	size_t n = 0;
	char err[128];

	s->tx_dev = s->tx_sw = s->rx_dev = s->rx_sw = -1;
	if (ktls_stat_read(KTLS_STAT_PATH, &v, &n, err, sizeof(err)))
		return;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof(want) / sizeof(want[0]); j++)
			if (!strcmp(v[i].name, want[j].name))
				*(long long *)((char *)s + want[j].off) = (long long)v[i].value;
	free(v);
}

/*
 * TX landed in kernel software, yet some device here has TLS offload on.
 * If it is this socket's egress device, say why the kernel did not use it
 * (the kernel does not tell: setsockopt succeeds either way).  Linux hands
 * devices TLS 1.2 AES-GCM only, 6.12 through 7.x (tls_set_device_offload);
 * anything else the device itself declined (tlsdev_ops->tls_dev_add).
 */
static void explain_tx_sw(struct ktls_conn *c, const struct key_params *p)
{
	struct ktls_nic *ni = NULL;
	size_t n = 0;
	char ifname[IF_NAMESIZE], err[128];
	int oif, on;

	if (nic_route_oif(c->fd, &oif) || !if_indextoname((unsigned)oif, ifname))
		return;
	if (ktls_nic_query(ifname, &ni, &n, err, sizeof(err)) || n != 1) {
		ktls_nic_list_free(ni, n);
		return;
	}
	on = ni[0].f[KTLS_NIC_TLS_TX].active;
	ktls_nic_list_free(ni, n);
	if (!on)
		return;
	if (p->version != TLS1_2_VERSION)
		snprintf(c->hw_fallback, sizeof(c->hw_fallback), "%s has tls-hw-tx-offload on, but "
			 "the kernel hands devices TLS 1.2 only: %s TX is in kernel software", ifname,
			 proto_version_name(p->version));
	else if (p->cipher->tls_cipher != TLS_CIPHER_AES_GCM_128 &&
		 p->cipher->tls_cipher != TLS_CIPHER_AES_GCM_256)
		snprintf(c->hw_fallback, sizeof(c->hw_fallback), "%s has tls-hw-tx-offload on, but "
			 "the kernel hands devices AES-GCM only: %s TX is in kernel software", ifname,
			 p->cipher->name);
	else
		snprintf(c->hw_fallback, sizeof(c->hw_fallback), "%s has tls-hw-tx-offload on but "
			 "declined this TLS 1.2 %s context (the driver's choice: the kernel log may "
			 "say why); TX is in kernel software", ifname, p->cipher->name);
}

/*
 * After the install: where did each kernel-owned direction land?  While
 * no device here has TLS offload active (nic_watch.c), nowhere but
 * software, and nothing needs asking.  Otherwise sock_diag on the socket,
 * then the tls_stat counters taken before (NULL: not taken).
 */
static void place_directions(struct ktls_conn *c, const struct install_stat *before)
{
	struct ktls_sock ts;
	struct install_stat after;
	char err[128];
	int tx = -1, rx = -1;

	if (!before && nic_watch_confirm_sw()) {
		/* c->tx is SW already; so is c->rx if the kernel has it */
		return;
	}
	atomic_fetch_add_explicit(&nic_watch_stats.asked, 1, memory_order_relaxed);
	memset(&ts, 0, sizeof(ts));
	if (diag_query_fd(c->fd, &ts, err, sizeof(err)) == 1) {
		tx = kernel_conf_mode(ts.txconf);
		rx = kernel_conf_mode(ts.rxconf);
	}
	if (before &&
	    ((c->tx != KTLS_MODE_USER && tx < 0) || (c->rx != KTLS_MODE_USER && rx < 0))) {
		kernel_stat_snap(&after);
		if (tx < 0)
			tx = kernel_stat_mode(before, &after, 0);
		if (rx < 0)
			rx = kernel_stat_mode(before, &after, 1);
	}
	/* Unknown (no diag and no counters): software, as ktls.h says. */
	if (c->tx != KTLS_MODE_USER)
		c->tx = tx < 0 ? KTLS_MODE_SW : tx;
	if (c->rx != KTLS_MODE_USER)
		c->rx = rx < 0 ? KTLS_MODE_SW : rx;
}

static int offload(struct ktls_conn *c, struct conn_keys *k)
{
	struct install_stat before;
	struct key_params p;
	union tls_crypto tx, rx;
	BIO *sink = NULL;
	struct kernel_state *ks = NULL;
	const unsigned char *txs = NULL, *rxs = NULL;
	size_t pending;
	int rx_ok, e, lean, ret = 0;

	if ((e = ulp_known_absent())) {
		ulp_reason(c, e);
		goto out;
	}
	if (!offload_possible(c, k, &p))
		goto out;
	if (p.version == TLS1_3_VERSION) {
		txs = k->server ? k->server_secret : k->client_secret;
		rxs = k->server ? k->client_secret : k->server_secret;
		if (keys_info_tls13(&p, txs, k->client_len, k->seq_tx, &tx) ||
		    keys_info_tls13(&p, rxs, k->client_len, k->seq_rx, &rx)) {
			fallback(c, "deriving the TLS 1.3 traffic keys failed");
			goto out;
		}
	} else if (keys_info_tls12(c->ssl, &p, 1, k->seq_tx, &tx) ||
		   keys_info_tls12(c->ssl, &p, 0, k->seq_rx, &rx)) {
		fallback(c, "deriving the TLS 1.2 key block failed");
		goto out;
	}
	/*
	 * RX may move to the kernel only if OpenSSL holds nothing of the peer's
	 * (read_ahead is off until the first ktls_conn_read, so after the
	 * handshake alone it stopped right after Finished).  N counts decrypted
	 * bytes; bytes read ahead but not yet decrypted also keep RX here.
	 */
	pending = (size_t)SSL_pending(c->ssl);
	rx_ok = !SSL_has_pending(c->ssl);
	/* Allocated first: once TX is in the kernel these must not fail. */
	sink = BIO_new(BIO_s_null());
	ks = calloc(1, sizeof(*ks));
	if (!sink || !ks) {
		fallback(c, "out of memory");
		goto out;
	}

	/* The counters are the fallback of the per-socket answer: only then. */
	lean = nic_watch_predicts_sw();
	if (!lean)
		kernel_stat_snap(&before);
	atomic_fetch_add_explicit(&kernel_ulp_asked, 1, memory_order_relaxed);
	if (kernel_ops.setsockopt(c->fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		ulp_note(errno);
		ulp_reason(c, errno);
		goto out;
	}
	if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_TX, &tx, (socklen_t)p.cipher->info_len)) {
		e = errno;
		fallback(c, "kernel refused TLS_TX for %s %s: %s%s",
			 proto_version_name(p.version), p.cipher->name,
			 strerror(e), key_hint(e, 0));
		goto out;
	}
	c->tx = KTLS_MODE_SW;
	c->kernel = ks;
	ks->fd = c->fd;
	ks->server = k->server;
	ks->p = p;
	ks->rekey_ok = -1;
	ks->tx_records = k->seq_tx;
	if (c->ctx->zc_sendfile) {
		int one = 1; /* the kernel wants exactly an int */
		/* Refused (Linux < 5.19) only means it stays off. */
		c->zc_tx = !kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_TX_ZEROCOPY_RO, &one,
						  sizeof(one));
	}
	if (!rx_ok) {
		fallback(c, "RX stays in userspace: OpenSSL already holds %zu byte(s) of the peer's "
			 "records; TX is in the kernel", pending);
	} else if (kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_RX, &rx, (socklen_t)p.cipher->info_len)) {
		e = errno;
		fallback(c, "RX stays in userspace: kernel refused TLS_RX for %s %s: %s%s; TX is in "
			 "the kernel", proto_version_name(p.version), p.cipher->name, strerror(e), key_hint(e, 1));
	} else {
		c->rx = KTLS_MODE_SW;
		ks->rx_kernel = 1;
		c->fallback[0] = '\0';
		if (c->ctx->rx_no_pad && p.version == TLS1_3_VERSION) {
			unsigned one = 1;
			/* TLS 1.3 only; refused (Linux < 6.0) means it stays off. */
			c->rx_no_pad = !kernel_ops.setsockopt(c->fd, SOL_TLS, TLS_RX_EXPECT_NO_PAD,
							      &one, sizeof(one));
		}
	}
	place_directions(c, lean ? NULL : &before);
	if (!lean && c->tx == KTLS_MODE_SW)
		explain_tx_sw(c, &p);
	/*
	 * Zero-copy acts on device TX only: software kTLS accepts the flag and
	 * ignores it, and sock_diag (so ss) shows it only with TX on the NIC.
	 */
	if (c->tx != KTLS_MODE_HW)
		c->zc_tx = 0;
	if (!ks->rx_kernel) {
		/*
		 * TX in the kernel, RX in OpenSSL: OpenSSL must never write to
		 * the socket again (its records would be wrapped as data).
		 */
		BIO *w = SSL_get_wbio(c->ssl);
		if (w != SSL_get_rbio(c->ssl))
			BIO_set_close(w, BIO_NOCLOSE);
		SSL_set0_wbio(c->ssl, sink);
		sink = NULL;
		k->sink_msg = kernel_sink_msg;
		k->sink_arg = ks;
	}
	if (p.version == TLS1_3_VERSION) {
		/* Kept for KeyUpdate only; zeroized with the connection. */
		ks->secret_len = k->client_len;
		memcpy(ks->tx_secret, txs, ks->secret_len);
		if (ks->rx_kernel)
			memcpy(ks->rx_secret, rxs, ks->secret_len);
		if (ks->rx_kernel && !ks->server) {
			memcpy(ks->ossl_rx_secret, rxs, ks->secret_len);
			ks->ossl_rx_seq = k->seq_rx;
			ks->ossl_rx_keyed = 1;
		}
	}
out:
	/* Tried once: from here on the callbacks stop keeping secrets. */
	k->offloaded = 1;
	BIO_free(sink);
	if (c->kernel != ks)
		free(ks); /* TX refused: never keyed, holds nothing */
	secure_zero(&tx, sizeof(tx));
	secure_zero(&rx, sizeof(rx));
	secure_zero(k->client_secret, sizeof(k->client_secret));
	secure_zero(k->server_secret, sizeof(k->server_secret));
	k->client_len = k->server_len = 0;
	return ret;
}

KTLS_API int ktls_conn_offload(ktls_conn *c)
{
	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (!c->handshake_done)
		return conn_fail(c, KTLS_ERR_INVALID, "offload: handshake not complete");
	if (c->offload_tried)
		return 0;
	c->offload_tried = 1;
	if (!c->keys) {
		fallback(c, "no key tracking on this connection");
		return 0;
	}
	c->fallback[0] = '\0';
	return offload(c, c->keys);
}

