/* imap_session_int.h - the IMAP session's private structures and the calls the files of an IMAP session share
 * (imap_session.c, imap_output.c, imap_watch.c, imap_view.c, imap_mailbox.c, imap_folders.c, imap_list.c,
 * imap_quota_acl.c, imap_cmd.c, imap_import.c). Not a public interface. */
#ifndef IX_IMAP_SESSION_INT_H
#define IX_IMAP_SESSION_INT_H

#include "transport/imap/imap_session.h"
#include "common/spool.h"
#include "transport/net/conn.h"
#include "transport/imap/imap_parse.h"
#include "transport/imap/imap_search.h"
#include "transport/imap/imap_sort.h"
#include "transport/imap/imap_session_compress.h"
#include "transport/login/proxy.h"
#include "transport/net/sasl.h"
#include "store/store.h"

enum imap_state {
	IMAP_ST_NOTAUTH = 1u << 0,
	IMAP_ST_AUTH = 1u << 1,
	IMAP_ST_SELECTED = 1u << 2,
	IMAP_ST_LOGOUT = 1u << 3,
};

/* What the session is doing with its input. */
enum imap_mode {
	IMAP_MODE_COMMAND, /* parsing commands */
	IMAP_MODE_SASL,    /* AUTHENTICATE: lines are responses */
	IMAP_MODE_IDLE,    /* IDLE: waiting for DONE */
	IMAP_MODE_BUSY,    /* a job on the worker pool or a long FETCH is under way: input paused */
};

/* One message of the selected folder as this session knows it. */
#define MSG_GONE (1u << 30) /* in imap_msg.flags: expunged in the store, not yet reported to the client */
struct imap_msg {
	uint32_t uid;
	unsigned flags; /* STORE_FLAG_* as last reported (STORE_FLAG_RECENT: recent for this session) */
	uint64_t modseq;
};

/* One watched mailbox: shared by every session that has a folder of it selected. */
struct imap_watch {
	struct imap_watch *next;
	struct imap_server *srv;
	char guid[STORE_GUID_HEX_LEN + 1];
	struct store_watch *w; /* NULL: notification unavailable, sessions poll */
	unsigned refs;
};

struct imap_server {
	struct login_server ls;    /* first: the login core's part (config, sessions, throttle) */
	uint64_t max_message_size; /* APPEND limit */
	struct imap_watch *watches;
	int notify_fd;                     /* the store's notification descriptor in the loop while there are watches */
	struct imap_server *watching_next; /* the process's servers with watches (imap_watch.c) */
	struct imap_recent *recent;        /* the \Recent claims (imap_view.c) */
};

/* A FETCH answered over several loop rounds (output back-pressure). */
struct imap_fetch_job;

/* What SORT knows of one message (imap_sort_cmd.c). */
struct imap_sort_keys;

#define IMAP_UPDATES_MAX 8 /* update contexts per session (RFC 5267); one more is refused with NOUPDATE */

/* An update context (RFC 5267 RETURN (UPDATE)): a SEARCH or SORT result the session keeps up to date for the client
 * with ESEARCH ADDTO and REMOVEFROM until CANCELUPDATE or the mailbox is closed. */
struct imap_update {
	char *tag;
	bool uid;                    /* the command was UID SEARCH/SORT: the client is told UIDs */
	struct imap_search_query *q; /* the criteria, owned */
	struct imap_sort_key keys[IMAP_SORT_MAX_KEYS];
	size_t nkeys;              /* SORT: the sort program; 0: a SEARCH */
	uint32_t *uids;            /* the result: ascending UIDs (SEARCH) or in sort order (SORT) */
	struct imap_sort_keys **k; /* SORT: each member's keys, parallel to uids */
	size_t n, cap;
	uint64_t modseq;   /* the view's messages changed at or below were evaluated */
	uint32_t last_uid; /* and the messages up to this UID */
};

struct imap_owner {
	char guid[STORE_GUID_HEX_LEN + 8];
	char *login;
};

