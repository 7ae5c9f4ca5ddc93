/* test_imap_sort.c - the pure parts of SORT and THREAD: RFC 5256 base subjects (also byte by byte), sort
 * programs and orderings, Message-ID lists, ORDEREDSUBJECT, REFERENCES and REFS threads. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "tests/unit/test.h"
#include "transport/imap/imap_sort.h"

static void base_subjects(void)
{
	static const struct {
		const char *in, *out;
		bool reply;
	} cases[] = {
		{ "Hello", "HELLO", false },
		{ "Re: hello", "HELLO", true },
		{ "RE: [list] Re: Fwd: hello (fwd)", "HELLO", true },
		{ "[Fwd: Re: test]", "TEST", true },
		{ "[tag] subject", "SUBJECT", false },
		{ "[tag][two]  subject", "SUBJECT", false },
		{ "[only blob]", "[ONLY BLOB]", false },
		{ "Re:  ", "", true },
		{ "  lots   of\t space \r\n here  ", "LOTS OF SPACE HERE", false },
		{ "Reply: x", "REPLY: X", false },
		{ "Re [x]: y", "Y", true },
		{ "[a] Re [b]: [c] FW: z", "Z", true },
		{ "fw: a", "A", true },
		{ "Fwd:Re:(fwd)", "", true },
		{ "x (FWD) (fwd)  ", "X", true },
		{ "Re: [fwd: inner] ", "INNER", true },
		{ "re:re:re: ünïcode",
		  "U\xcc\x88"
		  "NI\xcc\x88"
		  "CODE",
		  true },                                                 /* i;unicode-casemap: Ü as U + U+0308 */
		{ "Re: \xc7\x86 \xc3\x9f", "Dz\xcc\x8c \xc3\x9f", true }, /* RFC 5051's DZ example; ß stays */
		{ "Re: caf\xe9",
		  "\xff"
		  "caf\xe9",
		  true }, /* not UTF-8: its bytes as they are, after every valid key */
		{ "[unclosed subject", "[UNCLOSED SUBJECT", false },
		{ "", "", false },
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		bool reply = imap_base_subject(cases[i].in, strlen(cases[i].in), &out);
		test_assert_str(buf_cstr(&out), cases[i].out);
		test_assert(reply == cases[i].reply);
	}
	buf_free(&out);
}

/* Every prefix of a subject, each in an allocation of exactly its length (a read past the end is an ASan error),
 * gives what the same bytes give inside a larger buffer; every byte value alone; a subject over the limit. */
static void base_subject_bytes(void)
{
	const char *s = "Re: [list] Fwd: [Fwd: Re: a (fwd)] (fwd)";
	size_t len = strlen(s);
	struct buf a = BUF_INIT, b = BUF_INIT;
	for (size_t n = 0; n <= len; n++) {
		char *exact = xmalloc(n + 1);
		memcpy(exact, s, n);
		bool ra = imap_base_subject(exact, n, &a);
		bool rb = imap_base_subject(s, n, &b);
		test_assert(a.len == b.len && memcmp(buf_cstr(&a), buf_cstr(&b), a.len) == 0 && ra == rb);
		free(exact);
	}
	test_assert_str(buf_cstr(&a), "A");
	for (int c = 0; c < 256; c++) {
		char one = (char)c;
		imap_base_subject(&one, 1, &a);
		test_assert(c < 0x80 ? a.len <= 1 : a.len == 2 && (unsigned char)a.data[0] == 0xFF); /* not UTF-8 */
	}
	size_t big = IMAP_SUBJECT_MAX * 2;
	char *long_subject = xmalloc(big);
	memset(long_subject, 'a', big);
	memcpy(long_subject, "Re: ", 4);
	test_assert(imap_base_subject(long_subject, big, &a));
	test_assert(a.len == IMAP_SUBJECT_MAX - 4);
	/* two-byte characters across the limit: cut before the character the limit splits, so the key stays UTF-8 */
	long_subject[0] = 'x';
	for (size_t i = 1; i + 1 < big; i += 2)
		memcpy(long_subject + i, "\xc3\xa9", 2);
	imap_base_subject(long_subject, big, &a);
	test_assert(a.len > 0 && (unsigned char)a.data[0] == 'X');
	free(long_subject);
	buf_free(&a);
	buf_free(&b);
}

