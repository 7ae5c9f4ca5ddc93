/* store_msg.c - messages: append with single-instance bodies, listing and fetching, flags with modseq and
 * UNCHANGEDSINCE, copy and move without body copies, expunge into retention, the change log, recovery and purge. */
#include "store/store_int.h"
#include "common/unicasemap.h"
#include "common/util.h"

#include <openssl/evp.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- bodies ---- */

static const char META_BODYID[] = "bodyid";

int body_find(MDB_txn *txn, struct store *st, const uint8_t *hash, uint64_t *id_r, struct buf *error_r)
{
	MDB_val v;
	int ret = tget(txn, st->db_bhash, hash, 32, &v, error_r);
	if (ret != 0)
		return ret;
	if (v.mv_size != sizeof(*id_r)) {
		if (error_r != NULL)
			buf_printf(error_r, "body hash index entry is corrupt");
		return IX_ECORRUPT;
	}
	memcpy(id_r, v.mv_data, sizeof(*id_r));
	return 0;
}

/* The id the next new body gets. */
static int body_next_id(MDB_txn *txn, struct store *st, uint64_t *id_r, struct buf *error_r)
{
	MDB_val v;
	uint64_t last = 0;
	int ret = tget(txn, st->db_meta, META_BODYID, sizeof(META_BODYID) - 1, &v, error_r);
	if (ret == 0 && v.mv_size == sizeof(last))
		memcpy(&last, v.mv_data, sizeof(last));
	else if (ret == 0)
		ret = IX_ECORRUPT;
	if (ret != 0 && ret != IX_ENOTFOUND)
		return ret;
	*id_r = last + 1;
	return 0;
}

/* Stores a new body under id (from body_next_id) with delta references. */
static int body_add(struct wtx *w, uint64_t id, const uint8_t *hash, uint64_t delta, const char *data, size_t len,
		    const struct buf *cache, struct buf *error_r)
{
	struct store *st = w->st;
	uint8_t k[KEY_BODY_LEN];
	key_body(k, id);
	struct bref_rec br;
	br.refs = delta;
	br.size = len;
	memcpy(br.hash, hash, 32);
	int ret = wput(w, st->db_meta, META_BODYID, sizeof(META_BODYID) - 1, &id, sizeof(id), error_r);
	if (ret == 0)
		ret = wput(w, st->db_body, k, sizeof(k), data, len, error_r);
	if (ret == 0)
		ret = wput(w, st->db_cache, k, sizeof(k), cache != NULL ? cache->data : "",
			   cache != NULL ? cache->len : 0, error_r);
	if (ret == 0)
		ret = wput(w, st->db_bref, k, sizeof(k), &br, sizeof(br), error_r);
	if (ret == 0)
		ret = wput(w, st->db_bhash, hash, 32, &id, sizeof(id), error_r);
	return ret;
}

static int bref_get(MDB_txn *txn, struct store *st, uint64_t id, struct bref_rec *br_r, struct buf *error_r)
{
	uint8_t k[KEY_BODY_LEN];
	key_body(k, id);
	MDB_val v;
	int ret = tget(txn, st->db_bref, k, sizeof(k), &v, error_r);
	if (ret == 0 && v.mv_size != sizeof(*br_r)) {
		if (error_r != NULL)
			buf_printf(error_r, "body reference record is corrupt");
		ret = IX_ECORRUPT;
	}
	if (ret == 0)
		memcpy(br_r, v.mv_data, sizeof(*br_r));
	return ret;
}

int body_ref(struct wtx *w, uint64_t id, uint64_t delta, struct buf *error_r)
{
	struct bref_rec br;
	int ret = bref_get(w->txn, w->st, id, &br, error_r);
	if (ret == IX_ENOTFOUND) {
		if (error_r != NULL)
			buf_printf(error_r, "a message body is missing from the store");
		return IX_ECORRUPT;
	}
	if (ret != 0)
		return ret;
	br.refs += delta;
	uint8_t k[KEY_BODY_LEN];
	key_body(k, id);
	return wput(w, w->st->db_bref, k, sizeof(k), &br, sizeof(br), error_r);
}

int body_unref(struct wtx *w, uint64_t id, uint64_t delta, struct buf *error_r)
{
	struct store *st = w->st;
	struct bref_rec br;
	int ret = bref_get(w->txn, st, id, &br, error_r);
	if (ret == IX_ENOTFOUND)
		return 0; /* already gone: store_check reports the dangling message */
	if (ret != 0)
		return ret;
	uint8_t k[KEY_BODY_LEN];
	key_body(k, id);
	if (br.refs > delta) {
		br.refs -= delta;
		return wput(w, st->db_bref, k, sizeof(k), &br, sizeof(br), error_r);
	}
	ret = wdel(w, st->db_bref, k, sizeof(k), error_r);
	if (ret == 0 || ret == IX_ENOTFOUND)
		ret = wdel(w, st->db_body, k, sizeof(k), error_r);
	if (ret == 0 || ret == IX_ENOTFOUND)
		ret = wdel(w, st->db_cache, k, sizeof(k), error_r);
	if (ret == 0 || ret == IX_ENOTFOUND) {
		uint64_t hid;
		/* the hash entry goes only if it names this body */
		ret = body_find(w->txn, st, br.hash, &hid, error_r);
		if (ret == 0 && hid == id)
			ret = wdel(w, st->db_bhash, br.hash, 32, error_r);
	}
	return ret == IX_ENOTFOUND ? 0 : ret;
}

/* ---- message records ---- */

int msg_get(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, uint32_t uid, struct msg_rec *rec_r,
	    struct buf *error_r)
{
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	struct msg_rec probe;
	memset(&probe, 0, sizeof(probe));
	put_be32(probe.uid_be, uid);
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->db_msg, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "reading a message", error_r);
	/* the first record at or after {uid, 0...}: the message's, if it is there */
	MDB_val key = { sizeof(k), k }, val = { sizeof(probe), &probe };
	rc = mdb_cursor_get(cur, &key, &val, MDB_GET_BOTH_RANGE);
	int ret = 0;
	if (rc == MDB_NOTFOUND) {
		ret = IX_ENOTFOUND;
	} else if (rc != 0) {
		ret = store_mdb_error(rc, "reading a message", error_r);
	} else if (val.mv_size != sizeof(*rec_r)) {
		if (error_r != NULL)
			buf_printf(error_r, "message record %u is corrupt", uid);
		ret = IX_ECORRUPT;
	} else {
		memcpy(rec_r, val.mv_data, sizeof(*rec_r));
		if (msg_uid(rec_r) != uid)
			ret = IX_ENOTFOUND;
	}
	mdb_cursor_close(cur);
	return ret;
}

int msg_iter_begin(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, struct msg_iter *it,
		   struct buf *error_r)
{
	memset(it, 0, sizeof(*it));
	key_folder(it->key, guid, fid);
	int rc = mdb_cursor_open(txn, st->db_msg, &it->cur);
	if (rc != 0) {
		it->cur = NULL;
		return store_mdb_error(rc, "reading messages", error_r);
	}
	return 0;
}

int msg_iter_next(struct msg_iter *it, struct msg_rec *rec_r)
{
	MDB_val key = { sizeof(it->key), it->key }, val;
	int rc = mdb_cursor_get(it->cur, &key, &val, it->started ? MDB_NEXT_DUP : MDB_SET_KEY);
	it->started = 1;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_mdb_error(rc, "reading messages", NULL);
	if (val.mv_size != sizeof(*rec_r))
		return IX_ECORRUPT;
	memcpy(rec_r, val.mv_data, sizeof(*rec_r));
	return 1;
}

void msg_iter_end(struct msg_iter *it)
{
	if (it->cur != NULL)
		mdb_cursor_close(it->cur);
	it->cur = NULL;
}

/* Appends a message's keywords (space-separated) to out. */
static int kw_get(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, const struct msg_rec *rec,
		  struct buf *out, struct buf *error_r)
{
	if (!(rec->flags & MSG_F_KEYWORDS))
		return 0;
	uint8_t k[KEY_MSG_LEN];
	key_msg(k, guid, fid, msg_uid(rec));
	MDB_val v;
	int ret = tget(txn, st->db_kw, k, sizeof(k), &v, error_r);
	if (ret == IX_ENOTFOUND)
		return 0; /* store_check reports it */
	if (ret == 0)
		buf_append(out, v.mv_data, v.mv_size);
	return ret;
}

/* Writes a message record. old, when given, is the stored record of the same UID, which rec replaces; without it rec
 * is a new message (the folder's highest UID, so it is appended). */
static int msg_rec_put(struct wtx *w, const uint8_t *guid, uint32_t fid, const struct msg_rec *old,
		       const struct msg_rec *rec, struct buf *error_r)
{
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	int ret = 0;
	if (old != NULL) {
		ret = wdel_dup(w, w->st->db_msg, k, sizeof(k), old, sizeof(*old), error_r);
		if (ret == IX_ENOTFOUND)
			ret = 0;
	}
	if (ret == 0)
		ret = wput_dup(w, w->st->db_msg, k, sizeof(k), rec, sizeof(*rec), old == NULL, error_r);
	return ret;
}

/* Writes a message record and its keywords (kwlen 0: none). old, when given, is the stored record of the same UID,
 * which rec replaces; without it rec is a new message (the folder's highest UID, so it is appended). */
