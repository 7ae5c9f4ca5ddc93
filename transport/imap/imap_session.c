/* imap_session.c - IMAP4rev1 sessions: connection events, the command loop over the incremental parser, a flat
 * {name, handler, states} table, login, namespaces and folders, and the selected view kept in step with the store. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "transport/imap/imap_fetch.h"
#include "common/log.h"
#include "transport/imap/mutf7.h"
#include "common/util.h"
#include "common/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MSG_GONE (1u << 30) /* expunged in the store, not yet reported to the client */
#define OUTPUT_POLL_MS 10   /* how often a session waiting for its output to drain looks again */
#define NOWATCH_POLL_MS 1000 /* IDLE without change notification: how often the folder is looked at */

static void process_input(struct imap_session *s);
static void cmd_compress(struct imap_session *s, const struct imap_command *cmd);
static void session_timer(struct evloop *loop, struct evloop_timer *timer, void *ctx);

/* ---- output ---- */

void imap_flush_out(struct imap_session *s)
{
	if (s->in_worker)
		return; /* conn is the loop's: the command's output leaves when it is back */
	if (s->out.len > 0 && s->ls.conn != NULL) {
		if (s->z != NULL) {
			struct buf c = BUF_INIT;
			imap_z_compress(s->z, s->out.data, s->out.len, &c);
			conn_write(s->ls.conn, c.data, c.len);
			buf_free(&c);
		} else {
			conn_write(s->ls.conn, s->out.data, s->out.len);
		}
	}
	buf_reset(&s->out);
}

void imap_reply(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append_str(&s->out, "\r\n");
}

void imap_tagged(struct imap_session *s, const char *tag, const char *fmt, ...)
{
	if (s->state == IMAP_ST_SELECTED && s->dirty)
		imap_sync(s, true, false);
	buf_append_str(&s->out, tag);
	buf_append_char(&s->out, ' ');
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append_str(&s->out, "\r\n");
	imap_flush_out(s);
}

/* A tagged response after which expunges may not be reported (FETCH, STORE, SEARCH by sequence numbers). */
void imap_tagged_noexpunge(struct imap_session *s, const char *tag, const char *text)
{
	if (s->state == IMAP_ST_SELECTED && s->dirty)
		imap_sync(s, false, false);
	buf_printf(&s->out, "%s %s\r\n", tag, text);
	imap_flush_out(s);
}

static void capabilities(struct imap_session *s, struct buf *out)
{
	buf_append_str(out, "IMAP4rev1");
	if (s->state == IMAP_ST_NOTAUTH) {
		if (s->srv->ls.cfg.tls != NULL && !conn_is_tls(s->ls.conn))
			buf_append_str(out, " STARTTLS");
		if (s->ls.secure)
			buf_append_str(out, " AUTH=PLAIN AUTH=LOGIN");
		else
			buf_append_str(out, " LOGINDISABLED");
	}
	buf_append_str(out, " SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN");
	if (s->state != IMAP_ST_NOTAUTH && s->z == NULL && imap_z_available())
		buf_append_str(out, " COMPRESS=DEFLATE");
	if (s->state != IMAP_ST_NOTAUTH)
		buf_append_str(out, " UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES "
				    "BINARY UTF8=ACCEPT CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE ACL RIGHTS=texk STATUS=SIZE");
}

/* ---- flags ---- */

static const struct {
	unsigned imap, st;
} flag_map[] = {
	{ IMAP_FLAG_ANSWERED, STORE_FLAG_ANSWERED }, { IMAP_FLAG_FLAGGED, STORE_FLAG_FLAGGED },
	{ IMAP_FLAG_DELETED, STORE_FLAG_DELETED },   { IMAP_FLAG_SEEN, STORE_FLAG_SEEN },
	{ IMAP_FLAG_DRAFT, STORE_FLAG_DRAFT },       { IMAP_FLAG_RECENT, STORE_FLAG_RECENT },
};

unsigned imap_flags_to_store(unsigned imap)
{
	unsigned r = 0;
	for (size_t i = 0; i < IX_ARRAY_LEN(flag_map); i++)
		if (imap & flag_map[i].imap)
			r |= flag_map[i].st;
	return r;
}

unsigned imap_flags_from_store(unsigned st)
{
	unsigned r = 0;
	for (size_t i = 0; i < IX_ARRAY_LEN(flag_map); i++)
		if (st & flag_map[i].st)
			r |= flag_map[i].imap;
	return r;
}

void imap_write_store_flags(struct buf *out, unsigned flags, const char *keywords)
{
	const char *kw[IMAP_MAX_KEYWORDS];
	size_t n = 0;
	char *copy = xstrdup(keywords != NULL ? keywords : "");
	for (char *save = NULL, *t = strtok_r(copy, " ", &save); t != NULL && n < IMAP_MAX_KEYWORDS;
	     t = strtok_r(NULL, " ", &save))
		kw[n++] = t;
	imap_write_flags(out, imap_flags_from_store(flags), kw, n);
	free(copy);
}

void imap_mailbox_quota(const struct imap_session *s, const char *guid, uint64_t *bytes_r, uint64_t *messages_r)
{
	*bytes_r = *messages_r = 0;
	if (strcasecmp(guid, s->ls.user.guid) == 0) {
		*bytes_r = s->ls.user.quota_bytes;
		*messages_r = s->ls.user.quota_messages;
	} else if (strcasecmp(guid, s->other_guid) == 0) {
		*bytes_r = s->other_quota_bytes;
		*messages_r = s->other_quota_messages;
	}
}

const char *imap_user_id(const struct imap_session *s)
{
	return s->ls.user.login;
}

long imap_find_uid(const struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->count && s->msgs[lo].uid == uid ? (long)lo : -1;
}

/* ---- change notification ---- */

/* The session's own mailbox was frozen by a move to another server (`interchange user move`): this copy takes
 * no more changes and new mail goes to the new home, so the client is told to connect again, which brings it
 * there (proxied when it lands here). */
static void say_moved(struct imap_session *s)
{
	imap_reply(s, "* BYE [UNAVAILABLE] This mailbox has moved to another server: connect again.");
	imap_flush_out(s);
	s->ls.closing = true;
	conn_close_after_flush(s->ls.conn);
}

static void watch_event(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	struct imap_watch *w = ctx;
	if (store_watch_drain(w->w) == 0)
		return;
	int frozen = 0;
	(void)store_mailbox_frozen(w->srv->ls.cfg.store, w->guid, &frozen, NULL, NULL);
	for (struct login_session *ls = w->srv->ls.sessions; ls != NULL; ls = ls->next) {
		struct imap_session *s = (struct imap_session *)ls;
		if (s->watch != w || s->ls.closing)
			continue;
		bool moved = frozen && s->ls.user.guid != NULL && strcasecmp(s->ls.user.guid, w->guid) == 0;
		if (s->in_worker) {
			s->dirty_pending = true; /* the worker owns the view; merged when it is back */
			s->moved_pending = s->moved_pending || moved;
			continue;
		}
		if (moved) {
			say_moved(s);
			continue;
		}
		s->dirty = true;
		if (s->mode == IMAP_MODE_IDLE) {
			imap_sync(s, true, false);
			imap_flush_out(s);
		}
	}
}

static struct imap_watch *watch_acquire(struct imap_server *srv, const char *guid)
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
	} else if (evloop_fd_set(srv->ls.cfg.loop, store_watch_fd(w->w), EVLOOP_READ, watch_event, w) != 0) {
		store_watch_destroy(&w->w);
	}
	buf_free(&err);
	w->next = srv->watches;
	srv->watches = w;
	return w;
}

static void watch_release(struct imap_server *srv, struct imap_watch **wp)
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
	if (w->w != NULL) {
		evloop_fd_remove(srv->ls.cfg.loop, store_watch_fd(w->w));
		store_watch_destroy(&w->w);
	}
	free(w);
}

/* ---- the selected view ---- */

struct recent_job {
	struct store *st;
	char *guid, *folder;
};

static void recent_run(void *arg)
{
	struct recent_job *j = arg;
	store_clear_recent(j->st, j->guid, j->folder, NULL);
}

static void recent_done(void *arg)
{
	struct recent_job *j = arg;
	free(j->guid);
	free(j->folder);
	free(j);
}

/* Clears \Recent in the store once this session has claimed the messages: a synced write, so it goes to the
 * pool and nobody waits for it (the session already reports them as recent). */
static void clear_recent_async(struct imap_session *s)
{
	if (s->srv->ls.cfg.pool == NULL) {
		store_clear_recent(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, NULL);
		return;
	}
	struct recent_job *j = xcalloc(1, sizeof(*j));
	j->st = s->srv->ls.cfg.store;
	j->guid = xstrdup(s->sel_guid);
	j->folder = xstrdup(s->sel_folder);
	workpool_submit(s->srv->ls.cfg.pool, recent_run, recent_done, j);
}

static void write_fetch_flags(struct imap_session *s, size_t idx, const struct store_msg *m)
{
	buf_printf(&s->out, "* %zu FETCH (", idx + 1);
	if (s->qresync)
		buf_printf(&s->out, "UID %u ", m->uid);
	buf_append_str(&s->out, "FLAGS ");
	imap_write_store_flags(&s->out, (m->flags & ~STORE_FLAG_RECENT) | (s->msgs[idx].flags & STORE_FLAG_RECENT),
			       m->keywords);
	if (s->condstore)
		buf_printf(&s->out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_append_str(&s->out, ")\r\n");
}

static size_t recent_count(const struct imap_session *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->count; i++)
		if (s->msgs[i].flags & STORE_FLAG_RECENT)
			n++;
	return n;
}

