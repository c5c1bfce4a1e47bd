/* nvme_rig.c - see nvme_rig.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "nvme_rig.h"
#include "testutil.h"

long long rig_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int rig_put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), e = 0;

	if (fd < 0)
		return errno;
	if (write(fd, val, strlen(val)) < 0)
		e = errno;
	close(fd);
	return e;
}

int rig_putf(const char *val, const char *fmt, ...)
{
	char path[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return rig_put(path, val);
}

int rig_read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	size_t got = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	/* tracefs and sysfs hand out a page or so per read: loop to EOF. */
	while (got < cap - 1 && (n = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n < 0)
		return -1;
	buf[got] = '\0';
	return 0;
}

void rig_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

int rig_kernel_has_upcall(void)
{
	struct utsname u;
	int maj = 0, min = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &maj, &min);
	return maj > 6 || (maj == 6 && min >= 5);
}

void rig_assert_agent_refuses(const char *log)
{
	int r = tu_wait(rig_agent_start(log, NULL), 10000);

	cr_assert(WIFEXITED(r) && WEXITSTATUS(r) == 1, "agent status %d", r);
	cr_assert(rig_log_has(log, "kernel lacks the handshake netlink family"),
		  "no documented refusal in the agent's output");
}

void rig_guest_setup(void)
{
	char out[4096];

	cr_assert_eq(tu_run("modprobe -d /run/kmod -a configfs nvme-keyring nvme-fabrics nvme-tcp "
			    "nvmet nvmet-tcp netlink_diag 2>&1", out, sizeof(out)), 0, "%s", out);
	if (access(RIG_CFS, F_OK) != 0)
		mount("none", "/sys/kernel/config", "configfs", 0, NULL);
	cr_assert_eq(access(RIG_CFS, F_OK), 0, "configfs/nvmet missing");
	rig_trace_setup();
}

void rig_trace_setup(void)
{
	if (access(RIG_TRACE "/events/handshake", F_OK) != 0)
		mount("nodev", RIG_TRACE, "tracefs", 0, NULL);
	/*
	 * Enabling an event with record-cmd on hooks sched_switch, and turning
	 * it off unhooks it: each patches a jump label in __schedule, which
	 * every vCPU runs.  Under multi-threaded TCG the other vCPU has twice
	 * met that patch half done and died on its int3 (tests/vm/README.md).
	 * The comms are not needed here.
	 */
	rig_put(RIG_TRACE "/options/record-cmd", "0");
	cr_assert_eq(rig_put(RIG_TRACE "/events/handshake/enable", "1"), 0, "handshake tracepoints");
}

#define SUBSYS RIG_CFS "/subsystems/" RIG_SUBNQN

void rig_target_setup(const char *img)
{
	char path[256], port[8];
	int fd;

	cr_assert_eq(mkdir(SUBSYS, 0755), 0, "mkdir subsystem: %s", strerror(errno));
	cr_assert_eq(rig_put(SUBSYS "/attr_allow_any_host", "1"), 0);
	cr_assert_eq(mkdir(SUBSYS "/namespaces/1", 0755), 0);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0 && ftruncate(fd, 64 << 20) == 0);
	close(fd);
	cr_assert_eq(rig_put(SUBSYS "/namespaces/1/device_path", img), 0);
	/* The image lives on the guest's tmpfs: no O_DIRECT underneath. */
	cr_assert_eq(rig_put(SUBSYS "/namespaces/1/buffered_io", "1"), 0);
	cr_assert_eq(rig_put(SUBSYS "/namespaces/1/enable", "1"), 0);
	cr_assert_eq(mkdir(RIG_CFS "/ports/1", 0755), 0);
	/* trtype first: tsas tls1.3 is refused (EINVAL) before it. */
	cr_assert_eq(rig_put(RIG_CFS "/ports/1/addr_trtype", "tcp"), 0);
	cr_assert_eq(rig_put(RIG_CFS "/ports/1/addr_adrfam", "ipv4"), 0);
	cr_assert_eq(rig_put(RIG_CFS "/ports/1/addr_traddr", "127.0.0.1"), 0);
	snprintf(port, sizeof(port), "%d", RIG_PORT);
	cr_assert_eq(rig_put(RIG_CFS "/ports/1/addr_trsvcid", port), 0);
	cr_assert_eq(rig_put(RIG_CFS "/ports/1/addr_tsas", "tls1.3"), 0);
	snprintf(path, sizeof(path), RIG_CFS "/ports/1/subsystems/%s", RIG_SUBNQN);
	cr_assert_eq(symlink(SUBSYS, path), 0, "link: %s", strerror(errno));
}

