/* signin_config.c - OAuth issuer entries under ou=OAuth Issuers,ou=Configuration (made when the first is added) and
 * the Kerberos settings entry, written over the administrator's connection. */
#include "directory/signin_config.h"
#include "directory/ldap_util.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static int slapd_regexps(LDAP *ld, const char *marker, char **add, const char *host, struct buf *error_r);

/* The rules mapping a bearer token's claim to a recipient for slapd's OAUTHBEARER / XOAUTH2 plugin. */
static int slapd_bearer(LDAP *ld, const struct config *cfg, struct buf *error_r)
{
	char **add = NULL;
	size_t nadd = 0;
	for (int n = 0; n < 2; n++) {
		char *rule = signin_bearer_regexp(cfg, n);
		ldapu_values_push(&add, &nadd, rule);
		free(rule);
	}
	return slapd_regexps(ld, "cn=" SIGNIN_BEARER_MECHS ",cn=auth", add, NULL, error_r);
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
	return ret == IX_OK ? slapd_bearer(ld, cfg, error_r) : ret;
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

/* ---- Kerberos ---- */

static bool realm_ok(const char *r)
{
	size_t n = strlen(r);
	if (n == 0 || n > 255)
		return false;
	for (; *r != '\0'; r++) {
		if (!((*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') || (*r >= '0' && *r <= '9') || *r == '.' ||
		      *r == '-'))
			return false;
	}
	return true;
}

char *signin_gssapi_regexp(const struct config *cfg, const char *realm, int n)
{
	/* slapd matches the normalized DN: the realm in lower case. Only characters a login may hold, so nothing can
	 * widen the search filter. */
	struct buf r = BUF_INIT;
	for (const char *c = realm; *c != '\0'; c++)
		buf_append_char(&r, (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c);
	struct buf re = BUF_INIT; /* the realm with its dots matching dots only */
	for (const char *c = buf_cstr(&r); *c != '\0'; c++) {
		if (*c == '.')
			buf_append_str(&re, "[.]");
		else
			buf_append_char(&re, *c);
	}
	char *rule = NULL;
	if (n == 0)
		rule = xasprintf("\"^uid=([A-Za-z0-9][A-Za-z0-9._-]*)@%s,cn=gssapi,cn=auth$\" "
				 "\"ldap:///ou=Recipients,%s??one?(uid=$1)\"",
				 buf_cstr(&re), cfg->suffix);
	else if (n == 1)
		rule = xasprintf("\"^uid=([A-Za-z0-9][A-Za-z0-9._-]*),cn=gssapi,cn=auth$\" "
				 "\"ldap:///ou=Recipients,%s??one?(uid=$1)\"",
				 cfg->suffix);
	else if (n == 2)
		rule = xasprintf("\"^uid=([A-Za-z0-9][A-Za-z0-9._-]*@[a-z0-9][a-z0-9.-]*),cn=gssapi,cn=auth$\" "
				 "\"ldap:///ou=Recipients,%s??one?(ixUserPrincipalName=$1)\"",
				 cfg->suffix);
	buf_free(&re);
	buf_free(&r);
	return rule;
}

/* The access rule that gives a GSSAPI identity no user was found for (uid=PRINCIPAL,cn=gssapi,cn=auth: a principal
 * of a trusted realm, or of ours without a user) nothing at all: slapd lets such a bind succeed, and it would count
 * among the "users" the address book is open to. First of the database's rules; its target is the suffix's
 * subtree, not "to *", before whose first occurrence the upgrades insert their rules (upgrade.c, insert_rules). */
#define GSSAPI_UNMAPPED_ACL "to dn.subtree=\"%s\" by dn.regex=\"^.*,cn=gssapi,cn=auth$\" none by * break"

static int slapd_gssapi_acl(LDAP *ld, const struct config *cfg, struct buf *error_r)
{
	static const char db[] = "olcDatabase={1}mdb,cn=config";
	char **acl = NULL;
	int ret = ldapu_read_values(ld, db, "olcAccess", &acl, error_r);
	if (ret != IX_OK)
		return ret;
	char *rule = xasprintf(GSSAPI_UNMAPPED_ACL, cfg->suffix);
	bool have = false;
	for (size_t i = 0; acl != NULL && acl[i] != NULL; i++)
		have |= strstr(acl[i], rule) != NULL;
	ldapu_values_free(&acl);
	if (!have) {
		char *value = xasprintf("{0}%s", rule);
		LDAPMod **mods = NULL;
		size_t n = 0;
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcAccess", ldapu_values1(value));
		ret = ldapu_modify(ld, db, mods, error_r);
		ldapu_mods_free(mods);
		free(value);
	}
	free(rule);
	return ret;
}

/* Replaces the GSSAPI rules among cn=config's olcAuthzRegexp (those naming cn=gssapi) with the realm's (the default
 * realm's rule only when default_ours), sets olcSaslHost, and shuts unmapped identities out. */
/* Replaces the olcAuthzRegexp rules of cn=config that contain marker with add (NULL-terminated; taken over), and
 * sets olcSaslHost when host is not NULL. */
static int slapd_regexps(LDAP *ld, const char *marker, char **add, const char *host, struct buf *error_r)
{
	char **old = NULL;
	int ret = ldapu_read_values(ld, "cn=config", "olcAuthzRegexp", &old, error_r);
	char **gone = NULL;
	size_t ngone = 0;
	for (size_t i = 0; old != NULL && old[i] != NULL; i++) {
		if (strstr(old[i], marker) != NULL)
			ldapu_values_push(&gone, &ngone, old[i]);
	}
	LDAPMod **mods = NULL;
	size_t nm = 0;
	if (gone != NULL)
		ldapu_mod_add(&mods, &nm, LDAP_MOD_DELETE, "olcAuthzRegexp", gone);
	ldapu_mod_add(&mods, &nm, LDAP_MOD_ADD, "olcAuthzRegexp", add);
	if (host != NULL)
		ldapu_mod_add(&mods, &nm, LDAP_MOD_REPLACE, "olcSaslHost", ldapu_values1(host));
	if (ret == IX_OK)
		ret = ldapu_modify(ld, "cn=config", mods, error_r);
	ldapu_mods_free(mods);
	ldapu_values_free(&old);
	return ret;
}

static int slapd_gssapi(LDAP *ld, const struct config *cfg, const char *realm, bool default_ours, struct buf *error_r)
{
	char **add = NULL;
	size_t nadd = 0;
	for (int n = 0; n < 3; n++) {
		if (n == 1 && !default_ours)
			continue;
		char *rule = signin_gssapi_regexp(cfg, realm, n);
		ldapu_values_push(&add, &nadd, rule);
		free(rule);
	}
	int ret = slapd_regexps(ld, "cn=gssapi,cn=auth", add, cfg->hostname, error_r);
	return ret == IX_OK ? slapd_gssapi_acl(ld, cfg, error_r) : ret;
}

char *signin_bearer_regexp(const struct config *cfg, int n)
{
	/* the claim is an address (email, an upn), or a login (preferred_username); only characters those may hold */
	if (n == 0)
		return xasprintf("\"^uid=([A-Za-z0-9._+-]+@[A-Za-z0-9.-]+)(,cn=[^,]+)?,cn=" SIGNIN_BEARER_MECHS
				 ",cn=auth$\" \"ldap:///ou=Recipients,%s??one?(|(mail=$1)(ixProxyAddresses=smtp:$1)"
				 "(ixUserPrincipalName=$1))\"",
				 cfg->suffix);
	if (n == 1)
		return xasprintf("\"^uid=([A-Za-z0-9][A-Za-z0-9._-]*)(,cn=[^,]+)?,cn=" SIGNIN_BEARER_MECHS
				 ",cn=auth$\" \"ldap:///ou=Recipients,%s??one?(uid=$1)\"",
				 cfg->suffix);
	return NULL;
}

int signin_kerberos_realm(LDAP *ld, const struct config *cfg, const char *realm, const char *default_realm,
			  struct buf *error_r)
{
	if (!realm_ok(realm)) {
		buf_printf(error_r, "\"%s\" is not a Kerberos realm (letters, digits, dots and hyphens)", realm);
		return IX_EINVAL;
	}
	char *dn = xasprintf(SIGNIN_KERBEROS_RDN ",%s", cfg->suffix);
	bool exists = ldapu_entry_matches(ld, dn, "(objectClass=ixKerberos)");
	LDAPMod **mods = NULL;
	size_t n = 0;
	int ret;
	if (exists) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixKerberosRealm", ldapu_values1(realm));
		ret = ldapu_modify(ld, dn, mods, error_r);
	} else {
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", ldapu_values1("ixKerberos"));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1("Kerberos"));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixKerberosRealm", ldapu_values1(realm));
		int rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
		ret = rc == LDAP_SUCCESS ? IX_OK : ldapu_fail(ld, rc, "could not set the realm", error_r);
	}
	ldapu_mods_free(mods);
	free(dn);
	bool default_ours = default_realm != NULL && strcasecmp(default_realm, realm) == 0;
	return ret == IX_OK ? slapd_gssapi(ld, cfg, realm, default_ours, error_r) : ret;
}

int signin_kerberos_realm_get(LDAP *ld, const struct config *cfg, struct buf *realm_r, struct buf *error_r)
{
	static const char *const attrs[] = { "ixKerberosRealm", NULL };
	char *dn = xasprintf(SIGNIN_KERBEROS_RDN ",%s", cfg->suffix);
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, dn, LDAP_SCOPE_BASE, "(objectClass=ixKerberos)", attrs, &res, error_r);
	free(dn);
	char *realm = ret == IX_OK ? ldapu_get_first(ld, ldapu_first_entry(ld, res), "ixKerberosRealm") : NULL;
	ldap_msgfree(res);
	if (ret == IX_OK && realm == NULL)
		ret = IX_ENOTFOUND;
	if (realm != NULL)
		buf_append_str(realm_r, realm);
	free(realm);
	return ret;
}

