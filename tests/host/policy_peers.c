/*
 * policy_peers.c - the policy against real peer processes over TCP:
 * `openssl s_server` / `openssl s_client` made weak on purpose (old
 * versions, CBC/CCM/RSA-kx suites, small keys and DH groups, SHA-1, wrong
 * names), against ktls_conn_connect/accept + ktls_conn_handshake.  Each
 * refusal must come with the expected reason in ktls_conn_error().
 * The peers run with OPENSSL_CONF=/dev/null so that only their command
 * line decides how weak they are.  Socket timeouts, not Criterion's
 * .timeout (whose runner leaks under ASan with parallel jobs), bound every
 * wait.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ktls.h"
#include "../common/testutil.h"

#define MAXARGS 40

static void timeouts(int fd)
{
	struct timeval tv = {.tv_sec = 15};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * argv for `openssl <cmd> <args...>` with OPENSSL_CONF=/dev/null, NULL-
 * terminated.  The peer's chatter goes to /dev/null unless
 * KTLS_TEST_VERBOSE is set.
 */
static void build_argv(char **argv, const char *cmd, const char *const *args)
{
	int n = 0;

	argv[n++] = "sh";
	argv[n++] = "-c";
	argv[n++] = getenv("KTLS_TEST_VERBOSE") ? "OPENSSL_CONF=/dev/null exec openssl \"$@\"" :
						  "OPENSSL_CONF=/dev/null exec openssl \"$@\" 2>/dev/null";
	argv[n++] = "sh";
	argv[n++] = (char *)cmd;
	while (*args && n < MAXARGS - 1)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
}

/* ---- our client against openssl s_server --------------------------------------- */

struct server {
	pid_t pid;
	int stdin_fd, port;
};

static void start_server(struct server *s, const char *cert, const char *const *extra)
{
	char port[16], crt[64], key[64];
	char *argv[MAXARGS];
	const char *args[MAXARGS];
	int n = 0;

	s->port = tu_free_port();
	cr_assert_gt(s->port, 0);
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(crt, sizeof(crt), "%s.pem", cert);
	snprintf(key, sizeof(key), "%s.key", cert);
	args[n++] = "-accept";
	args[n++] = port;
	args[n++] = "-cert";
	args[n++] = tu_cert(crt);
	args[n++] = "-key";
	args[n++] = tu_cert(key);
	args[n++] = "-quiet";
	while (*extra)
		args[n++] = *extra++;
	args[n] = NULL;
	build_argv(argv, "s_server", args);
	s->pid = tu_spawn(argv, &s->stdin_fd, NULL);
	cr_assert_gt(s->pid, 0);
	/* The probe connection is one failed handshake for s_server; it goes on. */
	cr_assert_eq(tu_wait_port(s->port, 10000), 0, "s_server did not start");
}

static void stop_server(struct server *s)
{
	close(s->stdin_fd);
	tu_stop(s->pid, 2000);
}

/* Connect our client; 0 and the negotiated cipher, or -1 and the reason. */
static int client_handshake(ktls_ctx *ctx, int port, const char *name, char *out, size_t len)
{
	int fd = tu_connect(port), rc;
	ktls_conn *c;

	cr_assert_geq(fd, 0);
	timeouts(fd);
	c = ktls_conn_connect(ctx, fd, name);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	rc = ktls_conn_handshake(c);
	if (rc == 0) {
		struct ktls_info info;

		cr_assert_eq(ktls_conn_info(c, &info), 0);
		snprintf(out, len, "%s %s", info.version_name, info.cipher);
	} else {
		snprintf(out, len, "%s", ktls_conn_error(c));
	}
	ktls_conn_free(c);
	close(fd);
	return rc;
}

