/* test_mime.c - unit tests for the store's MIME parser: byte-exact ENVELOPE / BODYSTRUCTURE for real-looking
 * messages, malformed structures, limits, sections, header fields, decoding, serialization and every prefix. */
#include "tests/unit/test.h"
#include "common/err.h"
#include "store/mime.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sample messages are the same as tests/fuzz/corpus/mime/NAME.eml. */
static const char msg_plain[] = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
				"From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
				"Subject: afternoon meeting\r\n"
				"To: mooch@owatagu.siam.edu\r\n"
				"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n"
				"MIME-Version: 1.0\r\n"
				"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
				"\r\n"
				"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

static const char msg_alternative[] = "Return-Path: <alice@example.org>\r\n"
				      "Date: Tue, 03 Mar 2020 10:15:00 +0100\r\n"
				      "From: \"Alice Liddell\" <alice@example.org>\r\n"
				      "To: Bob <bob@example.com>, carol@example.net\r\n"
				      "Cc: \"Dave, the admin\" <dave@example.com>\r\n"
				      "Subject: Lunch plans\r\n"
				      "Message-ID: <abc123@mail.example.org>\r\n"
				      "In-Reply-To: <xyz789@mail.example.com>\r\n"
				      "References: <xyz789@mail.example.com>\r\n"
				      "MIME-Version: 1.0\r\n"
				      "Content-Type: multipart/alternative; boundary=\"b1_alt\"\r\n"
				      "\r\n"
				      "This is a multi-part message in MIME format.\r\n"
				      "--b1_alt\r\n"
				      "Content-Type: text/plain; charset=utf-8\r\n"
				      "Content-Transfer-Encoding: quoted-printable\r\n"
				      "\r\n"
				      "Shall we meet at the caf=C3=A9 at noon?\r\n"
				      "See you there.\r\n"
				      "--b1_alt\r\n"
				      "Content-Type: text/html; charset=utf-8\r\n"
				      "Content-Transfer-Encoding: quoted-printable\r\n"
				      "\r\n"
				      "<html><body><p>Shall we meet at the caf=C3=A9 at noon?</p></body></html>\r\n"
				      "--b1_alt--\r\n";

static const char msg_mixed_attach[] = "Date: Wed, 15 Jul 2020 08:00:00 +0000\r\n"
				       "From: reports@example.com\r\n"
				       "To: team@example.com\r\n"
				       "Subject: Monthly report\r\n"
				       "Message-ID: <r-2020-07@example.com>\r\n"
				       "MIME-Version: 1.0\r\n"
				       "Content-Type: multipart/mixed; boundary=\"==MIX==\"\r\n"
				       "\r\n"
				       "--==MIX==\r\n"
				       "Content-Type: text/plain; charset=us-ascii\r\n"
				       "\r\n"
				       "Please find the report attached.\r\n"
				       "--==MIX==\r\n"
				       "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
				       "Content-Transfer-Encoding: base64\r\n"
				       "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
				       "Content-ID: <part2@example.com>\r\n"
				       "Content-Description: July report\r\n"
				       "\r\n"
				       "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n"
				       "ZW5kc3RyZWFtCmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n"
				       "--==MIX==--\r\n";

static const char msg_rfc822[] = "Date: Thu, 01 Oct 2020 12:00:00 -0400\r\n"
				 "From: Eve <eve@example.org>\r\n"
				 "To: frank@example.com\r\n"
				 "Subject: Fwd: Original\r\n"
				 "Message-ID: <fwd1@example.org>\r\n"
				 "MIME-Version: 1.0\r\n"
				 "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
				 "\r\n"
				 "--outer\r\n"
				 "Content-Type: text/plain\r\n"
				 "\r\n"
				 "See below.\r\n"
				 "--outer\r\n"
				 "Content-Type: message/rfc822\r\n"
				 "\r\n"
				 "Date: Wed, 30 Sep 2020 09:00:00 +0000\r\n"
				 "From: Grace <grace@example.net>\r\n"
				 "To: eve@example.org\r\n"
				 "Subject: Original\r\n"
				 "Message-ID: <orig@example.net>\r\n"
				 "MIME-Version: 1.0\r\n"
				 "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
				 "\r\n"
				 "--inner\r\n"
				 "Content-Type: text/plain; charset=us-ascii\r\n"
				 "\r\n"
				 "Hi Eve\r\n"
				 "--inner\r\n"
				 "Content-Type: text/html; charset=us-ascii\r\n"
				 "\r\n"
				 "<b>Hi Eve</b>\r\n"
				 "--inner--\r\n"
				 "--outer--\r\n";

static const char msg_group[] = "From: \"Project Lead\" <lead@example.com>\r\n"
				"To: Team: alice@example.com, \"Bob B.\" <bob@example.com>;, ops@example.com\r\n"
				"Cc: undisclosed-recipients:;\r\n"
				"Bcc: jane (Jane Doe) @example.com, \"john smith\"@example.com, nohost\r\n"
				"Subject: Groups\r\n"
				"Date: 1 Jan 2021 00:00 GMT\r\n"
				"\r\n"
				"body\r\n";

static const char msg_encoded[] = "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n"
				  "To: =?utf-8?B?S8O2bmln?= <koenig@example.de>\r\n"
				  "Subject: =?utf-8?b?SGVsbG8g?=\r\n"
				  " =?utf-8?q?W=C3=B6rld?= and =?x-unknown?q?keep?=\r\n"
				  "Date: Sat, 2 Jan 2021 03:04:05 +0200\r\n"
				  "Content-Type: text/plain; charset=\"windows-1252\"\r\n"
				  "Content-Transfer-Encoding: 8bit\r\n"
				  "\r\n"
				  "caf\xe9"
				  " \x80"
				  " price\r\n";

static const char msg_nobound[] = "From: a@example.com\r\n"
				  "Subject: no boundary\r\n"
				  "Content-Type: multipart/mixed\r\n"
				  "\r\n"
				  "--whatever\r\n"
				  "Content-Type: text/plain\r\n"
				  "\r\n"
				  "x\r\n"
				  "--whatever--\r\n";

static const char msg_truncated[] = "From: a@example.com\r\n"
				    "Subject: cut\r\n"
				    "Content-Type: multipart/mixed; boundary=cut\r\n"
				    "\r\n"
				    "--cut\r\n"
				    "Content-Type: text/plain\r\n"
				    "\r\n"
				    "first part\r\n"
				    "--cut\r\n"
				    "Content-Type: application/octet-stream\r\n"
				    "Content-Transfer-Encoding: base64\r\n"
				    "\r\n"
				    "AAECAwQF\r\n";

static const char msg_barelf[] = "From: lf@example.com\n"
				 "To: x@example.com\n"
				 "Subject: bare LF\n"
				 "Content-Type: multipart/mixed; boundary=LF\n"
				 "\n"
				 "--LF\n"
				 "Content-Type: text/plain\n"
				 "\n"
				 "one\n"
				 "two\n"
				 "--LF\n"
				 "Content-Type: text/plain\n"
				 "\n"
				 "three\n"
				 "--LF--\n";

