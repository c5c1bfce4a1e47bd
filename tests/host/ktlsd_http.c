/*
 * ktlsd_http.c - unit tests of ktlsd's HTTP parser, range/conditional
 * logic and path resolution beneath the root, linked from the daemon's
 * internal archive (build/libktlsd.a).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/http.h"
#include "../../daemon/ktlsd/log.h"
#include "../../daemon/ktlsd/path.h"

static int parse(const char *s, struct http_req *r)
{
	return http_parse(s, strlen(s), r);
}

Test(http, simple_get)
{
	struct http_req r;
	const char *s = "GET /a/b.txt?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET";

	cr_assert_eq(parse(s, &r), (int)strlen(s) - 3);
	cr_expect_eq(r.method, HTTP_GET);
	cr_expect_eq(r.minor, 1);
	cr_expect(r.keep_alive);
	cr_expect_eq(r.target_len, 8);
	cr_expect(strncmp(r.target, "/a/b.txt", 8) == 0);
	cr_expect_str_eq(r.line, "GET /a/b.txt?x=1 HTTP/1.1");
}

Test(http, incomplete_needs_more)
{
	struct http_req r;

	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n", &r), 0);
	cr_expect_eq(parse("GET / HT", &r), 0);
	cr_expect_eq(parse("", &r), 0);
}

Test(http, head_bare_lf_leading_crlf)
{
	struct http_req r;
	const char *s = "\r\nHEAD / HTTP/1.1\nHost: x\n\n";

	cr_assert_eq(parse(s, &r), (int)strlen(s));
	cr_expect_eq(r.method, HTTP_HEAD);
}

Test(http, keep_alive_rules)
{
	struct http_req r;

	parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
	cr_expect_not(r.keep_alive);
	cr_assert_gt(parse("GET / HTTP/1.0\r\n\r\n", &r), 0);
	cr_expect_not(r.keep_alive);
	parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r);
	cr_expect(r.keep_alive);
	parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, keep-alive\r\n\r\n", &r);
	cr_expect(r.keep_alive);
}

Test(http, errors)
{
	struct http_req r;

	cr_expect_eq(parse("POST / HTTP/1.1\r\nHost: x\r\n\r\n", &r), -405);
	cr_expect_str_eq(r.line, "POST / HTTP/1.1");
	cr_expect_eq(parse("get / HTTP/1.1\r\nHost: x\r\n\r\n", &r), -405);
	cr_expect_eq(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n", &r), -505);
	cr_expect_eq(parse("GET / HTTP/1.1\r\n\r\n", &r), -400);               /* no Host */
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET /  HTTP/1.1\r\nHost: x\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET / HTTP/1.10\r\nHost: x\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET foo HTTP/1.1\r\nHost: x\r\n\r\n", &r), -400);
	cr_expect_eq(http_parse("\x16\x03\x01\x02\x00\x01\r\n\r\n", 10, &r), -400);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", &r), -413);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r) > 0, 1);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r), -400);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &r), -413);
}

Test(http, caps)
{
	struct http_req r;
	char *b = malloc(20000);

	/* a request line longer than the cap: 414 */
	memcpy(b, "GET /", 5);
	memset(b + 5, 'a', 9000);
	cr_expect_eq(http_parse(b, 9005, &r), -414);
	/* a long but complete target beyond 4 KiB: 414 */
	sprintf(b, "GET /%0*d HTTP/1.1\r\nHost: x\r\n\r\n", 5000, 0);
	cr_expect_eq(http_parse(b, strlen(b), &r), -414);
	/* headers beyond the cap: 431 */
	strcpy(b, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 400; i++)
		strcat(b, "X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n");
	cr_expect_eq(http_parse(b, strlen(b), &r), -431);
	/* just under the cap is fine */
	strcpy(b, "GET / HTTP/1.1\r\nHost: x\r\n");
	while (strlen(b) < HTTP_HEADER_CAP - 40)
		strcat(b, "X: y\r\n");
	strcat(b, "\r\n");
	cr_expect_gt(http_parse(b, strlen(b), &r), 0);
	free(b);
}

Test(http, absolute_form)
{
	struct http_req r;

	cr_assert_gt(parse("GET https://h:1/x/y HTTP/1.1\r\nHost: h\r\n\r\n", &r), 0);
	cr_expect_eq(r.target_len, 4);
	cr_expect(strncmp(r.target, "/x/y", 4) == 0);
	cr_assert_gt(parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &r), 0);
	cr_expect_eq(r.target_len, 1);
}

