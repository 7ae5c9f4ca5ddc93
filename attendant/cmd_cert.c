/* cmd_cert.c - this server's TLS certificate: `interchange cert show`, which any local user may run, `cert install`,
 * which checks a given pair, and `cert renew`, which makes a new one (attendant/bootstrap.c); both publish the new
 * certificate on every server before this one uses it. */
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
	"       interchange cert install --cert FILE --key FILE [--data DIR]\n"
	"       interchange cert renew [--data DIR]\n\n"
	"show: the certificate this server presents (its subject, the names and addresses it is valid for, its\n"
	"validity and SHA-256 fingerprint), or with --pem the certificate itself, for a client to trust\n"
	"(e.g. LDAPTLS_CACERT, openssl -CAfile). Any local user may run it: the certificate is also in\n"
	"DIR/" BOOTSTRAP_PUBLIC_CERT ", readable by everyone.\n"
	"install: this server uses the certificate chain in FILE (PEM, its own certificate first, then each issuer,\n"
	"as certbot's fullchain.pem) with its private key: both are checked first (the key matches, the certificate is\n"
	"valid now and names this server's host name, the chain is in order; one that this machine's CAs do not\n"
	"trust is taken with a warning), published on every server when the system runs, then put in place. Every\n"
	"service and the directory serve it to new connections within seconds, without a restart; they also take\n"
	"tls/cert.pem and tls/key.pem changed in place by themselves (a certbot deploy hook copying the files).\n"
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

/* The switch to the pair in REPL_NEXT_CERT_FILE / REPL_NEXT_KEY_FILE, as the service user (the files stay its own):
 * published beside the current one on every server when the system runs (so each trusts it before it is used),
 * then moved into place. */
static int switch_to_next(const struct config *cfg, bool running, struct buf *error_r)
{
	char *next_cert = config_path(cfg, REPL_NEXT_CERT_FILE), *next_key = config_path(cfg, REPL_NEXT_KEY_FILE);
	char *cert = config_path(cfg, "tls/cert.pem"), *key = config_path(cfg, "tls/key.pem");
	int ret = IX_OK;
	if (running) {
		printf("  publishing the new certificate to every server\n");
		fflush(stdout);
		ret = repl_publish_own_certs(cfg, CERT_PUBLISH_WAIT_MS, error_r);
	}
	if (ret == IX_OK && (rename(next_key, key) < 0 || rename(next_cert, cert) < 0)) {
		buf_printf(error_r, "cannot put the new certificate in place: %s", strerror(errno));
		ret = IX_EIO;
	}
	if (ret != IX_OK) {
		unlink(next_cert);
		unlink(next_key);
	} else if (running) {
		printf("  every server holds the new certificate; this server uses it from now on\n");
	}
	free(next_cert);
	free(next_key);
	free(cert);
	free(key);
	return ret;
}

/* cert renew: a new self-signed pair beside the current one, then the switch. */
static int renew(const struct config *cfg, void *unused, struct buf *error_r)
{
	(void)unused;
	char *next_cert = config_path(cfg, REPL_NEXT_CERT_FILE), *next_key = config_path(cfg, REPL_NEXT_KEY_FILE);
	int ret = bootstrap_make_cert(cfg, next_cert, next_key, error_r);
	free(next_cert);
	free(next_key);
	if (ret == IX_OK)
		printf("  new certificate made\n");
	return ret == IX_OK ? switch_to_next(cfg, true, error_r) : ret;
}

/* cert install: the given pair (read by the caller, who may read files the service user cannot) written beside the
 * current one, then the switch. */
struct install {
	const char *cert, *key;
	size_t cert_len, key_len;
	bool running;
};

static int install(const struct config *cfg, void *ctx, struct buf *error_r)
{
	const struct install *in = ctx;
	char *next_cert = config_path(cfg, REPL_NEXT_CERT_FILE), *next_key = config_path(cfg, REPL_NEXT_KEY_FILE);
	int ret = IX_OK;
	if (write_file_atomic(next_key, in->key, in->key_len, 0600) < 0 ||
	    write_file_atomic(next_cert, in->cert, in->cert_len, 0644) < 0) {
		buf_printf(error_r, "cannot write %s: %s", next_cert, strerror(errno));
		unlink(next_key);
		ret = IX_EIO;
	}
	free(next_cert);
	free(next_key);
	if (ret == IX_OK)
		ret = switch_to_next(cfg, in->running, error_r);
	/* the directory now lists exactly the certificate in use (the old one withdrawn) */
	if (ret == IX_OK && in->running && repl_publish_own_certs(cfg, CERT_PUBLISH_WAIT_MS, error_r) != IX_OK) {
		printf("  note: %s\n", buf_cstr(error_r));
		buf_reset(error_r);
	}
	return ret;
}

static int cert_install(const char *data_dir, int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
			cert = argv[++i];
		else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			key = argv[++i];
		else {
			cli_error(
				"cert install: unexpected \"%s\": say 'interchange cert install --cert FILE --key FILE'",
				argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	if (cert == NULL || key == NULL) {
		cli_error("cert install needs --cert FILE (the certificate chain, PEM, this server's first) and --key "
			  "FILE (its private key, PEM)");
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config_keep(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf err = BUF_INIT, warn = BUF_INIT;
	struct install in = { .running = cli_system_running(&cfg) };
	char *cert_text = NULL, *key_text = NULL;
	int ret = CLI_EXIT_FAIL;
	const char *host = cfg.hostname != NULL ? cfg.hostname : cfg.domain;
	if (tls_cert_check(cert, key, host, &warn, &err) != IX_OK) {
		cli_error("cert install: %s; nothing was changed", buf_cstr(&err));
		goto out;
	}
	if (read_file(cert, TLS_PEM_MAX, &cert_text, &in.cert_len) < 0 ||
	    read_file(key, TLS_PEM_MAX, &key_text, &in.key_len) < 0) {
		cli_error("cert install: cannot read %s: %s", cert_text == NULL ? cert : key, strerror(errno));
		goto out;
	}
	in.cert = cert_text;
	in.key = key_text;
	printf("Installing the certificate of %s from %s\n", host, cert);
	if (warn.len > 0)
		printf("  warning: %s\n", buf_cstr(&warn));
	if (cli_as_service_user(&cfg, install, &in, &err) != IX_OK) {
		cli_error("cert install: %s (the current certificate stays in use)", buf_cstr(&err));
		goto out;
	}
	if (in.running)
		printf("  every service serves it to new connections within %d seconds, without a restart\n",
		       (ATTENDANT_CERT_CHECK_MS + 999) / 1000 + 1);
	else
		printf("  it is served from the next 'interchange start'\n");
	ret = CLI_EXIT_OK;
out:
	if (key_text != NULL)
		explicit_bzero(key_text, in.key_len);
	free(cert_text);
	free(key_text);
	buf_free(&err);
	buf_free(&warn);
	config_free(&cfg);
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
	if (argc >= 2 && strcmp(argv[1], "install") == 0)
		return cert_install(data_dir, argc, argv);
	if (argc != 2 || strcmp(argv[1], "renew") != 0) {
		cli_error(
			"cert: say 'interchange cert show [--pem]', 'interchange cert install --cert FILE --key FILE' "
			"or 'interchange cert renew': see 'interchange cert --help'");
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
