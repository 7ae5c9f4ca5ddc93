/* sieve_check.c - the commands and tests Interchange knows and the checks a parsed script must pass before it runs:
 * names, required extensions, argument kinds, tag parameters, require and if/elsif/else placement; and the
 * encoded-character decoding (RFC 5228 2.4.2.4). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "transport/sieve/sieve_int.h"

#define MATCH_TAGS ":comparator=s :is :contains :matches :count=s@relational :value=s@relational "
#define ADDR_TAGS ":all :localpart :domain :user@subaddress :detail@subaddress "
#define INDEX_TAGS ":index=n@index :last@index "

/* pos: the positional arguments in order: s a string, l a string list (a string too), n a number; a v first is an
 * optional string that only counts when one more argument than the rest is given. tests: 0 none, 1 one test, L a
 * test list. block: 1 when a block is required. */
struct spec {
	const char *name;
	int is_test;
	const char *ext;
	const char *pos;
	const char *tags;
	char tests;
	int block;
};

static const struct spec specs[] = {
	{ "require", 0, NULL, "l", "", '0', 0 },
	{ "if", 0, NULL, "", "", '1', 1 },
	{ "elsif", 0, NULL, "", "", '1', 1 },
	{ "else", 0, NULL, "", "", '0', 1 },
	{ "stop", 0, NULL, "", "", '0', 0 },
	{ "keep", 0, NULL, "", ":flags=l@imap4flags", '0', 0 },
	{ "discard", 0, NULL, "", "", '0', 0 },
	{ "redirect", 0, NULL, "s", ":copy@copy", '0', 0 },
	{ "fileinto", 0, "fileinto", "s", ":copy@copy :flags=l@imap4flags :create@mailbox", '0', 0 },
	{ "reject", 0, "reject", "s", "", '0', 0 },
	{ "ereject", 0, "ereject", "s", "", '0', 0 },
	{ "vacation", 0, "vacation", "s",
	  ":days=n :seconds=n@vacation-seconds :subject=s :from=s :addresses=l :mime :handle=s", '0', 0 },
	{ "setflag", 0, "imap4flags", "vl", "", '0', 0 },
	{ "addflag", 0, "imap4flags", "vl", "", '0', 0 },
	{ "removeflag", 0, "imap4flags", "vl", "", '0', 0 },
	{ "set", 0, "variables", "ss", ":lower :upper :lowerfirst :upperfirst :quotewildcard :length", '0', 0 },
	{ "addheader", 0, "editheader", "ss", ":last", '0', 0 },
	{ "deleteheader", 0, "editheader", "sL", MATCH_TAGS ":index=n :last", '0', 0 },
	{ "include", 0, "include", "s", ":personal :global :once :optional", '0', 0 },
	{ "return", 0, "include", "", "", '0', 0 },
	{ "global", 0, "include", "l", "", '0', 0 },
	{ "address", 1, NULL, "ll", MATCH_TAGS ADDR_TAGS INDEX_TAGS, '0', 0 },
	{ "allof", 1, NULL, "", "", 'L', 0 },
	{ "anyof", 1, NULL, "", "", 'L', 0 },
	{ "not", 1, NULL, "", "", '1', 0 },
	{ "true", 1, NULL, "", "", '0', 0 },
	{ "false", 1, NULL, "", "", '0', 0 },
	{ "envelope", 1, "envelope", "ll", MATCH_TAGS ADDR_TAGS, '0', 0 },
	{ "exists", 1, NULL, "l", "", '0', 0 },
	{ "header", 1, NULL, "ll", MATCH_TAGS INDEX_TAGS, '0', 0 },
	{ "size", 1, NULL, "n", ":over :under", '0', 0 },
	{ "body", 1, "body", "l", MATCH_TAGS ":raw :content=l :text", '0', 0 },
	{ "string", 1, "variables", "ll", MATCH_TAGS, '0', 0 },
	{ "date", 1, "date", "ssl", MATCH_TAGS ":zone=s :originalzone " INDEX_TAGS, '0', 0 },
	{ "currentdate", 1, "date", "sl", MATCH_TAGS ":zone=s", '0', 0 },
	{ "hasflag", 1, "imap4flags", "vl", MATCH_TAGS, '0', 0 },
	{ "mailboxexists", 1, "mailbox", "l", "", '0', 0 },
	{ "duplicate", 1, "duplicate", "", ":handle=s :header=s :uniqueid=s :seconds=n :last", '0', 0 },
};

