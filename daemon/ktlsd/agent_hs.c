/*
 * agent_hs.c - one handshake request, start to finish, in a child process.
 *
 * Why a process per request (as tlshd): the kernel hands us its socket
 * and links the consumer's keyring into the *process* keyring of whoever
 * ACCEPTs, so a process per request keeps each request's keys, keyring
 * links and fds apart; a crash or a stuck peer costs one request, never
 * the daemon; and the parent's loop never blocks on a peer.  A handshake
 * is a few milliseconds of CPU, so fork's cost does not matter here.
 *
 * Steps: ACCEPT -> parameters and the fd; link keyrings; a libktls context
 * for the role and auth mode under our policy (TLS 1.3 only, no tickets);
 * the handshake on the non-blocking fd within the kernel's timeout; keys
 * into kTLS for TX and RX (nothing buffered: libktls reads no record past
 * Finished); DONE with the status; close the fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent.h"
#include "ktls.h"

#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

/* Keyrings every consumer may use, linked when present (as tlshd does). */
static const char *const default_keyrings[] = { ".nvme", ".nfs", ".nfsd" };

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void peer_string(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64], port[16];

	snprintf(out, len, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* The peer's numeric address without the port: the name to verify when
 * the kernel gives none (an IP SAN then has to match). */
static int peer_host(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	return getnameinfo((struct sockaddr *)&ss, sl, out, (socklen_t)len, NULL, 0,
			   NI_NUMERICHOST) ? -1 : 0;
}

static void link_keyrings(struct agent_req *r)
{
	for (size_t i = 0; i < sizeof(default_keyrings) / sizeof(default_keyrings[0]); i++)
		keys_link_named(default_keyrings[i], NULL); /* absent is fine */
	for (unsigned i = 0; i < r->conf->nkeyrings; i++)
		if (keys_link_named(r->conf->keyrings[i], NULL))
			agent_log(AGENT_LOG_ERROR, "cannot link keyring '%s': %s",
				  r->conf->keyrings[i],
				  errno == EPERM ? "only keyrings of other users have that name "
						   "(one root owns is required)" : strerror(errno));
	if (r->a.keyring && keys_link(r->a.keyring))
		agent_log(AGENT_LOG_ERROR, "cannot link the kernel's keyring %d: %s",
			  r->a.keyring, strerror(errno));
}

/* ---- PSK -------------------------------------------------------------------- */

static int printable(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* Server lookup: the identity is a key description in a linked keyring. */
static int psk_lookup(void *arg, const unsigned char *id, size_t idlen, unsigned char *key,
		      size_t *keylen)
{
	struct agent_req *r = arg;
	char desc[256];
	int32_t serial;
	long n;

	if (idlen >= sizeof(desc) || !printable(id, idlen)) {
		agent_log(AGENT_LOG_INFO, "%s: ignoring a non-printable or overlong PSK identity "
			  "(%zu bytes)", r->peer, idlen);
		r->psk_unknown = 1;
		return 0;
	}
	memcpy(desc, id, idlen);
	desc[idlen] = '\0';
	snprintf(r->identity, sizeof(r->identity), "%s", desc);
	serial = keys_search("psk", desc);
	if (serial < 0) {
		snprintf(r->why, sizeof(r->why), "no PSK with identity '%.200s' in the linked keyrings "
			 "(%s)", desc, strerror(errno));
		r->psk_unknown = 1;
		return 0;
	}
	n = keys_read(serial, key, KTLS_PSK_MAX_LEN);
	if (n != 32 && n != 48) {
		snprintf(r->why, sizeof(r->why), "PSK %d ('%.200s') unusable: %s", serial, desc,
			 n < 0 ? strerror(errno) : "not 32 or 48 bytes");
		r->psk_unknown = 1;
		return 0;
	}
	*keylen = (size_t)n;
	r->peerid = serial;
	r->psk_unknown = 0;
	return 1;
}

/* Client: the first PEER_IDENTITY serial we can read. */
static int psk_client(struct agent_req *r, ktls_ctx *ctx)
{
	unsigned char key[KTLS_PSK_MAX_LEN];
	char type[32], desc[256];

	for (unsigned i = 0; i < r->a.npeerids; i++) {
		int32_t s = r->a.peerids[i];
		long n;
		int rc;

		if (keys_describe(s, type, sizeof(type), desc, sizeof(desc))) {
			snprintf(r->why, sizeof(r->why), "cannot describe PSK key %d: %s", s,
				 strerror(errno));
			continue;
		}
		n = keys_read(s, key, sizeof(key));
		if (n != 32 && n != 48) {
			snprintf(r->why, sizeof(r->why), "PSK key %d ('%.200s'): %s", s, desc,
				 n < 0 ? strerror(errno) : "not 32 or 48 bytes");
			explicit_bzero(key, sizeof(key));
			continue;
		}
		rc = ktls_ctx_set_psk(ctx, desc, strlen(desc), key, (size_t)n);
		explicit_bzero(key, sizeof(key));
		if (rc) {
			snprintf(r->why, sizeof(r->why), "%s", ktls_ctx_error(ctx));
			continue;
		}
		snprintf(r->identity, sizeof(r->identity), "%s", desc);
		r->peerid = s;
		return 0;
	}
	if (r->a.npeerids == 0)
		snprintf(r->why, sizeof(r->why), "PSK handshake requested without a key serial");
	return -1;
}

/* ---- x509 ------------------------------------------------------------------- */

/* A DER key-serial object as a PEM file under /proc/self/fd (a memfd). */
static int der_to_pem_fd(int32_t serial, int is_key, char *path, size_t plen, char *why,
			 size_t wlen)
{
	static unsigned char der[16384];
	const unsigned char *p = der;
	long n = keys_read(serial, der, sizeof(der));
	int fd, ok = 0;
	FILE *f;

	if (n <= 0) {
		snprintf(why, wlen, "cannot read key %d: %s", serial, strerror(errno));
		return -1;
	}
	fd = memfd_create(is_key ? "agent-key" : "agent-cert", MFD_CLOEXEC);
	if (fd < 0 || !(f = fdopen(dup(fd), "w"))) {
		snprintf(why, wlen, "memfd: %s", strerror(errno));
		explicit_bzero(der, sizeof(der));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (is_key) {
		EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, n);
		ok = k && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
		EVP_PKEY_free(k);
	} else {
		X509 *x = d2i_X509(NULL, &p, n);
		ok = x && PEM_write_X509(f, x);
		X509_free(x);
	}
	explicit_bzero(der, sizeof(der));
	fclose(f);
	if (!ok) {
		snprintf(why, wlen, "key %d is not a DER %s", serial,
			 is_key ? "private key" : "certificate");
		close(fd);
		return -1;
	}
	snprintf(path, plen, "/proc/self/fd/%d", fd);
	return fd;
}

/* Our certificate: the kernel's serials first, else the configured files. */
static int load_our_cert(struct agent_req *r, ktls_ctx *ctx, int required)
{
	char cpath[64], kpath[64];
	int cfd = -1, kfd = -1, rc;

	if (r->a.ncerts && r->a.certs[0].cert && r->a.certs[0].privkey) {
		cfd = der_to_pem_fd(r->a.certs[0].cert, 0, cpath, sizeof(cpath), r->why,
				    sizeof(r->why));
		if (cfd >= 0)
			kfd = der_to_pem_fd(r->a.certs[0].privkey, 1, kpath, sizeof(kpath), r->why,
					    sizeof(r->why));
		if (cfd < 0 || kfd < 0) {
			if (cfd >= 0)
				close(cfd);
			return -1;
		}
		rc = ktls_ctx_load_cert_chain(ctx, cpath, kpath);
		close(cfd);
		close(kfd);
	} else if (r->conf->certificate) {
		rc = ktls_ctx_load_cert_chain(ctx, r->conf->certificate, r->conf->private_key);
	} else {
		if (required)
			snprintf(r->why, sizeof(r->why), "x509 requested but no certificate: none "
				 "from the kernel and no x509.certificate configured");
		return required ? -1 : 0;
	}
	if (rc)
		snprintf(r->why, sizeof(r->why), "our certificate: %s", ktls_ctx_error(ctx));
	return rc;
}

static int load_trust(struct agent_req *r, ktls_ctx *ctx, int required)
{
	const char *ts = r->conf->truststore ? r->conf->truststore : SYSTEM_CA;

	if (!r->conf->truststore && !required)
		return 0;
	if (ktls_ctx_load_verify_locations(ctx, ts, NULL)) {
		snprintf(r->why, sizeof(r->why), "trust store %s: %s", ts, ktls_ctx_error(ctx));
		return -1;
	}
	/* A CRL is enforced for the peer's certificate, not merely loaded. */
	if (r->conf->crl && (ktls_ctx_load_verify_locations(ctx, r->conf->crl, NULL) ||
			     ktls_ctx_set_crl_check(ctx, KTLS_CRL_LEAF))) {
		snprintf(r->why, sizeof(r->why), "CRL %s: %s", r->conf->crl, ktls_ctx_error(ctx));
		return -1;
	}
	return 0;
}

/* ---- the context for this request ----------------------------------------- */

static ktls_ctx *make_ctx(struct agent_req *r)
{
	int server = r->a.msg_type == HS_MSG_SERVERHELLO;
	ktls_ctx *ctx = ktls_ctx_new(server ? KTLS_SERVER : KTLS_CLIENT);

	if (!ctx) {
		snprintf(r->why, sizeof(r->why), "cannot create a TLS context: %s", strerror(errno));
		return NULL;
	}
	/* Every kernel consumer needs TLS 1.3, and only data after DONE. */
	if (ktls_ctx_set_min_version(ctx, KTLS_TLS1_3) ||
	    (server && ktls_ctx_set_num_tickets(ctx, 0)))
		goto fail;
	if (r->a.auth_mode == HS_AUTH_PSK) {
		if (server ? ktls_ctx_set_psk_lookup(ctx, psk_lookup, r) : psk_client(r, ctx))
			goto fail;
	} else if (server) {
		if (r->a.auth_mode == HS_AUTH_UNAUTH) {
			snprintf(r->why, sizeof(r->why), "an unauthenticated server is not offered");
			goto fail_set;
		}
		if (load_our_cert(r, ctx, 1))
			goto fail_set;
		/* Client certificates: asked for, optional, verified when sent. */
		if (r->conf->truststore) {
			if (load_trust(r, ctx, 1) || ktls_ctx_set_verify(ctx, KTLS_VERIFY_OPTIONAL))
				goto fail;
		}
	} else {
		if (load_trust(r, ctx, 1))
			goto fail_set;
		if (r->a.auth_mode == HS_AUTH_X509 && load_our_cert(r, ctx, 1))
			goto fail_set;
	}
	return ctx;
fail:
	if (!r->why[0])
		snprintf(r->why, sizeof(r->why), "%s", ktls_ctx_error(ctx));
fail_set:
	ktls_ctx_free(ctx);
	return NULL;
}

/*
 * x509 contexts built once per configuration in the parent (startup and
 * SIGHUP) and inherited by every child: parsing the system trust store
 * costs ~60 ms natively and seconds under emulation, which would
 * otherwise come out of each request's handshake timeout.  Requests that
 * carry their own certificate serials, and all PSK requests, still get a
 * context of their own.
 */
static ktls_ctx *tmpl[AGENT_TMPL_N];
static const struct agent_conf *tmpl_conf;

void agent_prebuild_free(void)
{
	for (int i = 0; i < AGENT_TMPL_N; i++) {
		ktls_ctx_free(tmpl[i]);
		tmpl[i] = NULL;
	}
	tmpl_conf = NULL;
}

void agent_prebuild(const struct agent_conf *conf)
{
	static const struct { uint32_t type, auth; } t[AGENT_TMPL_N] = {
		[AGENT_TMPL_CLIENT_ANON] = { HS_MSG_CLIENTHELLO, HS_AUTH_UNAUTH },
		[AGENT_TMPL_CLIENT_X509] = { HS_MSG_CLIENTHELLO, HS_AUTH_X509 },
		[AGENT_TMPL_SERVER_X509] = { HS_MSG_SERVERHELLO, HS_AUTH_X509 },
	};

	agent_prebuild_free();
	for (int i = 0; i < AGENT_TMPL_N; i++) {
		struct agent_req r;

		memset(&r, 0, sizeof(r));
		r.conf = conf;
		r.a.msg_type = t[i].type;
		r.a.auth_mode = t[i].auth;
		tmpl[i] = make_ctx(&r);
		if (!tmpl[i])
			agent_log(AGENT_LOG_DEBUG, "%s %s requests will fail: %s",
				  hs_msg_type_str(t[i].type), hs_auth_str(t[i].auth), r.why);
	}
	tmpl_conf = conf;
}

int agent_prebuilt_has(enum agent_tmpl t)
{
	return tmpl[t] != NULL;
}

/* The prebuilt context for this request, or NULL. */
static ktls_ctx *prebuilt(const struct agent_req *r)
{
	int server = r->a.msg_type == HS_MSG_SERVERHELLO;

	if (r->conf != tmpl_conf || r->a.auth_mode == HS_AUTH_PSK || r->a.ncerts)
		return NULL;
	if (!server)
		return tmpl[r->a.auth_mode == HS_AUTH_X509 ? AGENT_TMPL_CLIENT_X509 : AGENT_TMPL_CLIENT_ANON];
	return r->a.auth_mode == HS_AUTH_X509 ? tmpl[AGENT_TMPL_SERVER_X509] : NULL;
}

/* The handshake on a non-blocking fd until done or the deadline. */
static int drive(ktls_conn *c, long long deadline, int *timed_out)
{
	int fd = ktls_conn_fd(c);

	for (;;) {
		int r = ktls_conn_handshake(c);
		struct pollfd p = { fd, 0, 0 };
		long long left;

		if (r == 0 || r == -1)
			return r;
		p.events = r == KTLS_WANT_READ ? POLLIN : POLLOUT;
		left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			*timed_out = 1;
			return -1;
		}
	}
}

/* Handshake + kTLS.  Returns the DONE status. */
static int run(struct agent_req *r, long long *ms)
{
	int fd = r->a.sockfd, server = r->a.msg_type == HS_MSG_SERVERHELLO;
	int flags, nodelay = 0, one = 1, timed_out = 0, status = EIO, proto = 0, borrowed;
	socklen_t sl = sizeof(nodelay);
	long long t0 = now_ms(), deadline;
	char name[256] = "";
	ktls_ctx *ctx;
	ktls_conn *c = NULL;
	struct ktls_info info;

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &sl) != 0 || proto != IPPROTO_TCP) {
		snprintf(r->why, sizeof(r->why), "fd %d is not a TCP socket (protocol %d)", fd, proto);
		return EIO;
	}
	link_keyrings(r);
	borrowed = (ctx = prebuilt(r)) != NULL;
	if (!ctx && !(ctx = make_ctx(r)))
		return EIO;
	if (!server && r->a.auth_mode != HS_AUTH_PSK) {
		if (r->a.peername[0])
			snprintf(name, sizeof(name), "%s", r->a.peername);
		else if (peer_host(fd, name, sizeof(name))) {
			snprintf(r->why, sizeof(r->why), "no peername and no peer address to verify");
			if (!borrowed)
				ktls_ctx_free(ctx);
			return EIO;
		}
	}
	c = server ? ktls_conn_accept(ctx, fd) : ktls_conn_connect(ctx, fd, name[0] ? name : NULL);
	if (!c) {
		snprintf(r->why, sizeof(r->why), "%s", ktls_ctx_error(ctx));
		if (!borrowed)
			ktls_ctx_free(ctx);
		return EIO;
	}
	/* The socket is the consumer's: change its flags only for the handshake. */
	flags = fcntl(fd, F_GETFL);
	sl = sizeof(nodelay);
	getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &sl);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
		snprintf(r->why, sizeof(r->why), "fcntl: %s", strerror(errno));
		goto out;
	}
	deadline = t0 + (r->a.timeout_ms ? r->a.timeout_ms : r->conf->handshake_timeout_ms);
	if (drive(c, deadline, &timed_out) != 0) {
		if (timed_out)
			snprintf(r->why, sizeof(r->why), "no handshake within %u ms",
				 r->a.timeout_ms ? r->a.timeout_ms : r->conf->handshake_timeout_ms);
		else if (!r->psk_unknown || !r->why[0])
			snprintf(r->why, sizeof(r->why), "%s%s", ktls_conn_error(c),
				 ktls_conn_error_code(c) == KTLS_ERR_PSK_MISMATCH
					 ? " (the peer's PSK differs from ours)" : "");
		status = agent_status_for(ktls_conn_error_code(c), timed_out);
		goto out;
	}
	/* nfsd's mtls needs a non-zero peer id when the client proved itself;
	 * like tlshd, a placeholder (the kernel does not parse the cert). */
	if (server && r->a.auth_mode == HS_AUTH_X509 && ktls_conn_peer_authenticated(c) == 1)
		r->peerid = -1; /* UINT_MAX on the wire */
	fcntl(fd, F_SETFL, flags);
	if (ktls_conn_offload(c) != 0 || ktls_conn_info(c, &info) != 0) {
		snprintf(r->why, sizeof(r->why), "kTLS: %s", ktls_conn_error(c));
		goto out;
	}
	if (info.tx == KTLS_MODE_USER || info.rx == KTLS_MODE_USER) {
		snprintf(r->why, sizeof(r->why), "the kernel did not take the keys (tx %s, rx %s): %s",
			 ktls_mode_name(info.tx), ktls_mode_name(info.rx),
			 info.fallback_reason ? info.fallback_reason : "?");
		goto out;
	}
	*ms = now_ms() - t0;
	agent_log(AGENT_LOG_INFO, "handshake ok: %s %s peer %s%s%s%s %s %s, kTLS tx %s rx %s, "
		  "%lld ms", hs_msg_type_str(r->a.msg_type), hs_auth_str(r->a.auth_mode), r->peer,
		  r->identity[0] ? " identity '" : "", r->identity, r->identity[0] ? "'" : "",
		  info.version_name, info.cipher, ktls_mode_name(info.tx), ktls_mode_name(info.rx), *ms);
	status = 0;
