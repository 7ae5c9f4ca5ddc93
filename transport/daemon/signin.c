/* signin.c - bearer tokens (transport/net/oauth.h) checked against the issuers the replica holds, their claim mapped
 * to a mailbox user, and Kerberos principals mapped to users, for the SASL sessions of smtpd, imapd and pop3d. */
#include "transport/daemon/signin.h"
#include "transport/net/oauth.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <krb5.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

struct signin {
	struct dir *dir;
	struct oauth_keys *keys;
	char *keytab;
	struct ix_sasl_verifiers v;
};

int signin_find_user(struct dir *dir, const char *name, struct dir_recipient *r)
{
	int ret = strchr(name, '@') != NULL ? dir_resolve(dir, name, r) : dir_lookup_login(dir, name, r);
	if (ret != IX_OK && strchr(name, '@') != NULL)
		ret = dir_lookup_principal(dir, name, r);
	if (ret == IX_OK && (r->type != DIR_TYPE_USER || r->login == NULL)) {
		dir_recipient_release(r);
		ret = IX_ENOTFOUND;
	}
	return ret;
}

static bool token_enabled(void *ctx)
{
	struct signin *si = ctx;
	return dir_has_oauth_issuer(si->dir);
}

/* Checks the token and maps its claim to the user; authzid (when given) must name the same user. */
static int check_token(struct signin *si, const char *authzid, const char *token, char **user_r, int *issuer_r,
		       const struct dir_oauth_issuer *list, size_t n, struct buf *error_r)
{
	struct oauth_issuer *is = xcalloc(n + 1, sizeof(*is));
	for (size_t i = 0; i < n; i++)
		is[i] = (struct oauth_issuer){ list[i].issuer, list[i].keys, list[i].audience, list[i].claim };
	char *subject = NULL;
	int ret = oauth_verify(si->keys, is, n, token, strlen(token), (uint64_t)time(NULL), &subject, issuer_r,
			       error_r);
	free(is);
	if (ret != IX_OK)
		return ret;
	struct dir_recipient r, z;
	if (signin_find_user(si->dir, subject, &r) != IX_OK) {
		buf_printf(error_r, "the token's user %s is not a mailbox user here", subject);
		free(subject);
		return IX_EAUTH;
	}
	if (authzid[0] != '\0') {
		bool same = signin_find_user(si->dir, authzid, &z) == IX_OK && strcmp(z.dn, r.dn) == 0;
		dir_recipient_release(&z);
		if (!same) {
			buf_printf(error_r, "the token is %s's, not %s's", subject, authzid);
			ret = IX_EAUTH;
		}
	}
	if (ret == IX_OK)
		*user_r = xstrdup(r.login);
	dir_recipient_release(&r);
	free(subject);
	return ret;
}

static int token(void *ctx, const char *authzid, const char *tok, char **user_r, struct buf *status_r,
		 struct buf *error_r)
{
	struct signin *si = ctx;
	struct dir_oauth_issuer *list = NULL;
	size_t n = 0;
	dir_oauth_issuers(si->dir, &list, &n);
	int issuer = -1;
	*user_r = NULL;
	int ret = n == 0 ? IX_EAUTH : check_token(si, authzid, tok, user_r, &issuer, list, n, error_r);
	if (n == 0)
		buf_append_str(error_r, "no issuer is configured");
	if (ret == IX_EAUTH)
		oauth_status_json(issuer >= 0 ? list[issuer].issuer : n > 0 ? list[0].issuer : NULL, status_r);
	dir_oauth_issuers_free(&list, n);
	return ret;
}

int signin_principal_user(struct dir *dir, const char *principal, const char *default_realm, struct dir_recipient *r,
			  struct buf *error_r)
{
	memset(r, 0, sizeof(*r));
	struct buf realm = BUF_INIT;
	const char *at = strrchr(principal, '@');
	char *local = at != NULL ? xstrndup(principal, (size_t)(at - principal)) : xstrdup(principal);
	const char *theirs = at != NULL ? at + 1 : default_realm;
	int ret = IX_ENOTFOUND;
	if (dir_kerberos_realm(dir, &realm) == IX_OK && theirs != NULL && strcasecmp(theirs, buf_cstr(&realm)) == 0 &&
	    strchr(local, '/') == NULL) /* a service principal (HTTP/host) is nobody's login */
		ret = dir_lookup_login(dir, local, r);
	if (ret != IX_OK && at != NULL)
		ret = dir_lookup_principal(dir, principal, r);
	if (ret == IX_OK && (r->type != DIR_TYPE_USER || r->login == NULL)) {
		dir_recipient_release(r);
		ret = IX_ENOTFOUND;
	}
	if (ret != IX_OK)
		buf_printf(error_r, "Kerberos principal %s%s%s is no user here (realm %s)", principal,
			   at == NULL ? "@" : "", at == NULL && theirs != NULL ? theirs : "",
			   realm.len > 0 ? buf_cstr(&realm) : "not set");
	buf_free(&realm);
	free(local);
	return ret;
}

static bool gssapi_enabled(void *ctx)
{
	struct signin *si = ctx;
	struct stat st;
	return stat(si->keytab, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

char *signin_default_realm(void)
{
	krb5_context kc;
	char *realm = NULL, *out = NULL;
	if (krb5_init_context(&kc) != 0)
		return NULL;
	if (krb5_get_default_realm(kc, &realm) == 0) {
		out = xstrdup(realm);
		krb5_free_default_realm(kc, realm);
	}
	krb5_free_context(kc);
	return out;
}

static int principal(void *ctx, const char *name, char **user_r, struct buf *error_r)
{
	struct signin *si = ctx;
	/* Cyrus gives a principal of the default realm without its realm */
	char *dflt = strchr(name, '@') == NULL ? signin_default_realm() : NULL;
	struct dir_recipient r;
	int ret = signin_principal_user(si->dir, name, dflt, &r, error_r);
	free(dflt);
	if (ret != IX_OK)
		return IX_EAUTH;
	*user_r = xstrdup(r.login);
	dir_recipient_release(&r);
	return 0;
}

struct signin *signin_create(struct dir *dir, const char *keytab)
{
	struct signin *si = xcalloc(1, sizeof(*si));
	si->dir = dir;
	si->keys = oauth_keys_create();
	si->keytab = xstrdup(keytab);
	si->v.token_enabled = token_enabled;
	si->v.token = token;
	si->v.gssapi_enabled = gssapi_enabled;
	si->v.principal = principal;
	si->v.ctx = si;
	return si;
}

void signin_destroy(struct signin **sp)
{
	struct signin *si = *sp;
	if (si == NULL)
		return;
	oauth_keys_destroy(&si->keys);
	free(si->keytab);
	free(si);
	*sp = NULL;
}

const struct ix_sasl_verifiers *signin_verifiers(struct signin *si)
{
	return &si->v;
}
