/* api.c - the REST API under /api/v1/: sign-in (HTTP Basic, or a session cookie with a CSRF token), routing,
 * JSON (jansson) in and out, and the resources, each the same library call the command line makes, made in the
 * directory as the caller. */
#include "transport/http/api.h"
#include "transport/http/api_int.h"
#include "common/audit.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/throttle.h"
#include "directory/dir.h"
#include "directory/provision.h"
#include "transport/mta/queue.h"
#include "transport/mta/queue_json.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The OpenAPI document, built from transport/http/openapi.json (transport/http/http.mk). */
extern const char api_openapi_json[];

struct api *api_create(const struct config *cfg, struct dir *dir)
{
	struct api *api = xcalloc(1, sizeof(*api));
	api->cfg = cfg;
	api->dir = dir;
	api->guard = throttle_guard_create(API_GUARD_CAPACITY);
	pthread_mutex_init(&api->lock, NULL);
	return api;
}

static void session_clear(struct session *s)
{
	if (s->password != NULL)
		OPENSSL_cleanse(s->password, strlen(s->password));
	free(s->login);
	free(s->password);
	memset(s, 0, sizeof(*s));
}

void api_destroy(struct api **api)
{
	if (*api == NULL)
		return;
	for (size_t i = 0; i < API_SESSIONS; i++)
		session_clear(&(*api)->sessions[i]);
	throttle_guard_destroy(&(*api)->guard);
	pthread_mutex_destroy(&(*api)->lock);
	free(*api);
	*api = NULL;
}

void api_settings(struct api *api, const struct settings *s)
{
	struct throttle_limits tl;
	throttle_limits_from_settings(s, &tl);
	throttle_guard_set(api->guard, &tl);
}

/* ---- answers ---- */

