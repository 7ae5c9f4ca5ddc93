/* pop3_session.h - the POP3 server session (RFC 1939, 2449 CAPA, 2595 STLS, 5034 SASL) over the store's INBOX:
 * a snapshot of the Inbox at login numbered 1..n, UIDL from the store's UIDs, deletions applied at QUIT only. The
 * connection, login and server life are the login core's (transport/login/login_session.h). */
#ifndef IX_POP3_SESSION_H
#define IX_POP3_SESSION_H

#include "transport/login/login_session.h"

struct pop3_server;

#define POP3_MAX_BAD_COMMANDS 20 /* -ERR answers in a row before the session is closed */

/* Creates the server; config is copied. */
struct pop3_server *pop3_server_create(const struct login_config *config);
/* Closes every session at once and frees; sets *srv to NULL. */
void pop3_server_destroy(struct pop3_server **srv);
/* The login core's server: login_server_accept (a new session; implicit TLS for the POP3S port), _shutdown (no
 * deletions are applied: RFC 1939 UPDATE happens at QUIT only), _set_limits, _sessions. */
struct login_server *pop3_server_login(struct pop3_server *srv);

#endif
