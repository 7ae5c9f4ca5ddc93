/* imap_urlauth_cmd.c - URLAUTH (RFC 4467): GENURLAUTH (a rump URL of the user's own mailbox authorised with its
 * folder's key), RESETKEY (keys dropped: the URLs they authorised stop working), URLFETCH (the content of authorised
 * URLs, for whom their access identifier names). */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "transport/imap/imap_urlauth.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

/* Whether name (a URL's user, or the user of an access identifier) is this session's user: login or address. */
static bool is_me(const struct imap_session *s, const char *name)
{
	return name != NULL && (strcasecmp(name, s->ls.user.login) == 0 ||
				(s->ls.user.address[0] != '\0' && strcasecmp(name, s->ls.user.address) == 0));
}

static bool host_is_ours(const struct imap_session *s, const struct imap_url *u)
{
	return u->host != NULL && s->srv->ls.cfg.hostname != NULL && strcasecmp(u->host, s->srv->ls.cfg.hostname) == 0;
}

/* A folder of the user's own namespace (not under "Other Users/" or "Public Folders/"). */
static bool personal(const char *mailbox)
{
	size_t o = strlen(IMAP_NS_OTHER), p = strlen(IMAP_NS_PUBLIC);
	return !(strncasecmp(mailbox, IMAP_NS_OTHER, o) == 0 && (mailbox[o] == '/' || mailbox[o] == '\0')) &&
	       !(strncasecmp(mailbox, IMAP_NS_PUBLIC, p) == 0 && (mailbox[p] == '/' || mailbox[p] == '\0'));
}

void imap_cmd_genurlauth(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->arg_count == 0 || cmd->arg_count % 2 != 0) {
		imap_tagged(s, cmd->tag, "BAD GENURLAUTH takes pairs of a rump URL and a mechanism");
		return;
	}
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* GENURLAUTH");
	for (size_t i = 0; i < cmd->arg_count; i += 2) {
		const char *url;
		size_t len;
		struct imap_url u;
		struct buf err = BUF_INIT;
		if (!imap_arg_get_astring(&cmd->args[i], &url, &len) || cmd->args[i].type == IMAP_ARG_NIL ||
		    !imap_arg_atom_equals(&cmd->args[i + 1], "INTERNAL")) {
			imap_tagged(s, cmd->tag, "BAD GENURLAUTH takes pairs of a rump URL and the mechanism INTERNAL");
			buf_free(&out);
			return;
		}
		int ret = imap_url_parse(url, len, &u, &err);
		const char *why = NULL;
		if (ret != 0)
			why = buf_cstr(&err);
		else if (u.access == NULL || u.mechanism != NULL)
			why = "Not a rump URL (it must end with ;URLAUTH=access)";
		else if (!host_is_ours(s, &u) || !is_me(s, u.user))
			why = "The URL must name this server and your own user";
		else if (u.mailbox == NULL || !personal(u.mailbox))
			why = "Only your own mailboxes' URLs are authorised";
		uint8_t key[STORE_URLAUTH_KEY_LEN];
		if (why == NULL &&
		    store_urlauth_key(s->srv->ls.cfg.store, s->ls.user.guid, u.mailbox, 1, key, NULL) != 0)
			why = "No such mailbox";
		if (why != NULL) {
			imap_tagged(s, cmd->tag, "NO %s", why);
			imap_url_free(&u);
			buf_free(&err);
			buf_free(&out);
			return;
		}
		char token[IMAP_URLAUTH_TOKEN_HEX + 1];
		imap_urlauth_token(key, url, len, token);
		OPENSSL_cleanse(key, sizeof(key));
		struct buf full = BUF_INIT;
		buf_append(&full, url, len);
		buf_printf(&full, ":internal:%s", token);
		buf_append_char(&out, ' ');
		imap_write_string(&out, full.data, full.len, 0);
		buf_free(&full);
		imap_url_free(&u);
		buf_free(&err);
	}
	buf_append_str(&out, "\r\n");
	buf_append(&s->out, out.data, out.len);
	buf_free(&out);
	imap_tagged(s, cmd->tag, "OK GENURLAUTH completed.");
}

