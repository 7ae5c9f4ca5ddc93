/* ixoauth.c - a Cyrus SASL server plugin that gives slapd OAUTHBEARER (RFC 7628) and XOAUTH2, so that LDAP binds take
 * the bearer tokens IMAP, POP3 and SMTP take (docs/sign-in.md), checked by the same code (bearer.c, oauth.c, jwt.c).
 *
 * The issuers are read from ou=OAuth Issuers,ou=Configuration,IX_SUFFIX over slapd's own ldapi socket (IX_LDAPI_URI)
 * with SASL EXTERNAL, which slapd maps to the administrator for its own uid; the mechanisms are offered only while
 * there is one (mech_avail, looked up at most every AVAIL_CACHE_S seconds). A good token's claim becomes the
 * authentication identity; slapd maps it to a recipient by the authz-regexps `interchange oauth add` sets
 * (uid=CLAIM,cn=oauthbearer,cn=auth to the user with that address or login), and the bind is refused unless it
 * found one (the DN it leaves in *slapAuthcDN, as directory/ixplain.c checks). A refused token is answered with RFC
 * 7628's JSON status, and the client's next response ends the exchange.
 *
 * Loaded by libsasl2 inside slapd (SASL_PATH), never linked into our programs; built with its sources (the
 * bearer-token code and the few common files it needs) and only sasl_server_plug_init visible. */
#include <ldap.h>
#include <pthread.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/slapd_plugin.h"
#include "transport/net/bearer.h"
#include "transport/net/oauth.h"

__attribute__((visibility("default"))) int sasl_server_plug_init(const sasl_utils_t *utils, int maxversion,
								 int *out_version, sasl_server_plug_t **pluglist,
								 int *plugcount);

/* how long the answer "is there an issuer" is kept (a search of slapd may take SLAPD_PLUGIN_TIMEOUT_S) */
#define AVAIL_CACHE_S 5
/* longest authorisation identity taken */
#define AUTHZID_MAX 255

static struct oauth_keys *keys;
static pthread_mutex_t avail_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t avail_checked;
static bool avail_answer;

struct conn_ctx {
	bool xoauth2;   /* XOAUTH2's message, not OAUTHBEARER's */
	bool refused;   /* the status was sent: the next response ends the exchange */
	struct buf out; /* what the last step sent (Cyrus reads it after the step returns) */
};

/* The issuers (n), read over ldapi; IX_OK, or IX_EUNAVAIL with error_r. Free with issuers_free. */
static int issuers_read(struct oauth_issuer **list_r, size_t *n_r, struct buf *error_r)
{
	*list_r = NULL;
	*n_r = 0;
	const char *suffix = getenv("IX_SUFFIX");
	LDAP *ld = suffix != NULL ? slapd_plugin_ldapi(true) : NULL;
	if (ld == NULL) {
		buf_append_str(error_r, "IX_LDAPI_URI and IX_SUFFIX do not name our slapd");
		return IX_EUNAVAIL;
	}
	struct timeval tv = { .tv_sec = SLAPD_PLUGIN_TIMEOUT_S };
	char *base = xasprintf("ou=OAuth Issuers,ou=Configuration,%s", suffix);
	char *attrs[] = { (char *)"cn", (char *)"ixOAuthKeys", (char *)"ixOAuthAudience", (char *)"ixOAuthClaim",
			  NULL };
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixOAuthIssuer)", attrs, 0, NULL, NULL,
				   &tv, 0, &res);
	free(base);
	int ret = IX_OK;
	if (rc == LDAP_NO_SUCH_OBJECT) {
		rc = LDAP_SUCCESS; /* no issuer was ever added */
	} else if (rc != LDAP_SUCCESS) {
		buf_printf(error_r, "reading the issuers: %s", ldap_err2string(rc));
		ret = IX_EUNAVAIL;
	}
	for (LDAPMessage *e = ldap_first_entry(ld, res); ret == IX_OK && e != NULL; e = ldap_next_entry(ld, e)) {
		const char *names[] = { "cn", "ixOAuthKeys", "ixOAuthAudience", "ixOAuthClaim" };
		char *v[4] = { NULL };
		for (size_t i = 0; i < 4; i++) {
			struct berval **bv = ldap_get_values_len(ld, e, names[i]);
			if (bv != NULL && bv[0] != NULL)
				v[i] = xstrndup(bv[0]->bv_val, bv[0]->bv_len);
			ldap_value_free_len(bv);
		}
		if (v[0] == NULL || v[1] == NULL || v[2] == NULL) {
			free(v[0]);
			free(v[1]);
			free(v[2]);
			free(v[3]);
			continue;
		}
		*list_r = xrealloc(*list_r, (*n_r + 1) * sizeof(**list_r));
		(*list_r)[(*n_r)++] = (struct oauth_issuer){ v[0], v[1], v[2], v[3] };
	}
	ldap_msgfree(res);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

static void issuers_free(struct oauth_issuer *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)list[i].issuer);
		free((char *)list[i].jwks);
		free((char *)list[i].audience);
		free((char *)list[i].claim);
	}
	free(list);
}

static int mech_avail(void *glob_context, sasl_server_params_t *params, void **conn_context)
{
	(void)glob_context;
	(void)params;
	(void)conn_context;
	time_t now = time(NULL);
	pthread_mutex_lock(&avail_lock);
	if (avail_checked == 0 || now - avail_checked >= AVAIL_CACHE_S) {
		struct oauth_issuer *list;
		size_t n;
		struct buf err = BUF_INIT;
		avail_answer = issuers_read(&list, &n, &err) == IX_OK && n > 0;
		issuers_free(list, n);
		buf_free(&err);
		avail_checked = now;
	}
	bool answer = avail_answer;
	pthread_mutex_unlock(&avail_lock);
	return answer ? SASL_OK : SASL_NOMECH;
}

