/* login_session.h - the login core IMAP and POP3 share (as Dovecot's login-common): the server's session list and
 * shutdown, a session's connection events, TLS and teardown, the authentication jobs on the worker pool (password
 * or SASL steps, the user lookup, the home server), the login throttle and the proxy hand-off. A protocol embeds
 * struct login_server and struct login_session first in its own structs and fills a struct login_proto. */
#ifndef IX_LOGIN_SESSION_H
#define IX_LOGIN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/evloop.h"
#include "common/settings.h"
#include "common/throttle.h"
#include "common/workpool.h"
#include "transport/login/login_auth.h"
#include "transport/login/proxy.h"
#include "transport/net/conn.h"
#include "transport/net/sasl.h"
#include "transport/net/tls.h"

struct store;
struct login_server;
struct login_session;
struct login_job;

/* What a server of either protocol is given. */
struct login_config {
	struct evloop *loop;
	struct store *store;
	struct login_userdb users;    /* copied */
	struct workpool *pool;        /* blocking work; must outlive the server. NULL: done inline (fuzzing, tools) */
	struct workpool *read_pool;   /* work that writes nothing (password checks, body reads); NULL: on pool */
	struct tls_ctx *tls;          /* STARTTLS/STLS and implicit TLS; NULL: not offered */
	const char *hostname;         /* must outlive the server */
	const char *spool_dir;        /* where large messages being received wait (common/spool.h; NULL: in memory);
				     * must outlive the server */
	unsigned idle_timeout_msecs;  /* after login */
	unsigned login_timeout_msecs; /* time allowed before login, in total: silence and activity alike (0:
				       * LOGIN_TIMEOUT_DEFAULT_MS); never more than idle_timeout_msecs */
	struct throttle_limits auth_limits; /* failed logins per (address, account), address, account (throttle.h) */
	unsigned auth_failure_delay_msecs;  /* a failed login is answered this much later (0: at once) */
	bool plaintext_on_loopback;         /* password logins without TLS from loopback */
	const struct ix_sasl_verifiers *verifiers; /* sign-ins without a password (sasl.h); NULL: none */
	unsigned scram; /* auth.scram: 0 no SCRAM, 1 SCRAM, 2 and its -PLUS forms inside TLS */
	/* Proxying (proxy.h): this server's directory entry (NULL: never proxy) and the trust for home servers not on
	 * loopback (NULL: those are unavailable). Both must outlive the server. */
	const char *server_dn;
	struct tls_peers *proxy_trust;
	/* IMAP only: a user homed on another server gets LOGIN_REFERRAL instead of the proxy (login_server_set_referrals:
	 * the setting imap.proxy 0) */
	bool referrals;
};

#define LOGIN_TIMEOUT_DEFAULT_MS 60000

/* The outcomes of a login attempt a protocol answers (login_proto.reply). */
enum login_outcome {
	LOGIN_CONTINUE,         /* a SASL challenge: text is its base64 */
	LOGIN_FAILED,           /* bad credentials (counted by the throttle; answered auth_failure_delay_msecs late) */
	LOGIN_CANCELLED,        /* the client cancelled the SASL exchange */
	LOGIN_SASL_BAD,         /* a malformed SASL exchange; text: the reason or "" */
	LOGIN_UNAVAILABLE,      /* the directory or the store is not answering */
	LOGIN_HOME_UNREACHABLE, /* the mailbox is on a server that cannot be reached from its directory entry */
	LOGIN_THROTTLED,        /* temporarily blocked: too many failures (throttle.h), or the directory locked the
				 * account; the password was not checked */
	LOGIN_SASL_UNAVAILABLE, /* the SASL library cannot start an exchange */
	LOGIN_PROXY_LOGGED_IN,  /* the home server accepted: text is its answer, to be sent on */
	LOGIN_PROXY_REFUSED,    /* the home server refused: text is its answer */
	LOGIN_PROXY_FAILED,     /* the home server is not answering */
	LOGIN_REFERRAL,         /* the password was right, the mailbox is elsewhere and referrals are on: text is the
				 * IMAP URL of the home server for the user (RFC 2221) */
};

