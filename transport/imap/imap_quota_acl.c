/* imap_quota_acl.c - QUOTA (RFC 9208: the user's one root "") and ACL (RFC 4314: GETACL, SETACL, DELETEACL,
 * MYRIGHTS, LISTRIGHTS) commands. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void write_quota(struct imap_session *s)
{
	struct store_quota_use use = { 0 };
	store_quota_get(s->srv->ls.cfg.store, s->ls.user.guid, &use, NULL);
	buf_append_str(&s->out, "* QUOTA \"\" (");
	bool any = false;
	if (s->ls.user.quota_bytes > 0) {
		buf_printf(&s->out, "STORAGE %llu %llu", (unsigned long long)((use.bytes + 1023) / 1024),
			   (unsigned long long)(s->ls.user.quota_bytes / 1024));
		any = true;
	}
	if (s->ls.user.quota_messages > 0)
		buf_printf(&s->out, "%sMESSAGE %llu %llu", any ? " " : "", (unsigned long long)use.messages,
			   (unsigned long long)s->ls.user.quota_messages);
	buf_append_str(&s->out, ")\r\n");
}

void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = imap_arg_mailbox(cmd, 0, &len);
	if (name == NULL || cmd->arg_count != 1) {
		imap_tagged(s, cmd->tag, "BAD GETQUOTAROOT needs a mailbox name");
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, false, &guid, &folder, &rights, &err);
	if (ret != 0) {
		imap_store_error_reply(s, cmd->tag, ret, &err);
	} else {
		buf_append_str(&s->out, "* QUOTAROOT ");
		imap_write_astring(&s->out, name, len, 0);
		if (strcasecmp(guid, s->ls.user.guid) == 0) {
			buf_append_str(&s->out, " \"\"\r\n");
			write_quota(s);
		} else {
			buf_append_str(&s->out, "\r\n");
		}
		imap_tagged(s, cmd->tag, "OK Getquotaroot completed.");
	}
	free(guid);
	free(folder);
	buf_free(&err);
}

void imap_cmd_getquota(struct imap_session *s, const struct imap_command *cmd)
{
	const char *root;
	size_t len;
	if (cmd->arg_count != 1 || !imap_arg_get_astring(&cmd->args[0], &root, &len)) {
		imap_tagged(s, cmd->tag, "BAD GETQUOTA needs a quota root");
		return;
	}
	if (len != 0) {
		imap_tagged(s, cmd->tag, "NO [NONEXISTENT] No such quota root.");
		return;
	}
	write_quota(s);
	imap_tagged(s, cmd->tag, "OK Getquota completed.");
}

void imap_cmd_setquota(struct imap_session *s, const struct imap_command *cmd)
{
	imap_tagged(s, cmd->tag, "NO [NOPERM] Quotas are set in the directory by an administrator.");
}

void imap_cmd_acl(struct imap_session *s, const struct imap_command *cmd)
{
	size_t len;
	const char *name = imap_arg_mailbox(cmd, 0, &len);
	bool get = strcmp(cmd->name, "GETACL") == 0, set = strcmp(cmd->name, "SETACL") == 0,
	     del = strcmp(cmd->name, "DELETEACL") == 0, my = strcmp(cmd->name, "MYRIGHTS") == 0,
	     listr = strcmp(cmd->name, "LISTRIGHTS") == 0;
	size_t want = get || my ? 1 : set ? 3 : 2;
	const char *id = NULL, *rs = NULL;
	size_t idlen = 0, rslen = 0;
	if (name == NULL || cmd->arg_count != want ||
	    (want >= 2 && !imap_arg_get_astring(&cmd->args[1], &id, &idlen)) ||
	    (want == 3 && !imap_arg_get_astring(&cmd->args[2], &rs, &rslen)) ||
	    (id != NULL && (idlen == 0 || idlen >= STORE_ACL_ID_MAX || memchr(id, '\0', idlen) != NULL))) {
		imap_tagged(s, cmd->tag, "BAD Bad %s arguments", cmd->name);
		return;
	}
	char *guid = NULL, *folder = NULL;
	unsigned rights = 0;
	struct buf err = BUF_INIT, tmp = BUF_INIT;
	int ret = imap_resolve_mailbox(s, name, len, true, &guid, &folder, &rights, &err);
	if (ret == 0 && !(rights & (STORE_RIGHT_LOOKUP | STORE_RIGHT_ADMIN)))
		ret = IX_ENOTFOUND;
	if (ret == 0 && !my && !(rights & STORE_RIGHT_ADMIN)) {
		ret = IX_EPERM;
		buf_append_str(&err, "You may not administer this mailbox");
	}
	if (ret != 0) {
		if (ret == IX_ENOTFOUND) {
			buf_reset(&err);
			buf_append_str(&err, "Mailbox doesn't exist");
		}
		imap_store_error_reply(s, cmd->tag, ret, &err);
		goto out;
	}
	if (my) {
		store_rights_format(rights, &tmp);
		buf_append_str(&s->out, "* MYRIGHTS ");
		imap_write_astring(&s->out, name, len, 0);
		buf_printf(&s->out, " %s\r\n", buf_cstr(&tmp));
	} else if (listr) {
		buf_append_str(&s->out, "* LISTRIGHTS ");
		imap_write_astring(&s->out, name, len, 0);
		buf_append_char(&s->out, ' ');
		imap_write_astring(&s->out, id, idlen, 0);
		buf_append_str(&s->out, " \"\" l r s w i p k x t e a\r\n");
	} else if (get) {
		ret = store_acl_list(s->srv->ls.cfg.store, guid, folder, &tmp, &err);
		if (ret != 0) {
			imap_store_error_reply(s, cmd->tag, ret, &err);
			goto out;
		}
		buf_append_str(&s->out, "* ACL ");
		imap_write_astring(&s->out, name, len, 0);
		/* a user's mailbox: its owner and whoever has full access have every right (not stored in the ACL) */
		const char *owner = strcasecmp(guid, s->ls.user.guid) == 0 ? s->ls.user.login : imap_owner_of(s, guid);
		if (owner != NULL) {
			buf_printf(&s->out, " %s lrswipkxtea", owner);
			struct buf full = BUF_INIT;
			const struct login_userdb *db = &s->srv->ls.cfg.users;
			if (db->full_access != NULL)
				db->full_access(db->ctx, owner, &full);
			for (size_t i = 0; i < full.len; i += strlen(full.data + i) + 1)
				buf_printf(&s->out, " %s lrswipkxtea", full.data + i);
			buf_free(&full);
		}
		char *save = NULL;
		for (char *line = strtok_r(tmp.data != NULL ? tmp.data : (char *)"", "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char *sp = strrchr(line, ' ');
			if (sp == NULL)
				continue;
			*sp = '\0';
			buf_append_char(&s->out, ' ');
			imap_write_astring(&s->out, line, strlen(line), 0);
			buf_printf(&s->out, " %s", sp + 1);
		}
		buf_append_str(&s->out, "\r\n");
	} else {
		char *ident = xstrndup(id, idlen);
		unsigned newr = 0;
		int mode = 0;
		if (set && rslen > 0 && (rs[0] == '+' || rs[0] == '-')) {
			mode = rs[0] == '+' ? 1 : -1;
			rs++;
			rslen--;
		}
		char *rcopy = set ? xstrndup(rs, rslen) : xstrdup("");
		if (set && store_rights_parse(rcopy, &newr) != 0) {
			imap_tagged(s, cmd->tag, "BAD Unknown rights in \"%s\"", rcopy);
			free(rcopy);
			free(ident);
			goto out;
		}
		if (mode != 0) {
			/* the identifier's current entry, from the listing */
			unsigned cur = 0;
			if (store_acl_list(s->srv->ls.cfg.store, guid, folder, &tmp, NULL) == 0) {
				char *save = NULL;
				for (char *line = strtok_r(tmp.data != NULL ? tmp.data : (char *)"", "\n", &save);
				     line != NULL; line = strtok_r(NULL, "\n", &save)) {
					char *sp = strrchr(line, ' ');
					if (sp != NULL && (size_t)(sp - line) == idlen &&
					    strncmp(line, ident, idlen) == 0)
						store_rights_parse(sp + 1, &cur);
				}
			}
			newr = mode > 0 ? (cur | newr) : (cur & ~newr);
		}
		ret = store_acl_set(s->srv->ls.cfg.store, guid, folder, ident, del ? 0 : newr, &err);
		free(rcopy);
		free(ident);
		if (ret != 0) {
			imap_store_error_reply(s, cmd->tag, ret, &err);
			goto out;
		}
	}
	imap_tagged(s, cmd->tag, "OK %s completed.", cmd->name);
out:
	free(guid);
	free(folder);
	buf_free(&err);
	buf_free(&tmp);
}
