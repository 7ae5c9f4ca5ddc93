/* pop3_session.c - POP3 sessions: AUTHORIZATION (USER/PASS, AUTH through ix_sasl, STLS), TRANSACTION over a
 * snapshot of the Inbox, UPDATE at QUIT (the marked UIDs are expunged; messages another client removed are skipped). */
#include "transport/pop3/pop3_session.h"
#include "transport/net/conn.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/pop3/pop3_parse.h"
#include "transport/login/proxy.h"
#include "transport/net/sasl.h"
#include "store/store.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUTPUT_POLL_MS 10

enum pop3_state { POP3_ST_AUTH, POP3_ST_TRANS, POP3_ST_DONE };

struct pop3_msg {
	uint32_t uid;
	uint64_t size; /* as stored; RFC 1939 sizes count CRLF line ends, which the store keeps */
	bool deleted;
	bool retrieved; /* RETR sent it whole: \Seen is set at QUIT (as IMAP clients then expect) */
};

struct pop3_session {
	struct pop3_session *prev, *next;
	struct pop3_server *srv;
	struct conn *conn;
	void (*on_close)(void *ctx);
	void *on_close_ctx;
	struct pop3_parser parser;
	enum pop3_state state;
	bool secure, closing, dead, job_out, busy, tls_pending, in_sasl;
	bool inline_job; /* auth runs inline (no pool) */
	unsigned errors;
	char *user_arg;      /* USER name waiting for PASS */
	struct ix_sasl *sasl;
	char *sasl_pass;     /* the password SASL checked, kept for a proxied login (wiped once used) */
	size_t sasl_passlen;
	struct proxy *proxy; /* a user homed on another server: the login there, then the piped session */
	struct imapd_user user;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t count;
	struct evloop_timer timer;
};

struct pop3_server {
	struct pop3_server_config cfg;
	struct throttle *throttle;
	struct pop3_session *sessions;
	size_t nsessions;
	bool shutting_down;
	void (*done)(void *ctx);
	void *done_ctx;
};

static void process_input(struct pop3_session *s);
static void session_free(struct pop3_session *s);
static void session_end(struct pop3_session *s);

