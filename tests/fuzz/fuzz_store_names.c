/* fuzz_store_names.c - fuzz target for the store's input checks: folder names (UTF-8, separators, lengths),
 * mailbox GUID strings and RFC 4314 rights strings. The first byte picks the function. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "store/store.h"
#include "store/store_int.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	char *s = xstrndup((const char *)data + 1, size - 1);
	struct buf out = BUF_INIT, again = BUF_INIT, err = BUF_INIT;
	switch (data[0] % 3) {
	case 0:
		if (store_folder_name_norm(s, &out, &err) == 0) {
			/* accepted names are bounded, and normalizing is idempotent */
			if (out.len == 0 || out.len > STORE_FOLDER_NAME_MAX)
				abort();
			if (store_folder_name_norm(out.data, &again, NULL) != 0 || strcmp(out.data, again.data) != 0)
				abort();
		} else if (err.len == 0) {
			abort();
		}
		break;
	case 1: {
		uint8_t g[STORE_GUID_LEN], g2[STORE_GUID_LEN];
		char hex[STORE_GUID_HEX_LEN + 1];
		if (store_guid_parse(s, g, NULL) == 0) {
			store_guid_format(g, hex);
			if (store_guid_parse(hex, g2, NULL) != 0 || memcmp(g, g2, sizeof(g)) != 0)
				abort();
		}
		break;
	}
	default: {
		unsigned r, r2;
		if (store_rights_parse(s, &r) == 0) {
			store_rights_format(r, &out);
			if (store_rights_parse(buf_cstr(&out), &r2) != 0 || r != r2 || (r & ~STORE_RIGHTS_ALL) != 0)
				abort();
		}
		break;
	}
	}
	buf_free(&out);
	buf_free(&again);
	buf_free(&err);
	free(s);
	return 0;
}
