/* pop3_session.c - POP3 sessions: AUTHORIZATION (USER/PASS, AUTH and STLS over the login core), TRANSACTION over a
 * snapshot of the Inbox, UPDATE at QUIT (the marked UIDs are expunged; messages another client removed are skipped);
 * commands dispatch from a flat table {verb, handler, states}. */
#include "transport/pop3/pop3_session.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/pop3/pop3_parse.h"
#include "store/mime.h"
#include "store/store.h"
#include "common/utf8.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum pop3_state { POP3_ST_AUTH = 1u << 0, POP3_ST_TRANS = 1u << 1, POP3_ST_DONE = 1u << 2 };

struct pop3_msg {
	uint32_t uid;
	uint64_t size; /* as stored; RFC 1939 sizes count CRLF line ends, which the store keeps */
	bool deleted;
	bool retrieved; /* RETR sent it whole: \Seen is set at QUIT (as IMAP clients then expect) */
};

struct pop3_session {
	struct login_session ls; /* first: the login core's part */
	struct pop3_parser parser;
	enum pop3_state state;
	bool busy, in_sasl;
	bool utf8; /* the UTF8 command (RFC 6856): messages go out as stored, never downgraded */
	unsigned errors;
	char *user_arg; /* USER name waiting for PASS */
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t count;
};

struct pop3_server {
	struct login_server ls; /* first: the login core's part */
};

static void process_input(struct pop3_session *s);

static void reply(struct pop3_session *s, const char *fmt, ...) IX_PRINTF(2, 3);
static void reply(struct pop3_session *s, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append_str(&b, "\r\n");
	conn_write(s->ls.conn, b.data, b.len);
	buf_free(&b);
}

static void err_reply(struct pop3_session *s, const char *text)
{
	s->errors++;
	reply(s, "-ERR %s", text);
}

static void close_session(struct pop3_session *s)
{
	s->state = POP3_ST_DONE;
	login_close(&s->ls);
}

static struct pop3_msg *msg_arg(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->msg == 0 || cmd->msg > s->count) {
		err_reply(s, "No such message.");
		return NULL;
	}
	struct pop3_msg *m = &s->msgs[cmd->msg - 1];
	if (m->deleted) {
		err_reply(s, "Message is deleted.");
		return NULL;
	}
	return m;
}

/* Sends a message (or its header and the first lines of its body) dot-stuffed, with CRLF line ends. */
static void send_message(struct pop3_session *s, struct pop3_msg *m, bool top, uint32_t lines)
{
	struct buf data = BUF_INIT, err = BUF_INIT;
	struct store *st = s->ls.srv->cfg.store;
	if (store_fetch_body(st, s->ls.user.guid, "INBOX", m->uid, 0, 0, &data, &err) != 0) {
		err_reply(s, "[SYS/TEMP] That message was removed by another client.");
		buf_free(&data);
		buf_free(&err);
		return;
	}
	struct mime_info *mi = NULL;
	if (!s->utf8 && store_fetch_mime(st, s->ls.user.guid, "INBOX", m->uid, &mi, NULL) == 0 &&
	    (mi->flags & MIME_F_8BIT_HEADER) != 0 && mi->msg_size == data.len) {
		/* RFC 6856 section 2 (and RFC 6857): a client that did not say UTF8 gets the header downgraded to ASCII,
		 * as IMAP does for a session without UTF8=ACCEPT */
		struct buf down = BUF_INIT;
		mime_downgrade(buf_cstr(&data), mi, &down);
		buf_free(&data);
		data = down;
	}
	mime_info_destroy(&mi);
	struct buf out = BUF_INIT;
	buf_reserve(&out, data.len + data.len / 32 + 64);
	buf_printf(&out, "+OK %zu octets\r\n", data.len);
	const char *p = buf_cstr(&data), *end = p + data.len;
	bool in_body = false;
	uint32_t body_lines = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		size_t content = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
		if (top && in_body && body_lines++ >= lines)
			break;
		if (content > 0 && p[0] == '.')
			buf_append_char(&out, '.');
		buf_append(&out, p, content);
		buf_append_str(&out, "\r\n");
		if (content == 0 && !in_body)
			in_body = true;
		p += len + (nl != NULL ? 1 : 0);
	}
	buf_append_str(&out, ".\r\n");
	conn_write(s->ls.conn, out.data, out.len);
	buf_free(&out);
	buf_free(&data);
	buf_free(&err);
}

