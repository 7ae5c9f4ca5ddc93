/* test_base64.c - unit tests for the base64 wrapper over OpenSSL (common/base64.c): RFC 4648 vectors both ways,
 * what the strict decoder refuses (SASL, IMAP AUTHENTICATE), what the lenient one skips (MIME), long inputs. */
#include "tests/unit/test.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *plain, *enc;
} vectors[] = {
	/* RFC 4648 section 10 */
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void rfc4648_vectors(void)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(vectors); i++) {
		size_t n = strlen(vectors[i].plain);
		buf_reset(&b);
		base64_encode(vectors[i].plain, n, &b);
		test_assert_str(buf_cstr(&b), vectors[i].enc);
		buf_reset(&b);
		test_assert(base64_decode(vectors[i].enc, strlen(vectors[i].enc), 100, &b) == IX_OK);
		test_assert(b.len == n && memcmp(buf_cstr(&b), vectors[i].plain, n) == 0);
		buf_reset(&b);
		base64_decode_lenient(vectors[i].enc, strlen(vectors[i].enc), &b);
		test_assert(b.len == n && memcmp(buf_cstr(&b), vectors[i].plain, n) == 0);
	}
	/* appends after what out holds, NULs and high bytes included */
	buf_reset(&b);
	buf_append_str(&b, "x:");
	base64_encode("\0\xff\x80", 3, &b);
	test_assert_str(buf_cstr(&b), "x:AP+A");
	buf_reset(&b);
	buf_append_str(&b, "x:");
	test_assert(base64_decode("AP+A", 4, 3, &b) == IX_OK);
	test_assert(b.len == 5 && memcmp(b.data, "x:\0\xff\x80", 5) == 0);
	buf_free(&b);
}

static void strict_refuses(void)
{
	static const char *const bad[] = {
		"Zg=",                             /* not a multiple of 4 */
		"Z===",                            /* three pads */
		"Zg=a",                            /* pad before the end */
		"Z=8v",                            /* pad in the middle (OpenSSL alone would take it as zero bits) */
		"Zm9v\n",                          /* line break */
		" Zm9v",                           /* leading space (OpenSSL alone trims it) */
		"Zh==",                            /* non-zero bits dropped by two pads */
		"Zm9=",                            /* non-zero bits dropped by one pad */
		"=Zm9",     "Zm 9",    "Zg==Zg==", /* padding inside concatenated groups */
		"Zm9v====",                        /* a group of pads */
		"Zm9-",                            /* the URL alphabet */
		"Zm9_",     "Zm9\x80",
	};
	struct buf b = BUF_INIT;
	buf_append_str(&b, "kept");
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		test_assert(base64_decode(bad[i], strlen(bad[i]), 100, &b) == IX_EINVAL);
		test_assert_str(buf_cstr(&b), "kept"); /* out as it was */
	}
	test_assert(base64_decode("Zm9vYmFy", 8, 5, &b) == IX_ELIMIT);
	test_assert(base64_decode("Zm9vYg==", 8, 3, &b) == IX_ELIMIT);
	test_assert_str(buf_cstr(&b), "kept");
	test_assert(base64_decode("Zm9vYg==", 8, 4, &b) == IX_OK);
	test_assert_str(buf_cstr(&b), "keptfoob");
	buf_free(&b);
}

/* The MIME decoder's habits: junk and line breaks skipped, '=' ends the run, a cut last group gives what it holds. */
static void lenient_skips(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "Zm9v\r\nYmFy\r\n", "foobar" },
		{ " Z m 9 v ", "foo" },
		{ "Zm9v*Ym!Fy", "foobar" },
		{ "Zm9vYg==Zm9v", "foob" }, /* stops at the first '=' */
		{ "Zm9vYg", "foob" },       /* unpadded */
		{ "Zm9vYmE", "fooba" },
		{ "Zm9vY", "foo" }, /* a lone character gives nothing */
		{ "!!!", "" },
		{ "Zh", "f" }, /* dropped bits are ignored */
	};
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		buf_reset(&b);
		base64_decode_lenient(cases[i].in, strlen(cases[i].in), &b);
		test_assert_str(buf_cstr(&b), cases[i].out);
	}
	buf_free(&b);
}

/* Inputs longer than the chunks handed to OpenSSL, with every length of last group. */
static void long_inputs(void)
{
	for (size_t n = 10000; n < 10003; n++) {
		unsigned char *data = xmalloc(n);
		for (size_t i = 0; i < n; i++)
			data[i] = (unsigned char)(i * 7 + n);
		struct buf enc = BUF_INIT, dec = BUF_INIT, lines = BUF_INIT;
		base64_encode(data, n, &enc);
		test_assert(enc.len == (n + 2) / 3 * 4 && strlen(buf_cstr(&enc)) == enc.len);
		test_assert(base64_decode(enc.data, enc.len, n, &dec) == IX_OK);
		test_assert(dec.len == n && memcmp(dec.data, data, n) == 0);
		/* the same as MIME carries it: 76-character lines */
		for (size_t i = 0; i < enc.len; i += 76) {
			buf_append(&lines, enc.data + i, enc.len - i < 76 ? enc.len - i : 76);
			buf_append(&lines, "\r\n", 2);
		}
		buf_reset(&dec);
		base64_decode_lenient(lines.data, lines.len, &dec);
		test_assert(dec.len == n && memcmp(dec.data, data, n) == 0);
		buf_free(&enc);
		buf_free(&dec);
		buf_free(&lines);
		free(data);
	}
}

TEST_MAIN("base64", TEST_CASE(rfc4648_vectors), TEST_CASE(strict_refuses), TEST_CASE(lenient_skips),
	  TEST_CASE(long_inputs))
