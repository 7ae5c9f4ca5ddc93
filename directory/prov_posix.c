/* prov_posix.c - POSIX accounts and groups for Linux hosts that take their users from the directory (sssd, nslcd):
 * uidNumbers and gidNumbers from a range kept in the directory, allocated safely when several writers add at once,
 * and the attributes `user add --posix` and `dl add --posix` write and `user show` / `dl show` print. */
#include "directory/provision.h"
#include "common/err.h"
#include "directory/ldap_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The range entry's DN under the suffix (a new string). */
static char *range_dn(const struct config *cfg)
{
	return xasprintf(PROV_POSIX_RANGE_RDN ",%s", cfg->suffix);
}

/* Reads the range: *next_r and *last_r; IX_ENOTFOUND when the entry does not exist. */
static int read_range(LDAP *ld, const char *dn, unsigned long long *next_r, unsigned long long *last_r,
		      struct buf *error_r)
{
	static const char *const attrs[] = { "ixPosixNextId", "ixPosixLastId", NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, dn, LDAP_SCOPE_BASE, "(objectClass=ixPosixIdRange)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(ld, res) : NULL;
	if (ret == IX_OK && e == NULL)
		ret = IX_ENOTFOUND;
	if (e != NULL) {
		char *next = ldapu_get_first(ld, e, "ixPosixNextId"), *last = ldapu_get_first(ld, e, "ixPosixLastId");
		*next_r = next != NULL ? strtoull(next, NULL, 10) : 0;
		*last_r = last != NULL ? strtoull(last, NULL, 10) : 0;
		free(next);
		free(last);
	}
	ldap_msgfree(res);
	return ret;
}

/* Whether some entry already has uidNumber or gidNumber id (one set by hand, or by another tool). */
static int id_in_use(LDAP *ld, const struct config *cfg, unsigned long long id)
{
	char filter[96];
	snprintf(filter, sizeof(filter), "(|(uidNumber=%llu)(gidNumber=%llu))", id, id);
	static const char *const attrs[] = { LDAP_NO_ATTRS, NULL };
	LDAPMessage *res = NULL;
	struct buf err = BUF_INIT;
	int used = ldapu_search(ld, cfg->suffix, LDAP_SCOPE_SUBTREE, filter, attrs, &res, &err) == IX_OK &&
		   ldapu_first_entry(ld, res) != NULL;
	ldap_msgfree(res);
	buf_free(&err);
	return used;
}

int prov_posix_id_new(struct prov *p, unsigned long long *id_r, struct buf *error_r)
{
	LDAP *ld = prov_ldap(p);
	const struct config *cfg = prov_config(p);
	char *dn = range_dn(cfg);
	int ret = IX_OK, got = 0;
	for (int attempt = 0; attempt < PROV_POSIX_ATTEMPTS && !got; attempt++) {
		unsigned long long next = 0, last = 0;
		buf_reset(error_r);
		ret = read_range(ld, dn, &next, &last, error_r);
		if (ret == IX_ENOTFOUND) { /* the first POSIX recipient: the range with its defaults */
			char first_s[24], last_s[24];
			snprintf(first_s, sizeof(first_s), "%u", PROV_POSIX_FIRST_ID);
			snprintf(last_s, sizeof(last_s), "%u", PROV_POSIX_LAST_ID);
			char *oc[] = { (char *)"ixPosixIdRange", NULL }, *cn[] = { (char *)"POSIX IDs", NULL },
			     *nv[] = { first_s, NULL }, *lv[] = { last_s, NULL };
			LDAPMod m1 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
			LDAPMod m2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"cn", .mod_values = cn };
			LDAPMod m3 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"ixPosixNextId", .mod_values = nv };
			LDAPMod m4 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"ixPosixLastId", .mod_values = lv };
			LDAPMod *mods[] = { &m1, &m2, &m3, &m4, NULL };
			int rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
			if (rc != LDAP_SUCCESS && rc != LDAP_ALREADY_EXISTS) { /* another writer made it: fine */
				buf_reset(error_r);
				ret = ldapu_fail(ld, rc, "could not make the POSIX ID range", error_r);
				break;
			}
			continue;
		}
		if (ret != IX_OK)
			break;
		if (next > last) {
			buf_printf(error_r,
				   "the POSIX ID range is used up (the last is %llu): raise ixPosixLastId of %s with "
				   "ldapmodify (docs/directory.md \"POSIX accounts and groups\")",
				   last, dn);
			ret = IX_EINVAL;
			break;
		}
		/* take next: delete exactly that value and add the one after it in one modify, which fails (no such
		 * value) when another writer took it first; then try with what it left */
		char cur[24], after[24];
		snprintf(cur, sizeof(cur), "%llu", next);
		snprintf(after, sizeof(after), "%llu", next + 1);
		char *dv[] = { cur, NULL }, *av[] = { after, NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_DELETE, .mod_type = (char *)"ixPosixNextId", .mod_values = dv };
		LDAPMod m2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"ixPosixNextId", .mod_values = av };
		LDAPMod *mods[] = { &m1, &m2, NULL };
		int rc = ldap_modify_ext_s(ld, dn, mods, NULL, NULL);
		if (rc == LDAP_NO_SUCH_ATTRIBUTE)
			continue;
		if (rc != LDAP_SUCCESS) {
			ret = ldapu_fail(ld, rc, "could not take a POSIX ID", error_r);
			break;
		}
		if (id_in_use(ld, cfg, next)) /* set by hand before the range reached it: skip it */
			continue;
		*id_r = next;
		got = 1;
	}
	if (!got && (ret == IX_OK || ret == IX_ENOTFOUND)) {
		buf_reset(error_r);
		buf_printf(error_r, "could not take a POSIX ID: other writers took each of %d first; try again",
			   PROV_POSIX_ATTEMPTS);
		ret = IX_EUNAVAIL;
	}
	free(dn);
	return ret;
}

