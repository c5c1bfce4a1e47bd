/*
 * http_request - ktlsd's request parser on what a client sends: request
 * lines and headers, pipelined requests one after another as a connection
 * reads them, and then what ktlsd does with a parsed request's outside
 * input: the target through path_decode, Range through http_range,
 * If-None-Match / If-Modified-Since / If-Range through http_not_modified
 * and http_if_range_ok.  Checks the results' promises (lengths within the
 * buffer, ranges within the file).
 */
#include <limits.h>
#include <string.h>
#include <sys/types.h>

#include "../../daemon/ktlsd/http.h"
#include "../../daemon/ktlsd/path.h"
#include "fuzz.h"

static const char etag[] = "\"2a-400-17d5a3c0e1f2b800\"";

static void use_request(const char *buf, size_t len, const struct http_req *r)
{
	static const off_t sizes[] = { 0, 1, 100, 1024, (off_t)1 << 40, LLONG_MAX };
	char rel[HTTP_HEADER_CAP];
	const char *end = buf + len;
	off_t first, last;

	FUZZ_ASSERT(r->method == HTTP_GET || r->method == HTTP_HEAD);
	FUZZ_ASSERT(r->minor == 0 || r->minor == 1);
	FUZZ_ASSERT(memchr(r->line, '\0', sizeof(r->line)));
	/* Inside the request, or "/" for an absolute-form target without a path. */
	FUZZ_ASSERT((r->target >= buf && r->target + r->target_len <= end) ||
		    (r->target_len == 1 && r->target[0] == '/'));
	if (r->range)
		FUZZ_ASSERT(r->range >= buf && r->range + r->range_len <= end);
	if (r->if_none_match)
		FUZZ_ASSERT(r->if_none_match >= buf && r->if_none_match + r->if_none_match_len <= end);
	if (r->if_range)
		FUZZ_ASSERT(r->if_range >= buf && r->if_range + r->if_range_len <= end);

	if (path_decode(r->target, r->target_len, rel, sizeof(rel)) == 0) {
		size_t n = strlen(rel);
		FUZZ_ASSERT(n > 0 && n < sizeof(rel) && rel[0] != '/');
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int st = http_range(r->range, r->range_len, sizes[i], &first, &last);
		FUZZ_ASSERT(st == 200 || st == 206 || st == 416);
		if (st == 206)
			FUZZ_ASSERT(first >= 0 && first <= last && last < sizes[i]);
	}
	for (time_t mtime = 0; mtime <= 784111777; mtime += 784111777) {
		int nm = http_not_modified(r, etag, mtime);
		int ok = http_if_range_ok(r, etag, mtime);
		FUZZ_ASSERT((nm == 0 || nm == 1) && (ok == 0 || ok == 1));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	for (int i = 0; i < 8 && off < size; i++) {
		struct http_req r;
		int n = http_parse(buf + off, size - off, &r);

		FUZZ_ASSERT(n <= (int)(size - off));
		if (n < 0)
			FUZZ_ASSERT(n == -400 || n == -405 || n == -413 || n == -414 || n == -431 ||
				    n == -505);
		if (n <= 0)
			break;
		use_request(buf + off, (size_t)n, &r);
		off += (size_t)n;
	}
	return 0;
}
