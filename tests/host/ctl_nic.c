/*
 * ctl_nic.c - `ktlsctl nic` against the running kernel's ethtool netlink.
 * No interface here (loopback, virtio, ifb) offers TLS offload: each is
 * listed as unsupported and fixed, setting it on is refused by name and
 * nothing changes.  The bare FEATURES_SET request is also sent to the
 * kernel to prove its encoding and the privilege path.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "netlink.h"
#include "../common/testutil.h"

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	cr_assert(json_object_object_get_ex(o, key, &v), "no key %s", key);
	return v;
}

static size_t count_ifaces(void)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void expect_no_offload(json_object *iface)
{
	const char *name = json_object_get_string(get(iface, "ifname"));
	json_object *feats = get(iface, "features");

	cr_expect(!json_object_get_boolean(get(iface, "offload_capable")), "%s", name);
	for (int k = 0; k < KTLS_NIC_NFEAT; k++) {
		json_object *f = get(feats, nic_feat_name[k]);
		/* tls-hw-record (TOE) is gone from newer kernels' string set. */
		cr_expect(k == KTLS_NIC_TLS_RECORD || json_object_get_boolean(get(f, "known")), "%s %s",
			  name, nic_feat_name[k]);
		cr_expect(!json_object_get_boolean(get(f, "hw")), "%s %s", name, nic_feat_name[k]);
		cr_expect(!json_object_get_boolean(get(f, "active")));
		cr_expect(!json_object_get_boolean(get(f, "wanted")));
		cr_expect(json_object_get_boolean(get(f, "fixed")));
	}
	cr_expect_eq(json_object_object_length(get(iface, "counters")), 0);
}

