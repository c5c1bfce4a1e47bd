/* ktls-bench - placeholder until the bench lands. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "ktls-bench: not built yet\n");
	return 1;
}
