/*
 * ctx_crl.c - ktls_ctx_set_crl_check against openssl s_server presenting
 * certificates that the test PKI revokes (tests/certs/make-certs.sh):
 * loaded CRLs count only once checking is on; KTLS_CRL_LEAF refuses a
 * revoked leaf and needs a CRL from the leaf's issuer; KTLS_CRL_CHAIN
 * also checks the intermediate, so a revoked intermediate or a missing
 * root CRL fails there and only there.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/conn_test.h"
#include "../common/testutil.h"
#include "ktls.h"

TestSuite(ctx_crl, .init = ct_suite_init, .fini = ct_suite_fini, .timeout = 60);

/*
 * One s_server connection presenting cert (and intermediate, when not
 * NULL), then our client trusting store with CRL checking mode.  The
 * handshake's result; libktls's message in err.
 */
static int handshake(const char *cert, const char *key, const char *intermediate,
		     const char *store, int mode, char *err, size_t errlen)
{
	char accept_arg[32];
	int port = tu_free_port(), fd, r;
	ktls_ctx *ctx;
	ktls_conn *c;

	char *argv[16] = { "openssl", "s_server", "-quiet", "-naccept", "1", "-accept", accept_arg,
			   "-cert", (char *)tu_cert(cert), "-key", (char *)tu_cert(key) };

	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
	if (intermediate) {
		argv[11] = "-cert_chain";
		argv[12] = (char *)tu_cert(intermediate);
	}
	ct_peer = tu_spawn(argv, NULL, NULL);
	cr_assert(ct_peer > 0);
	ctx = ktls_ctx_new(KTLS_CLIENT);
	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_load_verify_locations(ctx, tu_cert(store), NULL), 0, "%s",
		     ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_set_crl_check(ctx, mode), 0, "%s", ktls_ctx_error(ctx));
	fd = ct_connect_retry(port, 10000);
	cr_assert_geq(fd, 0);
	c = ktls_conn_connect(ctx, fd, "localhost");
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	r = ktls_conn_handshake(c);
	snprintf(err, errlen, "%s", ktls_conn_error(c));
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
	tu_stop(ct_peer, 2000);
	ct_peer = -1;
	return r;
}

Test(ctx_crl, revoked_leaf_refused_only_when_checking)
{
	char err[256];

	cr_expect_eq(handshake("revoked.pem", "revoked.key", NULL, "ca-revoking.pem", KTLS_CRL_NONE,
			       err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(handshake("revoked.pem", "revoked.key", NULL, "ca-revoking.pem", KTLS_CRL_LEAF,
			       err, sizeof(err)), -1);
	cr_expect(strstr(err, "certificate revoked"), "%s", err);
	cr_expect_eq(handshake("revoked.pem", "revoked.key", NULL, "ca-revoking.pem", KTLS_CRL_CHAIN,
			       err, sizeof(err)), -1);
	cr_expect(strstr(err, "certificate revoked"), "%s", err);
}

Test(ctx_crl, unrevoked_leaf_accepted_with_checking)
{
	char err[256];

	cr_expect_eq(handshake("server-ec.pem", "server-ec.key", NULL, "ca-revoking.pem",
			       KTLS_CRL_LEAF, err, sizeof(err)), 0, "%s", err);
}

Test(ctx_crl, leaf_check_needs_the_issuer_crl)
{
	char err[256];

	/* ca.pem alone: no CRL from the leaf's issuer. */
	cr_expect_eq(handshake("server-ec.pem", "server-ec.key", NULL, "ca.pem", KTLS_CRL_LEAF, err,
			       sizeof(err)), -1);
	cr_expect(strstr(err, "unable to get certificate CRL"), "%s", err);
	cr_expect_eq(handshake("server-ec.pem", "server-ec.key", NULL, "ca.pem", KTLS_CRL_NONE, err,
			       sizeof(err)), 0, "%s", err);
}

Test(ctx_crl, chain_check_covers_the_intermediate)
{
	char err[256];

	/* The root's CRL revokes the intermediate; the leaf itself is fine. */
	cr_expect_eq(handshake("crl-leaf.pem", "crl-leaf.key", "crl-int.pem",
			       "crl-store-int-revoked.pem", KTLS_CRL_NONE, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(handshake("crl-leaf.pem", "crl-leaf.key", "crl-int.pem",
			       "crl-store-int-revoked.pem", KTLS_CRL_LEAF, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(handshake("crl-leaf.pem", "crl-leaf.key", "crl-int.pem",
			       "crl-store-int-revoked.pem", KTLS_CRL_CHAIN, err, sizeof(err)), -1);
	cr_expect(strstr(err, "certificate revoked"), "%s", err);
}

Test(ctx_crl, chain_check_needs_every_issuer_crl)
{
	char err[256];

	cr_expect_eq(handshake("crl-leaf.pem", "crl-leaf.key", "crl-int.pem", "crl-store-clean.pem",
			       KTLS_CRL_CHAIN, err, sizeof(err)), 0, "%s", err);
	/* No CRL from the root: the intermediate cannot be checked. */
	cr_expect_eq(handshake("crl-leaf.pem", "crl-leaf.key", "crl-int.pem",
			       "crl-store-no-root-crl.pem", KTLS_CRL_CHAIN, err, sizeof(err)), -1);
	cr_expect(strstr(err, "unable to get certificate CRL"), "%s", err);
	cr_expect_eq(handshake("crl-leaf.pem", "crl-leaf.key", "crl-int.pem",
			       "crl-store-no-root-crl.pem", KTLS_CRL_LEAF, err, sizeof(err)), 0, "%s", err);
}

Test(ctx_crl, bad_mode_and_frozen_context_refused)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	ktls_conn *c;
	int fds[2];

	cr_assert(ctx);
	cr_expect_eq(ktls_ctx_set_crl_check(ctx, KTLS_CRL_CHAIN + 1), -1);
	cr_expect(strstr(ktls_ctx_error(ctx), "mode"), "%s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_crl_check(ctx, -1), -1);
	cr_expect_eq(ktls_ctx_set_crl_check(ctx, KTLS_CRL_LEAF), 0, "%s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_crl_check(NULL, KTLS_CRL_LEAF), -1);
	/* A connection freezes its context: the mode can no longer change. */
	cr_assert_eq(tu_tcp_pair(fds), 0);
	c = ktls_conn_connect(ctx, fds[0], "localhost");
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	cr_expect_eq(ktls_ctx_set_crl_check(ctx, KTLS_CRL_NONE), -1);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fds[0]);
	close(fds[1]);
}