/* The UPDATE state's synced writes (\Seen for what RETR sent, then the expunge of what DELE marked) run on the
 * pool; the session reads nothing more and closes when they are done. */
struct update_job {
	struct pop3_session *s;
	struct store *st;
	char *guid;
	uint32_t *del, *seen;
	size_t ndel, nseen, gone;
	int ret;
	struct buf err;
};

static void update_run(void *arg)
{
	struct update_job *j = arg;
	if (j->nseen > 0) {
		struct store_flag_update upd = { 0 };
		upd.uids = j->seen;
		upd.nuids = j->nseen;
		upd.mode = STORE_FLAGS_ADD;
		upd.flags = STORE_FLAG_SEEN;
		store_flags(j->st, j->guid, "INBOX", &upd, NULL);
		free(upd.failed_r);
	}
	if (j->ndel > 0) {
		uint32_t *exp = NULL;
		j->ret = store_expunge(j->st, j->guid, "INBOX", j->del, j->ndel, &exp, &j->gone, &j->err);
		free(exp);
	}
}

static void update_job_free(struct update_job *j)
{
	free(j->guid);
	free(j->del);
	free(j->seen);
	buf_free(&j->err);
	free(j);
}

static void update_done(void *arg)
{
	struct update_job *j = arg;
	struct pop3_session *s = j->s;
	if (login_job_finished(&s->ls)) {
		if (j->ret != 0) {
			log_error("POP3 update for %s failed: %s", s->ls.user.login, buf_cstr(&j->err));
			reply(s, "-ERR [SYS/TEMP] Some deleted messages could not be removed.");
		} else {
			reply(s, "+OK Bye; %zu messages deleted.", j->gone);
		}
		close_session(s);
	}
	update_job_free(j);
}

static void update_and_quit(struct pop3_session *s)
{
	struct update_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->st = s->ls.srv->cfg.store;
	j->guid = xstrdup(s->ls.user.guid);
	j->del = xcalloc(s->count + 1, sizeof(*j->del));
	j->seen = xcalloc(s->count + 1, sizeof(*j->seen));
	for (size_t i = 0; i < s->count; i++) {
		if (s->msgs[i].deleted)
			j->del[j->ndel++] = s->msgs[i].uid;
		else if (s->msgs[i].retrieved)
			j->seen[j->nseen++] = s->msgs[i].uid;
	}
	s->state = POP3_ST_DONE;
	login_start_job(&s->ls, update_run, update_done, j);
}

/* ---- commands ---- */

static void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	reply(s, "+OK Capability list follows");
	reply(s, "CAPA");
	reply(s, "TOP");
	reply(s, "UIDL");
	reply(s, "RESP-CODES");
	reply(s, "AUTH-RESP-CODE");
	reply(s, "PIPELINING");
	if (s->state == POP3_ST_AUTH) {
		struct buf mechs = BUF_INIT;
		ix_sasl_offered(s->ls.secure, login_scram_offer(&s->ls), s->ls.srv->cfg.verifiers, &mechs);
		if (s->ls.secure)
			reply(s, "USER");
		if (mechs.len > 0)
			reply(s, "SASL%s", buf_cstr(&mechs));
		buf_free(&mechs);
		if (s->ls.srv->cfg.tls != NULL && !conn_is_tls(s->ls.conn))
			reply(s, "STLS");
	}
	reply(s, "UTF8 USER");
	reply(s, "IMPLEMENTATION Interchange");
	reply(s, ".");
}

static void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	if (s->state == POP3_ST_TRANS) {
		update_and_quit(s);
		return;
	}
	reply(s, "+OK Bye.");
	close_session(s);
}

static void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	if (s->ls.srv->cfg.tls == NULL || conn_is_tls(s->ls.conn)) {
		err_reply(s, "TLS is not available or already active.");
		return;
	}
	reply(s, "+OK Begin TLS negotiation.");
	login_start_tls(&s->ls, "STLS");
	pop3_parser_init(&s->parser);
}

/* UTF8 (RFC 6856 section 2): from now on messages are sent as stored (UTF-8 headers included); user names and
 * passwords are UTF-8 before and after it (UTF8 USER). */
static void cmd_utf8(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	s->utf8 = true;
	reply(s, "+OK UTF8 enabled.");
}

static void cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!s->ls.secure) {
		err_reply(s, "[AUTH] Plaintext login is disabled: use STLS first.");
		return;
	}
	if (!utf8_valid(cmd->args[0].str, cmd->args[0].len)) {
		err_reply(s, "[AUTH] User names are UTF-8.");
		return;
	}
	free(s->user_arg);
	s->user_arg = xstrndup(cmd->args[0].str, cmd->args[0].len);
	reply(s, "+OK Send your password.");
}