/* Why a protocol says goodbye on its own (login_proto.bye). */
enum login_bye {
	LOGIN_BYE_IDLE,     /* silent for too long */
	LOGIN_BYE_SHUTDOWN, /* the server stops */
	LOGIN_BYE_REFUSED,  /* a new connection while the server stops */
};

/* What a protocol adds to the core. Every function is called on the loop's thread unless said otherwise. */
struct login_proto {
	const char *sasl_service; /* "imap", "pop" */
	enum proxy_proto proxy;
	/* A new session with the protocol's state (login_session first in it, zeroed); free_session frees it. */
	struct login_session *(*new_session)(struct login_server *srv);
	void (*free_session)(struct login_session *ls);
	void (*greet)(struct login_session *ls);
	/* Reads what input there is (not called while the session is busy). */
	void (*input)(struct login_session *ls);
	/* Marks the session busy (input paused for a job) or not. */
	void (*set_busy)(struct login_session *ls, bool busy);
	/* Carries on reading input unless the session is busy or its job runs inline. */
	void (*resume)(struct login_session *ls);
	/* Answers a login attempt; ref is what the protocol gave with it (the IMAP tag; NULL for POP3). */
	void (*reply)(struct login_session *ls, const char *ref, enum login_outcome o, const char *text);
	/* Says goodbye before the core closes the session (the output is flushed first). */
	void (*bye)(struct login_session *ls, enum login_bye why);
	/* On a worker, after the password was right and the mailbox is here: prepares the session (the mailbox,
	 * POP3's maildrop) in *data_r (freed with free_data unless logged_in takes it). Returns 0 or IX_EUNAVAIL. */
	int (*prepare)(struct login_server *srv, const struct login_user *u, void **data_r, struct buf *error_r);
	void (*free_data)(void *data);
	/* Logged in here: ls->user is set; answers and enters the authenticated state (data: from prepare). */
	void (*logged_in)(struct login_session *ls, const char *ref, void *data);
};

struct login_server {
	const struct login_proto *proto;
	struct login_config cfg;
	struct throttle_guard *guard;
	struct login_session *sessions; /* doubly linked */
	size_t nsessions;
	bool shutting_down;
	void (*done)(void *ctx);
	void *done_ctx;
};

struct login_session {
	struct login_session *prev, *next;
	struct login_server *srv;
	struct conn *conn;
	void (*on_close)(void *ctx);
	void *on_close_ctx;
	bool secure; /* TLS or loopback */
	bool closing;
	bool dead;              /* the connection ended while a job was out: freed when it returns */
	bool tls_pending;       /* STARTTLS/STLS sent: input waits for the handshake */
	bool job_out;           /* a job on the worker pool holds the session */
	bool inline_job;        /* a job runs inline (no pool): its done function must not re-enter the input loop */
	struct login_user user; /* once logged in */
	bool by_server;         /* logged in by a server of the organisation for the user (SASL EXTERNAL) */
	char *actor; /* logged in by another user with full access to the mailbox (SASL PLAIN naming user as the
		      * authorization identity): that user's login; NULL when the user signed in */
	struct ix_sasl *sasl;
	struct proxy *proxy; /* a user homed on another server: the login there, then the piped session */
	char *proxy_ref;     /* the ref of the login handed to the proxy */
	/* The whole time allowed before login (login_timeout_msecs from accept, however busy the client keeps the
	 * connection); stopped by a login here or a successful one at the home server. */
	struct evloop_timer login_deadline;
	/* Set by the password check (on the worker, while the job holds the session): the account tried, and why it
	 * was blocked (NULL: it was not). */
	char *tried;
	const char *blocked_why;
	/* A failed login's answer held back (auth_failure_delay_msecs); the session stays busy meanwhile. */
	struct evloop_timer fail_delay;
	char *fail_ref;
	/* Output over CONN_OUTPUT_SOFT_MAX: input waits (busy) until it drains to half (login_output_full). */
	struct evloop_timer output_wait;
	/* SASL EXTERNAL waiting for the client's certificate, asked for after the handshake (conn_request_peer_cert):
	 * the job starts when it comes */
	struct login_job *cert_job;
};

/* Sets up srv (embedded in the protocol's server) from config (copied). */
void login_server_init(struct login_server *srv, const struct login_proto *proto, const struct login_config *config);
/* Frees every session at once and what init made. */
void login_server_cleanup(struct login_server *srv);
/* Starts a session on an accepted fd (taken over). implicit_tls: the port speaks TLS first. on_close (may be NULL)
 * is called with ctx when the session ends, before it is freed. */
