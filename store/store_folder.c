/* store_folder.c - mailboxes and their folder hierarchy: creation with the standard folders, create, rename
 * (subfolders follow), delete, subscribe, status and listing, quota use and the `mailbox show` report. */
#include "store/store_int.h"
#include "common/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
	const char *name;
	enum store_special_use use;
} standard_folders[] = {
	{ "INBOX", STORE_USE_INBOX }, { "Sent", STORE_USE_SENT }, { "Drafts", STORE_USE_DRAFTS },
	{ "Trash", STORE_USE_TRASH }, { "Junk", STORE_USE_JUNK }, { "Archive", STORE_USE_ARCHIVE },
};

const char *store_special_use_name(enum store_special_use use)
{
	switch (use) {
	case STORE_USE_SENT: return "\\Sent";
	case STORE_USE_DRAFTS: return "\\Drafts";
	case STORE_USE_TRASH: return "\\Trash";
	case STORE_USE_JUNK: return "\\Junk";
	case STORE_USE_ARCHIVE: return "\\Archive";
	case STORE_USE_NONE:
	case STORE_USE_INBOX: break;
	}
	return "";
}

/* ---- records ---- */

int mbox_get(MDB_txn *txn, struct store *st, const uint8_t *guid, struct mbox_rec *rec_r, struct buf *error_r)
{
	MDB_val v;
	int ret = tget(txn, st->db_mbox, guid, STORE_GUID_LEN, &v, error_r);
	if (ret != 0)
		return ret;
	if (v.mv_size != sizeof(*rec_r)) {
		if (error_r != NULL)
			buf_printf(error_r, "mailbox record has a wrong size (%zu)", v.mv_size);
		return IX_ECORRUPT;
	}
	memcpy(rec_r, v.mv_data, sizeof(*rec_r));
	return 0;
}

int mbox_put(struct wtx *w, const uint8_t *guid, const struct mbox_rec *rec, struct buf *error_r)
{
	return wput(w, w->st->db_mbox, guid, STORE_GUID_LEN, rec, sizeof(*rec), error_r);
}

int folder_get(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, struct folder_rec *rec_r,
	       struct buf *error_r)
{
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	MDB_val v;
	int ret = tget(txn, st->db_folder, k, sizeof(k), &v, error_r);
	if (ret != 0)
		return ret;
	if (v.mv_size < sizeof(*rec_r)) {
		if (error_r != NULL)
			buf_printf(error_r, "folder record %u is truncated", fid);
		return IX_ECORRUPT;
	}
	memcpy(rec_r, v.mv_data, sizeof(*rec_r));
	if (rec_r->name_len != v.mv_size - sizeof(*rec_r)) {
		if (error_r != NULL)
			buf_printf(error_r, "folder record %u has a wrong name length", fid);
		return IX_ECORRUPT;
	}
	return 0;
}

char *folder_name_get(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid)
{
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	MDB_val v;
	if (tget(txn, st->db_folder, k, sizeof(k), &v, NULL) != 0 || v.mv_size < sizeof(struct folder_rec))
		return NULL;
	return xstrndup((const char *)v.mv_data + sizeof(struct folder_rec), v.mv_size - sizeof(struct folder_rec));
}

int folder_put(struct wtx *w, const uint8_t *guid, uint32_t fid, const struct folder_rec *rec, const char *name,
	       struct buf *error_r)
{
	size_t nlen = strlen(name);
	uint8_t k[KEY_FOLDER_LEN];
	key_folder(k, guid, fid);
	struct folder_rec r = *rec;
	r.name_len = (uint32_t)nlen;
	char *v = xmalloc(sizeof(r) + nlen);
	memcpy(v, &r, sizeof(r));
	memcpy(v + sizeof(r), name, nlen);
	int ret = wput(w, w->st->db_folder, k, sizeof(k), v, sizeof(r) + nlen, error_r);
	free(v);
	return ret;
}

static void fname_key(struct buf *k, const uint8_t *guid, const char *name)
{
	buf_reset(k);
	buf_append(k, guid, STORE_GUID_LEN);
	buf_append_str(k, name);
}

int folder_lookup(MDB_txn *txn, struct store *st, const uint8_t *guid, const char *name, uint32_t *fid_r,
		  struct buf *error_r)
{
	struct buf k = BUF_INIT;
	fname_key(&k, guid, name);
	MDB_val v;
	int ret = tget(txn, st->db_fname, k.data, k.len, &v, error_r);
	buf_free(&k);
	if (ret == IX_ENOTFOUND) {
		if (error_r != NULL)
			buf_printf(error_r, "no folder \"%s\"", name);
		return ret;
	}
	if (ret != 0)
		return ret;
	if (v.mv_size != 4) {
		if (error_r != NULL)
			buf_printf(error_r, "name index entry of \"%s\" is corrupt", name);
		return IX_ECORRUPT;
	}
	memcpy(fid_r, v.mv_data, 4);
	return 0;
}

