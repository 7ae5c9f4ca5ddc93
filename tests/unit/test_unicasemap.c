/* test_unicasemap.c - unit tests for the i;unicode-casemap comparator (common/unicasemap.c) against RFC 5051's
 * definition (titlecase, then the decomposition, nothing more) and RFC 5255 4.6's substring and ordering rules. */
#include "tests/unit/test.h"
#include "common/unicasemap.h"

#include <stdio.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "common/utf8.h"

/* The prepared form of s, or "<invalid>" when s is not UTF-8; valid until the next call. */
static const char *prep(const char *s)
{
	static struct buf out = BUF_INIT;
	buf_reset(&out);
	if (!unicasemap_prepare(s, strlen(s), &out))
		return "<invalid>";
	return buf_cstr(&out);
}

static bool has(const char *hay, const char *needle)
{
	return unicasemap_contains(hay, strlen(hay), needle, strlen(needle));
}

static int key_cmp(const char *a, const char *b)
{
	struct buf ka = BUF_INIT, kb = BUF_INIT;
	unicasemap_key(a, strlen(a), &ka);
	unicasemap_key(b, strlen(b), &kb);
	int r = strcmp(buf_cstr(&ka), buf_cstr(&kb));
	buf_free(&ka);
	buf_free(&kb);
	return r;
}

/* RFC 5051 section 2's own example: U+01C4 titlecases to U+01C5, which decomposes to "D" U+017E, which decomposes
 * to "z" U+030C: the result is U+0044 U+007A U+030C (the "z" stays small: no titlecase after the decomposition). */
static void rfc5051_example(void)
{
	test_assert_str(prep("\xc7\x84"), "Dz\xcc\x8c");
	test_assert_str(prep("\xc7\x85"), "Dz\xcc\x8c"); /* U+01C5 has no titlecase of its own */
	test_assert_str(prep("\xc7\x86"), "Dz\xcc\x8c"); /* U+01C6 titlecases to U+01C5 too */
	/* D, Z, combining caron typed apart: Z is capital already, so it is not the same string */
	test_assert_str(prep("DZ\xcc\x8c"), "DZ\xcc\x8c");
}

/* Step 2 (a) is the simple titlecase mapping of UnicodeData.txt and (b) the decomposition of any type. */
static void titlecase_then_decomposition(void)
{
	test_assert_str(prep("abc XYZ 09 !~"), "ABC XYZ 09 !~"); /* ASCII: a-z upper-cased, the rest as is */
	test_assert_str(prep("\xc3\xa9"), "E\xcc\x81");          /* é: É, then E + U+0301 */
	test_assert_str(prep("\xc3\x89"), "E\xcc\x81");          /* É */
	test_assert_str(prep("\xc3\x9f"), "\xc3\x9f");         /* ß: no simple titlecase (only SpecialCasing's "Ss") */
	test_assert_str(prep("\xe1\xba\x9e"), "\xe1\xba\x9e"); /* U+1E9E capital sharp s: no mapping either */
	test_assert_str(prep("\xef\xac\x81"), "fi");           /* U+FB01 ligature: compatibility decomposition */
	test_assert_str(prep("\xe2\x84\xaa"), "K");            /* U+212A Kelvin sign: singleton decomposition */
	test_assert_str(prep("\xcf\x82"), "\xce\xa3");         /* final sigma ς titlecases to Σ like σ */
	test_assert_str(prep("\xcf\x83"), "\xce\xa3");
	test_assert_str(prep("\xe2\x91\xa0"), "1");                        /* ① circled digit one: <circle> 1 */
	test_assert_str(prep("\xea\xb0\x80"), "\xe1\x84\x80\xe1\x85\xa1"); /* 가: Hangul decomposes (NFKD) */
	test_assert_str(prep("\xd0\xb9"), "\xd0\x98\xcc\x86");             /* й: Й, then И + U+0306 */
	test_assert_str(prep("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");     /* outside the BMP, no mapping */
	test_assert_str(prep(""), "");
	/* each character on its own: the marks of separate characters are not reordered */
	test_assert_str(prep("a\xcc\x81\xcc\xa3"), "A\xcc\x81\xcc\xa3");
}

/* Every code point (surrogates aside), alone and between ASCII letters, against RFC 5051 step 2 written out with
 * ICU's calls: u_totitle, then the NFKD of that one character (what the table of two-byte characters caches). */
static void every_code_point(void)
{
	UErrorCode err = U_ZERO_ERROR;
	const UNormalizer2 *n = unorm2_getNFKDInstance(&err);
	test_assert(U_SUCCESS(err));
	struct buf in = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		UChar32 t = u_totitle((UChar32)cp);
		UChar d[64];
		err = U_ZERO_ERROR;
		int32_t len = unorm2_getDecomposition(n, t, d, 64, &err);
		buf_reset(&want);
		buf_append_str(&want, "AB");
		if (U_FAILURE(err) || len <= 0) {
			utf8_append(&want, (uint32_t)t);
		} else {
			char u8[256];
			int32_t u8len = 0;
			err = U_ZERO_ERROR;
			u_strToUTF8(u8, sizeof(u8), &u8len, d, len, &err);
			test_assert(U_SUCCESS(err));
			buf_append(&want, u8, (size_t)u8len);
		}
		buf_append_str(&want, "C");
		buf_reset(&in);
		buf_append_str(&in, "ab");
		utf8_append(&in, cp);
		buf_append_str(&in, "c");
		buf_reset(&got);
		test_assert(unicasemap_prepare(in.data, in.len, &got));
		if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0)
			fprintf(stderr, "U+%04X differs\n", cp);
		test_assert(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
	}
	buf_free(&in);
	buf_free(&want);
	buf_free(&got);
}

