/* mime_hdr.c - header-level helpers of the MIME parser: field scanning, unfolding, Content-Type parameters
 * (RFC 2045, RFC 2231), RFC 2047 encoded-words, IMAP strings, HEADER.FIELDS, and body transfer decoding. */
#include "store/mime_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/utf8.h"
#include "common/base64.h"

static int lc(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int mime_eq(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	if (n != len)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lc((unsigned char)s[i]) != lc((unsigned char)lit[i]))
			return 0;
	return 1;
}

/* ---- header fields ---- */

static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl ? nl + 1 : end;
}

int mime_hdr_next(struct mime_hdr_iter *it, const char **name_r, size_t *name_len_r, const char **value_r,
		  size_t *value_len_r, const char **field_r, size_t *field_len_r)
{
	while (it->p < it->end) {
		const char *p = it->p;
		if (*p == '\n' || (*p == '\r' && p + 1 < it->end && p[1] == '\n')) {
			it->p = it->end; /* blank line: end of the block */
			return 0;
		}
		const char *e = line_end(p, it->end);
		/* take the continuation lines */
		while (e < it->end && (*e == ' ' || *e == '\t'))
			e = line_end(e, it->end);
		it->p = e;
		/* field-name = 1*ftext, then optional WSP and ':'; anything else is not a field (already flagged) */
		const char *ne = p;
		while (ne < e && *ne >= 33 && *ne <= 126 && *ne != ':')
			ne++;
		const char *colon = ne;
		while (colon < e && (*colon == ' ' || *colon == '\t'))
			colon++;
		if (ne == p || colon == e || *colon != ':')
			continue;
		*name_r = p;
		*name_len_r = (size_t)(ne - p);
		*value_r = colon + 1;
		*value_len_r = (size_t)(e - colon - 1);
		*field_r = p;
		*field_len_r = (size_t)(e - p);
		return 1;
	}
	return 0;
}

