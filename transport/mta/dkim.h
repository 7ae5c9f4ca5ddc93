/* dkim.h - DKIM (RFC 6376) for mail that leaves the organisation: an Ed25519 (RFC 8463) and an RSA-SHA256 signature
 * per message (OpenSSL), with the keys `interchange domain dkim` makes, their files and DNS records. */
#ifndef IX_DKIM_H
#define IX_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/config.h"
#include "directory/dir.h"

/* Size of the RSA keys made. */
#define DKIM_RSA_BITS 2048
/* The keys' folder in the data folder: DKIM_DIR/DOMAIN/SELECTOR.pem, folders 0700 and files 0600 (the service
 * user's alone). */
#define DKIM_DIR "dkim"
/* Largest key file read. */
#define DKIM_KEY_FILE_MAX 16384
/* Most keys one message is signed with (a server has one per algorithm for a domain), and most selectors of one
 * domain (the organisation's servers' together). */
#define DKIM_KEYS_MAX 4
#define DKIM_SELECTORS_MAX 64

enum dkim_alg { DKIM_ALG_ED25519, DKIM_ALG_RSA };

/* "ed25519" or "rsa": the k= tag of the record, and the ALGORITHM of an ixDkimSelector value "ALGORITHM:SELECTOR". */
const char *dkim_alg_name(enum dkim_alg alg);

/* Makes a private key of alg; appends it to pem_r as PKCS#8 PEM. Returns IX_OK or IX_EIO with error_r. */
int dkim_key_generate(enum dkim_alg alg, struct buf *pem_r, struct buf *error_r);
/* Appends the DNS TXT record value for the private key pem (NUL-terminated) to record_r: "v=DKIM1; k=ed25519;
 * p=BASE64" (the raw public key, RFC 8463) or "v=DKIM1; k=rsa; p=BASE64" (SubjectPublicKeyInfo DER). *alg_r (may be
 * NULL) gets the key's algorithm. Returns IX_OK or IX_EINVAL (not an Ed25519 or RSA private key). */
int dkim_key_record(const char *pem, struct buf *record_r, enum dkim_alg *alg_r, struct buf *error_r);
/* The path of a selector's key file (allocated): DATA/dkim/DOMAIN/SELECTOR.pem. */
char *dkim_key_path(const struct config *cfg, const char *domain, const char *selector);
/* Splits an ixDkimSelector value "ALGORITHM:SELECTOR" (len bytes): *alg_r, and the selector copied into sel
 * (sel_size bytes). Returns IX_OK or IX_EINVAL (unknown algorithm, a selector that is not a DNS label list). */
int dkim_selector_parse(const char *value, size_t len, enum dkim_alg *alg_r, char *sel, size_t sel_size);

struct dkim_signer;
/* The signer (and verifier): the keys it has parsed, private and public, kept for the next messages (shared by every
 * thread). Returns IX_OK. */
int dkim_signer_create(struct dkim_signer **s_r, struct buf *error_r);
/* Frees; sets *s to NULL. NULL is ignored. */
void dkim_signer_destroy(struct dkim_signer **s);

struct dkim_key {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	const char *pem;      /* the private key, NUL-terminated */
	enum dkim_alg alg;
};
/* Largest signature made or checked (an RSA key of up to 4096 bits). */
#define DKIM_SIG_MAX 512

/* The pieces of signing and verifying, shared with ARC (arc.h). */
/* Appends the relaxed canonical form (RFC 6376 3.4.2) of a header field (name and raw value, as dsn_each_field gives
 * them) to out: lower-case name, the value unfolded, runs of whitespace made one space, none at its ends, then CRLF. */
void dkim_canon_header(struct buf *out, const char *name, size_t nlen, const char *val, size_t vlen);
/* Appends to data the relaxed canonical form of the header fields of msg named by the h= list h[0..hlen) (names
 * separated by colons, whitespace ignored): each name takes the next instance from the bottom up not taken yet, a
 * name with none left adds nothing (RFC 6376 5.4.2). */
void dkim_canon_fields(const char *msg, size_t len, const char *h, size_t hlen, struct buf *data);
/* The SHA-256 of a body in relaxed canonical form (RFC 6376 3.4.4): whitespace runs made one space, none at line
 * ends, no empty lines at the end, CRLF line ends; an empty body is empty. */
void dkim_body_hash(const char *body, size_t len, unsigned char out[32]);
/* Appends the value of tag name of the tag list list[0..len) (RFC 6376 3.2: "a=b; c=d"), whitespace removed, to
 * out. Returns false when the list has no such tag. */
