/*
 * ktlsd_limits.c - the per-client connection cap's table (peer_limit.c):
 * what counts as one client, and counts that stay exact under churn.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/peer_limit.h"

static struct peer_key v4(const char *a)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(1234) };
	struct peer_key k;

	cr_assert_eq(inet_pton(AF_INET, a, &s.sin_addr), 1);
	cr_assert_eq(peer_key_of((struct sockaddr *)&s, sizeof(s), &k), 0);
	return k;
}

static struct peer_key v6(const char *a)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(1234) };
	struct peer_key k;

	cr_assert_eq(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	cr_assert_eq(peer_key_of((struct sockaddr *)&s, sizeof(s), &k), 0);
	return k;
}

static int same(struct peer_key a, struct peer_key b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

Test(peer_limit, what_one_client_is)
{
	struct sockaddr_un_like {
		sa_family_t f;
		char path[20];
	} un = { AF_UNIX, "x" };
	struct peer_key k;

	cr_expect(same(v4("192.0.2.1"), v4("192.0.2.1")));
	cr_expect_not(same(v4("192.0.2.1"), v4("192.0.2.2")), "IPv4: the whole address");
	cr_expect(same(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff:1:2:3")), "IPv6: the /64");
	cr_expect_not(same(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1")));
	cr_expect(same(v6("::ffff:192.0.2.1"), v4("192.0.2.1")), "v4-mapped is the IPv4 client");
	cr_expect_not(same(v6("::ffff:192.0.2.1"), v6("::ffff:192.0.2.2")));
	cr_expect_eq(peer_key_of((struct sockaddr *)&un, sizeof(un), &k), -1);
}

Test(peer_limit, cap_per_client)
{
	struct peer_limit *pl = peer_limit_new(3, 100);
	struct peer_key a = v4("10.0.0.1"), b = v6("2001:db8::5");

	cr_assert(pl);
	for (int i = 0; i < 3; i++)
		cr_expect(peer_limit_take(pl, &a), "take %d", i);
	cr_expect_not(peer_limit_take(pl, &a), "the 4th from one address");
	cr_expect(peer_limit_take(pl, &b), "another client is not affected");
	cr_expect_eq(peer_limit_count(pl, &a), 3);
	peer_limit_put(pl, &a);
	cr_expect(peer_limit_take(pl, &a), "a freed slot is usable again");
	for (int i = 0; i < 3; i++)
		peer_limit_put(pl, &a);
	cr_expect_eq(peer_limit_count(pl, &a), 0);
	cr_expect_eq(peer_limit_count(pl, &b), 1);
	peer_limit_free(pl);
}

/*
 * Churn against a plain model: a small table (many collisions) with
 * deletions in every order, so that moving entries back into holes
 * (deletion without tombstones) is exercised; every count stays exact.
 */
Test(peer_limit, counts_exact_under_churn)
{
	enum { CLIENTS = 40, MAXC = 64, PER = 4, STEPS = 200000 };
	struct peer_limit *pl = peer_limit_new(PER, MAXC);
	struct peer_key keys[CLIENTS];
	int model[CLIENTS] = { 0 }, total = 0;

	cr_assert(pl);
	for (int i = 0; i < CLIENTS; i++) {
		char a[32];

		snprintf(a, sizeof(a), "2001:db8:%x:%x::1", i, (i * 7919) & 0xffff);
		keys[i] = v6(a);
	}
	srand(12345);
	for (int s = 0; s < STEPS; s++) {
		int i = rand() % CLIENTS;

		if ((rand() & 1) && total < MAXC) {
			int ok = peer_limit_take(pl, &keys[i]);

			cr_assert_eq(ok, model[i] < PER, "step %d client %d", s, i);
			model[i] += ok;
			total += ok;
		} else if (model[i]) {
			peer_limit_put(pl, &keys[i]);
			model[i]--;
			total--;
		}
		if (s % 997 == 0)
			for (int j = 0; j < CLIENTS; j++)
				cr_assert_eq(peer_limit_count(pl, &keys[j]), model[j], "step %d client %d", s, j);
	}
	peer_limit_free(pl);
}
