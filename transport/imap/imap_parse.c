/* imap_parse.c - incremental IMAP command parser: a byte-wise framer collects one command (lines + literals) into
 * a bounded buffer, then a recursive-descent pass over that buffer builds the argument tree. */
#include "transport/imap/imap_parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"

/* Appends an error message; error_r may be NULL (the caller only wants the code). */
static void err_append(struct buf *error_r, const char *msg)
{
	if (error_r != NULL)
		buf_append_str(error_r, msg);
}

#define ARENA_CHUNK 4096u
#define RP_STOP 1 /* the tree parser in partial mode reached the end of the prefix without an error */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(max_align_t) unsigned char data[];
};

enum frame_state {
	ST_LINE,        /* reading command text */
	ST_LITERAL,     /* reading (or discarding) literal bytes */
	ST_LIT_PENDING, /* a literal was announced; waiting for accept/reject */
};

enum lit_state {
	LIT_NONE,
	LIT_DIGITS,
	LIT_PLUS,
	LIT_CLOSE,
};

struct imap_parser {
	struct imap_parser_settings set;
	enum frame_state state;
	bool ended;     /* the current command is over; the next byte starts a new one */
	bool discard;   /* an error was reported; skip the rest of this command */
	bool cr;        /* the previous byte was CR */
	struct buf cmd; /* the command as sent (non-discard mode) */
	size_t line_bytes;
	uint64_t literal_total;
	uint64_t lit_remaining;
	/* lexer state */
	bool in_quote, quote_esc;
	unsigned char prev;
	enum lit_state lit;
	uint64_t lit_num;
	unsigned lit_digits;
	bool lit_plus, lit_binary, cur_binary;
	bool sinking; /* the literal being read goes to set.sink */
	bool sunk;    /* this command has a sunk literal: at sunk_at in cmd, sunk_size bytes */
	size_t sunk_at;
	uint64_t sunk_size;
	struct imap_literal_info literal;
	/* results */
	unsigned prechecks;
	bool have_cmd;
	struct imap_command command;
	struct buf error;
	int error_code;
	struct buf tag;
	bool tag_valid;
	/* allocation for the argument tree */
	struct arena_chunk *arena;
	struct imap_arg *stack;
	size_t stack_len, stack_cap;
};

/* ---- arena ---- */

static void *arena_alloc(struct imap_parser *p, size_t n)
{
	n = (n + 15u) & ~(size_t)15u;
	struct arena_chunk *c = p->arena;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		if (cap > SIZE_MAX - sizeof(*c))
			panic("imap_parse: arena size overflow");
		c = xmalloc(sizeof(*c) + cap);
		c->next = p->arena;
		c->used = 0;
		c->cap = cap;
		p->arena = c;
	}
	void *r = c->data + c->used;
	c->used += n;
	return r;
}

static char *arena_strndup(struct imap_parser *p, const void *s, size_t len)
{
	if (len == SIZE_MAX)
		panic("imap_parse: string size overflow");
	char *r = arena_alloc(p, len + 1);
	if (len > 0)
		memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

static void arena_clear(struct imap_parser *p)
{
	/* keep the oldest chunk (the last in the list) when it is the standard size */
	struct arena_chunk *c = p->arena, *keep = NULL;
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		if (next == NULL && c->cap == ARENA_CHUNK) {
			keep = c;
			keep->used = 0;
		} else {
			free(c);
		}
		c = next;
	}
	p->arena = keep;
}

/* ---- lifecycle ---- */

struct imap_parser *imap_parser_create(const struct imap_parser_settings *settings)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));
	if (settings != NULL)
		p->set = *settings;
	if (p->set.max_line == 0)
		p->set.max_line = IMAP_PARSE_MAX_LINE;
	if (p->set.max_literal == 0)
		p->set.max_literal = IMAP_PARSE_MAX_LITERAL;
	if (p->set.max_literals == 0)
		p->set.max_literals = IMAP_PARSE_MAX_LITERALS;
	if (p->set.max_depth == 0)
		p->set.max_depth = IMAP_PARSE_MAX_DEPTH;
	if (p->set.max_depth > IMAP_PARSE_HARD_MAX_DEPTH)
		p->set.max_depth = IMAP_PARSE_HARD_MAX_DEPTH;
	if (p->set.max_args == 0)
		p->set.max_args = IMAP_PARSE_MAX_ARGS;
	buf_init(&p->cmd);
	buf_init(&p->error);
	buf_init(&p->tag);
	imap_parser_reset(p);
	return p;
}

void imap_parser_destroy(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	buf_free(&p->cmd);
	buf_free(&p->error);
	buf_free(&p->tag);
	while (p->arena != NULL) {
		struct arena_chunk *next = p->arena->next;
		free(p->arena);
		p->arena = next;
	}
	free(p->stack);
	free(p);
}

static void begin_command(struct imap_parser *p)
{
	p->state = ST_LINE;
	p->ended = false;
	p->discard = false;
	p->cr = false;
	buf_reset(&p->cmd);
	if (p->cmd.cap > 4 * p->set.max_line)
		buf_free(&p->cmd); /* do not keep a huge literal's memory around */
	p->line_bytes = 0;
	p->literal_total = 0;
	p->lit_remaining = 0;
	p->in_quote = false;
	p->quote_esc = false;
	p->prev = 0;
	p->lit = LIT_NONE;
	p->have_cmd = false;
	p->sinking = false;
	p->sunk = false;
	p->prechecks = 0;
	memset(&p->command, 0, sizeof(p->command));
	buf_reset(&p->error);
	p->error_code = IX_OK;
	buf_reset(&p->tag);
	p->tag_valid = false;
	arena_clear(p);
	p->stack_len = 0;
}

