/* sync_reconcile.c - the full reconcile of a sync source of type ldap: its users become mailbox users and its groups
 * (groupOfNames, groupOfUniqueNames) distribution lists, matched to ours by anchor (entryUUID) so that renames keep
 * the recipient; deleted users are disabled and hidden, never removed; conflicts are reported, never overwritten. */
#include "directory/sync_int.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/ldap_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SOURCE_PAGE 500
#define DEFAULT_USER_FILTER "(&(objectClass=inetOrgPerson)(uid=*))"
#define GROUP_FILTER "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
/* ppolicy's value for an account locked until an administrator unlocks it */
#define LOCKED_FOR_GOOD "000001010000Z"

/* One of our recipients from this source. */
struct ours {
	char *dn, *anchor, *name, *remote_dn; /* name: uid of a user, cn of a list */
	char *vals[SA_COUNT];                 /* what the entry holds for each mapped attribute (addresses aside) */
	char **proxies, **members;
	int is_list, deleted, seen, renamed;
};

struct src_set;

struct run {
	struct prov *p;
	LDAP *ours_ld, *src;
	const struct config *cfg;
	struct sync_conf conf;
	struct ours *ours;
	size_t nours;
	/* source DN (normalised) -> our DN, for list members */
	char **map_src, **map_our;
	size_t nmap;
	struct buf problems;
	size_t nproblems;
	char last_change[32];
	struct src_set *collecting; /* where source_search's entries go */
	struct sync_result *r;
	sync_progress_fn *progress;
	void *pctx;
};

static void problem(struct run *run, int conflict, const char *fmt, ...) IX_PRINTF(3, 4);
static void problem(struct run *run, int conflict, const char *fmt, ...)
{
	if (conflict)
		run->r->conflicts++;
	else
		run->r->errors++;
	if (run->nproblems++ >= SYNC_MAX_PROBLEMS)
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_append_str(&run->problems, conflict ? "conflict: " : "error: ");
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		fatal("out of memory");
	va_end(ap);
	buf_append_str(&run->problems, s);
	buf_append(&run->problems, "\n", 1);
	free(s);
}

/* A DN in one form for comparisons: LDAPv3 string form, ASCII lower case; a new string (a copy when unparsable). */
static char *dn_norm(const char *dn)
{
	char *out = NULL;
	if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAPV3, &out, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || out == NULL) {
		out = NULL;
	}
	char *s = xstrdup(out != NULL ? out : dn);
	ldap_memfree(out);
	for (char *c = s; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return s;
}

static int cmp_ours(const void *a, const void *b)
{
	return strcasecmp(((const struct ours *)a)->anchor, ((const struct ours *)b)->anchor);
}

static struct ours *find_ours(struct run *run, const char *anchor, int is_list)
{
	struct ours key = { .anchor = (char *)anchor };
	struct ours *o = bsearch(&key, run->ours, run->nours, sizeof(*run->ours), cmp_ours);
	return o != NULL && o->is_list == is_list ? o : NULL;
}

static void map_add(struct run *run, const char *src_dn, const char *our_dn)
{
	run->map_src = xrealloc(run->map_src, sizeof(char *) * (run->nmap + 1));
	run->map_our = xrealloc(run->map_our, sizeof(char *) * (run->nmap + 1));
	run->map_src[run->nmap] = dn_norm(src_dn);
	run->map_our[run->nmap] = xstrdup(our_dn);
	run->nmap++;
}

static const char *map_find(struct run *run, const char *src_dn)
{
	char *n = dn_norm(src_dn);
	const char *found = NULL;
	for (size_t i = 0; i < run->nmap && found == NULL; i++) {
		if (strcmp(run->map_src[i], n) == 0)
			found = run->map_our[i];
	}
	free(n);
	return found;
}

