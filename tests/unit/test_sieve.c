/* test_sieve.c - unit tests of the Sieve library: the grammar byte by byte, errors with their line numbers, limits,
 * and a conformance corpus from the examples of RFC 5228 and of each extension's RFC, run over sample messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "tests/unit/test.h"
#include "transport/sieve/sieve.h"
#include "transport/sieve/sieve_match.h"

/* parses src; returns the dump ("ERR line N: ..." on an error) in a static buffer */
static const char *parse(const char *src)
{
	static struct buf out;
	buf_reset(&out);
	struct sieve_script *s;
	struct buf err = BUF_INIT;
	if (sieve_parse(src, strlen(src), 0, &s, &err) != IX_OK) {
		buf_printf(&out, "ERR %s", buf_cstr(&err));
	} else {
		sieve_dump(s, &out);
		sieve_free(s);
	}
	buf_free(&err);
	return buf_cstr(&out);
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- a world for the interpreter ---- */
#define SEEN_MAX 32
static char *seen_keys[SEEN_MAX];
static size_t seen_lens[SEEN_MAX], seen_count;
static const char *include_name, *include_text;

static int fake_seen(void *ctx, const char *key, size_t len, long long seconds, int just_check)
{
	(void)ctx;
	(void)seconds;
	for (size_t i = 0; i < seen_count; i++)
		if (seen_lens[i] == len && memcmp(seen_keys[i], key, len) == 0)
			return 1;
	if (!just_check && seen_count < SEEN_MAX) {
		seen_keys[seen_count] = xmalloc(len);
		memcpy(seen_keys[seen_count], key, len);
		seen_lens[seen_count++] = len;
	}
	return 0;
}

static void seen_reset(void)
{
	for (size_t i = 0; i < seen_count; i++)
		free(seen_keys[i]);
	seen_count = 0;
}

static int fake_mailbox(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "INBOX") == 0 || strcmp(name, "Work") == 0;
}

static int fake_include(void *ctx, const char *location, const char *name, char **text_r, size_t *len_r)
{
	(void)ctx;
	if (include_name == NULL || strcmp(location, "personal") != 0 || strcmp(name, include_name) != 0)
		return -1;
	*text_r = xstrdup(include_text);
	*len_r = strlen(include_text);
	return 0;
}

static const char *const me[] = { "ann@example.com", "ann.smith@example.com", NULL };

static void env_init(struct sieve_env *env)
{
	memset(env, 0, sizeof(*env));
	env->env_from = "bob@example.org";
	env->env_to = "ann+lists@example.com";
	env->user_addresses = me;
	env->now = 1796636708; /* 2026-12-07 09:45:08 UTC, a Monday */
	env->seen = fake_seen;
	env->mailbox_exists = fake_mailbox;
	env->include = fake_include;
}

static const char MSG[] = "Return-Path: <bob@example.org>\r\n"
			  "From: Bob Jones <bob@example.org>\r\n"
			  "To: Ann <ann@example.com>, carol@example.net\r\n"
			  "Cc: team+dev@example.com\r\n"
			  "Subject: [acme-users] [fwd] version 1.0 is out\r\n"
			  "Date: Mon, 7 Dec 2026 10:15:00 +0100\r\n"
			  "Message-ID: <m1@example.org>\r\n"
			  "X-Spam-Score: 7\r\n"
			  "X-Spam-Score: 3\r\n"
			  "List-ID: Acme users <acme-users.lists.example.org>\r\n"
			  "\r\n"
			  "Hello Ann,\r\nthe MAKE MONEY FAST offer is here.\r\n";

/* runs script over msg; returns "rc actions" in a static buffer: rc 0 or "ERR line N: ..." then each action */
static const char *run_env(const char *script, const char *msg, const struct sieve_env *env,
			   const struct sieve_limits *lim)
{
	static struct buf out;
	buf_reset(&out);
	struct sieve_script *s;
	struct buf err = BUF_INIT;
	if (sieve_parse(script, strlen(script), 0, &s, &err) != IX_OK) {
		buf_printf(&out, "PARSE %s", buf_cstr(&err));
		buf_free(&err);
		return buf_cstr(&out);
	}
	struct sieve_result res;
	int rc = sieve_run(s, msg, strlen(msg), env, lim, &res, &err);
	if (rc != IX_OK)
		buf_printf(&out, "ERR %s;", buf_cstr(&err));
	for (size_t i = 0; i < res.count; i++) {
		const struct sieve_action *a = &res.actions[i];
		if (i)
			buf_append_char(&out, ' ');
		switch (a->type) {
		case SIEVE_KEEP: buf_printf(&out, "keep[%s]", a->flags); break;
		case SIEVE_FILEINTO:
			buf_printf(&out, "fileinto:%s[%s]%s", a->folder, a->flags, a->create ? "+create" : "");
			break;
		case SIEVE_REDIRECT: buf_printf(&out, "redirect:%s", a->address); break;
		case SIEVE_DISCARD: buf_append_str(&out, "discard"); break;
		case SIEVE_REJECT:
		case SIEVE_EREJECT:
			buf_printf(&out, "%s:%s", a->type == SIEVE_REJECT ? "reject" : "ereject", a->text);
			break;
		case SIEVE_VACATION:
			buf_printf(&out, "vacation:%s|%s|%s|%s", a->address, a->subject, a->from ? a->from : "",
				   a->text);
			break;
		}
	}
	if (res.header != NULL) {
		buf_append_str(&out, " HEADER:");
		buf_append(&out, res.header, res.header_len);
	}
	sieve_result_free(&res);
	sieve_free(s);
	buf_free(&err);
	return buf_cstr(&out);
}

