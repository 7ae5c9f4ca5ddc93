/* imap_cmd.c - the IMAP commands on messages: FETCH from the store's MIME cache (answered in batches under
 * output back-pressure), STORE with CONDSTORE, SEARCH/ESEARCH, COPY/MOVE with UIDPLUS, EXPUNGE, APPEND. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_objectid.h"
#include "transport/imap/imap_search.h"
#include "common/log.h"
#include "store/mime.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- sequence sets ---- */

/* Resolves a sequence set (or UID set) argument to indices into the selected view, ascending, no duplicates.
 * Returns 0, or IX_EINVAL with a message (a sequence number that does not exist). */
static int resolve_set(struct imap_session *s, const struct imap_arg *arg, bool uid, size_t **idx_r, size_t *n_r,
		       struct buf *err)
{
	*idx_r = NULL;
	*n_r = 0;
	struct imap_seqset set;
	if (arg->type != IMAP_ARG_ATOM || imap_seqset_parse(arg->str, arg->len, true, &set, err) != 0) {
		if (err->len == 0)
			buf_append_str(err, "Invalid sequence set");
		return IX_EINVAL;
	}
	size_t *idx = xcalloc(s->count + 1, sizeof(*idx));
	size_t n = 0;
	if (set.saved) {
		for (size_t i = 0; i < s->nsaved; i++) {
			long k = imap_find_uid(s, s->saved[i]);
			if (k >= 0)
				idx[n++] = (size_t)k;
		}
	} else if (uid) {
		uint32_t max = s->count > 0 ? s->msgs[s->count - 1].uid : 0;
		struct imap_seq_range *r = NULL;
		size_t nr = s->count > 0 ? imap_seqset_resolve(&set, max, false, &r) : 0;
		for (size_t i = 0; i < nr; i++) {
			size_t lo = 0, hi = s->count;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				if (s->msgs[mid].uid < r[i].lo)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (size_t k = lo; k < s->count && s->msgs[k].uid <= r[i].hi; k++)
				if (n == 0 || idx[n - 1] < k)
					idx[n++] = k;
		}
		free(r);
	} else {
		if (s->count == 0) {
			imap_seqset_free(&set);
			free(idx);
			buf_append_str(err, "No messages in the mailbox");
			return IX_EINVAL;
		}
		for (size_t i = 0; i < set.count; i++) {
			uint32_t lo = set.ranges[i].lo, hi = set.ranges[i].hi;
			if ((lo != IMAP_SEQ_STAR && lo > s->count) || (hi != IMAP_SEQ_STAR && hi > s->count)) {
				imap_seqset_free(&set);
				free(idx);
				buf_printf(err, "Invalid sequence set: the mailbox has %zu messages", s->count);
				return IX_EINVAL;
			}
		}
		struct imap_seq_range *r = NULL;
		size_t nr = imap_seqset_resolve(&set, (uint32_t)s->count, true, &r);
		for (size_t i = 0; i < nr; i++)
			for (uint64_t k = r[i].lo; k <= r[i].hi && k >= 1 && k <= s->count; k++)
				if (n == 0 || idx[n - 1] < k - 1)
					idx[n++] = (size_t)(k - 1);
		free(r);
	}
	imap_seqset_free(&set);
	*idx_r = idx;
	*n_r = n;
	return 0;
}

static void set_error(struct imap_session *s, const char *tag, const struct buf *err)
{
	imap_tagged(s, tag, "BAD %s", buf_cstr(err));
}

/* ---- FETCH ---- */

struct imap_fetch_job {
	char *tag;
	bool uid;
	struct imap_fetch_request req;
	uint32_t *uids; /* the messages, by UID (the view may change while the job runs) */
	size_t n, pos;
	unsigned warned;
	bool seen_done; /* the \Seen this FETCH implies was set beforehand, on the pool, for the UIDs in seen */
	uint32_t *seen; /* ascending */
	size_t nseen;
};

void imap_fetch_job_free(struct imap_fetch_job **jp)
{
	struct imap_fetch_job *j = *jp;
	if (j == NULL)
		return;
	free(j->tag);
	imap_fetch_request_free(&j->req);
	free(j->uids);
	free(j->seen);
	free(j);
	*jp = NULL;
}