void reply(struct call *c, unsigned status, json_t *body)
{
	c->resp->status = status;
	c->resp->content_type = "application/json";
	http_response_header(c->resp, "Cache-Control", "no-store");
	char *text = json_dumps(body, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(body);
	buf_reset(&c->resp->body);
	if (text != NULL) {
		buf_append_str(&c->resp->body, text);
		buf_append_char(&c->resp->body, '\n');
	}
	free(text);
}

void fail(struct call *c, unsigned status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct buf msg = BUF_INIT;
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	reply(c, status, json_pack("{s:s, s:i}", "error", buf_cstr(&msg), "status", (int)status));
	buf_free(&msg);
}

/* The status an ix_err code answers with. */
static unsigned err_status(int ret)
{
	switch (ret) {
	case IX_EINVAL: return 400;
	case IX_EAUTH: return 401;
	case IX_EPERM: return 403;
	case IX_ENOTFOUND: return 404;
	case IX_EEXIST: return 409;
	case IX_ELIMIT: return 413;
	case IX_EBLOCKED: return 429;
	case IX_EUNAVAIL:
	case IX_EAGAIN: return 503;
	default: return 500;
	}
}

void fail_with(struct call *c, int ret, const struct buf *why)
{
	if (ret == IX_EPERM)
		fail(c, 403,
		     "%s may not do this (%s): the directory refused it (%s); an Organisation Admin can add you "
		     "to the role that may, with 'interchange role add ROLE %s'",
		     c->login, c->role == PROV_ROLE_NONE ? "no administrative role" : prov_role_name(c->role),
		     buf_cstr(why), c->login);
	else
		fail(c, err_status(ret), "%s", why->len > 0 ? buf_cstr(why) : ix_strerror(ret));
}

/* ---- sign-in ---- */

static void token_new(char out[TOKEN_HEX + 1])
{
	unsigned char raw[TOKEN_BYTES];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatal("the random generator failed");
	for (size_t i = 0; i < TOKEN_BYTES; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* The session of the request's cookie, copied into c (login, password), with its CSRF token; false when none. */
static bool session_find(struct call *c, char csrf_r[TOKEN_HEX + 1])
{
	const char *cookie = http_request_header(c->req, "Cookie");
	const char *at = cookie != NULL ? strstr(cookie, API_SESSION_COOKIE "=") : NULL;
	if (at == NULL || (at != cookie && at[-1] != ' ' && at[-1] != ';'))
		return false;
	at += strlen(API_SESSION_COOKIE) + 1;
	if (strspn(at, "0123456789abcdef") != TOKEN_HEX)
		return false;
	bool found = false;
	time_t now = time(NULL);
	pthread_mutex_lock(&c->api->lock);
	for (size_t i = 0; i < API_SESSIONS && !found; i++) {
		struct session *s = &c->api->sessions[i];
		if (s->expires == 0 || CRYPTO_memcmp(s->id, at, TOKEN_HEX) != 0)
			continue;
		if (s->expires <= now) {
			session_clear(s);
			break;
		}
		c->login = xstrdup(s->login);
		c->password = xstrdup(s->password);
		memcpy(csrf_r, s->csrf, TOKEN_HEX + 1);
		found = true;
	}
	pthread_mutex_unlock(&c->api->lock);
	return found;
}

/* Login and password of an "Authorization: Basic" header into c; false when there is none or it is malformed. */
static bool basic_credentials(struct call *c)
{
	const char *h = http_request_header(c->req, "Authorization");
	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
		return false;
	struct buf plain = BUF_INIT;
	bool ok = base64_decode(h + 6, strlen(h + 6), 4096, &plain) == IX_OK &&
		  memchr(plain.data, '\0', plain.len) == NULL;
	char *colon = ok ? strchr(buf_cstr(&plain), ':') : NULL;
	if (colon != NULL) {
		c->login = xstrndup(plain.data, (size_t)(colon - plain.data));
		c->password = xstrdup(colon + 1);
	}
	OPENSSL_cleanse(plain.data, plain.len);
	buf_free(&plain);
	return colon != NULL;
}

/* The Basic challenge of a 401, except to the console's script (X-Requested-With): a browser answers a challenge
 * to a fetch with its own password dialog and leaves the request pending until it is closed. */
static void challenge(struct call *c)
{
	if (http_request_header(c->req, "X-Requested-With") == NULL)
		http_response_header(c->resp, "WWW-Authenticate", "Basic realm=\"Interchange\", charset=\"UTF-8\"");
}

/* Binds as c->login with c->password through the sign-in guard every service shares. Answers and returns false when
 * it fails. */
static bool bind_caller(struct call *c)
{
	const char *peer = c->req->peer;
	uint64_t now = (uint64_t)time(NULL);
	enum throttle_block b = throttle_guard_check(c->api->guard, peer, c->login, now);
	if (b != THROTTLE_FREE) {
		log_warn("API sign-in of %s from %s refused: temporarily blocked (too many failed logins of %s)",
			 c->login, peer, throttle_block_text(b));
		fail(c, 429, "too many failed sign-ins (%s): wait a few minutes and try again", throttle_block_text(b));
		return false;
	}
	struct buf err = BUF_INIT;
	int ret = prov_open_as(c->api->cfg, c->login, c->password, &c->prov, &err);
	if (ret == IX_EAUTH) {
		unsigned n = throttle_guard_fail(c->api->guard, peer, c->login, now);
		log_info("API sign-in of %s from %s failed (%u failures in the window)", c->login, peer, n);
		challenge(c);
		fail(c, 401,
		     "wrong login or password: sign in with your login (the administrator: admin) and password");
	} else if (ret != IX_OK) {
		fail(c, 503, "%s", buf_cstr(&err));
	}
	buf_free(&err);
	if (ret != IX_OK)
		return false;
	char *dn = prov_login_dn(c->api->cfg, c->login);
	c->role = prov_role_of(c->prov, dn);
	free(dn);
	return true;
}

static bool unsafe_method(const char *m)
{
	return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

/* Who the caller is: a session (whose unsafe requests carry its CSRF token) or HTTP Basic. Answers and returns false
 * when neither signs in. */
static bool authenticate(struct call *c)
{
	char csrf[TOKEN_HEX + 1];
	if (basic_credentials(c))
		return bind_caller(c);
	if (session_find(c, csrf)) {
		c->by_session = true;
		const char *sent = http_request_header(c->req, API_CSRF_HEADER);
		if (unsafe_method(c->req->method) &&
		    (sent == NULL || strlen(sent) != TOKEN_HEX || CRYPTO_memcmp(sent, csrf, TOKEN_HEX) != 0)) {
			fail(c, 403,
			     "this request lacks the session's CSRF token: send the \"csrf\" value POST "
			     "/api/v1/session returned in the " API_CSRF_HEADER " header");
			return false;
		}
		return bind_caller(c);
	}
	challenge(c);
	fail(c, 401,
	     "sign in first: HTTP Basic with your login (the administrator: admin) and password, or POST "
	     "/api/v1/session");
	return false;
}

/* POST /session {"login", "password"}: a session cookie (SameSite=Strict, HttpOnly, Secure) and its CSRF token. */
static void session_create(struct call *c, json_t *in)
{
	const char *login = json_string_value(json_object_get(in, "login"));
	const char *password = json_string_value(json_object_get(in, "password"));
	if (login == NULL || password == NULL) {
		fail(c, 400, "give {\"login\": ..., \"password\": ...}");
		return;
	}
	c->login = xstrdup(login);
	c->password = xstrdup(password);
	if (!bind_caller(c))
		return;
	log_info("API sign-in of %s from %s (a session)", c->login, c->req->peer);
	time_t now = time(NULL);
	pthread_mutex_lock(&c->api->lock);
	struct session *s = &c->api->sessions[0];
	for (size_t i = 0; i < API_SESSIONS; i++) {
		struct session *t = &c->api->sessions[i];
		if (t->expires <= now) {
			s = t;
			break;
		}
		if (t->expires < s->expires)
			s = t;
	}
	session_clear(s);
	token_new(s->id);
	token_new(s->csrf);
	s->login = xstrdup(c->login);
	s->password = xstrdup(c->password);
	s->expires = now + API_SESSION_SECONDS;
	char id[TOKEN_HEX + 1], csrf[TOKEN_HEX + 1];
	memcpy(id, s->id, sizeof(id));
	memcpy(csrf, s->csrf, sizeof(csrf));
	pthread_mutex_unlock(&c->api->lock);
	char *cookie = xasprintf(API_SESSION_COOKIE "=%s; Path=/; Max-Age=%d; Secure; HttpOnly; SameSite=Strict", id,
				 API_SESSION_SECONDS);
	http_response_header(c->resp, "Set-Cookie", cookie);
	free(cookie);
	reply(c, 201,
	      json_pack("{s:s, s:s, s:s, s:i}", "login", c->login, "role", prov_role_name(c->role), "csrf", csrf,
			"expires_in", API_SESSION_SECONDS));
}

/* DELETE /session: forgets the session of the cookie. */
static void session_delete(struct call *c)
{
	const char *cookie = http_request_header(c->req, "Cookie");
	const char *at = cookie != NULL ? strstr(cookie, API_SESSION_COOKIE "=") : NULL;
	if (at != NULL) {
		at += strlen(API_SESSION_COOKIE) + 1;
		pthread_mutex_lock(&c->api->lock);
		for (size_t i = 0; i < API_SESSIONS; i++) {
			struct session *s = &c->api->sessions[i];
			if (s->expires != 0 && strncmp(s->id, at, TOKEN_HEX) == 0)
				session_clear(s);
		}
		pthread_mutex_unlock(&c->api->lock);
	}
	http_response_header(c->resp, "Set-Cookie",
			     API_SESSION_COOKIE "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
	reply(c, 200, json_pack("{s:s}", "signed_out", c->login));
}

/* ---- helpers of the resources ---- */

bool is_admin(struct call *c)
{
	return c->role != PROV_ROLE_NONE;
}

/* Non-directory resources: refuses (403) a caller weaker than role. */
bool require_role(struct call *c, enum prov_role role)
{
	if (c->role <= role)
		return true;
	fail(c, 403,
	     "%s may not do this (%s): it needs the role %s%s; an Organisation Admin can add you with "
	     "'interchange role add \"%s\" %s'",
	     c->login, c->role == PROV_ROLE_NONE ? "no administrative role" : prov_role_name(c->role),
	     prov_role_name(role), role == PROV_ROLE_ORG ? "" : " or a stronger one", prov_role_name(role), c->login);
	return false;
}

/* A whole number argument of the query (def when absent); false (answered) when it is not one within max. */
bool query_size(struct call *c, const char *name, size_t def, size_t max, size_t *v_r)
{
	const char *v = http_request_query(c->req, name);
	unsigned long long n = def;
	if (v != NULL && (parse_uint(v, max, &n) < 0)) {
		fail(c, 400, "%s must be a whole number from 0 to %zu", name, max);
		return false;
	}
	*v_r = (size_t)n;
	return true;
}

/* The strings of a JSON array (NULL: none) as a new array; false when an element is no string. */
bool string_array(json_t *a, const char ***out_r, size_t *n_r)
{
	*out_r = NULL;
	*n_r = 0;
	if (a == NULL)
		return true;
	if (!json_is_array(a))
		return false;
	const char **v = xcalloc(json_array_size(a) + 1, sizeof(*v));
	for (size_t i = 0; i < json_array_size(a); i++) {
		v[i] = json_string_value(json_array_get(a, i));
		if (v[i] == NULL) {
			free(v);
			return false;
		}
	}
	*out_r = v;
	*n_r = json_array_size(a);
	return true;
}

/* Optional string member; false (answered) when present but not a string. */
bool opt_string(struct call *c, json_t *in, const char *key, const char **v_r)
{
	json_t *v = json_object_get(in, key);
	*v_r = json_string_value(v);
	if (v != NULL && *v_r == NULL && !json_is_null(v)) {
		fail(c, 400, "\"%s\" must be a string", key);
		return false;
	}
	return true;
}

/* Answers a change made: 200/201 with what it says. */
void done(struct call *c, int ret, struct buf *err, unsigned status, json_t *body)
{
	if (ret != IX_OK) {
		json_decref(body);
		fail_with(c, ret, err);
	} else {
		reply(c, status, body);
	}
}

/* ---- servers ---- */

static json_t *settings_json(const struct settings *s)
{
	json_t *o = json_object();
	for (int i = 0; i < SET_COUNT; i++) /* a text setting (smtp.milters, dns.resolver) as its text */
		json_object_set_new(o, setting_def((enum setting_id)i)->name,
				    setting_is_text((enum setting_id)i) ? json_string(s->text[i])
									: json_integer((json_int_t)s->v[i]));
	return o;
}

/* GET /servers, GET /servers/NAME (with its effective settings) */
static void servers_get(struct call *c, const char *name)
{
	if (!require_role(c, PROV_ROLE_VIEW))
		return;
	struct dir_server *servers;
	size_t n;
	dir_servers(c->api->dir, &servers, &n);
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct dir_server *s = &servers[i];
		if (name != NULL && strcasecmp(name, s->name) != 0)
			continue;
		json_t *o = json_pack("{s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}}", "name", s->name, "host",
				      s->host != NULL ? s->host : "", "ports", "ldap", s->ldap_port, "smtp",
				      s->smtp_port, "submission", s->submission_port, "submissions",
				      s->submissions_port, "imap", s->imap_port, "imaps", s->imaps_port, "pop3",
				      s->pop3_port, "pop3s", s->pop3s_port);
		if (name != NULL) {
			struct settings set;
			dir_server_settings(c->api->dir, s->dn, &set);
			json_object_set_new(o, "settings", settings_json(&set));
		}
		json_array_append_new(items, o);
	}
	dir_servers_free(&servers, n);
	if (name == NULL)
		reply_list(c, items);
	else if (json_array_size(items) == 0) {
		json_decref(items);
		fail(c, 404, "there is no server named %s: GET /api/v1/servers lists them", name);
	} else {
		reply(c, 200, json_incref(json_array_get(items, 0)));
		json_decref(items);
	}
}

/* PATCH /servers/NAME/settings {"SETTING": VALUE, ...} */
static void server_settings(struct call *c, const char *name, json_t *in)
{
	if (!require_role(c, PROV_ROLE_ORG))
		return;
	if (!json_is_object(in) || json_object_size(in) == 0) {
		fail(c, 400, "give the settings to change as {\"NAME\": VALUE}, e.g. {\"smtp.max_recipients\": 500}");
		return;
	}
	struct buf err = BUF_INIT;
	int ret = IX_OK;
	const char *key;
	json_t *v;
	json_object_foreach(in, key, v)
	{
		char *value = json_is_integer(v)  ? xasprintf("%lld", (long long)json_integer_value(v))
			      : json_is_string(v) ? xstrdup(json_string_value(v))
						  : NULL;
		if (value == NULL) {
			buf_printf(&err, "the value of %s must be a number", key);
			ret = IX_EINVAL;
		} else {
			ret = prov_server_set(c->prov, name, key, value, &err);
		}
		free(value);
		if (ret != IX_OK)
			break;
	}
	if (ret == IX_OK)
		reply(c, 200, json_pack("{s:s, s:O}", "server", name, "changed", in));
	else
		fail_with(c, ret, &err);
	buf_free(&err);
}

/* ---- the queue ---- */

static char *queue_dir(struct call *c)
{
	return config_path(c->api->cfg, "queue");
}

static void reply_page(struct call *c, json_t *items, const char *q);

/* GET /queue?q=&offset=&limit=: the messages still to deliver, those whose id, sender, Message-ID or a recipient
 * holds q when it is given (any administrative role) */
static void queue_get(struct call *c, json_t *in)
{
	(void)in;
	size_t offset, limit;
	if (!require_role(c, PROV_ROLE_VIEW) || !query_size(c, "offset", 0, (size_t)1 << 30, &offset) ||
	    !query_size(c, "limit", API_PAGE_DEFAULT, API_PAGE_MAX, &limit))
		return;
	char *qdir = queue_dir(c), **ids = NULL;
	size_t n = 0;
	struct buf err = BUF_INIT;
	const char *q = http_request_query(c->req, "q");
	if (queue_list(qdir, &ids, &n, &err) != 0) {
		fail(c, 500, "%s", buf_cstr(&err));
	} else if (q != NULL && q[0] != '\0') { /* a search reads every message: their ids, senders, recipients */
		long long now = (long long)time(NULL);
		json_t *items = json_array();
		for (size_t i = 0; i < n; i++) {
			struct queue_msg m;
			buf_reset(&err);
			if (queue_read(qdir, ids[i], false, &m, &err) == 0)
				json_array_append_new(items, queue_msg_json(&m, now, false));
			queue_msg_free(&m);
		}
		reply_list(c, items);
	} else {
		long long now = (long long)time(NULL);
		json_t *items = json_array();
		for (size_t i = offset; i < n && json_array_size(items) < limit; i++) {
			struct queue_msg m;
			buf_reset(&err);
			if (queue_read(qdir, ids[i], false, &m, &err) == 0)
				json_array_append_new(items, queue_msg_json(&m, now, false));
			queue_msg_free(&m); /* or delivered meanwhile */
		}
		reply(c, 200,
		      json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)n, "offset",
				(json_int_t)offset, "limit", (json_int_t)limit));
	}
	queue_ids_free(&ids, n);
	buf_free(&err);
	free(qdir);
}

/* GET /queue/ID (any administrative role), DELETE /queue/ID (Organisation Admins): the sender is not notified */
static void queue_one(struct call *c, json_t *in)
{
	(void)in;
	bool del = strcmp(c->req->method, "DELETE") == 0;
	if (!require_role(c, del ? PROV_ROLE_ORG : PROV_ROLE_VIEW))
		return;
	const char *id = c->seg[1];
	char *qdir = queue_dir(c);
	struct buf err = BUF_INIT;
	struct queue_msg m;
	int ret = del ? queue_remove(qdir, id, &err) : queue_read(qdir, id, true, &m, &err);
	if (ret == IX_ENOTFOUND || ret == IX_EINVAL)
		fail(c, 404, "no message %s in the queue (delivered, bounced or deleted): GET /api/v1/queue lists them",
		     id);
	else if (ret != 0)
		fail(c, 500, "%s", buf_cstr(&err));
	else if (del)
		reply(c, 200, json_pack("{s:s}", "deleted", id));
	else
		reply(c, 200, queue_msg_json(&m, (long long)time(NULL), true));
	if (!del)
		queue_msg_free(&m);
	buf_free(&err);
	free(qdir);
}

/* POST /queue/flush (Organisation Admins): the transfer agent retries every message now */
static void queue_flush(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_ORG))
		return;
	char *qdir = queue_dir(c);
	struct buf err = BUF_INIT;
	if (queue_request_flush(qdir, &err) != 0)
		fail(c, 500, "%s", buf_cstr(&err));
	else
		reply(c, 202, json_pack("{s:s}", "flush", "the transfer agent retries every queued message now"));
	buf_free(&err);
	free(qdir);
}

