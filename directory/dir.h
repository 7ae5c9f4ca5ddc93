/* dir.h - the directory client library: a live in-memory replica of the directory's recipients and configuration,
 * fed by an RFC 4533 content-sync session, with address resolution, list expansion and password checks. */
#ifndef IX_DIR_H
#define IX_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/scram.h"

/* Limits. Longer input is refused (IX_EINVAL or IX_ENOTFOUND as documented per call). */
#define DIR_ADDRESS_MAX 512              /* an address given to dir_resolve, in bytes (RFC 5321 paths are <= 256) */
#define DIR_LOGIN_MAX 256                /* a login given to dir_authenticate */
#define DIR_PASSWORD_MAX 1024            /* a password given to dir_authenticate */
#define DIR_DN_MAX 4096                  /* a DN given to dir_lookup_dn / dir_expand */
#define DIR_EXPAND_MAX_DEPTH 32          /* list nesting followed by dir_expand */
#define DIR_EXPAND_MAX_RECIPIENTS 200000 /* final recipients one dir_expand may return */
#define DIR_BIND_POOL_SIZE 4             /* LDAP connections dir_authenticate keeps for simple binds */

/* The replica. Opaque; thread-safe: every call below may be made from any thread at the same time, except
 * dir_destroy. */
struct dir;

/* Opens the replica: starts a background thread (owned by the library) that connects to ldapi_uri (an
 * ldapi:// URL with the socket path percent-encoded), binds with SASL EXTERNAL (slapd maps it to the rootDN),
 * and runs a refreshAndPersist content-sync session over suffix (the recipients, public folders, servers,
 * accepted domains, recipient policies and connectors). It reconnects with backoff (100 ms doubling to 1 s)
 * whenever the session breaks and resumes from the last sync cookie; after a slapd restart the full present
 * list that arrives is diffed so entries deleted meanwhile disappear.
 * Returns at once (the directory need not be up): IX_OK, or IX_EINVAL (bad URI or suffix) or IX_EIO (the
 * thread cannot start) with a message. Dynamic lists (ixMemberURL) are re-read within about a second after
 * recipients change (dynlist computes their members; the sync session alone would keep them stale).
 * Process-wide side effect: SIGPIPE is set to SIG_IGN if it was SIG_DFL (libldap writes to sockets slapd may
 * have closed; with the default action that kills the process). Call dir_wait_ready() before trusting answers. */
int dir_open(const char *ldapi_uri, const char *suffix, struct dir **dir_r, struct buf *error_r);
/* Stops the thread, closes every connection and frees everything; sets *dir to NULL. NULL is ignored.
 * All dir_recipient and dir_expansion values must have been released before. */
void dir_destroy(struct dir **dir);

/* Waits until the first refresh is complete (every entry present when the session started is loaded), or
 * timeout_msecs pass (-1: forever). Returns IX_OK or IX_EUNAVAIL (not ready in time). */
int dir_wait_ready(struct dir *dir, int timeout_msecs);

enum dir_type {
	DIR_TYPE_USER = 1, /* ixMailUser: a mailbox user */
	DIR_TYPE_CONTACT,  /* ixContact: mail goes to target_address */
	DIR_TYPE_LIST,     /* ixDistributionList */
	DIR_TYPE_FOLDER,   /* ixPublicFolder (mail-enabled when it has addresses) */
};
/* "user", "contact", "list", "folder" or "unknown". */
const char *dir_type_name(enum dir_type type);

/* A recipient as the replica held it when it was looked up: a refcounted snapshot. Every pointer points into
 * immutable memory kept alive by the snapshot until dir_recipient_release(); a later change in the directory
 * does not alter it (look it up again to see the change). String fields are NULL when the attribute is absent;
 * numbers are -1 when absent. DN-valued fields are the DNs as stored in the directory. */
struct dir_recipient {
	enum dir_type type;
	const char *dn;
	const char *login;        /* uid (users only) */
	const char *nickname;     /* ixNickname */
	const char *display_name; /* displayName, else cn */
	const char *given_name, *surname;
	const char *primary_address;  /* mail, else the SMTP: proxy address; NULL when it has none yet */
	const char *const *addresses; /* every SMTP address it owns (proxy addresses without prefix, and mail) */
	size_t address_count;
	const char *target_address;   /* contacts: ixTargetAddress, where their mail goes */
	const char *home_server_dn;   /* ixHomeServer */
	const char *home_server_host; /* ixHostName of that server when the replica knows it */
	const char *mailbox_guid;     /* 32 hex digits */
	bool hidden;                  /* ixHideFromAddressBook: hidden from the address book, still deliverable */
	long long quota_bytes, quota_messages, quota_warn_bytes;
	const char *forward_to; /* ixForwardTo (DN) */
	bool deliver_and_redirect;
	const char *const *accept_from; /* ixAcceptFrom (DNs) */
	size_t accept_from_count;
	const char *const *reject_from; /* ixRejectFrom (DNs) */
	size_t reject_from_count;
	bool require_authenticated_sender;
	long long max_receive_size;
	bool members_only;
	const char *const *send_as; /* ixSendAs (DNs) */
	size_t send_as_count;
	const char *const *send_on_behalf; /* ixSendOnBehalf (DNs) */
	size_t send_on_behalf_count;
	const char *const *full_access; /* users: ixFullAccess (DNs of the users with full access to the mailbox) */
	size_t full_access_count;
	const char *const *members; /* lists: member DNs, static and dynamic (as slapd's dynlist computes them
					  * from ixMemberURL; re-read within about a second of recipients changing) */
	size_t member_count;
	const char *member_url;  /* lists: ixMemberURL */
	const char *folder_path; /* public folders: ixFolderPath */
	/* private */
	void *entry_, *server_;
};