static int msg_put(struct wtx *w, const uint8_t *guid, uint32_t fid, const struct msg_rec *old, struct msg_rec *rec,
		   const char *kw, size_t kwlen, struct buf *error_r)
{
	if (kwlen > 0)
		rec->flags |= MSG_F_KEYWORDS;
	else
		rec->flags &= ~MSG_F_KEYWORDS;
	int ret = msg_rec_put(w, guid, fid, old, rec, error_r);
	uint8_t kk[KEY_MSG_LEN];
	key_msg(kk, guid, fid, msg_uid(rec));
	if (ret == 0 && kwlen > 0)
		ret = wput(w, w->st->db_kw, kk, sizeof(kk), kw, kwlen, error_r);
	else if (ret == 0 && old != NULL && (old->flags & MSG_F_KEYWORDS)) {
		ret = wdel(w, w->st->db_kw, kk, sizeof(kk), error_r);
		if (ret == IX_ENOTFOUND)
			ret = 0;
	}
	return ret;
}

/* Deletes a message record (rec as stored), its keywords and its save date. */
static int msg_del(struct wtx *w, const uint8_t *guid, uint32_t fid, const struct msg_rec *rec, struct buf *error_r)
{
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	int ret = wdel_dup(w, w->st->db_msg, k, sizeof(k), rec, sizeof(*rec), error_r);
	uint8_t kk[KEY_MSG_LEN];
	key_msg(kk, guid, fid, msg_uid(rec));
	if (ret == 0 && (rec->flags & MSG_F_KEYWORDS)) {
		ret = wdel(w, w->st->db_kw, kk, sizeof(kk), error_r);
		if (ret == IX_ENOTFOUND)
			ret = 0;
	}
	if (ret == 0) {
		ret = wdel(w, w->st->db_sdate, kk, sizeof(kk), error_r);
		if (ret == IX_ENOTFOUND)
			ret = 0; /* stored before save dates, or imported */
	}
	return ret;
}

static int chg_put(struct wtx *w, const uint8_t *guid, uint32_t fid, uint64_t modseq, uint32_t uid, int expunged,
		   struct buf *error_r)
{
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	struct chg_rec c;
	chg_make(&c, modseq, uid, expunged);
	return wput_dup(w, w->st->db_chg, k, sizeof(k), &c, sizeof(c), 1, error_r);
}

static int chg_del(struct wtx *w, const uint8_t *guid, uint32_t fid, uint64_t modseq, uint32_t uid, struct buf *error_r)
{
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	struct chg_rec c;
	chg_make(&c, modseq, uid, 0);
	int ret = wdel_dup(w, w->st->db_chg, k, sizeof(k), &c, sizeof(c), error_r);
	return ret == IX_ENOTFOUND ? 0 : ret;
}

/* Adds (sign 1) or removes (sign -1) a message's share of a folder's counts. */
static void counts_apply(struct folder_rec *f, const struct msg_rec *m, int sign)
{
	f->messages += (uint32_t)sign;
	f->size += (uint64_t)(int64_t)sign * m->size;
	if (!(m->flags & STORE_FLAG_SEEN))
		f->unseen += (uint32_t)sign;
	if (m->flags & STORE_FLAG_RECENT)
		f->recent += (uint32_t)sign;
}

static int pseen_has(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, uint32_t uid, const char *user)
{
	struct buf k = BUF_INIT;
	uint8_t mk[KEY_MSG_LEN];
	key_msg(mk, guid, fid, uid);
	buf_append(&k, mk, sizeof(mk));
	buf_append_str(&k, user);
	MDB_val v;
	int ret = tget(txn, st->db_pseen, k.data, k.len, &v, NULL) == 0;
	buf_free(&k);
	return ret;
}

static int pseen_set(struct wtx *w, const uint8_t *guid, uint32_t fid, uint32_t uid, const char *user, int seen,
		     struct buf *error_r)
{
	struct buf k = BUF_INIT;
	uint8_t mk[KEY_MSG_LEN];
	key_msg(mk, guid, fid, uid);
	buf_append(&k, mk, sizeof(mk));
	buf_append_str(&k, user);
	int ret = seen ? wput(w, w->st->db_pseen, k.data, k.len, "", 0, error_r)
		       : wdel(w, w->st->db_pseen, k.data, k.len, error_r);
	buf_free(&k);
	return ret == IX_ENOTFOUND ? 0 : ret;
}

/* Deletes the per-user \Seen entries of one message. */
static int pseen_drop(struct wtx *w, const uint8_t *guid, uint32_t fid, uint32_t uid, struct buf *error_r)
{
	uint8_t mk[KEY_MSG_LEN];
	key_msg(mk, guid, fid, uid);
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, w->st->db_pseen, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "expunging", error_r);
	MDB_val key = { sizeof(mk), mk }, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= sizeof(mk) && memcmp(key.mv_data, mk, sizeof(mk)) == 0) {
		rc = mdb_cursor_del(cur, 0);
		if (rc == 0)
			rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_MAP_FULL)
		w->map_full = 1;
	if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL)
		return store_mdb_error(rc, "expunging", error_r);
	return 0;
}

uint32_t msg_public_unseen(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, const char *user)
{
	uint32_t unseen = 0;
	struct msg_iter it;
	struct msg_rec rec;
	if (msg_iter_begin(txn, st, guid, fid, &it, NULL) != 0)
		return 0;
	while (msg_iter_next(&it, &rec) == 1)
		if (!pseen_has(txn, st, guid, fid, msg_uid(&rec), user))
			unseen++;
	msg_iter_end(&it);
	return unseen;
}

/* ---- keywords: a sorted, duplicate-free, space-separated list ---- */

struct kwlist {
	char **v;
	size_t n;
};

static int kw_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static int kw_valid(const char *s, size_t len)
{
	if (len == 0 || len > STORE_KEYWORD_MAX || s[0] == '\\')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

static int kw_split(const char *s, size_t len, struct kwlist *l, struct buf *error_r)
{
	l->v = NULL;
	l->n = 0;
	size_t i = 0;
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		size_t start = i;
		while (i < len && s[i] != ' ')
			i++;
		if (i == start)
			break;
		if (!kw_valid(s + start, i - start)) {
			if (error_r != NULL)
				buf_printf(error_r, "invalid keyword \"%.*s\"", (int)(i - start > 64 ? 64 : i - start),
					   s + start);
			return IX_EINVAL;
		}
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
		l->v[l->n++] = xstrndup(s + start, i - start);
	}
	return 0;
}

static void kw_free(struct kwlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int kw_has(const struct kwlist *l, const char *k)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], k) == 0)
			return 1;
	return 0;
}

/* out = old (mode) given, normalized. */
static void kw_apply(const struct kwlist *old, enum store_flag_mode mode, const struct kwlist *given, struct buf *out)
{
	struct kwlist r = { NULL, 0 };
	r.v = xmalloc((old->n + given->n + 1) * sizeof(char *));
	if (mode != STORE_FLAGS_REPLACE)
		for (size_t i = 0; i < old->n; i++)
			if (mode == STORE_FLAGS_ADD || !kw_has(given, old->v[i]))
				r.v[r.n++] = old->v[i];
	if (mode != STORE_FLAGS_REMOVE)
		for (size_t i = 0; i < given->n; i++)
			r.v[r.n++] = given->v[i];
	qsort(r.v, r.n, sizeof(char *), kw_cmp);
	buf_reset(out);
	for (size_t i = 0; i < r.n; i++) {
		if (i > 0 && strcasecmp(r.v[i], r.v[i - 1]) == 0)
			continue;
		if (out->len > 0)
			buf_append_char(out, ' ');
		buf_append_str(out, r.v[i]);
	}
	free(r.v);
}

/* Validates and normalizes a keyword list given by a caller. */
static int kw_norm(const char *s, struct buf *out, struct buf *error_r)
{
	struct kwlist l, none = { NULL, 0 };
	buf_reset(out);
	if (s == NULL)
		return 0;
	int ret = kw_split(s, strlen(s), &l, error_r);
	if (ret == 0)
		kw_apply(&none, STORE_FLAGS_ADD, &l, out);
	kw_free(&l);
	if (ret == 0 && out->len > STORE_KEYWORDS_MAX) {
		if (error_r != NULL)
			buf_printf(error_r, "too many keywords");
		ret = IX_ELIMIT;
	}
	return ret;
}

/* ---- append ---- */

struct append_ctx {
	struct store_append *req;
	uint8_t hash[32];
	uint64_t body; /* the body's id, set inside the transaction */
	struct buf cache;
	struct buf kw;
	uint8_t (*guids)[STORE_GUID_LEN];
	struct buf *names;
	struct buf errors; /* per-target messages */
	bool *bad;         /* targets whose GUID or folder name is invalid: never tried */
	struct buf bad_errors;
};

static int quota_check(const struct mbox_rec *m, uint64_t size, uint64_t nmsgs, uint64_t qbytes, uint64_t qmsgs,
		       struct buf *error_r)
{
	if (qbytes > 0 && m->bytes + size > qbytes) {
		if (error_r != NULL)
			buf_printf(error_r,
				   "mailbox is over its storage quota (%llu of %llu bytes used, message needs %llu)",
				   (unsigned long long)m->bytes, (unsigned long long)qbytes, (unsigned long long)size);
		return IX_ELIMIT;
	}
	if (qmsgs > 0 && m->messages + nmsgs > qmsgs) {
		if (error_r != NULL)
			buf_printf(error_r, "mailbox is over its message-count quota (%llu of %llu messages)",
				   (unsigned long long)m->messages, (unsigned long long)qmsgs);
		return IX_ELIMIT;
	}
	return 0;
}

static void quota_mark(struct store *st, struct mbox_rec *m, uint64_t qbytes, uint64_t qmsgs)
{
	unsigned pct = st->set.quota_warn_percent;
	int warn = 0;
	if (qbytes > 0 && m->bytes * 100 >= qbytes * pct)
		warn = 1;
	if (qmsgs > 0 && m->messages * 100 >= qmsgs * pct)
		warn = 1;
	m->quota_warned = (uint32_t)warn;
}