static const char msg_digest[] = "From: list@example.com\r\n"
				 "Subject: Digest\r\n"
				 "Content-Type: multipart/digest; boundary=\"dig\"\r\n"
				 "\r\n"
				 "--dig\r\n"
				 "\r\n"
				 "From: a@example.com\r\n"
				 "Subject: first\r\n"
				 "\r\n"
				 "one\r\n"
				 "--dig\r\n"
				 "\r\n"
				 "From: b@example.com\r\n"
				 "Subject: second\r\n"
				 "\r\n"
				 "two\r\n"
				 "--dig--\r\n";

static const char msg_rfc2231[] = "From: x@example.com\r\n"
				  "Subject: params\r\n"
				  "Content-Type: multipart/mixed; boundary=\"p\"\r\n"
				  "\r\n"
				  "--p\r\n"
				  "Content-Type: application/octet-stream;\r\n"
				  " name*0=\"very long \";\r\n"
				  " name*1=\"name.txt\"\r\n"
				  "Content-Disposition: attachment;\r\n"
				  " filename*=utf-8''na%C3%AFve.txt\r\n"
				  "Content-Language: en, fr\r\n"
				  "Content-Location: http://example.com/x\r\n"
				  "\r\n"
				  "data\r\n"
				  "--p--\r\n";

static const char msg_prefix[] = "From: x@example.com\r\n"
				 "Content-Type: multipart/mixed; boundary=\"ab\"\r\n"
				 "\r\n"
				 "--ab\r\n"
				 "Content-Type: multipart/alternative; boundary=\"abc\"\r\n"
				 "\r\n"
				 "--abc\r\n"
				 "Content-Type: text/plain\r\n"
				 "\r\n"
				 "in abc\r\n"
				 "--abc--\r\n"
				 "--ab\r\n"
				 "Content-Type: text/plain\r\n"
				 "\r\n"
				 "second\r\n"
				 "--ab--\r\n";

static const char msg_headers8bit[] = "From: J\xc3"
				      "\xbc"
				      "rgen <j@example.de>\r\n"
				      "Subject: Gr\xfc"
				      "\xdf"
				      "e \x00"
				      "nul\r\n"
				      "X-Junk\r\n"
				      "\r\n"
				      "body\r\n";

#define PARSE(name, msg)               \
	struct mime_info *name = NULL; \
	test_assert(mime_parse((msg), sizeof(msg) - 1, NULL, &name, NULL) == IX_OK && name != NULL)

static const char *range(const struct mime_info *info, const char *msg, const char *spec, struct buf *b)
{
	size_t off, len;
	buf_reset(b);
	if (mime_section_range(info, spec, &off, &len) != IX_OK)
		return "(none)";
	buf_append(b, msg + off, len);
	return buf_cstr(b);
}

static void plain_rfc3501_example(void)
{
	PARSE(info, msg_plain);
	test_assert_str(info->envelope,
			"(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" "
			"((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) "
			"((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) "
			"((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) "
			"((NIL NIL \"mooch\" \"owatagu.siam.edu\")) NIL NIL NIL \"<B27397-0100000@Blurdybloop.COM>\")");
	test_assert_str(info->bodystructure,
			"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 55 1 NIL NIL NIL NIL)");
	test_assert_str(info->body, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 55 1)");
	test_assert(info->part_count == 1 && info->flags == 0);
	test_assert(info->date_unix == 760686745);
	test_assert_str(info->subject, "afternoon meeting");
	test_assert_str(info->message_id, "<B27397-0100000@Blurdybloop.COM>");
	test_assert(info->cc == NULL && info->sender == NULL);
	const struct mime_part *p = &info->parts[0];
	test_assert_str(p->section, "");
	test_assert(p->header_off == 0 && p->header_len == 255 && p->body_off == 255 && p->body_len == 55);
	test_assert_str(p->charset, "US-ASCII");
	/* a single-part message has only part 1: its body */
	test_assert(mime_find_part(info, "1") == p);
	test_assert(mime_find_part(info, "2") == NULL && mime_find_part(info, "1.1") == NULL);
	struct buf b = BUF_INIT;
	test_assert_str(range(info, msg_plain, "1", &b), "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n");
	test_assert_str(range(info, msg_plain, "TEXT", &b),
			"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n");
	test_assert(strncmp(range(info, msg_plain, "HEADER", &b), "Date: Mon", 9) == 0 && b.len == 255);
	test_assert(strlen(range(info, msg_plain, "", &b)) == sizeof(msg_plain) - 1);
	buf_free(&b);
	mime_info_destroy(&info);
	test_assert(info == NULL);
}

