/* imap_sort.c - SORT and THREAD without I/O: the RFC 5256 base subject, sort programs and a stable merge sort,
 * Message-ID lists, and the threading algorithms over a node table walked without recursion. */
#include "transport/imap/imap_sort.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/unicasemap.h"
#include "common/util.h"

/* ---- base subject (RFC 5256 2.1) ---- */

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool ci_at(const char *s, size_t pos, size_t end, const char *word)
{
	size_t n = strlen(word);
	if (end - pos < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (upper(s[pos + i]) != upper(word[i]))
			return false;
	return true;
}

/* A subj-blob at pos: "[" *BLOBCHAR "]" *WSP; returns the position after it, or pos when there is none. */
static size_t blob_end(const char *s, size_t pos, size_t end)
{
	if (pos >= end || s[pos] != '[')
		return pos;
	size_t i = pos + 1;
	while (i < end && s[i] != '[' && s[i] != ']')
		i++;
	if (i >= end || s[i] != ']')
		return pos;
	for (i++; i < end && s[i] == ' '; i++)
		;
	return i;
}

/* A subj-leader's *subj-blob subj-refwd at pos ("re" / "fw" ["d"], *WSP, [subj-blob], ":"); returns the position
 * after it, or pos. */
static size_t refwd_end(const char *s, size_t pos, size_t end)
{
	size_t i = pos, b;
	while ((b = blob_end(s, i, end)) != i)
		i = b;
	if (ci_at(s, i, end, "re"))
		i += 2;
	else if (ci_at(s, i, end, "fwd"))
		i += 3;
	else if (ci_at(s, i, end, "fw"))
		i += 2;
	else
		return pos;
	while (i < end && s[i] == ' ')
		i++;
	i = blob_end(s, i, end);
	if (i >= end || s[i] != ':')
		return pos;
	return i + 1;
}

bool imap_base_subject(const char *subject, size_t len, struct buf *out)
{
	if (len > IMAP_SUBJECT_MAX) {
		/* cut at a character boundary, so that a long UTF-8 subject stays valid */
		len = IMAP_SUBJECT_MAX;
		while (len > 0 && ((unsigned char)subject[len] & 0xC0) == 0x80)
			len--;
	}
	/* step 1: whitespace (and line ends left by unfolding) becomes single spaces */
	char *s = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = subject[i];
		bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
		if (ws && n > 0 && s[n - 1] == ' ')
			continue;
		s[n++] = ws ? ' ' : c;
	}
	size_t st = 0, en = n;
	bool reply = false;
	for (;;) {
		/* step 2: trailers "(fwd)" and whitespace */
		for (;;) {
			if (en > st && s[en - 1] == ' ') {
				en--;
			} else if (en - st >= 5 && ci_at(s, en - 5, en, "(fwd)")) {
				en -= 5;
				reply = true;
			} else {
				break;
			}
		}
		/* steps 3 to 5: leaders, then one blob if something is left after it, until nothing changes */
		for (bool changed = true; changed;) {
			changed = false;
			for (;;) {
				size_t e;
				if (st < en && s[st] == ' ') {
					st++;
				} else if ((e = refwd_end(s, st, en)) != st) {
					st = e;
					reply = true;
				} else {
					break;
				}
				changed = true;
			}
			size_t b = blob_end(s, st, en);
			if (b != st && b < en) {
				st = b;
				changed = true;
			}
		}
		/* step 6: a "[fwd: ...]" wrapper */
		if (en - st >= 6 && ci_at(s, st, en, "[fwd:") && s[en - 1] == ']') {
			st += 5;
			en--;
			reply = true;
			continue;
		}
		break;
	}
	unicasemap_key(s + st, en - st, out);
	free(s);
	return reply;
}

/* ---- sort programs ---- */

