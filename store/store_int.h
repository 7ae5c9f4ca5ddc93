/* store_int.h - internals shared by the store's source files: on-disk records and keys, the write-operation
 * queue (group commit), LMDB error translation, name and GUID helpers. Not for use outside store/. */
#ifndef IX_STORE_INT_H
#define IX_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/store.h"

/* ---- on-disk layout (named LMDB databases). Integers in keys are big-endian so keys sort numerically;
 * integers in values are native (the environment is not portable between architectures, like LMDB's), except
 * where a value sorts (the sorted-duplicate tables msg and chg). ----
 *
 * mbox    guid(16)                              -> struct mbox_rec
 * folder  guid(16) fid(4)                       -> struct folder_rec + name bytes
 * fname   guid(16) name                         -> fid(4)
 * msg     guid(16) fid(4)                       -> struct msg_rec, one fixed-size duplicate per message, sorted by
 *                                                  the big-endian UID it starts with (MDB_DUPSORT|MDB_DUPFIXED)
 * kw      guid(16) fid(4) uid(4)                -> keyword bytes (only messages with keywords: MSG_F_KEYWORDS)
 * sdate   guid(16) fid(4) uid(4)                -> struct sdate_rec: the save date (RFC 8514), when the message
 *                                                  was saved in its folder; added to format version 2 without a
 *                                                  new version: messages stored before it, or imported with their
 *                                                  UID, have none (IMAP answers NIL); see docs/store.md, "Save
 *                                                  dates"
 * chg     guid(16) fid(4)                       -> struct chg_rec duplicates sorted by modseq, uid: the change log
 *                                                  (an entry at its modseq for each message changed since it
 *                                                  arrived, MSG_F_CHANGED; one per expunged UID. Unchanged
 *                                                  messages keep the modseq they arrived with, which grows with
 *                                                  the UID: store_changes finds them from the highest UID down)
 * bref    body id(8)                            -> struct bref_rec  (reference count, size and SHA-256; apart from
 *                                                                    the body so a count change never rewrites it)
 * bhash   sha256(32)                            -> body id(8)       (single-instance lookup)
 * body    body id(8)                            -> message bytes
 * cache   body id(8)                            -> serialized mime_info
 * retain  guid(16) seq(8)                       -> struct retain_rec + keyword bytes (deleted-item retention)
 * acl     guid(16) fid(4) identifier            -> rights(4)
 * pseen   guid(16) fid(4) uid(4) user           -> ""  (per-user \Seen in public folders)
 * annot   guid(16) fid(4) entry NUL user        -> value  (RFC 5464 annotations; fid 0: the mailbox's own, user ""
 *                                                  for a shared entry)
 * meta    "version"                             -> uint32
 * meta    "frozen" guid(16)                     -> note bytes  (a mailbox frozen for a move, store_move.c)
 * meta    "bodyid"                              -> uint64, the last body id handed out (ids are never reused)
 * meta    "nudge"                               -> uint64, rewritten by the small commit that makes space a
 *                                                  commit freed usable on a full disk (store.c, nudge)
 */

#define STORE_DB_VERSION 2u
#define STORE_BATCH_MAX 512   /* write operations carried by one transaction */
#define STORE_MAXREADERS 1024 /* concurrent read transactions across all processes */
/* Free space below which a failed write (LMDB's EIO for a short write) is taken for a full disk. */
#define STORE_DISK_FULL_BYTES (1024 * 1024)

struct mbox_rec {
	uint32_t version;
	uint32_t next_fid;
	uint32_t last_uidvalidity;
	uint32_t quota_warned;
	uint64_t bytes;
	uint64_t messages;
	uint64_t retain_seq;
	int64_t created;
};
_Static_assert(sizeof(struct mbox_rec) == 48, "mbox_rec is an on-disk record");

#define FOLDER_F_SUBSCRIBED 1u /* before the sub table: read once by store_subs_convert, never written */

struct folder_rec {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint32_t recent;
	uint32_t special_use;
	uint64_t size;
	uint32_t flags;
	uint32_t name_len; /* name bytes follow the record */
};
_Static_assert(sizeof(struct folder_rec) == 48, "folder_rec is an on-disk record");