/* Adds one new message record (rec: everything but uid and modseq) to a folder, with its save date (0: none, the
 * message keeps its UID from elsewhere); frec and mrec are updated, not written. */
static int msg_add(struct wtx *w, const uint8_t *guid, uint32_t fid, struct folder_rec *frec, struct mbox_rec *mrec,
		   struct msg_rec *rec, const char *kw, size_t kwlen, uint64_t modseq, int64_t save_date,
		   uint32_t *uid_r, struct buf *error_r)
{
	if (frec->uidnext == UINT32_MAX) {
		if (error_r != NULL)
			buf_printf(error_r, "the folder has used up its UIDs");
		return IX_ELIMIT;
	}
	uint32_t uid = frec->uidnext++;
	put_be32(rec->uid_be, uid);
	rec->modseq = modseq;
	rec->flags &= ~MSG_F_CHANGED; /* found by store_changes through its UID until it changes */
	if (frec->highestmodseq < modseq)
		frec->highestmodseq = modseq;
	counts_apply(frec, rec, 1);
	mrec->bytes += rec->size;
	mrec->messages++;
	int ret = msg_put(w, guid, fid, NULL, rec, kw, kwlen, error_r);
	if (ret == 0 && save_date != 0) {
		uint8_t kk[KEY_MSG_LEN];
		key_msg(kk, guid, fid, uid);
		struct sdate_rec sd = { save_date, rec->body };
		ret = wput(w, w->st->db_sdate, kk, sizeof(kk), &sd, sizeof(sd), error_r);
	}
	*uid_r = uid;
	return ret;
}

static int append_one(struct wtx *w, struct append_ctx *c, size_t i, struct buf *error_r)
{
	struct store_target *t = &c->req->targets[i];
	const uint8_t *guid = c->guids[i];
	struct buf note = BUF_INIT;
	int ret = mbox_frozen(w->txn, w->st, guid, &note, error_r);
	if (ret == 1) {
		if (error_r != NULL)
			buf_printf(error_r, "the mailbox is being moved to %s; try again later", buf_cstr(&note));
		ret = IX_EAGAIN;
	}
	buf_free(&note);
	if (ret == 0)
		ret = mbox_ensure(w, guid, error_r);
	struct mbox_rec mrec;
	struct folder_rec frec;
	uint32_t fid;
	if (ret == 0)
		ret = mbox_get(w->txn, w->st, guid, &mrec, error_r);
	if (ret == 0)
		ret = folder_lookup(w->txn, w->st, guid, c->names[i].data, &fid, error_r);
	if (ret == 0)
		ret = folder_get(w->txn, w->st, guid, fid, &frec, error_r);
	if (ret == 0)
		ret = quota_check(&mrec, c->req->len, 1, t->quota_bytes, t->quota_messages, error_r);
	if (ret == 0 && t->want_uid != 0) {
		if (t->want_uid < frec.uidnext) {
			if (error_r != NULL)
				buf_printf(error_r, "UID %u is below the folder's UIDNEXT %u", t->want_uid,
					   frec.uidnext);
			ret = IX_EEXIST;
		} else {
			frec.uidnext = t->want_uid;
		}
	}
	if (ret != 0)
		return ret;
	struct msg_rec rec;
	memset(&rec, 0, sizeof(rec));
	rec.body = c->body;
	rec.size = c->req->len;
	rec.internal_date = c->req->internal_date;
	rec.flags = (c->req->flags & STORE_FLAGS_ALL) | STORE_FLAG_RECENT;
	if (store_guid_is_public(guid))
		rec.flags &= ~(unsigned)STORE_FLAG_SEEN;
	uint64_t modseq = frec.highestmodseq + 1;
	/* a message imported with its UID (a mailbox move) keeps the save date the source gave, if any */
	ret = msg_add(w, guid, fid, &frec, &mrec, &rec, c->kw.data, c->kw.len, modseq,
		      t->want_uid != 0 ? t->want_save_date : (int64_t)time(NULL), &t->uid, error_r);
	quota_mark(w->st, &mrec, t->quota_bytes, t->quota_messages);
	if (ret == 0)
		ret = folder_put(w, guid, fid, &frec, c->names[i].data, error_r);
	if (ret == 0)
		ret = mbox_put(w, guid, &mrec, error_r);
	t->uidvalidity = frec.uidvalidity;
	t->modseq = modseq;
	wtx_touch(w, guid);
	return ret;
}

static int op_append(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct append_ctx *c = ctx;
	struct store_append *req = c->req;
	size_t ok = 0;
	int first = 0;
	w->frozen_ok = 1; /* append_one checks each target */
	buf_reset(&c->errors);
	buf_append(&c->errors, c->bad_errors.data, c->bad_errors.len);
	/* the body's id: the stored copy's, or the next one if the body is new (stored below, once) */
	int ret = body_find(w->txn, w->st, c->hash, &c->body, error_r);
	int new_body = ret == IX_ENOTFOUND;
	if (new_body)
		ret = body_next_id(w->txn, w->st, &c->body, error_r);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < req->ntargets; i++) {
		struct store_target *t = &req->targets[i];
		if (c->bad[i]) {
			if (first == 0)
				first = t->result;
			continue;
		}
		t->uid = 0;
		t->uidvalidity = 0;
		t->modseq = 0;
		struct buf err = BUF_INIT;
		if (req->ntargets == 1) {
			t->result = append_one(w, c, i, &err);
		} else {
			MDB_txn *parent = w->txn, *child;
			int rc = mdb_txn_begin(w->st->env, parent, 0, &child);
			if (rc != 0) {
				buf_free(&err);
				if (rc == MDB_MAP_FULL)
					w->map_full = 1;
				return store_mdb_error(rc, "starting a nested transaction", error_r);
			}
			w->txn = child;
			t->result = append_one(w, c, i, &err);
			w->txn = parent;
			if (t->result == 0 && !w->map_full) {
				rc = mdb_txn_commit(child);
				if (rc == MDB_MAP_FULL)
					w->map_full = 1;
				else if (rc != 0)
					t->result = store_mdb_error(rc, "committing", &err);
			} else {
				mdb_txn_abort(child);
			}
		}
		if (w->map_full) {
			buf_free(&err);
			return IX_EAGAIN;
		}
		if (t->result == 0) {
			ok++;
		} else {
			if (first == 0)
				first = t->result;
			buf_printf(&c->errors, "%s%s: %s", c->errors.len ? "; " : "", t->guid, buf_cstr(&err));
		}
		buf_free(&err);
	}
	if (ok == 0) {
		buf_append(error_r, c->errors.data, c->errors.len);
		return first;
	}
	if (new_body)
		return body_add(w, c->body, c->hash, ok, req->data, req->len, &c->cache, error_r);
	return body_ref(w, c->body, ok, error_r);
}

static void sha256(const void *data, size_t len, uint8_t *out)
{
	unsigned int n = 32;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		fatal("SHA-256 failed (OpenSSL)");
}

/* What store_append does before its transaction, in the caller's thread: checks req, normalises its keywords and
 * target names, hashes the body and builds its cache into c (freed by append_done whatever the result). */
static int append_prepare(struct store *st, struct store_append *req, struct append_ctx *c, struct buf *error_r)
{
	memset(c, 0, sizeof(*c));
	c->req = req;
	int ret = 0;
	req->refused = 0;
	for (size_t i = 0; i < req->ntargets; i++) {
		req->targets[i].result = IX_EINVAL;
		req->targets[i].uid = 0;
	}
	if (req->ntargets == 0 || req->ntargets > STORE_TARGETS_MAX) {
		if (error_r != NULL)
			buf_printf(error_r, "an append needs 1 to %u target mailboxes", STORE_TARGETS_MAX);
		return IX_EINVAL;
	}
	if (req->len > st->set.max_message_size) {
		if (error_r != NULL)
			buf_printf(error_r, "message of %zu bytes is larger than the limit of %zu bytes", req->len,
				   st->set.max_message_size);
		ret = IX_ELIMIT;
	}
	if (ret == 0 && req->data == NULL) {
		if (error_r != NULL)
			buf_printf(error_r, "no message data");
		ret = IX_EINVAL;
	}
	if (ret == 0)
		ret = kw_norm(req->keywords, &c->kw, error_r);
	req->refused = ret != 0;
	c->guids = xcalloc(req->ntargets, STORE_GUID_LEN);
	c->names = xcalloc(req->ntargets, sizeof(struct buf));
	c->bad = xcalloc(req->ntargets, sizeof(bool));
	/* a target that cannot be (a bad GUID or folder name) fails alone: the others still get the message */
	size_t nbad = 0;
	for (size_t i = 0; i < req->ntargets && ret == 0; i++) {
		struct buf why = BUF_INIT;
		int rc = store_guid_parse(req->targets[i].guid, c->guids[i], &why);
		if (rc == 0)
			rc = store_folder_name_norm(req->targets[i].folder, &c->names[i], &why);
		if (rc != 0) {
			c->bad[i] = true;
			nbad++;
			req->targets[i].result = rc;
			buf_printf(&c->bad_errors, "%s%s: %s", c->bad_errors.len ? "; " : "", req->targets[i].guid,
				   buf_cstr(&why));
			if (nbad == req->ntargets) {
				ret = rc;
				if (error_r != NULL)
					buf_append(error_r, req->ntargets == 1 ? why.data : c->bad_errors.data,
						   req->ntargets == 1 ? why.len : c->bad_errors.len);
			}
		}
		buf_free(&why);
	}
	if (ret == 0) {
		if (req->internal_date == 0)
			req->internal_date = (int64_t)time(NULL);
		/* the expensive parts run in the caller's thread, in parallel with other callers */
		sha256(req->data, req->len, c->hash);
		ret = store_cache_build(req->data, req->len, &c->cache, error_r);
		if (ret == IX_ELIMIT)
			ret = IX_EINVAL; /* past the parser's limits: the message itself is refused, never a quota */
		req->refused = ret != 0;
	}
	return ret;
}

