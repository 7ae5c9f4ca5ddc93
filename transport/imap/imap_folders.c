/* imap_folders.c - the folder commands: SELECT/EXAMINE (with CONDSTORE, QRESYNC and IMAP4rev2's answer), CREATE,
 * DELETE, RENAME, [UN]SUBSCRIBE, CLOSE/UNSELECT and CHECK. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_objectid.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap_cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	bool examine = strcmp(cmd->name, "EXAMINE") == 0;
	size_t len;
	const char *name = imap_arg_mailbox(cmd, 0, &len);
	bool want_condstore = false, want_qresync = false;
	uint32_t q_uidvalidity = 0;
	uint64_t q_modseq = 0;
	struct imap_seqset q_known = { 0 };
	bool have_known = false;
	if (name == NULL || cmd->arg_count > 2 || (cmd->arg_count == 2 && cmd->args[1].type != IMAP_ARG_LIST)) {
		imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name and optional parameters", cmd->name);
		return;
	}
	if (cmd->arg_count == 2) {
		const struct imap_arg *p = &cmd->args[1];
		for (size_t i = 0; i < p->list_count; i++) {
			if (imap_arg_atom_equals(&p->list[i], "CONDSTORE")) {
				want_condstore = true;
			} else if (imap_arg_atom_equals(&p->list[i], "QRESYNC") && i + 1 < p->list_count &&
				   p->list[i + 1].type == IMAP_ARG_LIST && s->qresync) {
				const struct imap_arg *q = &p->list[++i];
				uint64_t v;
				if (q->list_count < 2 || !imap_arg_get_number(&q->list[0], UINT32_MAX, &v) ||
				    !imap_arg_get_number(&q->list[1], UINT64_MAX, &q_modseq)) {
					imap_tagged(s, cmd->tag, "BAD Bad QRESYNC parameters");
					return;
				}
				q_uidvalidity = (uint32_t)v;
				if (q->list_count >= 3 && q->list[2].type == IMAP_ARG_ATOM) {
					struct buf perr = BUF_INIT;
					int pret = imap_seqset_parse(q->list[2].str, q->list[2].len, false, &q_known,
								     &perr);
					buf_free(&perr);
					if (pret != 0) {
						imap_tagged(s, cmd->tag, "BAD Bad known-uids in QRESYNC");
						return;
					}
					have_known = true;
				}
				want_qresync = true;
			} else {
				imap_tagged(s, cmd->tag, "BAD Unknown %s parameter (QRESYNC needs ENABLE QRESYNC)",
					    cmd->name);
				return;
			}
		}
	}
	if (s->state == IMAP_ST_SELECTED) {
		imap_deselect(s);
		if (s->qresync || s->rev2)
			imap_reply(s, "* OK [CLOSED] Previous mailbox closed.");
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	struct store_folder_info info = { 0 };
	if (ret == 0 && !(rights & STORE_RIGHT_READ)) {
		ret = (rights & STORE_RIGHT_LOOKUP) ? IX_EPERM : IX_ENOTFOUND;
		buf_reset(&err);
		buf_append_str(&err, ret == IX_EPERM ? "You may not read this mailbox" : "Mailbox doesn't exist");
	}
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		store_mailbox_ensure(s->srv->ls.cfg.store, guid, NULL);
	if (ret == 0)
		ret = store_folder_status(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &info, &err);
	struct store_msg *list = NULL;
	size_t n = 0;
	if (ret == 0)
		ret = store_msg_list(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &list, &n, &err);
	if (ret != 0) {
		if (ret == IX_ENOTFOUND) {
			buf_reset(&err);
			buf_append_str(&err, "Mailbox doesn't exist");
		}
		imap_store_error_reply(s, cmd->tag, ret, &err);
		goto out;
	}
	if (want_condstore || want_qresync)
		s->condstore = true;
	s->sel_guid = guid;
	s->sel_folder = folder;
	guid = folder = NULL;
	s->rights = rights;
	s->sel_full_access = strcasecmp(s->sel_guid, s->ls.user.guid) != 0 && imap_mailbox_is_ours(s, s->sel_guid);
	s->readonly = examine || !(rights & (STORE_RIGHT_SEEN | STORE_RIGHT_WRITE | STORE_RIGHT_DELMSG));
	s->uidvalidity = info.uidvalidity;
	s->uidnext = info.uidnext;
	s->highestmodseq = info.highestmodseq;
	s->cap = n > 16 ? n : 16;
	s->msgs = xcalloc(s->cap, sizeof(*s->msgs));
	s->sel_fid = info.id;
	size_t first_unseen = 0;
	for (size_t i = 0; i < n; i++) {
		s->msgs[i] = (struct imap_msg){ list[i].uid, list[i].flags, list[i].modseq };
		if (!(list[i].flags & STORE_FLAG_SEEN) && first_unseen == 0)
			first_unseen = i + 1;
		if (list[i].modseq > s->highestmodseq)
			s->highestmodseq = list[i].modseq;
	}
	s->count = n;
	s->state = IMAP_ST_SELECTED;
	size_t recent = imap_claim_recent(s, 0);
	s->watch = imap_watch_acquire(s->srv, s->sel_guid);
	s->dirty = s->watch->w == NULL;

	for (size_t i = 0; i < n; i++)
		imap_keywords_add(s, list[i].keywords);
	imap_write_flags_responses(s);
	imap_reply(s, "* %zu EXISTS", n);
	if (!s->rev2) {
		/* RFC 9051 removed \Recent and the UNSEEN response code (a client searches UNSEEN instead) */
		imap_reply(s, "* %zu RECENT", recent);
		if (first_unseen > 0)
			imap_reply(s, "* OK [UNSEEN %zu] First unseen.", first_unseen);
	}
	struct buf mid = BUF_INIT;
	imap_mailboxid(s->sel_guid, s->sel_fid, &mid);
	imap_reply(s, "* OK [MAILBOXID (%s)] Ok", buf_cstr(&mid)); /* RFC 8474 4.2 */
	buf_free(&mid);
	imap_reply(s, "* OK [UIDVALIDITY %u] UIDs valid.", s->uidvalidity);
	imap_reply(s, "* OK [UIDNEXT %u] Predicted next UID.", s->uidnext);
	if (s->rev2) {
		/* RFC 9051 6.3.2: the mailbox's LIST response, with its name as the server spells it (INBOX) */
		char *lname = xstrndup(name, len);
		if (strncasecmp(lname, "INBOX", 5) == 0 && (lname[5] == '\0' || lname[5] == '/'))
			memcpy(lname, "INBOX", 5);
		imap_write_list_self(s, lname, s->sel_guid, s->sel_folder);
		free(lname);
	}
	imap_reply(s, "* OK [HIGHESTMODSEQ %llu] Highest.", (unsigned long long)s->highestmodseq);
	if (want_qresync && q_uidvalidity == s->uidvalidity) {
		struct store_change *ch = NULL;
		size_t nch = 0;
		if (store_changes(s->srv->ls.cfg.store, s->sel_guid, s->sel_folder, q_modseq, &ch, &nch, NULL) == 0) {
			uint32_t *van = xcalloc(nch + 1, sizeof(*van));
			size_t nvan = 0;
			for (size_t i = 0; i < nch; i++)
				if (ch[i].expunged &&
				    (!have_known || imap_seqset_contains(&q_known, ch[i].uid, UINT32_MAX)))
					van[nvan++] = ch[i].uid;
			/* VANISHED wants ascending UIDs */
			for (size_t a = 1; a < nvan; a++)
				for (size_t b = a; b > 0 && van[b - 1] > van[b]; b--) {
					uint32_t t = van[b];
					van[b] = van[b - 1];
					van[b - 1] = t;
				}
			if (nvan > 0) {
				buf_append_str(&s->out, "* VANISHED (EARLIER) ");
				imap_write_seqset(&s->out, van, nvan);
				buf_append_str(&s->out, "\r\n");
			}
			free(van);
			for (size_t i = 0; i < n; i++)
				if (list[i].modseq > q_modseq)
					imap_write_fetch_flags(s, i, &list[i]);
			free(ch);
		}
	}
	imap_tagged(s, cmd->tag, "OK [%s] %s completed.", s->readonly ? "READ-ONLY" : "READ-WRITE", cmd->name);
