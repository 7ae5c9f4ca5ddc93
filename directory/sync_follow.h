/* sync_follow.h - live changes from sync sources: the attendant keeps an RFC 4533 refreshAndPersist session with
 * each source this server runs, each in a thread of its own, and applies what arrives as it arrives (docs/sync.md). */
#ifndef IX_SYNC_FOLLOW_H
#define IX_SYNC_FOLLOW_H

#include <stddef.h>
#include <time.h>
#include "common/buf.h"
#include "common/config.h"
#include "directory/provision.h"

/* How often the attendant looks for sources added or deleted (sync_followers_update). */
#define SYNC_FOLLOW_CHECK_MS 2000
/* Reconnection waits double from 1 s up to this. */
#define SYNC_FOLLOW_BACKOFF_MAX_S 30
/* A wait for the source's next message; also how soon a follower notices it is asked to stop. */
#define SYNC_FOLLOW_POLL_MS 500

/* What a follower is doing, for status. */
struct sync_follow_status {
	char name[64];
	char state[32];             /* "connecting", "refreshing", "live", "reconnecting" */
	time_t since;               /* of the state */
	time_t last_applied;        /* when a change was last applied; 0: none yet */
	unsigned long long changes; /* changes applied since the attendant started */
	unsigned reconnects;
	char last_error[256]; /* the last failure, "" when none since the last refresh */
	time_t last_run;      /* when the whole source was last read (a refresh from nothing); 0: not by this run */
	size_t users, disabled, lists, contacts, conflicts, errors; /* as the source entry last said */
	/* pass-through sign-in (--auth passthrough; sync_relay.h), since the attendant started: 0 when the source
	 * has no relay here, then the passwords the source took, those it refused, those signed in by the cache while
	 * it could not be reached and those refused then, and the users with a hash kept */
	int passthrough;
	unsigned long long pt_accepted, pt_refused, pt_cached, pt_unreachable;
	size_t pt_entries;
};

/* The followers of one attendant, and the thread that keeps them: every SYNC_FOLLOW_CHECK_MS it starts a follower
 * for each source run by this server (ixSyncServer) that has none and stops those of sources deleted or replaced (a
 * new entry of the same name); every expire_interval seconds it removes the users deleted at their source past the
 * grace days (sync_expire). Nothing of it runs on the caller's thread, so a directory that does not answer never
 * holds the caller up. */
struct sync_followers;

/* Starts the keeper (cfg is borrowed and outlives *set_r). */
void sync_followers_start(const struct config *cfg, unsigned expire_interval, struct sync_followers **set_r);
/* Stops the keeper and every follower (each within SYNC_FOLLOW_POLL_MS, or when the change it applies is done) and
 * frees *set. */
void sync_followers_stop(struct sync_followers **set);
/* Users removed by the keeper's sync_expire since it started. */
size_t sync_followers_removed(struct sync_followers *set);
/* Copies the status of up to max followers into out; returns how many. */
size_t sync_followers_status(struct sync_followers *set, struct sync_follow_status *out, size_t max);

#endif
