/* spool.h - a message being received, kept in memory while small and in an unlinked temporary file past a
 * threshold, so what a session holds stays bounded however large the message; read back as one mapped region. */
#ifndef IX_SPOOL_H
#define IX_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"

/* Bytes a spool holds in memory: the whole message while it is no larger, else the part not yet written out. */
#define SPOOL_MEMORY_MAX (128 * 1024)

struct spool {
	const char *dir; /* where the temporary file goes (the caller's string; NULL: memory only) */
	struct buf mem;  /* the message while small; past SPOOL_MEMORY_MAX, what waits to be written */
	int fd;          /* the temporary file, -1 while in memory */
	uint64_t len;    /* bytes appended since the last reset */
	int error;       /* the errno of the first failed write (appends are then dropped), 0 */
	void *map;       /* spool_view's mapping of the file, NULL */
	size_t map_len;
};

/* An empty spool; dir (may be NULL: never leaves memory) must outlive it. */
void spool_init(struct spool *sp, const char *dir);
/* Adds bytes. Past SPOOL_MEMORY_MAX they go to a temporary file in dir, created unlinked (O_TMPFILE; where the
 * file system lacks it, a named file unlinked at once), so nothing is left behind by a crash. A write failure
 * (a full disk) is kept in sp->error and the rest is dropped: spool_view then fails. */
void spool_append(struct spool *sp, const void *data, size_t len);
/* The whole content as one read-only region: the memory, or the file mapped (its pages are the page cache's,
 * not the process's own). Valid until spool_reset or spool_free. Returns 0, or IX_EIO with error_r (may be NULL)
 * saying why (a failed write, a full disk). */
int spool_view(struct spool *sp, const char **data_r, size_t *len_r, struct buf *error_r);
/* Empties the spool for the next message (the file is closed, so its space is freed). */
void spool_reset(struct spool *sp);
/* Frees what the spool holds; it may be initialised again. */
void spool_free(struct spool *sp);

#endif