static void reply(struct pop3_session *s, const char *fmt, ...) IX_PRINTF(2, 3);
static void reply(struct pop3_session *s, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append_str(&b, "\r\n");
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

static void err_reply(struct pop3_session *s, const char *text)
{
	s->errors++;
	reply(s, "-ERR %s", text);
}

static void close_session(struct pop3_session *s)
{
	s->closing = true;
	s->state = POP3_ST_DONE;
	conn_close_after_flush(s->conn);
}

/* ---- authorization ---- */

struct auth_job {
	struct pop3_session *s;
	bool sasl, sasl_start;
	char *user, *pass, *mech, *resp;
	size_t passlen, resp_len;
	bool has_resp;
	struct buf challenge, err;
	int ret;
	struct imapd_user found;
	struct store_msg *list;
	size_t n;
	uint32_t uidvalidity;
	int where;           /* imapd_user_backend: 1 when the mailbox is on another server (backend) */
	struct proxy_backend backend;
};

static int sasl_check(void *ctx, const char *user, const char *pass, size_t passlen)
{
	struct pop3_session *s = ctx;
	int ret = s->srv->cfg.users.check_password(s->srv->cfg.users.ctx, user, pass, passlen);
	if (ret == 0) /* a user homed elsewhere is logged in there with it */
		imapd_password_keep(&s->sasl_pass, &s->sasl_passlen, pass, passlen);
	return ret;
}

static void auth_run(void *arg)
{
	struct auth_job *j = arg;
	struct pop3_server *srv = j->s->srv;
	if (j->sasl) {
		j->ret = j->sasl_start ? ix_sasl_start(j->s->sasl, j->mech, j->has_resp ? j->resp : NULL, j->resp_len,
						       &j->challenge, &j->err)
				       : ix_sasl_step(j->s->sasl, j->resp, j->resp_len, &j->challenge, &j->err);
		if (j->ret != IX_SASL_DONE)
			return;
		j->user = xstrdup(ix_sasl_user(j->s->sasl));
	} else {
		j->ret = srv->cfg.users.check_password(srv->cfg.users.ctx, j->user, j->pass, j->passlen);
		if (j->ret != 0)
			return;
	}
	if (srv->cfg.users.lookup(srv->cfg.users.ctx, j->user, &j->found) != 0) {
		j->ret = IX_EAUTH;
		return;
	}
	j->where = imapd_user_backend(&srv->cfg.users, srv->cfg.server_dn, &j->found, true, &j->backend, &j->err);
	if (j->where != 0)
		return;
	/* the maildrop snapshot (RFC 1939: numbered at login, fixed for the session) */
	store_mailbox_ensure(srv->cfg.store, j->found.guid, NULL);
	struct store_folder_info info;
	if (store_folder_status(srv->cfg.store, j->found.guid, "INBOX", NULL, &info, NULL) == 0) {
		j->uidvalidity = info.uidvalidity;
		store_folder_info_free(&info);
	}
	if (store_msg_list(srv->cfg.store, j->found.guid, "INBOX", NULL, &j->list, &j->n, &j->err) != 0)
		j->ret = IX_EUNAVAIL;
}

static void auth_job_free(struct auth_job *j)
{
	free(j->user);
	if (j->pass != NULL) {
		memset(j->pass, 0, j->passlen);
		free(j->pass);
	}
	free(j->mech);
	free(j->resp);
	buf_free(&j->challenge);
	buf_free(&j->err);
	imapd_user_free(&j->found);
	store_msg_list_free(&j->list, j->n);
	free(j);
}

static void proxy_event(struct proxy *p, enum proxy_result result, const char *text, void *ctx)
{
	(void)p;
	struct pop3_session *s = ctx;
	if (result == PROXY_LOGGED_IN) {
		reply(s, "%s", text); /* the home server's +OK */
		return;
	}
	if (result == PROXY_ENDED) {
		proxy_destroy(&s->proxy);
		session_end(s);
		return;
	}
	if (result == PROXY_REFUSED) {
		log_info("login from %s refused by the home server: %s", conn_peer(s->conn), text);
		err_reply(s, strncmp(text, "-ERR ", 5) == 0 ? text + 5 : "[AUTH] Authentication failed.");
	} else {
		log_warn("login from %s not proxied to the home server %s", conn_peer(s->conn), text);
		reply(s, "-ERR [SYS/TEMP] Your mailbox server is not answering; try again later.");
	}
	proxy_destroy(&s->proxy); /* text pointed into it */
	s->busy = false;
	conn_pause_input(s->conn, false);
	process_input(s);
}

/* The password was right and the mailbox lives on another server: log in there and pipe the session. */
static void start_proxy(struct pop3_session *s, struct auth_job *j)
{
	struct proxy_login l = { 0 };
	l.proto = PROXY_POP3;
	l.backend = &j->backend;
	l.user = j->found.login;
	l.pass = j->sasl ? s->sasl_pass : j->pass;
	l.passlen = j->sasl ? s->sasl_passlen : j->passlen;
	l.tls = j->backend.tls && s->srv->cfg.proxy_trust != NULL ? proxy_trust_ctx(s->srv->cfg.proxy_trust) : NULL;
	l.idle_timeout_msecs = s->srv->cfg.idle_timeout_msecs;
	s->busy = true; /* input stays paused until the home server answers */
	s->proxy = proxy_start(s->srv->cfg.loop, s->conn, &l, proxy_event, s);
	imapd_password_wipe(&s->sasl_pass, &s->sasl_passlen);
}

static void auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct pop3_session *s = j->s;
	s->job_out = false;
	s->busy = false;
	if (s->dead) {
		auth_job_free(j);
		session_free(s);
		return;
	}
	s->in_sasl = false;
	if (j->ret == 0 && (j->where < 0 || (j->where > 0 && j->sasl && s->sasl_pass == NULL))) {
		log_error("login %s from %s: %s", j->found.login, conn_peer(s->conn),
			  j->where < 0 ? buf_cstr(&j->err) : "no password to log in at the home server with");
		reply(s, "-ERR [SYS/TEMP] Your mailbox server cannot be reached; try again later.");
	} else if (j->ret == 0 && j->where > 0) {
		start_proxy(s, j);
		auth_job_free(j);
		return;
	} else if (j->sasl && j->ret == IX_SASL_CONTINUE) {
		s->in_sasl = true;
		reply(s, "+ %s", buf_cstr(&j->challenge));
	} else if (j->ret == 0) {
		s->user = j->found;
		memset(&j->found, 0, sizeof(j->found));
		s->uidvalidity = j->uidvalidity;
		s->msgs = xcalloc(j->n + 1, sizeof(*s->msgs));
		for (size_t i = 0; i < j->n; i++)
			s->msgs[i] = (struct pop3_msg){ j->list[i].uid, j->list[i].size, false, false };
		s->count = j->n;
		s->state = POP3_ST_TRANS;
		s->errors = 0;
		conn_set_idle_timeout(s->conn, s->srv->cfg.idle_timeout_msecs);
		log_info("login %s from %s%s (%zu messages)", s->user.login, conn_peer(s->conn),
			 conn_is_tls(s->conn) ? " (TLS)" : "", s->count);
		reply(s, "+OK Logged in; %zu messages.", s->count);
	} else if (j->sasl && j->ret == IX_SASL_CANCELLED) {
		err_reply(s, "Authentication cancelled.");
	} else if (j->ret == IX_EUNAVAIL) {
		reply(s, "-ERR [SYS/TEMP] The directory or the store is not answering; try again later.");
	} else {
		unsigned n = throttle_fail(s->srv->throttle, conn_peer(s->conn), (uint64_t)time(NULL));
		log_info("login failed for %s from %s (%u failures this minute)", j->user != NULL ? j->user : "(sasl)",
			 conn_peer(s->conn), n);
		err_reply(s, "[AUTH] Authentication failed.");
	}
	auth_job_free(j);
	if (s->inline_job)
		return;
	conn_pause_input(s->conn, false);
	process_input(s);
}