/* Expunges held back (MSG_GONE) must be reported at the next point that allows them. */
static void keep_dirty_for_gone(struct imap_session *s)
{
	for (size_t i = 0; i < s->count; i++)
		if (s->msgs[i].flags & MSG_GONE) {
			s->dirty = true;
			return;
		}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Brings the view up to date from the store's change log since the view's HIGHESTMODSEQ: O(changes), not
 * O(messages). Returns false (nothing done) when the full comparison must be used instead: public folders (per-user
 * \Seen is not in the change log), a change log that cannot be read, or more changes than half the view. */
static bool sync_incremental(struct imap_session *s, bool allow_expunge)
{
	struct store *st = s->srv->ls.cfg.store;
	if (strcasecmp(s->sel_guid, STORE_PUBLIC_GUID) == 0)
		return false;
	struct store_change *ch = NULL;
	size_t nch = 0;
	if (store_changes(st, s->sel_guid, s->sel_folder, s->highestmodseq, &ch, &nch, NULL) != 0)
		return false;
	if (nch > s->count / 2 + 64) {
		free(ch);
		return false;
	}
	uint64_t maxmod = s->highestmodseq;
	uint32_t last = s->count > 0 ? s->msgs[s->count - 1].uid : 0;
	uint32_t *fresh = xcalloc(nch + 1, sizeof(*fresh));
	size_t nfresh = 0;
	for (size_t i = 0; i < nch; i++) {
		if (ch[i].modseq > maxmod)
			maxmod = ch[i].modseq;
		long k = imap_find_uid(s, ch[i].uid);
		if (ch[i].expunged) {
			if (k >= 0)
				s->msgs[k].flags |= MSG_GONE;
			continue;
		}
		if (k < 0) {
			if (ch[i].uid > last)
				fresh[nfresh++] = ch[i].uid;
			continue;
		}
		if (s->msgs[k].flags & MSG_GONE)
			continue;
		struct store_msg m;
		if (store_msg_get(st, s->sel_guid, s->sel_folder, ch[i].uid, imap_user_id(s), &m, NULL) != 0) {
			s->msgs[k].flags |= MSG_GONE; /* its expunge is further on in the log */
			continue;
		}
		if (m.modseq != s->msgs[k].modseq ||
		    (m.flags & ~STORE_FLAG_RECENT) != (s->msgs[k].flags & ~(STORE_FLAG_RECENT | MSG_GONE))) {
			s->msgs[k].flags = (m.flags & ~STORE_FLAG_RECENT) | (s->msgs[k].flags & STORE_FLAG_RECENT);
			s->msgs[k].modseq = m.modseq;
			write_fetch_flags(s, (size_t)k, &m);
		}
		store_msg_free(&m);
	}
	free(ch);
	if (allow_expunge) {
		uint32_t *van = xcalloc(s->count + 1, sizeof(*van));
		size_t nvan = 0, kept = 0, removed = 0;
		for (size_t i = 0; i < s->count; i++) {
			if (!(s->msgs[i].flags & MSG_GONE)) {
				s->msgs[kept++] = s->msgs[i];
				continue;
			}
			if (s->qresync)
				van[nvan++] = s->msgs[i].uid;
			else
				buf_printf(&s->out, "* %zu EXPUNGE\r\n", i + 1 - removed);
			removed++;
		}
		s->count = kept;
		if (nvan > 0) {
			buf_append_str(&s->out, "* VANISHED ");
			imap_write_seqset(&s->out, van, nvan);
			buf_append_str(&s->out, "\r\n");
		}
		free(van);
	}
	qsort(fresh, nfresh, sizeof(*fresh), cmp_u32);
	size_t added = 0;
	bool take_recent = false;
	for (size_t i = 0; i < nfresh; i++) {
		if (i > 0 && fresh[i] == fresh[i - 1])
			continue;
		struct store_msg m;
		if (store_msg_get(st, s->sel_guid, s->sel_folder, fresh[i], imap_user_id(s), &m, NULL) != 0)
			continue;
		if (s->count == s->cap) {
			s->cap = s->cap < 16 ? 16 : s->cap * 2;
			s->msgs = xrealloc(s->msgs, s->cap * sizeof(*s->msgs));
		}
		unsigned fl = m.flags;
		if ((fl & STORE_FLAG_RECENT) && !s->readonly)
			take_recent = true;
		else
			fl &= ~STORE_FLAG_RECENT;
		s->msgs[s->count++] = (struct imap_msg){ m.uid, fl, m.modseq };
		if (m.uid >= s->uidnext)
			s->uidnext = m.uid + 1;
		added++;
		store_msg_free(&m);
	}
	free(fresh);
	s->highestmodseq = maxmod;
	if (added > 0) {
		buf_printf(&s->out, "* %zu EXISTS\r\n* %zu RECENT\r\n", s->count, recent_count(s));
		if (take_recent)
			clear_recent_async(s);
	}
	return true;
}

void imap_sync(struct imap_session *s, bool allow_expunge, bool force)
{
	if (s->state != IMAP_ST_SELECTED || (!s->dirty && !force))
		return;
	if (sync_incremental(s, allow_expunge)) {
		s->dirty = s->watch == NULL || s->watch->w == NULL; /* without notification, always look */
		if (!allow_expunge)
			keep_dirty_for_gone(s);
		return;
	}
	struct store_msg *list = NULL;
	size_t n = 0;
	struct buf err = BUF_INIT;
	int ret = store_msg_list(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, imap_user_id(s), &list, &n, &err);
	if (ret != 0) {
		if (ret == IX_ENOTFOUND && allow_expunge) {
			/* the folder is gone: report everything expunged, keep the session */
			for (size_t i = s->count; i > 0; i--)
				buf_printf(&s->out, "* %zu EXPUNGE\r\n", i);
			s->count = 0;
		}
		buf_free(&err);
		s->dirty = false;
		return;
	}
	buf_free(&err);
	s->dirty = s->watch == NULL || s->watch->w == NULL; /* without notification, always look */

	/* expunges: old entries missing from the new list */
	struct imap_msg *out = s->msgs;
	size_t j = 0, kept = 0, removed = 0;
	struct buf vanished = BUF_INIT;
	uint32_t *van = NULL;
	size_t nvan = 0;
	if (s->count > 0)
		van = xcalloc(s->count, sizeof(*van));
	for (size_t i = 0; i < s->count; i++) {
		struct imap_msg m = s->msgs[i];
		while (j < n && list[j].uid < m.uid)
			j++;
		bool present = j < n && list[j].uid == m.uid;
		if (!present) {
			if (allow_expunge) {
				if (s->qresync)
					van[nvan++] = m.uid;
				else
					buf_printf(&s->out, "* %zu EXPUNGE\r\n", i + 1 - removed);
				removed++;
				continue;
			}
			m.flags |= MSG_GONE;
		} else if ((list[j].flags & ~STORE_FLAG_RECENT) != (m.flags & ~(STORE_FLAG_RECENT | MSG_GONE)) ||
			   list[j].modseq != m.modseq) {
			m.flags = (list[j].flags & ~STORE_FLAG_RECENT) | (m.flags & STORE_FLAG_RECENT);
			m.modseq = list[j].modseq;
			out[kept] = m;
			write_fetch_flags(s, kept, &list[j]);
			kept++;
			continue;
		}
		out[kept++] = m;
	}
	if (nvan > 0) {
		buf_append_str(&s->out, "* VANISHED ");
		imap_write_seqset(&s->out, van, nvan);
		buf_append_str(&s->out, "\r\n");
	}
	free(van);
	buf_free(&vanished);
	s->count = kept;
	/* new messages: UIDs above the last one known */
	uint32_t last = s->count > 0 ? s->msgs[s->count - 1].uid : 0;
	size_t added = 0;
	bool take_recent = false;
	for (size_t k = 0; k < n; k++) {
		if (list[k].uid <= last)
			continue;
		if (s->count == s->cap) {
			s->cap = s->cap < 16 ? 16 : s->cap * 2;
			s->msgs = xrealloc(s->msgs, s->cap * sizeof(*s->msgs));
		}
		unsigned fl = list[k].flags;
		if ((fl & STORE_FLAG_RECENT) && !s->readonly)
			take_recent = true;
		else
			fl &= ~STORE_FLAG_RECENT;
		s->msgs[s->count++] = (struct imap_msg){ list[k].uid, fl, list[k].modseq };
		added++;
		if (list[k].uid >= s->uidnext)
			s->uidnext = list[k].uid + 1;
	}
	for (size_t k = 0; k < n; k++)
		if (list[k].modseq > s->highestmodseq)
			s->highestmodseq = list[k].modseq;
	if (added > 0) {
		buf_printf(&s->out, "* %zu EXISTS\r\n* %zu RECENT\r\n", s->count, recent_count(s));
		if (take_recent)
			clear_recent_async(s);
	}
	store_msg_list_free(&list, n);
	if (!allow_expunge)
		keep_dirty_for_gone(s);
}

static void deselect(struct imap_session *s)
{
	watch_release(s->srv, &s->watch);
	free(s->sel_guid);
	free(s->sel_folder);
	s->sel_guid = s->sel_folder = NULL;
	free(s->msgs);
	s->msgs = NULL;
	s->count = s->cap = 0;
	free(s->saved);
	s->saved = NULL;
	s->nsaved = 0;
	s->dirty = false;
	if (s->state == IMAP_ST_SELECTED)
		s->state = IMAP_ST_AUTH;
}

/* ---- mailbox names, namespaces and rights ---- */

static void load_ids(struct imap_session *s)
{
	if (s->ids != NULL)
		return;
	struct buf ids = BUF_INIT;
	buf_append(&ids, s->ls.user.login, strlen(s->ls.user.login) + 1);
	if (s->ls.user.address[0] != '\0')
		buf_append(&ids, s->ls.user.address, strlen(s->ls.user.address) + 1);
	if (s->srv->ls.cfg.users.groups != NULL)
		s->srv->ls.cfg.users.groups(s->srv->ls.cfg.users.ctx, s->ls.user.dn, &ids);
	size_t n = 0;
	for (size_t i = 0; i < ids.len; i++)
		if (ids.data[i] == '\0')
			n++;
	s->ids = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0, start = 0; i < ids.len; i++)
		if (ids.data[i] == '\0') {
			s->ids[s->nids++] = xstrdup(ids.data + start);
			start = i + 1;
		}
	buf_free(&ids);
}

static unsigned rights_on(struct imap_session *s, const char *guid, const char *folder)
{
	if (strcasecmp(guid, s->ls.user.guid) == 0)
		return STORE_RIGHTS_ALL;
	load_ids(s);
	unsigned r = 0;
	if (store_acl_rights(s->srv->ls.cfg.store, guid, folder, (const char *const *)s->ids, s->nids, &r, NULL) != 0)
		return 0;
	return r;
}

/* Creates the store side of the directory's public folders that do not have one yet, with the default ACL. */
static void public_sync(struct imap_session *s)
{
	if (s->srv->ls.cfg.users.public_folders == NULL)
		return;
	struct buf paths = BUF_INIT;
	s->srv->ls.cfg.users.public_folders(s->srv->ls.cfg.users.ctx, &paths);
	struct store *st = s->srv->ls.cfg.store;
	for (size_t i = 0; i < paths.len;) {
		const char *p = paths.data + i;
		i += strlen(p) + 1;
		while (*p == '/')
			p++;
		if (*p == '\0')
			continue;
		struct store_folder_info info;
		if (store_folder_status(st, STORE_PUBLIC_GUID, p, NULL, &info, NULL) == 0) {
			store_folder_info_free(&info);
			continue;
		}
		if (store_folder_create(st, STORE_PUBLIC_GUID, p, NULL) != 0)
			continue;
		unsigned def = 0;
		store_rights_parse(IMAP_PUBLIC_DEFAULT_RIGHTS, &def);
		store_acl_set(st, STORE_PUBLIC_GUID, p, STORE_ACL_ANYONE, def, NULL);
		store_acl_set(st, STORE_PUBLIC_GUID, p, IMAP_PUBLIC_ADMINS, STORE_RIGHTS_ALL, NULL);
		log_info("public folder %s: store folder created with the default rights", p);
	}
	buf_free(&paths);
}

static bool has_prefix_ci(const char *s, size_t len, const char *prefix, size_t *plen_r)
{
	size_t pl = strlen(prefix);
	if (len < pl || strncasecmp(s, prefix, pl) != 0)
		return false;
	if (len > pl && s[pl] != '/')
		return false;
	*plen_r = len > pl ? pl + 1 : pl;
	return true;
}

