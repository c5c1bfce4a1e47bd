/*
 * notify.h - telling systemd where ktlsd stands (Type=notify units).
 *
 * Every call is a no-op without $NOTIFY_SOCKET, so ktlsd behaves the same
 * outside systemd.  The main thread sends them all.
 */
#ifndef KTLSD_NOTIFY_H
#define KTLSD_NOTIFY_H

#include <stdint.h>

/* READY=1 once every listener is bound and every worker runs; status says what. */
void notify_ready(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC, as systemd 253+ asks) before a SIGHUP reload. */
void notify_reloading(void);

/* STOPPING=1 when SIGTERM/SIGINT starts the grace period. */
void notify_stopping(void);

/*
 * The watchdog interval systemd asked for (WatchdogSec=), in microseconds;
 * 0 when there is none.  The caller pings at half of it.
 */
uint64_t notify_watchdog_usec(void);

/* WATCHDOG=1: the main loop is alive and its workers have not exited. */
void notify_watchdog(void);

#endif
