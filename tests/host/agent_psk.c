/*
 * agent_psk.c - TLS 1.3 external PSK in libktls (lib/src/psk.c), the way
 * the handshake agent uses it for NVMe/TCP: our client against our server
 * (SHA-256 and SHA-384 keys, psk_dhe_ke), unknown identity, wrong key,
 * argument refusals, and real peers (openssl s_server/s_client, gnutls-cli,
 * which is what tlshd uses).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ktls.h"
#include "../common/testutil.h"

#define ID "NVMe0R01 nqn.2014-08.org.nvmexpress:uuid:host nqn.test"

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(agent_psk, .init = init, .timeout = 60);

static unsigned char key32[32], key48[48];

static void keys(void)
{
	tu_fill(key32, sizeof(key32), 32);
	tu_fill(key48, sizeof(key48), 48);
}

/* The server's keyring: one identity, with whichever key a test set. */
struct table {
	const char *id;
	const unsigned char *key;
	size_t keylen;
	int calls;
	int fail; /* return -1 */
};

static int lookup(void *arg, const unsigned char *id, size_t idlen, unsigned char *key,
		  size_t *keylen)
{
	struct table *t = arg;

	t->calls++;
	if (t->fail)
		return -1;
	if (idlen != strlen(t->id) || memcmp(id, t->id, idlen))
		return 0;
	memcpy(key, t->key, t->keylen);
	*keylen = t->keylen;
	return 1;
}

struct side {
	ktls_conn *c;
	int rc;
	char err[256];
	int code, alert;   /* ktls_conn_error_code / _peer_alert after the handshake */
	char cipher[64];
};

static void *srv_thread(void *arg)
{
	struct side *s = arg;

	s->rc = ktls_conn_handshake(s->c);
	snprintf(s->err, sizeof(s->err), "%s", ktls_conn_error(s->c));
	s->code = ktls_conn_error_code(s->c);
	s->alert = ktls_conn_peer_alert(s->c);
	if (s->rc != 0)
		shutdown(ktls_conn_fd(s->c), SHUT_RDWR); /* the client must not hang */
	return NULL;
}

/* Our client with (cid, ckey) against our server knowing table t. */
static void run_pair(const char *cid, const unsigned char *ckey, size_t cklen, struct table *t,
		     struct side *cs, struct side *ss)
{
	int fds[2];
	ktls_ctx *cctx = ktls_ctx_new(KTLS_CLIENT), *sctx = ktls_ctx_new(KTLS_SERVER);
	pthread_t th;
	struct ktls_info info;

	cr_assert(cctx && sctx);
	cr_assert_eq(ktls_ctx_set_psk(cctx, cid, strlen(cid), ckey, cklen), 0, "%s",
		     ktls_ctx_error(cctx));
	cr_assert_eq(ktls_ctx_set_psk_lookup(sctx, lookup, t), 0, "%s", ktls_ctx_error(sctx));
	cr_assert_eq(ktls_ctx_set_num_tickets(sctx, 0), 0);
	cr_assert_eq(tu_tcp_pair(fds), 0);
	cs->c = ktls_conn_connect(cctx, fds[0], NULL);
	cr_assert(cs->c, "%s", ktls_ctx_error(cctx));
	ss->c = ktls_conn_accept(sctx, fds[1]);
	cr_assert(ss->c, "%s", ktls_ctx_error(sctx));
	cr_assert_eq(pthread_create(&th, NULL, srv_thread, ss), 0);
	cs->rc = ktls_conn_handshake(cs->c);
	snprintf(cs->err, sizeof(cs->err), "%s", ktls_conn_error(cs->c));
	cs->code = ktls_conn_error_code(cs->c);
	cs->alert = ktls_conn_peer_alert(cs->c);
	if (cs->rc != 0)
		shutdown(fds[0], SHUT_RDWR);
	pthread_join(th, NULL);
	if (cs->rc == 0 && ktls_conn_info(cs->c, &info) == 0)
		snprintf(cs->cipher, sizeof(cs->cipher), "%s", info.cipher);
	ktls_ctx_free(cctx);
	ktls_ctx_free(sctx);
}

static void close_pair(struct side *cs, struct side *ss)
{
	int a = ktls_conn_fd(cs->c), b = ktls_conn_fd(ss->c);

	ktls_conn_free(cs->c);
	ktls_conn_free(ss->c);
	close(a);
	close(b);
}

