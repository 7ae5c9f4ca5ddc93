/* test_imap_parse.c - unit tests for the IMAP command parser, SEARCH and FETCH parsers and response helpers.
 * Table-driven; every table input is also fed byte-at-a-time and in odd chunk sizes and must give the same log. */
#include "test.h"
#include "buf.h"
#include "err.h"
#include "imap_parse.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rendering the tree as text ---- */

static void dump_args(struct buf *out, const struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			buf_append_char(out, ' ');
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_printf(out, "%s", a->str);
			break;
		case IMAP_ARG_NIL:
			buf_append_str(out, "<NIL>");
			break;
		case IMAP_ARG_QUOTED:
			buf_append_char(out, '"');
			buf_append(out, a->str, a->len);
			buf_append_char(out, '"');
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "%s{%zu}", a->literal8 ? "~" : "", a->len);
			for (size_t k = 0; k < a->len; k++) {
				unsigned char c = (unsigned char)a->str[k];
				if (c < 0x20 || c >= 0x7f)
					buf_printf(out, "\\x%02x", c);
				else
					buf_append_char(out, (char)c);
			}
			break;
		case IMAP_ARG_LIST:
			buf_append_char(out, '(');
			dump_args(out, a->list, a->list_count);
			buf_append_char(out, ')');
			break;
		}
	}
}

static void dump_command(struct buf *out, const struct imap_command *cmd)
{
	buf_printf(out, "%s %s%s", cmd->tag, cmd->uid ? "UID " : "", cmd->name);
	if (cmd->arg_count > 0) {
		buf_append_str(out, " [");
		dump_args(out, cmd->args, cmd->arg_count);
		buf_append_char(out, ']');
	}
}

/* Feeds input in chunks of `chunk` bytes (0: all at once), accepting literals unless they are larger than
 * reject_over, and logs every event; returns the log (caller frees). */
static char *run_feed(const struct imap_parser_settings *set, const char *input, size_t len, size_t chunk,
		      uint64_t reject_over)
{
	struct imap_parser *p = imap_parser_create(set);
	struct buf log = BUF_INIT;
	size_t off = 0;
	while (off < len) {
		size_t n = chunk == 0 ? len - off : (len - off < chunk ? len - off : chunk);
		size_t pos = 0;
		while (pos < n) {
			size_t used;
			enum imap_parse_result r = imap_parser_feed(p, input + off + pos, n - pos, &used);
			pos += used;
			const struct imap_literal_info *lit;
			switch (r) {
			case IMAP_PARSE_NEED_MORE:
				break;
			case IMAP_PARSE_DONE:
				buf_append_str(&log, "DONE ");
				dump_command(&log, imap_parser_command(p));
				buf_append_char(&log, '\n');
				break;
			case IMAP_PARSE_LITERAL:
				lit = imap_parser_literal(p);
				buf_printf(&log, "LIT %s %llu %s%s\n", imap_parser_tag(p) ? imap_parser_tag(p) : "*",
					   (unsigned long long)lit->size, lit->sync ? "sync" : "nonsync",
					   lit->binary ? " binary" : "");
				if (lit->size > reject_over) {
					buf_append_str(&log, "REJECT\n");
					imap_parser_literal_reject(p);
				} else {
					imap_parser_literal_accept(p);
				}
				break;
			case IMAP_PARSE_ERROR:
				buf_printf(&log, "ERR %s %s\n", imap_parser_tag(p) ? imap_parser_tag(p) : "*",
					   imap_parser_error(p));
				break;
			}
			if (used == 0 && r == IMAP_PARSE_NEED_MORE)
				break;
		}
		off += n;
	}
	imap_parser_destroy(&p);
	return buf_steal(&log);
}

struct parse_case {
	const char *input;
	const char *log; /* expected events */
};

