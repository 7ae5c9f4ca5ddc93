/* imap_session.c - IMAP4rev1 and IMAP4rev2 sessions: the command loop over the incremental parser and a flat
 * {name, handler, states} table, the any-state commands, login through the login core, IDLE, COMPRESS, input and the
 * server. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "transport/imap/imap_fetch.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OUTPUT_POLL_MS 10    /* how often a session waiting for its output to drain looks again */
#define NOWATCH_POLL_MS 1000 /* IDLE without change notification: how often the folder is looked at */

static void process_input(struct imap_session *s);
static void cmd_compress(struct imap_session *s, const struct imap_command *cmd);
static void session_timer(struct evloop *loop, struct evloop_timer *timer, void *ctx);

static void capabilities(struct imap_session *s, struct buf *out)
{
	buf_append_str(out, "IMAP4rev1 IMAP4rev2");
	if (s->state == IMAP_ST_NOTAUTH) {
		if (s->srv->ls.cfg.tls != NULL && !conn_is_tls(s->ls.conn))
			buf_append_str(out, " STARTTLS");
		struct buf mechs = BUF_INIT;
		ix_sasl_offered(s->ls.secure, login_scram_offer(&s->ls), s->srv->ls.cfg.verifiers, &mechs);
		for (const char *m = buf_cstr(&mechs); *m == ' ';) {
			size_t n = strcspn(m + 1, " ");
			buf_printf(out, " AUTH=%.*s", (int)n, m + 1);
			m += n + 1;
		}
		buf_free(&mechs);
		if (!s->ls.secure)
			buf_append_str(out, " LOGINDISABLED");
	}
	buf_append_str(out, " SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN");
	if (s->state == IMAP_ST_NOTAUTH)
		buf_append_str(out, " LOGIN-REFERRALS");
	if (s->state != IMAP_ST_NOTAUTH)
		buf_append_str(out, " UNAUTHENTICATE");
	if (s->state != IMAP_ST_NOTAUTH && s->z == NULL && imap_z_available())
		buf_append_str(out, " COMPRESS=DEFLATE");
	if (s->state != IMAP_ST_NOTAUTH)
		buf_append_str(
			out,
			" UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES "
			"BINARY UTF8=ACCEPT CONDSTORE QRESYNC SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT WITHIN QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE ACL RIGHTS=texk LIST-MYRIGHTS STATUS=SIZE REPLACE MULTIAPPEND CATENATE URLAUTH OBJECTID PREVIEW SAVEDATE CONTEXT=SEARCH CONTEXT=SORT METADATA METADATA-SERVER NOTIFY I18NLEVEL=1");
	if (s->state != IMAP_ST_NOTAUTH)
		buf_printf(out, " APPENDLIMIT=%llu", (unsigned long long)s->srv->max_message_size);
}

/* ---- commands: any state ---- */

static void cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	buf_append_str(&s->out, "* CAPABILITY ");
	capabilities(s, &s->out);
	buf_append_str(&s->out, "\r\n");
	imap_tagged(s, cmd->tag, "OK Capability completed.");
}

static void cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	if (s->state == IMAP_ST_SELECTED)
		imap_sync(s, true, true);
	imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
}

static void cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "* BYE Logging out");
	buf_printf(&s->out, "%s OK Logout completed.\r\n", cmd->tag);
	imap_flush_out(s);
	s->state = IMAP_ST_LOGOUT;
	s->ls.closing = true;
	conn_close_after_flush(s->ls.conn);
}

static void cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->arg_count != 1 || (cmd->args[0].type != IMAP_ARG_NIL && cmd->args[0].type != IMAP_ARG_LIST) ||
	    (cmd->args[0].type == IMAP_ARG_LIST &&
	     (cmd->args[0].list_count % 2 != 0 || cmd->args[0].list_count > 2 * IMAP_ID_FIELDS_MAX))) {
		imap_tagged(s, cmd->tag, "BAD ID needs NIL or a list of up to 30 field-value pairs");
		return;
	}
	imap_reply(s, "* ID (\"name\" \"Interchange\" \"vendor\" \"Interchange\")");
	imap_tagged(s, cmd->tag, "OK ID completed.");
}