/* ---- message tracking ---- */

static void track_add_json(const struct track_event *e, void *ctx)
{
	json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "time", e->time, "event",
					     e->event, "queue_id", e->qid, "message_id", e->msgid, "sender", e->sender,
					     "recipient", e->rcpt, "server", e->server, "detail", e->detail));
}

/* GET /track?q=ADDRESS|MESSAGE-ID: every event of the matching messages, oldest first (any administrative role) */
static void track_get(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_VIEW))
		return;
	const char *q = http_request_query(c->req, "q");
	if (q == NULL || q[0] == '\0') {
		fail(c, 400, "give an address or a Message-ID: GET /api/v1/track?q=ADDRESS");
		return;
	}
	json_t *items = json_array();
	track_search(c->api->cfg->data_dir, q, track_add_json, items);
	reply_page(c, items, NULL); /* q chose the messages: each of their events is answered */
}

/* ---- the audit log ---- */

static bool audit_add_json(const struct audit_entry *e, void *ctx)
{
	char stamp[32];
	struct tm tm;
	gmtime_r(&e->when, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "time", stamp, "who", e->who, "via",
					     e->via, "action", e->action, "target", e->target, "result", e->result));
	return true;
}

/* GET /audit?since=DATE&who=LOGIN&offset=&limit= (newest last) */
static void audit_get(struct call *c)
{
	if (!require_role(c, PROV_ROLE_VIEW))
		return;
	time_t since = 0;
	const char *s = http_request_query(c->req, "since");
	if (s != NULL && !audit_parse_time(s, &since)) {
		fail(c, 400, "since must be a date, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
		return;
	}
	size_t offset, limit;
	if (!query_size(c, "offset", 0, (size_t)1 << 30, &offset) ||
	    !query_size(c, "limit", API_PAGE_DEFAULT, API_PAGE_MAX, &limit))
		return;
	json_t *all = json_array(), *items = json_array();
	struct buf err = BUF_INIT;
	int ret = audit_read(c->api->cfg->data_dir, since, http_request_query(c->req, "who"), audit_add_json, all,
			     &err);
	if (ret != IX_OK) {
		json_decref(all);
		json_decref(items);
		fail_with(c, ret, &err);
	} else {
		for (size_t i = offset; i < json_array_size(all) && i < offset + limit; i++)
			json_array_append(items, json_array_get(all, i));
		reply(c, 200,
		      json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)json_array_size(all),
				"offset", (json_int_t)offset, "limit", (json_int_t)limit));
		json_decref(all);
	}
	buf_free(&err);
}

