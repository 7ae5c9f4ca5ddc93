/* fuzz_mutf7.c - fuzz target for modified UTF-7: decoding must round-trip exactly, encoding of valid UTF-8 must
 * decode back to the same bytes, and the mailbox-name check must not crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transport/imap/mutf7.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf a = BUF_INIT, b = BUF_INIT, err = BUF_INIT;
	if (mutf7_to_utf8(s, size, &a, &err) == 0) {
		if (!utf8_valid(a.data ? a.data : "", a.len))
			abort();
		if (mutf7_from_utf8(buf_cstr(&a), a.len, &b, &err) != 0 || b.len != size ||
		    (size > 0 && memcmp(b.data, s, size) != 0))
			abort();
	}
	buf_reset(&a);
	buf_reset(&b);
	if (mutf7_from_utf8(s, size, &a, &err) == 0) {
		if (mutf7_to_utf8(buf_cstr(&a), a.len, &b, &err) != 0 || b.len != size ||
		    (size > 0 && memcmp(b.data, s, size) != 0))
			abort();
	}
	(void)mutf7_mailbox_name_check(s, size, '/', &err);
	buf_free(&a);
	buf_free(&b);
	buf_free(&err);
	return 0;
}
