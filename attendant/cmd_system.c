/* cmd_system.c - interchange init, start, stop and status. */
#include "attendant/attendant.h"
#include "attendant/bootstrap.h"
#include "attendant/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "attendant/monitor.h"
#include "attendant/orphan.h"
#include "common/privs.h"
#include "common/settings.h"
#include "directory/replication.h"
#include "directory/slapd.h"
#include "transport/http/status_json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STOP_TIMEOUT_MS 30000

/* ---- init ---- */

static const char init_help[] =
	"usage: interchange init --domain DOMAIN [--org NAME] [--admin-password PW] [--hostname NAME]\n"
	"         [--ldap-port N] [--ldaps-port N] [--smtp-port N] [--submission-port N] [--submissions-port N]\n"
	"         [--imap-port N] [--imaps-port N] [--pop3-port N] [--pop3s-port N] [--sieve-port N] [--metrics-port N]\n"
	"         [--http-port N] [--https-port N]\n"
	"         [--standard-ports] [--cert FILE --key FILE]\n"
	"         [--anonymous-read] [--listen ADDRESS] [--user NAME] [--setting NAME=VALUE]... [--data DIR]\n"
	"       interchange init --join LDAP-URI --admin-password PW ...   (a server for an existing organisation:\n"
	"         see 'interchange init --join URI --help')\n\n"
	"Creates the data folder (default ./var): the directory's configuration and database, a self-signed\n"
	"ECDSA P-256 certificate for the host name, localhost and the listen address (with 0.0.0.0 or ::, every\n"
	"address of this machine now; see 'interchange cert show') or your own with --cert/--key, the organisation, this\n"
	"server, the accepted domain and the default recipient policy (given.surname@domain for people,\n"
	"nickname@domain for lists and folders). Warns when the host name does not resolve to this machine.\n"
	"Without --admin-password a random one is generated, printed\n"
	"and saved in DIR/admin-password. Refuses to touch an existing data folder.\n"
	"Run as root, it creates the system user 'interchange' (or --user NAME) if needed, gives it the data\n"
	"folder, and every service then runs as that user.\n"
	"--listen is the address the directory and the services listen on (default 127.0.0.1; 0.0.0.0 or ::\n"
	"for every address). Off the loopback listener the directory accepts passwords only inside TLS\n"
	"(StartTLS with this server's certificate).\n"
	"--standard-ports chooses the standard ports for every port not given on its own: LDAP 389 and 636,\n"
	"SMTP 25, submission 587 and 465, IMAP 143 and 993, POP3 110 and 995, HTTP 80 and HTTPS 443 (ManageSieve\n"
	"stays 4190, its standard port, and metrics 9100);\n"
	"the system must then be started as root (the services keep only the right to bind them).\n"
	"--setting gives a setting of 'interchange server show' its first value (as 'server set' would later),\n"
	"e.g. --setting password.min_length=12.\n";

