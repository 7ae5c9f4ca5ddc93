/* login_session.c - the login core of IMAP and POP3: sessions and their connection events, authentication jobs on
 * the worker pool, the throttle and the proxy hand-off; the protocol answers through its struct login_proto (see
 * login_session.h). */
#include "transport/login/login_session.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void session_end(struct login_session *ls);
static void auth_job_free(struct login_job *j);
static void external_start(struct login_session *ls, struct login_job *j);

/* How long a peer closed for taking too long to log in gets to read the goodbye. */
#define LOGIN_GOODBYE_MSECS 10000

/* ---- sessions ---- */

static void session_free(struct login_session *ls)
{
	struct login_server *srv = ls->srv;
	if (ls->prev != NULL)
		ls->prev->next = ls->next;
	else
		srv->sessions = ls->next;
	if (ls->next != NULL)
		ls->next->prev = ls->prev;
	srv->nsessions--;
	evloop_timer_stop(srv->cfg.loop, &ls->login_deadline);
	evloop_timer_stop(srv->cfg.loop, &ls->fail_delay);
	evloop_timer_stop(srv->cfg.loop, &ls->output_wait);
	free(ls->fail_ref);
	free(ls->tried);
	free(ls->actor);
	if (ls->cert_job != NULL)
		auth_job_free(ls->cert_job);
	srv->proto->free_session(ls);
	proxy_destroy(&ls->proxy);
	conn_destroy(&ls->conn);
	ix_sasl_destroy(&ls->sasl);
	login_user_free(&ls->user);
	free(ls->proxy_ref);
	if (ls->on_close != NULL)
		ls->on_close(ls->on_close_ctx);
	free(ls);
	if (srv->shutting_down && srv->nsessions == 0 && srv->done != NULL) {
		void (*done)(void *) = srv->done;
		srv->done = NULL;
		done(srv->done_ctx);
	}
}

static void session_end(struct login_session *ls)
{
	if (ls->job_out) {
		/* a job is out on the pool: the session is freed when it comes back */
		ls->dead = true;
		return;
	}
	session_free(ls);
}

void login_close(struct login_session *ls)
{
	ls->closing = true;
	conn_close_after_flush(ls->conn);
}

/* Gives the session's SASL the connection's channel binding data once TLS is up. */
static void sasl_channel(struct login_session *ls)
{
	struct scram_cbind cb;
	if (ls->sasl != NULL && ls->srv->cfg.scram >= 2 && conn_channel_bindings(ls->conn, &cb))
		ix_sasl_set_channel(ls->sasl, &cb);
}

static void session_event(struct conn *c, enum conn_event ev, void *ctx)
{
	(void)c;
	struct login_session *ls = ctx;
	const struct login_proto *proto = ls->srv->proto;
	if (ls->proxy != NULL) {
		proxy_client_event(ls->proxy, ev);
		return;
	}
	switch (ev) {
	case CONN_EVENT_INPUT: proto->input(ls); break;
	case CONN_EVENT_TLS_READY:
		if (ls->cert_job != NULL) { /* the client answered the request for its certificate */
			struct login_job *j = ls->cert_job;
			ls->cert_job = NULL;
			external_start(ls, j);
			break;
		}
		ls->secure = true;
		if (ls->sasl != NULL)
			ix_sasl_set_secure(ls->sasl, true);
		sasl_channel(ls);
		if (ls->tls_pending) {
			ls->tls_pending = false;
			proto->input(ls);
		} else {
			proto->greet(ls);
		}
		break;
	case CONN_EVENT_TIMEOUT:
		if (ls->closing) {
			session_end(ls);
			break;
		}
		proto->bye(ls, LOGIN_BYE_IDLE);
		login_close(ls);
		break;
	case CONN_EVENT_CONNECTED: break;
	case CONN_EVENT_EOF:
	case CONN_EVENT_ERROR:
	case CONN_EVENT_CLOSED: session_end(ls); break;
	}
}

/* The pre-login time is up: said and closed like an idle session, whatever the client kept sending. A session
 * waiting for the home server's answer is cut with its proxy (nothing of ours goes into a piped stream). */
