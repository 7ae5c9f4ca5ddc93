/* api_recipients.c - the REST API's recipients (users, contacts, lists, public folders: read whole, created,
 * changed, deleted) and every user's own resources (/me: password, forwarding, out of office, app passwords,
 * sign-ins), each the library call the command line makes; routed by api_recipients_route. */
#include "transport/http/api_int.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/settings.h"
#include "directory/dir.h"
#include "store/store.h"
#include "transport/mta/mta.h"
#include "transport/sieve/sieve.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Most bytes read from the end of each service's log for a user's recent sign-ins, and most sign-ins answered. */
#define API_SIGNIN_SCAN (4 << 20)
#define API_SIGNIN_MAX 1000

/* ---- reading a recipient whole ---- */

static const char *const detail_attrs[] = {
	"givenName",
	"sn",
	"displayName",
	"title",
	"department",
	"company",
	"physicalDeliveryOfficeName",
	"telephoneNumber",
	"mobile",
	"manager",
	"ixForwardTo",
	"ixDeliverAndRedirect",
	"ixAcceptFrom",
	"ixRejectFrom",
	"ixRequireAuthenticatedSender",
	"ixMaxReceiveSize",
	"ixMembersOnly",
	"ixSendAs",
	"ixSendOnBehalf",
	"ixFullAccess",
	"ixFolderPath",
	"ixQuotaBytes",
	"ixQuotaMessages",
	"ixQuotaWarnBytes",
	"member",
	NULL,
};

/* The DN values of attr in e as names (the value of each one's first RDN: a login, a list, contact or folder name,
 * which every call that takes a recipient accepts). */
static json_t *dn_names(LDAP *ld, LDAPMessage *e, const char *attr)
{
	json_t *a = json_array();
	char **v = ldapu_get_values(ld, e, attr, NULL);
	for (size_t i = 0; v[i] != NULL; i++) {
		char *name = prov_rdn_value(v[i]);
		json_array_append_new(a, json_string(name));
		free(name);
	}
	ldapu_values_free(&v);
	return a;
}

static bool attr_true(LDAP *ld, LDAPMessage *e, const char *attr)
{
	char *v = ldapu_get_first(ld, e, attr);
	bool t = v != NULL && strcasecmp(v, "TRUE") == 0;
	free(v);
	return t;
}

static json_int_t attr_number(LDAP *ld, LDAPMessage *e, const char *attr)
{
	char *v = ldapu_get_first(ld, e, attr);
	json_int_t n = v != NULL ? strtoll(v, NULL, 10) : 0;
	free(v);
	return n;
}

/* The attribute's first value as a JSON string, null when it has none. */
static json_t *attr_string(LDAP *ld, LDAPMessage *e, const char *attr)
{
	char *v = ldapu_get_first(ld, e, attr);
	json_t *s = v != NULL ? json_string(v) : json_null();
	free(v);
	return s;
}

/* Whether the caller is the user login (signed in with that login). */
static bool is_self(const struct call *c, const char *login)
{
	return login != NULL && strcasecmp(login, c->login) == 0;
}

/* The store of this server (store_open shares one handle per process); NULL (answered 503) when it cannot open. */
static struct store *open_store(struct call *c)
{
	char *path = config_path(c->api->cfg, "store");
	struct store *st = NULL;
	struct buf err = BUF_INIT;
	if (store_open(path, NULL, &st, &err) != IX_OK)
		fail(c, 503, "the information store cannot be opened: %s", buf_cstr(&err));
	buf_free(&err);
	free(path);
	return st;
}

/* Adds the mailbox's size and effective quotas of user login to o, when they can be read. */
static void mailbox_json(struct call *c, const char *login, json_t *o)
{
	char *guid = NULL;
	unsigned long long qb = 0, qm = 0;
	if (prov_user_mailbox(c->prov, login, &guid, &qb, &qm, NULL) != IX_OK)
		return;
	char *path = config_path(c->api->cfg, "store");
	struct store *st = NULL;
	struct store_quota_use use = { 0 };
	if (store_open(path, NULL, &st, NULL) == IX_OK && store_quota_get(st, guid, &use, NULL) == IX_OK)
		json_object_set_new(o, "mailbox",
				    json_pack("{s:I, s:I, s:I, s:I}", "bytes", (json_int_t)use.bytes, "messages",
					      (json_int_t)use.messages, "quota_bytes", (json_int_t)qb, "quota_messages",
					      (json_int_t)qm));
	store_close(&st);
	free(path);
	free(guid);
}

static json_t *recipient_json(const struct prov_recipient *r)
{
	json_t *addrs = json_array(), *o;
	for (size_t i = 0; i < r->address_count; i++)
		json_array_append_new(addrs, json_string(r->addresses[i]));
	o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:o, s:b}", "kind", r->kind, "name", r->name != NULL ? r->name : "",
		      "login", r->login, "mail", r->mail, "dn", r->dn, "addresses", addrs, "hidden", r->hidden);
	return o;
}

/* GET /recipients/R (and /users/R, /contacts/R, /lists/R, /folders/R, /me): the recipient with everything the
 * command line sets on it, as the caller reads it. */
