/* test.c - runner for the unit test tables. */
#include "tests/unit/test.h"

#include <stdio.h>
#include <string.h>

static int case_failed;
static char fail_msg[512];
static const char *skip_why;

void test_fail(const char *file, int line, const char *expr)
{
	if (!case_failed)
		snprintf(fail_msg, sizeof(fail_msg), "%s:%d: %s", file, line, expr);
	case_failed = 1;
}

void test_skip_reason(const char *why)
{
	skip_why = why;
}

int test_thread_sleeps(pid_t tid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", (long)tid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	int sleeps = 0;
	if (fgets(line, sizeof(line), f) != NULL) {
		const char *p = strrchr(line, ')');
		sleeps = p != NULL && p[1] == ' ' && p[2] == 'S';
	}
	fclose(f);
	return sleeps;
}

int test_run(const char *suite, const struct test_case *cases, size_t count, int argc, char **argv)
{
	int failed = 0;
	for (size_t i = 0; i < count; i++) {
		if (argc > 1) {
			int wanted = 0;
			for (int a = 1; a < argc; a++)
				wanted |= strcmp(argv[a], cases[i].name) == 0;
			if (!wanted)
				continue;
		}
		case_failed = 0;
		skip_why = NULL;
		cases[i].fn();
		if (case_failed) {
			printf("FAIL %s.%s: %s\n", suite, cases[i].name, fail_msg);
			failed++;
		} else if (skip_why != NULL) {
			printf("SKIP %s.%s: %s\n", suite, cases[i].name, skip_why);
		} else {
			printf("PASS %s.%s\n", suite, cases[i].name);
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
