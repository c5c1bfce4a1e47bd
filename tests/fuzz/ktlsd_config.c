/*
 * ktlsd_config - ktlsd serve's `key = value` file (--config), through
 * cfg_parse as the daemon calls it: the input is the file, handed over
 * as a memfd named by /proc/self/fd/N, with --root on the command line so
 * that a good file reaches the final checks.  Every setting's value
 * parser (numbers, seconds, yes/no, verify modes, up to 16 listens) is
 * reached from the file.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../daemon/ktlsd/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	char root[] = "/srv", opt_root[] = "--root", opt_config[] = "--config";
	char *argv[] = { opt_config, path, opt_root, root, NULL };
	struct cfg c;
	int r;

	if (fd < 0) {
		fd = memfd_create("ktlsd-config", MFD_CLOEXEC);
		FUZZ_ASSERT(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	FUZZ_ASSERT(ftruncate(fd, 0) == 0);
	FUZZ_ASSERT(pwrite(fd, data, size, 0) == (ssize_t)size);
	r = cfg_parse(&c, 4, argv);
	FUZZ_ASSERT(r == 0 || r == -1);
	if (r == 0) {
		FUZZ_ASSERT(c.root && !strcmp(c.root, "/srv"));
		FUZZ_ASSERT(c.nlisten >= 0 && c.nlisten <= CFG_MAX_LISTEN);
		FUZZ_ASSERT(c.workers >= 1 && c.max_conns >= 1 && c.tickets >= 0);
		FUZZ_ASSERT(c.handshake_timeout_ms >= 1 && c.idle_timeout_ms >= 1 &&
			    c.request_timeout_ms >= 1 && c.grace_ms >= 1 && c.linger_ms >= 1);
	}
	cfg_free(&c);
	return 0;
}
