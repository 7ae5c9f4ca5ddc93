/* dir_auth.c - password checks: the login is resolved to a user's DN through the replica, then slapd verifies
 * the password by a simple bind as that DN on one of a small pool of connections (opened with EXTERNAL,
 * then rebound as each user in turn). */
#include "directory/dir_private.h"

#include <ldap.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include "common/err.h"
#include "common/util.h"
#include "common/log.h"
#include "directory/ldap_util.h"
#include "directory/secrets.h"
#include "directory/slapd.h"

#include <openssl/crypto.h>

/* Seconds a bind may take before the directory counts as not answering. */
#define DIR_BIND_TIMEOUT_SEC 10

void dir_bind_pool_init(struct dir_bind_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
}

void dir_bind_pool_free(struct dir_bind_pool *pool)
{
	for (size_t i = 0; i < DIR_BIND_POOL_SIZE; i++) {
		if (pool->lds[i] != NULL)
			ldap_unbind_ext(pool->lds[i], NULL, NULL);
		pool->lds[i] = NULL;
	}
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
}

static size_t pool_take(struct dir_bind_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		for (size_t i = 0; i < DIR_BIND_POOL_SIZE; i++) {
			if (!pool->busy[i]) {
				pool->busy[i] = true;
				pthread_mutex_unlock(&pool->lock);
				return i;
			}
		}
		pthread_cond_wait(&pool->cond, &pool->lock);
	}
}

static void pool_give(struct dir_bind_pool *pool, size_t slot)
{
	pthread_mutex_lock(&pool->lock);
	pool->busy[slot] = false;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

static bool connection_lost(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT || rc == LDAP_UNAVAILABLE ||
	       rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR;
}

static int bind_dn(struct dir *dir, const char *dn, const char *password, size_t plen, struct buf *error_r);

/* The DN of the user with that login or address, through the replica (*dn_r: free it). Returns IX_OK,
 * IX_ENOTFOUND or IX_EUNAVAIL (the replica is not ready) with error_r. */
static int user_dn(struct dir *dir, const char *login, char **dn_r, struct buf *error_r)
{
	if (dir->uri == NULL || dir_wait_ready(dir, 0) != IX_OK) {
		if (error_r != NULL)
			buf_append_str(error_r, "the directory replica is not ready");
		return IX_EUNAVAIL;
	}
	struct dir_recipient r;
	int ret = login != NULL && strchr(login, '@') != NULL ? dir_resolve(dir, login, &r)
							      : dir_lookup_login(dir, login, &r);
	if (ret != IX_OK || r.type != DIR_TYPE_USER) {
		dir_recipient_release(&r);
		if (error_r != NULL)
			buf_append_str(error_r, "unknown login");
		return IX_ENOTFOUND;
	}
	*dn_r = xstrdup(r.dn);
	dir_recipient_release(&r);
	return IX_OK;
}

int dir_authenticate(struct dir *dir, const char *login, const char *password, struct buf *error_r)
{
	if (password == NULL || *password == '\0') {
		/* LDAP takes a simple bind with an empty password as an unauthenticated bind that "succeeds". */
		if (error_r != NULL)
			buf_append_str(error_r, "empty password refused");
		return IX_EAUTH;
	}
	size_t plen = strnlen(password, DIR_PASSWORD_MAX + 1);
	if (plen > DIR_PASSWORD_MAX) {
		if (error_r != NULL)
			buf_printf(error_r, "password longer than %d bytes refused", DIR_PASSWORD_MAX);
		return IX_EAUTH;
	}
	char *dn;
	int ret = user_dn(dir, login, &dn, error_r);
	if (ret != IX_OK)
		return ret == IX_ENOTFOUND ? IX_EAUTH : ret;
	ret = bind_dn(dir, dn, password, plen, error_r);
	free(dn);
	return ret;
}

int dir_authenticate_admin(struct dir *dir, const char *password, struct buf *error_r)
{
	if (password == NULL || *password == '\0' || strnlen(password, DIR_PASSWORD_MAX + 1) > DIR_PASSWORD_MAX) {
		if (error_r != NULL)
			buf_append_str(error_r, "empty or overlong password refused");
		return IX_EAUTH;
	}
	if (dir->uri == NULL || dir->suffix == NULL) {
		if (error_r != NULL)
			buf_append_str(error_r, "the directory is not connected");
		return IX_EUNAVAIL;
	}
	char *dn = xasprintf("cn=admin,%s", dir->suffix);
	int ret = bind_dn(dir, dn, password, strlen(password), error_r);
	free(dn);
	return ret;
}

/* A simple bind as dn with the password policy request control: returns the LDAP result, and *locked_r true when
 * slapd's ppolicy overlay says the account is locked (its response control, error accountLocked). */
static int bind_ppolicy(LDAP *ld, const char *dn, struct berval *cred, bool *locked_r)
{
	LDAPControl *req = NULL;
	int rc = ldap_control_create(LDAP_CONTROL_PASSWORDPOLICYREQUEST, 0, NULL, 0, &req);
	if (rc != LDAP_SUCCESS)
		return rc;
	LDAPControl *sctrls[] = { req, NULL };
	int msgid = -1;
	rc = ldap_sasl_bind(ld, dn, LDAP_SASL_SIMPLE, cred, sctrls, NULL, &msgid);
	ldap_control_free(req);
	if (rc != LDAP_SUCCESS)
		return rc;
	struct timeval tv = { DIR_BIND_TIMEOUT_SEC, 0 };
	LDAPMessage *res = NULL;
	int got = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
	if (got <= 0) {
		if (res != NULL)
			ldap_msgfree(res);
		if (got == 0)
			return LDAP_TIMEOUT;
		ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &rc);
		return rc != LDAP_SUCCESS ? rc : LDAP_SERVER_DOWN;
	}
	LDAPControl **ctrls = NULL;
	int result = LDAP_OTHER;
	rc = ldap_parse_result(ld, res, &result, NULL, NULL, NULL, &ctrls, 1);
	if (rc != LDAP_SUCCESS)
		return rc;
	LDAPControl *pp = ctrls != NULL ? ldap_control_find(LDAP_CONTROL_PASSWORDPOLICYRESPONSE, ctrls, NULL) : NULL;
	LDAPPasswordPolicyError pperr = PP_noError;
	if (pp != NULL && ldap_parse_passwordpolicy_control(ld, pp, NULL, NULL, &pperr) == LDAP_SUCCESS)
		*locked_r = result != LDAP_SUCCESS && pperr == PP_accountLocked;
	ldap_controls_free(ctrls);
	return result;
}

