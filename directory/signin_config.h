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
/* Longest issuer, key location, audience, claim name we store. */
#define SIGNIN_VALUE_MAX 1024

/* Adds issuer (the iss of its tokens) with keys (a JWKS file path or an https:// URL; the caller checks that it
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

#endif
