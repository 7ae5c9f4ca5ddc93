/* store_annot.c - annotations (RFC 5464 METADATA): entries of a folder or of a mailbox ("server" entries), shared or
 * private to one user, in the annot table, with the per-folder count limit checked in the transaction that sets. */
#include "store/store_int.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* key: guid, fid (0: the mailbox's server entries), entry, NUL, user ("" for a shared entry) */
static void annot_key(struct buf *k, const uint8_t *guid, uint32_t fid, const char *entry, const char *user)
{
	uint8_t fk[KEY_FOLDER_LEN];
	key_folder(fk, guid, fid);
	buf_reset(k);
	buf_append(k, fk, sizeof(fk));
	buf_append_str(k, entry);
	buf_append_char(k, '\0');
	buf_append_str(k, user);
}

static bool entry_private(const char *entry)
{
	return strncmp(entry, "/private", 8) == 0 && (entry[8] == '/' || entry[8] == '\0');
}

/* The user part of an entry's key: "" for a shared entry. */
static const char *entry_user(const char *entry, const char *user)
{
	return entry_private(entry) ? user : "";
}

/* An entry under /private/ or /shared/ (root: or one of those two, the start of a walk). */
static int entry_check(const char *entry, bool root, struct buf *error_r)
{
	size_t n = strlen(entry);
	if ((strncmp(entry, "/private/", 9) == 0 && n > 9) || (strncmp(entry, "/shared/", 8) == 0 && n > 8) ||
	    (root && (strcmp(entry, "/private") == 0 || strcmp(entry, "/shared") == 0)))
		if (n <= STORE_ANNOT_ENTRY_MAX)
			return 0;
	if (error_r != NULL)
		buf_printf(error_r, "invalid annotation entry name");
	return IX_EINVAL;
}

/* Calls fn for each key of the annot table that begins with the prefix (and is longer), with the rest of the key
 * after the prefix. Returns 0 or an IX code. */
static int annot_walk(MDB_txn *txn, struct store *st, const void *prefix, size_t plen,
		      void (*fn)(const char *rest, size_t rlen, const MDB_val *val, void *arg), void *arg,
		      struct buf *error_r)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->db_annot, &cur);
	if (rc != 0)
		return store_mdb_error(rc, "reading annotations", error_r);
	MDB_val key = { plen, (void *)prefix }, val;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size > plen && memcmp(key.mv_data, prefix, plen) == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		fn((const char *)key.mv_data + plen, key.mv_size - plen, &val, arg);
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_mdb_error(rc, "reading annotations", error_r);
}

struct count_arg {
	const char *user;
	size_t n;
};

/* Counts an entry the user sees: a shared one, or one of the user's private ones. */
static void count_entry(const char *rest, size_t rlen, const MDB_val *val, void *arg)
{
	(void)val;
	struct count_arg *a = arg;
	const char *nul = memchr(rest, '\0', rlen);
	if (nul == NULL || rest[0] != '/')
		return; /* not an entry of IMAP's (a URLAUTH key) */
	size_t ulen = rlen - (size_t)(nul + 1 - rest);
	if (ulen == 0 || (ulen == strlen(a->user) && memcmp(nul + 1, a->user, ulen) == 0))
		a->n++;
}

/* The folder id of a folder name, or 0 for none (the mailbox's own entries: the mailbox must exist). */
static int annot_fid(MDB_txn *txn, struct store *st, const uint8_t *guid, const struct buf *name, uint32_t *fid_r,
		     struct buf *error_r)
{
	*fid_r = 0;
	if (name->len > 0)
		return folder_lookup(txn, st, guid, name->data, fid_r, error_r);
	struct mbox_rec m;
	return mbox_get(txn, st, guid, &m, error_r);
}

struct annot_ctx {
	uint8_t guid[STORE_GUID_LEN];
	struct buf name; /* empty: server entries */
	const char *user;
	const struct store_annot *set;
	size_t n;
};

