/* imap_metadata_cmd.c - GETMETADATA and SETMETADATA (RFC 5464 METADATA and METADATA-SERVER) over the store's
 * annotations, with the entries the server answers itself: /private/specialuse (RFC 6154) and /shared/admin. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_metadata.h"

#include <stdlib.h>
#include <string.h>

/* The mailbox a command names: the user's own mailbox's entries for "" (the server's, RFC 5464 3.2: kept per user,
 * as Dovecot does), else a folder and this user's rights on it. */
struct md_target {
	char *guid;
	char *folder; /* NULL: server entries */
	unsigned rights;
};

/* A store error: the mailbox is named the way the client knows it. */
static void md_store_error(struct imap_session *s, const char *tag, int ret, struct buf *err)
{
	if (ret == IX_ENOTFOUND) {
		buf_reset(err);
		buf_append_str(err, "Mailbox doesn't exist");
	}
	imap_store_error_reply(s, tag, ret, err);
}

/* Resolves the target and checks the rights (RFC 5464 4.1: "l" and "r" to read or set private entries, "w" too to
 * set shared ones); on failure answers the command and returns false. */
static bool md_resolve(struct imap_session *s, const struct imap_command *cmd, const char *name, size_t len,
		       bool shared_write, struct md_target *t)
{
	memset(t, 0, sizeof(*t));
	if (len == 0) {
		t->guid = xstrdup(s->ls.user.guid);
		t->rights = STORE_RIGHTS_ALL;
		return true;
	}
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &t->guid, &t->folder, &t->rights, &err);
	unsigned need = STORE_RIGHT_LOOKUP | STORE_RIGHT_READ | (shared_write ? STORE_RIGHT_WRITE : 0);
	if (ret == 0 && !(t->rights & STORE_RIGHT_LOOKUP))
		ret = IX_ENOTFOUND;
	if (ret == 0 && (t->rights & need) != need) {
		ret = IX_EPERM;
		buf_append_str(&err, "You may not use the annotations of this mailbox");
	}
	if (ret != 0) {
		md_store_error(s, cmd->tag, ret, &err);
		free(t->guid);
		free(t->folder);
		t->guid = t->folder = NULL;
	}
	buf_free(&err);
	return ret == 0;
}

static void md_target_free(struct md_target *t)
{
	free(t->guid);
	free(t->folder);
}

/* The value of an entry the server answers itself (NULL: none such). /shared/admin: the postmaster of the user's
 * domain (RFC 5464 3.2.1.1, a URI); /private/specialuse: the folder's special-use attribute (RFC 6154 5). */
static char *md_builtin(struct imap_session *s, const struct md_target *t, const char *entry)
{
	if (t->folder == NULL && strcmp(entry, "/shared/admin") == 0) {
		const char *at = strchr(s->ls.user.address, '@');
		return at != NULL ? xasprintf("mailto:postmaster%s", at) : NULL;
	}
	if (t->folder != NULL && strcmp(entry, "/private/specialuse") == 0) {
		struct store_folder_info info;
		char *v = NULL;
		if (store_folder_status(s->srv->ls.cfg.store, t->guid, t->folder, NULL, &info, NULL) == 0) {
			const char *use = store_special_use_name(info.special_use);
			v = *use != '\0' ? xstrdup(use) : NULL;
			store_folder_info_free(&info);
		}
		return v;
	}
	return NULL;
}

static const char *const md_builtins[] = { "/shared/admin", "/private/specialuse" };

static bool md_is_builtin(const char *entry)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(md_builtins); i++)
		if (strcmp(entry, md_builtins[i]) == 0)
			return true;
	return false;
}

struct md_out {
	struct imap_session *s;
	const struct imap_getmetadata *q;
	struct buf *list; /* "entry value" pairs, space separated */
	uint64_t longest; /* the largest value left out for MAXSIZE */
	bool found;       /* the entry asked for itself was there */
	const char *asked;
};

static void md_emit(const char *entry, const void *value, size_t len, void *arg)
{
	struct md_out *o = arg;
	if (strcmp(entry, o->asked) == 0)
		o->found = true;
	if (o->q->has_maxsize && len > o->q->maxsize) {
		if (len > o->longest)
			o->longest = len;
		return;
	}
	if (o->list->len > 0)
		buf_append_char(o->list, ' ');
	buf_append_str(o->list, entry);
	buf_append_char(o->list, ' ');
	imap_write_string(o->list, value, len, IMAP_WRITE_BINARY | (o->s->utf8 ? IMAP_WRITE_UTF8 : 0));
}