char *mime_unfold(const char *value, size_t len)
{
	struct buf b = BUF_INIT;
	size_t i = 0;
	while (i < len &&
	       (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n' || value[i] == '\0'))
		i++;
	buf_reserve(&b, len - i);
	while (i < len) {
		/* copy the run up to the next CR, LF or NUL, which are dropped */
		size_t run = i;
		while (run < len && value[run] != '\r' && value[run] != '\n' && value[run] != '\0')
			run++;
		buf_append(&b, value + i, run - i);
		i = run + 1;
	}
	while (b.len > 0 && (b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
		b.len--;
	buf_append(&b, "", 0);
	b.data[b.len] = '\0';
	return buf_steal(&b);
}

/* ---- Content-Type and parameters ---- */

static int is_tspecial(int c)
{
	return c == '(' || c == ')' || c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':' ||
	       c == '\\' || c == '"' || c == '/' || c == '[' || c == ']' || c == '?' || c == '=';
}

static int is_token_char(int c)
{
	return c > 32 && c != 127 && !is_tspecial(c);
}

static void skip_cfws(const char **pp)
{
	const char *p = *pp;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '(')
			break;
		int level = 0;
		while (*p != '\0') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				level++;
			else if (*p == ')' && --level == 0) {
				p++;
				break;
			}
			p++;
		}
	}
	*pp = p;
}

static char *take_token(const char **pp)
{
	const char *p = *pp, *s = p;
	while (is_token_char((unsigned char)*p))
		p++;
	*pp = p;
	return p > s ? xstrndup(s, (size_t)(p - s)) : NULL;
}

/* A quoted-string (unquoted) or a token. Lenient: tspecials other than ';' are accepted in unquoted values. */
static char *take_value(const char **pp)
{
	const char *p = *pp;
	struct buf b = BUF_INIT;
	if (*p == '"') {
		p++;
		while (*p != '\0' && *p != '"') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			buf_append_char(&b, *p++);
		}
		if (*p == '"')
			p++;
		*pp = p;
		return buf_steal(&b);
	}
	while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t' && *p != '(' && *p != '"')
		buf_append_char(&b, *p++);
	*pp = p;
	return buf_steal(&b);
}

struct raw_param {
	char *name; /* base name */
	char *value;
	int section; /* -1 when none */
	int extended;
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lc(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Merges name*0, name*1*, ... into one parameter (RFC 2231 section 3 and 4). */
static size_t merge_params(struct raw_param *raw, size_t n, struct mime_param *out)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		if (raw[i].name == NULL)
			continue;
		if (raw[i].section < 0) {
			out[count].name = raw[i].extended ? xasprintf("%s*", raw[i].name) : xstrdup(raw[i].name);
			out[count].value = xstrdup(raw[i].value);
			count++;
			free(raw[i].name);
			free(raw[i].value);
			raw[i].name = NULL;
			continue;
		}
		/* gather sections 0, 1, 2 ... in order; stop at the first gap */
		int any_ext = 0;
		for (size_t j = i; j < n; j++)
			if (raw[j].name && raw[j].section >= 0 && strcasecmp(raw[j].name, raw[i].name) == 0 &&
			    raw[j].extended)
				any_ext = 1;
		struct buf v = BUF_INIT;
		char *base = xstrdup(raw[i].name);
		for (int sec = 0; sec <= MIME_MAX_PARAMS; sec++) {
			size_t j;
			for (j = i; j < n; j++)
				if (raw[j].name && raw[j].section == sec && strcasecmp(raw[j].name, base) == 0)
					break;
			if (j == n)
				break;
			if (any_ext && !raw[j].extended) {
				if (sec == 0)
					buf_append_str(&v, "''");
				/* percent-encode what an extended value cannot hold literally */
				for (const char *s = raw[j].value; *s; s++) {
					unsigned char c = (unsigned char)*s;
					if (c <= 32 || c >= 127 || c == '%' || c == '\'' || is_tspecial(c) || c == '*')
						buf_printf(&v, "%%%02X", c);
					else
						buf_append_char(&v, (char)c);
				}
			} else
				buf_append_str(&v, raw[j].value);
		}
		/* drop every section of this name (also those after a gap) */
		for (size_t j = i; j < n; j++)
			if (raw[j].name && raw[j].section >= 0 && strcasecmp(raw[j].name, base) == 0) {
				free(raw[j].name);
				free(raw[j].value);
				raw[j].name = NULL;
			}
		out[count].name = any_ext ? xasprintf("%s*", base) : xstrdup(base);
		out[count].value = buf_steal(&v);
		count++;
		free(base);
	}
	return count;
}

size_t mime_parse_ctype(const char *v, int want_subtype, char **type_r, char **subtype_r, struct mime_param **params_r,
			unsigned *flags_r)
{
	const char *p = v;
	*type_r = NULL;
	if (want_subtype)
		*subtype_r = NULL;
	*params_r = NULL;
	skip_cfws(&p);
	char *type = take_token(&p);
	skip_cfws(&p);
	char *subtype = NULL;
	if (want_subtype && type != NULL && *p == '/') {
		p++;
		skip_cfws(&p);
		subtype = take_token(&p);
	}
	if (type != NULL && (!want_subtype || subtype != NULL)) {
		*type_r = type;
		if (want_subtype)
			*subtype_r = subtype;
	} else {
		free(type);
		free(subtype);
	}
	/* parameters: skip to each ';' */
	struct raw_param raw[MIME_MAX_PARAMS];
	size_t nraw = 0;
	for (;;) {
		while (*p != '\0' && *p != ';') {
			if (*p == '"') { /* stray quoted text: skip it whole */
				char *junk = take_value(&p);
				free(junk);
				continue;
			}
			p++;
		}
		if (*p == '\0')
			break;
		p++;
		skip_cfws(&p);
		const char *ns = p;
		while (is_token_char((unsigned char)*p) || *p == '*')
			p++;
		const char *ne = p;
		skip_cfws(&p);
		if (ne == ns || *p != '=')
			continue;
		p++;
		skip_cfws(&p);
		char *value = take_value(&p);
		if (nraw == MIME_MAX_PARAMS) {
			*flags_r |= MIME_F_TOO_MANY_PARAMS;
			free(value);
			continue;
		}
		struct raw_param *r = &raw[nraw];
		r->section = -1;
		r->extended = 0;
		if (ne > ns && ne[-1] == '*') {
			r->extended = 1;
			ne--;
		}
		/* name*N */
		const char *star = memchr(ns, '*', (size_t)(ne - ns));
		if (star != NULL) {
			unsigned long long sec;
			char *num = xstrndup(star + 1, (size_t)(ne - star - 1));
			if (parse_uint(num, MIME_MAX_PARAMS, &sec) == 0)
				r->section = (int)sec;
			free(num);
			ne = star;
		}
		if (ne == ns) {
			free(value);
			continue;
		}
		r->name = xstrndup(ns, (size_t)(ne - ns));
		r->value = value;
		nraw++;
	}
	if (nraw == 0)
		return 0;
	struct mime_param *out = xcalloc(nraw, sizeof(*out));
	size_t n = merge_params(raw, nraw, out);
	*params_r = out;
	return n;
}

void mime_params_free(struct mime_param *params, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
}

/* ---- charsets ---- */

enum charset { CS_UNKNOWN, CS_UTF8, CS_LATIN1, CS_LATIN9, CS_CP1252 };

static enum charset charset_find(const char *s, size_t len)
{
	const char *star = memchr(s, '*', len); /* RFC 2231 section 5 language suffix */
	if (star != NULL)
		len = (size_t)(star - s);
	if (mime_eq(s, len, "utf-8") || mime_eq(s, len, "utf8"))
		return CS_UTF8;
	if (mime_eq(s, len, "us-ascii") || mime_eq(s, len, "ascii") || mime_eq(s, len, "iso-8859-1") ||
	    mime_eq(s, len, "latin1") || mime_eq(s, len, "iso8859-1") || mime_eq(s, len, "iso_8859-1"))
		return CS_LATIN1;
	if (mime_eq(s, len, "iso-8859-15") || mime_eq(s, len, "latin9"))
		return CS_LATIN9;
	if (mime_eq(s, len, "windows-1252") || mime_eq(s, len, "cp1252"))
		return CS_CP1252;
	return CS_UNKNOWN;
}

static const unsigned short cp1252_high[32] = {
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
	0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
	0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
};

/* Appends s in charset cs as UTF-8; NULs are dropped, invalid UTF-8 becomes U+FFFD. */
static void to_utf8(struct buf *out, const unsigned char *s, size_t len, enum charset cs)
{
	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		if (c == 0) {
			i++;
			continue;
		}
		if (c < 0x80) {
			buf_append_char(out, (char)c);
			i++;
			continue;
		}
		if (cs == CS_UTF8) {
			size_t n = utf8_decode(s + i, len - i, NULL);
			if (n == 0) {
				utf8_append(out, 0xFFFD);
				i++;
			} else {
				buf_append(out, s + i, n);
				i += n;
			}
			continue;
		}
		unsigned cp = c;
		if (cs == CS_CP1252 && c < 0xA0)
			cp = cp1252_high[c - 0x80];
		else if (cs == CS_LATIN9) {
			switch (c) {
			case 0xA4: cp = 0x20AC; break;
			case 0xA6: cp = 0x0160; break;
			case 0xA8: cp = 0x0161; break;
			case 0xB4: cp = 0x017D; break;
			case 0xB8: cp = 0x017E; break;
			case 0xBC: cp = 0x0152; break;
			case 0xBD: cp = 0x0153; break;
			case 0xBE: cp = 0x0178; break;
			default: break;
			}
		}
		utf8_append(out, cp);
		i++;
	}
}

