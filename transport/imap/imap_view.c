/* imap_view.c - the selected view: the session's {uid, flags, modseq} array kept in step with the store (from the
 * change log, or by a full comparison), \Recent claimed by the session, expunges held back where RFC 3501 7.4.1 says. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>

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

/* ---- \Recent ---- */

/* The claims of this server's sessions: per folder, every message below `below` has been claimed by a session (or
 * was not recent when a session first saw it), whether or not the store's clearing (on the pool) is done yet. A mark
 * lives while a clearing is pending; after it the store says the same. Shared with the clearing jobs (counted),
 * guarded by its lock: views are brought up to date on workers too. */
struct recent_mark {
	char guid[STORE_GUID_HEX_LEN + 1];
	uint32_t fid, below;
	unsigned pending;
};

struct imap_recent {
	pthread_mutex_t lock;
	unsigned refs;
	struct recent_mark *v;
	size_t n;
};

struct imap_recent *imap_recent_create(void)
{
	struct imap_recent *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->refs = 1;
	return r;
}

void imap_recent_release(struct imap_recent **rp)
{
	struct imap_recent *r = *rp;
	*rp = NULL;
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->v);
	free(r);
}

/* The folder's mark (called with the lock held); NULL when there is none. */
static struct recent_mark *mark_find(struct imap_recent *r, const char *guid, uint32_t fid)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].fid == fid && strcasecmp(r->v[i].guid, guid) == 0)
			return &r->v[i];
	return NULL;
}

struct recent_job {
	struct imap_recent *r;
	struct store *st;
	char *guid, *folder;
	uint32_t fid, below;
};

static void recent_run(void *arg)
{
	struct recent_job *j = arg;
	store_clear_recent(j->st, j->guid, j->folder, j->below, NULL);
}

static void recent_done(void *arg)
{
	struct recent_job *j = arg;
	pthread_mutex_lock(&j->r->lock);
	struct recent_mark *m = mark_find(j->r, j->guid, j->fid);
	if (m != NULL && --m->pending == 0)
		*m = j->r->v[--j->r->n];
	pthread_mutex_unlock(&j->r->lock);
	imap_recent_release(&j->r);
	free(j->guid);
	free(j->folder);
	free(j);
}

size_t imap_claim_recent(struct imap_session *s, size_t first)
{
	struct imap_recent *r = s->srv->recent;
	size_t n = 0;
	pthread_mutex_lock(&r->lock);
	struct recent_mark *m = mark_find(r, s->sel_guid, s->sel_fid);
	uint32_t below = m != NULL ? m->below : 0;
	for (size_t i = first; i < s->count; i++) {
		if (!(s->msgs[i].flags & STORE_FLAG_RECENT))
			continue;
		if (s->readonly || s->rev2 || s->msgs[i].uid < below)
			s->msgs[i].flags &= ~(unsigned)STORE_FLAG_RECENT;
		else
			n++;
	}
	bool clear = n > 0 && s->srv->ls.cfg.pool != NULL;
	if (clear) {
		if (m == NULL) {
			r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
			m = &r->v[r->n++];
			*m = (struct recent_mark){ .fid = s->sel_fid };
			snprintf(m->guid, sizeof(m->guid), "%s", s->sel_guid);
		}
		if (s->msgs[s->count - 1].uid >= m->below)
			m->below = s->msgs[s->count - 1].uid + 1;
		m->pending++;
		below = m->below;
		r->refs++;
	}
	pthread_mutex_unlock(&r->lock);
	if (n > 0 && !clear) {
		store_clear_recent(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, s->msgs[s->count - 1].uid + 1,
				   NULL);
	} else if (clear) {
		/* a synced write: on the pool; until it is done the mark answers for the store */
		struct recent_job *j = xcalloc(1, sizeof(*j));
		j->r = r;
		j->st = s->srv->ls.cfg.store;
		j->guid = xstrdup(s->sel_guid);
		j->folder = xstrdup(s->sel_folder);
		j->fid = s->sel_fid;
		j->below = below;
		workpool_submit(s->srv->ls.cfg.pool, recent_run, recent_done, j);
	}
	return n;
}

uint32_t imap_recent_status(struct imap_session *s, const char *guid, const char *folder,
			    const struct store_folder_info *info)
{
	if (info->recent == 0)
		return 0;
	struct imap_recent *r = s->srv->recent;
	pthread_mutex_lock(&r->lock);
	struct recent_mark *m = mark_find(r, guid, info->id);
	uint32_t below = m != NULL ? m->below : 0;
	pthread_mutex_unlock(&r->lock);
	if (below == 0)
		return info->recent;
	struct store_msg *list = NULL;
	size_t n = 0;
	uint32_t count = 0;
	if (store_msg_list(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &list, &n, NULL) != 0)
		return info->recent;
	for (size_t i = 0; i < n; i++)
		if ((list[i].flags & STORE_FLAG_RECENT) && list[i].uid >= below)
			count++;
	store_msg_list_free(&list, n);
	return count;
}

