/*
 * ktlsd_keyd.c - the root key helper (daemon/ktlsd/keyd.h) on its own:
 * pairs handed out by number with the files' current bytes, a missing file
 * named, and the re-read that a SIGHUP with changed --cert/--key pairs
 * asks for: the helper's own list replaced only when its re-read succeeds
 * and names 1..16 pairs, and kept otherwise.  ktlsd_serve drives the same
 * helper end to end after --user.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/keyd.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ktlsd-keyd-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(ktlsd_keyd, .init = setup, .fini = teardown, .timeout = 60);

static char *put(const char *name, const char *text)
{
	char *path = malloc(128);
	FILE *f;

	cr_assert(path);
	snprintf(path, 128, "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert(f, "%s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Pair i through the helper: its two files' bytes, as strings. */
static void expect_pair(int fd, int i, const char *cert, const char *key)
{
	struct keyd_pair p;
	char err[300];

	cr_assert_eq(keyd_fetch(fd, i, &p, err, sizeof(err)), 0, "pair %d: %s", i, err);
	cr_expect_eq(p.certlen, strlen(cert));
	cr_expect_eq(p.keylen, strlen(key));
	cr_expect_eq(memcmp(p.cert, cert, p.certlen), 0, "pair %d: certificate bytes", i);
	cr_expect_eq(memcmp(p.key, key, p.keylen), 0, "pair %d: key bytes", i);
	keyd_clear(&p);
}

/*
 * The re-read, run in the helper: each call moves to the next of these
 * outcomes.  The helper is a forked copy, so the counter is its own.
 */
static char *next_cert[3], *next_key[3];
static int rereads;

static int reread(void *arg, char *const **cert, char *const **key, int *n)
{
	if (arg != (void *)dir) /* (no Criterion asserts in the helper's process) */
		return -1;
	switch (rereads++) {
	case 0: /* the configuration does not parse */
		return -1;
	case 1: /* it names no pair */
		*cert = next_cert;
		*key = next_key;
		*n = 0;
		return 0;
	default: /* three pairs, the last one new */
		*cert = next_cert;
		*key = next_key;
		*n = 3;
		return 0;
	}
}

Test(ktlsd_keyd, pairs_by_number_and_the_reread)
{
	char *cert[2] = { put("a.pem", "cert A"), put("b.pem", "cert B") };
	char *key[2] = { put("a.key", "key A"), put("b.key", "key B") };
	char err[300];
	struct keyd_pair p;
	int fd, st;

	next_cert[0] = cert[0], next_key[0] = key[0];
	next_cert[1] = cert[1], next_key[1] = key[1];
	next_cert[2] = put("c.pem", "cert C"), next_key[2] = put("c.key", "key C");
	fd = keyd_start(cert, key, 2, reread, dir, err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);

	expect_pair(fd, 0, "cert A", "key A");
	expect_pair(fd, 1, "cert B", "key B");
	/* the files as they are now, not as they were at start */
	put("b.key", "key B, renewed");
	expect_pair(fd, 1, "cert B", "key B, renewed");
	/* a missing file: its path and errno, and the helper goes on */
	cr_assert_eq(unlink(key[0]), 0);
	cr_expect_eq(keyd_fetch(fd, 0, &p, err, sizeof(err)), -1);
	cr_expect(strstr(err, "a.key: No such file or directory"), "%s", err);
	put("a.key", "key A");

	/* re-reads that fail keep the helper's pairs */
	cr_expect_eq(keyd_reread(fd, err, sizeof(err)), -1);
	cr_expect(strstr(err, "does not parse"), "%s", err);
	cr_expect_eq(keyd_reread(fd, err, sizeof(err)), -1);
	cr_expect(strstr(err, "names no --cert"), "%s", err);
	expect_pair(fd, 1, "cert B", "key B, renewed");

	/* one that succeeds: the count comes back and the new pair is served */
	cr_assert_eq(keyd_reread(fd, err, sizeof(err)), 3, "%s", err);
	expect_pair(fd, 2, "cert C", "key C");
	expect_pair(fd, 0, "cert A", "key A");

	/* ktlsd's end closed: the helper exits */
	close(fd);
	cr_expect_gt(wait(&st), 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper status %d", st);
	for (int i = 0; i < 2; i++) {
		free(cert[i]);
		free(key[i]);
	}
	free(next_cert[2]);
	free(next_key[2]);
}

Test(ktlsd_keyd, without_a_reread_function_the_pairs_stay)
{
	char *cert[1] = { put("a.pem", "cert A") };
	char err[300];
	int fd;

	/* no key files: each key is inside its certificate file */
	fd = keyd_start(cert, NULL, 1, NULL, NULL, err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	cr_expect_eq(keyd_reread(fd, err, sizeof(err)), -1);
	cr_expect(strstr(err, "cannot re-read"), "%s", err);
	expect_pair(fd, 0, "cert A", "cert A");
	close(fd);
	free(cert[0]);
}

Test(ktlsd_keyd, refuses_no_pairs_and_too_many)
{
	char *cert[1] = { "x" };
	char err[300];

	cr_expect_eq(keyd_start(cert, NULL, 0, NULL, NULL, err, sizeof(err)), -1);
	cr_expect(strstr(err, "1 to 16 pairs"), "%s", err);
	cr_expect_eq(keyd_start(cert, NULL, KEYD_MAX_PAIRS + 1, NULL, NULL, err, sizeof(err)), -1);
}
