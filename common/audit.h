/* audit.h - the audit log of a data folder (DATA/log/audit.log): one line for every change made to the system, by
 * whom, through which door (the command line or the REST API), and how it ended. Written by `interchange` and
 * ix-httpd, read by `interchange audit` and GET /api/v1/audit. */
#ifndef IX_AUDIT_H
#define IX_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/buf.h"

/* The file, under the data folder. */
#define AUDIT_FILE "log/audit.log"
/* Most bytes of one field kept (a longer one is cut). */
#define AUDIT_FIELD_MAX 512
/* Most bytes of each file read by audit_read (the last ones). */
#define AUDIT_READ_MAX (16 << 20)
/* Rotation (by the attendant, every ATTENDANT_LOG_CHECK_MS): past AUDIT_ROTATE_BYTES the log becomes audit.log.1,
 * the older ones shift up to audit.log.AUDIT_KEEP and the oldest beyond is removed: at least 10 files of 16 MiB, some
 * 300,000 changes, are kept (the services' logs keep 5), and audit_read reads them all. */
#define AUDIT_ROTATE_BYTES (16 << 20)
#define AUDIT_KEEP 10

/* One change. */
struct audit_entry {
	time_t when;
	const char *who;    /* the identity: a login ("admin", "alice") or "admin (Unix user root)" */
	const char *via;    /* "cli" or "api" */
	const char *action; /* "user add", "POST /api/v1/users" */
	const char *target; /* what it changed ("bob"; "" when the action says it all) */
	const char *result; /* "ok", or the error as a person reads it */
};

/* Appends e (when 0: now) as one line "TIME<TAB>WHO<TAB>VIA<TAB>ACTION<TAB>TARGET<TAB>RESULT" (TIME in UTC as
 * YYYY-MM-DDTHH:MM:SSZ; tabs and line breaks in a field become spaces) to data_dir's AUDIT_FILE with one write of an
 * O_APPEND file, so writers in several processes never mix their lines. Run as root, a new file gets the owner of
 * the log folder. Returns IX_OK or IX_EIO (the log folder is missing or not writable) with a sentence. */
int audit_record(const char *data_dir, const struct audit_entry *e, struct buf *error_r);

/* Rotates data_dir's audit log when it is larger than max_bytes, keeping keep older files (see AUDIT_ROTATE_BYTES).
 * Returns true when it rotated. Writers open the file for each change, so the next one makes a new log. */
bool audit_rotate(const char *data_dir, long long max_bytes, int keep);

/* Calls fn for each recorded change at or after since (0: all) made by who (NULL: anyone; compared without case with
 * the identity's first word), oldest first, across the rotated files (audit.log.AUDIT_KEEP ... .1, then audit.log;
 * a rotated file last written before since is not read); fn returns false to stop. Lines that do not parse are
 * skipped. Returns IX_OK (also when nothing was recorded yet) or IX_EIO with a sentence. */
int audit_read(const char *data_dir, time_t since, const char *who, bool (*fn)(const struct audit_entry *e, void *ctx),
	       void *ctx, struct buf *error_r);

/* Parses DATE as YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z] (UTC). Returns true with *when_r. */
bool audit_parse_time(const char *date, time_t *when_r);

#endif
