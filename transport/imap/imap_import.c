/* imap_import.c - X-IX-IMPORT, the private IMAP command of a mailbox move (`interchange user move`): the source
 * server logs in as the organisation administrator acting for the user, then copies folders and messages keeping
 * their UIDVALIDITY and UIDs. See docs/multi-server.md, "Moving a mailbox". Ordinary users are refused.
 *
 *   X-IX-IMPORT LOGIN user admin-password          (not authenticated; TLS or loopback) -> authenticated as user
 *   X-IX-IMPORT BEGIN                              drops a frozen copy left here by an earlier move away, marks
 *                                                  the copy incomplete (STORE_MARK_INCOMPLETE) until COMMIT
 *   X-IX-IMPORT FOLDERS                            * X-IX-IMPORT FOLDER uidvalidity uidnext subscribed {n} name
 *   X-IX-IMPORT UIDS name                          * X-IX-IMPORT UID uid flags [keyword ...]   (flags: store bits)
 *   X-IX-IMPORT FOLDER name uidvalidity uidnext highestmodseq subscribed
 *   X-IX-IMPORT APPEND name uid flags date keywords message
 *   X-IX-IMPORT APPENDS name uid flags date savedate keywords message   APPEND with the save date (RFC 8514)
 *   X-IX-IMPORT FLAGS name uid flags keywords
 *   X-IX-IMPORT EXPUNGE name uid
 *   X-IX-IMPORT DELETE name
 *   X-IX-IMPORT SIEVE name active script           a Sieve script (store_sieve_put), the active one if active
 *   X-IX-IMPORT COMMIT                             the home server was switched here: the copy is complete
 * Names are store names (UTF-8, '/' separated), sent as strings or literals; keywords one space-separated string. */
#include "transport/imap/imap_session_int.h"
#include "common/err.h"
#include "transport/login/login_auth.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

enum import_op {
	IMP_LOGIN,
	IMP_BEGIN,
	IMP_FOLDERS,
	IMP_UIDS,
	IMP_FOLDER,
	IMP_APPEND,
	IMP_FLAGS,
	IMP_EXPUNGE,
	IMP_DELETE,
	IMP_COMMIT,
	IMP_SIEVE,
	IMP_APPENDS
};

static const char *const import_ops[] = { "LOGIN", "BEGIN",   "FOLDERS", "UIDS",   "FOLDER", "APPEND",
					  "FLAGS", "EXPUNGE", "DELETE",  "COMMIT", "SIEVE",  "APPENDS" };

struct import_job {
	struct imap_session *s;
	enum import_op op;
	char *tag;
	char *guid; /* the user's mailbox (after login) */
	char *name; /* folder, or the login for LOGIN */
	char *pass;
	size_t passlen;
	char *keywords;
	uint64_t n[5];   /* numeric arguments in order */
	const char *msg; /* APPEND: held by the parser until the job is done */
	size_t msglen;
	/* results */
	int ret;
	struct login_user found;
	struct buf out;  /* untagged lines */
	struct buf text; /* the tagged answer after OK/NO */
};

static void import_job_free(struct import_job *j)
{
	free(j->tag);
	free(j->guid);
	free(j->name);
	if (j->pass != NULL) {
		memset(j->pass, 0, j->passlen);
		free(j->pass);
	}
	free(j->keywords);
	login_user_free(&j->found);
	buf_free(&j->out);
	buf_free(&j->text);
	free(j);
}

static void run_folders(struct import_job *j, struct store *st)
{
	struct store_folder_info *list = NULL;
	size_t count = 0;
	j->ret = store_folder_list(st, j->guid, NULL, &list, &count, &j->text);
	if (j->ret == IX_ENOTFOUND) {
		buf_reset(&j->text);
		j->ret = 0;
	}
	for (size_t i = 0; i < count; i++)
		buf_printf(&j->out, "* X-IX-IMPORT FOLDER %u %u %d {%zu}\r\n%s\r\n", list[i].uidvalidity,
			   list[i].uidnext, list[i].subscribed ? 1 : 0, strlen(list[i].name), list[i].name);
	store_folder_list_free(&list, count);
}

static void run_uids(struct import_job *j, struct store *st)
{
	struct store_msg *msgs = NULL;
	size_t count = 0;
	j->ret = store_msg_list(st, j->guid, j->name, NULL, &msgs, &count, &j->text);
	for (size_t i = 0; i < count; i++)
		buf_printf(&j->out, "* X-IX-IMPORT UID %u %u%s%s\r\n", msgs[i].uid, msgs[i].flags & ~STORE_FLAG_RECENT,
			   *msgs[i].keywords ? " " : "", msgs[i].keywords);
	store_msg_list_free(&msgs, count);
}

