/*
 * raw_ktls.h - kTLS sockets keyed by hand, for suites that test what the
 * kernel reports (ktlsctl, ss) rather than TLS itself.  Criterion suites only.
 */
#ifndef KTLS_TEST_RAW_KTLS_H
#define KTLS_TEST_RAW_KTLS_H

#include <linux/tls.h> /* the TLS_* constants the callers pass */

/*
 * A loopback TCP pair with kTLS in both directions on both ends, keyed
 * with fixed test bytes (no handshake: this exercises the kernel's
 * bookkeeping, not TLS).  version: TLS_1_2_VERSION/TLS_1_3_VERSION;
 * cipher: TLS_CIPHER_AES_GCM_128 or _256.  ulp_only: set the ULP, no keys.
 */
void raw_ktls_pair(int fds[2], int version, int cipher, int ulp_only);

#endif
