/* test_managesieve_parse.c - unit tests for the ManageSieve command parser: a table of inputs and expected results,
 * each also fed in small chunks and byte-at-a-time through a caller-side buffer; literals, limits, SASL responses. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/util.h"
#include "transport/managesieve/managesieve_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void render(struct buf *log, const struct ms_command *cmd)
{
	buf_printf(log, "%s", ms_verb_name(cmd->verb));
	for (size_t i = 0; i < cmd->arg_count; i++) {
		buf_append_char(log, i == 0 ? '[' : '|');
		if (cmd->verb == MS_HAVESPACE && i == 1)
			buf_printf(log, "%u", cmd->size);
		else
			ms_arg_value(&cmd->args[i], log);
	}
	if (cmd->arg_count > 0)
		buf_append_char(log, ']');
	buf_append_char(log, '\n');
}

/* A caller with its own input buffer: appends chunk bytes at a time and parses while it can; stops at FATAL. */
static char *run(const char *in, size_t len, size_t chunk, bool sasl)
{
	struct buf log = BUF_INIT, pending = BUF_INIT, err = BUF_INIT;
	size_t off = 0;
	bool fatal = false;
	while (off < len && !fatal) {
		size_t n = chunk == 0 || len - off < chunk ? len - off : chunk;
		buf_append(&pending, in + off, n);
		off += n;
		for (;;) {
			size_t used;
			enum ms_parse_result r;
			buf_reset(&err);
			if (sasl) {
				struct ms_arg arg;
				r = ms_parse_sasl_response(pending.data, pending.len, &used, &arg, &err);
				if (r == MS_PARSE_DONE) {
					buf_append_char(&log, '<');
					ms_arg_value(&arg, &log);
					buf_append_str(&log, ">\n");
				}
			} else {
				struct ms_command cmd;
				r = ms_parse_command(pending.data, pending.len, &used, &cmd, &err);
				if (r == MS_PARSE_DONE)
					render(&log, &cmd);
			}
			if (r == MS_PARSE_ERROR)
				buf_printf(&log, "NO %s\n", buf_cstr(&err));
			if (r == MS_PARSE_FATAL) {
				buf_printf(&log, "BYE %s\n", buf_cstr(&err));
				fatal = true;
				break;
			}
			buf_consume(&pending, used);
			if (r == MS_PARSE_NEED_MORE || pending.len == 0)
				break;
		}
	}
	buf_free(&pending);
	buf_free(&err);
	return buf_steal(&log);
}

static const struct {
	const char *in, *log;
} ms_cases[] = {
	{ "CAPABILITY\r\n", "CAPABILITY\n" },
	{ "capability\r\nStartTLS\r\nLOGOUT\r\nLISTSCRIPTS\r\nNOOP\r\nUNAUTHENTICATE\r\n",
	  "CAPABILITY\nSTARTTLS\nLOGOUT\nLISTSCRIPTS\nNOOP\nUNAUTHENTICATE\n" },
	{ "AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHNlY3JldA==\"\r\n", "AUTHENTICATE[PLAIN|AGFsaWNlAHNlY3JldA==]\n" },
	{ "AUTHENTICATE \"PLAIN\" {20+}\r\nAGFsaWNlAHNlY3JldA==\r\n", "AUTHENTICATE[PLAIN|AGFsaWNlAHNlY3JldA==]\n" },
	{ "Authenticate \"SCRAM-SHA-256\"\r\n", "AUTHENTICATE[SCRAM-SHA-256]\n" },
	{ "PUTSCRIPT \"rules\" {13+}\r\nkeep;\r\nstop;\n\r\n", "PUTSCRIPT[rules|keep;\r\nstop;\n]\n" },
	{ "PUTSCRIPT \"a\" {0}\r\n\r\n", "PUTSCRIPT[a|]\n" },
	{ "HAVESPACE \"rules\" 4294967295\r\n", "HAVESPACE[rules|4294967295]\n" },
	{ "SETACTIVE \"\"\r\nSETACTIVE \"x\"\nGETSCRIPT \"a\\\"b\\\\c\"\r\n",
	  "SETACTIVE[]\nSETACTIVE[x]\nGETSCRIPT[a\"b\\c]\n" },
	{ "DELETESCRIPT {3+}\r\nold\r\nRENAMESCRIPT \"old\" \"new\"\r\n",
	  "DELETESCRIPT[old]\nRENAMESCRIPT[old|new]\n" },
	{ "CHECKSCRIPT {4}\r\nkeep\r\nNOOP \"tag\"\r\n", "CHECKSCRIPT[keep]\nNOOP[tag]\n" },
	/* errors, each followed by a good command */
	{ "\r\nNOOP\r\n", "NO Expected a command\nNOOP\n" },
	{ "HELO x\r\nNOOP\r\n", "NO Unknown command\nNOOP\n" },
	{ "UNAUTHENTICATEX\r\nNOOP\r\n", "NO Unknown command\nNOOP\n" },
	{ "GETSCRIPT\r\nNOOP\r\n", "NO Missing arguments\nNOOP\n" },
	{ "GETSCRIPT a\r\nNOOP\r\n", "NO Expected a string\nNOOP\n" },
	{ "GETSCRIPT \"a\" \"b\"\r\nNOOP\r\n", "NO Expected end of line\nNOOP\n" },
	{ "GETSCRIPT \"a\r\nNOOP\r\n", "NO Unterminated quoted string\nNOOP\n" },
	{ "GETSCRIPT \"a\\n\"\r\nNOOP\r\n", "NO Bad escape in quoted string\nNOOP\n" },
	{ "HAVESPACE \"a\" 4294967296\r\nNOOP\r\n", "NO Number too large\nNOOP\n" },
	{ "HAVESPACE \"a\" x\r\nNOOP\r\n", "NO Expected a number\nNOOP\n" },
	{ "GETSCRIPT {x}\r\nNOOP\r\n", "NO Bad literal\nNOOP\n" },
	{ "GETSCRIPT {3+\r\nNOOP\r\n", "NO Bad literal\nNOOP\n" },
	{ "LOGOUT\tx\r\nNOOP\r\n", "NO Expected end of line\nNOOP\n" },
	/* fatal: the stream cannot be followed */
	{ "PUTSCRIPT \"a\" {1048577+}\r\nNOOP\r\n", "BYE Literal too large\n" },
	{ "PUTSCRIPT \"a\" {3+} \r\nabc\r\nNOOP\r\n", "BYE Expected end of line\n" },
};

