/*
 * ktlsctl - the control CLI: a table of subcommands, each in its own file.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;    /* shown after the name in the usage */
	const char *summary;
};

static const struct command commands[] = {
	{ "probe", cmd_probe, "[--json]", "what this kernel offers for kTLS and io_uring" },
	{ "demo", cmd_demo, "[--tls1.2] [--bytes N]",
	  "loopback handshake, kTLS offload, transfer checked by SHA-256" },
	{ "nic", cmd_nic, "[IFACE] [--json] | IFACE [tx on|off] [rx on|off] [record on|off]",
	  "NIC TLS offload features and driver TLS counters; switch offload" },
	{ "sockets", cmd_sockets, "[--json] [port=N sport=N dport=N pid=N conf=sw|hw|...]",
	  "TCP sockets with the tls ULP and who encrypts each direction" },
	{ "stats", cmd_stats, "[--json] [--watch SECONDS [--count N]] [--file PATH]",
	  "the kernel's kTLS counters (/proc/net/tls_stat), with deltas" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: ktlsctl COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s %s\n      %s\n", commands[i].name, commands[i].args,
			commands[i].summary);
	fprintf(f, "  help\n      this text\n");
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;

	if (!name) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "ktlsctl: unknown command '%s'\n", name);
	usage(stderr);
	return 2;
}
