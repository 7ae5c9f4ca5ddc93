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
#else
int store_cache_build(const char *data, size_t len, struct buf *blob, struct buf *error_r)
{
	(void)data;
	(void)len;
	(void)error_r;
	buf_reset(blob);
	return 0;
}
#endif
