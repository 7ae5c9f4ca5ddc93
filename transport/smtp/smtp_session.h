/* smtp_session.h - the SMTP server session: an explicit state machine with a flat command table over conn,
 * and a backend function table (recipient lookup, password check, durable delivery) the daemon fills in. */
#ifndef IX_SMTP_SESSION_H
#define IX_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/scram.h"
#include "common/evloop.h"
#include "transport/smtp/smtp_parse.h"
#include "transport/net/sasl.h"
#include "transport/net/tls.h"

/* Defaults for struct smtp_config fields left 0. */
#define SMTP_DEFAULT_MAX_SIZE (50ULL * 1024 * 1024)
#define SMTP_DEFAULT_MAX_RECIPIENTS 100
#define SMTP_DEFAULT_MAX_ERRORS 10
#define SMTP_DEFAULT_MAX_JUNK 100
#define SMTP_DEFAULT_IDLE_MSECS (5 * 60 * 1000)
#define SMTP_DEFAULT_SESSION_MSECS (10 * 60 * 1000)
#define SMTP_DEFAULT_DATA_MSECS (5 * 60 * 1000)
/* Longest HELO/EHLO argument we keep (a domain or an address literal). */
#define SMTP_HELO_MAX 255

struct smtp_session;
struct smtp_session_info;

/* The stages of a session the backend's mail filters are told of as they happen (config.filter). */
enum smtp_filter_stage {
	SMTP_FILTER_CONNECT, /* the client connected: before the greeting */
	SMTP_FILTER_HELO,    /* HELO or EHLO (info.helo: its name) */
	SMTP_FILTER_MAIL,    /* MAIL (info.mail) */
	SMTP_FILTER_RCPT,    /* one RCPT (the rcpt argument) */
	SMTP_FILTER_DATA,    /* the DATA command (BDAT and BURL are not told: their message is shown at its end) */
};