int imap_resolve_mailbox(struct imap_session *s, const char *name, size_t len, bool create_public, char **guid_r,
			 char **folder_r, unsigned *rights_r, struct buf *error_r)
{
	struct buf u = BUF_INIT;
	if (memchr(name, '\0', len) != NULL) {
		buf_append_str(error_r, "Mailbox name contains NUL");
		return IX_EINVAL;
	}
	if (len == 5 && strncasecmp(name, "INBOX", 5) == 0) {
		buf_append_str(&u, "INBOX");
	} else if (s->utf8) {
		/* RFC 6855: after ENABLE UTF8=ACCEPT names are UTF-8 (checked with the name rules below) */
		if (!utf8_valid(name, len)) {
			buf_append_str(error_r, "Mailbox name is not valid UTF-8");
			return IX_EINVAL;
		}
		buf_append(&u, name, len);
	} else if (mutf7_to_utf8(name, len, &u, error_r) != 0) {
		buf_free(&u);
		return IX_EINVAL;
	}
	while (u.len > 0 && u.data[u.len - 1] == '/')
		u.data[--u.len] = '\0';
	size_t pl = 0;
	int ret = 0;
	if (has_prefix_ci(buf_cstr(&u), u.len, IMAP_NS_PUBLIC, &pl)) {
		const char *f = buf_cstr(&u) + pl;
		if (*f == '\0') {
			ret = IX_ENOTFOUND;
		} else {
			if (create_public)
				public_sync(s);
			*guid_r = xstrdup(STORE_PUBLIC_GUID);
			*folder_r = xstrdup(f);
			*rights_r = rights_on(s, *guid_r, f);
		}
	} else if (has_prefix_ci(buf_cstr(&u), u.len, IMAP_NS_OTHER, &pl)) {
		const char *rest = buf_cstr(&u) + pl;
		const char *slash = strchr(rest, '/');
		struct login_user other;
		char *login = slash != NULL ? xstrndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
		if (slash == NULL || slash[1] == '\0' ||
		    s->srv->ls.cfg.users.lookup(s->srv->ls.cfg.users.ctx, login, &other) != 0) {
			ret = IX_ENOTFOUND;
		} else {
			*guid_r = xstrdup(other.guid);
			*folder_r = xstrdup(slash + 1);
			snprintf(s->other_guid, sizeof(s->other_guid), "%s", other.guid);
			s->other_quota_bytes = other.quota_bytes;
			s->other_quota_messages = other.quota_messages;
			*rights_r = rights_on(s, *guid_r, *folder_r);
			login_user_free(&other);
		}
		free(login);
	} else {
		if (u.len == 0 || mutf7_mailbox_name_check(buf_cstr(&u), u.len, '/', error_r) != 0) {
			if (u.len == 0)
				buf_append_str(error_r, "Empty mailbox name");
			ret = IX_EINVAL;
		} else {
			*guid_r = xstrdup(s->ls.user.guid);
			*folder_r = xstrdup(buf_cstr(&u));
			*rights_r = STORE_RIGHTS_ALL;
		}
	}
	if (ret == IX_ENOTFOUND && error_r != NULL && error_r->len == 0)
		buf_append_str(error_r, "Mailbox doesn't exist");
	buf_free(&u);
	return ret;
}

/* Writes a UTF-8 folder name as the client sees it (modified UTF-7, quoted). */
static void write_mailbox(struct imap_session *s, struct buf *out, const char *utf8)
{
	struct buf m = BUF_INIT, err = BUF_INIT;
	if (s->utf8 || mutf7_from_utf8(utf8, strlen(utf8), &m, &err) != 0) {
		buf_reset(&m);
		buf_append_str(&m, utf8);
	}
	buf_free(&err);
	imap_write_string(out, m.data != NULL ? m.data : "", m.len, s->utf8 ? IMAP_WRITE_UTF8 : 0);
	buf_free(&m);
}

static const char *arg_mailbox(const struct imap_command *cmd, size_t i, size_t *len_r)
{
	const char *name;
	if (i >= cmd->arg_count || !imap_arg_get_mailbox(&cmd->args[i], &name, len_r))
		return NULL;
	return name;
}

static void store_error_reply(struct imap_session *s, const char *tag, int ret, const struct buf *err)
{
	const char *code = ret == IX_ENOTFOUND ? "[NONEXISTENT] "
			   : ret == IX_EEXIST  ? "[ALREADYEXISTS] "
			   : ret == IX_ELIMIT  ? "[OVERQUOTA] "
			   : ret == IX_EPERM   ? "[NOPERM] "
			   : ret == IX_EINVAL  ? "[CANNOT] "
					       : "[SERVERBUG] ";
	imap_tagged(s, tag, "NO %s%s", code, err->len > 0 ? buf_cstr(err) : ix_strerror(ret));
}

/* ---- commands: any state ---- */

static void cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	buf_append_str(&s->out, "* CAPABILITY ");
	capabilities(s, &s->out);
	buf_append_str(&s->out, "\r\n");
	imap_tagged(s, cmd->tag, "OK Capability completed.");
}

static void cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	if (s->state == IMAP_ST_SELECTED)
		imap_sync(s, true, true);
	imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
}

static void cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "* BYE Logging out");
	buf_printf(&s->out, "%s OK Logout completed.\r\n", cmd->tag);
	imap_flush_out(s);
	s->state = IMAP_ST_LOGOUT;
	s->ls.closing = true;
	conn_close_after_flush(s->ls.conn);
}

static void cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->arg_count != 1 || (cmd->args[0].type != IMAP_ARG_NIL && cmd->args[0].type != IMAP_ARG_LIST) ||
	    (cmd->args[0].type == IMAP_ARG_LIST &&
	     (cmd->args[0].list_count % 2 != 0 || cmd->args[0].list_count > 2 * IMAP_ID_FIELDS_MAX))) {
		imap_tagged(s, cmd->tag, "BAD ID needs NIL or a list of up to 30 field-value pairs");
		return;
	}
	imap_reply(s, "* ID (\"name\" \"Interchange\" \"vendor\" \"Interchange\")");
	imap_tagged(s, cmd->tag, "OK ID completed.");
}

static void cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf en = BUF_INIT;
	for (size_t i = 0; i < cmd->arg_count; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM) {
			buf_free(&en);
			imap_tagged(s, cmd->tag, "BAD ENABLE takes capability names");
			return;
		}
		if (imap_arg_atom_equals(&cmd->args[i], "CONDSTORE") && !s->condstore) {
			s->condstore = true;
			buf_append_str(&en, " CONDSTORE");
		} else if (imap_arg_atom_equals(&cmd->args[i], "QRESYNC") && !s->qresync) {
			s->qresync = s->condstore = true;
			buf_append_str(&en, " QRESYNC");
		} else if (imap_arg_atom_equals(&cmd->args[i], "UTF8=ACCEPT") && !s->utf8) {
			s->utf8 = true;
			buf_append_str(&en, " UTF8=ACCEPT");
		}
	}
	if (cmd->arg_count == 0) {
		imap_tagged(s, cmd->tag, "BAD ENABLE needs arguments");
	} else {
		imap_reply(s, "* ENABLED%s", buf_cstr(&en));
		imap_tagged(s, cmd->tag, "OK Enabled.");
	}
	buf_free(&en);
}

/* ---- login (the login core does the work: transport/login/login_session.h) ---- */

bool imap_job_finished(struct imap_session *s)
{
	return login_job_finished(&s->ls);
}

void imap_start_job(struct imap_session *s, workpool_fn *run, workpool_fn *done, void *arg)
{
	login_start_job(&s->ls, run, done, arg);
}

static void cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	const char *user, *pass;
	size_t ulen, plen;
	if (cmd->arg_count != 2 || !imap_arg_get_astring(&cmd->args[0], &user, &ulen) ||
	    !imap_arg_get_astring(&cmd->args[1], &pass, &plen)) {
		imap_tagged(s, cmd->tag, "BAD LOGIN needs a user name and a password");
		return;
	}
	if (!s->ls.secure) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] Plaintext login is disabled: use STARTTLS first.");
		return;
	}
	if (ulen == 0 || ulen > IX_SASL_USER_MAX || plen > IX_SASL_PASS_MAX || memchr(user, '\0', ulen) != NULL) {
		login_failed(&s->ls, "(bad user name)", "malformed");
		imap_tagged(s, cmd->tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
		return;
	}
	if (!login_throttled(&s->ls, cmd->tag))
		login_password(&s->ls, cmd->tag, user, ulen, pass, plen);
}

static void cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	const char *mech, *ir = NULL;
	size_t mlen, irlen = 0;
	if (cmd->arg_count < 1 || cmd->arg_count > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    !imap_arg_get_astring(&cmd->args[0], &mech, &mlen) ||
	    (cmd->arg_count == 2 && !imap_arg_get_astring(&cmd->args[1], &ir, &irlen))) {
		imap_tagged(s, cmd->tag, "BAD AUTHENTICATE needs a mechanism and an optional initial response");
		return;
	}
	if (!s->ls.secure) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] Authentication is disabled without TLS: use STARTTLS.");
		return;
	}
	if (login_throttled(&s->ls, cmd->tag))
		return;
	free(s->tag);
	s->tag = xstrdup(cmd->tag);
	login_sasl_start(&s->ls, cmd->tag, mech, mlen, ir, irlen);
}

static void sasl_line(struct imap_session *s, const char *line, size_t len)
{
	login_sasl_response(&s->ls, s->tag != NULL ? s->tag : "*", line, len);
}

static void cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	if (s->srv->ls.cfg.tls == NULL || conn_is_tls(s->ls.conn)) {
		imap_tagged(s, cmd->tag, "BAD TLS is %s", conn_is_tls(s->ls.conn) ? "already active" : "not available");
		return;
	}
	imap_tagged(s, cmd->tag, "OK Begin TLS negotiation now.");
	login_start_tls(&s->ls, "STARTTLS");
	imap_parser_reset(s->parser);
}

/* ---- folders ---- */

