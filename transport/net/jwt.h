/* jwt.h - JSON Web Tokens (RFC 7519) signed with RS256, ES256 or EdDSA, checked against a JSON Web Key Set (RFC 7517)
 * with OpenSSL and jansson: parsing, the signature, the registered claims. Pure functions of their input. */
#ifndef IX_JWT_H
#define IX_JWT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "common/buf.h"

/* Longest token taken (a bearer token with many claims is a few kilobytes). */
#define JWT_TOKEN_MAX 8192
/* Longest JWKS document taken, and most keys kept from one. */
#define JWKS_DOC_MAX 262144
#define JWKS_KEYS_MAX 64

struct jwt;
struct jwks;

/* Parses a compact JWS (header.payload.signature, base64url). Only what the signature check needs is decoded: the
 * header's alg (RS256, ES256, EdDSA; anything else, "none" included, is refused) and kid, and the payload's claims.
 * Returns IX_OK (*jwt_r: free with jwt_free) or IX_EINVAL with error_r. */
int jwt_parse(const char *token, size_t len, struct jwt **jwt_r, struct buf *error_r);
void jwt_free(struct jwt **jwt);
/* The header's kid, or NULL. Valid while jwt lives. */
const char *jwt_kid(const struct jwt *jwt);
/* The string claim name of the payload, or NULL (absent or not a string). Valid while jwt lives. */
const char *jwt_claim(const struct jwt *jwt, const char *name);

/* Parses a JWKS ({"keys":[...]}): RSA (n, e), EC P-256 (x, y) and OKP Ed25519 (x) keys; keys of other types,
 * curves, or with "use" other than "sig", are skipped. Returns IX_OK (*keys_r: free with jwks_free; it may hold no
 * key) or IX_EINVAL with error_r (not JSON, no "keys" array). */
int jwks_parse(const char *doc, size_t len, struct jwks **keys_r, struct buf *error_r);
void jwks_free(struct jwks **keys);
/* Keys held. */
size_t jwks_count(const struct jwks *keys);

/* Checks jwt's signature with the key of keys its kid names (without a kid: every key of a fitting type is tried).
 * Returns IX_OK; IX_ENOTFOUND when no key has that kid (the set may be stale); IX_EAUTH when the signature is
 * wrong or the key does not fit the algorithm. error_r says which. */
int jwt_verify_signature(const struct jwt *jwt, const struct jwks *keys, struct buf *error_r);
/* Checks the registered claims: iss equals issuer, aud equals audience or (an array) holds it, exp is later than
 * now - skew (required), nbf and iat (when present) no later than now + skew. Returns IX_OK or IX_EAUTH with the
 * reason in error_r. */
int jwt_check_claims(const struct jwt *jwt, const char *issuer, const char *audience, uint64_t now, unsigned skew,
		     struct buf *error_r);

#endif