/* Creates one folder (the parent must exist or be created by the caller). mrec is updated, not written. */
static int folder_create_uv(struct wtx *w, const uint8_t *guid, struct mbox_rec *mrec, const char *name,
			    enum store_special_use use, uint32_t uidvalidity, uint32_t *fid_r, struct buf *error_r);

static int folder_create_one(struct wtx *w, const uint8_t *guid, struct mbox_rec *mrec, const char *name,
			     enum store_special_use use, uint32_t *fid_r, struct buf *error_r)
{
	return folder_create_uv(w, guid, mrec, name, use, 0, fid_r, error_r);
}

/* folder_create_one with a given UIDVALIDITY (0: a new one) */
static int folder_create_uv(struct wtx *w, const uint8_t *guid, struct mbox_rec *mrec, const char *name,
			    enum store_special_use use, uint32_t uidvalidity, uint32_t *fid_r, struct buf *error_r)
{
	uint32_t fid;
	int ret = folder_lookup(w->txn, w->st, guid, name, &fid, NULL);
	if (ret == 0) {
		if (error_r != NULL)
			buf_printf(error_r, "folder \"%s\" already exists", name);
		return IX_EEXIST;
	}
	if (ret != IX_ENOTFOUND)
		return folder_lookup(w->txn, w->st, guid, name, &fid, error_r);
	if (mrec->next_fid > STORE_FOLDERS_MAX * 4u) {
		if (error_r != NULL)
			buf_printf(error_r, "too many folders have been created in this mailbox");
		return IX_ELIMIT;
	}
	fid = mrec->next_fid++;
	uint32_t now = (uint32_t)time(NULL);
	uint32_t uv = now > mrec->last_uidvalidity ? now : mrec->last_uidvalidity + 1;
	if (uidvalidity != 0)
		uv = uidvalidity;
	if (uv > mrec->last_uidvalidity)
		mrec->last_uidvalidity = uv;
	struct folder_rec rec;
	memset(&rec, 0, sizeof(rec));
	rec.uidvalidity = uv;
	rec.uidnext = 1;
	rec.highestmodseq = 1;
	rec.special_use = use;
	ret = folder_put(w, guid, fid, &rec, name, error_r);
	if (ret != 0)
		return ret;
	struct buf k = BUF_INIT;
	fname_key(&k, guid, name);
	ret = wput(w, w->st->db_fname, k.data, k.len, &fid, sizeof(fid), error_r);
	buf_free(&k);
	if (fid_r != NULL)
		*fid_r = fid;
	return ret;
}

/* Creates the missing parents of name. */
static int folder_create_parents(struct wtx *w, const uint8_t *guid, struct mbox_rec *mrec, const char *name,
				 struct buf *error_r)
{
	char *p = xstrdup(name);
	int ret = 0;
	for (char *s = strchr(p, STORE_SEP); s != NULL && ret == 0; s = strchr(s + 1, STORE_SEP)) {
		*s = '\0';
		uint32_t fid;
		ret = folder_lookup(w->txn, w->st, guid, p, &fid, NULL);
		if (ret == IX_ENOTFOUND)
			ret = folder_create_one(w, guid, mrec, p, STORE_USE_NONE, NULL, error_r);
		*s = STORE_SEP;
	}
	free(p);
	return ret;
}

int mbox_ensure(struct wtx *w, const uint8_t *guid, struct buf *error_r)
{
	struct mbox_rec mrec;
	int ret = mbox_get(w->txn, w->st, guid, &mrec, error_r);
	if (ret != IX_ENOTFOUND)
		return ret;
	memset(&mrec, 0, sizeof(mrec));
	mrec.version = 1;
	mrec.next_fid = 1;
	mrec.created = (int64_t)time(NULL);
	if (!store_guid_is_public(guid)) {
		for (size_t i = 0; i < IX_ARRAY_LEN(standard_folders); i++) {
			ret = folder_create_one(w, guid, &mrec, standard_folders[i].name, standard_folders[i].use, NULL,
						error_r);
			if (ret == 0)
				ret = sub_set(w, guid, standard_folders[i].name, 1, error_r);
			if (ret != 0)
				return ret;
		}
	}
	wtx_touch(w, guid);
	return mbox_put(w, guid, &mrec, error_r);
}

/* ---- operations ---- */

/* folder_op_init's "no folder name" (NULL means INBOX, as everywhere) */
static const char FOLDER_NONE[] = "";

struct folder_op {
	uint8_t guid[STORE_GUID_LEN];
	struct buf name, name2;
	int flag;
};

