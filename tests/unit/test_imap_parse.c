/* test_imap_parse.c - unit tests for the IMAP command parser, SEARCH and FETCH parsers and response helpers.
 * Table-driven; every table input is also fed byte-at-a-time and in odd chunk sizes and must give the same log. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/err.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_metadata.h"
#include "transport/imap/imap_notify.h"
#include "transport/imap/imap_objectid.h"
#include "common/utf8.h"
#include "transport/imap/imap_parse.h"
#include "transport/imap/imap_search.h"
#include "transport/imap/imap_url.h"
#include "common/util.h"

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
		case IMAP_ARG_ATOM: buf_printf(out, "%s", a->str); break;
		case IMAP_ARG_NIL: buf_append_str(out, "<NIL>"); break;
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
			case IMAP_PARSE_NEED_MORE: break;
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
	{ "a9 APPEND INBOX {3+}\r\nabc {0}\r\n\r\n",
	  "LIT a9 3 nonsync\nLIT a9 0 sync\nDONE a9 APPEND [INBOX {3}abc {0}]\n" },
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
	{ "d6 X {20000000+}\r\n", "ERR d6 Literal too large\n" },
	{ "d7 X {3}\r\na\0c\r\nz1 NOOP\r\n", "LIT d7 3 sync\nERR d7 NUL byte in literal (use ~{n})\nDONE z1 NOOP\n" },
	{ "d9 X (a)(b)\r\nz1 NOOP\r\n", "ERR d9 Missing space between arguments\nDONE z1 NOOP\n" },
	{ "e1 X FLAGS(\\Seen)\r\nz1 NOOP\r\n", "ERR e1 Invalid character in atom\nDONE z1 NOOP\n" },
	{ "e2 X a\\b\r\nz1 NOOP\r\n", "ERR e2 Invalid character in atom\nDONE z1 NOOP\n" },
	{ "e3 FETCH 1 BODY[HEADER\r\nz1 NOOP\r\n", "ERR e3 Unterminated section '['\nDONE z1 NOOP\n" },
	{ "e4 UID\r\nz1 NOOP\r\n", "ERR e4 Missing command after UID\nDONE z1 NOOP\n" },
	{ "e5 X {3}\r\nabcdef\r\nz1 NOOP\r\n",
	  "LIT e5 3 sync\nERR e5 Missing space between arguments\nDONE z1 NOOP\n" },
	/* a command that is already bad at a literal announcement is refused before the literal */
	{ "x1 LOGIN a) {5}\r\nz1 NOOP\r\n", "ERR x1 Unexpected ')'\nDONE z1 NOOP\n" },
	{ "x2 LOGIN a) {5+}\r\nhello\r\nz1 NOOP\r\n", "ERR x2 Unexpected ')'\nDONE z1 NOOP\n" },
	{ "x3 APPEND caf\xc3\xa9 {5}\r\nz1 NOOP\r\n", "ERR x3 8-bit character in atom\nDONE z1 NOOP\n" },
	{ "x4 X ({1}\r\na {0}\r\n (b {2}\r\ncd))\r\n",
	  "LIT x4 1 sync\nLIT x4 0 sync\nLIT x4 2 sync\nDONE x4 X [({1}a {0} (b {2}cd))]\n" },
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

/* an initializer, not a block: clang-format would brace it as one */
/* clang-format off */
#define CASE_N(s, l) { s, sizeof(s) - 1, l }
/* clang-format on */
static const struct parse_case_n nul_cases[] = {
	CASE_N("b5 APPEND x ~{3+}\r\na\0b\r\n", "LIT b5 3 nonsync binary\nDONE b5 APPEND [x ~{3}a\\x00b]\n"),
	CASE_N("d2 X a\0b\r\nz1 NOOP\r\n", "ERR d2 NUL byte in command\nDONE z1 NOOP\n"),
	CASE_N("d7 X {3}\r\na\0c\r\nz1 NOOP\r\n",
	       "LIT d7 3 sync\nERR d7 NUL byte in literal (use ~{n})\nDONE z1 NOOP\n"),
	CASE_N("d6 X {20000000+}\r\n", "ERR d6 Literal too large\n"),
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
			size_t skip = strncmp(nul_cases[i].input, "d6", 2) == 0 ? 20000000 : 1500;
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
	static const char *const bad[] = { "",   "0",     "1:0", "01", "4294967296", "1,,2", "1:",
					   ":1", "1:2:3", "a",   "$",  "1,$",        "*:",   "99999999999999999999" };
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

/* ---- FETCH ---- */

static const struct imap_command *parse_line(struct imap_parser *p, const char *line)
{
	const struct imap_command *cmd;
	size_t used;
	struct buf err = BUF_INIT;
	int ret = imap_parse_whole(p, line, strlen(line), &cmd, &used, &err);
	if (ret != 0)
		fprintf(stderr, "parse_line: %s: %s\n", line, buf_cstr(&err));
	buf_free(&err);
	return ret == 0 ? cmd : NULL;
}

static void fetch_items_and_sections(void)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct imap_fetch_request req;
	struct buf err = BUF_INIT, name = BUF_INIT;
	const struct imap_command *cmd = parse_line(p, "a FETCH 1 ALL\r\n");
	test_assert(cmd != NULL);
	test_assert(imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &req, &err) == 0);
	test_assert(req.items ==
		    (IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_ENVELOPE));
	imap_fetch_request_free(&req);
	cmd = parse_line(p, "a UID FETCH 1:* (FLAGS body.peek[header.fields (From To)]<0.100> BODY[1.2.MIME] "
			    "BINARY.SIZE[1] BINARY.PEEK[1.2]<5.10> BODY[] RFC822.SIZE UID MODSEQ BODY[2.TEXT] "
			    "BODY[HEADER.FIELDS.NOT (Received \"X-Spam\")]) (CHANGEDSINCE 12345 VANISHED)\r\n");
	test_assert(cmd != NULL && cmd->uid);
	test_assert(imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &req, &err) == 0);
	test_assert(req.items == (IMAP_FETCH_FLAGS | IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_UID | IMAP_FETCH_MODSEQ));
	test_assert(req.changedsince && req.changedsince_modseq == 12345 && req.vanished);
	test_assert(req.body_count == 7);
	static const char *const names[] = { "BODY[HEADER.FIELDS (From To)]<0>",
					     "BODY[1.2.MIME]",
					     "BINARY.SIZE[1]",
					     "BINARY[1.2]<5>",
					     "BODY[]",
					     "BODY[2.TEXT]",
					     "BODY[HEADER.FIELDS.NOT (Received X-Spam)]" };
	for (size_t i = 0; i < req.body_count; i++) {
		buf_reset(&name);
		imap_fetch_body_name(&req.bodies[i], &name);
		test_assert_str(buf_cstr(&name), names[i]);
	}
	const struct imap_fetch_body *b = &req.bodies[0];
	test_assert(b->peek && b->kind == IMAP_FETCH_KIND_BODY && b->text == IMAP_SECTION_HEADER_FIELDS);
	test_assert(b->field_count == 2 && strcmp(b->fields[1], "To") == 0);
	test_assert(b->partial && b->offset == 0 && b->length == 100);
	b = &req.bodies[1];
	test_assert(!b->peek && b->part_count == 2 && b->parts[1] == 2 && b->text == IMAP_SECTION_MIME);
	test_assert(req.bodies[2].kind == IMAP_FETCH_KIND_BINARY_SIZE && req.bodies[2].peek);
	test_assert(req.bodies[3].partial && req.bodies[3].offset == 5 && req.bodies[3].length == 10);
	test_assert(req.bodies[4].text == IMAP_SECTION_WHOLE && req.bodies[4].part_count == 0);
	imap_fetch_request_free(&req);

	static const struct {
		const char *line, *msg;
	} bad[] = {
		{ "a FETCH 1 BODY[MIME]\r\n", "MIME needs a section part" },
		{ "a FETCH 1 BODY[1.]\r\n", "Invalid section" },
		{ "a FETCH 1 BODY[0]\r\n", "Invalid section part number" },
		{ "a FETCH 1 BODY[01]\r\n", "Invalid section part number" },
		{ "a FETCH 1 BODY[1HEADER]\r\n", "Invalid section" },
		{ "a FETCH 1 BODY[4294967296]\r\n", "Invalid section part number" },
		{ "a FETCH 1 BODY[HEADER.FIELDS]\r\n", "Missing header field list" },
		{ "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", "Invalid header field name" },
		{ "a FETCH 1 BODY[HEADER.FIELDS (a:b)]\r\n", "Invalid header field name" },
		{ "a FETCH 1 BODY[HEADER.FIELDS (a) x]\r\n", "Invalid section" },
		{ "a FETCH 1 BODY[HEADERS]\r\n", "Invalid section" },
		{ "a FETCH 1 BODY[]<0.0>\r\n", "Invalid partial range in FETCH item" },
		{ "a FETCH 1 BODY[]<1>\r\n", "Invalid partial range in FETCH item" },
		{ "a FETCH 1 BODY[]<4294967296.1>\r\n", "Invalid partial range in FETCH item" },
		{ "a FETCH 1 BODY[]x\r\n", "Invalid partial range in FETCH item" },
		{ "a FETCH 1 BINARY[HEADER]\r\n", "BINARY sections take part numbers only" },
		{ "a FETCH 1 BINARY.SIZE[1]<0.1>\r\n", "BINARY.SIZE takes no partial range" },
		{ "a FETCH 1 FOO\r\n", "Invalid FETCH item" },
		{ "a FETCH 1 BODYX[]\r\n", "Invalid FETCH item" },
		{ "a FETCH 1 ()\r\n", "Empty FETCH item list" },
		{ "a FETCH 1 (ALL)\r\n", "Invalid FETCH item" },
		{ "a FETCH 1 (FLAGS \"UID\")\r\n", "Invalid FETCH item" },
		{ "a FETCH 1\r\n", "Missing FETCH items" },
		{ "a FETCH 1 FLAGS (VANISHED)\r\n", "VANISHED needs CHANGEDSINCE" },
		{ "a FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n", "Invalid CHANGEDSINCE value" },
		{ "a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)\r\n", "Invalid CHANGEDSINCE value" },
		{ "a FETCH 1 FLAGS (FOO)\r\n", "Invalid FETCH modifier" },
		{ "a FETCH 1 FLAGS (CHANGEDSINCE 1) x\r\n", "Too many FETCH arguments" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		cmd = parse_line(p, bad[i].line);
		test_assert(cmd != NULL);
		buf_reset(&err);
		test_assert(imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &req, &err) != 0);
		if (strcmp(buf_cstr(&err), bad[i].msg) != 0)
			fprintf(stderr, "%s: got %s\n", bad[i].line, buf_cstr(&err));
		test_assert_str(buf_cstr(&err), bad[i].msg);
		test_assert(req.bodies == NULL);
	}
	buf_free(&err);
	buf_free(&name);
	imap_parser_destroy(&p);
}

