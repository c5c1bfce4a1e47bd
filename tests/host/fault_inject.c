/*
 * fault_inject.c - allocation failures and kernel refusals across a whole
 * connection: context, handshake, kTLS install (the emulated kernel of
 * offload_emul.h) and I/O against a plain OpenSSL peer (issue 12).
 *
 * OpenSSL's allocator is replaced (CRYPTO_set_mem_functions) by one that
 * fails exactly the Nth allocation made on our thread (the peer's thread
 * never fails), for every N a connection makes.  Each run must end either
 * fully usable (64 KiB echoed, matched) or cleanly failed: a -1 with a
 * KTLS_ERR_* code and a reason.  A failure inside ktls_conn_offload must
 * leave the connection usable or dead with its reason, never one direction
 * half-installed.  Leaks are make asan's (LeakSanitizer at exit).
 * Every step of the kernel seam (TCP_ULP, TLS_TX, TLS_RX) refused with
 * each errno the kernel uses ends in a working fallback.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/crypto.h>

#include "../common/offload_emul.h"
#include "../common/offload_peer.h"
#include "../common/testutil.h"

static __thread int armed;      /* this thread's allocations count */
static __thread long long seen; /* allocations counted so far */
static __thread long long fail_at; /* fail this one (1-based); 0: never */
static __thread int fired;

static void *fault_malloc(size_t n, const char *file, int line)
{
	if (armed && ++seen == fail_at) {
		fired = 1;
		return NULL;
	}
	return malloc(n);
}

static void *fault_realloc(void *p, size_t n, const char *file, int line)
{
	if (armed && ++seen == fail_at) {
		fired = 1;
		return NULL;
	}
	return realloc(p, n);
}

static void fault_free(void *p, const char *file, int line)
{
	free(p);
}

/*
 * Only possible before OpenSSL's first allocation in the process, which
 * comes before any test's .init (the runner's own start-up): so at load.
 */
static int hooked;

__attribute__((constructor)) static void hook_allocator(void)
{
	hooked = CRYPTO_set_mem_functions(fault_malloc, fault_realloc, fault_free);
}

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(hooked, 1, "OpenSSL allocated before the test could hook its allocator");
}

static void fini(void)
{
	emu_off();
}

TestSuite(fault_inject, .init = init, .fini = fini, .timeout = 1800);

enum phase { PH_OPEN, PH_OFFLOAD, PH_IO, PH_DONE };

struct outcome {
	enum phase failed_in;  /* PH_DONE: nothing failed */
	int fired_in_offload;
	char why[300];
};

/*
 * One connection of ours (role, suite s) against the OpenSSL peer with
 * the kernel emulated; the Nth allocation on this thread fails (0: none).
 * Asserts the rules above; returns what happened.
 */
static struct outcome one_run(int role, const struct suite *s, long long n, long long *count)
{
	struct outcome out = { .failed_in = PH_DONE };
	struct run r;
	char why[256];
	int rc;

