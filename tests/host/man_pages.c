/*
 * man_pages.c - the operator's pages: ktlsd(8), ktlsctl(8), ktls-bench(1)
 * and libktls(3) are mandoc -Tlint clean, document every public ktls_*
 * call, every ktlsd option, every ktlsctl command and every ktls-bench
 * option the programs themselves list, and make install puts them in
 * place.  A new call or option without its page fails here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/testutil.h"

static const char *const pages[] = { "daemon/ktlsd.8", "daemon/ktlsctl.8", "bench/ktls-bench.1",
				     "lib/libktls.3" };

Test(man_pages, mandoc_lint_clean)
{
	char cmd[256], out[4096];

	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		snprintf(cmd, sizeof(cmd), "mandoc -Tlint -Wwarning %s 2>&1", pages[i]);
		cr_expect_eq(tu_run(cmd, out, sizeof(out)), 0, "%s:\n%s", pages[i], out);
		cr_expect_str_eq(out, "", "%s", pages[i]);
	}
}

/* Each word the shell pipeline prints must appear in page as "prefix word". */
static void each_documented(const char *list_cmd, const char *page, const char *prefix)
{
	char cmd[1024], out[8192];
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "n=0; for w in $(%s); do n=$((n+1)); grep -qF -- '%s'\"$w\" %s || echo \"missing: $w\"; "
		 "done; echo \"checked $n\"",
		 list_cmd, prefix, page);
	rc = tu_run(cmd, out, sizeof(out));
	cr_assert_eq(rc, 0, "%s", cmd);
	cr_expect_null(strstr(out, "missing:"), "%s lacks:\n%s", page, out);
	cr_expect_null(strstr(out, "checked 0\n"), "nothing to check (%s): %s", list_cmd, out);
}

Test(man_pages, libktls_documents_every_call)
{
	/* every ktls_*( in the public headers: prototypes and the calls their examples use */
	each_documented("grep -ohE '\\bktls_[a-z0-9_]+\\(' lib/include/*.h | tr -d '(' | sort -u",
			"lib/libktls.3", ".It Fn ");
}

Test(man_pages, ktlsd_documents_every_option)
{
	char list[600];

	snprintf(list, sizeof(list),
		 "{ %s serve --help; %s agent --help; } 2>&1 | grep -oE -- '--[a-z][a-z0-9.-]+' | "
		 "sed 's/^--//' | sort -u",
		 tu_build("ktlsd"), tu_build("ktlsd"));
	each_documented(list, "daemon/ktlsd.8", "Fl -");
}

Test(man_pages, ktlsctl_documents_every_command)
{
	char list[400];

	snprintf(list, sizeof(list), "%s help | sed -n 's/^  \\([a-z]\\+\\).*/\\1/p' | sort -u",
		 tu_build("ktlsctl"));
	each_documented(list, "daemon/ktlsctl.8", ".Cm ");
}

Test(man_pages, ktls_bench_documents_every_option)
{
	char list[400];

	snprintf(list, sizeof(list),
		 "%s --help 2>&1 | grep -oE -- '--[a-z][a-z-]+' | sed 's/^--//' | sort -u",
		 tu_build("ktls-bench"));
	each_documented(list, "bench/ktls-bench.1", "Fl -");
}

Test(man_pages, make_install_puts_them_in_place, .timeout = 300)
{
	char dir[] = "/tmp/ktls-man-XXXXXX", cmd[1024], out[4096];
	const char *build = getenv("KTLS_TEST_BUILD");

	cr_assert(mkdtemp(dir));
	/* the build directory the suite runs from: nothing is rebuilt */
	snprintf(cmd, sizeof(cmd),
		 "make -s install BUILD=%s DESTDIR=%s PREFIX=/usr 2>&1 && "
		 "for p in man1/ktls-bench.1 man3/libktls.3 man8/ktlsd.8 man8/ktlsctl.8; do "
		 "test -s %s/usr/share/man/$p || echo \"not installed: $p\"; done; "
		 "MANPATH=%s/usr/share/man man -P cat 8 ktlsd 2>/dev/null | grep -c 'ktlsd serve'",
		 build && strstr(build, "/") ? build : "build", dir, dir, dir);
	tu_run(cmd, out, sizeof(out));
	cr_expect_null(strstr(out, "not installed"), "%s", out);
	cr_expect_neq(atoi(out), 0, "man 8 ktlsd did not render the installed page:\n%s", out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	tu_run(cmd, out, sizeof(out));
}