static void write_helpers(void)
{
	struct buf out = BUF_INIT;
	imap_write_string(&out, "abc", 3, 0);
	test_assert_str(buf_cstr(&out), "\"abc\"");
	buf_reset(&out);
	imap_write_string(&out, "a\"b\\", 4, 0);
	test_assert_str(buf_cstr(&out), "\"a\\\"b\\\\\"");
	buf_reset(&out);
	imap_write_string(&out, "a\r\nb", 4, 0);
	test_assert_str(buf_cstr(&out), "{4}\r\na\r\nb");
	buf_reset(&out);
	imap_write_string(&out, "\xc3\xa9", 2, 0);
	test_assert_str(buf_cstr(&out), "{2}\r\n\xc3\xa9");
	buf_reset(&out);
	imap_write_string(&out, "\xc3\xa9", 2, IMAP_WRITE_UTF8);
	test_assert_str(buf_cstr(&out), "\"\xc3\xa9\"");
	buf_reset(&out);
	imap_write_string(&out, "\xc3", 1, IMAP_WRITE_UTF8);
	test_assert_str(buf_cstr(&out), "{1}\r\n\xc3");
	buf_reset(&out);
	imap_write_string(&out, "a\0b", 3, 0);
	test_assert(out.len == 8 && memcmp(out.data,
					   "{3}\r\na\x80"
					   "b",
					   8) == 0);
	buf_reset(&out);
	imap_write_string(&out, "a\0b", 3, IMAP_WRITE_BINARY);
	test_assert(out.len == 9 && memcmp(out.data, "~{3}\r\na\0b", 9) == 0);
	buf_reset(&out);
	char big[IMAP_QUOTED_MAX + 1];
	memset(big, 'x', sizeof(big));
	imap_write_string(&out, big, sizeof(big), 0);
	test_assert(strncmp(buf_cstr(&out), "{1025}\r\nxxx", 11) == 0 && out.len == 8 + sizeof(big));
	buf_reset(&out);
	imap_write_nstring(&out, NULL, 0, 0);
	buf_append_char(&out, ' ');
	imap_write_nstring(&out, "", 0, 0);
	test_assert_str(buf_cstr(&out), "NIL \"\"");
	buf_reset(&out);
	static const char *const as[] = { "INBOX", "NIL", "nil", "", "a b", "[Gmail]/Sent", "50%", "a\"b" };
	for (size_t i = 0; i < IX_ARRAY_LEN(as); i++) {
		imap_write_astring(&out, as[i], strlen(as[i]), 0);
		buf_append_char(&out, '|');
	}
	test_assert_str(buf_cstr(&out), "INBOX|\"NIL\"|\"nil\"|\"\"|\"a b\"|[Gmail]/Sent|\"50%\"|\"a\\\"b\"|");
	buf_reset(&out);
	const char *kw[] = { "$Junk", "Work" };
	imap_write_flags(&out, IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED | IMAP_FLAG_RECENT, kw, 2);
	test_assert_str(buf_cstr(&out), "(\\Answered \\Seen \\Recent $Junk Work)");
	buf_reset(&out);
	imap_write_flags(&out, 0, NULL, 0);
	test_assert_str(buf_cstr(&out), "()");
	static const struct {
		uint32_t v[8];
		size_t n;
		const char *want;
	} sets[] = {
		{ { 1, 2, 3, 5, 7, 8, 9 }, 7, "1:3,5,7:9" },
		{ { 1, 1, 2, 2 }, 4, "1:2" },
		{ { 42 }, 1, "42" },
		{ { 4294967294u, 4294967295u }, 2, "4294967294:4294967295" },
		{ { 4294967295u, 1 }, 2, "4294967295,1" },
		{ { 5, 3 }, 2, "5,3" },
		{ { 0 }, 0, "" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(sets); i++) {
		buf_reset(&out);
		imap_write_seqset(&out, sets[i].v, sets[i].n);
		test_assert_str(buf_cstr(&out), sets[i].want);
	}
	buf_free(&out);
}

/* ---- SEARCH ---- */

static const struct {
	const char *line, *dump;
} search_cases[] = {
	{ "a SEARCH ALL\r\n", "(AND (ALL))" },
	{ "a SEARCH UNSEEN UNDELETED\r\n", "(AND (FLAGS +0 -8) (FLAGS +0 -4))" },
	{ "a SEARCH NEW OLD RECENT\r\n", "(AND (FLAGS +32 -8) (FLAGS +0 -32) (FLAGS +32 -0))" },
	{ "a SEARCH FROM alice SUBJECT \"hello world\"\r\n",
	  "(AND (HEADER FROM \"alice\") (HEADER SUBJECT \"hello world\"))" },
	{ "a SEARCH OR (FROM a SINCE 1-Jan-2024) NOT TO {3}\r\nbob\r\n",
	  "(AND (OR (AND (HEADER FROM \"a\") (SINCE 19723)) (NOT (HEADER TO \"bob\"))))" },
	{ "a UID SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 UID 1:* 5,7:9\r\n", "(AND (UID 1:0) (SEQSET 5:5,7:9))" },
	{ "a SEARCH HEADER X-Spam \"\" BODY x TEXT y KEYWORD $Junk UNKEYWORD Work\r\n",
	  "(AND (HEADER X-Spam \"\") (BODY \"x\") (TEXT \"y\") (KEYWORD $Junk) (UNKEYWORD Work))" },
	{ "a SEARCH LARGER 1000 SMALLER 9999999999 BEFORE \"2-Feb-2000\" ON 1-Jan-1970 SENTBEFORE 1-Jan-1970 "
	  "SENTON 1-Jan-1970 SENTSINCE 1-Jan-1970\r\n",
	  "(AND (LARGER 1000) (SMALLER 9999999999) (BEFORE 10989) (ON 0) (SENTBEFORE 0) (SENTON 0) (SENTSINCE 0))" },
	{ "a SEARCH MODSEQ 620162338 MODSEQ \"/flags/\\\\draft\" all 7\r\n", "(AND (MODSEQ 620162338) (MODSEQ 7))" },
	{ "a SEARCH $ UID $ ANSWERED DELETED DRAFT FLAGGED SEEN UNANSWERED UNDRAFT UNFLAGGED\r\n",
	  "(AND (SEQSET $) (UID $) (FLAGS +1 -0) (FLAGS +4 -0) (FLAGS +16 -0) (FLAGS +2 -0) (FLAGS +8 -0) "
	  "(FLAGS +0 -1) (FLAGS +0 -16) (FLAGS +0 -2))" },
	{ "a SEARCH CC c BCC d SUBJECT \"\xc3\xa9t\xc3\xa9\"\r\n",
	  "(AND (HEADER CC \"c\") (HEADER BCC \"d\") (HEADER SUBJECT \"\xc3\xa9t\xc3\xa9\"))" },
	{ "a SEARCH OLDER 3600 YOUNGER 86400\r\n", "(AND (OLDER 3600) (YOUNGER 86400))" },
	{ "a SEARCH OR seen (NOT old)\r\n", "(AND (OR (FLAGS +8 -0) (AND (NOT (FLAGS +0 -32)))))" },
	{ "a SEARCH SAVEDBEFORE 2-Jan-1970 SAVEDON 1-Jan-1970 SAVEDSINCE 3-Jan-1970 SAVEDATESUPPORTED\r\n",
	  "(AND (SAVEDBEFORE 1) (SAVEDON 0) (SAVEDSINCE 2) (SAVEDATESUPPORTED))" },
};

static void search_parse_table(void)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct buf err = BUF_INIT, dump = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(search_cases); i++) {
		const struct imap_command *cmd = parse_line(p, search_cases[i].line);
		test_assert(cmd != NULL);
		struct imap_search_query *q;
		bool badcs;
		buf_reset(&err);
		int ret = imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err);
		if (ret != 0)
			fprintf(stderr, "%s: %s\n", search_cases[i].line, buf_cstr(&err));
		test_assert(ret == 0);
		buf_reset(&dump);
		imap_search_key_dump(&q->root, &dump);
		if (strcmp(buf_cstr(&dump), search_cases[i].dump) != 0)
			fprintf(stderr, "%s: got %s\n", search_cases[i].line, buf_cstr(&dump));
		int ok = strcmp(buf_cstr(&dump), search_cases[i].dump) == 0;
		if (i == 5)
			ok &= q->esearch && q->return_opts == (IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX |
							       IMAP_SEARCH_RETURN_COUNT);
		if (i == 8)
			ok &= q->uses_modseq;
		if (i == 9)
			ok &= q->uses_saved && !q->esearch;
		/* RECENT, NEW and OLD (case 2, under OR in case 12) are noted for IMAP4rev2; no other case has them */
		ok &= q->uses_recent == (i == 2 || i == 12);
		imap_search_query_destroy(&q);
		test_assert(ok && q == NULL);
	}
	buf_free(&err);
	buf_free(&dump);
	imap_parser_destroy(&p);
}

