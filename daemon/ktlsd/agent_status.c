/*
 * agent_status.c - the DONE status a failed handshake reports, from
 * libktls's error code (never its text, which may be reworded).  Kernel
 * consumers act on it: NVMe revokes a stale PSK on EKEYREJECTED, NFS
 * retries on ETIMEDOUT, anything else is a refusal.
 *
 *   timed out (the kernel's ACCEPT timeout passed,
 *   or SO_RCVTIMEO/SO_SNDTIMEO expired)                    ETIMEDOUT
 *   the peer went away mid-handshake (KTLS_ERR_PEER_CLOSED) ETIMEDOUT
 *   unknown PSK identity (our lookup, or the peer's alert:
 *   KTLS_ERR_PSK_UNKNOWN)                                  EKEYREJECTED
 *   any other handshake or verification failure            EACCES
 * Setup failures (no key, no certificate, kTLS refused) are EIO, decided
 * where they happen (agent_hs.c).
 */
#include <errno.h>

#include "ktls.h"

#include "agent.h"

int agent_status_for(int code, int timed_out)
{
	if (timed_out)
		return ETIMEDOUT;
	switch (code) {
	case KTLS_ERR_PSK_UNKNOWN:
		return EKEYREJECTED;
	case KTLS_ERR_PEER_CLOSED:
	case KTLS_ERR_TIMEOUT:
		return ETIMEDOUT;
	default:
		return EACCES;
	}
}