static void login_deadline_due(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	struct login_session *ls = ctx;
	if (ls->closing)
		return;
	log_info("%s: no login within the time allowed; closing", conn_peer(ls->conn));
	/* the idle timer may be due now too: restarted, it gives the peer its time to read the goodbye */
	conn_set_idle_timeout(ls->conn, LOGIN_GOODBYE_MSECS);
	if (ls->proxy != NULL) {
		proxy_destroy(&ls->proxy);
		login_close(ls);
		return;
	}
	ls->srv->proto->bye(ls, LOGIN_BYE_IDLE);
	login_close(ls);
}

void login_start_tls(struct login_session *ls, const char *verb)
{
	size_t discarded = 0;
	conn_start_tls(ls->conn, ls->srv->cfg.tls, NULL, &discarded);
	if (discarded > 0)
		log_warn("%s: %zu bytes sent after %s were discarded", conn_peer(ls->conn), discarded, verb);
	ls->tls_pending = true;
}

static void output_poll(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)t;
	struct login_session *ls = ctx;
	if (conn_output_len(ls->conn) > CONN_OUTPUT_SOFT_MAX / 2) {
		evloop_timer_start(loop, &ls->output_wait, LOGIN_OUTPUT_POLL_MS, 0, output_poll, ls);
		return;
	}
	ls->srv->proto->set_busy(ls, false);
	ls->srv->proto->resume(ls);
}

bool login_output_full(struct login_session *ls)
{
	if (conn_output_len(ls->conn) <= CONN_OUTPUT_SOFT_MAX)
		return false;
	ls->srv->proto->set_busy(ls, true);
	conn_pause_input(ls->conn, true);
	evloop_timer_start(ls->srv->cfg.loop, &ls->output_wait, LOGIN_OUTPUT_POLL_MS, 0, output_poll, ls);
	return true;
}

/* ---- jobs ---- */

static void start_job_on(struct login_session *ls, struct workpool *pool, workpool_fn *run, workpool_fn *done,
			 void *arg)
{
	ls->srv->proto->set_busy(ls, true);
	ls->job_out = true;
	if (ls->srv->cfg.pool == NULL) {
		/* no pool (fuzzing, tools): run it here; the caller's input loop carries on afterwards */
		ls->inline_job = true;
		run(arg);
		done(arg);
		ls->inline_job = false;
		return;
	}
	conn_pause_input(ls->conn, true);
	workpool_submit(pool, run, done, arg);
}

void login_start_job(struct login_session *ls, workpool_fn *run, workpool_fn *done, void *arg)
{
	start_job_on(ls, ls->srv->cfg.pool, run, done, arg);
}

void login_start_read_job(struct login_session *ls, workpool_fn *run, workpool_fn *done, void *arg)
{
	const struct login_config *c = &ls->srv->cfg;
	start_job_on(ls, c->read_pool != NULL ? c->read_pool : c->pool, run, done, arg);
}

bool login_job_finished(struct login_session *ls)
{
	ls->job_out = false;
	ls->srv->proto->set_busy(ls, false);
	if (ls->dead) {
		session_free(ls);
		return false;
	}
	return true;
}

/* ---- authentication ---- */

struct login_job {
	struct login_session *ls;
	const struct login_proto *proto; /* ls may be gone when the job is freed */
	char *ref;
	char *user, *pass;
	size_t passlen;
	/* SASL */
	bool sasl, sasl_start;
	bool external;                             /* SASL EXTERNAL: a server signing in for a user (external_run) */
	char fingerprint[TLS_FINGERPRINT_HEX + 1]; /* the client's TLS certificate, "" when none */
	char *mech, *resp;
	size_t resp_len;
	bool has_resp;
	struct buf challenge, err;
	/* results */
	int ret;
	struct login_user found;
	char *actor; /* the login of who signed in for found (full access), or NULL */
	int where;   /* login_user_backend: 1 when the mailbox is on another server (backend) */
	struct proxy_backend backend;
	void *data; /* proto->prepare's */
};

/* What a failed login's log line and the throttle take for the account: NULL when there is none. */
static const char *account_or_null(const char *account)
{
	return account != NULL && account[0] != '\0' ? account : NULL;
}

bool login_throttled(struct login_session *ls, const char *ref, const char *account)
{
	enum throttle_block b = throttle_guard_check(ls->srv->guard, conn_peer(ls->conn), account_or_null(account),
						     (uint64_t)time(NULL));
	if (b == THROTTLE_FREE)
		return false;
	log_warn("login refused from %s for %s: temporarily blocked (too many failed logins of %s)",
		 conn_peer(ls->conn), account != NULL ? account : "(not said yet)", throttle_block_text(b));
	ls->srv->proto->reply(ls, ref, LOGIN_THROTTLED, NULL);
	return true;
}

