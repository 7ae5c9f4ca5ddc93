/* managesieve_parse.c - ManageSieve commands: a verb atom, space-separated strings (quoted with \" and \\ escapes,
 * or literals whose contents are not counted in the line limit) and HAVESPACE's number, each decided only on
 * bytes present so any chunking parses alike. */
#include "transport/managesieve/managesieve_parse.h"

#include <string.h>
#include <strings.h>

#include "common/util.h"

static const struct {
	const char *name;
	enum ms_verb verb;
	unsigned min_args, max_args;
} verbs[] = {
	{ "CAPABILITY", MS_CAPABILITY, 0, 0 },
	{ "STARTTLS", MS_STARTTLS, 0, 0 },
	{ "AUTHENTICATE", MS_AUTHENTICATE, 1, 2 },
	{ "LOGOUT", MS_LOGOUT, 0, 0 },
	{ "HAVESPACE", MS_HAVESPACE, 2, 2 },
	{ "PUTSCRIPT", MS_PUTSCRIPT, 2, 2 },
	{ "LISTSCRIPTS", MS_LISTSCRIPTS, 0, 0 },
	{ "SETACTIVE", MS_SETACTIVE, 1, 1 },
	{ "GETSCRIPT", MS_GETSCRIPT, 1, 1 },
	{ "DELETESCRIPT", MS_DELETESCRIPT, 1, 1 },
	{ "RENAMESCRIPT", MS_RENAMESCRIPT, 2, 2 },
	{ "CHECKSCRIPT", MS_CHECKSCRIPT, 1, 1 },
	{ "NOOP", MS_NOOP, 0, 1 },
	{ "UNAUTHENTICATE", MS_UNAUTHENTICATE, 0, 0 },
};

#define MS_MAX_VERB 14u /* UNAUTHENTICATE */

const char *ms_verb_name(enum ms_verb verb)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(verbs); i++) {
		if (verbs[i].verb == verb)
			return verbs[i].name;
	}
	return "?";
}

enum st { ST_OK, ST_NEED, ST_ERR, ST_FATAL };

struct cur {
	const char *s;
	size_t len, pos;
	size_t line; /* bytes outside literal contents */
	char last;   /* the last byte consumed */
	struct buf *error;
};

static enum st fail(struct cur *c, enum st st, const char *msg)
{
	buf_append_str(c->error, msg);
	return st;
}

static enum st peek(struct cur *c, char *ch_r)
{
	if (c->line >= MS_MAX_LINE)
		return fail(c, ST_FATAL, "Command line too long");
	if (c->pos >= c->len)
		return ST_NEED;
	*ch_r = c->s[c->pos];
	return ST_OK;
}

static enum st get(struct cur *c, char *ch_r)
{
	enum st st = peek(c, ch_r);
	if (st == ST_OK) {
		c->pos++;
		c->line++;
		c->last = *ch_r;
	}
	return st;
}

static enum st eol(struct cur *c)
{
	char ch;
	enum st st = get(c, &ch);
	if (st == ST_OK && ch == '\r')
		st = get(c, &ch);
	if (st == ST_OK && ch != '\n')
		return fail(c, ST_ERR, "Expected end of line");
	return st;
}

static enum st quoted(struct cur *c, struct ms_arg *arg)
{
	arg->str = c->s + c->pos;
	arg->quoted = true;
	size_t n = 0;
	for (;;) {
		char ch;
		enum st st = get(c, &ch);
		if (st != ST_OK)
			return st;
		if (ch == '"')
			break;
		if (ch == '\r' || ch == '\n' || ch == '\0')
			return fail(c, ST_ERR, "Unterminated quoted string");
		if (ch == '\\') {
			if ((st = get(c, &ch)) != ST_OK)
				return st;
			if (ch != '"' && ch != '\\')
				return fail(c, ST_ERR, "Bad escape in quoted string");
		}
		if (++n > MS_MAX_QUOTED)
			return fail(c, ST_ERR, "Quoted string too long");
	}
	arg->len = (size_t)(c->s + c->pos - 1 - arg->str);
	return ST_OK;
}

static enum st literal(struct cur *c, struct ms_arg *arg)
{
	char ch;
	enum st st;
	uint64_t n = 0;
	size_t digits = 0;
	for (;;) {
		if ((st = get(c, &ch)) != ST_OK)
			return st;
		if (ch < '0' || ch > '9')
			break;
		n = n * 10 + (unsigned)(ch - '0');
		if (++digits > 10 || n > MS_MAX_LITERAL)
			return fail(c, ST_FATAL, "Literal too large");
	}
	if (digits == 0)
		return fail(c, ST_ERR, "Bad literal");
	if (ch == '+' && (st = get(c, &ch)) != ST_OK)
		return st;
	if (ch != '}')
		return fail(c, ST_ERR, "Bad literal");
	if ((st = eol(c)) != ST_OK)
		return st == ST_ERR ? ST_FATAL : st; /* the literal's bytes follow: no way to find the next command */
	if (c->len - c->pos < n)
		return ST_NEED;
	arg->str = c->s + c->pos;
	arg->len = (size_t)n;
	arg->quoted = false;
	c->pos += (size_t)n;
	return ST_OK;
}

