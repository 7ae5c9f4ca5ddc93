/* sync_int.h - what the files of sync sources share: a source's settings as read from its entry, and its
 * connection to the source. Not for use outside directory/sync_*.c. */
#ifndef IX_SYNC_INT_H
#define IX_SYNC_INT_H

#include "directory/sync.h"
#include "directory/sync_relay.h"

#include <pthread.h>

/* Where sources are kept, below the suffix. */
#define SYNC_SOURCES_OU "ou=Directory Sync,ou=Configuration"

/* Our attributes a source's entries fill, with the attribute of the source each one is read from. */
enum sync_attr {
	SA_LOGIN,
	SA_GIVEN,
	SA_SURNAME,
	SA_CN,
	SA_DISPLAY,
	SA_MAIL,
	SA_ADDRESSES,
	SA_ANCHOR,
	SA_TITLE,
	SA_PHONE,
	SA_PRINCIPAL, /* users: the Kerberos principal they sign in with (docs/sign-in.md) */
	SA_COUNT
};
/* Our name of each (what --map takes on the left). */
extern const char *const sync_attr_names[SA_COUNT];

struct sync_conf {
	char *dn, *name, *type, *uri, *bind_dn, *base, *filter, *groups_base, *server_dn;
	char *their[SA_COUNT]; /* NULL: not read */
	long grace_days, poll_seconds;
};

/* The DN of source name's entry (a new string). */
char *sync_source_dn(const struct config *cfg, const char *name);
/* Reads source name's entry into c (free with sync_conf_free). IX_ENOTFOUND with a sentence when there is none. */
int sync_conf_load(struct prov *p, const struct config *cfg, const char *name, struct sync_conf *c,
		   struct buf *error_r);
void sync_conf_free(struct sync_conf *c);
/* Connects and binds to the source with the password this server keeps for it (StartTLS and the source's
 * certificate checked unless the URI is local). */
int sync_connect(const struct config *cfg, const struct sync_conf *c, LDAP **ld_r, struct buf *error_r);
/* Removes the password, the CA certificates, the refresh cookie and the pass-through cache this server keeps for
 * source name. */
void sync_secret_remove(const struct config *cfg, const char *name);
/* A time, and the present time, as an LDAP generalized time (YYYYMMDDHHMMSSZ). */
void sync_time(time_t t, char out[16]);
void sync_now(char out[16]);
/* The entries (cn, entryUUID, ixSyncGraceDays, ixSyncAuth, ixSyncUri) of the sources this server runs; *res_r
 * NULL when there are none. */
int sync_sources_here(struct prov *p, const struct config *cfg, LDAPMessage **res_r, struct buf *error_r);
/* The path of a file this server keeps for source name: DATA/sync/NAME followed by suffix (a new string). */
char *sync_file_path(const struct config *cfg, const char *name, const char *suffix);

/* The file of a pass-through source's cache of successes: DATA/sync/NAME followed by this (sync_relay.h). */
#define SYNC_CACHE_SUFFIX ".passthrough"

/* Pass-through sign-in as the followers' keeper keeps it: whether slapd's remoteauth overlay is known to sign
 * anyone in (-1 at first: not looked at; then 1 or 0, and cn=config is not read again while 0 and no source asks
 * for it), and the relays of the pass-through sources (the array under lock: sync_auth_stats reads it from
 * another thread). */
struct sync_auth {
	int active;
	pthread_mutex_t lock;
	struct sync_relay **relays;
	size_t n;
};
#define SYNC_AUTH_INIT                                          \
	{                                                       \
		.active = -1, .lock = PTHREAD_MUTEX_INITIALIZER \
	}

/* Sets slapd's remoteauth overlay on our directory (sync_auth.c) from the sources with --auth passthrough that this
 * server runs: a relay for each (started, replaced when its URI or CA file changed, stopped when it is gone; its cache
 * lifetime from sync.passthrough_cache_seconds), and a mapping from the source's entry (a synced user's
 * ixSyncedFrom) to the relay, so binds of its users without a password of their own go to their own source as their
 * DN there (ixSyncRemoteDn). With none, every bind is checked here. Adds the overlay the first time it is needed. */
