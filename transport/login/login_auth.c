/* login_auth.c - the user table helpers (users, kept passwords, the home server) shared by the IMAP and POP3 logins
 * (see login_auth.h). */
#include "transport/login/login_auth.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/login/proxy.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

/* ---- users ---- */

void login_user_free(struct login_user *u)
{
	free(u->login);
	free(u->guid);
	free(u->dn);
	free(u->address);
	free(u->home_dn);
	memset(u, 0, sizeof(*u));
}

bool login_full_access(const struct login_userdb *db, const char *owner, const char *user)
{
	if (db->full_access == NULL)
		return false;
	struct buf logins = BUF_INIT;
	db->full_access(db->ctx, owner, &logins);
	bool found = false;
	for (size_t i = 0; i < logins.len && !found; i += strlen(logins.data + i) + 1)
		found = strcasecmp(logins.data + i, user) == 0;
	buf_free(&logins);
	return found;
}

bool login_may_act_for(const struct login_userdb *db, const char *authcid, const char *authzid,
		       struct login_user *actor_r)
{
	struct login_user owner;
	memset(actor_r, 0, sizeof(*actor_r));
	if (db->lookup(db->ctx, authcid, actor_r) != 0)
		return false;
	if (db->lookup(db->ctx, authzid, &owner) != 0) {
		login_user_free(actor_r);
		return false;
	}
	bool same = strcasecmp(owner.dn, actor_r->dn) == 0;
	bool ok = same || login_full_access(db, owner.login, actor_r->login);
	login_user_free(&owner);
	if (same || !ok)
		login_user_free(actor_r);
	return ok;
}

void login_password_wipe(char **pass_r, size_t *len_r)
{
	if (*pass_r != NULL) {
		memset(*pass_r, 0, *len_r);
		free(*pass_r);
	}
	*pass_r = NULL;
	*len_r = 0;
}

void login_password_keep(char **pass_r, size_t *len_r, const char *pass, size_t len)
{
	login_password_wipe(pass_r, len_r);
	*pass_r = xmalloc(len + 1);
	memcpy(*pass_r, pass, len);
	(*pass_r)[len] = '\0';
	*len_r = len;
}

int login_user_backend(const struct login_userdb *db, const char *here_dn, const struct login_user *u,
		       enum proxy_proto proto, struct proxy_backend *b_r, struct buf *error_r)
{
	if (here_dn == NULL || u->home_dn == NULL || db->server == NULL || strcasecmp(u->home_dn, here_dn) == 0)
		return 0;
	char *host = NULL;
	unsigned port = 0;
	if (db->server(db->ctx, u->home_dn, proto, &host, &port) != 0) {
		buf_printf(error_r, "the home server %s of %s is unknown here or has no %s port", u->home_dn, u->login,
			   proxy_proto_name(proto));
		return IX_ENOTFOUND;
	}
	int ret = proxy_backend_resolve(host, port, b_r, error_r);
	free(host);
	return ret == 0 ? 1 : ret;
}

unsigned long login_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}
