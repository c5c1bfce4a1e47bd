/*
 * http_conn.c - one connection's life in a worker: the TLS handshake, the
 * HTTP requests and their responses, lingering close, and freeing.
 *
 * A connection never has more than one of its own SQEs (poll or recvmsg)
 * in flight, plus those of its transfer; it is freed only when none are.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "ktls.h"
#include "ktls_uring.h"

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "path.h"
#include "serve.h"
#include "worker.h"

/*
 * A response whose head and body fit in one TLS record (2^14 bytes of
 * plaintext) leaves as one record, which is what a client reading a single
 * record expects.  In userspace TLS the body is read in behind the head and
 * sent with one write.  With kTLS TX the head goes with MSG_MORE
 * (ktls_conn_write_more) and the body is spliced into the same open
 * record, so no body byte passes through userspace at any size; larger
 * bodies then fill the head's record first.
 */
#define INLINE_MAX 16384

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

/* ---- connection lifetime ------------------------------------------------ */

static void conn_run(struct conn *c);

/* The connection stops counting against --max-conns and its client's cap. */
static void conn_release_slot(struct conn *c)
{
	struct srv *s = c->w->s;

	if (c->slot_freed)
		return;
	c->slot_freed = 1;
	atomic_fetch_sub(&s->nconns, 1);
	if (c->peer_counted) {
		peer_limit_put(s->peers, &c->pkey);
		c->peer_counted = 0;
	}
}

static void conn_free(struct conn *c)
{
	struct worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	conn_release_slot(c);
	ktls_uring_xfer_free(c->xfer);
	free(c->obuf);
	ktls_conn_free(c->tls);
	if (c->filefd >= 0)
		close(c->filefd);
	close(c->fd);
	free(c);
}

/*
 * Never freed on the spot: callers up the stack (conn_run, the CQE
 * handlers) still hold c.  The worker frees the queue after each batch.
 */
static void conn_maybe_free(struct conn *c)
{
	if (c->state == ST_CLOSING && !c->reaping && c->own_inflight == 0 &&
	    ktls_uring_xfer_busy(c->xfer) == 0) {
		c->reaping = 1;
		c->reap_next = c->w->reap;
		c->w->reap = c;
	}
}

void conn_reap(struct worker *w)
{
	while (w->reap) {
		struct conn *c = w->reap;

		w->reap = c->reap_next;
		conn_free(c);
	}
}

/* The end of a connection: nothing more is read; freed once nothing is in flight. */
void conn_finish(struct conn *c)
{
	if (c->state == ST_LINGER)
		atomic_fetch_sub(&c->w->s->nlinger, 1);
	c->state = ST_CLOSING;
	if (c->own_inflight)
		shutdown(c->fd, SHUT_RD); /* wake a pending poll/recv */
	conn_maybe_free(c);
}

/*
 * Lingering close, as nginx's lingering_close: close(2) with unread bytes
 * makes the kernel answer with RST, and a client still writing (pipelined
 * requests, the rest of a handshake) would get "connection reset" instead
 * of reading our last response or alert.  So after the FIN we read and
 * discard until the client closes, --linger-bytes were discarded or
 * --linger-time passed.  A lingering connection no longer counts against
 * --max-conns; at most max_conns of them linger at once (all workers
 * together), beyond that a connection closes at once.
 */
static int linger_reserve(struct srv *s)
{
	if (atomic_fetch_add(&s->nlinger, 1) < s->cfg.max_conns)
		return 1;
	atomic_fetch_sub(&s->nlinger, 1);
	return 0;
}

static void linger_arm(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(c->w);

	if (!sqe) {
		conn_finish(c);
		return;
	}
	/* kTLS RX: with a control buffer, so alerts read as records, not EIO */
	if (c->rx_kernel)
		ktls_uring_prep_recvmsg(sqe, c->fd, &c->rx, c->rbuf, sizeof(c->rbuf));
	else
		io_uring_prep_recv(sqe, c->fd, c->rbuf, sizeof(c->rbuf), 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | TAG_RECV);
	c->own_inflight++;
}