out:
	store_msg_list_free(&list, n);
	if (info.name != NULL)
		store_folder_info_free(&info);
	if (have_known)
		imap_seqset_free(&q_known);
	free(guid);
	free(folder);
	buf_free(&err);
}

void imap_cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = imap_arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count > 2) {
		imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) != 0) {
		/* creating in someone else's hierarchy needs k on the parent */
		char *parent = xstrdup(folder);
		char *slash = strrchr(parent, '/');
		unsigned prights = imap_mailbox_is_ours(s, guid) ? STORE_RIGHTS_ALL : 0;
		if (slash != NULL) {
			*slash = '\0';
			prights = imap_rights_on(s, guid, parent);
		}
		free(parent);
		if (!(prights & STORE_RIGHT_CREATE)) {
			ret = IX_EPERM;
			buf_append_str(&err, "You may not create folders here");
		}
	}
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		store_mailbox_ensure(s->srv->ls.cfg.store, guid, NULL);
	if (ret == 0)
		ret = store_folder_create(s->srv->ls.cfg.store, guid, folder, &err);
	struct store_folder_info info;
	if (ret == 0 && store_folder_status(s->srv->ls.cfg.store, guid, folder, NULL, &info, NULL) == 0) {
		/* RFC 8474 4.1: the new folder's MAILBOXID */
		struct buf mid = BUF_INIT;
		imap_mailboxid(guid, info.id, &mid);
		imap_tagged(s, cmd->tag, "OK [MAILBOXID (%s)] Create completed.", buf_cstr(&mid));
		buf_free(&mid);
		store_folder_info_free(&info);
	} else if (ret == 0)
		imap_tagged(s, cmd->tag, "OK Create completed.");
	else if (ret == IX_EINVAL && err.len > 0 && guid == NULL)
		imap_tagged(s, cmd->tag, "NO [CANNOT] %s", buf_cstr(&err));
	else
		imap_store_error_reply(s, cmd->tag, ret, &err);
	free(guid);
	free(folder);
	buf_free(&err);
}

