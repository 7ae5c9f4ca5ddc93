/* imap_mailbox.c - mailbox names, namespaces and rights: a client name (modified UTF-7 or UTF-8) resolved to a store
 * mailbox and folder with this user's rights, the public folders' store side, names written back, quota limits. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "common/err.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "transport/imap/mutf7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap_mailbox_quota(const struct imap_session *s, const char *guid, uint64_t *bytes_r, uint64_t *messages_r)
{
	*bytes_r = *messages_r = 0;
	if (strcasecmp(guid, s->ls.user.guid) == 0) {
		*bytes_r = s->ls.user.quota_bytes;
		*messages_r = s->ls.user.quota_messages;
	} else if (strcasecmp(guid, s->other_guid) == 0) {
		*bytes_r = s->other_quota_bytes;
		*messages_r = s->other_quota_messages;
	}
}

const char *imap_user_id(const struct imap_session *s)
{
	return s->ls.user.login;
}

static void load_ids(struct imap_session *s)
{
	if (s->ids != NULL)
		return;
	struct buf ids = BUF_INIT;
	buf_append(&ids, s->ls.user.login, strlen(s->ls.user.login) + 1);
	if (s->ls.user.address[0] != '\0')
		buf_append(&ids, s->ls.user.address, strlen(s->ls.user.address) + 1);
	if (s->srv->ls.cfg.users.groups != NULL)
		s->srv->ls.cfg.users.groups(s->srv->ls.cfg.users.ctx, s->ls.user.dn, &ids);
	size_t n = 0;
	for (size_t i = 0; i < ids.len; i++)
		if (ids.data[i] == '\0')
			n++;
	s->ids = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0, start = 0; i < ids.len; i++)
		if (ids.data[i] == '\0') {
			s->ids[s->nids++] = xstrdup(ids.data + start);
			start = i + 1;
		}
	buf_free(&ids);
}

void imap_note_owner(struct imap_session *s, const char *guid, const char *login)
{
	if (imap_owner_of(s, guid) != NULL)
		return;
	s->owners = xrealloc(s->owners, (s->nowners + 1) * sizeof(*s->owners));
	struct imap_owner *o = &s->owners[s->nowners++];
	snprintf(o->guid, sizeof(o->guid), "%s", guid);
	o->login = xstrdup(login);
}

const char *imap_owner_of(const struct imap_session *s, const char *guid)
{
	for (size_t i = s->nowners; i > 0; i--) /* the latest first: LIST asks about the one it just noted */
		if (strcasecmp(s->owners[i - 1].guid, guid) == 0)
			return s->owners[i - 1].login;
	return NULL;
}

void imap_forget_owners(struct imap_session *s)
{
	for (size_t i = 0; i < s->nowners; i++)
		free(s->owners[i].login);
	free(s->owners);
	s->owners = NULL;
	s->nowners = 0;
}

bool imap_mailbox_is_ours(struct imap_session *s, const char *guid)
{
	if (strcasecmp(guid, s->ls.user.guid) == 0)
		return true;
	/* full access (user delegate --full-access), read live from the directory */
	const char *owner = imap_owner_of(s, guid);
	return owner != NULL && login_full_access(&s->srv->ls.cfg.users, owner, s->ls.user.login);
}

unsigned imap_rights_on(struct imap_session *s, const char *guid, const char *folder)
{
	if (imap_mailbox_is_ours(s, guid))
		return STORE_RIGHTS_ALL;
	load_ids(s);
	unsigned r = 0;
	if (store_acl_rights(s->srv->ls.cfg.store, guid, folder, (const char *const *)s->ids, s->nids, &r, NULL) != 0)
		return 0;
	return r;
}

/* Creates the store side of the directory's public folders that do not have one yet, with the default ACL. */
void imap_public_sync(struct imap_session *s)
{
	if (s->srv->ls.cfg.users.public_folders == NULL)
		return;
	struct buf paths = BUF_INIT;
	s->srv->ls.cfg.users.public_folders(s->srv->ls.cfg.users.ctx, &paths);
	struct store *st = s->srv->ls.cfg.store;
	for (size_t i = 0; i < paths.len;) {
		const char *p = paths.data + i;
		i += strlen(p) + 1;
		while (*p == '/')
			p++;
		if (*p == '\0')
			continue;
		store_public_folder_ensure(st, p, NULL);
	}
	buf_free(&paths);
}

static bool has_prefix_ci(const char *s, size_t len, const char *prefix, size_t *plen_r)
{
	size_t pl = strlen(prefix);
	if (len < pl || strncasecmp(s, prefix, pl) != 0)
		return false;
	if (len > pl && s[pl] != '/')
		return false;
	*plen_r = len > pl ? pl + 1 : pl;
	return true;
}

static int resolve_utf8(struct imap_session *s, struct buf *u, bool create_public, char **guid_r, char **folder_r,
			unsigned *rights_r, struct buf *error_r);

