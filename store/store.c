/* store.c - the store's environment: open/close, the growable map, group commit of write operations, LMDB error
 * translation and the small key, GUID and folder-name helpers every other store file uses. */
#include "store/store_int.h"
#include "common/util.h"
#include "common/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

void store_settings_default(struct store_settings *s_r)
{
	memset(s_r, 0, sizeof(*s_r));
	s_r->map_size = 64ULL << 20;
	s_r->map_size_max = 1ULL << 40;
	s_r->max_message_size = 64u << 20;
	s_r->quota_warn_percent = 90;
}

/* ---- integers and keys ---- */

void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

void key_folder(uint8_t *k, const uint8_t *guid, uint32_t fid)
{
	memcpy(k, guid, STORE_GUID_LEN);
	put_be32(k + 16, fid);
}

void key_msg(uint8_t *k, const uint8_t *guid, uint32_t fid, uint32_t uid)
{
	key_folder(k, guid, fid);
	put_be32(k + 20, uid);
}

void key_body(uint8_t *k, uint64_t id)
{
	put_be64(k, id);
}

uint32_t msg_uid(const struct msg_rec *m)
{
	return get_be32(m->uid_be);
}

void chg_make(struct chg_rec *c, uint64_t modseq, uint32_t uid, int expunged)
{
	put_be64(c->modseq_be, modseq);
	put_be32(c->uid_be, uid);
	c->expunged = (uint32_t)expunged;
}

/* ---- GUIDs and names ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int store_guid_parse(const char *s, uint8_t *guid_r, struct buf *error_r)
{
	size_t n = 0;
	if (s == NULL)
		goto bad;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '-')
			continue;
		int v = hexval(*p);
		if (v < 0 || n >= STORE_GUID_HEX_LEN)
			goto bad;
		if (n % 2 == 0)
			guid_r[n / 2] = (uint8_t)(v << 4);
		else
			guid_r[n / 2] |= (uint8_t)v;
		n++;
	}
	if (n == STORE_GUID_HEX_LEN)
		return 0;
bad:
	if (error_r != NULL)
		buf_printf(error_r, "mailbox GUID \"%.40s\" is not 32 hex digits", s != NULL ? s : "(null)");
	return IX_EINVAL;
}

void store_guid_format(const uint8_t *guid, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < STORE_GUID_LEN; i++) {
		out[2 * i] = hex[guid[i] >> 4];
		out[2 * i + 1] = hex[guid[i] & 15];
	}
	out[STORE_GUID_HEX_LEN] = '\0';
}

int store_guid_is_public(const uint8_t *guid)
{
	for (size_t i = 0; i < STORE_GUID_LEN; i++)
		if (guid[i] != 0)
			return 0;
	return 1;
}

int store_folder_name_norm(const char *name, struct buf *out, struct buf *error_r)
{
	buf_reset(out);
	if (name == NULL)
		name = "INBOX";
	size_t len = strlen(name);
	const char *why = NULL;
	if (len == 0)
		why = "is empty";
	else if (len > STORE_FOLDER_NAME_MAX)
		why = "is too long";
	else if (name[0] == STORE_SEP || name[len - 1] == STORE_SEP)
		why = "starts or ends with the hierarchy separator";
	size_t part = 0, depth = 1;
	for (size_t i = 0; why == NULL && i < len;) {
		unsigned char c = (unsigned char)name[i];
		if (c == STORE_SEP) {
			if (part == 0) {
				why = "has an empty level (two separators in a row)";
				break;
			}
			if (++depth > STORE_FOLDER_DEPTH_MAX) {
				why = "is nested too deeply";
				break;
			}
			part = 0;
			i++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			why = "contains a control character";
			break;
		}
		if (c == '*' || c == '%') {
			why = "contains a wildcard character (* or %)";
			break;
		}
		size_t n = utf8_decode(name + i, len - i, NULL);
		if (n == 0) {
			why = "is not valid UTF-8";
			break;
		}
		part += n;
		if (part > STORE_FOLDER_PART_MAX) {
			why = "has a level that is too long";
			break;
		}
		i += n;
	}
	if (why != NULL) {
		if (error_r != NULL)
			buf_printf(error_r, "folder name %s", why);
		return IX_EINVAL;
	}
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == STORE_SEP)) {
		buf_append_str(out, "INBOX");
		buf_append_str(out, name + 5);
	} else {
		buf_append_str(out, name);
	}
	return 0;
}

/* ---- errors ---- */