struct delete_job {
	struct imap_session *s;
	char *tag, *guid, *folder;
	int ret;
	struct buf err;
};

static void delete_run(void *arg)
{
	struct delete_job *j = arg;
	j->ret = store_folder_delete(j->s->srv->ls.cfg.store, j->guid, j->folder, &j->err);
}

static void delete_done(void *arg)
{
	struct delete_job *j = arg;
	struct imap_session *s = j->s;
	if (imap_job_finished(s)) {
		if (j->ret == 0)
			imap_tagged(s, j->tag, "OK Delete completed.");
		else
			imap_store_error_reply(s, j->tag, j->ret, &j->err);
		imap_resume(s);
	}
	free(j->tag);
	free(j->guid);
	free(j->folder);
	buf_free(&j->err);
	free(j);
}

void imap_cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = imap_arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 1) {
		imap_tagged(s, cmd->tag, "BAD DELETE needs a mailbox name");
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, false, &guid, &folder, &rights, &err);
	if (ret == 0 && !(rights & STORE_RIGHT_DELETE)) {
		ret = IX_EPERM;
		buf_append_str(&err, "You may not delete this mailbox");
	}
	if (ret == 0 && strcasecmp(folder, "INBOX") == 0) {
		ret = IX_EINVAL;
		buf_append_str(&err, "INBOX cannot be deleted");
	}
	if (ret == 0 && s->rev2 && imap_folder_children(s, guid, folder, NULL)) {
		/* RFC 9051 6.3.5: the store deletes no folder that has subfolders */
		imap_tagged(s, cmd->tag, "NO [HASCHILDREN] The mailbox has subfolders: delete them first.");
		goto out;
	}
	if (ret == 0 && s->state == IMAP_ST_SELECTED && strcasecmp(guid, s->sel_guid) == 0 &&
	    strcmp(folder, s->sel_folder) == 0) {
		imap_deselect(s);
		if (s->qresync || s->rev2)
			imap_reply(s, "* OK [CLOSED] Mailbox closed.");
	}
	if (ret == 0) {
		/* the delete itself is a synced write: on the pool (the view was released here, on the loop) */
		struct delete_job *j = xcalloc(1, sizeof(*j));
		j->s = s;
		j->tag = xstrdup(cmd->tag);
		j->guid = guid;
		j->folder = folder;
		imap_start_job(s, delete_run, delete_done, j);
		buf_free(&err);
		return;
	}
	imap_store_error_reply(s, cmd->tag, ret, &err);
out:
	free(guid);
	free(folder);
	buf_free(&err);
}