/* Reads our recipients from this source, sorted by anchor. */
static int load_ours(struct run *run, struct buf *error_r)
{
	struct buf f = BUF_INIT;
	buf_append_str(&f, "(ixSyncedFrom=");
	ldapu_escape_filter(&f, run->conf.dn, strlen(run->conf.dn));
	buf_append_str(&f, ")");
	const char *attrs[SA_COUNT + 8] = { "ixSyncAnchor", "ixSyncDeleted",    "objectClass",
					    "member",       "ixProxyAddresses", "ixSyncRemoteDn" };
	size_t na = 6;
	for (int i = 0; i < SA_COUNT; i++) {
		if (i != SA_ADDRESSES && i != SA_ANCHOR && i != SA_MAIL)
			attrs[na++] = sync_attr_names[i];
	}
	attrs[na] = NULL;
	char *base = xasprintf("ou=Recipients,%s", run->cfg->suffix);
	LDAPMessage *res = NULL;
	int ret = ldapu_search(run->ours_ld, base, LDAP_SCOPE_ONELEVEL, f.data, attrs, &res, error_r);
	free(base);
	buf_free(&f);
	if (ret != IX_OK && ret != IX_ENOTFOUND)
		return ret;
	int n = ret == IX_OK ? ldap_count_entries(run->ours_ld, res) : 0;
	run->ours = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*run->ours));
	for (LDAPMessage *e = ldapu_first_entry(run->ours_ld, res); e != NULL; e = ldap_next_entry(run->ours_ld, e)) {
		struct ours *o = &run->ours[run->nours];
		char *dn = ldap_get_dn(run->ours_ld, e);
		o->dn = xstrdup(dn);
		ldap_memfree(dn);
		o->anchor = ldapu_get_first(run->ours_ld, e, "ixSyncAnchor");
		if (o->anchor == NULL) {
			free(o->dn);
			continue;
		}
		char *deleted = ldapu_get_first(run->ours_ld, e, "ixSyncDeleted");
		o->deleted = deleted != NULL;
		free(deleted);
		o->is_list = ldapu_entry_matches(run->ours_ld, o->dn, "(objectClass=ixDistributionList)");
		for (int i = 0; i < SA_COUNT; i++) {
			if (i != SA_ADDRESSES && i != SA_ANCHOR && i != SA_MAIL)
				o->vals[i] = ldapu_get_first(run->ours_ld, e, sync_attr_names[i]);
		}
		o->name = xstrdup(o->is_list ? (o->vals[SA_CN] ? o->vals[SA_CN] : "")
					     : (o->vals[SA_LOGIN] ? o->vals[SA_LOGIN] : ""));
		o->remote_dn = ldapu_get_first(run->ours_ld, e, "ixSyncRemoteDn");
		o->proxies = ldapu_get_values(run->ours_ld, e, "ixProxyAddresses", NULL);
		o->members = ldapu_get_values(run->ours_ld, e, "member", NULL);
		run->nours++;
	}
	ldap_msgfree(res);
	qsort(run->ours, run->nours, sizeof(*run->ours), cmp_ours);
	return IX_OK;
}

static void ours_free(struct run *run)
{
	for (size_t i = 0; i < run->nours; i++) {
		struct ours *o = &run->ours[i];
		free(o->dn);
		free(o->anchor);
		free(o->name);
		free(o->remote_dn);
		for (int j = 0; j < SA_COUNT; j++)
			free(o->vals[j]);
		ldapu_values_free(&o->proxies);
		ldapu_values_free(&o->members);
	}
	free(run->ours);
	for (size_t i = 0; i < run->nmap; i++) {
		free(run->map_src[i]);
		free(run->map_our[i]);
	}
	free(run->map_src);
	free(run->map_our);
}

/* Searches the source in pages (its size limit applies per page); each(run, entry) for every entry. IX_OK only when
 * the search went through to its end. */
