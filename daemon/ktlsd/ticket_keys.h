/*
 * ticket_keys.h - ktlsd's session ticket keys.  One ring for the whole
 * process, newest first: made at start (or read from --ticket-key), given
 * to every context ktlsd builds, so tickets survive SIGHUP; without a key
 * file, a new key is made every --ticket-key-rotate seconds and the three
 * before it keep opening tickets.
 */
#ifndef KTLSD_TICKET_KEYS_H
#define KTLSD_TICKET_KEYS_H

#include <stddef.h>

#include "ktls.h"

#define TICKET_RING_MAX 4

struct ticket_ring {
	unsigned char k[TICKET_RING_MAX][KTLS_TICKET_KEY_LEN];
	int n;
};

/*
 * Read 1 to 4 keys of KTLS_TICKET_KEY_LEN bytes from path (nginx's 80-byte
 * key files, concatenated; the first seals).  0, or -1 with err set; the
 * ring is unchanged on failure.
 */
int ticket_ring_load(struct ticket_ring *r, const char *path, char *err, size_t errlen);

/* A new random key in front; the oldest goes when the ring is full.  0 or -1. */
int ticket_ring_rotate(struct ticket_ring *r, char *err, size_t errlen);

/* Add the ring to a server context, oldest first, so its newest seals.  0 or -1. */
int ticket_ring_apply(const struct ticket_ring *r, ktls_ctx *ctx);

void ticket_ring_wipe(struct ticket_ring *r);

#endif