void mime_utf8_repair(struct buf *b)
{
	const unsigned char *s = (const unsigned char *)buf_cstr(b);
	for (size_t i = 0; i < b->len;) {
		size_t n = s[i] == 0 ? 0 : utf8_decode(s + i, b->len - i, NULL);
		if (n == 0) {
			struct buf out = BUF_INIT;
			to_utf8(&out, s, b->len, CS_CP1252);
			buf_free(b);
			*b = out;
			if (b->data == NULL)
				buf_append(b, "", 0);
			return;
		}
		i += n;
	}
}

char *mime_param_get(const struct mime_param *params, size_t n, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(params[i].name);
		if (mime_eq(params[i].name, l, name))
			return xstrdup(params[i].value);
		if (l == nl + 1 && params[i].name[nl] == '*' && mime_eq(params[i].name, nl, name)) {
			/* charset'lang'%XX... */
			const char *v = params[i].value;
			const char *q1 = strchr(v, '\'');
			const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
			if (q2 == NULL)
				return xstrdup(v);
			struct buf raw = BUF_INIT;
			for (const char *s = q2 + 1; *s; s++) {
				int h, l2;
				if (*s == '%' && (h = hexval((unsigned char)s[1])) >= 0 &&
				    (l2 = hexval((unsigned char)s[2])) >= 0) {
					buf_append_char(&raw, (char)(h * 16 + l2));
					s += 2;
				} else
					buf_append_char(&raw, *s);
			}
			enum charset cs = charset_find(v, (size_t)(q1 - v));
			struct buf out = BUF_INIT;
			to_utf8(&out, (const unsigned char *)buf_cstr(&raw), raw.len, cs == CS_UNKNOWN ? CS_UTF8 : cs);
			buf_free(&raw);
			return buf_steal(&out);
		}
	}
	return NULL;
}