struct imap_session {
	struct login_session ls; /* first: the login core's part (connection, login, user, proxy) */
	struct imap_server *srv;
	struct imap_parser *parser;
	enum imap_state state;
	enum imap_mode mode;
	bool in_worker;      /* a command handler runs on a worker thread: output stays in out, the view is its */
	bool dirty_pending;  /* the watch fired while in_worker (set and read on the loop's thread only) */
	bool moved_pending;  /* the mailbox was frozen for a move while in_worker: say BYE when back */
	bool notify_pending; /* the NOTIFY watch fired while in_worker or busy */
	unsigned bad_count;
	struct buf out;   /* response being built */
	char *tag;        /* tag of the command in progress (SASL, IDLE, jobs) */
	struct spool lit; /* a literal past SPOOL_MEMORY_MAX (an APPEND's message), sunk by the parser: a file */

	/* authenticated (the user: ls.user) */
	char **ids; /* ACL identifiers: login, lists; NULL until needed */
	size_t nids;
	bool condstore, qresync, utf8;
	/* ENABLE IMAP4rev2 (RFC 9051): no \Recent (no RECENT response, none claimed, no RECENT/NEW/OLD search keys, no
	 * RECENT status item), SEARCH answered by ESEARCH, SELECT without UNSEEN and with the mailbox's LIST, CLOSED
	 * whenever a selected mailbox closes implicitly, HASCHILDREN; utf8 is set with it (mailbox names and headers
	 * in UTF-8, as rev2 specifies) */
	bool rev2;
	bool import;                /* logged in by X-IX-IMPORT LOGIN (imap_import.c): a mailbox move */
	struct imap_notify *notify; /* NOTIFY SET (imap_notify_cmd.c); NULL: none */
	/* other users' mailboxes met by name (resolved or listed): GUID and owner's login, for the rights that full
	 * access gives (imap_rights_on) */
	struct imap_owner *owners;
	size_t nowners;
	/* the last other user's mailbox resolved (for its owner's quota) */
	char other_guid[STORE_GUID_HEX_LEN + 8];
	uint64_t other_quota_bytes, other_quota_messages;

	/* selected */
	char *sel_guid;
	char *sel_folder; /* store name (UTF-8) */
	uint32_t sel_fid; /* the store's id of the folder (stable across renames) */
	bool readonly;
	unsigned rights;
	bool sel_full_access; /* another user's mailbox, its rights from full access (checked again before each command) */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct imap_msg *msgs;
	size_t count, cap;
	char **kws; /* the keywords announced in FLAGS (every one the view has carried) */
	size_t nkws;
	uint32_t *saved; /* SEARCHRES $ (UIDs, ascending) */
	size_t nsaved;
	struct imap_watch *watch;
	bool dirty; /* the watch fired since the last sync */

	struct imap_fetch_job *fetch;
	struct evloop_timer timer;
	struct imap_update *updates; /* RFC 5267 update contexts of the selected mailbox */
	size_t nupdates;

	/* COMPRESS=DEFLATE (NULL when off) */
	struct imap_z *z;
	struct buf zin;   /* inflated input not parsed yet (at most IMAP_Z_INPUT_MAX) */
	struct buf zline; /* one SASL/IDLE line taken out of zin */
	bool zerror;
};

/* ---- imap_output.c: responses and flags ---- */
void imap_reply(struct imap_session *s, const char *fmt, ...) IX_PRINTF(2, 3);
/* Tagged completion: tag + " " + text; brings a dirty view up to date first, then sends what s->out holds. */
void imap_tagged(struct imap_session *s, const char *tag, const char *fmt, ...) IX_PRINTF(3, 4);
/* Sends s->out (compressed under COMPRESS); keeps it while a handler runs on a worker. */
void imap_flush_out(struct imap_session *s);
/* A tagged response after which expunges may not be reported (FETCH, STORE, SEARCH by sequence numbers). */
void imap_tagged_noexpunge(struct imap_session *s, const char *tag, const char *text);
/* Tagged NO with the response code of a store error (NONEXISTENT, ALREADYEXISTS, OVERQUOTA, NOPERM, CANNOT,
 * SERVERBUG) and err's text (or the error's name). */
