/* fuzz_mime.c - fuzz target for the MIME parser: parse, serialize, deserialize must agree field by field and
 * serialize again to the same bytes; the raw input is also fed to the deserializer, which must not crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/mime.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_same(const struct mime_info *a, const struct mime_info *b)
{
	if (!same(a->envelope, b->envelope) || !same(a->bodystructure, b->bodystructure) || !same(a->body, b->body) ||
	    !same(a->subject, b->subject) || !same(a->from, b->from) || !same(a->to, b->to) || !same(a->cc, b->cc) ||
	    !same(a->bcc, b->bcc) || !same(a->date, b->date) || !same(a->message_id, b->message_id) ||
	    !same(a->in_reply_to, b->in_reply_to) || !same(a->references, b->references) ||
	    !same(a->reply_to, b->reply_to) || !same(a->sender, b->sender) || a->date_unix != b->date_unix ||
	    a->flags != b->flags || a->msg_size != b->msg_size || a->part_count != b->part_count)
		abort();
	for (size_t i = 0; i < a->part_count; i++) {
		const struct mime_part *p = &a->parts[i], *q = &b->parts[i];
		if (!same(p->section, q->section) || !same(p->type, q->type) || !same(p->subtype, q->subtype) ||
		    !same(p->encoding, q->encoding) || !same(p->charset, q->charset) ||
		    p->header_off != q->header_off || p->header_len != q->header_len || p->body_off != q->body_off ||
		    p->body_len != q->body_len || p->lines != q->lines || p->depth != q->depth ||
		    p->parent != q->parent || p->is_multipart != q->is_multipart ||
		    p->is_message_rfc822 != q->is_message_rfc822 || p->is_message_root != q->is_message_root)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_info *info, *back;
	if (mime_info_deserialize(data, size, &back) == IX_OK)
		mime_info_destroy(&back);

	struct mime_limits lim;
	mime_limits_default(&lim);
	lim.max_parts = 500; /* keep each run fast */
	if (mime_parse((const char *)data, size, &lim, &info, NULL) != IX_OK)
		return 0;
	struct buf s1 = BUF_INIT, s2 = BUF_INIT;
	mime_info_serialize(info, &s1);
	if (mime_info_deserialize(s1.data, s1.len, &back) != IX_OK)
		abort();
	check_same(info, back);
	mime_info_serialize(back, &s2);
	if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len) != 0)
		abort();
	/* every part resolves by its own section, and its ranges lie inside the message */
	static const char *const names[] = { "subject", "from", "content-type" };
	static const char *const suffixes[] = { "", ".MIME", ".HEADER", ".TEXT" };
	for (size_t i = 0; i < info->part_count; i++) {
		const struct mime_part *p = &info->parts[i];
		if (p->body_off + p->body_len > size || p->header_off + p->header_len > size)
			abort();
		if (mime_find_part(info, p->section) == NULL)
			abort();
		for (size_t k = 0; k < 4; k++) {
			/* the top level takes the keywords without the dot: "HEADER", "TEXT" */
			const char *suffix = p->section[0] || k == 0 ? suffixes[k] : suffixes[k] + 1;
			char *spec = xasprintf("%s%s", p->section, suffix);
			size_t off, len;
			if (mime_section_range(info, spec, &off, &len) == IX_OK && (off > size || len > size - off))
				abort();
			free(spec);
		}
		struct buf dec = BUF_INIT;
		mime_decode_body(p, (const char *)data, &dec);
		buf_reset(&dec);
		mime_decode_text(p, (const char *)data, &dec);
		buf_reset(&dec);
		mime_header_get((const char *)data + p->header_off, p->header_len, "subject", &dec);
		buf_reset(&dec);
		mime_header_get_all((const char *)data + p->header_off, p->header_len, "to", &dec);
		buf_reset(&dec);
		mime_addr_text((const char *)data + p->header_off, p->header_len, &dec);
		buf_reset(&dec);
		mime_header_fields((const char *)data + p->header_off, p->header_len, names, 3, (int)(i & 1), &dec);
		buf_free(&dec);
	}
	struct buf words = BUF_INIT;
	mime_decode_words((const char *)data, size, &words);
	buf_free(&words);
	buf_free(&s1);
	buf_free(&s2);
	mime_info_destroy(&back);
	mime_info_destroy(&info);
	return 0;
}
