/* sync.h - sync sources: the organisation's existing directory (OpenLDAP, 389-DS, FreeIPA) as the source of users
 * and groups, each kept as an entry under ou=Directory Sync,ou=Configuration (class ixDirectorySource), and the
 * reconcile that makes our recipients match it (docs/sync.md). Used by `interchange sync`. */
#ifndef IX_SYNC_H
#define IX_SYNC_H

#include <stddef.h>
#include <time.h>
#include "common/buf.h"
#include "common/config.h"
#include "directory/provision.h"

#define SYNC_MAX_NAME PROV_MAX_LOGIN /* a source name has the form of a login */
/* Conflicts and errors kept in the source entry; past this many, one more line says how many were left out. */
#define SYNC_MAX_PROBLEMS 200
/* Days a user deleted at the source stays disabled before its entry is removed, unless --grace-days says. */
#define SYNC_GRACE_DAYS_DEFAULT 30
#define SYNC_GRACE_DAYS_MAX 3650
/* How often a source without RFC 4533 (type ad) is asked for its changes, unless --poll-seconds says. */
#define SYNC_POLL_SECONDS_DEFAULT 30
#define SYNC_POLL_SECONDS_MAX 86400

/* A source as `sync add` gives it; NULL fields take the type's defaults. */
struct sync_source {
	const char *name, *type, *uri, *bind_dn, *password, *base, *filter, *groups_base, *ca_file;
	const char *grace_days;   /* NULL: SYNC_GRACE_DAYS_DEFAULT */
	const char *poll_seconds; /* NULL: SYNC_POLL_SECONDS_DEFAULT */
	const char *auth;         /* "local" (NULL) or "passthrough" */
	const char *const *maps;  /* OURATTR=THEIRATTR */
	size_t map_count;
};

/* Adds the source: its entry in the directory (run by this server) and its password in DATA/sync/NAME.secret (0600,
 * the service user's, never in the directory); --ca is copied beside it. Checks the name, the type and the maps;
 * does not contact the source. IX_EEXIST when a source of that name exists. */
int sync_source_add(struct prov *p, const struct config *cfg, const struct sync_source *s, struct buf *error_r);
/* A table of every source (name, type, state, counts, URI) appended to out. */
int sync_source_list(struct prov *p, const struct config *cfg, struct buf *out, struct buf *error_r);
/* One source: its settings, state, last change seen, counts, and each conflict and error of the last run. */
int sync_source_show(struct prov *p, const struct config *cfg, const char *name, struct buf *out, struct buf *error_r);
/* The settings and state of source name (NULL: of every source), never a password (it is not in the directory),
 * handed to fn one fact at a time, a source's facts together: key "type", "uri", "bind_dn", "base", "filter",
 * "groups_base", "server", "grace_days", "poll_seconds", "auth", "state", "last_run", "last_change" with one value
 * (what an absent one means, as `sync show` says it), "maps" (OURATTR=THEIRATTR), "counts" (users=N, disabled=N,
 * lists=N, contacts=N, errors=N, conflicts=N) and "problems" (the last run's conflicts and errors) with every value;
 * values end with NULL and live during the call. IX_ENOTFOUND with a sentence when name is no source. */
typedef void sync_fact_fn(void *ctx, const char *source, const char *key, const char *const *values);
int sync_source_facts(struct prov *p, const struct config *cfg, const char *name, sync_fact_fn *fn, void *ctx,
		      struct buf *error_r);
/* Deletes the source and its password. keep: its recipients stay as local ones (no longer synced); otherwise its
 * users are disabled and hidden as when deleted at the source (their mailboxes stay) and its lists deleted. */
int sync_source_del(struct prov *p, const struct config *cfg, const char *name, int keep, struct buf *error_r);

/* What a reconcile did and found. */
struct sync_result {
	size_t users, disabled, lists, contacts, errors, conflicts; /* the state after the run */
	size_t added, changed, renamed, deleted;                    /* the changes it made */
};
/* Called now and then during a run: phase ("users", "lists"), entries done of total. */
typedef void sync_progress_fn(void *ctx, const char *phase, size_t done, size_t total);
/* A full reconcile of source name now (this server must be the one that runs it): reads every user and group of the
 * source and adds, changes, renames, disables (deleted users) and deletes (deleted groups) our recipients to match.
 * Conflicts (an address or login another recipient holds) are reported in the source entry, never overwritten.
 * IX_OK once the source was read whole (conflicts and per-entry errors do not fail the run); IX_EUNAVAIL / IX_EAUTH
 * when the source cannot be read, and then nothing is disabled or deleted. */
int sync_run(struct prov *p, const struct config *cfg, const char *name, sync_progress_fn *progress, void *ctx,
	     struct sync_result *r, struct buf *error_r);

/* Removes the entries of users deleted at the source (ixSyncDeleted) longer than their source's grace days before
 * now, for every source this server runs; their mailboxes are then the maintenance's, as any without an owner.
 * *removed_r: how many. IX_OK, or the first failure (the others are still tried). */
int sync_expire(struct prov *p, const struct config *cfg, time_t now, size_t *removed_r, struct buf *error_r);

#endif
