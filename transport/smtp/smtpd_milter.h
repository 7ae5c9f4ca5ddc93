/* smtpd_milter.h - ix-smtpd's mail filters (milter): the filters of a session's port run over a received message at
 * the end of DATA, on the worker thread; their verdict decides the reply and their changes what is delivered. */
#ifndef IX_SMTPD_MILTER_H
#define IX_SMTPD_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "transport/smtp/smtp_session.h"

/* The facts of one message and the settings in force when it arrived (strings valid during the call). */
struct smtpd_milter_in {
	const char *milters;         /* smtp.milters or smtp.submission_milters: the filters, in order */
	unsigned timeout_ms;         /* smtp.milter_timeout */
	unsigned long long max_size; /* smtp.max_message_size: the most a filter's changes may add up to */
	bool tempfail;        /* smtp.milter_default: a filter that cannot be used gives 451 (else it is skipped) */
	const char *hostname; /* j, {daemon_name} */
	const char *domain;   /* of <Postmaster> */
	const char *queue_id; /* {i}, and the tracking log's id */
	const char *peer;     /* the client's address text */
	const char *helo;
	const char *auth_user; /* {auth_authen}; NULL when the client did not log in */
	const char *data_dir;  /* the tracking log's */
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

/* Runs every filter of in->milters in order over env's envelope and the len bytes of message (each filter gets
 * what the ones before left). Every filter's verdict and changes go into the tracking log (event "filtered").
 * Returns the outcome; on REFUSE *reply_r is the reply (freed by the caller). A filter that cannot be reached or
 * answer in time is in->tempfail ? a 451 refusal : skipped. */
enum smtpd_milter_outcome smtpd_milter_run(const struct smtpd_milter_in *in, const struct smtp_envelope *env,
					   const char *message, size_t len, struct smtpd_milter_result *res_r,
					   char **reply_r);
void smtpd_milter_result_free(struct smtpd_milter_result *res);

#endif