static const struct parse_case parse_cases[] = {
	{ "a1 NOOP\r\n", "DONE a1 NOOP\n" },
	{ "a1 noop\n", "DONE a1 NOOP\n" },
	{ "A003 LOGIN \"fred\" \"pass \\\"w\\\\d\"\r\n", "DONE A003 LOGIN [\"fred\" \"pass \"w\\d\"]\n" },
	{ "a SELECT inbox\r\n", "DONE a SELECT [inbox]\n" },
	{ "a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)]<0.100>)\r\n",
	  "DONE a4 UID FETCH [1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)]<0.100>)]\n" },
	{ "a5 STORE 2:4 +FLAGS.SILENT (\\Deleted $Junk)\r\n", "DONE a5 STORE [2:4 +FLAGS.SILENT (\\Deleted $Junk)]\n" },
	{ "a6 LIST \"\" \"*\"\r\n", "DONE a6 LIST [\"\" \"*\"]\n" },
	{ "a6 LIST \"\" %\r\n", "DONE a6 LIST [\"\" %]\n" },
	{ "a7 SELECT [Gmail]/Sent\r\n", "DONE a7 SELECT [[Gmail]/Sent]\n" },
	{ "a8 APPEND INBOX (\\Seen) {5}\r\nhello\r\n", "LIT a8 5 sync\nDONE a8 APPEND [INBOX (\\Seen) {5}hello]\n" },
	{ "a9 APPEND INBOX {3+}\r\nabc {0}\r\n\r\n", "LIT a9 3 nonsync\nLIT a9 0 sync\nDONE a9 APPEND [INBOX {3}abc {0}]\n" },
	{ "b1 X (a (b (c)) NIL nil \"\")\r\n", "DONE b1 X [(a (b (c)) <NIL> <NIL> \"\")]\n" },
	{ "b2 X ()\r\n", "DONE b2 X [()]\n" },
	{ "b3 ID (\"name\" \"Thunderbird\" \"version\" \"115\")\r\n",
	  "DONE b3 ID [(\"name\" \"Thunderbird\" \"version\" \"115\")]\n" },
	{ "b4 NOOP  \r\n", "DONE b4 NOOP\n" },
	{ "b5 APPEND x ~{3+}\r\na\0b\r\n", "LIT b5 3 nonsync binary\nDONE b5 APPEND [x ~{3}a\\x00b]\n" },
	{ "b6 SEARCH CHARSET UTF-8 SUBJECT \"\xc3\xa9t\xc3\xa9\"\r\n",
	  "DONE b6 SEARCH [CHARSET UTF-8 SUBJECT \"\xc3\xa9t\xc3\xa9\"]\n" },
	/* pipelining */
	{ "p1 NOOP\r\np2 CHECK\r\np3 LOGOUT\r\n", "DONE p1 NOOP\nDONE p2 CHECK\nDONE p3 LOGOUT\n" },
	/* errors, each followed by a good command to show recovery */
	{ "\r\nz1 NOOP\r\n", "ERR * Empty command line\nDONE z1 NOOP\n" },
	{ "c1\r\nz1 NOOP\r\n", "ERR c1 Missing command name\nDONE z1 NOOP\n" },
	{ "+c NOOP\r\nz1 NOOP\r\n", "ERR * Invalid tag\nDONE z1 NOOP\n" },
	{ "c2 X (a (b)\r\nz1 NOOP\r\n", "ERR c2 Missing ')'\nDONE z1 NOOP\n" },
	{ "c3 X a)\r\nz1 NOOP\r\n", "ERR c3 Unexpected ')'\nDONE z1 NOOP\n" },
	{ "c4 X \"abc\r\nz1 NOOP\r\n", "ERR c4 Unterminated quoted string\nDONE z1 NOOP\n" },
	{ "c4b X \"abc\nz1 NOOP\r\n", "ERR c4b Unterminated quoted string\nDONE z1 NOOP\n" },
	{ "c5 X \"a\\bc\"\r\nz1 NOOP\r\n", "ERR c5 Invalid escape in quoted string\nDONE z1 NOOP\n" },
	{ "c6 X {abc}\r\nz1 NOOP\r\n", "ERR c6 Invalid literal size\nDONE z1 NOOP\n" },
	{ "c7 X {}\r\nz1 NOOP\r\n", "ERR c7 Invalid literal size\nDONE z1 NOOP\n" },
	{ "c8 X {5} y\r\nz1 NOOP\r\n", "ERR c8 Literal announcement must end the line\nDONE z1 NOOP\n" },
	{ "c9 X a{5}\r\nz1 NOOP\r\n", "ERR c9 Unexpected '{'\nDONE z1 NOOP\n" },
	{ "d1 X caf\xc3\xa9\r\nz1 NOOP\r\n", "ERR d1 8-bit character in atom\nDONE z1 NOOP\n" },
	{ "d2 X a\0b\r\nz1 NOOP\r\n", "ERR d2 NUL byte in command\nDONE z1 NOOP\n" },
	{ "d3 X a\rb\r\nz1 NOOP\r\n", "ERR d3 CR not followed by LF\nDONE z1 NOOP\n" },
	{ "d4 X {99999999999999999999999}\r\nz1 NOOP\r\n", "ERR d4 Literal too large\nDONE z1 NOOP\n" },
	{ "d5 X {100000000}\r\nz1 NOOP\r\n", "ERR d5 Literal too large\nDONE z1 NOOP\n" },
	/* a too-large non-sync literal is skipped, its bytes never taken for commands */
	{ "d6 X {100000000+}\r\n", "ERR d6 Literal too large\n" },
	{ "d7 X {3}\r\na\0c\r\nz1 NOOP\r\n", "LIT d7 3 sync\nERR d7 NUL byte in literal (use ~{n})\nDONE z1 NOOP\n" },
	{ "d9 X (a)(b)\r\nz1 NOOP\r\n", "ERR d9 Missing space between arguments\nDONE z1 NOOP\n" },
	{ "e1 X FLAGS(\\Seen)\r\nz1 NOOP\r\n", "ERR e1 Invalid character in atom\nDONE z1 NOOP\n" },
	{ "e2 X a\\b\r\nz1 NOOP\r\n", "ERR e2 Invalid character in atom\nDONE z1 NOOP\n" },
	{ "e3 FETCH 1 BODY[HEADER\r\nz1 NOOP\r\n", "ERR e3 Unterminated section '['\nDONE z1 NOOP\n" },
	{ "e4 UID\r\nz1 NOOP\r\n", "ERR e4 Missing command after UID\nDONE z1 NOOP\n" },
	{ "e5 X {3}\r\nabcdef\r\nz1 NOOP\r\n", "LIT e5 3 sync\nERR e5 Missing space between arguments\nDONE z1 NOOP\n" },
	/* a rejected sync literal ends the command; the client sends no bytes for it */
	{ "r1 APPEND INBOX {2000}\r\nz1 NOOP\r\n", "LIT r1 2000 sync\nREJECT\nDONE z1 NOOP\n" },
	/* a rejected non-sync literal's bytes (and the rest of its command) are skipped */
	{ "r2 APPEND INBOX {1500+}\r\n", "LIT r2 1500 nonsync\nREJECT\n" },
};

