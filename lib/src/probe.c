/*
 * probe.c - what the running kernel offers for kTLS and io_uring.
 *
 * Every answer comes from really doing the thing on a throwaway object:
 * attaching the "tls" ULP to a connected loopback TCP socket, installing a
 * dummy key with setsockopt(SOL_TLS, ...), resolving a generic-netlink
 * family, submitting an io_uring request.  Module names, config files and
 * version numbers are never trusted: a module can be built but not loaded,
 * or loaded without the cipher implementation it needs (chacha20poly1305.ko
 * without chacha20/poly1305 cannot take TLS_CIPHER_CHACHA20_POLY1305).
 *
 * The dummy keys are constant, non-secret bytes; nothing is ever sent
 * through the sockets, which are closed right after each attempt.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/tls.h>
#include <liburing.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "internal.h"
#include "proto.h"

/* ---- throwaway sockets ---------------------------------------------------- */

/* A pair whose fds[0] already has the tls ULP.  0 or an errno. */
static int ulp_pair(int fds[2])
{
	int err = loopback_pair(fds);

	if (err)
		return err;
	if (setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		err = errno;
		loopback_close(fds);
		return err;
	}
	return 0;
}

/* ---- dummy crypto_info per cipher ---------------------------------------- */

/* Fill ci for (version, cipher); returns the exact optlen the kernel wants. */
static socklen_t crypto_info(union tls_crypto *ci, int version, int cipher)
{
	const struct proto_cipher *pc = &proto_ciphers[cipher];

	memset(ci, 0x5a, sizeof(*ci)); /* constant, non-secret key bytes */
	ci->info.version = (unsigned short)version;
	ci->info.cipher_type = (unsigned short)pc->tls_cipher;
	memset((unsigned char *)ci + pc->rec_seq_off, 0, pc->rec_seq_len);
	return (socklen_t)pc->info_len;
}

static void set_result(struct ktls_probe_result *r, int err)
{
	r->ok = err == 0;
	r->err = err;
}

/* setsockopt(SOL_TLS, dir) of a dummy key: 0 or an errno. */
static int install(int fd, int dir, int version, int cipher)
{
	union tls_crypto ci;
	socklen_t len = crypto_info(&ci, version, cipher);

	return setsockopt(fd, SOL_TLS, dir, &ci, len) < 0 ? errno : 0;
}

/*
 * One fresh pair per attempt: a socket takes one TLS_TX and one TLS_RX,
 * and both must agree on version and cipher, so combinations cannot share.
 */
static int try_install(int dir, int version, int cipher)
{
	int fds[2], err = ulp_pair(fds);

	if (err)
		return err;
	err = install(fds[0], dir, version, cipher);
	loopback_close(fds);
	return err;
}

/* ---- ULP ------------------------------------------------------------------ */

static void read_available_ulp(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/* Does a whitespace-separated list contain word? */
static int has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == '\t') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\t'))
			return 1;
	return 0;
}

static void probe_ulp(struct ktls_probe *p, int *ulp_err)
{
	char avail[128];
	const char *why;
	int fds[2], err = loopback_pair(fds);

	if (err) {
		*ulp_err = err;
		snprintf(p->ulp_reason, sizeof(p->ulp_reason),
			 "no loopback TCP pair: %s", strerror(err));
		return;
	}
	if (setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0) {
		loopback_close(fds);
		p->ulp = 1;
		*ulp_err = 0;
		return;
	}
	err = errno;
	loopback_close(fds);
	*ulp_err = err;

	read_available_ulp(avail, sizeof(avail));
	switch (err) {
	case ENOENT:
		/* tcp_ulp_find_autoload() found no "tls" ULP, even after
		 * request_module("tcp-ulp-tls"). */
		why = has_word(avail, "tls") ?
			      "listed in tcp_available_ulp yet not found" :
			      "not registered: CONFIG_TLS missing or module not loaded";
		break;
	case EPERM:
	case EACCES:
		why = "not permitted";
		break;
	default:
		why = "refused by the kernel";
		break;
	}
	/* A long tcp_available_ulp list may be cut; the cause comes first. */
	if (snprintf(p->ulp_reason, sizeof(p->ulp_reason),
		     "TCP_ULP \"tls\" failed: %s - %s (tcp_available_ulp: %s)", strerror(err), why,
		     avail[0] ? avail : "unreadable") >= (int)sizeof(p->ulp_reason))
		p->ulp_reason[sizeof(p->ulp_reason) - 2] = '.';
}

/* ---- options after a key is installed -------------------------------------- */

