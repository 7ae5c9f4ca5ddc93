/* milter.h - the MTA side of the milter protocol: one message's conversation with each mail filter in turn (option
 * negotiation, macros, connect to end of message), with a timeout on every step, and the filters' verdicts and
 * changes gathered into one transaction. Blocking sockets: called on a worker thread, never on an event loop. */
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
/* A conversation lasts at most this many timeouts, however often the filter says it is making progress (as
 * Postfix's milter_content_timeout, 300 s, is ten of its command timeouts); and a filter sends at most this many
 * changes for one message. */
#define MILTER_CONVERSATION_TIMEOUTS 10
#define MILTER_CHANGES_MAX 10000
/* The replies given for a filter's reject and tempfail without a reply of its own (as Postfix gives them). */
#define MILTER_REJECT_REPLY "550 5.7.1 Command rejected"
#define MILTER_TEMPFAIL_REPLY "451 4.7.1 Service unavailable - try again later"

/* A macro the MTA can tell filters: name as filters ask for it ("j", "{daemon_name}", "{i}"...) and its value. */
struct milter_macro {
	const char *name, *value;
};

/* What every filter is told about the client (strings valid during milter_run). {mail_addr} and {rcpt_addr} come
 * from the transaction; the rest of the macros from macros. */
struct milter_client {
	const char *addr; /* the client's IP address text, or "" when it has none (then "unknown" family) */
	unsigned port;
	const char *name; /* its host name, "unknown" when not known (as Postfix says it) */
	const char *helo; /* "" when it sent none */
	const struct milter_macro *macros;
	size_t nmacros;
	unsigned timeout_ms; /* the connection and every reply (a filter's SMFIR_PROGRESS starts it again); the whole
			      * conversation at most MILTER_CONVERSATION_TIMEOUTS times it, progress or not */
	unsigned long long max_size; /* the changes a filter sends for one message: at most this many bytes (a body
				      * it replaces, header fields) plus MILTER_PACKET_MAX; 0: the message's size */
};

enum milter_verdict {
	MILTER_PASS,     /* continue or accept: the message goes on (to the next filter), with the changes made */
	MILTER_REJECT,   /* reply: 5xx */
	MILTER_TEMPFAIL, /* reply: 4xx */
	MILTER_DISCARD,  /* accepted and dropped */
};

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

/* Holds the conversation with the filter at ep about t's message: connect, SMFIC_OPTNEG (the steps and replies the
 * filter leaves out are left out, its macro lists honoured), CONNECT, HELO, MAIL, RCPT, DATA, the header fields,
 * EOH, the body in chunks, end of message, QUIT. Returns 0 with t->verdict set (PASS: the filter's changes are
 * applied to t; otherwise nothing of them), or -1 with error_r saying why the filter could not be used (not
 * reachable, no reply in time, a reply the protocol does not allow): t is then unchanged. */
int milter_run(const struct endpoint *ep, const struct milter_client *client, struct milter_txn *t,
	       struct buf *error_r);

#endif