/* Data both ways in userspace (host: no kTLS) proves the keys agree. */
static void exchange(struct side *cs, struct side *ss)
{
	char buf[16];

	cr_assert_eq(ktls_conn_write(cs->c, "ICReq", 5), 5);
	cr_assert_eq(ktls_conn_read(ss->c, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "ICReq", 5), 0);
	cr_assert_eq(ktls_conn_write(ss->c, "ICResp", 6), 6);
	cr_assert_eq(ktls_conn_read(cs->c, buf, sizeof(buf)), 6);
}

Test(agent_psk, sha256_key_gives_aes128_and_identity)
{
	struct table t = { ID, key32, 32, 0, 0 };
	struct side cs = { 0 }, ss = { 0 };
	const void *id;
	size_t idlen;

	keys();
	run_pair(ID, key32, 32, &t, &cs, &ss);
	cr_assert_eq(cs.rc, 0, "client: %s", cs.err);
	cr_assert_eq(ss.rc, 0, "server: %s", ss.err);
	cr_expect_str_eq(cs.cipher, "TLS_AES_128_GCM_SHA256");
	cr_expect_eq(t.calls, 1);
	cr_assert_eq(ktls_conn_psk_identity(ss.c, &id, &idlen), 1);
	cr_expect_eq(idlen, strlen(ID));
	cr_expect_eq(memcmp(id, ID, idlen), 0);
	cr_assert_eq(ktls_conn_psk_identity(cs.c, &id, &idlen), 1);
	cr_expect_eq(idlen, strlen(ID));
	exchange(&cs, &ss);
	close_pair(&cs, &ss);
}

Test(agent_psk, sha384_key_gives_aes256)
{
	struct table t = { "NVMe0R02 h s", key48, 48, 0, 0 };
	struct side cs = { 0 }, ss = { 0 };

	keys();
	run_pair("NVMe0R02 h s", key48, 48, &t, &cs, &ss);
	cr_assert_eq(cs.rc, 0, "client: %s", cs.err);
	cr_assert_eq(ss.rc, 0, "server: %s", ss.err);
	cr_expect_str_eq(cs.cipher, "TLS_AES_256_GCM_SHA384");
	exchange(&cs, &ss);
	close_pair(&cs, &ss);
}

Test(agent_psk, unknown_identity_is_alerted)
{
	struct table t = { "someone else", key32, 32, 0, 0 };
	struct side cs = { 0 }, ss = { 0 };

	keys();
	run_pair(ID, key32, 32, &t, &cs, &ss);
	cr_assert_neq(cs.rc, 0);
	cr_assert_neq(ss.rc, 0);
	cr_expect(strstr(cs.err, "unknown PSK identity"), "client: %s", cs.err);
	/* Both ends say so by code, whatever the texts. */
	cr_expect_eq(cs.code, KTLS_ERR_PSK_UNKNOWN, "client: %s", ktls_error_name(cs.code));
	cr_expect_eq(cs.alert, 115); /* unknown_psk_identity */
	cr_expect_eq(ss.code, KTLS_ERR_PSK_UNKNOWN, "server: %s (%s)", ktls_error_name(ss.code),
		     ss.err);
	cr_expect_eq(ss.alert, -1, "the server sent the alert, it did not receive one");
	close_pair(&cs, &ss);
}

Test(agent_psk, wrong_key_fails_the_binder)
{
	unsigned char other[32];
	struct table t = { ID, other, 32, 0, 0 };
	struct side cs = { 0 }, ss = { 0 };

	keys();
	memcpy(other, key32, 32);
	other[7] ^= 1;
	run_pair(ID, key32, 32, &t, &cs, &ss);
	cr_assert_neq(cs.rc, 0);
	cr_assert_neq(ss.rc, 0);
	cr_expect(strstr(ss.err, "binder"), "server: %s", ss.err);
	cr_expect_eq(ss.code, KTLS_ERR_PSK_MISMATCH, "server: %s", ktls_error_name(ss.code));
	cr_expect(strstr(cs.err, "peer sent alert"), "client: %s", cs.err);
	cr_expect_eq(cs.code, KTLS_ERR_PEER_ALERT, "client: %s", ktls_error_name(cs.code));
	cr_expect_geq(cs.alert, 0, "the alert's number is kept");
	close_pair(&cs, &ss);
}

