/* daemon.c - the common start, run and stop of the service daemons (see daemon.h). */
#include "transport/daemon/daemon.h"
#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void on_grace_over(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)timer;
	log_warn("sessions did not close within %d ms: exiting anyway", DAEMON_STOP_GRACE_MS);
	(void)ctx;
	evloop_stop(loop);
}

static void request_stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	log_info("stopping: %s", why);
	evloop_timer_start(d->loop, &d->grace_timer, DAEMON_STOP_GRACE_MS, 0, on_grace_over, d);
	if (d->stop_fn != NULL)
		d->stop_fn(d, d->stop_ctx);
	else
		daemon_stopped(d);
}

static void on_signal(struct evloop *loop, int signo, void *ctx)
{
	(void)loop;
	request_stop(ctx, strsignal(signo));
}

static void on_hup(struct evloop *loop, int signo, void *ctx)
{
	(void)loop;
	(void)signo;
	(void)ctx;
	log_reopen();
}

static void on_attendant(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)events;
	char b[64];
	ssize_t n = read(fd, b, sizeof(b));
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	evloop_fd_remove(loop, fd);
	request_stop(ctx, "the attendant is gone");
}

/* This server's effective settings from the replica (dir_server_settings gives defaults when the entry is unknown). */
static void settings_read(struct daemon *d, struct settings *s_r)
{
	(void)dir_server_settings(d->dir, d->cfg.server_dn != NULL ? d->cfg.server_dn : "", s_r);
}

/* Replica thread: our server entry changed, so its settings may have; the loop reads them. A connector or global
 * Sieve script change is logged (routing and delivery read them from the replica each time: the line says from when
 * a change applies). */
static void on_dir_change(void *ctx, enum dir_change_kind kind, enum dir_type type, const char *dn)
{
	struct daemon *d = ctx;
	(void)kind;
	if (type != 0 || dn == NULL)
		return;
	if (d->cfg.server_dn != NULL && strcasecmp(dn, d->cfg.server_dn) == 0)
		evloop_async_send(d->settings_async);
	else if (strcasestr(dn, ",ou=Connectors,") != NULL)
		log_info("connector changed: %s", dn);
	else if (strcasestr(dn, "," DIR_SIEVE_GLOBAL_OU ",") != NULL)
		log_info("global Sieve script changed: %s", dn);
}

static void on_settings_changed(struct evloop *loop, void *ctx)
{
	(void)loop;
	struct daemon *d = ctx;
	struct settings s;
	settings_read(d, &s);
	bool same = memcmp(s.v, d->settings.v, sizeof(s.v)) == 0 && memcmp(s.set, d->settings.set, sizeof(s.set)) == 0;
	for (int i = 0; same && i < SET_COUNT; i++) /* a text value changed too (one text for another) */
		same = strcmp(s.text[i], d->settings.text[i]) == 0;
	if (same)
		return;
	log_info("server settings changed: new sessions use them");
	d->settings = s;
	d->settings_fn(d, &d->settings, d->settings_ctx);
}

void daemon_watch_settings(struct daemon *d, daemon_settings_fn *fn, void *ctx)
{
	struct buf err = BUF_INIT;
	if (evloop_async_create(d->loop, on_settings_changed, d, &d->settings_async, &err) != IX_OK)
		fatal("%s", buf_cstr(&err));
	d->settings_fn = fn;
	d->settings_ctx = ctx;
	dir_set_change_hook(d->dir, on_dir_change, d); /* first: a change from now on is seen */
	settings_read(d, &d->settings);
	fn(d, &d->settings, ctx);
}

/* The certificate or key file changed (both are renamed into place one after the other): serve the new pair once it
 * loads; a pair caught between the two renames is refused and taken at the next look. */
static void cert_check(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	struct daemon *d = ctx;
	int cert = file_changed(d->cert_path, &d->cert_st), key = file_changed(d->key_path, &d->key_st);
	if (!cert && !key)
		return;
	struct buf err = BUF_INIT;
	if (tls_ctx_reload(d->tls, d->cert_path, d->key_path, &err) == IX_OK) {
		log_info("the certificate changed: new connections get %s", d->cert_path);
		if (d->cert_fn != NULL)
			d->cert_fn(d, d->cert_ctx);
	} else {
		log_warn("the certificate changed but cannot be used yet (the old one stays): %s", buf_cstr(&err));
		memset(&d->cert_st, 0, sizeof(d->cert_st)); /* look again next time */
	}
	buf_free(&err);
}