/* After append_prepare (its result prepared) and, when that was 0, the transaction (its result written and error
 * written_error): sets each target's result, appends the error to error_r, frees c. Returns store_append's result. */
static int append_done(struct append_ctx *c, int prepared, int written, const struct buf *written_error,
		       struct buf *error_r)
{
	struct store_append *req = c->req;
	int ret = prepared;
	if (ret == 0) {
		ret = written;
		if (ret == 0) {
			for (size_t i = 0; i < req->ntargets; i++) {
				if (req->targets[i].result != 0) {
					if (ret == 0)
						ret = req->targets[i].result;
				}
			}
			if (ret != 0 && error_r != NULL)
				buf_append(error_r, c->errors.data, c->errors.len);
		} else {
			if (error_r != NULL)
				buf_append(error_r, written_error->data, written_error->len);
			for (size_t i = 0; i < req->ntargets; i++)
				if (req->targets[i].result == 0)
					req->targets[i].result = ret;
		}
	} else if (req->refused) {
		for (size_t i = 0; i < req->ntargets; i++)
			req->targets[i].result = ret;
	} else {
		for (size_t i = 0; i < req->ntargets && c->bad != NULL; i++)
			if (!c->bad[i])
				req->targets[i].result = ret;
	}
	for (size_t i = 0; i < req->ntargets && c->names != NULL; i++)
		buf_free(&c->names[i]);
	free(c->names);
	free(c->bad);
	buf_free(&c->bad_errors);
	free(c->guids);
	buf_free(&c->cache);
	buf_free(&c->kw);
	buf_free(&c->errors);
	return ret;
}

int store_append(struct store *st, struct store_append *req, struct buf *error_r)
{
	struct append_ctx c;
	int ret = append_prepare(st, req, &c, error_r);
	int written = 0;
	struct buf werr = BUF_INIT;
	if (ret == 0)
		written = store_write(st, op_append, &c, &werr);
	ret = append_done(&c, ret, written, &werr, error_r);
	buf_free(&werr);
	return ret;
}

int store_append_batch(struct store *st, struct store_append *reqs, size_t n, struct buf *errors_r)
{
	struct append_ctx *c = xcalloc(n > 0 ? n : 1, sizeof(*c));
	int *prepared = xcalloc(n > 0 ? n : 1, sizeof(*prepared));
	struct store_op *ops = xcalloc(n > 0 ? n : 1, sizeof(*ops));
	size_t *op_of = xcalloc(n > 0 ? n : 1, sizeof(*op_of)); /* the op of message i, n for none */
	size_t nops = 0;
	for (size_t i = 0; i < n; i++) {
		prepared[i] = append_prepare(st, &reqs[i], &c[i], errors_r != NULL ? &errors_r[i] : NULL);
		op_of[i] = n;
		if (prepared[i] == 0) {
			ops[nops].run = op_append;
			ops[nops].ctx = &c[i];
			op_of[i] = nops++;
		}
	}
	store_write_ops(st, ops, nops);
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_op *op = op_of[i] < n ? &ops[op_of[i]] : NULL;
		int r = append_done(&c[i], prepared[i], op != NULL ? op->result : 0, op != NULL ? &op->error : NULL,
				    errors_r != NULL ? &errors_r[i] : NULL);
		if (ret == 0)
			ret = r;
	}
	for (size_t i = 0; i < nops; i++)
		buf_free(&ops[i].error);
	free(op_of);
	free(ops);
	free(prepared);
	free(c);
	return ret;
}

/* ---- reading ---- */

struct rctx {
	uint8_t guid[STORE_GUID_LEN];
	struct buf name;
	MDB_txn *txn;
	uint32_t fid;
	struct folder_rec frec;
	int pub;
};

/* Parses names, begins a read transaction and finds the folder. On failure nothing is left open. */
static int rctx_open(struct store *st, struct rctx *r, const char *guid, const char *folder, struct buf *error_r)
{
	memset(r, 0, sizeof(*r));
	int ret = store_guid_parse(guid, r->guid, error_r);
	if (ret == 0)
		ret = store_folder_name_norm(folder, &r->name, error_r);
	if (ret == 0)
		ret = store_rtxn_begin(st, &r->txn, error_r);
	if (ret != 0) {
		buf_free(&r->name);
		return ret;
	}
	ret = folder_lookup(r->txn, st, r->guid, r->name.data, &r->fid, error_r);
	if (ret == 0)
		ret = folder_get(r->txn, st, r->guid, r->fid, &r->frec, error_r);
	if (ret != 0) {
		store_rtxn_end(st, r->txn);
		buf_free(&r->name);
		return ret;
	}
	r->pub = store_guid_is_public(r->guid);
	return 0;
}

static void rctx_close(struct store *st, struct rctx *r)
{
	store_rtxn_end(st, r->txn);
	buf_free(&r->name);
}

void store_msg_free(struct store_msg *msg)
{
	free(msg->keywords);
	msg->keywords = NULL;
}

void store_msg_list_free(struct store_msg **list, size_t count)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_msg_free(&(*list)[i]);
	free(*list);
	*list = NULL;
}

/* Fills m from a record: keywords from the kw table, the body's hash from its reference record. */
static void msg_fill(struct store *st, struct rctx *r, const struct msg_rec *rec, const char *user, struct store_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->uid = msg_uid(rec);
	m->flags = rec->flags & STORE_FLAGS_ALL;
	if (r->pub) {
		m->flags &= ~(unsigned)STORE_FLAG_SEEN;
		if (user != NULL && pseen_has(r->txn, st, r->guid, r->fid, m->uid, user))
			m->flags |= STORE_FLAG_SEEN;
	}
	m->modseq = rec->modseq;
	m->size = rec->size;
	m->internal_date = rec->internal_date;
	struct buf kw = BUF_INIT;
	kw_get(r->txn, st, r->guid, r->fid, rec, &kw, NULL);
	m->keywords = xstrndup(kw.data != NULL ? kw.data : "", kw.len);
	buf_free(&kw);
	struct bref_rec br;
	if (bref_get(r->txn, st, rec->body, &br, NULL) == 0)
		memcpy(m->hash, br.hash, 32);
}

int store_msg_list(struct store *st, const char *guid, const char *folder, const char *user, struct store_msg **list_r,
		   size_t *count_r, struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	size_t cap = r.frec.messages + 1, n = 0;
	struct store_msg *list = xcalloc(cap, sizeof(*list));
	struct msg_iter it;
	struct msg_rec rec;
	ret = msg_iter_begin(r.txn, st, r.guid, r.fid, &it, error_r);
	while (ret == 0 && (ret = msg_iter_next(&it, &rec)) == 1) {
		if (n == cap) {
			cap *= 2;
			list = xrealloc(list, cap * sizeof(*list));
		}
		msg_fill(st, &r, &rec, user, &list[n++]);
		ret = 0;
	}
	msg_iter_end(&it);
	rctx_close(st, &r);
	if (ret != 0) {
		store_msg_list_free(&list, n);
		if (error_r != NULL)
			buf_printf(error_r, "listing messages: a message record is unreadable");
		return ret;
	}
	*list_r = list;
	*count_r = n;
	return 0;
}

int store_msg_get(struct store *st, const char *guid, const char *folder, uint32_t uid, const char *user,
		  struct store_msg *msg_r, struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	struct msg_rec rec;
	ret = msg_get(r.txn, st, r.guid, r.fid, uid, &rec, error_r);
	if (ret == IX_ENOTFOUND && error_r != NULL)
		buf_printf(error_r, "no message with UID %u", uid);
	if (ret == 0)
		msg_fill(st, &r, &rec, user, msg_r);
	rctx_close(st, &r);
	return ret;
}

int store_msg_savedate(struct store *st, const char *guid, const char *folder, uint32_t uid, int64_t *date_r,
		       struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	uint8_t k[KEY_MSG_LEN];
	key_msg(k, r.guid, r.fid, uid);
	struct msg_rec rec;
	MDB_val v;
	struct sdate_rec sd;
	ret = msg_get(r.txn, st, r.guid, r.fid, uid, &rec, error_r);
	if (ret == 0)
		ret = tget(r.txn, st->db_sdate, k, sizeof(k), &v, error_r);
	if (ret == 0 && v.mv_size != sizeof(sd)) {
		if (error_r != NULL)
			buf_printf(error_r, "the save date of message %u is corrupt", uid);
		ret = IX_ECORRUPT;
	}
	if (ret == 0) {
		memcpy(&sd, v.mv_data, sizeof(sd));
		if (sd.body == rec.body)
			*date_r = sd.saved;
		else
			ret = IX_ENOTFOUND; /* left behind for another message (see struct sdate_rec) */
	}
	rctx_close(st, &r);
	return ret;
}

/* Finds a message's body (pointing into the map, valid while r.txn lives). */
static int body_get(struct store *st, struct rctx *r, uint32_t uid, MDB_dbi dbi, MDB_val *val_r, struct buf *error_r)
{
	struct msg_rec rec;
	int ret = msg_get(r->txn, st, r->guid, r->fid, uid, &rec, error_r);
	if (ret == IX_ENOTFOUND) {
		if (error_r != NULL)
			buf_printf(error_r, "no message with UID %u", uid);
		return ret;
	}
	if (ret == 0) {
		uint8_t k[KEY_BODY_LEN];
		key_body(k, rec.body);
		ret = tget(r->txn, dbi, k, sizeof(k), val_r, error_r);
		if (ret == IX_ENOTFOUND) {
			if (error_r != NULL)
				buf_printf(error_r, "the body of message %u is missing (run the store check)", uid);
			ret = IX_ECORRUPT;
		}
	}
	return ret;
}