void login_failed(struct login_session *ls, const char *account, const char *why)
{
	unsigned n = throttle_guard_fail(ls->srv->guard, conn_peer(ls->conn), account_or_null(account),
					 (uint64_t)time(NULL));
	log_info("login failed for %s from %s (%s; %u failures in the window)", account != NULL ? account : "(none)",
		 conn_peer(ls->conn), why, n);
}

/* Every password check of a session: refused unchecked while the attempt is blocked (throttle.h), then the
 * directory's (which may say the account is locked). On a worker, while the job holds the session. */
/* Notes user as the account tried; false (and why in blocked_why) while attempts on it are blocked. */
static bool attempt_allowed(struct login_session *ls, const char *user)
{
	free(ls->tried);
	ls->tried = xstrdup(user);
	ls->blocked_why = NULL;
	enum throttle_block b = throttle_guard_check(ls->srv->guard, conn_peer(ls->conn), user, (uint64_t)time(NULL));
	if (b != THROTTLE_FREE)
		ls->blocked_why = throttle_block_text(b);
	return b == THROTTLE_FREE;
}

static int guarded_check(struct login_session *ls, const char *user, const char *pass, size_t passlen)
{
	if (!attempt_allowed(ls, user))
		return IX_EBLOCKED;
	int ret = ls->srv->cfg.users.check_password(ls->srv->cfg.users.ctx, user, pass, passlen);
	if (ret == IX_EBLOCKED)
		ls->blocked_why = "the directory has locked the account";
	return ret;
}

/* The SCRAM verifiers of user, unless the attempt is blocked (the same guard as guarded_check). */
static int sasl_scram(void *ctx, const char *user, struct scram_server *srv, struct buf *names_r)
{
	struct login_session *ls = ctx;
	if (!attempt_allowed(ls, user))
		return IX_EBLOCKED;
	int ret = ls->srv->cfg.users.scram(ls->srv->cfg.users.ctx, user, srv, names_r);
	if (ret == IX_EBLOCKED)
		ls->blocked_why = "the directory has locked the account";
	return ret;
}

enum ix_sasl_scram_offer login_scram_offer(const struct login_session *ls)
{
	if (ls->srv->cfg.users.scram == NULL || ls->srv->cfg.scram == 0)
		return IX_SASL_SCRAM_NONE;
	return conn_is_tls(ls->conn) && ls->srv->cfg.scram >= 2 ? IX_SASL_SCRAM_PLUS : IX_SASL_SCRAM;
}

static int sasl_check(void *ctx, const char *user, const char *pass, size_t passlen)
{
	return guarded_check(ctx, user, pass, passlen);
}

/* SASL EXTERNAL (RFC 4422 appendix A): a server of the organisation, known by its TLS client certificate, signs in
 * for the user its authorisation identity names (base64 in resp), whose mailbox must be here (a proxy's login,
 * docs/imap-pop3.md "Proxying"). Anyone else, a user included, is refused like a wrong password. Fills j->user
 * and j->ret (0, IX_EBLOCKED, or IX_EAUTH with the reason in j->err). On a worker. */
static void external_run(struct login_job *j)
{
	struct login_session *ls = j->ls;
	const struct login_userdb *db = &ls->srv->cfg.users;
	struct buf authzid = BUF_INIT, server = BUF_INIT;
	j->ret = IX_EAUTH;
	if (!j->has_resp || base64_decode(j->resp, j->resp_len, SCRAM_USER_MAX, &authzid) != 0 || authzid.len == 0 ||
	    memchr(authzid.data, '\0', authzid.len) != NULL) {
		buf_append_str(&j->err, "EXTERNAL without the user to sign in for");
		attempt_allowed(ls, "");
	} else if (!attempt_allowed(ls, buf_cstr(&authzid))) {
		j->ret = IX_EBLOCKED;
	} else if (j->fingerprint[0] == '\0' || db->server_by_cert == NULL ||
		   db->server_by_cert(db->ctx, j->fingerprint, &server) != 0) {
		buf_append_str(&j->err, "EXTERNAL without the certificate of a server of the organisation");
	} else {
		j->user = xstrdup(buf_cstr(&authzid));
		j->ret = 0;
		log_info("login for %s from %s by the server %s (SASL EXTERNAL)", j->user, conn_peer(ls->conn),
			 buf_cstr(&server));
	}
	buf_free(&authzid);
	buf_free(&server);
}

