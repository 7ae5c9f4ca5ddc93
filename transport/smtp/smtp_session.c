/* smtp_session.c - SMTP server session: state bits, a flat {verb, handler, allowed states} table, DATA and
 * BDAT readers, AUTH through ix_sasl, STARTTLS through conn; policy decisions go to the backend table. */
#include "transport/smtp/smtp_session.h"
#include "transport/net/conn.h"
#include "common/err.h"
#include "common/log.h"
#include "common/spool.h"
#include "transport/net/sasl.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Session states, as bits so a command lists where it is allowed. */
enum {
	ST_INIT = 1u << 0,    /* connected, no HELO/EHLO yet (or again after STARTTLS) */
	ST_HELO = 1u << 1,    /* greeted, no transaction */
	ST_MAIL = 1u << 2,    /* MAIL accepted, no recipient yet */
	ST_RCPT = 1u << 3,    /* at least one recipient */
	ST_DATA = 1u << 4,    /* reading DATA */
	ST_BDAT = 1u << 5,    /* reading a BDAT chunk */
	ST_AUTH = 1u << 6,    /* SASL exchange: lines are responses */
	ST_DELIVER = 1u << 7, /* waiting for the backend to make the message durable */
	ST_END = 1u << 8,
	ST_AUTH_WAIT = 1u << 9,    /* a SASL step runs elsewhere (config.offload): nothing is read meanwhile */
	ST_BURL_WAIT = 1u << 10,   /* a BURL's content is fetched elsewhere (config.offload) */
	ST_FILTER_WAIT = 1u << 11, /* the backend's mail filters are asked about a stage (config.filter) */
};
/* States in which the session waits for work done elsewhere and must not end or be destroyed. */
#define ST_WAITING (ST_DELIVER | ST_AUTH_WAIT | ST_BURL_WAIT | ST_FILTER_WAIT)
#define ST_COMMAND (ST_INIT | ST_HELO | ST_MAIL | ST_RCPT)

struct smtp_session {
	struct evloop *loop;
	struct conn *conn;
	char peer_cert[TLS_FINGERPRINT_HEX + 1]; /* the client certificate's fingerprint, "" when none */
	const struct smtp_config *cfg;           /* points at cfg_copy: the caller's settings with defaults filled in */
	struct smtp_config cfg_copy;
	const struct smtp_backend *be;
	void *ctx;

	unsigned state;
	bool esmtp;
	char helo[SMTP_HELO_MAX + 1];

	/* the transaction */
	struct smtp_mail mail;
	struct smtp_rcpt *rcpts;
	size_t rcpt_count, rcpt_cap;
	struct spool msg; /* the message: in memory while small, then in a file (config.spool_dir) */
	struct buf chunk; /* what one read of DATA yields, on its way to msg */
	struct smtp_data data;
	unsigned long long bdat_left;
	unsigned long long body_len; /* message bytes received by BDAT so far */
	bool bdat_last, chunking;
	const char *bdat_error; /* the chunk is read and dropped, then this is the reply */
	/* BURL (RFC 4468): the URL of the fetch under way, LAST, then the content or the refusal */
	struct buf burl_url, burl_data;
	bool burl_last;
	const char *burl_refusal;

	unsigned errors, junk, messages;
	struct ix_sasl *sasl;
	char *auth_user;
	bool closing;
	bool conn_ended; /* the connection is gone while a delivery or an offloaded step is outstanding */
	/* an offloaded SASL step: its input, then its result */
	bool auth_step; /* a response line (else a start with mechanism and initial response) */
	char auth_mech[32];
	bool auth_has_ir;
	struct buf auth_in, auth_challenge, auth_why;
	int auth_r;
	unsigned auth_prev_state;                      /* where an exchange that fails returns to */
	struct evloop_timer session_timer, data_timer; /* config.session_max_msecs, config.data_max_msecs */
	struct evloop_timer auth_delay_timer;          /* config.auth_failure_delay_msecs */
	/* the stage the filters are asked about (config.filter), the state it was asked in, and its recipient */
	enum smtp_filter_stage filter_stage;
	unsigned filter_prev_state;
	struct smtp_rcpt filter_rcpt;
	const char *expired; /* a time limit passed while waiting for work elsewhere: said once it is done */
	bool shutdown;       /* the server is stopping (smtp_session_shutdown) */
};

static void reply(struct smtp_session *s, const char *text)
{
	conn_write_str(s->conn, text);
	conn_write(s->conn, "\r\n", 2);
}

static void close_session(struct smtp_session *s)
{
	s->closing = true;
	conn_close_after_flush(s->conn);
}

/* An error reply; past the limit the client is told and dropped. */
static void reply_error(struct smtp_session *s, const char *text)
{
	reply(s, text);
	if (++s->errors >= s->cfg->max_errors) {
		conn_printf(s->conn, "421 4.7.0 %s Too many errors\r\n", s->cfg->hostname);
		close_session(s);
	}
}

static void info_fill(const struct smtp_session *s, struct smtp_session_info *info)
{
	info->peer = conn_peer(s->conn);
	info->loopback = conn_peer_is_loopback(s->conn);
	info->tls = conn_is_tls(s->conn);
	info->helo = s->helo;
	info->auth_user = s->auth_user;
	info->peer_cert = s->peer_cert[0] != '\0' ? s->peer_cert : NULL;
	info->mail = (s->state & (ST_MAIL | ST_RCPT | ST_DATA | ST_BDAT | ST_DELIVER)) ? &s->mail : NULL;
}

