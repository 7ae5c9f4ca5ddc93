/* report_mail.h - what the attendant's periodic reports to other domains share (TLS reports, RFC 8460; DMARC
 * aggregate reports, RFC 7489): the day records taken from their folder (transport/mta/dayrec.h), gzip, the mailto:
 * addresses of a rua list, and the report message queued for ix-mta (which signs it like all our mail). */
#ifndef IX_REPORT_MAIL_H
#define IX_REPORT_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/config.h"

/* Takes every day file of DATA/folder (renamed to NAME.sending first, so what is recorded from now on goes into a new
 * file), hands each of its lines (without the line end; the text may be changed by fn) to fn, then removes it. */
void report_take_records(const struct config *cfg, const char *folder, void (*fn)(char *line, void *ctx), void *ctx);
struct dns;
/* The rua tag of the TXT record at name whose v= tag is version ("TLSRPTv1", "DMARC1"), asked through d, into rua_r.
 * Returns false when there is no such record or it has no rua. */
bool report_rua(struct dns *d, const char *name, const char *version, struct buf *rua_r);
/* gzip (RFC 1952) of the len bytes at data, appended to out. Returns false when zlib fails. */
bool report_gzip(const char *data, size_t len, struct buf *out);
/* Calls fn with each mailto: address of rua (comma-separated URIs; RFC 6068 "?" headers and RFC 7489 "!" size limits
 * dropped); any other URI is logged (what: "TLS reporting"...) as not sent. rua is changed. */
void report_each_mailto(const char *what, const char *domain, char *rua, void (*fn)(const char *addr, void *ctx),
			void *ctx);

/* A report message: From, Subject "Report Domain: DOMAIN Submitter: OUR-DOMAIN Report-ID: <ID>", the header fields
 * given, then a multipart of a text and the gzipped report as an attachment. */
struct report_mail {
	const char *what;            /* for the log: "TLS reporting", "DMARC reporting" */
	const char *from;            /* the From field's value */
	const char *domain;          /* the domain reported on */
	const char *report_id;       /* the report's id */
	const char *headers;         /* more header fields, each with its CRLF, or "" */
	const char *multipart;       /* the multipart subtype and parameters: "mixed", "report; report-type=..." */
	const char *text;            /* the text part */
	const char *attachment_type; /* the report's media type */
	const char *filename;        /* the report's file name */
	const struct buf *gz;        /* the gzipped report */
};
/* Queues m for to (the null sender: no bounce comes back). Returns 0, or -1 (logged). */
int report_queue(const struct config *cfg, const char *to, const struct report_mail *m);

#endif