int imap_sort_parse(const struct imap_arg *list, struct imap_sort_key *keys_r, size_t *count_r, struct buf *error_r)
{
	static const struct {
		const char *name;
		enum imap_sort_key_type type;
	} names[] = {
		{ "ARRIVAL", IMAP_SORT_ARRIVAL },
		{ "CC", IMAP_SORT_CC },
		{ "DATE", IMAP_SORT_DATE },
		{ "FROM", IMAP_SORT_FROM },
		{ "SIZE", IMAP_SORT_SIZE },
		{ "SUBJECT", IMAP_SORT_SUBJECT },
		{ "TO", IMAP_SORT_TO },
		{ "DISPLAYFROM", IMAP_SORT_DISPLAYFROM },
		{ "DISPLAYTO", IMAP_SORT_DISPLAYTO },
	};
	*count_r = 0;
	if (list == NULL || list->type != IMAP_ARG_LIST || list->list_count == 0) {
		buf_append_str(error_r, "SORT needs a parenthesized list of sort keys");
		return IX_EINVAL;
	}
	bool reverse = false;
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "REVERSE") && !reverse) {
			reverse = true;
			continue;
		}
		size_t k = 0;
		while (k < IX_ARRAY_LEN(names) && !imap_arg_atom_equals(a, names[k].name))
			k++;
		if (k == IX_ARRAY_LEN(names)) {
			buf_append_str(error_r, "Unknown sort key");
			return IX_EINVAL;
		}
		if (*count_r == IMAP_SORT_MAX_KEYS) {
			buf_append_str(error_r, "Too many sort keys");
			return IX_EINVAL;
		}
		keys_r[*count_r].type = names[k].type;
		keys_r[(*count_r)++].reverse = reverse;
		reverse = false;
	}
	if (reverse) {
		buf_append_str(error_r, "REVERSE must be followed by a sort key");
		return IX_EINVAL;
	}
	return 0;
}

static int cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_key(const struct imap_sort_msg *a, const struct imap_sort_msg *b, enum imap_sort_key_type t)
{
	switch (t) {
	case IMAP_SORT_ARRIVAL: return cmp_num(a->arrival, b->arrival);
	case IMAP_SORT_DATE: return cmp_num(a->date, b->date);
	case IMAP_SORT_SIZE: return a->size < b->size ? -1 : a->size > b->size;
	case IMAP_SORT_CC: return strcmp(a->cc, b->cc);
	case IMAP_SORT_FROM: return strcmp(a->from, b->from);
	case IMAP_SORT_TO: return strcmp(a->to, b->to);
	case IMAP_SORT_SUBJECT: return strcmp(a->subject, b->subject);
	case IMAP_SORT_DISPLAYFROM: return strcmp(a->display_from, b->display_from);
	case IMAP_SORT_DISPLAYTO: return strcmp(a->display_to, b->display_to);
	}
	return 0;
}

static int cmp_msgs(const struct imap_sort_msg *a, const struct imap_sort_msg *b, const struct imap_sort_key *keys,
		    size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i++) {
		int c = cmp_key(a, b, keys[i].type);
		if (c != 0)
			return keys[i].reverse ? -c : c;
	}
	return cmp_num(a->seq, b->seq);
}

/* Sorts idx[0..k) stably by cmp (bottom-up merge sort: O(k log k) whatever the input, no recursion). */
static void merge_sort(size_t *idx, size_t k, int (*cmp)(const void *ctx, size_t a, size_t b), const void *ctx)
{
	if (k < 2)
		return;
	size_t *tmp = xcalloc(k, sizeof(*tmp)), *src = idx, *dst = tmp;
	for (size_t width = 1; width < k; width *= 2) {
		for (size_t lo = 0; lo < k; lo += 2 * width) {
			size_t mid = lo + width < k ? lo + width : k, hi = lo + 2 * width < k ? lo + 2 * width : k;
			size_t i = lo, j = mid, o = lo;
			while (i < mid && j < hi)
				dst[o++] = cmp(ctx, src[j], src[i]) < 0 ? src[j++] : src[i++];
			while (i < mid)
				dst[o++] = src[i++];
			while (j < hi)
				dst[o++] = src[j++];
		}
		size_t *sw = src;
		src = dst;
		dst = sw;
	}
	if (src != idx)
		memcpy(idx, src, k * sizeof(*idx));
	free(tmp);
}

