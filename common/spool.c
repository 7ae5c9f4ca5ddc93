/* spool.c - a received message in memory while small, then in an unlinked temporary file; read back as one
 * mapped region. */
#include "common/spool.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void spool_init(struct spool *sp, const char *dir)
{
	memset(sp, 0, sizeof(*sp));
	sp->dir = dir;
	buf_init(&sp->mem);
	sp->fd = -1;
}

static void unmap(struct spool *sp)
{
	if (sp->map != NULL)
		munmap(sp->map, sp->map_len);
	sp->map = NULL;
	sp->map_len = 0;
}

/* A file nobody else can reach: O_TMPFILE, or where the file system has none a named file removed at once. */
static int temp_open(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	char *path = xasprintf("%s/.spool-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd;
}

/* Writes what memory holds to the file (opening it first). */
static void spill(struct spool *sp)
{
	if (sp->error != 0 || sp->mem.len == 0)
		return;
	if (sp->fd < 0) {
		sp->fd = temp_open(sp->dir);
		if (sp->fd < 0) {
			sp->error = errno;
			return;
		}
	}
	if (write_full(sp->fd, sp->mem.data, sp->mem.len) < 0)
		sp->error = errno;
	buf_reset(&sp->mem);
}

void spool_append(struct spool *sp, const void *data, size_t len)
{
	if (sp->error != 0 || len == 0)
		return;
	unmap(sp);
	sp->len += len;
	buf_append(&sp->mem, data, len);
	if (sp->mem.len > SPOOL_MEMORY_MAX && sp->dir != NULL) {
		spill(sp);
		if (sp->mem.cap > 2 * SPOOL_MEMORY_MAX)
			buf_free(&sp->mem); /* one large append grew it: give that back */
	}
}

int spool_view(struct spool *sp, const char **data_r, size_t *len_r, struct buf *error_r)
{
	if (sp->fd >= 0)
		spill(sp);
	if (sp->error != 0) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot spool the message: %s",
				   sp->error == ENOSPC || sp->error == EDQUOT
					   ? "disk full (no space left on the device)"
					   : strerror(sp->error));
		return IX_EIO;
	}
	if (sp->fd < 0) {
		*data_r = sp->mem.data != NULL ? sp->mem.data : "";
		*len_r = sp->mem.len;
		return 0;
	}
	if (sp->map == NULL) {
		void *p = mmap(NULL, (size_t)sp->len, PROT_READ, MAP_SHARED, sp->fd, 0);
		if (p == MAP_FAILED) {
			if (error_r != NULL)
				buf_printf(error_r, "cannot map the spooled message: %s", strerror(errno));
			return IX_EIO;
		}
		sp->map = p;
		sp->map_len = (size_t)sp->len;
	}
	*data_r = sp->map;
	*len_r = sp->map_len;
	return 0;
}

void spool_reset(struct spool *sp)
{
	unmap(sp);
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	sp->len = 0;
	sp->error = 0;
	if (sp->mem.cap > 2 * SPOOL_MEMORY_MAX)
		buf_free(&sp->mem);
	else
		buf_reset(&sp->mem);
}

void spool_free(struct spool *sp)
{
	spool_reset(sp);
	buf_free(&sp->mem);
}
