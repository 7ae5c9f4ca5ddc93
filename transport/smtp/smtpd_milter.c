/* smtpd_milter.c - ix-smtpd's side of the mail filters: the macros it tells them, their verdicts applied to the
 * SMTP reply, their changes turned back into an envelope and a message, every verdict in the tracking log. */
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

/* The address a recipient is known by (the filters see it, and its changes are matched against it). */
static void rcpt_text(const struct smtpd_milter_in *in, const struct smtp_rcpt *r, char *out, size_t size)
{
	if (r->to.postmaster)
		snprintf(out, size, "postmaster@%s", in->domain);
	else
		smtp_path_string(&r->to, out, size);
}

/* One "filtered" event per recipient the client gave (so that `track ADDRESS` finds a refused message too). */
static void track(const struct smtpd_milter_in *in, const struct smtp_envelope *env, const char *msgid,
		  const struct milter_txn *t, const char *filter, const char *what)
{
	char *detail = xasprintf("%s: %s%s%s", filter, what, t != NULL && t->done.len > 0 ? "; " : "",
				 t != NULL ? buf_cstr(&t->done) : "");
	char from[SMTP_PATH_MAX_UTF8 + 1], to[SMTP_PATH_MAX_UTF8 + 64];
	smtp_path_string(&env->mail->from, from, sizeof(from));
	for (size_t i = 0; i < env->rcpt_count; i++) {
		rcpt_text(in, &env->rcpts[i], to, sizeof(to));
		track_log(in->data_dir, "filtered", in->queue_id, msgid, from, to, in->hostname, detail);
	}
	log_info("message %s: filter %s", in->queue_id, detail);
	free(detail);
}

/* The filters' recipients as the envelope's: a recipient the client gave keeps its DSN parameters; one a filter
 * added is parsed as a path (a filter's address that is not one is left out, and logged). */
static void take_rcpts(const struct smtpd_milter_in *in, const struct smtp_envelope *env, const struct milter_txn *t,
		       struct smtpd_milter_result *res)
{
	res->rcpts = xcalloc(t->nrcpts + 1, sizeof(*res->rcpts));
	res->nrcpts = 0;
	char addr[SMTP_PATH_MAX_UTF8 + 64];
	for (size_t i = 0; i < t->nrcpts; i++) {
		const struct smtp_rcpt *orig = NULL;
		for (size_t k = 0; k < env->rcpt_count && orig == NULL; k++) {
			rcpt_text(in, &env->rcpts[k], addr, sizeof(addr));
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
			log_warn("message %s: a filter's recipient %s is not an address: left out", in->queue_id, path);
		free(path);
	}
	res->rcpts_changed = true;
}

static bool take_sender(const struct smtpd_milter_in *in, const struct smtp_envelope *env, const char *sender,
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
		log_warn("message %s: a filter's sender %s is not an address: the sender is kept", in->queue_id, path);
	free(path);
	res->sender_changed = ok;
	return ok;
}

enum smtpd_milter_outcome smtpd_milter_run(const struct smtpd_milter_in *in, const struct smtp_envelope *env,
					   const char *message, size_t len, struct smtpd_milter_result *res_r,
					   char **reply_r)
{
	memset(res_r, 0, sizeof(*res_r));
	*reply_r = NULL;
	struct endpoint ep[ENDPOINT_LIST_MAX];
	size_t nep = 0;
	char why[512];
	if (endpoint_list_parse(in->milters, ep, ENDPOINT_LIST_MAX, &nep, why, sizeof(why)) < 0) {
		/* server set checks the list; one written around it is not used, and mail waits (451) */
		log_error("the mail filters cannot be used: %s", why);
		*reply_r = xstrdup(MILTER_TEMPFAIL_REPLY);
		return SMTPD_MILTER_REFUSE;
	}
	if (nep == 0)
		return SMTPD_MILTER_DELIVER;

	char from[SMTP_PATH_MAX_UTF8 + 1];
	smtp_path_string(&env->mail->from, from, sizeof(from));
	char **rcpts = xcalloc(env->rcpt_count + 1, sizeof(char *));
	for (size_t i = 0; i < env->rcpt_count; i++) {
		char addr[SMTP_PATH_MAX_UTF8 + 64];
		rcpt_text(in, &env->rcpts[i], addr, sizeof(addr));
		rcpts[i] = xstrdup(addr);
	}
	struct milter_txn t;
	milter_txn_init(&t, from, (const char *const *)rcpts, env->rcpt_count, message, len);
	for (size_t i = 0; i < env->rcpt_count; i++)
		free(rcpts[i]);
	free(rcpts);

	bool ip = in->peer[0] != '\0' && strcmp(in->peer, "local") != 0 && strcmp(in->peer, "unknown") != 0;
	char underscore[128];
	snprintf(underscore, sizeof(underscore), "unknown [%s]", in->peer);
	const struct milter_macro macros[] = {
		{ "j", in->hostname },
		{ "{daemon_name}", in->hostname },
		{ "v", "Interchange" },
		{ "_", underscore },
		{ "{client_addr}", ip ? in->peer : "" },
		{ "{client_name}", "unknown" },
		{ "{i}", in->queue_id },
		{ "{auth_authen}", in->auth_user != NULL ? in->auth_user : "" },
	};
	const struct milter_client client = {
		.addr = ip ? in->peer : "",
		.name = "unknown",
		.helo = in->helo,
		.macros = macros,
		.nmacros = in->auth_user != NULL ? IX_ARRAY_LEN(macros) : IX_ARRAY_LEN(macros) - 1,
		.timeout_ms = in->timeout_ms,
		.max_size = in->max_size,
	};
	enum smtpd_milter_outcome out = SMTPD_MILTER_DELIVER;
	struct buf err = BUF_INIT;
	char msgid[DSN_HEADER_VALUE_MAX + 1]; /* track ID finds a refused message too */
	dsn_header_value(message, len, "Message-ID", msgid, sizeof(msgid));
	if (msgid[0] == '\0')
		snprintf(msgid, sizeof(msgid), "-");
	for (size_t i = 0; i < nep && out == SMTPD_MILTER_DELIVER; i++) {
		buf_reset(&err);
		if (milter_run(&ep[i], &client, &t, &err) < 0) {
			char *what = xasprintf("not usable (%s): %s", buf_cstr(&err),
					       in->tempfail ? "smtp.milter_default tempfail, " MILTER_TEMPFAIL_REPLY
							    : "smtp.milter_default accept, skipped");
			track(in, env, msgid, NULL, ep[i].text, what);
			free(what);
			if (in->tempfail) {
				*reply_r = xstrdup(MILTER_TEMPFAIL_REPLY);
				out = SMTPD_MILTER_REFUSE;
			}
			continue;
		}
		switch (t.verdict) {
		case MILTER_PASS: track(in, env, msgid, &t, ep[i].text, "passed"); break;
		case MILTER_DISCARD:
			track(in, env, msgid, &t, ep[i].text, "discard");
			out = SMTPD_MILTER_DISCARD;
			break;
		default: {
			char *what = xasprintf("%s %s", t.verdict == MILTER_REJECT ? "reject" : "tempfail", t.reply);
			track(in, env, msgid, &t, ep[i].text, what);
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
				take_sender(in, env, t.sender, res_r);
			take_rcpts(in, env, &t, res_r);
		}
		res_r->quarantine = t.quarantine;
		if (res_r->rcpts_changed && res_r->nrcpts == 0) {
			/* the filters took every recipient away: nothing is left to deliver */
			out = SMTPD_MILTER_DISCARD;
		}
	}
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
