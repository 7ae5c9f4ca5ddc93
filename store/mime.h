/* mime.h - the information store's MIME parser: runs once at delivery and computes everything IMAP needs
 * (ENVELOPE, BODY, BODYSTRUCTURE, the part tree with byte ranges, decoded common headers), so IMAP never re-parses. */
#ifndef IX_MIME_H
#define IX_MIME_H

#include <stddef.h>
#include "common/buf.h"

/* Hard limits; exceeding one makes mime_parse() return IX_ELIMIT. max_line only flags (MIME_F_LONG_LINE). */
#define MIME_DEFAULT_MAX_HEADER_BYTES (1024 * 1024) /* one header block (message or part) */
#define MIME_DEFAULT_MAX_DEPTH 32                   /* nesting: root is depth 0 */
#define MIME_DEFAULT_MAX_PARTS 10000                /* nodes in the part tree, root included */
#define MIME_DEFAULT_MAX_LINE 998                   /* RFC 5322 2.1.1; longer lines are flagged, not refused */
/* Limits that are not configurable: */
#define MIME_MAX_BOUNDARY 200 /* a longer boundary parameter is treated as missing (RFC 2046 allows 70) */
#define MIME_MAX_PARAMS 64    /* parameters kept per header field; more are dropped and flagged */
#define MIME_MAX_SECTION 512  /* longest IMAP section string mime_find_part() accepts */

struct mime_limits {
	size_t max_header_bytes;
	unsigned max_depth;
	unsigned max_parts;
	size_t max_line;
};

/* Anomalies found while parsing (mime_info.flags). None of them is an error. */
#define MIME_F_TRUNCATED 0x0001         /* message ends inside the header block (no blank line) */
#define MIME_F_NO_BOUNDARY 0x0002       /* multipart without a usable boundary parameter (parsed as text/plain) */
#define MIME_F_NO_CLOSE_BOUNDARY 0x0004 /* a multipart's closing delimiter is missing */
#define MIME_F_NO_PARTS 0x0008          /* a multipart without any delimiter (one empty part is assumed) */
#define MIME_F_8BIT_HEADER 0x0010       /* 8-bit bytes in a header block */
#define MIME_F_NUL 0x0020               /* NUL bytes in a header block (dropped from IMAP strings) */
#define MIME_F_BAD_HEADER 0x0040        /* a header line without a colon (ends the header block) */
#define MIME_F_LONG_LINE 0x0080         /* a line longer than max_line */
#define MIME_F_BAD_ADDRESS 0x0100       /* an address list could not be fully parsed */
#define MIME_F_BAD_DATE 0x0200          /* a Date: header that does not parse */
#define MIME_F_BAD_ENCODING 0x0400      /* message/rfc822 with a content-transfer-encoding (kept opaque) */
#define MIME_F_TOO_MANY_PARAMS 0x0800   /* more than MIME_MAX_PARAMS parameters in a field */
#define MIME_F_BARE_LF 0x1000           /* lines end in bare LF (not CRLF) somewhere */

/* One node of the MIME tree, in depth-first order; parts[0] is the whole message.
 * A message/rfc822 part is followed by the root of the message it encloses: that root has the same section string
 * as the rfc822 part, depth + 1, and is_message_root set; its header is the enclosed message's header. */
struct mime_part {
	char *section;                 /* IMAP section: "" for the top-level message, "1", "1.2", "2.1.3" ... */
	size_t header_off, header_len; /* header block, offsets into the message (header_len includes the blank line) */
	size_t body_off, body_len;     /* body of this part (for a multipart: preamble, parts and epilogue) */
	unsigned lines;                /* body line count: the number of LFs in the body */
	char *type, *subtype;          /* as given in Content-Type; "text"/"plain" by default */
	char *encoding;                /* Content-Transfer-Encoding token, lower-cased; "7bit" when absent or invalid */
	char *charset;                 /* charset parameter, decoded; "us-ascii" for text without one; else NULL */
	unsigned depth;
	size_t parent; /* index of the parent node in parts[] (0 for parts[0]) */
	int is_multipart, is_message_rfc822, is_message_root;
};

