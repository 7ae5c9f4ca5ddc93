/* fuzz_imap.c - fuzz target for the IMAP command parser and the helpers over its argument tree.
 * Every input is parsed whole and byte-at-a-time; the two event logs must be identical. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imap_parse.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 65536u

static void use_args(const struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		struct buf err = BUF_INIT;
		if (a->type == IMAP_ARG_LIST) {
			struct imap_flags f;
			if (imap_flags_parse(a, &f, &err) == 0)
				imap_flags_free(&f);
			use_args(a->list, a->list_count);
		} else if (a->type == IMAP_ARG_ATOM) {
			struct imap_seqset set;
			if (imap_seqset_parse(a->str, a->len, true, &set, &err) == 0) {
				struct imap_seq_range *r;
				size_t n = imap_seqset_resolve(&set, 1000, (a->len & 1) != 0, &r);
				for (size_t k = 0; k < n; k++) {
					if (r[k].lo > r[k].hi || r[k].lo == 0 || (k > 0 && r[k].lo <= r[k - 1].hi))
						abort();
				}
				free(r);
				(void)imap_seqset_contains(&set, 7, 1000);
				imap_seqset_free(&set);
			}
		}
		int64_t t;
		int tz;
		(void)imap_date_parse(a, &t);
		(void)imap_datetime_parse(a, &t, &tz);
		buf_free(&err);
	}
}

static char *run(const uint8_t *data, size_t size, size_t chunk, bool use)
{
	struct imap_parser_settings set;
	memset(&set, 0, sizeof(set));
	set.max_line = 4096;
	set.max_literal = 4096;
	set.max_literals = 8192;
	set.max_depth = 16;
	set.max_args = 512;
	set.literal_plus = size > 0 && (data[0] & 1) != 0;
	set.literal_minus = true;
	set.binary = true;
	struct imap_parser *p = imap_parser_create(&set);
	struct buf log = BUF_INIT;
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk, pos = 0;
		while (pos < n) {
			size_t used;
			enum imap_parse_result r = imap_parser_feed(p, data + off + pos, n - pos, &used);
			pos += used;
			if (r == IMAP_PARSE_DONE) {
				const struct imap_command *cmd = imap_parser_command(p);
				buf_printf(&log, "D %s %s %zu\n", cmd->tag, cmd->name, cmd->arg_count);
				if (use)
					use_args(cmd->args, cmd->arg_count);
			} else if (r == IMAP_PARSE_LITERAL) {
				const struct imap_literal_info *lit = imap_parser_literal(p);
				buf_printf(&log, "L %llu\n", (unsigned long long)lit->size);
				if (lit->size % 3 == 2)
					imap_parser_literal_reject(p);
				else
					imap_parser_literal_accept(p);
			} else if (r == IMAP_PARSE_ERROR) {
				const char *tag = imap_parser_tag(p);
				buf_printf(&log, "E %s %s\n", tag ? tag : "*", imap_parser_error(p));
			} else {
				break;
			}
		}
		off += n;
	}
	imap_parser_destroy(&p);
	return buf_steal(&log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;
	char *whole = run(data, size, size ? size : 1, true);
	char *bytes = run(data, size, 1, false);
	if (strcmp(whole, bytes) != 0)
		abort();
	free(whole);
	free(bytes);
	return 0;
}