static void check_table(const struct imap_parser_settings *set, const struct parse_case *cases, size_t n)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 7, 64 };
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(cases[i].input);
		const char *in = cases[i].input;
		for (size_t c = 0; c < IX_ARRAY_LEN(chunks); c++) {
			char *log = run_feed(set, in, len, chunks[c], 1000);
			if (strcmp(log, cases[i].log) != 0) {
				fprintf(stderr, "case %zu chunk %zu:\n input: %s\n got:  %s\n want: %s\n", i, chunks[c],
					in, log, cases[i].log);
				free(log);
				test_assert(!"parse log mismatch");
			}
			free(log);
		}
	}
}

/* Strings with embedded NULs carry their length. */
struct parse_case_n {
	const char *input;
	size_t len;
	const char *log;
};

#define CASE_N(s, l) { s, sizeof(s) - 1, l }
static const struct parse_case_n nul_cases[] = {
	CASE_N("b5 APPEND x ~{3+}\r\na\0b\r\n", "LIT b5 3 nonsync binary\nDONE b5 APPEND [x ~{3}a\\x00b]\n"),
	CASE_N("d2 X a\0b\r\nz1 NOOP\r\n", "ERR d2 NUL byte in command\nDONE z1 NOOP\n"),
	CASE_N("d7 X {3}\r\na\0c\r\nz1 NOOP\r\n",
	       "LIT d7 3 sync\nERR d7 NUL byte in literal (use ~{n})\nDONE z1 NOOP\n"),
	CASE_N("d6 X {100000000+}\r\n", "ERR d6 Literal too large\n"),
	CASE_N("r2 APPEND INBOX {1500+}\r\n", "LIT r2 1500 nonsync\nREJECT\n"),
};

static struct imap_parser_settings test_settings(void)
{
	struct imap_parser_settings set;
	memset(&set, 0, sizeof(set));
	set.literal_plus = true;
	set.binary = true;
	set.max_literal = 10000000;
	return set;
}