void imap_parser_reset(struct imap_parser *p)
{
	begin_command(p);
}

/* ---- character classes ---- */

/* ATOM-CHAR of RFC 3501 (any CHAR except atom-specials). */
static bool is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

static bool is_tag_char(unsigned char c)
{
	return (is_atom_char(c) || c == ']') && c != '+';
}

/* ---- tag capture for error responses ---- */

static void capture_tag(struct imap_parser *p)
{
	buf_reset(&p->tag);
	p->tag_valid = false;
	const unsigned char *s = (const unsigned char *)p->cmd.data;
	size_t n = p->cmd.len, i = 0;
	while (i < n && i <= IMAP_PARSE_MAX_TAG && is_tag_char(s[i]))
		i++;
	if (i == 0 || i > IMAP_PARSE_MAX_TAG || i >= n || s[i] != ' ')
		return;
	buf_append(&p->tag, s, i);
	p->tag_valid = true;
}

/* ---- framing ---- */

static enum imap_parse_result frame_error(struct imap_parser *p, int code, const char *msg)
{
	buf_reset(&p->error);
	buf_append_str(&p->error, msg);
	p->error_code = code;
	capture_tag(p);
	p->discard = true;
	p->in_quote = false;
	p->lit = LIT_NONE;
	return IMAP_PARSE_ERROR;
}

/* An error found at the LF that ends a line: the command is over, nothing to discard. */
static enum imap_parse_result line_end_error(struct imap_parser *p, const char *msg)
{
	frame_error(p, IX_EINVAL, msg);
	p->discard = false;
	p->ended = true;
	return IMAP_PARSE_ERROR;
}

static int parse_tree(struct imap_parser *p, struct buf *error_r, bool partial);

/* At a literal announcement: checks the command so far, so that a bad command is refused before the client
 * is invited to send (or before the parser stores) the literal. Returns 0 or the error code (message in
 * p->error). Bounded to IMAP_PARSE_MAX_PRECHECKS passes per command, each O(command text). */
static int precheck(struct imap_parser *p)
{
	if (p->prechecks >= IMAP_PARSE_MAX_PRECHECKS)
		return 0;
	p->prechecks++;
	buf_reset(&p->error);
	int ret = parse_tree(p, &p->error, true);
	arena_clear(p);
	p->stack_len = 0;
	memset(&p->command, 0, sizeof(p->command));
	return ret == RP_STOP ? 0 : ret;
}

static enum imap_parse_result finish_command(struct imap_parser *p)
{
	p->ended = true;
	buf_reset(&p->error);
	int ret = parse_tree(p, &p->error, false);
	if (ret == 0) {
		p->have_cmd = true;
		return IMAP_PARSE_DONE;
	}
	p->error_code = ret;
	if (p->command.tag != NULL) {
		buf_reset(&p->tag);
		buf_append_str(&p->tag, p->command.tag);
		p->tag_valid = true;
	} else {
		capture_tag(p);
	}
	return IMAP_PARSE_ERROR;
}

/* A line ended with a literal announcement (lexer in LIT_CLOSE). */
static enum imap_parse_result announce_literal(struct imap_parser *p)
{
	uint64_t n = p->lit_num;
	bool sync = !p->lit_plus;
	p->lit = LIT_NONE;
	const char *msg = NULL;
	int code = IX_EINVAL;
	if (p->lit_binary && !p->set.binary)
		msg = "Binary literals are not supported";
	else if (!sync && !p->set.literal_plus && !p->set.literal_minus)
		msg = "Non-synchronizing literals are not supported";
	else if (!sync && !p->set.literal_plus && n > IMAP_LITERAL_MINUS_MAX) {
		msg = "Non-synchronizing literal larger than 4096 bytes (LITERAL-)";
		code = IX_ELIMIT;
	} else if (n > p->set.max_literal || n > p->set.max_literals - p->literal_total) {
		msg = "Literal too large";
		code = IX_ELIMIT;
	}
	char *parse_msg = NULL;
	if (msg == NULL && (code = precheck(p)) != 0) {
		parse_msg = buf_steal(&p->error);
		msg = parse_msg;
	}
	if (msg != NULL) {
		frame_error(p, code, msg);
		free(parse_msg);
		if (sync) {
			p->ended = true; /* the client waits for a "+" it will not get */
		} else {
			p->state = ST_LITERAL;
			p->lit_remaining = n;
		}
		return IMAP_PARSE_ERROR;
	}
	p->literal.size = n;
	p->literal.sync = sync;
	p->literal.binary = p->lit_binary;
	p->state = ST_LIT_PENDING;
	capture_tag(p);
	return IMAP_PARSE_LITERAL;
}

static void discard_line_end(struct imap_parser *p)
{
	if (p->lit == LIT_CLOSE && p->lit_plus) {
		p->state = ST_LITERAL;
		p->lit_remaining = p->lit_num;
		if (p->lit_remaining == 0)
			p->state = ST_LINE;
	} else {
		p->ended = true;
	}
	p->lit = LIT_NONE;
	p->cr = false;
}

