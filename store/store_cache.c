/* store_cache.c - the per-message cache computed once at delivery: the MIME parser's serialized mime_info.
 * A thin adapter so the store builds (with an empty cache) before or without the MIME parser. */
#include "store/store_int.h"

#include <string.h>
#include <strings.h>

#ifdef STORE_HAVE_MIME
#include "store/mime.h"

int store_cache_build(const char *data, size_t len, struct buf *blob, struct buf *error_r)
{
	struct mime_info *info = NULL;
	struct buf err = BUF_INIT;
	int ret = mime_parse(data, len, NULL, &info, &err);
	if (ret != 0) {
		if (error_r != NULL)
			buf_printf(error_r, "message refused: %s", err.len ? buf_cstr(&err) : ix_strerror(ret));
		buf_free(&err);
		return ret;
	}
	buf_free(&err);
	buf_reset(blob);
	mime_info_serialize(info, blob);
	mime_info_destroy(&info);
	return 0;
}

int store_fetch_mime(struct store *st, const char *guid, const char *folder, uint32_t uid, struct mime_info **info_r,
		     struct buf *error_r)
{
	struct buf blob = BUF_INIT;
	*info_r = NULL;
	int ret = store_fetch_cache(st, guid, folder, uid, &blob, error_r);
	if (ret == 0) {
		ret = mime_info_deserialize(blob.data != NULL ? blob.data : "", blob.len, info_r);
		if (ret != 0 && error_r != NULL)
			buf_printf(error_r, "the cache record of message %u is corrupt", uid);
	}
	buf_free(&blob);
	return ret;
}

int store_fetch_section(struct store *st, const char *guid, const char *folder, uint32_t uid, const char *section,
			uint64_t offset, uint64_t max_len, struct buf *out, struct buf *error_r)
{
	struct mime_info *info;
	int ret = store_fetch_mime(st, guid, folder, uid, &info, error_r);
	if (ret != 0)
		return ret;
	size_t off, len;
	ret = mime_section_range(info, section, &off, &len);
	mime_info_destroy(&info);
	if (ret != 0) {
		if (error_r != NULL)
			buf_printf(error_r, "message %u has no section \"%.64s\"", uid, section);
		return IX_ENOTFOUND;
	}
	if (offset >= len)
		return 0;
	uint64_t n = len - offset;
	if (max_len > 0 && n > max_len)
		n = max_len;
	/* bodies never change (they are named by their hash): a second transaction reads the same bytes */
	return store_fetch_body(st, guid, folder, uid, off + offset, n, out, error_r);
}

static int decoded_header_match(const char *msg, const struct mime_part *root, const char *name, const char *value)
{
	struct buf raw = BUF_INIT, dec = BUF_INIT;
	int found = mime_header_get(msg + root->header_off, root->header_len, name, &raw);
	int ok = 0;
	if (found) {
		mime_decode_words(raw.data != NULL ? raw.data : "", raw.len, &dec);
		ok = store_ci_contains(buf_cstr(&dec), dec.len, value);
	}
	buf_free(&raw);
	buf_free(&dec);
	return ok;
}

/* Does any text leaf part, decoded, contain needle? */
static int decoded_body_match(const char *msg, const struct mime_info *info, const char *needle)
{
	struct buf dec = BUF_INIT;
	int ok = 0;
	for (size_t i = 0; i < info->part_count && !ok; i++) {
		const struct mime_part *p = &info->parts[i];
		if (p->is_multipart || p->is_message_rfc822 || strcasecmp(p->type, "text") != 0)
			continue;
		buf_reset(&dec);
		mime_decode_text(p, msg, &dec);
		ok = store_ci_contains(buf_cstr(&dec), dec.len, needle);
	}
	buf_free(&dec);
	return ok;
}

int store_cache_match(const char *msg, size_t len, const void *cache, size_t cache_len, const struct store_search *q)
{
	struct mime_info *info;
	if (cache_len == 0 || mime_info_deserialize(cache, cache_len, &info) != 0)
		return -1;
	if (info->msg_size != len) {
		mime_info_destroy(&info);
		return -1;
	}
	const struct mime_part *root = &info->parts[0];
	int ok = 1;
	if (q->header_name != NULL)
		ok = decoded_header_match(msg, root, q->header_name, q->header_value ? q->header_value : "");
	if (ok && q->body != NULL)
		ok = decoded_body_match(msg, info, q->body);
	if (ok && q->text != NULL) {
		struct buf dec = BUF_INIT;
		mime_decode_words(msg + root->header_off, root->header_len, &dec);
		ok = store_ci_contains(buf_cstr(&dec), dec.len, q->text) || decoded_body_match(msg, info, q->text);
		buf_free(&dec);
	}
	mime_info_destroy(&info);
	return ok;
}
#else
int store_cache_match(const char *msg, size_t len, const void *cache, size_t cache_len, const struct store_search *q)
{
	(void)msg;
	(void)len;
	(void)cache;
	(void)cache_len;
	(void)q;
	return -1;
}

int store_fetch_section(struct store *st, const char *guid, const char *folder, uint32_t uid, const char *section,
			uint64_t offset, uint64_t max_len, struct buf *out, struct buf *error_r)
{
	(void)st;
	(void)guid;
	(void)folder;
	(void)uid;
	(void)section;
	(void)offset;
	(void)max_len;
	(void)out;
	if (error_r != NULL)
		buf_printf(error_r, "the store was built without the MIME parser");
	return IX_EUNAVAIL;
}

int store_fetch_mime(struct store *st, const char *guid, const char *folder, uint32_t uid, struct mime_info **info_r,
		     struct buf *error_r)
{
	(void)st;
	(void)guid;
	(void)folder;
	(void)uid;
	*info_r = NULL;
	if (error_r != NULL)
		buf_printf(error_r, "the store was built without the MIME parser");
	return IX_EUNAVAIL;
}

int store_cache_build(const char *data, size_t len, struct buf *blob, struct buf *error_r)
{
	(void)data;
	(void)len;
	(void)error_r;
	buf_reset(blob);
	return 0;
}
#endif