struct sort_ctx {
	const struct imap_sort_msg *msgs;
	const struct imap_sort_key *keys;
	size_t nkeys;
};

static int sort_cmp(const void *ctx, size_t a, size_t b)
{
	const struct sort_ctx *c = ctx;
	return cmp_msgs(&c->msgs[a], &c->msgs[b], c->keys, c->nkeys);
}

void imap_sort_messages(struct imap_sort_msg *msgs, size_t n, const struct imap_sort_key *keys, size_t nkeys)
{
	if (n < 2)
		return;
	size_t *idx = xcalloc(n, sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	struct sort_ctx c = { msgs, keys, nkeys };
	merge_sort(idx, n, sort_cmp, &c);
	struct imap_sort_msg *sorted = xcalloc(n, sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = msgs[idx[i]];
	memcpy(msgs, sorted, n * sizeof(*msgs));
	free(sorted);
	free(idx);
}

/* ---- Message-IDs ---- */

size_t imap_msgid_parse(const char *value, size_t len, size_t max, struct buf *ids_r)
{
	size_t start = ids_r->len, count = 0;
	struct buf one = BUF_INIT;
	for (size_t i = 0; i < len;) {
		if (value[i] != '<') {
			i++;
			continue;
		}
		buf_reset(&one);
		buf_append_char(&one, '<');
		size_t j = i + 1, depth = 0;
		bool ok = true;
		for (; j < len && value[j] != '>'; j++) {
			char c = value[j];
			if (c == '<') {
				ok = false;
				break;
			}
			if (c == '(')
				depth++;
			else if (c == ')' && depth > 0)
				depth--;
			else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\0')
				buf_append_char(&one, c);
		}
		if (!ok || j >= len) { /* restart at the inner '<', or the field ended without '>' */
			i = j;
			continue;
		}
		buf_append_char(&one, '>');
		const char *at = memchr(one.data, '@', one.len);
		if (one.len <= IMAP_MSGID_MAX && at != NULL && at > one.data + 1 && at < one.data + one.len - 2) {
			buf_append(ids_r, one.data, one.len);
			buf_append_char(ids_r, '\0');
			count++;
		}
		i = j + 1;
	}
	buf_free(&one);
	if (max > 0 && count > max) { /* keep the last max */
		size_t skip = 0;
		for (size_t k = 0; k < count - max; k++)
			skip += strlen(ids_r->data + start + skip) + 1;
		memmove(ids_r->data + start, ids_r->data + start + skip, ids_r->len - start - skip);
		ids_r->len -= skip;
		count = max;
	}
	return count;
}

/* ---- thread trees ---- */

#define NONE SIZE_MAX

struct tnode {
	size_t parent, first, last, prev, next; /* NONE when absent; node 0 is the invisible root of every thread */
	size_t msg;                             /* index into msgs, NONE for a dummy */
	int64_t date;
};

struct tree {
	struct tnode *n;
	size_t count, cap;
};

static size_t node_new(struct tree *t, size_t msg)
{
	if (t->count == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->n = xrealloc(t->n, t->cap * sizeof(*t->n));
	}
	t->n[t->count] = (struct tnode){ NONE, NONE, NONE, NONE, NONE, msg, 0 };
	return t->count++;
}

static void unlink_node(struct tree *t, size_t x)
{
	struct tnode *c = &t->n[x];
	if (c->parent == NONE)
		return;
	struct tnode *p = &t->n[c->parent];
	if (c->prev != NONE)
		t->n[c->prev].next = c->next;
	else
		p->first = c->next;
	if (c->next != NONE)
		t->n[c->next].prev = c->prev;
	else
		p->last = c->prev;
	c->parent = c->prev = c->next = NONE;
}

static void append_child(struct tree *t, size_t parent, size_t x)
{
	struct tnode *p = &t->n[parent], *c = &t->n[x];
	c->parent = parent;
	c->prev = p->last;
	c->next = NONE;
	if (p->last != NONE)
		t->n[p->last].next = x;
	else
		p->first = x;
	p->last = x;
}

/* Is a the same as b or below it? */
static bool descends(const struct tree *t, size_t a, size_t b)
{
	for (size_t x = a; x != NONE && x != 0; x = t->n[x].parent)
		if (x == b)
			return true;
	return false;
}

/* Next node in post-order (children before their parent) under node 0; start with post_first(t, 0). */
static size_t post_first(const struct tree *t, size_t x)
{
	while (t->n[x].first != NONE)
		x = t->n[x].first;
	return x;
}

static size_t post_next(const struct tree *t, size_t x)
{
	if (t->n[x].next != NONE)
		return post_first(t, t->n[x].next);
	return t->n[x].parent;
}

/* Sorts the children of parent by date, then mailbox order (RFC 5256 step 6). */
static int child_cmp(const void *ctx, size_t a, size_t b)
{
	const struct tree *t = ctx;
	if (t->n[a].date != t->n[b].date)
		return t->n[a].date < t->n[b].date ? -1 : 1;
	size_t ma = t->n[a].msg != NONE ? t->n[a].msg : t->n[t->n[a].first].msg;
	size_t mb = t->n[b].msg != NONE ? t->n[b].msg : t->n[t->n[b].first].msg;
	return ma < mb ? -1 : ma > mb;
}

static void sort_children(struct tree *t, size_t parent, size_t **tmp, size_t *tmp_cap)
{
	size_t k = 0;
	for (size_t c = t->n[parent].first; c != NONE; c = t->n[c].next) {
		if (k == *tmp_cap) {
			*tmp_cap = *tmp_cap ? *tmp_cap * 2 : 64;
			*tmp = xrealloc(*tmp, *tmp_cap * sizeof(**tmp));
		}
		(*tmp)[k++] = c;
	}
	if (k < 2)
		return;
	merge_sort(*tmp, k, child_cmp, t);
	t->n[parent].first = t->n[parent].last = NONE;
	for (size_t i = 0; i < k; i++)
		append_child(t, parent, (*tmp)[i]);
}

/* Dates of message nodes from msgs; every child list sorted (dummies, only at the top after pruning, take their
 * first child's date), the top level last. */
static void sort_tree(struct tree *t, const struct imap_thread_msg *msgs)
{
	size_t *tmp = NULL, cap = 0;
	for (size_t x = 1; x < t->count; x++)
		if (t->n[x].msg != NONE)
			t->n[x].date = msgs[t->n[x].msg].date;
	for (size_t x = post_first(t, 0); x != 0; x = post_next(t, x)) {
		sort_children(t, x, &tmp, &cap);
		if (t->n[x].msg == NONE && t->n[x].first != NONE)
			t->n[x].date = t->n[t->n[x].first].date;
	}
	sort_children(t, 0, &tmp, &cap);
	free(tmp);
}

/* Appends the thread-list: each top-level node as "(...)"; a chain of only children as "a b c"; two or more
 * children each in their own parentheses after a space ("a (b)(c d)"); a dummy lists only its children. */
static void write_tree(const struct tree *t, const struct imap_thread_msg *msgs, struct buf *out)
{
	size_t x = t->n[0].first;
	if (x == NONE)
		return;
	buf_append_char(out, '(');
	for (;;) {
		const struct tnode *c = &t->n[x];
		bool branch = c->first != NONE && c->first != c->last;
		if (c->msg != NONE)
			buf_printf(out, "%s%u",
				   c->parent != 0 && t->n[c->parent].msg != NONE && t->n[c->parent].first == x &&
						   t->n[c->parent].last == x
					   ? " "
					   : "",
				   msgs[c->msg].id);
		if (c->first != NONE) {
			if (branch || c->msg == NONE)
				buf_append_str(out, c->msg != NONE ? " (" : "(");
			x = c->first;
			continue;
		}
		/* a leaf: close the groups that end here, climbing to the next sibling */
		for (;;) {
			const struct tnode *p = &t->n[x];
			size_t parent = p->parent;
			bool grouped = parent == 0 || t->n[parent].first != t->n[parent].last ||
				       t->n[parent].msg == NONE;
			if (grouped)
				buf_append_char(out, ')');
			if (p->next != NONE) {
				buf_append_char(out, '(');
				x = p->next;
				break;
			}
			if (parent == 0)
				return;
			x = parent;
		}
	}
}

/* ---- ORDEREDSUBJECT ---- */

void imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n, struct buf *out)
{
	if (n == 0)
		return;
	struct imap_sort_msg *sm = xcalloc(n, sizeof(*sm));
	for (size_t i = 0; i < n; i++) {
		sm[i].seq = (uint32_t)i; /* the index: mailbox order */
		sm[i].date = msgs[i].date;
		sm[i].subject = msgs[i].subject;
	}
	static const struct imap_sort_key keys[] = { { IMAP_SORT_SUBJECT, false }, { IMAP_SORT_DATE, false } };
	imap_sort_messages(sm, n, keys, IX_ARRAY_LEN(keys));
	struct tree t = { 0 };
	node_new(&t, NONE);
	size_t head = NONE;
	for (size_t i = 0; i < n; i++) {
		size_t x = node_new(&t, sm[i].seq);
		if (head != NONE && strcmp(msgs[t.n[head].msg].subject, sm[i].subject) == 0) {
			append_child(&t, head, x);
		} else {
			append_child(&t, 0, x);
			head = x;
		}
	}
	sort_tree(&t, msgs);
	write_tree(&t, msgs, out);
	free(t.n);
	free(sm);
}

/* ---- REFERENCES ---- */

/* A string to node index table with open addressing; keys are owned by the caller. */
struct strmap {
	const char **keys;
	size_t *vals;
	size_t cap, count;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static size_t *strmap_slot(struct strmap *m, const char *key, bool add)
{
	if (add && (m->count + 1) * 2 > m->cap) {
		struct strmap old = *m;
		m->cap = m->cap ? m->cap * 2 : 64;
		m->keys = xcalloc(m->cap, sizeof(*m->keys));
		m->vals = xcalloc(m->cap, sizeof(*m->vals));
		m->count = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i] != NULL)
				*strmap_slot(m, old.keys[i], true) = old.vals[i];
		free(old.keys);
		free(old.vals);
	}
	if (m->cap == 0)
		return NULL;
	for (size_t i = str_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == NULL) {
			if (!add)
				return NULL;
			m->keys[i] = key;
			m->vals[i] = NONE;
			m->count++;
			return &m->vals[i];
		}
		if (strcmp(m->keys[i], key) == 0)
			return &m->vals[i];
	}
}