/* One byte of command text in discard mode: only literal announcements at the end of a line matter. */
static void discard_byte(struct imap_parser *p, unsigned char c)
{
	if (c == '\n') {
		discard_line_end(p);
		return;
	}
	if (c == '\r')
		return;
	switch (p->lit) {
	case LIT_NONE: break;
	case LIT_DIGITS:
		if (c >= '0' && c <= '9') {
			if (p->lit_num > (UINT64_MAX - 9) / 10)
				p->lit_num = UINT64_MAX; /* saturate: this is only skipped, never stored */
			else
				p->lit_num = p->lit_num * 10 + (unsigned)(c - '0');
			return;
		}
		if (c == '+') {
			p->lit = LIT_PLUS;
			p->lit_plus = true;
			return;
		}
		if (c == '}') {
			p->lit = LIT_CLOSE;
			return;
		}
		break;
	case LIT_PLUS:
		if (c == '}') {
			p->lit = LIT_CLOSE;
			return;
		}
		break;
	case LIT_CLOSE: break;
	}
	p->lit = LIT_NONE;
	if (c == '{') {
		p->lit = LIT_DIGITS;
		p->lit_num = 0;
		p->lit_plus = false;
	}
}

/* One byte of command text (not discarding). Returns NEED_MORE to go on, or an event. */
static enum imap_parse_result line_byte(struct imap_parser *p, unsigned char c)
{
	if (p->cr && c != '\n')
		return frame_error(p, IX_EINVAL, "CR not followed by LF");
	if (c != '\n' && c != '\r') {
		if (++p->line_bytes > p->set.max_line)
			return frame_error(p, IX_ELIMIT, "Command line too long");
	}
	buf_append_char(&p->cmd, (char)c);
	if (c == '\0')
		return frame_error(p, IX_EINVAL, "NUL byte in command");
	if (c == '\r') {
		p->cr = true;
		if (p->in_quote)
			return frame_error(p, IX_EINVAL, "Unterminated quoted string");
		return IMAP_PARSE_NEED_MORE;
	}
	if (c == '\n') {
		p->cr = false;
		if (p->in_quote)
			return line_end_error(p, "Unterminated quoted string");
		if (p->lit == LIT_CLOSE)
			return announce_literal(p);
		if (p->lit != LIT_NONE)
			return line_end_error(p, "Invalid literal announcement");
		return finish_command(p);
	}
	if (p->in_quote) {
		if (p->quote_esc)
			p->quote_esc = false;
		else if (c == '\\')
			p->quote_esc = true;
		else if (c == '"')
			p->in_quote = false;
		p->prev = c;
		return IMAP_PARSE_NEED_MORE;
	}
	switch (p->lit) {
	case LIT_NONE: break;
	case LIT_DIGITS:
		if (c >= '0' && c <= '9') {
			if (p->lit_num > (UINT64_MAX - 9) / 10)
				return frame_error(p, IX_ELIMIT, "Literal too large");
			p->lit_num = p->lit_num * 10 + (unsigned)(c - '0');
			p->lit_digits++;
			return IMAP_PARSE_NEED_MORE;
		}
		if ((c == '+' || c == '}') && p->lit_digits > 0) {
			p->lit = c == '+' ? LIT_PLUS : LIT_CLOSE;
			p->lit_plus = c == '+';
			return IMAP_PARSE_NEED_MORE;
		}
		return frame_error(p, IX_EINVAL, "Invalid literal size");
	case LIT_PLUS:
		if (c == '}') {
			p->lit = LIT_CLOSE;
			return IMAP_PARSE_NEED_MORE;
		}
		return frame_error(p, IX_EINVAL, "Invalid literal announcement");
	case LIT_CLOSE: return frame_error(p, IX_EINVAL, "Literal announcement must end the line");
	}
	if (c == '"') {
		p->in_quote = true;
		p->quote_esc = false;
	} else if (c == '{') {
		bool binary = p->prev == '~';
		unsigned char before = binary ? 0 : p->prev;
		if (binary) {
			/* the byte before '~' must start a token: look at the stored text */
			size_t n = p->cmd.len;
			before = n >= 3 ? (unsigned char)p->cmd.data[n - 3] : 0;
		}
		if (before != ' ' && before != '(')
			return frame_error(p, IX_EINVAL, "Unexpected '{'");
		p->lit = LIT_DIGITS;
		p->lit_num = 0;
		p->lit_digits = 0;
		p->lit_plus = false;
		p->lit_binary = binary;
	}
	p->prev = c;
	return IMAP_PARSE_NEED_MORE;
}

