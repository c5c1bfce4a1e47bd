/*
 * agent_conf - `ktlsd agent`'s configuration file text through
 * agent_conf_parse: keys, values, ranges, keyring names, x509 paths and
 * the line numbers in its messages.
 */
#include <string.h>

#include "../../daemon/ktlsd/agent.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_str(data, size);
	struct agent_conf c;
	char err[256];
	int r;

	agent_conf_defaults(&c);
	err[0] = '\0';
	r = agent_conf_parse(&c, text, "fuzz.conf", err, sizeof(err));
	FUZZ_ASSERT(r == 0 || r == -1);
	FUZZ_ASSERT(memchr(err, '\0', sizeof(err)));
	if (r == 0)
		FUZZ_ASSERT(c.nkeyrings <= AGENT_MAX_KEYRINGS && !c.certificate == !c.private_key);
	else
		FUZZ_ASSERT(err[0]);
	agent_conf_free(&c);
	free(text);
	return 0;
}
