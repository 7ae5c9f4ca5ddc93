/* oauth.h - bearer tokens of the configured OAuth 2.0 / OpenID Connect issuers: each issuer's keys (a JWKS file, or
 * its jwks_uri over HTTPS) cached and fetched again when a token names a key id not seen, the token checked (jwt.h)
 * and its identifying claim returned. Thread-safe. */
#ifndef IX_OAUTH_H
#define IX_OAUTH_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/buf.h"

/* Clock skew allowed on exp, nbf and iat. */
#define OAUTH_SKEW_SECONDS 60
/* A fetched key set is used this long before it is fetched again. */
#define OAUTH_KEYS_TTL_SECONDS 3600
/* An unknown key id fetches a URL's key set again at most this often (a file is read again whenever it changed). */
#define OAUTH_REFETCH_MIN_SECONDS 10
/* How long a fetch over HTTPS may take. */
#define OAUTH_FETCH_TIMEOUT_SECONDS 5
/* The claim naming the user when an issuer says none. */
#define OAUTH_DEFAULT_CLAIM "email"

/* An issuer as configured (interchange oauth add). */
struct oauth_issuer {
	const char *issuer;   /* the iss its tokens carry */
	const char *jwks;     /* a file path, or an https:// URL */
	const char *audience; /* the aud its tokens must carry */
	const char *claim;    /* the claim naming the user (NULL: OAUTH_DEFAULT_CLAIM) */
};

struct oauth_keys;

/* An empty cache of key sets. */
struct oauth_keys *oauth_keys_create(void);
void oauth_keys_destroy(struct oauth_keys **keys);

/* Checks token (len bytes) against the issuer among issuers (count) its iss names: signature, iss, aud, exp, nbf
 * (now: seconds since the epoch). Returns IX_OK with the issuer's claim in *subject_r (malloc'd) and that issuer's
 * index in *issuer_r; IX_EAUTH (not a token of a configured issuer, bad signature, unknown key, expired, wrong
 * audience, no such claim) with the reason in error_r; IX_EUNAVAIL (the keys cannot be had) with error_r. May block
 * fetching keys. *issuer_r is set whenever the token named a configured issuer (else -1). */
int oauth_verify(struct oauth_keys *keys, const struct oauth_issuer *issuers, size_t count, const char *token,
		 size_t len, uint64_t now, char **subject_r, int *issuer_r, struct buf *error_r);

/* Appends RFC 7628's JSON status of a refused token (section 3.2.2): "invalid_token", with the discovery document
 * of issuer (NULL: none said). */
void oauth_status_json(const char *issuer, struct buf *out);

/* Fetches an https:// URL (the server's certificate checked against the system's trust store, or SSL_CERT_FILE, and
 * also the CAs of ca_file when not NULL, and its name against the host) into body_r (at most max bytes), connecting
 * to addr (a numeric address; NULL: the URL's host resolved by the system). Returns IX_OK, IX_EINVAL (not such a
 * URL), IX_EUNAVAIL (no answer, not 200, TLS failure) or IX_ELIMIT, with error_r. Blocking. */
int oauth_https_get(const char *url, const char *ca_file, const char *addr, size_t max, struct buf *body_r,
		    struct buf *error_r);

#endif
