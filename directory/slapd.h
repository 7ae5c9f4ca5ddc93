/* slapd.h - the directory server as Interchange runs it: OpenLDAP slapd (back-mdb) from a cn=config folder
 * generated under the data folder, started in the foreground by the attendant and stopped by signal. */
#ifndef IX_SLAPD_H
#define IX_SLAPD_H

#include <sys/types.h>
#include "common/buf.h"
#include "common/config.h"
#include "common/paths.h"

/* slapd's programs, from the build configuration (the Makefile's SLAPD, SLAPADD, SLAPCAT) */
#define SLAPD_BIN paths_slapd
#define SLAPADD_BIN paths_slapadd
#define SLAPCAT_BIN paths_slapcat
/* How long start waits for slapd to answer, and stop for it to exit before SIGKILL. */
#define SLAPD_READY_TIMEOUT_MS 30000
#define SLAPD_STOP_TIMEOUT_MS 10000
/* Size of the LMDB map of the directory database (grown at runtime with olcDbMaxSize if ever needed). */
#define SLAPD_DB_MAX_SIZE (4ULL << 30)

/* Delta-syncrepl (docs/multi-server.md): every successful write to the directory is logged in its own database,
 * cn=accesslog (database {2}, files in SLAPD_ACCESSLOG_DIR), by the accesslog overlay on the directory; the other
 * servers' consumers replay those changes attribute by attribute. Entries older than 7 days are purged daily. */
#define SLAPD_ACCESSLOG_SUFFIX "cn=accesslog"
#define SLAPD_ACCESSLOG_DIR "directory/accesslog"
#define SLAPD_ACCESSLOG_MODULE "accesslog"
#define SLAPD_ACCESSLOG_PURGE "07+00:00 01+00:00"
#define SLAPD_ACCESSLOG_MAX_SIZE (1ULL << 30)
/* Our slapd module giving cn, name and uid an ordering rule (directory/ixordering.c), in the data folder; init
 * copies it there from beside the interchange program (ixordering.so). */
#define SLAPD_ORDERING_MODULE "directory/ixordering.so"
/* Our slapd module that lets the unique and dynlist overlays answer the administrator only, so that neither a
 * uniqueness check nor a compare answers before the access rules (directory/ixgate.c); copied into the data folder at
 * every start, loaded after slapd's unique and dynlist modules. */
#define SLAPD_GATE_MODULE "directory/ixgate.so"
/* Our slapd module that keeps the sssvlv overlay from refusing the next page of a sorted browse as busy
 * (directory/ixbrowse.c); copied into the data folder at every start, loaded after slapd's sssvlv module. */
#define SLAPD_BROWSE_MODULE "directory/ixbrowse.so"
/* The only Cyrus SASL plugins slapd loads (SASL_PATH): our PLAIN (directory/ixplain.c) and our SCRAM
 * (directory/ixscram.c), copied there from beside the interchange program at every start; with EXTERNAL, built in,
 * the mechanisms that work. */
#define SLAPD_SASL_DIR "directory/sasl2"
#define SLAPD_SASL_PLUGIN SLAPD_SASL_DIR "/libixplain.so"
#define SLAPD_SASL_SCRAM_PLUGIN SLAPD_SASL_DIR "/libixscram.so"
/* The channel binding slapd gives SASL inside TLS (olcSaslCBinding: tls-server-end-point; slapd 2.5 has no
 * tls-exporter), which offers SCRAM's -PLUS forms. */
#define SLAPD_SASL_CBINDING "tls-endpoint"
/* Appends the cn=config entries of the access log: its database (rootDN, limits and read access for the
 * administrator alone), syncprov on it, and the accesslog overlay on the directory database ({1}mdb, whose
 * overlays {0}-{4} must exist). With changetype, each entry carries "changetype: add" (for slapmodify). The
 * module (SLAPD_ACCESSLOG_MODULE) is not part of it. */
void slapd_accesslog_ldif(const struct config *cfg, int changetype, struct buf *b);

/* Password policy (docs/directory.md, "Passwords"): slapd's ppolicy overlay on the directory database hashes
 * every clear userPassword written by an add or a modify ({SSHA}, before the access log records the change),
 * checks the length of clear passwords, verifies the old password a Password Modify request carries, and locks
 * an account for a while after too many failed binds. Its settings live in one entry of the organisation,
 * SLAPD_POLICY_RDN,<suffix>, whose attributes follow the settings of slapd_policy_setting_attrs. */