static void invalid_utf8(void)
{
	test_assert_str(prep("abc\xff"), "<invalid>");
	test_assert_str(prep("\xc0\xaf"), "<invalid>");     /* overlong "/" */
	test_assert_str(prep("\xed\xa0\x80"), "<invalid>"); /* a surrogate */
	test_assert_str(prep("\xc3"), "<invalid>");         /* cut short */
}

/* SEARCH's substring operation: the examples of RFC 5255 and the issue, and i;octet for invalid text. */
static void substring(void)
{
	test_assert(has("R\xc3\xa9sum\xc3\xa9 attached", "R\xc3\x89SUM\xc3\x89")); /* résumé, RÉSUMÉ */
	test_assert(has("RE\xcc\x81SUME\xcc\x81", "r\xc3\xa9sum\xc3\xa9"));        /* decomposed matches precomposed */
	test_assert(has("Gr\xc3\xbc\xc3\x9f"
			"e aus Stra\xc3\x9f"
			"e",
			"GR\xc3\x9c\xc3\x9f")); /* GRÜß in Grüße */
	test_assert(!has("Stra\xc3\x9f"
			 "e",
			 "STRASSE")); /* ß is not SS under RFC 5051 (no full case mapping) */
	test_assert(has("Stra\xc3\x9f"
			"e",
			"stra\xc3\x9f"
			"e"));
	test_assert(has("caf\xc3\xa9", "cafe"));  /* é is E + U+0301: "CAFE" is a prefix of "CAFE\xcc\x81" */
	test_assert(!has("cafe", "caf\xc3\xa9")); /* but not the other way round */
	/* ﬁle prepares to "fiLE": the ligature's letters stay small (no titlecase after the decomposition), while a
	 * typed "fi" becomes "FI"; only the ligature finds it */
	test_assert(!has("\xef\xac\x81"
			 "le",
			 "fi"));
	test_assert(has("\xef\xac\x81"
			"le",
			"\xef\xac\x81"
			"LE"));
	test_assert(has("\xce\x9f\xce\x94\xce\x8f\xce\xa3", "\xcf\x83")); /* ΟΔΏΣ contains σ */
	test_assert(has("Hello World", "WORLD"));                         /* the ASCII fast path */
	test_assert(has("Hello World", "lo w"));
	test_assert(!has("Hello", "hello!"));
	test_assert(has("anything", ""));
	test_assert(has("", ""));
	test_assert(!has("", "a"));
	test_assert(!has("Hello", "h\xc3\xa9"));
	/* an invalid hay or needle: both compared as bytes (i;octet) */
	test_assert(has("caf\xe9 Hello", "Hello"));
	test_assert(!has("caf\xe9 Hello", "hello"));
	test_assert(has("caf\xe9", "f\xe9"));
	test_assert(!has("CAF\xc3\x89", "f\xe9"));
}

/* RFC 5255 4.6's ordering example: (4) is KOI8-R, converted to UTF-8 before it gets here; (1) and (3) are not
 * UTF-8 and sort after every valid string, by their bytes: (4) (2) (3) (1). */
static void rfc5255_ordering(void)
{
	const char *s1 = "\xD0\xC0\xD0\xBD\xD0\xB4\xD1\x80\xD0\xB5\xD0\xB9";
	const char *s2 = "\xD1\x81\xD0\x95\xD0\xA0\xD0\x93\xD0\x95\xD0\x99";
	const char *s3 = "\xD0\x92\xD0\xB0\xD1\x81\xD0\xB8\xD0\xBB\xD0\xB8\xFF\xB9";
	const char *s4 = "\xD0\x90\xD0\xBB\xD0\xB5\xD0\xBA\xD1\x81\xD0\xB5\xD0\xB9";
	test_assert(key_cmp(s4, s2) < 0);
	test_assert(key_cmp(s2, s3) < 0);
	test_assert(key_cmp(s3, s1) < 0);
	test_assert(key_cmp(s4, s1) < 0);
	/* equal keys: equal under the comparator */
	test_assert(key_cmp("r\xc3\xa9sum\xc3\xa9", "R\xc3\x89SUM\xc3\x89") == 0);
	test_assert(key_cmp("\xc3\x89mile", "Zoe") < 0); /* E + U+0301 before Z, where the bytes of É come after */
	test_assert(key_cmp("zoe", "\xc3\xa9mile") > 0);
	test_assert(key_cmp("", "a") < 0);
	test_assert(key_cmp("\xff", "\xf4\x8f\xbf\xbf") > 0); /* invalid after the last code point */
	struct buf k = BUF_INIT;
	unicasemap_key("a\xff", 2, &k);
	test_assert(k.len == 3 && memcmp(k.data,
					 "\xff"
					 "a\xff",
					 3) == 0);
	unicasemap_key("abc", 3, &k); /* replaces the contents */
	test_assert_str(buf_cstr(&k), "ABC");
	buf_free(&k);
}

TEST_MAIN("unicasemap", TEST_CASE(rfc5051_example), TEST_CASE(titlecase_then_decomposition),
	  TEST_CASE(every_code_point), TEST_CASE(invalid_utf8), TEST_CASE(substring), TEST_CASE(rfc5255_ordering))
