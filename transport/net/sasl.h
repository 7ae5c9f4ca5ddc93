/* sasl.h - server-side SASL: PLAIN and LOGIN over Cyrus libsasl2, passwords checked by the caller's function
 * (no sasldb, no saslauthd); SCRAM-SHA-256, SCRAM-SHA-1 and their -PLUS forms in our own code (common/scram.h)
 * against verifiers the caller looks up; base64 protocol steps for SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH. */
#ifndef IX_SASL_H
#define IX_SASL_H

/* The prefix is ix_sasl_ because libsasl2 owns every sasl_* name. */

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/scram.h"

/* Longest decoded client response (RFC 4954 allows 12288-octet AUTH lines; base64 is 4/3 of this). */
#define IX_SASL_RESPONSE_MAX 9216
/* Longest base64 response line we accept. */
#define IX_SASL_LINE_MAX 12288
/* Most client responses one exchange may take. */
#define IX_SASL_STEPS_MAX 8
/* Longest user name or password handed to the check function. */
#define IX_SASL_USER_MAX 255
#define IX_SASL_PASS_MAX 1024

/* The mechanisms Cyrus runs (its PLAIN and LOGIN plugins, with our check function); every other one is ours. */
#define IX_SASL_MECHS "PLAIN LOGIN"

/* Which SCRAM a connection offers (ix_sasl_offered): none (the caller cannot look verifiers up), SCRAM-SHA-256 and
 * SCRAM-SHA-1, or those and their -PLUS forms (inside TLS, with channel binding data). Why SCRAM is ours and not
 * Cyrus's: docs/transport-io.md, "SCRAM". */
enum ix_sasl_scram_offer {
	IX_SASL_SCRAM_NONE = 0,
	IX_SASL_SCRAM,
	IX_SASL_SCRAM_PLUS,
};

/* Verifies a password for user (both NUL-terminated; pass may hold passlen bytes with embedded NULs).
 * Returns 0 when correct, IX_EAUTH when wrong or unknown, IX_EUNAVAIL when the directory cannot be asked,
 * IX_EBLOCKED when the attempt is temporarily blocked (too many failed logins; the password was not checked). */
typedef int ix_sasl_check_fn(void *ctx, const char *user, const char *pass, size_t passlen);
/* Looks up the SCRAM verifiers of srv's hash for user (a login or an address, as the client sent it) and adds
 * them to srv (scram_server_add_verifier): the password's first, then the app passwords', appending for each one
 * added its name to names_r followed by a NUL ("" for the password). Returns 0; IX_ENOTFOUND (no such user, or no
 * verifier: the exchange goes on and fails at its end, as for a wrong password); IX_EBLOCKED; IX_EUNAVAIL. */
typedef int ix_sasl_scram_fn(void *ctx, const char *user, struct scram_server *srv, struct buf *names_r);

/* Sign-ins without a password, each offered only where its function says it is set up (NULL: never). The
 * functions are called on the thread of ix_sasl_start/step and may block (a key fetch); they must be thread-safe. */
struct ix_sasl_verifiers {
	/* OAUTHBEARER (RFC 7628) and XOAUTH2: an issuer is configured. */
	bool (*token_enabled)(void *ctx);
	/* Checks a bearer token; authzid is the user the client named ("" when none). Returns 0 with the user's login
	 * in *user_r (malloc'd); IX_EAUTH with RFC 7628's JSON status in status_r and the reason in error_r;
	 * IX_EUNAVAIL (the issuer's keys cannot be had) with error_r. */
	int (*token)(void *ctx, const char *authzid, const char *token, char **user_r, struct buf *status_r,
		     struct buf *error_r);
	/* GSSAPI (Kerberos through Cyrus's plugin): a keytab is installed. */
	bool (*gssapi_enabled)(void *ctx);
	/* Maps the Kerberos principal Cyrus authenticated (user@REALM, or user when the realm was the default one)
	 * to a login. Returns 0 with *user_r (malloc'd), IX_EAUTH (another realm, no such user) with error_r. */
	int (*principal)(void *ctx, const char *principal, char **user_r, struct buf *error_r);
	void *ctx;
};

/* Outcomes of a step besides errors (which are negative ix_err codes). */
enum ix_sasl_result {
	IX_SASL_DONE = 0,      /* authenticated: ix_sasl_user() says who */
	IX_SASL_CONTINUE = 1,  /* send the challenge (base64, may be empty) and wait for a response line */
	IX_SASL_CANCELLED = 2, /* the client sent "*" */
};

struct ix_sasl;

/* Initialises libsasl2 for the process once (later calls return 0 at once). app_name names log lines.
 * Cyrus is configured from memory only: mech_list PLAIN LOGIN, no auxprop plugin, no config file read, and
 * our check function wins over any pwcheck_method. Returns 0 or IX_EUNAVAIL with error_r. */