/* TLS_TX_ZEROCOPY_RO (5.19): an int 0/1 on a socket with TX installed. */
static int probe_zerocopy_tx(int version, int cipher)
{
	int fds[2], one = 1, err = ulp_pair(fds);

	if (err)
		return err;
	err = install(fds[0], TLS_TX, version, cipher);
	if (!err && setsockopt(fds[0], SOL_TLS, TLS_TX_ZEROCOPY_RO, &one, sizeof(one)) < 0)
		err = errno;
	loopback_close(fds);
	return err;
}

/* TLS_RX_EXPECT_NO_PAD (6.0): a u32 0/1, TLS 1.3 only, after TLS_RX. */
static int probe_rx_no_pad(int cipher)
{
	unsigned int one = 1;
	int fds[2], err = ulp_pair(fds);

	if (err)
		return err;
	err = install(fds[0], TLS_RX, TLS_1_3_VERSION, cipher);
	if (!err && setsockopt(fds[0], SOL_TLS, TLS_RX_EXPECT_NO_PAD, &one, sizeof(one)) < 0)
		err = errno;
	loopback_close(fds);
	return err;
}

int probe_rekey(int cipher, probe_setsockopt_fn set, enum probe_rekey_step *step)
{
	union tls_crypto ci;
	socklen_t len = crypto_info(&ci, TLS_1_3_VERSION, cipher);
	int fds[2], err = loopback_pair(fds);

	*step = PROBE_REKEY_PAIR;
	if (err)
		return err;
	*step = PROBE_REKEY_ULP;
	if (set(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		goto out;
	*step = PROBE_REKEY_KEY;
	if (set(fds[0], SOL_TLS, TLS_TX, &ci, len) < 0)
		goto out;
	*step = PROBE_REKEY_AGAIN;
	if (set(fds[0], SOL_TLS, TLS_TX, &ci, len) < 0)
		goto out;
	errno = 0;
out:
	err = errno;
	loopback_close(fds);
	return err;
}

/* ---- generic netlink -------------------------------------------------------- */

/* The net/handshake upcall family (CONFIG_NET_HANDSHAKE). */
static int probe_handshake_family(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	int ok = 0;

	if (!sk)
		return 0;
	if (genl_connect(sk) == 0)
		ok = genl_ctrl_resolve(sk, "handshake") >= 0;
	nl_socket_free(sk);
	return ok;
}

/* ---- io_uring ------------------------------------------------------------------ */

#define MS_BGID 7
#define MS_NBUF 4
#define MS_BUFSZ 256

/*
 * Multishot RECVMSG (6.0) cannot be read from io_uring_get_probe(): the
 * opcode is RECVMSG either way, the multishot flag lives in sqe->ioprio.
 * So really submit one on a socketpair with a provided buffer ring and
 * data already queued.  The kernel has it when the completion carries data
 * with IORING_CQE_F_MORE (the request stays armed); kernels without it
 * reject the flag with -EINVAL, or complete once without F_MORE.
 */
static pthread_mutex_t ms_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The buffers are static so that a request the kernel has not finished
 * cancelling can never write into a dead stack frame; the mutex keeps
 * concurrent probes from sharing them.
 */
static int probe_recvmsg_multishot(struct io_uring *ring)
{
	static char bufs[MS_NBUF][MS_BUFSZ];
	struct io_uring_buf_reg reg = { 0 };
	struct io_uring_buf_ring *br;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { .tv_sec = 1 };
	struct msghdr msg = { 0 };
	void *mem = NULL;
	int sv[2], ok = 0, registered = 0;

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	/* Provided buffer rings (5.19) must be page aligned. */
	if (posix_memalign(&mem, 4096, MS_NBUF * sizeof(struct io_uring_buf)) != 0)
		goto out;
	br = mem;
	io_uring_buf_ring_init(br);
	reg.ring_addr = (unsigned long)br;
	reg.ring_entries = MS_NBUF;
	reg.bgid = MS_BGID;
	if (io_uring_register_buf_ring(ring, &reg, 0) != 0)
		goto out; /* no buffer rings: older than 5.19, so no multishot */
	registered = 1;
	for (int i = 0; i < MS_NBUF; i++)
		io_uring_buf_ring_add(br, bufs[i], MS_BUFSZ, (unsigned short)i,
				      io_uring_buf_ring_mask(MS_NBUF), i);
	io_uring_buf_ring_advance(br, MS_NBUF);

	if (send(sv[1], "probe", 5, 0) != 5)
		goto out;
	sqe = io_uring_get_sqe(ring);
	if (!sqe)
		goto out;
	io_uring_prep_recvmsg_multishot(sqe, sv[0], &msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = MS_BGID;
	sqe->user_data = 1;
	if (io_uring_submit(ring) != 1)
		goto out;
	if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) != 0)
		goto out;
	ok = cqe->res > 0 && (cqe->flags & IORING_CQE_F_MORE);
	io_uring_cqe_seen(ring, cqe);
	if (ok) {
		/* Disarm the request before its buffers go away. */
		sqe = io_uring_get_sqe(ring);
		if (sqe) {
			io_uring_prep_cancel64(sqe, 1, 0);
			sqe->user_data = 2;
			io_uring_submit(ring);
			for (int i = 0; i < 2; i++) {
				if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) != 0)
					break;
				io_uring_cqe_seen(ring, cqe);
			}
		}
	}
