/* imap_sort.h - the pure parts of SORT and THREAD (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO): the base subject,
 * sort programs and their ordering, Message-ID lists, and the ORDEREDSUBJECT, REFERENCES and REFS threading
 * algorithms. */
#ifndef IX_IMAP_SORT_H
#define IX_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "transport/imap/imap_parse.h"

#define IMAP_SORT_MAX_KEYS 16u    /* keys in one sort program */
#define IMAP_SUBJECT_MAX 8192u    /* bytes of a Subject the base subject looks at; the rest is ignored */
#define IMAP_THREAD_MAX_REFS 256u /* Message-IDs taken from one References field (the last ones are kept) */
#define IMAP_MSGID_MAX 998u       /* bytes of one Message-ID; a longer one is not valid */

/* RFC 5256 section 2.1 on a Subject already unfolded and decoded to UTF-8: whitespace runs become one space,
 * trailers "(fwd)" and whitespace, leaders "Re:", "Fw:", "Fwd:" (with [blob]s), [blob] prefixes and a
 * "[fwd: ...]" wrapper are removed; what is left becomes its i;unicode-casemap ordering key (unicasemap_key:
 * equal base subjects are equal bytes, and bytes order them, RFC 5255 I18NLEVEL=1). Replaces out's contents.
 * Returns true when something that marks a reply or forward was removed (a subj-refwd, a "(fwd)" trailer or a
 * "[fwd: ]" wrapper). Pure; only the first IMAP_SUBJECT_MAX bytes count (cut back to a character boundary). */
bool imap_base_subject(const char *subject, size_t len, struct buf *out);

enum imap_sort_key_type {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM, /* RFC 5957 */
	IMAP_SORT_DISPLAYTO,
};

struct imap_sort_key {
	enum imap_sort_key_type type;
	bool reverse;
};

/* Parses a sort program, the parenthesized list of SORT: e.g. (REVERSE DATE SUBJECT). Returns 0 with
 * keys_r[0..*count_r) (at most IMAP_SORT_MAX_KEYS), or IX_EINVAL with error_r set (empty list, unknown key,
 * REVERSE not followed by a key). */
int imap_sort_parse(const struct imap_arg *list, struct imap_sort_key *keys_r, size_t *count_r, struct buf *error_r);

/* What the sort keys compare for one message; strings are NUL-terminated i;unicode-casemap keys (unicasemap_key,
 * compared as bytes), "" when the message has none. */
struct imap_sort_msg {
	uint32_t seq;    /* the last tie-break (RFC 5256: the order in the mailbox) */
	int64_t arrival; /* internal date */
	int64_t date;    /* sent date in UTC; the internal date when the Date: header is missing or invalid */
	uint64_t size;
	const char *cc, *from, *to;            /* the first address's addr-mailbox */
	const char *subject;                   /* the base subject */
	const char *display_from, *display_to; /* the first address's display name, else its addr-mailbox@addr-host */
};

/* Sorts msgs[0..n) by keys[0..nkeys), then by seq. Pure; n may be 0. */
void imap_sort_messages(struct imap_sort_msg *msgs, size_t n, const struct imap_sort_key *keys, size_t nkeys);

/* Appends the valid Message-IDs of a Message-ID, In-Reply-To or References field value (unfolded) to ids_r,
 * each NUL-terminated, in order; "<" and ">" kept, whitespace and comments inside removed. A valid one is
 * "<left@right>" with both sides non-empty, at most IMAP_MSGID_MAX bytes. Returns how many were appended; keeps
 * only the last max of them when there are more (0: no limit). Pure. */
size_t imap_msgid_parse(const char *value, size_t len, size_t max, struct buf *ids_r);

/* One message as threading sees it. */
struct imap_thread_msg {
	uint32_t id;            /* what the answer lists: sequence number or UID */
	int64_t date;           /* as imap_sort_msg.date */
	const char *subject;    /* the base subject */
	bool reply;             /* imap_base_subject() returned true */
	const char *message_id; /* the field values, unfolded; NULL when absent */
	const char *in_reply_to;
	const char *references;
};

/* Appends the threads of msgs[0..n) (given in mailbox order) to out as the THREAD response's thread-list, e.g.
 * "(1 2 (3)(4))(5)". ORDEREDSUBJECT: RFC 5256 section 3 (grouped by base subject, each group's first message by
 * date the parent of the others); REFERENCES: RFC 5256 section 3 with the Message-ID links, the pruning and the
 * subject merge of section 4's algorithm. Pure; nothing when n is 0. */
void imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n, struct buf *out);
void imap_thread_references(const struct imap_thread_msg *msgs, size_t n, struct buf *out);
/* REFS (draft-ietf-morg-inthread, as Dovecot implements it): REFERENCES' links and pruning without the subject
 * merge (threads are what the Message-IDs say), children by date as there, and the threads ordered by the date of
 * their most recent message (so the thread that had the latest reply comes last). Pure; nothing when n is 0. */
void imap_thread_refs(const struct imap_thread_msg *msgs, size_t n, struct buf *out);

#endif
