/*
 * agent_loop.c - the agent's parent loop survives what arrives on its
 * multicast socket: truncated and malformed notifications, other
 * families' messages, READY for another handler class, and bursts beyond
 * max_handshakes (queued, then started as children exit).  The socket is
 * a datagram socketpair standing in for the netlink group, so this runs
 * on any kernel.  Children really fork; on the host their ACCEPT fails
 * (no handshake family) and they exit 1, which is all the loop needs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/agent.h"

static struct agent ag;
static int peer;

static void setup(void)
{
	int sv[2];

	agent_log_level = -1; /* quiet */
	memset(&ag, 0, sizeof(ag));
	agent_conf_defaults(&ag.conf);
	ag.fam.id = 33;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	ag.mc = sv[0];
	peer = sv[1];
	ag.sfd = -1;
}

static void teardown(void)
{
	close(ag.mc);
	close(peer);
	while (wait(NULL) > 0)
		;
}

TestSuite(agent_loop, .init = setup, .fini = teardown, .timeout = 30);

static void send_ready(uint16_t family, uint32_t cls)
{
	unsigned char b[64];
	int n = hs_build_accept(b, sizeof(b), 1, family); /* same layout as READY */

	b[16] = HS_CMD_READY;
	memcpy(b + 24, &cls, 4);
	cr_assert_eq(send(peer, b, (size_t)n, 0), n);
}

/* Reap every child now running; how many there were. */
static unsigned reap_all(void)
{
	unsigned n = ag.children;

	for (unsigned i = 0; i < n; i++)
		wait(NULL);
	ag.children = 0;
	return n;
}

Test(agent_loop, malformed_and_foreign_messages_start_nothing)
{
	unsigned char junk[64];

	memset(junk, 0xab, sizeof(junk));
	cr_assert_eq(send(peer, junk, 3, 0), 3);          /* shorter than a header */
	cr_assert_eq(send(peer, junk, sizeof(junk), 0), (ssize_t)sizeof(junk)); /* bad lengths */
	send_ready(34, HS_CLASS_TLSHD);                     /* another family */
	send_ready(33, HS_CLASS_NONE);                      /* another handler class */
	{
		unsigned char b[64];
		int n = hs_build_accept(b, sizeof(b), 1, 33);
		b[16] = HS_CMD_DONE;                        /* not a READY */
		cr_assert_eq(send(peer, b, (size_t)n, 0), n);
	}
	agent_on_netlink(&ag);
	cr_expect_eq(ag.children, 0);
	cr_expect_eq(ag.waiting, 0);
	/* And the loop still works afterwards. */
	send_ready(33, HS_CLASS_TLSHD);
	agent_on_netlink(&ag);
	cr_expect_eq(ag.children, 1);
	cr_expect_eq(reap_all(), 1);
}

Test(agent_loop, burst_beyond_max_handshakes_is_queued)
{
	ag.conf.max_handshakes = 2;
	for (int i = 0; i < 5; i++)
		send_ready(33, HS_CLASS_TLSHD);
	agent_on_netlink(&ag);
	cr_expect_eq(ag.children, 2);
	cr_expect_eq(ag.waiting, 3);
	/* Children exit (ACCEPT fails here); agent_reap() starts the waiting ones. */
	for (int i = 0; i < 200 && (ag.waiting || ag.children); i++) {
		usleep(20000);
		agent_reap(&ag);
		cr_expect_leq(ag.children, 2);
	}
	cr_expect_eq(ag.waiting, 0, "queued READYs never started");
	cr_expect_eq(ag.children, 0, "children never reaped");
}

Test(agent_loop, stopping_agent_starts_nothing)
{
	ag.stopping = 1;
	send_ready(33, HS_CLASS_TLSHD);
	agent_on_netlink(&ag);
	cr_expect_eq(ag.children, 0);
}
