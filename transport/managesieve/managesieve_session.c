/* managesieve_session.c - ManageSieve sessions: before login CAPABILITY, STARTTLS (the capabilities again after the
 * handshake), AUTHENTICATE over the login core; after it the script commands, run on the worker pool
 * (managesieve_exec.c); commands dispatch from a flat table {verb, handler, states}. */
#include "transport/managesieve/managesieve_session.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "store/store.h"
#include "transport/managesieve/managesieve_exec.h"
#include "transport/managesieve/managesieve_parse.h"

#include <stdlib.h>
#include <string.h>

enum ms_state { MS_ST_AUTH = 1u << 0, MS_ST_TRANS = 1u << 1, MS_ST_DONE = 1u << 2 };

struct ms_session {
	struct login_session ls; /* first: the login core's part */
	enum ms_state state;
	bool busy, in_sasl;
	bool recap; /* TLS is up: the capabilities are said again before anything else (RFC 5804 2.2) */
	unsigned errors;
};

struct ms_server {
	struct login_server ls; /* first: the login core's part */
};

static void process_input(struct ms_session *s);
static void resume(struct login_session *ls);

static void write_buf(struct ms_session *s, const struct buf *b)
{
	conn_write(s->ls.conn, b->data, b->len);
}

static void respond(struct ms_session *s, const char *status, const char *code, const char *text)
{
	struct buf b = BUF_INIT;
	ms_append_response(&b, status, code, text);
	write_buf(s, &b);
	buf_free(&b);
}

static void no(struct ms_session *s, const char *code, const char *text)
{
	s->errors++;
	respond(s, "NO", code, text);
}

static void close_session(struct ms_session *s)
{
	s->state = MS_ST_DONE;
	login_close(&s->ls);
}

static void capabilities(struct ms_session *s)
{
	struct buf b = BUF_INIT, mechs = BUF_INIT;
	struct ms_caps caps = { 0 };
	if (s->state == MS_ST_AUTH && s->ls.secure)
		ix_sasl_offered(true, login_scram_offer(&s->ls), s->ls.srv->cfg.verifiers, &mechs);
	else if (s->state == MS_ST_AUTH) /* no password in clear: GSSAPI alone, if it is there */
		ix_sasl_offered(false, IX_SASL_SCRAM_NONE, s->ls.srv->cfg.verifiers, &mechs);
	caps.sasl = mechs.len > 0 ? buf_cstr(&mechs) + 1 : ""; /* one space before each */
	caps.starttls = s->ls.srv->cfg.tls != NULL && !conn_is_tls(s->ls.conn) && s->state == MS_ST_AUTH;
	caps.owner = s->state == MS_ST_TRANS ? s->ls.user.login : NULL;
	ms_append_capabilities(&b, &caps);
	write_buf(s, &b);
	buf_free(&b);
	buf_free(&mechs);
}

/* ---- the script commands, on the pool ---- */

struct exec_job {
	struct ms_session *s;
	struct store *st;
	char *guid, *name, *name2, *script;
	struct ms_request req;
	struct buf out, err;
	int ret;
};

static void exec_run(void *arg)
{
	struct exec_job *j = arg;
	j->ret = ms_exec(j->st, j->guid, &j->req, &j->out, &j->err);
}

static void exec_done(void *arg)
{
	struct exec_job *j = arg;
	struct ms_session *s = j->s;
	if (login_job_finished(&s->ls)) {
		if (j->ret != IX_OK)
			log_error("%s for %s failed: %s", ms_verb_name(j->req.verb), s->ls.user.login,
				  buf_cstr(&j->err));
		s->errors = 0;
		write_buf(s, &j->out);
		resume(&s->ls);
	}
	free(j->guid);
	free(j->name);
	free(j->name2);
	free(j->script);
	buf_free(&j->out);
	buf_free(&j->err);
	free(j);
}

static char *arg_value(const struct ms_arg *a, size_t *len_r)
{
	struct buf b = BUF_INIT;
	ms_arg_value(a, &b);
	*len_r = b.len;
	return buf_steal(&b);
}