struct mime_info {
	size_t msg_size;     /* length of the parsed message; every range in parts[] lies within it */
	char *envelope;      /* IMAP ENVELOPE, ready to send: ("date" "subject" (("name" NIL "mbox" "host")) ...) */
	char *bodystructure; /* IMAP BODYSTRUCTURE with extension data, ready to send */
	char *body;          /* IMAP BODY (no extension data) */
	struct mime_part *parts;
	size_t part_count; /* at least 1 */
	/* Common header fields of the top-level message: unfolded, RFC 2047 decoded, always valid UTF-8; NULL when
	 * absent. Every string in mime_info and its parts is owned by it and freed by mime_info_destroy(). */
	char *subject, *from, *to, *cc, *bcc, *date, *message_id, *in_reply_to, *references, *reply_to, *sender;
	long long date_unix; /* Date: as Unix time; -1 when absent or invalid */
	unsigned flags;      /* MIME_F_* */
};

/* Fills lim_r with the MIME_DEFAULT_* values. */
void mime_limits_default(struct mime_limits *lim_r);

/* Parses msg[0..len) (CRLF or bare LF line ends; NULs and 8-bit bytes allowed). Pure: no I/O, no globals.
 * Malformed input never fails: it is parsed as well as possible and flagged in flags.
 * lim may be NULL for the defaults. Returns IX_OK with *info_r set (free with mime_info_destroy), or IX_ELIMIT
 * when a hard limit is exceeded (header block size, parts, depth): *info_r is NULL and error_r (may be NULL)
 * gets a message. The result does not point into msg. */
int mime_parse(const char *msg, size_t len, const struct mime_limits *lim, struct mime_info **info_r,
	       struct buf *error_r);
/* Frees *info and sets it to NULL; NULL is fine. */
void mime_info_destroy(struct mime_info **info);

/* Appends a compact binary form of info to out (for the store's cache record). */
void mime_info_serialize(const struct mime_info *info, struct buf *out);
/* Rebuilds an info from mime_info_serialize() output. Input is fully validated: anything malformed returns
 * IX_ECORRUPT with *info_r NULL. Returns IX_OK otherwise; free with mime_info_destroy. */
int mime_info_deserialize(const void *data, size_t len, struct mime_info **info_r);

/* Finds a part by IMAP section number ("", "1", "1.2"): "" is the whole message; in a message that is not
 * multipart "1" is the message itself (its body); for an rfc822 part "N", "N.1" is the enclosed message's body
 * or first part. Returns a pointer into info->parts, or NULL if there is no such part or section is malformed. */
const struct mime_part *mime_find_part(const struct mime_info *info, const char *section);

/* Resolves a whole IMAP section spec as in BODY[...] without HEADER.FIELDS: "", "HEADER", "TEXT", "1.2",
 * "1.2.MIME", "3.HEADER", "3.TEXT" (case-insensitive keywords) to the byte range of the message it covers.
 * HEADER/TEXT apply to the top-level message or to an rfc822 part's enclosed message; MIME to any numbered part.
 * For "....HEADER.FIELDS (..)" resolve the part with "....HEADER" and filter with mime_header_fields().
 * Returns IX_OK with *off_r and *len_r set, or IX_ENOTFOUND. */
int mime_section_range(const struct mime_info *info, const char *spec, size_t *off_r, size_t *len_r);

/* Appends to out the header fields of header[0..header_len) whose names are (not == 0) or are not (not != 0) in
 * names[0..n) (case-insensitive), as IMAP's HEADER.FIELDS / HEADER.FIELDS.NOT want them: whole fields with their
 * continuation lines, line ends made CRLF, then the blank line "\r\n". */
