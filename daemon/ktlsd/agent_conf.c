/*
 * agent_conf.c - the agent's configuration file (see
 * daemon/agent.conf.example for every key).  Format: "key = value" lines,
 * '#' starts a comment line, blank lines ignored.  An unknown key or a
 * bad value is an error naming the file and line: a typo in a security
 * setting must not pass silently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

void agent_conf_defaults(struct agent_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = AGENT_LOG_INFO;
	c->handshake_timeout_ms = 10000;
	c->max_handshakes = 64;
}

void agent_conf_free(struct agent_conf *c)
{
	for (unsigned i = 0; i < c->nkeyrings; i++)
		free(c->keyrings[i]);
	free(c->truststore);
	free(c->crl);
	free(c->certificate);
	free(c->private_key);
	agent_conf_defaults(c);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int num(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi || *v == '-')
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

/* One "key = value"; 0, or -1 with why (no location). */
static int apply(struct agent_conf *c, const char *k, char *v, char *why, size_t whylen)
{
	if (!*v) {
		snprintf(why, whylen, "%s has no value", k);
		return -1;
	}
	if (!strcmp(k, "log_level")) {
		if (!strcmp(v, "error"))
			c->log_level = AGENT_LOG_ERROR;
		else if (!strcmp(v, "info"))
			c->log_level = AGENT_LOG_INFO;
		else if (!strcmp(v, "debug"))
			c->log_level = AGENT_LOG_DEBUG;
		else {
			snprintf(why, whylen, "log_level must be error, info or debug, not '%s'", v);
			return -1;
		}
		return 0;
	}
	if (!strcmp(k, "handshake_timeout_ms")) {
		if (num(v, 100, 600000, &c->handshake_timeout_ms)) {
			snprintf(why, whylen, "handshake_timeout_ms must be 100..600000");
			return -1;
		}
		return 0;
	}
	if (!strcmp(k, "max_handshakes")) {
		if (num(v, 1, 4096, &c->max_handshakes)) {
			snprintf(why, whylen, "max_handshakes must be 1..4096");
			return -1;
		}
		return 0;
	}
	if (!strcmp(k, "keyrings")) {
		/* Replaces earlier lines: names separated by spaces or commas. */
		for (unsigned i = 0; i < c->nkeyrings; i++)
			free(c->keyrings[i]);
		c->nkeyrings = 0;
		for (char *save = NULL, *t = strtok_r(v, " ,\t", &save); t;
		     t = strtok_r(NULL, " ,\t", &save)) {
			if (c->nkeyrings == AGENT_MAX_KEYRINGS) {
				snprintf(why, whylen, "more than %d keyrings", AGENT_MAX_KEYRINGS);
				return -1;
			}
			if (!(c->keyrings[c->nkeyrings] = strdup(t))) {
				snprintf(why, whylen, "out of memory");
				return -1;
			}
			c->nkeyrings++;
		}
		return 0;
	}
	struct { const char *key; char **dst; } paths[] = {
		{ "x509.truststore", &c->truststore },
		{ "x509.crl", &c->crl },
		{ "x509.certificate", &c->certificate },
		{ "x509.private_key", &c->private_key },
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strcmp(k, paths[i].key))
			continue;
		if (*v != '/') {
			snprintf(why, whylen, "%s must be an absolute path", k);
			return -1;
		}
		if (set_str(paths[i].dst, v)) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		return 0;
	}
	snprintf(why, whylen, "unknown key '%s'", k);
	return -1;
}

int agent_conf_parse(struct agent_conf *c, const char *text, const char *path, char *err,
		     size_t errlen)
{
	char *copy = strdup(text), *save = NULL, why[200];
	unsigned lineno = 0;
	int rc = 0;

	if (!copy) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	/* strtok_r would skip empty lines and so miscount: walk by hand. */
	for (char *line = copy, *next; line; line = next) {
		char *k, *v, *eq;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		k = trim(line);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		v = trim(eq + 1);
		k = trim(k);
		if (apply(c, k, v, why, sizeof(why))) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	(void)save;
	free(copy);
	if (rc == 0 && !c->certificate != !c->private_key) {
		snprintf(err, errlen, "%s: x509.certificate and x509.private_key go together", path);
		rc = -1;
	}
	return rc;
}

int agent_conf_load(struct agent_conf *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text;
	long n;
	int rc;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (1 << 20) || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		snprintf(err, errlen, "%s: unreadable or larger than 1 MiB", path);
		return -1;
	}
	text = calloc(1, (size_t)n + 1);
	if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
		free(text);
		fclose(f);
		snprintf(err, errlen, "%s: read failed", path);
		return -1;
	}
	fclose(f);
	rc = agent_conf_parse(c, text, path, err, errlen);
	free(text);
	return rc;
}