bool dkim_tag(const char *list, size_t len, const char *name, struct buf *out);
/* Signs data[0..len) with k: RSA-SHA256, or Ed25519 over the data's SHA-256 (RFC 8463 3); the signature into sig
 * (DKIM_SIG_MAX bytes), its length into *siglen_r. Returns IX_OK or IX_EINVAL (a key that is not a private key of
 * its algorithm) with error_r. Any thread. */
int dkim_sign_data(struct dkim_signer *s, const struct dkim_key *k, const char *data, size_t len, unsigned char *sig,
		   size_t *siglen_r, struct buf *error_r);
/* Verifies sig[0..siglen) over data[0..len) for alg ("rsa-sha256" or "ed25519-sha256") with the public key of the
 * DNS key record (its k= and p= tags, RFC 6376 3.6.1), the parsed key kept in s's cache. Returns IX_OK, or IX_EINVAL with why appended to why_r (an
 * unknown algorithm, a revoked or unusable key, a signature that does not verify). */
int dkim_verify_data(struct dkim_signer *s, const char *record, const char *alg, const char *data, size_t len,
		     const unsigned char *sig, size_t siglen, struct buf *why_r);
/* Appends the field "NAME: VALUE" followed by the base64 of sig (VALUE ends with "b="), folded, CRLF-ended. */
void dkim_append_field(struct buf *out, const char *name, const char *value, const unsigned char *sig, size_t siglen);
/* Signs msg with k into a field like DKIM-Signature called field, whose tag list starts with lead ("v=1" for DKIM,
 * "i=N" for an ARC-Message-Signature), then a=, c=relaxed/relaxed, d=, s=, t=, h= (RFC 6376 5.4.1's fields that are
 * present, each instance, and From once more than it occurs), bh= and b=; appends it to fields_r. Returns IX_OK
 * or IX_EINVAL with error_r. */
int dkim_sign_field(struct dkim_signer *s, const struct dkim_key *k, const char *field, const char *lead,
		    const char *msg, size_t len, struct buf *fields_r, struct buf *error_r);

/* Signs the message msg[0..len) (CRLF line ends) once with each of keys[0..n), relaxed/relaxed, the usual header
 * fields (RFC 6376 5.4.1) and From once more than it occurs (so no From can be added after signing). Appends the
 * DKIM-Signature fields (each CRLF-ended, folded) to fields_r, to go before the message. Any thread. Returns IX_OK or
 * IX_EINVAL (a key that is not a private key of its algorithm) with error_r; fields_r then holds the signatures made
 * before the failure. */
int dkim_sign_message(struct dkim_signer *s, const struct dkim_key *keys, size_t n, const char *msg, size_t len,
		      struct buf *fields_r, struct buf *error_r);

/* The keys of one domain on this server. */
struct dkim_keyset {
	char domain[256];
	struct dkim_key keys[DKIM_KEYS_MAX];
	char selectors[DKIM_KEYS_MAX][128];
	char *pems[DKIM_KEYS_MAX];
	size_t n;
};
/* Loads into ks_r the keys of domain (or of its nearest parent domain) among the accepted domains with DKIM selectors
 * in the directory (dir_domain_dkim), each selector whose key file is in cfg's data folder (each server has keys of
 * its own; the others' are skipped). Returns IX_OK; IX_ENOTFOUND when no such domain has selectors; another code
 * with error_r when no key of the domain is on this server or a selector is malformed. Free ks_r with
 * dkim_keyset_free whatever the result. */
int dkim_keyset_load(struct dir *dir, const struct config *cfg, const char *domain, struct dkim_keyset *ks_r,
		     struct buf *error_r);
void dkim_keyset_free(struct dkim_keyset *ks);

/* Signs a message leaving the organisation: the domain is its header From's (or the nearest parent domain of it)
 * among the accepted domains with DKIM selectors in the directory (dir_domain_dkim), with each selector whose key is
 * in cfg's data folder (each server has keys of its own; the others' are skipped). Appends the DKIM-Signature fields
 * to fields_r. Returns IX_OK; IX_ENOTFOUND when there is nothing to sign with (not one of our domains, no selectors:
 * the message goes unsigned); another code with error_r when no key of the domain is on this server or one is
 * unusable. */
int dkim_sign_outgoing(struct dkim_signer *s, struct dir *dir, const struct config *cfg, const char *msg, size_t len,
		       struct buf *fields_r, struct buf *error_r);

#endif
