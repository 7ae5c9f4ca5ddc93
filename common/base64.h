/* base64.h - base64 (RFC 4648, the standard alphabet) over OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock: one strict
 * decoder for protocol exchanges (SASL), one lenient decoder for mail content (MIME bodies, RFC 2047 words, LDIF). */
#ifndef IX_BASE64_H
#define IX_BASE64_H

#include <stddef.h>

#include "common/buf.h"

/* The value (0 to 63) of c in the standard alphabet, or -1 for any other byte ('=' included). */
static inline int base64_char_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Appends the padded base64 of data (len bytes) to out, without line breaks; out stays NUL-terminated (also when
 * len is 0). The encoding is written straight into out (no other copy of data or of its encoding is made). */
void base64_encode(const void *data, size_t len, struct buf *out);

/* Strict decoding: len is a multiple of 4, only the alphabet, '=' padding only in the last group (at most two),
 * the bits padding drops are zero (the one canonical encoding), no whitespace or line breaks. Appends the decoded
 * bytes to out (NUL-terminated after them). Returns IX_OK; IX_EINVAL when in is not such base64; IX_ELIMIT when it
 * would decode to more than max bytes. On failure out is as it was. */
int base64_decode(const char *in, size_t len, size_t max, struct buf *out);

/* Lenient decoding, as mail readers do: bytes outside the alphabet (line breaks, spaces, junk) are skipped,
 * decoding stops at the first '=', and a last incomplete group gives the whole bytes it holds (2 or 3 characters
 * give 1 or 2 bytes; a lone character gives none). Appends to out. Never fails. */
void base64_decode_lenient(const char *in, size_t len, struct buf *out);

#endif
