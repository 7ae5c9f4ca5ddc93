/* imap_session.h - the IMAP4rev1 server session over the information store: a state enum, a flat command table,
 * the selected folder's view kept in step with the store's change notification, and the server that owns them. */
#ifndef IX_IMAP_SESSION_H
#define IX_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/evloop.h"
#include "transport/login/login_session.h"

struct store;
struct tls_peers;
struct imap_session;
struct imap_server;

/* Limits of a session. */
#define IMAP_MAX_BAD_COMMANDS 20              /* BAD responses in a row before "* BYE" */
#define IMAP_FETCH_BATCH 64                   /* messages answered per round before output is checked */
#define IMAP_LITERAL_MAX_OTHER (1024u * 1024) /* room for the other literals of an APPEND command */
#define IMAP_LITERAL_MAX_PREAUTH 8192u        /* a literal before login (a user name or password) */
#define IMAP_ID_FIELDS_MAX 30                 /* RFC 2971 */
#define IMAP_NS_OTHER "Other Users"
#define IMAP_NS_PUBLIC "Public Folders"

struct imap_server_config {
	struct login_config login;
	uint64_t max_message_size; /* APPEND limit (0: 35 MiB) */
};

/* Creates the server (the sessions' shared state: change-notification watches; the login core's). config is
 * copied. */
struct imap_server *imap_server_create(const struct imap_server_config *config);
/* Closes every session at once and frees; sets *srv to NULL. */
void imap_server_destroy(struct imap_server **srv);
/* The login core's server: login_server_accept (a new session; implicit TLS for the IMAPS port), _shutdown ("* BYE"
 * to every session), _set_limits, _sessions. */
struct login_server *imap_server_login(struct imap_server *srv);
/* A new APPEND limit from the server's settings (0: unchanged). */
void imap_server_set_max_message_size(struct imap_server *srv, uint64_t max_message_size);

#endif