static int folder_op_init(struct folder_op *op, const char *guid, const char *name, const char *name2,
			  struct buf *error_r)
{
	memset(op, 0, sizeof(*op));
	int ret = store_guid_parse(guid, op->guid, error_r);
	if (ret == 0 && name != FOLDER_NONE)
		ret = store_folder_name_norm(name, &op->name, error_r);
	if (ret == 0 && name2 != FOLDER_NONE)
		ret = store_folder_name_norm(name2, &op->name2, error_r);
	return ret;
}

static void folder_op_free(struct folder_op *op)
{
	buf_free(&op->name);
	buf_free(&op->name2);
}

static int op_mailbox_ensure(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct folder_op *op = ctx;
	return mbox_ensure(w, op->guid, error_r);
}

int store_mailbox_ensure(struct store *st, const char *guid, struct buf *error_r)
{
	struct folder_op op;
	int ret = folder_op_init(&op, guid, FOLDER_NONE, FOLDER_NONE, error_r);
	if (ret == 0) {
		/* cheap check first: most calls find the mailbox */
		MDB_txn *txn;
		struct mbox_rec mrec;
		ret = store_rtxn_begin(st, &txn, error_r);
		if (ret == 0) {
			ret = mbox_get(txn, st, op.guid, &mrec, NULL);
			store_rtxn_end(st, txn);
		}
		if (ret != 0)
			ret = store_write(st, op_mailbox_ensure, &op, error_r);
	}
	folder_op_free(&op);
	return ret;
}

static int op_folder_create(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct folder_op *op = ctx;
	int ret = mbox_ensure(w, op->guid, error_r);
	if (ret != 0)
		return ret;
	struct mbox_rec mrec;
	ret = mbox_get(w->txn, w->st, op->guid, &mrec, error_r);
	if (ret == 0)
		ret = folder_create_parents(w, op->guid, &mrec, op->name.data, error_r);
	if (ret == 0)
		ret = folder_create_one(w, op->guid, &mrec, op->name.data, STORE_USE_NONE, NULL, error_r);
	if (ret == 0)
		ret = mbox_put(w, op->guid, &mrec, error_r);
	wtx_touch(w, op->guid);
	return ret;
}

int store_folder_create(struct store *st, const char *guid, const char *name, struct buf *error_r)
{
	struct folder_op op;
	int ret = folder_op_init(&op, guid, name, FOLDER_NONE, error_r);
	if (ret == 0)
		ret = store_write(st, op_folder_create, &op, error_r);
	folder_op_free(&op);
	return ret;
}

struct import_op {
	struct folder_op f;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t uidvalidity_r;
};

static int op_folder_import(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct import_op *op = ctx;
	const uint8_t *guid = op->f.guid;
	const char *name = op->f.name.data;
	struct mbox_rec mrec;
	struct folder_rec frec;
	uint32_t fid;
	op->uidvalidity_r = 0;
	wtx_touch(w, guid);
	int ret = mbox_ensure(w, guid, error_r);
	if (ret == 0)
		ret = mbox_get(w->txn, w->st, guid, &mrec, error_r);
	if (ret == 0)
		ret = folder_lookup(w->txn, w->st, guid, name, &fid, NULL);
	if (ret == IX_ENOTFOUND) {
		ret = folder_create_parents(w, guid, &mrec, name, error_r);
		if (ret == 0)
			ret = folder_create_uv(w, guid, &mrec, name, STORE_USE_NONE, op->uidvalidity, &fid, error_r);
	} else if (ret != 0) {
		ret = folder_lookup(w->txn, w->st, guid, name, &fid, error_r);
	}
	if (ret == 0)
		ret = folder_get(w->txn, w->st, guid, fid, &frec, error_r);
	if (ret != 0)
		return ret;
	if (frec.uidvalidity != op->uidvalidity) {
		if (frec.uidnext != 1 || frec.messages != 0) {
			op->uidvalidity_r = frec.uidvalidity;
			if (error_r != NULL)
				buf_printf(error_r, "folder \"%s\" already holds messages under UIDVALIDITY %u, not %u",
					   name, frec.uidvalidity, op->uidvalidity);
			return IX_EEXIST;
		}
		frec.uidvalidity = op->uidvalidity; /* never held a message: nobody can know its UIDs */
		if (op->uidvalidity > mrec.last_uidvalidity)
			mrec.last_uidvalidity = op->uidvalidity;
	}
	if (frec.uidnext < op->uidnext)
		frec.uidnext = op->uidnext;
	if (frec.highestmodseq < op->highestmodseq)
		frec.highestmodseq = op->highestmodseq;
	op->uidvalidity_r = frec.uidvalidity;
	ret = folder_put(w, guid, fid, &frec, name, error_r);
	if (ret == 0)
		ret = mbox_put(w, guid, &mrec, error_r);
	return ret;
}

