/*
 * unit.h
 *	  A minimal test harness for the pure-C core: CHECK records a failure and
 *	  carries on, so one run reports every broken expectation.  Each test
 *	  program prints "PASS name" / "FAIL name" lines for test/run to count.
 */
#ifndef CHAT_UNIT_H
#define CHAT_UNIT_H

#include <stdio.h>
#include <string.h>

static int	unit_failures;
static int	unit_case_failed;

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
					#cond); \
			unit_case_failed = 1; \
		} \
	} while (0)

#define CHECK_STR(a, b) \
	do { \
		const char *a_ = (a), *b_ = (b); \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) \
		{ \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
					a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
			unit_case_failed = 1; \
		} \
	} while (0)

/* RUN(fn) runs one test case and prints its verdict. */
#define RUN(fn) \
	do { \
		unit_case_failed = 0; \
		fn(); \
		printf("%s %s\n", unit_case_failed ? "FAIL" : "PASS", #fn); \
		unit_failures += unit_case_failed; \
	} while (0)

#define UNIT_EXIT() return unit_failures ? 1 : 0

#endif							/* CHAT_UNIT_H */
