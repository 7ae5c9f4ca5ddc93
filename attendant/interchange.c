/* interchange.c - the one command a person types: finds --data, dispatches to the subcommand, prints help.
 * The subcommands live in cmd_system.c (init, start, stop, status) and cmd_recipients.c (user, contact, dl,
 * folder). */
#include "attendant/cli.h"
#include "directory/provision.h"
#include "directory/replication.h"
#include "common/err.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/privs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct cli_command commands[] = {
	{ "init", cmd_init, "create a data folder: directory, certificate, organisation, this server" },
	{ "start", cmd_start, "start the system (the attendant, slapd and every service)" },
	{ "stop", cmd_stop, "stop the system; nothing is left running" },
	{ "status", cmd_status, "show services, ports and the directory (--json for scripts)" },
	{ "user", cmd_user, "mailbox users: add, del, passwd, show, list" },
	{ "contact", cmd_contact, "contacts (external recipients): add" },
	{ "dl", cmd_dl, "distribution lists: add, member add|del, show" },
	{ "folder", cmd_folder, "public folders: add" },
	{ "app", cmd_app, "application accounts that search the address book: add, list, del, passwd" },
	{ "import", cmd_import, "moving in: mailboxes from another server (imap LOGIN --from imaps://HOST ...)" },
	{ "mailbox", cmd_mailbox, "a user's mailbox: show (folders, counts, quota), recover deleted items" },
	{ "store", cmd_store, "the information store: check [--repair]" },
	{ "logs", cmd_logs, "a service's log: the last lines, or --follow" },
	{ "maintenance", cmd_maintenance, "run the scheduled housekeeping now" },
	{ "dmarc", cmd_dmarc, "DMARC aggregate reports (RFC 7489): report --now sends them now" },
	{ "backup", cmd_backup, "consistent online backup of this server into a new folder" },
	{ "restore", cmd_restore, "restore a backup into a new data folder" },
	{ "queue", cmd_queue, "the mail queue: list [--json], show ID, flush, delete ID" },
	{ "track", cmd_track, "message tracking: every event for an ADDRESS or a MESSAGE-ID" },
	{ "oauth", cmd_oauth, "issuers whose bearer tokens sign users in (OAUTHBEARER): add, list, del" },
	{ "kerberos", cmd_kerberos, "Kerberos sign-in (GSSAPI): keytab, realm, principal, show" },
	{ "sync", cmd_sync, "users and groups from the organisation's directory: add, list, show, run, del" },
	{ "domain", cmd_domain, "the organisation's domains: list, dkim DOMAIN [--rotate] (keys, DNS records)" },
	{ "sieve", cmd_sieve, "global Sieve scripts (include :global): global list, show, put, del" },
	{ "connector", cmd_connector, "routes for other domains through smart hosts: add, list, del" },
	{ "cert", cmd_cert, "this server's TLS certificate: show, install, renew (published on every server first)" },
	{ "dns", cmd_dns, "every DNS record to publish for a domain (MX, SPF, DMARC, MTA-STS, SRV, TLSA...)" },
	{ "server", cmd_server, "servers of the organisation: list, show, set SETTING VALUE" },
	{ "role", cmd_role, "administrative roles (Organisation, Recipient, View-Only Admins): list, add, del" },
	{ "audit", cmd_audit, "the audit log: every change, by whom, from the command line and the API" },
	{ "replication", cmd_replication, "directory replication between the servers: IDs, providers, contextCSN" },
};

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("interchange: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int cli_load_config_keep(const char *data_dir, struct config *cfg)
{
	struct buf err = BUF_INIT;
	int ret = config_load(data_dir, cfg, &err);
	if (ret != 0)
		cli_error("%s", buf_cstr(&err));
	buf_free(&err);
	return ret == 0 ? 0 : -1;
}

int cli_load_config(const char *data_dir, struct config *cfg)
{
	if (cli_load_config_keep(data_dir, cfg) < 0)
		return -1;
	struct buf err = BUF_INIT;
	int ret = privs_drop(cfg->user, 0, &err);
	if (ret != 0) {
		cli_error("%s", buf_cstr(&err));
		config_free(cfg);
	}
	buf_free(&err);
	return ret == 0 ? 0 : -1;
}

void cli_print_created(const struct config *cfg)
{
	printf("Created %s for %s\n  directory: %s (admin %s)\n  host name: %s\n", cfg->data_dir, cfg->domain,
	       cfg->suffix, cfg->admin_dn, cfg->hostname);
	if (cfg->user != NULL)
		printf("  services run as: %s\n", cfg->user);
	printf("  ports:");
	for (int p = 0; p < PORT_COUNT; p++)
		printf(" %s %u%s", config_port_name(p), cfg->ports[p], p + 1 < PORT_COUNT ? "," : "\n");
	printf("Start it with: interchange start --data %s\n", cfg->data_dir);
}

int cli_port_option(int c, int base, const char *arg, unsigned ports[PORT_COUNT])
{
	unsigned long long v;
	if (parse_uint(arg, 65535, &v) < 0 || v == 0) {
		cli_error("--%s-port needs a number from 1 to 65535, not \"%s\"", config_port_name(c - base), arg);
		return -1;
	}
	ports[c - base] = (unsigned)v;
	return 0;
}

void cli_ports_standard(unsigned ports[PORT_COUNT], const bool given[PORT_COUNT])
{
	for (int p = 0; p < PORT_COUNT; p++) {
		if (!given[p])
			ports[p] = config_port_standard(p);
	}
}

int cli_ports_distinct(const unsigned ports[PORT_COUNT])
{
	for (int p = 0; p < PORT_COUNT; p++) {
		for (int q = 0; q < p; q++) {
			if (ports[p] == ports[q]) {
				cli_error("the %s and %s ports are both %u: each needs its own", config_port_name(q),
					  config_port_name(p), ports[p]);
				return -1;
			}
		}
	}
	return 0;
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
		if (strcmp(argv[i], "--") == 0)
			break;
	}
	return 0;
}

