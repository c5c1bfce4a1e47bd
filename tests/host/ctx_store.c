/*
 * ctx_store.c - the trust store: files, memory (PEM and DER, certificates
 * and CRLs), duplicates, errors, and ktls_ctx_cert_store_stats() compared
 * with Python's SSLContext.cert_store_stats() after the same loads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "internal.h"
#include "../common/testutil.h"

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n + 1);
	cr_assert(buf);
	cr_assert_eq(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * Apply one load to ctx.  spec: "file:NAME" (load_verify_locations),
 * "pem:NAME" (the file's text through load_verify_mem), "der:A+B"
 * (concatenated DER files through load_verify_mem).
 */
static void load(ktls_ctx *ctx, const char *spec)
{
	const char *name = strchr(spec, ':') + 1;

	if (strncmp(spec, "file:", 5) == 0) {
		cr_assert_eq(ktls_ctx_load_verify_locations(ctx, tu_cert(name), NULL), 0, "%s: %s",
			     spec, ktls_ctx_error(ctx));
	} else if (strncmp(spec, "pem:", 4) == 0) {
		size_t len;
		void *buf = slurp(tu_cert(name), &len);

		cr_assert_eq(ktls_ctx_load_verify_mem(ctx, buf, len), 0, "%s: %s", spec,
			     ktls_ctx_error(ctx));
		free(buf);
	} else {
		char all[16384], part[128];
		size_t used = 0;

		while (*name) {
			size_t n = strcspn(name, "+"), len;
			void *buf;

			snprintf(part, sizeof(part), "%.*s", (int)n, name);
			buf = slurp(tu_cert(part), &len);
			cr_assert_lt(used + len, sizeof(all));
			memcpy(all + used, buf, len);
			used += len;
			free(buf);
			name += n + (name[n] == '+');
		}
		cr_assert_eq(ktls_ctx_load_verify_mem(ctx, all, used), 0, "%s: %s", spec,
			     ktls_ctx_error(ctx));
	}
}

/* Python does the same loads (cadata as str for PEM, bytes for DER). */
static void python_stats(const char *const *specs, size_t n, char *out, size_t cap)
{
	char cmd[8192];
	size_t used;

	used = snprintf(cmd, sizeof(cmd),
			"python3 -c '\nimport ssl, sys, os\nd = os.environ[\"KTLS_TEST_CERTS\"]\n"
			"c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
			"for s in sys.argv[1:]:\n"
			"    kind, names = s.split(\":\", 1)\n"
			"    if kind == \"file\": c.load_verify_locations(cafile=d + \"/\" + names)\n"
			"    elif kind == \"pem\": c.load_verify_locations(cadata=open(d + \"/\" + "
			"names).read())\n"
			"    else: c.load_verify_locations(cadata=b\"\".join(open(d + \"/\" + x, "
			"\"rb\").read() for x in names.split(\"+\")))\n"
			"s = c.cert_store_stats()\n"
			"print(s[\"x509\"], s[\"x509_ca\"], s[\"crl\"])\n' ");
	for (size_t i = 0; i < n; i++)
		used += snprintf(cmd + used, sizeof(cmd) - used, "%s ", specs[i]);
	cr_assert_lt(used, sizeof(cmd));
	setenv("KTLS_TEST_CERTS", tu_cert(""), 0);
	cr_assert_eq(tu_run(cmd, out, cap), 0, "python3 failed: %s", out);
}

static void compare(const char *expect, const char *const *specs, size_t n)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	struct ktls_cert_store_stats st;
	char ours[64], py[256];

	cr_assert(ctx);
	for (size_t i = 0; i < n; i++)
		load(ctx, specs[i]);
	cr_assert_eq(ktls_ctx_cert_store_stats(ctx, &st), 0);
	snprintf(ours, sizeof(ours), "%u %u %u\n", st.x509, st.x509_ca, st.crl);
	python_stats(specs, n, py, sizeof(py));
	cr_expect_str_eq(ours, py, "ours (x509 x509_ca crl) %s vs Python %s", ours, py);
	cr_expect_str_eq(ours, expect, "ours %s vs the expected %s", ours, expect);
	ktls_ctx_free(ctx);
}

#define COMPARE(expect, ...)                                                     \
	do {                                                                     \
		const char *const s_[] = {__VA_ARGS__};                          \
		compare(expect, s_, sizeof(s_) / sizeof(s_[0]));                 \
	} while (0)

Test(ctx_store, bundle_2ca_1leaf)
{
	COMPARE("3 2 0\n", "file:bundle-2ca-1leaf.pem");
}

Test(ctx_store, ca_with_crl)
{
	COMPARE("1 1 1\n", "file:ca-with-crl.pem");
}

/*
 * Python's cadata reads certificates only and drops the CRL; ours takes
 * CRLs from memory too (documented), so this one has no Python oracle.
 */
Test(ctx_store, crl_from_memory)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	struct ktls_cert_store_stats st;

	cr_assert(ctx);
	load(ctx, "pem:ca-with-crl.pem");
	load(ctx, "pem:ca.crl");
	cr_assert_eq(ktls_ctx_cert_store_stats(ctx, &st), 0);
	cr_expect(st.x509 == 1 && st.x509_ca == 1 && st.crl == 1, "%u %u %u", st.x509, st.x509_ca,
		  st.crl);
	ktls_ctx_free(ctx);
}

Test(ctx_store, duplicates_counted_once)
{
	COMPARE("1 1 0\n", "file:ca.pem", "file:ca.pem", "pem:ca.pem", "der:ca.der");
	COMPARE("3 2 1\n", "file:bundle-2ca-1leaf.pem", "file:ca-with-crl.pem", "pem:ca.pem",
		"der:other-ca.der");
}

