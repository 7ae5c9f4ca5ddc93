/* bootstrap.h - making a new data folder: the steps `interchange init`, `init --join` and `restore` share (may the
 * folder be made, the service user, the folders, the bootstrap configuration, the certificate, undoing a failure). */
#ifndef IX_BOOTSTRAP_H
#define IX_BOOTSTRAP_H

#include <sys/types.h>

#include "common/buf.h"
#include "common/config.h"

/* The public part of the data folder: a copy of this server's certificate for every local user. The data folder is
 * mode 0711 (others may open what they can name, never list it) and everything in it is closed to them but this. */
#define BOOTSTRAP_PUBLIC_DIR "public"
#define BOOTSTRAP_PUBLIC_CERT "public/cert.pem"

/* Days a generated self-signed certificate is valid. */
#define BOOTSTRAP_CERT_DAYS 825

/* One new data folder. The caller sets what, user, user_optional, cert and key; the calls fill the rest. */
struct bootstrap {
	const char *what;       /* the command, for messages ("init", "restore") */
	const char *user;       /* the service user when run as root; NULL or "root": the services run as root */
	int user_optional;      /* a user that cannot be had, or cannot reach the folder, means root without a word
				 * (otherwise: an error, or a warning when it cannot reach the folder) */
	const char *cert, *key; /* files copied as tls/cert.pem (0644) and tls/key.pem (0600); both NULL: a new
				 * self-signed certificate (bootstrap_make_cert) */
	const char *peers;      /* NULL, or a file copied as tls/peers.pem (0644): the servers this one trusts */
	uid_t uid;              /* the service user's ids, when cfg->user is set (bootstrap_check) */
	gid_t gid;
	int created; /* bootstrap_create made the folder: bootstrap_abandon removes it */
};

/* Before anything is written: checks that cfg->data_dir can hold a new data folder (its local socket path is short
 * enough: IX_EINVAL; empty or missing: IX_EEXIST) and settles the service user: sets cfg->user (NULL when the
 * services will run as root) and b->uid, b->gid. Returns IX_OK or the code with a sentence in error_r. */
int bootstrap_check(struct config *cfg, struct bootstrap *b, struct buf *error_r);

/* Makes the folder (0750) with run/, log/, store/, queue/ and tls/, saves cfg as its bootstrap configuration,
 * puts the certificate in tls/ and publishes it (bootstrap_publish_cert). The caller then makes the directory. Returns IX_OK or an ix_err code with error_r
 * (call bootstrap_abandon then). */
int bootstrap_create(const struct config *cfg, struct bootstrap *b, struct buf *error_r);

/* Makes a new key and self-signed certificate for cfg's host name, `localhost` and 127.0.0.1 (the directory's
 * loopback listener is always there) and the listen address; with a wildcard listen address (0.0.0.0: the IPv4
 * addresses, ::: every address) the addresses of this machine's interfaces now, link-local IPv6 ones left out.
 * Valid BOOTSTRAP_CERT_DAYS. Returns IX_OK or an ix_err code with error_r. */
int bootstrap_make_cert(const struct config *cfg, const char *cert_path, const char *key_path, struct buf *error_r);

/* Warns on stderr when cfg's host name does not resolve, or resolves to no address of this machine, saying what to
 * do: clients that connect by that name cannot verify the certificate. Nothing else changes. */
void bootstrap_check_hostname(const struct config *cfg);

/* Copies tls/cert.pem to BOOTSTRAP_PUBLIC_CERT (0644, in a folder of mode 0755) and makes the data folder 0711, so
 * every local user can read the certificate (not the key). Returns IX_OK or IX_EIO with error_r. */
int bootstrap_publish_cert(const struct config *cfg, struct buf *error_r);

/* Makes the folder of the service logs (config_log_path: DATA/log, or the installation's log folder for its default
 * data folder) when it is missing and, run as root, gives it to the service user, which writes the logs once the
 * attendant has dropped root. Returns IX_OK or IX_EIO with error_r. */
int bootstrap_log_dir(const struct config *cfg, struct buf *error_r);

/* Once the caller has filled the folder: gives it to the service user (nothing when cfg->user is NULL). Returns IX_OK
 * or an ix_err code with error_r. */
int bootstrap_chown(const struct config *cfg, const struct bootstrap *b, struct buf *error_r);

/* After a failure: removes the incomplete folder when bootstrap_create made it, saying on stderr when it cannot. */
void bootstrap_abandon(const struct config *cfg, const struct bootstrap *b);

#endif
