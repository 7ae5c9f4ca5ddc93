/* smtp_parse.c - SMTP command, path and parameter parsing, and the DATA end detector. Pure functions: no I/O,
 * no globals that change, every length bounded by a named limit from smtp_parse.h. */
#include "transport/smtp/smtp_parse.h"
#include "common/err.h"
#include "common/util.h"
#include "common/utf8.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static const char E_UNKNOWN[] = "500 5.5.2 Command not recognized";
static const char E_LINE_LONG[] = "500 5.5.2 Line too long";
static const char E_BAD_CHAR[] = "500 5.5.2 Invalid character in command";
static const char E_NO_ARGS[] = "501 5.5.4 No parameters allowed";
static const char E_NEED_ARG[] = "501 5.5.4 Argument required";
static const char E_SYNTAX[] = "501 5.5.4 Syntax error in parameters or arguments";
static const char E_FROM_SYNTAX[] = "501 5.5.4 Syntax: MAIL FROM:<address>";
static const char E_TO_SYNTAX[] = "501 5.5.4 Syntax: RCPT TO:<address>";
static const char E_BAD_ADDR[] = "553 5.1.3 Bad address syntax";
static const char E_ADDR_LONG[] = "553 5.1.3 Address too long";
static const char E_BAD_SENDER[] = "553 5.1.7 Bad sender address syntax";
static const char E_BAD_RCPT[] = "553 5.1.3 Bad recipient address syntax";
static const char E_NEED_UTF8[] = "553 5.6.7 Non-ASCII address requires SMTPUTF8";
static const char E_PARAM_UNKNOWN[] = "555 5.5.4 Unsupported parameter";
static const char E_PARAM_BAD[] = "501 5.5.4 Bad parameter value";
static const char E_PARAM_DUP[] = "501 5.5.4 Duplicate parameter";
static const char E_PARAMS_MANY[] = "501 5.5.4 Too many parameters";
static const char E_BDAT_SYNTAX[] = "501 5.5.4 Syntax: BDAT size [LAST]";
static const char E_AUTH_SYNTAX[] = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "",  [SMTP_VERB_HELO] = "HELO",         [SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL", [SMTP_VERB_RCPT] = "RCPT",         [SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_BDAT] = "BDAT", [SMTP_VERB_RSET] = "RSET",         [SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT", [SMTP_VERB_VRFY] = "VRFY",         [SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP", [SMTP_VERB_STARTTLS] = "STARTTLS", [SMTP_VERB_AUTH] = "AUTH",
	[SMTP_VERB_BURL] = "BURL",
};

const char *smtp_verb_name(enum smtp_verb verb)
{
	return (unsigned)verb < SMTP_VERB_COUNT ? verb_names[verb] : "";
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

/* ---- command line ---- */

struct verb_rule {
	enum smtp_verb verb;
	enum { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED } arg;
};

static const struct verb_rule verb_rules[] = {
	{ SMTP_VERB_HELO, ARG_REQUIRED }, { SMTP_VERB_EHLO, ARG_REQUIRED }, { SMTP_VERB_MAIL, ARG_REQUIRED },
	{ SMTP_VERB_RCPT, ARG_REQUIRED }, { SMTP_VERB_DATA, ARG_NONE },     { SMTP_VERB_BDAT, ARG_REQUIRED },
	{ SMTP_VERB_RSET, ARG_NONE },     { SMTP_VERB_NOOP, ARG_OPTIONAL }, { SMTP_VERB_QUIT, ARG_NONE },
	{ SMTP_VERB_VRFY, ARG_REQUIRED }, { SMTP_VERB_EXPN, ARG_REQUIRED }, { SMTP_VERB_HELP, ARG_OPTIONAL },
	{ SMTP_VERB_STARTTLS, ARG_NONE }, { SMTP_VERB_AUTH, ARG_REQUIRED }, { SMTP_VERB_BURL, ARG_REQUIRED },
};

int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd_r, const char **error_r)
{
	cmd_r->verb = SMTP_VERB_UNKNOWN;
	cmd_r->arg = line + len;
	cmd_r->arg_len = 0;
	if (len > SMTP_AUTH_LINE_MAX) {
		*error_r = E_LINE_LONG;
		return IX_ELIMIT;
	}
	size_t vlen = 0;
	while (vlen < len && is_alpha((unsigned char)line[vlen]))
		vlen++;
	const struct verb_rule *rule = NULL;
	for (size_t i = 0; i < IX_ARRAY_LEN(verb_rules) && vlen > 0; i++) {
		const char *name = verb_names[verb_rules[i].verb];
		if (strlen(name) == vlen && strncasecmp(line, name, vlen) == 0) {
			rule = &verb_rules[i];
			break;
		}
	}
	if (rule == NULL || (vlen < len && line[vlen] != ' ')) {
		*error_r = E_UNKNOWN;
		return IX_EINVAL;
	}
	cmd_r->verb = rule->verb;
	if (rule->verb != SMTP_VERB_AUTH && len > SMTP_COMMAND_MAX) {
		*error_r = E_LINE_LONG;
		return IX_ELIMIT;
	}
	for (size_t i = vlen; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 32 || c == 127) {
			*error_r = E_BAD_CHAR;
			return IX_EINVAL;
		}
	}
	size_t start = vlen, end = len;
	while (start < end && line[start] == ' ')
		start++;
	while (end > start && line[end - 1] == ' ')
		end--;
	cmd_r->arg = line + start;
	cmd_r->arg_len = end - start;
	if (rule->arg == ARG_NONE && cmd_r->arg_len > 0) {
		*error_r = E_NO_ARGS;
		return IX_EINVAL;
	}
	if (rule->arg == ARG_REQUIRED && cmd_r->arg_len == 0) {
		*error_r = E_NEED_ARG;
		return IX_EINVAL;
	}
	return 0;
}

