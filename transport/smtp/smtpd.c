/* smtpd.c - ix-smtpd: listeners for SMTP and submission, the session backend (RCPT-time checks from the
 * directory replica, send-as, relay refusal), and durable delivery on worker threads (store or queue). */
#include "transport/smtp/smtpd.h"
#include "transport/daemon/daemon.h"
#include "transport/daemon/signin.h"
#include "directory/signin_config.h"
#include "transport/mta/authres.h"
#include "transport/mta/dns.h"
#include "transport/mta/dsn.h"
#include "common/err.h"
#include "common/log.h"
#include "common/throttle.h"
#include "common/workpool.h"
#include "transport/mta/mta.h"
#include "transport/mta/queue.h"
#include "transport/smtp/smtp_session.h"
#include "transport/imap/imap_client.h"
#include "transport/imap/imap_urlauth.h"
#include "transport/net/tls_peers.h"
#include "common/base64.h"
#include "transport/smtp/smtpd_milter.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct smtpd;

struct sess {
	struct smtpd *sd;
	struct smtp_session *s;
	struct listener *l;
	char peer[64];
	bool submission;
	bool password_checked; /* be_check_password or be_scram ran in this AUTH exchange (they count their failures) */
	/* the mail filters (milter) of the session's port, as the settings were when it connected (NULL: none) */
	struct smtpd_milters *milters;
	char qid[QUEUE_ID_MAX + 1]; /* the transaction's queue id, made at MAIL */
	struct sess *prev, *next;
};

struct job {
	bool auth;                    /* an offloaded SASL step, not a delivery */
	bool filter;                  /* a stage told to the mail filters (config.filter), not a delivery */
	enum smtp_filter_stage stage; /* filter: the stage, its sender and recipient */
	char *sender, *rcpt;
	char qid[QUEUE_ID_MAX + 1];   /* the transaction's */
	char helo[SMTP_HELO_MAX + 1]; /* the client's HELO/EHLO (for SPF) */
	struct sess *ss;
	struct smtp_session *s;
	struct smtp_envelope env; /* a copy; what it points to stays valid until smtp_session_delivered */
	char *auth_user;
	bool internal; /* from a server of the organisation (see from_our_server) */
	char *reply;   /* result: NULL (250, or the filters let the command go on) or a reply line */
};

struct client_count {
	char addr[64];
	unsigned n;
};

struct smtpd {
	struct daemon d;
	struct settings set;
	struct smtp_config cfg_smtp, cfg_sub, cfg_subs;
	struct listener *l_smtp, *l_sub, *l_subs;
	struct tls_ctx *tls_mx; /* port 25's STARTTLS: asks for a client certificate (our other servers send theirs) */
	char *qdir;
	struct sess *sessions;
	unsigned nsessions;
	struct client_count *clients;
	size_t nclients;
	struct throttle_guard *guard; /* failed logins per (address, account), address, account; used on the workers */
	struct dns *dns;              /* the checks' DNS resolver */
	struct authres *authres;      /* SPF and DKIM of mail from outside (NULL: the libraries did not start) */
	struct workpool *pool;
	struct signin *signin; /* bearer tokens (OAUTHBEARER, XOAUTH2) */
	char *burl_imap;       /* "imap://" this server's host name: BURL's EHLO parameter */
};

static const struct smtp_backend backend;
static void be_auth_refused(void *ctx);
static bool be_auth_blocked(void *ctx);
static const char *be_mail(void *ctx, const struct smtp_session_info *info, const struct smtp_mail *mail);
static void be_offload(void *ctx, struct smtp_session *s);
static const char *be_burl(void *ctx, const char *auth_user, const char *url, size_t len, struct buf *out);
static void be_refused(void *ctx, const struct smtp_session_info *info, const struct smtp_rcpt *rcpts, size_t nrcpts,
		       const char *reply);
static bool be_filter(void *ctx, struct smtp_session *s, enum smtp_filter_stage stage,
		      const struct smtp_session_info *info, const struct smtp_rcpt *rcpt);

/* ---- settings ---- */

static void apply_settings(struct smtpd *sd)
{
	const unsigned long long *v = sd->set.v;
	struct smtp_config c = { 0 };
	c.hostname = sd->d.cfg.hostname;
	c.max_size = v[SET_SMTP_MAX_MESSAGE_SIZE];
	c.max_recipients = (unsigned)v[SET_SMTP_MAX_RECIPIENTS];
	c.max_errors = (unsigned)v[SET_SMTP_MAX_ERRORS];
	c.max_junk = (unsigned)v[SET_SMTP_MAX_COMMANDS_BEFORE_MAIL];
	c.idle_timeout_msecs = (unsigned)(v[SET_SMTP_IDLE_TIMEOUT] * 1000);
	c.session_max_msecs = (unsigned)(v[SET_SMTP_SESSION_MAX_SECONDS] * 1000);
	c.data_max_msecs = (unsigned)(v[SET_SMTP_DATA_MAX_SECONDS] * 1000);
	c.max_line_length = (size_t)v[SET_SMTP_MAX_LINE_LENGTH] + 2;
	c.tls = sd->d.tls;
	c.spool_dir = sd->d.cfg.data_dir; /* large messages wait in unlinked files there, not in memory */
	c.auth = true;
	c.verifiers = signin_verifiers(sd->signin);
	c.auth_failure_delay_msecs = (unsigned)v[SET_AUTH_FAILURE_DELAY_MS];
	c.scram = (unsigned)v[SET_AUTH_SCRAM];
	struct throttle_limits tl;
	throttle_limits_from_settings(&sd->set, &tl);
	throttle_guard_set(sd->guard, &tl);
	c.bare_lf = SMTP_BARE_LF_KEEP;
	c.mail_check = be_mail;
	c.offload = be_offload;
	c.auth_refused = be_auth_refused;
	c.auth_blocked = be_auth_blocked;
	c.refused = be_refused;
	c.filter = be_filter;
	c.tls = sd->tls_mx != NULL ? sd->tls_mx : sd->d.tls;
	sd->cfg_smtp = c;
	c.tls = sd->d.tls;
	c.submission = true;
	c.burl_imap = sd->burl_imap;
	c.burl_fetch = be_burl;
	sd->cfg_sub = c;
	c.implicit_tls = true;
	sd->cfg_subs = c;
	/* the connection cap is live too: listeners exist once the daemon runs */
	struct listener *ls[] = { sd->l_smtp, sd->l_sub, sd->l_subs };
	for (size_t i = 0; i < IX_ARRAY_LEN(ls); i++) {
		if (ls[i] != NULL)
			listener_set_max_conns(ls[i], (unsigned)v[SET_SMTP_MAX_CONNECTIONS]);
	}
}

