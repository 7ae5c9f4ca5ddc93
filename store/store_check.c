/* store_check.c - the integrity checker (ISINTEG): recounts every folder, checks UID and modseq order, the change
 * log, the name index, mailbox totals and body reference counts, finds orphans, reports in words and repairs. */
#include "store/store_int.h"
#include "common/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct check_ctx {
	int repair;
	struct buf report;
	unsigned problems;
	unsigned repaired;
	size_t mailboxes, folders, messages, bodies, retained;
};

struct folder_item {
	uint8_t key[KEY_FOLDER_LEN];
	struct folder_rec rec;
	char *name;
};

struct tally {
	uint64_t messages, bytes;
};

static void problem(struct check_ctx *c, int fixed, const char *fmt, ...) IX_PRINTF(3, 4);

static void problem(struct check_ctx *c, int fixed, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_append_str(&c->report, "problem: ");
	buf_vprintf(&c->report, fmt, ap);
	va_end(ap);
	buf_append_str(&c->report, fixed ? " (repaired)\n" : "\n");
	c->problems++;
	if (fixed)
		c->repaired++;
}

static int id_cmp(const void *a, const void *b)
{
	uint64_t x, y;
	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	return x < y ? -1 : x > y;
}

static const char *gname(const uint8_t *guid, char *out)
{
	store_guid_format(guid, out);
	return out;
}

