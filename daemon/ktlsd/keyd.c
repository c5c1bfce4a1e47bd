/* keyd.c - a root helper that reads the key for reloads (see keyd.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keyd.h"

/* One reply: this header, then the certificate's bytes and the key's, or an error text. */
struct keyd_hdr {
	int32_t err;       /* 0, or the errno of the failure (text follows) */
	uint32_t certlen, keylen;
};

#define KEYD_MSG (sizeof(struct keyd_hdr) + 2 * KEYD_MAX_FILE)

/* path's bytes at out (cap); the length, or -1 with errno. */
static ssize_t slurp(const char *path, char *out, size_t cap)
{
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), e = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if ((size_t)st.st_size >= cap)
		e = EFBIG;
	if (e) {
		close(fd);
		errno = e;
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, out + got, cap - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got == cap) { /* grew past the cap since fstat */
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	close(fd);
	return (ssize_t)got;
}

static void answer(int fd, const char *cert, const char *key, char *msg)
{
	struct keyd_hdr h = { 0 };
	char *body = msg + sizeof(h);
	const char *failed = cert;
	ssize_t c = slurp(cert, body, KEYD_MAX_FILE), k = -1;
	size_t len;

	if (c >= 0) {
		failed = key;
		k = slurp(key, body + c, KEYD_MAX_FILE);
	}
	if (c < 0 || k < 0) {
		h.err = errno ? errno : EIO;
		len = (size_t)snprintf(body, KEYD_MAX_FILE, "%s: %s", failed,
				       errno == EFBIG ? "larger than 64 KiB" : strerror(errno));
	} else {
		h.certlen = (uint32_t)c;
		h.keylen = (uint32_t)k;
		len = (size_t)(c + k);
	}
	memcpy(msg, &h, sizeof(h));
	if (send(fd, msg, sizeof(h) + len, MSG_NOSIGNAL) < 0) {
		/* ktlsd went away: the next recv sees the end */
	}
	OPENSSL_cleanse(msg, sizeof(h) + len);
}

/* The request byte that asks for a re-read instead of a pair. */
#define KEYD_REREAD 0xff

static void answer_reread(int fd, int n, const char *why)
{
	struct keyd_hdr h = { .err = why ? EINVAL : 0, .certlen = why ? 0 : (uint32_t)n };
	char msg[sizeof(h) + 128];
	size_t len = why ? (size_t)snprintf(msg + sizeof(h), 128, "%s", why) : 0;

	memcpy(msg, &h, sizeof(h));
	if (send(fd, msg, sizeof(h) + len, MSG_NOSIGNAL) < 0) {
		/* ktlsd went away: the next recv sees the end */
	}
}

static void __attribute__((noreturn)) helper(int fd, char *const cert[], char *const key[], int n,
					     keyd_reread_fn *reread, void *arg)
{
	char *msg = malloc(KEYD_MSG);
	unsigned char i;

	/* nothing of the daemon's but stderr and our end of the pair */
	if (dup2(fd, 3) < 0)
		_exit(1);
	close_range(4, ~0U, 0);
	fd = 3;
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_IGN); /* a terminal's ^C or SIGHUP is ktlsd's business */
	prctl(PR_SET_NAME, "ktlsd-keys");
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (!msg)
		_exit(1);
	while (recv(fd, &i, 1, 0) == 1) {
		if (i == KEYD_REREAD) {
			char *const *c2, *const *k2;
			int n2;

			if (!reread)
				answer_reread(fd, 0, "this helper cannot re-read the configuration");
			else if (reread(arg, &c2, &k2, &n2) != 0)
				answer_reread(fd, 0, "the configuration does not parse");
			else if (n2 < 1 || n2 > KEYD_MAX_PAIRS)
				answer_reread(fd, 0, "the configuration names no --cert, or too many");
			else {
				cert = c2, key = k2, n = n2;
				answer_reread(fd, n, NULL);
			}
			continue;
		}
		if (i >= n)
			continue; /* not a pair we were given: no answer, ktlsd times out */
		answer(fd, cert[i], key && key[i] ? key[i] : cert[i], msg);
	}
	_exit(0);
}

int keyd_start(char *const cert[], char *const key[], int n, keyd_reread_fn *reread, void *arg,
	       char *err, size_t errlen)
{
	struct timeval tv = { 5, 0 };
	int sv[2];
	pid_t pid;

	if (n < 1 || n > KEYD_MAX_PAIRS) {
		snprintf(err, errlen, "the key helper takes 1 to %d pairs", KEYD_MAX_PAIRS);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		helper(sv[1], cert, key, n, reread, arg);
	}
	close(sv[1]);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return sv[0];
}

int keyd_fetch(int fd, int i, struct keyd_pair *out, char *err, size_t errlen)
{
	char *msg = malloc(KEYD_MSG + 1);
	unsigned char req = (unsigned char)i;
	struct keyd_hdr h;
	ssize_t n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!msg) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (send(fd, &req, 1, MSG_NOSIGNAL) != 1 || (n = recv(fd, msg, KEYD_MSG + 1, 0)) < 0) {
		snprintf(err, errlen, "the key helper: %s", strerror(errno));
		goto out;
	}
	if ((size_t)n < sizeof(h)) {
		snprintf(err, errlen, "the key helper is gone");
		goto out;
	}
	memcpy(&h, msg, sizeof(h));
	if (h.err) {
		snprintf(err, errlen, "%.*s", (int)((size_t)n - sizeof(h)), msg + sizeof(h));
		goto out;
	}
	if (h.certlen > KEYD_MAX_FILE || h.keylen > KEYD_MAX_FILE ||
	    sizeof(h) + h.certlen + h.keylen != (size_t)n) {
		snprintf(err, errlen, "the key helper's reply is malformed");
		goto out;
	}
	out->cert = malloc(h.certlen + 1);
	out->key = malloc(h.keylen + 1);
	if (!out->cert || !out->key) {
		snprintf(err, errlen, "out of memory");
		keyd_clear(out);
		goto out;
	}
	memcpy(out->cert, msg + sizeof(h), h.certlen);
	memcpy(out->key, msg + sizeof(h) + h.certlen, h.keylen);
	out->certlen = h.certlen;
	out->keylen = h.keylen;
	rc = 0;
out:
	OPENSSL_cleanse(msg, KEYD_MSG + 1);
	free(msg);
	return rc;
}

int keyd_reread(int fd, char *err, size_t errlen)
{
	unsigned char req = KEYD_REREAD;
	char msg[sizeof(struct keyd_hdr) + 129];
	struct keyd_hdr h;
	ssize_t n;

	if (send(fd, &req, 1, MSG_NOSIGNAL) != 1 || (n = recv(fd, msg, sizeof(msg) - 1, 0)) < 0) {
		snprintf(err, errlen, "the key helper: %s", strerror(errno));
		return -1;
	}
	if ((size_t)n < sizeof(h)) {
		snprintf(err, errlen, "the key helper is gone");
		return -1;
	}
	memcpy(&h, msg, sizeof(h));
	if (h.err) {
		snprintf(err, errlen, "the key helper: %.*s", (int)((size_t)n - sizeof(h)), msg + sizeof(h));
		return -1;
	}
	return (int)h.certlen;
}

void keyd_clear(struct keyd_pair *p)
{
	if (p->key)
		OPENSSL_cleanse(p->key, p->keylen);
	free(p->cert);
	free(p->key);
	memset(p, 0, sizeof(*p));
}
