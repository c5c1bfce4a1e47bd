/*
 * path.h - mapping a request target to a file beneath the served root.
 *
 * Decoding refuses what could escape or confuse (encoded NUL, "..",
 * backslashes are ordinary bytes on Linux); opening uses openat2 with
 * RESOLVE_BENEATH so that symlinks may move around inside the root but
 * never out of it.  Kernels without openat2 get an equivalent check on the
 * opened file's real path.
 */
#ifndef KTLSD_PATH_H
#define KTLSD_PATH_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * path_decode - percent-decode a target path into out (cap bytes) and
 * normalise it to a relative path ("." for the root).  Returns 0, -400 for
 * bad escapes or an embedded NUL, -403 for a ".." segment, -414 if it does
 * not fit.
 */
int path_decode(const char *target, size_t len, char *out, size_t cap);

/*
 * path_hidden - 1 when a segment of rel (from path_decode) starts with '.'
 * (.git/, .env, .htpasswd: what a served tree carries but never means to
 * publish), except /.well-known/ at the top (RFC 8615), which is public by
 * definition.  0 otherwise.
 */
int path_hidden(const char *rel);

/*
 * path_open - open rel (from path_decode) beneath rootfd for reading,
 * following index.html for directories.  Returns 200 with *fd and *st
 * set (a regular file), or 403 / 404.  The file name actually opened (for
 * the Content-Type) is written to name (cap bytes).
 */
int path_open(int rootfd, const char *rel, int *fd, struct stat *st, char *name, size_t cap);

/*
 * path_beneath - does fd's real path lie at or beneath rootfd's?  The
 * check path_open falls back on without openat2; exposed so that tests
 * exercise it on kernels that do have openat2.  1 or 0.
 */
int path_beneath(int rootfd, int fd);

#endif
