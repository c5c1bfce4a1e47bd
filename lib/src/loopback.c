/*
 * loopback.c - a throwaway connected TCP pair on 127.0.0.1, for asking the
 * kernel what it does with a real socket (probe.c, the rekey probe,
 * netlink_diag.c's visibility check).
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

int loopback_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l, c = -1, s = -1, err;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) < 0)
		goto fail;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		goto fail;
	close(l);
	fds[0] = c;
	fds[1] = s;
	return 0;
fail:
	err = errno ? errno : EIO;
	if (c >= 0)
		close(c);
	close(l);
	return err;
}

void loopback_close(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}
