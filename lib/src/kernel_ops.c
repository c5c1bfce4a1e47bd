/*
 * kernel_ops.c - the real syscalls behind kernel_ops, the seam tests
 * replace (kernel.h).
 */
#include <sys/sendfile.h>
#include <sys/socket.h>

#include "kernel.h"

static int sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	return setsockopt(fd, level, opt, val, len);
}

static int sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	return getsockopt(fd, level, opt, val, len);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return sendmsg(fd, msg, flags);
}

static ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
	return recvmsg(fd, msg, flags);
}

static ssize_t sys_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return sendfile(out_fd, in_fd, offset, count);
}

const struct kernel_ops kernel_ops_default = {
	sys_setsockopt, sys_getsockopt, sys_sendmsg, sys_recvmsg, sys_sendfile,
};
struct kernel_ops kernel_ops = {
	sys_setsockopt, sys_getsockopt, sys_sendmsg, sys_recvmsg, sys_sendfile,
};
uint64_t kernel_gcm_record_limit = KTLS_GCM_RECORD_LIMIT;

