/* upgrade.c - data folders made by older versions brought up to what `interchange init` makes now, in place and over
 * ldapi while slapd runs: schema definitions added or changed since, the ports of this server's entry, TLS and the
 * administrator's entry, the access log, the password policy, SASL binds by login or address, application accounts,
 * the address book's person details, POSIX accounts and groups. */
#include "directory/upgrade.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "directory/slapd.h"
#include "common/settings.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <ldap.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the schema brought to this version's at runtime ---- */

extern const char schema_interchange_ldif[];

/* A cn=config value "{i}( OID ..." without its "{i}" ordering prefix. */
static const char *definition_text(const char *value)
{
	if (*value != '{')
		return value;
	size_t n = strcspn(value, "}");
	return value[n] == '}' ? value + n + 1 : value;
}

/* The OID of a definition "( OID NAME ..." (after an optional {i} ordering prefix), as a new string or NULL. */
static char *definition_oid(const char *def)
{
	const char *p = definition_text(def);
	while (*p == ' ')
		p++;
	if (*p != '(')
		return NULL;
	p++;
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, " )");
	return n > 0 ? xstrndup(p, n) : NULL;
}

/* The value among values (cn=config's, "{i}( OID ...") that defines oid, or NULL. */
static const char *live_definition(char **values, const char *oid)
{
	for (char **v = values; v != NULL && *v != NULL; v++) {
		char *o = definition_oid(*v);
		int same = o != NULL && strcmp(o, oid) == 0;
		free(o);
		if (same)
			return *v;
	}
	return NULL;
}

/* Brings cn=config's definition of kind (olcAttributeTypes or olcObjectClasses) to def, ours: added when live is
 * NULL, else replaced in its place when its text differs (the value at live's {i} deleted and def added with the
 * same {i} in one change, so nothing after it moves: docs/slapd-facts.md, "Schema changes"). Counts in *added_r or
 * *replaced_r. */
static int bring_definition(LDAP *ld, const char *dn, const char *kind, const char *def, const char *live,
			    unsigned *added_r, unsigned *replaced_r, struct buf *error_r)
{
	if (live != NULL && strcmp(definition_text(live), def) == 0)
		return IX_OK;
	LDAPMod **mods = NULL;
	size_t n = 0;
	if (live == NULL) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, kind, ldapu_values1(def));
	} else {
		/* the value to delete named by its index alone, "{i}" */
		int index = (int)(definition_text(live) - live);
		char *v = xstrndup(live, (size_t)index);
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, kind, ldapu_values1(v));
		free(v);
		v = xasprintf("%.*s%s", index, live, def);
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, kind, ldapu_values1(v));
		free(v);
	}
	int ret = ldapu_modify(ld, dn, mods, error_r);
	ldapu_mods_free(mods);
	if (ret == IX_OK)
		(*(live == NULL ? added_r : replaced_r))++;
	return ret;
}

int upgrade_schema(const struct config *cfg, unsigned *added_r, unsigned *replaced_r, struct buf *error_r)
{
	*added_r = *replaced_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	static const char *const kinds[] = { "olcAttributeTypes", "olcObjectClasses", NULL };
	LDAPMessage *res;
	ret = ldapu_search(ld, "cn=schema,cn=config", LDAP_SCOPE_ONELEVEL, "(cn=*interchange)", kinds, &res, error_r);
	if (ret != IX_OK) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		return ret;
	}
	LDAPMessage *e = ldap_first_entry(ld, res);
	if (e == NULL) {
		buf_append_str(error_r, "cn=config holds no interchange schema");
		ldap_msgfree(res);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return IX_ENOTFOUND;
	}
	char *dn = ldap_get_dn(ld, e);
	char **live[2] = { ldapu_get_values(ld, e, kinds[0], NULL), ldapu_get_values(ld, e, kinds[1], NULL) };
	ldap_msgfree(res);
	/* attribute types first: the classes name them */
	for (int k = 0; k < 2 && ret == IX_OK; k++) {
		size_t klen = strlen(kinds[k]);
		for (const char *line = schema_interchange_ldif; *line != '\0' && ret == IX_OK;) {
			size_t len = strcspn(line, "\n");
			if (len > klen + 2 && strncmp(line, kinds[k], klen) == 0 &&
			    strncmp(line + klen, ": ", 2) == 0) {
				char *def = xstrndup(line + klen + 2, len - klen - 2);
				char *oid = definition_oid(def);
				if (oid != NULL)
					ret = bring_definition(ld, dn != NULL ? dn : "", kinds[k], def,
							       live_definition(live[k], oid), added_r, replaced_r,
							       error_r);
				free(oid);
				free(def);
			}
			line += len + (line[len] == '\n');
		}
	}
	ldapu_values_free(&live[0]);
	ldapu_values_free(&live[1]);
	ldap_memfree(dn);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- directories made before TLS and the administrator entry ---- */

/* olcTLSCertificateFile and olcTLSCertificateKeyFile: the data folder's pair. slapd builds its TLS context again
 * after the change, even when the values are the ones it had. */
static int set_tls_files(LDAP *ld, const struct config *cfg, struct buf *error_r)
{
	char *cert = config_path(cfg, "tls/cert.pem"), *key = config_path(cfg, "tls/key.pem");
	char *cv[] = { cert, NULL }, *kv[] = { key, NULL };
	LDAPMod m1 = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcTLSCertificateFile", .mod_values = cv };
	LDAPMod m2 = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcTLSCertificateKeyFile", .mod_values = kv };
	LDAPMod *mods[] = { &m1, &m2, NULL };
	int ret = ldapu_modify(ld, "cn=config", mods, error_r);
	free(cert);
	free(key);
	return ret;
}

