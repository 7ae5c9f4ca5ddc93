/* ldap_util.c - connection, escaping and error translation for libldap. */
#include "directory/ldap_util.h"
#include "common/config.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

char *ldapu_ldapi_uri(const char *socket_path)
{
	return config_ldapi_uri_for(socket_path);
}

int ldapu_open(const char *uri, LDAP **ld_r, struct buf *error_r)
{
	LDAP *ld = NULL;
	int rc = ldap_initialize(&ld, uri);
	if (rc != LDAP_SUCCESS) {
		buf_printf(error_r, "cannot use directory address %s: %s", uri, ldap_err2string(rc));
		return IX_EINVAL;
	}
	int version = LDAP_VERSION3;
	struct timeval tv = { 5, 0 };
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	*ld_r = ld;
	return IX_OK;
}

int ldapu_connect_external(const char *uri, LDAP **ld_r, struct buf *error_r)
{
	LDAP *ld;
	int ret = ldapu_open(uri, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	/* {0, NULL} would mean "bind in progress" (docs/slapd-facts.md, "SASL EXTERNAL with an empty credential") */
	struct berval cred = { 0, (char *)"" };
	int rc = ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		buf_printf(error_r, "cannot reach the directory at %s: %s", uri, ldap_err2string(rc));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ? IX_EUNAVAIL : IX_EAUTH;
	}
	*ld_r = ld;
	return IX_OK;
}

int ldapu_connect_local(const struct config *cfg, LDAP **ld_r, struct buf *error_r)
{
	char *uri = config_ldapi_uri(cfg);
	int ret = ldapu_connect_external(uri, ld_r, error_r);
	free(uri);
	return ret;
}

int ldapu_connect_simple(const char *uri, const char *dn, const char *password, LDAP **ld_r, struct buf *error_r)
{
	if (password == NULL || password[0] == '\0') {
		buf_append_str(error_r, "an empty password is not accepted");
		return IX_EAUTH;
	}
	LDAP *ld;
	int ret = ldapu_open(uri, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	return ldapu_bind_simple(ld, uri, dn, password, ld_r, error_r);
}

int ldapu_bind_simple(LDAP *ld, const char *uri, const char *dn, const char *password, LDAP **ld_r, struct buf *error_r)
{
	struct berval cred = { strlen(password), (char *)password };
	int rc = ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INVALID_DN_SYNTAX || rc == LDAP_UNWILLING_TO_PERFORM) {
			buf_append_str(error_r, "wrong name or password");
			return IX_EAUTH;
		}
		buf_printf(error_r, "cannot reach the directory at %s: %s", uri, ldap_err2string(rc));
		return IX_EUNAVAIL;
	}
	*ld_r = ld;
	return IX_OK;
}

void ldapu_escape_filter(struct buf *out, const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0')
			buf_printf(out, "\\%02x", c);
		else
			buf_append_char(out, (char)c);
	}
}

void ldapu_escape_dn(struct buf *out, const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		int special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
			      c == '=' || (i == 0 && (c == '#' || c == ' ')) || (i == len - 1 && c == ' ');
		if (c == '\0')
			buf_append_str(out, "\\00");
		else if (special) {
			buf_append_char(out, '\\');
			buf_append_char(out, (char)c);
		} else
			buf_append_char(out, (char)c);
	}
}

int ldapu_err(int rc)
{
	switch (rc) {
	case LDAP_SUCCESS: return IX_OK;
	case LDAP_NO_SUCH_OBJECT: return IX_ENOTFOUND;
	case LDAP_ALREADY_EXISTS: return IX_EEXIST;
	case LDAP_CONSTRAINT_VIOLATION: return IX_EEXIST; /* the unique overlay's answer */
	case LDAP_INVALID_CREDENTIALS: return IX_EAUTH;
	case LDAP_INSUFFICIENT_ACCESS: return IX_EPERM;
	case LDAP_SERVER_DOWN:
	case LDAP_CONNECT_ERROR:
	case LDAP_UNAVAILABLE:
	case LDAP_BUSY:
	case LDAP_TIMEOUT: return IX_EUNAVAIL;
	case LDAP_SIZELIMIT_EXCEEDED:
	case LDAP_ADMINLIMIT_EXCEEDED: return IX_ELIMIT;
	default: return IX_EINVAL;
	}
}

char *ldapu_get_first(LDAP *ld, LDAPMessage *entry, const char *attr)
{
	struct berval **vals = ldap_get_values_len(ld, entry, attr);
	if (vals == NULL)
		return NULL;
	char *s = NULL;
	if (vals[0] != NULL)
		s = xstrndup(vals[0]->bv_val, vals[0]->bv_len);
	ldap_value_free_len(vals);
	return s;
}

