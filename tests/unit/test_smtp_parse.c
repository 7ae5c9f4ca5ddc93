/* test_smtp_parse.c - table-driven tests for transport/smtp_parse: commands, paths, ESMTP parameters, xtext,
 * BDAT/AUTH arguments, and the DATA decoder fed whole and byte at a time. */
#include "tests/unit/test.h"
#include "transport/smtp/smtp_parse.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void commands(void)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
		const char *arg; /* NULL: must fail */
		const char *error_prefix;
	} cases[] = {
		{ "EHLO mail.example.com", SMTP_VERB_EHLO, "mail.example.com", NULL },
		{ "ehlo   [192.0.2.1]  ", SMTP_VERB_EHLO, "[192.0.2.1]", NULL },
		{ "HELO", SMTP_VERB_HELO, NULL, "501" },
		{ "MAIL FROM:<a@b.c> SIZE=10", SMTP_VERB_MAIL, "FROM:<a@b.c> SIZE=10", NULL },
		{ "rcpt TO:<x@y>", SMTP_VERB_RCPT, "TO:<x@y>", NULL },
		{ "DATA", SMTP_VERB_DATA, "", NULL },
		{ "DATA now", SMTP_VERB_DATA, NULL, "501" },
		{ "QUIT", SMTP_VERB_QUIT, "", NULL },
		{ "NOOP", SMTP_VERB_NOOP, "", NULL },
		{ "NOOP anything at all", SMTP_VERB_NOOP, "anything at all", NULL },
		{ "StartTLS", SMTP_VERB_STARTTLS, "", NULL },
		{ "STARTTLS x", SMTP_VERB_STARTTLS, NULL, "501" },
		{ "BDAT 100 LAST", SMTP_VERB_BDAT, "100 LAST", NULL },
		{ "AUTH PLAIN AGFsaWNl", SMTP_VERB_AUTH, "PLAIN AGFsaWNl", NULL },
		{ "RSET", SMTP_VERB_RSET, "", NULL },
		{ "HELP", SMTP_VERB_HELP, "", NULL },
		{ "VRFY postmaster", SMTP_VERB_VRFY, "postmaster", NULL },
		{ "EXPN list", SMTP_VERB_EXPN, "list", NULL },
		{ "MAILX FROM:<>", SMTP_VERB_UNKNOWN, NULL, "500" },
		{ "MAIL:FROM:<>", SMTP_VERB_UNKNOWN, NULL, "500" },
		{ "", SMTP_VERB_UNKNOWN, NULL, "500" },
		{ " QUIT", SMTP_VERB_UNKNOWN, NULL, "500" },
		{ "GET / HTTP/1.0", SMTP_VERB_UNKNOWN, NULL, "500" },
		{ "NOOP a\tb", SMTP_VERB_NOOP, NULL, "500" },
		{ "NOOP a\rb", SMTP_VERB_NOOP, NULL, "500" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		struct smtp_command cmd;
		const char *err = NULL;
		int r = smtp_parse_command(cases[i].line, strlen(cases[i].line), &cmd, &err);
		if (cases[i].arg != NULL) {
			if (r != 0)
				fprintf(stderr, "case %zu: %s -> %s\n", i, cases[i].line, err);
			test_assert(r == 0);
			test_assert(cmd.verb == cases[i].verb);
			test_assert(cmd.arg_len == strlen(cases[i].arg));
			test_assert(memcmp(cmd.arg, cases[i].arg, cmd.arg_len) == 0);
		} else {
			test_assert(r < 0);
			test_assert(cmd.verb == cases[i].verb);
			test_assert(strncmp(err, cases[i].error_prefix, 3) == 0);
		}
	}
	/* a NUL inside the line */
	struct smtp_command cmd;
	const char *err;
	test_assert(smtp_parse_command("NOOP a\0b", 8, &cmd, &err) < 0);
	/* lengths: SMTP_COMMAND_MAX for most verbs, more for AUTH */
	char *line = xmalloc(SMTP_AUTH_LINE_MAX + 8);
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'a', SMTP_AUTH_LINE_MAX);
	test_assert(smtp_parse_command(line, SMTP_COMMAND_MAX, &cmd, &err) == 0);
	test_assert(smtp_parse_command(line, SMTP_COMMAND_MAX + 1, &cmd, &err) == IX_ELIMIT);
	memcpy(line, "AUTH ", 5);
	test_assert(smtp_parse_command(line, SMTP_AUTH_LINE_MAX, &cmd, &err) == 0);
	test_assert(smtp_parse_command(line, SMTP_AUTH_LINE_MAX + 1, &cmd, &err) == IX_ELIMIT);
	free(line);
	test_assert_str(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	test_assert_str(smtp_verb_name(SMTP_VERB_UNKNOWN), "");
}

