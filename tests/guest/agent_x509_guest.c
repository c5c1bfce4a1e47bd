/*
 * agent_x509_guest.c - the agent's consumer-free x509 harness
 * (tests/host/agent_x509.c) inside the kTLS guest: every handshake that
 * succeeds must end with status 0 and both directions in kTLS, as a
 * kernel consumer (NFS) would receive it.
 */
#include "../host/agent_x509.c"