int store_mdb_error(int rc, const char *what, struct buf *error_r)
{
	int code;
	const char *reason;
	switch (rc) {
	case MDB_NOTFOUND:
		code = IX_ENOTFOUND;
		reason = "not found";
		break;
	case MDB_MAP_FULL:
		code = IX_EAGAIN;
		reason =
			"the store's map is full and cannot grow further (temporary; raise the map limit or free space)";
		break;
	case ENOSPC:
		code = IX_EAGAIN;
		reason = "disk full: no space left on the store's file system (temporary; nothing stored was lost)";
		break;
	case EDQUOT:
		code = IX_EAGAIN;
		reason = "the disk quota of the store's file system is exhausted (temporary)";
		break;
	case MDB_TXN_FULL:
	case MDB_BAD_VALSIZE:
		code = IX_ELIMIT;
		reason = mdb_strerror(rc);
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		code = IX_ECORRUPT;
		reason = mdb_strerror(rc);
		break;
	case MDB_PANIC:
		code = IX_EUNAVAIL;
		reason = "the store hit an unrecoverable I/O error earlier; this process must restart to use it again";
		break;
	case MDB_READERS_FULL:
		code = IX_EAGAIN;
		reason = "too many concurrent readers (temporary)";
		break;
	default:
		code = IX_EIO;
		reason = mdb_strerror(rc);
		break;
	}
	if (error_r != NULL)
		buf_printf(error_r, "%s: %s", what, reason);
	return code;
}

/* LMDB reports a short write of its pages as EIO (mdb_page_flush): on a file system with no space left that is a
 * full disk, and says so. The one place a write's failure is told apart from an I/O error. */
static int write_rc(const struct store *st, int rc)
{
	struct statvfs vfs;
	if (rc == EIO && statvfs(st->path, &vfs) == 0 &&
	    (unsigned long long)vfs.f_bavail * vfs.f_frsize < STORE_DISK_FULL_BYTES)
		return ENOSPC;
	return rc;
}

int wput(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen, struct buf *error_r)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
	int rc = mdb_put(w->txn, dbi, &k, &v, 0);
	if (rc == 0)
		return 0;
	if (rc == MDB_MAP_FULL)
		w->map_full = 1;
	return store_mdb_error(rc, "writing to the store", error_r);
}

int wdel(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, struct buf *error_r)
{
	MDB_val k = { klen, (void *)key };
	int rc = mdb_del(w->txn, dbi, &k, NULL);
	if (rc == 0)
		return 0;
	if (rc == MDB_MAP_FULL)
		w->map_full = 1;
	if (rc == MDB_NOTFOUND)
		return IX_ENOTFOUND;
	return store_mdb_error(rc, "deleting from the store", error_r);
}

int wput_dup(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen, int append,
	     struct buf *error_r)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
	int rc = mdb_put(w->txn, dbi, &k, &v, append ? MDB_APPENDDUP : 0);
	if (rc == MDB_KEYEXIST && append) /* not the last after all (only after damage): an ordinary insert */
		rc = mdb_put(w->txn, dbi, &k, &v, 0);
	if (rc == 0)
		return 0;
	if (rc == MDB_MAP_FULL)
		w->map_full = 1;
	return store_mdb_error(rc, "writing to the store", error_r);
}

int wdel_dup(struct wtx *w, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen,
	     struct buf *error_r)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
	int rc = mdb_del(w->txn, dbi, &k, &v);
	if (rc == 0)
		return 0;
	if (rc == MDB_MAP_FULL)
		w->map_full = 1;
	if (rc == MDB_NOTFOUND)
		return IX_ENOTFOUND;
	return store_mdb_error(rc, "deleting from the store", error_r);
}