int store_fetch_body(struct store *st, const char *guid, const char *folder, uint32_t uid, uint64_t offset,
		     uint64_t max_len, struct buf *out, struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	MDB_val v;
	ret = body_get(st, &r, uid, st->db_body, &v, error_r);
	if (ret == 0 && offset < v.mv_size) {
		uint64_t n = v.mv_size - offset;
		if (max_len > 0 && n > max_len)
			n = max_len;
		buf_append(out, (const char *)v.mv_data + offset, (size_t)n);
	}
	rctx_close(st, &r);
	return ret;
}

/* Length of the header block (including the blank line) of a message. */
static size_t header_len(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < len && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

int store_fetch_header(struct store *st, const char *guid, const char *folder, uint32_t uid, struct buf *out,
		       struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	MDB_val v;
	ret = body_get(st, &r, uid, st->db_body, &v, error_r);
	if (ret == 0)
		buf_append(out, v.mv_data, header_len(v.mv_data, v.mv_size));
	rctx_close(st, &r);
	return ret;
}

int store_fetch_cache(struct store *st, const char *guid, const char *folder, uint32_t uid, struct buf *out,
		      struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	MDB_val v;
	ret = body_get(st, &r, uid, st->db_cache, &v, error_r);
	if (ret == 0)
		buf_append(out, v.mv_data, v.mv_size);
	rctx_close(st, &r);
	return ret;
}

static int change_cmp(const void *a, const void *b)
{
	const struct store_change *x = a, *y = b;
	if (x->modseq != y->modseq)
		return x->modseq < y->modseq ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static void change_add(struct store_change **list, size_t *n, size_t *cap, uint32_t uid, uint64_t modseq, int expunged)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*list = xrealloc(*list, *cap * sizeof(**list));
	}
	(*list)[*n].uid = uid;
	(*list)[*n].modseq = modseq;
	(*list)[*n].expunged = expunged;
	(*n)++;
}

/* Two sources: the change log holds every message changed since it arrived and every expunged UID; a message that
 * never changed still has the modseq it arrived with, and those grow with the UID, so they are the newest messages,
 * found by walking the folder's records back from the highest UID. */
int store_changes(struct store *st, const char *guid, const char *folder, uint64_t since, struct store_change **list_r,
		  size_t *count_r, struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	struct store_change *list = NULL;
	size_t n = 0, cap = 0;
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, r.guid, r.fid);
	uint64_t from = since == UINT64_MAX ? since : since + 1;
	struct chg_rec first;
	chg_make(&first, from, 0, 0);
	MDB_cursor *cur;
	int rc = mdb_cursor_open(r.txn, st->db_chg, &cur);
	if (rc == 0) {
		/* the first entry at or after modseq since + 1, then the rest of the folder's entries */
		MDB_val key = { sizeof(k), k }, val = { sizeof(first), &first };
		rc = mdb_cursor_get(cur, &key, &val, MDB_GET_BOTH_RANGE);
		while (rc == 0 && val.mv_size == sizeof(struct chg_rec)) {
			struct chg_rec c;
			memcpy(&c, val.mv_data, sizeof(c));
			change_add(&list, &n, &cap, get_be32(c.uid_be), get_be64(c.modseq_be), c.expunged != 0);
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT_DUP);
		}
		mdb_cursor_close(cur);
	}
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_open(r.txn, st->db_msg, &cur);
	if (rc == 0) {
		MDB_val key = { sizeof(k), k }, val;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
		if (rc == 0)
			rc = mdb_cursor_get(cur, &key, &val, MDB_LAST_DUP);
		while (rc == 0 && val.mv_size == sizeof(struct msg_rec)) {
			struct msg_rec m;
			memcpy(&m, val.mv_data, sizeof(m));
			if (!(m.flags & MSG_F_CHANGED)) {
				if (m.modseq < from)
					break;
				change_add(&list, &n, &cap, msg_uid(&m), m.modseq, 0);
			}
			rc = mdb_cursor_get(cur, &key, &val, MDB_PREV_DUP);
		}
		mdb_cursor_close(cur);
	}
	rctx_close(st, &r);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(list);
		return store_mdb_error(rc, "reading the change log", error_r);
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), change_cmp);
	*list_r = list;
	*count_r = n;
	return 0;
}

/* ---- write operations on existing messages ---- */

struct mop_ctx {
	uint8_t guid[STORE_GUID_LEN];
	struct buf name;
	/* flags */
	struct store_flag_update *upd;
	struct kwlist kw;
	uint32_t *failed;
	size_t nfailed;
	uint64_t modseq;
	/* expunge / copy */
	const uint32_t *uids;
	size_t nuids;
	uint32_t *out;
	size_t nout;
	uint8_t dguid[STORE_GUID_LEN];
	struct buf dname;
	/* clear recent */
	uint32_t below_uid;
	int move;
	uint64_t qbytes, qmsgs;
	uint32_t *dst_uids;
	uint32_t dst_uidvalidity;
	/* recover / purge */
	int64_t time;
	int all;
	size_t count;
};

static int mop_init(struct mop_ctx *c, const char *guid, const char *folder, struct buf *error_r)
{
	memset(c, 0, sizeof(*c));
	int ret = store_guid_parse(guid, c->guid, error_r);
	if (ret == 0)
		ret = store_folder_name_norm(folder, &c->name, error_r);
	return ret;
}

static void mop_free(struct mop_ctx *c)
{
	buf_free(&c->name);
	buf_free(&c->dname);
	kw_free(&c->kw);
	free(c->failed);
	free(c->out);
}

static int op_flags(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct mop_ctx *c = ctx;
	struct store_flag_update *u = c->upd;
	struct store *st = w->st;
	c->nfailed = 0;
	c->modseq = 0;
	uint32_t fid;
	struct folder_rec frec;
	int ret = folder_lookup(w->txn, st, c->guid, c->name.data, &fid, error_r);
	if (ret == 0)
		ret = folder_get(w->txn, st, c->guid, fid, &frec, error_r);
	if (ret != 0)
		return ret;
	int pub_user = store_guid_is_public(c->guid) && u->user != NULL;
	uint64_t modseq = frec.highestmodseq + 1;
	unsigned given = u->flags & STORE_FLAGS_ALL & ~(unsigned)STORE_FLAG_RECENT;
	struct buf kwbuf = BUF_INIT, oldkwbuf = BUF_INIT;
	for (size_t i = 0; i < u->nuids && ret == 0; i++) {
		struct msg_rec rec;
		uint32_t uid = u->uids[i];
		ret = msg_get(w->txn, st, c->guid, fid, uid, &rec, error_r);
		if (ret == IX_ENOTFOUND) {
			ret = 0;
			continue;
		}
		if (ret != 0)
			break;
		if (u->unchangedsince > 0 && rec.modseq > u->unchangedsince) {
			c->failed = xrealloc(c->failed, (c->nfailed + 1) * sizeof(uint32_t));
			c->failed[c->nfailed++] = uid;
			continue;
		}
		buf_reset(&oldkwbuf);
		ret = kw_get(w->txn, st, c->guid, fid, &rec, &oldkwbuf, error_r);
		if (ret != 0)
			break;
		const char *kw = oldkwbuf.data != NULL ? oldkwbuf.data : "";
		size_t kwlen = oldkwbuf.len;
		const struct msg_rec stored = rec;
		unsigned old = rec.flags & STORE_FLAGS_ALL, nf = old;
		if (pub_user && pseen_has(w->txn, st, c->guid, fid, uid, u->user))
			old |= STORE_FLAG_SEEN, nf = old;
		switch (u->mode) {
		case STORE_FLAGS_REPLACE: nf = (old & STORE_FLAG_RECENT) | given; break;
		case STORE_FLAGS_ADD: nf = old | given; break;
		case STORE_FLAGS_REMOVE: nf = old & ~given; break;
		}
		struct kwlist oldkw;
		ret = kw_split(kw, kwlen, &oldkw, NULL);
		if (ret != 0) {
			ret = 0; /* unreadable stored keywords: replace them */
			oldkw.n = 0;
		}
		kw_apply(&oldkw, u->mode, &c->kw, &kwbuf);
		kw_free(&oldkw);
		int kw_changed = kwbuf.len != kwlen || memcmp(kwbuf.data != NULL ? kwbuf.data : "", kw, kwlen) != 0;
		if (nf == old && !kw_changed)
			continue;
		if (kwbuf.len > STORE_KEYWORDS_MAX) {
			if (error_r != NULL)
				buf_printf(error_r, "too many keywords on message %u", uid);
			ret = IX_ELIMIT;
			break;
		}
		if (pub_user) {
			if ((nf ^ old) & STORE_FLAG_SEEN)
				ret = pseen_set(w, c->guid, fid, uid, u->user, (nf & STORE_FLAG_SEEN) != 0, error_r);
			nf &= ~(unsigned)STORE_FLAG_SEEN;
			old = rec.flags & STORE_FLAGS_ALL;
		} else if (store_guid_is_public(c->guid)) {
			nf &= ~(unsigned)STORE_FLAG_SEEN;
		}
		counts_apply(&frec, &rec, -1);
		if (ret == 0 && (stored.flags & MSG_F_CHANGED))
			ret = chg_del(w, c->guid, fid, rec.modseq, uid, error_r);
		rec.flags = nf | MSG_F_CHANGED;
		rec.modseq = modseq;
		counts_apply(&frec, &rec, 1);
		if (ret == 0)
			ret = msg_put(w, c->guid, fid, &stored, &rec, kwbuf.data, kwbuf.len, error_r);
		if (ret == 0)
			ret = chg_put(w, c->guid, fid, modseq, uid, 0, error_r);
		c->modseq = modseq;
	}
	buf_free(&kwbuf);
	buf_free(&oldkwbuf);
	if (ret == 0 && c->modseq != 0) {
		frec.highestmodseq = modseq;
		ret = folder_put(w, c->guid, fid, &frec, c->name.data, error_r);
		wtx_touch(w, c->guid);
	}
	return ret;
}

