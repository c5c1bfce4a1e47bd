/*
 * uring.c - the io_uring bulk path (see ktls_uring.h).
 *
 * Splice path: pairs of SPLICE SQEs, file -> pipe -> socket, linked into
 * one chain of up to URING_CHAIN pairs; one chain (or one drain, below) in
 * flight at a time.  A file->pipe splice only starts on an empty pipe, so
 * it never blocks, and a short splice breaks the chain (io_uring fails the
 * rest of a chain when a splice returns less than asked); what is left in
 * the pipe is then drained by a lone pipe->socket splice before the next
 * chain.  SPLICE_F_MORE rides on every pipe->socket splice but the one
 * that carries the last byte, so kTLS cuts full 16 KiB records.
 *
 * One CQE per chain, so one wakeup of the caller's ring: where the kernel
 * has IORING_FEAT_CQE_SKIP, every SQE of a chain but its last is marked
 * IOSQE_CQE_SKIP_SUCCESS.  If all succeed only the last posts; if one
 * fails it posts and the kernel cancels the rest without CQEs
 * (REQ_F_SKIP_LINK_CQES).  Each SQE's user_data carries its pair's index
 * (bits 48-55), so the one CQE says how far the chain got: every pair
 * before it moved all it was asked to, and an OUT's own IN did too.
 * Without CQE skipping every SQE posts, and a chain is one pair.  The
 * POLL_ADD that waits for room after EAGAIN is linked to its drain the
 * same way.
 *
 * Userspace path: ktls_conn_sendfile() on the non-blocking socket in
 * bursts of at most URING_BURST bytes; POLL_ADD when the socket is full,
 * NOP to yield the ring between bursts.
 *
 * Key limits: splices count their records into the connection's kernel TX
 * record counter (over-counting by one per splice, which errs safe).  A
 * chain is cut short of an AES-GCM key's limit; when not even one pair
 * fits, or the peer is owed a KeyUpdate, the rest of the transfer goes
 * through ktls_conn_sendfile(), whose kTLS path rekeys (TLS 1.3 where the
 * kernel can) or closes with close_notify.  A KeyUpdate asked for during a
 * chain is answered when the chain ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "proto.h"
#include "ktls_uring.h"

/*
 * Pipe capacity: one splice pair moves at most this much, and each pair
 * costs the caller one ring wakeup.  A pipe starts at 256 KiB (16 records)
 * and grows to 1 MiB, the default fs.pipe-max-size, the first time it
 * serves a transfer larger than it: a 1 MiB body then takes one pair, not
 * four, and a 64 MiB one about 64.  Servers of small files keep small
 * pipes, which matters because an unprivileged user's pipes share
 * fs.pipe-user-pages-soft (64 MiB by default; see kernel-notes).
 */
#define URING_PIPE_WANT (256 * 1024)
#define URING_PIPE_BIG (1024 * 1024)
#define URING_BURST (1024 * 1024)     /* userspace bytes per ring turn */
/*
 * Splice pairs per chain: a 64 MiB body is four chains of 1 MiB pairs.
 * Bounds the SQ slots one transfer takes (2 per pair) and how long an
 * owed KeyUpdate waits.
 */
#define URING_CHAIN 16
#define UD_STEP_SHIFT 48 /* the pair's index in user_data (KTLS_URING_RESERVED) */

struct ktls_uring_xfer {
	ktls_conn *conn;
	int sock;
	int mode;            /* KTLS_MODE_* of TX, fixed at creation */
	int pipe[2];         /* splice path only */
	size_t pipe_sz;      /* capacity, a multiple of 16 KiB */
	/* current transfer */
	int fd;
	off_t off;           /* next file offset to read */
	uint64_t total;      /* bytes asked for */
	uint64_t queued_in;  /* bytes moved into the pipe so far */
	uint64_t sent;       /* bytes accepted by the socket */
	size_t pipe_fill;    /* bytes sitting in the pipe */
	/* the chain in flight (chain_n 0: none) */
	int chain_n;         /* pairs in it */
	int chain_done;      /* pairs credited so far */
	int chain_in_seen;   /* the IN of pair chain_done has been credited */
	int in_broke;        /* ... and it moved less than asked: its OUT is cancelled */
	size_t chain_len[URING_CHAIN]; /* bytes each pair moves */
	uint64_t ud;
	int inflight;        /* CQEs still to come */
	int skip_cqe;        /* the ring has IORING_FEAT_CQE_SKIP */
	int failed;
	int pumping;         /* splice path handed over to ktls_conn_sendfile */
	char err[KTLS_ERRLEN];
	int err_code;        /* KTLS_ERR_* of err */
};