static void paths(void)
{
	static const struct {
		const char *in;
		unsigned flags;
		const char *addr; /* NULL: must fail */
	} cases[] = {
		{ "<user@example.com>", 0, "user@example.com" },
		{ "<first.last+tag@sub.example.co.uk>", 0, "first.last+tag@sub.example.co.uk" },
		{ "<!#$%&'*+-/=?^_`{|}~@x.y>", 0, "!#$%&'*+-/=?^_`{|}~@x.y" },
		{ "<\"john doe\"@example.com>", 0, "\"john doe\"@example.com" },
		{ "<\"a\\\"b\\\\c\"@example.com>", 0, "\"a\\\"b\\\\c\"@example.com" },
		{ "<user@[192.0.2.1]>", 0, "user@[192.0.2.1]" },
		{ "<user@[IPv6:2001:db8::1]>", 0, "user@[IPv6:2001:db8::1]" },
		{ "<@relay1.example,@relay2.example:user@example.com>", 0, "user@example.com" },
		{ "<>", SMTP_PATH_ALLOW_NULL, "" },
		{ "<>", 0, NULL },
		{ "<Postmaster>", SMTP_PATH_ALLOW_POSTMASTER, "Postmaster" },
		{ "<POSTMASTER>", SMTP_PATH_ALLOW_POSTMASTER, "POSTMASTER" },
		{ "<Postmaster>", 0, NULL },
		{ "<user@localhost>", 0, "user@localhost" },
		{ "<a-b@x-y.z>", 0, "a-b@x-y.z" },
		{ "<user@123.example>", 0, "user@123.example" },
		{ "user@example.com", 0, NULL },
		{ "<user@example.com", 0, NULL },
		{ "<user>", 0, NULL },
		{ "<@example.com>", 0, NULL },
		{ "<user@>", 0, NULL },
		{ "<.user@example.com>", 0, NULL },
		{ "<user.@example.com>", 0, NULL },
		{ "<us..er@example.com>", 0, NULL },
		{ "<user@example..com>", 0, NULL },
		{ "<user@example.com.>", 0, NULL },
		{ "<user@-example.com>", 0, NULL },
		{ "<user@example-.com>", 0, NULL },
		{ "<user@exa_mple.com>", 0, NULL },
		{ "<us er@example.com>", 0, NULL },
		{ "<user@[192.0.2.256]>", 0, NULL },
		{ "<user@[192.0.2]>", 0, NULL },
		{ "<user@[IPv6:2001:db8::g]>", 0, NULL },
		{ "<user@[IPv6:]>", 0, NULL },
		{ "<user@[tag:value]>", 0, NULL },
		{ "<user@[192.0.2.1>", 0, NULL },
		{ "<\"unterminated@example.com>", 0, NULL },
		{ "<\"bad\\\x01\"@example.com>", 0, NULL },
		{ "<@relay1.example:>", 0, NULL },
		{ "<@relay1.example user@example.com>", 0, NULL },
		{ "<user@example.com>>", 0, "user@example.com" }, /* consumed stops at the first > */
		{ "<j\xc3\xb6rg@b\xc3\xbc"
		  "cher.example>",
		  SMTP_PATH_UTF8,
		  "j\xc3\xb6rg@b\xc3\xbc"
		  "cher.example" },
		{ "<j\xc3\xb6rg@example.com>", 0, NULL },
		{ "<j\xc3rg@example.com>", SMTP_PATH_UTF8, NULL },         /* truncated sequence */
		{ "<j\xc0\xafrg@example.com>", SMTP_PATH_UTF8, NULL },     /* overlong */
		{ "<j\xed\xa0\x80rg@example.com>", SMTP_PATH_UTF8, NULL }, /* surrogate */
		{ "user@example.com", SMTP_PATH_NO_BRACKETS, "user@example.com" },
		{ "user@example.com x", SMTP_PATH_NO_BRACKETS, NULL },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		struct smtp_path p;
		size_t used;
		const char *err = NULL;
		int r = smtp_parse_path(cases[i].in, strlen(cases[i].in), cases[i].flags, &p, &used, &err);
		if ((r == 0) != (cases[i].addr != NULL))
			fprintf(stderr, "case %zu: %s -> %d\n", i, cases[i].in, r);
		if (cases[i].addr == NULL) {
			test_assert(r < 0);
			test_assert(err != NULL && err[0] == '5');
			continue;
		}
		test_assert(r == 0);
		char out[SMTP_PATH_MAX_UTF8 + 1];
		size_t n = smtp_path_string(&p, out, sizeof(out));
		test_assert(n == strlen(cases[i].addr));
		test_assert_str(out, cases[i].addr);
	}
	struct smtp_path p;
	size_t used;
	const char *err;
	test_assert(smtp_parse_path("<\"q\"@[10.0.0.1]>", 16, 0, &p, &used, &err) == 0);
	test_assert(used == 16 && p.mbox.local_quoted && p.mbox.domain_literal);
}

