/*
 * ktls_uring.h - the kTLS bulk path on the caller's own io_uring.
 *
 * Once a ktls_conn has its TX direction in the kernel (ktls_conn_offload),
 * a file range can go to the peer without entering userspace: io_uring has
 * no sendfile op, so each step is a pair of linked IORING_OP_SPLICE SQEs,
 * file -> pipe and pipe -> socket, in multiples of the 16 KiB TLS record
 * with SPLICE_F_MORE on every chunk but the last so the kernel builds full
 * records.  Short splices are resumed; each transfer reports completion or
 * one error.  Where the kernel has IORING_FEAT_CQE_SKIP, up to 16 pairs go
 * as one linked chain that ends in one CQE (IOSQE_CQE_SKIP_SUCCESS on every
 * SQE but the last), so a 1 MiB file costs the caller's ring about one
 * wakeup and a 64 MiB one about four.  When TX stayed in userspace the same calls send the same
 * bytes through ktls_conn_sendfile() on the non-blocking socket, waiting
 * with IORING_OP_POLL_ADD and yielding with IORING_OP_NOP between bursts so
 * that one large file never starves the rest of the ring.
 *
 * CQE routing.  Every SQE this API queues carries the caller's user_data
 * with a tag in its low three bits (KTLS_URING_TAG_*) and, in bits 48-55,
 * which step of a chain it is (so that a chain that breaks says where).
 * The caller's user_data must have those bits clear (KTLS_URING_RESERVED:
 * any 8-byte-aligned pointer from malloc or the stack will do, as Linux
 * gives user space addresses below 2^48 unless mmap is asked for more),
 * and the caller's own SQEs must use other tags (0, 4-7).  On each CQE:
 *
 *     if (ktls_uring_owns(cqe->user_data)) {
 *             struct my_conn *c = ktls_uring_ptr(cqe->user_data);
 *             int r = ktls_uring_xfer_cqe(c->xfer, &ring, cqe);
 *             if (r == 1)  ... transfer complete, ktls_uring_xfer_sent() bytes ...
 *             if (r < 0)   ... failed: ktls_uring_xfer_error(c->xfer) ...
 *             // r == 0: still running; more SQEs may have been queued
 *     }
 *
 * and submit the ring as usual.  A transfer that returned 1 or -1 has no
 * SQE in flight and may be freed or restarted.  To abort one (a timeout),
 * shutdown(2) the socket: the pending operations then fail promptly and
 * the transfer ends with -1.
 *
 * Example, serving a whole file on an offloaded connection:
 *
 *     ktls_uring_xfer *x = ktls_uring_xfer_new(conn);
 *     int r = ktls_uring_xfer_start(x, &ring, filefd, 0, st.st_size,
 *                                   (uint64_t)(uintptr_t)c);
 *     while (r == 0) {
 *             struct io_uring_cqe *cqe;
 *             io_uring_submit_and_wait(&ring, 1);
 *             io_uring_wait_cqe(&ring, &cqe);
 *             r = ktls_uring_xfer_cqe(x, &ring, cqe);
 *             io_uring_cqe_seen(&ring, cqe);
 *     }
 *     ktls_uring_xfer_free(x);
 *
 * Receiving on an offloaded RX direction needs recvmsg with a control
 * buffer: the kernel returns one record type per call and reports it as a
 * TLS_GET_RECORD_TYPE cmsg (a plain recv fails with EIO on control
 * records).  ktls_uring_prep_recvmsg queues one; ktls_uring_recv_result
 * hands its completion to the same code as ktls_conn_read, so alerts,
 * tickets and KeyUpdates (followed and answered on kernels that can rekey)
 * behave alike whichever way the bytes were read.
 *
 * Key limits: spliced records count against the connection's AES-GCM key
 * limit like any other kTLS write; near the limit (or when the peer asked
 * for a KeyUpdate) the rest of a transfer goes through ktls_conn_sendfile(),
 * which rekeys (TLS 1.3, kernels with kTLS rekey) or ends the connection
 * with close_notify, and the transfer then fails with that reason.
 *
 * Threads: a transfer belongs to one ring and one thread, like its conn.
 * Signals: the userspace path writes to the socket, so a peer that resets
 * raises SIGPIPE; servers ignore it (signal(SIGPIPE, SIG_IGN)) and get
 * the error as the transfer's -1.
 */
