/* signin_config.h - the sign-in configuration kept in the directory (ou=Configuration), as the interchange command
 * writes it: the OAuth issuers whose bearer tokens sign users in, the Kerberos realm of the users. */
#ifndef IX_SIGNIN_CONFIG_H
#define IX_SIGNIN_CONFIG_H

#include <ldap.h>
#include "common/buf.h"
#include "common/config.h"

/* Where issuers live: cn=ISSUER,SIGNIN_ISSUERS_OU,<suffix> (objectClass ixOAuthIssuer). */
#define SIGNIN_ISSUERS_OU "ou=OAuth Issuers,ou=Configuration"
/* The Kerberos settings entry: SIGNIN_KERBEROS_RDN,<suffix> (objectClass ixKerberos). */
#define SIGNIN_KERBEROS_RDN "cn=Kerberos,ou=Configuration"
/* The Kerberos keytab of this server, in the data folder (interchange kerberos keytab): KRB5_KTNAME of the services
 * and of slapd. */
#define SIGNIN_KEYTAB "kerberos/keytab"
/* Longest issuer, key location, audience, claim name we store. */
#define SIGNIN_VALUE_MAX 1024

/* Adds issuer (the iss of its tokens), and has slapd map the claim of a token bound with (OAUTHBEARER, XOAUTH2:
 * transport/net/ixoauth.c) to a recipient (signin_bearer_regexp), with keys (a JWKS file path or an https:// URL; the caller checks that it
 * serves keys), the audience its tokens must name and the claim naming the user (NULL: the default, email), or
 * replaces those of an issuer already there. ld is the administrator's. Returns IX_OK, IX_EINVAL (a value empty,
 * too long, with control characters; a claim name with characters other than letters, digits, _ - . :), or the
 * directory's error, with error_r. *replaced_r says whether it was there. */
int signin_oauth_add(LDAP *ld, const struct config *cfg, const char *issuer, const char *keys, const char *audience,
		     const char *claim, int *replaced_r, struct buf *error_r);
/* Deletes issuer. IX_OK, IX_ENOTFOUND (no such issuer), or the directory's error. */
int signin_oauth_del(LDAP *ld, const struct config *cfg, const char *issuer, struct buf *error_r);
/* Appends a table of the issuers (issuer, keys, audience, claim) to out. */
int signin_oauth_list(LDAP *ld, const struct config *cfg, struct buf *out, struct buf *error_r);

/* Sets the organisation's Kerberos realm (ixKerberosRealm of SIGNIN_KERBEROS_RDN, made when missing): principals
 * user@REALM sign in as the user with login user. And has slapd map GSSAPI binds the same way (cn=config: the
 * authz-regexps, replaced, and olcSaslHost, the host name whose ldap/ principal it takes; names of default_realm,
 * krb5.conf's, which Cyrus gives without their realm, by login only when it is realm), giving an identity that maps
 * to no user no access at all. realm: letters, digits, '.', '-'. Returns IX_OK, IX_EINVAL, or the directory's
 * error. */
int signin_kerberos_realm(LDAP *ld, const struct config *cfg, const char *realm, const char *default_realm,
			  struct buf *error_r);
/* The realm set (copied into realm_r). IX_OK or IX_ENOTFOUND. */
int signin_kerberos_realm_get(LDAP *ld, const struct config *cfg, struct buf *realm_r, struct buf *error_r);
/* Gives the user with login a Kerberos principal of another realm (an Active Directory userPrincipalName), or takes
 * it away (principal NULL). Returns IX_OK, IX_ENOTFOUND (no such user), IX_EINVAL (not user@REALM), or the
 * directory's error (IX_EEXIST: another user has it). */
int signin_user_principal(LDAP *ld, const struct config *cfg, const char *login, const char *principal,
			  struct buf *error_r);

/* The olcAuthzRegexp values (quoted, without an index) that map the identity slapd gives a GSSAPI bind,
 * uid=USER@REALM,cn=gssapi,cn=auth (uid=USER for krb5.conf's default realm), to our users: n 0 the realm's users by
 * login, 1 the default realm's, 2 any principal by ixUserPrincipalName. A new string, or NULL for any other n. */
char *signin_gssapi_regexp(const struct config *cfg, const char *realm, int n);

/* The mechanisms of slapd's bearer plugin as its authentication identities name them (a regular expression). */
#define SIGNIN_BEARER_MECHS "(oauthbearer|xoauth2)"
/* The olcAuthzRegexp values (quoted, without an index) that map uid=CLAIM,cn=MECH,cn=auth of a bearer-token bind to
 * the recipient: n 0 an address (mail, a proxy address, or ixUserPrincipalName), 1 a login. A new string, or NULL
 * for any other n. */
char *signin_bearer_regexp(const struct config *cfg, int n);

#endif