static void strmap_free(struct strmap *m)
{
	free(m->keys);
	free(m->vals);
}

/* The node of a Message-ID, made (empty) when it is new. */
static size_t id_node(struct tree *t, struct strmap *ids, const char *id)
{
	size_t *v = strmap_slot(ids, id, true);
	if (*v == NONE)
		*v = node_new(t, NONE);
	return *v;
}

/* Step 4: dummies without children go; a dummy's children take its place, at the top only when it has one. */
static void prune(struct tree *t)
{
	for (size_t x = post_first(t, 0); x != 0;) {
		size_t next = post_next(t, x), parent = t->n[x].parent;
		if (t->n[x].msg == NONE) {
			if (t->n[x].first == NONE) {
				unlink_node(t, x);
			} else if (parent != 0 || t->n[x].first == t->n[x].last) {
				/* the children replace x where it stands */
				size_t before = t->n[x].next;
				while (t->n[x].first != NONE) {
					size_t c = t->n[x].first;
					unlink_node(t, c);
					struct tnode *p = &t->n[parent], *cn = &t->n[c];
					cn->parent = parent;
					cn->next = before;
					cn->prev = before != NONE ? t->n[before].prev : p->last;
					if (cn->prev != NONE)
						t->n[cn->prev].next = c;
					else
						p->first = c;
					if (before != NONE)
						t->n[before].prev = c;
					else
						p->last = c;
				}
				unlink_node(t, x);
			}
		}
		x = next;
	}
}

