/*
 * worker.h - what a ktlsd worker's ring (worker.c) and the connections it
 * serves (http_conn.c) share: their structures, the user_data tags that
 * tell their CQEs apart, and the calls from the ring into a connection.
 */
#ifndef KTLSD_WORKER_H
#define KTLSD_WORKER_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <liburing.h>

#include "ktls.h"
#include "ktls_uring.h"

#include "clock.h"
#include "http.h"
#include "serve.h"

/* Our user_data tags (ktls_uring.h owns 1-3). */
#define TAG_ACCEPT 4ULL
#define TAG_POLL   5ULL
#define TAG_RECV   6ULL
#define TAG_SYS    7ULL

enum { ST_HS, ST_READ, ST_HDR, ST_BODY, ST_FLUSH, ST_LINGER, ST_CLOSING };

struct listener;

enum { SYS_TICK, SYS_WAKE };
struct sysev {
	struct worker *w;
	int kind;
} __attribute__((aligned(8)));

struct conn {
	struct worker *w;
	struct conn *prev, *next;
	struct conn *reap_next;  /* queued for freeing after this CQE batch */
	int reaping;
	int fd;
	ktls_conn *tls;
	ktls_uring_xfer *xfer;
	int state;
	int own_inflight;       /* our poll/recvmsg SQEs */
	int hs_done;
	int rx_kernel;          /* RX in kTLS: read with RECVMSG + cmsg */
	uint64_t deadline;      /* ms, CLOCK_MONOTONIC */
	char peer[64], host[48];
	/* request bytes */
	size_t rlen, consumed;
	/* response */
	size_t hlen, hoff;
	int filefd;
	off_t foff;
	size_t flen;
	int keep_alive, status;
	uint64_t bytes, t0_us;
	uint64_t accept_us;     /* handshake latency starts here */
	int tx_mode;            /* KTLS_MODE_*, for bytes by mode */
	char *obuf;             /* an inline response (head + body), else NULL: hdr */
	size_t lingered;        /* bytes discarded while lingering */
	int slot_freed;         /* no longer counted against --max-conns */
	int peer_counted;       /* counted in srv->peers under pkey */
	struct peer_key pkey;
	int first_byte_seen;    /* the handshake deadline replaced the first-byte one */
	int await_request;      /* a response just ended: poll before reading */
	char line[256];
	struct ktls_uring_rx rx;
	char hdr[1024];
	char rbuf[HTTP_HEADER_CAP];
} __attribute__((aligned(8)));

struct worker {
	struct srv *s;
	int id;
	pthread_t th;
	struct io_uring ring;
	struct listener *ls;
	int nls;
	int wakefd;
	struct sysev tick, wake;
	struct __kernel_timespec tick_ts;
	struct conn *head;
	struct conn *reap;      /* closed, nothing in flight: free after the batch */
	int nconns;
	int stopping;
	uint64_t stop_deadline;
	int rearm_accept;       /* accept failed (EMFILE...): retry on tick */
	uint64_t last_refuse_log;
	_Atomic uint64_t ticks; /* timer ticks handled: the watchdog's sign of life */
};


static inline struct io_uring_sqe *sqe_get(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* http_conn.c: a connection's life, driven by the worker's CQEs */
void conn_accepted(struct worker *w, int fd);  /* admit or refuse it */
void conn_on_poll(struct conn *c, int res);
void conn_on_recv(struct conn *c, const struct io_uring_cqe *cqe);
void conn_on_xfer(struct conn *c, const struct io_uring_cqe *cqe);
void conn_close(struct conn *c, int graceful);
void conn_finish(struct conn *c);
void conn_reap(struct worker *w);  /* free those closed in this CQE batch */

#endif
