/* keylog.c - SSLKEYLOGFILE only on request (see keylog.h). */
#include <stdio.h>
#include <stdlib.h>

#include "keylog.h"

int keylog_gate(int asked, char *warn, size_t warnlen, char *err, size_t errlen)
{
	const char *path = getenv("SSLKEYLOGFILE");

	warn[0] = err[0] = '\0';
	if (!path || !*path) {
		if (!asked)
			return 0;
		snprintf(err, errlen, "--keylog: SSLKEYLOGFILE is not set, so there is nowhere to log to");
		return -1;
	}
	if (!asked) {
		snprintf(err, errlen,
			 "SSLKEYLOGFILE is set (%s): refusing to write every TLS traffic secret "
			 "there; unset it, or give --keylog to log them on purpose (debugging only)",
			 path);
		return -1;
	}
	snprintf(warn, warnlen,
		 "WARNING: --keylog: every TLS traffic secret goes to %s; whoever reads that "
		 "file can decrypt all traffic (debugging only)",
		 path);
	return 0;
}