/* Runs the whole check in txn; with repair, w is the write transaction and fixes are written. */
static int check_txn(struct store *st, MDB_txn *txn, struct wtx *w, struct check_ctx *c, struct buf *error_r)
{
	int rep = c->repair && w != NULL;
	char gbuf[STORE_GUID_HEX_LEN + 1];
	MDB_cursor *cur;
	MDB_val key, val;
	int rc, ret = 0;
	struct buf ids = BUF_INIT; /* every reference to a body: its id (uint64_t) */

	/* 1. folders: collect them */
	struct folder_item *folders = NULL;
	size_t nf = 0, capf = 0;
	if ((rc = mdb_cursor_open(txn, st->db_folder, &cur)) != 0)
		return store_mdb_error(rc, "checking", error_r);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != KEY_FOLDER_LEN || val.mv_size < sizeof(struct folder_rec)) {
			problem(c, 0, "a folder record has a malformed key or value");
			continue;
		}
		if (nf == capf) {
			capf = capf ? capf * 2 : 64;
			folders = xrealloc(folders, capf * sizeof(*folders));
		}
		memcpy(folders[nf].key, key.mv_data, KEY_FOLDER_LEN);
		memcpy(&folders[nf].rec, val.mv_data, sizeof(struct folder_rec));
		folders[nf].name = xstrndup((const char *)val.mv_data + sizeof(struct folder_rec),
					    val.mv_size - sizeof(struct folder_rec));
		nf++;
	}
	mdb_cursor_close(cur);
	c->folders = nf;

	/* 2. each folder: name index, mailbox, recount of its messages */
	struct tally *tallies = xcalloc(nf + 1, sizeof(*tallies));
	for (size_t i = 0; i < nf && ret == 0; i++) {
		struct folder_item *f = &folders[i];
		const uint8_t *guid = f->key;
		uint32_t fid = get_be32(f->key + 16);
		uint32_t got;
		struct mbox_rec mrec;
		if (mbox_get(txn, st, guid, &mrec, NULL) != 0)
			problem(c, 0, "folder \"%s\" belongs to mailbox %s, which has no mailbox record", f->name,
				gname(guid, gbuf));
		if (folder_lookup(txn, st, guid, f->name, &got, NULL) != 0 || got != fid) {
			if (rep) {
				struct buf k = BUF_INIT;
				buf_append(&k, guid, STORE_GUID_LEN);
				buf_append_str(&k, f->name);
				ret = wput(w, st->db_fname, k.data, k.len, &fid, 4, error_r);
				buf_free(&k);
			}
			problem(c, rep, "folder \"%s\" of mailbox %s is missing from the name index", f->name,
				gname(guid, gbuf));
		}
		struct folder_rec cnt;
		memset(&cnt, 0, sizeof(cnt));
		uint32_t max_uid = 0, prev_uid = 0;
		uint64_t max_modseq = 0, arrived = 0; /* highest modseq of an unchanged message so far */
		struct msg_iter it;
		struct msg_rec m;
		struct buf stale = BUF_INIT;   /* records to drop (missing bodies, repeated UIDs) */
		struct buf rewrite = BUF_INIT; /* pairs of records: stored, repaired */
		int more;
		if ((ret = msg_iter_begin(txn, st, guid, fid, &it, error_r)) != 0)
			break;
		while ((more = msg_iter_next(&it, &m)) == 1) {
			uint32_t uid = msg_uid(&m);
			if (uid <= prev_uid) {
				if (rep)
					buf_append(&stale, &m, sizeof(m));
				problem(c, rep, "folder \"%s\" of mailbox %s holds UID %u twice%s", f->name,
					gname(guid, gbuf), uid, rep ? "; the second record was removed" : "");
				if (rep)
					continue;
			}
			prev_uid = uid;
			uint8_t bk[KEY_BODY_LEN];
			key_body(bk, m.body);
			MDB_val b;
			if (tget(txn, st->db_bref, bk, sizeof(bk), &b, NULL) != 0 ||
			    tget(txn, st->db_body, bk, sizeof(bk), &b, NULL) != 0) {
				if (rep)
					buf_append(&stale, &m, sizeof(m));
				problem(c, rep, "message %u in \"%s\" of mailbox %s has lost its body%s", uid, f->name,
					gname(guid, gbuf), rep ? "; the message was removed" : "");
				if (rep)
					continue;
			}
			buf_append(&ids, &m.body, sizeof(m.body));
			cnt.messages++;
			cnt.size += m.size;
			if (!(m.flags & STORE_FLAG_SEEN))
				cnt.unseen++;
			if (m.flags & STORE_FLAG_RECENT)
				cnt.recent++;
			if (uid > max_uid)
				max_uid = uid;
			if (m.modseq > max_modseq)
				max_modseq = m.modseq;
			/* its keywords */
			struct msg_rec fixed = m;
			if (m.flags & MSG_F_KEYWORDS) {
				uint8_t kk[KEY_MSG_LEN];
				key_msg(kk, guid, fid, uid);
				if (tget(txn, st->db_kw, kk, sizeof(kk), &b, NULL) != 0) {
					fixed.flags &= ~MSG_F_KEYWORDS;
					problem(c, rep, "message %u in \"%s\" of mailbox %s has lost its keywords%s",
						uid, f->name, gname(guid, gbuf), rep ? "; it now has none" : "");
				}
			}
			/* the change log: a changed message has an entry at its modseq; unchanged ones are found by
			 * store_changes from the highest UID down, which needs their modseqs in UID order */
			if (!(m.flags & MSG_F_CHANGED) && m.modseq >= arrived) {
				arrived = m.modseq;
			} else if (!(m.flags & MSG_F_CHANGED)) {
				fixed.flags |= MSG_F_CHANGED; /* and its entry is added below */
				problem(c, rep,
					"message %u in \"%s\" has a lower modseq than an earlier message; the "
					"change log would miss it",
					uid, f->name);
			}
			if (memcmp(&fixed, &m, sizeof(m)) != 0) {
				buf_append(&rewrite, &m, sizeof(m));
				buf_append(&rewrite, &fixed, sizeof(fixed));
			}
			if (!(fixed.flags & MSG_F_CHANGED))
				continue;
			uint8_t ck[KEY_FOLDER_LEN];
			key_folder(ck, guid, fid);
			struct chg_rec cr;
			chg_make(&cr, m.modseq, uid, 0);
			MDB_val cv = { sizeof(cr), &cr };
			MDB_cursor *cc;
			int found = 0;
			if (mdb_cursor_open(txn, st->db_chg, &cc) == 0) {
				MDB_val kv = { sizeof(ck), ck };
				found = mdb_cursor_get(cc, &kv, &cv, MDB_GET_BOTH) == 0;
				mdb_cursor_close(cc);
			}
			if (!found) {
				if (rep && ret == 0)
					ret = wput_dup(w, st->db_chg, ck, sizeof(ck), &cr, sizeof(cr), 0, error_r);
				if (m.flags & MSG_F_CHANGED)
					problem(c, rep, "message %u in \"%s\" is missing from the change log", uid,
						f->name);
			}
		}
		msg_iter_end(&it);
		if (more < 0) {
			problem(c, 0, "folder \"%s\" of mailbox %s has an unreadable message record", f->name,
				gname(guid, gbuf));
		}
		uint8_t fk[KEY_FOLDER_LEN];
		key_folder(fk, guid, fid);
		for (size_t off = 0; rep && off < stale.len && ret == 0; off += sizeof(m)) {
			memcpy(&m, stale.data + off, sizeof(m));
			ret = wdel_dup(w, st->db_msg, fk, sizeof(fk), &m, sizeof(m), error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
		}
		for (size_t off = 0; rep && off < rewrite.len && ret == 0; off += 2 * sizeof(m)) {
			ret = wdel_dup(w, st->db_msg, fk, sizeof(fk), rewrite.data + off, sizeof(m), error_r);
			if (ret == 0)
				ret = wput_dup(w, st->db_msg, fk, sizeof(fk), rewrite.data + off + sizeof(m), sizeof(m),
					       0, error_r);
		}
		buf_free(&stale);
		buf_free(&rewrite);
		c->messages += cnt.messages;
		tallies[i].messages = cnt.messages;
		tallies[i].bytes = cnt.size;
		struct folder_rec *r = &f->rec;
		int bad = 0;
		if (r->messages != cnt.messages || r->unseen != cnt.unseen || r->recent != cnt.recent ||
		    r->size != cnt.size) {
			problem(c, rep,
				"folder \"%s\" of mailbox %s records %u messages (%u unseen, %u recent, %llu bytes) but "
				"holds %u (%u unseen, %u recent, %llu bytes)",
				f->name, gname(guid, gbuf), r->messages, r->unseen, r->recent,
				(unsigned long long)r->size, cnt.messages, cnt.unseen, cnt.recent,
				(unsigned long long)cnt.size);
			r->messages = cnt.messages;
			r->unseen = cnt.unseen;
			r->recent = cnt.recent;
			r->size = cnt.size;
			bad = 1;
		}
		if (max_uid >= r->uidnext) {
			problem(c, rep, "folder \"%s\" has message UID %u at or above its UIDNEXT %u", f->name, max_uid,
				r->uidnext);
			r->uidnext = max_uid + 1;
			bad = 1;
		}
		if (max_modseq > r->highestmodseq) {
			problem(c, rep, "folder \"%s\" has a message modseq %llu above its HIGHESTMODSEQ %llu", f->name,
				(unsigned long long)max_modseq, (unsigned long long)r->highestmodseq);
			r->highestmodseq = max_modseq;
			bad = 1;
		}
		if (bad && rep && ret == 0)
			ret = folder_put(w, guid, fid, r, f->name, error_r);
	}

	/* 3. mailbox totals */
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_mbox, &cur)) == 0) {
		struct buf fix = BUF_INIT; /* guid + mbox_rec */
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			c->mailboxes++;
			struct mbox_rec m;
			if (key.mv_size != STORE_GUID_LEN || val.mv_size != sizeof(m)) {
				problem(c, 0, "a mailbox record is malformed");
				continue;
			}
			memcpy(&m, val.mv_data, sizeof(m));
			struct tally t = { 0, 0 };
			for (size_t i = 0; i < nf; i++)
				if (memcmp(folders[i].key, key.mv_data, STORE_GUID_LEN) == 0) {
					t.messages += tallies[i].messages;
					t.bytes += tallies[i].bytes;
				}
			if (m.messages != t.messages || m.bytes != t.bytes) {
				problem(c, rep,
					"mailbox %s records %llu messages and %llu bytes but holds %llu and %llu",
					gname(key.mv_data, gbuf), (unsigned long long)m.messages,
					(unsigned long long)m.bytes, (unsigned long long)t.messages,
					(unsigned long long)t.bytes);
				m.messages = t.messages;
				m.bytes = t.bytes;
				buf_append(&fix, key.mv_data, STORE_GUID_LEN);
				buf_append(&fix, &m, sizeof(m));
			}
		}
		mdb_cursor_close(cur);
		size_t step = STORE_GUID_LEN + sizeof(struct mbox_rec);
		for (size_t off = 0; rep && off < fix.len && ret == 0; off += step)
			ret = wput(w, st->db_mbox, fix.data + off, STORE_GUID_LEN, fix.data + off + STORE_GUID_LEN,
				   sizeof(struct mbox_rec), error_r);
		buf_free(&fix);
	}

	/* 4. orphans in the name index, messages and change log of folders that do not exist */
	static const struct {
		size_t off;
		const char *what;
	} per_folder[] = {
		{ offsetof(struct store, db_msg), "message" },
		{ offsetof(struct store, db_kw), "keyword" },
		{ offsetof(struct store, db_sdate), "save date" },
		{ offsetof(struct store, db_chg), "change-log entry" },
		{ offsetof(struct store, db_fname), "name index entry" },
		{ offsetof(struct store, db_pseen), "per-user seen entry" },
		{ offsetof(struct store, db_acl), "access control entry" },
		{ offsetof(struct store, db_annot), "annotation" },
	};
	for (size_t d = 0; d < IX_ARRAY_LEN(per_folder) && ret == 0; d++) {
		MDB_dbi dbi = *(const MDB_dbi *)((const char *)st + per_folder[d].off);
		int is_fname = dbi == st->db_fname;
		struct buf drop = BUF_INIT; /* length-prefixed keys */
		size_t orphans = 0;
		if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
			break;
		/* one visit per key: a key of msg or chg carries all its folder's records as duplicates */
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT_NODUP)) {
			uint8_t fk[KEY_FOLDER_LEN];
			int orphan;
			if (is_fname) {
				uint32_t fid;
				if (key.mv_size <= STORE_GUID_LEN || val.mv_size != 4) {
					orphan = 1;
				} else {
					memcpy(&fid, val.mv_data, 4);
					key_folder(fk, key.mv_data, fid);
					MDB_val fv;
					orphan = tget(txn, st->db_folder, fk, sizeof(fk), &fv, NULL) != 0;
				}
			} else if (key.mv_size < KEY_FOLDER_LEN) {
				orphan = 1;
			} else if (dbi == st->db_annot &&
				   get_be32((const uint8_t *)key.mv_data + STORE_GUID_LEN) == 0) {
				/* a mailbox's own annotation (folder id 0): its mailbox must exist */
				MDB_val mv;
				orphan = tget(txn, st->db_mbox, key.mv_data, STORE_GUID_LEN, &mv, NULL) != 0;
			} else {
				MDB_val fv;
				orphan = tget(txn, st->db_folder, key.mv_data, KEY_FOLDER_LEN, &fv, NULL) != 0;
			}
			if (orphan) {
				size_t dups = 1;
				if (dbi == st->db_msg || dbi == st->db_chg)
					mdb_cursor_count(cur, &dups);
				orphans += dups;
				size_t ks = key.mv_size;
				buf_append(&drop, &ks, sizeof(ks));
				buf_append(&drop, key.mv_data, ks);
			}
		}
		mdb_cursor_close(cur);
		if (orphans > 0)
			problem(c, rep, "%zu %s record(s) belong to no folder", orphans, per_folder[d].what);
		for (size_t off = 0; rep && off < drop.len && ret == 0;) {
			size_t ks;
			memcpy(&ks, drop.data + off, sizeof(ks));
			off += sizeof(ks);
			ret = wdel(w, dbi, drop.data + off, ks, error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
			off += ks;
		}
		buf_free(&drop);
	}

	/* 5. keyword records belong to a message that says it has keywords, save dates to the message they were written
	 * for (its body) */
	for (int sdate = 0; sdate < 2 && ret == 0; sdate++) {
		MDB_dbi dbi = sdate ? st->db_sdate : st->db_kw;
		if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
			break;
		struct buf drop = BUF_INIT;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			if (key.mv_size != KEY_MSG_LEN)
				continue; /* reported in step 4 */
			const uint8_t *k = key.mv_data;
			struct msg_rec m;
			struct sdate_rec sd;
			if (sdate && val.mv_size == sizeof(sd))
				memcpy(&sd, val.mv_data, sizeof(sd));
			if (msg_get(txn, st, k, get_be32(k + 16), get_be32(k + 20), &m, NULL) != 0 ||
			    (!sdate && !(m.flags & MSG_F_KEYWORDS)) ||
			    (sdate && (val.mv_size != sizeof(sd) || sd.body != m.body)))
				buf_append(&drop, k, KEY_MSG_LEN);
		}
		mdb_cursor_close(cur);
		if (drop.len > 0)
			problem(c, rep, "%zu %s records belong to no message", drop.len / KEY_MSG_LEN,
				sdate ? "save date" : "keyword");
		for (size_t off = 0; rep && off < drop.len && ret == 0; off += KEY_MSG_LEN)
			ret = wdel(w, dbi, drop.data + off, KEY_MSG_LEN, error_r);
		buf_free(&drop);
	}

	/* 6. live change-log entries must match their message's modseq */
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_chg, &cur)) == 0) {
		struct buf drop = BUF_INIT; /* folder key + chg_rec */
		size_t stale = 0, step = KEY_FOLDER_LEN + sizeof(struct chg_rec);
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			struct chg_rec cr;
			if (key.mv_size != KEY_FOLDER_LEN || val.mv_size != sizeof(cr))
				continue;
			memcpy(&cr, val.mv_data, sizeof(cr));
			if (cr.expunged)
				continue;
			const uint8_t *k = key.mv_data;
			struct msg_rec m;
			if (msg_get(txn, st, k, get_be32(k + 16), get_be32(cr.uid_be), &m, NULL) != 0 ||
			    m.modseq != get_be64(cr.modseq_be) || !(m.flags & MSG_F_CHANGED)) {
				stale++;
				buf_append(&drop, k, KEY_FOLDER_LEN);
				buf_append(&drop, &cr, sizeof(cr));
			}
		}
		mdb_cursor_close(cur);
		if (stale > 0)
			problem(c, rep, "%zu change-log entries point to messages that moved on", stale);
		for (size_t off = 0; rep && off < drop.len && ret == 0; off += step) {
			ret = wdel_dup(w, st->db_chg, drop.data + off, KEY_FOLDER_LEN, drop.data + off + KEY_FOLDER_LEN,
				       sizeof(struct chg_rec), error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
		}
		buf_free(&drop);
	}

	/* 7. retained messages hold body references too */
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_retain, &cur)) == 0) {
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			struct retain_rec rr;
			if (val.mv_size < sizeof(rr))
				continue;
			memcpy(&rr, val.mv_data, sizeof(rr));
			buf_append(&ids, &rr.msg.body, sizeof(rr.msg.body));
			c->retained++;
		}
		mdb_cursor_close(cur);
	}

	/* 8. reference counts, the hash index and orphan bodies: merge the sorted references with bref */
	size_t nids = ids.len / sizeof(uint64_t);
	if (nids > 0)
		qsort(ids.data, nids, sizeof(uint64_t), id_cmp);
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_bref, &cur)) == 0) {
		struct buf fix = BUF_INIT;   /* body key + bref_rec */
		struct buf drop = BUF_INIT;  /* body keys */
		struct buf index = BUF_INIT; /* body key + hash: missing hash index entries */
		size_t hi = 0, badref = 0, orphans = 0;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			if (key.mv_size != KEY_BODY_LEN || val.mv_size != sizeof(struct bref_rec))
				continue;
			c->bodies++;
			uint64_t id = get_be64(key.mv_data), at;
			/* references without bref are reported per message above */
			while (hi < nids && (memcpy(&at, ids.data + hi * sizeof(at), sizeof(at)), at < id))
				hi++;
			uint64_t refs = 0;
			while (hi < nids && (memcpy(&at, ids.data + hi * sizeof(at), sizeof(at)), at == id)) {
				refs++;
				hi++;
			}
			struct bref_rec br;
			memcpy(&br, val.mv_data, sizeof(br));
			if (refs == 0) {
				orphans++;
				buf_append(&drop, key.mv_data, KEY_BODY_LEN);
				continue;
			}
			if (br.refs != refs) {
				badref++;
				br.refs = refs;
				buf_append(&fix, key.mv_data, KEY_BODY_LEN);
				buf_append(&fix, &br, sizeof(br));
			}
			uint64_t hid;
			if (body_find(txn, st, br.hash, &hid, NULL) != 0 || hid != id) {
				buf_append(&index, key.mv_data, KEY_BODY_LEN);
				buf_append(&index, br.hash, 32);
			}
		}
		mdb_cursor_close(cur);
		if (badref > 0)
			problem(c, rep, "%zu bodies have a wrong reference count", badref);
		if (orphans > 0)
			problem(c, rep, "%zu bodies are referenced by no message (orphans)%s", orphans,
				rep ? "; they were freed" : "");
		if (index.len > 0)
			problem(c, rep, "%zu bodies are missing from the hash index (they would be stored twice)",
				index.len / (KEY_BODY_LEN + 32));
		size_t step = KEY_BODY_LEN + sizeof(struct bref_rec);
		for (size_t off = 0; rep && off < fix.len && ret == 0; off += step)
			ret = wput(w, st->db_bref, fix.data + off, KEY_BODY_LEN, fix.data + off + KEY_BODY_LEN,
				   sizeof(struct bref_rec), error_r);
		for (size_t off = 0; rep && off < drop.len && ret == 0; off += KEY_BODY_LEN) {
			ret = wdel(w, st->db_bref, drop.data + off, KEY_BODY_LEN, error_r);
			if (ret == 0 || ret == IX_ENOTFOUND)
				ret = wdel(w, st->db_body, drop.data + off, KEY_BODY_LEN, error_r);
			if (ret == 0 || ret == IX_ENOTFOUND)
				ret = wdel(w, st->db_cache, drop.data + off, KEY_BODY_LEN, error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
		}
		step = KEY_BODY_LEN + 32;
		for (size_t off = 0; rep && off < index.len && ret == 0; off += step) {
			uint64_t id = get_be64((const uint8_t *)index.data + off);
			ret = wput(w, st->db_bhash, index.data + off + KEY_BODY_LEN, 32, &id, sizeof(id), error_r);
		}
		buf_free(&fix);
		buf_free(&drop);
		buf_free(&index);
	}

	/* 9. bodies and caches without a reference record */
	MDB_dbi plain[2] = { st->db_body, st->db_cache };
	for (size_t d = 0; d < 2 && ret == 0; d++) {
		if ((rc = mdb_cursor_open(txn, plain[d], &cur)) != 0)
			break;
		struct buf drop = BUF_INIT; /* length-prefixed keys */
		size_t n = 0;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			MDB_val bv;
			if (key.mv_size != KEY_BODY_LEN ||
			    tget(txn, st->db_bref, key.mv_data, KEY_BODY_LEN, &bv, NULL) != 0) {
				size_t ks = key.mv_size;
				buf_append(&drop, &ks, sizeof(ks));
				buf_append(&drop, key.mv_data, ks);
				n++;
			}
		}
		mdb_cursor_close(cur);
		if (n > 0)
			problem(c, rep, "%zu %s without a reference record (orphans)", n,
				d == 0 ? "message bodies" : "cache records");
		for (size_t off = 0; rep && off < drop.len && ret == 0;) {
			size_t ks;
			memcpy(&ks, drop.data + off, sizeof(ks));
			off += sizeof(ks);
			ret = wdel(w, plain[d], drop.data + off, ks, error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
			off += ks;
		}
		buf_free(&drop);
	}

	/* 10. hash index entries that name no body, or a body with another hash */
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_bhash, &cur)) == 0) {
		struct buf drop = BUF_INIT; /* length-prefixed keys */
		size_t n = 0;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			uint64_t id = 0;
			uint8_t bk[KEY_BODY_LEN];
			MDB_val bv;
			if (val.mv_size == sizeof(id))
				memcpy(&id, val.mv_data, sizeof(id));
			key_body(bk, id);
			int bad = key.mv_size != 32 || val.mv_size != sizeof(id) ||
				  tget(txn, st->db_bref, bk, sizeof(bk), &bv, NULL) != 0 ||
				  bv.mv_size != sizeof(struct bref_rec) ||
				  memcmp(key.mv_data, (const char *)bv.mv_data + offsetof(struct bref_rec, hash), 32) !=
					  0;
			if (bad) {
				size_t ks = key.mv_size;
				buf_append(&drop, &ks, sizeof(ks));
				buf_append(&drop, key.mv_data, ks);
				n++;
			}
		}
		mdb_cursor_close(cur);
		if (n > 0)
			problem(c, rep, "%zu hash index entries name no body", n);
		for (size_t off = 0; rep && off < drop.len && ret == 0;) {
			size_t ks;
			memcpy(&ks, drop.data + off, sizeof(ks));
			off += sizeof(ks);
			ret = wdel(w, st->db_bhash, drop.data + off, ks, error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
			off += ks;
		}
		buf_free(&drop);
	}

	for (size_t i = 0; i < nf; i++)
		free(folders[i].name);
	free(folders);
	free(tallies);
	buf_free(&ids);
	return ret;
}