static void path_limits(void)
{
	char buf[2048];
	struct smtp_path p;
	size_t used;
	const char *err;
	/* local part: 64 octets, 65 refused; 256 with SMTPUTF8 */
	for (size_t n = 63; n <= 66; n++) {
		buf[0] = '<';
		memset(buf + 1, 'a', n);
		memcpy(buf + 1 + n, "@x.y>", 6);
		int r = smtp_parse_path(buf, strlen(buf), 0, &p, &used, &err);
		test_assert((r == 0) == (n <= SMTP_LOCAL_MAX));
		if (r < 0)
			test_assert(r == IX_ELIMIT && strstr(err, "too long") != NULL);
		test_assert(smtp_parse_path(buf, strlen(buf), SMTP_PATH_UTF8, &p, &used, &err) == 0);
	}
	/* a label of 63 is fine, 64 is not */
	for (size_t n = 63; n <= 64; n++) {
		memcpy(buf, "<a@", 3);
		memset(buf + 3, 'b', n);
		memcpy(buf + 3 + n, ".c>", 4);
		test_assert((smtp_parse_path(buf, strlen(buf), 0, &p, &used, &err) == 0) == (n <= SMTP_LABEL_MAX));
	}
	/* a domain over 255 octets */
	size_t off = 0;
	memcpy(buf, "<a@", 3);
	off = 3;
	for (int i = 0; i < 26; i++) {
		memcpy(buf + off, "abcdefghi.", 10);
		off += 10;
	}
	memcpy(buf + off, "com>", 5);
	test_assert(smtp_parse_path(buf, strlen(buf), 0, &p, &used, &err) == IX_ELIMIT);
	/* a whole path over 256 octets: 64 + 1 + 200 */
	buf[0] = '<';
	memset(buf + 1, 'a', 64);
	buf[65] = '@';
	off = 66;
	for (int i = 0; i < 20; i++) {
		memcpy(buf + off, "abcdefghi.", 10);
		off += 10;
	}
	memcpy(buf + off, "com>", 5);
	test_assert(smtp_parse_path(buf, strlen(buf), 0, &p, &used, &err) == IX_ELIMIT);
	test_assert(smtp_parse_path(buf, strlen(buf), SMTP_PATH_UTF8, &p, &used, &err) == 0);
}

