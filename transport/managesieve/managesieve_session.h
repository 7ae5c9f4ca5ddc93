/* managesieve_session.h - the ManageSieve server session (RFC 5804) over a mailbox's Sieve scripts in the store:
 * STARTTLS, AUTHENTICATE (the login core's SASL), the script commands (managesieve_exec.h) and UNAUTHENTICATE. The
 * connection, login, throttle, proxy and server life are the login core's (transport/login/login_session.h). */
#ifndef IX_MANAGESIEVE_SESSION_H
#define IX_MANAGESIEVE_SESSION_H

#include "transport/login/login_session.h"

struct ms_server;

#define MS_MAX_BAD_COMMANDS 20 /* NO answers to bad commands in a row before the session is closed */
/* A connection's input buffer: the longest command (two literals of MS_MAX_LITERAL and its lines) fits whole. */
#define MS_INPUT_MAX (2 * MS_MAX_LITERAL + 4 * MS_MAX_LINE)

/* Creates the server; config is copied. */
struct ms_server *ms_server_create(const struct login_config *config);
/* Closes every session at once and frees; sets *srv to NULL. */
void ms_server_destroy(struct ms_server **srv);
/* The login core's server: login_server_accept (a new session), _shutdown, _set_limits, _sessions. */
struct login_server *ms_server_login(struct ms_server *srv);

#endif