Test(nic_cli, lists_every_interface_without_tls_offload)
{
	static char out[65536], err[4096];

	cr_assert_eq(tu_ktlsctl("nic --json", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	json_object *o = json_tokener_parse(out);
	cr_assert_not_null(o, "not JSON: %s", out);
	json_object *arr = get(o, "interfaces");
	cr_assert_eq(json_object_array_length(arr), count_ifaces());
	int saw_lo = 0;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *it = json_object_array_get_idx(arr, i);
		saw_lo |= !strcmp(json_object_get_string(get(it, "ifname")), "lo");
		expect_no_offload(it);
	}
	cr_expect(saw_lo);
	json_object_put(o);

	/* The table: a header, then three aligned rows per interface. */
	cr_assert_eq(tu_ktlsctl("nic", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_expect(!strncmp(out, "IFACE  FEATURE            SUPPORTED  WANTED  ACTIVE  CHANGE\n", 60),
		  "%s", out);
	cr_expect(strstr(out, "lo     tls-hw-tx-offload  no         off     off     fixed\n"), "%s",
		  out);
	cr_expect(strstr(out, "no driver exposes TLS counters"), "%s", out);
}

Test(nic_cli, one_interface_and_unknown_interface)
{
	static char out[16384], err[4096];

	cr_assert_eq(tu_ktlsctl("nic lo --json", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	json_object *o = json_tokener_parse(out);
	cr_assert_not_null(o);
	cr_assert_eq(json_object_array_length(get(o, "interfaces")), 1);
	json_object *lo = json_object_array_get_idx(get(o, "interfaces"), 0);
	cr_expect_str_eq(json_object_get_string(get(lo, "ifname")), "lo");
	cr_expect_eq(json_object_get_int(get(lo, "ifindex")), 1);
	expect_no_offload(lo);
	json_object_put(o);

	cr_expect_eq(tu_ktlsctl("nic nosuch0", out, sizeof(out), err, sizeof(err)), 1);
	cr_expect(strstr(err, "no interface named 'nosuch0'"), "%s", err);
	cr_expect_str_eq(out, "");
}

Test(nic_cli, turning_offload_on_is_refused_and_nothing_changes)
{
	static char before[16384], after[16384], out[4096], err[4096];
	static const char *const which[] = { "tx", "rx", "record" };

	cr_assert_eq(tu_ktlsctl("nic lo --json", before, sizeof(before), err, sizeof(err)), 0);
	for (int k = 0; k < KTLS_NIC_NFEAT; k++) {
		char args[64];
		snprintf(args, sizeof(args), "nic lo %s on", which[k]);
		cr_expect_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 1, "%s", args);
		char want[128];
		snprintf(want, sizeof(want), "lo: cannot set %s on: the device does not support it",
			 nic_feat_name[k]);
		char gone[128];
		snprintf(gone, sizeof(gone), "lo: cannot set %s on: this kernel has no such feature",
			 nic_feat_name[k]);
		cr_expect(strstr(err, want) || (k == KTLS_NIC_TLS_RECORD && strstr(err, gone)), "%s: %s",
			  args, err);
	}
	/* Several at once: refused as a whole. */
	cr_expect_eq(tu_ktlsctl("nic lo tx off rx on", out, sizeof(out), err, sizeof(err)), 1);
	cr_expect(strstr(err, "tls-hw-rx-offload"), "%s", err);
	cr_assert_eq(tu_ktlsctl("nic lo --json", after, sizeof(after), err, sizeof(err)), 0);
	cr_expect_str_eq(before, after);

	/* Off on a device that lacks it: already so. */
	cr_expect_eq(tu_ktlsctl("nic lo tx off rx off", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_expect(strstr(out, "lo: no change needed"), "%s", out);
	cr_expect_eq(tu_ktlsctl("nic lo tx off --json", out, sizeof(out), err, sizeof(err)), 0);
	json_object *o = json_tokener_parse(out);
	cr_assert_not_null(o, "%s", out);
	cr_expect(!json_object_get_boolean(get(o, "changed")));
	json_object_put(o);
}

Test(nic_cli, usage_errors)
{
	static char out[4096], err[4096];

	cr_expect_eq(tu_ktlsctl("nic lo tx maybe", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect(strstr(err, "'tx' takes on or off"), "%s", err);
	cr_expect_eq(tu_ktlsctl("nic tx on", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect(strstr(err, "name the interface"), "%s", err);
	cr_expect_eq(tu_ktlsctl("nic lo eth0", out, sizeof(out), err, sizeof(err)), 2);
	cr_expect_eq(tu_ktlsctl("nic --bogus", out, sizeof(out), err, sizeof(err)), 2);
}

Test(nic_cli, reading_needs_no_privilege)
{
	static char out[16384], err[4096];

	if (geteuid() != 0) {
		/* Already unprivileged: the plain run is the check. */
		cr_assert_eq(tu_ktlsctl("nic lo", out, sizeof(out), err, sizeof(err)), 0, "%s", err);
		return;
	}
	cr_assert_eq(tu_ktlsctl("nic lo", out, sizeof(out), err, sizeof(err)), 0);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all %s nic lo",
		 tu_build("ktlsctl"));
	static char out2[16384];
	cr_assert_eq(tu_run(cmd, out2, sizeof(out2)), 0);
	cr_expect_str_eq(out, out2);
}

/* The raw request reaches the kernel's checks: encoding and privilege. */
Test(nic_cli, kernel_accepts_our_request_and_enforces_cap_net_admin)
{
	char err[512];
	int off[KTLS_NIC_NFEAT] = { 0, 0, 0 };

	if (geteuid() != 0 || !ktls_have_net_admin()) {
		cr_assert_eq(nic_send_set("lo", off, err, sizeof(err)), -1);
		cr_expect(strstr(err, "needs CAP_NET_ADMIN"), "%s", err);
		return;
	}
	/* Root: a well-formed no-op (these bits are off and not changeable). */
	cr_assert_eq(nic_send_set("lo", off, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(nic_send_set("nosuch0", off, err, sizeof(err)), -1);
	cr_expect(strstr(err, "nosuch0"), "%s", err);

	/* The same request from a process without the capability. */
	char cmd[1024], out[1024];
	snprintf(cmd, sizeof(cmd),
		 "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
		 "--bounding-set=-all %s nic lo tx off; echo rc=$?", tu_build("ktlsctl"));
	tu_run(cmd, out, sizeof(out));
	cr_expect(strstr(out, "rc=0"), "turning off what is off needs no privilege: %s", out);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(3);
		_exit(nic_send_set("lo", off, err, sizeof(err)) == -1 &&
				      strstr(err, "needs CAP_NET_ADMIN") ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "unprivileged FEATURES_SET was not refused with EPERM");
}