/* `interchange server set` reaches the running daemon through the replica (daemon_watch_settings). */
static void on_settings(struct daemon *d, const struct settings *s, void *ctx)
{
	(void)d;
	struct smtpd *sd = ctx;
	sd->set = *s;
	dns_apply_settings(sd->dns, s);
	apply_settings(sd);
}

/* ---- per-client connection counts ---- */

static struct client_count *client_find(struct smtpd *sd, const char *addr, bool create)
{
	for (size_t i = 0; i < sd->nclients; i++) {
		if (strcmp(sd->clients[i].addr, addr) == 0)
			return &sd->clients[i];
	}
	if (!create || sd->nclients >= SMTPD_CLIENTS_MAX)
		return NULL;
	sd->clients = xrealloc(sd->clients, (sd->nclients + 1) * sizeof(*sd->clients));
	struct client_count *c = &sd->clients[sd->nclients++];
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->n = 0;
	return c;
}

static void client_release(struct smtpd *sd, const char *addr)
{
	struct client_count *c = client_find(sd, addr, false);
	if (c == NULL)
		return;
	if (--c->n == 0) {
		*c = sd->clients[--sd->nclients];
	}
}

static void peer_text(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	snprintf(out, size, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)size);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)size);
	else
		snprintf(out, size, "local");
}

/* ---- sessions ---- */

static void on_accept(struct listener *l, int fd, void *ctx, bool submission)
{
	bool implicit = false;
	struct smtpd *sd = ctx;
	char peer[64];
	peer_text(fd, peer, sizeof(peer));
	struct client_count *cc = client_find(sd, peer, true);
	/* the listener counted this connection already; the reserve is for addresses holding none */
	unsigned long long maxc = sd->set.v[SET_SMTP_MAX_CONNECTIONS];
	unsigned long long shared = maxc - (maxc * SMTPD_RESERVE_PERCENT + 99) / 100;
	bool in_reserve = listener_active(l) > shared;
	if (sd->d.stopping || cc == NULL || cc->n >= sd->set.v[SET_SMTP_MAX_CONNECTIONS_PER_CLIENT] ||
	    (in_reserve && cc->n > 0)) {
		static const char msg[] = "421 4.7.0 Too many connections from your address, try again later\r\n";
		(void)!write(fd, msg, sizeof(msg) - 1);
		close(fd);
		listener_release(l);
		return;
	}
	cc->n++;
	struct sess *ss = xcalloc(1, sizeof(*ss));
	ss->sd = sd;
	ss->l = l;
	ss->submission = submission;
	snprintf(ss->peer, sizeof(ss->peer), "%s", peer);
	ss->next = sd->sessions;
	if (sd->sessions != NULL)
		sd->sessions->prev = ss;
	sd->sessions = ss;
	sd->nsessions++;
	implicit = l == sd->l_subs;
	ss->s = smtp_session_create(sd->d.loop, fd,
				    implicit     ? &sd->cfg_subs
				    : submission ? &sd->cfg_sub
						 : &sd->cfg_smtp,
				    &backend, ss);
}

static void on_accept_subs(struct listener *l, int fd, void *ctx)
{
	on_accept(l, fd, ctx, true);
}

static void on_accept_smtp(struct listener *l, int fd, void *ctx)
{
	on_accept(l, fd, ctx, false);
}

static void on_accept_sub(struct listener *l, int fd, void *ctx)
{
	on_accept(l, fd, ctx, true);
}

static void be_closed(void *ctx, struct smtp_session *s)
{
	struct sess *ss = ctx;
	struct smtpd *sd = ss->sd;
	(void)s;
	smtp_session_destroy(&ss->s);
	smtpd_milters_destroy(&ss->milters);
	/* not when the listener is already gone (stopping) */
	if (ss->l == sd->l_smtp || ss->l == sd->l_sub || ss->l == sd->l_subs)
		listener_release(ss->l);
	client_release(sd, ss->peer);
	if (ss->prev != NULL)
		ss->prev->next = ss->next;
	else
		sd->sessions = ss->next;
	if (ss->next != NULL)
		ss->next->prev = ss->prev;
	sd->nsessions--;
	free(ss);
	if (sd->d.stopping && sd->nsessions == 0)
		daemon_stopped(&sd->d);
}

static void path_string(const struct smtp_path *p, char *out, size_t size)
{
	smtp_path_string(p, out, size);
}

/* Is the client another server of this organisation? Only a TLS client certificate that one of our server entries
 * publishes says so (the sending server checked the sender's restrictions and expanded lists where the sender
 * was known; this server would only be told an unauthenticated MAIL FROM). An address never does. */
static bool from_our_server(struct dir *dir, const struct smtp_session_info *info)
{
	return info->peer_cert != NULL && dir_server_by_cert(dir, info->peer_cert, NULL) == IX_OK;
}

/* A forged internal sender: unauthenticated mail on port 25 whose sender is in one of our domains (addresses of an
 * external-relay domain live elsewhere and are not ours to vouch for). Our users log in (submission or AUTH), our
 * servers present their certificate, and a device that can do neither is an exception set on this server's entry
 * (ixAllowSenderFrom, `interchange server allow-sender-from`). The null sender is never refused. */
static bool forged_internal_sender(struct sess *ss, const struct smtp_session_info *info, const char *from)
{
	struct dir *dir = ss->sd->d.dir;
	if (from[0] == '\0' || ss->submission)
		return false;
	const char *domain = mta_domain(from);
	if (!dir_is_local_domain(dir, domain))
		return false;
	struct buf type = BUF_INIT;
	bool external = dir_domain_type(dir, domain, &type) == IX_OK && strcmp(buf_cstr(&type), "external-relay") == 0;
	buf_free(&type);
	if (external || from_our_server(dir, info) ||
	    dir_server_allows_sender_from(dir, ss->sd->d.cfg.server_dn != NULL ? ss->sd->d.cfg.server_dn : "",
					  ss->peer))
		return false;
	log_info("MAIL FROM:<%s> from %s refused: a sender in one of our domains, unauthenticated", from, ss->peer);
	return true;
}

static const char *be_mail(void *ctx, const struct smtp_session_info *info, const struct smtp_mail *mail)
{
	struct sess *ss = ctx;
	char from[SMTP_PATH_MAX_UTF8 + 1];
	path_string(&mail->from, from, sizeof(from));
	queue_new_id(ss->qid); /* the transaction's: the filters' {i} from MAIL on, then the queue's */
	if (info->auth_user != NULL)
		return mta_check_send_as(ss->sd->d.dir, info->auth_user, from);
	if (forged_internal_sender(ss, info, from))
		return SMTPD_FORGED_SENDER_REPLY;
	return NULL;
}

/* Every refusal in the tracking log (`interchange track`): event "refused", a queue id of its own, the reply given
 * and the client's address. */
