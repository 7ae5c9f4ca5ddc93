/* mime.c - the MIME tree parser (RFC 5322, 2045, 2046) and the IMAP ENVELOPE / BODY / BODYSTRUCTURE writers
 * (RFC 3501 7.4.2), plus section lookup. Pure: works on the bytes it is given, no I/O, no globals. */
#include "store/mime_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"

/* The ENVELOPE fields, in ENVELOPE order, plus References (for mime_info only). */
enum env_field {
	EF_DATE,
	EF_SUBJECT,
	EF_FROM,
	EF_SENDER,
	EF_REPLY_TO,
	EF_TO,
	EF_CC,
	EF_BCC,
	EF_IN_REPLY_TO,
	EF_MESSAGE_ID,
	EF_REFERENCES,
	EF_COUNT
};
static const char *const env_names[EF_COUNT] = { "date", "subject", "from",        "sender",     "reply-to",  "to",
						 "cc",   "bcc",     "in-reply-to", "message-id", "references" };

struct node {
	struct mime_part p;
	struct mime_param *params; /* Content-Type parameters */
	size_t nparams;
	struct mime_param *dparams; /* Content-Disposition parameters */
	size_t ndparams;
	char *enc_raw; /* Content-Transfer-Encoding as written, NULL when absent */
	char *id, *desc, *disp, *lang, *loc, *md5;
	char *envelope; /* message roots only */
};

struct parser {
	const char *msg;
	size_t len;
	const struct mime_limits *lim;
	struct node *nodes;
	size_t count, cap;
	unsigned flags;
	struct buf *error_r;
	struct mime_info *info;
};

enum entity_kind { ENTITY_PART, ENTITY_MESSAGE };

void mime_limits_default(struct mime_limits *lim_r)
{
	lim_r->max_header_bytes = MIME_DEFAULT_MAX_HEADER_BYTES;
	lim_r->max_depth = MIME_DEFAULT_MAX_DEPTH;
	lim_r->max_parts = MIME_DEFAULT_MAX_PARTS;
	lim_r->max_line = MIME_DEFAULT_MAX_LINE;
}

static int limit_error(struct parser *ps, const char *what, unsigned long long v)
{
	if (ps->error_r != NULL)
		buf_printf(ps->error_r, "%s (limit %llu)", what, v);
	return IX_ELIMIT;
}

static int is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* Finds the end of the header block starting at start. Returns IX_OK or IX_ELIMIT. */
static int scan_header(struct parser *ps, size_t start, size_t end, size_t *header_len_r, size_t *body_off_r)
{
	const char *m = ps->msg;
	size_t p = start;
	while (p < end) {
		if (p - start > ps->lim->max_header_bytes)
			return limit_error(ps, "header block too large", (unsigned long long)ps->lim->max_header_bytes);
		if (m[p] == '\n' || (m[p] == '\r' && p + 1 < end && m[p + 1] == '\n')) {
			p += m[p] == '\n' ? 1 : 2;
			*header_len_r = p - start;
			*body_off_r = p;
			goto check;
		}
		const char *nl = memchr(m + p, '\n', end - p);
		size_t le = nl ? (size_t)(nl - m) + 1 : end;
		if (m[p] != ' ' && m[p] != '\t') {
			size_t q = p;
			while (q < le && is_ftext((unsigned char)m[q]))
				q++;
			size_t name_end = q;
			while (q < le && (m[q] == ' ' || m[q] == '\t'))
				q++;
			if (p == start && le - p > 5 && memcmp(m + p, "From ", 5) == 0) {
				/* an mbox "From " separator line before the header: skip it */
				ps->flags |= MIME_F_BAD_HEADER;
			} else if (name_end == p || q == le || m[q] != ':') {
				/* not a header field: the body starts here */
				ps->flags |= MIME_F_BAD_HEADER;
				*header_len_r = p - start;
				*body_off_r = p;
				goto check;
			}
		}
		for (size_t i = p; i < le; i++) {
			unsigned char c = (unsigned char)m[i];
			if (c >= 0x80)
				ps->flags |= MIME_F_8BIT_HEADER;
			else if (c == 0)
				ps->flags |= MIME_F_NUL;
		}
		p = le;
	}
	if (end > start)
		ps->flags |= MIME_F_TRUNCATED;
	*header_len_r = end - start;
	*body_off_r = end;
check:
	if (*header_len_r > ps->lim->max_header_bytes)
		return limit_error(ps, "header block too large", (unsigned long long)ps->lim->max_header_bytes);
	return IX_OK;
}

