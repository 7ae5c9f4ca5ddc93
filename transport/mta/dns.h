/* dns.h - the one DNS resolver of the mail path (MX, A/AAAA, TXT, TLSA for the MTA and the checks on the way in):
 * libunbound, validating DNSSEC against the configured trust anchors, asking the server of dns.resolver. */
#ifndef IX_DNS_H
#define IX_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"

/* Record types asked for. */
#define DNS_T_A 1
#define DNS_T_MX 15
#define DNS_T_TXT 16
#define DNS_T_AAAA 28
#define DNS_T_SPF 99
#define DNS_T_PTR 12
#define DNS_T_TLSA 52
/* How long one query may take by default (the setting dns.timeout), and the slices it is waited for in (another
 * thread may deliver its answer meanwhile). A query without an answer by then is DNS_TEMP, "no answer from ...". */
#define DNS_TIMEOUT_MS 10000
#define DNS_POLL_MS 20
/* Longest name in text form (with its terminating NUL). */
#define DNS_NAME_MAX 1025

struct dns;

/* A resolver asking the name servers of /etc/resolv.conf, with the trust anchor DNS_ROOT_KEY when that file exists.
 * Never fails (a resolver that cannot start answers DNS_TEMP). Thread-safe: every call may come from any thread. */
struct dns *dns_create(void);
/* Points d at server ("IP[@PORT]"; "" or NULL: /etc/resolv.conf's) with the trust anchors of the file
 * trust_anchor ("" or NULL: DNS_ROOT_KEY when present): a new resolver (empty cache) when either changed, queries
 * under way finishing with the old. Returns IX_OK, or IX_EINVAL with error_r (the old resolver stays). */
int dns_configure(struct dns *d, const char *server, const char *trust_anchor, struct buf *error_r);
/* dns_configure with the settings dns.resolver and dns.trust_anchor of s, and dns_set_timeout with dns.timeout; a
 * refused configuration is logged (the old resolver stays). For the daemons' settings watchers. */
struct settings;
void dns_apply_settings(struct dns *d, const struct settings *s);
/* The time one query may take from now on (0: DNS_TIMEOUT_MS). */
void dns_set_timeout(struct dns *d, unsigned ms);
/* Frees; sets *d to NULL. NULL is ignored. */
void dns_destroy(struct dns **d);

enum dns_status {
	DNS_OK,       /* records in the answer */
	DNS_NODATA,   /* the name exists, not with this type */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_TEMP,     /* no answer now (SERVFAIL, timeout, the resolver could not start): try again later */
	DNS_BOGUS,    /* DNSSEC validation failed: the answer is not to be used (why in the answer) */
};

struct dns_answer {
	enum dns_status status;
	bool secure;                 /* validated by DNSSEC (data, or its absence, proven) */
	unsigned ttl;                /* of the records (0 when none) */
	size_t n;                    /* records */
	const unsigned char **rdata; /* n records' data, wire format (names uncompressed) */
	const size_t *rdlen;
	char why[160]; /* DNS_TEMP / DNS_BOGUS: what went wrong */
	void *priv;    /* the resolver's result */
};

/* Asks for name's records of type; fills a_r (free with dns_answer_free whatever the status). */
void dns_query(struct dns *d, const char *name, int type, struct dns_answer *a_r);
void dns_answer_free(struct dns_answer *a);

/* A name in wire format (rd[0..len)) as text without the final dot, into out (size bytes). Returns its length,
 * or -1 when it is malformed or does not fit. */
int dns_name_text(const unsigned char *rd, size_t len, char *out, size_t size);
/* The strings of one TXT record (rd[0..len)) joined, appended to out. */
void dns_txt_join(const unsigned char *rd, size_t len, struct buf *out);

/* The mail exchangers of domain, lowest preference first; when the domain has no MX, the domain itself
 * (RFC 5321 5.1). Fills hosts (malloc'd, free each) and returns their count, or 0 when the domain does not exist or
 * cannot be resolved now (*temp_r true: a DNS failure or a bogus answer, why appended to why_r when not NULL).
 * *secure_r (may be NULL): the MX answer was DNSSEC-validated. */
size_t dns_mx(struct dns *d, const char *domain, char **hosts, size_t max, bool *temp_r, bool *secure_r,
	      struct buf *why_r);

#endif
