/* mime_int.h - internals shared by the mime_*.c files: header scanning, parameters, addresses, dates.
 * Not part of the store's API; only mime*.c and tests include it. */
#ifndef IX_MIME_INT_H
#define IX_MIME_INT_H

#include <stddef.h>
#include "common/buf.h"
#include "store/mime.h"

/* One Content-Type / Content-Disposition parameter after RFC 2231 merging; name and value are owned. */
struct mime_param {
	char *name;  /* as given, without section suffix; ends in '*' when the value is RFC 2231 extended */
	char *value; /* as given (extended values keep their charset'lang'%XX form) */
};

/* Walks the fields of a header block. */
struct mime_hdr_iter {
	const char *p, *end;
};

/* Next field of the block: name (without trailing WSP), raw value after the colon up to the field's end (folding
 * and final line end included) and the whole field with its line end. Returns 0 at the blank line / end. */
int mime_hdr_next(struct mime_hdr_iter *it, const char **name_r, size_t *name_len_r, const char **value_r,
		  size_t *value_len_r, const char **field_r, size_t *field_len_r);
/* Appends value unfolded (CR and LF removed), NULs dropped, leading/trailing whitespace trimmed; returns a new
 * string (caller frees). */
char *mime_unfold(const char *value, size_t len);

/* Parses "type/subtype; a=b; c*0=..." (comments allowed). *type_r and *subtype_r are NULL when the value has no valid
 * type; params are merged (RFC 2231). Returns the number of params in *params_r (caller frees with
 * mime_params_free). *flags_r gets MIME_F_TOO_MANY_PARAMS when params were dropped. With want_subtype 0 the value
 * is "token; params" (Content-Disposition) and *subtype_r is left NULL. */
size_t mime_parse_ctype(const char *v, int want_subtype, char **type_r, char **subtype_r, struct mime_param **params_r,
			unsigned *flags_r);
void mime_params_free(struct mime_param *params, size_t n);
/* The value of parameter name (case-insensitive, non-extended or decoded from extended), newly allocated, or NULL. */
char *mime_param_get(const struct mime_param *params, size_t n, const char *name);

/* Appends an address list in ENVELOPE form: ((name adl mailbox host)...) or NIL when empty.
 * Sets MIME_F_BAD_ADDRESS in *flags when something was skipped. Returns the number of addresses written. */
size_t mime_addr_list(struct buf *out, const char *v, unsigned *flags);

/* RFC 6857 downgrading (mime_downgrade.c, mime_addr.c). mime_has_8bit: 1 when s[0..len) holds a byte >= 0x80.
 * mime_encode_words appends s[0..len) as RFC 2047 B encoded-words (charset UTF-8, or UNKNOWN-8BIT when s is not
 * UTF-8; whole characters per word, at most 72 bytes each) separated by sep; nothing for len 0.
 * mime_addr_downgrade appends the address list v (unfolded) rewritten as ASCII: display names with 8-bit bytes as
 * encoded-words, a mailbox whose address holds 8-bit bytes as an empty group (RFC 6857 section 3.1.4); comments
 * are dropped. */
int mime_has_8bit(const char *s, size_t len);
void mime_encode_words(const char *s, size_t len, const char *sep, struct buf *out);
void mime_addr_downgrade(const char *v, struct buf *out);

/* Makes b valid UTF-8: when it is not, its bytes are taken as windows-1252 (raw 8-bit header text). */
void mime_utf8_repair(struct buf *b);
/* Appends a NUL-terminated string as an IMAP nstring (NULL -> NIL). */
void mime_imap_nstring(struct buf *out, const char *s);
/* ASCII case-insensitive compare of s[0..len) with the C string lit. */
int mime_eq(const char *s, size_t len, const char *lit);

#endif
