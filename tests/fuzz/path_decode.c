/*
 * path_decode - a request target's path decoded and normalised for
 * opening beneath the served root.  Whatever comes out must be relative,
 * free of "." / ".." / empty segments and NUL-terminated within the
 * buffer; the same input into a small buffer must fail with -414 or give
 * the same path.
 */
#include <string.h>

#include "../../daemon/ktlsd/path.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[4200], small[24];
	const char *t = (const char *)data;
	int r = path_decode(t, size, out, sizeof(out));

	FUZZ_ASSERT(r == 0 || r == -400 || r == -403 || r == -414);
	if (r == 0) {
		size_t n = strlen(out);
		FUZZ_ASSERT(n > 0 && n < sizeof(out) && out[0] != '/');
		if (strcmp(out, ".") != 0) {
			char *copy = strdup(out), *save = NULL;
			FUZZ_ASSERT(copy);
			FUZZ_ASSERT(out[n - 1] != '/' && !strstr(out, "//"));
			for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save))
				FUZZ_ASSERT(strcmp(s, ".") && strcmp(s, ".."));
			free(copy);
		}
	}
	int rs = path_decode(t, size, small, sizeof(small));
	/* A small buffer may run out before a later ".." is seen. */
	FUZZ_ASSERT(rs == r || (rs == -414 && r != -400));
	if (rs == 0)
		FUZZ_ASSERT(!strcmp(small, out));
	return 0;
}
