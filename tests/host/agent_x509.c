/*
 * agent_x509.c - the agent's x509 and failure paths without a kernel
 * consumer: agent_run() (everything between ACCEPT and DONE) driven on our
 * own loopback sockets with hand-made ACCEPT parameters, against real
 * peers (openssl s_server/s_client).  This is the harness for the paths
 * NFS would use (client anon = verify the server against PEERNAME; client
 * x509 = our cert from the config or from keyring serials (DER); server
 * x509 with an optional client certificate) and for timeouts and
 * vanishing peers.
 *
 * Where the handshake succeeds the status depends on the kernel: on the
 * host (no kTLS) it must be EIO with "the kernel did not take the keys";
 * in the kTLS guest (the same binary is tests/guest/agent_x509) it must be
 * 0 with both directions in kTLS, as a kernel consumer (NFS) would
 * receive it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/keyctl.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/agent.h"
#include "../common/testutil.h"

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
	agent_log_level = getenv("KTLS_TEST_VERBOSE") ? AGENT_LOG_DEBUG : -1;
}

TestSuite(agent_x509, .init = init, .timeout = 60);

/* Handshake succeeded: kTLS on both directions (guest) or the refusal (host). */
static void expect_success(int status, const struct agent_req *r)
{
	if (tu_expect_ktls())
		cr_assert_eq(status, 0, "status %d: %s", status, r->why);
	else {
		cr_assert_eq(status, EIO, "status %d: %s", status, r->why);
		cr_assert(strstr(r->why, "the kernel did not take the keys"), "%s", r->why);
	}
}

static void req_init(struct agent_req *r, struct agent_conf *c, int fd, uint32_t type,
		     uint32_t auth, const char *peername)
{
	memset(r, 0, sizeof(*r));
	r->conf = c;
	r->a.sockfd = fd;
	r->a.msg_type = type;
	r->a.auth_mode = auth;
	r->a.timeout_ms = 10000;
	if (peername)
		snprintf(r->a.peername, sizeof(r->a.peername), "%s", peername);
}

static char *dupcert(const char *name)
{
	return strdup(tu_cert(name));
}

/* ---- our client against openssl s_server ----------------------------------------- */

struct srv {
	pid_t pid;
	int in;
	int port;
};

/* openssl s_server with our test server certificate; verify_client asks
 * for (and requires) a client certificate from our CA. */
static void s_server(struct srv *s, int verify_client)
{
	char port[16];
	char *argv[24] = { "openssl", "s_server", "-quiet", "-accept", port, "-tls1_3",
			   "-num_tickets", "0", "-cert", (char *)tu_cert("server-ec.pem"),
			   "-key", (char *)tu_cert("server-ec.key"), NULL };
	int argc = 12;

	s->port = tu_free_port();
	snprintf(port, sizeof(port), "%d", s->port);
	if (verify_client) {
		argv[argc++] = "-Verify";
		argv[argc++] = "1";
		argv[argc++] = "-CAfile";
		argv[argc++] = (char *)tu_cert("ca.pem");
	}
	argv[argc] = NULL;
	s->pid = tu_spawn(argv, &s->in, NULL);
	cr_assert(s->pid > 0);
	/* openssl starts slowly under TCG on a loaded machine. */
	cr_assert_eq(tu_wait_port(s->port, 30000), 0);
}

static void s_server_stop(struct srv *s)
{
	close(s->in);
	tu_stop(s->pid, 2000);
}

static int client_run(struct agent_conf *c, uint32_t auth, const char *peername,
		      struct srv *s, struct agent_req *r)
{
	int fd = tu_connect(s->port), st;

	cr_assert(fd >= 0);
	req_init(r, c, fd, HS_MSG_CLIENTHELLO, auth, peername);
	st = agent_run(r);
	close(fd);
	return st;
}

Test(agent_x509, client_anon_verifies_the_server_by_peername)
{
	struct agent_conf c;
	struct agent_req r;
	struct srv s;

	agent_conf_defaults(&c);
	c.truststore = dupcert("ca.pem");
	s_server(&s, 0);
	expect_success(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), &r);
	cr_expect_eq(r.peerid, 0);
	/* The wrong name: a verification failure, EACCES. */
	cr_expect_eq(client_run(&c, HS_AUTH_UNAUTH, "nfs.example.com", &s, &r), EACCES);
	cr_expect(strstr(r.why, "Hostname mismatch"), "%s", r.why);
	/* No PEERNAME: the peer's address is verified (an IP SAN). */
	expect_success(client_run(&c, HS_AUTH_UNAUTH, NULL, &s, &r), &r);
	s_server_stop(&s);
	agent_conf_free(&c);
}

