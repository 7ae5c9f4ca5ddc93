/* imap_sort_cmd.c - SORT (RFC 5256, RFC 5957 DISPLAY keys, RFC 5267 ESORT) and THREAD (ORDEREDSUBJECT,
 * REFERENCES) over the selected view: SEARCH's criteria pick the messages, their keys come from the MIME cache. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "common/unicasemap.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_search.h"
#include "transport/imap/imap_sort.h"
#include "store/mime.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What SORT and THREAD know of one message. */
struct imap_sort_keys {
	struct buf subject, from, to, cc, display_from, display_to;
	bool reply;
	char *message_id, *in_reply_to, *references;
	int64_t arrival, date;
	uint64_t size;
};

/* Replaces b's contents by their i;unicode-casemap ordering key. */
static void to_key(struct buf *b)
{
	struct buf key = BUF_INIT;
	unicasemap_key(buf_cstr(b), b->len, &key);
	buf_free(b);
	*b = key;
}

/* The first address of a decoded address field: its addr-mailbox, and its display name or else
 * "mailbox@host" (RFC 5957), both as i;unicode-casemap keys; "" when there is none. */
static void first_address(const char *field, struct buf *mailbox_r, struct buf *display_r)
{
	if (field == NULL)
		return;
	struct buf lines = BUF_INIT;
	if (mime_addr_text(field, strlen(field), &lines) > 0) {
		const char *s = buf_cstr(&lines), *nl = strchr(s, '\n');
		size_t len = nl != NULL ? (size_t)(nl - s) : lines.len;
		const char *lt = NULL;
		for (size_t i = 0; i < len; i++)
			if (s[i] == '<')
				lt = s + i;
		const char *gt = lt != NULL ? memchr(lt, '>', len - (size_t)(lt - s)) : NULL;
		if (lt != NULL && gt != NULL) {
			const char *at = NULL;
			for (const char *p = lt + 1; p < gt; p++)
				if (*p == '@')
					at = p;
			buf_append(mailbox_r, lt + 1, (size_t)((at != NULL ? at : gt) - lt - 1));
			size_t name_len = (size_t)(lt - s);
			while (name_len > 0 && s[name_len - 1] == ' ')
				name_len--;
			if (name_len > 0)
				buf_append(display_r, s, name_len);
			else
				buf_append(display_r, lt + 1, (size_t)(gt - lt - 1));
		}
	}
	buf_free(&lines);
	to_key(mailbox_r);
	to_key(display_r);
}

static void keys_load(struct imap_session *s, uint32_t uid, struct imap_sort_keys *k)
{
	struct store *st = s->srv->ls.cfg.store;
	struct store_msg m;
	if (store_msg_get(st, s->sel_guid, s->sel_folder, uid, imap_user_id(s), &m, NULL) == 0) {
		k->arrival = m.internal_date;
		k->size = m.size;
		store_msg_free(&m);
	}
	k->date = k->arrival;
	struct mime_info *mi = NULL;
	if (store_fetch_mime(st, s->sel_guid, s->sel_folder, uid, &mi, NULL) == 0) {
		if (mi->date_unix != -1)
			k->date = mi->date_unix;
		if (mi->subject != NULL)
			k->reply = imap_base_subject(mi->subject, strlen(mi->subject), &k->subject);
		first_address(mi->from, &k->from, &k->display_from);
		first_address(mi->to, &k->to, &k->display_to);
		struct buf unused = BUF_INIT;
		first_address(mi->cc, &k->cc, &unused);
		buf_free(&unused);
		k->message_id = mi->message_id != NULL ? xstrdup(mi->message_id) : NULL;
		k->in_reply_to = mi->in_reply_to != NULL ? xstrdup(mi->in_reply_to) : NULL;
		k->references = mi->references != NULL ? xstrdup(mi->references) : NULL;
	}
	mime_info_destroy(&mi);
}

static void keys_clear(struct imap_sort_keys *k)
{
	buf_free(&k->subject);
	buf_free(&k->from);
	buf_free(&k->to);
	buf_free(&k->cc);
	buf_free(&k->display_from);
	buf_free(&k->display_to);
	free(k->message_id);
	free(k->in_reply_to);
	free(k->references);
}

static void keys_free(struct imap_sort_keys *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		keys_clear(&k[i]);
	free(k);
}