void imap_store_error_reply(struct imap_session *s, const char *tag, int ret, const struct buf *err);
/* Converts between IMAP flag bits (imap_parse.h) and store flag bits. */
unsigned imap_flags_to_store(unsigned imap);
unsigned imap_flags_from_store(unsigned st);
/* Appends "(\Seen $Junk)" for store flags + a space-separated keyword string. */
void imap_write_store_flags(struct buf *out, unsigned flags, const char *keywords);

/* ---- imap_watch.c: change notification ---- */
/* The session's own mailbox moved to another server: BYE [UNAVAILABLE], closed after the flush. */
void imap_say_moved(struct imap_session *s);
/* The server's watch of mailbox guid, made on first use (its w NULL when notification is unavailable: poll);
 * counted: give it back with imap_watch_release (sets *wp NULL; the last release removes it). */
struct imap_watch *imap_watch_acquire(struct imap_server *srv, const char *guid);
void imap_watch_release(struct imap_server *srv, struct imap_watch **wp);

/* ---- imap_view.c: the selected view ---- */
/* Brings the selected view up to date and writes the untagged EXISTS/RECENT/FETCH (and, when allowed,
 * EXPUNGE/VANISHED) responses to s->out. */
void imap_sync(struct imap_session *s, bool allow_expunge, bool force);
/* Index of uid in the selected view, or -1. */
long imap_find_uid(const struct imap_session *s, uint32_t uid);
/* \Recent (RFC 3501 2.3.2: the session first notified of a message): claims for the session the messages of the
 * view from index first on that carry the store's \Recent and that no session of this server claimed before (a
 * read-only or IMAP4rev2 session claims nothing and sees none), takes \Recent off the others in the view, and clears
 * the store's below the view's last UID (on the pool; the server's marks answer for it meanwhile). Returns the count
 * claimed. */
size_t imap_claim_recent(struct imap_session *s, size_t first);
/* The RECENT count of a folder for STATUS: info's, less the messages a session has claimed whose clearing in the
 * store is still under way. */
uint32_t imap_recent_status(struct imap_session *s, const char *guid, const char *folder,
			    const struct store_folder_info *info);
/* The server's claims (shared with the clearing jobs): made with one reference, freed by the last release. */
struct imap_recent *imap_recent_create(void);
void imap_recent_release(struct imap_recent **rp);
/* Writes "* n FETCH (FLAGS ..)" for the view's message idx with m's flags (UID under QRESYNC, MODSEQ under
 * CONDSTORE). */
void imap_write_fetch_flags(struct imap_session *s, size_t idx, const struct store_msg *m);
/* Adds the keywords of a space-separated list (NULL: none) that the session has not announced yet; returns
 * whether there was one. */
bool imap_keywords_add(struct imap_session *s, const char *keywords);
/* Writes "* FLAGS (..)" and "* OK [PERMANENTFLAGS (..)]" with the system flags and the announced keywords. */
void imap_write_flags_responses(struct imap_session *s);
/* Announces (the two responses above) the keywords of a list the client has not been told of: called before any
 * response that carries a message's keywords (RFC 3501 7.2.6: a FETCH's flags are among the FLAGS sent). */
void imap_announce_keywords(struct imap_session *s, const char *keywords);
/* Leaves the selected state (no-op otherwise): the view, its watch and the saved result are freed. */
void imap_deselect(struct imap_session *s);

/* ---- imap_mailbox.c: names, namespaces, rights ---- */
/* Resolves a client mailbox name (modified UTF-7) to a store mailbox and folder and this user's rights on it.
 * Returns 0, IX_EINVAL (bad name; message in error_r) or IX_ENOTFOUND. *guid_r and *folder_r: free(). */
int imap_resolve_mailbox(struct imap_session *s, const char *name, size_t len, bool create_public, char **guid_r,
			 char **folder_r, unsigned *rights_r, struct buf *error_r);