static const char *thread_subject(const struct tree *t, const struct imap_thread_msg *msgs, size_t x, bool *reply_r)
{
	size_t m = t->n[x].msg != NONE ? t->n[x].msg : t->n[t->n[x].first].msg;
	*reply_r = msgs[m].reply;
	return msgs[m].subject;
}

/* Step 5: top-level threads with the same base subject are gathered. */
static void merge_subjects(struct tree *t, const struct imap_thread_msg *msgs)
{
	struct strmap subj = { 0 };
	for (size_t x = t->n[0].first; x != NONE; x = t->n[x].next) {
		bool reply, old_reply;
		const char *s = thread_subject(t, msgs, x, &reply);
		if (*s == '\0')
			continue;
		size_t *v = strmap_slot(&subj, s, true);
		if (*v == NONE) {
			*v = x;
			continue;
		}
		thread_subject(t, msgs, *v, &old_reply);
		if (t->n[*v].msg != NONE && (t->n[x].msg == NONE || (old_reply && !reply)))
			*v = x;
	}
	for (size_t x = t->n[0].first, next; x != NONE; x = next) {
		next = t->n[x].next;
		bool reply, old_reply;
		const char *s = thread_subject(t, msgs, x, &reply);
		if (*s == '\0')
			continue;
		size_t *v = strmap_slot(&subj, s, false), o = *v;
		if (o == x)
			continue;
		thread_subject(t, msgs, o, &old_reply);
		bool dummy = t->n[x].msg == NONE, old_dummy = t->n[o].msg == NONE;
		if (dummy && old_dummy) {
			while (t->n[x].first != NONE) {
				size_t c = t->n[x].first;
				unlink_node(t, c);
				append_child(t, o, c);
			}
			unlink_node(t, x);
		} else if (old_dummy || (reply && !old_reply)) {
			unlink_node(t, x);
			append_child(t, o, x);
		} else {
			/* a new dummy takes the table's place at the top, both threads below it */
			size_t d = node_new(t, NONE);
			struct tnode *on = &t->n[o], *dn = &t->n[d];
			dn->parent = 0;
			dn->prev = on->prev;
			dn->next = on->next;
			if (on->prev != NONE)
				t->n[on->prev].next = d;
			else
				t->n[0].first = d;
			if (on->next != NONE)
				t->n[on->next].prev = d;
			else
				t->n[0].last = d;
			on->parent = on->prev = on->next = NONE;
			append_child(t, d, o);
			if (next == o)
				next = d;
			unlink_node(t, x);
			append_child(t, d, x);
			*v = d;
		}
	}
	strmap_free(&subj);
}