static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static void write_internaldate(struct buf *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, month_names[tm.tm_mon], tm.tm_year + 1900,
		   tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void write_literal(struct buf *out, const char *data, size_t len)
{
	buf_printf(out, "{%zu}\r\n", len);
	buf_append(out, data, len);
}

/* The section string the store understands for a body item, without HEADER.FIELDS: "1.2", "1.HEADER", "TEXT". */
static void section_spec(const struct imap_fetch_body *b, bool fields_as_header, struct buf *out)
{
	for (size_t i = 0; i < b->part_count; i++)
		buf_printf(out, "%s%u", i > 0 ? "." : "", b->parts[i]);
	const char *t = NULL;
	switch (b->text) {
	case IMAP_SECTION_WHOLE: break;
	case IMAP_SECTION_HEADER: t = "HEADER"; break;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT: t = fields_as_header ? "HEADER" : NULL; break;
	case IMAP_SECTION_TEXT: t = "TEXT"; break;
	case IMAP_SECTION_MIME: t = "MIME"; break;
	}
	if (t != NULL)
		buf_printf(out, "%s%s", b->part_count > 0 ? "." : "", t);
}

/* What a session that did not ENABLE UTF8=ACCEPT is sent of a message whose headers hold 8-bit bytes (RFC 6855
 * section 3, RFC 6857): the message downgraded by mime_downgrade() and its parse, made at most once per message. */
struct fetch_view {
	enum { VIEW_UNKNOWN, VIEW_STORED, VIEW_DOWNGRADED } state;
	struct mime_info *mi; /* the downgraded message's parse (VIEW_DOWNGRADED) */
	struct buf msg;       /* the downgraded message (VIEW_DOWNGRADED) */
};

/* True when uid goes out downgraded to this session (v then holds it); false when it goes out as stored. */
static bool view_downgraded(struct imap_session *s, uint32_t uid, struct fetch_view *v)
{
	if (s->utf8)
		return false;
	if (v->state == VIEW_UNKNOWN) {
		struct store *st = s->srv->ls.cfg.store;
		struct mime_info *mi = NULL;
		struct buf raw = BUF_INIT;
		v->state = VIEW_STORED;
		if (store_fetch_mime(st, s->sel_guid, s->sel_folder, uid, &mi, NULL) == 0 &&
		    (mi->flags & MIME_F_8BIT_HEADER) != 0 &&
		    store_fetch_body(st, s->sel_guid, s->sel_folder, uid, 0, 0, &raw, NULL) == 0 &&
		    raw.len == mi->msg_size) {
			mime_downgrade(buf_cstr(&raw), mi, &v->msg);
			if (mime_parse(buf_cstr(&v->msg), v->msg.len, NULL, &v->mi, NULL) == 0)
				v->state = VIEW_DOWNGRADED;
		}
		mime_info_destroy(&mi);
		buf_free(&raw);
	}
	return v->state == VIEW_DOWNGRADED;
}

static void view_free(struct fetch_view *v)
{
	mime_info_destroy(&v->mi);
	buf_free(&v->msg);
}

/* Appends the section spec (see mime_section_range) of the downgraded message in v to out, [offset, offset+max_len)
 * of it (max_len 0: to the end). Returns 0 or IX_ENOTFOUND. */
static int view_section(const struct fetch_view *v, const char *spec, uint64_t offset, uint64_t max_len,
			struct buf *out)
{
	size_t off, len;
	if (mime_section_range(v->mi, spec, &off, &len) != 0)
		return IX_ENOTFOUND;
	size_t skip = offset < len ? (size_t)offset : len;
	len -= skip;
	if (max_len != 0 && max_len < len)
		len = (size_t)max_len;
	buf_append(out, v->msg.data + off + skip, len);
	return 0;
}

/* BINARY[part] and BINARY.SIZE[part] (RFC 3516): the part with its Content-Transfer-Encoding undone, from the
 * cached part tree and the stored message (or the downgraded message of the view). */
static void fetch_binary_item(struct imap_session *s, uint32_t uid, const struct imap_fetch_body *b, struct buf *out,
			      struct fetch_view *v)
{
	struct store *st = s->srv->ls.cfg.store;
	struct buf spec = BUF_INIT, msg = BUF_INIT, data = BUF_INIT;
	section_spec(b, false, &spec);
	imap_fetch_body_name(b, out);
	buf_append_char(out, ' ');
	struct mime_info *mi = NULL;
	const struct mime_part *part = NULL;
	if (view_downgraded(s, uid, v)) {
		buf_append(&msg, v->msg.data, v->msg.len);
		part = mime_find_part(v->mi, buf_cstr(&spec));
	} else if (store_fetch_mime(st, s->sel_guid, s->sel_folder, uid, &mi, NULL) == 0 &&
		   store_fetch_body(st, s->sel_guid, s->sel_folder, uid, 0, 0, &msg, NULL) == 0 &&
		   mi->msg_size == msg.len) {
		part = mime_find_part(mi, buf_cstr(&spec));
	}
	if (part == NULL) {
		buf_append_str(out, "NIL");
	} else {
		if (spec.len == 0) /* BINARY[]: the whole message, header included, as BODY[] */
			buf_append(&data, msg.data, msg.len);
		else if (part->is_multipart || part->is_message_rfc822)
			buf_append(&data, msg.data + part->body_off, part->body_len);
		else
			mime_decode_body(part, buf_cstr(&msg), &data);
		if (b->kind == IMAP_FETCH_KIND_BINARY_SIZE) {
			buf_printf(out, "%zu", data.len);
		} else {
			size_t off = 0, len = data.len;
			if (b->partial) {
				off = b->offset < data.len ? b->offset : data.len;
				len = data.len - off < b->length ? data.len - off : b->length;
			}
			bool nul = memchr(data.data != NULL ? data.data + off : "", '\0', len) != NULL;
			buf_printf(out, "%s{%zu}\r\n", nul ? "~" : "", len);
			buf_append(out, data.data != NULL ? data.data + off : "", len);
		}
	}
	mime_info_destroy(&mi);
	buf_free(&spec);
	buf_free(&msg);
	buf_free(&data);
}

/* Appends section spec of uid to out as this session is sent it (see view_downgraded), [offset, offset+max_len). */
static int fetch_section(struct imap_session *s, uint32_t uid, struct fetch_view *v, const char *spec, uint64_t offset,
			 uint64_t max_len, struct buf *out)
{
	if (view_downgraded(s, uid, v))
		return view_section(v, spec, offset, max_len, out);
	return store_fetch_section(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, uid, spec, offset, max_len, out,
				   NULL);
}

static void fetch_body_item(struct imap_session *s, uint32_t uid, const struct imap_fetch_body *b, struct buf *out,
			    struct fetch_view *v)
{
	if (b->kind != IMAP_FETCH_KIND_BODY) {
		fetch_binary_item(s, uid, b, out, v);
		return;
	}
	struct buf spec = BUF_INIT, data = BUF_INIT;
	section_spec(b, true, &spec);
	imap_fetch_body_name(b, out);
	buf_append_char(out, ' ');
	int ret;
	if (b->text == IMAP_SECTION_HEADER_FIELDS || b->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		struct buf hdr = BUF_INIT;
		ret = fetch_section(s, uid, v, buf_cstr(&spec), 0, 0, &hdr);
		if (ret == 0) {
			mime_header_fields(buf_cstr(&hdr), hdr.len, (const char *const *)b->fields, b->field_count,
					   b->text == IMAP_SECTION_HEADER_FIELDS_NOT, &data);
			if (b->partial) {
				size_t off = b->offset < data.len ? b->offset : data.len;
				size_t len = data.len - off < b->length ? data.len - off : b->length;
				buf_consume(&data, off);
				data.len = len;
			}
		}
		buf_free(&hdr);
	} else {
		ret = fetch_section(s, uid, v, buf_cstr(&spec), b->partial ? b->offset : 0, b->partial ? b->length : 0,
				    &data);
	}
	if (ret == 0)
		write_literal(out, buf_cstr(&data), data.len);
	else if (ret == IX_ENOTFOUND)
		buf_append_str(out, "NIL");
	else
		buf_append_str(out, "\"\"");
	buf_free(&spec);
	buf_free(&data);
}

/* Answers FETCH for one message. Returns false when the message is gone. */
static bool fetch_one(struct imap_session *s, struct imap_fetch_job *j, uint32_t uid)
{
	long idx = imap_find_uid(s, uid);
	if (idx < 0)
		return false;
	struct store *st = s->srv->ls.cfg.store;
	const struct imap_fetch_request *req = &j->req;
	struct store_msg m;
	if (store_msg_get(st, s->sel_guid, s->sel_folder, uid, imap_user_id(s), &m, NULL) != 0)
		return false;
	if (req->changedsince && m.modseq <= req->changedsince_modseq) {
		store_msg_free(&m);
		return true;
	}
	unsigned items = req->items;
	bool implicit_flags = false; /* \Seen was set by this FETCH: FLAGS goes last, as Dovecot does (curl wants it) */
	bool sets_seen = (items & (IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT)) != 0;
	for (size_t i = 0; i < req->body_count; i++)
		if (!req->bodies[i].peek)
			sets_seen = true;
	if (j->seen_done) {
		size_t lo = imap_u32_lower_bound(j->seen, j->nseen, uid);
		if (lo < j->nseen && j->seen[lo] == uid)
			implicit_flags = !(items & IMAP_FETCH_FLAGS);
	} else if (sets_seen && !s->readonly && !(m.flags & STORE_FLAG_SEEN) && (s->rights & STORE_RIGHT_SEEN)) {
		struct store_flag_update upd = { 0 };
		upd.uids = &uid;
		upd.nuids = 1;
		upd.mode = STORE_FLAGS_ADD;
		upd.flags = STORE_FLAG_SEEN;
		upd.user = imap_user_id(s);
		if (store_flags(st, s->sel_guid, s->sel_folder, &upd, NULL) == 0) {
			m.flags |= STORE_FLAG_SEEN;
			if (upd.modseq_r != 0)
				m.modseq = upd.modseq_r;
			implicit_flags = !(items & IMAP_FETCH_FLAGS);
		}
		free(upd.failed_r);
	}
	struct buf *out = &s->out;
	imap_announce_keywords(s, m.keywords);
	buf_printf(out, "* %ld FETCH (", idx + 1);
	size_t mark = out->len;
#define SEP() (out->len > mark ? buf_append_char(out, ' ') : (void)0)
	if (j->uid || (items & IMAP_FETCH_UID)) {
		buf_printf(out, "UID %u", uid);
	}
	unsigned fl = (m.flags & ~STORE_FLAG_RECENT) | (s->msgs[idx].flags & STORE_FLAG_RECENT);
	if (items & IMAP_FETCH_FLAGS) {
		SEP();
		buf_append_str(out, "FLAGS ");
		imap_write_store_flags(out, fl, m.keywords);
		s->msgs[idx].flags = fl | (s->msgs[idx].flags & MSG_GONE);
		s->msgs[idx].modseq = m.modseq;
	}
	if ((items & IMAP_FETCH_MODSEQ) || req->changedsince || (s->condstore && (items & IMAP_FETCH_FLAGS))) {
		SEP();
		buf_printf(out, "MODSEQ (%llu)", (unsigned long long)m.modseq);
	}
	if (items & IMAP_FETCH_INTERNALDATE) {
		SEP();
		buf_append_str(out, "INTERNALDATE ");
		write_internaldate(out, m.internal_date);
	}
	if (items & IMAP_FETCH_RFC822_SIZE) {
		SEP();
		buf_printf(out, "RFC822.SIZE %llu", (unsigned long long)m.size);
	}
	if (items & IMAP_FETCH_SAVEDATE) {
		/* RFC 8514: NIL for a message the store has no save date for (stored before it kept them, imported) */
		int64_t saved;
		SEP();
		buf_append_str(out, "SAVEDATE ");
		if (store_msg_savedate(st, s->sel_guid, s->sel_folder, uid, &saved, NULL) == 0)
			write_internaldate(out, saved);
		else
			buf_append_str(out, "NIL");
	}
	if (items & IMAP_FETCH_EMAILID) {
		SEP();
		buf_append_str(out, "EMAILID (");
		imap_emailid(m.hash, out);
		buf_append_char(out, ')');
	}
	if (items & IMAP_FETCH_THREADID) {
		SEP();
		buf_append_str(out, "THREADID (");
		imap_message_threadid(s, uid, m.hash, out);
		buf_append_char(out, ')');
	}
	if (items & IMAP_FETCH_PREVIEW) {
		/* made on demand, so LAZY changes nothing: the preview is always at hand (RFC 8970 3.2) */
		struct buf preview = BUF_INIT;
		SEP();
		buf_append_str(out, "PREVIEW ");
		if (imap_message_preview(s, uid, &preview))
			imap_write_string(out, buf_cstr(&preview), preview.len, s->utf8 ? IMAP_WRITE_UTF8 : 0);
		else
			buf_append_str(out, "NIL");
		buf_free(&preview);
	}
	struct fetch_view view = { VIEW_UNKNOWN, NULL, BUF_INIT };
	if (items & (IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODYSTRUCTURE | IMAP_FETCH_BODY)) {
		struct mime_info *mi = NULL;
		if (view_downgraded(s, uid, &view)) {
			mi = view.mi;
			view.mi = NULL;
		}
		if (mi != NULL || store_fetch_mime(st, s->sel_guid, s->sel_folder, uid, &mi, NULL) == 0) {
			if (items & IMAP_FETCH_ENVELOPE) {
				SEP();
				buf_printf(out, "ENVELOPE %s", mi->envelope);
			}
			if (items & IMAP_FETCH_BODY) {
				SEP();
				buf_printf(out, "BODY %s", mi->body);
			}
			if (items & IMAP_FETCH_BODYSTRUCTURE) {
				SEP();
				buf_printf(out, "BODYSTRUCTURE %s", mi->bodystructure);
			}
			if (view.state == VIEW_DOWNGRADED)
				view.mi = mi;
			else
				mime_info_destroy(&mi);
		} else if (j->warned++ == 0) {
			log_warn("no MIME cache for UID %u in %s", uid, s->sel_folder);
		}
	}
	struct buf data = BUF_INIT;
	if (items & IMAP_FETCH_RFC822_HEADER) {
		SEP();
		if (view_downgraded(s, uid, &view))
			view_section(&view, "HEADER", 0, 0, &data);
		else
			store_fetch_header(st, s->sel_guid, s->sel_folder, uid, &data, NULL);
		buf_append_str(out, "RFC822.HEADER ");
		write_literal(out, buf_cstr(&data), data.len);
		buf_reset(&data);
	}
	if (items & IMAP_FETCH_RFC822_TEXT) {
		SEP();
		fetch_section(s, uid, &view, "TEXT", 0, 0, &data);
		buf_append_str(out, "RFC822.TEXT ");
		write_literal(out, buf_cstr(&data), data.len);
		buf_reset(&data);
	}
	if (items & IMAP_FETCH_RFC822) {
		SEP();
		if (view_downgraded(s, uid, &view))
			view_section(&view, "", 0, 0, &data);
		else
			store_fetch_body(st, s->sel_guid, s->sel_folder, uid, 0, 0, &data, NULL);
		buf_append_str(out, "RFC822 ");
		write_literal(out, buf_cstr(&data), data.len);
		buf_reset(&data);
	}
	buf_free(&data);
	for (size_t i = 0; i < req->body_count; i++) {
		SEP();
		fetch_body_item(s, uid, &req->bodies[i], out, &view);
	}
	view_free(&view);
	if (implicit_flags) {
		SEP();
		buf_append_str(out, "FLAGS ");
		imap_write_store_flags(out, fl, m.keywords);
		s->msgs[idx].flags = fl | (s->msgs[idx].flags & MSG_GONE);
		s->msgs[idx].modseq = m.modseq;
	}
#undef SEP
	buf_append_str(out, ")\r\n");
	store_msg_free(&m);
	return true;
}

bool imap_fetch_continue(struct imap_session *s)
{
	struct imap_fetch_job *j = s->fetch;
	size_t done = 0;
	while (j->pos < j->n) {
		fetch_one(s, j, j->uids[j->pos++]);
		if (++done % IMAP_FETCH_BATCH == 0) {
			imap_flush_out(s);
			if (conn_output_len(s->ls.conn) > CONN_OUTPUT_SOFT_MAX)
				return false;
		}
	}
	char *tag = j->tag;
	j->tag = NULL;
	bool uid = j->uid;
	imap_fetch_job_free(&s->fetch);
	if (uid)
		imap_tagged(s, tag, "OK Fetch completed.");
	else
		imap_tagged_noexpunge(s, tag, "OK Fetch completed.");
	free(tag);
	return true;
}

struct seen_job {
	struct imap_session *s;
	struct store *st;
	char *guid, *folder, *user;
	uint32_t *uids;
	size_t n;
};

static void seen_run(void *arg)
{
	struct seen_job *sj = arg;
	struct store_flag_update upd = { 0 };
	upd.uids = sj->uids;
	upd.nuids = sj->n;
	upd.mode = STORE_FLAGS_ADD;
	upd.flags = STORE_FLAG_SEEN;
	upd.user = sj->user;
	store_flags(sj->st, sj->guid, sj->folder, &upd, NULL);
	free(upd.failed_r);
}

static void seen_done(void *arg)
{
	struct seen_job *sj = arg;
	struct imap_session *s = sj->s;
	free(sj->guid);
	free(sj->folder);
	free(sj->user);
	free(sj->uids);
	free(sj);
	if (!imap_job_finished(s))
		return;
	if (!imap_fetch_continue(s))
		imap_wait_output(s);
	else
		imap_resume(s);
}

void imap_cmd_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf err = BUF_INIT;
	size_t *idx = NULL, n = 0;
	if (cmd->arg_count < 2) {
		imap_tagged(s, cmd->tag, "BAD FETCH needs a sequence set and items");
		return;
	}
	struct imap_fetch_job *j = xcalloc(1, sizeof(*j));
	if (imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &j->req, &err) != 0) {
		free(j);
		set_error(s, cmd->tag, &err);
		buf_free(&err);
		return;
	}
	if (j->req.vanished && !(cmd->uid && s->qresync && j->req.changedsince)) {
		imap_fetch_job_free(&j);
		imap_tagged(s, cmd->tag, "BAD VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC");
		return;
	}
	if (j->req.changedsince || (j->req.items & IMAP_FETCH_MODSEQ))
		s->condstore = true; /* RFC 7162 3.1: CHANGEDSINCE and the MODSEQ item enable CONDSTORE */
	if (resolve_set(s, &cmd->args[0], cmd->uid, &idx, &n, &err) != 0) {
		imap_fetch_job_free(&j);
		set_error(s, cmd->tag, &err);
		buf_free(&err);
		return;
	}
	buf_free(&err);
	if (j->req.vanished) {
		/* UIDs in the set expunged since the modseq */
		struct store_change *ch = NULL;
		size_t nch = 0;
		struct imap_seqset set;
		struct buf perr = BUF_INIT;
		if (store_changes(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, j->req.changedsince_modseq, &ch,
				  &nch, NULL) == 0 &&
		    imap_seqset_parse(cmd->args[0].str, cmd->args[0].len, true, &set, &perr) == 0) {
			uint32_t *van = xcalloc(nch + 1, sizeof(*van));
			size_t nv = 0;
			for (size_t i = 0; i < nch; i++)
				if (ch[i].expunged && (set.saved || imap_seqset_contains(&set, ch[i].uid, s->uidnext)))
					van[nv++] = ch[i].uid;
			for (size_t a = 1; a < nv; a++)
				for (size_t b = a; b > 0 && van[b - 1] > van[b]; b--) {
					uint32_t t = van[b];
					van[b] = van[b - 1];
					van[b - 1] = t;
				}
			if (nv > 0) {
				buf_append_str(&s->out, "* VANISHED (EARLIER) ");
				imap_write_seqset(&s->out, van, nv);
				buf_append_str(&s->out, "\r\n");
			}
			free(van);
			imap_seqset_free(&set);
		}
		buf_free(&perr);
		free(ch);
	}
	j->tag = xstrdup(cmd->tag);
	j->uid = cmd->uid;
	j->uids = xcalloc(n + 1, sizeof(*j->uids));
	for (size_t i = 0; i < n; i++)
		if (!(s->msgs[idx[i]].flags & MSG_GONE) || cmd->uid)
			j->uids[j->n++] = s->msgs[idx[i]].uid;
	free(idx);
	s->fetch = j;
	bool sets_seen = (j->req.items & (IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT)) != 0;
	for (size_t i = 0; i < j->req.body_count; i++)
		if (!j->req.bodies[i].peek)
			sets_seen = true;
	if (sets_seen && !s->readonly && (s->rights & STORE_RIGHT_SEEN) && s->srv->ls.cfg.pool != NULL) {
		j->seen = xcalloc(j->n + 1, sizeof(*j->seen));
		for (size_t i = 0; i < j->n; i++) {
			long k = imap_find_uid(s, j->uids[i]);
			if (k >= 0 && !(s->msgs[k].flags & STORE_FLAG_SEEN))
				j->seen[j->nseen++] = j->uids[i];
		}
		if (j->nseen > 0) {
			/* one synced commit for all of them, off the loop */
			j->seen_done = true;
			struct seen_job *sj = xcalloc(1, sizeof(*sj));
			sj->s = s;
			sj->st = s->srv->ls.cfg.store;
			sj->guid = xstrdup(s->sel_guid);
			sj->folder = xstrdup(s->sel_folder);
			sj->user = s->ls.user.login != NULL ? xstrdup(s->ls.user.login) : NULL;
			sj->uids = xcalloc(j->nseen, sizeof(*sj->uids));
			memcpy(sj->uids, j->seen, j->nseen * sizeof(*sj->uids));
			sj->n = j->nseen;
			imap_start_job(s, seen_run, seen_done, sj);
			return;
		}
	}
	if (!imap_fetch_continue(s))
		imap_wait_output(s);
}

