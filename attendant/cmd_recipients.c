/* cmd_recipients.c - interchange user, contact, dl and folder: recipients written to the directory.
 * The work is done by directory/provision.c; this file parses arguments and prints results. */
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/provision.h"
#include "store/store.h"

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

/* ---- restrictions, shared by user and dl ---- */

/* Parses restrict options from argv[first..]; the one positional argument is the recipient. */
static int parse_restrict(int argc, char **argv, int first, const char *help, struct prov_restrict *r,
			  const char **name_r, const char ***accept_r, const char ***reject_r)
{
	enum { O_ACCEPT = 1, O_REJECT, O_AUTH, O_NOAUTH, O_MEMBERS, O_NOMEMBERS, O_MAX, O_CLEAR };
	static const struct option opts[] = {
		{ "accept-from", required_argument, NULL, O_ACCEPT },
		{ "reject-from", required_argument, NULL, O_REJECT },
		{ "authenticated-only", no_argument, NULL, O_AUTH },
		{ "anyone", no_argument, NULL, O_NOAUTH },
		{ "members-only", no_argument, NULL, O_MEMBERS },
		{ "not-members-only", no_argument, NULL, O_NOMEMBERS },
		{ "max-size", required_argument, NULL, O_MAX },
		{ "clear", no_argument, NULL, O_CLEAR },
		{ NULL, 0, NULL, 0 },
	};
	memset(r, 0, sizeof(*r));
	r->authenticated_only = r->members_only = -1;
	r->max_size = -1;
	const char **acc = xcalloc((size_t)argc, sizeof(char *)), **rej = xcalloc((size_t)argc, sizeof(char *));
	*accept_r = acc;
	*reject_r = rej;
	opterr = 0;
	optind = first;
	int c;
	unsigned long long v;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_ACCEPT: acc[r->accept_count++] = optarg; break;
		case O_REJECT: rej[r->reject_count++] = optarg; break;
		case O_AUTH: r->authenticated_only = 1; break;
		case O_NOAUTH: r->authenticated_only = 0; break;
		case O_MEMBERS: r->members_only = 1; break;
		case O_NOMEMBERS: r->members_only = 0; break;
		case O_CLEAR: r->clear = 1; break;
		case O_MAX:
			if (parse_uint(optarg, 1ULL << 40, &v) < 0)
				return usage_error(help, "--max-size takes a number of bytes (0: no limit), not \"%s\"",
						   optarg);
			r->max_size = (long long)v;
			break;
		default: return usage_error(help, "restrict: unknown or incomplete option %s", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return usage_error(help, "restrict needs exactly one recipient");
	r->accept_from = acc;
	r->reject_from = rej;
	*name_r = argv[optind];
	return 0;
}

static int run_restrict(const char *data_dir, int argc, char **argv, const char *help)
{
	struct prov_restrict r;
	const char *name = NULL, **acc = NULL, **rej = NULL;
	int ret = parse_restrict(argc, argv, 2, help, &r, &name, &acc, &rej);
	if (ret == 0) {
		struct config cfg;
		struct run_ctx ctx;
		if (with_directory(data_dir, &cfg, &ctx) < 0) {
			ret = CLI_EXIT_FAIL;
		} else {
			char *done = xasprintf("Changed the delivery restrictions of %s", name);
			ret = finish(&cfg, &ctx, prov_restrict(ctx.prov, name, &r, &ctx.err), done);
			free(done);
		}
	}
	free(acc);
	free(rej);
	return ret;
}

/* ---- addresses and the address book, shared by user and dl ---- */

/* VERB address R [--add ADDR]... [--remove ADDR]... [--primary ADDR] | VERB hidden R yes|no */
static int run_address(const char *data_dir, int argc, char **argv, const char *help)
{
	struct config cfg;
	struct run_ctx ctx;
	if (strcmp(argv[1], "hidden") == 0) {
		if (argc != 4 || (strcmp(argv[3], "yes") != 0 && strcmp(argv[3], "no") != 0))
			return usage_error(help, "hidden needs a recipient and yes or no");
		if (with_directory(data_dir, &cfg, &ctx) < 0)
			return CLI_EXIT_FAIL;
		bool hide = strcmp(argv[3], "yes") == 0;
		char *done = xasprintf(hide ? "%s is hidden from the address book" : "%s is in the address book again",
				       argv[2]);
		int ret = finish(&cfg, &ctx, prov_hidden(ctx.prov, argv[2], hide, &ctx.err), done);
		free(done);
		return ret;
	}
	enum { O_ADD = 1, O_REMOVE, O_PRIMARY };
	static const struct option opts[] = {
		{ "add", required_argument, NULL, O_ADD },
		{ "remove", required_argument, NULL, O_REMOVE },
		{ "primary", required_argument, NULL, O_PRIMARY },
		{ NULL, 0, NULL, 0 },
	};
	const char **add = xcalloc((size_t)argc, sizeof(char *)), **del = xcalloc((size_t)argc, sizeof(char *));
	const char *primary = NULL;
	size_t nadd = 0, ndel = 0;
	int c, ret = CLI_EXIT_USAGE;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == O_ADD)
			add[nadd++] = optarg;
		else if (c == O_REMOVE)
			del[ndel++] = optarg;
		else if (c == O_PRIMARY)
			primary = optarg;
		else
			goto usage;
	}
	if (argc - optind != 1 || (nadd == 0 && ndel == 0 && primary == NULL))
		goto usage;
	if (with_directory(data_dir, &cfg, &ctx) < 0) {
		ret = CLI_EXIT_FAIL;
	} else {
		char *done = xasprintf("Changed the addresses of %s", argv[optind]);
		ret = finish(&cfg, &ctx,
			     prov_addresses(ctx.prov, argv[optind], primary, add, nadd, del, ndel, &ctx.err), done);
		free(done);
	}
	free(add);
	free(del);
	return ret;
