/* cmd_store.c - interchange store check [--repair], mailbox show LOGIN, mailbox recover LOGIN [--since DATE]:
 * the information store's integrity checker and per-mailbox reports. The directory says which mailbox a login
 * owns and its quotas; the store library does the work. */
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/provision.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_open_store(const struct config *cfg, struct store **st_r)
{
	char *path = config_path(cfg, "store");
	struct buf err = BUF_INIT;
	int ret = store_open(path, NULL, st_r, &err);
	if (ret != IX_OK)
		cli_error("cannot open the information store at %s: %s", path, buf_cstr(&err));
	buf_free(&err);
	free(path);
	return ret;
}

int cli_open_mailbox(const struct config *cfg, const char *login, struct prov **p_r, struct store **st_r, char **guid_r,
		     unsigned long long *quota_r, struct buf *error_r)
{
	unsigned long long q[2] = { 0, 0 };
	int ret = prov_open(cfg, p_r, error_r);
	if (ret == IX_OK)
		ret = prov_user_mailbox(*p_r, login, guid_r, &q[0], &q[1], error_r);
	if (quota_r != NULL)
		memcpy(quota_r, q, sizeof(q));
	if (ret == IX_OK && cli_open_store(cfg, st_r) != IX_OK) {
		ret = IX_EIO;
		buf_reset(error_r);
	}
	return ret;
}

static const char store_help[] = "usage: interchange store check [--repair]\n\n"
				 "Verifies the whole information store (counts, UIDs, modseqs, reference counts,\n"
				 "orphans) and reports in plain words; --repair fixes what it can. Exit status 0 when\n"
				 "the store is clean (or was repaired), 1 when problems remain.\n";

int cmd_store(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(store_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	int repair = argc == 3 && strcmp(argv[2], "--repair") == 0;
	if (strcmp(argv[1], "check") != 0 || (argc == 3 && !repair) || argc > 3) {
		fprintf(stderr, "interchange: store: wrong arguments\n\n%s", store_help);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct store *st;
	if (cli_open_store(&cfg, &st) != IX_OK) {
		config_free(&cfg);
		return CLI_EXIT_FAIL;
	}
	struct buf report = BUF_INIT, err = BUF_INIT;
	unsigned problems = 0;
	int ret = store_check(st, repair, &report, &problems, &err);
	fputs(buf_cstr(&report), stdout);
	if (ret != IX_OK)
		cli_error("store check failed: %s", buf_cstr(&err));
	store_close(&st);
	buf_free(&report);
	buf_free(&err);
	config_free(&cfg);
	return ret == IX_OK && (problems == 0 || repair) ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static const char mailbox_help[] =
	"usage: interchange mailbox show LOGIN\n"
	"       interchange mailbox recover LOGIN [--since YYYY-MM-DD]\n\n"
	"show: the user's folders with messages, unseen, sizes, and quota use.\n"
	"recover: brings deleted items still within retention back into the folders they left.\n";

static int parse_date(const char *s, long long *t_r)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	*t_r = (long long)timegm(&tm);
	return 0;
}

int cmd_mailbox(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(mailbox_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	int show = strcmp(argv[1], "show") == 0, recover = strcmp(argv[1], "recover") == 0;
	long long since = 0;
	if (recover && argc == 5 && strcmp(argv[3], "--since") == 0) {
		if (parse_date(argv[4], &since) < 0) {
			cli_error("--since takes a date as YYYY-MM-DD, not \"%s\"", argv[4]);
			return CLI_EXIT_USAGE;
		}
	} else if (!(show || recover) || argc != 3) {
		fprintf(stderr, "interchange: mailbox: wrong arguments\n\n%s", mailbox_help);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct prov *p = NULL;
	struct store *st = NULL;
	struct buf out = BUF_INIT, err = BUF_INIT;
	char *guid = NULL;
	unsigned long long quota[2];
	int ret = cli_open_mailbox(&cfg, argv[2], &p, &st, &guid, quota, &err);
	if (ret == IX_OK) {
		buf_printf(&out, "Mailbox of %s (%s)\n", argv[2], guid);
		int frozen = 0, incomplete = 0;
		struct buf note = BUF_INIT;
		if (show && store_mailbox_frozen(st, guid, &frozen, &note, NULL) == IX_OK && frozen)
			buf_printf(&out, "Frozen: this copy was moved (or is being moved) to %s\n", buf_cstr(&note));
		if (show && store_mailbox_marked(st, guid, STORE_MARK_INCOMPLETE, &incomplete, NULL) == IX_OK &&
		    incomplete)
			buf_printf(&out,
				   "Incomplete: a copy a move is importing (the maintenance removes it if its owner's "
				   "home stays elsewhere)\n");
		buf_free(&note);
		ret = show ? store_report_mailbox(st, guid, quota[0], quota[1], &out, &err)
			   : store_report_recover(st, guid, since, &out, &err);
	}
	if (ret == IX_OK)
		fputs(buf_cstr(&out), stdout);
	else if (err.len > 0)
		cli_error("%s", buf_cstr(&err));
	store_close(&st);
	prov_close(&p);
	free(guid);
	buf_free(&out);
	buf_free(&err);
	config_free(&cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