/* ---- STORE ---- */

void imap_cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf err = BUF_INIT;
	size_t a = 1;
	uint64_t unchangedsince = 0;
	if (cmd->arg_count >= 2 && cmd->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &cmd->args[1];
		if (m->list_count != 2 || !imap_arg_atom_equals(&m->list[0], "UNCHANGEDSINCE") ||
		    !imap_arg_get_number(&m->list[1], UINT64_MAX, &unchangedsince)) {
			imap_tagged(s, cmd->tag, "BAD Unknown STORE modifier");
			return;
		}
		s->condstore = true;
		a = 2;
	}
	if (cmd->arg_count < a + 2 || cmd->args[a].type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD STORE needs a sequence set, an item and flags");
		return;
	}
	const char *item = cmd->args[a].str;
	enum store_flag_mode mode = STORE_FLAGS_REPLACE;
	if (item[0] == '+') {
		mode = STORE_FLAGS_ADD;
		item++;
	} else if (item[0] == '-') {
		mode = STORE_FLAGS_REMOVE;
		item++;
	}
	bool silent = false;
	if (strcasecmp(item, "FLAGS.SILENT") == 0)
		silent = true;
	else if (strcasecmp(item, "FLAGS") != 0) {
		imap_tagged(s, cmd->tag, "BAD Unknown STORE item");
		return;
	}
	struct imap_arg flist = { 0 };
	const struct imap_arg *fa = &cmd->args[a + 1];
	if (cmd->arg_count > a + 2 || fa->type != IMAP_ARG_LIST) {
		flist.type = IMAP_ARG_LIST;
		flist.list = fa;
		flist.list_count = cmd->arg_count - a - 1;
		fa = &flist;
	}
	struct imap_flags fl;
	if (imap_flags_parse(fa, &fl, &err) != 0) {
		set_error(s, cmd->tag, &err);
		buf_free(&err);
		return;
	}
	if (s->readonly) {
		imap_flags_free(&fl);
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] The mailbox is read-only.");
		return;
	}
	size_t *idx = NULL, n = 0;
	if (resolve_set(s, &cmd->args[0], cmd->uid, &idx, &n, &err) != 0) {
		imap_flags_free(&fl);
		set_error(s, cmd->tag, &err);
		buf_free(&err);
		return;
	}
	unsigned stflags = imap_flags_to_store(fl.system);
	unsigned need = 0;
	if (stflags & STORE_FLAG_SEEN)
		need |= STORE_RIGHT_SEEN;
	if (stflags & STORE_FLAG_DELETED)
		need |= STORE_RIGHT_DELMSG;
	if ((stflags & ~(STORE_FLAG_SEEN | STORE_FLAG_DELETED)) || fl.keyword_count > 0 || mode == STORE_FLAGS_REPLACE)
		need |= STORE_RIGHT_WRITE;
	if ((s->rights & need) != need && !(mode == STORE_FLAGS_REPLACE && (s->rights & need & ~STORE_RIGHT_WRITE))) {
		imap_flags_free(&fl);
		free(idx);
		imap_tagged(s, cmd->tag, "NO [NOPERM] You may not change these flags.");
		return;
	}
	struct buf kw = BUF_INIT;
	for (size_t i = 0; i < fl.keyword_count; i++) {
		if (i > 0)
			buf_append_char(&kw, ' ');
		buf_append_str(&kw, fl.keywords[i]);
	}
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = s->msgs[idx[i]].uid;
	struct store_flag_update upd = { 0 };
	upd.uids = uids;
	upd.nuids = n;
	upd.mode = mode;
	upd.flags = stflags;
	upd.keywords = kw.len > 0 ? buf_cstr(&kw) : NULL;
	upd.unchangedsince = unchangedsince;
	upd.user = imap_user_id(s);
	int ret = n > 0 ? store_flags(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, &upd, &err) : 0;
	if (ret != 0) {
		imap_tagged(s, cmd->tag, "NO [SERVERBUG] %s", buf_cstr(&err));
	} else {
		for (size_t i = 0; i < n; i++) {
			bool failed = false;
			for (size_t k = 0; k < upd.nfailed_r && !failed; k++)
				failed = upd.failed_r[k] == uids[i];
			if (failed)
				continue;
			struct store_msg m;
			if (store_msg_get(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, uids[i], imap_user_id(s),
					  &m, NULL) != 0)
				continue;
			struct imap_msg *im = &s->msgs[idx[i]];
			unsigned nf = (m.flags & ~STORE_FLAG_RECENT) | (im->flags & STORE_FLAG_RECENT);
			bool changed = m.modseq != im->modseq || nf != (im->flags & ~MSG_GONE);
			im->flags = nf | (im->flags & MSG_GONE);
			im->modseq = m.modseq;
			imap_announce_keywords(s, m.keywords);
			if (!silent || (s->condstore && unchangedsince > 0 && changed)) {
				buf_printf(&s->out, "* %zu FETCH (", idx[i] + 1);
				if (cmd->uid)
					buf_printf(&s->out, "UID %u ", uids[i]);
				buf_append_str(&s->out, "FLAGS ");
				imap_write_store_flags(&s->out, nf, m.keywords);
				if (s->condstore)
					buf_printf(&s->out, " MODSEQ (%llu)", (unsigned long long)m.modseq);
				buf_append_str(&s->out, ")\r\n");
			}
			store_msg_free(&m);
		}
		if (upd.nfailed_r > 0) {
			uint32_t *nums = xcalloc(upd.nfailed_r, sizeof(*nums));
			size_t nn = 0;
			for (size_t k = 0; k < upd.nfailed_r; k++) {
				long ix = imap_find_uid(s, upd.failed_r[k]);
				if (cmd->uid)
					nums[nn++] = upd.failed_r[k];
				else if (ix >= 0)
					nums[nn++] = (uint32_t)ix + 1;
			}
			struct buf set = BUF_INIT;
			imap_write_seqset(&set, nums, nn);
			free(nums);
			char *t = xasprintf("OK [MODIFIED %s] Conditional STORE failed for some messages.",
					    buf_cstr(&set));
			if (cmd->uid)
				imap_tagged(s, cmd->tag, "%s", t);
			else
				imap_tagged_noexpunge(s, cmd->tag, t);
			free(t);
			buf_free(&set);
		} else if (cmd->uid) {
			imap_tagged(s, cmd->tag, "OK Store completed.");
		} else {
			imap_tagged_noexpunge(s, cmd->tag, "OK Store completed.");
		}
	}
	free(upd.failed_r);
	free(uids);
	free(idx);
	buf_free(&kw);
	buf_free(&err);
	imap_flags_free(&fl);
}

