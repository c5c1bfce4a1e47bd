/*
 * http.c - HTTP/1.1 request parsing and response headers for ktlsd.
 *
 * Strict where leniency would be a smuggling or traversal risk (header
 * syntax, Content-Length, obs-fold), lenient where RFC 9112 allows it
 * (bare LF line ends, leading empty lines, higher 1.x minor versions).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fmt.h"
#include "http.h"

#define TARGET_CAP 4096

static int is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* End of the header section: offset just past it, or 0 if not there. */
static size_t find_end(const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (b[i] != '\n')
			continue;
		if (i + 1 < len && b[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Next line in [*p, end): sets *l and *ll without the line end; 0 at the end. */
static int next_line(const char **p, const char *end, const char **l, size_t *ll)
{
	const char *nl = memchr(*p, '\n', end - *p);

	if (!nl)
		return 0;
	*l = *p;
	*ll = nl - *p;
	if (*ll && (*l)[*ll - 1] == '\r')
		(*ll)--;
	*p = nl + 1;
	return 1;
}

static void trim(const char **v, size_t *len)
{
	while (*len && (**v == ' ' || **v == '\t'))
		(*v)++, (*len)--;
	while (*len && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
		(*len)--;
}

static int token_eq(const char *a, size_t alen, const char *lit)
{
	return alen == strlen(lit) && strncasecmp(a, lit, alen) == 0;
}

/* Does the comma-separated list v contain token tok (case-insensitive)? */
static int list_has(const char *v, size_t len, const char *tok)
{
	const char *p = v, *end = v + len;

	while (p < end) {
		const char *c = memchr(p, ',', end - p);
		const char *e = c ? c : end;
		const char *t = p;
		size_t tl = e - p;

		trim(&t, &tl);
		if (token_eq(t, tl, tok))
			return 1;
		p = e + 1;
	}
	return 0;
}

static int parse_request_line(const char *l, size_t ll, struct http_req *r)
{
	const char *sp1 = memchr(l, ' ', ll), *sp2, *t, *v;
	size_t ml, tl, vl;

	snprintf(r->line, sizeof(r->line), "%.*s", (int)ll, l); /* raw: the logs escape it */
	if (!sp1)
		return -400;
	ml = sp1 - l;
	t = sp1 + 1;
	sp2 = memchr(t, ' ', l + ll - t);
	if (!sp2)
		return -400;
	tl = sp2 - t;
	v = sp2 + 1;
	vl = l + ll - v;
	if (ml == 0 || tl == 0)
		return -400;
	for (size_t i = 0; i < ml; i++)
		if (!is_tchar(l[i]))
			return -400;
	for (size_t i = 0; i < tl; i++)
		if ((unsigned char)t[i] <= 0x20 || t[i] == 0x7f)
			return -400;
	if (vl != 8 || memcmp(v, "HTTP/", 5) != 0 || !isdigit((unsigned char)v[5]) ||
	    v[6] != '.' || !isdigit((unsigned char)v[7]))
		return -400;
	if (v[5] != '1')
		return -505;
	r->minor = v[7] == '0' ? 0 : 1;
	if (tl > TARGET_CAP)
		return -414;

	/* absolute-form: keep only the path */
	if ((tl > 7 && strncasecmp(t, "http://", 7) == 0) ||
	    (tl > 8 && strncasecmp(t, "https://", 8) == 0)) {
		const char *a = (const char *)memchr(t, ':', tl) + 3;
		const char *s = memchr(a, '/', t + tl - a);

		if (!s) {
			t = "/";
			tl = 1;
		} else {
			tl -= s - t;
			t = s;
		}
	}
	if (t[0] != '/')
		return -400;
	for (size_t i = 0; i < tl; i++)
		if (t[i] == '?' || t[i] == '#') {
			tl = i;
			break;
		}
	r->target = t;
	r->target_len = tl;

	if (token_eq(l, ml, "GET") && memcmp(l, "GET", 3) == 0)
		r->method = HTTP_GET;
	else if (token_eq(l, ml, "HEAD") && memcmp(l, "HEAD", 4) == 0)
		r->method = HTTP_HEAD;
	else
		return -405; /* methods are case-sensitive */
	return 0;
}

int http_parse(const char *buf, size_t len, struct http_req *r)
{
	size_t skip = 0, end, hl;
	const char *p, *e, *l;
	int host = 0, conn_close = 0, conn_ka = 0, st;
	long long clen = -1;

	memset(r, 0, sizeof(*r));
	r->if_modified_since = -1;
	/* RFC 9112 2.2: ignore empty lines before the request line */
	while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
		skip++;
	buf += skip;
	len -= skip;
	if (len > HTTP_HEADER_CAP)
		len = HTTP_HEADER_CAP;
	end = find_end(buf, len);
	if (!end) {
		if (len < HTTP_HEADER_CAP)
			return 0;
		/* too big: blame the line that is too long */
		return memchr(buf, '\n', len) ? -431 : -414;
	}

	p = buf;
	e = buf + end;
	if (!next_line(&p, e, &l, &hl))
		return -400;
	st = parse_request_line(l, hl, r);
	if (st == -400 || st == -414)
		return st;
	/* -405 and -505 still need a well-formed header section */

	while (next_line(&p, e, &l, &hl) && hl) {
		const char *colon = memchr(l, ':', hl), *v;
		size_t nl, vl;

		if (l[0] == ' ' || l[0] == '\t')
			return -400; /* obs-fold */
		if (!colon)
			return -400;
		nl = colon - l;
		if (nl == 0)
			return -400;
		for (size_t i = 0; i < nl; i++)
			if (!is_tchar(l[i]))
				return -400; /* includes whitespace before ':' */
		v = colon + 1;
		vl = hl - nl - 1;
		trim(&v, &vl);
		for (size_t i = 0; i < vl; i++)
			if (v[i] == '\0' || v[i] == '\r')
				return -400;

		if (token_eq(l, nl, "Host")) {
			host++;
		} else if (token_eq(l, nl, "Connection")) {
			conn_close |= list_has(v, vl, "close");
			conn_ka |= list_has(v, vl, "keep-alive");
		} else if (token_eq(l, nl, "Content-Length")) {
			long long n = 0;

			if (vl == 0 || vl > 18)
				return -400;
			for (size_t i = 0; i < vl; i++) {
				if (!isdigit((unsigned char)v[i]))
					return -400;
				n = n * 10 + (v[i] - '0');
			}
			if (clen >= 0 && clen != n)
				return -400;
			clen = n;
		} else if (token_eq(l, nl, "Transfer-Encoding")) {
			return -413; /* no request bodies here */
		} else if (token_eq(l, nl, "Range")) {
			r->range = v;
			r->range_len = vl;
		} else if (token_eq(l, nl, "If-None-Match")) {
			r->if_none_match = v;
			r->if_none_match_len = vl;
		} else if (token_eq(l, nl, "If-Range")) {
			r->if_range = v;
			r->if_range_len = vl;
		} else if (token_eq(l, nl, "If-Modified-Since")) {
			r->if_modified_since = http_parse_date(v, vl);
		}
	}
	if (st)
		return st;
	if (clen > 0)
		return -413;
	if (r->minor == 1 ? host != 1 : host > 1)
		return -400;
	r->keep_alive = r->minor == 1 ? !conn_close : (conn_ka && !conn_close);
	return (int)(skip + end);
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

const char *http_mime(const char *name)
{
	static const char *const map[][2] = {
		{ "html", "text/html; charset=utf-8" }, { "htm", "text/html; charset=utf-8" },
		{ "css", "text/css; charset=utf-8" }, { "js", "text/javascript; charset=utf-8" },
		{ "mjs", "text/javascript; charset=utf-8" }, { "json", "application/json" },
		{ "txt", "text/plain; charset=utf-8" }, { "md", "text/markdown; charset=utf-8" },
		{ "csv", "text/csv; charset=utf-8" }, { "xml", "application/xml" },
		{ "svg", "image/svg+xml" }, { "png", "image/png" }, { "jpg", "image/jpeg" },
		{ "jpeg", "image/jpeg" }, { "gif", "image/gif" }, { "webp", "image/webp" },
		{ "avif", "image/avif" }, { "ico", "image/vnd.microsoft.icon" },
		{ "pdf", "application/pdf" }, { "wasm", "application/wasm" },
		{ "mp4", "video/mp4" }, { "webm", "video/webm" }, { "mp3", "audio/mpeg" },
		{ "ogg", "audio/ogg" }, { "zip", "application/zip" }, { "gz", "application/gzip" },
		{ "tar", "application/x-tar" }, { "woff", "font/woff" }, { "woff2", "font/woff2" },
		{ "ttf", "font/ttf" }, { "otf", "font/otf" },
	};
	const char *slash = strrchr(name, '/'), *dot = strrchr(slash ? slash : name, '.');

	if (dot && dot[1])
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcasecmp(dot + 1, map[i][0]) == 0)
				return map[i][1];
	return "application/octet-stream";
}

/*
 * Every response carries Date and most carry Last-Modified: each thread
 * keeps the last two it formatted (strftime and gmtime_r's lock cost more
 * than the rest of the head; perf, 16 KiB responses).
 */
void http_date(time_t t, char out[30])
{
	static __thread struct {
		time_t t;
		char s[30];
	} memo[2] = { { (time_t)-1, "" }, { (time_t)-1, "" } };
	static __thread unsigned next;
	struct tm tm;

	for (unsigned i = 0; i < 2; i++) {
		if (memo[i].t == t) {
			memcpy(out, memo[i].s, 30);
			return;
		}
	}
	gmtime_r(&t, &tm);
	strftime(out, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	memo[next].t = t;
	memcpy(memo[next].s, out, 30);
	next ^= 1;
}

time_t http_parse_date(const char *s, size_t len)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",      /* asctime */
	};
	char b[64];

	if (len == 0 || len >= sizeof(b))
		return -1;
	memcpy(b, s, len);
	b[len] = '\0';
	for (size_t i = 0; i < 3; i++) {
		struct tm tm;
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(b, fmts[i], &tm);
		if (end && *end == '\0')
			return timegm(&tm);
	}
	return -1;
}

void http_etag(const struct stat *st, char out[64])
{
	char *p = out;

	*p++ = '"';
	p = fmt_x64(p, (unsigned long long)st->st_size);
	*p++ = '-';
	p = fmt_x64(p, (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
			       (unsigned long long)st->st_mtim.tv_nsec);
	*p++ = '"';
	*p = '\0';
}

/* Digits only, no overflow past 2^62; -1 if not a number. */
static long long parse_num(const char *s, size_t len)
{
	long long n = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	return n;
}

int http_range(const char *v, size_t len, off_t size, off_t *first, off_t *last)
{
	const char *dash;
	long long a, b;

	if (!v)
		return 200;
	trim(&v, &len);
	if (len < 7 || strncasecmp(v, "bytes=", 6) != 0)
		return 200;
	v += 6;
	len -= 6;
	trim(&v, &len);
	if (memchr(v, ',', len))
		return 200; /* several ranges: serve the whole file instead */
	dash = memchr(v, '-', len);
	if (!dash)
		return 200;
	if (dash == v) { /* suffix: the last n bytes */
		b = parse_num(v + 1, len - 1);
		if (b < 0)
			return 200;
		if (b == 0 || size == 0)
			return 416;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 206;
	}
	a = parse_num(v, dash - v);
	if (a < 0)
		return 200;
	if (dash + 1 == v + len) {
		b = -1;
	} else {
		b = parse_num(dash + 1, v + len - dash - 1);
		if (b < 0 || b < a)
			return 200;
	}
	if (a >= size)
		return 416;
	*first = a;
	*last = (b < 0 || b >= size) ? size - 1 : b;
	return 206;
}

/* Weak comparison: W/ prefixes ignored, opaque tags compared exactly. */
static int etag_weak_eq(const char *a, size_t al, const char *b)
{
	size_t bl = strlen(b);

	if (al >= 2 && a[0] == 'W' && a[1] == '/')
		a += 2, al -= 2;
	if (bl >= 2 && b[0] == 'W' && b[1] == '/')
		b += 2, bl -= 2;
	return al == bl && memcmp(a, b, al) == 0;
}

int http_not_modified(const struct http_req *r, const char *etag, time_t mtime)
{
	if (r->if_none_match) {
		const char *p = r->if_none_match, *end = p + r->if_none_match_len;

		while (p < end) {
			const char *c = memchr(p, ',', end - p);
			const char *e = c ? c : end;
			const char *t = p;
			size_t tl = e - p;

			trim(&t, &tl);
			if ((tl == 1 && *t == '*') || etag_weak_eq(t, tl, etag))
				return 1;
			p = e + 1;
		}
		return 0;
	}
	return r->if_modified_since >= 0 && mtime <= r->if_modified_since;
}

int http_if_range_ok(const struct http_req *r, const char *etag, time_t mtime)
{
	const char *v = r->if_range;
	size_t vl = r->if_range_len;

	if (!v)
		return 1;
	if (vl && (v[0] == '"' || v[0] == 'W')) /* strong comparison only */
		return vl == strlen(etag) && memcmp(v, etag, vl) == 0;
	return http_parse_date(v, vl) == mtime;
}

/* Appends s to the head being built; *p becomes NULL once it would not fit. */
static void put(char **p, const char *end, const char *s)
{
	size_t n = strlen(s);

	if (!*p)
		return;
	if ((size_t)(end - *p) <= n) {
		*p = NULL;
		return;
	}
	memcpy(*p, s, n);
	*p += n;
}

/* Formatted by hand, once per response: see http_date. */
int http_format_head(char *out, size_t cap, int status, const char *ctype,
		     long long content_length, int keep_alive, const char *extra)
{
	char date[30], num[24], *p = out;
	const char *end = out + cap;

	if (status < 100 || status > 999 || cap == 0)
		return -1;
	http_date(time(NULL), date);
	*fmt_u64(num, (uint64_t)status, 3) = '\0';
	put(&p, end, "HTTP/1.1 ");
	put(&p, end, num);
	put(&p, end, " ");
	put(&p, end, http_reason(status));
	put(&p, end, "\r\nServer: ktlsd\r\nDate: ");
	put(&p, end, date);
	put(&p, end, "\r\n");
	if (ctype) {
		put(&p, end, "Content-Type: ");
		put(&p, end, ctype);
		put(&p, end, "\r\n");
	}
	if (content_length >= 0) {
		*fmt_u64(num, (uint64_t)content_length, 1) = '\0';
		put(&p, end, "Content-Length: ");
		put(&p, end, num);
		put(&p, end, "\r\n");
	}
	if (extra)
		put(&p, end, extra);
	put(&p, end, keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
	if (!p)
		return -1;
	*p = '\0';
	return (int)(p - out);
}
