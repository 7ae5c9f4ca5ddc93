/* store_move.c - the store's side of moving a mailbox to another server: the frozen mark that makes a mailbox
 * refuse changes (deliveries are retried and follow the new home) while its last changes are copied away, and the
 * marks that say a move's outcome (store_mailbox_mark). */
#include "store/store_int.h"

#include <string.h>

/* The keys in the meta table: a 6-byte prefix, then the mailbox's GUID. */
#define MARK_PREFIX_LEN 6
#define MARK_KEY_LEN (MARK_PREFIX_LEN + STORE_GUID_LEN)
#define FROZEN_PREFIX "frozen"
#define FROZEN_NOTE_MAX 256
static const char *const mark_prefix[] = { [STORE_MARK_MOVED] = "moved.", [STORE_MARK_INCOMPLETE] = "import" };

static void mark_key(uint8_t *k, const char *prefix, const uint8_t *guid)
{
	memcpy(k, prefix, MARK_PREFIX_LEN);
	memcpy(k + MARK_PREFIX_LEN, guid, STORE_GUID_LEN);
}

static void frozen_key(uint8_t *k, const uint8_t *guid)
{
	mark_key(k, FROZEN_PREFIX, guid);
}

int mbox_frozen(MDB_txn *txn, struct store *st, const uint8_t *guid, struct buf *note_r, struct buf *error_r)
{
	uint8_t k[MARK_KEY_LEN];
	frozen_key(k, guid);
	MDB_val v;
	int ret = tget(txn, st->db_meta, k, sizeof(k), &v, error_r);
	if (ret == IX_ENOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	if (note_r != NULL)
		buf_append(note_r, v.mv_data, v.mv_size);
	return 1;
}

int mbox_unfreeze(struct wtx *w, const uint8_t *guid, struct buf *error_r)
{
	uint8_t k[MARK_KEY_LEN];
	frozen_key(k, guid);
	int ret = wdel(w, w->st->db_meta, k, sizeof(k), error_r);
	return ret == IX_ENOTFOUND ? 0 : ret;
}

int mbox_marks_drop(struct wtx *w, const uint8_t *guid, struct buf *error_r)
{
	int ret = mbox_unfreeze(w, guid, error_r);
	for (size_t i = 0; ret == 0 && i < IX_ARRAY_LEN(mark_prefix); i++) {
		uint8_t k[MARK_KEY_LEN];
		mark_key(k, mark_prefix[i], guid);
		ret = wdel(w, w->st->db_meta, k, sizeof(k), error_r);
		if (ret == IX_ENOTFOUND)
			ret = 0;
	}
	return ret;
}

int wtx_frozen_check(struct wtx *w, struct buf *error_r)
{
	if (w->frozen_ok)
		return 0;
	for (size_t i = 0; i < w->ntouched; i++) {
		struct buf note = BUF_INIT;
		int ret = mbox_frozen(w->txn, w->st, w->touched[i], &note, error_r);
		if (ret == 1) {
			if (error_r != NULL)
				buf_printf(error_r, "the mailbox is being moved to %s; try again later",
					   buf_cstr(&note));
			ret = IX_EAGAIN;
		}
		buf_free(&note);
		if (ret != 0)
			return ret;
	}
	return 0;
}

struct freeze_op {
	uint8_t guid[STORE_GUID_LEN];
	const char *note;
};

static int op_freeze(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct freeze_op *op = ctx;
	w->frozen_ok = 1;
	wtx_touch(w, op->guid);
	if (op->note == NULL)
		return mbox_unfreeze(w, op->guid, error_r);
	uint8_t k[MARK_KEY_LEN];
	frozen_key(k, op->guid);
	return wput(w, w->st->db_meta, k, sizeof(k), op->note, strlen(op->note), error_r);
}

int store_mailbox_freeze(struct store *st, const char *guid, const char *note, struct buf *error_r)
{
	struct freeze_op op = { .note = note };
	int ret = store_guid_parse(guid, op.guid, error_r);
	if (ret != 0)
		return ret;
	if (note != NULL && strlen(note) > FROZEN_NOTE_MAX) {
		if (error_r != NULL)
			buf_printf(error_r, "the note of a frozen mailbox is limited to %d bytes", FROZEN_NOTE_MAX);
		return IX_EINVAL;
	}
	return store_write(st, op_freeze, &op, error_r);
}

int store_mailbox_frozen(struct store *st, const char *guid, int *frozen_r, struct buf *note_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	*frozen_r = 0;
	MDB_txn *txn;
	int ret = store_rtxn_guid(st, guid, g, &txn, error_r);
	if (ret != 0)
		return ret;
	ret = mbox_frozen(txn, st, g, note_r, error_r);
	store_rtxn_end(st, txn);
	if (ret < 0)
		return ret;
	*frozen_r = ret;
	return 0;
}

struct mark_op {
	uint8_t guid[STORE_GUID_LEN];
	enum store_mark mark;
	bool on;
};

static int op_mark(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct mark_op *op = ctx;
	w->frozen_ok = 1; /* a mark changes no content: a frozen mailbox takes it */
	wtx_touch(w, op->guid);
	uint8_t k[MARK_KEY_LEN];
	mark_key(k, mark_prefix[op->mark], op->guid);
	if (op->on)
		return wput(w, w->st->db_meta, k, sizeof(k), "1", 1, error_r);
	int ret = wdel(w, w->st->db_meta, k, sizeof(k), error_r);
	return ret == IX_ENOTFOUND ? 0 : ret;
}

int store_mailbox_mark(struct store *st, const char *guid, enum store_mark mark, bool on, struct buf *error_r)
{
	struct mark_op op = { .mark = mark, .on = on };
	int ret = store_guid_parse(guid, op.guid, error_r);
	if (ret != 0)
		return ret;
	return store_write(st, op_mark, &op, error_r);
}

int store_mailbox_marked(struct store *st, const char *guid, enum store_mark mark, int *marked_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN], k[MARK_KEY_LEN];
	*marked_r = 0;
	int ret = store_guid_parse(guid, g, error_r);
	if (ret != 0)
		return ret;
	mark_key(k, mark_prefix[mark], g);
	MDB_txn *txn;
	ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0)
		return ret;
	MDB_val v;
	ret = tget(txn, st->db_meta, k, sizeof(k), &v, error_r);
	store_rtxn_end(st, txn);
	if (ret == IX_ENOTFOUND)
		return 0;
	if (ret == 0)
		*marked_r = 1;
	return ret;
}