Test(ctx_store, leaf_then_ca)
{
	/* test_ssl.test_cert_store_stats: a leaf counts as x509, not x509_ca. */
	COMPARE("2 1 0\n", "file:server-rsa.pem", "file:ca.pem");
}

/* X509_check_ca() decides x509_ca: v1 self-signed and keyCertSign-only count. */
Test(ctx_store, what_counts_as_a_ca)
{
	COMPARE("1 1 0\n", "file:v1-ca.pem");
	COMPARE("1 1 0\n", "file:ku-only-ca.pem");
	COMPARE("1 0 0\n", "file:no-bc-selfsigned.pem");
}

Test(ctx_store, concatenated_der)
{
	COMPARE("2 2 0\n", "der:ca.der+other-ca.der");
}

Test(ctx_store, own_chain_is_not_trust)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_SERVER);
	struct ktls_cert_store_stats st;

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_load_cert_chain(ctx, tu_cert("server-ec.pem"), tu_cert("server-ec.key")),
		     0);
	cr_assert_eq(ktls_ctx_cert_store_stats(ctx, &st), 0);
	cr_expect(st.x509 == 0 && st.x509_ca == 0 && st.crl == 0);
	ktls_ctx_free(ctx);
}

static void expect_mem_err(ktls_ctx *ctx, const void *buf, size_t len, const char *want)
{
	struct ktls_cert_store_stats st;

	cr_expect_eq(ktls_ctx_load_verify_mem(ctx, buf, len), -1, "accepted: want \"%s\"", want);
	cr_expect(strstr(ktls_ctx_error(ctx), want) != NULL, "\"%s\" lacks \"%s\"",
		  ktls_ctx_error(ctx), want);
	cr_assert_eq(ktls_ctx_cert_store_stats(ctx, &st), 0);
	cr_expect(st.x509 == 0 && st.crl == 0, "a refused load added %u certs, %u CRLs", st.x509,
		  st.crl);
}

Test(ctx_store, mem_errors)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	size_t len, klen;
	char *der = slurp(tu_cert("ca.der"), &len);
	char *key = slurp(tu_cert("server-ec.key"), &klen);
	char *pem = slurp(tu_cert("bundle-2ca-1leaf.pem"), &len);
	char *der2 = malloc(len + 8), *p;
	size_t dlen;

	cr_assert(ctx && der2);
	expect_mem_err(ctx, "garbage", 7, "no certificate or CRL found in memory (neither PEM nor DER)");
	expect_mem_err(ctx, "", 0, "no certificate or CRL found in memory (empty)");
	expect_mem_err(ctx, NULL, 5, "load_verify_mem: data is NULL");
	expect_mem_err(ctx, key, klen, "no certificate or CRL found in memory");

	/* A broken second certificate: nothing of the input is added. */
	p = strstr(pem + 30, "-----BEGIN CERTIFICATE-----");
	cr_assert(p);
	p[40] = '!';
	expect_mem_err(ctx, pem, len, "memory: ");

	/* Good DER followed by junk: refused, naming the offset, nothing added. */
	free(der);
	der = slurp(tu_cert("ca.der"), &dlen);
	memcpy(der2, der, dlen);
	memcpy(der2 + dlen, "\x30\x03junk", 7);
	char want[80];
	snprintf(want, sizeof(want), "memory: bytes from offset %zu are not a DER certificate or CRL",
		 dlen);
	expect_mem_err(ctx, der2, dlen + 7, want);

	free(der);
	free(der2);
	free(key);
	free(pem);
	ktls_ctx_free(ctx);
}

Test(ctx_store, locations_errors)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	char want[512];

	cr_assert(ctx);
	cr_expect_eq(ktls_ctx_load_verify_locations(ctx, NULL, NULL), -1);
	cr_expect_str_eq(ktls_ctx_error(ctx), "load_verify_locations: cafile and capath are both NULL");
	cr_expect_eq(ktls_ctx_load_verify_locations(ctx, tu_cert("no-such.pem"), NULL), -1);
	snprintf(want, sizeof(want), "cafile %s: No such file or directory", tu_cert("no-such.pem"));
	cr_expect_str_eq(ktls_ctx_error(ctx), want);
	cr_expect_eq(ktls_ctx_load_verify_locations(ctx, tu_cert("server-ec.key"), NULL), -1);
	snprintf(want, sizeof(want), "no certificate or CRL found in cafile %s",
		 tu_cert("server-ec.key"));
	cr_expect_str_eq(ktls_ctx_error(ctx), want);
	cr_expect_eq(ktls_ctx_load_verify_locations(ctx, NULL, tu_cert("ca.pem")), -1);
	snprintf(want, sizeof(want), "capath %s: Not a directory", tu_cert("ca.pem"));
	cr_expect_str_eq(ktls_ctx_error(ctx), want);
	cr_expect_eq(ktls_ctx_load_verify_locations(ctx, NULL, tu_cert("no-such-dir")), -1);
	ktls_ctx_free(ctx);
}

/* capath is searched lazily by OpenSSL: nothing counted before a handshake. */
Test(ctx_store, capath_is_lazy)
{
	ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
	struct ktls_cert_store_stats st;

	cr_assert(ctx);
	cr_assert_eq(ktls_ctx_load_verify_locations(ctx, NULL, tu_cert("capath")), 0, "%s",
		     ktls_ctx_error(ctx));
	cr_assert_eq(ktls_ctx_cert_store_stats(ctx, &st), 0);
	cr_expect_eq(st.x509, 0);
	ktls_ctx_free(ctx);
}
