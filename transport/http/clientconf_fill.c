/* clientconf_fill.c - the facts clientconf.h's texts are made of, from this server's bootstrap configuration and the
 * directory replica (kept apart from the pure texts, which then need no directory: their fuzz target links them alone). */
#include "transport/http/clientconf.h"
#include "common/config.h"
#include "common/err.h"
#include "directory/dir.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int clientconf_fill(const struct config *cfg, struct dir *dir, const char *domain, struct clientconf *cc_r)
{
	memset(cc_r, 0, sizeof(*cc_r));
	if (domain != NULL && strcasecmp(domain, cfg->domain) != 0 && !dir_is_local_domain(dir, domain))
		return IX_ENOTFOUND;
	cc_r->hostname = cfg->hostname != NULL ? cfg->hostname : cfg->domain;
	cc_r->domain = domain != NULL ? xstrdup(domain) : xstrdup(cfg->domain);
	cc_r->org = cfg->org;
	cc_r->imap = cfg->ports[PORT_IMAP];
	cc_r->imaps = cfg->ports[PORT_IMAPS];
	cc_r->pop3 = cfg->ports[PORT_POP3];
	cc_r->pop3s = cfg->ports[PORT_POP3S];
	cc_r->submission = cfg->ports[PORT_SUBMISSION];
	cc_r->submissions = cfg->ports[PORT_SUBMISSIONS];
	struct dir_server *servers = NULL;
	size_t n = 0;
	dir_servers(dir, &servers, &n);
	char **mx = xcalloc(n + 2, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (servers[i].host != NULL && servers[i].host[0] != '\0')
			mx[k++] = xstrdup(servers[i].host);
	}
	if (k == 0)
		mx[k++] = xstrdup(cc_r->hostname);
	dir_servers_free(&servers, n);
	cc_r->mx = (const char *const *)mx;
	return IX_OK;
}

void clientconf_free(struct clientconf *cc)
{
	for (size_t i = 0; cc->mx != NULL && cc->mx[i] != NULL; i++)
		free((char *)cc->mx[i]);
	free((void *)cc->mx);
	free((char *)cc->domain);
	memset(cc, 0, sizeof(*cc));
}
