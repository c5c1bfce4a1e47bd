/*
 * ctx_freeze_race.c - "a context is frozen once a connection used it" must
 * hold under threads: a setter racing ktls_conn_new either finishes before
 * the connection's SSL exists or fails, never changes the context under
 * it (issue 12, finding 11).  Criterion forks and is not TSan-clean, so
 * this is a plain program built with -fsanitize=thread against the
 * library's sources; any data race TSan sees fails it (exit 66).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ktls.h"

static atomic_int go;

static void *setter(void *arg)
{
	ktls_ctx *ctx = arg;

	while (!atomic_load(&go))
		;
	/* until the context is frozen; then every setter must keep failing */
	for (int i = 0;; i++) {
		int r = ktls_ctx_set_verify(ctx, i & 1 ? KTLS_VERIFY_REQUIRED : KTLS_VERIFY_OPTIONAL) |
			ktls_ctx_set_ciphersuites(ctx, i & 1 ? "TLS_AES_128_GCM_SHA256"
							     : "TLS_CHACHA20_POLY1305_SHA256") |
			ktls_ctx_set_check_hostname(ctx, 1);

		if (r) {
			if (ktls_ctx_set_verify(ctx, KTLS_VERIFY_REQUIRED) == 0) {
				fprintf(stderr, "FAIL: a setter succeeded after one was refused\n");
				exit(1);
			}
			return NULL;
		}
	}
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200, froze_early = 0;

	for (int i = 0; i < rounds; i++) {
		ktls_ctx *ctx = ktls_ctx_new(KTLS_CLIENT);
		ktls_conn *c;
		pthread_t th;
		int sv[2];

		if (!ctx || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
			perror("setup");
			return 1;
		}
		atomic_store(&go, 0);
		pthread_create(&th, NULL, setter, ctx);
		atomic_store(&go, 1);
		if (i & 1)
			usleep(50); /* vary who gets there first */
		c = ktls_conn_connect(ctx, sv[0], "localhost");
		if (!c) {
			fprintf(stderr, "FAIL: ktls_conn_connect: %s\n", ktls_ctx_error(ctx));
			return 1;
		}
		pthread_join(th, NULL);
		froze_early += ktls_ctx_set_verify(ctx, KTLS_VERIFY_NONE) != 0;
		ktls_conn_free(c);
		ktls_ctx_free(ctx);
		close(sv[0]);
		close(sv[1]);
	}
	if (froze_early != rounds) {
		fprintf(stderr, "FAIL: %d of %d contexts still changeable after a connection\n",
			rounds - froze_early, rounds);
		return 1;
	}
	printf("ctx_freeze_race: %d rounds of a setter racing ktls_conn_new, no race\n", rounds);
	return 0;
}