#ifndef KTLS_URING_H
#define KTLS_URING_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <liburing.h>

#include "ktls.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Low user_data bits reserved for the tags below. */
#define KTLS_URING_TAG_MASK 7ULL
/* All user_data bits a transfer sets: the tag and the step (bits 48-55). */
#define KTLS_URING_RESERVED (KTLS_URING_TAG_MASK | (0xffULL << 48))
#define KTLS_URING_TAG_IN   1ULL /* splice file -> pipe */
#define KTLS_URING_TAG_OUT  2ULL /* splice pipe -> socket */
#define KTLS_URING_TAG_USER 3ULL /* poll/nop driving the userspace fallback */

/* ktls_uring_owns - 1 when a CQE's user_data belongs to a transfer. */
static inline int ktls_uring_owns(uint64_t user_data)
{
	uint64_t t = user_data & KTLS_URING_TAG_MASK;

	return t >= KTLS_URING_TAG_IN && t <= KTLS_URING_TAG_USER;
}

/* ktls_uring_ptr - the caller's pointer back from a tagged user_data. */
static inline void *ktls_uring_ptr(uint64_t user_data)
{
	return (void *)(uintptr_t)(user_data & ~KTLS_URING_RESERVED);
}

typedef struct ktls_uring_xfer ktls_uring_xfer;

/*
 * ktls_uring_xfer_new - a transfer engine for conn (handshake done).  It
 * decides once, from ktls_conn_info(), between the splice path (TX in the
 * kernel) and the userspace path, and owns a pipe for the former (taken
 * at the first transfer from a per-thread cache or made at 256 KiB, and
 * grown to 1 MiB for the first transfer larger than that, where the
 * user's pipe limits allow).  The socket must be non-blocking.  Reusable
 * for any number of successive transfers.  NULL with errno on failure.
 *
 *     ktls_uring_xfer *x = ktls_uring_xfer_new(conn);
 *     if (!x) err(1, "ktls_uring_xfer_new");
 */
ktls_uring_xfer *ktls_uring_xfer_new(ktls_conn *conn);

/*
 * ktls_uring_xfer_free - release a transfer with nothing in flight
 * (after a 1 or -1 result, or before any start).  NULL is accepted.
 *
 *     ktls_uring_xfer_free(x);
 */
void ktls_uring_xfer_free(ktls_uring_xfer *x);

/*
 * ktls_uring_xfer_start - send len bytes of fd from offset off.  Queues
 * SQEs on ring (not submitted: the caller submits) tagged with user_data,
 * whose KTLS_URING_RESERVED bits must be clear.  A chain takes at most 32
 * SQEs, all queued before any is submitted (it is shortened to the room
 * the queue has; the queue needs 2 entries).  Rings made with
 * IORING_SETUP_SQPOLL are refused (EINVAL): their thread may submit part
 * of a link as a chain of its own.  Returns 0 when running (wait for its CQEs), 1 when
 * already complete (len 0, or the userspace path finished at once), -1 on
 * failure with the reason in ktls_uring_xfer_error().  The file must stay
 * open until the transfer ends; a file that shrinks under it ends the
 * transfer with -1.
 *
 *     if (ktls_uring_xfer_start(x, &ring, fd, 0, size, (uintptr_t)c) < 0)
 *             warnx("%s", ktls_uring_xfer_error(x));
 */
int ktls_uring_xfer_start(ktls_uring_xfer *x, struct io_uring *ring, int fd, off_t off,
			  size_t len, uint64_t user_data);

/*
 * ktls_uring_xfer_cqe - feed one CQE for which ktls_uring_owns() holds.
 * Returns 0 while running (new SQEs may have been queued), 1 when the
 * whole range was sent (every byte has left userspace: on the userspace
 * path a last record the full socket held back is flushed first, so a
 * close right after cuts nothing off), -1 on failure (nothing left in
 * flight).
 *
 *     r = ktls_uring_xfer_cqe(x, &ring, cqe);
 */
int ktls_uring_xfer_cqe(ktls_uring_xfer *x, struct io_uring *ring,
			const struct io_uring_cqe *cqe);

/*
 * ktls_uring_xfer_busy - how many of this transfer's CQEs are still to come
 * (0: nothing of it in flight).
 *
 *     if (!ktls_uring_xfer_busy(x)) ktls_uring_xfer_free(x);
 */
