/* test_audit.c - unit tests for common/audit: lines written and read back, filtered by time and identity, fields
 * that would break a line made harmless, dates parsed, and lines that do not parse skipped. */
#include "tests/unit/test.h"
#include "common/audit.h"
#include "common/err.h"
#include "common/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct seen {
	struct buf text;
	int count;
};

static bool collect(const struct audit_entry *e, void *ctx)
{
	struct seen *s = ctx;
	buf_printf(&s->text, "%lld|%s|%s|%s|%s|%s\n", (long long)e->when, e->who, e->via, e->action, e->target,
		   e->result);
	return ++s->count < 100;
}

static void parses_dates(void)
{
	time_t t;
	test_assert(audit_parse_time("2026-12-07", &t) && t == 1796601600);
	test_assert(audit_parse_time("2026-12-07T10:30", &t) && t == 1796601600 + 37800);
	test_assert(audit_parse_time("2026-12-07T10:30:05Z", &t) && t == 1796601600 + 37805);
	test_assert(!audit_parse_time("yesterday", &t));
	test_assert(!audit_parse_time("2026-12-07T", &t));
	test_assert(!audit_parse_time("2026-12-07x", &t));
}

static void writes_and_filters(void)
{
	char dir[] = "/tmp/test_audit.XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	char *log = xasprintf("%s/log", dir);
	test_assert(mkdir(log, 0750) == 0);
	struct buf err = BUF_INIT;
	struct seen s = { BUF_INIT, 0 };
	/* nothing recorded yet: no lines, no error */
	test_assert(audit_read(dir, 0, NULL, collect, &s, &err) == IX_OK && s.count == 0);
	struct audit_entry a = { 1796601600, "admin (Unix user root)", "cli", "user add", "bob", "ok" };
	struct audit_entry b = { 1796601700, "rita", "api", "POST /api/v1/users", "x\ty\nz", "403 no" };
	test_assert(audit_record(dir, &a, &err) == IX_OK);
	test_assert(audit_record(dir, &b, &err) == IX_OK);
	/* a line that does not parse is skipped */
	char *path = xasprintf("%s/" AUDIT_FILE, dir);
	int fd = open(path, O_WRONLY | O_APPEND);
	test_assert(fd >= 0 && write(fd, "garbage\n", 8) == 8);
	close(fd);
	test_assert(audit_read(dir, 0, NULL, collect, &s, &err) == IX_OK && s.count == 2);
	test_assert(strcmp(buf_cstr(&s.text), "1796601600|admin (Unix user root)|cli|user add|bob|ok\n"
					      "1796601700|rita|api|POST /api/v1/users|x y z|403 no\n") == 0);
	/* by identity: the first word, without case; by time */
	buf_reset(&s.text);
	s.count = 0;
	test_assert(audit_read(dir, 0, "ADMIN", collect, &s, &err) == IX_OK && s.count == 1);
	s.count = 0;
	test_assert(audit_read(dir, 0, "rit", collect, &s, &err) == IX_OK && s.count == 0);
	s.count = 0;
	test_assert(audit_read(dir, 1796601650, NULL, collect, &s, &err) == IX_OK && s.count == 1);
	buf_free(&s.text);
	buf_free(&err);
	unlink(path);
	rmdir(log);
	rmdir(dir);
	free(path);
	free(log);
}

/* Rotation past a size keeps the given number of older files, and reading goes across them, oldest first. */
static void rotates_and_reads_across_files(void)
{
	char dir[] = "/tmp/test_audit.XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	char *log = xasprintf("%s/log", dir), *path = xasprintf("%s/" AUDIT_FILE, dir);
	test_assert(mkdir(log, 0750) == 0);
	struct buf err = BUF_INIT;
	struct seen s = { BUF_INIT, 0 };
	char action[32];
	time_t t = 1796601600;
	for (int batch = 0; batch < 3; batch++) {
		for (int i = 0; i < 2; i++) {
			snprintf(action, sizeof(action), "change %d", batch * 2 + i);
			struct audit_entry e = { t++, "admin", "cli", action, "", "ok" };
			test_assert(audit_record(dir, &e, &err) == IX_OK);
		}
		test_assert(!audit_rotate(dir, 1 << 20, 2)); /* small: kept */
		test_assert(audit_rotate(dir, 10, 2));       /* past the size: rotated */
		test_assert(access(path, F_OK) != 0);
	}
	/* three batches rotated, two files kept: the first batch is gone */
	char *one = xasprintf("%s.1", path), *two = xasprintf("%s.2", path), *three = xasprintf("%s.3", path);
	test_assert(access(one, F_OK) == 0 && access(two, F_OK) == 0 && access(three, F_OK) != 0);
	struct audit_entry last = { t++, "rita", "api", "change 6", "", "ok" };
	test_assert(audit_record(dir, &last, &err) == IX_OK);
	test_assert(audit_read(dir, 0, NULL, collect, &s, &err) == IX_OK && s.count == 5);
	test_assert(strncmp(buf_cstr(&s.text), "1796601602|admin|cli|change 2|", 30) == 0);
	test_assert(strstr(buf_cstr(&s.text), "change 3|") < strstr(buf_cstr(&s.text), "change 4|"));
	test_assert(strstr(buf_cstr(&s.text), "|rita|api|change 6||ok\n") != NULL);
	s.count = 0;
	test_assert(audit_read(dir, 0, "rita", collect, &s, &err) == IX_OK && s.count == 1);
	unlink(path);
	unlink(one);
	unlink(two);
	rmdir(log);
	rmdir(dir);
	buf_free(&s.text);
	buf_free(&err);
	free(one);
	free(two);
	free(three);
	free(path);
	free(log);
}

TEST_MAIN("audit", TEST_CASE(parses_dates), TEST_CASE(writes_and_filters), TEST_CASE(rotates_and_reads_across_files))
