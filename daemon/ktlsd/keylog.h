/*
 * keylog.h - SSLKEYLOGFILE in the daemons.
 *
 * libktls writes every traffic secret to $SSLKEYLOGFILE when it is set: a
 * debugging aid that decrypts all traffic.  An environment variable leaks
 * into a service too easily (a unit's Environment=, a shell profile), so
 * ktlsd serve and ktlsd agent honour it only when --keylog asks for it,
 * and then say so loudly at start.
 */
#ifndef KTLSD_KEYLOG_H
#define KTLSD_KEYLOG_H

#include <stddef.h>

/*
 * keylog_gate - 0 when start-up may go on: SSLKEYLOGFILE unset (and no
 * --keylog), or set with --keylog (then warn holds the warning to log).
 * -1 with the reason in err otherwise.  warn and err are set to "" when
 * there is nothing to say.
 */
int keylog_gate(int asked, char *warn, size_t warnlen, char *err, size_t errlen);

#endif
