/* import.h - what the importers of `interchange import` share (imap in cmd_import.c, maildir and mbox in
 * import_files.c): the mailbox they fill, the store call with its quota, the progress lines and the summary. */
#ifndef IX_IMPORT_H
#define IX_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"
#include "store/store.h"

struct import_target {
	const char *login;
	struct store *st;
	char *guid;
	unsigned long long quota_bytes, quota_messages;
	char *dir; /* DATA/import, where importers keep their state */
	char *lock_path;
	int lock;
	double t0;
	/* totals */
	size_t folders, copied, changed, removed, failed, quota_refused;
	uint64_t bytes;
	/* the folder being filled (import_folder_begin) */
	char *from, *to;
	size_t known, todo, done, errors, changed_before, removed_before;
	uint64_t todo_bytes, done_bytes;
	double folder_t0, last_print;
	unsigned batches, kill_after; /* import_store_batch: committed so far; the test hook (0: none) */
};

/* Opens the mailbox of login for an import: its GUID and quotas from the directory, DATA/import made, the lock on
 * DATA/import/GUID.running taken (MAINT_IMPORT_LOCK: the quota warning waits until it goes; IX_EAGAIN when another
 * import into the mailbox holds it), the store open and the mailbox with its standard folders. 0 or an IX_* code
 * with error_r. import_target_close frees t whatever the result. */
int import_target_open(const struct config *cfg, const char *login, struct import_target *t, struct buf *error_r);
/* Prints the summary ("Imported LOGIN: ..." or, finished false, "Stopped importing LOGIN: ..."), then what the quota
 * says (messages that did not fit; past the warning level), lets go of the lock, closes the store, frees t. */
void import_target_close(struct import_target *t, bool finished);

/* A folder begins: from (where it comes from) -> to (the folder here); counters of the folder reset. */
void import_folder_begin(struct import_target *t, const char *from, const char *to);
/* What is to be done in it: known messages copied before, todo new ones of todo_bytes. */
void import_folder_todo(struct import_target *t, size_t known, size_t todo, uint64_t todo_bytes);
/* The folder's line ("nothing new", or messages and bytes, flag changes, removals, rate, time); folders counted. */
void import_folder_end(struct import_target *t);

/* One message of import_store_batch: the folder (t->to when NULL), what to call it in an error ("message UID 5",
 * "file x"), the message, its received date (0: now), STORE_FLAG_* flags and space-separated keywords (NULL or ""),
 * then its result. */
struct import_msg {
	const char *folder, *what, *data;
	size_t len;
	int64_t date;
	unsigned flags;
	const char *keywords;
	/* results */
	int result;   /* 0: stored, else the IX_* code */
	uint32_t uid; /* its UID when stored */
};
/* Stores n messages in one store transaction and one sync (store_append_batch): returns when the stored ones are
 * durable. The user's quota is checked per message, in order; a refusal stops none of the others. Each is counted as
 * done in the folder (a progress line every 2 s); one not stored is reported with its what and counted, a quota
 * refusal in words. Returns 0 when all were stored, else the first failing code; each message's result says which.
 * Tests only: with INTERCHANGE_TEST_IMPORT_KILL_AFTER=N in the environment the process kills itself (SIGKILL)
 * right after the Nth batch committed, before its caller records it, where a crash is hardest to recover from. */
int import_store_batch(struct import_target *t, struct import_msg *msgs, size_t n);

/* The journal of a batch (the importer's record of what it copied is written after the store's commit): before the
 * transaction the importer notes, synced, the folder's UIDNEXT (import_uidnext) and each message's SHA-256
 * (import_sha256_hex); a run after a stop between the commit and the record finds the batch in the store with
 * import_find_stored. */
/* The folder's UIDNEXT here: a batch stored next takes UIDs from it on. 1 when the folder cannot be read. */
uint32_t import_uidnext(struct import_target *t, const char *folder);
/* The SHA-256 of a message as the store keeps it (store_msg.hash), appended to out in 64 hex digits. */
void import_sha256_hex(const char *data, size_t len, struct buf *out);
/* The 64 hex digits at hex (as import_sha256_hex wrote them) into hash. */
void import_sha256_parse(const char *hex, uint8_t hash[32]);
/* For each of the n hashes, a message of folder from UID uidnext on with that SHA-256, its UID neither in claimed
 * (nclaimed UIDs, sorted; may be NULL when 0) nor found for another hash (the same message twice is found twice);
 * its UID into uid_r[k], 0 when there is none. Returns how many were found (a warning and 0 when the folder cannot be
 * listed). */
size_t import_find_stored(struct import_target *t, const char *folder, uint32_t uidnext, const uint8_t (*hashes)[32],
			  size_t n, const uint32_t *claimed, size_t nclaimed, uint32_t *uid_r);
/* Reports an error about one message (what) of the current folder and counts it; the first 20 of a folder are
 * printed. */
void import_error(struct import_target *t, const char *what, const char *why);

/* The options of one import imap (cmd_import.c). */
struct import_opts {
	const char *login, *from, *user, *admin, *ca_file;
	bool token; /* the secret is a bearer token, not a password */
	const char **maps;
	size_t nmaps;
	const char **excludes;
	size_t nexcludes;
	int64_t since; /* 0: everything */
};

/* One user's import imap with o and the secret (password or token); prints as it goes. Returns the exit status
 * (CLI_EXIT_OK, or CLI_EXIT_FAIL when it stopped or a message failed). */
int import_imap_one(const struct config *cfg, const struct import_opts *o, const char *secret);
/* import imap --all CSV: rows of login, remote_user (default: the login) and password (none with o->admin, whose
 * secret is given), run jobs at a time, each in a process of its own writing DATA/import/LOGIN.log. */
int import_imap_all(const struct config *cfg, const struct import_opts *o, const char *secret, const char *csv,
		    unsigned jobs);
/* interchange import csv FILE: users (login, given, surname, password or password_hash, aliases, lists). */
int import_csv(const char *data_dir, int argc, char **argv);

/* interchange import maildir|mbox (argv[1] says which), and its help. */
int import_files(const char *data_dir, int argc, char **argv);
extern const char import_files_help[];

/* The role a folder name usually has on other servers ("Sent Items": STORE_USE_SENT), or STORE_USE_NONE. */
enum store_special_use import_use_by_name(const char *name);
/* "6318 bytes", "15.4 KB", "2.9 MB" appended to out. */
void import_human_bytes(struct buf *out, uint64_t n);
/* Splits line at its tabs (each becomes a NUL) into at most max fields; the last holds the rest. Returns how many. */
size_t import_split_tabs(char *line, char **fields, size_t max);
/* Seconds on the monotonic clock. */
double import_now(void);

#endif
