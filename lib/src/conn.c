/*
 * conn.c - connections: handshake, userspace record I/O, and dispatch to
 * kTLS I/O (kernel_io.c) for directions the kernel owns.  What a failure is
 * called and its code: conn_error.c.
 *
 * Write semantics (userspace direction).  SSL_write has a retry contract:
 * after WANT_WRITE the record is already sealed inside OpenSSL, and the
 * next SSL_write must pass the same bytes again.  Callers of a write(2)-like
 * API cannot be expected to honour that, so the plaintext of the one record
 * that blocked is copied into a staging buffer, counted as written, and
 * retried from that copy at the start of the next write/sendfile/shutdown.
 * Hence:
 *   - blocking socket: ktls_conn_write writes everything (or fails);
 *   - non-blocking socket: it returns the bytes accepted (at most one record,
 *     16 KiB, of which may still sit in the staging buffer), or
 *     KTLS_WANT_WRITE when even the staged record could not be flushed;
 *   - ktls_conn_write(c, NULL, 0) only flushes: 0 once the staging buffer
 *     is empty, KTLS_WANT_WRITE while it is not.
 * ktls_conn_sendfile's userspace fallback uses the same path: it preads up
 * to 48 KiB at *offset, pushes it, and advances *offset by exactly the bytes
 * accepted, so re-calling with the advanced offset neither repeats nor skips
 * a byte (bytes read but not accepted are simply read again next time).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "internal.h"
#include "conn_impl.h"
#include "proto.h"

#define STAGE_MAX (16 * 1024)  /* one TLS record of plaintext */
/*
 * Sendfile fallback: pread size.  Three records: measured against 32, 64
 * and 128 KiB (bench/README.md), it kept the bytes cache-warm between the
 * read and their encryption and still needs fewer syscalls than nginx.
 */
#define SF_CHUNK (48 * 1024)

/* -1 with the kept reason when the connection already failed fatally. */
static int check_fatal(struct conn_impl *ci)
{
	if (!ci->fatal[0])
		return 0;
	return conn_fail(&ci->c, ci->fatal_code, "%s", ci->fatal);
}

/* ---- construction ------------------------------------------------------- */

KTLS_API ktls_conn *ktls_conn_new(ktls_ctx *ctx, int fd, const char *server_name)
{
	struct conn_impl *ci;
	SSL *ssl;
	int type = 0;
	socklen_t tl = sizeof(type);

	if (!ctx) {
		errno = EINVAL;
		return NULL;
	}
	ctx_clearerr(ctx);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "fd %d is not a socket%s%s", fd,
			 fd < 0 ? "" : ": ", fd < 0 ? "" : strerror(errno));
		errno = EINVAL;
		return NULL;
	}
	if (type != SOCK_STREAM) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "fd %d is not a stream (TCP) socket", fd);
		errno = EINVAL;
		return NULL;
	}
	ci = calloc(1, sizeof(*ci));
	if (!ci) {
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		return NULL;
	}
	ci->c.peer_alert = -1;
	if (server_name && !(ci->name = strdup(server_name))) {
		free(ci);
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "out of memory");
		return NULL;
	}
	ERR_clear_error();
	ctx_freeze(ctx); /* the SSL about to exist reads the SSL_CTX: no setter from here */
	ssl = SSL_new(ctx->ssl);
	if (!ssl) {
		char r[128];
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "cannot create a connection: %s",
			 ssl_reason(r, sizeof(r)));
		goto fail;
	}
	ci->c.ssl = ssl;
	/* Role first: keys_conn_new asks SSL_is_server(). */
	if (ctx->role == KTLS_SERVER)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	/* Key tracking must see every record from the first one on. */
	ci->c.keys = keys_conn_new(ssl);
	if (!ci->c.keys) {
		char r[128];
		ctx_fail(ctx, KTLS_ERR_RESOURCE, "cannot attach key tracking: %s",
			 ssl_reason(r, sizeof(r)));
		goto fail;
	}
	if (ctx_prepare_ssl(ctx, ssl, server_name) != 0)
		goto fail; /* reason set by ctx_prepare_ssl */
	/*
	 * Partial writes: one record per SSL_write, so a blocked write owes
	 * at most one record (see the staging buffer above).  Moving buffer:
	 * the retry comes from our copy, not the caller's pointer.
	 */
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	{
		BIO *b = bio_socket_new(fd, &ci->tx_more);
		char r[128];

		if (!b) {
			ctx_fail(ctx, KTLS_ERR_RESOURCE, "cannot attach fd %d: %s", fd,
				 ssl_reason(r, sizeof(r)));
			goto fail;
		}
		SSL_set_bio(ssl, b, b);
	}
	BIO_set_callback_arg(SSL_get_rbio(ssl), (char *)ci);
	BIO_set_callback_ex(SSL_get_rbio(ssl), conn_peek_cb);
	ctx_ref(ctx);
	ci->c.ctx = ctx;
	ci->c.fd = fd;
	ci->c.tx = ci->c.rx = KTLS_MODE_USER;
	return &ci->c;