static const char *run(const char *script)
{
	struct sieve_env env;
	env_init(&env);
	return run_env(script, MSG, &env, NULL);
}

/* ---- grammar ---- */
static void test_parse_basics(void)
{
	test_assert_str(parse(""), "");
	test_assert_str(parse("keep;"), "keep;\n");
	test_assert_str(parse("# comment\r\n/* block\r\n comment */ KEEP ;"), "keep;\n");
	test_assert_str(
		parse("require [\"fileinto\", \"envelope\"];\nif header :is \"x\" \"a\\\"b\\\\c\\d\" { stop; }"),
		"require [\"fileinto\", \"envelope\"];\nif header :is \"x\" \"a\\\"b\\\\cd\" {\n\tstop;\n}\n");
	test_assert_str(
		parse("if size :over 1K { discard; } elsif size :under 2m { keep; } else { stop; }"),
		"if size :over 1024 {\n\tdiscard;\n}\nelsif size :under 2097152 {\n\tkeep;\n}\nelse {\n\tstop;\n}\n");
	test_assert_str(parse("if size :over 3G {}"), "if size :over 3221225472 {\n}\n");
	test_assert_str(parse("if anyof (not exists \"a\", allof (true, false)) {}"),
			"if anyof (not exists \"a\", allof (true, false)) {\n}\n");
}

static void test_parse_multiline(void)
{
	test_assert_str(parse("require \"reject\";\nreject text: # why\r\nline one\r\n..dot\r\n.\r\n;"),
			"require \"reject\";\nreject \"line one\r\n.dot\r\n\";\n");
	/* bare LF line ends are taken too */
	test_assert_str(parse("require \"reject\";\nreject text:\nhi\n.\n;"),
			"require \"reject\";\nreject \"hi\r\n\";\n");
	test_assert(starts(parse("require \"reject\";\nreject text: x\nhi\n.\n;"), "ERR line 2: text:"));
	test_assert(starts(parse("require \"reject\";\nreject text:\nhi\n"), "ERR line 2: text: not ended"));
}

static void test_parse_errors(void)
{
	test_assert_str(parse("keep"), "ERR line 1: ';' or '{' expected after keep");
	test_assert_str(parse("\n\nfoo;"), "ERR line 3: unknown command foo");
	test_assert_str(parse("fileinto \"x\";"), "ERR line 1: fileinto needs require \"fileinto\"");
	test_assert_str(parse("keep;\nrequire \"fileinto\";"),
			"ERR line 2: require must come before any other command");
	test_assert_str(parse("require \"nosuch\";"), "ERR line 1: unsupported extension \"nosuch\"");
	test_assert_str(parse("else { }"), "ERR line 1: else without if");
	test_assert_str(parse("if true { keep; "), "ERR line 1: '}' missing at the end of the script");
	test_assert_str(parse("}"), "ERR line 1: '}' without a block");
	test_assert_str(parse("if header :is :is \"a\" \"b\" {}"), "ERR line 1: header: tag :is given twice");
	test_assert_str(parse("if header :is :contains \"a\" \"b\" {}"),
			"ERR line 1: header: more than one match type");
	test_assert_str(parse("if header :count \"gt\" \"a\" \"1\" {}"),
			"ERR line 1: header :count needs require \"relational\"");
	test_assert_str(parse("if header :comparator \"i;x\" \"a\" \"b\" {}"),
			"ERR line 1: unknown comparator \"i;x\"");
	test_assert_str(parse("if size 10 {}"), "ERR line 1: size needs :over or :under");
	test_assert_str(parse("if true;"), "ERR line 1: if needs a block");
	test_assert_str(parse("keep {}"), "ERR line 1: keep takes no block");
	test_assert_str(parse("redirect 5;"), "ERR line 1: redirect: argument 1 must be a string");
	test_assert_str(parse("redirect;"), "ERR line 1: redirect: 0 arguments where 1 expected");
	test_assert_str(parse("/* open"), "ERR line 1: comment /* not closed");
	test_assert_str(parse("keep \"x;"), "ERR line 1: string not closed");
	test_assert_str(parse("if size :over 99999999999999999999 {}"), "ERR line 1: number too large");
	test_assert_str(parse("if size :over 17179869184G {}"), "ERR line 1: number too large");
	test_assert_str(parse("keep\x01;"), "ERR line 1: unexpected byte 0x01");
	test_assert_str(parse("if header [\"a\", 3] \"b\" {}"), "ERR line 1: a string list holds strings only");
	test_assert_str(parse("if allof (true false) {}"), "ERR line 1: true: takes no test");
	test_assert_str(parse("if not {}"), "ERR line 1: not: needs one test");
	test_assert_str(parse("if true\r {}"), "ERR line 1: a CR not followed by LF");
	struct buf deep = BUF_INIT;
	for (int i = 0; i < 40; i++)
		buf_append_str(&deep, "if true {");
	test_assert(strstr(parse(buf_cstr(&deep)), "nested too deep") != NULL);
	buf_reset(&deep);
	buf_append_str(&deep, "if ");
	for (int i = 0; i < 40; i++)
		buf_append_str(&deep, "not ");
	buf_append_str(&deep, "true {}");
	test_assert(starts(parse(buf_cstr(&deep)), "ERR line 1: tests nested too deep"));
	buf_free(&deep);
}

