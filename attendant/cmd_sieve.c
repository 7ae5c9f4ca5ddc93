/* cmd_sieve.c - `interchange user sieve`: a user's Sieve scripts in the store (docs/sieve.md): list them, print
 * one, put one (checked by the Sieve parser first), activate, deactivate and delete; `interchange sieve global`: the
 * organisation's global scripts in the directory, the same way; `interchange user oof`: out of office. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attendant/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"
#include "store/store.h"
#include "transport/mta/mta.h"
#include "transport/sieve/sieve.h"

static const char sieve_help[] =
	"usage: interchange user sieve LOGIN\n"
	"       interchange user sieve LOGIN --show NAME\n"
	"       interchange user sieve LOGIN --put NAME FILE [--activate NAME]\n"
	"       interchange user sieve LOGIN --activate NAME | --deactivate | --delete NAME\n\n"
	"A user's Sieve scripts (RFC 5228), kept with the mailbox: without an option the list, the active one marked;\n"
	"--show prints one; --put checks FILE and stores it as NAME; --activate makes one the active script;\n"
	"--delete removes one that is not active. Delivery runs the active script (docs/sieve.md).\n";

/* The script in file into text, checked by the Sieve parser (its size too). Returns 0, or -1 having said why. */
static int script_read(const char *file, struct buf *text)
{
	char *data;
	size_t len;
	if (read_file(file, STORE_SIEVE_SCRIPT_MAX, &data, &len) != 0) {
		cli_error("cannot read %s", file);
		return -1;
	}
	buf_append(text, data, len);
	free(data);
	struct buf err = BUF_INIT;
	struct sieve_script *s = NULL;
	int ret = sieve_parse(buf_cstr(text), text->len, 0, &s, &err);
	sieve_free(s);
	if (ret != IX_OK)
		cli_error("%s: %s", file, buf_cstr(&err));
	buf_free(&err);
	return ret == IX_OK ? 0 : -1;
}