static void recipient_get(struct call *c, const char *name)
{
	struct prov_recipient r;
	struct buf err = BUF_INIT;
	int ret = prov_recipient_get(c->prov, name, &r, &err);
	if (ret != IX_OK) {
		fail_with(c, ret, &err);
		buf_free(&err);
		return;
	}
	json_t *o = recipient_json(&r);
	LDAP *ld = prov_ldap(c->prov);
	LDAPMessage *res = NULL, *e = NULL;
	if (ldapu_search(ld, r.dn, LDAP_SCOPE_BASE, "(objectClass=*)", detail_attrs, &res, &err) == IX_OK)
		e = ldapu_first_entry(ld, res);
	if (e != NULL) {
		bool user = strcmp(r.kind, "user") == 0, list = strcmp(r.kind, "list") == 0;
		json_object_set_new(o, "display_name", attr_string(ld, e, "displayName"));
		if (user) {
			json_object_set_new(o, "given", attr_string(ld, e, "givenName"));
			json_object_set_new(o, "surname", attr_string(ld, e, "sn"));
			char *manager = ldapu_get_first(ld, e, "manager");
			char *mlogin = manager != NULL ? prov_rdn_value(manager) : NULL;
			json_object_set_new(
				o, "details",
				json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "title", attr_string(ld, e, "title"),
					  "department", attr_string(ld, e, "department"), "company",
					  attr_string(ld, e, "company"), "office",
					  attr_string(ld, e, "physicalDeliveryOfficeName"), "phone",
					  attr_string(ld, e, "telephoneNumber"), "mobile", attr_string(ld, e, "mobile"),
					  "manager", mlogin != NULL ? json_string(mlogin) : json_null()));
			free(manager);
			free(mlogin);
			json_object_set_new(o, "quota",
					    json_pack("{s:I, s:I, s:I}", "bytes", attr_number(ld, e, "ixQuotaBytes"),
						      "messages", attr_number(ld, e, "ixQuotaMessages"), "warn_bytes",
						      attr_number(ld, e, "ixQuotaWarnBytes")));
			if (is_admin(c) || is_self(c, r.login))
				mailbox_json(c, r.login, o);
		}
		char *fwd = ldapu_get_first(ld, e, "ixForwardTo");
		char *fname = fwd != NULL ? prov_rdn_value(fwd) : NULL;
		json_object_set_new(o, "forward",
				    json_pack("{s:o, s:b}", "to", fname != NULL ? json_string(fname) : json_null(),
					      "keep_copy", attr_true(ld, e, "ixDeliverAndRedirect")));
		free(fwd);
		free(fname);
		json_t *rs = json_pack("{s:o, s:o, s:b, s:I}", "accept_from", dn_names(ld, e, "ixAcceptFrom"),
				       "reject_from", dn_names(ld, e, "ixRejectFrom"), "authenticated_only",
				       attr_true(ld, e, "ixRequireAuthenticatedSender"), "max_size",
				       attr_number(ld, e, "ixMaxReceiveSize"));
		if (list)
			json_object_set_new(rs, "members_only", json_boolean(attr_true(ld, e, "ixMembersOnly")));
		json_object_set_new(o, "restrictions", rs);
		json_t *dg = json_pack("{s:o, s:o}", "send_as", dn_names(ld, e, "ixSendAs"), "send_on_behalf",
				       dn_names(ld, e, "ixSendOnBehalf"));
		if (user)
			json_object_set_new(dg, "full_access", dn_names(ld, e, "ixFullAccess"));
		json_object_set_new(o, "delegates", dg);
		if (list)
			json_object_set_new(o, "members", dn_names(ld, e, "member"));
		if (strcmp(r.kind, "folder") == 0)
			json_object_set_new(o, "path", attr_string(ld, e, "ixFolderPath"));
	}
	ldap_msgfree(res);
	reply(c, 200, o);
	prov_recipient_free(&r);
	buf_free(&err);
}

/* GET /recipients?q=&kind=&offset=&limit= (kind NULL: from the query) */
static void recipients_list(struct call *c, const char *kind)
{
	size_t offset, limit;
	if (!query_size(c, "offset", 0, (size_t)1 << 30, &offset) ||
	    !query_size(c, "limit", API_PAGE_DEFAULT, API_PAGE_MAX, &limit))
		return;
	const char *q = http_request_query(c->req, "q");
	if (kind == NULL)
		kind = http_request_query(c->req, "kind");
	struct prov_recipients page;
	struct buf err = BUF_INIT;
	int ret = prov_recipient_search(c->prov, q, kind, offset, limit, &page, &err);
	if (ret != IX_OK) {
		fail_with(c, ret, &err);
	} else {
		json_t *items = json_array();
		for (size_t i = 0; i < page.count; i++)
			json_array_append_new(items, recipient_json(&page.items[i]));
		reply(c, 200,
		      json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)page.total, "offset",
				(json_int_t)offset, "limit", (json_int_t)limit));
		prov_recipients_free(&page);
	}
	buf_free(&err);
}

static void recipient_del(struct call *c, const char *name, bool user)
{
	struct buf err = BUF_INIT;
	int ret = user ? prov_user_del(c->prov, name, &err) : prov_recipient_del(c->prov, name, &err);
	done(c, ret, &err, 200, json_pack("{s:s}", "deleted", name));
	buf_free(&err);
}

/* Answers the creation of recipient name: 201 with it as recipient_get reads it, or the failure (ret, why). */
static void created(struct call *c, int ret, const struct buf *why, const char *name)
{
	if (ret != IX_OK) {
		fail_with(c, ret, why);
		return;
	}
	recipient_get(c, name);
	if (c->resp->status == 200)
		c->resp->status = 201;
}

/* POST /users {"login", "given", "surname", "password", "aliases": [...], "hidden", "posix"} */
static void user_add(struct call *c, json_t *in)
{
	struct prov_user u = { 0 };
	const char **aliases = NULL;
	if (!opt_string(c, in, "login", &u.login) || !opt_string(c, in, "given", &u.given) ||
	    !opt_string(c, in, "surname", &u.surname) || !opt_string(c, in, "password", &u.password) ||
	    !opt_string(c, in, "server", &u.server))
		return;
	if (u.login == NULL || u.given == NULL || u.surname == NULL || u.password == NULL) {
		fail(c, 400, "a user needs \"login\", \"given\", \"surname\" and \"password\"");
		return;
	}
	if (!string_array(json_object_get(in, "aliases"), &aliases, &u.alias_count)) {
		fail(c, 400, "\"aliases\" must be an array of addresses");
		return;
	}
	u.aliases = aliases;
	u.hidden = json_is_true(json_object_get(in, "hidden"));
	u.posix = json_is_true(json_object_get(in, "posix"));
	struct buf err = BUF_INIT;
	int ret = prov_user_add(c->prov, &u, &err);
	free(aliases);
	created(c, ret, &err, u.login);
	buf_free(&err);
}

/* POST /contacts {"name", "email"} */
static void contact_add(struct call *c, json_t *in)
{
	const char *name, *email;
	if (!opt_string(c, in, "name", &name) || !opt_string(c, in, "email", &email))
		return;
	if (name == NULL || email == NULL) {
		fail(c, 400, "a contact needs \"name\" and \"email\"");
		return;
	}
	struct buf err = BUF_INIT;
	int ret = prov_contact_add(c->prov, name, email, &err);
	created(c, ret, &err, name);
	buf_free(&err);
}

/* POST /lists {"name", "members": [...], "posix"} */
static void list_add(struct call *c, json_t *in)
{
	const char *name, **members = NULL;
	size_t n = 0;
	if (!opt_string(c, in, "name", &name))
		return;
	if (name == NULL || !string_array(json_object_get(in, "members"), &members, &n)) {
		fail(c, 400, "a list needs \"name\" and may have \"members\", an array of recipients");
		return;
	}
	struct buf err = BUF_INIT;
	int ret = prov_dl_add(c->prov, name, members, n, json_is_true(json_object_get(in, "posix")), &err);
	free(members);
	created(c, ret, &err, name);
	buf_free(&err);
}

/* POST /lists/NAME/members {"recipient"}, DELETE /lists/NAME/members/RECIPIENT */
static void list_member(struct call *c, const char *list, const char *recipient, bool add)
{
	if (recipient == NULL) {
		fail(c, 400, "give the member as {\"recipient\": LOGIN, NAME or ADDRESS}");
		return;
	}
	struct buf err = BUF_INIT;
	int ret = prov_dl_member(c->prov, list, recipient, add, &err);
	done(c, ret, &err, add ? 201 : 200,
	     json_pack("{s:s, s:s}", add ? "added" : "removed", recipient, "list", list));
	buf_free(&err);
}