static void mail_params(void)
{
	struct smtp_mail m;
	const char *err;
#define MAIL_OK(s, exts) (smtp_parse_mail((s), strlen(s), (exts), &m, &err) == 0)
	test_assert(MAIL_OK("FROM:<a@b.c>", 0));
	test_assert(!m.from.null && !m.has_size && m.body == SMTP_BODY_DEFAULT);
	test_assert(MAIL_OK("from:<>", 0) && m.from.null);
	test_assert(MAIL_OK("FROM: <a@b.c>", 0)); /* a space after the colon is tolerated */
	test_assert(MAIL_OK("FROM:<a@b.c> SIZE=12345 BODY=8BITMIME", SMTP_EXT_ALL));
	test_assert(m.has_size && m.size == 12345 && m.body == SMTP_BODY_8BITMIME);
	test_assert(MAIL_OK("FROM:<a@b.c> body=binarymime", SMTP_EXT_ALL) && m.body == SMTP_BODY_BINARYMIME);
	test_assert(!MAIL_OK("FROM:<a@b.c> BODY=BINARYMIME", SMTP_EXT_8BITMIME));
	test_assert(strncmp(err, "501", 3) == 0);
	test_assert(MAIL_OK("FROM:<a@b.c> BODY=7BIT", SMTP_EXT_8BITMIME) && m.body == SMTP_BODY_7BIT);
	test_assert(!MAIL_OK("FROM:<a@b.c> BODY=9BIT", SMTP_EXT_ALL));
	test_assert(MAIL_OK("FROM:<a@b.c> SIZE=999999999999999", SMTP_EXT_SIZE) && m.size == 999999999999999ULL);
	test_assert(!MAIL_OK("FROM:<a@b.c> SIZE=18446744073709551616", SMTP_EXT_SIZE));
	test_assert(!MAIL_OK("FROM:<a@b.c> SIZE=1000000000000000", SMTP_EXT_SIZE));
	test_assert(!MAIL_OK("FROM:<a@b.c> SIZE=", SMTP_EXT_SIZE));
	test_assert(!MAIL_OK("FROM:<a@b.c> SIZE=-1", SMTP_EXT_SIZE));
	test_assert(!MAIL_OK("FROM:<a@b.c> SIZE=1 SIZE=2", SMTP_EXT_SIZE));
	test_assert(strstr(err, "Duplicate") != NULL);
	test_assert(!MAIL_OK("FROM:<a@b.c> SIZE=10", 0));
	test_assert(strncmp(err, "555", 3) == 0);
	test_assert(!MAIL_OK("FROM:<a@b.c> XFOO=bar", SMTP_EXT_ALL) && strncmp(err, "555", 3) == 0);
	test_assert(MAIL_OK("FROM:<a@b.c> RET=HDRS ENVID=QQ+2B1+3D2", SMTP_EXT_ALL));
	test_assert(m.ret == SMTP_RET_HDRS && m.envid_len == 6 && strcmp(m.envid, "QQ+1=2") == 0);
	test_assert(!MAIL_OK("FROM:<a@b.c> RET=ALL", SMTP_EXT_ALL));
	test_assert(!MAIL_OK("FROM:<a@b.c> ENVID=a+zz", SMTP_EXT_ALL));
	test_assert(MAIL_OK("FROM:<a@b.c> AUTH=<>", SMTP_EXT_ALL) && m.has_auth && m.auth_null);
	test_assert(MAIL_OK("FROM:<a@b.c> AUTH=e+2Bx@example.com", SMTP_EXT_ALL));
	test_assert(m.has_auth && !m.auth_null && strcmp(m.auth.local, "e+x") == 0);
	test_assert(!MAIL_OK("FROM:<a@b.c> AUTH=nonsense", SMTP_EXT_ALL));
	test_assert(!MAIL_OK("FROM:<a@b.c> SMTPUTF8=yes", SMTP_EXT_ALL));
	/* UTF-8 addresses need SMTPUTF8 on the command */
	test_assert(MAIL_OK("FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", SMTP_EXT_ALL) && m.smtputf8);
	test_assert(!MAIL_OK("FROM:<j\xc3\xb6rg@example.com>", SMTP_EXT_ALL));
	test_assert(strncmp(err, "553 5.6.7", 9) == 0);
	test_assert(!MAIL_OK("FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", 0));
	test_assert(!MAIL_OK("FROM:<a@b.c>SIZE=1", SMTP_EXT_ALL));
	test_assert(!MAIL_OK("FROM:a@b.c", 0) && strncmp(err, "501", 3) == 0);
	test_assert(!MAIL_OK("TO:<a@b.c>", 0));
	test_assert(!MAIL_OK("FROM:<a@@b.c>", 0) && strncmp(err, "553 5.1.7", 9) == 0);
	test_assert(!MAIL_OK("FROM:<a@b.c> =x", SMTP_EXT_ALL));
	test_assert(!MAIL_OK("FROM:<a@b.c> SIZE==1", SMTP_EXT_ALL));
	test_assert(MAIL_OK("FROM:<a@b.c>   SIZE=1  ", SMTP_EXT_ALL));
	/* too many parameters */
	char many[1024] = "FROM:<a@b.c>";
	for (int i = 0; i < SMTP_PARAMS_MAX + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), " X%d=1", i);
	test_assert(!MAIL_OK(many, SMTP_EXT_ALL) && strstr(err, "Too many") != NULL);