static void cmd_script(struct ms_session *s, const struct ms_command *cmd)
{
	struct exec_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->st = s->ls.srv->cfg.store;
	j->guid = xstrdup(s->ls.user.guid);
	j->req.verb = cmd->verb;
	j->req.size = cmd->size;
	size_t i = 0;
	if (cmd->verb != MS_LISTSCRIPTS && cmd->verb != MS_CHECKSCRIPT) {
		j->name = arg_value(&cmd->args[i++], &j->req.name_len);
		j->req.name = j->name;
	}
	if (cmd->verb == MS_RENAMESCRIPT) {
		j->name2 = arg_value(&cmd->args[i++], &j->req.name2_len);
		j->req.name2 = j->name2;
	}
	if (cmd->verb == MS_PUTSCRIPT || cmd->verb == MS_CHECKSCRIPT) {
		j->script = arg_value(&cmd->args[i], &j->req.script_len);
		j->req.script = j->script;
	}
	bool writes = cmd->verb == MS_PUTSCRIPT || cmd->verb == MS_SETACTIVE || cmd->verb == MS_DELETESCRIPT ||
		      cmd->verb == MS_RENAMESCRIPT;
	if (writes)
		login_start_job(&s->ls, exec_run, exec_done, j);
	else
		login_start_read_job(&s->ls, exec_run, exec_done, j);
}

/* ---- the other commands ---- */

static void cmd_capability(struct ms_session *s, const struct ms_command *cmd)
{
	(void)cmd;
	capabilities(s);
	respond(s, "OK", NULL, "Capability completed.");
}

static void cmd_noop(struct ms_session *s, const struct ms_command *cmd)
{
	if (cmd->arg_count == 0) {
		respond(s, "OK", NULL, "Done.");
		return;
	}
	struct buf code = BUF_INIT, tag = BUF_INIT;
	ms_arg_value(&cmd->args[0], &tag);
	buf_append_str(&code, "TAG ");
	ms_append_string(&code, tag.data != NULL ? tag.data : "", tag.len);
	respond(s, "OK", buf_cstr(&code), "Done.");
	buf_free(&code);
	buf_free(&tag);
}

static void cmd_logout(struct ms_session *s, const struct ms_command *cmd)
{
	(void)cmd;
	respond(s, "OK", NULL, "Bye.");
	close_session(s);
}

static void cmd_starttls(struct ms_session *s, const struct ms_command *cmd)
{
	(void)cmd;
	if (s->ls.srv->cfg.tls == NULL || conn_is_tls(s->ls.conn)) {
		no(s, NULL, "TLS is not available or already active.");
		return;
	}
	respond(s, "OK", NULL, "Begin TLS negotiation now.");
	login_start_tls(&s->ls, "STARTTLS");
	s->recap = true;
}

static void cmd_authenticate(struct ms_session *s, const struct ms_command *cmd)
{
	if (!s->ls.secure) {
		no(s, "ENCRYPT-NEEDED", "Authentication is disabled without TLS: use STARTTLS first.");
		return;
	}
	if (login_throttled(&s->ls, NULL, NULL))
		return;
	struct buf mech = BUF_INIT, ir = BUF_INIT;
	ms_arg_value(&cmd->args[0], &mech);
	if (cmd->arg_count > 1)
		ms_arg_value(&cmd->args[1], &ir);
	login_sasl_start(&s->ls, NULL, buf_cstr(&mech), mech.len, cmd->arg_count > 1 ? buf_cstr(&ir) : NULL, ir.len);
	buf_free(&mech);
	buf_free(&ir);
}

static void cmd_unauthenticate(struct ms_session *s, const struct ms_command *cmd)
{
	(void)cmd;
	login_unauthenticate(&s->ls);
	s->state = MS_ST_AUTH;
	respond(s, "OK", NULL, "Logged out; you may log in again.");
}

#define ST_ANY (MS_ST_AUTH | MS_ST_TRANS)

struct ms_cmd_def {
	enum ms_verb verb;
	void (*fn)(struct ms_session *s, const struct ms_command *cmd);
	unsigned states;
};

static const struct ms_cmd_def commands[] = {
	{ MS_CAPABILITY, cmd_capability, ST_ANY },
	{ MS_NOOP, cmd_noop, ST_ANY },
	{ MS_LOGOUT, cmd_logout, ST_ANY },
	{ MS_STARTTLS, cmd_starttls, MS_ST_AUTH },
	{ MS_AUTHENTICATE, cmd_authenticate, MS_ST_AUTH },
	{ MS_UNAUTHENTICATE, cmd_unauthenticate, MS_ST_TRANS },
	{ MS_HAVESPACE, cmd_script, MS_ST_TRANS },
	{ MS_PUTSCRIPT, cmd_script, MS_ST_TRANS },
	{ MS_LISTSCRIPTS, cmd_script, MS_ST_TRANS },
	{ MS_SETACTIVE, cmd_script, MS_ST_TRANS },
	{ MS_GETSCRIPT, cmd_script, MS_ST_TRANS },
	{ MS_DELETESCRIPT, cmd_script, MS_ST_TRANS },
	{ MS_RENAMESCRIPT, cmd_script, MS_ST_TRANS },
	{ MS_CHECKSCRIPT, cmd_script, MS_ST_TRANS },
};

