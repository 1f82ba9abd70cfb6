/*
 * canary.c
 *	  Two SQL-callable functions with a deliberate bug each, built with the
 *	  same sanitizers as the ASan build of chat and loaded into the ASan
 *	  cluster by test/asan/run.  They prove that a report from inside a
 *	  backend really reaches the report directory; without that check,
 *	  "zero reports" could also mean "the sanitizer never ran".
 *	  Never installed anywhere.
 */
#include "postgres.h"

#include <limits.h>
#include <stdlib.h>

#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(asan_canary_ubsan);
PG_FUNCTION_INFO_V1(asan_canary_asan);

/* asan_canary_ubsan(n) adds n to INT_MAX: signed overflow for n > 0. */
Datum
asan_canary_ubsan(PG_FUNCTION_ARGS)
{
	int			n = PG_GETARG_INT32(0);

	PG_RETURN_INT32(INT_MAX + n);
}

/* asan_canary_asan(n) reads one byte past an n-byte heap block. */
Datum
asan_canary_asan(PG_FUNCTION_ARGS)
{
	int			n = PG_GETARG_INT32(0);
	volatile char *p = malloc(n);
	char		c = p[n];

	free((void *) p);
	PG_RETURN_INT32(c);
}
