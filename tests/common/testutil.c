/* testutil.c - see testutil.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "testutil.h"

static const char *path_in(const char *env, const char *def, const char *name)
{
	static __thread char bufs[8][512];
	static __thread unsigned next;
	char *b = bufs[next++ % 8];
	const char *dir = getenv(env);

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir && *dir ? dir : def, name);
	return b;
}

const char *tu_cert(const char *name)
{
	return path_in("KTLS_TEST_CERTS", "build/tests/certs", name);
}

const char *tu_build(const char *name)
{
	return path_in("KTLS_TEST_BUILD", "build", name);
}

int tu_expect_ktls(void)
{
	const char *e = getenv("KTLS_TEST_EXPECT_KTLS");
	return e && strcmp(e, "1") == 0;
}

int tu_in_vm(void)
{
	const char *e = getenv("KTLS_VM_RELEASE");
	return e && *e;
}

static void loopback(struct sockaddr_in *sa, int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int tu_listen(int *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	loopback(&sa, port ? *port : 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		close(fd);
		return -1;
	}
	if (port)
		*port = ntohs(sa.sin_port);
	return fd;
}

int tu_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	loopback(&sa, port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

int tu_tcp_pair(int fds[2])
{
	int port = 0;
	int l = tu_listen(&port);

	if (l < 0)
		return -1;
	fds[0] = tu_connect(port);
	fds[1] = fds[0] < 0 ? -1 : accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (fds[1] < 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		return -1;
	}
	return 0;
}

int tu_free_port(void)
{
	int port = 0;
	int fd = tu_listen(&port);

	if (fd < 0)
		return -1;
	close(fd);
	return port;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int tu_wait_port(int port, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	do {
		int fd = tu_connect(port);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		usleep(20000);
	} while (now_ms() < end);
	return -1;
}

pid_t tu_spawn(char *const argv[], int *to_child, int *from_child)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	pid_t pid, parent = getpid();

	if ((to_child && pipe2(in, O_CLOEXEC)) || (from_child && pipe2(out, O_CLOEXEC)))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		/* A test that fails an assertion never reaches tu_stop(): die
		 * with it, or the server keeps the suite's output pipe open and
		 * tests/run-suites (and the guest rig) wait forever. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(127);
		dup2(to_child ? in[0] : devnull, 0);
		dup2(from_child ? out[1] : 2, 1);
		setpgid(0, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (to_child) {
		close(in[0]);
		*to_child = in[1];
	}
	if (from_child) {
		close(out[1]);
		*from_child = out[0];
	}
	return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int st;

	do {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		usleep(10000);
	} while (now_ms() < end);
	return -1;
}

int tu_stop(pid_t pid, int timeout_ms)
{
	int st;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	st = tu_wait(pid, timeout_ms);
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	return st;
}

int tu_run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;

	if (!p)
		return -1;
	if (out && cap) {
		n = fread(out, 1, cap - 1, p);
		out[n] = '\0';
	}
	{
		char sink[4096];
		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tu_ktlsctl(const char *args, char *out, size_t ocap, char *err, size_t ecap)
{
	char tmpl[] = "/tmp/ktlsctl-test-XXXXXX", cmd[1024];
	int fd = mkstemp(tmpl), rc;
	ssize_t n;

	err[0] = '\0';
	if (fd < 0) {
		/* Never let a broken temp dir read as a command's failure. */
		perror("tu_ktlsctl: mkstemp");
		abort();
	}
	snprintf(cmd, sizeof(cmd), "%s %s 2>%s", tu_build("ktlsctl"), args, tmpl);
	rc = tu_run(cmd, out, ocap);
	n = read(fd, err, ecap - 1);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	return rc;
}

void tu_sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned mdlen = 0;

	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

void tu_fill(void *buf, size_t len, unsigned seed)
{
	unsigned char *p = buf;
	unsigned long long x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

long long tu_tls_stat(const char *name)
{
	FILE *f = fopen("/proc/net/tls_stat", "r");
	char key[128];
	long long v, found = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%127s %lld", key, &v) == 2)
		if (strcmp(key, name) == 0) {
			found = v;
			break;
		}
	fclose(f);
	return found;
}

int tu_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int tu_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int tu_notify_socket(const char *dir, unsigned watchdog_usec)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t dl = strlen(dir);
	char us[16];
	int fd;

	if (dl + sizeof("/notify") > sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, dir, dl);
	memcpy(a.sun_path + dl, "/notify", sizeof("/notify"));
	unlink(a.sun_path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setenv("NOTIFY_SOCKET", a.sun_path, 1);
	if (watchdog_usec) {
		snprintf(us, sizeof(us), "%u", watchdog_usec);
		setenv("WATCHDOG_USEC", us, 1);
	}
	return fd;
}

void tu_notify_env_clear(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
}

int tu_notify_wait(int fd, const char *what, int ms, char *seen, size_t cap)
{
	struct timespec t0, t;
	char b[512];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long gone;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		gone = (t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (gone >= ms || poll(&p, 1, (int)(ms - gone)) != 1)
			return 0;
		n = recv(fd, b, sizeof(b) - 1, 0);
		if (n <= 0)
			continue;
		b[n] = '\0';
		if (strlen(seen) + (size_t)n + 4 < cap) {
			strcat(seen, b);
			strcat(seen, " | ");
		}
		if (strstr(b, what))
			return 1;
	}
}
