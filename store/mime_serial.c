/* mime_serial.c - compact binary form of a mime_info for the store's per-message cache record, and its strict
 * reader: LEB128 numbers, length-prefixed strings, the part tree checked for shape and offsets on the way in. */
#include "store/mime_int.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define MIME_SERIAL_MAGIC "IXM1"
#define MIME_SERIAL_MAGIC_LEN 4
#define MIME_SERIAL_PART_MIN 14 /* the fewest bytes one serialized part can take */

#define PB_MULTIPART 1u
#define PB_RFC822 2u
#define PB_ROOT 4u

static void put_num(struct buf *out, unsigned long long v)
{
	unsigned char tmp[10];
	size_t n = 0;
	do {
		unsigned char c = v & 0x7F;
		v >>= 7;
		tmp[n++] = (unsigned char)(c | (v ? 0x80 : 0));
	} while (v);
	buf_append(out, tmp, n);
}

static void put_str(struct buf *out, const char *s)
{
	if (s == NULL) {
		put_num(out, 0);
		return;
	}
	size_t len = strlen(s);
	put_num(out, (unsigned long long)len + 1);
	buf_append(out, s, len);
}

#define INFO_STRINGS 14

/* Fills f with the addresses of mime_info's string fields, in serialized order. */
static void info_strings(struct mime_info *info, char **f[INFO_STRINGS])
{
	char **v[] = { &info->envelope,   &info->bodystructure, &info->body,
		       &info->subject,    &info->from,          &info->to,
		       &info->cc,         &info->bcc,           &info->date,
		       &info->message_id, &info->in_reply_to,   &info->references,
		       &info->reply_to,   &info->sender };
	_Static_assert(IX_ARRAY_LEN(v) == INFO_STRINGS, "string field count");
	memcpy(f, v, sizeof(v));
}

void mime_info_serialize(const struct mime_info *info, struct buf *out)
{
	buf_append(out, MIME_SERIAL_MAGIC, MIME_SERIAL_MAGIC_LEN);
	put_num(out, info->msg_size);
	put_num(out, info->flags);
	long long d = info->date_unix;
	put_num(out, d < 0 ? ((unsigned long long)(-(d + 1)) << 1) | 1 : (unsigned long long)d << 1);
	char **strs[INFO_STRINGS];
	info_strings((struct mime_info *)info, strs);
	for (size_t i = 0; i < INFO_STRINGS; i++)
		put_str(out, *strs[i]);
	put_num(out, info->part_count);
	for (size_t i = 0; i < info->part_count; i++) {
		const struct mime_part *p = &info->parts[i];
		put_str(out, p->section);
		put_num(out, p->header_off);
		put_num(out, p->header_len);
		put_num(out, p->body_off);
		put_num(out, p->body_len);
		put_num(out, p->lines);
		put_str(out, p->type);
		put_str(out, p->subtype);
		put_str(out, p->encoding);
		put_str(out, p->charset);
		put_num(out, p->depth);
		put_num(out, p->parent);
		put_num(out, (p->is_multipart ? PB_MULTIPART : 0) | (p->is_message_rfc822 ? PB_RFC822 : 0) |
				     (p->is_message_root ? PB_ROOT : 0));
	}
}

struct reader {
	const unsigned char *p, *end;
	int bad;
};

static unsigned long long get_num(struct reader *r, unsigned long long max)
{
	unsigned long long v = 0;
	for (unsigned shift = 0; !r->bad; shift += 7) {
		if (r->p >= r->end || shift > 63) {
			r->bad = 1;
			break;
		}
		unsigned char c = *r->p++;
		unsigned long long bits = c & 0x7F;
		if (shift == 63 && bits > 1) {
			r->bad = 1;
			break;
		}
		v |= bits << shift;
		if (!(c & 0x80))
			break;
	}
	if (r->bad || v > max) {
		r->bad = 1;
		return 0;
	}
	return v;
}

static char *get_str(struct reader *r, int required)
{
	unsigned long long n = get_num(r, ULLONG_MAX);
	if (r->bad)
		return NULL;
	if (n > (unsigned long long)(r->end - r->p) + 1) {
		r->bad = 1;
		return NULL;
	}
	if (n == 0) {
		if (required)
			r->bad = 1;
		return NULL;
	}
	size_t len = (size_t)(n - 1);
	if (memchr(r->p, '\0', len) != NULL) {
		r->bad = 1;
		return NULL;
	}
	char *s = xstrndup((const char *)r->p, len);
	r->p += len;
	return s;
}

