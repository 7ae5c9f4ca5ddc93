/* proxy_parse.c - backend response lines for the IMAP/POP3 proxy: IMAP tagged/untagged/continuation responses with
 * their status word and response code, capability words, POP3 +OK/-ERR/continuation. */
#include "transport/login/proxy_parse.h"

#include <string.h>
#include <strings.h>

/* No NUL and no bare CR or LF in a line (conn_read_line removed the CRLF). */
static bool clean_line(const char *line, size_t len)
{
	return len > 0 && len <= PROXY_LINE_MAX && memchr(line, '\0', len) == NULL && memchr(line, '\r', len) == NULL &&
	       memchr(line, '\n', len) == NULL;
}

/* RFC 3501 tag: ASTRING-CHAR except '+': no controls, space, ( ) { % * " \ + or 8-bit. (']' is allowed.) */
static bool tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

/* The status word at the start of s (followed by a space or the end). Returns its length, or 0 when none. */
static size_t status_word(const char *s, size_t len, enum proxy_status *status_r)
{
	static const struct {
		const char *word;
		enum proxy_status status;
	} words[] = {
		{ "OK", PROXY_STATUS_OK },   { "NO", PROXY_STATUS_NO },           { "BAD", PROXY_STATUS_BAD },
		{ "BYE", PROXY_STATUS_BYE }, { "PREAUTH", PROXY_STATUS_PREAUTH },
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);
		if (len >= n && strncasecmp(s, words[i].word, n) == 0 && (len == n || s[n] == ' ')) {
			*status_r = words[i].status;
			return n;
		}
	}
	*status_r = PROXY_STATUS_NONE;
	return 0;
}

bool proxy_imap_reply_parse(const char *line, size_t len, struct proxy_imap_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (!clean_line(line, len))
		return false;
	if (line[0] == '+') {
		if (len > 1 && line[1] != ' ')
			return false;
		r->kind = PROXY_IMAP_CONTINUE;
		r->resp = len > 1 ? line + 2 : line + 1;
		r->resp_len = len > 1 ? len - 2 : 0;
		return true;
	}
	size_t i = 0;
	if (line[0] == '*') {
		i = 1;
		r->kind = PROXY_IMAP_UNTAGGED;
	} else {
		while (i < len && tag_char((unsigned char)line[i]))
			i++;
		if (i == 0 || i > PROXY_TAG_MAX)
			return false;
		r->kind = PROXY_IMAP_TAGGED;
		r->tag = line;
		r->tag_len = i;
	}
	if (i >= len || line[i] != ' ' || i + 1 >= len)
		return false;
	r->resp = line + i + 1;
	r->resp_len = len - i - 1;
	size_t w = status_word(r->resp, r->resp_len, &r->status);
	if (r->kind == PROXY_IMAP_TAGGED && r->status != PROXY_STATUS_OK && r->status != PROXY_STATUS_NO &&
	    r->status != PROXY_STATUS_BAD)
		return false;
	if (w == 0 || w + 1 >= r->resp_len || r->resp[w + 1] != '[')
		return true;
	const char *code = r->resp + w + 2;
	const char *end = memchr(code, ']', r->resp_len - w - 2);
	if (end == NULL)
		return false;
	r->code = code;
	r->code_len = (size_t)(end - code);
	return true;
}

bool proxy_imap_has_capability(const char *text, size_t len, const char *cap)
{
	size_t clen = strlen(cap);
	if (len < 10 || strncasecmp(text, "CAPABILITY", 10) != 0 || (len > 10 && text[10] != ' '))
		return false;
	size_t i = 10;
	while (i < len) {
		while (i < len && text[i] == ' ')
			i++;
		size_t start = i;
		while (i < len && text[i] != ' ')
			i++;
		if (i - start == clen && strncasecmp(text + start, cap, clen) == 0)
			return true;
	}
	return false;
}

bool proxy_pop3_reply_parse(const char *line, size_t len, enum proxy_status *status_r, const char **text_r,
			    size_t *text_len_r)
{
	*status_r = PROXY_STATUS_NONE;
	*text_r = line;
	*text_len_r = 0;
	if (!clean_line(line, len))
		return false;
	size_t n;
	if (len >= 3 && memcmp(line, "+OK", 3) == 0) {
		*status_r = PROXY_STATUS_OK;
		n = 3;
	} else if (len >= 4 && memcmp(line, "-ERR", 4) == 0) {
		*status_r = PROXY_STATUS_NO;
		n = 4;
	} else if (line[0] == '+') {
		n = 1;
	} else {
		return false;
	}
	if (len > n && line[n] != ' ')
		return false;
	if (len > n) {
		*text_r = line + n + 1;
		*text_len_r = len - n - 1;
	} else {
		*text_r = line + len;
	}
	return true;
}

bool proxy_sieve_reply_parse(const char *line, size_t len, enum proxy_status *status_r, const char **text_r,
			     size_t *text_len_r)
{
	static const struct {
		const char *word;
		enum proxy_status status;
	} words[] = { { "OK", PROXY_STATUS_OK }, { "NO", PROXY_STATUS_NO }, { "BYE", PROXY_STATUS_BYE } };
	*status_r = PROXY_STATUS_NONE;
	*text_r = line;
	*text_len_r = 0;
	if (!clean_line(line, len))
		return false;
	if (line[0] == '"')
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);
		if (len < n || strncasecmp(line, words[i].word, n) != 0 || (len > n && line[n] != ' '))
			continue;
		*status_r = words[i].status;
		*text_r = line + (len > n ? n + 1 : n);
		*text_len_r = len > n ? len - n - 1 : 0;
		return true;
	}
	return false;
}
