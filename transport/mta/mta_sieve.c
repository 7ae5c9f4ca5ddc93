/* mta_sieve.c - final delivery through a mailbox's active Sieve script, shared by ix-smtpd (mail delivered
 * directly) and ix-mta (deferred local deliveries): runs the script and carries out its actions (folders, flags,
 * redirects under the forwarding policy, vacation replies through the queue, rejects); a failing script keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/dir.h"
#include "store/store.h"
#include "transport/mta/dsn.h"
#include "transport/mta/mta.h"
#include "transport/mta/queue.h"
#include "transport/sieve/sieve.h"

struct world {
	const struct mta_sieve_ctx *c;
	const char *guid;
};

static int w_mailbox_exists(void *ctx, const char *name)
{
	struct world *w = ctx;
	struct store_folder_info info;
	if (store_folder_status(w->c->store, w->guid, name, NULL, &info, NULL) != IX_OK)
		return 0;
	store_folder_info_free(&info);
	return 1;
}

static int w_include(void *ctx, const char *location, const char *name, char **text_r, size_t *len_r)
{
	struct world *w = ctx;
	if (strcmp(location, "global") == 0) /* the organisation's, from the directory every server replicates */
		return w->c->dir != NULL && dir_sieve_global(w->c->dir, name, text_r, len_r) == IX_OK ? 0 : -1;
	struct buf t = BUF_INIT;
	if (store_sieve_get(w->c->store, w->guid, name, &t, NULL) != IX_OK) {
		buf_free(&t);
		return -1;
	}
	*len_r = t.len;
	*text_r = buf_steal(&t);
	return 0;
}

static int w_seen(void *ctx, const char *key, size_t len, long long seconds, int just_check)
{
	struct world *w = ctx;
	int r = store_sieve_seen(w->c->store, w->guid, key, len, seconds, just_check, NULL);
	return r == 1; /* an error counts as not seen: at worst one reply too many */
}

/* "\\Seen $Label" -> STORE_FLAG_* bits and the keywords */
static unsigned store_flags_of(const char *flags, struct buf *keywords)
{
	static const char *const names[] = { "\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft" };
	static const unsigned bits[] = { STORE_FLAG_SEEN, STORE_FLAG_ANSWERED, STORE_FLAG_FLAGGED, STORE_FLAG_DELETED,
					 STORE_FLAG_DRAFT };
	unsigned out = 0;
	char *copy = xstrdup(flags ? flags : ""), *save = NULL;
	for (char *f = strtok_r(copy, " ", &save); f != NULL; f = strtok_r(NULL, " ", &save)) {
		int known = 0;
		for (size_t i = 0; i < 5; i++)
			if (strcasecmp(f, names[i]) == 0) {
				out |= bits[i];
				known = 1;
			}
		if (!known && *f != '\\') {
			if (keywords->len)
				buf_append_char(keywords, ' ');
			buf_append_str(keywords, f);
		}
	}
	free(copy);
	return out;
}

static int store_one(const struct mta_sieve_ctx *c, const struct mta_target *tg, const char *folder, const char *flags,
		     const char *msg, size_t len, struct buf *err)
{
	if (folder != NULL && strcasecmp(folder, "INBOX") != 0) {
		struct buf e2 = BUF_INIT; /* fileinto creates the folder it names (an existing one is fine) */
		store_folder_create(c->store, tg->guid, folder, &e2);
		buf_free(&e2);
	} else
		folder = NULL;
	struct buf kw = BUF_INIT;
	struct store_target st = {
		.guid = tg->guid, .folder = folder, .quota_bytes = tg->quota_bytes, .quota_messages = tg->quota_messages
	};
	struct store_append req = { msg, len, 0, store_flags_of(flags, &kw), kw.len ? buf_cstr(&kw) : NULL, &st, 1, 0 };
	int rc = store_append(c->store, &req, err);
	buf_free(&kw);
	return rc == 0 ? 0 : (st.result ? st.result : rc);
}

static void queue_new(const struct mta_sieve_ctx *c, const char *sender, const char *rcpt, const char *body, size_t len,
		      const char *what)
{
	struct queue_msg m;
	queue_msg_init(&m);
	queue_new_id(m.id);
	m.created = (long long)time(NULL);
	queue_set_field(&m.sender, sender);
	struct queue_rcpt *r = queue_msg_add_rcpt(&m, rcpt, "", 0);
	r->next_try = m.created;
	struct buf err = BUF_INIT;
	if (queue_write_body(c->qdir, &m, body, len, &err) != 0)
		log_error("sieve %s to %s: %s", what, rcpt, buf_cstr(&err));
	else
		track_log(c->data_dir, what, m.id, "", sender, rcpt, c->hostname, "queued by a Sieve script");
	buf_free(&err);
	queue_msg_free(&m);
}