int tget(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, MDB_val *val_r, struct buf *error_r)
{
	MDB_val k = { klen, (void *)key };
	int rc = mdb_get(txn, dbi, &k, val_r);
	if (rc == 0)
		return 0;
	if (rc == MDB_NOTFOUND)
		return IX_ENOTFOUND;
	return store_mdb_error(rc, "reading the store", error_r);
}

void wtx_touch(struct wtx *w, const uint8_t *guid)
{
	for (size_t i = 0; i < w->ntouched; i++)
		if (memcmp(w->touched[i], guid, STORE_GUID_LEN) == 0)
			return;
	if (w->ntouched == w->touched_cap) {
		w->touched_cap = w->touched_cap ? w->touched_cap * 2 : 4;
		w->touched = xrealloc(w->touched, w->touched_cap * STORE_GUID_LEN);
	}
	memcpy(w->touched[w->ntouched++], guid, STORE_GUID_LEN);
}

/* ---- the map ---- */

/* Called with map_lock held exclusively: adopts a size grown by another process (new_size 0) or grows ours. */
static int map_resize(struct store *st, uint64_t new_size)
{
	int rc = mdb_env_set_mapsize(st->env, (size_t)new_size);
	if (rc == 0) {
		MDB_envinfo info;
		mdb_env_info(st->env, &info);
		st->map_size = info.me_mapsize;
	}
	return rc;
}

static void map_adopt(struct store *st)
{
	pthread_rwlock_wrlock(&st->map_lock);
	map_resize(st, 0);
	pthread_rwlock_unlock(&st->map_lock);
}

/* Grows the map (doubling, capped at map_size_max). Returns 0, or -1 when it is at its maximum already. */
static int map_grow(struct store *st)
{
	int ret = -1;
	pthread_rwlock_wrlock(&st->map_lock);
	MDB_envinfo info;
	mdb_env_info(st->env, &info);
	uint64_t cur = info.me_mapsize;
	if (cur < st->set.map_size_max) {
		uint64_t next = cur * 2;
		if (next > st->set.map_size_max)
			next = st->set.map_size_max;
		if (map_resize(st, next) == 0) {
			ret = 0;
		}
	}
	pthread_rwlock_unlock(&st->map_lock);
	return ret;
}

static int txn_begin(struct store *st, unsigned flags, MDB_txn **txn_r, struct buf *error_r)
{
	for (int tries = 0;; tries++) {
		pthread_rwlock_rdlock(&st->map_lock);
		int rc = mdb_txn_begin(st->env, NULL, flags, txn_r);
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&st->map_lock);
		if (rc == MDB_MAP_RESIZED && tries < 5) {
			map_adopt(st);
			continue;
		}
		return store_mdb_error(rc, "starting a transaction", error_r);
	}
}

int store_rtxn_guid(struct store *st, const char *guid, uint8_t *guid_r, MDB_txn **txn_r, struct buf *error_r)
{
	int ret = store_guid_parse(guid, guid_r, error_r);
	return ret != 0 ? ret : store_rtxn_begin(st, txn_r, error_r);
}

int store_rtxn_begin(struct store *st, MDB_txn **txn_r, struct buf *error_r)
{
	return txn_begin(st, MDB_RDONLY, txn_r, error_r);
}

void store_rtxn_end(struct store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->map_lock);
}

/* ---- group commit ---- */

static const char META_NUDGE[] = "nudge";

/* Pages a transaction frees become reusable only once a later transaction has committed (LMDB keeps the newest
 * snapshot whole). On a full disk no batch commits, so the space a purge or an expunge freed would stay out of
 * reach until some small write got through. This is that small write: one meta value, a few pages, which usually
 * fit where the failed batch's pages were already written. Returns 0 when it committed. */