/* Resolves an address to the recipient that owns it: any of its proxy addresses (primary or secondary,
 * "SMTP:"/"smtp:" prefix not given) or its mail. The whole address is compared case-insensitively (ASCII),
 * so the local part is case-insensitive. Subaddressing: when "local+detail@domain" owns nothing, the address
 * "local@domain" is tried (the first '+' of the local part starts the detail). No memory is allocated.
 * Returns IX_OK (fill *r; release it with dir_recipient_release) or IX_ENOTFOUND (also for an empty or too
 * long address, or one without '@'); *r is zeroed on failure. */
int dir_resolve(struct dir *dir, const char *address, struct dir_recipient *r);
/* The same, by DN (any spelling slapd considers equal for our case-insensitive naming attributes). Only
 * recipients are found: a server or other configuration entry gives IX_ENOTFOUND. */
int dir_lookup_dn(struct dir *dir, const char *dn, struct dir_recipient *r);
/* The same, by a user's login (uid, case-insensitive). */
int dir_lookup_login(struct dir *dir, const char *login, struct dir_recipient *r);
/* Drops the snapshot held by r and zeroes it. A zeroed r is ignored. */
void dir_recipient_release(struct dir_recipient *r);

/* True when domain (no '@', case-insensitive) is one of the organisation's accepted domains. */
bool dir_is_local_domain(struct dir *dir, const char *domain);
/* The same, giving its ixDomainType ("authoritative", "internal-relay", "external-relay"; "authoritative" when
 * unset) copied into type_r (replaced). Returns IX_OK or IX_ENOTFOUND. */
int dir_domain_type(struct dir *dir, const char *domain, struct buf *type_r);

/* The DKIM selectors of an accepted domain (its ixDkimSelector values, "ALGORITHM:SELECTOR"), one a line, replacing
 * selectors_r's text ("" when it has none). Returns IX_OK or IX_ENOTFOUND (not one of our domains). */
int dir_domain_dkim(struct dir *dir, const char *domain, struct buf *selectors_r);

/* The unique final recipients of a list: nested lists are followed (a list met again is a loop and is cut),
 * each recipient appears once, hidden members are delivered, contacts stay as external targets (their
 * target_address), public folders are final. Dangling member DNs are skipped and counted. */
struct dir_expansion {
	struct dir_recipient *recipients; /* count snapshots, in first-met order (depth first, member order) */
	size_t count;
	size_t lists_visited; /* lists expanded, the top one included */
	size_t loops_cut;     /* times a list already on the path or already expanded was met again */
	size_t unresolved;    /* member DNs the replica does not know */
};
/* Expands the list named by address (as dir_resolve) or by DN (when it contains '=' and no '@'). A recipient
 * that is not a list expands to itself. Returns IX_OK (release with dir_expansion_free), IX_ENOTFOUND, or
 * IX_ELIMIT (nesting deeper than DIR_EXPAND_MAX_DEPTH or more than DIR_EXPAND_MAX_RECIPIENTS) with a message.
 * The expansion is computed on one consistent state of the replica. */
int dir_expand(struct dir *dir, const char *list, struct dir_expansion *exp_r, struct buf *error_r);
/* Releases every snapshot and the array; leaves exp zeroed. */
void dir_expansion_free(struct dir_expansion *exp);

/* A server of the organisation (ou=Servers). Ports are 0 when not set. */
struct dir_server {
	char *dn, *name, *host; /* name is cn, host is ixHostName */
	unsigned ldap_port, smtp_port, submission_port, submissions_port, imap_port, imaps_port, pop3_port, pop3s_port,
		sieve_port, metrics_port;
};
/* Copies out every server the replica knows, sorted by name. The caller owns the array: free it with
 * dir_servers_free. Returns IX_OK (count may be 0). */