#define SLAPD_PPOLICY_MODULE "ppolicy"
#define SLAPD_POLICY_RDN "cn=Password Policy,ou=Configuration"
/* The ppolicy overlay's cn=config entry, with index overlay_index on {1}mdb (changetype as for the access log). */
void slapd_ppolicy_ldif(const struct config *cfg, unsigned overlay_index, int changetype, struct buf *b);
/* The policy entry (DN first) with the values of settings (an array of SET_COUNT values, settings.h). */
void slapd_policy_entry_ldif(const struct config *cfg, const unsigned long long *settings, struct buf *b);
/* The policy entry's attributes that follow setting id (a NULL-terminated list), or NULL when none does. */
const char *const *slapd_policy_setting_attrs(int id);

/* Creates <data>/directory/{slapd.d,data} and loads the configuration (schema, overlays, ACLs, the admin
 * password hashed with {SSHA}) and the base entries: organisation, containers, this server (with the settings given
 * in settings, SET_COUNT values of which those that differ from the default are written), the accepted domain,
 * the default recipient policy and the password policy. Everything is loaded offline with slapadd. Returns IX_OK, or
 * IX_EIO / IX_EINVAL with the reason (slapadd's own message included) in error_r. */
int slapd_create(const struct config *cfg, const char *admin_password, const unsigned long long *settings,
		 struct buf *error_r);

/* The two halves of slapd_create: the configuration alone, and loading an LDIF into the database offline
 * (slapadd -n1; slapd must be stopped). The administrator's password lives in its entry (cn=admin,<suffix>, made
 * by slapd_create), so rootpw_hash is normally NULL; a restore of a backup from before that passes the backup's
 * olcRootPW hash, and the attendant moves it into the entry (upgrade_security, directory/upgrade.h). */
/* server_id: olcServerID (0: none; init gives the first server SLAPD_FIRST_SERVER_ID, a join sets its own).
 * directory_extra: LDIF attribute lines ("olcSyncrepl: ...\n") added to the directory database's entry (a
 * restore carries the backed-up server's replication over), or NULL. */
#define SLAPD_FIRST_SERVER_ID 1
int slapd_create_config(const struct config *cfg, const char *rootpw_hash, unsigned server_id,
			const char *directory_extra, struct buf *error_r);
int slapd_load_ldif(const struct config *cfg, const char *path, struct buf *error_r);
/* Runs one of slapd's tools (argv[0] a full path: slapadd, slapcat, slapmodify...) with LDAPNOINIT set, stdout and
 * stderr captured into out (at most SLAPD_TOOL_OUTPUT_MAX bytes kept). Returns its exit status, or -1. */
#define SLAPD_TOOL_OUTPUT_MAX (64 * 1024)
int slapd_run_tool(char *const argv[], struct buf *out);
/* Exports database dbnum (0: configuration, 1: the directory) to an LDIF file with slapcat; safe while slapd
 * runs (LMDB readers see one consistent snapshot). Returns IX_OK or IX_EIO. */
int slapd_export(const struct config *cfg, int dbnum, const char *path, struct buf *error_r);

/* Minimum TLS security strength factor of a bind off the loopback listener. */
#define SLAPD_TLS_MIN_SSF "128"
/* The attributes that hold secrets: the password's hash, its SCRAM verifiers, the app passwords. */
#define SLAPD_SECRET_ATTRS "userPassword,ixScramVerifier,ixScramBinding,ixAppPassword"
/* Appends the userPassword access rule (without its "{0}" prefix): binds in clear only over ldapi, the loopback
 * listener or a wildcard listener from 127.0.0.1/::1; elsewhere only inside TLS. */
void slapd_password_acl(struct buf *b);
/* Appends access rule n (1: hidden recipients, 3: everything else, {8} since the hidden-value and application rules
 * came before it; without the "{n}" prefix) as init makes it. Both give anonymous =x (authentication only, nothing read or disclosed), which the search behind a bind by login or
 * address needs (slapd_authz_regexp); 0 when n is not one of these. */
int slapd_recipient_acl(const struct config *cfg, int n, struct buf *b);
/* Application accounts (docs/directory.md "Application accounts"): entries cn=NAME,SLAPD_APPLICATIONS_RDN,<suffix>
 * that bind with a password and read the address book only. */
#define SLAPD_APPLICATIONS_RDN "ou=Applications"
/* Appends application access rule n (without its "{n}" prefix; the SLAPD_APPLICATION_ACLS rules go, in this order,
 * right before rule "to *"): 0 lets an application search from the suffix entry (dynlist's memberOf needs it), 1
 * read the address book's attributes (SLAPD_APPLICATION_ATTRS) of the entries under ou=Recipients that rule 1
 * (hidden recipients) did not take, 2 gives an application nothing else; each passes everyone else on (break).
 * Returns 0 when n is none of these. */
