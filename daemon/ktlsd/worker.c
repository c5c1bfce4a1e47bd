/*
 * worker.c - one worker: an io_uring, its listeners, and the CQEs that
 * drive the connections it accepted (http_conn.c).
 *
 * Everything a connection waits for is an SQE: multishot ACCEPT, POLL_ADD
 * while the handshake or a userspace read/write would block, RECVMSG with
 * a control buffer when RX is in kTLS, and the bulk path's SPLICEs (or its
 * userspace fallback) from ktls_uring.h.  A 250 ms TIMEOUT drives the
 * deadlines; an eventfd poll carries the main thread's stop request.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "ktls_uring.h"

#include "log.h"
#include "metrics.h"
#include "serve.h"
#include "worker.h"

#define TICK_MS 250
#define RING_ENTRIES 1024

struct listener {
	struct worker *w;
	int fd;
	int multishot;
	int armed;
} __attribute__((aligned(8)));

static void arm_accept(struct listener *l)
{
	struct io_uring_sqe *sqe = sqe_get(l->w);

	if (!sqe) {
		l->w->rearm_accept = 1;
		return;
	}
	if (l->multishot)
		io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)l | TAG_ACCEPT);
	l->armed = 1;
}

static void on_accept(struct listener *l, const struct io_uring_cqe *cqe)
{
	struct worker *w = l->w;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->armed = 0;
	if (cqe->res >= 0) {
		conn_accepted(w, cqe->res);
	} else if (cqe->res == -EINVAL && l->multishot) {
		l->multishot = 0; /* kernel without multishot accept */
	} else if (cqe->res != -ECANCELED) {
		uint64_t now = now_ms();

		if (now - w->last_refuse_log > 1000) {
			log_msg("accept: %s", strerror(-cqe->res));
			w->last_refuse_log = now;
		}
		if (!l->armed && (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOMEM)) {
			w->rearm_accept = 1; /* back off until the next tick */
			return;
		}
	}
	if (!l->armed && !w->stopping)
		arm_accept(l);
}

static void arm_sys(struct worker *w, struct sysev *e)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	if (!sqe)
		return;
	if (e->kind == SYS_TICK)
		io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	else
		io_uring_prep_poll_add(sqe, w->wakefd, POLLIN);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)e | TAG_SYS);
}

static void begin_stop(struct worker *w)
{
	struct conn *c, *next;

	if (w->stopping)
		return;
	w->stopping = 1;
	w->stop_deadline = now_ms() + (uint64_t)w->s->cfg.grace_ms;
	for (int i = 0; i < w->nls; i++) {
		struct io_uring_sqe *sqe;

		if (!w->ls[i].armed || !(sqe = sqe_get(w)))
			continue;
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&w->ls[i] | TAG_ACCEPT, 0);
		io_uring_sqe_set_data64(sqe, 0);
	}
	/* idle connections go now; busy ones finish their response */
	for (c = w->head; c; c = next) {
		next = c->next;
		if (c->state == ST_HS || (c->state == ST_READ && c->rlen == 0))
			conn_close(c, c->state == ST_READ);
	}
}

static void on_tick(struct worker *w)
{
	uint64_t now = now_ms();
	struct conn *c, *next;

	if (w->rearm_accept && !w->stopping) {
		w->rearm_accept = 0;
		for (int i = 0; i < w->nls; i++)
			if (!w->ls[i].armed)
				arm_accept(&w->ls[i]);
	}
	for (c = w->head; c; c = next) {
		next = c->next;
		if (c->state == ST_CLOSING)
			continue;
		if (c->state == ST_LINGER) {
			if (now >= c->deadline || (w->stopping && now >= w->stop_deadline))
				conn_finish(c);
			continue;
		}
		if (w->stopping && now >= w->stop_deadline) {
			log_msg("%s: grace period over, closing", c->peer);
			conn_close(c, 0);
		} else if (now >= c->deadline) {
			int idle = c->state == ST_READ && c->rlen == 0;

			if (c->state == ST_HS)
				metrics_handshake_failed("timeout");
			if (!idle)
				log_msg("%s: %s timeout, closing", c->peer,
					c->state == ST_HS ? "handshake" : c->state == ST_READ ? "request" : "send");
			conn_close(c, idle);
		}
	}
}

