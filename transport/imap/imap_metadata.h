/* imap_metadata.h - the pure part of IMAP METADATA (RFC 5464): entry names, GETMETADATA's options and entries and
 * SETMETADATA's entry/value pairs from a parsed command's arguments. No I/O, no globals. */
#ifndef IX_IMAP_METADATA_H
#define IX_IMAP_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "transport/imap/imap_parse.h"

#define IMAP_METADATA_MAX_ENTRIES 100u /* entries named by one GETMETADATA or SETMETADATA */
#define IMAP_METADATA_ENTRY_MAX 256u   /* bytes of an entry name */

/* Checks an entry name (RFC 5464 3.2: "/private/..." or "/shared/...", printable ASCII without "*", "%", "//" or a
 * trailing "/"; root: "/private" and "/shared" alone are accepted too, the roots a DEPTH query starts from) and
 * appends it lower-cased (entry names are case-insensitive) to out. Returns 0 or IX_EINVAL with error_r set. */
int imap_metadata_entry(const char *s, size_t len, bool root, struct buf *out, struct buf *error_r);

/* Whether name is entry itself or a descendant of it within depth levels (0: itself only, 1: children, -1: all).
 * Both lower-cased. */
bool imap_metadata_within(const char *entry, const char *name, int depth);

struct imap_getmetadata {
	const char *mailbox; /* points into the arguments ("" for the server) */
	size_t mailbox_len;
	bool has_maxsize;
	uint64_t maxsize; /* MAXSIZE: values longer are left out and counted in LONGENTRIES */
	int depth;        /* DEPTH 0 (default), 1, infinity (-1) */
	char **entries;   /* lower-cased, owned */
	size_t n;
};

/* GETMETADATA [options] mailbox entries, options before or after the mailbox (RFC 5464's grammar puts them before,
 * its examples after): options "(" MAXSIZE n / DEPTH 0|1|infinity ")", entries one entry or a list of them.
 * Returns 0 or IX_EINVAL/IX_ELIMIT with error_r set; free with imap_getmetadata_free either way. */
int imap_getmetadata_parse(const struct imap_arg *args, size_t n, struct imap_getmetadata *r, struct buf *error_r);
void imap_getmetadata_free(struct imap_getmetadata *r);

struct imap_metadata_value {
	char *entry;       /* lower-cased, owned */
	const char *value; /* points into the arguments; NULL: NIL (remove) */
	size_t len;
};

struct imap_setmetadata {
	const char *mailbox;
	size_t mailbox_len;
	struct imap_metadata_value *set;
	size_t n;
};

/* SETMETADATA mailbox "(" entry value *(entry value) ")", values nstring or literal8. Returns 0 or IX_EINVAL/IX_ELIMIT
 * with error_r set; free with imap_setmetadata_free either way. */
int imap_setmetadata_parse(const struct imap_arg *args, size_t n, struct imap_setmetadata *r, struct buf *error_r);
void imap_setmetadata_free(struct imap_setmetadata *r);

#endif