/* ---- RFC 2047 ---- */

/* Tries an encoded-word at s (which starts with "=?"). Returns its length and appends the decoded UTF-8, or 0.
 * *no_end is where an earlier search for "?=" stopped without finding one (whitespace or the end): a word whose
 * text starts before it cannot end either, so a run of unterminated "=?" stays linear. */
static size_t encoded_word(const char *s, size_t len, struct buf *out, const char **no_end)
{
	size_t i = 2;
	size_t cs_start = i;
	while (i < len && s[i] != '?' && s[i] > 32 && (unsigned char)s[i] < 127)
		i++;
	if (i >= len || s[i] != '?' || i == cs_start)
		return 0;
	size_t cs_len = i - cs_start;
	if (i + 2 >= len || s[i + 2] != '?')
		return 0;
	int enc = lc((unsigned char)s[i + 1]);
	if (enc != 'b' && enc != 'q')
		return 0;
	size_t t_start = i + 3, t = t_start;
	if (*no_end != NULL && s + t_start <= *no_end)
		return 0;
	while (t + 1 < len && !(s[t] == '?' && s[t + 1] == '=')) {
		if (s[t] == ' ' || s[t] == '\t' || s[t] == '\r' || s[t] == '\n') {
			*no_end = s + t;
			return 0;
		}
		t++;
	}
	if (t + 1 >= len) {
		*no_end = s + t;
		return 0;
	}
	enum charset cs = charset_find(s + cs_start, cs_len);
	if (cs == CS_UNKNOWN)
		return 0;
	struct buf raw = BUF_INIT;
	if (enc == 'b')
		base64_decode_lenient(s + t_start, t - t_start, &raw);
	else {
		for (size_t k = t_start; k < t; k++) {
			int h, l;
			if (s[k] == '_')
				buf_append_char(&raw, ' ');
			else if (s[k] == '=' && k + 2 < t && (h = hexval((unsigned char)s[k + 1])) >= 0 &&
				 (l = hexval((unsigned char)s[k + 2])) >= 0) {
				buf_append_char(&raw, (char)(h * 16 + l));
				k += 2;
			} else
				buf_append_char(&raw, s[k]);
		}
	}
	to_utf8(out, (const unsigned char *)buf_cstr(&raw), raw.len, cs);
	buf_free(&raw);
	return t + 2;
}