void rig_target_teardown(const char *img)
{
	unlink(RIG_CFS "/ports/1/subsystems/" RIG_SUBNQN);
	rmdir(RIG_CFS "/ports/1");
	rig_put(SUBSYS "/namespaces/1/enable", "0");
	rmdir(SUBSYS "/namespaces/1");
	rmdir(SUBSYS);
	rig_put(RIG_TRACE "/events/handshake/enable", "0");
	if (img)
		unlink(img);
}

int32_t rig_nvme_keyring(void)
{
	char line[512];
	FILE *f = fopen("/proc/keys", "r");
	int32_t s = -1;

	cr_assert(f, "/proc/keys");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " keyring   .nvme: ") || strstr(line, " .nvme:")) {
			s = (int32_t)strtol(line, NULL, 16);
			break;
		}
	fclose(f);
	return s;
}

int32_t rig_add_psk(const char *desc, const unsigned char *key, size_t len, int32_t ring)
{
	long s = syscall(SYS_add_key, "psk", desc, key, len, ring);

	cr_assert(s > 0, "add_key psk '%s': %s", desc, strerror(errno));
	return (int32_t)s;
}

pid_t rig_agent_start(const char *log, const char *conf)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(tu_build("ktlsd"), "ktlsd", "agent", "--foreground",
		      conf ? "--config" : NULL, conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

void rig_agent_wait_listening(pid_t pid, const char *log)
{
	char buf[8192];
	long long end = rig_now_ms() + 15000;

	while (rig_now_ms() < end) {
		int st;
		if (rig_read_text(log, buf, sizeof(buf)) == 0 && strstr(buf, "listening:"))
			return;
		cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "agent exited early: %s", buf);
		usleep(50000);
	}
	cr_assert_fail("agent never said it was listening");
}

int rig_log_has(const char *log, const char *needle)
{
	static char buf[1 << 18];

	return rig_read_text(log, buf, sizeof(buf)) == 0 && strstr(buf, needle);
}

/* The agent logs from its request processes, after the kernel heard DONE. */
int rig_wait_log(const char *log, const char *needle, int ms)
{
	long long end = rig_now_ms() + ms;

	while (!rig_log_has(log, needle) && rig_now_ms() < end)
		usleep(50000);
	return rig_log_has(log, needle);
}

void rig_trace_clear(void)
{
	int fd = open(RIG_TRACE "/trace", O_WRONLY | O_TRUNC);

	cr_assert(fd >= 0, "trace: %s", strerror(errno));
	close(fd);
}

int rig_trace_statuses(int *statuses, int *counts, int cap)
{
	FILE *f = fopen(RIG_TRACE "/trace", "r");
	char *line = NULL, *p;
	size_t len = 0;
	int n = 0;

	if (!f)
		return 0;
	while (getline(&line, &len, f) > 0) {
		int v, i;

		if (!strstr(line, "handshake_complete") || !(p = strstr(line, "status=")))
			continue;
		v = atoi(p + 7);
		for (i = 0; i < n && statuses[i] != v; i++)
			;
		if (i == n) {
			if (n == cap)
				continue;
			statuses[n] = v;
			counts[n++] = 0;
		}
		counts[i]++;
	}
	free(line);
	fclose(f);
	return n;
}

int rig_trace_count(const char *name)
{
	FILE *f = fopen(RIG_TRACE "/trace", "r");
	char *line = NULL;
	size_t len = 0;
	int n = 0;

	if (!f)
		return -1;
	while (getline(&line, &len, f) > 0)
		n += line[0] != '#' && strstr(line, name) != NULL;
	free(line);
	fclose(f);
	return n;
}

void rig_trace_tally(int *ok, int *bad, char *first_bad, size_t cap)
{
	int st[16], n[16], k = rig_trace_statuses(st, n, 16);

	*ok = *bad = 0;
	first_bad[0] = '\0';
	for (int i = 0; i < k; i++) {
		if (st[i] == 0) {
			*ok += n[i];
			continue;
		}
		*bad += n[i];
		if (!first_bad[0])
			snprintf(first_bad, cap, "status=%d", st[i]);
	}
}