#define SLAPD_APPLICATION_ACLS 3
#define SLAPD_APPLICATION_ATTRS                                                                                      \
	"entry,objectClass,ou,entryUUID,uid,cn,sn,givenName,displayName,mail,ixProxyAddresses,ixNickname,member,"    \
	"memberOf,title,department,company,physicalDeliveryOfficeName,telephoneNumber,mobile,manager,directReports," \
	"thumbnailPhoto,jpegPhoto,uidNumber,gidNumber,homeDirectory,loginShell"
int slapd_application_acl(const struct config *cfg, int n, struct buf *b);
/* Administrative roles as Exchange had them (docs/api.md "Roles"): groups (groupOfNames) under SLAPD_ROLES_RDN,<suffix>
 * whose members get rights in the directory by access rules that come before every other rule (init puts the
 * SLAPD_ROLE_ACLS rules of slapd_role_acl first, upgrade_roles inserts them before the password rule): Organisation
 * Admins write everything, Recipient Admins write ou=Recipients and ou=Public Folders (their secrets, SLAPD_SECRET_ATTRS,
 * included, but no role reads a secret) and read the rest but secrets, View-Only Admins read everything but secrets.
 * Each rule passes everyone else on (break). A role always holds the administrator's DN (groupOfNames needs one
 * member). Returns 0 when n is none of these. */
#define SLAPD_ROLES_RDN "ou=Roles"
#define SLAPD_ROLE_ORG "Organisation Admins"
#define SLAPD_ROLE_RECIPIENT "Recipient Admins"
#define SLAPD_ROLE_VIEW "View-Only Admins"
#define SLAPD_ROLE_ACLS 5
int slapd_role_acl(const struct config *cfg, int n, struct buf *b);
/* The LDIF of ou=Roles and the three role entries (each with the administrator as member), appended to b. */
void slapd_roles_ldif(const struct config *cfg, struct buf *b);
/* Appends access rule n of the values that name a recipient (without its "{n}" prefix; init puts the
 * SLAPD_HIDDEN_VALUE_ACLS rules, in this order, right before the application rules): a value of a list's member (0)
 * or of a person's manager (1) that is the DN of a recipient hidden from the address book is readable, searchable
 * and comparable by no one but the administrator (docs/directory.md "Hidden recipients in lists"); other values pass
 * on (break). Returns 0 when n is none of these. */
#define SLAPD_HIDDEN_VALUE_ACLS 2
int slapd_hidden_value_acl(const struct config *cfg, int n, struct buf *b);
/* The dynlist attribute set that computes directReports when read: the people (inetOrgPerson) whose manager is the
 * entry read, found with a search made as the reader (docs/directory.md "People in the address book"). Its dynamic
 * group class is groupOfURLs, which no entry of ours has: dynlist answers a compare on an entry of that class itself,
 * without the access rules, so naming inetOrgPerson there would confirm hidden users' values to anyone. */
#define SLAPD_DIRECT_REPORTS_ATTRSET "groupOfURLs memberURL manager+directReports@inetOrgPerson"
/* The olcAuthzRegexp value n (1: a login, 2: an address; with its "{n}" prefix, quoted) mapping the authentication
 * identity slapd builds for a SASL PLAIN bind, uid=NAME,cn=plain,cn=auth (with ,cn=REALM before cn=plain when a
 * realm is set), to the recipient with that uid, or with that mail or proxy address (docs/slapd-facts.md, "SASL
 * PLAIN, hashes and the authcid"). A new string, or NULL for any other n. */
char *slapd_authz_regexp(const struct config *cfg, int n);
/* The mechanisms whose names the rules map (slapd names a client uid=NAME,cn=MECH,cn=auth). */
#define SLAPD_AUTHZ_MECHS "cn=(plain|scram-sha-256|scram-sha-1)"
/* The SASL security properties init sets (olcSaslSecProps): PLAIN only inside TLS or over ldapi, and no
 * mechanism at all in clear over TCP (minssf=1: SCRAM, which sends no password, neither, as on the mail ports). */
#define SLAPD_SASL_SECPROPS "noanonymous,noplain,minssf=1"
/* slapd's TCP listener URLs for the bootstrap `listen` address (a new string), ldap:// at the LDAP port and ldaps://
 * (implicit TLS with this server's certificate) at the LDAPS port: 127.0.0.1 (the default) alone; 0.0.0.0 or ::
 * every address; any other address that one plus 127.0.0.1, so local tools keep a loopback path. */
