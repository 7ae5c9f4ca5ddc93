/* imap_context.c - update contexts (RFC 5267 CONTEXT=SEARCH and CONTEXT=SORT): a SEARCH or SORT with
 * RETURN (UPDATE) keeps its result, and the session tells the client what enters and leaves it (ESEARCH ADDTO and
 * REMOVEFROM) as messages arrive, change or go, until CANCELUPDATE or the mailbox is closed. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

bool imap_update_exists(const struct imap_session *s, const char *tag)
{
	for (size_t i = 0; i < s->nupdates; i++)
		if (strcmp(s->updates[i].tag, tag) == 0)
			return true;
	return false;
}

static void update_clear(struct imap_update *u)
{
	free(u->tag);
	imap_search_query_destroy(&u->q);
	for (size_t i = 0; u->k != NULL && i < u->n; i++)
		imap_sort_keys_destroy(&u->k[i]);
	free(u->k);
	free(u->uids);
}

const char *imap_update_refusal(const struct imap_session *s, const struct imap_command *cmd, unsigned opts)
{
	if (!(opts & IMAP_SEARCH_RETURN_UPDATE))
		return NULL;
	if (opts &
	    (IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX | IMAP_SEARCH_RETURN_PARTIAL | IMAP_SEARCH_RETURN_SAVE))
		return "UPDATE is not taken with MIN, MAX, PARTIAL or SAVE";
	if (imap_update_exists(s, cmd->tag))
		return "The tag names an update context already";
	return NULL;
}

void imap_update_start(struct imap_session *s, const struct imap_command *cmd, struct imap_search_query *q,
		       const struct imap_sort_key *keys, size_t nkeys, const uint32_t *uids, struct imap_sort_keys **k,
		       size_t n)
{
	if (s->nupdates == IMAP_UPDATES_MAX) {
		imap_search_query_destroy(&q);
		for (size_t i = 0; k != NULL && i < n; i++)
			imap_sort_keys_destroy(&k[i]);
		free(k);
		/* RFC 5267 4.3.5: the result was given, the context is not kept */
		buf_append_str(&s->out, "* NO [NOUPDATE ");
		imap_write_string(&s->out, cmd->tag, strlen(cmd->tag), 0);
		buf_append_str(&s->out, "] Too many update contexts.\r\n");
		return;
	}
	s->updates = xrealloc(s->updates, (s->nupdates + 1) * sizeof(*s->updates));
	struct imap_update *u = &s->updates[s->nupdates++];
	*u = (struct imap_update){ .tag = xstrdup(cmd->tag), .uid = cmd->uid, .q = q, .nkeys = nkeys, .k = k, .n = n };
	if (nkeys > 0)
		memcpy(u->keys, keys, nkeys * sizeof(*keys));
	u->cap = n + 16;
	u->uids = xcalloc(u->cap, sizeof(*u->uids));
	memcpy(u->uids, uids, n * sizeof(*uids));
	if (nkeys > 0)
		u->k = xrealloc(u->k, u->cap * sizeof(*u->k));
	u->modseq = s->highestmodseq;
	u->last_uid = s->count > 0 ? s->msgs[s->count - 1].uid : 0;
}

/* The member's index in the result, or -1. */
static long member(const struct imap_update *u, uint32_t uid)
{
	if (u->nkeys == 0) {
		size_t at = imap_u32_lower_bound(u->uids, u->n, uid);
		return at < u->n && u->uids[at] == uid ? (long)at : -1;
	}
	for (size_t i = 0; i < u->n; i++)
		if (u->uids[i] == uid)
			return (long)i;
	return -1;
}

static void remove_at(struct imap_update *u, size_t i)
{
	if (u->k != NULL)
		imap_sort_keys_destroy(&u->k[i]);
	memmove(u->uids + i, u->uids + i + 1, (u->n - i - 1) * sizeof(*u->uids));
	if (u->k != NULL)
		memmove(u->k + i, u->k + i + 1, (u->n - i - 1) * sizeof(*u->k));
	u->n--;
}

/* "* ESEARCH (TAG "t") [UID]", then the caller's items. */
static void esearch_head(struct imap_session *s, const struct imap_update *u)
{
	buf_append_str(&s->out, "* ESEARCH (TAG ");
	imap_write_string(&s->out, u->tag, strlen(u->tag), 0);
	buf_append_str(&s->out, u->uid ? ") UID" : ")");
}

/* What the client is told for a message of the view: its UID or its sequence number. */
static uint32_t told(const struct imap_session *s, const struct imap_update *u, uint32_t uid)
{
	if (u->uid)
		return uid;
	long i = imap_find_uid(s, uid);
	return i >= 0 ? (uint32_t)i + 1 : 0;
}

/* Appends " REMOVEFROM (0 set)" for the (told) numbers gone[0..n): position 0, the messages' places are not given. */
static void write_removefrom(struct buf *out, uint32_t *gone, size_t n)
{
	qsort(gone, n, sizeof(*gone), imap_u32_cmp);
	buf_append_str(out, " REMOVEFROM (0 ");
	imap_write_seqset(out, gone, n);
	buf_append_char(out, ')');
}