static void dispatch(struct ms_session *s, const struct ms_command *cmd)
{
	const struct ms_cmd_def *def = NULL;
	for (size_t i = 0; i < IX_ARRAY_LEN(commands) && def == NULL; i++)
		if (commands[i].verb == cmd->verb)
			def = &commands[i];
	if (def == NULL || !(def->states & s->state)) {
		no(s, NULL, s->state == MS_ST_AUTH ? "Log in first." : "Not allowed now: already logged in.");
		return;
	}
	if (s->state == MS_ST_TRANS && login_actor_lost(&s->ls)) {
		respond(s, "BYE", NULL, "Your full access to this mailbox was withdrawn.");
		close_session(s);
		return;
	}
	def->fn(s, cmd);
}

/* ---- input ---- */

static void resume(struct login_session *ls)
{
	struct ms_session *s = (struct ms_session *)ls;
	if (s->busy || ls->inline_job)
		return;
	conn_pause_input(ls->conn, false);
	process_input(s);
}

/* A stream that cannot be read on: said with BYE, then closed. */
static void fatal_input(struct ms_session *s, const char *why)
{
	log_info("%s: %s; closing", conn_peer(s->ls.conn), why);
	respond(s, "BYE", NULL, why);
	close_session(s);
}

static void process_input(struct ms_session *s)
{
	if (s->recap && !s->ls.tls_pending && !s->ls.closing) {
		s->recap = false;
		capabilities(s);
		respond(s, "OK", NULL, "TLS is active.");
	}
	while (!s->ls.closing && !s->busy && !s->ls.tls_pending && !s->ls.dead) {
		if (login_output_full(&s->ls))
			break;
		const char *data;
		size_t len = conn_input_peek(s->ls.conn, &data);
		if (len == 0)
			break;
		size_t used = 0;
		struct buf err = BUF_INIT;
		enum ms_parse_result r;
		/* bytes are consumed before acting on them (STARTTLS discards whatever is buffered); the pointers stay
		 * valid until the callback returns */
		if (s->in_sasl) {
			struct ms_arg arg;
			r = ms_parse_sasl_response(data, len, &used, &arg, &err);
			conn_input_consume(s->ls.conn, used);
			if (r == MS_PARSE_DONE) {
				struct buf v = BUF_INIT;
				ms_arg_value(&arg, &v);
				s->in_sasl = false;
				login_sasl_response(&s->ls, NULL, buf_cstr(&v), v.len);
				buf_free(&v);
			}
		} else {
			struct ms_command cmd;
			r = ms_parse_command(data, len, &used, &cmd, &err);
			conn_input_consume(s->ls.conn, used);
			if (r == MS_PARSE_DONE)
				dispatch(s, &cmd);
		}
		if (r == MS_PARSE_ERROR) {
			if (s->in_sasl) {
				s->in_sasl = false;
				login_sasl_response(&s->ls, NULL, "*", 1); /* a malformed response ends the exchange */
			}
			no(s, NULL, buf_cstr(&err));
		}
		if (r == MS_PARSE_FATAL)
			fatal_input(s, buf_cstr(&err));
		buf_free(&err);
		if (r == MS_PARSE_NEED_MORE) {
			if (len >= MS_INPUT_MAX)
				fatal_input(s, "Command too long");
			break;
		}
		if (s->errors >= MS_MAX_BAD_COMMANDS && !s->ls.closing)
			fatal_input(s, "Too many errors");
	}
}

/* ---- the login core's function table ---- */

static struct login_session *new_session(struct login_server *srv)
{
	(void)srv;
	struct ms_session *s = xcalloc(1, sizeof(*s));
	s->state = MS_ST_AUTH;
	return &s->ls;
}

static void free_session(struct login_session *ls)
{
	(void)ls; /* nothing of its own to free */
}