/* Whether c can be copied without looking at it: it ends no line, quote or token and starts no literal. */
static bool frame_plain(unsigned char c)
{
	return c != '\r' && c != '\n' && c != '"' && c != '{' && c != '\0';
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data, size_t len, size_t *consumed_r)
{
	const unsigned char *s = data;
	size_t i = 0;
	if (p->state == ST_LIT_PENDING)
		imap_parser_literal_accept(p);
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
	while (i < len) {
		if (p->ended)
			begin_command(p);
		if (p->state == ST_LITERAL) {
			size_t n = len - i;
			if (n > p->lit_remaining)
				n = (size_t)p->lit_remaining;
			if (!p->discard) {
				if (!p->cur_binary && memchr(s + i, '\0', n) != NULL) {
					size_t at = (size_t)((const unsigned char *)memchr(s + i, '\0', n) - (s + i));
					i += at + 1;
					p->lit_remaining -= at + 1;
					p->sinking = false;
					r = frame_error(p, IX_EINVAL, "NUL byte in literal (use ~{n})");
					if (p->lit_remaining == 0)
						p->state = ST_LINE;
					/* a sync literal's client sends its line end anyway: discard mode skips it */
					break;
				}
				if (p->sinking)
					p->set.sink(p->set.sink_ctx, s + i, n);
				else
					buf_append(&p->cmd, s + i, n);
			}
			i += n;
			p->lit_remaining -= n;
			if (p->lit_remaining == 0) {
				p->sinking = false;
				p->state = ST_LINE;
				p->prev = 'x'; /* a literal is a token: '{' right after it is not a token start */
			}
			continue;
		}
		if (!p->discard && !p->cr && p->lit == LIT_NONE && p->line_bytes < p->set.max_line) {
			/* fast path: a run of bytes that changes no framing state is copied at once */
			size_t room = p->set.max_line - p->line_bytes;
			size_t end = len - i < room ? len : i + room, j = i;
			if (!p->in_quote) {
				while (j < end && frame_plain(s[j]))
					j++;
			} else if (!p->quote_esc) {
				while (j < end && frame_plain(s[j]) && s[j] != '\\')
					j++;
			}
			if (j > i) {
				buf_append(&p->cmd, s + i, j - i);
				p->line_bytes += j - i;
				p->prev = s[j - 1];
				i = j;
				continue;
			}
		}
		unsigned char c = s[i++];
		if (p->discard) {
			discard_byte(p, c);
			continue;
		}
		r = line_byte(p, c);
		if (r != IMAP_PARSE_NEED_MORE)
			break;
	}
	*consumed_r = i;
	return r;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
	return p->have_cmd ? &p->command : NULL;
}

const struct imap_literal_info *imap_parser_literal(const struct imap_parser *p)
{
	return p->state == ST_LIT_PENDING ? &p->literal : NULL;
}

void imap_parser_literal_accept(struct imap_parser *p)
{
	if (p->state != ST_LIT_PENDING)
		return;
	p->literal_total += p->literal.size;
	p->lit_remaining = p->literal.size;
	p->cur_binary = p->literal.binary;
	p->state = p->literal.size > 0 ? ST_LITERAL : ST_LINE;
	p->prev = 'x';
}

void imap_parser_literal_accept_sink(struct imap_parser *p)
{
	if (p->state != ST_LIT_PENDING)
		return;
	bool sink = p->set.sink != NULL && !p->sunk;
	uint64_t size = p->literal.size;
	imap_parser_literal_accept(p);
	if (!sink)
		return;
	p->sunk = true;
	p->sunk_at = p->cmd.len;
	p->sunk_size = size;
	p->sinking = size > 0;
}

void imap_parser_literal_reject(struct imap_parser *p)
{
	if (p->state != ST_LIT_PENDING)
		return;
	if (p->literal.sync) {
		p->state = ST_LINE;
		p->ended = true;
	} else {
		p->discard = true;
		p->lit_remaining = p->literal.size;
		p->state = p->literal.size > 0 ? ST_LITERAL : ST_LINE;
	}
}

const char *imap_parser_error(const struct imap_parser *p)
{
	return buf_cstr(&p->error);
}

int imap_parser_error_code(const struct imap_parser *p)
{
	return p->error_code;
}

const char *imap_parser_tag(const struct imap_parser *p)
{
	if (p->have_cmd)
		return p->command.tag;
	return p->tag_valid ? buf_cstr(&p->tag) : NULL;
}

int imap_parse_whole(struct imap_parser *p, const void *data, size_t len, const struct imap_command **cmd_r,
		     size_t *consumed_r, struct buf *error_r)
{
	size_t off = 0;
	*cmd_r = NULL;
	begin_command(p);
	for (;;) {
		size_t used;
		enum imap_parse_result r = imap_parser_feed(p, (const char *)data + off, len - off, &used);
		off += used;
		*consumed_r = off;
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			err_append(error_r, "Incomplete command");
			imap_parser_reset(p);
			return IX_EINVAL;
		case IMAP_PARSE_LITERAL: imap_parser_literal_accept(p); break;
		case IMAP_PARSE_DONE: *cmd_r = imap_parser_command(p); return 0;
		case IMAP_PARSE_ERROR: err_append(error_r, imap_parser_error(p)); return imap_parser_error_code(p);
		}
	}
}

/* ---- the tree: recursive descent over the complete command ---- */

struct rp {
	struct imap_parser *p;
	const unsigned char *s;
	size_t n, pos;
	unsigned nargs;
	struct buf *err;
	bool partial; /* a prefix ending in a literal announcement: stop with RP_STOP at its end */
};

static int rp_fail(struct rp *r, int code, const char *msg)
{
	if (r->err != NULL)
		buf_append_str(r->err, msg);
	return code;
}

static bool at_eol(const struct rp *r)
{
	return r->pos >= r->n || r->s[r->pos] == '\r' || r->s[r->pos] == '\n';
}

static void push_arg(struct imap_parser *p, const struct imap_arg *a)
{
	if (p->stack_len == p->stack_cap) {
		size_t cap = p->stack_cap ? p->stack_cap * 2 : 32;
		p->stack = xrealloc(p->stack, cap * sizeof(*p->stack));
		p->stack_cap = cap;
	}
	p->stack[p->stack_len++] = *a;
}

/* Moves stack[start..] into one arena array. */
static const struct imap_arg *pop_args(struct imap_parser *p, size_t start, size_t *count_r)
{
	size_t count = p->stack_len - start;
	*count_r = count;
	if (count == 0)
		return NULL;
	struct imap_arg *a = arena_alloc(p, count * sizeof(*a));
	memcpy(a, p->stack + start, count * sizeof(*a));
	p->stack_len = start;
	return a;
}