static int nudge(struct store *st)
{
	MDB_txn *txn;
	if (txn_begin(st, 0, &txn, NULL) != 0)
		return -1;
	uint64_t n = (uint64_t)mdb_txn_id(txn);
	MDB_val k = { sizeof(META_NUDGE) - 1, (void *)META_NUDGE }, v = { sizeof(n), &n };
	int rc = mdb_put(txn, st->db_meta, &k, &v, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->map_lock);
	return rc;
}

static void op_reset(struct store_op *op)
{
	buf_reset(&op->error);
	op->w.ntouched = 0;
	op->w.map_full = 0;
	op->w.frozen_ok = 0;
	op->result = 0;
}

/* Runs a batch of operations in one transaction, then commits: LMDB writes the data pages, syncs them, then writes
 * the meta page without syncing it (MDB_NOMETASYNC); the batch is durable after the next sync (see store_write).
 * A failing operation must leave no trace and not disturb the others. Operations rarely fail, so the batch first runs
 * them straight in the transaction; if one fails, the transaction is dropped and the batch runs again "carefully",
 * each operation in a nested transaction (LMDB's nested transactions cost a few MB of allocation each, which was a
 * large part of an append's CPU). Retries the whole batch on a grown map. Returns 1 if a transaction was written
 * (its commit synced everything written before it), else 0. */
static int run_batch(struct store *st, struct store_op *batch)
{
	int written = 0, careful = 0, nudged = 0;
	struct buf err = BUF_INIT;
	MDB_txn *txn;
	int rc;
retry:
	buf_reset(&err);
	rc = txn_begin(st, 0, &txn, &err);
	if (rc != 0) {
		for (struct store_op *op = batch; op != NULL; op = op->next) {
			op_reset(op);
			op->result = rc;
			buf_append(&op->error, err.data, err.len);
		}
		buf_free(&err);
		return 0;
	}
	int map_full = 0, failed = 0;
	size_t txnid = mdb_txn_id(txn);
	for (struct store_op *op = batch; op != NULL && !map_full && !failed; op = op->next) {
		op_reset(op);
		MDB_txn *child = txn;
		if (careful && (rc = mdb_txn_begin(st->env, txn, 0, &child)) != 0) {
			op->result = store_mdb_error(rc, "starting a nested transaction", &op->error);
			map_full = rc == MDB_MAP_FULL;
			continue;
		}
		op->w.st = st;
		op->w.txn = child;
		op->result = op->run(&op->w, op->ctx, &op->error);
		if (op->result == 0 && !op->w.map_full)
			op->result = wtx_frozen_check(&op->w, &op->error);
		if (op->w.map_full) {
			if (careful)
				mdb_txn_abort(child);
			map_full = 1;
		} else if (op->result != 0) {
			if (careful)
				mdb_txn_abort(child);
			else
				failed = 1; /* its changes are mixed with the others': start again, carefully */
		} else if (careful) {
			rc = mdb_txn_commit(child);
			if (rc != 0) {
				map_full = rc == MDB_MAP_FULL;
				op->result = store_mdb_error(rc, "committing", &op->error);
			}
		}
	}
	if (failed) {
		mdb_txn_abort(txn);
		pthread_rwlock_unlock(&st->map_lock);
		if (batch->next == NULL) { /* the only operation: nothing else to keep, its result stands */
			buf_free(&err);
			return 0;
		}
		careful = 1;
		goto retry;
	}
	if (!map_full) {
		rc = write_rc(st, mdb_txn_commit(txn));
		if (rc == ENOSPC && !nudged) {
			/* the disk is full: space freed by the last commit becomes usable after one more; then again, once */
			pthread_rwlock_unlock(&st->map_lock);
			nudged = 1;
			if (nudge(st) == 0)
				goto retry;
			pthread_rwlock_rdlock(&st->map_lock); /* as the failure path below expects */
		}
		if (rc == MDB_MAP_FULL) {
			map_full = 1;
		} else if (rc != 0) {
			buf_reset(&err);
			int code = store_mdb_error(rc, "committing to the store", &err);
			for (struct store_op *op = batch; op != NULL; op = op->next) {
				if (op->result == 0) {
					op->result = code;
					buf_append(&op->error, err.data, err.len);
				}
				op->w.ntouched = 0;
			}
		} else {
			MDB_envinfo info;
			mdb_env_info(st->env, &info);
			written = info.me_last_txnid >= txnid; /* 0 when the transaction changed nothing */
			if (written)
				__atomic_add_fetch(&st->commits, 1, __ATOMIC_RELAXED);
		}
	} else {
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&st->map_lock);
	if (map_full) {
		if (map_grow(st) == 0)
			goto retry;
		/* the map is at its maximum: every operation of the batch fails, temporarily */
		buf_reset(&err);
		int code = store_mdb_error(MDB_MAP_FULL, "writing to the store", &err);
		for (struct store_op *op = batch; op != NULL; op = op->next) {
			op_reset(op);
			op->result = code;
			buf_append(&op->error, err.data, err.len);
		}
		buf_free(&err);
		return 0;
	}
	buf_free(&err);
	return written;
}

