/* imap_list.c - LIST (LIST-EXTENDED, LIST-STATUS, LIST-MYRIGHTS, SPECIAL-USE), LSUB, NAMESPACE and STATUS over
 * the three namespaces. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_objectid.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/imap/mutf7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* IMAP LIST matching: '*' matches anything, '%' anything but the separator. Dynamic programming over one row per
 * pattern byte: O(pattern x name) whatever the wildcards (backtracking would be exponential in them). */
static bool list_match(const char *pat, const char *name)
{
	size_t n = strlen(name);
	bool *prev = xcalloc(n + 1, sizeof(bool)), *cur = xcalloc(n + 1, sizeof(bool));
	prev[0] = true;
	for (; *pat != '\0'; pat++) {
		char c = *pat;
		cur[0] = (c == '*' || c == '%') && prev[0];
		for (size_t j = 1; j <= n; j++) {
			if (c == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (c == '%')
				cur[j] = prev[j] || (cur[j - 1] && name[j - 1] != '/');
			else
				cur[j] = prev[j - 1] && name[j - 1] == c;
		}
		bool *t = prev;
		prev = cur;
		cur = t;
	}
	bool r = prev[n];
	free(prev);
	free(cur);
	return r;
}

static bool pattern_match(const char *pat, const char *name)
{
	/* INBOX matches case-insensitively */
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/') &&
	    strncasecmp(pat, "INBOX", 5) == 0) {
		char *p2 = xstrdup(pat), *n2 = xstrdup(name);
		memcpy(p2, "INBOX", 5);
		memcpy(n2, "INBOX", 5);
		bool r = list_match(p2, n2);
		free(p2);
		free(n2);
		return r;
	}
	return list_match(pat, name);
}

/* The STATUS items (RFC 3501, 9051 DELETED, 7162 HIGHESTMODSEQ, 8438 SIZE, 7889 APPENDLIMIT, 8474 MAILBOXID);
 * RECENT only before IMAP4rev2 (RFC 9051 removed it). Returns NULL when every item of the list is known, else the BAD text. */
static const char *status_items_error(const struct imap_session *s, const struct imap_arg *items)
{
	static const char *const known[] = { "MESSAGES", "UNSEEN",        "RECENT", "UIDNEXT",     "UIDVALIDITY",
					     "DELETED",  "HIGHESTMODSEQ", "SIZE",   "APPENDLIMIT", "MAILBOXID" };
	for (size_t t = 0; t < items->list_count; t++) {
		const struct imap_arg *a = &items->list[t];
		size_t k = 0;
		while (k < IX_ARRAY_LEN(known) && !imap_arg_atom_equals(a, known[k]))
			k++;
		if (k == IX_ARRAY_LEN(known))
			return "Unknown STATUS item";
		if (s->rev2 && imap_arg_atom_equals(a, "RECENT"))
			return "RECENT is not an IMAP4rev2 STATUS item";
	}
	return NULL;
}