static void cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	bool examine = strcmp(cmd->name, "EXAMINE") == 0;
	size_t len;
	const char *name = arg_mailbox(cmd, 0, &len);
	bool want_condstore = false, want_qresync = false;
	uint32_t q_uidvalidity = 0;
	uint64_t q_modseq = 0;
	struct imap_seqset q_known = { 0 };
	bool have_known = false;
	if (name == NULL || cmd->arg_count > 2 || (cmd->arg_count == 2 && cmd->args[1].type != IMAP_ARG_LIST)) {
		imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name and optional parameters", cmd->name);
		return;
	}
	if (cmd->arg_count == 2) {
		const struct imap_arg *p = &cmd->args[1];
		for (size_t i = 0; i < p->list_count; i++) {
			if (imap_arg_atom_equals(&p->list[i], "CONDSTORE")) {
				want_condstore = true;
			} else if (imap_arg_atom_equals(&p->list[i], "QRESYNC") && i + 1 < p->list_count &&
				   p->list[i + 1].type == IMAP_ARG_LIST && s->qresync) {
				const struct imap_arg *q = &p->list[++i];
				uint64_t v;
				if (q->list_count < 2 || !imap_arg_get_number(&q->list[0], UINT32_MAX, &v) ||
				    !imap_arg_get_number(&q->list[1], UINT64_MAX, &q_modseq)) {
					imap_tagged(s, cmd->tag, "BAD Bad QRESYNC parameters");
					return;
				}
				q_uidvalidity = (uint32_t)v;
				if (q->list_count >= 3 && q->list[2].type == IMAP_ARG_ATOM) {
					struct buf perr = BUF_INIT;
					int pret = imap_seqset_parse(q->list[2].str, q->list[2].len, false, &q_known, &perr);
					buf_free(&perr);
					if (pret != 0) {
						imap_tagged(s, cmd->tag, "BAD Bad known-uids in QRESYNC");
						return;
					}
					have_known = true;
				}
				want_qresync = true;
			} else {
				imap_tagged(s, cmd->tag, "BAD Unknown %s parameter (QRESYNC needs ENABLE QRESYNC)",
					    cmd->name);
				return;
			}
		}
	}
	if (s->state == IMAP_ST_SELECTED) {
		deselect(s);
		if (s->qresync)
			imap_reply(s, "* OK [CLOSED] Previous mailbox closed.");
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	struct store_folder_info info = { 0 };
	if (ret == 0 && !(rights & STORE_RIGHT_READ)) {
		ret = (rights & STORE_RIGHT_LOOKUP) ? IX_EPERM : IX_ENOTFOUND;
		buf_reset(&err);
		buf_append_str(&err, ret == IX_EPERM ? "You may not read this mailbox" : "Mailbox doesn't exist");
	}
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		store_mailbox_ensure(s->srv->ls.cfg.store, guid, NULL);
	if (ret == 0)
		ret = store_folder_status(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &info, &err);
	struct store_msg *list = NULL;
	size_t n = 0;
	if (ret == 0)
		ret = store_msg_list(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &list, &n, &err);
	if (ret != 0) {
		if (ret == IX_ENOTFOUND) {
			buf_reset(&err);
			buf_append_str(&err, "Mailbox doesn't exist");
		}
		store_error_reply(s, cmd->tag, ret, &err);
		goto out;
	}
	if (want_condstore || want_qresync)
		s->condstore = true;
	s->sel_guid = guid;
	s->sel_folder = folder;
	guid = folder = NULL;
	s->rights = rights;
	s->readonly = examine || !(rights & (STORE_RIGHT_SEEN | STORE_RIGHT_WRITE | STORE_RIGHT_DELMSG));
	s->uidvalidity = info.uidvalidity;
	s->uidnext = info.uidnext;
	s->highestmodseq = info.highestmodseq;
	s->cap = n > 16 ? n : 16;
	s->msgs = xcalloc(s->cap, sizeof(*s->msgs));
	size_t recent = 0, first_unseen = 0;
	for (size_t i = 0; i < n; i++) {
		s->msgs[i] = (struct imap_msg){ list[i].uid, list[i].flags, list[i].modseq };
		if (list[i].flags & STORE_FLAG_RECENT)
			recent++;
		if (!(list[i].flags & STORE_FLAG_SEEN) && first_unseen == 0)
			first_unseen = i + 1;
		if (list[i].modseq > s->highestmodseq)
			s->highestmodseq = list[i].modseq;
	}
	s->count = n;
	s->state = IMAP_ST_SELECTED;
	if (recent > 0 && !s->readonly)
		clear_recent_async(s);
	s->watch = watch_acquire(s->srv, s->sel_guid);
	s->dirty = s->watch->w == NULL;

	imap_reply(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
	imap_reply(s, "* OK [PERMANENTFLAGS (%s\\*)] Flags permitted.",
		   s->readonly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft ");
	imap_reply(s, "* %zu EXISTS", n);
	imap_reply(s, "* %zu RECENT", recent);
	if (first_unseen > 0)
		imap_reply(s, "* OK [UNSEEN %zu] First unseen.", first_unseen);
	imap_reply(s, "* OK [UIDVALIDITY %u] UIDs valid.", s->uidvalidity);
	imap_reply(s, "* OK [UIDNEXT %u] Predicted next UID.", s->uidnext);
	imap_reply(s, "* OK [HIGHESTMODSEQ %llu] Highest.", (unsigned long long)s->highestmodseq);
	if (want_qresync && q_uidvalidity == s->uidvalidity) {
		struct store_change *ch = NULL;
		size_t nch = 0;
		if (store_changes(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, q_modseq, &ch, &nch, NULL) == 0) {
			uint32_t *van = xcalloc(nch + 1, sizeof(*van));
			size_t nvan = 0;
			for (size_t i = 0; i < nch; i++)
				if (ch[i].expunged && (!have_known || imap_seqset_contains(&q_known, ch[i].uid, UINT32_MAX)))
					van[nvan++] = ch[i].uid;
			/* VANISHED wants ascending UIDs */
			for (size_t a = 1; a < nvan; a++)
				for (size_t b = a; b > 0 && van[b - 1] > van[b]; b--) {
					uint32_t t = van[b];
					van[b] = van[b - 1];
					van[b - 1] = t;
				}
			if (nvan > 0) {
				buf_append_str(&s->out, "* VANISHED (EARLIER) ");
				imap_write_seqset(&s->out, van, nvan);
				buf_append_str(&s->out, "\r\n");
			}
			free(van);
			for (size_t i = 0; i < n; i++)
				if (list[i].modseq > q_modseq)
					write_fetch_flags(s, i, &list[i]);
			free(ch);
		}
	}
	imap_tagged(s, cmd->tag, "OK [%s] %s completed.", s->readonly ? "READ-ONLY" : "READ-WRITE", cmd->name);
out:
	store_msg_list_free(&list, n);
	if (info.name != NULL)
		store_folder_info_free(&info);
	if (have_known)
		imap_seqset_free(&q_known);
	free(guid);
	free(folder);
	buf_free(&err);
}

static void cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count > 2) {
		imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) != 0) {
		/* creating in someone else's hierarchy needs k on the parent */
		char *parent = xstrdup(folder);
		char *slash = strrchr(parent, '/');
		unsigned prights = 0;
		if (slash != NULL) {
			*slash = '\0';
			prights = rights_on(s, guid, parent);
		}
		free(parent);
		if (!(prights & STORE_RIGHT_CREATE)) {
			ret = IX_EPERM;
			buf_append_str(&err, "You may not create folders here");
		}
	}
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		store_mailbox_ensure(s->srv->ls.cfg.store, guid, NULL);
	if (ret == 0)
		ret = store_folder_create(s->srv->ls.cfg.store, guid, folder, &err);
	if (ret == 0)
		imap_tagged(s, cmd->tag, "OK Create completed.");
	else if (ret == IX_EINVAL && err.len > 0 && guid == NULL)
		imap_tagged(s, cmd->tag, "NO [CANNOT] %s", buf_cstr(&err));
	else
		store_error_reply(s, cmd->tag, ret, &err);
	free(guid);
	free(folder);
	buf_free(&err);
}

struct delete_job {
	struct imap_session *s;
	char *tag, *guid, *folder;
	int ret;
	struct buf err;
};

static void delete_run(void *arg)
{
	struct delete_job *j = arg;
	j->ret = store_folder_delete(j->s->srv->ls.cfg.store, j->guid, j->folder, &j->err);
}

static void delete_done(void *arg)
{
	struct delete_job *j = arg;
	struct imap_session *s = j->s;
	if (imap_job_finished(s)) {
		if (j->ret == 0)
			imap_tagged(s, j->tag, "OK Delete completed.");
		else
			store_error_reply(s, j->tag, j->ret, &j->err);
		imap_resume(s);
	}
	free(j->tag);
	free(j->guid);
	free(j->folder);
	buf_free(&j->err);
	free(j);
}

static void cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 1) {
		imap_tagged(s, cmd->tag, "BAD DELETE needs a mailbox name");
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, false, &guid, &folder, &rights, &err);
	if (ret == 0 && !(rights & STORE_RIGHT_DELETE)) {
		ret = IX_EPERM;
		buf_append_str(&err, "You may not delete this mailbox");
	}
	if (ret == 0 && strcasecmp(folder, "INBOX") == 0) {
		ret = IX_EINVAL;
		buf_append_str(&err, "INBOX cannot be deleted");
	}
	if (ret == 0 && s->state == IMAP_ST_SELECTED && strcasecmp(guid, s->sel_guid) == 0 &&
	    strcmp(folder, s->sel_folder) == 0) {
		deselect(s);
		if (s->qresync)
			imap_reply(s, "* OK [CLOSED] Mailbox closed.");
	}
	if (ret == 0) {
		/* the delete itself is a synced write: on the pool (the view was released here, on the loop) */
		struct delete_job *j = xcalloc(1, sizeof(*j));
		j->s = s;
		j->tag = xstrdup(cmd->tag);
		j->guid = guid;
		j->folder = folder;
		imap_start_job(s, delete_run, delete_done, j);
		buf_free(&err);
		return;
	}
	store_error_reply(s, cmd->tag, ret, &err);
	free(guid);
	free(folder);
	buf_free(&err);
}

static void cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	size_t l1, l2;
	const char *from = arg_mailbox(cmd, 0, &l1), *to = arg_mailbox(cmd, 1, &l2);
	if (from == NULL || to == NULL || cmd->arg_count != 2) {
		imap_tagged(s, cmd->tag, "BAD RENAME needs two mailbox names");
		return;
	}
	char *g1 = NULL, *f1 = NULL, *g2 = NULL, *f2 = NULL;
	unsigned r1 = 0, r2 = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, from, l1, false, &g1, &f1, &r1, &err);
	if (ret == 0)
		ret = imap_resolve_mailbox(s, to, l2, false, &g2, &f2, &r2, &err);
	if (ret == 0 && strcasecmp(g1, g2) != 0) {
		ret = IX_EINVAL;
		buf_append_str(&err, "Cannot rename into another namespace");
	}
	if (ret == 0 && !(r1 & STORE_RIGHT_DELETE)) {
		ret = IX_EPERM;
		buf_append_str(&err, "You may not rename this mailbox");
	}
	if (ret == 0 && strcasecmp(f1, "INBOX") == 0) {
		/* RFC 3501: renaming INBOX moves its messages to the new folder and leaves INBOX empty */
		ret = store_folder_create(s->srv->ls.cfg.store, g1, f2, &err);
		struct store_msg *list = NULL;
		size_t n = 0;
		if (ret == 0)
			ret = store_msg_list(s->srv->ls.cfg.store, g1, "INBOX", NULL, &list, &n, &err);
		if (ret == 0 && n > 0) {
			uint32_t *uids = xcalloc(n, sizeof(*uids));
			for (size_t i = 0; i < n; i++)
				uids[i] = list[i].uid;
			ret = store_copy(s->srv->ls.cfg.store, g1, "INBOX", uids, n, g1, f2, 1, 0, 0, NULL, NULL, &err);
			free(uids);
		}
		store_msg_list_free(&list, n);
	} else if (ret == 0) {
		ret = store_folder_rename(s->srv->ls.cfg.store, g1, f1, f2, &err);
		size_t flen = strlen(f1);
		if (ret == 0 && s->state == IMAP_ST_SELECTED && strcasecmp(s->sel_guid, g1) == 0 &&
		    strncmp(s->sel_folder, f1, flen) == 0 &&
		    (s->sel_folder[flen] == '\0' || s->sel_folder[flen] == '/')) {
			/* the selected folder (or one below it) moved: follow it (its UIDs and UIDVALIDITY stay) */
			char *moved = xasprintf("%s%s", f2, s->sel_folder + flen);
			free(s->sel_folder);
			s->sel_folder = moved;
		}
	}
	if (ret == 0)
		imap_tagged(s, cmd->tag, "OK Rename completed.");
	else
		store_error_reply(s, cmd->tag, ret, &err);
	free(g1);
	free(f1);
	free(g2);
	free(f2);
	buf_free(&err);
}

static void cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 1) {
		imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, false, &guid, &folder, &rights, &err);
	bool on = strcmp(cmd->name, "SUBSCRIBE") == 0;
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		ret = store_folder_subscribe(s->srv->ls.cfg.store, guid, folder, on, &err);
	else if (ret == 0 && !(rights & STORE_RIGHT_LOOKUP))
		ret = IX_ENOTFOUND;
	if (ret == 0)
		imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
	else
		store_error_reply(s, cmd->tag, ret, &err);
	free(guid);
	free(folder);
	buf_free(&err);
}

/* ---- LIST ---- */

/* IMAP LIST matching: '*' matches anything, '%' anything but the separator. Dynamic programming over one row per
 * pattern byte: O(pattern x name) whatever the wildcards (backtracking would be exponential in them). */