void login_server_accept(struct login_server *srv, int fd, bool implicit_tls, void (*on_close)(void *ctx), void *ctx);
/* Says goodbye to every session (proto->bye) and closes them after the output is flushed (piped sessions are cut:
 * nothing of ours may go into the middle of a home server's response); done (may be NULL) is called once no
 * session is left. New sessions are refused from now on. */
void login_server_shutdown(struct login_server *srv, void (*done)(void *ctx), void *ctx);
/* Live sessions. */
size_t login_server_sessions(const struct login_server *srv);
/* New limits from the server's settings: the timeouts (they apply to sessions that start from now on) and the
 * failed-login limits and delay of set (auth.*). */
void login_server_set_limits(struct login_server *srv, unsigned idle_timeout_msecs, unsigned login_timeout_msecs,
			     const struct settings *set);

/* Referrals on or off (login_config.referrals), for the logins that start from now on. */
void login_server_set_referrals(struct login_server *srv, bool on);

/* Back to the state before login (IMAP UNAUTHENTICATE): the user, the account tried and any SASL exchange are
 * forgotten and the time allowed before login starts again. Not for a session piped to its home server. */
void login_unauthenticate(struct login_session *ls);
/* For a session whose actor signed in to another user's mailbox (ls->actor): true (logged) when the actor's full
 * access to it was revoked since; the protocol then says goodbye before the command. Cheap (the directory replica):
 * called before every command. False for every other session. */
bool login_actor_lost(struct login_session *ls);
/* Closes the session once its output is flushed. */
void login_close(struct login_session *ls);
/* Starts TLS on the session (after the protocol's go-ahead was written); bytes the client sent early are dropped
 * and logged (verb names the command). */
void login_start_tls(struct login_session *ls, const char *verb);
/* True (and answered LOGIN_THROTTLED, logged) when an attempt for account (NULL: not known yet, the client's
 * address alone is looked at) is temporarily blocked now. The password checks of login_password and the SASL
 * steps look again once the account is known. */
bool login_throttled(struct login_session *ls, const char *ref, const char *account);
/* Counts a failed login and logs it (account: the user name tried, NULL when there was none fit to count; why: the
 * reason). */
void login_failed(struct login_session *ls, const char *account, const char *why);
/* Checks a user name and password on the pool, then logs in here or at the home server; answered through proto. */
void login_password(struct login_session *ls, const char *ref, const char *user, size_t ulen, const char *pass,
		    size_t plen);
/* The SCRAM the session offers now (ix_sasl_offered): when the user table has verifiers and auth.scram is on, the
 * -PLUS forms too inside TLS when it is 2. */
enum ix_sasl_scram_offer login_scram_offer(const struct login_session *ls);
/* Starts a SASL exchange with mechanism mech and an optional initial response (ir NULL: none). */
void login_sasl_start(struct login_session *ls, const char *ref, const char *mech, size_t mlen, const char *ir,
		      size_t irlen);
/* The client's next SASL response line. */
void login_sasl_response(struct login_session *ls, const char *ref, const char *line, size_t len);

/* How often a session whose output is full looks whether it has drained. */
#define LOGIN_OUTPUT_POLL_MS 10
/* Called before each command a protocol reads: false while the output queued is at most CONN_OUTPUT_SOFT_MAX; else
 * true, the session busy and its input paused until the output drains to half, when proto->resume is called. */
bool login_output_full(struct login_session *ls);

/* Hands blocking work to the pool: the session is busy (input paused) until done runs, which must call
 * login_job_finished first. Without a pool run and done are called here. */
void login_start_job(struct login_session *ls, workpool_fn *run, workpool_fn *done, void *arg);
/* The same for work that writes nothing to the store (it never waits for a sync): on the read pool, so that it
 * never queues behind the jobs that wait for syncs. */
void login_start_read_job(struct login_session *ls, workpool_fn *run, workpool_fn *done, void *arg);
/* Called first by a job's done function: returns false when the session died meanwhile (it is then freed, and the
 * job must only free its own memory). */
bool login_job_finished(struct login_session *ls);

#endif
