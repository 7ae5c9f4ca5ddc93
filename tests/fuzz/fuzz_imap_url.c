/* fuzz_imap_url.c - fuzz target for IMAP URLs (RFC 5092, transport/imap/imap_url.c): any input parses or is refused
 * without a crash; a parsed URL has a UID, its rump lies within the input and its section spec is well formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transport/imap/imap_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_url u;
	struct buf err = BUF_INIT, spec = BUF_INIT;
	if (imap_url_parse((const char *)data, size, &u, &err) == 0) {
		if (u.uid == 0 || u.rump_len > size || (u.access != NULL) != (u.rump_len > 0) ||
		    (u.token != NULL && u.mechanism == NULL))
			abort();
		if (imap_url_section_spec(&u, &spec) == 0 && strchr(buf_cstr(&spec), ' ') != NULL)
			abort();
	} else if (err.len == 0) {
		abort();
	}
	imap_url_free(&u);
	buf_free(&err);
	buf_free(&spec);
	return 0;
}