/* Tells watchers about a durable batch. Runs without st->lock: until they are marked done, the batch's operations
 * are only touched by the leader. */
static void batch_notify(struct store *st, const struct store_op *batch)
{
	for (const struct store_op *op = batch; op != NULL; op = op->next)
		if (op->result == 0)
			for (size_t i = 0; i < op->w.ntouched; i++)
				store_notify_touch(st, op->w.touched[i]);
}

/* Called with st->lock held once a batch is durable (or failed): wakes its callers, and only them. */
static void batch_wake(struct store_op *batch)
{
	for (struct store_op *op = batch; op != NULL;) {
		struct store_op *next = op->next;
		op->done = 1; /* op may be freed by its caller once st->lock is released */
		pthread_cond_signal(op->wake);
		op = next;
	}
}

/* Makes the pending batch durable with one sync and completes it (st->lock held; released during the sync). */
static void sync_pending(struct store *st)
{
	struct store_op *batch = st->pending;
	st->pending = NULL;
	pthread_mutex_unlock(&st->lock);
	int rc = st->set.no_sync ? 0 : write_rc(st, mdb_env_sync(st->env, 1));
	if (rc != 0) {
		struct buf err = BUF_INIT;
		int code = store_mdb_error(rc, "syncing the store to disk", &err);
		for (struct store_op *op = batch; op != NULL; op = op->next) {
			if (op->result == 0) {
				op->result = code;
				buf_append(&op->error, err.data, err.len);
			}
		}
		buf_free(&err);
	}
	batch_notify(st, batch);
	pthread_mutex_lock(&st->lock);
	batch_wake(batch);
}

/* 1 when each of the n operations is done (st->lock held). */
static int ops_done(const struct store_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!ops[i].done)
			return 0;
	return 1;
}

/* Group commit. Callers queue their operation; one of them becomes the leader and runs everything queued as one
 * transaction (a batch). A committed batch becomes "pending": its meta page is written but not yet synced. The
 * next batch's commit syncs its own data and with it the pending batch's meta page, so the pending batch is then
 * durable and its callers are woken; with nothing more queued, one explicit sync does it. Steady state: one sync
 * per batch, and a new batch is built while the previous one waits for its sync. The leader leads until its own
 * operations are done, then hands over to one waiter whose operation is still queued or pending. Every caller sleeps
 * on its own condition variable and is woken only when one of its operations is done or it is handed the lead:
 * waking all 64 callers of a benchmark for every batch cost more CPU than the batch itself. A caller's several
 * operations are queued together, so that they go in the same batch (up to STORE_BATCH_MAX). */
