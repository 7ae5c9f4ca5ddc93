/* ldap_util.h - the one boundary where libldap meets Interchange: connecting to our slapd, escaping user input
 * for filters and DNs (RFC 4515, RFC 4514), and turning LDAP result codes into ix_err codes and sentences. */
#ifndef IX_LDAP_UTIL_H
#define IX_LDAP_UTIL_H

#include <ldap.h>
#include "common/buf.h"

/* ldapi URL for a socket path, percent-encoded as libldap wants it (docs/slapd-facts.md, "ldapi URLs").
 * Caller frees. */
char *ldapu_ldapi_uri(const char *socket_path);

/* Connects to uri and binds with SASL EXTERNAL (ldapi only: slapd maps our uid to the rootDN).
 * Sets protocol v3, no referrals, a network timeout. Returns IX_OK with *ld_r, or IX_EUNAVAIL / IX_EAUTH
 * with a sentence in error_r. The caller unbinds with ldap_unbind_ext_s. */
int ldapu_connect_external(const char *uri, LDAP **ld_r, struct buf *error_r);
/* Connects to uri and binds as dn with password (a simple bind). Empty passwords are refused (they would be
 * unauthenticated binds). Returns IX_OK, IX_EAUTH (wrong DN or password), or IX_EUNAVAIL. */
int ldapu_connect_simple(const char *uri, const char *dn, const char *password, LDAP **ld_r, struct buf *error_r);
/* A simple bind on an initialised connection ld (uri only names it in messages). On success *ld_r = ld; on failure
 * ld is unbound and the result is IX_EAUTH ("wrong name or password") or IX_EUNAVAIL, with error_r. */
int ldapu_bind_simple(LDAP *ld, const char *uri, const char *dn, const char *password, LDAP **ld_r,
		      struct buf *error_r);

/* Appends value to out with the filter specials * ( ) \ NUL escaped as \XX (RFC 4515). */
void ldapu_escape_filter(struct buf *out, const char *value, size_t len);
/* Appends value to out escaped for use as an RDN value (RFC 4514: , + " \ < > ; = leading # or space,
 * trailing space, NUL). */
void ldapu_escape_dn(struct buf *out, const char *value, size_t len);

/* Translates an LDAP result code to an ix_err code. */
int ldapu_err(int ldap_rc);

/* Returns the first value of attr in entry as a new string, or NULL. */
char *ldapu_get_first(LDAP *ld, LDAPMessage *entry, const char *attr);

#endif
