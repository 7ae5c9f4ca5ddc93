/* store_cache.c - the per-message cache computed once at delivery: the MIME parser's serialized mime_info.
 * A thin adapter so the store builds (with an empty cache) before or without the MIME parser. */
#include "store_int.h"

#ifdef STORE_HAVE_MIME
#include "mime.h"

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
#else
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