int ix_sasl_init(const char *app_name, struct buf *error_r);
/* Releases libsasl2 (at exit; every session must be destroyed first). */
void ix_sasl_done(void);

/* A server session for one connection. service: "smtp", "imap", "pop"; host: our host name. secure: the
 * connection is TLS or loopback; when false no plaintext mechanism is offered or accepted. check/ctx verify
 * passwords. Returns 0 or IX_EUNAVAIL with error_r. */
int ix_sasl_create(const char *service, const char *host, bool secure, ix_sasl_check_fn *check, void *ctx,
		   struct ix_sasl **s_r, struct buf *error_r);
void ix_sasl_destroy(struct ix_sasl **s);
/* Changes the security state (after STARTTLS). */
void ix_sasl_set_secure(struct ix_sasl *s, bool secure);
/* Called when a SCRAM exchange of user ends with a wrong proof (a failed login, for the caller's throttle). */
typedef void ix_sasl_failed_fn(void *ctx, const char *user);
/* Offers SCRAM, its verifiers looked up by fn(ctx, ...) (on the thread that runs the steps); failed (may be NULL)
 * hears of wrong proofs. */
void ix_sasl_set_scram(struct ix_sasl *s, ix_sasl_scram_fn *fn, ix_sasl_failed_fn *failed, void *ctx);
/* The connection's channel binding data once TLS is up (copied), which offers the -PLUS forms; NULL: none. */
void ix_sasl_set_channel(struct ix_sasl *s, const struct scram_cbind *cb);

/* Space-separated mechanisms to advertise now ("" when none): ix_sasl_offered for the session's state. Valid until
 * the next call on s. */
const char *ix_sasl_mechanisms(struct ix_sasl *s);
/* Lets s offer the sign-ins of v (NULL: none; must outlive s): see ix_sasl_offered. */
void ix_sasl_set_verifiers(struct ix_sasl *s, const struct ix_sasl_verifiers *v);
/* Appends the mechanisms to advertise on a connection that is secure (TLS or loopback) or not, strongest first, one
 * space before each: on a secure one the SCRAM mechanisms of scram, IX_SASL_MECHS and OAUTHBEARER XOAUTH2 (when v
 * has an issuer); GSSAPI (when v has a keytab; through Cyrus's plugin, which finds the keytab through KRB5_KTNAME)
 * on either: it sends no secret. What the capability lists (EHLO, CAPA, CAPABILITY) print before any exchange
 * started. */
void ix_sasl_offered(bool secure, enum ix_sasl_scram_offer scram, const struct ix_sasl_verifiers *v, struct buf *out);

/* Starts an exchange with mech (case-insensitive) and the optional initial response as sent (base64; "="
 * for an empty one; NULL when the client sent none). On CONTINUE the base64 challenge is appended to
 * challenge_r. Errors: IX_EINVAL (unknown mechanism, bad base64, malformed response), IX_EPERM (plaintext
 * mechanism on an insecure connection), IX_EAUTH (wrong credentials), IX_EBLOCKED (the check function said
 * so), IX_EUNAVAIL (check function or Cyrus trouble), IX_ELIMIT (too long, too many steps). error_r gets a phrase fit for a log line. */
int ix_sasl_start(struct ix_sasl *s, const char *mech, const char *initial, size_t initial_len, struct buf *challenge_r,
		  struct buf *error_r);
/* Feeds one response line (base64, without CRLF; "*" cancels). Returns as ix_sasl_start. */
int ix_sasl_step(struct ix_sasl *s, const char *response, size_t len, struct buf *challenge_r, struct buf *error_r);
/* Decides whether authcid, who proved their identity, may act for authzid (both as the client sent them; they differ):
 * 0 when allowed, else non-zero (refused like a wrong password). Called on the thread of ix_sasl_start/step. */
typedef int ix_sasl_authorize_fn(void *ctx, const char *authcid, const char *authzid);
/* Lets PLAIN's authorization identity (RFC 4616) name another user when fn allows it; without it (the default) an
 * authorization identity other than the authentication identity is refused. */
void ix_sasl_set_authorize(struct ix_sasl *s, ix_sasl_authorize_fn *fn, void *ctx);

/* The authenticated user after IX_SASL_DONE, else NULL: the authorization identity, the user the session acts as.
 * Valid until the next start or destroy. */
const char *ix_sasl_user(const struct ix_sasl *s);
/* After IX_SASL_DONE of an exchange whose authorization identity named someone else (ix_sasl_set_authorize): who
 * proved their identity (the authentication identity as sent); NULL otherwise. Valid as ix_sasl_user. */
const char *ix_sasl_actor(const struct ix_sasl *s);
/* After a SCRAM exchange's IX_SASL_DONE: the name of the app password whose verifier matched, "" for the user's
 * password; NULL after any other mechanism (its check function knows). Valid as ix_sasl_user. */
const char *ix_sasl_credential(const struct ix_sasl *s);

#endif