static void search_parse_errors(void)
{
	static const struct {
		const char *line, *msg;
		bool badcharset;
	} bad[] = {
		{ "a SEARCH\r\n", "Missing search key", false },
		{ "a SEARCH CHARSET ISO-8859-1 ALL\r\n", "Unsupported charset", true },
		{ "a SEARCH CHARSET\r\n", "CHARSET needs a name", false },
		{ "a SEARCH FOO\r\n", "Unknown search key", false },
		{ "a SEARCH FROM\r\n", "Missing search string", false },
		{ "a SEARCH SINCE 31-Feb-2024\r\n", "Invalid search date", false },
		{ "a SEARCH SINCE\r\n", "Invalid search date", false },
		{ "a SEARCH HEADER X\r\n", "HEADER needs a field name and a string", false },
		{ "a SEARCH HEADER \"a:b\" x\r\n", "Invalid header field name", false },
		{ "a SEARCH LARGER -1\r\n", "Invalid size", false },
		{ "a SEARCH OLDER 0\r\n", "Invalid interval", false },
		{ "a SEARCH YOUNGER\r\n", "Invalid interval", false },
		{ "a SEARCH LARGER 99999999999999999999\r\n", "Invalid size", false },
		{ "a SEARCH UID 0\r\n", "Invalid sequence set", false },
		{ "a SEARCH 1:4294967296\r\n", "Invalid sequence set", false },
		{ "a SEARCH OR ALL\r\n", "Missing search key", false },
		{ "a SEARCH NOT\r\n", "Missing search key", false },
		{ "a SEARCH ()\r\n", "Empty search key list", false },
		{ "a SEARCH KEYWORD \\Seen\r\n", "Invalid keyword", false },
		{ "a SEARCH RETURN (FOO) ALL\r\n", "Unknown RETURN option", false },
		{ "a SEARCH RETURN ALL\r\n", "RETURN needs a list", false },
		{ "a SEARCH MODSEQ \"/flags/\\\\seen\" bogus 5\r\n", "Invalid MODSEQ entry", false },
		{ "a SEARCH MODSEQ \"x\" all 5\r\n", "Invalid MODSEQ entry name", false },
		{ "a SEARCH SUBJECT \"\xff\"\r\n", "Search string is not valid UTF-8", false },
		{ "a SEARCH \"ALL\"\r\n", "Invalid search key", false },
	};
	struct imap_parser *p = imap_parser_create(NULL);
	struct buf err = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		const struct imap_command *cmd = parse_line(p, bad[i].line);
		test_assert(cmd != NULL);
		struct imap_search_query *q;
		bool badcs;
		buf_reset(&err);
		test_assert(imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err) != 0);
		if (strcmp(buf_cstr(&err), bad[i].msg) != 0)
			fprintf(stderr, "%s: got %s\n", bad[i].line, buf_cstr(&err));
		test_assert_str(buf_cstr(&err), bad[i].msg);
		test_assert(q == NULL && badcs == bad[i].badcharset);
	}
	/* depth bombs: NOT NOT NOT ..., OR chains and nested lists all stop at IMAP_SEARCH_MAX_DEPTH */
	struct buf line = BUF_INIT;
	buf_append_str(&line, "a SEARCH");
	for (int i = 0; i < 100; i++)
		buf_append_str(&line, " NOT");
	buf_append_str(&line, " ALL\r\n");
	const struct imap_command *cmd = parse_line(p, buf_cstr(&line));
	struct imap_search_query *q;
	bool badcs;
	buf_reset(&err);
	test_assert(imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err) == IX_ELIMIT);
	test_assert_str(buf_cstr(&err), "Search keys nested too deeply");
	buf_reset(&line);
	buf_append_str(&line, "a SEARCH");
	for (int i = 0; i < 2000; i++)
		buf_append_str(&line, " ALL");
	buf_append_str(&line, "\r\n");
	cmd = parse_line(p, buf_cstr(&line));
	buf_reset(&err);
	test_assert(imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err) == IX_ELIMIT);
	test_assert_str(buf_cstr(&err), "Too many search keys");
	buf_free(&line);
	buf_free(&err);
	imap_parser_destroy(&p);
}