static int annot_ctx_init(struct annot_ctx *c, const char *guid, const char *folder, const char *user,
			  struct buf *error_r)
{
	memset(c, 0, sizeof(*c));
	c->user = user;
	int ret = store_guid_parse(guid, c->guid, error_r);
	if (ret == 0 && folder != NULL)
		ret = store_folder_name_norm(folder, &c->name, error_r);
	if (ret == 0 && (user == NULL || *user == '\0' || strlen(user) > STORE_ACL_ID_MAX)) {
		if (error_r != NULL)
			buf_printf(error_r, "annotations need a user");
		ret = IX_EINVAL;
	}
	return ret;
}

static int op_annot_set(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct annot_ctx *c = ctx;
	uint32_t fid;
	int ret = annot_fid(w->txn, w->st, c->guid, &c->name, &fid, error_r);
	if (ret != 0)
		return ret;
	uint8_t fk[KEY_FOLDER_LEN];
	key_folder(fk, c->guid, fid);
	struct count_arg counted = { c->user, 0 };
	if ((ret = annot_walk(w->txn, w->st, fk, sizeof(fk), count_entry, &counted, error_r)) != 0)
		return ret;
	size_t count = counted.n;
	struct buf k = BUF_INIT;
	for (size_t i = 0; i < c->n && ret == 0; i++) {
		const struct store_annot *a = &c->set[i];
		annot_key(&k, c->guid, fid, a->entry, entry_user(a->entry, c->user));
		MDB_val v;
		bool had = tget(w->txn, w->st->db_annot, k.data, k.len, &v, NULL) == 0;
		if (a->value != NULL) {
			ret = wput(w, w->st->db_annot, k.data, k.len, a->value, a->len, error_r);
			count += !had;
		} else if (had) {
			ret = wdel(w, w->st->db_annot, k.data, k.len, error_r);
			count--;
		}
	}
	buf_free(&k);
	if (ret == 0 && count > STORE_ANNOT_PER_FOLDER_MAX) {
		if (error_r != NULL)
			buf_printf(error_r, "too many annotations (limit %u)", STORE_ANNOT_PER_FOLDER_MAX);
		return IX_ELIMIT; /* the transaction is not committed: none of the entries is set */
	}
	if (ret == 0)
		wtx_touch(w, c->guid);
	return ret;
}

int store_annot_set(struct store *st, const char *guid, const char *folder, const char *user,
		    const struct store_annot *set, size_t n, struct buf *error_r)
{
	struct annot_ctx c;
	int ret = annot_ctx_init(&c, guid, folder, user, error_r);
	for (size_t i = 0; i < n && ret == 0; i++) {
		ret = entry_check(set[i].entry, false, error_r);
		if (ret == 0 && set[i].value != NULL && set[i].len > STORE_ANNOT_VALUE_MAX) {
			if (error_r != NULL)
				buf_printf(error_r, "annotation value too large (limit %u bytes)",
					   STORE_ANNOT_VALUE_MAX);
			ret = IX_ELIMIT;
		}
	}
	c.set = set;
	c.n = n;
	if (ret == 0)
		ret = store_write(st, op_annot_set, &c, error_r);
	buf_free(&c.name);
	return ret;
}

struct get_arg {
	const char *entry, *user;
	int depth;
	store_annot_fn *fn;
	void *arg;
	struct buf name;
};

/* Hands on an entry key after the asked entry's bytes: the entry itself or a descendant within the depth, of the
 * right user. */
