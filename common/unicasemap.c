/* unicasemap.c - i;unicode-casemap (RFC 5051): each character's simple titlecase, then its NFKD, from ICU (U+0080
 * to U+07FF cached in a table); RFC 5255 4.6's substring and ordering, with an ASCII fast path. */
#include "common/unicasemap.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf16.h>

#include "common/utf8.h"
#include "common/util.h"

#define DECOMP_MAX 64 /* UTF-16 units of one character's NFKD; the longest (U+FDFA) is 18 */

#define TWO_BYTE_MAX 15 /* bytes of a two-byte character's mapping kept in the table; longer ones ask ICU */

static const UNormalizer2 *nfkd;
/* The mappings of U+0080 to U+07FF (Latin, Greek, Cyrillic, Hebrew, Arabic...), made once from ICU: most non-ASCII
 * mail text is looked up here instead of asking ICU twice a character. len 0: not kept (ask ICU). */
static struct {
	unsigned char len;
	char s[TWO_BYTE_MAX];
} two_byte[0x800 - 0x80];

static void map_char(const UNormalizer2 *n, uint32_t cp, struct buf *out);

static void tables_init(void)
{
	UErrorCode err = U_ZERO_ERROR;
	nfkd = unorm2_getNFKDInstance(&err);
	if (U_FAILURE(err) || nfkd == NULL)
		fatal("unicasemap: ICU has no NFKD data (%s)", u_errorName(err));
	struct buf m = BUF_INIT;
	for (uint32_t cp = 0x80; cp < 0x800; cp++) {
		buf_reset(&m);
		map_char(nfkd, cp, &m);
		if (m.len <= TWO_BYTE_MAX) {
			memcpy(two_byte[cp - 0x80].s, m.data, m.len);
			two_byte[cp - 0x80].len = (unsigned char)m.len;
		}
	}
	buf_free(&m);
}

static const UNormalizer2 *tables_get(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, tables_init);
	return nfkd;
}

static inline unsigned char ascii_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

/* RFC 5051 step 2 for one code point: titlecase, then the decomposition (recursive: NFKD of that character). */
static void map_char(const UNormalizer2 *n, uint32_t cp, struct buf *out)
{
	UChar32 t = u_totitle((UChar32)cp);
	UChar d[DECOMP_MAX];
	UErrorCode err = U_ZERO_ERROR;
	int32_t len = unorm2_getDecomposition(n, t, d, DECOMP_MAX, &err);
	if (U_FAILURE(err) || len <= 0) {
		utf8_append(out, (uint32_t)t);
		return;
	}
	for (int32_t i = 0; i < len;) {
		UChar32 c;
		U16_NEXT(d, i, len, c);
		utf8_append(out, (uint32_t)c);
	}
}

/* Appends the ASCII run p[0..n) with a-z upper-cased. */
static void append_upper(struct buf *out, const unsigned char *p, size_t n)
{
	buf_reserve(out, n);
	for (size_t k = 0; k < n; k++)
		out->data[out->len + k] = (char)ascii_upper(p[k]);
	out->len += n;
	out->data[out->len] = '\0';
}

bool unicasemap_prepare(const char *s, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len && p[i] < 0x80)
		i++;
	if (i < len && !utf8_valid(p + i, len - i))
		return false;
	append_upper(out, p, i);
	if (i == len)
		return true;
	const UNormalizer2 *n = tables_get();
	while (i < len) {
		if (p[i] < 0x80) {
			size_t j = i + 1;
			while (j < len && p[j] < 0x80)
				j++;
			append_upper(out, p + i, j - i);
			i = j;
		} else if (p[i] < 0xE0) { /* two bytes, valid (checked above): the table */
			uint32_t cp = (uint32_t)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F);
			if (two_byte[cp - 0x80].len > 0)
				buf_append(out, two_byte[cp - 0x80].s, two_byte[cp - 0x80].len);
			else
				map_char(n, cp, out);
			i += 2;
		} else {
			uint32_t cp = 0;
			i += utf8_decode(p + i, len - i, &cp);
			map_char(n, cp, out);
		}
	}
	return true;
}

/* memmem for a needle known to be non-empty. */
static bool bytes_in(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
	return needle_len <= hay_len && memmem(hay, hay_len, needle, needle_len) != NULL;
}

/* The prepared (upper-case ASCII or non-ASCII) needle in an all-ASCII hay, upper-casing the hay as it goes. */
static bool ascii_in(const unsigned char *h, size_t hay_len, const unsigned char *n, size_t needle_len)
{
	if (needle_len > hay_len)
		return false;
	for (size_t i = 0; i <= hay_len - needle_len; i++) {
		if (ascii_upper(h[i]) != n[0])
			continue;
		size_t k = 1;
		while (k < needle_len && ascii_upper(h[i + k]) == n[k])
			k++;
		if (k == needle_len)
			return true;
	}
	return false;
}

bool unicasemap_contains(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
	if (needle_len == 0)
		return true;
	struct buf pn = BUF_INIT;
	if (!unicasemap_prepare(needle, needle_len, &pn))
		return bytes_in(hay, hay_len, needle, needle_len);
	const unsigned char *h = (const unsigned char *)hay;
	size_t i = 0;
	while (i < hay_len && h[i] < 0x80)
		i++;
	bool found;
	if (i == hay_len) {
		found = ascii_in(h, hay_len, (const unsigned char *)pn.data, pn.len);
	} else if (!utf8_valid(h + i, hay_len - i)) {
		found = bytes_in(hay, hay_len, needle, needle_len);
	} else {
		struct buf ph = BUF_INIT;
		unicasemap_prepare(hay, hay_len, &ph);
		found = bytes_in(ph.data, ph.len, pn.data, pn.len);
		buf_free(&ph);
	}
	buf_free(&pn);
	return found;
}

void unicasemap_key(const char *s, size_t len, struct buf *key_r)
{
	buf_reset(key_r);
	if (!unicasemap_prepare(s, len, key_r)) {
		buf_append_char(key_r, (char)0xFF);
		buf_append(key_r, s, len);
	}
	buf_cstr(key_r);
}