/* POST /folders {"path"}: a public folder and any missing parents */
static void folder_add(struct call *c, json_t *in)
{
	const char *path;
	if (!opt_string(c, in, "path", &path))
		return;
	if (path == NULL) {
		fail(c, 400, "a public folder needs \"path\", e.g. \"Sales/Leads\"");
		return;
	}
	struct buf err = BUF_INIT;
	int ret = prov_folder_add(c->prov, path, &err);
	const char *leaf = strrchr(path, '/');
	created(c, ret, &err, leaf != NULL ? leaf + 1 : path);
	buf_free(&err);
}

/* ---- changes ---- */

/* What a part of a change returns when it answered the request itself (a malformed field). */
#define ANSWERED 1

/* A JSON boolean member as -1 (absent), 0 or 1; false (answered) when of another type. */
static bool opt_bool(struct call *c, json_t *in, const char *key, int *v_r)
{
	json_t *v = json_object_get(in, key);
	*v_r = v == NULL ? -1 : json_is_true(v);
	if (v != NULL && !json_is_boolean(v)) {
		fail(c, 400, "\"%s\" must be true or false", key);
		return false;
	}
	return true;
}

/* A JSON array of strings member (absent: none); false (answered) when it is something else. */
static bool opt_strings(struct call *c, json_t *in, const char *key, const char ***v_r, size_t *n_r)
{
	if (string_array(json_object_get(in, key), v_r, n_r))
		return true;
	fail(c, 400, "\"%s\" must be an array of strings (recipients or addresses)", key);
	return false;
}

/* "addresses": {"primary", "add": [...], "remove": [...]} */
static int change_addresses(struct call *c, const char *name, json_t *a, struct buf *err)
{
	const char *primary, **add = NULL, **del = NULL;
	size_t nadd = 0, ndel = 0;
	if (!json_is_object(a)) {
		buf_append_str(err, "\"addresses\" is {\"primary\": ADDRESS, \"add\": [...], \"remove\": [...]}");
		return IX_EINVAL;
	}
	if (!opt_string(c, a, "primary", &primary) || !opt_strings(c, a, "add", &add, &nadd) ||
	    !opt_strings(c, a, "remove", &del, &ndel)) {
		free(add);
		free(del);
		return ANSWERED;
	}
	int ret = prov_addresses(c->prov, name, primary, add, nadd, del, ndel, err);
	free(add);
	free(del);
	return ret;
}

/* "restrictions": {"accept_from", "reject_from", "authenticated_only", "members_only", "max_size", "clear"} */
static int change_restrictions(struct call *c, const char *name, json_t *r, struct buf *err)
{
	struct prov_restrict pr = { .authenticated_only = -1, .members_only = -1, .max_size = -1 };
	const char **acc = NULL, **rej = NULL;
	int clear;
	json_t *max = json_object_get(r, "max_size");
	if (!json_is_object(r) || (max != NULL && (!json_is_integer(max) || json_integer_value(max) < 0))) {
		buf_append_str(err,
			       "\"restrictions\" is {\"accept_from\": [...], \"reject_from\": [...], "
			       "\"authenticated_only\": BOOL, \"members_only\": BOOL, \"max_size\": BYTES (0: none), "
			       "\"clear\": BOOL}");
		return IX_EINVAL;
	}
	if (!opt_strings(c, r, "accept_from", &acc, &pr.accept_count) ||
	    !opt_strings(c, r, "reject_from", &rej, &pr.reject_count) ||
	    !opt_bool(c, r, "authenticated_only", &pr.authenticated_only) ||
	    !opt_bool(c, r, "members_only", &pr.members_only) || !opt_bool(c, r, "clear", &clear)) {
		free(acc);
		free(rej);
		return ANSWERED;
	}
	pr.accept_from = acc;
	pr.reject_from = rej;
	pr.clear = clear == 1;
	if (max != NULL)
		pr.max_size = json_integer_value(max);
	int ret = prov_restrict(c->prov, name, &pr, err);
	free(acc);
	free(rej);
	return ret;
}

/* "delegates": {"grant": [{"to", "right": "send_as"|"send_on_behalf"|"full_access"}], "revoke": [...]} */
static int change_delegates(struct call *c, const char *name, json_t *d, struct buf *err)
{
	static const char *const ops[] = { "grant", "revoke" };
	for (int op = 0; op < 2; op++) {
		json_t *a = json_object_get(d, ops[op]), *g;
		size_t i;
		if (a != NULL && !json_is_array(a)) {
			buf_printf(err, "\"%s\" is an array of {\"to\": RECIPIENT, \"right\": ...}", ops[op]);
			return IX_EINVAL;
		}
		json_array_foreach(a, i, g)
		{
			const char *to = json_string_value(json_object_get(g, "to"));
			const char *right = json_string_value(json_object_get(g, "right"));
			static const char *const rights[] = { [PROV_SEND_AS] = "send_as",
							      [PROV_SEND_ON_BEHALF] = "send_on_behalf",
							      [PROV_FULL_ACCESS] = "full_access" };
			size_t r = 0;
			while (right != NULL && r < IX_ARRAY_LEN(rights) && strcmp(right, rights[r]) != 0)
				r++;
			if (to == NULL || right == NULL || r == IX_ARRAY_LEN(rights)) {
				buf_printf(err,
					   "each of \"%s\" is {\"to\": RECIPIENT, \"right\": \"send_as\", "
					   "\"send_on_behalf\" or \"full_access\"}",
					   ops[op]);
				return IX_EINVAL;
			}
			int ret = prov_delegate(c->prov, name, to, (enum prov_delegate_right)r, op, err);
			if (ret != IX_OK)
				return ret;
		}
	}
	return IX_OK;
}

/* "forward": {"to": RECIPIENT or null, "keep_copy"} */
static int change_forward(struct prov *p, const char *name, json_t *f, struct buf *err)
{
	json_t *to = json_object_get(f, "to");
	if (!json_is_object(f) || (to != NULL && !json_is_string(to) && !json_is_null(to))) {
		buf_append_str(err, "\"forward\" is {\"to\": RECIPIENT (null: no forwarding), \"keep_copy\": BOOL}");
		return IX_EINVAL;
	}
	return prov_forward(p, name, json_string_value(to), json_is_true(json_object_get(f, "keep_copy")), err);
}