static int checkf(struct buf *error_r, unsigned line, const char *fmt, ...) IX_PRINTF(3, 4);
static int checkf(struct buf *error_r, unsigned line, const char *fmt, ...)
{
	if (error_r != NULL) {
		buf_printf(error_r, "line %u: ", line);
		va_list ap;
		va_start(ap, fmt);
		buf_vprintf(error_r, fmt, ap);
		va_end(ap);
	}
	return IX_EINVAL;
}

static int known_extension(const char *name)
{
	const char *p = SIEVE_EXTENSIONS;
	size_t n = strlen(name);
	while (*p) {
		const char *e = strchr(p, ' ');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && memcmp(p, name, n) == 0)
			return 1;
		p += len;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static int have(const struct sieve_script *s, const char *ext)
{
	if (ext == NULL)
		return 1;
	if (sieve_requires(s, ext))
		return 1;
	return strcmp(ext, "vacation") == 0 && sieve_requires(s, "vacation-seconds");
}

/* finds tag in a spec's tag list: 1 with *param ('s', 'l', 'n' or 0) and the extension it needs in ext[] */
static int find_tag(const char *tags, const char *tag, char *param, char *ext, size_t extsize)
{
	size_t tl = strlen(tag);
	const char *p = tags;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		const char *nend = p;
		while (nend < e && *nend != '=' && *nend != '@')
			nend++;
		if ((size_t)(nend - p) == tl && memcmp(p, tag, tl) == 0) {
			*param = *nend == '=' ? nend[1] : 0;
			ext[0] = 0;
			const char *at = memchr(p, '@', (size_t)(e - p));
			if (at != NULL && (size_t)(e - at - 1) < extsize) {
				memcpy(ext, at + 1, (size_t)(e - at - 1));
				ext[e - at - 1] = 0;
			}
			return 1;
		}
		p = e;
	}
	return 0;
}

static const struct spec *find_spec(const char *name)
{
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (strcmp(specs[i].name, name) == 0)
			return &specs[i];
	return NULL;
}

static int one_of(const struct sieve_node *n, const char *const *tags, size_t count, struct buf *error_r,
		  const char *what)
{
	int seen = 0;
	for (size_t i = 0; i < n->arg_count; i++)
		for (size_t j = 0; j < count; j++)
			if (n->args[i].type == SIEVE_ARG_TAG && !n->args[i].tag_param &&
			    strcmp(n->args[i].tag, tags[j]) == 0 && seen++)
				return checkf(error_r, n->args[i].line, "%s: more than one %s", n->name, what);
	return IX_OK;
}

static int check_node(struct sieve_script *s, struct sieve_node *n, int is_test, struct buf *error_r);

static int check_list(struct sieve_script *s, struct sieve_node *cmds, size_t count, int top, struct buf *error_r)
{
	int after_if = 0, others = 0;
	for (size_t i = 0; i < count; i++) {
		struct sieve_node *c = &cmds[i];
		if (strcmp(c->name, "require") == 0) {
			if (!top || others)
				return checkf(error_r, c->line, "require must come before any other command");
		} else
			others = 1;
		if ((strcmp(c->name, "elsif") == 0 || strcmp(c->name, "else") == 0) && !after_if)
			return checkf(error_r, c->line, "%s without if", c->name);
		after_if = strcmp(c->name, "if") == 0 || strcmp(c->name, "elsif") == 0;
		int rc = check_node(s, c, 0, error_r);
		if (rc != IX_OK)
			return rc;
	}
	return IX_OK;
}

