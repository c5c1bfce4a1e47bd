/*
 * probe.c - `ktlsctl probe [--json]`: ktls_probe() as `key: value` lines
 * or one JSON object.  The key names are stable (kernel-notes/README.md
 * lists them); scripts and tests depend on them.
 *
 * Text:  "key: yes" or "key: no (ERRNO: message)" / "key: no (reason)".
 * JSON:  {"key": {"ok": true}} or {"key": {"ok": false, "errno": "ENOENT",
 *        "reason": "..."}}; "kernel" and "tcp_available_ulp" are strings.
 *
 * Last, "nic_tls_offload": the interfaces whose device can do kTLS offload
 * (hw bit of tls-hw-tx-offload / tls-hw-rx-offload, over ethtool netlink:
 * ktls_nic_query(), the reader `ktlsctl nic` uses), "none", or why it could not
 * tell.  JSON: {"ok": true, "interfaces": [{"name": "eth0", "tx": true,
 * "rx": false}]} or {"ok": false, "reason": "..."}.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <json-c/json.h>

#include "commands.h"
#include "ktls.h"
#include "ktls_ctl.h"

/* One reported item: yes/no, the errno behind a no, or a fixed reason. */
struct item {
	char key[48];
	int ok;
	int err;            /* errno when !ok, or 0 */
	const char *reason; /* when !ok and there is no errno */
};

#define MAXITEMS 40

/* An interface whose device could take kTLS keys, and which ways. */
struct nic_cap {
	char name[IF_NAMESIZE];
	int tx, rx;
};

#define MAXNICS 64

struct report {
	struct item items[MAXITEMS];
	int n;
	char kernel[128];
	char available_ulp[128];
	int nic_ok;              /* the interfaces could be read */
	char nic_err[160];
	struct nic_cap nics[MAXNICS];
	int nnics;
};

/* Which interfaces' devices can offload kTLS (hw: supported, on or not). */
static void nic_caps(struct report *r)
{
	struct ktls_nic *v = NULL;
	size_t n = 0;

	if (ktls_nic_query(NULL, &v, &n, r->nic_err, sizeof(r->nic_err)) != 0)
		return;
	r->nic_ok = 1;
	for (size_t i = 0; i < n && r->nnics < MAXNICS; i++) {
		int tx = v[i].f[KTLS_NIC_TLS_TX].hw || v[i].f[KTLS_NIC_TLS_TX].active;
		int rx = v[i].f[KTLS_NIC_TLS_RX].hw || v[i].f[KTLS_NIC_TLS_RX].active;

		if (!tx && !rx)
			continue;
		snprintf(r->nics[r->nnics].name, sizeof(r->nics[0].name), "%s", v[i].ifname);
		r->nics[r->nnics].tx = tx;
		r->nics[r->nnics].rx = rx;
		r->nnics++;
	}
	ktls_nic_list_free(v, n);
}

static void add(struct report *r, const char *key, int ok, int err, const char *reason)
{
	struct item *it;

	if (r->n >= MAXITEMS)
		return;
	it = &r->items[r->n++];
	snprintf(it->key, sizeof(it->key), "%s", key);
	it->ok = ok;
	it->err = ok ? 0 : err;
	it->reason = ok ? NULL : reason;
}

static void add_result(struct report *r, const char *key, struct ktls_probe_result res)
{
	add(r, key, res.ok, res.err, NULL);
}

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

static void build(struct report *r, const struct ktls_probe *p)
{
	static const char *const vers[2] = { "tls1.2", "tls1.3" };
	static const char *const dirs[2] = { "tx", "rx" };
	struct utsname u;
	char key[48], cipher[32];

	memset(r, 0, sizeof(*r));
	if (uname(&u) == 0)
		snprintf(r->kernel, sizeof(r->kernel), "%s", u.release);
	read_line("/proc/sys/net/ipv4/tcp_available_ulp", r->available_ulp,
		  sizeof(r->available_ulp));

	add(r, "tls_ulp", p->ulp, 0, p->ulp_reason);
	for (int v = 0; v < 2; v++)
		for (int c = 0; c < KTLS_PROBE_NCIPHERS; c++) {
			size_t i;
			const char *name = ktls_probe_cipher_name(c);

			for (i = 0; name[i] && i + 1 < sizeof(cipher); i++)
				cipher[i] = (char)tolower((unsigned char)name[i]);
			cipher[i] = '\0';
			for (int d = 0; d < 2; d++) {
				snprintf(key, sizeof(key), "%s_%s_%s", vers[v], cipher, dirs[d]);
				add_result(r, key, p->cipher[v][c][d]);
			}
		}
	add_result(r, "zerocopy_tx", p->zerocopy_tx);
	add_result(r, "rx_no_pad", p->rx_no_pad);
	add_result(r, "rekey", p->rekey);
	add(r, "tls_stat", p->tls_stat, 0, "/proc/net/tls_stat absent");
	add(r, "handshake_family", p->handshake_family, 0,
	    "generic netlink family \"handshake\" not found: CONFIG_NET_HANDSHAKE missing");
	add(r, "io_uring", p->io_uring, 0, p->io_uring_reason);
	add(r, "io_uring_splice", p->uring_splice, 0, "IORING_OP_SPLICE not supported");
	add(r, "io_uring_sendmsg", p->uring_sendmsg, 0, "IORING_OP_SENDMSG not supported");
	add(r, "io_uring_recvmsg", p->uring_recvmsg, 0, "IORING_OP_RECVMSG not supported");
	add(r, "io_uring_recvmsg_multishot", p->uring_recvmsg_multishot, 0,
	    "multishot IORING_OP_RECVMSG not accepted");
	nic_caps(r);
}

