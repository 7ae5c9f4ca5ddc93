/* cmd_join.c - interchange init --join (a new server for an existing organisation) and interchange replication
 * (the replication state of every server). The directory work is in directory/replication_join.c. */
#include "attendant/attendant.h"
#include "attendant/bootstrap.h"
#include "attendant/cli.h"
#include "common/err.h"
#include "common/privs.h"
#include "directory/replication.h"
#include "directory/slapd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char join_help[] =
	"usage: interchange init --join LDAP-URI --admin-password PW [--hostname NAME] [--my-uri LDAP-URI]\n"
	"         [--listen ADDRESS] [--ca FILE]\n"
	"         [--ldap-port N] [--ldaps-port N] [--smtp-port N] [--submission-port N] [--submissions-port N]\n"
	"         [--imap-port N] [--imaps-port N] [--pop3-port N] [--pop3s-port N] [--sieve-port N] [--metrics-port N]\n"
	"         [--http-port N] [--https-port N]\n"
	"         [--standard-ports] [--timeout SECONDS] [--user NAME] [--data DIR]\n\n"
	"Creates the data folder of a new server for an EXISTING organisation, whose directory answers at\n"
	"LDAP-URI (any of its servers, e.g. ldap://127.0.0.1:3389). The suffix, domain and administrator come\n"
	"from there; this server gets the next server ID and its entry in the directory, its slapd becomes a\n"
	"provider in multi-provider replication with every other server (both directions), and init returns once\n"
	"the directory contents have arrived. --my-uri is where the other servers reach this server's directory\n"
	"(default ldap://127.0.0.1:PORT when LDAP-URI is on this machine, else ldap://HOSTNAME:PORT).\n"
	"--listen is the address this server listens on (default 127.0.0.1; then --my-uri defaults to it).\n"
	"When LDAP-URI is not on this machine's loopback listener the join uses StartTLS and checks the server's\n"
	"certificate against --ca FILE (e.g. a copy of that server's DATA/tls/cert.pem) or the system's CAs;\n"
	"from then on the servers trust the certificates they publish in the directory.\n"
	"--standard-ports chooses the standard ports for every port not given on its own, as for init.\n"
	"The administrator password is kept only in this server's cn=config (readable by the service user alone).\n";

/* The rest of the join as the service user slapd runs as (docs/slapd-facts.md, "Offline tools and ownership"), in a
 * child: this process stays able to remove the folder if the join fails. */
static int finish(const struct config *cfg, void *j, struct buf *error_r)
{
	return repl_join_finish(j, cfg, error_r);
}

