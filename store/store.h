/* store.h - the information store: mailboxes, folders, messages and public folders in one LMDB environment.
 * Durable (every write returns after its commit is synced), single-instance bodies, group commit across threads. */
#ifndef IX_STORE_H
#define IX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Conventions for the whole API:
 * - Every call returns 0 or an IX_* code from err.h; on failure a plain-words message is appended to error_r
 *   (which may be NULL). IX_EAGAIN / IX_ELIMIT from a full disk or a full map are temporary: nothing stored
 *   before is lost, the call may be retried.
 * - A mailbox is named by its GUID from the directory: 32 hex digits, dashes allowed (UUID form); case-insensitive.
 * - A folder is named by its full path with '/' as the hierarchy separator ("INBOX", "Archive/2024"), UTF-8.
 *   "INBOX" is case-insensitive. A NULL folder name means INBOX.
 * - One struct store per process per store folder (LMDB forbids opening one environment twice in a process;
 *   a child of fork() must open its own). The handle is thread-safe: any thread may call any function.
 * - Every write call returns only after its data is durable (synced), unless settings.no_sync is set. */

#define STORE_GUID_LEN 16          /* bytes of a mailbox GUID */
#define STORE_GUID_HEX_LEN 32      /* hex digits of a GUID, without dashes */
#define STORE_FOLDER_NAME_MAX 1000 /* bytes of a folder's full path */
#define STORE_FOLDER_PART_MAX 255  /* bytes of one level of a folder path */
#define STORE_FOLDER_DEPTH_MAX 32  /* levels in a folder path */
#define STORE_FOLDERS_MAX 10000    /* folders per mailbox */
#define STORE_KEYWORDS_MAX 1000    /* bytes of a message's keyword list */
#define STORE_KEYWORD_MAX 100      /* bytes of one keyword */
#define STORE_ACL_ID_MAX 256       /* bytes of an ACL identifier (user or list) */
#define STORE_TARGETS_MAX 10000    /* mailboxes one append may go to */
#define STORE_SEP '/'

/* The public folder hierarchy is the mailbox with this GUID. */
#define STORE_PUBLIC_GUID "00000000000000000000000000000000"

struct store;

struct store_settings {
	uint64_t map_size;           /* initial LMDB map size in bytes (grows on demand) */
	uint64_t map_size_max;       /* the map never grows past this; a write that needs more gets IX_EAGAIN */
	size_t max_message_size;     /* larger appends are refused with IX_ELIMIT */
	unsigned quota_warn_percent; /* usage at or above this share of a quota sets the mailbox's warning mark */
	int no_group_commit;         /* 1: every write is its own synced transaction (for comparison benchmarks) */
	int no_sync;                 /* 1: commits are not synced (tests only; never in production) */
};

/* Fills s_r with defaults: 64 MiB map growing to 1 TiB, 64 MiB messages, warning at 90%, group commit on. */
void store_settings_default(struct store_settings *s_r);

/* Opens (creating it if needed) the store in the folder path. settings may be NULL for the defaults.
 * On success *store_r is a handle to free with store_close(). Opening a folder this process already has open
 * returns the same handle (reference counted; the first open's settings stay). */
int store_open(const char *path, const struct store_settings *settings, struct store **store_r, struct buf *error_r);
/* Drops a reference; the last one waits for writes in flight and closes the environment. Sets *store to NULL.
 * NULL is ignored. A child of fork() must neither use nor close its parent's handle. */
void store_close(struct store **store);

/* ---- mailboxes and folders ---- */

enum store_special_use {
	STORE_USE_NONE = 0,
	STORE_USE_INBOX,
	STORE_USE_SENT,
	STORE_USE_DRAFTS,
	STORE_USE_TRASH,
	STORE_USE_JUNK,
	STORE_USE_ARCHIVE,
};

/* The RFC 6154 attribute of a special use ("\\Sent"), or "" for STORE_USE_NONE and STORE_USE_INBOX. */
const char *store_special_use_name(enum store_special_use use);

/* Creates the mailbox with its standard folders (INBOX, Sent, Drafts, Trash, Junk, Archive) if it does not
 * exist yet; does nothing otherwise. Appends and logins call it implicitly where needed. */