/* SASL PLAIN naming another user as the authorization identity: allowed with full access to their mailbox. */
static int sasl_authorize(void *ctx, const char *authcid, const char *authzid)
{
	struct login_session *ls = ctx;
	struct login_user actor;
	bool ok = login_may_act_for(&ls->srv->cfg.users, authcid, authzid, &actor);
	login_user_free(&actor);
	return ok ? 0 : IX_EPERM;
}

bool login_actor_lost(struct login_session *ls)
{
	if (ls->actor == NULL || login_full_access(&ls->srv->cfg.users, ls->user.login, ls->actor))
		return false;
	log_info("%s: %s no longer has full access to the mailbox of %s; closing", conn_peer(ls->conn), ls->actor,
		 ls->user.login);
	return true;
}

static void auth_run(void *arg)
{
	struct login_job *j = arg;
	struct login_server *srv = j->ls->srv;
	if (j->external) {
		external_run(j);
		if (j->ret != 0)
			return;
	} else if (j->sasl) {
		if (j->sasl_start)
			j->ret = ix_sasl_start(j->ls->sasl, j->mech, j->has_resp ? j->resp : NULL, j->resp_len,
					       &j->challenge, &j->err);
		else
			j->ret = ix_sasl_step(j->ls->sasl, j->resp, j->resp_len, &j->challenge, &j->err);
		if (j->ret != IX_SASL_DONE)
			return;
		j->user = xstrdup(ix_sasl_user(j->ls->sasl));
	} else {
		j->ret = guarded_check(j->ls, j->user, j->pass, j->passlen);
		if (j->ret != 0)
			return;
	}
	if (srv->cfg.users.lookup(srv->cfg.users.ctx, j->user, &j->found) != 0) {
		j->ret = IX_EAUTH;
		return;
	}
	/* PLAIN with an authorization identity: who signed in for the user, unless it names them again (an address) */
	const char *actor = j->sasl ? ix_sasl_actor(j->ls->sasl) : NULL;
	struct login_user a;
	if (actor != NULL && srv->cfg.users.lookup(srv->cfg.users.ctx, actor, &a) == 0) {
		if (strcasecmp(a.dn, j->found.dn) != 0)
			j->actor = xstrdup(a.login);
		login_user_free(&a);
	}
	j->where = login_user_backend(&srv->cfg.users, srv->cfg.server_dn, &j->found, srv->proto->proxy, &j->backend,
				      &j->err);
	if (j->external && j->where != 0) { /* a proxy's login ends at the home server: never a chain of proxies */
		buf_reset(&j->err);
		buf_printf(&j->err, "EXTERNAL for %s, whose mailbox is not here", j->found.login);
		j->ret = IX_EAUTH;
		return;
	}
	if (j->where == 0) /* synced writes and reads of the mailbox: here, off the loop */
		j->ret = srv->proto->prepare(srv, &j->found, &j->data, &j->err);
}

static void auth_job_free(struct login_job *j)
{
	free(j->ref);
	free(j->user);
	free(j->actor);
	login_password_wipe(&j->pass, &j->passlen);
	free(j->mech);
	free(j->resp);
	buf_free(&j->challenge);
	buf_free(&j->err);
	login_user_free(&j->found);
	if (j->data != NULL)
		j->proto->free_data(j->data);
	free(j);
}

static void proxy_event(struct proxy *p, enum proxy_result result, const char *text, void *ctx)
{
	(void)p;
	struct login_session *ls = ctx;
	const struct login_proto *proto = ls->srv->proto;
	if (result == PROXY_LOGGED_IN) {
		evloop_timer_stop(ls->srv->cfg.loop, &ls->login_deadline);
		proto->reply(ls, ls->proxy_ref, LOGIN_PROXY_LOGGED_IN, text);
		return;
	}
	if (result == PROXY_ENDED) {
		proxy_destroy(&ls->proxy);
		session_end(ls);
		return;
	}
	if (result == PROXY_REFUSED) {
		log_info("login from %s refused by the home server: %s", conn_peer(ls->conn), text);
		proto->reply(ls, ls->proxy_ref, LOGIN_PROXY_REFUSED, text);
	} else {
		log_warn("login from %s not proxied to the home server %s", conn_peer(ls->conn), text);
		proto->reply(ls, ls->proxy_ref, LOGIN_PROXY_FAILED, text);
	}
	proxy_destroy(&ls->proxy); /* text pointed into it */
	proto->set_busy(ls, false);
	proto->resume(ls);
}