static void cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf en = BUF_INIT;
	for (size_t i = 0; i < cmd->arg_count; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM) {
			buf_free(&en);
			imap_tagged(s, cmd->tag, "BAD ENABLE takes capability names");
			return;
		}
		if (imap_arg_atom_equals(&cmd->args[i], "CONDSTORE") && !s->condstore) {
			s->condstore = true;
			buf_append_str(&en, " CONDSTORE");
		} else if (imap_arg_atom_equals(&cmd->args[i], "QRESYNC") && !s->qresync) {
			s->qresync = s->condstore = true;
			buf_append_str(&en, " QRESYNC");
		} else if (imap_arg_atom_equals(&cmd->args[i], "IMAP4rev2") && !s->rev2) {
			/* RFC 9051: rev2 names mailboxes and sends headers in UTF-8, UTF8=ACCEPT's behaviour */
			s->rev2 = s->utf8 = true;
			buf_append_str(&en, " IMAP4rev2");
		} else if (imap_arg_atom_equals(&cmd->args[i], "UTF8=ACCEPT") && !s->utf8) {
			s->utf8 = true;
			buf_append_str(&en, " UTF8=ACCEPT");
		}
	}
	if (cmd->arg_count == 0) {
		imap_tagged(s, cmd->tag, "BAD ENABLE needs arguments");
	} else {
		imap_reply(s, "* ENABLED%s", buf_cstr(&en));
		imap_tagged(s, cmd->tag, "OK Enabled.");
	}
	buf_free(&en);
}

/* ---- login (the login core does the work: transport/login/login_session.h) ---- */

/* Forgets the user's ACL identifiers. */
static void free_ids(struct imap_session *s)
{
	for (size_t i = 0; i < s->nids; i++)
		free(s->ids[i]);
	free(s->ids);
	s->ids = NULL;
	s->nids = 0;
}

/* UNAUTHENTICATE (RFC 8437): back to the not-authenticated state as if newly connected, the selected mailbox closed
 * without expunging and everything of the user forgotten (ENABLEd extensions too); TLS and COMPRESS stay. */
static void cmd_unauthenticate(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->arg_count != 0) {
		imap_tagged(s, cmd->tag, "BAD UNAUTHENTICATE takes no arguments");
		return;
	}
	imap_deselect(s);
	imap_notify_end(s);
	free_ids(s);
	imap_forget_owners(s);
	s->condstore = s->qresync = s->utf8 = s->rev2 = s->import = false;
	s->other_guid[0] = '\0';
	s->other_quota_bytes = s->other_quota_messages = 0;
	s->state = IMAP_ST_NOTAUTH;
	login_unauthenticate(&s->ls);
	log_info("unauthenticated from %s", conn_peer(s->ls.conn));
	imap_tagged(s, cmd->tag, "OK Unauthenticated.");
}

bool imap_job_finished(struct imap_session *s)
{
	return login_job_finished(&s->ls);
}

void imap_start_job(struct imap_session *s, workpool_fn *run, workpool_fn *done, void *arg)
{
	login_start_job(&s->ls, run, done, arg);
}

static void cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	const char *user, *pass;
	size_t ulen, plen;
	if (cmd->arg_count != 2 || !imap_arg_get_astring(&cmd->args[0], &user, &ulen) ||
	    !imap_arg_get_astring(&cmd->args[1], &pass, &plen)) {
		imap_tagged(s, cmd->tag, "BAD LOGIN needs a user name and a password");
		return;
	}
	if (!s->ls.secure) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] Plaintext login is disabled: use STARTTLS first.");
		return;
	}
	if (ulen == 0 || ulen > IX_SASL_USER_MAX || plen > IX_SASL_PASS_MAX || memchr(user, '\0', ulen) != NULL) {
		login_failed(&s->ls, NULL, "malformed user name");
		imap_tagged(s, cmd->tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
		return;
	}
	if (!login_throttled(&s->ls, cmd->tag, NULL))
		login_password(&s->ls, cmd->tag, user, ulen, pass, plen);
}

static void cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	const char *mech, *ir = NULL;
	size_t mlen, irlen = 0;
	if (cmd->arg_count < 1 || cmd->arg_count > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    !imap_arg_get_astring(&cmd->args[0], &mech, &mlen) ||
	    (cmd->arg_count == 2 && !imap_arg_get_astring(&cmd->args[1], &ir, &irlen))) {
		imap_tagged(s, cmd->tag, "BAD AUTHENTICATE needs a mechanism and an optional initial response");
		return;
	}
	if (!s->ls.secure) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] Authentication is disabled without TLS: use STARTTLS.");
		return;
	}
	if (login_throttled(&s->ls, cmd->tag, NULL))
		return;
	free(s->tag);
	s->tag = xstrdup(cmd->tag);
	login_sasl_start(&s->ls, cmd->tag, mech, mlen, ir, irlen);
}

