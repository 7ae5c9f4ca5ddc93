/* imap_fetch.h - FETCH item lists parsed into a request struct (items, body sections, partials, PEEK), and the
 * helpers that write IMAP response data correctly (string vs literal, astring, flag lists, sequence sets). */
#ifndef IX_IMAP_FETCH_H
#define IX_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "transport/imap/imap_parse.h"

#define IMAP_FETCH_MAX_BODIES 64u     /* BODY[...]/BINARY[...] items in one FETCH */
#define IMAP_FETCH_MAX_PART_DEPTH 32u /* numbers in a section part: 1.2.3... */
#define IMAP_FETCH_MAX_FIELDS 256u    /* names in HEADER.FIELDS (...) */
#define IMAP_FETCH_MAX_FIELD_LEN 128u /* bytes of one header field name */
#define IMAP_QUOTED_MAX 1024u         /* longer strings are written as literals */

enum imap_fetch_item {
	IMAP_FETCH_FLAGS = 1 << 0,
	IMAP_FETCH_ENVELOPE = 1 << 1,
	IMAP_FETCH_BODYSTRUCTURE = 1 << 2,
	IMAP_FETCH_BODY = 1 << 3, /* "BODY" without a section: the non-extensible body structure */
	IMAP_FETCH_INTERNALDATE = 1 << 4,
	IMAP_FETCH_RFC822 = 1 << 5,        /* like BODY[] (sets \Seen), answered as RFC822 */
	IMAP_FETCH_RFC822_HEADER = 1 << 6, /* like BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_SIZE = 1 << 7,
	IMAP_FETCH_RFC822_TEXT = 1 << 8, /* like BODY[TEXT] (sets \Seen) */
	IMAP_FETCH_UID = 1 << 9,
	IMAP_FETCH_MODSEQ = 1 << 10,   /* RFC 7162; also implied by CHANGEDSINCE */
	IMAP_FETCH_EMAILID = 1 << 11,  /* RFC 8474 */
	IMAP_FETCH_THREADID = 1 << 12, /* RFC 8474 */
	IMAP_FETCH_PREVIEW = 1 << 13,  /* RFC 8970; "PREVIEW (LAZY)" sets preview_lazy too */
	IMAP_FETCH_SAVEDATE = 1 << 14, /* RFC 8514 */
};

enum imap_fetch_kind {
	IMAP_FETCH_KIND_BODY,        /* BODY[...] / BODY.PEEK[...] */
	IMAP_FETCH_KIND_BINARY,      /* BINARY[...] / BINARY.PEEK[...] (RFC 3516) */
	IMAP_FETCH_KIND_BINARY_SIZE, /* BINARY.SIZE[...] */
};

enum imap_section_text {
	IMAP_SECTION_WHOLE,             /* BODY[] or BODY[1.2]: the whole message or part */
	IMAP_SECTION_HEADER,            /* [HEADER], [1.HEADER] */
	IMAP_SECTION_HEADER_FIELDS,     /* [HEADER.FIELDS (A B)] */
	IMAP_SECTION_HEADER_FIELDS_NOT, /* [HEADER.FIELDS.NOT (A B)] */
	IMAP_SECTION_TEXT,              /* [TEXT], [1.TEXT] */
	IMAP_SECTION_MIME,              /* [1.MIME]: only with a part number */
};

struct imap_fetch_body {
	enum imap_fetch_kind kind;
	bool peek;       /* .PEEK: do not set \Seen (always true for BINARY.SIZE) */
	uint32_t *parts; /* section part numbers, each >= 1 */
	size_t part_count;
	enum imap_section_text text;
	char **fields; /* HEADER.FIELDS names as sent (validated: printable, no ':') */
	size_t field_count;
	bool partial; /* <offset.length> */
	uint32_t offset, length;
	char *section; /* normalized section text for the response, e.g. "1.HEADER.FIELDS (From)" */
};

struct imap_fetch_request {
	unsigned items; /* enum imap_fetch_item bits */
	struct imap_fetch_body *bodies;
	size_t body_count;
	bool changedsince; /* (CHANGEDSINCE n) modifier given */
	uint64_t changedsince_modseq;
	bool vanished;     /* (VANISHED) modifier given; the caller checks UID FETCH + QRESYNC */
	bool preview_lazy; /* PREVIEW (LAZY): the preview may be NIL when it is not at hand (RFC 8970 3.2) */
};

/* Parses the FETCH arguments after the sequence set: a macro (ALL, FAST, FULL), one fetch-att or a list of them,
 * optionally followed by a modifier list (CHANGEDSINCE n, VANISHED). PREVIEW may be followed by its own modifier
 * list "(LAZY)" (RFC 8970: "FETCH 1 (PREVIEW (LAZY))", and "FETCH 1 PREVIEW (LAZY)" as the only item). Returns 0
 * with *req_r filled (free with imap_fetch_request_free), or IX_EINVAL/IX_ELIMIT with a message in error_r (nothing
 * to free). */
int imap_fetch_parse(const struct imap_arg *args, size_t count, struct imap_fetch_request *req_r, struct buf *error_r);
void imap_fetch_request_free(struct imap_fetch_request *req);
/* Appends the response name of a body item: "BODY[1.TEXT]<100>", "BINARY[2]", "BINARY.SIZE[2]" (no PEEK; the
 * origin only for a partial fetch). */
void imap_fetch_body_name(const struct imap_fetch_body *body, struct buf *out);

/* ---- response writing ---- */

enum imap_write_flags {
	IMAP_WRITE_UTF8 = 1 << 0,   /* the client enabled UTF8=ACCEPT: 8-bit may go in quoted strings */
	IMAP_WRITE_BINARY = 1 << 1, /* a BINARY response: NULs allowed, sent as ~{n} literal8 */
};

/* Appends data as an IMAP string: quoted when short (<= IMAP_QUOTED_MAX) and free of CR, LF, NUL and of 8-bit
 * bytes (with IMAP_WRITE_UTF8: of anything that is not valid UTF-8), otherwise as a literal "{n}\r\n" + bytes. NULs need IMAP_WRITE_BINARY (~{n});
 * without it each NUL is written as 0x80 so the output is always valid. */
void imap_write_string(struct buf *out, const void *data, size_t len, unsigned flags);
/* As imap_write_string, but NIL for data == NULL. */
void imap_write_nstring(struct buf *out, const void *data, size_t len, unsigned flags);
/* An astring: a bare atom when possible (1+ ASTRING-CHARs and not "NIL"), otherwise a string. */
void imap_write_astring(struct buf *out, const void *data, size_t len, unsigned flags);
/* A flag list "(\Answered \Seen $Junk)" (system flags first in a fixed order, then keywords as given). */
void imap_write_flags(struct buf *out, unsigned system_flags, const char *const *keywords, size_t keyword_count);
/* A sequence set for the ascending numbers (duplicates allowed), compressed into ranges: "1:3,5,7:9".
 * Numbers out of order start a new range. Writes nothing for n == 0. */
void imap_write_seqset(struct buf *out, const uint32_t *numbers, size_t n);

#endif
