/*
 * offload_peer.h - a plain OpenSSL peer in a thread (not libktls: a real,
 * independent TLS stack on the other end of a loopback TCP pair), and our
 * side of the connection made through the public API.
 *
 * The peer echoes what it reads until close_notify, then answers with its
 * own close_notify.  Options: data sent right behind its Finished, a
 * KeyUpdate (update_requested) once it has echoed some bytes.
 */
#ifndef OFFLOAD_PEER_H
#define OFFLOAD_PEER_H

#include <pthread.h>
#include <stddef.h>

#include "ktls.h"

struct suite {
	int version;        /* KTLS_TLS1_2 / KTLS_TLS1_3 */
	const char *name;   /* TLS 1.3 ciphersuite or TLS 1.2 cipher (ECDSA: the test cert is EC) */
	int tls_cipher;     /* TLS_CIPHER_* the kernel should get */
};

/* The six suites the offload tests cover: TLS 1.3 then 1.2, AES-128, AES-256, ChaCha. */
extern const struct suite suites[6];

/* The OpenSSL peer: set the inputs, peer_start, and peer_join for the outputs. */
struct peer {
	/* in */
	int fd;
	int server;           /* the peer is the TLS server */
	struct suite s;
	int tickets;          /* peer server: TLS 1.3 tickets */
	const char *first;    /* peer writes this right after its handshake */
	size_t keyupdate_at;  /* peer sends KeyUpdate(update_requested) after echoing this much */
	int mfl;              /* peer client asks for max_fragment_length 1024 */
	int handshake_only;   /* peer returns after its handshake, reading nothing more */
	/* out */
	int hs_ok;
	size_t echoed;
	int got_close_notify;
	int keyupdates_sent;
	char err[256];
	pthread_t th;
};

/* Our side: a context narrowed to one suite, a connection, the handshake. */
struct ours {
	ktls_ctx *ctx;
	ktls_conn *c;
	char err[256];        /* libktls keeps its messages to this size too */
};

/* One run: our side against the peer (the run_* calls assert with Criterion). */
struct run {
	struct peer peer;
	struct ours us;
	int fds[2];
	int tickets;          /* ours, as a TLS 1.3 server (default 2) */
	size_t echo_bytes;    /* run_finish's echo (default 256 KiB) */
	struct ktls_info info;
};

/* Run the peer on p->fd in its own thread (aborts if it cannot start). */
void peer_start(struct peer *p);

/* Wait for the peer to finish: after close_notify, or on its first error. */
void peer_join(struct peer *p);

/*
 * Our side on fd through the public API: a context of role narrowed to s
 * (tickets: as a TLS 1.3 server), a connection, before_handshake(conn)
 * when set, the handshake.  0, or -1 with o->err.
 */
int ours_open(struct ours *o, int role, const struct suite *s, int tickets, int fd,
	      void (*before_handshake)(ktls_conn *));

/* Free what ours_open made; the fd stays open. */
void ours_close(struct ours *o);

/*
 * Send total bytes in chunks through our connection and read each echo
 * back.  0, or -1 with a reason in why.
 */
int echo_check(ktls_conn *c, size_t total, size_t chunk, char *why, size_t wlen);

/* The same, reading with rd (e.g. through io_uring) instead of ktls_conn_read. */
int echo_check_read(ktls_conn *c, size_t total, size_t chunk,
		    ssize_t (*rd)(ktls_conn *, void *, size_t), char *why, size_t wlen);

/*
 * Prepare our side (role) against an OpenSSL peer on a fresh TCP pair,
 * with the defaults; adjust r->peer, r->tickets, r->echo_bytes before
 * run_go.
 */
void run_start(struct run *r, int role, const struct suite *s, void (*hook)(ktls_conn *));

/* Start the peer, then our handshake (hook first) and offload; r->info. */
void run_go(struct run *r, int role, void (*hook)(ktls_conn *));

/* Data both ways (echo_bytes, then 1 byte), close_notify both ways. */
void run_finish(struct run *r);

/*
 * Tear down a run that ended early (a failure under test): both ends of
 * the pair shut, the peer joined, our side freed, the fds closed.
 */
void run_abort(struct run *r);

#endif /* OFFLOAD_PEER_H */