int store_mailbox_ensure(struct store *st, const char *guid, struct buf *error_r);

/* Deletes a whole mailbox (a recipient removed from the directory): every folder, message, retained item, ACL
 * and seen entry; bodies whose last reference goes are freed. IX_ENOTFOUND if there is no such mailbox. */
int store_mailbox_delete(struct store *st, const char *guid, struct buf *error_r);

struct store_folder_info {
	char *name;  /* owned by the info; freed by store_folder_info_free */
	uint32_t id; /* stable internal id (survives renames) */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen; /* in public folders: unseen by the user given to the call, if any */
	uint32_t recent;
	uint64_t size; /* bytes of all messages */
	enum store_special_use special_use;
	int subscribed; /* the name is subscribed (see store_folder_subscribe) */
};

void store_folder_info_free(struct store_folder_info *info);
/* Frees a list from store_folder_list and sets *list to NULL. */
void store_folder_list_free(struct store_folder_info **list, size_t count);

/* Checks and normalizes a folder name (NULL -> "INBOX", "inbox" -> "INBOX", "Inbox/x" -> "INBOX/x") into out.
 * Returns 0 or IX_EINVAL with a message saying what is wrong ("folder name has an empty level ..."). */
int store_folder_name_norm(const char *name, struct buf *out, struct buf *error_r);
/* Creates a folder (parents are created as needed). IX_EEXIST if it exists, IX_EINVAL for a bad name. */
int store_folder_create(struct store *st, const char *guid, const char *name, struct buf *error_r);
/* Renames a folder; its subfolders follow. INBOX cannot be renamed. New UIDVALIDITY is not needed (ids stay). */
int store_folder_rename(struct store *st, const char *guid, const char *from, const char *to, struct buf *error_r);
/* Deletes an empty-of-subfolders folder; its messages go to deleted-item retention. INBOX cannot be deleted. */
int store_folder_delete(struct store *st, const char *guid, const char *name, struct buf *error_r);
/* Adds (subscribed) or removes name from the mailbox's subscriptions. Subscriptions are names, independent of the
 * folders that exist (RFC 3501 6.3.6): a deleted folder stays subscribed, CREATE subscribes nothing (the standard
 * folders made with a mailbox are subscribed), RENAME moves the subscriptions of the folders it renames. Removing
 * a name that is not subscribed is not an error. */
int store_folder_subscribe(struct store *st, const char *guid, const char *name, int subscribed, struct buf *error_r);
/* Appends every subscribed name of the mailbox, each NUL-terminated, in name order, whether a folder of that name
 * exists or not. */
int store_subscriptions(struct store *st, const char *guid, struct buf *names_r, struct buf *error_r);
/* Fills *info_r (caller frees with store_folder_info_free). user: see store_msg_list (may be NULL). */
int store_folder_status(struct store *st, const char *guid, const char *name, const char *user,
			struct store_folder_info *info_r, struct buf *error_r);
/* Lists every folder of a mailbox in name order. *list_r is freed with store_folder_list_free.
 * A mailbox that does not exist yet lists as IX_ENOTFOUND. */
int store_folder_list(struct store *st, const char *guid, const char *user, struct store_folder_info **list_r,
		      size_t *count_r, struct buf *error_r);

/* ---- moving a mailbox between servers (see docs/multi-server.md, "Moving a mailbox") ---- */

/* The target side of a move: makes folder `name` carry the source's UIDVALIDITY so that clients keep their
 * caches. A missing folder (and its missing parents) is created with it; an existing folder that never held a
 * message (UIDNEXT 1, e.g. a standard folder made at a login) adopts it; one that already has it is left alone.
 * A folder that has held messages under another UIDVALIDITY gives IX_EEXIST (*uidvalidity_r says which) and is
 * not changed. Then UIDNEXT and HIGHESTMODSEQ are raised to at least uidnext and highestmodseq (0: unchanged),
 * so that no UID the source handed out is ever given again. *uidvalidity_r (may be NULL): the folder's. */
int store_folder_import(struct store *st, const char *guid, const char *name, uint32_t uidvalidity, uint32_t uidnext,
			uint64_t highestmodseq, uint32_t *uidvalidity_r, struct buf *error_r);

