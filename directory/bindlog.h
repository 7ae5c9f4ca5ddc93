/* bindlog.h - failed LDAP binds made visible: a thread follows slapd's cn=accesslog, where ppolicy's pwdFailureTime
 * write records every bind with a wrong password, and logs one line per failure, capped per second. */
#ifndef IX_BINDLOG_H
#define IX_BINDLOG_H

#include "common/buf.h"
#include "common/config.h"

/* Lines logged per wall-clock second at most; the failures past it are counted and said in one line when the
 * second is over, so a flood of guesses cannot flood the log. */
#define BINDLOG_MAX_PER_SECOND 20

/* The follower. Opaque; owned by whoever started it. */
struct bindlog;

/* Starts a thread (owned by the follower) that connects to this server's slapd over ldapi (cfg's data folder;
 * SASL EXTERNAL, the rootDN cn=accesslog also has) and runs a refreshAndPersist content-sync search on cn=accesslog
 * for the modifications that add pwdFailureTime (slapd's ppolicy writes one per failed simple bind to an existing
 * entry). Each one from the start on is logged (log_warn) as "failed LDAP bind as DN at TIME (UTC)"; binds to a DN
 * that does not exist leave no record and are not logged. It never blocks slapd (a reader of its access log) and
 * reconnects every second while slapd is down, resuming after the last record it saw. cfg is borrowed and must
 * outlive the follower. Returns IX_OK, or IX_EIO (the thread cannot start) with a message. */
int bindlog_start(const struct config *cfg, struct bindlog **bl_r, struct buf *error_r);
/* Stops the thread (within about a second) and frees everything; sets *bl to NULL. NULL is ignored. */
void bindlog_stop(struct bindlog **bl);

#endif