/* Lines as IMAP servers count them: the number of LFs (a last line without LF, such as a part's last line before
 * its boundary, does not count). */
static unsigned count_lines(const char *s, size_t len)
{
	unsigned n = 0;
	const char *p = s, *end = s + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		n++;
		p = nl + 1;
	}
	return n;
}

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return d;
}

/* ---- ENVELOPE ---- */

static char *make_envelope(struct parser *ps, const char *const *raw, const size_t *raw_len)
{
	struct buf b = BUF_INIT;
	char *v[EF_COUNT] = { NULL };
	for (int i = 0; i < EF_MESSAGE_ID + 1; i++)
		if (raw[i] != NULL)
			v[i] = mime_unfold(raw[i], raw_len[i]);
	struct buf from = BUF_INIT;
	size_t nfrom = 0;
	if (v[EF_FROM] != NULL)
		nfrom = mime_addr_list(&from, v[EF_FROM], &ps->flags);
	else
		buf_append_str(&from, "NIL");
	(void)nfrom;
	buf_append_char(&b, '(');
	mime_imap_nstring(&b, v[EF_DATE]);
	buf_append_char(&b, ' ');
	mime_imap_nstring(&b, v[EF_SUBJECT]);
	buf_append_char(&b, ' ');
	buf_append(&b, from.data, from.len);
	for (int i = EF_SENDER; i <= EF_BCC; i++) {
		buf_append_char(&b, ' ');
		size_t mark = b.len;
		size_t n = 0;
		if (v[i] != NULL)
			n = mime_addr_list(&b, v[i], &ps->flags);
		if (n == 0) {
			b.len = mark;
			if (i == EF_SENDER || i == EF_REPLY_TO) /* RFC 3501: default to From */
				buf_append(&b, from.data, from.len);
			else
				buf_append_str(&b, "NIL");
		}
	}
	buf_append_char(&b, ' ');
	mime_imap_nstring(&b, v[EF_IN_REPLY_TO]);
	buf_append_char(&b, ' ');
	mime_imap_nstring(&b, v[EF_MESSAGE_ID]);
	buf_append_char(&b, ')');
	buf_free(&from);
	for (int i = 0; i < EF_COUNT; i++)
		free(v[i]);
	return buf_steal(&b);
}

/* Fills the decoded common fields of mime_info from the top-level header. */
static void fill_info_fields(struct parser *ps, const char *const *raw, const size_t *raw_len)
{
	char **dst[EF_COUNT] = { &ps->info->date,        &ps->info->subject,    &ps->info->from,      &ps->info->sender,
				 &ps->info->reply_to,    &ps->info->to,         &ps->info->cc,        &ps->info->bcc,
				 &ps->info->in_reply_to, &ps->info->message_id, &ps->info->references };
	for (int i = 0; i < EF_COUNT; i++) {
		if (raw[i] == NULL)
			continue;
		char *u = mime_unfold(raw[i], raw_len[i]);
		struct buf d = BUF_INIT;
		mime_decode_words(u, strlen(u), &d);
		mime_utf8_repair(&d);
		*dst[i] = buf_steal(&d);
		free(u);
	}
	ps->info->date_unix = -1;
	if (ps->info->date != NULL) {
		long long t;
		if (mime_parse_date(ps->info->date, &t, NULL) == 0)
			ps->info->date_unix = t;
		else
			ps->flags |= MIME_F_BAD_DATE;
	}
}

/* ---- the tree ---- */

static size_t node_add(struct parser *ps)
{
	if (ps->count == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 8;
		ps->nodes = xrealloc(ps->nodes, ps->cap * sizeof(*ps->nodes));
	}
	memset(&ps->nodes[ps->count], 0, sizeof(ps->nodes[0]));
	return ps->count++;
}