/* IX_OK unless a recipient other than dn has principal (IX_EEXIST). */
static int principal_free(LDAP *ld, const struct config *cfg, const char *principal, const char *dn,
			  struct buf *error_r)
{
	static const char *const attrs[] = { "1.1", NULL };
	struct buf filter = BUF_INIT;
	buf_append_str(&filter, "(ixUserPrincipalName=");
	ldapu_escape_filter(&filter, principal, strlen(principal));
	buf_append_char(&filter, ')');
	char *base = xasprintf("ou=Recipients,%s", cfg->suffix);
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, buf_cstr(&filter), attrs, &res, error_r);
	for (LDAPMessage *e = ldapu_first_entry(ld, res); ret == IX_OK && e != NULL; e = ldap_next_entry(ld, e)) {
		char *other = ldap_get_dn(ld, e);
		if (other != NULL && strcasecmp(other, dn) != 0) {
			buf_printf(error_r, "%s already has the principal %s", other, principal);
			ret = IX_EEXIST;
		}
		ldap_memfree(other);
	}
	ldap_msgfree(res);
	free(base);
	buf_free(&filter);
	return ret;
}

int signin_user_principal(LDAP *ld, const struct config *cfg, const char *login, const char *principal,
			  struct buf *error_r)
{
	const char *at = principal != NULL ? strrchr(principal, '@') : NULL;
	if (principal != NULL && (at == NULL || at == principal || !realm_ok(at + 1) || !value_ok(principal) ||
				  strpbrk(principal, "/*()\\") != NULL)) {
		buf_printf(error_r, "\"%s\" is not a principal user@REALM", principal);
		return IX_EINVAL;
	}
	struct buf dn = BUF_INIT;
	buf_append_str(&dn, "uid=");
	ldapu_escape_dn(&dn, login, strlen(login));
	buf_printf(&dn, ",ou=Recipients,%s", cfg->suffix);
	int ret = IX_OK;
	if (!ldapu_entry_matches(ld, buf_cstr(&dn), "(objectClass=ixMailUser)")) {
		buf_printf(error_r, "no user %s", login);
		ret = IX_ENOTFOUND;
	}
	if (ret == IX_OK && principal != NULL)
		ret = principal_free(ld, cfg, principal, buf_cstr(&dn), error_r);
	bool has_class = ret == IX_OK && ldapu_entry_matches(ld, buf_cstr(&dn), "(objectClass=ixKerberosPrincipal)");
	LDAPMod **mods = NULL;
	size_t n = 0;
	if (ret == IX_OK && principal != NULL) {
		if (!has_class)
			ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", ldapu_values1("ixKerberosPrincipal"));
		ldapu_mod_add(&mods, &n, has_class ? LDAP_MOD_REPLACE : LDAP_MOD_ADD, "ixUserPrincipalName",
			      ldapu_values1(principal));
	} else if (ret == IX_OK && has_class) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixUserPrincipalName", NULL);
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "objectClass", ldapu_values1("ixKerberosPrincipal"));
	}
	if (mods != NULL)
		ret = ldapu_modify(ld, buf_cstr(&dn), mods, error_r);
	ldapu_mods_free(mods);
	buf_free(&dn);
	return ret;
}