static int source_search(struct run *run, const char *base, const char *filter, const char *const *attrs,
			 void (*each)(struct run *run, LDAPMessage *e), struct buf *error_r)
{
	struct berval *cookie = NULL;
	int ret = IX_OK;
	for (;;) {
		LDAPControl *page = NULL, *ctrls[2] = { NULL, NULL };
		int rc = ldap_create_page_control(run->src, SOURCE_PAGE, cookie, 0, &page);
		ber_bvfree(cookie);
		cookie = NULL;
		if (rc != LDAP_SUCCESS) {
			ret = ldapu_fail(run->src, rc, "cannot page the source's results", error_r);
			break;
		}
		ctrls[0] = page;
		struct timeval tv = { LDAPU_TIMEOUT_SECS, 0 };
		LDAPMessage *res = NULL;
		rc = ldap_search_ext_s(run->src, base, LDAP_SCOPE_SUBTREE, filter, (char **)attrs, 0, ctrls, NULL, &tv,
				       LDAP_NO_LIMIT, &res);
		ldap_control_free(page);
		if (rc != LDAP_SUCCESS) {
			char *what = xasprintf("search of %s at the source failed", base);
			ret = ldapu_fail(run->src, rc, what, error_r);
			free(what);
			ldap_msgfree(res);
			break;
		}
		for (LDAPMessage *e = ldap_first_entry(run->src, res); e != NULL; e = ldap_next_entry(run->src, e))
			each(run, e);
		LDAPControl **rctrls = NULL;
		int err = 0;
		ldap_parse_result(run->src, res, &err, NULL, NULL, NULL, &rctrls, 0);
		LDAPControl *pr = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL);
		ber_int_t count = 0;
		struct berval c = { 0, NULL };
		if (pr != NULL && ldap_parse_pageresponse_control(run->src, pr, &count, &c) == LDAP_SUCCESS &&
		    c.bv_len > 0)
			cookie = ber_bvdup(&c);
		ber_memfree(c.bv_val);
		ldap_controls_free(rctrls);
		ldap_msgfree(res);
		if (cookie == NULL)
			break;
	}
	ber_bvfree(cookie);
	return ret;
}

/* ---- what the source holds ---- */

struct src_entry {
	char *dn, *anchor, *vals[SA_COUNT];
	char **addresses; /* primary first */
	char **members;   /* groups: member and uniqueMember DNs */
};

struct src_set {
	struct src_entry *e;
	size_t n;
};

static void note_change(struct run *run, LDAPMessage *e)
{
	char *ts = ldapu_get_first(run->src, e, "modifyTimestamp");
	if (ts != NULL && strlen(ts) < sizeof(run->last_change) && strcmp(ts, run->last_change) > 0)
		snprintf(run->last_change, sizeof(run->last_change), "%s", ts);
	free(ts);
}

static void collect(struct run *run, LDAPMessage *e)
{
	struct src_set *set = run->collecting;
	set->e = xrealloc(set->e, sizeof(*set->e) * (set->n + 1));
	struct src_entry *s = &set->e[set->n++];
	memset(s, 0, sizeof(*s));
	char *dn = ldap_get_dn(run->src, e);
	s->dn = xstrdup(dn != NULL ? dn : "");
	ldap_memfree(dn);
	for (int i = 0; i < SA_COUNT; i++) {
		if (run->conf.their[i] != NULL && i != SA_MAIL && i != SA_ADDRESSES)
			s->vals[i] = ldapu_get_first(run->src, e, run->conf.their[i]);
	}
	s->anchor = s->vals[SA_ANCHOR] != NULL ? xstrdup(s->vals[SA_ANCHOR]) : NULL;
	size_t na = 0;
	char **mail = run->conf.their[SA_MAIL] ? ldapu_get_values(run->src, e, run->conf.their[SA_MAIL], NULL) : NULL;
	char **more = run->conf.their[SA_ADDRESSES] ? ldapu_get_values(run->src, e, run->conf.their[SA_ADDRESSES], NULL)
						    : NULL;
	/* an SMTP: (upper case) value of the further addresses names the primary; else the first mail */
	for (size_t i = 0; more != NULL && more[i] != NULL; i++) {
		if (strncmp(more[i], "SMTP:", 5) == 0)
			ldapu_values_push(&s->addresses, &na, more[i] + 5);
	}
	for (size_t i = 0; mail != NULL && mail[i] != NULL; i++)
		ldapu_values_push(&s->addresses, &na, mail[i]);
	for (size_t i = 0; more != NULL && more[i] != NULL; i++) {
		if (strncmp(more[i], "SMTP:", 5) != 0)
			ldapu_values_push(&s->addresses, &na,
					  strncasecmp(more[i], "smtp:", 5) == 0 ? more[i] + 5 : more[i]);
	}
	ldapu_values_free(&mail);
	ldapu_values_free(&more);
	size_t nm = 0;
	char **member = ldapu_get_values(run->src, e, "member", NULL);
	char **unique = ldapu_get_values(run->src, e, "uniqueMember", NULL);
	for (size_t i = 0; member[i] != NULL; i++)
		ldapu_values_push(&s->members, &nm, member[i]);
	for (size_t i = 0; unique[i] != NULL; i++) {
		char *hash = strrchr(unique[i], '#'); /* nameAndOptionalUID: DN#'0101'B */
		if (hash != NULL && hash[1] == '\'')
			*hash = '\0';
		ldapu_values_push(&s->members, &nm, unique[i]);
	}
	ldapu_values_free(&member);
	ldapu_values_free(&unique);
	note_change(run, e);
}