void store_write_ops(struct store *st, struct store_op *ops, size_t n)
{
	pthread_cond_t wake;
	pthread_cond_init(&wake, NULL);
	for (size_t i = 0; i < n; i++) {
		ops[i].result = 0;
		ops[i].done = 0;
		buf_init(&ops[i].error);
		memset(&ops[i].w, 0, sizeof(ops[i].w));
		ops[i].wake = &wake; /* cppcheck-suppress autoVariables */
		ops[i].next = i + 1 < n ? &ops[i + 1] : NULL;
	}

	pthread_mutex_lock(&st->lock);
	/* the ops live with the caller until they are done: they leave the queue (and pending) before we return */
	if (n > 0) {
		if (st->queue_tail != NULL)
			st->queue_tail->next = &ops[0];
		else
			st->queue_head = &ops[0];
		st->queue_tail = &ops[n - 1];
	}
	while (!ops_done(ops, n)) {
		if (st->leader) {
			pthread_cond_wait(&wake, &st->lock);
			continue;
		}
		st->leader = 1;
		while (!ops_done(ops, n)) {
			if (st->queue_head == NULL || st->set.no_group_commit) {
				if (st->pending != NULL) {
					sync_pending(st);
					continue;
				}
				if (st->queue_head == NULL)
					break; /* cannot happen: our operations are queued, pending or done */
			}
			struct store_op *batch = st->queue_head, *last = batch;
			size_t nb = 1;
			size_t max = st->set.no_group_commit ? 1 : STORE_BATCH_MAX;
			while (last->next != NULL && nb < max) {
				last = last->next;
				nb++;
			}
			st->queue_head = last->next;
			if (st->queue_head == NULL)
				st->queue_tail = NULL;
			last->next = NULL;
			/* only the leader changes st->pending: it may read it unlocked */
			struct store_op *durable = st->pending;
			pthread_mutex_unlock(&st->lock);
			int written = run_batch(st, batch);
			if (!written) {
				batch_notify(st, batch); /* nothing written: nothing to wait for */
				durable = NULL;
			} else if (durable != NULL) {
				batch_notify(st, durable); /* this commit synced after its meta page was written */
			}
			pthread_mutex_lock(&st->lock);
			st->ops += nb;
			if (!written) {
				batch_wake(batch);
			} else {
				if (durable != NULL)
					batch_wake(durable);
				st->pending = batch;
			}
		}
		st->leader = 0;
		struct store_op *next = st->queue_head != NULL ? st->queue_head : st->pending;
		if (next != NULL)
			pthread_cond_signal(next->wake);
		pthread_cond_broadcast(&st->cond); /* store_free waits for the store to go idle */
	}
	pthread_mutex_unlock(&st->lock);
	pthread_cond_destroy(&wake);
	for (size_t i = 0; i < n; i++) {
		free(ops[i].w.touched);
		ops[i].w.touched = NULL;
	}
}

int store_write(struct store *st, store_op_fn *fn, void *ctx, struct buf *error_r)
{
	struct store_op op = { .run = fn, .ctx = ctx };
	store_write_ops(st, &op, 1);
	if (op.result != 0 && error_r != NULL)
		buf_append(error_r, op.error.data, op.error.len);
	buf_free(&op.error);
	return op.result;
}

/* ---- open and close ---- */