struct fake_msg {
	const char *from, *subject, *body;
};

static bool fake_header(void *ctx, const char *name, struct buf *value_r)
{
	const struct fake_msg *m = ctx;
	const char *v = strcasecmp(name, "From") == 0 ? m->from : strcasecmp(name, "Subject") == 0 ? m->subject : NULL;
	if (v == NULL)
		return false;
	buf_append_str(value_r, v);
	return true;
}

static void fake_body(void *ctx, bool with_headers, struct buf *text_r)
{
	const struct fake_msg *m = ctx;
	if (with_headers)
		buf_printf(text_r, "From: %s\nSubject: %s\n\n", m->from, m->subject);
	buf_append_str(text_r, m->body);
}

static void search_evaluate(void)
{
	struct fake_msg fm = { "Alice Example <alice@example.com>", "R\xc3\xa9sum\xc3\xa9 for the JOB",
			       "Hello, World" };
	const char *kw[] = { "$Junk" };
	uint32_t saved[] = { 3, 10, 42 };
	struct imap_search_msg m;
	memset(&m, 0, sizeof(m));
	m.seq = 4;
	m.uid = 42;
	m.seq_max = 10;
	m.uid_max = 50;
	m.flags = IMAP_FLAG_SEEN | IMAP_FLAG_RECENT;
	m.keywords = kw;
	m.keyword_count = 1;
	m.size = 2048;
	m.internal_date = 1704067200 + 3600; /* 2024-01-01 01:00 UTC */
	m.internal_tz = -120;                /* counted in UTC-2: still 2023-12-31 */
	m.now = m.internal_date + 100;       /* the message is 100 seconds old */
	m.has_sent_date = true;
	m.sent_date = 1704067200 - 60; /* 2023-12-31 23:59 UTC ... */
	m.sent_tz = 60;                /* ... written as 2024-01-01 00:59 +0100 */
	m.modseq = 100;
	m.saved_uids = saved;
	m.saved_count = 3;
	m.ctx = &fm;
	m.header = fake_header;
	m.body = fake_body;
	/* saved: the message has a save date (2024-03-05 00:30 UTC, 2024-03-04 in UTC-2), else it has none */
	static const struct {
		const char *line;
		bool match, saved;
	} cases[] = {
		{ "a SEARCH ALL\r\n", true, false },
		{ "a SEARCH FROM ALICE\r\n", true, false },
		{ "a SEARCH FROM bob\r\n", false, false },
		{ "a SEARCH SUBJECT job\r\n", true, false },
		{ "a SEARCH SUBJECT \"r\xc3\xa9sum\xc3\xa9\"\r\n", true, false },
		{ "a SEARCH SUBJECT \"R\xc3\x89SUM\xc3\x89\"\r\n", true, false }, /* i;unicode-casemap (I18NLEVEL=1) */
		{ "a SEARCH SUBJECT \"RESUME\"\r\n", false, false }, /* É is E and a combining accent, not E */
		{ "a SEARCH TO x\r\n", false, false },
		{ "a SEARCH HEADER From \"\"\r\n", true, false },
		{ "a SEARCH HEADER To \"\"\r\n", false, false },
		{ "a SEARCH BODY world\r\n", true, false },
		{ "a SEARCH BODY alice\r\n", false, false },
		{ "a SEARCH TEXT alice\r\n", true, false },
		{ "a SEARCH SEEN RECENT NOT DELETED\r\n", true, false },
		{ "a SEARCH NEW\r\n", false, false },
		{ "a SEARCH OLD\r\n", false, false },
		{ "a SEARCH UNSEEN\r\n", false, false },
		{ "a SEARCH KEYWORD $junk UNKEYWORD Work\r\n", true, false },
		{ "a SEARCH KEYWORD Work\r\n", false, false },
		{ "a SEARCH LARGER 2047 SMALLER 2049\r\n", true, false },
		{ "a SEARCH LARGER 2048\r\n", false, false },
		{ "a SEARCH ON 31-Dec-2023 BEFORE 1-Jan-2024 SINCE 31-Dec-2023\r\n", true, false },
		{ "a SEARCH ON 1-Jan-2024\r\n", false, false },
		{ "a SEARCH SENTON 1-Jan-2024 SENTSINCE 1-Jan-2024 SENTBEFORE 2-Jan-2024\r\n", true, false },
		{ "a SEARCH SENTON 31-Dec-2023\r\n", false, false },
		{ "a SEARCH 4 UID 42\r\n", true, false },
		{ "a SEARCH 1:3,5:*\r\n", false, false },
		{ "a SEARCH 10:*\r\n", false, false },
		{ "a SEARCH UID 43:*\r\n", false, false },
		{ "a SEARCH UID *:42\r\n", true, false },
		{ "a SEARCH $ UID $\r\n", true, false },
		{ "a SEARCH MODSEQ 100\r\n", true, false },
		{ "a SEARCH MODSEQ 101\r\n", false, false },
		{ "a SEARCH OR FROM bob (SUBJECT job LARGER 1)\r\n", true, false },
		{ "a SEARCH OR FROM bob NOT SUBJECT job\r\n", false, false },
		{ "a SEARCH NOT NOT ALL\r\n", true, false },
		{ "a SEARCH OLDER 99\r\n", true, false }, /* WITHIN (RFC 5032): the age against the interval */
		{ "a SEARCH OLDER 100\r\n", false, false },
		{ "a SEARCH YOUNGER 100\r\n", true, false },
		{ "a SEARCH YOUNGER 99\r\n", false, false },
		{ "a SEARCH NOT OLDER 100 YOUNGER 3600\r\n", true, false },
		/* SAVEDATE (RFC 8514): no save date here, so the internal date's day (31-Dec-2023 in UTC-2) counts */
		{ "a SEARCH SAVEDON 31-Dec-2023 SAVEDBEFORE 1-Jan-2024 SAVEDSINCE 31-Dec-2023 SAVEDATESUPPORTED\r\n",
		  true, false },
		{ "a SEARCH SAVEDSINCE 1-Jan-2024\r\n", false, false },
		{ "a SEARCH NOT SAVEDATESUPPORTED\r\n", false, false },
		/* with a save date the SAVED keys look at it alone */
		{ "a SEARCH SAVEDON 4-Mar-2024\r\n", true, true },
		{ "a SEARCH SAVEDSINCE 4-Mar-2024 SAVEDBEFORE 5-Mar-2024\r\n", true, true },
		{ "a SEARCH SAVEDON 31-Dec-2023\r\n", false, true },
		{ "a SEARCH SAVEDBEFORE 4-Mar-2024\r\n", false, true },
	};
	struct imap_parser *p = imap_parser_create(NULL);
	struct buf err = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		const struct imap_command *cmd = parse_line(p, cases[i].line);
		test_assert(cmd != NULL);
		struct imap_search_query *q;
		bool badcs;
		test_assert(imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err) == 0);
		m.has_save_date = cases[i].saved;
		m.save_date = 1709598600;
		bool got = imap_search_match(q, &m);
		imap_search_query_destroy(&q);
		if (got != cases[i].match)
			fprintf(stderr, "%s: got %d\n", cases[i].line, got);
		test_assert(got == cases[i].match);
	}
	buf_free(&err);
	imap_parser_destroy(&p);
}