int upgrade_tls_files(const struct config *cfg, struct buf *error_r)
{
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	ret = set_tls_files(ld, cfg, error_r);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

int upgrade_security(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	static const char *const gattrs[] = { "olcTLSCertificateFile", NULL };
	LDAPMessage *res = NULL;
	char *tlsfile = NULL, *db_dn = NULL, *rootpw = NULL, **acl = NULL;
	if ((ret = ldapu_search(ld, "cn=config", LDAP_SCOPE_BASE, "(objectClass=*)", gattrs, &res, error_r)) != IX_OK)
		goto out;
	tlsfile = ldapu_get_first(ld, ldap_first_entry(ld, res), "olcTLSCertificateFile");
	ldap_msgfree(res);
	if (tlsfile == NULL) {
		if ((ret = set_tls_files(ld, cfg, error_r)) != IX_OK)
			goto out;
		(*changes_r)++;
	}
	struct buf filter = BUF_INIT;
	buf_append_str(&filter, "(olcSuffix=");
	ldapu_escape_filter(&filter, cfg->suffix, strlen(cfg->suffix));
	buf_append_char(&filter, ')');
	static const char *const dattrs[] = { "olcAccess", "olcRootPW", NULL };
	ret = ldapu_search(ld, "cn=config", LDAP_SCOPE_ONELEVEL, buf_cstr(&filter), dattrs, &res, error_r);
	buf_free(&filter);
	if (ret != IX_OK)
		goto out;
	LDAPMessage *e = ldap_first_entry(ld, res);
	char *dn = e != NULL ? ldap_get_dn(ld, e) : NULL;
	db_dn = dn != NULL ? xstrdup(dn) : NULL;
	ldap_memfree(dn);
	acl = ldapu_get_values(ld, e, "olcAccess", NULL);
	rootpw = ldapu_get_first(ld, e, "olcRootPW");
	ldap_msgfree(res);
	if (db_dn == NULL) {
		buf_printf(error_r, "cn=config has no database for %s", cfg->suffix);
		ret = IX_ENOTFOUND;
		goto out;
	}
	/* the password rule is {0} (first match wins): replace it with the one that wants TLS off loopback */
	/* (and one that lets a user's own old password be checked: self =wx; =w alone made slapd refuse every
	 * ldappasswd -a) */
	/* (and, since SCRAM, one that covers the verifiers and app passwords too) */
	if (acl[0] != NULL && strncmp(acl[0], "{0}to attrs=userPassword", 24) == 0 &&
	    (strstr(acl[0], "tls_ssf") == NULL || strstr(acl[0], "by self =w ") != NULL ||
	     strstr(acl[0], "ixScramVerifier") == NULL)) {
		struct buf rule = BUF_INIT;
		buf_append_str(&rule, "{0}");
		slapd_password_acl(&rule);
		char *dv[] = { (char *)"{0}", NULL }, *av[] = { rule.data, NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_DELETE, .mod_type = (char *)"olcAccess", .mod_values = dv };
		LDAPMod m2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcAccess", .mod_values = av };
		LDAPMod *mods[] = { &m1, &m2, NULL };
		ret = ldapu_modify(ld, db_dn, mods, error_r);
		buf_free(&rule);
		if (ret != IX_OK)
			goto out;
		(*changes_r)++;
	}
	/* olcRootPW binds bypass every ACL, TLS rule included: move the password into the administrator's entry */
	if (rootpw != NULL) {
		const char *rdn = cfg->admin_dn + 3;
		char *cn = xstrndup(rdn, strcspn(rdn, ","));
		char *oc[] = { (char *)"organizationalRole", (char *)"simpleSecurityObject", NULL },
		     *cnv[] = { cn, NULL }, *pv[] = { rootpw, NULL };
		LDAPMod a1 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
		LDAPMod a2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"cn", .mod_values = cnv };
		LDAPMod a3 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"userPassword", .mod_values = pv };
		LDAPMod *amods[] = { &a1, &a2, &a3, NULL };
		int rc = ldap_add_ext_s(ld, cfg->admin_dn, amods, NULL, NULL);
		free(cn);
		if (rc != LDAP_SUCCESS && rc != LDAP_ALREADY_EXISTS) {
			buf_printf(error_r, "cannot add the administrator's entry %s: %s", cfg->admin_dn,
				   ldap_err2string(rc));
			ret = ldapu_err(rc);
			goto out;
		}
		LDAPMod d = { .mod_op = LDAP_MOD_DELETE, .mod_type = (char *)"olcRootPW", .mod_values = NULL };
		LDAPMod *dmods[] = { &d, NULL };
		if ((ret = ldapu_modify(ld, db_dn, dmods, error_r)) != IX_OK)
			goto out;
		(*changes_r)++;
	}
out:
	if (rootpw != NULL)
		explicit_bzero(rootpw, strlen(rootpw));
	free(rootpw);
	free(tlsfile);
	free(db_dn);
	ldapu_values_free(&acl);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- delta-syncrepl: the access log on directories made before it ---- */

/* Adds the entries of an LDIF text as our generators write it (unfolded "attr: value" lines, entries separated by
 * an empty line, no changetype) over ld. An entry that exists already is left as it is. */
