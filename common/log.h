/* log.h - one line per event, with a timestamp, level and the program's name.
 * Writes to stderr by default or to a file set with log_open(); log_reopen() follows rotation (SIGHUP). */
#ifndef IX_LOG_H
#define IX_LOG_H

#include <stdarg.h>
#include <sys/time.h>
#include "common/util.h"

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
	LOG_LEVEL_PANIC,
};

/* Sets the name printed on each line (the daemon's name). The string must outlive the process's logging. */
void log_set_name(const char *name);
/* Lines below this level are dropped (default INFO; DEBUG when IX_DEBUG is set in the environment). */
void log_set_level(enum log_level level);
/* Appends to path from now on. Returns 0 or -1 with errno set (logging then stays where it was). */
int log_open(const char *path);
/* True when standard error is systemd's journal (JOURNAL_STREAM names it: the process runs as a systemd service):
 * then every program of the system logs to standard error, where journald keeps it, instead of DATA/log. */
int log_to_journal(void);
/* Reopens the file given to log_open (after rotation). Returns 0 or -1. */
int log_reopen(void);

void log_vwrite(enum log_level level, const char *fmt, va_list ap) IX_PRINTF(2, 0);
void log_debug(const char *fmt, ...) IX_PRINTF(1, 2);
void log_info(const char *fmt, ...) IX_PRINTF(1, 2);
void log_warn(const char *fmt, ...) IX_PRINTF(1, 2);
void log_error(const char *fmt, ...) IX_PRINTF(1, 2);
/* log_warn with the line stamped when (gettimeofday's clock) instead of now: a caller that caps its lines per
 * second stamps each with the second it counted it in, so the log shows the cap it applied. */
void log_warn_at(const struct timeval *when, const char *fmt, ...) IX_PRINTF(2, 3);

#endif