/* The number of messages flagged \Deleted in a folder (STATUS DELETED), 0 when it cannot be read. */
static uint32_t deleted_count(struct imap_session *s, const char *guid, const char *folder)
{
	struct store_msg *list = NULL;
	size_t n = 0;
	uint32_t deleted = 0;
	if (store_msg_list(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &list, &n, NULL) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (list[i].flags & STORE_FLAG_DELETED)
			deleted++;
	store_msg_list_free(&list, n);
	return deleted;
}

/* Writes the STATUS items named in the list items (checked by status_items_error) of a folder from info, then
 * ")\r\n"; APPENDLIMIT (RFC 7889) is the server's message size limit, the same for every mailbox. */
static void write_status_items(struct imap_session *s, const struct imap_arg *items, const char *guid,
			       const char *folder, const struct store_folder_info *info)
{
	struct buf *out = &s->out;
	for (size_t t = 0; t < items->list_count; t++) {
		const struct imap_arg *a = &items->list[t];
		const char *sep = t > 0 ? " " : "";
		if (imap_arg_atom_equals(a, "MESSAGES"))
			buf_printf(out, "%sMESSAGES %u", sep, info->messages);
		else if (imap_arg_atom_equals(a, "UNSEEN"))
			buf_printf(out, "%sUNSEEN %u", sep, info->unseen);
		else if (imap_arg_atom_equals(a, "RECENT"))
			buf_printf(out, "%sRECENT %u", sep, info->recent);
		else if (imap_arg_atom_equals(a, "UIDNEXT"))
			buf_printf(out, "%sUIDNEXT %u", sep, info->uidnext);
		else if (imap_arg_atom_equals(a, "UIDVALIDITY"))
			buf_printf(out, "%sUIDVALIDITY %u", sep, info->uidvalidity);
		else if (imap_arg_atom_equals(a, "DELETED"))
			buf_printf(out, "%sDELETED %u", sep, deleted_count(s, guid, folder));
		else if (imap_arg_atom_equals(a, "HIGHESTMODSEQ"))
			buf_printf(out, "%sHIGHESTMODSEQ %llu", sep, (unsigned long long)info->highestmodseq);
		else if (imap_arg_atom_equals(a, "SIZE"))
			buf_printf(out, "%sSIZE %llu", sep, (unsigned long long)info->size);
		else if (imap_arg_atom_equals(a, "APPENDLIMIT"))
			buf_printf(out, "%sAPPENDLIMIT %llu", sep, (unsigned long long)s->srv->max_message_size);
		else if (imap_arg_atom_equals(a, "MAILBOXID")) {
			buf_printf(out, "%sMAILBOXID (", sep);
			imap_mailboxid(guid, info->id, out);
			buf_append_char(out, ')');
		}
	}
	buf_append_str(out, ")\r\n");
}

struct list_entry {
	char *name; /* UTF-8, full client name */
	char *guid, *folder;
	bool noselect, subscribed;
	bool nonexistent; /* a subscribed name (or a parent of one) with no folder: listed only for subscriptions */
	enum store_special_use use;
};

struct list_set {
	struct list_entry *v;
	size_t n, cap;
};

static void list_add(struct list_set *ls, const char *name, const char *guid, const char *folder, bool noselect,
		     bool subscribed, enum store_special_use use)
{
	if (ls->n == ls->cap) {
		ls->cap = ls->cap < 16 ? 16 : ls->cap * 2;
		ls->v = xrealloc(ls->v, ls->cap * sizeof(*ls->v));
	}
	ls->v[ls->n++] = (struct list_entry){ xstrdup(name),
					      guid ? xstrdup(guid) : NULL,
					      folder ? xstrdup(folder) : NULL,
					      noselect,
					      subscribed,
					      false,
					      use };
}

static struct list_entry *list_find(struct list_set *ls, const char *name)
{
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->v[i].name, name) == 0)
			return &ls->v[i];
	return NULL;
}

/* Adds the user's subscribed names that have no folder (\NonExistent, RFC 5258) and the missing parents of every
 * subscribed name (unsubscribed: LSUB's \Noselect parents, RFC 3501 6.3.9; RECURSIVEMATCH's CHILDINFO). */
static void list_subscriptions(struct imap_session *s, struct list_set *ls)
{
	struct buf names = BUF_INIT;
	if (store_subscriptions(s->srv->ls.cfg.store, s->ls.user.guid, &names, NULL) != 0)
		buf_reset(&names);
	for (size_t i = 0; i < names.len;) {
		char *name = xstrdup(names.data + i);
		i += strlen(name) + 1;
		/* the name itself, then each parent */
		for (size_t len = strlen(name); len > 0;) {
			char saved = name[len];
			name[len] = '\0';
			struct list_entry *e = list_find(ls, name);
			bool self = saved == '\0';
			if (e == NULL) {
				list_add(ls, name, s->ls.user.guid, name, false, self, STORE_USE_NONE);
				ls->v[ls->n - 1].nonexistent = true;
			}
			name[len] = saved;
			char *sep = memrchr(name, '/', len);
			len = sep != NULL ? (size_t)(sep - name) : 0;
		}
		free(name);
	}
	buf_free(&names);
}