char **ldapu_get_values(LDAP *ld, LDAPMessage *entry, const char *attr, size_t *count_r)
{
	struct berval **vals = entry != NULL ? ldap_get_values_len(ld, entry, attr) : NULL;
	size_t n = vals != NULL ? (size_t)ldap_count_values_len(vals) : 0;
	char **out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrndup(vals[i]->bv_val, vals[i]->bv_len);
	if (vals != NULL)
		ldap_value_free_len(vals);
	if (count_r != NULL)
		*count_r = n;
	return out;
}

void ldapu_values_free(char ***values)
{
	if (*values == NULL)
		return;
	for (char **v = *values; *v != NULL; v++)
		free(*v);
	free(*values);
	*values = NULL;
}

int ldapu_fail(LDAP *ld, int rc, const char *what, struct buf *error_r)
{
	char *diag = NULL;
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	buf_printf(error_r, "%s: %s%s%s", what, ldap_err2string(rc), diag != NULL && *diag ? " - " : "",
		   diag != NULL ? diag : "");
	ldap_memfree(diag);
	return ldapu_err(rc);
}

int ldapu_search(LDAP *ld, const char *base, int scope, const char *filter, const char *const *attrs,
		 LDAPMessage **res_r, struct buf *error_r)
{
	struct timeval tv = { LDAPU_TIMEOUT_SECS, 0 };
	*res_r = NULL;
	int rc = ldap_search_ext_s(ld, base, scope, filter, (char **)attrs, 0, NULL, NULL, &tv, LDAP_NO_LIMIT, res_r);
	if (rc == LDAP_SUCCESS)
		return IX_OK;
	ldap_msgfree(*res_r); /* a result may come back with an error (docs/slapd-facts.md, "Results on error") */
	*res_r = NULL;
	if (rc == LDAP_NO_SUCH_OBJECT)
		return IX_ENOTFOUND;
	char *what = xasprintf("search of %s failed", base[0] ? base : "the root DSE");
	int ret = ldapu_fail(ld, rc, what, error_r);
	free(what);
	return ret;
}

int ldapu_search_paged(LDAP *ld, const char *base, const char *filter, const char *const *attrs, int page_size,
		       LDAPControl *extra, ldapu_entry_fn *each, void *ctx, struct buf *error_r)
{
	struct berval *cookie = NULL;
	int ret = IX_OK;
	for (;;) {
		LDAPControl *page = NULL, *ctrls[3] = { NULL, extra, NULL };
		int rc = ldap_create_page_control(ld, page_size, cookie, 0, &page);
		ber_bvfree(cookie);
		cookie = NULL;
		if (rc != LDAP_SUCCESS) {
			ret = ldapu_fail(ld, rc, "cannot page the search's results", error_r);
			break;
		}
		ctrls[0] = page;
		struct timeval tv = { LDAPU_TIMEOUT_SECS, 0 };
		LDAPMessage *res = NULL;
		rc = ldap_search_ext_s(ld, base, LDAP_SCOPE_SUBTREE, filter, (char **)attrs, 0, ctrls, NULL, &tv,
				       LDAP_NO_LIMIT, &res);
		ldap_control_free(page);
		if (rc != LDAP_SUCCESS) {
			char *what = xasprintf("search of %s failed", base);
			ret = ldapu_fail(ld, rc, what, error_r);
			free(what);
			ldap_msgfree(res);
			break;
		}
		for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e))
			each(ctx, ld, e);
		LDAPControl **rctrls = NULL;
		int err = 0;
		ldap_parse_result(ld, res, &err, NULL, NULL, NULL, &rctrls, 0);
		LDAPControl *pr = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL);
		ber_int_t count = 0;
		struct berval c = { 0, NULL };
		if (pr != NULL && ldap_parse_pageresponse_control(ld, pr, &count, &c) == LDAP_SUCCESS && c.bv_len > 0)
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

int ldapu_read_values(LDAP *ld, const char *dn, const char *attr, char ***values_r, struct buf *error_r)
{
	const char *attrs[] = { attr, NULL };
	LDAPMessage *res = NULL;
	*values_r = NULL;
	int ret = ldapu_search(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, error_r);
	if (ret == IX_OK)
		*values_r = ldapu_get_values(ld, ldapu_first_entry(ld, res), attr, NULL);
	ldap_msgfree(res);
	return ret;
}

