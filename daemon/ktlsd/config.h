/*
 * config.h - ktlsd serve settings: command line and key = value file.
 *
 * The file takes the long option names without "--" as keys, one per
 * line, '#' starts a comment; flags take yes/no.  Command-line flags win;
 * any --listen on the command line replaces the file's listen lines.
 */
#ifndef KTLSD_CONFIG_H
#define KTLSD_CONFIG_H

#include <stdio.h>

#define CFG_MAX_LISTEN 16
#define CFG_MAX_CERTS 16

struct cfg {
	char *root;
	char *listen[CFG_MAX_LISTEN];
	int nlisten;
	int listen_default;      /* no listen given: 127.0.0.1 and ::1 */
	/*
	 * Certificate chains: the first is the default, the others are chosen
	 * by the client's server name (SNI).  key[i] belongs to cert[i]; no
	 * --key at all means each key is in its certificate file.
	 */
	char *cert[CFG_MAX_CERTS], *key[CFG_MAX_CERTS];
	int ncerts, nkeys;
	char *ca;
	int verify;              /* KTLS_VERIFY_* */
	char *ciphers, *ciphersuites;
	char *alpn;              /* --alpn LIST, "none": no ALPN */
	char *ticket_key;        /* --ticket-key FILE; NULL: keys of our own */
	/* --ocsp-staple FILE (DER): the i-th for the i-th --cert; "none" skips one */
	char *ocsp_staple[CFG_MAX_CERTS];
	int nocsp;
	int ticket_rotate_ms;    /* a new own key this often; 0: never */
	int workers;
	int max_conns;
	int max_conns_per_client; /* per IPv4 address or IPv6 /64; 0: no cap */
	char *user;
	char *access_log;        /* NULL: none; "-": stdout */
	int foreground;
	int no_offload;
	int tickets;              /* TLS 1.3 session tickets per handshake */
	char *metrics;           /* --metrics ADDR:PORT; NULL: off */
	int handshake_timeout_ms, idle_timeout_ms, request_timeout_ms, grace_ms;
	int first_byte_timeout_ms; /* accept to the first byte of the ClientHello */
	int keylog;                /* honour SSLKEYLOGFILE (keylog.h) */
	int serve_dotfiles;        /* names starting with '.' (never .well-known: always) */
	int zerocopy_sendfile;     /* TLS_TX_ZEROCOPY_RO (device TX only) */
	int linger_ms;            /* lingering close: at most this long ... */
	int linger_bytes;         /* ... and this many bytes read; 0: no lingering */
	char *config;
	unsigned cli_seen;        /* parsing: listen/cert/key already came from the command line */
};

/* Parse argv (after "serve"); 0, 1 for --help (printed), -1 with a message printed. */
int cfg_parse(struct cfg *c, int argc, char **argv);

/* The --cert/--key pairs of a and b differ (in number, order or paths). */
int cfg_pairs_differ(const struct cfg *a, const struct cfg *b);

/*
 * SIGHUP: move into c the settings only the TLS context reads (--ca,
 * --verify, --ciphers, --ciphersuites, --alpn, --tickets, --ticket-key,
 * --ocsp-staple, and the --cert/--key pairs when take_pairs) from fresh,
 * a new parse of the same command line and file; fresh gets c's old ones,
 * for cfg_free.  The names of the settings that differ but are only read
 * at start (--root, --listen, --workers, --user; --cert/--key without
 * take_pairs) go into restart, comma-separated ("" when none).
 */
void cfg_take_reloadable(struct cfg *c, struct cfg *fresh, int take_pairs, char *restart, size_t len);
void cfg_free(struct cfg *c);
void cfg_usage(FILE *f);

#endif
