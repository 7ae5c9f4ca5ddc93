/* queue.h - the durable mail queue: one file per message under <data>/queue holding the envelope, the
 * per-recipient delivery state and the message, written with the one durable recipe (temp, fsync, rename). */
#ifndef IX_QUEUE_H
#define IX_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"

/* Limits on what a queue file may hold; a file over them is refused as corrupt. */
#define QUEUE_ID_MAX 32              /* characters of a queue id (hex digits) */
#define QUEUE_FIELD_MAX 1024         /* bytes of one envelope field (address, envid, error text) */
#define QUEUE_RCPTS_MAX 100000       /* recipients of one queued message */
#define QUEUE_HEADER_MAX (64u << 20) /* bytes of the envelope part of a file */
#define QUEUE_BODY_MAX (2ULL << 30)  /* bytes of the message part */
#define QUEUE_FILE_MAGIC "IXQ 1"
/* Temp files of the durable recipe carry a '.' in their names; queue ids never do. */

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0, /* still to be delivered (next_try says when) */
	QUEUE_RCPT_DONE = 1,    /* delivered or relayed */
	QUEUE_RCPT_FAILED = 2,  /* permanently failed; a bounce was (or needs no) sending */
};

struct queue_rcpt {
	char *addr;          /* where it goes (final recipient address) */
	char *orcpt;         /* the original recipient as the client gave it (RCPT TO), "" when the same */
	unsigned notify;     /* SMTP_NOTIFY_* (0: not given) */
	int state;           /* enum queue_rcpt_state */
	unsigned attempts;   /* delivery attempts that failed temporarily */
	long long next_try;  /* wall clock seconds of the next attempt */
	bool delay_notified; /* a delay DSN went out */
	char *last_error;    /* the last failure (an SMTP reply or a sentence), "" */
};

struct queue_msg {
	char id[QUEUE_ID_MAX + 1];
	long long created; /* wall clock seconds when it was accepted */
	char *sender;      /* reverse path, "" for the null sender (bounces) */
	char *envid;       /* DSN ENVID, "" */
	int ret;           /* enum smtp_ret */
	char *msgid;       /* the Message-ID header, "" (for tracking) */
	char *auth;        /* who authenticated when it was submitted, "" */
	struct queue_rcpt *rcpts;
	size_t nrcpts;
	struct buf body; /* the message, CRLF line ends */
};

/* Zeroes m; fields are then "" / empty as documented. */
void queue_msg_init(struct queue_msg *m);
/* Frees everything m owns and leaves it zeroed (call queue_msg_init before using it again). A zeroed m is
 * ignored. */
void queue_msg_free(struct queue_msg *m);
/* Adds a pending recipient (strings copied; NULL counts as ""). Returns the new entry. */
struct queue_rcpt *queue_msg_add_rcpt(struct queue_msg *m, const char *addr, const char *orcpt, unsigned notify);
/* Replaces a string field owned by m or one of its recipients (sender, envid, last_error...) with a copy of s,
 * with CR, LF, TAB and other control bytes turned into spaces and at most QUEUE_FIELD_MAX bytes kept. */
void queue_set_field(char **field, const char *s);

/* Fills id (QUEUE_ID_MAX + 1 bytes) with a new id, unique across processes and time: microseconds, pid and a
 * counter in hex. */
void queue_new_id(char *id);
/* True when s is a syntactically valid queue id (hex digits only, 1..QUEUE_ID_MAX). */
bool queue_id_valid(const char *s);

/* The file format, as pure functions: queue_serialize appends m to out; queue_parse reads a whole file image
 * (bounded by len) into m (overwritten, not freed first; free it with queue_msg_free in every case). with_body false skips the
 * message bytes (listing). Returns 0, or IX_ECORRUPT with a sentence in error_r. */
void queue_serialize(const struct queue_msg *m, struct buf *out);
int queue_parse(const char *data, size_t len, bool with_body, struct queue_msg *m, struct buf *error_r);

/* Files. qdir is <data>/queue (created by queue_dir_ensure). */
int queue_dir_ensure(const char *qdir, struct buf *error_r);
/* Writes m durably as qdir/ID: when it returns 0 the message survives a crash (file and folder synced).
 * Replaces an existing file of that id atomically. Returns 0 or IX_EIO with error_r. */
int queue_write(const char *qdir, const struct queue_msg *m, struct buf *error_r);
/* The same with the body given apart (m->body is not used): a message in a mapped spool file is written without
 * a copy in memory. */
