/* dir_auth.c - password checks: the login is resolved to a user's DN through the replica, then slapd verifies
 * the password by a simple bind as that DN on one of a small pool of connections (opened with EXTERNAL,
 * then rebound as each user in turn). */
#include "directory/dir_private.h"

#include <ldap.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include "common/err.h"
#include "common/util.h"

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
		return IX_EAUTH;
	}
	char *dn = xstrdup(r.dn);
	dir_recipient_release(&r);
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