/* A simple bind as dn on a connection of the bind pool (reconnecting once when slapd went away). */
static int bind_dn(struct dir *dir, const char *dn, const char *password, size_t plen, struct buf *error_r)
{
	int ret;
	struct dir_bind_pool *pool = &dir->pool;
	size_t slot = pool_take(pool);
	struct berval cred = { (ber_len_t)plen, (char *)password };
	ret = IX_EUNAVAIL;
	for (int attempt = 0; attempt < 2; attempt++) {
		LDAP *ld = pool->lds[slot];
		if (ld == NULL) {
			struct buf error = BUF_INIT;
			ld = dir_ldap_connect(dir->uri, &error);
			if (ld == NULL) {
				if (error_r != NULL)
					buf_append_str(error_r, buf_cstr(&error));
				buf_free(&error);
				break;
			}
			buf_free(&error);
			struct timeval tv = { DIR_BIND_TIMEOUT_SEC, 0 };
			ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
			pool->lds[slot] = ld;
		}
		bool locked = false;
		pool->as_user[slot] = true;
		int rc = bind_ppolicy(ld, dn, &cred, &locked);
		if (rc == LDAP_SUCCESS) {
			ret = IX_OK;
			break;
		}
		if (locked) {
			ret = IX_EBLOCKED;
			if (error_r != NULL)
				buf_append_str(error_r,
					       "the directory has locked the account after too many failed binds");
			break;
		}
		if (connection_lost(rc)) {
			ldap_unbind_ext(ld, NULL, NULL);
			pool->lds[slot] = NULL;
			if (attempt == 1 && error_r != NULL)
				buf_printf(error_r, "the directory does not answer: %s", ldap_err2string(rc));
			continue;
		}
		ret = IX_EAUTH;
		if (error_r != NULL)
			buf_append_str(error_r,
				       rc == LDAP_INVALID_CREDENTIALS ? "wrong password" : ldap_err2string(rc));
		break;
	}
	pool_give(pool, slot);
	return ret;
}

