/* error.c - one human-readable reason per object. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "internal.h"

/* Last context error of this thread, and the context it belongs to. */
static __thread const struct ktls_ctx *tls_err_ctx;
static __thread char tls_err_buf[KTLS_ERRLEN];
static __thread int tls_err_code;

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
	tls_err_code = KTLS_ERR_INTERNAL;
	va_start(ap, fmt);
	buf_vseterr(tls_err_buf, sizeof(tls_err_buf), fmt, ap);
	va_end(ap);
	return -1;
}

int ctx_fail(const struct ktls_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	tls_err_ctx = ctx;
	tls_err_code = code;
	va_start(ap, fmt);
	buf_vseterr(tls_err_buf, sizeof(tls_err_buf), fmt, ap);
	va_end(ap);
	return -1;
}

int ctx_geterr_code(const struct ktls_ctx *ctx)
{
	return ctx && ctx == tls_err_ctx && tls_err_buf[0] ? tls_err_code : KTLS_ERR_NONE;
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

KTLS_API const char *ktls_error_name(int code)
{
	static const char *const names[] = {
		[KTLS_ERR_NONE] = "none",
		[KTLS_ERR_INVALID] = "invalid",
		[KTLS_ERR_POLICY] = "policy",
		[KTLS_ERR_FILE] = "file",
		[KTLS_ERR_PEER_CLOSED] = "peer-closed",
		[KTLS_ERR_PEER_ALERT] = "peer-alert",
		[KTLS_ERR_VERIFY] = "verify",
		[KTLS_ERR_HOSTNAME] = "hostname",
		[KTLS_ERR_PSK_UNKNOWN] = "psk-unknown",
		[KTLS_ERR_PSK_MISMATCH] = "psk-mismatch",
		[KTLS_ERR_PROTOCOL] = "protocol",
		[KTLS_ERR_TIMEOUT] = "timeout",
		[KTLS_ERR_KERNEL] = "kernel",
		[KTLS_ERR_KEY_LIMIT] = "key-limit",
		[KTLS_ERR_CLOSED] = "closed",
		[KTLS_ERR_RESOURCE] = "resource",
		[KTLS_ERR_SYSTEM] = "system",
		[KTLS_ERR_INTERNAL] = "internal",
	};

	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]) || !names[code])
		return "?";
	return names[code];
}

KTLS_API const char *ktls_mode_name(int mode)
{
	switch (mode) {
	case KTLS_MODE_USER: return "user";
	case KTLS_MODE_SW: return "sw";
	case KTLS_MODE_HW: return "hw";
	default: return "?";
	}
}

KTLS_API const char *ktls_version_name(int version)
{
	switch (version) {
	case KTLS_TLS1_2: return "TLSv1.2";
	case KTLS_TLS1_3: return "TLSv1.3";
	default: return "?";
	}
}