fail:
	if (ci->c.keys)
		keys_conn_free(ci->c.keys);
	SSL_free(ssl);
	free(ci->name);
	free(ci);
	return NULL;
}

static const char *role_name(int role)
{
	return role == KTLS_SERVER ? "KTLS_SERVER" : role == KTLS_CLIENT ? "KTLS_CLIENT" : "role-less";
}

KTLS_API ktls_conn *ktls_conn_connect(ktls_ctx *ctx, int fd, const char *server_name)
{
	if (ctx && ctx->role != KTLS_CLIENT) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "wrong-role context: ktls_conn_connect needs a "
			 "KTLS_CLIENT context, this one is %s", role_name(ctx->role));
		errno = EINVAL;
		return NULL;
	}
	return ktls_conn_new(ctx, fd, server_name);
}

KTLS_API ktls_conn *ktls_conn_accept(ktls_ctx *ctx, int fd)
{
	if (ctx && ctx->role != KTLS_SERVER) {
		ctx_fail(ctx, KTLS_ERR_INVALID, "wrong-role context: ktls_conn_accept needs a "
			 "KTLS_SERVER context, this one is %s", role_name(ctx->role));
		errno = EINVAL;
		return NULL;
	}
	return ktls_conn_new(ctx, fd, NULL);
}

KTLS_API void ktls_conn_free(ktls_conn *c)
{
	struct conn_impl *ci;

	if (!c)
		return;
	ci = impl(c);
	/* bio_socket_new made a BIO_NOCLOSE socket BIO: the fd stays open. */
	if (c->keys)
		keys_conn_free(c->keys);
	kernel_state_free(c->kernel);
	SSL_free(c->ssl);
	ctx_unref(c->ctx);
	if (ci->stage) {
		secure_zero(ci->stage, STAGE_MAX);
		free(ci->stage);
	}
	if (ci->sfbuf) {
		secure_zero(ci->sfbuf, SF_CHUNK);
		free(ci->sfbuf);
	}
	free(ci->name);
	free(ci);
}

/* ---- handshake and info -------------------------------------------------- */

KTLS_API int ktls_conn_handshake(ktls_conn *c)
{
	int r;

	if (!c)
		return -1;
	if (c->handshake_done)
		return 0;
	if (check_fatal(impl(c)))
		return -1;
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(c->ssl);
	if (r != 1) {
		r = conn_handshake_error(impl(c), r);
		return r == -1 ? conn_set_fatal(impl(c)) : r;
	}
	c->handshake_done = 1;
	BIO_set_callback_ex(SSL_get_rbio(c->ssl), NULL);
	BIO_set_callback_arg(SSL_get_rbio(c->ssl), NULL);
	if (!c->offload_tried)
		snprintf(c->fallback, sizeof(c->fallback), "offload not requested");
	return 0;
}

