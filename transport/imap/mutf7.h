/* mutf7.h - modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8 for IMAP mailbox names, strict both ways, and the
 * mailbox-name rules (hierarchy separator, no empty components, length limits). Pure functions. */
#ifndef IX_MUTF7_H
#define IX_MUTF7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MUTF7_MAX_NAME 1024u     /* bytes of a UTF-8 mailbox name */
#define MUTF7_MAX_COMPONENT 255u /* bytes of one hierarchy level */
#define MUTF7_MAX_LEVELS 32u     /* hierarchy depth */

/* (Every error_r below may be NULL.) Decodes modified UTF-7 into UTF-8, appended to out. Rejects bytes outside 0x20..0x7e, a bad or unterminated
 * base64 run, non-zero padding bits, unpaired surrogates, U+0000, printable ASCII encoded in base64, and any other
 * non-canonical form (the input must be exactly what mutf7_from_utf8 makes of the result). Returns 0, or
 * IX_EINVAL with a message appended to error_r (out then holds an unspecified prefix). */
int mutf7_to_utf8(const char *in, size_t len, struct buf *out, struct buf *error_r);
/* Encodes strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF, no U+0000) as modified UTF-7, appended to out.
 * Returns 0 or IX_EINVAL with error_r. */
int mutf7_from_utf8(const char *in, size_t len, struct buf *out, struct buf *error_r);
/* Checks a UTF-8 mailbox name: 1..MUTF7_MAX_NAME bytes of strict UTF-8, no control characters (C0, DEL, C1),
 * no '*' or '%' (LIST wildcards), no empty component (leading, trailing or doubled sep), no "." or ".."
 * component, components <= MUTF7_MAX_COMPONENT bytes, <= MUTF7_MAX_LEVELS levels. Returns 0, IX_EINVAL or
 * IX_ELIMIT with error_r. */
int mutf7_mailbox_name_check(const char *utf8, size_t len, char sep, struct buf *error_r);

#endif