static void parse_table_chunked(void)
{
	struct imap_parser_settings set = test_settings();
	struct parse_case tmp[IX_ARRAY_LEN(parse_cases)];
	size_t n = 0;
	for (size_t i = 0; i < IX_ARRAY_LEN(parse_cases); i++) {
		/* cases containing NULs are run from nul_cases with their real length */
		if (strstr(parse_cases[i].input, "~{3+}") != NULL || strncmp(parse_cases[i].input, "d2 ", 3) == 0 ||
		    strncmp(parse_cases[i].input, "d7 ", 3) == 0)
			continue;
		tmp[n++] = parse_cases[i];
	}
	check_table(&set, tmp, n);
}

static void parse_nul_and_skip_chunked(void)
{
	struct imap_parser_settings set = test_settings();
	static const size_t chunks[] = { 0, 1, 2, 5 };
	for (size_t i = 0; i < IX_ARRAY_LEN(nul_cases); i++) {
		/* skipped literal bytes: append a payload that looks like commands, then a real command */
		struct buf in = BUF_INIT;
		buf_append(&in, nul_cases[i].input, nul_cases[i].len);
		const char *want = nul_cases[i].log;
		struct buf want_b = BUF_INIT;
		buf_append_str(&want_b, want);
		if (strncmp(nul_cases[i].input, "d6", 2) == 0 || strncmp(nul_cases[i].input, "r2", 2) == 0) {
			size_t skip = strncmp(nul_cases[i].input, "d6", 2) == 0 ? 100000000 : 1500;
			char *junk = xmalloc(skip);
			for (size_t k = 0; k < skip; k++)
				junk[k] = "x1 NOOP\r\n"[k % 9];
			buf_append(&in, junk, skip);
			free(junk);
			buf_append_str(&in, " {2+}\r\nab\r\nz1 NOOP\r\n");
			buf_append_str(&want_b, "DONE z1 NOOP\n");
		}
		for (size_t c = 0; c < IX_ARRAY_LEN(chunks); c++) {
			if (in.len > 1000000 && chunks[c] != 0)
				continue; /* keep the test fast */
			char *log = run_feed(&set, in.data, in.len, chunks[c], 1000);
			if (strcmp(log, want_b.data) != 0)
				fprintf(stderr, "nul case %zu chunk %zu:\n got:  %s\n want: %s\n", i, chunks[c], log,
					want_b.data);
			int ok = strcmp(log, want_b.data) == 0;
			free(log);
			if (!ok) {
				buf_free(&in);
				buf_free(&want_b);
				test_assert(!"nul case mismatch");
			}
		}
		buf_free(&in);
		buf_free(&want_b);
	}
}

static void parse_limits(void)
{
	struct imap_parser_settings set = test_settings();
	set.max_line = 100;
	set.max_depth = 4;
	set.max_args = 10;
	struct buf in = BUF_INIT;
	/* line too long: reported once, the rest of the line skipped */
	buf_append_str(&in, "t1 X ");
	for (int i = 0; i < 200; i++)
		buf_append_char(&in, 'a');
	buf_append_str(&in, "\r\nz1 NOOP\r\n");
	char *log = run_feed(&set, in.data, in.len, 1, 1000);
	test_assert_str(log, "ERR t1 Command line too long\nDONE z1 NOOP\n");
	free(log);
	log = run_feed(&set, in.data, in.len, 0, 1000);
	test_assert_str(log, "ERR t1 Command line too long\nDONE z1 NOOP\n");
	free(log);
	/* nesting bomb */
	log = run_feed(&set, "t2 X ((((((((a))))))))\r\nz1 NOOP\r\n", 33, 1, 1000);
	test_assert_str(log, "ERR t2 Lists nested too deeply\nDONE z1 NOOP\n");
	free(log);
	log = run_feed(&set, "t3 X (((a)))\r\n", 14, 1, 1000);
	test_assert_str(log, "DONE t3 X [(((a)))]\n");
	free(log);
	log = run_feed(&set, "t4 X 1 2 3 4 5 6 7 8 9 10 11\r\n", 30, 0, 1000);
	test_assert_str(log, "ERR t4 Too many arguments\n");
	free(log);
	/* a nesting bomb with the default limits: 100000 '(' is far over the line limit of 100 */
	struct imap_parser_settings def = test_settings();
	buf_reset(&in);
	buf_append_str(&in, "t5 X ");
	for (int i = 0; i < 30000; i++)
		buf_append_char(&in, '(');
	for (int i = 0; i < 30000; i++)
		buf_append_char(&in, ')');
	buf_append_str(&in, "\r\n");
	log = run_feed(&def, in.data, in.len, 0, 1000);
	test_assert_str(log, "ERR t5 Lists nested too deeply\n");
	free(log);
	/* LITERAL- without LITERAL+: {n+} up to 4096 only */
	struct imap_parser_settings minus = test_settings();
	minus.literal_plus = false;
	minus.literal_minus = true;
	log = run_feed(&minus, "t6 X {4096+}\r\n", 14, 0, 100000);
	test_assert_str(log, "LIT t6 4096 nonsync\n");
	free(log);
	log = run_feed(&minus, "t7 X {4097+}\r\n", 14, 0, 100000);
	test_assert_str(log, "ERR t7 Non-synchronizing literal larger than 4096 bytes (LITERAL-)\n");
	free(log);
	struct imap_parser_settings none = test_settings();
	none.literal_plus = false;
	log = run_feed(&none, "t8 X {1+}\r\nx\r\nz1 NOOP\r\n", 23, 1, 100000);
	test_assert_str(log, "ERR t8 Non-synchronizing literals are not supported\nDONE z1 NOOP\n");
	free(log);
	struct imap_parser_settings nobin = test_settings();
	nobin.binary = false;
	log = run_feed(&nobin, "d8 X ~{3}\r\nz1 NOOP\r\n", 20, 1, 100000);
	test_assert_str(log, "ERR d8 Binary literals are not supported\nDONE z1 NOOP\n");
	free(log);
	buf_free(&in);
}

