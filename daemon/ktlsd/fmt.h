/*
 * fmt.h - digits without printf, for what ktlsd formats on every request
 * (the access log line, the response head and its ETag): see log.c.
 */
#ifndef KTLSD_FMT_H
#define KTLSD_FMT_H

#include <stdint.h>

/* The digits of v at p, at least min of them (zero-padded); returns the end. */
static inline char *fmt_u64(char *p, uint64_t v, int min)
{
	char d[20];
	int n = 0;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v || n < min);
	while (n)
		*p++ = d[--n];
	return p;
}

/* The lowercase hex digits of v at p; returns the end. */
static inline char *fmt_x64(char *p, uint64_t v)
{
	char d[16];
	int n = 0;

	do {
		d[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*p++ = d[--n];
	return p;
}

#endif
