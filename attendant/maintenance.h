/* maintenance.h - the attendant's scheduled housekeeping: purge of deleted items past retention (hourly),
 * quota warning messages to users over their warning level (hourly, at most one a day each), and the store
 * consistency check in the quiet hour (daily). Each run is logged and its outcome kept for status. */
#ifndef IX_MAINTENANCE_H
#define IX_MAINTENANCE_H

#include <stdbool.h>
#include <time.h>
#include "common/buf.h"
#include "common/config.h"

struct dir;

#define MAINT_TICK_MS 60000
#define MAINT_PURGE_INTERVAL_S 3600
#define MAINT_QUOTA_INTERVAL_S 3600
#define MAINT_QUOTA_REPEAT_S 86400
#define MAINT_MAX_WARNED 100000
#define MAINT_ORPHAN_INTERVAL_S 86400
/* Mailboxes no recipient owns, with when each was first seen so (GUID TIME lines), under the data folder. */
#define MAINT_ORPHANS_FILE "store/orphans"

struct maintenance {
	time_t last_purge, last_quota, last_check;
	unsigned long long purged_total; /* retained messages dropped since start */
	unsigned quota_warnings_sent;
	unsigned long long quota_warned_now; /* mailboxes past their warning level at the last check */
	time_t last_orphans;
	unsigned orphans_removed;
	int check_problems; /* -1: no check yet */
	char last_error[160];
	/* private: when each warned mailbox was last told (GUID -> time) */
	char (*warned_guid)[33];
	time_t *warned_at;
	size_t warned_count;
};

void maintenance_init(struct maintenance *m);
void maintenance_free(struct maintenance *m);
/* Runs whatever is due at now. dir (the attendant's replica) maps mailboxes to users; may be NULL. */
void maintenance_tick(struct maintenance *m, const struct config *cfg, struct dir *dir, time_t now);
/* Forces every task now (interchange maintenance run, and tests). */
void maintenance_run_all(struct maintenance *m, const struct config *cfg, struct dir *dir, time_t now);

/* An import into a mailbox (interchange import) holds an exclusive lock (flock) on this file of the data folder, named
 * by the mailbox GUID, while it runs: the quota warning waits until it ends (an import that dies lets go). */
#define MAINT_IMPORT_LOCK "import/%s.running"
/* Whether an import into the mailbox guid is running now. */
bool maintenance_import_running(const struct config *cfg, const char *guid);

/* Writes the quota warning message for one user into out (pure; for tests). */
void maintenance_quota_message(const char *domain, const char *to_name, const char *to_addr, unsigned long long used,
			       unsigned long long limit, time_t now, struct buf *out);

#endif