static void sink_to(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

/* A literal accepted with imap_parser_literal_accept_sink goes to the sink, not into the command: its argument is
 * marked sunk with its size and no bytes; a second literal of the command is kept as usual. Whole and
 * byte at a time. */
static void parse_literal_sink(void)
{
	static const char input[] = "a1 APPEND INBOX {11}\r\nhello world ~{3}\r\nx\0y\r\na2 NOOP\r\n";
	for (size_t chunk = 0; chunk <= 1; chunk++) {
		struct buf sunk = BUF_INIT;
		struct imap_parser_settings set = {
			.literal_plus = true, .binary = true, .sink = sink_to, .sink_ctx = &sunk
		};
		struct imap_parser *p = imap_parser_create(&set);
		size_t len = sizeof(input) - 1, off = 0, done = 0;
		while (off < len) {
			size_t used, n = chunk == 0 ? len - off : 1;
			enum imap_parse_result r = imap_parser_feed(p, input + off, n, &used);
			off += used;
			if (r == IMAP_PARSE_LITERAL) {
				imap_parser_literal_accept_sink(p);
			} else if (r == IMAP_PARSE_DONE) {
				const struct imap_command *c = imap_parser_command(p);
				if (done++ == 0) {
					test_assert(strcmp(c->name, "APPEND") == 0 && c->arg_count == 3);
					test_assert(c->args[1].sunk && c->args[1].sunk_len == 11 &&
						    c->args[1].len == 0);
					test_assert(!c->args[2].sunk && c->args[2].literal8 && c->args[2].len == 3 &&
						    memcmp(c->args[2].str, "x\0y", 3) == 0);
				} else {
					test_assert(strcmp(c->name, "NOOP") == 0);
				}
			} else {
				test_assert(r == IMAP_PARSE_NEED_MORE);
			}
		}
		test_assert(done == 2 && sunk.len == 11 && memcmp(sunk.data, "hello world", 11) == 0);
		imap_parser_destroy(&p);
		buf_free(&sunk);
	}
}

/* FETCH EMAILID, THREADID (RFC 8474) and PREVIEW with its LAZY modifier (RFC 8970), in a list and alone; SEARCH
 * EMAILID and THREADID with an objectid */
static void objectid_preview_parse(void)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct imap_fetch_request req;
	struct buf err = BUF_INIT, dump = BUF_INIT;
	static const struct {
		const char *line;
		unsigned items;
		bool lazy;
	} good[] = {
		{ "a FETCH 1 (EMAILID THREADID PREVIEW)\r\n",
		  IMAP_FETCH_EMAILID | IMAP_FETCH_THREADID | IMAP_FETCH_PREVIEW, false },
		{ "a FETCH 1 (UID PREVIEW (LAZY) FLAGS)\r\n", IMAP_FETCH_UID | IMAP_FETCH_PREVIEW | IMAP_FETCH_FLAGS,
		  true },
		{ "a FETCH 1 preview (lazy)\r\n", IMAP_FETCH_PREVIEW, true },
		{ "a FETCH 1 PREVIEW\r\n", IMAP_FETCH_PREVIEW, false },
		{ "a FETCH 1 (SAVEDATE UID)\r\n", IMAP_FETCH_SAVEDATE | IMAP_FETCH_UID, false },
		{ "a FETCH 1 (PREVIEW) (CHANGEDSINCE 5)\r\n", IMAP_FETCH_PREVIEW | IMAP_FETCH_MODSEQ, false },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(good); i++) {
		const struct imap_command *cmd = parse_line(p, good[i].line);
		test_assert(cmd != NULL);
		buf_reset(&err);
		test_assert(imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &req, &err) == 0);
		test_assert(req.items == good[i].items && req.preview_lazy == good[i].lazy);
		imap_fetch_request_free(&req);
	}
	static const struct {
		const char *line, *msg;
	} bad[] = {
		{ "a FETCH 1 (PREVIEW (FUZZY))\r\n", "Invalid PREVIEW modifier" },
		{ "a FETCH 1 (PREVIEW (LAZY LAZY))\r\n", "Invalid PREVIEW modifier" },
		{ "a FETCH 1 FLAGS (LAZY)\r\n", "Invalid FETCH modifier" },
		{ "a FETCH 1 (EMAILID.PEEK)\r\n", "Invalid FETCH item" },
		{ "a SEARCH EMAILID\r\n", "Invalid object identifier" },
		{ "a SEARCH EMAILID M+1\r\n", "Invalid object identifier" },
		{ "a SEARCH THREADID \"T1\"\r\n", "Invalid object identifier" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		const struct imap_command *cmd = parse_line(p, bad[i].line);
		test_assert(cmd != NULL);
		buf_reset(&err);
		struct imap_search_query *q = NULL;
		bool badcs;
		int ret = strcmp(cmd->name, "FETCH") == 0
				  ? imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &req, &err)
				  : imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err);
		test_assert(ret == IX_EINVAL && q == NULL);
		test_assert_str(buf_cstr(&err), bad[i].msg);
	}
	const struct imap_command *cmd = parse_line(p, "a SEARCH EMAILID M0a_b-C NOT THREADID T99\r\n");
	struct imap_search_query *q;
	bool badcs;
	test_assert(cmd != NULL && imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err) == 0);
	imap_search_key_dump(&q->root, &dump);
	test_assert_str(buf_cstr(&dump), "(AND (EMAILID M0a_b-C) (NOT (THREADID T99)))");
	imap_search_query_destroy(&q);
	buf_free(&err);
	buf_free(&dump);
	imap_parser_destroy(&p);
}

/* The identifiers: MAILBOXID from GUID and store id, EMAILID from the body hash, THREADID from the thread's root
 * Message-ID (the same for a root and its replies, the body hash without any Message-ID) */
static void objectid_values(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	imap_mailboxid("0123456789abcdef0123456789abcdef", 0x2a, &a);
	test_assert_str(buf_cstr(&a), "F0123456789abcdef0123456789abcdef-2a");
	uint8_t hash[32];
	for (size_t i = 0; i < 32; i++)
		hash[i] = (uint8_t)(i * 17);
	buf_reset(&a);
	imap_emailid(hash, &a);
	test_assert_str(buf_cstr(&a), "M00112233445566778899aabb");
	buf_reset(&a);
	imap_threadid("<root@x>", NULL, NULL, hash, &a);
	test_assert(a.len == 25 && buf_cstr(&a)[0] == 'T' && imap_objectid_valid(buf_cstr(&a), a.len));
	imap_threadid("<r2@x>", "<r1@x>", "junk <root@x> <r1@x>", hash, &b);
	test_assert_str(buf_cstr(&b), buf_cstr(&a));
	buf_reset(&b);
	imap_threadid("<r1@x>", "<root@x>", NULL, hash, &b);
	test_assert_str(buf_cstr(&b), buf_cstr(&a));
	buf_reset(&b);
	imap_threadid("<other@x>", NULL, "", hash, &b);
	test_assert(strcmp(buf_cstr(&b), buf_cstr(&a)) != 0);
	buf_reset(&a);
	buf_reset(&b);
	imap_threadid(NULL, NULL, NULL, hash, &a);
	imap_threadid("not an id", NULL, NULL, hash, &b);
	test_assert_str(buf_cstr(&b), buf_cstr(&a));
	hash[0] ^= 1;
	buf_reset(&b);
	imap_threadid(NULL, NULL, NULL, hash, &b);
	test_assert(strcmp(buf_cstr(&b), buf_cstr(&a)) != 0);
	char longid[IMAP_OBJECTID_MAX + 2];
	memset(longid, 'a', sizeof(longid));
	test_assert(imap_objectid_valid(longid, IMAP_OBJECTID_MAX) &&
		    !imap_objectid_valid(longid, IMAP_OBJECTID_MAX + 1));
	test_assert(!imap_objectid_valid("", 0) && !imap_objectid_valid("a.b", 3) && imap_objectid_valid("A_z-9", 5));
	buf_free(&a);
	buf_free(&b);
}

/* PREVIEW text byte by byte: quoted lines and the signature left out, white space folded, HTML without tags, head,
 * style and script and with its character references decoded, bytes that are not UTF-8 dropped, 256 characters */
