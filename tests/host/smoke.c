/* smoke.c - the build links and the public header is self-contained. */
#include <errno.h>

#include <criterion/criterion.h>

#include "ktls.h"

Test(smoke, header_constants)
{
	cr_expect_eq(KTLS_WANT_READ, -2);
	cr_expect_eq(KTLS_WANT_WRITE, -3);
	cr_expect_eq(KTLS_TLS1_3, 0x0304);
}