static void parse_whole_and_helpers(void)
{
	struct imap_parser *p = imap_parser_create(NULL);
	const struct imap_command *cmd;
	size_t used;
	struct buf err = BUF_INIT;
	const char *in = "a CREATE InBoX/x\r\nb NOOP\r\n";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == 0);
	test_assert(used == 18);
	test_assert_str(cmd->name, "CREATE");
	const char *name;
	size_t len;
	test_assert(imap_arg_get_mailbox(&cmd->args[0], &name, &len) && strcmp(name, "InBoX/x") == 0);
	in = "a SELECT iNbOx\r\n";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == 0);
	test_assert(imap_arg_get_mailbox(&cmd->args[0], &name, &len) && strcmp(name, "INBOX") == 0);
	in = "a SELECT NIL\r\n";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == 0);
	test_assert(imap_arg_get_mailbox(&cmd->args[0], &name, &len) && strcmp(name, "NIL") == 0);
	test_assert(!imap_arg_get_string(&cmd->args[0], &name, &len));
	test_assert(imap_arg_get_nstring(&cmd->args[0], &name, &len) && name == NULL);
	in = "a X 4294967295 4294967296 007\r\n";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == 0);
	uint64_t v;
	test_assert(imap_arg_get_number(&cmd->args[0], UINT32_MAX, &v) && v == 4294967295u);
	test_assert(!imap_arg_get_number(&cmd->args[1], UINT32_MAX, &v));
	test_assert(imap_arg_get_number(&cmd->args[2], UINT32_MAX, &v) && v == 7);
	in = "a X (b\r\n";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == IX_EINVAL);
	test_assert_str(buf_cstr(&err), "Missing ')'");
	test_assert_str(imap_parser_tag(p), "a");
	buf_reset(&err);
	in = "a X (b";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == IX_EINVAL);
	test_assert_str(buf_cstr(&err), "Incomplete command");
	buf_free(&err);
	imap_parser_destroy(&p);
	test_assert(p == NULL);
}

static void seqset_parse_and_resolve(void)
{
	struct imap_seqset set;
	struct buf err = BUF_INIT;
	test_assert(imap_seqset_parse("1,3:5,7:*", 9, false, &set, &err) == 0);
	test_assert(set.count == 3);
	test_assert(set.ranges[1].lo == 3 && set.ranges[1].hi == 5);
	test_assert(set.ranges[2].lo == 7 && set.ranges[2].hi == IMAP_SEQ_STAR);
	test_assert(imap_seqset_contains(&set, 1, 10));
	test_assert(!imap_seqset_contains(&set, 2, 10));
	test_assert(imap_seqset_contains(&set, 10, 10));
	test_assert(!imap_seqset_contains(&set, 11, 10));
	test_assert(imap_seqset_contains(&set, 6, 6)); /* 7:* with * = 6 is 6:7 */
	struct imap_seq_range *r;
	size_t n = imap_seqset_resolve(&set, 8, true, &r);
	test_assert(n == 3 && r[2].lo == 7 && r[2].hi == 8);
	free(r);
	imap_seqset_free(&set);
	test_assert(imap_seqset_parse("5:3,4,1:2,4294967295", 20, false, &set, &err) == 0);
	n = imap_seqset_resolve(&set, 0, false, &r);
	test_assert(n == 2 && r[0].lo == 1 && r[0].hi == 5 && r[1].lo == 4294967295u);
	free(r);
	imap_seqset_free(&set);
	test_assert(imap_seqset_parse("$", 1, true, &set, &err) == 0 && set.saved);
	static const char *const bad[] = { "", "0", "1:0", "01", "4294967296", "1,,2", "1:", ":1", "1:2:3", "a",
					   "$", "1,$", "*:", "99999999999999999999" };
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		buf_reset(&err);
		test_assert(imap_seqset_parse(bad[i], strlen(bad[i]), false, &set, &err) == IX_EINVAL);
		test_assert(err.len > 0 && set.ranges == NULL);
	}
	buf_free(&err);
}

