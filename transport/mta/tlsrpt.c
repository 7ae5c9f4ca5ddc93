/* tlsrpt.c - the TLS reporting records (RFC 8460) ix-mta writes and the attendant's report reads: one day record
 * (dayrec.h) a session. */
#include "transport/mta/tlsrpt.h"
#include "transport/mta/dayrec.h"
#include "common/util.h"

#include <string.h>

int tlsrpt_record(const struct config *cfg, const struct tlsrpt_session *s)
{
	const char *fields[] = { s->domain, s->policy_type, s->mx_host, s->ip, s->result, s->policy };
	return dayrec_append(cfg, TLSRPT_DIR, s->time, fields, IX_ARRAY_LEN(fields));
}

bool tlsrpt_parse(const char *line, struct tlsrpt_session *s_r)
{
	memset(s_r, 0, sizeof(*s_r));
	char *const out[] = { s_r->domain, s_r->policy_type, s_r->mx_host, s_r->ip, s_r->result, s_r->policy };
	const size_t sizes[] = { sizeof(s_r->domain), sizeof(s_r->policy_type), sizeof(s_r->mx_host),
				 sizeof(s_r->ip),     sizeof(s_r->result),      sizeof(s_r->policy) };
	return dayrec_split(line, &s_r->time, out, sizes, IX_ARRAY_LEN(out)) && s_r->domain[0] != '\0' &&
	       s_r->result[0] != '\0';
}

void tlsrpt_peer_ip(const char *peer, char *ip, size_t size)
{
	const char *lb = strchr(peer, '['), *rb = lb != NULL ? strchr(lb, ']') : NULL;
	if (rb == NULL || size == 0 || (size_t)(rb - lb - 1) >= size) {
		if (size > 0)
			ip[0] = '\0';
		return;
	}
	memcpy(ip, lb + 1, (size_t)(rb - lb - 1));
	ip[rb - lb - 1] = '\0';
}