static bool list_match(const char *pat, const char *name)
{
	size_t n = strlen(name);
	bool *prev = xcalloc(n + 1, sizeof(bool)), *cur = xcalloc(n + 1, sizeof(bool));
	prev[0] = true;
	for (; *pat != '\0'; pat++) {
		char c = *pat;
		cur[0] = (c == '*' || c == '%') && prev[0];
		for (size_t j = 1; j <= n; j++) {
			if (c == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (c == '%')
				cur[j] = prev[j] || (cur[j - 1] && name[j - 1] != '/');
			else
				cur[j] = prev[j - 1] && name[j - 1] == c;
		}
		bool *t = prev;
		prev = cur;
		cur = t;
	}
	bool r = prev[n];
	free(prev);
	free(cur);
	return r;
}

static bool pattern_match(const char *pat, const char *name)
{
	/* INBOX matches case-insensitively */
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/') &&
	    strncasecmp(pat, "INBOX", 5) == 0) {
		char *p2 = xstrdup(pat), *n2 = xstrdup(name);
		memcpy(p2, "INBOX", 5);
		memcpy(n2, "INBOX", 5);
		bool r = list_match(p2, n2);
		free(p2);
		free(n2);
		return r;
	}
	return list_match(pat, name);
}

struct list_entry {
	char *name; /* UTF-8, full client name */
	char *guid, *folder;
	bool noselect, subscribed;
	enum store_special_use use;
};

struct list_set {
	struct list_entry *v;
	size_t n, cap;
};

static void list_add(struct list_set *ls, const char *name, const char *guid, const char *folder, bool noselect,
		     bool subscribed, enum store_special_use use)
{
	if (ls->n == ls->cap) {
		ls->cap = ls->cap < 16 ? 16 : ls->cap * 2;
		ls->v = xrealloc(ls->v, ls->cap * sizeof(*ls->v));
	}
	ls->v[ls->n++] = (struct list_entry){ xstrdup(name), guid ? xstrdup(guid) : NULL,
					      folder ? xstrdup(folder) : NULL, noselect, subscribed, use };
}

static void list_free(struct list_set *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->v[i].name);
		free(ls->v[i].guid);
		free(ls->v[i].folder);
	}
	free(ls->v);
}

static void list_folders_of(struct imap_session *s, struct list_set *ls, const char *guid, const char *prefix,
			    bool own)
{
	struct store_folder_info *fl = NULL;
	size_t n = 0;
	if (store_folder_list(s->srv->ls.cfg.store, guid, imap_user_id(s), &fl, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!own && !(rights_on(s, guid, fl[i].name) & STORE_RIGHT_LOOKUP))
			continue;
		char *full = xasprintf("%s%s", prefix, fl[i].name);
		list_add(ls, full, guid, fl[i].name, false, own ? fl[i].subscribed != 0 : true, fl[i].special_use);
		free(full);
	}
	store_folder_list_free(&fl, n);
}

/* Adds "Other Users/<login>" (\Noselect) and the folders of every user that shares something with us (l right). */
static void list_other_users(struct imap_session *s, struct list_set *ls)
{
	struct buf logins = BUF_INIT;
	s->srv->ls.cfg.users.users(s->srv->ls.cfg.users.ctx, &logins);
	for (size_t i = 0; i < logins.len;) {
		const char *login = logins.data + i;
		i += strlen(login) + 1;
		struct login_user other;
		if (strcasecmp(login, s->ls.user.login) == 0 ||
		    s->srv->ls.cfg.users.lookup(s->srv->ls.cfg.users.ctx, login, &other) != 0)
			continue;
		char *prefix = xasprintf("%s/%s/", IMAP_NS_OTHER, other.login);
		size_t before = ls->n;
		list_folders_of(s, ls, other.guid, prefix, false);
		if (ls->n > before) {
			prefix[strlen(prefix) - 1] = '\0';
			list_add(ls, prefix, NULL, NULL, true, false, STORE_USE_NONE);
		}
		free(prefix);
		login_user_free(&other);
	}
	buf_free(&logins);
}

static void cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	bool lsub = strcmp(cmd->name, "LSUB") == 0;
	size_t i = 0;
	bool sel_subscribed = false, sel_special = false, ret_children = true, ret_special = false,
	     ret_subscribed = lsub;
	const struct imap_arg *status_items = NULL;
	if (!lsub && cmd->arg_count > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		for (size_t k = 0; k < cmd->args[0].list_count; k++) {
			const struct imap_arg *a = &cmd->args[0].list[k];
			if (imap_arg_atom_equals(a, "SUBSCRIBED"))
				sel_subscribed = ret_subscribed = true;
			else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
				sel_special = ret_special = true;
			else if (!imap_arg_atom_equals(a, "REMOTE") && !imap_arg_atom_equals(a, "RECURSIVEMATCH")) {
				imap_tagged(s, cmd->tag, "BAD Unknown LIST selection option");
				return;
			}
		}
		i = 1;
	}
	const char *ref;
	size_t rlen;
	if (i + 2 > cmd->arg_count || !imap_arg_get_astring(&cmd->args[i], &ref, &rlen)) {
		imap_tagged(s, cmd->tag, "BAD %s needs a reference and a pattern", cmd->name);
		return;
	}
	const struct imap_arg *pats = &cmd->args[i + 1];
	size_t npats = 1;
	if (pats->type == IMAP_ARG_LIST) {
		npats = pats->list_count;
		pats = pats->list;
	}
	if (i + 2 < cmd->arg_count) {
		if (lsub || i + 4 != cmd->arg_count || !imap_arg_atom_equals(&cmd->args[i + 2], "RETURN") ||
		    cmd->args[i + 3].type != IMAP_ARG_LIST) {
			imap_tagged(s, cmd->tag, "BAD Bad LIST arguments");
			return;
		}
		const struct imap_arg *r = &cmd->args[i + 3];
		for (size_t k = 0; k < r->list_count; k++) {
			const struct imap_arg *a = &r->list[k];
			if (imap_arg_atom_equals(a, "SUBSCRIBED"))
				ret_subscribed = true;
			else if (imap_arg_atom_equals(a, "CHILDREN"))
				ret_children = true;
			else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
				ret_special = true;
			else if (imap_arg_atom_equals(a, "STATUS") && k + 1 < r->list_count &&
				 r->list[k + 1].type == IMAP_ARG_LIST)
				status_items = &r->list[++k];
			else {
				imap_tagged(s, cmd->tag, "BAD Unknown LIST return option");
				return;
			}
		}
	}
	(void)ret_special;
	struct list_set ls = { 0 };
	bool built = false, other_listed = false;
	for (size_t p = 0; p < npats; p++) {
		const char *pat;
		size_t plen;
		if (!imap_arg_get_astring(&pats[p], &pat, &plen)) {
			imap_tagged(s, cmd->tag, "BAD Bad pattern");
			list_free(&ls);
			return;
		}
		if (plen == 0 && !sel_subscribed && !lsub) {
			imap_reply(s, "* LIST (\\Noselect) \"/\" \"\"");
			continue;
		}
		struct buf full = BUF_INIT, u = BUF_INIT, merr = BUF_INIT;
		buf_append(&full, ref, rlen);
		buf_append(&full, pat, plen);
		if (s->utf8 || mutf7_to_utf8(buf_cstr(&full), full.len, &u, &merr) != 0) {
			buf_reset(&u);
			buf_append(&u, buf_cstr(&full), full.len);
		}
		buf_free(&merr);
		if (!built) {
			built = true;
			list_folders_of(s, &ls, s->ls.user.guid, "", true);
			list_add(&ls, IMAP_NS_OTHER, NULL, NULL, true, false, STORE_USE_NONE);
			list_add(&ls, IMAP_NS_PUBLIC, NULL, NULL, true, false, STORE_USE_NONE);
			if (strncasecmp(buf_cstr(&u), IMAP_NS_PUBLIC, strlen(IMAP_NS_PUBLIC)) == 0 ||
			    buf_cstr(&u)[0] == '*') {
				public_sync(s);
				list_folders_of(s, &ls, STORE_PUBLIC_GUID, IMAP_NS_PUBLIC "/", false);
			}
		}
		size_t ol = strlen(IMAP_NS_OTHER);
		if (strncasecmp(buf_cstr(&u), IMAP_NS_OTHER "/", ol + 1) == 0) {
			const char *rest = buf_cstr(&u) + ol + 1;
			size_t ll = strcspn(rest, "/*%");
			if (rest[ll] != '/' && !other_listed && s->srv->ls.cfg.users.users != NULL) {
				/* a wildcard in the user level: every user with something shared with us */
				other_listed = true;
				list_other_users(s, &ls);
			}
			if (rest[ll] == '/') {
				char *login = xstrndup(rest, ll);
				struct login_user other;
				if (s->srv->ls.cfg.users.lookup(s->srv->ls.cfg.users.ctx, login, &other) == 0) {
					char *prefix = xasprintf("%s/%s/", IMAP_NS_OTHER, login);
					list_folders_of(s, &ls, other.guid, prefix, false);
					free(prefix);
					login_user_free(&other);
				}
				free(login);
			}
		}
		for (size_t k = 0; k < ls.n; k++) {
			struct list_entry *e = &ls.v[k];
			if (!pattern_match(buf_cstr(&u), e->name))
				continue;
			if ((sel_subscribed || lsub) && !e->subscribed)
				continue;
			if (sel_special && e->use <= STORE_USE_INBOX)
				continue;
			bool children = false;
			size_t nl = strlen(e->name);
			for (size_t c = 0; c < ls.n && !children; c++)
				children = strncmp(ls.v[c].name, e->name, nl) == 0 && ls.v[c].name[nl] == '/';
			buf_printf(&s->out, "* %s (", lsub ? "LSUB" : "LIST");
			size_t mark = s->out.len;
			if (e->noselect)
				buf_append_str(&s->out, "\\Noselect ");
			if (ret_children)
				buf_append_str(&s->out, children ? "\\HasChildren " : "\\HasNoChildren ");
			if (ret_subscribed && e->subscribed && !lsub)
				buf_append_str(&s->out, "\\Subscribed ");
			if (e->use > STORE_USE_INBOX)
				buf_printf(&s->out, "%s ", store_special_use_name(e->use));
			if (s->out.len > mark)
				s->out.data[--s->out.len] = '\0';
			buf_append_str(&s->out, ") \"/\" ");
			write_mailbox(s, &s->out, e->name);
			buf_append_str(&s->out, "\r\n");
			if (status_items != NULL && !e->noselect) {
				struct store_folder_info info;
				if (store_folder_status(s->srv->ls.cfg.store, e->guid, e->folder, imap_user_id(s), &info,
							NULL) == 0) {
					buf_append_str(&s->out, "* STATUS ");
					write_mailbox(s, &s->out, e->name);
					buf_append_str(&s->out, " (");
					for (size_t t = 0; t < status_items->list_count; t++) {
						const struct imap_arg *a = &status_items->list[t];
						const char *sep = t > 0 ? " " : "";
						if (imap_arg_atom_equals(a, "MESSAGES"))
							buf_printf(&s->out, "%sMESSAGES %u", sep, info.messages);
						else if (imap_arg_atom_equals(a, "UNSEEN"))
							buf_printf(&s->out, "%sUNSEEN %u", sep, info.unseen);
						else if (imap_arg_atom_equals(a, "RECENT"))
							buf_printf(&s->out, "%sRECENT %u", sep, info.recent);
						else if (imap_arg_atom_equals(a, "UIDNEXT"))
							buf_printf(&s->out, "%sUIDNEXT %u", sep, info.uidnext);
						else if (imap_arg_atom_equals(a, "UIDVALIDITY"))
							buf_printf(&s->out, "%sUIDVALIDITY %u", sep, info.uidvalidity);
						else if (imap_arg_atom_equals(a, "HIGHESTMODSEQ"))
							buf_printf(&s->out, "%sHIGHESTMODSEQ %llu", sep,
								   (unsigned long long)info.highestmodseq);
						else if (imap_arg_atom_equals(a, "SIZE"))
							buf_printf(&s->out, "%sSIZE %llu", sep,
								   (unsigned long long)info.size);
					}
					buf_append_str(&s->out, ")\r\n");
					store_folder_info_free(&info);
				}
			}
		}
		buf_free(&full);
		buf_free(&u);
	}
	list_free(&ls);
	imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
}

