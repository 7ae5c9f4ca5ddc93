/* cmd_cert.c - this server's TLS certificate: `interchange cert show`, which any local user may run, and `interchange
 * cert renew`, which makes a new one (attendant/bootstrap.c) and publishes it on every server before using it. */
#include "attendant/attendant.h"
#include "attendant/bootstrap.h"
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/replication.h"
#include "transport/net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long renew waits for each other server to hold the new certificate. */
#define CERT_PUBLISH_WAIT_MS 30000

static const char cert_help[] =
	"usage: interchange cert show [--pem] [--data DIR]\n"
	"       interchange cert renew [--data DIR]\n\n"
	"show: the certificate this server presents (its subject, the names and addresses it is valid for, its\n"
	"validity and SHA-256 fingerprint), or with --pem the certificate itself, for a client to trust\n"
	"(e.g. LDAPTLS_CACERT, openssl -CAfile). Any local user may run it: the certificate is also in\n"
	"DIR/" BOOTSTRAP_PUBLIC_CERT ", readable by everyone.\n"
	"renew: makes a new key and self-signed certificate for this server (its host name, localhost, 127.0.0.1 and\n"
	"its listen address or, listening on every address, the addresses of this machine's interfaces now; valid "
	"825 days),\npublishes it in this server's entry beside the current one, waits until every other server of "
	"the\norganisation holds it (so each trusts it), then switches to it and restarts the system when it runs.\n"
	"The old certificate is withdrawn from the directory at the restart. No link between servers breaks.\n";

/* Prints the certificate: the one in use (tls/cert.pem) when this user may read it, otherwise the public copy. Reads
 * no configuration, which other users may not read either. */
static int show(const char *data_dir, bool pem)
{
	char *paths[2] = { xasprintf("%s/tls/cert.pem", data_dir), xasprintf("%s/" BOOTSTRAP_PUBLIC_CERT, data_dir) };
	char *data = NULL;
	size_t len = 0;
	int ret = CLI_EXIT_FAIL;
	int r = read_file(paths[0], TLS_PEM_MAX, &data, &len);
	if (r < 0 && (errno == EACCES || errno == ENOENT))
		r = read_file(paths[1], TLS_PEM_MAX, &data, &len);
	if (r < 0) {
		cli_error("cannot read the certificate (%s): %s", paths[1], strerror(errno));
	} else if (pem) {
		fwrite(data, 1, len, stdout);
		ret = CLI_EXIT_OK;
	} else {
		struct buf out = BUF_INIT, err = BUF_INIT;
		if (tls_cert_describe(data, len, &out, &err) == IX_OK) {
			fputs(buf_cstr(&out), stdout);
			ret = CLI_EXIT_OK;
		} else {
			cli_error("%s: %s", paths[0], buf_cstr(&err));
		}
		buf_free(&out);
		buf_free(&err);
	}
	free(data);
	free(paths[0]);
	free(paths[1]);
	return ret;
}

/* The renewal up to the switch, as the service user (the files stay its own): a new pair beside the current one,
 * published everywhere, then moved into place. */
static int renew(const struct config *cfg, void *unused, struct buf *error_r)
{
	(void)unused;
	char *next_cert = config_path(cfg, REPL_NEXT_CERT_FILE), *next_key = config_path(cfg, REPL_NEXT_KEY_FILE);
	char *cert = config_path(cfg, "tls/cert.pem"), *key = config_path(cfg, "tls/key.pem");
	int ret = bootstrap_make_cert(cfg, next_cert, next_key, error_r);
	if (ret == IX_OK) {
		printf("  new certificate made; publishing it to every server\n");
		fflush(stdout);
		ret = repl_publish_own_certs(cfg, CERT_PUBLISH_WAIT_MS, error_r);
	}
	if (ret == IX_OK && (rename(next_key, key) < 0 || rename(next_cert, cert) < 0)) {
		buf_printf(error_r, "cannot put the new certificate in place: %s", strerror(errno));
		ret = IX_EIO;
	}
	if (ret == IX_OK)
		printf("  every server holds the new certificate; this server uses it from now on\n");
	free(next_cert);
	free(next_key);
	free(cert);
	free(key);
	return ret;
}

/* Runs another `interchange` command (stop, start) in a child, as this one would. */
static int run_command(const char *data_dir, cli_fn *fn, const char *name)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return CLI_EXIT_FAIL;
	if (pid == 0) {
		char *argv[] = { (char *)name, NULL };
		_exit(fn(data_dir, 1, argv));
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : CLI_EXIT_FAIL;
}

int cmd_cert(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(cert_help, stdout);
		return CLI_EXIT_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "show") == 0 && (argc == 2 || (argc == 3 && strcmp(argv[2], "--pem") == 0)))
		return show(data_dir, argc == 3);
	if (argc != 2 || strcmp(argv[1], "renew") != 0) {
		cli_error(
			"cert: say 'interchange cert show [--pem]' or 'interchange cert renew': see 'interchange cert "
			"--help'");
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config_keep(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	bool running = cli_system_running(&cfg);
	if (!running) {
		cli_error("cert renew publishes the new certificate through this server's directory: start the system "
			  "first");
		config_free(&cfg);
		return CLI_EXIT_FAIL;
	}
	printf("Renewing the certificate of %s\n", cfg.hostname != NULL ? cfg.hostname : cfg.data_dir);
	struct buf err = BUF_INIT;
	int ret = cli_as_service_user(&cfg, renew, NULL, &err);
	if (ret != IX_OK) {
		cli_error("cert renew: %s (the current certificate stays in use)", buf_cstr(&err));
		buf_free(&err);
		config_free(&cfg);
		return CLI_EXIT_FAIL;
	}
	buf_free(&err);
	config_free(&cfg);
	/* every service and the directory read the certificate when they start */
	printf("  restarting the system to serve the new certificate\n");
	fflush(stdout);
	if (run_command(data_dir, cmd_stop, "stop") != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cmd_start(data_dir, 1, (char *[]){ (char *)"start", NULL });
}
