/*
 * netlink_tlsstat.c - /proc/net/tls_stat, the kernel's kTLS counters
 * (ktls_stat_read; the library reads them to tell where an install landed).
 *
 * Not netlink: the third view of the same state beside sock_diag and
 * ethtool.  The set of counters grows with kernel versions (rekey counters
 * arrived in 6.14), so every "Name value" line is taken as printed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "netlink.h"

int tlsstat_parse(const char *text, struct ktls_stat_counter **out, size_t *n, char *err,
		  size_t errlen)
{
	struct ktls_stat_counter *v = NULL;
	size_t cnt = 0, lineno = 0;
	const char *p = text;

	*out = NULL;
	*n = 0;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[160];
		lineno++;
		if (len >= sizeof(line)) {
			free(v);
			return buf_seterr(err, errlen, "tls_stat line %zu is too long", lineno);
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (eol ? 1 : 0);

		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			continue;
		char *name = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		size_t nlen = (size_t)(s - name);
		while (isspace((unsigned char)*s))
			s++;
		char *end;
		errno = 0;
		unsigned long long val = strtoull(s, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (!isdigit((unsigned char)*s) || *end || errno) {
			free(v);
			return buf_seterr(err, errlen, "tls_stat line %zu is not 'Name value': %.40s",
					  lineno, line);
		}
		if (nlen >= sizeof(v->name)) {
			free(v);
			return buf_seterr(err, errlen, "tls_stat line %zu: name too long", lineno);
		}
		struct ktls_stat_counter *nv = realloc(v, (cnt + 1) * sizeof(*nv));
		if (!nv) {
			free(v);
			return buf_seterr(err, errlen, "out of memory");
		}
		v = nv;
		memcpy(v[cnt].name, name, nlen);
		v[cnt].name[nlen] = '\0';
		v[cnt].value = val;
		cnt++;
	}
	if (cnt == 0) {
		free(v);
		return buf_seterr(err, errlen, "tls_stat has no counters");
	}
	*out = v;
	*n = cnt;
	return 0;
}

KTLS_API int ktls_stat_read(const char *path, struct ktls_stat_counter **out, size_t *n,
			    char *err, size_t errlen)
{
	char buf[8192];
	FILE *f;

	if (!path)
		path = KTLS_STAT_PATH;
	f = fopen(path, "re");
	*out = NULL;
	*n = 0;
	if (!f) {
		int e = errno;
		if (e == ENOENT)
			buf_seterr(err, errlen, "kernel has no kTLS: %s absent", path);
		else
			buf_seterr(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	int bad = ferror(f) || !feof(f);
	fclose(f);
	if (bad) {
		errno = EIO;
		return buf_seterr(err, errlen, "%s: read failed or larger than %zu bytes", path,
				  sizeof(buf) - 1);
	}
	buf[len] = '\0';
	if (tlsstat_parse(buf, out, n, err, errlen) < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

KTLS_API void ktls_stat_free(struct ktls_stat_counter *v)
{
	free(v);
}
