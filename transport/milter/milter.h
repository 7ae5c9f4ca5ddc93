/* milter.h - the MTA side of the milter protocol: one SMTP session's connection to a mail filter (option
 * negotiation, then each stage as it happens: connect, HELO, MAIL, RCPT, DATA, the message at its end), with a timeout
 * on every step, the filter's verdict at each stage and its changes gathered into one transaction. Blocking sockets:
 * called on a worker thread, never on an event loop, and by one thread at a time. */
#ifndef IX_MILTER_H
#define IX_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/endpoint.h"
#include "transport/milter/milter_edit.h"

/* Longest reply text kept from a filter, and most recipients a transaction may reach through filters' additions. */
#define MILTER_REPLY_MAX 512
#define MILTER_RCPTS_MAX 10000
/* One stage's conversation (the message's at its end) lasts at most this many timeouts, however often the filter
 * says it is making progress (as Postfix's milter_content_timeout, 300 s, is ten of its command timeouts); and a
 * filter sends at most this many changes for one message. */
#define MILTER_CONVERSATION_TIMEOUTS 10
#define MILTER_CHANGES_MAX 10000
/* The replies given for a filter's reject and tempfail without a reply of its own (as Postfix gives them). */
#define MILTER_REJECT_REPLY "550 5.7.1 Command rejected"
#define MILTER_TEMPFAIL_REPLY "451 4.7.1 Service unavailable - try again later"

/* A macro the MTA can tell filters: name as filters ask for it ("j", "{daemon_name}", "{i}"...) and its value ("":
 * not known now, not told). */
struct milter_macro {
	const char *name, *value;
};

/* What every filter is told about the client (must outlive the connection; the macros' values are read at each
 * stage, so the owner may change them between stages, e.g. {i} for each transaction). {mail_addr} and {rcpt_addr}
 * come from the MAIL and RCPT stages; the rest of the macros from macros. */
struct milter_client {
	const char *addr; /* the client's IP address text, or "" when it has none (then "unknown" family) */
	unsigned port;
	const char *name; /* its host name, "unknown" when not known (as Postfix says it) */
	const struct milter_macro *macros;
	size_t nmacros;
	unsigned timeout_ms; /* the connection and every reply (a filter's SMFIR_PROGRESS starts it again); a stage's
			      * conversation at most MILTER_CONVERSATION_TIMEOUTS times it, progress or not */
	unsigned long long max_size; /* the changes a filter sends for one message: at most this many bytes (a body
				      * it replaces, header fields) plus MILTER_PACKET_MAX; 0: the message's size */
};

enum milter_verdict {
	MILTER_PASS,     /* continue or accept: the command or message goes on (to the next filter), with the changes */
	MILTER_REJECT,   /* reply: 5xx */
	MILTER_TEMPFAIL, /* reply: 4xx */
	MILTER_DISCARD,  /* the message is accepted and dropped */
};

/* The SMTP stages a filter is told of as they happen (the message itself: milter_message). */
enum milter_event {
	MILTER_EV_CONNECT,
	MILTER_EV_HELO,
	MILTER_EV_MAIL,
	MILTER_EV_RCPT,
	MILTER_EV_DATA,
};

/* One SMTP session's connection to one filter. */
struct milter;

/* One message as the filters pass it on: the envelope and the message, changed by each filter that passes it. */
struct milter_txn {
	char *sender; /* without angle brackets; "" for the null sender */
	char **rcpts; /* without angle brackets */
	size_t nrcpts;
	const char *cur; /* the message now: the caller's, or text once a filter changed it */
	size_t cur_len;
	struct buf text;
	struct milter_message msg; /* cur parsed */
	bool changed;              /* a filter changed the message (header fields or body) */
	bool envelope;             /* a filter changed the sender or the recipients */
	bool quarantine;           /* a filter asked for quarantine (SMFIR_QUARANTINE) */
	char quarantine_reason[MILTER_REPLY_MAX];
	enum milter_verdict verdict;  /* of the last filter run */
	char reply[MILTER_REPLY_MAX]; /* REJECT, TEMPFAIL: the reply line to give */
	struct buf done;              /* what the last filter run did, for the tracking log ("added header X", ...) */
};

/* Starts a transaction over the message (CRLF line ends; must outlive the transaction unless a filter replaces
 * its body) and the envelope (copied). */
void milter_txn_init(struct milter_txn *t, const char *sender, const char *const *rcpts, size_t nrcpts,
		     const char *message, size_t len);
void milter_txn_free(struct milter_txn *t);
/* The message as the filters left it (valid until t changes or is freed). */
void milter_txn_message(const struct milter_txn *t, const char **message_r, size_t *len_r);

/* Connects to the filter at ep and negotiates (SMFIC_OPTNEG: the steps and replies the filter leaves out are left
 * out, its macro lists honoured). client must outlive the connection. Returns the connection, or NULL with error_r
 * saying why the filter cannot be used (not reachable, no reply in time, a reply the protocol does not allow). */
struct milter *milter_open(const struct endpoint *ep, const struct milter_client *client, struct buf *error_r);

/* Tells the filter of one stage as Postfix does: CONNECT (arg unused), HELO (arg: the name the client gave), MAIL
 * (arg: the sender without angle brackets, "" for the null sender; ABORT first when a message was under way, and a
 * new message begins), RCPT (arg: one recipient), DATA (the DATA command; for a message that came otherwise it is
 * told at its end). Returns 0 with *verdict_r and, for REJECT and TEMPFAIL, reply_r (MILTER_REPLY_MAX bytes: the
 * filter's SMFIR_REPLYCODE line, else MILTER_REJECT_REPLY or MILTER_TEMPFAIL_REPLY). The verdict's scope is Postfix's:
 *  - a step the filter left out (SMFIP_NO*) or answers nothing to (SMFIP_NR_*) passes;
 *  - at CONNECT and HELO, reject and tempfail refuse the session: every later stage, the message included, gets the
 *    same verdict without asking the filter; accept ends the filter's part in the session (every later stage
 *    passes); discard is not a verdict there and passes;
 *  - at MAIL, RCPT and DATA, reject and tempfail refuse that command (at RCPT the one recipient: the message goes
 *    on with the others); accept ends the filter's part in this message, and discard too (it is returned once: the
 *    message is to be dropped at its end).
 * Returns -1 with error_r when the filter cannot be used (no reply in time, a reply the protocol does not allow, the
 * connection broken): the connection is then of no more use and every later call fails again. */
int milter_event(struct milter *m, enum milter_event ev, const char *arg, enum milter_verdict *verdict_r, char *reply_r,
		 struct buf *error_r);

/* The message of the transaction at its end: DATA when it was not told yet, the header fields, EOH, the body in
 * chunks, end of message, with the steps the filter leaves out left out. Returns 0 with t->verdict set (PASS: the
 * filter's changes are applied to t; otherwise nothing of them) and t->done what it did, or -1 with error_r as
 * milter_event (t is then unchanged). A filter that accepted or discarded the message earlier, or was done with the
 * session, passes it without being asked. */
int milter_message(struct milter *m, struct milter_txn *t, struct buf *error_r);

/* Ends the connection (ABORT when a message was under way, then QUIT) and frees m; sets *m to NULL. Never blocks. */
void milter_close(struct milter **m);

#endif
