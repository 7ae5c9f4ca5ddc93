/* sieve_parse.c - the Sieve grammar (RFC 5228 section 8): a lexer and a recursive-descent parser over a bounded
 * buffer building the tree in one arena, and the canonical dump that parses back to the same tree. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "transport/sieve/sieve_int.h"

void *sieve_alloc(struct sieve_script *s, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	struct sieve_chunk *c = s->mem;
	if (c == NULL || c->size - c->used < size) {
		size_t want = size > 8192 ? size : 8192;
		c = xmalloc(sizeof(*c) + want);
		c->next = s->mem;
		c->used = 0;
		c->size = want;
		s->mem = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += size;
	memset(p, 0, size);
	return p;
}

char *sieve_strdup(struct sieve_script *s, const char *p, size_t len)
{
	char *r = sieve_alloc(s, len + 1);
	memcpy(r, p, len);
	r[len] = 0;
	return r;
}

void sieve_free(struct sieve_script *script)
{
	if (script == NULL)
		return;
	struct sieve_chunk *c = script->mem;
	while (c != NULL) {
		struct sieve_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(script);
}

enum tok {
	T_EOF,
	T_ID,
	T_TAG,
	T_NUM,
	T_STR,
	T_LBRACKET,
	T_RBRACKET,
	T_COMMA,
	T_LPAREN,
	T_RPAREN,
	T_LBRACE,
	T_RBRACE,
	T_SEMI,
	T_ERR
};

struct parser {
	struct sieve_script *s;
	const char *p, *end;
	unsigned line;
	/* the current token */
	enum tok tok;
	unsigned tok_line;
	struct buf text; /* T_ID, T_TAG (lower-cased), T_STR */
	uint64_t num;
	struct buf *error_r;
	int failed;
	unsigned depth;
};

static void fail(struct parser *ps, unsigned line, const char *fmt, ...) IX_PRINTF(3, 4);
static void fail(struct parser *ps, unsigned line, const char *fmt, ...)
{
	if (ps->failed)
		return;
	ps->failed = 1;
	ps->tok = T_ERR;
	if (ps->error_r == NULL)
		return;
	buf_printf(ps->error_r, "line %u: ", line);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(ps->error_r, fmt, ap);
	va_end(ap);
}

