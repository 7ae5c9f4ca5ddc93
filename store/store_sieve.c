/* store_sieve.c - a mailbox's Sieve scripts, kept in the store beside its folders (the meta table) so that they
 * live and die with the mailbox: named scripts, at most one of them active. */
#include "store/store_int.h"

#include <string.h>
#include <time.h>

#include <openssl/sha.h>

/* Keys in the meta table: a 6-byte prefix, the mailbox's GUID, then (scripts) the name. */
#define SCRIPT_PREFIX "sieve:"
#define ACTIVE_PREFIX "sieva:"
#define SEEN_PREFIX "sievd:" /* then a SHA-256 of the key: the time it was seen */
#define PREFIX_LEN 6
#define KEY_MAX (PREFIX_LEN + STORE_GUID_LEN + STORE_SIEVE_NAME_MAX)

static size_t sieve_key(uint8_t *k, const char *prefix, const uint8_t *guid, const char *name)
{
	memcpy(k, prefix, PREFIX_LEN);
	memcpy(k + PREFIX_LEN, guid, STORE_GUID_LEN);
	size_t n = name ? strlen(name) : 0;
	if (n)
		memcpy(k + PREFIX_LEN + STORE_GUID_LEN, name, n);
	return PREFIX_LEN + STORE_GUID_LEN + n;
}

int store_sieve_name_check(const char *name, struct buf *error_r)
{
	size_t n = strlen(name);
	int ok = n > 0 && n <= STORE_SIEVE_NAME_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		ok = c >= 0x20 && c != 0x7f && c != '/';
	}
	if (!ok && error_r != NULL)
		buf_printf(error_r, "a script name has 1 to %d characters, no control characters and no '/'",
			   STORE_SIEVE_NAME_MAX);
	return ok ? 0 : IX_EINVAL;
}

struct sieve_op {
	uint8_t guid[STORE_GUID_LEN];
	const char *name;
	const char *text;
	size_t len;
	enum { OP_PUT, OP_DELETE, OP_ACTIVATE, OP_RENAME } kind;
	const char *to;
};

