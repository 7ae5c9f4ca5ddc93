/* imap_session.h - the IMAP4rev1 server session over the information store: a state enum, a flat command table,
 * the selected folder's view kept in step with the store's change notification, and the server that owns them. */
#ifndef IX_IMAP_SESSION_H
#define IX_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/evloop.h"
#include "transport/login/imapd_auth.h"
#include "transport/net/tls.h"

struct store;
struct proxy_trust;
struct imap_session;
struct imap_server;

/* Limits of a session. */
#define IMAP_MAX_BAD_COMMANDS 20      /* BAD responses in a row before "* BYE" */
#define IMAP_FETCH_BATCH 64           /* messages answered per round before output is checked */
#define IMAP_LITERAL_MAX_OTHER (1024u * 1024) /* room for the other literals of an APPEND command */
#define IMAP_LITERAL_MAX_PREAUTH 8192u       /* a literal before login (a user name or password) */
#define IMAP_ID_FIELDS_MAX 30         /* RFC 2971 */
#define IMAP_PREAUTH_TIMEOUT_MS 60000  /* idle limit before login (the configured one applies after) */
/* Members of the distribution list with this name administer public folders (all rights by default). */
#define IMAP_PUBLIC_ADMINS "pf-admins"
/* Rights every authenticated user has on a public folder created from the directory (see docs/imap-pop3.md). */
#define IMAP_PUBLIC_DEFAULT_RIGHTS "lrsp"
#define IMAP_NS_OTHER "Other Users"
#define IMAP_NS_PUBLIC "Public Folders"

struct imap_server_config {
	struct evloop *loop;
	struct store *store;
	struct imapd_userdb users;  /* copied */
	struct workpool *pool;    /* blocking work; must outlive the server. NULL: done inline (fuzzing, tools) */
	struct tls_ctx *tls;        /* STARTTLS and implicit TLS; NULL: not offered */
	const char *hostname;       /* must outlive the server */
	unsigned idle_timeout_msecs;
	uint64_t max_message_size;  /* APPEND limit */
	unsigned max_auth_failures; /* per client address per minute */
	bool plaintext_on_loopback; /* LOGIN without TLS from loopback (default in imapd: true) */
	/* Proxying (proxy.h): this server's directory entry (NULL: never proxy) and the trust for home servers not on
	 * loopback (NULL: those are unavailable). Both must outlive the server. */
	const char *server_dn;
	struct proxy_trust *proxy_trust;
};

/* Creates the server (the sessions' shared state: change-notification watches, throttle). config is copied. */
struct imap_server *imap_server_create(const struct imap_server_config *config);
/* Closes every session at once and frees; sets *srv to NULL. */
void imap_server_destroy(struct imap_server **srv);
/* Starts a session on an accepted fd (taken over). implicit_tls: the IMAPS port. on_close (may be NULL) is called
 * with ctx when the session ends, before it is freed (the listener's count goes down there). */
void imap_server_accept(struct imap_server *srv, int fd, bool implicit_tls, void (*on_close)(void *ctx), void *ctx);
/* Sends "* BYE" to every session and closes them after the output is flushed; done (may be NULL) is called once
 * no session is left. New sessions are refused from now on. */
void imap_server_shutdown(struct imap_server *srv, void (*done)(void *ctx), void *ctx);
/* Live sessions. */
size_t imap_server_sessions(const struct imap_server *srv);
/* New limits from the server's settings: the idle timeout applies to sessions that start from now on, the others
 * at once. */
void imap_server_set_limits(struct imap_server *srv, unsigned idle_timeout_msecs, uint64_t max_message_size,
			    unsigned max_auth_failures);

#endif