Test(agent_psk, hash_mismatch_is_not_accepted)
{
	/* The client holds a 48-byte key, the server the 32-byte one. */
	struct table t = { ID, key32, 32, 0, 0 };
	struct side cs = { 0 }, ss = { 0 };

	keys();
	run_pair(ID, key48, 48, &t, &cs, &ss);
	cr_assert_neq(cs.rc, 0);
	cr_assert_neq(ss.rc, 0);
	close_pair(&cs, &ss);
}

Test(agent_psk, lookup_failure_is_internal_error)
{
	struct table t = { ID, key32, 32, 0, 1 };
	struct side cs = { 0 }, ss = { 0 };

	keys();
	run_pair(ID, key32, 32, &t, &cs, &ss);
	cr_assert_neq(cs.rc, 0);
	cr_expect(strstr(cs.err, "internal error"), "client: %s", cs.err);
	cr_expect_eq(cs.code, KTLS_ERR_PEER_ALERT, "client: %s", ktls_error_name(cs.code));
	cr_expect_eq(cs.alert, 80); /* internal_error */
	close_pair(&cs, &ss);
}

Test(agent_psk, argument_refusals)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT), *s = ktls_ctx_new(KTLS_SERVER);

	keys();
	cr_assert_eq(ktls_ctx_set_psk(c, ID, strlen(ID), key32, 31), -1);
	cr_expect(strstr(ktls_ctx_error(c), "32 bytes"), "%s", ktls_ctx_error(c));
	cr_expect_eq(ktls_ctx_error_code(c), KTLS_ERR_INVALID);
	cr_assert_eq(ktls_ctx_set_psk(c, ID, 0, key32, 32), -1);
	cr_assert_eq(ktls_ctx_set_psk(c, ID, strlen(ID), NULL, 32), -1);
	cr_assert_eq(ktls_ctx_set_psk(s, ID, strlen(ID), key32, 32), -1);
	cr_expect(strstr(ktls_ctx_error(s), "client"), "%s", ktls_ctx_error(s));
	cr_expect_eq(ktls_ctx_error_code(s), KTLS_ERR_INVALID);
	cr_assert_eq(ktls_ctx_set_psk_lookup(c, lookup, NULL), -1);
	cr_assert_eq(ktls_ctx_set_psk_lookup(s, NULL, NULL), -1);
	cr_assert_eq(ktls_ctx_set_psk(NULL, ID, 1, key32, 32), -1);
	/* A PSK context is TLS 1.3 only: 1.2 cannot be put back as the max. */
	cr_assert_eq(ktls_ctx_set_psk(c, ID, strlen(ID), key32, 32), 0, "%s", ktls_ctx_error(c));
	cr_expect_eq(ktls_ctx_set_max_version(c, KTLS_TLS1_2), -1);
	ktls_ctx_free(c);
	ktls_ctx_free(s);
}

/* ---- real peers ------------------------------------------------------------------ */

static void hex(const unsigned char *k, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", k[i]);
}

/* Our client against a third-party server command on port. */
static void client_against(const char *what, int port, const unsigned char *k, size_t klen,
			   const char *id, const char *want_cipher)
{
	int fd = tu_connect(port);
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	ktls_conn *c;
	struct ktls_info info;

	cr_assert(fd >= 0 && ctx);
	cr_assert_eq(ktls_ctx_set_psk(ctx, id, strlen(id), k, klen), 0);
	c = ktls_conn_connect(ctx, fd, NULL);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	cr_assert_eq(ktls_conn_handshake(c), 0, "%s: %s", what, ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &info), 0);
	cr_expect_str_eq(info.cipher, want_cipher);
	ktls_conn_free(c);
	ktls_ctx_free(ctx);
	close(fd);
}

Test(agent_psk, client_against_openssl_s_server)
{
	char khex[97], portstr[16];
	int port = tu_free_port();
	pid_t pid;
	int in;

	keys();
	hex(key32, 32, khex);
	snprintf(portstr, sizeof(portstr), "%d", port);
	/* s_server stops at EOF on stdin: hold a pipe open (and no -naccept:
	 * tu_wait_port's probe connection counts as one). */
	char *argv[] = { "openssl", "s_server", "-quiet", "-accept", portstr, "-tls1_3",
			 "-nocert", "-psk", khex, "-psk_identity", ID, NULL };
	pid = tu_spawn(argv, &in, NULL);
	cr_assert(pid > 0);
	cr_assert_eq(tu_wait_port(port, 10000), 0);
	client_against("openssl s_server", port, key32, 32, ID, "TLS_AES_128_GCM_SHA256");
	close(in);
	tu_stop(pid, 2000);
}