static void be_refused(void *ctx, const struct smtp_session_info *info, const struct smtp_rcpt *rcpts, size_t nrcpts,
		       const char *reply)
{
	struct sess *ss = ctx;
	const struct config *cfg = &ss->sd->d.cfg;
	char id[QUEUE_ID_MAX + 1], from[SMTP_PATH_MAX_UTF8 + 1], to[SMTP_PATH_MAX_UTF8 + 64];
	queue_new_id(id);
	path_string(&info->mail->from, from, sizeof(from));
	char *detail = xasprintf("%s (client %s%s%s)", reply, ss->peer,
				 info->auth_user != NULL ? ", logged in as " : "",
				 info->auth_user != NULL ? info->auth_user : "");
	for (size_t i = 0; i < nrcpts || (i == 0 && nrcpts == 0); i++) {
		if (nrcpts == 0)
			snprintf(to, sizeof(to), "-");
		else if (rcpts[i].to.postmaster)
			snprintf(to, sizeof(to), "postmaster@%s", cfg->domain);
		else
			path_string(&rcpts[i].to, to, sizeof(to));
		track_log(cfg->data_dir, "refused", id, "-", from, to, cfg->hostname, detail);
	}
	free(detail);
}

static enum smtp_rcpt_verdict be_rcpt(void *ctx, const struct smtp_session_info *info, const struct smtp_rcpt *rcpt,
				      const char **reason_r)
{
	struct sess *ss = ctx;
	struct smtpd *sd = ss->sd;
	struct dir *dir = sd->d.dir;
	char addr[SMTP_PATH_MAX_UTF8 + 64];
	if (rcpt->to.postmaster)
		snprintf(addr, sizeof(addr), "postmaster@%s", sd->d.cfg.domain);
	else
		path_string(&rcpt->to, addr, sizeof(addr));
	const char *domain = mta_domain(addr);
	bool authed = info->auth_user != NULL;
	if (!dir_is_local_domain(dir, domain)) {
		if (authed)
			return SMTP_RCPT_ACCEPT;
		*reason_r = "554 5.7.1 Relay access denied";
		return SMTP_RCPT_DENIED;
	}
	struct dir_recipient r;
	if (dir_resolve(dir, addr, &r) != IX_OK) {
		struct buf type = BUF_INIT;
		bool relay = dir_domain_type(dir, domain, &type) == IX_OK &&
			     strcmp(buf_cstr(&type), "authoritative") != 0;
		buf_free(&type);
		return relay ? SMTP_RCPT_ACCEPT : SMTP_RCPT_UNKNOWN;
	}
	char sender[SMTP_PATH_MAX_UTF8 + 1] = "";
	unsigned long long size = 0;
	if (info->mail != NULL) {
		path_string(&info->mail->from, sender, sizeof(sender));
		size = info->mail->has_size ? info->mail->size : 0;
	}
	enum smtp_rcpt_verdict v = SMTP_RCPT_ACCEPT;
	bool ours = from_our_server(dir, info);
	const char *why = ours ? NULL : mta_check_restrictions(dir, &r, sender, authed, size);
	if (ours && mta_homed_elsewhere(&r, sd->d.cfg.server_dn)) {
		/* another server of ours sends mail for a mailbox it believes lives here while our directory names
		 * another home: a move in progress whose change has not reached us yet (or reached only the sender).
		 * Accepting would send it back, to and fro until the hop limit bounced it: the sender retries */
		*reason_r = MTA_REPLY_MOVING;
		v = SMTP_RCPT_TEMPFAIL;
	} else if (why != NULL) {
		*reason_r = why;
		v = SMTP_RCPT_DENIED;
	} else if (r.type == DIR_TYPE_USER && r.mailbox_guid != NULL && r.forward_to == NULL &&
		   (r.quota_bytes > 0 || r.quota_messages > 0) && sd->d.store != NULL) {
		struct store_quota_use use;
		if (store_quota_get(sd->d.store, r.mailbox_guid, &use, NULL) == 0 &&
		    ((r.quota_bytes > 0 && use.bytes + size >= (uint64_t)r.quota_bytes) ||
		     (r.quota_messages > 0 && use.messages >= (uint64_t)r.quota_messages))) {
			*reason_r = "452 4.2.2 Mailbox full";
			v = SMTP_RCPT_FULL;
		}
	}
	dir_recipient_release(&r);
	return v;
}

/* Whether attempts on user from this client are blocked by the throttle now (logged when they are). */
static bool attempt_blocked(struct sess *ss, const char *user)
{
	enum throttle_block b = throttle_guard_check(ss->sd->guard, ss->peer, user, (uint64_t)time(NULL));
	if (b != THROTTLE_FREE)
		log_warn("authentication of %s from %s refused: temporarily blocked (too many failed logins of %s)",
			 user, ss->peer, throttle_block_text(b));
	return b != THROTTLE_FREE;
}

static int be_check_password(void *ctx, const char *user, const char *pass, size_t passlen)
{
	struct sess *ss = ctx;
	struct smtpd *sd = ss->sd;
	ss->password_checked = true;
	if (strlen(pass) != passlen)
		return IX_EAUTH;
	if (attempt_blocked(ss, user))
		return IX_EBLOCKED;
	struct buf err = BUF_INIT;
	char *app = NULL;
	int r = dir_authenticate_mail(sd->d.dir, user, pass, &app, &err);
	free(app); /* logged by the directory */
	if (r == IX_EBLOCKED)
		log_warn("authentication of %s from %s refused: temporarily blocked (%s)", user, ss->peer,
			 buf_cstr(&err));
	else if (r != IX_OK && r != IX_EAUTH)
		log_warn("authentication of %s: %s", user, buf_cstr(&err));
	if (r == IX_EAUTH) {
		unsigned n = throttle_guard_fail(sd->guard, ss->peer, user, (uint64_t)time(NULL));
		log_info("authentication of %s from %s failed: %s (%u failures in the window)", user, ss->peer,
			 buf_cstr(&err), n);
	}
	buf_free(&err);
	return r == IX_OK ? 0 : r == IX_EAUTH || r == IX_EBLOCKED ? r : IX_EUNAVAIL;
}

/* A refused token or ticket counts against the client's address as a wrong password does (the account is not
 * known). */
static void be_auth_refused(void *ctx)
{
	struct sess *ss = ctx;
	if (!ss->password_checked) {
		unsigned n = throttle_guard_fail(ss->sd->guard, ss->peer, NULL, (uint64_t)time(NULL));
		log_info("authentication from %s failed: token or ticket refused (%u failures in the window)", ss->peer,
			 n);
	}
	ss->password_checked = false;
}

static bool be_auth_blocked(void *ctx)
{
	struct sess *ss = ctx;
	enum throttle_block b = throttle_guard_check(ss->sd->guard, ss->peer, NULL, (uint64_t)time(NULL));
	if (b != THROTTLE_FREE)
		log_warn("authentication from %s refused: temporarily blocked (too many failed logins of %s)", ss->peer,
			 throttle_block_text(b));
	return b != THROTTLE_FREE;
}