/* ---- imap_catenate.c: CATENATE (RFC 4469) and the content of IMAP URLs ---- */
struct imap_url;
/* Appends the message or part an IMAP URL names (a relative one: of the selected mailbox) to out, when it is on this
 * server (its host this server's host name), of this user if it names one, in a folder this user may read (r) with
 * the UIDVALIDITY it gives. URLAUTH is not looked at (see imap_urlauth_check). Returns 0, or IX_EPERM (another
 * server or user), IX_ENOTFOUND (no such mailbox, message or section, a UIDVALIDITY that changed), IX_EINVAL (a
 * section the store does not serve, a relative URL with nothing selected), with the reason in error_r. */
int imap_url_content(struct imap_session *s, const struct imap_url *u, struct buf *out, struct buf *error_r);
/* Builds the message of an APPEND's "CATENATE (TEXT literal / URL url ...)" list into out: the parts in order.
 * Returns 0, or answers the command (BAD, NO [BADURL url], NO [TOOBIG] past the message size limit) and returns
 * an IX_* code. */
int imap_catenate(struct imap_session *s, const struct imap_command *cmd, const struct imap_arg *list, struct buf *out);

/* imap_resolve_mailbox for a name in UTF-8 whatever the session enabled (an IMAP URL's mailbox, RFC 5092). */
int imap_resolve_mailbox_utf8(struct imap_session *s, const char *name, char **guid_r, char **folder_r,
			      unsigned *rights_r, struct buf *error_r);
/* This user's rights (STORE_RIGHT_*) on a folder: all on the own mailbox, else from its ACL. */
unsigned imap_rights_on(struct imap_session *s, const char *guid, const char *folder);
/* Notes that the mailbox guid is login's (an other user's mailbox met by name), so that imap_rights_on can tell full
 * access; its owner, or NULL when not noted. imap_forget_owners frees the notes. */
void imap_note_owner(struct imap_session *s, const char *guid, const char *login);
const char *imap_owner_of(const struct imap_session *s, const char *guid);
void imap_forget_owners(struct imap_session *s);
/* Whether the mailbox guid is the user's own or one they have full access to (a noted owner's): every right on every
 * folder of it, the top level included. */
bool imap_mailbox_is_ours(struct imap_session *s, const char *guid);
/* Creates the store side of the directory's public folders that do not have one yet, with the default ACL. */
void imap_public_sync(struct imap_session *s);
/* Writes a UTF-8 folder name as the client sees it (modified UTF-7 unless UTF8=ACCEPT or IMAP4rev2, quoted). */
void imap_write_mailbox(struct imap_session *s, struct buf *out, const char *utf8);
/* Argument i as a mailbox name, or NULL (missing or not a string). */
const char *imap_arg_mailbox(const struct imap_command *cmd, size_t i, size_t *len_r);
/* The quota limits of a mailbox resolved by imap_resolve_mailbox: the user's own, another user's (its owner's), or
 * none (public folders). */
void imap_mailbox_quota(const struct imap_session *s, const char *guid, uint64_t *bytes_r, uint64_t *messages_r);
/* Session-level store_msg_list user argument (per-user \Seen in public folders). */
const char *imap_user_id(const struct imap_session *s);

/* ---- imap_session.c: jobs and input ---- */
/* Continues command processing after a job or a long command finished. */
void imap_resume(struct imap_session *s);
/* Pauses input until the output drains below half the soft limit (then a pending FETCH continues). */
void imap_wait_output(struct imap_session *s);
/* Hands blocking work to the pool: input pauses until done runs (which must call imap_job_finished first). */
void imap_start_job(struct imap_session *s, workpool_fn *run, workpool_fn *done, void *arg);
/* Called first by a job's done function: returns false when the session died meanwhile (it is then freed, and
 * the job must only free its own memory). */
bool imap_job_finished(struct imap_session *s);

