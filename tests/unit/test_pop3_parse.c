/* test_pop3_parse.c - unit tests for the POP3 command parser: a table of lines and expected results, each input
 * also fed byte-at-a-time through a caller-side buffer; overlong lines, numbers, SASL lines. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/err.h"
#include "transport/pop3/pop3_parse.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void render(struct buf *log, const struct pop3_command *cmd)
{
	buf_printf(log, "%s", pop3_verb_name(cmd->verb));
	for (size_t i = 0; i < cmd->arg_count; i++) {
		buf_append_char(log, i == 0 ? '[' : '|');
		buf_append(log, cmd->args[i].str, cmd->args[i].len);
	}
	if (cmd->arg_count > 0)
		buf_append_char(log, ']');
	if (cmd->has_msg)
		buf_printf(log, " msg=%u", cmd->msg);
	if (cmd->verb == POP3_TOP)
		buf_printf(log, " lines=%u", cmd->lines);
	buf_append_char(log, '\n');
}

/* A caller with its own input buffer: appends chunk bytes at a time and parses while it can. */
static char *run(const char *in, size_t len, size_t chunk)
{
	struct pop3_parser p;
	pop3_parser_init(&p);
	struct buf log = BUF_INIT, pending = BUF_INIT, err = BUF_INIT;
	size_t off = 0;
	while (off < len) {
		size_t n = chunk == 0 || len - off < chunk ? len - off : chunk;
		buf_append(&pending, in + off, n);
		off += n;
		for (;;) {
			struct pop3_command cmd;
			size_t used;
			buf_reset(&err);
			enum pop3_parse_result r = pop3_parse_command(&p, pending.data, pending.len, &used, &cmd, &err);
			if (r == POP3_PARSE_DONE)
				render(&log, &cmd);
			else if (r == POP3_PARSE_ERROR)
				buf_printf(&log, "ERR %s\n", buf_cstr(&err));
			buf_consume(&pending, used);
			if (r == POP3_PARSE_NEED_MORE && (used == 0 || pending.len == 0))
				break;
		}
	}
	buf_free(&pending);
	buf_free(&err);
	return buf_steal(&log);
}

static const struct {
	const char *in, *log;
} pop3_cases[] = {
	{ "CAPA\r\n", "CAPA\n" },
	{ "user alice@example.com\r\n", "USER[alice@example.com]\n" },
	{ "PASS my secret  pw \r\n", "PASS[my secret  pw ]\n" },
	{ "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n", "APOP[mrose|c4c9334bac560ecc979e58001b3e22fb]\n" },
	{ "STAT\r\nLIST\r\nLIST 2\r\nUIDL 4294967295\r\n",
	  "STAT\nLIST\nLIST[2] msg=2\nUIDL[4294967295] msg=4294967295\n" },
	{ "RETR 1\nDELE 12\nTOP 3 0\r\nNOOP\r\nRSET\r\nQUIT\r\n",
	  "RETR[1] msg=1\nDELE[12] msg=12\nTOP[3|0] msg=3 lines=0\nNOOP\nRSET\nQUIT\n" },
	{ "STLS\r\nAUTH\r\nAUTH PLAIN\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
	  "STLS\nAUTH\nAUTH[PLAIN]\nAUTH[PLAIN|AGFsaWNlAHNlY3JldA==]\n" },
	{ "stat \r\n", "STAT\n" },
	/* errors, each followed by a good command */
	{ "\r\nNOOP\r\n", "ERR Empty command\nNOOP\n" },
	{ "HELO x\r\nNOOP\r\n", "ERR Unknown command\nNOOP\n" },
	{ "RETRX 1\r\nNOOP\r\n", "ERR Unknown command\nNOOP\n" },
	{ "RETR\r\nNOOP\r\n", "ERR Missing argument\nNOOP\n" },
	{ "RETR 0\r\nNOOP\r\n", "ERR Invalid message number\nNOOP\n" },
	{ "RETR 4294967296\r\nNOOP\r\n", "ERR Invalid message number\nNOOP\n" },
	{ "RETR 99999999999999999999999\r\nNOOP\r\n", "ERR Invalid message number\nNOOP\n" },
	{ "RETR -1\r\nNOOP\r\n", "ERR Invalid message number\nNOOP\n" },
	{ "RETR 01\r\nNOOP\r\n", "ERR Invalid message number\nNOOP\n" },
	{ "TOP 1 x\r\nNOOP\r\n", "ERR Invalid line count\nNOOP\n" },
	{ "DELE 1 2\r\nNOOP\r\n", "ERR Too many arguments\nNOOP\n" },
	{ "USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nNOOP\r\n", "ERR Argument too long\nNOOP\n" },
	{ "APOP mrose C4C9334BAC560ECC979E58001B3E22FB\r\nNOOP\r\n", "ERR Invalid APOP digest\nNOOP\n" },
	{ "PASS\r\nNOOP\r\n", "ERR PASS needs a password\nNOOP\n" },
	{ "NO\tOP\r\nNOOP\r\n", "ERR Control character in command\nNOOP\n" },
};