static int at_eol(struct parser *ps)
{
	return ps->p < ps->end && (*ps->p == '\n' || (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n'));
}

/* skips one line end at p (CRLF or LF) */
static void skip_eol(struct parser *ps)
{
	if (*ps->p == '\r')
		ps->p++;
	ps->p++;
	ps->line++;
}

static void lex_quoted(struct parser *ps)
{
	ps->p++;
	for (;;) {
		if (ps->p >= ps->end) {
			fail(ps, ps->tok_line, "string not closed");
			return;
		}
		char c = *ps->p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (ps->p >= ps->end) {
				fail(ps, ps->tok_line, "string not closed");
				return;
			}
			c = *ps->p++;
		}
		if (c == '\n')
			ps->line++;
		buf_append_char(&ps->text, c);
	}
	ps->tok = T_STR;
}

/* after "text:": optional blanks, a hash comment or the line end, then lines up to "." alone */
static void lex_multiline(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
	if (ps->p < ps->end && *ps->p == '#') {
		while (ps->p < ps->end && *ps->p != '\n')
			ps->p++;
	}
	if (!at_eol(ps)) {
		fail(ps, ps->line, "text: must be followed by the end of the line");
		return;
	}
	skip_eol(ps);
	for (;;) {
		if (ps->p >= ps->end) {
			fail(ps, ps->tok_line, "text: not ended by a line with a single dot");
			return;
		}
		const char *ls = ps->p;
		while (ps->p < ps->end && *ps->p != '\n')
			ps->p++;
		if (ps->p >= ps->end) {
			fail(ps, ps->tok_line, "text: not ended by a line with a single dot");
			return;
		}
		const char *le = ps->p; /* at the LF */
		size_t n = (size_t)(le - ls);
		if (n > 0 && ls[n - 1] == '\r')
			n--;
		ps->p++;
		ps->line++;
		if (n == 1 && ls[0] == '.')
			break;
		if (n > 0 && ls[0] == '.') {
			ls++;
			n--;
		}
		buf_append(&ps->text, ls, n);
		buf_append_str(&ps->text, "\r\n");
	}
	ps->tok = T_STR;
}

static void next(struct parser *ps)
{
	if (ps->failed)
		return;
	buf_reset(&ps->text);
	for (;;) {
		if (ps->p >= ps->end) {
			ps->tok = T_EOF;
			ps->tok_line = ps->line;
			return;
		}
		char c = *ps->p;
		if (c == ' ' || c == '\t' || c == '\r') {
			if (c == '\r' && !at_eol(ps)) {
				fail(ps, ps->line, "a CR not followed by LF");
				return;
			}
			ps->p++;
		} else if (c == '\n') {
			ps->p++;
			ps->line++;
		} else if (c == '#') {
			while (ps->p < ps->end && *ps->p != '\n')
				ps->p++;
		} else if (c == '/' && ps->p + 1 < ps->end && ps->p[1] == '*') {
			unsigned start = ps->line;
			ps->p += 2;
			for (;;) {
				if (ps->p + 1 >= ps->end) {
					fail(ps, start, "comment /* not closed");
					return;
				}
				if (ps->p[0] == '*' && ps->p[1] == '/') {
					ps->p += 2;
					break;
				}
				if (*ps->p == '\n')
					ps->line++;
				ps->p++;
			}
		} else
			break;
	}
	ps->tok_line = ps->line;
	char c = *ps->p;
	static const char punct[] = "[],(){};";
	static const enum tok ptok[] = {
		T_LBRACKET, T_RBRACKET, T_COMMA, T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_SEMI
	};
	const char *pc = c ? strchr(punct, c) : NULL;
	if (pc != NULL) {
		ps->p++;
		ps->tok = ptok[pc - punct];
		return;
	}
	if (c == '"') {
		lex_quoted(ps);
		return;
	}
	if (isdigit((unsigned char)c)) {
		uint64_t v = 0;
		while (ps->p < ps->end && isdigit((unsigned char)*ps->p)) {
			unsigned d = (unsigned)(*ps->p++ - '0');
			if (v > (UINT64_MAX - d) / 10) {
				fail(ps, ps->line, "number too large");
				return;
			}
			v = v * 10 + d;
		}
		if (ps->p < ps->end) {
			unsigned shift = 0;
			switch (*ps->p) {
			case 'k':
			case 'K': shift = 10; break;
			case 'm':
			case 'M': shift = 20; break;
			case 'g':
			case 'G': shift = 30; break;
			}
			if (shift) {
				ps->p++;
				if (v > (UINT64_MAX >> shift)) {
					fail(ps, ps->line, "number too large");
					return;
				}
				v <<= shift;
			}
		}
		if (ps->p < ps->end && (isalnum((unsigned char)*ps->p) || *ps->p == '_')) {
			fail(ps, ps->line, "bad number");
			return;
		}
		ps->num = v;
		ps->tok = T_NUM;
		return;
	}
	int tag = 0;
	if (c == ':') {
		tag = 1;
		ps->p++;
		buf_append_char(&ps->text, ':');
		if (ps->p >= ps->end || !(isalpha((unsigned char)*ps->p) || *ps->p == '_')) {
			fail(ps, ps->line, "a colon not followed by a tag name");
			return;
		}
	}
	if (ps->p < ps->end && (isalpha((unsigned char)*ps->p) || *ps->p == '_')) {
		while (ps->p < ps->end && (isalnum((unsigned char)*ps->p) || *ps->p == '_'))
			buf_append_char(&ps->text, (char)tolower((unsigned char)*ps->p++));
		if (!tag && strcmp(buf_cstr(&ps->text), "text") == 0 && ps->p < ps->end && *ps->p == ':') {
			ps->p++;
			buf_reset(&ps->text);
			lex_multiline(ps);
			return;
		}
		ps->tok = tag ? T_TAG : T_ID;
		return;
	}
	if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
		fail(ps, ps->line, "unexpected character '%c'", c);
	else
		fail(ps, ps->line, "unexpected byte 0x%02x", (unsigned char)c);
}

/* appends one element to an arena array (doubling at powers of two) */
static void *push(struct sieve_script *s, void *arr, size_t *count, size_t elsize)
{
	size_t n = *count;
	if (n == 0 || (n & (n - 1)) == 0) {
		void *bigger = sieve_alloc(s, elsize * (n ? n * 2 : 1));
		if (n)
			memcpy(bigger, arr, elsize * n);
		arr = bigger;
	}
	memset((char *)arr + elsize * n, 0, elsize);
	*count = n + 1;
	return arr;
}

static struct sieve_str take_string(struct parser *ps)
{
	struct sieve_str r = { sieve_strdup(ps->s, buf_cstr(&ps->text), ps->text.len), ps->text.len };
	return r;
}

static void parse_test(struct parser *ps, struct sieve_node *t);

/* arguments of a command or test, and its test or test list */
static void parse_arguments(struct parser *ps, struct sieve_node *n)
{
	for (;;) {
		struct sieve_arg a = { .line = ps->tok_line };
		if (ps->tok == T_STR) {
			a.type = SIEVE_ARG_STRING;
			a.strs = sieve_alloc(ps->s, sizeof(*a.strs));
			a.strs[0] = take_string(ps);
			a.count = 1;
			next(ps);
		} else if (ps->tok == T_NUM) {
			a.type = SIEVE_ARG_NUMBER;
			a.number = ps->num;
			next(ps);
		} else if (ps->tok == T_TAG) {
			a.type = SIEVE_ARG_TAG;
			a.tag = sieve_strdup(ps->s, buf_cstr(&ps->text), ps->text.len);
			next(ps);
		} else if (ps->tok == T_LBRACKET) {
			a.type = SIEVE_ARG_LIST;
			next(ps);
			for (;;) {
				if (ps->tok != T_STR) {
					fail(ps, ps->tok_line, "a string list holds strings only");
					return;
				}
				a.strs = push(ps->s, a.strs, &a.count, sizeof(*a.strs));
				a.strs[a.count - 1] = take_string(ps);
				next(ps);
				if (ps->tok == T_COMMA) {
					next(ps);
					continue;
				}
				if (ps->tok != T_RBRACKET) {
					fail(ps, ps->tok_line, "',' or ']' expected in a string list");
					return;
				}
				next(ps);
				break;
			}
		} else
			break;
		if (ps->failed)
			return;
		n->args = push(ps->s, n->args, &n->arg_count, sizeof(*n->args));
		n->args[n->arg_count - 1] = a;
	}
	if (ps->tok == T_ID) {
		n->tests = push(ps->s, n->tests, &n->test_count, sizeof(*n->tests));
		parse_test(ps, &n->tests[0]);
	} else if (ps->tok == T_LPAREN) {
		next(ps);
		for (;;) {
			if (ps->tok != T_ID) {
				fail(ps, ps->tok_line, "a test expected");
				return;
			}
			n->tests = push(ps->s, n->tests, &n->test_count, sizeof(*n->tests));
			parse_test(ps, &n->tests[n->test_count - 1]);
			if (ps->failed)
				return;
			if (ps->tok == T_COMMA) {
				next(ps);
				continue;
			}
			if (ps->tok != T_RPAREN) {
				fail(ps, ps->tok_line, "',' or ')' expected in a test list");
				return;
			}
			next(ps);
			break;
		}
	}
}

static void parse_test(struct parser *ps, struct sieve_node *t)
{
	if (++ps->depth > SIEVE_MAX_NESTING) {
		fail(ps, ps->tok_line, "tests nested too deep");
		return;
	}
	t->name = sieve_strdup(ps->s, buf_cstr(&ps->text), ps->text.len);
	t->line = ps->tok_line;
	next(ps);
	parse_arguments(ps, t);
	ps->depth--;
}

static void parse_commands(struct parser *ps, struct sieve_node **cmds, size_t *count, int in_block)
{
	for (;;) {
		if (ps->failed)
			return;
		if (ps->tok == T_EOF) {
			if (in_block)
				fail(ps, ps->tok_line, "'}' missing at the end of the script");
			return;
		}
		if (ps->tok == T_RBRACE) {
			if (!in_block)
				fail(ps, ps->tok_line, "'}' without a block");
			return;
		}
		if (ps->tok != T_ID) {
			fail(ps, ps->tok_line, "a command expected");
			return;
		}
		*cmds = push(ps->s, *cmds, count, sizeof(**cmds));
		struct sieve_node *c = &(*cmds)[*count - 1];
		c->name = sieve_strdup(ps->s, buf_cstr(&ps->text), ps->text.len);
		c->line = ps->tok_line;
		next(ps);
		parse_arguments(ps, c);
		if (ps->failed)
			return;
		if (ps->tok == T_SEMI) {
			next(ps);
		} else if (ps->tok == T_LBRACE) {
			if (++ps->depth > SIEVE_MAX_NESTING) {
				fail(ps, ps->tok_line, "blocks nested too deep");
				return;
			}
			next(ps);
			c->has_block = 1;
			parse_commands(ps, &c->block, &c->block_count, 1);
			if (ps->failed)
				return;
			next(ps); /* the '}' */
			ps->depth--;
		} else {
			fail(ps, ps->tok_line, "';' or '{' expected after %s", c->name);
			return;
		}
	}
}

int sieve_parse(const char *src, size_t len, size_t max_len, struct sieve_script **script_r, struct buf *error_r)
{
	*script_r = NULL;
	if (max_len == 0)
		max_len = SIEVE_DEFAULT_MAX_SCRIPT;
	if (len > max_len) {
		if (error_r != NULL)
			buf_printf(error_r, "line 1: script of %zu bytes is over the limit of %zu", len, max_len);
		return IX_ELIMIT;
	}
	struct parser ps = {
		.s = xcalloc(1, sizeof(struct sieve_script)), .p = src, .end = src + len, .line = 1, .error_r = error_r
	};
	buf_init(&ps.text);
	next(&ps);
	parse_commands(&ps, &ps.s->cmds, &ps.s->count, 0);
	buf_free(&ps.text);
	if (!ps.failed && sieve_check(ps.s, error_r) != IX_OK)
		ps.failed = 1;
	if (ps.failed) {
		sieve_free(ps.s);
		return IX_EINVAL;
	}
	*script_r = ps.s;
	return IX_OK;
}

const struct sieve_node *sieve_commands(const struct sieve_script *script, size_t *count_r)
{
	*count_r = script->count;
	return script->cmds;
}

int sieve_requires(const struct sieve_script *script, const char *name)
{
	for (size_t i = 0; i < script->require_count; i++)
		if (strcmp(script->requires[i], name) == 0)
			return 1;
	return 0;
}

static void dump_string(struct buf *out, const struct sieve_str *s)
{
	buf_append_char(out, '"');
	for (size_t i = 0; i < s->len; i++) {
		if (s->s[i] == '"' || s->s[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, s->s[i]);
	}
	buf_append_char(out, '"');
}

static void dump_node(struct buf *out, const struct sieve_node *n, int indent, int is_test)
{
	if (!is_test)
		for (int i = 0; i < indent; i++)
			buf_append_char(out, '\t');
	buf_append_str(out, n->name);
	for (size_t i = 0; i < n->arg_count; i++) {
		const struct sieve_arg *a = &n->args[i];
		buf_append_char(out, ' ');
		switch (a->type) {
		case SIEVE_ARG_TAG: buf_append_str(out, a->tag); break;
		case SIEVE_ARG_NUMBER: buf_printf(out, "%llu", (unsigned long long)a->number); break;
		case SIEVE_ARG_STRING: dump_string(out, &a->strs[0]); break;
		case SIEVE_ARG_LIST:
			buf_append_char(out, '[');
			for (size_t j = 0; j < a->count; j++) {
				if (j)
					buf_append_str(out, ", ");
				dump_string(out, &a->strs[j]);
			}
			buf_append_char(out, ']');
			break;
		}
	}
	int list = strcmp(n->name, "allof") == 0 || strcmp(n->name, "anyof") == 0 || n->test_count > 1;
	if (n->test_count > 0) {
		buf_append_str(out, list ? " (" : " ");
		for (size_t i = 0; i < n->test_count; i++) {
			if (i)
				buf_append_str(out, ", ");
			dump_node(out, &n->tests[i], 0, 1);
		}
		if (list)
			buf_append_char(out, ')');
	}
	if (is_test)
		return;
	if (!n->has_block) {
		buf_append_str(out, ";\n");
		return;
	}
	buf_append_str(out, " {\n");
	for (size_t i = 0; i < n->block_count; i++)
		dump_node(out, &n->block[i], indent + 1, 0);
	for (int i = 0; i < indent; i++)
		buf_append_char(out, '\t');
	buf_append_str(out, "}\n");
}

void sieve_dump(const struct sieve_script *script, struct buf *out)
{
	for (size_t i = 0; i < script->count; i++)
		dump_node(out, &script->cmds[i], 0, 0);
}
