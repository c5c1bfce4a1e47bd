/*
 * http_fields - the header-value parsers on raw bytes, without
 * http_parse's framing in front: the input is a Range value for
 * http_range (for several file sizes), an HTTP-date for http_parse_date
 * (all three formats), and an If-None-Match / If-Range value for
 * http_not_modified and http_if_range_ok.  http_request reaches them only
 * through what a header line can hold; this one feeds them anything.
 */
#include <limits.h>
#include <sys/types.h>

#include "../../daemon/ktlsd/http.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const off_t sizes[] = { 0, 1, 7, 4096, (off_t)1 << 40, LLONG_MAX };
	const char *v = (const char *)data;
	struct http_req r;
	off_t first, last;
	time_t t;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int st = http_range(v, size, sizes[i], &first, &last);
		FUZZ_ASSERT(st == 200 || st == 206 || st == 416);
		if (st == 206)
			FUZZ_ASSERT(first >= 0 && first <= last && last < sizes[i]);
	}

	t = http_parse_date(v, size);
	if (t != -1) {
		/* What parses formats back to a date that parses to the same time. */
		char again[30];
		http_date(t, again);
		if (t >= 0 && t < 253402300800LL) /* years 1970..9999 */
			FUZZ_ASSERT(http_parse_date(again, strlen(again)) == t);
	}

	memset(&r, 0, sizeof(r));
	r.if_modified_since = t;
	r.if_none_match = v;
	r.if_none_match_len = size;
	r.if_range = v;
	r.if_range_len = size;
	FUZZ_ASSERT(http_not_modified(&r, "\"1-2-3\"", 784111777) <= 1);
	FUZZ_ASSERT(http_if_range_ok(&r, "\"1-2-3\"", 784111777) <= 1);
	r.if_none_match = NULL;
	FUZZ_ASSERT(http_not_modified(&r, "W/\"1-2-3\"", t) <= 1);
	return 0;
}
