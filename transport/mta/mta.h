/* mta.h - the message transfer agent's shared logic: recipient routing from the directory (lists expanded once,
 * duplicates removed, forwarding applied), delivery restrictions and send-as checks, and live server settings.
 * Used in-process by ix-smtpd (the fast local path) and by ix-mta (the queue runner). */
#ifndef IX_MTA_H
#define IX_MTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/config.h"
#include "directory/dir.h"
#include "common/settings.h"

/* Forwarding chains followed from one recipient before the rest is cut as a loop. */
#define MTA_FORWARD_DEPTH_MAX 8
/* Final recipients one envelope recipient may turn into (DIR_EXPAND_MAX_RECIPIENTS bounds lists anyway). */
#define MTA_TARGETS_MAX 200000
/* "host:port" of a destination. */
#define MTA_DEST_MAX 300

enum mta_kind {
	MTA_LOCAL = 1, /* a mailbox or public folder in this server's store */
	MTA_SERVER,    /* homed on another server of the organisation: relay there over SMTP */
	MTA_REMOTE,    /* outside: a connector or MX */
	MTA_FAIL,      /* cannot be delivered: error says why (a complete SMTP reply) */
};

struct mta_target {
	char *addr;      /* final address */
	char *orcpt;     /* the envelope recipient it came from */
	unsigned notify; /* SMTP_NOTIFY_* of that envelope recipient */
	enum mta_kind kind;
	char *guid;                           /* MTA_LOCAL: mailbox GUID (STORE_PUBLIC_GUID for public folders) */
	char *folder;                         /* MTA_LOCAL: NULL for INBOX, the folder path for public folders */
	uint64_t quota_bytes, quota_messages; /* MTA_LOCAL: limits from the directory (0: none) */
	char *dest;                           /* MTA_SERVER: "host:port" of the home server's SMTP port */
	char *error;                          /* MTA_FAIL: "550 5.1.1 ..." (4xx: temporary) */
};

struct mta_targets {
	struct mta_target *v;
	size_t n;
};

/* Adds the final recipients of one envelope recipient addr to t (deduplicated against what t already holds):
 * lists are expanded, forwarding followed (with or without a copy), contacts replaced by their target address,
 * public folders delivered to the public hierarchy. server_dn is this server's entry (cfg.server_dn). orcpt and
 * notify are recorded on every target. Never fails: what cannot be resolved becomes an MTA_FAIL target. */
#define MTA_RESOLVE_FINAL 1u /* addr is already a final recipient (from the queue): forwarding is not followed again */
/* The sender as the accepting server knew it: with one, the delivery restrictions of every member a list expands
 * to are checked (mta_check_restrictions) and a member that refuses this sender becomes an MTA_FAIL target; NULL
 * where they were checked before (the queue runner). */
struct mta_sender {
	const char *address;     /* MAIL FROM ("" for <>) */
	bool authenticated;      /* the session authenticated (a sender address of ours counts only then) */
	unsigned long long size; /* message size (0: unknown) */
};
void mta_resolve(struct dir *dir, const char *server_dn, const char *addr, const char *orcpt, unsigned notify,
		 unsigned flags, const struct mta_sender *sender, struct mta_targets *t);
void mta_targets_free(struct mta_targets *t);

struct store;
/* Before a store append to tg (MTA_LOCAL): a public folder the directory has and the store not yet is created, with
 * the default rights (store_public_folder_ensure); a failure is left for the append to report. */
void mta_local_prepare(struct store *st, const struct mta_target *tg);
/* The reply (allocated) for a local target whose append failed with result, the message itself not being refused:
 * permanent (*permanent_r true, "550 5.2.0 ...") when the target can never take mail (its folder name is invalid),
 * else temporary ("452 4.2.2 Mailbox full" over quota, MTA_REPLY_MOVING while the mailbox is frozen for a move,
 * "451 4.3.0 ..." otherwise). */
char *mta_local_failure(const struct mta_target *tg, int result, const char *store_error, bool *permanent_r);

/* The delivery restrictions of recipient r against sender (the MAIL FROM address, "" for <>): accept-only-from
 * (senders or lists, by DN), reject-from, members-only lists, authenticated senders only, and the largest size
 * (size 0: unknown yet). Returns NULL when allowed, else a complete "550 5.7.1 ..." reply (static text). */
const char *mta_check_restrictions(struct dir *dir, const struct dir_recipient *r, const char *sender,
				   bool authenticated, unsigned long long size);
/* May the authenticated user (login or address, as given to AUTH) use from as MAIL FROM? Allowed: one of their
 * own addresses, or an address of a recipient that lists them in send-as or send-on-behalf. Returns NULL when
 * allowed, else a complete "553 5.7.1 ..." reply (static text). */
const char *mta_check_send_as(struct dir *dir, const char *user, const char *from);