/* Opens (creating) every table and checks the format version in txn, then commits or aborts it. */
static int open_dbs_in(struct store *st, MDB_txn *txn, struct buf *error_r)
{
	static const struct {
		const char *name;
		size_t off;
		unsigned flags;
	} dbs[] = {
		{ "mbox", offsetof(struct store, db_mbox), 0 },
		{ "folder", offsetof(struct store, db_folder), 0 },
		{ "fname", offsetof(struct store, db_fname), 0 },
		{ "msg", offsetof(struct store, db_msg), MDB_DUPSORT | MDB_DUPFIXED },
		{ "kw", offsetof(struct store, db_kw), 0 },
		{ "chg", offsetof(struct store, db_chg), MDB_DUPSORT | MDB_DUPFIXED },
		{ "bref", offsetof(struct store, db_bref), 0 },
		{ "bhash", offsetof(struct store, db_bhash), 0 },
		{ "body", offsetof(struct store, db_body), 0 },
		{ "cache", offsetof(struct store, db_cache), 0 },
		{ "retain", offsetof(struct store, db_retain), 0 },
		{ "acl", offsetof(struct store, db_acl), 0 },
		{ "pseen", offsetof(struct store, db_pseen), 0 },
		{ "meta", offsetof(struct store, db_meta), 0 },
		{ "sub", offsetof(struct store, db_sub), 0 },
		{ "sdate", offsetof(struct store, db_sdate), 0 },
		{ "annot", offsetof(struct store, db_annot), 0 },
	};
	/* the version first: an older store has other tables (and flags) that must not be created or opened */
	int rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->db_meta);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return store_mdb_error(rc, "opening the store's databases", error_r);
	}
	MDB_val k = { 7, (void *)"version" }, v;
	rc = mdb_get(txn, st->db_meta, &k, &v);
	if (rc == 0) {
		uint32_t ver = 0;
		if (v.mv_size == sizeof(ver))
			memcpy(&ver, v.mv_data, sizeof(ver));
		if (ver != STORE_DB_VERSION) {
			mdb_txn_abort(txn);
			if (error_r != NULL)
				buf_printf(
					error_r,
					"the store in %s has format version %u; this program reads and writes only version "
					"%u (there is no conversion: move the old store away or recreate it)",
					st->path, ver, STORE_DB_VERSION);
			return IX_ECORRUPT;
		}
	} else if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return store_mdb_error(rc, "initializing the store", error_r);
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(dbs); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)st + dbs[i].off);
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE | dbs[i].flags, dbi);
		if (rc != 0) {
			mdb_txn_abort(txn);
			return store_mdb_error(rc, "opening the store's databases", error_r);
		}
	}
	rc = mdb_get(txn, st->db_meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		uint32_t ver = STORE_DB_VERSION;
		v.mv_size = sizeof(ver);
		v.mv_data = &ver;
		rc = mdb_put(txn, st->db_meta, &k, &v, 0);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return store_mdb_error(rc, "initializing the store", error_r);
	}
	int ret = store_subs_convert(txn, st, error_r);
	if (ret != 0) {
		mdb_txn_abort(txn);
		return ret;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		return store_mdb_error(rc, "initializing the store", error_r);
	return 0;
}

/* The open's transaction begins like every other (txn_begin: a map grown by another process meanwhile is adopted). */
static int open_dbs(struct store *st, struct buf *error_r)
{
	MDB_txn *txn;
	int rc = txn_begin(st, 0, &txn, error_r);
	if (rc != 0)
		return rc;
	rc = open_dbs_in(st, txn, error_r);
	pthread_rwlock_unlock(&st->map_lock);
	return rc;
}

