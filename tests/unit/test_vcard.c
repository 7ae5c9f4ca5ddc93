/* test_vcard.c - the vCard text of the CardDAV address book (transport/http/vcard.h): both versions, escaping,
 * folding at 75 octets without cutting a UTF-8 character, the photo, and the text matches of query filters. */
#include "tests/unit/test.h"
#include "common/util.h"
#include "transport/http/vcard.h"

#include <stdlib.h>
#include <string.h>

static void person(struct vcard *v)
{
	memset(v, 0, sizeof(*v));
	v->uid = xstrdup("112f22fa-8671-1041-89f2-fdc2241eed56");
	v->fn = xstrdup("Zoë Smith, Jr.; the \\ one");
	v->given = xstrdup("Zoë");
	v->surname = xstrdup("Smith");
	v->company = xstrdup("Example");
	v->department = xstrdup("Sales");
	v->phone = xstrdup("+44 20 7946 0000");
	v->rev = xstrdup("20261207095512Z");
	v->emails = xcalloc(2, sizeof(*v->emails));
	v->emails[0] = xstrdup("zoe.smith@example.com");
	v->emails[1] = xstrdup("zs@example.com");
	v->email_count = 2;
}

/* Every line ends in CRLF and has at most 75 octets; a continuation starts with one space and no line ends inside
 * a UTF-8 sequence. */
static void lines_folded(const char *text)
{
	const char *p = text;
	while (*p != '\0') {
		const char *end = strstr(p, "\r\n");
		test_assert(end != NULL);
		test_assert(end - p <= 75);
		test_assert(end == p || ((unsigned char)end[-1] & 0xC0) != 0xC0); /* not the lead byte of a sequence */
		test_assert(((unsigned char)end[2] & 0xC0) != 0x80 || end[2] == '\0');
		p = end + 2;
	}
}

static void version4(void)
{
	struct vcard v;
	person(&v);
	struct buf out = BUF_INIT;
	vcard_write(&v, 4, &out);
	const char *t = buf_cstr(&out);
	test_assert(strncmp(t, "BEGIN:VCARD\r\nVERSION:4.0\r\n", 26) == 0);
	test_assert(strstr(t, "\r\nUID:urn:uuid:112f22fa-8671-1041-89f2-fdc2241eed56\r\n") != NULL);
	test_assert(strstr(t, "\r\nKIND:individual\r\n") != NULL);
	test_assert(strstr(t, "\r\nFN:Zoë Smith\\, Jr.\\; the \\\\ one\r\n") != NULL);
	test_assert(strstr(t, "\r\nN:Smith;Zoë;;;\r\n") != NULL);
	test_assert(
		strstr(t, "\r\nEMAIL;TYPE=work;PREF=1:zoe.smith@example.com\r\nEMAIL;TYPE=work:zs@example.com\r\n"));
	test_assert(strstr(t, "\r\nORG:Example;Sales\r\n") != NULL);
	test_assert(strstr(t, "\r\nREV:20261207T095512Z\r\n") != NULL);
	test_assert(strlen(t) > 11 && strcmp(t + strlen(t) - 11, "END:VCARD\r\n") == 0);
	lines_folded(t);
	buf_free(&out);
	vcard_free(&v);
}

static void version3_group_and_photo(void)
{
	struct vcard v;
	person(&v);
	v.group = true;
	v.photo_len = 3000;
	v.photo = xmalloc(v.photo_len);
	for (size_t i = 0; i < v.photo_len; i++)
		v.photo[i] = (unsigned char)(i * 7);
	free(v.fn);
	/* 40 two-octet characters: a fold falls inside one unless the writer takes care */
	v.fn = xstrdup("ééééééééééééééééééééééééééééééééééééééééééééééééé");
	v.member_count = 2;
	v.members = xcalloc(2, sizeof(*v.members));
	v.members[0] = xstrdup("0a2f22fa-8671-1041-89f2-fdc2241eed01");
	v.members[1] = xstrdup("0a2f22fa-8671-1041-89f2-fdc2241eed02");
	struct buf out = BUF_INIT, four = BUF_INIT;
	vcard_write(&v, 4, &four);
	test_assert(strstr(buf_cstr(&four), "\r\nKIND:group\r\n") != NULL);
	test_assert(strstr(buf_cstr(&four), "\r\nMEMBER:urn:uuid:0a2f22fa-8671-1041-89f2-fdc2241eed02\r\n") != NULL);
	buf_free(&four);
	vcard_write(&v, 3, &out);
	const char *t = buf_cstr(&out);
	test_assert(strstr(t, "\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:0a2f22fa-8671-1041-89f2-fdc2241eed01\r\n") !=
		    NULL);
	test_assert(strstr(t, "\r\nMEMBER:") == NULL);
	test_assert(strstr(t, "\r\nVERSION:3.0\r\n") != NULL);
	test_assert(strstr(t, "\r\nUID:112f22fa-8671-1041-89f2-fdc2241eed56\r\n") != NULL);
	test_assert(strstr(t, "\r\nX-ADDRESSBOOKSERVER-KIND:group\r\n") != NULL);
	test_assert(strstr(t, "KIND:individual") == NULL);
	test_assert(strstr(t, "\r\nPHOTO;ENCODING=b;TYPE=JPEG:") != NULL);
	test_assert(strstr(t, "\r\nEMAIL;TYPE=INTERNET,WORK,PREF:zoe.smith@example.com\r\n") != NULL);
	test_assert(strstr(t, "\r\nTEL;TYPE=WORK,VOICE:+44 20 7946 0000\r\n") != NULL);
	test_assert(strstr(t, "\r\nREV:2026-12-07T09:55:12Z\r\n") != NULL);
	lines_folded(t);
	buf_free(&out);
	vcard_free(&v);
}

static void values_and_matches(void)
{
	struct vcard v;
	person(&v);
	char storage[256];
	const char *vals[VCARD_VALUES_MAX];
	test_assert(vcard_values(&v, "email", storage, sizeof(storage), vals, VCARD_VALUES_MAX) == 2);
	test_assert_str(vals[1], "zs@example.com");
	test_assert(vcard_values(&v, "N", storage, sizeof(storage), vals, VCARD_VALUES_MAX) == 1);
	test_assert_str(vals[0], "Smith;Zoë");
	test_assert(vcard_values(&v, "NICKNAME", storage, sizeof(storage), vals, VCARD_VALUES_MAX) == 0);
	test_assert(vcard_values(&v, "X-UNKNOWN", storage, sizeof(storage), vals, VCARD_VALUES_MAX) == 0);
	test_assert(vcard_text_match("Zoe.Smith@Example.com", "smith@", NULL, false));
	test_assert(!vcard_text_match("Zoe.Smith@Example.com", "smith@", "contains", true));
	test_assert(vcard_text_match("Zoe", "zoe", "equals", false));
	test_assert(!vcard_text_match("Zoey", "zoe", "equals", false));
	test_assert(vcard_text_match("Zoey", "ZO", "starts-with", false));
	test_assert(vcard_text_match("Zoey", "EY", "ends-with", false));
	test_assert(!vcard_text_match("ey", "Zoey", "ends-with", false));
	test_assert(!vcard_text_match("Zoey", "o", "sounds-like", false));
	vcard_free(&v);
}

TEST_MAIN("vcard", TEST_CASE(version4), TEST_CASE(version3_group_and_photo), TEST_CASE(values_and_matches))