static void linger_start(struct conn *c)
{
	const struct cfg *cfg = &c->w->s->cfg;

	c->state = ST_LINGER;
	free(c->obuf); /* a lingering connection holds no response */
	c->obuf = NULL;
	c->lingered = 0;
	c->deadline = now_ms() + (uint64_t)cfg->linger_ms;
	conn_release_slot(c);
	/* a pending poll or recv ends in linger_cqe and arms the next read */
	if (c->own_inflight == 0)
		linger_arm(c);
}

/* A CQE of ours while lingering: res is what the read (or poll) returned. */
static void linger_cqe(struct conn *c, int res)
{
	c->own_inflight--;
	if (res > 0)
		c->lingered += (size_t)res;
	if (res == 0 || (res < 0 && res != -EAGAIN && res != -EINTR) ||
	    c->lingered >= (size_t)c->w->s->cfg.linger_bytes) {
		conn_finish(c);
		return;
	}
	if (c->own_inflight == 0)
		linger_arm(c);
}

/*
 * Close: a close_notify when the TLS stream is in a sane state, then FIN
 * and a lingering read (or, with --linger-bytes 0, shutdown(2) at once so
 * that whatever we still have in flight completes).
 */
static void arm_poll(struct conn *c, unsigned mask);
static void set_deadline(struct conn *c, int ms);

void conn_close(struct conn *c, int graceful)
{
	const struct cfg *cfg = &c->w->s->cfg;

	if (c->state == ST_CLOSING || c->state == ST_LINGER)
		return;
	if (graceful && c->hs_done) {
		int r = ktls_conn_shutdown(c->tls);

		/*
		 * A full socket: the close_notify (or a record before it) is
		 * still ours.  FIN now would cut it off; wait for room, within
		 * the idle timeout (the sweep then closes hard).
		 */
		if (r == KTLS_WANT_WRITE || r == KTLS_WANT_READ) {
			if (c->state != ST_FLUSH) {
				c->state = ST_FLUSH;
				set_deadline(c, cfg->idle_timeout_ms);
			}
			arm_poll(c, r == KTLS_WANT_READ ? POLLIN : POLLOUT);
			return;
		}
	}
	if (cfg->linger_bytes > 0 && linger_reserve(c->w->s)) {
		shutdown(c->fd, SHUT_WR);
		linger_start(c);
		return;
	}
	shutdown(c->fd, graceful ? SHUT_WR : SHUT_RDWR);
	conn_finish(c);
}

static void arm_poll(struct conn *c, unsigned mask)
{
	struct io_uring_sqe *sqe = sqe_get(c->w);

	if (!sqe) {
		log_msg("%s: io_uring full, closing", c->peer);
		conn_close(c, 0);
		return;
	}
	io_uring_prep_poll_add(sqe, c->fd, mask);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | TAG_POLL);
	c->own_inflight++;
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(c->w);

	if (!sqe) {
		conn_close(c, 0);
		return;
	}
	ktls_uring_prep_recvmsg(sqe, c->fd, &c->rx, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | TAG_RECV);
	c->own_inflight++;
}

/* ---- responses ------------------------------------------------------------ */

static void set_deadline(struct conn *c, int ms)
{
	c->deadline = now_ms() + (uint64_t)ms;
}

static void response_done(struct conn *c)
{
	struct srv *s = c->w->s;

	log_access(c->host, c->line, c->status, c->bytes, now_us() - c->t0_us);
	metrics_bytes(c->tx_mode, c->bytes);
	if (c->filefd >= 0) {
		close(c->filefd);
		c->filefd = -1;
	}
	c->flen = 0;
	free(c->obuf);
	c->obuf = NULL;
	if (!c->keep_alive || atomic_load(&s->stopping)) {
		conn_close(c, 1);
		return;
	}
	memmove(c->rbuf, c->rbuf + c->consumed, c->rlen - c->consumed);
	c->rlen -= c->consumed;
	c->consumed = 0;
	c->state = ST_READ;
	c->await_request = 1;
	set_deadline(c, c->rlen ? s->cfg.request_timeout_ms : s->cfg.idle_timeout_ms);
}