/* A user's own fields: "password" (with "old_password" their own change), the details, "quota". */
static int change_user(struct call *c, const char *login, json_t *in, struct buf *err)
{
	int ret = IX_OK;
	const char *password, *old_password;
	struct prov_person d;
	if (!opt_string(c, in, "password", &password) || !opt_string(c, in, "old_password", &old_password) ||
	    !opt_string(c, in, "title", &d.title) || !opt_string(c, in, "department", &d.department) ||
	    !opt_string(c, in, "company", &d.company) || !opt_string(c, in, "office", &d.office) ||
	    !opt_string(c, in, "phone", &d.phone) || !opt_string(c, in, "mobile", &d.mobile) ||
	    !opt_string(c, in, "manager", &d.manager))
		return ANSWERED;
	if (password != NULL &&
	    old_password != NULL) { /* a user's own change (/me/): the directory wants the old one */
		struct prov *admin = NULL;
		ret = prov_open(c->api->cfg, &admin, err);
		if (ret == IX_OK)
			ret = prov_user_passwd_own(c->prov, admin, login, old_password, password, err);
		prov_close(&admin);
	} else if (password != NULL)
		ret = prov_user_passwd(c->prov, login, password, err);
	if (ret == IX_OK && (d.title || d.department || d.company || d.office || d.phone || d.mobile || d.manager))
		ret = prov_user_set(c->prov, login, &d, err);
	json_t *q = json_object_get(in, "quota");
	if (ret == IX_OK && q != NULL) {
		json_t *b = json_object_get(q, "bytes"), *m = json_object_get(q, "messages"),
		       *w = json_object_get(q, "warn_bytes");
		if ((b != NULL && !json_is_integer(b)) || (m != NULL && !json_is_integer(m)) ||
		    (w != NULL && !json_is_integer(w))) {
			buf_append_str(err, "\"quota\" holds whole numbers: {\"bytes\": N, \"messages\": N, "
					    "\"warn_bytes\": N} (0: none)");
			return IX_EINVAL;
		}
		ret = prov_quota(c->prov, login, b != NULL ? json_integer_value(b) : -1,
				 m != NULL ? json_integer_value(m) : -1, w != NULL ? json_integer_value(w) : -1, err);
	}
	return ret;
}

/* PATCH /recipients/R (and /users/R...): {"addresses", "hidden", "restrictions", "forward", "delegates"} for every
 * kind, and for users "password", "old_password", the details and "quota" (docs/api.md); answers with the recipient
 * as it is then. Each part is a change of its own, made in that order until one fails. */
static void recipient_change(struct call *c, const char *name, json_t *in)
{
	struct buf err = BUF_INIT;
	struct prov_recipient r;
	int ret = prov_recipient_get(c->prov, name, &r, &err), hidden;
	if (ret != IX_OK) {
		fail_with(c, ret, &err);
		buf_free(&err);
		return;
	}
	json_t *v;
	if (!opt_bool(c, in, "hidden", &hidden))
		ret = ANSWERED;
	if (ret == IX_OK && (v = json_object_get(in, "addresses")) != NULL)
		ret = change_addresses(c, name, v, &err);
	if (ret == IX_OK && hidden >= 0)
		ret = prov_hidden(c->prov, name, hidden == 1, &err);
	if (ret == IX_OK && (v = json_object_get(in, "restrictions")) != NULL)
		ret = change_restrictions(c, name, v, &err);
	if (ret == IX_OK && (v = json_object_get(in, "forward")) != NULL)
		ret = change_forward(c->prov, name, v, &err);
	if (ret == IX_OK && (v = json_object_get(in, "delegates")) != NULL)
		ret = change_delegates(c, name, v, &err);
	if (ret == IX_OK && strcmp(r.kind, "user") == 0)
		ret = change_user(c, r.login, in, &err);
	if (ret == IX_OK)
		recipient_get(c, r.login != NULL ? r.login : name); /* the name may have been an address removed */
	else if (ret != ANSWERED)
		fail_with(c, ret, &err);
	prov_recipient_free(&r);
	buf_free(&err);
}

/* ---- a user's own resources: out of office, app passwords, sign-ins, Sieve scripts ---- */

/* Whether the caller may see (change false) or change what is kept outside the directory for user login: the user,
 * any administrative role to see, Recipient Admins or Organisation Admins to change. Answers 403 when not. */
static bool may(struct call *c, const char *login, bool change)
{
	return is_self(c, login) || require_role(c, change ? PROV_ROLE_RECIPIENT : PROV_ROLE_VIEW);
}

/* The administrator's connection, for what the directory lets no user do to their own entry (their app passwords
 * are secrets no one but the administrator reads, their forwarding): the API decided the caller may (may()).
 * NULL (answered) when the directory does not answer. */
static struct prov *admin_prov(struct call *c)
{
	struct prov *p = NULL;
	struct buf err = BUF_INIT;
	if (prov_open(c->api->cfg, &p, &err) != IX_OK)
		fail(c, 503, "%s", buf_cstr(&err));
	buf_free(&err);
	return p;
}

/* The mailbox GUID of user login (*guid_r, a new string) and the store; false (answered) when either is missing. */
static bool user_mailbox(struct call *c, const char *login, char **guid_r, struct store **st_r)
{
	unsigned long long qb, qm;
	struct buf err = BUF_INIT;
	int ret = prov_user_mailbox(c->prov, login, guid_r, &qb, &qm, &err);
	if (ret != IX_OK)
		fail_with(c, ret, &err);
	buf_free(&err);
	*st_r = ret == IX_OK ? open_store(c) : NULL;
	if (ret == IX_OK && *st_r == NULL) {
		free(*guid_r);
		*guid_r = NULL;
	}
	return *st_r != NULL;
}

static bool date_valid(const char *s)
{
	unsigned y, m, d;
	char tail;
	return s == NULL || s[0] == '\0' ||
	       (strlen(s) == 10 && sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) == 3 && m >= 1 && m <= 12 && d >= 1 &&
		d <= 31);
}

/* Answers with the out of office of mailbox guid as it is. */
static void oof_reply(struct call *c, struct store *st, const char *guid)
{
	struct buf text = BUF_INIT;
	struct sieve_oof_settings s;
	if (store_sieve_get(st, guid, SIEVE_OOF_NAME, &text, NULL) == IX_OK &&
	    sieve_oof_read(buf_cstr(&text), text.len, &s) == 0) {
		reply(c, 200,
		      json_pack("{s:b, s:s, s:s?, s:s, s:s?, s:s?, s:s}", "enabled", 1, "internal", s.internal,
				"external", s.external, "subject", s.subject, "from", s.from[0] != '\0' ? s.from : NULL,
				"until", s.until[0] != '\0' ? s.until : NULL, "audience",
				s.audience == SIEVE_OOF_ALL     ? "all"
				: s.audience == SIEVE_OOF_KNOWN ? "known"
								: "none"));
		sieve_oof_settings_free(&s);
	} else {
		reply(c, 200, json_pack("{s:b}", "enabled", 0));
	}
	buf_free(&text);
}

/* GET, PUT, DELETE /users/LOGIN/oof and /me/oof: {"enabled", "internal", "external", "subject", "from", "until",
 * "audience": "none"|"known"|"all"} as `interchange user oof` sets it. */