void imap_cmd_getmetadata(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_getmetadata q;
	struct buf err = BUF_INIT, list = BUF_INIT;
	int ret = imap_getmetadata_parse(cmd->args, cmd->arg_count, &q, &err);
	struct md_target t;
	if (ret != 0) {
		imap_tagged(s, cmd->tag, "BAD %s", buf_cstr(&err));
		goto out;
	}
	if (!md_resolve(s, cmd, q.mailbox, q.mailbox_len, false, &t))
		goto out;
	struct md_out o = { .s = s, .q = &q, .list = &list };
	for (size_t i = 0; i < q.n && ret == 0; i++) {
		o.asked = q.entries[i];
		o.found = false;
		for (size_t b = 0; b < IX_ARRAY_LEN(md_builtins); b++) {
			if (!imap_metadata_within(q.entries[i], md_builtins[b], q.depth))
				continue;
			char *v = md_builtin(s, &t, md_builtins[b]);
			if (v != NULL)
				md_emit(md_builtins[b], v, strlen(v), &o);
			free(v);
		}
		ret = store_annot_get(s->srv->ls.cfg.store, t.guid, t.folder, imap_user_id(s), q.entries[i], q.depth,
				      md_emit, &o, &err);
		/* an entry asked for without DEPTH that has no value is answered NIL (RFC 5464 4.2) */
		if (ret == 0 && !o.found && q.depth == 0 && strchr(q.entries[i] + 1, '/') != NULL) {
			if (list.len > 0)
				buf_append_char(&list, ' ');
			buf_printf(&list, "%s NIL", q.entries[i]);
		}
	}
	if (ret != 0) {
		md_store_error(s, cmd->tag, ret, &err);
	} else {
		if (list.len > 0) {
			buf_append_str(&s->out, "* METADATA ");
			imap_write_string(&s->out, q.mailbox, q.mailbox_len, s->utf8 ? IMAP_WRITE_UTF8 : 0);
			buf_append_str(&s->out, " (");
			buf_append(&s->out, list.data, list.len); /* may hold NULs (literal8) */
			buf_append_str(&s->out, ")\r\n");
		}
		if (o.longest > 0)
			imap_tagged(s, cmd->tag, "OK [METADATA LONGENTRIES %llu] GETMETADATA completed.",
				    (unsigned long long)o.longest);
		else
			imap_tagged(s, cmd->tag, "OK GETMETADATA completed.");
	}
	md_target_free(&t);
out:
	imap_getmetadata_free(&q);
	buf_free(&err);
	buf_free(&list);
}

void imap_cmd_setmetadata(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_setmetadata q;
	struct buf err = BUF_INIT;
	int ret = imap_setmetadata_parse(cmd->args, cmd->arg_count, &q, &err);
	if (ret != 0) {
		imap_tagged(s, cmd->tag, "BAD %s", buf_cstr(&err));
		goto out;
	}
	bool shared = false;
	for (size_t i = 0; i < q.n; i++) {
		if (md_is_builtin(q.set[i].entry)) {
			imap_tagged(s, cmd->tag, "NO [NOPERM] %s is set by the server", q.set[i].entry);
			goto out;
		}
		if (q.set[i].value != NULL && q.set[i].len > STORE_ANNOT_VALUE_MAX) {
			imap_tagged(s, cmd->tag, "NO [METADATA MAXSIZE %u] Value too large", STORE_ANNOT_VALUE_MAX);
			goto out;
		}
		shared |= strncmp(q.set[i].entry, "/shared/", 8) == 0;
	}
	struct md_target t;
	if (!md_resolve(s, cmd, q.mailbox, q.mailbox_len, shared, &t))
		goto out;
	struct store_annot *set = xcalloc(q.n, sizeof(*set));
	for (size_t i = 0; i < q.n; i++)
		set[i] = (struct store_annot){ q.set[i].entry, q.set[i].value, q.set[i].len };
	ret = store_annot_set(s->srv->ls.cfg.store, t.guid, t.folder, imap_user_id(s), set, q.n, &err);
	free(set);
	if (ret == IX_ELIMIT)
		imap_tagged(s, cmd->tag, "NO [METADATA TOOMANY] Too many annotations on this mailbox (limit %u)",
			    STORE_ANNOT_PER_FOLDER_MAX);
	else if (ret != 0)
		md_store_error(s, cmd->tag, ret, &err);
	else
		imap_tagged(s, cmd->tag, "OK SETMETADATA completed.");
	md_target_free(&t);
out:
	imap_setmetadata_free(&q);
	buf_free(&err);
}
