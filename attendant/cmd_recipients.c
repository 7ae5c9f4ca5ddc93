/* cmd_recipients.c - interchange user, contact, dl and folder: recipients written to the directory.
 * The work is done by directory/provision.c; this file parses arguments and prints results. */
#include "cli.h"
#include "err.h"
#include "provision.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connects, runs fn, prints its output or error. */
struct run_ctx {
	struct prov *prov;
	struct buf out;
	struct buf err;
};

static int with_directory(const char *data_dir, struct config *cfg, struct run_ctx *ctx)
{
	if (cli_load_config(data_dir, cfg) < 0)
		return -1;
	buf_init(&ctx->out);
	buf_init(&ctx->err);
	if (prov_open(cfg, &ctx->prov, &ctx->err) != IX_OK) {
		cli_error("%s", buf_cstr(&ctx->err));
		buf_free(&ctx->err);
		config_free(cfg);
		return -1;
	}
	return 0;
}

static int finish(struct config *cfg, struct run_ctx *ctx, int ret, const char *done)
{
	if (ret == IX_OK) {
		fputs(buf_cstr(&ctx->out), stdout);
		if (done != NULL)
			puts(done);
	} else {
		cli_error("%s", buf_cstr(&ctx->err));
	}
	prov_close(&ctx->prov);
	buf_free(&ctx->out);
	buf_free(&ctx->err);
	config_free(cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int usage_error(const char *help, const char *fmt, ...) IX_PRINTF(2, 3);
static int usage_error(const char *help, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("interchange: ", stderr);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n\n%s", help);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

/* ---- user ---- */

static const char user_help[] =
	"usage: interchange user add LOGIN --given G --surname S --password PW [--alias ADDR]... [--hidden]\n"
	"                              [--server NAME]\n"
	"       interchange user del LOGIN\n"
	"       interchange user passwd LOGIN --password PW\n"
	"       interchange user show LOGIN\n"
	"       interchange user list\n\n"
	"Mailbox users. The attendant gives a new user its primary address from the recipient policy\n"
	"(given.surname@domain) within a second; --alias adds secondary addresses. --hidden keeps the user out\n"
	"of the address book. All commands take --data DIR.\n";

int cmd_user(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(user_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	static const struct option opts[] = {
		{ "given", required_argument, NULL, 'g' },   { "surname", required_argument, NULL, 's' },
		{ "password", required_argument, NULL, 'p' }, { "alias", required_argument, NULL, 'a' },
		{ "hidden", no_argument, NULL, 'H' },         { "server", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct prov_user u = { 0 };
	const char **aliases = xcalloc((size_t)argc, sizeof(char *));
	opterr = 0;
	optind = 2;
	int c, ret = CLI_EXIT_USAGE;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'g': u.given = optarg; break;
		case 's': u.surname = optarg; break;
		case 'p': u.password = optarg; break;
		case 'a': aliases[u.alias_count++] = optarg; break;
		case 'H': u.hidden = 1; break;
		case 'S': u.server = optarg; break;
		default: ret = usage_error(user_help, "user: unknown or incomplete option %s", argv[optind - 1]); goto out;
		}
	}
	u.aliases = aliases;
	const char *login = optind < argc ? argv[optind] : NULL;
	int nargs = argc - optind;
	struct config cfg;
	struct run_ctx ctx;
	if (strcmp(verb, "list") == 0) {
		if (nargs != 0) {
			ret = usage_error(user_help, "user list takes no argument, not \"%s\"", login);
			goto out;
		}
		if (with_directory(data_dir, &cfg, &ctx) < 0) {
			ret = CLI_EXIT_FAIL;
			goto out;
		}
		ret = finish(&cfg, &ctx, prov_user_list(ctx.prov, &ctx.out, &ctx.err), NULL);
		goto out;
	}
	if (strcmp(verb, "add") != 0 && strcmp(verb, "del") != 0 && strcmp(verb, "passwd") != 0 &&
	    strcmp(verb, "show") != 0) {
		ret = usage_error(user_help, "unknown user command \"%s\"", verb);
		goto out;
	}
	if (nargs != 1) {
		ret = usage_error(user_help, "user %s needs exactly one LOGIN", verb);
		goto out;
	}
	if (strcmp(verb, "add") == 0 && (u.given == NULL || u.surname == NULL || u.password == NULL)) {
		ret = usage_error(user_help, "user add needs --given, --surname and --password");
		goto out;
	}
	if (strcmp(verb, "passwd") == 0 && u.password == NULL) {
		ret = usage_error(user_help, "user passwd needs --password");
		goto out;
	}
	if (with_directory(data_dir, &cfg, &ctx) < 0) {
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	u.login = login;
	char *done = NULL;
	int r;
	if (strcmp(verb, "add") == 0) {
		r = prov_user_add(ctx.prov, &u, &ctx.err);
		done = xasprintf("Added user %s; the attendant gives it its address from the recipient policy", login);
	} else if (strcmp(verb, "del") == 0) {
		r = prov_user_del(ctx.prov, login, &ctx.err);
		done = xasprintf("Deleted user %s", login);
	} else if (strcmp(verb, "passwd") == 0) {
		r = prov_user_passwd(ctx.prov, login, u.password, &ctx.err);
		done = xasprintf("Changed the password of %s", login);
	} else {
		r = prov_user_show(ctx.prov, login, &ctx.out, &ctx.err);
	}
	ret = finish(&cfg, &ctx, r, done);
	free(done);
out:
	free(aliases);
	return ret;
}

/* ---- contact ---- */

static const char contact_help[] = "usage: interchange contact add NAME --email ADDR\n\n"
				   "A contact is a recipient outside the organisation: it appears in the address book\n"
				   "and can be a list member; its mail goes to ADDR.\n";

int cmd_contact(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(contact_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "add") != 0)
		return usage_error(contact_help, "unknown contact command \"%s\"", argv[1]);
	static const struct option opts[] = { { "email", required_argument, NULL, 'e' }, { NULL, 0, NULL, 0 } };
	const char *email = NULL;
	opterr = 0;
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'e')
			return usage_error(contact_help, "contact: unknown or incomplete option %s", argv[optind - 1]);
		email = optarg;
	}
	if (argc - optind != 1 || email == NULL)
		return usage_error(contact_help, "contact add needs one NAME and --email");
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	char *done = xasprintf("Added contact %s <%s>", argv[optind], email);
	int ret = finish(&cfg, &ctx, prov_contact_add(ctx.prov, argv[optind], email, &ctx.err), done);
	free(done);
	return ret;
}

/* ---- dl ---- */

static const char dl_help[] = "usage: interchange dl add NAME [--member RECIPIENT]...\n"
			      "       interchange dl member add|del NAME RECIPIENT\n"
			      "       interchange dl show NAME\n\n"
			      "Distribution lists. A RECIPIENT is a login, a list or contact name, or an address;\n"
			      "lists may contain lists. The attendant gives a new list its address (name@domain).\n";

int cmd_dl(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(dl_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	struct config cfg;
	struct run_ctx ctx;
	const char *verb = argv[1];
	if (strcmp(verb, "add") == 0) {
		static const struct option opts[] = { { "member", required_argument, NULL, 'm' }, { NULL, 0, NULL, 0 } };
		const char **members = xcalloc((size_t)argc, sizeof(char *));
		size_t n = 0;
		opterr = 0;
		optind = 2;
		int c;
		while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
			if (c != 'm') {
				free(members);
				return usage_error(dl_help, "dl: unknown or incomplete option %s", argv[optind - 1]);
			}
			members[n++] = optarg;
		}
		if (argc - optind != 1) {
			free(members);
			return usage_error(dl_help, "dl add needs exactly one NAME");
		}
		if (with_directory(data_dir, &cfg, &ctx) < 0) {
			free(members);
			return CLI_EXIT_FAIL;
		}
		char *done = xasprintf("Added list %s with %zu member%s", argv[optind], n, n == 1 ? "" : "s");
		int ret = finish(&cfg, &ctx, prov_dl_add(ctx.prov, argv[optind], members, n, &ctx.err), done);
		free(done);
		free(members);
		return ret;
	}
	if (strcmp(verb, "member") == 0) {
		if (argc != 5 || (strcmp(argv[2], "add") != 0 && strcmp(argv[2], "del") != 0))
			return usage_error(dl_help, "dl member needs add|del, the list NAME and a RECIPIENT");
		if (with_directory(data_dir, &cfg, &ctx) < 0)
			return CLI_EXIT_FAIL;
		int add = strcmp(argv[2], "add") == 0;
		char *done = xasprintf("%s %s %s %s", add ? "Added" : "Removed", argv[4], add ? "to" : "from", argv[3]);
		int ret = finish(&cfg, &ctx, prov_dl_member(ctx.prov, argv[3], argv[4], add, &ctx.err), done);
		free(done);
		return ret;
	}
	if (strcmp(verb, "show") == 0) {
		if (argc != 3)
			return usage_error(dl_help, "dl show needs exactly one NAME");
		if (with_directory(data_dir, &cfg, &ctx) < 0)
			return CLI_EXIT_FAIL;
		return finish(&cfg, &ctx, prov_dl_show(ctx.prov, argv[2], &ctx.out, &ctx.err), NULL);
	}
	return usage_error(dl_help, "unknown dl command \"%s\"", verb);
}

/* ---- folder ---- */

static const char folder_help[] = "usage: interchange folder add PATH\n\n"
				  "Creates a public folder (and any missing parents), e.g. Sales/Leads.\n";

int cmd_folder(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(folder_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "add") != 0 || argc != 3)
		return usage_error(folder_help, "folder needs: add PATH");
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	char *done = xasprintf("Added public folder %s", argv[2]);
	int ret = finish(&cfg, &ctx, prov_folder_add(ctx.prov, argv[2], &ctx.err), done);
	free(done);
	return ret;
}
