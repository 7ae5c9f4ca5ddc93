/* store_acl.c - RFC 4314 access control lists on folders (public folders above all): rights strings, per-identifier
 * entries, and the effective rights of a user from their identifiers, "anyone" and inheritance from parents. */
#include "store/store_int.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static const char right_letters[] = "lrswipkxtea";

int store_rights_parse(const char *s, unsigned *rights_r)
{
	unsigned r = 0;
	for (; *s != '\0'; s++) {
		const char *p = strchr(right_letters, *s);
		if (p != NULL)
			r |= 1u << (p - right_letters);
		else if (*s == 'c')
			r |= STORE_RIGHT_CREATE | STORE_RIGHT_DELETE;
		else if (*s == 'd')
			r |= STORE_RIGHT_DELETE | STORE_RIGHT_DELMSG | STORE_RIGHT_EXPUNGE;
		else
			return IX_EINVAL;
	}
	*rights_r = r;
	return 0;
}

void store_rights_format(unsigned rights, struct buf *out)
{
	for (size_t i = 0; right_letters[i] != '\0'; i++)
		if (rights & (1u << i))
			buf_append_char(out, right_letters[i]);
}

static int id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > STORE_ACL_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return 0;
	return 1;
}

static void acl_key(struct buf *k, const uint8_t *guid, uint32_t fid, const char *id)
{
	uint8_t fk[KEY_FOLDER_LEN];
	key_folder(fk, guid, fid);
	buf_reset(k);
	buf_append(k, fk, sizeof(fk));
	buf_append_str(k, id);
}

struct acl_ctx {
	uint8_t guid[STORE_GUID_LEN];
	struct buf name;
	const char *id;
	unsigned rights;
};

static int op_acl_set(struct wtx *w, void *ctx, struct buf *error_r)
{
	struct acl_ctx *c = ctx;
	uint32_t fid;
	int ret = folder_lookup(w->txn, w->st, c->guid, c->name.data, &fid, error_r);
	if (ret != 0)
		return ret;
	struct buf k = BUF_INIT;
	acl_key(&k, c->guid, fid, c->id);
	uint32_t r = c->rights;
	if (r != 0)
		ret = wput(w, w->st->db_acl, k.data, k.len, &r, sizeof(r), error_r);
	else if ((ret = wdel(w, w->st->db_acl, k.data, k.len, error_r)) == IX_ENOTFOUND)
		ret = 0;
	buf_free(&k);
	wtx_touch(w, c->guid);
	return ret;
}

int store_acl_set(struct store *st, const char *guid, const char *folder, const char *identifier, unsigned rights,
		  struct buf *error_r)
{
	struct acl_ctx c;
	memset(&c, 0, sizeof(c));
	int ret = store_guid_parse(guid, c.guid, error_r);
	if (ret == 0)
		ret = store_folder_name_norm(folder, &c.name, error_r);
	if (ret == 0 && (identifier == NULL || !id_valid(identifier))) {
		if (error_r != NULL)
			buf_printf(error_r, "invalid ACL identifier");
		ret = IX_EINVAL;
	}
	c.id = identifier;
	c.rights = rights & STORE_RIGHTS_ALL;
	if (ret == 0)
		ret = store_write(st, op_acl_set, &c, error_r);
	buf_free(&c.name);
	return ret;
}

/* Calls fn for each entry of a folder's ACL; returns the number of entries. */
static size_t acl_walk(MDB_txn *txn, struct store *st, const uint8_t *guid, uint32_t fid,
		       void (*fn)(const char *id, size_t idlen, unsigned rights, void *arg), void *arg)
{
	uint8_t fk[KEY_FOLDER_LEN];
	key_folder(fk, guid, fid);
	MDB_cursor *cur;
	size_t n = 0;
	if (mdb_cursor_open(txn, st->db_acl, &cur) != 0)
		return 0;
	MDB_val key = { sizeof(fk), fk }, val;
	int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size > sizeof(fk) && memcmp(key.mv_data, fk, sizeof(fk)) == 0) {
		uint32_t r = 0;
		if (val.mv_size == sizeof(r))
			memcpy(&r, val.mv_data, sizeof(r));
		fn((const char *)key.mv_data + sizeof(fk), key.mv_size - sizeof(fk), r, arg);
		n++;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return n;
}

static void list_entry(const char *id, size_t idlen, unsigned rights, void *arg)
{
	struct buf *out = arg;
	buf_append(out, id, idlen);
	buf_append_char(out, ' ');
	store_rights_format(rights, out);
	buf_append_char(out, '\n');
}

