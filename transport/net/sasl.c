/* sasl.c - Cyrus libsasl2 server wrapper: in-memory options, the caller's password check through
 * SASL_CB_SERVER_USERDB_CHECKPASS, base64 framing; and SCRAM over common/scram.c with the caller's verifiers.
 * Cyrus result codes are translated here only. */
#include "transport/net/sasl.h"
#include "transport/net/bearer.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sasl/sasl.h>

/* a SCRAM exchange's progress */
enum scram_step {
	SCRAM_IDLE = 0,
	SCRAM_WANT_FIRST, /* the client's first message */
	SCRAM_WANT_FINAL, /* the client's final message */
	SCRAM_WANT_EMPTY, /* the empty response after our server-final message */
};

struct ix_sasl {
	sasl_conn_t *conn;
	char *service, *host;
	bool secure;
	ix_sasl_check_fn *check;
	void *ctx;
	int check_result; /* what the last check said (Cyrus may blur it) */
	unsigned steps;
	bool active;
	bool login_need_user; /* a LOGIN exchange whose next response is the user name */
	bool plain_need_msg;  /* a PLAIN exchange whose next response is the whole message */
	bool password_ok;     /* the check function accepted the password in this exchange */
	char *user;
	const struct ix_sasl_verifiers *v;
	bool bearer;         /* an OAUTHBEARER or XOAUTH2 exchange (ours, not Cyrus's) */
	bool bearer_xoauth2; /* XOAUTH2's message, not RFC 7628's */
	bool bearer_refused; /* the token was refused: the client's next response ends the exchange */
	bool gssapi;         /* a GSSAPI exchange: the principal is mapped to a login at the end */
	struct buf bearer_why;
	sasl_callback_t callbacks[3];
	ix_sasl_authorize_fn *authorize;
	void *authorize_ctx;
	char *authzid; /* PLAIN's authorization identity naming another user, taken out before Cyrus parses */
	char *actor;   /* after DONE: the authentication identity that acts for user */
	ix_sasl_scram_fn *scram_fn;
	ix_sasl_failed_fn *scram_failed;
	void *scram_ctx;
	bool have_cbind;
	struct scram_cbind cbind;
	struct scram_server *scram; /* the running SCRAM exchange, or NULL */
	enum scram_step scram_step;
	struct buf scram_names; /* the names of the verifiers added, NUL-separated */
	char *credential;       /* after SCRAM: the matched verifier's name */
	struct buf mechs;
};

static void scram_end(struct ix_sasl *s);

static bool sasl_ready;
static char *sasl_app;
/* what the salt of an unknown user is made from (scram_server_challenge) */
static unsigned char fake_secret[32];

/* ---- Cyrus callbacks ---- */

static int cb_getopt(void *context, const char *plugin, const char *option, const char **result, unsigned *len)
{
	(void)context;
	(void)plugin;
	const char *v = NULL;
	if (strcmp(option, "mech_list") == 0)
		v = IX_SASL_MECHS " GSSAPI"; /* GSSAPI only when a keytab is installed: ix_sasl_start says */
	else if (strcmp(option, "pwcheck_method") == 0)
		v = "ix-none"; /* reached only when our check said no: no such verifier, so it fails */
	else if (strcmp(option, "auxprop_plugin") == 0)
		v = "ix-none";
	else if (strcmp(option, "log_level") == 0)
		v = "1";
	else if (strcmp(option, "canon_user_plugin") == 0)
		v = "INTERNAL";
	if (v == NULL)
		return SASL_FAIL;
	*result = v;
	if (len != NULL)
		*len = (unsigned)strlen(v);
	return SASL_OK;
}

static int cb_log(void *context, int level, const char *message)
{
	(void)context;
	/* Failures reach the caller through our return codes; Cyrus's own view is detail for debugging (it
	 * also complains about the deliberately missing fallback verifier on every wrong password). */
	log_debug("sasl[%d]: %s", level, message);
	return SASL_OK;
}

