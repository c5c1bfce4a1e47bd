/*
 * tls_stat - /proc/net/tls_stat text through tlsstat_parse: "Name value"
 * lines, any number, any spacing.  A success has at least one counter and
 * every name NUL-terminated within its field.
 */
#include <string.h>

#include "ktls_ctl.h"
#include "netlink.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_str(data, size);
	struct ktls_stat_counter *v = NULL;
	size_t n = 0;
	char err[256];
	int r;

	err[0] = '\0';
	r = tlsstat_parse(text, &v, &n, err, sizeof(err));
	FUZZ_ASSERT(r == 0 || r == -1);
	if (r == 0) {
		FUZZ_ASSERT(v && n > 0);
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT(memchr(v[i].name, '\0', sizeof(v[i].name)) && v[i].name[0]);
	} else {
		FUZZ_ASSERT(!v && n == 0 && err[0]);
	}
	free(v);
	free(text);
	return 0;
}
