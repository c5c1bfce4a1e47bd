/* path.c - request targets to files beneath the root (see path.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "path.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int path_decode(const char *target, size_t len, char *out, size_t cap)
{
	char dec[4097];
	size_t n = 0, o = 0;

	if (len >= sizeof(dec))
		return -414;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)target[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= len)
				return -400;
			h = hexval((unsigned char)target[i + 1]);
			l = hexval((unsigned char)target[i + 2]);
			if (h < 0 || l < 0)
				return -400;
			c = h * 16 + l;
			i += 2;
		}
		if (c == '\0')
			return -400;
		dec[n++] = (char)c;
	}
	dec[n] = '\0';

	/* Rebuild from segments: drop empty and "." ones, refuse "..". */
	for (char *save = NULL, *seg = strtok_r(dec, "/", &save); seg;
	     seg = strtok_r(NULL, "/", &save)) {
		size_t sl = strlen(seg);

		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0)
			return -403;
		if (o + sl + 2 > cap)
			return -414;
		if (o)
			out[o++] = '/';
		memcpy(out + o, seg, sl);
		o += sl;
	}
	if (o == 0) {
		if (cap < 2)
			return -414;
		out[o++] = '.';
	}
	out[o] = '\0';
	return 0;
}

int path_hidden(const char *rel)
{
	static const char wk[] = ".well-known";
	const char *seg = rel;

	if (strncmp(rel, wk, sizeof(wk) - 1) == 0 && (rel[sizeof(wk) - 1] == '/' || !rel[sizeof(wk) - 1]))
		seg = rel[sizeof(wk) - 1] ? rel + sizeof(wk) : "";
	for (; *seg; seg++) {
		if (*seg == '.' && strcmp(seg, ".") != 0)
			return 1;
		seg = strchr(seg, '/');
		if (!seg)
			break;
	}
	return 0;
}

static int status_of(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ENAMETOOLONG:
		return 404;
	default: /* EXDEV (escape), ELOOP, EACCES, EPERM, ... */
		return 403;
	}
}

int path_beneath(int rootfd, int fd)
{
	char lr[64], lf[64], root[PATH_MAX], file[PATH_MAX];
	ssize_t rn, fn;

	snprintf(lr, sizeof(lr), "/proc/self/fd/%d", rootfd);
	snprintf(lf, sizeof(lf), "/proc/self/fd/%d", fd);
	rn = readlink(lr, root, sizeof(root) - 1);
	fn = readlink(lf, file, sizeof(file) - 1);
	if (rn <= 0 || fn <= 0)
		return 0;
	root[rn] = file[fn] = '\0';
	if (strcmp(root, "/") == 0)
		return 1;
	return strncmp(root, file, rn) == 0 && (file[rn] == '\0' || file[rn] == '/');
}

static int open_beneath(int rootfd, const char *rel)
{
	static int no_openat2;
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	if (!no_openat2) {
		fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		no_openat2 = 1;
	}
	/* Pre-5.6 kernels: open, then check where it landed. */
	fd = openat(rootfd, rel, (int)how.flags);
	if (fd >= 0 && !path_beneath(rootfd, fd)) {
		close(fd);
		errno = EXDEV;
		return -1;
	}
	return fd;
}

int path_open(int rootfd, const char *rel, int *fdp, struct stat *st, char *name, size_t cap)
{
	int fd = open_beneath(rootfd, rel);

	if (fd < 0)
		return status_of(errno);
	if (fstat(fd, st) < 0) {
		close(fd);
		return 403;
	}
	snprintf(name, cap, "%s", rel);
	if (S_ISDIR(st->st_mode)) {
		char idx[4200];
		int ifd;

		close(fd);
		if ((size_t)snprintf(idx, sizeof(idx), "%s/index.html", rel) >= sizeof(idx))
			return 404;
		ifd = open_beneath(rootfd, idx);
		if (ifd < 0)
			return errno == ENOENT ? 403 : status_of(errno); /* no listings */
		fd = ifd;
		if (fstat(fd, st) < 0) {
			close(fd);
			return 403;
		}
		snprintf(name, cap, "%s", idx);
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return 403;
	}
	*fdp = fd;
	return 200;
}