int imap_resolve_mailbox(struct imap_session *s, const char *name, size_t len, bool create_public, char **guid_r,
			 char **folder_r, unsigned *rights_r, struct buf *error_r)
{
	struct buf u = BUF_INIT;
	if (memchr(name, '\0', len) != NULL) {
		buf_append_str(error_r, "Mailbox name contains NUL");
		return IX_EINVAL;
	}
	if (len == 5 && strncasecmp(name, "INBOX", 5) == 0) {
		buf_append_str(&u, "INBOX");
	} else if (s->utf8) {
		/* RFC 6855: after ENABLE UTF8=ACCEPT names are UTF-8 (checked with the name rules below) */
		if (!utf8_valid(name, len)) {
			buf_append_str(error_r, "Mailbox name is not valid UTF-8");
			return IX_EINVAL;
		}
		buf_append(&u, name, len);
	} else if (mutf7_to_utf8(name, len, &u, error_r) != 0) {
		buf_free(&u);
		return IX_EINVAL;
	}
	return resolve_utf8(s, &u, create_public, guid_r, folder_r, rights_r, error_r);
}

int imap_resolve_mailbox_utf8(struct imap_session *s, const char *name, char **guid_r, char **folder_r,
			      unsigned *rights_r, struct buf *error_r)
{
	struct buf u = BUF_INIT;
	size_t len = strlen(name);
	if (!utf8_valid(name, len)) {
		buf_append_str(error_r, "Mailbox name is not valid UTF-8");
		return IX_EINVAL;
	}
	if (len == 5 && strncasecmp(name, "INBOX", 5) == 0)
		buf_append_str(&u, "INBOX");
	else
		buf_append(&u, name, len);
	return resolve_utf8(s, &u, false, guid_r, folder_r, rights_r, error_r);
}

/* The rest of imap_resolve_mailbox, from the name in UTF-8 (u, freed here). */
static int resolve_utf8(struct imap_session *s, struct buf *u_in, bool create_public, char **guid_r, char **folder_r,
			unsigned *rights_r, struct buf *error_r)
{
	struct buf u = *u_in;
	while (u.len > 0 && u.data[u.len - 1] == '/')
		u.data[--u.len] = '\0';
	size_t pl = 0;
	int ret = 0;
	if (has_prefix_ci(buf_cstr(&u), u.len, IMAP_NS_PUBLIC, &pl)) {
		const char *f = buf_cstr(&u) + pl;
		if (*f == '\0') {
			/* the namespace's root (RFC 2342), listed \Noselect: it exists and holds folders, never messages */
			buf_append_str(error_r, IMAP_NS_PUBLIC " is the root of the public folders (\\Noselect): "
							       "select a folder under it");
			ret = IX_EINVAL;
		} else {
			if (create_public)
				imap_public_sync(s);
			*guid_r = xstrdup(STORE_PUBLIC_GUID);
			*folder_r = xstrdup(f);
			*rights_r = imap_rights_on(s, *guid_r, f);
		}
	} else if (has_prefix_ci(buf_cstr(&u), u.len, IMAP_NS_OTHER, &pl)) {
		const char *rest = buf_cstr(&u) + pl;
		const char *slash = strchr(rest, '/');
		struct login_user other;
		char *login = slash != NULL ? xstrndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
		if (slash == NULL || slash[1] == '\0' ||
		    s->srv->ls.cfg.users.lookup(s->srv->ls.cfg.users.ctx, login, &other) != 0) {
			ret = IX_ENOTFOUND;
		} else {
			*guid_r = xstrdup(other.guid);
			*folder_r = xstrdup(slash + 1);
			imap_note_owner(s, other.guid, other.login);
			snprintf(s->other_guid, sizeof(s->other_guid), "%s", other.guid);
			s->other_quota_bytes = other.quota_bytes;
			s->other_quota_messages = other.quota_messages;
			*rights_r = imap_rights_on(s, *guid_r, *folder_r);
			login_user_free(&other);
		}
		free(login);
	} else {
		if (u.len == 0 || mutf7_mailbox_name_check(buf_cstr(&u), u.len, '/', error_r) != 0) {
			if (u.len == 0)
				buf_append_str(error_r, "Empty mailbox name");
			ret = IX_EINVAL;
		} else {
			*guid_r = xstrdup(s->ls.user.guid);
			*folder_r = xstrdup(buf_cstr(&u));
			*rights_r = STORE_RIGHTS_ALL;
		}
	}
	if (ret == IX_ENOTFOUND && error_r != NULL && error_r->len == 0)
		buf_append_str(error_r, "Mailbox doesn't exist");
	buf_free(&u);
	return ret;
}

/* Writes a UTF-8 folder name as the client sees it (modified UTF-7, quoted). */
void imap_write_mailbox(struct imap_session *s, struct buf *out, const char *utf8)
{
	struct buf m = BUF_INIT, err = BUF_INIT;
	if (s->utf8 || mutf7_from_utf8(utf8, strlen(utf8), &m, &err) != 0) {
		buf_reset(&m);
		buf_append_str(&m, utf8);
	}
	buf_free(&err);
	imap_write_string(out, m.data != NULL ? m.data : "", m.len, s->utf8 ? IMAP_WRITE_UTF8 : 0);
	buf_free(&m);
}

const char *imap_arg_mailbox(const struct imap_command *cmd, size_t i, size_t *len_r)
{
	const char *name;
	if (i >= cmd->arg_count || !imap_arg_get_mailbox(&cmd->args[i], &name, len_r))
		return NULL;
	return name;
}
