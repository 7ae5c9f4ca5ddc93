/* test.h - the tiny unit test runner: a table of cases, one PASS/FAIL/SKIP line per case.
 * A case fails at its first failed test_assert; tests/run.sh adds the lines up into "N passed, N failed, N skipped". */
#ifndef IX_TEST_H
#define IX_TEST_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

/* Runs every case (or only those named on the command line); returns the process exit code. */
int test_run(const char *suite, const struct test_case *cases, size_t count, int argc, char **argv);
void test_fail(const char *file, int line, const char *expr);
/* Marks the running case as skipped (it cannot run here): its line becomes "SKIP suite.name: why" unless an assert
 * already failed. why must outlive the case (a string literal). */
void test_skip_reason(const char *why);
/* 1 once thread tid of this process sleeps in the kernel (blocked in poll, on a lock...), from
 * /proc/self/task/TID/stat: what a case waits for before it acts on a thread that must be blocked first. */
int test_thread_sleeps(pid_t tid);

#define test_assert(expr)                                     \
	do {                                                  \
		if (!(expr)) {                                \
			test_fail(__FILE__, __LINE__, #expr); \
			return;                               \
		}                                             \
	} while (0)
/* Ends the running case as skipped. */
#define test_skip(why)                 \
	do {                           \
		test_skip_reason(why); \
		return;                \
	} while (0)
#define test_assert_str(a, b) test_assert(strcmp((a), (b)) == 0)
/* an initializer, not a block: clang-format would brace it as one */
/* clang-format off */
#define TEST_CASE(fn) { #fn, fn }
/* clang-format on */
#define TEST_MAIN(suite, ...)                                                                \
	int main(int argc, char **argv)                                                      \
	{                                                                                    \
		static const struct test_case cases[] = { __VA_ARGS__ };                     \
		return test_run(suite, cases, sizeof(cases) / sizeof(cases[0]), argc, argv); \
	}

#endif