/* Set the transfer's error and its KTLS_ERR_* code; returns -1. */
static int xfer_seterr(struct ktls_uring_xfer *x, int code, const char *fmt, ...)
	KTLS_PRINTF(3, 4);
static int xfer_seterr(struct ktls_uring_xfer *x, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vseterr(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	x->err_code = code;
	return -1;
}

static int xfer_fail(struct ktls_uring_xfer *x, int code, const char *fmt, ...) KTLS_PRINTF(3, 4);
static int xfer_fail(struct ktls_uring_xfer *x, int code, const char *fmt, ...)
{
	va_list ap;

	if (!x->failed) { /* keep the first cause */
		va_start(ap, fmt);
		buf_vseterr(x->err, sizeof(x->err), fmt, ap);
		va_end(ap);
		x->err_code = code;
	}
	x->failed = 1;
	return x->inflight ? 0 : -1;
}

/*
 * Room for up to max SQEs, flushing the queue once only when there is less
 * than min: all members of a link must be taken before any is submitted,
 * or the kernel would start the first ones as a link of their own.
 * Returns the room there is, at most max (less than min: too little).
 */
static unsigned sq_room(struct io_uring *ring, unsigned min, unsigned max)
{
	unsigned room = io_uring_sq_space_left(ring);

	if (room < min) {
		io_uring_submit(ring);
		room = io_uring_sq_space_left(ring);
	}
	return room < max ? room : max;
}

static struct io_uring_sqe *get_sqe(struct io_uring *ring)
{
	return sq_room(ring, 1, 1) ? io_uring_get_sqe(ring) : NULL;
}

KTLS_API ktls_uring_xfer *ktls_uring_xfer_new(ktls_conn *conn)
{
	struct ktls_uring_xfer *x;
	struct ktls_info info;

	if (!conn || ktls_conn_info(conn, &info) != 0) {
		errno = EINVAL;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->conn = conn;
	x->sock = ktls_conn_fd(conn);
	x->mode = info.tx;
	x->pipe[0] = x->pipe[1] = -1;
	x->fd = -1;
	return x;
}

/*
 * Empty pipes between transfers, per thread (a ring and its transfers
 * belong to one thread): a transfer takes one and gives it back when it
 * ends with the pipe empty, so a connection costs no pipe2/fcntl/close
 * and an idle keep-alive connection holds no pipe (nor its share of the
 * user's pipe-buffer limit).  A pipe left holding bytes is closed.
 */
#define PIPE_CACHE 8
static __thread struct {
	int fd[PIPE_CACHE][2];
	size_t sz[PIPE_CACHE];
	int n;
} pipes;
static pthread_key_t pipes_key;
static pthread_once_t pipes_once = PTHREAD_ONCE_INIT;

static void pipes_close_all(void *unused)
{
	(void)unused;
	while (pipes.n > 0) {
		pipes.n--;
		close(pipes.fd[pipes.n][0]);
		close(pipes.fd[pipes.n][1]);
	}
}

/* A forked child must not share its parent's cached pipes. */
static void pipes_after_fork(void)
{
	pipes_close_all(NULL);
}

static void pipes_init(void)
{
	pthread_key_create(&pipes_key, pipes_close_all);
	pthread_atfork(NULL, NULL, pipes_after_fork);
}

/* Give x's pipe back (it must be empty, nothing in flight). */
static void pipe_release(struct ktls_uring_xfer *x)
{
	if (x->pipe[0] < 0)
		return;
	if (x->pipe_fill || x->inflight || pipes.n == PIPE_CACHE) {
		close(x->pipe[0]);
		close(x->pipe[1]);
	} else {
		pthread_once(&pipes_once, pipes_init);
		pthread_setspecific(pipes_key, &pipes); /* closes them at thread exit */
		pipes.fd[pipes.n][0] = x->pipe[0];
		pipes.fd[pipes.n][1] = x->pipe[1];
		pipes.sz[pipes.n++] = x->pipe_sz;
	}
	x->pipe[0] = x->pipe[1] = -1;
}

/* The splice path's pipe: a cached one, else a new one. */
static int make_pipe(struct ktls_uring_xfer *x)
{
	int sz;

	if (x->pipe[0] >= 0)
		return 0;
	if (pipes.n > 0) {
		pipes.n--;
		x->pipe[0] = pipes.fd[pipes.n][0];
		x->pipe[1] = pipes.fd[pipes.n][1];
		x->pipe_sz = pipes.sz[pipes.n];
		return 0;
	}
	if (pipe2(x->pipe, O_CLOEXEC) < 0) {
		x->pipe[0] = x->pipe[1] = -1;
		return xfer_seterr(x, errno == EMFILE || errno == ENFILE ? KTLS_ERR_RESOURCE
								       : kernel_errno_code(errno),
				   "pipe2: %s", strerror(errno));
	}
	/* Bigger pipes mean fewer splices; the default 64 KiB also works. */
	sz = fcntl(x->pipe[1], F_SETPIPE_SZ, URING_PIPE_WANT);
	if (sz < 0)
		sz = fcntl(x->pipe[1], F_GETPIPE_SZ);
	if (sz < 16384)
		sz = 65536;
	x->pipe_sz = (size_t)sz & ~(size_t)16383;
	return 0;
}

/* A transfer larger than the pipe: try once to grow it (see URING_PIPE_BIG). */
static void pipe_grow(struct ktls_uring_xfer *x)
{
	int sz;

	if (x->pipe_sz >= URING_PIPE_BIG || x->total - x->queued_in <= x->pipe_sz)
		return;
	sz = fcntl(x->pipe[1], F_SETPIPE_SZ, URING_PIPE_BIG);
	if (sz >= 16384 && (size_t)sz > x->pipe_sz) /* else EPERM over the user's limit: keep it */
		x->pipe_sz = (size_t)sz & ~(size_t)16383;
}

KTLS_API void ktls_uring_xfer_free(ktls_uring_xfer *x)
{
	if (!x)
		return;
	pipe_release(x);
	free(x);
}

static uint64_t step_ud(const struct ktls_uring_xfer *x, uint64_t tag, int pair)
{
	return x->ud | tag | (uint64_t)pair << UD_STEP_SHIFT;
}

/* Prepare a pipe -> socket splice of n bytes; MORE unless they end the transfer. */
static void prep_out(struct ktls_uring_xfer *x, struct io_uring_sqe *sqe, size_t n,
		     uint64_t sent_before, int pair)
{
	unsigned flags = SPLICE_F_MOVE;

	if (sent_before + n < x->total)
		flags |= SPLICE_F_MORE;
	io_uring_prep_splice(sqe, x->pipe[0], -1, x->sock, -1, (unsigned)n, flags);
	io_uring_sqe_set_data64(sqe, step_ud(x, KTLS_URING_TAG_OUT, pair));
}

/*
 * Drain the pipe's bytes to the socket, after waiting for room when wait
 * is set (a POLL_ADD linked ahead): one CQE either way, as in a chain.
 */
static int queue_drain(struct ktls_uring_xfer *x, struct io_uring *ring, int wait)
{
	struct io_uring_sqe *sqe;
	unsigned n = wait ? 2 : 1;

	if (sq_room(ring, n, n) < n)
		return xfer_fail(x, KTLS_ERR_RESOURCE, "io_uring submission queue full");
	if (wait) {
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_poll_add(sqe, x->sock, POLLOUT);
		io_uring_sqe_set_data64(sqe, x->ud | KTLS_URING_TAG_USER);
		sqe->flags |= IOSQE_IO_LINK;
		if (x->skip_cqe)
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		else
			x->inflight++;
	}
	sqe = io_uring_get_sqe(ring);
	prep_out(x, sqe, x->pipe_fill, x->sent, 0);
	x->inflight++;
	return 0;
}

static int user_pump(struct ktls_uring_xfer *x, struct io_uring *ring);

/*
 * The next chain from an empty pipe: as many whole pairs as URING_CHAIN,
 * the room in the submission queue and the key's record limit allow.
 */
static int queue_chain(struct ktls_uring_xfer *x, struct io_uring *ring)
{
	int max = (int)sq_room(ring, 2, x->skip_cqe ? 2 * URING_CHAIN : 2) / 2, m = 0;
	uint64_t at = x->queued_in, sent = x->sent;
	off_t off = x->off;
	size_t bytes = 0;

	if (max == 0)
		return xfer_fail(x, KTLS_ERR_RESOURCE, "io_uring submission queue full");
	while (m < max && at + bytes < x->total) {
		size_t n = x->total - at - bytes < x->pipe_sz ? (size_t)(x->total - at - bytes)
							       : x->pipe_sz;

		if (kernel_tx_needs_checks(x->conn->kernel, bytes + n, (unsigned)m + 1))
			break;
		x->chain_len[m++] = n;
		bytes += n;
	}
	if (m == 0) {
		x->pumping = 1;
		return user_pump(x, ring);
	}
	for (int i = 0; i < m; i++) {
		struct io_uring_sqe *in = io_uring_get_sqe(ring), *out = io_uring_get_sqe(ring);
		size_t n = x->chain_len[i];

		io_uring_prep_splice(in, x->fd, (int64_t)off, x->pipe[1], -1, (unsigned)n, SPLICE_F_MOVE);
		io_uring_sqe_set_data64(in, step_ud(x, KTLS_URING_TAG_IN, i));
		in->flags |= IOSQE_IO_LINK;
		prep_out(x, out, n, sent, i);
		if (i < m - 1)
			out->flags |= IOSQE_IO_LINK;
		if (x->skip_cqe) {
			in->flags |= IOSQE_CQE_SKIP_SUCCESS;
			if (i < m - 1)
				out->flags |= IOSQE_CQE_SKIP_SUCCESS;
		}
		off += (off_t)n;
		sent += n;
	}
	x->chain_n = m;
	x->chain_done = 0;
	x->chain_in_seen = 0;
	x->in_broke = 0;
	x->inflight = x->skip_cqe ? 1 : 2;
	return 0;
}

/* Queue the next step of the splice path; nothing may be in flight. */
static int splice_kick(struct ktls_uring_xfer *x, struct io_uring *ring)
{
	if (x->failed)
		return -1;
	if (x->sent == x->total) {
		pipe_release(x);
		return 1;
	}
	if (x->pipe_fill)
		return queue_drain(x, ring, 0);
	pipe_grow(x);
	return queue_chain(x, ring);
}

/* The socket was full with bytes in the pipe: wait for room, then drain. */
static int splice_wait_room(struct ktls_uring_xfer *x, struct io_uring *ring)
{
	return queue_drain(x, ring, 1);
}

/*
 * The chain's pairs before pair j moved all they were asked to: a skipped
 * CQE is a success, and the kernel posts for the first failure only.
 */
static void chain_credit(struct ktls_uring_xfer *x, int j)
{
	for (; x->chain_done < j && x->chain_done < x->chain_n; x->chain_done++) {
		size_t n = x->chain_len[x->chain_done];

		x->queued_in += n;
		x->off += (off_t)n;
		x->sent += n;
		kernel_tx_account(x->conn->kernel, n);
		x->chain_in_seen = 0;
	}
}

/* A chain's OUT for pair j posted: its IN moved all it was asked to, unless it posted too. */
static void chain_out_posted(struct ktls_uring_xfer *x, int j)
{
	chain_credit(x, j);
	if (!x->chain_in_seen && j < x->chain_n) {
		size_t n = x->chain_len[j];

		x->pipe_fill += n;
		x->queued_in += n;
		x->off += (off_t)n;
	}
	x->chain_in_seen = 0;
	x->in_broke = 0;
	x->chain_done = j + 1;
}

/* After a chain's last CQE, the next OUT is a drain's. */
static void chain_maybe_over(struct ktls_uring_xfer *x)
{
	if (!x->inflight)
		x->chain_n = 0;
}

static int queue_user(struct ktls_uring_xfer *x, struct io_uring *ring, int poll_mask)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	if (!sqe)
		return xfer_fail(x, KTLS_ERR_RESOURCE, "io_uring submission queue full");
	if (poll_mask)
		io_uring_prep_poll_add(sqe, x->sock, (unsigned)poll_mask);
	else
		io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, x->ud | KTLS_URING_TAG_USER);
	x->inflight++;
	return 0;
}

