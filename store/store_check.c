/* store_check.c - the integrity checker (ISINTEG): recounts every folder, checks UID and modseq order, the change
 * log, the name index, mailbox totals and body reference counts, finds orphans, reports in words and repairs. */
#include "store_int.h"
#include "util.h"

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

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
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
	struct buf hashes = BUF_INIT; /* every reference to a body, 32 bytes each */

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
		uint32_t max_uid = 0;
		uint64_t max_modseq = 0;
		if ((rc = mdb_cursor_open(txn, st->db_msg, &cur)) != 0) {
			ret = store_mdb_error(rc, "checking", error_r);
			break;
		}
		key.mv_size = KEY_FOLDER_LEN;
		key.mv_data = f->key;
		struct buf stale = BUF_INIT; /* message keys to drop (missing bodies) */
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		     rc == 0 && key.mv_size == KEY_MSG_LEN && memcmp(key.mv_data, f->key, KEY_FOLDER_LEN) == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			uint32_t uid = get_be32((const uint8_t *)key.mv_data + 20);
			struct msg_rec m;
			if (val.mv_size < sizeof(m)) {
				problem(c, 0, "message %u in \"%s\" has a truncated record", uid, f->name);
				continue;
			}
			memcpy(&m, val.mv_data, sizeof(m));
			MDB_val b;
			if (tget(txn, st->db_bref, m.hash, 32, &b, NULL) != 0 ||
			    tget(txn, st->db_body, m.hash, 32, &b, NULL) != 0) {
				if (rep)
					buf_append(&stale, key.mv_data, KEY_MSG_LEN);
				problem(c, rep, "message %u in \"%s\" of mailbox %s has lost its body%s", uid, f->name,
					gname(guid, gbuf), rep ? "; the message was removed" : "");
				if (rep)
					continue;
			}
			buf_append(&hashes, m.hash, 32);
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
			/* its change-log entry */
			uint8_t ck[KEY_CHG_LEN];
			key_chg(ck, guid, fid, m.modseq, uid);
			struct chg_rec cr;
			if (tget(txn, st->db_chg, ck, sizeof(ck), &b, NULL) != 0 || b.mv_size != sizeof(cr) ||
			    (memcpy(&cr, b.mv_data, sizeof(cr)), cr.uid != uid || cr.expunged)) {
				if (rep) {
					cr.uid = uid;
					cr.expunged = 0;
					ret = wput(w, st->db_chg, ck, sizeof(ck), &cr, sizeof(cr), error_r);
				}
				problem(c, rep, "message %u in \"%s\" is missing from the change log", uid, f->name);
			}
		}
		mdb_cursor_close(cur);
		for (size_t off = 0; off < stale.len && ret == 0; off += KEY_MSG_LEN)
			ret = wdel(w, st->db_msg, stale.data + off, KEY_MSG_LEN, error_r);
		buf_free(&stale);
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
				problem(c, rep, "mailbox %s records %llu messages and %llu bytes but holds %llu and %llu",
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
		{ offsetof(struct store, db_chg), "change-log entry" },
		{ offsetof(struct store, db_fname), "name index entry" },
		{ offsetof(struct store, db_pseen), "per-user seen entry" },
		{ offsetof(struct store, db_acl), "access control entry" },
	};
	for (size_t d = 0; d < IX_ARRAY_LEN(per_folder) && ret == 0; d++) {
		MDB_dbi dbi = *(const MDB_dbi *)((const char *)st + per_folder[d].off);
		int is_fname = dbi == st->db_fname;
		struct buf drop = BUF_INIT; /* length-prefixed keys */
		size_t orphans = 0;
		if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
			break;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
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
			} else {
				MDB_val fv;
				orphan = tget(txn, st->db_folder, key.mv_data, KEY_FOLDER_LEN, &fv, NULL) != 0;
			}
			if (orphan) {
				orphans++;
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

	/* 5. live change-log entries must match their message's modseq */
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_chg, &cur)) == 0) {
		struct buf drop = BUF_INIT;
		size_t stale = 0;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			struct chg_rec cr;
			if (key.mv_size != KEY_CHG_LEN || val.mv_size != sizeof(cr))
				continue;
			memcpy(&cr, val.mv_data, sizeof(cr));
			if (cr.expunged)
				continue;
			uint8_t mk[KEY_MSG_LEN];
			memcpy(mk, key.mv_data, KEY_FOLDER_LEN);
			put_be32(mk + 20, cr.uid);
			MDB_val mv;
			struct msg_rec m;
			if (tget(txn, st->db_msg, mk, sizeof(mk), &mv, NULL) != 0 || mv.mv_size < sizeof(m) ||
			    (memcpy(&m, mv.mv_data, sizeof(m)), m.modseq != get_be64((const uint8_t *)key.mv_data + 20))) {
				stale++;
				buf_append(&drop, key.mv_data, KEY_CHG_LEN);
			}
		}
		mdb_cursor_close(cur);
		if (stale > 0)
			problem(c, rep, "%zu change-log entries point to messages that moved on", stale);
		for (size_t off = 0; rep && off < drop.len && ret == 0; off += KEY_CHG_LEN)
			ret = wdel(w, st->db_chg, drop.data + off, KEY_CHG_LEN, error_r);
		buf_free(&drop);
	}

	/* 6. retained messages hold body references too */
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_retain, &cur)) == 0) {
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			struct retain_rec rr;
			if (val.mv_size < sizeof(rr))
				continue;
			memcpy(&rr, val.mv_data, sizeof(rr));
			buf_append(&hashes, rr.msg.hash, 32);
			c->retained++;
		}
		mdb_cursor_close(cur);
	}

	/* 7. reference counts and orphan bodies: merge the sorted references with the bref database */
	size_t nh = hashes.len / 32;
	if (nh > 0)
		qsort(hashes.data, nh, 32, hash_cmp);
	if (ret == 0 && (rc = mdb_cursor_open(txn, st->db_bref, &cur)) == 0) {
		struct buf fix = BUF_INIT;   /* hash + bref_rec */
		struct buf drop = BUF_INIT;  /* hashes */
		size_t hi = 0, badref = 0, orphans = 0, missing = 0;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			if (key.mv_size != 32 || val.mv_size != sizeof(struct bref_rec))
				continue;
			c->bodies++;
			while (hi < nh && memcmp(hashes.data + hi * 32, key.mv_data, 32) < 0) {
				missing++; /* reference without bref: reported per message above */
				hi++;
			}
			uint64_t refs = 0;
			while (hi < nh && memcmp(hashes.data + hi * 32, key.mv_data, 32) == 0) {
				refs++;
				hi++;
			}
			struct bref_rec br;
			memcpy(&br, val.mv_data, sizeof(br));
			if (refs == 0) {
				orphans++;
				buf_append(&drop, key.mv_data, 32);
			} else if (br.refs != refs) {
				badref++;
				br.refs = refs;
				buf_append(&fix, key.mv_data, 32);
				buf_append(&fix, &br, sizeof(br));
			}
		}
		mdb_cursor_close(cur);
		(void)missing;
		if (badref > 0)
			problem(c, rep, "%zu bodies have a wrong reference count", badref);
		if (orphans > 0)
			problem(c, rep, "%zu bodies are referenced by no message (orphans)%s", orphans,
				rep ? "; they were freed" : "");
		size_t step = 32 + sizeof(struct bref_rec);
		for (size_t off = 0; rep && off < fix.len && ret == 0; off += step)
			ret = wput(w, st->db_bref, fix.data + off, 32, fix.data + off + 32, sizeof(struct bref_rec),
				   error_r);
		for (size_t off = 0; rep && off < drop.len && ret == 0; off += 32) {
			ret = wdel(w, st->db_bref, drop.data + off, 32, error_r);
			if (ret == 0 || ret == IX_ENOTFOUND)
				ret = wdel(w, st->db_body, drop.data + off, 32, error_r);
			if (ret == 0 || ret == IX_ENOTFOUND)
				ret = wdel(w, st->db_cache, drop.data + off, 32, error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
		}
		buf_free(&fix);
		buf_free(&drop);
	}

	/* 8. bodies and caches without a reference record */
	MDB_dbi plain[2] = { st->db_body, st->db_cache };
	for (size_t d = 0; d < 2 && ret == 0; d++) {
		if ((rc = mdb_cursor_open(txn, plain[d], &cur)) != 0)
			break;
		struct buf drop = BUF_INIT;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			MDB_val bv;
			if (key.mv_size != 32 || tget(txn, st->db_bref, key.mv_data, 32, &bv, NULL) != 0)
				buf_append(&drop, key.mv_data, key.mv_size == 32 ? 32 : 0);
		}
		mdb_cursor_close(cur);
		if (drop.len > 0)
			problem(c, rep, "%zu %s without a reference record (orphans)", drop.len / 32,
				d == 0 ? "message bodies" : "cache records");
		for (size_t off = 0; rep && off < drop.len && ret == 0; off += 32) {
			ret = wdel(w, plain[d], drop.data + off, 32, error_r);
			if (ret == IX_ENOTFOUND)
				ret = 0;
		}
		buf_free(&drop);
	}

	for (size_t i = 0; i < nf; i++)
		free(folders[i].name);
	free(folders);
	free(tallies);
	buf_free(&hashes);
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
		buf_printf(report, "Checked %zu mailboxes, %zu folders, %zu messages, %zu bodies, %zu retained items.\n",
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
