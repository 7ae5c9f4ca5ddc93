/* fuzz_pop3.c - fuzz target for the POP3 command and SASL line parsers: parsing the input whole and
 * byte-at-a-time through a caller buffer must give the same results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transport/pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *run(const uint8_t *data, size_t size, size_t chunk, bool sasl)
{
	struct pop3_parser p;
	pop3_parser_init(&p);
	struct buf log = BUF_INIT, pending = BUF_INIT, err = BUF_INIT;
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		buf_append(&pending, data + off, n);
		off += n;
		for (;;) {
			size_t used;
			enum pop3_parse_result r;
			buf_reset(&err);
			if (sasl) {
				const char *line;
				size_t len;
				bool cancel;
				r = pop3_parse_sasl_line(&p, pending.data, pending.len, &used, &line, &len, &cancel,
							 &err);
				if (r == POP3_PARSE_DONE) {
					if (len > POP3_MAX_SASL_LINE)
						abort();
					buf_printf(&log, "S %zu %d\n", len, cancel);
				}
			} else {
				struct pop3_command cmd;
				r = pop3_parse_command(&p, pending.data, pending.len, &used, &cmd, &err);
				if (r == POP3_PARSE_DONE) {
					if (cmd.arg_count > POP3_MAX_ARGS)
						abort();
					buf_printf(&log, "C %s %zu %u %u\n", pop3_verb_name(cmd.verb), cmd.arg_count,
						   cmd.msg, cmd.lines);
				}
			}
			if (r == POP3_PARSE_ERROR)
				buf_printf(&log, "E %s\n", buf_cstr(&err));
			if (used > pending.len)
				abort();
			buf_consume(&pending, used);
			if (r == POP3_PARSE_NEED_MORE && (used == 0 || pending.len == 0))
				break;
		}
	}
	buf_free(&pending);
	buf_free(&err);
	return buf_steal(&log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	for (int sasl = 0; sasl < 2; sasl++) {
		char *whole = run(data, size, size ? size : 1, sasl);
		char *bytes = run(data, size, 1, sasl);
		if (strcmp(whole, bytes) != 0)
			abort();
		free(whole);
		free(bytes);
	}
	return 0;
}