static void cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (s->user_arg == NULL) {
		err_reply(s, "USER first.");
		return;
	}
	if (login_throttled(&s->ls, NULL, s->user_arg))
		return;
	char *user = s->user_arg;
	s->user_arg = NULL;
	login_password(&s->ls, NULL, user, strlen(user), cmd->args[0].str, cmd->args[0].len);
	free(user);
}

static void cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->arg_count == 0) {
		reply(s, "+OK Mechanisms follow");
		if (s->ls.secure) {
			reply(s, "PLAIN");
			reply(s, "LOGIN");
		}
		reply(s, ".");
		return;
	}
	if (!s->ls.secure) {
		err_reply(s, "[AUTH] Authentication is disabled without TLS: use STLS first.");
		return;
	}
	if (login_throttled(&s->ls, NULL, NULL))
		return;
	const struct pop3_arg *ir = cmd->arg_count > 1 ? &cmd->args[1] : NULL;
	login_sasl_start(&s->ls, NULL, cmd->args[0].str, cmd->args[0].len, ir != NULL ? ir->str : NULL,
			 ir != NULL ? ir->len : 0);
}

static void cmd_apop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	err_reply(s, "APOP is not supported: use USER/PASS or AUTH over TLS.");
}

static void cmd_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	size_t n = 0;
	uint64_t bytes = 0;
	for (size_t i = 0; i < s->count; i++)
		if (!s->msgs[i].deleted) {
			n++;
			bytes += s->msgs[i].size;
		}
	reply(s, "+OK %zu %llu", n, (unsigned long long)bytes);
}

static void cmd_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	bool uidl = cmd->verb == POP3_UIDL;
	if (cmd->has_msg) {
		struct pop3_msg *m = msg_arg(s, cmd);
		if (m == NULL)
			return;
		if (uidl)
			reply(s, "+OK %u %u.%u", cmd->msg, s->uidvalidity, m->uid);
		else
			reply(s, "+OK %u %llu", cmd->msg, (unsigned long long)m->size);
		return;
	}
	reply(s, "+OK");
	for (size_t i = 0; i < s->count; i++) {
		if (s->msgs[i].deleted)
			continue;
		if (uidl)
			reply(s, "%zu %u.%u", i + 1, s->uidvalidity, s->msgs[i].uid);
		else
			reply(s, "%zu %llu", i + 1, (unsigned long long)s->msgs[i].size);
	}
	reply(s, ".");
}

static void cmd_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_msg *m = msg_arg(s, cmd);
	if (m == NULL)
		return;
	send_message(s, m, cmd->verb == POP3_TOP, cmd->lines);
	if (cmd->verb == POP3_RETR)
		m->retrieved = true;
}

static void cmd_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_msg *m = msg_arg(s, cmd);
	if (m == NULL)
		return;
	m->deleted = true;
	reply(s, "+OK Message %u deleted.", cmd->msg);
}

static void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	reply(s, "+OK");
}

static void cmd_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	for (size_t i = 0; i < s->count; i++)
		s->msgs[i].deleted = false;
	reply(s, "+OK");
}

#define ST_ANY (POP3_ST_AUTH | POP3_ST_TRANS)

struct pop3_cmd_def {
	enum pop3_verb verb;
	void (*fn)(struct pop3_session *s, const struct pop3_command *cmd);
	unsigned states;
};

static const struct pop3_cmd_def commands[] = {
	{ POP3_CAPA, cmd_capa, ST_ANY },        { POP3_QUIT, cmd_quit, ST_ANY },
	{ POP3_STLS, cmd_stls, POP3_ST_AUTH },  { POP3_USER, cmd_user, POP3_ST_AUTH },
	{ POP3_PASS, cmd_pass, POP3_ST_AUTH },  { POP3_AUTH, cmd_auth, POP3_ST_AUTH },
	{ POP3_APOP, cmd_apop, POP3_ST_AUTH },  { POP3_STAT, cmd_stat, POP3_ST_TRANS },
	{ POP3_LIST, cmd_list, POP3_ST_TRANS }, { POP3_UIDL, cmd_list, POP3_ST_TRANS },
	{ POP3_RETR, cmd_retr, POP3_ST_TRANS }, { POP3_TOP, cmd_retr, POP3_ST_TRANS },
	{ POP3_DELE, cmd_dele, POP3_ST_TRANS }, { POP3_NOOP, cmd_noop, POP3_ST_TRANS },
	{ POP3_RSET, cmd_rset, POP3_ST_TRANS }, { POP3_UTF8, cmd_utf8, POP3_ST_AUTH },
};