static bool bracket_prefix_ok(const unsigned char *s, size_t len)
{
	static const char *const names[] = { "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE" };
	for (size_t i = 0; i < IX_ARRAY_LEN(names); i++) {
		if (strlen(names[i]) == len && strncasecmp((const char *)s, names[i], len) == 0)
			return true;
	}
	return false;
}

static int rp_atom(struct rp *r, struct imap_arg *a)
{
	size_t start = r->pos;
	bool brackets_done = false;
	while (r->pos < r->n) {
		unsigned char c = r->s[r->pos];
		if (c == ' ' || c == ')' || c == '\r' || c == '\n')
			break;
		if (c == '[' && !brackets_done && bracket_prefix_ok(r->s + start, r->pos - start)) {
			/* BODY[HEADER.FIELDS (A B)]: spaces and parentheses are part of the atom up to ']' */
			size_t i = r->pos + 1;
			while (i < r->n && r->s[i] != ']') {
				unsigned char d = r->s[i];
				if (d == '\r' || d == '\n')
					return rp_fail(r, IX_EINVAL, "Unterminated section '['");
				if (d < 0x20 || d >= 0x7f || d == '[' || d == '{')
					return rp_fail(r, IX_EINVAL, "Invalid character in section");
				i++;
			}
			if (i >= r->n)
				return rp_fail(r, IX_EINVAL, "Unterminated section '['");
			r->pos = i + 1;
			brackets_done = true;
			continue;
		}
		if (c == '\\' && r->pos == start) {
			r->pos++;
			continue;
		}
		if (c == '\0')
			return rp_fail(r, IX_EINVAL, "NUL byte in atom");
		if (c >= 0x80)
			return rp_fail(r, IX_EINVAL, "8-bit character in atom");
		if (c < 0x20 || c == 0x7f)
			return rp_fail(r, IX_EINVAL, "Control character in atom");
		if (c == '(' || c == '"' || c == '{' || c == '\\')
			return rp_fail(r, IX_EINVAL, "Invalid character in atom");
		r->pos++;
	}
	size_t len = r->pos - start;
	if (len == 0)
		return rp_fail(r, IX_EINVAL, "Empty atom");
	a->type = len == 3 && strncasecmp((const char *)r->s + start, "NIL", 3) == 0 ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	a->str = arena_strndup(r->p, r->s + start, len);
	a->len = len;
	return 0;
}

