/* arc.h - ARC (RFC 8617): the chain of sets (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results) of mail
 * from outside verified on the way in, and a set of ours sealed on mail the organisation forwards out; over the
 * canonicalization and signatures of dkim.h (OpenSSL). */
#ifndef IX_ARC_H
#define IX_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/config.h"
#include "directory/dir.h"
#include "transport/mta/dkim.h"

/* Most sets a chain may have (RFC 8617 4.2.1). */
#define ARC_INSTANCES_MAX 50

enum arc_result {
	ARC_NONE,      /* no ARC set */
	ARC_PASS,      /* every seal and the latest message signature verify, cv= as it must be */
	ARC_FAIL,      /* anything else: a broken structure, a seal or the latest signature that does not verify */
	ARC_TEMPERROR, /* a key could not be had now (DNS) */
};

/* What the verifier asks for a key: the TXT record of name (SELECTOR._domainkey.DOMAIN) appended to txt_r. Returns
 * IX_OK, IX_ENOTFOUND (no such record) or IX_EAGAIN (no answer now). */
typedef int arc_key_fn(void *ctx, const char *name, struct buf *txt_r);

struct arc_verdict {
	enum arc_result result;
	unsigned instances; /* sets in the chain (the highest i=) */
	char sealer[256];   /* d= of the latest ARC-Seal (ARC_PASS) */
	struct buf sealers; /* every set's sealing domain, oldest first, comma-separated (ARC_PASS) */
	char why[200];      /* ARC_FAIL / ARC_TEMPERROR: what failed */
};
/* Verifies the ARC chain of msg[0..len) (CRLF line ends; RFC 8617 5.2): the structure (i=1..N, one field of each
 * kind per set, N at most ARC_INSTANCES_MAX), cv= (none for i=1, pass after it, fail nowhere), the latest
 * ARC-Message-Signature and every ARC-Seal, with keys from key_fn (parsed keys kept by s). Fills v_r; free it with
 * arc_verdict_free. Any thread. */
void arc_verify(struct dkim_signer *s, const char *msg, size_t len, arc_key_fn *key_fn, void *ctx,
		struct arc_verdict *v_r);
void arc_verdict_free(struct arc_verdict *v);
/* Appends the Authentication-Results method for v: "arc=pass (i=N, sealed by D1, D2) smtp.remote-ip=IP",
 * "arc=fail (WHY) smtp.remote-ip=IP", "arc=none". */
void arc_result_write(const struct arc_verdict *v, const char *client_ip, struct buf *out);
/* True when domain (case-insensitive) is in list, a comma-separated list of domains (spaces ignored). */
bool arc_trusted(const char *list, const char *domain);

/* Seals msg[0..len) with the RSA key k (RFC 8617 5.1: ARC-Seal and ARC-Message-Signature are rsa-sha256): the next
 * instance, its ARC-Authentication-Results the value of the message's Authentication-Results field of authserv_id,
 * cv= from that field's arc= result (none for the first set, pass, or fail: the seal then covers its own set only).
 * Appends the three fields (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results), to go before the message,
 * to fields_r. Returns IX_OK; IX_ENOTFOUND when msg has no Authentication-Results field of authserv_id (not mail
 * we checked on its way in); IX_ELIMIT when the chain is full; IX_EINVAL with error_r (an unusable key). */
int arc_seal(struct dkim_signer *s, const struct dkim_key *k, const char *authserv_id, const char *msg, size_t len,
	     struct buf *fields_r, struct buf *error_r);
/* Seals a message leaving the organisation that came in from outside (it holds the Authentication-Results field
 * of the organisation's authserv-id, cfg's domain): with the RSA key of that domain (or its nearest parent with keys)
 * on this server (dkim_keyset_load). Returns as arc_seal; IX_ENOTFOUND also when the domain has no selectors, and
 * IX_EIO with error_r when no RSA key of it is here. */
int arc_seal_outgoing(struct dkim_signer *s, struct dir *dir, const struct config *cfg, const char *msg, size_t len,
		      struct buf *fields_r, struct buf *error_r);

#endif