/* The section a child should have: parent's section with ".k" (or "k" under the root). */
static int section_ok(const char *parent_section, const char *section, unsigned long long k)
{
	char *want = parent_section[0] ? xasprintf("%s.%llu", parent_section, k) : xasprintf("%llu", k);
	int ok = strcmp(want, section) == 0;
	free(want);
	return ok;
}

/* Checks part i against the parts before it. */
static int part_ok(const struct mime_info *info, size_t i, unsigned long long *child_no)
{
	const struct mime_part *p = &info->parts[i];
	if (p->header_off > info->msg_size || p->header_len > info->msg_size - p->header_off ||
	    p->body_off > info->msg_size || p->body_len > info->msg_size - p->body_off)
		return 0;
	if (i == 0)
		return p->depth == 0 && p->parent == 0 && p->section[0] == '\0' && p->is_message_root;
	if (p->parent >= i)
		return 0;
	const struct mime_part *par = &info->parts[p->parent];
	if (p->depth != par->depth + 1)
		return 0;
	/* depth-first order: the parent is the ancestor of part i-1 at depth - 1 */
	size_t a = i - 1;
	while (info->parts[a].depth > par->depth)
		a = info->parts[a].parent;
	if (a != p->parent)
		return 0;
	if (par->is_message_rfc822)
		return p->parent == i - 1 && p->is_message_root && strcmp(p->section, par->section) == 0;
	if (!par->is_multipart || p->is_message_root)
		return 0;
	return section_ok(par->section, p->section, ++child_no[p->parent]);
}

int mime_info_deserialize(const void *data, size_t len, struct mime_info **info_r)
{
	struct reader r = { data, (const unsigned char *)data + len, 0 };
	*info_r = NULL;
	if (len < MIME_SERIAL_MAGIC_LEN || memcmp(data, MIME_SERIAL_MAGIC, MIME_SERIAL_MAGIC_LEN) != 0)
		return IX_ECORRUPT;
	r.p += MIME_SERIAL_MAGIC_LEN;
	struct mime_info *info = xcalloc(1, sizeof(*info));
	info->msg_size = (size_t)get_num(&r, SIZE_MAX);
	info->flags = (unsigned)get_num(&r, UINT_MAX);
	unsigned long long z = get_num(&r, ULLONG_MAX);
	info->date_unix = (z & 1) ? -(long long)(z >> 1) - 1 : (long long)(z >> 1);
	char **strs[INFO_STRINGS];
	info_strings(info, strs);
	for (size_t i = 0; i < INFO_STRINGS && !r.bad; i++)
		*strs[i] = get_str(&r, i < 3);
	size_t count = (size_t)get_num(&r, (unsigned long long)(r.end - r.p) / MIME_SERIAL_PART_MIN);
	if (!r.bad && count == 0)
		r.bad = 1;
	if (!r.bad) {
		info->parts = xcalloc(count, sizeof(*info->parts));
		unsigned long long *child_no = xcalloc(count, sizeof(*child_no));
		for (size_t i = 0; i < count && !r.bad; i++) {
			struct mime_part *p = &info->parts[i];
			info->part_count = i + 1;
			p->section = get_str(&r, 1);
			p->header_off = (size_t)get_num(&r, SIZE_MAX);
			p->header_len = (size_t)get_num(&r, SIZE_MAX);
			p->body_off = (size_t)get_num(&r, SIZE_MAX);
			p->body_len = (size_t)get_num(&r, SIZE_MAX);
			p->lines = (unsigned)get_num(&r, UINT_MAX);
			p->type = get_str(&r, 1);
			p->subtype = get_str(&r, 1);
			p->encoding = get_str(&r, 1);
			p->charset = get_str(&r, 0);
			p->depth = (unsigned)get_num(&r, UINT_MAX);
			p->parent = (size_t)get_num(&r, SIZE_MAX);
			unsigned bits = (unsigned)get_num(&r, PB_MULTIPART | PB_RFC822 | PB_ROOT);
			p->is_multipart = (bits & PB_MULTIPART) != 0;
			p->is_message_rfc822 = (bits & PB_RFC822) != 0;
			p->is_message_root = (bits & PB_ROOT) != 0;
			if (!r.bad && ((p->is_multipart && p->is_message_rfc822) || !part_ok(info, i, child_no)))
				r.bad = 1;
		}
		/* every multipart and rfc822 part has its first child right after it */
		for (size_t i = 0; i < count && !r.bad; i++)
			if ((info->parts[i].is_multipart || info->parts[i].is_message_rfc822) &&
			    (i + 1 >= count || info->parts[i + 1].parent != i))
				r.bad = 1;
		free(child_no);
	}
	if (r.bad || r.p != r.end) {
		mime_info_destroy(&info);
		return IX_ECORRUPT;
	}
	*info_r = info;
	return IX_OK;
}
