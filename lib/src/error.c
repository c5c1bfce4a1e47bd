/* error.c - one reason (text and KTLS_ERR_* code) per object and thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "internal.h"

/*
 * A context's errors: one entry per thread that has a failure to report,
 * so an error on one context never shows on another and two threads
 * sharing a frozen context each see the failure of their own call.  An
 * entry whose error was cleared may be taken over by another thread, so
 * the list stays as long as the number of threads holding an error at
 * once; ctx_geterr() hands out the entry's text only while it holds one.
 */
struct ctx_err {
	struct ctx_err *next;
	pthread_t thread;
	int code;
	char text[KTLS_ERRLEN];
};

/*
 * Where a failure goes when no entry can be allocated: this thread's one
 * spare slot, tagged with its context (the old single-slot behaviour).
 */
static __thread const struct ktls_ctx *spare_ctx;
static __thread int spare_code;
static __thread char spare_text[KTLS_ERRLEN];

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

/* The context's lock guards its list; const contexts still record errors. */
static pthread_mutex_t *err_lock(const struct ktls_ctx *ctx)
{
	return (pthread_mutex_t *)&ctx->err_mu;
}

/* This thread's entry, or NULL.  Called with the lock held. */
static struct ctx_err *own_entry(const struct ktls_ctx *ctx)
{
	for (struct ctx_err *e = ctx->errs; e; e = e->next)
		if (pthread_equal(e->thread, pthread_self()))
			return e;
	return NULL;
}

/* This thread's entry, reusing a cleared one or adding one; NULL on ENOMEM. */
static struct ctx_err *claim_entry(struct ktls_ctx *ctx)
{
	struct ctx_err *e = own_entry(ctx);

	if (e)
		return e;
	for (e = ctx->errs; e; e = e->next)
		if (e->code == KTLS_ERR_NONE && !e->text[0])
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return NULL;
		e->next = ctx->errs;
		ctx->errs = e;
	}
	e->thread = pthread_self();
	return e;
}

void ctx_errors_init(struct ktls_ctx *ctx)
{
	pthread_mutex_init(&ctx->err_mu, NULL);
	ctx->errs = NULL;
}

void ctx_errors_free(struct ktls_ctx *ctx)
{
	struct ctx_err *e = ctx->errs, *next;

	for (; e; e = next) {
		next = e->next;
		free(e);
	}
	ctx->errs = NULL;
	pthread_mutex_destroy(&ctx->err_mu);
	/* A later context may be allocated at this address. */
	if (spare_ctx == ctx)
		spare_ctx = NULL;
}

static int ctx_vfail(const struct ktls_ctx *ctx, int code, const char *fmt, va_list ap)
{
	struct ctx_err *e;
	int saved = errno; /* callers report errno after the reason */

	if (!ctx)
		return -1;
	pthread_mutex_lock(err_lock(ctx));
	e = claim_entry((struct ktls_ctx *)ctx);
	if (e) {
		e->code = code;
		buf_vseterr(e->text, sizeof(e->text), fmt, ap);
		/* The spare may hold an older failure of this context. */
		if (spare_ctx == ctx)
			spare_ctx = NULL;
	} else {
		spare_ctx = ctx;
		spare_code = code;
		buf_vseterr(spare_text, sizeof(spare_text), fmt, ap);
	}
	pthread_mutex_unlock(err_lock(ctx));
	errno = saved;
	return -1;
}

int ctx_fail(const struct ktls_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx_vfail(ctx, code, fmt, ap);
	va_end(ap);
	return -1;
}

int ctx_geterr_code(const struct ktls_ctx *ctx)
{
	const struct ctx_err *e;
	int code = KTLS_ERR_NONE;

	if (!ctx)
		return KTLS_ERR_NONE;
	if (spare_ctx == ctx)
		return spare_text[0] ? spare_code : KTLS_ERR_NONE;
	pthread_mutex_lock(err_lock(ctx));
	e = own_entry(ctx);
	if (e && e->text[0])
		code = e->code;
	pthread_mutex_unlock(err_lock(ctx));
	return code;
}

const char *ctx_geterr(const struct ktls_ctx *ctx)
{
	const struct ctx_err *e;
	const char *text = "";

	if (!ctx)
		return "";
	if (spare_ctx == ctx)
		return spare_text;
	pthread_mutex_lock(err_lock(ctx));
	e = own_entry(ctx);
	/* Only this thread writes its entry, and only it can clear it. */
	if (e && e->text[0])
		text = e->text;
	pthread_mutex_unlock(err_lock(ctx));
	return text;
}

void ctx_clearerr(const struct ktls_ctx *ctx)
{
	struct ctx_err *e;

	if (!ctx)
		return;
	if (spare_ctx == ctx)
		spare_ctx = NULL;
	pthread_mutex_lock(err_lock(ctx));
	e = own_entry(ctx);
	if (e) {
		e->code = KTLS_ERR_NONE;
		e->text[0] = '\0';
	}
	pthread_mutex_unlock(err_lock(ctx));
}

int errno_code(int e)
{
	switch (e) {
	case ENOMEM:
	case ENOBUFS:
	case EMFILE:
	case ENFILE:
		return KTLS_ERR_RESOURCE;
	case ECONNRESET:
	case EPIPE:
		return KTLS_ERR_PEER_CLOSED;
	case ETIMEDOUT:
		return KTLS_ERR_TIMEOUT;
	default:
		return KTLS_ERR_SYSTEM;
	}
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