/* One burst of the userspace path. */
static int user_pump(struct ktls_uring_xfer *x, struct io_uring *ring)
{
	uint64_t budget = URING_BURST;

	while (x->sent < x->total) {
		uint64_t want = x->total - x->sent;
		ssize_t n;

		if (budget == 0)
			return queue_user(x, ring, 0);
		if (want > budget)
			want = budget;
		n = ktls_conn_sendfile(x->conn, x->fd, &x->off, (size_t)want);
		if (n > 0) {
			x->sent += (uint64_t)n;
			budget -= (uint64_t)n < budget ? (uint64_t)n : budget;
		} else if (n == 0) {
			return xfer_fail(x, KTLS_ERR_INVALID, "file ended at byte %llu of %llu",
					 (unsigned long long)x->off, (unsigned long long)(x->off + x->total - x->sent));
		} else if (n == KTLS_WANT_WRITE || n == KTLS_WANT_READ) {
			return queue_user(x, ring, n == KTLS_WANT_WRITE ? POLLOUT : POLLIN);
		} else {
			return xfer_fail(x, ktls_conn_error_code(x->conn), "%s",
					 ktls_conn_error(x->conn));
		}
	}
	/*
	 * Every byte is accepted, but the last record may still be staged
	 * (the socket was full): done only once it has left userspace, or a
	 * caller that closes next would cut it off.
	 */
	{
		ssize_t n = ktls_conn_write(x->conn, NULL, 0);

		if (n == KTLS_WANT_WRITE || n == KTLS_WANT_READ)
			return queue_user(x, ring, n == KTLS_WANT_WRITE ? POLLOUT : POLLIN);
		if (n < 0)
			return xfer_fail(x, ktls_conn_error_code(x->conn), "%s",
					 ktls_conn_error(x->conn));
	}
	return 1;
}

