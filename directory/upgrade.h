/* upgrade.h - bringing a directory made by an older version of Interchange up to what init makes now, in place, over
 * ldapi while slapd runs. Each step only adds or tightens, does nothing when it is not needed, and may run again. */
#ifndef IX_UPGRADE_H
#define IX_UPGRADE_H

#include "common/buf.h"
#include "common/config.h"

/* Brings every attribute type and object class of our schema (the copy built into the program) in the running slapd's
 * cn=config to this version's definition: one it lacks is added (a server initialised by an older version gets
 * ixServerId and friends, so it can take part in replication), one whose text differs is replaced in its place (an
 * older ixServer without ixLdapsPort in its MAY list takes the new one). Definitions cn=config holds and our schema
 * does not are left alone; nothing is written when every definition is the same. What a new definition may change is
 * in docs/slapd-facts.md, "Schema changes". Sets *added_r and *replaced_r to the number of definitions added and
 * replaced. Returns IX_OK, IX_ENOTFOUND (no interchange schema in cn=config) or another ix_err code with error_r. */
int upgrade_schema(const struct config *cfg, unsigned *added_r, unsigned *replaced_r, struct buf *error_r);

/* Adds to the refint overlay of the directory's database every attribute refint keeps free of dangling DNs that was
 * added to it since (ixFullAccess): a directory made before them keeps the DN of a deleted user there otherwise. Runs
 * after upgrade_schema, which defines them. *changes_r: how many it added. Returns IX_OK (also without a refint
 * overlay) or an ix_err code with error_r. */
int upgrade_refint(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Adds to this server's entry (cfg->server_dn) every port attribute (slapd_port_attr) it lacks, with the port of the
 * bootstrap configuration: an entry made by an older version gets the ports of services added since (ixLdapsPort).
 * Ports the entry holds are left as they are. Runs after upgrade_schema, whose ixServer allows them. *changes_r: how
 * many it added. Returns IX_OK (also when there is no such entry) or an ix_err code with error_r. */
int upgrade_server_ports(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings the TLS and password rules to what slapd_create makes now: StartTLS with this server's certificate
 * (olcTLSCertificateFile/KeyFile), the userPassword rule that wants TLS off the loopback listener
 * (slapd_password_acl), and the administrator's password moved from olcRootPW (whose binds bypass every ACL) into
 * the entry cn=admin,<suffix>. *changes_r: how many of these it did. Returns IX_OK or an ix_err code with error_r. */
int upgrade_security(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Makes the running slapd serve the data folder's tls/cert.pem and tls/key.pem as they are now (a certificate
 * installed or renewed in place): olcTLSCertificateFile and olcTLSCertificateKeyFile are set again, after which slapd
 * builds its TLS context anew; connections already open keep theirs. Returns IX_OK or an ix_err code with error_r
 * (slapd refuses a pair it cannot load and keeps the old one). */
int upgrade_tls_files(const struct config *cfg, struct buf *error_r);

/* Adds what delta-syncrepl needs to a directory made before it: loads the accesslog module and adds the
 * cn=accesslog database, its syncprov and the accesslog overlay on the directory (slapd_accesslog_ldif). Does
 * nothing when cn=accesslog exists; refuses (IX_EINVAL, with what to do in error_r) a configuration whose
 * databases or overlays are not the ones init makes. *changes_r: 1 when it added the log. The consumers switch to
 * syncdata=accesslog at the next repl_sync_config (directory/replication.h). */
int upgrade_accesslog(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings a directory's passwords up to the password policy (docs/directory.md "Passwords"): loads slapd's ppolicy
 * module and adds its overlay after the others on the directory database (slapd_ppolicy_ldif) when it has none,
 * adds the policy entry when missing (values from this server's settings), and replaces every userPassword value
 * stored in clear, in the directory and in the access log's records of earlier changes, with its {SSHA} hash.
 * *changes_r: how many of these it did. Returns IX_OK or an ix_err code with error_r. */
int upgrade_passwords(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings SASL binds to what slapd_create makes now (docs/directory.md "Binds by login or address"): olcSaslSecProps
 * SLAPD_SASL_SECPROPS, olcSaslCBinding SLAPD_SASL_CBINDING (SCRAM's -PLUS forms), the olcAuthzRegexp rules {1} and {2} mapping a login or an address to its recipient
 * (slapd_authz_regexp) when no rule names cn=plain yet, and access rules {1} and {3} replaced by slapd_recipient_acl
 * when they are init's older ones (the same target, nothing for anonymous). *changes_r: how many of these it did.
 * Returns IX_OK or an ix_err code with error_r. */
int upgrade_sasl(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings application accounts (docs/directory.md "Application accounts") to a directory made before them: adds the
 * container SLAPD_APPLICATIONS_RDN,<suffix> when missing and, when no rule names it, the access rules of
 * slapd_application_acl right before the rule "to *", and the rule that lets applications read the address book's
 * attributes replaced when it names fewer than SLAPD_APPLICATION_ATTRS. Runs after upgrade_sasl. *changes_r: how many of these it
 * did. Returns IX_OK or an ix_err code with error_r. */
int upgrade_applications(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings administrative roles (slapd_role_acl) to a directory made before them: ou=Roles with its three role entries
 * when missing, and the role access rules before the password rule. *changes_r: how many of these it did. Returns
 * IX_OK or an ix_err code with error_r. */
int upgrade_roles(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings the address book's person details (docs/directory.md "People in the address book") to a directory made
 * before them: the dynlist attribute set that computes directReports (SLAPD_DIRECT_REPORTS_ATTRSET) and, when
 * missing, the access rules that keep hidden recipients out of lists' member and people's manager values
 * (slapd_hidden_value_acl) right before the application rules, our gate and browse modules (SLAPD_GATE_MODULE,
 * SLAPD_BROWSE_MODULE, effective from the next start), and the limits that let users page through the whole address book (SLAPD_USER_LIMITS). The attribute types and the class come from
 * upgrade_schema; the application rule's longer attribute list from upgrade_applications. Runs after both.
 * *changes_r: how many of these it did. Returns IX_OK or an ix_err code with error_r. */
int upgrade_address_book(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings POSIX accounts and groups (docs/directory.md "POSIX accounts and groups") to a directory made before them:
 * the RFC 2307 schema with posixGroup auxiliary (slapd_nis_schema) when cn=schema,cn=config has no nis schema, and
 * the index of uidNumber and gidNumber (SLAPD_POSIX_INDEX). The classes of the ID range come from upgrade_schema.
 * Runs before upgrade_applications, whose rule names the POSIX attributes.
 * *changes_r: how many of these it did. Returns IX_OK or an ix_err code with error_r. */
int upgrade_posix(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

/* Brings the indexes of a directory made before to what init makes now (slapd indexes the entries already there by
 * itself): adds the index of what sync sources look their recipients up by (SLAPD_SYNC_INDEX: ixSyncedFrom,
 * ixSyncAnchor, ixSyncRemoteDn; docs/sync.md) and replaces the old index of names and addresses
 * (SLAPD_OLD_NAME_INDEX, whose substrings of ixProxyAddresses and ixNickname go) by SLAPD_NAME_INDEX and SLAPD_ADDRESS_INDEX
 * (docs/directory.md "Indexes"). *changes_r: how many of these it did. Returns IX_OK or an ix_err code with error_r. */
int upgrade_index(const struct config *cfg, unsigned *changes_r, struct buf *error_r);

#endif