/* The source side of a move: a frozen mailbox refuses every change (appends get IX_EAGAIN per target, "being
 * moved", which delivery turns into a retry; other writes fail with IX_EAGAIN) except its deletion, which also
 * drops the mark. note (e.g. the server it moves to) is kept with the mark; NULL unfreezes. Watchers are woken. */
int store_mailbox_freeze(struct store *st, const char *guid, const char *note, struct buf *error_r);
/* *frozen_r: 1 when the mailbox is frozen (its note appended to note_r, which may be NULL), else 0. */
int store_mailbox_frozen(struct store *st, const char *guid, int *frozen_r, struct buf *note_r, struct buf *error_r);

/* A move's outcome, kept beside the mailbox (a mark blocks no change; deleting the mailbox drops its marks):
 * MOVED on the source once the home server was switched (open sessions are then told to connect again: a freeze
 * alone is not a move, it may be undone), INCOMPLETE on the target while a copy is imported and the home is not
 * switched yet (the maintenance removes such a copy of a user homed elsewhere after the orphans' grace period). */
enum store_mark { STORE_MARK_MOVED, STORE_MARK_INCOMPLETE };
/* Sets (on) or clears a mark; watchers are woken. */
int store_mailbox_mark(struct store *st, const char *guid, enum store_mark mark, bool on, struct buf *error_r);
/* *marked_r: 1 when the mailbox carries the mark, else 0. */
int store_mailbox_marked(struct store *st, const char *guid, enum store_mark mark, int *marked_r, struct buf *error_r);

/* ---- messages ---- */

enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
	STORE_FLAG_RECENT = 1 << 5,
};
#define STORE_FLAGS_ALL 0x3fu

/* One destination of an append. Inputs first, results after. */
struct store_target {
	const char *guid;
	const char *folder;      /* NULL: INBOX */
	uint64_t quota_bytes;    /* storage limit from the directory; 0: none */
	uint64_t quota_messages; /* message-count limit; 0: none */
	uint32_t want_uid;       /* 0: the folder's UIDNEXT; else this UID (a move keeping UIDs), which must be
				       >= UIDNEXT (IX_EEXIST otherwise); UIDNEXT becomes want_uid + 1 */
	int64_t want_save_date;  /* with want_uid: the save date the message had in the source (a move; RFC 8514);
				       0: none. Without want_uid the save date is now. */
	/* results */
	int result; /* 0 or an IX_* code (IX_ELIMIT: over quota, IX_ENOTFOUND: no such folder) */
	uint32_t uid;
	uint32_t uidvalidity;
	uint64_t modseq;
};

struct store_append {
	const char *data; /* the whole message (RFC 5322), not copied beyond the call */
	size_t len;
	int64_t internal_date; /* seconds since the epoch; 0: now */
	unsigned flags;        /* STORE_FLAG_*; \Recent is always added */
	const char *keywords;  /* space-separated IMAP keywords, or NULL */
	struct store_target *targets;
	size_t ntargets;
	/* result */
	int refused; /* 1: the message itself was refused (every target failed with the same code) */
};

/* Appends one message to every target in one durable commit. The body is stored once (by SHA-256), however many
 * targets; the message is parsed once (the MIME cache). Missing mailboxes are created. Returns 0 when every target
 * succeeded; otherwise the first failing target's code (each target's result says which), and a message. A target
 * whose GUID or folder name is invalid fails alone (IX_EINVAL in its result) and the others are still appended. A
 * message that fails to parse or is too large is refused (refused = 1) and fails every target: larger than
 * max_message_size is IX_ELIMIT,
 * past the MIME parser's limits (parts, nesting, one header block: store/mime.h) is IX_EINVAL with a message that
 * names the limit ("message refused: too many MIME parts (limit 10000)"), as the message can never be stored. */