static void start_auth(struct pop3_session *s, struct auth_job *j)
{
	s->job_out = true;
	s->busy = true;
	if (s->srv->cfg.pool == NULL) {
		/* no pool (fuzzing, tools): inline; the caller's input loop carries on afterwards */
		s->inline_job = true;
		auth_run(j);
		auth_done(j);
		s->inline_job = false;
		return;
	}
	conn_pause_input(s->conn, true);
	workpool_submit(s->srv->cfg.pool, auth_run, auth_done, j);
}

static bool throttled(struct pop3_session *s)
{
	if (!throttle_blocked(s->srv->throttle, conn_peer(s->conn), (uint64_t)time(NULL)))
		return false;
	log_warn("login refused from %s: more than %u failures in a minute", conn_peer(s->conn),
		 s->srv->cfg.max_auth_failures);
	err_reply(s, "[LOGIN-DELAY] Too many failed logins from your address; try again in a minute.");
	return true;
}

/* ---- transaction ---- */

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
	if (store_fetch_body(s->srv->cfg.store, s->user.guid, "INBOX", m->uid, 0, 0, &data, &err) != 0) {
		err_reply(s, "[SYS/TEMP] That message was removed by another client.");
		buf_free(&data);
		buf_free(&err);
		return;
	}
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
	conn_write(s->conn, out.data, out.len);
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

static void update_done(void *arg)
{
	struct update_job *j = arg;
	struct pop3_session *s = j->s;
	s->job_out = false;
	if (s->dead) {
		session_free(s);
	} else {
		if (j->ret != 0) {
			log_error("POP3 update for %s failed: %s", s->user.login, buf_cstr(&j->err));
			reply(s, "-ERR [SYS/TEMP] Some deleted messages could not be removed.");
		} else {
			reply(s, "+OK Bye; %zu messages deleted.", j->gone);
		}
		close_session(s);
	}
	free(j->guid);
	free(j->del);
	free(j->seen);
	buf_free(&j->err);
	free(j);
}

static void update_and_quit(struct pop3_session *s)
{
	struct update_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->st = s->srv->cfg.store;
	j->guid = xstrdup(s->user.guid);
	j->del = xcalloc(s->count + 1, sizeof(*j->del));
	j->seen = xcalloc(s->count + 1, sizeof(*j->seen));
	for (size_t i = 0; i < s->count; i++) {
		if (s->msgs[i].deleted)
			j->del[j->ndel++] = s->msgs[i].uid;
		else if (s->msgs[i].retrieved)
			j->seen[j->nseen++] = s->msgs[i].uid;
	}
	s->state = POP3_ST_DONE;
	s->job_out = true;
	s->busy = true;
	if (s->srv->cfg.pool == NULL || (j->ndel == 0 && j->nseen == 0)) {
		update_run(j);
		update_done(j);
		return;
	}
	conn_pause_input(s->conn, true);
	workpool_submit(s->srv->cfg.pool, update_run, update_done, j);
}