static void list_free(struct list_set *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->v[i].name);
		free(ls->v[i].guid);
		free(ls->v[i].folder);
	}
	free(ls->v);
}

static void list_folders_of(struct imap_session *s, struct list_set *ls, const char *guid, const char *prefix, bool own)
{
	struct store_folder_info *fl = NULL;
	size_t n = 0;
	if (store_folder_list(s->srv->ls.cfg.store, guid, imap_user_id(s), &fl, &n, NULL) != 0)
		return;
	size_t first = ls->n;
	for (size_t i = 0; i < n; i++) {
		if (!own && !(imap_rights_on(s, guid, fl[i].name) & STORE_RIGHT_LOOKUP))
			continue;
		char *full = xasprintf("%s%s", prefix, fl[i].name);
		list_add(ls, full, guid, fl[i].name, false, own ? fl[i].subscribed != 0 : true, fl[i].special_use);
		free(full);
	}
	store_folder_list_free(&fl, n);
	/* a level we may not see above one we may is listed \Noselect, so that "%" reaches every level (RFC 3501
	 * 6.3.8: a hierarchy level without a listable mailbox of its own) */
	for (size_t i = first, last = ls->n; !own && i < last; i++) {
		char *name = xstrdup(ls->v[i].name);
		for (char *sep = strrchr(name, '/'); sep != NULL && (size_t)(sep - name) >= strlen(prefix);
		     sep = strrchr(name, '/')) {
			*sep = '\0';
			if (list_find(ls, name) == NULL)
				list_add(ls, name, NULL, NULL, true, false, STORE_USE_NONE);
		}
		free(name);
	}
}

/* Adds "Other Users/<login>" (\Noselect) and the folders of every user that shares something with us (l right). */
static void list_other_users(struct imap_session *s, struct list_set *ls)
{
	struct buf logins = BUF_INIT;
	s->srv->ls.cfg.users.users(s->srv->ls.cfg.users.ctx, &logins);
	for (size_t i = 0; i < logins.len;) {
		const char *login = logins.data + i;
		i += strlen(login) + 1;
		struct login_user other;
		if (strcasecmp(login, s->ls.user.login) == 0 ||
		    s->srv->ls.cfg.users.lookup(s->srv->ls.cfg.users.ctx, login, &other) != 0)
			continue;
		char *prefix = xasprintf("%s/%s/", IMAP_NS_OTHER, other.login);
		size_t before = ls->n;
		imap_note_owner(s, other.guid, other.login);
		list_folders_of(s, ls, other.guid, prefix, false);
		if (ls->n > before) {
			prefix[strlen(prefix) - 1] = '\0';
			list_add(ls, prefix, NULL, NULL, true, false, STORE_USE_NONE);
		}
		free(prefix);
		login_user_free(&other);
	}
	buf_free(&logins);
}

