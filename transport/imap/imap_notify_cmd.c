/* imap_notify_cmd.c - NOTIFY (RFC 5465) for the user's own mailbox: the command, a snapshot of every folder (counts,
 * name, subscription, annotations) taken again when the mailbox's store watch fires, and the untagged STATUS, LIST
 * and METADATA responses the differences make for the folders the event groups name; the selected mailbox's
 * EXISTS/EXPUNGE/FETCH sent as soon as its watch fires. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/imap/imap_notify.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct notify_folder {
	uint32_t id;
	char *name;
	uint32_t uidvalidity, uidnext, messages;
	uint64_t modseq;
	bool subscribed;
	char *meta; /* "entry hash\n" per annotation the user sees, in key order (NULL: not tracked) */
};

struct notify_names {
	char **v;
	size_t n;
};

struct imap_notify {
	struct imap_notify_set set;
	struct notify_names *names; /* per group: the own mailbox's folders SUBTREE/MAILBOXES name (store names) */
	struct imap_watch *watch;   /* the user's own mailbox */
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

/* The annotations of a folder (NULL: the server's) as "entry hash" lines. */
static char *meta_snapshot(struct imap_session *s, const char *folder)
{
	struct buf b = BUF_INIT;
	(void)store_annot_get(s->srv->ls.cfg.store, s->ls.user.guid, folder, imap_user_id(s), "/private", -1, meta_line,
			      &b, NULL);
	(void)store_annot_get(s->srv->ls.cfg.store, s->ls.user.guid, folder, imap_user_id(s), "/shared", -1, meta_line,
			      &b, NULL);
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

static void snapshot(struct imap_session *s, struct notify_folder **f_r, size_t *n_r, char **server_meta_r)
{
	struct store_folder_info *list = NULL;
	size_t n = 0;
	*f_r = NULL;
	*n_r = 0;
	*server_meta_r = NULL;
	if (store_folder_list(s->srv->ls.cfg.store, s->ls.user.guid, imap_user_id(s), &list, &n, NULL) != 0)
		return;
	bool meta = (s->notify->all_events |
		     (s->notify->selected >= 0 ? s->notify->set.groups[s->notify->selected].events : 0)) &
		    IMAP_EV_MAILBOX_METADATA_CHANGE;
	struct notify_folder *f = xcalloc(n > 0 ? n : 1, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f[i] = (struct notify_folder){
			list[i].id,       xstrdup(list[i].name), list[i].uidvalidity,     list[i].uidnext,
			list[i].messages, list[i].highestmodseq, list[i].subscribed != 0, NULL
		};
		if (meta)
			f[i].meta = meta_snapshot(s, list[i].name);
	}
	store_folder_list_free(&list, n);
	*f_r = f;
	*n_r = n;
	if (s->notify->all_events & IMAP_EV_SERVER_METADATA_CHANGE)
		*server_meta_r = meta_snapshot(s, NULL);
}

static bool is_selected(const struct imap_session *s, const char *name)
{
	return s->state == IMAP_ST_SELECTED && s->sel_guid != NULL && strcasecmp(s->sel_guid, s->ls.user.guid) == 0 &&
	       strcmp(s->sel_folder, name) == 0;
}

/* The events the non-selected groups ask for a folder of the own mailbox. */
static unsigned folder_events(const struct imap_session *s, const struct notify_folder *f)
{
	const struct imap_notify *nt = s->notify;
	unsigned ev = 0;
	for (size_t g = 0; g < nt->set.n; g++) {
		const struct imap_notify_group *grp = &nt->set.groups[g];
		bool match = false;
		switch (grp->filter) {
		case IMAP_NOTIFY_SELECTED:
		case IMAP_NOTIFY_SELECTED_DELAYED: break;
		case IMAP_NOTIFY_INBOXES: match = strcmp(f->name, "INBOX") == 0; break;
		case IMAP_NOTIFY_PERSONAL: match = true; break;
		case IMAP_NOTIFY_SUBSCRIBED: match = f->subscribed; break;
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

static const struct notify_folder *find_id(const struct notify_folder *f, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].id == id)
			return &f[i];
	return NULL;
}

/* Compares a new snapshot with the kept one and writes what the event groups ask for. */
static void notify_diff(struct imap_session *s, const struct notify_folder *nf, size_t nn, const char *server_meta)
{
	struct imap_notify *nt = s->notify;
	for (size_t i = 0; i < nn; i++) {
		const struct notify_folder *f = &nf[i], *o = find_id(nt->f, nt->n, f->id);
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
		if (is_selected(s, f->name))
			continue; /* its changes come as EXISTS, EXPUNGE and FETCH */
		bool counts = o->messages != f->messages || o->uidnext != f->uidnext ||
			      o->uidvalidity != f->uidvalidity;
		if (((ev & IMAP_EV_MESSAGE_NEW) && counts) || ((ev & IMAP_EV_FLAG_CHANGE) && o->modseq != f->modseq))
			write_status(s, f);
		if ((ev & IMAP_EV_MAILBOX_METADATA_CHANGE) && o->meta != NULL && f->meta != NULL)
			write_meta(s, f->name, o->meta, f->meta);
	}
	for (size_t i = 0; i < nt->n; i++) {
		const struct notify_folder *o = &nt->f[i];
		if (find_id(nf, nn, o->id) == NULL && (folder_events(s, o) & IMAP_EV_MAILBOX_NAME))
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
	return s->notify != NULL && s->notify->watch == w;
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
	imap_watch_release(s->srv, &nt->watch);
	folders_free(nt->f, nt->n);
	free(nt->server_meta);
	free(nt);
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
	for (size_t g = 0; g < nt->set.n; g++) {
		const struct imap_notify_group *grp = &nt->set.groups[g];
		if (grp->filter == IMAP_NOTIFY_SELECTED || grp->filter == IMAP_NOTIFY_SELECTED_DELAYED) {
			nt->selected = (int)g;
			continue;
		}
		nt->all_events |= grp->events;
		for (size_t k = 0; k < grp->n; k++) {
			char *guid = NULL, *folder = NULL;
			unsigned rights;
			buf_reset(&err);
			if (imap_resolve_mailbox(s, grp->mailboxes[k], strlen(grp->mailboxes[k]), false, &guid, &folder,
						 &rights, &err) == 0 &&
			    strcasecmp(guid, s->ls.user.guid) == 0) {
				nt->names[g].v = xrealloc(nt->names[g].v, (nt->names[g].n + 1) * sizeof(char *));
				nt->names[g].v[nt->names[g].n++] = folder;
				folder = NULL;
			}
			free(guid);
			free(folder);
		}
	}
	s->notify = nt;
	nt->watch = imap_watch_acquire(s->srv, s->ls.user.guid);
	snapshot(s, &nt->f, &nt->n, &nt->server_meta);
	if (nt->set.status)
		for (size_t i = 0; i < nt->n; i++)
			if ((folder_events(s, &nt->f[i]) & IMAP_EV_MESSAGE_NEW) && !is_selected(s, nt->f[i].name))
				write_status(s, &nt->f[i]);
	imap_tagged(s, cmd->tag, "OK NOTIFY completed.");
out:
	imap_notify_set_free(&set);
	buf_free(&err);
}