static int mech_new(void *glob_context, sasl_server_params_t *params, const char *challenge, unsigned challen,
		    void **conn_context)
{
	(void)params;
	(void)challenge;
	(void)challen;
	struct conn_ctx *c = xcalloc(1, sizeof(*c));
	c->xoauth2 = glob_context != NULL; /* the plugin table's glob_context: set for XOAUTH2 */
	*conn_context = c;
	return SASL_OK;
}

static void mech_dispose(void *conn_context, const sasl_utils_t *utils)
{
	(void)utils;
	struct conn_ctx *c = conn_context;
	if (c == NULL)
		return;
	buf_free(&c->out);
	free(c);
}

/* Sends the RFC 7628 status of a refused token; the next response ends the exchange. */
static int refuse(struct conn_ctx *c, sasl_server_params_t *params, const char *issuer, const char *why,
		  const char **out, unsigned *outlen)
{
	params->utils->seterror(params->utils->conn, 0, "token refused: %s", why);
	params->utils->log(params->utils->conn, SASL_LOG_NOTE, "OAuth token refused: %s", why);
	buf_reset(&c->out);
	oauth_status_json(issuer, &c->out);
	c->refused = true;
	*out = c->out.data;
	*outlen = (unsigned)c->out.len;
	return SASL_CONTINUE;
}

static int step(void *conn_context, sasl_server_params_t *params, const char *in, unsigned inlen, const char **out,
		unsigned *outlen, sasl_out_params_t *oparams)
{
	struct conn_ctx *c = conn_context;
	bool xoauth2 = c->xoauth2;
	*out = NULL;
	*outlen = 0;
	if (c->refused) {
		params->utils->seterror(params->utils->conn, 0, "token refused");
		return SASL_BADAUTH;
	}
	if (inlen == 0) { /* no initial response: an empty challenge asks for the message */
		*out = "";
		return SASL_CONTINUE;
	}
	struct buf authzid = BUF_INIT, err = BUF_INIT;
	char *token = NULL;
	if (bearer_parse(xoauth2, in, inlen, AUTHZID_MAX, &authzid, &token) != IX_OK) {
		buf_free(&authzid);
		params->utils->seterror(params->utils->conn, 0, "malformed %s message",
					xoauth2 ? "XOAUTH2" : "OAUTHBEARER");
		return SASL_BADPROT;
	}
	struct oauth_issuer *list;
	size_t n;
	int ret = issuers_read(&list, &n, &err);
	char *subject = NULL;
	int issuer = -1;
	if (ret == IX_OK)
		ret = oauth_verify(keys, list, n, token, strlen(token), (uint64_t)time(NULL), &subject, &issuer, &err);
	free(token);
	int r;
	if (ret == IX_EAUTH) {
		r = refuse(c, params,
			   issuer >= 0 ? list[issuer].issuer
			   : n > 0     ? list[0].issuer
				       : NULL,
			   buf_cstr(&err), out, outlen);
	} else if (ret != IX_OK) {
		params->utils->seterror(params->utils->conn, 0, "%s", buf_cstr(&err));
		r = SASL_FAIL;
	} else {
		/* the claim is who signs in; slapd maps it to a recipient, and so the authzid (it must be the same) */
		const char *zid = buf_cstr(&authzid);
		r = params->canon_user(params->utils->conn, subject, 0,
				       SASL_CU_AUTHID | (zid[0] == '\0' ? SASL_CU_AUTHZID : 0), oparams);
		if (r == SASL_OK && zid[0] != '\0')
			r = params->canon_user(params->utils->conn, zid, 0, SASL_CU_AUTHZID, oparams);
		if (r == SASL_OK && slapd_plugin_authc_dn(params) == NULL) {
			buf_reset(&err);
			buf_printf(&err, "the token's user %s is not a recipient here", subject);
			r = refuse(c, params, list[issuer].issuer, buf_cstr(&err), out, outlen);
		} else if (r == SASL_OK) {
			slapd_plugin_done(oparams);
		}
	}
	free(subject);
	issuers_free(list, n);
	buf_free(&authzid);
	buf_free(&err);
	return r;
}

/* a bearer token is a secret for its lifetime, sent as PLAIN sends a password (no SASL_SEC_NOPLAINTEXT): slapd offers
 * it only where it takes passwords (olcSaslSecProps noplain: inside TLS, over ldapi) */
/* glob_context is set for XOAUTH2 (mech_new keeps it) */
#define BEARER_PLUGIN(name, glob)                                                                       \
	{                                                                                               \
		.mech_name = name, .glob_context = glob,                                                \
		.security_flags = SASL_SEC_NOANONYMOUS | SASL_SEC_PASS_CREDENTIALS,                     \
		.features = SASL_FEAT_WANT_CLIENT_FIRST | SASL_FEAT_ALLOWS_PROXY, .mech_new = mech_new, \
		.mech_step = step, .mech_dispose = mech_dispose, .mech_avail = mech_avail,              \
	}
/* clang-format off */
static sasl_server_plug_t plugins[] = { BEARER_PLUGIN("OAUTHBEARER", NULL), BEARER_PLUGIN("XOAUTH2", (void *)1) };
/* clang-format on */

int sasl_server_plug_init(const sasl_utils_t *utils, int maxversion, int *out_version, sasl_server_plug_t **pluglist,
			  int *plugcount)
{
	(void)utils;
	if (keys == NULL)
		keys = oauth_keys_create();
	return slapd_plugin_init(maxversion, out_version, pluglist, plugcount, plugins,
				 (int)(sizeof(plugins) / sizeof(plugins[0])));
}
