/* imap_notify_cmd.c - NOTIFY (RFC 5465): the command, a snapshot of every folder (counts, name, subscription,
 * annotations) of the user's own mailbox and of the public and other users' folders SUBTREE and MAILBOXES name,
 * taken again when one of those mailboxes' store watches fires, and the untagged STATUS, LIST and METADATA responses
 * the differences make for the folders the event groups name; the selected mailbox's EXISTS/EXPUNGE/FETCH sent as
 * soon as its watch fires. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/imap/imap_notify.h"
#include "transport/imap/mutf7.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct notify_folder {
	size_t mb; /* of imap_notify.mb */
	uint32_t id;
	char *name; /* as the client names it: the mailbox's prefix, then the store name */
	uint32_t uidvalidity, uidnext, messages;
	uint64_t modseq;
	bool subscribed;
	char *meta; /* "entry hash\n" per annotation the user sees, in key order (NULL: not tracked) */
};

struct notify_names {
	char **v;
	size_t n;
};

/* A store mailbox whose folders are watched: mb[0] the user's own, then the public folders and other users' mailboxes
 * that SUBTREE and MAILBOXES name. */
struct notify_mbox {
	char *guid;
	char *prefix; /* how the client's names of its folders begin: "", "Public Folders/", "Other Users/LOGIN/" */
	struct imap_watch *watch;
};

struct imap_notify {
	struct imap_notify_set set;
	struct notify_names
		*names; /* per group: the folders SUBTREE/MAILBOXES name, as the client names them (UTF-8) */
	struct notify_mbox *mb;
	size_t nmb;
	struct notify_folder *f;
	size_t n;
	char *server_meta;
	unsigned all_events; /* of every non-selected group */
	int selected;        /* -1: no SELECTED group, else its index */
};

static uint64_t fnv64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void meta_line(const char *entry, const void *value, size_t len, void *arg)
{
	buf_printf(arg, "%s %016llx\n", entry, (unsigned long long)fnv64(value, len));
}

/* The annotations of a folder of mailbox guid (folder NULL: the server's) as "entry hash" lines. */
static char *meta_snapshot(struct imap_session *s, const char *guid, const char *folder)
{
	struct buf b = BUF_INIT;
	(void)store_annot_get(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), "/private", -1, meta_line, &b, NULL);
	(void)store_annot_get(s->srv->ls.cfg.store, guid, folder, imap_user_id(s), "/shared", -1, meta_line, &b, NULL);
	return buf_steal(&b);
}

static void folders_free(struct notify_folder *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].name);
		free(f[i].meta);
	}
	free(f);
}

static unsigned folder_events(const struct imap_session *s, const struct notify_folder *f);

static void snapshot(struct imap_session *s, struct notify_folder **f_r, size_t *n_r, char **server_meta_r)
{
	struct imap_notify *nt = s->notify;
	*f_r = NULL;
	*n_r = 0;
	*server_meta_r = NULL;
	bool meta = (nt->all_events | (nt->selected >= 0 ? nt->set.groups[nt->selected].events : 0)) &
		    IMAP_EV_MAILBOX_METADATA_CHANGE;
	struct notify_folder *f = NULL;
	size_t nf = 0;
	for (size_t m = 0; m < nt->nmb; m++) {
		struct store_folder_info *list = NULL;
		size_t n = 0;
		if (store_folder_list(s->srv->ls.cfg.store, nt->mb[m].guid, imap_user_id(s), &list, &n, NULL) != 0)
			continue;
		f = xrealloc(f, (nf + n + 1) * sizeof(*f));
		for (size_t i = 0; i < n; i++) {
			struct notify_folder *x = &f[nf];
			*x = (struct notify_folder){ m,
						     list[i].id,
						     NULL,
						     list[i].uidvalidity,
						     list[i].uidnext,
						     list[i].messages,
						     list[i].highestmodseq,
						     list[i].subscribed != 0,
						     NULL };
			x->name = xasprintf("%s%s", nt->mb[m].prefix, list[i].name);
			/* another mailbox's folder: only one a group names and the user may see (l) */
			if (m > 0 && (folder_events(s, x) == 0 ||
				      !(imap_rights_on(s, nt->mb[m].guid, list[i].name) & STORE_RIGHT_LOOKUP))) {
				free(x->name);
				continue;
			}
			if (meta)
				x->meta = meta_snapshot(s, nt->mb[m].guid, list[i].name);
			nf++;
		}
		store_folder_list_free(&list, n);
	}
	*f_r = f != NULL ? f : xcalloc(1, sizeof(*f));
	*n_r = nf;
	if (nt->all_events & IMAP_EV_SERVER_METADATA_CHANGE)
		*server_meta_r = meta_snapshot(s, s->ls.user.guid, NULL);
}