void imap_cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	bool lsub = strcmp(cmd->name, "LSUB") == 0;
	size_t i = 0;
	bool sel_subscribed = false, sel_special = false, recursive = false, ret_children = true, ret_special = false,
	     ret_subscribed = lsub, ret_myrights = false;
	const struct imap_arg *status_items = NULL;
	if (!lsub && cmd->arg_count > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		for (size_t k = 0; k < cmd->args[0].list_count; k++) {
			const struct imap_arg *a = &cmd->args[0].list[k];
			if (imap_arg_atom_equals(a, "SUBSCRIBED"))
				sel_subscribed = ret_subscribed = true;
			else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
				sel_special = ret_special = true;
			else if (imap_arg_atom_equals(a, "RECURSIVEMATCH"))
				recursive = true;
			else if (!imap_arg_atom_equals(a, "REMOTE")) {
				imap_tagged(s, cmd->tag, "BAD Unknown LIST selection option");
				return;
			}
		}
		if (recursive && !sel_subscribed && !sel_special) {
			/* RFC 5258 3.1: never alone (nor with REMOTE only) */
			imap_tagged(s, cmd->tag, "BAD RECURSIVEMATCH needs another selection option");
			return;
		}
		i = 1;
	}
	const char *ref;
	size_t rlen;
	if (i + 2 > cmd->arg_count || !imap_arg_get_astring(&cmd->args[i], &ref, &rlen)) {
		imap_tagged(s, cmd->tag, "BAD %s needs a reference and a pattern", cmd->name);
		return;
	}
	const struct imap_arg *pats = &cmd->args[i + 1];
	size_t npats = 1;
	if (pats->type == IMAP_ARG_LIST) {
		npats = pats->list_count;
		pats = pats->list;
	}
	if (i + 2 < cmd->arg_count) {
		if (lsub || i + 4 != cmd->arg_count || !imap_arg_atom_equals(&cmd->args[i + 2], "RETURN") ||
		    cmd->args[i + 3].type != IMAP_ARG_LIST) {
			imap_tagged(s, cmd->tag, "BAD Bad LIST arguments");
			return;
		}
		const struct imap_arg *r = &cmd->args[i + 3];
		for (size_t k = 0; k < r->list_count; k++) {
			const struct imap_arg *a = &r->list[k];
			if (imap_arg_atom_equals(a, "SUBSCRIBED"))
				ret_subscribed = true;
			else if (imap_arg_atom_equals(a, "CHILDREN"))
				ret_children = true;
			else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
				ret_special = true;
			else if (imap_arg_atom_equals(a, "MYRIGHTS"))
				ret_myrights = true;
			else if (imap_arg_atom_equals(a, "STATUS") && k + 1 < r->list_count &&
				 r->list[k + 1].type == IMAP_ARG_LIST && status_items_error(s, &r->list[k + 1]) == NULL)
				status_items = &r->list[++k];
			else {
				imap_tagged(s, cmd->tag, "BAD Unknown LIST return option");
				return;
			}
		}
	}
	(void)ret_special;
	/* every pattern, with the reference, in UTF-8 */
	char **pu = xcalloc(npats + 1, sizeof(*pu));
	for (size_t p = 0; p < npats; p++) {
		const char *pat;
		size_t plen;
		if (!imap_arg_get_astring(&pats[p], &pat, &plen)) {
			imap_tagged(s, cmd->tag, "BAD Bad pattern");
			for (size_t k = 0; k < p; k++)
				free(pu[k]);
			free(pu);
			return;
		}
		struct buf full = BUF_INIT, u = BUF_INIT, merr = BUF_INIT;
		buf_append(&full, ref, rlen);
		buf_append(&full, pat, plen);
		if (s->utf8 || mutf7_to_utf8(buf_cstr(&full), full.len, &u, &merr) != 0) {
			buf_reset(&u);
			buf_append(&u, buf_cstr(&full), full.len);
		}
		pu[p] = plen == 0 ? NULL : xstrdup(buf_cstr(&u));
		buf_free(&full);
		buf_free(&u);
		buf_free(&merr);
	}
	bool subs_only = sel_subscribed || lsub;
	struct list_set ls = { 0 };
	bool built = false, other_listed = false;
	for (size_t p = 0; p < npats; p++) {
		if (pu[p] == NULL && !subs_only) {
			imap_reply(s, "* LIST (\\Noselect) \"/\" \"\"");
			continue;
		}
		if (pu[p] == NULL)
			continue;
		const char *u = pu[p];
		if (!built) {
			built = true;
			list_folders_of(s, &ls, s->ls.user.guid, "", true);
			list_add(&ls, IMAP_NS_OTHER, NULL, NULL, true, false, STORE_USE_NONE);
			list_add(&ls, IMAP_NS_PUBLIC, NULL, NULL, true, false, STORE_USE_NONE);
			if (subs_only)
				list_subscriptions(s, &ls);
			/* also for a pattern whose first level is a wildcard: "Public Folders" has children then */
			if (strncasecmp(u, IMAP_NS_PUBLIC, strlen(IMAP_NS_PUBLIC)) == 0 || u[0] == '*' || u[0] == '%') {
				imap_public_sync(s);
				list_folders_of(s, &ls, STORE_PUBLIC_GUID, IMAP_NS_PUBLIC "/", false);
			}
		}
		size_t ol = strlen(IMAP_NS_OTHER);
		if (strncasecmp(u, IMAP_NS_OTHER "/", ol + 1) == 0) {
			const char *rest = u + ol + 1;
			size_t ll = strcspn(rest, "/*%");
			if (rest[ll] != '/' && !other_listed && s->srv->ls.cfg.users.users != NULL) {
				/* a wildcard in the user level: every user with something shared with us */
				other_listed = true;
				list_other_users(s, &ls);
			}
			if (rest[ll] == '/') {
				char *login = xstrndup(rest, ll);
				struct login_user other;
				if (s->srv->ls.cfg.users.lookup(s->srv->ls.cfg.users.ctx, login, &other) == 0) {
					char *prefix = xasprintf("%s/%s/", IMAP_NS_OTHER, login);
					imap_note_owner(s, other.guid, other.login);
					list_folders_of(s, &ls, other.guid, prefix, false);
					free(prefix);
					login_user_free(&other);
				}
				free(login);
			}
		}
		for (size_t k = 0; k < ls.n; k++) {
			struct list_entry *e = &ls.v[k];
			if (!pattern_match(u, e->name))
				continue;
			if (e->nonexistent && !subs_only)
				continue;
			if (sel_special && e->use <= STORE_USE_INBOX)
				continue;
			bool children = false, sub_below = false;
			size_t nl = strlen(e->name);
			for (size_t c = 0; c < ls.n; c++) {
				const struct list_entry *d = &ls.v[c];
				if (strncmp(d->name, e->name, nl) != 0 || d->name[nl] != '/')
					continue;
				children |= !d->nonexistent;
				/* a subscribed descendant the patterns do not show (RFC 3501 6.3.9, RFC 5258 3.5) */
				if (d->subscribed && (lsub || recursive) && !sub_below) {
					bool shown = false;
					for (size_t q = 0; q < npats && !shown; q++)
						shown = pu[q] != NULL && pattern_match(pu[q], d->name);
					sub_below = !shown;
				}
			}
			if (subs_only && !e->subscribed && !sub_below)
				continue;
			buf_printf(&s->out, "* %s (", lsub ? "LSUB" : "LIST");
			size_t mark = s->out.len;
			if (e->noselect || (lsub && (e->nonexistent || !e->subscribed)))
				buf_append_str(&s->out, "\\Noselect ");
			else if (e->nonexistent)
				buf_append_str(&s->out, "\\NonExistent ");
			if (ret_children)
				buf_append_str(&s->out, children ? "\\HasChildren " : "\\HasNoChildren ");
			if (ret_subscribed && e->subscribed && !lsub)
				buf_append_str(&s->out, "\\Subscribed ");
			if (e->use > STORE_USE_INBOX)
				buf_printf(&s->out, "%s ", store_special_use_name(e->use));
			if (s->out.len > mark)
				s->out.data[--s->out.len] = '\0';
			buf_append_str(&s->out, ") \"/\" ");
			imap_write_mailbox(s, &s->out, e->name);
			if (recursive && sel_subscribed && sub_below)
				buf_append_str(&s->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
			buf_append_str(&s->out, "\r\n");
			if (status_items != NULL && !e->noselect && !e->nonexistent) {
				struct store_folder_info info;
				if (store_folder_status(s->srv->ls.cfg.store, e->guid, e->folder, imap_user_id(s),
							&info, NULL) == 0) {
					info.recent = imap_recent_status(s, e->guid, e->folder, &info);
					buf_append_str(&s->out, "* STATUS ");
					imap_write_mailbox(s, &s->out, e->name);
					buf_append_str(&s->out, " (");
					write_status_items(s, status_items, e->guid, e->folder, &info);
					store_folder_info_free(&info);
				}
			}
			if (ret_myrights && !e->noselect && !e->nonexistent) {
				/* LIST-MYRIGHTS (RFC 8440): as MYRIGHTS would answer, for every mailbox that exists */
				struct buf rights = BUF_INIT;
				store_rights_format(imap_rights_on(s, e->guid, e->folder), &rights);
				buf_append_str(&s->out, "* MYRIGHTS ");
				imap_write_mailbox(s, &s->out, e->name);
				buf_append_char(&s->out, ' ');
				imap_write_astring(&s->out, buf_cstr(&rights), rights.len, 0);
				buf_append_str(&s->out, "\r\n");
				buf_free(&rights);
			}
		}
	}
	for (size_t p = 0; p < npats; p++)
		free(pu[p]);
	free(pu);
	list_free(&ls);
	imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
}