char *slapd_listen_urls(const struct config *cfg);
/* 1 when addr is a numeric IPv4 or IPv6 address (what `listen` takes). */
int slapd_listen_valid(const char *addr);
/* The attribute of a server entry (ixServer) holding port p ("ixSmtpPort"), or NULL for a port kept only in the data
 * folder's bootstrap configuration (the web server's, which no other server needs to know). */
const char *slapd_port_attr(enum config_port p);

/* Starts slapd in the foreground (-d none: errors on its stderr, which goes to log_fd), listening first on
 * the slapd_listen_urls at the LDAP and LDAPS ports, then on <data>/run/ldapi. lock_fd, if >= 0, is inherited by
 * slapd so the lock lives exactly as long as slapd. slapd loads only the SASL plugins of SLAPD_SASL_DIR (SLAPD_SASL_PLUGIN and
 * SLAPD_SASL_SCRAM_PLUGIN, copied here).
 * Returns the pid, or -1 with error_r set. */
pid_t slapd_spawn(const struct config *cfg, int log_fd, int lock_fd, struct buf *error_r);
/* Waits until slapd answers an EXTERNAL bind over ldapi (the pidfile and socket do not mean ready,
 * docs/slapd-facts.md, "Ready means answering"). Returns IX_OK, IX_EUNAVAIL when pid exited (reaped; *status_r
 * set) or on timeout. */
int slapd_wait_ready(const struct config *cfg, pid_t pid, unsigned timeout_ms, int *status_r, struct buf *error_r);
/* SIGTERM, wait up to timeout_ms, then SIGKILL; reaps pid (our child). Returns IX_OK. */
int slapd_stop(pid_t pid, unsigned timeout_ms);

/* Hashes password as {SSHA} (salted SHA-1), the scheme slapd checks fastest (docs/slapd-facts.md, "Password
 * hashes"). Caller frees. */
char *slapd_hash_ssha(const char *password);

/* Appends to b the cn=config schema LDIF ldif (one of Debian's schema files) with its continuation lines joined
 * and caseIgnoreOrderingMatch added as ORDERING to the attribute types address books sort on that lack one
 * (displayName, mail, telephoneNumber, physicalDeliveryOfficeName): init loads these copies instead of Debian's. */
void slapd_schema_add_ordering(const char *ldif, struct buf *b);
/* Appends to b the cn=config schema LDIF of RFC 2307 (Debian's nis.ldif, continuation lines joined, comments left
 * out) with posixGroup AUXILIARY, as RFC 2307bis has it, so a distribution list can be a POSIX group (docs/directory.md
 * "POSIX accounts and groups"); init loads it after interchange's schema, upgrade_posix adds it to older directories.
 * IX_OK, or an ix_err code with error_r when the file cannot be read or is not slapd 2.5's. */
int slapd_nis_schema(struct buf *b, struct buf *error_r);
/* The limits of every bound identity but the administrator's (olcLimits {1}): a search returns at most olcSizeLimit
 * (500) entries, but paged results (RFC 2696), as address-book clients browse, go through the whole address book in
 * pages of at most 500 (docs/directory.md "Sorting by name"). */
#define SLAPD_USER_LIMITS "users size.pr=500 size.prtotal=unlimited"
/* The index of the POSIX lookups sssd makes (by uidNumber, by gidNumber). */
#define SLAPD_POSIX_INDEX "uidNumber,gidNumber eq"
/* The names address-book clients and the API search by: equality and substrings ("begins with", "contains"; mail's
 * apart, with presence). ixProxyAddresses, every address of a recipient with its "smtp:" prefix, and ixNickname,
 * which no search of ours names, have equality only: the substring keys of ixProxyAddresses were the directory's
 * most costly to write (about a third of what an added recipient writes) and duplicate mail's for the primary
 * (docs/directory.md "Indexes"). */
#define SLAPD_NAME_INDEX "uid,cn,sn,givenName,displayName eq,sub"
#define SLAPD_ADDRESS_INDEX "ixProxyAddresses,ixNickname eq"
/* The index of names and addresses of directories made before SLAPD_NAME_INDEX (upgrade_index replaces it). */
#define SLAPD_OLD_NAME_INDEX "uid,cn,sn,givenName,displayName,ixProxyAddresses,ixNickname eq,sub"
/* What sync sources look their recipients up by (directory/sync_reconcile.c): without it each live change and each
 * member resolved reads every recipient. */
#define SLAPD_SYNC_INDEX "ixSyncedFrom,ixSyncAnchor,ixSyncRemoteDn eq"

#endif
