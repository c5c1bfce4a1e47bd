/*
 * conn_peer_auth.c - ktls_conn_peer_authenticated after real handshakes
 * with openssl s_client / s_server: our server with KTLS_VERIFY_OPTIONAL
 * says 0 when the client sent no certificate and 1 when it sent a valid
 * one; with the server default (no certificate requested) 0; our client
 * after a verified server 1; a PSK handshake 1 on either side; NULL -1.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"
#include "ktls.h"

#define PSK_ID "ktls-peer-auth"
/* 32 bytes: SHA-256, TLS_AES_128_GCM_SHA256. */
#define PSK_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

TestSuite(conn_peer_auth, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

static void psk_key(unsigned char key[32])
{
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)i;
}

static int psk_lookup(void *arg, const unsigned char *identity, size_t idlen, unsigned char *key,
		      size_t *keylen)
{
	if (idlen != strlen(PSK_ID) || memcmp(identity, PSK_ID, idlen))
		return 0;
	psk_key(key);
	*keylen = 32;
	return 1;
}

/*
 * Our server on ctx against s_client started with the extra arguments
 * (NULL-terminated); after the handshake, what ktls_conn_peer_authenticated
 * says.
 */
static int serve_one(ktls_ctx *ctx, char *const extra[])
{
	int port = 0, l = tu_listen(&port), fd, r;
	char target[32];
	char *argv[16] = { "openssl", "s_client", "-quiet", "-connect", target };
	struct pollfd p = { .fd = l, .events = POLLIN };
	ktls_conn *c;
	int n = 5;

	cr_assert_geq(l, 0);
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	for (int i = 0; extra[i]; i++)
		argv[n++] = extra[i];
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert(ct_peer > 0);
	cr_assert_eq(poll(&p, 1, 10000), 1, "s_client never connected");
	fd = accept(l, NULL, NULL);
	cr_assert_geq(fd, 0);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_conn_handshake(c), 0, "%s", ktls_conn_error(c));
	r = ktls_conn_peer_authenticated(c);
	ktls_conn_free(c);
	close(fd);
	close(l);
	return r;
}

/* Our client on ctx against s_server with the extra arguments; as above. */
static int connect_one(ktls_ctx *ctx, const char *name, char *const extra[])
{
	int port = tu_free_port(), fd, r;
	char accept_arg[32];
	char *argv[16] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", accept_arg };
	ktls_conn *c;
	int n = 7;

	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
	for (int i = 0; extra[i]; i++)
		argv[n++] = extra[i];
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert(ct_peer > 0);
	fd = ct_connect_retry(port, 10000);
	cr_assert_geq(fd, 0);
	c = ktls_conn_connect(ctx, fd, name);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_conn_handshake(c), 0, "%s", ktls_conn_error(c));
	r = ktls_conn_peer_authenticated(c);
	ktls_conn_free(c);
	close(fd);
	return r;
}

/* A server context asking for (not requiring) a client certificate. */
static ktls_ctx *optional_server(void)
{
	ktls_ctx *ctx = ct_server_ctx("server-ec");

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_load_verify_locations(ctx, tu_cert("ca.pem"), NULL), 0, "%s",
		     ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_set_verify(ctx, KTLS_VERIFY_OPTIONAL), 0, "%s", ktls_ctx_error(ctx));
	return ctx;
}

Test(conn_peer_auth, server_optional_client_without_certificate)
{
	ktls_ctx *ctx = optional_server();
	char *none[] = { NULL };

	cr_expect_eq(serve_one(ctx, none), 0);
	ktls_ctx_free(ctx);
}

Test(conn_peer_auth, server_optional_client_with_valid_certificate)
{
	ktls_ctx *ctx = optional_server();
	char *with[] = { "-cert", (char *)tu_cert("client.pem"), "-key", (char *)tu_cert("client.key"),
			 NULL };

	cr_expect_eq(serve_one(ctx, with), 1);
	ktls_ctx_free(ctx);
}

Test(conn_peer_auth, server_default_requests_no_certificate)
{
	ktls_ctx *ctx = ct_server_ctx("server-ec");
	char *with[] = { "-cert", (char *)tu_cert("client.pem"), "-key", (char *)tu_cert("client.key"),
			 NULL };

	cr_assert(ctx);
	cr_expect_eq(serve_one(ctx, with), 0);
	ktls_ctx_free(ctx);
}

Test(conn_peer_auth, client_after_verified_server)
{
	ktls_ctx *ctx = ct_client_ctx();
	char *srv[] = { "-cert", (char *)tu_cert("server-ec.pem"), "-key",
			(char *)tu_cert("server-ec.key"), NULL };

	cr_assert(ctx);
	cr_expect_eq(connect_one(ctx, "localhost", srv), 1);
	ktls_ctx_free(ctx);
}

Test(conn_peer_auth, psk_client)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	unsigned char key[32];
	char *srv[] = { "-tls1_3", "-nocert", "-psk", PSK_HEX, "-psk_identity", PSK_ID, NULL };

	cr_assert(ctx);
	psk_key(key);
	cr_assert_eq(ktls_ctx_set_psk(ctx, PSK_ID, strlen(PSK_ID), key, sizeof(key)), 0, "%s",
		     ktls_ctx_error(ctx));
	cr_expect_eq(connect_one(ctx, NULL, srv), 1);
	ktls_ctx_free(ctx);
}

Test(conn_peer_auth, psk_server)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	char *cli[] = { "-tls1_3", "-psk", PSK_HEX, "-psk_identity", PSK_ID, NULL };

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_psk_lookup(ctx, psk_lookup, NULL), 0, "%s", ktls_ctx_error(ctx));
	cr_expect_eq(serve_one(ctx, cli), 1);
	ktls_ctx_free(ctx);
}

Test(conn_peer_auth, null_connection)
{
	cr_expect_eq(ktls_conn_peer_authenticated(NULL), -1);
}