int store_append(struct store *st, struct store_append *req, struct buf *error_r);
/* Appends n messages, each exactly as store_append would (its targets, quota checks and results in reqs[i]), in
 * order, queued together so that they share one transaction and one sync (up to 512 at a time): a bulk import's
 * rate is then the CPU's, not the disk's. A message that fails (over quota, refused, a bad target) leaves no trace
 * and does not stop the others; each sees the ones before it (the quota counts them). errors_r: n buffers (or NULL)
 * that receive each message's error. Returns 0 when every message went to every target, else the code of the first
 * that did not (each request's targets say which). Returns when every stored message is durable. */
int store_append_batch(struct store *st, struct store_append *reqs, size_t n, struct buf *errors_r);

struct store_msg {
	uint32_t uid;
	unsigned flags; /* STORE_FLAG_* (in public folders \Seen is the given user's) */
	uint64_t modseq;
	uint64_t size;
	int64_t internal_date;
	char *keywords;   /* space-separated, never NULL; owned by the list / struct */
	uint8_t hash[32]; /* SHA-256 of the body */
};

void store_msg_free(struct store_msg *msg);
void store_msg_list_free(struct store_msg **list, size_t count);

/* Every message of a folder in UID order (cheap: no bodies are read); the array index + 1 is the sequence number
 * for a session that has just selected the folder. user: the reader's identifier for per-user \Seen in public
 * folders (ignored in private mailboxes; may be NULL). */
int store_msg_list(struct store *st, const char *guid, const char *folder, const char *user, struct store_msg **list_r,
		   size_t *count_r, struct buf *error_r);
/* One message's record. IX_ENOTFOUND if the UID is not in the folder. */
int store_msg_get(struct store *st, const char *guid, const char *folder, uint32_t uid, const char *user,
		  struct store_msg *msg_r, struct buf *error_r);
/* The save date of message uid (RFC 8514): when it was saved in this folder (APPEND, delivery, COPY, MOVE, a restore
 * from retention), seconds since the epoch, in *date_r. IX_ENOTFOUND when it has none: stored before the store kept
 * save dates, imported with its UID by a mailbox move, or no such message. */
int store_msg_savedate(struct store *st, const char *guid, const char *folder, uint32_t uid, int64_t *date_r,
		       struct buf *error_r);
/* Appends bytes [offset, offset+max_len) of the message to out (max_len 0: to the end). */
int store_fetch_body(struct store *st, const char *guid, const char *folder, uint32_t uid, uint64_t offset,
		     uint64_t max_len, struct buf *out, struct buf *error_r);
/* Appends the message's header block (up to and including the blank line) to out. */
int store_fetch_header(struct store *st, const char *guid, const char *folder, uint32_t uid, struct buf *out,
		       struct buf *error_r);
/* Appends the message's cache record (the serialized mime_info computed at delivery; see store/mime.h and
 * mime_info_deserialize) to out. Empty when the store was built without the MIME parser. */
int store_fetch_cache(struct store *st, const char *guid, const char *folder, uint32_t uid, struct buf *out,
		      struct buf *error_r);

struct mime_info;
/* The cache record deserialized: *info_r is freed with mime_info_destroy() (store/mime.h). IX_ECORRUPT if the record
 * does not deserialize; IX_EUNAVAIL when the store was built without the MIME parser. */
int store_fetch_mime(struct store *st, const char *guid, const char *folder, uint32_t uid, struct mime_info **info_r,
		     struct buf *error_r);

/* Appends an IMAP body section of the message to out: "" (whole), "HEADER", "TEXT", "1.2", "1.2.MIME", "3.HEADER"...
 * (see mime_section_range in store/mime.h), then [offset, offset+max_len) of it (max_len 0: to the end).
 * IX_ENOTFOUND for a section the message does not have. IX_EUNAVAIL without the MIME parser. */
int store_fetch_section(struct store *st, const char *guid, const char *folder, uint32_t uid, const char *section,
			uint64_t offset, uint64_t max_len, struct buf *out, struct buf *error_r);

