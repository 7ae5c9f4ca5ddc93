/* buf.h - the one growable, length-carrying byte string used everywhere.
 * data is always NUL-terminated (data[len] == 0) so it can be handed to C APIs; it may contain NULs. */
#ifndef IX_BUF_H
#define IX_BUF_H

#include <stddef.h>
#include "common/util.h"

struct buf {
	char *data; /* NULL until the first append; use buf_cstr() for a never-NULL string */
	size_t len;
	size_t cap;
};

/* an initializer, not a block: clang-format would brace it as one */
/* clang-format off */
#define BUF_INIT { NULL, 0, 0 }
/* clang-format on */

void buf_init(struct buf *b);
/* Frees the memory and leaves b empty and reusable. */
void buf_free(struct buf *b);
/* Empties b, keeping its memory. */
void buf_reset(struct buf *b);
/* Makes room for n more bytes; growth checks overflow (panics on a size that cannot exist). */
void buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
/* Appends s (len bytes) as a quoted string: between double quotes, each '"' and '\\' preceded by a backslash (the
 * quoted-string of IMAP, ManageSieve and RFC 5322). The caller decides that s may be quoted (no CR, LF or NUL). */
void buf_append_quoted(struct buf *b, const char *s, size_t len);
void buf_printf(struct buf *b, const char *fmt, ...) IX_PRINTF(2, 3);
/* Appends s with XML's five special characters escaped (for XML text and attribute values). */
void buf_append_xml(struct buf *b, const char *s);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) IX_PRINTF(2, 0);
/* Reads fd until end of file (retrying EINTR; stops at a read error), appending what fits under max bytes of b
 * and draining the rest, so a writer on the other end of a pipe never blocks. */
void buf_read_fd(struct buf *b, int fd, size_t max);
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* The contents as a C string ("" when empty). Valid until the next change to b. */
const char *buf_cstr(const struct buf *b);
/* Hands the memory to the caller (NUL-terminated, never NULL) and leaves b empty. */
char *buf_steal(struct buf *b);

#endif
