/* signin.h - a daemon's sign-ins without a password, over its directory replica (the ix_sasl_verifiers of its SASL
 * sessions): bearer tokens of the OAuth issuers configured in the directory, mapped to users by their claim, and
 * Kerberos principals (GSSAPI) of the organisation's realm or stored on a user. */
#ifndef IX_SIGNIN_H
#define IX_SIGNIN_H

#include "directory/dir.h"
#include "transport/net/sasl.h"

struct signin;

/* For the replica dir (must outlive it); keytab is the path of the Kerberos keytab (GSSAPI is offered while it
 * exists; copied). */
struct signin *signin_create(struct dir *dir, const char *keytab);
void signin_destroy(struct signin **si);
/* The verifiers to hand to ix_sasl_set_verifiers and ix_sasl_offered; valid while si lives. */
const struct ix_sasl_verifiers *signin_verifiers(struct signin *si);

/* The user a token's claim value (an address, a login, or a principal such as an upn) names: fills *r (release with
 * dir_recipient_release) and returns IX_OK, or IX_ENOTFOUND (nobody, or not a mailbox user). */
int signin_find_user(struct dir *dir, const char *name, struct dir_recipient *r);

/* The user a Kerberos principal names: name@REALM with REALM the organisation's realm (ixKerberosRealm; default_realm
 * is the realm of a principal given without one, as Cyrus gives those of the default realm) is the user with login
 * name; any other principal is the user whose ixUserPrincipalName it is. Returns IX_OK with *r filled, IX_ENOTFOUND
 * (error_r says why). */
int signin_principal_user(struct dir *dir, const char *principal, const char *default_realm, struct dir_recipient *r,
			  struct buf *error_r);

/* krb5.conf's default_realm (a new string), or NULL. */
char *signin_default_realm(void);

#endif
