/*
 * bench_quick.c (guest) - `ktls-bench all --quick` inside the rig's kernel
 * with kTLS, smallest settings (TCG is ~10x slower): all five serve
 * configurations measured, kTLS rows (ktlsd and nginx) really offloaded
 * (TlsTxSw rose by at least one per connection) and userspace rows not,
 * every row's bytes = requests x size = the server's own access log, the
 * kTLS installation row installed SW TX+RX, the kernel crypto rows ran with
 * keys installed, and the output says these are emulated numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ktls.h"
#include "../common/bench_check.h"
#include "../common/testutil.h"

Test(bench_quick_guest, all_rows_measured_offloaded_and_labelled_emulated)
{
	int rc;

	cr_assert(tu_expect_ktls(), "guest suite run without KTLS_TEST_EXPECT_KTLS=1");
	rc = bc_run("--sizes 16K,64K --seconds 1 --conns 2", 400);
	cr_assert_eq(rc, 0, "ktls-bench --quick exited %d:\n%s", rc, bc_out);
	bc_check(1, 1);
	bc_cleanup();
}