Test(agent_x509, client_anon_with_the_system_store_refuses_our_test_ca)
{
	struct agent_conf c;
	struct agent_req r;
	struct srv s;

	agent_conf_defaults(&c); /* no truststore: /etc/ssl/certs/ca-certificates.crt */
	/* As the daemon does: the big store is parsed once, outside the
	 * request's timeout (seconds under TCG on a loaded machine). */
	agent_prebuild(&c);
	cr_assert(agent_prebuilt_has(AGENT_TMPL_CLIENT_ANON));
	s_server(&s, 0);
	cr_expect_eq(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), EACCES);
	cr_expect(strstr(r.why, "certificate verify failed"), "%s", r.why);
	s_server_stop(&s);
	agent_prebuild_free();
}

Test(agent_x509, client_x509_presents_the_configured_certificate)
{
	struct agent_conf c;
	struct agent_req r;
	struct srv s;

	agent_conf_defaults(&c);
	c.truststore = dupcert("ca.pem");
	s_server(&s, 1);
	/* Without our certificate configured: refused before any byte. */
	cr_expect_eq(client_run(&c, HS_AUTH_X509, "localhost", &s, &r), EIO);
	cr_expect(strstr(r.why, "no x509.certificate configured"), "%s", r.why);
	c.certificate = dupcert("client.pem");
	c.private_key = dupcert("client.key");
	expect_success(client_run(&c, HS_AUTH_X509, "localhost", &s, &r), &r);
	s_server_stop(&s);
	agent_conf_free(&c);
}

/* DER of a PEM file's first object, via openssl(1). */
static size_t der_of(const char *what, const char *pem, unsigned char *buf, size_t cap)
{
	char cmd[600], path[] = "/tmp/agent-der-XXXXXX";
	int fd = mkstemp(path);
	ssize_t n;

	cr_assert(fd >= 0);
	snprintf(cmd, sizeof(cmd), "openssl %s -in %s -outform DER -out %s 2>&1", what, pem, path);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	n = read(fd, buf, cap);
	close(fd);
	unlink(path);
	cr_assert(n > 0);
	return (size_t)n;
}

Test(agent_x509, client_x509_from_keyring_serials)
{
	struct agent_conf c;
	struct agent_req r;
	struct srv s;
	unsigned char der[8192];
	size_t n;
	long cert, key;
	int fd;

	agent_conf_defaults(&c);
	c.truststore = dupcert("ca.pem");
	/* As the kernel hands them: DER objects in keys we possess. */
	n = der_of("x509", tu_cert("client.pem"), der, sizeof(der));
	cert = syscall(SYS_add_key, "user", "agent-test-cert", der, n, KEY_SPEC_PROCESS_KEYRING);
	n = der_of("pkey", tu_cert("client.key"), der, sizeof(der));
	key = syscall(SYS_add_key, "user", "agent-test-key", der, n, KEY_SPEC_PROCESS_KEYRING);
	cr_assert(cert > 0 && key > 0, "add_key: %s", strerror(errno));
	s_server(&s, 1);
	fd = tu_connect(s.port);
	req_init(&r, &c, fd, HS_MSG_CLIENTHELLO, HS_AUTH_X509, "localhost");
	r.a.certs[0].cert = (int32_t)cert;
	r.a.certs[0].privkey = (int32_t)key;
	r.a.ncerts = 1;
	expect_success(agent_run(&r), &r);
	close(fd);
	/* A serial that is not a certificate. */
	fd = tu_connect(s.port);
	req_init(&r, &c, fd, HS_MSG_CLIENTHELLO, HS_AUTH_X509, "localhost");
	r.a.certs[0].cert = (int32_t)key;
	r.a.certs[0].privkey = (int32_t)key;
	r.a.ncerts = 1;
	cr_expect_eq(agent_run(&r), EIO);
	cr_expect(strstr(r.why, "is not a DER certificate"), "%s", r.why);
	close(fd);
	s_server_stop(&s);
	agent_conf_free(&c);
}

/* ---- our server against openssl s_client ------------------------------------------- */

/* openssl s_client with args; our agent_run serves it; s_client's status. */
static int serve_one(struct agent_conf *c, uint32_t auth, char *const *extra, int nextra,
		     struct agent_req *r, int *status)
{
	int port, lfd = tu_listen(&port), fd, in;
	char conn[32];
	char *argv[24] = { "openssl", "s_client", "-quiet", "-connect", conn, NULL };
	int argc = 5;
	pid_t pid;

