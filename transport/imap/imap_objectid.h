/* imap_objectid.h - the pure parts of OBJECTID (RFC 8474: the identifiers of mailboxes, messages and threads) and
 * PREVIEW (RFC 8970: a short plain-text preview made from a message's text). No store, no I/O. */
#ifndef IX_IMAP_OBJECTID_H
#define IX_IMAP_OBJECTID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define IMAP_OBJECTID_MAX 255u        /* RFC 8474 objectid: 1*255(ALPHA / DIGIT / "_" / "-") */
#define IMAP_PREVIEW_MAX_CHARS 256u   /* RFC 8970 3.1: at most 256 characters */
#define IMAP_PREVIEW_INPUT_MAX 65536u /* bytes of decoded text imap_preview() looks at; the rest is ignored */

/* Appends the MAILBOXID of a folder: "F" + the mailbox GUID + "-" + the folder's store id in lower-case hex. The
 * store id survives RENAME and is never given to another folder of the mailbox, so the identifier is kept by a
 * rename and never names another folder. */
void imap_mailboxid(const char *guid, uint32_t folder_id, struct buf *out);
/* Appends the EMAILID of a message: "M" + the first 24 hex digits of the SHA-256 of its bytes (the store's body
 * hash). The same message has the same EMAILID wherever it is (COPY, MOVE, one delivery to several mailboxes). */
void imap_emailid(const uint8_t hash[32], struct buf *out);
/* Appends the THREADID of a message: "T" + 24 hex digits of a hash of its thread's root Message-ID: the first
 * valid Message-ID of References, else of In-Reply-To, else its own Message-ID (the field values as in the message,
 * NULL when absent); a message with none of them is a thread of its own, hashed from its body hash. Replies whose
 * References keep the first Message-ID (RFC 5322 3.6.4 asks for it) share their thread's THREADID. */
void imap_threadid(const char *message_id, const char *in_reply_to, const char *references, const uint8_t hash[32],
		   struct buf *out);
/* Whether s[0..len) is a valid objectid (for the SEARCH keys EMAILID and THREADID). */
bool imap_objectid_valid(const char *s, size_t len);

/* Appends the preview of a message text (already decoded to UTF-8 from its transfer encoding and charset; only the
 * first IMAP_PREVIEW_INPUT_MAX bytes count): html drops tags and the contents of head, style and script elements
 * and decodes character references (&amp; &lt; &gt; &quot; &apos; &nbsp; &#n; &#xh;); plain text drops quoted
 * lines (first non-blank character '>') and stops at a signature separator line ("-- "). Every run of white space
 * and control characters becomes one space, leading and trailing space is dropped, bytes that are not UTF-8 are
 * dropped, and at most IMAP_PREVIEW_MAX_CHARS characters are kept. The result is valid UTF-8, possibly empty. */
void imap_preview(const char *text, size_t len, bool html, struct buf *out);

#endif