static void get_entry(const char *rest, size_t rlen, const MDB_val *val, void *arg)
{
	struct get_arg *a = arg;
	const char *nul = memchr(rest, '\0', rlen);
	if (nul == NULL || (rest[0] != '\0' && rest[0] != '/'))
		return; /* another entry that merely begins with the same bytes */
	size_t sublen = (size_t)(nul - rest), ulen = rlen - sublen - 1;
	if (ulen != strlen(a->user) || memcmp(nul + 1, a->user, ulen) != 0)
		return; /* another user's private entry */
	if (sublen > 0 && (a->depth == 0 || (a->depth == 1 && memchr(rest + 1, '/', sublen - 1) != NULL)))
		return;
	buf_reset(&a->name);
	buf_append_str(&a->name, a->entry);
	buf_append(&a->name, rest, sublen);
	a->fn(buf_cstr(&a->name), val->mv_data, val->mv_size, a->arg);
}

int store_annot_get(struct store *st, const char *guid, const char *folder, const char *user, const char *entry,
		    int depth, store_annot_fn *fn, void *arg, struct buf *error_r)
{
	struct annot_ctx c;
	int ret = annot_ctx_init(&c, guid, folder, user, error_r);
	if (ret == 0)
		ret = entry_check(entry, true, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0) {
		buf_free(&c.name);
		return ret;
	}
	uint32_t fid;
	ret = annot_fid(txn, st, c.guid, &c.name, &fid, error_r);
	if (ret == 0) {
		struct buf prefix = BUF_INIT;
		annot_key(&prefix, c.guid, fid, entry, "");
		prefix.len--; /* without the NUL: the entry and its descendants */
		struct get_arg a = { entry, entry_user(entry, user), depth, fn, arg, BUF_INIT };
		ret = annot_walk(txn, st, prefix.data, prefix.len, get_entry, &a, error_r);
		buf_free(&prefix);
		buf_free(&a.name);
	}
	store_rtxn_end(st, txn);
	buf_free(&c.name);
	return ret;
}

/* ---- URLAUTH mailbox access keys (RFC 4467) ----
 * In the annot table under the entry name URLAUTH_ENTRY, which IMAP cannot give (entries begin with "/"), shared
 * (user ""): dropped with the folder or the mailbox like its annotations, kept by a rename (the folder id stays). */
#define URLAUTH_ENTRY "urlauth"

struct urlauth_op {
	uint8_t guid[STORE_GUID_LEN];
	struct buf name;                    /* empty: every folder (reset) */
	uint8_t key[STORE_URLAUTH_KEY_LEN]; /* the key to put if none is there; then the one there */
};

static int op_urlauth_make(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct urlauth_op *op = ctx;
	uint32_t fid;
	int ret = folder_lookup(w->txn, w->st, op->guid, op->name.data, &fid, error_r);
	if (ret != 0)
		return ret;
	struct buf k = BUF_INIT;
	annot_key(&k, op->guid, fid, URLAUTH_ENTRY, "");
	MDB_val v;
	if (tget(w->txn, w->st->db_annot, k.data, k.len, &v, NULL) == 0 && v.mv_size == STORE_URLAUTH_KEY_LEN)
		memcpy(op->key, v.mv_data, STORE_URLAUTH_KEY_LEN); /* made meanwhile by another session */
	else
		ret = wput(w, w->st->db_annot, k.data, k.len, op->key, STORE_URLAUTH_KEY_LEN, error_r);
	buf_free(&k);
	return ret;
}