bool imap_keywords_add(struct imap_session *s, const char *keywords)
{
	bool added = false;
	for (const char *p = keywords != NULL ? keywords : ""; *p != '\0';) {
		size_t len = strcspn(p, " ");
		bool known = len == 0;
		for (size_t i = 0; i < s->nkws && !known; i++)
			known = strlen(s->kws[i]) == len && strncasecmp(s->kws[i], p, len) == 0;
		if (!known) {
			s->kws = xrealloc(s->kws, (s->nkws + 1) * sizeof(*s->kws));
			s->kws[s->nkws++] = xstrndup(p, len);
			added = true;
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	return added;
}

void imap_write_flags_responses(struct imap_session *s)
{
	const char *sys = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
	buf_printf(&s->out, "* FLAGS (%s", sys);
	for (size_t i = 0; i < s->nkws; i++)
		buf_printf(&s->out, " %s", s->kws[i]);
	buf_append_str(&s->out, ")\r\n* OK [PERMANENTFLAGS (");
	if (!s->readonly) {
		buf_append_str(&s->out, sys);
		for (size_t i = 0; i < s->nkws; i++)
			buf_printf(&s->out, " %s", s->kws[i]);
		buf_append_str(&s->out, " \\*");
	}
	buf_append_str(&s->out, ")] Flags permitted.\r\n");
}

void imap_announce_keywords(struct imap_session *s, const char *keywords)
{
	if (imap_keywords_add(s, keywords))
		imap_write_flags_responses(s);
}

void imap_write_fetch_flags(struct imap_session *s, size_t idx, const struct store_msg *m)
{
	imap_announce_keywords(s, m->keywords);
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

/* Claims \Recent among the last added messages of the view and says EXISTS (and RECENT, but not to IMAP4rev2). */
static void report_added(struct imap_session *s, size_t added)
{
	imap_claim_recent(s, s->count - added);
	buf_printf(&s->out, "* %zu EXISTS\r\n", s->count);
	if (!s->rev2)
		buf_printf(&s->out, "* %zu RECENT\r\n", recent_count(s));
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
			imap_write_fetch_flags(s, (size_t)k, &m);
		}
		store_msg_free(&m);
	}
	free(ch);
	if (allow_expunge) {
		imap_updates_expunging(s); /* REMOVEFROM before the EXPUNGE (RFC 5267 4.3.3) */
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
	qsort(fresh, nfresh, sizeof(*fresh), imap_u32_cmp);
	size_t added = 0;
	for (size_t i = 0; i < nfresh; i++) {
		if (i > 0 && fresh[i] == fresh[i - 1])
			continue;
		struct store_msg m;
		if (store_msg_get(st, s->sel_guid, s->sel_folder, fresh[i], imap_user_id(s), &m, NULL) != 0)
			continue;
		imap_announce_keywords(s, m.keywords);
		if (s->count == s->cap) {
			s->cap = s->cap < 16 ? 16 : s->cap * 2;
			s->msgs = xrealloc(s->msgs, s->cap * sizeof(*s->msgs));
		}
		s->msgs[s->count++] = (struct imap_msg){ m.uid, m.flags, m.modseq };
		if (m.uid >= s->uidnext)
			s->uidnext = m.uid + 1;
		added++;
		store_msg_free(&m);
	}
	free(fresh);
	s->highestmodseq = maxmod;
	if (added > 0)
		report_added(s, added);
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
		imap_updates_refresh(s);
		return;
	}
	struct store_msg *list = NULL;
	size_t n = 0;
	struct buf err = BUF_INIT;
	int ret = store_msg_list(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, imap_user_id(s), &list, &n, &err);
	if (ret != 0) {
		if (ret == IX_ENOTFOUND && allow_expunge) {
			/* the folder is gone: report everything expunged, keep the session */
			for (size_t i = 0; i < s->count; i++)
				s->msgs[i].flags |= MSG_GONE;
			imap_updates_expunging(s);
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

	/* expunges: old entries missing from the new list; the update contexts hear of them first */
	for (size_t i = 0, j = 0; allow_expunge && s->nupdates > 0 && i < s->count; i++) {
		while (j < n && list[j].uid < s->msgs[i].uid)
			j++;
		if (j == n || list[j].uid != s->msgs[i].uid)
			s->msgs[i].flags |= MSG_GONE;
	}
	if (allow_expunge && s->nupdates > 0)
		imap_updates_expunging(s);
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
			imap_write_fetch_flags(s, kept, &list[j]);
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
	for (size_t k = 0; k < n; k++) {
		if (list[k].uid <= last)
			continue;
		imap_announce_keywords(s, list[k].keywords);
		if (s->count == s->cap) {
			s->cap = s->cap < 16 ? 16 : s->cap * 2;
			s->msgs = xrealloc(s->msgs, s->cap * sizeof(*s->msgs));
		}
		s->msgs[s->count++] = (struct imap_msg){ list[k].uid, list[k].flags, list[k].modseq };
		added++;
		if (list[k].uid >= s->uidnext)
			s->uidnext = list[k].uid + 1;
	}
	for (size_t k = 0; k < n; k++)
		if (list[k].modseq > s->highestmodseq)
			s->highestmodseq = list[k].modseq;
	if (added > 0)
		report_added(s, added);
	store_msg_list_free(&list, n);
	if (!allow_expunge)
		keep_dirty_for_gone(s);
	imap_updates_refresh(s);
}

void imap_deselect(struct imap_session *s)
{
	imap_updates_free(s);
	imap_watch_release(s->srv, &s->watch);
	free(s->sel_guid);
	free(s->sel_folder);
	s->sel_guid = s->sel_folder = NULL;
	free(s->msgs);
	s->msgs = NULL;
	s->count = s->cap = 0;
	free(s->saved);
	s->saved = NULL;
	s->nsaved = 0;
	for (size_t i = 0; i < s->nkws; i++)
		free(s->kws[i]);
	free(s->kws);
	s->kws = NULL;
	s->nkws = 0;
	s->dirty = false;
	if (s->state == IMAP_ST_SELECTED)
		s->state = IMAP_ST_AUTH;
}
