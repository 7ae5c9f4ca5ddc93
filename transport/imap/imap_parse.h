/* imap_parse.h - incremental IMAP4rev1 command parser (RFC 3501 syntax, RFC 7888 LITERAL+/-, RFC 3516 ~{n}).
 * Pure: no I/O, no globals. Bytes go in, a tag + command name + argument tree comes out; see docs/imap-parse.md. */
#ifndef IX_IMAP_PARSE_H
#define IX_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"

/* Default limits (struct imap_parser_settings overrides each; 0 there means "the default"). */
#define IMAP_PARSE_MAX_LINE 65536u                  /* command text, literal contents excluded */
#define IMAP_PARSE_MAX_LITERAL (64u * 1024 * 1024)  /* one literal */
#define IMAP_PARSE_MAX_LITERALS (64u * 1024 * 1024) /* all literals of one command together */
#define IMAP_PARSE_MAX_DEPTH 32u                    /* nesting of parenthesized lists */
#define IMAP_PARSE_HARD_MAX_DEPTH 256u              /* settings cannot raise the depth above this */
#define IMAP_PARSE_MAX_ARGS 4096u                   /* arguments of one command, nested ones included */
#define IMAP_PARSE_MAX_TAG 256u                     /* bytes of a tag */
#define IMAP_PARSE_MAX_NAME 64u                     /* bytes of a command name */
#define IMAP_LITERAL_MINUS_MAX 4096u                /* RFC 7888: largest {n+} under LITERAL- */
#define IMAP_PARSE_MAX_PRECHECKS 8u                 /* syntax checks of a command at its literal announcements */

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE = 0, /* every byte given was consumed; feed more */
	IMAP_PARSE_DONE,          /* a whole command is ready: imap_parser_command() */
	IMAP_PARSE_LITERAL,       /* a literal was announced: imap_parser_literal(), then accept or reject */
	IMAP_PARSE_ERROR,         /* the command is bad: imap_parser_error(), imap_parser_tag() */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,    /* also flags (\Seen), sequence sets, BODY[...]<...> fetch attributes */
	IMAP_ARG_QUOTED,  /* "..." with the \\ and \" escapes removed */
	IMAP_ARG_LITERAL, /* {n}, {n+} or ~{n} (literal8 set) */
	IMAP_ARG_NIL,     /* the atom NIL in any case; str still holds the bytes as sent */
	IMAP_ARG_LIST,    /* ( ... ) */
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8; /* the literal was ~{n} (may contain NULs) */
	bool sunk;     /* LITERAL whose bytes went to the caller's sink (imap_parser_literal_accept_sink):
				       * str is "" and len 0; sunk_len is its size */
	uint64_t sunk_len;
	const char *str; /* ATOM/QUOTED/LITERAL/NIL: the bytes, NUL-terminated (str[len] == 0) */
	size_t len;
	const struct imap_arg *list; /* LIST: the elements, contiguous */
	size_t list_count;
};

struct imap_command {
	const char *tag;
	const char *name; /* upper-cased; for "UID FETCH" this is "FETCH" and uid is set */
	bool uid;
	const struct imap_arg *args; /* the arguments after the name */
	size_t arg_count;
};

struct imap_literal_info {
	uint64_t size;
	bool sync;   /* {n}: the client waits for "+ OK" before it sends the bytes */
	bool binary; /* ~{n} */
};

struct imap_parser_settings {
	size_t max_line;       /* 0: IMAP_PARSE_MAX_LINE */
	uint64_t max_literal;  /* 0: IMAP_PARSE_MAX_LITERAL */
	uint64_t max_literals; /* 0: IMAP_PARSE_MAX_LITERALS */
	unsigned max_depth;    /* 0: IMAP_PARSE_MAX_DEPTH (capped at IMAP_PARSE_HARD_MAX_DEPTH) */
	unsigned max_args;     /* 0: IMAP_PARSE_MAX_ARGS */
	bool literal_plus;     /* accept {n+} of any size (LITERAL+) */
	bool literal_minus;    /* accept {n+} up to IMAP_LITERAL_MINUS_MAX (LITERAL-); ignored with literal_plus */
	bool binary;           /* accept ~{n} (BINARY) */
	/* Where the bytes of a literal accepted with imap_parser_literal_accept_sink go, as they arrive (NULL: that call
	 * accepts normally). Called from imap_parser_feed with ctx. */
	void (*sink)(void *ctx, const void *data, size_t len);
	void *sink_ctx;
};