int ktls_uring_xfer_busy(const ktls_uring_xfer *x);

/*
 * ktls_uring_xfer_sent - bytes of the current (or last) transfer that
 * have reached the socket (for the splice path: accepted by kTLS).
 *
 *     log("%llu bytes", (unsigned long long)ktls_uring_xfer_sent(x));
 */
uint64_t ktls_uring_xfer_sent(const ktls_uring_xfer *x);

/*
 * ktls_uring_xfer_mode - KTLS_MODE_SW or KTLS_MODE_HW when transfers
 * splice into kTLS, KTLS_MODE_USER when they use the userspace path.
 *
 *     if (ktls_uring_xfer_mode(x) == KTLS_MODE_USER) ...
 */
int ktls_uring_xfer_mode(const ktls_uring_xfer *x);

/*
 * ktls_uring_xfer_error - why the last transfer failed ("" if it did not),
 * e.g. "splice to socket: Broken pipe" or "file ended at byte 4096 of 8192".
 *
 *     warnx("transfer: %s", ktls_uring_xfer_error(x));
 */
const char *ktls_uring_xfer_error(const ktls_uring_xfer *x);

/*
 * ktls_uring_xfer_error_code - the KTLS_ERR_* (ktls.h) of that failure,
 * KTLS_ERR_NONE if it did not fail: PEER_CLOSED when the peer reset or
 * closed, INVALID for a bad call or a file shorter than asked, RESOURCE for
 * a full submission queue or no pipe, the connection's own code when its
 * userspace or rekey path failed (e.g. KEY_LIMIT), SYSTEM otherwise.
 *
 *     if (ktls_uring_xfer_error_code(x) == KTLS_ERR_PEER_CLOSED) ...
 */
int ktls_uring_xfer_error_code(const ktls_uring_xfer *x);

/*
 * Per-receive state the kernel writes into: keep it alive (and unmoved)
 * until the CQE arrives.  One per outstanding RECVMSG.
 */
struct ktls_uring_rx {
	struct msghdr msg;
	struct iovec iov;
	union {
		struct cmsghdr align;
		unsigned char buf[CMSG_SPACE(sizeof(unsigned char)) + 16];
	} ctl;
};

/*
 * ktls_uring_prep_recvmsg - fill sqe with a RECVMSG on fd (a connection
 * whose RX is in the kernel) into buf, with a control buffer for the
 * record type.  The caller sets sqe->user_data (its own tag, not a
 * KTLS_URING_TAG_*) and hands the CQE to ktls_uring_recv_result.
 *
 *     struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
 *     ktls_uring_prep_recvmsg(sqe, fd, &c->rx, c->buf, sizeof(c->buf));
 *     io_uring_sqe_set_data64(sqe, (uintptr_t)c | MY_RECV_TAG);
 */
void ktls_uring_prep_recvmsg(struct io_uring_sqe *sqe, int fd, struct ktls_uring_rx *rx,
			     void *buf, size_t len);

/*
 * ktls_uring_recv_result - finish that RECVMSG exactly as ktls_conn_read
 * would have: the record goes through the library's one control-record
 * path.  Returns the bytes of application data now in buf (> 0);
 * KTLS_WANT_READ when nothing for the caller arrived (the socket had
 * nothing, or the record was one the library handled: a KeyUpdate followed
 * (and, if the peer asked, ours sent before our next data); a ticket; a
 * warning alert; an empty record): queue the next receive; 0 at the peer's close_notify; -1 on
 * failure, after the fatal alert the record called for (bad_record_mac,
 * record_overflow, decode_error, unexpected_message, ...) was sent, with
 * the reason in ktls_conn_error() and ktls_conn_error_code().  Bytes of
 * control records are wiped from buf.  -1 with KTLS_ERR_INVALID when the
 * connection's RX is not in the kernel (read it with ktls_conn_read).
 *
 *     ssize_t n = ktls_uring_recv_result(c->tls, &c->rx, cqe);
 *     if (n > 0) consume(c->buf, n);
 *     else if (n == KTLS_WANT_READ) queue_recv(c);
 *     else close_conn(c, n == 0);
 */
ssize_t ktls_uring_recv_result(ktls_conn *conn, const struct ktls_uring_rx *rx,
			       const struct io_uring_cqe *cqe);

#ifdef __cplusplus
}
#endif

#endif /* KTLS_URING_H */