static int active_is(MDB_txn *txn, struct store *st, const uint8_t *guid, const char *name, struct buf *error_r)
{
	uint8_t k[KEY_MAX];
	size_t kl = sieve_key(k, ACTIVE_PREFIX, guid, NULL);
	MDB_val v;
	int ret = tget(txn, st->db_meta, k, kl, &v, error_r);
	if (ret == IX_ENOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	return v.mv_size == strlen(name) && memcmp(v.mv_data, name, v.mv_size) == 0;
}

static int op_sieve(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct sieve_op *op = ctx;
	uint8_t k[KEY_MAX], a[KEY_MAX];
	size_t kl = sieve_key(k, SCRIPT_PREFIX, op->guid, op->name);
	size_t al = sieve_key(a, ACTIVE_PREFIX, op->guid, NULL);
	MDB_val v;
	wtx_touch(w, op->guid);
	switch (op->kind) {
	case OP_PUT: return wput(w, w->st->db_meta, k, kl, op->text, op->len, error_r);
	case OP_DELETE: {
		int act = active_is(w->txn, w->st, op->guid, op->name, error_r);
		if (act < 0)
			return act;
		if (act) {
			if (error_r != NULL)
				buf_printf(error_r, "script %s is active", op->name);
			return IX_EPERM;
		}
		int ret = wdel(w, w->st->db_meta, k, kl, error_r);
		if (ret == IX_ENOTFOUND && error_r != NULL)
			buf_printf(error_r, "no script %s", op->name);
		return ret;
	}
	case OP_ACTIVATE:
		if (op->name == NULL) {
			int ret = wdel(w, w->st->db_meta, a, al, error_r);
			return ret == IX_ENOTFOUND ? 0 : ret;
		}
		if (tget(w->txn, w->st->db_meta, k, kl, &v, error_r) != 0) {
			if (error_r != NULL)
				buf_printf(error_r, "no script %s", op->name);
			return IX_ENOTFOUND;
		}
		return wput(w, w->st->db_meta, a, al, op->name, strlen(op->name), error_r);
	case OP_RENAME: {
		uint8_t t[KEY_MAX];
		size_t tl = sieve_key(t, SCRIPT_PREFIX, op->guid, op->to);
		if (tget(w->txn, w->st->db_meta, k, kl, &v, error_r) != 0) {
			if (error_r != NULL)
				buf_printf(error_r, "no script %s", op->name);
			return IX_ENOTFOUND;
		}
		MDB_val exists;
		if (tget(w->txn, w->st->db_meta, t, tl, &exists, NULL) == 0) {
			if (error_r != NULL)
				buf_printf(error_r, "script %s exists", op->to);
			return IX_EEXIST;
		}
		struct buf copy = BUF_INIT;
		buf_append(&copy, v.mv_data, v.mv_size);
		int act = active_is(w->txn, w->st, op->guid, op->name, error_r);
		int ret = act < 0 ? act : wput(w, w->st->db_meta, t, tl, buf_cstr(&copy), copy.len, error_r);
		buf_free(&copy);
		if (ret == 0)
			ret = wdel(w, w->st->db_meta, k, kl, error_r);
		if (ret == 0 && act)
			ret = wput(w, w->st->db_meta, a, al, op->to, strlen(op->to), error_r);
		return ret;
	}
	}
	return IX_EINVAL;
}

static int sieve_write(struct store *st, const char *guid, struct sieve_op *op, struct buf *error_r)
{
	int ret = store_guid_parse(guid, op->guid, error_r);
	if (ret == 0 && op->name != NULL)
		ret = store_sieve_name_check(op->name, error_r);
	if (ret == 0 && op->to != NULL)
		ret = store_sieve_name_check(op->to, error_r);
	if (ret == 0 && op->len > STORE_SIEVE_SCRIPT_MAX) {
		if (error_r != NULL)
			buf_printf(error_r, "a script is limited to %d bytes", STORE_SIEVE_SCRIPT_MAX);
		ret = IX_ELIMIT;
	}
	return ret == 0 ? store_write(st, op_sieve, op, error_r) : ret;
}

int store_sieve_put(struct store *st, const char *guid, const char *name, const char *text, size_t len,
		    struct buf *error_r)
{
	struct sieve_op op = { .name = name, .text = text, .len = len, .kind = OP_PUT };
	return sieve_write(st, guid, &op, error_r);
}

int store_sieve_delete(struct store *st, const char *guid, const char *name, struct buf *error_r)
{
	struct sieve_op op = { .name = name, .kind = OP_DELETE };
	return sieve_write(st, guid, &op, error_r);
}

int store_sieve_activate(struct store *st, const char *guid, const char *name, struct buf *error_r)
{
	struct sieve_op op = { .name = name, .kind = OP_ACTIVATE };
	return sieve_write(st, guid, &op, error_r);
}

int store_sieve_rename(struct store *st, const char *guid, const char *from, const char *to, struct buf *error_r)
{
	struct sieve_op op = { .name = from, .to = to, .kind = OP_RENAME };
	return sieve_write(st, guid, &op, error_r);
}

/* One read transaction: the text of script name into text_r (IX_ENOTFOUND when none), or the names into names_r
 * and the active name into active_r (either may be NULL). */
static int sieve_read(struct store *st, const char *guid, const char *name, struct buf *text_r, struct buf *names_r,
		      struct buf *active_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN], k[KEY_MAX];
	MDB_txn *txn;
	int ret = store_rtxn_guid(st, guid, g, &txn, error_r);
	if (ret != 0)
		return ret;
	size_t kl = sieve_key(k, SCRIPT_PREFIX, g, name);
	MDB_val v;
	if (name != NULL) {
		ret = tget(txn, st->db_meta, k, kl, &v, error_r);
		if (ret == 0)
			buf_append(text_r, v.mv_data, v.mv_size);
	}
	MDB_cursor *cur;
	if (names_r != NULL && mdb_cursor_open(txn, st->db_meta, &cur) == 0) {
		MDB_val key = { kl, k };
		int rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
		while (rc == 0 && key.mv_size > kl && memcmp(key.mv_data, k, kl) == 0) {
			buf_append(names_r, (const char *)key.mv_data + kl, key.mv_size - kl);
			buf_append_char(names_r, '\n');
			rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	if (active_r != NULL) {
		size_t al = sieve_key(k, ACTIVE_PREFIX, g, NULL);
		if (tget(txn, st->db_meta, k, al, &v, NULL) == 0)
			buf_append(active_r, v.mv_data, v.mv_size);
	}
	store_rtxn_end(st, txn);
	return ret;
}

int store_sieve_get(struct store *st, const char *guid, const char *name, struct buf *text_r, struct buf *error_r)
{
	int ret = store_sieve_name_check(name, error_r);
	return ret != 0 ? ret : sieve_read(st, guid, name, text_r, NULL, NULL, error_r);
}

int store_sieve_list(struct store *st, const char *guid, struct buf *names_r, struct buf *active_r, struct buf *error_r)
{
	return sieve_read(st, guid, NULL, NULL, names_r, active_r, error_r);
}

int store_sieve_active(struct store *st, const char *guid, struct buf *name_r, struct buf *text_r, struct buf *error_r)
{
	struct buf name = BUF_INIT;
	int ret = store_sieve_list(st, guid, NULL, &name, error_r);
	if (ret == 0 && name.len == 0)
		ret = IX_ENOTFOUND;
	if (ret == 0)
		ret = store_sieve_get(st, guid, buf_cstr(&name), text_r, error_r);
	if (ret == 0 && name_r != NULL)
		buf_append(name_r, buf_cstr(&name), name.len);
	buf_free(&name);
	return ret;
}

int mbox_sieve_drop(struct wtx *w, const uint8_t *guid, struct buf *error_r)
{
	static const char *const prefixes[] = { SCRIPT_PREFIX, SEEN_PREFIX };
	for (size_t i = 0; i < IX_ARRAY_LEN(prefixes); i++) {
		uint8_t k[KEY_MAX];
		size_t kl = sieve_key(k, prefixes[i], guid, NULL);
		MDB_cursor *cur;
		int rc = mdb_cursor_open(w->txn, w->st->db_meta, &cur);
		if (rc != 0)
			return store_mdb_error(rc, "deleting the scripts", error_r);
		for (;;) {
			MDB_val key = { kl, k }, val;
			rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
			if (rc != 0 || key.mv_size < kl || memcmp(key.mv_data, k, kl) != 0)
				break;
			rc = mdb_cursor_del(cur, 0);
			if (rc != 0)
				break;
		}
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_mdb_error(rc, "deleting the scripts", error_r);
	}
	uint8_t k[KEY_MAX];
	size_t al = sieve_key(k, ACTIVE_PREFIX, guid, NULL);
	int ret = wdel(w, w->st->db_meta, k, al, error_r);
	return ret == IX_ENOTFOUND ? 0 : ret;
}

struct seen_op {
	uint8_t guid[STORE_GUID_LEN];
	uint8_t hash[32];
	long long seconds, now;
	int just_check, seen;
};

static int op_seen(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct seen_op *op = ctx;
	uint8_t k[PREFIX_LEN + STORE_GUID_LEN + 32];
	memcpy(k, SEEN_PREFIX, PREFIX_LEN);
	memcpy(k + PREFIX_LEN, op->guid, STORE_GUID_LEN);
	memcpy(k + PREFIX_LEN + STORE_GUID_LEN, op->hash, 32);
	MDB_val v;
	if (tget(w->txn, w->st->db_meta, k, sizeof(k), &v, NULL) == 0 && v.mv_size == 8) {
		long long when = (long long)get_be64(v.mv_data);
		if (op->now - when < op->seconds) {
			op->seen = 1;
			return 0;
		}
	}
	if (op->just_check)
		return 0;
	uint8_t val[8];
	put_be64(val, (uint64_t)op->now);
	return wput(w, w->st->db_meta, k, sizeof(k), val, sizeof(val), error_r);
}

int store_sieve_seen(struct store *st, const char *guid, const void *key, size_t len, long long seconds, int just_check,
		     struct buf *error_r)
{
	struct seen_op op = { .seconds = seconds, .now = (long long)time(NULL), .just_check = just_check };
	int ret = store_guid_parse(guid, op.guid, error_r);
	if (ret != 0)
		return ret;
	SHA256(key, len, op.hash);
	ret = store_write(st, op_seen, &op, error_r);
	return ret != 0 ? ret : op.seen;
}
