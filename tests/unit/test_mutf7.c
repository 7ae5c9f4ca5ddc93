/* test_mutf7.c - unit tests for modified UTF-7 conversion and mailbox-name validation.
 * Table-driven: canonical pairs both ways, then inputs each direction must reject. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/err.h"
#include "transport/imap/mutf7.h"
#include "common/util.h"
#include "common/utf8.h"

#include <string.h>

static const struct {
	const char *mutf7, *utf8;
} pairs[] = {
	{ "INBOX", "INBOX" },
	{ "&-", "&" },
	{ "Tom &- Jerry", "Tom & Jerry" },
	{ "Entw&APw-rfe", "Entw\xc3\xbc"
			  "rfe" },
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },                                           /* U+1F600: a surrogate pair */
	{ "&AMk-t&AOk-", "\xc3\x89t\xc3\xa9" },                                       /* Été */
	{ "&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9" },                                 /* one run, three units */
	{ "&BB8EQAQ4BDIENQRC-", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" }, /* Привет */
	{ "a&AH8-b", "a\x7f"
		     "b" }, /* DEL is encoded */
	{ "", "" },
};

static void mutf7_pairs_both_ways(void)
{
	struct buf out = BUF_INIT, err = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(pairs); i++) {
		buf_reset(&out);
		test_assert(mutf7_to_utf8(pairs[i].mutf7, strlen(pairs[i].mutf7), &out, &err) == 0);
		test_assert_str(buf_cstr(&out), pairs[i].utf8);
		buf_reset(&out);
		test_assert(mutf7_from_utf8(pairs[i].utf8, strlen(pairs[i].utf8), &out, &err) == 0);
		test_assert_str(buf_cstr(&out), pairs[i].mutf7);
	}
	test_assert(err.len == 0);
	buf_free(&out);
	buf_free(&err);
}

static void mutf7_rejects_bad_input(void)
{
	static const struct {
		const char *in, *msg;
	} bad[] = {
		{ "&", "Unterminated modified UTF-7 base64 run" },
		{ "&U,BTFw", "Unterminated modified UTF-7 base64 run" },
		{ "&AGE-", "Printable ASCII encoded in modified UTF-7 base64" },
		{ "&2D0-", "Unpaired surrogate in modified UTF-7" },
		{ "&3gA-", "Unpaired surrogate in modified UTF-7" },
		{ "&2D0AQQ-", "Unpaired surrogate in modified UTF-7" },
		{ "&AOk-&AOk-", "Adjacent modified UTF-7 base64 runs (non-canonical)" },
		{ "&AOl-", "Non-canonical modified UTF-7 base64 padding" },
		{ "&AOkA-", "Non-canonical modified UTF-7 base64 padding" },
		{ "&AAA-", "NUL in modified UTF-7" },
		{ "&A/k-", "Invalid character in modified UTF-7 base64" },
		{ "&A=k-", "Invalid character in modified UTF-7 base64" },
		{ "caf\xc3\xa9", "Invalid byte in modified UTF-7 (8-bit or control)" },
		{ "a\tb", "Invalid byte in modified UTF-7 (8-bit or control)" },
	};
	struct buf out = BUF_INIT, err = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		buf_reset(&err);
		test_assert(mutf7_to_utf8(bad[i].in, strlen(bad[i].in), &out, &err) == IX_EINVAL);
		test_assert_str(buf_cstr(&err), bad[i].msg);
	}
	static const char *const bad_utf8[] = { "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",    "\xe2\x82",
						"\x80",     "\xff",         "\xf8\x88\x80\x80\x80" };
	for (size_t i = 0; i < IX_ARRAY_LEN(bad_utf8); i++) {
		buf_reset(&err);
		test_assert(mutf7_from_utf8(bad_utf8[i], strlen(bad_utf8[i]), &out, &err) == IX_EINVAL);
		test_assert_str(buf_cstr(&err), "Invalid UTF-8 in mailbox name");
		test_assert(!utf8_valid(bad_utf8[i], strlen(bad_utf8[i])));
	}
	buf_reset(&err);
	test_assert(mutf7_from_utf8("a\0b", 3, &out, &err) == IX_EINVAL);
	test_assert(utf8_valid("\xf4\x8f\xbf\xbf", 4));
	buf_free(&out);
	buf_free(&err);
}

static void mailbox_names(void)
{
	struct buf err = BUF_INIT;
	static const char *const good[] = {
		"INBOX",  "INBOX/Sent", "Work/Projects & Plans", "\xc3\x89t\xc3\xa9", "a/b/c", "[Gmail]/All Mail",
		".hidden"
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(good); i++)
		test_assert(mutf7_mailbox_name_check(good[i], strlen(good[i]), '/', &err) == 0);
	static const struct {
		const char *in, *msg;
	} bad[] = {
		{ "", "Empty mailbox name" },
		{ "/a", "Empty component in mailbox name" },
		{ "a/", "Empty component in mailbox name" },
		{ "a//b", "Empty component in mailbox name" },
		{ "a/../b", "Mailbox name component . or .. not allowed" },
		{ "a*", "Wildcard character in mailbox name" },
		{ "50%", "Wildcard character in mailbox name" },
		{ "a\x01", "Control character in mailbox name" },
		{ "a\xc2\x85", "Control character in mailbox name" },
		{ "a\xc3", "Invalid UTF-8 in mailbox name" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		buf_reset(&err);
		test_assert(mutf7_mailbox_name_check(bad[i].in, strlen(bad[i].in), '/', &err) == IX_EINVAL);
		test_assert_str(buf_cstr(&err), bad[i].msg);
	}
	char big[MUTF7_MAX_NAME + 2];
	memset(big, 'a', sizeof(big));
	buf_reset(&err);
	test_assert(mutf7_mailbox_name_check(big, MUTF7_MAX_NAME + 1, '/', &err) == IX_ELIMIT);
	buf_reset(&err);
	test_assert(mutf7_mailbox_name_check(big, MUTF7_MAX_COMPONENT + 1, '/', &err) == IX_ELIMIT);
	test_assert(mutf7_mailbox_name_check(big, MUTF7_MAX_COMPONENT, '/', &err) == 0);
	for (size_t i = 1; i < 80; i += 2)
		big[i] = '/';
	buf_reset(&err);
	test_assert(mutf7_mailbox_name_check(big, 80, '/', &err) == IX_ELIMIT);
	test_assert_str(buf_cstr(&err), "Mailbox hierarchy too deep");
	buf_free(&err);
}

TEST_MAIN("mutf7", TEST_CASE(mutf7_pairs_both_ways), TEST_CASE(mutf7_rejects_bad_input), TEST_CASE(mailbox_names))
