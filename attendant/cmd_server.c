/* cmd_server.c - interchange server: the organisation's servers, this server's settings and its port 25 sender
 * exceptions, kept in the server's directory entry (directory-first; the services read them from their replica). */
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/provision.h"
#include "directory/replication.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char server_help[] =
	"usage: interchange server list\n"
	"       interchange server show [NAME]\n"
	"       interchange server set [--server NAME] SETTING VALUE\n"
	"       interchange server allow-sender-from [--server NAME] ADDRESS|CIDR\n"
	"       interchange server disallow-sender-from [--server NAME] ADDRESS|CIDR\n\n"
	"Servers of the organisation and their settings (limits and timeouts). Without a NAME, this server.\n"
	"list also shows each server's replication state, as `interchange replication` does in detail.\n"
	"Byte sizes take k, m or g suffixes. The services pick up a change without a restart.\n\n"
	"Port 25 refuses unauthenticated mail whose sender is in one of our own domains (550 5.7.1), unless the\n"
	"client is another of our servers. allow-sender-from makes an exception for a device that cannot log in\n"
	"(a scanner, 192.0.2.7, or a range, 192.0.2.0/24); disallow-sender-from removes it; show lists them.\n";

struct server_args {
	const char *verb, *server;
	char **args; /* the verb's arguments */
	int nargs;
	bool allow, sender_from;
};

static int server_run(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	const struct server_args *a = ctx;
	int ret;
	if (strcmp(a->verb, "list") == 0) {
		ret = prov_server_list(p, out, err);
		/* the replication state of every server, as the issue asks (directory/replication_status.c) */
		if (ret == IX_OK) {
			buf_append_char(out, '\n');
			ret = repl_server_states(cfg, out, err);
		}
	} else if (strcmp(a->verb, "show") == 0) {
		ret = prov_server_show(p, a->nargs == 1 ? a->args[0] : NULL, out, err);
	} else if (a->sender_from) {
		ret = prov_server_sender_from(p, a->server, a->args[0], a->allow, err);
		if (ret == IX_OK)
			buf_printf(out,
				   a->allow ? "Port 25 now accepts our own domains as senders from %s without a login\n"
					    : "Port 25 no longer makes an exception for %s\n",
				   a->args[0]);
	} else {
		ret = prov_server_set(p, a->server, a->args[0], a->args[1], err);
		if (ret == IX_OK)
			buf_printf(out, "Set %s to %s\n", a->args[0], a->args[1]);
	}
	return ret;
}

int cmd_server(const char *data_dir, int argc, char **argv)
{
	int shown = cli_help_or_usage(argc, argv, server_help);
	if (shown >= 0)
		return shown;
	const char *verb = argv[1], *server = NULL;
	bool allow = strcmp(verb, "allow-sender-from") == 0,
	     sender_from = allow || strcmp(verb, "disallow-sender-from") == 0;
	bool set = strcmp(verb, "set") == 0;
	int first = 2;
	if ((set || sender_from) && argc > 3 && strcmp(argv[2], "--server") == 0) {
		server = argv[3];
		first = 4;
	}
	int nargs = argc - first;
	if ((strcmp(verb, "list") == 0 && nargs != 0) || (strcmp(verb, "show") == 0 && nargs > 1) ||
	    (set && nargs != 2) || (sender_from && nargs != 1) ||
	    (strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0 && !set && !sender_from)) {
		fprintf(stderr, "interchange: server %s: wrong arguments\n\n%s", verb, server_help);
		return CLI_EXIT_USAGE;
	}
	struct server_args a = { verb, server, argv + first, nargs, allow, sender_from };
	return cli_with_prov(data_dir, server_run, &a);
}