/* ---- SEARCH ---- */

struct search_ctx {
	struct imap_session *s;
	uint32_t uid;
	const uint8_t *hash; /* the message's body hash (THREADID) */
	bool have_header, have_body;
	struct buf header;
	struct buf body, text;
};

static bool search_header(void *ctx, const char *name, struct buf *value_r)
{
	struct search_ctx *c = ctx;
	if (!c->have_header) {
		store_fetch_header(c->s->srv->ls.cfg.store, c->s->sel_guid, c->s->sel_folder, c->uid, &c->header, NULL);
		c->have_header = true;
	}
	static const char *const address_fields[] = { "From", "Sender", "Reply-To", "To", "Cc", "Bcc" };
	bool address = false;
	for (size_t i = 0; i < IX_ARRAY_LEN(address_fields); i++)
		address |= strcasecmp(name, address_fields[i]) == 0;
	struct buf raw = BUF_INIT;
	size_t found = mime_header_get_all(buf_cstr(&c->header), c->header.len, name, &raw);
	if (found > 0)
		mime_decode_words(buf_cstr(&raw), raw.len, value_r);
	/* the addresses as the ENVELOPE has them, without comments: "<user (c)@ (c) example.org>" is user@example.org */
	for (const char *v = buf_cstr(&raw), *end = v + raw.len; address && v < end;) {
		const char *nl = memchr(v, '\n', (size_t)(end - v));
		size_t len = nl != NULL ? (size_t)(nl - v) : (size_t)(end - v);
		buf_append_char(value_r, '\n');
		mime_addr_text(v, len, value_r);
		v += len + 1;
	}
	buf_free(&raw);
	return found > 0;
}

