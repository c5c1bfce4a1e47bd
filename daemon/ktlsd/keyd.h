/*
 * keyd.h - the certificate and key for a SIGHUP reload after --user.
 *
 * Keys are rightly readable by root only, but ktlsd serves as --user.
 * So before dropping privileges it forks a tiny helper that stays root
 * and does one thing: on request, read one certificate and key pair of
 * those named at start (the request names a pair by its number, never a
 * path) and send their bytes back over a socketpair.  On a reload whose
 * configuration names other pairs, it re-reads that configuration itself.
 * As nginx's master process, minus everything else a master does.  The
 * helper ignores signals and exits when ktlsd's end of the pair closes.
 */
#ifndef KTLSD_KEYD_H
#define KTLSD_KEYD_H

#include <stddef.h>

/* Largest certificate chain or key file the helper sends. */
#define KEYD_MAX_FILE (64 * 1024)

/* The most pairs the helper serves. */
#define KEYD_MAX_PAIRS 16

/*
 * The helper's way to learn new pairs on a reload: re-read the
 * configuration ktlsd was started with (root's files, never a path sent
 * by the unprivileged side) and point *cert, *key (may be NULL) and *n at
 * its pairs.  0, or -1 when the configuration does not parse.
 */
typedef int keyd_reread_fn(void *arg, char *const **cert, char *const **key, int *n);

/*
 * keyd_start - fork the helper for n pairs: cert[i] and key[i] (key NULL,
 * or key[i] NULL: the key is in cert[i]); reread (may be NULL) replaces
 * them on keyd_reread.  Returns ktlsd's end of the socketpair, or -1 with
 * err set.
 */
int keyd_start(char *const cert[], char *const key[], int n, keyd_reread_fn *reread, void *arg,
	       char *err, size_t errlen);

/*
 * keyd_reread - have the helper re-read the configuration: the number of
 * pairs it serves from now on, or -1 with err set (it keeps the old ones).
 */
int keyd_reread(int fd, char *err, size_t errlen);

struct keyd_pair {
	char *cert, *key;
	size_t certlen, keylen;
};

/*
 * keyd_fetch - both files of pair i as they are now.  0, or -1 with err
 * set (the helper's reason, e.g. the file's open error).  Free with
 * keyd_clear.
 */
int keyd_fetch(int fd, int i, struct keyd_pair *out, char *err, size_t errlen);

/* Zero and free what keyd_fetch returned. */
void keyd_clear(struct keyd_pair *p);

#endif