out:
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));
	ktls_conn_free(c);
	if (!borrowed)
		ktls_ctx_free(ctx);
	return status;
}

int agent_run(struct agent_req *r)
{
	long long ms = 0;
	int status;

	peer_string(r->a.sockfd, r->peer, sizeof(r->peer));
	agent_log(AGENT_LOG_DEBUG, "ACCEPT: fd %d %s %s peer %s peername '%s' timeout %u ms "
		  "peerids %u certs %u keyring %d", r->a.sockfd, hs_msg_type_str(r->a.msg_type),
		  hs_auth_str(r->a.auth_mode), r->peer, r->a.peername, r->a.timeout_ms,
		  r->a.npeerids, r->a.ncerts, r->a.keyring);
	status = run(r, &ms);
	if (status)
		agent_log(AGENT_LOG_ERROR, "handshake failed: %s %s peer %s%s%s%s: %s -> status %s",
			  hs_msg_type_str(r->a.msg_type), hs_auth_str(r->a.auth_mode), r->peer,
			  r->identity[0] ? " identity '" : "", r->identity, r->identity[0] ? "'" : "",
			  r->why[0] ? r->why : "unknown", strerrorname_np(status));
	return status;
}

int agent_handle_one(const struct agent_conf *conf, const struct hs_family *f)
{
	struct agent_req r;
	char err[256];
	int kerr = 0, nl, status;

	memset(&r, 0, sizeof(r));
	r.conf = conf;
	nl = hs_socket(err, sizeof(err));
	if (nl < 0) {
		agent_log(AGENT_LOG_ERROR, "request: %s", err);
		return 1;
	}
	if (hs_accept(nl, f, &r.a, &kerr, err, sizeof(err)) != 0) {
		if (kerr == EAGAIN) {
			/* Taken by a sibling or cancelled: nothing to do. */
			agent_log(AGENT_LOG_DEBUG, "ACCEPT: nothing pending");
			close(nl);
			return 0;
		}
		agent_log(AGENT_LOG_ERROR, "ACCEPT failed: %s%s", err,
			  kerr == EACCES ? " (the kernel could not link the consumer's keyring "
					   "into our process keyring: it needs Link permission for "
					   "our uid)" : "");
		/* A malformed reply may still have given us the socket. */
		if (r.a.sockfd >= 0) {
			hs_done(nl, f, EIO, r.a.sockfd, NULL, 0, &kerr, err, sizeof(err));
			close(r.a.sockfd);
		}
		close(nl);
		return 1;
	}
	status = agent_run(&r);
	/* A peer id only with success; -1 travels as UINT_MAX. */
	if (hs_done(nl, f, (uint32_t)status, r.a.sockfd, r.peerid ? &r.peerid : NULL,
		    status == 0 && r.peerid ? 1 : 0, &kerr, err, sizeof(err)) != 0)
		agent_log(AGENT_LOG_ERROR, "DONE for peer %s failed: %s (the consumer times out)",
			  r.peer, err);
	close(r.a.sockfd);
	close(nl);
	return status ? 2 : 0;
}
