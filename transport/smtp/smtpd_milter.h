/* smtpd_milter.h - ix-smtpd's mail filters (milter): a session's filters of its port, told of each SMTP stage as it
 * happens (on a worker thread), their verdict applied to that command, and the message shown to them at its end,
 * their verdict deciding the reply and their changes what is delivered. */
#ifndef IX_SMTPD_MILTER_H
#define IX_SMTPD_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "transport/smtp/smtp_session.h"

/* The settings of a session's filters, as they were when it connected (strings copied). */
struct smtpd_milter_config {
	const char *milters;         /* smtp.milters or smtp.submission_milters: the filters, in order */
	unsigned timeout_ms;         /* smtp.milter_timeout */
	unsigned long long max_size; /* smtp.max_message_size: the most a filter's changes may add up to */
	bool tempfail;        /* smtp.milter_default: a filter that cannot be used gives 451 (else it is skipped) */
	const char *hostname; /* j, {daemon_name} */
	const char *domain;   /* of <Postmaster> */
	const char *peer;     /* the client's address text */
	const char *data_dir; /* the tracking log's */
};

/* The facts of one stage (strings valid during the call). */
struct smtpd_milter_stage {
	enum smtp_filter_stage stage;
	const char *helo;      /* HELO on: the name the client gave */
	const char *auth_user; /* {auth_authen}; NULL when the client did not log in */
	const char *queue_id;  /* MAIL on: the transaction's ({i}, and the tracking log's id) */
	const char *sender;    /* MAIL on: the sender's address ("" for the null sender) */
	const char *rcpt;      /* RCPT: the recipient's address */
};

enum smtpd_milter_outcome {
	SMTPD_MILTER_DELIVER, /* deliver (the message and envelope as the filters left them) */
	SMTPD_MILTER_REFUSE,  /* *reply_r: the reply to give, nothing delivered */
	SMTPD_MILTER_DISCARD, /* 250, nothing delivered */
};

/* The filters' result for a message to deliver: the envelope and message they left (each NULL/0 when unchanged;
 * freed by smtpd_milter_result_free) and whether one asked for quarantine. */
struct smtpd_milter_result {
	struct smtp_mail mail; /* the transaction's MAIL with the filters' sender (when sender_changed) */
	bool sender_changed;
	struct smtp_rcpt *rcpts; /* the recipients the filters left (when rcpts_changed) */
	size_t nrcpts;
	bool rcpts_changed;
	struct buf message; /* the changed message (len 0: unchanged) */
	bool quarantine;
};

struct smtpd_milters;

/* A session's filters (config copied; no I/O: they are connected at SMTP_FILTER_CONNECT). Freed by
 * smtpd_milters_destroy. Used by one thread at a time. */
struct smtpd_milters *smtpd_milters_create(const struct smtpd_milter_config *config);

/* Tells every filter of the stage in order (blocking: a worker's), the connections opened at SMTP_FILTER_CONNECT.
 * Returns NULL when the command goes on, or the reply refusing it (freed by the caller): the first filter's reject
 * or tempfail, or 451 for a filter that cannot be used (smtp.milter_default tempfail: from then on for the whole
 * session; accept: it is skipped from then on). A refusal at CONNECT or HELO refuses the session's transactions:
 * NULL there, and the same reply at each MAIL. A discard at MAIL, RCPT or DATA drops the transaction's message at its
 * end. Every verdict other than continue is in the tracking log (event "filtered", "... at RCPT"). */
char *smtpd_milters_stage(struct smtpd_milters *f, const struct smtpd_milter_stage *st);

/* The message at the end of the transaction: every filter in order over env's envelope and the len bytes of message
 * (each filter gets what the ones before left; DATA is told first where the stage was not). Every filter's verdict
 * and changes go into the tracking log (event "filtered", one per recipient, with queue_id). Returns the outcome;
 * on REFUSE *reply_r is the reply (freed by the caller). */
enum smtpd_milter_outcome smtpd_milters_message(struct smtpd_milters *f, const char *queue_id, const char *auth_user,
						const struct smtp_envelope *env, const char *message, size_t len,
						struct smtpd_milter_result *res_r, char **reply_r);
void smtpd_milter_result_free(struct smtpd_milter_result *res);

/* Ends every filter's connection (never blocks) and frees; sets *f to NULL. */
void smtpd_milters_destroy(struct smtpd_milters **f);

#endif