usage:
	free(add);
	free(del);
	return usage_error(help, "address needs one recipient and --add, --remove or --primary ADDR");
}

/* ---- user ---- */

static const char user_help[] =
	"usage: interchange user add LOGIN --given G --surname S --password PW [--alias ADDR]... [--hidden]\n"
	"                              [--server NAME] [--posix]\n"
	"       interchange user del LOGIN\n"
	"       interchange user passwd LOGIN --password PW\n"
	"       interchange user show LOGIN\n"
	"       interchange user list\n"
	"       interchange user address LOGIN [--add ADDR]... [--remove ADDR]... [--primary ADDR]\n"
	"       interchange user hidden LOGIN yes|no\n"
	"       interchange user restrict LOGIN [--accept-from R]... [--reject-from R]... [--authenticated-only|--anyone]\n"
	"                                       [--max-size BYTES] [--clear]\n"
	"       interchange user forward LOGIN --to R [--keep-copy] | --none\n"
	"       interchange user delegate OWNER --send-as R | --send-on-behalf R | --full-access USER [--revoke]\n"
	"       interchange user quota LOGIN [--bytes N] [--messages N] [--warn-bytes N]\n"
	"       interchange user set LOGIN [--title T] [--department D] [--company C] [--office O] [--phone P]\n"
	"                                  [--mobile M] [--manager LOGIN]\n"
	"       interchange user photo LOGIN FILE.jpg | --none\n"
	"       interchange user move LOGIN --to SERVER [--admin-password PW]\n"
	"       interchange user app-password add LOGIN NAME | list LOGIN | del LOGIN NAME\n"
	"       interchange user sieve LOGIN [--show NAME | --put NAME FILE [--activate NAME] | --activate NAME |\n"
	"                                    --deactivate | --delete NAME]\n"
	"       interchange user oof LOGIN --on [--internal TEXT] [--external TEXT] [--from DATE] [--until DATE]\n"
	"                                  [--external-audience none|all] | --off\n\n"
	"Mailbox users. The attendant gives a new user its primary address from the recipient policy\n"
	"(given.surname@domain) within a second; --alias adds secondary addresses (user address adds and removes\n"
	"them later, and makes one the primary: the old one stays as a secondary). --hidden keeps the user out\n"
	"of the address book (user hidden LOGIN yes|no later); --posix makes it a POSIX account too (uidNumber from the directory's range, home\n"
	"/home/LOGIN, shell /bin/bash), for Linux hosts that use sssd. user set gives the details address books show\n"
	"(\"\" removes one); user photo a JPEG, made smaller when above 100 KiB. An app password is for a mail client\n"
	"(IMAP, POP3, SMTP; never LDAP binds): add prints it once, on its last line. user delegate --full-access lets\n"
	"USER open every folder of OWNER's mailbox over IMAP (Other Users/OWNER/...) and sign in to it with their own\n"
	"password (SASL PLAIN with OWNER as the authorization identity). All commands take --data DIR.\n";

