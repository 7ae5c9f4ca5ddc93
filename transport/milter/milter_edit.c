/* milter_edit.c - header fields and body of a message, changed as mail filters ask (pure: no I/O). */
#include "transport/milter/milter_edit.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void push(struct milter_message *m, size_t at, char *text, size_t len, size_t name_len)
{
	m->f = xrealloc(m->f, (m->n + 1) * sizeof(*m->f));
	memmove(&m->f[at + 1], &m->f[at], (m->n - at) * sizeof(*m->f));
	m->f[at] = (struct milter_field){ text, len, name_len };
	m->n++;
}

void milter_message_parse(const char *msg, size_t len, struct milter_message *m_r)
{
	memset(m_r, 0, sizeof(*m_r));
	size_t at = 0;
	while (at < len) {
		const char *line = msg + at;
		const char *nl = memchr(line, '\n', len - at);
		size_t llen = nl != NULL ? (size_t)(nl - line) + 1 : len - at;
		if ((llen == 2 && line[0] == '\r') || (llen == 1 && line[0] == '\n')) {
			m_r->separator = true;
			at += llen;
			break;
		}
		/* a folded line (or a block that starts with one) belongs to the field before */
		if ((line[0] == ' ' || line[0] == '\t') && m_r->n > 0) {
			struct milter_field *f = &m_r->f[m_r->n - 1];
			f->text = xrealloc(f->text, f->len + llen + 1);
			memcpy(f->text + f->len, line, llen);
			f->len += llen;
			f->text[f->len] = '\0';
		} else {
			const char *colon = memchr(line, ':', llen);
			size_t name_len = colon != NULL ? (size_t)(colon - line) : 0;
			for (size_t i = 0; i < name_len; i++) {
				if ((unsigned char)line[i] <= ' ' || line[i] == 0x7f)
					name_len = 0; /* not a field name: kept, never shown */
			}
			push(m_r, m_r->n, xstrndup(line, llen), llen, name_len);
		}
		at += llen;
	}
	m_r->body = msg + at;
	m_r->body_len = len - at;
}

void milter_message_free(struct milter_message *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->f[i].text);
	free(m->f);
	buf_free(&m->replacement);
	memset(m, 0, sizeof(*m));
}

void milter_message_value(const struct milter_message *m, size_t i, struct buf *out)
{
	const struct milter_field *f = &m->f[i];
	buf_reset(out);
	size_t at = f->name_len + 1, end = f->len;
	while (at < end && (f->text[at] == ' ' || f->text[at] == '\t'))
		at++;
	if (end >= at + 1 && f->text[end - 1] == '\n')
		end--;
	if (end >= at + 1 && f->text[end - 1] == '\r')
		end--;
	for (size_t k = at; k < end; k++) {
		if (f->text[k] == '\r' && k + 1 < end && f->text[k + 1] == '\n')
			continue;
		buf_append_char(out, f->text[k]);
	}
	buf_cstr(out);
}

/* "Name: value\r\n" with the value's bare LF (a filter's line breaks) as CRLF. */
static char *field_text(const char *name, const char *value, size_t *len_r)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, name);
	buf_append_char(&b, ':');
	if (value[0] != ' ' && value[0] != '\t')
		buf_append_char(&b, ' ');
	for (const char *c = value; *c != '\0'; c++) {
		if (*c == '\n' && (c == value || c[-1] != '\r'))
			buf_append_char(&b, '\r');
		buf_append_char(&b, *c);
	}
	buf_append_str(&b, "\r\n");
	*len_r = b.len;
	return buf_steal(&b);
}

void milter_message_insert(struct milter_message *m, uint32_t index, const char *name, const char *value)
{
	size_t len;
	char *text = field_text(name, value, &len);
	push(m, index < m->n ? index : m->n, text, len, strlen(name));
}

void milter_message_add(struct milter_message *m, const char *name, const char *value)
{
	milter_message_insert(m, UINT32_MAX, name, value);
}

void milter_message_change(struct milter_message *m, uint32_t index, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	uint32_t seen = 0;
	if (index == 0)
		index = 1;
	for (size_t i = 0; i < m->n; i++) {
		struct milter_field *f = &m->f[i];
		if (f->name_len != nlen || strncasecmp(f->text, name, nlen) != 0 || ++seen != index)
			continue;
		free(f->text);
		if (value[0] == '\0') {
			memmove(&m->f[i], &m->f[i + 1], (m->n - i - 1) * sizeof(*m->f));
			m->n--;
		} else {
			f->text = field_text(name, value, &f->len);
			f->name_len = nlen;
		}
		return;
	}
	if (value[0] != '\0')
		milter_message_add(m, name, value);
}

void milter_message_replace_body(struct milter_message *m, bool first, const char *data, size_t len)
{
	if (first) {
		buf_reset(&m->replacement);
		m->replaced = true;
	}
	for (size_t i = 0; i < len; i++) {
		bool after_cr = i > 0 ? data[i - 1] == '\r'
				      : m->replacement.len > 0 && m->replacement.data[m->replacement.len - 1] == '\r';
		if (data[i] == '\n' && !after_cr)
			buf_append_char(&m->replacement, '\r');
		buf_append_char(&m->replacement, data[i]);
	}
	m->body = m->replacement.data != NULL ? m->replacement.data : "";
	m->body_len = m->replacement.len;
}

void milter_message_render(const struct milter_message *m, struct buf *out)
{
	for (size_t i = 0; i < m->n; i++)
		buf_append(out, m->f[i].text, m->f[i].len);
	if (m->separator || m->body_len > 0 || m->replaced)
		buf_append_str(out, "\r\n");
	buf_append(out, m->body, m->body_len);
	/* a filter's body without its last line break still ends the message with one */
	if (m->replaced && m->body_len > 0 && (m->body_len < 2 || memcmp(m->body + m->body_len - 2, "\r\n", 2) != 0))
		buf_append_str(out, "\r\n");
}