int store_flags(struct store *st, const char *guid, const char *folder, struct store_flag_update *upd,
		struct buf *error_r)
{
	struct mop_ctx c;
	upd->failed_r = NULL;
	upd->nfailed_r = 0;
	upd->modseq_r = 0;
	int ret = mop_init(&c, guid, folder, error_r);
	if (ret == 0 && upd->keywords != NULL)
		ret = kw_split(upd->keywords, strlen(upd->keywords), &c.kw, error_r);
	c.upd = upd;
	if (ret == 0)
		ret = store_write(st, op_flags, &c, error_r);
	if (ret == 0) {
		upd->failed_r = c.failed;
		upd->nfailed_r = c.nfailed;
		upd->modseq_r = c.modseq;
		c.failed = NULL;
	}
	mop_free(&c);
	return ret;
}

enum expunge_mode { EXPUNGE_RETAIN, EXPUNGE_UNREF, EXPUNGE_KEEPREF };

/* Removes one message; frec and mrec are updated (not written). */
static int msg_expunge_one(struct wtx *w, const uint8_t *guid, uint32_t fid, struct folder_rec *frec,
			   struct mbox_rec *mrec, uint32_t uid, uint64_t modseq, enum expunge_mode mode,
			   struct buf *error_r)
{
	struct msg_rec rec;
	int ret = msg_get(w->txn, w->st, guid, fid, uid, &rec, error_r);
	if (ret != 0)
		return ret;
	struct buf kw = BUF_INIT;
	if (mode == EXPUNGE_RETAIN)
		ret = kw_get(w->txn, w->st, guid, fid, &rec, &kw, error_r);
	if (ret == 0)
		ret = msg_del(w, guid, fid, &rec, error_r);
	if (ret == 0 && (rec.flags & MSG_F_CHANGED))
		ret = chg_del(w, guid, fid, rec.modseq, uid, error_r);
	if (ret == 0)
		ret = chg_put(w, guid, fid, modseq, uid, 1, error_r);
	if (ret == 0 && store_guid_is_public(guid))
		ret = pseen_drop(w, guid, fid, uid, error_r);
	counts_apply(frec, &rec, -1);
	if (frec->highestmodseq < modseq)
		frec->highestmodseq = modseq;
	mrec->bytes -= rec.size;
	mrec->messages--;
	if (ret == 0 && mode == EXPUNGE_RETAIN) {
		uint8_t rk[KEY_RETAIN_LEN];
		memcpy(rk, guid, STORE_GUID_LEN);
		put_be64(rk + 16, mrec->retain_seq++);
		struct retain_rec rr;
		memset(&rr, 0, sizeof(rr));
		rr.fid = fid;
		rr.uid = uid;
		rr.expunged_at = (int64_t)time(NULL);
		rr.msg = rec;
		rr.msg.flags &= ~(unsigned)STORE_FLAG_RECENT;
		if (kw.len > 0)
			rr.msg.flags |= MSG_F_KEYWORDS;
		else
			rr.msg.flags &= ~MSG_F_KEYWORDS;
		char *v = xmalloc(sizeof(rr) + kw.len);
		memcpy(v, &rr, sizeof(rr));
		if (kw.len > 0)
			memcpy(v + sizeof(rr), kw.data, kw.len);
		ret = wput(w, w->st->db_retain, rk, sizeof(rk), v, sizeof(rr) + kw.len, error_r);
		free(v);
	} else if (ret == 0 && mode == EXPUNGE_UNREF) {
		ret = body_unref(w, rec.body, 1, error_r);
	}
	buf_free(&kw);
	return ret;
}

/* UIDs of the folder's messages, optionally only those with \Deleted. */
static int folder_uids(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, int deleted_only,
		       uint32_t **uids_r, size_t *n_r, struct buf *error_r)
{
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	struct msg_iter it;
	struct msg_rec rec;
	int ret = msg_iter_begin(txn, st, guid, fid, &it, error_r);
	while (ret == 0 && (ret = msg_iter_next(&it, &rec)) == 1) {
		ret = 0;
		if (deleted_only && !(rec.flags & STORE_FLAG_DELETED))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			uids = xrealloc(uids, cap * sizeof(*uids));
		}
		uids[n++] = msg_uid(&rec);
	}
	msg_iter_end(&it);
	if (ret != 0) {
		free(uids);
		if (error_r != NULL)
			buf_printf(error_r, "listing messages: a message record is unreadable");
		return ret;
	}
	*uids_r = uids;
	*n_r = n;
	return 0;
}

int msg_expunge_folder(struct wtx *w, const uint8_t *guid, uint32_t fid, struct buf *error_r)
{
	struct folder_rec frec;
	struct mbox_rec mrec;
	int ret = folder_get(w->txn, w->st, guid, fid, &frec, error_r);
	if (ret == 0)
		ret = mbox_get(w->txn, w->st, guid, &mrec, error_r);
	if (ret != 0)
		return ret;
	uint32_t *uids = NULL;
	size_t n = 0;
	ret = folder_uids(w->txn, w->st, guid, fid, 0, &uids, &n, error_r);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = msg_expunge_one(w, guid, fid, &frec, &mrec, uids[i], frec.highestmodseq + 1, EXPUNGE_RETAIN,
				      error_r);
	free(uids);
	if (ret == 0)
		ret = mbox_put(w, guid, &mrec, error_r);
	return ret;
}

static int op_expunge(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct mop_ctx *c = ctx;
	struct store *st = w->st;
	c->nout = 0;
	free(c->out);
	c->out = NULL;
	uint32_t fid;
	struct folder_rec frec;
	struct mbox_rec mrec;
	int ret = folder_lookup(w->txn, st, c->guid, c->name.data, &fid, error_r);
	if (ret == 0)
		ret = folder_get(w->txn, st, c->guid, fid, &frec, error_r);
	if (ret == 0)
		ret = mbox_get(w->txn, st, c->guid, &mrec, error_r);
	if (ret != 0)
		return ret;
	uint32_t *uids = NULL;
	size_t n = 0;
	if (c->uids == NULL) {
		ret = folder_uids(w->txn, st, c->guid, fid, 1, &uids, &n, error_r);
		if (ret != 0)
			return ret;
	} else {
		uids = xmalloc((c->nuids + 1) * sizeof(*uids));
		memcpy(uids, c->uids, c->nuids * sizeof(*uids));
		n = c->nuids;
	}
	c->out = xmalloc((n + 1) * sizeof(uint32_t));
	uint64_t modseq = frec.highestmodseq + 1;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (c->all) { /* UID EXPUNGE: only \Deleted ones */
			struct msg_rec rec;
			ret = msg_get(w->txn, st, c->guid, fid, uids[i], &rec, NULL);
			if (ret == IX_ENOTFOUND || (ret == 0 && !(rec.flags & STORE_FLAG_DELETED))) {
				ret = 0;
				continue;
			}
			if (ret != 0)
				break;
		}
		ret = msg_expunge_one(w, c->guid, fid, &frec, &mrec, uids[i], modseq, EXPUNGE_RETAIN, error_r);
		if (ret == IX_ENOTFOUND) {
			ret = 0;
			continue;
		}
		if (ret == 0)
			c->out[c->nout++] = uids[i];
	}
	free(uids);
	if (ret == 0 && c->nout > 0) {
		ret = folder_put(w, c->guid, fid, &frec, c->name.data, error_r);
		if (ret == 0)
			ret = mbox_put(w, c->guid, &mrec, error_r);
		wtx_touch(w, c->guid);
	}
	return ret;
}

static int expunge(struct store *st, const char *guid, const char *folder, const uint32_t *uids, size_t nuids,
		   int only_deleted, uint32_t **expunged_r, size_t *nexpunged_r, struct buf *error_r)
{
	struct mop_ctx c;
	int ret = mop_init(&c, guid, folder, error_r);
	c.uids = uids;
	c.nuids = nuids;
	c.all = only_deleted;
	if (ret == 0)
		ret = store_write(st, op_expunge, &c, error_r);
	if (ret == 0 && expunged_r != NULL) {
		*expunged_r = c.out;
		*nexpunged_r = c.nout;
		c.out = NULL;
	} else if (nexpunged_r != NULL) {
		*nexpunged_r = ret == 0 ? c.nout : 0;
	}
	mop_free(&c);
	return ret;
}

int store_expunge(struct store *st, const char *guid, const char *folder, const uint32_t *uids, size_t nuids,
		  uint32_t **expunged_r, size_t *nexpunged_r, struct buf *error_r)
{
	return expunge(st, guid, folder, uids, nuids, 0, expunged_r, nexpunged_r, error_r);
}

int store_uid_expunge(struct store *st, const char *guid, const char *folder, const uint32_t *uids, size_t nuids,
		      uint32_t **expunged_r, size_t *nexpunged_r, struct buf *error_r)
{
	if (uids == NULL)
		nuids = 0;
	static const uint32_t none[1] = { 0 };
	return expunge(st, guid, folder, uids != NULL ? uids : none, nuids, 1, expunged_r, nexpunged_r, error_r);
}