static enum st string(struct cur *c, struct ms_arg *arg)
{
	char ch;
	enum st st = get(c, &ch);
	if (st != ST_OK)
		return st;
	if (ch == '"')
		return quoted(c, arg);
	if (ch == '{')
		return literal(c, arg);
	return fail(c, ST_ERR, "Expected a string");
}

static enum st number(struct cur *c, uint32_t *value_r)
{
	uint64_t v = 0;
	size_t digits = 0;
	for (;;) {
		char ch;
		enum st st = peek(c, &ch);
		if (st != ST_OK)
			return st;
		if (ch < '0' || ch > '9')
			break;
		get(c, &ch);
		v = v * 10 + (unsigned)(ch - '0');
		if (++digits > 10 || v > UINT32_MAX)
			return fail(c, ST_ERR, "Number too large");
	}
	if (digits == 0)
		return fail(c, ST_ERR, "Expected a number");
	*value_r = (uint32_t)v;
	return ST_OK;
}

static enum st command(struct cur *c, struct ms_command *cmd)
{
	char verb[MS_MAX_VERB];
	size_t v = 0;
	char ch;
	enum st st;
	for (;;) {
		if ((st = peek(c, &ch)) != ST_OK)
			return st;
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
			break;
		get(c, &ch);
		if (v == sizeof(verb))
			return fail(c, ST_ERR, "Unknown command");
		verb[v++] = ch;
	}
	if (v == 0)
		return fail(c, ST_ERR, "Expected a command");
	size_t which = IX_ARRAY_LEN(verbs);
	for (size_t i = 0; i < IX_ARRAY_LEN(verbs); i++) {
		if (strlen(verbs[i].name) == v && strncasecmp(verb, verbs[i].name, v) == 0)
			which = i;
	}
	if (which == IX_ARRAY_LEN(verbs))
		return fail(c, ST_ERR, "Unknown command");
	cmd->verb = verbs[which].verb;
	while (cmd->arg_count < verbs[which].max_args) {
		if ((st = peek(c, &ch)) != ST_OK)
			return st;
		if (ch != ' ')
			break;
		get(c, &ch);
		if (cmd->verb == MS_HAVESPACE && cmd->arg_count == 1)
			st = number(c, &cmd->size);
		else
			st = string(c, &cmd->args[cmd->arg_count]);
		if (st != ST_OK)
			return st;
		cmd->arg_count++;
	}
	if ((st = eol(c)) != ST_OK)
		return st;
	if (cmd->arg_count < verbs[which].min_args)
		return fail(c, ST_ERR, "Missing arguments");
	return ST_OK;
}

/* After ST_ERR: consumes the rest of the bad line. */
static enum st skip_line(struct cur *c)
{
	char ch;
	while (c->last != '\n') {
		enum st st = get(c, &ch);
		if (st != ST_OK)
			return st;
	}
	return ST_OK;
}

static enum ms_parse_result finish(struct cur *c, enum st st, size_t *consumed_r)
{
	*consumed_r = 0;
	if (st == ST_OK) {
		*consumed_r = c->pos;
		return MS_PARSE_DONE;
	}
	if (st == ST_ERR) {
		size_t mark = c->error->len;
		enum st skip = skip_line(c);
		if (skip == ST_OK) {
			*consumed_r = c->pos;
			return MS_PARSE_ERROR;
		}
		c->error->len = mark; /* the skip's own message, or none: decided again with more bytes */
		if (skip == ST_NEED) {
			buf_reset(c->error);
			return MS_PARSE_NEED_MORE;
		}
		buf_reset(c->error);
		buf_append_str(c->error, "Command line too long");
		return MS_PARSE_FATAL;
	}
	if (st == ST_NEED) {
		buf_reset(c->error);
		return MS_PARSE_NEED_MORE;
	}
	return MS_PARSE_FATAL;
}

enum ms_parse_result ms_parse_command(const void *data, size_t len, size_t *consumed_r, struct ms_command *cmd_r,
				      struct buf *error_r)
{
	struct cur c = { .s = data, .len = len, .error = error_r };
	memset(cmd_r, 0, sizeof(*cmd_r));
	return finish(&c, command(&c, cmd_r), consumed_r);
}

enum ms_parse_result ms_parse_sasl_response(const void *data, size_t len, size_t *consumed_r, struct ms_arg *arg_r,
					    struct buf *error_r)
{
	struct cur c = { .s = data, .len = len, .error = error_r };
	memset(arg_r, 0, sizeof(*arg_r));
	enum st st = string(&c, arg_r);
	if (st == ST_OK)
		st = eol(&c);
	return finish(&c, st, consumed_r);
}

void ms_arg_value(const struct ms_arg *arg, struct buf *out)
{
	for (size_t i = 0; i < arg->len; i++) {
		if (arg->quoted && arg->str[i] == '\\' && i + 1 < arg->len)
			i++;
		buf_append_char(out, arg->str[i]);
	}
}