const char *daemon_about(const char *name)
{
	static const struct {
		const char *name, *about;
	} abouts[] = {
		{ "mta",
		  "The message transfer agent of Interchange: it takes messages from the queue, expands lists once,\n"
		  "delivers local recipients into the information store, and sends the others to their home server,\n"
		  "through a connector's smart host or to the domain's MX, with retries, delivery status\n"
		  "notifications (RFC 3464), DKIM signatures and a message tracking log." },
		{ "smtpd",
		  "The SMTP server of Interchange: inbound mail on the SMTP port (recipients checked against the\n"
		  "directory at RCPT time, never an open relay), and submission for logged-in users with STARTTLS\n"
		  "on the submission port and TLS from the first byte on the submissions port (RFC 8314)." },
		{ "imapd",
		  "The IMAP server of Interchange (IMAP4rev1 and IMAP4rev2 with the extensions clients rely on), on\n"
		  "the IMAP port (STARTTLS) and the IMAPS port; a login for a mailbox on another server is passed\n"
		  "to that server." },
		{ "pop3d",
		  "The POP3 server of Interchange (RFC 1939, 2449, 5034) on the POP3 port (STLS) and the POP3S port;\n"
		  "a login for a mailbox on another server is passed to that server." },
		{ "managesieved",
		  "The ManageSieve server of Interchange (RFC 5804) on the ManageSieve port (STARTTLS): mail clients\n"
		  "upload, check, activate and remove the user's Sieve filtering scripts, which delivery runs; a login\n"
		  "for a mailbox on another server is passed to that server." },
		{ "httpd",
		  "The web server of Interchange on the HTTP and HTTPS ports: ACME HTTP-01 challenges from\n"
		  "DATA/acme (certbot --webroot), Thunderbird autoconfig, Outlook Autodiscover, Apple configuration\n"
		  "profiles and the MTA-STS policy." },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(abouts); i++) {
		if (strcmp(abouts[i].name, name) == 0)
			return abouts[i].about;
	}
	return "A service of Interchange.";
}

void daemon_setup(struct daemon *d, const char *name, unsigned flags, int argc, char **argv)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->attendant_fd = -1;
	log_set_name(name);
	signal(SIGPIPE, SIG_IGN);
	setenv("LDAPNOINIT", "1", 1);
	const char *data_dir = "var";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: ix-%s --data DIR\n\n%s\n", name, daemon_about(name));
			exit(0);
		}
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data_dir = argv[++i];
		else if (strncmp(argv[i], "--data=", 7) == 0)
			data_dir = argv[i] + 7;
		else {
			fprintf(stderr,
				"usage: %s --data DIR (started by the attendant: run 'interchange start'); --help\n",
				argv[0]);
			exit(2);
		}
	}
	const char *afd = getenv(DAEMON_ATTENDANT_FD_ENV);
	unsigned long long fdnum;
	if (afd == NULL || parse_uint(afd, 1 << 20, &fdnum) < 0 || fcntl((int)fdnum, F_GETFD) < 0) {
		fprintf(stderr, "%s runs under the system attendant only: start the system with 'interchange start'\n",
			name);
		exit(2);
	}
	d->attendant_fd = (int)fdnum;
	fcntl(d->attendant_fd, F_SETFD, FD_CLOEXEC);
	fcntl(d->attendant_fd, F_SETFL, fcntl(d->attendant_fd, F_GETFL) | O_NONBLOCK);
	unsetenv(DAEMON_ATTENDANT_FD_ENV);
	d->ready_fd = -1;
	const char *rfd = getenv(DAEMON_READY_FD_ENV);
	if (rfd != NULL && parse_uint(rfd, 1 << 20, &fdnum) == 0 && fcntl((int)fdnum, F_GETFD) >= 0) {
		d->ready_fd = (int)fdnum;
		fcntl(d->ready_fd, F_SETFD, FD_CLOEXEC);
	}
	unsetenv(DAEMON_READY_FD_ENV);

	struct buf err = BUF_INIT;
	if (config_load(data_dir, &d->cfg, &err) != IX_OK)
		fatal("%s", buf_cstr(&err));
	char *logname = xasprintf("%s.log", name), *logpath = config_log_path(&d->cfg, logname);
	free(logname);
	if (!log_to_journal() && log_open(logpath) < 0)
		log_warn("cannot open %s: %s; logging to stderr", logpath, strerror(errno));
	free(logpath);

	if (evloop_create(&d->loop, &err) != IX_OK)
		fatal("%s", buf_cstr(&err));
	evloop_signal(d->loop, SIGTERM, on_signal, d, NULL);
	evloop_signal(d->loop, SIGINT, on_signal, d, NULL);
	evloop_signal(d->loop, SIGHUP, on_hup, d, NULL);
	evloop_fd_set(d->loop, d->attendant_fd, EVLOOP_READ, on_attendant, d);

	char *ldapi = config_ldapi_uri(&d->cfg);
	/* the directory is a dependency: the attendant restarts us without counting these exits as our failures */
	if (dir_open(ldapi, d->cfg.suffix, &d->dir, &err) != IX_OK)
		fatal_dependency("cannot open the directory replica: %s", buf_cstr(&err));
	free(ldapi);
	if (dir_wait_ready(d->dir, DAEMON_DIR_READY_MS) != IX_OK)
		fatal_dependency("the directory replica was not ready within %d ms (is slapd running?)",
				 DAEMON_DIR_READY_MS);
	settings_read(d, &d->settings);

	if (flags & DAEMON_WANT_STORE) {
		struct store_settings ss;
		store_settings_default(&ss);
		char *path = config_path(&d->cfg, "store");
		if (store_open(path, &ss, &d->store, &err) != IX_OK)
			fatal("cannot open the information store at %s: %s", path, buf_cstr(&err));
		free(path);
	}
	d->cert_path = config_path(&d->cfg, "tls/cert.pem");
	d->key_path = config_path(&d->cfg, "tls/key.pem");
	file_changed(d->cert_path, &d->cert_st);
	file_changed(d->key_path, &d->key_st);
	if (tls_server_ctx_create(d->cert_path, d->key_path, &d->tls, &err) != IX_OK)
		fatal("cannot load the TLS certificate %s: %s", d->cert_path, buf_cstr(&err));
	evloop_timer_start(d->loop, &d->cert_timer, DAEMON_CERT_CHECK_MS, DAEMON_CERT_CHECK_MS, cert_check, d);
	buf_free(&err);
}

