/*
 * commands.h - the ktlsctl subcommands.  Each takes the arguments after
 * its name (argv[0] is the command name) and returns the process exit
 * status: 0 success, 1 failure, 2 usage error.  One line per command here
 * and one row in main.c's table.
 */
#ifndef KTLSCTL_COMMANDS_H
#define KTLSCTL_COMMANDS_H

int cmd_probe(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_nic(int argc, char **argv);
int cmd_sockets(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
