/* fuzz_managesieve.c - fuzz target for the ManageSieve command and SASL response parsers: parsing the input whole
 * and byte-at-a-time through a caller buffer must give the same results, and every result stays in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transport/managesieve/managesieve_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_arg(const struct ms_arg *arg, const struct buf *pending, struct buf *log)
{
	if (arg->len > 0 && (arg->str < pending->data || arg->str + arg->len > pending->data + pending->len))
		abort();
	if (arg->quoted && arg->len > 2 * MS_MAX_QUOTED)
		abort();
	buf_printf(log, " %zu:", arg->len);
	ms_arg_value(arg, log);
}

static char *run(const uint8_t *data, size_t size, size_t chunk, bool sasl)
{
	struct buf log = BUF_INIT, pending = BUF_INIT, err = BUF_INIT;
	size_t off = 0;
	bool fatal = false;
	while (off < size && !fatal) {
		size_t n = size - off < chunk ? size - off : chunk;
		buf_append(&pending, data + off, n);
		off += n;
		for (;;) {
			size_t used;
			enum ms_parse_result r;
			buf_reset(&err);
			if (sasl) {
				struct ms_arg arg;
				r = ms_parse_sasl_response(pending.data, pending.len, &used, &arg, &err);
				if (r == MS_PARSE_DONE) {
					buf_append_str(&log, "S");
					check_arg(&arg, &pending, &log);
				}
			} else {
				struct ms_command cmd;
				r = ms_parse_command(pending.data, pending.len, &used, &cmd, &err);
				if (r == MS_PARSE_DONE) {
					if (cmd.arg_count > MS_MAX_ARGS)
						abort();
					buf_printf(&log, "C %s %u", ms_verb_name(cmd.verb), cmd.size);
					for (size_t i = 0; i < cmd.arg_count; i++) {
						if (!(cmd.verb == MS_HAVESPACE && i == 1))
							check_arg(&cmd.args[i], &pending, &log);
					}
				}
			}
			if (used > pending.len || ((r == MS_PARSE_NEED_MORE || r == MS_PARSE_FATAL) && used != 0))
				abort();
			if (r == MS_PARSE_ERROR)
				buf_printf(&log, "E %s\n", buf_cstr(&err));
			if (r == MS_PARSE_FATAL) {
				buf_printf(&log, "F %s\n", buf_cstr(&err));
				fatal = true;
				break;
			}
			if (r == MS_PARSE_DONE)
				buf_append_char(&log, '\n');
			buf_consume(&pending, used);
			if (r == MS_PARSE_NEED_MORE || pending.len == 0)
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
