/*
 * demo.c - `ktlsd demo [--dir DIR] [serve options]`: what `make run` starts.
 * Fills DIR (default build/demo) on first use with a few small files and
 * one 256 MiB file of pseudo-random, non-sparse data, prints the URL, a
 * curl line and whether this kernel can offload, then serves DIR in the
 * foreground with the default listeners and a self-signed certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ktls.h"

#include "serve.h"

#define BIG_NAME "big-256MiB.bin"
#define BIG_SIZE (256ULL << 20)

static int write_file(const char *dir, const char *name, const char *text)
{
	char p[4200];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (access(p, F_OK) == 0)
		return 0;
	f = fopen(p, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "ktlsd demo: %s: %s\n", p, strerror(errno));
		return -1;
	}
	return 0;
}

/* Real bytes (xorshift64*), written through a temp name so a half file is never served. */
static int make_big(const char *dir)
{
	char p[4200], tmp[4300];
	struct stat st;
	uint64_t *buf, s = 0x9e3779b97f4a7c15ULL;
	int fd, rc = -1;

	snprintf(p, sizeof(p), "%s/%s", dir, BIG_NAME);
	if (stat(p, &st) == 0 && (uint64_t)st.st_size == BIG_SIZE && st.st_blocks * 512 >= st.st_size)
		return 0;
	printf("ktlsd demo: writing %s (256 MiB, once)...\n", p);
	fflush(stdout);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	buf = malloc(1 << 20);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (!buf || fd < 0)
		goto out;
	for (uint64_t done = 0; done < BIG_SIZE; done += 1 << 20) {
		for (size_t i = 0; i < (1 << 20) / 8; i++) {
			s ^= s >> 12;
			s ^= s << 25;
			s ^= s >> 27;
			buf[i] = s * 0x2545f4914f6cdd1dULL;
		}
		if (write(fd, buf, 1 << 20) != 1 << 20)
			goto out;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	rc = rename(tmp, p);
out:
	if (rc < 0)
		fprintf(stderr, "ktlsd demo: %s: %s\n", p, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int demo_main(int argc, char **argv)
{
	const char *dir = "build/demo";
	char **av = calloc((size_t)argc + 4, sizeof(char *));
	struct ktls_probe pr;
	int ac = 0, port_given = 0;

	if (!av)
		return 1;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else {
			if (!strncmp(argv[i], "--listen", 8))
				port_given = 1;
			av[3 + ac++] = argv[i];
		}
	}
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) ||
	    write_file(dir, "index.html",
		       "<!doctype html><title>ktlsd demo</title>\n"
		       "<h1>ktlsd demo</h1>\n<ul>\n<li><a href=\"hello.txt\">hello.txt</a>\n"
		       "<li><a href=\"data.json\">data.json</a>\n"
		       "<li><a href=\"" BIG_NAME "\">" BIG_NAME "</a> (256 MiB)\n</ul>\n") < 0 ||
	    write_file(dir, "hello.txt", "Hello from ktlsd.\n") < 0 ||
	    write_file(dir, "data.json", "{\"server\": \"ktlsd\", \"demo\": true}\n") < 0 ||
	    make_big(dir) < 0) {
		fprintf(stderr, "ktlsd demo: cannot prepare %s\n", dir);
		free(av);
		return 1;
	}
	ktls_probe(&pr);
	printf("\nktlsd demo: serving %s\n", dir);
	if (!port_given) {
		printf("  URL:   https://localhost:8443/\n");
		printf("  try:   curl -k https://localhost:8443/hello.txt\n");
		printf("         curl -k -o /dev/null -w '%%{size_download} bytes at %%{speed_download} B/s\\n' "
		       "https://localhost:8443/" BIG_NAME "\n");
	}
	if (pr.ulp)
		printf("  kTLS:  available on this kernel: payload is encrypted by the kernel after the handshake\n");
	else
		printf("  kTLS:  not available on this kernel (%s):\n"
		       "         files are served through the userspace fallback (OpenSSL)\n",
		       pr.ulp_reason[0] ? pr.ulp_reason : "TCP_ULP tls refused");
	printf("  Each connection's log line says tx/rx = sw, hw or user.  Ctrl-C stops.\n\n");
	fflush(stdout);
	av[0] = "--root";
	av[1] = (char *)dir;
	av[2] = "--foreground";
	ac += 3;
	{
		int rc = serve_main(ac, av);

		free(av);
		return rc;
	}
}
