/* imap_fetch.c - FETCH attribute parsing (RFC 3501 fetch-att, RFC 3516 BINARY, RFC 7162 MODSEQ/CHANGEDSINCE) and
 * the writers for response strings, astrings, flag lists and compressed sequence sets. */
#include "transport/imap/imap_fetch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "transport/imap/mutf7.h"
#include "common/util.h"
#include "common/utf8.h"

static int fail(struct buf *error_r, int code, const char *msg)
{
	buf_append_str(error_r, msg);
	return code;
}

static bool prefix_ieq(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);
	return len == n && strncasecmp(s, word, n) == 0;
}

/* nz-number or number (allow_zero) <= UINT32_MAX without leading zeros, at s[*pos]. */
static bool num32(const char *s, size_t len, size_t *pos, bool allow_zero, uint32_t *v_r)
{
	size_t i = *pos;
	if (i >= len || s[i] < '0' || s[i] > '9')
		return false;
	if (s[i] == '0') {
		if (!allow_zero || (i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9'))
			return false;
		*pos = i + 1;
		*v_r = 0;
		return true;
	}
	uint64_t v = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > UINT32_MAX)
			return false;
		i++;
	}
	*pos = i;
	*v_r = (uint32_t)v;
	return true;
}

static bool field_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != ':';
}

/* "(" name *(SP name) ")" filling b->fields; names are field-name atoms or quoted strings. */
static int parse_fields(const char *s, size_t len, size_t *pos, struct imap_fetch_body *b, struct buf *error_r)
{
	size_t i = *pos;
	if (i >= len || s[i] != '(')
		return fail(error_r, IX_EINVAL, "Missing header field list");
	i++;
	size_t cap = 0;
	for (;;) {
		struct buf name = BUF_INIT;
		if (i < len && s[i] == '"') {
			i++;
			while (i < len && s[i] != '"') {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				buf_append_char(&name, s[i]);
				i++;
			}
			if (i >= len) {
				buf_free(&name);
				return fail(error_r, IX_EINVAL, "Unterminated header field name");
			}
			i++;
		} else {
			while (i < len && s[i] != ' ' && s[i] != ')') {
				buf_append_char(&name, s[i]);
				i++;
			}
		}
		bool ok = name.len > 0 && name.len <= IMAP_FETCH_MAX_FIELD_LEN;
		for (size_t k = 0; k < name.len && ok; k++)
			ok = field_char((unsigned char)name.data[k]);
		if (!ok) {
			buf_free(&name);
			return fail(error_r, IX_EINVAL, "Invalid header field name");
		}
		if (b->field_count == IMAP_FETCH_MAX_FIELDS) {
			buf_free(&name);
			return fail(error_r, IX_ELIMIT, "Too many header field names");
		}
		if (b->field_count == cap) {
			cap = cap ? cap * 2 : 8;
			b->fields = xrealloc(b->fields, cap * sizeof(*b->fields));
		}
		b->fields[b->field_count++] = buf_steal(&name);
		if (i < len && s[i] == ' ') {
			i++;
			continue;
		}
		if (i < len && s[i] == ')') {
			*pos = i + 1;
			return 0;
		}
		return fail(error_r, IX_EINVAL, "Invalid header field list");
	}
}