static void cmd_capa(struct pop3_session *s)
{
	reply(s, "+OK Capability list follows");
	reply(s, "CAPA");
	reply(s, "TOP");
	reply(s, "UIDL");
	reply(s, "RESP-CODES");
	reply(s, "AUTH-RESP-CODE");
	reply(s, "PIPELINING");
	if (s->state == POP3_ST_AUTH) {
		if (s->secure) {
			reply(s, "USER");
			reply(s, "SASL %s", IX_SASL_MECHS);
		}
		if (s->srv->cfg.tls != NULL && !conn_is_tls(s->conn))
			reply(s, "STLS");
	}
	reply(s, "IMPLEMENTATION Interchange");
	reply(s, ".");
}

static void dispatch(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->verb == POP3_CAPA) {
		cmd_capa(s);
		return;
	}
	if (cmd->verb == POP3_QUIT) {
		if (s->state == POP3_ST_TRANS) {
			update_and_quit(s);
		} else {
			reply(s, "+OK Bye.");
			close_session(s);
		}
		return;
	}
	if (s->state == POP3_ST_AUTH) {
		switch (cmd->verb) {
		case POP3_STLS:
			if (s->srv->cfg.tls == NULL || conn_is_tls(s->conn)) {
				err_reply(s, "TLS is not available or already active.");
				return;
			}
			reply(s, "+OK Begin TLS negotiation.");
			size_t discarded = 0;
			conn_start_tls(s->conn, s->srv->cfg.tls, NULL, &discarded);
			if (discarded > 0)
				log_warn("%s: %zu bytes sent after STLS were discarded", conn_peer(s->conn), discarded);
			pop3_parser_init(&s->parser);
			s->tls_pending = true;
			return;
		case POP3_USER:
			if (!s->secure) {
				err_reply(s, "[AUTH] Plaintext login is disabled: use STLS first.");
				return;
			}
			free(s->user_arg);
			s->user_arg = xstrndup(cmd->args[0].str, cmd->args[0].len);
			reply(s, "+OK Send your password.");
			return;
		case POP3_PASS: {
			if (s->user_arg == NULL) {
				err_reply(s, "USER first.");
				return;
			}
			if (throttled(s))
				return;
			struct auth_job *j = xcalloc(1, sizeof(*j));
			j->s = s;
			j->user = s->user_arg;
			s->user_arg = NULL;
			j->pass = xstrndup(cmd->args[0].str, cmd->args[0].len);
			j->passlen = cmd->args[0].len;
			start_auth(s, j);
			return;
		}
		case POP3_AUTH: {
			if (cmd->arg_count == 0) {
				reply(s, "+OK Mechanisms follow");
				if (s->secure) {
					reply(s, "PLAIN");
					reply(s, "LOGIN");
				}
				reply(s, ".");
				return;
			}
			if (!s->secure) {
				err_reply(s, "[AUTH] Authentication is disabled without TLS: use STLS first.");
				return;
			}
			if (throttled(s))
				return;
			if (s->sasl == NULL) {
				struct buf err = BUF_INIT;
				if (ix_sasl_create("pop", s->srv->cfg.hostname, s->secure, sasl_check, s, &s->sasl,
						   &err) != 0) {
					log_error("SASL: %s", buf_cstr(&err));
					buf_free(&err);
					reply(s, "-ERR [SYS/TEMP] Authentication is unavailable.");
					return;
				}
				buf_free(&err);
			}
			struct auth_job *j = xcalloc(1, sizeof(*j));
			j->s = s;
			j->sasl = j->sasl_start = true;
			j->mech = xstrndup(cmd->args[0].str, cmd->args[0].len);
			if (cmd->arg_count > 1) {
				j->has_resp = true;
				j->resp = xstrndup(cmd->args[1].str, cmd->args[1].len);
				j->resp_len = cmd->args[1].len;
			}
			start_auth(s, j);
			return;
		}
		case POP3_APOP:
			err_reply(s, "APOP is not supported: use USER/PASS or AUTH over TLS.");
			return;
		default:
			err_reply(s, "Log in first.");
			return;
		}
	}
	switch (cmd->verb) {
	case POP3_STAT: {
		size_t n = 0;
		uint64_t bytes = 0;
		for (size_t i = 0; i < s->count; i++)
			if (!s->msgs[i].deleted) {
				n++;
				bytes += s->msgs[i].size;
			}
		reply(s, "+OK %zu %llu", n, (unsigned long long)bytes);
		return;
	}
	case POP3_LIST:
	case POP3_UIDL: {
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
		return;
	}
	case POP3_RETR:
	case POP3_TOP: {
		struct pop3_msg *m = msg_arg(s, cmd);
		if (m != NULL) {
			send_message(s, m, cmd->verb == POP3_TOP, cmd->lines);
			if (cmd->verb == POP3_RETR)
				m->retrieved = true;
		}
		return;
	}
	case POP3_DELE: {
		struct pop3_msg *m = msg_arg(s, cmd);
		if (m != NULL) {
			m->deleted = true;
			reply(s, "+OK Message %u deleted.", cmd->msg);
		}
		return;
	}
	case POP3_NOOP:
		reply(s, "+OK");
		return;
	case POP3_RSET:
		for (size_t i = 0; i < s->count; i++)
			s->msgs[i].deleted = false;
		reply(s, "+OK");
		return;
	default:
		err_reply(s, "Not allowed now: already logged in.");
		return;
	}
}

