/* bootstrap.c - the making of a new data folder that init, init --join and restore share: checks, the service user,
 * folders, configuration and certificate, and the removal of an incomplete folder. */
#include "attendant/bootstrap.h"
#include "attendant/attendant.h"
#include "common/err.h"
#include "common/privs.h"
#include "transport/net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The largest certificate or key file copied in. */
#define BOOTSTRAP_MAX_TLS_FILE (1024 * 1024)

/* Settles the service user b->user: cfg->user and its ids, or NULL (root). */
static int settle_user(struct config *cfg, struct bootstrap *b, struct buf *error_r)
{
	free(cfg->user);
	cfg->user = NULL;
	const char *user = b->user;
	if (user == NULL || strcmp(user, "root") == 0 || geteuid() != 0)
		return IX_OK;
	struct buf uerr = BUF_INIT;
	int ret = privs_ensure_user(user, &uerr);
	if (ret == IX_OK && privs_lookup(user, &b->uid, &b->gid) != IX_OK)
		ret = IX_ENOTFOUND;
	if (ret != IX_OK) {
		if (!b->user_optional)
			buf_append_str(error_r, buf_cstr(&uerr));
		buf_free(&uerr);
		return b->user_optional ? IX_OK : ret;
	}
	buf_free(&uerr);
	if (!privs_can_reach(cfg->data_dir, b->uid, b->gid)) {
		if (!b->user_optional)
			fprintf(stderr, "interchange: warning: the service user %s cannot reach %s (a folder above it is "
					"closed to others); the services will run as root. Put the data folder where %s can "
					"reach it to run them unprivileged.\n",
				user, cfg->data_dir, user);
		return IX_OK;
	}
	cfg->user = xstrdup(user);
	return IX_OK;
}

int bootstrap_check(struct config *cfg, struct bootstrap *b, struct buf *error_r)
{
	char *sock = config_path(cfg, ATTENDANT_SOCK);
	int too_long = strlen(sock) > CONFIG_MAX_SOCKET_PATH;
	free(sock);
	if (too_long) {
		buf_printf(error_r, "the data folder path %s is too long for the directory's local socket (at most about %d "
				    "characters): choose a shorter --data",
			   cfg->data_dir, CONFIG_MAX_SOCKET_PATH - 20);
		return IX_EINVAL;
	}
	if (!folder_empty_or_missing(cfg->data_dir)) {
		buf_printf(error_r, "%s already exists and is not empty: %s never overwrites a data folder (choose another "
				    "--data, or remove it if you mean to start over)",
			   cfg->data_dir, b->what);
		return IX_EEXIST;
	}
	return settle_user(cfg, b, error_r);
}

int bootstrap_make_cert(const struct config *cfg, const char *cert_path, const char *key_path, struct buf *error_r)
{
	const char *l = cfg->listen;
	bool one = l != NULL && l[0] != '\0' && strcmp(l, "0.0.0.0") != 0 && strcmp(l, "::") != 0;
	return tls_make_self_signed(cfg->hostname, one ? l : NULL, cert_path, key_path, BOOTSTRAP_CERT_DAYS, error_r);
}

int bootstrap_create(const struct config *cfg, struct bootstrap *b, struct buf *error_r)
{
	static const char *const dirs[] = { "", "run", "log", "store", "queue", "tls" };
	/* the folder itself first: once it is there, a failure removes it */
	int ret = config_make_dirs(cfg, dirs, 1, error_r);
	b->created = ret == IX_OK;
	if (ret == IX_OK)
		ret = config_make_dirs(cfg, dirs + 1, IX_ARRAY_LEN(dirs) - 1, error_r);
	if (ret == IX_OK)
		ret = config_save(cfg, error_r);
	if (ret != IX_OK)
		return ret;
	char *to[3] = { config_path(cfg, "tls/cert.pem"), config_path(cfg, "tls/key.pem"),
			config_path(cfg, "tls/peers.pem") };
	const char *from[3] = { b->cert, b->key, b->peers };
	static const int modes[3] = { 0644, 0600, 0644 };
	if (b->cert == NULL)
		ret = bootstrap_make_cert(cfg, to[0], to[1], error_r);
	for (int i = 0; i < 3 && ret == IX_OK; i++) {
		if (from[i] != NULL && file_copy(from[i], to[i], modes[i], BOOTSTRAP_MAX_TLS_FILE) < 0) {
			buf_printf(error_r, "cannot copy %s to %s: %s", from[i], to[i], strerror(errno));
			ret = IX_EIO;
		}
	}
	for (int i = 0; i < 3; i++)
		free(to[i]);
	return ret;
}

int bootstrap_chown(const struct config *cfg, const struct bootstrap *b, struct buf *error_r)
{
	return cfg->user != NULL ? privs_chown_tree(cfg->data_dir, b->uid, b->gid, error_r) : IX_OK;
}

void bootstrap_abandon(const struct config *cfg, const struct bootstrap *b)
{
	if (b->created && remove_tree(cfg->data_dir) < 0)
		fprintf(stderr, "interchange: could not remove the incomplete %s: %s\n", cfg->data_dir, strerror(errno));
}