static void cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "* NAMESPACE ((\"\" \"/\")) ((\"" IMAP_NS_OTHER "/\" \"/\")) ((\"" IMAP_NS_PUBLIC "/\" \"/\"))");
	imap_tagged(s, cmd->tag, "OK Namespace completed.");
}

static void cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 2 || cmd->args[1].type != IMAP_ARG_LIST ||
	    cmd->args[1].list_count == 0) {
		imap_tagged(s, cmd->tag, "BAD STATUS needs a mailbox name and a list of items");
		return;
	}
	const struct imap_arg *items = &cmd->args[1];
	for (size_t t = 0; t < items->list_count; t++) {
		const struct imap_arg *a = &items->list[t];
		if (!imap_arg_atom_equals(a, "MESSAGES") && !imap_arg_atom_equals(a, "UNSEEN") &&
		    !imap_arg_atom_equals(a, "RECENT") && !imap_arg_atom_equals(a, "UIDNEXT") &&
		    !imap_arg_atom_equals(a, "UIDVALIDITY") && !imap_arg_atom_equals(a, "HIGHESTMODSEQ") &&
		    !imap_arg_atom_equals(a, "SIZE")) {
			imap_tagged(s, cmd->tag, "BAD Unknown STATUS item");
			return;
		}
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	if (ret == 0 && !(rights & STORE_RIGHT_READ))
		ret = IX_ENOTFOUND;
	struct store_folder_info info;
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		store_mailbox_ensure(s->srv->ls.cfg.store, guid, NULL);
	if (ret == 0)
		ret = store_folder_status(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &info, &err);
	if (ret != 0) {
		if (ret == IX_ENOTFOUND) {
			buf_reset(&err);
			buf_append_str(&err, "Mailbox doesn't exist");
		}
		store_error_reply(s, cmd->tag, ret, &err);
	} else {
		buf_append_str(&s->out, "* STATUS ");
		imap_write_astring(&s->out, name, len, 0);
		buf_append_str(&s->out, " (");
		for (size_t t = 0; t < items->list_count; t++) {
			const struct imap_arg *a = &items->list[t];
			const char *sep = t > 0 ? " " : "";
			if (imap_arg_atom_equals(a, "MESSAGES"))
				buf_printf(&s->out, "%sMESSAGES %u", sep, info.messages);
			else if (imap_arg_atom_equals(a, "UNSEEN"))
				buf_printf(&s->out, "%sUNSEEN %u", sep, info.unseen);
			else if (imap_arg_atom_equals(a, "RECENT"))
				buf_printf(&s->out, "%sRECENT %u", sep, info.recent);
			else if (imap_arg_atom_equals(a, "UIDNEXT"))
				buf_printf(&s->out, "%sUIDNEXT %u", sep, info.uidnext);
			else if (imap_arg_atom_equals(a, "UIDVALIDITY"))
				buf_printf(&s->out, "%sUIDVALIDITY %u", sep, info.uidvalidity);
			else if (imap_arg_atom_equals(a, "HIGHESTMODSEQ"))
				buf_printf(&s->out, "%sHIGHESTMODSEQ %llu", sep, (unsigned long long)info.highestmodseq);
			else if (imap_arg_atom_equals(a, "SIZE"))
				buf_printf(&s->out, "%sSIZE %llu", sep, (unsigned long long)info.size);
		}
		buf_append_str(&s->out, ")\r\n");
		store_folder_info_free(&info);
		imap_tagged(s, cmd->tag, "OK Status completed.");
	}
	free(guid);
	free(folder);
	buf_free(&err);
}

struct close_job {
	struct imap_session *s;
	struct store *st;
	char *tag, *guid, *folder;
};

static void close_run(void *arg)
{
	struct close_job *j = arg;
	store_expunge(j->st, j->guid, j->folder, NULL, 0, NULL, NULL, NULL);
}

static void close_done(void *arg)
{
	struct close_job *j = arg;
	struct imap_session *s = j->s;
	if (imap_job_finished(s)) {
		imap_tagged(s, j->tag, "OK CLOSE completed.");
		imap_resume(s);
	}
	free(j->tag);
	free(j->guid);
	free(j->folder);
	free(j);
}

static void cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	bool close = strcmp(cmd->name, "CLOSE") == 0;
	bool expunge = close && !s->readonly && (s->rights & STORE_RIGHT_EXPUNGE);
	struct close_job *j = NULL;
	if (expunge) {
		/* the silent expunge is a synced write: on the pool, after the view is gone (no EXPUNGE responses) */
		j = xcalloc(1, sizeof(*j));
		j->s = s;
		j->st = s->srv->ls.cfg.store;
		j->tag = xstrdup(cmd->tag);
		j->guid = xstrdup(s->sel_guid);
		j->folder = xstrdup(s->sel_folder);
	}
	deselect(s);
	if (j != NULL)
		imap_start_job(s, close_run, close_done, j);
	else
		imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
}

static void cmd_check(struct imap_session *s, const struct imap_command *cmd)
{
	imap_sync(s, true, true);
	imap_tagged(s, cmd->tag, "OK Check completed.");
}

static void cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	free(s->tag);
	s->tag = xstrdup(cmd->tag);
	s->mode = IMAP_MODE_IDLE;
	if (s->state == IMAP_ST_SELECTED)
		imap_sync(s, true, true);
	imap_reply(s, "+ idling");
	imap_flush_out(s);
	if (s->state == IMAP_ST_SELECTED && (s->watch == NULL || s->watch->w == NULL))
		evloop_timer_start(s->srv->ls.cfg.loop, &s->timer, NOWATCH_POLL_MS, 0, session_timer, s);
}

static void idle_line(struct imap_session *s, const char *line, size_t len)
{
	s->mode = IMAP_MODE_COMMAND;
	evloop_timer_stop(s->srv->ls.cfg.loop, &s->timer);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_tagged(s, s->tag, "OK Idle completed.");
	else
		imap_tagged(s, s->tag, "BAD Expected DONE.");
}

/* ---- quota and ACL ---- */

static void write_quota(struct imap_session *s)
{
	struct store_quota_use use = { 0 };
	store_quota_get(s->srv->ls.cfg.store, s->ls.user.guid, &use, NULL);
	buf_append_str(&s->out, "* QUOTA \"\" (");
	bool any = false;
	if (s->ls.user.quota_bytes > 0) {
		buf_printf(&s->out, "STORAGE %llu %llu", (unsigned long long)((use.bytes + 1023) / 1024),
			   (unsigned long long)(s->ls.user.quota_bytes / 1024));
		any = true;
	}
	if (s->ls.user.quota_messages > 0)
		buf_printf(&s->out, "%sMESSAGE %llu %llu", any ? " " : "", (unsigned long long)use.messages,
			   (unsigned long long)s->ls.user.quota_messages);
	buf_append_str(&s->out, ")\r\n");
}

static void cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 1) {
		imap_tagged(s, cmd->tag, "BAD GETQUOTAROOT needs a mailbox name");
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, false, &guid, &folder, &rights, &err);
	if (ret != 0) {
		store_error_reply(s, cmd->tag, ret, &err);
	} else {
		buf_append_str(&s->out, "* QUOTAROOT ");
		imap_write_astring(&s->out, name, len, 0);
		if (strcasecmp(guid, s->ls.user.guid) == 0) {
			buf_append_str(&s->out, " \"\"\r\n");
			write_quota(s);
		} else {
			buf_append_str(&s->out, "\r\n");
		}
		imap_tagged(s, cmd->tag, "OK Getquotaroot completed.");
	}
	free(guid);
	free(folder);
	buf_free(&err);
}

static void cmd_getquota(struct imap_session *s, const struct imap_command *cmd)
{
	const char *root;
	size_t len;
	if (cmd->arg_count != 1 || !imap_arg_get_astring(&cmd->args[0], &root, &len)) {
		imap_tagged(s, cmd->tag, "BAD GETQUOTA needs a quota root");
		return;
	}
	if (len != 0) {
		imap_tagged(s, cmd->tag, "NO [NONEXISTENT] No such quota root.");
		return;
	}
	write_quota(s);
	imap_tagged(s, cmd->tag, "OK Getquota completed.");
}

static void cmd_setquota(struct imap_session *s, const struct imap_command *cmd)
{
	imap_tagged(s, cmd->tag, "NO [NOPERM] Quotas are set in the directory by an administrator.");
}

