/* test_spool.c - common/spool.c: small messages stay in memory, large ones go to an unlinked file and read back
 * whole, a reset gives the file up, a failed write is reported by spool_view. */
#include "tests/unit/test.h"
#include "common/err.h"
#include "common/spool.h"
#include "common/util.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static size_t entries(void)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	if (d != NULL)
		closedir(d);
	return n;
}

static void small_stays_in_memory(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ix-spool-XXXXXX");
	test_assert(mkdtemp(dir) != NULL);
	struct spool sp;
	spool_init(&sp, dir);
	spool_append(&sp, "hello ", 6);
	spool_append(&sp, "world", 5);
	const char *d;
	size_t n;
	test_assert(spool_view(&sp, &d, &n, NULL) == 0 && n == 11 && memcmp(d, "hello world", 11) == 0);
	test_assert(sp.fd < 0);
	spool_free(&sp);
}

static void large_goes_to_an_unlinked_file(void)
{
	struct spool sp;
	spool_init(&sp, dir);
	char line[1000];
	size_t total = 0;
	for (unsigned i = 0; total < 3 * SPOOL_MEMORY_MAX; i++) {
		memset(line, 'a' + (char)(i % 26), sizeof(line));
		spool_append(&sp, line, sizeof(line));
		total += sizeof(line);
		test_assert(sp.mem.len <= SPOOL_MEMORY_MAX + sizeof(line)); /* memory stays bounded */
	}
	test_assert(sp.fd >= 0 && entries() == 0); /* nothing to see in the folder, nothing to clean */
	const char *d;
	size_t n;
	test_assert(spool_view(&sp, &d, &n, NULL) == 0 && n == total);
	bool same = true;
	for (size_t i = 0; i < n; i++)
		same &= d[i] == 'a' + (char)((i / sizeof(line)) % 26);
	test_assert(same);
	/* appending after a view, then viewing again, sees everything */
	spool_append(&sp, "end", 3);
	test_assert(spool_view(&sp, &d, &n, NULL) == 0 && n == total + 3 && memcmp(d + total, "end", 3) == 0);
	spool_reset(&sp);
	test_assert(sp.fd < 0 && sp.len == 0);
	spool_append(&sp, "x", 1);
	test_assert(spool_view(&sp, &d, &n, NULL) == 0 && n == 1 && d[0] == 'x');
	spool_free(&sp);
}

static void failure_is_reported(void)
{
	struct spool sp;
	spool_init(&sp, "/nonexistent/ix-spool");
	char big[SPOOL_MEMORY_MAX + 1];
	memset(big, 'b', sizeof(big));
	spool_append(&sp, big, sizeof(big));
	const char *d;
	size_t n;
	struct buf err = BUF_INIT;
	test_assert(spool_view(&sp, &d, &n, &err) == IX_EIO && strstr(buf_cstr(&err), "cannot spool") != NULL);
	buf_free(&err);
	spool_free(&sp);
	test_assert(rmdir(dir) == 0);
}

TEST_MAIN("spool", TEST_CASE(small_stays_in_memory), TEST_CASE(large_goes_to_an_unlinked_file),
	  TEST_CASE(failure_is_reported))