/* The store name of a folder of the snapshot (its name without its mailbox's prefix). */
static const char *store_name(const struct imap_session *s, const struct notify_folder *f)
{
	return f->name + strlen(s->notify->mb[f->mb].prefix);
}

static bool is_selected(const struct imap_session *s, const struct notify_folder *f)
{
	return s->state == IMAP_ST_SELECTED && s->sel_guid != NULL &&
	       strcasecmp(s->sel_guid, s->notify->mb[f->mb].guid) == 0 && strcmp(s->sel_folder, store_name(s, f)) == 0;
}

/* The events the non-selected groups ask for a folder (PERSONAL, INBOXES and SUBSCRIBED: the own mailbox's only). */
static unsigned folder_events(const struct imap_session *s, const struct notify_folder *f)
{
	const struct imap_notify *nt = s->notify;
	unsigned ev = 0;
	bool own = f->mb == 0;
	for (size_t g = 0; g < nt->set.n; g++) {
		const struct imap_notify_group *grp = &nt->set.groups[g];
		bool match = false;
		switch (grp->filter) {
		case IMAP_NOTIFY_SELECTED:
		case IMAP_NOTIFY_SELECTED_DELAYED: break;
		case IMAP_NOTIFY_INBOXES: match = own && strcmp(f->name, "INBOX") == 0; break;
		case IMAP_NOTIFY_PERSONAL: match = own; break;
		case IMAP_NOTIFY_SUBSCRIBED: match = own && f->subscribed; break;
		case IMAP_NOTIFY_SUBTREE:
		case IMAP_NOTIFY_MAILBOXES:
			for (size_t k = 0; k < nt->names[g].n && !match; k++) {
				const char *m = nt->names[g].v[k];
				size_t ml = strlen(m);
				match = strcmp(f->name, m) == 0 || (grp->filter == IMAP_NOTIFY_SUBTREE &&
								    strncmp(f->name, m, ml) == 0 && f->name[ml] == '/');
			}
			break;
		}
		if (match)
			ev |= grp->events;
	}
	return ev;
}

static void write_status(struct imap_session *s, const struct notify_folder *f)
{
	buf_append_str(&s->out, "* STATUS ");
	imap_write_mailbox(s, &s->out, f->name);
	buf_printf(&s->out, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u", f->messages, f->uidnext, f->uidvalidity);
	if (s->condstore)
		buf_printf(&s->out, " HIGHESTMODSEQ %llu", (unsigned long long)f->modseq);
	buf_append_str(&s->out, ")\r\n");
}

static void write_list(struct imap_session *s, const char *attrs, const char *name, const char *oldname)
{
	buf_printf(&s->out, "* LIST (%s) \"/\" ", attrs);
	imap_write_mailbox(s, &s->out, name);
	if (oldname != NULL) {
		buf_append_str(&s->out, " (\"OLDNAME\" (");
		imap_write_mailbox(s, &s->out, oldname);
		buf_append_str(&s->out, "))");
	}
	buf_append_str(&s->out, "\r\n");
}

/* Whether "entry hash" line l (up to its newline) is among the lines of meta. */
static bool meta_has(const char *meta, const char *l, size_t len)
{
	for (const char *p = meta; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t pl = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (pl == len && memcmp(p, l, len) == 0)
			return true;
		p = nl != NULL ? nl + 1 : p + pl;
	}
	return false;
}

/* Appends the entries whose lines differ between two snapshots (set, changed or removed), each once. */
static void meta_diff(const char *a, const char *b, struct buf *entries)
{
	for (int side = 0; side < 2; side++) {
		const char *from = side == 0 ? a : b, *other = side == 0 ? b : a;
		for (const char *p = from; p != NULL && *p != '\0';) {
			const char *nl = strchr(p, '\n');
			size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
			if (!meta_has(other, p, len)) {
				size_t el = strcspn(p, " ");
				struct buf e = BUF_INIT;
				buf_printf(&e, " %.*s", (int)el, p);
				if (strstr(buf_cstr(entries), buf_cstr(&e)) == NULL) /* the other side's line of it */
					buf_append(entries, e.data, e.len);
				buf_free(&e);
			}
			p = nl != NULL ? nl + 1 : p + len;
		}
	}
}

static void write_meta(struct imap_session *s, const char *name, const char *old, const char *now)
{
	struct buf entries = BUF_INIT;
	meta_diff(old, now, &entries);
	if (entries.len > 0) {
		buf_append_str(&s->out, "* METADATA ");
		imap_write_mailbox(s, &s->out, name);
		buf_append(&s->out, entries.data, entries.len);
		buf_append_str(&s->out, "\r\n");
	}
	buf_free(&entries);
}

static const struct notify_folder *find_id(const struct notify_folder *f, size_t n, size_t mb, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].mb == mb && f[i].id == id)
			return &f[i];
	return NULL;
}

