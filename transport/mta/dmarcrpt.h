/* dmarcrpt.h - DMARC aggregate reporting (RFC 7489 7.2): ix-smtpd records each DMARC evaluation of mail from outside
 * (a day record, dayrec.h, under the data folder) when dmarc.reports is on; the attendant's report reads them
 * (attendant/dmarc_report.c). The evaluation and its line format live here alone. */
#ifndef IX_DMARCRPT_H
#define IX_DMARCRPT_H

#include <stdbool.h>
#include "common/config.h"

/* The records' folder in the data folder: DMARCRPT_DIR/YYYY-MM-DD, one per UTC day. */
#define DMARCRPT_DIR "dmarc"

/* One message's DMARC evaluation (RFC 7489 appendix C's row, identifiers and auth_results, and the policy it met). */
struct dmarcrpt_eval {
	long long time;
	char domain[256];        /* the policy domain: where the DMARC record was found */
	char header_from[256];   /* the header From's domain */
	char envelope_from[256]; /* MAIL FROM's domain ("" for the null sender) */
	char ip[64];             /* the SMTP client's address */
	char p[12], sp[12];      /* the record's policies: none, quarantine, reject */
	char adkim[2], aspf[2];  /* "r" or "s" */
	char pct[4];             /* 0-100 */
	char disposition[12];    /* the policy applied: none, quarantine, reject */
	char dkim[8], spf[8];    /* the aligned results: pass or fail */
	char reason[24];         /* "" or a PolicyOverrideType ("local_policy": an ARC chain a trusted sealer sealed) */
	char dkim_auth[1024];    /* each DKIM signature "DOMAIN SELECTOR RESULT", separated by '|' */
	char spf_domain[256];
	char spf_scope[8]; /* "mfrom" or "helo" */
	char spf_result[12];
};

/* Appends e as one line to DATA/DMARCRPT_DIR/YYYY-MM-DD (e's UTC day). Returns IX_OK or IX_EIO. */
int dmarcrpt_record(const struct config *cfg, const struct dmarcrpt_eval *e);
/* Parses one line (without its line end) into e_r. Returns false when it is malformed. */
bool dmarcrpt_parse(const char *line, struct dmarcrpt_eval *e_r);

#endif
