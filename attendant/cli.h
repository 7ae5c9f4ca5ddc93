/* cli.h - shared pieces of the `interchange` command: the command table entry, option helpers, and the
 * conventions every subcommand follows (--help, --data DIR, a sentence for every mistake, exit codes). */
#ifndef IX_CLI_H
#define IX_CLI_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/config.h"

/* Exit codes: 0 success, 1 failure, 2 usage mistake, 3 not running (status). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_NOT_RUNNING 3

/* A subcommand: argv[0] is its name; data_dir is from --data (default ./var). Returns the exit code. */
typedef int cli_fn(const char *data_dir, int argc, char **argv);

struct cli_command {
	const char *name;
	cli_fn *fn;
	const char *summary;
};

/* Prints "interchange: message" to stderr. */
void cli_error(const char *fmt, ...) IX_PRINTF(1, 2);
/* Loads the data folder's configuration or prints why not. Run as root, it then becomes the service user the
 * data folder belongs to (so nothing it creates there is root's). Returns 0 or -1. */
int cli_load_config(const char *data_dir, struct config *cfg);
/* The same without dropping privileges (start drops later, backup writes to the administrator's folder). */
int cli_load_config_keep(const char *data_dir, struct config *cfg);
/* The --NAME-port options of init, init --join and restore, as getopt_long entries returning base + enum config_port. */
#define CLI_PORT_OPTIONS(base)                                                              \
	{ "ldap-port", required_argument, NULL, (base) + PORT_LDAP },                       \
		{ "ldaps-port", required_argument, NULL, (base) + PORT_LDAPS },             \
		{ "smtp-port", required_argument, NULL, (base) + PORT_SMTP },               \
		{ "submission-port", required_argument, NULL, (base) + PORT_SUBMISSION },   \
		{ "submissions-port", required_argument, NULL, (base) + PORT_SUBMISSIONS }, \
		{ "imap-port", required_argument, NULL, (base) + PORT_IMAP },               \
		{ "imaps-port", required_argument, NULL, (base) + PORT_IMAPS },             \
		{ "pop3-port", required_argument, NULL, (base) + PORT_POP3 },               \
		{ "pop3s-port", required_argument, NULL, (base) + PORT_POP3S },             \
		{ "sieve-port", required_argument, NULL, (base) + PORT_SIEVE },             \
		{ "metrics-port", required_argument, NULL, (base) + PORT_METRICS },         \
		{ "http-port", required_argument, NULL, (base) + PORT_HTTP },               \
	{                                                                                   \
		"https-port", required_argument, NULL, (base) + PORT_HTTPS                  \
	}
/* Stores the value of port option (c - base) in ports[]; prints why and returns -1 when it is not a port. */
int cli_port_option(int c, int base, const char *arg, unsigned ports[PORT_COUNT]);
/* --standard-ports: sets every port not given on its own (given[p] false) to its IANA port (config_port_standard). */
void cli_ports_standard(unsigned ports[PORT_COUNT], const bool given[PORT_COUNT]);
/* Returns 0 when every port differs from the others, else prints which two are the same and returns -1. */
int cli_ports_distinct(const unsigned ports[PORT_COUNT]);

/* What init and init --join print about the data folder they made: folder, domain, directory, host name, service
 * user, ports and how to start it. */
void cli_print_created(const struct config *cfg);

/* Runs fn(cfg, ctx, error_r) in a child process that first becomes cfg's service user (privs_drop; nothing when
 * not root or no user), so what it writes in the data folder stays that user's; this process keeps its rights.
 * Returns IX_OK, or IX_EIO with the child's error_r (or a sentence when it said nothing). */
int cli_as_service_user(const struct config *cfg, int (*fn)(const struct config *cfg, void *ctx, struct buf *error_r),
			void *ctx, struct buf *error_r);

struct store;
/* Opens the data folder's information store (cfg loaded by cli_load_config) or prints why not. Returns IX_OK with
 * *st_r set (close with store_close), else an IX_* code. */
int cli_open_store(const struct config *cfg, struct store **st_r);
struct prov;
/* Opens the directory (*p_r, prov_close) and the store (*st_r, store_close; NULL until opened) for the mailbox of
 * user login, its GUID in *guid_r (malloc'ed), its quotas in quota_r[0] (bytes) and [1] (messages) when quota_r is
 * not NULL (0: none). Returns IX_OK, or an IX_* code with the reason in error_r (empty
 * when already printed). The caller releases what was set whatever the result. */
int cli_open_mailbox(const struct config *cfg, const char *login, struct prov **p_r, struct store **st_r, char **guid_r,
		     unsigned long long *quota_r, struct buf *error_r);

/* Ends a command that worked on the directory: prints out when ret is IX_OK, else err as the error; then clears out
 * (it may have held a password) and frees out, err and cfg. Returns the exit code. */
int cli_finish(int ret, struct buf *out, struct buf *err, struct config *cfg);