static void pop3_table_chunked(void)
{
	static const size_t chunks[] = { 0, 1, 2, 5 };
	for (size_t i = 0; i < IX_ARRAY_LEN(pop3_cases); i++) {
		for (size_t c = 0; c < IX_ARRAY_LEN(chunks); c++) {
			char *log = run(pop3_cases[i].in, strlen(pop3_cases[i].in), chunks[c]);
			int ok = strcmp(log, pop3_cases[i].log) == 0;
			if (!ok)
				fprintf(stderr, "case %zu chunk %zu: got [%s] want [%s]\n", i, chunks[c], log,
					pop3_cases[i].log);
			free(log);
			test_assert(ok);
		}
	}
}

static void pop3_nul_and_long_lines(void)
{
	char *log = run("NO\0P\r\nNOOP\r\n", 12, 1);
	test_assert_str(log, "ERR NUL byte in command\nNOOP\n");
	free(log);
	struct buf in = BUF_INIT;
	buf_append_str(&in, "USER ");
	for (int i = 0; i < 1000; i++)
		buf_append_char(&in, 'x');
	buf_append_str(&in, "\r\nQUIT\r\n");
	static const size_t chunks[] = { 0, 1, 3, 254, 255, 256 };
	for (size_t c = 0; c < IX_ARRAY_LEN(chunks); c++) {
		log = run(in.data, in.len, chunks[c]);
		int ok = strcmp(log, "ERR Line too long\nQUIT\n") == 0;
		free(log);
		test_assert(ok);
	}
	/* exactly 255 bytes with CRLF is allowed; 256 is not */
	buf_reset(&in);
	buf_append_str(&in, "PASS ");
	while (in.len < 253)
		buf_append_char(&in, 'p');
	buf_append_str(&in, "\r\n");
	test_assert(in.len == 255);
	log = run(in.data, in.len, 0);
	test_assert(strncmp(log, "PASS[ppp", 8) == 0);
	free(log);
	buf_reset(&in);
	buf_append_str(&in, "PASS ");
	while (in.len < 254)
		buf_append_char(&in, 'p');
	buf_append_str(&in, "\r\n");
	log = run(in.data, in.len, 0);
	test_assert_str(log, "ERR Line too long\n");
	free(log);
	buf_free(&in);
}

static void pop3_numbers_and_sasl(void)
{
	uint32_t v;
	test_assert(pop3_parse_number("4294967295", 10, UINT32_MAX, &v) == 0 && v == 4294967295u);
	test_assert(pop3_parse_number("4294967296", 10, UINT32_MAX, &v) == IX_EINVAL);
	test_assert(pop3_parse_number("18446744073709551617", 20, UINT32_MAX, &v) == IX_EINVAL);
	test_assert(pop3_parse_number("0", 1, UINT32_MAX, &v) == 0 && v == 0);
	test_assert(pop3_parse_number("", 0, UINT32_MAX, &v) == IX_EINVAL);
	test_assert(pop3_parse_number("+1", 2, UINT32_MAX, &v) == IX_EINVAL);
	struct pop3_parser p;
	pop3_parser_init(&p);
	struct buf err = BUF_INIT;
	const char *line;
	size_t len, used;
	bool cancel;
	test_assert(pop3_parse_sasl_line(&p, "AGFsaWNlAHNlY3JldA==\r\n", 22, &used, &line, &len, &cancel, &err) ==
		    POP3_PARSE_DONE);
	test_assert(used == 22 && len == 20 && !cancel);
	test_assert(pop3_parse_sasl_line(&p, "*\r\n", 3, &used, &line, &len, &cancel, &err) == POP3_PARSE_DONE);
	test_assert(cancel);
	test_assert(pop3_parse_sasl_line(&p, "=\r\n", 3, &used, &line, &len, &cancel, &err) == POP3_PARSE_DONE);
	test_assert(!cancel && len == 1);
	test_assert(pop3_parse_sasl_line(&p, "AGF", 3, &used, &line, &len, &cancel, &err) == POP3_PARSE_NEED_MORE);
	test_assert(used == 0);
	test_assert(pop3_parse_sasl_line(&p, "AG=s\r\n", 6, &used, &line, &len, &cancel, &err) == POP3_PARSE_ERROR);
	test_assert_str(buf_cstr(&err), "Invalid base64 in authentication response");
	test_assert(pop3_parse_sasl_line(&p, "AGF\r\n", 5, &used, &line, &len, &cancel, &err) == POP3_PARSE_ERROR);
	buf_free(&err);
}

TEST_MAIN("pop3_parse", TEST_CASE(pop3_table_chunked), TEST_CASE(pop3_nul_and_long_lines),
	  TEST_CASE(pop3_numbers_and_sasl))