int ldapu_ensure_ou(LDAP *ld, const char *dn, const char *ou, const char *what, struct buf *error_r)
{
	if (ldapu_entry_matches(ld, dn, "(objectClass=*)"))
		return IX_OK;
	LDAPMod **mods = NULL;
	size_t n = 0;
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", ldapu_values1("organizationalUnit"));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ou", ldapu_values1(ou));
	int rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
	ldapu_mods_free(mods);
	return rc == LDAP_SUCCESS || rc == LDAP_ALREADY_EXISTS ? IX_OK : ldapu_fail(ld, rc, what, error_r);
}

bool ldapu_entry_matches(LDAP *ld, const char *dn, const char *filter)
{
	const char *attrs[] = { LDAP_NO_ATTRS, NULL };
	LDAPMessage *res = NULL;
	struct buf err = BUF_INIT;
	bool yes = ldapu_search(ld, dn, LDAP_SCOPE_BASE, filter, attrs, &res, &err) == IX_OK &&
		   ldap_count_entries(ld, res) > 0;
	ldap_msgfree(res);
	buf_free(&err);
	return yes;
}

LDAPMessage *ldapu_first_entry(LDAP *ld, LDAPMessage *res)
{
	return res != NULL ? ldap_first_entry(ld, res) : NULL;
}

/* A change within LDAPU_TIMEOUT_SECS; returns slapd's result code (LDAP_TIMEOUT, LDAP_SERVER_DOWN when it gave none). */
static int modify_rc(LDAP *ld, const char *dn, LDAPMod **mods)
{
	struct timeval tv = { LDAPU_TIMEOUT_SECS, 0 };
	LDAPMessage *res = NULL;
	int msgid, rc = ldap_modify_ext(ld, dn, mods, NULL, NULL, &msgid);
	if (rc == LDAP_SUCCESS) {
		int type = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
		if (type <= 0) {
			rc = type == 0 ? LDAP_TIMEOUT : LDAP_SERVER_DOWN;
			if (type == 0)
				ldap_abandon_ext(ld, msgid, NULL, NULL);
		} else if (ldap_parse_result(ld, res, &rc, NULL, NULL, NULL, NULL, 1) != LDAP_SUCCESS) {
			rc = LDAP_OTHER;
		}
	}
	return rc;
}

int ldapu_modify(LDAP *ld, const char *dn, LDAPMod **mods, struct buf *error_r)
{
	int rc = modify_rc(ld, dn, mods);
	if (rc == LDAP_SUCCESS)
		return IX_OK;
	if (rc == LDAP_NO_SUCH_OBJECT)
		return IX_ENOTFOUND;
	char *what = xasprintf("cannot change %s", dn);
	int ret = ldapu_fail(ld, rc, what, error_r);
	free(what);
	return ret;
}

int ldapu_modify_values(LDAP *ld, const char *dn, LDAPMod **mods, const char *what, enum ldapu_value_fault *fault_r,
			struct buf *error_r)
{
	int rc = modify_rc(ld, dn, mods);
	*fault_r = rc == LDAP_TYPE_OR_VALUE_EXISTS ? LDAPU_VALUE_EXISTS
		   : rc == LDAP_NO_SUCH_ATTRIBUTE  ? LDAPU_VALUE_MISSING
						   : LDAPU_VALUE_NONE;
	if (rc == LDAP_SUCCESS)
		return IX_OK;
	if (*fault_r == LDAPU_VALUE_EXISTS)
		return IX_EEXIST;
	if (*fault_r == LDAPU_VALUE_MISSING)
		return IX_ENOTFOUND;
	return ldapu_fail(ld, rc, what, error_r);
}

void ldapu_mod_add(LDAPMod ***mods, size_t *n, int op, const char *attr, char **values)
{
	*mods = xrealloc(*mods, sizeof(**mods) * (*n + 2));
	LDAPMod *m = xcalloc(1, sizeof(*m));
	m->mod_op = op;
	m->mod_type = (char *)attr;
	m->mod_values = values;
	(*mods)[(*n)++] = m;
	(*mods)[*n] = NULL;
}

char **ldapu_values1(const char *v)
{
	char **vals = xcalloc(2, sizeof(char *));
	vals[0] = xstrdup(v);
	return vals;
}

void ldapu_values_push(char ***vals, size_t *n, const char *v)
{
	*vals = xrealloc(*vals, sizeof(char *) * (*n + 2));
	(*vals)[(*n)++] = xstrdup(v);
	(*vals)[*n] = NULL;
}

void ldapu_mods_free(LDAPMod **mods)
{
	if (mods == NULL)
		return;
	for (size_t i = 0; mods[i] != NULL; i++) {
		for (size_t j = 0; mods[i]->mod_values != NULL && mods[i]->mod_values[j] != NULL; j++)
			free(mods[i]->mod_values[j]);
		free(mods[i]->mod_values);
		free(mods[i]);
	}
	free(mods);
}
