/*
 * agent_keys.c - keyrings the agent links by name or serial must be
 * root's: any user can create a keyring named like a configured one
 * (issue 12, finding 10).  Needs root (CI runs as root) for KEYCTL_CHOWN.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/keyctl.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/agent.h"

static int32_t new_keyring(const char *name)
{
	long k = syscall(SYS_add_key, "keyring", name, NULL, 0, KEY_SPEC_PROCESS_KEYRING);

	cr_assert_gt(k, 0, "add_key %s: %s", name, strerror(errno));
	return (int32_t)k;
}

Test(agent_keys, planted_keyring_refused_roots_linked)
{
	char planted[64], ours[64], num[32];
	int32_t p, o, got = 0;

	if (geteuid() != 0) {
		cr_skip("needs root to give a keyring to another user");
		return;
	}
	snprintf(planted, sizeof(planted), "ktls-test-planted-%d", (int)getpid());
	snprintf(ours, sizeof(ours), "ktls-test-ours-%d", (int)getpid());
	p = new_keyring(planted);
	o = new_keyring(ours);
	cr_assert_eq(syscall(SYS_keyctl, KEYCTL_CHOWN, p, 65534, -1), 0, "%s", strerror(errno));

	errno = 0;
	cr_expect_eq(keys_link_named(planted, &got), -1, "a keyring of uid 65534 was linked");
	cr_expect_eq(errno, EPERM, "%s", strerror(errno));
	snprintf(num, sizeof(num), "%d", p);
	errno = 0;
	cr_expect_eq(keys_link_named(num, &got), -1, "by serial, a keyring of uid 65534 was linked");
	cr_expect_eq(errno, EPERM, "%s", strerror(errno));

	cr_expect_eq(keys_link_named(ours, &got), 0, "%s", strerror(errno));
	cr_expect_eq(got, o);
	errno = 0;
	cr_expect_eq(keys_link_named("ktls-test-no-such-keyring", NULL), -1);
	cr_expect_eq(errno, ENOKEY);
	syscall(SYS_keyctl, KEYCTL_UNLINK, p, KEY_SPEC_PROCESS_KEYRING);
	syscall(SYS_keyctl, KEYCTL_UNLINK, o, KEY_SPEC_PROCESS_KEYRING);
}
