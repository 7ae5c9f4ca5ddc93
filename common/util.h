/* util.h - allocation that never fails, and the process-wide error policy.
 * Library code returns error codes (see err.h); fatal() is for an unusable environment, panic() for our bugs. */
#ifndef IX_UTIL_H
#define IX_UTIL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <stdarg.h>

#define IX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define IX_NORETURN __attribute__((noreturn))
#define IX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation never returns NULL: on exhaustion the process logs and exits (the attendant restarts it). */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; caller frees. */
char *xasprintf(const char *fmt, ...) IX_PRINTF(1, 2);

/* fatal: the environment is unusable (exit 1). panic: a bug in our code (abort, for a core). */
void fatal(const char *fmt, ...) IX_PRINTF(1, 2) IX_NORETURN;
/* The exit status of a service that could not run because something it depends on is not there (the directory
 * down, its replica not ready): the attendant restarts it without counting a failure of its own. */
#define IX_EXIT_DEPENDENCY 75
/* fatal for that case: logs at the fatal level and exits with IX_EXIT_DEPENDENCY. */
void fatal_dependency(const char *fmt, ...) IX_PRINTF(1, 2) IX_NORETURN;
void panic(const char *fmt, ...) IX_PRINTF(1, 2) IX_NORETURN;

/* Parses a decimal unsigned number that fills the whole string and is <= max. Returns 0 or -1. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *value_r);

/* Does addr (an IPv4 or IPv6 address as text) fall in pattern: one address, or ADDRESS/PREFIX (CIDR, prefix up to
 * 32 or 128)? An IPv4-mapped IPv6 address (::ffff:192.0.2.1) counts as its IPv4 address on either side.
 * Returns 1 (inside), 0 (outside, or addr is not an address) or -1 (pattern is neither an address nor a CIDR). */
int ip_in_cidr(const char *pattern, const char *addr);

/* Syncs the folder that holds path (a file made, renamed or removed there is then durable). 0 or -1. */
int fsync_parent(const char *path);
/* Writes all of buf to fd, retrying on EINTR and short writes. Returns 0 or -1 with errno set. */
int write_full(int fd, const void *buf, size_t len);
/* Renames path.N-1 to path.N for N from keep down to 2, then path to path.1 (the oldest, path.keep, is replaced;
 * missing ones are skipped): a log's rotation, whose writers open path again. */
void file_shift(const char *path, int keep);
/* Where the last n lines of fd's file start (0 when it has fewer; the last line need not end in a newline). */
off_t file_tail_offset(int fd, unsigned long n);
/* Reads a whole file (at most max bytes) into a new NUL-terminated buffer. Returns 0 or -1 with errno set. */
int read_file(const char *path, size_t max, char **data_r, size_t *len_r);
/* Writes a file durably: temp file, fsync, rename over path, fsync of the directory. Returns 0 or -1. */
int write_file_atomic(const char *path, const void *data, size_t len, int mode);
/* The same with the content in parts (a header built here, a body that lives elsewhere), written in order. */
struct iovec;
int write_file_atomic_parts(const char *path, const struct iovec *parts, size_t n, int mode);
/* Copies a file durably (streamed through a temp file, synced, renamed over to). Returns 0 or -1 with errno
 * set (EFBIG when from is larger than max bytes). */
int file_copy(const char *from, const char *to, int mode, unsigned long long max);
/* 1 when path is a folder with nothing in it, or does not exist; 0 otherwise. */
int folder_empty_or_missing(const char *path);
/* Removes path and everything below it (links are removed, not followed). Returns 0 or -1 with errno set. */
int remove_tree(const char *path);
/* mkdir -p with the given mode for created folders. Returns 0 or -1. */
int mkdir_p(const char *path, int mode);
struct stat;
/* Returns 1 when path now differs from *seen (another file renamed over it, a new size or modification time), else
 * 0, and records it in *seen. A path that cannot be stat'ed has not changed (*seen is kept). The first call on a
 * zeroed *seen returns 1: make it once to start watching. */
int file_changed(const char *path, struct stat *seen);
/* Monotonic clock in microseconds. */
unsigned long long now_usec(void);
/* The time msecs from now on clock (CLOCK_REALTIME, CLOCK_MONOTONIC), for the timed pthread waits. */
struct timespec time_after_msecs(clockid_t clock, unsigned msecs);

#endif
