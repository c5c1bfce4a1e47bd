/*
 * serve.h - what ktlsd serve's main thread and its workers share.
 *
 * The main thread binds every listener (SO_REUSEPORT: one socket per
 * address per worker), loads keys, drops privileges, then runs the
 * workers and waits for signals.  Each worker owns one io_uring and the
 * connections it accepted (worker.c; one connection's life in http_conn.c).
 */
#ifndef KTLSD_SERVE_H
#define KTLSD_SERVE_H

#include <pthread.h>
#include <stdatomic.h>

#include "ktls.h"

#include "config.h"
#include "peer_limit.h"
#include "ticket_keys.h"

struct worker;

struct srv {
	struct cfg cfg;
	int rootfd;
	pthread_mutex_t ctx_mu;  /* guards ctx: SIGHUP swaps it */
	ktls_ctx *ctx;
	int keyd;                /* the key helper's socket (keyd.h); -1: none */
	int keyd_stale;          /* its pairs are not cfg's: no reload until a SIGHUP agrees */
	char selfsigned_cert[4096], selfsigned_key[4096]; /* the pair when no --cert is given */
	atomic_int nconns;       /* all workers together, for --max-conns */
	atomic_int nlinger;      /* lingering closes, all workers: at most max_conns */
	struct peer_limit *peers; /* --max-conns-per-client; NULL: no cap */
	atomic_int stopping;     /* SIGTERM/SIGINT seen */
	struct worker **workers;
	int nworkers;
	struct ticket_ring tickets; /* given to every ctx (ticket_keys.h) */
	int argc;                   /* the command line, parsed again on SIGHUP */
	char **argv;
	uint64_t next_rotate_ms;    /* CLOCK_MONOTONIC; 0: no rotation */
};

/* worker.c */
struct worker *worker_new(struct srv *s, int id, const int *lfds, int nl);
int worker_start(struct worker *w);
void worker_wake(struct worker *w);   /* re-read srv->stopping */
void worker_join(struct worker *w);
uint64_t worker_ticks(const struct worker *w); /* rises every 250 ms while its loop runs */

/* serve.c */
ktls_conn *srv_accept_conn(struct srv *s, int fd);

/* selfsign.c: a self-signed ECDSA P-256 localhost cert, made once. */
int selfsign_ensure(char *cert, char *key, size_t cap);

/* serve.c: the whole `ktlsd serve`; demo.c: `ktlsd demo` */
int serve_main(int argc, char **argv);
int demo_main(int argc, char **argv);

#endif
