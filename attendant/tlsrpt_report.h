/* tlsrpt_report.h - the daily TLS reports (RFC 8460): from the sessions ix-mta recorded (transport/mta/tlsrpt.h), one
 * JSON report per policy domain that publishes a _smtp._tls record, gzipped and queued as a multipart/report message
 * to each mailto: address of its rua. */
#ifndef IX_TLSRPT_REPORT_H
#define IX_TLSRPT_REPORT_H

#include <stddef.h>
#include <time.h>
#include "common/buf.h"
#include "common/config.h"
#include "transport/mta/tlsrpt.h"

/* How often the attendant sends them (from its maintenance timer). */
#define TLSRPT_INTERVAL_S 86400

struct dir;
/* When tlsrpt.enabled: takes every day file of records (renamed first, so ix-mta writes the next ones into a new file),
 * sends the reports of their domains and removes them. Logs what it sent and what it could not. */
void tlsrpt_report_run(const struct config *cfg, struct dir *dir, time_t now);

/* Pure (unit-tested): appends the RFC 8460 4.4 JSON report of domain's sessions s[0..n) (all of domain) to out. */
struct tlsrpt_meta {
	const char *organization, *contact, *report_id;
	time_t start, end;
};
void tlsrpt_report_json(const struct tlsrpt_meta *meta, const char *domain, const struct tlsrpt_session *s, size_t n,
			struct buf *out);

#endif