/* GET /roles: the roles and their members (as the caller reads them) */
static void roles_get(struct call *c)
{
	struct buf out = BUF_INIT, err = BUF_INIT;
	int ret = prov_role_list(c->prov, &out, &err);
	if (ret != IX_OK) {
		fail_with(c, ret, &err);
	} else {
		json_t *roles = json_object();
		for (int i = 0; i < PROV_ROLE_COUNT; i++)
			json_object_set_new(roles, prov_role_name((enum prov_role)i), json_array());
		char *save = NULL;
		char *line = strtok_r(out.data, "\n", &save); /* the header */
		while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
			for (int i = 0; i < PROV_ROLE_COUNT; i++) {
				const char *r = prov_role_name((enum prov_role)i);
				size_t n = strlen(r);
				if (strncmp(line, r, n) == 0 && line[n] == ' ')
					json_array_append_new(json_object_get(roles, r),
							      json_string(line + n + strspn(line + n, " ")));
			}
		}
		reply(c, 200,
		      json_pack("{s:o, s:s, s:s}", "roles", roles, "you", c->login, "your_role",
				prov_role_name(c->role)));
	}
	buf_free(&out);
	buf_free(&err);
}

/* ---- routing ---- */

/* Whether a string in v (an object's members, an array's elements, two levels deep) holds q, without case. */
static bool holds_query(json_t *v, const char *q, int depth)
{
	const char *key;
	json_t *m;
	size_t i;
	if (json_is_string(v))
		return strcasestr(json_string_value(v), q) != NULL;
	if (depth > 2)
		return false;
	if (json_is_object(v)) {
		json_object_foreach(v, key, m)
		{
			if (holds_query(m, q, depth + 1))
				return true;
		}
	}
	json_array_foreach(v, i, m)
	{
		if (holds_query(m, q, depth + 1))
			return true;
	}
	return false;
}

