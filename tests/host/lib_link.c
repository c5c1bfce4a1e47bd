/*
 * lib_link.c - libktls as a new user meets it: the archive and the shared
 * object export only ktls_*.
 *
 * Runs with nm on PATH, as building the project needs it anyway.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/testutil.h"

/* Run a shell command, its stderr folded into out; the exit status. */
static int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	return tu_run(cmd, out, cap);
}

/*
 * Every defined global of `nm` output whose name lacks the prefix ("A"
 * lines are the shared object's version nodes, not symbols).
 */
static void assert_only_ktls(const char *what, const char *nm_args)
{
	static char out[65536];
	char bad[4096] = "";
	int rc = sh(out, sizeof(out), "nm %s", nm_args);

	cr_assert_eq(rc, 0, "nm %s: %s", nm_args, out);
	cr_assert(strstr(out, " T ktls_ctx_new"), "%s: no ktls_ctx_new in:\n%s", what, out);
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char type[4], name[256];
		if (sscanf(line, "%*s %3s %255s", type, name) != 2 || !strcmp(type, "A"))
			continue;
		if (strncmp(name, "ktls_", 5))
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), "  %s\n", line);
	}
	cr_expect_str_eq(bad, "", "%s exports names without the ktls_ prefix:\n%s", what, bad);
}

Test(lib_link, archive_exports_only_ktls)
{
	char args[600];
	snprintf(args, sizeof(args), "-g --defined-only %s", tu_build("libktls.a"));
	assert_only_ktls("libktls.a", args);
}

Test(lib_link, shared_exports_only_ktls)
{
	char args[600];
	snprintf(args, sizeof(args), "-D --defined-only %s", tu_build("libktls.so"));
	assert_only_ktls("libktls.so", args);
}
