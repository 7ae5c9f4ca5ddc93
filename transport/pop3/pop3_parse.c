/* pop3_parse.c - POP3 command lines: a verb of at most 4 letters, space-separated arguments with per-verb
 * counts, message numbers with wrap checks; overlong lines reported once and skipped. */
#include "transport/pop3/pop3_parse.h"

#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"
#include "common/base64.h"

static const struct {
	const char *name;
	enum pop3_verb verb;
	unsigned min_args, max_args;
} verbs[] = {
	{ "USER", POP3_USER, 1, 1 }, { "PASS", POP3_PASS, 1, 1 }, { "APOP", POP3_APOP, 2, 2 },
	{ "QUIT", POP3_QUIT, 0, 0 }, { "STAT", POP3_STAT, 0, 0 }, { "LIST", POP3_LIST, 0, 1 },
	{ "RETR", POP3_RETR, 1, 1 }, { "DELE", POP3_DELE, 1, 1 }, { "NOOP", POP3_NOOP, 0, 0 },
	{ "RSET", POP3_RSET, 0, 0 }, { "TOP", POP3_TOP, 2, 2 },   { "UIDL", POP3_UIDL, 0, 1 },
	{ "CAPA", POP3_CAPA, 0, 0 }, { "STLS", POP3_STLS, 0, 0 }, { "AUTH", POP3_AUTH, 0, 2 },
	{ "UTF8", POP3_UTF8, 0, 0 },
};

void pop3_parser_init(struct pop3_parser *p)
{
	p->skipping = false;
}

const char *pop3_verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(verbs); i++) {
		if (verbs[i].verb == verb)
			return verbs[i].name;
	}
	return "?";
}

int pop3_parse_number(const char *s, size_t len, uint32_t max, uint32_t *value_r)
{
	if (len == 0 || (len > 1 && s[0] == '0'))
		return IX_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return IX_EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > max)
			return IX_EINVAL;
	}
	*value_r = (uint32_t)v;
	return 0;
}

static int fail(struct buf *error_r, const char *msg)
{
	buf_append_str(error_r, msg);
	return IX_EINVAL;
}

/* Finds the next line. Returns DONE with the line (no CR/LF) or NEED_MORE/ERROR; handles skipping. */
static enum pop3_parse_result next_line(struct pop3_parser *p, const char *s, size_t len, size_t max,
					size_t *consumed_r, const char **line_r, size_t *line_len_r,
					struct buf *error_r)
{
	size_t off = 0;
	*consumed_r = 0;
	if (len == 0)
		return POP3_PARSE_NEED_MORE;
	if (p->skipping) {
		const char *lf = memchr(s, '\n', len);
		if (lf == NULL) {
			*consumed_r = len;
			return POP3_PARSE_NEED_MORE;
		}
		off = (size_t)(lf - s) + 1;
		p->skipping = false;
		*consumed_r = off;
	}
	size_t avail = len - off;
	size_t look = avail < max ? avail : max;
	const char *lf = memchr(s + off, '\n', look);
	if (lf == NULL) {
		if (avail >= max) {
			p->skipping = true;
			*consumed_r = off + max;
			fail(error_r, "Line too long");
			return POP3_PARSE_ERROR;
		}
		return POP3_PARSE_NEED_MORE;
	}
	size_t n = (size_t)(lf - (s + off));
	*consumed_r = off + n + 1;
	if (n > 0 && s[off + n - 1] == '\r')
		n--;
	*line_r = s + off;
	*line_len_r = n;
	return POP3_PARSE_DONE;
}

