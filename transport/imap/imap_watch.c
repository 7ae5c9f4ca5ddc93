/* imap_watch.c - change notification: one store watch per mailbox shared by the sessions that have a folder of it
 * selected, all on the store's one inotify descriptor; a change marks them dirty (IDLE ones are brought up to date
 * at once), a move says BYE. */
#include "transport/imap/imap_session_int.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The session's own mailbox was moved to another server (`interchange user move`, once the home server was switched:
 * frozen and marked STORE_MARK_MOVED): this copy takes
 * no more changes and new mail goes to the new home, so the client is told to connect again, which brings it
 * there (proxied when it lands here). */
void imap_say_moved(struct imap_session *s)
{
	imap_reply(s, "* BYE [UNAVAILABLE] This mailbox has moved to another server: connect again.");
	imap_flush_out(s);
	s->ls.closing = true;
	conn_close_after_flush(s->ls.conn);
}

/* One watched mailbox changed. */
static void watch_changed(struct imap_watch *w)
{
	int frozen = 0, moved_away = 0;
	(void)store_mailbox_frozen(w->srv->ls.cfg.store, w->guid, &frozen, NULL, NULL);
	if (frozen) /* a freeze alone may be undone (the move failed): nothing is said before the switch */
		(void)store_mailbox_marked(w->srv->ls.cfg.store, w->guid, STORE_MARK_MOVED, &moved_away, NULL);
	for (struct login_session *ls = w->srv->ls.sessions; ls != NULL; ls = ls->next) {
		struct imap_session *s = (struct imap_session *)ls;
		if (s->ls.closing)
			continue;
		if (imap_notify_watches(s, w)) {
			/* NOTIFY: told between commands and in IDLE; a command under way is told when it is back */
			if (s->in_worker || (s->mode != IMAP_MODE_COMMAND && s->mode != IMAP_MODE_IDLE)) {
				s->notify_pending = true;
			} else {
				s->dirty = s->dirty || s->watch == w;
				imap_notify_changed(s);
				imap_flush_out(s);
			}
		}
		if (s->watch != w)
			continue;
		bool moved = moved_away && s->ls.user.guid != NULL && strcasecmp(s->ls.user.guid, w->guid) == 0;
		if (s->in_worker) {
			s->dirty_pending = true; /* the worker owns the view; merged when it is back */
			s->moved_pending = s->moved_pending || moved;
			continue;
		}
		if (moved) {
			imap_say_moved(s);
			continue;
		}
		s->dirty = true;
		if (s->mode == IMAP_MODE_IDLE) {
			imap_sync(s, true, false);
			imap_flush_out(s);
		}
	}
}

/* The servers of this process that have watches (every watch of a store is on its one descriptor, and servers on
 * the same loop and store share it: the descriptor's handler serves them all). */
static struct imap_server *watching;

static void notify_event(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)loop;
	(void)events;
	(void)ctx;
	/* first every watch's events, each changed watch held (answering may release watches), then the answers */
	struct imap_watch **changed = NULL;
	size_t n = 0;
	for (struct imap_server *srv = watching; srv != NULL; srv = srv->watching_next)
		for (struct imap_watch *w = srv->watches; w != NULL; w = w->next)
			if (w->w != NULL && store_watch_fd(w->w) == fd && store_watch_drain(w->w) != 0) {
				changed = xrealloc(changed, (n + 1) * sizeof(*changed));
				changed[n++] = w;
				w->refs++;
			}
	for (size_t i = 0; i < n; i++)
		watch_changed(changed[i]);
	for (size_t i = 0; i < n; i++)
		imap_watch_release(changed[i]->srv, &changed[i]);
	free(changed);
}

/* Whether another watching server than srv uses descriptor fd. */
static bool fd_shared(const struct imap_server *srv, int fd)
{
	for (const struct imap_server *o = watching; o != NULL; o = o->watching_next)
		if (o != srv && o->notify_fd == fd)
			return true;
	return false;
}

struct imap_watch *imap_watch_acquire(struct imap_server *srv, const char *guid)
{
	for (struct imap_watch *w = srv->watches; w != NULL; w = w->next)
		if (strcasecmp(w->guid, guid) == 0) {
			w->refs++;
			return w;
		}
	struct imap_watch *w = xcalloc(1, sizeof(*w));
	w->srv = srv;
	snprintf(w->guid, sizeof(w->guid), "%s", guid);
	w->refs = 1;
	struct buf err = BUF_INIT;
	if (store_watch_create(srv->ls.cfg.store, guid, &w->w, &err) != 0) {
		log_warn("no change notification for mailbox %s (sessions will poll): %s", guid, buf_cstr(&err));
		w->w = NULL;
	} else if (srv->notify_fd < 0) {
		if (evloop_fd_set(srv->ls.cfg.loop, store_watch_fd(w->w), EVLOOP_READ, notify_event, NULL) != 0) {
			store_watch_destroy(&w->w);
		} else {
			srv->notify_fd = store_watch_fd(w->w);
			srv->watching_next = watching;
			watching = srv;
		}
	}
	buf_free(&err);
	w->next = srv->watches;
	srv->watches = w;
	return w;
}

void imap_watch_release(struct imap_server *srv, struct imap_watch **wp)
{
	struct imap_watch *w = *wp;
	*wp = NULL;
	if (w == NULL || --w->refs > 0)
		return;
	for (struct imap_watch **pp = &srv->watches; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	store_watch_destroy(&w->w);
	free(w);
	if (srv->watches != NULL || srv->notify_fd < 0)
		return;
	/* the server's last watch: off the list, and the descriptor out of the loop unless another server uses it */
	for (struct imap_server **pp = &watching; *pp != NULL; pp = &(*pp)->watching_next)
		if (*pp == srv) {
			*pp = srv->watching_next;
			break;
		}
	if (!fd_shared(srv, srv->notify_fd))
		evloop_fd_remove(srv->ls.cfg.loop, srv->notify_fd);
	srv->notify_fd = -1;
}