/* The password was right and the mailbox lives on another server: log in there and pipe the session. */
static void start_proxy(struct login_session *ls, struct login_job *j)
{
	struct login_server *srv = ls->srv;
	struct proxy_login l = { 0 };
	l.proto = srv->proto->proxy;
	l.backend = &j->backend;
	l.user = j->found.login;
	l.tls = srv->cfg.proxy_trust != NULL ? tls_peers_ctx(srv->cfg.proxy_trust) : NULL;
	l.idle_timeout_msecs = srv->cfg.idle_timeout_msecs;
	free(ls->proxy_ref);
	ls->proxy_ref = j->ref != NULL ? xstrdup(j->ref) : NULL;
	srv->proto->set_busy(ls, true); /* input stays paused until the home server answers */
	ls->proxy = proxy_start(srv->cfg.loop, ls->conn, &l, proxy_event, ls);
}

static void fail_delay_due(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	struct login_session *ls = ctx;
	const struct login_proto *proto = ls->srv->proto;
	char *ref = ls->fail_ref;
	ls->fail_ref = NULL;
	proto->set_busy(ls, false);
	if (!ls->closing) {
		proto->reply(ls, ref, LOGIN_FAILED, NULL);
		proto->resume(ls);
	}
	free(ref);
}

/* Holds a failed login's answer back for auth_failure_delay_msecs on the loop's timer (no worker waits): the
 * session stays busy, its input paused. Returns false when it is to be answered now (no delay, or an inline job). */
static bool fail_later(struct login_session *ls, const char *ref)
{
	if (ls->srv->cfg.auth_failure_delay_msecs == 0 || ls->srv->cfg.pool == NULL)
		return false;
	free(ls->fail_ref);
	ls->fail_ref = ref != NULL ? xstrdup(ref) : NULL;
	ls->srv->proto->set_busy(ls, true);
	evloop_timer_start(ls->srv->cfg.loop, &ls->fail_delay, ls->srv->cfg.auth_failure_delay_msecs, 0, fail_delay_due,
			   ls);
	return true;
}

static void auth_done(void *arg)
{
	struct login_job *j = arg;
	struct login_session *ls = j->ls;
	const struct login_proto *proto = ls->srv->proto;
	if (!login_job_finished(ls)) {
		auth_job_free(j);
		return;
	}
	if (j->ret == 0 && j->where < 0) {
		log_error("login %s from %s: %s", j->found.login, conn_peer(ls->conn), buf_cstr(&j->err));
		proto->reply(ls, j->ref, LOGIN_HOME_UNREACHABLE, NULL);
	} else if (j->ret == 0 && j->where > 0 && ls->srv->cfg.referrals && proto->proxy == PROXY_IMAP) {
		/* RFC 2221: the client is sent to the home server (an IMAP URL with the user and AUTH=*) */
		char port[16] = "";
		if (j->backend.port != 143)
			snprintf(port, sizeof(port), ":%u", j->backend.port);
		char *url = xasprintf("imap://%s;AUTH=*@%s%s/", j->found.login, j->backend.host, port);
		log_info("login for %s from %s referred to %s", j->found.login, conn_peer(ls->conn), url);
		proto->reply(ls, j->ref, LOGIN_REFERRAL, url);
		free(url);
	} else if (j->ret == 0 && j->where > 0) {
		start_proxy(ls, j);
	} else if (j->sasl && j->ret == IX_SASL_CONTINUE) {
		proto->reply(ls, j->ref, LOGIN_CONTINUE, buf_cstr(&j->challenge));
	} else if (j->ret == 0) {
		ls->user = j->found;
		ls->by_server = j->external;
		memset(&j->found, 0, sizeof(j->found));
		free(ls->actor);
		ls->actor = j->actor;
		j->actor = NULL;
		if (ls->actor != NULL)
			log_info("login for %s by %s (full access) from %s", ls->user.login, ls->actor,
				 conn_peer(ls->conn));
		conn_set_idle_timeout(ls->conn, ls->srv->cfg.idle_timeout_msecs);
		evloop_timer_stop(ls->srv->cfg.loop, &ls->login_deadline);
		proto->logged_in(ls, j->ref, j->data);
		j->data = NULL;
	} else if (j->sasl && j->ret == IX_SASL_CANCELLED) {
		proto->reply(ls, j->ref, LOGIN_CANCELLED, NULL);
	} else if (j->ret == IX_EBLOCKED) {
		log_warn("login refused from %s for %s: temporarily blocked (%s)", conn_peer(ls->conn), ls->tried,
			 ls->blocked_why != NULL ? ls->blocked_why : "too many failed logins");
		proto->reply(ls, j->ref, LOGIN_THROTTLED, NULL);
	} else if (j->ret == IX_EUNAVAIL) {
		proto->reply(ls, j->ref, LOGIN_UNAVAILABLE, NULL);
	} else if (j->sasl && j->ret == IX_EINVAL) {
		proto->reply(ls, j->ref, LOGIN_SASL_BAD, buf_cstr(&j->err));
	} else {
		login_failed(ls, ls->tried, j->err.len > 0 ? buf_cstr(&j->err) : "bad credentials");
		if (fail_later(ls, j->ref)) {
			auth_job_free(j);
			return;
		}
		proto->reply(ls, j->ref, LOGIN_FAILED, NULL);
	}
	auth_job_free(j);
	proto->resume(ls);
}