/* No configuration file is read: point Cyrus at a folder that holds none. */
static int cb_getconfpath(void *context, char **path)
{
	(void)context;
	static char none[] = "/nonexistent/interchange-sasl";
	*path = none;
	return SASL_OK;
}

/* Cyrus loads every plugin of its folder at sasl_server_init; only those of the mechanisms we offer through it are
 * let in (the others would be refused by mech_list anyway, and GS2's, installed with GSSAPI's, leaks at load). */
static int cb_verifyfile(void *context, const char *file, sasl_verify_type_t type)
{
	(void)context;
	if (type != SASL_VRFY_PLUGIN)
		return SASL_OK;
	static const char *const wanted[] = { "libplain.", "liblogin.", "libgssapiv2." };
	const char *base = strrchr(file, '/');
	base = base != NULL ? base + 1 : file;
	for (size_t i = 0; i < IX_ARRAY_LEN(wanted); i++) {
		if (strncmp(base, wanted[i], strlen(wanted[i])) == 0)
			return SASL_OK;
	}
	return SASL_CONTINUE; /* skipped */
}

static int cb_checkpass(sasl_conn_t *conn, void *context, const char *user, const char *pass, unsigned passlen,
			struct propctx *propctx)
{
	(void)conn;
	(void)propctx;
	struct ix_sasl *s = context;
	if (user == NULL || pass == NULL || strlen(user) > IX_SASL_USER_MAX || passlen > IX_SASL_PASS_MAX) {
		s->check_result = IX_EAUTH;
		return SASL_BADAUTH;
	}
	s->check_result = s->check(s->ctx, user, pass, passlen);
	s->password_ok = s->check_result == 0;
	if (s->check_result == 0)
		return SASL_OK;
	if (s->check_result == IX_EUNAVAIL)
		return SASL_UNAVAIL;
	if (s->check_result == IX_EBLOCKED)
		return SASL_BADAUTH; /* said as IX_EBLOCKED by outcome() */
	s->check_result = IX_EAUTH;
	return SASL_BADAUTH;
}

typedef int (*sasl_cb_fn)(void);

