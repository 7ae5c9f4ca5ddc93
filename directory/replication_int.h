/* replication_int.h - what the replication files (replication_*.c) share among themselves and nobody else uses:
 * the live cn=config of the local slapd, the certificate files, contextCSN arithmetic. */
#ifndef IX_REPLICATION_INT_H
#define IX_REPLICATION_INT_H

#include <ldap.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/config.h"
#include "directory/replication.h"

/* 1 when a and b are both set and name the same DN (compared without case, as our DNs are written). */
int repl_same_dn(const char *a, const char *b);

/* ---- the live replication settings of the local slapd (replication_config.c) ---- */

struct repl_live {
	char *db_dn;       /* the mdb database holding suffix */
	char **server_ids; /* olcServerID values */
	char **syncrepl;   /* olcSyncrepl values */
	char *multiprovider;
};

/* Reads olcServerID of cn=config and olcSyncrepl/olcMultiProvider of the database holding suffix into c (zeroed
 * first; free with repl_live_free, also after a failure). Returns IX_OK, IX_ENOTFOUND (no database for suffix) or
 * another ix_err code with error_r. */
int repl_live_read(LDAP *ld, const char *suffix, struct repl_live *c, struct buf *error_r);
/* Frees c's members and zeroes it. */
void repl_live_free(struct repl_live *c);
/* The password the consumers bind with, from the first olcSyncrepl that has one: a new string (the caller wipes
 * and frees it), or NULL. */
char *repl_live_password(const struct repl_live *c);
/* Writes olcServerID = my_sid and one olcSyncrepl per other server of servers with an ID and a URI (plus
 * olcMultiProvider) when live differs, compared by repl_syncrepl_same: slapd stores the values in its own
 * canonical form, so a textual comparison would rewrite (and restart every consumer) each time; force rewrites them
 * anyway (the consumers read cafile only when they start). Sets *changed_r to 1 when it wrote. Returns IX_OK or an ix_err code with error_r. */
int repl_apply_config(LDAP *ld, const struct repl_live *live, unsigned my_sid, const char *my_dn,
		      const struct repl_server *servers, size_t count, const char *admin_dn, const char *password,
		      const char *suffix, const char *cafile, int force, int *changed_r, struct buf *error_r);

/* ---- certificates (replication_certs.c) ---- */

/* This server's certificate (<data>/tls/cert.pem) in DER in *der_r (the caller frees). Returns IX_OK or IX_EIO. */
int repl_own_cert(const struct config *cfg, unsigned char **der_r, size_t *len_r, struct buf *error_r);
/* Writes <data>/REPL_PEERS_FILE: the certificates the servers publish in the directory, as PEM, when it differs
 * (*changed_r, may be NULL, says whether it did). A certificate that is not valid DER is left out with a warning.
 * Returns IX_OK or IX_EIO. */
int repl_write_peers(const struct config *cfg, const struct repl_server *servers, size_t count, int *changed_r,
		     struct buf *error_r);
/* Publishes this server's certificates in its entry me (objectClass pkiUser, userCertificate;binary): tls/cert.pem
 * and, while `cert renew` runs, REPL_NEXT_CERT_FILE; exactly those (an old one goes after a renewal). Returns IX_OK or an ix_err code with error_r. */
int repl_publish_cert(LDAP *ld, const struct config *cfg, const struct repl_server *me, struct buf *error_r);

/* ---- contextCSN (replication_servers.c) ---- */

/* The contextCSN values of suffix as a NULL-terminated array (free with ldapu_values_free; an empty array, never
 * NULL, after a failure too). Returns IX_OK or an ix_err code with error_r. */
int repl_read_csns(LDAP *ld, const char *suffix, char ***csns_r, struct buf *error_r);
/* The server ID field of a CSN (third '#'-separated field, hexadecimal), or -1. */
long repl_csn_sid(const char *csn);
/* 1 when, for every server ID in want, have holds a CSN at least as new. */
int repl_csns_cover(char **have, char **want);

#endif