#define MSG_F_KEYWORDS (1u << 16) /* in msg_rec.flags: the message has a kw record */
#define MSG_F_CHANGED (1u << 17)  /* in msg_rec.flags: changed since it arrived; its chg entry has its modseq */

/* A message record: a sorted duplicate under its folder's key, so its first bytes (the UID, big-endian) order it. */
struct msg_rec {
	uint8_t uid_be[4];
	uint32_t flags; /* STORE_FLAG_* | MSG_F_KEYWORDS */
	uint64_t modseq;
	uint64_t body; /* body id */
	uint64_t size;
	int64_t internal_date;
};
_Static_assert(sizeof(struct msg_rec) == 40, "msg_rec is an on-disk record");

/* A save date, with the body id of the message it was written for: a record left behind by a program that did not
 * know the table (an older version expunging) never dates another message, even one at the same key later. */
struct sdate_rec {
	int64_t saved;
	uint64_t body;
};
_Static_assert(sizeof(struct sdate_rec) == 16, "sdate_rec is an on-disk record");

/* A change-log entry: a sorted duplicate under its folder's key, ordered by modseq then UID (big-endian). */
struct chg_rec {
	uint8_t modseq_be[8];
	uint8_t uid_be[4];
	uint32_t expunged;
};
_Static_assert(sizeof(struct chg_rec) == 16, "chg_rec is an on-disk record");

struct bref_rec {
	uint64_t refs;
	uint64_t size;
	uint8_t hash[32];
};
_Static_assert(sizeof(struct bref_rec) == 48, "bref_rec is an on-disk record");

struct retain_rec {
	uint32_t fid;
	uint32_t uid;
	int64_t expunged_at;
	struct msg_rec msg; /* keyword bytes follow (msg.flags has MSG_F_KEYWORDS when there are any) */
};
_Static_assert(sizeof(struct retain_rec) == 56, "retain_rec is an on-disk record");

#define KEY_FOLDER_LEN 20
#define KEY_MSG_LEN 24 /* kw and pseen keys start with guid, fid, uid */
#define KEY_RETAIN_LEN 24
#define KEY_BODY_LEN 8

struct store {
	MDB_env *env;
	MDB_dbi db_mbox, db_folder, db_fname, db_msg, db_kw, db_chg, db_bref, db_bhash, db_body, db_cache, db_retain,
		db_acl, db_pseen, db_meta, db_sub, db_sdate, db_annot;
	char *path;
	char *notify_dir;
	struct store_settings set;
	uint64_t map_size;

	/* group commit: the queue of write operations and whether a leader is running it */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store_op *queue_head, *queue_tail;
	struct store_op *pending; /* committed batch whose meta page is not yet synced */
	int leader;
	uint64_t commits, ops;

	/* change notification (store_notify.c): the process's one inotify instance for this store (-1 until the first
	 * watch; kept to the store's end: closing one stalls) and the watches on it, each with its events noted */
	pthread_mutex_t watch_lock;
	int notify_fd;
	struct store_watch *watches;

	/* held shared by every transaction of this process, exclusively to resize the map */
	pthread_rwlock_t map_lock;

	/* the process's list of open stores (see store_open) */
	char *real_path;
	pid_t open_pid;
	unsigned open_refs;
	struct store *open_next;
};

/* A write transaction as seen by one operation. */
struct wtx {
	struct store *st;
	MDB_txn *txn;
	int map_full;                       /* set when LMDB said MDB_MAP_FULL: the batch is retried on a larger map */
	int frozen_ok;                      /* the operation may change frozen mailboxes (it checks them itself) */
	uint8_t (*touched)[STORE_GUID_LEN]; /* mailboxes changed (for notification) */
	size_t ntouched, touched_cap;
};

typedef int store_op_fn(struct wtx *w, void *ctx, struct buf *error_r);

struct store_op {
	store_op_fn *run;
	void *ctx;
	int result;
	int done;
	struct buf error;
	struct wtx w;         /* touched list of this op */
	pthread_cond_t *wake; /* its caller sleeps here: signalled when done or handed the lead */
	struct store_op *next;
};

/* Runs fn in the next group commit and returns its result after the commit is synced. fn may run more than once
 * (when the map must grow), always on a fresh transaction: it must set its outputs on every run. */