static void handle(struct worker *w, const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	void *p = ktls_uring_ptr(ud);

	if (!p)
		return; /* cancel requests */
	if (ktls_uring_owns(ud)) {
		conn_on_xfer(p, cqe);
		return;
	}
	switch (ud & KTLS_URING_TAG_MASK) {
	case TAG_ACCEPT:
		on_accept(p, cqe);
		break;
	case TAG_POLL:
		conn_on_poll(p, cqe->res);
		break;
	case TAG_RECV:
		conn_on_recv(p, cqe);
		break;
	case TAG_SYS: {
		struct sysev *e = p;

		if (e->kind == SYS_TICK) {
			on_tick(w);
			atomic_fetch_add(&w->ticks, 1);
		} else {
			uint64_t v;

			if (read(w->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_msg("worker %d: eventfd: %s", w->id, strerror(errno));
			if (atomic_load(&w->s->stopping))
				begin_stop(w);
		}
		arm_sys(w, e);
		break;
	}
	default:
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < w->nls; i++)
		arm_accept(&w->ls[i]);
	arm_sys(w, &w->tick);
	arm_sys(w, &w->wake);
	if (atomic_load(&w->s->stopping))
		begin_stop(w);
	while (!(w->stopping && w->nconns == 0)) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int r = io_uring_submit_and_wait(&w->ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_msg("worker %d: io_uring: %s", w->id, strerror(-r));
			break;
		}
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			handle(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
		conn_reap(w);
	}
	return NULL;
}

uint64_t worker_ticks(const struct worker *w)
{
	return atomic_load(&w->ticks);
}

struct worker *worker_new(struct srv *s, int id, const int *lfds, int nl)
{
	struct io_uring_params p;
	struct worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return NULL;
	w->s = s;
	w->id = id;
	w->ls = calloc((size_t)nl, sizeof(*w->ls));
	w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!w->ls || w->wakefd < 0) {
		log_msg("worker %d: %s", id, strerror(errno));
		goto fail;
	}
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	if (r == -EINVAL) { /* older kernel: plain ring */
		memset(&p, 0, sizeof(p));
		r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	}
	if (r < 0) {
		log_msg("io_uring_queue_init: %s%s", strerror(-r),
			r == -EPERM ? " (io_uring disabled: sysctl kernel.io_uring_disabled?)" : "");
		goto fail;
	}
	for (int i = 0; i < nl; i++) {
		w->ls[i].w = w;
		w->ls[i].fd = lfds[i];
		w->ls[i].multishot = 1;
	}
	w->nls = nl;
	w->tick.w = w->wake.w = w;
	w->tick.kind = SYS_TICK;
	w->wake.kind = SYS_WAKE;
	w->tick_ts.tv_sec = 0;
	w->tick_ts.tv_nsec = TICK_MS * 1000000LL;
	return w;
fail:
	if (w->wakefd >= 0)
		close(w->wakefd);
	free(w->ls);
	free(w);
	return NULL;
}

int worker_start(struct worker *w)
{
	int r = pthread_create(&w->th, NULL, worker_main, w);

	if (r)
		log_msg("worker %d: pthread_create: %s", w->id, strerror(r));
	return r ? -1 : 0;
}

void worker_wake(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->wakefd, &one, sizeof(one)) < 0)
		log_msg("worker %d: wake: %s", w->id, strerror(errno));
}

void worker_join(struct worker *w)
{
	pthread_join(w->th, NULL);
	io_uring_queue_exit(&w->ring);
	for (int i = 0; i < w->nls; i++)
		close(w->ls[i].fd);
	close(w->wakefd);
	free(w->ls);
	free(w);
}