static void src_set_free(struct src_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->e[i].dn);
		free(set->e[i].anchor);
		for (int j = 0; j < SA_COUNT; j++)
			free(set->e[i].vals[j]);
		ldapu_values_free(&set->e[i].addresses);
		ldapu_values_free(&set->e[i].members);
	}
	free(set->e);
}

static int read_source(struct run *run, const char *base, const char *filter, struct src_set *set, struct buf *error_r)
{
	const char *attrs[SA_COUNT + 5];
	size_t n = 0;
	for (int i = 0; i < SA_COUNT; i++) {
		if (run->conf.their[i] != NULL)
			attrs[n++] = run->conf.their[i];
	}
	attrs[n++] = "modifyTimestamp";
	attrs[n++] = "member";
	attrs[n++] = "uniqueMember";
	attrs[n] = NULL;
	run->collecting = set;
	int ret = source_search(run, base, filter, attrs, collect, error_r);
	run->collecting = NULL;
	return ret;
}

/* ---- writing our side ---- */

/* The addresses of s that no other recipient holds (our_dn: the recipient they are for, NULL for a new one), as
 * ixProxyAddresses values (SMTP:primary first); each address held elsewhere is a conflict. */
static char **free_proxies(struct run *run, const struct src_entry *s, const char *our_dn, size_t *n_r)
{
	char **out = NULL;
	size_t n = 0;
	for (size_t i = 0; s->addresses != NULL && s->addresses[i] != NULL; i++) {
		const char *a = s->addresses[i];
		if (!prov_address_valid(a)) {
			problem(run, 0, "%s: \"%s\" is not an e-mail address; left out", s->dn, a);
			continue;
		}
		int dup = 0;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcasecmp(out[j] + 5, a) == 0;
		if (dup)
			continue;
		char *owner = prov_address_owner(run->p, a);
		if (owner != NULL && (our_dn == NULL || strcasecmp(owner, our_dn) != 0)) {
			problem(run, 1, "%s: the address %s belongs to %s; left out", s->dn, a, owner);
			free(owner);
			continue;
		}
		free(owner);
		char *v = xasprintf("%s:%s", n == 0 ? "SMTP" : "smtp", a);
		ldapu_values_push(&out, &n, v);
		free(v);
	}
	*n_r = n;
	return out;
}

