/* prov_sieve.c - the organisation's global Sieve scripts (RFC 6609 include :global): entries of class ixSieveGlobal
 * under ou=Sieve Scripts,ou=Configuration, put, listed, read and deleted by `interchange sieve global` as the caller
 * (the directory's rules decide who may); the directory replicates them to every server's delivery. */
#include "directory/provision.h"
#include "common/err.h"
#include "directory/dir.h"
#include "directory/ldap_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_check(const char *name, struct buf *error_r)
{
	if (dir_sieve_global_name_valid(name))
		return IX_OK;
	buf_printf(error_r, "\"%s\" is not a global script name (letters, digits, '.', '-', '_'; up to %d)", name,
		   DIR_SIEVE_GLOBAL_NAME_MAX);
	return IX_EINVAL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int prov_sieve_global_list(struct prov *p, struct buf *names_r, size_t *count_r, struct buf *error_r)
{
	LDAP *ld = prov_ldap(p);
	char *base = xasprintf(DIR_SIEVE_GLOBAL_OU ",%s", prov_config(p)->suffix);
	const char *attrs[] = { "cn", NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixSieveGlobal)", attrs, &res, error_r);
	free(base);
	if (ret == IX_ENOTFOUND)
		ret = IX_OK; /* no global script was ever put */
	int n = ret == IX_OK ? ldap_count_entries(ld, res) : 0;
	char **names = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*names));
	size_t count = 0;
	for (LDAPMessage *e = ldapu_first_entry(ld, res); e != NULL && count < (size_t)n; e = ldap_next_entry(ld, e)) {
		char *cn = ldapu_get_first(ld, e, "cn");
		if (cn != NULL)
			names[count++] = cn;
	}
	ldap_msgfree(res);
	qsort(names, count, sizeof(*names), cmp_str);
	for (size_t i = 0; i < count; i++) {
		buf_printf(names_r, "%s\n", names[i]);
		free(names[i]);
	}
	free(names);
	*count_r = count;
	return ret;
}

int prov_sieve_global_get(struct prov *p, const char *name, struct buf *text_r, struct buf *error_r)
{
	int ret = name_check(name, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = prov_config_dn(p, name, DIR_SIEVE_GLOBAL_OU);
	char **values = NULL;
	ret = ldapu_read_values(prov_ldap(p), dn, "ixSieveScript", &values, error_r);
	free(dn);
	if (ret == IX_OK && values != NULL && values[0] != NULL)
		buf_append_str(text_r, values[0]);
	else if (ret == IX_OK || ret == IX_ENOTFOUND) {
		buf_printf(error_r, "there is no global script %s", name);
		ret = IX_ENOTFOUND;
	}
	ldapu_values_free(&values);
	return ret;
}

int prov_sieve_global_put(struct prov *p, const char *name, const char *text, size_t max_count, struct buf *error_r)
{
	int ret = name_check(name, error_r);
	if (ret != IX_OK)
		return ret;
	LDAP *ld = prov_ldap(p);
	char *dn = prov_config_dn(p, name, DIR_SIEVE_GLOBAL_OU);
	LDAPMod **mods = NULL;
	size_t k = 0;
	ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixSieveScript", ldapu_values1(text));
	ret = ldapu_modify(ld, dn, mods, error_r); /* replacing one is always fine */
	ldapu_mods_free(mods);
	if (ret == IX_ENOTFOUND) {
		struct buf names = BUF_INIT;
		size_t count = 0;
		ret = prov_sieve_global_list(p, &names, &count, error_r);
		buf_free(&names);
		if (ret == IX_OK && count >= max_count) {
			buf_printf(error_r, "the organisation may keep at most %zu global scripts", max_count);
			ret = IX_ELIMIT;
		}
		char *base = xasprintf(DIR_SIEVE_GLOBAL_OU ",%s", prov_config(p)->suffix);
		if (ret == IX_OK)
			ret = ldapu_ensure_ou(ld, base, "Sieve Scripts", "cannot create the folder of global scripts",
					      error_r);
		free(base);
		mods = NULL;
		k = 0;
		ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "objectClass", ldapu_values1("ixSieveGlobal"));
		ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "cn", ldapu_values1(name));
		ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixSieveScript", ldapu_values1(text));
		int rc = ret == IX_OK ? ldap_add_ext_s(ld, dn, mods, NULL, NULL) : LDAP_SUCCESS;
		ldapu_mods_free(mods);
		if (rc != LDAP_SUCCESS) {
			char *what = xasprintf("cannot add global script %s", name);
			ret = ldapu_fail(ld, rc, what, error_r);
			free(what);
		}
	}
	free(dn);
	return ret;
}

int prov_sieve_global_del(struct prov *p, const char *name, struct buf *error_r)
{
	int ret = name_check(name, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = prov_config_dn(p, name, DIR_SIEVE_GLOBAL_OU);
	int rc = ldap_delete_ext_s(prov_ldap(p), dn, NULL, NULL);
	free(dn);
	if (rc == LDAP_NO_SUCH_OBJECT) {
		buf_printf(error_r, "there is no global script %s", name);
		return IX_ENOTFOUND;
	}
	if (rc != LDAP_SUCCESS) {
		char *what = xasprintf("cannot delete global script %s", name);
		ret = ldapu_fail(prov_ldap(p), rc, what, error_r);
		free(what);
	}
	return ret;
}
