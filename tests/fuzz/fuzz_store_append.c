/* fuzz_store_append.c - fuzz target for delivery into the store: any bytes as a message are appended (parsed once
 * by the MIME parser into the cache), fetched back whole, by section and through search, then expunged and purged;
 * the store stays consistent. One store in a temporary folder serves the whole run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/store.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUID "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"

static struct store *st;
static unsigned runs;
static char dir[] = "/tmp/ix-fuzz-store-XXXXXX";

static void cleanup(void)
{
	store_close(&st);
	static const char *const files[] = { "data.mdb", "lock.mdb", "notify", "" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = xasprintf("%s/%s", dir, files[i]);
		if (unlink(p) < 0)
			rmdir(p);
		free(p);
	}
}

static void open_once(void)
{
	if (st != NULL)
		return;
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	struct store_settings set;
	store_settings_default(&set);
	set.no_sync = 1;
	set.max_message_size = 1 << 20;
	if (store_open(dir, &set, &st, NULL) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	open_once();
	struct store_target t = { .guid = GUID };
	struct store_append a = { .data = (const char *)data, .len = size, .targets = &t, .ntargets = 1 };
	int ret = store_append(st, &a, NULL);
	if (ret != 0) {
		if (ret != IX_ELIMIT && ret != IX_EINVAL)
			abort();
		return 0;
	}
	struct buf out = BUF_INIT;
	if (store_fetch_body(st, GUID, NULL, t.uid, 0, 0, &out, NULL) != 0 || out.len != size ||
	    (size > 0 && memcmp(out.data, data, size) != 0))
		abort();
	static const char *const sections[] = { "", "HEADER", "TEXT", "1", "1.MIME", "2.1", "1.HEADER" };
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		buf_reset(&out);
		ret = store_fetch_section(st, GUID, NULL, t.uid, sections[i], 0, 0, &out, NULL);
		if (ret != 0 && ret != IX_ENOTFOUND && ret != IX_EUNAVAIL)
			abort();
		if (ret == 0 && out.len > size)
			abort();
	}
	struct store_search q;
	memset(&q, 0, sizeof(q));
	q.header_name = "Subject";
	q.header_value = "caf\xc3\xa9";
	q.body = "fox";
	uint32_t *uids;
	size_t n;
	if (store_search(st, GUID, NULL, NULL, &q, &uids, &n, NULL) != 0)
		abort();
	free(uids);
	if (store_expunge(st, GUID, NULL, &t.uid, 1, NULL, NULL, NULL) != 0)
		abort();
	size_t purged;
	if (store_retention_purge(st, GUID, (int64_t)time(NULL) + 10, &purged, NULL) != 0 || purged != 1)
		abort();
	if (++runs % 256 == 0) {
		unsigned problems;
		buf_reset(&out);
		if (store_check(st, 0, &out, &problems, NULL) != 0 || problems != 0)
			abort();
	}
	buf_free(&out);
	return 0;
}
