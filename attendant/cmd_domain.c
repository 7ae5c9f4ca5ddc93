/* cmd_domain.c - interchange domain: the organisation's accepted domains, and the DKIM keys their outgoing mail is
 * signed with (selectors in the directory, private keys in this server's data folder, records for DNS). */
#include "attendant/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"
#include "transport/mta/dkim_domain.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char domain_help[] =
	"usage: interchange domain list\n"
	"       interchange domain dkim DOMAIN [--rotate]\n\n"
	"list shows the organisation's accepted domains, their types and DKIM selectors.\n"
	"dkim makes this server's DKIM keys of DOMAIN when it has none (an Ed25519 key and an RSA-2048 key, RFC 8463\n"
	"and RFC 6376): their selectors go into the directory beside other servers' ones, the private keys into this\n"
	"server's data folder (dkim/, readable by the service user alone), and every message from the domain that\n"
	"this server sends out of the organisation is signed with both. Run it on each server that sends mail out.\n"
	"It prints the DNS TXT records to publish; run again, it prints them again. --rotate makes new keys for this\n"
	"server that sign from now on: publish their records, keep the old ones a few days, then remove them.\n"
	"All commands take --data DIR.\n";

struct domain_args {
	const char *domain;
	bool rotate;
};

static int domain_list(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	(void)ctx;
	return prov_domain_list(p, out, err);
}

static int domain_dkim(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	const struct domain_args *a = ctx;
	const char *domain = a->domain;
	struct buf mine = BUF_INIT, others = BUF_INIT;
	bool made, replaced;
	int ret = dkim_domain_ensure(cfg, p, domain, a->rotate, &made, &replaced, &mine, &others, err);
	if (ret == IX_OK && made) {
		buf_printf(out,
			   "Made new DKIM keys for %s on %s: mail from it that this server sends out of the "
			   "organisation is signed with them from now on.\n",
			   domain, cfg->hostname);
		if (replaced)
			buf_printf(out,
				   "This server's previous selectors sign nothing more: keep their records published a "
				   "few days\n(mail already on its way), then remove them.\n");
	}
	if (ret == IX_OK) {
		buf_printf(out, "Publish these TXT records in the DNS zone of %s:\n", domain);
		ret = dkim_domain_records(cfg, domain, buf_cstr(&mine), out, err);
	}
	if (ret == IX_OK && others.len > 0)
		ret = dkim_domain_records(cfg, domain, buf_cstr(&others), out, err);
	buf_free(&mine);
	buf_free(&others);
	return ret;
}

int cmd_domain(const char *data_dir, int argc, char **argv)
{
	int shown = cli_help_or_usage(argc, argv, domain_help);
	if (shown >= 0)
		return shown;
	const char *verb = argv[1], *domain = NULL;
	bool list = strcmp(verb, "list") == 0, dkim = strcmp(verb, "dkim") == 0, rotate = false;
	if (!list && !dkim) {
		fprintf(stderr, "interchange: unknown domain command \"%s\"\n\n%s", verb, domain_help);
		return CLI_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (dkim && strcmp(argv[i], "--rotate") == 0 && !rotate) {
			rotate = true;
		} else if (dkim && domain == NULL && argv[i][0] != '-') {
			domain = argv[i];
		} else {
			fprintf(stderr, "interchange: domain %s: unexpected argument \"%s\"\n\n%s", verb, argv[i],
				domain_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (dkim && domain == NULL) {
		fprintf(stderr, "interchange: domain dkim needs the DOMAIN\n\n%s", domain_help);
		return CLI_EXIT_USAGE;
	}
	struct domain_args a = { domain, rotate };
	return cli_with_prov(data_dir, list ? domain_list : domain_dkim, &a);
}
