/* replication.h - one organisation, many servers: joining a server to an existing organisation and keeping its
 * slapd's multi-provider replication (olcServerID, olcSyncrepl) in step with the ixServer entries of the directory.
 * The library (libreplication) is in files by job: replication_servers.c (the servers, connecting to them),
 * replication_certs.c (TLS anchored in the directory), replication_config.c (cn=config), replication_join.c (join),
 * replication_status.c (what `interchange replication` shows). It keeps no state between calls. */
#ifndef IX_REPLICATION_H
#define IX_REPLICATION_H

#include <stdbool.h>

#include "common/buf.h"
#include "common/config.h"

/* slapd's server IDs run from 1 to 4095; rid= of a consumer has three decimal digits (1-999), and we use the
 * provider's server ID as the rid, so an organisation holds at most 999 replicating servers. */
#define REPL_MAX_SERVER_ID 999
#define REPL_MAX_SERVERS 256
/* Longest LDAP URI and replication password we store in the directory or in cn=config. */
#define REPL_MAX_URI 1024
#define REPL_MAX_PASSWORD 1024
/* How long join waits for the directory contents to arrive, by default. */
#define REPL_JOIN_TIMEOUT_MS 120000
/* Seconds a consumer waits before reconnecting to a provider that went away (slapd retry="N +"). */
#define REPL_RETRY_S 1

/* Most certificates one server entry publishes (its own, and the next one while `cert renew` runs). */
#define REPL_MAX_CERTS 4

/* A server of the organisation as replication sees it. sid is 0 when the server has no ixServerId yet. */
struct repl_server {
	char *dn, *name, *uri; /* uri is ixLdapUri, NULL when absent */
	unsigned sid;
	char *handover; /* ixReplicationHandover, NULL when absent */
	/* userCertificate;binary (DER): the certificate it answers TLS with, and during a renewal the next one too */
	unsigned char *cert[REPL_MAX_CERTS];
	size_t cert_len[REPL_MAX_CERTS], ncerts;
	int pki; /* the entry has objectClass pkiUser (so it may hold userCertificate) */
};
/* Longest certificate we publish or accept from the directory (DER). */
#define REPL_MAX_CERT (64 * 1024)

/* What `interchange init --join` asks for. uri: an existing server's LDAP URI; password: the organisation's
 * administrator password; hostname: this server's name (NULL: the machine's, under the organisation's domain);
 * my_uri: where the others will reach this server's directory (NULL: ldap://127.0.0.1:PORT when uri names a
 * loopback address, else ldap://HOSTNAME:PORT); user: the service user when run as root (NULL: none);
 * timeout_ms: how long to wait for the contents (0: REPL_JOIN_TIMEOUT_MS). */
struct repl_join {
	const char *uri, *password, *hostname, *my_uri, *user, *data_dir;
	const char *cafile; /* certificates that vouch for uri's server when it is not local (NULL: the system's) */
	const char *listen; /* address this server's directory and services listen on (NULL: 127.0.0.1) */
	unsigned ports[PORT_COUNT];
	unsigned timeout_ms;
	int quiet; /* no progress lines on stdout */
};

/* Reads the organisation from the server at j->uri (suffix from the rootDSE, admin DN cn=admin,<suffix>, org
 * name, accepted domain, servers), fills cfg_r with a new server's bootstrap configuration (the caller owns it:
 * config_free), and checks that the name is free. Nothing is written. Returns IX_OK, IX_EAUTH (wrong password),
 * IX_EUNAVAIL (no answer), IX_EEXIST (a server of that name exists) or IX_EINVAL, with a sentence in error_r. */
int repl_join_prepare(const struct repl_join *j, struct config *cfg_r, struct buf *error_r);

/* Second half of a join, once the data folder holds a configuration (slapd_create_config) and nothing in its
 * database: allocates this server's ID (and one for any server that has none, the first server, leaving it the
 * replication password as a one-shot ixReplicationHandover), adds this server's entry on the remote, starts the
 * local slapd, configures olcServerID, olcSyncrepl to every other server and olcMultiProvider over ldapi, waits
 * until the local copy holds everything the remote had (contextCSN per server ID) and stops slapd again.
 * Must run as the user slapd runs as. On failure the remote server entry is removed again. Returns IX_OK or an
 * ix_err code with error_r. */
int repl_join_finish(const struct repl_join *j, const struct config *cfg, struct buf *error_r);

/* The trusted certificates of the organisation's servers (PEM), written by the attendant from the directory. */
#define REPL_PEERS_FILE "tls/peers.pem"

/* The certificate and key `interchange cert renew` switches to, published beside the current one until then. */
#define REPL_NEXT_CERT_FILE "tls/next-cert.pem"
#define REPL_NEXT_KEY_FILE "tls/next-key.pem"

/* Publishes this server's certificates in its entry (over ldapi: tls/cert.pem, and REPL_NEXT_CERT_FILE while it
 * exists, and nothing else), then waits until every other server of the organisation holds the same in its own
 * directory (so each trusts them: their attendants write peers.pem from it), at most timeout_ms per server.
 * Returns IX_OK; IX_EUNAVAIL naming a server that could not be reached or did not get them in time; or another
 * ix_err code with error_r. */
int repl_publish_own_certs(const struct config *cfg, unsigned timeout_ms, struct buf *error_r);

/* 1 when a password may cross a connection to uri in clear: ldapi://, or ldap:// to 127.0.0.1, ::1 or
 * localhost (the loopback listener). Any other address, 127.0.0.2 included, counts as the network. */
int repl_uri_is_local(const char *uri);