int store_write(struct store *st, store_op_fn *fn, void *ctx, struct buf *error_r);
/* Runs n operations (the caller sets run and ctx of each; the rest is set here) queued together, so that they share
 * a group commit (up to STORE_BATCH_MAX a transaction) and its sync, and returns when all are durable or failed:
 * each its own result and error (ops[i].error, freed by the caller with buf_free). One that fails leaves no trace
 * and does not disturb the others, which see the changes of those before them. */
void store_write_ops(struct store *st, struct store_op *ops, size_t n);

/* Read transactions. */
int store_rtxn_begin(struct store *st, MDB_txn **txn_r, struct buf *error_r);
/* store_guid_parse(guid) into guid_r, then store_rtxn_begin: 0 or the error of either. */
int store_rtxn_guid(struct store *st, const char *guid, uint8_t *guid_r, MDB_txn **txn_r, struct buf *error_r);
void store_rtxn_end(struct store *st, MDB_txn *txn);

/* Translates an LMDB (or errno) code into an IX code with a message "what: reason" appended to error_r. */
int store_mdb_error(int rc, const char *what, struct buf *error_r);

/* Write helpers: translate errors and note a full map in w. */
int wput(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen, struct buf *error_r);
int wdel(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, struct buf *error_r);
/* The same for one sorted duplicate (msg, chg): wput_dup adds val under key (append: val sorts after every
 * duplicate of key, which lets LMDB fill pages completely; it falls back to an ordinary insert if not); wdel_dup
 * deletes exactly that duplicate (IX_ENOTFOUND if it is not there). */
int wput_dup(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen, int append,
	     struct buf *error_r);
int wdel_dup(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen,
	     struct buf *error_r);
/* Reads a value (any txn). Returns 0, IX_ENOTFOUND (no message) or another IX code. */
int tget(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, MDB_val *val_r, struct buf *error_r);
/* Subscriptions (the sub table: key guid + folder name, independent of the folders that exist). sub_set adds
 * (on) or removes the name, which is fine either way; sub_get: 1 when subscribed, else 0. */
int sub_set(struct wtx *w, const uint8_t *guid, const char *name, int on, struct buf *error_r);
int sub_get(MDB_txn *txn, struct store *st, const uint8_t *guid, const char *name);
/* Once per store made before the sub table: the folders flagged FOLDER_F_SUBSCRIBED become its entries. */
int store_subs_convert(MDB_txn *txn, struct store *st, struct buf *error_r);
void wtx_touch(struct wtx *w, const uint8_t *guid);

/* Keys and integers. */
void put_be32(uint8_t *p, uint32_t v);
void put_be64(uint8_t *p, uint64_t v);
uint32_t get_be32(const uint8_t *p);
uint64_t get_be64(const uint8_t *p);
void key_folder(uint8_t *k, const uint8_t *guid, uint32_t fid);
void key_msg(uint8_t *k, const uint8_t *guid, uint32_t fid, uint32_t uid);
void key_body(uint8_t *k, uint64_t id);
uint32_t msg_uid(const struct msg_rec *m);
void chg_make(struct chg_rec *c, uint64_t modseq, uint32_t uid, int expunged);

/* Parses a GUID string (32 hex digits, dashes allowed). Returns 0 or IX_EINVAL with a message. */
int store_guid_parse(const char *s, uint8_t *guid_r, struct buf *error_r);
void store_guid_format(const uint8_t *guid, char *out /* STORE_GUID_HEX_LEN + 1 */);
int store_guid_is_public(const uint8_t *guid);

/* Folder lookups inside a transaction. */
int folder_lookup(MDB_txn *txn, struct store *st, const uint8_t *guid, const char *name, uint32_t *fid_r,
		  struct buf *error_r);
/* Reads a folder record into *rec_r (name not included). */
int folder_get(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, struct folder_rec *rec_r,
	       struct buf *error_r);
/* The stored name of a folder (a new string) or NULL. */
char *folder_name_get(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid);
/* Writes a folder record, keeping the stored name. */
int folder_put(struct wtx *w, const uint8_t *guid, uint32_t fid, const struct folder_rec *rec, const char *name,
	       struct buf *error_r);