static int rp_quoted(struct rp *r, struct imap_arg *a)
{
	size_t i = r->pos + 1;
	/* the unescaped string is never longer than the raw one */
	size_t end = i;
	while (end < r->n && r->s[end] != '"') {
		if (r->s[end] == '\\')
			end++;
		end++;
	}
	if (end >= r->n)
		return rp_fail(r, IX_EINVAL, "Unterminated quoted string");
	char *out = arena_alloc(r->p, end - i + 1);
	size_t o = 0;
	for (; i < end; i++) {
		unsigned char c = r->s[i];
		if (c == '\\') {
			c = r->s[++i];
			if (c != '\\' && c != '"')
				return rp_fail(r, IX_EINVAL, "Invalid escape in quoted string");
		} else if (c == '\r' || c == '\n') {
			return rp_fail(r, IX_EINVAL, "Unterminated quoted string");
		} else if (c == '\0') {
			return rp_fail(r, IX_EINVAL, "NUL byte in quoted string");
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	r->pos = end + 1;
	a->type = IMAP_ARG_QUOTED;
	a->str = out;
	a->len = o;
	return 0;
}

static int rp_literal(struct rp *r, struct imap_arg *a)
{
	bool binary = false;
	if (r->s[r->pos] == '~') {
		binary = true;
		r->pos++;
		if (r->pos >= r->n || r->s[r->pos] != '{')
			return rp_fail(r, IX_EINVAL, "Invalid character '~'");
	}
	r->pos++; /* '{' */
	uint64_t size = 0;
	size_t digits = 0;
	while (r->pos < r->n && r->s[r->pos] >= '0' && r->s[r->pos] <= '9') {
		unsigned d = (unsigned)(r->s[r->pos] - '0');
		if (size > (UINT64_MAX - d) / 10)
			return rp_fail(r, IX_ELIMIT, "Literal too large");
		size = size * 10 + d;
		digits++;
		r->pos++;
	}
	if (digits == 0)
		return rp_fail(r, IX_EINVAL, "Invalid literal size");
	if (r->pos < r->n && r->s[r->pos] == '+')
		r->pos++;
	if (r->pos >= r->n || r->s[r->pos] != '}')
		return rp_fail(r, IX_EINVAL, "Invalid literal announcement");
	r->pos++;
	if (r->pos < r->n && r->s[r->pos] == '\r')
		r->pos++;
	if (r->pos >= r->n || r->s[r->pos] != '\n')
		return rp_fail(r, IX_EINVAL, "Literal announcement must end the line");
	r->pos++;
	if (r->p->sunk && r->pos == r->p->sunk_at && size == r->p->sunk_size) {
		/* its bytes went to the sink: nothing of them is in the command */
		a->type = IMAP_ARG_LITERAL;
		a->literal8 = binary;
		a->str = "";
		a->len = 0;
		a->sunk = true;
		a->sunk_len = size;
		return 0;
	}
	if (r->partial && r->pos == r->n)
		return RP_STOP; /* the announced literal: its bytes are not read yet */
	if (size > r->n - r->pos)
		return rp_fail(r, IX_EINVAL, "Literal data missing");
	const unsigned char *data = r->s + r->pos;
	if (!binary && memchr(data, '\0', (size_t)size) != NULL)
		return rp_fail(r, IX_EINVAL, "NUL byte in literal (use ~{n})");
	a->type = IMAP_ARG_LITERAL;
	a->literal8 = binary;
	/* a partial pass only checks syntax: no need to copy literal bytes it will throw away */
	a->str = r->partial ? "" : arena_strndup(r->p, data, (size_t)size);
	a->len = (size_t)size;
	r->pos += (size_t)size;
	return 0;
}

/* Parses arguments up to ')' (depth > 0) or the end of the line (depth 0), pushing them on the stack. */
static int rp_items(struct rp *r, unsigned depth)
{
	bool first = true;
	for (;;) {
		size_t spaces = 0;
		while (r->pos < r->n && r->s[r->pos] == ' ') {
			r->pos++;
			spaces++;
		}
		if (r->partial && r->pos >= r->n)
			return RP_STOP;
		if (at_eol(r)) {
			if (depth > 0)
				return rp_fail(r, IX_EINVAL, "Missing ')'");
			return 0;
		}
		unsigned char c = r->s[r->pos];
		if (c == ')') {
			if (depth == 0)
				return rp_fail(r, IX_EINVAL, "Unexpected ')'");
			return 0;
		}
		if (!first && spaces == 0)
			return rp_fail(r, IX_EINVAL, "Missing space between arguments");
		first = false;
		if (++r->nargs > r->p->set.max_args)
			return rp_fail(r, IX_ELIMIT, "Too many arguments");
		struct imap_arg a;
		memset(&a, 0, sizeof(a));
		int ret;
		if (c == '(') {
			if (depth + 1 > r->p->set.max_depth)
				return rp_fail(r, IX_ELIMIT, "Lists nested too deeply");
			r->pos++;
			size_t start = r->p->stack_len;
			ret = rp_items(r, depth + 1);
			if (ret != 0)
				return ret;
			r->pos++; /* ')' */
			a.type = IMAP_ARG_LIST;
			a.list = pop_args(r->p, start, &a.list_count);
		} else if (c == '"') {
			ret = rp_quoted(r, &a);
		} else if (c == '{' || (c == '~' && r->pos + 1 < r->n && r->s[r->pos + 1] == '{')) {
			ret = rp_literal(r, &a);
		} else {
			ret = rp_atom(r, &a);
		}
		if (ret != 0)
			return ret;
		push_arg(r->p, &a);
		if (!at_eol(r) && r->s[r->pos] != ' ' && r->s[r->pos] != ')')
			return rp_fail(r, IX_EINVAL, "Missing space between arguments");
	}
}

/* Reads a command name atom, upper-cased into the arena. */
static int rp_name(struct rp *r, const char **name_r)
{
	size_t start = r->pos;
	while (r->pos < r->n && is_atom_char(r->s[r->pos]))
		r->pos++;
	size_t len = r->pos - start;
	if (len == 0)
		return rp_fail(r, IX_EINVAL, "Missing command name");
	if (!at_eol(r) && r->s[r->pos] != ' ')
		return rp_fail(r, IX_EINVAL, "Invalid character in command name");
	if (len > IMAP_PARSE_MAX_NAME)
		return rp_fail(r, IX_EINVAL, "Unknown command");
	char *name = arena_strndup(r->p, r->s + start, len);
	for (size_t i = 0; i < len; i++) {
		if (name[i] >= 'a' && name[i] <= 'z')
			name[i] = (char)(name[i] - 'a' + 'A');
	}
	*name_r = name;
	return 0;
}

static int parse_tree(struct imap_parser *p, struct buf *error_r, bool partial)
{
	struct rp r = { p, (const unsigned char *)p->cmd.data, p->cmd.len, 0, 0, error_r, partial };
	struct imap_command *cmd = &p->command;
	memset(cmd, 0, sizeof(*cmd));
	p->stack_len = 0;
	if (at_eol(&r))
		return rp_fail(&r, IX_EINVAL, "Empty command line");
	size_t start = 0;
	while (r.pos < r.n && is_tag_char(r.s[r.pos]))
		r.pos++;
	if (r.pos == start || (!at_eol(&r) && r.s[r.pos] != ' '))
		return rp_fail(&r, IX_EINVAL, "Invalid tag");
	if (r.pos - start > IMAP_PARSE_MAX_TAG)
		return rp_fail(&r, IX_ELIMIT, "Tag too long");
	cmd->tag = arena_strndup(p, r.s, r.pos);
	if (at_eol(&r))
		return rp_fail(&r, IX_EINVAL, "Missing command name");
	r.pos++;
	int ret = rp_name(&r, &cmd->name);
	if (ret != 0)
		return ret;
	if (strcmp(cmd->name, "UID") == 0) {
		if (at_eol(&r))
			return rp_fail(&r, IX_EINVAL, "Missing command after UID");
		r.pos++;
		cmd->uid = true;
		if ((ret = rp_name(&r, &cmd->name)) != 0)
			return ret;
	}
	if (!at_eol(&r)) {
		if ((ret = rp_items(&r, 0)) != 0)
			return ret;
	}
	/* the framer guarantees the command ends with the line end */
	cmd->args = pop_args(p, 0, &cmd->arg_count);
	return 0;
}

/* ---- argument helpers ---- */

bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r, size_t *len_r)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST)
		return false;
	*str_r = arg->str;
	*len_r = arg->len;
	return true;
}

bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r, size_t *len_r)
{
	if (arg == NULL || (arg->type != IMAP_ARG_QUOTED && arg->type != IMAP_ARG_LITERAL))
		return false;
	*str_r = arg->str;
	*len_r = arg->len;
	return true;
}

bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r, size_t *len_r)
{
	if (arg != NULL && arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		*len_r = 0;
		return true;
	}
	return imap_arg_get_string(arg, str_r, len_r);
}

bool imap_arg_atom_equals(const struct imap_arg *arg, const char *upper)
{
	if (arg == NULL || (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL))
		return false;
	return strlen(upper) == arg->len && strcasecmp(arg->str, upper) == 0;
}

bool imap_arg_get_mailbox(const struct imap_arg *arg, const char **name_r, size_t *len_r)
{
	const char *s;
	size_t len;
	if (!imap_arg_get_astring(arg, &s, &len) || memchr(s, '\0', len) != NULL)
		return false;
	if (len == 5 && strcasecmp(s, "INBOX") == 0)
		s = "INBOX";
	*name_r = s;
	*len_r = len;
	return true;
}

static bool parse_decimal(const char *s, size_t len, uint64_t max, uint64_t *value_r)
{
	uint64_t v = 0;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*value_r = v;
	return true;
}

bool imap_arg_get_number(const struct imap_arg *arg, uint64_t max, uint64_t *value_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return false;
	return parse_decimal(arg->str, arg->len, max, value_r);
}

/* ---- sequence sets ---- */

static bool seq_number(const char *s, size_t len, size_t *pos, uint32_t *n_r)
{
	size_t i = *pos;
	if (i < len && s[i] == '*') {
		*pos = i + 1;
		*n_r = IMAP_SEQ_STAR;
		return true;
	}
	if (i >= len || s[i] < '1' || s[i] > '9')
		return false; /* nz-number: no 0, no leading zero */
	uint64_t v = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > UINT32_MAX)
			return false;
		i++;
	}
	*pos = i;
	*n_r = (uint32_t)v;
	return true;
}

int imap_seqset_parse(const char *s, size_t len, bool allow_saved, struct imap_seqset *set_r, struct buf *error_r)
{
	memset(set_r, 0, sizeof(*set_r));
	if (len == 1 && s[0] == '$') {
		if (!allow_saved) {
			err_append(error_r, "Saved search result ($) not allowed here");
			return IX_EINVAL;
		}
		set_r->saved = true;
		return 0;
	}
	size_t pos = 0, cap = 0;
	for (;;) {
		struct imap_seq_range range;
		if (!seq_number(s, len, &pos, &range.lo))
			goto invalid;
		range.hi = range.lo;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (!seq_number(s, len, &pos, &range.hi))
				goto invalid;
		}
		if (range.lo != IMAP_SEQ_STAR && range.hi != IMAP_SEQ_STAR && range.lo > range.hi) {
			uint32_t t = range.lo;
			range.lo = range.hi;
			range.hi = t;
		}
		if (set_r->count == IMAP_SEQSET_MAX_RANGES) {
			imap_seqset_free(set_r);
			err_append(error_r, "Sequence set has too many ranges");
			return IX_ELIMIT;
		}
		if (set_r->count == cap) {
			cap = cap ? cap * 2 : 4;
			set_r->ranges = xrealloc(set_r->ranges, cap * sizeof(*set_r->ranges));
		}
		set_r->ranges[set_r->count++] = range;
		if (pos == len)
			return 0;
		if (s[pos] != ',')
			goto invalid;
		pos++;
	}
invalid:
	imap_seqset_free(set_r);
	err_append(error_r, "Invalid sequence set");
	return IX_EINVAL;
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->ranges);
	set->ranges = NULL;
	set->count = 0;
}

static void range_resolve(const struct imap_seq_range *in, uint32_t max, uint32_t *lo_r, uint32_t *hi_r)
{
	uint32_t lo = in->lo == IMAP_SEQ_STAR ? max : in->lo;
	uint32_t hi = in->hi == IMAP_SEQ_STAR ? max : in->hi;
	if (lo > hi) {
		uint32_t t = lo;
		lo = hi;
		hi = t;
	}
	*lo_r = lo;
	*hi_r = hi;
}

size_t imap_u32_lower_bound(const uint32_t *v, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int imap_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t lo, hi;
		range_resolve(&set->ranges[i], max, &lo, &hi);
		if (n >= lo && n <= hi && n != 0)
			return true;
	}
	return false;
}

static int range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

size_t imap_seqset_resolve(const struct imap_seqset *set, uint32_t max, bool clamp, struct imap_seq_range **ranges_r)
{
	struct imap_seq_range *out = xmalloc((set->count ? set->count : 1) * sizeof(*out));
	size_t n = 0;
	for (size_t i = 0; i < set->count; i++) {
		uint32_t lo, hi;
		range_resolve(&set->ranges[i], max, &lo, &hi);
		if (lo == 0)
			lo = 1; /* "*" of an empty mailbox */
		if (hi == 0)
			continue;
		if (clamp) {
			if (lo > max)
				continue;
			if (hi > max)
				hi = max;
		}
		out[n].lo = lo;
		out[n].hi = hi;
		n++;
	}
	qsort(out, n, sizeof(*out), range_cmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && (out[m - 1].hi == UINT32_MAX || out[i].lo <= out[m - 1].hi + 1)) {
			if (out[i].hi > out[m - 1].hi)
				out[m - 1].hi = out[i].hi;
		} else {
			out[m++] = out[i];
		}
	}
	*ranges_r = out;
	return m;
}

