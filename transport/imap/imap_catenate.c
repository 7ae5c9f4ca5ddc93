/* imap_catenate.c - CATENATE (RFC 4469): an APPEND message made of TEXT literals and the content of IMAP URLs naming
 * messages and parts of this server's mailboxes the user may read; the content behind such a URL. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_url.h"
#include "common/err.h"
#include "common/spool.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Whether an absolute URL's server part names this server and its user (if any) this session's user. */
static bool url_is_ours(struct imap_session *s, const struct imap_url *u)
{
	if (u->host == NULL)
		return true;
	const char *host = s->srv->ls.cfg.hostname;
	if (host == NULL || strcasecmp(u->host, host) != 0)
		return false;
	return u->user == NULL || strcasecmp(u->user, s->ls.user.login) == 0 ||
	       (s->ls.user.address[0] != '\0' && strcasecmp(u->user, s->ls.user.address) == 0);
}

int imap_url_content(struct imap_session *s, const struct imap_url *u, struct buf *out, struct buf *error_r)
{
	if (!url_is_ours(s, u)) {
		buf_append_str(error_r, "The URL names another server or another user");
		return IX_EPERM;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	int ret = 0;
	if (u->mailbox == NULL) {
		if (s->state != IMAP_ST_SELECTED) {
			buf_append_str(error_r, "A relative URL needs a selected mailbox");
			return IX_EINVAL;
		}
		guid = xstrdup(s->sel_guid);
		folder = xstrdup(s->sel_folder);
		rights = s->rights;
	} else {
		ret = imap_resolve_mailbox_utf8(s, u->mailbox, &guid, &folder, &rights, error_r);
	}
	struct store *st = s->srv->ls.cfg.store;
	struct store_folder_info fi = { 0 };
	if (ret == 0 && !(rights & STORE_RIGHT_READ)) {
		buf_append_str(error_r, "No such message");
		ret = IX_ENOTFOUND;
	}
	if (ret == 0 && (ret = store_folder_status(st, guid, folder, NULL, &fi, NULL)) != 0)
		buf_append_str(error_r, "No such mailbox");
	if (ret == 0 && u->uidvalidity != 0 && u->uidvalidity != fi.uidvalidity) {
		buf_append_str(error_r, "The mailbox's UIDVALIDITY has changed");
		ret = IX_ENOTFOUND;
	}
	struct buf spec = BUF_INIT;
	if (ret == 0 && imap_url_section_spec(u, &spec) != 0) {
		buf_append_str(error_r, "Only HEADER, TEXT, MIME and part sections are served");
		ret = IX_EINVAL;
	}
	if (ret == 0) {
		size_t before = out->len;
		ret = store_fetch_section(st, guid, folder, u->uid, buf_cstr(&spec), u->partial ? u->partial_offset : 0,
					  u->partial ? u->partial_length : 0, out, NULL);
		if (ret != 0) {
			out->len = before;
			buf_append_str(error_r, ret == IX_ENOTFOUND ? "No such message or section" : "Cannot read it");
		}
	}
	store_folder_info_free(&fi);
	buf_free(&spec);
	free(guid);
	free(folder);
	return ret;
}

/* Answers a failed CATENATE part: NO [BADURL url] (RFC 4469 5; the url as the client gave it, unquoted as the
 * grammar's url-resp-text wants it, so one holding "]" or a line end is not echoed). */
static void bad_url(struct imap_session *s, const struct imap_command *cmd, const char *url, size_t len,
		    const struct buf *why)
{
	bool echo = len > 0 && len <= 1024 && memchr(url, ']', len) == NULL && memchr(url, '\r', len) == NULL &&
		    memchr(url, '\n', len) == NULL;
	imap_tagged(s, cmd->tag, "NO [BADURL %.*s] %s.", echo ? (int)len : 1, echo ? url : "-",
		    why->len > 0 ? buf_cstr(why) : "Bad URL");
}

int imap_catenate(struct imap_session *s, const struct imap_command *cmd, const struct imap_arg *list, struct buf *out)
{
	uint64_t max = s->srv->max_message_size;
	if (list->type != IMAP_ARG_LIST || list->list_count == 0 || list->list_count % 2 != 0) {
		imap_tagged(s, cmd->tag, "BAD CATENATE takes a list of TEXT literal and URL url parts");
		return IX_EINVAL;
	}
	for (size_t i = 0; i < list->list_count; i += 2) {
		const struct imap_arg *kind = &list->list[i], *val = &list->list[i + 1];
		const char *v;
		size_t vlen;
		struct buf err = BUF_INIT;
		if (imap_arg_atom_equals(kind, "TEXT") && val->type == IMAP_ARG_LITERAL &&
		    imap_arg_get_string(val, &v, &vlen)) {
			if (val->sunk && spool_view(&s->lit, &v, &vlen, &err) != 0) {
				imap_tagged(s, cmd->tag, "NO [UNAVAILABLE] %s; try again.", buf_cstr(&err));
				buf_free(&err);
				return IX_EUNAVAIL;
			}
			buf_append(out, v, vlen);
		} else if (imap_arg_atom_equals(kind, "URL") && val->type != IMAP_ARG_LIST &&
			   val->type != IMAP_ARG_NIL && imap_arg_get_astring(val, &v, &vlen)) {
			struct imap_url u;
			int ret = imap_url_parse(v, vlen, &u, &err);
			if (ret == 0 && u.access != NULL) {
				buf_append_str(&err, "URLAUTH URLs are not taken by CATENATE");
				ret = IX_EINVAL;
			}
			if (ret == 0)
				ret = imap_url_content(s, &u, out, &err);
			imap_url_free(&u);
			if (ret != 0) {
				bad_url(s, cmd, v, vlen, &err);
				buf_free(&err);
				return ret;
			}
		} else {
			imap_tagged(s, cmd->tag, "BAD CATENATE takes a list of TEXT literal and URL url parts");
			return IX_EINVAL;
		}
		buf_free(&err);
		if (out->len > max) {
			imap_tagged(s, cmd->tag, "NO [TOOBIG] The message would be larger than the %llu bytes allowed.",
				    (unsigned long long)max);
			return IX_ELIMIT;
		}
	}
	return 0;
}
