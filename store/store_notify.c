/* store_notify.c - change notification across processes: one small file per watched mailbox under
 * <store>/notify/, whose timestamps a committer touches after each durable commit; watchers wait with inotify. */
#include "store/store_int.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct store_watch {
	struct store *st;
	int fd;
	int wd;
};

/* An inotify instance for a new watch: one a destroyed watch left (see store_watch_destroy), else a new one. */
static int watch_fd_get(struct store *st)
{
	int fd = -1;
	pthread_mutex_lock(&st->watch_lock);
	if (st->idle_watch_n > 0)
		fd = st->idle_watch_fds[--st->idle_watch_n];
	pthread_mutex_unlock(&st->watch_lock);
	return fd >= 0 ? fd : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

void store_watch_close_idle(struct store *st)
{
	for (size_t i = 0; i < st->idle_watch_n; i++)
		close(st->idle_watch_fds[i]);
	free(st->idle_watch_fds);
	st->idle_watch_fds = NULL;
	st->idle_watch_n = 0;
}

static char *notify_path(struct store *st, const uint8_t *guid)
{
	char hex[STORE_GUID_HEX_LEN + 1];
	store_guid_format(guid, hex);
	return xasprintf("%s/%s", st->notify_dir, hex);
}

void store_notify_touch(struct store *st, const uint8_t *guid)
{
	/* The file exists only while someone watches (or has watched) the mailbox: no watcher, one failed call. */
	char *path = notify_path(st, guid);
	utimensat(AT_FDCWD, path, NULL, 0);
	free(path);
}

int store_watch_create(struct store *st, const char *guid, struct store_watch **watch_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	int ret = store_guid_parse(guid, g, error_r);
	if (ret != 0)
		return ret;
	char *path = notify_path(st, g);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot create the notification file %s: %s", path, strerror(errno));
		free(path);
		return IX_EIO;
	}
	close(fd);
	struct store_watch *w = xcalloc(1, sizeof(*w));
	w->st = st;
	w->wd = -1;
	w->fd = watch_fd_get(st);
	if (w->fd >= 0)
		w->wd = inotify_add_watch(w->fd, path, IN_ATTRIB | IN_MODIFY);
	if (w->fd < 0 || w->wd < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot watch %s: %s", path, strerror(errno));
		free(path);
		store_watch_destroy(&w);
		return IX_EIO;
	}
	free(path);
	*watch_r = w;
	return 0;
}

int store_watch_fd(const struct store_watch *watch)
{
	return watch->fd;
}

int store_watch_drain(struct store_watch *watch)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int any = 0;
	for (;;) {
		ssize_t n = read(watch->fd, ev, sizeof(ev));
		if (n > 0) {
			any = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	return any;
}

void store_watch_destroy(struct store_watch **watch)
{
	struct store_watch *w = *watch;
	if (w == NULL)
		return;
	*watch = NULL;
	if (w->fd >= 0 && w->wd >= 0 && inotify_rm_watch(w->fd, w->wd) == 0) {
		/* Closing the instance would wait for an RCU grace period in the kernel (every session of the daemon
		 * stalled 15 ms each time the last watcher of a mailbox left); removing the watch does not. The
		 * instance, emptied of the events left (IN_IGNORED, queued by the removal), serves the next watch. */
		(void)store_watch_drain(w);
		pthread_mutex_lock(&w->st->watch_lock);
		w->st->idle_watch_fds = xrealloc(w->st->idle_watch_fds,
						 (w->st->idle_watch_n + 1) * sizeof(*w->st->idle_watch_fds));
		w->st->idle_watch_fds[w->st->idle_watch_n++] = w->fd;
		pthread_mutex_unlock(&w->st->watch_lock);
	} else if (w->fd >= 0) {
		close(w->fd);
	}
	free(w);
}