/* REFS: each top-level thread takes the date of its most recent message, and the top level is sorted again. */
static void sort_by_latest(struct tree *t)
{
	int64_t *latest = xcalloc(t->count, sizeof(*latest));
	for (size_t x = 0; x < t->count; x++)
		latest[x] = t->n[x].msg != NONE ? t->n[x].date : INT64_MIN;
	for (size_t x = post_first(t, 0); x != 0; x = post_next(t, x))
		if (t->n[x].parent != NONE && latest[x] > latest[t->n[x].parent])
			latest[t->n[x].parent] = latest[x];
	for (size_t x = t->n[0].first; x != NONE; x = t->n[x].next)
		t->n[x].date = latest[x];
	size_t *tmp = NULL, cap = 0;
	sort_children(t, 0, &tmp, &cap);
	free(tmp);
	free(latest);
}

/* REFERENCES (refs false) and REFS (true). */
static void thread_links(const struct imap_thread_msg *msgs, size_t n, bool refs_order, struct buf *out)
{
	if (n == 0)
		return;
	struct tree t = { 0 };
	struct strmap ids = { 0 };
	node_new(&t, NONE);
	/* every Message-ID string lives in one arena; offsets, since it grows */
	struct buf arena = BUF_INIT;
	size_t *own = xcalloc(n, sizeof(*own)), *refs = xcalloc(n, sizeof(*refs)), *nrefs = xcalloc(n, sizeof(*nrefs));
	for (size_t i = 0; i < n; i++) {
		own[i] = arena.len;
		const char *mid = msgs[i].message_id;
		if (mid == NULL || imap_msgid_parse(mid, strlen(mid), 1, &arena) == 0)
			own[i] = NONE;
		refs[i] = arena.len;
		const char *r = msgs[i].references;
		nrefs[i] = r != NULL ? imap_msgid_parse(r, strlen(r), IMAP_THREAD_MAX_REFS, &arena) : 0;
		if (nrefs[i] == 0 && msgs[i].in_reply_to != NULL) {
			struct buf irt = BUF_INIT;
			if (imap_msgid_parse(msgs[i].in_reply_to, strlen(msgs[i].in_reply_to), 0, &irt) > 0) {
				buf_append(&arena, irt.data, strlen(irt.data) + 1);
				nrefs[i] = 1;
			}
			buf_free(&irt);
		}
	}
	const char *base = buf_cstr(&arena);
	for (size_t i = 0; i < n; i++) {
		/* step 1A: the message's node; a repeated or missing Message-ID gets a node of its own */
		size_t me;
		if (own[i] != NONE) {
			me = id_node(&t, &ids, base + own[i]);
			if (t.n[me].msg != NONE)
				me = node_new(&t, i);
			else
				t.n[me].msg = i;
		} else {
			me = node_new(&t, i);
		}
		/* step 1B: link the references in order, never over an existing link, never into a loop */
		size_t prev = NONE;
		const char *r = base + refs[i];
		for (size_t k = 0; k < nrefs[i]; k++, r += strlen(r) + 1) {
			size_t c = id_node(&t, &ids, r);
			if (prev != NONE && t.n[c].parent == NONE && c != prev && !descends(&t, prev, c))
				append_child(&t, prev, c);
			prev = c;
		}
		/* step 1C: the last reference is the parent (replacing any parent set before) */
		if (prev != NONE && prev != me && !descends(&t, prev, me)) {
			unlink_node(&t, me);
			append_child(&t, prev, me);
		} else if (prev == NONE && t.n[me].parent != NONE) {
			unlink_node(&t, me);
		}
	}
	/* step 2: the root set */
	for (size_t x = 1; x < t.count; x++)
		if (t.n[x].parent == NONE)
			append_child(&t, 0, x);
	strmap_free(&ids);
	prune(&t);
	if (!refs_order)
		merge_subjects(&t, msgs);
	sort_tree(&t, msgs);
	if (refs_order)
		sort_by_latest(&t);
	write_tree(&t, msgs, out);
	buf_free(&arena);
	free(own);
	free(refs);
	free(nrefs);
	free(t.n);
}

void imap_thread_references(const struct imap_thread_msg *msgs, size_t n, struct buf *out)
{
	thread_links(msgs, n, false, out);
}

void imap_thread_refs(const struct imap_thread_msg *msgs, size_t n, struct buf *out)
{
	thread_links(msgs, n, true, out);
}