/* reply_list, with q the text to search for (NULL: every item). */
static void reply_page(struct call *c, json_t *items, const char *q)
{
	size_t offset, limit;
	if (!query_size(c, "offset", 0, (size_t)1 << 30, &offset) ||
	    !query_size(c, "limit", API_PAGE_DEFAULT, API_PAGE_MAX, &limit)) {
		json_decref(items);
		return;
	}
	json_t *page = json_array();
	size_t total = 0;
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *item = json_array_get(items, i);
		if (q != NULL && q[0] != '\0' && !holds_query(item, q, 0))
			continue;
		if (total >= offset && json_array_size(page) < limit)
			json_array_append(page, item);
		total++;
	}
	json_decref(items);
	reply(c, 200,
	      json_pack("{s:o, s:I, s:I, s:I}", "items", page, "total", (json_int_t)total, "offset", (json_int_t)offset,
			"limit", (json_int_t)limit));
}

void reply_list(struct call *c, json_t *items)
{
	reply_page(c, items, http_request_query(c->req, "q"));
}

bool seg_is(const struct call *c, size_t i, const char *s)
{
	return i < c->nseg && strcmp(c->seg[i], s) == 0;
}

/* The request's JSON body into *in_r (an empty body: an empty object); false (answered) when it is not JSON. */
static bool body_json(struct call *c, json_t **in_r)
{
	*in_r = NULL;
	if (c->req->body_len == 0) {
		*in_r = json_object();
		return true;
	}
	json_error_t jerr;
	*in_r = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (*in_r == NULL) {
		fail(c, 400, "the body is not JSON (line %d, column %d: %s)", jerr.line, jerr.column, jerr.text);
		return false;
	}
	if (!json_is_object(*in_r)) {
		json_decref(*in_r);
		*in_r = NULL;
		fail(c, 400, "the body must be a JSON object ({...})");
		return false;
	}
	return true;
}

