/*
 * ktlsd - the ktls daemon.
 *   ktlsd serve ...   HTTPS static files over io_uring + kTLS (serve.c)
 *   ktlsd demo ...    serve a generated demo directory (demo.c)
 *   ktlsd agent ...   the kernel's handshake agent (agent.c)
 */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "serve.h"

static void usage(FILE *f)
{
	fputs("usage: ktlsd serve --root DIR [options]   (ktlsd serve --help)\n"
	      "       ktlsd demo [--dir DIR] [serve options]\n"
	      "       ktlsd agent [options]\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "serve"))
		return serve_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "demo"))
		return demo_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "agent"))
		return ktlsd_agent_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "ktlsd: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
