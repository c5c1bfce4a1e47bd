/*
 * nic_watch.c - can any network device here take a kTLS direction?
 *
 * The kernel puts a direction on the NIC only when the socket's egress
 * device has tls-hw-tx-offload (tls-hw-rx-offload) active; otherwise the
 * install is software.  So while no device in our network namespace has
 * either feature active, every install is software, exactly, and the
 * per-connection questions (a sock_diag round trip, two reads of
 * /proc/net/tls_stat) are not needed.
 *
 * The verdict comes from an ethtool features dump.  An rtnetlink socket
 * subscribed to RTNLGRP_LINK hears of every device added or removed and
 * of every feature change (NETDEV_FEAT_CHANGE is sent as RTM_NEWLINK).
 * The subscription is made before the first dump, and an install checks
 * the socket *after* its setsockopts, so any change made before the
 * install began has been heard by then.  Anything heard (or a lost
 * notification: ENOBUFS) means: ask this socket, and dump again.  Steady
 * state: one non-blocking recv per install.  The one gap: the kernel
 * applies a feature change a moment before it sends the notification
 * (both under RTNL), and an install landing in that moment on a device
 * whose offload was just turned on is reported SW.  Like the counters'
 * race (ktls.h), that can under-report HW, never over-report it.
 *
 * A forked child gets its own subscription on first use: sharing the
 * parent's would let one process consume the other's notifications.  The
 * verdict is for the namespace the process was in at its first install.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "internal.h"
#include "kernel.h"
#include "ktls_ctl.h"
#include "netlink.h"

enum { WATCH_NONE = -1, WATCH_BROKEN = -2 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int watch_fd = WATCH_NONE;
static int verdict = -1; /* 1 no device has TLS offload active, 0 some has, -1 unknown */
struct nic_watch_stats nic_watch_stats;

static void child_after_fork(void)
{
	if (watch_fd >= 0)
		close(watch_fd);
	watch_fd = WATCH_NONE;
	verdict = -1;
	pthread_mutex_init(&mu, NULL);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
}

static int subscribe(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);

	if (fd < 0)
		return WATCH_BROKEN;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return WATCH_BROKEN;
	}
	return fd;
}

/* 1: no device has TLS TX or RX offload active; 0: one has; -1: cannot tell. */
static int dump(void)
{
	struct ktls_nic *v = NULL;
	size_t n = 0;
	char err[128];
	int none = 1;

	nic_watch_stats.dumps++;
	if (nic_features_all(&v, &n, err, sizeof(err)) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (v[i].f[KTLS_NIC_TLS_TX].active || v[i].f[KTLS_NIC_TLS_RX].active)
			none = 0;
	ktls_nic_list_free(v, n);
	return none;
}

/* Drain the subscription: 1 when something was heard (or lost), else 0. */
static int heard(void)
{
	char buf[8192];
	int any = 0;

	for (;;) {
		ssize_t r = recv(watch_fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r > 0) {
			any = 1;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ENOBUFS) {
			any = 1; /* notifications were dropped: assume a change */
			continue;
		}
		return any;
	}
}

int nic_watch_predicts_sw(void)
{
	int sw;

	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&mu);
	if (watch_fd == WATCH_NONE)
		watch_fd = subscribe();
	if (watch_fd >= 0 && verdict < 0)
		verdict = dump();
	sw = watch_fd >= 0 && verdict == 1;
	pthread_mutex_unlock(&mu);
	return sw;
}

int nic_watch_confirm_sw(void)
{
	int held;

	pthread_mutex_lock(&mu);
	if (watch_fd < 0) {
		pthread_mutex_unlock(&mu);
		return 0;
	}
	held = !heard();
	if (!held) {
		nic_watch_stats.changes++;
		verdict = dump();
	}
	pthread_mutex_unlock(&mu);
	return held;
}