KTLS_API int ktls_uring_xfer_start(ktls_uring_xfer *x, struct io_uring *ring, int fd, off_t off,
				   size_t len, uint64_t user_data)
{
	if (!x || !ring || fd < 0 || off < 0 || (user_data & KTLS_URING_RESERVED)) {
		errno = EINVAL;
		if (x)
			xfer_seterr(x, KTLS_ERR_INVALID, "invalid argument");
		return -1;
	}
	if (ring->flags & IORING_SETUP_SQPOLL) {
		/* its thread submits in slices of its own choosing, which can split a link */
		errno = EINVAL;
		xfer_seterr(x, KTLS_ERR_INVALID, "rings with IORING_SETUP_SQPOLL are not supported");
		return -1;
	}
	if (x->inflight) {
		errno = EBUSY;
		xfer_seterr(x, KTLS_ERR_INVALID, "a transfer is still in flight");
		return -1;
	}
	/* a failed transfer may have left bytes in its pipe: closed, not reused */
	pipe_release(x);
	x->fd = fd;
	x->off = off;
	x->total = len;
	x->queued_in = x->sent = 0;
	x->pipe_fill = 0;
	x->chain_n = 0;
	x->skip_cqe = (ring->features & IORING_FEAT_CQE_SKIP) != 0;
	x->ud = user_data;
	x->failed = 0;
	x->pumping = 0;
	x->err[0] = '\0';
	x->err_code = KTLS_ERR_NONE;
	if (len == 0)
		return 1;
	if (x->mode == KTLS_MODE_USER)
		return user_pump(x, ring);
	if (make_pipe(x) < 0)
		return -1;
	return splice_kick(x, ring);
}