static void r_servers(struct call *c, json_t *in)
{
	(void)in;
	servers_get(c, c->nseg >= 2 ? c->seg[1] : NULL);
}

static void r_server_settings(struct call *c, json_t *in)
{
	server_settings(c, c->seg[1], in);
}

static void r_audit(struct call *c, json_t *in)
{
	(void)in;
	audit_get(c);
}

static void r_roles(struct call *c, json_t *in)
{
	(void)in;
	roles_get(c);
}

static const struct api_route api_routes[] = {
	{ "servers", 1, NULL, "GET", r_servers },       { "servers", 2, NULL, "GET", r_servers },
	{ "servers", 3, "settings", "GET", r_servers }, { "servers", 3, "settings", "PATCH", r_server_settings },
	{ "queue", 1, NULL, "GET", queue_get },         { "queue", 2, "flush", "POST", queue_flush },
	{ "queue", 2, NULL, "GET", queue_one },         { "queue", 2, NULL, "DELETE", queue_one },
	{ "track", 1, NULL, "GET", track_get },         { "audit", 1, NULL, "GET", r_audit },
	{ "roles", 1, NULL, "GET", r_roles },
};

static bool route_matches(const struct call *c, const struct api_route *r)
{
	if (c->nseg != r->nseg || (r->sub != NULL && !seg_is(c, r->nseg == 2 ? 1 : 2, r->sub)))
		return false;
	return seg_is(c, 0, r->what);
}