static void oof(struct call *c, const char *login, json_t *in)
{
	bool get = strcmp(c->req->method, "GET") == 0 || strcmp(c->req->method, "HEAD") == 0;
	bool del = strcmp(c->req->method, "DELETE") == 0;
	struct sieve_oof o = { .audience = SIEVE_OOF_ALL };
	int enabled = del ? 0 : -1;
	const char *audience = NULL;
	if (!may(c, login, !get))
		return;
	if (!get && !del &&
	    (!opt_bool(c, in, "enabled", &enabled) || !opt_string(c, in, "internal", &o.internal) ||
	     !opt_string(c, in, "external", &o.external) || !opt_string(c, in, "subject", &o.subject) ||
	     !opt_string(c, in, "from", &o.from) || !opt_string(c, in, "until", &o.until) ||
	     !opt_string(c, in, "audience", &audience)))
		return;
	if (!get && !del) {
		if (audience != NULL)
			o.audience = sieve_oof_audience(audience);
		if (o.from != NULL && o.from[0] == '\0')
			o.from = NULL;
		if (o.until != NULL && o.until[0] == '\0')
			o.until = NULL;
		if (o.internal != NULL && o.internal[0] == '\0')
			o.internal = NULL;
		if (o.external != NULL && o.external[0] == '\0')
			o.external = NULL;
		if (o.subject != NULL && o.subject[0] == '\0')
			o.subject = NULL;
		const char *why =
			enabled < 0 ? "give \"enabled\": true or false"
			: o.audience < 0
				? "\"audience\" (who outside the organisation is answered) is \"none\", \"known\" or \"all\""
			: !date_valid(o.from) || !date_valid(o.until)
				? "\"from\" and \"until\" are dates, YYYY-MM-DD (UTC, both days included)"
			: enabled == 1 && o.internal == NULL && o.external == NULL
				? "out of office needs a text: \"internal\" (for the organisation) or \"external\""
				: NULL;
		if (why != NULL) {
			fail(c, 400, "%s", why);
			return;
		}
		if (o.internal == NULL)
			o.internal = o.external;
	}
	char *guid = NULL;
	struct store *st = NULL;
	if (!user_mailbox(c, login, &guid, &st))
		return;
	struct buf err = BUF_INIT;
	if (get) {
		oof_reply(c, st, guid);
	} else {
		struct prov *admin = admin_prov(c);
		int ret = admin != NULL ? mta_oof_set(admin, st, guid, enabled == 1 ? &o : NULL, &err) : ANSWERED;
		prov_close(&admin);
		if (ret == IX_OK) {
			oof_reply(c, st, guid);
		} else if (ret != ANSWERED) {
			fail_with(c, ret, &err);
		}
	}
	buf_free(&err);
	store_close(&st);
	free(guid);
}

/* GET /users/LOGIN/app-passwords, POST {"name"} (201 with the password, shown this once), DELETE .../NAME; the same
 * under /me/. Made through the administrator's connection: no one else reads the secrets they sit beside. */
static void app_passwords(struct call *c, const char *login, const char *name, json_t *in)
{
	bool get = strcmp(c->req->method, "GET") == 0 || strcmp(c->req->method, "HEAD") == 0;
	bool add = strcmp(c->req->method, "POST") == 0;
	if (add && !opt_string(c, in, "name", &name))
		return;
	if (add && name == NULL) {
		fail(c, 400, "give the app password a name, {\"name\": \"phone\"}, to know it by when revoking it");
		return;
	}
	if (!may(c, login, !get))
		return;
	struct prov *admin = admin_prov(c);
	if (admin == NULL)
		return;
	struct buf out = BUF_INIT, err = BUF_INIT;
	char *password = NULL;
	int ret;
	if (get) {
		ret = prov_app_password_list(admin, login, &out, &err);
		json_t *items = json_array();
		char *save = NULL;
		/* "NAME created YYYY-MM-DD HH:MM UTC" a line */
		for (char *line = ret == IX_OK && out.data != NULL ? strtok_r(out.data, "\n", &save) : NULL;
		     line != NULL; line = strtok_r(NULL, "\n", &save)) {
			char *at = strstr(line, " created ");
			if (at == NULL)
				continue;
			*at = '\0';
			char *end = line + strcspn(line, " ");
			*end = '\0';
			json_array_append_new(items, json_pack("{s:s, s:s}", "name", line, "created", at + 9));
		}
		if (ret == IX_OK)
			reply(c, 200,
			      json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)json_array_size(items)));
		else
			json_decref(items);
	} else if (add) {
		ret = prov_app_password_add(admin, login, name, &password, &err);
		if (ret == IX_OK)
			reply(c, 201,
			      json_pack("{s:s, s:s, s:s}", "name", name, "password", password, "note",
					"shown this once: type it into the mail program (IMAP, POP3, SMTP) now"));
	} else {
		ret = prov_app_password_del(admin, login, name, &err);
		if (ret == IX_OK)
			reply(c, 200, json_pack("{s:s}", "revoked", name));
	}
	if (ret != IX_OK)
		fail_with(c, ret, &err);
	if (password != NULL)
		explicit_bzero(password, strlen(password));
	free(password);
	prov_close(&admin);
	buf_free(&out);
	buf_free(&err);
}

/* One line of a service's log ("TIME NAME[PID] LEVEL: MESSAGE") that records a sign-in of login (dn: its entry), as
 * {"time", "service", "result": "ok"|"failed", "from", "detail"}; NULL when it records none. */
static json_t *signin_line(const char *line, const char *login, const char *dn)
{
	const char *sp = strchr(line, ' '), *msg = sp != NULL ? strstr(sp, ": ") : NULL;
	const char *bracket = sp != NULL ? strchr(sp, '[') : NULL;
	if (msg == NULL || bracket == NULL || bracket > msg)
		return NULL;
	msg += 2;
	/* the forms the services log: "login L from", "login failed for L from", "import login for L from", "API
	 * sign-in of L from", "CardDAV sign-in of L from", "SERVICE: L signed in with", "failed LDAP bind as DN" */
	static const char *const before[] = { "login failed for ", "import login for ", "API sign-in of ",
					      "CardDAV sign-in of ", "login " };
	size_t llen = strlen(login);
	const char *who = NULL;
	for (size_t i = 0; i < IX_ARRAY_LEN(before) && who == NULL; i++)
		if (strncmp(msg, before[i], strlen(before[i])) == 0)
			who = msg + strlen(before[i]);
	bool ok;
	if (who != NULL && strncasecmp(who, login, llen) == 0 && strncmp(who + llen, " from ", 6) == 0)
		ok = strstr(msg, "failed") == NULL;
	else if ((who = strstr(msg, ": ")) != NULL && strncasecmp(who + 2, login, llen) == 0 &&
		 strncmp(who + 2 + llen, " signed in with ", 16) == 0)
		ok = true;
	else if (dn != NULL && strncmp(msg, "failed LDAP bind as ", 20) == 0 &&
		 strncasecmp(msg + 20, dn, strlen(dn)) == 0 && msg[20 + strlen(dn)] == ' ')
		ok = false;
	else
		return NULL;
	const char *from = strstr(msg, " from ");
	char peer[128] = "";
	if (from != NULL)
		sscanf(from + 6, "%127[^ (),]", peer);
	char *time = xstrndup(line, (size_t)(sp - line)), *service = xstrndup(sp + 1, (size_t)(bracket - sp - 1));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", time, "service", service, "result",
			      ok ? "ok" : "failed", "from", peer, "detail", msg);
	free(time);
	free(service);
	return o;
}

