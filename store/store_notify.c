/* store_notify.c - change notification across processes: one small file per watched mailbox under
 * <store>/notify/, whose timestamps a committer touches after each durable commit; watchers wait on the store
 * handle's one inotify instance. */
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

/* A watch: a mailbox's notification file on the store's one inotify instance. Watches of the same mailbox share
 * the kernel's watch descriptor (inotify gives the same one for the same file). */
struct store_watch {
	struct store *st;
	int wd;
	int pending; /* an event for wd was read and not yet drained by this watch */
	struct store_watch *next;
};

/* The store's inotify instance, made on first use (called with watch_lock held). */
static int notify_fd_get(struct store *st)
{
	if (st->notify_fd < 0)
		st->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	return st->notify_fd;
}

void store_notify_close(struct store *st)
{
	if (st->notify_fd >= 0)
		close(st->notify_fd);
	st->notify_fd = -1;
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
	pthread_mutex_lock(&st->watch_lock);
	int nfd = notify_fd_get(st), wd = nfd >= 0 ? inotify_add_watch(nfd, path, IN_ATTRIB | IN_MODIFY) : -1;
	if (wd < 0) {
		pthread_mutex_unlock(&st->watch_lock);
		if (error_r != NULL)
			buf_printf(error_r, "cannot watch %s: %s", path, strerror(errno));
		free(path);
		return IX_EIO;
	}
	struct store_watch *w = xcalloc(1, sizeof(*w));
	w->st = st;
	w->wd = wd;
	w->next = st->watches;
	st->watches = w;
	pthread_mutex_unlock(&st->watch_lock);
	free(path);
	*watch_r = w;
	return 0;
}

int store_watch_fd(const struct store_watch *watch)
{
	return watch->st->notify_fd;
}

/* Reads every pending event of the instance and notes it on the watches of its descriptor (watch_lock held). */
static void notify_read(struct store *st)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(st->notify_fd, ev, sizeof(ev));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *e = (const struct inotify_event *)(ev + off);
			for (struct store_watch *w = st->watches; w != NULL; w = w->next)
				if (w->wd == e->wd)
					w->pending = 1;
			off += (ssize_t)(sizeof(*e) + e->len);
		}
	}
}

int store_watch_drain(struct store_watch *watch)
{
	pthread_mutex_lock(&watch->st->watch_lock);
	notify_read(watch->st);
	int any = watch->pending;
	watch->pending = 0;
	pthread_mutex_unlock(&watch->st->watch_lock);
	return any;
}

void store_watch_destroy(struct store_watch **watch)
{
	struct store_watch *w = *watch;
	if (w == NULL)
		return;
	*watch = NULL;
	struct store *st = w->st;
	pthread_mutex_lock(&st->watch_lock);
	bool shared = false;
	for (struct store_watch **pp = &st->watches; *pp != NULL;) {
		if (*pp == w) {
			*pp = w->next;
			continue;
		}
		shared |= (*pp)->wd == w->wd;
		pp = &(*pp)->next;
	}
	/* removing a descriptor never waits (closing an instance would, for an RCU grace period); its IN_IGNORED event
	 * names a descriptor no watch has any more */
	if (!shared)
		(void)inotify_rm_watch(st->notify_fd, w->wd);
	pthread_mutex_unlock(&st->watch_lock);
	free(w);
}