/* Binds to uri as dn with password (ld_r is an LDAP **). Not local (repl_uri_is_local): StartTLS first, the
 * peer's certificate verified against cafile (NULL: the system's CAs) and its host name, and no bind without it.
 * Returns IX_OK, IX_EAUTH (wrong password, or TLS refused or not verified), IX_EUNAVAIL or IX_EINVAL. */
int repl_connect_tls(const char *uri, const char *dn, const char *password, const char *cafile, void *ld_r,
		     struct buf *error_r);
/* The same to another server of the organisation, trusting the certificates in <data>/REPL_PEERS_FILE. */
int repl_peer_connect(const struct config *cfg, const char *uri, const char *dn, const char *password, void *ld_r,
		      struct buf *error_r);

/* Lists the servers of the organisation through an open connection (any directory: ld is an LDAP *). The caller
 * frees with repl_servers_free. Returns IX_OK or an ix_err code. */
int repl_servers_read(void *ld, const char *suffix, struct repl_server **servers_r, size_t *count_r,
		      struct buf *error_r);
void repl_servers_free(struct repl_server **servers, size_t count);

/* The olcSyncrepl value that replicates suffix from provider uri (rid = sid), binding as admin_dn with password.
 * When uri is not local (repl_uri_is_local), the consumer must use StartTLS (starttls=critical) and verify the
 * provider's certificate against cafile (tls_reqcert=demand, tls_cacert=cafile when not NULL).
 * Returns a new string; NULL when uri or password hold characters slapd's quoting cannot carry (" or \). */
char *repl_syncrepl_value(unsigned sid, const char *uri, const char *admin_dn, const char *password, const char *suffix,
			  const char *cafile);
/* What a delta-syncrepl consumer replays from its provider's cn=accesslog: successful writes. */
#define REPL_LOG_FILTER "(&(objectClass=auditWriteObject)(reqResult=0))"
/* 1 when the live olcSyncrepl value (slapd's canonical form, e.g. "{0}rid=002 ...") says what want says: the same
 * rid, provider, credentials, TLS (starttls, tls_cacert) and delta-syncrepl (syncdata, logbase) options. slapd
 * rewrites values in its own form, so comparing the text would rewrite cn=config (and restart consumers) always. */
int repl_syncrepl_same(const char *live, const char *want);
/* Finds credentials="..." in an olcSyncrepl value; returns a new string or NULL. */
char *repl_syncrepl_credentials(const char *value);
/* Finds provider=URI in an olcSyncrepl value; returns a new string or NULL. */
char *repl_syncrepl_provider(const char *value);

/* Brings the local slapd's cn=config in step with the directory (over ldapi, as the administrator): olcServerID
 * from this server's ixServerId, one olcSyncrepl per other server with an ID and a URI, olcMultiProvider. A
 * server without an ID is left alone (a single server needs nothing). Takes an ixReplicationHandover left for
 * this server into cn=config and deletes it. Sets *changed_r (may be NULL) when cn=config was changed. Returns
 * IX_OK, IX_EUNAVAIL (slapd not answering) or another ix_err code with error_r. */
int repl_sync_config(const struct config *cfg, int *changed_r, struct buf *error_r);

/* Lets the administrator over ldapi (SASL EXTERNAL, which olcAuthzRegexp maps to the admin DN) manage cn=config,
 * and nobody else: the generated configuration grants it to the peercred DN, which the mapping replaces, so
 * without this no one can change cn=config at runtime. Adds the olcAccess rule offline with slapmodify -n0 when it
 * is missing (slapd must be stopped; run as the user slapd runs as, or chown afterwards). Returns IX_OK (also when
 * nothing was needed) or IX_EIO with slapmodify's message in error_r. */
#define SLAPMODIFY_BIN "/usr/sbin/slapmodify"
int repl_prepare_config(const struct config *cfg, struct buf *error_r);

/* 1 when dn names a server entry of cfg's organisation (cn=...,ou=Servers,ou=Configuration,<suffix>): a change of
 * one may change whom slapd replicates from, so repl_sync_config should run. Pure; any thread. */
int repl_server_dn(const struct config *cfg, const char *dn);

/* The administrator password this server's consumers bind with (from its olcSyncrepl values, over ldapi): the
 * credential of the server-to-server channel of a mailbox move. *password_r: free(). IX_ENOTFOUND when none. */
int repl_admin_password(const struct config *cfg, char **password_r, struct buf *error_r);

/* Replication state for `interchange replication`: every server, its ID and URI, whether this server
 * replicates from it, and the contextCSN per server ID here and there, with "in step" or what differs.
 * Appends text to out. Returns IX_OK or an ix_err code with error_r. */
int repl_status(const struct config *cfg, struct buf *out, struct buf *error_r);
/* The short form for `interchange server list`: a table of every server, its ID and its replication state seen
 * from here ("in step", what differs, "unreachable (...)"), and whether this server replicates from it. */
int repl_server_states(const struct config *cfg, struct buf *out, struct buf *error_r);
/* The same as data: every server of the organisation (this one with self set) and, for the others, their state
 * seen from here (state: "in step", "differs: ...", "unreachable (...)", "unknown (...)"; in_step when it is
 * exactly "in step") and whether this server replicates from it. *single_r (may be NULL): this server replicates
 * with no other. Free with repl_peers_free. Connects to every other server (StartTLS off loopback). */
struct repl_peer {
	char *name;
	unsigned id;
	char *state; /* NULL for this server */
	bool self, in_step, replicating;
};
int repl_peers(const struct config *cfg, struct repl_peer **peers_r, size_t *count_r, bool *single_r,
	       struct buf *error_r);
void repl_peers_free(struct repl_peer **peers, size_t count);

#endif