static void sasl_line(struct imap_session *s, const char *line, size_t len)
{
	login_sasl_response(&s->ls, s->tag != NULL ? s->tag : "*", line, len);
}

static void cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	if (s->srv->ls.cfg.tls == NULL || conn_is_tls(s->ls.conn)) {
		imap_tagged(s, cmd->tag, "BAD TLS is %s", conn_is_tls(s->ls.conn) ? "already active" : "not available");
		return;
	}
	imap_tagged(s, cmd->tag, "OK Begin TLS negotiation now.");
	login_start_tls(&s->ls, "STARTTLS");
	imap_parser_reset(s->parser);
}

/* ---- IDLE ---- */

static void cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	free(s->tag);
	s->tag = xstrdup(cmd->tag);
	s->mode = IMAP_MODE_IDLE;
	if (s->state == IMAP_ST_SELECTED)
		imap_sync(s, true, true);
	imap_reply(s, "+ idling");
	imap_flush_out(s);
	if (s->state == IMAP_ST_SELECTED && (s->watch == NULL || s->watch->w == NULL))
		evloop_timer_start(s->srv->ls.cfg.loop, &s->timer, NOWATCH_POLL_MS, 0, session_timer, s);
}

static void idle_line(struct imap_session *s, const char *line, size_t len)
{
	s->mode = IMAP_MODE_COMMAND;
	evloop_timer_stop(s->srv->ls.cfg.loop, &s->timer);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_tagged(s, s->tag, "OK Idle completed.");
	else
		imap_tagged(s, s->tag, "BAD Expected DONE.");
}

/* ---- dispatch ---- */

#define ST_ANY (IMAP_ST_NOTAUTH | IMAP_ST_AUTH | IMAP_ST_SELECTED)
#define ST_AUTHED (IMAP_ST_AUTH | IMAP_ST_SELECTED)

struct imap_cmd_def {
	const char *name;
	void (*fn)(struct imap_session *s, const struct imap_command *cmd);
	unsigned states;
	bool uid_ok;     /* may follow UID */
	bool no_expunge; /* no EXPUNGE responses while answering (by sequence numbers) */
	bool pool;       /* runs on the worker pool: it makes synced writes or reads many bodies */
};