	snprintf(conn, sizeof(conn), "127.0.0.1:%d", port);
	for (int i = 0; i < nextra; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	pid = tu_spawn(argv, &in, NULL);
	cr_assert(pid > 0);
	fd = accept(lfd, NULL, NULL);
	cr_assert(fd >= 0);
	req_init(r, c, fd, HS_MSG_SERVERHELLO, auth, NULL);
	*status = agent_run(r);
	close(fd);
	close(lfd);
	close(in);
	return tu_wait(pid, 10000);
}

Test(agent_x509, server_x509_optional_client_certificate)
{
	struct agent_conf c;
	struct agent_req r;
	int st;
	char *with[] = { "-CAfile", (char *)tu_cert("ca.pem"), "-cert", (char *)tu_cert("client.pem"),
			 "-key", (char *)tu_cert("client.key") };
	char *without[] = { "-CAfile", (char *)tu_cert("ca.pem") };

	agent_conf_defaults(&c);
	c.certificate = dupcert("server-ec.pem");
	c.private_key = dupcert("server-ec.key");
	c.truststore = dupcert("ca.pem");
	serve_one(&c, HS_AUTH_X509, with, 6, &r, &st);
	expect_success(st, &r);
	cr_expect_eq(r.peerid, -1, "a verified client certificate gives nfsd a peer id");
	serve_one(&c, HS_AUTH_X509, without, 2, &r, &st);
	expect_success(st, &r);
	cr_expect_eq(r.peerid, 0, "no client certificate, no peer id");
	agent_conf_free(&c);
}

Test(agent_x509, server_refusals)
{
	struct agent_conf c;
	struct agent_req r;
	int st;
	char *tls12[] = { "-tls1_2" };
	char *untrusted[] = { "-cert", (char *)tu_cert("untrusted.pem"), "-key",
			      (char *)tu_cert("untrusted.key") };
	char *plain[] = { "-tls1_3" };

	agent_conf_defaults(&c);
	/* No certificate configured and none from the kernel. */
	serve_one(&c, HS_AUTH_X509, plain, 1, &r, &st);
	cr_expect_eq(st, EIO);
	cr_expect(strstr(r.why, "no x509.certificate configured"), "%s", r.why);
	/* An unauthenticated server is not something we offer. */
	serve_one(&c, HS_AUTH_UNAUTH, plain, 1, &r, &st);
	cr_expect_eq(st, EIO);
	c.certificate = dupcert("server-ec.pem");
	c.private_key = dupcert("server-ec.key");
	c.truststore = dupcert("ca.pem");
	/* TLS 1.2 only: every kernel consumer needs 1.3. */
	serve_one(&c, HS_AUTH_X509, tls12, 1, &r, &st);
	cr_expect_eq(st, EACCES, "%s", r.why);
	cr_expect(strstr(r.why, "protocol") || strstr(r.why, "version"), "%s", r.why);
	/* A client certificate from an unknown CA is refused (EACCES). */
	serve_one(&c, HS_AUTH_X509, untrusted, 4, &r, &st);
	cr_expect_eq(st, EACCES, "%s", r.why);
	cr_expect(strstr(r.why, "certificate verify failed"), "%s", r.why);
	agent_conf_free(&c);
}

/* ---- time and vanishing peers ---------------------------------------------------------- */

Test(agent_x509, silent_peer_times_out_with_etimedout)
{
	struct agent_conf c;
	struct agent_req r;
	int fds[2];
	long long t0;

	agent_conf_defaults(&c);
	c.truststore = dupcert("ca.pem");
	cr_assert_eq(tu_tcp_pair(fds), 0);
	req_init(&r, &c, fds[0], HS_MSG_CLIENTHELLO, HS_AUTH_UNAUTH, "localhost");
	r.a.timeout_ms = 300;
	t0 = time(NULL);
	cr_expect_eq(agent_run(&r), ETIMEDOUT);
	cr_expect(strstr(r.why, "no handshake within 300 ms"), "%s", r.why);
	cr_expect_leq(time(NULL) - t0, 5, "the 300 ms timeout was not honoured");
	/* The consumer's socket is blocking again afterwards. */
	cr_expect_eq(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
	close(fds[0]);
	close(fds[1]);
	agent_conf_free(&c);
}

Test(agent_x509, vanishing_peer_is_etimedout)
{
	struct agent_conf c;
	struct agent_req r;
	int fds[2];

	agent_conf_defaults(&c);
	c.certificate = dupcert("server-ec.pem");
	c.private_key = dupcert("server-ec.key");
	cr_assert_eq(tu_tcp_pair(fds), 0);
	close(fds[0]); /* the client is gone before its hello */
	req_init(&r, &c, fds[1], HS_MSG_SERVERHELLO, HS_AUTH_X509, NULL);
	cr_expect_eq(agent_run(&r), ETIMEDOUT, "%s", r.why);
	cr_expect(strstr(r.why, "peer closed"), "%s", r.why);
	close(fds[1]);
	agent_conf_free(&c);
}

Test(agent_x509, not_a_tcp_socket_is_eio)
{
	struct agent_conf c;
	struct agent_req r;
	int sv[2];

	agent_conf_defaults(&c);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	req_init(&r, &c, sv[0], HS_MSG_CLIENTHELLO, HS_AUTH_UNAUTH, "localhost");
	cr_expect_eq(agent_run(&r), EIO);
	cr_expect(strstr(r.why, "not a TCP socket"), "%s", r.why);
	close(sv[0]);
	close(sv[1]);
}

/*
 * A CRL from our CA revoking server-ec (openssl ca, in the scratch dir
 * dir, which the caller removes).
 */
static char *revoking_crl(char dir[])
{
	char cmd[2048], *path;

	cr_assert(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && : > index.txt && "
		 "printf 'dir=.\\n[ca]\\ndefault_ca=c\\n[c]\\ndatabase=index.txt\\n"
		 "default_md=sha256\\ndefault_crl_days=30\\n' > crl.cnf && "
		 "openssl ca -config crl.cnf -revoke %s -keyfile %s -cert %s 2>/dev/null && "
		 "openssl ca -config crl.cnf -gencrl -keyfile %s -cert %s -out revoked.crl 2>/dev/null",
		 dir, tu_cert("server-ec.pem"), tu_cert("ca.key"), tu_cert("ca.pem"),
		 tu_cert("ca.key"), tu_cert("ca.pem"));
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	cr_assert(asprintf(&path, "%s/revoked.crl", dir) > 0);
	return path;
}

Test(agent_x509, crl_is_enforced)
{
	struct agent_conf c;
	struct agent_req r;
	struct srv s;
	char dir[] = "/tmp/agent-crl-XXXXXX", rm[64];

	agent_conf_defaults(&c);
	c.truststore = dupcert("ca.pem");
	s_server(&s, 0);
	/* The CA's empty CRL: the server is not revoked. */
	c.crl = dupcert("ca.crl");
	expect_success(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), &r);
	/* A CRL revoking the server's certificate. */
	free(c.crl);
	c.crl = revoking_crl(dir);
	cr_expect_eq(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), EACCES);
	cr_expect(strstr(r.why, "certificate revoked"), "%s", r.why);
	/* The same without x509.crl: accepted (so the setting is what refused). */
	free(c.crl);
	c.crl = NULL;
	expect_success(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), &r);
	s_server_stop(&s);
	agent_conf_free(&c);
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	cr_expect_eq(system(rm), 0, "%s left behind", dir);
}

