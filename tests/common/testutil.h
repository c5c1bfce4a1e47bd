/*
 * testutil.h - small helpers shared by the Criterion suites.
 * Add functions freely; do not change existing signatures.
 */
#ifndef KTLS_TESTUTIL_H
#define KTLS_TESTUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Path of a generated test certificate/key, e.g. tu_cert("server-ec.pem"). */
const char *tu_cert(const char *name);

/* Path of a built artefact, e.g. tu_build("ktlsctl"). */
const char *tu_build(const char *name);

/* 1 when the suite runs where kTLS must work (the rig's guest). */
int tu_expect_ktls(void);

/*
 * 1 inside the QEMU rig's guest (tests/vm/run sets KTLS_VM_RELEASE there),
 * often under TCG emulation: suites shared with the host scale heavy cases
 * down or leave them to the host.
 */
int tu_in_vm(void);

/* A connected AF_INET loopback TCP pair: fds[0] client, fds[1] server. */
int tu_tcp_pair(int fds[2]);

/* A listening AF_INET socket on 127.0.0.1 and an ephemeral port. */
int tu_listen(int *port);

/* Connect to 127.0.0.1:port; -1 on failure. */
int tu_connect(int port);

/* Wait until something accepts on 127.0.0.1:port; 0 or -1 after timeout. */
int tu_wait_port(int port, int timeout_ms);

/* A free ephemeral port (bound and released). */
int tu_free_port(void);

/*
 * Start argv[0] (searched in PATH) with its stdin/stdout on pipes (either
 * pointer may be NULL to inherit /dev/null resp. our stderr).  stderr goes
 * to our stderr.  Returns the pid or -1.
 */
pid_t tu_spawn(char *const argv[], int *to_child, int *from_child);

/* SIGTERM, then SIGKILL after timeout_ms; returns the wait status. */
int tu_stop(pid_t pid, int timeout_ms);

/* Wait up to timeout_ms for pid to exit; its wait status, or -1 on timeout. */
int tu_wait(pid_t pid, int timeout_ms);

/* Run a shell command, capture up to cap-1 bytes of stdout; exit status. */
int tu_run(const char *cmd, char *out, size_t cap);

/*
 * Run build/ktlsctl with args (a shell fragment), stdout and stderr captured
 * separately (each NUL-terminated).  Exit status, or -1 if it did not exit.
 * Aborts (a crashed test) when no temporary file can be made.
 */
int tu_ktlsctl(const char *args, char *out, size_t ocap, char *err, size_t ecap);

/* SHA-256 of a buffer as 64 hex digits. */
void tu_sha256_hex(const void *buf, size_t len, char out[65]);

/* Deterministic pseudo-random bytes from a seed. */
void tu_fill(void *buf, size_t len, unsigned seed);

/* A counter from /proc/net/tls_stat, or -1 when absent. */
long long tu_tls_stat(const char *name);

/* Read/write exactly len bytes (blocking fd); 0 or -1. */
int tu_read_full(int fd, void *buf, size_t len);
int tu_write_full(int fd, const void *buf, size_t len);

/*
 * A stand-in for systemd's notification socket: a datagram socket bound
 * at dir/notify, exported as $NOTIFY_SOCKET (and $WATCHDOG_USEC when
 * watchdog_usec > 0) for the processes started next; tu_notify_env_clear
 * removes both from our environment.  The fd, or -1.
 */
int tu_notify_socket(const char *dir, unsigned watchdog_usec);
void tu_notify_env_clear(void);

/*
 * Wait up to ms for a notification containing what (e.g. "READY=1");
 * every datagram read on the way is appended to seen (" | " between).
 * 1 when it came, 0 on timeout.
 */
int tu_notify_wait(int fd, const char *what, int ms, char *seen, size_t cap);

#endif
