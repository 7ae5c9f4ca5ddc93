/* imap_session_compress.c - RFC 4978 COMPRESS=DEFLATE for an IMAP session: raw deflate both ways over zlib, with the
 * inflated input bounded (a small compressed input cannot make the session hold more than the caller's limit). */
#include "transport/imap/imap_session_compress.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef IMAP_HAVE_ZLIB
#include <zlib.h>

struct imap_z {
	z_stream def, inf;
	struct buf pending; /* compressed input not inflated yet */
};

bool imap_z_available(void)
{
	return true;
}

int imap_z_create(struct imap_z **z_r)
{
	struct imap_z *z = xcalloc(1, sizeof(*z));
	/* RFC 4978: raw deflate (no zlib header), a window of at most 32 KiB */
	if (deflateInit2(&z->def, 6, Z_DEFLATED, -15, IMAP_Z_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return -1;
	}
	if (inflateInit2(&z->inf, -15) != Z_OK) {
		deflateEnd(&z->def);
		free(z);
		return -1;
	}
	*z_r = z;
	return 0;
}

void imap_z_destroy(struct imap_z **zp)
{
	struct imap_z *z = *zp;
	if (z == NULL)
		return;
	deflateEnd(&z->def);
	inflateEnd(&z->inf);
	buf_free(&z->pending);
	free(z);
	*zp = NULL;
}

void imap_z_compress(struct imap_z *z, const void *data, size_t len, struct buf *out)
{
	z->def.next_in = (Bytef *)(uintptr_t)data;
	z->def.avail_in = (uInt)len;
	do {
		buf_reserve(out, 16384);
		z->def.next_out = (Bytef *)out->data + out->len;
		z->def.avail_out = (uInt)(out->cap - out->len - 1);
		size_t before = z->def.avail_out;
		deflate(&z->def, Z_SYNC_FLUSH);
		out->len += before - z->def.avail_out;
		out->data[out->len] = '\0';
	} while (z->def.avail_in > 0 || z->def.avail_out == 0);
}

size_t imap_z_pending(const struct imap_z *z)
{
	return z->pending.len;
}

int imap_z_decompress(struct imap_z *z, const void *data, size_t len, struct buf *out, size_t max_out)
{
	if (len > 0)
		buf_append(&z->pending, data, len);
	while (z->pending.len > 0 && out->len < max_out) {
		size_t room = max_out - out->len;
		buf_reserve(out, room);
		z->inf.next_in = (Bytef *)z->pending.data;
		z->inf.avail_in = (uInt)z->pending.len;
		z->inf.next_out = (Bytef *)out->data + out->len;
		z->inf.avail_out = (uInt)room;
		int r = inflate(&z->inf, Z_SYNC_FLUSH);
		size_t used = z->pending.len - z->inf.avail_in;
		out->len += room - z->inf.avail_out;
		out->data[out->len] = '\0';
		buf_consume(&z->pending, used);
		if (r == Z_STREAM_END || (r != Z_OK && r != Z_BUF_ERROR))
			return -1;
		if (used == 0 && room == z->inf.avail_out)
			break; /* needs more input */
	}
	return 0;
}

#else

bool imap_z_available(void)
{
	return false;
}

int imap_z_create(struct imap_z **z_r)
{
	*z_r = NULL;
	return -1;
}

void imap_z_destroy(struct imap_z **z)
{
	*z = NULL;
}

void imap_z_compress(struct imap_z *z, const void *data, size_t len, struct buf *out)
{
	(void)z;
	buf_append(out, data, len);
}

size_t imap_z_pending(const struct imap_z *z)
{
	(void)z;
	return 0;
}

int imap_z_decompress(struct imap_z *z, const void *data, size_t len, struct buf *out, size_t max_out)
{
	(void)z;
	(void)data;
	(void)len;
	(void)out;
	(void)max_out;
	return -1;
}

#endif
