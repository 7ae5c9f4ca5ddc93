/* repl_follow.h - the attendant keeps slapd's replication following the server entries of the directory: it notes
 * a change of one from the replica's hook and runs the sync (and, once, the data-folder upgrades) on its loop. */
#ifndef IX_REPL_FOLLOW_H
#define IX_REPL_FOLLOW_H

#include <stdatomic.h>

#include "common/config.h"

/* Owned by the attendant (one per data folder it runs); cfg is borrowed and outlives it. */
struct repl_follow {
	const struct config *cfg;
	atomic_int servers_changed; /* set from the replica's thread, taken on the loop */
	int upgraded;               /* the schema check succeeded: the data-folder upgrades are not run again */
	char last_error[256];       /* the last sync failure logged, so a repeated one is said once */
};

/* Sets f up for cfg: nothing noted, upgrades still to run. */
void repl_follow_init(struct repl_follow *f, const struct config *cfg);
/* From the replica's change hook (any thread): returns 1 when dn is a server entry (repl_server_dn), remembering
 * that replication may need to follow. */
int repl_follow_note(struct repl_follow *f, const char *dn);
/* On the attendant's loop: with force, or after a noted change, runs repl_sync_config and logs the outcome (a
 * failure once until it changes or clears). Until the schema check succeeds, each call first runs the in-place
 * upgrades of directory/upgrade.h (schema, TLS and administrator entry, access log), logging what they did. */
void repl_follow_sync(struct repl_follow *f, int force);

#endif
