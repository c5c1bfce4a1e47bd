/* config.c - command line and config file for ktlsd serve (see config.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ktls.h"

#include "config.h"

enum { ARG_NONE, ARG_STR };

static const struct opt {
	const char *name;
	int arg;
} opts[] = {
	{ "root", ARG_STR }, { "listen", ARG_STR }, { "cert", ARG_STR }, { "key", ARG_STR },
	{ "ca", ARG_STR }, { "verify", ARG_STR }, { "ciphers", ARG_STR },
	{ "ciphersuites", ARG_STR }, { "workers", ARG_STR }, { "max-conns", ARG_STR },
	{ "user", ARG_STR }, { "access-log", ARG_STR }, { "config", ARG_STR },
	{ "foreground", ARG_NONE }, { "no-offload", ARG_NONE },
	{ "handshake-timeout", ARG_STR }, { "idle-timeout", ARG_STR },
	{ "request-timeout", ARG_STR }, { "grace-period", ARG_STR },
	{ "tickets", ARG_STR }, { "metrics", ARG_STR },
	{ "linger-time", ARG_STR }, { "linger-bytes", ARG_STR },
	{ "max-conns-per-client", ARG_STR }, { "first-byte-timeout", ARG_STR },
	{ "serve-dotfiles", ARG_NONE }, { "keylog", ARG_NONE }, { "alpn", ARG_STR },
	{ "ticket-key", ARG_STR }, { "ticket-key-rotate", ARG_STR }, { "ocsp-staple", ARG_STR },
	{ "zerocopy-sendfile", ARG_NONE },
};

void cfg_usage(FILE *f)
{
	fputs("usage: ktlsd serve --root DIR [--listen ADDR:PORT]... [--cert PEM --key PEM]...\n"
	      "         [--ca PEM --verify none|optional|required] [--ciphers LIST]\n"
	      "         [--ciphersuites LIST] [--workers N] [--max-conns N] [--user NAME]\n"
	      "         [--access-log FILE|-] [--config FILE] [--foreground] [--no-offload]\n"
	      "         [--handshake-timeout S] [--idle-timeout S] [--request-timeout S]\n"
	      "         [--grace-period S] [--tickets N] [--metrics ADDR:PORT]\n"
	      "         [--linger-time S] [--linger-bytes N] [--max-conns-per-client N]\n"
	      "         [--first-byte-timeout S] [--serve-dotfiles] [--keylog] [--alpn LIST]\n"
	      "         [--ticket-key FILE] [--ticket-key-rotate S] [--ocsp-staple FILE]\n"
	      "         [--zerocopy-sendfile]\n"
	      "Defaults: --listen 127.0.0.1:8443 --listen [::1]:8443, one worker per CPU,\n"
	      "--max-conns 10000, timeouts 10 s handshake, 60 s idle, 10 s per request,\n"
	      "10 s grace on SIGTERM.  One client (an IPv4 address or an IPv6 /64) holds\n"
	      "at most --max-conns-per-client connections, a quarter of --max-conns unless\n"
	      "given (0: no cap), and must start its handshake within --first-byte-timeout\n"
	      "5 s of connecting.  Names starting with '.' (.git, .env) are 404 unless\n"
	      "--serve-dotfiles; /.well-known/ is always served.  SSLKEYLOGFILE is refused\n"
	      "unless --keylog asks for key logging (debugging only: it decrypts everything).\n"
	      "--alpn http/1.1: the ALPN protocols accepted, in order of preference\n"
	      "(comma-separated; \"none\": no ALPN); a client that offers ALPN but none of\n"
	      "them gets the no_application_protocol alert, one that offers none is served.\n"
	      "--cert and --key may repeat: the first pair is the default, the others are\n"
	      "served to clients whose server name (SNI) they carry (an ECDSA and an RSA pair\n"
	      "for one name go together; the client's signature algorithms pick).\n"
	      "--ocsp-staple FILE: a DER OCSP response for --cert, sent to clients that ask\n"
	      "(re-read on SIGHUP); a stale or mismatching one is not sent and the log says why.\n"
	      "With several --cert, the i-th --ocsp-staple is the i-th's (\"none\": it has none).\n"
	      "--tickets 2: TLS 1.3 session tickets per handshake, and one TLS 1.2 ticket\n"
	      "when asked; 0 sends none, so neither version resumes (TLS 1.2 session IDs\n"
	      "never do).  Tickets are sealed with keys that survive SIGHUP: a new one\n"
	      "every --ticket-key-rotate 3600 s (0: never), the three before it still\n"
	      "accepted; or the 1 to 4 80-byte keys of --ticket-key FILE (the first seals;\n"
	      "re-read on SIGHUP; the same file on several hosts lets clients resume on\n"
	      "any of them).  After its last response or alert ktlsd sends\n"
	      "FIN and discards what the client still sends, for up to --linger-time 5 s\n"
	      "and --linger-bytes 1048576 (0: close at once), so that the client reads it\n"
	      "instead of a reset.  --metrics serves Prometheus text on http://ADDR:PORT/metrics\n"
	      "(plain HTTP, no auth: give a loopback address such as 127.0.0.1:9443).\n"
	      "--zerocopy-sendfile: with TX on a NIC, send file pages without copying them\n"
	      "(TLS_TX_ZEROCOPY_RO); a file changed while it is being sent may then reach\n"
	      "the client corrupted, so only for files that are replaced, never rewritten.\n"
	      "Without --cert a self-signed ECDSA P-256 certificate for localhost is made\n"
	      "once and reused.\n",
	      f);
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -1;
}

static int parse_int(const char *name, const char *v, int min, int *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > 1000000000) {
		fprintf(stderr, "ktlsd: --%s: '%s' is not a whole number >= %d\n", name, v, min);
		return -1;
	}
	*out = (int)n;
	return 0;
}

/*
 * --alpn: "none", or protocols ktlsd can speak.  Offering h2 would have
 * every h2 client pick it and then fail on HTTP/1.1 bytes.
 */