static const struct imap_cmd_def commands[] = {
	{ "CAPABILITY", cmd_capability, ST_ANY, false, false, false },
	{ "NOOP", cmd_noop, ST_ANY, false, false, false },
	{ "LOGOUT", cmd_logout, ST_ANY, false, false, false },
	{ "ID", cmd_id, ST_ANY, false, false, false },
	{ "STARTTLS", cmd_starttls, IMAP_ST_NOTAUTH, false, false, false },
	{ "LOGIN", cmd_login, IMAP_ST_NOTAUTH, false, false, false },
	{ "AUTHENTICATE", cmd_authenticate, IMAP_ST_NOTAUTH, false, false, false },
	{ "X-IX-IMPORT", imap_cmd_import, ST_ANY, false, false, false },
	{ "ENABLE", cmd_enable, ST_AUTHED, false, false, false },
	{ "UNAUTHENTICATE", cmd_unauthenticate, ST_AUTHED, false, false, false },
	{ "SELECT", imap_cmd_select, ST_AUTHED, false, false, false },
	{ "EXAMINE", imap_cmd_select, ST_AUTHED, false, false, false },
	{ "CREATE", imap_cmd_create, ST_AUTHED, false, false, true },
	{ "DELETE", imap_cmd_delete, ST_AUTHED, false, false, false },
	{ "RENAME", imap_cmd_rename, ST_AUTHED, false, false, true },
	{ "SUBSCRIBE", imap_cmd_subscribe, ST_AUTHED, false, false, true },
	{ "UNSUBSCRIBE", imap_cmd_subscribe, ST_AUTHED, false, false, true },
	{ "LIST", imap_cmd_list, ST_AUTHED, false, false, false },
	{ "LSUB", imap_cmd_list, ST_AUTHED, false, false, false },
	{ "NAMESPACE", imap_cmd_namespace, ST_AUTHED, false, false, false },
	{ "STATUS", imap_cmd_status, ST_AUTHED, false, false, false },
	{ "APPEND", imap_cmd_append, ST_AUTHED, false, false, false },
	{ "IDLE", cmd_idle, ST_AUTHED, false, false, false },
	{ "COMPRESS", cmd_compress, ST_AUTHED, false, false, false },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, ST_AUTHED, false, false, false },
	{ "GETQUOTA", imap_cmd_getquota, ST_AUTHED, false, false, false },
	{ "SETQUOTA", imap_cmd_setquota, ST_AUTHED, false, false, false },
	{ "GETACL", imap_cmd_acl, ST_AUTHED, false, false, false },
	{ "SETACL", imap_cmd_acl, ST_AUTHED, false, false, true },
	{ "DELETEACL", imap_cmd_acl, ST_AUTHED, false, false, true },
	{ "MYRIGHTS", imap_cmd_acl, ST_AUTHED, false, false, false },
	{ "LISTRIGHTS", imap_cmd_acl, ST_AUTHED, false, false, false },
	{ "NOTIFY", imap_cmd_notify, ST_AUTHED, false, false, false },
	{ "GETMETADATA", imap_cmd_getmetadata, ST_AUTHED, false, false, false },
	{ "SETMETADATA", imap_cmd_setmetadata, ST_AUTHED, false, false, true },
	{ "GENURLAUTH", imap_cmd_genurlauth, ST_AUTHED, false, false, true },
	{ "RESETKEY", imap_cmd_resetkey, ST_AUTHED, false, false, true },
	{ "URLFETCH", imap_cmd_urlfetch, ST_AUTHED, false, false, false },
	{ "CHECK", imap_cmd_check, IMAP_ST_SELECTED, false, false, false },
	{ "CLOSE", imap_cmd_close, IMAP_ST_SELECTED, false, false, false },
	{ "UNSELECT", imap_cmd_close, IMAP_ST_SELECTED, false, false, false },
	{ "CANCELUPDATE", imap_cmd_cancelupdate, IMAP_ST_SELECTED, false, false, false },
	{ "EXPUNGE", imap_cmd_expunge, IMAP_ST_SELECTED, true, false, true },
	{ "SEARCH", imap_cmd_search, IMAP_ST_SELECTED, true, true, true },
	{ "SORT", imap_cmd_sort, IMAP_ST_SELECTED, true, true, true },
	{ "THREAD", imap_cmd_thread, IMAP_ST_SELECTED, true, true, true },
	{ "FETCH", imap_cmd_fetch, IMAP_ST_SELECTED, true, true, false },
	{ "STORE", imap_cmd_store, IMAP_ST_SELECTED, true, true, true },
	{ "COPY", imap_cmd_copy, IMAP_ST_SELECTED, true, false, true },
	{ "MOVE", imap_cmd_copy, IMAP_ST_SELECTED, true, false, true },
	{ "REPLACE", imap_cmd_replace, IMAP_ST_SELECTED, true, false, false },
};

struct cmd_job {
	struct imap_session *s;
	const struct imap_cmd_def *def;
	const struct imap_command *cmd; /* the parser's: it is not fed again before the job is back */
};

static void cmd_job_run(void *arg)
{
	struct cmd_job *j = arg;
	j->def->fn(j->s, j->cmd);
}

static void cmd_job_done(void *arg)
{
	struct cmd_job *j = arg;
	struct imap_session *s = j->s;
	free(j);
	s->in_worker = false;
	if (!imap_job_finished(s))
		return;
	if (s->dirty_pending) {
		s->dirty = true;
		s->dirty_pending = false;
	}
	if (s->moved_pending && !s->ls.closing) {
		s->moved_pending = false;
		imap_say_moved(s);
		return;
	}
	if (s->notify_pending) {
		s->notify_pending = false;
		imap_notify_changed(s);
	}
	imap_flush_out(s);
	imap_resume(s);
}