/* ---- the command handlers the table in imap_session.c names ---- */
/* imap_folders.c */
void imap_cmd_select(struct imap_session *s, const struct imap_command *cmd); /* and EXAMINE */
void imap_cmd_create(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_delete(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_rename(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_subscribe(struct imap_session *s, const struct imap_command *cmd); /* and UNSUBSCRIBE */
void imap_cmd_close(struct imap_session *s, const struct imap_command *cmd);     /* and UNSELECT */
void imap_cmd_check(struct imap_session *s, const struct imap_command *cmd);
/* imap_list.c */
void imap_cmd_list(struct imap_session *s, const struct imap_command *cmd); /* and LSUB */
void imap_cmd_namespace(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_status(struct imap_session *s, const struct imap_command *cmd);
/* Whether a folder of a mailbox has subfolders; *use_r (if not NULL): its special use (STORE_USE_NONE if unknown). */
bool imap_folder_children(struct imap_session *s, const char *guid, const char *folder, enum store_special_use *use_r);
/* Writes "* LIST (attributes) "/" name" for one mailbox that exists: its special use and whether it has children
 * (IMAP4rev2 SELECT/EXAMINE, RFC 9051 6.3.2). name: the client's name in UTF-8; guid and folder: the store's. */
void imap_write_list_self(struct imap_session *s, const char *name, const char *guid, const char *folder);
/* imap_quota_acl.c */
void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_getquota(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_setquota(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_acl(struct imap_session *s,
		  const struct imap_command *cmd); /* GETACL SETACL DELETEACL MYRIGHTS LISTRIGHTS */
/* imap_notify_cmd.c (RFC 5465) */
void imap_cmd_notify(struct imap_session *s, const struct imap_command *cmd);
/* The user's own mailbox changed: writes the notifications its NOTIFY SET asks for (and, with a SELECTED group, the
 * selected mailbox's updates) to s->out. Nothing without NOTIFY. Called on the loop's thread, not in a command. */
void imap_notify_changed(struct imap_session *s);
/* Whether w is the watch of the session's NOTIFY. */
bool imap_notify_watches(const struct imap_session *s, const struct imap_watch *w);
/* Ends NOTIFY (NOTIFY NONE, UNAUTHENTICATE, logout); nothing without it. */
void imap_notify_end(struct imap_session *s);
/* imap_metadata_cmd.c (RFC 5464) */
void imap_cmd_getmetadata(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_setmetadata(struct imap_session *s, const struct imap_command *cmd);

/* ---- imap_urlauth_cmd.c: URLAUTH (RFC 4467) ---- */
void imap_cmd_genurlauth(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_resetkey(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_urlfetch(struct imap_session *s, const struct imap_command *cmd);
/* ---- imap_cmd.c: selected-state commands, APPEND and REPLACE ---- */
void imap_cmd_fetch(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_store(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_search(struct imap_session *s, const struct imap_command *cmd);
/* The refusal of the \Recent search keys after ENABLE IMAP4rev2 (SEARCH, SORT, THREAD). */
#define IMAP_REV2_NO_RECENT_KEYS "RECENT, NEW and OLD are not IMAP4rev2 search keys"

struct imap_search_query;
/* Evaluates q over the selected view: returns the number of matches with *seqs_r and *uids_r (ascending, freed by
 * the caller) and *maxmod_r the highest MODSEQ among them. For SEARCH, SORT and THREAD. */
size_t imap_search_run(struct imap_session *s, const struct imap_search_query *q, uint32_t **seqs_r, uint32_t **uids_r,
		       uint64_t *maxmod_r);
/* Appends "* ESEARCH (TAG ..) [UID]" with MIN, MAX, COUNT, ALL and PARTIAL as r asks, of numbers[0..n) in their
 * order (MIN the first, MAX the last, PARTIAL by position); no line end. For SEARCH and SORT (RFC 4731, 5267). */
void imap_write_esearch(struct buf *out, const struct imap_command *cmd, const struct imap_return_opts *r,
			const uint32_t *numbers, size_t n);
/* Whether the view's message at index i matches q (for the update contexts). */
bool imap_search_matches(struct imap_session *s, const struct imap_search_query *q, size_t i);
void imap_cmd_sort(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_thread(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_copy(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_expunge(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_append(struct imap_session *s, const struct imap_command *cmd);
/* REPLACE and UID REPLACE (RFC 8508): APPEND of the new message, then the expunge of the old one. */
void imap_cmd_replace(struct imap_session *s, const struct imap_command *cmd);
/* ---- imap_sort_cmd.c: sort keys, for the SORT update contexts ---- */
/* The keys of message uid of the selected view, from the store; destroy them with imap_sort_keys_destroy. */
struct imap_sort_keys *imap_sort_keys_new(struct imap_session *s, uint32_t uid);
void imap_sort_keys_destroy(struct imap_sort_keys **k);
/* Puts the messages uids[0..n) with their keys k[0..n) (both arrays reordered together) in the order of the sort
 * program keys[0..nkeys), ties by UID (mailbox order). */
void imap_sort_order(struct imap_sort_keys **k, uint32_t *uids, size_t n, const struct imap_sort_key *keys,
		     size_t nkeys);

/* ---- imap_context.c: update contexts (RFC 5267 CONTEXT=SEARCH, CONTEXT=SORT) ---- */
/* Whether an update context has the tag. */
bool imap_update_exists(const struct imap_session *s, const char *tag);
/* Why a SEARCH or SORT with these RETURN options (enum imap_search_return bits) is refused (BAD text), or NULL:
 * UPDATE with MIN, MAX, PARTIAL or SAVE, or under a tag that names a context already. */
const char *imap_update_refusal(const struct imap_session *s, const struct imap_command *cmd, unsigned opts);
/* Starts an update context for the command just answered: q (taken), the sort program (nkeys 0 for SEARCH) and the
 * result: uids[0..n) ascending (SEARCH) or in sort order with their keys k (SORT, the array and the keys taken).
 * With IMAP_UPDATES_MAX contexts already it frees what it took and writes "* NO [NOUPDATE "tag"]". */
void imap_update_start(struct imap_session *s, const struct imap_command *cmd, struct imap_search_query *q,
		       const struct imap_sort_key *keys, size_t nkeys, const uint32_t *uids, struct imap_sort_keys **k,
		       size_t n);
/* Says REMOVEFROM for the members of every context that the view marked MSG_GONE: called before their EXPUNGE or
 * VANISHED, with the sequence numbers still in place. */
void imap_updates_expunging(struct imap_session *s);
/* Evaluates the view's messages that are new or changed since each context last looked, and says ADDTO and
 * REMOVEFROM for what entered or left its result (after the EXISTS and FETCH responses that told of them). */
void imap_updates_refresh(struct imap_session *s);
/* CANCELUPDATE (RFC 5267 4.2). */
void imap_cmd_cancelupdate(struct imap_session *s, const struct imap_command *cmd);
/* Drops every context (the mailbox is closed). */
void imap_updates_free(struct imap_session *s);

/* ---- imap_objects.c: OBJECTID and PREVIEW of a message of the selected folder ---- */
/* Appends the THREADID (RFC 8474) of message uid, hash its body hash (imap_objectid.h says how it is made). */
void imap_message_threadid(struct imap_session *s, uint32_t uid, const uint8_t hash[32], struct buf *out);
/* Appends the PREVIEW text (RFC 8970) of message uid, made from its first text/plain part (else text/html) outside
 * enclosed messages; nothing when it has no text. Returns false when the message's MIME cache cannot be read. */
bool imap_message_preview(struct imap_session *s, uint32_t uid, struct buf *out);

/* ---- imap_import.c: X-IX-IMPORT (mailbox moves between servers) ---- */
void imap_cmd_import(struct imap_session *s, const struct imap_command *cmd);

/* Continues a FETCH left half-done by output back-pressure; returns true when it has finished. */
bool imap_fetch_continue(struct imap_session *s);
void imap_fetch_job_free(struct imap_fetch_job **job);

#endif
