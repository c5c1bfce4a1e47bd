/*
 * keyd.h - the certificate and key for a SIGHUP reload after --user.
 *
 * Keys are rightly readable by root only, but ktlsd serves as --user.
 * So before dropping privileges it forks a tiny helper that stays root
 * and does one thing: on request, read the two files named at start (the
 * request cannot name others) and send their bytes back over a socketpair.
 * As nginx's master process, minus everything else a master does.  The
 * helper ignores signals and exits when ktlsd's end of the pair closes.
 */
#ifndef KTLSD_KEYD_H
#define KTLSD_KEYD_H

#include <stddef.h>

/* Largest certificate chain or key file the helper sends. */
#define KEYD_MAX_FILE (64 * 1024)

/*
 * keyd_start - fork the helper for cert and key (key NULL: in cert).
 * Returns ktlsd's end of the pair, or -1 with err set.
 */
int keyd_start(const char *cert, const char *key, char *err, size_t errlen);

struct keyd_pair {
	char *cert, *key;
	size_t certlen, keylen;
};

/*
 * keyd_fetch - both files as they are now.  0, or -1 with err set (the
 * helper's reason, e.g. the file's open error).  Free with keyd_clear.
 */
int keyd_fetch(int fd, struct keyd_pair *out, char *err, size_t errlen);

/* Zero and free what keyd_fetch returned. */
void keyd_clear(struct keyd_pair *p);

#endif
