/* ktlsd - placeholder until the serve and agent modes land. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "ktlsd: not built yet\n");
	return 1;
}