Test(agent_psk, client_against_gnutls_serv)
{
	char portstr[16], pskfile[] = "/tmp/agent-psk-XXXXXX", khex[97];
	int port = tu_free_port(), fd;
	pid_t pid;
	FILE *f = NULL;

	keys();
	hex(key32, 32, khex);
	fd = mkstemp(pskfile);
	cr_assert(fd >= 0 && (f = fdopen(fd, "w")));
	/* gnutls psktool format: "username:hexkey"; a space-free identity. */
	fprintf(f, "nvmehost:%s\n", khex);
	fclose(f);
	snprintf(portstr, sizeof(portstr), "%d", port);
	char *argv[] = { "gnutls-serv", "--port", portstr, "--pskpasswd", pskfile,
			 "--priority",
			 "NORMAL:-VERS-ALL:+VERS-TLS1.3:+ECDHE-PSK:+DHE-PSK:+PSK:%NO_TICKETS",
			 NULL };
	pid = tu_spawn(argv, NULL, NULL);
	cr_assert(pid > 0);
	cr_assert_eq(tu_wait_port(port, 10000), 0);
	client_against("gnutls-serv", port, key32, 32, "nvmehost", "TLS_AES_128_GCM_SHA256");
	tu_stop(pid, 2000);
	unlink(pskfile);
}

/* Our server; a command connects with the PSK; returns its exit status. */
static int server_code; /* ktls_conn_error_code after server_against's handshake */

static int server_against(char *const argv[], int lfd, struct table *t, int *hs_rc, char *err)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	ktls_conn *c;
	pid_t pid;
	int fd;

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_set_psk_lookup(ctx, lookup, t), 0);
	cr_assert_eq(ktls_ctx_set_num_tickets(ctx, 0), 0);
	pid = tu_spawn(argv, NULL, NULL);
	cr_assert(pid > 0);
	fd = accept(lfd, NULL, NULL);
	cr_assert(fd >= 0);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c);
	*hs_rc = ktls_conn_handshake(c);
	snprintf(err, 256, "%s", ktls_conn_error(c));
	server_code = ktls_conn_error_code(c);
	if (*hs_rc == 0)
		ktls_conn_shutdown(c);
	ktls_conn_free(c);
	close(fd);
	ktls_ctx_free(ctx);
	return tu_wait(pid, 10000);
}

Test(agent_psk, server_against_gnutls_cli)
{
	char khex[97], portstr[16], err[256];
	int port, lfd = tu_listen(&port), rc;
	struct table t = { "nvmehost", key32, 32, 0, 0 };

	keys();
	hex(key32, 32, khex);
	snprintf(portstr, sizeof(portstr), "%d", port);
	char *argv[] = { "gnutls-cli", "--port", portstr, "--pskusername", "nvmehost",
			 "--pskkey", khex, "--logfile", "/dev/null",
			 "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+ECDHE-PSK:+DHE-PSK:+PSK",
			 "127.0.0.1", NULL };
	server_against(argv, lfd, &t, &rc, err);
	cr_assert_eq(rc, 0, "%s", err);
	close(lfd);
}

Test(agent_psk, server_refuses_openssl_client_with_unknown_identity)
{
	char khex[97], conn[32], err[256];
	int port, lfd = tu_listen(&port), rc, st;
	struct table t = { ID, key32, 32, 0, 0 };

	keys();
	hex(key32, 32, khex);
	snprintf(conn, sizeof(conn), "127.0.0.1:%d", port);
	char *argv[] = { "openssl", "s_client", "-quiet", "-connect", conn, "-tls1_3",
			 "-psk", khex, "-psk_identity", "stranger", NULL };
	st = server_against(argv, lfd, &t, &rc, err);
	cr_assert_neq(rc, 0);
	cr_expect_eq(server_code, KTLS_ERR_PSK_UNKNOWN, "%s: %s", ktls_error_name(server_code), err);
	cr_expect(st != 0, "openssl s_client should fail");
	close(lfd);
}