static int op_clear_recent(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct mop_ctx *c = ctx;
	struct store *st = w->st;
	uint32_t fid;
	struct folder_rec frec;
	int ret = folder_lookup(w->txn, st, c->guid, c->name.data, &fid, error_r);
	if (ret == 0)
		ret = folder_get(w->txn, st, c->guid, fid, &frec, error_r);
	if (ret != 0 || frec.recent == 0)
		return ret;
	/* collect first: the records change below */
	struct msg_rec *recent = NULL, rec;
	size_t n = 0, cap = 0;
	struct msg_iter it;
	ret = msg_iter_begin(w->txn, st, c->guid, fid, &it, error_r);
	while (ret == 0 && (ret = msg_iter_next(&it, &rec)) == 1) {
		ret = 0;
		if (!(rec.flags & STORE_FLAG_RECENT) || (c->below_uid != 0 && get_be32(rec.uid_be) >= c->below_uid))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			recent = xrealloc(recent, cap * sizeof(*recent));
		}
		recent[n++] = rec;
	}
	msg_iter_end(&it);
	for (size_t i = 0; i < n && ret == 0; i++) {
		rec = recent[i];
		rec.flags &= ~(unsigned)STORE_FLAG_RECENT;
		ret = msg_rec_put(w, c->guid, fid, &recent[i], &rec, error_r);
	}
	free(recent);
	frec.recent -= (uint32_t)n;
	if (ret == 0)
		ret = folder_put(w, c->guid, fid, &frec, c->name.data, error_r);
	return ret;
}

int store_clear_recent(struct store *st, const char *guid, const char *folder, uint32_t below_uid, struct buf *error_r)
{
	struct mop_ctx c;
	int ret = mop_init(&c, guid, folder, error_r);
	c.below_uid = below_uid;
	if (ret == 0)
		ret = store_write(st, op_clear_recent, &c, error_r);
	mop_free(&c);
	return ret;
}

static int op_copy(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct mop_ctx *c = ctx;
	struct store *st = w->st;
	int same_mbox = memcmp(c->guid, c->dguid, STORE_GUID_LEN) == 0;
	uint32_t sfid, dfid;
	struct folder_rec sfrec, dfrec_own, *dfrec = &dfrec_own;
	struct mbox_rec smrec, dmrec_own, *dmrec = &dmrec_own;
	int ret = mbox_ensure(w, c->dguid, error_r);
	if (ret == 0)
		ret = folder_lookup(w->txn, st, c->guid, c->name.data, &sfid, error_r);
	if (ret == 0)
		ret = folder_get(w->txn, st, c->guid, sfid, &sfrec, error_r);
	if (ret == 0)
		ret = mbox_get(w->txn, st, c->guid, &smrec, error_r);
	if (ret == 0)
		ret = folder_lookup(w->txn, st, c->dguid, c->dname.data, &dfid, error_r);
	if (ret != 0)
		return ret;
	if (same_mbox)
		dmrec = &smrec;
	else
		ret = mbox_get(w->txn, st, c->dguid, dmrec, error_r);
	if (same_mbox && sfid == dfid) {
		/* into the folder they are in: a move is a copy with new UIDs, then the originals expunged */
		dfrec = &sfrec;
	} else if (ret == 0) {
		ret = folder_get(w->txn, st, c->dguid, dfid, dfrec, error_r);
	}
	if (ret != 0)
		return ret;
	uint64_t dmodseq = dfrec->highestmodseq + 1, smodseq = sfrec.highestmodseq + 1;
	if (dfrec == &sfrec)
		smodseq = dmodseq;
	c->dst_uidvalidity = dfrec->uidvalidity;
	int dst_pub = store_guid_is_public(c->dguid);
	size_t done = 0;
	memset(c->dst_uids, 0, c->nuids * sizeof(*c->dst_uids));
	for (size_t i = 0; i < c->nuids && ret == 0; i++) {
		c->dst_uids[i] = 0;
		struct msg_rec rec;
		ret = msg_get(w->txn, st, c->guid, sfid, c->uids[i], &rec, error_r);
		if (ret == IX_ENOTFOUND) {
			ret = 0;
			continue;
		}
		if (ret != 0)
			break;
		if (!(c->move && same_mbox))
			ret = quota_check(dmrec, rec.size, 1, c->qbytes, c->qmsgs, error_r);
		if (ret != 0)
			break;
		struct buf kw = BUF_INIT;
		ret = kw_get(w->txn, st, c->guid, sfid, &rec, &kw, error_r);
		if (ret != 0) {
			buf_free(&kw);
			break;
		}
		struct msg_rec nrec = rec;
		nrec.flags |= STORE_FLAG_RECENT;
		if (dst_pub)
			nrec.flags &= ~(unsigned)STORE_FLAG_SEEN;
		ret = msg_add(w, c->dguid, dfid, dfrec, dmrec, &nrec, kw.data, kw.len, dmodseq, (int64_t)time(NULL),
			      &c->dst_uids[i], error_r);
		buf_free(&kw);
		if (ret == 0 && c->move)
			ret = msg_expunge_one(w, c->guid, sfid, &sfrec, &smrec, c->uids[i], smodseq, EXPUNGE_KEEPREF,
					      error_r);
		else if (ret == 0)
			ret = body_ref(w, rec.body, 1, error_r);
		done++;
	}
	if (ret == 0 && done > 0) {
		char *dname = dfrec == &sfrec ? NULL : c->dname.data;
		ret = folder_put(w, c->guid, sfid, &sfrec, c->name.data, error_r);
		if (ret == 0 && dname != NULL)
			ret = folder_put(w, c->dguid, dfid, dfrec, dname, error_r);
		if (ret == 0)
			ret = mbox_put(w, c->guid, &smrec, error_r);
		if (ret == 0 && !same_mbox)
			ret = mbox_put(w, c->dguid, dmrec, error_r);
		wtx_touch(w, c->guid);
		wtx_touch(w, c->dguid);
	}
	return ret;
}

int store_copy(struct store *st, const char *guid, const char *folder, const uint32_t *uids, size_t nuids,
	       const char *dst_guid, const char *dst_folder, int move, uint64_t quota_bytes, uint64_t quota_messages,
	       uint32_t *dst_uids_r, uint32_t *dst_uidvalidity_r, struct buf *error_r)
{
	struct mop_ctx c;
	int ret = mop_init(&c, guid, folder, error_r);
	if (ret == 0)
		ret = store_guid_parse(dst_guid, c.dguid, error_r);
	if (ret == 0)
		ret = store_folder_name_norm(dst_folder, &c.dname, error_r);
	c.uids = uids;
	c.nuids = nuids;
	c.move = move;
	c.qbytes = quota_bytes;
	c.qmsgs = quota_messages;
	uint32_t *own = dst_uids_r == NULL ? xcalloc(nuids + 1, sizeof(uint32_t)) : NULL;
	c.dst_uids = dst_uids_r != NULL ? dst_uids_r : own;
	if (ret == 0)
		ret = store_write(st, op_copy, &c, error_r);
	free(own);
	if (ret == 0 && dst_uidvalidity_r != NULL)
		*dst_uidvalidity_r = c.dst_uidvalidity;
	mop_free(&c);
	return ret;
}

/* ---- deleted-item retention ---- */

static int op_recover(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct mop_ctx *c = ctx;
	struct store *st = w->st;
	c->count = 0;
	struct mbox_rec mrec;
	int ret = mbox_get(w->txn, st, c->guid, &mrec, error_r);
	if (ret != 0)
		return ret;
	uint32_t inbox = 0;
	ret = folder_lookup(w->txn, st, c->guid, "INBOX", &inbox, error_r);
	if (ret != 0 && !store_guid_is_public(c->guid))
		return ret;
	int have_inbox = ret == 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, st->db_retain, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "recovering", error_r);
	/* collect first: the cursor's database is changed below */
	struct buf items = BUF_INIT; /* retain keys */
	MDB_val key = { STORE_GUID_LEN, c->guid }, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size == KEY_RETAIN_LEN && memcmp(key.mv_data, c->guid, STORE_GUID_LEN) == 0) {
		struct retain_rec rr;
		if (val.mv_size >= sizeof(rr)) {
			memcpy(&rr, val.mv_data, sizeof(rr));
			if (rr.expunged_at >= c->time)
				buf_append(&items, key.mv_data, KEY_RETAIN_LEN);
		}
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	ret = 0;
	for (size_t off = 0; off < items.len && ret == 0; off += KEY_RETAIN_LEN) {
		const uint8_t *rk = (const uint8_t *)items.data + off;
		ret = tget(w->txn, st->db_retain, rk, KEY_RETAIN_LEN, &val, error_r);
		if (ret != 0)
			break;
		struct retain_rec rr;
		memcpy(&rr, val.mv_data, sizeof(rr));
		char *kw = xstrndup((const char *)val.mv_data + sizeof(rr), val.mv_size - sizeof(rr));
		uint32_t fid = rr.fid;
		struct folder_rec frec;
		ret = folder_get(w->txn, st, c->guid, fid, &frec, NULL);
		if (ret == IX_ENOTFOUND && !have_inbox) {
			/* a public folder that is gone: the item stays recoverable */
			free(kw);
			ret = 0;
			continue;
		}
		if (ret == IX_ENOTFOUND) {
			fid = inbox;
			ret = folder_get(w->txn, st, c->guid, fid, &frec, error_r);
		}
		char *fname = ret == 0 ? folder_name_get(w->txn, st, c->guid, fid) : NULL;
		if (ret == 0 && fname == NULL)
			ret = IX_ECORRUPT;
		uint32_t uid;
		struct msg_rec rec = rr.msg;
		if (ret == 0)
			ret = msg_add(w, c->guid, fid, &frec, &mrec, &rec, kw, strlen(kw), frec.highestmodseq + 1,
				      (int64_t)time(NULL), &uid, error_r);
		if (ret == 0)
			ret = folder_put(w, c->guid, fid, &frec, fname, error_r);
		if (ret == 0)
			ret = wdel(w, st->db_retain, rk, KEY_RETAIN_LEN, error_r);
		free(fname);
		free(kw);
		c->count++;
	}
	buf_free(&items);
	if (ret == 0 && c->count > 0) {
		ret = mbox_put(w, c->guid, &mrec, error_r);
		wtx_touch(w, c->guid);
	}
	return ret;
}