static int be_scram(void *ctx, const char *user, struct scram_server *srv, struct buf *names_r)
{
	struct sess *ss = ctx;
	struct smtpd *sd = ss->sd;
	ss->password_checked = true; /* a wrong proof is counted with the account (be_scram_failed), not as a token */
	if (attempt_blocked(ss, user))
		return IX_EBLOCKED;
	struct buf err = BUF_INIT;
	int r = dir_scram_verifiers(sd->d.dir, user, srv, names_r, &err);
	if (r == IX_EBLOCKED)
		log_warn("authentication of %s from %s refused: temporarily blocked (%s)", user, ss->peer,
			 buf_cstr(&err));
	else if (r == IX_EUNAVAIL)
		log_warn("SCRAM verifiers of %s: %s", user, buf_cstr(&err));
	buf_free(&err);
	return r;
}

static void be_scram_failed(void *ctx, const char *user)
{
	struct sess *ss = ctx;
	unsigned n = throttle_guard_fail(ss->sd->guard, ss->peer, user, (uint64_t)time(NULL));
	log_info("authentication of %s from %s failed: wrong SCRAM proof (%u failures in the window)", user, ss->peer,
		 n);
}

static void job_push(struct smtpd *sd, struct job *j);

static void be_deliver(void *ctx, struct smtp_session *s, const struct smtp_session_info *info,
		       const struct smtp_envelope *env)
{
	struct sess *ss = ctx;
	struct job *j = xcalloc(1, sizeof(*j));
	j->ss = ss;
	j->s = s;
	j->env = *env;
	j->auth_user = info->auth_user != NULL ? xstrdup(info->auth_user) : NULL;
	j->internal = from_our_server(ss->sd->d.dir, info);
	snprintf(j->helo, sizeof(j->helo), "%s", info->helo);
	memcpy(j->qid, ss->qid, sizeof(j->qid));
	job_push(ss->sd, j);
}

/* The mail filters of the session's port are told of each stage on the workers (they answer over blocking
 * sockets). Submission has filters of its own (smtp.submission_milters): those for mail from outside are not for the
 * organisation's users. Read at the connection, on the loop's thread, where the settings change: a session keeps
 * the list it began with. Our own servers' mail was filtered where it entered: not told from MAIL on (their
 * certificate is known after STARTTLS). */
static bool be_filter(void *ctx, struct smtp_session *s, enum smtp_filter_stage stage,
		      const struct smtp_session_info *info, const struct smtp_rcpt *rcpt)
{
	struct sess *ss = ctx;
	struct smtpd *sd = ss->sd;
	if (stage == SMTP_FILTER_CONNECT) {
		const char *list = sd->set.text[ss->submission ? SET_SMTP_SUBMISSION_MILTERS : SET_SMTP_MILTERS];
		if (list[0] == '\0')
			return false;
		const struct smtpd_milter_config mc = {
			.milters = list,
			.timeout_ms = (unsigned)sd->set.v[SET_SMTP_MILTER_TIMEOUT] * 1000,
			.max_size = sd->set.v[SET_SMTP_MAX_MESSAGE_SIZE],
			.tempfail = sd->set.v[SET_SMTP_MILTER_DEFAULT] != 0,
			.hostname = sd->d.cfg.hostname,
			.domain = sd->d.cfg.domain,
			.peer = ss->peer,
			.data_dir = sd->d.cfg.data_dir,
		};
		ss->milters = smtpd_milters_create(&mc);
	}
	if (ss->milters == NULL || (stage >= SMTP_FILTER_MAIL && from_our_server(sd->d.dir, info)))
		return false;
	struct job *j = xcalloc(1, sizeof(*j));
	j->filter = true;
	j->stage = stage;
	j->ss = ss;
	j->s = s;
	snprintf(j->helo, sizeof(j->helo), "%s", info->helo);
	j->auth_user = info->auth_user != NULL ? xstrdup(info->auth_user) : NULL;
	memcpy(j->qid, ss->qid, sizeof(j->qid));
	if (info->mail != NULL) {
		char from[SMTP_PATH_MAX_UTF8 + 1];
		path_string(&info->mail->from, from, sizeof(from));
		j->sender = xstrdup(from);
	}
	if (rcpt != NULL) {
		char to[SMTP_PATH_MAX_UTF8 + 64];
		if (rcpt->to.postmaster)
			snprintf(to, sizeof(to), "postmaster@%s", sd->d.cfg.domain);
		else
			path_string(&rcpt->to, to, sizeof(to));
		j->rcpt = xstrdup(to);
	}
	job_push(sd, j);
	return true;
}

/* A user by login or address. */
static int lookup_user(struct dir *dir, const char *name, struct dir_recipient *r)
{
	int ret = strchr(name, '@') != NULL ? dir_resolve(dir, name, r) : dir_lookup_login(dir, name, r);
	if (ret == IX_OK && (r->type != DIR_TYPE_USER || r->mailbox_guid == NULL)) {
		dir_recipient_release(r);
		ret = IX_ENOTFOUND;
	}
	return ret;
}

#define BURL_REMOTE_TIMEOUT_MS 10000

struct urlfetch_arg {
	struct buf *out;
	bool found;
};

/* An untagged response of URLFETCH: "URLFETCH url {n}" with the content as its literal, or "URLFETCH url NIL". */
static void on_urlfetch(void *ctx, const struct imc_resp *r)
{
	struct urlfetch_arg *a = ctx;
	size_t tl = strlen(r->text);
	if (strncasecmp(r->text, "URLFETCH ", 9) != 0 || a->found || (tl >= 3 && strcmp(r->text + tl - 3, "NIL") == 0))
		return;
	buf_append(a->out, r->lit->data != NULL ? r->lit->data : "", r->lit->len);
	a->found = true;
}

/* The content of url from the IMAP server that is the mailbox's home (home_dn): signed in there as this server of
 * the organisation for login by SASL EXTERNAL inside TLS (our certificate; theirs checked against the peers the
 * directory lists), then URLFETCH, which that server answers for "submit+LOGIN" only to such a session. Blocking
 * (a worker). Returns 0 or an IX_* code with the reason in err. */