static void preview_text(void)
{
	static const struct {
		const char *in;
		bool html;
		const char *out;
	} cases[] = {
		{ "Hello  there,\r\n\r\n> quoted line\r\n  >> more\r\nsee\tyou\r\n-- \r\nSignature\r\n", false,
		  "Hello there, see you" },
		{ "\r\n  \r\n", false, "" },
		{ "a\x01\x7f"
		  "b\xc2\xa0"
		  "c",
		  false, "a b c" },
		{ "caf\xc3\xa9 \xff\xfe ok \xe2\x82", false, "caf\xc3\xa9 ok" },
		{ "--\r\nnothing after", false, "" },
		{ "<html><head><title>T</title><style>p{x}</style></head><body><p>Hi&nbsp;&amp;&lt;you&gt;"
		  "</p><script type=\"x\">var a=1;</script><br/>&#233;&#x20AC;&bogus; &#0; tail</body></html>",
		  true, "Hi &<you> \xc3\xa9\xe2\x82\xac&bogus; &#0; tail" },
		{ "<p>unclosed <b", true, "unclosed" },
		{ "<STYLE>never closed", true, "" },
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		buf_reset(&out);
		imap_preview(cases[i].in, strlen(cases[i].in), cases[i].html, &out);
		if (strcmp(buf_cstr(&out), cases[i].out) != 0)
			fprintf(stderr, "preview %zu: got \"%s\"\n", i, buf_cstr(&out));
		test_assert_str(buf_cstr(&out), cases[i].out);
	}
	/* 300 two-byte characters: 256 kept, whole */
	struct buf in = BUF_INIT;
	for (int i = 0; i < 300; i++)
		buf_append_str(&in, "\xc3\xa9");
	buf_reset(&out);
	imap_preview(buf_cstr(&in), in.len, false, &out);
	test_assert(out.len == 2 * IMAP_PREVIEW_MAX_CHARS && utf8_valid(out.data, out.len));
	/* 255 characters, then a space and more: the space would be the 256th, so the preview ends before it */
	buf_reset(&in);
	for (int i = 0; i < 255; i++)
		buf_append_char(&in, 'x');
	buf_append_str(&in, " yz");
	buf_reset(&out);
	imap_preview(buf_cstr(&in), in.len, false, &out);
	test_assert(out.len == 255 && buf_cstr(&out)[254] == 'x');
	buf_free(&in);
	buf_free(&out);
}

/* RETURN options of SEARCH and SORT (RFC 4731, 5182, 5267): UPDATE and CONTEXT alone mean ALL too, PARTIAL takes a
 * range in either order, every option at most once, what a command does not allow is refused */
static void search_return_options(void)
{
	static const struct {
		const char *line;
		unsigned allowed;
		int ret;
		unsigned opts;
		uint32_t lo, hi;
	} cases[] = {
		{ "a X ()\r\n", ~0u, 0, IMAP_SEARCH_RETURN_ALL, 0, 0 },
		{ "a X (UPDATE)\r\n", ~0u, 0, IMAP_SEARCH_RETURN_UPDATE | IMAP_SEARCH_RETURN_ALL, 0, 0 },
		{ "a X (context update)\r\n", ~0u, 0,
		  IMAP_SEARCH_RETURN_CONTEXT | IMAP_SEARCH_RETURN_UPDATE | IMAP_SEARCH_RETURN_ALL, 0, 0 },
		{ "a X (COUNT CONTEXT)\r\n", ~0u, 0, IMAP_SEARCH_RETURN_COUNT | IMAP_SEARCH_RETURN_CONTEXT, 0, 0 },
		{ "a X (PARTIAL 1:10)\r\n", ~0u, 0, IMAP_SEARCH_RETURN_PARTIAL, 1, 10 },
		{ "a X (PARTIAL 4294967295:7 MIN)\r\n", ~0u, 0, IMAP_SEARCH_RETURN_PARTIAL | IMAP_SEARCH_RETURN_MIN, 7,
		  4294967295u },
		{ "a X (PARTIAL 0:5)\r\n", ~0u, IX_EINVAL, 0, 0, 0 },
		{ "a X (PARTIAL 1:4294967296)\r\n", ~0u, IX_EINVAL, 0, 0, 0 },
		{ "a X (PARTIAL 5)\r\n", ~0u, IX_EINVAL, 0, 0, 0 },
		{ "a X (PARTIAL)\r\n", ~0u, IX_EINVAL, 0, 0, 0 },
		{ "a X (MIN MIN)\r\n", ~0u, IX_EINVAL, 0, 0, 0 },
		{ "a X (SAVE)\r\n", ~(unsigned)IMAP_SEARCH_RETURN_SAVE, IX_EINVAL, 0, 0, 0 },
		{ "a X (FUZZY)\r\n", ~0u, IX_EINVAL, 0, 0, 0 },
		{ "a X ALL\r\n", ~0u, IX_EINVAL, 0, 0, 0 },
	};
	struct imap_parser *p = imap_parser_create(NULL);
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		const struct imap_command *cmd = parse_line(p, cases[i].line);
		test_assert(cmd != NULL && cmd->arg_count == 1);
		struct imap_return_opts r;
		struct buf err = BUF_INIT;
		int ret = imap_search_return_parse(&cmd->args[0], cases[i].allowed, &r, &err);
		if (ret != cases[i].ret || (ret == 0 && r.opts != cases[i].opts))
			fprintf(stderr, "%s: %d %x %s\n", cases[i].line, ret, r.opts, buf_cstr(&err));
		test_assert(ret == cases[i].ret && (ret != 0 || err.len == 0) && (ret == 0 || err.len > 0));
		test_assert(ret != 0 ||
			    (r.opts == cases[i].opts && r.partial_lo == cases[i].lo && r.partial_hi == cases[i].hi));
		buf_free(&err);
	}
	imap_parser_destroy(&p);
}

/* RFC 5464 entry names, checked at every byte value: only printable ASCII other than "*" and "%" is allowed; then the
 * structural rules (under /private or /shared, no empty component) and lower-casing. */
static void metadata_entries(void)
{
	struct buf out = BUF_INIT, err = BUF_INIT;
	for (unsigned c = 0; c < 256; c++) {
		char name[] = "/private/aXb";
		name[10] = (char)c;
		buf_reset(&out);
		buf_reset(&err);
		int ret = imap_metadata_entry(name, sizeof(name) - 1, false, &out, &err);
		bool ok = c > 0x20 && c < 0x7f && c != '*' && c != '%' && c != '/';
		if (c == '/')
			ok = true; /* "/private/a/b": a child */
		test_assert(ok ? ret == 0 : ret == IX_EINVAL);
		if (ret == 0)
			test_assert(out.len == sizeof(name) - 1 &&
				    out.data[10] == (char)((c >= 'A' && c <= 'Z') ? c + 32 : c));
		else
			test_assert(out.len == 0 && err.len > 0);
	}
	static const struct {
		const char *in, *out; /* out NULL: refused */
		bool root;
	} t[] = {
		{ "/private/comment", "/private/comment", false },
		{ "/Shared/Comment", "/shared/comment", false },
		{ "/shared/vendor/x/y", "/shared/vendor/x/y", false },
		{ "/private", NULL, false },
		{ "/private", "/private", true },
		{ "/SHARED", "/shared", true },
		{ "/private/", NULL, true },
		{ "/private//x", NULL, false },
		{ "/public/x", NULL, false },
		{ "private/x", NULL, false },
		{ "/shared/x/", NULL, false },
		{ "/privatex", NULL, true },
		{ "", NULL, true },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(t); i++) {
		buf_reset(&out);
		buf_reset(&err);
		int ret = imap_metadata_entry(t[i].in, strlen(t[i].in), t[i].root, &out, &err);
		test_assert(t[i].out != NULL ? ret == 0 && strcmp(buf_cstr(&out), t[i].out) == 0 : ret == IX_EINVAL);
	}
	char lng[IMAP_METADATA_ENTRY_MAX + 2];
	memset(lng, 'a', sizeof(lng));
	memcpy(lng, "/shared/", 8);
	test_assert(imap_metadata_entry(lng, IMAP_METADATA_ENTRY_MAX, false, &out, &err) == 0);
	test_assert(imap_metadata_entry(lng, IMAP_METADATA_ENTRY_MAX + 1, false, &out, &err) == IX_EINVAL);
	/* depth */
	test_assert(imap_metadata_within("/private/a", "/private/a", 0));
	test_assert(!imap_metadata_within("/private/a", "/private/a/b", 0));
	test_assert(imap_metadata_within("/private/a", "/private/a/b", 1));
	test_assert(!imap_metadata_within("/private/a", "/private/a/b/c", 1));
	test_assert(imap_metadata_within("/private/a", "/private/a/b/c", -1));
	test_assert(!imap_metadata_within("/private/a", "/private/ab", -1));
	test_assert(imap_metadata_within("/private", "/private/specialuse", 1));
	buf_free(&out);
	buf_free(&err);
}

