/* utf8.h - the one UTF-8 validator, decoder and encoder: strict RFC 3629 (no overlong forms, no surrogates, nothing
 * past U+10FFFF, no truncated sequence), used by every layer that checks, walks or writes UTF-8. */
#ifndef IX_UTF8_H
#define IX_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Decodes the character at s, of which len bytes are available. Returns its length (1 to 4) and, when cp_r is
 * not NULL, its code point in *cp_r; or 0 when the bytes there do not start a well-formed sequence (a stray
 * continuation byte, C0/C1/F5-FF, an overlong form, a surrogate, a value past U+10FFFF, a sequence cut short by
 * len or by a byte that is not a continuation) or len is 0; *cp_r is then untouched. NUL is a character (U+0000). */
size_t utf8_decode(const void *s, size_t len, uint32_t *cp_r);
/* True when all len bytes of s are well-formed UTF-8 (len 0 is). */
bool utf8_valid(const void *s, size_t len);
/* Appends code point cp to out as UTF-8 (1 to 4 bytes); the caller passes a scalar value (at most U+10FFFF, not a
 * surrogate). */
void utf8_append(struct buf *out, uint32_t cp);

#endif