static const char *const text_names[] = {
	[IMAP_SECTION_WHOLE] = "",
	[IMAP_SECTION_HEADER] = "HEADER",
	[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
	[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
	[IMAP_SECTION_TEXT] = "TEXT",
	[IMAP_SECTION_MIME] = "MIME",
};

/* The section spec between '[' and ']'. */
static int parse_section(const char *s, size_t len, struct imap_fetch_body *b, struct buf *error_r)
{
	size_t i = 0, cap = 0;
	bool dot = false;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		uint32_t n;
		if (!num32(s, len, &i, false, &n))
			return fail(error_r, IX_EINVAL, "Invalid section part number");
		if (b->part_count == IMAP_FETCH_MAX_PART_DEPTH)
			return fail(error_r, IX_ELIMIT, "Section part nested too deeply");
		if (b->part_count == cap) {
			cap = cap ? cap * 2 : 4;
			b->parts = xrealloc(b->parts, cap * sizeof(*b->parts));
		}
		b->parts[b->part_count++] = n;
		dot = false;
		if (i < len && s[i] == '.') {
			i++;
			dot = true;
		} else {
			break;
		}
	}
	if ((dot && i == len) || (b->part_count > 0 && !dot && i < len))
		return fail(error_r, IX_EINVAL, "Invalid section");
	const char *t = s + i;
	size_t tlen = len - i;
	size_t sp = 0;
	while (sp < tlen && t[sp] != ' ')
		sp++;
	b->text = IMAP_SECTION_WHOLE;
	if (tlen == 0) {
		b->text = IMAP_SECTION_WHOLE;
	} else if (b->kind != IMAP_FETCH_KIND_BODY) {
		return fail(error_r, IX_EINVAL, "BINARY sections take part numbers only");
	} else if (prefix_ieq(t, tlen, "HEADER")) {
		b->text = IMAP_SECTION_HEADER;
	} else if (prefix_ieq(t, tlen, "TEXT")) {
		b->text = IMAP_SECTION_TEXT;
	} else if (prefix_ieq(t, tlen, "MIME")) {
		if (b->part_count == 0)
			return fail(error_r, IX_EINVAL, "MIME needs a section part");
		b->text = IMAP_SECTION_MIME;
	} else if (prefix_ieq(t, sp, "HEADER.FIELDS") || prefix_ieq(t, sp, "HEADER.FIELDS.NOT")) {
		b->text = sp == 13 ? IMAP_SECTION_HEADER_FIELDS : IMAP_SECTION_HEADER_FIELDS_NOT;
		if (sp == tlen)
			return fail(error_r, IX_EINVAL, "Missing header field list");
		size_t pos = sp + 1;
		int ret = parse_fields(t, tlen, &pos, b, error_r);
		if (ret != 0)
			return ret;
		if (pos != tlen)
			return fail(error_r, IX_EINVAL, "Invalid section");
	} else {
		return fail(error_r, IX_EINVAL, "Invalid section");
	}
	/* the normalized section for the response */
	struct buf sec = BUF_INIT;
	for (size_t k = 0; k < b->part_count; k++)
		buf_printf(&sec, "%s%u", k > 0 ? "." : "", b->parts[k]);
	if (b->text != IMAP_SECTION_WHOLE) {
		if (b->part_count > 0)
			buf_append_char(&sec, '.');
		buf_append_str(&sec, text_names[b->text]);
	}
	if (b->field_count > 0) {
		buf_append_str(&sec, " (");
		for (size_t k = 0; k < b->field_count; k++) {
			if (k > 0)
				buf_append_char(&sec, ' ');
			buf_append_str(&sec, b->fields[k]);
		}
		buf_append_char(&sec, ')');
	}
	b->section = buf_steal(&sec);
	return 0;
}

static void body_free(struct imap_fetch_body *b)
{
	free(b->parts);
	for (size_t i = 0; i < b->field_count; i++)
		free(b->fields[i]);
	free(b->fields);
	free(b->section);
	memset(b, 0, sizeof(*b));
}

static int parse_body_att(const char *s, size_t len, struct imap_fetch_body *b, struct buf *error_r)
{
	memset(b, 0, sizeof(*b));
	const char *lb = memchr(s, '[', len);
	size_t plen = (size_t)(lb - s);
	if (prefix_ieq(s, plen, "BODY")) {
		b->kind = IMAP_FETCH_KIND_BODY;
	} else if (prefix_ieq(s, plen, "BODY.PEEK")) {
		b->kind = IMAP_FETCH_KIND_BODY;
		b->peek = true;
	} else if (prefix_ieq(s, plen, "BINARY")) {
		b->kind = IMAP_FETCH_KIND_BINARY;
	} else if (prefix_ieq(s, plen, "BINARY.PEEK")) {
		b->kind = IMAP_FETCH_KIND_BINARY;
		b->peek = true;
	} else if (prefix_ieq(s, plen, "BINARY.SIZE")) {
		b->kind = IMAP_FETCH_KIND_BINARY_SIZE;
		b->peek = true;
	} else {
		return fail(error_r, IX_EINVAL, "Invalid FETCH item");
	}
	const char *rb = memchr(lb, ']', len - plen);
	if (rb == NULL)
		return fail(error_r, IX_EINVAL, "Missing ']' in FETCH item");
	int ret = parse_section(lb + 1, (size_t)(rb - lb - 1), b, error_r);
	if (ret != 0) {
		body_free(b);
		return ret;
	}
	size_t i = (size_t)(rb - s) + 1;
	if (i == len)
		return 0;
	if (b->kind == IMAP_FETCH_KIND_BINARY_SIZE) {
		body_free(b);
		return fail(error_r, IX_EINVAL, "BINARY.SIZE takes no partial range");
	}
	if (s[i] != '<')
		goto bad_partial;
	i++;
	if (!num32(s, len, &i, true, &b->offset) || i >= len || s[i] != '.')
		goto bad_partial;
	i++;
	if (!num32(s, len, &i, false, &b->length) || i + 1 != len || s[i] != '>')
		goto bad_partial;
	b->partial = true;
	return 0;
bad_partial:
	body_free(b);
	return fail(error_r, IX_EINVAL, "Invalid partial range in FETCH item");
}

static int parse_att(const struct imap_arg *a, struct imap_fetch_request *req, size_t *cap, struct buf *error_r)
{
	static const struct {
		const char *name;
		unsigned item;
	} simple[] = {
		{ "FLAGS", IMAP_FETCH_FLAGS },
		{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
		{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
		{ "BODY", IMAP_FETCH_BODY },
		{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
		{ "RFC822", IMAP_FETCH_RFC822 },
		{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
		{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
		{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
		{ "UID", IMAP_FETCH_UID },
		{ "MODSEQ", IMAP_FETCH_MODSEQ },
		{ "EMAILID", IMAP_FETCH_EMAILID },
		{ "THREADID", IMAP_FETCH_THREADID },
		{ "PREVIEW", IMAP_FETCH_PREVIEW },
		{ "SAVEDATE", IMAP_FETCH_SAVEDATE },
	};
	if (a->type != IMAP_ARG_ATOM)
		return fail(error_r, IX_EINVAL, "Invalid FETCH item");
	if (memchr(a->str, '[', a->len) == NULL) {
		for (size_t i = 0; i < IX_ARRAY_LEN(simple); i++) {
			if (prefix_ieq(a->str, a->len, simple[i].name)) {
				req->items |= simple[i].item;
				return 0;
			}
		}
		return fail(error_r, IX_EINVAL, "Invalid FETCH item");
	}
	if (req->body_count == IMAP_FETCH_MAX_BODIES)
		return fail(error_r, IX_ELIMIT, "Too many body sections in FETCH");
	struct imap_fetch_body b;
	int ret = parse_body_att(a->str, a->len, &b, error_r);
	if (ret != 0)
		return ret;
	if (req->body_count == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		req->bodies = xrealloc(req->bodies, *cap * sizeof(*req->bodies));
	}
	req->bodies[req->body_count++] = b;
	return 0;
}

/* Whether a is PREVIEW's modifier list: "(LAZY)" (RFC 8970 defines no other modifier). */
static bool preview_modifiers(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_LIST && a->list_count == 1 && imap_arg_atom_equals(&a->list[0], "LAZY");
}

static int parse_modifiers(const struct imap_arg *a, struct imap_fetch_request *req, struct buf *error_r)
{
	if (a->type != IMAP_ARG_LIST || a->list_count == 0)
		return fail(error_r, IX_EINVAL, "Invalid FETCH modifiers");
	for (size_t i = 0; i < a->list_count; i++) {
		const struct imap_arg *m = &a->list[i];
		if (imap_arg_atom_equals(m, "CHANGEDSINCE") && !req->changedsince) {
			uint64_t v;
			if (i + 1 >= a->list_count || !imap_arg_get_number(&m[1], INT64_MAX, &v) || v == 0)
				return fail(error_r, IX_EINVAL, "Invalid CHANGEDSINCE value");
			req->changedsince = true;
			req->changedsince_modseq = v;
			req->items |= IMAP_FETCH_MODSEQ;
			i++;
		} else if (imap_arg_atom_equals(m, "VANISHED") && !req->vanished) {
			req->vanished = true;
		} else {
			return fail(error_r, IX_EINVAL, "Invalid FETCH modifier");
		}
	}
	if (req->vanished && !req->changedsince)
		return fail(error_r, IX_EINVAL, "VANISHED needs CHANGEDSINCE");
	return 0;
}

int imap_fetch_parse(const struct imap_arg *args, size_t count, struct imap_fetch_request *req_r, struct buf *error_r)
{
	memset(req_r, 0, sizeof(*req_r));
	if (count == 0)
		return fail(error_r, IX_EINVAL, "Missing FETCH items");
	if (count > 2)
		return fail(error_r, IX_EINVAL, "Too many FETCH arguments");
	const struct imap_arg *a = &args[0];
	size_t cap = 0;
	int ret = 0;
	if (imap_arg_atom_equals(a, "ALL")) {
		req_r->items = IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
			       IMAP_FETCH_ENVELOPE;
	} else if (imap_arg_atom_equals(a, "FAST")) {
		req_r->items = IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE;
	} else if (imap_arg_atom_equals(a, "FULL")) {
		req_r->items = IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
			       IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODY;
	} else if (a->type == IMAP_ARG_LIST) {
		if (a->list_count == 0)
			ret = fail(error_r, IX_EINVAL, "Empty FETCH item list");
		for (size_t i = 0; i < a->list_count && ret == 0; i++) {
			ret = parse_att(&a->list[i], req_r, &cap, error_r);
			if (ret == 0 && imap_arg_atom_equals(&a->list[i], "PREVIEW") && i + 1 < a->list_count &&
			    a->list[i + 1].type == IMAP_ARG_LIST) {
				if (!preview_modifiers(&a->list[++i]))
					ret = fail(error_r, IX_EINVAL, "Invalid PREVIEW modifier");
				req_r->preview_lazy = true;
			}
		}
	} else {
		ret = parse_att(a, req_r, &cap, error_r);
	}
	if (ret == 0 && count == 2 && imap_arg_atom_equals(a, "PREVIEW") && preview_modifiers(&args[1]))
		req_r->preview_lazy = true;
	else if (ret == 0 && count == 2)
		ret = parse_modifiers(&args[1], req_r, error_r);
	if (ret != 0)
		imap_fetch_request_free(req_r);
	return ret;
}

void imap_fetch_request_free(struct imap_fetch_request *req)
{
	for (size_t i = 0; i < req->body_count; i++)
		body_free(&req->bodies[i]);
	free(req->bodies);
	memset(req, 0, sizeof(*req));
}

void imap_fetch_body_name(const struct imap_fetch_body *body, struct buf *out)
{
	static const char *const kinds[] = {
		[IMAP_FETCH_KIND_BODY] = "BODY",
		[IMAP_FETCH_KIND_BINARY] = "BINARY",
		[IMAP_FETCH_KIND_BINARY_SIZE] = "BINARY.SIZE",
	};
	buf_printf(out, "%s[%s]", kinds[body->kind], body->section != NULL ? body->section : "");
	if (body->partial)
		buf_printf(out, "<%u>", body->offset);
}

/* ---- response writing ---- */

void imap_write_string(struct buf *out, const void *data, size_t len, unsigned flags)
{
	const unsigned char *s = data;
	bool literal = len > IMAP_QUOTED_MAX, nul = false, high = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c == '\0') {
			nul = true;
			literal = true;
		} else if (c == '\r' || c == '\n') {
			literal = true;
		} else if (c >= 0x80) {
			high = true;
		}
	}
	/* 8-bit in a quoted string only under UTF8=ACCEPT, and then only valid UTF-8 (RFC 6855) */
	if (high && !literal && ((flags & IMAP_WRITE_UTF8) == 0 || !utf8_valid(data, len)))
		literal = true;
	if (!literal) {
		buf_append_quoted(out, (const char *)s, len);
		return;
	}
	if (nul && (flags & IMAP_WRITE_BINARY) != 0) {
		buf_printf(out, "~{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_printf(out, "{%zu}\r\n", len);
	if (!nul) {
		buf_append(out, s, len);
		return;
	}
	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++)
		buf_append_char(out, s[i] == '\0' ? (char)0x80 : (char)s[i]);
}

void imap_write_nstring(struct buf *out, const void *data, size_t len, unsigned flags)
{
	if (data == NULL)
		buf_append_str(out, "NIL");
	else
		imap_write_string(out, data, len, flags);
}

static bool astring_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
}

void imap_write_astring(struct buf *out, const void *data, size_t len, unsigned flags)
{
	const unsigned char *s = data;
	bool atom = len > 0 && len <= IMAP_QUOTED_MAX && !(len == 3 && strncasecmp(data, "NIL", 3) == 0);
	for (size_t i = 0; i < len && atom; i++)
		atom = astring_char(s[i]);
	if (atom)
		buf_append(out, s, len);
	else
		imap_write_string(out, data, len, flags);
}

void imap_write_flags(struct buf *out, unsigned system_flags, const char *const *keywords, size_t keyword_count)
{
	static const struct {
		unsigned bit;
		const char *name;
	} sys[] = {
		{ IMAP_FLAG_ANSWERED, "\\Answered" }, { IMAP_FLAG_FLAGGED, "\\Flagged" },
		{ IMAP_FLAG_DELETED, "\\Deleted" },   { IMAP_FLAG_SEEN, "\\Seen" },
		{ IMAP_FLAG_DRAFT, "\\Draft" },       { IMAP_FLAG_RECENT, "\\Recent" },
	};
	bool first = true;
	buf_append_char(out, '(');
	for (size_t i = 0; i < IX_ARRAY_LEN(sys); i++) {
		if ((system_flags & sys[i].bit) == 0)
			continue;
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, sys[i].name);
		first = false;
	}
	for (size_t i = 0; i < keyword_count; i++) {
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, keywords[i]);
		first = false;
	}
	buf_append_char(out, ')');
}

static void put_range(struct buf *out, uint32_t lo, uint32_t hi, bool *first)
{
	if (!*first)
		buf_append_char(out, ',');
	*first = false;
	if (lo == hi)
		buf_printf(out, "%u", lo);
	else
		buf_printf(out, "%u:%u", lo, hi);
}

void imap_write_seqset(struct buf *out, const uint32_t *numbers, size_t n)
{
	if (n == 0)
		return;
	bool first = true;
	uint32_t lo = numbers[0], hi = numbers[0];
	for (size_t i = 1; i < n; i++) {
		uint32_t v = numbers[i];
		if (v == hi)
			continue;
		if (hi != UINT32_MAX && v == hi + 1) {
			hi = v;
			continue;
		}
		put_range(out, lo, hi, &first);
		lo = hi = v;
	}
	put_range(out, lo, hi, &first);
}
