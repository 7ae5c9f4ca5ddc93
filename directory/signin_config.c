/* signin_config.c - OAuth issuer entries under ou=OAuth Issuers,ou=Configuration (made when the first is added) and
 * the Kerberos settings entry, written over the administrator's connection. */
#include "directory/signin_config.h"
#include "directory/ldap_util.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static bool value_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > SIGNIN_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return false;
	}
	return true;
}

static bool claim_ok(const char *c)
{
	if (c[0] == '\0' || strlen(c) > 64)
		return false;
	for (; *c != '\0'; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			  *c == '_' || *c == '-' || *c == '.' || *c == ':';
		if (!ok)
			return false;
	}
	return true;
}

static char *issuer_dn(const struct config *cfg, const char *issuer)
{
	struct buf dn = BUF_INIT;
	buf_append_str(&dn, "cn=");
	ldapu_escape_dn(&dn, issuer, strlen(issuer));
	buf_printf(&dn, "," SIGNIN_ISSUERS_OU ",%s", cfg->suffix);
	return buf_steal(&dn);
}

/* Makes ou=OAuth Issuers when it is missing (the first issuer; directories made before issuers). */
static int ensure_container(LDAP *ld, const struct config *cfg, struct buf *error_r)
{
	char *dn = xasprintf(SIGNIN_ISSUERS_OU ",%s", cfg->suffix);
	int ret = ldapu_ensure_ou(ld, dn, "OAuth Issuers", "cannot create the folder of OAuth issuers", error_r);
	free(dn);
	return ret;
}

int signin_oauth_add(LDAP *ld, const struct config *cfg, const char *issuer, const char *keys, const char *audience,
		     const char *claim, int *replaced_r, struct buf *error_r)
{
	*replaced_r = 0;
	if (!value_ok(issuer) || !value_ok(keys) || !value_ok(audience)) {
		buf_printf(error_r,
			   "the issuer, --jwks and --audience must each be 1-%d characters without control "
			   "characters",
			   SIGNIN_VALUE_MAX);
		return IX_EINVAL;
	}
	if (claim != NULL && !claim_ok(claim)) {
		buf_printf(error_r, "\"%s\" is not a claim name", claim);
		return IX_EINVAL;
	}
	int ret = ensure_container(ld, cfg, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = issuer_dn(cfg, issuer);
	*replaced_r = ldapu_entry_matches(ld, dn, "(objectClass=ixOAuthIssuer)");
	LDAPMod **mods = NULL;
	size_t n = 0;
	int op = *replaced_r ? LDAP_MOD_REPLACE : LDAP_MOD_ADD;
	if (!*replaced_r) {
		ldapu_mod_add(&mods, &n, op, "objectClass", ldapu_values1("ixOAuthIssuer"));
		ldapu_mod_add(&mods, &n, op, "cn", ldapu_values1(issuer));
	}
	ldapu_mod_add(&mods, &n, op, "ixOAuthKeys", ldapu_values1(keys));
	ldapu_mod_add(&mods, &n, op, "ixOAuthAudience", ldapu_values1(audience));
	if (claim != NULL)
		ldapu_mod_add(&mods, &n, op, "ixOAuthClaim", ldapu_values1(claim));
	else if (*replaced_r)
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixOAuthClaim", NULL);
	if (*replaced_r) {
		ret = ldapu_modify(ld, dn, mods, error_r);
	} else {
		int rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
		ret = rc == LDAP_SUCCESS ? IX_OK : ldapu_fail(ld, rc, "could not add the issuer", error_r);
	}
	ldapu_mods_free(mods);
	free(dn);
	return ret;
}

int signin_oauth_del(LDAP *ld, const struct config *cfg, const char *issuer, struct buf *error_r)
{
	char *dn = issuer_dn(cfg, issuer);
	int ret = IX_OK;
	if (!ldapu_entry_matches(ld, dn, "(objectClass=ixOAuthIssuer)")) {
		buf_printf(error_r, "no OAuth issuer %s", issuer);
		ret = IX_ENOTFOUND;
	} else {
		int rc = ldap_delete_ext_s(ld, dn, NULL, NULL);
		if (rc != LDAP_SUCCESS)
			ret = ldapu_fail(ld, rc, "could not delete the issuer", error_r);
	}
	free(dn);
	return ret;
}

int signin_oauth_list(LDAP *ld, const struct config *cfg, struct buf *out, struct buf *error_r)
{
	static const char *const attrs[] = { "cn", "ixOAuthKeys", "ixOAuthAudience", "ixOAuthClaim", NULL };
	char *base = xasprintf(SIGNIN_ISSUERS_OU ",%s", cfg->suffix);
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixOAuthIssuer)", attrs, &res, error_r);
	free(base);
	if (ret == IX_ENOTFOUND)
		ret = IX_OK; /* no issuer was ever added */
	if (ret != IX_OK)
		return ret;
	for (LDAPMessage *e = ldapu_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
		char *cn = ldapu_get_first(ld, e, "cn"), *keys = ldapu_get_first(ld, e, "ixOAuthKeys");
		char *aud = ldapu_get_first(ld, e, "ixOAuthAudience"), *claim = ldapu_get_first(ld, e, "ixOAuthClaim");
		buf_printf(out, "%s\n  keys:     %s\n  audience: %s\n  claim:    %s\n", cn != NULL ? cn : "",
			   keys != NULL ? keys : "", aud != NULL ? aud : "", claim != NULL ? claim : "email");
		free(cn);
		free(keys);
		free(aud);
		free(claim);
	}
	ldap_msgfree(res);
	return IX_OK;
}