static void vacation_reply(const struct mta_sieve_ctx *c, const struct mta_target *tg, const struct sieve_action *a,
			   const char *msg, size_t len)
{
	struct buf m = BUF_INIT;
	char msgid[512];
	const char *from = a->from != NULL ? a->from : tg->addr;
	char date[64], id[40];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	queue_new_id(id);
	if (!dsn_header_value(msg, len, "Message-ID", msgid, sizeof(msgid)))
		msgid[0] = 0;
	buf_printf(&m, "From: <%s>\r\nTo: <%s>\r\nSubject: ", from, a->address);
	for (const char *p = a->subject; p && *p; p++)
		if (*p != '\r' && *p != '\n')
			buf_append_char(&m, *p);
	buf_printf(&m, "\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nAuto-Submitted: auto-replied (vacation)\r\n", date, id,
		   c->hostname);
	if (msgid[0])
		buf_printf(&m, "In-Reply-To: %s\r\nReferences: %s\r\n", msgid, msgid);
	buf_append_str(&m, "MIME-Version: 1.0\r\n");
	if (!a->mime)
		buf_append_str(&m,
			       "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
	/* the text with CRLF line ends */
	for (const char *p = a->text; *p; p++) {
		if (*p == '\n' && (p == a->text || p[-1] != '\r'))
			buf_append_char(&m, '\r');
		buf_append_char(&m, *p);
	}
	if (m.len < 2 || memcmp(m.data + m.len - 2, "\r\n", 2) != 0)
		buf_append_str(&m, "\r\n");
	/* RFC 3834 3.1.6 and RFC 5230 4.3: from the null sender, so no reply answers the reply */
	queue_new(c, "", a->address, m.data, m.len, "vacation");
	buf_free(&m);
}

/* carries out the actions of a run; *reply_r is the target's outcome */
static void carry_out(const struct mta_sieve_ctx *c, const struct mta_target *tg, const struct sieve_result *res,
		      const char *sender, const char *qid, const char *msgid, const char *msg, size_t len,
		      char **reply_r)
{
	/* the message as the script left it (editheader) */
	struct buf edited = BUF_INIT;
	const char *m = msg;
	size_t ml = len;
	if (res->header != NULL) {
		buf_append(&edited, res->header, res->header_len);
		buf_append(&edited, msg + res->body_off, len - res->body_off);
		m = edited.data;
		ml = edited.len;
	}
	int stored_rc = 0, stored = 0;
	struct buf serr = BUF_INIT;
	for (size_t i = 0; i < res->count; i++) {
		const struct sieve_action *a = &res->actions[i];
		switch (a->type) {
		case SIEVE_KEEP:
		case SIEVE_FILEINTO: {
			buf_reset(&serr);
			int x = store_one(c, tg, a->type == SIEVE_KEEP ? NULL : a->folder, a->flags, m, ml, &serr);
			if (x != 0 && stored_rc == 0)
				stored_rc = x;
			stored += x == 0;
			if (x == 0 && a->type == SIEVE_FILEINTO) {
				char *d = xasprintf("filed into %s by Sieve", a->folder);
				track_log(c->data_dir, "delivered", qid, msgid, sender, tg->addr, c->hostname, d);
				free(d);
			}
			break;
		}
		case SIEVE_REDIRECT: {
			const char *at = strrchr(a->address, '@');
			bool outside = at == NULL || !dir_is_local_domain(c->dir, at + 1);
			if (outside && c->set->v[SET_FORWARDING_EXTERNAL] == 0) {
				char *d = xasprintf("redirect to %s refused: forwarding.external is deny", a->address);
				log_info("sieve of %s: %s", tg->addr, d);
				track_log(c->data_dir, "sieve", qid, msgid, sender, tg->addr, c->hostname, d);
				free(d);
				break;
			}
			queue_new(c, sender, a->address, m, ml, "redirected");
			break;
		}
		case SIEVE_VACATION: vacation_reply(c, tg, a, msg, len); break;
		case SIEVE_REJECT:
		case SIEVE_EREJECT:
			if (*reply_r == NULL) {
				/* one line of the reason into the reply: the MTA's DSN (or the DATA reply) carries it */
				size_t n = strcspn(a->text, "\r\n");
				*reply_r = xasprintf("550 5.7.1 %.*s", (int)(n > 300 ? 300 : n), a->text);
			}
			break;
		case SIEVE_DISCARD: break;
		}
	}
	if (*reply_r == NULL) {
		if (stored_rc != 0 && stored == 0) {
			bool permanent;
			*reply_r = mta_local_failure(tg, stored_rc, buf_cstr(&serr), &permanent);
		} else
			*reply_r = xstrdup(stored ? "250 2.0.0 delivered to mailbox" : "250 2.0.0 discarded by Sieve");
	}
	buf_free(&serr);
	buf_free(&edited);
}

/* Runs text over msg for tg with the world of its mailbox (folders, includes, duplicate records, the user's
 * addresses from the directory): IX_OK or the error, err saying why; res holds what sieve_run left. */
static int run_text(const struct mta_sieve_ctx *c, const struct mta_target *tg, const char *sender,
		    const struct buf *text, const char *msg, size_t len, struct sieve_result *res, struct buf *err)
{
	memset(res, 0, sizeof(*res));
	struct sieve_script *script = NULL;
	int rc = sieve_parse(buf_cstr(text), text->len, 0, &script, err);
	if (rc != IX_OK)
		return rc;
	struct world w = { c, tg->guid };
	struct sieve_env env = { .env_from = sender,
				 .env_to = tg->orcpt && *tg->orcpt ? tg->orcpt : tg->addr,
				 .now = (long long)time(NULL),
				 .vacation_seconds = (long long)c->set->v[SET_SIEVE_VACATION_DAYS] * 86400,
				 .ctx = &w,
				 .mailbox_exists = w_mailbox_exists,
				 .include = w_include,
				 .seen = w_seen };
	struct dir_recipient r;
	const char **mine = NULL;
	if (dir_resolve(c->dir, tg->addr, &r) == IX_OK) {
		mine = xcalloc(r.address_count + 2, sizeof(*mine));
		size_t n = 0;
		for (size_t i = 0; i < r.address_count; i++)
			mine[n++] = r.addresses[i];
		mine[n++] = tg->addr;
		env.user_addresses = mine;
	}
	rc = sieve_run(script, msg, len, &env, NULL, res, err);
	if (mine != NULL)
		dir_recipient_release(&r);
	free(mine);
	sieve_free(script);
	return rc;
}

/* RFC 5228 2.10.6: a failed script keeps the message; the log and track say why */
static void script_failed(const struct mta_sieve_ctx *c, const struct mta_target *tg, const char *name, const char *why,
			  const char *sender, const char *qid, const char *msgid)
{
	log_warn("sieve script %s of %s failed: %s; the message is kept", name, tg->addr, why);
	char *d = xasprintf("script %s failed: %s; kept in INBOX", name, why);
	track_log(c->data_dir, "sieve", qid, msgid, sender, tg->addr, c->hostname, d);
	free(d);
}

int mta_sieve_deliver(const struct mta_sieve_ctx *c, const struct mta_target *tg, const char *sender, const char *qid,
		      const char *msgid, const char *msg, size_t len, char **reply_r)
{
	*reply_r = NULL;
	if (tg->kind != MTA_LOCAL || tg->folder != NULL || strcmp(tg->guid, STORE_PUBLIC_GUID) == 0)
		return 0;
	struct buf text = BUF_INIT, name = BUF_INIT, err = BUF_INIT;
	struct sieve_result res;
	/* the out-of-office rule first, beside the user's own script: only its reply counts */
	if (store_sieve_get(c->store, tg->guid, SIEVE_OOF_NAME, &text, NULL) == IX_OK) {
		if (run_text(c, tg, sender, &text, msg, len, &res, &err) != IX_OK)
			script_failed(c, tg, SIEVE_OOF_NAME, buf_cstr(&err), sender, qid, msgid);
		else
			for (size_t i = 0; i < res.count; i++)
				if (res.actions[i].type == SIEVE_VACATION)
					vacation_reply(c, tg, &res.actions[i], msg, len);
		sieve_result_free(&res);
		buf_reset(&text);
		buf_reset(&err);
	}
	int handled = 0;
	if (store_sieve_active(c->store, tg->guid, &name, &text, NULL) == IX_OK &&
	    strcmp(buf_cstr(&name), SIEVE_OOF_NAME) != 0) {
		handled = 1;
		if (run_text(c, tg, sender, &text, msg, len, &res, &err) != IX_OK) {
			script_failed(c, tg, buf_cstr(&name), buf_cstr(&err), sender, qid, msgid);
			handled = 0; /* the usual delivery keeps it */
		} else
			carry_out(c, tg, &res, sender, qid, msgid, msg, len, reply_r);
		sieve_result_free(&res);
	}
	buf_free(&text);
	buf_free(&name);
	buf_free(&err);
	return handled;
}