int store_folder_import(struct store *st, const char *guid, const char *name, uint32_t uidvalidity, uint32_t uidnext,
			uint64_t highestmodseq, uint32_t *uidvalidity_r, struct buf *error_r)
{
	struct import_op op;
	memset(&op, 0, sizeof(op));
	int ret = folder_op_init(&op.f, guid, name, FOLDER_NONE, error_r);
	if (ret == 0 && uidvalidity == 0) {
		if (error_r != NULL)
			buf_printf(error_r, "UIDVALIDITY 0 is not valid");
		ret = IX_EINVAL;
	}
	op.uidvalidity = uidvalidity;
	op.uidnext = uidnext;
	op.highestmodseq = highestmodseq;
	if (ret == 0)
		ret = store_write(st, op_folder_import, &op, error_r);
	if (uidvalidity_r != NULL)
		*uidvalidity_r = op.uidvalidity_r;
	folder_op_free(&op.f);
	return ret;
}

struct rename_item {
	char *name;
	uint32_t fid;
};

static int op_folder_rename(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct folder_op *op = ctx;
	const char *from = op->name.data, *to = op->name2.data;
	size_t flen = op->name.len;
	if (strcmp(from, "INBOX") == 0) {
		if (error_r != NULL)
			buf_printf(error_r, "INBOX cannot be renamed");
		return IX_EPERM;
	}
	if (strncmp(to, from, flen) == 0 && (to[flen] == '\0' || to[flen] == STORE_SEP)) {
		if (error_r != NULL)
			buf_printf(error_r, "a folder cannot be renamed into itself");
		return IX_EINVAL;
	}
	uint32_t fid;
	int ret = folder_lookup(w->txn, w->st, op->guid, from, &fid, error_r);
	if (ret != 0)
		return ret;
	ret = folder_lookup(w->txn, w->st, op->guid, to, &fid, NULL);
	if (ret == 0) {
		if (error_r != NULL)
			buf_printf(error_r, "folder \"%s\" already exists", to);
		return IX_EEXIST;
	}
	struct mbox_rec mrec;
	ret = mbox_get(w->txn, w->st, op->guid, &mrec, error_r);
	if (ret != 0)
		return ret;

	/* collect the folder and its subtree from the name index */
	struct rename_item *items = NULL;
	size_t n = 0, cap = 0;
	struct buf k = BUF_INIT;
	fname_key(&k, op->guid, from);
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, w->st->db_fname, &cur);
	if (rc != 0) {
		buf_free(&k);
		return store_mdb_error(rc, "renaming", error_r);
	}
	MDB_val key = { k.len, k.data }, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= k.len && memcmp(key.mv_data, k.data, k.len) == 0) {
		const char *rest = (const char *)key.mv_data + k.len;
		size_t rlen = key.mv_size - k.len;
		if (rlen == 0 || rest[0] == STORE_SEP) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				items = xrealloc(items, cap * sizeof(*items));
			}
			items[n].name = xstrndup((const char *)key.mv_data + STORE_GUID_LEN,
						 key.mv_size - STORE_GUID_LEN);
			memcpy(&items[n].fid, val.mv_data, 4);
			n++;
		}
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	ret = rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc, "renaming", error_r);
	if (ret == 0)
		ret = folder_create_parents(w, op->guid, &mrec, to, error_r);
	struct buf newname = BUF_INIT;
	for (size_t i = 0; i < n && ret == 0; i++) {
		buf_reset(&newname);
		buf_append_str(&newname, to);
		buf_append_str(&newname, items[i].name + flen);
		if (newname.len > STORE_FOLDER_NAME_MAX) {
			if (error_r != NULL)
				buf_printf(error_r, "the new name of \"%s\" would be too long", items[i].name);
			ret = IX_EINVAL;
			break;
		}
		fname_key(&k, op->guid, items[i].name);
		ret = wdel(w, w->st->db_fname, k.data, k.len, error_r);
		if (ret != 0)
			break;
		fname_key(&k, op->guid, newname.data);
		ret = wput(w, w->st->db_fname, k.data, k.len, &items[i].fid, 4, error_r);
		struct folder_rec frec;
		if (ret == 0)
			ret = folder_get(w->txn, w->st, op->guid, items[i].fid, &frec, error_r);
		if (ret == 0)
			ret = folder_put(w, op->guid, items[i].fid, &frec, newname.data, error_r);
		if (ret == 0 && sub_get(w->txn, w->st, op->guid, items[i].name)) {
			ret = sub_set(w, op->guid, items[i].name, 0, error_r);
			if (ret == 0)
				ret = sub_set(w, op->guid, newname.data, 1, error_r);
		}
	}
	if (ret == 0)
		ret = mbox_put(w, op->guid, &mrec, error_r);
	for (size_t i = 0; i < n; i++)
		free(items[i].name);
	free(items);
	buf_free(&newname);
	buf_free(&k);
	wtx_touch(w, op->guid);
	return ret;
}

