/* mime_downgrade.c - RFC 6857 post-delivery downgrading: the header blocks of a message holding raw UTF-8 rewritten
 * for clients that did not ENABLE UTF8=ACCEPT (RFC 6855): RFC 2047 encoded-words, group syntax for UTF-8 addresses. */
#include "store/mime_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/utf8.h"
#include "common/util.h"

/* Bytes of text per encoded-word: 60 base64 characters, a word of 72 (RFC 2047 section 2 allows 75). */
#define WORD_MAX_BYTES 45

static const char *const address_fields[] = { "from",      "sender",    "reply-to",    "to",
					      "cc",        "bcc",       "resent-from", "resent-sender",
					      "resent-to", "resent-cc", "resent-bcc" };

int mime_has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

void mime_encode_words(const char *s, size_t len, const char *sep, struct buf *out)
{
	/* RFC 6857 downgrades UTF-8; 8-bit text that is not UTF-8 has no charset we could name (RFC 1428) */
	const char *charset = utf8_valid(s, len) ? "UTF-8" : "UNKNOWN-8BIT";
	size_t i = 0;
	while (i < len) {
		size_t n = len - i < WORD_MAX_BYTES ? len - i : WORD_MAX_BYTES;
		/* a word holds whole characters (RFC 2047 section 5): never end it before a continuation byte */
		while (i + n < len && n > 1 && ((unsigned char)s[i + n] & 0xc0) == 0x80)
			n--;
		if (i > 0)
			buf_append_str(out, sep);
		buf_printf(out, "=?%s?B?", charset);
		base64_encode(s + i, n, out);
		buf_append_str(out, "?=");
		i += n;
	}
}

static int is_address_field(const char *name, size_t len)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(address_fields); i++)
		if (mime_eq(name, len, address_fields[i]))
			return 1;
	return 0;
}

/* Appends the header block h[0..len) downgraded: fields without 8-bit bytes as they are, address fields rewritten
 * by mime_addr_downgrade, any other field's unfolded value as encoded-words (folded between words). */
static void downgrade_header(const char *h, size_t len, struct buf *out)
{
	struct mime_hdr_iter it = { h, h + len };
	const char *name, *value, *field;
	size_t name_len, value_len, field_len;
	const char *prev = it.p;
	while (mime_hdr_next(&it, &name, &name_len, &value, &value_len, &field, &field_len)) {
		buf_append(out, prev, (size_t)(field - prev)); /* lines that are not fields, as they are */
		prev = it.p;
		if (!mime_has_8bit(field, field_len)) {
			buf_append(out, field, field_len);
			continue;
		}
		char *v = mime_unfold(value, value_len);
		buf_append(out, name, name_len);
		buf_append_str(out, ": ");
		if (is_address_field(name, name_len))
			mime_addr_downgrade(v, out);
		else
			mime_encode_words(v, strlen(v), "\r\n ", out);
		buf_append_str(out, "\r\n");
		free(v);
	}
	buf_append(out, prev, (size_t)(h + len - prev)); /* the blank line */
}

void mime_downgrade(const char *msg, const struct mime_info *info, struct buf *out)
{
	size_t pos = 0;
	for (size_t i = 0; i < info->part_count; i++) {
		const struct mime_part *p = &info->parts[i];
		if (p->header_len == 0 || p->header_off < pos || !mime_has_8bit(msg + p->header_off, p->header_len))
			continue;
		buf_append(out, msg + pos, p->header_off - pos);
		downgrade_header(msg + p->header_off, p->header_len, out);
		pos = p->header_off + p->header_len;
	}
	buf_append(out, msg + pos, info->msg_size - pos);
}
