/*
 * serve.c - `ktlsd serve`: settings, keys, listeners, privileges, workers,
 * signals.  The main thread only waits for signals once workers run:
 * SIGTERM/SIGINT stop (in-flight responses get the grace period), SIGHUP
 * reloads the certificate and key for new handshakes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ktls.h"

#include "clock.h"
#include "keyd.h"
#include "keylog.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "serve.h"

/*
 * The i-th --ocsp-staple, for the chain just loaded or added: a bad one must
 * not stop serving (without it clients still connect), so it is logged.
 */
static void staple(ktls_ctx *ctx, const struct cfg *c, int i)
{
	const char *f = i < c->nocsp ? c->ocsp_staple[i] : NULL;

	if (!f || !strcmp(f, "none"))
		return;
	if (ktls_ctx_set_ocsp_staple_file(ctx, f) != 0)
		log_msg("--ocsp-staple %s: %s; serving without a staple", f, ktls_ctx_error(ctx));
	else
		log_msg("--ocsp-staple %s: stapling it for clients that ask", f);
}

/*
 * The default chain's staple, then the --cert pairs after the first,
 * chosen by the client's server name, each with its staple: 0, or -1 with
 * the failing one named in what.
 */
static int add_sni_chains(ktls_ctx *ctx, const struct cfg *c, const struct keyd_pair *mem,
			  char *what, size_t len)
{
	staple(ctx, c, 0);
	for (int i = 1; i < c->ncerts; i++) {
		if (mem ? ktls_ctx_add_cert_chain_mem(ctx, mem[i].cert, mem[i].certlen, mem[i].key,
						      mem[i].keylen)
			: ktls_ctx_add_cert_chain(ctx, c->cert[i], c->nkeys ? c->key[i] : NULL)) {
			snprintf(what, len, "--cert %s", c->cert[i]);
			return -1;
		}
		staple(ctx, c, i);
	}
	return 0;
}

/*
 * A server context from the settings and the ticket keys; the chains from
 * mem (one pair per --cert, the default first) when given, else from the
 * files: cert and key, then the other --cert pairs by server name.  NULL
 * with the reason logged.
 */
static ktls_ctx *make_ctx(const struct cfg *c, const struct ticket_ring *tr, const char *cert,
			  const char *key, const struct keyd_pair *mem)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	const char *what = NULL;
	char chain[320];

	if (!ctx) {
		log_msg("ktls_ctx_new: %s", strerror(errno));
		return NULL;
	}
	if (mem ? ktls_ctx_load_cert_chain_mem(ctx, mem->cert, mem->certlen, mem->key, mem->keylen)
		: ktls_ctx_load_cert_chain(ctx, cert, key))
		what = "certificate/key";
	else if (add_sni_chains(ctx, c, mem, chain, sizeof(chain)) != 0)
		what = chain;
	else if (c->ca && ktls_ctx_load_verify_locations(ctx, c->ca, NULL) != 0)
		what = "--ca";
	else if (ktls_ctx_set_verify(ctx, c->verify) != 0)
		what = "--verify";
	else if (c->ciphers && ktls_ctx_set_ciphers(ctx, c->ciphers) != 0)
		what = "--ciphers";
	else if (c->ciphersuites && ktls_ctx_set_ciphersuites(ctx, c->ciphersuites) != 0)
		what = "--ciphersuites";
	else if (ktls_ctx_set_num_tickets(ctx, (unsigned)c->tickets) != 0)
		what = "--tickets";
	else if (strcmp(c->alpn, "none") != 0 && ktls_ctx_set_alpn(ctx, c->alpn) != 0)
		what = "--alpn";
	else if (c->tickets > 0 && ticket_ring_apply(tr, ctx) != 0)
		what = "ticket keys";
	else if (c->zerocopy_sendfile && ktls_ctx_set_zerocopy_sendfile(ctx, 1) != 0)
		what = "--zerocopy-sendfile";
	if (what) {
		log_msg("%s: %s", what, ktls_ctx_error(ctx));
		ktls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

ktls_conn *srv_accept_conn(struct srv *s, int fd)
{
	ktls_conn *conn;

	/* the lock keeps SIGHUP from freeing the ctx under ktls_conn_accept */
	pthread_mutex_lock(&s->ctx_mu);
	conn = ktls_conn_accept(s->ctx, fd);
	if (!conn)
		log_msg("ktls_conn_accept: %s", ktls_ctx_error(s->ctx));
	pthread_mutex_unlock(&s->ctx_mu);
	return conn;
}

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" (all IPv4) into a sockaddr. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		size_t hl = strlen(host);

		if (hl < 3 || host[hl - 1] != ']')
			return -1;
		host[hl - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		*sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (host[0] && strcmp(host, "*") && inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		*sl = sizeof(*s4);
	}
	return 0;
}

static int bind_one(const struct sockaddr_storage *ss, socklen_t sl)
{
	int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)ss, sl) < 0 || listen(fd, 1024) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * All listeners: nworkers sockets per address (SO_REUSEPORT spreads the
 * connections).  A port of 0 is resolved by the first socket so the
 * others join the same one.  lfds[worker * naddr + i].
 */