static void search_body(void *ctx, bool with_headers, struct buf *text_r)
{
	struct search_ctx *c = ctx;
	if (!c->have_body) {
		c->have_body = true;
		struct buf msg = BUF_INIT;
		struct mime_info *mi = NULL;
		struct store *st = c->s->srv->ls.cfg.store;
		store_fetch_body(st, c->s->sel_guid, c->s->sel_folder, c->uid, 0, 0, &msg, NULL);
		if (store_fetch_mime(st, c->s->sel_guid, c->s->sel_folder, c->uid, &mi, NULL) == 0 &&
		    mi->msg_size == msg.len) {
			for (size_t i = 0; i < mi->part_count; i++) {
				const struct mime_part *p = &mi->parts[i];
				if (p->is_multipart || p->is_message_rfc822 || strcasecmp(p->type, "text") != 0)
					continue;
				mime_decode_text(p, buf_cstr(&msg), &c->body);
				buf_append_char(&c->body, '\n');
			}
			size_t hl = mi->parts[0].header_len;
			mime_decode_words(buf_cstr(&msg), hl < msg.len ? hl : msg.len, &c->text);
		} else {
			buf_append(&c->body, buf_cstr(&msg), msg.len);
		}
		mime_info_destroy(&mi);
		buf_free(&msg);
	}
	if (with_headers)
		buf_append(text_r, buf_cstr(&c->text), c->text.len);
	buf_append(text_r, buf_cstr(&c->body), c->body.len);
}

static void search_threadid(void *ctx, struct buf *id_r)
{
	struct search_ctx *c = ctx;
	imap_message_threadid(c->s, c->uid, c->hash, id_r);
}

/* Whether the query has a key of one of the types in mask (bits 1u << enum imap_search_type). */
static bool key_uses(const struct imap_search_key *k, unsigned mask)
{
	if (mask & (1u << k->type))
		return true;
	for (size_t i = 0; i < k->child_count; i++)
		if (key_uses(&k->children[i], mask))
			return true;
	return false;
}

void imap_write_esearch(struct buf *out, const struct imap_command *cmd, const struct imap_return_opts *r,
			const uint32_t *numbers, size_t n)
{
	unsigned opts = r->opts;
	buf_printf(out, "* ESEARCH (TAG \"%s\")%s", cmd->tag, cmd->uid ? " UID" : "");
	if ((opts & IMAP_SEARCH_RETURN_MIN) && n > 0)
		buf_printf(out, " MIN %u", numbers[0]);
	if ((opts & IMAP_SEARCH_RETURN_MAX) && n > 0)
		buf_printf(out, " MAX %u", numbers[n - 1]);
	if (opts & IMAP_SEARCH_RETURN_COUNT)
		buf_printf(out, " COUNT %zu", n);
	if ((opts & IMAP_SEARCH_RETURN_ALL) && n > 0) {
		buf_append_str(out, " ALL ");
		imap_write_seqset(out, numbers, n);
	}
	if (opts & IMAP_SEARCH_RETURN_PARTIAL) {
		/* RFC 5267 4.4: the results at positions lo..hi, NIL when there are none */
		buf_printf(out, " PARTIAL (%u:%u ", r->partial_lo, r->partial_hi);
		if (r->partial_lo <= n) {
			size_t hi = r->partial_hi < n ? r->partial_hi : n;
			imap_write_seqset(out, numbers + r->partial_lo - 1, hi - r->partial_lo + 1);
		} else {
			buf_append_str(out, "NIL");
		}
		buf_append_char(out, ')');
	}
}

/* What evaluating a query needs beyond the message record (found once per query). */
struct search_needs {
	bool sent, emailid, saved;
	int64_t now;
};

static void search_needs(const struct imap_search_query *q, struct search_needs *nd_r)
{
	nd_r->sent = key_uses(&q->root, 1u << IMAP_SK_SENTBEFORE | 1u << IMAP_SK_SENTON | 1u << IMAP_SK_SENTSINCE);
	nd_r->emailid = key_uses(&q->root, 1u << IMAP_SK_EMAILID);
	nd_r->saved = key_uses(&q->root, 1u << IMAP_SK_SAVEDBEFORE | 1u << IMAP_SK_SAVEDON | 1u << IMAP_SK_SAVEDSINCE);
	nd_r->now = (int64_t)time(NULL);
}

/* Whether the view's message i matches q (false when it cannot be read); *modseq_r: its modseq. */
static bool search_one(struct imap_session *s, const struct imap_search_query *q, const struct search_needs *nd,
		       size_t i, uint64_t *modseq_r)
{
	struct store_msg m;
	if (store_msg_get(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, s->msgs[i].uid, imap_user_id(s), &m,
			  NULL) != 0)
		return false;
	const char *kw[IMAP_MAX_KEYWORDS];
	size_t nkw = 0;
	char *kcopy = xstrdup(m.keywords);
	for (char *save = NULL, *t = strtok_r(kcopy, " ", &save); t != NULL && nkw < IMAP_MAX_KEYWORDS;
	     t = strtok_r(NULL, " ", &save))
		kw[nkw++] = t;
	struct search_ctx c = { .s = s, .uid = m.uid, .hash = m.hash };
	struct buf eid = BUF_INIT;
	struct imap_search_msg sm = { 0 };
	sm.seq = (uint32_t)i + 1;
	sm.uid = m.uid;
	sm.seq_max = (uint32_t)s->count;
	sm.uid_max = s->count > 0 ? s->msgs[s->count - 1].uid : 0;
	sm.flags = imap_flags_from_store((m.flags & ~STORE_FLAG_RECENT) | (s->msgs[i].flags & STORE_FLAG_RECENT));
	sm.keywords = kw;
	sm.keyword_count = nkw;
	sm.size = m.size;
	sm.internal_date = m.internal_date;
	sm.now = nd->now;
	sm.modseq = m.modseq;
	sm.saved_uids = s->saved;
	sm.saved_count = s->nsaved;
	sm.ctx = &c;
	sm.header = search_header;
	sm.body = search_body;
	sm.threadid = search_threadid;
	if (nd->saved)
		sm.has_save_date = store_msg_savedate(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, m.uid,
						      &sm.save_date, NULL) == 0;
	if (nd->emailid) {
		imap_emailid(m.hash, &eid);
		sm.emailid = buf_cstr(&eid);
	}
	if (nd->sent) {
		struct mime_info *mi = NULL;
		long long t;
		int zone;
		/* the date as written (RFC 3501 6.4.4): the header's own zone, not UTC */
		if (store_fetch_mime(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, m.uid, &mi, NULL) == 0 &&
		    mi->date != NULL && mime_parse_date(mi->date, &t, &zone) == 0) {
			sm.has_sent_date = true;
			sm.sent_date = t;
			sm.sent_tz = zone;
		}
		mime_info_destroy(&mi);
	}
	bool match = imap_search_match(q, &sm);
	*modseq_r = m.modseq;
	free(kcopy);
	buf_free(&eid);
	buf_free(&c.header);
	buf_free(&c.body);
	buf_free(&c.text);
	store_msg_free(&m);
	return match;
}