static void ms_table_chunked(void)
{
	static const size_t chunks[] = { 0, 1, 2, 5 };
	for (size_t i = 0; i < IX_ARRAY_LEN(ms_cases); i++) {
		for (size_t c = 0; c < IX_ARRAY_LEN(chunks); c++) {
			char *log = run(ms_cases[i].in, strlen(ms_cases[i].in), chunks[c], false);
			int ok = strcmp(log, ms_cases[i].log) == 0;
			if (!ok)
				fprintf(stderr, "case %zu chunk %zu: got [%s] want [%s]\n", i, chunks[c], log,
					ms_cases[i].log);
			free(log);
			test_assert(ok);
		}
	}
}

static void ms_limits(void)
{
	/* a NUL inside a literal is data; inside a quoted string an error */
	static const char nul_literal[] = "PUTSCRIPT \"a\" {3+}\r\na\0b\r\nNOOP\r\n";
	char *log = run(nul_literal, sizeof(nul_literal) - 1, 1, false);
	test_assert(strcmp(log, "PUTSCRIPT[a|a") == 0 && strcmp(log + 14, "b]\nNOOP\n") == 0);
	free(log);
	log = run("GETSCRIPT \"a\0b\"\r\nNOOP\r\n", 23, 1, false);
	test_assert_str(log, "NO Unterminated quoted string\nNOOP\n");
	free(log);
	/* a literal's contents do not count against the line limit; a longer line is fatal in every chunking */
	struct buf in = BUF_INIT;
	buf_printf(&in, "PUTSCRIPT \"a\" {%u+}\r\n", MS_MAX_LINE * 2);
	for (unsigned i = 0; i < MS_MAX_LINE * 2; i++)
		buf_append_char(&in, 'k');
	buf_append_str(&in, "\r\n");
	log = run(in.data, in.len, 0, false);
	test_assert(strncmp(log, "PUTSCRIPT[a|kkk", 15) == 0 && strlen(log) == 12 + MS_MAX_LINE * 2 + 2);
	free(log);
	buf_reset(&in);
	buf_append_str(&in, "GETSCRIPT ");
	for (unsigned i = 0; i < MS_MAX_LINE; i++)
		buf_append_char(&in, 'x');
	buf_append_str(&in, "\r\nNOOP\r\n");
	static const size_t chunks[] = { 0, 1, 1000, MS_MAX_LINE };
	for (size_t c = 0; c < IX_ARRAY_LEN(chunks); c++) {
		log = run(in.data, in.len, chunks[c], false);
		int ok = strcmp(log, "BYE Command line too long\n") == 0;
		free(log);
		test_assert(ok);
	}
	/* a quoted string of MS_MAX_QUOTED is allowed, one more is not */
	buf_reset(&in);
	buf_append_str(&in, "GETSCRIPT \"");
	for (unsigned i = 0; i < MS_MAX_QUOTED; i++)
		buf_append_char(&in, 'q');
	buf_append_str(&in, "\"\r\n");
	log = run(in.data, in.len, 7, false);
	test_assert(strncmp(log, "GETSCRIPT[qq", 12) == 0);
	free(log);
	buf_reset(&in);
	buf_append_str(&in, "GETSCRIPT \"");
	for (unsigned i = 0; i <= MS_MAX_QUOTED; i++)
		buf_append_char(&in, 'q');
	buf_append_str(&in, "\"\r\nNOOP\r\n");
	log = run(in.data, in.len, 7, false);
	test_assert_str(log, "NO Quoted string too long\nNOOP\n");
	free(log);
	buf_free(&in);
}

static void ms_sasl_responses(void)
{
	static const size_t chunks[] = { 0, 1 };
	for (size_t c = 0; c < IX_ARRAY_LEN(chunks); c++) {
		const char *in = "\"AGFsaWNl\"\r\n{4+}\r\nYWJj\r\n\"*\"\r\nbare\r\n\"\"\n";
		char *log = run(in, strlen(in), chunks[c], true);
		test_assert_str(log, "<AGFsaWNl>\n<YWJj>\n<*>\nNO Expected a string\n<>\n");
		free(log);
	}
	struct buf err = BUF_INIT;
	struct ms_arg arg;
	size_t used = 99;
	test_assert(ms_parse_sasl_response("\"AGF", 4, &used, &arg, &err) == MS_PARSE_NEED_MORE && used == 0);
	test_assert(err.len == 0);
	buf_free(&err);
}

TEST_MAIN("managesieve_parse", TEST_CASE(ms_table_chunked), TEST_CASE(ms_limits), TEST_CASE(ms_sasl_responses))