static void test_parse_limit(void)
{
	struct sieve_script *s;
	struct buf err = BUF_INIT;
	test_assert(sieve_parse("keep;   ", 8, 5, &s, &err) == IX_ELIMIT && s == NULL);
	test_assert_str(buf_cstr(&err), "line 1: script of 8 bytes is over the limit of 5");
	buf_free(&err);
	test_assert(sieve_parse("keep;", 5, 5, &s, NULL) == IX_OK);
	sieve_free(s);
}

/* every prefix of a script and every script with one byte changed parses or fails with a line number, never
 * crashes; the dump of whatever parses parses back to itself */
static void test_parse_byte_by_byte(void)
{
	static const char *const scripts[] = {
		"require [\"fileinto\", \"variables\", \"vacation\"];\r\n# a comment\r\n"
		"if header :matches \"Subject\" \"[*] *\" { fileinto \"lists.${1}\"; stop; }\r\n"
		"elsif anyof (size :over 100K, not exists [\"From\", \"Date\"]) { discard; }\r\n"
		"vacation :days 3 :subject \"away\" text:\r\nI am away.\r\n..\r\n.\r\n;\r\n",
		"/* c */ if allof (address :domain :is \"from\" \"example.com\", true) {\n\tkeep;\n} else { stop; }\n",
	};
	static const char repl[] = "\"\\[](){};,:#/*.\n\r xK9";
	struct buf err = BUF_INIT, dump = BUF_INIT, dump2 = BUF_INIT, text = BUF_INIT;
	for (size_t k = 0; k < sizeof(scripts) / sizeof(scripts[0]); k++) {
		size_t len = strlen(scripts[k]);
		for (size_t cut = 0; cut <= len; cut++) {
			for (size_t r = 0; r <= sizeof(repl) - 1; r++) {
				buf_reset(&text);
				buf_append(&text, scripts[k], cut);
				if (r < sizeof(repl) - 1 && cut < len) {
					buf_append_char(&text, repl[r]);
					buf_append(&text, scripts[k] + cut + 1, len - cut - 1);
				} else if (r < sizeof(repl) - 1)
					continue;
				struct sieve_script *s;
				buf_reset(&err);
				int rc = sieve_parse(text.data ? text.data : "", text.len, 0, &s, &err);
				if (rc != IX_OK) {
					test_assert(s == NULL && starts(buf_cstr(&err), "line "));
					continue;
				}
				buf_reset(&dump);
				sieve_dump(s, &dump);
				sieve_free(s);
				test_assert(sieve_parse(buf_cstr(&dump), dump.len, 1 << 20, &s, NULL) == IX_OK);
				buf_reset(&dump2);
				sieve_dump(s, &dump2);
				sieve_free(s);
				test_assert_str(buf_cstr(&dump), buf_cstr(&dump2));
			}
		}
		/* the whole script parses */
		test_assert(!starts(parse(scripts[k]), "ERR"));
	}
	buf_free(&err);
	buf_free(&dump);
	buf_free(&dump2);
	buf_free(&text);
}

static void test_encoded_character(void)
{
	/* RFC 5228 2.4.2.4 */
	test_assert_str(
		parse("require \"encoded-character\";\nredirect \"${hex:40}${hex: 61 62}${unicode:263a}x${hex:zz}\";"),
		"require \"encoded-character\";\nredirect \"@ab\xe2\x98\xbax${hex:zz}\";\n");
	test_assert_str(parse("redirect \"${hex:40}\";"), "redirect \"${hex:40}\";\n");
	test_assert_str(parse("require \"encoded-character\";\nredirect \"${unicode:D800}\";"),
			"ERR line 2: encoded character out of the Unicode range");
}

/* ---- matching ---- */
static void test_glob(void)
{
	size_t caps[4][2];
	test_assert(sieve_glob("[*] *", 5, "[acme-users] [fwd] v1", 21, 0, caps, 4, NULL));
	test_assert(caps[0][0] == 1 && caps[0][1] == 11 && caps[1][0] == 13 && caps[1][1] == 21);
	test_assert(sieve_glob("a?c", 3, "AbC", 3, 1, NULL, 0, NULL));
	test_assert(!sieve_glob("a?c", 3, "AbC", 3, 0, NULL, 0, NULL));
	test_assert(sieve_glob("\\*x", 3, "*x", 2, 0, NULL, 0, NULL));
	test_assert(!sieve_glob("\\*x", 3, "ax", 2, 0, NULL, 0, NULL));
	test_assert(sieve_glob("*", 1, "", 0, 0, caps, 4, NULL) && caps[0][0] == 0 && caps[0][1] == 0);
	test_assert(!sieve_glob("?", 1, "", 0, 0, NULL, 0, NULL));
	/* linear work on the pathological pattern */
	char text[4001];
	memset(text, 'a', 4000);
	text[4000] = 0;
	unsigned steps = 0;
	test_assert(!sieve_glob("*a*a*a*a*a*b", 12, text, 4000, 0, NULL, 0, &steps));
	test_assert(steps < 4000u * 64);
	test_assert(sieve_compare(SIEVE_CMP_NUMERIC, "0010", 4, "9", 1) > 0);
	test_assert(sieve_compare(SIEVE_CMP_NUMERIC, "x", 1, "99", 2) > 0);
	test_assert(sieve_compare(SIEVE_CMP_NUMERIC, "x", 1, "y", 1) == 0);
	test_assert(sieve_compare(SIEVE_CMP_CASEMAP, "ABC", 3, "abc", 3) == 0);
}

