/* prov_connector.c - connectors (routes for other domains through smart hosts): entries of class ixConnector under
 * ou=Connectors,ou=Configuration, added, listed and deleted by `interchange connector` and the REST API as the
 * caller (the directory's rules decide who may). */
#include "directory/provision.h"
#include "common/err.h"
#include "directory/ldap_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= PROV_CONNECTOR_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static bool space_ok(const char *s)
{
	return strcmp(s, "*") == 0 || (strncmp(s, "*.", 2) == 0 && config_domain_valid(s + 2)) ||
	       config_domain_valid(s);
}

static bool smarthost_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[256];
	size_t hl = colon != NULL ? (size_t)(colon - s) : strlen(s);
	if (hl == 0 || hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	unsigned long long port;
	if (colon != NULL && (parse_uint(colon + 1, 65535, &port) < 0 || port == 0))
		return false;
	return config_domain_valid(host); /* also takes dotted IPv4 addresses */
}

int prov_connector_check(const struct prov_connector *c, struct buf *error_r)
{
	if (c->name == NULL || !name_ok(c->name)) {
		buf_printf(error_r, "\"%s\" is not a connector name (letters, digits, '.', '-', '_'; up to %d)",
			   c->name != NULL ? c->name : "", PROV_CONNECTOR_NAME_MAX);
		return IX_EINVAL;
	}
	if (c->space_count == 0 || c->space_count > PROV_CONNECTOR_SPACES_MAX) {
		buf_printf(error_r, "a connector needs from 1 to %d address spaces", PROV_CONNECTOR_SPACES_MAX);
		return IX_EINVAL;
	}
	for (size_t i = 0; i < c->space_count; i++) {
		if (!space_ok(c->spaces[i])) {
			buf_printf(error_r, "\"%s\" is not an address space: give a domain, *.domain or *",
				   c->spaces[i]);
			return IX_EINVAL;
		}
	}
	if (c->smarthost == NULL || !smarthost_ok(c->smarthost)) {
		buf_printf(error_r, "\"%s\" is not a smart host: give HOST or HOST:PORT",
			   c->smarthost != NULL ? c->smarthost : "");
		return IX_EINVAL;
	}
	if (c->cost > PROV_CONNECTOR_COST_MAX) {
		buf_printf(error_r, "the cost must be a number from 0 to %d", PROV_CONNECTOR_COST_MAX);
		return IX_EINVAL;
	}
	return IX_OK;
}

int prov_connector_add(struct prov *p, const struct prov_connector *c, struct buf *error_r)
{
	int ret = prov_connector_check(c, error_r);
	if (ret != IX_OK)
		return ret;
	char cost[24];
	snprintf(cost, sizeof(cost), "%llu", c->cost);
	LDAPMod **mods = NULL;
	size_t k = 0, n = 0;
	char **spaces = NULL;
	for (size_t i = 0; i < c->space_count; i++)
		ldapu_values_push(&spaces, &n, c->spaces[i]);
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "objectClass", ldapu_values1("ixConnector"));
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "cn", ldapu_values1(c->name));
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixAddressSpace", spaces);
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixSmartHost", ldapu_values1(c->smarthost));
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixConnectorCost", ldapu_values1(cost));
	char *dn = prov_config_dn(p, c->name, PROV_CONNECTORS_OU);
	int rc = ldap_add_ext_s(prov_ldap(p), dn, mods, NULL, NULL);
	ldapu_mods_free(mods);
	free(dn);
	if (rc == LDAP_ALREADY_EXISTS) {
		buf_printf(error_r, "a connector named %s exists already", c->name);
		return IX_EEXIST;
	}
	if (rc != LDAP_SUCCESS) {
		char *what = xasprintf("cannot add connector %s", c->name);
		ret = ldapu_fail(prov_ldap(p), rc, what, error_r);
		free(what);
	}
	return ret;
}

int prov_connector_list(struct prov *p, struct prov_connector **list_r, size_t *count_r, struct buf *error_r)
{
	*list_r = NULL;
	*count_r = 0;
	LDAP *ld = prov_ldap(p);
	char *base = xasprintf(PROV_CONNECTORS_OU ",%s", prov_config(p)->suffix);
	const char *attrs[] = { "cn", "ixAddressSpace", "ixSmartHost", "ixConnectorCost", NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixConnector)", attrs, &res, error_r);
	free(base);
	if (ret == IX_ENOTFOUND) {
		buf_reset(error_r);
		ret = IX_OK;
	}
	int n = ret == IX_OK ? ldap_count_entries(ld, res) : 0;
	struct prov_connector *list = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*list));
	size_t count = 0;
	for (LDAPMessage *e = ldapu_first_entry(ld, res); e != NULL && count < (size_t)n; e = ldap_next_entry(ld, e)) {
		struct prov_connector *c = &list[count++];
		char *cost = ldapu_get_first(ld, e, "ixConnectorCost");
		unsigned long long v = 0;
		c->cost = cost != NULL && parse_uint(cost, PROV_CONNECTOR_COST_MAX, &v) == 0 ? v : 0;
		free(cost);
		c->name = ldapu_get_first(ld, e, "cn");
		if (c->name == NULL)
			c->name = xstrdup("?");
		c->smarthost = ldapu_get_first(ld, e, "ixSmartHost");
		c->spaces = (const char **)ldapu_get_values(ld, e, "ixAddressSpace", &c->space_count);
	}
	ldap_msgfree(res);
	*list_r = list;
	*count_r = count;
	return ret;
}

void prov_connectors_free(struct prov_connector **list, size_t count)
{
	for (size_t i = 0; *list != NULL && i < count; i++) {
		struct prov_connector *c = &(*list)[i];
		free((char *)c->name);
		free((char *)c->smarthost);
		char **spaces = (char **)c->spaces;
		ldapu_values_free(&spaces);
	}
	free(*list);
	*list = NULL;
}

int prov_connector_del(struct prov *p, const char *name, struct buf *error_r)
{
	if (!name_ok(name)) {
		buf_printf(error_r, "\"%s\" is not a connector name", name);
		return IX_EINVAL;
	}
	char *dn = prov_config_dn(p, name, PROV_CONNECTORS_OU);
	int rc = ldap_delete_ext_s(prov_ldap(p), dn, NULL, NULL), ret = IX_OK;
	free(dn);
	if (rc == LDAP_NO_SUCH_OBJECT) {
		buf_printf(error_r, "there is no connector named %s (see interchange connector list)", name);
		ret = IX_ENOTFOUND;
	} else if (rc != LDAP_SUCCESS) {
		char *what = xasprintf("cannot delete connector %s", name);
		ret = ldapu_fail(prov_ldap(p), rc, what, error_r);
		free(what);
	}
	return ret;
}
