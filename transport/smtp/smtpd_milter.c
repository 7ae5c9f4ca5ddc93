/* smtpd_milter.c - ix-smtpd's side of the mail filters: a session's connections to them, the macros it tells them,
 * their verdict at each SMTP stage and at the end of the message applied to the reply, their changes turned back into
 * an envelope and a message, every verdict in the tracking log. */
#include "transport/smtp/smtpd_milter.h"
#include "transport/milter/milter.h"
#include "transport/mta/dsn.h"
#include "transport/mta/queue.h"
#include "common/endpoint.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One filter of the session. */
struct filter {
	struct endpoint ep;
	struct milter *m; /* NULL before CONNECT, and once it cannot be used */
	bool failed;      /* cannot be used (why): smtp.milter_default from then on */
	char why[300];
};

enum { MACRO_J, MACRO_DAEMON, MACRO_V, MACRO_UNDERSCORE, MACRO_CLIENT_ADDR, MACRO_CLIENT_NAME, MACRO_I, MACRO_AUTH };

struct smtpd_milters {
	char *milters, *hostname, *domain, *peer, *data_dir;
	unsigned timeout_ms;
	unsigned long long max_size;
	bool tempfail;
	struct filter f[ENDPOINT_LIST_MAX];
	size_t n;
	bool bad_list; /* smtp.milters does not parse (server set checks it): every stage waits (451) */
	bool discard;  /* a filter discarded the transaction's message at MAIL, RCPT or DATA */
	/* what the filters are told: the macros' values change at each stage */
	char underscore[128], qid[QUEUE_ID_MAX + 1], auth[256];
	struct milter_macro macros[MACRO_AUTH + 1];
	struct milter_client client;
};

static const char *const stage_names[] = {
	[SMTP_FILTER_CONNECT] = "CONNECT", [SMTP_FILTER_HELO] = "HELO", [SMTP_FILTER_MAIL] = "MAIL",
	[SMTP_FILTER_RCPT] = "RCPT",       [SMTP_FILTER_DATA] = "DATA",
};

struct smtpd_milters *smtpd_milters_create(const struct smtpd_milter_config *c)
{
	struct smtpd_milters *f = xcalloc(1, sizeof(*f));
	f->milters = xstrdup(c->milters);
	f->hostname = xstrdup(c->hostname);
	f->domain = xstrdup(c->domain);
	f->peer = xstrdup(c->peer);
	f->data_dir = xstrdup(c->data_dir);
	f->timeout_ms = c->timeout_ms;
	f->max_size = c->max_size;
	f->tempfail = c->tempfail;
	struct endpoint ep[ENDPOINT_LIST_MAX];
	char why[512];
	if (endpoint_list_parse(f->milters, ep, ENDPOINT_LIST_MAX, &f->n, why, sizeof(why)) < 0) {
		/* server set checks the list; one written around it is not used, and mail waits (451) */
		log_error("the mail filters cannot be used: %s", why);
		f->bad_list = true;
		f->n = 0;
	}
	for (size_t i = 0; i < f->n; i++)
		f->f[i].ep = ep[i];
	bool ip = f->peer[0] != '\0' && strcmp(f->peer, "local") != 0 && strcmp(f->peer, "unknown") != 0;
	snprintf(f->underscore, sizeof(f->underscore), "unknown [%s]", f->peer);
	f->macros[MACRO_J] = (struct milter_macro){ "j", f->hostname };
	f->macros[MACRO_DAEMON] = (struct milter_macro){ "{daemon_name}", f->hostname };
	f->macros[MACRO_V] = (struct milter_macro){ "v", "Interchange" };
	f->macros[MACRO_UNDERSCORE] = (struct milter_macro){ "_", f->underscore };
	f->macros[MACRO_CLIENT_ADDR] = (struct milter_macro){ "{client_addr}", ip ? f->peer : "" };
	f->macros[MACRO_CLIENT_NAME] = (struct milter_macro){ "{client_name}", "unknown" };
	f->macros[MACRO_I] = (struct milter_macro){ "{i}", f->qid };
	f->macros[MACRO_AUTH] = (struct milter_macro){ "{auth_authen}", f->auth };
	f->client = (struct milter_client){
		.addr = ip ? f->peer : "",
		.name = "unknown",
		.macros = f->macros,
		.nmacros = MACRO_AUTH + 1,
		.timeout_ms = f->timeout_ms,
		.max_size = f->max_size,
	};
	return f;
}