/* A command's work on the running directory: loads the data folder's configuration (as cli_load_config), connects as
 * the administrator (prov_open), runs fn with what it prints in out and why it failed in err, and ends as
 * cli_finish. Returns the exit code. */
struct prov;
int cli_with_prov(const char *data_dir,
		  int (*fn)(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err),
		  void *ctx);

/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* The opening of a subcommand with verbs: without a verb prints help to stderr and returns CLI_EXIT_USAGE; with -h or
 * --help prints it to stdout and returns CLI_EXIT_OK; else returns -1 (go on). */
int cli_help_or_usage(int argc, char **argv, const char *help);

int cmd_init(const char *data_dir, int argc, char **argv);
int cmd_start(const char *data_dir, int argc, char **argv);
int cmd_stop(const char *data_dir, int argc, char **argv);
int cmd_status(const char *data_dir, int argc, char **argv);
int cmd_user(const char *data_dir, int argc, char **argv);
/* interchange user move (cmd_move.c) */
int user_move(const char *data_dir, int argc, char **argv);
/* interchange user sieve (cmd_sieve.c). */
int user_sieve(const char *data_dir, int argc, char **argv);
/* interchange sieve global (cmd_sieve.c): the organisation's global Sieve scripts. */
int cmd_sieve(const char *data_dir, int argc, char **argv);
/* interchange user oof (cmd_sieve.c), and the line `user show` prints about it for mailbox guid. */
int user_oof(const char *data_dir, int argc, char **argv);
void user_oof_show(const struct config *cfg, const char *guid, struct buf *out);
int cmd_contact(const char *data_dir, int argc, char **argv);
int cmd_dl(const char *data_dir, int argc, char **argv);
int cmd_folder(const char *data_dir, int argc, char **argv);
int cmd_server(const char *data_dir, int argc, char **argv);
int cmd_backup(const char *data_dir, int argc, char **argv);
int cmd_logs(const char *data_dir, int argc, char **argv);
int cmd_maintenance(const char *data_dir, int argc, char **argv);
int cmd_dmarc(const char *data_dir, int argc, char **argv);
int cmd_restore(const char *data_dir, int argc, char **argv);
int cmd_store(const char *data_dir, int argc, char **argv);
int cmd_mailbox(const char *data_dir, int argc, char **argv);
int cmd_import(const char *data_dir, int argc, char **argv);
int cmd_queue(const char *data_dir, int argc, char **argv);
int cmd_track(const char *data_dir, int argc, char **argv);
int cmd_connector(const char *data_dir, int argc, char **argv);
/* attendant/cmd_app.c: `interchange app`, application accounts. */
int cmd_app(const char *data_dir, int argc, char **argv);
int cmd_domain(const char *data_dir, int argc, char **argv);
/* attendant/cmd_sync.c: `interchange sync`. */
int cmd_sync(const char *data_dir, int argc, char **argv);
/* attendant/cmd_signin.c: `interchange oauth`, the issuers of bearer tokens. */
int cmd_oauth(const char *data_dir, int argc, char **argv);
/* attendant/cmd_signin.c: `interchange kerberos`, GSSAPI sign-in. */
int cmd_kerberos(const char *data_dir, int argc, char **argv);

/* attendant/cmd_admin.c: `interchange role` (administrative roles) and `interchange audit` (the audit log). */
int cmd_role(const char *data_dir, int argc, char **argv);
int cmd_audit(const char *data_dir, int argc, char **argv);
/* attendant/cmd_admin.c: the audit line of a command that may have changed something. cli_audit_start takes, before
 * the command runs (it may drop privileges and reorder argv), its first words (argv[0] the command), the Unix user
 * and whether it asks for help; cli_audit_end records it with how the command ended in the audit log of data_dir's
 * data folder, unless it was a usage mistake, help, a command or verb that only reads, or there is no data folder;
 * then frees the words. */
#define CLI_AUDIT_WORDS 3
struct cli_audit_call {
	char *words[CLI_AUDIT_WORDS]; /* NULL past argc */
	uid_t uid;
	bool help;
};
void cli_audit_start(int argc, char **argv, struct cli_audit_call *a_r);
void cli_audit_end(const char *data_dir, struct cli_audit_call *a, int exit_code);
/* attendant/cmd_dns.c: `interchange dns [DOMAIN]`. */
int cmd_dns(const char *data_dir, int argc, char **argv);
/* attendant/cmd_cert.c: `interchange cert renew`. */
int cmd_cert(const char *data_dir, int argc, char **argv);
/* True when the system of cfg's data folder runs (its attendant holds its lock). */
bool cli_system_running(const struct config *cfg);

/* attendant/cmd_join.c: `interchange init --join ...` (argv as given to init) and `interchange replication`. */
int join_init(const char *data_dir, int argc, char **argv);
int cmd_replication(const char *data_dir, int argc, char **argv);

#endif