int mbox_get(MDB_txn *txn, struct store *st, const uint8_t *guid, struct mbox_rec *rec_r, struct buf *error_r);
int mbox_put(struct wtx *w, const uint8_t *guid, const struct mbox_rec *rec, struct buf *error_r);
/* Creates the mailbox with its standard folders if missing. */
int mbox_ensure(struct wtx *w, const uint8_t *guid, struct buf *error_r);
/* Single-instance bodies, named by a body id (never reused) and found by SHA-256 through bhash. body_find: the id
 * of the body with this hash (IX_ENOTFOUND if none). body_ref takes delta more references to a stored body;
 * body_unref drops delta and frees body, cache and hash entry with the last. (New bodies: store_msg.c's append.) */
int body_find(MDB_txn *txn, struct store *st, const uint8_t *hash, uint64_t *id_r, struct buf *error_r);
int body_ref(struct wtx *w, uint64_t id, uint64_t delta, struct buf *error_r);
int body_unref(struct wtx *w, uint64_t id, uint64_t delta, struct buf *error_r);

/* Message records. msg_get: the record of uid in a folder (IX_ENOTFOUND if none). msg_iter_*: every record of a
 * folder in UID order (msg_iter_next returns 1 with *rec_r, 0 at the end, or an IX code). */
int msg_get(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, uint32_t uid, struct msg_rec *rec_r,
	    struct buf *error_r);
struct msg_iter {
	MDB_cursor *cur;
	uint8_t key[KEY_FOLDER_LEN];
	int started;
};
int msg_iter_begin(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, struct msg_iter *it,
		   struct buf *error_r);
int msg_iter_next(struct msg_iter *it, struct msg_rec *rec_r);
void msg_iter_end(struct msg_iter *it);

/* Expunges every message of a folder into retention (folder deletion). Updates the mailbox record. */
int msg_expunge_folder(struct wtx *w, const uint8_t *guid, uint32_t fid, struct buf *error_r);
/* Drops every retained item of a mailbox with its body references. */
int retention_drop(struct wtx *w, const uint8_t *guid, struct buf *error_r);
/* Messages of a public folder not seen by user. */
uint32_t msg_public_unseen(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, const char *user);

/* The message cache builder: MIME parse + serialize (empty blob without the MIME parser). */
int store_cache_build(const char *data, size_t len, struct buf *blob, struct buf *error_r);

/* Substring test under i;unicode-casemap (common/unicasemap.h: Unicode case and compatibility forms, bytes for
 * text that is not UTF-8); an empty needle matches. */
int store_ci_contains(const char *hay, size_t hlen, const char *needle);
/* The text criteria of q (header_name/value, text, body) against one message using its MIME cache: 1 all match,
 * 0 not, -1 cannot tell (no parser, no or bad cache): the caller then matches the raw bytes only. */
int store_cache_match(const char *msg, size_t len, const void *cache, size_t cache_len, const struct store_search *q);

/* 1 when the mailbox is frozen for a move (its note appended to note_r, may be NULL), 0 when not, or an IX code. */
int mbox_frozen(MDB_txn *txn, struct store *st, const uint8_t *guid, struct buf *note_r, struct buf *error_r);
/* Drops a mailbox's frozen mark, if any. */
int mbox_unfreeze(struct wtx *w, const uint8_t *guid, struct buf *error_r);
/* Drops its frozen mark and its move marks (store_mailbox_mark), if any: the mailbox is being deleted. */
int mbox_marks_drop(struct wtx *w, const uint8_t *guid, struct buf *error_r);
/* Deletes every Sieve script of the mailbox and its active mark (store_sieve.c). */
int mbox_sieve_drop(struct wtx *w, const uint8_t *guid, struct buf *error_r);
/* IX_EAGAIN with a message if one of the mailboxes the operation touched is frozen (unless w->frozen_ok), else 0. */
int wtx_frozen_check(struct wtx *w, struct buf *error_r);

/* Called after a durable commit for each touched mailbox. */
void store_notify_touch(struct store *st, const uint8_t *guid);
/* Closes the store's inotify instance (store_notify.c), at the store's end. */
void store_notify_close(struct store *st);

#endif