out:
	if (registered)
		io_uring_unregister_buf_ring(ring, MS_BGID);
	free(mem);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

static void probe_io_uring(struct ktls_probe *p)
{
	struct io_uring ring;
	struct io_uring_probe *pr;
	int ret = io_uring_queue_init(8, &ring, 0);

	if (ret < 0) {
		snprintf(p->io_uring_reason, sizeof(p->io_uring_reason),
			 "io_uring_queue_init: %s%s", strerror(-ret),
			 -ret == EPERM ? " (kernel.io_uring_disabled?)" :
			 -ret == ENOSYS ? " (CONFIG_IO_URING off)" : "");
		return;
	}
	p->io_uring = 1;
	pr = io_uring_get_probe_ring(&ring);
	if (pr) {
		p->uring_splice = io_uring_opcode_supported(pr, IORING_OP_SPLICE);
		p->uring_sendmsg = io_uring_opcode_supported(pr, IORING_OP_SENDMSG);
		p->uring_recvmsg = io_uring_opcode_supported(pr, IORING_OP_RECVMSG);
		io_uring_free_probe(pr);
	}
	if (p->uring_recvmsg) {
		pthread_mutex_lock(&ms_lock);
		p->uring_recvmsg_multishot = probe_recvmsg_multishot(&ring);
		pthread_mutex_unlock(&ms_lock);
	}
	io_uring_queue_exit(&ring);
}

/* ---- the whole probe ------------------------------------------------------------ */

KTLS_API int ktls_probe(struct ktls_probe *out)
{
	static const int versions[2] = { TLS_1_2_VERSION, TLS_1_3_VERSION };
	static const int dirs[2] = { TLS_TX, TLS_RX };
	int ulp_err = 0, c13 = -1, err;

	memset(out, 0, sizeof(*out));
	probe_ulp(out, &ulp_err);

	for (int v = 0; v < 2; v++)
		for (int c = 0; c < KTLS_PROBE_NCIPHERS; c++)
			for (int d = 0; d < 2; d++) {
				/* Without the ULP every install fails the same way;
				 * report that errno rather than retrying 12 times. */
				err = out->ulp ? try_install(dirs[d], versions[v], c) : ulp_err;
				set_result(&out->cipher[v][c][d], err);
			}

	/* Options are probed with the first TLS 1.3 cipher both ways accept,
	 * so a missing cipher module does not read as a missing option. */
	for (int c = 0; c < KTLS_PROBE_NCIPHERS && c13 < 0; c++)
		if (out->cipher[1][c][0].ok && out->cipher[1][c][1].ok)
			c13 = c;
	if (!out->ulp) {
		set_result(&out->zerocopy_tx, ulp_err);
		set_result(&out->rx_no_pad, ulp_err);
		set_result(&out->rekey, ulp_err);
	} else if (c13 < 0) {
		/* Report the install failure itself. */
		set_result(&out->zerocopy_tx, out->cipher[1][0][0].err ? out->cipher[1][0][0].err : EINVAL);
		set_result(&out->rx_no_pad, out->cipher[1][0][1].err ? out->cipher[1][0][1].err : EINVAL);
		set_result(&out->rekey, out->cipher[1][0][0].err ? out->cipher[1][0][0].err : EINVAL);
	} else {
		set_result(&out->zerocopy_tx, probe_zerocopy_tx(TLS_1_3_VERSION, c13));
		set_result(&out->rx_no_pad, probe_rx_no_pad(c13));
		enum probe_rekey_step step;
		set_result(&out->rekey, probe_rekey(c13, setsockopt, &step));
	}

	out->tls_stat = access("/proc/net/tls_stat", R_OK) == 0;
	out->handshake_family = probe_handshake_family();
	probe_io_uring(out);
	return 0;
}