int store_folder_rename(struct store *st, const char *guid, const char *from, const char *to, struct buf *error_r)
{
	struct folder_op op;
	int ret = folder_op_init(&op, guid, from, to, error_r);
	if (ret == 0)
		ret = store_write(st, op_folder_rename, &op, error_r);
	folder_op_free(&op);
	return ret;
}

/* Deletes every record keyed under prefix in dbi (all the duplicates of a key at once in msg and chg). */
static int delete_prefix(struct wtx *w, MDB_dbi dbi, const uint8_t *prefix, size_t plen, struct buf *error_r)
{
	unsigned dbflags = 0;
	MDB_cursor *cur;
	int rc = mdb_dbi_flags(w->txn, dbi, &dbflags);
	if (rc == 0)
		rc = mdb_cursor_open(w->txn, dbi, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "deleting", error_r);
	unsigned delflags = (dbflags & MDB_DUPSORT) ? MDB_NODUPDATA : 0;
	MDB_val key = { plen, (void *)prefix }, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= plen && memcmp(key.mv_data, prefix, plen) == 0) {
		rc = mdb_cursor_del(cur, delflags);
		if (rc != 0)
			break;
		rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc == EINVAL) /* cursor past the end after the deletion */
			rc = MDB_NOTFOUND;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_MAP_FULL)
		w->map_full = 1;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_error(rc, "deleting", error_r);
	return 0;
}

static int op_folder_delete(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct folder_op *op = ctx;
	const char *name = op->name.data;
	if (strcmp(name, "INBOX") == 0) {
		if (error_r != NULL)
			buf_printf(error_r, "INBOX cannot be deleted");
		return IX_EPERM;
	}
	uint32_t fid;
	int ret = folder_lookup(w->txn, w->st, op->guid, name, &fid, error_r);
	if (ret != 0)
		return ret;
	/* subfolders? */
	struct buf k = BUF_INIT;
	fname_key(&k, op->guid, name);
	buf_append_char(&k, STORE_SEP);
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, w->st->db_fname, &cur);
	if (rc != 0) {
		buf_free(&k);
		return store_mdb_error(rc, "deleting", error_r);
	}
	MDB_val key = { k.len, k.data }, val;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	int children = rc == 0 && key.mv_size >= k.len && memcmp(key.mv_data, k.data, k.len) == 0;
	mdb_cursor_close(cur);
	if (children) {
		buf_free(&k);
		if (error_r != NULL)
			buf_printf(error_r, "folder \"%s\" has subfolders; delete them first", name);
		return IX_EPERM;
	}
	ret = msg_expunge_folder(w, op->guid, fid, error_r);
	if (ret == 0) {
		k.len -= 1;
		ret = wdel(w, w->st->db_fname, k.data, k.len, error_r);
	}
	uint8_t fk[KEY_FOLDER_LEN];
	key_folder(fk, op->guid, fid);
	if (ret == 0)
		ret = wdel(w, w->st->db_folder, fk, sizeof(fk), error_r);
	if (ret == 0)
		ret = delete_prefix(w, w->st->db_chg, fk, sizeof(fk), error_r);
	if (ret == 0)
		ret = delete_prefix(w, w->st->db_kw, fk, sizeof(fk), error_r);
	if (ret == 0)
		ret = delete_prefix(w, w->st->db_sdate, fk, sizeof(fk), error_r);
	if (ret == 0)
		ret = delete_prefix(w, w->st->db_acl, fk, sizeof(fk), error_r);
	if (ret == 0)
		ret = delete_prefix(w, w->st->db_pseen, fk, sizeof(fk), error_r);
	if (ret == 0)
		ret = delete_prefix(w, w->st->db_annot, fk, sizeof(fk), error_r);
	buf_free(&k);
	wtx_touch(w, op->guid);
	return ret;
}

int store_folder_delete(struct store *st, const char *guid, const char *name, struct buf *error_r)
{
	struct folder_op op;
	int ret = folder_op_init(&op, guid, name, FOLDER_NONE, error_r);
	if (ret == 0)
		ret = store_write(st, op_folder_delete, &op, error_r);
	folder_op_free(&op);
	return ret;
}

