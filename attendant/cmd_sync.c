/* cmd_sync.c - interchange sync: sources of recipients in the organisation's existing directory (add, list, show,
 * run, del). The work is done by directory/sync_*.c; this file parses arguments and prints results. */
#include "attendant/cli.h"
#include "common/control.h"
#include "common/err.h"
#include "directory/sync.h"

#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char sync_help[] =
	"usage: interchange sync add NAME --uri URI --bind-dn DN --password PW --base DN [--type ldap|ad]\n"
	"                            [--filter FILTER] [--groups-base DN] [--ca FILE] [--grace-days N]\n"
	"                            [--poll-seconds N] [--auth local|passthrough]\n"
	"                            [--map OURATTR=THEIRATTR]...\n"
	"       interchange sync list\n"
	"       interchange sync show NAME\n"
	"       interchange sync run NAME\n"
	"       interchange sync del NAME [--keep]\n\n"
	"Users and groups of the organisation's existing directory (OpenLDAP, 389-DS, FreeIPA) become recipients\n"
	"here: each user a mailbox user (uid is the login, mail and further addresses its addresses), each group\n"
	"(groupOfNames, groupOfUniqueNames) a distribution list. The attendant follows each source (RFC 4533) and\n"
	"applies its changes as they come; 'run' reads the whole source now. Additions, changes and renames (matched\n"
	"by entryUUID) are applied; a user deleted at the source is disabled and hidden, its mailbox kept.\n"
	"An address or login another recipient holds is a conflict, shown by 'show' and never overwritten.\n"
	"The password is kept by this server only (DATA/sync/NAME.secret), never in the directory; the source is\n"
	"read over StartTLS with its certificate checked (against --ca FILE, else the system's CAs) unless the URI\n"
	"is on this machine. --map changes what an attribute is read from: OURATTR is one of uid, givenName, sn, cn,\n"
	"displayName, mail, ixProxyAddresses (further addresses), ixSyncAnchor, title, telephoneNumber.\n"
	"--type ad reads Active Directory: sAMAccountName the login, proxyAddresses the addresses, objectGUID the\n"
	"anchor, the disabled bit honoured, changes asked for every --poll-seconds (default 30). Users deleted at the\n"
	"source are removed after --grace-days (default 30; their mailboxes then follow the maintenance's rule).\n"
	"--auth passthrough: the source's users sign in here (IMAP, POP3, SMTP AUTH, ManageSieve, HTTP Basic, LDAP\n"
	"binds) with their password there, checked by a bind to their own source as their DN there, with a short\n"
	"cache of successes (hashed, in DATA/sync/NAME.passthrough) for a source that cannot be reached (server set\n"
	"sync.passthrough_cache_seconds); 'show' counts what the source and the cache answered. local (the default):\n"
	"they are given a password here with 'interchange user passwd'.\n"
	"del disables the source's users and deletes its lists; with --keep they stay as local recipients.\n";

static int usage(const char *fmt, ...) IX_PRINTF(1, 2);
static int usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("interchange: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s", sync_help);
	return CLI_EXIT_USAGE;
}

static int sync_add(struct sync_source *s, int argc, char **argv, const char ***maps_r)
{
	enum { O_URI = 1, O_BIND, O_PW, O_BASE, O_TYPE, O_FILTER, O_GROUPS, O_CA, O_MAP, O_GRACE, O_POLL, O_AUTH };
	static const struct option opts[] = {
		{ "uri", required_argument, NULL, O_URI },
		{ "bind-dn", required_argument, NULL, O_BIND },
		{ "password", required_argument, NULL, O_PW },
		{ "base", required_argument, NULL, O_BASE },
		{ "type", required_argument, NULL, O_TYPE },
		{ "filter", required_argument, NULL, O_FILTER },
		{ "groups-base", required_argument, NULL, O_GROUPS },
		{ "ca", required_argument, NULL, O_CA },
		{ "map", required_argument, NULL, O_MAP },
		{ "grace-days", required_argument, NULL, O_GRACE },
		{ "poll-seconds", required_argument, NULL, O_POLL },
		{ "auth", required_argument, NULL, O_AUTH },
		{ NULL, 0, NULL, 0 },
	};
	const char **maps = xcalloc((size_t)argc, sizeof(char *));
	*maps_r = maps;
	opterr = 0;
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_URI: s->uri = optarg; break;
		case O_BIND: s->bind_dn = optarg; break;
		case O_PW: s->password = optarg; break;
		case O_BASE: s->base = optarg; break;
		case O_TYPE: s->type = optarg; break;
		case O_FILTER: s->filter = optarg; break;
		case O_GROUPS: s->groups_base = optarg; break;
		case O_CA: s->ca_file = optarg; break;
		case O_MAP: maps[s->map_count++] = optarg; break;
		case O_GRACE: s->grace_days = optarg; break;
		case O_POLL: s->poll_seconds = optarg; break;
		case O_AUTH: s->auth = optarg; break;
		default: return usage("sync add: unknown or incomplete option %s", argv[optind - 1]);
		}
	}
	if (argc - optind != 1 || s->uri == NULL || s->bind_dn == NULL || s->password == NULL || s->base == NULL)
		return usage("sync add needs one NAME, --uri, --bind-dn, --password and --base");
	s->name = argv[optind];
	s->maps = maps;
	return 0;
}

