/* authres.h - checks on the way in: SPF (RFC 7208, libspf2), DKIM verification (RFC 6376, libopendkim) and DMARC
 * (RFC 7489, libopendmarc) of mail from outside, written as an Authentication-Results field (RFC 8601) under the
 * organisation's authserv-id, with the DMARC policy to apply; fields that claim that id and came with a message are
 * removed (RFC 8601 5). */
#ifndef IX_AUTHRES_H
#define IX_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "transport/mta/dmarcrpt.h"

/* Largest DNS answer read. */
#define AUTHRES_DNS_MAX 8192
/* Bits of the SPF resolver's cache (libspf2's cache layer: 2^bits entries). */
#define AUTHRES_SPF_CACHE_BITS 10
/* Most DKIM signatures of one message reported (each is checked, a key lookup each). */
#define AUTHRES_DKIM_MAX 8
/* DKIM key and DMARC records kept between messages (slots), for their TTL but at most AUTHRES_KEY_TTL_MAX seconds;
 * one found absent is remembered AUTHRES_KEY_ABSENT_TTL seconds. */
#define AUTHRES_KEY_CACHE 256
#define AUTHRES_KEY_TTL_MAX 3600
#define AUTHRES_KEY_ABSENT_TTL 60
/* The public suffix list (Debian's publicsuffix) that gives DMARC its organisational domains, when installed. */
#define AUTHRES_PSL "/usr/share/publicsuffix/public_suffix_list.dat"

struct authres;
/* The checker of one server: authserv_id names the organisation in the fields it writes (copied); resolver the DNS
 * resolver it asks (dns.h; the caller's, it must outlive the checker).
 * Returns IX_OK or IX_EIO (libspf2 or libopendkim cannot start) with error_r. */
struct dns;
int authres_create(const char *authserv_id, struct dns *resolver, struct authres **a_r, struct buf *error_r);
/* Frees; sets *a to NULL. NULL is ignored. */
void authres_destroy(struct authres **a);

struct authres_input {
	const char *client_ip; /* the SMTP client's address, IPv4 or IPv6 text */
	const char *helo;      /* its HELO/EHLO argument ("" when none) */
	const char *mail_from; /* MAIL FROM ("" for the null sender) */
	const char *msg;       /* the message, CRLF line ends */
	size_t len;
	const char
		*arc_trusted; /* the domains whose ARC seal overrides a DMARC failure (arc.trusted_sealers), or NULL */
};
/* What the header From's domain asks for a message that fails DMARC (its p=, or sp= for a subdomain). */
enum authres_policy {
	AUTHRES_DELIVER,    /* DMARC passed, or no policy, or p=none */
	AUTHRES_QUARANTINE, /* p=quarantine: into the recipient's Junk folder */
	AUTHRES_REJECT,     /* p=reject: refused at the end of DATA */
};
/* Checks SPF (of MAIL FROM, or of the HELO name for the null sender), every DKIM signature (at most
 * AUTHRES_DKIM_MAX), the ARC chain (arc.h) and DMARC (the header From's domain's record, _dmarc.DOMAIN or that of its organisational
 * domain; alignment as its adkim/aspf say, organisational domains from the public suffix list), then appends to out
 * the Authentication-Results field ("AUTHSERV-ID; spf=RESULT smtp.mailfrom=...; dkim=RESULT header.d=... header.s=...
 * header.a=... header.b=...; arc=RESULT (...) smtp.remote-ip=IP; dmarc=RESULT (p=POLICY) header.from=DOMAIN";
 * "dkim=none" without a signature, "arc=none" without a set, "dmarc=none" without a record; a DMARC failure whose
 * chain passes and was sealed last by a domain of in->arc_trusted is delivered, "policy.arc-override=DOMAIN") followed by the message without the fields that claim this authserv-id. Returns
 * the policy to apply; from_domain_r (may be NULL) gets the header From's domain ("" when none); eval_r (may be NULL)
 * the DMARC evaluation for an aggregate report (eval_r->domain "" when no DMARC record was evaluated). Any thread;
 * DNS is asked synchronously. */
enum authres_policy authres_check(struct authres *a, const struct authres_input *in, struct buf *out,
				  struct buf *from_domain_r, struct dmarcrpt_eval *eval_r);

/* Pure helpers (unit-tested). */
/* True when the message's header block holds an Authentication-Results field whose authserv-id is authserv_id
 * (case-insensitive; comments and whitespace before it skipped). */
bool authres_claims(const char *authserv_id, const char *msg, size_t len);
/* Appends msg to out without those fields. */
void authres_strip(const char *authserv_id, const char *msg, size_t len, struct buf *out);
/* The first Authentication-Results field of authserv_id in the message's header block: its raw value (from after the
 * colon to its line end, within msg) into val_r and vlen_r. Returns false when there is none. */
bool authres_own(const char *authserv_id, const char *msg, size_t len, const char **val_r, size_t *vlen_r);
/* True when an Authentication-Results field of authserv_id in the message's header block says DMARC quarantines it
 * ("dmarc=fail (p=quarantine, quarantined)"): a message relayed by another of our servers, which checked it, to the
 * recipient's home server. */
bool authres_quarantined(const char *authserv_id, const char *msg, size_t len);

#endif
