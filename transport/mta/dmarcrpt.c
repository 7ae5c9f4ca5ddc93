/* dmarcrpt.c - the DMARC evaluation records (RFC 7489 7.2) ix-smtpd writes and the attendant's aggregate report
 * reads: one day record (dayrec.h) an evaluation. */
#include "transport/mta/dmarcrpt.h"
#include "transport/mta/dayrec.h"
#include "common/util.h"

#include <string.h>

/* The fields of a line, in order (the time first, apart). */
#define FIELDS(e)                                                                                                      \
	{                                                                                                              \
		(e)->domain, (e)->header_from, (e)->envelope_from, (e)->ip, (e)->p, (e)->sp, (e)->adkim, (e)->aspf,    \
			(e)->pct, (e)->disposition, (e)->dkim, (e)->spf, (e)->reason, (e)->dkim_auth, (e)->spf_domain, \
			(e)->spf_scope, (e)->spf_result                                                                \
	}

int dmarcrpt_record(const struct config *cfg, const struct dmarcrpt_eval *e)
{
	const char *fields[] = FIELDS(e);
	return dayrec_append(cfg, DMARCRPT_DIR, e->time, fields, IX_ARRAY_LEN(fields));
}

bool dmarcrpt_parse(const char *line, struct dmarcrpt_eval *e_r)
{
	memset(e_r, 0, sizeof(*e_r));
	char *const out[] = FIELDS(e_r);
	const size_t sizes[] = { sizeof(e_r->domain),      sizeof(e_r->header_from), sizeof(e_r->envelope_from),
				 sizeof(e_r->ip),          sizeof(e_r->p),           sizeof(e_r->sp),
				 sizeof(e_r->adkim),       sizeof(e_r->aspf),        sizeof(e_r->pct),
				 sizeof(e_r->disposition), sizeof(e_r->dkim),        sizeof(e_r->spf),
				 sizeof(e_r->reason),      sizeof(e_r->dkim_auth),   sizeof(e_r->spf_domain),
				 sizeof(e_r->spf_scope),   sizeof(e_r->spf_result) };
	return dayrec_split(line, &e_r->time, out, sizes, IX_ARRAY_LEN(out)) && e_r->domain[0] != '\0' &&
	       e_r->disposition[0] != '\0';
}