/* sync show's line of pass-through sign-in, from the attendant that runs the source's relay (status); nothing when
 * the attendant does not answer or the source has no relay here. */
static void show_passthrough(const struct config *cfg, const char *name, struct buf *out)
{
	struct buf answer = BUF_INIT, err = BUF_INIT;
	json_t *o = control_ask(cfg, "status\n", 5, &answer, &err) == IX_OK ? json_loads(buf_cstr(&answer), 0, NULL)
									    : NULL;
	size_t i;
	json_t *src;
	json_array_foreach(json_object_get(o, "sync"), i, src)
	{
		json_t *pt = json_object_get(src, "passthrough");
		if (!json_is_object(pt) || !json_is_string(json_object_get(src, "name")) ||
		    strcmp(json_string_value(json_object_get(src, "name")), name) != 0)
			continue;
		buf_printf(out,
			   "  %-17s %lld taken by the source, %lld refused by it; while it could not be reached %lld "
			   "signed in by the cache, %lld refused; %lld users cached\n",
			   "Pass-through", (long long)json_integer_value(json_object_get(pt, "accepted")),
			   (long long)json_integer_value(json_object_get(pt, "refused")),
			   (long long)json_integer_value(json_object_get(pt, "cached")),
			   (long long)json_integer_value(json_object_get(pt, "unreachable")),
			   (long long)json_integer_value(json_object_get(pt, "cache_entries")));
	}
	json_decref(o);
	buf_free(&answer);
	buf_free(&err);
}

static void show_progress(void *ctx, const char *phase, size_t done, size_t total)
{
	int tty = *(int *)ctx;
	printf("%s%s %zu of %zu%s", tty ? "\r" : "", phase, done, total, tty && done < total ? "" : "\n");
	fflush(stdout);
}

int cmd_sync(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(sync_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	struct sync_source s = { 0 };
	const char **maps = NULL;
	int keep = 0;
	if (strcmp(verb, "add") == 0) {
		int u = sync_add(&s, argc, argv, &maps);
		if (u != 0) {
			free(maps);
			return u;
		}
	} else if (strcmp(verb, "list") == 0) {
		if (argc != 2)
			return usage("sync list takes no arguments");
	} else if (strcmp(verb, "show") == 0 || strcmp(verb, "run") == 0) {
		if (argc != 3)
			return usage("sync %s needs exactly one NAME", verb);
	} else if (strcmp(verb, "del") == 0) {
		keep = argc == 4 && strcmp(argv[3], "--keep") == 0;
		if (argc != 3 && !keep)
			return usage("sync del needs one NAME and optionally --keep");
	} else {
		return usage("unknown sync command \"%s\"", verb);
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0) {
		free(maps);
		return CLI_EXIT_FAIL;
	}
	struct prov *p = NULL;
	struct buf out = BUF_INIT, err = BUF_INIT;
	int ret = prov_open(&cfg, &p, &err);
	struct sync_result r;
	if (ret == IX_OK) {
		if (strcmp(verb, "add") == 0) {
			ret = sync_source_add(p, &cfg, &s, &err);
			if (ret == IX_OK)
				buf_printf(
					&out,
					"Added sync source %s (%s, users under %s); the attendant follows it (see 'interchange "
					"sync show %s')\n",
					s.name, s.uri, s.base, s.name);
		} else if (strcmp(verb, "list") == 0) {
			ret = sync_source_list(p, &cfg, &out, &err);
		} else if (strcmp(verb, "show") == 0) {
			ret = sync_source_show(p, &cfg, argv[2], &out, &err);
			if (ret == IX_OK)
				show_passthrough(&cfg, argv[2], &out);
		} else if (strcmp(verb, "run") == 0) {
			int tty = isatty(STDOUT_FILENO);
			ret = sync_run(p, &cfg, argv[2], show_progress, &tty, &r, &err);
			if (ret == IX_OK)
				buf_printf(
					&out,
					"Synced %s: %zu added, %zu changed, %zu renamed, %zu disabled or deleted; now %zu "
					"users (%zu disabled), %zu lists; %zu conflicts, %zu errors%s\n",
					argv[2], r.added, r.changed, r.renamed, r.deleted, r.users, r.disabled, r.lists,
					r.conflicts, r.errors,
					r.conflicts + r.errors > 0 ? " (see 'interchange sync show')" : "");
		} else {
			ret = sync_source_del(p, &cfg, argv[2], keep, &err);
			if (ret == IX_OK)
				buf_printf(&out, "Deleted sync source %s; its recipients %s\n", argv[2],
					   keep ? "stay as local ones" : "are disabled (users) or deleted (lists)");
		}
	}
	if (ret == IX_OK)
		fputs(buf_cstr(&out), stdout);
	else
		cli_error("%s", buf_cstr(&err));
	prov_close(&p);
	buf_free(&out);
	buf_free(&err);
	config_free(&cfg);
	free(maps);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