/* ---- RFC 5228 ---- */
static void test_rfc5228_examples(void)
{
	/* section 9.1 (the folders made to exist by the fake mailbox list do not matter to fileinto) */
	const char *s91 =
		"require \"fileinto\";\n"
		"if header :is \"Sender\" \"owner-ietf-mta-filters@imc.org\"\n"
		"        { fileinto \"filter\"; }\n"
		"elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\"\n"
		"        { keep; }\n"
		"elsif anyof (NOT address :all :contains [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\n"
		"             header :matches \"subject\" [\"*make*money*fast*\", \"*university*dipl*mas*\"])\n"
		"        { fileinto \"spam\"; }\n"
		"else { fileinto \"personal\"; }\n";
	test_assert_str(run(s91), "keep[]");
	/* section 9.2 (2.10.3's size and header tests; 9.2 style) */
	test_assert_str(run("if size :over 100k { discard; }"), "keep[]");
	test_assert_str(run("if size :under 1k { discard; }"), "");
	test_assert_str(run("if header :contains \"from\" \"coyote\" { discard; } elsif header :contains "
			    "[\"subject\"] [\"$$$\"] { discard; } else { keep; }"),
			"keep[]");
	/* 5.7: exists */
	test_assert_str(run("if not exists [\"From\",\"Date\"] { discard; }"), "keep[]");
	test_assert_str(run("if exists [\"From\",\"X-None\"] { discard; }"), "keep[]");
	/* 4.2 redirect cancels the implicit keep; 2.10.2 the keep */
	test_assert_str(run("redirect \"bart@example.com\";"), "redirect:bart@example.com");
	test_assert_str(run("redirect \"a@example.net\"; redirect \"A@example.net\"; keep;"),
			"redirect:a@example.net keep[]");
	/* 5.1 address parts over two header fields, 5.6 envelope */
	test_assert_str(run("if address :localpart :is \"to\" \"carol\" { discard; }"), "");
	test_assert_str(run("require \"envelope\";\nif envelope :domain :is \"from\" \"example.org\" { discard; }"),
			"");
	test_assert_str(run("require \"envelope\";\nif envelope :all :is \"to\" \"ann@example.com\" { discard; }"),
			"keep[]");
	/* 2.7.1: :is "" on a missing header does not match; on i;octet case matters */
	test_assert_str(run("if header :is \"X-None\" \"\" { discard; }"), "keep[]");
	test_assert_str(run("if header :comparator \"i;octet\" :contains \"subject\" \"ACME\" { discard; }"), "keep[]");
	test_assert_str(run("if header :contains \"subject\" \"ACME\" { discard; }"), "");
	/* stop */
	test_assert_str(run("stop; discard;"), "keep[]");
}

/* ---- extensions ---- */
static void test_fileinto_copy_flags_mailbox(void)
{
	test_assert_str(run("require \"fileinto\";\nfileinto \"Work\";"), "fileinto:Work[]");
	/* RFC 3894 */
	test_assert_str(run("require [\"copy\", \"fileinto\"];\nfileinto :copy \"Work\";"), "fileinto:Work[] keep[]");
	test_assert_str(run("require \"copy\";\nredirect :copy \"x@example.net\";"), "redirect:x@example.net keep[]");
	/* RFC 5232 section 7's example */
	test_assert_str(
		run("require [\"imap4flags\", \"fileinto\"];\n"
		    "if header :contains \"from\" \"bob@example.org\" {\n"
		    "  setflag \"\\\\Flagged\";\n  fileinto \"Work\";\n"
		    "  removeflag \"\\\\Flagged\";\n  addflag [\"\\\\Seen\", \"$Junk \\\\seen\"];\n  keep;\n}\n"),
		"fileinto:Work[\\Flagged] keep[\\Seen $Junk]");
	test_assert_str(run("require [\"imap4flags\", \"fileinto\"];\nfileinto :flags \"\\\\Answered\" \"Work\";"),
			"fileinto:Work[\\Answered]");
	test_assert_str(run("require [\"imap4flags\", \"variables\"];\naddflag \"f\" \"A B\"; removeflag \"f\" \"a\";\n"
			    "if hasflag \"f\" \"b\" { discard; }"),
			"");
	test_assert_str(run("require \"imap4flags\";\nsetflag \"A\"; if hasflag :contains \"a\" { discard; }"), "");
	/* RFC 5490 */
	test_assert_str(run("require [\"mailbox\", \"fileinto\"];\nif mailboxexists \"Work\" { fileinto :create "
			    "\"Work/New\"; }\nif mailboxexists [\"Work\", \"Nope\"] { discard; }"),
			"fileinto:Work/New[]+create");
}

