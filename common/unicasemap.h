/* unicasemap.h - the i;unicode-casemap comparator (RFC 5051) as IMAP's I18NLEVEL=1 applies it (RFC 5255 4.6): the
 * substring test of SEARCH and the ordering keys of SORT and THREAD. Pure functions over ICU's Unicode tables. */
#ifndef IX_UNICASEMAP_H
#define IX_UNICASEMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Appends to out the "titlecased canonicalized UTF-8" form of s[0..len) (RFC 5051 section 2): each character
 * replaced by its simple titlecase mapping (UnicodeData.txt's titlecase field, no SpecialCasing: "ß" stays "ß"),
 * and that by its full compatibility decomposition (NFKD of the one character, e.g. U+01C4 becomes "D", "z",
 * U+030C); nothing else (no reordering of combining marks across characters, no second titlecase pass). Returns
 * true; false, with out unchanged, when s is not well-formed UTF-8 (common/utf8.h's rules). ASCII maps to ASCII
 * with a-z upper-cased. */
bool unicasemap_prepare(const char *s, size_t len, struct buf *out);

/* RFC 5255 4.6 substring operation: true when needle occurs in hay after both are prepared as above; when either
 * is not well-formed UTF-8, the originals are compared as bytes (i;octet). An empty needle is in every hay. An
 * all-ASCII hay is matched in place (nothing allocated). */
bool unicasemap_contains(const char *hay, size_t hay_len, const char *needle, size_t needle_len);

/* The ordering key of s[0..len) (RFC 5255 4.6 ordering operation), replacing key_r's contents, NUL-terminated:
 * the prepared form of well-formed UTF-8, else 0xFF followed by the original bytes, so that comparing keys as
 * bytes (strcmp/memcmp) orders every valid string by i;unicode-casemap before every invalid one, the invalid ones
 * by i;octet, and equal keys are exactly equal strings under that rule. */
void unicasemap_key(const char *s, size_t len, struct buf *key_r);

#endif