static char *content_language(const char *v)
{
	/* comma-separated tags; returns them space-separated as IMAP strings, "" for none */
	struct buf b = BUF_INIT;
	const char *p = v;
	unsigned n = 0;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '(') { /* comment */
			int level = 0;
			while (*p) {
				if (*p == '(')
					level++;
				else if (*p == ')' && --level == 0) {
					p++;
					break;
				}
				p++;
			}
			continue;
		}
		const char *s = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '(')
			p++;
		if (p > s) {
			if (n++ > 0)
				buf_append_char(&b, ' ');
			mime_imap_string(&b, s, (size_t)(p - s));
		}
	}
	if (n == 0) {
		buf_free(&b);
		return NULL;
	}
	if (n > 1) {
		struct buf l = BUF_INIT;
		buf_printf(&l, "(%s)", buf_cstr(&b));
		buf_free(&b);
		return buf_steal(&l);
	}
	return buf_steal(&b);
}

static int parse_entity(struct parser *ps, size_t start, size_t end, size_t parent, unsigned depth,
			enum entity_kind kind, int digest_child, const char *section);

/* RFC 2045 5.2: text without a charset parameter is US-ASCII; IMAP clients are told so. */
static void default_charset(struct node *nd)
{
	if (nd->p.charset != NULL || !mime_eq(nd->p.type, strlen(nd->p.type), "text") || nd->nparams >= MIME_MAX_PARAMS)
		return;
	nd->params = xrealloc(nd->params, (nd->nparams + 1) * sizeof(*nd->params));
	nd->params[nd->nparams].name = xstrdup("charset");
	nd->params[nd->nparams].value = xstrdup("us-ascii");
	nd->nparams++;
	nd->p.charset = xstrdup("us-ascii");
}

static int parse_multipart(struct parser *ps, size_t idx, const char *boundary)
{
	const char *m = ps->msg;
	size_t blen = strlen(boundary);
	size_t b = ps->nodes[idx].p.body_off, e = b + ps->nodes[idx].p.body_len;
	int digest = mime_eq(ps->nodes[idx].p.subtype, strlen(ps->nodes[idx].p.subtype), "digest");
	unsigned depth = ps->nodes[idx].p.depth;
	char *section = xstrdup(ps->nodes[idx].p.section);
	size_t part_start = SIZE_MAX;
	unsigned n = 0;
	int closed = 0, ret = IX_OK;
	size_t p = b;
	while (p < e && ret == IX_OK) {
		const char *nl = memchr(m + p, '\n', e - p);
		size_t next = nl ? (size_t)(nl - m) + 1 : e;
		size_t lce = nl ? (size_t)(nl - m) : e;
		if (lce > p && m[lce - 1] == '\r')
			lce--;
		if (lce - p >= 2 + blen && m[p] == '-' && m[p + 1] == '-' && memcmp(m + p + 2, boundary, blen) == 0) {
			size_t r = p + 2 + blen;
			int is_close = r + 2 <= lce && m[r] == '-' && m[r + 1] == '-';
			int is_delim = is_close;
			if (!is_close) {
				is_delim = 1;
				for (size_t i = r; i < lce; i++)
					if (m[i] != ' ' && m[i] != '\t')
						is_delim = 0;
			}
			if (is_delim) {
				if (part_start != SIZE_MAX) {
					size_t pe = p;
					if (pe > part_start && m[pe - 1] == '\n')
						pe--;
					if (pe > part_start && m[pe - 1] == '\r')
						pe--;
					char *sec = section[0] ? xasprintf("%s.%u", section, n + 1)
							       : xasprintf("%u", n + 1);
					ret = parse_entity(ps, part_start, pe, idx, depth + 1, ENTITY_PART, digest,
							   sec);
					free(sec);
					n++;
				}
				if (is_close) {
					closed = 1;
					break;
				}
				part_start = next;
			}
		}
		p = next;
	}
	if (ret == IX_OK && !closed) {
		ps->flags |= MIME_F_NO_CLOSE_BOUNDARY;
		if (part_start != SIZE_MAX) {
			char *sec = section[0] ? xasprintf("%s.%u", section, n + 1) : xasprintf("%u", n + 1);
			ret = parse_entity(ps, part_start, e, idx, depth + 1, ENTITY_PART, digest, sec);
			free(sec);
			n++;
		}
	}
	if (ret == IX_OK && n == 0) {
		/* BODYSTRUCTURE needs one part at least: an empty one at the end */
		ps->flags |= MIME_F_NO_PARTS;
		char *sec = section[0] ? xasprintf("%s.1", section) : xstrdup("1");
		ret = parse_entity(ps, e, e, idx, depth + 1, ENTITY_PART, digest, sec);
		free(sec);
	}
	free(section);
	return ret;
}