KTLS_API int ktls_conn_info(const ktls_conn *c, struct ktls_info *out)
{
	const SSL_CIPHER *ciph;

	if (!c || !out) {
		errno = EINVAL;
		return -1;
	}
	if (!c->handshake_done)
		return conn_fail((struct ktls_conn *)c, KTLS_ERR_INVALID, "info: handshake not "
				 "complete");
	memset(out, 0, sizeof(*out));
	out->version = SSL_version(c->ssl);
	out->version_name = SSL_get_version(c->ssl);
	ciph = SSL_get_current_cipher(c->ssl);
	out->cipher = ciph ? SSL_CIPHER_get_name(ciph) : "";
	out->tx = c->tx;
	out->rx = c->rx;
	out->zerocopy_tx = c->zc_tx;
	out->rx_no_pad = c->rx_no_pad;
	out->hw_fallback_reason = c->hw_fallback[0] ? c->hw_fallback : NULL;
	out->resumed = SSL_session_reused(c->ssl) == 1;
	if (c->tx != KTLS_MODE_USER && c->rx != KTLS_MODE_USER)
		out->fallback_reason = NULL;
	else
		out->fallback_reason = c->fallback[0] ? c->fallback : "offload not requested";
	return 0;
}

KTLS_API int ktls_conn_fd(const ktls_conn *c)
{
	return c ? c->fd : -1;
}

KTLS_API int ktls_conn_error_code(const ktls_conn *c)
{
	return c && c->err[0] ? c->err_code : KTLS_ERR_NONE;
}

KTLS_API int ktls_conn_peer_alert(const ktls_conn *c)
{
	return c ? c->peer_alert : -1;
}

KTLS_API const char *ktls_conn_error(const ktls_conn *c)
{
	return c ? c->err : "";
}

KTLS_API const char *ktls_conn_server_name(const ktls_conn *c)
{
	if (!c) {
		errno = EINVAL;
		return NULL;
	}
	return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

/* ---- userspace I/O --------------------------------------------------------- */

/* The handshake is done and nothing failed fatally since; else -1. */
static int need_handshake(struct ktls_conn *c, const char *what)
{
	if (!c->handshake_done)
		return conn_fail(c, KTLS_ERR_INVALID, "%s: handshake not complete", what);
	return check_fatal(impl(c));
}

/* Push the staged plaintext: 0 once empty, KTLS_WANT_*, or -1. */
static int stage_flush(struct conn_impl *ci)
{
	while (ci->stage_len > 0) {
		size_t n = 0;
		int ok;

		ERR_clear_error();
		errno = 0;
		ok = SSL_write_ex(ci->c.ssl, ci->stage + ci->stage_off, ci->stage_len, &n);
		if (!ok)
			return conn_io_error(ci, 0, "write");
		ci->stage_off += n;
		ci->stage_len -= n;
	}
	ci->stage_off = 0;
	return 0;
}

/*
 * TX moved to the kernel while plaintext was staged.  ktls_conn_offload
 * keeps TX in userspace while OpenSSL holds a sealed record, so staged
 * bytes here were never sealed (e.g. the write blocked on OpenSSL's own
 * KeyUpdate): the kernel sends them, still ahead of anything newer.
 */
static int stage_flush_kernel(struct conn_impl *ci)
{
	while (ci->stage_len > 0) {
		ssize_t n = kernel_write(&ci->c, ci->stage + ci->stage_off, ci->stage_len, 0);
		if (n <= 0)
			return n == 0 ? KTLS_WANT_WRITE : (int)n;
		ci->stage_off += (size_t)n;
		ci->stage_len -= (size_t)n;
	}
	ci->stage_off = 0;
	return 0;
}

/*
 * Write through OpenSSL: bytes accepted (all of them on a blocking socket),
 * KTLS_WANT_* when nothing could be accepted, -1 on error.  Every record
 * but the last goes with MSG_MORE (bio_socket.c), the last one too when
 * the caller promised more at once (ktls_conn_write_more).
 */
static ssize_t user_write(struct conn_impl *ci, const void *buf, size_t len, int more)
{
	const unsigned char *p = buf;
	size_t done = 0;
	int r;

	r = stage_flush(ci);
	if (r != 0)
		return r;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		size_t chunk = len - done < STAGE_MAX ? len - done : STAGE_MAX;
		size_t n = 0;
		int ok;

		ERR_clear_error();
		errno = 0;
		ci->tx_more = more || done + chunk < len;
		ok = SSL_write_ex(ci->c.ssl, p + done, chunk, &n);
		ci->tx_more = 0;
		if (ok) {
			done += n;
			continue;
		}
		r = conn_io_error(ci, 0, "write");
		if (r == KTLS_WANT_WRITE || r == KTLS_WANT_READ) {
			/* OpenSSL may hold this chunk sealed: owe exactly these bytes. */
			if (!ci->stage && !(ci->stage = malloc(STAGE_MAX)))
				return done ? (ssize_t)done
					    : conn_fail(&ci->c, KTLS_ERR_RESOURCE, "write: out of memory");
			memcpy(ci->stage, p + done, chunk);
			ci->stage_off = 0;
			ci->stage_len = chunk;
			return (ssize_t)(done + chunk);
		}
		if (r == 0) /* close_notify arrived while writing: report it on read */
			r = conn_fail(&ci->c, KTLS_ERR_CLOSED, "write: peer has sent close_notify");
		return done ? (ssize_t)done : r;
	}
	return (ssize_t)done;
}