static void transaction_reset(struct smtp_session *s)
{
	memset(&s->mail, 0, sizeof(s->mail));
	s->rcpt_count = 0;
	spool_reset(&s->msg);
	s->bdat_left = 0;
	s->body_len = 0;
	s->bdat_last = false;
	s->chunking = false;
	s->bdat_error = NULL;
	evloop_timer_stop(s->loop, &s->data_timer);
	s->state = s->helo[0] != '\0' ? ST_HELO : ST_INIT;
}

/* Tells config.refused of a refusal: of MAIL (no recipient), of one recipient, or of the transaction's message. */
static void tell_refused(struct smtp_session *s, const struct smtp_rcpt *rcpts, size_t n, const char *text)
{
	if (s->cfg->refused == NULL)
		return;
	struct smtp_session_info info;
	info_fill(s, &info);
	info.mail = &s->mail;
	s->cfg->refused(s->ctx, &info, rcpts, n, text);
}

/* The message of the transaction is refused with text: said to config.refused, then the transaction is over. */
static void message_refused(struct smtp_session *s, const char *text)
{
	if (s->rcpt_count > 0)
		tell_refused(s, s->rcpts, s->rcpt_count, text);
	transaction_reset(s);
	reply_error(s, text);
}

/* A time limit is up: the client hears which, and the connection closes. While a delivery or an offloaded step is
 * out the session cannot end: it says so when that work is done (smtp_session_delivered, offload_done). */
static void time_limit(struct smtp_session *s, const char *what)
{
	if (s->closing || s->state == ST_END)
		return;
	if (s->state & ST_WAITING) {
		s->expired = what;
		return;
	}
	log_info("smtp: %s: %s time limit reached", conn_peer(s->conn), what);
	conn_printf(s->conn, "421 4.4.2 %s %s time limit reached, closing connection\r\n", s->cfg->hostname, what);
	conn_set_idle_timeout(s->conn, s->cfg->idle_timeout_msecs); /* its time to read the 421 */
	close_session(s);
}

static void session_time_up(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	time_limit(ctx, "Session");
}

static void data_time_up(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	time_limit(ctx, "Message transfer");
}

/* The server is stopping: a session between commands (a BDAT transaction between its chunks is not) hears so and
 * closes; in any other state it is checked again once back between commands. */
static void shutdown_check(struct smtp_session *s)
{
	if (!s->shutdown || s->closing || !(s->state & (ST_COMMAND | ST_AUTH)) || s->chunking)
		return;
	log_info("smtp: %s: closed, the server is stopping", conn_peer(s->conn));
	conn_printf(s->conn, "421 4.3.2 %s Service shutting down, closing connection\r\n", s->cfg->hostname);
	close_session(s);
}

/* Once work done elsewhere is back: a limit that passed meanwhile, or a stop, ends the session now. */
static void expired_check(struct smtp_session *s)
{
	const char *what = s->expired;
	if (what != NULL) {
		s->expired = NULL;
		time_limit(s, what);
	}
	shutdown_check(s);
}

/* ---- message start: our Received: line ---- */

static void sanitize(char *out, size_t size, const char *in)
{
	size_t n = 0;
	for (; *in != '\0' && n + 1 < size; in++)
		out[n++] = (*in > 32 && *in < 127 && *in != '(' && *in != ')') ? *in : '_';
	out[n] = '\0';
}

static void add_received(struct smtp_session *s)
{
	char helo[SMTP_HELO_MAX + 1], date[64];
	sanitize(helo, sizeof(helo), s->helo);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	const char *proto = s->mail.smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP";
	buf_reset(&s->chunk);
	buf_printf(&s->chunk, "Received: from %s (%s)\r\n\tby %s with %s%s%s; %s\r\n", helo, conn_peer(s->conn),
		   s->cfg->hostname, proto, conn_is_tls(s->conn) ? "S" : "", s->auth_user != NULL ? "A" : "", date);
	spool_append(&s->msg, s->chunk.data, s->chunk.len);
	buf_reset(&s->chunk);
}

/* ---- delivery ---- */

static void deliver(struct smtp_session *s)
{
	struct smtp_envelope env = {
		.mail = &s->mail,
		.rcpts = s->rcpts,
		.rcpt_count = s->rcpt_count,
		.chunked = s->chunking,
	};
	struct buf err = BUF_INIT;
	if (spool_view(&s->msg, &env.message, &env.message_len, &err) != 0) {
		log_warn("smtp: %s: %s", conn_peer(s->conn), buf_cstr(&err));
		buf_free(&err);
		message_refused(s, "451 4.3.0 Cannot keep the message now, try again later");
		return;
	}
	buf_free(&err);
	struct smtp_session_info info;
	info_fill(s, &info);
	s->state = ST_DELIVER;
	evloop_timer_stop(s->loop, &s->data_timer); /* the message is in: the delivery is ours to finish */
	conn_pause_input(s->conn, true);
	s->be->deliver(s->ctx, s, &info, &env);
}

void smtp_session_delivered(struct smtp_session *s, const char *error_reply)
{
	if (s->state != ST_DELIVER)
		panic("smtp_session_delivered without a delivery");
	if (error_reply == NULL)
		s->messages++;
	else
		tell_refused(s, s->rcpts, s->rcpt_count, error_reply);
	transaction_reset(s);
	if (s->conn_ended) {
		s->state = ST_END;
		s->be->closed(s->ctx, s);
		return;
	}
	if (error_reply == NULL)
		reply(s, "250 2.0.0 Ok: queued");
	else
		reply_error(s, error_reply);
	conn_pause_input(s->conn, false);
	expired_check(s);
}

