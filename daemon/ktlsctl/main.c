/* ktlsctl - placeholder until probe lands. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "ktlsctl: not built yet\n");
	return 1;
}