/* user app-password add LOGIN NAME | list LOGIN | del LOGIN NAME */
static int user_app_password(const char *data_dir, int argc, char **argv)
{
	const char *op = argc > 2 ? argv[2] : "";
	int want = strcmp(op, "list") == 0 ? 1 : strcmp(op, "add") == 0 || strcmp(op, "del") == 0 ? 2 : -1;
	if (want < 0 || argc != 3 + want)
		return usage_error(user_help, "user app-password takes add LOGIN NAME, list LOGIN or del LOGIN NAME");
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	const char *login = argv[3], *name = want == 2 ? argv[4] : NULL;
	char *done = NULL, *made = NULL;
	int r;
	if (strcmp(op, "list") == 0) {
		r = prov_app_password_list(ctx.prov, login, &ctx.out, &ctx.err);
	} else if (strcmp(op, "del") == 0) {
		r = prov_app_password_del(ctx.prov, login, name, &ctx.err);
		done = xasprintf("Deleted the app password %s of %s", name, login);
	} else {
		r = prov_app_password_add(ctx.prov, login, name, &made, &ctx.err);
		if (r == IX_OK) {
			buf_printf(&ctx.out,
				   "Added the app password %s of %s (IMAP, POP3 and SMTP; shown this once):\n", name,
				   login);
			done = made;
			made = NULL;
		}
	}
	int ret = finish(&cfg, &ctx, r, done);
	if (done != NULL)
		explicit_bzero(done, strlen(done));
	free(done);
	return ret;
}