/* GETMETADATA and SETMETADATA arguments, from whole lines fed to the command parser. */
static void metadata_commands(void)
{
	struct imap_parser_settings set = { .binary = true };
	struct imap_parser *p = imap_parser_create(&set);
	struct buf err = BUF_INIT;
	struct imap_getmetadata g;
	/* options before the mailbox (the grammar) and after it (the RFC's examples) */
	const struct imap_command *cmd = parse_line(
		p, "a GETMETADATA (MAXSIZE 1024 DEPTH infinity) \"INBOX\" (/Private/Comment /shared/x)\r\n");
	test_assert(cmd != NULL && imap_getmetadata_parse(cmd->args, cmd->arg_count, &g, &err) == 0);
	test_assert(g.has_maxsize && g.maxsize == 1024 && g.depth == -1 && g.n == 2 && g.mailbox_len == 5);
	test_assert(strcmp(g.entries[0], "/private/comment") == 0 && strcmp(g.entries[1], "/shared/x") == 0);
	imap_getmetadata_free(&g);
	cmd = parse_line(p, "a GETMETADATA \"\" (DEPTH 1) /shared\r\n");
	test_assert(cmd != NULL && imap_getmetadata_parse(cmd->args, cmd->arg_count, &g, &err) == 0);
	test_assert(!g.has_maxsize && g.depth == 1 && g.n == 1 && g.mailbox_len == 0);
	imap_getmetadata_free(&g);
	cmd = parse_line(p, "a GETMETADATA INBOX /private/comment\r\n");
	test_assert(cmd != NULL && imap_getmetadata_parse(cmd->args, cmd->arg_count, &g, &err) == 0);
	test_assert(g.depth == 0 && g.n == 1);
	imap_getmetadata_free(&g);
	static const char *const bad_get[] = {
		"a GETMETADATA\r\n",
		"a GETMETADATA INBOX\r\n",
		"a GETMETADATA (DEPTH 2) INBOX /private/x\r\n",
		"a GETMETADATA (MAXSIZE x) INBOX /private/x\r\n",
		"a GETMETADATA (MAXSIZE 1 MAXSIZE 2) INBOX /private/x\r\n",
		"a GETMETADATA (DEPTH) INBOX /private/x\r\n",
		"a GETMETADATA INBOX (/private/x /bad)\r\n",
		"a GETMETADATA INBOX ()\r\n",
		"a GETMETADATA INBOX /private/x extra\r\n",
		"a GETMETADATA INBOX NIL\r\n",
		"a GETMETADATA INBOX (/private/*)\r\n",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad_get); i++) {
		cmd = parse_line(p, bad_get[i]);
		buf_reset(&err);
		test_assert(cmd != NULL && imap_getmetadata_parse(cmd->args, cmd->arg_count, &g, &err) != 0);
		test_assert(err.len > 0);
		imap_getmetadata_free(&g);
	}
	struct imap_setmetadata st;
	static const char with_nul[] =
		"a SETMETADATA INBOX (/private/comment \"My\" /SHARED/comment NIL /shared/b ~{3}\r\n"
		"a\0b)\r\n";
	size_t used;
	test_assert(imap_parse_whole(p, with_nul, sizeof(with_nul) - 1, &cmd, &used, &err) == 0);
	test_assert(used == sizeof(with_nul) - 1 && imap_setmetadata_parse(cmd->args, cmd->arg_count, &st, &err) == 0);
	test_assert(st.n == 3 && strcmp(st.set[0].entry, "/private/comment") == 0 && st.set[0].len == 2);
	test_assert(strcmp(st.set[1].entry, "/shared/comment") == 0 && st.set[1].value == NULL);
	test_assert(st.set[2].len == 3 && memcmp(st.set[2].value, "a\0b", 3) == 0);
	imap_setmetadata_free(&st);
	static const char *const bad_set[] = {
		"a SETMETADATA\r\n",
		"a SETMETADATA INBOX\r\n",
		"a SETMETADATA INBOX ()\r\n",
		"a SETMETADATA INBOX (/private/comment)\r\n",
		"a SETMETADATA INBOX (/private/comment atom)\r\n",
		"a SETMETADATA INBOX (/private \"x\")\r\n",
		"a SETMETADATA INBOX (/private/x \"1\" /private/y (list))\r\n",
		"a SETMETADATA INBOX /private/x \"1\"\r\n",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad_set); i++) {
		cmd = parse_line(p, bad_set[i]);
		buf_reset(&err);
		test_assert(cmd != NULL && imap_setmetadata_parse(cmd->args, cmd->arg_count, &st, &err) != 0);
		test_assert(err.len > 0);
		imap_setmetadata_free(&st);
	}
	buf_free(&err);
	imap_parser_destroy(&p);
}

/* NOTIFY (RFC 5465) arguments: the RFC's examples, every filter, and the rules on which events go together; an event
 * not offered is IX_ENOTFOUND with the offered ones listed (for BADEVENT). */
static void notify_commands(void)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct buf err = BUF_INIT;
	struct imap_notify_set n;
	const struct imap_command *cmd = parse_line(
		p, "a NOTIFY SET STATUS (selected (MessageExpunge MessageNew (uid body.peek[header.fields "
		   "(from to subject)]))) (subtree Lists (MessageNew MessageExpunge)) (mailboxes (INBOX \"A b\") "
		   "(MessageNew MessageExpunge FlagChange)) (personal (MailboxName SubscriptionChange "
		   "MailboxMetadataChange ServerMetadataChange)) (inboxes NONE) (subscribed (MessageNew "
		   "MessageExpunge))\r\n");
	test_assert(cmd != NULL && imap_notify_parse(cmd->args, cmd->arg_count, &n, &err) == 0);
	test_assert(!n.none && n.status && n.n == 6);
	test_assert(n.groups[0].filter == IMAP_NOTIFY_SELECTED &&
		    n.groups[0].events == (IMAP_EV_MESSAGE_NEW | IMAP_EV_MESSAGE_EXPUNGE));
	test_assert(n.groups[1].filter == IMAP_NOTIFY_SUBTREE && n.groups[1].n == 1 &&
		    strcmp(n.groups[1].mailboxes[0], "Lists") == 0);
	test_assert(n.groups[2].filter == IMAP_NOTIFY_MAILBOXES && n.groups[2].n == 2 &&
		    strcmp(n.groups[2].mailboxes[1], "A b") == 0 && (n.groups[2].events & IMAP_EV_FLAG_CHANGE));
	test_assert(n.groups[3].filter == IMAP_NOTIFY_PERSONAL &&
		    n.groups[3].events == (IMAP_EV_MAILBOX_NAME | IMAP_EV_SUBSCRIPTION_CHANGE |
					   IMAP_EV_MAILBOX_METADATA_CHANGE | IMAP_EV_SERVER_METADATA_CHANGE));
	test_assert(n.groups[4].filter == IMAP_NOTIFY_INBOXES && n.groups[4].events == 0);
	test_assert(n.groups[5].filter == IMAP_NOTIFY_SUBSCRIBED);
	imap_notify_set_free(&n);
	cmd = parse_line(p, "a NOTIFY NONE\r\n");
	test_assert(cmd != NULL && imap_notify_parse(cmd->args, cmd->arg_count, &n, &err) == 0 && n.none);
	imap_notify_set_free(&n);
	cmd = parse_line(p, "a NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange))\r\n");
	test_assert(cmd != NULL && imap_notify_parse(cmd->args, cmd->arg_count, &n, &err) == 0);
	test_assert(n.n == 1 && n.groups[0].filter == IMAP_NOTIFY_SELECTED_DELAYED && !n.status);
	imap_notify_set_free(&n);
	static const char *const bad[] = {
		"a NOTIFY\r\n",
		"a NOTIFY SET\r\n",
		"a NOTIFY SET STATUS\r\n",
		"a NOTIFY NONE extra\r\n",
		"a NOTIFY GET (personal (MessageNew MessageExpunge))\r\n",
		"a NOTIFY SET (personal (MessageNew))\r\n",
		"a NOTIFY SET (personal (MessageExpunge))\r\n",
		"a NOTIFY SET (personal (FlagChange))\r\n",
		"a NOTIFY SET (personal (MessageNew MessageExpunge MessageNew))\r\n",
		"a NOTIFY SET (personal (Unknown))\r\n",
		"a NOTIFY SET (personal ())\r\n",
		"a NOTIFY SET (personal)\r\n",
		"a NOTIFY SET (personal (MailboxName) extra)\r\n",
		"a NOTIFY SET (nowhere (MailboxName))\r\n",
		"a NOTIFY SET (subtree (MailboxName))\r\n",
		"a NOTIFY SET (mailboxes () (MailboxName))\r\n",
		"a NOTIFY SET (selected (MailboxName))\r\n",
		"a NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))\r\n",
		"a NOTIFY SET (personal (MailboxName)) (personal (SubscriptionChange))\r\n",
		"a NOTIFY SET (personal (MailboxName (uid)))\r\n",
		"a NOTIFY SET personal\r\n",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		cmd = parse_line(p, bad[i]);
		buf_reset(&err);
		int ret = cmd != NULL ? imap_notify_parse(cmd->args, cmd->arg_count, &n, &err) : 0;
		if (ret != IX_EINVAL)
			fprintf(stderr, "accepted: %s", bad[i]);
		test_assert(ret == IX_EINVAL && err.len > 0);
		imap_notify_set_free(&n);
	}
	cmd = parse_line(p, "a NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))\r\n");
	buf_reset(&err);
	test_assert(cmd != NULL && imap_notify_parse(cmd->args, cmd->arg_count, &n, &err) == IX_ENOTFOUND);
	test_assert_str(buf_cstr(&err), "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "
					"MailboxMetadataChange ServerMetadataChange");
	imap_notify_set_free(&n);
	buf_free(&err);
	imap_parser_destroy(&p);
}