int dir_servers(struct dir *dir, struct dir_server **servers_r, size_t *count_r);
void dir_servers_free(struct dir_server **servers, size_t count);
/* Servers publish their TLS certificate in their entry (userCertificate;binary). DIR_CERT_SHA256_HEX is the
 * length of a fingerprint: the lower-case hex SHA-256 of a certificate's DER. */
#define DIR_CERT_SHA256_HEX 64
/* Writes the fingerprint of der (len bytes) into hex (DIR_CERT_SHA256_HEX + 1 bytes, NUL-terminated). */
void dir_cert_fingerprint(const void *der, size_t len, char *hex);
/* Is fingerprint (as dir_cert_fingerprint writes it, any case) the certificate of a server of the organisation?
 * Copies that server's DN into server_dn_r (when not NULL). Returns IX_OK or IX_ENOTFOUND. */
int dir_server_by_cert(struct dir *dir, const char *fingerprint, struct buf *server_dn_r);
/* The effective settings (common/settings.h: limits and timeouts) of the server whose entry is server_dn, from
 * its ixServerSetting values; defaults for anything unset, and all defaults when the server is unknown. Cheap
 * (a hash lookup and a few parses): services call it per session so `interchange server set` applies at once.
 * Returns IX_OK, or IX_ENOTFOUND (defaults filled in). */
struct settings;
int dir_server_settings(struct dir *dir, const char *server_dn, struct settings *settings_r);
/* Does the server whose entry is server_dn take unauthenticated mail with a sender in one of the organisation's
 * domains from client (an IP address as text)? Only when one of its ixAllowSenderFrom values (an address or a CIDR
 * range, for scanners and other devices that cannot log in) covers client. Read live from the replica: a change
 * applies to the next MAIL. False for an unknown server. */
bool dir_server_allows_sender_from(struct dir *dir, const char *server_dn, const char *client);

/* A connector (ou=Connectors): mail for its address spaces goes to its smart host. */
struct dir_connector {
	char *dn, *name, *smart_host; /* smart_host is "host" or "host:port"; "" when unset */
	char **address_spaces;        /* domain patterns: "example.org", "*.example.org" or "*" */
	size_t address_space_count;
	unsigned cost; /* ixConnectorCost; 0 when unset */
};
/* Copies out every connector, sorted by name. Free with dir_connectors_free. Returns IX_OK. */
int dir_connectors(struct dir *dir, struct dir_connector **connectors_r, size_t *count_r);
void dir_connectors_free(struct dir_connector **connectors, size_t count);
/* Picks the connector for a domain (no '@', case-insensitive): among connectors with a matching address space,
 * the most specific match wins ("example.org" exactly, then "*.parent" patterns for subdomains of parent, longer
 * parents first, then "*"), then the lowest cost, then the name. Copies it into *connector_r (free with
 * dir_connector_free). Returns IX_OK or IX_ENOTFOUND (no connector applies: deliver by MX). */
int dir_route_domain(struct dir *dir, const char *domain, struct dir_connector *connector_r);
void dir_connector_free(struct dir_connector *connector);

/* Sign-in configuration (docs/sign-in.md). An OAuth issuer (interchange oauth add; an ixOAuthIssuer entry under
 * ou=OAuth Issuers,ou=Configuration): the iss of its tokens, its keys (a JWKS file or an https URL), the audience its
 * tokens must name, the claim naming the user (NULL: the default, email). */
struct dir_oauth_issuer {
	char *issuer, *keys, *audience, *claim;
};
/* Copies out every issuer, sorted by issuer. Free with dir_oauth_issuers_free. Returns IX_OK (count may be 0). */
int dir_oauth_issuers(struct dir *dir, struct dir_oauth_issuer **issuers_r, size_t *count_r);
void dir_oauth_issuers_free(struct dir_oauth_issuer **issuers, size_t count);
/* Whether any issuer is configured (cheap: for capability lists). */
bool dir_has_oauth_issuer(struct dir *dir);
/* The organisation's Kerberos realm (ixKerberosRealm of cn=Kerberos,ou=Configuration; interchange kerberos realm)
 * copied into realm_r (replaced). Returns IX_OK or IX_ENOTFOUND (none set). */
/* Where the organisation's global Sieve scripts live (under the suffix): entries of class ixSieveGlobal, cn the
 * name, ixSieveScript the text; the directory replicates them to every server (docs/sieve.md). */
#define DIR_SIEVE_GLOBAL_OU "ou=Sieve Scripts,ou=Configuration"
#define DIR_SIEVE_GLOBAL_NAME_MAX 64
/* True for a name a global script may have: 1 to DIR_SIEVE_GLOBAL_NAME_MAX letters, digits, '.', '-' and '_' (so
 * it is its own RDN value, and never a path). */