void daemon_on_cert(struct daemon *d, daemon_cert_fn *fn, void *ctx)
{
	d->cert_fn = fn;
	d->cert_ctx = ctx;
}

void daemon_on_stop(struct daemon *d, daemon_stop_fn *fn, void *ctx)
{
	d->stop_fn = fn;
	d->stop_ctx = ctx;
}

struct listener *daemon_listen(struct daemon *d, enum config_port port, unsigned max_conns, listener_accept_fn *fn,
			       void *ctx)
{
	struct listener *l = NULL;
	struct buf err = BUF_INIT;
	if (listener_create(d->loop, d->cfg.listen != NULL ? d->cfg.listen : "127.0.0.1", d->cfg.ports[port], max_conns,
			    fn, ctx, &l, &err) != IX_OK)
		fatal("cannot listen on the %s port %u: %s", config_port_name(port), d->cfg.ports[port],
		      buf_cstr(&err));
	buf_free(&err);
	log_info("listening for %s on port %u", config_port_name(port), d->cfg.ports[port]);
	return l;
}

void daemon_run(struct daemon *d)
{
	if (d->ready_fd >= 0) {
		(void)write_full(d->ready_fd, "1", 1);
		close(d->ready_fd);
		d->ready_fd = -1;
	}
	log_info("running (pid %ld)", (long)getpid());
	evloop_run(d->loop);
}

void daemon_stopped(struct daemon *d)
{
	if (evloop_timer_pending(&d->grace_timer))
		log_info("no session left: stopping now");
	evloop_stop(d->loop);
}

void daemon_teardown(struct daemon *d)
{
	evloop_timer_stop(d->loop, &d->grace_timer);
	evloop_timer_stop(d->loop, &d->cert_timer);
	free(d->cert_path);
	free(d->key_path);
	if (d->settings_async != NULL) {
		dir_set_change_hook(d->dir, NULL, NULL);
		evloop_async_destroy(&d->settings_async);
	}
	store_close(&d->store);
	dir_destroy(&d->dir);
	tls_ctx_destroy(&d->tls);
	evloop_destroy(&d->loop);
	if (d->attendant_fd >= 0)
		close(d->attendant_fd);
	log_info("stopped");
	config_free(&d->cfg);
}