int cmd_init(const char *data_dir, int argc, char **argv)
{
	enum {
		O_DOMAIN = 256,
		O_ORG,
		O_PW,
		O_HOST,
		O_CERT,
		O_KEY,
		O_ANON,
		O_USER,
		O_LISTEN,
		O_SETTING,
		O_STANDARD,
		O_PORT0
	};
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "org", required_argument, NULL, O_ORG },
		{ "admin-password", required_argument, NULL, O_PW },
		{ "hostname", required_argument, NULL, O_HOST },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "anonymous-read", no_argument, NULL, O_ANON },
		{ "user", required_argument, NULL, O_USER },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "setting", required_argument, NULL, O_SETTING },
		{ "standard-ports", no_argument, NULL, O_STANDARD },
		CLI_PORT_OPTIONS(O_PORT0),
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_addr = NULL;
	const char *domain = NULL, *org = NULL, *password = NULL, *hostname = NULL, *cert = NULL, *key = NULL;
	const char *user = geteuid() == 0 ? PRIVS_DEFAULT_USER : NULL;
	int anonymous = 0;
	unsigned long long settings[SET_COUNT];
	for (int i = 0; i < SET_COUNT; i++)
		settings[i] = setting_def(i)->def;
	unsigned ports[PORT_COUNT];
	bool port_given[PORT_COUNT] = { false }, standard = false;
	for (int p = 0; p < PORT_COUNT; p++)
		ports[p] = config_port_default(p);
	opterr = 0;
	optind = 1;
	/* a server for an existing organisation: attendant/cmd_join.c */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--join") == 0 || strncmp(argv[i], "--join=", 7) == 0)
			return join_init(data_dir, argc, argv);
	}
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_DOMAIN: domain = optarg; break;
		case O_ORG: org = optarg; break;
		case O_PW: password = optarg; break;
		case O_HOST: hostname = optarg; break;
		case O_CERT: cert = optarg; break;
		case O_KEY: key = optarg; break;
		case O_ANON: anonymous = 1; break;
		case O_STANDARD: standard = true; break;
		case O_USER: user = optarg; break;
		case O_LISTEN:
			if (!slapd_listen_valid(optarg)) {
				cli_error(
					"--listen needs an IP address of this machine (or 0.0.0.0 / :: for all), not \"%s\"",
					optarg);
				return CLI_EXIT_USAGE;
			}
			listen_addr = optarg;
			break;
		case O_SETTING: {
			char name[64];
			const char *eq = strchr(optarg, '=');
			int id = -1;
			if (eq != NULL && (size_t)(eq - optarg) < sizeof(name)) {
				snprintf(name, sizeof(name), "%.*s", (int)(eq - optarg), optarg);
				id = setting_find(name);
			}
			if (id < 0 || setting_parse(id, eq + 1, &settings[id]) < 0) {
				cli_error(
					"--setting needs NAME=VALUE with a setting of 'interchange server show' and a value "
					"in its range, not \"%s\"",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		}
		case 'h': fputs(init_help, stdout); return CLI_EXIT_OK;
		default:
			if (c >= O_PORT0 && c < O_PORT0 + PORT_COUNT) {
				if (cli_port_option(c, O_PORT0, optarg, ports) < 0)
					return CLI_EXIT_USAGE;
				port_given[c - O_PORT0] = true;
				break;
			}
			cli_error("init: unknown or incomplete option %s: see 'interchange init --help'",
				  argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("init: unexpected argument \"%s\": see 'interchange init --help'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (domain == NULL) {
		cli_error(
			"init needs --domain, the mail domain this organisation receives mail for (e.g. example.com)");
		return CLI_EXIT_USAGE;
	}
	if (!config_domain_valid(domain)) {
		cli_error("\"%s\" is not a valid domain name (letters, digits and '-' in dot-separated labels)",
			  domain);
		return CLI_EXIT_USAGE;
	}
	if ((cert == NULL) != (key == NULL)) {
		cli_error("--cert and --key go together: give both or neither");
		return CLI_EXIT_USAGE;
	}
	if (standard)
		cli_ports_standard(ports, port_given);
	if (cli_ports_distinct(ports) < 0)
		return CLI_EXIT_USAGE;
	if (password != NULL && (password[0] == '\0' || strlen(password) > 1024)) {
		cli_error("--admin-password must be 1-1024 characters");
		return CLI_EXIT_USAGE;
	}
	if (org != NULL && (org[0] == '\0' || strlen(org) > 256 || strpbrk(org, "\r\n") != NULL)) {
		cli_error("--org must be 1-256 characters on one line");
		return CLI_EXIT_USAGE;
	}
	char host_buf[256];
	if (hostname == NULL) {
		if (gethostname(host_buf, sizeof(host_buf) - 1) < 0)
			strcpy(host_buf, "mail");
		host_buf[sizeof(host_buf) - 1] = '\0';
		hostname = host_buf;
	}
	char *fqdn = strchr(hostname, '.') != NULL ? xstrdup(hostname) : xasprintf("%s.%s", hostname, domain);
	if (!config_domain_valid(fqdn)) {
		cli_error("\"%s\" is not a valid host name: give one with --hostname", fqdn);
		free(fqdn);
		return CLI_EXIT_USAGE;
	}

	struct config cfg;
	config_init_defaults(&cfg, data_dir, domain);
	cfg.org = xstrdup(org != NULL ? org : domain);
	cfg.hostname = fqdn;
	cfg.anonymous_read = anonymous;
	if (listen_addr != NULL) {
		free(cfg.listen);
		cfg.listen = xstrdup(listen_addr);
	}
	memcpy(cfg.ports, ports, sizeof(ports));
	cfg.server_dn = xasprintf("cn=%s,ou=Servers,ou=Configuration,%s", cfg.hostname, cfg.suffix);
	if (user != NULL && geteuid() != 0) {
		cli_error("--user needs root: the services run as whoever starts them otherwise");
		config_free(&cfg);
		return CLI_EXIT_USAGE;
	}
	int ret = CLI_EXIT_FAIL;
	struct buf err = BUF_INIT;
	struct bootstrap boot = { .what = "init", .user = user, .cert = cert, .key = key };
	int checked = bootstrap_check(&cfg, &boot, &err);
	if (checked != IX_OK) {
		cli_error("%s", buf_cstr(&err));
		buf_free(&err);
		config_free(&cfg);
		return checked == IX_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}
	char generated[33];
	if (password == NULL) {
		unsigned char r[12];
		if (RAND_bytes(r, sizeof(r)) != 1)
			fatal("no random numbers");
		for (size_t i = 0; i < sizeof(r); i++)
			snprintf(generated + 2 * i, 3, "%02x", r[i]);
		password = generated;
	}
	if (bootstrap_create(&cfg, &boot, &err) != IX_OK || slapd_create(&cfg, password, settings, &err) != IX_OK ||
	    bootstrap_chown(&cfg, &boot, &err) != IX_OK)
		goto fail;
	if (password == generated) {
		char *pwpath = config_path(&cfg, "admin-password");
		write_file_atomic(pwpath, generated, strlen(generated), 0600);
		printf("Generated administrator password: %s (saved in %s)\n", generated, pwpath);
		free(pwpath);
	}
	bootstrap_check_hostname(&cfg);
	cli_print_created(&cfg);
	ret = CLI_EXIT_OK;
	goto out;
fail:
	cli_error("init failed: %s", buf_cstr(&err));
	bootstrap_abandon(&cfg, &boot);
out:
	buf_free(&err);
	config_free(&cfg);
	return ret;
}

/* ---- start ---- */

static const char start_help[] = "usage: interchange start [--foreground] [--data DIR]\n\n"
				 "Starts the system attendant, which starts the directory (slapd) and every service.\n"
				 "Returns once the system answers, or says why it could not start. With --foreground\n"
				 "the attendant stays in this terminal and logs to it; Ctrl-C stops everything.\n";

int cmd_start(const char *data_dir, int argc, char **argv)
{
	int foreground = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--foreground") == 0 || strcmp(argv[i], "-f") == 0)
			foreground = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(start_help, stdout);
			return CLI_EXIT_OK;
		} else {
			cli_error("start: unknown argument \"%s\": see 'interchange start --help'", argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	struct config cfg;
	if (cli_load_config_keep(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf err = BUF_INIT;
	if (!log_to_journal() && bootstrap_log_dir(&cfg, &err) != IX_OK) {
		cli_error("could not start: %s", buf_cstr(&err));
		buf_free(&err);
		config_free(&cfg);
		return CLI_EXIT_FAIL;
	}
	buf_free(&err);
	if (foreground) {
		log_set_name("attendant");
		int ret = attendant_run(&cfg, -1);
		config_free(&cfg);
		return ret;
	}
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		fatal("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		close(pipefd[0]);
		setsid();
		/* the attendant is a daemon: no terminal, its log in the log folder */
		char *logpath = config_log_path(&cfg, "attendant.log");
		int devnull = open("/dev/null", O_RDWR);
		int logfd = open(logpath, O_WRONLY | O_APPEND | O_CREAT, 0640);
		uid_t su;
		gid_t sg;
		if (logfd >= 0 && geteuid() == 0 && cfg.user != NULL && cfg.user[0] != '\0' &&
		    privs_lookup(cfg.user, &su, &sg) == 0 && fchown(logfd, su, sg) < 0)
			fprintf(stderr, "cannot give %s to %s\n", logpath, cfg.user);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (logfd >= 0) {
			dup2(logfd, 1);
			dup2(logfd, 2);
		}
		log_set_name("attendant");
		log_open(logpath);
		free(logpath);
		/* fork again so the attendant is not a session leader and is reparented away from the caller */
		pid_t grandchild = fork();
		if (grandchild != 0)
			_exit(grandchild < 0 ? 1 : 0);
		_exit(attendant_run(&cfg, pipefd[1]));
	}
	close(pipefd[1]);
	waitpid(pid, NULL, 0);
	struct buf answer = BUF_INIT;
	buf_read_fd(&answer, pipefd[0], 64 * 1024);
	close(pipefd[0]);
	int ret;
	if (strncmp(buf_cstr(&answer), "ok", 2) == 0) {
		char *pidpath = config_path(&cfg, ATTENDANT_PID), *pidtext = NULL;
		read_file(pidpath, 64, &pidtext, NULL);
		printf("Interchange is running at %s (attendant pid %ld)\n", cfg.data_dir,
		       pidtext != NULL ? strtol(pidtext, NULL, 10) : 0L);
		free(pidtext);
		free(pidpath);
		ret = CLI_EXIT_OK;
	} else if (strncmp(buf_cstr(&answer), "error: ", 7) == 0) {
		answer.data[strcspn(answer.data, "\n")] = '\0';
		cli_error("could not start: %s", answer.data + 7);
		ret = CLI_EXIT_FAIL;
	} else {
		char *logpath = config_log_path(&cfg, "attendant.log");
		cli_error("could not start: the attendant ended without a word; see %s", logpath);
		free(logpath);
		ret = CLI_EXIT_FAIL;
	}
	buf_free(&answer);
	config_free(&cfg);
	return ret;
}

/* ---- stop ---- */

/* Returns 1 when the lock file rel is held by a live process (so its owner runs). */
static int lock_held(const struct config *cfg, const char *rel)
{
	char *path = config_path(cfg, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return 0;
	int held = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

bool cli_system_running(const struct config *cfg)
{
	return lock_held(cfg, ATTENDANT_LOCK);
}

/* Signals the owner of lock rel (pid from pidfile) and waits for the lock to be released. */
static int stop_owner(const struct config *cfg, const char *lock, const char *pidfile, const char *what)
{
	long pid = orphan_read_pid(cfg, pidfile);
	if (pid <= 1) {
		cli_error("%s is running but %s/%s names no process", what, cfg->data_dir, pidfile);
		return -1;
	}
	kill((pid_t)pid, SIGTERM);
	unsigned long long deadline = now_usec() + STOP_TIMEOUT_MS * 1000ULL;
	while (lock_held(cfg, lock)) {
		if (now_usec() > deadline) {
			cli_error("%s (pid %ld) did not stop within %d s: killing it", what, pid,
				  STOP_TIMEOUT_MS / 1000);
			kill((pid_t)pid, SIGKILL);
			deadline = now_usec() + 5000000ULL;
			while (lock_held(cfg, lock) && now_usec() < deadline)
				usleep(20000);
			break;
		}
		usleep(20000);
	}
	/* the lock goes a moment before the process: wait until it is gone (or a zombie its parent reaps) */
	while (orphan_alive((pid_t)pid) && now_usec() < deadline)
		usleep(5000);
	return 0;
}

int cmd_stop(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs("usage: interchange stop [--data DIR]\n\nStops every service and the directory, slapd last, "
		      "and returns when nothing is left running.\n",
		      stdout);
		return CLI_EXIT_OK;
	}
	if (argc > 1) {
		cli_error("stop: unexpected argument \"%s\"", argv[1]);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	int stopped = 0;
	if (lock_held(&cfg, ATTENDANT_LOCK)) {
		stop_owner(&cfg, ATTENDANT_LOCK, ATTENDANT_PID, "the attendant");
		stopped = 1;
	}
	/* slapd and services left behind by an attendant that was killed */
	struct orphan orphans[ORPHAN_MAX];
	size_t norphans = orphan_find(&cfg, orphans, ORPHAN_MAX);
	if (norphans > 0) {
		printf("Stopping %zu processes of an earlier run (its attendant was killed)\n", norphans);
		if (orphan_stop(orphans, norphans) > 0)
			cli_error("some processes of the earlier run did not stop");
		stopped = 1;
	}
	/* a slapd holding the lock without a pid file naming it */
	if (lock_held(&cfg, SLAPD_LOCK)) {
		stop_owner(&cfg, SLAPD_LOCK, SLAPD_PIDFILE, "slapd");
		stopped = 1;
	}
	if (stopped)
		printf("Interchange stopped at %s\n", cfg.data_dir);
	else
		printf("Interchange is not running at %s: nothing to stop\n", cfg.data_dir);
	config_free(&cfg);
	return CLI_EXIT_OK;
}

/* ---- status ---- */

/* Asks the attendant (control.h); 0 or -1. */
static int ask_attendant(const struct config *cfg, const char *request, int timeout_s, struct buf *answer)
{
	struct buf err = BUF_INIT;
	int ret = control_ask(cfg, request, timeout_s, answer, &err);
	buf_free(&err);
	return ret == IX_OK ? 0 : -1;
}

int cmd_status(const char *data_dir, int argc, char **argv)
{
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs("usage: interchange status [--json] [--data DIR]\n\nShows whether the system runs, each "
			      "service's state, pid, uptime and restarts, the ports and the directory.\n--json prints "
			      "the same as one JSON object for scripts and monitoring. Exit status: 0 running,\n3 not "
			      "running.\n",
			      stdout);
			return CLI_EXIT_OK;
		} else {
			cli_error("status: unknown argument \"%s\": see 'interchange status --help'", argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf answer = BUF_INIT;
	int running = lock_held(&cfg, ATTENDANT_LOCK) &&
		      ask_attendant(&cfg, json ? "status\n" : "status-text\n", 5, &answer) == 0;
	/* not running, but processes of an earlier run are (its attendant was killed) */
	struct orphan orphans[ORPHAN_MAX];
	size_t norphans = running ? 0 : orphan_find(&cfg, orphans, ORPHAN_MAX);
	char *uri = config_ldap_uri(&cfg), *ldapi = config_ldapi_uri(&cfg);
	/* replication with the other servers of the organisation, as `server list` sees it (asks each of them) */
	struct repl_peer *peers = NULL;
	size_t npeers = 0;
	if (running) {
		struct buf rerr = BUF_INIT;
		if (repl_peers(&cfg, &peers, &npeers, NULL, &rerr) != IX_OK)
			npeers = 0;
		buf_free(&rerr);
	}
	struct buf out = BUF_INIT;
	if (json) {
		json_t *o = status_json(&cfg, running ? buf_cstr(&answer) : NULL, peers, npeers), *orph = json_array();
		for (size_t i = 0; i < norphans; i++)
			json_array_append_new(orph, json_pack("{s:s, s:I}", "name", orphans[i].name, "pid",
							      (json_int_t)orphans[i].pid));
		json_object_set_new(o, "orphans", orph);
		char *text = json_dumps(o, JSON_PRESERVE_ORDER);
		buf_printf(&out, "%s\n", text != NULL ? text : "{}");
		free(text);
		json_decref(o);
	} else {
		buf_printf(&out, "Interchange at %s: %s", cfg.data_dir, running ? "running" : "not running");
		for (size_t i = 0; i < norphans; i++) {
			if (strcmp(orphans[i].name, "slapd") == 0)
				buf_printf(
					&out,
					"; an orphaned directory server of an earlier run is still running (pid %ld)",
					(long)orphans[i].pid);
			else
				buf_printf(&out, "; an orphaned %s of an earlier run is still running (pid %ld)",
					   orphans[i].name, (long)orphans[i].pid);
		}
		if (norphans > 0)
			buf_append_str(&out,
				       " ('interchange start' stops them and starts; 'interchange stop' stops them)");
		buf_append_char(&out, '\n');
		buf_printf(&out, "  domain     %s (host %s)\n  directory  %s  suffix %s  admin %s\n", cfg.domain,
			   cfg.hostname ? cfg.hostname : "", uri, cfg.suffix, cfg.admin_dn);
		buf_append_str(&out, "  ports     ");
		for (int p = 0; p < PORT_COUNT; p++)
			buf_printf(&out, " %s %u%s", config_port_name(p), cfg.ports[p],
				   p + 1 < PORT_COUNT ? "," : "\n");
		if (running)
			buf_append(&out, answer.data, answer.len);
		for (size_t i = 0; i < npeers; i++) {
			if (!peers[i].self)
				buf_printf(&out, "  replication with %s (ID %u): %s%s\n", peers[i].name, peers[i].id,
					   peers[i].state,
					   peers[i].id == 0       ? ""
					   : peers[i].replicating ? "; replicating from it"
								  : "; NOT replicating from it");
		}
		/* a link that does not work is said loudly: a warning per server, with the reason seen from here */
		for (size_t i = 0; i < npeers; i++) {
			if (!peers[i].self && peers[i].id != 0 && (!peers[i].in_step || !peers[i].replicating))
				buf_printf(&out, "  WARNING: replication with %s is failing: %s\n", peers[i].name,
					   !peers[i].replicating ? "this server does not replicate from it"
								 : peers[i].state);
		}
	}
	repl_peers_free(&peers, npeers);
	fputs(buf_cstr(&out), stdout);
	buf_free(&out);
	buf_free(&answer);
	free(uri);
	free(ldapi);
	config_free(&cfg);
	return running ? CLI_EXIT_OK : CLI_EXIT_NOT_RUNNING;
}

/* ---- maintenance ---- */

/* Asks the running attendant one request (a line) and prints its answer. */
static int ask_and_print(const char *data_dir, const char *request, int timeout_s)
{
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf answer = BUF_INIT;
	int ret = CLI_EXIT_OK;
	if (!lock_held(&cfg, ATTENDANT_LOCK)) {
		cli_error("Interchange is not running at %s: start it with 'interchange start'", cfg.data_dir);
		ret = CLI_EXIT_FAIL;
	} else if (ask_attendant(&cfg, request, timeout_s, &answer) < 0) {
		cli_error("the attendant did not answer");
		ret = CLI_EXIT_FAIL;
	} else {
		fputs(buf_cstr(&answer), stdout);
	}
	buf_free(&answer);
	config_free(&cfg);
	return ret;
}

int cmd_maintenance(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs("usage: interchange maintenance run [--data DIR]\n\nRuns the scheduled housekeeping now: purge of "
		      "deleted items past retention, quota warnings,\nand the store consistency check. The attendant "
		      "otherwise runs them hourly, and the check\ndaily in the quiet hour (server setting "
		      "maintenance.check_hour).\n",
		      stdout);
		return CLI_EXIT_OK;
	}
	if (argc != 2 || strcmp(argv[1], "run") != 0) {
		cli_error("maintenance needs: run");
		return CLI_EXIT_USAGE;
	}
	return ask_and_print(data_dir, "maintenance\n", 600);
}

/* ---- DMARC aggregate reports ---- */

int cmd_dmarc(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs("usage: interchange dmarc report --now [--data DIR]\n\nSends the DMARC aggregate reports (RFC "
		      "7489) of the evaluations recorded since the last ones,\nnow, whether dmarc.reports is on or "
		      "not: each domain whose DMARC record asks for them\n(rua=mailto:) gets its report. The "
		      "attendant otherwise sends them every\ndmarc.report_interval (a day) when dmarc.reports is 1.\n",
		      stdout);
		return CLI_EXIT_OK;
	}
	if (argc != 3 || strcmp(argv[1], "report") != 0 || strcmp(argv[2], "--now") != 0) {
		cli_error("dmarc needs: report --now");
		return CLI_EXIT_USAGE;
	}
	return ask_and_print(data_dir, "dmarc-report\n", 600);
}