static int op_mailbox_delete(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct folder_op *op = ctx;
	struct mbox_rec mrec;
	w->frozen_ok = 1; /* the copy left behind by a move is deleted frozen, with its marks */
	int ret = mbox_marks_drop(w, op->guid, error_r);
	if (ret == 0)
		ret = mbox_sieve_drop(w, op->guid, error_r);
	if (ret == 0)
		ret = mbox_get(w->txn, w->st, op->guid, &mrec, error_r);
	if (ret == IX_ENOTFOUND && error_r != NULL)
		buf_printf(error_r, "no such mailbox");
	if (ret != 0)
		return ret;
	/* every folder's messages go to retention, then retention is dropped with its body references */
	uint32_t *fids = NULL;
	size_t n = 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, w->st->db_folder, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "deleting the mailbox", error_r);
	MDB_val key = { STORE_GUID_LEN, op->guid }, val;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size == KEY_FOLDER_LEN && memcmp(key.mv_data, op->guid, STORE_GUID_LEN) == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		fids = xrealloc(fids, (n + 1) * sizeof(*fids));
		fids[n++] = get_be32((const uint8_t *)key.mv_data + 16);
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = msg_expunge_folder(w, op->guid, fids[i], error_r);
	free(fids);
	if (ret == 0)
		ret = retention_drop(w, op->guid, error_r);
	static const size_t dbs[] = {
		offsetof(struct store, db_folder), offsetof(struct store, db_fname), offsetof(struct store, db_chg),
		offsetof(struct store, db_acl),    offsetof(struct store, db_pseen), offsetof(struct store, db_msg),
		offsetof(struct store, db_kw),     offsetof(struct store, db_sub),   offsetof(struct store, db_sdate),
		offsetof(struct store, db_annot),
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(dbs) && ret == 0; i++)
		ret = delete_prefix(w, *(const MDB_dbi *)((const char *)w->st + dbs[i]), op->guid, STORE_GUID_LEN,
				    error_r);
	if (ret == 0)
		ret = wdel(w, w->st->db_mbox, op->guid, STORE_GUID_LEN, error_r);
	wtx_touch(w, op->guid);
	return ret;
}

int store_mailbox_delete(struct store *st, const char *guid, struct buf *error_r)
{
	struct folder_op op;
	int ret = folder_op_init(&op, guid, FOLDER_NONE, FOLDER_NONE, error_r);
	if (ret == 0)
		ret = store_write(st, op_mailbox_delete, &op, error_r);
	folder_op_free(&op);
	return ret;
}

int sub_set(struct wtx *w, const uint8_t *guid, const char *name, int on, struct buf *error_r)
{
	struct buf k = BUF_INIT;
	fname_key(&k, guid, name);
	int ret = on ? wput(w, w->st->db_sub, k.data, k.len, "", 0, error_r)
		     : wdel(w, w->st->db_sub, k.data, k.len, error_r);
	buf_free(&k);
	return ret == IX_ENOTFOUND ? 0 : ret;
}

int sub_get(MDB_txn *txn, struct store *st, const uint8_t *guid, const char *name)
{
	struct buf k = BUF_INIT;
	fname_key(&k, guid, name);
	MDB_val v;
	int ret = tget(txn, st->db_sub, k.data, k.len, &v, NULL);
	buf_free(&k);
	return ret == 0;
}

int store_subs_convert(MDB_txn *txn, struct store *st, struct buf *error_r)
{
	MDB_val mk = { 4, (void *)"subs" }, mv, key, val;
	int rc = mdb_get(txn, st->db_meta, &mk, &mv);
	if (rc == 0)
		return 0;
	MDB_cursor *cur = NULL;
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_open(txn, st->db_fname, &cur);
	for (rc = rc != 0 ? rc : mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		uint32_t fid;
		struct folder_rec frec;
		if (key.mv_size <= STORE_GUID_LEN || val.mv_size != 4)
			continue;
		memcpy(&fid, val.mv_data, 4);
		if (folder_get(txn, st, key.mv_data, fid, &frec, NULL) != 0 || !(frec.flags & FOLDER_F_SUBSCRIBED))
			continue;
		MDB_val empty = { 0, (void *)"" };
		rc = mdb_put(txn, st->db_sub, &key, &empty, 0);
		if (rc != 0)
			break;
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		MDB_val one = { 1, (void *)"1" };
		rc = mdb_put(txn, st->db_meta, &mk, &one, 0);
	}
	return rc == 0 ? 0 : store_mdb_error(rc, "converting the subscriptions", error_r);
}

static int op_folder_subscribe(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct folder_op *op = ctx;
	wtx_touch(w, op->guid);
	return sub_set(w, op->guid, op->name.data, op->flag, error_r);
}

int store_folder_subscribe(struct store *st, const char *guid, const char *name, int subscribed, struct buf *error_r)
{
	struct folder_op op;
	int ret = folder_op_init(&op, guid, name, FOLDER_NONE, error_r);
	op.flag = subscribed;
	if (ret == 0)
		ret = store_write(st, op_folder_subscribe, &op, error_r);
	folder_op_free(&op);
	return ret;
}