static void import_run(void *arg)
{
	struct import_job *j = arg;
	struct imap_server *srv = j->s->srv;
	struct store *st = srv->ls.cfg.store;
	switch (j->op) {
	case IMP_LOGIN:
		j->ret = srv->ls.cfg.users.check_admin == NULL
				 ? IX_EAUTH
				 : srv->ls.cfg.users.check_admin(srv->ls.cfg.users.ctx, j->pass, j->passlen);
		if (j->ret == 0 && srv->ls.cfg.users.lookup(srv->ls.cfg.users.ctx, j->name, &j->found) != 0) {
			j->ret = IX_ENOTFOUND;
			buf_printf(&j->text, "no mailbox user %s here", j->name);
		}
		break;
	case IMP_BEGIN: {
		int frozen = 0;
		j->ret = store_mailbox_frozen(st, j->guid, &frozen, NULL, &j->text);
		if (j->ret == 0 && frozen) {
			j->ret = store_mailbox_delete(st, j->guid, &j->text);
			buf_append_str(&j->out, "* X-IX-IMPORT BEGIN deleted the frozen copy of an earlier move\r\n");
		}
		/* until COMMIT, a copy the maintenance removes if the move fails (its owner's home stays elsewhere) */
		if (j->ret == 0)
			j->ret = store_mailbox_ensure(st, j->guid, &j->text);
		if (j->ret == 0)
			j->ret = store_mailbox_mark(st, j->guid, STORE_MARK_INCOMPLETE, true, &j->text);
		break;
	}
	case IMP_COMMIT: j->ret = store_mailbox_mark(st, j->guid, STORE_MARK_INCOMPLETE, false, &j->text); break;
	case IMP_FOLDERS: run_folders(j, st); break;
	case IMP_UIDS: run_uids(j, st); break;
	case IMP_FOLDER: {
		uint32_t uv = 0;
		j->ret = store_folder_import(st, j->guid, j->name, (uint32_t)j->n[0], (uint32_t)j->n[1], j->n[2], &uv,
					     &j->text);
		if (j->ret == 0)
			j->ret = store_folder_subscribe(st, j->guid, j->name, j->n[3] != 0, &j->text);
		break;
	}
	case IMP_APPEND:
	case IMP_APPENDS: {
		struct store_target t = { .guid = j->guid,
					  .folder = j->name,
					  .want_uid = (uint32_t)j->n[0],
					  .want_save_date = j->op == IMP_APPENDS ? (int64_t)j->n[3] : 0 };
		struct store_append a = { .data = j->msg,
					  .len = j->msglen,
					  .flags = (unsigned)j->n[1],
					  .internal_date = (int64_t)j->n[2],
					  .keywords = j->keywords,
					  .targets = &t,
					  .ntargets = 1 };
		j->ret = store_append(st, &a, &j->text);
		break;
	}
	case IMP_FLAGS: {
		uint32_t uid = (uint32_t)j->n[0];
		struct store_flag_update u = { .uids = &uid,
					       .nuids = 1,
					       .mode = STORE_FLAGS_REPLACE,
					       .flags = (unsigned)j->n[1],
					       .keywords = j->keywords };
		j->ret = store_flags(st, j->guid, j->name, &u, &j->text);
		free(u.failed_r);
		break;
	}
	case IMP_EXPUNGE: {
		uint32_t uid = (uint32_t)j->n[0];
		j->ret = store_expunge(st, j->guid, j->name, &uid, 1, NULL, NULL, &j->text);
		break;
	}
	case IMP_DELETE: j->ret = store_folder_delete(st, j->guid, j->name, &j->text); break;
	case IMP_SIEVE:
		j->ret = store_sieve_put(st, j->guid, j->name, j->msg, j->msglen, &j->text);
		if (j->ret == 0 && j->n[0] != 0)
			j->ret = store_sieve_activate(st, j->guid, j->name, &j->text);
		break;
	}
}