bool api_table_route(struct call *c, json_t *in, const char *as, const struct api_route *routes, size_t n,
		     struct buf *allow_r)
{
	for (size_t i = 0; i < n; i++) {
		const struct api_route *r = &routes[i];
		if (!route_matches(c, r))
			continue;
		if (strcmp(r->method, as) == 0) {
			r->fn(c, in);
			return true;
		}
		buf_printf(allow_r, "%s%s", allow_r->len > 0 ? ", " : "", r->method);
	}
	return false;
}

/* Runs the route of a signed-in request; 404 or 405 (with Allow) when none takes it. */
static void route(struct call *c, json_t *in)
{
	const char *m = c->req->method;
	const char *as = strcmp(m, "HEAD") == 0 ? "GET" : strcmp(m, "PUT") == 0 ? "PATCH" : m;
	struct buf allow = BUF_INIT;
	if (api_recipients_route(c, in, as, &allow) ||
	    api_table_route(c, in, as, api_routes, IX_ARRAY_LEN(api_routes), &allow) ||
	    api_table_route(c, in, as, api_admin_routes, api_admin_route_count, &allow)) {
		buf_free(&allow);
		return;
	}
	if (allow.len > 0) {
		http_response_header(c->resp, "Allow", buf_cstr(&allow));
		fail(c, 405, "%s is not answered here: use %s", m, buf_cstr(&allow));
	} else {
		fail(c, 404, "there is no %s%s: the resources are listed in /api/v1/openapi.json", API_PREFIX,
		     c->req->path + strlen(API_PREFIX));
	}
	buf_free(&allow);
}

