/* pop3_session.h - the POP3 server session (RFC 1939, 2449 CAPA, 2595 STLS, 5034 SASL) over the store's INBOX:
 * a snapshot of the Inbox at login numbered 1..n, UIDL from the store's UIDs, deletions applied at QUIT only. */
#ifndef IX_POP3_SESSION_H
#define IX_POP3_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/evloop.h"
#include "transport/login/imapd_auth.h"
#include "transport/net/tls.h"

struct store;
struct proxy_trust;
struct pop3_server;

#define POP3_MAX_BAD_COMMANDS 20 /* -ERR answers in a row before the session is closed */
#define POP3_PREAUTH_TIMEOUT_MS 60000 /* idle limit before login (the configured one applies after) */

struct pop3_server_config {
	struct evloop *loop;
	struct store *store;
	struct imapd_userdb users;  /* copied */
	struct workpool *pool;    /* password checks; must outlive the server. NULL: inline (fuzzing) */
	struct tls_ctx *tls;        /* STLS and implicit TLS; NULL: not offered */
	const char *hostname;       /* must outlive the server */
	unsigned idle_timeout_msecs;
	unsigned max_auth_failures; /* per client address per minute */
	bool plaintext_on_loopback; /* USER/PASS without TLS from loopback */
	/* Proxying (proxy.h): this server's directory entry (NULL: never proxy) and the trust for home servers not on
	 * loopback (NULL: those are unavailable). Both must outlive the server. */
	const char *server_dn;
	struct proxy_trust *proxy_trust;
};

/* Creates the server; config is copied. */
struct pop3_server *pop3_server_create(const struct pop3_server_config *config);
/* Closes every session at once and frees; sets *srv to NULL. */
void pop3_server_destroy(struct pop3_server **srv);
/* Starts a session on an accepted fd (taken over); implicit_tls for the POP3S port. on_close (may be NULL) is
 * called with ctx when the session ends. */
void pop3_server_accept(struct pop3_server *srv, int fd, bool implicit_tls, void (*on_close)(void *ctx), void *ctx);
/* Says goodbye to every session (no deletions are applied: RFC 1939 UPDATE happens at QUIT only) and calls done
 * (may be NULL) once none is left. */
void pop3_server_shutdown(struct pop3_server *srv, void (*done)(void *ctx), void *ctx);
size_t pop3_server_sessions(const struct pop3_server *srv);
/* New limits from the server's settings (the idle timeout for sessions that start from now on). */
void pop3_server_set_limits(struct pop3_server *srv, unsigned idle_timeout_msecs, unsigned max_auth_failures);

#endif
