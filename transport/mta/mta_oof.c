/* mta_oof.c - out of office set or removed for a mailbox: the generated Sieve script (transport/sieve/sieve_oof.c)
 * with the organisation's accepted domains as the inside, stored beside the user's own scripts. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"
#include "store/store.h"
#include "transport/mta/mta.h"
#include "transport/sieve/sieve.h"

int mta_oof_set(struct prov *p, struct store *st, const char *guid, const struct sieve_oof *o, struct buf *error_r)
{
	if (o == NULL) {
		int ret = store_sieve_delete(st, guid, SIEVE_OOF_NAME, error_r);
		return ret == IX_ENOTFOUND ? IX_OK : ret;
	}
	struct buf domains = BUF_INIT, text = BUF_INIT;
	int ret = prov_domain_list(p, &domains, error_r);
	char **dv = NULL;
	if (ret == IX_OK) {
		/* the domains: the first word of each line after the heading */
		size_t n = 0;
		char *save = NULL;
		dv = xcalloc(domains.len / 2 + 2, sizeof(*dv));
		for (char *line = strtok_r(domains.data ? domains.data : (char *)"", "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');
			if (sp != NULL)
				*sp = '\0';
			if (strcmp(line, "DOMAIN") != 0 && *line)
				dv[n++] = line;
		}
		struct sieve_oof with = *o;
		with.domains = (const char *const *)dv;
		sieve_oof_script(&with, &text);
		struct sieve_script *s = NULL;
		ret = sieve_parse(buf_cstr(&text), text.len, 0, &s, error_r);
		sieve_free(s);
	}
	if (ret == IX_OK)
		ret = store_sieve_put(st, guid, SIEVE_OOF_NAME, buf_cstr(&text), text.len, error_r);
	free(dv);
	buf_free(&domains);
	buf_free(&text);
	return ret;
}