int ix_sasl_init(const char *app_name, struct buf *error_r)
{
	if (sasl_ready)
		return 0;
	static sasl_callback_t global[] = {
		{ SASL_CB_GETOPT, (sasl_cb_fn)(void (*)(void))cb_getopt, NULL },
		{ SASL_CB_LOG, (sasl_cb_fn)(void (*)(void))cb_log, NULL },
		{ SASL_CB_GETCONFPATH, (sasl_cb_fn)(void (*)(void))cb_getconfpath, NULL },
		{ SASL_CB_VERIFYFILE, (sasl_cb_fn)(void (*)(void))cb_verifyfile, NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	if (RAND_bytes(fake_secret, sizeof(fake_secret)) != 1) {
		buf_append_str(error_r, "no random numbers");
		return IX_EUNAVAIL;
	}
	sasl_app = xstrdup(app_name);
	int r = sasl_server_init(global, sasl_app);
	if (r != SASL_OK) {
		buf_printf(error_r, "sasl_server_init: %s", sasl_errstring(r, NULL, NULL));
		free(sasl_app);
		sasl_app = NULL;
		return IX_EUNAVAIL;
	}
	sasl_ready = true;
	return 0;
}

void ix_sasl_done(void)
{
	if (!sasl_ready)
		return;
	sasl_server_done();
	free(sasl_app);
	sasl_app = NULL;
	sasl_ready = false;
}

/* ---- sessions ---- */

/* Cyrus's LOGIN plugin loses the password it copied when it then cannot canonicalise the user name (empty,
 * too long, control characters, white space at either end), one leak per attempt; such names are refused here
 * before Cyrus sees them. No real login name has any of these. */
static bool identity_acceptable(const char *user, size_t len, bool may_be_empty)
{
	if (len == 0)
		return may_be_empty;
	if (len > IX_SASL_USER_MAX || user[0] == ' ' || user[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool login_user_acceptable(const char *user, size_t len)
{
	return identity_acceptable(user, len, false);
}

/* Likewise libsasl2 itself loses a buffer when it cannot canonicalise an overlong PLAIN identity: the parts of
 * authzid NUL authcid NUL password are held to our limits here. A message without two NULs goes on to Cyrus,
 * which refuses it as malformed. */
static bool plain_message_acceptable(const char *msg, size_t len)
{
	const char *nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return true;
	size_t authz = (size_t)(nul1 - msg);
	const char *nul2 = memchr(nul1 + 1, '\0', len - authz - 1);
	if (nul2 == NULL)
		return true;
	size_t authc = (size_t)(nul2 - nul1 - 1), pass = len - authz - authc - 2;
	return identity_acceptable(msg, authz, true) && identity_acceptable(nul1 + 1, authc, false) &&
	       pass <= IX_SASL_PASS_MAX;
}

/* PLAIN naming another user as the authorization identity (authzid NUL authcid NUL password) where the caller decides
 * (ix_sasl_set_authorize): the authzid is kept and taken out, so that Cyrus checks "NUL authcid NUL password" as a
 * sign-in of authcid (its own authzid handling looks the identity up in auxprop plugins, none of which we load);
 * outcome() then asks the caller. Returns how many bytes Cyrus is to skip. */
static size_t plain_take_authzid(struct ix_sasl *s, const char *msg, size_t len)
{
	const char *nul1 = memchr(msg, '\0', len);
	if (s->authorize == NULL || nul1 == NULL || nul1 == msg)
		return 0;
	size_t authz = (size_t)(nul1 - msg);
	const char *nul2 = memchr(nul1 + 1, '\0', len - authz - 1);
	if (nul2 == NULL || ((size_t)(nul2 - nul1 - 1) == authz && memcmp(msg, nul1 + 1, authz) == 0))
		return 0; /* malformed (Cyrus says so), or the same user */
	free(s->authzid);
	s->authzid = xstrndup(msg, authz);
	return authz;
}

/* Checks a response Cyrus is about to parse as a user name (LOGIN) or a whole message (PLAIN); *skip_r: the bytes
 * at its start Cyrus is not to see (plain_take_authzid). */
static bool response_acceptable(struct ix_sasl *s, const char *in, size_t len, size_t *skip_r)
{
	*skip_r = 0;
	if (s->login_need_user) {
		s->login_need_user = false;
		return login_user_acceptable(in, len);
	}
	if (s->plain_need_msg) {
		s->plain_need_msg = false;
		if (!plain_message_acceptable(in, len))
			return false;
		*skip_r = plain_take_authzid(s, in, len);
	}
	return true;
}

static int session_open(struct ix_sasl *s, struct buf *error_r)
{
	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	int r = sasl_server_new(s->service, s->host, NULL, NULL, NULL, s->callbacks, 0, &s->conn);
	if (r != SASL_OK) {
		buf_printf(error_r, "sasl_server_new: %s", sasl_errstring(r, NULL, NULL));
		s->conn = NULL;
		return IX_EUNAVAIL;
	}
	sasl_security_properties_t props;
	memset(&props, 0, sizeof(props));
	props.max_ssf = 0; /* no SASL security layer: TLS does that */
	props.maxbufsize = 0;
	props.security_flags = s->secure ? 0 : SASL_SEC_NOPLAINTEXT;
	r = sasl_setprop(s->conn, SASL_SEC_PROPS, &props);
	if (r != SASL_OK) {
		buf_printf(error_r, "sasl_setprop: %s", sasl_errdetail(s->conn));
		return IX_EUNAVAIL;
	}
	return 0;
}

int ix_sasl_create(const char *service, const char *host, bool secure, ix_sasl_check_fn *check, void *ctx,
		   struct ix_sasl **s_r, struct buf *error_r)
{
	if (!sasl_ready) {
		buf_append_str(error_r, "ix_sasl_init was not called");
		return IX_EUNAVAIL;
	}
	struct ix_sasl *s = xcalloc(1, sizeof(*s));
	s->service = xstrdup(service);
	s->host = xstrdup(host);
	s->secure = secure;
	s->check = check;
	s->ctx = ctx;
	s->callbacks[0] = (sasl_callback_t){ SASL_CB_SERVER_USERDB_CHECKPASS, (sasl_cb_fn)(void (*)(void))cb_checkpass,
					     s };
	s->callbacks[1] = (sasl_callback_t){ SASL_CB_GETOPT, (sasl_cb_fn)(void (*)(void))cb_getopt, NULL };
	s->callbacks[2] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	int ret = session_open(s, error_r);
	if (ret < 0) {
		ix_sasl_destroy(&s);
		return ret;
	}
	*s_r = s;
	return 0;
}

void ix_sasl_destroy(struct ix_sasl **sp)
{
	struct ix_sasl *s = *sp;
	if (s == NULL)
		return;
	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	free(s->service);
	free(s->host);
	free(s->user);
	free(s->actor);
	free(s->authzid);
	buf_free(&s->bearer_why);
	scram_end(s);
	buf_free(&s->scram_names);
	buf_free(&s->mechs);
	free(s->credential);
	OPENSSL_cleanse(&s->cbind, sizeof(s->cbind));
	free(s);
	*sp = NULL;
}

void ix_sasl_set_secure(struct ix_sasl *s, bool secure)
{
	s->secure = secure;
}

void ix_sasl_set_authorize(struct ix_sasl *s, ix_sasl_authorize_fn *fn, void *ctx)
{
	s->authorize = fn;
	s->authorize_ctx = ctx;
}

void ix_sasl_set_scram(struct ix_sasl *s, ix_sasl_scram_fn *fn, ix_sasl_failed_fn *failed, void *ctx)
{
	s->scram_fn = fn;
	s->scram_failed = failed;
	s->scram_ctx = ctx;
}

void ix_sasl_set_channel(struct ix_sasl *s, const struct scram_cbind *cb)
{
	s->have_cbind = cb != NULL && (cb->exporter_len > 0 || cb->endpoint_len > 0);
	if (s->have_cbind)
		s->cbind = *cb;
}

/* The SCRAM the session offers: by its lookup and channel binding data. */
static enum ix_sasl_scram_offer session_scram(const struct ix_sasl *s)
{
	return s->scram_fn == NULL ? IX_SASL_SCRAM_NONE : s->have_cbind ? IX_SASL_SCRAM_PLUS : IX_SASL_SCRAM;
}

const char *ix_sasl_mechanisms(struct ix_sasl *s)
{
	buf_reset(&s->mechs);
	ix_sasl_offered(s->secure, session_scram(s), s->v, &s->mechs);
	return s->mechs.len > 0 ? s->mechs.data + 1 : "";
}

void ix_sasl_set_verifiers(struct ix_sasl *s, const struct ix_sasl_verifiers *v)
{
	s->v = v;
}

static bool bearer_enabled(const struct ix_sasl_verifiers *v)
{
	return v != NULL && v->token != NULL && v->token_enabled != NULL && v->token_enabled(v->ctx);
}

static bool gssapi_enabled(const struct ix_sasl_verifiers *v)
{
	return v != NULL && v->principal != NULL && v->gssapi_enabled != NULL && v->gssapi_enabled(v->ctx);
}

void ix_sasl_offered(bool secure, enum ix_sasl_scram_offer scram, const struct ix_sasl_verifiers *v, struct buf *out)
{
	if (secure && scram == IX_SASL_SCRAM_PLUS)
		buf_append_str(out, " SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1");
	else if (secure && scram == IX_SASL_SCRAM)
		buf_append_str(out, " SCRAM-SHA-256 SCRAM-SHA-1");
	if (secure)
		buf_append_str(out, " " IX_SASL_MECHS);
	if (secure && bearer_enabled(v))
		buf_append_str(out, " OAUTHBEARER XOAUTH2");
	if (gssapi_enabled(v))
		buf_append_str(out, " GSSAPI");
}

static bool mech_known(const char *mech)
{
	return strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0;
}

/* ---- bearer tokens: OAUTHBEARER (RFC 7628) and XOAUTH2, in our own code (Cyrus has neither) ---- */

/* Checks a whole OAUTHBEARER or XOAUTH2 client message. */
static int bearer_message(struct ix_sasl *s, const char *msg, size_t len, struct buf *challenge_r, struct buf *error_r)
{
	struct buf authzid = BUF_INIT, status = BUF_INIT;
	char *token = NULL;
	if (bearer_parse(s->bearer_xoauth2, msg, len, IX_SASL_USER_MAX, &authzid, &token) != IX_OK) {
		buf_free(&authzid);
		s->active = false;
		buf_append_str(error_r, "malformed response");
		return IX_EINVAL;
	}
	char *user = NULL;
	buf_reset(&s->bearer_why);
	int ret = s->v->token(s->v->ctx, buf_cstr(&authzid), token, &user, &status, &s->bearer_why);
	free(token);
	buf_free(&authzid);
	if (ret == 0) {
		s->active = false;
		free(s->user);
		s->user = user;
		buf_free(&status);
		return IX_SASL_DONE;
	}
	free(user);
	if (ret == IX_EAUTH) {
		/* RFC 7628 section 3.2.2: the status goes in a challenge, the client's dummy response ends it */
		s->bearer_refused = true;
		base64_encode(status.data != NULL ? status.data : "", status.len, challenge_r);
		buf_free(&status);
		return IX_SASL_CONTINUE;
	}
	buf_free(&status);
	s->active = false;
	buf_printf(error_r, "token check unavailable: %s", buf_cstr(&s->bearer_why));
	return IX_EUNAVAIL;
}

/* A step of a bearer exchange: the message (after an empty challenge), or the response to a refusal. */
static int bearer_step(struct ix_sasl *s, const char *in, size_t len, struct buf *challenge_r, struct buf *error_r)
{
	if (s->bearer_refused) {
		s->active = false;
		buf_printf(error_r, "token refused: %s", buf_cstr(&s->bearer_why));
		return IX_EAUTH;
	}
	return bearer_message(s, in, len, challenge_r, error_r);
}

/* ---- SCRAM ---- */

static void scram_end(struct ix_sasl *s)
{
	if (s->scram != NULL) {
		scram_server_reset(s->scram);
		free(s->scram);
		s->scram = NULL;
	}
	s->scram_step = SCRAM_IDLE;
	buf_reset(&s->scram_names);
}

/* The name of verifier i among those added ("" for the password). */
static const char *verifier_name(const struct ix_sasl *s, int i)
{
	const char *p = buf_cstr(&s->scram_names), *end = p + s->scram_names.len;
	for (; i > 0 && p < end; i--)
		p += strlen(p) + 1;
	return p < end ? p : "";
}

/* Feeds one decoded client message (in, len) to the running SCRAM exchange. */
static int scram_feed(struct ix_sasl *s, const char *in, size_t len, struct buf *challenge_r, struct buf *error_r)
{
	struct buf out = BUF_INIT;
	int ret;
	if (s->scram_step == SCRAM_WANT_FIRST) {
		enum scram_hash h = s->scram->hash;
		bool plus = s->scram->plus;
		ret = scram_server_first(s->scram, h, plus, s->have_cbind ? &s->cbind : NULL, in, len, error_r);
		const char *user = ret == 0 ? scram_server_user(s->scram) : NULL;
		const char *authz = ret == 0 ? scram_server_authzid(s->scram) : NULL;
		if (ret == 0 && authz[0] != '\0' && strcmp(authz, user) != 0) {
			buf_append_str(error_r, "authentication failed");
			ret = IX_EAUTH; /* acting for someone else: not offered */
		}
		if (ret == 0) {
			int found = s->scram_fn(s->scram_ctx, user, s->scram, &s->scram_names);
			if (found == IX_EBLOCKED || found == IX_EUNAVAIL) {
				buf_append_str(error_r, found == IX_EBLOCKED ? "temporarily blocked"
									     : "password check unavailable");
				ret = found;
			}
		}
		if (ret == 0)
			ret = scram_server_challenge(s->scram, fake_secret, sizeof(fake_secret),
						     SCRAM_ITERATIONS_DEFAULT, &out);
		if (ret == 0)
			s->scram_step = SCRAM_WANT_FINAL;
	} else if (s->scram_step == SCRAM_WANT_FINAL) {
		ret = scram_server_final(s->scram, s->have_cbind ? &s->cbind : NULL, in, len, &out, error_r);
		if (ret == IX_EAUTH && s->scram_failed != NULL)
			s->scram_failed(s->scram_ctx, scram_server_user(s->scram));
		if (ret == 0) {
			s->scram_step = SCRAM_WANT_EMPTY;
			free(s->user);
			s->user = xstrdup(scram_server_user(s->scram));
			free(s->credential);
			s->credential = xstrdup(verifier_name(s, scram_server_matched(s->scram)));
		}
	} else {
		/* the client's answer to our server-final message must be empty */
		ret = len == 0 ? IX_SASL_DONE : IX_EINVAL;
		if (ret != IX_SASL_DONE)
			buf_append_str(error_r, "malformed response");
		else if (s->credential[0] != '\0')
			log_info("%s: %s signed in with %s and the app password %s", s->service, s->user,
				 scram_hash_name(s->scram->hash), s->credential);
		s->active = false;
		scram_end(s);
		return ret;
	}
	if (ret != 0) {
		s->active = false;
		free(s->user);
		s->user = NULL;
		scram_end(s);
		buf_free(&out);
		if (ret == IX_EAUTH && error_r->len == 0)
			buf_append_str(error_r, "authentication failed");
		return ret;
	}
	base64_encode(out.data, out.len, challenge_r);
	buf_free(&out);
	return IX_SASL_CONTINUE;
}

/* Translates a Cyrus result into ours, appending the challenge on CONTINUE. */
static int outcome(struct ix_sasl *s, int r, const char *out, unsigned outlen, struct buf *challenge_r,
		   struct buf *error_r)
{
	if (r == SASL_CONTINUE) {
		base64_encode(out, outlen, challenge_r);
		return IX_SASL_CONTINUE;
	}
	s->active = false;
	if (r == SASL_OK) {
		const void *user = NULL;
		if (sasl_getprop(s->conn, SASL_USERNAME, &user) != SASL_OK || user == NULL) {
			buf_append_str(error_r, "no user name after authentication");
			return IX_EUNAVAIL;
		}
		free(s->user);
		s->user = NULL;
		if (!s->gssapi) {
			if (s->authzid == NULL) {
				s->user = xstrdup(user);
				return IX_SASL_DONE;
			}
			/* the password of user was right: may user act for the authorization identity? */
			char *authzid = s->authzid;
			s->authzid = NULL;
			if (s->authorize(s->authorize_ctx, user, authzid) != 0) {
				free(authzid);
				buf_append_str(error_r,
					       "authentication failed: no right to act for the authorization identity");
				return IX_EAUTH;
			}
			s->actor = xstrdup(user);
			s->user = authzid;
			return IX_SASL_DONE;
		}
		/* Kerberos said who; the directory says whether that principal is one of our users */
		char *login = NULL;
		if (s->v->principal(s->v->ctx, user, &login, error_r) != 0) {
			free(login);
			return IX_EAUTH;
		}
		s->user = login;
		return IX_SASL_DONE;
	}
	if (s->gssapi && r != SASL_NOMEM) { /* a ticket not for us, expired, replayed; no keytab entry */
		buf_printf(error_r, "Kerberos: %s", sasl_errdetail(s->conn));
		return IX_EAUTH;
	}
	if (s->check_result == IX_EBLOCKED) {
		buf_append_str(error_r, "temporarily blocked");
		return IX_EBLOCKED;
	}
	if (s->check_result == IX_EUNAVAIL || r == SASL_UNAVAIL || r == SASL_TRYAGAIN) {
		buf_append_str(error_r, "password check unavailable");
		return IX_EUNAVAIL;
	}
	/* a right password and still refused: the authorisation identity names someone else (Cyrus says NOMECH) */
	if (s->password_ok || s->check_result == IX_EAUTH || r == SASL_BADAUTH || r == SASL_NOUSER ||
	    r == SASL_NOVERIFY || r == SASL_NOAUTHZ) {
		buf_append_str(error_r, "authentication failed");
		return IX_EAUTH;
	}
	if (r == SASL_TOOWEAK || r == SASL_ENCRYPT) {
		buf_append_str(error_r, "mechanism not allowed without TLS");
		return IX_EPERM;
	}
	if (r == SASL_BADPROT || r == SASL_BADPARAM) {
		buf_append_str(error_r, "malformed response");
		return IX_EINVAL;
	}
	if (r == SASL_NOMECH) {
		buf_append_str(error_r, s->secure ? "unknown mechanism" : "mechanism not allowed without TLS");
		return s->secure ? IX_EINVAL : IX_EPERM;
	}
	buf_printf(error_r, "sasl: %s", sasl_errdetail(s->conn));
	return IX_EUNAVAIL;
}

int ix_sasl_start(struct ix_sasl *s, const char *mech, const char *initial, size_t initial_len, struct buf *challenge_r,
		  struct buf *error_r)
{
	free(s->user);
	s->user = NULL;
	free(s->actor);
	s->actor = NULL;
	free(s->authzid);
	s->authzid = NULL;
	s->active = false;
	s->steps = 0;
	s->check_result = 0;
	s->password_ok = false;
	s->bearer = s->bearer_refused = false;
	free(s->credential);
	s->credential = NULL;
	scram_end(s);
	bool bearer = strcasecmp(mech, "OAUTHBEARER") == 0 || strcasecmp(mech, "XOAUTH2") == 0;
	if (bearer && !bearer_enabled(s->v))
		bearer = false;                                              /* unknown while no issuer is configured */
	s->gssapi = strcasecmp(mech, "GSSAPI") == 0 && gssapi_enabled(s->v); /* likewise without a keytab */
	enum scram_hash scram_hash;
	bool scram_plus = false;
	bool scram = scram_mechanism(mech, &scram_hash, &scram_plus) == 0;
	enum ix_sasl_scram_offer offer = session_scram(s);
	if (!mech_known(mech) && !bearer && !s->gssapi && !scram) {
		buf_append_str(error_r, "unknown mechanism");
		return IX_EINVAL;
	}
	if (!s->secure && !s->gssapi) { /* GSSAPI sends no secret: allowed without TLS */
		buf_append_str(error_r, "mechanism not allowed without TLS");
		return IX_EPERM;
	}
	if (scram && (offer == IX_SASL_SCRAM_NONE || (scram_plus && offer != IX_SASL_SCRAM_PLUS))) {
		buf_append_str(error_r, scram_plus ? "channel binding needs TLS" : "unknown mechanism");
		return IX_EINVAL;
	}
	struct buf in = BUF_INIT;
	const char *clientin = NULL;
	unsigned clientlen = 0;
	int ret;
	if (initial != NULL) {
		if (initial_len == 1 && initial[0] == '=') {
			clientin = "";
		} else {
			if (initial_len > IX_SASL_LINE_MAX) {
				buf_append_str(error_r, "initial response too long");
				return IX_ELIMIT;
			}
			ret = base64_decode(initial, initial_len, IX_SASL_RESPONSE_MAX, &in);
			if (ret < 0) {
				buf_free(&in);
				buf_append_str(error_r, ret == IX_ELIMIT ? "initial response too long"
									 : "cannot decode base64 initial response");
				return ret;
			}
			clientin = buf_cstr(&in);
			clientlen = (unsigned)in.len;
		}
	}
	if (bearer) {
		s->active = s->bearer = true;
		s->bearer_xoauth2 = strcasecmp(mech, "XOAUTH2") == 0;
		ret = clientin != NULL ? bearer_message(s, clientin, clientlen, challenge_r, error_r)
				       : IX_SASL_CONTINUE;
		buf_free(&in);
		return ret;
	}
	if (scram) {
		s->scram = xcalloc(1, sizeof(*s->scram));
		s->scram->hash = scram_hash;
		s->scram->plus = scram_plus;
		s->scram_step = SCRAM_WANT_FIRST;
		s->active = true;
		if (clientin == NULL) /* client-first: an empty challenge asks for its message */
			return IX_SASL_CONTINUE;
		ret = scram_feed(s, clientin, clientlen, challenge_r, error_r);
		buf_free(&in);
		return ret;
	}
	s->login_need_user = strcasecmp(mech, "LOGIN") == 0;
	s->plain_need_msg = strcasecmp(mech, "PLAIN") == 0;
	size_t skip = 0;
	if (clientin != NULL && !response_acceptable(s, clientin, clientlen, &skip)) {
		buf_free(&in);
		buf_append_str(error_r, "authentication failed");
		return IX_EAUTH;
	}
	if (clientin != NULL) {
		clientin += skip;
		clientlen -= (unsigned)skip;
	}
	ret = session_open(s, error_r);
	if (ret < 0) {
		buf_free(&in);
		return ret;
	}
	const char *out = NULL;
	unsigned outlen = 0;
	s->active = true;
	int r = sasl_server_start(s->conn, mech, clientin, clientlen, &out, &outlen);
	buf_free(&in);
	return outcome(s, r, out, outlen, challenge_r, error_r);
}

int ix_sasl_step(struct ix_sasl *s, const char *response, size_t len, struct buf *challenge_r, struct buf *error_r)
{
	if (!s->active) {
		buf_append_str(error_r, "no authentication in progress");
		return IX_EINVAL;
	}
	if (len == 1 && response[0] == '*') {
		s->active = false;
		buf_append_str(error_r, "authentication cancelled");
		return IX_SASL_CANCELLED;
	}
	if (++s->steps > IX_SASL_STEPS_MAX) {
		s->active = false;
		buf_append_str(error_r, "too many authentication steps");
		return IX_ELIMIT;
	}
	if (len > IX_SASL_LINE_MAX) {
		s->active = false;
		buf_append_str(error_r, "response too long");
		return IX_ELIMIT;
	}
	struct buf in = BUF_INIT;
	int ret = base64_decode(response, len, IX_SASL_RESPONSE_MAX, &in);
	if (ret < 0) {
		s->active = false;
		buf_free(&in);
		buf_append_str(error_r, ret == IX_ELIMIT ? "response too long" : "cannot decode base64 response");
		return ret;
	}
	if (s->bearer) {
		ret = bearer_step(s, buf_cstr(&in), in.len, challenge_r, error_r);
		buf_free(&in);
		return ret;
	}
	if (s->scram != NULL) {
		ret = scram_feed(s, buf_cstr(&in), in.len, challenge_r, error_r);
		buf_free(&in);
		return ret;
	}
	size_t skip = 0;
	if (!response_acceptable(s, buf_cstr(&in), in.len, &skip)) {
		s->active = false;
		buf_free(&in);
		buf_append_str(error_r, "authentication failed");
		return IX_EAUTH;
	}
	const char *out = NULL;
	unsigned outlen = 0;
	int r = sasl_server_step(s->conn, buf_cstr(&in) + skip, (unsigned)(in.len - skip), &out, &outlen);
	buf_free(&in);
	return outcome(s, r, out, outlen, challenge_r, error_r);
}

const char *ix_sasl_user(const struct ix_sasl *s)
{
	return s->user;
}

const char *ix_sasl_actor(const struct ix_sasl *s)
{
	return s->user != NULL ? s->actor : NULL;
}

const char *ix_sasl_credential(const struct ix_sasl *s)
{
	return s->credential;
}