static int check_node(struct sieve_script *s, struct sieve_node *n, int is_test, struct buf *error_r)
{
	const struct spec *sp = find_spec(n->name);
	if (sp == NULL || sp->is_test != is_test)
		return checkf(error_r, n->line, "unknown %s %s", is_test ? "test" : "command", n->name);
	if (!have(s, sp->ext))
		return checkf(error_r, n->line, "%s needs require \"%s\"", n->name, sp->ext);
	if (strcmp(n->name, "global") == 0 && !have(s, "variables"))
		return checkf(error_r, n->line, "global needs require \"variables\"");
	/* tags and their parameters, then the positional arguments */
	size_t npos = 0;
	const struct sieve_arg *pos[4];
	for (size_t i = 0; i < n->arg_count; i++) {
		struct sieve_arg *a = &n->args[i];
		if (a->type != SIEVE_ARG_TAG) {
			if (npos == 4)
				return checkf(error_r, a->line, "%s: too many arguments", n->name);
			pos[npos++] = a;
			continue;
		}
		if (npos > 0)
			return checkf(error_r, a->line, "%s: tag %s after a positional argument", n->name, a->tag);
		char param, ext[32];
		if (!find_tag(sp->tags, a->tag, &param, ext, sizeof(ext)))
			return checkf(error_r, a->line, "%s: unknown tag %s", n->name, a->tag);
		if (ext[0] && !have(s, ext))
			return checkf(error_r, a->line, "%s %s needs require \"%s\"", n->name, a->tag, ext);
		for (size_t j = 0; j < i; j++)
			if (n->args[j].type == SIEVE_ARG_TAG && !n->args[j].tag_param &&
			    strcmp(n->args[j].tag, a->tag) == 0)
				return checkf(error_r, a->line, "%s: tag %s given twice", n->name, a->tag);
		if (param) {
			struct sieve_arg *p = i + 1 < n->arg_count ? &n->args[i + 1] : NULL;
			int ok = p != NULL &&
				 ((param == 'n' && p->type == SIEVE_ARG_NUMBER) ||
				  (param == 's' && p->type == SIEVE_ARG_STRING) ||
				  (param == 'l' && (p->type == SIEVE_ARG_STRING || p->type == SIEVE_ARG_LIST)));
			if (!ok)
				return checkf(error_r, a->line, "%s: %s needs a %s", n->name, a->tag,
					      param == 'n'   ? "number"
					      : param == 's' ? "string"
							     : "string list");
			p->tag_param = 1;
			i++;
		}
	}
	const char *ps = sp->pos;
	size_t want = strlen(ps), min = want;
	for (const char *c = ps; *c; c++)
		if (*c == 'v' || *c == 'L')
			min--;
	if (npos < min || npos > want)
		return checkf(error_r, n->line, "%s: %zu arguments where %zu%s expected", n->name, npos, min,
			      min == want ? "" : " or more");
	if (ps[0] == 'v' && npos < want)
		ps++;
	for (size_t i = 0; i < npos; i++) {
		char k = ps[i];
		const struct sieve_arg *a = pos[i];
		int ok = ((k == 'n') && a->type == SIEVE_ARG_NUMBER) ||
			 ((k == 's' || k == 'v') && a->type == SIEVE_ARG_STRING) ||
			 ((k == 'l' || k == 'L') && (a->type == SIEVE_ARG_STRING || a->type == SIEVE_ARG_LIST));
		if (!ok)
			return checkf(error_r, a->line, "%s: argument %zu must be a %s", n->name, i + 1,
				      k == 'n'                 ? "number"
				      : (k == 's' || k == 'v') ? "string"
							       : "string list");
	}
	/* tests and block */
	if ((sp->tests == '0' && n->test_count) || (sp->tests == '1' && n->test_count != 1) ||
	    (sp->tests == 'L' && n->test_count == 0))
		return checkf(error_r, n->line, "%s: %s", n->name,
			      sp->tests == '0'   ? "takes no test"
			      : sp->tests == '1' ? "needs one test"
						 : "needs a test list");
	if (sp->block != n->has_block)
		return checkf(error_r, n->line, "%s %s", n->name, sp->block ? "needs a block" : "takes no block");
	/* mutually exclusive tags and tag values */
	static const char *const match[] = { ":is", ":contains", ":matches", ":count", ":value" };
	static const char *const part[] = { ":all", ":localpart", ":domain", ":user", ":detail" };
	static const char *const body[] = { ":raw", ":content", ":text" };
	static const char *const size[] = { ":over", ":under" };
	static const char *const days[] = { ":days", ":seconds" };
	static const char *const loc[] = { ":personal", ":global" };
	static const char *const dupid[] = { ":header", ":uniqueid" };
	static const char *const cases[] = { ":lower", ":upper" };
	static const char *const first[] = { ":lowerfirst", ":upperfirst" };
	int rc = one_of(n, match, 5, error_r, "match type");
	if (rc == IX_OK)
		rc = one_of(n, part, 5, error_r, "address part");
	if (rc == IX_OK)
		rc = one_of(n, body, 3, error_r, "body transform");
	if (rc == IX_OK)
		rc = one_of(n, days, 2, error_r, "period");
	if (rc == IX_OK)
		rc = one_of(n, loc, 2, error_r, "location");
	if (rc == IX_OK)
		rc = one_of(n, dupid, 2, error_r, "identifier");
	if (rc == IX_OK)
		rc = one_of(n, cases, 2, error_r, "case modifier");
	if (rc == IX_OK)
		rc = one_of(n, first, 2, error_r, "case modifier");
	if (rc == IX_OK)
		rc = one_of(n, size, 2, error_r, "comparison");
	if (rc != IX_OK)
		return rc;
	if (strcmp(n->name, "size") == 0 && sieve_tag(n, ":over") == NULL && sieve_tag(n, ":under") == NULL)
		return checkf(error_r, n->line, "size needs :over or :under");
	const struct sieve_arg *cmp = sieve_tag(n, ":comparator");
	if (cmp != NULL) {
		const char *c = cmp->strs[0].s;
		if (strcmp(c, "i;octet") != 0 && strcmp(c, "i;ascii-casemap") != 0 && strcmp(c, "i;ascii-numeric") != 0)
			return checkf(error_r, cmp->line, "unknown comparator \"%s\"", c);
		if (strcmp(c, "i;ascii-numeric") == 0 && !have(s, "comparator-i;ascii-numeric"))
			return checkf(error_r, cmp->line,
				      "comparator i;ascii-numeric needs require "
				      "\"comparator-i;ascii-numeric\"");
	}
	const struct sieve_arg *rel = sieve_tag(n, ":count");
	if (rel == NULL)
		rel = sieve_tag(n, ":value");
	if (rel != NULL) {
		static const char *const ops[] = { "gt", "ge", "lt", "le", "eq", "ne" };
		int ok = 0;
		for (size_t i = 0; i < 6; i++)
			ok |= strcasecmp(rel->strs[0].s, ops[i]) == 0;
		if (!ok)
			return checkf(error_r, rel->line, "unknown relational operator \"%s\"", rel->strs[0].s);
	}
	if (strcmp(n->name, "require") == 0) {
		const struct sieve_arg *a = sieve_pos(n, 0);
		for (size_t i = 0; i < a->count; i++) {
			if (!known_extension(a->strs[i].s))
				return checkf(error_r, a->line, "unsupported extension \"%s\"", a->strs[i].s);
			char **more = sieve_alloc(s, sizeof(char *) * (s->require_count + 1));
			if (s->require_count)
				memcpy(more, s->requires, sizeof(char *) * s->require_count);
			more[s->require_count++] = a->strs[i].s;
			s->requires = more;
		}
	}
	for (size_t i = 0; i < n->test_count; i++) {
		rc = check_node(s, &n->tests[i], 1, error_r);
		if (rc != IX_OK)
			return rc;
	}
	if (n->has_block)
		return check_list(s, n->block, n->block_count, 0, error_r);
	return IX_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void put_utf8(struct buf *out, unsigned long cp)
{
	if (cp < 0x80)
		buf_append_char(out, (char)cp);
	else if (cp < 0x800) {
		buf_append_char(out, (char)(0xc0 | (cp >> 6)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_append_char(out, (char)(0xe0 | (cp >> 12)));
		buf_append_char(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	} else {
		buf_append_char(out, (char)(0xf0 | (cp >> 18)));
		buf_append_char(out, (char)(0x80 | ((cp >> 12) & 0x3f)));
		buf_append_char(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	}
}

/* decodes one "${hex:...}" or "${unicode:...}" body p[0..len) (after the colon); 1 on success, 0 when it is not a
 * well-formed encoding (left as it is), -1 on a code point that cannot be */
static int decode_one(const char *p, size_t len, int unicode, struct buf *out)
{
	size_t i = 0, mark = out->len;
	for (;;) {
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
			i++;
		if (i == len)
			break;
		unsigned long v = 0;
		size_t digits = 0;
		while (i < len && hexval(p[i]) >= 0) {
			if (v > 0x10ffff)
				break;
			v = v * 16 + (unsigned long)hexval(p[i++]);
			digits++;
		}
		if (digits == 0 || (i < len && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') ||
		    (!unicode && digits > 2)) {
			out->len = mark;
			return 0;
		}
		if (unicode) {
			if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
				out->len = mark;
				return -1;
			}
			put_utf8(out, v);
		} else
			buf_append_char(out, (char)v);
	}
	return 1;
}

static int decode_string(struct sieve_script *s, struct sieve_str *str, unsigned line, struct buf *error_r)
{
	if (memmem(str->s, str->len, "${", 2) == NULL)
		return IX_OK;
	struct buf out = BUF_INIT;
	size_t i = 0;
	while (i < str->len) {
		if (str->s[i] == '$' && i + 1 < str->len && str->s[i + 1] == '{') {
			const char *rest = str->s + i + 2;
			size_t rl = str->len - i - 2;
			const char *close = memchr(rest, '}', rl);
			int unicode = rl >= 8 && strncasecmp(rest, "unicode:", 8) == 0;
			int hex = rl >= 4 && strncasecmp(rest, "hex:", 4) == 0;
			if (close != NULL && (unicode || hex)) {
				size_t skip = unicode ? 8 : 4;
				int r = decode_one(rest + skip, (size_t)(close - rest) - skip, unicode, &out);
				if (r < 0) {
					buf_free(&out);
					return checkf(error_r, line, "encoded character out of the Unicode range");
				}
				if (r > 0) {
					i = (size_t)(close - str->s) + 1;
					continue;
				}
			}
		}
		buf_append_char(&out, str->s[i++]);
	}
	str->s = sieve_strdup(s, buf_cstr(&out), out.len);
	str->len = out.len;
	buf_free(&out);
	return IX_OK;
}

static int decode_tree(struct sieve_script *s, struct sieve_node *n, size_t count, struct buf *error_r)
{
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < n[i].arg_count; j++)
			for (size_t k = 0; k < n[i].args[j].count; k++) {
				int rc = decode_string(s, &n[i].args[j].strs[k], n[i].args[j].line, error_r);
				if (rc != IX_OK)
					return rc;
			}
		int rc = decode_tree(s, n[i].tests, n[i].test_count, error_r);
		if (rc == IX_OK)
			rc = decode_tree(s, n[i].block, n[i].block_count, error_r);
		if (rc != IX_OK)
			return rc;
	}
	return IX_OK;
}

int sieve_check(struct sieve_script *s, struct buf *error_r)
{
	/* the requires first: the rest of the checks depend on them */
	for (size_t i = 0; i < s->count && strcmp(s->cmds[i].name, "require") == 0; i++) {
		int rc = check_node(s, &s->cmds[i], 0, error_r);
		if (rc != IX_OK)
			return rc;
	}
	if (sieve_requires(s, "encoded-character")) {
		int rc = decode_tree(s, s->cmds, s->count, error_r);
		if (rc != IX_OK)
			return rc;
	}
	s->require_count = 0; /* check_list sees the requires again and lists them anew */
	return check_list(s, s->cmds, s->count, 1, error_r);
}

const struct sieve_arg *sieve_tag(const struct sieve_node *n, const char *tag)
{
	for (size_t i = 0; i < n->arg_count; i++) {
		const struct sieve_arg *a = &n->args[i];
		if (a->type == SIEVE_ARG_TAG && !a->tag_param && strcmp(a->tag, tag) == 0)
			return i + 1 < n->arg_count && n->args[i + 1].tag_param ? &n->args[i + 1] : a;
	}
	return NULL;
}

const struct sieve_arg *sieve_pos(const struct sieve_node *n, size_t i)
{
	for (size_t j = 0; j < n->arg_count; j++) {
		const struct sieve_arg *a = &n->args[j];
		if (a->type == SIEVE_ARG_TAG || a->tag_param)
			continue;
		if (i-- == 0)
			return a;
	}
	return NULL;
}