void mime_header_fields(const char *header, size_t header_len, const char *const *names, size_t n, int not,
			struct buf *out);

/* Appends in[0..len) to out with RFC 2047 encoded-words (B and Q) decoded to UTF-8: charsets utf-8, us-ascii,
 * iso-8859-1, iso-8859-15 and windows-1252; words in other charsets, or malformed, are copied as they are.
 * Whitespace between two adjacent encoded-words is dropped. Other text is copied unchanged. */
void mime_decode_words(const char *in, size_t len, struct buf *out);

/* Appends the body of a leaf part with its Content-Transfer-Encoding undone (base64, quoted-printable;
 * 7bit/8bit/binary and unknown encodings are copied). msg is the message the part was parsed from. */
void mime_decode_body(const struct mime_part *part, const char *msg, struct buf *out);

/* As mime_decode_body(), and for a text/... part the result is also converted to UTF-8 from its charset (utf-8,
 * us-ascii, iso-8859-1, iso-8859-15, windows-1252; other charsets are copied as they are). For body SEARCH. */
void mime_decode_text(const struct mime_part *part, const char *msg, struct buf *out);

/* Appends the unfolded value (leading and trailing whitespace trimmed) of the first field called name
 * (case-insensitive) in header[0..header_len) to out. Returns 1 when the field exists, else 0. For SEARCH HEADER;
 * pass the value to mime_decode_words() for a decoded form. */
int mime_header_get(const char *header, size_t header_len, const char *name, struct buf *out);
/* As mime_header_get() for every field called name: their unfolded values in order, each after a newline but the
 * first. Returns the number of fields (0: out unchanged). For SEARCH HEADER, which looks at all of them. */
size_t mime_header_get_all(const char *header, size_t header_len, const char *name, struct buf *out);

/* Appends the addresses of an address-list field value (raw, as in the header: folded, with comments) as lines
 * "name <mailbox@host>" (no name: "<mailbox@host>"), each after a newline but the first: comments and whitespace
 * around the parts are gone and RFC 2047 words decoded, so "<user (c)@ (c) example.org>" gives
 * "<user@example.org>". Group names are left out, their members kept. Returns the number of addresses. For SEARCH
 * FROM, TO, CC and BCC, which match the addresses of the ENVELOPE. */
size_t mime_addr_text(const char *value, size_t len, struct buf *out);

/* Parses an RFC 5322 date (obsolete forms included): returns 0 with *t_r (Unix time) and, when zone_r is not NULL,
 * *zone_r (the zone as written, minutes east of UTC; 0 for military and unknown zones, RFC 5322 4.3), or -1.
 * Unix time plus the zone gives the date and time as written (SEARCH SENTON and its kin compare that date). */
int mime_parse_date(const char *v, long long *t_r, int *zone_r);

/* Appends the message msg (info->msg_size bytes, info its parse) downgraded as RFC 6857 says, for IMAP and POP3
 * clients that do not accept UTF-8 headers (RFC 6855): in every header block (the message's, its parts' and
 * enclosed messages') a field holding 8-bit bytes is rewritten in ASCII: address fields (From, Sender, Reply-To,
 * To, Cc, Bcc and their Resent- forms) keep their addresses with display names as RFC 2047 encoded-words, and a
 * mailbox whose address is not ASCII becomes an empty group "name address :;" (both encoded-words); any other field
 * becomes its unfolded value as encoded-words. Bodies are copied as they are. Parse the result with mime_parse()
 * for its ENVELOPE and BODYSTRUCTURE. */
void mime_downgrade(const char *msg, const struct mime_info *info, struct buf *out);

/* Appends s[0..len) as an IMAP string: NIL when s is NULL, a quoted string when it can be one, else a literal
 * {n}\r\n... (CR, LF or 8-bit bytes). NUL bytes are dropped (IMAP strings cannot carry them). */
void mime_imap_string(struct buf *out, const char *s, size_t len);

#endif