static void dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *def = NULL;
	for (size_t i = 0; i < IX_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, cmd->name) == 0) {
			def = &commands[i];
			break;
		}
	if (def == NULL) {
		s->bad_count++;
		imap_tagged(s, cmd->tag, "BAD Unknown command %s", cmd->name);
		return;
	}
	if (cmd->uid && !def->uid_ok) {
		s->bad_count++;
		imap_tagged(s, cmd->tag, "BAD UID %s is not a command", cmd->name);
		return;
	}
	if (!(def->states & s->state)) {
		s->bad_count++;
		const char *why = s->state == IMAP_ST_NOTAUTH      ? "Log in first"
				  : def->states == IMAP_ST_NOTAUTH ? "Already logged in"
								   : "No mailbox selected";
		imap_tagged(s, cmd->tag, "BAD %s: %s not allowed now", why, cmd->name);
		return;
	}
	s->bad_count = 0;
	bool lost = s->state != IMAP_ST_NOTAUTH && login_actor_lost(&s->ls);
	if (!lost && s->state == IMAP_ST_SELECTED && s->sel_full_access && !imap_mailbox_is_ours(s, s->sel_guid)) {
		/* full access to the selected mailbox was revoked: what the owner's ACL gives from now on */
		s->sel_full_access = false;
		s->rights = imap_rights_on(s, s->sel_guid, s->sel_folder);
		lost = !(s->rights & STORE_RIGHT_READ);
	}
	if (lost) {
		imap_reply(s, "* BYE Your full access to this mailbox was withdrawn.");
		imap_flush_out(s);
		s->ls.closing = true;
		conn_close_after_flush(s->ls.conn);
		return;
	}
	if (def->no_expunge && !cmd->uid && s->state == IMAP_ST_SELECTED && s->dirty)
		imap_sync(s, false, false);
	if (def->pool && s->srv->ls.cfg.pool != NULL) {
		struct cmd_job *j = xcalloc(1, sizeof(*j));
		j->s = s;
		j->def = def;
		j->cmd = cmd;
		s->in_worker = true;
		/* reads bodies or caches, writes nothing: never behind a sync */
		if (def->fn == imap_cmd_search || def->fn == imap_cmd_sort || def->fn == imap_cmd_thread)
			login_start_read_job(&s->ls, cmd_job_run, cmd_job_done, j);
		else
			imap_start_job(s, cmd_job_run, cmd_job_done, j);
		return;
	}
	def->fn(s, cmd);
}

/* ---- COMPRESS=DEFLATE ---- */

static void cmd_compress(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->arg_count != 1 || !imap_arg_atom_equals(&cmd->args[0], "DEFLATE")) {
		imap_tagged(s, cmd->tag, "BAD COMPRESS takes DEFLATE");
		return;
	}
	if (s->z != NULL) {
		imap_tagged(s, cmd->tag, "NO [COMPRESSIONACTIVE] Compression is already on.");
		return;
	}
	struct imap_z *z = NULL;
	if (imap_z_create(&z) != 0) {
		imap_tagged(s, cmd->tag, "NO Compression is not available.");
		return;
	}
	imap_tagged(s, cmd->tag, "OK DEFLATE active."); /* the last plaintext; what follows is compressed */
	s->z = z;
}

/* ---- input ---- */

/* The bytes waiting to be parsed: the connection's buffer, or under COMPRESS the inflated ones (inflating more
 * from the connection while there is room). */
static size_t in_peek(struct imap_session *s, const char **data_r)
{
	if (s->z == NULL)
		return conn_input_peek(s->ls.conn, data_r);
	if (s->zin.len < IMAP_Z_INPUT_MAX) {
		const char *raw = NULL;
		size_t n = imap_z_pending(s->z) < IMAP_Z_INPUT_MAX ? conn_input_peek(s->ls.conn, &raw) : 0;
		if (imap_z_decompress(s->z, raw, n, &s->zin, IMAP_Z_INPUT_MAX) != 0)
			s->zerror = true;
		if (n > 0)
			conn_input_consume(s->ls.conn, n);
	}
	*data_r = buf_cstr(&s->zin);
	return s->zin.len;
}

static void in_consume(struct imap_session *s, size_t n)
{
	if (s->z == NULL)
		conn_input_consume(s->ls.conn, n);
	else
		buf_consume(&s->zin, n);
}