/* The request path after API_PREFIX split at '/' (empty segments dropped); false when it has too many. */
static bool split_path(struct call *c)
{
	c->path_copy = xstrdup(c->req->path + strlen(API_PREFIX));
	char *save = NULL;
	for (char *s = strtok_r(c->path_copy, "/", &save); s != NULL; s = strtok_r(NULL, "/", &save)) {
		if (c->nseg == API_SEGMENTS)
			return false;
		c->seg[c->nseg++] = s;
	}
	return true;
}

static void record(struct call *c)
{
	struct buf action = BUF_INIT, err = BUF_INIT;
	buf_printf(&action, "%s %s", c->req->method, c->req->path);
	char result[AUDIT_FIELD_MAX];
	if (c->resp->status < 300) {
		snprintf(result, sizeof(result), "ok");
	} else {
		json_t *j = json_loadb(c->resp->body.data, c->resp->body.len, 0, NULL);
		snprintf(result, sizeof(result), "%u %s", c->resp->status,
			 j != NULL && json_string_value(json_object_get(j, "error")) != NULL
				 ? json_string_value(json_object_get(j, "error"))
				 : "");
		json_decref(j);
	}
	struct audit_entry e = { 0, c->login, "api", buf_cstr(&action), "", result }; /* the path names the target */
	if (audit_record(c->api->cfg->data_dir, &e, &err) != IX_OK)
		log_warn("audit log: %s", buf_cstr(&err));
	buf_free(&action);
	buf_free(&err);
}

void api_handle(struct api *api, const struct http_request *req, struct http_response *resp)
{
	struct call c = { .api = api, .req = req, .resp = resp, .role = PROV_ROLE_NONE };
	json_t *in = NULL;
	if (!req->tls) {
		fail(&c, 403, "the API answers over HTTPS only: use https://%s:%u%s", api->cfg->hostname,
		     api->cfg->ports[PORT_HTTPS], req->path);
		return;
	}
	if (!split_path(&c)) {
		fail(&c, 404, "there is no %s: the resources are listed in /api/v1/openapi.json", req->path);
		goto out;
	}
	if (seg_is(&c, 0, "openapi.json") && c.nseg == 1) {
		resp->content_type = "application/json";
		buf_append_str(&resp->body, api_openapi_json);
		goto out;
	}
	if (unsafe_method(req->method) && !body_json(&c, &in))
		goto out;
	if (seg_is(&c, 0, "session") && c.nseg == 1 && strcmp(req->method, "POST") == 0) {
		session_create(&c, in);
		goto out;
	}
	if (!authenticate(&c))
		goto out;
	if (seg_is(&c, 0, "session") && c.nseg == 1) {
		if (strcmp(req->method, "DELETE") == 0)
			session_delete(&c);
		else if (!unsafe_method(req->method))
			reply(&c, 200,
			      json_pack("{s:s, s:s, s:b}", "login", c.login, "role", prov_role_name(c.role), "admin",
					is_admin(&c)));
		else
			fail(&c, 405, "use POST to sign in, GET to see who you are, DELETE to sign out");
		goto out;
	}
	route(&c, in);
	if (unsafe_method(req->method) && resp->status != 404 && resp->status != 405)
		record(&c);
out:
	json_decref(in);
	prov_close(&c.prov);
	if (c.password != NULL)
		OPENSSL_cleanse(c.password, strlen(c.password));
	free(c.password);
	free(c.login);
	free(c.path_copy);
}