Test(http, ranges)
{
	off_t a = -1, b = -1;

	cr_expect_eq(http_range("bytes=0-9", 9, 100, &a, &b), 206);
	cr_expect(a == 0 && b == 9);
	cr_expect_eq(http_range("bytes=90-", 9, 100, &a, &b), 206);
	cr_expect(a == 90 && b == 99);
	cr_expect_eq(http_range("bytes=-10", 9, 100, &a, &b), 206);
	cr_expect(a == 90 && b == 99);
	cr_expect_eq(http_range("bytes=-1000", 11, 100, &a, &b), 206);
	cr_expect(a == 0 && b == 99);
	cr_expect_eq(http_range("bytes=50-1000", 13, 100, &a, &b), 206);
	cr_expect(a == 50 && b == 99);
	cr_expect_eq(http_range("bytes=100-", 10, 100, &a, &b), 416);
	cr_expect_eq(http_range("bytes=-0", 8, 100, &a, &b), 416);
	cr_expect_eq(http_range("bytes=0-", 8, 0, &a, &b), 416);
	cr_expect_eq(http_range("bytes=5-1", 9, 100, &a, &b), 200);
	cr_expect_eq(http_range("bytes=0-1,5-6", 13, 100, &a, &b), 200);
	cr_expect_eq(http_range("items=0-1", 9, 100, &a, &b), 200);
	cr_expect_eq(http_range("bytes=x-1", 9, 100, &a, &b), 200);
	cr_expect_eq(http_range(NULL, 0, 100, &a, &b), 200);
}