int store_subscriptions(struct store *st, const char *guid, struct buf *names_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	MDB_txn *txn;
	int ret = store_guid_parse(guid, g, error_r);
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0)
		return ret;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->db_sub, &cur);
	MDB_val key = { STORE_GUID_LEN, g }, val;
	for (rc = rc != 0 ? rc : mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size > STORE_GUID_LEN && memcmp(key.mv_data, g, STORE_GUID_LEN) == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		buf_append(names_r, (const char *)key.mv_data + STORE_GUID_LEN, key.mv_size - STORE_GUID_LEN);
		buf_append_char(names_r, '\0');
	}
	if (rc == 0 || rc == MDB_NOTFOUND)
		mdb_cursor_close(cur);
	store_rtxn_end(st, txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc, "listing the subscriptions", error_r);
}

/* ---- reading ---- */

void store_folder_info_free(struct store_folder_info *info)
{
	free(info->name);
	info->name = NULL;
}

void store_folder_list_free(struct store_folder_info **list, size_t count)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_folder_info_free(&(*list)[i]);
	free(*list);
	*list = NULL;
}

static void info_fill(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid, const struct folder_rec *r,
		      const char *name, const char *user, struct store_folder_info *info)
{
	memset(info, 0, sizeof(*info));
	info->name = xstrdup(name);
	info->id = fid;
	info->uidvalidity = r->uidvalidity;
	info->uidnext = r->uidnext;
	info->highestmodseq = r->highestmodseq;
	info->messages = r->messages;
	info->unseen = r->unseen;
	info->recent = r->recent;
	info->size = r->size;
	info->special_use = (enum store_special_use)r->special_use;
	info->subscribed = sub_get(txn, st, guid, name);
	if (store_guid_is_public(guid) && user != NULL)
		info->unseen = msg_public_unseen(txn, st, guid, fid, user);
}

int store_folder_status(struct store *st, const char *guid, const char *name, const char *user,
			struct store_folder_info *info_r, struct buf *error_r)
{
	struct folder_op op;
	int ret = folder_op_init(&op, guid, name, FOLDER_NONE, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret == 0) {
		uint32_t fid;
		struct folder_rec rec;
		ret = folder_lookup(txn, st, op.guid, op.name.data, &fid, error_r);
		if (ret == 0)
			ret = folder_get(txn, st, op.guid, fid, &rec, error_r);
		if (ret == 0)
			info_fill(txn, st, op.guid, fid, &rec, op.name.data, user, info_r);
		store_rtxn_end(st, txn);
	}
	folder_op_free(&op);
	return ret;
}

static int folder_list_txn(MDB_txn *txn, struct store *st, const uint8_t *guid, const char *user,
			   struct store_folder_info **list_r, size_t *count_r, struct buf *error_r)
{
	struct store_folder_info *list = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->db_fname, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "listing folders", error_r);
	MDB_val key = { STORE_GUID_LEN, (void *)guid }, val;
	int ret = 0;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size > STORE_GUID_LEN && memcmp(key.mv_data, guid, STORE_GUID_LEN) == 0) {
		uint32_t fid;
		struct folder_rec rec;
		memcpy(&fid, val.mv_data, 4);
		ret = folder_get(txn, st, guid, fid, &rec, error_r);
		if (ret != 0)
			break;
		char *name = xstrndup((const char *)key.mv_data + STORE_GUID_LEN, key.mv_size - STORE_GUID_LEN);
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			list = xrealloc(list, cap * sizeof(*list));
		}
		info_fill(txn, st, guid, fid, &rec, name, user, &list[n++]);
		free(name);
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
		ret = store_mdb_error(rc, "listing folders", error_r);
	if (ret != 0) {
		store_folder_list_free(&list, n);
		return ret;
	}
	*list_r = list;
	*count_r = n;
	return 0;
}

int store_folder_list(struct store *st, const char *guid, const char *user, struct store_folder_info **list_r,
		      size_t *count_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	int ret = store_guid_parse(guid, g, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0)
		return ret;
	struct mbox_rec mrec;
	ret = mbox_get(txn, st, g, &mrec, error_r);
	if (ret == IX_ENOTFOUND && error_r != NULL)
		buf_printf(error_r, "mailbox %s does not exist yet", guid);
	if (ret == 0)
		ret = folder_list_txn(txn, st, g, user, list_r, count_r, error_r);
	store_rtxn_end(st, txn);
	return ret;
}

int store_quota_get(struct store *st, const char *guid, struct store_quota_use *use_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	memset(use_r, 0, sizeof(*use_r));
	int ret = store_guid_parse(guid, g, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0)
		return ret;
	struct mbox_rec mrec;
	ret = mbox_get(txn, st, g, &mrec, NULL);
	store_rtxn_end(st, txn);
	if (ret == IX_ENOTFOUND)
		return 0; /* a mailbox not yet created uses nothing */
	if (ret != 0) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot read the mailbox record");
		return ret;
	}
	use_r->bytes = mrec.bytes;
	use_r->messages = mrec.messages;
	use_r->warned = mrec.quota_warned != 0;
	return 0;
}