int user_sieve(const char *data_dir, int argc, char **argv)
{
	enum { O_SHOW = 1, O_PUT, O_ACTIVATE, O_DEACTIVATE, O_DELETE };
	static const struct option opts[] = {
		{ "show", required_argument, NULL, O_SHOW },         { "put", required_argument, NULL, O_PUT },
		{ "activate", required_argument, NULL, O_ACTIVATE }, { "deactivate", no_argument, NULL, O_DEACTIVATE },
		{ "delete", required_argument, NULL, O_DELETE },     { NULL, 0, NULL, 0 },
	};
	if (argc < 3 || cli_wants_help(argc, argv)) {
		fputs(sieve_help, argc < 3 ? stderr : stdout);
		return argc < 3 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *login = argv[2], *show = NULL, *put = NULL, *activate = NULL, *del = NULL;
	int deactivate = 0, o;
	optind = 3;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_SHOW: show = optarg; break;
		case O_PUT: put = optarg; break;
		case O_ACTIVATE: activate = optarg; break;
		case O_DEACTIVATE: deactivate = 1; break;
		case O_DELETE: del = optarg; break;
		default:
			fprintf(stderr, "interchange: user sieve: wrong arguments\n\n%s", sieve_help);
			return CLI_EXIT_USAGE;
		}
	}
	const char *file = NULL;
	if (put != NULL) {
		if (optind != argc - 1) {
			fprintf(stderr, "interchange: user sieve: --put NAME takes a FILE\n\n%s", sieve_help);
			return CLI_EXIT_USAGE;
		}
		file = argv[optind];
	} else if (optind != argc) {
		fprintf(stderr, "interchange: user sieve: wrong arguments\n\n%s", sieve_help);
		return CLI_EXIT_USAGE;
	}
	struct buf text = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
	int ret = IX_OK;
	if (file != NULL && script_read(file, &text) < 0) {
		buf_free(&text);
		return CLI_EXIT_FAIL;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct prov *p = NULL;
	struct store *st = NULL;
	char *guid = NULL;
	ret = cli_open_mailbox(&cfg, login, &p, &st, &guid, NULL, &err);
	if (ret == IX_OK && file != NULL) {
		ret = store_sieve_put(st, guid, put, buf_cstr(&text), text.len, &err);
		if (ret == IX_OK)
			buf_printf(&out, "script %s stored for %s\n", put, login);
	}
	if (ret == IX_OK && activate != NULL) {
		ret = store_sieve_activate(st, guid, activate, &err);
		if (ret == IX_OK)
			buf_printf(&out, "script %s is active for %s\n", activate, login);
	}
	if (ret == IX_OK && deactivate) {
		ret = store_sieve_activate(st, guid, NULL, &err);
		if (ret == IX_OK)
			buf_printf(&out, "no script is active for %s\n", login);
	}
	if (ret == IX_OK && del != NULL) {
		ret = store_sieve_delete(st, guid, del, &err);
		if (ret == IX_OK)
			buf_printf(&out, "script %s deleted\n", del);
	}
	if (ret == IX_OK && show != NULL)
		ret = store_sieve_get(st, guid, show, &out, &err);
	if (ret == IX_OK && show == NULL && file == NULL && activate == NULL && !deactivate && del == NULL) {
		struct buf names = BUF_INIT, active = BUF_INIT;
		ret = store_sieve_list(st, guid, &names, &active, &err);
		char *save = NULL;
		for (char *n = ret == IX_OK && names.data ? strtok_r(names.data, "\n", &save) : NULL; n != NULL;
		     n = strtok_r(NULL, "\n", &save))
			buf_printf(&out, "%s%s\n", n, strcmp(n, buf_cstr(&active)) == 0 ? " (active)" : "");
		buf_free(&names);
		buf_free(&active);
	}
	if (ret == IX_OK)
		fputs(buf_cstr(&out), stdout);
	else if (err.len > 0)
		cli_error("%s", buf_cstr(&err));
	else
		cli_error("%s", ix_strerror(ret));
	store_close(&st);
	prov_close(&p);
	free(guid);
	buf_free(&out);
	buf_free(&err);
	buf_free(&text);
	config_free(&cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static const char global_help[] =
	"usage: interchange sieve global list\n"
	"       interchange sieve global show NAME\n"
	"       interchange sieve global put NAME FILE\n"
	"       interchange sieve global del NAME\n\n"
	"The organisation's global Sieve scripts, which users' scripts run with include :global \"NAME\" (RFC 6609).\n"
	"Kept in the directory, so every server's delivery finds them: list prints their names; show prints one;\n"
	"put checks FILE with the Sieve parser and stores it as NAME (letters, digits, '.', '-', '_'), replacing one of\n"
	"that name; del removes one. A script holds at most 64 KiB, the organisation at most 32 (docs/sieve.md).\n";

static int global_list(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	(void)ctx;
	size_t n = 0;
	int ret = prov_sieve_global_list(p, out, &n, err);
	if (ret == IX_OK && n == 0)
		buf_append_str(out, "No global scripts.\n");
	return ret;
}

static int global_show(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	return prov_sieve_global_get(p, ctx, out, err);
}

struct global_put {
	const char *name;
	struct buf text;
};

static int global_put(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	struct global_put *g = ctx;
	int ret = prov_sieve_global_put(p, g->name, buf_cstr(&g->text), SIEVE_MAX_SCRIPTS, err);
	if (ret == IX_OK)
		buf_printf(out, "global script %s stored\n", g->name);
	return ret;
}

static int global_del(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	int ret = prov_sieve_global_del(p, ctx, err);
	if (ret == IX_OK)
		buf_printf(out, "global script %s deleted\n", (const char *)ctx);
	return ret;
}

int cmd_sieve(const char *data_dir, int argc, char **argv)
{
	if (argc < 3 || strcmp(argv[1], "global") != 0 || cli_wants_help(argc, argv)) {
		int help = cli_wants_help(argc, argv);
		fputs(global_help, help ? stdout : stderr);
		return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	const char *verb = argv[2];
	if (strcmp(verb, "list") == 0 && argc == 3)
		return cli_with_prov(data_dir, global_list, NULL);
	if (strcmp(verb, "show") == 0 && argc == 4)
		return cli_with_prov(data_dir, global_show, argv[3]);
	if (strcmp(verb, "del") == 0 && argc == 4)
		return cli_with_prov(data_dir, global_del, argv[3]);
	if (strcmp(verb, "put") == 0 && argc == 5) {
		struct global_put g = { argv[3], BUF_INIT };
		int ret = script_read(argv[4], &g.text) < 0 ? CLI_EXIT_FAIL : cli_with_prov(data_dir, global_put, &g);
		buf_free(&g.text);
		return ret;
	}
	fprintf(stderr, "interchange: sieve: wrong arguments\n\n%s", global_help);
	return CLI_EXIT_USAGE;
}

static const char oof_help[] =
	"usage: interchange user oof LOGIN --on [--internal TEXT] [--external TEXT] [--subject TEXT] [--from DATE]\n"
	"                                  [--until DATE] [--external-audience none|known|all]\n"
	"       interchange user oof LOGIN --off\n\n"
	"Out of office: an automatic reply with one text for senders inside the organisation (its domains) and\n"
	"another outside (--external-audience all, the default; known: only the organisation's contacts, the\n"
	"external addresses of its address book as they are now; or none), between --from and --until (YYYY-MM-DD,\n"
	"both days included, UTC) when given; one reply per sender in sieve.vacation_days (7), never to lists,\n"
	"automatic mail or the null sender. Kept as the script " SIEVE_OOF_NAME " beside the user's own.\n";

static int valid_date(const char *s)
{
	int y, m, d;
	char tail;
	return s == NULL || (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && m >= 1 &&
			     m <= 12 && d >= 1 && d <= 31);
}

int user_oof(const char *data_dir, int argc, char **argv)
{
	enum { O_ON = 1, O_OFF, O_INTERNAL, O_EXTERNAL, O_SUBJECT, O_FROM, O_UNTIL, O_AUDIENCE };
	static const struct option opts[] = {
		{ "on", no_argument, NULL, O_ON },
		{ "off", no_argument, NULL, O_OFF },
		{ "internal", required_argument, NULL, O_INTERNAL },
		{ "external", required_argument, NULL, O_EXTERNAL },
		{ "subject", required_argument, NULL, O_SUBJECT },
		{ "from", required_argument, NULL, O_FROM },
		{ "until", required_argument, NULL, O_UNTIL },
		{ "external-audience", required_argument, NULL, O_AUDIENCE },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 3 || cli_wants_help(argc, argv)) {
		fputs(oof_help, argc < 3 ? stderr : stdout);
		return argc < 3 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	struct sieve_oof o = { .audience = SIEVE_OOF_ALL };
	int on = 0, off = 0, opt;
	optind = 3;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_ON: on = 1; break;
		case O_OFF: off = 1; break;
		case O_INTERNAL: o.internal = optarg; break;
		case O_EXTERNAL: o.external = optarg; break;
		case O_SUBJECT: o.subject = optarg; break;
		case O_FROM: o.from = optarg; break;
		case O_UNTIL: o.until = optarg; break;
		case O_AUDIENCE:
			o.audience = sieve_oof_audience(optarg);
			if (o.audience < 0) {
				fprintf(stderr,
					"interchange: user oof: --external-audience is none, known or all\n\n%s",
					oof_help);
				return CLI_EXIT_USAGE;
			}
			break;
		default:
			fprintf(stderr, "interchange: user oof: wrong arguments\n\n%s", oof_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (on == off || optind != argc || !valid_date(o.from) || !valid_date(o.until) ||
	    (on && o.internal == NULL && o.external == NULL)) {
		fprintf(stderr, "interchange: user oof: %s\n\n%s",
			on == off                                        ? "give --on or --off"
			: on && o.internal == NULL && o.external == NULL ? "--on needs --internal or --external"
									 : "wrong arguments (dates are YYYY-MM-DD)",
			oof_help);
		return CLI_EXIT_USAGE;
	}
	if (o.internal == NULL)
		o.internal = o.external;
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct prov *p = NULL;
	struct store *st = NULL;
	struct buf err = BUF_INIT;
	char *guid = NULL;
	int ret = cli_open_mailbox(&cfg, argv[2], &p, &st, &guid, NULL, &err);
	if (ret == IX_OK)
		ret = mta_oof_set(p, st, guid, on ? &o : NULL, &err);
	if (ret == IX_OK)
		printf("out of office is %s for %s\n", on ? "on" : "off", argv[2]);
	else
		cli_error("%s", err.len ? buf_cstr(&err) : ix_strerror(ret));
	store_close(&st);
	prov_close(&p);
	free(guid);
	buf_free(&err);
	config_free(&cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

void user_oof_show(const struct config *cfg, const char *guid, struct buf *out)
{
	struct store *st = NULL;
	struct buf text = BUF_INIT;
	if (cli_open_store(cfg, &st) == IX_OK && store_sieve_get(st, guid, SIEVE_OOF_NAME, &text, NULL) == IX_OK) {
		buf_append_str(out, "Out of office: on (");
		sieve_oof_describe(buf_cstr(&text), text.len, out);
		buf_append_str(out, ")\n");
	} else
		buf_append_str(out, "Out of office: off\n");
	store_close(&st);
	buf_free(&text);
}