/* ---- input and events ---- */

static void sasl_response(struct pop3_session *s, const char *line, size_t len)
{
	struct auth_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->sasl = true;
	j->resp = xstrndup(line, len);
	j->resp_len = len;
	start_auth(s, j);
}

static void wait_timer(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)timer;
	struct pop3_session *s = ctx;
	if (conn_output_len(s->conn) > CONN_OUTPUT_SOFT_MAX / 2) {
		evloop_timer_start(loop, &s->timer, OUTPUT_POLL_MS, 0, wait_timer, s);
		return;
	}
	s->busy = false;
	conn_pause_input(s->conn, false);
	process_input(s);
}

static void process_input(struct pop3_session *s)
{
	while (!s->closing && !s->busy && !s->tls_pending && !s->dead) {
		if (conn_output_len(s->conn) > CONN_OUTPUT_SOFT_MAX) {
			s->busy = true;
			conn_pause_input(s->conn, true);
			evloop_timer_start(s->srv->cfg.loop, &s->timer, OUTPUT_POLL_MS, 0, wait_timer, s);
			break;
		}
		const char *data;
		size_t len = conn_input_peek(s->conn, &data);
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
			conn_input_consume(s->conn, used);
			if (r == POP3_PARSE_DONE) {
				s->in_sasl = false;
				sasl_response(s, line, llen);
			}
		} else {
			struct pop3_command cmd;
			r = pop3_parse_command(&s->parser, data, len, &used, &cmd, &err);
			conn_input_consume(s->conn, used);
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
		if (s->errors >= POP3_MAX_BAD_COMMANDS && !s->closing) {
			reply(s, "-ERR Too many errors; bye.");
			close_session(s);
		}
	}
}

static void session_free(struct pop3_session *s)
{
	struct pop3_server *srv = s->srv;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;
	evloop_timer_stop(srv->cfg.loop, &s->timer);
	proxy_destroy(&s->proxy);
	conn_destroy(&s->conn);
	ix_sasl_destroy(&s->sasl);
	imapd_password_wipe(&s->sasl_pass, &s->sasl_passlen);
	imapd_user_free(&s->user);
	free(s->user_arg);
	free(s->msgs);
	if (s->on_close != NULL)
		s->on_close(s->on_close_ctx);
	free(s);
	if (srv->shutting_down && srv->nsessions == 0 && srv->done != NULL) {
		void (*done)(void *) = srv->done;
		srv->done = NULL;
		done(srv->done_ctx);
	}
}