struct smtp_config {
	const char *hostname;        /* in the greeting, EHLO reply and Received: (must outlive sessions) */
	unsigned long long max_size; /* SIZE limit in bytes */
	unsigned max_recipients;     /* per transaction: more get 452 4.5.3 */
	unsigned max_errors;         /* error replies before 421 and disconnect */
	unsigned max_junk;           /* commands other than MAIL/RCPT/DATA/BDAT between transactions */
	unsigned idle_timeout_msecs;
	/* The whole session, and the reception of one message (from the 354 or the first BDAT to the end of its data),
	 * however busy the client keeps them: past either the client gets 421 4.4.2 and the connection is closed (a
	 * delivery under way is answered first). */
	unsigned session_max_msecs;
	unsigned data_max_msecs;
	struct tls_ctx *tls;                       /* server context for STARTTLS; NULL: not offered */
	bool auth;                                 /* offer AUTH (PLAIN/LOGIN, only on TLS or loopback) */
	const struct ix_sasl_verifiers *verifiers; /* sign-ins without a password (sasl.h); NULL: none */
	/* An offloaded AUTH step that failed (535) is answered this much later, on the loop's timer (0: at once);
	 * the session reads nothing meanwhile. */
	unsigned auth_failure_delay_msecs;
	unsigned scram;            /* auth.scram: 0 no SCRAM, 1 SCRAM, 2 and its -PLUS forms inside TLS */
	bool submission;           /* MAIL requires authentication (port 587) */
	bool implicit_tls;         /* TLS from the first byte (submissions, RFC 8314); needs tls */
	enum smtp_bare_lf bare_lf; /* DATA bare LF policy */
	size_t max_line_length;    /* longest message line, CRLF included (0: no limit); longer: 552 5.3.4 */
	/* Where a message larger than SPOOL_MEMORY_MAX (common/spool.h) is kept while it arrives: an unlinked
	 * temporary file in this folder (NULL: in memory). Must outlive the session. */
	const char *spool_dir;
	/* Decides a MAIL FROM (NULL: every syntactically valid sender is taken); called with the backend's ctx.
	 * Returns NULL to accept, or the complete reply line to refuse it with (static text, e.g. "553 5.7.1
	 * Sender address not yours"). A hook of the backend, kept here so struct smtp_backend keeps its layout. */
	const char *(*mail_check)(void *ctx, const struct smtp_session_info *info, const struct smtp_mail *mail);
	/* Runs blocking work elsewhere (NULL: inline). Called with the backend's ctx when a SASL step (which checks a
	 * password through backend.check_password) is due: the owner calls smtp_session_offload_work(s) on another
	 * thread, then smtp_session_offload_done(s) on the loop's thread. The session reads nothing meanwhile, and
	 * check_password then runs on that other thread. */
	void (*offload)(void *ctx, struct smtp_session *s);
	/* Told, with the backend's ctx on the loop's thread, that AUTH was refused for bad credentials, after any
	 * check_password call of the exchange (NULL: not told): so that a refusal with no password checked (a bearer
	 * token, a Kerberos ticket) is counted by the backend's throttle too. A hook of the backend, kept here as
	 * mail_check is. */
	void (*auth_refused)(void *ctx);
	/* Whether the client's address is blocked now (too many failed logins) before AUTH looks at any credentials
	 * (NULL: never): answered 454 4.7.0 as a blocked password check is. */
	bool (*auth_blocked)(void *ctx);
	/* BURL (RFC 4468) on a submission port (NULL: not offered): what EHLO advertises after "BURL" (the IMAP URL
	 * of the server whose URLs are fetched, "imap://host"), and the fetch, run where config.offload runs the
	 * blocking work (with the backend's ctx): appends the content url (len bytes, as the client gave it) names to
	 * out for the authenticated user auth_user and returns NULL, or returns the complete reply line of the refusal
	 * (static text). The session reads nothing meanwhile. Needs offload. */
	const char *burl_imap;
	const char *(*burl_fetch)(void *ctx, const char *auth_user, const char *url, size_t len, struct buf *out);
	/* Told of every refusal of a sender, a recipient or a message (NULL: not told), with the backend's ctx: MAIL
	 * refused (nrcpts 0), a RCPT refused (that one recipient), a message refused at its end or by its delivery
	 * (every recipient of the transaction). reply is the reply line the client got. For the message tracking log. */
	void (*refused)(void *ctx, const struct smtp_session_info *info, const struct smtp_rcpt *rcpts, size_t nrcpts,
			const char *reply);
	/* The backend's mail filters, told of each stage as it happens (NULL: none), with the backend's ctx on the
	 * loop's thread once the session's own checks of the command passed (rcpt: the recipient at
	 * SMTP_FILTER_RCPT, else NULL; valid during the call). Returns false when there is nothing to ask (the command
	 * goes on at once), true when the owner asks elsewhere and answers with smtp_session_filter_done on the loop's
	 * thread, later (never from within this call); the session reads nothing meanwhile. */
	bool (*filter)(void *ctx, struct smtp_session *s, enum smtp_filter_stage stage,
		       const struct smtp_session_info *info, const struct smtp_rcpt *rcpt);
};

/* What the backend may want to know about the client. Strings valid during the call. */
struct smtp_session_info {
	const char *peer; /* address text */
	bool loopback;
	bool tls;
	const char *helo;      /* "" before HELO/EHLO */
	const char *auth_user; /* NULL when not authenticated */
	const char *peer_cert; /* fingerprint of the client's TLS certificate (tls_peer_fingerprint), NULL: none */
	const struct smtp_mail *mail; /* the transaction's MAIL (for RCPT decisions), NULL before MAIL */
};

enum smtp_rcpt_verdict {
	SMTP_RCPT_ACCEPT,   /* 250 2.1.5 */
	SMTP_RCPT_UNKNOWN,  /* 550 5.1.1 no such recipient */
	SMTP_RCPT_FULL,     /* 452 4.2.2 mailbox full */
	SMTP_RCPT_DENIED,   /* 550 5.7.1 not allowed (relay denied, delivery restrictions) */
	SMTP_RCPT_TEMPFAIL, /* 451 4.3.0 lookup failed, try later */
};