static void import_done(void *arg)
{
	struct import_job *j = arg;
	struct imap_session *s = j->s;
	if (!imap_job_finished(s)) {
		import_job_free(j);
		return;
	}
	if (j->op == IMP_LOGIN) {
		if (j->ret == 0) {
			s->ls.user = j->found;
			memset(&j->found, 0, sizeof(j->found));
			s->state = IMAP_ST_AUTH;
			s->import = true;
			conn_set_idle_timeout(s->ls.conn, s->srv->ls.cfg.idle_timeout_msecs);
			log_info("import login for %s from %s%s", s->ls.user.login, conn_peer(s->ls.conn),
				 conn_is_tls(s->ls.conn) ? " (TLS)" : "");
			imap_tagged(s, j->tag, "OK Logged in to import the mailbox of %s", s->ls.user.login);
		} else if (j->ret == IX_EUNAVAIL) {
			s->ls.srv->proto->reply(&s->ls, j->tag, LOGIN_UNAVAILABLE, "");
		} else if (j->ret == IX_ENOTFOUND) {
			imap_tagged(s, j->tag, "NO [NONEXISTENT] %s", buf_cstr(&j->text));
		} else {
			login_failed(&s->ls, j->name, "import login");
			s->ls.srv->proto->reply(&s->ls, j->tag, LOGIN_FAILED, "");
		}
	} else {
		buf_append(&s->out, j->out.data, j->out.len);
		if (j->ret == 0)
			imap_tagged(s, j->tag, "OK %s done", import_ops[j->op]);
		else
			imap_tagged(s, j->tag, "NO [%s] %s", j->ret == IX_EAGAIN ? "UNAVAILABLE" : "CANNOT",
				    j->text.len > 0 ? buf_cstr(&j->text) : ix_strerror(j->ret));
	}
	import_job_free(j);
	imap_resume(s);
}

/* Takes a string argument (NUL-free) as a new string. */
static char *arg_string(const struct imap_arg *arg)
{
	const char *p;
	size_t len;
	if (!imap_arg_get_astring(arg, &p, &len) || memchr(p, '\0', len) != NULL)
		return NULL;
	return xstrndup(p, len);
}

/* The arguments each operation takes after its name: s string, n number, m message (literal). */
static const char *const import_args[] = {
	"ss", "", "", "s", "snnnn", "snnnsm", "snns", "sn", "s", "", "snm", "snnnnsm"
};

void imap_cmd_import(struct imap_session *s, const struct imap_command *cmd)
{
	size_t op = IX_ARRAY_LEN(import_ops);
	if (cmd->arg_count >= 1)
		for (op = 0; op < IX_ARRAY_LEN(import_ops); op++)
			if (imap_arg_atom_equals(&cmd->args[0], import_ops[op]))
				break;
	if (op == IX_ARRAY_LEN(import_ops)) {
		imap_tagged(s, cmd->tag, "BAD X-IX-IMPORT needs an operation");
		return;
	}
	if (op == IMP_LOGIN ? s->state != IMAP_ST_NOTAUTH : !s->import) {
		imap_tagged(s, cmd->tag, "NO [NOPERM] X-IX-IMPORT is only for a mailbox move by the administrator");
		return;
	}
	if (op == IMP_LOGIN && !s->ls.secure) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] Use STARTTLS first.");
		return;
	}
	const char *want = import_args[op];
	struct import_job *j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->op = (enum import_op)op;
	j->tag = xstrdup(cmd->tag);
	if (s->import)
		j->guid = xstrdup(s->ls.user.guid);
	bool ok = cmd->arg_count == 1 + strlen(want);
	size_t nn = 0, ns = 0;
	for (size_t i = 0; ok && want[i] != '\0'; i++) {
		const struct imap_arg *arg = &cmd->args[1 + i];
		if (want[i] == 'n') {
			ok = imap_arg_get_number(arg, INT64_MAX, &j->n[nn++]);
		} else if (want[i] == 'm') {
			ok = arg->type == IMAP_ARG_LITERAL && imap_arg_get_string(arg, &j->msg, &j->msglen) &&
			     j->msglen > 0;
		} else if (ns++ == 0) {
			j->name = arg_string(arg);
			ok = j->name != NULL;
		} else if (op == IMP_LOGIN) {
			const char *p;
			ok = imap_arg_get_astring(arg, &p, &j->passlen) && j->passlen <= IX_SASL_PASS_MAX;
			if (ok) {
				j->pass = xmalloc(j->passlen + 1);
				memcpy(j->pass, p, j->passlen);
				j->pass[j->passlen] = '\0';
			}
		} else {
			j->keywords = arg_string(arg);
			ok = j->keywords != NULL;
		}
	}
	if (!ok) {
		imap_tagged(s, cmd->tag, "BAD X-IX-IMPORT %s takes %zu arguments of the right kinds", import_ops[op],
			    strlen(want));
		import_job_free(j);
		return;
	}
	if (op == IMP_LOGIN && login_throttled(&s->ls, cmd->tag, j->name)) {
		import_job_free(j);
		return;
	}
	if (j->keywords != NULL && *j->keywords == '\0') {
		free(j->keywords);
		j->keywords = NULL;
	}
	imap_start_job(s, import_run, import_done, j);
}
