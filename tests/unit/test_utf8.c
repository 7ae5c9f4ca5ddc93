/* test_utf8.c - unit tests for the strict UTF-8 decoder (common/utf8.c): every boundary of every sequence length,
 * then byte by byte the inputs it must refuse (overlongs, surrogates, past U+10FFFF, bad or truncated sequences). */
#include "tests/unit/test.h"
#include "common/utf8.h"
#include "common/util.h"

#include <string.h>

static const struct {
	const char *in;
	size_t len;
	uint32_t cp;
} good[] = {
	{ "\x00", 1, 0x0 },
	{ "A", 1, 0x41 },
	{ "\x7f", 1, 0x7f },
	{ "\xc2\x80", 2, 0x80 }, /* smallest two-byte */
	{ "\xc3\xa9", 2, 0xe9 },
	{ "\xdf\xbf", 2, 0x7ff },      /* largest two-byte */
	{ "\xe0\xa0\x80", 3, 0x800 },  /* smallest three-byte */
	{ "\xed\x9f\xbf", 3, 0xd7ff }, /* just below the surrogates */
	{ "\xee\x80\x80", 3, 0xe000 }, /* just above them */
	{ "\xef\xbf\xbd", 3, 0xfffd },
	{ "\xef\xbf\xbf", 3, 0xffff },
	{ "\xf0\x90\x80\x80", 4, 0x10000 }, /* smallest four-byte */
	{ "\xf0\x9f\x98\x80", 4, 0x1f600 },
	{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff }, /* the last code point */
};

static void decodes_every_length(void)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(good); i++) {
		uint32_t cp = 0xdeadbeef;
		test_assert(utf8_decode(good[i].in, good[i].len, &cp) == good[i].len);
		test_assert(cp == good[i].cp);
		test_assert(utf8_decode(good[i].in, good[i].len, NULL) == good[i].len);
		test_assert(utf8_valid(good[i].in, good[i].len));
		/* followed by more bytes, only the first character is taken */
		char two[8];
		memcpy(two, good[i].in, good[i].len);
		two[good[i].len] = 'x';
		test_assert(utf8_decode(two, good[i].len + 1, &cp) == good[i].len);
		test_assert(utf8_valid(two, good[i].len + 1));
	}
}

static const struct {
	const char *in;
	size_t len;
	const char *why;
} bad[] = {
	{ "\x80", 1, "a lone continuation byte" },
	{ "\xbf", 1, "a lone continuation byte" },
	{ "\xc0\x80", 2, "overlong NUL" },
	{ "\xc0\xaf", 2, "overlong '/'" },
	{ "\xc1\xbf", 2, "overlong U+7F" },
	{ "\xe0\x80\x80", 3, "overlong NUL in three bytes" },
	{ "\xe0\x9f\xbf", 3, "overlong U+7FF" },
	{ "\xf0\x80\x80\x80", 4, "overlong NUL in four bytes" },
	{ "\xf0\x8f\xbf\xbf", 4, "overlong U+FFFF" },
	{ "\xed\xa0\x80", 3, "surrogate U+D800" },
	{ "\xed\xad\xbf", 3, "surrogate U+DB7F" },
	{ "\xed\xb0\x80", 3, "surrogate U+DC00" },
	{ "\xed\xbf\xbf", 3, "surrogate U+DFFF" },
	{ "\xed\xa0\xbd\xed\xb8\x80", 6, "a surrogate pair (CESU-8)" },
	{ "\xf4\x90\x80\x80", 4, "U+110000" },
	{ "\xf5\x80\x80\x80", 4, "lead F5" },
	{ "\xf7\xbf\xbf\xbf", 4, "U+1FFFFF" },
	{ "\xf8\x88\x80\x80\x80", 5, "five-byte form" },
	{ "\xfc\x84\x80\x80\x80\x80", 6, "six-byte form" },
	{ "\xfe", 1, "FE" },
	{ "\xff", 1, "FF" },
	{ "\xc3", 1, "two-byte cut short" },
	{ "\xe2\x82", 2, "three-byte cut short" },
	{ "\xf0\x9f\x98", 3, "four-byte cut short" },
	{ "\xc3\x41", 2, "ASCII where a continuation belongs" },
	{ "\xe2\x28\xa1", 3, "ASCII in the middle of three bytes" },
	{ "\xf0\x9f\x98\x28", 4, "ASCII at the end of four bytes" },
	{ "\xc3\xc3\xa9", 3, "a lead where a continuation belongs" },
};

static void refuses_bad_sequences(void)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		uint32_t cp = 0xdeadbeef;
		test_assert(utf8_decode(bad[i].in, bad[i].len, &cp) == 0);
		test_assert(cp == 0xdeadbeef); /* untouched */
		test_assert(!utf8_valid(bad[i].in, bad[i].len));
		/* and anywhere in a longer text */
		char text[32];
		size_t n = 0;
		memcpy(text + n, "ok \xc3\xa9 ", 6);
		n += 6;
		memcpy(text + n, bad[i].in, bad[i].len);
		n += bad[i].len;
		memcpy(text + n, " end", 4);
		n += 4;
		test_assert(!utf8_valid(text, n));
	}
}

/* A valid character cut at every shorter length is refused, so a buffer boundary never reads past len. */
static void truncated_at_every_byte(void)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(good); i++) {
		for (size_t len = 0; len < good[i].len; len++) {
			test_assert(utf8_decode(good[i].in, len, NULL) == 0);
			test_assert(len == 0 || !utf8_valid(good[i].in, len));
		}
	}
	test_assert(utf8_valid("", 0));
}

/* Every one-byte and two-byte input against the rule written out plainly. */
static void exhaustive_short_inputs(void)
{
	for (unsigned a = 0; a < 256; a++) {
		unsigned char one[1] = { (unsigned char)a };
		test_assert(utf8_valid(one, 1) == (a < 0x80));
		for (unsigned b = 0; b < 256; b++) {
			unsigned char two[2] = { (unsigned char)a, (unsigned char)b };
			bool ascii = a < 0x80 && b < 0x80;
			bool pair = a >= 0xc2 && a <= 0xdf && b >= 0x80 && b <= 0xbf;
			test_assert(utf8_valid(two, 2) == (ascii || pair));
		}
	}
}

TEST_MAIN("utf8", TEST_CASE(decodes_every_length), TEST_CASE(refuses_bad_sequences), TEST_CASE(truncated_at_every_byte),
	  TEST_CASE(exhaustive_short_inputs))