static void test_reject(void)
{
	/* RFC 5429 section 2.1 and 2.2 */
	test_assert_str(run("require [\"reject\"];\nif header :contains \"subject\" \"version\" { reject text:\nI do "
			    "not accept messages with\nthis subject.\n.\n;\n}"),
			"reject:I do not accept messages with\r\nthis subject.\r\n");
	test_assert_str(run("require [\"reject\"];\nif header :contains \"subject\" \"acme\" { reject \"no\"; }"),
			"reject:no");
	test_assert_str(run("require \"ereject\";\nereject \"I do not accept that\";"), "ereject:I do not accept that");
	test_assert_str(run("require [\"reject\", \"fileinto\"];\nfileinto \"Work\"; reject \"no\";"),
			"ERR line 2: reject cannot be combined with line 2's action;keep[]");
}

static void test_variables(void)
{
	/* RFC 5229 section 3.2's example */
	test_assert_str(
		run("require [\"fileinto\", \"variables\"];\n"
		    "if header :matches \"List-ID\" \"*<*@*\" {\n    fileinto \"INBOX.lists.${2}\"; stop;\n}\n"
		    "if header :matches \"Subject\" \"[*] *\" {\n    fileinto \"INBOX.lists.${1}\"; stop;\n}\n"),
		"fileinto:INBOX.lists.acme-users[]");
	test_assert_str(run("require [\"fileinto\", \"variables\"];\n"
			    "if header :matches \"Subject\" \"[*] *\" {\n    fileinto \"INBOX.lists.${1}.${2}\"; }\n"),
			"fileinto:INBOX.lists.acme-users.[fwd] version 1.0 is out[]");
	/* section 4.1's modifiers */
	test_assert_str(run("require [\"variables\", \"fileinto\"];\nset \"a\" \"juMBlEd lEttERS\";\n"
			    "set :length \"l\" \"${a}\"; set :lower \"b\" \"${a}\"; set :upperfirst \"c\" \"${b}\";\n"
			    "set :lower :upperfirst \"d\" \"${a}\"; set :quotewildcard \"e\" \"Rock*\";\n"
			    "fileinto \"${l}/${b}/${c}/${d}/${e}/${unknown}/${0}\";"),
			"fileinto:15/jumbled letters/Jumbled letters/Jumbled letters/Rock\\*//[]");
	/* section 5: the string test */
	test_assert_str(run("require [\"variables\", \"relational\"];\nset \"x\" \"\";\n"
			    "if string :count \"eq\" \"${x}\" \"0\" { discard; }"),
			"");
	test_assert_str(run("require \"variables\";\nset \"x\" \"abc\"; if string :is \"${x}\" \"ABC\" { discard; }"),
			"");
	/* no variables required: ${...} is text */
	test_assert_str(run("require \"fileinto\";\nfileinto \"${x}\";"), "fileinto:${x}[]");
	test_assert(starts(run("require \"variables\";\nset \"1a\" \"x\";"), "ERR line 2: set: bad variable name"));
}

static void test_relational(void)
{
	/* RFC 5231 section 5's examples */
	test_assert_str(run("require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
			    "if header :value \"lt\" :comparator \"i;ascii-numeric\" [\"x-spam-score\"] [\"5\"] "
			    "{ discard; }"),
			"");
	test_assert_str(run("require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
			    "if header :count \"ge\" :comparator \"i;ascii-numeric\" [\"x-spam-score\"] [\"3\"] "
			    "{ discard; }"),
			"keep[]");
	test_assert_str(run("require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
			    "if address :count \"ge\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] [\"3\"] "
			    "{ discard; }"),
			"");
	test_assert_str(run("require \"relational\";\nif header :value \"gt\" \"subject\" \"[a\" { discard; }"), "");
}

static void test_subaddress(void)
{
	/* RFC 5233 section 5's example */
	test_assert_str(run("require [\"envelope\", \"subaddress\", \"fileinto\"];\n"
			    "if envelope :user \"to\" \"ann\" { if envelope :detail \"to\" \"lists\" { fileinto "
			    "\"lists\"; } }\nif address :detail \"cc\" \"dev\" { fileinto \"dev\"; }\n"
			    "if address :detail :matches \"from\" \"*\" { fileinto \"never\"; }"),
			"fileinto:lists[] fileinto:dev[]");
}