int queue_write_body(const char *qdir, const struct queue_msg *m, const char *body, size_t len, struct buf *error_r);
/* Reads qdir/ID into m (which need not be initialised; free it with queue_msg_free in every case). Returns 0, IX_ENOTFOUND (gone), IX_EINVAL (bad id) or IX_ECORRUPT / IX_EIO with error_r. */
int queue_read(const char *qdir, const char *id, bool with_body, struct queue_msg *m, struct buf *error_r);
/* Writes back the new state of a message that is already queued, as queue_write, but only while qdir/ID still
 * exists: a message deleted meanwhile (interchange queue delete) stays deleted. Holds the queue's lock shared
 * (qdir/.lock) across the check and the write, so a removal cannot fall between them. Returns 0, IX_ENOTFOUND
 * (deleted: nothing written) or IX_EIO with error_r. */
int queue_update(const char *qdir, const struct queue_msg *m, struct buf *error_r);
/* Removes qdir/ID (and syncs the folder), holding the queue's lock exclusively, so it never races a
 * queue_update of the same message. Returns 0, IX_ENOTFOUND or IX_EIO. */
int queue_remove(const char *qdir, const char *id, struct buf *error_r);
/* A person's word for recipient r's state at wall clock now: "done", "failed", "active" (due now), "deferred". */
const char *queue_rcpt_state_name(const struct queue_rcpt *r, long long now);
/* Asks ix-mta to retry every queued message now: creates the file QUEUE_FLUSH_FILE in qdir, which ix-mta looks for
 * at each scan and removes. Returns 0 or IX_EIO with a sentence in error_r. */
#define QUEUE_FLUSH_FILE ".flush"
int queue_request_flush(const char *qdir, struct buf *error_r);
/* The ids in the queue in creation order (malloc'd array of malloc'd strings; free with queue_ids_free).
 * Temp files of interrupted writes older than a minute are removed on the way. */
int queue_list(const char *qdir, char ***ids_r, size_t *count_r, struct buf *error_r);
void queue_ids_free(char ***ids, size_t count);

/* Counts for monitoring: messages with a recipient due now (active), the others (deferred), and the age in seconds
 * of the oldest. Reads at most QUEUE_STATS_MAX_READ files (the rest are counted as deferred). */
#define QUEUE_STATS_MAX_READ 20000
struct queue_stats {
	size_t active, deferred;
	long long oldest_age;
};
int queue_stats(const char *qdir, long long now, struct queue_stats *stats_r, struct buf *error_r);

/* The backoff after attempt number n (1-based): first * 2^(n-1), at most max (seconds). */
long long queue_backoff(unsigned attempts, long long first, long long max);

/* The tracking log is renamed to tracking.log.1 (replacing the previous one) when it grows past this. */
#define TRACK_LOG_ROTATE_BYTES (64u << 20)
/* The message tracking log: one line per event appended to <data>/log/tracking.log with one write (lines from
 * several processes never mix). Checked once a second for rotation (by this process past
 * TRACK_LOG_ROTATE_BYTES, or by another: the file is then opened again). Fields are tab-separated: time, event (received, delivered, relayed, deferred,
 * bounced, expanded, failed, refused: by ix-smtpd during the SMTP session, the reply given as detail; filtered: by
 * ix-smtpd, a mail filter's verdict and changes), queue id, message id, sender, recipient, server (who did it), detail. */
void track_log(const char *data_dir, const char *event, const char *qid, const char *msgid, const char *sender,
	       const char *rcpt, const char *server, const char *detail);

/* The tracking log under the data folder, and what track_search reads of it: the last TRACK_LOG_MAX bytes of it and
 * of the rotated one (.1) each, and the events of at most TRACK_IDS_MAX messages. */
#define TRACK_LOG_FILE "log/tracking.log"
#define TRACK_LOG_MAX (256u << 20)
#define TRACK_IDS_MAX 10000
/* One event of the log, its fields as track_log wrote them (valid during the call that hands it over). */
struct track_event {
	const char *time, *event, *qid, *msgid, *sender, *rcpt, *server, *detail;
};
/* Calls fn, in the log's order (the rotated log first), for every event of the messages (queue ids) with an event
 * whose Message-ID, sender or recipient is query (without case; a Message-ID with or without its angle brackets).
 * Returns how many events it handed over (0: none, or nothing tracked yet). (transport/mta/track.c) */
size_t track_search(const char *data_dir, const char *query, void (*fn)(const struct track_event *e, void *ctx),
		    void *ctx);

#endif