/* ---- SCRAM verifiers and app passwords (docs/directory.md, "SCRAM and app passwords") ---- */

/* What sits beside dn's password, as read by our own identity on a pool connection. */
struct secrets_read {
	char **pw, **verifiers, **apps;
	char *binding;
	char *locked; /* pwdAccountLockedTime */
};

static void secrets_read_free(struct secrets_read *sr)
{
	for (size_t i = 0; sr->pw != NULL && sr->pw[i] != NULL; i++)
		explicit_bzero(sr->pw[i], strlen(sr->pw[i]));
	ldapu_values_free(&sr->pw);
	ldapu_values_free(&sr->verifiers);
	ldapu_values_free(&sr->apps);
	free(sr->binding);
	free(sr->locked);
	memset(sr, 0, sizeof(*sr));
}

/* Whether slapd's lockout of an account locked at `locked` still holds (secrets_lock_holds with the policy's
 * pwdLockoutDuration, read over ld). */
static bool lock_holds(struct dir *dir, LDAP *ld, const char *locked)
{
	char *policy = xasprintf("%s,%s", SLAPD_POLICY_RDN, dir->suffix);
	static const char *const attrs[] = { "pwdLockoutDuration", NULL };
	LDAPMessage *res = NULL;
	long duration = 0;
	if (ldap_search_ext_s(ld, policy, LDAP_SCOPE_BASE, "(objectClass=*)", (char **)attrs, 0, NULL, NULL, NULL, 0,
			      &res) == LDAP_SUCCESS) {
		LDAPMessage *e = ldap_first_entry(ld, res);
		char *v = e != NULL ? ldapu_get_first(ld, e, "pwdLockoutDuration") : NULL;
		if (v != NULL)
			duration = strtol(v, NULL, 10);
		free(v);
	}
	if (res != NULL)
		ldap_msgfree(res);
	free(policy);
	return secrets_lock_holds(locked, duration, time(NULL));
}

static int read_secrets(struct dir *dir, const char *dn, struct secrets_read *sr_r, struct buf *error_r)
{
	memset(sr_r, 0, sizeof(*sr_r));
	static const char *const attrs[] = { "userPassword",  "ixScramVerifier",      "ixScramBinding",
					     "ixAppPassword", "pwdAccountLockedTime", NULL };
	struct dir_bind_pool *pool = &dir->pool;
	size_t slot = pool_take(pool);
	int ret = IX_EUNAVAIL;
	for (int attempt = 0; attempt < 2 && ret == IX_EUNAVAIL; attempt++) {
		LDAP *ld = pool->lds[slot];
		int rc = LDAP_SUCCESS;
		if (ld == NULL) {
			ld = dir_ldap_connect(dir->uri, NULL);
			if (ld == NULL)
				break;
			struct timeval tv = { DIR_BIND_TIMEOUT_SEC, 0 };
			ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
			pool->lds[slot] = ld;
			pool->as_user[slot] = false;
		}
		if (pool->as_user[slot]) {
			/* a user's bind took this connection over: our own identity again (docs/slapd-facts.md, "SASL
			 * EXTERNAL with an empty credential") */
			struct berval cred = { 0, (char *)"" };
			rc = ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &cred, NULL, NULL, NULL);
			if (rc == LDAP_SUCCESS)
				pool->as_user[slot] = false;
		}
		LDAPMessage *res = NULL;
		if (rc == LDAP_SUCCESS)
			rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", (char **)attrs, 0, NULL,
					       NULL, NULL, 0, &res);
		LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
		if (e != NULL) {
			sr_r->pw = ldapu_get_values(ld, e, "userPassword", NULL);
			sr_r->verifiers = ldapu_get_values(ld, e, "ixScramVerifier", NULL);
			sr_r->apps = ldapu_get_values(ld, e, "ixAppPassword", NULL);
			sr_r->binding = ldapu_get_first(ld, e, "ixScramBinding");
			sr_r->locked = ldapu_get_first(ld, e, "pwdAccountLockedTime");
			ret = IX_OK;
			if (sr_r->locked != NULL && lock_holds(dir, ld, sr_r->locked))
				ret = IX_EBLOCKED;
		} else if (rc == LDAP_SUCCESS || rc == LDAP_NO_SUCH_OBJECT) {
			ret = IX_ENOTFOUND;
		} else if (connection_lost(rc)) {
			ldap_unbind_ext(ld, NULL, NULL);
			pool->lds[slot] = NULL;
		} else {
			ret = IX_EUNAVAIL;
			attempt = 2;
		}
		if (res != NULL)
			ldap_msgfree(res);
		if (ret == IX_EUNAVAIL && error_r != NULL && attempt >= 1)
			buf_printf(error_r, "cannot read the verifiers: %s", ldap_err2string(rc));
	}
	pool_give(pool, slot);
	return ret;
}

