/* login_users.c - the user table of the IMAP and POP3 logins over the directory replica (passwords checked by an LDAP
 * bind, users by login or any address, list membership for ACL identifiers, public folder paths). */
#include "transport/login/login_auth.h"
#include "directory/dir.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int dir_check_password(void *ctx, const char *user, const char *pass, size_t passlen)
{
	if (memchr(pass, '\0', passlen) != NULL)
		return IX_EAUTH;
	struct buf err = BUF_INIT;
	char *app = NULL;
	int ret = dir_authenticate_mail(ctx, user, pass, &app, &err);
	free(app); /* logged by the directory */
	if (ret != IX_OK && ret != IX_EAUTH && ret != IX_EBLOCKED)
		log_warn("password check for %s: %s", user, buf_cstr(&err));
	buf_free(&err);
	return ret == IX_OK ? 0 : ret == IX_EAUTH || ret == IX_EBLOCKED ? ret : IX_EUNAVAIL;
}

static int dir_scram(void *ctx, const char *user, struct scram_server *srv, struct buf *names_r)
{
	struct buf err = BUF_INIT;
	int ret = dir_scram_verifiers(ctx, user, srv, names_r, &err);
	if (ret == IX_EUNAVAIL)
		log_warn("SCRAM verifiers of %s: %s", user, buf_cstr(&err));
	buf_free(&err);
	return ret;
}

static int dir_check_admin(void *ctx, const char *pass, size_t passlen)
{
	if (memchr(pass, '\0', passlen) != NULL)
		return IX_EAUTH;
	struct buf err = BUF_INIT;
	int ret = dir_authenticate_admin(ctx, pass, &err);
	if (ret != IX_OK && ret != IX_EAUTH)
		log_warn("administrator password check: %s", buf_cstr(&err));
	buf_free(&err);
	return ret == IX_OK ? 0 : ret == IX_EAUTH ? IX_EAUTH : IX_EUNAVAIL;
}

/* The recipient a user name names: an address, else a login. */
static int find_user(struct dir *dir, const char *name, struct dir_recipient *r)
{
	return strchr(name, '@') != NULL ? dir_resolve(dir, name, r) : dir_lookup_login(dir, name, r);
}

static int dir_user_lookup(void *ctx, const char *name, struct login_user *u_r)
{
	struct dir_recipient r;
	memset(u_r, 0, sizeof(*u_r));
	int ret = find_user(ctx, name, &r);
	if (ret != IX_OK)
		return IX_ENOTFOUND;
	if (r.type != DIR_TYPE_USER || r.mailbox_guid == NULL || r.login == NULL) {
		dir_recipient_release(&r);
		return IX_ENOTFOUND;
	}
	u_r->login = xstrdup(r.login);
	u_r->guid = xstrdup(r.mailbox_guid);
	u_r->dn = xstrdup(r.dn);
	u_r->address = xstrdup(r.primary_address != NULL ? r.primary_address : "");
	u_r->quota_bytes = r.quota_bytes > 0 ? (uint64_t)r.quota_bytes : 0;
	u_r->quota_messages = r.quota_messages > 0 ? (uint64_t)r.quota_messages : 0;
	u_r->home_dn = r.home_server_dn != NULL ? xstrdup(r.home_server_dn) : NULL;
	dir_recipient_release(&r);
	return 0;
}

struct groups_ctx {
	const char *dn;
	struct buf *out;
};

static void groups_visit(void *ctx, const struct dir_recipient *r)
{
	struct groups_ctx *g = ctx;
	if (r->type != DIR_TYPE_LIST || r->display_name == NULL)
		return;
	for (size_t i = 0; i < r->member_count; i++)
		if (strcasecmp(r->members[i], g->dn) == 0) {
			buf_append(g->out, r->display_name, strlen(r->display_name) + 1);
			return;
		}
}

static void dir_groups(void *ctx, const char *dn, struct buf *ids_r)
{
	struct groups_ctx g = { dn, ids_r };
	dir_foreach_recipient(ctx, groups_visit, &g);
}

static void dir_full_access(void *ctx, const char *owner, struct buf *logins_r)
{
	struct dir_recipient r, d;
	if (find_user(ctx, owner, &r) != IX_OK)
		return;
	for (size_t i = 0; r.type == DIR_TYPE_USER && i < r.full_access_count; i++) {
		if (dir_lookup_dn(ctx, r.full_access[i], &d) != IX_OK)
			continue;
		if (d.type == DIR_TYPE_USER && d.login != NULL)
			buf_append(logins_r, d.login, strlen(d.login) + 1);
		dir_recipient_release(&d);
	}
	dir_recipient_release(&r);
}

static void folders_visit(void *ctx, const struct dir_recipient *r)
{
	if (r->type == DIR_TYPE_FOLDER && r->folder_path != NULL && r->folder_path[0] != '\0')
		buf_append(ctx, r->folder_path, strlen(r->folder_path) + 1);
}

static void dir_public_folders(void *ctx, struct buf *paths_r)
{
	dir_foreach_recipient(ctx, folders_visit, paths_r);
}

static void users_visit(void *ctx, const struct dir_recipient *r)
{
	if (r->type == DIR_TYPE_USER && r->login != NULL && r->mailbox_guid != NULL)
		buf_append(ctx, r->login, strlen(r->login) + 1);
}

static void dir_users(void *ctx, struct buf *logins_r)
{
	dir_foreach_recipient(ctx, users_visit, logins_r);
}

static int dir_server_by_cert_fn(void *ctx, const char *fingerprint, struct buf *server_dn_r)
{
	return dir_server_by_cert(ctx, fingerprint, server_dn_r) == IX_OK ? 0 : IX_ENOTFOUND;
}

static int dir_server(void *ctx, const char *server_dn, enum proxy_proto proto, char **host_r, unsigned *port_r)
{
	struct dir_server *sv;
	size_t n;
	int ret = IX_ENOTFOUND;
	*host_r = NULL;
	*port_r = 0;
	if (dir_servers(ctx, &sv, &n) != IX_OK)
		return ret;
	for (size_t i = 0; i < n && ret != 0; i++) {
		unsigned port = proto == PROXY_POP3    ? sv[i].pop3_port
				: proto == PROXY_SIEVE ? sv[i].sieve_port
						       : sv[i].imap_port;
		if (strcasecmp(sv[i].dn, server_dn) == 0 && sv[i].host != NULL && sv[i].host[0] != '\0' && port != 0) {
			*host_r = xstrdup(sv[i].host);
			*port_r = port;
			ret = 0;
		}
	}
	dir_servers_free(&sv, n);
	return ret;
}

void login_userdb_dir(struct dir *dir, struct login_userdb *db_r)
{
	db_r->server = dir_server;
	db_r->users = dir_users;
	db_r->check_password = dir_check_password;
	db_r->lookup = dir_user_lookup;
	db_r->check_admin = dir_check_admin;
	db_r->scram = dir_scram;
	db_r->server_by_cert = dir_server_by_cert_fn;
	db_r->groups = dir_groups;
	db_r->public_folders = dir_public_folders;
	db_r->full_access = dir_full_access;
	db_r->ctx = dir;
}
