/* ticket_keys.c - ktlsd's session ticket keys (see ticket_keys.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ticket_keys.h"

int ticket_ring_load(struct ticket_ring *r, const char *path, char *err, size_t errlen)
{
	unsigned char buf[TICKET_RING_MAX * KTLS_TICKET_KEY_LEN + 1];
	struct ticket_ring fresh = { .n = 0 };
	size_t got = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errlen, "--ticket-key %s: %s", path, strerror(errno));
		return -1;
	}
	while (got < sizeof(buf) && (n = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (got == 0 || got % KTLS_TICKET_KEY_LEN || got > TICKET_RING_MAX * KTLS_TICKET_KEY_LEN) {
		snprintf(err, errlen, "--ticket-key %s: %zu bytes; want 1 to %d keys of %d bytes "
			 "(e.g. openssl rand 80 > FILE)", path, got, TICKET_RING_MAX,
			 KTLS_TICKET_KEY_LEN);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	fresh.n = (int)(got / KTLS_TICKET_KEY_LEN);
	memcpy(fresh.k, buf, got);
	explicit_bzero(buf, sizeof(buf));
	for (int i = 0; i < fresh.n; i++)
		for (int j = 0; j < i; j++)
			if (!memcmp(fresh.k[i], fresh.k[j], 16)) {
				snprintf(err, errlen, "--ticket-key %s: keys %d and %d have the same "
					 "name (first 16 bytes)", path, j + 1, i + 1);
				explicit_bzero(&fresh, sizeof(fresh));
				return -1;
			}
	explicit_bzero(r, sizeof(*r));
	*r = fresh;
	explicit_bzero(&fresh, sizeof(fresh));
	return 0;
}

int ticket_ring_rotate(struct ticket_ring *r, char *err, size_t errlen)
{
	unsigned char k[KTLS_TICKET_KEY_LEN];

	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	if (r->n == TICKET_RING_MAX)
		explicit_bzero(r->k[--r->n], KTLS_TICKET_KEY_LEN);
	memmove(r->k[1], r->k[0], (size_t)r->n * KTLS_TICKET_KEY_LEN);
	memcpy(r->k[0], k, sizeof(k));
	explicit_bzero(k, sizeof(k));
	r->n++;
	return 0;
}

int ticket_ring_apply(const struct ticket_ring *r, ktls_ctx *ctx)
{
	for (int i = r->n - 1; i >= 0; i--)
		if (ktls_ctx_add_ticket_key(ctx, r->k[i]) != 0)
			return -1;
	return 0;
}

void ticket_ring_wipe(struct ticket_ring *r)
{
	explicit_bzero(r, sizeof(*r));
}