Test(agent_x509, prebuilt_contexts_are_borrowed_and_rebuilt)
{
	struct agent_conf c;
	struct agent_req r;
	struct srv s;
	int st;
	char *with[] = { "-CAfile", (char *)tu_cert("ca.pem"), "-cert", (char *)tu_cert("client.pem"),
			 "-key", (char *)tu_cert("client.key") };

	agent_conf_defaults(&c);
	c.truststore = dupcert("ca.pem");
	c.certificate = dupcert("server-ec.pem");
	c.private_key = dupcert("server-ec.key");
	agent_prebuild(&c);
	cr_assert(agent_prebuilt_has(AGENT_TMPL_CLIENT_ANON) &&
		  agent_prebuilt_has(AGENT_TMPL_SERVER_X509) &&
		  agent_prebuilt_has(AGENT_TMPL_CLIENT_X509));
	s_server(&s, 0);
	/* Twice on the same (now frozen) context. */
	expect_success(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), &r);
	expect_success(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), &r);
	cr_expect_eq(client_run(&c, HS_AUTH_UNAUTH, "nfs.example.com", &s, &r), EACCES);
	s_server_stop(&s);
	serve_one(&c, HS_AUTH_X509, with, 6, &r, &st);
	expect_success(st, &r);
	cr_expect_eq(r.peerid, -1);
	/* A trust store that cannot be read: nothing prebuilt, each request says why. */
	free(c.truststore);
	c.truststore = strdup("/nonexistent/ca.pem");
	agent_prebuild(&c);
	cr_expect_not(agent_prebuilt_has(AGENT_TMPL_CLIENT_ANON));
	s_server(&s, 0);
	cr_expect_eq(client_run(&c, HS_AUTH_UNAUTH, "localhost", &s, &r), EIO);
	cr_expect(strstr(r.why, "/nonexistent/ca.pem"), "%s", r.why);
	s_server_stop(&s);
	agent_prebuild_free();
	agent_conf_free(&c);
}
