/* peer_limit.c - connections per client address (see peer_limit.h). */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "peer_limit.h"

struct slot {
	struct peer_key key;
	int count; /* 0: empty */
};

/*
 * Open addressing with linear probing, at most half full (entries never
 * outnumber the connections, which --max-conns caps), so probes stay short.
 * The hash is keyed with a secret drawn at start: clients choose their
 * addresses (a /48 holds 65536 /64s), and must not be able to pick ones
 * that collide.
 */
struct peer_limit {
	pthread_mutex_t mu;
	int per_peer;
	size_t mask;
	uint64_t seed[2];
	struct slot *slots;
};

struct peer_limit *peer_limit_new(int per_peer, int max_tracked)
{
	struct peer_limit *pl = calloc(1, sizeof(*pl));
	size_t cap = 16;

	if (!pl)
		return NULL;
	while (cap < 2 * (size_t)(max_tracked > 0 ? max_tracked : 1))
		cap *= 2;
	pl->slots = calloc(cap, sizeof(*pl->slots));
	if (!pl->slots || getrandom(pl->seed, sizeof(pl->seed), 0) != sizeof(pl->seed)) {
		free(pl->slots);
		free(pl);
		return NULL;
	}
	pl->mask = cap - 1;
	pl->per_peer = per_peer;
	pthread_mutex_init(&pl->mu, NULL);
	return pl;
}

void peer_limit_free(struct peer_limit *pl)
{
	if (!pl)
		return;
	pthread_mutex_destroy(&pl->mu);
	free(pl->slots);
	free(pl);
}

int peer_key_of(const struct sockaddr *sa, socklen_t len, struct peer_key *key)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(key, 0, sizeof(*key));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(key->b, v4mapped, 12);
		memcpy(key->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, v4mapped, 12) == 0)
			memcpy(key->b, a, 16);
		else
			memcpy(key->b, a, 8);
		return 0;
	}
	return -1;
}

static size_t hash(const struct peer_limit *pl, const struct peer_key *k)
{
	uint64_t w[2], h = pl->seed[0];

	memcpy(w, k->b, sizeof(w));
	for (int i = 0; i < 2; i++) {
		h ^= w[i] ^ pl->seed[1];
		h *= 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	return (size_t)h;
}

/* The slot holding key, or the empty one where it would go. */
static size_t find(const struct peer_limit *pl, const struct peer_key *k)
{
	size_t i = hash(pl, k) & pl->mask;

	while (pl->slots[i].count && memcmp(&pl->slots[i].key, k, sizeof(*k)) != 0)
		i = (i + 1) & pl->mask;
	return i;
}

int peer_limit_take(struct peer_limit *pl, const struct peer_key *key)
{
	struct slot *s;
	int ok;

	pthread_mutex_lock(&pl->mu);
	s = &pl->slots[find(pl, key)];
	ok = s->count < pl->per_peer;
	if (ok) {
		s->key = *key;
		s->count++;
	}
	pthread_mutex_unlock(&pl->mu);
	return ok;
}

/*
 * Emptying a slot moves later entries of the same probe run back into the
 * hole (deletion without tombstones), so lookups keep stopping at the
 * first empty slot.
 */
static void remove_at(struct peer_limit *pl, size_t hole)
{
	size_t j = hole;

	pl->slots[hole].count = 0;
	for (;;) {
		size_t home;

		j = (j + 1) & pl->mask;
		if (!pl->slots[j].count)
			return;
		home = hash(pl, &pl->slots[j].key) & pl->mask;
		/* stays unless its home lies cyclically outside (hole, j] */
		if (hole <= j ? (home > hole && home <= j) : (home > hole || home <= j))
			continue;
		pl->slots[hole] = pl->slots[j];
		pl->slots[j].count = 0;
		hole = j;
	}
}

void peer_limit_put(struct peer_limit *pl, const struct peer_key *key)
{
	size_t i;

	pthread_mutex_lock(&pl->mu);
	i = find(pl, key);
	if (pl->slots[i].count && --pl->slots[i].count == 0)
		remove_at(pl, i);
	pthread_mutex_unlock(&pl->mu);
}

int peer_limit_count(struct peer_limit *pl, const struct peer_key *key)
{
	int n;

	pthread_mutex_lock(&pl->mu);
	n = pl->slots[find(pl, key)].count;
	pthread_mutex_unlock(&pl->mu);
	return n;
}
