/* login_auth.h - the user table that IMAP and POP3 logins read (a function table: the directory replica in the daemons,
 * a fixed table in tests), kept passwords, the home server of a mailbox. */
#ifndef IX_LOGIN_AUTH_H
#define IX_LOGIN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/scram.h"
#include "common/evloop.h"
#include "common/throttle.h"
#include "common/workpool.h"
#include "transport/login/proxy.h"

struct dir;
struct daemon;

/* Threads of a daemon's worker pool (binds to slapd and synced store commits wait, they do not burn CPU). */
#define LOGIN_POOL_THREADS 32
/* Threads of the pool for blocking work that writes nothing (password checks: a bind to slapd; SEARCH's body
 * reads): apart from the worker pool, whose threads wait for syncs, so that a read never queues behind them. */
#define LOGIN_READ_THREADS 4
/* Keys (addresses, accounts, pairs) whose failed logins are tracked at once in each table (throttle.h). */
#define LOGIN_THROTTLE_SLOTS 4096

/* ---- users ---- */

/* A mailbox user as the sessions need it. Every string is owned by the struct (login_user_free). */
struct login_user {
	char *login; /* the uid */
	char *guid;  /* mailbox GUID, 32 hex digits */
	char *dn;
	char *address;                        /* primary address, or "" */
	uint64_t quota_bytes, quota_messages; /* 0: none */
	char *home_dn;                        /* DN of the mailbox's home server (ixHomeServer), or NULL */
};
void login_user_free(struct login_user *u);

/* Where users come from: the directory replica in the daemons, a fixed table in tests. */
struct login_userdb {
	/* Checks a password (login or any address); called on worker threads. See ix_sasl_check_fn (IX_EBLOCKED:
	 * the directory has locked the account). */
	int (*check_password)(void *ctx, const char *user, const char *pass, size_t passlen);
	/* Finds a user by login or any address. Returns 0 (fills *u_r) or IX_ENOTFOUND. Any thread. */
	int (*lookup)(void *ctx, const char *name, struct login_user *u_r);
	/* Appends the ACL identifiers of the lists that have dn as a direct member, each followed by a NUL. */
	void (*groups)(void *ctx, const char *dn, struct buf *ids_r);
	/* Appends the path of every public folder in the directory ("Sales/Leads"), each followed by a NUL. */
	void (*public_folders)(void *ctx, struct buf *paths_r);
	void *ctx;
	/* Appends the login of every mailbox user, each followed by a NUL (LIST "Other Users/%"). May be NULL. */
	void (*users)(void *ctx, struct buf *logins_r);
	/* The host name (ixHostName; *host_r: free()) and the IMAP, POP3 or ManageSieve port (proto) of the server
	 * whose entry is server_dn.
	 * Returns 0, or IX_ENOTFOUND (unknown server, or it has no host name or no such port). Any thread. May be
	 * NULL (then no login is ever proxied). */
	int (*server)(void *ctx, const char *server_dn, enum proxy_proto proto, char **host_r, unsigned *port_r);
	/* Checks the organisation administrator's password (X-IX-IMPORT, a mailbox move). May be NULL: refused. */
	int (*check_admin)(void *ctx, const char *pass, size_t passlen);
	/* Adds the SCRAM verifiers of user to srv (see ix_sasl_scram_fn). Any thread. May be NULL: no SCRAM. */
	int (*scram)(void *ctx, const char *user, struct scram_server *srv, struct buf *names_r);
	/* Whether fingerprint (a TLS client certificate's, as tls_peer_fingerprint writes it) is the certificate of a
	 * server of the organisation: 0 (that server's DN appended to server_dn_r) or IX_ENOTFOUND. Any thread. May be
	 * NULL: no server is trusted (SASL EXTERNAL, a proxy signing in for a user, is always refused). */
	int (*server_by_cert)(void *ctx, const char *fingerprint, struct buf *server_dn_r);
	/* Appends the login of every user with full access to the mailbox of owner (a login or an address; the
	 * directory's ixFullAccess, `interchange user delegate OWNER --full-access USER`), each followed by a NUL.
	 * Read live: a revoked right is gone at the next call. Any thread. May be NULL: nobody has full access. */
	void (*full_access)(void *ctx, const char *owner, struct buf *logins_r);
};

/* Whether the user whose login is user has full access to the mailbox of owner (a login or an address) by the
 * table's full_access. False for owner's own login (the owner's rights are not a delegate's). */
bool login_full_access(const struct login_userdb *db, const char *owner, const char *user);
/* Whether authcid (a user's login or address) may act for authzid (the same, naming another mailbox): true when both
 * name the same user, or when authcid's user has full access to authzid's mailbox. Fills *actor_r with authcid's
 * user when it acts for another (caller frees with login_user_free; zeroed otherwise). Any thread. */
bool login_may_act_for(const struct login_userdb *db, const char *authcid, const char *authzid,
		       struct login_user *actor_r);

/* Whether u's mailbox lives on another server than here_dn (this server's entry; NULL: never): returns 0 when it
 * is here, 1 when it is elsewhere (*b_r: that server's port for proto, resolved), or IX_ENOTFOUND / IX_EINVAL
 * with error_r when the home server cannot be reached from its directory entry. Blocking (a name lookup): call it
 * on a worker. */
int login_user_backend(const struct login_userdb *db, const char *here_dn, const struct login_user *u,
		       enum proxy_proto proto, struct proxy_backend *b_r, struct buf *error_r);

/* A copy of a password kept while a proxied login needs it: replaces *pass_r (wiping the old one). */
void login_password_keep(char **pass_r, size_t *len_r, const char *pass, size_t len);
/* Overwrites and frees *pass_r (NULL is fine); sets it to NULL and *len_r to 0. */
void login_password_wipe(char **pass_r, size_t *len_r);

/* The table over a directory replica (ctx = dir). */
void login_userdb_dir(struct dir *dir, struct login_userdb *db_r);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
unsigned long login_raise_nofile(void);

#endif
