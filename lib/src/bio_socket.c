/*
 * bio_socket.c - the socket BIO every connection's OpenSSL uses:
 * OpenSSL's own (BIO_s_socket) except that writes go through
 * send(MSG_NOSIGNAL), with MSG_MORE while the connection says more
 * records follow at once.
 *
 * OpenSSL writes with write(2), so a peer that has gone away raises
 * SIGPIPE, which kills a caller that did not ignore it.  A library must
 * not ask its callers to ignore signals, and blocking SIGPIPE around each
 * OpenSSL call costs four syscalls per call (two thirds of the syscalls of
 * a keep-alive request served from userspace, measured with strace).
 * MSG_NOSIGNAL gives EPIPE instead, at no cost.
 *
 * OpenSSL sends each record with its own write.  A response head sent
 * alone, then its first body record, reached the client as two segments:
 * the client woke for the small head, went back to sleep, and was woken
 * again (measured with perf on loopback: ktlsd spent about 8% more CPU
 * per 16 KiB response than nginx, which sends its full record first,
 * mostly in those wake-ups).  So every record of a write but its last
 * goes with MSG_MORE, and the last one too for ktls_conn_write_more: TCP
 * holds them until a record sent without it pushes them out together.
 * For the sendfile fallback's three-record reads that cut ktlsd's CPU
 * per byte by 10-15% at 1 MiB and 64 MiB (bench/README.md).
 *
 * Everything else (reads, ctrl: fd, EOF, flush) is the socket BIO's own
 * code.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>

#include "internal.h"

static BIO_METHOD *method;
static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;

static int nosig_write(BIO *b, const char *buf, int len)
{
	int fd = (int)BIO_get_fd(b, NULL);
	const int *more = BIO_get_data(b);
	ssize_t n;

	if (len <= 0)
		return 0;
	errno = 0;
	n = send(fd, buf, (size_t)len, MSG_NOSIGNAL | (more && *more ? MSG_MORE : 0));
	BIO_clear_retry_flags(b);
	if (n <= 0 && BIO_sock_should_retry((int)n))
		BIO_set_retry_write(b);
	return (int)n;
}

static int nosig_puts(BIO *b, const char *s)
{
	return nosig_write(b, s, (int)strlen(s));
}

static void make_method(void)
{
	const BIO_METHOD *sock = BIO_s_socket();
	int type = BIO_get_new_index();
	BIO_METHOD *m;

	if (type == -1)
		return;
	m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "ktls socket");
	if (!m)
		return;
	if (!BIO_meth_set_write(m, nosig_write) || !BIO_meth_set_puts(m, nosig_puts) ||
	    !BIO_meth_set_read(m, BIO_meth_get_read(sock)) ||
	    !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) ||
	    !BIO_meth_set_create(m, BIO_meth_get_create(sock)) ||
	    !BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock))) {
		BIO_meth_free(m);
		return;
	}
	method = m;
}

BIO *bio_socket_new(int fd, const int *more)
{
	BIO *b;

	if (!CRYPTO_THREAD_run_once(&once, make_method) || !method)
		return NULL;
	b = BIO_new(method);
	if (b) {
		BIO_set_fd(b, fd, BIO_NOCLOSE);
		BIO_set_data(b, (void *)more);
	}
	return b;
}