struct imap_parser;

/* Creates a parser; settings may be NULL for the defaults. Free with imap_parser_destroy(&p) (sets p to NULL). */
struct imap_parser *imap_parser_create(const struct imap_parser_settings *settings);
void imap_parser_destroy(struct imap_parser **p);

/* Feeds len bytes. *consumed_r says how many were used (the rest belongs to the next call: pipelining). Returns
 * NEED_MORE (all consumed), DONE (a command is ready, valid until the next feed/reset/destroy), LITERAL (a literal
 * announcement line was consumed and the command so far is syntactically fine: call imap_parser_literal_accept
 * or _reject before feeding again; feeding without either accepts), or ERROR (imap_parser_error; the parser then silently discards the rest of the bad
 * command, literals announced with {n+} included, and the next feeds continue with the following command).
 * Feeding the same bytes in any chunking gives the same results. */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data, size_t len, size_t *consumed_r);

/* The command after DONE; NULL otherwise. Owned by the parser, valid until the next feed, reset or destroy. */
const struct imap_command *imap_parser_command(const struct imap_parser *p);
/* The announcement after LITERAL. The caller checks its own limits, then: for a sync literal, sends "+ OK" and
 * accepts, or rejects and sends a tagged NO/BAD; for {n+}, accepts or rejects (the bytes are then discarded). */
const struct imap_literal_info *imap_parser_literal(const struct imap_parser *p);
void imap_parser_literal_accept(struct imap_parser *p);
/* Accepts the literal with its bytes handed to settings.sink instead of kept in the command (a large APPEND message
 * the caller spools to disk); its argument then has sunk set. One literal per command: for a second one, and
 * without a sink, this is imap_parser_literal_accept. */
void imap_parser_literal_accept_sink(struct imap_parser *p);
void imap_parser_literal_reject(struct imap_parser *p);
/* After ERROR: a one-line message for a "BAD" response (no CR/LF), owned by the parser, valid until the next feed. */
const char *imap_parser_error(const struct imap_parser *p);
/* After ERROR: which ix_err applies (IX_EINVAL for syntax, IX_ELIMIT for a limit). */
int imap_parser_error_code(const struct imap_parser *p);
/* The tag of the command being parsed or just parsed/failed, or NULL when there is no valid tag (answer
 * "* BAD"). Owned by the parser, valid until the next feed. */
const char *imap_parser_tag(const struct imap_parser *p);
/* Drops any partial command and all state (e.g. after STARTTLS). */
void imap_parser_reset(struct imap_parser *p);

/* Parses a complete command held in one buffer (as sent: literal announcements followed by their bytes) without
 * the literal handshake, for tests and tools. Equivalent to feeding it with every literal accepted. Returns 0 and
 * the command (owned by p) or IX_EINVAL/IX_ELIMIT with error_r set; *consumed_r is the command's length. */
int imap_parse_whole(struct imap_parser *p, const void *data, size_t len, const struct imap_command **cmd_r,
		     size_t *consumed_r, struct buf *error_r);

/* ---- argument helpers (pure; the strings returned point into the argument) ---- */

