/* cmd_admin.c - interchange role and interchange audit: who may administer (the roles of the directory's access
 * rules) and what was changed by whom (the audit log); and the audit line every changing command leaves. */
#include "attendant/cli.h"
#include "common/audit.h"
#include "common/err.h"
#include "directory/provision.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char role_help[] =
	"usage: interchange role list\n"
	"       interchange role add ROLE RECIPIENT\n"
	"       interchange role del ROLE RECIPIENT\n\n"
	"Administrative roles, as the directory's access rules apply them (to the REST API, which binds as the\n"
	"caller, and to any LDAP client):\n"
	"  \"Organisation Admins\"  everything\n"
	"  \"Recipient Admins\"     users, contacts, lists and public folders (passwords included); reads the rest\n"
	"  \"View-Only Admins\"     reads everything but passwords, changes nothing\n"
	"RECIPIENT is a login, a name or an address. The administrator (admin) holds every role.\n";

struct role_args {
	const char *verb, *role, *recipient;
};

static int role_run(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	const struct role_args *a = ctx;
	if (strcmp(a->verb, "list") == 0)
		return prov_role_list(p, out, err);
	bool add = strcmp(a->verb, "add") == 0;
	int ret = prov_role_member(p, a->role, a->recipient, add, err);
	if (ret == IX_OK)
		buf_printf(out, "%s %s %s\n", a->recipient, add ? "is now a member of" : "is no longer a member of",
			   a->role);
	return ret;
}

int cmd_role(const char *data_dir, int argc, char **argv)
{
	int shown = cli_help_or_usage(argc, argv, role_help);
	if (shown >= 0)
		return shown;
	struct role_args a = { argv[1], argc > 2 ? argv[2] : NULL, argc > 3 ? argv[3] : NULL };
	bool list = strcmp(a.verb, "list") == 0, change = strcmp(a.verb, "add") == 0 || strcmp(a.verb, "del") == 0;
	if ((list && argc != 2) || (change && argc != 4) || (!list && !change)) {
		fprintf(stderr, "interchange: role %s: wrong arguments\n\n%s", a.verb, role_help);
		return CLI_EXIT_USAGE;
	}
	return cli_with_prov(data_dir, role_run, &a);
}

static const char audit_help[] =
	"usage: interchange audit [--since DATE] [--who RECIPIENT]\n\n"
	"Every change made to the system, oldest first: when (UTC), who (a login; admin (Unix user NAME) for the\n"
	"command line), through what (cli or api), what and how it ended. DATE is YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]\n"
	"(UTC). The log is DATA/" AUDIT_FILE ".\n";

static bool audit_print(const struct audit_entry *e, void *ctx)
{
	(void)ctx;
	char stamp[32];
	struct tm tm;
	gmtime_r(&e->when, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s  %-24s %-4s %s%s%s: %s\n", stamp, e->who, e->via, e->action, e->target[0] ? " " : "", e->target,
	       e->result);
	return true;
}

int cmd_audit(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(audit_help, stdout);
		return CLI_EXIT_OK;
	}
	static const struct option opts[] = { { "since", required_argument, NULL, 's' },
					      { "who", required_argument, NULL, 'w' },
					      { NULL, 0, NULL, 0 } };
	time_t since = 0;
	const char *who = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's' && !audit_parse_time(optarg, &since)) {
			cli_error("--since %s is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)", optarg);
			return CLI_EXIT_USAGE;
		} else if (c == 'w') {
			who = optarg;
		} else if (c != 's') {
			fputs(audit_help, stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(audit_help, stderr);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf err = BUF_INIT;
	int ret = audit_read(cfg.data_dir, since, who, audit_print, NULL, &err);
	if (ret != IX_OK)
		cli_error("%s", buf_cstr(&err));
	buf_free(&err);
	config_free(&cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Commands and verbs that change nothing: they leave no audit line. */
static bool reads_only(const struct cli_audit_call *a)
{
	static const char *const commands[] = { "status", "logs", "track", "dns", "audit", "backup" };
	static const char *const verbs[] = { "list", "show", "check", "stats" };
	for (size_t i = 0; i < IX_ARRAY_LEN(commands); i++) {
		if (strcmp(a->words[0], commands[i]) == 0)
			return true;
	}
	for (size_t i = 0; a->words[1] != NULL && i < IX_ARRAY_LEN(verbs); i++) {
		if (strcmp(a->words[1], verbs[i]) == 0)
			return true;
	}
	return a->help;
}

void cli_audit_start(int argc, char **argv, struct cli_audit_call *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	for (int i = 0; i < CLI_AUDIT_WORDS && i < argc; i++)
		a_r->words[i] = xstrdup(argv[i]);
	a_r->uid = getuid();
	a_r->help = cli_wants_help(argc, argv);
}

void cli_audit_end(const char *data_dir, struct cli_audit_call *a, int exit_code)
{
	struct config cfg;
	struct buf err = BUF_INIT;
	/* a usage mistake changed nothing; without a data folder (yet, or any more) there is no log */
	if (a->words[0] != NULL && exit_code != CLI_EXIT_USAGE && !reads_only(a) &&
	    config_load(data_dir, &cfg, &err) == IX_OK) {
		struct passwd *pw = getpwuid(a->uid);
		char *who = xasprintf("admin (Unix user %s)", pw != NULL ? pw->pw_name : "?");
		/* the command, its verb and the verb's first argument as typed, each only when it is no option: never an
		 * option's value, which may be a password */
		bool verb = a->words[1] != NULL && a->words[1][0] != '-';
		bool target = verb && a->words[2] != NULL && a->words[2][0] != '-';
		char *action = xasprintf("%s%s%s", a->words[0], verb ? " " : "", verb ? a->words[1] : "");
		struct audit_entry e = {
			0, who, "cli", action, target ? a->words[2] : "", exit_code == CLI_EXIT_OK ? "ok" : "failed"
		};
		buf_reset(&err);
		if (audit_record(cfg.data_dir, &e, &err) != IX_OK)
			cli_error("%s", buf_cstr(&err));
		free(who);
		free(action);
		config_free(&cfg);
	}
	buf_free(&err);
	for (int i = 0; i < CLI_AUDIT_WORDS; i++)
		free(a->words[i]);
}