/* STATUS needs the r right (RFC 5465 5: no more than STATUS would tell); the own mailbox has every right. */
static bool may_read(struct imap_session *s, const struct notify_folder *f)
{
	return f->mb == 0 || (imap_rights_on(s, s->notify->mb[f->mb].guid, store_name(s, f)) & STORE_RIGHT_READ);
}

/* Compares a new snapshot with the kept one and writes what the event groups ask for. */
static void notify_diff(struct imap_session *s, const struct notify_folder *nf, size_t nn, const char *server_meta)
{
	struct imap_notify *nt = s->notify;
	for (size_t i = 0; i < nn; i++) {
		const struct notify_folder *f = &nf[i], *o = find_id(nt->f, nt->n, f->mb, f->id);
		unsigned ev = folder_events(s, f);
		if (o != NULL && !(ev & IMAP_EV_MAILBOX_NAME) && strcmp(o->name, f->name) != 0)
			ev |= folder_events(s, o) & IMAP_EV_MAILBOX_NAME; /* renamed out of the groups' names */
		if (ev & IMAP_EV_MAILBOX_NAME) {
			if (o == NULL)
				write_list(s, "", f->name, NULL);
			else if (strcmp(o->name, f->name) != 0)
				write_list(s, "", f->name, o->name);
		}
		if (o == NULL)
			continue;
		if ((ev & IMAP_EV_SUBSCRIPTION_CHANGE) && o->subscribed != f->subscribed)
			write_list(s, f->subscribed ? "\\Subscribed" : "", f->name, NULL);
		if (is_selected(s, f))
			continue; /* its changes come as EXISTS, EXPUNGE and FETCH */
		bool counts = o->messages != f->messages || o->uidnext != f->uidnext ||
			      o->uidvalidity != f->uidvalidity;
		if ((((ev & IMAP_EV_MESSAGE_NEW) && counts) ||
		     ((ev & IMAP_EV_FLAG_CHANGE) && o->modseq != f->modseq)) &&
		    may_read(s, f))
			write_status(s, f);
		if ((ev & IMAP_EV_MAILBOX_METADATA_CHANGE) && o->meta != NULL && f->meta != NULL)
			write_meta(s, f->name, o->meta, f->meta);
	}
	for (size_t i = 0; i < nt->n; i++) {
		const struct notify_folder *o = &nt->f[i];
		if (find_id(nf, nn, o->mb, o->id) == NULL && (folder_events(s, o) & IMAP_EV_MAILBOX_NAME))
			write_list(s, "\\NonExistent", o->name, NULL);
	}
	if ((nt->all_events & IMAP_EV_SERVER_METADATA_CHANGE) && nt->server_meta != NULL && server_meta != NULL)
		write_meta(s, "", nt->server_meta, server_meta);
}

void imap_notify_changed(struct imap_session *s)
{
	struct imap_notify *nt = s->notify;
	if (nt == NULL)
		return;
	struct notify_folder *nf;
	size_t nn;
	char *server_meta;
	snapshot(s, &nf, &nn, &server_meta);
	notify_diff(s, nf, nn, server_meta);
	folders_free(nt->f, nt->n);
	free(nt->server_meta);
	nt->f = nf;
	nt->n = nn;
	nt->server_meta = server_meta;
	/* the selected mailbox at once (SELECTED-DELAYED: expunges wait for a command that allows them) */
	if (nt->selected >= 0 && nt->set.groups[nt->selected].events != 0 && s->state == IMAP_ST_SELECTED && s->dirty)
		imap_sync(s, nt->set.groups[nt->selected].filter == IMAP_NOTIFY_SELECTED, false);
}

bool imap_notify_watches(const struct imap_session *s, const struct imap_watch *w)
{
	for (size_t m = 0; s->notify != NULL && m < s->notify->nmb; m++)
		if (s->notify->mb[m].watch == w)
			return true;
	return false;
}

void imap_notify_end(struct imap_session *s)
{
	struct imap_notify *nt = s->notify;
	if (nt == NULL)
		return;
	s->notify = NULL;
	for (size_t g = 0; g < nt->set.n; g++) {
		for (size_t k = 0; k < nt->names[g].n; k++)
			free(nt->names[g].v[k]);
		free(nt->names[g].v);
	}
	free(nt->names);
	imap_notify_set_free(&nt->set);
	for (size_t m = 0; m < nt->nmb; m++) {
		imap_watch_release(s->srv, &nt->mb[m].watch);
		free(nt->mb[m].guid);
		free(nt->mb[m].prefix);
	}
	free(nt->mb);
	folders_free(nt->f, nt->n);
	free(nt->server_meta);
	free(nt);
}