static void flags_and_dates(void)
{
	struct imap_parser *p = imap_parser_create(NULL);
	const struct imap_command *cmd;
	size_t used;
	struct buf err = BUF_INIT;
	const char *in = "a STORE 1 FLAGS (\\Seen \\dElEtEd $Junk $junk Work) \\Recent \\Foo (a\"b\") "
			 "1-Feb-1994 \"17-Jul-1996 02:44:25 -0700\" \" 1-Jan-2000 00:00:00 +0000\" 30-Feb-2000 "
			 "\"17-Jul-1996 24:44:25 -0700\"\r\n";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == IX_EINVAL);
	/* (a"b") is not valid syntax: an atom cannot contain a quote */
	test_assert_str(buf_cstr(&err), "Invalid character in atom");
	buf_reset(&err);
	in = "a STORE 1 FLAGS (\\Seen \\dElEtEd $Junk $junk Work) \\Recent \\Foo (a \"b\") "
	     "1-Feb-1994 \"17-Jul-1996 02:44:25 -0700\" \" 1-Jan-2000 00:00:00 +0000\" 30-Feb-2000 "
	     "\"17-Jul-1996 24:44:25 -0700\"\r\n";
	test_assert(imap_parse_whole(p, in, strlen(in), &cmd, &used, &err) == 0);
	struct imap_flags f;
	test_assert(imap_flags_parse(&cmd->args[2], &f, &err) == 0);
	test_assert(f.system == (IMAP_FLAG_SEEN | IMAP_FLAG_DELETED));
	test_assert(f.keyword_count == 2 && strcmp(f.keywords[0], "$Junk") == 0 && strcmp(f.keywords[1], "Work") == 0);
	imap_flags_free(&f);
	test_assert(imap_flags_parse(&cmd->args[3], &f, &err) == IX_EINVAL);
	test_assert_str(buf_cstr(&err), "\\Recent cannot be changed");
	buf_reset(&err);
	test_assert(imap_flags_parse(&cmd->args[4], &f, &err) == IX_EINVAL);
	buf_reset(&err);
	test_assert(imap_flags_parse(&cmd->args[5], &f, &err) == IX_EINVAL);
	test_assert_str(buf_cstr(&err), "Flags must be atoms");
	int64_t days, t;
	int tz;
	test_assert(imap_date_parse(&cmd->args[6], &days) == 0 && days == 8797);
	test_assert(imap_datetime_parse(&cmd->args[7], &t, &tz) == 0 && t == 837596665 && tz == -420);
	test_assert(imap_datetime_parse(&cmd->args[8], &t, &tz) == 0 && t == 946684800 && tz == 0);
	test_assert(imap_date_parse(&cmd->args[9], &days) == IX_EINVAL);
	test_assert(imap_datetime_parse(&cmd->args[10], &t, &tz) == IX_EINVAL);
	test_assert(imap_datetime_parse(&cmd->args[6], &t, &tz) == IX_EINVAL);
	test_assert(imap_days_from_civil(2000, 2, 29) == 11016);
	buf_free(&err);
	imap_parser_destroy(&p);
}

TEST_MAIN("imap_parse", TEST_CASE(parse_table_chunked), TEST_CASE(parse_nul_and_skip_chunked),
	  TEST_CASE(parse_limits), TEST_CASE(parse_whole_and_helpers), TEST_CASE(seqset_parse_and_resolve),
	  TEST_CASE(flags_and_dates))