/* A copy of the decimal form of n. */
static char **number_value(unsigned long long n)
{
	char s[24];
	snprintf(s, sizeof(s), "%llu", n);
	return ldapu_values1(s);
}

void prov_posix_account_mods(const char *login, unsigned long long id, LDAPMod ***mods, size_t *n)
{
	/* the user's primary group is its own (gidNumber = uidNumber), as sssd's auto_private_groups makes it */
	char *home = xasprintf(PROV_POSIX_HOME "/%s", login);
	ldapu_mod_add(mods, n, LDAP_MOD_ADD, "uidNumber", number_value(id));
	ldapu_mod_add(mods, n, LDAP_MOD_ADD, "gidNumber", number_value(id));
	ldapu_mod_add(mods, n, LDAP_MOD_ADD, "homeDirectory", ldapu_values1(home));
	ldapu_mod_add(mods, n, LDAP_MOD_ADD, "loginShell", ldapu_values1(PROV_POSIX_SHELL));
	free(home);
}

void prov_posix_group_mods(unsigned long long id, LDAPMod ***mods, size_t *n)
{
	ldapu_mod_add(mods, n, LDAP_MOD_ADD, "gidNumber", number_value(id));
}

void prov_posix_show(LDAP *ld, LDAPMessage *e, struct buf *out)
{
	char *uid = ldapu_get_first(ld, e, "uidNumber"), *gid = ldapu_get_first(ld, e, "gidNumber"),
	     *home = ldapu_get_first(ld, e, "homeDirectory"), *shell = ldapu_get_first(ld, e, "loginShell");
	if (uid != NULL)
		buf_printf(out, "%-14suid %s, gid %s, home %s, shell %s\n", "POSIX:", uid, gid != NULL ? gid : "-",
			   home != NULL ? home : "-", shell != NULL ? shell : "-");
	else if (gid != NULL)
		buf_printf(out, "%-14sgid %s\n", "POSIX group:", gid);
	free(uid);
	free(gid);
	free(home);
	free(shell);
}