unsigned smtp_session_messages(const struct smtp_session *s)
{
	return s->messages;
}

/* ---- commands ---- */

/* The SCRAM the session offers: when the backend has verifiers and auth.scram is on, the -PLUS forms too inside
 * TLS when it is 2. */
static enum ix_sasl_scram_offer scram_offer(const struct smtp_session *s)
{
	if (s->be->scram == NULL || s->cfg->scram == 0)
		return IX_SASL_SCRAM_NONE;
	return conn_is_tls(s->conn) && s->cfg->scram >= 2 ? IX_SASL_SCRAM_PLUS : IX_SASL_SCRAM;
}

static bool burl_offered(const struct smtp_session *s)
{
	return s->cfg->submission && s->cfg->burl_imap != NULL && s->cfg->burl_fetch != NULL && s->cfg->offload != NULL;
}

static void ehlo_reply(struct smtp_session *s)
{
	conn_printf(s->conn, "250-%s\r\n", s->cfg->hostname);
	conn_write_str(s->conn, "250-PIPELINING\r\n");
	conn_printf(s->conn, "250-SIZE %llu\r\n", s->cfg->max_size);
	conn_write_str(s->conn, "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n");
	if (s->cfg->tls != NULL && !conn_is_tls(s->conn))
		conn_write_str(s->conn, "250-STARTTLS\r\n");
	if (s->cfg->auth && s->be->check_password != NULL) {
		struct buf mechs = BUF_INIT;
		ix_sasl_offered(conn_is_tls(s->conn) || conn_peer_is_loopback(s->conn), scram_offer(s),
				s->cfg->verifiers, &mechs);
		if (mechs.len > 0)
			conn_printf(s->conn, "250-AUTH%s\r\n", buf_cstr(&mechs));
		buf_free(&mechs);
	}
	if (burl_offered(s))
		conn_printf(s->conn, "250-BURL %s\r\n", s->cfg->burl_imap);
	conn_write_str(s->conn, "250-SMTPUTF8\r\n250-DSN\r\n250-BINARYMIME\r\n250 CHUNKING\r\n");
}

/* ---- the backend's mail filters (config.filter) ---- */

/* Asks the filters about stage when the backend has any: true when the session now waits for their answer
 * (smtp_session_filter_done), false when the command goes on at once. */
static bool filter_ask(struct smtp_session *s, enum smtp_filter_stage stage, const struct smtp_rcpt *rcpt)
{
	if (s->cfg->filter == NULL)
		return false;
	struct smtp_session_info info;
	info_fill(s, &info);
	if (stage == SMTP_FILTER_MAIL || stage == SMTP_FILTER_RCPT || stage == SMTP_FILTER_DATA)
		info.mail = &s->mail;
	if (!s->cfg->filter(s->ctx, s, stage, &info, rcpt))
		return false;
	s->filter_stage = stage;
	s->filter_prev_state = s->state;
	if (rcpt != NULL)
		s->filter_rcpt = *rcpt;
	s->state = ST_FILTER_WAIT;
	conn_pause_input(s->conn, true);
	return true;
}

static void greeting(struct smtp_session *s)
{
	conn_printf(s->conn, "220 %s ESMTP Interchange\r\n", s->cfg->hostname);
}

static void helo_accepted(struct smtp_session *s)
{
	if (s->esmtp)
		ehlo_reply(s);
	else
		conn_printf(s->conn, "250 %s\r\n", s->cfg->hostname);
}

static void cmd_helo(struct smtp_session *s, const struct smtp_command *cmd)
{
	size_t n = cmd->arg_len < SMTP_HELO_MAX ? cmd->arg_len : SMTP_HELO_MAX;
	memcpy(s->helo, cmd->arg, n);
	s->helo[n] = '\0';
	transaction_reset(s);
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	if (!filter_ask(s, SMTP_FILTER_HELO, NULL))
		helo_accepted(s);
}

static unsigned exts(const struct smtp_session *s)
{
	unsigned e = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN;
	if (s->cfg->auth)
		e |= SMTP_EXT_AUTH;
	return s->esmtp ? e : 0;
}

static void mail_refused(struct smtp_session *s, const char *refusal)
{
	tell_refused(s, NULL, 0, refusal);
	memset(&s->mail, 0, sizeof(s->mail));
	reply_error(s, refusal);
}

static void mail_accepted(struct smtp_session *s)
{
	s->state = ST_MAIL;
	s->junk = 0;
	reply(s, "250 2.1.0 Ok");
}

