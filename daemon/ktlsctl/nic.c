/*
 * nic.c - `ktlsctl nic`: NIC TLS offload features and driver TLS counters,
 * and switching the offload on or off (ethtool netlink, see
 * lib/src/netlink_ethtool.c).
 *
 *   ktlsctl nic [IFACE] [--json]
 *   ktlsctl nic IFACE [tx on|off] [rx on|off] [record on|off] [--json]
 *
 * JSON (stable; fields are only ever added):
 *   {"interfaces": [IFACE...]}                         for the listing
 *   IFACE + {"changed": bool}                          for a change
 *   IFACE = {"ifname": str, "ifindex": int,
 *            "offload_capable": bool,   any tls feature supported or active
 *            "features": {"tls-hw-tx-offload": FEAT, "tls-hw-rx-offload": FEAT,
 *                         "tls-hw-record": FEAT},
 *            "counters_read": bool,     driver stats were readable
 *            "counters": {"<driver stat name containing tls>": int, ...}}
 *   FEAT   = {"known": bool,   the kernel has this feature name
 *             "hw": bool,      the device supports it (user-changeable)
 *             "wanted": bool, "active": bool,
 *             "fixed": bool}   cannot be changed (ethtool's "[fixed]")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "ktls_ctl.h"

static const char *const short_name[KTLS_NIC_NFEAT] = { "tx", "rx", "record" };

static int capable(const struct ktls_nic *ni)
{
	for (int i = 0; i < KTLS_NIC_NFEAT; i++)
		if (ni->f[i].hw || ni->f[i].active)
			return 1;
	return 0;
}

static json_object *iface_json(const struct ktls_nic *ni)
{
	json_object *o = json_object_new_object(), *feats = json_object_new_object();
	json_object *ctr = json_object_new_object();

	json_object_object_add(o, "ifname", json_object_new_string(ni->ifname));
	json_object_object_add(o, "ifindex", json_object_new_int(ni->ifindex));
	json_object_object_add(o, "offload_capable", json_object_new_boolean(capable(ni)));
	for (int i = 0; i < KTLS_NIC_NFEAT; i++) {
		const struct ktls_nic_feature *f = &ni->f[i];
		json_object *fo = json_object_new_object();
		json_object_object_add(fo, "known", json_object_new_boolean(f->known));
		json_object_object_add(fo, "hw", json_object_new_boolean(f->hw));
		json_object_object_add(fo, "wanted", json_object_new_boolean(f->wanted));
		json_object_object_add(fo, "active", json_object_new_boolean(f->active));
		json_object_object_add(fo, "fixed", json_object_new_boolean(f->fixed));
		json_object_object_add(feats, ktls_nic_feature_name(i), fo);
	}
	json_object_object_add(o, "features", feats);
	json_object_object_add(o, "counters_read", json_object_new_boolean(ni->counters_read));
	for (size_t i = 0; i < ni->ncounters; i++)
		json_object_object_add(ctr, ni->counters[i].name,
				       json_object_new_uint64(ni->counters[i].value));
	json_object_object_add(o, "counters", ctr);
	return o;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static const char *onoff(int v)
{
	return v ? "on" : "off";
}

static void print_table(const struct ktls_nic *v, size_t n)
{
	int w = 5; /* "IFACE" */
	size_t nctr = 0;

	for (size_t i = 0; i < n; i++) {
		int l = (int)strlen(v[i].ifname);
		if (l > w)
			w = l;
		nctr += v[i].ncounters;
	}
	printf("%-*s  %-17s  %-9s  %-6s  %-6s  %s\n", w, "IFACE", "FEATURE", "SUPPORTED",
	       "WANTED", "ACTIVE", "CHANGE");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < KTLS_NIC_NFEAT; k++) {
			const struct ktls_nic_feature *f = &v[i].f[k];
			printf("%-*s  %-17s  %-9s  %-6s  %-6s  %s\n", w, v[i].ifname,
			       ktls_nic_feature_name(k),
			       !f->known ? "unknown" : f->hw ? "yes" : "no", onoff(f->wanted),
			       onoff(f->active),
			       f->fixed ? "fixed" : "changeable");
		}
	if (nctr == 0) {
		printf("\nno driver exposes TLS counters on %s\n",
		       n == 1 ? v[0].ifname : "these interfaces");
		return;
	}
	int cw = 11; /* "TLS COUNTER" */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].ncounters; k++)
			if ((int)strlen(v[i].counters[k].name) > cw)
				cw = (int)strlen(v[i].counters[k].name);
	printf("\n%-*s  %-*s  %s\n", w, "IFACE", cw, "TLS COUNTER", "VALUE");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].ncounters; k++)
			printf("%-*s  %-*s  %llu\n", w, v[i].ifname, cw, v[i].counters[k].name,
			       (unsigned long long)v[i].counters[k].value);
}