static int list_mailboxes(struct store *st, int warned_only, struct buf *out, struct buf *error_r);

int store_quota_warned(struct store *st, struct buf *out, struct buf *error_r)
{
	return list_mailboxes(st, 1, out, error_r);
}

int store_mailboxes(struct store *st, struct buf *out, struct buf *error_r)
{
	return list_mailboxes(st, 0, out, error_r);
}

static int list_mailboxes(struct store *st, int warned_only, struct buf *out, struct buf *error_r)
{
	MDB_txn *txn;
	int ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0)
		return ret;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->db_mbox, &cur);
	if (rc == 0) {
		MDB_val key, val;
		for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			struct mbox_rec m;
			if (key.mv_size != STORE_GUID_LEN || val.mv_size != sizeof(m))
				continue;
			memcpy(&m, val.mv_data, sizeof(m));
			if (m.quota_warned || !warned_only) {
				char hex[STORE_GUID_HEX_LEN + 1];
				store_guid_format(key.mv_data, hex);
				buf_printf(out, "%s\n", hex);
			}
		}
		mdb_cursor_close(cur);
	}
	store_rtxn_end(st, txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_mdb_error(rc, "listing mailboxes", error_r);
	return 0;
}

static void human_size(struct buf *out, uint64_t n)
{
	if (n < 10 * 1024)
		buf_printf(out, "%llu B", (unsigned long long)n);
	else if (n < 10ULL * 1024 * 1024)
		buf_printf(out, "%.1f KiB", (double)n / 1024);
	else if (n < 10ULL * 1024 * 1024 * 1024)
		buf_printf(out, "%.1f MiB", (double)n / (1024 * 1024));
	else
		buf_printf(out, "%.1f GiB", (double)n / (1024.0 * 1024 * 1024));
}

int store_report_mailbox(struct store *st, const char *guid, uint64_t quota_bytes, uint64_t quota_messages,
			 struct buf *out, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	int ret = store_guid_parse(guid, g, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0)
		return ret;
	struct mbox_rec mrec;
	ret = mbox_get(txn, st, g, &mrec, NULL);
	if (ret == IX_ENOTFOUND) {
		store_rtxn_end(st, txn);
		buf_printf(out, "The mailbox has not been created yet (it is created on first delivery or login).\n");
		return 0;
	}
	struct store_folder_info *list = NULL;
	size_t n = 0;
	if (ret == 0)
		ret = folder_list_txn(txn, st, g, NULL, &list, &n, error_r);
	size_t retained = 0;
	if (ret == 0) {
		MDB_cursor *cur;
		if (mdb_cursor_open(txn, st->db_retain, &cur) == 0) {
			MDB_val key = { STORE_GUID_LEN, g }, val;
			int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
			while (rc == 0 && key.mv_size == KEY_RETAIN_LEN &&
			       memcmp(key.mv_data, g, STORE_GUID_LEN) == 0) {
				retained++;
				rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
			}
			mdb_cursor_close(cur);
		}
	}
	store_rtxn_end(st, txn);
	if (ret != 0)
		return ret;
	size_t width = 6;
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i].name) > width)
			width = strlen(list[i].name);
	buf_printf(out, "%-*s  %9s  %9s  %12s  %s\n", (int)width, "Folder", "Messages", "Unseen", "Size", "Use");
	for (size_t i = 0; i < n; i++) {
		struct buf sz = BUF_INIT;
		human_size(&sz, list[i].size);
		buf_printf(out, "%-*s  %9u  %9u  %12s  %s\n", (int)width, list[i].name, list[i].messages,
			   list[i].unseen, buf_cstr(&sz), store_special_use_name(list[i].special_use));
		buf_free(&sz);
	}
	store_folder_list_free(&list, n);
	buf_printf(out, "\nTotal: %llu messages, ", (unsigned long long)mrec.messages);
	human_size(out, mrec.bytes);
	buf_append_str(out, ".\n");
	if (quota_bytes > 0) {
		buf_printf(out, "Storage quota: ");
		human_size(out, mrec.bytes);
		buf_printf(out, " of ");
		human_size(out, quota_bytes);
		buf_printf(out, " used (%.0f%%).\n", 100.0 * (double)mrec.bytes / (double)quota_bytes);
	} else {
		buf_printf(out, "Storage quota: none.\n");
	}
	if (quota_messages > 0)
		buf_printf(out, "Message quota: %llu of %llu messages (%.0f%%).\n", (unsigned long long)mrec.messages,
			   (unsigned long long)quota_messages, 100.0 * (double)mrec.messages / (double)quota_messages);
	else
		buf_printf(out, "Message quota: none.\n");
	if (mrec.quota_warned)
		buf_printf(out, "Warning: the mailbox is near or over its quota.\n");
	buf_printf(out, "Recoverable deleted items: %zu.\n", retained);
	return 0;
}