static void cmd_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (s->cfg->submission && s->auth_user == NULL) {
		reply_error(s, "530 5.7.0 Authentication required");
		return;
	}
	const char *err;
	if (smtp_parse_mail(cmd->arg, cmd->arg_len, exts(s), &s->mail, &err) < 0) {
		memset(&s->mail, 0, sizeof(s->mail));
		reply_error(s, err);
		return;
	}
	if (s->mail.has_size && s->mail.size > s->cfg->max_size) {
		tell_refused(s, NULL, 0, "552 5.3.4 Message size exceeds fixed maximum message size");
		memset(&s->mail, 0, sizeof(s->mail));
		reply_error(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if (s->mail.has_auth && s->auth_user == NULL)
		s->mail.has_auth = false; /* RFC 4954 5: not trusted from an unauthenticated client */
	if (s->cfg->mail_check != NULL) {
		struct smtp_session_info info;
		info_fill(s, &info);
		info.mail = &s->mail;
		const char *refusal = s->cfg->mail_check(s->ctx, &info, &s->mail);
		if (refusal != NULL) {
			mail_refused(s, refusal);
			return;
		}
	}
	if (!filter_ask(s, SMTP_FILTER_MAIL, NULL))
		mail_accepted(s);
}

/* A refusal of a permanent kind (5xx: unknown, denied) counts towards max_errors; a full mailbox or a lookup
 * failure does not. */
static void rcpt_refused(struct smtp_session *s, const struct smtp_rcpt *rcpt, const char *refusal)
{
	tell_refused(s, rcpt, 1, refusal);
	if (refusal[0] == '5')
		reply_error(s, refusal);
	else
		reply(s, refusal);
}

static void rcpt_accepted(struct smtp_session *s, const struct smtp_rcpt *rcpt)
{
	if (s->rcpt_count == s->rcpt_cap) {
		s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 4;
		s->rcpts = xrealloc(s->rcpts, s->rcpt_cap * sizeof(*s->rcpts));
	}
	s->rcpts[s->rcpt_count++] = *rcpt;
	s->state = ST_RCPT;
	reply(s, "250 2.1.5 Ok");
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_rcpt rcpt;
	const char *err;
	if (smtp_parse_rcpt(cmd->arg, cmd->arg_len, exts(s), s->mail.smtputf8, &rcpt, &err) < 0) {
		reply_error(s, err);
		return;
	}
	if (s->rcpt_count >= s->cfg->max_recipients) {
		tell_refused(s, &rcpt, 1, "452 4.5.3 Too many recipients");
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	struct smtp_session_info info;
	info_fill(s, &info);
	const char *reason = NULL;
	enum smtp_rcpt_verdict v = s->be->rcpt(s->ctx, &info, &rcpt, &reason);
	const char *refusal = NULL;
	switch (v) {
	case SMTP_RCPT_ACCEPT: break;
	case SMTP_RCPT_UNKNOWN: refusal = "550 5.1.1 Recipient address rejected: unknown user"; break;
	case SMTP_RCPT_FULL: refusal = "452 4.2.2 Mailbox full"; break;
	case SMTP_RCPT_DENIED: refusal = "550 5.7.1 Recipient address rejected: access denied"; break;
	case SMTP_RCPT_TEMPFAIL:
	default: refusal = "451 4.3.0 Recipient lookup failed, try again later"; break;
	}
	if (refusal != NULL) {
		rcpt_refused(s, &rcpt, reason != NULL ? reason : refusal);
		return;
	}
	if (!filter_ask(s, SMTP_FILTER_RCPT, &rcpt))
		rcpt_accepted(s, &rcpt);
}

static void data_start(struct smtp_session *s);

static void cmd_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	if (s->state != ST_RCPT) {
		reply_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (s->chunking || s->mail.body == SMTP_BODY_BINARYMIME) {
		reply_error(s, "503 5.5.1 Use BDAT for this transaction");
		return;
	}
	if (!filter_ask(s, SMTP_FILTER_DATA, NULL))
		data_start(s);
}

static void data_start(struct smtp_session *s)
{
	spool_reset(&s->msg);
	add_received(s);
	/* the limit applies to the message; our Received: line does not count */
	smtp_data_init(&s->data, s->cfg->bare_lf, s->cfg->max_size);
	s->state = ST_DATA;
	evloop_timer_start(s->loop, &s->data_timer, s->cfg->data_max_msecs, 0, data_time_up, s);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void data_finish(struct smtp_session *s)
{
	if (s->data.too_big) {
		message_refused(s, "552 5.3.4 Message too big");
		return;
	}
	if (s->cfg->max_line_length > 0 && s->data.longest_line > s->cfg->max_line_length) {
		message_refused(s, "552 5.3.4 Message line too long");
		return;
	}
	if (s->data.rejected) {
		message_refused(s, "550 5.6.0 Bare <LF> in message; lines must end with <CR><LF>");
		return;
	}
	deliver(s);
}

static void data_input(struct smtp_session *s)
{
	const char *in;
	size_t len = conn_input_peek(s->conn, &in), used;
	if (len == 0)
		return;
	int r = smtp_data_feed(&s->data, in, len, &s->chunk, &used);
	spool_append(&s->msg, s->chunk.data, s->chunk.len);
	buf_reset(&s->chunk);
	conn_input_consume(s->conn, used);
	if (r == SMTP_DATA_END)
		data_finish(s);
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_command *cmd)
{
	unsigned long long size;
	bool last;
	const char *err;
	if (smtp_parse_bdat(cmd->arg, cmd->arg_len, &size, &last, &err) < 0) {
		/* the size is unknown, so the stream cannot be followed: give up on this connection */
		reply(s, err);
		conn_printf(s->conn, "421 4.7.0 %s Closing connection\r\n", s->cfg->hostname);
		close_session(s);
		return;
	}
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_error = NULL;
	if (s->state != ST_RCPT)
		s->bdat_error = "554 5.5.1 No valid recipients";
	else if (size > s->cfg->max_size || s->body_len + size > s->cfg->max_size)
		s->bdat_error = "552 5.3.4 Message too big";
	s->body_len += size;
	if (s->bdat_error == NULL && !s->chunking) {
		spool_reset(&s->msg);
		add_received(s);
	}
	if (!evloop_timer_pending(&s->data_timer))
		evloop_timer_start(s->loop, &s->data_timer, s->cfg->data_max_msecs, 0, data_time_up, s);
	s->chunking = true;
	s->state = ST_BDAT;
}

static void bdat_input(struct smtp_session *s)
{
	while (s->bdat_left > 0) {
		const char *data;
		size_t want = s->bdat_left > (1u << 20) ? (1u << 20) : (size_t)s->bdat_left;
		size_t n = conn_read_bytes(s->conn, want, &data);
		if (n == 0)
			return;
		if (s->bdat_error == NULL)
			spool_append(&s->msg, data, n);
		s->bdat_left -= n;
	}
	if (s->bdat_error != NULL) {
		message_refused(s, s->bdat_error);
		return;
	}
	if (s->bdat_last) {
		deliver(s);
		return;
	}
	s->state = ST_RCPT;
	reply(s, "250 2.0.0 Chunk received");
}

/* BURL imap-url [LAST] (RFC 4468): the content the URL names is the next part of the message, fetched where the
 * blocking work runs (config.offload); a message may mix BURL and BDAT parts, and DATA is not taken after either. */
static void cmd_burl(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (!burl_offered(s)) {
		reply_error(s, "502 5.5.1 BURL not available");
		return;
	}
	if (s->auth_user == NULL) {
		reply_error(s, "530 5.7.0 Authentication required");
		return;
	}
	const char *arg = cmd->arg, *end = cmd->arg + cmd->arg_len;
	const char *sp = memchr(arg, ' ', cmd->arg_len);
	bool last = false;
	if (sp != NULL) {
		const char *p = sp;
		while (p < end && *p == ' ')
			p++;
		if ((size_t)(end - p) != 4 || strncasecmp(p, "LAST", 4) != 0) {
			reply_error(s, "501 5.5.4 Syntax: BURL imap-url [LAST]");
			return;
		}
		last = true;
	}
	if (s->state != ST_RCPT) {
		reply_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	buf_reset(&s->burl_url);
	buf_append(&s->burl_url, arg, (size_t)((sp != NULL ? sp : end) - arg));
	s->burl_last = last;
	s->burl_refusal = NULL;
	buf_reset(&s->burl_data);
	s->state = ST_BURL_WAIT;
	conn_pause_input(s->conn, true);
	s->cfg->offload(s->ctx, s);
}

/* The fetched content of a BURL, added to the message (or the refusal said). */
static void burl_finish(struct smtp_session *s)
{
	conn_pause_input(s->conn, false);
	if (s->conn_ended) {
		s->state = ST_END;
		s->be->closed(s->ctx, s);
		return;
	}
	s->state = ST_RCPT;
	if (s->burl_refusal != NULL) {
		message_refused(s, s->burl_refusal);
	} else if (s->body_len + s->burl_data.len > s->cfg->max_size) {
		message_refused(s, "552 5.3.4 Message too big");
	} else {
		if (!s->chunking) {
			spool_reset(&s->msg);
			add_received(s);
			if (!evloop_timer_pending(&s->data_timer))
				evloop_timer_start(s->loop, &s->data_timer, s->cfg->data_max_msecs, 0, data_time_up, s);
		}
		s->chunking = true;
		s->body_len += s->burl_data.len;
		spool_append(&s->msg, s->burl_data.data, s->burl_data.len);
		if (s->burl_last)
			deliver(s);
		else
			reply(s, "250 2.5.0 BURL content appended; waiting for more");
	}
	buf_free(&s->burl_data);
	expired_check(s);
}

static void cmd_rset(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	transaction_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	conn_printf(s->conn, "221 2.0.0 %s Bye\r\n", s->cfg->hostname);
	close_session(s);
}

static void cmd_vrfy(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply_error(s, "502 5.5.1 EXPN not available");
}

static void cmd_help(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT BURL RSET NOOP QUIT VRFY STARTTLS AUTH");
}

static void cmd_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	(void)cmd;
	if (s->cfg->tls == NULL) {
		reply_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (conn_is_tls(s->conn)) {
		reply_error(s, "503 5.5.1 TLS already active");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	size_t discarded = 0;
	if (conn_start_tls(s->conn, s->cfg->tls, NULL, &discarded) < 0)
		return;
	if (discarded > 0)
		log_warn("smtp: %s sent %zu bytes after STARTTLS; discarded", conn_peer(s->conn), discarded);
	/* RFC 3207 4.2: forget everything learned before TLS */
	s->helo[0] = '\0';
	s->esmtp = false;
	transaction_reset(s);
}

#define AUTH_BLOCKED_REPLY "454 4.7.0 Temporarily blocked after too many failed logins; try again later"

static void auth_result(struct smtp_session *s, int r, struct buf *challenge, const char *why)
{
	switch (r) {
	case IX_SASL_CONTINUE:
		s->state = ST_AUTH;
		conn_printf(s->conn, "334 %s\r\n", buf_cstr(challenge));
		return;
	case IX_SASL_DONE:
		free(s->auth_user);
		s->auth_user = xstrdup(ix_sasl_user(s->sasl));
		s->state = ST_HELO;
		reply(s, "235 2.7.0 Authentication successful");
		return;
	default: break;
	}
	s->state = ST_HELO;
	log_info("smtp: %s authentication failed: %s", conn_peer(s->conn), why);
	switch (r) {
	case IX_SASL_CANCELLED: reply_error(s, "501 5.0.0 Authentication cancelled"); break;
	case IX_EAUTH:
		if (s->cfg->auth_refused != NULL)
			s->cfg->auth_refused(s->ctx);
		reply_error(s, "535 5.7.8 Authentication credentials invalid");
		break;
	case IX_EPERM: reply_error(s, "538 5.7.11 Encryption required for requested authentication mechanism"); break;
	case IX_EUNAVAIL: reply(s, "454 4.7.0 Temporary authentication failure"); break;
	case IX_EBLOCKED: reply_error(s, AUTH_BLOCKED_REPLY); break;
	case IX_ELIMIT: reply_error(s, "500 5.5.6 Authentication exchange too long"); break;
	default: reply_error(s, "501 5.5.2 Cannot decode response or unknown mechanism"); break;
	}
}

/* Hands the SASL step described by the auth_* fields to config.offload; input waits until it is done. */
static void auth_offload(struct smtp_session *s)
{
	s->auth_prev_state = s->state == ST_AUTH ? ST_AUTH : ST_HELO;
	s->state = ST_AUTH_WAIT;
	conn_pause_input(s->conn, true);
	s->cfg->offload(s->ctx, s);
}

void smtp_session_offload_work(struct smtp_session *s)
{
	if (s->state == ST_BURL_WAIT) {
		s->burl_refusal = s->cfg->burl_fetch(s->ctx, s->auth_user, buf_cstr(&s->burl_url), s->burl_url.len,
						     &s->burl_data);
		return;
	}
	buf_reset(&s->auth_challenge);
	buf_reset(&s->auth_why);
	if (s->auth_step)
		s->auth_r = ix_sasl_step(s->sasl, buf_cstr(&s->auth_in), s->auth_in.len, &s->auth_challenge,
					 &s->auth_why);
	else
		s->auth_r = ix_sasl_start(s->sasl, s->auth_mech, s->auth_has_ir ? buf_cstr(&s->auth_in) : NULL,
					  s->auth_in.len, &s->auth_challenge, &s->auth_why);
}

/* The offloaded step's result, said (after the failure delay). */
static void auth_finish(struct smtp_session *s)
{
	if (s->conn_ended) {
		s->state = ST_END;
		s->be->closed(s->ctx, s);
		return;
	}
	s->state = s->auth_prev_state;
	auth_result(s, s->auth_r, &s->auth_challenge, buf_cstr(&s->auth_why));
	conn_pause_input(s->conn, false);
	expired_check(s);
}

static void auth_delay_due(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	auth_finish(ctx);
}

void smtp_session_offload_done(struct smtp_session *s)
{
	if (s->state == ST_BURL_WAIT) {
		burl_finish(s);
		return;
	}
	if (s->state != ST_AUTH_WAIT)
		panic("smtp_session_offload_done without offloaded work");
	buf_reset(&s->auth_in); /* it may hold a password */
	if (s->auth_r == IX_EAUTH && s->cfg->auth_failure_delay_msecs > 0 && !s->conn_ended) {
		/* still waiting: an end of the connection meanwhile is reported when the delay is over */
		evloop_timer_start(s->loop, &s->auth_delay_timer, s->cfg->auth_failure_delay_msecs, 0, auth_delay_due,
				   s);
		return;
	}
	auth_finish(s);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (!s->cfg->auth || s->be->check_password == NULL) {
		reply_error(s, "502 5.5.1 AUTH not available");
		return;
	}
	if (s->auth_user != NULL) {
		reply_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (s->cfg->auth_blocked != NULL && s->cfg->auth_blocked(s->ctx)) {
		reply_error(s, AUTH_BLOCKED_REPLY);
		return;
	}
	char mech[32];
	const char *ir;
	size_t ir_len;
	const char *err;
	if (smtp_parse_auth(cmd->arg, cmd->arg_len, mech, sizeof(mech), &ir, &ir_len, &err) < 0) {
		reply_error(s, err);
		return;
	}
	struct buf why = BUF_INIT, challenge = BUF_INIT;
	bool secure = conn_is_tls(s->conn) || conn_peer_is_loopback(s->conn);
	if (s->sasl == NULL) {
		if (ix_sasl_init("interchange", &why) < 0 ||
		    ix_sasl_create("smtp", s->cfg->hostname, secure, s->be->check_password, s->ctx, &s->sasl, &why) <
			    0) {
			log_error("smtp: SASL unavailable: %s", buf_cstr(&why));
			reply(s, "454 4.7.0 Temporary authentication failure");
			buf_free(&why);
			return;
		}
		ix_sasl_set_verifiers(s->sasl, s->cfg->verifiers);
	}
	ix_sasl_set_secure(s->sasl, secure);
	if (scram_offer(s) != IX_SASL_SCRAM_NONE)
		ix_sasl_set_scram(s->sasl, s->be->scram, s->be->scram_failed, s->ctx);
	struct scram_cbind cb;
	if (s->cfg->scram >= 2 && conn_channel_bindings(s->conn, &cb))
		ix_sasl_set_channel(s->sasl, &cb);
	if (s->cfg->offload != NULL) {
		s->auth_step = false;
		snprintf(s->auth_mech, sizeof(s->auth_mech), "%s", mech);
		s->auth_has_ir = ir != NULL;
		buf_reset(&s->auth_in);
		if (ir != NULL)
			buf_append(&s->auth_in, ir, ir_len);
		auth_offload(s);
		buf_free(&why);
		return;
	}
	int r = ix_sasl_start(s->sasl, mech, ir, ir_len, &challenge, &why);
	auth_result(s, r, &challenge, buf_cstr(&why));
	buf_free(&why);
	buf_free(&challenge);
}

static void auth_line(struct smtp_session *s, const char *line, size_t len)
{
	if (s->cfg->offload != NULL) {
		s->auth_step = true;
		buf_reset(&s->auth_in);
		buf_append(&s->auth_in, line, len);
		auth_offload(s);
		return;
	}
	struct buf why = BUF_INIT, challenge = BUF_INIT;
	int r = ix_sasl_step(s->sasl, line, len, &challenge, &why);
	auth_result(s, r, &challenge, buf_cstr(&why));
	buf_free(&why);
	buf_free(&challenge);
}

/* The command table: verb, handler, the states it is allowed in, and whether it counts as junk. */
static const struct smtp_command_rule {
	enum smtp_verb verb;
	void (*fn)(struct smtp_session *s, const struct smtp_command *cmd);
	unsigned states;
	bool junk;
} commands[] = {
	{ SMTP_VERB_EHLO, cmd_helo, ST_COMMAND, true },
	{ SMTP_VERB_HELO, cmd_helo, ST_COMMAND, true },
	{ SMTP_VERB_MAIL, cmd_mail, ST_HELO, false },
	{ SMTP_VERB_RCPT, cmd_rcpt, ST_MAIL | ST_RCPT, false },
	{ SMTP_VERB_DATA, cmd_data, ST_MAIL | ST_RCPT, false },
	{ SMTP_VERB_BDAT, cmd_bdat, ST_MAIL | ST_RCPT, false },
	{ SMTP_VERB_RSET, cmd_rset, ST_COMMAND, true },
	{ SMTP_VERB_NOOP, cmd_noop, ST_COMMAND, true },
	{ SMTP_VERB_QUIT, cmd_quit, ST_COMMAND, false },
	{ SMTP_VERB_VRFY, cmd_vrfy, ST_COMMAND, true },
	{ SMTP_VERB_EXPN, cmd_expn, ST_COMMAND, true },
	{ SMTP_VERB_HELP, cmd_help, ST_COMMAND, true },
	{ SMTP_VERB_STARTTLS, cmd_starttls, ST_INIT | ST_HELO, true },
	{ SMTP_VERB_AUTH, cmd_auth, ST_HELO, true },
	{ SMTP_VERB_BURL, cmd_burl, ST_MAIL | ST_RCPT, false },
};

static void dispatch(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *err;
	int r = smtp_parse_command(line, len, &cmd, &err);
	/* BDAT with a bad argument still has to be handled (its chunk cannot be skipped) */
	if (r < 0 && !(cmd.verb == SMTP_VERB_BDAT && cmd.arg_len > 0)) {
		reply_error(s, err);
		return;
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(commands); i++) {
		const struct smtp_command_rule *rule = &commands[i];
		if (rule->verb != cmd.verb)
			continue;
		if (rule->junk && ++s->junk > s->cfg->max_junk) {
			conn_printf(s->conn, "421 4.7.0 %s Too many commands\r\n", s->cfg->hostname);
			close_session(s);
			return;
		}
		if (!(rule->states & s->state)) {
			/* a BDAT out of sequence still carries a chunk: read and drop it */
			if (cmd.verb == SMTP_VERB_BDAT) {
				cmd_bdat(s, &cmd);
				return;
			}
			reply_error(s, s->state == ST_INIT && cmd.verb == SMTP_VERB_MAIL
					       ? "503 5.5.1 Send EHLO first"
					       : "503 5.5.1 Bad sequence of commands");
			return;
		}
		rule->fn(s, &cmd);
		return;
	}
	reply_error(s, "500 5.5.2 Command not recognized");
}

static void session_input(struct smtp_session *s)
{
	while (!s->closing) {
		if (s->state & ST_WAITING)
			return;
		shutdown_check(s); /* a message that just ended, with a stop meanwhile */
		if (s->closing)
			return;
		if (s->state == ST_DATA) {
			data_input(s);
			if (s->state == ST_DATA)
				return;
			continue;
		}
		if (s->state == ST_BDAT) {
			bdat_input(s);
			if (s->state == ST_BDAT)
				return;
			continue;
		}
		const char *line;
		size_t len;
		int r = conn_read_line(s->conn, SMTP_AUTH_LINE_MAX, 0, &line, &len);
		if (r == CONN_LINE_MORE)
			return;
		if (r == CONN_LINE_TOO_LONG) {
			if (s->state == ST_AUTH)
				s->state = ST_HELO;
			reply_error(s, "500 5.5.2 Line too long");
			continue;
		}
		if (s->state == ST_AUTH)
			auth_line(s, line, len);
		else
			dispatch(s, line, len);
	}
}

static void session_end(struct smtp_session *s)
{
	if (s->state == ST_END)
		return;
	if (s->state & ST_WAITING) {
		s->conn_ended = true; /* closed is reported once the backend finishes */
		return;
	}
	s->state = ST_END;
	s->be->closed(s->ctx, s);
}

static void session_event(struct conn *c, enum conn_event ev, void *ctx)
{
	struct smtp_session *s = ctx;
	(void)c;
	switch (ev) {
	case CONN_EVENT_INPUT: session_input(s); return;
	case CONN_EVENT_TLS_READY:
		if (!conn_peer_fingerprint(s->conn, s->peer_cert))
			s->peer_cert[0] = '\0';
		if (s->sasl != NULL)
			ix_sasl_set_secure(s->sasl, true);
		return;
	case CONN_EVENT_CONNECTED: return; /* not for server sessions */
	case CONN_EVENT_ERROR: log_info("smtp: %s: %s", conn_peer(s->conn), conn_error(s->conn)); break;
	case CONN_EVENT_TIMEOUT:
		log_info("smtp: %s: idle timeout", conn_peer(s->conn));
		if (!s->closing && !(s->state & ST_WAITING)) {
			conn_printf(s->conn, "421 4.4.2 %s Idle timeout, closing connection\r\n", s->cfg->hostname);
			close_session(s);
			return;
		}
		break;
	case CONN_EVENT_EOF:
	case CONN_EVENT_CLOSED: break;
	}
	session_end(s); /* s may be freed now */
}

struct smtp_session *smtp_session_create(struct evloop *loop, int fd, const struct smtp_config *config,
					 const struct smtp_backend *backend, void *ctx)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->cfg_copy = *config;
	struct smtp_config *c = &s->cfg_copy;
	if (c->hostname == NULL)
		c->hostname = "localhost";
	if (c->max_size == 0)
		c->max_size = SMTP_DEFAULT_MAX_SIZE;
	if (c->max_recipients == 0)
		c->max_recipients = SMTP_DEFAULT_MAX_RECIPIENTS;
	if (c->max_errors == 0)
		c->max_errors = SMTP_DEFAULT_MAX_ERRORS;
	if (c->max_junk == 0)
		c->max_junk = SMTP_DEFAULT_MAX_JUNK;
	if (c->idle_timeout_msecs == 0)
		c->idle_timeout_msecs = SMTP_DEFAULT_IDLE_MSECS;
	if (c->session_max_msecs == 0)
		c->session_max_msecs = SMTP_DEFAULT_SESSION_MSECS;
	if (c->data_max_msecs == 0)
		c->data_max_msecs = SMTP_DEFAULT_DATA_MSECS;
	s->cfg = c;
	s->be = backend;
	s->ctx = ctx;
	s->state = ST_INIT;
	spool_init(&s->msg, c->spool_dir);
	buf_init(&s->chunk);
	s->conn = conn_create(loop, fd, session_event, s);
	conn_set_input_max(s->conn, 2 * SMTP_AUTH_LINE_MAX + 4096);
	conn_set_idle_timeout(s->conn, c->idle_timeout_msecs);
	evloop_timer_start(loop, &s->session_timer, c->session_max_msecs, 0, session_time_up, s);
	if (c->implicit_tls && c->tls != NULL)
		conn_start_tls(s->conn, c->tls, NULL, NULL); /* the greeting waits for the handshake */
	if (!filter_ask(s, SMTP_FILTER_CONNECT, NULL))
		greeting(s);
	return s;
}

void smtp_session_filter_done(struct smtp_session *s, const char *reply)
{
	if (s->state != ST_FILTER_WAIT)
		panic("smtp_session_filter_done without a question to the filters");
	s->state = s->filter_prev_state;
	conn_pause_input(s->conn, false);
	if (s->conn_ended) {
		s->state = ST_END;
		s->be->closed(s->ctx, s);
		return;
	}
	switch (s->filter_stage) {
	case SMTP_FILTER_CONNECT: greeting(s); break;
	case SMTP_FILTER_HELO:
		if (reply == NULL) {
			helo_accepted(s);
			break;
		}
		s->helo[0] = '\0';
		s->esmtp = false;
		s->state = ST_INIT;
		reply_error(s, reply);
		break;
	case SMTP_FILTER_MAIL:
		if (reply != NULL)
			mail_refused(s, reply);
		else
			mail_accepted(s);
		break;
	case SMTP_FILTER_RCPT:
		if (reply != NULL)
			rcpt_refused(s, &s->filter_rcpt, reply);
		else
			rcpt_accepted(s, &s->filter_rcpt);
		break;
	case SMTP_FILTER_DATA:
		if (reply != NULL)
			message_refused(s, reply);
		else
			data_start(s);
		break;
	}
	expired_check(s);
}

void smtp_session_shutdown(struct smtp_session *s)
{
	s->shutdown = true;
	shutdown_check(s);
}

void smtp_session_destroy(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;
	if (s == NULL)
		return;
	if (s->state & ST_WAITING)
		panic("smtp_session_destroy during a delivery or an offloaded step");
	evloop_timer_stop(s->loop, &s->session_timer);
	evloop_timer_stop(s->loop, &s->data_timer);
	evloop_timer_stop(s->loop, &s->auth_delay_timer);
	conn_destroy(&s->conn);
	ix_sasl_destroy(&s->sasl);
	free(s->auth_user);
	free(s->rcpts);
	spool_free(&s->msg);
	buf_free(&s->chunk);
	buf_free(&s->auth_in);
	buf_free(&s->auth_challenge);
	buf_free(&s->auth_why);
	buf_free(&s->burl_url);
	buf_free(&s->burl_data);
	free(s);
	*sp = NULL;
}