	emu_on(1);
	run_start(&r, role, s, NULL);
	{
		/* a run that waits forever is a finding too: make it a failure */
		struct timeval tv = { 5, 0 };

		setsockopt(r.fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(r.fds[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	peer_start(&r.peer);
	seen = 0;
	fired = 0;
	fail_at = n;
	armed = 1;
	if (ours_open(&r.us, role, s, 2, r.fds[0], NULL) != 0) {
		armed = 0;
		out.failed_in = PH_OPEN;
		snprintf(out.why, sizeof(out.why), "%s", r.us.err);
		cr_expect(fired, "run %lld: failed without an injected fault: %s", n, r.us.err);
		/* a refused context or connection says why; so does a failed handshake */
		cr_expect(strlen(r.us.err) > strlen("handshake: "), "run %lld: no reason", n);
		if (r.us.c)
			cr_expect_neq(ktls_conn_error_code(r.us.c), KTLS_ERR_NONE, "run %lld", n);
		goto abort;
	}
	{
		int before = fired;

		rc = ktls_conn_offload(r.us.c);
		out.fired_in_offload = fired && !before;
	}
	if (rc != 0) {
		armed = 0;
		out.failed_in = PH_OFFLOAD;
		snprintf(out.why, sizeof(out.why), "%s", ktls_conn_error(r.us.c));
		cr_expect(fired, "run %lld: offload failed without an injected fault: %s", n, out.why);
		cr_expect_neq(ktls_conn_error_code(r.us.c), KTLS_ERR_NONE, "run %lld: %s", n, out.why);
		/* dead with its reason: nothing half-working afterwards */
		cr_expect_lt(ktls_conn_write(r.us.c, "x", 1), 0, "run %lld: offload failed, write worked", n);
		goto abort;
	}
	if (echo_check(r.us.c, 64 * 1024, 16384, why, sizeof(why)) != 0) {
		armed = 0;
		out.failed_in = PH_IO;
		snprintf(out.why, sizeof(out.why), "%s", why);
		cr_expect(fired, "run %lld: I/O failed without an injected fault: %s (peer: %s)", n, why,
			  r.peer.err);
		cr_expect(!out.fired_in_offload, "run %lld: a fault in offload left a broken connection "
			  "(offload returned 0): %s", n, why);
		cr_expect_neq(ktls_conn_error_code(r.us.c), KTLS_ERR_NONE, "run %lld: %s", n, why);
		goto abort;
	}
	armed = 0;
	if (count)
		*count = seen;
	/* fully usable: more data, then a clean close both ways */
	run_finish(&r);
	emu_off();
	return out;
abort:
	armed = 0;
	run_abort(&r);
	emu_off();
	return out;
}

/* Every allocation of one connection failed in turn, for a role and suite. */
static void every_allocation(int role, const struct suite *s)
{
	long long total = 0, usable = 0, failed[3] = { 0 }, in_offload = 0;

	const char *from = getenv("FAULT_FROM"), *to = getenv("FAULT_TO");
	/*
	 * make check fails every 23rd allocation (a prime: every allocation
	 * site that recurs gets hit in some run); make soak sets
	 * FAULT_STRIDE=1: all of them, a few minutes.
	 */
	long long stride = getenv("FAULT_STRIDE") ? atoll(getenv("FAULT_STRIDE")) : 23;

	one_run(role, s, 0, &total);
	cr_assert_gt(total, 100, "only %lld allocations counted: is the allocator hooked?", total);
	if (stride < 1)
		stride = 1;
	for (long long n = from ? atoll(from) : 1; n <= (to ? atoll(to) : total); n += stride) {
		if (getenv("FAULT_TRACE"))
			fprintf(stderr, "run %lld\n", n);
		struct outcome o = one_run(role, s, n, NULL);

		in_offload += o.fired_in_offload;
		if (o.failed_in == PH_DONE)
			usable++;
		else
			failed[o.failed_in]++;
	}
	fprintf(stderr,
		"fault_inject: %s %s: %lld allocations, one failed per run (stride %lld): %lld runs fully usable, "
		"%lld failed cleanly (%lld opening, %lld in offload, %lld in I/O); %lld faults hit "
		"ktls_conn_offload\n",
		role == KTLS_CLIENT ? "client" : "server", s->name, total, stride, usable,
		failed[PH_OPEN] + failed[PH_OFFLOAD] + failed[PH_IO], failed[PH_OPEN],
		failed[PH_OFFLOAD], failed[PH_IO], in_offload);
}

Test(fault_inject, every_allocation_tls13_client)
{
	every_allocation(KTLS_CLIENT, &suites[0]);
}

Test(fault_inject, every_allocation_tls12_server)
{
	every_allocation(KTLS_SERVER, &suites[3]);
}

/* Each kernel step refused with each errno it can give: a working fallback, with the reason. */
Test(fault_inject, kernel_refusals_fall_back)
{
	static const int errs[] = { ENOENT, EBUSY, ENOMEM, EINVAL, EOPNOTSUPP, ENOSPC, EPERM };

	for (int step = 0; step < 3; step++)
		for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
			struct run r;
			char why[256];

			emu_on(1);
			if (step == 0)
				emu.ulp_errno = errs[e];
			else if (step == 1)
				emu.tx_errno = errs[e];
			else
				emu.rx_errno = errs[e];
			run_start(&r, KTLS_CLIENT, &suites[0], NULL);
			run_go(&r, KTLS_CLIENT, NULL);
			cr_expect(r.info.tx == KTLS_MODE_USER || r.info.rx == KTLS_MODE_USER,
				  "step %d errno %d: nothing fell back", step, errs[e]);
			cr_expect(r.info.fallback_reason && *r.info.fallback_reason,
				  "step %d errno %d: a fallback without a reason", step, errs[e]);
			if (step == 2)
				cr_expect_eq(r.info.tx, KTLS_MODE_SW, "RX refused: TX stays in the kernel");
			cr_expect_eq(echo_check(r.us.c, 64 * 1024, 16384, why, sizeof(why)), 0,
				     "step %d errno %d: %s", step, errs[e], why);
			run_finish(&r);
			emu_off();
		}
}