#undef MAIL_OK
}

static void rcpt_params(void)
{
	struct smtp_rcpt r;
	const char *err;
#define RCPT_OK(s, exts, utf8) (smtp_parse_rcpt((s), strlen(s), (exts), (utf8), &r, &err) == 0)
	test_assert(RCPT_OK("TO:<x@y.z>", 0, false) && r.notify == 0 && r.orcpt_len == 0);
	test_assert(RCPT_OK("to:<Postmaster>", 0, false) && r.to.postmaster);
	test_assert(!RCPT_OK("TO:<>", 0, false) && strncmp(err, "553 5.1.3", 9) == 0);
	test_assert(RCPT_OK("TO:<x@y.z> NOTIFY=SUCCESS,FAILURE", SMTP_EXT_DSN, false));
	test_assert(r.notify == (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE));
	test_assert(RCPT_OK("TO:<x@y.z> NOTIFY=never", SMTP_EXT_DSN, false) && r.notify == SMTP_NOTIFY_NEVER);
	test_assert(!RCPT_OK("TO:<x@y.z> NOTIFY=NEVER,DELAY", SMTP_EXT_DSN, false));
	test_assert(!RCPT_OK("TO:<x@y.z> NOTIFY=DELAY,DELAY", SMTP_EXT_DSN, false));
	test_assert(!RCPT_OK("TO:<x@y.z> NOTIFY=SUCCESS,", SMTP_EXT_DSN, false));
	test_assert(!RCPT_OK("TO:<x@y.z> NOTIFY=SUCCESS", 0, false));
	test_assert(RCPT_OK("TO:<x@y.z> ORCPT=rfc822;orig+2Bx@y.z", SMTP_EXT_DSN, false));
	test_assert_str(r.orcpt_type, "rfc822");
	test_assert_str(r.orcpt, "orig+x@y.z");
	test_assert(!RCPT_OK("TO:<x@y.z> ORCPT=rfc822", SMTP_EXT_DSN, false));
	test_assert(!RCPT_OK("TO:<x@y.z> ORCPT=;a@b", SMTP_EXT_DSN, false));
	test_assert(!RCPT_OK("TO:<x@y.z> ORCPT=rfc822;", SMTP_EXT_DSN, false));
	test_assert(RCPT_OK("TO:<j\xc3\xb6rg@example.com>", SMTP_EXT_ALL, true));
	test_assert(!RCPT_OK("TO:<j\xc3\xb6rg@example.com>", SMTP_EXT_ALL, false));
	test_assert(strncmp(err, "553 5.6.7", 9) == 0);
	test_assert(!RCPT_OK("TO:x@y.z", 0, false) && strncmp(err, "501", 3) == 0);
	test_assert(!RCPT_OK("FROM:<x@y.z>", 0, false));
	test_assert(RCPT_OK("TO:<@a.b:x@y.z>", 0, false));
#undef RCPT_OK
}

