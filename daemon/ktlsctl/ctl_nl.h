/*
 * ctl_nl.h - ktlsctl's kernel-state commands (nic.c, sockets.c, stats.c).
 * Same convention as commands.h: argv[0] is the command name; the return
 * value is the exit status (0 ok, 1 failure/refusal, 2 usage).
 */
#ifndef KTLSCTL_CTL_NL_H
#define KTLSCTL_CTL_NL_H

int cmd_nic(int argc, char **argv);
int cmd_sockets(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
