/*
 * ctl_nic.c - `ktlsctl nic` in the rig's guest: loopback and a veth pair
 * are reported without TLS offload, and turning it on is refused by name
 * with nothing changed (veth and loopback are software devices: kTLS
 * device offload never applies to them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "../common/testutil.h"

static json_object *get(json_object *o, const char *k)
{
	json_object *v;
	cr_assert(json_object_object_get_ex(o, k, &v), "no %s", k);
	return v;
}

static const char *const feats[] = { "tls-hw-tx-offload", "tls-hw-rx-offload", "tls-hw-record" };

Test(ctl_nic, veth_and_loopback_have_no_tls_offload_and_refuse_it)
{
	static char before[32768], after[32768], out[8192], err[2048];
	char cmd[256], v0[16], v1[16];

	cr_assert(tu_expect_ktls(), "guest suite run outside the rig (KTLS_TEST_EXPECT_KTLS != 1)");
	snprintf(v0, sizeof(v0), "ktv%da", (int)getpid() % 10000);
	snprintf(v1, sizeof(v1), "ktv%db", (int)getpid() % 10000);
	snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s && ip link set %s up",
		 v0, v1, v0);
	cr_assert_eq(tu_run(cmd, NULL, 0), 0, "cannot create a veth pair (veth.ko loaded?)");

	cr_assert_eq(tu_ktlsctl("nic --json", before, sizeof(before), err, sizeof(err)), 0, "%s", err);
	json_object *o = json_tokener_parse(before);
	cr_assert_not_null(o, "%s", before);
	json_object *arr = get(o, "interfaces");
	int seen = 0, record_known = 1;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *it = json_object_array_get_idx(arr, i);
		const char *name = json_object_get_string(get(it, "ifname"));
		seen += !strcmp(name, "lo") || !strcmp(name, v0) || !strcmp(name, v1);
		cr_expect(!json_object_get_boolean(get(it, "offload_capable")), "%s", name);
		for (int k = 0; k < 3; k++) {
			json_object *f = get(get(it, "features"), feats[k]);
			/* tls-hw-record (TOE) is gone from newer kernels' string set. */
			cr_expect(k == 2 || json_object_get_boolean(get(f, "known")), "%s %s", name,
				  feats[k]);
			if (k == 2)
				record_known = json_object_get_boolean(get(f, "known"));
			cr_expect(!json_object_get_boolean(get(f, "hw")), "%s %s", name, feats[k]);
			cr_expect(!json_object_get_boolean(get(f, "active")), "%s %s", name, feats[k]);
			cr_expect(json_object_get_boolean(get(f, "fixed")), "%s %s", name, feats[k]);
		}
	}
	cr_expect_eq(seen, 3, "lo, %s and %s listed:\n%s", v0, v1, before);
	json_object_put(o);

	static const char *const which[] = { "tx", "rx", "record" };
	for (int k = 0; k < 3; k++) {
		char args[64], msg[160];
		snprintf(args, sizeof(args), "nic %s %s on", v0, which[k]);
		cr_expect_eq(tu_ktlsctl(args, out, sizeof(out), err, sizeof(err)), 1, "%s", args);
		if (k == 2 && !record_known)
			snprintf(msg, sizeof(msg), "%s: cannot set %s on: this kernel has no such "
				 "feature", v0, feats[k]);
		else
			snprintf(msg, sizeof(msg), "%s: cannot set %s on: the device does not "
				 "support it", v0, feats[k]);
		cr_expect(strstr(err, msg), "%s: %s", args, err);
	}
	snprintf(cmd, sizeof(cmd), "nic %s tx on rx on", v1);
	cr_expect_eq(tu_ktlsctl(cmd, out, sizeof(out), err, sizeof(err)), 1);
	cr_assert_eq(tu_ktlsctl("nic --json", after, sizeof(after), err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(before, after, "a refused change changed something");

	snprintf(cmd, sizeof(cmd), "nic %s tx off rx off", v0);
	cr_expect_eq(tu_ktlsctl(cmd, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_expect(strstr(out, "no change needed"), "%s", out);

	snprintf(cmd, sizeof(cmd), "ip link del %s", v0);
	cr_expect_eq(tu_run(cmd, NULL, 0), 0);
}
