/* privs.h - running unprivileged: the system user the services run as when Interchange is started as root,
 * dropping to it (optionally keeping only the right to bind ports below 1024), and handing it the data folder. */
#ifndef IX_PRIVS_H
#define IX_PRIVS_H

#include <sys/types.h>
#include "common/buf.h"

/* The system user `interchange init` creates when run as root. */
#define PRIVS_DEFAULT_USER "interchange"

/* Creates the system user (no login, no home) if it does not exist. Returns IX_OK or IX_EIO with error_r. */
int privs_ensure_user(const char *name, struct buf *error_r);
/* Looks up a user; returns IX_OK or IX_ENOTFOUND. */
int privs_lookup(const char *name, uid_t *uid_r, gid_t *gid_r);
/* Returns 1 when user uid/gid can traverse every ancestor of path (x permission on each folder above it). */
int privs_can_reach(const char *path, uid_t uid, gid_t gid);
/* Gives the tree at path to uid/gid (lchown of every entry). Returns IX_OK or IX_EIO. */
int privs_chown_tree(const char *path, uid_t uid, gid_t gid, struct buf *error_r);
/* When running as root and user is set and not "root": becomes that user (supplementary groups cleared). With
 * keep_bind, keeps CAP_NET_BIND_SERVICE as an ambient capability, so programs started from here can still
 * listen on ports below 1024. Does nothing when not root. Returns IX_OK or IX_EPERM with error_r. */
int privs_drop(const char *user, int keep_bind, struct buf *error_r);

#endif
