/* mta_oof.c - out of office set or removed for a mailbox: the generated Sieve script (transport/sieve/sieve_oof.c)
 * with the organisation's accepted domains as the inside and its contacts as the known senders, stored beside the
 * user's own scripts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"
#include "store/store.h"
#include "transport/mta/mta.h"
#include "transport/sieve/sieve.h"

/* The senders outside the organisation that the audience "known" answers: the addresses of the directory's contacts
 * (the external recipients every user's address book shows, CardDAV's included; the server keeps no personal
 * contacts folders), those hidden from the address book left out. *known_r: NULL-terminated, pointing into
 * *page_r. */
static int known_senders(struct prov *p, struct prov_recipients *page_r, const char ***known_r, struct buf *error_r)
{
	int ret = prov_recipient_search(p, NULL, "contact", 0, SIZE_MAX / 2, page_r, error_r);
	if (ret != IX_OK)
		return ret;
	const char **known = xcalloc(page_r->count + 1, sizeof(*known));
	size_t n = 0;
	for (size_t i = 0; i < page_r->count; i++)
		if (!page_r->items[i].hidden && page_r->items[i].mail != NULL)
			known[n++] = page_r->items[i].mail;
	*known_r = known;
	return IX_OK;
}

int mta_oof_set(struct prov *p, struct store *st, const char *guid, const struct sieve_oof *o, struct buf *error_r)
{
	if (o == NULL) {
		int ret = store_sieve_delete(st, guid, SIEVE_OOF_NAME, error_r);
		return ret == IX_ENOTFOUND ? IX_OK : ret;
	}
	struct buf domains = BUF_INIT, text = BUF_INIT;
	struct prov_recipients contacts = { 0 };
	const char **known = NULL;
	int ret = prov_domain_list(p, &domains, error_r);
	if (ret == IX_OK && o->audience == SIEVE_OOF_KNOWN)
		ret = known_senders(p, &contacts, &known, error_r);
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
		with.known = known;
		sieve_oof_script(&with, &text);
		struct sieve_script *s = NULL;
		if (text.len > SIEVE_DEFAULT_MAX_SCRIPT) {
			buf_printf(error_r,
				   "the out-of-office script would hold %zu bytes, over the %u a script may: the "
				   "organisation has too many contacts for the audience known (%zu)",
				   text.len, (unsigned)SIEVE_DEFAULT_MAX_SCRIPT, contacts.count);
			ret = IX_ELIMIT;
		} else {
			ret = sieve_parse(buf_cstr(&text), text.len, 0, &s, error_r);
			sieve_free(s);
		}
	}
	if (ret == IX_OK)
		ret = store_sieve_put(st, guid, SIEVE_OOF_NAME, buf_cstr(&text), text.len, error_r);
	free(dv);
	free(known);
	prov_recipients_free(&contacts);
	buf_free(&domains);
	buf_free(&text);
	return ret;
}
