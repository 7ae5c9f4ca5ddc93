/* orphan.h - the processes of an earlier run of one data folder that outlived its attendant (killed with SIGKILL, by
 * the OOM killer): found by pid file and by the data folder each names on its command line, never by name alone. */
#ifndef IX_ORPHAN_H
#define IX_ORPHAN_H

#include "common/config.h"

#include <stddef.h>
#include <sys/types.h>

/* At most this many orphans are reported and stopped at once (slapd and one of each service, with room). */
#define ORPHAN_MAX 16
/* How long orphans get after SIGTERM before SIGKILL, and after SIGKILL before orphan_stop gives up on them. */
#define ORPHAN_STOP_GRACE_MS 10000
#define ORPHAN_KILL_WAIT_MS 5000

struct orphan {
	pid_t pid;
	char name[32]; /* "slapd" or the service's name (smtpd, mta...) */
};

/* Fills out (up to max) with the live processes of this data folder other than an attendant: the slapd named by
 * run/slapd.pid whose command line (/proc/PID/cmdline) has -F DATA/directory/slapd.d, and every service daemon
 * (a program of attendant_services beside the interchange binary, /proc/PID/exe) run with --data DATA. Returns how
 * many. */
size_t orphan_find(const struct config *cfg, struct orphan *out, size_t max);
/* Stops them cleanly: SIGTERM (services first, slapd last), SIGKILL after ORPHAN_STOP_GRACE_MS; returns when each
 * is gone, or 0 after ORPHAN_KILL_WAIT_MS more with the number still alive. */
size_t orphan_stop(const struct orphan *orphans, size_t n);
/* The pid in the data folder's file rel (run/slapd.pid...), or 0. */
long orphan_read_pid(const struct config *cfg, const char *rel);
/* True while pid exists and is not a zombie (an orphan's zombie can linger a moment: docs/slapd-facts.md, "Zombies
 * linger"). */
int orphan_alive(pid_t pid);
/* True when pid (0: none) is gone, a zombie, or has SIGKILL pending (killed, not yet exited): an attendant in that
 * state holds its lock only until it has exited, or a child it was forking holds it until it runs its program. */
int orphan_exiting(pid_t pid);

#endif
