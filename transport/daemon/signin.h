/* signin.h - a daemon's sign-ins without a password, over its directory replica (the ix_sasl_verifiers of its SASL
 * sessions): bearer tokens of the OAuth issuers configured in the directory, mapped to users by their claim. */
#ifndef IX_SIGNIN_H
#define IX_SIGNIN_H

#include "directory/dir.h"
#include "transport/net/sasl.h"

struct signin;

/* For the replica dir (must outlive it). */
struct signin *signin_create(struct dir *dir);
void signin_destroy(struct signin **si);
/* The verifiers to hand to ix_sasl_set_verifiers and ix_sasl_offered; valid while si lives. */
const struct ix_sasl_verifiers *signin_verifiers(struct signin *si);

/* The user a token's claim value (an address, a login, or a principal such as an upn) names: fills *r (release with
 * dir_recipient_release) and returns IX_OK, or IX_ENOTFOUND (nobody, or not a mailbox user). */
int signin_find_user(struct dir *dir, const char *name, struct dir_recipient *r);

#endif
