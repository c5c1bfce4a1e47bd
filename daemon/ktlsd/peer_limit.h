/*
 * peer_limit.h - connections per client address, for --max-conns-per-client.
 *
 * --max-conns alone lets one address take every slot (idle connects cost
 * the attacker nothing).  A client is an IPv4 address, or an IPv6 /64: one
 * host or subscriber usually owns a whole /64, so counting single IPv6
 * addresses would be no limit at all.  IPv4-mapped IPv6 peers count as
 * their IPv4 address.  One table for all workers, under one mutex: it is
 * touched twice per connection, never per request.
 */
#ifndef KTLSD_PEER_LIMIT_H
#define KTLSD_PEER_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

struct peer_key {
	uint8_t b[16]; /* IPv4: ::ffff:a.b.c.d; IPv6: the /64, low half zero */
};

struct peer_limit;

/*
 * A table for at most max_tracked connections at once (--max-conns), each
 * address allowed per_peer of them.  NULL when out of memory.
 */
struct peer_limit *peer_limit_new(int per_peer, int max_tracked);
void peer_limit_free(struct peer_limit *pl);

/* The client an address belongs to; 0, or -1 for a family without one (AF_UNIX). */
int peer_key_of(const struct sockaddr *sa, socklen_t len, struct peer_key *key);

/* Count one more connection of key: 1 when admitted, 0 when it is at its cap. */
int peer_limit_take(struct peer_limit *pl, const struct peer_key *key);

/* That connection is gone (each successful take is put exactly once). */
void peer_limit_put(struct peer_limit *pl, const struct peer_key *key);

/* Connections key holds now (tests, logs). */
int peer_limit_count(struct peer_limit *pl, const struct peer_key *key);

#endif