static void cmd_acl(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = arg_mailbox(cmd, 0, &len);
	bool get = strcmp(cmd->name, "GETACL") == 0, set = strcmp(cmd->name, "SETACL") == 0,
	     del = strcmp(cmd->name, "DELETEACL") == 0, my = strcmp(cmd->name, "MYRIGHTS") == 0,
	     listr = strcmp(cmd->name, "LISTRIGHTS") == 0;
	size_t want = get || my ? 1 : set ? 3 : 2;
	const char *id = NULL, *rs = NULL;
	size_t idlen = 0, rslen = 0;
	if (name == NULL || cmd->arg_count != want ||
	    (want >= 2 && !imap_arg_get_astring(&cmd->args[1], &id, &idlen)) ||
	    (want == 3 && !imap_arg_get_astring(&cmd->args[2], &rs, &rslen)) ||
	    (id != NULL && (idlen == 0 || idlen >= STORE_ACL_ID_MAX || memchr(id, '\0', idlen) != NULL))) {
		imap_tagged(s, cmd->tag, "BAD Bad %s arguments", cmd->name);
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT, tmp = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	if (ret == 0 && !(rights & (STORE_RIGHT_LOOKUP | STORE_RIGHT_ADMIN)))
		ret = IX_ENOTFOUND;
	if (ret == 0 && !my && !(rights & STORE_RIGHT_ADMIN)) {
		ret = IX_EPERM;
		buf_append_str(&err, "You may not administer this mailbox");
	}
	if (ret != 0) {
		if (ret == IX_ENOTFOUND) {
			buf_reset(&err);
			buf_append_str(&err, "Mailbox doesn't exist");
		}
		store_error_reply(s, cmd->tag, ret, &err);
		goto out;
	}
	if (my) {
		store_rights_format(rights, &tmp);
		buf_append_str(&s->out, "* MYRIGHTS ");
		imap_write_astring(&s->out, name, len, 0);
		buf_printf(&s->out, " %s\r\n", buf_cstr(&tmp));
	} else if (listr) {
		buf_append_str(&s->out, "* LISTRIGHTS ");
		imap_write_astring(&s->out, name, len, 0);
		buf_append_char(&s->out, ' ');
		imap_write_astring(&s->out, id, idlen, 0);
		buf_append_str(&s->out, " \"\" l r s w i p k x t e a\r\n");
	} else if (get) {
		ret = store_acl_list(s->srv->ls.cfg.store, guid, folder, &tmp, &err);
		if (ret != 0) {
			store_error_reply(s, cmd->tag, ret, &err);
			goto out;
		}
		buf_append_str(&s->out, "* ACL ");
		imap_write_astring(&s->out, name, len, 0);
		if (strcasecmp(guid, s->ls.user.guid) == 0)
			buf_printf(&s->out, " %s lrswipkxtea", s->ls.user.login);
		char *save = NULL;
		for (char *line = strtok_r(tmp.data != NULL ? tmp.data : (char *)"", "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char *sp = strrchr(line, ' ');
			if (sp == NULL)
				continue;
			*sp = '\0';
			buf_append_char(&s->out, ' ');
			imap_write_astring(&s->out, line, strlen(line), 0);
			buf_printf(&s->out, " %s", sp + 1);
		}
		buf_append_str(&s->out, "\r\n");
	} else {
		char *ident = xstrndup(id, idlen);
		unsigned newr = 0;
		int mode = 0;
		if (set && rslen > 0 && (rs[0] == '+' || rs[0] == '-')) {
			mode = rs[0] == '+' ? 1 : -1;
			rs++;
			rslen--;
		}
		char *rcopy = set ? xstrndup(rs, rslen) : xstrdup("");
		if (set && store_rights_parse(rcopy, &newr) != 0) {
			imap_tagged(s, cmd->tag, "BAD Unknown rights in \"%s\"", rcopy);
			free(rcopy);
			free(ident);
			goto out;
		}
		if (mode != 0) {
			/* the identifier's current entry, from the listing */
			unsigned cur = 0;
			if (store_acl_list(s->srv->ls.cfg.store, guid, folder, &tmp, NULL) == 0) {
				char *save = NULL;
				for (char *line = strtok_r(tmp.data != NULL ? tmp.data : (char *)"", "\n", &save);
				     line != NULL; line = strtok_r(NULL, "\n", &save)) {
					char *sp = strrchr(line, ' ');
					if (sp != NULL && (size_t)(sp - line) == idlen && strncmp(line, ident, idlen) == 0)
						store_rights_parse(sp + 1, &cur);
				}
			}
			newr = mode > 0 ? (cur | newr) : (cur & ~newr);
		}
		ret = store_acl_set(s->srv->ls.cfg.store, guid, folder, ident, del ? 0 : newr, &err);
		free(rcopy);
		free(ident);
		if (ret != 0) {
			store_error_reply(s, cmd->tag, ret, &err);
			goto out;
		}
	}
	imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
out:
	free(guid);
	free(folder);
	buf_free(&err);
	buf_free(&tmp);
}

/* ---- dispatch ---- */

#define ST_ANY (IMAP_ST_NOTAUTH | IMAP_ST_AUTH | IMAP_ST_SELECTED)
#define ST_AUTHED (IMAP_ST_AUTH | IMAP_ST_SELECTED)

struct imap_cmd_def {
	const char *name;
	void (*fn)(struct imap_session *s, const struct imap_command *cmd);
	unsigned states;
	bool uid_ok;      /* may follow UID */
	bool no_expunge;  /* no EXPUNGE responses while answering (by sequence numbers) */
	bool pool;        /* runs on the worker pool: it makes synced writes or reads many bodies */
};

static const struct imap_cmd_def commands[] = {
	{ "CAPABILITY", cmd_capability, ST_ANY, false, false, false },
	{ "NOOP", cmd_noop, ST_ANY, false, false, false },
	{ "LOGOUT", cmd_logout, ST_ANY, false, false, false },
	{ "ID", cmd_id, ST_ANY, false, false, false },
	{ "STARTTLS", cmd_starttls, IMAP_ST_NOTAUTH, false, false, false },
	{ "LOGIN", cmd_login, IMAP_ST_NOTAUTH, false, false, false },
	{ "AUTHENTICATE", cmd_authenticate, IMAP_ST_NOTAUTH, false, false, false },
	{ "X-IX-IMPORT", imap_cmd_import, ST_ANY, false, false, false },
	{ "ENABLE", cmd_enable, ST_AUTHED, false, false, false },
	{ "SELECT", cmd_select, ST_AUTHED, false, false, false },
	{ "EXAMINE", cmd_select, ST_AUTHED, false, false, false },
	{ "CREATE", cmd_create, ST_AUTHED, false, false, true },
	{ "DELETE", cmd_delete, ST_AUTHED, false, false, false },
	{ "RENAME", cmd_rename, ST_AUTHED, false, false, true },
	{ "SUBSCRIBE", cmd_subscribe, ST_AUTHED, false, false, true },
	{ "UNSUBSCRIBE", cmd_subscribe, ST_AUTHED, false, false, true },
	{ "LIST", cmd_list, ST_AUTHED, false, false, false },
	{ "LSUB", cmd_list, ST_AUTHED, false, false, false },
	{ "NAMESPACE", cmd_namespace, ST_AUTHED, false, false, false },
	{ "STATUS", cmd_status, ST_AUTHED, false, false, false },
	{ "APPEND", imap_cmd_append, ST_AUTHED, false, false, false },
	{ "IDLE", cmd_idle, ST_AUTHED, false, false, false },
	{ "COMPRESS", cmd_compress, ST_AUTHED, false, false, false },
	{ "GETQUOTAROOT", cmd_getquotaroot, ST_AUTHED, false, false, false },
	{ "GETQUOTA", cmd_getquota, ST_AUTHED, false, false, false },
	{ "SETQUOTA", cmd_setquota, ST_AUTHED, false, false, false },
	{ "GETACL", cmd_acl, ST_AUTHED, false, false, false },
	{ "SETACL", cmd_acl, ST_AUTHED, false, false, true },
	{ "DELETEACL", cmd_acl, ST_AUTHED, false, false, true },
	{ "MYRIGHTS", cmd_acl, ST_AUTHED, false, false, false },
	{ "LISTRIGHTS", cmd_acl, ST_AUTHED, false, false, false },
	{ "CHECK", cmd_check, IMAP_ST_SELECTED, false, false, false },
	{ "CLOSE", cmd_close, IMAP_ST_SELECTED, false, false, false },
	{ "UNSELECT", cmd_close, IMAP_ST_SELECTED, false, false, false },
	{ "EXPUNGE", imap_cmd_expunge, IMAP_ST_SELECTED, true, false, true },
	{ "SEARCH", imap_cmd_search, IMAP_ST_SELECTED, true, true, true },
	{ "FETCH", imap_cmd_fetch, IMAP_ST_SELECTED, true, true, false },
	{ "STORE", imap_cmd_store, IMAP_ST_SELECTED, true, true, true },
	{ "COPY", imap_cmd_copy, IMAP_ST_SELECTED, true, false, true },
	{ "MOVE", imap_cmd_copy, IMAP_ST_SELECTED, true, false, true },
};

struct cmd_job {
	struct imap_session *s;
	const struct imap_cmd_def *def;
	const struct imap_command *cmd; /* the parser's: it is not fed again before the job is back */
};

static void cmd_job_run(void *arg)
{
	struct cmd_job *j = arg;
	j->def->fn(j->s, j->cmd);
}

static void cmd_job_done(void *arg)
{
	struct cmd_job *j = arg;
	struct imap_session *s = j->s;
	free(j);
	s->in_worker = false;
	if (!imap_job_finished(s))
		return;
	if (s->dirty_pending) {
		s->dirty = true;
		s->dirty_pending = false;
	}
	if (s->moved_pending && !s->ls.closing) {
		s->moved_pending = false;
		say_moved(s);
		return;
	}
	imap_flush_out(s);
	imap_resume(s);
}

static void dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *def = NULL;
	for (size_t i = 0; i < IX_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, cmd->name) == 0) {
			def = &commands[i];
			break;
		}
	if (def == NULL) {
		s->bad_count++;
		imap_tagged(s, cmd->tag, "BAD Unknown command %s", cmd->name);
		return;
	}
	if (cmd->uid && !def->uid_ok) {
		s->bad_count++;
		imap_tagged(s, cmd->tag, "BAD UID %s is not a command", cmd->name);
		return;
	}
	if (!(def->states & s->state)) {
		s->bad_count++;
		const char *why = s->state == IMAP_ST_NOTAUTH ? "Log in first"
				  : def->states == IMAP_ST_NOTAUTH ? "Already logged in"
								   : "No mailbox selected";
		imap_tagged(s, cmd->tag, "BAD %s: %s not allowed now", why, cmd->name);
		return;
	}
	s->bad_count = 0;
	if (def->no_expunge && !cmd->uid && s->state == IMAP_ST_SELECTED && s->dirty)
		imap_sync(s, false, false);
	if (def->pool && s->srv->ls.cfg.pool != NULL) {
		struct cmd_job *j = xcalloc(1, sizeof(*j));
		j->s = s;
		j->def = def;
		j->cmd = cmd;
		s->in_worker = true;
		imap_start_job(s, cmd_job_run, cmd_job_done, j);
		return;
	}
	def->fn(s, cmd);
}

/* ---- COMPRESS=DEFLATE ---- */

static void cmd_compress(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->arg_count != 1 || !imap_arg_atom_equals(&cmd->args[0], "DEFLATE")) {
		imap_tagged(s, cmd->tag, "BAD COMPRESS takes DEFLATE");
		return;
	}
	if (s->z != NULL) {
		imap_tagged(s, cmd->tag, "NO [COMPRESSIONACTIVE] Compression is already on.");
		return;
	}
	struct imap_z *z = NULL;
	if (imap_z_create(&z) != 0) {
		imap_tagged(s, cmd->tag, "NO Compression is not available.");
		return;
	}
	imap_tagged(s, cmd->tag, "OK DEFLATE active."); /* the last plaintext; what follows is compressed */
	s->z = z;
}

/* ---- input ---- */

/* The bytes waiting to be parsed: the connection's buffer, or under COMPRESS the inflated ones (inflating more
 * from the connection while there is room). */
static size_t in_peek(struct imap_session *s, const char **data_r)
{
	if (s->z == NULL)
		return conn_input_peek(s->ls.conn, data_r);
	if (s->zin.len < IMAP_Z_INPUT_MAX) {
		const char *raw = NULL;
		size_t n = imap_z_pending(s->z) < IMAP_Z_INPUT_MAX ? conn_input_peek(s->ls.conn, &raw) : 0;
		if (imap_z_decompress(s->z, raw, n, &s->zin, IMAP_Z_INPUT_MAX) != 0)
			s->zerror = true;
		if (n > 0)
			conn_input_consume(s->ls.conn, n);
	}
	*data_r = buf_cstr(&s->zin);
	return s->zin.len;
}

static void in_consume(struct imap_session *s, size_t n)
{
	if (s->z == NULL)
		conn_input_consume(s->ls.conn, n);
	else
		buf_consume(&s->zin, n);
}

/* conn_read_line for SASL and IDLE lines, through the inflated input under COMPRESS. */
static int in_line(struct imap_session *s, size_t max, const char **line_r, size_t *len_r)
{
	if (s->z == NULL)
		return conn_read_line(s->ls.conn, max, CONN_LINE_BARE_LF, line_r, len_r);
	const char *d;
	size_t n = in_peek(s, &d);
	const char *nl = memchr(d, '\n', n);
	if (nl == NULL) {
		if (n > max) {
			in_consume(s, n);
			return CONN_LINE_TOO_LONG;
		}
		return CONN_LINE_MORE;
	}
	size_t len = (size_t)(nl - d);
	buf_reset(&s->zline);
	buf_append(&s->zline, d, len > 0 && d[len - 1] == '\r' ? len - 1 : len);
	in_consume(s, len + 1);
	*line_r = buf_cstr(&s->zline);
	*len_r = s->zline.len;
	return CONN_LINE_OK;
}

