/* imap_search.h - SEARCH arguments (RFC 3501 keys, 4731 RETURN, 5182 $, 7162 MODSEQ, 5032 OLDER/YOUNGER, 8474
 * EMAILID/THREADID, 8514 SAVED*) parsed into
 * an AST with depth limits, and a pure evaluator of that AST over a caller-supplied message view. */
#ifndef IX_IMAP_SEARCH_H
#define IX_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "transport/imap/imap_parse.h"

#define IMAP_SEARCH_MAX_DEPTH 32u    /* nesting of NOT, OR and ( ) */
#define IMAP_SEARCH_MAX_KEYS 1024u   /* keys in one query */
#define IMAP_SEARCH_MAX_STRING 4096u /* bytes of one search string */

enum imap_search_type {
	IMAP_SK_ALL,
	IMAP_SK_AND,    /* children: a ( ) group or the top level */
	IMAP_SK_OR,     /* two children */
	IMAP_SK_NOT,    /* one child */
	IMAP_SK_SEQSET, /* message sequence numbers */
	IMAP_SK_UID,
	IMAP_SK_FLAGS, /* ANSWERED, UNSEEN, NEW, OLD, ...: flags_set all set and flags_unset all clear */
	IMAP_SK_KEYWORD,
	IMAP_SK_UNKEYWORD,
	IMAP_SK_HEADER, /* HEADER name value; BCC, CC, FROM, SUBJECT, TO become HEADER with that name */
	IMAP_SK_BODY,
	IMAP_SK_TEXT,
	IMAP_SK_BEFORE, /* internal date, whole days */
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE, /* Date: header, whole days */
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_LARGER,
	IMAP_SK_SMALLER,
	IMAP_SK_MODSEQ,
	IMAP_SK_OLDER,       /* WITHIN (RFC 5032): internal date more than number seconds before now */
	IMAP_SK_YOUNGER,     /* internal date at most number seconds before now */
	IMAP_SK_EMAILID,     /* OBJECTID (RFC 8474): name is the EMAILID */
	IMAP_SK_THREADID,    /* name is the THREADID */
	IMAP_SK_SAVEDBEFORE, /* SAVEDATE (RFC 8514): the save date, whole days; the internal date without one */
	IMAP_SK_SAVEDON,
	IMAP_SK_SAVEDSINCE,
	IMAP_SK_SAVEDATESUPPORTED, /* every message: the store keeps save dates for every folder */
};

struct imap_search_key {
	enum imap_search_type type;
	struct imap_search_key *children; /* AND/OR/NOT */
	size_t child_count;
	unsigned flags_set, flags_unset; /* FLAGS: enum imap_flag bits */
	char *name;                      /* HEADER field name, KEYWORD keyword, EMAILID/THREADID id (NUL-terminated) */
	char *value;                     /* HEADER/BODY/TEXT string (NUL-terminated, may be "") */
	size_t value_len;
	int64_t days;              /* dates: days since 1970-01-01 */
	uint64_t number;           /* LARGER/SMALLER size, MODSEQ value, OLDER/YOUNGER seconds */
	struct imap_seqset seqset; /* SEQSET/UID */
};

enum imap_search_return {
	IMAP_SEARCH_RETURN_MIN = 1 << 0,
	IMAP_SEARCH_RETURN_MAX = 1 << 1,
	IMAP_SEARCH_RETURN_ALL = 1 << 2,
	IMAP_SEARCH_RETURN_COUNT = 1 << 3,
	IMAP_SEARCH_RETURN_SAVE = 1 << 4,
	IMAP_SEARCH_RETURN_UPDATE = 1 << 5,  /* RFC 5267: keep the result up to date with ADDTO/REMOVEFROM */
	IMAP_SEARCH_RETURN_CONTEXT = 1 << 6, /* RFC 5267: a hint that more requests for the result follow */
	IMAP_SEARCH_RETURN_PARTIAL = 1 << 7, /* RFC 5267: PARTIAL lo:hi, the results at those positions */
};

/* The RETURN options of SEARCH (RFC 4731, 5182 SAVE, 5267 UPDATE, CONTEXT, PARTIAL) and of SORT (RFC 5267). */
struct imap_return_opts {
	unsigned opts;                   /* enum imap_search_return bits; "RETURN ()" is ALL */
	uint32_t partial_lo, partial_hi; /* PARTIAL: positions, 1-based, lo <= hi */
};

