/* imap_objects.c - what OBJECTID (RFC 8474) and PREVIEW (RFC 8970) need from the store for one message of the
 * selected folder: its THREADID from the cached MIME headers, its preview from its first text part. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_objectid.h"
#include "store/mime.h"

#include <string.h>
#include <strings.h>

void imap_message_threadid(struct imap_session *s, uint32_t uid, const uint8_t hash[32], struct buf *out)
{
	struct mime_info *mi = NULL;
	if (store_fetch_mime(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, uid, &mi, NULL) == 0)
		imap_threadid(mi->message_id, mi->in_reply_to, mi->references, hash, out);
	else
		imap_threadid(NULL, NULL, NULL, hash, out);
	mime_info_destroy(&mi);
}

/* The part the preview is made from: the first text/plain leaf, else the first text/html one; NULL when none. */
static const struct mime_part *preview_part(const struct mime_info *mi)
{
	const struct mime_part *html = NULL;
	for (size_t i = 0; i < mi->part_count; i++) {
		const struct mime_part *p = &mi->parts[i];
		if (p->is_multipart || p->is_message_rfc822 || strcasecmp(p->type, "text") != 0)
			continue;
		/* only the message's own text: nothing inside an enclosed message */
		bool enclosed = false;
		for (size_t k = i; k != 0 && !enclosed; k = mi->parts[k].parent)
			enclosed = mi->parts[k].is_message_root;
		if (enclosed)
			continue;
		if (strcasecmp(p->subtype, "plain") == 0)
			return p;
		if (html == NULL && strcasecmp(p->subtype, "html") == 0)
			html = p;
	}
	return html;
}

bool imap_message_preview(struct imap_session *s, uint32_t uid, struct buf *out)
{
	struct store *st = s->srv->ls.cfg.store;
	struct mime_info *mi = NULL;
	if (store_fetch_mime(st, s->sel_guid, s->sel_folder, uid, &mi, NULL) != 0)
		return false;
	const struct mime_part *p = preview_part(mi);
	if (p != NULL) {
		/* the part's first bytes only: a preview never needs more than a few KiB of any encoding */
		struct mime_part part = *p;
		size_t want = 4 * IMAP_PREVIEW_INPUT_MAX / 3 + 4096;
		if (part.body_len > want)
			part.body_len = want;
		struct buf body = BUF_INIT, text = BUF_INIT;
		if (part.body_len > 0 &&
		    store_fetch_body(st, s->sel_guid, s->sel_folder, uid, part.body_off, part.body_len, &body, NULL) ==
			    0 &&
		    body.len == part.body_len) {
			part.body_off = 0; /* body holds the part's bytes alone */
			mime_decode_text(&part, buf_cstr(&body), &text);
			imap_preview(buf_cstr(&text), text.len, strcasecmp(part.subtype, "html") == 0, out);
		}
		buf_free(&body);
		buf_free(&text);
	}
	mime_info_destroy(&mi);
	return true;
}