static void test_date_index(void)
{
	/* RFC 5260: the Date header is 09:15 UTC, 10:15 in its own zone */
	test_assert_str(run("require \"date\";\nif date :zone \"+0000\" \"date\" \"hour\" \"09\" { discard; }"), "");
	test_assert_str(run("require \"date\";\nif date :originalzone \"date\" \"time\" \"10:15:00\" { discard; }"),
			"");
	test_assert_str(run("require \"date\";\nif date :originalzone \"date\" \"iso8601\" "
			    "\"2026-12-07T10:15:00+01:00\" { discard; }"),
			"");
	test_assert_str(run("require \"date\";\nif date :zone \"-0500\" \"date\" \"std11\" "
			    "\"Mon, 07 Dec 2026 04:15:00 -0500\" { discard; }"),
			"");
	test_assert_str(run("require [\"date\", \"relational\"];\nif allof(currentdate :value \"ge\" \"date\" "
			    "\"2026-12-01\", currentdate :value \"le\" \"date\" \"2026-12-31\", currentdate "
			    "\"weekday\" \"1\", currentdate \"julian\" \"61381\") { discard; }"),
			"");
	test_assert_str(run("require \"date\";\nif date \"date\" \"nosuch\" \"x\" { discard; }"),
			"ERR line 2: unknown date part \"nosuch\";keep[]");
	test_assert_str(run("require \"date\";\nif date :zone \"bad\" \"date\" \"year\" \"2026\" { discard; }"),
			"keep[]");
	/* index: the second X-Spam-Score, and the last */
	test_assert_str(run("require \"index\";\nif header :index 2 \"x-spam-score\" \"3\" { discard; }"), "");
	test_assert_str(run("require \"index\";\nif header :index 1 :last \"x-spam-score\" \"7\" { discard; }"),
			"keep[]");
	test_assert_str(run("require \"index\";\nif address :index 2 :localpart \"to\" \"carol\" { discard; }"),
			"keep[]");
}

static void test_body(void)
{
	/* RFC 5173 section 7's example */
	test_assert_str(run("require \"body\";\nif body :text :contains \"MAKE MONEY FAST\" { discard; }"), "");
	test_assert_str(run("require \"body\";\nif body :raw :contains \"Subject\" { discard; }"), "keep[]");
	test_assert_str(run("require \"body\";\nif body :content \"image\" :contains \"\" { discard; }"), "keep[]");
	static const char mp[] = "From: a@b.c\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
				 "boundary=XX\r\n\r\n--XX\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\r\n--XX\r\n"
				 "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
				 "c2VjcmV0IHdvcmQ=\r\n--XX--\r\n";
	struct sieve_env env;
	env_init(&env);
	test_assert_str(run_env("require \"body\";\nif body :content \"text/plain\" :contains \"secret\" { discard; }",
				mp, &env, NULL),
			"");
	test_assert_str(run_env("require \"body\";\nif body :content \"text/html\" :contains \"secret\" { discard; }",
				mp, &env, NULL),
			"keep[]");
}

static void test_editheader(void)
{
	/* RFC 5293 section 9's examples */
	test_assert_str(run("require [\"editheader\"];\naddheader \"X-Source\" \"me\";\ndeleteheader \"message-id\";"),
			"keep[] HEADER:X-Source: me\r\nReturn-Path: <bob@example.org>\r\nFrom: Bob Jones "
			"<bob@example.org>\r\nTo: Ann <ann@example.com>, carol@example.net\r\nCc: "
			"team+dev@example.com\r\nSubject: [acme-users] [fwd] version 1.0 is out\r\nDate: Mon, 7 Dec "
			"2026 10:15:00 +0100\r\nX-Spam-Score: 7\r\nX-Spam-Score: 3\r\nList-ID: Acme users "
			"<acme-users.lists.example.org>\r\n\r\n");
	const char *r = run("require [\"editheader\", \"index\"];\ndeleteheader :index 1 :last \"x-spam-score\";\n"
			    "addheader :last \"X-Tail\" \"t\";\nif header :is \"x-spam-score\" \"3\" { discard; }");
	test_assert(strstr(r, "X-Spam-Score: 7\r\nList-ID") != NULL && strstr(r, "X-Spam-Score: 3") == NULL);
	test_assert(strstr(r, "example.org>\r\nX-Tail: t\r\n\r\n") != NULL);
	test_assert(starts(r, "keep[]"));
	r = run("require \"editheader\";\ndeleteheader :matches \"x-spam-score\" \"7\";");
	test_assert(strstr(r, "X-Spam-Score: 7") == NULL && strstr(r, "X-Spam-Score: 3") != NULL);
	test_assert_str(run("require \"editheader\";\naddheader \"Bad Name\" \"x\";"),
			"ERR line 2: addheader: bad field name \"Bad Name\";keep[]");
}

static void test_include(void)
{
	/* RFC 6609 section 4's example shape */
	include_name = "spam_tests";
	include_text = "require [\"include\", \"variables\", \"fileinto\"];\nglobal \"folder\";\n"
		       "if header :contains \"subject\" \"money\" { fileinto \"${folder}\"; return; }\nkeep;\n";
	test_assert_str(run("require [\"include\", \"variables\"];\nglobal \"folder\";\nset \"folder\" \"Junk\";\n"
			    "include :personal \"spam_tests\";\ninclude :once \"spam_tests\";\ninclude :once "
			    "\"spam_tests\";"),
			"keep[]");
	include_text = "require [\"include\", \"variables\", \"fileinto\"];\nglobal \"folder\";\n"
		       "if header :contains \"subject\" \"acme\" { fileinto \"${folder}\"; return; }\nkeep;\n";
	test_assert_str(run("require [\"include\", \"variables\"];\nglobal \"folder\";\nset \"folder\" \"Junk\";\n"
			    "include \"spam_tests\";"),
			"fileinto:Junk[]");
	test_assert_str(run("require \"include\";\ninclude :optional \"nope\";"), "keep[]");
	test_assert_str(run("require \"include\";\ninclude \"nope\";"),
			"ERR line 2: include: no personal script \"nope\";keep[]");
	/* a script that includes itself stops at the depth limit */
	include_name = "loop";
	include_text = "require \"include\";\ninclude \"loop\";\n";
	test_assert(
		starts(run("require \"include\";\ninclude \"loop\";"), "ERR line 2: include: nested deeper than 5"));
	include_name = NULL;
}

