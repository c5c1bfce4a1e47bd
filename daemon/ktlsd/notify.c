/*
 * notify.c - sd_notify(3) for ktlsd (see notify.h).  libsystemd formats
 * and sends the datagrams; it also checks $WATCHDOG_PID so that a child
 * never pings for its parent.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "notify.h"

void notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%d", status, (int)getpid());
}

void notify_reloading(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the certificate\nMONOTONIC_USEC=%llu",
		   (unsigned long long)t.tv_sec * 1000000ULL + (unsigned long long)t.tv_nsec / 1000);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=finishing in-flight responses");
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

void notify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}