static int by_time_desc(const void *a, const void *b)
{
	return -strcmp(json_string_value(json_object_get(*(json_t *const *)a, "time")),
		       json_string_value(json_object_get(*(json_t *const *)b, "time")));
}

/* GET /users/LOGIN/signins and /me/signins?offset=&limit=: the sign-ins of login the services' logs still hold
 * (the last API_SIGNIN_SCAN bytes of each), newest first. */
static void signins(struct call *c, const char *login)
{
	size_t offset, limit;
	if (!may(c, login, false) || !query_size(c, "offset", 0, API_SIGNIN_MAX, &offset) ||
	    !query_size(c, "limit", API_PAGE_DEFAULT, API_PAGE_MAX, &limit))
		return;
	char *logdir = config_log_path(c->api->cfg, NULL), *dn = prov_login_dn(c->api->cfg, login);
	DIR *d = opendir(logdir);
	json_t **found = NULL;
	size_t n = 0, cap = 0;
	for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".log") != 0 || strcmp(de->d_name, "audit.log") == 0)
			continue;
		char *path = xasprintf("%s/%s", logdir, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) != 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		off_t from = sb.st_size > API_SIGNIN_SCAN ? sb.st_size - API_SIGNIN_SCAN : 0;
		struct buf text = BUF_INIT;
		lseek(fd, from, SEEK_SET);
		buf_read_fd(&text, fd, API_SIGNIN_SCAN);
		close(fd);
		char *save = NULL;
		char *line = text.data != NULL ? strtok_r(text.data, "\n", &save) : NULL;
		if (from > 0 && line != NULL)
			line = strtok_r(NULL, "\n", &save); /* the first, cut */
		for (; line != NULL; line = strtok_r(NULL, "\n", &save)) {
			json_t *o = signin_line(line, login, dn);
			if (o == NULL)
				continue;
			if (n == cap)
				found = xrealloc(found, (cap = cap * 2 + 64) * sizeof(*found));
			found[n++] = o;
		}
		buf_free(&text);
	}
	if (d != NULL)
		closedir(d);
	if (n > 0)
		qsort(found, n, sizeof(*found), by_time_desc);
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		if (i >= offset && json_array_size(items) < limit)
			json_array_append(items, found[i]);
		json_decref(found[i]);
	}
	free(found);
	free(dn);
	free(logdir);
	reply(c, 200,
	      json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)n, "offset", (json_int_t)offset,
			"limit", (json_int_t)limit));
}

/* GET /users/LOGIN/sieve: the scripts, the active one marked; GET /users/LOGIN/sieve/NAME: one with its text. */
static void sieve_get(struct call *c, const char *login, const char *name)
{
	char *guid = NULL;
	struct store *st = NULL;
	if (!may(c, login, false) || !user_mailbox(c, login, &guid, &st))
		return;
	struct buf names = BUF_INIT, active = BUF_INIT, text = BUF_INIT, err = BUF_INIT;
	int ret = store_sieve_list(st, guid, &names, &active, &err);
	if (ret == IX_OK && name != NULL)
		ret = store_sieve_get(st, guid, name, &text, &err);
	if (ret == IX_ENOTFOUND && name != NULL) {
		buf_reset(&err);
		buf_printf(&err, "%s has no Sieve script called %s", login, name);
	}
	if (ret != IX_OK) {
		fail_with(c, ret, &err);
	} else if (name != NULL) {
		json_t *t = json_stringn(text.data != NULL ? text.data : "", text.len);
		reply(c, 200,
		      json_pack("{s:s, s:b, s:o}", "name", name, "active", strcmp(name, buf_cstr(&active)) == 0,
				"script", t != NULL ? t : json_null()));
	} else {
		json_t *items = json_array();
		char *save = NULL;
		for (char *s = names.data != NULL ? strtok_r(names.data, "\n", &save) : NULL; s != NULL;
		     s = strtok_r(NULL, "\n", &save))
			json_array_append_new(
				items, json_pack("{s:s, s:b}", "name", s, "active", strcmp(s, buf_cstr(&active)) == 0));
		reply(c, 200, json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)json_array_size(items)));
	}
	buf_free(&names);
	buf_free(&active);
	buf_free(&text);
	buf_free(&err);
	store_close(&st);
	free(guid);
}

/* PATCH /me {"password" with "old_password", "forward": {"to", "keep_copy"}}: what users change themselves. Their
 * forwarding is written through the administrator's connection (the directory lets users change only their password)
 * and to a recipient of the organisation; to a contact (outside) only when forwarding.external is allow. */
static void me_change(struct call *c, json_t *in)
{
	const char *key;
	json_t *v;
	json_object_foreach(in, key, v)
	{
		if (strcmp(key, "password") != 0 && strcmp(key, "old_password") != 0 && strcmp(key, "forward") != 0) {
			fail(c, 403, "you may change your password and forwarding here; \"%s\" is for an administrator",
			     key);
			return;
		}
	}
	const char *password, *old_password;
	if (!opt_string(c, in, "password", &password) || !opt_string(c, in, "old_password", &old_password))
		return;
	if (password != NULL && old_password == NULL) {
		fail(c, 400, "give your current password as \"old_password\" with the new \"password\"");
		return;
	}
	struct buf err = BUF_INIT;
	int ret = password != NULL ? change_user(c, c->login, in, &err) : IX_OK;
	json_t *f = json_object_get(in, "forward");
	const char *to = json_string_value(json_object_get(f, "to"));
	if (ret == IX_OK && to != NULL) {
		struct prov_recipient r;
		ret = prov_recipient_get(c->prov, to, &r, &err);
		bool outside = ret == IX_OK && strcmp(r.kind, "contact") == 0;
		if (ret == IX_OK)
			prov_recipient_free(&r);
		struct settings set;
		if (outside && (dir_server_settings(c->api->dir, c->api->cfg->server_dn, &set) != IX_OK ||
				set.v[SET_FORWARDING_EXTERNAL] == 0)) {
			buf_printf(&err, "forwarding outside the organisation is not allowed here (the setting "
					 "forwarding.external is deny): forward to a recipient of the organisation");
			ret = IX_EPERM;
		}
	}
	struct prov *admin = NULL;
	if (ret == IX_OK && f != NULL)
		ret = (admin = admin_prov(c)) != NULL ? change_forward(admin, c->login, f, &err) : ANSWERED;
	prov_close(&admin);
	if (ret == IX_OK)
		recipient_get(c, c->login);
	else if (ret == IX_EPERM)
		fail(c, 403, "%s", buf_cstr(&err));
	else if (ret != ANSWERED)
		fail_with(c, ret, &err);
	buf_free(&err);
}

/* ---- routing ---- */

static const char *kind_of_path(const struct call *c)
{
	static const char *const kinds[][2] = {
		{ "users", "user" }, { "contacts", "contact" }, { "lists", "list" }, { "folders", "folder" }
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(kinds); i++)
		if (seg_is(c, 0, kinds[i][0]))
			return kinds[i][1];
	return NULL;
}

