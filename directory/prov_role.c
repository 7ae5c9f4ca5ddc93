/* prov_role.c - the administrative roles (Organisation Admins, Recipient Admins, View-Only Admins): their members,
 * added and removed by `interchange role` and read by the REST API for what the directory does not guard. */
#include "directory/provision.h"
#include "common/err.h"
#include "directory/slapd.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const roles[PROV_ROLE_COUNT] = { SLAPD_ROLE_ORG, SLAPD_ROLE_RECIPIENT, SLAPD_ROLE_VIEW };

const char *prov_role_name(enum prov_role role)
{
	return role >= 0 && role < PROV_ROLE_COUNT ? roles[role] : "";
}

static char *role_dn(struct prov *p, enum prov_role role)
{
	return xasprintf("cn=%s," SLAPD_ROLES_RDN ",%s", roles[role], prov_config(p)->suffix);
}

static int role_by_name(const char *name, enum prov_role *role_r, struct buf *error_r)
{
	for (int i = 0; i < PROV_ROLE_COUNT; i++) {
		if (strcasecmp(name, roles[i]) == 0) {
			*role_r = (enum prov_role)i;
			return IX_OK;
		}
	}
	buf_printf(error_r, "\"%s\" is not a role: use \"%s\", \"%s\" or \"%s\"", name, roles[0], roles[1], roles[2]);
	return IX_EINVAL;
}

int prov_role_member(struct prov *p, const char *role, const char *recipient, bool add, struct buf *error_r)
{
	enum prov_role r;
	int ret = role_by_name(role, &r, error_r);
	if (ret != IX_OK)
		return ret;
	char *member = NULL;
	if ((ret = prov_find_recipient(p, recipient, &member, error_r)) != IX_OK)
		return ret;
	char *dn = role_dn(p, r);
	bool is = ldapu_entry_matches(prov_ldap(p), dn, "(objectClass=groupOfNames)");
	if (!is) {
		buf_printf(error_r, "the role %s is missing from the directory: start the system once to add it",
			   roles[r]);
		ret = IX_ENOTFOUND;
	} else {
		struct buf filter = BUF_INIT;
		buf_append_str(&filter, "(member=");
		ldapu_escape_filter(&filter, member, strlen(member));
		buf_append_str(&filter, ")");
		bool in = ldapu_entry_matches(prov_ldap(p), dn, buf_cstr(&filter));
		buf_free(&filter);
		if (in == add) {
			buf_printf(error_r, "%s is %s a member of %s", recipient, add ? "already" : "not", roles[r]);
			ret = add ? IX_EEXIST : IX_ENOTFOUND;
		} else {
			LDAPMod **mods = NULL;
			size_t n = 0;
			ldapu_mod_add(&mods, &n, add ? LDAP_MOD_ADD : LDAP_MOD_DELETE, "member", ldapu_values1(member));
			struct buf why = BUF_INIT;
			ret = ldapu_modify(prov_ldap(p), dn, mods, &why);
			ldapu_mods_free(mods);
			if (ret != IX_OK)
				buf_printf(error_r, "cannot change the members of %s: %s", roles[r], buf_cstr(&why));
			buf_free(&why);
		}
	}
	free(dn);
	free(member);
	return ret;
}

int prov_role_list(struct prov *p, struct buf *out, struct buf *error_r)
{
	const struct config *cfg = prov_config(p);
	buf_printf(out, "%-22s %s\n", "ROLE", "MEMBER");
	for (int i = 0; i < PROV_ROLE_COUNT; i++) {
		char *dn = role_dn(p, (enum prov_role)i), **members = NULL;
		int ret = ldapu_read_values(prov_ldap(p), dn, "member", &members, error_r);
		free(dn);
		if (ret == IX_ENOTFOUND) {
			buf_printf(error_r,
				   "the role %s is missing from the directory: start the system once to add it",
				   roles[i]);
			return ret;
		}
		if (ret != IX_OK)
			return ret;
		for (size_t k = 0; members != NULL && members[k] != NULL; k++) {
			if (strcasecmp(members[k], cfg->admin_dn) == 0)
				continue; /* in every role, for groupOfNames */
			char *name = prov_rdn_value(members[k]);
			buf_printf(out, "%-22s %s\n", roles[i], name);
			free(name);
		}
		ldapu_values_free(&members);
	}
	return IX_OK;
}

enum prov_role prov_role_of(struct prov *p, const char *dn)
{
	if (strcasecmp(dn, prov_config(p)->admin_dn) == 0)
		return PROV_ROLE_ORG;
	struct buf filter = BUF_INIT;
	buf_append_str(&filter, "(member=");
	ldapu_escape_filter(&filter, dn, strlen(dn));
	buf_append_str(&filter, ")");
	enum prov_role found = PROV_ROLE_NONE;
	for (int i = 0; i < PROV_ROLE_COUNT && found == PROV_ROLE_NONE; i++) {
		char *rdn = role_dn(p, (enum prov_role)i);
		if (ldapu_entry_matches(prov_ldap(p), rdn, buf_cstr(&filter)))
			found = (enum prov_role)i;
		free(rdn);
	}
	buf_free(&filter);
	return found;
}
