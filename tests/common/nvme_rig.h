/*
 * nvme_rig.h - a real in-kernel TLS consumer for the guest suites: an
 * nvmet-tcp target on 127.0.0.1:4420 with addr_tsas=tls1.3 (every new
 * connection is a handshake upcall), the .nvme keyring's PSKs, the
 * handshake tracepoints, and `ktlsd agent` started and watched.
 * Recipe: ../shared/notes/upcall-recipe.md.  Guest only (root, configfs).
 */
#ifndef NVME_RIG_H
#define NVME_RIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RIG_SUBNQN "nqn.2026-11.org.ktls:agent-sub"
#define RIG_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:5f0c7a52-0d3e-4a8e-9d6b-1c2a3b4c5d6e"
#define RIG_HOSTID "5f0c7a52-0d3e-4a8e-9d6b-1c2a3b4c5d6e"
#define RIG_PORT 4420
#define RIG_CFS "/sys/kernel/config/nvmet"
#define RIG_TRACE "/sys/kernel/tracing"

long long rig_now_ms(void);

/* Write a configfs/sysfs attribute: 0 or the errno. */
int rig_put(const char *path, const char *val);
int rig_putf(const char *val, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read a whole (sysfs, tracefs) file into buf, NUL-terminated: 0 or -1. */
int rig_read_text(const char *path, char *buf, size_t cap);

void rig_write_file(const char *path, const char *text);

/* Linux >= 6.5: the "handshake" netlink family exists. */
int rig_kernel_has_upcall(void);

/*
 * On a kernel without it (6.1): the agent must refuse to start, exit 1,
 * with the documented reason in log.  Asserts.
 */
void rig_assert_agent_refuses(const char *log);

/* Modules, configfs and the handshake tracepoints (enabled). */
void rig_guest_setup(void);
/* Only the handshake tracepoints (tracefs mounted, events enabled). */
void rig_trace_setup(void);

/* The subsystem (namespace 1 backed by a 64 MiB file img) on a TLS port. */
void rig_target_setup(const char *img);
/* Undo rig_target_setup (and a failed run's leftovers); tracepoints off. */
void rig_target_teardown(const char *img);

/* Serial of the kernel's .nvme keyring, or -1. */
int32_t rig_nvme_keyring(void);
/* A "psk" key with this description in ring: its serial (asserts). */
int32_t rig_add_psk(const char *desc, const unsigned char *key, size_t len, int32_t ring);

/* `ktlsd agent --foreground [--config conf]`, output appended to log. */
pid_t rig_agent_start(const char *log, const char *conf);
/* Until the log says "listening:" (asserts the agent is still running). */
void rig_agent_wait_listening(pid_t pid, const char *log);
int rig_log_has(const char *log, const char *needle);
int rig_wait_log(const char *log, const char *needle, int ms);

/* Like "> trace": the O_TRUNC open empties the buffer. */
void rig_trace_clear(void);

/*
 * The handshake_complete events since the last clear, as counts of their
 * status (0, -EACCES, ...): counts[i] events had status statuses[i].
 * Returns the number of distinct statuses (at most cap).
 */
int rig_trace_statuses(int *statuses, int *counts, int cap);

/*
 * The same events as status 0 (ok) and any other (bad), with the first
 * other status as "status=N" in first_bad ("" when none).
 */
void rig_trace_tally(int *ok, int *bad, char *first_bad, size_t cap);

/* Events since the last clear whose line contains name ("handshake_submit_err"). */
int rig_trace_count(const char *name);

#endif
