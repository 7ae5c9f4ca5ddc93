/* mime_addr.c - RFC 5322 address lists in IMAP ENVELOPE form (groups, comments, quoted local parts, routes),
 * and RFC 5322 dates (obsolete zones and two-digit years included) to Unix time. */
#include "store/mime_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define ADDR_MISSING_DOMAIN "MISSING_DOMAIN"
#define ADDR_MISSING_MAILBOX "MISSING_MAILBOX"
#define ADDR_MAX_TOKENS 100000 /* tokens looked at in one header value; values are bounded by the header limit */

enum tok_type { T_END, T_ATOM, T_QSTRING, T_DLITERAL, T_SPECIAL };

struct tok {
	enum tok_type type;
	const char *s; /* raw text (quotes and brackets included) */
	size_t len;
	char c; /* for T_SPECIAL */
};

struct lexer {
	const char *p;
	const char *comment; /* the last comment seen (raw, without parentheses) */
	size_t comment_len;
};

static int is_atext(int c)
{
	if (c <= 32 || c == 127)
		return 0;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

static void lex_skip_cfws(struct lexer *lx)
{
	const char *p = lx->p;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '(')
			break;
		const char *start = p + 1;
		int level = 0;
		while (*p != '\0') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				level++;
			else if (*p == ')' && --level == 0)
				break;
			p++;
		}
		lx->comment = start;
		lx->comment_len = (size_t)(p - start);
		if (*p == ')')
			p++;
	}
	lx->p = p;
}

static struct tok lex_next(struct lexer *lx)
{
	struct tok t = { T_END, NULL, 0, 0 };
	lex_skip_cfws(lx);
	const char *p = lx->p;
	t.s = p;
	if (*p == '\0')
		return t;
	if (*p == '"') {
		p++;
		while (*p != '\0' && *p != '"') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			p++;
		}
		if (*p == '"')
			p++;
		t.type = T_QSTRING;
	} else if (*p == '[') {
		while (*p != '\0' && *p != ']') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			p++;
		}
		if (*p == ']')
			p++;
		t.type = T_DLITERAL;
	} else if (is_atext((unsigned char)*p)) {
		while (is_atext((unsigned char)*p))
			p++;
		t.type = T_ATOM;
	} else {
		t.type = T_SPECIAL;
		t.c = *p++;
	}
	t.len = (size_t)(p - t.s);
	lx->p = p;
	return t;
}

/* Appends the contents of a quoted string token without quotes and escapes. */
static void unquote(struct buf *b, const struct tok *t)
{
	size_t end = t->len;
	if (end >= 2 && t->s[end - 1] == '"')
		end--;
	for (size_t i = 1; i < end; i++) {
		if (t->s[i] == '\\' && i + 1 < end)
			i++;
		buf_append_char(b, t->s[i]);
	}
}

/* Takes one step of the token budget; 0 when it is spent. */
static int spend(size_t *budget)
{
	if (*budget == 0)
		return 0;
	(*budget)--;
	return 1;
}

struct addr_ctx {
	struct buf *out;
	unsigned *flags;
	size_t count;
	int opened; /* "(" of the list written; in ADDR_DOWNGRADE: a group was opened, no ',' before its first member */
	enum {
		ADDR_ENVELOPE,
		ADDR_PLAIN,
		ADDR_DOWNGRADE
	} mode; /* ENVELOPE form, mime_addr_text, mime_addr_downgrade */
};

/* One address as a line of mime_addr_text: group markers (host NULL) and placeholders are left out. */
static void put_plain(struct addr_ctx *c, const char *name, const char *mbox, const char *host)
{
	if (host == NULL)
		return;
	if (c->out->len > 0)
		buf_append_char(c->out, '\n');
	if (name != NULL)
		buf_printf(c->out, "%s ", name);
	buf_append_char(c->out, '<');
	if (strcmp(mbox, ADDR_MISSING_MAILBOX) != 0)
		buf_append_str(c->out, mbox);
	if (strcmp(host, ADDR_MISSING_DOMAIN) != 0)
		buf_printf(c->out, "@%s", host);
	buf_append_char(c->out, '>');
	c->count++;
}

/* A display name in a header: encoded-words when it holds 8-bit bytes, else atoms, else a quoted string. */
static void put_phrase(struct buf *out, const char *s)
{
	size_t len = strlen(s);
	if (mime_has_8bit(s, len)) {
		mime_encode_words(s, len, " ", out);
		return;
	}
	int atoms = len > 0;
	for (size_t i = 0; i < len && atoms; i++)
		atoms = s[i] == ' ' || is_atext((unsigned char)s[i]);
	if (atoms) {
		buf_append(out, s, len);
		return;
	}
	buf_append_quoted(out, s, len);
}