bool imap_search_matches(struct imap_session *s, const struct imap_search_query *q, size_t i)
{
	struct search_needs nd;
	uint64_t modseq;
	search_needs(q, &nd);
	return search_one(s, q, &nd, i, &modseq);
}

size_t imap_search_run(struct imap_session *s, const struct imap_search_query *q, uint32_t **seqs_r, uint32_t **uids_r,
		       uint64_t *maxmod_r)
{
	struct search_needs nd;
	search_needs(q, &nd);
	uint32_t *res = xcalloc(s->count + 1, sizeof(*res));
	uint32_t *res_uid = xcalloc(s->count + 1, sizeof(*res_uid));
	size_t nres = 0;
	uint64_t maxmod = 0, modseq;
	for (size_t i = 0; i < s->count; i++) {
		if ((s->msgs[i].flags & MSG_GONE) || !search_one(s, q, &nd, i, &modseq))
			continue;
		res[nres] = (uint32_t)i + 1;
		res_uid[nres++] = s->msgs[i].uid;
		if (modseq > maxmod)
			maxmod = modseq;
	}
	*seqs_r = res;
	*uids_r = res_uid;
	*maxmod_r = maxmod;
	return nres;
}

/* SEARCH RETURN (SAVE ...): the result kept for "$" (RFC 5182 2.1). With MIN and/or MAX and no other option (but
 * the CONTEXT hint) only the messages those return are saved; otherwise every match. uids: the matches, ascending. */
static void save_result(struct imap_session *s, unsigned opts, const uint32_t *uids, size_t n)
{
	free(s->saved);
	s->saved = xcalloc(n + 1, sizeof(*s->saved));
	s->nsaved = 0;
	unsigned minmax = IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX;
	bool all = !(opts & minmax) || (opts & ~(minmax | IMAP_SEARCH_RETURN_SAVE | IMAP_SEARCH_RETURN_CONTEXT)) != 0;
	if (all) {
		memcpy(s->saved, uids, n * sizeof(*uids));
		s->nsaved = n;
		return;
	}
	if (n == 0)
		return;
	if (opts & IMAP_SEARCH_RETURN_MIN)
		s->saved[s->nsaved++] = uids[0];
	if ((opts & IMAP_SEARCH_RETURN_MAX) && (s->nsaved == 0 || uids[n - 1] != s->saved[0]))
		s->saved[s->nsaved++] = uids[n - 1];
}

void imap_cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf err = BUF_INIT;
	struct imap_search_query *q = NULL;
	bool badcharset = false;
	if (imap_search_parse(cmd->args, cmd->arg_count, &q, &badcharset, &err) != 0) {
		struct imap_return_opts ro;
		if (badcharset && cmd->arg_count > 1 && imap_arg_atom_equals(&cmd->args[0], "RETURN") &&
		    imap_search_return_parse(&cmd->args[1], ~0u, &ro, NULL) == 0 && (ro.opts & IMAP_SEARCH_RETURN_SAVE))
			s->nsaved = 0; /* RFC 5182 2.1: a SEARCH (SAVE) answered NO saves the empty result */
		if (badcharset)
			imap_tagged(s, cmd->tag, "NO [BADCHARSET (UTF-8 US-ASCII)] %s", buf_cstr(&err));
		else
			set_error(s, cmd->tag, &err);
		buf_free(&err);
		return;
	}
	if (s->rev2 && q->uses_recent) {
		imap_search_query_destroy(&q);
		buf_free(&err);
		imap_tagged(s, cmd->tag, "BAD " IMAP_REV2_NO_RECENT_KEYS);
		return;
	}
	const char *bad_update = imap_update_refusal(s, cmd, q->return_opts);
	if (bad_update != NULL) {
		imap_search_query_destroy(&q);
		buf_free(&err);
		imap_tagged(s, cmd->tag, "BAD %s", bad_update);
		return;
	}
	uint32_t *res, *res_uid;
	uint64_t maxmod;
	size_t nres = imap_search_run(s, q, &res, &res_uid, &maxmod);
	const uint32_t *out = cmd->uid ? res_uid : res;
	if (q->return_opts & IMAP_SEARCH_RETURN_SAVE)
		save_result(s, q->return_opts, res_uid, nres);
	if (q->esearch || s->rev2) {
		/* RFC 9051 6.4.4: IMAP4rev2 answers every SEARCH with ESEARCH, ALL when no RETURN was given; RFC 5182
		 * 2.1: SAVE alone asks for no ESEARCH response at all (only the saved result) */
		unsigned ro = q->return_opts;
		if ((ro & ~(unsigned)IMAP_SEARCH_RETURN_CONTEXT) != IMAP_SEARCH_RETURN_SAVE) {
			struct imap_return_opts r = { ro == 0 ? IMAP_SEARCH_RETURN_ALL : ro, q->partial_lo,
						      q->partial_hi };
			imap_write_esearch(&s->out, cmd, &r, out, nres);
			if (q->uses_modseq && nres > 0)
				buf_printf(&s->out, " MODSEQ %llu", (unsigned long long)maxmod);
			buf_append_str(&s->out, "\r\n");
		}
	} else {
		buf_append_str(&s->out, "* SEARCH");
		for (size_t i = 0; i < nres; i++)
			buf_printf(&s->out, " %u", out[i]);
		if (q->uses_modseq && nres > 0)
			buf_printf(&s->out, " (MODSEQ %llu)", (unsigned long long)maxmod);
		buf_append_str(&s->out, "\r\n");
	}
	if (q->uses_modseq)
		s->condstore = true;
	if (q->return_opts & IMAP_SEARCH_RETURN_UPDATE) {
		struct imap_search_query *taken = q;
		q = NULL; /* the context has it */
		imap_update_start(s, cmd, taken, NULL, 0, res_uid, NULL, nres);
	}
	free(res);
	free(res_uid);
	imap_search_query_destroy(&q);
	buf_free(&err);
	if (cmd->uid)
		imap_tagged(s, cmd->tag, "OK Search completed.");
	else
		imap_tagged_noexpunge(s, cmd->tag, "OK Search completed.");
}

/* ---- COPY / MOVE ---- */