/* Whether two value arrays hold the same values (case-sensitive for the SMTP:/smtp: marker, not the address). */
static int same_values(char **a, char **b, int addresses)
{
	size_t na = 0, nb = 0;
	while (a != NULL && a[na] != NULL)
		na++;
	while (b != NULL && b[nb] != NULL)
		nb++;
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		int found = 0;
		for (size_t j = 0; j < nb && !found; j++)
			found = addresses ? strncmp(a[i], b[j], 4) == 0 && strcasecmp(a[i] + 4, b[j] + 4) == 0
					  : strcasecmp(a[i], b[j]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

/* The value a user's attribute takes: the source's, else what the entry needs (cn and sn are required). */
static const char *want(const struct src_entry *s, int a)
{
	if (s->vals[a] != NULL)
		return s->vals[a];
	if (a == SA_CN || a == SA_DISPLAY)
		return s->vals[SA_CN] != NULL ? s->vals[SA_CN] : s->vals[SA_LOGIN];
	if (a == SA_SURNAME)
		return s->vals[SA_CN] != NULL ? s->vals[SA_CN] : s->vals[SA_LOGIN];
	return NULL;
}

static const int user_attrs[] = { SA_GIVEN, SA_SURNAME, SA_CN, SA_DISPLAY, SA_TITLE, SA_PHONE };
static const int list_attrs[] = { SA_DISPLAY };

static int add_entry(struct run *run, const struct src_entry *s, const char *dn, int is_list, char **proxies)
{
	LDAPMod **mods = NULL;
	size_t n = 0, noc = 0;
	char **oc = NULL;
	if (is_list) {
		ldapu_values_push(&oc, &noc, "ixDistributionList");
	} else {
		ldapu_values_push(&oc, &noc, "inetOrgPerson");
		ldapu_values_push(&oc, &noc, "ixMailUser");
	}
	ldapu_values_push(&oc, &noc, "ixRecipient");
	ldapu_values_push(&oc, &noc, "ixSyncedRecipient");
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", oc);
	if (is_list) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1(s->vals[SA_CN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixNickname", ldapu_values1(s->vals[SA_CN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "displayName", ldapu_values1(want(s, SA_DISPLAY)));
	} else {
		char guid[33];
		prov_mailbox_guid_new(guid);
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "uid", ldapu_values1(s->vals[SA_LOGIN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixNickname", ldapu_values1(s->vals[SA_LOGIN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixMailboxGuid", ldapu_values1(guid));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixHomeServer", ldapu_values1(run->cfg->server_dn));
		for (size_t i = 0; i < sizeof(user_attrs) / sizeof(user_attrs[0]); i++) {
			const char *v = want(s, user_attrs[i]);
			if (v != NULL)
				ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, sync_attr_names[user_attrs[i]],
					      ldapu_values1(v));
		}
	}
	if (proxies != NULL) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "mail", ldapu_values1(proxies[0] + 5));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixProxyAddresses", proxies);
	}
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncedFrom", ldapu_values1(run->conf.dn));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncAnchor", ldapu_values1(s->anchor));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncRemoteDn", ldapu_values1(s->dn));
	int rc = ldap_add_ext_s(run->ours_ld, dn, mods, NULL, NULL);
	ldapu_mods_free(mods);
	if (rc == LDAP_CONSTRAINT_VIOLATION) {
		problem(run, 1, "%s: an address was taken meanwhile (%s); will be tried again", s->dn,
			ldap_err2string(rc));
		return IX_EEXIST;
	}
	if (rc != LDAP_SUCCESS) {
		problem(run, 0, "%s: cannot add %s: %s", s->dn, dn, ldap_err2string(rc));
		return IX_EIO;
	}
	run->r->added++;
	return IX_OK;
}

/* Renames o to rdn_attr=name when its name changed at the source; IX_EEXIST (a conflict) when the name is taken. */
static int rename_entry(struct run *run, struct ours *o, const struct src_entry *s, const char *name,
			char *(*dn_of)(struct prov *, const char *))
{
	if (strcasecmp(o->name, name) == 0)
		return IX_OK;
	char *new_dn = dn_of(run->p, name);
	if (ldapu_entry_matches(run->ours_ld, new_dn, "(objectClass=*)")) {
		problem(run, 1, "%s: cannot rename %s to %s, which is taken by another recipient", s->dn, o->dn,
			new_dn);
		free(new_dn);
		return IX_EEXIST;
	}
	const char *comma = strchr(new_dn, ',');
	char *rdn = xstrndup(new_dn, (size_t)(comma - new_dn));
	int rc = ldap_rename_s(run->ours_ld, o->dn, rdn, NULL, 1, NULL, NULL);
	free(rdn);
	if (rc != LDAP_SUCCESS) {
		problem(run, 0, "%s: cannot rename %s: %s", s->dn, o->dn, ldap_err2string(rc));
		free(new_dn);
		return IX_EIO;
	}
	free(o->dn);
	o->dn = new_dn;
	free(o->name);
	o->name = xstrdup(name);
	o->renamed = 1;
	run->r->renamed++;
	return IX_OK;
}