KTLS_API int ktls_uring_xfer_cqe(ktls_uring_xfer *x, struct io_uring *ring,
				 const struct io_uring_cqe *cqe)
{
	uint64_t tag = cqe->user_data & KTLS_URING_TAG_MASK;
	int pair = (int)(cqe->user_data >> UD_STEP_SHIFT & 0xff);
	int res = cqe->res;

	if (x->inflight > 0)
		x->inflight--;
	switch (tag) {
	case KTLS_URING_TAG_IN:
		chain_credit(x, pair);
		x->chain_in_seen = 1;
		x->in_broke = pair >= x->chain_n || res != (int)x->chain_len[pair];
		chain_maybe_over(x);
		if (res > 0) {
			x->pipe_fill += (size_t)res;
			x->queued_in += (uint64_t)res;
			x->off += res;
		} else if (res == 0) {
			xfer_fail(x, KTLS_ERR_INVALID, "file ended at byte %llu of %llu",
				  (unsigned long long)x->off,
				  (unsigned long long)(x->off + (x->total - x->queued_in)));
		} else { /* a head of link is cancelled only from outside: not ours to retry */
			xfer_fail(x, kernel_errno_code(-res), "splice from file: %s", strerror(-res));
		}
		break;
	case KTLS_URING_TAG_OUT:
		if (x->chain_n)
			chain_out_posted(x, pair);
		chain_maybe_over(x);
		if (res > 0) {
			x->pipe_fill -= (size_t)res < x->pipe_fill ? (size_t)res : x->pipe_fill;
			x->sent += (uint64_t)res;
			kernel_tx_account(x->conn->kernel, (size_t)res);
			/* short: the socket's buffer filled, and a splice now would EAGAIN */
			if (x->pipe_fill && x->inflight == 0 && !x->failed)
				return splice_wait_room(x, ring);
		} else if (res == -EAGAIN) {
			if (x->inflight == 0 && !x->failed && x->pipe_fill)
				return splice_wait_room(x, ring);
		} else if (res == 0) {
			xfer_fail(x, KTLS_ERR_SYSTEM, "splice to socket made no progress");
		} else if (res == -ECANCELED && (x->failed || x->in_broke)) {
			/* without CQE skipping: its IN or poll broke the link and said so */
		} else {
			xfer_fail(x, kernel_errno_code(-res), "splice to socket: %s", strerror(-res));
		}
		break;
	case KTLS_URING_TAG_USER:
		if (res < 0)
			xfer_fail(x, kernel_errno_code(-res), "poll on socket: %s", strerror(-res));
		else if (res >= 0 && (res & (POLLERR | POLLNVAL)))
			xfer_fail(x, KTLS_ERR_SYSTEM, "socket error while sending");
		break;
	default:
		return x->failed && !x->inflight ? -1 : 0;
	}
	if (x->inflight)
		return 0;
	if (x->failed)
		return -1;
	if (x->mode == KTLS_MODE_USER || x->pumping)
		return user_pump(x, ring);
	return splice_kick(x, ring);
}