void mime_decode_words(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	int last_was_word = 0;
	size_t ws_start = 0, ws_len = 0; /* whitespace seen after the last encoded-word, not yet written */
	const char *no_end = NULL;
	while (i < len) {
		if (in[i] == '=' && i + 1 < len && in[i + 1] == '?') {
			size_t mark = out->len;
			size_t n = encoded_word(in + i, len - i, out, &no_end);
			if (n > 0) {
				if (ws_len > 0 && !last_was_word) {
					/* whitespace before a word that follows plain text: keep it, before the word */
					struct buf tmp = BUF_INIT;
					buf_append(&tmp, out->data + mark, out->len - mark);
					out->len = mark;
					buf_append(out, in + ws_start, ws_len);
					buf_append(out, tmp.data, tmp.len);
					buf_free(&tmp);
				}
				ws_len = 0;
				last_was_word = 1;
				i += n;
				continue;
			}
		}
		if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n') {
			if (ws_len == 0)
				ws_start = i;
			ws_len = i + 1 - ws_start;
			i++;
			continue;
		}
		if (ws_len > 0) {
			buf_append(out, in + ws_start, ws_len);
			ws_len = 0;
		}
		last_was_word = 0;
		/* plain text up to the next whitespace or "=?" */
		size_t run = i + 1;
		while (run < len && in[run] != ' ' && in[run] != '\t' && in[run] != '\r' && in[run] != '\n' &&
		       !(in[run] == '=' && run + 1 < len && in[run + 1] == '?'))
			run++;
		buf_append(out, in + i, run - i);
		i = run;
	}
	if (ws_len > 0)
		buf_append(out, in + ws_start, ws_len);
	if (out->data == NULL)
		buf_append(out, "", 0);
}

/* ---- IMAP strings ---- */

void mime_imap_string(struct buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	size_t nuls = 0;
	int literal = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0)
			nuls++;
		else if (c == '\r' || c == '\n' || c >= 0x80)
			literal = 1;
	}
	if (literal) {
		buf_printf(out, "{%zu}\r\n", len - nuls);
		for (size_t i = 0; i < len; i++)
			if (s[i] != '\0')
				buf_append_char(out, s[i]);
		return;
	}
	buf_reserve(out, len + 2);
	buf_append_char(out, '"');
	size_t i = 0;
	while (i < len) {
		size_t run = i;
		while (run < len && s[run] != '\0' && s[run] != '"' && s[run] != '\\')
			run++;
		buf_append(out, s + i, run - i);
		if (run < len && s[run] != '\0') {
			buf_append_char(out, '\\');
			buf_append_char(out, s[run]);
		}
		i = run + 1;
	}
	buf_append_char(out, '"');
}

void mime_imap_nstring(struct buf *out, const char *s)
{
	mime_imap_string(out, s, s ? strlen(s) : 0);
}

/* ---- HEADER.FIELDS ---- */

void mime_header_fields(const char *header, size_t header_len, const char *const *names, size_t n, int not,
			struct buf *out)
{
	struct mime_hdr_iter it = { header, header + header_len };
	const char *name, *value, *field;
	size_t name_len, value_len, field_len;
	while (mime_hdr_next(&it, &name, &name_len, &value, &value_len, &field, &field_len)) {
		int found = 0;
		for (size_t i = 0; i < n && !found; i++)
			found = mime_eq(name, name_len, names[i]);
		if (found == (not != 0))
			continue;
		/* copy the field with every line end made CRLF */
		const char *p = field, *end = field + field_len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			const char *te = le;
			if (te > p && te[-1] == '\r')
				te--;
			buf_append(out, p, (size_t)(te - p));
			buf_append(out, "\r\n", 2);
			p = nl ? nl + 1 : end;
		}
	}
	buf_append(out, "\r\n", 2);
}