int store_acl_list(struct store *st, const char *guid, const char *folder, struct buf *out, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	struct buf name = BUF_INIT;
	int ret = store_guid_parse(guid, g, error_r);
	if (ret == 0)
		ret = store_folder_name_norm(folder, &name, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret == 0) {
		uint32_t fid;
		ret = folder_lookup(txn, st, g, name.data, &fid, error_r);
		if (ret == 0)
			acl_walk(txn, st, g, fid, list_entry, out);
		store_rtxn_end(st, txn);
	}
	buf_free(&name);
	return ret;
}

struct rights_arg {
	const char *const *ids;
	size_t nids;
	unsigned rights;
};

static void rights_entry(const char *id, size_t idlen, unsigned rights, void *arg)
{
	struct rights_arg *a = arg;
	if (idlen == strlen(STORE_ACL_ANYONE) && memcmp(id, STORE_ACL_ANYONE, idlen) == 0) {
		a->rights |= rights;
		return;
	}
	for (size_t i = 0; i < a->nids; i++)
		if (a->ids[i] != NULL && strlen(a->ids[i]) == idlen && memcmp(a->ids[i], id, idlen) == 0)
			a->rights |= rights;
}

int store_acl_rights(struct store *st, const char *guid, const char *folder, const char *const *identifiers,
		     size_t nidentifiers, unsigned *rights_r, struct buf *error_r)
{
	uint8_t g[STORE_GUID_LEN];
	struct buf name = BUF_INIT;
	*rights_r = 0;
	int ret = store_guid_parse(guid, g, error_r);
	if (ret == 0)
		ret = store_folder_name_norm(folder, &name, error_r);
	MDB_txn *txn;
	if (ret == 0)
		ret = store_rtxn_begin(st, &txn, error_r);
	if (ret != 0) {
		buf_free(&name);
		return ret;
	}
	uint32_t fid;
	ret = folder_lookup(txn, st, g, name.data, &fid, error_r);
	struct rights_arg a = { identifiers, nidentifiers, 0 };
	/* the nearest folder (itself, then its parents) that has entries decides */
	while (ret == 0) {
		if (acl_walk(txn, st, g, fid, rights_entry, &a) > 0)
			break;
		char *slash = strrchr(name.data, STORE_SEP);
		if (slash == NULL)
			break;
		name.len = (size_t)(slash - name.data);
		*slash = '\0';
		if (folder_lookup(txn, st, g, name.data, &fid, NULL) != 0)
			break;
	}
	store_rtxn_end(st, txn);
	buf_free(&name);
	if (ret == 0)
		*rights_r = a.rights;
	return ret;
}

/* One level: created with the default ACL unless it exists. */
static int public_level_ensure(struct store *st, const char *path, struct buf *error_r)
{
	struct store_folder_info info;
	if (store_folder_status(st, STORE_PUBLIC_GUID, path, NULL, &info, NULL) == 0) {
		store_folder_info_free(&info);
		return 0;
	}
	int ret = store_folder_create(st, STORE_PUBLIC_GUID, path, error_r);
	if (ret == IX_EEXIST) /* another process was first; it sets the ACL */
		return 0;
	unsigned def = 0;
	store_rights_parse(STORE_PUBLIC_DEFAULT_RIGHTS, &def);
	if (ret == 0)
		ret = store_acl_set(st, STORE_PUBLIC_GUID, path, STORE_ACL_ANYONE, def, error_r);
	if (ret == 0)
		ret = store_acl_set(st, STORE_PUBLIC_GUID, path, STORE_PUBLIC_ADMINS, STORE_RIGHTS_ALL, error_r);
	if (ret == 0)
		log_info("public folder %s: store folder created with the default rights", path);
	return ret;
}

int store_public_folder_ensure(struct store *st, const char *path, struct buf *error_r)
{
	struct buf name = BUF_INIT;
	int ret = store_folder_name_norm(path, &name, error_r);
	/* the parents first, so that the hierarchy has every level */
	for (size_t i = 0; ret == 0 && i <= name.len; i++) {
		if (i < name.len && name.data[i] != STORE_SEP)
			continue;
		char saved = name.data[i];
		name.data[i] = '\0';
		ret = public_level_ensure(st, name.data, error_r);
		name.data[i] = saved;
	}
	buf_free(&name);
	return ret;
}
