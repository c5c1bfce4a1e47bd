/*
 * http.h - the HTTP/1.1 subset ktlsd speaks: request parsing, the
 * conditional/range decisions, and response header formatting.  Pure
 * functions over buffers, no I/O, so they are unit-tested directly.
 */
#ifndef KTLSD_HTTP_H
#define KTLSD_HTTP_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* Request line + headers, terminator included, may not exceed this. */
#define HTTP_HEADER_CAP 8192

enum { HTTP_GET = 1, HTTP_HEAD = 2 };

struct http_req {
	int method;              /* HTTP_GET or HTTP_HEAD */
	int minor;               /* HTTP/1.<minor>: 0 or 1 */
	int keep_alive;          /* after this response, read the next request */
	const char *target;      /* path part of the target, not NUL-terminated */
	size_t target_len;       /* (query string cut off) */
	char line[256];          /* request line, truncated, for the access log */
	/* headers that matter (pointers into the request buffer) */
	const char *range, *if_none_match, *if_range;
	size_t range_len, if_none_match_len, if_range_len;
	time_t if_modified_since; /* -1 when absent or unparseable */
};

/*
 * http_parse - one request from the start of buf.
 * Returns the request's length in bytes (> 0) when complete, 0 when more
 * bytes are needed (and the cap is not reached), or a negative HTTP status
 * (-400, -405, -413, -414, -431, -505) for a request to refuse.  On -405,
 * -413 and -505 *r carries the request line for the log.
 */
int http_parse(const char *buf, size_t len, struct http_req *r);

/* Reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);

/* Content-Type for a file name, from its extension. */
const char *http_mime(const char *name);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out[30]. */
void http_date(time_t t, char out[30]);

/* Parse an HTTP-date (IMF-fixdate, RFC 850 or asctime); -1 if invalid. */
time_t http_parse_date(const char *s, size_t len);

/*
 * The strong ETag of a file (quotes included) into out[64]: its size and
 * modification time in nanoseconds, as nginx's (seconds there).  Never the
 * inode, which would tell every client about the server's file system.
 */
void http_etag(const struct stat *st, char out[64]);

/*
 * http_range - interpret a Range header value for a file of size bytes.
 * Returns 206 with *first and *last set for one satisfiable range, 416 for an
 * unsatisfiable one, 200 when the header is to be ignored (absent,
 * malformed, several ranges, or a unit other than bytes).
 */
int http_range(const char *v, size_t len, off_t size, off_t *first, off_t *last);

/*
 * http_not_modified - 1 when the validators say 304: If-None-Match (which,
 * when present, decides alone) matches etag weakly, or If-Modified-Since is
 * not older than mtime.
 */
int http_not_modified(const struct http_req *r, const char *etag, time_t mtime);

/* 1 when If-Range is absent or still matches (etag or exact date). */
int http_if_range_ok(const struct http_req *r, const char *etag, time_t mtime);

/*
 * Response headers into out (cap bytes).  content_length < 0 means none.
 * extra is more header lines ("Allow: GET, HEAD\r\n") or NULL.
 * Returns the length, or -1 if cap is too small.
 */
int http_format_head(char *out, size_t cap, int status, const char *ctype,
		     long long content_length, int keep_alive, const char *extra);

#endif