static int burl_remote(struct smtpd *sd, const char *home_dn, const char *login, const char *url, size_t len,
		       struct buf *out, struct buf *err)
{
	struct dir_server *sv = NULL;
	size_t n = 0;
	char *host = NULL;
	unsigned port = 0;
	if (dir_servers(sd->d.dir, &sv, &n) == IX_OK)
		for (size_t i = 0; i < n; i++)
			if (strcasecmp(sv[i].dn, home_dn) == 0 && sv[i].host != NULL && sv[i].imap_port != 0) {
				host = xstrdup(sv[i].host);
				port = sv[i].imap_port;
			}
	dir_servers_free(&sv, n);
	if (host == NULL) {
		buf_printf(err, "the home server %s has no host name or IMAP port", home_dn);
		return IX_EUNAVAIL;
	}
	struct imc c;
	memset(&c, 0, sizeof(c));
	struct buf cmd = BUF_INIT, b64 = BUF_INIT;
	int ret = imc_connect_tcp(&c, host, port, BURL_REMOTE_TIMEOUT_MS, err);
	if (ret == 0)
		ret = imc_greeting(&c, NULL, err);
	struct tls_ctx *ctx = NULL;
	if (ret == 0) {
		c.peers = tls_peers_create(sd->d.cfg.data_dir, true);
		if ((ctx = tls_peers_ctx(c.peers)) == NULL) {
			buf_printf(err, "no certificates of the organisation's servers to check %s against", host);
			ret = IX_EUNAVAIL;
		}
	}
	if (ret == 0) {
		buf_append_str(&cmd, "STARTTLS");
		ret = imc_cmd(&c, &cmd, NULL, NULL, err);
	}
	if (ret == 0)
		ret = imc_tls(&c, ctx, host, err);
	if (ret == 0) {
		base64_encode(login, strlen(login), &b64);
		buf_printf(&cmd, "AUTHENTICATE EXTERNAL %s", buf_cstr(&b64));
		ret = imc_cmd(&c, &cmd, NULL, NULL, err);
	}
	struct urlfetch_arg a = { out, false };
	if (ret == 0) {
		buf_append_str(&cmd, "URLFETCH ");
		imc_add_string(&cmd, url, len);
		ret = imc_cmd(&c, &cmd, on_urlfetch, &a, err);
	}
	if (ret == 0 && !a.found) {
		buf_printf(err, "%s answered NIL", host);
		ret = IX_EPERM;
	}
	imc_close(&c);
	buf_free(&cmd);
	buf_free(&b64);
	free(host);
	return ret;
}

/* BURL (RFC 4468, docs/imap-pop3.md "URLAUTH and BURL"): the content of an IMAP URL the signed-in user authorised
 * for submission (URLAUTH access "submit+" themselves), of a mailbox on this server, from the store after its
 * token verifies. On a worker (offload). */
static const char *be_burl(void *ctx, const char *auth_user, const char *url, size_t len, struct buf *out)
{
	struct sess *ss = ctx;
	struct smtpd *sd = ss->sd;
	struct dir *dir = sd->d.dir;
	struct imap_url u;
	struct buf err = BUF_INIT;
	struct dir_recipient me = { 0 }, who = { 0 }, owner = { 0 };
	const char *refusal = NULL, *submitter = NULL;
	if (imap_url_parse(url, len, &u, &err) != 0 || u.access == NULL || u.mechanism == NULL) {
		refusal = "554 5.7.0 BURL takes an IMAP URL authorised by URLAUTH";
	} else if (imap_url_access_kind(u.access, &submitter) != IMAP_URL_ACCESS_SUBMIT ||
		   lookup_user(dir, auth_user, &me) != IX_OK || lookup_user(dir, submitter, &who) != IX_OK ||
		   strcasecmp(me.dn, who.dn) != 0) {
		buf_printf(&err, "access %s is not submit+ of %s", u.access, auth_user);
		refusal = "554 5.7.0 The URL is not authorised for submission by you";
	} else if (u.host == NULL || u.user == NULL || lookup_user(dir, u.user, &owner) != IX_OK) {
		buf_append_str(&err, "not a URL of a mailbox of the organisation");
		refusal = "554 5.6.6 IMAP URL resolution failed: not a mailbox of the organisation";
	} else if (owner.home_server_dn != NULL && sd->d.cfg.server_dn != NULL &&
		   strcasecmp(owner.home_server_dn, sd->d.cfg.server_dn) != 0) {
		/* homed elsewhere: that server checks the URL (its key) and who asks */
		if (owner.home_server_host == NULL || strcasecmp(u.host, owner.home_server_host) != 0) {
			buf_append_str(&err, "the URL does not name the mailbox's home server");
			refusal = "554 5.6.6 IMAP URL resolution failed: not the mailbox's home server";
		} else if (burl_remote(sd, owner.home_server_dn, me.login, url, len, out, &err) != 0) {
			refusal = "554 5.6.6 IMAP URL resolution failed";
		}
	} else if (strcasecmp(u.host, sd->d.cfg.hostname) != 0) {
		buf_append_str(&err, "not a URL of this server");
		refusal = "554 5.6.6 IMAP URL resolution failed: not a mailbox of this server";
	} else if (sd->d.store == NULL ||
		   imap_urlauth_fetch(sd->d.store, owner.mailbox_guid, url, &u, (int64_t)time(NULL), out, &err) != 0) {
		refusal = "554 5.6.6 IMAP URL resolution failed";
	}
	if (refusal != NULL)
		log_info("BURL from %s for %s refused: %s", ss->peer, auth_user, buf_cstr(&err));
	dir_recipient_release(&me);
	dir_recipient_release(&who);
	dir_recipient_release(&owner);
	imap_url_free(&u);
	buf_free(&err);
	return refusal;
}

/* SASL steps check passwords with a bind: on the workers, so the loop never waits for slapd. */
static void be_offload(void *ctx, struct smtp_session *s)
{
	struct sess *ss = ctx;
	struct job *j = xcalloc(1, sizeof(*j));
	j->auth = true;
	j->ss = ss;
	j->s = s;
	job_push(ss->sd, j);
}

static const struct smtp_backend backend = {
	.rcpt = be_rcpt,
	.check_password = be_check_password,
	.scram = be_scram,
	.scram_failed = be_scram_failed,
	.deliver = be_deliver,
	.closed = be_closed,
};

/* ---- delivery (worker threads) ---- */

/* Queues a success notice for the local recipients that asked for one (NOTIFY=SUCCESS). */
static void success_dsn(struct smtpd *sd, const struct queue_msg *orig, const char *body, size_t body_len,
			const struct mta_targets *t, const int *delivered)
{
	struct dsn_rcpt *dr = xcalloc(t->n, sizeof(*dr));
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (delivered[i] && (t->v[i].notify & SMTP_NOTIFY_SUCCESS)) {
			dr[n].addr = t->v[i].addr;
			dr[n].orcpt = t->v[i].orcpt;
			dr[n].action = DSN_DELIVERED;
			dr[n].status = "2.0.0";
			dr[n].diagnostic = "250 2.0.0 delivered to mailbox";
			n++;
		}
	}
	if (n > 0 && orig->sender[0] != '\0') {
		struct queue_msg m;
		queue_msg_init(&m);
		queue_new_id(m.id);
		m.created = (long long)time(NULL);
		struct dsn_report rep = {
			sd->d.cfg.hostname, orig->sender, orig->envid, true, orig->created, dr, n, body, body_len
		};
		dsn_build(&rep, &m.body);
		queue_msg_add_rcpt(&m, orig->sender, "", SMTP_NOTIFY_NEVER);
		struct buf err = BUF_INIT;
		if (queue_write(sd->qdir, &m, &err) != 0)
			log_error("success notice for %s: %s", orig->id, buf_cstr(&err));
		buf_free(&err);
		queue_msg_free(&m);
	}
	free(dr);
}

