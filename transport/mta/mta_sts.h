/* mta_sts.h - MTA-STS (RFC 8461): a domain's policy, announced by its _mta-sts TXT record and fetched over HTTPS from
 * mta-sts.DOMAIN, parsed, cached for its max_age, and the MX hosts it allows. */
#ifndef IX_MTA_STS_H
#define IX_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "common/buf.h"

/* Largest policy document taken (RFC 8461 3.3: 64 KiB), most mx patterns kept, longest max_age honoured (a year). */
#define MTA_STS_POLICY_MAX 65536
#define MTA_STS_MX_MAX 16
#define MTA_STS_MAX_AGE_MAX 31557600
/* Domains whose policies are kept. */
#define MTA_STS_CACHE 256

enum mta_sts_mode {
	MTA_STS_NONE = 0, /* no policy (or mode none) */
	MTA_STS_TESTING,  /* report only: delivered as without a policy */
	MTA_STS_ENFORCE,  /* only to the MX hosts it names, over TLS with a certificate valid for the host */
};

struct mta_sts_policy {
	enum mta_sts_mode mode;
	char mx[MTA_STS_MX_MAX][256]; /* patterns: a host name, or "*." and a parent (one label) */
	size_t nmx;
	unsigned long max_age;
	char id[33]; /* the TXT record's id it was fetched for */
};

/* Parses a policy document (text[0..len), CRLF or LF lines, RFC 8461 3.2): version STSv1, mode, max_age and mx
 * required. Returns true with p_r filled, or false with why in error_r. */
bool mta_sts_parse(const char *text, size_t len, struct mta_sts_policy *p_r, struct buf *error_r);
/* Does host (an MX host name) match one of p's mx patterns (case-insensitive; "*.example.com" matches one label)? */
bool mta_sts_mx_allowed(const struct mta_sts_policy *p, const char *host);

struct mta_sts;
struct dns;
/* A policy cache asking resolver for the TXT records and the HTTPS server's address (both must outlive it). */
struct mta_sts *mta_sts_create(struct dns *resolver);
void mta_sts_destroy(struct mta_sts **s);
/* The policy of domain (p_r's mode MTA_STS_NONE when there is none): the cached one while its TXT id is unchanged
 * and its max_age runs, else fetched from https://mta-sts.DOMAIN/.well-known/mta-sts.txt, the server's certificate
 * checked against the system's CAs and those of ca_file (NULL or "": none more). A failed fetch keeps an unexpired
 * cached policy, else there is none (RFC 8461 5); what went wrong is in error_r. Thread-safe; blocking. */
void mta_sts_get(struct mta_sts *s, const char *domain, const char *ca_file, struct mta_sts_policy *p_r,
		 struct buf *error_r);

#endif
