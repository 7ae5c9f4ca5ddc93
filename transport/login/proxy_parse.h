/* proxy_parse.h - what the IMAP/POP3 proxy reads from a backend server while it logs in there on a user's behalf:
 * one response line at a time (greeting, STARTTLS/STLS answer, login answer). Pure functions over a bounded line:
 * no I/O, no allocation, no globals; the line is what conn_read_line returned (CRLF removed, may hold any byte). */
#ifndef IX_PROXY_PARSE_H
#define IX_PROXY_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest backend response line the proxy reads during login (our greeting and login answer carry the capability
 * list: about 400 bytes). A longer line is a protocol error. */
#define PROXY_LINE_MAX 8192
/* Longest tag the proxy recognises in a tagged response (it uses its own short tags at the backend). */
#define PROXY_TAG_MAX 64

enum proxy_status {
	PROXY_STATUS_NONE = 0, /* no status word (an untagged data response such as "* CAPABILITY ...") */
	PROXY_STATUS_OK,       /* IMAP OK, POP3 +OK */
	PROXY_STATUS_NO,       /* IMAP NO, POP3 -ERR */
	PROXY_STATUS_BAD,      /* IMAP BAD */
	PROXY_STATUS_PREAUTH,  /* IMAP greeting PREAUTH */
	PROXY_STATUS_BYE,      /* IMAP BYE */
};

enum proxy_imap_kind {
	PROXY_IMAP_UNTAGGED = 1, /* "* ..." */
	PROXY_IMAP_CONTINUE,     /* "+ ..." (or a bare "+") */
	PROXY_IMAP_TAGGED,       /* "TAG OK|NO|BAD ..." */
};

/* One IMAP response line (RFC 3501 section 7), split without copying. */
struct proxy_imap_reply {
	enum proxy_imap_kind kind;
	enum proxy_status status;
	const char *tag; /* TAGGED: the tag (tag_len bytes); else NULL */
	size_t tag_len;
	const char *resp; /* everything after "TAG " or "* " (status word included): what the proxy passes on
				    * with the client's tag in front */
	size_t resp_len;
	const char *code; /* the response code inside "[...]" after the status word, or NULL */
	size_t code_len;
};

/* Splits one IMAP response line. Returns true, or false for a line that is no IMAP response: empty, a NUL or bare
 * CR/LF inside, a tag of characters IMAP forbids (or longer than PROXY_TAG_MAX), a tagged line whose status is not
 * OK/NO/BAD, an unterminated response code, or a line longer than PROXY_LINE_MAX. */
bool proxy_imap_reply_parse(const char *line, size_t len, struct proxy_imap_reply *r);

/* True when the capability list in text (a CAPABILITY response code's content "CAPABILITY IMAP4rev1 ...", or an
 * untagged CAPABILITY response's "CAPABILITY ...") names cap (case-insensitive, whole words only). */
bool proxy_imap_has_capability(const char *text, size_t len, const char *cap);

/* Status of one POP3 response line: PROXY_STATUS_OK for "+OK", PROXY_STATUS_NO for "-ERR" (each alone or followed
 * by a space), PROXY_STATUS_NONE for a SASL continuation "+ ..." (or a bare "+"); returns false for anything else
 * (and for NUL, CR or LF inside, or a line longer than PROXY_LINE_MAX). *text_r: the rest after the status word
 * and its space (may be empty). */
bool proxy_pop3_reply_parse(const char *line, size_t len, enum proxy_status *status_r, const char **text_r,
			    size_t *text_len_r);

/* Status of one ManageSieve response line (RFC 5804 section 4): PROXY_STATUS_OK, _NO or _BYE for a line that
 * starts with that atom (any case) alone or followed by a space (*text_r: the rest after the space, may be empty),
 * PROXY_STATUS_NONE for a data line that starts with a quoted string (a capability: "SASL" "PLAIN"); returns false
 * for anything else (and for NUL, CR or LF inside, or a line longer than PROXY_LINE_MAX). */
bool proxy_sieve_reply_parse(const char *line, size_t len, enum proxy_status *status_r, const char **text_r,
			     size_t *text_len_r);

#endif