int store_urlauth_key(struct store *st, const char *guid, const char *folder, int create,
		      uint8_t key_r[STORE_URLAUTH_KEY_LEN], struct buf *error_r)
{
	struct urlauth_op op = { .name = BUF_INIT };
	int ret = store_guid_parse(guid, op.guid, error_r);
	if (ret == 0)
		ret = store_folder_name_norm(folder, &op.name, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0) {
		buf_free(&op.name);
		return ret;
	}
	uint32_t fid;
	ret = folder_lookup(txn, st, op.guid, op.name.data, &fid, error_r);
	bool folder_found = ret == 0;
	if (ret == 0) {
		struct buf k = BUF_INIT;
		MDB_val v;
		annot_key(&k, op.guid, fid, URLAUTH_ENTRY, "");
		ret = tget(txn, st->db_annot, k.data, k.len, &v, NULL);
		if (ret == 0 && v.mv_size == STORE_URLAUTH_KEY_LEN)
			memcpy(key_r, v.mv_data, STORE_URLAUTH_KEY_LEN);
		else if (ret == 0)
			ret = IX_ECORRUPT;
		buf_free(&k);
	}
	store_rtxn_end(st, txn);
	if (ret == IX_ENOTFOUND && create && folder_found) {
		if (RAND_bytes(op.key, sizeof(op.key)) != 1) {
			if (error_r != NULL)
				buf_printf(error_r, "no random numbers for a URLAUTH key");
			ret = IX_EUNAVAIL;
		} else if ((ret = store_write(st, op_urlauth_make, &op, error_r)) == 0) {
			memcpy(key_r, op.key, STORE_URLAUTH_KEY_LEN);
		}
	}
	if (ret == IX_ENOTFOUND && error_r != NULL && error_r->len == 0)
		buf_printf(error_r, "no URLAUTH key");
	OPENSSL_cleanse(op.key, sizeof(op.key));
	buf_free(&op.name);
	return ret;
}

struct urlauth_keys {
	size_t skip;     /* bytes of a key between the walk's prefix and the entry name: the folder id, or none */
	struct buf keys; /* each found: its length (size_t), then the key's bytes after the prefix */
};

/* Collects the keys of the annot table holding URLAUTH keys under the walk's prefix (a mailbox or a folder). */
static void collect_urlauth(const char *rest, size_t rlen, const MDB_val *val, void *arg)
{
	(void)val;
	struct urlauth_keys *a = arg;
	if (rlen != a->skip + sizeof(URLAUTH_ENTRY) ||
	    memcmp(rest + a->skip, URLAUTH_ENTRY, sizeof(URLAUTH_ENTRY)) != 0)
		return;
	buf_append(&a->keys, &rlen, sizeof(rlen));
	buf_append(&a->keys, rest, rlen);
}

static int op_urlauth_reset(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct urlauth_op *op = ctx;
	uint8_t prefix[KEY_FOLDER_LEN];
	struct urlauth_keys found = { KEY_FOLDER_LEN - STORE_GUID_LEN, BUF_INIT };
	size_t plen = STORE_GUID_LEN;
	memcpy(prefix, op->guid, STORE_GUID_LEN);
	if (op->name.len > 0) {
		uint32_t fid;
		int ret = folder_lookup(w->txn, w->st, op->guid, op->name.data, &fid, error_r);
		if (ret != 0)
			return ret;
		key_folder(prefix, op->guid, fid);
		plen = KEY_FOLDER_LEN;
		found.skip = 0;
	}
	struct buf k = BUF_INIT;
	int ret = annot_walk(w->txn, w->st, prefix, plen, collect_urlauth, &found, error_r);
	for (size_t at = 0; ret == 0 && at < found.keys.len;) {
		size_t rlen;
		memcpy(&rlen, found.keys.data + at, sizeof(rlen));
		at += sizeof(rlen);
		buf_reset(&k);
		buf_append(&k, prefix, plen);
		buf_append(&k, found.keys.data + at, rlen);
		at += rlen;
		ret = wdel(w, w->st->db_annot, k.data, k.len, error_r);
	}
	buf_free(&found.keys);
	buf_free(&k);
	return ret;
}

int store_urlauth_reset(struct store *st, const char *guid, const char *folder, struct buf *error_r)
{
	struct urlauth_op op = { .name = BUF_INIT };
	int ret = store_guid_parse(guid, op.guid, error_r);
	if (ret == 0 && folder != NULL)
		ret = store_folder_name_norm(folder, &op.name, error_r);
	if (ret == 0)
		ret = store_write(st, op_urlauth_reset, &op, error_r);
	buf_free(&op.name);
	return ret;
}
