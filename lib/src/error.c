/* error.c - one human-readable reason per object. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "internal.h"

/* Last context error of this thread, and the context it belongs to. */
static __thread const struct ktls_ctx *tls_err_ctx;
static __thread char tls_err_buf[KTLS_ERRLEN];

int buf_vseterr(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
	return -1;
}

int buf_seterr(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vseterr(buf, len, fmt, ap);
	va_end(ap);
	return -1;
}

int ctx_seterr(const struct ktls_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	tls_err_ctx = ctx;
	va_start(ap, fmt);
	buf_vseterr(tls_err_buf, sizeof(tls_err_buf), fmt, ap);
	va_end(ap);
	return -1;
}

const char *ctx_geterr(const struct ktls_ctx *ctx)
{
	return ctx && ctx == tls_err_ctx ? tls_err_buf : "";
}

void ctx_clearerr(const struct ktls_ctx *ctx)
{
	if (ctx == tls_err_ctx)
		tls_err_buf[0] = '\0';
}

const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e, last = 0;

	/* The first error is usually the root cause; later ones add context. */
	while ((e = ERR_get_error()) != 0)
		if (!last)
			last = e;
	if (!last) {
		snprintf(buf, len, "unknown OpenSSL error");
		return buf;
	}
	const char *r = ERR_reason_error_string(last);
	if (r)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(last, buf, len);
	return buf;
}

void secure_zero(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}
