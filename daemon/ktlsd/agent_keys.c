/*
 * agent_keys.c - the kernel keyrings, through raw keyctl(2) calls (no
 * libkeyutils dependency): read the PSK the NVMe host names by serial,
 * find the one a ClientHello names by description, link keyrings into
 * our process keyring so those searches reach them.
 *
 * Possession: the kernel links the consumer's keyring (.nvme) into the
 * process keyring of whoever ACCEPTs, so each request's child possesses
 * it; the configured keyrings are linked the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <linux/keyctl.h>

#include "agent.h"

static long kctl(int cmd, unsigned long a, unsigned long b, unsigned long c, unsigned long d)
{
	return syscall(SYS_keyctl, cmd, a, b, c, d);
}

int keys_describe(int32_t serial, char *type, size_t tlen, char *desc, size_t dlen)
{
	char buf[1024];
	long n = kctl(KEYCTL_DESCRIBE, (unsigned long)serial, (unsigned long)buf, sizeof(buf), 0);
	char *semi, *last;

	if (n < 0)
		return -1;
	if ((size_t)n > sizeof(buf)) {
		errno = EMSGSIZE;
		return -1;
	}
	buf[sizeof(buf) - 1] = '\0';
	/* "type;uid;gid;perm;description": the description may contain ';'. */
	semi = strchr(buf, ';');
	last = buf;
	for (int i = 0; i < 4 && last; i++)
		last = strchr(last, ';') ? strchr(last, ';') + 1 : NULL;
	if (!semi || !last) {
		errno = EINVAL;
		return -1;
	}
	*semi = '\0';
	snprintf(type, tlen, "%s", buf);
	if (strlen(last) >= dlen) {
		errno = EMSGSIZE;
		return -1;
	}
	snprintf(desc, dlen, "%s", last);
	return 0;
}

long keys_read(int32_t serial, void *buf, size_t cap)
{
	long n = kctl(KEYCTL_READ, (unsigned long)serial, (unsigned long)buf, cap, 0);

	if (n < 0)
		return -1;
	if ((size_t)n > cap) {
		/* The kernel copied nothing beyond cap, but say why. */
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}

int32_t keys_search(const char *type, const char *desc)
{
	long n = kctl(KEYCTL_SEARCH, (unsigned long)KEY_SPEC_PROCESS_KEYRING, (unsigned long)type,
		      (unsigned long)desc, 0);

	return n < 0 ? -1 : (int32_t)n;
}

/* The process keyring's serial, creating it. */
static long process_keyring(void)
{
	return kctl(KEYCTL_GET_KEYRING_ID, (unsigned long)KEY_SPEC_PROCESS_KEYRING, 1, 0, 0);
}

int keys_link(int32_t keyring)
{
	long pk = process_keyring();

	if (pk < 0)
		return -1;
	if (kctl(KEYCTL_LINK, (unsigned long)keyring, (unsigned long)pk, 0, 0) < 0)
		return errno == EEXIST ? 0 : -1;
	return 0;
}

/* A keyring's owner from KEYCTL_DESCRIBE ("type;uid;gid;perm;description"); -1 if unknown. */
static long keyring_owner(int32_t serial)
{
	char d[512];
	long n = kctl(KEYCTL_DESCRIBE, (unsigned long)serial, (unsigned long)d, sizeof(d) - 1, 0);
	unsigned long uid;

	if (n <= 0)
		return -1;
	d[n < (long)sizeof(d) ? n : (long)sizeof(d) - 1] = '\0';
	if (strncmp(d, "keyring;", 8) != 0 || sscanf(d + 8, "%lu;", &uid) != 1)
		return -1;
	return (long)uid;
}

/*
 * A keyring's serial by its name in /proc/keys (".nvme"), or a number, and
 * only one root owns: any user may create a keyring named like a
 * configured one (only names with a leading dot are reserved), and linking
 * a planted one would let that user feed PSKs and certificates to our
 * handshakes.  -1 with ENOKEY (none), or EPERM (only others' keyrings).
 */
static int32_t find_named(const char *name)
{
	char line[512], *end;
	long v = strtol(name, &end, 0);
	int others = 0;
	FILE *f;

	if (*name && !*end) {
		if (keyring_owner((int32_t)v) != 0) {
			errno = keyring_owner((int32_t)v) < 0 ? ENOKEY : EPERM;
			return -1;
		}
		return (int32_t)v;
	}
	if (!(f = fopen("/proc/keys", "re")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* serial flags usage expiry perm uid gid type description: summary */
		char type[32], desc[256];
		unsigned long serial;

		if (sscanf(line, "%lx %*s %*s %*s %*s %*s %*s %31s %255[^\n]", &serial, type,
			   desc) != 3)
			continue;
		desc[strcspn(desc, ":")] = '\0';
		if (strcmp(type, "keyring") || strcmp(desc, name))
			continue;
		if (keyring_owner((int32_t)serial) == 0) {
			fclose(f);
			return (int32_t)serial;
		}
		others = 1;
	}
	fclose(f);
	errno = others ? EPERM : ENOKEY;
	return -1;
}

int keys_link_named(const char *name, int32_t *serial)
{
	int32_t s = find_named(name);

	if (s < 0)
		return -1;
	if (serial)
		*serial = s;
	return keys_link(s);
}
