/* fuzz_unicasemap.c - fuzz target for the i;unicode-casemap comparator: the input cut in three (a b c at the first
 * two bytes' offsets) must contain its middle (preparation is character by character, and a cut inside a character
 * falls back to bytes on both sides), and on valid UTF-8 the substring test (with its ASCII fast path) must agree
 * with the definition: the prepared needle in the prepared hay. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/unicasemap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t len = size - 2;
	const char *s = (const char *)data + 2;
	size_t from = len ? data[0] % (len + 1) : 0, to = len ? data[1] % (len + 1) : 0;
	if (from > to) {
		size_t t = from;
		from = to;
		to = t;
	}
	if (!unicasemap_contains(s, len, s + from, to - from))
		abort();
	struct buf ph = BUF_INIT, pn = BUF_INIT, key = BUF_INIT;
	bool hay_ok = unicasemap_prepare(s, len, &ph);
	bool needle_ok = unicasemap_prepare(s + from, to - from, &pn);
	if (hay_ok && needle_ok) {
		/* the definition: the prepared middle in the prepared whole, then the tail (not always there) in the middle */
		bool want = pn.len == 0 || (pn.len <= ph.len && memmem(ph.data, ph.len, pn.data, pn.len) != NULL);
		if (unicasemap_contains(s, len, s + from, to - from) != want)
			abort();
		size_t tail = len - to;
		struct buf pt = BUF_INIT;
		if (unicasemap_prepare(s + to, tail, &pt)) {
			want = pt.len == 0 || (pt.len <= pn.len && memmem(pn.data, pn.len, pt.data, pt.len) != NULL);
			if (unicasemap_contains(s + from, to - from, s + to, tail) != want)
				abort();
		}
		buf_free(&pt);
	}
	unicasemap_key(s, len, &key);
	if (hay_ok ? key.len != ph.len || memcmp(key.data, ph.data, ph.len) != 0
		   : key.len != len + 1 || (unsigned char)key.data[0] != 0xFF)
		abort();
	buf_free(&ph);
	buf_free(&pn);
	buf_free(&key);
	return 0;
}