static int op_check(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct check_ctx *c = ctx;
	buf_reset(&c->report);
	c->problems = c->repaired = 0;
	c->mailboxes = c->folders = c->messages = c->bodies = c->retained = 0;
	return check_txn(w->st, w->txn, w, c, error_r);
}

int store_check(struct store *st, int repair, struct buf *report, unsigned *problems_r, struct buf *error_r)
{
	struct check_ctx c;
	memset(&c, 0, sizeof(c));
	c.repair = repair;
	int ret;
	if (repair) {
		ret = store_write(st, op_check, &c, error_r);
	} else {
		MDB_txn *txn;
		ret = store_rtxn_begin(st, &txn, error_r);
		if (ret == 0) {
			ret = check_txn(st, txn, NULL, &c, error_r);
			store_rtxn_end(st, txn);
		}
	}
	if (ret == 0) {
		buf_append(report, c.report.data, c.report.len);
		buf_printf(report,
			   "Checked %zu mailboxes, %zu folders, %zu messages, %zu bodies, %zu retained items.\n",
			   c.mailboxes, c.folders, c.messages, c.bodies, c.retained);
		if (c.problems == 0)
			buf_printf(report, "No problems found.\n");
		else if (repair)
			buf_printf(report, "%u problems found, %u repaired.\n", c.problems, c.repaired);
		else
			buf_printf(report, "%u problems found; run with --repair to fix them.\n", c.problems);
	}
	if (problems_r != NULL)
		*problems_r = ret == 0 ? c.problems : 0;
	buf_free(&c.report);
	return ret;
}
