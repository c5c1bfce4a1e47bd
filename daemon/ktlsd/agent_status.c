/*
 * agent_status.c - the DONE status a failed handshake reports, from
 * libktls's reason.  Kernel consumers act on it: NVMe revokes a stale PSK
 * on EKEYREJECTED, NFS retries on ETIMEDOUT, anything else is a refusal.
 *
 *   timed out (the kernel's ACCEPT timeout passed)        ETIMEDOUT
 *   the peer went away mid-handshake                       ETIMEDOUT
 *   unknown PSK identity (our lookup, or the peer's alert) EKEYREJECTED
 *   any other handshake or verification failure            EACCES
 * Setup failures (no key, no certificate, kTLS refused) are EIO, decided
 * where they happen (agent_hs.c).
 */
#include <errno.h>
#include <string.h>

#include "agent.h"

int agent_status_for(const char *reason, int timed_out, int psk_unknown)
{
	if (timed_out)
		return ETIMEDOUT;
	if (psk_unknown || (reason && strstr(reason, "unknown PSK identity")))
		return EKEYREJECTED;
	if (reason && strstr(reason, "peer closed the connection during the handshake"))
		return ETIMEDOUT;
	return EACCES;
}