static struct login_job *auth_job(struct login_session *ls, const char *ref)
{
	struct login_job *j = xcalloc(1, sizeof(*j));
	j->ls = ls;
	j->proto = ls->srv->proto;
	j->ref = ref != NULL ? xstrdup(ref) : NULL;
	return j;
}

void login_password(struct login_session *ls, const char *ref, const char *user, size_t ulen, const char *pass,
		    size_t plen)
{
	struct login_job *j = auth_job(ls, ref);
	j->user = xstrndup(user, ulen);
	login_password_keep(&j->pass, &j->passlen, pass, plen);
	login_start_read_job(ls, auth_run, auth_done, j);
}

void login_sasl_start(struct login_session *ls, const char *ref, const char *mech, size_t mlen, const char *ir,
		      size_t irlen)
{
	if (ls->sasl == NULL) {
		struct buf err = BUF_INIT;
		if (ix_sasl_create(ls->srv->proto->sasl_service, ls->srv->cfg.hostname, ls->secure, sasl_check, ls,
				   &ls->sasl, &err) != 0) {
			log_error("SASL: %s", buf_cstr(&err));
			buf_free(&err);
			ls->srv->proto->reply(ls, ref, LOGIN_SASL_UNAVAILABLE, NULL);
			return;
		}
		ix_sasl_set_verifiers(ls->sasl, ls->srv->cfg.verifiers);
		ix_sasl_set_authorize(ls->sasl, sasl_authorize, ls);
		buf_free(&err);
		if (login_scram_offer(ls) != IX_SASL_SCRAM_NONE)
			ix_sasl_set_scram(ls->sasl, sasl_scram, NULL, ls);
		sasl_channel(ls);
	}
	struct login_job *j = auth_job(ls, ref);
	bool external = mlen == 8 && strncasecmp(mech, "EXTERNAL", 8) == 0;
	j->external = external;
	j->sasl = j->sasl_start = !external;
	j->mech = xstrndup(mech, mlen);
	if (ir != NULL) {
		j->has_resp = true;
		j->resp = xstrndup(ir, irlen);
		j->resp_len = irlen;
	}
	/* no client is asked for a certificate in the handshake (a mail client would prompt its user or send one of
	 * theirs): a server of the organisation offered post-handshake authentication and is asked now */
	if (external && !conn_peer_fingerprint(ls->conn, j->fingerprint) && conn_request_peer_cert(ls->conn) == IX_OK) {
		ls->cert_job = j;
		ls->srv->proto->set_busy(ls, true);
		conn_pause_input(ls->conn, true);
		return;
	}
	if (external)
		external_start(ls, j);
	else
		login_start_read_job(ls, auth_run, auth_done, j);
}

/* SASL EXTERNAL's job, with the certificate the client has given (if any). */
static void external_start(struct login_session *ls, struct login_job *j)
{
	if (!conn_peer_fingerprint(ls->conn, j->fingerprint))
		j->fingerprint[0] = '\0';
	login_start_read_job(ls, auth_run, auth_done, j);
}

void login_sasl_response(struct login_session *ls, const char *ref, const char *line, size_t len)
{
	struct login_job *j = auth_job(ls, ref);
	j->sasl = true;
	j->resp = xstrndup(line, len);
	j->resp_len = len;
	login_start_read_job(ls, auth_run, auth_done, j);
}

