/* raw_ktls.c - kTLS sockets keyed by hand (see raw_ktls.h). */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <criterion/criterion.h>
#include <linux/tls.h>

#include "raw_ktls.h"
#include "testutil.h"

void raw_ktls_pair(int fds[2], int version, int cipher, int ulp_only)
{
	cr_assert_eq(tu_tcp_pair(fds), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(setsockopt(fds[i], SOL_TCP, TCP_ULP, "tls", sizeof("tls")), 0,
			     "TCP_ULP tls: %s", strerror(errno));
	if (ulp_only)
		return;
	for (int dir = 0; dir < 2; dir++) {
		/* dir 0: client->server keyed 0x11, dir 1: server->client 0x22. */
		unsigned char fill = dir ? 0x22 : 0x11;
		int tx = dir ? fds[1] : fds[0], rx = dir ? fds[0] : fds[1];
		if (cipher == TLS_CIPHER_AES_GCM_256) {
			struct tls12_crypto_info_aes_gcm_256 ci;
			memset(&ci, fill, sizeof(ci));
			ci.info.version = (unsigned short)version;
			ci.info.cipher_type = TLS_CIPHER_AES_GCM_256;
			memset(ci.rec_seq, 0, sizeof(ci.rec_seq));
			cr_assert_eq(setsockopt(tx, SOL_TLS, TLS_TX, &ci, sizeof(ci)), 0, "%s", strerror(errno));
			cr_assert_eq(setsockopt(rx, SOL_TLS, TLS_RX, &ci, sizeof(ci)), 0, "%s", strerror(errno));
		} else {
			struct tls12_crypto_info_aes_gcm_128 ci;
			memset(&ci, fill, sizeof(ci));
			ci.info.version = (unsigned short)version;
			ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
			memset(ci.rec_seq, 0, sizeof(ci.rec_seq));
			cr_assert_eq(setsockopt(tx, SOL_TLS, TLS_TX, &ci, sizeof(ci)), 0, "%s", strerror(errno));
			cr_assert_eq(setsockopt(rx, SOL_TLS, TLS_RX, &ci, sizeof(ci)), 0, "%s", strerror(errno));
		}
	}
	/* Records really flow both ways through the kernel. */
	char buf[4];
	cr_assert_eq(tu_write_full(fds[0], "ping", 4), 0);
	cr_assert_eq(tu_read_full(fds[1], buf, 4), 0);
	cr_assert(!memcmp(buf, "ping", 4));
	cr_assert_eq(tu_write_full(fds[1], "pong", 4), 0);
	cr_assert_eq(tu_read_full(fds[0], buf, 4), 0);
	cr_assert(!memcmp(buf, "pong", 4));
}