static int add_ldif(LDAP *ld, const char *ldif, struct buf *error_r)
{
	int ret = IX_OK;
	for (const char *p = ldif; *p != '\0' && ret == IX_OK;) {
		size_t elen = 0;
		const char *end = strstr(p, "\n\n");
		elen = end != NULL ? (size_t)(end - p) : strlen(p);
		char *dn = NULL;
		LDAPMod **mods = xcalloc(1, sizeof(*mods));
		size_t nmods = 0;
		for (const char *line = p; line < p + elen;) {
			size_t len = strcspn(line, "\n");
			if (len > (size_t)(p + elen - line))
				len = (size_t)(p + elen - line);
			const char *colon = memchr(line, ':', len);
			if (colon != NULL && colon + 2 <= line + len) {
				char *type = xstrndup(line, (size_t)(colon - line));
				char *value = xstrndup(colon + 2, len - (size_t)(colon - line) - 2);
				if (strcasecmp(type, "dn") == 0) {
					free(dn);
					dn = value;
					free(type);
				} else {
					size_t k = 0;
					while (k < nmods && strcasecmp(mods[k]->mod_type, type) != 0)
						k++;
					if (k == nmods) {
						mods = xrealloc(mods, (nmods + 2) * sizeof(*mods));
						mods[k] = xcalloc(1, sizeof(LDAPMod));
						mods[k]->mod_op = LDAP_MOD_ADD;
						mods[k]->mod_type = type;
						mods[k]->mod_values = xcalloc(1, sizeof(char *));
						mods[++nmods] = NULL;
					} else {
						free(type);
					}
					size_t nv = 0;
					while (mods[k]->mod_values[nv] != NULL)
						nv++;
					mods[k]->mod_values = xrealloc(mods[k]->mod_values, (nv + 2) * sizeof(char *));
					mods[k]->mod_values[nv] = value;
					mods[k]->mod_values[nv + 1] = NULL;
				}
			}
			line += len + 1;
		}
		if (dn != NULL) {
			int rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
			if (rc != LDAP_SUCCESS && rc != LDAP_ALREADY_EXISTS) {
				char *diag = NULL;
				ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
				buf_printf(error_r, "cannot add %s to cn=config: %s%s%s", dn, ldap_err2string(rc),
					   diag != NULL && diag[0] ? ": " : "", diag != NULL ? diag : "");
				ldap_memfree(diag);
				ret = ldapu_err(rc);
			}
		}
		for (size_t k = 0; k < nmods; k++) {
			free(mods[k]->mod_type);
			ldapu_values_free(&mods[k]->mod_values);
			free(mods[k]);
		}
		free(mods);
		free(dn);
		p += elen;
		while (*p == '\n')
			p++;
	}
	return ret;
}

/* Loads slapd's module name (cn=module{0}); one already loaded is fine. */
static int load_module(LDAP *ld, const char *name, struct buf *error_r)
{
	char *mv[] = { (char *)name, NULL };
	LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcModuleLoad", .mod_values = mv };
	LDAPMod *mods[] = { &m, NULL };
	enum ldapu_value_fault fault;
	char *what = xasprintf("cannot load slapd's %s module", name);
	int ret = ldapu_modify_values(ld, "cn=module{0},cn=config", mods, what, &fault, error_r);
	free(what);
	return ret != IX_OK && fault == LDAPU_VALUE_EXISTS ? IX_OK : ret;
}

int upgrade_accesslog(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	/* the layout slapd_create_config makes: databases {-1}frontend, {0}config, {1}mdb (the directory, with
	 * overlays {0}-{4}) and, since delta-syncrepl, {2}mdb for cn=accesslog */
	static const char *const attrs[] = { "olcSuffix", NULL };
	LDAPMessage *res = NULL;
	if ((ret = ldapu_search(ld, "cn=config", LDAP_SCOPE_SUBTREE,
				"(|(objectClass=olcDatabaseConfig)(objectClass=olcOverlayConfig))", attrs, &res,
				error_r)) != IX_OK)
		goto out;
	int has_log = 0, main_ok = 0, others = 0;
	size_t overlays = 0;
	for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
		char *dn = ldap_get_dn(ld, e), *suffix = ldapu_get_first(ld, e, "olcSuffix");
		if (dn != NULL && strncasecmp(dn, "olcOverlay=", 11) == 0) {
			overlays += strcasestr(dn, ",olcDatabase={1}mdb,cn=config") != NULL;
		} else if (suffix != NULL && strcasecmp(suffix, SLAPD_ACCESSLOG_SUFFIX) == 0) {
			has_log = 1;
		} else if (dn != NULL && strcasecmp(dn, "olcDatabase={1}mdb,cn=config") == 0) {
			main_ok = suffix != NULL && strcasecmp(suffix, cfg->suffix) == 0;
		} else if (dn != NULL && strcasecmp(dn, "olcDatabase={-1}frontend,cn=config") != 0 &&
			   strcasecmp(dn, "olcDatabase={0}config,cn=config") != 0) {
			others++;
		}
		free(suffix);
		ldap_memfree(dn);
	}
	ldap_msgfree(res);
	if (has_log)
		goto out;
	if (!main_ok || others > 0 || overlays != 5) {
		buf_printf(error_r,
			   "this directory's configuration is not the one interchange init makes (databases or "
			   "overlays differ), so the access log delta-syncrepl needs cannot be added to it "
			   "automatically: add the entries of docs/multi-server.md \"The access log\" by hand");
		ret = IX_EINVAL;
		goto out;
	}
	char *dir = config_path(cfg, SLAPD_ACCESSLOG_DIR);
	int r = mkdir_p(dir, 0750);
	if (r < 0)
		buf_printf(error_r, "cannot create %s: %s", dir, strerror(errno));
	free(dir);
	if (r < 0) {
		ret = IX_EIO;
		goto out;
	}
	if ((ret = load_module(ld, SLAPD_ACCESSLOG_MODULE, error_r)) != IX_OK)
		goto out;
	struct buf ldif = BUF_INIT;
	slapd_accesslog_ldif(cfg, 0, &ldif);
	ret = add_ldif(ld, buf_cstr(&ldif), error_r);
	buf_free(&ldif);
	if (ret == IX_OK)
		*changes_r = 1;
out:
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- passwords: the ppolicy overlay, the policy entry and clear values on older directories ---- */

