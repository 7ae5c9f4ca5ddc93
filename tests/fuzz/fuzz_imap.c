/* fuzz_imap.c - fuzz target for the IMAP command parser and the helpers over its argument tree.
 * Every input is parsed whole and byte-at-a-time; the two event logs must be identical. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_metadata.h"
#include "transport/imap/imap_notify.h"
#include "transport/imap/imap_objectid.h"
#include "transport/imap/imap_parse.h"
#include "transport/imap/imap_search.h"
#include "common/utf8.h"
#include "common/util.h"

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

static bool fuzz_header(void *ctx, const char *name, struct buf *value_r)
{
	(void)ctx;
	buf_append_str(value_r, name);
	return (name[0] & 1) != 0;
}

static void fuzz_body(void *ctx, bool with_headers, struct buf *text_r)
{
	(void)ctx;
	buf_append_str(text_r, with_headers ? "Subject: x\r\n\r\nbody" : "body");
}

static void fuzz_threadid(void *ctx, struct buf *id_r)
{
	(void)ctx;
	buf_append_str(id_r, "T1");
}

/* The PREVIEW text of a string, plain and HTML: valid UTF-8 of at most IMAP_PREVIEW_MAX_CHARS characters; and the
 * THREADID of it as a References field. */
static void use_preview(const char *s, size_t len)
{
	struct buf out = BUF_INIT;
	for (int html = 0; html < 2; html++) {
		buf_reset(&out);
		imap_preview(s, len, html != 0, &out);
		size_t chars = 0;
		for (size_t i = 0; i < out.len; chars++) {
			size_t n = utf8_decode(out.data + i, out.len - i, NULL);
			if (n == 0)
				abort();
			i += n;
		}
		if (chars > IMAP_PREVIEW_MAX_CHARS ||
		    (out.len > 0 && (out.data[0] == ' ' || out.data[out.len - 1] == ' ')))
			abort();
	}
	static const uint8_t hash[32];
	buf_reset(&out);
	char *refs = xstrndup(s, len);
	imap_threadid(NULL, refs, refs, hash, &out);
	if (!imap_objectid_valid(out.data, out.len))
		abort();
	free(refs);
	buf_free(&out);
}

/* Runs the command-specific parsers over a parsed command, and the writers over its strings. */
static void use_command(const struct imap_command *cmd)
{
	struct buf err = BUF_INIT, out = BUF_INIT;
	if (cmd->arg_count > 0 && (strcmp(cmd->name, "FETCH") == 0 || strcmp(cmd->name, "X") == 0)) {
		struct imap_fetch_request req;
		if (imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &req, &err) == 0) {
			for (size_t i = 0; i < req.body_count; i++)
				imap_fetch_body_name(&req.bodies[i], &out);
			imap_fetch_request_free(&req);
		}
	}
	if (strcmp(cmd->name, "SEARCH") == 0 || strcmp(cmd->name, "X") == 0) {
		struct imap_search_query *q;
		bool badcs;
		if (imap_search_parse(cmd->args, cmd->arg_count, &q, &badcs, &err) == 0) {
			static const uint32_t saved[] = { 1, 5, 9 };
			struct imap_search_msg m;
			memset(&m, 0, sizeof(m));
			m.seq = 3;
			m.uid = 5;
			m.seq_max = 10;
			m.uid_max = 20;
			m.flags = IMAP_FLAG_SEEN;
			m.size = 1000;
			m.internal_date = 1700000000;
			m.saved_uids = saved;
			m.saved_count = 3;
			m.header = fuzz_header;
			m.body = fuzz_body;
			m.emailid = "M1";
			m.threadid = fuzz_threadid;
			(void)imap_search_match(q, &m);
			imap_search_key_dump(&q->root, &out);
			imap_search_query_destroy(&q);
		}
	}
	/* METADATA (any command's arguments): every entry accepted is lower-case, under /private or /shared */
	struct imap_getmetadata gq;
	if (imap_getmetadata_parse(cmd->args, cmd->arg_count, &gq, &err) == 0)
		for (size_t i = 0; i < gq.n; i++)
			if (strncmp(gq.entries[i], "/private", 8) != 0 && strncmp(gq.entries[i], "/shared", 7) != 0)
				abort();
	imap_getmetadata_free(&gq);
	struct imap_setmetadata sq;
	if (imap_setmetadata_parse(cmd->args, cmd->arg_count, &sq, &err) == 0)
		for (size_t i = 0; i < sq.n; i++)
			if (!imap_metadata_within(sq.set[i].entry, sq.set[i].entry, 0) ||
			    strpbrk(sq.set[i].entry, "*%A") != NULL)
				abort();
	imap_setmetadata_free(&sq);
	/* NOTIFY: an accepted set keeps RFC 5465's pairing of events and names only mailboxes without NULs */
	struct imap_notify_set ns;
	if (imap_notify_parse(cmd->args, cmd->arg_count, &ns, &err) == 0)
		for (size_t i = 0; i < ns.n; i++) {
			unsigned ev = ns.groups[i].events;
			if (!(ev & IMAP_EV_MESSAGE_NEW) != !(ev & IMAP_EV_MESSAGE_EXPUNGE) || (ev & ~IMAP_EV_SUPPORTED))
				abort();
		}
	imap_notify_set_free(&ns);
	for (size_t i = 0; i < cmd->arg_count; i++) {
		const struct imap_arg *a = &cmd->args[i];
		struct imap_return_opts r;
		/* any list as RETURN options (SORT's, CONTEXT's): a PARTIAL range comes out ordered and non-zero */
		if (a->type == IMAP_ARG_LIST && imap_search_return_parse(a, (unsigned)i * 37u, &r, &err) == 0 &&
		    (r.opts & IMAP_SEARCH_RETURN_PARTIAL) && (r.partial_lo == 0 || r.partial_lo > r.partial_hi))
			abort();
		if (a->type != IMAP_ARG_LIST) {
			imap_write_string(&out, a->str, a->len, (unsigned)i & 3);
			imap_write_astring(&out, a->str, a->len, 0);
			use_preview(a->str, a->len);
		}
	}
	buf_free(&err);
	buf_free(&out);
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
				if (use) {
					use_args(cmd->args, cmd->arg_count);
					use_command(cmd);
				}
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