static int parse_line(const char *s, size_t n, struct pop3_command *cmd, struct buf *error_r)
{
	memset(cmd, 0, sizeof(*cmd));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			return fail(error_r, "NUL byte in command");
		if (c < 0x20 || c == 0x7f)
			return fail(error_r, "Control character in command");
	}
	size_t v = 0;
	while (v < n && s[v] != ' ')
		v++;
	if (v == 0)
		return fail(error_r, "Empty command");
	if (v > POP3_MAX_VERB)
		return fail(error_r, "Unknown command");
	size_t which = IX_ARRAY_LEN(verbs);
	for (size_t i = 0; i < IX_ARRAY_LEN(verbs); i++) {
		if (strlen(verbs[i].name) == v && strncasecmp(s, verbs[i].name, v) == 0)
			which = i;
	}
	if (which == IX_ARRAY_LEN(verbs))
		return fail(error_r, "Unknown command");
	cmd->verb = verbs[which].verb;
	size_t i = v;
	if (cmd->verb == POP3_PASS) {
		/* the password is the rest of the line after exactly one space: it may contain spaces */
		if (i + 1 >= n)
			return fail(error_r, "PASS needs a password");
		cmd->args[0].str = s + i + 1;
		cmd->args[0].len = n - i - 1;
		cmd->arg_count = 1;
		return 0;
	}
	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		if (i == n)
			break;
		size_t start = i;
		while (i < n && s[i] != ' ')
			i++;
		if (cmd->arg_count == verbs[which].max_args)
			return fail(error_r, "Too many arguments");
		bool long_ok = cmd->verb == POP3_AUTH && cmd->arg_count == 1;
		if (i - start > POP3_MAX_ARG && !long_ok)
			return fail(error_r, "Argument too long");
		cmd->args[cmd->arg_count].str = s + start;
		cmd->args[cmd->arg_count].len = i - start;
		cmd->arg_count++;
	}
	if (cmd->arg_count < verbs[which].min_args)
		return fail(error_r, "Missing argument");
	switch (cmd->verb) {
	case POP3_LIST:
	case POP3_UIDL:
	case POP3_RETR:
	case POP3_DELE:
	case POP3_TOP:
		if (cmd->arg_count == 0)
			break;
		if (pop3_parse_number(cmd->args[0].str, cmd->args[0].len, UINT32_MAX, &cmd->msg) != 0 || cmd->msg == 0)
			return fail(error_r, "Invalid message number");
		cmd->has_msg = true;
		if (cmd->verb == POP3_TOP &&
		    pop3_parse_number(cmd->args[1].str, cmd->args[1].len, UINT32_MAX, &cmd->lines) != 0)
			return fail(error_r, "Invalid line count");
		break;
	case POP3_APOP:
		if (cmd->args[1].len != 32)
			return fail(error_r, "Invalid APOP digest");
		for (size_t k = 0; k < 32; k++) {
			char c = cmd->args[1].str[k];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return fail(error_r, "Invalid APOP digest");
		}
		break;
	default: break;
	}
	return 0;
}

enum pop3_parse_result pop3_parse_command(struct pop3_parser *p, const void *data, size_t len, size_t *consumed_r,
					  struct pop3_command *cmd_r, struct buf *error_r)
{
	const char *line;
	size_t n;
	enum pop3_parse_result r = next_line(p, data, len, POP3_MAX_LINE, consumed_r, &line, &n, error_r);
	if (r != POP3_PARSE_DONE)
		return r;
	return parse_line(line, n, cmd_r, error_r) == 0 ? POP3_PARSE_DONE : POP3_PARSE_ERROR;
}

enum pop3_parse_result pop3_parse_sasl_line(struct pop3_parser *p, const void *data, size_t len, size_t *consumed_r,
					    const char **line_r, size_t *len_r, bool *cancel_r, struct buf *error_r)
{
	const char *line;
	size_t n;
	enum pop3_parse_result r = next_line(p, data, len, POP3_MAX_SASL_LINE, consumed_r, &line, &n, error_r);
	if (r != POP3_PARSE_DONE)
		return r;
	*cancel_r = n == 1 && line[0] == '*';
	if (!*cancel_r) {
		/* base64: groups of four, '=' padding only at the end; "=" alone is the empty response */
		bool ok = n == 1 && line[0] == '=';
		if (!ok && n % 4 == 0) {
			size_t pad = 0;
			while (pad < 2 && pad < n && line[n - 1 - pad] == '=')
				pad++;
			ok = true;
			for (size_t i = 0; i < n - pad && ok; i++)
				ok = base64_char_value((unsigned char)line[i]) >= 0;
		}
		if (!ok) {
			fail(error_r, "Invalid base64 in authentication response");
			return POP3_PARSE_ERROR;
		}
	}
	*line_r = line;
	*len_r = n;
	return POP3_PARSE_DONE;
}
