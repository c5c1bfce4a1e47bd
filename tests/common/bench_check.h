/*
 * bench_check.h - shared by tests/host/bench_quick.c and
 * tests/guest/bench_quick.c: run `ktls-bench all --quick`, then check that
 * every row it claims to have measured moved the bytes it claims (client
 * count = requests x size = the server's own access log, re-summed here
 * independently of the bench), that kTLS rows are skipped with the
 * kernel's reason where there is no kTLS and really offloaded where there
 * is, that the JSON parses with /usr/bin/python3, and that the PNGs exist.
 */
#ifndef BENCH_CHECK_H
#define BENCH_CHECK_H

/* The bench's stdout from the last bc_run, for messages and checks. */
#define BC_OUT_SIZE 65536
extern char bc_out[BC_OUT_SIZE];

/* Run the bench into a fresh directory; its exit status. */
int bc_run(const char *extra, int timeout_s);

/* Remove the run's directory (kept when $KTLS_TEST_KEEP is set). */
void bc_cleanup(void);

/*
 * Everything after a successful quick run.  expect_ktls: this kernel has
 * kTLS (rows 2, 5 and kTLS crypto must be measured and really offloaded);
 * emulated: inside the QEMU rig (the output must say so).
 */
void bc_check(int expect_ktls, int emulated);

#endif