static char *deliver_job(struct smtpd *sd, struct job *j)
{
	const struct smtp_envelope *env = &j->env;
	const char *data = env->message;
	size_t len = env->message_len;
	unsigned hops = dsn_count_received(data, len);
	if (hops > sd->set.v[SET_SMTP_MAX_HOPS])
		return xstrdup("554 5.4.6 Too many hops: mail loop detected");
	/* the checks on the way in: an Authentication-Results field of ours on mail from outside; one claiming to be
	 * ours that came with a message from anyone but our own servers is removed */
	struct buf checked = BUF_INIT;
	const char *authserv_id = sd->d.cfg.domain;
	enum authres_policy policy = AUTHRES_DELIVER;
	if (!j->internal && j->auth_user == NULL && sd->authres != NULL && sd->set.v[SET_SMTP_INBOUND_CHECKS]) {
		char from[SMTP_PATH_MAX_UTF8 + 1];
		path_string(&env->mail->from, from, sizeof(from));
		const struct authres_input in = { j->ss->peer, j->helo, from,
						  data,        len,     sd->set.text[SET_ARC_TRUSTED_SEALERS] };
		struct buf domain = BUF_INIT;
		/* each DMARC evaluation recorded for the aggregate reports (RFC 7489 7.2) when they are on */
		struct dmarcrpt_eval eval;
		bool report = sd->set.v[SET_DMARC_REPORTS] != 0;
		policy = authres_check(sd->authres, &in, &checked, &domain, report ? &eval : NULL);
		if (report && eval.domain[0] != '\0' && dmarcrpt_record(&sd->d.cfg, &eval) != IX_OK)
			log_warn("DMARC reporting: the evaluation of a message from %s cannot be recorded", from);
		if (policy == AUTHRES_REJECT) {
			/* DMARC p=reject (RFC 7489 6.6.2): the client hears it, nothing is delivered */
			char *reply = xasprintf("550 5.7.1 Rejected by the DMARC policy of %.200s: the message failed "
						"its SPF and DKIM checks",
						buf_cstr(&domain));
			log_info("message from %s (%s) refused: %s", from, j->ss->peer, reply);
			buf_free(&domain);
			buf_free(&checked);
			return reply;
		}
		buf_free(&domain);
	} else if (!j->internal && authres_claims(authserv_id, data, len)) {
		authres_strip(authserv_id, data, len, &checked);
	} else if (j->internal && authres_quarantined(authserv_id, data, len)) {
		policy = AUTHRES_QUARANTINE; /* the server that took it from outside said so */
	}
	if (checked.len > 0) {
		data = checked.data;
		len = checked.len;
	}
	/* submission tells the truth: the header From is the user's or one they may send as; on behalf adds Sender */
	struct buf rewritten = BUF_INIT;
	if (j->auth_user != NULL) {
		struct buf sender = BUF_INIT, refusal = BUF_INIT;
		if (!mta_check_header_from(sd->d.dir, j->auth_user, data, len, &sender, &refusal)) {
			log_info("message from %s (%s) refused: %s", j->auth_user, j->ss->peer, buf_cstr(&refusal));
			buf_free(&sender);
			buf_free(&checked);
			return buf_steal(&refusal);
		}
		if (sender.len > 0) {
			char *field = xasprintf("Sender: %s\r\n", buf_cstr(&sender));
			dsn_header_insert(data, len, field, &rewritten);
			free(field);
			data = rewritten.data;
			len = rewritten.len;
		}
		buf_free(&sender);
		buf_free(&refusal);
	}
	/* the mail filters (milter) of the session's port see the message; mail from our own servers was filtered
	 * where it entered */
	char qid[QUEUE_ID_MAX + 1];
	if (j->qid[0] != '\0')
		memcpy(qid, j->qid, sizeof(qid));
	else
		queue_new_id(qid);
	struct smtpd_milter_result filtered = { 0 };
	struct smtp_envelope fenv = *env;
	if (j->ss->milters != NULL && !j->internal) {
		char *refusal = NULL;
		if (smtpd_milters_message(j->ss->milters, qid, j->auth_user, env, data, len, &filtered, &refusal) !=
		    SMTPD_MILTER_DELIVER) {
			/* refused (the client hears the filter's reply) or discarded (250, nothing delivered) */
			smtpd_milter_result_free(&filtered);
			buf_free(&rewritten);
			buf_free(&checked);
			return refusal;
		}
		if (filtered.message.len > 0) {
			data = filtered.message.data;
			len = filtered.message.len;
		}
		if (filtered.sender_changed)
			fenv.mail = &filtered.mail;
		if (filtered.rcpts_changed) {
			fenv.rcpts = filtered.rcpts;
			fenv.rcpt_count = filtered.nrcpts;
		}
		if (filtered.quarantine)
			policy = AUTHRES_QUARANTINE; /* each user's copy to their Junk folder, as DMARC's quarantine */
		env = &fenv;
	}

	/* the envelope as a queue message (the queue file is written only if something is left for the MTA) */
	struct queue_msg q;
	queue_msg_init(&q);
	memcpy(q.id, qid, sizeof(q.id));
	q.created = (long long)time(NULL);
	char tmp[SMTP_PATH_MAX_UTF8 + 64];
	path_string(&env->mail->from, tmp, sizeof(tmp));
	queue_set_field(&q.sender, tmp);
	queue_set_field(&q.envid, env->mail->envid);
	q.ret = env->mail->ret;
	queue_set_field(&q.auth, j->auth_user);
	char msgid[DSN_HEADER_VALUE_MAX + 1];
	dsn_header_value(data, len, "Message-ID", msgid, sizeof(msgid));
	queue_set_field(&q.msgid, msgid);
	/* the body is referenced, not copied, unless it has to be queued */

	/* a recipient's largest size, when the client did not announce SIZE at RCPT */
	for (size_t i = 0; i < env->rcpt_count; i++) {
		struct dir_recipient r;
		path_string(&env->rcpts[i].to, tmp, sizeof(tmp));
		if (dir_resolve(sd->d.dir, tmp, &r) != IX_OK)
			continue;
		bool too_big = r.max_receive_size > 0 && len > (unsigned long long)r.max_receive_size;
		dir_recipient_release(&r);
		if (too_big) {
			queue_msg_free(&q);
			smtpd_milter_result_free(&filtered);
			buf_free(&rewritten);
			buf_free(&checked);
			return xasprintf("552 5.2.3 Message too large for <%s>", tmp);
		}
	}
	struct mta_targets t = { 0 };
	const struct mta_sender sender = { .address = q.sender != NULL ? q.sender : "",
					   .authenticated = j->auth_user != NULL,
					   .size = len };
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct smtp_rcpt *r = &env->rcpts[i];
		if (r->to.postmaster)
			snprintf(tmp, sizeof(tmp), "postmaster@%s", sd->d.cfg.domain);
		else
			path_string(&r->to, tmp, sizeof(tmp));
		size_t before = t.n;
		mta_resolve(sd->d.dir, sd->d.cfg.server_dn, tmp, r->orcpt_len > 0 ? r->orcpt : tmp, r->notify, 0,
			    j->internal ? NULL : &sender, &t);
		if (t.n - before > 1 || (t.n - before == 1 && strcasecmp(t.v[before].addr, tmp) != 0)) {
			char detail[64];
			snprintf(detail, sizeof(detail), "%zu recipient%s", t.n - before, t.n - before == 1 ? "" : "s");
			track_log(sd->d.cfg.data_dir, "expanded", q.id, q.msgid, q.sender, tmp, sd->d.cfg.hostname,
				  detail);
		}
	}
	const char *server = sd->d.cfg.hostname;
	track_log(sd->d.cfg.data_dir, "received", q.id, q.msgid, q.sender, NULL, server, j->ss->peer);

	/* local recipients: first those whose mailbox has an active Sieve script (their own deliveries), then one
	 * store_append, one body, for the rest */
	size_t nlocal = 0, nsieved = 0;
	char **sieved = xcalloc(t.n + 1, sizeof(char *)); /* the outcome of a target a script delivered */
	struct buf final = BUF_INIT; /* the final delivery: Return-Path says where notices go (RFC 5321 4.4) */
	dsn_with_return_path(data, len, q.sender != NULL ? q.sender : "", &final);
	struct mta_sieve_ctx sctx = {
		sd->d.store, sd->d.dir, &sd->set, sd->qdir, sd->d.cfg.data_dir, sd->d.cfg.hostname
	};
	for (size_t i = 0; i < t.n; i++) {
		if (t.v[i].kind != MTA_LOCAL)
			continue;
		if (policy != AUTHRES_QUARANTINE && mta_sieve_deliver(&sctx, &t.v[i], q.sender != NULL ? q.sender : "",
								      q.id, q.msgid, final.data, final.len, &sieved[i]))
			nsieved++;
		else
			nlocal++;
	}
	int *delivered = xcalloc(t.n + 1, sizeof(int));
	struct buf err = BUF_INIT;
	char *reply = NULL;
	if (nlocal + nsieved > 0) {
		struct store_target *st = xcalloc(nlocal + 1, sizeof(*st));
		size_t *map = xcalloc(nlocal + nsieved, sizeof(*map));
		size_t k = 0;
		for (size_t i = 0; i < t.n; i++) {
			if (t.v[i].kind != MTA_LOCAL || sieved[i] != NULL)
				continue;
			st[k].guid = t.v[i].guid;
			/* DMARC p=quarantine: a user's copy goes to their Junk folder (a public folder keeps its own) */
			st[k].folder = policy == AUTHRES_QUARANTINE && t.v[i].folder == NULL ? SMTPD_JUNK_FOLDER
											     : t.v[i].folder;
			st[k].quota_bytes = t.v[i].quota_bytes;
			st[k].quota_messages = t.v[i].quota_messages;
			map[k++] = i;
			mta_local_prepare(sd->d.store, &t.v[i]);
		}
		for (size_t i = 0; i < t.n; i++)
			if (sieved[i] != NULL)
				map[k++] = i;
		struct store_append req = { final.data, final.len, 0, 0, NULL, st, nlocal, 0 };
		int rc = nlocal > 0 ? store_append(sd->d.store, &req, &err) : 0;
		if (req.refused && rc == IX_EINVAL) {
			/* the store refuses the message itself: nothing was stored, nothing is queued */
			log_warn("message %s refused by the store: %s", q.id, buf_cstr(&err));
			reply = xasprintf("554 5.6.0 Message cannot be stored: %.200s", buf_cstr(&err));
			free(st);
			free(map);
			goto done;
		}
		/* each target's own outcome: one that can never take mail fails alone (a DSN from the MTA, or the DATA
		 * reply when it was all there was to deliver), one that may later is retried by the MTA */
		size_t nperm = 0;
		char *perm_reply = NULL;
		for (size_t x = 0; x < nlocal + nsieved; x++) {
			struct mta_target *tg = &t.v[map[x]];
			const char *outcome = x < nlocal ? NULL : sieved[map[x]];
			if ((outcome == NULL && (rc == 0 || st[x].result == 0)) ||
			    (outcome != NULL && outcome[0] == '2')) {
				delivered[map[x]] = 1;
				track_log(sd->d.cfg.data_dir, "delivered", q.id, q.msgid, q.sender, tg->addr, server,
					  outcome != NULL ? outcome : "250 2.0.0 delivered to mailbox");
				continue;
			}
			bool permanent = outcome != NULL && outcome[0] == '5';
			char *why = outcome != NULL ? xstrdup(outcome)
						    : mta_local_failure(tg, st[x].result, buf_cstr(&err), &permanent);
			struct queue_rcpt *qr = queue_msg_add_rcpt(&q, tg->addr, tg->orcpt, tg->notify);
			queue_set_field(&qr->last_error, why);
			if (permanent) {
				nperm++; /* attempts 0 and a 5xx error: the MTA's final verdict, with a DSN */
				if (perm_reply == NULL)
					perm_reply = xstrdup(why);
			} else {
				qr->attempts = 1; /* a mailbox being moved: within a second, as the MTA retries it */
				qr->next_try = q.created + (mta_reply_is_moving(why)
								    ? 1
								    : (long long)sd->set.v[SET_QUEUE_RETRY_FIRST]);
			}
			track_log(sd->d.cfg.data_dir, permanent ? "failed" : "deferred", q.id, q.msgid, q.sender,
				  tg->addr, server, why);
			free(why);
		}
		if (nperm == t.n) {
			/* nothing else to deliver: the client hears it now, and no DSN is made */
			log_warn("message %s refused: %s", q.id, perm_reply);
			free(st);
			free(map);
			reply = perm_reply;
			goto done;
		}
		free(perm_reply);
		if (rc != 0)
			log_warn("delivery of %s into the store: %s", q.id, buf_cstr(&err));
		free(st);
		free(map);
	}
	/* everything else goes to the queue for the MTA */
	for (size_t i = 0; i < t.n; i++) {
		struct mta_target *tg = &t.v[i];
		if (tg->kind == MTA_LOCAL)
			continue;
		struct queue_rcpt *qr = queue_msg_add_rcpt(&q, tg->addr, tg->orcpt, tg->notify);
		qr->next_try = q.created;
		if (tg->error != NULL)
			queue_set_field(&qr->last_error, tg->error);
		track_log(sd->d.cfg.data_dir, "queued", q.id, q.msgid, q.sender, tg->addr, server,
			  tg->kind == MTA_SERVER ? tg->dest : tg->error);
	}
	if (q.nrcpts > 0) {
		buf_reset(&err);
		if (queue_write_body(sd->qdir, &q, data, len, &err) != 0) {
			log_error("queueing %s: %s", q.id, buf_cstr(&err));
			reply = xstrdup("451 4.3.0 Queue write failed, try again later");
		}
	}
	if (reply == NULL && nlocal + nsieved > 0)
		success_dsn(sd, &q, data, len, &t, delivered);