static void dispatch(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct pop3_cmd_def *def = NULL;
	for (size_t i = 0; i < IX_ARRAY_LEN(commands) && def == NULL; i++)
		if (commands[i].verb == cmd->verb)
			def = &commands[i];
	if (def == NULL || !(def->states & s->state)) {
		err_reply(s, s->state == POP3_ST_AUTH ? "Log in first." : "Not allowed now: already logged in.");
		return;
	}
	if (s->state == POP3_ST_TRANS && login_actor_lost(&s->ls)) { /* nothing deleted: no UPDATE state */
		err_reply(s, "[AUTH] Your full access to this mailbox was withdrawn.");
		close_session(s);
		return;
	}
	def->fn(s, cmd);
}

/* ---- input ---- */

static void resume(struct login_session *ls)
{
	struct pop3_session *s = (struct pop3_session *)ls;
	if (s->busy || ls->inline_job)
		return;
	conn_pause_input(ls->conn, false);
	process_input(s);
}

static void process_input(struct pop3_session *s)
{
	while (!s->ls.closing && !s->busy && !s->ls.tls_pending && !s->ls.dead) {
		if (login_output_full(&s->ls))
			break;
		const char *data;
		size_t len = conn_input_peek(s->ls.conn, &data);
		if (len == 0)
			break;
		size_t used = 0;
		struct buf err = BUF_INIT;
		enum pop3_parse_result r;
		/* bytes are consumed before acting on them (STLS discards whatever is buffered); the pointers stay
		 * valid until the callback returns */
		if (s->in_sasl) {
			const char *line;
			size_t llen;
			bool cancel;
			r = pop3_parse_sasl_line(&s->parser, data, len, &used, &line, &llen, &cancel, &err);
			conn_input_consume(s->ls.conn, used);
			if (r == POP3_PARSE_DONE) {
				s->in_sasl = false;
				login_sasl_response(&s->ls, NULL, line, llen);
			}
		} else {
			struct pop3_command cmd;
			r = pop3_parse_command(&s->parser, data, len, &used, &cmd, &err);
			conn_input_consume(s->ls.conn, used);
			if (r == POP3_PARSE_DONE)
				dispatch(s, &cmd);
		}
		if (r == POP3_PARSE_ERROR) {
			s->in_sasl = false;
			err_reply(s, buf_cstr(&err));
		}
		buf_free(&err);
		if (r == POP3_PARSE_NEED_MORE && used == 0)
			break;
		if (s->errors >= POP3_MAX_BAD_COMMANDS && !s->ls.closing) {
			reply(s, "-ERR Too many errors; bye.");
			close_session(s);
		}
	}
}

/* ---- the login core's function table ---- */

static struct login_session *new_session(struct login_server *srv)
{
	(void)srv;
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	s->state = POP3_ST_AUTH;
	pop3_parser_init(&s->parser);
	return &s->ls;
}

static void free_session(struct login_session *ls)
{
	struct pop3_session *s = (struct pop3_session *)ls;
	free(s->user_arg);
	free(s->msgs);
}

static void greet(struct login_session *ls)
{
	reply((struct pop3_session *)ls, "+OK %s Interchange POP3 ready.", ls->srv->cfg.hostname);
}

static void input(struct login_session *ls)
{
	process_input((struct pop3_session *)ls);
}

static void set_busy(struct login_session *ls, bool busy)
{
	((struct pop3_session *)ls)->busy = busy;
}