static void greet(struct login_session *ls)
{
	struct ms_session *s = (struct ms_session *)ls;
	conn_set_input_max(ls->conn, MS_INPUT_MAX);
	capabilities(s);
	respond(s, "OK", NULL, "Interchange ManageSieve ready.");
}

static void input(struct login_session *ls)
{
	process_input((struct ms_session *)ls);
}

static void set_busy(struct login_session *ls, bool busy)
{
	((struct ms_session *)ls)->busy = busy;
}

static void login_reply(struct login_session *ls, const char *ref, enum login_outcome o, const char *text)
{
	(void)ref;
	struct ms_session *s = (struct ms_session *)ls;
	struct buf b = BUF_INIT;
	switch (o) {
	case LOGIN_CONTINUE:
		/* a literal, as Cyrus's timsieved sends it: its sivtest reads no other form, and every client reads it */
		s->in_sasl = true;
		buf_printf(&b, "{%zu}\r\n%s\r\n", strlen(text), text);
		write_buf(s, &b);
		break;
	case LOGIN_SASL_BAD:
		login_failed(ls, NULL, text[0] != '\0' ? text : "bad SASL exchange");
		__attribute__((fallthrough)); /* and answered as a failure */
	case LOGIN_FAILED: no(s, NULL, "Authentication failed."); break;
	case LOGIN_CANCELLED: no(s, NULL, "Authentication cancelled."); break;
	case LOGIN_UNAVAILABLE:
		respond(s, "NO", "TRYLATER", "The directory or the store is not answering; try again later.");
		break;
	case LOGIN_HOME_UNREACHABLE:
		respond(s, "NO", "TRYLATER", "Your mailbox server cannot be reached; try again later.");
		break;
	case LOGIN_THROTTLED:
		no(s, "TRYLATER", "Temporarily blocked after too many failed logins; try again later.");
		break;
	case LOGIN_SASL_UNAVAILABLE: respond(s, "NO", "TRYLATER", "Authentication is unavailable."); break;
	case LOGIN_PROXY_LOGGED_IN:
		buf_printf(&b, "%s\r\n", text); /* the home server's OK */
		write_buf(s, &b);
		break;
	case LOGIN_PROXY_REFUSED: no(s, NULL, "Authentication failed."); break;
	case LOGIN_PROXY_FAILED:
	case LOGIN_REFERRAL: /* never for ManageSieve (RFC 2221 is IMAP's): the proxy serves it */
		respond(s, "NO", "TRYLATER", "Your mailbox server is not answering; try again later.");
		break;
	}
	buf_free(&b);
}

static void bye(struct login_session *ls, enum login_bye why)
{
	struct ms_session *s = (struct ms_session *)ls;
	s->state = MS_ST_DONE;
	if (why == LOGIN_BYE_IDLE)
		respond(s, "BYE", NULL, "Idle for too long.");
	else
		respond(s, "BYE", "TRYLATER", "Server shutting down.");
}

static int prepare(struct login_server *srv, const struct login_user *u, void **data_r, struct buf *error_r)
{
	*data_r = NULL;
	return store_mailbox_ensure(srv->cfg.store, u->guid, error_r) == IX_OK ? 0 : IX_EUNAVAIL;
}

static void free_data(void *data)
{
	(void)data;
}

static void logged_in(struct login_session *ls, const char *ref, void *data)
{
	(void)ref;
	(void)data;
	struct ms_session *s = (struct ms_session *)ls;
	s->state = MS_ST_TRANS;
	s->errors = 0;
	log_info("login %s from %s%s", ls->user.login, conn_peer(ls->conn), conn_is_tls(ls->conn) ? " (TLS)" : "");
	respond(s, "OK", NULL, "Logged in.");
}

static const struct login_proto ms_proto = {
	"sieve", PROXY_SIEVE, new_session, free_session, greet,     input,     set_busy,
	resume,  login_reply, bye,         prepare,      free_data, logged_in,
};

/* ---- the server ---- */

struct ms_server *ms_server_create(const struct login_config *config)
{
	struct ms_server *srv = xcalloc(1, sizeof(*srv));
	login_server_init(&srv->ls, &ms_proto, config);
	return srv;
}

void ms_server_destroy(struct ms_server **srvp)
{
	if (*srvp != NULL)
		login_server_cleanup(&(*srvp)->ls);
	free(*srvp);
	*srvp = NULL;
}

struct login_server *ms_server_login(struct ms_server *srv)
{
	return &srv->ls;
}