void smtpd_milters_destroy(struct smtpd_milters **fp)
{
	struct smtpd_milters *f = *fp;
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		milter_close(&f->f[i].m);
	free(f->milters);
	free(f->hostname);
	free(f->domain);
	free(f->peer);
	free(f->data_dir);
	free(f);
	*fp = NULL;
}

/* The macros of the stage: the transaction's queue id, the login (an empty value is not told). */
static void macros_set(struct smtpd_milters *f, const char *queue_id, const char *auth_user)
{
	snprintf(f->qid, sizeof(f->qid), "%s", queue_id != NULL ? queue_id : "");
	snprintf(f->auth, sizeof(f->auth), "%s", auth_user != NULL ? auth_user : "");
}

/* The address a recipient is known by (the filters see it, and its changes are matched against it). */
static void rcpt_text(const struct smtpd_milters *f, const struct smtp_rcpt *r, char *out, size_t size)
{
	if (r->to.postmaster)
		snprintf(out, size, "postmaster@%s", f->domain);
	else
		smtp_path_string(&r->to, out, size);
}

/* One "filtered" event in the tracking log for each of the n recipients (or one with none): so that `track
 * ADDRESS` finds a refused message, or a refused recipient, too. */
static void track(const struct smtpd_milters *f, const char *queue_id, const char *msgid, const char *from,
		  const char *const *rcpts, size_t n, const char *filter, const char *what, const char *done)
{
	char *detail = xasprintf("%s: %s%s%s", filter, what, done != NULL && done[0] != '\0' ? "; " : "",
				 done != NULL ? done : "");
	char id[QUEUE_ID_MAX + 1];
	if (queue_id == NULL)
		queue_new_id(id);
	for (size_t i = 0; i < n || (i == 0 && n == 0); i++)
		track_log(f->data_dir, "filtered", queue_id != NULL ? queue_id : id, msgid != NULL ? msgid : "-",
			  from != NULL ? from : "-", n > 0 ? rcpts[i] : "-", f->hostname, detail);
	log_info("%s %s: filter %s", queue_id != NULL ? "message" : "client", queue_id != NULL ? queue_id : f->peer,
		 detail);
	free(detail);
}

/* A filter cannot be used (why): it is skipped from then on, and under smtp.milter_default tempfail every stage
 * gets 451. What the tracking log says of it. */
static char *failed_text(const struct smtpd_milters *f, const struct filter *fl)
{
	return xasprintf("not usable (%s): %s", fl->why,
			 f->tempfail ? "smtp.milter_default tempfail, " MILTER_TEMPFAIL_REPLY
				     : "smtp.milter_default accept, skipped");
}

static void filter_failed(struct filter *fl, const struct buf *err)
{
	fl->failed = true;
	snprintf(fl->why, sizeof(fl->why), "%s", buf_cstr(err));
	milter_close(&fl->m);
}