static int parse_entity(struct parser *ps, size_t start, size_t end, size_t parent, unsigned depth,
			enum entity_kind kind, int digest_child, const char *section)
{
	if (depth > ps->lim->max_depth)
		return limit_error(ps, "MIME parts nested too deeply", ps->lim->max_depth);
	if (ps->count >= ps->lim->max_parts)
		return limit_error(ps, "too many MIME parts", ps->lim->max_parts);
	size_t idx = node_add(ps);
	struct node *nd = &ps->nodes[idx];
	nd->p.section = xstrdup(section);
	nd->p.depth = depth;
	nd->p.parent = parent;
	nd->p.is_message_root = kind == ENTITY_MESSAGE;
	nd->p.header_off = start;
	size_t header_len, body_off;
	int ret = scan_header(ps, start, end, &header_len, &body_off);
	if (ret != IX_OK)
		return ret;
	nd->p.header_len = header_len;
	nd->p.body_off = body_off;
	nd->p.body_len = end - body_off;
	nd->p.lines = count_lines(ps->msg + body_off, end - body_off);

	const char *env_raw[EF_COUNT] = { NULL };
	size_t env_len[EF_COUNT] = { 0 };
	char *ctype = NULL, *cte = NULL, *cdisp = NULL;
	struct mime_hdr_iter it = { ps->msg + start, ps->msg + start + header_len };
	const char *name, *value, *field;
	size_t name_len, value_len, field_len;
	while (mime_hdr_next(&it, &name, &name_len, &value, &value_len, &field, &field_len)) {
		if (name_len > 8 && mime_eq(name, 8, "content-")) {
			const char *sub = name + 8;
			size_t sl = name_len - 8;
			char **dst = NULL;
			if (mime_eq(sub, sl, "type"))
				dst = &ctype;
			else if (mime_eq(sub, sl, "transfer-encoding"))
				dst = &cte;
			else if (mime_eq(sub, sl, "disposition"))
				dst = &cdisp;
			else if (mime_eq(sub, sl, "id"))
				dst = &nd->id;
			else if (mime_eq(sub, sl, "description"))
				dst = &nd->desc;
			else if (mime_eq(sub, sl, "location"))
				dst = &nd->loc;
			else if (mime_eq(sub, sl, "language"))
				dst = &nd->lang;
			else if (mime_eq(sub, sl, "md5"))
				dst = &nd->md5;
			if (dst != NULL && *dst == NULL)
				*dst = mime_unfold(value, value_len);
			continue;
		}
		if (kind != ENTITY_MESSAGE)
			continue;
		for (int i = 0; i < EF_COUNT; i++)
			if (env_raw[i] == NULL && mime_eq(name, name_len, env_names[i])) {
				env_raw[i] = value;
				env_len[i] = value_len;
			}
	}
	if (kind == ENTITY_MESSAGE) {
		nd->envelope = make_envelope(ps, env_raw, env_len);
		if (idx == 0)
			fill_info_fields(ps, env_raw, env_len);
	}
	if (nd->lang != NULL) {
		char *l = content_language(nd->lang);
		free(nd->lang);
		nd->lang = l;
	}
	/* Content-Type */
	char *type = NULL, *subtype = NULL;
	if (ctype != NULL)
		nd->nparams = mime_parse_ctype(ctype, 1, &type, &subtype, &nd->params, &ps->flags);
	if (type == NULL) {
		mime_params_free(nd->params, nd->nparams);
		nd->nparams = 1;
		nd->params = xcalloc(1, sizeof(*nd->params));
		if (digest_child) {
			type = xstrdup("message");
			subtype = xstrdup("rfc822");
			nd->nparams = 0;
			free(nd->params);
			nd->params = NULL;
		} else {
			type = xstrdup("text");
			subtype = xstrdup("plain");
			nd->params[0].name = xstrdup("charset");
			nd->params[0].value = xstrdup("us-ascii");
		}
	}
	nd->p.type = type;
	nd->p.subtype = subtype;
	nd->p.charset = mime_param_get(nd->params, nd->nparams, "charset");
	default_charset(nd);
	if (cte != NULL) {
		/* a token, possibly with comments around it */
		char *dummy = NULL;
		struct mime_param *junk = NULL;
		size_t njunk = mime_parse_ctype(cte, 0, &nd->enc_raw, &dummy, &junk, &ps->flags);
		mime_params_free(junk, njunk);
		free(cte);
	}
	nd->p.encoding = lower_dup(nd->enc_raw != NULL ? nd->enc_raw : "7bit");
	if (cdisp != NULL) {
		char *dummy = NULL;
		nd->ndparams = mime_parse_ctype(cdisp, 0, &nd->disp, &dummy, &nd->dparams, &ps->flags);
		free(cdisp);
	}
	free(ctype);