static void xtext_bdat_auth(void)
{
	char out[8];
	test_assert(smtp_xtext_decode("abc", 3, out, sizeof(out)) == 3 && strcmp(out, "abc") == 0);
	test_assert(smtp_xtext_decode("a+2Bb", 5, out, sizeof(out)) == 3 && strcmp(out, "a+b") == 0);
	test_assert(smtp_xtext_decode("+2", 2, out, sizeof(out)) == -1);
	test_assert(smtp_xtext_decode("+", 1, out, sizeof(out)) == -1);
	test_assert(smtp_xtext_decode("a=b", 3, out, sizeof(out)) == -1);
	test_assert(smtp_xtext_decode("a b", 3, out, sizeof(out)) == -1);
	test_assert(smtp_xtext_decode("1234567", 7, out, sizeof(out)) == 7);
	test_assert(smtp_xtext_decode("12345678", 8, out, sizeof(out)) == -1);
	test_assert(smtp_xtext_decode("", 0, out, sizeof(out)) == 0);

	unsigned long long size;
	bool last;
	const char *err;
	test_assert(smtp_parse_bdat("100", 3, &size, &last, &err) == 0 && size == 100 && !last);
	test_assert(smtp_parse_bdat("0 LAST", 6, &size, &last, &err) == 0 && size == 0 && last);
	test_assert(smtp_parse_bdat("7 last", 6, &size, &last, &err) == 0 && last);
	test_assert(smtp_parse_bdat("7LAST", 5, &size, &last, &err) < 0);
	test_assert(smtp_parse_bdat("7 FIRST", 7, &size, &last, &err) < 0);
	test_assert(smtp_parse_bdat("-7", 2, &size, &last, &err) < 0);
	test_assert(smtp_parse_bdat("99999999999999999999", 20, &size, &last, &err) < 0);
	test_assert(smtp_parse_bdat("", 0, &size, &last, &err) < 0);

	char mech[32];
	const char *ir;
	size_t ir_len;
	test_assert(smtp_parse_auth("PLAIN", 5, mech, sizeof(mech), &ir, &ir_len, &err) == 0);
	test_assert_str(mech, "PLAIN");
	test_assert(ir == NULL);
	test_assert(smtp_parse_auth("PLAIN AGEAYg==", 14, mech, sizeof(mech), &ir, &ir_len, &err) == 0);
	test_assert(ir_len == 8 && memcmp(ir, "AGEAYg==", 8) == 0);
	test_assert(smtp_parse_auth("PLAIN =", 7, mech, sizeof(mech), &ir, &ir_len, &err) == 0 && ir_len == 1);
	test_assert(smtp_parse_auth("PLAIN a b", 9, mech, sizeof(mech), &ir, &ir_len, &err) < 0);
	test_assert(smtp_parse_auth("PL@IN", 5, mech, sizeof(mech), &ir, &ir_len, &err) < 0);
	test_assert(smtp_parse_auth("SCRAM-SHA-256", 13, mech, 8, &ir, &ir_len, &err) < 0);
}

/* ---- DATA ---- */

struct data_case {
	const char *in;
	size_t in_len;
	enum smtp_bare_lf policy;
	int result;
	const char *out;
	size_t consumed; /* for END */
};

static int feed_whole(const struct data_case *dc, struct smtp_data *d, struct buf *out, size_t *consumed)
{
	smtp_data_init(d, dc->policy, 0);
	return smtp_data_feed(d, dc->in, dc->in_len, out, consumed);
}

static int feed_bytes(const struct data_case *dc, struct smtp_data *d, struct buf *out, size_t *consumed)
{
	smtp_data_init(d, dc->policy, 0);
	*consumed = 0;
	for (size_t i = 0; i < dc->in_len; i++) {
		size_t used;
		int r = smtp_data_feed(d, dc->in + i, 1, out, &used);
		*consumed += used;
		if (r == SMTP_DATA_END)
			return r;
		if (used != 1)
			return -1;
	}
	return SMTP_DATA_MORE;
}

#define DC(s) s, sizeof(s) - 1