int dir_scram_verifiers(struct dir *dir, const char *login, struct scram_server *srv, struct buf *names_r,
			struct buf *error_r)
{
	char *dn;
	int ret = user_dn(dir, login, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	struct secrets_read sr;
	ret = read_secrets(dir, dn, &sr, error_r);
	free(dn);
	if (ret == IX_EBLOCKED && error_r != NULL)
		buf_append_str(error_r, "the directory has locked the account after too many failed binds");
	if (ret != IX_OK) {
		secrets_read_free(&sr);
		return ret;
	}
	size_t before = srv->nverifiers;
	bool current = secrets_binding_matches(sr.binding, (const char *const *)sr.pw);
	for (size_t i = 0; current && sr.verifiers[i] != NULL; i++) {
		struct scram_verifier v;
		size_t n = srv->nverifiers;
		if (scram_verifier_parse(sr.verifiers[i], strlen(sr.verifiers[i]), &v) == 0 &&
		    scram_server_add_verifier(srv, &v) > n)
			buf_append(names_r, "", 1);
	}
	for (size_t i = 0; sr.apps[i] != NULL; i++) {
		struct secrets_app a;
		if (secrets_app_parse(sr.apps[i], strlen(sr.apps[i]), &a) != 0)
			continue;
		for (size_t k = 0; k < a.nv; k++) {
			size_t n = srv->nverifiers;
			if (scram_server_add_verifier(srv, &a.v[k]) > n)
				buf_append(names_r, a.name, strlen(a.name) + 1);
		}
		explicit_bzero(&a, sizeof(a));
	}
	secrets_read_free(&sr);
	return srv->nverifiers > before ? IX_OK : IX_ENOTFOUND;
}

int dir_authenticate_mail(struct dir *dir, const char *login, const char *password, char **app_r, struct buf *error_r)
{
	*app_r = NULL;
	char *dn = NULL;
	struct secrets_read sr = { 0 };
	size_t plen = password != NULL ? strnlen(password, DIR_PASSWORD_MAX + 1) : 0;
	/* only what could be an app password costs a look and a PBKDF2: the others go straight to the bind */
	if (secrets_app_password_shaped(password, plen) && user_dn(dir, login, &dn, NULL) == IX_OK &&
	    read_secrets(dir, dn, &sr, NULL) == IX_OK) {
		/* one PBKDF2 per salt and iteration count: the user's app passwords share them */
		struct scram_verifier last = { 0 }, mine = { 0 };
		bool have = false;
		for (size_t i = 0; sr.apps[i] != NULL && *app_r == NULL; i++) {
			struct secrets_app a;
			if (secrets_app_parse(sr.apps[i], strlen(sr.apps[i]), &a) != 0 || a.v[0].hash != SCRAM_SHA_256)
				continue;
			const struct scram_verifier *v = &a.v[0];
			if (!have || v->iterations != last.iterations || v->salt_len != last.salt_len ||
			    memcmp(v->salt, last.salt, v->salt_len) != 0) {
				if (scram_verifier_make(SCRAM_SHA_256, password, plen, v->salt, v->salt_len,
							v->iterations, &mine) != 0)
					continue;
				last = *v;
				have = true;
			}
			if (CRYPTO_memcmp(mine.stored_key, v->stored_key, scram_hash_len(SCRAM_SHA_256)) == 0)
				*app_r = xstrdup(a.name);
			explicit_bzero(&a, sizeof(a));
		}
		explicit_bzero(&mine, sizeof(mine));
	}
	secrets_read_free(&sr);
	free(dn);
	if (*app_r != NULL) {
		log_info("directory: %s signed in with the app password %s", login, *app_r);
		return IX_OK;
	}
	return dir_authenticate(dir, login, password, error_r);
}