	if (mime_eq(type, strlen(type), "multipart")) {
		char *boundary = mime_param_get(nd->params, nd->nparams, "boundary");
		if (boundary == NULL || boundary[0] == '\0' || strlen(boundary) > MIME_MAX_BOUNDARY) {
			ps->flags |= MIME_F_NO_BOUNDARY;
			free(nd->p.type);
			free(nd->p.subtype);
			nd->p.type = xstrdup("text");
			nd->p.subtype = xstrdup("plain");
			default_charset(nd);
		} else {
			nd->p.is_multipart = 1;
			ret = parse_multipart(ps, idx, boundary);
		}
		free(boundary);
		return ret;
	}
	if (mime_eq(type, strlen(type), "message") && mime_eq(subtype, strlen(subtype), "rfc822")) {
		nd->p.is_message_rfc822 = 1;
		if (strcmp(nd->p.encoding, "7bit") != 0 && strcmp(nd->p.encoding, "8bit") != 0 &&
		    strcmp(nd->p.encoding, "binary") != 0)
			ps->flags |= MIME_F_BAD_ENCODING;
		char *sec = xstrdup(section);
		ret = parse_entity(ps, body_off, end, idx, depth + 1, ENTITY_MESSAGE, 0, sec);
		free(sec);
	}
	return ret;
}

/* ---- BODY / BODYSTRUCTURE ---- */

static void put_params(struct buf *b, const struct mime_param *params, size_t n)
{
	if (n == 0) {
		buf_append_str(b, "NIL");
		return;
	}
	buf_append_char(b, '(');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append_char(b, ' ');
		mime_imap_nstring(b, params[i].name);
		buf_append_char(b, ' ');
		mime_imap_nstring(b, params[i].value);
	}
	buf_append_char(b, ')');
}

static void put_ext_common(struct buf *b, const struct node *nd)
{
	/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
	buf_append_char(b, ' ');
	if (nd->disp != NULL) {
		buf_append_char(b, '(');
		mime_imap_nstring(b, nd->disp);
		buf_append_char(b, ' ');
		put_params(b, nd->dparams, nd->ndparams);
		buf_append_char(b, ')');
	} else
		buf_append_str(b, "NIL");
	buf_append_char(b, ' ');
	if (nd->lang != NULL)
		buf_append_str(b, nd->lang); /* already IMAP syntax */
	else
		buf_append_str(b, "NIL");
	buf_append_char(b, ' ');
	mime_imap_nstring(b, nd->loc);
}