/* conn_read_line for SASL and IDLE lines, through the inflated input under COMPRESS. */
static int in_line(struct imap_session *s, size_t max, const char **line_r, size_t *len_r)
{
	if (s->z == NULL)
		return conn_read_line(s->ls.conn, max, CONN_LINE_BARE_LF, line_r, len_r);
	const char *d;
	size_t n = in_peek(s, &d);
	const char *nl = memchr(d, '\n', n);
	if (nl == NULL) {
		if (n > max) {
			in_consume(s, n);
			return CONN_LINE_TOO_LONG;
		}
		return CONN_LINE_MORE;
	}
	size_t len = (size_t)(nl - d);
	buf_reset(&s->zline);
	buf_append(&s->zline, d, len > 0 && d[len - 1] == '\r' ? len - 1 : len);
	in_consume(s, len + 1);
	*line_r = buf_cstr(&s->zline);
	*len_r = s->zline.len;
	return CONN_LINE_OK;
}

/* The bytes of a large literal, as they arrive (the parser's sink). */
static void literal_sink(void *ctx, const void *data, size_t len)
{
	struct imap_session *s = ctx;
	spool_append(&s->lit, data, len);
}

static void literal_event(struct imap_session *s)
{
	const struct imap_literal_info *li = imap_parser_literal(s->parser);
	const char *tag = imap_parser_tag(s->parser);
	if (s->state == IMAP_ST_NOTAUTH && li->size > IMAP_LITERAL_MAX_PREAUTH) {
		imap_parser_literal_reject(s->parser);
		imap_tagged(s, tag != NULL ? tag : "*", "%s Literal too large before login.", li->sync ? "NO" : "BAD");
		return;
	}
	if (li->size > s->srv->max_message_size) {
		imap_parser_literal_reject(s->parser);
		imap_tagged(s, tag != NULL ? tag : "*",
			    "%s [TOOBIG] Literal of %llu bytes is larger than the %llu allowed.",
			    li->sync ? "NO" : "BAD", (unsigned long long)li->size,
			    (unsigned long long)s->srv->max_message_size);
		return;
	}
	if (li->size > SPOOL_MEMORY_MAX) {
		spool_reset(&s->lit);
		imap_parser_literal_accept_sink(s->parser); /* a message: kept in a file, not in memory */
	} else {
		imap_parser_literal_accept(s->parser);
	}
	if (li->sync) {
		buf_append_str(&s->out, "+ OK\r\n");
		imap_flush_out(s);
	}
}

static void too_many_errors(struct imap_session *s)
{
	imap_reply(s, "* BYE Too many bad commands.");
	imap_flush_out(s);
	s->ls.closing = true;
	conn_close_after_flush(s->ls.conn);
}

static void process_input(struct imap_session *s)
{
	while (!s->ls.closing && !s->ls.dead && !s->ls.tls_pending && s->mode != IMAP_MODE_BUSY) {
		if (conn_output_len(s->ls.conn) > CONN_OUTPUT_SOFT_MAX) {
			/* the client does not read: stop reading until it does */
			imap_wait_output(s);
			break;
		}
		if (s->mode == IMAP_MODE_SASL || s->mode == IMAP_MODE_IDLE) {
			const char *line;
			size_t len;
			int r = in_line(s, IX_SASL_LINE_MAX, &line, &len);
			if (r == CONN_LINE_MORE)
				break;
			if (r == CONN_LINE_TOO_LONG) {
				s->mode = IMAP_MODE_COMMAND;
				imap_tagged(s, s->tag != NULL ? s->tag : "*", "BAD Line too long.");
				continue;
			}
			if (s->mode == IMAP_MODE_IDLE)
				idle_line(s, line, len);
			else
				sasl_line(s, line, len);
			continue;
		}
		const char *data;
		size_t len = in_peek(s, &data);
		if (s->zerror) {
			imap_reply(s, "* BYE The compressed stream is corrupt.");
			imap_flush_out(s);
			s->ls.closing = true;
			conn_close_after_flush(s->ls.conn);
			break;
		}
		if (len == 0)
			break;
		size_t used = 0;
		enum imap_parse_result r = imap_parser_feed(s->parser, data, len, &used);
		in_consume(s, used);
		switch (r) {
		case IMAP_PARSE_NEED_MORE: break;
		case IMAP_PARSE_LITERAL: literal_event(s); break;
		case IMAP_PARSE_ERROR: {
			const char *tag = imap_parser_tag(s->parser);
			s->bad_count++;
			buf_printf(&s->out, "%s BAD %s\r\n", tag != NULL ? tag : "*", imap_parser_error(s->parser));
			imap_flush_out(s);
			break;
		}
		case IMAP_PARSE_DONE: dispatch(s, imap_parser_command(s->parser)); break;
		}
		if (s->bad_count >= IMAP_MAX_BAD_COMMANDS && !s->ls.closing)
			too_many_errors(s);
	}
	imap_flush_out(s);
}