static void r_list(struct call *c, json_t *in)
{
	(void)in;
	recipients_list(c, kind_of_path(c));
}

static void r_get(struct call *c, json_t *in)
{
	(void)in;
	recipient_get(c, c->seg[1]);
}

static void r_change(struct call *c, json_t *in)
{
	recipient_change(c, c->seg[1], in);
}

static void r_del(struct call *c, json_t *in)
{
	(void)in;
	recipient_del(c, c->seg[1], seg_is(c, 0, "users"));
}

static void r_member_add(struct call *c, json_t *in)
{
	list_member(c, c->seg[1], json_string_value(json_object_get(in, "recipient")), true);
}

static void r_member_del(struct call *c, json_t *in)
{
	(void)in;
	list_member(c, c->seg[1], c->seg[3], false);
}

/* The user a /users/LOGIN/... or /me/... path is about. */
static const char *path_user(const struct call *c)
{
	return seg_is(c, 0, "me") ? c->login : c->seg[1];
}

static void r_oof(struct call *c, json_t *in)
{
	oof(c, path_user(c), in);
}

static void r_app_passwords(struct call *c, json_t *in)
{
	size_t name_at = seg_is(c, 0, "me") ? 2 : 3;
	app_passwords(c, path_user(c), c->nseg > name_at ? c->seg[name_at] : NULL, in);
}

static void r_signins(struct call *c, json_t *in)
{
	(void)in;
	signins(c, path_user(c));
}

static void r_sieve(struct call *c, json_t *in)
{
	(void)in;
	sieve_get(c, c->seg[1], c->nseg == 4 ? c->seg[3] : NULL);
}

static void r_me(struct call *c, json_t *in)
{
	(void)in;
	recipient_get(c, c->login);
}

static void r_me_change(struct call *c, json_t *in)
{
	me_change(c, in);
}

/* ---- public folders' rights, users' photos ---- */

/* The path of the public folder name ("Sales/Leads"; *path_r a new string), read as the caller; false (answered)
 * when name is no public folder. */
static bool folder_path(struct call *c, const char *name, char **path_r)
{
	static const char *const attrs[] = { "ixFolderPath", NULL };
	struct prov_recipient r;
	struct buf err = BUF_INIT;
	int ret = prov_recipient_get(c->prov, name, &r, &err);
	bool got = ret == IX_OK;
	*path_r = NULL;
	if (ret == IX_OK && strcmp(r.kind, "folder") != 0) {
		buf_printf(&err, "%s is a %s, not a public folder", name, r.kind);
		ret = IX_ENOTFOUND;
	}
	LDAP *ld = prov_ldap(c->prov);
	LDAPMessage *res = NULL;
	if (ret == IX_OK && ldapu_search(ld, r.dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, &err) == IX_OK) {
		char *v = ldapu_get_first(ld, ldapu_first_entry(ld, res), "ixFolderPath");
		const char *p = v != NULL ? v : "";
		while (*p == '/') /* versions before 0.9 wrote a leading slash */
			p++;
		if (*p != '\0')
			*path_r = xstrdup(p);
		free(v);
	}
	ldap_msgfree(res);
	if (ret == IX_OK && *path_r == NULL) {
		buf_printf(&err, "the public folder %s has no path", name);
		ret = IX_ENOTFOUND;
	}
	if (got)
		prov_recipient_free(&r);
	if (ret != IX_OK)
		fail_with(c, ret, &err);
	buf_free(&err);
	return ret == IX_OK;
}

/* {"folder", "path", "made", "rights": {IDENTIFIER: RIGHTS}}: the store's ACL of the folder, or (made false) the
 * default ACL its store side gets when first used (docs/imap-pop3.md "Public folders and rights"). */