/* IMAP URLs (RFC 5092) as CATENATE, URLAUTH and BURL give them: the RFCs' examples, relative forms, errors. */
static void imap_urls(void)
{
	struct imap_url u;
	struct buf err = BUF_INIT, spec = BUF_INIT;
	/* RFC 4469's example: a server-relative URL */
	test_assert(imap_url_parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME", 53, &u, &err) == 0);
	test_assert(u.host == NULL && strcmp(u.mailbox, "Drafts") == 0 && u.uidvalidity == 385759045 && u.uid == 20);
	test_assert(imap_url_section_spec(&u, &spec) == 0);
	test_assert_str(buf_cstr(&spec), "1.MIME");
	imap_url_free(&u);
	/* RFC 4467's example: an authorized URL, its rump up to the access */
	const char *a = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:"
			"91354a473744909de610943775f92038";
	test_assert(imap_url_parse(a, strlen(a), &u, &err) == 0);
	test_assert_str(u.user, "joe");
	test_assert_str(u.host, "example.com");
	test_assert(strcmp(u.mailbox, "INBOX") == 0 && u.uid == 20 && strcmp(u.section, "1.2") == 0);
	test_assert_str(u.access, "submit+fred");
	test_assert_str(u.mechanism, "INTERNAL");
	test_assert_str(u.token, "91354a473744909de610943775f92038");
	test_assert(u.rump_len == strlen("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"));
	const char *who = NULL;
	test_assert(imap_url_access_kind(u.access, &who) == IMAP_URL_ACCESS_SUBMIT && strcmp(who, "fred") == 0);
	imap_url_free(&u);
	/* a rump URL with EXPIRE, a port, a percent-encoded mailbox with levels, PARTIAL */
	const char *r = "imap://b%40x@h.example:1143/A%20b/C%C3%A9;UIDVALIDITY=7/;UID=3/;PARTIAL=10.20"
			";EXPIRE=2026-12-07T12:00:00+01:00;URLAUTH=authuser";
	test_assert(imap_url_parse(r, strlen(r), &u, &err) == 0);
	test_assert(strcmp(u.user, "b@x") == 0 && u.port == 1143 && strcmp(u.mailbox, "A b/C\xc3\xa9") == 0);
	test_assert(u.partial && u.partial_offset == 10 && u.partial_length == 20);
	test_assert(u.has_expire && u.expire == 1796641200 && u.mechanism == NULL);
	test_assert(u.rump_len == strlen(r));
	imap_url_free(&u);
	/* relative to the selected mailbox */
	test_assert(imap_url_parse(";UID=5/;SECTION=TEXT", 20, &u, &err) == 0);
	test_assert(u.mailbox == NULL && u.uid == 5 && strcmp(u.section, "TEXT") == 0);
	imap_url_free(&u);
	static const char *const bad[] = {
		"/INBOX",                                             /* no UID */
		"/INBOX/;UID=0",                                      /* UID 0 */
		"/INBOX/;UID=1/;UIDVALIDITY=3",                       /* UIDVALIDITY after the UID */
		"/INBOX/;UID=1/;SECTION=1%2",                         /* bad escape */
		"/IN%00BOX/;UID=1",                                   /* encoded NUL */
		"/INBOX/;UID=1;URLAUTH=anonymous",                    /* URLAUTH in a relative URL */
		"imap://h/INBOX/;UID=1;URLAUTH=nobody",               /* unknown access */
		"imap://h/INBOX/;UID=1;URLAUTH=user+a:internal:1234", /* token too short */
		"imap://h/INBOX/;UID=1;URLAUTH=authuser:internal:0123456789abcdef0123456789abcdeg",
		"imap://h:0/INBOX/;UID=1", /* port 0 */
		"http://h/INBOX/;UID=1",
		"/INBOX/;UID=1/;COLOUR=red",
		"/INBOX/;UID=1;EXPIRE=tomorrow;URLAUTH=authuser",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		buf_reset(&err);
		test_assert(imap_url_parse(bad[i], strlen(bad[i]), &u, &err) == IX_EINVAL);
		test_assert(strncmp(buf_cstr(&err), "Bad IMAP URL: ", 14) == 0);
		imap_url_free(&u);
	}
	static const struct {
		const char *section;
		bool ok;
	} sections[] = { { "HEADER", true }, { "1.2.MIME", true }, { "TEXT", true },
			 { "3", true },      { "MIME", false },    { "HEADER.FIELDS%20(TO)", false },
			 { "1.", false },    { "0.1", false } };
	for (size_t i = 0; i < IX_ARRAY_LEN(sections); i++) {
		char *url = xasprintf("/INBOX/;UID=1/;SECTION=%s", sections[i].section);
		test_assert(imap_url_parse(url, strlen(url), &u, &err) == 0);
		buf_reset(&spec);
		test_assert((imap_url_section_spec(&u, &spec) == 0) == sections[i].ok);
		imap_url_free(&u);
		free(url);
	}
	buf_free(&err);
	buf_free(&spec);
}

TEST_MAIN("imap_parse", TEST_CASE(parse_table_chunked), TEST_CASE(parse_nul_and_skip_chunked), TEST_CASE(parse_limits),
	  TEST_CASE(parse_whole_and_helpers), TEST_CASE(seqset_parse_and_resolve), TEST_CASE(flags_and_dates),
	  TEST_CASE(fetch_items_and_sections), TEST_CASE(write_helpers), TEST_CASE(search_parse_table),
	  TEST_CASE(search_parse_errors), TEST_CASE(search_evaluate), TEST_CASE(parse_literal_sink),
	  TEST_CASE(objectid_preview_parse), TEST_CASE(objectid_values), TEST_CASE(preview_text),
	  TEST_CASE(search_return_options), TEST_CASE(metadata_entries), TEST_CASE(metadata_commands),
	  TEST_CASE(notify_commands), TEST_CASE(imap_urls))