/* Adds the ppolicy module and overlay when the directory database has no ppolicy overlay. */
static int ppolicy_overlay_upgrade(const struct config *cfg, LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	static const char *const attrs[] = { "olcOverlay", NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, "olcDatabase={1}mdb,cn=config", LDAP_SCOPE_ONELEVEL,
			       "(objectClass=olcOverlayConfig)", attrs, &res, error_r);
	if (ret != IX_OK)
		return ret;
	unsigned overlays = 0;
	int has = 0;
	for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
		char *ov = ldapu_get_first(ld, e, "olcOverlay");
		has |= ov != NULL && strcasestr(ov, "ppolicy") != NULL;
		overlays++;
		free(ov);
	}
	ldap_msgfree(res);
	if (has)
		return IX_OK;
	if ((ret = load_module(ld, SLAPD_PPOLICY_MODULE, error_r)) != IX_OK)
		return ret;
	struct buf ldif = BUF_INIT;
	slapd_ppolicy_ldif(cfg, overlays, 0, &ldif);
	ret = add_ldif(ld, buf_cstr(&ldif), error_r);
	buf_free(&ldif);
	if (ret == IX_OK)
		(*changes_r)++;
	return ret;
}

/* Adds the policy entry when it is missing, from this server's settings. */
static int policy_entry_upgrade(const struct config *cfg, LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	char *dn = xasprintf(SLAPD_POLICY_RDN ",%s", cfg->suffix);
	int exists = ldapu_entry_matches(ld, dn, "(objectClass=pwdPolicy)");
	free(dn);
	if (exists)
		return IX_OK;
	static const char *const attrs[] = { "ixServerSetting", NULL };
	LDAPMessage *res = NULL;
	struct settings st;
	settings_load(&st, NULL, 0);
	if (ldapu_search(ld, cfg->server_dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, error_r) == IX_OK) {
		size_t n = 0;
		char **vals = ldapu_get_values(ld, ldapu_first_entry(ld, res), "ixServerSetting", &n);
		settings_load(&st, (const char *const *)vals, n);
		ldapu_values_free(&vals);
	}
	ldap_msgfree(res);
	buf_reset(error_r);
	struct buf ldif = BUF_INIT;
	slapd_policy_entry_ldif(cfg, st.v, &ldif);
	int ret = add_ldif(ld, buf_cstr(&ldif), error_r);
	buf_free(&ldif);
	if (ret == IX_OK)
		(*changes_r)++;
	return ret;
}

/* Replaces the values of attr in the entries under base that match filter: each value that clear(value) says is
 * a clear password becomes what hashed() makes of it. */
static int hash_clear_values(LDAP *ld, const char *base, const char *filter, const char *attr,
			     char *(*hashed)(const char *value), unsigned *changes_r, struct buf *error_r)
{
	const char *attrs[] = { attr, NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, &res, error_r);
	if (ret == IX_ENOTFOUND)
		return IX_OK;
	for (LDAPMessage *e = ldapu_first_entry(ld, res); e != NULL && ret == IX_OK; e = ldap_next_entry(ld, e)) {
		size_t n = 0;
		char **vals = ldapu_get_values(ld, e, attr, &n);
		int clear = 0;
		for (size_t i = 0; i < n; i++) {
			char *h = hashed(vals[i]);
			if (h != NULL) {
				explicit_bzero(vals[i], strlen(vals[i]));
				free(vals[i]);
				vals[i] = h;
				clear++;
			}
		}
		if (clear > 0) {
			char *dn = ldap_get_dn(ld, e);
			LDAPMod m = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)attr, .mod_values = vals };
			LDAPMod *mods[] = { &m, NULL };
			ret = ldapu_modify(ld, dn, mods, error_r);
			if (ret == IX_OK)
				*changes_r += (unsigned)clear;
			ldap_memfree(dn);
		}
		ldapu_values_free(&vals);
	}
	ldap_msgfree(res);
	return ret;
}

/* A userPassword value in clear (no {SCHEME} prefix): its hash; else NULL. */
static char *hash_password_value(const char *v)
{
	return v[0] == '{' ? NULL : slapd_hash_ssha(v);
}

/* An access log record of a userPassword change ("userPassword:= VALUE", ":+", ":-", ":=" with no value, ":#"):
 * the same record with a clear VALUE hashed; else NULL. */
static char *hash_reqmod_value(const char *v)
{
	static const char prefix[] = "userPassword:";
	if (strncasecmp(v, prefix, sizeof(prefix) - 1) != 0)
		return NULL;
	const char *op = v + sizeof(prefix) - 1;
	if ((op[0] != '=' && op[0] != '+' && op[0] != '-') || op[1] != ' ' || op[2] == '\0' || op[2] == '{')
		return NULL;
	char *h = slapd_hash_ssha(op + 2);
	char *out = xasprintf("userPassword:%c %s", op[0], h);
	free(h);
	return out;
}

int upgrade_passwords(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	ret = ppolicy_overlay_upgrade(cfg, ld, changes_r, error_r);
	if (ret == IX_OK)
		ret = policy_entry_upgrade(cfg, ld, changes_r, error_r);
	if (ret == IX_OK)
		ret = hash_clear_values(ld, cfg->suffix, "(userPassword=*)", "userPassword", hash_password_value,
					changes_r, error_r);
	if (ret == IX_OK)
		ret = hash_clear_values(ld, SLAPD_ACCESSLOG_SUFFIX, "(reqMod=userPassword:*)", "reqMod",
					hash_reqmod_value, changes_r, error_r);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- SASL: binds by login or address ---- */

/* The index of the live access rule (acl, each value "{k}to ...") whose text after its prefix starts with the first
 * len bytes of rule; -1 when none does. */
static int find_acl(char **acl, const char *rule, size_t len)
{
	for (int i = 0; acl != NULL && acl[i] != NULL; i++) {
		const char *text = acl[i] + (acl[i][0] == '{' ? strcspn(acl[i], "}") + 1 : 0);
		if (strncmp(text, rule, len) == 0)
			return i;
	}
	return -1;
}

/* Replaces the olcAccess value {at} of the directory database with "{at}rule". */
static int replace_acl(LDAP *ld, int at, const char *rule, struct buf *error_r)
{
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "{%d}", at);
	char *value = xasprintf("%s%s", prefix, rule);
	char *dv[] = { prefix, NULL }, *av[] = { value, NULL };
	LDAPMod m1 = { .mod_op = LDAP_MOD_DELETE, .mod_type = (char *)"olcAccess", .mod_values = dv };
	LDAPMod m2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcAccess", .mod_values = av };
	LDAPMod *mods[] = { &m1, &m2, NULL };
	int ret = ldapu_modify(ld, "olcDatabase={1}mdb,cn=config", mods, error_r);
	free(value);
	return ret;
}