static void data_decoder(void)
{
	static const struct data_case cases[] = {
		{ DC(".\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "", 3 },
		{ DC("a\r\n.\r\nQUIT\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\r\n", 6 },
		{ DC("..a\r\n..\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, ".a\r\n.\r\n", 12 },
		{ DC("a\r\n.b\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\r\nb\r\n", 10 },
		{ DC("a\r\n.\r"), SMTP_BARE_LF_KEEP, SMTP_DATA_MORE, "a\r\n", 0 },
		/* smuggling shapes never end the data */
		{ DC("a\n.\nb\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\n.\nb\r\n", 10 },
		{ DC("a\n.\r\nb\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\n.\r\nb\r\n", 11 },
		{ DC("a\r.\r\nb\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\r.\r\nb\r\n", 11 },
		{ DC("a\r\n.\nb\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\r\n\nb\r\n", 11 },
		{ DC("a\r\n.\rb\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\r\n\rb\r\n", 11 },
		{ DC("a\nb\r\n.\r\n"), SMTP_BARE_LF_NORMALIZE, SMTP_DATA_END, "a\r\nb\r\n", 8 },
		{ DC("x\r\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "x\r\r\n", 7 },
		{ DC("a\0b\r\n.\r\n"), SMTP_BARE_LF_KEEP, SMTP_DATA_END, "a\0b\r\n", 8 },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		for (int mode = 0; mode < 2; mode++) {
			struct smtp_data d;
			struct buf out = BUF_INIT;
			size_t consumed = 0;
			int r = mode == 0 ? feed_whole(&cases[i], &d, &out, &consumed)
					  : feed_bytes(&cases[i], &d, &out, &consumed);
			size_t want_len = 0;
			/* expected output may contain a NUL: compare with the case table's known lengths */
			want_len = i == IX_ARRAY_LEN(cases) - 1 ? 5 : strlen(cases[i].out);
			if (r != cases[i].result || out.len != want_len ||
			    memcmp(buf_cstr(&out), cases[i].out, want_len))
				fprintf(stderr, "data case %zu mode %d: r=%d out=[%s]\n", i, mode, r, buf_cstr(&out));
			test_assert(r == cases[i].result);
			test_assert(out.len == want_len && memcmp(buf_cstr(&out), cases[i].out, want_len) == 0);
			test_assert(d.size == want_len);
			if (r == SMTP_DATA_END)
				test_assert(consumed == cases[i].consumed);
			buf_free(&out);
		}
	}
}

static void data_policies_and_limits(void)
{
	struct smtp_data d;
	struct buf out = BUF_INIT;
	size_t used;
	smtp_data_init(&d, SMTP_BARE_LF_REJECT, 0);
	test_assert(smtp_data_feed(&d, "a\nb\r\n.\r\n", 8, &out, &used) == SMTP_DATA_END);
	test_assert(d.rejected && d.bare_lf_count == 1);
	buf_reset(&out);
	smtp_data_init(&d, SMTP_BARE_LF_KEEP, 10);
	test_assert(smtp_data_feed(&d, "0123456789\r\n", 12, &out, &used) == SMTP_DATA_MORE);
	test_assert(d.too_big && d.size == 12);
	test_assert(smtp_data_feed(&d, "more\r\n.\r\n", 9, &out, &used) == SMTP_DATA_END);
	test_assert(d.size == 18 && out.len <= 12);
	/* line length: the longest line is reported with its CRLF */
	buf_reset(&out);
	smtp_data_init(&d, SMTP_BARE_LF_KEEP, 0);
	char *big = xmalloc(2000);
	memset(big, 'x', 2000);
	memcpy(big + 1000, "\r\n", 2);
	test_assert(smtp_data_feed(&d, big, 1002, &out, &used) == SMTP_DATA_MORE);
	test_assert(smtp_data_feed(&d, ".\r\n", 3, &out, &used) == SMTP_DATA_END);
	test_assert(d.longest_line == 1002 && d.longest_line > SMTP_TEXT_LINE_MAX);
	/* after the end, no more input is taken */
	test_assert(smtp_data_feed(&d, "x", 1, &out, &used) == SMTP_DATA_END && used == 0);
	free(big);
	buf_free(&out);
}

/* The decoder agrees with itself for every split of one input into two pieces. */
static void data_every_split(void)
{
	static const char in[] = "Subject: x\r\n\r\n..dots\r\n.\r\r\nbare\nlf\r\n..\r\n.\r\nNEXT";
	size_t len = sizeof(in) - 1;
	struct smtp_data d;
	struct buf ref = BUF_INIT;
	size_t ref_used;
	smtp_data_init(&d, SMTP_BARE_LF_KEEP, 0);
	test_assert(smtp_data_feed(&d, in, len, &ref, &ref_used) == SMTP_DATA_END);
	test_assert(ref_used == len - 4);
	for (size_t cut = 0; cut <= len; cut++) {
		struct buf out = BUF_INIT;
		size_t u1, u2 = 0;
		smtp_data_init(&d, SMTP_BARE_LF_KEEP, 0);
		int r = smtp_data_feed(&d, in, cut, &out, &u1);
		if (r != SMTP_DATA_END)
			r = smtp_data_feed(&d, in + cut, len - cut, &out, &u2);
		test_assert(r == SMTP_DATA_END);
		test_assert(u1 + u2 == ref_used);
		test_assert(out.len == ref.len && memcmp(out.data, ref.data, ref.len) == 0);
		buf_free(&out);
	}
	buf_free(&ref);
}

TEST_MAIN("smtp_parse", TEST_CASE(commands), TEST_CASE(paths), TEST_CASE(path_limits), TEST_CASE(mail_params),
	  TEST_CASE(rcpt_params), TEST_CASE(xtext_bdat_auth), TEST_CASE(data_decoder),
	  TEST_CASE(data_policies_and_limits), TEST_CASE(data_every_split))
