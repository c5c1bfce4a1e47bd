/*
 * lib_link.c - libktls as a new user meets it: the archive and the shared
 * object export only ktls_*, and a program built from the public headers
 * links and starts both ways (shared from the build tree with
 * LD_LIBRARY_PATH, static against libktls.a with the libraries ktls.pc
 * names), even when it has functions of its own named like libktls's
 * internals.
 *
 * Runs from the source tree's root (tests/run-suites does) with cc, nm and
 * pkg-config on PATH, as building the project needs them anyway.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/testutil.h"

/* An instrumented library needs its runtime in the program too. */
#ifdef __SANITIZE_ADDRESS__
#define APP_SAN "-fsanitize=address,undefined"
#else
#define APP_SAN ""
#endif

/*
 * Names libktls uses inside, defined again by the program: a library that
 * leaked them would fail the static link ("multiple definition").
 */
static const char app_src[] =
	"#include <stdio.h>\n"
	"#include \"ktls.h\"\n"
	"#include \"ktls_ctl.h\"\n"
	"void secure_zero(void *p, unsigned long n);\n"
	"int nlx_recv(void);\n"
	"int tlsstat_parse(void);\n"
	"void secure_zero(void *p, unsigned long n) { (void)p; (void)n; }\n"
	"int nlx_recv(void) { return 0; }\n"
	"int tlsstat_parse(void) { return 0; }\n"
	"int main(void)\n"
	"{\n"
	"	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);\n"
	"	if (!ctx)\n"
	"		return 1;\n"
	"	ktls_ctx_free(ctx);\n"
	"	printf(\"%s %s\\n\", ktls_mode_name(KTLS_MODE_SW), ktls_nic_feature_name(KTLS_NIC_TLS_TX));\n"
	"	return nlx_recv() + tlsstat_parse();\n"
	"}\n";

static char dir[64];

static void setup(void)
{
	cr_assert_eq(access("lib/include/ktls.h", F_OK), 0,
		     "run from the source tree's root (lib/include/ktls.h not found)");
	snprintf(dir, sizeof(dir), "/tmp/ktls-link-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/app.c", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(app_src, f);
	cr_assert_eq(fclose(f), 0);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	tu_run(cmd, NULL, 0);
}

static const char *cc(void)
{
	const char *c = getenv("CC");
	return c && *c ? c : "cc";
}

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

Test(lib_link, shared_from_build_tree, .init = setup, .fini = teardown)
{
	static char out[8192];
	const char *b = tu_build(".");
	int rc = sh(out, sizeof(out), "%s %s -Wall -Werror -o %s/app %s/app.c -Ilib/include -L%s -lktls",
		    cc(), APP_SAN, dir, dir, b);

	cr_assert_eq(rc, 0, "cc app.c -Ilib/include -L%s -lktls failed:\n%s", b, out);
	rc = sh(out, sizeof(out), "LD_LIBRARY_PATH=%s %s/app", b, dir);
	cr_assert_eq(rc, 0, "the program linked against %s did not run:\n%s", b, out);
	cr_expect_str_eq(out, "sw tls-hw-tx-offload\n");
	/* It did use the shared object, not something else on the system. */
	rc = sh(out, sizeof(out), "LD_LIBRARY_PATH=%s ldd %s/app | grep -F 'libktls.so.0 => %s/'",
		b, dir, b);
	cr_expect_eq(rc, 0, "libktls.so.0 not resolved from %s:\n%s", b, out);
}

Test(lib_link, static_with_pkg_config_libs, .init = setup, .fini = teardown)
{
	static char out[8192];
	const char *b = tu_build(".");
	char pc[1024];

	/* ktls.pc's own flags, pointed at the build tree, with the archive named. */
	snprintf(pc, sizeof(pc),
		 "PKG_CONFIG_PATH=%s pkg-config --define-variable=libdir=%s "
		 "--define-variable=includedir=lib/include --static",
		 b, b);
	int rc = sh(out, sizeof(out),
		    "libs=$(%s --libs ktls) && cflags=$(%s --cflags ktls) && "
		    "%s %s -Wall -Werror -o %s/app %s/app.c $cflags "
		    "$(echo \" $libs \" | sed 's| -lktls | %s/libktls.a |')",
		    pc, pc, cc(), APP_SAN, dir, dir, b);

	cr_assert_eq(rc, 0, "static link against libktls.a with ktls.pc's libraries failed:\n%s",
		     out);
	rc = sh(out, sizeof(out), "env -u LD_LIBRARY_PATH %s/app", dir);
	cr_assert_eq(rc, 0, "the statically linked program did not run:\n%s", out);
	cr_expect_str_eq(out, "sw tls-hw-tx-offload\n");
}