int join_init(const char *data_dir, int argc, char **argv)
{
	enum { O_JOIN = 256, O_PW, O_HOST, O_MYURI, O_TIMEOUT, O_USER, O_LISTEN, O_CA, O_STANDARD, O_PORT0 };
	static const struct option opts[] = {
		{ "join", required_argument, NULL, O_JOIN },
		{ "admin-password", required_argument, NULL, O_PW },
		{ "hostname", required_argument, NULL, O_HOST },
		{ "my-uri", required_argument, NULL, O_MYURI },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "user", required_argument, NULL, O_USER },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "ca", required_argument, NULL, O_CA },
		{ "standard-ports", no_argument, NULL, O_STANDARD },
		CLI_PORT_OPTIONS(O_PORT0),
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct repl_join j = { .data_dir = data_dir };
	j.user = geteuid() == 0 ? PRIVS_DEFAULT_USER : NULL;
	bool port_given[PORT_COUNT] = { false }, standard = false;
	for (int p = 0; p < PORT_COUNT; p++)
		j.ports[p] = config_port_default(p);
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		unsigned long long v;
		switch (c) {
		case O_JOIN: j.uri = optarg; break;
		case O_PW: j.password = optarg; break;
		case O_HOST: j.hostname = optarg; break;
		case O_MYURI: j.my_uri = optarg; break;
		case O_USER: j.user = optarg; break;
		case O_CA: j.cafile = optarg; break;
		case O_STANDARD: standard = true; break;
		case O_LISTEN:
			if (!slapd_listen_valid(optarg)) {
				cli_error(
					"--listen needs an IP address of this machine (or 0.0.0.0 / :: for all), not \"%s\"",
					optarg);
				return CLI_EXIT_USAGE;
			}
			j.listen = optarg;
			break;
		case O_TIMEOUT:
			if (parse_uint(optarg, 3600, &v) < 0 || v == 0) {
				cli_error("--timeout needs a number of seconds from 1 to 3600, not \"%s\"", optarg);
				return CLI_EXIT_USAGE;
			}
			j.timeout_ms = (unsigned)v * 1000;
			break;
		case 'h': fputs(join_help, stdout); return CLI_EXIT_OK;
		default:
			if (c >= O_PORT0 && c < O_PORT0 + PORT_COUNT) {
				if (cli_port_option(c, O_PORT0, optarg, j.ports) < 0)
					return CLI_EXIT_USAGE;
				port_given[c - O_PORT0] = true;
				break;
			}
			cli_error(
				"init --join: unknown or incomplete option %s: see 'interchange init --join x --help'",
				argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("init --join: unexpected argument \"%s\"", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (j.uri == NULL || j.password == NULL || j.password[0] == '\0') {
		cli_error("init --join needs the LDAP URI of a server of the organisation and --admin-password, the "
			  "organisation's administrator password");
		return CLI_EXIT_USAGE;
	}
	if (standard)
		cli_ports_standard(j.ports, port_given);
	if (cli_ports_distinct(j.ports) < 0)
		return CLI_EXIT_USAGE;
	if (j.user != NULL && geteuid() != 0) {
		cli_error("--user needs root: the services run as whoever starts them otherwise");
		return CLI_EXIT_USAGE;
	}

	struct config cfg;
	struct buf err = BUF_INIT;
	int ret = repl_join_prepare(&j, &cfg, &err);
	if (ret != IX_OK) {
		cli_error("cannot join: %s", buf_cstr(&err));
		buf_free(&err);
		return ret == IX_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}
	/* --ca goes into the new folder, where the service user running the rest of the join can read it (an
	 * administrator's copy is often readable by root alone) */
	struct bootstrap boot = { .what = "init --join", .user = j.user, .peers = j.cafile };
	ret = bootstrap_check(&cfg, &boot, &err);
	if (ret != IX_OK) {
		cli_error("%s", buf_cstr(&err));
		buf_free(&err);
		config_free(&cfg);
		return ret == IX_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}
	printf("Joining the organisation %s (%s) at %s\n", cfg.org, cfg.suffix, j.uri);
	fflush(stdout);
	ret = CLI_EXIT_FAIL;
	if (bootstrap_create(&cfg, &boot, &err) != IX_OK)
		goto fail;
	char *peers = j.cafile != NULL ? config_path(&cfg, REPL_PEERS_FILE) : NULL;
	j.cafile = peers;
	/* the database stays empty: replication fills it, the administrator's entry (and password) included */
	if (slapd_create_config(&cfg, NULL, 0, NULL, &err) != IX_OK || repl_prepare_config(&cfg, &err) != IX_OK ||
	    bootstrap_chown(&cfg, &boot, &err) != IX_OK || cli_as_service_user(&cfg, finish, &j, &err) != IX_OK) {
		free(peers);
		goto fail;
	}
	free(peers);
	bootstrap_check_hostname(&cfg);
	cli_print_created(&cfg);
	ret = CLI_EXIT_OK;
	goto out;
fail:
	cli_error("init --join failed: %s", buf_cstr(&err));
	bootstrap_abandon(&cfg, &boot);
out:
	buf_free(&err);
	config_free(&cfg);
	return ret;
}

static const char replication_help[] =
	"usage: interchange replication [--data DIR]\n\n"
	"Shows how this server's directory replicates: its server ID, every server of the organisation with its\n"
	"ID and LDAP URI, whether this server replicates from it, and the contextCSN per server ID here and\n"
	"there (\"in step\" when both hold the same changes).\n";

int cmd_replication(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(replication_help, stdout);
		return CLI_EXIT_OK;
	}
	if (argc > 1) {
		cli_error("replication: unexpected argument \"%s\"", argv[1]);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf out = BUF_INIT, err = BUF_INIT;
	int ret = repl_status(&cfg, &out, &err);
	if (ret == IX_OK)
		fputs(buf_cstr(&out), stdout);
	else
		cli_error("%s", buf_cstr(&err));
	buf_free(&out);
	buf_free(&err);
	config_free(&cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