static void update_entry(struct run *run, struct ours *o, const struct src_entry *s, const int *attrs, size_t nattrs)
{
	LDAPMod **mods = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nattrs; i++) {
		const char *v = want(s, attrs[i]), *have = o->vals[attrs[i]];
		if (v != NULL && (have == NULL || strcmp(v, have) != 0))
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, sync_attr_names[attrs[i]], ldapu_values1(v));
		else if (v == NULL && have != NULL)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, sync_attr_names[attrs[i]], NULL);
	}
	if (o->renamed)
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixNickname", ldapu_values1(o->name));
	size_t np = 0;
	char **proxies = free_proxies(run, s, o->dn, &np);
	if (np > 0 && !same_values(proxies, o->proxies, 1)) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "mail", ldapu_values1(proxies[0] + 5));
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixProxyAddresses", proxies);
	} else {
		ldapu_values_free(&proxies);
	}
	if (o->remote_dn == NULL || strcmp(o->remote_dn, s->dn) != 0)
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncRemoteDn", ldapu_values1(s->dn));
	int undeleted = o->deleted;
	if (o->deleted) { /* back at the source within the grace days: enabled and shown again */
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixSyncDeleted", NULL);
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixHideFromAddressBook", NULL);
		if (!o->is_list)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "pwdAccountLockedTime", NULL);
	}
	o->deleted = 0;
	if (mods == NULL) /* nothing changed: no write, so a run over an unchanged source costs the directory nothing */
		return;
	struct buf why = BUF_INIT;
	int ret = ldapu_modify(run->ours_ld, o->dn, mods, &why);
	ldapu_mods_free(mods);
	if (ret == IX_EEXIST)
		problem(run, 1, "%s: an address of it was taken meanwhile: %s", s->dn, buf_cstr(&why));
	else if (ret != IX_OK)
		problem(run, 0, "%s: cannot change %s: %s", s->dn, o->dn, buf_cstr(&why));
	else if (!o->renamed && !undeleted)
		run->r->changed++;
	buf_free(&why);
}

/* Adds or changes the recipient of one source entry; its DN goes into the member map. */
static void reconcile_one(struct run *run, const struct src_entry *s, int is_list)
{
	if (s->anchor == NULL) {
		problem(run, 0, "%s has no %s (the anchor): not synced", s->dn, run->conf.their[SA_ANCHOR]);
		return;
	}
	struct ours *o = find_ours(run, s->anchor, is_list);
	if (o != NULL)
		o->seen = 1;
	const char *name = is_list ? s->vals[SA_CN] : s->vals[SA_LOGIN];
	if (name == NULL || (is_list ? !prov_name_valid(name) : !prov_login_valid(name))) {
		problem(run, 0, "%s: %s \"%s\" is not a valid %s: not synced", s->dn,
			is_list ? "cn" : run->conf.their[SA_LOGIN], name != NULL ? name : "",
			is_list ? "list name" : "login");
		return;
	}
	char *(*dn_of)(struct prov *, const char *) = is_list ? prov_list_dn : prov_user_dn;
	if (o == NULL) {
		char *dn = dn_of(run->p, name);
		if (ldapu_entry_matches(run->ours_ld, dn, "(objectClass=*)")) {
			problem(run, 1, "%s: the %s %s is taken by %s, which is not from this source: not synced",
				s->dn, is_list ? "list name" : "login", name, dn);
			free(dn);
			return;
		}
		size_t np = 0;
		char **proxies = free_proxies(run, s, NULL, &np);
		if (add_entry(run, s, dn, is_list, proxies) == IX_OK)
			map_add(run, s->dn, dn);
		free(dn);
		return;
	}
	rename_entry(run, o, s, name, dn_of);
	if (is_list)
		update_entry(run, o, s, list_attrs, sizeof(list_attrs) / sizeof(list_attrs[0]));
	else
		update_entry(run, o, s, user_attrs, sizeof(user_attrs) / sizeof(user_attrs[0]));
	map_add(run, s->dn, o->dn);
}

static void set_members(struct run *run, const struct src_entry *s)
{
	if (s->anchor == NULL || s->vals[SA_CN] == NULL)
		return;
	const char *our_dn = map_find(run, s->dn);
	if (our_dn == NULL)
		return;
	struct ours *o = find_ours(run, s->anchor, 1);
	char **want_members = NULL;
	size_t n = 0;
	for (size_t i = 0; s->members != NULL && s->members[i] != NULL; i++) {
		const char *m = map_find(run, s->members[i]);
		if (m != NULL && strcasecmp(m, our_dn) != 0)
			ldapu_values_push(&want_members, &n, m); /* members outside the source's users are not ours */
	}
	if (o != NULL && same_values(want_members, o->members, 0)) {
		ldapu_values_free(&want_members);
		return;
	}
	if (o == NULL && n == 0)
		return;
	LDAPMod **mods = NULL;
	size_t nm = 0;
	ldapu_mod_add(&mods, &nm, LDAP_MOD_REPLACE, "member", want_members);
	struct buf why = BUF_INIT;
	if (ldapu_modify(run->ours_ld, our_dn, mods, &why) != IX_OK)
		problem(run, 0, "%s: cannot set the members of %s: %s", s->dn, our_dn, buf_cstr(&why));
	else if (o != NULL)
		run->r->changed++;
	ldapu_mods_free(mods);
	buf_free(&why);
}