int store_recover(struct store *st, const char *guid, int64_t since, size_t *count_r, struct buf *error_r)
{
	struct mop_ctx c;
	memset(&c, 0, sizeof(c));
	int ret = store_guid_parse(guid, c.guid, error_r);
	c.time = since;
	if (ret == 0)
		ret = store_write(st, op_recover, &c, error_r);
	*count_r = ret == 0 ? c.count : 0;
	mop_free(&c);
	return ret;
}

int store_report_recover(struct store *st, const char *guid, int64_t since, struct buf *out, struct buf *error_r)
{
	size_t n;
	int ret = store_recover(st, guid, since, &n, error_r);
	if (ret != 0)
		return ret;
	if (n == 0)
		buf_printf(out, "No deleted items to recover%s.\n", since > 0 ? " since that date" : "");
	else
		buf_printf(out,
			   "Recovered %zu deleted item%s into the folders they were deleted from (INBOX where that "
			   "folder no longer exists).\n",
			   n, n == 1 ? "" : "s");
	return 0;
}

static int op_purge(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct mop_ctx *c = ctx;
	struct store *st = w->st;
	c->count = 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, st->db_retain, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "purging", error_r);
	struct buf ids = BUF_INIT; /* body ids to release */
	MDB_val key = { c->all ? 0 : STORE_GUID_LEN, c->guid }, val;
	rc = c->all ? mdb_cursor_get(cur, &key, &val, MDB_FIRST) : mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size == KEY_RETAIN_LEN &&
	       (c->all || memcmp(key.mv_data, c->guid, STORE_GUID_LEN) == 0)) {
		struct retain_rec rr;
		int del = 1;
		if (val.mv_size >= sizeof(rr)) {
			memcpy(&rr, val.mv_data, sizeof(rr));
			del = rr.expunged_at < c->time;
			if (del)
				buf_append(&ids, &rr.msg.body, sizeof(rr.msg.body));
		}
		if (del) {
			rc = mdb_cursor_del(cur, 0);
			if (rc != 0)
				break;
			c->count++;
			rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
		} else {
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		}
	}
	mdb_cursor_close(cur);
	if (rc == MDB_MAP_FULL)
		w->map_full = 1;
	if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL) {
		buf_free(&ids);
		return store_mdb_error(rc, "purging", error_r);
	}
	int ret = 0;
	for (size_t off = 0; off < ids.len && ret == 0; off += sizeof(uint64_t)) {
		uint64_t id;
		memcpy(&id, ids.data + off, sizeof(id));
		ret = body_unref(w, id, 1, error_r);
	}
	buf_free(&ids);
	return ret;
}

int retention_drop(struct wtx *w, const uint8_t *guid, struct buf *error_r)
{
	struct mop_ctx c;
	memset(&c, 0, sizeof(c));
	memcpy(c.guid, guid, STORE_GUID_LEN);
	c.time = INT64_MAX;
	int ret = op_purge(w, &c, error_r);
	mop_free(&c);
	return ret;
}

int store_retention_purge(struct store *st, const char *guid, int64_t older_than, size_t *count_r, struct buf *error_r)
{
	struct mop_ctx c;
	memset(&c, 0, sizeof(c));
	int ret = 0;
	if (guid != NULL)
		ret = store_guid_parse(guid, c.guid, error_r);
	c.all = guid == NULL;
	c.time = older_than;
	if (ret == 0)
		ret = store_write(st, op_purge, &c, error_r);
	*count_r = ret == 0 ? c.count : 0;
	mop_free(&c);
	return ret;
}

int store_retention_count(struct store *st, const char *guid, size_t *count_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	*count_r = 0;
	int ret = store_guid_parse(guid, g, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0)
		return ret;
	MDB_cursor *cur;
	if (mdb_cursor_open(txn, st->db_retain, &cur) == 0) {
		MDB_val key = { STORE_GUID_LEN, g }, val;
		int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		while (rc == 0 && key.mv_size == KEY_RETAIN_LEN && memcmp(key.mv_data, g, STORE_GUID_LEN) == 0) {
			(*count_r)++;
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	store_rtxn_end(st, txn);
	return 0;
}

/* ---- search ---- */

int store_ci_contains(const char *hay, size_t hlen, const char *needle)
{
	return unicasemap_contains(hay, hlen, needle, strlen(needle));
}

/* Does a header field name in header[0..len) have a value containing value? */
static int header_match(const char *h, size_t len, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	size_t i = 0;
	while (i < len) {
		size_t eol = i;
		while (eol < len && h[eol] != '\n')
			eol++;
		if (eol - i > nlen && h[i + nlen] == ':' && strncasecmp(h + i, name, nlen) == 0) {
			/* the field with its continuation lines */
			size_t start = i + nlen + 1, end = eol;
			while (end + 1 < len && (h[end + 1] == ' ' || h[end + 1] == '\t')) {
				end++;
				while (end < len && h[end] != '\n')
					end++;
			}
			if (store_ci_contains(h + start, end - start, value))
				return 1;
		}
		i = eol + 1;
	}
	return 0;
}

int store_search(struct store *st, const char *guid, const char *folder, const char *user, const struct store_search *q,
		 uint32_t **uids_r, size_t *count_r, struct buf *error_r)
{
	struct rctx r;
	int ret = rctx_open(st, &r, guid, folder, error_r);
	if (ret != 0)
		return ret;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	int need_body = q->header_name != NULL || q->text != NULL || q->body != NULL;
	struct buf kw = BUF_INIT;
	struct msg_iter it;
	struct msg_rec rec;
	ret = msg_iter_begin(r.txn, st, r.guid, r.fid, &it, error_r);
	while (ret == 0 && (ret = msg_iter_next(&it, &rec)) == 1) {
		ret = 0;
		uint32_t uid = msg_uid(&rec);
		unsigned flags = rec.flags & STORE_FLAGS_ALL;
		if (r.pub) {
			flags &= ~(unsigned)STORE_FLAG_SEEN;
			if (user != NULL && pseen_has(r.txn, st, r.guid, r.fid, uid, user))
				flags |= STORE_FLAG_SEEN;
		}
		int ok = (flags & q->flags_set) == q->flags_set && (flags & q->flags_unset) == 0;
		if (ok && (q->keyword != NULL || q->no_keyword != NULL)) {
			struct kwlist l;
			buf_reset(&kw);
			kw_get(r.txn, st, r.guid, r.fid, &rec, &kw, NULL);
			if (kw_split(kw.data != NULL ? kw.data : "", kw.len, &l, NULL) == 0) {
				if (q->keyword != NULL && !kw_has(&l, q->keyword))
					ok = 0;
				if (q->no_keyword != NULL && kw_has(&l, q->no_keyword))
					ok = 0;
			}
			kw_free(&l);
		}
		if (q->since != 0 && rec.internal_date < q->since)
			ok = 0;
		if (q->before != 0 && rec.internal_date >= q->before)
			ok = 0;
		if (q->larger != 0 && rec.size <= q->larger)
			ok = 0;
		if (q->smaller != 0 && rec.size >= q->smaller)
			ok = 0;
		if (q->uid_min != 0 && uid < q->uid_min)
			ok = 0;
		if (q->uid_max != 0 && uid > q->uid_max)
			ok = 0;
		if (q->modseq_min != 0 && rec.modseq < q->modseq_min)
			ok = 0;
		if (ok && need_body) {
			MDB_val b, cv;
			uint8_t bk[KEY_BODY_LEN];
			key_body(bk, rec.body);
			if (tget(r.txn, st->db_body, bk, sizeof(bk), &b, NULL) != 0) {
				ok = 0;
			} else {
				const char *p = b.mv_data;
				size_t hl = header_len(p, b.mv_size);
				int raw = 1;
				if (q->header_name != NULL &&
				    !header_match(p, hl, q->header_name, q->header_value ? q->header_value : ""))
					raw = 0;
				if (raw && q->text != NULL && !store_ci_contains(p, b.mv_size, q->text))
					raw = 0;
				if (raw && q->body != NULL && !store_ci_contains(p + hl, b.mv_size - hl, q->body))
					raw = 0;
				/* no raw match: the decoded forms may still match */
				if (!raw && tget(r.txn, st->db_cache, bk, sizeof(bk), &cv, NULL) == 0)
					raw = store_cache_match(p, b.mv_size, cv.mv_data, cv.mv_size, q) == 1;
				ok = raw;
			}
		}
		if (ok) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				uids = xrealloc(uids, cap * sizeof(*uids));
			}
			uids[n++] = uid;
		}
	}
	msg_iter_end(&it);
	buf_free(&kw);
	rctx_close(st, &r);
	if (ret != 0) {
		free(uids);
		if (error_r != NULL)
			buf_printf(error_r, "searching: a message record is unreadable");
		return ret;
	}
	*uids_r = uids;
	*count_r = n;
	return 0;
}
