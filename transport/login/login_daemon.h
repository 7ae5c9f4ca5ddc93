/* login_daemon.h - the one main of ix-imapd, ix-pop3d and ix-managesieved: daemon_setup, SASL, the worker pool, the proxy trust, a
 * listener on the plain and the TLS port, the settings as they change, run and teardown; a protocol's main only names
 * its ports and makes its server. */
#ifndef IX_LOGIN_DAEMON_H
#define IX_LOGIN_DAEMON_H

#include "common/config.h"
#include "common/settings.h"
#include "transport/login/login_session.h"

struct login_daemon {
	const char *name;         /* "imapd": the daemon's name; "ix-" name is the SASL application */
	const char *sasl_command; /* the command a missing SASL breaks, for the log ("AUTHENTICATE") */
	unsigned pool_threads;
	enum config_port port, tls_port; /* plain (STARTTLS/STLS) and implicit TLS (PORT_COUNT: none) */
	const char *busy_reply;          /* said on the plain port past the connection limit */
	/* Makes the protocol's server from the login core's config and this server's settings (*login_r: its core
	 * part). */
	void *(*create)(const struct login_config *cfg, const struct settings *set, struct login_server **login_r);
	/* This server's settings, at start and whenever they change (daemon_watch_settings). */
	void (*apply)(void *srv, const struct settings *set);
	void (*destroy)(void *srv);
};

/* The whole program. Returns the exit status. */
int login_daemon_main(const struct login_daemon *ld, int argc, char **argv);

#endif