static const char *errname(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "E?";
}

static void print_text(const struct report *r)
{
	printf("kernel: %s\n", r->kernel);
	printf("tcp_available_ulp: %s\n", r->available_ulp[0] ? r->available_ulp : "(unreadable)");
	for (int i = 0; i < r->n; i++) {
		const struct item *it = &r->items[i];

		if (it->ok)
			printf("%s: yes\n", it->key);
		else if (it->err)
			printf("%s: no (%s: %s)\n", it->key, errname(it->err), strerror(it->err));
		else
			printf("%s: no (%s)\n", it->key, it->reason ? it->reason : "unknown");
	}
	printf("nic_tls_offload: ");
	if (!r->nic_ok)
		printf("unknown (%s)", r->nic_err);
	else if (!r->nnics)
		printf("none");
	for (int i = 0; i < r->nnics; i++)
		printf("%s%s (%s%s%s)", i ? ", " : "", r->nics[i].name, r->nics[i].tx ? "tx" : "",
		       r->nics[i].tx && r->nics[i].rx ? ", " : "", r->nics[i].rx ? "rx" : "");
	printf("\n");
}

static json_object *nic_json(const struct report *r)
{
	json_object *o = json_object_new_object(), *a;

	if (!o)
		return NULL;
	json_object_object_add(o, "ok", json_object_new_boolean(r->nic_ok));
	if (!r->nic_ok) {
		json_object_object_add(o, "reason", json_object_new_string(r->nic_err));
		return o;
	}
	a = json_object_new_array();
	if (!a) {
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "interfaces", a);
	for (int i = 0; i < r->nnics; i++) {
		json_object *e = json_object_new_object();

		if (!e) {
			json_object_put(o);
			return NULL;
		}
		json_object_object_add(e, "name", json_object_new_string(r->nics[i].name));
		json_object_object_add(e, "tx", json_object_new_boolean(r->nics[i].tx));
		json_object_object_add(e, "rx", json_object_new_boolean(r->nics[i].rx));
		json_object_array_add(a, e);
	}
	return o;
}

static int print_json(const struct report *r)
{
	json_object *root = json_object_new_object();
	const char *s;

	if (!root)
		return -1;
	json_object_object_add(root, "kernel", json_object_new_string(r->kernel));
	json_object_object_add(root, "tcp_available_ulp",
			       json_object_new_string(r->available_ulp));
	for (int i = 0; i < r->n; i++) {
		const struct item *it = &r->items[i];
		json_object *o = json_object_new_object();

		if (!o) {
			json_object_put(root);
			return -1;
		}
		json_object_object_add(o, "ok", json_object_new_boolean(it->ok));
		if (!it->ok && it->err) {
			json_object_object_add(o, "errno", json_object_new_string(errname(it->err)));
			json_object_object_add(o, "reason", json_object_new_string(strerror(it->err)));
		} else if (!it->ok) {
			json_object_object_add(o, "reason",
					       json_object_new_string(it->reason ? it->reason : "unknown"));
		}
		json_object_object_add(root, it->key, o);
	}
	{
		json_object *nic = nic_json(r);

		if (!nic) {
			json_object_put(root);
			return -1;
		}
		json_object_object_add(root, "nic_tls_offload", nic);
	}
	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
	if (s)
		puts(s);
	json_object_put(root);
	return s ? 0 : -1;
}

int cmd_probe(int argc, char **argv)
{
	struct ktls_probe p;
	struct report r;
	int json = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else {
			fprintf(stderr, "ktlsctl probe: unknown option '%s'\n"
					"usage: ktlsctl probe [--json]\n", argv[i]);
			return 2;
		}
	}
	ktls_probe(&p);
	build(&r, &p);
	if (json) {
		if (print_json(&r) != 0) {
			fprintf(stderr, "ktlsctl probe: out of memory building JSON\n");
			return 1;
		}
	} else {
		print_text(&r);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