Test(http, conditionals)
{
	struct http_req r;
	char s[256], d[30];
	time_t mt = 1700000000;

	http_date(mt, d);
	cr_expect_eq(http_parse_date(d, strlen(d)), mt);
	cr_expect_eq(http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", 30), 784111777);
	cr_expect_eq(http_parse_date("Sun Nov  6 08:49:37 1994", 24), 784111777);
	cr_expect_eq(http_parse_date("yesterday", 9), -1);

	snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: %s\r\n\r\n", d);
	parse(s, &r);
	cr_expect(http_not_modified(&r, "\"e\"", mt));
	cr_expect_not(http_not_modified(&r, "\"e\"", mt + 1));

	parse("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\", W/\"e\"\r\n\r\n", &r);
	cr_expect(http_not_modified(&r, "\"e\"", mt));
	cr_expect_not(http_not_modified(&r, "\"f\"", mt));
	parse("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n", &r);
	cr_expect(http_not_modified(&r, "\"zz\"", mt));
	/* If-None-Match decides alone, even with a matching date */
	snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\nIf-Modified-Since: %s\r\n\r\n", d);
	parse(s, &r);
	cr_expect_not(http_not_modified(&r, "\"e\"", mt));

	parse("GET / HTTP/1.1\r\nHost: x\r\nIf-Range: \"e\"\r\n\r\n", &r);
	cr_expect(http_if_range_ok(&r, "\"e\"", mt));
	cr_expect_not(http_if_range_ok(&r, "\"f\"", mt));
	parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	cr_expect(http_if_range_ok(&r, "\"f\"", mt));
}

/* Finding: the ETag carried the inode number (what file system, which file). */
Test(http, etag_from_size_and_mtime_only)
{
	struct stat a = { 0 }, b;
	char ea[64], eb[64], ino[32];

	a.st_ino = 0xdeadbeef;
	a.st_size = 4096;
	a.st_mtim.tv_sec = 1700000000;
	a.st_mtim.tv_nsec = 5;
	b = a;
	b.st_ino = 77;
	http_etag(&a, ea);
	http_etag(&b, eb);
	cr_expect_str_eq(ea, eb, "the inode changed the ETag");
	snprintf(ino, sizeof(ino), "%llx", (unsigned long long)a.st_ino);
	cr_expect_null(strstr(ea, ino), "%s carries the inode", ea);
	b.st_mtim.tv_nsec = 6;
	http_etag(&b, eb);
	cr_expect_str_neq(ea, eb, "a new mtime kept the ETag");
	b = a;
	b.st_size = 4097;
	http_etag(&b, eb);
	cr_expect_str_neq(ea, eb, "a new size kept the ETag");
}

/* Finding: bytes >= 0x80 (0x9b is a terminal's CSI) reached the access log raw. */
Test(http, log_escape_everything_unprintable)
{
	char o[128];
	struct http_req r;

	cr_expect_eq(log_escape(o, sizeof(o), "GET /\xc2\x9b" "31m\xff", 11, 1), 20);
	cr_expect_str_eq(o, "GET /\\xc2\\x9b31m\\xff");
	log_escape(o, sizeof(o), "a\"b\\c\x1b\x7f\n", 8, 1);
	cr_expect_str_eq(o, "a\\x22b\\x5cc\\x1b\\x7f\\x0a");
	log_escape(o, sizeof(o), "a\"b", 3, 0);
	cr_expect_str_eq(o, "a\"b", "quotes escaped outside a quoted field");
	/* cut at a whole escape, never in the middle of one */
	cr_expect_eq(log_escape(o, 6, "ab\xff\xff", 4, 0), 2);
	cr_expect_str_eq(o, "ab");
	/* the parser keeps the raw line: escaping is the log's job */
	parse("GET /\x9b HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	cr_expect_str_eq(r.line, "GET /\x9b HTTP/1.1");
}

/* The access log line, formatted by hand: nginx's combined prefix, then status, bytes, seconds. */
Test(http, access_log_line_format)
{
	char line[2000], got[4096], want[4096];
	int fd[2];
	ssize_t n;
	time_t t = time(NULL);
	struct tm tm;
	char ts[40];

	cr_assert_eq(pipe(fd), 0);
	log_access_fd(fd[1]);
	log_access("127.0.0.1", "GET /a\"b HTTP/1.1", 206, 18446744073709551615ULL, 1234567);
	log_access("::1", "HEAD / HTTP/1.0", 404, 0, 5);
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	log_access("10.0.0.1", line, 200, 1, 2000000);
	log_access_fd(-1);
	close(fd[1]);
	n = read(fd[0], got, sizeof(got) - 1);
	close(fd[0]);
	cr_assert_gt(n, 0);
	got[n] = '\0';
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%d/%b/%Y:%H:%M:%S +0000", &tm);
	snprintf(want, sizeof(want),
		 "127.0.0.1 - - [%s] \"GET /a\\x22b HTTP/1.1\" 206 18446744073709551615 1.234567\n"
		 "::1 - - [%s] \"HEAD / HTTP/1.0\" 404 0 0.000005\n"
		 "10.0.0.1 - - [%s] \"%.1023s\" 200 1 2.000000\n", ts, ts, ts, line);
	cr_expect_str_eq(got, want, "(a second boundary between the two clocks fails this once)");
}

/* The server name a client sent, for sni= in the handshake line. */
Test(http, log_escape_name_strict_and_capped)
{
	char o[LOG_NAME_MAX + 1], in[400], want[LOG_NAME_MAX + 1];

	log_escape_name(o, NULL);
	cr_expect_str_eq(o, "-", "no name");
	log_escape_name(o, "-");
	cr_expect_str_eq(o, "\\x2d", "a lone \"-\" reads as no name");
	log_escape_name(o, "");
	cr_expect_str_eq(o, "");
	log_escape_name(o, "Www-1.Example_x.com");
	cr_expect_str_eq(o, "Www-1.Example_x.com");
	/* printable but able to fake a field, a quote, '\', control and high bytes */
	log_escape_name(o, "a b=c(d)\"e\\f\x1b\x80~");
	cr_expect_str_eq(o, "a\\x20b\\x3dc\\x28d\\x29\\x22e\\x5cf\\x1b\\x80\\x7e");
	/* 255 shown bytes fit whole; one more and it is cut to 255 with "..." */
	memset(in, 'a', 255);
	in[255] = '\0';
	log_escape_name(o, in);
	cr_expect_str_eq(o, in);
	strcpy(in + 255, "b");
	log_escape_name(o, in);
	memset(want, 'a', 252);
	strcpy(want + 252, "...");
	cr_expect_str_eq(o, want);
	/* cut at a whole escape: 250 plain bytes and then escapes leave 2 free of 255 */
	memset(in, 'a', 250);
	memset(in + 250, ' ', 10);
	in[260] = '\0';
	log_escape_name(o, in);
	memset(want, 'a', 250);
	strcpy(want + 250, "...");
	cr_expect_str_eq(o, want);
	cr_expect_leq(strlen(o), LOG_NAME_MAX);
}

Test(http, mime_and_head)
{
	char b[512];
	int n;

	cr_expect_str_eq(http_mime("a/index.html"), "text/html; charset=utf-8");
	cr_expect_str_eq(http_mime("x.PNG"), "image/png");
	cr_expect_str_eq(http_mime("x.tar.gz"), "application/gzip");
	cr_expect_str_eq(http_mime("noext"), "application/octet-stream");
	cr_expect_str_eq(http_mime("dir.d/noext"), "application/octet-stream");
	n = http_format_head(b, sizeof(b), 405, "text/plain", 3, 0, "Allow: GET, HEAD\r\n");
	cr_assert_gt(n, 0);
	cr_expect(strstr(b, "HTTP/1.1 405 Method Not Allowed\r\n") == b);
	cr_expect(strstr(b, "Allow: GET, HEAD\r\n"));
	cr_expect(strstr(b, "Content-Length: 3\r\n"));
	cr_expect(strstr(b, "Connection: close\r\n\r\n"));
	cr_expect_eq(http_format_head(b, 20, 200, NULL, 1, 1, NULL), -1);
}

/* The head, the ETag and the dates are formatted by hand: byte for byte what snprintf gave. */
Test(http, head_etag_and_dates_exact)
{
	char b[512], want[512], date[30], d1[30], d2[30];
	struct stat st = { .st_size = 16384 };
	int n;

	http_date(784111777, d1);
	cr_expect_str_eq(d1, "Sun, 06 Nov 1994 08:49:37 GMT");
	http_date(0, d2);
	cr_expect_str_eq(d2, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_date(784111777, d1); /* from the memo */
	cr_expect_str_eq(d1, "Sun, 06 Nov 1994 08:49:37 GMT");
	http_date(1, d2); /* a third time evicts one */
	http_date(0, d1);
	cr_expect_str_eq(d1, "Thu, 01 Jan 1970 00:00:00 GMT");
	st.st_mtim.tv_sec = 1764806400;
	st.st_mtim.tv_nsec = 123;
	http_etag(&st, b);
	cr_expect_str_eq(b, "\"4000-187dda120956007b\"");
	st.st_size = 0;
	st.st_mtim.tv_sec = 0;
	st.st_mtim.tv_nsec = 0;
	http_etag(&st, b);
	cr_expect_str_eq(b, "\"0-0\"");
	n = http_format_head(b, sizeof(b), 206, "image/png", 9223372036854775807LL, 1,
			     "ETag: \"x\"\r\n");
	http_date(time(NULL), date);
	snprintf(want, sizeof(want),
		 "HTTP/1.1 206 Partial Content\r\nServer: ktlsd\r\nDate: %s\r\nContent-Type: "
		 "image/png\r\nContent-Length: 9223372036854775807\r\nETag: \"x\"\r\n"
		 "Connection: keep-alive\r\n\r\n", date);
	cr_expect_str_eq(b, want, "(a second boundary between the two clocks fails this once)");
	cr_expect_eq(n, (int)strlen(want));
	n = http_format_head(b, sizeof(b), 304, NULL, -1, 0, NULL);
	snprintf(want, sizeof(want), "HTTP/1.1 304 Not Modified\r\nServer: ktlsd\r\nDate: %s\r\n"
		 "Connection: close\r\n\r\n", date);
	cr_expect_str_eq(b, want);
	/* exactly full (the NUL needs one more byte) and one short */
	cr_expect_eq(http_format_head(b, (size_t)n + 1, 304, NULL, -1, 0, NULL), n);
	cr_expect_eq(http_format_head(b, (size_t)n, 304, NULL, -1, 0, NULL), -1);
}

/* ---- paths ---------------------------------------------------------- */

Test(path, decode)
{
	char o[256];

	cr_expect_eq(path_decode("/", 1, o, sizeof(o)), 0);
	cr_expect_str_eq(o, ".");
	cr_expect_eq(path_decode("//a/./b%20c/", 12, o, sizeof(o)), 0);
	cr_expect_str_eq(o, "a/b c");
	cr_expect_eq(path_decode("/../etc/passwd", 14, o, sizeof(o)), -403);
	cr_expect_eq(path_decode("/a/%2e%2e/%2E%2E/x", 18, o, sizeof(o)), -403);
	cr_expect_eq(path_decode("/a/..", 5, o, sizeof(o)), -403);
	cr_expect_eq(path_decode("/a%00b", 6, o, sizeof(o)), -400);
	cr_expect_eq(path_decode("/a%2", 4, o, sizeof(o)), -400);
	cr_expect_eq(path_decode("/a%zz", 5, o, sizeof(o)), -400);
	cr_expect_eq(path_decode("/a%2fb", 6, o, sizeof(o)), 0);
	cr_expect_str_eq(o, "a/b");
	cr_expect_eq(path_decode("/abcdef", 7, o, 4), -414);
	/* "..." is an ordinary name */
	cr_expect_eq(path_decode("/...", 4, o, sizeof(o)), 0);
	cr_expect_str_eq(o, "...");
}

static char root[256], outside[256];

static void mkfile(const char *dir, const char *name, const char *data)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	cr_assert(f);
	fputs(data, f);
	fclose(f);
}

static void tree(void)
{
	char p[600];

	snprintf(root, sizeof(root), "/tmp/ktlsd-path-XXXXXX");
	cr_assert(mkdtemp(root));
	snprintf(outside, sizeof(outside), "/tmp/ktlsd-out-XXXXXX");
	cr_assert(mkdtemp(outside));
	mkfile(outside, "secret", "s");
	mkfile(root, "a.txt", "hello");
	snprintf(p, sizeof(p), "%s/sub", root);
	mkdir(p, 0755);
	mkfile(p, "index.html", "<p>");
	snprintf(p, sizeof(p), "%s/empty", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/in-link", root);
	cr_assert_eq(symlink("a.txt", p), 0);
	snprintf(p, sizeof(p), "%s/out-link", root);
	cr_assert_eq(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/abs-link", root);
	cr_assert_eq(symlink("/etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/fifo", root);
	cr_assert_eq(mkfifo(p, 0644), 0);
}

static void untree(void)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", root, outside);
	cr_expect_eq(system(cmd), 0);
}

static int try_open(int rfd, const char *rel, char *name)
{
	struct stat st;
	int fd = -1, s = path_open(rfd, rel, &fd, &st, name, 256);

	if (s == 200)
		close(fd);
	return s;
}

/* Finding: GET /.hidden was served (.git/, .env under the root). */
Test(path, hidden_names)
{
	cr_expect(path_hidden(".env"));
	cr_expect(path_hidden(".git/config"));
	cr_expect(path_hidden("a/.git/HEAD"));
	cr_expect(path_hidden("a/b/.htpasswd"));
	cr_expect(path_hidden(".well-known/.secret"));
	cr_expect(path_hidden("a/.well-known/x"), "only the top-level .well-known is public");
	cr_expect(path_hidden(".well-knownx/y"));
	cr_expect_not(path_hidden("."));
	cr_expect_not(path_hidden("a/b.c"));
	cr_expect_not(path_hidden("a./b"));
	cr_expect_not(path_hidden(".well-known"));
	cr_expect_not(path_hidden(".well-known/acme-challenge/tok"));
}

Test(path, open_beneath_root, .init = tree, .fini = untree)
{
	int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char name[256];

	cr_assert_geq(rfd, 0);
	cr_expect_eq(try_open(rfd, "a.txt", name), 200);
	cr_expect_eq(try_open(rfd, "in-link", name), 200);
	cr_expect_eq(try_open(rfd, "sub", name), 200);
	cr_expect_str_eq(name, "sub/index.html");
	cr_expect_eq(try_open(rfd, "empty", name), 403);      /* no listings */
	cr_expect_eq(try_open(rfd, "nope", name), 404);
	cr_expect_eq(try_open(rfd, "a.txt/x", name), 404);
	cr_expect_eq(try_open(rfd, "out-link/secret", name), 403);
	cr_expect_eq(try_open(rfd, "abs-link", name), 403);
	cr_expect_eq(try_open(rfd, "fifo", name), 403);
	/* raw "..", never produced by path_decode, is still refused */
	cr_expect_eq(try_open(rfd, "../etc/passwd", name), 403);
	close(rfd);
}

Test(path, fallback_check, .init = tree, .fini = untree)
{
	int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char p[600];
	int fd;

	snprintf(p, sizeof(p), "%s/out-link/secret", root);
	fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_expect_not(path_beneath(rfd, fd));
	close(fd);
	snprintf(p, sizeof(p), "%s/a.txt", root);
	fd = open(p, O_RDONLY);
	cr_expect(path_beneath(rfd, fd));
	close(fd);
	close(rfd);
}
