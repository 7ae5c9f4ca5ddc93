/* dmarc_report.h - the DMARC aggregate reports (RFC 7489 7.2): from the evaluations ix-smtpd recorded
 * (transport/mta/dmarcrpt.h), one XML report per policy domain that publishes rua=mailto:, gzipped and sent to each
 * of its addresses that is in the domain's own organisation or has verified that it takes them (7.1). */
#ifndef IX_DMARC_REPORT_H
#define IX_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "common/buf.h"
#include "common/config.h"
#include "transport/mta/dmarcrpt.h"

struct dir;
/* When dmarc.reports is on and dmarc.report_interval has passed since *last (or force, for `interchange dmarc report
 * --now`): takes every day file of evaluations, sends the reports of their domains, removes them and sets *last to
 * now. Appends to summary_r (may be NULL) one line of what it did; logs each report sent and each it could not send.
 * The attendant calls it from its maintenance timer. */
void dmarc_report_run(const struct config *cfg, struct dir *dir, time_t now, time_t *last, bool force,
		      struct buf *summary_r);

/* Pure (unit-tested): appends the RFC 7489 appendix C XML report of domain's evaluations e[0..n) (all of domain, in
 * time order; the policy published is the last one's) to out: one row per source address and outcome, counted. */
struct dmarc_report_meta {
	const char *org_name, *email, *report_id;
	time_t begin, end;
};
void dmarc_report_xml(const struct dmarc_report_meta *meta, const char *domain, const struct dmarcrpt_eval *e, size_t n,
		      struct buf *out);

/* Pure (unit-tested): whether a report of policy_domain may go to an address at rua_domain without asking it first
 * (RFC 7489 7.1): the same domain, or one within the other's organisational domain (its last two labels, the
 * nearest the check comes without the public suffix list, and never a single label). */
bool dmarc_report_same_org(const char *policy_domain, const char *rua_domain);

#endif
