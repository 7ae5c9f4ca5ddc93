/* prov_search.c - finding recipients for a program that shows them (the REST API): every kind, matched on name,
 * login and address (docs/api.md), sorted by name, one page at a time, read as the connection's identity. */
#include "directory/provision.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *recipient_kind(LDAP *ld, LDAPMessage *e)
{
	char **oc = ldapu_get_values(ld, e, "objectClass", NULL);
	const char *kind = "recipient";
	for (size_t i = 0; oc[i] != NULL; i++) {
		if (strcasecmp(oc[i], "ixMailUser") == 0)
			kind = "user";
		else if (strcasecmp(oc[i], "ixContact") == 0)
			kind = "contact";
		else if (strcasecmp(oc[i], "ixDistributionList") == 0)
			kind = "list";
		else if (strcasecmp(oc[i], "ixPublicFolder") == 0)
			kind = "folder";
	}
	ldapu_values_free(&oc);
	return kind;
}

static const char *const recipient_attrs[] = { "objectClass",           "cn", "uid", "mail", "ixProxyAddresses",
					       "ixHideFromAddressBook", NULL };

static void fill(LDAP *ld, LDAPMessage *e, struct prov_recipient *r)
{
	char *dn = ldap_get_dn(ld, e);
	r->dn = xstrdup(dn != NULL ? dn : "");
	ldap_memfree(dn);
	r->kind = recipient_kind(ld, e);
	r->name = ldapu_get_first(ld, e, "cn");
	r->login = ldapu_get_first(ld, e, "uid");
	r->mail = ldapu_get_first(ld, e, "mail");
	r->addresses = ldapu_get_values(ld, e, "ixProxyAddresses", &r->address_count);
	char *hidden = ldapu_get_first(ld, e, "ixHideFromAddressBook");
	r->hidden = hidden != NULL && strcasecmp(hidden, "TRUE") == 0;
	free(hidden);
}

static void recipient_free(struct prov_recipient *r)
{
	free(r->dn);
	free(r->name);
	free(r->login);
	free(r->mail);
	ldapu_values_free(&r->addresses);
	memset(r, 0, sizeof(*r));
}

static int by_name(const void *a, const void *b)
{
	const struct prov_recipient *x = a, *y = b;
	int c = strcasecmp(x->name != NULL ? x->name : "", y->name != NULL ? y->name : "");
	return c != 0 ? c : strcmp(x->dn, y->dn);
}

int prov_recipient_search(struct prov *p, const char *query, const char *kind, size_t offset, size_t limit,
			  struct prov_recipients *page_r, struct buf *error_r)
{
	memset(page_r, 0, sizeof(*page_r));
	static const char *const classes[][2] = { { "user", "ixMailUser" },
						  { "contact", "ixContact" },
						  { "list", "ixDistributionList" },
						  { "folder", "ixPublicFolder" } };
	const char *oc = "ixRecipient";
	if (kind != NULL) {
		oc = NULL;
		for (size_t i = 0; i < IX_ARRAY_LEN(classes); i++) {
			if (strcmp(kind, classes[i][0]) == 0)
				oc = classes[i][1];
		}
		if (oc == NULL) {
			buf_printf(error_r, "\"%s\" is not a kind of recipient: use user, contact, list or folder",
				   kind);
			return IX_EINVAL;
		}
	}
	struct buf filter = BUF_INIT;
	buf_printf(&filter, "(&(objectClass=%s)", oc);
	if (query != NULL && query[0] != '\0') {
		struct buf q = BUF_INIT;
		ldapu_escape_filter(&q, query, strlen(query));
		/* each term indexed (SLAPD_NAME_INDEX): a part of a name, a login or the primary address; any address
		 * whole (ixProxyAddresses has equality only), or one filter term without an index would make slapd read
		 * every recipient */
		buf_printf(&filter, "(|(cn=*%s*)(uid=*%s*)(mail=*%s*)(displayName=*%s*)(ixProxyAddresses=smtp:%s))",
			   buf_cstr(&q), buf_cstr(&q), buf_cstr(&q), buf_cstr(&q), buf_cstr(&q));
		buf_free(&q);
	}
	buf_append_str(&filter, ")");
	LDAP *ld = prov_ldap(p);
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, prov_config(p)->suffix, LDAP_SCOPE_SUBTREE, buf_cstr(&filter), recipient_attrs, &res,
			       error_r);
	buf_free(&filter);
	if (ret == IX_ENOTFOUND)
		return IX_OK;
	if (ret != IX_OK)
		return ret;
	size_t n = (size_t)ldap_count_entries(ld, res), count = 0;
	struct prov_recipient *all = xcalloc(n + 1, sizeof(*all));
	for (LDAPMessage *e = ldapu_first_entry(ld, res); e != NULL && count < n; e = ldap_next_entry(ld, e)) {
		fill(ld, e, &all[count++]);
	}
	ldap_msgfree(res);
	qsort(all, count, sizeof(*all), by_name);
	page_r->total = count;
	if (offset > count)
		offset = count;
	size_t take = count - offset < limit ? count - offset : limit;
	for (size_t i = 0; i < count; i++) {
		if (i >= offset && i < offset + take)
			continue;
		recipient_free(&all[i]);
	}
	memmove(all, all + offset, take * sizeof(*all));
	page_r->items = all;
	page_r->count = take;
	return IX_OK;
}

void prov_recipients_free(struct prov_recipients *page)
{
	for (size_t i = 0; i < page->count; i++)
		recipient_free(&page->items[i]);
	free(page->items);
	memset(page, 0, sizeof(*page));
}

int prov_recipient_get(struct prov *p, const char *name, struct prov_recipient *r_r, struct buf *error_r)
{
	memset(r_r, 0, sizeof(*r_r));
	char *dn = NULL;
	int ret = prov_find_recipient(p, name, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	LDAP *ld = prov_ldap(p);
	LDAPMessage *res = NULL;
	ret = ldapu_search(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", recipient_attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(ld, res) : NULL;
	if (e != NULL)
		fill(ld, e, r_r);
	else if (ret == IX_OK || ret == IX_ENOTFOUND) {
		buf_printf(error_r, "%s no longer exists", name);
		ret = IX_ENOTFOUND;
	}
	ldap_msgfree(res);
	free(dn);
	return ret;
}

void prov_recipient_free(struct prov_recipient *r)
{
	recipient_free(r);
}

int prov_recipient_del(struct prov *p, const char *name, struct buf *error_r)
{
	char *dn = NULL;
	int ret = prov_find_recipient(p, name, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	LDAP *ld = prov_ldap(p);
	int rc = ldap_delete_ext_s(ld, dn, NULL, NULL);
	if (rc == LDAP_NOT_ALLOWED_ON_NONLEAF)
		buf_printf(error_r, "%s holds other entries (a public folder with subfolders): delete those first",
			   name);
	ret = rc == LDAP_SUCCESS                  ? IX_OK
	      : rc == LDAP_NOT_ALLOWED_ON_NONLEAF ? IX_EINVAL
						  : ldapu_fail(ld, rc, "could not delete it", error_r);
	free(dn);
	return ret;
}