/* What the authenticated user (login or address, as given to AUTH) may do with the address from. */
enum mta_send_right {
	MTA_SEND_NONE,      /* nothing: not theirs */
	MTA_SEND_OWN,       /* one of their own addresses */
	MTA_SEND_AS,        /* its owner lists them in send-as (ixSendAs): they may write it as theirs */
	MTA_SEND_ON_BEHALF, /* its owner lists them in send-on-behalf (ixSendOnBehalf): with a Sender field naming them */
};
/* The right of user over from; when user is known, own_address_r (may be NULL) gets their primary address. */
enum mta_send_right mta_send_right(struct dir *dir, const char *user, const char *from, struct buf *own_address_r);
/* The header From (and Sender) of a message submitted by the authenticated user (msg[0..len), the header block is
 * read): every From address must be theirs or one they may send as or on behalf of, a Sender field one of theirs or
 * one they may send as. Returns true when the message may go: sender_r is then "" or the address a Sender field must
 * be added with (send-on-behalf, or several From addresses, without a Sender field). Returns false with the refusal
 * in reply_r: "550 5.7.1 ..." naming the address, or a message without a From field. */
bool mta_check_header_from(struct dir *dir, const char *user, const char *msg, size_t len, struct buf *sender_r,
			   struct buf *reply_r);

/* The domain of the first address of msg's header From, copied into out (size bytes). Returns false when there is no
 * From field, no address in it, or the domain does not fit. */
bool mta_header_from_domain(const char *msg, size_t len, char *out, size_t size);

/* Extracts the domain of an address (after the last '@'), or "" when there is none. */
const char *mta_domain(const char *addr);

/* Whether r's mailbox lives on a server other than server_dn (this server's entry) as far as this server's directory
 * knows: mail for it goes there. */
bool mta_homed_elsewhere(const struct dir_recipient *r, const char *server_dn);

/* The reply for mail to a mailbox that is moving between servers, or that another server of the organisation sends
 * here while this server's directory still names a different home: the sending MTA retries within a second (the
 * move ends, or the directories agree) rather than after queue.retry_first, and never sends it back and forth. */
#define MTA_REPLY_MOVING "451 4.2.1 The mailbox is being moved to another server"
/* Whether reply is MTA_REPLY_MOVING. */
bool mta_reply_is_moving(const char *reply);

/* ---- the queue runner (ix-mta) ---- */

/* Worker threads delivering queued messages. */
#define MTA_WORKERS 8
/* Connections one destination (a smart host, an MX domain, a home server) may have open at once. */
#define MTA_DEST_CONCURRENCY 4
/* A worker whose destination has all its connections busy waits this long for one to free up (milliseconds) before
 * the recipient is put back for a second: a burst to one place keeps every connection busy without rewriting
 * queue files. */
#define MTA_DEST_WAIT_MS 2000
/* Idle outbound connections are kept this long for reuse (seconds). */
#define MTA_CONN_IDLE_MAX 10
/* The queue folder is scanned at least this often (milliseconds); new files are seen at once via inotify. */
#define MTA_SCAN_MS 1000
/* Most MX hosts tried for a domain, and addresses tried for one MX host. */
#define MTA_MX_MAX 16
#define MTA_MX_ADDRS_MAX 8

/* The whole program: daemon_setup, queue runner, the loop, teardown. Returns the exit status. */
/* Final delivery through the active Sieve script of a mailbox (mta_sieve.c; docs/sieve.md), for ix-smtpd and
 * ix-mta alike. */
struct store;
struct mta_sieve_ctx {
	struct store *store;
	struct dir *dir;
	const struct settings *set; /* forwarding.external, sieve.vacation_days */
	const char *qdir;           /* where redirects and vacation replies are queued */
	const char *data_dir;       /* for track */
	const char *hostname;
};
/* Delivers msg[0..len) for the local target tg through its mailbox's active script. Returns 0 when there is no
 * script for it (a public folder, no active script) or the script failed before it produced anything (logged, and
 * in track as a "sieve" event): the caller delivers as usual, which is the keep. Returns 1 when the script's
 * actions were carried out: *reply_r (malloc'ed) is this target's outcome: "250 ..." when stored (or discarded,
 * or only redirected), "550 5.7.1 reason" for reject/ereject, a store failure as mta_local_failure says it.
 * Redirects outside the organisation's domains are refused (logged, track) when forwarding.external is deny;
 * others and vacation replies (from the null sender) become new queue files. */
int mta_sieve_deliver(const struct mta_sieve_ctx *c, const struct mta_target *tg, const char *sender, const char *qid,
		      const char *msgid, const char *msg, size_t len, char **reply_r);

/* Out of office (mta_oof.c; docs/sieve.md), for `interchange user oof` and the REST API: sets the script
 * SIEVE_OOF_NAME of mailbox guid in st to what o says (o->domains and o->known ignored: the organisation's accepted
 * domains, read through p, are the inside, and its contacts the known senders outside), checked by the Sieve parser
 * first (IX_ELIMIT with a sentence when the contacts do not fit in one script); o NULL removes it (none there is no error). Returns
 * IX_OK or an ix_err code with a sentence. */
struct prov;
struct sieve_oof;
int mta_oof_set(struct prov *p, struct store *st, const char *guid, const struct sieve_oof *o, struct buf *error_r);

int mta_main(int argc, char **argv);

/* Among the connectors that tie with best for domain (same cost, equally specific address space, a smart host),
 * picks one by key (the queue id), so equal costs share the load. Returns a new "host[:port]" string. */
char *mta_pick_smart_host(struct dir *dir, const char *domain, const struct dir_connector *best, const char *key);

#endif