char *smtpd_milters_stage(struct smtpd_milters *f, const struct smtpd_milter_stage *st)
{
	if (f->bad_list)
		return xstrdup(MILTER_TEMPFAIL_REPLY);
	if (st->stage == SMTP_FILTER_MAIL)
		f->discard = false;
	macros_set(f, st->stage >= SMTP_FILTER_MAIL ? st->queue_id : NULL, st->auth_user);
	const char *rcpts[1] = { st->rcpt };
	size_t nrcpts = st->stage == SMTP_FILTER_RCPT ? 1 : 0;
	const char *from = st->stage >= SMTP_FILTER_MAIL ? st->sender : NULL;
	const char *qid = st->stage >= SMTP_FILTER_MAIL ? st->queue_id : NULL;
	static const enum milter_event events[] = {
		[SMTP_FILTER_CONNECT] = MILTER_EV_CONNECT, [SMTP_FILTER_HELO] = MILTER_EV_HELO,
		[SMTP_FILTER_MAIL] = MILTER_EV_MAIL,       [SMTP_FILTER_RCPT] = MILTER_EV_RCPT,
		[SMTP_FILTER_DATA] = MILTER_EV_DATA,
	};
	const char *arg = st->stage == SMTP_FILTER_HELO   ? st->helo
			  : st->stage == SMTP_FILTER_MAIL ? st->sender
			  : st->stage == SMTP_FILTER_RCPT ? st->rcpt
							  : "";
	struct buf err = BUF_INIT;
	char *refusal = NULL;
	for (size_t i = 0; i < f->n && refusal == NULL; i++) {
		struct filter *fl = &f->f[i];
		buf_reset(&err);
		if (!fl->failed && fl->m == NULL) {
			if (st->stage != SMTP_FILTER_CONNECT)
				continue; /* not connected: the session began before it was in the list */
			if ((fl->m = milter_open(&fl->ep, &f->client, &err)) == NULL) {
				filter_failed(fl, &err);
				char *what = failed_text(f, fl);
				track(f, qid, NULL, from, rcpts, nrcpts, fl->ep.text, what, NULL);
				free(what);
			}
		}
		if (fl->failed) {
			if (f->tempfail)
				refusal = xstrdup(MILTER_TEMPFAIL_REPLY);
			continue;
		}
		enum milter_verdict v;
		char reply[MILTER_REPLY_MAX];
		if (milter_event(fl->m, events[st->stage], arg, &v, reply, &err) < 0) {
			filter_failed(fl, &err);
			char *what = failed_text(f, fl);
			track(f, qid, NULL, from, rcpts, nrcpts, fl->ep.text, what, NULL);
			free(what);
			if (f->tempfail)
				refusal = xstrdup(MILTER_TEMPFAIL_REPLY);
			continue;
		}
		if (v == MILTER_PASS)
			continue;
		char *what = v == MILTER_DISCARD ? xasprintf("discard at %s", stage_names[st->stage])
						 : xasprintf("%s at %s %s", v == MILTER_REJECT ? "reject" : "tempfail",
							     stage_names[st->stage], reply);
		track(f, qid, NULL, from, rcpts, nrcpts, fl->ep.text, what, NULL);
		free(what);
		if (v == MILTER_DISCARD)
			f->discard = true; /* the message is taken and dropped at its end: the others are not asked */
		else
			refusal = xstrdup(reply);
		if (v == MILTER_DISCARD)
			break;
	}
	buf_free(&err);
	if (st->stage == SMTP_FILTER_CONNECT || st->stage == SMTP_FILTER_HELO) {
		/* a refusal of the session refuses its transactions: the filter (or smtp.milter_default for one that
		 * failed) gives it again at each MAIL. The greeting itself is answered, so that another server of ours,
		 * known by its certificate only after STARTTLS and not asked from MAIL on, still relays */
		free(refusal);
		refusal = NULL;
	}
	return refusal;
}

/* The filters' recipients as the envelope's: a recipient the client gave keeps its DSN parameters; one a filter
 * added is parsed as a path (a filter's address that is not one is left out, and logged). */
static void take_rcpts(const struct smtpd_milters *f, const char *queue_id, const struct smtp_envelope *env,
		       const struct milter_txn *t, struct smtpd_milter_result *res)
{
	res->rcpts = xcalloc(t->nrcpts + 1, sizeof(*res->rcpts));
	res->nrcpts = 0;
	char addr[SMTP_PATH_MAX_UTF8 + 64];
	for (size_t i = 0; i < t->nrcpts; i++) {
		const struct smtp_rcpt *orig = NULL;
		for (size_t k = 0; k < env->rcpt_count && orig == NULL; k++) {
			rcpt_text(f, &env->rcpts[k], addr, sizeof(addr));
			if (strcasecmp(addr, t->rcpts[i]) == 0)
				orig = &env->rcpts[k];
		}
		struct smtp_rcpt *r = &res->rcpts[res->nrcpts];
		if (orig != NULL) {
			*r = *orig;
			res->nrcpts++;
			continue;
		}
		char *path = xasprintf("<%s>", t->rcpts[i]);
		size_t used;
		const char *why = NULL;
		if (smtp_parse_path(path, strlen(path), SMTP_PATH_UTF8, &r->to, &used, &why) == 0 &&
		    used == strlen(path))
			res->nrcpts++;
		else
			log_warn("message %s: a filter's recipient %s is not an address: left out", queue_id, path);
		free(path);
	}
	res->rcpts_changed = true;
}

static bool take_sender(const char *queue_id, const struct smtp_envelope *env, const char *sender,
			struct smtpd_milter_result *res)
{
	char *path = xasprintf("<%s>", sender);
	size_t used;
	const char *why = NULL;
	res->mail = *env->mail;
	bool ok = smtp_parse_path(path, strlen(path), SMTP_PATH_UTF8 | SMTP_PATH_ALLOW_NULL, &res->mail.from, &used,
				  &why) == 0 &&
		  used == strlen(path);
	if (!ok)
		log_warn("message %s: a filter's sender %s is not an address: the sender is kept", queue_id, path);
	free(path);
	res->sender_changed = ok;
	return ok;
}