static void write_body(const struct parser *ps, size_t idx, int ext, struct buf *b)
{
	const struct node *nd = &ps->nodes[idx];
	buf_append_char(b, '(');
	if (nd->p.is_multipart) {
		for (size_t j = idx + 1; j < ps->count && ps->nodes[j].p.depth > nd->p.depth; j++)
			if (ps->nodes[j].p.parent == idx)
				write_body(ps, j, ext, b);
		buf_append_char(b, ' ');
		mime_imap_nstring(b, nd->p.subtype);
		if (ext) {
			buf_append_char(b, ' ');
			put_params(b, nd->params, nd->nparams);
			put_ext_common(b, nd);
		}
		buf_append_char(b, ')');
		return;
	}
	mime_imap_nstring(b, nd->p.type);
	buf_append_char(b, ' ');
	mime_imap_nstring(b, nd->p.subtype);
	buf_append_char(b, ' ');
	put_params(b, nd->params, nd->nparams);
	buf_append_char(b, ' ');
	mime_imap_nstring(b, nd->id);
	buf_append_char(b, ' ');
	mime_imap_nstring(b, nd->desc);
	buf_append_char(b, ' ');
	mime_imap_nstring(b, nd->enc_raw ? nd->enc_raw : "7bit");
	buf_printf(b, " %zu", nd->p.body_len);
	if (nd->p.is_message_rfc822) {
		buf_append_char(b, ' ');
		buf_append_str(b, ps->nodes[idx + 1].envelope);
		buf_append_char(b, ' ');
		write_body(ps, idx + 1, ext, b);
		buf_printf(b, " %u", nd->p.lines);
	} else if (mime_eq(nd->p.type, strlen(nd->p.type), "text"))
		buf_printf(b, " %u", nd->p.lines);
	if (ext) {
		buf_append_char(b, ' ');
		mime_imap_nstring(b, nd->md5);
		put_ext_common(b, nd);
	}
	buf_append_char(b, ')');
}

/* ---- entry points ---- */

static void free_node(struct node *nd)
{
	mime_params_free(nd->params, nd->nparams);
	mime_params_free(nd->dparams, nd->ndparams);
	free(nd->enc_raw);
	free(nd->id);
	free(nd->desc);
	free(nd->disp);
	free(nd->lang);
	free(nd->loc);
	free(nd->md5);
	free(nd->envelope);
}

static void free_part(struct mime_part *p)
{
	free(p->section);
	free(p->type);
	free(p->subtype);
	free(p->encoding);
	free(p->charset);
}

static void scan_lines(struct parser *ps)
{
	const char *m = ps->msg, *p = m, *end = m + ps->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t len = (size_t)(le - p);
		if (nl != NULL && (nl == m || nl[-1] != '\r'))
			ps->flags |= MIME_F_BARE_LF;
		if (len > 0 && le[-1] == '\r')
			len--;
		if (len > ps->lim->max_line)
			ps->flags |= MIME_F_LONG_LINE;
		p = nl ? nl + 1 : end;
	}
}

int mime_parse(const char *msg, size_t len, const struct mime_limits *lim, struct mime_info **info_r,
	       struct buf *error_r)
{
	struct mime_limits defaults;
	if (lim == NULL) {
		mime_limits_default(&defaults);
		lim = &defaults;
	}
	struct parser ps = { msg, len, lim, NULL, 0, 0, 0, error_r, NULL };
	ps.info = xcalloc(1, sizeof(*ps.info));
	ps.info->date_unix = -1;
	*info_r = NULL;
	scan_lines(&ps);
	int ret = parse_entity(&ps, 0, len, 0, 0, ENTITY_MESSAGE, 0, "");
	struct mime_info *info = ps.info;
	if (ret == IX_OK) {
		struct buf b = BUF_INIT;
		write_body(&ps, 0, 1, &b);
		info->bodystructure = buf_steal(&b);
		write_body(&ps, 0, 0, &b);
		info->body = buf_steal(&b);
		info->envelope = xstrdup(ps.nodes[0].envelope);
		info->msg_size = len;
		info->flags = ps.flags;
		info->part_count = ps.count;
		info->parts = xcalloc(ps.count, sizeof(*info->parts));
	}
	for (size_t i = 0; i < ps.count; i++) {
		if (ret == IX_OK)
			info->parts[i] = ps.nodes[i].p;
		else
			free_part(&ps.nodes[i].p);
		free_node(&ps.nodes[i]);
	}
	free(ps.nodes);
	if (ret != IX_OK) {
		mime_info_destroy(&info);
		return ret;
	}
	*info_r = info;
	return IX_OK;
}

