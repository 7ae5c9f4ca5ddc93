/* bearer.h - the client messages of SASL OAUTHBEARER (RFC 7628 section 3.1) and XOAUTH2: a pure parser, shared by
 * our daemons' SASL (sasl.c) and slapd's bearer plugin (ixoauth.c). */
#ifndef IX_BEARER_H
#define IX_BEARER_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"

/* Parses msg (len bytes): OAUTHBEARER's gs2 header ("n," or "y,", the authzid "a=" with "=2C" for ',' and "=3D" for
 * '=', no channel binding) then key=value pairs each ended by 0x01 and a closing 0x01; XOAUTH2's "user=" and "auth="
 * pairs likewise (xoauth2 true). The "auth" pair must be "Bearer TOKEN" (any case). Returns IX_OK with the authzid
 * appended to authzid_r ("" when none; at most authzid_max bytes, no NUL) and the token in *token_r (malloc'd), or
 * IX_EINVAL (nothing set in *token_r). */
int bearer_parse(bool xoauth2, const char *msg, size_t len, size_t authzid_max, struct buf *authzid_r, char **token_r);

#endif