enum smtpd_milter_outcome smtpd_milters_message(struct smtpd_milters *f, const char *queue_id, const char *auth_user,
						const struct smtp_envelope *env, const char *message, size_t len,
						struct smtpd_milter_result *res_r, char **reply_r)
{
	memset(res_r, 0, sizeof(*res_r));
	*reply_r = NULL;
	if (f->bad_list) {
		*reply_r = xstrdup(MILTER_TEMPFAIL_REPLY);
		return SMTPD_MILTER_REFUSE;
	}
	macros_set(f, queue_id, auth_user);
	char from[SMTP_PATH_MAX_UTF8 + 1];
	smtp_path_string(&env->mail->from, from, sizeof(from));
	char **rcpts = xcalloc(env->rcpt_count + 1, sizeof(char *));
	for (size_t i = 0; i < env->rcpt_count; i++) {
		char addr[SMTP_PATH_MAX_UTF8 + 64];
		rcpt_text(f, &env->rcpts[i], addr, sizeof(addr));
		rcpts[i] = xstrdup(addr);
	}
	char msgid[DSN_HEADER_VALUE_MAX + 1]; /* track ID finds a refused message too */
	dsn_header_value(message, len, "Message-ID", msgid, sizeof(msgid));
	if (msgid[0] == '\0')
		snprintf(msgid, sizeof(msgid), "-");
	const char *const *given = (const char *const *)rcpts;
	struct milter_txn t;
	milter_txn_init(&t, from, given, env->rcpt_count, message, len);
	enum smtpd_milter_outcome out = f->discard ? SMTPD_MILTER_DISCARD : SMTPD_MILTER_DELIVER;
	if (f->discard)
		track(f, queue_id, msgid, from, given, env->rcpt_count, "filters", "discarded before the message",
		      NULL);
	struct buf err = BUF_INIT;
	for (size_t i = 0; i < f->n && out == SMTPD_MILTER_DELIVER; i++) {
		struct filter *fl = &f->f[i];
		buf_reset(&err);
		if (!fl->failed && fl->m == NULL)
			continue; /* not connected: the session began before it was in the list */
		if (!fl->failed && milter_message(fl->m, &t, &err) < 0)
			filter_failed(fl, &err);
		if (fl->failed) {
			/* said for every message it did not see, so that `track` shows why */
			char *what = failed_text(f, fl);
			track(f, queue_id, msgid, from, given, env->rcpt_count, fl->ep.text, what, NULL);
			free(what);
			if (f->tempfail) {
				*reply_r = xstrdup(MILTER_TEMPFAIL_REPLY);
				out = SMTPD_MILTER_REFUSE;
			}
			continue;
		}
		switch (t.verdict) {
		case MILTER_PASS:
			track(f, queue_id, msgid, from, given, env->rcpt_count, fl->ep.text, "passed",
			      buf_cstr(&t.done));
			break;
		case MILTER_DISCARD:
			track(f, queue_id, msgid, from, given, env->rcpt_count, fl->ep.text, "discard",
			      buf_cstr(&t.done));
			out = SMTPD_MILTER_DISCARD;
			break;
		default: {
			char *what = xasprintf("%s %s", t.verdict == MILTER_REJECT ? "reject" : "tempfail", t.reply);
			track(f, queue_id, msgid, from, given, env->rcpt_count, fl->ep.text, what, buf_cstr(&t.done));
			free(what);
			*reply_r = xstrdup(t.reply);
			out = SMTPD_MILTER_REFUSE;
			break;
		}
		}
	}
	if (out == SMTPD_MILTER_DELIVER) {
		if (t.changed) {
			const char *m;
			size_t mlen;
			milter_txn_message(&t, &m, &mlen);
			buf_append(&res_r->message, m, mlen);
		}
		if (t.envelope) {
			if (strcmp(t.sender, from) != 0)
				take_sender(queue_id, env, t.sender, res_r);
			take_rcpts(f, queue_id, env, &t, res_r);
		}
		res_r->quarantine = t.quarantine;
		if (res_r->rcpts_changed && res_r->nrcpts == 0) {
			/* the filters took every recipient away: nothing is left to deliver */
			out = SMTPD_MILTER_DISCARD;
		}
	}
	for (size_t i = 0; i < env->rcpt_count; i++)
		free(rcpts[i]);
	free(rcpts);
	buf_free(&err);
	milter_txn_free(&t);
	return out;
}

void smtpd_milter_result_free(struct smtpd_milter_result *res)
{
	free(res->rcpts);
	buf_free(&res->message);
	memset(res, 0, sizeof(*res));
}