/* The name a group gives for a folder (a client name, modified UTF-7 or UTF-8) as the snapshot names it: UTF-8, the
 * mailbox's prefix then the store name. NULL when it cannot be decoded. */
static char *client_name(struct imap_session *s, const char *given, const char *folder, const char *guid)
{
	if (strcasecmp(guid, s->ls.user.guid) == 0)
		return xstrdup(folder);
	if (strcasecmp(guid, STORE_PUBLIC_GUID) == 0)
		return xasprintf("%s/%s", IMAP_NS_PUBLIC, folder);
	/* another user's: "Other Users/LOGIN/" as the client wrote it, then the store name */
	struct buf u = BUF_INIT;
	if (s->utf8)
		buf_append_str(&u, given);
	else if (mutf7_to_utf8(given, strlen(given), &u, NULL) != 0) {
		buf_free(&u);
		return NULL;
	}
	const char *p = buf_cstr(&u), *slash = strchr(p + strlen(IMAP_NS_OTHER) + 1, '/');
	char *r = slash != NULL ? xasprintf("%.*s/%s", (int)(slash - p), p, folder) : NULL;
	buf_free(&u);
	return r;
}

/* The mailbox of a folder a group names, added to those watched once (its prefix from name and folder). */
static void mbox_add(struct imap_notify *nt, const char *guid, const char *name, const char *folder)
{
	for (size_t m = 0; m < nt->nmb; m++)
		if (strcasecmp(nt->mb[m].guid, guid) == 0)
			return;
	nt->mb = xrealloc(nt->mb, (nt->nmb + 1) * sizeof(*nt->mb));
	size_t pl = strlen(name) - strlen(folder);
	nt->mb[nt->nmb++] = (struct notify_mbox){ xstrdup(guid), xstrndup(name, pl), NULL };
}

void imap_cmd_notify(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_notify_set set;
	struct buf err = BUF_INIT;
	int ret = imap_notify_parse(cmd->args, cmd->arg_count, &set, &err);
	if (ret == IX_ENOTFOUND) {
		imap_tagged(s, cmd->tag, "NO [BADEVENT (%s)] Event not supported", buf_cstr(&err));
		goto out;
	}
	if (ret != 0) {
		imap_tagged(s, cmd->tag, "BAD %s", buf_cstr(&err));
		goto out;
	}
	imap_notify_end(s);
	if (set.none) {
		imap_tagged(s, cmd->tag, "OK NOTIFY completed.");
		goto out;
	}
	struct imap_notify *nt = xcalloc(1, sizeof(*nt));
	nt->set = set;
	memset(&set, 0, sizeof(set));
	nt->selected = -1;
	nt->names = xcalloc(nt->set.n, sizeof(*nt->names));
	nt->mb = xcalloc(1, sizeof(*nt->mb));
	nt->mb[0] = (struct notify_mbox){ xstrdup(s->ls.user.guid), xstrdup(""), NULL };
	nt->nmb = 1;
	for (size_t g = 0; g < nt->set.n; g++) {
		const struct imap_notify_group *grp = &nt->set.groups[g];
		if (grp->filter == IMAP_NOTIFY_SELECTED || grp->filter == IMAP_NOTIFY_SELECTED_DELAYED) {
			nt->selected = (int)g;
			continue;
		}
		nt->all_events |= grp->events;
		for (size_t k = 0; k < grp->n; k++) {
			char *guid = NULL, *folder = NULL, *name = NULL;
			unsigned rights;
			buf_reset(&err);
			if (imap_resolve_mailbox(s, grp->mailboxes[k], strlen(grp->mailboxes[k]), false, &guid, &folder,
						 &rights, &err) == 0 &&
			    (name = client_name(s, grp->mailboxes[k], folder, guid)) != NULL) {
				mbox_add(nt, guid, name, folder);
				nt->names[g].v = xrealloc(nt->names[g].v, (nt->names[g].n + 1) * sizeof(char *));
				nt->names[g].v[nt->names[g].n++] = name;
			}
			free(guid);
			free(folder);
		}
	}
	for (size_t m = 0; m < nt->nmb; m++)
		nt->mb[m].watch = imap_watch_acquire(s->srv, nt->mb[m].guid);
	s->notify = nt;
	snapshot(s, &nt->f, &nt->n, &nt->server_meta);
	if (nt->set.status)
		for (size_t i = 0; i < nt->n; i++)
			if ((folder_events(s, &nt->f[i]) & IMAP_EV_MESSAGE_NEW) && !is_selected(s, &nt->f[i]) &&
			    may_read(s, &nt->f[i]))
				write_status(s, &nt->f[i]);
	imap_tagged(s, cmd->tag, "OK NOTIFY completed.");
out:
	imap_notify_set_free(&set);
	buf_free(&err);
}