void imap_wait_output(struct imap_session *s)
{
	s->mode = IMAP_MODE_BUSY;
	conn_pause_input(s->ls.conn, true);
	evloop_timer_start(s->srv->ls.cfg.loop, &s->timer, OUTPUT_POLL_MS, 0, session_timer, s);
}

void imap_resume(struct imap_session *s)
{
	if (s->mode == IMAP_MODE_BUSY || s->ls.inline_job)
		return;
	conn_pause_input(s->ls.conn, false);
	process_input(s);
}

static void session_timer(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)timer;
	struct imap_session *s = ctx;
	if (s->mode == IMAP_MODE_BUSY && !s->ls.job_out) {
		if (conn_output_len(s->ls.conn) > CONN_OUTPUT_SOFT_MAX / 2) {
			evloop_timer_start(loop, &s->timer, OUTPUT_POLL_MS, 0, session_timer, s);
			return;
		}
		if (s->fetch != NULL) {
			if (!imap_fetch_continue(s)) {
				evloop_timer_start(loop, &s->timer, OUTPUT_POLL_MS, 0, session_timer, s);
				return;
			}
		}
		s->mode = IMAP_MODE_COMMAND;
		imap_resume(s);
		return;
	}
	if (s->mode == IMAP_MODE_IDLE && s->state == IMAP_ST_SELECTED) {
		/* no change notification for this mailbox: look now and then */
		s->dirty = true;
		imap_sync(s, true, false);
		imap_flush_out(s);
		evloop_timer_start(loop, &s->timer, NOWATCH_POLL_MS, 0, session_timer, s);
	}
}

/* ---- the login core's function table ---- */

static struct imap_session *of(struct login_session *ls)
{
	return (struct imap_session *)ls;
}

static struct login_session *new_session(struct login_server *lsrv)
{
	struct imap_server *srv = (struct imap_server *)lsrv;
	struct imap_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->state = IMAP_ST_NOTAUTH;
	s->mode = IMAP_MODE_COMMAND;
	struct imap_parser_settings ps = { 0 };
	ps.max_literal = srv->max_message_size;
	ps.max_literals = srv->max_message_size + IMAP_LITERAL_MAX_OTHER;
	ps.literal_plus = true;
	ps.binary = true; /* ~{n} literal8 in APPEND (RFC 3516) */
	ps.sink = literal_sink;
	ps.sink_ctx = s;
	s->parser = imap_parser_create(&ps);
	spool_init(&s->lit, srv->ls.cfg.spool_dir);
	return &s->ls;
}

static void free_session(struct login_session *ls)
{
	struct imap_session *s = of(ls);
	evloop_timer_stop(s->srv->ls.cfg.loop, &s->timer);
	imap_fetch_job_free(&s->fetch);
	imap_deselect(s);
	imap_notify_end(s);
	imap_parser_destroy(&s->parser);
	spool_free(&s->lit);
	imap_z_destroy(&s->z);
	buf_free(&s->zin);
	buf_free(&s->zline);
	free_ids(s);
	imap_forget_owners(s);
	free(s->tag);
	buf_free(&s->out);
}

static void greet(struct login_session *ls)
{
	struct imap_session *s = of(ls);
	buf_append_str(&s->out, "* OK [CAPABILITY ");
	capabilities(s, &s->out);
	buf_printf(&s->out, "] %s Interchange IMAP4rev1 ready.\r\n", s->srv->ls.cfg.hostname);
	imap_flush_out(s);
}

static void input(struct login_session *ls)
{
	if (of(ls)->mode != IMAP_MODE_BUSY)
		process_input(of(ls));
}

static void set_busy(struct login_session *ls, bool busy)
{
	of(ls)->mode = busy ? IMAP_MODE_BUSY : IMAP_MODE_COMMAND;
}

static void resume(struct login_session *ls)
{
	imap_resume(of(ls));
}