static int usage(void)
{
	fprintf(stderr, "usage: ktlsctl nic [IFACE] [--json]\n"
			"       ktlsctl nic IFACE [tx on|off] [rx on|off] [record on|off] "
			"[--json]\n");
	return 2;
}

int cmd_nic(int argc, char **argv)
{
	const char *ifname = NULL;
	int json = 0, any = 0;
	int want[KTLS_NIC_NFEAT] = { -1, -1, -1 };
	char err[512];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
			continue;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		}
		int k;
		for (k = 0; k < KTLS_NIC_NFEAT; k++)
			if (!strcmp(argv[i], short_name[k]))
				break;
		if (k < KTLS_NIC_NFEAT) {
			if (!ifname) {
				fprintf(stderr, "ktlsctl nic: name the interface before '%s'\n",
					argv[i]);
				return usage();
			}
			if (i + 1 >= argc ||
			    (strcmp(argv[i + 1], "on") && strcmp(argv[i + 1], "off"))) {
				fprintf(stderr, "ktlsctl nic: '%s' takes on or off\n", argv[i]);
				return usage();
			}
			want[k] = !strcmp(argv[++i], "on");
			any = 1;
			continue;
		}
		if (argv[i][0] == '-' || ifname) {
			fprintf(stderr, "ktlsctl nic: unexpected argument '%s'\n", argv[i]);
			return usage();
		}
		ifname = argv[i];
	}

	if (any) {
		struct ktls_nic after;
		int changed;
		if (ktls_nic_set(ifname, want, &after, &changed, err, sizeof(err)) < 0) {
			fprintf(stderr, "ktlsctl nic: %s\n", err);
			return 1;
		}
		/* Report what is in effect, and fail if it is not what was asked. */
		int rc = 0;
		for (int k = 0; k < KTLS_NIC_NFEAT; k++)
			if (want[k] >= 0 && after.f[k].active != want[k]) {
				fprintf(stderr, "ktlsctl nic: %s: %s requested %s but the device "
						"left it %s (wanted %s)\n",
					after.ifname, ktls_nic_feature_name(k), onoff(want[k]),
					onoff(after.f[k].active), onoff(after.f[k].wanted));
				rc = 1;
			}
		if (json) {
			json_object *o = iface_json(&after);
			json_object_object_add(o, "changed", json_object_new_boolean(changed));
			print_json(o);
		} else {
			printf("%s: %s (applies to new connections only)\n", after.ifname,
			       changed ? "changed" : "no change needed");
			after.counters_read = 1; /* no counter footer for a change */
			for (int k = 0; k < KTLS_NIC_NFEAT; k++)
				printf("  %-17s  %s%s\n", ktls_nic_feature_name(k),
				       onoff(after.f[k].active), after.f[k].fixed ? " [fixed]" : "");
		}
		return rc;
	}

	struct ktls_nic *v;
	size_t n;
	if (ktls_nic_query(ifname, &v, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "ktlsctl nic: %s\n", err);
		return 1;
	}
	if (json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, iface_json(&v[i]));
		json_object_object_add(o, "interfaces", arr);
		print_json(o);
	} else {
		print_table(v, n);
	}
	ktls_nic_list_free(v, n);
	return 0;
}