enum store_flag_mode { STORE_FLAGS_REPLACE, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

struct store_flag_update {
	const uint32_t *uids;
	size_t nuids;
	enum store_flag_mode mode;
	unsigned flags;
	const char *keywords;    /* space-separated, or NULL */
	uint64_t unchangedsince; /* CONDSTORE: 0 = unconditional; otherwise messages with a greater modseq are
				       left alone and listed in failed_r */
	const char *user;        /* for per-user \Seen in public folders; may be NULL */
	/* results (arrays owned by the caller after the call; free() them) */
	uint32_t *failed_r; /* UIDs refused by unchangedsince */
	size_t nfailed_r;
	uint64_t modseq_r; /* the new modseq of changed messages (0: nothing changed) */
};

/* Changes flags of the listed UIDs (UIDs not in the folder are skipped). A message whose flags do not change keeps
 * its modseq. */
int store_flags(struct store *st, const char *guid, const char *folder, struct store_flag_update *upd,
		struct buf *error_r);

/* Copies (move=0) or moves (move=1) messages to another folder, possibly of another mailbox, without copying
 * bodies. The destination may be the source folder: the messages get new UIDs (and a move expunges the
 * originals). dst_uids_r (room for nuids, or NULL) receives the new UID of each source UID in order (0 for a UID not
 * found).
 * quota_* limit the destination mailbox (0: none). UIDPLUS: *dst_uidvalidity_r. */
int store_copy(struct store *st, const char *guid, const char *folder, const uint32_t *uids, size_t nuids,
	       const char *dst_guid, const char *dst_folder, int move, uint64_t quota_bytes, uint64_t quota_messages,
	       uint32_t *dst_uids_r, uint32_t *dst_uidvalidity_r, struct buf *error_r);

/* Expunges messages: the listed UIDs, or (uids NULL) every message flagged \Deleted. Expunged messages go to
 * deleted-item retention. *expunged_r (may be NULL) receives a malloc'd array of the UIDs removed. */
int store_expunge(struct store *st, const char *guid, const char *folder, const uint32_t *uids, size_t nuids,
		  uint32_t **expunged_r, size_t *nexpunged_r, struct buf *error_r);

/* IMAP UID EXPUNGE: as store_expunge, but only those of the listed UIDs that are flagged \Deleted. */
int store_uid_expunge(struct store *st, const char *guid, const char *folder, const uint32_t *uids, size_t nuids,
		      uint32_t **expunged_r, size_t *nexpunged_r, struct buf *error_r);

/* Clears \Recent on the messages of the folder with a UID below below_uid (0: every message): those an IMAP session
 * has claimed; a message delivered after the claim keeps it. */
int store_clear_recent(struct store *st, const char *guid, const char *folder, uint32_t below_uid, struct buf *error_r);

struct store_change {
	uint32_t uid;
	uint64_t modseq;
	int expunged; /* 1: the UID was expunged at modseq (QRESYNC VANISHED) */
};

/* Every message changed, added or expunged with a modseq > since, in modseq order. *list_r: free(). */
int store_changes(struct store *st, const char *guid, const char *folder, uint64_t since, struct store_change **list_r,
		  size_t *count_r, struct buf *error_r);

/* ---- search ---- */

/* All given criteria must hold (AND); unset fields (0 / NULL) are ignored. Text matches are case-insensitive
 * substrings (ASCII case folding), against the raw message and, with the MIME parser, also against header values
 * with RFC 2047 words decoded and text parts with their transfer encoding undone and converted to UTF-8. */
struct store_search {
	unsigned flags_set;        /* all these flags set */
	unsigned flags_unset;      /* all these flags clear */
	const char *keyword;       /* has this keyword */
	const char *no_keyword;    /* lacks this keyword */
	int64_t since;             /* internal date >= since */
	int64_t before;            /* internal date < before */
	uint64_t larger;           /* size > larger */
	uint64_t smaller;          /* size < smaller (0: no limit) */
	uint32_t uid_min, uid_max; /* uid range (0: no limit) */
	uint64_t modseq_min;       /* modseq >= (CONDSTORE MODSEQ) */
	const char *header_name;   /* with header_value: that field contains the value ("" matches presence) */
	const char *header_value;
	const char *text; /* anywhere in the header or body */
	const char *body; /* in the body (after the header block) */
};

/* UIDs of matching messages in UID order. *uids_r: free(). user: per-user \Seen in public folders. */
int store_search(struct store *st, const char *guid, const char *folder, const char *user, const struct store_search *q,
		 uint32_t **uids_r, size_t *count_r, struct buf *error_r);

/* ---- quotas ---- */

struct store_quota_use {
	uint64_t bytes; /* bytes of all messages in all folders (retention not counted) */
	uint64_t messages;
	int warned; /* 1: usage passed settings.quota_warn_percent of a limit at the last append */
};

int store_quota_get(struct store *st, const char *guid, struct store_quota_use *use_r, struct buf *error_r);
/* For the attendant: appends the GUID (32 hex digits) of every mailbox whose warning mark is set, one per line. */
int store_quota_warned(struct store *st, struct buf *out, struct buf *error_r);
/* Appends the GUID (32 hex digits) of every mailbox, the public folders' included, one per line. */
int store_mailboxes(struct store *st, struct buf *out, struct buf *error_r);

/* ---- deleted-item retention ---- */

/* Brings back every retained message of the mailbox expunged at or after since (seconds; 0: all) into the folder
 * it left (INBOX if that folder is gone), with new UIDs. *count_r: messages recovered. */
int store_recover(struct store *st, const char *guid, int64_t since, size_t *count_r, struct buf *error_r);
/* `interchange mailbox recover`: store_recover, then appends a sentence saying what was recovered to out. */
int store_report_recover(struct store *st, const char *guid, int64_t since, struct buf *out, struct buf *error_r);
/* Drops retained messages expunged before older_than (seconds since the epoch) in one mailbox (guid) or in all
 * (guid NULL). *count_r: messages purged. Bodies whose last reference goes are freed. */
int store_retention_purge(struct store *st, const char *guid, int64_t older_than, size_t *count_r, struct buf *error_r);
/* Number of retained (recoverable) messages of a mailbox. */
int store_retention_count(struct store *st, const char *guid, size_t *count_r, struct buf *error_r);

/* ---- public folders: RFC 4314 access control ---- */

enum store_right {
	STORE_RIGHT_LOOKUP = 1 << 0,  /* l */
	STORE_RIGHT_READ = 1 << 1,    /* r */
	STORE_RIGHT_SEEN = 1 << 2,    /* s */
	STORE_RIGHT_WRITE = 1 << 3,   /* w */
	STORE_RIGHT_INSERT = 1 << 4,  /* i */
	STORE_RIGHT_POST = 1 << 5,    /* p */
	STORE_RIGHT_CREATE = 1 << 6,  /* k */
	STORE_RIGHT_DELETE = 1 << 7,  /* x (delete folder) */
	STORE_RIGHT_DELMSG = 1 << 8,  /* t (delete messages) */
	STORE_RIGHT_EXPUNGE = 1 << 9, /* e */
	STORE_RIGHT_ADMIN = 1 << 10,  /* a */
};
#define STORE_RIGHTS_ALL 0x7ffu
#define STORE_ACL_ANYONE "anyone"
/* Members of the distribution list with this name administer public folders (all rights by default). */
#define STORE_PUBLIC_ADMINS "pf-admins"
/* Rights every authenticated user has on a public folder created from the directory (see docs/imap-pop3.md). */
#define STORE_PUBLIC_DEFAULT_RIGHTS "lrsp"

/* Parses an RFC 4314 rights string ("lrswipkxtea"; obsolete "c" and "d" are accepted as kx and xte).
 * Returns 0 or IX_EINVAL. */
int store_rights_parse(const char *s, unsigned *rights_r);
/* Writes the rights letters of a mask to out (appended). */
void store_rights_format(unsigned rights, struct buf *out);

/* Sets (rights != 0) or removes (rights == 0) the entry for identifier on a folder (any mailbox). */
int store_acl_set(struct store *st, const char *guid, const char *folder, const char *identifier, unsigned rights,
		  struct buf *error_r);
/* Appends the folder's ACL to out as "identifier rights" lines. */
int store_acl_list(struct store *st, const char *guid, const char *folder, struct buf *out, struct buf *error_r);
/* The rights of a user on a folder: the union of the entries of the identifiers given (the user and the lists
 * they belong to, from the directory) and of "anyone". A folder without entries inherits its parent's ACL; the
 * top of the hierarchy without entries gives no rights. */
int store_acl_rights(struct store *st, const char *guid, const char *folder, const char *const *identifiers,
		     size_t nidentifiers, unsigned *rights_r, struct buf *error_r);

/* ---- annotations (RFC 5464 METADATA) ----
 * Entries of a folder, or of the mailbox itself (folder NULL: what IMAP calls server entries), named "/private/..."
 * (one user's: private to the user given) or "/shared/..." (every user's), as given (the IMAP layer lower-cases
 * them). Values are bytes (NULs allowed). */
#define STORE_ANNOT_ENTRY_MAX 256          /* bytes of an entry name */
#define STORE_ANNOT_VALUE_MAX (64u * 1024) /* bytes of a value */
#define STORE_ANNOT_PER_FOLDER_MAX 100u    /* entries a user sees on one folder (or mailbox): shared + own private */

struct store_annot {
	const char *entry;
	const void *value; /* NULL: remove the entry */
	size_t len;
};
/* Sets and removes the n entries in one transaction: all or none. Returns 0, IX_ENOTFOUND (no such folder),
 * IX_EINVAL (an entry name not under /private/ or /shared/, or no user), IX_ELIMIT (a value above
 * STORE_ANNOT_VALUE_MAX, or more than STORE_ANNOT_PER_FOLDER_MAX entries would result) with a message. Watchers of
 * the mailbox are told. */
int store_annot_set(struct store *st, const char *guid, const char *folder, const char *user,
		    const struct store_annot *set, size_t n, struct buf *error_r);
typedef void store_annot_fn(const char *entry, const void *value, size_t len, void *arg);
/* Calls fn for the entry itself if it exists and its descendants (entry/...) down to depth levels (0: none, 1:
 * children, -1: all), in key order, the private ones of user only. Returns 0 (whether or not any exists),
 * IX_ENOTFOUND (no such folder) or IX_EINVAL. */
int store_annot_get(struct store *st, const char *guid, const char *folder, const char *user, const char *entry,
		    int depth, store_annot_fn *fn, void *arg, struct buf *error_r);

/* ---- URLAUTH mailbox access keys (RFC 4467) ----
 * One random key per folder, made when first asked for, kept with the folder (dropped with it or with the mailbox,
 * kept by a rename, not carried by a mailbox move) and never shown by the annotation calls above. */
#define STORE_URLAUTH_KEY_LEN 32
/* The folder's key in key_r. With create, a folder without one gets a new random key (a synced write). Returns 0,
 * IX_ENOTFOUND (no such folder, or no key and not create), IX_EUNAVAIL (no random numbers) or another IX_* code. */
int store_urlauth_key(struct store *st, const char *guid, const char *folder, int create,
		      uint8_t key_r[STORE_URLAUTH_KEY_LEN], struct buf *error_r);
/* Removes the key of a folder (folder NULL: of every folder of the mailbox), so that every URL authorised with it
 * stops working; the next store_urlauth_key with create makes a new one. IX_ENOTFOUND: no such folder. */
int store_urlauth_reset(struct store *st, const char *guid, const char *folder, struct buf *error_r);

/* Creates the public folder path (in STORE_PUBLIC_GUID) if it does not exist, with the default ACL: anyone
 * STORE_PUBLIC_DEFAULT_RIGHTS, STORE_PUBLIC_ADMINS every right. Returns 0 when it exists (already or now), else an
 * IX_* code (IX_EINVAL: path is not a valid folder name) and a message. */
int store_public_folder_ensure(struct store *st, const char *path, struct buf *error_r);

/* ---- change notification ---- */

/* A mailbox's Sieve scripts (docs/sieve.md), kept with the mailbox (deleted with it, copied by a move): named
 * texts, at most one active. Names: 1 to STORE_SIEVE_NAME_MAX bytes, no control characters, no '/'. The store does
 * not parse them: the caller checks a script (transport/sieve) before it puts it. */
#define STORE_SIEVE_NAME_MAX 128
#define STORE_SIEVE_SCRIPT_MAX (1024 * 1024)
/* 0 or IX_EINVAL with a message. */
int store_sieve_name_check(const char *name, struct buf *error_r);
/* Creates or replaces script name (IX_ELIMIT past STORE_SIEVE_SCRIPT_MAX). */
int store_sieve_put(struct store *st, const char *guid, const char *name, const char *text, size_t len,
		    struct buf *error_r);
/* Deletes script name: IX_ENOTFOUND, or IX_EPERM for the active script (RFC 5804 DELETESCRIPT). */
int store_sieve_delete(struct store *st, const char *guid, const char *name, struct buf *error_r);
/* Makes script name the active one (IX_ENOTFOUND when there is none so called); NULL: none active. */
int store_sieve_activate(struct store *st, const char *guid, const char *name, struct buf *error_r);
/* Renames a script (IX_ENOTFOUND, IX_EEXIST); the active one stays active. */
int store_sieve_rename(struct store *st, const char *guid, const char *from, const char *to, struct buf *error_r);
/* Appends script name's text to text_r: 0 or IX_ENOTFOUND. */
int store_sieve_get(struct store *st, const char *guid, const char *name, struct buf *text_r, struct buf *error_r);
/* Appends the names, each followed by a newline, in byte order to names_r (may be NULL), and the active one's name
 * (nothing when none) to active_r (may be NULL). */
int store_sieve_list(struct store *st, const char *guid, struct buf *names_r, struct buf *active_r,
		     struct buf *error_r);
/* Duplicate tracking for Sieve (duplicate, vacation's once per period): 1 when key[0..len) was recorded for the
 * mailbox within the last seconds, else 0 after recording it now (unless just_check); or an IX_* error. */
int store_sieve_seen(struct store *st, const char *guid, const void *key, size_t len, long long seconds, int just_check,
		     struct buf *error_r);
/* The active script: its name (name_r may be NULL) and text appended; IX_ENOTFOUND when none is active. */
int store_sieve_active(struct store *st, const char *guid, struct buf *name_r, struct buf *text_r, struct buf *error_r);

struct store_watch;

/* Watches a mailbox for commits (new messages, flag changes, expunges, folder changes, annotations) from any
 * process. Every watch of a store handle is on the handle's one inotify instance (so the kernel's limit on
 * instances does not bound the mailboxes watched): store_watch_fd is the same descriptor for all of them, readable
 * within milliseconds of a commit that touched any watched mailbox. Put it in poll/epoll once, then call
 * store_watch_drain on each watch (it reads the descriptor's events and says whether this watch's mailbox had one
 * since its last drain) and store_changes. Watches may be made, drained and destroyed from any thread. */
int store_watch_create(struct store *st, const char *guid, struct store_watch **watch_r, struct buf *error_r);
int store_watch_fd(const struct store_watch *watch);
/* Reads the descriptor's pending events; returns 1 if this watch's mailbox had any since the last drain, else 0.
 * Never blocks. */
int store_watch_drain(struct store_watch *watch);
/* Ends the watch (before its store is closed); NULL is ignored. The descriptor stays open for the other and later
 * watches until the store is closed. Never waits (closing an inotify instance would, for the kernel's RCU grace
 * period of 10-30 ms). */
void store_watch_destroy(struct store_watch **watch);

/* ---- integrity and reports ---- */

/* Verifies the whole store: folder counts and sizes, UID order and UIDNEXT, modseqs and the change log, mailbox
 * totals, body reference counts, bodies and caches without references (orphans), name index. Appends a report in
 * plain words to report. With repair, fixes what it can in one durable commit. *problems_r: problems found. */
int store_check(struct store *st, int repair, struct buf *report, unsigned *problems_r, struct buf *error_r);

/* Appends the `interchange mailbox show` report of one mailbox: folders with messages, unseen, sizes, and quota use
 * against the limits given (0: none). */
int store_report_mailbox(struct store *st, const char *guid, uint64_t quota_bytes, uint64_t quota_messages,
			 struct buf *out, struct buf *error_r);

/* ---- internal, for tests and benchmarks ---- */

struct store_stats {
	uint64_t commits;  /* synced transactions */
	uint64_t ops;      /* write operations carried by them */
	uint64_t map_size; /* current map size */
	uint64_t map_used; /* bytes of the map in use (last page) */
};
void store_get_stats(struct store *st, struct store_stats *stats_r);

#endif