/* ---- body decoding ---- */

static void qp_decode(const char *s, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		/* one line: strip trailing whitespace (RFC 2045 6.7 rule 3) */
		const char *nl = memchr(s + i, '\n', len - i);
		size_t le = nl ? (size_t)(nl - s) : len;
		size_t te = le;
		if (te > i && s[te - 1] == '\r')
			te--;
		while (te > i && (s[te - 1] == ' ' || s[te - 1] == '\t'))
			te--;
		int soft = 0;
		for (size_t k = i; k < te; k++) {
			int h, l;
			if (s[k] != '=') {
				buf_append_char(out, s[k]);
				continue;
			}
			if (k + 1 == te) {
				soft = 1;
				break;
			}
			if (k + 2 < te && (h = hexval((unsigned char)s[k + 1])) >= 0 &&
			    (l = hexval((unsigned char)s[k + 2])) >= 0) {
				buf_append_char(out, (char)(h * 16 + l));
				k += 2;
			} else
				buf_append_char(out, '=');
		}
		if (nl != NULL && !soft)
			buf_append(out, "\r\n", 2);
		i = nl ? le + 1 : len;
	}
}

void mime_decode_body(const struct mime_part *part, const char *msg, struct buf *out)
{
	const char *s = msg + part->body_off;
	size_t len = part->body_len;
	const char *enc = part->encoding ? part->encoding : "7bit";
	if (strcmp(enc, "base64") == 0) {
		/* concatenated base64 chunks may carry padding in the middle: restart after each pad run */
		size_t i = 0;
		while (i < len) {
			const char *eq = memchr(s + i, '=', len - i);
			size_t stop = eq ? (size_t)(eq - s) : len;
			base64_decode_lenient(s + i, stop - i, out);
			i = stop;
			while (i < len && (s[i] == '=' || s[i] == '\r' || s[i] == '\n' || s[i] == ' ' || s[i] == '\t'))
				i++;
		}
	} else if (strcmp(enc, "quoted-printable") == 0)
		qp_decode(s, len, out);
	else
		buf_append(out, s, len);
	if (out->data == NULL)
		buf_append(out, "", 0);
}

void mime_decode_text(const struct mime_part *part, const char *msg, struct buf *out)
{
	enum charset cs = part->charset ? charset_find(part->charset, strlen(part->charset)) : CS_UTF8;
	if (!mime_eq(part->type, strlen(part->type), "text") || cs == CS_UNKNOWN || cs == CS_UTF8) {
		/* not text, unknown charset, or UTF-8 already: no conversion (invalid UTF-8 is left for the caller) */
		mime_decode_body(part, msg, out);
		return;
	}
	struct buf raw = BUF_INIT;
	mime_decode_body(part, msg, &raw);
	to_utf8(out, (const unsigned char *)raw.data, raw.len, cs);
	buf_append(out, "", 0);
	buf_free(&raw);
}

/* Appends the values of the fields called name (all of them, or the first only), newline-separated; returns how
 * many. */
static size_t header_get(const char *header, size_t header_len, const char *name, bool all, struct buf *out)
{
	struct mime_hdr_iter it = { header, header + header_len };
	const char *fname, *value, *field;
	size_t fname_len, value_len, field_len, n = 0;
	while (mime_hdr_next(&it, &fname, &fname_len, &value, &value_len, &field, &field_len)) {
		if (!mime_eq(fname, fname_len, name))
			continue;
		char *v = mime_unfold(value, value_len);
		if (n++ > 0)
			buf_append_char(out, '\n');
		buf_append_str(out, v);
		free(v);
		if (!all)
			break;
	}
	return n;
}

int mime_header_get(const char *header, size_t header_len, const char *name, struct buf *out)
{
	return header_get(header, header_len, name, false, out) > 0;
}

size_t mime_header_get_all(const char *header, size_t header_len, const char *name, struct buf *out)
{
	return header_get(header, header_len, name, true, out);
}