/* Replaces the directory database's access rule made by slapd_recipient_acl(n) with the current one when the live
 * rule with the same target and the same first clause, "by self read" (wherever it stands; the application rules
 * share the target "to *", not the clause), has nothing for anonymous (init's older rule). */
static int recipient_acl_upgrade(const struct config *cfg, LDAP *ld, char **acl, int n, unsigned *changes_r,
				 struct buf *error_r)
{
	struct buf rule = BUF_INIT;
	slapd_recipient_acl(cfg, n, &rule);
	static const char clause[] = " by self read ";
	const char *by = strstr(buf_cstr(&rule), clause);
	int at = by != NULL ? find_acl(acl, buf_cstr(&rule), (size_t)(by - buf_cstr(&rule)) + sizeof(clause) - 1) : -1;
	int ret = IX_OK;
	if (at >= 0 && strstr(acl[at], "anonymous") == NULL) {
		ret = replace_acl(ld, at, buf_cstr(&rule), error_r);
		if (ret == IX_OK)
			(*changes_r)++;
	}
	buf_free(&rule);
	return ret;
}

int upgrade_sasl(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	static const char *const gattrs[] = { "olcSaslSecProps", "olcAuthzRegexp", "olcSaslCBinding", NULL };
	LDAPMessage *res = NULL;
	char *secprops = NULL, *cbinding = NULL, **regexps = NULL, **acl = NULL;
	if ((ret = ldapu_search(ld, "cn=config", LDAP_SCOPE_BASE, "(objectClass=*)", gattrs, &res, error_r)) != IX_OK)
		goto out;
	LDAPMessage *e = ldap_first_entry(ld, res);
	secprops = ldapu_get_first(ld, e, "olcSaslSecProps");
	cbinding = ldapu_get_first(ld, e, "olcSaslCBinding");
	regexps = ldapu_get_values(ld, e, "olcAuthzRegexp", NULL);
	ldap_msgfree(res);
	/* channel binding for SCRAM's -PLUS forms (directory/ixscram.c) */
	if (cbinding == NULL || strcmp(cbinding, SLAPD_SASL_CBINDING) != 0) {
		char *v[] = { (char *)SLAPD_SASL_CBINDING, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcSaslCBinding", .mod_values = v };
		LDAPMod *mods[] = { &m, NULL };
		if ((ret = ldapu_modify(ld, "cn=config", mods, error_r)) != IX_OK)
			goto out;
		(*changes_r)++;
	}
	if (secprops == NULL || strcmp(secprops, SLAPD_SASL_SECPROPS) != 0) {
		char *v[] = { (char *)SLAPD_SASL_SECPROPS, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcSaslSecProps", .mod_values = v };
		LDAPMod *mods[] = { &m, NULL };
		if ((ret = ldapu_modify(ld, "cn=config", mods, error_r)) != IX_OK)
			goto out;
		(*changes_r)++;
	}
	int mapped = 0, scram = 0;
	for (char **r = regexps; r != NULL && *r != NULL; r++) {
		int now = strstr(*r, SLAPD_AUTHZ_MECHS) != NULL; /* a rule as slapd_authz_regexp makes it now */
		mapped |= now || strstr(*r, "cn=plain,cn=auth") != NULL;
		scram |= now;
	}
	/* rules {1} and {2} from before SCRAM name cn=plain only: each replaced in place */
	for (int n = 1; n <= 2 && mapped && !scram; n++) {
		char *vn = slapd_authz_regexp(cfg, n), index[8];
		snprintf(index, sizeof(index), "{%d}", n);
		char *dv[] = { index, NULL }, *av[] = { vn, NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_DELETE, .mod_type = (char *)"olcAuthzRegexp", .mod_values = dv };
		LDAPMod m2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcAuthzRegexp", .mod_values = av };
		LDAPMod *mods[] = { &m1, &m2, NULL };
		ret = ldapu_modify(ld, "cn=config", mods, error_r);
		free(vn);
		if (ret != IX_OK)
			goto out;
		(*changes_r)++;
	}
	if (!mapped) {
		char *v1 = slapd_authz_regexp(cfg, 1), *v2 = slapd_authz_regexp(cfg, 2);
		char *v[] = { v1, v2, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcAuthzRegexp", .mod_values = v };
		LDAPMod *mods[] = { &m, NULL };
		ret = ldapu_modify(ld, "cn=config", mods, error_r);
		free(v1);
		free(v2);
		if (ret != IX_OK)
			goto out;
		(*changes_r)++;
	}
	static const char *const dattrs[] = { "olcAccess", NULL };
	if ((ret = ldapu_search(ld, "olcDatabase={1}mdb,cn=config", LDAP_SCOPE_BASE, "(objectClass=*)", dattrs, &res,
				error_r)) != IX_OK)
		goto out;
	acl = ldapu_get_values(ld, ldap_first_entry(ld, res), "olcAccess", NULL);
	ldap_msgfree(res);
	ret = recipient_acl_upgrade(cfg, ld, acl, 1, changes_r, error_r);
	if (ret == IX_OK)
		ret = recipient_acl_upgrade(cfg, ld, acl, 3, changes_r, error_r);
out:
	free(secprops);
	free(cbinding);
	ldapu_values_free(&regexps);
	ldapu_values_free(&acl);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- application accounts ---- */

/* The directory database's access rules, as a new array (ldapu_values_free). */
static int read_acl(LDAP *ld, char ***acl_r, struct buf *error_r)
{
	static const char *const attrs[] = { "olcAccess", NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, "olcDatabase={1}mdb,cn=config", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res,
			       error_r);
	*acl_r = ret == IX_OK ? ldapu_get_values(ld, ldap_first_entry(ld, res), "olcAccess", NULL) : NULL;
	ldap_msgfree(res);
	return ret;
}

/* Inserts the count rules gen(cfg, n, ...) makes, in their order, each where it is missing: right before the next of
 * them, else before the live rule whose text starts with before (NULL: none), else before the first "to *", else
 * last. Each is checked on its own, so an upgrade interrupted between two of them (slapd too busy) is completed by
 * the next attempt. */
static int insert_rules(const struct config *cfg, LDAP *ld, int count,
			int (*gen)(const struct config *, int, struct buf *), const char *before, unsigned *changes_r,
			struct buf *error_r)
{
	char **acl = NULL;
	struct buf rule = BUF_INIT;
	int ret = IX_OK;
	for (int n = count - 1; n >= 0 && ret == IX_OK; n--) {
		ldapu_values_free(&acl);
		ret = read_acl(ld, &acl, error_r);
		if (ret != IX_OK)
			break;
		buf_reset(&rule);
		gen(cfg, n, &rule);
		if (find_acl(acl, buf_cstr(&rule), rule.len) >= 0)
			continue;
		int at = -1;
		if (n + 1 < count) { /* right before the next one, inserted already */
			struct buf next = BUF_INIT;
			gen(cfg, n + 1, &next);
			at = find_acl(acl, buf_cstr(&next), next.len);
			buf_free(&next);
		}
		if (at < 0 && before != NULL)
			at = find_acl(acl, before, strlen(before));
		if (at < 0)
			at = find_acl(acl, "to * ", 5);
		if (at < 0)
			for (at = 0; acl != NULL && acl[at] != NULL; at++)
				;
		struct buf value = BUF_INIT;
		buf_printf(&value, "{%d}%s", at, buf_cstr(&rule));
		char *av[] = { value.data, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcAccess", .mod_values = av };
		LDAPMod *mods[] = { &m, NULL };
		ret = ldapu_modify(ld, "olcDatabase={1}mdb,cn=config", mods, error_r);
		buf_free(&value);
		if (ret == IX_OK)
			(*changes_r)++;
	}
	buf_free(&rule);
	ldapu_values_free(&acl);
	return ret;
}

/* Replaces the live access rule acl[at] with rule when its text differs, counting it in *changes_r. */
static int update_acl(LDAP *ld, char **acl, int at, const char *rule, unsigned *changes_r, struct buf *error_r)
{
	if (strcmp(acl[at] + strcspn(acl[at], "}") + 1, rule) == 0)
		return IX_OK;
	int ret = replace_acl(ld, at, rule, error_r);
	if (ret == IX_OK)
		(*changes_r)++;
	return ret;
}

/* Replaces the application rule that lets applications read the address book's attributes when it names fewer of
 * them than SLAPD_APPLICATION_ATTRS does now (a directory made before the person details). */
static int application_attrs_upgrade(const struct config *cfg, LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	char **acl = NULL;
	int ret = read_acl(ld, &acl, error_r);
	struct buf rule = BUF_INIT;
	slapd_application_acl(cfg, 1, &rule);
	/* its target and the first of its attributes, "entry" (every version's list starts so): the role rule with the
	 * same target names userPassword */
	static const char first[] = " attrs=entry,";
	const char *attrs = strstr(buf_cstr(&rule), first);
	int at = ret == IX_OK && attrs != NULL
			 ? find_acl(acl, buf_cstr(&rule), (size_t)(attrs - rule.data) + sizeof(first) - 1)
			 : -1;
	if (at >= 0)
		ret = update_acl(ld, acl, at, buf_cstr(&rule), changes_r, error_r);
	buf_free(&rule);
	ldapu_values_free(&acl);
	return ret;
}

/* Adds ldif (the organizational unit dn and what it holds) when dn is missing, counting it in *changes_r. */
static int add_missing_ou(LDAP *ld, const char *dn, const char *ldif, unsigned *changes_r, struct buf *error_r)
{
	if (ldapu_entry_matches(ld, dn, "(objectClass=organizationalUnit)"))
		return IX_OK;
	int ret = add_ldif(ld, ldif, error_r);
	if (ret == IX_OK)
		(*changes_r)++;
	return ret;
}

int upgrade_applications(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = xasprintf(SLAPD_APPLICATIONS_RDN ",%s", cfg->suffix);
	char *ldif = xasprintf("dn: %s\nobjectClass: organizationalUnit\nou: Applications\n\n", dn);
	ret = add_missing_ou(ld, dn, ldif, changes_r, error_r);
	free(ldif);
	free(dn);
	/* the rules go right before "to *" (or last when there is none), in their order */
	if (ret == IX_OK)
		ret = application_attrs_upgrade(cfg, ld, changes_r, error_r);
	if (ret == IX_OK)
		ret = insert_rules(cfg, ld, SLAPD_APPLICATION_ACLS, slapd_application_acl, NULL, changes_r, error_r);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- administrative roles ---- */

/* Replaces the role rule on the recipients' secrets (slapd_role_acl 0) with the current one when the live rule with
 * its target differs: the first version gave the recipient and organisation admins read (=mrwx), which the SCRAM
 * binding needed before the password and its verifiers went in one modify. */
static int role_secrets_upgrade(const struct config *cfg, LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	char **acl = NULL;
	int ret = read_acl(ld, &acl, error_r);
	struct buf rule = BUF_INIT;
	slapd_role_acl(cfg, 0, &rule);
	const char *by = strstr(buf_cstr(&rule), " by ");
	int at = ret == IX_OK && by != NULL ? find_acl(acl, buf_cstr(&rule), (size_t)(by - rule.data)) : -1;
	if (at >= 0)
		ret = update_acl(ld, acl, at, buf_cstr(&rule), changes_r, error_r);
	buf_free(&rule);
	ldapu_values_free(&acl);
	return ret;
}

int upgrade_roles(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = xasprintf(SLAPD_ROLES_RDN ",%s", cfg->suffix);
	struct buf ldif = BUF_INIT;
	slapd_roles_ldif(cfg, &ldif);
	ret = add_missing_ou(ld, dn, buf_cstr(&ldif), changes_r, error_r);
	buf_free(&ldif);
	free(dn);
	/* the secrets' rule brought to its current text first, so that insert_rules finds it in place */
	if (ret == IX_OK)
		ret = role_secrets_upgrade(cfg, ld, changes_r, error_r);
	/* first of all: before the password rule, which would otherwise answer for userPassword */
	if (ret == IX_OK)
		ret = insert_rules(cfg, ld, SLAPD_ROLE_ACLS, slapd_role_acl, "to attrs=userPassword", changes_r,
				   error_r);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- the address book's person details ---- */

/* Adds SLAPD_DIRECT_REPORTS_ATTRSET to the directory database's dynlist overlay when no attribute set of it names
 * directReports. */
static int direct_reports_upgrade(LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	static const char *const attrs[] = { "olcDynListAttrSet", NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, "olcDatabase={1}mdb,cn=config", LDAP_SCOPE_ONELEVEL,
			       "(objectClass=olcDynListConfig)", attrs, &res, error_r);
	if (ret != IX_OK)
		return ret;
	LDAPMessage *e = ldap_first_entry(ld, res);
	char *dn = e != NULL ? ldap_get_dn(ld, e) : NULL;
	char **sets = ldapu_get_values(ld, e, "olcDynListAttrSet", NULL);
	ldap_msgfree(res);
	int has = 0;
	for (char **v = sets; v != NULL && *v != NULL; v++)
		has |= strcasestr(*v, "directReports") != NULL;
	ldapu_values_free(&sets);
	if (dn == NULL) {
		buf_append_str(error_r, "the directory database has no dynlist overlay to compute directReports with");
		ret = IX_ENOTFOUND;
	} else if (!has) {
		char *v[] = { (char *)SLAPD_DIRECT_REPORTS_ATTRSET, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcDynListAttrSet", .mod_values = v };
		LDAPMod *mods[] = { &m, NULL };
		ret = ldapu_modify(ld, dn, mods, error_r);
		if (ret == IX_OK)
			(*changes_r)++;
	}
	ldap_memfree(dn);
	return ret;
}

/* Loads our gate module (SLAPD_GATE_MODULE, after slapd's unique and dynlist modules) and our browse module
 * (SLAPD_BROWSE_MODULE, after sssvlv's), both copied into the data folder at every start, when cn=module{0} does not
 * load them yet. slapd builds the overlays of the directory database at its start, so each takes effect from the
 * next start. */
static int modules_upgrade(const struct config *cfg, LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	static const char *const attrs[] = { "olcModuleLoad", NULL };
	static const char *const modules[] = { SLAPD_GATE_MODULE, SLAPD_BROWSE_MODULE };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, "cn=module{0},cn=config", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, error_r);
	if (ret != IX_OK)
		return ret;
	char **loaded = ldapu_get_values(ld, ldap_first_entry(ld, res), "olcModuleLoad", NULL);
	ldap_msgfree(res);
	for (size_t i = 0; ret == IX_OK && i < IX_ARRAY_LEN(modules); i++) {
		int has = 0;
		for (char **v = loaded; *v != NULL; v++)
			has |= strstr(*v, modules[i]) != NULL;
		if (has)
			continue;
		char *path = config_path(cfg, modules[i]);
		ret = load_module(ld, path, error_r);
		free(path);
		if (ret == IX_OK)
			(*changes_r)++;
	}
	ldapu_values_free(&loaded);
	return ret;
}

/* Adds the limits SLAPD_USER_LIMITS (paged browsing of the whole address book) when no olcLimits names users. */
static int user_limits_upgrade(LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	char **limits = NULL;
	int ret = ldapu_read_values(ld, "olcDatabase={1}mdb,cn=config", "olcLimits", &limits, error_r);
	if (ret != IX_OK)
		return ret;
	int has = 0;
	for (char **v = limits; v != NULL && *v != NULL; v++)
		has |= strstr(*v, "users ") != NULL;
	ldapu_values_free(&limits);
	if (has)
		return IX_OK;
	char *v[] = { (char *)SLAPD_USER_LIMITS, NULL };
	LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcLimits", .mod_values = v };
	LDAPMod *mods[] = { &m, NULL };
	ret = ldapu_modify(ld, "olcDatabase={1}mdb,cn=config", mods, error_r);
	if (ret == IX_OK)
		(*changes_r)++;
	return ret;
}

int upgrade_address_book(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	ret = direct_reports_upgrade(ld, changes_r, error_r);
	if (ret == IX_OK)
		ret = modules_upgrade(cfg, ld, changes_r, error_r);
	if (ret == IX_OK)
		ret = user_limits_upgrade(ld, changes_r, error_r);
	if (ret == IX_OK) {
		struct buf first_app = BUF_INIT;
		slapd_application_acl(cfg, 0, &first_app);
		ret = insert_rules(cfg, ld, SLAPD_HIDDEN_VALUE_ACLS, slapd_hidden_value_acl, buf_cstr(&first_app),
				   changes_r, error_r);
		buf_free(&first_app);
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* Adds the olcDbIndex value to the directory's database unless a value there names attr already. */
static int index_once(LDAP *ld, const char *attr, const char *value, unsigned *changes_r, struct buf *error_r)
{
	char **index = NULL;
	int ret = ldapu_read_values(ld, "olcDatabase={1}mdb,cn=config", "olcDbIndex", &index, error_r);
	if (ret != IX_OK)
		return ret;
	int has = 0;
	for (char **v = index; v != NULL && *v != NULL; v++)
		has |= strcasestr(*v, attr) != NULL;
	ldapu_values_free(&index);
	if (has)
		return IX_OK;
	char *v[] = { (char *)value, NULL };
	LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcDbIndex", .mod_values = v };
	LDAPMod *mods[] = { &m, NULL };
	ret = ldapu_modify(ld, "olcDatabase={1}mdb,cn=config", mods, error_r);
	if (ret == IX_OK)
		(*changes_r)++;
	return ret;
}

/* ---- POSIX accounts and groups ---- */

int upgrade_posix(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	static const char *const sattrs[] = { "cn", NULL };
	LDAPMessage *res = NULL;
	ret = ldapu_search(ld, "cn=schema,cn=config", LDAP_SCOPE_ONELEVEL, "(cn=*nis)", sattrs, &res, error_r);
	int has_nis = ret == IX_OK && ldap_first_entry(ld, res) != NULL;
	ldap_msgfree(res);
	if (ret == IX_OK && !has_nis) {
		struct buf ldif = BUF_INIT;
		ret = slapd_nis_schema(&ldif, error_r);
		if (ret == IX_OK)
			ret = add_ldif(ld, buf_cstr(&ldif), error_r);
		buf_free(&ldif);
		if (ret == IX_OK)
			(*changes_r)++;
	}
	if (ret == IX_OK)
		ret = index_once(ld, "uidNumber", SLAPD_POSIX_INDEX, changes_r, error_r);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- indexes ---- */

/* Replaces the index of names and addresses of older directories (SLAPD_OLD_NAME_INDEX) by SLAPD_NAME_INDEX and
 * SLAPD_ADDRESS_INDEX; a directory whose administrator changed that value keeps what it has. */
static int narrow_name_index(LDAP *ld, unsigned *changes_r, struct buf *error_r)
{
	char **index = NULL;
	int ret = ldapu_read_values(ld, "olcDatabase={1}mdb,cn=config", "olcDbIndex", &index, error_r);
	if (ret != IX_OK)
		return ret;
	int old = 0;
	for (char **v = index; v != NULL && *v != NULL; v++)
		old |= strcasecmp(*v, SLAPD_OLD_NAME_INDEX) == 0;
	ldapu_values_free(&index);
	if (!old)
		return IX_OK;
	LDAPMod **mods = NULL;
	size_t n = 0;
	ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "olcDbIndex", ldapu_values1(SLAPD_OLD_NAME_INDEX));
	char **add = NULL;
	size_t nadd = 0;
	ldapu_values_push(&add, &nadd, SLAPD_NAME_INDEX);
	ldapu_values_push(&add, &nadd, SLAPD_ADDRESS_INDEX);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcDbIndex", add);
	ret = ldapu_modify(ld, "olcDatabase={1}mdb,cn=config", mods, error_r);
	ldapu_mods_free(mods);
	if (ret == IX_OK)
		(*changes_r)++;
	return ret;
}

int upgrade_index(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	ret = index_once(ld, "ixSyncAnchor", SLAPD_SYNC_INDEX, changes_r, error_r);
	if (ret == IX_OK)
		ret = narrow_name_index(ld, changes_r, error_r);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- attributes refint was given since ---- */

int upgrade_refint(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	static const char *const added_since[] = { "ixFullAccess" };
	static const char *const attrs[] = { "olcRefintAttribute", NULL };
	*changes_r = 0;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	LDAPMessage *res = NULL;
	ret = ldapu_search(ld, "olcDatabase={1}mdb,cn=config", LDAP_SCOPE_ONELEVEL, "(objectClass=olcRefintConfig)",
			   attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(ld, res) : NULL;
	char *dn = e != NULL ? ldap_get_dn(ld, e) : NULL;
	char **have = e != NULL ? ldapu_get_values(ld, e, "olcRefintAttribute", NULL) : NULL;
	ldap_msgfree(res);
	for (size_t i = 0; dn != NULL && ret == IX_OK && i < IX_ARRAY_LEN(added_since); i++) {
		bool found = false;
		for (char **v = have; v != NULL && *v != NULL && !found; v++)
			found = strcasecmp(*v, added_since[i]) == 0;
		if (found)
			continue;
		char *vals[] = { (char *)added_since[i], NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcRefintAttribute", .mod_values = vals };
		LDAPMod *mods[] = { &m, NULL };
		ret = ldapu_modify(ld, dn, mods, error_r);
		if (ret == IX_OK)
			(*changes_r)++;
	}
	ldapu_values_free(&have);
	ldap_memfree(dn);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* ---- ports this server's entry lacks ---- */

int upgrade_server_ports(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	if (cfg->server_dn == NULL)
		return IX_OK;
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	const char *attrs[PORT_COUNT + 1];
	size_t na = 0;
	for (int p = 0; p < PORT_COUNT; p++) {
		if (slapd_port_attr(p) != NULL)
			attrs[na++] = slapd_port_attr(p);
	}
	attrs[na] = NULL;
	LDAPMessage *res = NULL;
	ret = ldapu_search(ld, cfg->server_dn, LDAP_SCOPE_BASE, "(objectClass=ixServer)", attrs, &res, error_r);
	LDAPMessage *e = ldapu_first_entry(ld, res);
	if (ret == IX_ENOTFOUND) /* no entry to complete (nothing an upgrade can mend): not a failure to retry */
		ret = IX_OK;
	LDAPMod **mods = NULL;
	size_t n = 0;
	for (int p = 0; e != NULL && p < PORT_COUNT; p++) {
		char *v = slapd_port_attr(p) != NULL ? ldapu_get_first(ld, e, slapd_port_attr(p)) : NULL;
		if (v == NULL && slapd_port_attr(p) != NULL) {
			char num[16];
			snprintf(num, sizeof(num), "%u", cfg->ports[p]);
			ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, slapd_port_attr(p), ldapu_values1(num));
		}
		free(v);
	}
	ldap_msgfree(res);
	if (n > 0 && (ret = ldapu_modify(ld, cfg->server_dn, mods, error_r)) == IX_OK)
		*changes_r = (unsigned)n;
	ldapu_mods_free(mods);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}