/* One address of mime_addr_downgrade. RFC 6857 section 3.1.4 (the same for a UTF-8 domain): a mailbox whose address
 * holds 8-bit bytes becomes an empty group named by the display name and the address as encoded-words,
 * "=?UTF-8?B?...?= =?UTF-8?B?...?= :;", which a client shows but never replies to. */
static void put_downgraded(struct addr_ctx *c, const char *name, const char *mbox, const char *host)
{
	if (mbox == NULL) { /* end of a group */
		buf_append_char(c->out, ';');
		c->opened = 0;
		return;
	}
	if (c->out->len > 0 && !c->opened)
		buf_append_str(c->out, ", ");
	c->opened = 0;
	if (host == NULL) { /* start of a group */
		put_phrase(c->out, mbox);
		buf_append_char(c->out, ':');
		c->opened = 1;
		return;
	}
	struct buf spec = BUF_INIT;
	if (strcmp(mbox, ADDR_MISSING_MAILBOX) != 0)
		buf_append_str(&spec, mbox);
	if (strcmp(host, ADDR_MISSING_DOMAIN) != 0)
		buf_printf(&spec, "@%s", host);
	if (name != NULL) {
		put_phrase(c->out, name);
		buf_append_char(c->out, ' ');
	}
	if (mime_has_8bit(spec.data != NULL ? spec.data : "", spec.len)) {
		mime_encode_words(buf_cstr(&spec), spec.len, " ", c->out);
		buf_append_str(c->out, " :;");
	} else {
		buf_printf(c->out, "<%s>", buf_cstr(&spec));
	}
	buf_free(&spec);
	c->count++;
}

static void put_addr(struct addr_ctx *c, const char *name, const char *adl, const char *mbox, const char *host)
{
	if (c->mode == ADDR_PLAIN) {
		put_plain(c, name, mbox, host);
		return;
	}
	if (c->mode == ADDR_DOWNGRADE) {
		put_downgraded(c, name, mbox, host);
		return;
	}
	if (!c->opened) {
		buf_append_char(c->out, '(');
		c->opened = 1;
	}
	buf_append_char(c->out, '(');
	mime_imap_nstring(c->out, name);
	buf_append_char(c->out, ' ');
	mime_imap_nstring(c->out, adl);
	buf_append_char(c->out, ' ');
	mime_imap_nstring(c->out, mbox);
	buf_append_char(c->out, ' ');
	mime_imap_nstring(c->out, host);
	buf_append_char(c->out, ')');
	c->count++;
}

/* Appends a phrase word: atoms as they are, quoted strings unquoted; one space where the message had whitespace or
 * a comment between two words ("Joe Q. Public"). */
static void phrase_add(struct buf *b, const struct tok *t, const char **prev_end)
{
	if (b->len > 0 && t->s != *prev_end)
		buf_append_char(b, ' ');
	*prev_end = t->s + t->len;
	if (t->type == T_QSTRING)
		unquote(b, t);
	else
		buf_append(b, t->s, t->len);
}

/* Reads a domain (atoms, dots, domain literals) until something else. Returns the next token. */
static struct tok read_domain(struct lexer *lx, struct buf *dom)
{
	struct tok t = lex_next(lx);
	while (t.type == T_ATOM || t.type == T_DLITERAL || (t.type == T_SPECIAL && t.c == '.')) {
		buf_append(dom, t.s, t.len);
		t = lex_next(lx);
	}
	return t;
}