/* ---- the server ---- */

void login_server_init(struct login_server *srv, const struct login_proto *proto, const struct login_config *config)
{
	srv->proto = proto;
	srv->cfg = *config;
	if (srv->cfg.hostname == NULL)
		srv->cfg.hostname = "localhost";
	srv->guard = throttle_guard_create(LOGIN_THROTTLE_SLOTS);
	throttle_guard_set(srv->guard, &srv->cfg.auth_limits);
}

void login_server_cleanup(struct login_server *srv)
{
	srv->done = NULL;
	while (srv->sessions != NULL)
		session_free(srv->sessions);
	throttle_guard_destroy(&srv->guard);
}

size_t login_server_sessions(const struct login_server *srv)
{
	return srv->nsessions;
}

void login_server_set_referrals(struct login_server *srv, bool on)
{
	srv->cfg.referrals = on;
}

void login_server_set_limits(struct login_server *srv, unsigned idle_timeout_msecs, unsigned login_timeout_msecs,
			     const struct settings *set)
{
	srv->cfg.idle_timeout_msecs = idle_timeout_msecs;
	srv->cfg.login_timeout_msecs = login_timeout_msecs;
	throttle_limits_from_settings(set, &srv->cfg.auth_limits);
	srv->cfg.auth_failure_delay_msecs = (unsigned)set->v[SET_AUTH_FAILURE_DELAY_MS];
	srv->cfg.scram = (unsigned)set->v[SET_AUTH_SCRAM];
	throttle_guard_set(srv->guard, &srv->cfg.auth_limits);
}

/* The time allowed before login starts: the pre-login idle timeout and the whole-time deadline. */
static void start_prelogin_clock(struct login_session *ls)
{
	struct login_server *srv = ls->srv;
	unsigned idle = srv->cfg.idle_timeout_msecs;
	unsigned prelogin = srv->cfg.login_timeout_msecs != 0 ? srv->cfg.login_timeout_msecs : LOGIN_TIMEOUT_DEFAULT_MS;
	if (idle != 0 && idle < prelogin)
		prelogin = idle;
	conn_set_idle_timeout(ls->conn, prelogin);
	evloop_timer_start(srv->cfg.loop, &ls->login_deadline, prelogin, 0, login_deadline_due, ls);
}

void login_unauthenticate(struct login_session *ls)
{
	login_user_free(&ls->user);
	ls->by_server = false;
	free(ls->actor);
	ls->actor = NULL;
	free(ls->tried);
	ls->tried = NULL;
	ix_sasl_destroy(&ls->sasl);
	start_prelogin_clock(ls);
}

void login_server_accept(struct login_server *srv, int fd, bool implicit_tls, void (*on_close)(void *ctx), void *ctx)
{
	struct login_session *ls = srv->proto->new_session(srv);
	ls->srv = srv;
	ls->on_close = on_close;
	ls->on_close_ctx = ctx;
	ls->conn = conn_create(srv->cfg.loop, fd, session_event, ls);
	start_prelogin_clock(ls);
	ls->secure = srv->cfg.plaintext_on_loopback && conn_peer_is_loopback(ls->conn);
	ls->next = srv->sessions;
	if (ls->next != NULL)
		ls->next->prev = ls;
	srv->sessions = ls;
	srv->nsessions++;
	if (srv->shutting_down) {
		srv->proto->bye(ls, LOGIN_BYE_REFUSED);
		login_close(ls);
		return;
	}
	if (implicit_tls && srv->cfg.tls != NULL)
		conn_start_tls(ls->conn, srv->cfg.tls, NULL, NULL);
	else
		srv->proto->greet(ls);
}

void login_server_shutdown(struct login_server *srv, void (*done)(void *ctx), void *ctx)
{
	srv->shutting_down = true;
	srv->done = done;
	srv->done_ctx = ctx;
	for (struct login_session *ls = srv->sessions; ls != NULL; ls = ls->next) {
		if (ls->proxy != NULL) {
			/* a piped session may be in the middle of a response: nothing of ours in it */
			proxy_destroy(&ls->proxy);
			login_close(ls);
		} else if (!ls->closing) {
			srv->proto->bye(ls, LOGIN_BYE_SHUTDOWN);
			login_close(ls);
		}
	}
	if (srv->nsessions == 0 && done != NULL) {
		srv->done = NULL;
		done(ctx);
	}
}