static void sort_programs(void)
{
	struct imap_arg el[4] = { { .type = IMAP_ARG_ATOM, .str = "REVERSE", .len = 7 },
				  { .type = IMAP_ARG_ATOM, .str = "date", .len = 4 },
				  { .type = IMAP_ARG_ATOM, .str = "DISPLAYFROM", .len = 11 },
				  { .type = IMAP_ARG_ATOM, .str = "REVERSE", .len = 7 } };
	struct imap_arg list = { .type = IMAP_ARG_LIST, .list = el, .list_count = 3 };
	struct imap_sort_key keys[IMAP_SORT_MAX_KEYS];
	size_t n;
	struct buf err = BUF_INIT;
	test_assert(imap_sort_parse(&list, keys, &n, &err) == 0);
	test_assert(n == 2 && keys[0].type == IMAP_SORT_DATE && keys[0].reverse);
	test_assert(keys[1].type == IMAP_SORT_DISPLAYFROM && !keys[1].reverse);
	list.list_count = 4; /* a trailing REVERSE */
	test_assert(imap_sort_parse(&list, keys, &n, &err) == IX_EINVAL);
	list.list_count = 0;
	test_assert(imap_sort_parse(&list, keys, &n, &err) == IX_EINVAL);
	struct imap_arg two_rev[2] = { el[0], el[0] };
	list.list = two_rev;
	list.list_count = 2;
	test_assert(imap_sort_parse(&list, keys, &n, &err) == IX_EINVAL);
	struct imap_arg bad = { .type = IMAP_ARG_ATOM, .str = "COLOR", .len = 5 };
	list.list = &bad;
	list.list_count = 1;
	test_assert(imap_sort_parse(&list, keys, &n, &err) == IX_EINVAL);
	buf_free(&err);
}

static void sort_orders(void)
{
	struct imap_sort_msg m[5] = {
		{ .seq = 1, .arrival = 5, .date = 30, .size = 10, .from = "BOB", .subject = "B" },
		{ .seq = 2, .arrival = 4, .date = 10, .size = 10, .from = "alice", .subject = "A" },
		{ .seq = 3, .arrival = 3, .date = 30, .size = 5, .from = "", .subject = "B" },
		{ .seq = 4, .arrival = 2, .date = 20, .size = 7, .from = "ALICE", .subject = "A" },
		{ .seq = 5, .arrival = 1, .date = 10, .size = 7, .from = "BOB", .subject = "" },
	};
	for (size_t i = 0; i < 5; i++) {
		m[i].cc = m[i].to = m[i].display_from = m[i].display_to = "";
	}
	struct {
		struct imap_sort_key keys[2];
		size_t nkeys;
		uint32_t order[5];
	} cases[] = {
		{ { { IMAP_SORT_DATE, true } }, 1, { 1, 3, 4, 2, 5 } },
		{ { { IMAP_SORT_DATE, false } }, 1, { 2, 5, 4, 1, 3 } },
		{ { { IMAP_SORT_ARRIVAL, false } }, 1, { 5, 4, 3, 2, 1 } },
		{ { { IMAP_SORT_SIZE, false }, { IMAP_SORT_DATE, true } }, 2, { 3, 4, 5, 1, 2 } },
		{ { { IMAP_SORT_SUBJECT, false }, { IMAP_SORT_SIZE, false } }, 2, { 5, 4, 2, 3, 1 } },
		{ { { IMAP_SORT_FROM, false } }, 1, { 3, 4, 1, 5, 2 } }, /* byte order: "ALICE" < "BOB" < "alice" */
	};
	for (size_t c = 0; c < IX_ARRAY_LEN(cases); c++) {
		imap_sort_messages(m, 5, cases[c].keys, cases[c].nkeys);
		for (size_t i = 0; i < 5; i++)
			test_assert(m[i].seq == cases[c].order[i]);
	}
	imap_sort_messages(m, 0, cases[0].keys, 1);
}

static void message_ids(void)
{
	struct buf ids = BUF_INIT;
	const char *v = "<a@b> <c (comment) @d>  junk <bad> <x<y@z> <@n> <m@> <last@one";
	test_assert(imap_msgid_parse(v, strlen(v), 0, &ids) == 3);
	test_assert(ids.len == strlen("<a@b>") + strlen("<c@d>") + strlen("<y@z>") + 3);
	test_assert_str(ids.data, "<a@b>");
	test_assert_str(ids.data + 6, "<c@d>");
	test_assert_str(ids.data + 12, "<y@z>");
	buf_reset(&ids);
	test_assert(imap_msgid_parse(v, strlen(v), 1, &ids) == 1);
	test_assert(ids.len == 6 && strcmp(ids.data, "<y@z>") == 0);
	buf_reset(&ids);
	test_assert(imap_msgid_parse("", 0, 0, &ids) == 0 && ids.len == 0);
	buf_free(&ids);
}

/* an initializer, not a block: clang-format would brace it as one */
/* clang-format off */
#define MSG(id_, date_, subj_, mid_, irt_, refs_) { id_, date_, subj_, false, mid_, irt_, refs_ }
/* clang-format on */

/* Threads m[0..n) (raw subjects: their base subjects and reply marks are filled in) both ways and compares the
 * answers with references and orderedsubject (NULL: not checked). */