static void multipart_alternative(void)
{
	PARSE(info, msg_alternative);
	test_assert_str(
		info->envelope,
		"(\"Tue, 03 Mar 2020 10:15:00 +0100\" \"Lunch plans\" "
		"((\"Alice Liddell\" NIL \"alice\" \"example.org\")) ((\"Alice Liddell\" NIL \"alice\" \"example.org\")) "
		"((\"Alice Liddell\" NIL \"alice\" \"example.org\")) "
		"((\"Bob\" NIL \"bob\" \"example.com\")(NIL NIL \"carol\" \"example.net\")) "
		"((\"Dave, the admin\" NIL \"dave\" \"example.com\")) NIL "
		"\"<xyz789@mail.example.com>\" \"<abc123@mail.example.org>\")");
	test_assert_str(
		info->bodystructure,
		"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 55 1 NIL NIL NIL NIL)"
		"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 72 0 NIL NIL NIL NIL) "
		"\"alternative\" (\"boundary\" \"b1_alt\") NIL NIL NIL)");
	test_assert_str(
		info->body,
		"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 55 1)"
		"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 72 0) \"alternative\")");
	test_assert(info->part_count == 3 && info->flags == 0);
	test_assert(info->date_unix == 1583226900);
	test_assert_str(info->references, "<xyz789@mail.example.com>");
	test_assert_str(info->from, "\"Alice Liddell\" <alice@example.org>");
	const struct mime_part *p1 = mime_find_part(info, "1"), *p2 = mime_find_part(info, "2");
	test_assert(p1 == &info->parts[1] && p2 == &info->parts[2] && mime_find_part(info, "3") == NULL);
	test_assert_str(p1->section, "1");
	test_assert_str(p2->subtype, "html");
	test_assert_str(p1->encoding, "quoted-printable");
	struct buf b = BUF_INIT;
	mime_decode_body(p1, msg_alternative, &b);
	test_assert_str(buf_cstr(&b), "Shall we meet at the caf\xc3\xa9 at noon?\r\nSee you there.");
	test_assert_str(
		range(info, msg_alternative, "1.MIME", &b),
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	test_assert_str(range(info, msg_alternative, "2", &b),
			"<html><body><p>Shall we meet at the caf=C3=A9 at noon?</p></body></html>");
	test_assert_str(range(info, msg_alternative, "1.HEADER", &b), "(none)");
	test_assert_str(range(info, msg_alternative, "MIME", &b), "(none)");
	buf_free(&b);
	mime_info_destroy(&info);
}

/* Parameter quoting, a folded boundary with a space, Content-MD5, disposition parameters, a language list, a
 * location, preambles and epilogues at two levels, an invalid transfer encoding (reported as 7bit). */
static const char msg_edge[] = "From: Ops <ops@example.net>\r\n"
			       "Date: Sun, 05 May 2024 18:30:00 -0700\r\n"
			       "MIME-Version: 1.0\r\n"
			       "Content-Type: multipart/mixed; boundary=\"edge\r\n"
			       " case\"\r\n"
			       "\r\n"
			       "Preamble that clients never show.\r\n"
			       "\r\n"
			       "--edge case\r\n"
			       "Content-Type: text/x-note; charset=us-ascii; label=\"say \\\"hi\\\"\"\r\n"
			       "Content-ID: <note@example.net>\r\n"
			       "Content-MD5: ZmFrZW1kNXZhbHVlMTIzNA==\r\n"
			       "Content-Disposition: inline; size=6\r\n"
			       "Content-Description: a note\r\n"
			       "Content-Language: en, de\r\n"
			       "Content-Location: http://example.net/note.txt\r\n"
			       "\r\n"
			       "note!\r\n"
			       "\r\n"
			       "--edge case\r\n"
			       "Content-Type: message/rfc822\r\n"
			       "\r\n"
			       "From: inner@example.org\r\n"
			       "To: one@example.org, two@example.org\r\n"
			       "Subject: inside\r\n"
			       "Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
			       "\r\n"
			       "inner preamble\r\n"
			       "--alt\r\n"
			       "Content-Type: text/html\r\n"
			       "Content-Transfer-Encoding: 8bit\r\n"
			       "\r\n"
			       "<i>inside</i>\r\n"
			       "\r\n"
			       "--alt\r\n"
			       "Content-Type: text/plain\r\n"
			       "Content-Transfer-Encoding: @bogus\r\n"
			       "\r\n"
			       "inside, as text\r\n"
			       "\r\n"
			       "--alt--\r\n"
			       "inner epilogue\r\n"
			       "\r\n"
			       "--edge case--\r\n"
			       "Epilogue.\r\n";

static void extension_data(void)
{
	PARSE(info, msg_edge);
	test_assert(info->flags == 0);
	test_assert_str(
		info->bodystructure,
		"((\"text\" \"x-note\" (\"charset\" \"us-ascii\" \"label\" \"say \\\"hi\\\"\") \"<note@example.net>\" "
		"\"a note\" \"7bit\" 7 1 \"ZmFrZW1kNXZhbHVlMTIzNA==\" (\"inline\" (\"size\" \"6\")) (\"en\" \"de\") "
		"\"http://example.net/note.txt\")(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 349 "
		"(NIL \"inside\" ((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"one\" \"example.org\")(NIL NIL \"two\" \"example.org\")) "
		"NIL NIL NIL NIL) ((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"8bit\" 15 1 NIL NIL NIL NIL)"
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 1 NIL NIL NIL NIL) \"alternative\" "
		"(\"boundary\" \"alt\") NIL NIL NIL) 20 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"edge case\") NIL NIL NIL)");
	test_assert_str(
		info->body,
		"((\"text\" \"x-note\" (\"charset\" \"us-ascii\" \"label\" \"say \\\"hi\\\"\") \"<note@example.net>\" "
		"\"a note\" \"7bit\" 7 1)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 349 "
		"(NIL \"inside\" ((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) ((NIL NIL \"one\" \"example.org\")(NIL NIL \"two\" \"example.org\")) "
		"NIL NIL NIL NIL) ((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"8bit\" 15 1)"
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 1) \"alternative\") 20) \"mixed\")");
	test_assert(info->date_unix == 1714959000 && info->subject == NULL);
	test_assert_str(info->parts[5].encoding, "7bit");
	struct buf b = BUF_INIT;
	test_assert_str(range(info, msg_edge, "1", &b), "note!\r\n");
	test_assert_str(range(info, msg_edge, "2.2", &b), "inside, as text\r\n");
	buf_free(&b);
	mime_info_destroy(&info);
}

static void multipart_mixed_attachment(void)
{
	PARSE(info, msg_mixed_attach);
	test_assert_str(info->bodystructure,
			"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 32 0 NIL NIL NIL NIL)"
			"(\"application\" \"pdf\" (\"name\" \"report.pdf\") \"<part2@example.com>\" \"July report\" "
			"\"base64\" 114 NIL (\"attachment\" (\"filename\" \"report.pdf\")) NIL NIL) "
			"\"mixed\" (\"boundary\" \"==MIX==\") NIL NIL NIL)");
	test_assert_str(info->body,
			"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 32 0)"
			"(\"application\" \"pdf\" (\"name\" \"report.pdf\") \"<part2@example.com>\" \"July report\" "
			"\"base64\" 114) \"mixed\")");
	const struct mime_part *p = mime_find_part(info, "2");
	test_assert(p != NULL && p->charset == NULL);
	struct buf b = BUF_INIT;
	mime_decode_body(p, msg_mixed_attach, &b);
	test_assert(b.len > 8 && memcmp(b.data, "%PDF-1.4", 8) == 0);
	test_assert(memcmp(b.data + b.len - 6, "%%EOF\n", 6) == 0);
	buf_free(&b);
	mime_info_destroy(&info);
}

static void message_rfc822_nested(void)
{
	PARSE(info, msg_rfc822);
	test_assert_str(info->bodystructure,
			"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)"
			"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 361 "
			"(\"Wed, 30 Sep 2020 09:00:00 +0000\" \"Original\" ((\"Grace\" NIL \"grace\" \"example.net\")) "
			"((\"Grace\" NIL \"grace\" \"example.net\")) ((\"Grace\" NIL \"grace\" \"example.net\")) "
			"((NIL NIL \"eve\" \"example.org\")) NIL NIL NIL \"<orig@example.net>\") "
			"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0 NIL NIL NIL NIL)"
			"(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 0 NIL NIL NIL NIL) "
			"\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL) 16 NIL NIL NIL NIL) "
			"\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)");
	test_assert_str(
		info->body,
		"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0)"
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 361 "
		"(\"Wed, 30 Sep 2020 09:00:00 +0000\" \"Original\" ((\"Grace\" NIL \"grace\" \"example.net\")) "
		"((\"Grace\" NIL \"grace\" \"example.net\")) ((\"Grace\" NIL \"grace\" \"example.net\")) "
		"((NIL NIL \"eve\" \"example.org\")) NIL NIL NIL \"<orig@example.net>\") "
		"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0)"
		"(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 0) \"alternative\") 16) \"mixed\")");
	test_assert(info->part_count == 6);
	const struct mime_part *m = mime_find_part(info, "2");
	test_assert(m == &info->parts[2] && m->is_message_rfc822);
	test_assert(info->parts[3].is_message_root && info->parts[3].parent == 2 && info->parts[3].depth == 2);
	test_assert_str(info->parts[3].section, "2");
	test_assert(mime_find_part(info, "2.1") == &info->parts[4]);
	test_assert(mime_find_part(info, "2.2") == &info->parts[5]);
	test_assert_str(mime_find_part(info, "2.2")->section, "2.2");
	test_assert(mime_find_part(info, "2.3") == NULL && mime_find_part(info, "2.") == NULL);
	test_assert(mime_find_part(info, "02") == NULL && mime_find_part(info, "2..1") == NULL);
	struct buf b = BUF_INIT;
	test_assert_str(range(info, msg_rfc822, "2.1", &b), "Hi Eve");
	test_assert_str(range(info, msg_rfc822, "2.2", &b), "<b>Hi Eve</b>");
	test_assert_str(range(info, msg_rfc822, "2.MIME", &b), "Content-Type: message/rfc822\r\n\r\n");
	test_assert(strncmp(range(info, msg_rfc822, "2.HEADER", &b), "Date: Wed, 30 Sep", 17) == 0);
	test_assert(memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0);
	test_assert(strncmp(range(info, msg_rfc822, "2.TEXT", &b), "--inner\r\n", 9) == 0);
	test_assert(strncmp(range(info, msg_rfc822, "2", &b), "Date: Wed", 9) == 0 && b.len == 361);
	test_assert_str(range(info, msg_rfc822, "2.text", &b), range(info, msg_rfc822, "2.TEXT", &b));
	test_assert_str(range(info, msg_rfc822, "2.1.HEADER", &b), "(none)");
	buf_free(&b);
	mime_info_destroy(&info);
}