/* ---- paths ---- */

static bool is_atext(unsigned char c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Appends n bytes to a bounded field. Returns false when it would not fit. */
static bool put(char *field, size_t *field_len, size_t max, const char *s, size_t n)
{
	if (n > max - *field_len)
		return false;
	memcpy(field + *field_len, s, n);
	*field_len += n;
	field[*field_len] = '\0';
	return true;
}

/* Local part at s[*pos]: Dot-string or Quoted-string (RFC 5321 4.1.2, RFC 6531 3.3). */
static int parse_local(const char *s, size_t len, size_t *pos, unsigned flags, struct smtp_mailbox *m)
{
	size_t i = *pos, max = (flags & SMTP_PATH_UTF8) ? SMTP_LOCAL_MAX_UTF8 : SMTP_LOCAL_MAX;
	const unsigned char *u = (const unsigned char *)s;
	if (i < len && s[i] == '"') {
		m->local_quoted = true;
		size_t j = i + 1;
		for (;;) {
			if (j >= len)
				return IX_EINVAL;
			unsigned char c = u[j];
			if (c == '"') {
				j++;
				break;
			}
			if (c == '\\') {
				if (j + 1 >= len || u[j + 1] < 32 || u[j + 1] > 126)
					return IX_EINVAL;
				j += 2;
			} else if (c >= 32 && c <= 126) {
				j++;
			} else if (c >= 128 && (flags & SMTP_PATH_UTF8)) {
				size_t n = utf8_decode(u + j, len - j, NULL);
				if (n == 0)
					return IX_EINVAL;
				m->utf8 = true;
				j += n;
			} else {
				return IX_EINVAL;
			}
		}
		if (!put(m->local, &m->local_len, max, s + i, j - i))
			return IX_ELIMIT;
		*pos = j;
		return 0;
	}
	size_t j = i;
	bool need_atom = true;
	while (j < len) {
		unsigned char c = u[j];
		if (c == '.') {
			if (need_atom)
				return IX_EINVAL;
			need_atom = true;
			j++;
		} else if (is_atext(c)) {
			need_atom = false;
			j++;
		} else if (c >= 128 && (flags & SMTP_PATH_UTF8)) {
			size_t n = utf8_decode(u + j, len - j, NULL);
			if (n == 0)
				return IX_EINVAL;
			m->utf8 = true;
			need_atom = false;
			j += n;
		} else {
			break;
		}
	}
	if (need_atom)
		return IX_EINVAL; /* empty, or ends with a dot */
	if (!put(m->local, &m->local_len, max, s + i, j - i))
		return IX_ELIMIT;
	*pos = j;
	return 0;
}

static bool ipv4_literal(const char *s, size_t len)
{
	size_t i = 0;
	for (int octet = 0; octet < 4; octet++) {
		if (octet > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		unsigned v = 0;
		size_t digits = 0;
		while (i < len && is_digit((unsigned char)s[i]) && digits < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == len;
}

static bool ipv6_literal(const char *s, size_t len)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];
	if (len == 0 || len >= sizeof(tmp))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
			return false;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, addr) == 1;
}

/* Domain or address literal at s[*pos] into field (bounded by SMTP_DOMAIN_MAX). */
static int parse_domain(const char *s, size_t len, size_t *pos, unsigned flags, char *field, size_t *field_len,
			bool *literal_r, bool *utf8_r)
{
	size_t i = *pos;
	const unsigned char *u = (const unsigned char *)s;
	if (i < len && s[i] == '[') {
		const char *close = memchr(s + i, ']', len - i);
		if (close == NULL)
			return IX_EINVAL;
		size_t inner_start = i + 1, inner_len = (size_t)(close - s) - inner_start;
		const char *inner = s + inner_start;
		bool ok;
		if (inner_len > 5 && strncasecmp(inner, "IPv6:", 5) == 0)
			ok = ipv6_literal(inner + 5, inner_len - 5);
		else
			ok = ipv4_literal(inner, inner_len); /* General-address-literal tags are not supported */
		if (!ok)
			return IX_EINVAL;
		size_t j = (size_t)(close - s) + 1;
		*field_len = 0;
		if (!put(field, field_len, SMTP_DOMAIN_MAX, s + i, j - i))
			return IX_ELIMIT;
		*literal_r = true;
		*pos = j;
		return 0;
	}
	size_t j = i, label = 0;
	bool last_hyphen = false;
	for (;;) {
		unsigned char c = j < len ? u[j] : 0;
		size_t n = 1;
		if (j < len && (is_alnum(c) || c == '-')) {
			if (c == '-' && label == 0)
				return IX_EINVAL;
			last_hyphen = c == '-';
		} else if (j < len && c >= 128 && (flags & SMTP_PATH_UTF8)) {
			n = utf8_decode(u + j, len - j, NULL);
			if (n == 0)
				return IX_EINVAL;
			*utf8_r = true;
			last_hyphen = false;
		} else {
			/* end of a label: by a dot (another label follows) or by anything else (the domain ends) */
			if (label == 0 || last_hyphen)
				return IX_EINVAL;
			if (j < len && c == '.') {
				label = 0;
				j++;
				continue;
			}
			break;
		}
		label += n;
		if (label > SMTP_LABEL_MAX)
			return IX_EINVAL;
		j += n;
	}
	*field_len = 0;
	if (!put(field, field_len, SMTP_DOMAIN_MAX, s + i, j - i))
		return IX_ELIMIT;
	*literal_r = false;
	*pos = j;
	return 0;
}

int smtp_parse_path(const char *s, size_t len, unsigned flags, struct smtp_path *path_r, size_t *consumed_r,
		    const char **error_r)
{
	memset(path_r, 0, sizeof(*path_r));
	size_t i = 0;
	bool brackets = !(flags & SMTP_PATH_NO_BRACKETS);
	*error_r = E_BAD_ADDR;
	if (brackets) {
		if (len == 0 || s[0] != '<')
			return IX_EINVAL;
		i = 1;
		if ((flags & SMTP_PATH_ALLOW_NULL) && i < len && s[i] == '>') {
			path_r->null = true;
			*consumed_r = 2;
			return 0;
		}
		if ((flags & SMTP_PATH_ALLOW_POSTMASTER) && len - i >= 11 &&
		    strncasecmp(s + i, "Postmaster>", 11) == 0) {
			path_r->postmaster = true;
			memcpy(path_r->mbox.local, s + i, 10);
			path_r->mbox.local[10] = '\0';
			path_r->mbox.local_len = 10;
			*consumed_r = i + 11;
			return 0;
		}
		/* source route: @a,@b: (RFC 5321 4.1.2, kept for syntax only and dropped) */
		if (i < len && s[i] == '@') {
			for (;;) {
				char scratch[SMTP_DOMAIN_MAX + 1];
				size_t scratch_len;
				bool lit = false, utf8 = false;
				i++;
				int r = parse_domain(s, len, &i, flags, scratch, &scratch_len, &lit, &utf8);
				if (r < 0)
					return r;
				if (i < len && s[i] == ',' && i + 1 < len && s[i + 1] == '@') {
					i++;
					continue;
				}
				if (i < len && s[i] == ':') {
					i++;
					break;
				}
				return IX_EINVAL;
			}
		}
	}
	struct smtp_mailbox *m = &path_r->mbox;
	int r = parse_local(s, len, &i, flags, m);
	if (r == 0 && (i >= len || s[i] != '@'))
		r = IX_EINVAL;
	if (r == 0) {
		i++;
		r = parse_domain(s, len, &i, flags, m->domain, &m->domain_len, &m->domain_literal, &m->utf8);
	}
	if (r == 0 && brackets) {
		if (i >= len || s[i] != '>')
			r = IX_EINVAL;
		else
			i++;
	}
	if (r == 0 && !brackets && i != len)
		r = IX_EINVAL;
	size_t path_max = (flags & SMTP_PATH_UTF8) ? SMTP_PATH_MAX_UTF8 : SMTP_PATH_MAX;
	if (r == 0 && m->local_len + 1 + m->domain_len + 2 > path_max)
		r = IX_ELIMIT;
	if (r == IX_ELIMIT)
		*error_r = E_ADDR_LONG;
	if (r < 0)
		return r;
	*consumed_r = i;
	return 0;
}

size_t smtp_path_string(const struct smtp_path *path, char *out, size_t out_size)
{
	size_t n = 0;
	if (out_size == 0)
		return 0;
	out[0] = '\0';
	if (path->null)
		return 0;
	const struct smtp_mailbox *m = &path->mbox;
	if (!put(out, &n, out_size - 1, m->local, m->local_len))
		return 0;
	if (path->postmaster)
		return n;
	if (!put(out, &n, out_size - 1, "@", 1) || !put(out, &n, out_size - 1, m->domain, m->domain_len)) {
		out[0] = '\0';
		return 0;
	}
	return n;
}

/* ---- parameters ---- */

long smtp_xtext_decode(const char *in, size_t len, char *out, size_t out_size)
{
	size_t n = 0;
	if (out_size == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (n + 1 >= out_size)
			return -1;
		if (c == '+') {
			if (i + 2 >= len)
				return -1;
			unsigned v = 0;
			for (int k = 1; k <= 2; k++) {
				unsigned char h = (unsigned char)in[i + (size_t)k];
				v <<= 4;
				if (is_digit(h))
					v |= (unsigned)(h - '0');
				else if (h >= 'A' && h <= 'F')
					v |= (unsigned)(h - 'A' + 10);
				else if (h >= 'a' && h <= 'f')
					v |= (unsigned)(h - 'a' + 10);
				else
					return -1;
			}
			out[n++] = (char)v;
			i += 2;
		} else if (c >= 33 && c <= 126 && c != '=') {
			out[n++] = (char)c;
		} else {
			return -1;
		}
	}
	out[n] = '\0';
	return (long)n;
}

/* Decimal number of 1..15 digits (so no wrap-around is possible). */
static bool parse_number(const char *s, size_t len, unsigned long long *v_r)
{
	if (len == 0 || len > 15)
		return false;
	unsigned long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (v > SMTP_NUMBER_MAX)
		return false;
	*v_r = v;
	return true;
}

struct param {
	const char *key, *value;
	size_t key_len, value_len;
	bool has_value;
};

/* Splits "KEY[=VALUE] KEY[=VALUE] ..." into params. Returns the count or -1 with *error_r. */
static int split_params(const char *s, size_t len, bool utf8_values, struct param *params, const char **error_r)
{
	int count = 0;
	size_t i = 0;
	while (i < len) {
		if (s[i] == ' ') {
			i++;
			continue;
		}
		if (count == SMTP_PARAMS_MAX) {
			*error_r = E_PARAMS_MANY;
			return -1;
		}
		struct param *p = &params[count];
		p->key = s + i;
		if (!is_alnum((unsigned char)s[i])) {
			*error_r = E_SYNTAX;
			return -1;
		}
		while (i < len && (is_alnum((unsigned char)s[i]) || s[i] == '-'))
			i++;
		p->key_len = (size_t)(s + i - p->key);
		p->has_value = false;
		p->value = s + i;
		p->value_len = 0;
		if (i < len && s[i] == '=') {
			i++;
			p->has_value = true;
			p->value = s + i;
			while (i < len && s[i] != ' ') {
				unsigned char c = (unsigned char)s[i];
				if (c >= 33 && c <= 126 && c != '=') {
					i++;
				} else if (c >= 128 && utf8_values) {
					size_t n = utf8_decode(s + i, len - i, NULL);
					if (n == 0) {
						*error_r = E_PARAM_BAD;
						return -1;
					}
					i += n;
				} else {
					*error_r = E_PARAM_BAD;
					return -1;
				}
			}
			p->value_len = (size_t)(s + i - p->value);
			if (p->value_len == 0) {
				*error_r = E_PARAM_BAD;
				return -1;
			}
		}
		if (i < len && s[i] != ' ') {
			*error_r = E_SYNTAX;
			return -1;
		}
		for (int k = 0; k < count; k++) {
			if (params[k].key_len == p->key_len && strncasecmp(params[k].key, p->key, p->key_len) == 0) {
				*error_r = E_PARAM_DUP;
				return -1;
			}
		}
		count++;
	}
	return count;
}

static bool key_is(const struct param *p, const char *name)
{
	return p->key_len == strlen(name) && strncasecmp(p->key, name, p->key_len) == 0;
}

static bool value_is(const struct param *p, const char *v)
{
	return p->value_len == strlen(v) && strncasecmp(p->value, v, p->value_len) == 0;
}

/* "FROM:" / "TO:" then optional spaces; returns the offset of the path or 0 on mismatch. */
static size_t skip_keyword(const char *arg, size_t len, const char *kw)
{
	size_t n = strlen(kw);
	if (len < n || strncasecmp(arg, kw, n) != 0)
		return 0;
	while (n < len && arg[n] == ' ')
		n++;
	return n;
}

int smtp_parse_mail(const char *arg, size_t len, unsigned exts, struct smtp_mail *mail_r, const char **error_r)
{
	memset(mail_r, 0, sizeof(*mail_r));
	size_t off = skip_keyword(arg, len, "FROM:");
	if (off == 0 || off >= len || arg[off] != '<') {
		*error_r = E_FROM_SYNTAX;
		return IX_EINVAL;
	}
	unsigned pflags = SMTP_PATH_ALLOW_NULL | ((exts & SMTP_EXT_SMTPUTF8) ? SMTP_PATH_UTF8 : 0);
	size_t used;
	const char *perr;
	int r = smtp_parse_path(arg + off, len - off, pflags, &mail_r->from, &used, &perr);
	if (r < 0) {
		*error_r = r == IX_ELIMIT ? perr : E_BAD_SENDER;
		return r;
	}
	off += used;
	if (off < len && arg[off] != ' ') {
		*error_r = E_BAD_SENDER;
		return IX_EINVAL;
	}
	struct param params[SMTP_PARAMS_MAX];
	int count = split_params(arg + off, len - off, (exts & SMTP_EXT_SMTPUTF8) != 0, params, error_r);
	if (count < 0)
		return IX_EINVAL;
	for (int k = 0; k < count; k++) {
		const struct param *p = &params[k];
		if (key_is(p, "SIZE") && (exts & SMTP_EXT_SIZE)) {
			if (!p->has_value || !parse_number(p->value, p->value_len, &mail_r->size))
				goto bad_value;
			mail_r->has_size = true;
		} else if (key_is(p, "BODY") && (exts & (SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME))) {
			if (!p->has_value)
				goto bad_value;
			if (value_is(p, "7BIT"))
				mail_r->body = SMTP_BODY_7BIT;
			else if (value_is(p, "8BITMIME") && (exts & SMTP_EXT_8BITMIME))
				mail_r->body = SMTP_BODY_8BITMIME;
			else if (value_is(p, "BINARYMIME") && (exts & SMTP_EXT_BINARYMIME))
				mail_r->body = SMTP_BODY_BINARYMIME;
			else
				goto bad_value;
		} else if (key_is(p, "SMTPUTF8") && (exts & SMTP_EXT_SMTPUTF8)) {
			if (p->has_value)
				goto bad_value;
			mail_r->smtputf8 = true;
		} else if (key_is(p, "RET") && (exts & SMTP_EXT_DSN)) {
			if (!p->has_value)
				goto bad_value;
			if (value_is(p, "FULL"))
				mail_r->ret = SMTP_RET_FULL;
			else if (value_is(p, "HDRS"))
				mail_r->ret = SMTP_RET_HDRS;
			else
				goto bad_value;
		} else if (key_is(p, "ENVID") && (exts & SMTP_EXT_DSN)) {
			long n = p->has_value ? smtp_xtext_decode(p->value, p->value_len, mail_r->envid,
								  sizeof(mail_r->envid))
					      : -1;
			if (n <= 0)
				goto bad_value;
			mail_r->envid_len = (size_t)n;
		} else if (key_is(p, "AUTH") && (exts & SMTP_EXT_AUTH)) {
			char decoded[SMTP_PATH_MAX_UTF8 + 1];
			long n = p->has_value ? smtp_xtext_decode(p->value, p->value_len, decoded, sizeof(decoded))
					      : -1;
			if (n <= 0)
				goto bad_value;
			mail_r->has_auth = true;
			if (n == 2 && memcmp(decoded, "<>", 2) == 0) {
				mail_r->auth_null = true;
				continue;
			}
			struct smtp_path ap;
			size_t aused;
			const char *aerr;
			if (smtp_parse_path(decoded, (size_t)n, SMTP_PATH_NO_BRACKETS | (pflags & SMTP_PATH_UTF8), &ap,
					    &aused, &aerr) < 0)
				goto bad_value;
			mail_r->auth = ap.mbox;
		} else {
			*error_r = E_PARAM_UNKNOWN;
			return IX_EINVAL;
		}
	}
	if ((mail_r->from.mbox.utf8 || mail_r->auth.utf8) && !mail_r->smtputf8) {
		*error_r = E_NEED_UTF8;
		return IX_EINVAL;
	}
	return 0;
bad_value:
	*error_r = E_PARAM_BAD;
	return IX_EINVAL;
}

static bool parse_notify(const struct param *p, unsigned *notify_r)
{
	if (!p->has_value)
		return false;
	if (value_is(p, "NEVER")) {
		*notify_r = SMTP_NOTIFY_NEVER;
		return true;
	}
	unsigned notify = 0;
	size_t i = 0;
	while (i <= p->value_len) {
		size_t j = i;
		while (j < p->value_len && p->value[j] != ',')
			j++;
		struct param word = { .value = p->value + i, .value_len = j - i, .has_value = true };
		unsigned bit;
		if (value_is(&word, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (value_is(&word, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (value_is(&word, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return false;
		if (notify & bit)
			return false;
		notify |= bit;
		i = j + 1;
	}
	*notify_r = notify;
	return true;
}

int smtp_parse_rcpt(const char *arg, size_t len, unsigned exts, bool utf8, struct smtp_rcpt *rcpt_r,
		    const char **error_r)
{
	memset(rcpt_r, 0, sizeof(*rcpt_r));
	size_t off = skip_keyword(arg, len, "TO:");
	if (off == 0 || off >= len || arg[off] != '<') {
		*error_r = E_TO_SYNTAX;
		return IX_EINVAL;
	}
	unsigned pflags = SMTP_PATH_ALLOW_POSTMASTER | ((exts & SMTP_EXT_SMTPUTF8) ? SMTP_PATH_UTF8 : 0);
	size_t used;
	const char *perr;
	int r = smtp_parse_path(arg + off, len - off, pflags, &rcpt_r->to, &used, &perr);
	if (r < 0) {
		*error_r = r == IX_ELIMIT ? perr : E_BAD_RCPT;
		return r;
	}
	if (rcpt_r->to.mbox.utf8 && !utf8) {
		*error_r = E_NEED_UTF8;
		return IX_EINVAL;
	}
	off += used;
	if (off < len && arg[off] != ' ') {
		*error_r = E_BAD_RCPT;
		return IX_EINVAL;
	}
	struct param params[SMTP_PARAMS_MAX];
	int count = split_params(arg + off, len - off, utf8, params, error_r);
	if (count < 0)
		return IX_EINVAL;
	for (int k = 0; k < count; k++) {
		const struct param *p = &params[k];
		if (key_is(p, "NOTIFY") && (exts & SMTP_EXT_DSN)) {
			if (!parse_notify(p, &rcpt_r->notify))
				goto bad_value;
		} else if (key_is(p, "ORCPT") && (exts & SMTP_EXT_DSN)) {
			if (!p->has_value)
				goto bad_value;
			const char *semi = memchr(p->value, ';', p->value_len);
			if (semi == NULL)
				goto bad_value;
			size_t tlen = (size_t)(semi - p->value);
			if (tlen == 0 || tlen > SMTP_ADDR_TYPE_MAX)
				goto bad_value;
			for (size_t t = 0; t < tlen; t++) {
				if (!is_alnum((unsigned char)p->value[t]) && p->value[t] != '-')
					goto bad_value;
			}
			memcpy(rcpt_r->orcpt_type, p->value, tlen);
			rcpt_r->orcpt_type[tlen] = '\0';
			long n = smtp_xtext_decode(semi + 1, p->value_len - tlen - 1, rcpt_r->orcpt,
						   sizeof(rcpt_r->orcpt));
			if (n <= 0)
				goto bad_value;
			rcpt_r->orcpt_len = (size_t)n;
		} else {
			*error_r = E_PARAM_UNKNOWN;
			return IX_EINVAL;
		}
	}
	return 0;
bad_value:
	*error_r = E_PARAM_BAD;
	return IX_EINVAL;
}

int smtp_parse_bdat(const char *arg, size_t len, unsigned long long *size_r, bool *last_r, const char **error_r)
{
	size_t i = 0;
	while (i < len && is_digit((unsigned char)arg[i]))
		i++;
	if (!parse_number(arg, i, size_r)) {
		*error_r = E_BDAT_SYNTAX;
		return IX_EINVAL;
	}
	*last_r = false;
	size_t j = i;
	while (j < len && arg[j] == ' ')
		j++;
	if (j == len && i == len)
		return 0;
	if (j > i && len - j == 4 && strncasecmp(arg + j, "LAST", 4) == 0) {
		*last_r = true;
		return 0;
	}
	*error_r = E_BDAT_SYNTAX;
	return IX_EINVAL;
}

int smtp_parse_auth(const char *arg, size_t len, char *mech, size_t mech_size, const char **ir_r, size_t *ir_len_r,
		    const char **error_r)
{
	size_t i = 0;
	while (i < len && (is_alnum((unsigned char)arg[i]) || arg[i] == '-' || arg[i] == '_'))
		i++;
	if (i == 0 || i >= mech_size || (i < len && arg[i] != ' ')) {
		*error_r = E_AUTH_SYNTAX;
		return IX_EINVAL;
	}
	memcpy(mech, arg, i);
	mech[i] = '\0';
	*ir_r = NULL;
	*ir_len_r = 0;
	size_t j = i;
	while (j < len && arg[j] == ' ')
		j++;
	if (j < len) {
		size_t k = j;
		while (k < len && arg[k] != ' ')
			k++;
		if (k != len) {
			*error_r = E_AUTH_SYNTAX;
			return IX_EINVAL;
		}
		*ir_r = arg + j;
		*ir_len_r = len - j;
	}
	return 0;
}

/* ---- DATA ---- */

enum data_state { D_BOL = 0, D_MID, D_CR, D_DOT, D_DOT_CR, D_END };

void smtp_data_init(struct smtp_data *d, enum smtp_bare_lf bare_lf, unsigned long long max_size)
{
	memset(d, 0, sizeof(*d));
	d->bare_lf = bare_lf;
	d->max_size = max_size;
	d->state = D_BOL;
}

static void data_out(struct smtp_data *d, struct buf *out, const char *p, size_t n)
{
	d->size += n;
	if (d->max_size > 0 && d->size > d->max_size)
		d->too_big = true;
	if (!d->too_big && !d->rejected)
		buf_append(out, p, n);
}

static void line_end(struct smtp_data *d)
{
	if (d->line_len > d->longest_line)
		d->longest_line = d->line_len;
	d->line_len = 0;
}

int smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out, size_t *consumed_r)
{
	size_t i = 0;
	if (d->state == D_END) {
		*consumed_r = 0;
		return SMTP_DATA_END;
	}
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		switch (d->state) {
		case D_BOL:
			if (c == '.') {
				d->state = D_DOT;
				d->line_len = 1;
				i++;
			} else {
				d->state = D_MID;
			}
			break;
		case D_MID: {
			size_t j = i;
			while (j < len && in[j] != '\r' && in[j] != '\n')
				j++;
			if (j > i) {
				data_out(d, out, in + i, j - i);
				d->line_len += j - i;
				i = j;
				break;
			}
			i++;
			d->line_len++;
			if (c == '\r') {
				d->state = D_CR;
				break;
			}
			/* a bare LF: never a line start for "." handling */
			d->bare_lf_count++;
			if (d->bare_lf == SMTP_BARE_LF_REJECT)
				d->rejected = true;
			else if (d->bare_lf == SMTP_BARE_LF_NORMALIZE)
				data_out(d, out, "\r\n", 2);
			else
				data_out(d, out, "\n", 1);
			line_end(d);
			break;
		}
		case D_CR:
			if (c == '\n') {
				i++;
				d->line_len++;
				data_out(d, out, "\r\n", 2);
				line_end(d);
				d->state = D_BOL;
			} else {
				d->bare_cr_count++;
				data_out(d, out, "\r", 1);
				d->state = D_MID; /* c is looked at again there */
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOT_CR;
				d->line_len++;
				i++;
			} else {
				d->state = D_MID; /* a stuffed dot: dropped; c is content */
			}
			break;
		case D_DOT_CR:
			if (c == '\n') {
				i++;
				d->line_len++;
				line_end(d);
				d->state = D_END;
				*consumed_r = i;
				return SMTP_DATA_END;
			}
			d->state = D_CR; /* ".\r" then not LF: the dot was stuffing, the CR is bare */
			break;
		default: panic("smtp_data_feed: bad state %d", d->state);
		}
	}
	*consumed_r = i;
	return SMTP_DATA_MORE;
}