static void test_duplicate(void)
{
	/* RFC 7352 section 3's example */
	seen_reset();
	const char *s = "require [\"duplicate\", \"fileinto\", \"mailbox\"];\n"
			"if duplicate { fileinto :create \"Trash/Duplicate\"; }";
	test_assert_str(run(s), "keep[]");
	test_assert_str(run(s), "fileinto:Trash/Duplicate[]+create");
	test_assert_str(run("require \"duplicate\";\nif duplicate :header \"x-none\" { discard; }"), "keep[]");
	test_assert_str(run("require \"duplicate\";\nif duplicate :uniqueid \"a\" :handle \"h\" { discard; }"),
			"keep[]");
	test_assert_str(run("require \"duplicate\";\nif duplicate :uniqueid \"a\" :handle \"h\" { discard; }"), "");
	seen_reset();
}

static void test_vacation(void)
{
	/* RFC 5230 section 4's example; the subject defaults to "Auto: " and the original */
	seen_reset();
	const char *s = "require \"vacation\";\nvacation :days 7 :addresses [\"ann@example.com\"] "
			"\"I'm out -- send mail to cyrus-bugs\";";
	struct sieve_env env;
	env_init(&env);
	const char *m1 = "From: bob@example.org\r\nTo: Ann <ann@example.com>\r\nSubject: Plans\r\n\r\nHi\r\n";
	test_assert_str(run_env(s, m1, &env, NULL), "vacation:bob@example.org|Auto: Plans||I'm out -- send mail to "
						    "cyrus-bugs keep[]");
	/* once per sender within the period */
	test_assert_str(run_env(s, m1, &env, NULL), "keep[]");
	/* the list message of the other tests gets no reply */
	seen_reset();
	test_assert_str(run(s), "keep[]");
	/* RFC 6131 and the other tags; :seconds 0 answers every time */
	for (int i = 0; i < 2; i++)
		test_assert_str(run_env("require \"vacation-seconds\";\nvacation :seconds 0 :subject \"Out\" :from "
					"\"ann@example.com\" :handle \"h\" \"text\";",
					m1, &env, NULL),
				"vacation:bob@example.org|Out|ann@example.com|text keep[]");
	seen_reset();
	/* never to the null sender, the user's own addresses, owner-/-request/MAILER-DAEMON */
	static const char *const senders[] = { "", "ann@example.com", "owner-x@example.org", "x-request@example.org",
					       "MAILER-DAEMON@example.org" };
	for (size_t i = 0; i < 5; i++) {
		env.env_from = senders[i];
		test_assert_str(run_env("require \"vacation\";\nvacation \"x\";", MSG, &env, NULL), "keep[]");
	}
	env_init(&env);
	/* never to automatic mail (RFC 3834): Auto-Submitted, Precedence, List- */
	static const char *const autos[] = { "Auto-Submitted: auto-replied\r\n", "Precedence: bulk\r\n",
					     "List-Unsubscribe: <mailto:x@y>\r\n" };
	for (size_t i = 0; i < 3; i++) {
		char *m = xasprintf("%sTo: ann@example.com\r\nSubject: x\r\n\r\nbody\r\n", autos[i]);
		test_assert_str(run_env("require \"vacation\";\nvacation \"x\";", m, &env, NULL), "keep[]");
		free(m);
	}
	test_assert_str(run_env("require \"vacation\";\nvacation \"x\";",
				"Auto-Submitted: no\r\nTo: ann@example.com\r\n\r\nb\r\n", &env, NULL),
			"vacation:bob@example.org|Auto: ||x keep[]");
	seen_reset();
	/* not when none of the user's addresses is a recipient in the header */
	test_assert_str(
		run_env("require \"vacation\";\nvacation \"x\";", "To: other@example.com\r\n\r\nb\r\n", &env, NULL),
		"keep[]");
	test_assert(sieve_header_is_auto("Precedence: junk\r\n\r\n", 20));
	test_assert(!sieve_header_is_auto("Precedence: first-class\r\n\r\n", 27));
	seen_reset();
}

static void test_limits(void)
{
	struct sieve_env env;
	env_init(&env);
	struct sieve_limits lim;
	sieve_limits_default(&lim);
	lim.max_redirects = 2;
	test_assert_str(run_env("redirect \"a@x.y\"; redirect \"b@x.y\"; redirect \"c@x.y\";", MSG, &env, &lim),
			"ERR line 1: too many redirects (limit 2);keep[]");
	lim.max_actions = 2;
	test_assert_str(run_env("require [\"fileinto\", \"copy\"];\nfileinto :copy \"a\"; fileinto :copy \"b\"; "
				"fileinto :copy \"c\";",
				MSG, &env, &lim),
			"ERR line 2: too many actions (limit 2);keep[]");
	sieve_limits_default(&lim);
	lim.max_steps = 1000;
	/* a long script of tests runs out of steps and keeps */
	struct buf big = BUF_INIT;
	for (int i = 0; i < 600; i++)
		buf_append_str(&big, "if header :contains \"subject\" \"zzz\" { discard; }\n");
	const char *r = run_env(buf_cstr(&big), MSG, &env, &lim);
	test_assert(starts(r, "ERR line ") && strstr(r, "script ran too long (1000 steps);keep[]") != NULL);
	buf_free(&big);
	test_assert_str(run("redirect \"not an address\";"),
			"ERR line 1: redirect: bad address \"not an address\";keep[]");
}