/* user forward | delegate | quota */
static int user_settings(const char *data_dir, int argc, char **argv)
{
	enum { O_TO = 1, O_KEEP, O_NONE, O_AS, O_BEHALF, O_FULL, O_REVOKE, O_BYTES, O_MSGS, O_WARN };
	static const struct option opts[] = {
		{ "to", required_argument, NULL, O_TO },
		{ "keep-copy", no_argument, NULL, O_KEEP },
		{ "none", no_argument, NULL, O_NONE },
		{ "send-as", required_argument, NULL, O_AS },
		{ "send-on-behalf", required_argument, NULL, O_BEHALF },
		{ "full-access", required_argument, NULL, O_FULL },
		{ "revoke", no_argument, NULL, O_REVOKE },
		{ "bytes", required_argument, NULL, O_BYTES },
		{ "messages", required_argument, NULL, O_MSGS },
		{ "warn-bytes", required_argument, NULL, O_WARN },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = argv[1], *to = NULL, *delegate = NULL;
	int keep = 0, none = 0, revoke = 0;
	enum prov_delegate_right right = PROV_SEND_AS;
	long long q[3] = { -1, -1, -1 };
	opterr = 0;
	optind = 2;
	int c;
	unsigned long long v;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_TO: to = optarg; break;
		case O_KEEP: keep = 1; break;
		case O_NONE: none = 1; break;
		case O_AS:
		case O_BEHALF:
		case O_FULL:
			delegate = optarg;
			right = c == O_FULL ? PROV_FULL_ACCESS : c == O_BEHALF ? PROV_SEND_ON_BEHALF : PROV_SEND_AS;
			break;
		case O_REVOKE: revoke = 1; break;
		case O_BYTES:
		case O_MSGS:
		case O_WARN:
			if (parse_uint(optarg, 1ULL << 50, &v) < 0)
				return usage_error(user_help,
						   "quota values are whole numbers (0: no limit), not \"%s\"", optarg);
			q[c - O_BYTES] = (long long)v;
			break;
		default:
			return usage_error(user_help, "user %s: unknown or incomplete option %s", verb,
					   argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return usage_error(user_help, "user %s needs exactly one LOGIN", verb);
	const char *login = argv[optind];
	if (strcmp(verb, "forward") == 0 && (to == NULL) == !none)
		return usage_error(user_help, "user forward needs either --to R or --none");
	if (strcmp(verb, "delegate") == 0 && delegate == NULL)
		return usage_error(user_help,
				   "user delegate needs --send-as R, --send-on-behalf R or --full-access USER");
	if (strcmp(verb, "quota") == 0 && q[0] < 0 && q[1] < 0 && q[2] < 0)
		return usage_error(user_help, "user quota needs --bytes, --messages or --warn-bytes");
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	int r;
	char *done;
	if (strcmp(verb, "forward") == 0) {
		r = prov_forward(ctx.prov, login, to, keep, &ctx.err);
		done = to != NULL ? xasprintf("Mail for %s now goes to %s%s", login, to, keep ? " (a copy stays)" : "")
				  : xasprintf("Mail for %s is no longer forwarded", login);
	} else if (strcmp(verb, "delegate") == 0) {
		r = prov_delegate(ctx.prov, login, delegate, right, revoke, &ctx.err);
		static const char *const what[] = { [PROV_SEND_AS] = "the right to send as",
						    [PROV_SEND_ON_BEHALF] = "the right to send on behalf of",
						    [PROV_FULL_ACCESS] = "full access to the mailbox of" };
		done = xasprintf("%s %s %s %s", delegate, revoke ? "lost" : "has", what[right], login);
	} else {
		r = prov_quota(ctx.prov, login, q[0], q[1], q[2], &ctx.err);
		done = xasprintf("Changed the quota of %s", login);
	}
	int ret = finish(&cfg, &ctx, r, done);
	free(done);
	return ret;
}

/* user set | photo */
static int user_details(const char *data_dir, int argc, char **argv)
{
	enum { O_TITLE = 1, O_DEPT, O_COMPANY, O_OFFICE, O_PHONE, O_MOBILE, O_MANAGER, O_NONE };
	static const struct option opts[] = {
		{ "title", required_argument, NULL, O_TITLE },
		{ "department", required_argument, NULL, O_DEPT },
		{ "company", required_argument, NULL, O_COMPANY },
		{ "office", required_argument, NULL, O_OFFICE },
		{ "phone", required_argument, NULL, O_PHONE },
		{ "mobile", required_argument, NULL, O_MOBILE },
		{ "manager", required_argument, NULL, O_MANAGER },
		{ "none", no_argument, NULL, O_NONE },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = argv[1];
	int photo = strcmp(verb, "photo") == 0, none = 0, c;
	struct prov_person d = { 0 };
	const char **slot[] = { NULL, &d.title, &d.department, &d.company, &d.office, &d.phone, &d.mobile, &d.manager };
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == O_NONE && photo)
			none = 1;
		else if (c >= O_TITLE && c <= O_MANAGER && !photo)
			*slot[c] = optarg;
		else
			return usage_error(user_help, "user %s: unknown or incomplete option %s", verb,
					   argv[optind - 1]);
	}
	if (photo && argc - optind != (none ? 1 : 2))
		return usage_error(user_help, "user photo needs a LOGIN and a JPEG FILE, or a LOGIN and --none");
	if (!photo && argc - optind != 1)
		return usage_error(user_help, "user set needs exactly one LOGIN");
	const char *login = argv[optind];
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	int r;
	char *done;
	if (photo) {
		r = prov_user_photo(ctx.prov, login, none ? NULL : argv[optind + 1], &ctx.out, &ctx.err);
		done = none ? xasprintf("Removed the photo of %s", login) : xasprintf("Changed the photo of %s", login);
	} else {
		r = prov_user_set(ctx.prov, login, &d, &ctx.err);
		done = xasprintf("Changed the details of %s", login);
	}
	int ret = finish(&cfg, &ctx, r, done);
	free(done);
	return ret;
}

int cmd_user(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(user_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	if (strcmp(verb, "restrict") == 0)
		return run_restrict(data_dir, argc, argv, user_help);
	if (strcmp(verb, "address") == 0 || strcmp(verb, "hidden") == 0)
		return run_address(data_dir, argc, argv, user_help);
	if (strcmp(verb, "move") == 0)
		return user_move(data_dir, argc, argv);
	if (strcmp(verb, "app-password") == 0)
		return user_app_password(data_dir, argc, argv);
	if (strcmp(verb, "sieve") == 0)
		return user_sieve(data_dir, argc, argv);
	if (strcmp(verb, "oof") == 0)
		return user_oof(data_dir, argc, argv);
	if (strcmp(verb, "forward") == 0 || strcmp(verb, "delegate") == 0 || strcmp(verb, "quota") == 0)
		return user_settings(data_dir, argc, argv);
	if (strcmp(verb, "set") == 0 || strcmp(verb, "photo") == 0)
		return user_details(data_dir, argc, argv);
	static const struct option opts[] = {
		{ "given", required_argument, NULL, 'g' },    { "surname", required_argument, NULL, 's' },
		{ "password", required_argument, NULL, 'p' }, { "alias", required_argument, NULL, 'a' },
		{ "hidden", no_argument, NULL, 'H' },         { "server", required_argument, NULL, 'S' },
		{ "posix", no_argument, NULL, 'X' },          { NULL, 0, NULL, 0 },
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
		case 'X': u.posix = 1; break;
		default:
			ret = usage_error(user_help, "user: unknown or incomplete option %s", argv[optind - 1]);
			goto out;
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
		char *guid = NULL;
		unsigned long long qb, qm;
		if (r == IX_OK && prov_user_mailbox(ctx.prov, login, &guid, &qb, &qm, NULL) == IX_OK)
			user_oof_show(&cfg, guid, &ctx.out);
		free(guid);
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

static const char dl_help[] =
	"usage: interchange dl add NAME [--member RECIPIENT]... [--posix]\n"
	"       interchange dl member add|del NAME RECIPIENT\n"
	"       interchange dl show NAME\n"
	"       interchange dl address NAME [--add ADDR]... [--remove ADDR]... [--primary ADDR]\n"
	"       interchange dl hidden NAME yes|no\n"
	"       interchange dl restrict NAME [--accept-from R]... [--reject-from R]... [--members-only]\n"
	"                                    [--authenticated-only|--anyone] [--max-size BYTES] [--clear]\n\n"
	"Distribution lists. A RECIPIENT is a login, a list or contact name, or an address;\n"
	"lists may contain lists. The attendant gives a new list its address (name@domain). --posix makes it\n"
	"a POSIX group too (RFC 2307bis: a gidNumber from the directory's range, members by DN).\n";

int cmd_dl(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(dl_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	struct config cfg;
	struct run_ctx ctx;
	const char *verb = argv[1];
	if (strcmp(verb, "restrict") == 0)
		return run_restrict(data_dir, argc, argv, dl_help);
	if (strcmp(verb, "address") == 0 || strcmp(verb, "hidden") == 0)
		return run_address(data_dir, argc, argv, dl_help);
	if (strcmp(verb, "add") == 0) {
		static const struct option opts[] = { { "member", required_argument, NULL, 'm' },
						      { "posix", no_argument, NULL, 'X' },
						      { NULL, 0, NULL, 0 } };
		const char **members = xcalloc((size_t)argc, sizeof(char *));
		size_t n = 0;
		bool posix = false;
		opterr = 0;
		optind = 2;
		int c;
		while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
			if (c == 'X') {
				posix = true;
				continue;
			}
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
		int ret = finish(&cfg, &ctx, prov_dl_add(ctx.prov, argv[optind], members, n, posix, &ctx.err), done);
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

static const char folder_help[] =
	"usage: interchange folder add PATH\n"
	"       interchange folder rights PATH RECIPIENT RIGHTS\n"
	"       interchange folder list\n\n"
	"add creates a public folder (and any missing parents), e.g. Sales/Leads.\n"
	"rights sets what RECIPIENT (a login, an address, a list name, or anyone) may do in the folder: RFC 4314\n"
	"letters (l r s w i p k x t e a; a lets them manage the folder's rights over IMAP), or - to remove the entry.\n"
	"list shows every public folder with its address and rights.\n";

/* The rights of a public folder live in the information store's ACL (what IMAP enforces); the directory holds
 * the folders, their addresses and the recipients rights are given to. */
static int folder_rights(const char *data_dir, const char *path, const char *recipient, const char *rights)
{
	unsigned mask = 0;
	if (strcmp(rights, "-") != 0 && (store_rights_parse(rights, &mask) != IX_OK || mask == 0))
		return usage_error(folder_help, "\"%s\" is not an RFC 4314 rights string (or - to remove)", rights);
	while (*path == '/')
		path++;
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	struct buf folders = BUF_INIT;
	buf_append_char(&folders, '\n'); /* every line starts after a newline: "\nPATH\t" finds the folder */
	int ret = prov_folder_list(ctx.prov, &folders, &ctx.err);
	char *want = xasprintf("\n%s\t", path);
	if (ret == IX_OK && strstr(buf_cstr(&folders), want) == NULL) {
		buf_printf(&ctx.err, "no public folder %s (see interchange folder list)", path);
		ret = IX_ENOTFOUND;
	}
	free(want);
	buf_free(&folders);
	char *dn = NULL;
	if (ret == IX_OK && strcmp(recipient, STORE_ACL_ANYONE) != 0)
		ret = prov_find_recipient(ctx.prov, recipient, &dn, &ctx.err);
	free(dn);
	struct store *st = NULL;
	if (ret == IX_OK && cli_open_store(&cfg, &st) != IX_OK) {
		buf_append_str(&ctx.err, "the information store could not be opened");
		ret = IX_EIO;
	}
	if (ret == IX_OK)
		ret = store_public_folder_ensure(st, path, &ctx.err);
	if (ret == IX_OK)
		ret = store_acl_set(st, STORE_PUBLIC_GUID, path, recipient, mask, &ctx.err);
	if (st != NULL)
		store_close(&st);
	char *done = mask != 0 ? xasprintf("%s has the rights %s on public folder %s", recipient, rights, path)
			       : xasprintf("%s has no entry on public folder %s any more", recipient, path);
	ret = finish(&cfg, &ctx, ret, done);
	free(done);
	return ret;
}

/* Every public folder of the directory: path, address, and its rights from the store ("(default)" when the store
 * side is not made yet: it gets STORE_PUBLIC_DEFAULT_RIGHTS for anyone and every right for STORE_PUBLIC_ADMINS). */
static int folder_list(const char *data_dir)
{
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	struct buf folders = BUF_INIT;
	int ret = prov_folder_list(ctx.prov, &folders, &ctx.err);
	struct store *st = NULL;
	if (ret == IX_OK && cli_open_store(&cfg, &st) != IX_OK) {
		buf_append_str(&ctx.err, "the information store could not be opened");
		ret = IX_EIO;
	}
	if (ret == IX_OK)
		buf_printf(&ctx.out, "%-30s %-30s %s\n", "PATH", "ADDRESS", "RIGHTS");
	char *save = NULL;
	for (char *line = ret == IX_OK ? strtok_r(folders.data != NULL ? folders.data : (char *)"", "\n", &save) : NULL;
	     line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');
		if (tab == NULL)
			continue;
		*tab = '\0';
		struct buf acl = BUF_INIT, rights = BUF_INIT;
		if (store_acl_list(st, STORE_PUBLIC_GUID, line, &acl, NULL) != IX_OK) {
			buf_append_str(&rights, "(default)");
		} else {
			for (size_t i = 0; i < acl.len; i++)
				buf_append_char(&rights, acl.data[i] == '\n'  ? ','
							 : acl.data[i] == ' ' ? '='
									      : acl.data[i]);
			while (rights.len > 0 && rights.data[rights.len - 1] == ',')
				rights.data[--rights.len] = '\0';
		}
		buf_printf(&ctx.out, "%-30s %-30s %s\n", line, tab[1] != '\0' ? tab + 1 : "-", buf_cstr(&rights));
		buf_free(&acl);
		buf_free(&rights);
	}
	if (st != NULL)
		store_close(&st);
	buf_free(&folders);
	return finish(&cfg, &ctx, ret, NULL);
}

int cmd_folder(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(folder_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "rights") == 0 && argc == 5)
		return folder_rights(data_dir, argv[2], argv[3], argv[4]);
	if (strcmp(argv[1], "list") == 0 && argc == 2)
		return folder_list(data_dir);
	if (strcmp(argv[1], "add") != 0 || argc != 3)
		return usage_error(folder_help, "folder needs: add PATH, rights PATH RECIPIENT RIGHTS, or list");
	struct config cfg;
	struct run_ctx ctx;
	if (with_directory(data_dir, &cfg, &ctx) < 0)
		return CLI_EXIT_FAIL;
	char *done = xasprintf("Added public folder %s", argv[2]);
	int ret = finish(&cfg, &ctx, prov_folder_add(ctx.prov, argv[2], &ctx.err), done);
	free(done);
	return ret;
}