done:
	for (size_t i = 0; i < t.n; i++)
		free(sieved[i]);
	free(sieved);
	buf_free(&final);
	smtpd_milter_result_free(&filtered);
	buf_free(&rewritten);
	buf_free(&checked);
	free(delivered);
	buf_free(&err);
	mta_targets_free(&t);
	queue_msg_free(&q);
	return reply;
}

static void job_run(void *arg)
{
	struct job *j = arg;
	if (j->auth) {
		smtp_session_offload_work(j->s);
	} else if (j->filter) {
		const struct smtpd_milter_stage st = {
			.stage = j->stage,
			.helo = j->helo,
			.auth_user = j->auth_user,
			.queue_id = j->qid,
			.sender = j->sender != NULL ? j->sender : "",
			.rcpt = j->rcpt != NULL ? j->rcpt : "",
		};
		j->reply = smtpd_milters_stage(j->ss->milters, &st);
	} else {
		j->reply = deliver_job(j->ss->sd, j);
	}
}

static void job_done(void *arg)
{
	struct job *j = arg;
	if (j->auth)
		smtp_session_offload_done(j->s);
	else if (j->filter)
		smtp_session_filter_done(j->s, j->reply);
	else
		smtp_session_delivered(j->s, j->reply);
	free(j->reply);
	free(j->auth_user);
	free(j->sender);
	free(j->rcpt);
	free(j);
}