int cli_as_service_user(const struct config *cfg, int (*fn)(const struct config *cfg, void *ctx, struct buf *error_r),
			void *ctx, struct buf *error_r)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		buf_printf(error_r, "pipe: %s", strerror(errno));
		return IX_EIO;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		buf_printf(error_r, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return IX_EIO;
	}
	if (pid == 0) {
		close(fds[0]);
		struct buf err = BUF_INIT;
		int r = privs_drop(cfg->user, 0, &err);
		if (r == IX_OK)
			r = fn(cfg, ctx, &err);
		if (r != IX_OK)
			(void)write_full(fds[1], buf_cstr(&err), err.len);
		fflush(NULL);
		_exit(r == IX_OK ? 0 : 1);
	}
	close(fds[1]);
	buf_read_fd(error_r, fds[0], 64 * 1024);
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			break;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return IX_OK;
	if (error_r->len == 0)
		buf_append_str(error_r, "the work ended without a word");
	return IX_EIO;
}

int cli_help_or_usage(int argc, char **argv, const char *help)
{
	if (argc >= 2 && !cli_wants_help(argc, argv))
		return -1;
	fputs(help, argc < 2 ? stderr : stdout);
	return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}

int cli_finish(int ret, struct buf *out, struct buf *err, struct config *cfg)
{
	if (ret == IX_OK)
		fputs(buf_cstr(out), stdout);
	else
		cli_error("%s", buf_cstr(err));
	if (out->data != NULL)
		explicit_bzero(out->data, out->len);
	buf_free(out);
	buf_free(err);
	config_free(cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_with_prov(const char *data_dir,
		  int (*fn)(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err),
		  void *ctx)
{
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct prov *p;
	struct buf out = BUF_INIT, err = BUF_INIT;
	int ret = prov_open(&cfg, &p, &err);
	if (ret == IX_OK) {
		ret = fn(&cfg, p, ctx, &out, &err);
		prov_close(&p);
	}
	return cli_finish(ret, &out, &err, &cfg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: interchange [--data DIR] COMMAND [ARGS...]\n\n"
		"Interchange is a mail and directory server. Every command takes --data DIR (default %s)\n"
		"and --help.\n\ncommands:\n",
		paths_default_data()[0] == '/' ? paths_default_data() : "./var");
	for (size_t i = 0; i < IX_ARRAY_LEN(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	log_set_name("interchange");
	umask(027); /* nothing in a data folder is for other users: mail, keys, the directory */
	signal(SIGPIPE, SIG_IGN);
	/* never read ~/.ldaprc or /etc/ldap/ldap.conf (docs/slapd-facts.md, "Client configuration files") */
	setenv("LDAPNOINIT", "1", 1);
	/* --data may stand anywhere; take it out so subcommands see only their own arguments */
	const char *data_dir = paths_default_data();
	int n = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0') {
				cli_error("--data needs a folder, e.g. --data ./var");
				return CLI_EXIT_USAGE;
			}
			data_dir = argv[++i];
		} else if (strncmp(argv[i], "--data=", 7) == 0) {
			data_dir = argv[i] + 7;
			if (*data_dir == '\0') {
				cli_error("--data needs a folder, e.g. --data ./var");
				return CLI_EXIT_USAGE;
			}
		} else {
			argv[n++] = argv[i];
		}
	}
	argc = n;
	argv[argc] = NULL;
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(commands); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			struct cli_audit_call audit;
			cli_audit_start(argc - 1, argv + 1, &audit);
			int ret = commands[i].fn(data_dir, argc - 1, argv + 1);
			cli_audit_end(data_dir, &audit, ret);
			return ret;
		}
	}
	cli_error("unknown command '%s': see 'interchange --help'", argv[1]);
	return CLI_EXIT_USAGE;
}
