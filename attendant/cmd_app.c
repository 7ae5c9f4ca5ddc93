/* cmd_app.c - interchange app: application accounts, the identities other systems (Nextcloud, GitLab...) bind with
 * to search the address book. The work is done by directory/provision.c; this file parses arguments and prints. */
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/provision.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char app_help[] =
	"usage: interchange app add NAME [--password PW]\n"
	"       interchange app passwd NAME [--password PW]\n"
	"       interchange app del NAME\n"
	"       interchange app list\n\n"
	"An application account lets another system (Nextcloud, GitLab, Grafana...) search the address book\n"
	"(recipients not hidden from it: names, addresses, list memberships) and nothing else, to log its users\n"
	"in by binding as them. add prints the DN the application binds with; without --password, add and passwd\n"
	"make a password and print it once: keep it in the application's settings. del ends the account: its\n"
	"binds fail from then on. The settings an application needs: docs/directory.md \"Application accounts\".\n"
	"All commands take --data DIR.\n";

int cmd_app(const char *data_dir, int argc, char **argv)
{
	int shown = cli_help_or_usage(argc, argv, app_help);
	if (shown >= 0)
		return shown;
	const char *verb = argv[1], *name = NULL, *password = NULL;
	bool list = strcmp(verb, "list") == 0, add = strcmp(verb, "add") == 0, passwd = strcmp(verb, "passwd") == 0,
	     del = strcmp(verb, "del") == 0;
	if (!list && !add && !passwd && !del) {
		fprintf(stderr, "interchange: unknown app command \"%s\"\n\n%s", verb, app_help);
		return CLI_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if ((add || passwd) && strcmp(argv[i], "--password") == 0 && i + 1 < argc && password == NULL) {
			password = argv[++i];
		} else if ((add || passwd) && strncmp(argv[i], "--password=", 11) == 0 && password == NULL) {
			password = argv[i] + 11;
		} else if (!list && name == NULL && argv[i][0] != '-') {
			name = argv[i];
		} else {
			fprintf(stderr, "interchange: app %s: unexpected argument \"%s\"\n\n%s", verb, argv[i],
				app_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (!list && name == NULL) {
		fprintf(stderr, "interchange: app %s needs the application's NAME\n\n%s", verb, app_help);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct prov *p;
	struct buf out = BUF_INIT, err = BUF_INIT;
	char *dn = NULL, *made = NULL;
	int ret = prov_open(&cfg, &p, &err);
	if (ret == IX_OK) {
		if (list) {
			ret = prov_app_list(p, &out, &err);
		} else if (del) {
			ret = prov_app_del(p, name, &err);
			if (ret == IX_OK)
				buf_printf(&out, "Deleted application %s: its binds fail from now on\n", name);
		} else if (add) {
			ret = prov_app_add(p, name, password, &dn, &made, &err);
			if (ret == IX_OK)
				buf_printf(&out, "Added application %s; it binds as\n%s\n", name, dn);
		} else {
			ret = prov_app_passwd(p, name, password, &made, &err);
			if (ret == IX_OK)
				buf_printf(&out, "Changed the password of application %s\n", name);
		}
		if (ret == IX_OK && made != NULL)
			buf_printf(&out, "password (shown this once): %s\n", made);
		prov_close(&p);
	}
	if (made != NULL)
		explicit_bzero(made, strlen(made));
	free(made);
	free(dn);
	return cli_finish(ret, &out, &err, &cfg);
}