static void job_push(struct smtpd *sd, struct job *j)
{
	workpool_submit(sd->pool, job_run, job_done, j);
}

/* ---- start and stop ---- */

static void on_stop(struct daemon *d, void *ctx)
{
	struct smtpd *sd = ctx;
	listener_destroy(&sd->l_smtp);
	listener_destroy(&sd->l_sub);
	listener_destroy(&sd->l_subs);
	/* idle sessions (other servers' cached relay connections among them) close now, not at the grace's end */
	for (struct sess *ss = sd->sessions; ss != NULL; ss = ss->next)
		smtp_session_shutdown(ss->s);
	if (sd->nsessions == 0)
		daemon_stopped(d);
}

/* The certificate changed (d.tls already serves it): port 25's own context takes it too. */
static void mx_cert_changed(struct daemon *d, void *ctx)
{
	struct smtpd *sd = ctx;
	struct buf err = BUF_INIT;
	if (sd->tls_mx != NULL && tls_ctx_reload(sd->tls_mx, d->cert_path, d->key_path, &err) != IX_OK)
		log_warn("port 25 keeps the old certificate: %s", buf_cstr(&err));
	buf_free(&err);
}

int smtpd_main(int argc, char **argv)
{
	static struct smtpd sdv;
	struct smtpd *sd = &sdv;
	daemon_setup(&sd->d, "smtpd", DAEMON_WANT_STORE, argc, argv);
	char *keytab = config_path(&sd->d.cfg, SIGNIN_KEYTAB);
	sd->signin = signin_create(sd->d.dir, keytab);
	free(keytab);
	sd->burl_imap = xasprintf("imap://%s", sd->d.cfg.hostname);
	{
		struct buf terr = BUF_INIT;
		if (tls_server_ctx_create(sd->d.cert_path, sd->d.key_path, &sd->tls_mx, &terr) == IX_OK)
			tls_ctx_request_client_cert(sd->tls_mx);
		else
			log_warn("port 25 cannot ask for client certificates (%s): mail from our other servers is "
				 "checked as from anyone",
				 buf_cstr(&terr));
		buf_free(&terr);
		daemon_on_cert(&sd->d, mx_cert_changed, sd);
	}
	struct buf err = BUF_INIT;
	sd->qdir = config_path(&sd->d.cfg, "queue");
	if (queue_dir_ensure(sd->qdir, &err) != 0)
		fatal("%s", buf_cstr(&err));
	sd->guard = throttle_guard_create(SMTPD_CLIENTS_MAX); /* before the settings: they set its limits */
	sd->dns = dns_create();
	if (authres_create(sd->d.cfg.domain, sd->dns, &sd->authres, &err) != IX_OK) {
		log_error("mail from outside is not checked (SPF, DKIM): %s", buf_cstr(&err));
		buf_reset(&err);
	}
	daemon_watch_settings(&sd->d, on_settings, sd);
	if (workpool_create(sd->d.loop, SMTPD_WORKERS, &sd->pool, &err) != 0)
		fatal("%s", buf_cstr(&err));
	unsigned maxc = (unsigned)sd->set.v[SET_SMTP_MAX_CONNECTIONS];
	sd->l_smtp = daemon_listen(&sd->d, PORT_SMTP, maxc, on_accept_smtp, sd);
	sd->l_sub = daemon_listen(&sd->d, PORT_SUBMISSION, maxc, on_accept_sub, sd);
	/* past the connection limit a client hears why instead of waiting in the backlog */
	listener_set_busy_reply(sd->l_smtp, "421 4.3.2 Too many connections, try again later\r\n");
	/* implicit TLS (RFC 8314): the session starts TLS before its greeting */
	sd->l_subs = daemon_listen(&sd->d, PORT_SUBMISSIONS, maxc, on_accept_subs, sd);
	listener_set_busy_reply(sd->l_sub, "421 4.3.2 Too many connections, try again later\r\n");
	daemon_on_stop(&sd->d, on_stop, sd);
	daemon_run(&sd->d);

	workpool_destroy(&sd->pool, 0); /* first: finished deliveries report to their sessions */
	while (sd->sessions != NULL)
		be_closed(sd->sessions, sd->sessions->s);
	listener_destroy(&sd->l_smtp);
	listener_destroy(&sd->l_sub);
	listener_destroy(&sd->l_subs);
	free(sd->clients);
	throttle_guard_destroy(&sd->guard);
	authres_destroy(&sd->authres);
	dns_destroy(&sd->dns);
	free(sd->qdir);
	buf_free(&err);
	tls_ctx_destroy(&sd->tls_mx);
	signin_destroy(&sd->signin);
	free(sd->burl_imap);
	daemon_teardown(&sd->d);
	return 0;
}
