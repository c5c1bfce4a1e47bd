/*
 * fuzz.h - what the harnesses share: the libFuzzer entry point's
 * prototype, exact-size copies (so that ASan sees a read one byte past the
 * input) and the netlink message walk the real receive paths do.
 *
 * Each harness is also built by the project's compiler with replay.c, a
 * main() that feeds it files: make check replays the committed corpus and
 * reproducers without clang.
 */
#ifndef KTLS_FUZZ_H
#define KTLS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netlink.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A harness's own check failed: a crash libFuzzer reports like any other. */
#define FUZZ_ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)

/* size bytes in a buffer of their own, suitably aligned for any header. */
static inline unsigned char *fuzz_dup(const void *data, size_t size)
{
	unsigned char *p = malloc(size ? size : 1);

	if (!p)
		abort();
	if (size)
		memcpy(p, data, size);
	return p;
}

/* The same, NUL-terminated: for parsers of text. */
static inline char *fuzz_str(const void *data, size_t size)
{
	char *p = malloc(size + 1);

	if (!p)
		abort();
	memcpy(p, data, size);
	p[size] = '\0';
	return p;
}

/*
 * Calls fn on each message of a received buffer, as libnl and the agent's
 * receive loops deliver them: a message is taken only when its header fits
 * and its nlmsg_len lies between the header and what is left (nlmsg_ok);
 * the walk stops at the first that does not.  Each message gets a buffer
 * of exactly nlmsg_len bytes.  At most max messages.
 */
static inline void fuzz_nlmsgs(const uint8_t *data, size_t size, unsigned max,
			       void (*fn)(const struct nlmsghdr *nlh, void *arg), void *arg)
{
	size_t off = 0;

	for (unsigned i = 0; i < max && size - off >= NLMSG_HDRLEN; i++) {
		struct nlmsghdr h;
		unsigned char *m;

		memcpy(&h, data + off, sizeof(h));
		if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > size - off)
			break;
		m = fuzz_dup(data + off, h.nlmsg_len);
		fn((const struct nlmsghdr *)m, arg);
		free(m);
		off += NLMSG_ALIGN(h.nlmsg_len);
		if (off > size)
			break;
	}
}

#endif