void mime_info_destroy(struct mime_info **infop)
{
	struct mime_info *info = *infop;
	if (info == NULL)
		return;
	*infop = NULL;
	for (size_t i = 0; i < info->part_count; i++)
		free_part(&info->parts[i]);
	free(info->parts);
	char *strs[] = { info->envelope,   info->bodystructure, info->body,
			 info->subject,    info->from,          info->to,
			 info->cc,         info->bcc,           info->date,
			 info->message_id, info->in_reply_to,   info->references,
			 info->reply_to,   info->sender };
	for (size_t i = 0; i < IX_ARRAY_LEN(strs); i++)
		free(strs[i]);
	free(info);
}

/* ---- sections ---- */

/* Walks a section's numbers; stops at the first character that is not part of them (*rest_r). */
static int walk_section(const struct mime_info *info, const char *s, size_t *idx_r, int *as_part_r, const char **rest_r)
{
	size_t cur = 0;
	int as_part = 0;
	if (strlen(s) > MIME_MAX_SECTION)
		return -1;
	while (*s >= '1' && *s <= '9') {
		unsigned long n = 0;
		while (*s >= '0' && *s <= '9') {
			if (n > 1000000)
				return -1;
			n = n * 10 + (unsigned long)(*s++ - '0');
		}
		if (*s == '.')
			s++;
		else if (*s != '\0')
			return -1;
		for (;;) {
			const struct mime_part *p = &info->parts[cur];
			if (as_part && p->is_message_rfc822 && cur + 1 < info->part_count) {
				cur++;
				as_part = 0;
				continue;
			}
			if (p->is_multipart) {
				unsigned long k = 0;
				size_t j;
				for (j = cur + 1; j < info->part_count && info->parts[j].depth > p->depth; j++)
					if (info->parts[j].parent == cur && ++k == n)
						break;
				if (k != n || j >= info->part_count)
					return -1;
				cur = j;
			} else if (!as_part && n == 1) {
				/* a non-multipart message: part 1 is its body */
			} else
				return -1;
			as_part = 1;
			break;
		}
	}
	*idx_r = cur;
	*as_part_r = as_part;
	*rest_r = s;
	return 0;
}

const struct mime_part *mime_find_part(const struct mime_info *info, const char *section)
{
	size_t idx;
	int as_part;
	const char *rest;
	if (walk_section(info, section, &idx, &as_part, &rest) < 0 || *rest != '\0')
		return NULL;
	if (section[0] != '\0' && section[strlen(section) - 1] == '.')
		return NULL;
	return &info->parts[idx];
}

int mime_section_range(const struct mime_info *info, const char *spec, size_t *off_r, size_t *len_r)
{
	size_t idx;
	int as_part;
	const char *rest;
	if (walk_section(info, spec, &idx, &as_part, &rest) < 0)
		return IX_ENOTFOUND;
	const struct mime_part *p = &info->parts[idx];
	if (*rest == '\0') {
		if (spec[0] != '\0' && spec[strlen(spec) - 1] == '.')
			return IX_ENOTFOUND;
		if (!as_part) { /* the whole message */
			*off_r = 0;
			*len_r = info->msg_size;
		} else {
			*off_r = p->body_off;
			*len_r = p->body_len;
		}
		return IX_OK;
	}
	if (strcasecmp(rest, "MIME") == 0) {
		if (!as_part)
			return IX_ENOTFOUND;
		*off_r = p->header_off;
		*len_r = p->header_len;
		return IX_OK;
	}
	int header = strcasecmp(rest, "HEADER") == 0;
	if (!header && strcasecmp(rest, "TEXT") != 0)
		return IX_ENOTFOUND;
	if (as_part) {
		if (!p->is_message_rfc822 || idx + 1 >= info->part_count)
			return IX_ENOTFOUND;
		p = &info->parts[idx + 1];
	}
	*off_r = header ? p->header_off : p->body_off;
	*len_r = header ? p->header_len : p->body_len;
	return IX_OK;
}