bool dir_sieve_global_name_valid(const char *name);
/* The text of the global Sieve script name from the replica: IX_OK with *text_r malloc'ed (NUL-terminated) and its
 * length in *len_r, or IX_ENOTFOUND. */
int dir_sieve_global(struct dir *dir, const char *name, char **text_r, size_t *len_r);

int dir_kerberos_realm(struct dir *dir, struct buf *realm_r);
/* The user whose ixUserPrincipalName is principal (case-insensitive), as dir_lookup_login. */
int dir_lookup_principal(struct dir *dir, const char *principal, struct dir_recipient *r);

/* Verifies a user's password by a simple bind as that user. login is a uid or any of the user's addresses,
 * resolved to the DN through the replica. The password is never copied; it goes to slapd only. Binds use a
 * pool of DIR_BIND_POOL_SIZE connections to the same ldapi socket (callers wait for a free one).
 * The bind asks for slapd's password policy control. Returns IX_OK; IX_EAUTH (unknown login, not a user, empty or
 * too long password, wrong password); IX_EBLOCKED (slapd's ppolicy has locked the account after too many failed
 * binds: auth.lockout_failures); or IX_EUNAVAIL (the directory does not answer, or the replica is not ready), with a message in error_r (which
 * never contains the password). */
int dir_authenticate(struct dir *dir, const char *login, const char *password, struct buf *error_r);
/* dir_authenticate for the mail services (IMAP, POP3, SMTP): when the password has an app password's shape
 * (secrets_app_password_shaped), the user's app passwords are tried first (their SCRAM-SHA-256 verifiers: one
 * PBKDF2 at the user's iteration count; no bind, so no failed bind counts against the account), then the password
 * by a bind. *app_r: the matching app password's name (free it), or NULL when the
 * password matched or nothing did. Returns as dir_authenticate. */
int dir_authenticate_mail(struct dir *dir, const char *login, const char *password, char **app_r, struct buf *error_r);
/* The SCRAM verifiers of login (a uid or any address) for srv's hash, added to srv (scram_server_add_verifier):
 * the password's while they were made from the current userPassword (docs/directory.md, "SCRAM and app
 * passwords"), then the app passwords'; each added one's name goes to names_r followed by a NUL ("" for the
 * password). Read over the bind pool as our own identity. Returns IX_OK, IX_ENOTFOUND (unknown login, not a user,
 * no verifier), IX_EBLOCKED (slapd's lockout holds: SCRAM respects it though its failures are not binds) or
 * IX_EUNAVAIL with error_r. */
int dir_scram_verifiers(struct dir *dir, const char *login, struct scram_server *srv, struct buf *names_r,
			struct buf *error_r);
/* Verifies the organisation administrator's password (cn=admin,<suffix>) by a simple bind, as above. For the
 * server-to-server channel of a mailbox move. */
int dir_authenticate_admin(struct dir *dir, const char *password, struct buf *error_r);

/* Change hook: called on the replica's thread after each change is visible to readers (never with a lock
 * held, so it may call dir_resolve and friends; it must not call dir_destroy and should return quickly).
 * kind is what happened to the entry with that DN; type is 0 for configuration entries (servers, domains,
 * policies, connectors). Entries loaded by a refresh are reported as DIR_CHANGE_ADD (or MODIFY when already
 * known). */
enum dir_change_kind { DIR_CHANGE_ADD = 1, DIR_CHANGE_MODIFY, DIR_CHANGE_DELETE };
typedef void dir_change_fn(void *ctx, enum dir_change_kind kind, enum dir_type type, const char *dn);
/* Sets (or with fn NULL removes) the hook. Changes applied before the call are not replayed: use
 * dir_foreach_recipient after dir_wait_ready for the initial state. When it returns, the previous hook is
 * neither running nor called again (so its context may be freed), except when called from the hook itself. */
void dir_set_change_hook(struct dir *dir, dir_change_fn *fn, void *ctx);

/* Calls fn for every recipient in one consistent state of the replica (outside any lock); r is valid during the
 * call only (it is released afterwards; keep what you need). Returns the number of recipients visited. */
typedef void dir_recipient_fn(void *ctx, const struct dir_recipient *r);
size_t dir_foreach_recipient(struct dir *dir, dir_recipient_fn *fn, void *ctx);

/* Status for monitoring (replica lag). */
struct dir_status {
	bool ready;                 /* first refresh done */
	bool connected;             /* the sync session is up (in refresh or persist) */
	unsigned long long changes; /* entries added, changed or deleted since dir_open */
	unsigned long long
		last_change_usec;      /* wall clock (microseconds since the epoch) of the last applied change; 0 */
	unsigned long long reconnects; /* sessions started after the first */
	size_t entries;                /* entries held */
	size_t recipients;             /* of which recipients */
};
void dir_status(struct dir *dir, struct dir_status *status_r);

#endif
