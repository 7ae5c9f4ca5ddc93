/* daemon.h - what every Interchange service daemon (smtpd, imapd, pop3d, mta) shares: it is started by the
 * attendant only, loads the data folder's configuration, logs to log/NAME.log, keeps a live directory replica,
 * opens the information store and the TLS certificate, listens on its ports, and stops cleanly on SIGTERM or
 * when the attendant goes away. A daemon's main.c is: daemon_setup, register listeners, daemon_run. */
#ifndef IX_DAEMON_H
#define IX_DAEMON_H

#include "common/buf.h"
#include "common/config.h"
#include "common/settings.h"
#include "transport/net/conn.h"
#include "directory/dir.h"
#include "common/evloop.h"
#include "store/store.h"
#include "transport/net/tls.h"

#include <sys/stat.h>

/* How long a daemon waits at start for the directory replica's first refresh. */
#define DAEMON_DIR_READY_MS 15000
/* How often the certificate files are looked at: a changed pair (interchange cert install, a certbot deploy hook) is
 * served from the next connection on, without a restart. */
#define DAEMON_CERT_CHECK_MS 5000
/* How long a graceful stop may take before the daemon exits anyway. */
#define DAEMON_STOP_GRACE_MS 5000
/* Environment variable through which the attendant hands over the read end of a pipe; EOF on it means the
 * attendant is gone and the daemon must stop. */
#define DAEMON_ATTENDANT_FD_ENV "IX_ATTENDANT_FD"
/* And the write end of a pipe on which the daemon says it is ready (listening) when daemon_run starts, so that
 * `interchange start` returns only once every service answers. */
#define DAEMON_READY_FD_ENV "IX_READY_FD"

struct daemon;
/* Called once when the daemon is asked to stop: refuse new work, close sessions politely, then call
 * daemon_stopped() (or let the grace period run out). */
typedef void daemon_stop_fn(struct daemon *d, void *ctx);
/* Called on the daemon's loop once d->tls serves a changed certificate (see daemon_on_cert). */
typedef void daemon_cert_fn(struct daemon *d, void *ctx);
/* Called on the daemon's loop with this server's effective settings (see daemon_watch_settings). */
typedef void daemon_settings_fn(struct daemon *d, const struct settings *s, void *ctx);

struct daemon {
	const char *name;    /* "smtpd", "imapd"... */
	struct config cfg;   /* the data folder's bootstrap configuration */
	struct evloop *loop; /* this process's one event loop */
	struct dir *dir;     /* live directory replica (ready when daemon_setup returns) */
	struct store *store; /* NULL unless DAEMON_WANT_STORE */
	struct tls_ctx *tls; /* server context from tls/cert.pem + tls/key.pem, reloaded in place when they change */
	struct settings settings; /* this server's settings (its directory entry), current on the loop's thread */
	int stopping;             /* set once a stop was requested */
	/* private */
	daemon_stop_fn *stop_fn;
	void *stop_ctx;
	int attendant_fd;
	int ready_fd;
	struct evloop_timer grace_timer;
	struct evloop_timer cert_timer;
	char *cert_path, *key_path;
	struct stat cert_st, key_st;
	daemon_cert_fn *cert_fn;
	void *cert_ctx;
	daemon_settings_fn *settings_fn;
	void *settings_ctx;
	struct evloop_async *settings_async;
};

#define DAEMON_WANT_STORE 1u

/* What the daemon called name ("smtpd") does, in a few lines: its --help text and manual page. */
const char *daemon_about(const char *name);
/* Parses the command line (--data DIR; --help prints daemon_about and the usage, then exits 0: it also runs
 * without the attendant, for the manual pages), refuses to run without the attendant, opens everything above and reads
 * this server's settings from the replica (defaults for what is unset, or all when its entry is unknown).
 * On any failure it logs the reason and exits (status 1; the attendant records it), or with IX_EXIT_DEPENDENCY when
 * the directory replica cannot be opened or is not ready in DAEMON_DIR_READY_MS (not a failure of the service). */
void daemon_setup(struct daemon *d, const char *name, unsigned flags, int argc, char **argv);
/* The function called after d->tls took a changed certificate (for a daemon with contexts or servers of its own
 * made from the same files). */
void daemon_on_cert(struct daemon *d, daemon_cert_fn *fn, void *ctx);
/* The function called when a stop is requested (SIGTERM, SIGINT, attendant gone). */
void daemon_on_stop(struct daemon *d, daemon_stop_fn *fn, void *ctx);
/* `interchange server set` without a restart: calls fn at once with d->settings, then on the daemon's loop
 * each time the replica reports a change of this server's entry that changes its effective settings (d->settings
 * is updated before the call). No polling: the daemon holds the replica's one change hook (dir_set_change_hook)
 * from here until daemon_teardown. Call it at most once, after daemon_setup; exits on failure like daemon_setup. */
void daemon_watch_settings(struct daemon *d, daemon_settings_fn *fn, void *ctx);
/* Listens on the configured address at the port cfg.ports[port]; exits with a clear message on failure. */
struct listener *daemon_listen(struct daemon *d, enum config_port port, unsigned max_conns, listener_accept_fn *fn,
			       void *ctx);
/* Tells the attendant the daemon is ready (listening), then runs the loop until the daemon has stopped. */
void daemon_run(struct daemon *d);
/* Ends the loop: the stop function calls this when its sessions are closed. */
void daemon_stopped(struct daemon *d);
/* Closes the store, replica, TLS context and loop. */
void daemon_teardown(struct daemon *d);

#endif
