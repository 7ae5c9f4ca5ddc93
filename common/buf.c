/* buf.c - growable byte string. */
#include "common/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void buf_reserve(struct buf *b, size_t n)
{
	if (n > SIZE_MAX - b->len - 1)
		panic("buf_reserve: size overflow");
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_append_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_append_char(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void buf_append_quoted(struct buf *b, const char *s, size_t len)
{
	buf_reserve(b, len + 2);
	buf_append_char(b, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_char(b, '\\');
		buf_append_char(b, s[i]);
	}
	buf_append_char(b, '"');
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		panic("buf_vprintf: bad format %s", fmt);
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_append_xml(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': buf_append_str(b, "&amp;"); break;
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		case '\'': buf_append_str(b, "&apos;"); break;
		default: buf_append_char(b, *s);
		}
	}
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
	if (n > b->len)
		panic("buf_consume: %zu > %zu", n, b->len);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

const char *buf_cstr(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

char *buf_steal(struct buf *b)
{
	char *p = b->data != NULL ? b->data : xstrdup("");
	buf_init(b);
	return p;
}

void buf_read_fd(struct buf *b, int fd, size_t max)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n == 0 || (n < 0 && errno != EINTR))
			return;
		if (n > 0 && b->len < max)
			buf_append(b, chunk, (size_t)n < max - b->len ? (size_t)n : max - b->len);
	}
}