KTLS_API ssize_t ktls_conn_read(ktls_conn *c, void *buf, size_t len)
{
	size_t n = 0;
	int ok;

	if (!c || (!buf && len)) {
		if (c)
			conn_fail(c, KTLS_ERR_INVALID, "read: buf is NULL");
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "read"))
		return -1;
	if (c->rx != KTLS_MODE_USER)
		return kernel_read(c, buf, len);
	if (c->peer_closed)
		return 0;
	if (len == 0)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	/*
	 * RX is in userspace from here on, so OpenSSL may read ahead: a record
	 * costs one read(2) instead of two (header, then the rest).  Not during
	 * the handshake, so that no byte the kernel should decrypt hides in
	 * OpenSSL; an offload after this read that finds bytes held keeps RX
	 * here (kernel_install.c).
	 */
	SSL_set_read_ahead(c->ssl, 1);
	ERR_clear_error();
	errno = 0;
	ok = SSL_read_ex(c->ssl, buf, len, &n);
	if (ok)
		return (ssize_t)n;
	return conn_io_error(impl(c), 0, "read");
}

KTLS_API int ktls_conn_pending(const ktls_conn *c)
{
	if (!c)
		return 0;
	if (c->peer_closed || impl((ktls_conn *)c)->fatal[0])
		return 1;
	if (c->rx != KTLS_MODE_USER)
		return kernel_rx_failed(c);
	return c->handshake_done && SSL_has_pending(c->ssl);
}

static ssize_t conn_write(ktls_conn *c, const void *buf, size_t len, int more)
{
	if (!c || (!buf && len)) {
		if (c)
			conn_fail(c, KTLS_ERR_INVALID, "write: buf is NULL");
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "write"))
		return -1;
	if (c->we_closed)
		return conn_fail(c, KTLS_ERR_CLOSED, "write: connection already shut down "
				 "(close_notify sent)");
	if (c->tx != KTLS_MODE_USER) {
		int r = stage_flush_kernel(impl(c));
		if (r != 0)
			return r;
		return len ? kernel_write(c, buf, len, more) : 0;
	}
	return user_write(impl(c), buf, len, more);
}

KTLS_API ssize_t ktls_conn_write(ktls_conn *c, const void *buf, size_t len)
{
	return conn_write(c, buf, len, 0);
}

