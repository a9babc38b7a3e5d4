/*
 * check.h - the whole unit-test harness: a few macros and a summary.
 *
 * CHECK(cond) records a failure with file and line and goes on, so one run
 * shows every broken case. CHECK_STR compares strings. check_done() prints
 * "N passed, N failed" and returns the exit status for main.
 */
#ifndef TALLY_CHECK_H
#define TALLY_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
	if (cond) { \
		check_passed++; \
	} else { \
		check_failed++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
		    __LINE__, #cond); \
	} \
} while (0)

#define CHECK_MSG(cond, ...) do { \
	if (cond) { \
		check_passed++; \
	} else { \
		check_failed++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, \
		    __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *check_a_ = (a), *check_b_ = (b); \
	CHECK_MSG(check_a_ != NULL && check_b_ != NULL && \
	    strcmp(check_a_, check_b_) == 0, "\"%s\" != \"%s\"", \
	    check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
} while (0)

static inline int
check_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed == 0 ? 0 : 1;
}

#endif