void imap_cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "* NAMESPACE ((\"\" \"/\")) ((\"" IMAP_NS_OTHER "/\" \"/\")) ((\"" IMAP_NS_PUBLIC "/\" \"/\"))");
	imap_tagged(s, cmd->tag, "OK Namespace completed.");
}

void imap_cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = imap_arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 2 || cmd->args[1].type != IMAP_ARG_LIST || cmd->args[1].list_count == 0) {
		imap_tagged(s, cmd->tag, "BAD STATUS needs a mailbox name and a list of items");
		return;
	}
	const struct imap_arg *items = &cmd->args[1];
	const char *bad = status_items_error(s, items);
	if (bad != NULL) {
		imap_tagged(s, cmd->tag, "BAD %s", bad);
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	if (ret == 0 && !(rights & STORE_RIGHT_READ))
		ret = IX_ENOTFOUND;
	struct store_folder_info info;
	if (ret == 0 && strcasecmp(guid, s->ls.user.guid) == 0)
		store_mailbox_ensure(s->srv->ls.cfg.store, guid, NULL);
	if (ret == 0)
		ret = store_folder_status(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), &info, &err);
	if (ret != 0) {
		if (ret == IX_ENOTFOUND) {
			buf_reset(&err);
			buf_append_str(&err, "Mailbox doesn't exist");
		}
		imap_store_error_reply(s, cmd->tag, ret, &err);
	} else {
		info.recent = imap_recent_status(s, guid, folder, &info);
		buf_append_str(&s->out, "* STATUS ");
		imap_write_astring(&s->out, name, len, s->utf8 ? IMAP_WRITE_UTF8 : 0);
		buf_append_str(&s->out, " (");
		write_status_items(s, items, guid, folder, &info);
		store_folder_info_free(&info);
		imap_tagged(s, cmd->tag, "OK Status completed.");
	}
	free(guid);
	free(folder);
	buf_free(&err);
}