static json_t *folder_rights_json(struct store *st, const char *name, const char *path)
{
	struct buf acl = BUF_INIT, all = BUF_INIT;
	json_t *rights = json_object();
	bool made = store_acl_list(st, STORE_PUBLIC_GUID, path, &acl, NULL) == IX_OK;
	if (made) {
		char *save = NULL;
		for (char *line = strtok_r(acl.data != NULL ? acl.data : (char *)"", "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char *sp = strrchr(line, ' ');
			if (sp == NULL)
				continue;
			*sp = '\0';
			json_object_set_new(rights, line, json_string(sp + 1));
		}
	} else {
		store_rights_format(STORE_RIGHTS_ALL, &all);
		json_object_set_new(rights, STORE_ACL_ANYONE, json_string(STORE_PUBLIC_DEFAULT_RIGHTS));
		json_object_set_new(rights, STORE_PUBLIC_ADMINS, json_string(buf_cstr(&all)));
	}
	buf_free(&acl);
	buf_free(&all);
	return json_pack("{s:s, s:s, s:b, s:o}", "folder", name, "path", path, "made", made, "rights", rights);
}

/* The rights a PATCH gives who (v: RFC 4314 letters; null, "" or "-": none, the entry removed) in *mask_r; false when
 * v is none of these. */
static bool rights_value(json_t *v, unsigned *mask_r)
{
	const char *rs = json_is_null(v) ? "" : json_string_value(v);
	*mask_r = 0;
	if (rs == NULL)
		return false;
	return rs[0] == '\0' || strcmp(rs, "-") == 0 || (store_rights_parse(rs, mask_r) == IX_OK && *mask_r != 0);
}

/* GET /folders/R/rights (any administrative role); PATCH {"RECIPIENT": "RIGHTS" or null, ...} (Recipient Admins):
 * as `folder rights PATH RECIPIENT RIGHTS` (RFC 4314 letters; null, "" or "-" removes the entry), the store side made
 * first. The rights live in the information store, which the directory does not guard: the API checks the role. */
static void r_folder_rights(struct call *c, json_t *in)
{
	bool change = strcmp(c->req->method, "GET") != 0 && strcmp(c->req->method, "HEAD") != 0;
	if (!require_role(c, change ? PROV_ROLE_RECIPIENT : PROV_ROLE_VIEW))
		return;
	if (change && (!json_is_object(in) || json_object_size(in) == 0)) {
		fail(c, 400,
		     "give the rights as {\"RECIPIENT\": \"lrs\", ...} (RFC 4314 letters; null removes the entry)");
		return;
	}
	char *path = NULL;
	if (!folder_path(c, c->seg[1], &path))
		return;
	struct buf err = BUF_INIT;
	int ret = IX_OK;
	const char *who;
	json_t *v;
	unsigned mask;
	if (change) { /* every entry checked before any is set */
		json_object_foreach(in, who, v)
		{
			char *dn = NULL;
			if (!rights_value(v, &mask)) {
				buf_printf(&err,
					   "the rights of %s are RFC 4314 letters (l r s w i p k x t e a), or null to "
					   "remove the entry",
					   who);
				ret = IX_EINVAL;
			} else if (strcmp(who, STORE_ACL_ANYONE) != 0) {
				ret = prov_find_recipient(c->prov, who, &dn, &err);
			}
			free(dn);
			if (ret != IX_OK)
				break;
		}
	}
	struct store *st = ret == IX_OK ? open_store(c) : NULL;
	if (ret == IX_OK && st == NULL) {
		free(path);
		buf_free(&err);
		return;
	}
	if (ret == IX_OK && change) {
		ret = store_public_folder_ensure(st, path, &err);
		json_object_foreach(in, who, v)
		{
			if (ret != IX_OK)
				break;
			rights_value(v, &mask);
			ret = store_acl_set(st, STORE_PUBLIC_GUID, path, who, mask, &err);
		}
	}
	if (ret == IX_OK)
		reply(c, 200, folder_rights_json(st, c->seg[1], path));
	else
		fail_with(c, ret, &err);
	store_close(&st);
	free(path);
	buf_free(&err);
}

/* GET /users/R/photo (whoever may read the user: the directory decides, and hides a hidden recipient's): {"jpeg":
 * BASE64 or null, "bytes"}; PUT or PATCH {"jpeg": BASE64} (Recipient Admins; made smaller above 100 KiB, as `user
 * photo`: "note" says how) and DELETE remove it, in jpegPhoto and thumbnailPhoto. */
static void r_photo(struct call *c, json_t *in)
{
	const char *login = c->seg[1], *b64 = NULL;
	bool get = strcmp(c->req->method, "GET") == 0 || strcmp(c->req->method, "HEAD") == 0;
	bool del = strcmp(c->req->method, "DELETE") == 0;
	struct buf err = BUF_INIT, note = BUF_INIT, jpeg = BUF_INIT;
	int ret = IX_OK;
	if (!get && !del) {
		if (!opt_string(c, in, "jpeg", &b64))
			return;
		if (b64 == NULL || base64_decode(b64, strlen(b64), PROV_MAX_PHOTO_FILE, &jpeg) != IX_OK) {
			fail(c, 400, "give the photo as {\"jpeg\": BASE64 of a JPEG image}");
			buf_free(&jpeg);
			return;
		}
	}
	if (!get)
		ret = prov_user_photo_data(c->prov, login, "the photo", del ? NULL : jpeg.data, jpeg.len, &note, &err);
	char *dn = NULL;
	if (ret == IX_OK)
		ret = prov_find_recipient(c->prov, login, &dn, &err);
	LDAP *ld = prov_ldap(c->prov);
	LDAPMessage *res = NULL;
	static const char *const attrs[] = { "jpegPhoto", NULL };
	if (ret == IX_OK)
		ret = ldapu_search(ld, dn, LDAP_SCOPE_BASE, "(objectClass=ixMailUser)", attrs, &res, &err);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(ld, res) : NULL;
	if (ret == IX_OK && e == NULL) {
		buf_printf(&err, "%s is not a user", login);
		ret = IX_ENOTFOUND;
	}
	struct berval **v = e != NULL ? ldap_get_values_len(ld, e, "jpegPhoto") : NULL;
	if (ret == IX_OK) {
		struct buf out = BUF_INIT;
		if (v != NULL && v[0] != NULL)
			base64_encode(v[0]->bv_val, v[0]->bv_len, &out);
		json_t *o = json_pack("{s:s, s:o, s:I}", "user", login, "jpeg",
				      v != NULL && v[0] != NULL ? json_string(buf_cstr(&out)) : json_null(), "bytes",
				      (json_int_t)(v != NULL && v[0] != NULL ? v[0]->bv_len : 0));
		if (note.len > 0)
			json_object_set_new(o, "note", json_string(buf_cstr(&note)));
		reply(c, 200, o);
		buf_free(&out);
	} else {
		fail_with(c, ret, &err);
	}
	ldap_value_free_len(v);
	ldap_msgfree(res);
	free(dn);
	buf_free(&err);
	buf_free(&note);
	buf_free(&jpeg);
}

/* A route: the path's segments ("*" any one; "KIND" any of users, contacts, lists, folders and, where it says
 * ALL, recipients), the method ("GET" takes HEAD, "PATCH" takes PUT). */
struct recipient_route {
	const char *pattern;
	const char *method;
	void (*fn)(struct call *c, json_t *in);
};

static const struct recipient_route routes[] = {
	{ "ALL", "GET", r_list },
	{ "users", "POST", user_add },
	{ "contacts", "POST", contact_add },
	{ "lists", "POST", list_add },
	{ "folders", "POST", folder_add },
	{ "ALL/*", "GET", r_get },
	{ "ALL/*", "PATCH", r_change },
	{ "ALL/*", "DELETE", r_del },
	{ "lists/*/members", "POST", r_member_add },
	{ "lists/*/members/*", "DELETE", r_member_del },
	{ "users/*/oof", "GET", r_oof },
	{ "users/*/oof", "PATCH", r_oof },
	{ "users/*/oof", "DELETE", r_oof },
	{ "users/*/app-passwords", "GET", r_app_passwords },
	{ "users/*/app-passwords", "POST", r_app_passwords },
	{ "users/*/app-passwords/*", "DELETE", r_app_passwords },
	{ "users/*/signins", "GET", r_signins },
	{ "users/*/sieve", "GET", r_sieve },
	{ "users/*/sieve/*", "GET", r_sieve },
	{ "users/*/photo", "GET", r_photo },
	{ "users/*/photo", "PATCH", r_photo },
	{ "users/*/photo", "DELETE", r_photo },
	{ "folders/*/rights", "GET", r_folder_rights },
	{ "folders/*/rights", "PATCH", r_folder_rights },
	{ "me", "GET", r_me },
	{ "me", "PATCH", r_me_change },
	{ "me/oof", "GET", r_oof },
	{ "me/oof", "PATCH", r_oof },
	{ "me/oof", "DELETE", r_oof },
	{ "me/app-passwords", "GET", r_app_passwords },
	{ "me/app-passwords", "POST", r_app_passwords },
	{ "me/app-passwords/*", "DELETE", r_app_passwords },
	{ "me/signins", "GET", r_signins },
};

static bool pattern_matches(const struct call *c, const char *pattern)
{
	size_t i = 0;
	for (const char *p = pattern; *p != '\0'; i++) {
		size_t len = strcspn(p, "/");
		if (i >= c->nseg)
			return false;
		const char *seg = c->seg[i];
		bool ok = (len == 1 && *p == '*') ||
			  (len == 3 && strncmp(p, "ALL", 3) == 0 &&
			   (kind_of_path(c) != NULL || seg_is(c, 0, "recipients"))) ||
			  (strlen(seg) == len && strncmp(seg, p, len) == 0);
		if (!ok)
			return false;
		p += len + (p[len] == '/');
	}
	return i == c->nseg;
}

bool api_recipients_route(struct call *c, json_t *in, const char *as, struct buf *allow_r)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(routes); i++) {
		if (!pattern_matches(c, routes[i].pattern))
			continue;
		if (strcmp(routes[i].method, as) == 0) {
			routes[i].fn(c, in);
			return true;
		}
		buf_printf(allow_r, "%s%s", allow_r->len > 0 ? ", " : "", routes[i].method);
	}
	return false;
}