/* What the sort keys compare of one message; seq: its place in the mailbox (the last tie-break). */
static void sort_msg(const struct imap_sort_keys *k, uint32_t seq, struct imap_sort_msg *sm_r)
{
	*sm_r = (struct imap_sort_msg){ .seq = seq,
					.arrival = k->arrival,
					.date = k->date,
					.size = k->size,
					.cc = buf_cstr((struct buf *)&k->cc),
					.from = buf_cstr((struct buf *)&k->from),
					.to = buf_cstr((struct buf *)&k->to),
					.subject = buf_cstr((struct buf *)&k->subject),
					.display_from = buf_cstr((struct buf *)&k->display_from),
					.display_to = buf_cstr((struct buf *)&k->display_to) };
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct imap_sort_keys *imap_sort_keys_new(struct imap_session *s, uint32_t uid)
{
	struct imap_sort_keys *k = xcalloc(1, sizeof(*k));
	keys_load(s, uid, k);
	return k;
}

void imap_sort_keys_destroy(struct imap_sort_keys **k)
{
	if (*k == NULL)
		return;
	keys_clear(*k);
	free(*k);
	*k = NULL;
}

void imap_sort_order(struct imap_sort_keys **k, uint32_t *uids, size_t n, const struct imap_sort_key *keys,
		     size_t nkeys)
{
	struct imap_sort_msg *sm = xcalloc(n + 1, sizeof(*sm));
	for (size_t i = 0; i < n; i++)
		sort_msg(k[i], (uint32_t)i, &sm[i]);
	/* ties go by mailbox order, which is UID order: seq is the member's rank by UID */
	uint64_t *byuid = xcalloc(n + 1, sizeof(*byuid));
	for (size_t i = 0; i < n; i++)
		byuid[i] = (uint64_t)uids[i] << 32 | i;
	qsort(byuid, n, sizeof(*byuid), cmp_u64);
	for (size_t r = 0; r < n; r++)
		sm[byuid[r] & 0xffffffffu].seq = (uint32_t)r;
	imap_sort_messages(sm, n, keys, nkeys);
	struct imap_sort_keys **k2 = xcalloc(n + 1, sizeof(*k2));
	uint32_t *u2 = xcalloc(n + 1, sizeof(*u2));
	for (size_t i = 0; i < n; i++) {
		size_t from = byuid[sm[i].seq] & 0xffffffffu;
		k2[i] = k[from];
		u2[i] = uids[from];
	}
	free(byuid);
	memcpy(k, k2, n * sizeof(*k));
	memcpy(uids, u2, n * sizeof(*uids));
	free(k2);
	free(u2);
	free(sm);
}

/* The common head of SORT and THREAD after their first argument: charset and criteria. Returns the matching
 * messages' keys (*n_r of them, with sequence numbers and UIDs), or NULL after answering the command. keep_r (may be
 * NULL): the parsed criteria, kept for an update context (freed otherwise). */
static struct imap_sort_keys *select_messages(struct imap_session *s, const struct imap_command *cmd, size_t first,
					      uint32_t **seqs_r, uint32_t **uids_r, size_t *n_r,
					      struct imap_search_query **keep_r)
{
	const char *cs;
	size_t cs_len;
	if (cmd->arg_count < first + 2 || !imap_arg_get_astring(&cmd->args[first], &cs, &cs_len)) {
		imap_tagged(s, cmd->tag, "BAD %s needs a charset and search criteria", cmd->name);
		return NULL;
	}
	if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
		imap_tagged(s, cmd->tag, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return NULL;
	}
	struct buf err = BUF_INIT;
	struct imap_search_query *q = NULL;
	bool badcharset = false;
	const struct imap_arg *crit = &cmd->args[first + 1];
	size_t ncrit = cmd->arg_count - first - 1;
	if (imap_arg_atom_equals(crit, "RETURN") || imap_arg_atom_equals(crit, "CHARSET")) {
		imap_tagged(s, cmd->tag, "BAD Search criteria expected");
		return NULL;
	}
	if (imap_search_parse(crit, ncrit, &q, &badcharset, &err) != 0) {
		imap_tagged(s, cmd->tag, "BAD %s", buf_cstr(&err));
		buf_free(&err);
		return NULL;
	}
	buf_free(&err);
	if (s->rev2 && q->uses_recent) {
		imap_search_query_destroy(&q);
		imap_tagged(s, cmd->tag, "BAD " IMAP_REV2_NO_RECENT_KEYS);
		return NULL;
	}
	uint64_t maxmod;
	size_t n = imap_search_run(s, q, seqs_r, uids_r, &maxmod);
	if (q->uses_modseq)
		s->condstore = true;
	if (keep_r != NULL) {
		*keep_r = q;
		q = NULL;
	}
	imap_search_query_destroy(&q);
	struct imap_sort_keys *k = xcalloc(n + 1, sizeof(*k));
	for (size_t i = 0; i < n; i++)
		keys_load(s, (*uids_r)[i], &k[i]);
	*n_r = n;
	return k;
}

static void finish(struct imap_session *s, const struct imap_command *cmd, const char *what)
{
	if (cmd->uid)
		imap_tagged(s, cmd->tag, "OK %s completed.", what);
	else {
		struct buf text = BUF_INIT;
		buf_printf(&text, "OK %s completed.", what);
		imap_tagged_noexpunge(s, cmd->tag, buf_cstr(&text));
		buf_free(&text);
	}
}

void imap_cmd_sort(struct imap_session *s, const struct imap_command *cmd)
{
	size_t first = 0;
	bool esort = false;
	struct imap_return_opts ret = { 0 };
	if (cmd->arg_count > 0 && imap_arg_atom_equals(&cmd->args[0], "RETURN")) {
		/* ESORT and CONTEXT=SORT (RFC 5267): the RETURN options of SEARCH but SAVE */
		if (cmd->arg_count < 2 ||
		    imap_search_return_parse(&cmd->args[1], ~(unsigned)IMAP_SEARCH_RETURN_SAVE, &ret, NULL) != 0) {
			imap_tagged(s, cmd->tag,
				    "BAD RETURN takes a list of MIN, MAX, COUNT, ALL, PARTIAL, UPDATE, CONTEXT");
			return;
		}
		const char *bad_update = imap_update_refusal(s, cmd, ret.opts);
		if (bad_update != NULL) {
			imap_tagged(s, cmd->tag, "BAD %s", bad_update);
			return;
		}
		esort = true;
		first = 2;
	}
	struct imap_sort_key keys[IMAP_SORT_MAX_KEYS];
	size_t nkeys;
	struct buf err = BUF_INIT;
	if (cmd->arg_count <= first || imap_sort_parse(&cmd->args[first], keys, &nkeys, &err) != 0) {
		imap_tagged(s, cmd->tag, "BAD %s", err.len > 0 ? buf_cstr(&err) : "SORT needs sort keys");
		buf_free(&err);
		return;
	}
	buf_free(&err);
	uint32_t *seqs = NULL, *uids = NULL;
	size_t n;
	struct imap_search_query *update_query = NULL;
	struct imap_sort_keys *k = select_messages(s, cmd, first + 1, &seqs, &uids, &n,
						   (ret.opts & IMAP_SEARCH_RETURN_UPDATE) ? &update_query : NULL);
	if (k == NULL)
		return;
	struct imap_sort_msg *sm = xcalloc(n + 1, sizeof(*sm));
	for (size_t i = 0; i < n; i++)
		sort_msg(&k[i], (uint32_t)i, &sm[i]);
	imap_sort_messages(sm, n, keys, nkeys);
	uint32_t *out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = cmd->uid ? uids[sm[i].seq] : seqs[sm[i].seq];
	if (esort) {
		imap_write_esearch(&s->out, cmd, &ret, out, n);
	} else {
		buf_append_str(&s->out, "* SORT");
		for (size_t i = 0; i < n; i++)
			buf_printf(&s->out, " %u", out[i]);
	}
	buf_append_str(&s->out, "\r\n");
	if (ret.opts & IMAP_SEARCH_RETURN_UPDATE) {
		/* the context keeps the members' keys, in the sort order: moved out of k (what is left there is empty) */
		struct imap_sort_keys **mk = xcalloc(n + 1, sizeof(*mk));
		for (size_t i = 0; i < n; i++) {
			mk[i] = xcalloc(1, sizeof(*mk[i]));
			*mk[i] = k[sm[i].seq];
			memset(&k[sm[i].seq], 0, sizeof(k[sm[i].seq]));
			out[i] = uids[sm[i].seq];
		}
		imap_update_start(s, cmd, update_query, keys, nkeys, out, mk, n);
		update_query = NULL;
	}
	imap_search_query_destroy(&update_query);
	free(out);
	free(sm);
	keys_free(k, n);
	free(seqs);
	free(uids);
	finish(s, cmd, "Sort");
}

void imap_cmd_thread(struct imap_session *s, const struct imap_command *cmd)
{
	static const struct {
		const char *name;
		void (*fn)(const struct imap_thread_msg *msgs, size_t n, struct buf *out);
	} algorithms[] = { { "ORDEREDSUBJECT", imap_thread_orderedsubject },
			   { "REFERENCES", imap_thread_references },
			   { "REFS", imap_thread_refs } };
	void (*thread)(const struct imap_thread_msg *msgs, size_t n, struct buf *out) = NULL;
	for (size_t i = 0; i < IX_ARRAY_LEN(algorithms) && cmd->arg_count > 0; i++)
		if (imap_arg_atom_equals(&cmd->args[0], algorithms[i].name))
			thread = algorithms[i].fn;
	if (thread == NULL) {
		imap_tagged(s, cmd->tag, "BAD THREAD takes ORDEREDSUBJECT, REFERENCES or REFS");
		return;
	}
	uint32_t *seqs = NULL, *uids = NULL;
	size_t n;
	struct imap_sort_keys *k = select_messages(s, cmd, 1, &seqs, &uids, &n, NULL);
	if (k == NULL)
		return;
	struct imap_thread_msg *tm = xcalloc(n + 1, sizeof(*tm));
	for (size_t i = 0; i < n; i++)
		tm[i] = (struct imap_thread_msg){ .id = cmd->uid ? uids[i] : seqs[i],
						  .date = k[i].date,
						  .subject = buf_cstr(&k[i].subject),
						  .reply = k[i].reply,
						  .message_id = k[i].message_id,
						  .in_reply_to = k[i].in_reply_to,
						  .references = k[i].references };
	buf_append_str(&s->out, "* THREAD ");
	thread(tm, n, &s->out);
	if (n == 0)
		s->out.len--; /* "* THREAD" alone */
	buf_append_str(&s->out, "\r\n");
	free(tm);
	keys_free(k, n);
	free(seqs);
	free(uids);
	finish(s, cmd, "Thread");
}