void imap_cmd_copy(struct imap_session *s, const struct imap_command *cmd)
{
	bool move = strcmp(cmd->name, "MOVE") == 0;
	struct buf err = BUF_INIT;
	size_t len;
	const char *name;
	if (cmd->arg_count != 2 || !imap_arg_get_mailbox(&cmd->args[1], &name, &len)) {
		imap_tagged(s, cmd->tag, "BAD %s needs a sequence set and a mailbox name", cmd->name);
		return;
	}
	size_t *idx = NULL, n = 0;
	if (resolve_set(s, &cmd->args[0], cmd->uid, &idx, &n, &err) != 0) {
		set_error(s, cmd->tag, &err);
		buf_free(&err);
		return;
	}
	if (move && (s->readonly || !(s->rights & STORE_RIGHT_DELMSG) || !(s->rights & STORE_RIGHT_EXPUNGE))) {
		free(idx);
		imap_tagged(s, cmd->tag, "NO [NOPERM] You may not move messages out of this mailbox.");
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	if (ret == 0 && !(rights & STORE_RIGHT_INSERT)) {
		ret = (rights & STORE_RIGHT_LOOKUP) ? IX_EPERM : IX_ENOTFOUND;
		buf_append_str(&err, "You may not add messages to that mailbox");
	}
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids)), *dst = xcalloc(n + 1, sizeof(*dst));
	size_t nu = 0;
	for (size_t i = 0; i < n; i++)
		if (!(s->msgs[idx[i]].flags & MSG_GONE))
			uids[nu++] = s->msgs[idx[i]].uid;
	uint32_t dst_validity = 0;
	if (ret == 0 && nu > 0) {
		uint64_t qb = 0, qm = 0;
		imap_mailbox_quota(s, guid, &qb, &qm);
		ret = store_copy(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, uids, nu, guid, folder, move, qb, qm,
				 dst, &dst_validity, &err);
	}
	if (ret == IX_ENOTFOUND) {
		buf_reset(&err);
		imap_tagged(s, cmd->tag, "NO [TRYCREATE] Mailbox doesn't exist.");
	} else if (ret == IX_ELIMIT) {
		imap_tagged(s, cmd->tag, "NO [OVERQUOTA] %s", err.len > 0 ? buf_cstr(&err) : "Quota exceeded");
	} else if (ret != 0) {
		imap_tagged(s, cmd->tag, "NO %s%s", ret == IX_EPERM ? "[NOPERM] " : "", buf_cstr(&err));
	} else {
		struct buf code = BUF_INIT;
		/* UIDPLUS: only the UIDs that were copied */
		uint32_t *src_ok = xcalloc(nu + 1, sizeof(*src_ok)), *dst_ok = xcalloc(nu + 1, sizeof(*dst_ok));
		size_t nok = 0;
		for (size_t i = 0; i < nu; i++)
			if (dst[i] != 0) {
				src_ok[nok] = uids[i];
				dst_ok[nok++] = dst[i];
			}
		if (nok > 0) {
			buf_printf(&code, "[COPYUID %u ", dst_validity);
			imap_write_seqset(&code, src_ok, nok);
			buf_append_char(&code, ' ');
			imap_write_seqset(&code, dst_ok, nok);
			buf_append_str(&code, "] ");
		}
		free(src_ok);
		free(dst_ok);
		if (move) {
			if (code.len > 0)
				imap_reply(s, "* OK %sMoved.", buf_cstr(&code));
			imap_sync(s, true, true);
			imap_tagged(s, cmd->tag, "OK Move completed.");
		} else {
			imap_tagged(s, cmd->tag, "OK %sCopy completed.", buf_cstr(&code));
		}
		buf_free(&code);
	}
	free(uids);
	free(dst);
	free(idx);
	free(guid);
	free(folder);
	buf_free(&err);
}

/* ---- EXPUNGE ---- */

void imap_cmd_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf err = BUF_INIT;
	if ((cmd->uid && cmd->arg_count != 1) || (!cmd->uid && cmd->arg_count != 0)) {
		imap_tagged(s, cmd->tag, "BAD %sEXPUNGE takes %s", cmd->uid ? "UID " : "",
			    cmd->uid ? "a UID set" : "no arguments");
		return;
	}
	if (s->readonly || !(s->rights & STORE_RIGHT_EXPUNGE)) {
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] You may not expunge this mailbox.");
		return;
	}
	int ret;
	if (cmd->uid) {
		size_t *idx = NULL, n = 0;
		if (resolve_set(s, &cmd->args[0], true, &idx, &n, &err) != 0) {
			set_error(s, cmd->tag, &err);
			buf_free(&err);
			return;
		}
		uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
		for (size_t i = 0; i < n; i++)
			uids[i] = s->msgs[idx[i]].uid;
		ret = n > 0 ? store_uid_expunge(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, uids, n, NULL, NULL,
						&err)
			    : 0;
		free(uids);
		free(idx);
	} else {
		ret = store_expunge(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, NULL, 0, NULL, NULL, &err);
	}
	if (ret != 0) {
		imap_tagged(s, cmd->tag, "NO [SERVERBUG] %s", buf_cstr(&err));
	} else {
		imap_sync(s, true, true);
		imap_tagged(s, cmd->tag, "OK Expunge completed.");
	}
	buf_free(&err);
}

/* ---- APPEND (MULTIAPPEND) and REPLACE ---- */

/* One message of an APPEND. */
struct append_msg {
	struct store_target target;
	struct store_append req;
	char *keywords;
	struct buf built; /* CATENATE: the message made of its parts */
};

struct append_job {
	struct imap_session *s;
	char *tag;
	char *guid, *folder;
	struct append_msg *msgs;
	size_t n, stored; /* messages; how many were stored (all of them, or those before the one that failed) */
	/* REPLACE: the selected mailbox's message expunged once the new one is stored (replace_uid 0: APPEND) */
	uint32_t replace_uid;
	char *sel_guid, *sel_folder;
	int ret, expunge_ret;
	struct buf err;
};

static void append_run(void *arg)
{
	struct append_job *j = arg;
	struct store *st = j->s->srv->ls.cfg.store;
	for (j->stored = 0; j->stored < j->n; j->stored++)
		if ((j->ret = store_append(st, &j->msgs[j->stored].req, &j->err)) != 0)
			break;
	if (j->ret != 0 && j->stored > 0) {
		/* MULTIAPPEND is all or nothing (RFC 3502 6.3.11): the messages stored before the failure go again */
		uint32_t *uids = xcalloc(j->stored, sizeof(*uids));
		for (size_t i = 0; i < j->stored; i++)
			uids[i] = j->msgs[i].target.uid;
		if (store_expunge(st, j->guid, j->folder, uids, j->stored, NULL, NULL, NULL) != 0)
			log_error("append for %s: %zu of %zu messages stayed after a failure", j->s->ls.user.login,
				  j->stored, j->n);
		free(uids);
	}
	/* REPLACE: the old message goes only once the new one is stored (a crash between leaves both, never none) */
	if (j->ret == 0 && j->replace_uid != 0)
		j->expunge_ret = store_expunge(st, j->sel_guid, j->sel_folder, &j->replace_uid, 1, NULL, NULL, &j->err);
}

static void append_done(void *arg)
{
	struct append_job *j = arg;
	struct imap_session *s = j->s;
	if (imap_job_finished(s)) {
		const struct store_target *failed = &j->msgs[j->stored < j->n ? j->stored : 0].target;
		struct buf uids = BUF_INIT; /* APPENDUID's set: the new UIDs, ascending */
		if (j->ret == 0) {
			uint32_t *u = xcalloc(j->n, sizeof(*u));
			for (size_t i = 0; i < j->n; i++)
				u[i] = j->msgs[i].target.uid;
			imap_write_seqset(&uids, u, j->n);
			free(u);
		}
		if (j->ret == 0 && j->replace_uid != 0) {
			/* RFC 8508 3.3: the new message's APPENDUID in an untagged OK, then EXISTS and EXPUNGE */
			imap_reply(s, "* OK [APPENDUID %u %s] Replacement Message ID", j->msgs[0].target.uidvalidity,
				   buf_cstr(&uids));
			imap_sync(s, true, true);
			if (j->expunge_ret != 0) {
				log_error("replace for %s: the old message stayed: %s", s->ls.user.login,
					  buf_cstr(&j->err));
				imap_tagged(s, j->tag,
					    "NO [SERVERBUG] The new message was stored but the old one stayed.");
			} else {
				imap_tagged(s, j->tag, "OK Replace completed.");
			}
		} else if (j->ret == 0) {
			if (s->state == IMAP_ST_SELECTED && strcasecmp(s->sel_guid, j->guid) == 0 &&
			    strcmp(s->sel_folder, j->folder) == 0)
				imap_sync(s, true, true);
			imap_tagged(s, j->tag, "OK [APPENDUID %u %s] Append completed.", j->msgs[0].target.uidvalidity,
				    buf_cstr(&uids));
		} else if (failed->result == IX_ENOTFOUND || j->ret == IX_ENOTFOUND) {
			imap_tagged(s, j->tag, "NO [TRYCREATE] Mailbox doesn't exist.");
		} else if (j->ret == IX_ELIMIT) {
			imap_tagged(s, j->tag, "NO [%s] %s", failed->result == IX_ELIMIT ? "OVERQUOTA" : "TOOBIG",
				    buf_cstr(&j->err));
		} else if (j->ret == IX_EINVAL) {
			imap_tagged(s, j->tag, "NO [LIMIT] %s",
				    buf_cstr(&j->err)); /* the store refuses the message itself */
		} else {
			log_error("append for %s failed: %s", s->ls.user.login, buf_cstr(&j->err));
			imap_tagged(s, j->tag, "NO [UNAVAILABLE] The store cannot take the message now; try again.");
		}
		buf_free(&uids);
		spool_reset(&s->lit); /* stored or refused: a spooled message's file goes */
		imap_resume(s);
	}
	for (size_t i = 0; i < j->n; i++) {
		free(j->msgs[i].keywords);
		buf_free(&j->msgs[i].built);
	}
	free(j->msgs);
	free(j->tag);
	free(j->guid);
	free(j->folder);
	free(j->sel_guid);
	free(j->sel_folder);
	buf_free(&j->err);
	free(j);
}