static void session_end(struct pop3_session *s)
{
	if (s->job_out) {
		s->dead = true;
		return;
	}
	session_free(s);
}

static void greet(struct pop3_session *s)
{
	reply(s, "+OK %s Interchange POP3 ready.", s->srv->cfg.hostname);
}

static void session_event(struct conn *c, enum conn_event ev, void *ctx)
{
	(void)c;
	struct pop3_session *s = ctx;
	if (s->proxy != NULL) {
		proxy_client_event(s->proxy, ev);
		return;
	}
	switch (ev) {
	case CONN_EVENT_INPUT:
		process_input(s);
		break;
	case CONN_EVENT_TLS_READY:
		s->secure = true;
		if (s->sasl != NULL)
			ix_sasl_set_secure(s->sasl, true);
		if (s->tls_pending) {
			s->tls_pending = false;
			process_input(s);
		} else {
			greet(s);
		}
		break;
	case CONN_EVENT_TIMEOUT:
		if (s->closing) {
			session_end(s);
			break;
		}
		reply(s, "-ERR Idle for too long; bye.");
		close_session(s);
		break;
	case CONN_EVENT_CONNECTED:
		break;
	case CONN_EVENT_EOF:
	case CONN_EVENT_ERROR:
	case CONN_EVENT_CLOSED:
		session_end(s);
		break;
	}
}

void pop3_server_set_limits(struct pop3_server *srv, unsigned idle_timeout_msecs, unsigned max_auth_failures)
{
	srv->cfg.idle_timeout_msecs = idle_timeout_msecs;
	srv->cfg.max_auth_failures = max_auth_failures;
	throttle_set_max(srv->throttle, max_auth_failures);
}

struct pop3_server *pop3_server_create(const struct pop3_server_config *config)
{
	struct pop3_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = *config;
	if (srv->cfg.hostname == NULL)
		srv->cfg.hostname = "localhost";
	srv->throttle = throttle_create(IMAPD_THROTTLE_SLOTS, srv->cfg.max_auth_failures);
	return srv;
}

void pop3_server_destroy(struct pop3_server **srvp)
{
	struct pop3_server *srv = *srvp;
	if (srv == NULL)
		return;
	srv->done = NULL;
	while (srv->sessions != NULL)
		session_free(srv->sessions);
	throttle_destroy(&srv->throttle);
	free(srv);
	*srvp = NULL;
}

void pop3_server_accept(struct pop3_server *srv, int fd, bool implicit_tls, void (*on_close)(void *ctx), void *ctx)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->on_close = on_close;
	s->on_close_ctx = ctx;
	s->state = POP3_ST_AUTH;
	pop3_parser_init(&s->parser);
	s->conn = conn_create(srv->cfg.loop, fd, session_event, s);
	unsigned idle = srv->cfg.idle_timeout_msecs;
	conn_set_idle_timeout(s->conn, idle == 0 || idle > POP3_PREAUTH_TIMEOUT_MS ? POP3_PREAUTH_TIMEOUT_MS : idle);
	s->secure = srv->cfg.plaintext_on_loopback && conn_peer_is_loopback(s->conn);
	s->next = srv->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	if (srv->shutting_down) {
		reply(s, "-ERR [SYS/TEMP] Server shutting down.");
		close_session(s);
		return;
	}
	if (implicit_tls && srv->cfg.tls != NULL)
		conn_start_tls(s->conn, srv->cfg.tls, NULL, NULL);
	else
		greet(s);
}

void pop3_server_shutdown(struct pop3_server *srv, void (*done)(void *ctx), void *ctx)
{
	srv->shutting_down = true;
	srv->done = done;
	srv->done_ctx = ctx;
	for (struct pop3_session *s = srv->sessions; s != NULL; s = s->next) {
		if (s->proxy != NULL) {
			/* a piped session may be in the middle of a response: nothing of ours in it */
			proxy_destroy(&s->proxy);
			close_session(s);
		} else if (!s->closing) {
			reply(s, "-ERR [SYS/TEMP] Server shutting down; no messages were deleted.");
			close_session(s);
		}
	}
	if (srv->nsessions == 0 && done != NULL) {
		srv->done = NULL;
		done(ctx);
	}
}

size_t pop3_server_sessions(const struct pop3_server *srv)
{
	return srv->nsessions;
}
