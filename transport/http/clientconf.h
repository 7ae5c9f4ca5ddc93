/* clientconf.h - what mail clients and other mail servers fetch to configure themselves, as pure text makers: the
 * Thunderbird autoconfig file, the Outlook Autodiscover (plain XML) answer, an Apple configuration profile and the
 * MTA-STS policy, all from one description of this server's host and ports. */
#ifndef IX_CLIENTCONF_H
#define IX_CLIENTCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Most bytes of an e-mail address taken from a request (RFC 5321's path limit). */
#define CLIENTCONF_ADDRESS_MAX 254
/* How long a sending server may cache the MTA-STS policy (RFC 8461 max_age: one week). */
#define CLIENTCONF_MTA_STS_MAX_AGE 604800

/* What clients are told: the host they connect to and which ports offer what. A port 0 is not offered. */
struct clientconf {
	const char *hostname; /* the server's host name (the certificate names it) */
	const char *domain;   /* the mail domain the client asked about */
	const char *org;      /* a name to show ("Example Ltd"), or NULL for domain */
	unsigned imap, imaps; /* IMAP with STARTTLS, IMAP over TLS */
	unsigned pop3, pop3s;
	unsigned submission, submissions; /* SMTP submission with STARTTLS, and over TLS (RFC 8314) */
	const char *const *mx;            /* the MX host names of the domain, NULL-terminated (the MTA-STS policy) */
};

struct config;
struct dir;
/* Fills *cc for domain (NULL: cfg's first domain) from this server's bootstrap configuration (host name, the IMAP,
 * POP3, submission and submissions ports its services listen on) and the directory replica (the accepted domains,
 * the MX hosts: every server of the organisation, by name). Returns IX_OK (free with clientconf_free), or IX_ENOTFOUND when
 * domain is not one of the organisation's accepted domains. cc borrows cfg's strings: cfg must outlive it. */
int clientconf_fill(const struct config *cfg, struct dir *dir, const char *domain, struct clientconf *cc_r);
void clientconf_free(struct clientconf *cc);

/* Pure: when address is LOCAL@DOMAIN with a non-empty local part of printable ASCII (no space, '<', '>', '"',
 * '&'), at most CLIENTCONF_ADDRESS_MAX bytes, and a valid domain name, returns true and points *domain_r (may be
 * NULL) into it at DOMAIN. */
bool clientconf_address(const char *address, const char **domain_r);

/* Appends Thunderbird's config-v1.1.xml: every incoming server offered (IMAP before POP3, implicit TLS first)
 * and every submission port, the user name being the whole address (%EMAILADDRESS%), passwords in TLS only. */
void clientconf_thunderbird(const struct clientconf *cc, struct buf *out);

/* Pure: the address in an Outlook Autodiscover request (the <EMailAddress> element of the plain-XML request schema,
 * any namespace prefix), copied into address_r. Returns false when body (len bytes) has none or it is not an
 * address (clientconf_address). */
bool clientconf_autodiscover_request(const char *body, size_t len, struct buf *address_r);
/* Appends the Autodiscover answer (response schema 2006a, AccountType email, Action settings) for address: IMAP,
 * POP3 and SMTP with the login being the address. */
void clientconf_autodiscover(const struct clientconf *cc, const char *address, struct buf *out);
/* Appends the Autodiscover error answer with code (600 Invalid Request, 603 Account not found) and message. */
void clientconf_autodiscover_error(unsigned code, const char *message, struct buf *out);

/* Appends an (unsigned) Apple configuration profile (.mobileconfig, a property list) with one mail account for
 * address: IMAP (TLS port first) and SMTP submission. Its identifiers are derived from host and address, so the
 * same account downloaded again replaces itself on the device. */
void clientconf_mobileconfig(const struct clientconf *cc, const char *address, struct buf *out);

/* Appends the MTA-STS policy (RFC 8461, served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt) with every MX
 * of cc, in mode "testing" (senders report failures but still deliver: a self-signed certificate breaks nothing;
 * docs/http.md says when to enforce); and into id (at least 17 bytes) the policy's id for the _mta-sts TXT record:
 * 16 hex digits that change whenever the policy's text does. */
void clientconf_mta_sts(const struct clientconf *cc, struct buf *out, char *id);

#endif
