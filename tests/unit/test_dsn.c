/* test_dsn.c - unit tests for delivery status notifications (RFC 3464 structure) and the header helpers. */
#include "tests/unit/test.h"
#include "transport/mta/dsn.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static const char original[] = "Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
			       "Subject: Hello\r\n  folded\r\n"
			       "Message-ID: <m1@example.com>\r\n"
			       "received: from c by d; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
			       "\r\n"
			       "Received: not a header, body\r\n";

static void header_helpers(void)
{
	char v[DSN_HEADER_VALUE_MAX + 1];
	size_t len = strlen(original);
	test_assert(dsn_header_value(original, len, "subject", v, sizeof(v)));
	test_assert_str(v, "Hello folded");
	test_assert(dsn_header_value(original, len, "Message-ID", v, sizeof(v)));
	test_assert_str(v, "<m1@example.com>");
	test_assert(!dsn_header_value(original, len, "To", v, sizeof(v)) && v[0] == '\0');
	test_assert(dsn_count_received(original, len) == 2);
	test_assert(dsn_header_length(original, len) == (size_t)(strstr(original, "\r\n\r\n") - original) + 4);
	/* bounded: truncated input, tiny output, no header end */
	test_assert(!dsn_header_value(original, 20, "Subject", v, 4) && v[0] == '\0'); /* Subject starts past byte 20 */
	char small[4];
	test_assert(dsn_header_value(original, len, "Subject", small, sizeof(small)) && strlen(small) == 3);
	test_assert(dsn_count_received("Received", 8) == 0);
	test_assert(dsn_header_length("no header end", 13) == 13);
}

static void status_codes(void)
{
	char s[16];
	dsn_status_from_reply("550 5.1.1 <x>: no such user", "5.0.0", s);
	test_assert_str(s, "5.1.1");
	dsn_status_from_reply("452 too many", "4.0.0", s);
	test_assert_str(s, "4.0.0");
	dsn_status_from_reply("554-5.7.1 multi", "5.0.0", s);
	test_assert_str(s, "5.7.1");
	dsn_status_from_reply("connect failed", "4.4.1", s);
	test_assert_str(s, "4.4.1");
	dsn_status_from_reply("550 5.1234.1 bad", "5.0.0", s);
	test_assert_str(s, "5.0.0");
}

static void report_structure(void)
{
	struct dsn_rcpt r[2] = {
		{ "bob@remote.test", "Bob@remote.test", DSN_FAILED, NULL, "550 5.1.1 no such user\r\nX-Injected: 1",
		  "mx" },
		{ "carol@remote.test", NULL, DSN_FAILED, "4.4.7", "Delivery time expired", NULL },
	};
	struct dsn_report rep = { "mail.example.com", "alice@example.com", "env-9", false, 1700000000, r, 2,
				  original,           strlen(original) };
	struct buf out = BUF_INIT;
	dsn_build(&rep, &out);
	const char *m = buf_cstr(&out);
	test_assert(strstr(m, "Content-Type: multipart/report; report-type=delivery-status;") != NULL);
	test_assert(strstr(m, "Content-Type: message/delivery-status\r\n") != NULL);
	test_assert(strstr(m, "Reporting-MTA: dns; mail.example.com\r\n") != NULL);
	test_assert(strstr(m, "Original-Envelope-Id: env-9\r\n") != NULL);
	test_assert(strstr(m, "Final-Recipient: rfc822;bob@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n") !=
		    NULL);
	test_assert(strstr(m, "Original-Recipient: rfc822;Bob@remote.test\r\n") != NULL);
	/* a failed action never carries a 4.x.x status */
	test_assert(strstr(m, "Final-Recipient: rfc822;carol@remote.test\r\nAction: failed\r\nStatus: 5.4.7\r\n") !=
		    NULL);
	/* the diagnostic cannot inject a header line */
	test_assert(strstr(m, "\r\nX-Injected: 1") == NULL);
	test_assert(strstr(m, "Content-Type: message/rfc822\r\n\r\nReceived: from a") != NULL);
	test_assert(strstr(m, "Subject: Undelivered Mail Returned to Sender\r\n") != NULL);
	/* every line ends in CRLF */
	for (size_t i = 0; i < out.len; i++)
		test_assert(out.data[i] != '\n' || (i > 0 && out.data[i - 1] == '\r'));
	buf_free(&out);
	/* headers only */
	rep.headers_only = true;
	dsn_build(&rep, &out);
	test_assert(strstr(buf_cstr(&out), "Content-Type: text/rfc822-headers") != NULL);
	test_assert(strstr(buf_cstr(&out), "Received: not a header, body") == NULL);
	buf_free(&out);
	/* delay and success reports */
	r[0].action = DSN_DELAYED;
	rep.nrcpts = 1;
	dsn_build(&rep, &out);
	test_assert(strstr(buf_cstr(&out), "Action: delayed\r\nStatus: 4.1.1\r\n") != NULL);
	buf_free(&out);
}

/* Return-Path at final delivery (every one the message came with dropped, folded ones included), and a field
 * inserted under the trace fields. */
static void header_rewrites(void)
{
	static const char m[] = "Return-Path: <forged@x.test>\r\n"
				"Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
				"From: a@example.com\r\n"
				"return-path:\r\n <again@x.test>\r\n"
				"Subject: s\r\n\r\nReturn-Path: <body@x.test>\r\n";
	struct buf out = BUF_INIT;
	dsn_with_return_path(m, strlen(m), "alice@example.com", &out);
	test_assert(strcmp(buf_cstr(&out),
			   "Return-Path: <alice@example.com>\r\n"
			   "Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
			   "From: a@example.com\r\nSubject: s\r\n\r\nReturn-Path: <body@x.test>\r\n") == 0);
	buf_reset(&out);
	dsn_with_return_path("Subject: s\r\n\r\nbody", 18, "", &out);
	test_assert(strcmp(buf_cstr(&out), "Return-Path: <>\r\nSubject: s\r\n\r\nbody") == 0);
	buf_reset(&out);
	dsn_header_insert(m, strlen(m), "Sender: me@example.com\r\n", &out);
	test_assert(strncmp(buf_cstr(&out), m, 85) == 0);
	test_assert(strncmp(buf_cstr(&out) + 85, "Sender: me@example.com\r\nFrom: a@example.com\r\n", 45) == 0);
	test_assert(out.len == strlen(m) + 24);
	buf_reset(&out);
	dsn_header_insert("From: a\r\n\r\n", 11, "Sender: b\r\n", &out);
	test_assert(strcmp(buf_cstr(&out), "Sender: b\r\nFrom: a\r\n\r\n") == 0);
	buf_free(&out);
}

TEST_MAIN("dsn", TEST_CASE(header_helpers), TEST_CASE(status_codes), TEST_CASE(report_structure),
	  TEST_CASE(header_rewrites))