KTLS_API int ktls_uring_xfer_busy(const ktls_uring_xfer *x)
{
	return x ? x->inflight : 0;
}

KTLS_API uint64_t ktls_uring_xfer_sent(const ktls_uring_xfer *x)
{
	return x ? x->sent : 0;
}

KTLS_API int ktls_uring_xfer_mode(const ktls_uring_xfer *x)
{
	return x ? x->mode : KTLS_MODE_USER;
}

KTLS_API const char *ktls_uring_xfer_error(const ktls_uring_xfer *x)
{
	return x ? x->err : "no transfer";
}

KTLS_API int ktls_uring_xfer_error_code(const ktls_uring_xfer *x)
{
	if (!x)
		return KTLS_ERR_INVALID;
	return x->err[0] ? x->err_code : KTLS_ERR_NONE;
}

KTLS_API void ktls_uring_prep_recvmsg(struct io_uring_sqe *sqe, int fd, struct ktls_uring_rx *rx,
				      void *buf, size_t len)
{
	memset(rx, 0, sizeof(*rx));
	rx->iov.iov_base = buf;
	rx->iov.iov_len = len;
	rx->msg.msg_iov = &rx->iov;
	rx->msg.msg_iovlen = 1;
	rx->msg.msg_control = rx->ctl.buf;
	rx->msg.msg_controllen = sizeof(rx->ctl.buf);
	io_uring_prep_recvmsg(sqe, fd, &rx->msg, 0);
}

KTLS_API ssize_t ktls_uring_recv_result(ktls_conn *c, const struct ktls_uring_rx *rx,
				       const struct io_uring_cqe *cqe)
{
	/* io_uring does not write msg_controllen back: read the zeroed buffer */
	const struct cmsghdr *h = &rx->ctl.align;
	int type = 0;

	if (!c || !rx || !cqe) {
		errno = EINVAL;
		return -1;
	}
	if (c->rx == KTLS_MODE_USER || !c->kernel)
		return conn_fail(c, KTLS_ERR_INVALID, "read: RX is not in the kernel (use ktls_conn_read)");
	if (cqe->res >= 0 && (rx->msg.msg_flags & MSG_CTRUNC))
		return conn_fail(c, KTLS_ERR_INTERNAL, "read: record type control message truncated");
	if (h->cmsg_len >= CMSG_LEN(sizeof(unsigned char)) && h->cmsg_level == SOL_TLS &&
	    h->cmsg_type == TLS_GET_RECORD_TYPE)
		type = *(const unsigned char *)CMSG_DATA(h);
	return kernel_read_done(c, cqe->res, type, rx->iov.iov_base);
}