static void group_addresses(void)
{
	PARSE(info, msg_group);
	test_assert_str(
		info->envelope,
		"(\"1 Jan 2021 00:00 GMT\" \"Groups\" ((\"Project Lead\" NIL \"lead\" \"example.com\")) "
		"((\"Project Lead\" NIL \"lead\" \"example.com\")) ((\"Project Lead\" NIL \"lead\" \"example.com\")) "
		"((NIL NIL \"Team\" NIL)(NIL NIL \"alice\" \"example.com\")(\"Bob B.\" NIL \"bob\" \"example.com\")"
		"(NIL NIL NIL NIL)(NIL NIL \"ops\" \"example.com\")) "
		"((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		"((\"Jane Doe\" NIL \"jane\" \"example.com\")(NIL NIL \"\\\"john smith\\\"\" \"example.com\")"
		"(NIL NIL \"nohost\" \"MISSING_DOMAIN\")) NIL NIL)");
	test_assert(info->flags == MIME_F_BAD_ADDRESS);
	test_assert(info->date_unix == 1609459200);
	mime_info_destroy(&info);
}

/* Address lists one by one: the ENVELOPE form of "From: <value>". */
static int addr_case(const char *value, const char *want)
{
	char *msg = xasprintf("From: %s\r\n\r\n", value);
	struct mime_info *info;
	int ok = mime_parse(msg, strlen(msg), NULL, &info, NULL) == IX_OK;
	if (ok) {
		/* the From list is the third element: skip "(NIL NIL " */
		const char *e = info->envelope + strlen("(NIL NIL ");
		ok = strncmp(e, want, strlen(want)) == 0 && e[strlen(want)] == ' ';
		if (!ok)
			printf("  address %s -> %s\n", value, e);
		mime_info_destroy(&info);
	}
	free(msg);
	return ok;
}

static void address_forms(void)
{
	test_assert(addr_case("a@b.c", "((NIL NIL \"a\" \"b.c\"))"));
	test_assert(addr_case("Joe Q. Public <john.q.public@example.com>",
			      "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\"))"));
	test_assert(addr_case("\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
			      "((\"Giant; \\\"Big\\\" Box\" NIL \"sysservices\" \"example.net\"))"));
	test_assert(addr_case("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
			      "((\"Pete\" NIL \"pete\" \"silly.test\"))"));
	test_assert(
		addr_case("<@route1,@route2:joe@example.org>", "((NIL \"@route1,@route2\" \"joe\" \"example.org\"))"));
	test_assert(addr_case("=?utf-8?q?J=C3=B6rg?= <j@x.de>", "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.de\"))"));
	test_assert(addr_case("joe@[192.0.2.1]", "((NIL NIL \"joe\" \"[192.0.2.1]\"))"));
	test_assert(addr_case("<>", "((NIL NIL \"\" \"MISSING_DOMAIN\"))"));
	test_assert(addr_case("", "NIL"));
	test_assert(addr_case(",,", "NIL"));
	test_assert(addr_case(
		"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
		"((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")"
		"(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL))"));
	test_assert(addr_case("Unterminated: a@b.c",
			      "((NIL NIL \"Unterminated\" NIL)(NIL NIL \"a\" \"b.c\")(NIL NIL NIL NIL))"));
	test_assert(addr_case("<broken@", "((NIL NIL \"broken\" \"MISSING_DOMAIN\"))"));
	test_assert(addr_case("> junk <", "NIL"));
	test_assert(addr_case("\xc3\xa9l\xc3\xa8ve <e@x.fr>", "(({7}\r\n\xc3\xa9l\xc3\xa8ve NIL \"e\" \"x.fr\"))"));
}

static void encoded_words(void)
{
	PARSE(info, msg_encoded);
	test_assert_str(info->subject, "Hello W\xc3\xb6rld and =?x-unknown?q?keep?=");
	test_assert_str(info->from, "Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>");
	test_assert_str(info->to, "K\xc3\xb6nig <koenig@example.de>");
	/* ENVELOPE keeps the words as they are in the message (RFC 3501) */
	test_assert(strstr(info->envelope,
			   "((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\"))") != NULL);
	test_assert(strstr(info->envelope,
			   "\"=?utf-8?b?SGVsbG8g?= =?utf-8?q?W=C3=B6rld?= and =?x-unknown?q?keep?=\"") != NULL);
	test_assert(info->date_unix == 1609549445);
	test_assert_str(info->parts[0].charset, "windows-1252");
	mime_info_destroy(&info);

	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain text", "plain text" },
		{ "=?US-ASCII?Q?Keith_Moore?=", "Keith Moore" },
		{ "=?ISO-8859-1?Q?Olle_J=E4rvinen?=", "Olle J\xc3\xa4rvinen" },
		{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)" },
		{ "=?ISO-8859-1?Q?a?=  \r\n  =?ISO-8859-1?Q?b?=", "ab" },
		{ "a =?ISO-8859-1?Q?b?= c", "a b c" },
		{ "=?ISO-8859-1?Q?a_b?= =?ISO-8859-2?Q?_c?=", "a b =?ISO-8859-2?Q?_c?=" },
		{ "=?windows-1252?Q?=80_=93x=94?=", "\xe2\x82\xac \xe2\x80\x9cx\xe2\x80\x9d" },
		{ "=?iso-8859-15?q?=A4?=", "\xe2\x82\xac" },
		{ "=?UTF-8?B?4pyTIMOgIGxhIG1vZGU=?=", "\xe2\x9c\x93 \xc3\xa0 la mode" },
		{ "=?utf-8*en?q?hi?=", "hi" },
		{ "=?utf-8?q?bad=FFbyte?=", "bad\xef\xbf\xbd"
					    "byte" },
		{ "=?utf-8?x?nope?=", "=?utf-8?x?nope?=" },
		{ "=?utf-8?q?unterminated", "=?utf-8?q?unterminated" },
		{ "=?utf-8?q?has space?=", "=?utf-8?q?has space?=" },
		{ "=??q?x?=", "=??q?x?=" },
		{ "=?utf-8?q?nul=00?=", "nul" },
		{ "", "" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		mime_decode_words(cases[i].in, strlen(cases[i].in), &b);
		if (strcmp(buf_cstr(&b), cases[i].out) != 0)
			printf("  decode %s -> %s\n", cases[i].in, buf_cstr(&b));
		test_assert_str(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
}

static void no_boundary(void)
{
	PARSE(info, msg_nobound);
	test_assert(info->flags & MIME_F_NO_BOUNDARY);
	test_assert(info->part_count == 1 && !info->parts[0].is_multipart);
	test_assert_str(info->bodystructure,
			"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 57 5 NIL NIL NIL NIL)");
	mime_info_destroy(&info);
}

static void missing_close_boundary(void)
{
	PARSE(info, msg_truncated);
	test_assert(info->flags == MIME_F_NO_CLOSE_BOUNDARY);
	test_assert_str(info->bodystructure,
			"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)"
			"(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 10 NIL NIL NIL NIL) "
			"\"mixed\" (\"boundary\" \"cut\") NIL NIL NIL)");
	struct buf b = BUF_INIT;
	mime_decode_body(&info->parts[2], msg_truncated, &b);
	test_assert(b.len == 6 && memcmp(b.data, "\0\1\2\3\4\5", 6) == 0);
	buf_free(&b);
	mime_info_destroy(&info);
}

static void multipart_without_delimiters(void)
{
	static const char msg[] = "Content-Type: multipart/mixed; boundary=x\r\n\r\nno parts here\r\n";
	PARSE(info, msg);
	test_assert(info->flags == (MIME_F_NO_PARTS | MIME_F_NO_CLOSE_BOUNDARY));
	test_assert_str(info->bodystructure,
			"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) "
			"\"mixed\" (\"boundary\" \"x\") NIL NIL NIL)");
	mime_info_destroy(&info);
}

static void truncated_header(void)
{
	static const char msg[] = "From: a@b.c\r\nSubject: no body";
	PARSE(info, msg);
	test_assert(info->flags == MIME_F_TRUNCATED);
	test_assert(info->parts[0].header_len == sizeof(msg) - 1 && info->parts[0].body_len == 0);
	test_assert_str(info->subject, "no body");
	test_assert_str(info->bodystructure,
			"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
	mime_info_destroy(&info);
	/* an mbox separator line before the header is skipped, not taken for the start of the body */
	static const char mbox[] = "From someone@example.com Mon Jan  1 00:00:00 2024\r\nSubject: hi\r\n\r\nbody\r\n";
	PARSE(info2, mbox);
	test_assert(info2->flags == MIME_F_BAD_HEADER);
	test_assert_str(info2->subject, "hi");
	test_assert(info2->parts[0].body_len == 6);
	struct buf hf = BUF_INIT;
	mime_header_fields(mbox, info2->parts[0].header_len, NULL, 0, 1, &hf);
	test_assert_str(buf_cstr(&hf), "Subject: hi\r\n\r\n");
	buf_free(&hf);
	mime_info_destroy(&info2);
	/* the empty message */
	test_assert(mime_parse("", 0, NULL, &info, NULL) == IX_OK);
	test_assert_str(info->envelope, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	test_assert(info->flags == 0 && info->date_unix == -1);
	mime_info_destroy(&info);
}

static char *nested_message(unsigned levels)
{
	struct buf b = BUF_INIT;
	for (unsigned i = 0; i < levels; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%u\"\r\n\r\n--b%u\r\n", i, i);
	buf_append_str(&b, "Content-Type: text/plain\r\n\r\nleaf\r\n");
	for (unsigned i = levels; i-- > 0;)
		buf_printf(&b, "--b%u--\r\n", i);
	return buf_steal(&b);
}

static void limits(void)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	test_assert(lim.max_depth == 32 && lim.max_parts == 10000 && lim.max_header_bytes == 1024 * 1024);
	struct mime_info *info;
	struct buf err = BUF_INIT;
	char *msg = nested_message(32);
	test_assert(mime_parse(msg, strlen(msg), NULL, &info, &err) == IX_OK);
	test_assert(info->part_count == 33 && info->parts[32].depth == 32);
	test_assert_str(info->parts[32].section, "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1");
	test_assert(mime_find_part(info, info->parts[32].section) == &info->parts[32]);
	mime_info_destroy(&info);
	free(msg);
	msg = nested_message(33);
	test_assert(mime_parse(msg, strlen(msg), NULL, &info, &err) == IX_ELIMIT && info == NULL);
	test_assert(strstr(buf_cstr(&err), "nested") != NULL);
	free(msg);

	/* too many parts */
	struct buf b = BUF_INIT;
	buf_append_str(&b, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < 20; i++)
		buf_append_str(&b, "--p\r\n\r\nx\r\n");
	buf_append_str(&b, "--p--\r\n");
	lim.max_parts = 21;
	test_assert(mime_parse(b.data, b.len, &lim, &info, NULL) == IX_OK && info->part_count == 21);
	mime_info_destroy(&info);
	lim.max_parts = 20;
	buf_reset(&err);
	test_assert(mime_parse(b.data, b.len, &lim, &info, &err) == IX_ELIMIT && info == NULL);
	test_assert(strstr(buf_cstr(&err), "parts") != NULL);

	/* header block size */
	buf_reset(&b);
	for (int i = 0; i < 100; i++)
		buf_append_str(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n");
	buf_append_str(&b, "\r\nbody\r\n");
	mime_limits_default(&lim);
	lim.max_header_bytes = 5300;
	test_assert(mime_parse(b.data, b.len, &lim, &info, NULL) == IX_OK);
	mime_info_destroy(&info);
	lim.max_header_bytes = 5000;
	buf_reset(&err);
	test_assert(mime_parse(b.data, b.len, &lim, &info, &err) == IX_ELIMIT && info == NULL);
	test_assert(strstr(buf_cstr(&err), "header") != NULL);
	/* the NULL error_r is fine */
	test_assert(mime_parse(b.data, b.len, &lim, &info, NULL) == IX_ELIMIT);

	/* long lines are flagged only */
	buf_reset(&b);
	buf_append_str(&b, "Subject: x\r\n\r\n");
	for (int i = 0; i < 1000; i++)
		buf_append_char(&b, 'a');
	buf_append_str(&b, "\r\n");
	test_assert(mime_parse(b.data, b.len, NULL, &info, NULL) == IX_OK && info->flags == MIME_F_LONG_LINE);
	mime_info_destroy(&info);
	buf_free(&b);
	buf_free(&err);
}

/* Inputs built to find quadratic paths: they must finish promptly (nothing is timed; a slow path shows as a hang). */
static void adversarial_inputs(void)
{
	struct buf b = BUF_INIT;
	struct mime_info *info;
	buf_append_str(&b, "Subject: ");
	for (int i = 0; i < 50000; i++)
		buf_append_str(&b, "=?x?q?a"); /* never terminated: each "=?" must not rescan the rest */
	buf_append_str(&b, "\r\nFrom: ");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&b, "a@b, (c(d)\"e\" <f");
	buf_append_str(&b, "\r\nContent-Type: text/plain");
	for (int i = 0; i < 5000; i++)
		buf_printf(&b, "; n*%d*=x", i % 70);
	buf_append_str(&b, "\r\n\r\n");
	test_assert(mime_parse(b.data, b.len, NULL, &info, NULL) == IX_OK);
	test_assert(info->flags & MIME_F_TOO_MANY_PARAMS);
	test_assert(strlen(info->subject) == 50000 * 7);
	mime_info_destroy(&info);

	/* many nested levels, each with a large body */
	buf_reset(&b);
	for (unsigned i = 0; i < 32; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%u\"\r\n\r\n--b%u\r\n", i, i);
	for (int i = 0; i < 20000; i++)
		buf_append_str(&b, "--b not a boundary line at all\r\n");
	test_assert(mime_parse(b.data, b.len, NULL, &info, NULL) == IX_OK);
	test_assert(info->part_count == 33 && (info->flags & MIME_F_NO_CLOSE_BOUNDARY));
	mime_info_destroy(&info);
	buf_free(&b);
}

static void headers_8bit_and_nul(void)
{
	PARSE(info, msg_headers8bit);
	test_assert(info->flags == (MIME_F_8BIT_HEADER | MIME_F_NUL | MIME_F_BAD_HEADER));
	test_assert_str(
		info->envelope,
		"(NIL {9}\r\nGr\xfc\xdf"
		"e nul (({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"example.de\")) "
		"(({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"example.de\")) (({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"example.de\")) "
		"NIL NIL NIL NIL NIL)");
	/* decoded fields are always UTF-8: invalid bytes are read as windows-1252 */
	test_assert_str(info->subject, "Gr\xc3\xbc\xc3\x9f"
				       "e nul");
	test_assert_str(info->from, "J\xc3\xbcrgen <j@example.de>");
	/* "X-Junk" has no colon: the body starts there */
	test_assert(info->parts[0].header_len == 51 && info->parts[0].body_len == 16);
	mime_info_destroy(&info);
}

static void bare_lf(void)
{
	PARSE(info, msg_barelf);
	test_assert(info->flags == MIME_F_BARE_LF);
	test_assert_str(info->bodystructure,
			"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL NIL NIL NIL)"
			"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL) "
			"\"mixed\" (\"boundary\" \"LF\") NIL NIL NIL)");
	struct buf b = BUF_INIT;
	test_assert_str(range(info, msg_barelf, "1", &b), "one\ntwo");
	test_assert_str(range(info, msg_barelf, "2.MIME", &b), "Content-Type: text/plain\n\n");
	buf_free(&b);
	mime_info_destroy(&info);
}

static void boundary_prefix(void)
{
	PARSE(info, msg_prefix);
	test_assert(info->flags == 0);
	test_assert_str(info->body,
			"(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0) \"alternative\")"
			"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0) \"mixed\")");
	struct buf b = BUF_INIT;
	test_assert_str(range(info, msg_prefix, "1.1", &b), "in abc");
	test_assert_str(range(info, msg_prefix, "2", &b), "second");
	mime_info_destroy(&info);

	/* the other way round: the inner boundary is a prefix of the outer one */
	static const char rev[] = "Content-Type: multipart/mixed; boundary=\"abc\"\r\n\r\n--abc\r\n"
				  "Content-Type: multipart/alternative; boundary=\"ab\"\r\n\r\n--ab\r\n"
				  "Content-Type: text/plain\r\n\r\none\r\n--ab\r\n\r\ntwo\r\n--ab--\r\n--abc\r\n\r\n"
				  "three\r\n--abc--\r\n";
	PARSE(info2, rev);
	test_assert(info2->flags == 0 && info2->part_count == 5);
	test_assert_str(range(info2, rev, "1.1", &b), "one");
	test_assert_str(range(info2, rev, "1.2", &b), "two");
	test_assert_str(range(info2, rev, "2", &b), "three");
	buf_free(&b);
	mime_info_destroy(&info2);
}

static void digest_and_params(void)
{
	PARSE(info, msg_digest);
	test_assert(info->part_count == 5);
	test_assert(info->parts[1].is_message_rfc822 && info->parts[3].is_message_rfc822);
	test_assert(strncmp(info->bodystructure, "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 42 (NIL \"first\" ",
			    56) == 0);
	struct buf b = BUF_INIT;
	test_assert_str(range(info, msg_digest, "2.1", &b), "two");
	test_assert_str(range(info, msg_digest, "2.HEADER", &b), "From: b@example.com\r\nSubject: second\r\n\r\n");
	mime_info_destroy(&info);

	PARSE(info2, msg_rfc2231);
	test_assert_str(
		info2->bodystructure,
		"((\"application\" \"octet-stream\" (\"name\" \"very long name.txt\") NIL NIL \"7bit\" 4 NIL "
		"(\"attachment\" (\"filename*\" \"utf-8''na%C3%AFve.txt\")) (\"en\" \"fr\") \"http://example.com/x\") "
		"\"mixed\" (\"boundary\" \"p\") NIL NIL NIL)");
	mime_info_destroy(&info2);

	/* mixed extended and plain continuations; comments; quoted specials; a lone language */
	static const char msg[] =
		"Content-Type: text/plain (comment); charset=\"utf-8\"; title*0*=us-ascii'en'This%20is;\r\n"
		" title*1=\" fun;\"; format=flowed\r\nContent-Language: de\r\n\r\nx";
	PARSE(info3, msg);
	test_assert_str(info3->bodystructure,
			"(\"text\" \"plain\" (\"charset\" \"utf-8\" \"title*\" \"us-ascii'en'This%20is%20fun%3B\" "
			"\"format\" \"flowed\") NIL NIL \"7bit\" 1 0 NIL NIL \"de\" NIL)");
	test_assert_str(info3->parts[0].charset, "utf-8");
	mime_info_destroy(&info3);
	buf_free(&b);
}

static void imap_strings(void)
{
	struct buf b = BUF_INIT;
	mime_imap_string(&b, "a\"b\\c", 5);
	test_assert_str(buf_cstr(&b), "\"a\\\"b\\\\c\"");
	buf_reset(&b);
	mime_imap_string(&b, "two\r\nlines", 10);
	test_assert_str(buf_cstr(&b), "{10}\r\ntwo\r\nlines");
	buf_reset(&b);
	mime_imap_string(&b, "n\0l", 3);
	test_assert_str(buf_cstr(&b), "\"nl\"");
	buf_reset(&b);
	mime_imap_string(&b, NULL, 0);
	test_assert_str(buf_cstr(&b), "NIL");
	buf_reset(&b);
	mime_imap_string(&b, "", 0);
	test_assert_str(buf_cstr(&b), "\"\"");
	buf_free(&b);
}

static void header_fields(void)
{
	static const char hdr[] = "Subject: one\r\n two\r\nFrom: a@b\nTo: c@d\r\nsubject: again\r\n\r\n";
	const char *names[] = { "SUBJECT", "x-none" };
	struct buf b = BUF_INIT;
	mime_header_fields(hdr, sizeof(hdr) - 1, names, 2, 0, &b);
	test_assert_str(buf_cstr(&b), "Subject: one\r\n two\r\nsubject: again\r\n\r\n");
	buf_reset(&b);
	mime_header_fields(hdr, sizeof(hdr) - 1, names, 2, 1, &b);
	test_assert_str(buf_cstr(&b), "From: a@b\r\nTo: c@d\r\n\r\n");
	buf_reset(&b);
	mime_header_fields(hdr, sizeof(hdr) - 1, names, 0, 0, &b);
	test_assert_str(buf_cstr(&b), "\r\n");
	buf_reset(&b);
	/* a header block cut short: the last field without a line end */
	mime_header_fields("From: x", 7, (const char *const[]){ "from" }, 1, 0, &b);
	test_assert_str(buf_cstr(&b), "From: x\r\n\r\n");
	buf_free(&b);
}

static void body_decoding(void)
{
	static const char msg[] = "Content-Type: multipart/mixed; boundary=z\r\n\r\n"
				  "--z\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n"
				  "soft=\r\nbreak =3D=3d trailing   \r\nbad=ZZ=\r\n--z\r\n"
				  "Content-Transfer-Encoding: BASE64\r\n\r\naGVs\r\nbG8=\r\nIQ==\r\n--z--\r\n";
	PARSE(info, msg);
	struct buf b = BUF_INIT;
	test_assert_str(info->parts[1].encoding, "quoted-printable");
	mime_decode_body(&info->parts[1], msg, &b);
	test_assert_str(buf_cstr(&b), "softbreak == trailing\r\nbad=ZZ");
	buf_reset(&b);
	test_assert_str(info->parts[2].encoding, "base64");
	mime_decode_body(&info->parts[2], msg, &b);
	test_assert_str(buf_cstr(&b), "hello!");
	test_assert(strstr(info->bodystructure, "\"Quoted-Printable\"") != NULL);
	buf_free(&b);
	mime_info_destroy(&info);
}

static void toplevel_rfc822(void)
{
	/* a whole message that is itself an encapsulated message: "1" is the body, "1.1" the inner body */
	static const char msg[] = "From: a@b.c\r\nContent-Type: message/rfc822\r\n"
				  "Content-Transfer-Encoding: 7bit (plain)\r\n\r\n"
				  "Subject: inner\r\n\r\ninner body\r\n";
	PARSE(info, msg);
	test_assert(info->part_count == 2 && info->flags == 0);
	test_assert_str(
		info->bodystructure,
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 30 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL) 3 "
		"NIL NIL NIL NIL)");
	struct buf b = BUF_INIT;
	test_assert(mime_find_part(info, "1") == &info->parts[0]);
	test_assert(mime_find_part(info, "1.1") == &info->parts[1]);
	test_assert_str(range(info, msg, "1.1", &b), "inner body\r\n");
	test_assert_str(range(info, msg, "1.HEADER", &b), "Subject: inner\r\n\r\n");
	test_assert_str(range(info, msg, "TEXT", &b), "Subject: inner\r\n\r\ninner body\r\n");
	buf_free(&b);
	mime_info_destroy(&info);

	/* base64 message/rfc822 is flagged and still gives a well-formed structure */
	static const char msg2[] = "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
				   "U3ViamVjdDogeA0KDQp5DQo=\r\n";
	PARSE(info2, msg2);
	test_assert(info2->flags == (MIME_F_BAD_ENCODING | MIME_F_BAD_HEADER));
	test_assert(strncmp(info2->bodystructure, "(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 26 (NIL NIL", 50) ==
		    0);
	mime_info_destroy(&info2);
}

static void text_for_search(void)
{
	PARSE(info, msg_encoded);
	struct buf b = BUF_INIT;
	/* windows-1252 8bit body: e-acute and the euro sign */
	mime_decode_text(&info->parts[0], msg_encoded, &b);
	test_assert_str(buf_cstr(&b), "caf\xc3\xa9 \xe2\x82\xac price\r\n");
	buf_reset(&b);
	test_assert(mime_header_get(msg_encoded, info->parts[0].header_len, "SUBJECT", &b) == 1);
	test_assert_str(buf_cstr(&b), "=?utf-8?b?SGVsbG8g?= =?utf-8?q?W=C3=B6rld?= and =?x-unknown?q?keep?=");
	buf_reset(&b);
	test_assert(mime_header_get(msg_encoded, info->parts[0].header_len, "x-missing", &b) == 0 && b.len == 0);
	mime_info_destroy(&info);

	PARSE(info2, msg_alternative);
	/* utf-8 quoted-printable: decoded, not converted */
	mime_decode_text(&info2->parts[1], msg_alternative, &b);
	test_assert_str(buf_cstr(&b), "Shall we meet at the caf\xc3\xa9 at noon?\r\nSee you there.");
	buf_reset(&b);
	/* the first of two fields, folded */
	static const char hdr[] = "X-A: one\r\n  two\r\nx-a: three\r\n\r\n";
	test_assert(mime_header_get(hdr, sizeof(hdr) - 1, "x-a", &b) == 1);
	test_assert_str(buf_cstr(&b), "one  two");
	buf_reset(&b);
	test_assert(mime_header_get_all(hdr, sizeof(hdr) - 1, "x-a", &b) == 2);
	test_assert_str(buf_cstr(&b), "one  two\nthree");
	buf_reset(&b);
	test_assert(mime_header_get_all(hdr, sizeof(hdr) - 1, "x-b", &b) == 0 && b.len == 0);
	/* addresses as SEARCH FROM sees them: comments gone, encoded words decoded, groups' members kept */
	static const char addrs[] = "<user (c)@ (c) example.org>, =?utf-8?q?J=C3=B6rg?= <j@x.de>,\r\n team: a@b.c,"
				    " \"Q (x)\" <q@d.e>; c@d (Carl)";
	test_assert(mime_addr_text(addrs, sizeof(addrs) - 1, &b) == 5);
	test_assert_str(buf_cstr(&b), "<user@example.org>\nJ\xc3\xb6rg <j@x.de>\n<a@b.c>\nQ (x) <q@d.e>\nCarl <c@d>");
	buf_free(&b);
	/* the zone as written */
	long long t;
	int zone = 1;
	test_assert(mime_parse_date("Sun, 31 Dec 2023 23:30:00 -0500", &t, &zone) == 0);
	test_assert(t == 1704083400 && zone == -300);
	test_assert(mime_parse_date("1 Jan 2024 00:59 +0130", &t, &zone) == 0 && zone == 90);
	test_assert(mime_parse_date("1 Jan 2024 00:59 Q", &t, &zone) == 0 && zone == 0);
	test_assert(mime_parse_date("yesterday", &t, &zone) == -1);
	mime_info_destroy(&info2);
}

static long long date_of(const char *v)
{
	char *msg = xasprintf("Date: %s\r\n\r\n", v);
	struct mime_info *info;
	long long t = -2;
	if (mime_parse(msg, strlen(msg), NULL, &info, NULL) == IX_OK) {
		t = info->date_unix;
		mime_info_destroy(&info);
	}
	free(msg);
	return t;
}

static void dates(void)
{
	test_assert(date_of("Thu, 01 Jan 1970 00:00:00 +0000") == 0);
	test_assert(date_of("Fri, 21 Nov 1997 09:55:06 -0600") == 880127706);
	test_assert(date_of("21 Nov 97 09:55:06 GMT") == 880106106);
	test_assert(date_of("Fri, 21 Nov 1997 09:55 CST") == 880127700);
	test_assert(date_of("Fri , 21 Nov 1997 09(comment):55:06 -0600 (CST)") == 880127706);
	test_assert(date_of("29 Feb 2000 12:00:00 +0130") == 951820200);
	test_assert(date_of("1 Jan 2049 00:00:00 Z") == date_of("1 Jan 49 00:00:00 +0000"));
	test_assert(date_of("1 January 2021 00:00:00 +0000") == 1609459200);
	test_assert(date_of("32 Jan 2021 00:00:00 +0000") == -1);
	test_assert(date_of("1 Foo 2021 00:00:00 +0000") == -1);
	test_assert(date_of("1 Jan 2021 25:00:00 +0000") == -1);
	test_assert(date_of("1 Jan 2021 10:00:00 +01") == -1);
	test_assert(date_of("yesterday") == -1);
	test_assert(date_of("") == -1);
	struct mime_info *info;
	test_assert(mime_parse("Date: junk\r\n\r\n", 14, NULL, &info, NULL) == IX_OK);
	test_assert(info->flags == MIME_F_BAD_DATE && info->date_unix == -1);
	mime_info_destroy(&info);
}

static const struct {
	const char *data;
	size_t len;
} samples[] = {
/* clang-format off */
#define S(m) { m, sizeof(m) - 1 } /* an initializer, not a block */
	/* clang-format on */
	S(msg_plain),   S(msg_alternative), S(msg_mixed_attach), S(msg_rfc822), S(msg_group),
	S(msg_encoded), S(msg_nobound),     S(msg_truncated),    S(msg_barelf), S(msg_digest),
	S(msg_rfc2231), S(msg_prefix),      S(msg_headers8bit),  S(msg_edge),
#undef S
};

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void serialization_roundtrip(void)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(samples); i++) {
		struct mime_info *info, *back;
		test_assert(mime_parse(samples[i].data, samples[i].len, NULL, &info, NULL) == IX_OK);
		struct buf s = BUF_INIT, s2 = BUF_INIT;
		mime_info_serialize(info, &s);
		test_assert(mime_info_deserialize(s.data, s.len, &back) == IX_OK);
		test_assert(same(back->envelope, info->envelope) && same(back->bodystructure, info->bodystructure) &&
			    same(back->body, info->body) && same(back->subject, info->subject) &&
			    same(back->from, info->from) && same(back->references, info->references) &&
			    same(back->sender, info->sender) && back->date_unix == info->date_unix &&
			    back->flags == info->flags && back->msg_size == info->msg_size &&
			    back->part_count == info->part_count);
		for (size_t k = 0; k < info->part_count; k++) {
			const struct mime_part *p = &info->parts[k], *q = &back->parts[k];
			test_assert(same(p->section, q->section) && same(p->type, q->type) &&
				    same(p->charset, q->charset) && p->body_off == q->body_off &&
				    p->body_len == q->body_len && p->header_off == q->header_off &&
				    p->lines == q->lines && p->parent == q->parent &&
				    p->is_message_root == q->is_message_root);
			/* lookups work the same on the deserialized copy */
			test_assert(mime_find_part(back, p->section) ==
				    &back->parts[mime_find_part(info, p->section) - info->parts]);
		}
		mime_info_serialize(back, &s2);
		test_assert(s.len == s2.len && memcmp(s.data, s2.data, s.len) == 0);
		mime_info_destroy(&back);
		/* every truncation and every single-byte change is either refused or yields a valid info */
		for (size_t cut = 0; cut < s.len; cut++) {
			test_assert(mime_info_deserialize(s.data, cut, &back) == IX_ECORRUPT && back == NULL);
			char saved = s.data[cut];
			for (int delta = 1; delta < 256; delta += 85) {
				s.data[cut] = (char)(saved + delta);
				if (mime_info_deserialize(s.data, s.len, &back) == IX_OK) {
					test_assert(back->part_count >= 1 && back->envelope != NULL);
					mime_info_destroy(&back);
				}
			}
			s.data[cut] = saved;
		}
		buf_append_char(&s, 0);
		test_assert(mime_info_deserialize(s.data, s.len, &back) == IX_ECORRUPT);
		test_assert(mime_info_deserialize("IXM2", 4, &back) == IX_ECORRUPT);
		buf_free(&s);
		buf_free(&s2);
		mime_info_destroy(&info);
	}
}

static void every_prefix(void)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(samples); i++) {
		for (size_t cut = 0; cut <= samples[i].len; cut++) {
			/* an exact-size copy so AddressSanitizer sees any read past the end */
			char *m = xmalloc(cut ? cut : 1);
			memcpy(m, samples[i].data, cut);
			struct mime_info *info;
			test_assert(mime_parse(m, cut, NULL, &info, NULL) == IX_OK);
			test_assert(info->part_count >= 1 && info->bodystructure[0] == '(' && info->envelope[0] == '(');
			for (size_t k = 0; k < info->part_count; k++) {
				const struct mime_part *p = &info->parts[k];
				test_assert(p->header_off + p->header_len <= cut && p->body_off + p->body_len <= cut);
				test_assert(mime_find_part(info, p->section) != NULL);
			}
			mime_info_destroy(&info);
			free(m);
		}
	}
}

TEST_MAIN("mime", TEST_CASE(plain_rfc3501_example), TEST_CASE(multipart_alternative),
	  TEST_CASE(multipart_mixed_attachment), TEST_CASE(extension_data), TEST_CASE(message_rfc822_nested),
	  TEST_CASE(group_addresses), TEST_CASE(address_forms), TEST_CASE(encoded_words), TEST_CASE(no_boundary),
	  TEST_CASE(missing_close_boundary), TEST_CASE(multipart_without_delimiters), TEST_CASE(truncated_header),
	  TEST_CASE(limits), TEST_CASE(adversarial_inputs), TEST_CASE(headers_8bit_and_nul), TEST_CASE(bare_lf),
	  TEST_CASE(boundary_prefix), TEST_CASE(digest_and_params), TEST_CASE(imap_strings), TEST_CASE(header_fields),
	  TEST_CASE(body_decoding), TEST_CASE(toplevel_rfc822), TEST_CASE(text_for_search), TEST_CASE(dates),
	  TEST_CASE(serialization_roundtrip), TEST_CASE(every_prefix))