/* Parses one mailbox or group starting at token t; returns the token that ended it (',' ';' or end). */
static struct tok parse_one(struct addr_ctx *c, struct lexer *lx, struct tok t, int in_group, size_t *budget)
{
	struct buf phrase = BUF_INIT, local = BUF_INIT, dom = BUF_INIT, adl = BUF_INIT;
	const char *prev_end = NULL;
	const char *word_start = NULL, *word_end = NULL;
	lx->comment = NULL;
	/* phrase or local part: words and dots until a special */
	while ((t.type == T_ATOM || t.type == T_QSTRING || (t.type == T_SPECIAL && t.c == '.')) && spend(budget)) {
		phrase_add(&phrase, &t, &prev_end);
		if (word_start == NULL)
			word_start = t.s;
		word_end = t.s + t.len;
		t = lex_next(lx);
	}
	if (t.type == T_SPECIAL && t.c == ':' && !in_group) {
		/* group: name ':' [mailbox-list] ';' */
		put_addr(c, NULL, NULL, phrase.len ? buf_cstr(&phrase) : "", NULL);
		t = lex_next(lx);
		while (t.type != T_END && !(t.type == T_SPECIAL && t.c == ';') && spend(budget)) {
			if (t.type == T_SPECIAL && t.c == ',') {
				t = lex_next(lx);
				continue;
			}
			t = parse_one(c, lx, t, 1, budget);
		}
		put_addr(c, NULL, NULL, NULL, NULL);
		if (t.type == T_SPECIAL && t.c == ';')
			t = lex_next(lx);
		goto out;
	}
	if (t.type == T_SPECIAL && t.c == '<') {
		/* angle-addr: [route ':'] local '@' domain '>' */
		t = lex_next(lx);
		if (t.type == T_SPECIAL && t.c == '@') {
			while (t.type == T_SPECIAL && (t.c == '@' || t.c == ',') && spend(budget)) {
				if (t.c == '@') {
					if (adl.len > 0)
						buf_append_char(&adl, ',');
					buf_append_char(&adl, '@');
					t = read_domain(lx, &adl);
				} else
					t = lex_next(lx);
			}
			if (t.type == T_SPECIAL && t.c == ':')
				t = lex_next(lx);
		}
		while ((t.type == T_ATOM || t.type == T_QSTRING || (t.type == T_SPECIAL && t.c == '.')) &&
		       spend(budget)) {
			buf_append(&local, t.s, t.len);
			t = lex_next(lx);
		}
		if (t.type == T_SPECIAL && t.c == '@')
			t = read_domain(lx, &dom);
		if (t.type == T_SPECIAL && t.c == '>')
			t = lex_next(lx);
		else
			*c->flags |= MIME_F_BAD_ADDRESS;
		if (local.len == 0 && dom.len == 0 && phrase.len == 0) {
			/* "<>" (null return path) */
			put_addr(c, NULL, NULL, "", ADDR_MISSING_DOMAIN);
			goto out;
		}
		if (local.len == 0 || dom.len == 0)
			*c->flags |= MIME_F_BAD_ADDRESS;
		put_addr(c, phrase.len ? buf_cstr(&phrase) : NULL, adl.len ? buf_cstr(&adl) : NULL,
			 local.len ? buf_cstr(&local) : ADDR_MISSING_MAILBOX,
			 dom.len ? buf_cstr(&dom) : ADDR_MISSING_DOMAIN);
		goto out;
	}
	if (t.type == T_SPECIAL && t.c == '@' && word_start != NULL) {
		/* addr-spec: the words read are the local part, kept as written (quotes included, CFWS removed) */
		struct lexer lx2 = { word_start, NULL, 0 };
		struct tok w = lex_next(&lx2);
		while (w.type != T_END && w.s < word_end) {
			buf_append(&local, w.s, w.len);
			w = lex_next(&lx2);
		}
		t = read_domain(lx, &dom);
		struct buf name = BUF_INIT;
		if (lx->comment != NULL) /* "user@host (Full Name)": the comment is the name */
			buf_append(&name, lx->comment, lx->comment_len);
		if (dom.len == 0)
			*c->flags |= MIME_F_BAD_ADDRESS;
		put_addr(c, name.len ? buf_cstr(&name) : NULL, NULL, buf_cstr(&local),
			 dom.len ? buf_cstr(&dom) : ADDR_MISSING_DOMAIN);
		buf_free(&name);
		goto out;
	}
	if (phrase.len > 0) {
		/* a bare word: a mailbox without a domain */
		*c->flags |= MIME_F_BAD_ADDRESS;
		put_addr(c, NULL, NULL, buf_cstr(&phrase), ADDR_MISSING_DOMAIN);
	}
	/* skip anything up to the next separator */
	while (t.type != T_END && !(t.type == T_SPECIAL && (t.c == ',' || (in_group && t.c == ';'))) && spend(budget)) {
		*c->flags |= MIME_F_BAD_ADDRESS;
		t = lex_next(lx);
	}
out:
	buf_free(&phrase);
	buf_free(&local);
	buf_free(&dom);
	buf_free(&adl);
	return t;
}

/* Parses the address list v, writing each address through c. */
static void addr_parse(struct addr_ctx *c, const char *v)
{
	struct lexer lx = { v, NULL, 0 };
	size_t budget = ADDR_MAX_TOKENS;
	struct tok t = lex_next(&lx);
	while (t.type != T_END && spend(&budget)) {
		if (t.type == T_SPECIAL && (t.c == ',' || t.c == ';')) {
			t = lex_next(&lx);
			continue;
		}
		const char *before = lx.p;
		t = parse_one(c, &lx, t, 0, &budget);
		if (lx.p == before && t.type != T_END && !(t.type == T_SPECIAL && (t.c == ',' || t.c == ';')))
			t = lex_next(&lx); /* guarantee progress */
	}
}