/* The stores open in this process: LMDB must not open one environment twice in a process, so a second
 * store_open of the same folder shares the first handle (counted). Entries inherited through fork() are ignored. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *open_list;

static struct store *open_find(const char *real)
{
	for (struct store *st = open_list; st != NULL; st = st->open_next)
		if (st->open_pid == getpid() && strcmp(st->real_path, real) == 0)
			return st;
	return NULL;
}

static int store_open_new(const char *path, const struct store_settings *settings, struct store **store_r,
			  struct buf *error_r);

int store_open(const char *path, const struct store_settings *settings, struct store **store_r, struct buf *error_r)
{
	*store_r = NULL;
	if (mkdir_p(path, 0700) < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot create the store folder %s: %s", path, strerror(errno));
		return IX_EIO;
	}
	char *real = realpath(path, NULL);
	if (real == NULL) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot resolve the store folder %s: %s", path, strerror(errno));
		return IX_EIO;
	}
	pthread_mutex_lock(&open_lock);
	struct store *st = open_find(real);
	int ret = 0;
	if (st != NULL) {
		st->open_refs++;
		free(real);
	} else {
		ret = store_open_new(path, settings, &st, error_r);
		if (ret == 0) {
			st->real_path = real;
			st->open_pid = getpid();
			st->open_refs = 1;
			st->open_next = open_list;
			open_list = st;
		} else {
			free(real);
		}
	}
	pthread_mutex_unlock(&open_lock);
	if (ret == 0)
		*store_r = st;
	return ret;
}

static void store_free(struct store *st);

void store_close(struct store **store)
{
	struct store *st = *store;
	if (st == NULL)
		return;
	*store = NULL;
	pthread_mutex_lock(&open_lock);
	if (--st->open_refs > 0) {
		pthread_mutex_unlock(&open_lock);
		return;
	}
	for (struct store **p = &open_list; *p != NULL; p = &(*p)->open_next) {
		if (*p == st) {
			*p = st->open_next;
			break;
		}
	}
	pthread_mutex_unlock(&open_lock);
	store_free(st);
}

static int store_open_new(const char *path, const struct store_settings *settings, struct store **store_r,
			  struct buf *error_r)
{
	struct store *st = xcalloc(1, sizeof(*st));
	if (settings != NULL)
		st->set = *settings;
	else
		store_settings_default(&st->set);
	if (st->set.map_size < (1u << 20))
		st->set.map_size = 1u << 20;
	if (st->set.map_size_max < st->set.map_size)
		st->set.map_size_max = st->set.map_size;
	st->path = xstrdup(path);
	st->notify_dir = xasprintf("%s/notify", path);
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	pthread_mutex_init(&st->watch_lock, NULL);
	st->notify_fd = -1;
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->map_lock, &attr);
	pthread_rwlockattr_destroy(&attr);

	int ret;
	if (mkdir_p(path, 0700) < 0 || mkdir_p(st->notify_dir, 0700) < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot create the store folder %s: %s", path, strerror(errno));
		ret = IX_EIO;
		goto fail;
	}
	int rc = mdb_env_create(&st->env);
	if (rc != 0) {
		ret = store_mdb_error(rc, "creating the store environment", error_r);
		goto fail;
	}
	mdb_env_set_maxdbs(st->env, 24);
	mdb_env_set_maxreaders(st->env, STORE_MAXREADERS);
	/* a file already larger than the configured size keeps its size (LMDB adopts it) */
	mdb_env_set_mapsize(st->env, (size_t)st->set.map_size);
	unsigned flags = MDB_NOTLS | MDB_NOMETASYNC | (st->set.no_sync ? MDB_NOSYNC : 0);
	rc = mdb_env_open(st->env, path, flags, 0600);
	if (rc != 0) {
		ret = store_mdb_error(rc, "opening the store", error_r);
		if (error_r != NULL)
			buf_printf(error_r, " (%s)", path);
		goto fail;
	}
	int dead;
	mdb_reader_check(st->env, &dead);
	MDB_envinfo info;
	mdb_env_info(st->env, &info);
	st->map_size = info.me_mapsize;
	ret = open_dbs(st, error_r);
	if (ret != 0)
		goto fail;
	*store_r = st;
	return 0;
fail:
	store_free(st);
	return ret;
}

static void store_free(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	while (st->leader || st->queue_head != NULL || st->pending != NULL)
		pthread_cond_wait(&st->cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
	if (st->env != NULL)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->map_lock);
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	store_notify_close(st);
	pthread_mutex_destroy(&st->watch_lock);
	free(st->notify_dir);
	free(st->path);
	free(st->real_path);
	free(st);
}

void store_get_stats(struct store *st, struct store_stats *stats_r)
{
	memset(stats_r, 0, sizeof(*stats_r));
	pthread_mutex_lock(&st->lock);
	stats_r->ops = st->ops;
	pthread_mutex_unlock(&st->lock);
	stats_r->commits = __atomic_load_n(&st->commits, __ATOMIC_RELAXED);
	MDB_envinfo info;
	MDB_stat stat;
	pthread_rwlock_rdlock(&st->map_lock); /* the meta pages are read through the map */
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &stat);
	pthread_rwlock_unlock(&st->map_lock);
	stats_r->map_size = info.me_mapsize;
	stats_r->map_used = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
}