/* Parses a RETURN option list into ret_r, accepting the options in allowed (enum imap_search_return bits; each at
 * most once). Only UPDATE and CONTEXT, or nothing, mean ALL as well. Returns 0 or IX_EINVAL with error_r set. */
int imap_search_return_parse(const struct imap_arg *list, unsigned allowed, struct imap_return_opts *ret_r,
			     struct buf *error_r);

struct imap_search_query {
	struct imap_search_key root;     /* an AND of the top-level keys */
	bool esearch;                    /* RETURN (...) was given: answer with ESEARCH */
	unsigned return_opts;            /* enum imap_search_return bits; RETURN () means ALL */
	uint32_t partial_lo, partial_hi; /* RETURN (PARTIAL lo:hi) */
	bool uses_saved;                 /* "$" appears: the caller needs the saved result */
	bool uses_modseq;                /* MODSEQ appears: answer with (MODSEQ n) (RFC 7162) */
	bool uses_recent;                /* RECENT, NEW or OLD appears: keys IMAP4rev2 (RFC 9051) does not have */
};

/* Parses the SEARCH arguments. Returns 0 and *query_r (free with imap_search_query_destroy), or IX_EINVAL /
 * IX_ELIMIT with error_r set; *badcharset_r is set when the failure is an unsupported CHARSET (answer
 * "NO [BADCHARSET (UTF-8 US-ASCII)]"). Supported charsets: UTF-8, US-ASCII; strings must be valid UTF-8. */
int imap_search_parse(const struct imap_arg *args, size_t count, struct imap_search_query **query_r, bool *badcharset_r,
		      struct buf *error_r);
void imap_search_query_destroy(struct imap_search_query **query);
/* Appends a canonical rendering of the AST, e.g. "(AND (HEADER FROM \"alice\") (NOT (FLAGS +0 -8)))". */
void imap_search_key_dump(const struct imap_search_key *key, struct buf *out);

/* The view of one message the evaluator needs; the caller fills it from the store. */
struct imap_search_msg {
	uint32_t seq, uid;
	uint32_t seq_max, uid_max; /* what "*" means */
	unsigned flags;            /* enum imap_flag bits, \Recent included */
	const char *const *keywords;
	size_t keyword_count;
	uint64_t size;         /* RFC822.SIZE */
	int64_t internal_date; /* seconds since the epoch */
	int64_t now;           /* the time OLDER and YOUNGER count back from, seconds since the epoch */
	int internal_tz;       /* minutes east of UTC in which the internal date's day is counted */
	bool has_sent_date;    /* false: SENT* keys use the internal date */
	int64_t sent_date;     /* the Date: header, seconds since the epoch */
	int sent_tz;           /* the Date: header's own zone, minutes east */
	uint64_t modseq;
	const uint32_t *saved_uids; /* the saved result for "$", ascending */
	size_t saved_count;
	void *ctx;
	/* Appends the values of every header field called name (case-insensitive), unfolded and decoded to
	 * UTF-8, separated by newlines, and for an address field (From, Sender, Reply-To, To, Cc, Bcc) then its
	 * addresses as "name <mailbox@host>" lines without comments; returns false when the message has no such
	 * field. */
	bool (*header)(void *ctx, const char *name, struct buf *value_r);
	/* Appends the message's body text decoded to UTF-8 (with_headers: the whole message, for TEXT). */
	void (*body)(void *ctx, bool with_headers, struct buf *text_r);
	bool has_save_date;  /* the store knows when the message was saved in the folder (RFC 8514) */
	int64_t save_date;   /* seconds since the epoch, counted in internal_tz like the internal date */
	const char *emailid; /* the message's EMAILID (RFC 8474); NULL: matches no EMAILID key */
	/* Appends the message's THREADID (NULL: matches no THREADID key). */
	void (*threadid)(void *ctx, struct buf *id_r);
};

/* Whether the message matches the query: the strings of HEADER (FROM, TO, CC, BCC, SUBJECT), BODY and TEXT are
 * substrings under i;unicode-casemap (RFC 5255 I18NLEVEL=1, common/unicasemap.h). Pure apart from the callbacks;
 * never fails. */
bool imap_search_match(const struct imap_search_query *query, const struct imap_search_msg *msg);

#endif