size_t mime_addr_list(struct buf *out, const char *v, unsigned *flags)
{
	struct addr_ctx c = { out, flags, 0, 0, ADDR_ENVELOPE };
	addr_parse(&c, v);
	if (c.opened)
		buf_append_char(out, ')');
	else
		buf_append_str(out, "NIL");
	return c.count;
}

size_t mime_addr_text(const char *value, size_t len, struct buf *out)
{
	char *v = mime_unfold(value, len);
	struct buf lines = BUF_INIT;
	unsigned flags = 0;
	struct addr_ctx c = { &lines, &flags, 0, 0, ADDR_PLAIN };
	addr_parse(&c, v);
	mime_decode_words(buf_cstr(&lines), lines.len, out);
	buf_free(&lines);
	free(v);
	return c.count;
}

void mime_addr_downgrade(const char *v, struct buf *out)
{
	struct buf list = BUF_INIT;
	unsigned flags = 0;
	struct addr_ctx c = { &list, &flags, 0, 0, ADDR_DOWNGRADE };
	addr_parse(&c, v);
	buf_append(out, buf_cstr(&list), list.len);
	buf_free(&list);
}

/* ---- dates ---- */

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static int date_number(const char **pp, unsigned maxdigits, long *v_r)
{
	const char *p = *pp;
	long v = 0;
	unsigned n = 0;
	while (*p >= '0' && *p <= '9' && n < maxdigits) {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n == 0 || (*p >= '0' && *p <= '9'))
		return -1;
	*pp = p;
	*v_r = v;
	return (int)n;
}

static void date_skip(const char **pp)
{
	struct lexer lx = { *pp, NULL, 0 };
	lex_skip_cfws(&lx);
	*pp = lx.p;
}

int mime_parse_date(const char *v, long long *t_r, int *zone_r)
{
	static const char *const months[12] = { "jan", "feb", "mar", "apr", "may", "jun",
						"jul", "aug", "sep", "oct", "nov", "dec" };
	static const struct {
		const char *name;
		int minutes;
	} zones[] = { { "ut", 0 },     { "gmt", 0 },    { "utc", 0 },    { "z", 0 },
		      { "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
		      { "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 } };
	const char *p = v;
	long day, year, hour, min, sec = 0;
	unsigned month = 0;
	date_skip(&p);
	/* optional day-of-week "," */
	if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			p++;
		date_skip(&p);
		if (*p == ',')
			p++;
		date_skip(&p);
	}
	if (date_number(&p, 2, &day) < 0)
		return -1;
	date_skip(&p);
	if (*p == '-')
		p++;
	for (unsigned i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0)
			month = i + 1;
	if (month == 0)
		return -1;
	p += 3;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++; /* "June" */
	date_skip(&p);
	if (*p == '-')
		p++;
	int ydigits = date_number(&p, 4, &year);
	if (ydigits < 2)
		return -1;
	if (ydigits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ydigits == 3)
		year += 1900;
	date_skip(&p);
	if (date_number(&p, 2, &hour) < 0)
		return -1;
	date_skip(&p);
	if (*p != ':')
		return -1;
	p++;
	date_skip(&p);
	if (date_number(&p, 2, &min) < 0)
		return -1;
	date_skip(&p);
	if (*p == ':') {
		p++;
		date_skip(&p);
		if (date_number(&p, 2, &sec) < 0)
			return -1;
		date_skip(&p);
	}
	static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (day < 1 || day > mdays[month - 1] || hour > 23 || min > 59 || sec > 60)
		return -1;
	int zone = 0;
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		p++;
		long z;
		if (date_number(&p, 4, &z) != 4 || z % 100 > 59)
			return -1;
		zone = sign * (int)(z / 100 * 60 + z % 100);
	} else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
		const char *zs = p;
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			p++;
		for (size_t i = 0; i < IX_ARRAY_LEN(zones); i++)
			if (mime_eq(zs, (size_t)(p - zs), zones[i].name))
				zone = zones[i].minutes;
		/* military and unknown zones: RFC 5322 4.3 says treat as -0000 */
	}
	long long days = days_from_civil(year, month, (unsigned)day);
	*t_r = days * 86400 + hour * 3600 + min * 60 + sec - (long long)zone * 60;
	if (zone_r != NULL)
		*zone_r = zone;
	return 0;
}
