/*
 * keyd.h - the certificate and key for a SIGHUP reload after --user.
 *
 * Keys are rightly readable by root only, but ktlsd serves as --user.
 * So before dropping privileges it forks a tiny helper that stays root
 * and does one thing: on request, read one certificate and key pair of
 * those named at start (the request names a pair by its number, never a
 * path) and send their bytes back over a socketpair.
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
 * keyd_start - fork the helper for n pairs: cert[i] and key[i] (key NULL,
 * or key[i] NULL: the key is in cert[i]).  Returns ktlsd's end of the
 * socketpair, or -1 with err set.
 */
int keyd_start(char *const cert[], char *const key[], int n, char *err, size_t errlen);

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