/* Reads one message of an APPEND from cmd's arguments at *i ([flag list] [date-time] literal, or CATENATE (parts)
 * for the literal) into m, moving *i past it; answers and returns false when it is bad. */
static bool append_parse_msg(struct imap_session *s, const struct imap_command *cmd, size_t *i, struct append_msg *m)
{
	struct imap_flags fl = { 0 };
	struct buf err = BUF_INIT;
	if (*i < cmd->arg_count && cmd->args[*i].type == IMAP_ARG_LIST) {
		if (imap_flags_parse(&cmd->args[*i], &fl, &err) != 0) {
			set_error(s, cmd->tag, &err);
			buf_free(&err);
			return false;
		}
		(*i)++;
	}
	int64_t date = 0;
	int tz = 0;
	if (*i < cmd->arg_count && cmd->args[*i].type != IMAP_ARG_LITERAL &&
	    !imap_arg_atom_equals(&cmd->args[*i], "CATENATE")) {
		if (imap_datetime_parse(&cmd->args[*i], &date, &tz) != 0) {
			imap_flags_free(&fl);
			imap_tagged(s, cmd->tag, "BAD Bad date-time in %s", cmd->name);
			return false;
		}
		(*i)++;
	}
	const char *msg;
	size_t mlen;
	if (*i + 1 < cmd->arg_count && imap_arg_atom_equals(&cmd->args[*i], "CATENATE")) {
		/* RFC 4469: the message made of TEXT literals and the content of URLs */
		if (imap_catenate(s, cmd, &cmd->args[*i + 1], &m->built) != 0) {
			imap_flags_free(&fl);
			return false;
		}
		msg = buf_cstr(&m->built);
		mlen = m->built.len;
		*i += 2;
	} else if (*i >= cmd->arg_count || cmd->args[*i].type != IMAP_ARG_LITERAL ||
		   !imap_arg_get_string(&cmd->args[*i], &msg, &mlen)) {
		imap_flags_free(&fl);
		imap_tagged(s, cmd->tag, "BAD %s needs each message as a literal", cmd->name);
		return false;
	} else if (cmd->args[*i].sunk && spool_view(&s->lit, &msg, &mlen, &err) != 0) {
		/* a large message waits in the session's spool file, mapped back here */
		log_warn("append for %s: %s", s->ls.user.login, buf_cstr(&err));
		imap_flags_free(&fl);
		imap_tagged(s, cmd->tag, "NO [UNAVAILABLE] %s; try again.", buf_cstr(&err));
		buf_free(&err);
		return false;
	} else {
		(*i)++;
	}
	if (mlen == 0) {
		imap_flags_free(&fl);
		imap_tagged(s, cmd->tag, "NO Empty messages are not stored.");
		return false;
	}
	struct buf kw = BUF_INIT;
	for (size_t k = 0; k < fl.keyword_count; k++) {
		if (k > 0)
			buf_append_char(&kw, ' ');
		buf_append_str(&kw, fl.keywords[k]);
	}
	m->keywords = kw.len > 0 ? buf_steal(&kw) : NULL;
	buf_free(&kw);
	m->req.data = msg; /* held by the parser or the spool: neither changes before the job is done */
	m->req.len = mlen;
	m->req.internal_date = date;
	m->req.flags = imap_flags_to_store(fl.system);
	m->req.keywords = m->keywords;
	m->req.ntargets = 1;
	imap_flags_free(&fl);
	return true;
}

/* Appends the messages of cmd's arguments from i on (each [flag list] [date-time] literal; MULTIAPPEND, RFC 3502)
 * to mailbox name on the pool, and for REPLACE (replace_uid not 0: one message only) then expunges that message of
 * the selected mailbox; answers every error. */
static void append_start(struct imap_session *s, const struct imap_command *cmd, const char *name, size_t len, size_t i,
			 uint32_t replace_uid)
{
	struct append_msg *msgs = xcalloc(cmd->arg_count, sizeof(*msgs));
	size_t n = 0;
	bool ok = true;
	while (ok && (i < cmd->arg_count || n == 0))
		ok = append_parse_msg(s, cmd, &i, &msgs[n++]);
	if (ok && replace_uid != 0 && n != 1) {
		imap_tagged(s, cmd->tag, "BAD %s takes one message", cmd->name);
		ok = false;
	}
	char *guid = NULL, *folder = NULL;
	struct buf err = BUF_INIT;
	if (ok) {
		unsigned rights = 0;
		int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
		if (ret == 0 && !(rights & STORE_RIGHT_INSERT))
			ret = (rights & STORE_RIGHT_LOOKUP) ? IX_EPERM : IX_ENOTFOUND;
		if (ret == IX_ENOTFOUND)
			imap_tagged(s, cmd->tag, "NO [TRYCREATE] Mailbox doesn't exist.");
		else if (ret == IX_EPERM)
			imap_tagged(s, cmd->tag, "NO [NOPERM] You may not add messages to this mailbox.");
		else if (ret != 0)
			imap_tagged(s, cmd->tag, "NO [CANNOT] %s", buf_cstr(&err));
		ok = ret == 0;
	}
	buf_free(&err);
	if (!ok) {
		for (size_t k = 0; k < n; k++) {
			free(msgs[k].keywords);
			buf_free(&msgs[k].built);
		}
		free(msgs);
		free(guid);
		free(folder);
		return;
	}
	struct append_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->tag = xstrdup(cmd->tag);
	j->guid = guid;
	j->folder = folder;
	j->msgs = msgs;
	j->n = n;
	if (replace_uid != 0) {
		j->replace_uid = replace_uid;
		j->sel_guid = xstrdup(s->sel_guid);
		j->sel_folder = xstrdup(s->sel_folder);
	}
	for (size_t k = 0; k < n; k++) {
		msgs[k].target.guid = guid;
		msgs[k].target.folder = folder;
		imap_mailbox_quota(s, guid, &msgs[k].target.quota_bytes, &msgs[k].target.quota_messages);
		msgs[k].req.targets = &msgs[k].target;
	}
	imap_start_job(s, append_run, append_done, j);
}

void imap_cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name;
	if (cmd->arg_count < 2 || !imap_arg_get_mailbox(&cmd->args[0], &name, &len)) {
		imap_tagged(s, cmd->tag, "BAD APPEND needs a mailbox name and a message");
		return;
	}
	append_start(s, cmd, name, len, 1, 0);
}

void imap_cmd_replace(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name;
	uint64_t n = 0;
	if (cmd->arg_count < 3 || !imap_arg_get_number(&cmd->args[0], UINT32_MAX, &n) || n == 0 ||
	    !imap_arg_get_mailbox(&cmd->args[1], &name, &len)) {
		imap_tagged(s, cmd->tag, "BAD %sREPLACE needs a message %s, a mailbox name and a message",
			    cmd->uid ? "UID " : "", cmd->uid ? "UID" : "number");
		return;
	}
	if (!cmd->uid && n > s->count) {
		imap_tagged(s, cmd->tag, "BAD No message %llu in the mailbox", (unsigned long long)n);
		return;
	}
	long idx = cmd->uid ? imap_find_uid(s, (uint32_t)n) : (long)n - 1;
	if (idx < 0 || (s->msgs[idx].flags & MSG_GONE)) {
		imap_tagged(s, cmd->tag, "NO Message doesn't exist.");
		return;
	}
	if (s->readonly) {
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] The mailbox is read-only.");
		return;
	}
	if ((s->rights & (STORE_RIGHT_DELMSG | STORE_RIGHT_EXPUNGE)) != (STORE_RIGHT_DELMSG | STORE_RIGHT_EXPUNGE)) {
		imap_tagged(s, cmd->tag, "NO [NOPERM] You may not remove messages from this mailbox.");
		return;
	}
	append_start(s, cmd, name, len, 2, s->msgs[idx].uid);
}
