/* proxy.h - IMAP, POP3 and ManageSieve logins of a user whose mailbox lives on another server of the organisation: after the
 * session here checked the user's credentials (any mechanism), the proxy connects to the home server (the backend)
 * under a timeout, uses STARTTLS/STLS there (its certificate verified, ours presented), signs in as this server for
 * the user (SASL EXTERNAL with the user as authorisation identity), hands the backend's answer to the session, and
 * then copies bytes both ways until either side closes. TLS with the client stays terminated here. Everything runs on the daemon's event loop: no thread,
 * bounded buffers with back-pressure, the session's idle timeout. See docs/imap-pop3.md, "Proxying". */
#ifndef IX_PROXY_H
#define IX_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "transport/net/conn.h"
#include "common/evloop.h"
#include "transport/net/tls.h"
#include "transport/net/tls_peers.h"

/* From the start of the connection to the backend's answer to the login (connect, greeting, STARTTLS, login). */
#define PROXY_LOGIN_TIMEOUT_MS 10000
/* Bytes queued towards one side before the proxy stops reading the other (it reads again below half). */
#define PROXY_PIPE_MAX CONN_OUTPUT_SOFT_MAX
/* How often a side paused by back-pressure looks whether the other side's output has drained. */
#define PROXY_DRAIN_POLL_MS 10
/* Longest host name and numeric address of a backend. */
#define PROXY_HOST_MAX 255
#define PROXY_IP_MAX 64

enum proxy_proto { PROXY_IMAP, PROXY_POP3, PROXY_SIEVE };
/* "IMAP", "POP3", "ManageSieve". */
const char *proxy_proto_name(enum proxy_proto proto);

/* Where a user's mailbox is served: the home server's host name and its numeric address and port. */
struct proxy_backend {
	char host[PROXY_HOST_MAX + 1];
	char ip[PROXY_IP_MAX];
	unsigned port;
	bool tls; /* STARTTLS/STLS with a verified certificate before the login: always set by proxy_backend_resolve (the
		   * EXTERNAL sign-in needs our client certificate, on loopback too); off only in tests */
};
/* Resolves host (ixHostName: a name or a numeric address) for port. Blocking (getaddrinfo): call it on a worker.
 * Returns 0 (fills *b_r; the first address, IPv4 preferred; tls set) or IX_ENOTFOUND / IX_EINVAL with error_r. */
int proxy_backend_resolve(const char *host, unsigned port, struct proxy_backend *b_r, struct buf *error_r);

struct proxy;

enum proxy_result {
	/* The backend accepted the login. reply: IMAP: its tagged answer without the tag ("OK [CAPABILITY ...] ...");
	 * POP3 and ManageSieve: its whole +OK / OK line. The session sends it to the client from the callback; piping starts when the
	 * callback returns (client input is resumed by the proxy). */
	PROXY_LOGGED_IN,
	/* The backend refused the credentials (its NO / -ERR answer, as for LOGGED_IN). The proxy is finished. */
	PROXY_REFUSED,
	/* The backend could not be reached, timed out, failed TLS or spoke nonsense: reply says why (for the log, not
	 * for the client). The proxy is finished. */
	PROXY_UNAVAILABLE,
	/* The piped session ended (either side closed, failed or was idle; logged with its byte counts), or the
	 * client left during the login. The proxy is finished; the owner ends the session. */
	PROXY_ENDED,
};
/* After a "finished" result the proxy does nothing more: the owner calls proxy_destroy (from the callback is
 * fine). */
typedef void proxy_fn(struct proxy *p, enum proxy_result result, const char *reply, void *ctx);

struct proxy_login {
	enum proxy_proto proto;
	const struct proxy_backend *backend; /* copied */
	const char *user;                    /* the login the backend signs in (EXTERNAL's authorisation identity) */
	struct tls_ctx *tls; /* tls_peers_ctx's, presenting this server's certificate; NULL: backends that need TLS are
			      * refused */
	unsigned idle_timeout_msecs;  /* of the piped session (the client connection's idle timeout) */
	unsigned login_timeout_msecs; /* 0: PROXY_LOGIN_TIMEOUT_MS */
};

/* Starts logging in at the backend for the session on client (whose input the session has paused; the session
 * keeps owning client and passes its events on with proxy_client_event). fn is called once with LOGGED_IN,
 * REFUSED or UNAVAILABLE, and after LOGGED_IN once more with ENDED; never from inside this call. */
struct proxy *proxy_start(struct evloop *loop, struct conn *client, const struct proxy_login *login, proxy_fn *fn,
			  void *ctx);
/* The session's client connection reported ev: the proxy handles it (pipes input, ends on EOF/ERROR/idle). */
void proxy_client_event(struct proxy *p, enum conn_event ev);
/* True once the backend accepted the login (the session is being piped). */
bool proxy_piping(const struct proxy *p);
/* Closes the backend connection (at once) and frees; sets *p to NULL. NULL is ignored. The client connection is
 * the owner's. */
void proxy_destroy(struct proxy **p);

#endif