/* ---- flags ---- */

bool imap_keyword_valid(const char *s, size_t len)
{
	if (len == 0 || len > IMAP_MAX_KEYWORD_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_atom_char((unsigned char)s[i]) || s[i] == '[')
			return false;
	}
	return true;
}

static int flag_one(const struct imap_arg *a, struct imap_flags *f, size_t *cap, struct buf *error_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {
		{ "\\Answered", IMAP_FLAG_ANSWERED }, { "\\Flagged", IMAP_FLAG_FLAGGED },
		{ "\\Deleted", IMAP_FLAG_DELETED },   { "\\Seen", IMAP_FLAG_SEEN },
		{ "\\Draft", IMAP_FLAG_DRAFT },
	};
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NIL) { /* NIL is an atom, so a keyword here */
		err_append(error_r, "Flags must be atoms");
		return IX_EINVAL;
	}
	if (a->str[0] == '\\') {
		for (size_t i = 0; i < IX_ARRAY_LEN(sys); i++) {
			if (strcasecmp(a->str, sys[i].name) == 0) {
				f->system |= sys[i].bit;
				return 0;
			}
		}
		if (strcasecmp(a->str, "\\Recent") == 0)
			err_append(error_r, "\\Recent cannot be changed");
		else
			err_append(error_r, "Unknown system flag");
		return IX_EINVAL;
	}
	if (!imap_keyword_valid(a->str, a->len)) {
		err_append(error_r, "Invalid keyword");
		return IX_EINVAL;
	}
	for (size_t i = 0; i < f->keyword_count; i++) {
		if (strcasecmp(f->keywords[i], a->str) == 0)
			return 0;
	}
	if (f->keyword_count == IMAP_MAX_KEYWORDS) {
		err_append(error_r, "Too many keywords");
		return IX_ELIMIT;
	}
	if (f->keyword_count == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		f->keywords = xrealloc(f->keywords, *cap * sizeof(*f->keywords));
	}
	f->keywords[f->keyword_count++] = a->str;
	return 0;
}

int imap_flags_parse(const struct imap_arg *arg, struct imap_flags *flags_r, struct buf *error_r)
{
	memset(flags_r, 0, sizeof(*flags_r));
	size_t cap = 0;
	int ret = 0;
	if (arg->type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < arg->list_count && ret == 0; i++)
			ret = flag_one(&arg->list[i], flags_r, &cap, error_r);
	} else {
		ret = flag_one(arg, flags_r, &cap, error_r);
	}
	if (ret != 0)
		imap_flags_free(flags_r);
	return ret;
}

void imap_flags_free(struct imap_flags *flags)
{
	free(flags->keywords);
	flags->keywords = NULL;
	flags->keyword_count = 0;
}

/* ---- dates ---- */

int64_t imap_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static bool digits_n(const char *s, size_t n, unsigned *v_r)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* date-text at s: "d-Mon-yyyy" or "dd-Mon-yyyy" (or " d-" when fixed). Returns bytes used or 0. */
static size_t date_text(const char *s, size_t len, bool fixed, int64_t *days_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	size_t i = 0;
	unsigned d, m = 0, y;
	if (fixed && len > 0 && s[0] == ' ')
		i = 1;
	size_t dstart = i;
	while (i < len && i - dstart < 2 && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == dstart || !digits_n(s + dstart, i - dstart, &d))
		return 0;
	if (len - i < 9 || s[i] != '-' || s[i + 4] != '-')
		return 0;
	for (unsigned k = 0; k < 12; k++) {
		if (strncasecmp(s + i + 1, months + 3 * k, 3) == 0)
			m = k + 1;
	}
	if (m == 0 || !digits_n(s + i + 5, 4, &y))
		return 0;
	if (d < 1 || d > days_in_month(y, m))
		return 0;
	*days_r = imap_days_from_civil(y, m, d);
	return i + 9;
}

int imap_date_parse(const struct imap_arg *arg, int64_t *days_r)
{
	const char *s;
	size_t len;
	if (!imap_arg_get_astring(arg, &s, &len) || arg->type == IMAP_ARG_NIL)
		return IX_EINVAL;
	int64_t days;
	if (date_text(s, len, false, &days) != len || len == 0)
		return IX_EINVAL;
	*days_r = days;
	return 0;
}

int imap_datetime_parse(const struct imap_arg *arg, int64_t *time_r, int *tz_minutes_r)
{
	const char *s;
	size_t len;
	if (!imap_arg_get_string(arg, &s, &len))
		return IX_EINVAL;
	int64_t days;
	size_t i = date_text(s, len, true, &days);
	unsigned hh, mm, ss, zh, zm;
	if (i == 0 || len - i != 15 || s[i] != ' ' || s[i + 3] != ':' || s[i + 6] != ':' || s[i + 9] != ' ' ||
	    (s[i + 10] != '+' && s[i + 10] != '-'))
		return IX_EINVAL;
	if (!digits_n(s + i + 1, 2, &hh) || !digits_n(s + i + 4, 2, &mm) || !digits_n(s + i + 7, 2, &ss) ||
	    !digits_n(s + i + 11, 2, &zh) || !digits_n(s + i + 13, 2, &zm))
		return IX_EINVAL;
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return IX_EINVAL;
	int tz = (int)(zh * 60 + zm);
	if (s[i + 10] == '-')
		tz = -tz;
	*time_r = days * 86400 + (int64_t)hh * 3600 + mm * 60 + ss - (int64_t)tz * 60;
	*tz_minutes_r = tz;
	return 0;
}