static int *bind_all(struct srv *s, int *naddr_out)
{
	const char *defaults[] = { "127.0.0.1:8443", "[::1]:8443" };
	const char **specs = s->cfg.listen_default ? defaults : (const char **)s->cfg.listen;
	int nspec = s->cfg.listen_default ? 2 : s->cfg.nlisten, naddr = 0;
	int nw = s->nworkers, *lfds = calloc((size_t)(nw * nspec), sizeof(int));

	if (!lfds)
		return NULL;
	for (int i = 0; i < nspec; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		char shown[160];

		if (parse_listen(specs[i], &ss, &sl) < 0) {
			log_msg("--listen %s: expected ADDR:PORT, [ADDR6]:PORT or :PORT", specs[i]);
			goto fail;
		}
		for (int k = 0; k < nw; k++) {
			int fd = bind_one(&ss, sl);

			if (fd < 0) {
				if (s->cfg.listen_default && i == 1 &&
				    (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
					log_msg("note: IPv6 loopback unavailable (%s): not listening on %s",
						strerror(errno), specs[i]);
					for (int j = 0; j < k; j++)
						close(lfds[j * nspec + naddr]);
					goto next;
				}
				log_msg("listen %s: %s", specs[i], strerror(errno));
				goto fail;
			}
			if (k == 0) { /* learn an ephemeral port */
				getsockname(fd, (struct sockaddr *)&ss, &sl);
			}
			lfds[k * nspec + naddr] = fd;
		}
		if (ss.ss_family == AF_INET6) {
			char a[INET6_ADDRSTRLEN];

			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
			snprintf(shown, sizeof(shown), "[%s]:%d", a, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		} else {
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
			snprintf(shown, sizeof(shown), "%s:%d", a, ntohs(((struct sockaddr_in *)&ss)->sin_port));
		}
		log_msg("listening on https://%s/", shown);
		naddr++;
next:;
	}
	/* compact to nw x naddr */
	if (naddr != nspec)
		for (int k = 0; k < nw; k++)
			for (int i = 0; i < naddr; i++)
				lfds[k * naddr + i] = lfds[k * nspec + i];
	*naddr_out = naddr;
	return lfds;
fail:
	free(lfds);
	return NULL;
}

/* The --metrics listener: plain HTTP, one socket, bound before privileges drop. */
static int bind_metrics(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;
	char lo[80];

	/* ":PORT" means loopback here: the endpoint has no TLS and no auth */
	if (spec[0] == ':' && snprintf(lo, sizeof(lo), "127.0.0.1%s", spec) < (int)sizeof(lo))
		spec = lo;
	if (parse_listen(spec, &ss, &sl) < 0) {
		log_msg("--metrics %s: expected ADDR:PORT, [ADDR6]:PORT or :PORT (loopback)", spec);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		log_msg("--metrics %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	log_msg("metrics on http://%s/metrics", spec);
	return fd;
}

static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		log_msg("--user %s: no such user", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_msg("--user %s: cannot switch (%s)%s", user, strerror(errno),
			errno == EPERM ? "; it needs starting as root" : "");
		return -1;
	}
	if (setuid(0) == 0 && pw->pw_uid != 0) {
		log_msg("--user %s: could regain root; refusing to run", user);
		return -1;
	}
	/* no exec can give privileges back (setuid binaries, file capabilities) */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_msg("--user %s: PR_SET_NO_NEW_PRIVS: %s", user, strerror(errno));
		return -1;
	}
	return 0;
}

/* The default pair: the first --cert/--key, else the self-signed one. */
static void default_pair(const struct srv *s, const char **cert, const char **key)
{
	if (s->cfg.ncerts) {
		*cert = s->cfg.cert[0];
		*key = s->cfg.nkeys ? s->cfg.key[0] : NULL;
	} else {
		*cert = s->selfsigned_cert;
		*key = s->selfsigned_key;
	}
}

/*
 * A new context from the files as they are now and the ticket keys tr,
 * swapped in for new handshakes.  After --user the key helper reads the
 * files (keyd.h): a key only root may read keeps working.  0, or -1 with
 * the old context kept and the reason logged.
 */
static int rebuild(struct srv *s, const struct ticket_ring *tr, const char *why)
{
	struct keyd_pair mem[CFG_MAX_CERTS];
	const char *cert, *key;
	ktls_ctx *ctx, *old;
	char err[300];

	default_pair(s, &cert, &key);
	if (s->keyd >= 0 && s->keyd_stale) {
		log_msg("%s: the key helper read a different configuration; send SIGHUP again. "
			"Still serving the previous certificate", why);
		return -1;
	}
	if (s->keyd >= 0) {
		int got = 0;

		memset(mem, 0, sizeof(mem));
		while (got < s->cfg.ncerts && keyd_fetch(s->keyd, got, &mem[got], err, sizeof(err)) == 0)
			got++;
		ctx = got == s->cfg.ncerts ? make_ctx(&s->cfg, tr, cert, key, mem) : NULL;
		for (int i = 0; i < got; i++)
			keyd_clear(&mem[i]);
		if (got < s->cfg.ncerts) {
			log_msg("%s: %s; reload failed, still serving the previous certificate", why, err);
			return -1;
		}
	} else {
		ctx = make_ctx(&s->cfg, tr, cert, key, NULL);
	}
	if (!ctx) {
		log_msg("%s: reload failed; still serving the previous certificate", why);
		return -1;
	}
	pthread_mutex_lock(&s->ctx_mu);
	old = s->ctx;
	s->ctx = ctx;
	pthread_mutex_unlock(&s->ctx_mu);
	ktls_ctx_free(old); /* live connections keep their own reference */
	return 0;
}

/*
 * Can this reload take fresh's --cert/--key pairs?  Not between none
 * (the self-signed pair) and some: that needs a start.  After --user the
 * key helper must re-read the same pairs from the configuration itself.
 */
static int pairs_take(struct srv *s, const struct cfg *fresh)
{
	char err[300];
	int n;

	if (!s->cfg.ncerts || !fresh->ncerts)
		return 0;
	if (s->keyd < 0)
		return 1;
	n = keyd_reread(s->keyd, err, sizeof(err));
	if (n < 0) {
		log_msg("SIGHUP: %s; keeping the previous --cert/--key pairs", err);
		return 0;
	}
	/* a file changed between the two reads: both must agree before any reload */
	s->keyd_stale = n != fresh->ncerts;
	return !s->keyd_stale;
}

/* SIGHUP: the settings of the TLS context, the certificates and (with --ticket-key) ticket keys re-read. */
static void reload(struct srv *s)
{
	struct ticket_ring tr;
	struct cfg fresh;
	const char *cert, *key;
	char err[300];

	/* the TLS settings of the command line and --config file as they are now */
	if (cfg_parse(&fresh, s->argc, s->argv) == 0) {
		int differ = cfg_pairs_differ(&s->cfg, &fresh);
		/* a stale helper re-reads even when the file went back to our pairs */
		int take = (differ || s->keyd_stale) && pairs_take(s, &fresh);

		if (take && differ)
			log_msg("SIGHUP: the --cert/--key pairs changed: %d now", fresh.ncerts);
		cfg_take_reloadable(&s->cfg, &fresh, take, err, sizeof(err));
		if (err[0])
			log_msg("SIGHUP: %s changed; that takes effect at the next start", err);
	} else {
		log_msg("SIGHUP: the configuration above is refused; keeping the previous settings");
	}
	cfg_free(&fresh);
	tr = s->tickets;
	if (s->cfg.ticket_key && ticket_ring_load(&tr, s->cfg.ticket_key, err, sizeof(err)) != 0)
		log_msg("SIGHUP: %s; keeping the ticket keys read before", err);
	default_pair(s, &cert, &key);
	if (rebuild(s, &tr, "SIGHUP") == 0) {
		s->tickets = tr;
		log_msg("SIGHUP: reloaded %s; new handshakes use it", cert);
	}
	ticket_ring_wipe(&tr);
}

/* --ticket-key-rotate: a new key seals from now on; the three before it still open. */
static void rotate_ticket_key(struct srv *s)
{
	struct ticket_ring tr = s->tickets;
	char err[300];

	if (ticket_ring_rotate(&tr, err, sizeof(err)) != 0)
		log_msg("ticket key rotation: %s", err);
	else if (rebuild(s, &tr, "ticket key rotation") == 0) {
		s->tickets = tr;
		log_msg("ticket keys rotated: a new key seals, %d older still open tickets",
			tr.n - 1);
	}
	ticket_ring_wipe(&tr);
	s->next_rotate_ms = now_ms() + (uint64_t)s->cfg.ticket_rotate_ms;
}

/*
 * Signals until SIGTERM/SIGINT (returned), and two timers.  Under a
 * systemd watchdog (WatchdogSec=) it pings at half the interval, but only
 * while every worker's loop still turns (its 250 ms timer was handled
 * since the last look): a worker stuck or gone stops the pings and systemd
 * restarts us.  And every --ticket-key-rotate, a new ticket key.
 */
static int main_loop(struct srv *s, const sigset_t *set)
{
	uint64_t wd = notify_watchdog_usec(), *seen = NULL, every_ms = 0, next_ping = 0;
	int sig;

	if (wd) {
		/* the workers tick every 250 ms: look no more often than that */
		every_ms = wd / 2000 > 300 ? wd / 2000 : 300;
		seen = calloc((size_t)s->nworkers, sizeof(*seen));
		notify_watchdog();
		next_ping = now_ms() + every_ms;
	}
	for (;;) {
		uint64_t now = now_ms(), due = wd ? next_ping : UINT64_MAX;

		if (s->next_rotate_ms && s->next_rotate_ms < due)
			due = s->next_rotate_ms;
		if (due == UINT64_MAX) {
			sig = sigwaitinfo(set, NULL);
		} else {
			uint64_t left = due > now ? due - now : 0;
			struct timespec ts = { (time_t)(left / 1000), (long)(left % 1000) * 1000000 };

			sig = sigtimedwait(set, NULL, &ts);
		}
		if (sig < 0) { /* a timer is due (EAGAIN), or EINTR */
			now = now_ms();
			if (wd && now >= next_ping) {
				int stuck = -1;

				for (int k = 0; k < s->nworkers && seen; k++) {
					uint64_t t = worker_ticks(s->workers[k]);

					if (t == seen[k])
						stuck = k;
					seen[k] = t;
				}
				if (stuck < 0)
					notify_watchdog();
				else
					log_msg("watchdog: worker %d made no progress; not pinging systemd",
						stuck);
				next_ping = now + every_ms;
			}
			if (s->next_rotate_ms && now >= s->next_rotate_ms)
				rotate_ticket_key(s);
			continue;
		}
		if (sig == SIGHUP) {
			notify_reloading();
			reload(s);
			notify_ready("serving (reloaded)");
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	free(seen);
	return sig;
}

/*
 * In the key helper (root, forked before --user): the pairs of the
 * command line and --config file as they are now.  The previous parse
 * stays alive while the helper serves its pairs.
 */
static int keyd_reread_config(void *arg, char *const **cert, char *const **key, int *n)
{
	static struct cfg now;
	const struct srv *s = arg;
	struct cfg fresh;

	if (cfg_parse(&fresh, s->argc, s->argv) != 0)
		return -1;
	cfg_free(&now);
	now = fresh;
	*cert = now.cert;
	*key = now.nkeys ? now.key : NULL;
	*n = now.ncerts;
	return 0;
}

int serve_main(int argc, char **argv)
{
	static struct srv S;
	struct srv *s = &S;
	const char *cert, *key;
	int *lfds, naddr = 0, rc = 1, logfd = -1, metrics_fd = -1, sig;
	sigset_t set;

	s->argc = argc;
	s->argv = argv;
	switch (cfg_parse(&s->cfg, argc, argv)) {
	case 1:
		return 0;
	case 0:
		break;
	default:
		return 2;
	}
	{
		char warn[300], err[300];

		if (keylog_gate(s->cfg.keylog, warn, sizeof(warn), err, sizeof(err)) < 0) {
			log_msg("%s", err);
			return 2;
		}
		if (warn[0])
			log_msg("%s", warn);
	}
	pthread_mutex_init(&s->ctx_mu, NULL);
	{
		/* a connection is a socket; while sending, a file and maybe a pipe */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		    (rlim_t)s->cfg.max_conns + 64 > rl.rlim_cur)
			log_msg("note: open-file limit %llu is low for --max-conns %d; accept will "
				"back off when it runs out (raise LimitNOFILE / ulimit -n)",
				(unsigned long long)rl.rlim_cur, s->cfg.max_conns);
	}
	s->nworkers = s->cfg.workers;
	if (s->cfg.max_conns_per_client > 0 &&
	    !(s->peers = peer_limit_new(s->cfg.max_conns_per_client, s->cfg.max_conns))) {
		log_msg("--max-conns-per-client: out of memory");
		return 1;
	}
	s->rootfd = open(s->cfg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		log_msg("--root %s: %s", s->cfg.root, strerror(errno));
		return 1;
	}
	if (!s->cfg.ncerts && selfsign_ensure(s->selfsigned_cert, s->selfsigned_key,
					      sizeof(s->selfsigned_cert)) < 0)
		return 1;
	default_pair(s, &cert, &key);
	s->keyd = -1;
	{
		char err[300];

		if (s->cfg.ticket_key ? ticket_ring_load(&s->tickets, s->cfg.ticket_key, err, sizeof(err))
				      : ticket_ring_rotate(&s->tickets, err, sizeof(err))) {
			log_msg("%s", err);
			return 1;
		}
		if (!s->cfg.ticket_key && s->cfg.ticket_rotate_ms > 0 && s->cfg.tickets > 0)
			s->next_rotate_ms = now_ms() + (uint64_t)s->cfg.ticket_rotate_ms;
	}
	s->ctx = make_ctx(&s->cfg, &s->tickets, cert, key, NULL);
	if (!s->ctx)
		return 1;
	if (s->cfg.access_log) {
		logfd = strcmp(s->cfg.access_log, "-") == 0
				? dup(STDOUT_FILENO)
				: open(s->cfg.access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (logfd < 0) {
			log_msg("--access-log %s: %s", s->cfg.access_log, strerror(errno));
			return 1;
		}
		log_access_fd(logfd);
	}
	lfds = bind_all(s, &naddr);
	if (!lfds)
		return 1;
	if (naddr == 0) {
		log_msg("nothing to listen on");
		return 1;
	}
	if (s->cfg.metrics && (metrics_fd = bind_metrics(s->cfg.metrics)) < 0)
		return 1;
	if (s->cfg.user && s->cfg.ncerts && geteuid() == 0) {
		char err[300];

		s->keyd = keyd_start(s->cfg.cert, s->cfg.nkeys ? s->cfg.key : NULL, s->cfg.ncerts,
				     keyd_reread_config, s, err, sizeof(err));
		if (s->keyd < 0) {
			log_msg("--user: the key helper for reloads: %s", err);
			return 1;
		}
	}
	if (s->cfg.user && drop_privileges(s->cfg.user) < 0)
		return 1;
	if (!s->cfg.user && geteuid() == 0)
		log_msg("warning: serving as root: give --user (e.g. www-data) so that a flaw in "
			"request handling cannot act as root");
	if (faccessat(s->rootfd, ".", R_OK | X_OK, 0) < 0) {
		log_msg("--root %s: cannot read it%s%s (%s)", s->cfg.root, s->cfg.user ? " as " : "",
			s->cfg.user ? s->cfg.user : "", strerror(errno));
		return 1;
	}
	if (!s->cfg.foreground) {
		pid_t pid = fork();

		if (pid < 0) {
			log_msg("fork: %s", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			printf("ktlsd: running in the background as pid %d (--foreground keeps it attached)\n",
			       (int)pid);
			fflush(stdout);
			_exit(0); /* the child owns everything now; no exit-time cleanup here */
		}
		setsid();
		/* detach from the terminal; stderr stays the daemon log */
		{
			int dn = open("/dev/null", O_RDWR | O_CLOEXEC);

			if (dn >= 0) {
				dup2(dn, STDIN_FILENO);
				dup2(dn, STDOUT_FILENO);
				close(dn);
			}
		}
	}

	/* Workers inherit a mask with our signals blocked; we sigwait them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* threads start after the fork: a child inherits none */
	if (metrics_fd >= 0 && metrics_start(metrics_fd) < 0)
		return 1;
	s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers));
	if (!s->workers)
		return 1;
	for (int k = 0; k < s->nworkers; k++) {
		s->workers[k] = worker_new(s, k, lfds + k * naddr, naddr);
		if (!s->workers[k] || worker_start(s->workers[k]) < 0) {
			s->nworkers = k; /* stop the ones running */
			atomic_store(&s->stopping, 1);
			goto stop;
		}
	}
	log_msg("serving %s with %d worker%s, max %d connections (%d per client)%s", s->cfg.root,
		s->nworkers, s->nworkers == 1 ? "" : "s", s->cfg.max_conns,
		s->cfg.max_conns_per_client ? s->cfg.max_conns_per_client : s->cfg.max_conns,
		s->cfg.no_offload ? ", kTLS offload off (--no-offload)" : "");
	if (s->cfg.ncerts > 1)
		log_msg("certificates: %s by default, %d more chosen by the client's server name (SNI)",
			cert, s->cfg.ncerts - 1);
	rc = 0;
	{
		char status[160];

		snprintf(status, sizeof(status), "serving %.100s with %d worker%s", s->cfg.root,
			 s->nworkers, s->nworkers == 1 ? "" : "s");
		notify_ready(status);
	}
	sig = main_loop(s, &set);
	notify_stopping();
	log_msg("%s: stopping (grace period %d ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
		s->cfg.grace_ms);
	atomic_store(&s->stopping, 1);
stop:
	for (int k = 0; k < s->nworkers; k++)
		worker_wake(s->workers[k]);
	for (int k = 0; k < s->nworkers; k++)
		worker_join(s->workers[k]);
	metrics_stop();
	free(s->workers);
	free(lfds);
	ktls_ctx_free(s->ctx);
	ticket_ring_wipe(&s->tickets);
	peer_limit_free(s->peers);
	if (s->keyd >= 0)
		close(s->keyd); /* the helper sees the end and exits */
	close(s->rootfd);
	if (logfd >= 0)
		close(logfd);
	if (rc == 0)
		log_msg("stopped");
	cfg_free(&s->cfg);
	return rc;
}