/* One accepted transaction, handed to the backend. Valid until smtp_session_delivered is called. */
struct smtp_envelope {
	const struct smtp_mail *mail;
	const struct smtp_rcpt *rcpts;
	size_t rcpt_count;
	const char *message; /* our Received: line, then the message as received, CRLF line ends; in memory or */
	size_t message_len;  /* mapped from the session's spool file (not NUL-terminated) */
	bool chunked;        /* came by BDAT */
};

struct smtp_backend {
	/* Decides a recipient (sync: the directory replica is in memory). reason_r may point to a static text
	 * that replaces the default reply text. */
	enum smtp_rcpt_verdict (*rcpt)(void *ctx, const struct smtp_session_info *info, const struct smtp_rcpt *rcpt,
				       const char **reason_r);
	/* Verifies a password for AUTH (see ix_sasl_check_fn; IX_EBLOCKED is answered 454 4.7.0 temporarily
	 * blocked). NULL: AUTH is never offered. */
	int (*check_password)(void *ctx, const char *user, const char *pass, size_t passlen);
	/* Takes a message. The backend answers with smtp_session_delivered() once the message is durable (or has
	 * failed) - from inside this call or later from the loop (group commit in the before-sleep hook). The
	 * session reads no further commands meanwhile. */
	void (*deliver)(void *ctx, struct smtp_session *s, const struct smtp_session_info *info,
			const struct smtp_envelope *env);
	/* The session has ended (QUIT, peer gone, timeout, error limit). The owner destroys it, here or later. Never
	 * called while a delivery is outstanding. */
	void (*closed)(void *ctx, struct smtp_session *s);
	/* Adds the SCRAM verifiers of user (see ix_sasl_scram_fn), and hears of a wrong SCRAM proof (see
	 * ix_sasl_failed_fn); run where check_password runs. NULL: SCRAM is not offered. */
	int (*scram)(void *ctx, const char *user, struct scram_server *srv, struct buf *names_r);
	void (*scram_failed)(void *ctx, const char *user);
};

/* Starts a session on an accepted socket (taken over) and sends the 220 greeting. config is copied (fields left
 * 0 get the defaults above; tls and hostname must outlive the session); backend must outlive it. Never fails. */
struct smtp_session *smtp_session_create(struct evloop *loop, int fd, const struct smtp_config *config,
					 const struct smtp_backend *backend, void *ctx);
/* Closes the connection and frees. Must not be called while a delivery or offloaded step is outstanding. Sets
 * *s to NULL. */
void smtp_session_destroy(struct smtp_session **s);
/* Completes the delivery the backend was handed: error_reply NULL means durable ("250 2.0.0 Ok: queued");
 * otherwise it is the complete reply line to send, without CRLF (e.g. "451 4.3.0 Store unavailable"). */
void smtp_session_delivered(struct smtp_session *s, const char *error_reply);
/* Answers config.filter's question: reply NULL lets the command go on as the session's own checks decided; else it
 * is the complete reply line (4xx or 5xx, without CRLF; copied) refusing it: HELO/EHLO (the client has to greet
 * again), MAIL (no transaction), that one recipient, or DATA (the transaction ends). At SMTP_FILTER_CONNECT the
 * greeting is given either way: a filter that refuses the session refuses its commands (the owner's filters keep
 * their verdict). May report closed when the connection went away meanwhile. */
void smtp_session_filter_done(struct smtp_session *s, const char *reply);
/* The blocking part of an offloaded step (any thread; touches only the session's SASL state, or a BURL's fetch),
 * and its completion (the loop's thread; replies, and may report closed when the connection went away
 * meanwhile). */
void smtp_session_offload_work(struct smtp_session *s);
void smtp_session_offload_done(struct smtp_session *s);
/* The server is stopping: a session between commands (or in a SASL exchange) gets "421 4.3.2 ... shutting down"
 * and closes at once; one receiving a message (DATA, or BDAT before its last chunk) or waiting for a delivery or
 * an offloaded step finishes that first (the client hears its reply), then gets the 421. Either way closed is
 * reported as usual once the connection is gone. */
void smtp_session_shutdown(struct smtp_session *s);
/* Transactions completed with 250 so far. */
unsigned smtp_session_messages(const struct smtp_session *s);

#endif