bool imap_folder_children(struct imap_session *s, const char *guid, const char *folder, enum store_special_use *use_r)
{
	struct store_folder_info *fl = NULL;
	size_t n = 0, flen = strlen(folder);
	bool children = false;
	if (use_r != NULL)
		*use_r = STORE_USE_NONE;
	if (store_folder_list(s->srv->ls.cfg.store, guid, NULL, &fl, &n, NULL) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(fl[i].name, folder) == 0 && use_r != NULL)
			*use_r = fl[i].special_use;
		else if (strncmp(fl[i].name, folder, flen) == 0 && fl[i].name[flen] == '/')
			children = true;
	}
	store_folder_list_free(&fl, n);
	return children;
}

void imap_write_list_self(struct imap_session *s, const char *name, const char *guid, const char *folder)
{
	enum store_special_use use;
	bool children = imap_folder_children(s, guid, folder, &use);
	buf_printf(&s->out, "* LIST (%s", children ? "\\HasChildren" : "\\HasNoChildren");
	if (use > STORE_USE_INBOX)
		buf_printf(&s->out, " %s", store_special_use_name(use));
	buf_append_str(&s->out, ") \"/\" ");
	imap_write_mailbox(s, &s->out, name);
	buf_append_str(&s->out, "\r\n");
}