void imap_cmd_resetkey(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf err = BUF_INIT;
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	const char *name = NULL;
	size_t len = 0;
	if (cmd->arg_count > 0) {
		name = imap_arg_mailbox(cmd, 0, &len);
		for (size_t i = 1; i < cmd->arg_count; i++)
			if (!imap_arg_atom_equals(&cmd->args[i], "INTERNAL")) {
				imap_tagged(s, cmd->tag, "BAD Unknown URLAUTH mechanism");
				return;
			}
		if (name == NULL) {
			imap_tagged(s, cmd->tag, "BAD RESETKEY takes a mailbox name and mechanisms");
			return;
		}
		int ret = imap_resolve_mailbox(s, name, len, false, &guid, &folder, &rights, &err);
		if (ret == 0 && strcasecmp(guid, s->ls.user.guid) != 0)
			ret = IX_ENOTFOUND; /* keys are kept for the user's own mailboxes only */
		if (ret != 0) {
			imap_tagged(s, cmd->tag, "NO [NONEXISTENT] Mailbox doesn't exist.");
			free(guid);
			free(folder);
			buf_free(&err);
			return;
		}
	}
	int ret = store_urlauth_reset(s->srv->ls.cfg.store, s->ls.user.guid, folder, &err);
	if (ret == IX_ENOTFOUND)
		imap_tagged(s, cmd->tag, "NO [NONEXISTENT] Mailbox doesn't exist.");
	else if (ret != 0)
		imap_store_error_reply(s, cmd->tag, ret, &err);
	else if (folder != NULL)
		imap_tagged(s, cmd->tag, "OK [URLMECH INTERNAL] The mailbox's key is reset.");
	else
		imap_tagged(s, cmd->tag, "OK Every mailbox's key is reset.");
	free(guid);
	free(folder);
	buf_free(&err);
}

/* Whether this session may fetch a URL with access identifier access (RFC 4467 section 6). */
static bool access_allowed(const struct imap_session *s, const char *access)
{
	const char *who = NULL;
	switch (imap_url_access_kind(access, &who)) {
	case IMAP_URL_ACCESS_ANONYMOUS:
	case IMAP_URL_ACCESS_AUTHUSER: return true;
	case IMAP_URL_ACCESS_USER: return is_me(s, who);
	/* a submission server acting for the user: here, a server of the organisation that signed in for them */
	case IMAP_URL_ACCESS_SUBMIT: return is_me(s, who) && s->ls.by_server;
	default: return false;
	}
}

/* The content of one authorised URL for this session, or an error. */
static int fetch_one(struct imap_session *s, const char *url, size_t len, struct buf *out, struct buf *err)
{
	struct imap_url u;
	int ret = imap_url_parse(url, len, &u, err);
	struct login_user owner = { 0 };
	const struct login_userdb *db = &s->srv->ls.cfg.users;
	if (ret == 0 && (u.access == NULL || u.mechanism == NULL)) {
		buf_append_str(err, "Not an authorised URL");
		ret = IX_EPERM;
	}
	if (ret == 0 && !access_allowed(s, u.access)) {
		buf_append_str(err, "Its access identifier does not let this session fetch it");
		ret = IX_EPERM;
	}
	if (ret == 0 && (!host_is_ours(s, &u) || u.user == NULL || db->lookup(db->ctx, u.user, &owner) != 0)) {
		buf_append_str(err, "Not a URL of a mailbox of this server");
		ret = IX_EPERM;
	}
	if (ret == 0)
		ret = imap_urlauth_fetch(s->srv->ls.cfg.store, owner.guid, url, &u, (int64_t)time(NULL), out, err);
	login_user_free(&owner);
	imap_url_free(&u);
	return ret;
}

void imap_cmd_urlfetch(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->arg_count == 0) {
		imap_tagged(s, cmd->tag, "BAD URLFETCH takes one or more URLs");
		return;
	}
	for (size_t i = 0; i < cmd->arg_count; i++) {
		const char *url;
		size_t len;
		if (!imap_arg_get_astring(&cmd->args[i], &url, &len) || cmd->args[i].type == IMAP_ARG_NIL) {
			imap_tagged(s, cmd->tag, "BAD URLFETCH takes one or more URLs");
			return;
		}
	}
	for (size_t i = 0; i < cmd->arg_count; i++) {
		const char *url;
		size_t len;
		imap_arg_get_astring(&cmd->args[i], &url, &len);
		struct buf data = BUF_INIT, err = BUF_INIT;
		int ret = fetch_one(s, url, len, &data, &err);
		buf_append_str(&s->out, "* URLFETCH ");
		imap_write_string(&s->out, url, len, 0);
		buf_append_char(&s->out, ' ');
		if (ret == 0) {
			/* always a literal: the content is a message or a part of one (RFC 4467 9: nstring) */
			bool nul = memchr(data.data != NULL ? data.data : "", '\0', data.len) != NULL;
			buf_printf(&s->out, "%s{%zu}\r\n", nul ? "~" : "", data.len);
			buf_append(&s->out, data.data != NULL ? data.data : "", data.len);
		} else {
			log_info("URLFETCH for %s refused: %s", s->ls.user.login, buf_cstr(&err));
			buf_append_str(&s->out, "NIL");
		}
		buf_append_str(&s->out, "\r\n");
		buf_free(&data);
		buf_free(&err);
	}
	imap_tagged(s, cmd->tag, "OK URLFETCH completed.");
}