/* A user gone from the source: disabled (ppolicy's lock for good) and hidden at once, its mailbox kept; a list:
 * deleted. */
static void gone(struct run *run, struct ours *o)
{
	if (o->is_list) {
		int rc = ldap_delete_ext_s(run->ours_ld, o->dn, NULL, NULL);
		if (rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT)
			problem(run, 0, "cannot delete the list %s, gone from the source: %s", o->dn,
				ldap_err2string(rc));
		else
			run->r->deleted++;
		return;
	}
	if (o->deleted)
		return;
	char now[16];
	sync_now(now);
	LDAPMod **mods = NULL;
	size_t n = 0;
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncDeleted", ldapu_values1(now));
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixHideFromAddressBook", ldapu_values1("TRUE"));
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "pwdAccountLockedTime", ldapu_values1(LOCKED_FOR_GOOD));
	struct buf why = BUF_INIT;
	if (ldapu_modify(run->ours_ld, o->dn, mods, &why) != IX_OK)
		problem(run, 0, "cannot disable %s, deleted at the source: %s", o->dn, buf_cstr(&why));
	else
		run->r->deleted++;
	o->deleted = 1;
	ldapu_mods_free(mods);
	buf_free(&why);
}

static void set_state(struct run *run, const char *state, int final)
{
	LDAPMod **mods = NULL;
	size_t n = 0;
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncState", ldapu_values1(state));
	if (final) {
		char now[16];
		sync_now(now);
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncLastRun", ldapu_values1(now));
		if (run->last_change[0] != '\0')
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncLastChange", ldapu_values1(run->last_change));
		char **counts = NULL;
		size_t nc = 0;
		const struct sync_result *r = run->r;
		const size_t vals[] = { r->users, r->disabled, r->lists, r->contacts, r->errors, r->conflicts };
		const char *names[] = { "users", "disabled", "lists", "contacts", "errors", "conflicts" };
		for (size_t i = 0; i < 6; i++) {
			char *v = xasprintf("%s=%zu", names[i], vals[i]);
			ldapu_values_push(&counts, &nc, v);
			free(v);
		}
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncCount", counts);
		char **problems = NULL;
		size_t np = 0;
		char *text = buf_steal(&run->problems);
		for (char *save = NULL, *line = text != NULL ? strtok_r(text, "\n", &save) : NULL; line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			ldapu_values_push(&problems, &np, line);
		if (run->nproblems > SYNC_MAX_PROBLEMS) {
			char *v = xasprintf("... and %zu more", run->nproblems - SYNC_MAX_PROBLEMS);
			ldapu_values_push(&problems, &np, v);
			free(v);
		}
		free(text);
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncProblem", problems);
	}
	struct buf why = BUF_INIT;
	ldapu_modify(run->ours_ld, run->conf.dn, mods, &why);
	ldapu_mods_free(mods);
	buf_free(&why);
}

static void progress(struct run *run, const char *phase, size_t done, size_t total)
{
	if (run->progress != NULL && (done % 100 == 0 || done == total))
		run->progress(run->pctx, phase, done, total);
}

int sync_run(struct prov *p, const struct config *cfg, const char *name, sync_progress_fn *progress_fn, void *ctx,
	     struct sync_result *r, struct buf *error_r)
{
	struct run run = { .p = p, .ours_ld = prov_ldap(p), .cfg = cfg, .r = r, .progress = progress_fn, .pctx = ctx };
	memset(r, 0, sizeof(*r));
	buf_init(&run.problems);
	int ret = sync_conf_load(p, cfg, name, &run.conf, error_r);
	if (ret != IX_OK)
		return ret;
	ret = sync_connect(cfg, &run.conf, &run.src, error_r);
	if (ret != IX_OK) {
		char *state = xasprintf("failed: %s", buf_cstr(error_r));
		set_state(&run, state, 0);
		free(state);
		sync_conf_free(&run.conf);
		return ret;
	}
	set_state(&run, "running", 0);
	struct src_set users = { 0 }, groups = { 0 };
	const char *filter = run.conf.filter != NULL ? run.conf.filter : DEFAULT_USER_FILTER;
	ret = read_source(&run, run.conf.base, filter, &users, error_r);
	if (ret == IX_OK)
		ret = read_source(&run, run.conf.groups_base != NULL ? run.conf.groups_base : run.conf.base,
				  GROUP_FILTER, &groups, error_r);
	if (ret == IX_OK)
		ret = load_ours(&run, error_r);
	if (ret == IX_OK) {
		for (size_t i = 0; i < users.n; i++) {
			reconcile_one(&run, &users.e[i], 0);
			progress(&run, "users", i + 1, users.n);
		}
		for (size_t i = 0; i < groups.n; i++) {
			reconcile_one(&run, &groups.e[i], 1);
			progress(&run, "lists", i + 1, groups.n);
		}
		for (size_t i = 0; i < groups.n; i++)
			set_members(&run, &groups.e[i]);
		/* the source was read whole: what it no longer holds is gone from it */
		for (size_t i = 0; i < run.nours; i++) {
			if (!run.ours[i].seen)
				gone(&run, &run.ours[i]);
		}
		ours_free(&run);
		run.ours = NULL;
		run.nours = 0;
		run.nmap = 0;
		run.map_src = run.map_our = NULL;
		if (load_ours(&run, error_r) == IX_OK) {
			for (size_t i = 0; i < run.nours; i++) {
				struct ours *o = &run.ours[i];
				if (o->is_list)
					r->lists++;
				else if (o->deleted)
					r->disabled++;
				else
					r->users++;
			}
		}
	}
	if (ret == IX_OK) {
		set_state(&run, "in step", 1);
	} else {
		char *state = xasprintf("failed: %s", buf_cstr(error_r));
		set_state(&run, state, 0);
		free(state);
	}
	ours_free(&run);
	src_set_free(&users);
	src_set_free(&groups);
	buf_free(&run.problems);
	ldap_unbind_ext_s(run.src, NULL, NULL);
	sync_conf_free(&run.conf);
	return ret;
}

int sync_source_del(struct prov *p, const struct config *cfg, const char *name, int keep, struct buf *error_r)
{
	struct sync_result r = { 0 };
	struct run run = { .p = p, .ours_ld = prov_ldap(p), .cfg = cfg, .r = &r };
	buf_init(&run.problems);
	int ret = sync_conf_load(p, cfg, name, &run.conf, error_r);
	if (ret == IX_OK)
		ret = load_ours(&run, error_r);
	for (size_t i = 0; ret == IX_OK && i < run.nours; i++) {
		struct ours *o = &run.ours[i];
		if (!keep) {
			gone(&run, o);
			continue;
		}
		LDAPMod **mods = NULL;
		size_t n = 0;
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "objectClass", ldapu_values1("ixSyncedRecipient"));
		const char *attrs[] = { "ixSyncedFrom", "ixSyncAnchor", "ixSyncRemoteDn" };
		for (size_t j = 0; j < 3; j++)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, attrs[j], NULL);
		if (o->deleted)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixSyncDeleted", NULL);
		struct buf why = BUF_INIT;
		if (ldapu_modify(run.ours_ld, o->dn, mods, &why) != IX_OK)
			problem(&run, 0, "cannot make %s a local recipient: %s", o->dn, buf_cstr(&why));
		ldapu_mods_free(mods);
		buf_free(&why);
	}
	if (ret == IX_OK && run.nproblems > 0) {
		buf_printf(error_r, "the source %s is kept: %s", name, buf_cstr(&run.problems));
		ret = IX_EIO;
	}
	if (ret == IX_OK) {
		int rc = ldap_delete_ext_s(run.ours_ld, run.conf.dn, NULL, NULL);
		if (rc != LDAP_SUCCESS)
			ret = ldapu_fail(run.ours_ld, rc, "cannot delete the sync source", error_r);
	}
	if (ret == IX_OK)
		sync_secret_remove(cfg, name);
	ours_free(&run);
	buf_free(&run.problems);
	sync_conf_free(&run.conf);
	return ret;
}