/* atom, quoted, literal or NIL -> its bytes. Returns false for a list. */
bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r, size_t *len_r);
/* quoted or literal only (RFC "string"). */
bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r, size_t *len_r);
/* nstring: NIL gives *str_r NULL. */
bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r, size_t *len_r);
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *upper);
/* A mailbox name (astring) without NULs; any case of "INBOX" comes back as the static "INBOX". */
bool imap_arg_get_mailbox(const struct imap_arg *arg, const char **name_r, size_t *len_r);
/* An atom that is a decimal number <= max (no sign, no leading junk, wrap checked). */
bool imap_arg_get_number(const struct imap_arg *arg, uint64_t max, uint64_t *value_r);

/* ---- sequence sets: 1,3:5,7:* and $ (RFC 5182 SEARCHRES) ---- */

#define IMAP_SEQ_STAR 0u /* "*" inside a range; real numbers are nz-number (1..4294967295) */
#define IMAP_SEQSET_MAX_RANGES 65536u

struct imap_seq_range {
	uint32_t lo, hi; /* lo <= hi unless one of them is IMAP_SEQ_STAR */
};

struct imap_seqset {
	struct imap_seq_range *ranges; /* xmalloc'ed; free with imap_seqset_free */
	size_t count;
	bool saved; /* "$": the saved search result; count is then 0 */
};

/* Parses a sequence set (allow_saved: accept "$"). Returns 0 or IX_EINVAL/IX_ELIMIT with error_r set. */
int imap_seqset_parse(const char *s, size_t len, bool allow_saved, struct imap_seqset *set_r, struct buf *error_r);
void imap_seqset_free(struct imap_seqset *set);
/* Whether n is in the set when "*" means max (the largest number in use; 0 for an empty mailbox). */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max);
/* The index of the first of the ascending numbers v[0..n) that is not below x (n when there is none). */
size_t imap_u32_lower_bound(const uint32_t *v, size_t n, uint32_t x);
/* qsort comparison of two uint32_t. */
int imap_u32_cmp(const void *a, const void *b);
/* The set with "*" resolved to max, sorted and merged, into ranges_r (xmalloc'ed, caller frees). Ranges are
 * clamped to 1..max when clamp is set. Returns the number of ranges. */
size_t imap_seqset_resolve(const struct imap_seqset *set, uint32_t max, bool clamp, struct imap_seq_range **ranges_r);

/* ---- flags ---- */

enum imap_flag {
	IMAP_FLAG_ANSWERED = 1 << 0,
	IMAP_FLAG_FLAGGED = 1 << 1,
	IMAP_FLAG_DELETED = 1 << 2,
	IMAP_FLAG_SEEN = 1 << 3,
	IMAP_FLAG_DRAFT = 1 << 4,
	IMAP_FLAG_RECENT = 1 << 5, /* never accepted from a client's flag list */
};
#define IMAP_MAX_KEYWORDS 256u
#define IMAP_MAX_KEYWORD_LEN 128u

struct imap_flags {
	unsigned system;       /* enum imap_flag bits */
	const char **keywords; /* xmalloc'ed array of pointers into the arguments; free with imap_flags_free */
	size_t keyword_count;
};

/* Parses a flag list "(\Seen $Junk)" or a single flag atom. Unknown \Extensions are rejected, \Recent too.
 * Returns 0 or IX_EINVAL/IX_ELIMIT with error_r set. */
int imap_flags_parse(const struct imap_arg *arg, struct imap_flags *flags_r, struct buf *error_r);
void imap_flags_free(struct imap_flags *flags);
/* Whether s is a valid keyword atom (no specials, no backslash, 1..IMAP_MAX_KEYWORD_LEN bytes). */
bool imap_keyword_valid(const char *s, size_t len);

/* ---- dates ---- */

/* date: "1-Feb-1994" (quoted or not): days since 1970-01-01. Returns 0 or IX_EINVAL. */
int imap_date_parse(const struct imap_arg *arg, int64_t *days_r);
/* date-time: "17-Jul-1996 02:44:25 -0700" -> seconds since the epoch (UTC) and the zone in minutes east. */
int imap_datetime_parse(const struct imap_arg *arg, int64_t *time_r, int *tz_minutes_r);
/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t imap_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