static void login_reply(struct login_session *ls, const char *tag, enum login_outcome o, const char *text)
{
	struct imap_session *s = of(ls);
	switch (o) {
	case LOGIN_CONTINUE:
		s->mode = IMAP_MODE_SASL;
		buf_printf(&s->out, "+ %s\r\n", text);
		imap_flush_out(s);
		break;
	case LOGIN_FAILED: imap_tagged(s, tag, "NO [AUTHENTICATIONFAILED] Authentication failed."); break;
	case LOGIN_CANCELLED: imap_tagged(s, tag, "BAD Authentication cancelled."); break;
	case LOGIN_SASL_BAD: imap_tagged(s, tag, "BAD %s", text[0] != '\0' ? text : "Bad SASL exchange"); break;
	case LOGIN_UNAVAILABLE:
		imap_tagged(s, tag, "NO [UNAVAILABLE] The directory is not answering; try again later.");
		break;
	case LOGIN_HOME_UNREACHABLE:
		imap_tagged(s, tag, "NO [UNAVAILABLE] Your mailbox server cannot be reached; try again later.");
		break;
	case LOGIN_THROTTLED:
		imap_tagged(s, tag,
			    "NO [UNAVAILABLE] Temporarily blocked after too many failed logins; try again later.");
		break;
	case LOGIN_SASL_UNAVAILABLE: imap_tagged(s, tag, "NO [UNAVAILABLE] Authentication is unavailable."); break;
	case LOGIN_PROXY_LOGGED_IN:
		/* the home server's answer (its capabilities after login) under the client's tag */
		buf_printf(&s->out, "%s %s\r\n", tag, text);
		imap_flush_out(s);
		break;
	case LOGIN_PROXY_REFUSED: imap_tagged(s, tag, "%s", text); break;
	case LOGIN_PROXY_FAILED:
		imap_tagged(s, tag, "NO [UNAVAILABLE] Your mailbox server is not answering; try again later.");
		break;
	case LOGIN_REFERRAL:
		imap_tagged(s, tag, "NO [REFERRAL %s] Your mailbox is on another server: log in there.", text);
		break;
	}
}

static void bye(struct login_session *ls, enum login_bye why)
{
	struct imap_session *s = of(ls);
	imap_reply(s, why == LOGIN_BYE_IDLE ? "* BYE Idle for too long." : "* BYE Server shutting down.");
	imap_flush_out(s);
}

static int prepare(struct login_server *srv, const struct login_user *u, void **data_r, struct buf *error_r)
{
	(void)error_r;
	*data_r = NULL;
	store_mailbox_ensure(srv->cfg.store, u->guid, NULL);
	return 0;
}

static void logged_in(struct login_session *ls, const char *tag, void *data)
{
	(void)data;
	struct imap_session *s = of(ls);
	s->state = IMAP_ST_AUTH;
	log_info("login %s from %s%s", ls->user.login, conn_peer(ls->conn), conn_is_tls(ls->conn) ? " (TLS)" : "");
	buf_append_str(&s->out, tag);
	buf_append_str(&s->out, " OK [CAPABILITY ");
	capabilities(s, &s->out);
	buf_append_str(&s->out, "] Logged in\r\n");
	imap_flush_out(s);
}

static const struct login_proto imap_proto = {
	"imap", PROXY_IMAP,  new_session, free_session, greet, input,     set_busy,
	resume, login_reply, bye,         prepare,      free,  logged_in,
};

/* ---- server ---- */

struct imap_server *imap_server_create(const struct imap_server_config *config)
{
	struct imap_server *srv = xcalloc(1, sizeof(*srv));
	login_server_init(&srv->ls, &imap_proto, &config->login);
	srv->recent = imap_recent_create();
	srv->notify_fd = -1;
	srv->max_message_size = config->max_message_size != 0 ? config->max_message_size : 35ull * 1024 * 1024;
	return srv;
}

void imap_server_set_max_message_size(struct imap_server *srv, uint64_t max_message_size)
{
	if (max_message_size > 0)
		srv->max_message_size = max_message_size;
}

void imap_server_destroy(struct imap_server **srvp)
{
	struct imap_server *srv = *srvp;
	if (srv == NULL)
		return;
	login_server_cleanup(&srv->ls);
	while (srv->watches != NULL) {
		struct imap_watch *w = srv->watches;
		w->refs = 1;
		imap_watch_release(srv, &w);
	}
	imap_recent_release(&srv->recent);
	free(srv);
	*srvp = NULL;
}

struct login_server *imap_server_login(struct imap_server *srv)
{
	return &srv->ls;
}