static void login_reply(struct login_session *ls, const char *ref, enum login_outcome o, const char *text)
{
	(void)ref;
	struct pop3_session *s = (struct pop3_session *)ls;
	switch (o) {
	case LOGIN_CONTINUE:
		s->in_sasl = true;
		reply(s, "+ %s", text);
		break;
	case LOGIN_SASL_BAD: /* counted as a failure in POP3 */
		login_failed(ls, NULL, text[0] != '\0' ? text : "bad SASL exchange");
		__attribute__((fallthrough)); /* and answered as a failure */
	case LOGIN_FAILED: err_reply(s, "[AUTH] Authentication failed."); break;
	case LOGIN_CANCELLED: err_reply(s, "Authentication cancelled."); break;
	case LOGIN_UNAVAILABLE:
		reply(s, "-ERR [SYS/TEMP] The directory or the store is not answering; try again later.");
		break;
	case LOGIN_HOME_UNREACHABLE:
		reply(s, "-ERR [SYS/TEMP] Your mailbox server cannot be reached; try again later.");
		break;
	case LOGIN_THROTTLED:
		err_reply(s, "[LOGIN-DELAY] Temporarily blocked after too many failed logins; try again later.");
		break;
	case LOGIN_SASL_UNAVAILABLE: reply(s, "-ERR [SYS/TEMP] Authentication is unavailable."); break;
	case LOGIN_PROXY_LOGGED_IN:
		reply(s, "%s", text); /* the home server's +OK */
		break;
	case LOGIN_PROXY_REFUSED:
		err_reply(s, strncmp(text, "-ERR ", 5) == 0 ? text + 5 : "[AUTH] Authentication failed.");
		break;
	case LOGIN_PROXY_FAILED:
	case LOGIN_REFERRAL: /* never for POP3 (RFC 2221 is IMAP's): the proxy serves it */
		reply(s, "-ERR [SYS/TEMP] Your mailbox server is not answering; try again later.");
		break;
	}
}

static void bye(struct login_session *ls, enum login_bye why)
{
	struct pop3_session *s = (struct pop3_session *)ls;
	s->state = POP3_ST_DONE;
	if (why == LOGIN_BYE_IDLE)
		reply(s, "-ERR Idle for too long; bye.");
	else if (why == LOGIN_BYE_SHUTDOWN)
		reply(s, "-ERR [SYS/TEMP] Server shutting down; no messages were deleted.");
	else
		reply(s, "-ERR [SYS/TEMP] Server shutting down.");
}

/* The maildrop snapshot (RFC 1939: numbered at login, fixed for the session). */
struct maildrop {
	uint32_t uidvalidity;
	struct store_msg *list;
	size_t n;
};

static void free_data(void *data)
{
	struct maildrop *md = data;
	store_msg_list_free(&md->list, md->n);
	free(md);
}

static int prepare(struct login_server *srv, const struct login_user *u, void **data_r, struct buf *error_r)
{
	struct maildrop *md = xcalloc(1, sizeof(*md));
	*data_r = md;
	store_mailbox_ensure(srv->cfg.store, u->guid, NULL);
	struct store_folder_info info;
	if (store_folder_status(srv->cfg.store, u->guid, "INBOX", NULL, &info, NULL) == 0) {
		md->uidvalidity = info.uidvalidity;
		store_folder_info_free(&info);
	}
	if (store_msg_list(srv->cfg.store, u->guid, "INBOX", NULL, &md->list, &md->n, error_r) != 0)
		return IX_EUNAVAIL;
	return 0;
}

static void logged_in(struct login_session *ls, const char *ref, void *data)
{
	(void)ref;
	struct pop3_session *s = (struct pop3_session *)ls;
	struct maildrop *md = data;
	s->uidvalidity = md->uidvalidity;
	s->msgs = xcalloc(md->n + 1, sizeof(*s->msgs));
	for (size_t i = 0; i < md->n; i++)
		s->msgs[i] = (struct pop3_msg){ md->list[i].uid, md->list[i].size, false, false };
	s->count = md->n;
	free_data(md);
	s->state = POP3_ST_TRANS;
	s->errors = 0;
	log_info("login %s from %s%s (%zu messages)", ls->user.login, conn_peer(ls->conn),
		 conn_is_tls(ls->conn) ? " (TLS)" : "", s->count);
	reply(s, "+OK Logged in; %zu messages.", s->count);
}

static const struct login_proto pop3_proto = {
	"pop",  PROXY_POP3,  new_session, free_session, greet,     input,     set_busy,
	resume, login_reply, bye,         prepare,      free_data, logged_in,
};

/* ---- the server ---- */

struct pop3_server *pop3_server_create(const struct login_config *config)
{
	struct pop3_server *srv = xcalloc(1, sizeof(*srv));
	login_server_init(&srv->ls, &pop3_proto, config);
	return srv;
}

void pop3_server_destroy(struct pop3_server **srvp)
{
	if (*srvp != NULL)
		login_server_cleanup(&(*srvp)->ls);
	free(*srvp);
	*srvp = NULL;
}

struct login_server *pop3_server_login(struct pop3_server *srv)
{
	return &srv->ls;
}