static int parse_alpn(const char *v, char **out)
{
	const char *p = v;

	if (strcmp(v, "none") != 0) {
		for (;;) {
			size_t l = strcspn(p, ",");

			if (l != 8 || (strncmp(p, "http/1.1", 8) && strncmp(p, "http/1.0", 8))) {
				fprintf(stderr, "ktlsd: --alpn: '%.*s' in '%s': ktlsd speaks HTTP/1.1 and "
					"HTTP/1.0 only (http/1.1, http/1.0, or none)\n", (int)l, p, v);
				return -1;
			}
			if (!p[l])
				break;
			p += l + 1;
		}
	}
	return set_str(out, v);
}

static int parse_secs(const char *name, const char *v, int *ms)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || d <= 0 || d > 86400) {
		fprintf(stderr, "ktlsd: --%s: '%s' is not a number of seconds in (0, 86400]\n", name, v);
		return -1;
	}
	*ms = (int)(d * 1000 + 0.5);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

static int parse_bool(const char *name, const char *v, int *out)
{
	if (!v || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = 0;
	else {
		fprintf(stderr, "ktlsd: %s: '%s' is not yes or no\n", name, v);
		return -1;
	}
	return 0;
}

enum { SEEN_LISTEN = 1, SEEN_CERT = 2, SEEN_KEY = 4, SEEN_OCSP = 8 };

/* A list option: the first one on the command line replaces the file's. */
static int list_add(struct cfg *c, unsigned seen, int from_cli, char **v, int *n, int max,
		    const char *what, const char *val)
{
	if (from_cli && !(c->cli_seen & seen)) {
		for (int i = 0; i < *n; i++) {
			free(v[i]);
			v[i] = NULL;
		}
		*n = 0;
		c->cli_seen |= seen;
	}
	if (*n == max) {
		fprintf(stderr, "ktlsd: at most %d %s\n", max, what);
		return -1;
	}
	v[*n] = strdup(val);
	if (!v[*n])
		return -1;
	(*n)++;
	return 0;
}

static int apply(struct cfg *c, const char *k, const char *v, int from_cli)
{
	if (!strcmp(k, "root"))
		return set_str(&c->root, v);
	if (!strcmp(k, "listen"))
		return list_add(c, SEEN_LISTEN, from_cli, c->listen, &c->nlisten, CFG_MAX_LISTEN,
				"listen addresses", v);
	if (!strcmp(k, "cert"))
		return list_add(c, SEEN_CERT, from_cli, c->cert, &c->ncerts, CFG_MAX_CERTS,
				"certificates", v);
	if (!strcmp(k, "key"))
		return list_add(c, SEEN_KEY, from_cli, c->key, &c->nkeys, CFG_MAX_CERTS, "keys", v);
	if (!strcmp(k, "ca"))
		return set_str(&c->ca, v);
	if (!strcmp(k, "verify")) {
		if (!strcmp(v, "none"))
			c->verify = KTLS_VERIFY_NONE;
		else if (!strcmp(v, "optional"))
			c->verify = KTLS_VERIFY_OPTIONAL;
		else if (!strcmp(v, "required"))
			c->verify = KTLS_VERIFY_REQUIRED;
		else {
			fprintf(stderr, "ktlsd: --verify: '%s' is not none, optional or required\n", v);
			return -1;
		}
		return 0;
	}
	if (!strcmp(k, "ciphers"))
		return set_str(&c->ciphers, v);
	if (!strcmp(k, "ciphersuites"))
		return set_str(&c->ciphersuites, v);
	if (!strcmp(k, "workers"))
		return parse_int(k, v, 1, &c->workers);
	if (!strcmp(k, "max-conns"))
		return parse_int(k, v, 1, &c->max_conns);
	if (!strcmp(k, "user"))
		return set_str(&c->user, v);
	if (!strcmp(k, "access-log"))
		return set_str(&c->access_log, v);
	if (!strcmp(k, "config"))
		return set_str(&c->config, v);
	if (!strcmp(k, "foreground"))
		return parse_bool(k, v, &c->foreground);
	if (!strcmp(k, "no-offload"))
		return parse_bool(k, v, &c->no_offload);
	if (!strcmp(k, "handshake-timeout"))
		return parse_secs(k, v, &c->handshake_timeout_ms);
	if (!strcmp(k, "idle-timeout"))
		return parse_secs(k, v, &c->idle_timeout_ms);
	if (!strcmp(k, "request-timeout"))
		return parse_secs(k, v, &c->request_timeout_ms);
	if (!strcmp(k, "tickets"))
		return parse_int(k, v, 0, &c->tickets);
	if (!strcmp(k, "metrics"))
		return set_str(&c->metrics, v);
	if (!strcmp(k, "grace-period"))
		return parse_secs(k, v, &c->grace_ms);
	if (!strcmp(k, "linger-time"))
		return parse_secs(k, v, &c->linger_ms);
	if (!strcmp(k, "linger-bytes"))
		return parse_int(k, v, 0, &c->linger_bytes);
	if (!strcmp(k, "max-conns-per-client"))
		return parse_int(k, v, 0, &c->max_conns_per_client);
	if (!strcmp(k, "first-byte-timeout"))
		return parse_secs(k, v, &c->first_byte_timeout_ms);
	if (!strcmp(k, "serve-dotfiles"))
		return parse_bool(k, v, &c->serve_dotfiles);
	if (!strcmp(k, "keylog"))
		return parse_bool(k, v, &c->keylog);
	if (!strcmp(k, "zerocopy-sendfile"))
		return parse_bool(k, v, &c->zerocopy_sendfile);
	if (!strcmp(k, "alpn"))
		return parse_alpn(v, &c->alpn);
	if (!strcmp(k, "ticket-key"))
		return set_str(&c->ticket_key, v);
	if (!strcmp(k, "ocsp-staple"))
		return list_add(c, SEEN_OCSP, from_cli, c->ocsp_staple, &c->nocsp, CFG_MAX_CERTS,
				"OCSP staples", v);
	if (!strcmp(k, "ticket-key-rotate"))
		return !strcmp(v, "0") ? (c->ticket_rotate_ms = 0, 0)
				       : parse_secs(k, v, &c->ticket_rotate_ms);
	fprintf(stderr, "ktlsd: unknown setting '%s'\n", k);
	return -1;
}

static const struct opt *find_opt(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
			return &opts[i];
	return NULL;
}

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_file(struct cfg *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0, rc = 0;

	if (!f) {
		fprintf(stderr, "ktlsd: --config %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#'), *eq, *k, *v;
		const struct opt *o;

		lineno++;
		if (hash)
			*hash = '\0';
		k = strip(line);
		if (!*k)
			continue;
		eq = strchr(k, '=');
		if (eq) {
			*eq = '\0';
			v = strip(eq + 1);
			k = strip(k);
		} else {
			v = NULL;
		}
		o = find_opt(k, strlen(k));
		if (!o || !strcmp(k, "config") || (o->arg == ARG_STR && (!v || !*v))) {
			fprintf(stderr, "ktlsd: %s:%d: %s\n", path, lineno,
				!o ? "unknown setting" : !strcmp(k, "config") ? "config cannot nest"
									   : "needs '= value'");
			rc = -1;
			break;
		}
		if (apply(c, k, v ? v : "yes", 0) < 0) {
			fprintf(stderr, "ktlsd: (in %s:%d)\n", path, lineno);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* Split "--name=value" / "--name value"; returns the option or NULL. */
static const struct opt *cli_opt(int argc, char **argv, int *i, const char **val)
{
	const char *a = argv[*i] + 2, *eq = strchr(a, '=');
	const struct opt *o = find_opt(a, eq ? (size_t)(eq - a) : strlen(a));

	*val = NULL;
	if (!o)
		return NULL;
	if (eq)
		*val = eq + 1;
	else if (o->arg == ARG_STR && *i + 1 < argc)
		*val = argv[++*i];
	return o;
}

int cfg_parse(struct cfg *c, int argc, char **argv)
{
	const struct opt *o;
	const char *v;
	long n;

	memset(c, 0, sizeof(*c));
	c->verify = KTLS_VERIFY_NONE;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	c->workers = n > 0 ? (int)n : 1;
	c->max_conns = 10000;
	c->handshake_timeout_ms = 10000;
	c->idle_timeout_ms = 60000;
	c->request_timeout_ms = 10000;
	c->grace_ms = 10000;
	c->tickets = 2;
	c->ticket_rotate_ms = 3600 * 1000;
	if (set_str(&c->alpn, "http/1.1") != 0)
		return -1;
	c->linger_ms = 5000;
	c->linger_bytes = 1 << 20;
	c->max_conns_per_client = -1; /* a quarter of max_conns, once that is known */
	c->first_byte_timeout_ms = 5000;

	/* pass 1: syntax, --help and --config */
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			cfg_usage(stdout);
			return 1;
		}
		if (strncmp(argv[i], "--", 2) != 0 || !(o = cli_opt(argc, argv, &i, &v))) {
			fprintf(stderr, "ktlsd serve: unknown argument '%s' (see --help)\n", argv[i]);
			return -1;
		}
		if (o->arg == ARG_STR && !v) {
			fprintf(stderr, "ktlsd serve: --%s needs a value\n", o->name);
			return -1;
		}
		if (o->arg == ARG_NONE && v) {
			fprintf(stderr, "ktlsd serve: --%s takes no value\n", o->name);
			return -1;
		}
		if (!strcmp(o->name, "config") && set_str(&c->config, v) < 0)
			return -1;
	}
	if (c->config && load_file(c, c->config) < 0)
		return -1;
	/* pass 2: the command line over the file */
	for (int i = 0; i < argc; i++) {
		o = cli_opt(argc, argv, &i, &v);
		if (strcmp(o->name, "config") && apply(c, o->name, v ? v : "yes", 1) < 0)
			return -1;
	}
	if (!c->root) {
		fprintf(stderr, "ktlsd serve: --root DIR is required\n");
		return -1;
	}
	if (c->nocsp > (c->ncerts ? c->ncerts : 1)) {
		fprintf(stderr, "ktlsd serve: %d --ocsp-staple for %d --cert: the i-th staple is for "
			"the i-th --cert (\"none\" for one without)\n", c->nocsp, c->ncerts);
		return -1;
	}
	if (c->nkeys && c->nkeys != c->ncerts) {
		fprintf(stderr, "ktlsd serve: %d --key for %d --cert: give a --key for every --cert "
			"(in the same order), or none (each key in its certificate file)\n",
			c->nkeys, c->ncerts);
		return -1;
	}
	if (c->verify != KTLS_VERIFY_NONE && !c->ca) {
		fprintf(stderr, "ktlsd serve: --verify %s needs --ca\n",
			c->verify == KTLS_VERIFY_OPTIONAL ? "optional" : "required");
		return -1;
	}
	if (c->nlisten == 0)
		c->listen_default = 1;
	if (c->max_conns_per_client < 0)
		c->max_conns_per_client = c->max_conns >= 4 ? c->max_conns / 4 : 1;
	return 0;
}

static int str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

#define SWAP(a, b)                        \
	do {                              \
		__typeof__(a) swap_tmp_ = a; \
		a = b;                    \
		b = swap_tmp_;            \
	} while (0)

int cfg_pairs_differ(const struct cfg *a, const struct cfg *b)
{
	if (a->ncerts != b->ncerts || a->nkeys != b->nkeys)
		return 1;
	for (int i = 0; i < a->ncerts; i++)
		if (strcmp(a->cert[i], b->cert[i]) != 0)
			return 1;
	for (int i = 0; i < a->nkeys; i++)
		if (strcmp(a->key[i], b->key[i]) != 0)
			return 1;
	return 0;
}

void cfg_take_reloadable(struct cfg *c, struct cfg *fresh, int take_pairs, char *restart, size_t len)
{
	int listen_differs = c->nlisten != fresh->nlisten;
	int pairs_differ = cfg_pairs_differ(c, fresh);

	for (int i = 0; !listen_differs && i < c->nlisten; i++)
		listen_differs = strcmp(c->listen[i], fresh->listen[i]) != 0;
	if (pairs_differ && take_pairs) {
		for (int i = 0; i < CFG_MAX_CERTS; i++) {
			SWAP(c->cert[i], fresh->cert[i]);
			SWAP(c->key[i], fresh->key[i]);
		}
		SWAP(c->ncerts, fresh->ncerts);
		SWAP(c->nkeys, fresh->nkeys);
		pairs_differ = 0;
	}
	snprintf(restart, len, "%s%s%s%s%s", str_differs(c->root, fresh->root) ? "--root," : "",
		 listen_differs ? "--listen," : "", pairs_differ ? "--cert/--key," : "",
		 c->workers != fresh->workers ? "--workers," : "",
		 str_differs(c->user, fresh->user) ? "--user," : "");
	if (restart[0])
		restart[strlen(restart) - 1] = '\0';
	SWAP(c->ca, fresh->ca);
	SWAP(c->verify, fresh->verify);
	SWAP(c->ciphers, fresh->ciphers);
	SWAP(c->ciphersuites, fresh->ciphersuites);
	SWAP(c->alpn, fresh->alpn);
	SWAP(c->tickets, fresh->tickets);
	SWAP(c->ticket_key, fresh->ticket_key);
	for (int i = 0; i < CFG_MAX_CERTS; i++)
		SWAP(c->ocsp_staple[i], fresh->ocsp_staple[i]);
	SWAP(c->nocsp, fresh->nocsp);
	SWAP(c->zerocopy_sendfile, fresh->zerocopy_sendfile);
}

void cfg_free(struct cfg *c)
{
	for (int i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->root);
	for (int i = 0; i < c->ncerts; i++)
		free(c->cert[i]);
	for (int i = 0; i < c->nkeys; i++)
		free(c->key[i]);
	free(c->ca);
	free(c->ciphers);
	free(c->ciphersuites);
	free(c->alpn);
	free(c->ticket_key);
	for (int i = 0; i < c->nocsp; i++)
		free(c->ocsp_staple[i]);
	free(c->user);
	free(c->access_log);
	free(c->config);
	free(c->metrics);
	memset(c, 0, sizeof(*c));
}