void imap_cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	size_t l1, l2;
	const char *from = imap_arg_mailbox(cmd, 0, &l1), *to = imap_arg_mailbox(cmd, 1, &l2);
	if (from == NULL || to == NULL || cmd->arg_count != 2) {
		imap_tagged(s, cmd->tag, "BAD RENAME needs two mailbox names");
		return;
	}
	char *g1 = NULL, *f1 = NULL, *g2 = NULL, *f2 = NULL;
	unsigned r1 = 0, r2 = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, from, l1, false, &g1, &f1, &r1, &err);
	if (ret == 0)
		ret = imap_resolve_mailbox(s, to, l2, false, &g2, &f2, &r2, &err);
	if (ret == 0 && strcasecmp(g1, g2) != 0) {
		ret = IX_EINVAL;
		buf_append_str(&err, "Cannot rename into another namespace");
	}
	if (ret == 0 && !(r1 & STORE_RIGHT_DELETE)) {
		ret = IX_EPERM;
		buf_append_str(&err, "You may not rename this mailbox");
	}
	if (ret == 0 && strcasecmp(f1, "INBOX") == 0) {
		/* RFC 3501: renaming INBOX moves its messages to the new folder and leaves INBOX empty */
		ret = store_folder_create(s->srv->ls.cfg.store, g1, f2, &err);
		struct store_msg *list = NULL;
		size_t n = 0;
		if (ret == 0)
			ret = store_msg_list(s->srv->ls.cfg.store, g1, "INBOX", NULL, &list, &n, &err);
		if (ret == 0 && n > 0) {
			uint32_t *uids = xcalloc(n, sizeof(*uids));
			for (size_t i = 0; i < n; i++)
				uids[i] = list[i].uid;
			ret = store_copy(s->srv->ls.cfg.store, g1, "INBOX", uids, n, g1, f2, 1, 0, 0, NULL, NULL, &err);
			free(uids);
		}
		store_msg_list_free(&list, n);
	} else if (ret == 0) {
		ret = store_folder_rename(s->srv->ls.cfg.store, g1, f1, f2, &err);
		size_t flen = strlen(f1);
		if (ret == 0 && s->state == IMAP_ST_SELECTED && strcasecmp(s->sel_guid, g1) == 0 &&
		    strncmp(s->sel_folder, f1, flen) == 0 &&
		    (s->sel_folder[flen] == '\0' || s->sel_folder[flen] == '/')) {
			/* the selected folder (or one below it) moved: follow it (its UIDs and UIDVALIDITY stay) */
			char *moved = xasprintf("%s%s", f2, s->sel_folder + flen);
			free(s->sel_folder);
			s->sel_folder = moved;
		}
	}
	if (ret == 0)
		imap_tagged(s, cmd->tag, "OK Rename completed.");
	else
		imap_store_error_reply(s, cmd->tag, ret, &err);
	free(g1);
	free(f1);
	free(g2);
	free(f2);
	buf_free(&err);
}

void imap_cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = imap_arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 1) {
		imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, false, &guid, &folder, &rights, &err);
	bool on = strcmp(cmd->name, "SUBSCRIBE") == 0;
	struct store_folder_info info;
	/* SUBSCRIBE checks that the folder exists (RFC 9051 6.3.7 allows it); UNSUBSCRIBE takes any name, subscribed
	 * or not, existing or not (6.3.8): a subscription outlives its folder */
	if (ret == 0 && on && strcasecmp(guid, s->ls.user.guid) == 0) {
		ret = store_folder_status(s->srv->ls.cfg.store, guid, folder, NULL, &info, &err);
		if (ret == 0)
			store_folder_info_free(&info);
	}
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		ret = store_folder_subscribe(s->srv->ls.cfg.store, guid, folder, on, &err);
	else if (ret == 0 && !(rights & STORE_RIGHT_LOOKUP))
		ret = IX_ENOTFOUND;
	if (ret == 0)
		imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
	else
		imap_store_error_reply(s, cmd->tag, ret, &err);
	free(guid);
	free(folder);
	buf_free(&err);
}

struct close_job {
	struct imap_session *s;
	struct store *st;
	char *tag, *guid, *folder;
};

static void close_run(void *arg)
{
	struct close_job *j = arg;
	store_expunge(j->st, j->guid, j->folder, NULL, 0, NULL, NULL, NULL);
}

static void close_done(void *arg)
{
	struct close_job *j = arg;
	struct imap_session *s = j->s;
	if (imap_job_finished(s)) {
		imap_tagged(s, j->tag, "OK CLOSE completed.");
		imap_resume(s);
	}
	free(j->tag);
	free(j->guid);
	free(j->folder);
	free(j);
}

void imap_cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	bool close = strcmp(cmd->name, "CLOSE") == 0;
	bool expunge = close && !s->readonly && (s->rights & STORE_RIGHT_EXPUNGE);
	struct close_job *j = NULL;
	if (expunge) {
		/* the silent expunge is a synced write: on the pool, after the view is gone (no EXPUNGE responses) */
		j = xcalloc(1, sizeof(*j));
		j->s = s;
		j->st = s->srv->ls.cfg.store;
		j->tag = xstrdup(cmd->tag);
		j->guid = xstrdup(s->sel_guid);
		j->folder = xstrdup(s->sel_folder);
	}
	imap_deselect(s);
	if (j != NULL)
		imap_start_job(s, close_run, close_done, j);
	else
		imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
}

void imap_cmd_check(struct imap_session *s, const struct imap_command *cmd)
{
	imap_sync(s, true, true);
	imap_tagged(s, cmd->tag, "OK Check completed.");
}
