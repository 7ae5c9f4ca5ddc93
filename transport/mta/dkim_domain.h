/* dkim_domain.h - a domain's DKIM keys as the organisation keeps them: selectors in the directory (ixDkimSelector,
 * "ALGORITHM:SELECTOR", every server's), private keys in each server's data folder; made and rotated per server, with
 * the DNS TXT records to publish. Used by `interchange domain dkim`, `interchange dns` and the REST API. */
#ifndef IX_DKIM_DOMAIN_H
#define IX_DKIM_DOMAIN_H

#include "common/buf.h"
#include "common/config.h"
#include "transport/mta/dkim.h"

#include <stdbool.h>

struct prov;

/* A TXT record's strings hold at most 255 bytes (RFC 1035 3.3.14): longer values are written as several. */
#define DKIM_TXT_STRING_MAX 255

struct dkim_domain_key {
	char value[192]; /* as in the directory: ALGORITHM:SELECTOR */
	char selector[128];
	enum dkim_alg alg;
	bool here;    /* this server holds the private key (and signs with it) */
	char *record; /* the TXT record's value ("v=DKIM1; k=...; p=..."), NULL when the key is another server's */
};

/* The keys named by selectors (ixDkimSelector values, one a line) with their records from cfg's key files, into
 * *keys_r (free with dkim_domain_keys_free). IX_EINVAL with a sentence for a value that is not ALGORITHM:SELECTOR. */
int dkim_domain_read(const struct config *cfg, const char *domain, const char *selectors,
		     struct dkim_domain_key **keys_r, size_t *count_r, struct buf *error_r);
void dkim_domain_keys_free(struct dkim_domain_key **keys, size_t count);
/* Appends the zone-file line of each key: NAME. IN TXT "..." ["..."], or for another server's key a comment line
 * saying where its record is printed. */
void dkim_domain_zone(struct buf *out, const char *domain, const struct dkim_domain_key *keys, size_t count);
/* dkim_domain_read and dkim_domain_zone of selectors. */
int dkim_domain_records(const struct config *cfg, const char *domain, const char *selectors, struct buf *out,
			struct buf *error_r);
/* Makes this server's keys of domain (an Ed25519 and an RSA-2048 key, selectors named after the time) when it has
 * none, or when rotate, new ones that replace this server's (whose files are removed once the directory names the
 * new ones); the other servers' selectors stay. *made_r: keys were made; *replaced_r: this server had keys before.
 * Its selectors then (one a line) into mine_r, the other servers' into others_r. As the caller in p (the directory
 * decides who may); IX_ENOTFOUND when domain is not one of the organisation's. */
int dkim_domain_ensure(const struct config *cfg, struct prov *p, const char *domain, bool rotate, bool *made_r,
		       bool *replaced_r, struct buf *mine_r, struct buf *others_r, struct buf *error_r);

#endif