KTLS_API ssize_t ktls_conn_write_more(ktls_conn *c, const void *buf, size_t len)
{
	return conn_write(c, buf, len, 1);
}

/* Userspace sendfile: pread + encrypt; see the top of this file. */
static ssize_t user_sendfile(struct conn_impl *ci, int in_fd, off_t *offset, size_t count)
{
	size_t total = 0;
	int r;

	r = stage_flush(ci);
	if (r != 0)
		return r;
	if (!ci->sfbuf && !(ci->sfbuf = malloc(SF_CHUNK)))
		return conn_fail(&ci->c, KTLS_ERR_RESOURCE, "sendfile: out of memory");
	if (count > SSIZE_MAX)
		count = SSIZE_MAX;
	while (total < count) {
		size_t want = count - total < SF_CHUNK ? count - total : SF_CHUNK;
		ssize_t got, w;

		do
			got = pread(in_fd, ci->sfbuf, want, *offset);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			int e = errno;
			if (total)
				break;
			return conn_fail(&ci->c, e == EBADF || e == EINVAL || e == ESPIPE
						 ? KTLS_ERR_INVALID : errno_code(e),
					 "sendfile: reading fd %d at offset %lld: %s", in_fd,
					 (long long)*offset, strerror(e));
		}
		if (got == 0)
			break; /* end of file before count */
		w = user_write(ci, ci->sfbuf, (size_t)got, 0);
		if (w < 0)
			return total ? (ssize_t)total : w;
		*offset += w;
		total += (size_t)w;
		/* Short, or a record is staged: the socket is full, report now. */
		if (w < got || ci->stage_len)
			break;
	}
	return (ssize_t)total;
}

KTLS_API ssize_t ktls_conn_sendfile(ktls_conn *c, int in_fd, off_t *offset, size_t count)
{
	off_t pos;
	ssize_t r;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "sendfile"))
		return -1;
	if (c->we_closed)
		return conn_fail(c, KTLS_ERR_CLOSED, "sendfile: connection already shut down "
				 "(close_notify sent)");
	if (c->tx != KTLS_MODE_USER) {
		r = stage_flush_kernel(impl(c));
		if (r != 0)
			return r;
		return kernel_sendfile(c, in_fd, offset, count);
	}
	if (offset)
		return user_sendfile(impl(c), in_fd, offset, count);
	/* No offset: like sendfile(2), use and advance the file position. */
	pos = lseek(in_fd, 0, SEEK_CUR);
	if (pos < 0)
		return conn_fail(c, KTLS_ERR_INVALID, "sendfile: fd %d has no file position: %s",
				 in_fd, strerror(errno));
	r = user_sendfile(impl(c), in_fd, &pos, count);
	if (r > 0 && lseek(in_fd, pos, SEEK_SET) < 0)
		return conn_fail(c, errno_code(errno), "sendfile: cannot advance fd %d: %s", in_fd,
				 strerror(errno));
	return r;
}

KTLS_API int ktls_conn_shutdown(ktls_conn *c)
{
	struct conn_impl *ci;
	int r;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (need_handshake(c, "shutdown"))
		return -1;
	if (c->we_closed)
		return 0;
	if (c->tx != KTLS_MODE_USER) {
		r = stage_flush_kernel(impl(c));
		if (r != 0)
			return r;
		r = kernel_send_alert(c, 1, 0); /* warning, close_notify */
		if (r == 0)
			c->we_closed = 1;
		return r;
	}
	ci = impl(c);
	r = stage_flush(ci);
	if (r != 0)
		return r;
	ERR_clear_error();
	errno = 0;
	r = SSL_shutdown(c->ssl);
	if (r >= 0) {
		c->we_closed = 1;
		return 0;
	}
	r = conn_io_error(ci, r, "shutdown");
	return r == 0 ? conn_fail(c, KTLS_ERR_CLOSED, "shutdown: failed") : r;
}