static ktls_ctx *trusting_client(void)
{
	ktls_ctx *c = ktls_ctx_new(KTLS_CLIENT);

	cr_assert(c);
	cr_assert_eq(ktls_ctx_load_verify_locations(c, tu_cert("ca.pem"), NULL), 0);
	return c;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect_client_refused(const char *what, const char *cert, const char *const *args,
				  const char *name, const char *want)
{
	struct server s;
	ktls_ctx *c = trusting_client();
	char out[512];
	int rc;

	start_server(&s, cert, args);
	rc = client_handshake(c, s.port, name, out, sizeof(out));
	if (getenv("KTLS_TEST_VERBOSE"))
		fprintf(stderr, "%s: %s\n", what, out);
	cr_expect_eq(rc, -1, "%s: handshake succeeded (%s)", what, out);
	cr_expect(strstr(out, want) != NULL, "%s: \"%s\" lacks \"%s\"", what, out, want);
	stop_server(&s);
	ktls_ctx_free(c);
}

Test(policy_peers, client_sanity_against_s_server)
{
	struct server s;
	ktls_ctx *c = trusting_client();
	char out[512];

	start_server(&s, "server-ec", ARGS("-naccept", "5"));
	cr_expect_eq(client_handshake(c, s.port, "localhost", out, sizeof(out)), 0, "%s", out);
	cr_expect_str_eq(out, "TLSv1.3 TLS_AES_256_GCM_SHA384");
	stop_server(&s);
	ktls_ctx_free(c);
}

Test(policy_peers, client_refuses_old_protocol_servers)
{
	expect_client_refused("TLS 1.1-only s_server", "server-rsa",
			      ARGS("-tls1_1", "-cipher", "ALL:@SECLEVEL=0"), "localhost",
			      "protocol version");
	expect_client_refused("TLS 1.0-only s_server", "server-rsa",
			      ARGS("-tls1", "-cipher", "ALL:@SECLEVEL=0"), "localhost",
			      "protocol version");
}

Test(policy_peers, client_refuses_weak_suites)
{
	expect_client_refused("CBC-only s_server", "server-rsa",
			      ARGS("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384"),
			      "localhost", "handshake failure");
	expect_client_refused("RSA-kx-only s_server", "server-rsa",
			      ARGS("-tls1_2", "-cipher", "AES128-GCM-SHA256"), "localhost",
			      "handshake failure");
	expect_client_refused("CCM-only TLS 1.2 s_server", "server-ec",
			      ARGS("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-CCM"), "localhost",
			      "handshake failure");
	expect_client_refused("CCM-only TLS 1.3 s_server", "server-ec",
			      ARGS("-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"), "localhost",
			      "handshake failure");
	expect_client_refused("DHE-1024 s_server", "server-rsa",
			      ARGS("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
				   "-dhparam", tu_cert("dh1024.pem")),
			      "localhost", "dh key too small");
}

Test(policy_peers, client_refuses_weak_certificates)
{
	const char *vers[] = {"-tls1_2", "-tls1_3"};

	for (int i = 0; i < 2; i++) {
		expect_client_refused("RSA-1024 s_server", "rsa1024",
				      ARGS(vers[i], "-cipher", "ALL:@SECLEVEL=0"), "localhost",
				      "certificate verify failed: EE certificate key too weak");
		expect_client_refused("SHA-1-signed s_server", "sha1",
				      ARGS(vers[i], "-cipher", "ALL:@SECLEVEL=0"), "localhost",
				      "certificate verify failed: CA signature digest algorithm too weak");
	}
	expect_client_refused("untrusted s_server", "untrusted", ARGS("-tls1_3"), "localhost",
			      "certificate verify failed: unable to get local issuer certificate");
}

Test(policy_peers, client_refuses_wrong_names)
{
	expect_client_refused("wrong name", "server-ec", ARGS("-tls1_3"), "example.com",
			      "certificate verify failed: Hostname mismatch, certificate is not "
			      "valid for 'example.com'");
	expect_client_refused("partial wildcard", "partial-wildcard", ARGS("-tls1_3"),
			      "foo.example.com",
			      "certificate verify failed: Hostname mismatch, certificate is not "
			      "valid for 'foo.example.com'");
	expect_client_refused("wrong IP", "server-ec", ARGS("-tls1_3"), "127.0.0.2",
			      "certificate verify failed: IP address mismatch");
}

/* ---- our server against openssl s_client ---------------------------------------- */

static int server_handshake(ktls_ctx *ctx, const char *const *client_args, char *out, size_t len)
{
	char connect[32];
	char *argv[MAXARGS];
	const char *args[MAXARGS];
	int port = 0, lfd = tu_listen(&port), fd, in, n = 0, rc;
	pid_t pid;
	ktls_conn *c;

	cr_assert_geq(lfd, 0);
	timeouts(lfd); /* accept() too: a peer that never starts must not hang us */
	snprintf(connect, sizeof(connect), "127.0.0.1:%d", port);
	args[n++] = "-connect";
	args[n++] = connect;
	args[n++] = "-quiet";
	while (*client_args)
		args[n++] = *client_args++;
	args[n] = NULL;
	build_argv(argv, "s_client", args);
	pid = tu_spawn(argv, &in, NULL);
	cr_assert_gt(pid, 0);
	fd = accept(lfd, NULL, NULL);
	close(lfd);
	cr_assert_geq(fd, 0);
	timeouts(fd);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	rc = ktls_conn_handshake(c);
	if (rc == 0) {
		struct ktls_info info;

		cr_assert_eq(ktls_conn_info(c, &info), 0);
		snprintf(out, len, "%s %s", info.version_name, info.cipher);
	} else {
		snprintf(out, len, "%s", ktls_conn_error(c));
	}
	ktls_conn_free(c);
	close(fd);
	close(in);
	tu_stop(pid, 2000);
	return rc;
}

static ktls_ctx *server_ctx(const char *cert)
{
	ktls_ctx *s = ktls_ctx_new(KTLS_SERVER);
	char crt[64], key[64];

	cr_assert(s);
	snprintf(crt, sizeof(crt), "%s.pem", cert);
	snprintf(key, sizeof(key), "%s.key", cert);
	cr_assert_eq(ktls_ctx_load_cert_chain(s, tu_cert(crt), tu_cert(key)), 0, "%s",
		     ktls_ctx_error(s));
	return s;
}

static void expect_server_refused(ktls_ctx *s, const char *what, const char *const *args,
				  const char *want)
{
	char out[512];
	int rc = server_handshake(s, args, out, sizeof(out));

	if (getenv("KTLS_TEST_VERBOSE"))
		fprintf(stderr, "%s: %s\n", what, out);
	cr_expect_eq(rc, -1, "%s: handshake succeeded (%s)", what, out);
	cr_expect(strstr(out, want) != NULL, "%s: \"%s\" lacks \"%s\"", what, out, want);
}

Test(policy_peers, server_refuses_weak_clients)
{
	ktls_ctx *s = server_ctx("server-rsa");
	char out[512];

	cr_expect_eq(server_handshake(s, ARGS("-tls1_2", "-cipher",
					      "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"),
				  out, sizeof(out)), 0, "%s", out);
	cr_expect_str_eq(out, "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384", "server preference");

	expect_server_refused(s, "TLS 1.1-only s_client", ARGS("-tls1_1", "-cipher", "ALL:@SECLEVEL=0"),
			      "peer offered only TLS 1.1; minimum is TLS 1.2");
	expect_server_refused(s, "TLS 1.0-only s_client", ARGS("-tls1", "-cipher", "ALL:@SECLEVEL=0"),
			      "peer offered only TLS 1.0; minimum is TLS 1.2");
	expect_server_refused(s, "CBC-only s_client",
			      ARGS("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-SHA256"),
			      "no shared cipher");
	expect_server_refused(s, "RSA-kx-only s_client",
			      ARGS("-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384"),
			      "no shared cipher");
	expect_server_refused(s, "CCM-only TLS 1.2 s_client",
			      ARGS("-tls1_2", "-cipher", "ECDHE-RSA-AES128-CCM:DHE-RSA-AES128-CCM"),
			      "no shared cipher");
	expect_server_refused(s, "CCM-only TLS 1.3 s_client",
			      ARGS("-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"),
			      "no shared cipher");
	expect_server_refused(s, "DHE-only s_client, no DH parameters loaded",
			      ARGS("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"),
			      "no shared cipher");
	ktls_ctx_free(s);
}

Test(policy_peers, server_dhe_with_params)
{
	ktls_ctx *s = server_ctx("server-rsa");
	char out[512];

	cr_assert_eq(ktls_ctx_load_dh_params(s, tu_cert("dh2048.pem")), 0);
	cr_expect_eq(server_handshake(s, ARGS("-tls1_2", "-cipher", "DHE-RSA-AES256-GCM-SHA384"),
				  out, sizeof(out)), 0, "%s", out);
	cr_expect_str_eq(out, "TLSv1.2 DHE-RSA-AES256-GCM-SHA384");
	ktls_ctx_free(s);
}

Test(policy_peers, server_client_certificates)
{
	ktls_ctx *s = server_ctx("server-ec");
	char out[512];

	cr_assert_eq(ktls_ctx_load_verify_locations(s, tu_cert("ca.pem"), NULL), 0);
	cr_assert_eq(ktls_ctx_set_verify(s, KTLS_VERIFY_REQUIRED), 0);
	cr_expect_eq(server_handshake(s, ARGS("-cert", tu_cert("client.pem"), "-key",
					      tu_cert("client.key")), out, sizeof(out)),
		     0, "%s", out);
	expect_server_refused(s, "no client certificate", ARGS("-tls1_3"),
			      "peer did not return a certificate");
	expect_server_refused(s, "RSA-1024 client certificate",
			      ARGS("-cert", tu_cert("rsa1024.pem"), "-key", tu_cert("rsa1024.key"),
				   "-cipher", "ALL:@SECLEVEL=0"),
			      "client certificate verify failed: EE certificate key too weak");
	expect_server_refused(s, "SHA-1 client certificate",
			      ARGS("-tls1_2", "-cert", tu_cert("sha1.pem"), "-key", tu_cert("sha1.key"),
				   "-cipher", "ALL:@SECLEVEL=0"),
			      "client certificate verify failed: CA signature digest algorithm too weak");
	ktls_ctx_free(s);
}

/* ---- our server against Python's ssl and gnutls-cli ------------------------------ */

/*
 * Run argv (a client connecting to our listener) and handshake our server
 * with it.  Clients stay connected until we close (Python waits in recv),
 * so that the server's session tickets never meet a closed socket.  The client's output is dropped unless KTLS_TEST_VERBOSE is set.
 */
static int server_with(ktls_ctx *ctx, int lfd, char *const *argv, char *out, size_t len)
{
	char *wrapped[MAXARGS] = {"sh", "-c",
				  getenv("KTLS_TEST_VERBOSE") ? "exec \"$@\" >&2" :
								"exec \"$@\" >/dev/null 2>&1",
				  "sh"};
	int in, fd, rc, n = 4;
	pid_t pid;
	ktls_conn *c;

	while (*argv && n < MAXARGS - 1)
		wrapped[n++] = *argv++;
	wrapped[n] = NULL;
	pid = tu_spawn(wrapped, &in, NULL);

	cr_assert_gt(pid, 0);
	fd = accept(lfd, NULL, NULL);
	cr_assert_geq(fd, 0, "%s never connected", wrapped[4]);
	timeouts(fd);
	c = ktls_conn_accept(ctx, fd);
	cr_assert(c, "%s", ktls_ctx_error(ctx));
	rc = ktls_conn_handshake(c);
	if (rc == 0) {
		struct ktls_info info;

		cr_assert_eq(ktls_conn_info(c, &info), 0);
		snprintf(out, len, "%s %s", info.version_name, info.cipher);
	} else {
		snprintf(out, len, "%s", ktls_conn_error(c));
	}
	ktls_conn_free(c);
	close(fd);
	close(in);
	tu_stop(pid, 2000);
	return rc;
}

#define PY_CLIENT                                                                          \
	"import socket, ssl, sys\n"                                                        \
	"c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"                                    \
	"c.load_verify_locations(sys.argv[2])\n"                                           \
	"if sys.argv[3] != \"-\": c.maximum_version = getattr(ssl.TLSVersion, sys.argv[3])\n" \
	"if sys.argv[4] != \"-\": c.minimum_version = getattr(ssl.TLSVersion, sys.argv[4])\n" \
	"if sys.argv[5] != \"-\": c.set_ciphers(sys.argv[5])\n"                            \
	"s = socket.create_connection((\"127.0.0.1\", int(sys.argv[1])))\n"                \
	"try: c.wrap_socket(s, server_hostname=\"localhost\").recv(1)\n"                   \
	"except Exception as e: print(e, file=sys.stderr)\n"

static int python_client(ktls_ctx *s, const char *maxv, const char *minv, const char *ciphers,
			 char *out, size_t len)
{
	char port_s[16];
	int port = 0, lfd = tu_listen(&port), rc;

	cr_assert_geq(lfd, 0);
	timeouts(lfd);
	snprintf(port_s, sizeof(port_s), "%d", port);
	char *argv[] = {"python3", "-c", PY_CLIENT, port_s, (char *)tu_cert("ca.pem"),
			(char *)maxv, (char *)minv, (char *)ciphers, NULL};
	rc = server_with(s, lfd, argv, out, len);
	close(lfd);
	return rc;
}

Test(policy_peers, server_with_python_clients)
{
	ktls_ctx *s = server_ctx("server-rsa");
	char out[512];

	cr_expect_eq(python_client(s, "-", "-", "-", out, sizeof(out)), 0, "%s", out);
	cr_expect_str_eq(out, "TLSv1.3 TLS_AES_256_GCM_SHA384");
	cr_expect_eq(python_client(s, "TLSv1_2", "-", "ECDHE-RSA-AES128-GCM-SHA256:"
				   "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384",
				   out, sizeof(out)), 0, "%s", out);
	cr_expect_str_eq(out, "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384", "server preference");
	cr_expect_eq(python_client(s, "TLSv1_1", "TLSv1_1", "ALL:@SECLEVEL=0", out, sizeof(out)),
		     -1, "%s", out);
	cr_expect_str_eq(out, "peer offered only TLS 1.1; minimum is TLS 1.2");
	cr_expect_eq(python_client(s, "TLSv1_2", "-", "ECDHE-RSA-AES128-SHA:AES128-GCM-SHA256",
				   out, sizeof(out)), -1, "%s", out);
	cr_expect_str_eq(out, "no shared cipher: the peer offered none of the policy's suites");
	ktls_ctx_free(s);
}

static int gnutls_client(ktls_ctx *s, const char *priority, char *out, size_t len)
{
	char port_s[16], prio[256];
	int port = 0, lfd = tu_listen(&port), rc;

	cr_assert_geq(lfd, 0);
	timeouts(lfd);
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(prio, sizeof(prio), "--priority=%s", priority);
	char *argv[] = {"gnutls-cli", "--insecure", prio, "-p", port_s, "127.0.0.1", NULL};
	rc = server_with(s, lfd, argv, out, len);
	close(lfd);
	return rc;
}

Test(policy_peers, server_with_gnutls_clients)
{
	ktls_ctx *s = server_ctx("server-ec");
	char out[512];

	cr_expect_eq(gnutls_client(s, "NORMAL", out, sizeof(out)), 0, "%s", out);
	cr_expect_str_eq(out, "TLSv1.3 TLS_AES_256_GCM_SHA384");
	cr_expect_eq(gnutls_client(s, "NORMAL:-VERS-ALL:+VERS-TLS1.1", out, sizeof(out)), -1);
	cr_expect_str_eq(out, "peer offered only TLS 1.1; minimum is TLS 1.2");
	cr_expect_eq(gnutls_client(s, "NORMAL:-VERS-TLS1.3:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC",
				   out, sizeof(out)), -1, "%s", out);
	cr_expect_str_eq(out, "no shared cipher: the peer offered none of the policy's suites");
	cr_expect_eq(gnutls_client(s, "NORMAL:-CIPHER-ALL:+AES-128-CCM", out, sizeof(out)), -1,
		     "%s", out);
	cr_expect_str_eq(out, "no shared cipher: the peer offered none of the policy's suites");
	ktls_ctx_free(s);
}