/* A response without a file body; extra header lines may be NULL. */
static void simple_response(struct conn *c, int status, const char *extra, int head_only)
{
	char body[96];
	int n, blen = 0;

	if (status >= 400) {
		blen = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
		/* after a malformed request the stream cannot be trusted */
		if (status != 403 && status != 404 && status != 416)
			c->keep_alive = 0;
	}
	n = http_format_head(c->hdr, sizeof(c->hdr), status, blen ? "text/plain; charset=utf-8" : NULL,
			     status == 304 ? -1 : blen, c->keep_alive, extra);
	if (n < 0) {
		conn_close(c, 0);
		return;
	}
	if (blen && !head_only && (size_t)n + (size_t)blen <= sizeof(c->hdr)) {
		memcpy(c->hdr + n, body, (size_t)blen);
		n += blen;
		c->bytes = (uint64_t)blen;
	}
	c->status = status;
	c->hlen = (size_t)n;
	c->hoff = 0;
	c->flen = 0;
	c->state = ST_HDR;
}

/* Head (in c->hdr, c->hlen bytes) and a small body into one buffer; closes fd. */
static void inline_body(struct conn *c, int fd, off_t first, size_t len)
{
	size_t got = 0;

	c->obuf = malloc(c->hlen + len);
	while (c->obuf && got < len) {
		ssize_t r = pread(fd, c->obuf + c->hlen + got, len - got, first + (off_t)got);

		if (r <= 0) {
			log_msg("%s: %s: read: %s", c->peer, c->line, r < 0 ? strerror(errno) : "file shrank");
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	c->flen = 0;
	if (!c->obuf || got < len) {
		free(c->obuf);
		c->obuf = NULL;
		conn_close(c, 0);
		return;
	}
	memcpy(c->obuf, c->hdr, c->hlen);
	c->hlen += len;
	c->bytes = len;
}

static void start_response(struct conn *c, int reqlen, const struct http_req *r)
{
	char rel[HTTP_HEADER_CAP], name[HTTP_HEADER_CAP], etag[64], lm[30], extra[512], *p;
	struct stat st;
	off_t first = 0, last = 0;
	int status, fd = -1, n, range = 200, head = r->method == HTTP_HEAD;

	c->consumed = (size_t)reqlen;
	c->keep_alive = r->keep_alive;
	_Static_assert(sizeof(c->line) == sizeof(r->line), "request line buffers differ");
	memcpy(c->line, r->line, sizeof(c->line)); /* NUL-terminated by http_parse */
	c->bytes = 0;

	status = path_decode(r->target, r->target_len, rel, sizeof(rel));
	if (status < 0) {
		simple_response(c, -status, NULL, head);
		return;
	}
	if (!c->w->s->cfg.serve_dotfiles && path_hidden(rel)) {
		simple_response(c, 404, NULL, head); /* as if absent: nginx's "location ~ /\." */
		return;
	}
	status = path_open(c->w->s->rootfd, rel, &fd, &st, name, sizeof(name));
	if (status != 200) {
		simple_response(c, status, NULL, head);
		return;
	}
	http_etag(&st, etag);
	http_date(st.st_mtim.tv_sec, lm);
	if (http_not_modified(r, etag, st.st_mtim.tv_sec)) {
		close(fd);
		snprintf(extra, sizeof(extra), "ETag: %s\r\nLast-Modified: %s\r\n", etag, lm);
		simple_response(c, 304, extra, 1);
		return;
	}
	if (r->range && http_if_range_ok(r, etag, st.st_mtim.tv_sec))
		range = http_range(r->range, r->range_len, st.st_size, &first, &last);
	if (range == 416) {
		close(fd);
		snprintf(extra, sizeof(extra), "Content-Range: bytes */%lld\r\n", (long long)st.st_size);
		simple_response(c, 416, extra, head);
		return;
	}
	if (range != 206) {
		first = 0;
		last = st.st_size - 1;
	}
	/* every response's, so without snprintf (as http_format_head); fits: 30 + 64 + 49 */
	p = stpcpy(extra, "Last-Modified: ");
	p = stpcpy(p, lm);
	p = stpcpy(p, "\r\nETag: ");
	p = stpcpy(p, etag);
	p = stpcpy(p, "\r\nAccept-Ranges: bytes\r\n");
	n = (int)(p - extra);
	if (range == 206)
		snprintf(extra + n, sizeof(extra) - (size_t)n, "Content-Range: bytes %lld-%lld/%lld\r\n",
			 (long long)first, (long long)last, (long long)st.st_size);
	c->status = range == 206 ? 206 : 200;
	n = http_format_head(c->hdr, sizeof(c->hdr), c->status, http_mime(name),
			     (long long)(last - first + 1), c->keep_alive, extra);
	if (n < 0) {
		close(fd);
		conn_close(c, 0);
		return;
	}
	c->hlen = (size_t)n;
	c->hoff = 0;
	c->state = ST_HDR;
	if (head || last < first) {
		close(fd);
		c->flen = 0;
	} else if ((size_t)n + (size_t)(last - first + 1) <= INLINE_MAX &&
		   ktls_uring_xfer_mode(c->xfer) == KTLS_MODE_USER) {
		inline_body(c, fd, first, (size_t)(last - first + 1));
	} else {
		c->filefd = fd;
		c->foff = first;
		c->flen = (size_t)(last - first + 1);
	}
}

/* ---- the connection state machine ------------------------------------------ */

/* log_escape of s into out, "" for NULL (for log_msg_escaped). */
static void escape_or_empty(char *out, size_t cap, const char *s)
{
	log_escape(out, cap, s ? s : "", s ? strlen(s) : 0, 0);
}

static void handshake_done(struct conn *c)
{
	struct srv *s = c->w->s;
	struct ktls_info in;
	const char *alpn;
	char sni[LOG_NAME_MAX + 1], ealpn[300], fb[300], hw[300];

	c->hs_done = 1;
	if (!s->cfg.no_offload && ktls_conn_offload(c->tls) != 0) {
		log_msg("%s: offload left the connection unusable: %s", c->peer,
			ktls_conn_error(c->tls));
		conn_close(c, 0);
		return;
	}
	if (ktls_conn_info(c->tls, &in) != 0) {
		conn_close(c, 0);
		return;
	}
	c->rx_kernel = in.rx != KTLS_MODE_USER;
	c->tx_mode = in.tx;
	metrics_handshake_ok(now_us() - c->accept_us);
	metrics_conn(in.tx, in.rx);
	if (s->cfg.no_offload)
		metrics_fallback("no-offload");
	else if (in.fallback_reason)
		metrics_fallback(in.fallback_reason);
	alpn = ktls_conn_alpn(c->tls);
	/* the server name is the client's bytes: escaped strictly; ALPN and reasons as log_msg does */
	log_escape_name(sni, ktls_conn_server_name(c->tls));
	escape_or_empty(ealpn, sizeof(ealpn), alpn);
	escape_or_empty(fb, sizeof(fb), in.fallback_reason);
	escape_or_empty(hw, sizeof(hw), in.hw_fallback_reason);
	log_msg_escaped("%s: %s %s sni=%s%s%s tx=%s rx=%s%s%s%s%s%s%s%s", c->peer, in.version_name,
			in.cipher, sni, alpn ? " alpn=" : "", ealpn, ktls_mode_name(in.tx),
			ktls_mode_name(in.rx), in.zerocopy_tx ? " zerocopy" : "",
			s->cfg.no_offload ? " (--no-offload)" : in.fallback_reason ? " (" : "",
			!s->cfg.no_offload ? fb : "",
			!s->cfg.no_offload && in.fallback_reason ? ")" : "",
			in.hw_fallback_reason ? " (" : "", hw, in.hw_fallback_reason ? ")" : "");
	c->xfer = ktls_uring_xfer_new(c->tls);
	if (!c->xfer) {
		log_msg("%s: cannot set up the transfer path: %s", c->peer, strerror(errno));
		conn_close(c, 0);
		return;
	}
	c->state = ST_READ;
	set_deadline(c, s->cfg.idle_timeout_ms);
}

/*
 * A read ended the connection: 0 is the peer's close_notify (answered with
 * ours); on -1 the library already sent the fatal alert the failure called
 * for.  A client that just goes away between requests is not news.
 */
static void read_failed(struct conn *c, ssize_t r)
{
	if (r < 0 && (c->rlen || ktls_conn_error_code(c->tls) != KTLS_ERR_PEER_CLOSED))
		log_msg("%s: read: %s", c->peer, ktls_conn_error(c->tls));
	conn_close(c, r == 0);
}

static void conn_run(struct conn *c)
{
	struct srv *s = c->w->s;

	for (;;) {
		switch (c->state) {
		case ST_HS: {
			int r = ktls_conn_handshake(c->tls);

			if (r == KTLS_WANT_READ || r == KTLS_WANT_WRITE) {
				arm_poll(c, r == KTLS_WANT_READ ? POLLIN : POLLOUT);
				return;
			}
			if (r < 0) {
				log_msg("%s: handshake failed: %s", c->peer, ktls_conn_error(c->tls));
				metrics_handshake_failed(ktls_error_name(ktls_conn_error_code(c->tls)));
				conn_close(c, 0);
				return;
			}
			handshake_done(c);
			continue;
		}
		case ST_READ: {
			struct http_req req;
			ssize_t r;
			int n = c->rlen ? http_parse(c->rbuf, c->rlen, &req) : 0;

			if (n != 0) {
				c->t0_us = now_us();
				if (n > 0) {
					start_response(c, n, &req);
				} else {
					c->consumed = c->rlen;
					c->keep_alive = 0;
					snprintf(c->line, sizeof(c->line), "%s", req.line);
					simple_response(c, -n, n == -405 ? "Allow: GET, HEAD\r\n" : NULL, 0);
				}
				continue;
			}
			if (c->rlen == 0 && atomic_load(&s->stopping)) {
				conn_close(c, 1);
				return;
			}
			if (c->rlen == sizeof(c->rbuf)) { /* only empty lines so far */
				c->consumed = c->rlen;
				simple_response(c, 431, NULL, 0);
				continue;
			}
			if (c->rx_kernel) {
				arm_recv(c);
				return;
			}
			/*
			 * Right after a response the next request has rarely arrived:
			 * wait for it at once unless OpenSSL already holds bytes,
			 * rather than spend a read(2) on EAGAIN (nginx's ready flag).
			 */
			if (c->await_request) {
				c->await_request = 0;
				if (c->rlen == 0 && !ktls_conn_pending(c->tls)) {
					arm_poll(c, POLLIN);
					return;
				}
			}
			r = ktls_conn_read(c->tls, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
			if (r > 0) {
				if (c->rlen == 0)
					set_deadline(c, s->cfg.request_timeout_ms);
				c->rlen += (size_t)r;
				continue;
			}
			if (r == KTLS_WANT_READ || r == KTLS_WANT_WRITE) {
				arm_poll(c, r == KTLS_WANT_READ ? POLLIN : POLLOUT);
				return;
			}
			read_failed(c, r);
			return;
		}
		case ST_HDR: {
			const char *out = c->obuf ? c->obuf : c->hdr;
			ssize_t r = c->flen ? ktls_conn_write_more(c->tls, out + c->hoff, c->hlen - c->hoff)
					    : ktls_conn_write(c->tls, out + c->hoff, c->hlen - c->hoff);

			if (r == KTLS_WANT_READ || r == KTLS_WANT_WRITE) {
				arm_poll(c, r == KTLS_WANT_READ ? POLLIN : POLLOUT);
				return;
			}
			if (r <= 0) {
				log_msg("%s: write: %s", c->peer, ktls_conn_error(c->tls));
				conn_close(c, 0);
				return;
			}
			c->hoff += (size_t)r;
			set_deadline(c, s->cfg.idle_timeout_ms);
			if (c->hoff < c->hlen)
				continue;
			if (c->flen) {
				int x = ktls_uring_xfer_start(c->xfer, &c->w->ring, c->filefd, c->foff,
							      c->flen, (uint64_t)(uintptr_t)c);

				c->state = ST_BODY;
				if (x == 0)
					return;
				if (x < 0) {
					log_msg("%s: %s: %s", c->peer, c->line, ktls_uring_xfer_error(c->xfer));
					conn_close(c, 0);
					return;
				}
				c->bytes += ktls_uring_xfer_sent(c->xfer);
			}
			response_done(c);
			continue;
		}
		default: /* ST_BODY: driven by transfer CQEs; ST_FLUSH: by its poll;
			  * ST_LINGER, ST_CLOSING: draining */
			return;
		}
	}
}

/* ---- CQE handlers ---------------------------------------------------------- */

void conn_on_poll(struct conn *c, int res)
{
	if (c->state == ST_LINGER) {
		linger_cqe(c, -EAGAIN); /* not a read: arm one */
		return;
	}
	c->own_inflight--;
	if (c->state == ST_CLOSING) {
		conn_maybe_free(c);
		return;
	}
	if (res < 0 && res != -ECANCELED) {
		conn_close(c, 0);
		return;
	}
	if (c->state == ST_FLUSH) {
		conn_close(c, 1); /* room now: the close_notify again */
		return;
	}
	if (c->state == ST_HS && !c->first_byte_seen && (res & POLLIN)) {
		/* the client spoke: the handshake timeout, counted from accept */
		c->first_byte_seen = 1;
		c->deadline = c->accept_us / 1000 + (uint64_t)c->w->s->cfg.handshake_timeout_ms;
	}
	conn_run(c);
}

void conn_on_recv(struct conn *c, const struct io_uring_cqe *cqe)
{
	ssize_t n;

	if (c->state == ST_LINGER) {
		linger_cqe(c, cqe->res);
		return;
	}
	c->own_inflight--;
	if (c->state == ST_CLOSING) {
		conn_maybe_free(c);
		return;
	}
	/* the library's control-record path: alerts, tickets, KeyUpdates */
	n = ktls_uring_recv_result(c->tls, &c->rx, cqe);
	if (n == KTLS_WANT_READ) {
		conn_run(c);
		return;
	}
	if (n <= 0) {
		read_failed(c, n);
		return;
	}
	if (c->rlen == 0)
		set_deadline(c, c->w->s->cfg.request_timeout_ms);
	c->rlen += (size_t)n;
	conn_run(c);
}

void conn_on_xfer(struct conn *c, const struct io_uring_cqe *cqe)
{
	int r = ktls_uring_xfer_cqe(c->xfer, &c->w->ring, cqe);

	if (c->state == ST_CLOSING || c->state == ST_LINGER) {
		conn_maybe_free(c);
		return;
	}
	if (r == 0) {
		set_deadline(c, c->w->s->cfg.idle_timeout_ms);
		return;
	}
	c->bytes += ktls_uring_xfer_sent(c->xfer);
	if (r < 0) {
		log_msg("%s: \"%s\" aborted after %llu bytes: %s", c->peer, c->line,
			(unsigned long long)ktls_uring_xfer_sent(c->xfer), ktls_uring_xfer_error(c->xfer));
		log_access(c->host, c->line, c->status, c->bytes, now_us() - c->t0_us);
		metrics_bytes(c->tx_mode, c->bytes);
		conn_close(c, 0);
		return;
	}
	response_done(c);
	conn_run(c);
}

/* ---- a new connection ------------------------------------------------------ */

static void peer_name(const struct sockaddr_storage *ss, char *peer, size_t plen, char *host,
		      size_t hlen)
{
	char a[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
	}
	snprintf(host, hlen, "%s", a);
	snprintf(peer, plen, strchr(a, ':') ? "[%s]:%d" : "%s:%d", a, port);
}

/* RST at once: the client learns now, not after a timeout. */
static void refuse(struct worker *w, int fd, const char *why, const char *host)
{
	struct linger lg = { 1, 0 };
	uint64_t now = now_ms();

	if (why && now - w->last_refuse_log > 1000) {
		log_msg("%s%s%s: refusing new connections", why, host ? " for " : "", host ? host : "");
		w->last_refuse_log = now;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

void conn_accepted(struct worker *w, int fd)
{
	struct srv *s = w->s;
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = sizeof(ss);
	struct peer_key pkey = { 0 };
	int counted = 0;
	char why[64], peer[64], host[48];
	struct conn *c;

	if (w->stopping) {
		refuse(w, fd, NULL, NULL);
		return;
	}
	if (atomic_fetch_add(&s->nconns, 1) >= s->cfg.max_conns) {
		atomic_fetch_sub(&s->nconns, 1);
		metrics_refused("max-conns");
		snprintf(why, sizeof(why), "--max-conns %d reached", s->cfg.max_conns);
		refuse(w, fd, why, NULL);
		return;
	}
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		ss.ss_family = AF_UNSPEC;
	peer_name(&ss, peer, sizeof(peer), host, sizeof(host));
	if (s->peers && peer_key_of((struct sockaddr *)&ss, sl, &pkey) == 0) {
		if (!peer_limit_take(s->peers, &pkey)) {
			atomic_fetch_sub(&s->nconns, 1);
			metrics_refused("max-conns-per-client");
			snprintf(why, sizeof(why), "--max-conns-per-client %d reached",
				 s->cfg.max_conns_per_client);
			refuse(w, fd, why, host);
			return;
		}
		counted = 1;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		atomic_fetch_sub(&s->nconns, 1);
		if (counted)
			peer_limit_put(s->peers, &pkey);
		close(fd);
		return;
	}
	/*
	 * Without TCP_NODELAY a keep-alive response's last short segment waits
	 * for the client's delayed ACK (~40 ms).  Safe with kTLS and splices:
	 * the kernel builds the records and MSG_MORE/SPLICE_F_MORE coalesce.
	 */
	{
		int one = 1;

		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
			log_msg("TCP_NODELAY: %s", strerror(errno));
	}
	c->w = w;
	c->fd = fd;
	c->filefd = -1;
	c->accept_us = now_us();
	c->pkey = pkey;
	c->peer_counted = counted;
	memcpy(c->peer, peer, sizeof(peer));
	memcpy(c->host, host, sizeof(host));
	c->tls = srv_accept_conn(s, fd);
	c->next = w->head;
	if (w->head)
		w->head->prev = c;
	w->head = c;
	w->nconns++;
	if (!c->tls) {
		c->state = ST_CLOSING;
		conn_maybe_free(c);
		return;
	}
	/*
	 * An idle connect must not hold its slot for the whole handshake
	 * timeout: until the ClientHello's first byte is readable the shorter
	 * deadline applies (conn_on_poll lifts it).
	 */
	c->state = ST_HS;
	set_deadline(c, s->cfg.first_byte_timeout_ms < s->cfg.handshake_timeout_ms
				? s->cfg.first_byte_timeout_ms
				: s->cfg.handshake_timeout_ms);
	arm_poll(c, POLLIN);
}