static bool threads_are(struct imap_thread_msg *m, size_t n, const char *references, const char *orderedsubject)
{
	struct buf *subjects = xcalloc(n, sizeof(*subjects)), out = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		m[i].reply = imap_base_subject(m[i].subject, strlen(m[i].subject), &subjects[i]);
		m[i].subject = buf_cstr(&subjects[i]);
	}
	imap_thread_references(m, n, &out);
	bool ok = strcmp(buf_cstr(&out), references) == 0;
	buf_reset(&out);
	imap_thread_orderedsubject(m, n, &out);
	ok = ok && (orderedsubject == NULL || strcmp(buf_cstr(&out), orderedsubject) == 0);
	for (size_t i = 0; i < n; i++)
		buf_free(&subjects[i]);
	free(subjects);
	buf_free(&out);
	return ok;
}

static void threads(void)
{
	struct imap_thread_msg m[] = {
		MSG(1, 10, "Hello", "<1@x>", NULL, NULL),         MSG(2, 20, "Re: Hello", "<2@x>", NULL, "<1@x>"),
		MSG(3, 15, "Re: Hello", "<3@x>", "<1@x>", NULL),  MSG(4, 30, "Re: Hello", "<4@x>", NULL, "<1@x> <3@x>"),
		MSG(5, 5, "Other", "<5@x>", NULL, NULL),          MSG(6, 40, "Re: Other", "<6@x>", NULL, NULL),
		MSG(7, 50, "Lost", "<7@x>", NULL, "<missing@x>"), MSG(8, 45, "Re: Lost", "<8@x>", NULL, "<missing@x>"),
	};
	test_assert(threads_are(m, IX_ARRAY_LEN(m), "(5 6)(1 (3 4)(2))((8)(7))", "(5 6)(1 (3)(2)(4))(8 7)"));
	test_assert(threads_are(m, 0, "", ""));
}

/* Loops in References, a message naming itself, repeated and missing Message-IDs, two non-reply threads with
 * one subject (a new dummy above both), a References chain through unknown ids (pruned). */
static void thread_oddities(void)
{
	struct imap_thread_msg m[] = {
		MSG(1, 1, "loop", "<a@x>", NULL, "<b@x>"),
		MSG(2, 2, "loop", "<b@x>", NULL, "<a@x>"),
		MSG(3, 3, "self", "<s@x>", NULL, "<s@x>"),
		MSG(4, 4, "dup", "<d@x>", NULL, NULL),
		MSG(5, 5, "dup", "<d@x>", NULL, NULL),
		MSG(6, 6, "none", NULL, NULL, NULL),
		MSG(7, 7, "chain", "<c@x>", NULL, "<u1@x> <u2@x> <s@x>"),
		MSG(8, 8, "", "bogus", NULL, "<u3@x>"),
	};
	/* 1 and 2: 1's References made <b@x> its parent; 2 (<b@x>) under 1 would close a loop, so 2 stays on top */
	test_assert(threads_are(m, IX_ARRAY_LEN(m), "(2 1)(3 7)((4)(5))(6)(8)", NULL));
}

/* REFS: the links of REFERENCES without its subject merge ("Re: Other" stays a thread of its own), the threads in the
 * order of their most recent message (the Hello thread's latest is 4, at 30: after "Other" at 5, before "Re: Other"
 * at 40 and the dummy whose latest is 7, at 50). */
static void refs_threads(void)
{
	struct imap_thread_msg m[] = {
		MSG(1, 10, "Hello", "<1@x>", NULL, NULL),         MSG(2, 20, "Re: Hello", "<2@x>", NULL, "<1@x>"),
		MSG(3, 15, "Re: Hello", "<3@x>", "<1@x>", NULL),  MSG(4, 30, "Re: Hello", "<4@x>", NULL, "<1@x> <3@x>"),
		MSG(5, 5, "Other", "<5@x>", NULL, NULL),          MSG(6, 40, "Re: Other", "<6@x>", NULL, NULL),
		MSG(7, 50, "Lost", "<7@x>", NULL, "<missing@x>"), MSG(8, 45, "Re: Lost", "<8@x>", NULL, "<missing@x>"),
	};
	struct buf out = BUF_INIT;
	imap_thread_refs(m, IX_ARRAY_LEN(m), &out);
	test_assert_str(buf_cstr(&out), "(5)(1 (3 4)(2))(6)((8)(7))");
	/* a late reply moves its thread to the end */
	m[4].date = 60;
	buf_reset(&out);
	imap_thread_refs(m, IX_ARRAY_LEN(m), &out);
	test_assert_str(buf_cstr(&out), "(1 (3 4)(2))(6)((8)(7))(5)");
	buf_reset(&out);
	imap_thread_refs(m, 0, &out);
	test_assert(out.len == 0);
	buf_free(&out);
}

TEST_MAIN("imap_sort", TEST_CASE(base_subjects), TEST_CASE(base_subject_bytes), TEST_CASE(sort_programs),
	  TEST_CASE(sort_orders), TEST_CASE(message_ids), TEST_CASE(threads), TEST_CASE(thread_oddities),
	  TEST_CASE(refs_threads))
