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

/* Stores one message in folder (t->to when NULL) with its received date (0: now), STORE_FLAG_* flags and
 * space-separated keywords (NULL or ""). Counted as done in the folder; a progress line every 2 s. 0 when stored
 * (*uid_r its UID, may be NULL); otherwise the error is reported with what ("message UID 5", "file x") and counted,
 * a quota refusal in words, and the code returned: the caller goes on with the next. */
int import_store(struct import_target *t, const char *folder, const char *what, const char *data, size_t len,
		 int64_t date, unsigned flags, const char *keywords, uint32_t *uid_r);
/* One message of import_store_batch: what import_store takes, then its result. */
struct import_msg {
	const char *folder, *what, *data;
	size_t len;
	int64_t date;
	unsigned flags;
	const char *keywords;
	/* results */
	int result;   /* 0: stored, else the IX_* code (reported and counted as import_store does) */
	uint32_t uid; /* its UID when stored */
};
/* Stores n messages as import_store does each (quota checked per message, in order; a refusal stops none of the
 * others), in one store transaction and one sync (store_append_batch): returns when the stored ones are durable.
 * Returns 0 when all were stored, else the first failing code; each message's result says which. */
int import_store_batch(struct import_target *t, struct import_msg *msgs, size_t n);
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
/* Seconds on the monotonic clock. */
double import_now(void);

#endif