static void literal_event(struct imap_session *s)
{
	const struct imap_literal_info *li = imap_parser_literal(s->parser);
	const char *tag = imap_parser_tag(s->parser);
	if (s->state == IMAP_ST_NOTAUTH && li->size > IMAP_LITERAL_MAX_PREAUTH) {
		imap_parser_literal_reject(s->parser);
		imap_tagged(s, tag != NULL ? tag : "*", "%s Literal too large before login.", li->sync ? "NO" : "BAD");
		return;
	}
	if (li->size > s->srv->max_message_size) {
		imap_parser_literal_reject(s->parser);
		imap_tagged(s, tag != NULL ? tag : "*", "%s [TOOBIG] Literal of %llu bytes is larger than the %llu allowed.",
			    li->sync ? "NO" : "BAD", (unsigned long long)li->size,
			    (unsigned long long)s->srv->max_message_size);
		return;
	}
	imap_parser_literal_accept(s->parser);
	if (li->sync) {
		buf_append_str(&s->out, "+ OK\r\n");
		imap_flush_out(s);
	}
}

static void too_many_errors(struct imap_session *s)
{
	imap_reply(s, "* BYE Too many bad commands.");
	imap_flush_out(s);
	s->ls.closing = true;
	conn_close_after_flush(s->ls.conn);
}

static void process_input(struct imap_session *s)
{
	while (!s->ls.closing && !s->ls.dead && !s->ls.tls_pending && s->mode != IMAP_MODE_BUSY) {
		if (conn_output_len(s->ls.conn) > CONN_OUTPUT_SOFT_MAX) {
			/* the client does not read: stop reading until it does */
			imap_wait_output(s);
			break;
		}
		if (s->mode == IMAP_MODE_SASL || s->mode == IMAP_MODE_IDLE) {
			const char *line;
			size_t len;
			int r = in_line(s, IX_SASL_LINE_MAX, &line, &len);
			if (r == CONN_LINE_MORE)
				break;
			if (r == CONN_LINE_TOO_LONG) {
				s->mode = IMAP_MODE_COMMAND;
				imap_tagged(s, s->tag != NULL ? s->tag : "*", "BAD Line too long.");
				continue;
			}
			if (s->mode == IMAP_MODE_IDLE)
				idle_line(s, line, len);
			else
				sasl_line(s, line, len);
			continue;
		}
		const char *data;
		size_t len = in_peek(s, &data);
		if (s->zerror) {
			imap_reply(s, "* BYE The compressed stream is corrupt.");
			imap_flush_out(s);
			s->ls.closing = true;
			conn_close_after_flush(s->ls.conn);
			break;
		}
		if (len == 0)
			break;
		size_t used = 0;
		enum imap_parse_result r = imap_parser_feed(s->parser, data, len, &used);
		in_consume(s, used);
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			break;
		case IMAP_PARSE_LITERAL:
			literal_event(s);
			break;
		case IMAP_PARSE_ERROR: {
			const char *tag = imap_parser_tag(s->parser);
			s->bad_count++;
			buf_printf(&s->out, "%s BAD %s\r\n", tag != NULL ? tag : "*", imap_parser_error(s->parser));
			imap_flush_out(s);
			break;
		}
		case IMAP_PARSE_DONE:
			dispatch(s, imap_parser_command(s->parser));
			break;
		}
		if (s->bad_count >= IMAP_MAX_BAD_COMMANDS && !s->ls.closing)
			too_many_errors(s);
	}
	imap_flush_out(s);
}

void imap_wait_output(struct imap_session *s)
{
	s->mode = IMAP_MODE_BUSY;
	conn_pause_input(s->ls.conn, true);
	evloop_timer_start(s->srv->ls.cfg.loop, &s->timer, OUTPUT_POLL_MS, 0, session_timer, s);
}

void imap_resume(struct imap_session *s)
{
	if (s->mode == IMAP_MODE_BUSY || s->ls.inline_job)
		return;
	conn_pause_input(s->ls.conn, false);
	process_input(s);
}

static void session_timer(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)timer;
	struct imap_session *s = ctx;
	if (s->mode == IMAP_MODE_BUSY && !s->ls.job_out) {
		if (conn_output_len(s->ls.conn) > CONN_OUTPUT_SOFT_MAX / 2) {
			evloop_timer_start(loop, &s->timer, OUTPUT_POLL_MS, 0, session_timer, s);
			return;
		}
		if (s->fetch != NULL) {
			if (!imap_fetch_continue(s)) {
				evloop_timer_start(loop, &s->timer, OUTPUT_POLL_MS, 0, session_timer, s);
				return;
			}
		}
		s->mode = IMAP_MODE_COMMAND;
		imap_resume(s);
		return;
	}
	if (s->mode == IMAP_MODE_IDLE && s->state == IMAP_ST_SELECTED) {
		/* no change notification for this mailbox: look now and then */
		s->dirty = true;
		imap_sync(s, true, false);
		imap_flush_out(s);
		evloop_timer_start(loop, &s->timer, NOWATCH_POLL_MS, 0, session_timer, s);
	}
}

/* ---- the login core's function table ---- */

static struct imap_session *of(struct login_session *ls)
{
	return (struct imap_session *)ls;
}

static struct login_session *new_session(struct login_server *lsrv)
{
	struct imap_server *srv = (struct imap_server *)lsrv;
	struct imap_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->state = IMAP_ST_NOTAUTH;
	s->mode = IMAP_MODE_COMMAND;
	struct imap_parser_settings ps = { 0 };
	ps.max_literal = srv->max_message_size;
	ps.max_literals = srv->max_message_size + IMAP_LITERAL_MAX_OTHER;
	ps.literal_plus = true;
	ps.binary = true; /* ~{n} literal8 in APPEND (RFC 3516) */
	s->parser = imap_parser_create(&ps);
	return &s->ls;
}

static void free_session(struct login_session *ls)
{
	struct imap_session *s = of(ls);
	evloop_timer_stop(s->srv->ls.cfg.loop, &s->timer);
	imap_fetch_job_free(&s->fetch);
	deselect(s);
	imap_parser_destroy(&s->parser);
	imap_z_destroy(&s->z);
	buf_free(&s->zin);
	buf_free(&s->zline);
	for (size_t i = 0; i < s->nids; i++)
		free(s->ids[i]);
	free(s->ids);
	free(s->tag);
	buf_free(&s->out);
}

static void greet(struct login_session *ls)
{
	struct imap_session *s = of(ls);
	buf_append_str(&s->out, "* OK [CAPABILITY ");
	capabilities(s, &s->out);
	buf_printf(&s->out, "] %s Interchange IMAP4rev1 ready.\r\n", s->srv->ls.cfg.hostname);
	imap_flush_out(s);
}

static void input(struct login_session *ls)
{
	if (of(ls)->mode != IMAP_MODE_BUSY)
		process_input(of(ls));
}

static void set_busy(struct login_session *ls, bool busy)
{
	of(ls)->mode = busy ? IMAP_MODE_BUSY : IMAP_MODE_COMMAND;
}

static void resume(struct login_session *ls)
{
	imap_resume(of(ls));
}

static void login_reply(struct login_session *ls, const char *tag, enum login_outcome o, const char *text)
{
	struct imap_session *s = of(ls);
	switch (o) {
	case LOGIN_CONTINUE:
		s->mode = IMAP_MODE_SASL;
		buf_printf(&s->out, "+ %s\r\n", text);
		imap_flush_out(s);
		break;
	case LOGIN_FAILED:
		imap_tagged(s, tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
		break;
	case LOGIN_CANCELLED:
		imap_tagged(s, tag, "BAD Authentication cancelled.");
		break;
	case LOGIN_SASL_BAD:
		imap_tagged(s, tag, "BAD %s", text[0] != '\0' ? text : "Bad SASL exchange");
		break;
	case LOGIN_UNAVAILABLE:
		imap_tagged(s, tag, "NO [UNAVAILABLE] The directory is not answering; try again later.");
		break;
	case LOGIN_HOME_UNREACHABLE:
		imap_tagged(s, tag, "NO [UNAVAILABLE] Your mailbox server cannot be reached; try again later.");
		break;
	case LOGIN_THROTTLED:
		imap_tagged(s, tag, "NO [UNAVAILABLE] Too many failed logins from your address; try again in a minute.");
		break;
	case LOGIN_SASL_UNAVAILABLE:
		imap_tagged(s, tag, "NO [UNAVAILABLE] Authentication is unavailable.");
		break;
	case LOGIN_PROXY_LOGGED_IN:
		/* the home server's answer (its capabilities after login) under the client's tag */
		buf_printf(&s->out, "%s %s\r\n", tag, text);
		imap_flush_out(s);
		break;
	case LOGIN_PROXY_REFUSED:
		imap_tagged(s, tag, "%s", text);
		break;
	case LOGIN_PROXY_FAILED:
		imap_tagged(s, tag, "NO [UNAVAILABLE] Your mailbox server is not answering; try again later.");
		break;
	}
}

static void bye(struct login_session *ls, enum login_bye why)
{
	struct imap_session *s = of(ls);
	imap_reply(s, why == LOGIN_BYE_IDLE ? "* BYE Idle for too long." : "* BYE Server shutting down.");
	imap_flush_out(s);
}

static int prepare(struct login_server *srv, const struct login_user *u, void **data_r, struct buf *error_r)
{
	(void)error_r;
	*data_r = NULL;
	store_mailbox_ensure(srv->cfg.store, u->guid, NULL);
	return 0;
}

static void logged_in(struct login_session *ls, const char *tag, void *data)
{
	(void)data;
	struct imap_session *s = of(ls);
	s->state = IMAP_ST_AUTH;
	log_info("login %s from %s%s", ls->user.login, conn_peer(ls->conn), conn_is_tls(ls->conn) ? " (TLS)" : "");
	buf_append_str(&s->out, tag);
	buf_append_str(&s->out, " OK [CAPABILITY ");
	capabilities(s, &s->out);
	buf_append_str(&s->out, "] Logged in\r\n");
	imap_flush_out(s);
}

static const struct login_proto imap_proto = {
	"imap", PROXY_IMAP, new_session, free_session, greet, input, set_busy, resume, login_reply, bye, prepare, free, logged_in,
};

/* ---- server ---- */

struct imap_server *imap_server_create(const struct imap_server_config *config)
{
	struct imap_server *srv = xcalloc(1, sizeof(*srv));
	login_server_init(&srv->ls, &imap_proto, &config->login);
	srv->max_message_size = config->max_message_size != 0 ? config->max_message_size : 35ull * 1024 * 1024;
	return srv;
}

void imap_server_set_max_message_size(struct imap_server *srv, uint64_t max_message_size)
{
	if (max_message_size > 0)
		srv->max_message_size = max_message_size;
}

void imap_server_destroy(struct imap_server **srvp)
{
	struct imap_server *srv = *srvp;
	if (srv == NULL)
		return;
	login_server_cleanup(&srv->ls);
	while (srv->watches != NULL) {
		struct imap_watch *w = srv->watches;
		w->refs = 1;
		watch_release(srv, &w);
	}
	free(srv);
	*srvp = NULL;
}

struct login_server *imap_server_login(struct imap_server *srv)
{
	return &srv->ls;
}