int sync_auth_apply(struct prov *p, const struct config *cfg, struct sync_auth *a, struct buf *error_r);
/* The figures of the relay of source name in *st_r; 1, or 0 when it has none (not a pass-through source). */
int sync_auth_stats(struct sync_auth *a, const char *name, struct sync_relay_stats *st_r);
/* Stops every relay of a, keeping their cache files for the next start (the overlay's settings stay: its users
 * cannot sign in until the relays are back). */
void sync_auth_stop(struct sync_auth *a);

/* ---- applying what the source says (sync_reconcile.c), for the full run and for live changes ---- */

/* A session of changes to our recipients from one source: our connection, the source's settings and connection. */
struct sync_apply;
/* What is gone from the source when a refresh of all it holds ends. */
enum sync_gone {
	SYNC_GONE_UNSEEN,      /* the whole source was read: whatever was not seen is gone */
	SYNC_GONE_NOT_PRESENT, /* entries changed were read, the others named present: whatever is neither is gone */
	SYNC_GONE_LISTED,      /* the source lists its deletions (sync_apply_delete): nothing else is gone */
};
/* Loads source name's settings and connects to it (sync_connect); a failure is also set as the source's state.
 * p is borrowed and outlives the session. Free with sync_apply_close. */
int sync_apply_open(struct prov *p, const struct config *cfg, const char *name, struct sync_apply **a_r,
		    struct buf *error_r);
void sync_apply_close(struct sync_apply **a);
/* The connection to the source (owned by the session). */
LDAP *sync_apply_source(struct sync_apply *a);
/* Whether the anchor is the source's entryUUID (which RFC 4533 messages carry): only then can the source's lists
 * of deleted or present entries be matched to ours. */
int sync_apply_uuid_anchor(const struct sync_apply *a);
/* One subtree search covering the users and the groups: the nearest entry above both bases, a filter matching
 * either, the attributes to read (new strings, the array freed with ldapu_values_free). IX_EINVAL when the bases
 * have nothing in common. */
int sync_apply_scope(struct sync_apply *a, char **base_r, char **filter_r, char ***attrs_r, struct buf *error_r);
/* A refresh: an entry of the source (kept until sync_apply_refresh_done; one outside the bases is applied as
 * deleted at once), an entryUUID said to be present and unchanged, and the end, which applies what was kept and
 * acts on what is gone per mode. uuid is the entryUUID in its string form, NULL when unknown. */
void sync_apply_collect(struct sync_apply *a, LDAPMessage *e, const char *uuid);
void sync_apply_present(struct sync_apply *a, const char *uuid);
int sync_apply_refresh_done(struct sync_apply *a, enum sync_gone mode, struct buf *error_r);
/* A change applied now: an entry added or changed at the source (one outside the bases counts as deleted; uuid
 * its entryUUID when known), an entry deleted (found by anchor, our form of its anchor, else by dn). */
void sync_apply_change(struct sync_apply *a, LDAPMessage *e, const char *uuid);
void sync_apply_delete(struct sync_apply *a, const char *anchor, const char *dn);
/* A whole read of the source (what sync_run does): users, contacts and groups read, applied, what is not there
 * gone; the state written. */
int sync_apply_read_all(struct sync_apply *a, struct buf *error_r);
/* Whether the source is asked for its changes (type ad: uSNChanged and tombstones) instead of an RFC 4533 session. */
int sync_apply_polls(const struct sync_apply *a);
/* type ad: applies what changed after uSNChanged usn (entries changed, and tombstones, isDeleted, searched with
 * the show-deleted control, as deletions). IX_OK when both searches went through. */
int sync_apply_changes_since(struct sync_apply *a, unsigned long long usn, struct buf *error_r);
/* type ad: the seconds between two polls (--poll-seconds). */
long sync_apply_poll_seconds(const struct sync_apply *a);
/* type ad: the highest uSNChanged seen so far by this session. */
unsigned long long sync_apply_usn(const struct sync_apply *a);
/* How many changes were applied since the last sync_apply_finish. */
int sync_apply_pending(const struct sync_apply *a);
/* Writes state, counts and problems to the source entry: whole, after a refresh of everything (the problems
 * replaced, the time of the last run set); else after live changes (their problems added). */
void sync_apply_finish(struct sync_apply *a, const char *state, int whole);
/* What the session did so far (added, changed, renamed, deleted since it opened; the counts of the last finish). */
const struct sync_result *sync_apply_result(const struct sync_apply *a);

#endif