void imap_updates_expunging(struct imap_session *s)
{
	for (size_t c = 0; c < s->nupdates; c++) {
		struct imap_update *u = &s->updates[c];
		uint32_t *gone = xcalloc(u->n + 1, sizeof(*gone));
		size_t ngone = 0;
		for (size_t i = 0; i < u->n;) {
			long v = imap_find_uid(s, u->uids[i]);
			if (v < 0 || !(s->msgs[v].flags & MSG_GONE)) {
				i++;
				continue;
			}
			gone[ngone++] = told(s, u, u->uids[i]);
			remove_at(u, i);
		}
		if (ngone > 0) {
			esearch_head(s, u);
			write_removefrom(&s->out, gone, ngone);
			buf_append_str(&s->out, "\r\n");
		}
		free(gone);
	}
}

/* Adds the new members of a SORT context in their places and appends " ADDTO (position number)" for each, in
 * ascending position: applied one after the other they give the new order (RFC 5267 4.3.3). */
static void sort_add(struct imap_session *s, struct imap_update *u, const uint32_t *added, size_t nadded)
{
	for (size_t i = 0; i < nadded; i++) {
		u->uids[u->n] = added[i];
		u->k[u->n++] = imap_sort_keys_new(s, added[i]);
	}
	imap_sort_order(u->k, u->uids, u->n, u->keys, u->nkeys);
	for (size_t pos = 0; pos < u->n; pos++)
		for (size_t i = 0; i < nadded; i++)
			if (u->uids[pos] == added[i])
				buf_printf(&s->out, " ADDTO (%zu %u)", pos + 1, told(s, u, added[i]));
}

static void refresh_one(struct imap_session *s, struct imap_update *u)
{
	uint32_t *gone = xcalloc(s->count + 1, sizeof(*gone)), *added = xcalloc(s->count + 1, sizeof(*added));
	size_t ngone = 0, nadded = 0;
	uint64_t maxmod = s->highestmodseq;
	for (size_t i = 0; i < s->count; i++) {
		const struct imap_msg *m = &s->msgs[i];
		if (m->modseq > maxmod)
			maxmod = m->modseq; /* the session's own STORE is in the view before HIGHESTMODSEQ */
		if ((m->flags & MSG_GONE) || (m->uid <= u->last_uid && m->modseq <= u->modseq))
			continue;
		long at = member(u, m->uid);
		bool match = imap_search_matches(s, u->q, i);
		if (at >= 0 && !match) {
			gone[ngone++] = told(s, u, m->uid);
			remove_at(u, (size_t)at);
		} else if (at < 0 && match) {
			added[nadded++] = m->uid;
		}
	}
	if (maxmod > u->modseq)
		u->modseq = maxmod;
	if (s->count > 0 && s->msgs[s->count - 1].uid > u->last_uid)
		u->last_uid = s->msgs[s->count - 1].uid;
	if (ngone == 0 && nadded == 0)
		goto out;
	if (u->n + nadded > u->cap) {
		u->cap = u->n + nadded + 16;
		u->uids = xrealloc(u->uids, u->cap * sizeof(*u->uids));
		if (u->nkeys > 0)
			u->k = xrealloc(u->k, u->cap * sizeof(*u->k));
	}
	esearch_head(s, u);
	if (ngone > 0)
		write_removefrom(&s->out, gone, ngone);
	if (nadded > 0 && u->nkeys > 0) {
		sort_add(s, u, added, nadded);
	} else if (nadded > 0) {
		/* SEARCH: the members stay in UID order, the position is 0 (RFC 5267 4.3.2) */
		for (size_t i = 0; i < nadded; i++)
			u->uids[u->n++] = added[i];
		qsort(u->uids, u->n, sizeof(*u->uids), imap_u32_cmp);
		for (size_t i = 0; i < nadded; i++)
			added[i] = told(s, u, added[i]);
		buf_append_str(&s->out, " ADDTO (0 ");
		imap_write_seqset(&s->out, added, nadded);
		buf_append_char(&s->out, ')');
	}
	buf_append_str(&s->out, "\r\n");
out:
	free(gone);
	free(added);
}

void imap_updates_refresh(struct imap_session *s)
{
	if (s->state != IMAP_ST_SELECTED)
		return;
	for (size_t c = 0; c < s->nupdates; c++)
		refresh_one(s, &s->updates[c]);
}

void imap_cmd_cancelupdate(struct imap_session *s, const struct imap_command *cmd)
{
	/* CANCELUPDATE tag-string *(SP tag-string): every tag must name a context, else nothing is cancelled */
	const char *tag;
	size_t len;
	for (size_t a = 0; a < cmd->arg_count; a++) {
		if (!imap_arg_get_astring(&cmd->args[a], &tag, &len) || memchr(tag, '\0', len) != NULL ||
		    !imap_update_exists(s, tag)) {
			imap_tagged(s, cmd->tag, "BAD CANCELUPDATE takes the tags of update contexts");
			return;
		}
	}
	if (cmd->arg_count == 0) {
		imap_tagged(s, cmd->tag, "BAD CANCELUPDATE takes the tags of update contexts");
		return;
	}
	for (size_t a = 0; a < cmd->arg_count; a++) {
		imap_arg_get_astring(&cmd->args[a], &tag, &len);
		for (size_t c = 0; c < s->nupdates; c++) {
			if (strcmp(s->updates[c].tag, tag) != 0)
				continue;
			update_clear(&s->updates[c]);
			s->updates[c] = s->updates[--s->nupdates];
			break;
		}
	}
	imap_tagged(s, cmd->tag, "OK Updates cancelled.");
}

void imap_updates_free(struct imap_session *s)
{
	for (size_t c = 0; c < s->nupdates; c++)
		update_clear(&s->updates[c]);
	free(s->updates);
	s->updates = NULL;
	s->nupdates = 0;
}
