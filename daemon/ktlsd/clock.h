/*
 * clock.h - milliseconds of CLOCK_MONOTONIC_COARSE, for deadlines and
 * intervals.  The coarse clock is read from the vDSO's data page alone, so
 * it never becomes a syscall, not even where the clocksource cannot be
 * read from user space (some VMs: Linux 6.1 under QEMU TCG made each
 * CLOCK_MONOTONIC read a syscall, five per 16 KiB response); its tick
 * (1-4 ms) is far finer than any deadline ktlsd keeps.
 */
#ifndef KTLSD_CLOCK_H
#define KTLSD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

#endif