/* out of office: the generated script answers inside and outside senders with their texts, within its period */
static void test_oof(void)
{
	static const char *const domains[] = { "example.com", "example.net", NULL };
	struct sieve_oof o = { .internal = "Back Monday (inside)",
			       .external = "I am \"away\"",
			       .from = "2026-12-01",
			       .until = "2026-12-31",
			       .audience = SIEVE_OOF_ALL,
			       .domains = domains };
	struct buf text = BUF_INIT, d = BUF_INIT;
	sieve_oof_script(&o, &text);
	test_assert(sieve_oof_describe(buf_cstr(&text), text.len, &d) == 0);
	test_assert_str(buf_cstr(&d), "external-audience=all from=2026-12-01 until=2026-12-31");
	test_assert(sieve_oof_describe("keep;", 5, &d) == -1);
	/* read back: the texts with their quotes, the period, the audience */
	struct sieve_oof_settings back;
	test_assert(sieve_oof_read(buf_cstr(&text), text.len, &back) == 0);
	test_assert_str(back.internal, "Back Monday (inside)");
	test_assert_str(back.external, "I am \"away\"");
	test_assert_str(back.subject, "Out of office");
	test_assert_str(back.from, "2026-12-01");
	test_assert_str(back.until, "2026-12-31");
	test_assert(back.audience == SIEVE_OOF_ALL);
	sieve_oof_settings_free(&back);
	test_assert(sieve_oof_read("keep;", 5, &back) == -1);
	const char *m = "From: x\r\nTo: ann@example.com\r\nSubject: Plans\r\n\r\nHi\r\n";
	struct sieve_env env;
	env_init(&env);
	seen_reset();
	env.env_from = "bob@example.net";
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL),
			"vacation:bob@example.net|Out of office||Back Monday (inside) keep[]");
	env.env_from = "friend@outside.org";
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL),
			"vacation:friend@outside.org|Out of office||I am \"away\" keep[]");
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL), "keep[]");
	/* outside the period nobody is answered */
	seen_reset();
	env.now = 1796636708 + 40 * 86400;
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL), "keep[]");
	/* audience none: inside only */
	env_init(&env);
	o.audience = SIEVE_OOF_NONE;
	o.from = o.until = NULL;
	buf_reset(&text);
	sieve_oof_script(&o, &text);
	test_assert(sieve_oof_read(buf_cstr(&text), text.len, &back) == 0);
	test_assert(back.external == NULL && back.audience == SIEVE_OOF_NONE && back.from[0] == '\0');
	sieve_oof_settings_free(&back);
	env.env_from = "friend@outside.org";
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL), "keep[]");
	env.env_from = "bob@example.com";
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL),
			"vacation:bob@example.com|Out of office||Back Monday (inside) keep[]");
	test_assert(sieve_oof_audience("known") == SIEVE_OOF_KNOWN && sieve_oof_audience("x") == -1);
	/* audience known with no contact: the outside text is kept and read back, and no outsider is answered */
	o.audience = SIEVE_OOF_KNOWN;
	o.known = NULL;
	buf_reset(&text);
	sieve_oof_script(&o, &text);
	test_assert(sieve_oof_read(buf_cstr(&text), text.len, &back) == 0);
	test_assert(back.audience == SIEVE_OOF_KNOWN);
	test_assert_str(back.external, "I am \"away\"");
	sieve_oof_settings_free(&back);
	seen_reset();
	env.env_from = "friend@outside.org";
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL), "keep[]");
	env.env_from = "bob@example.com";
	test_assert_str(run_env(buf_cstr(&text), m, &env, NULL),
			"vacation:bob@example.com|Out of office||Back Monday (inside) keep[]");
	seen_reset();
	buf_free(&text);
	buf_free(&d);
}

TEST_MAIN("sieve", TEST_CASE(test_parse_basics), TEST_CASE(test_parse_multiline), TEST_CASE(test_parse_errors),
	  TEST_CASE(test_parse_limit), TEST_CASE(test_parse_byte_by_byte), TEST_CASE(test_encoded_character),
	  TEST_CASE(test_glob), TEST_CASE(test_rfc5228_examples), TEST_CASE(test_fileinto_copy_flags_mailbox),
	  TEST_CASE(test_reject), TEST_CASE(test_variables), TEST_CASE(test_relational), TEST_CASE(test_subaddress),
	  TEST_CASE(test_date_index), TEST_CASE(test_body), TEST_CASE(test_editheader), TEST_CASE(test_include),
	  TEST_CASE(test_duplicate), TEST_CASE(test_vacation), TEST_CASE(test_limits), TEST_CASE(test_oof))
