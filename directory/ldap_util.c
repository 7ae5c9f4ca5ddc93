/* ldap_util.c - connection, escaping and error translation for libldap. */
#include "directory/ldap_util.h"
#include "common/config.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

char *ldapu_ldapi_uri(const char *socket_path)
{
	return config_ldapi_uri_for(socket_path);
}

static int ldapu_init(const char *uri, LDAP **ld_r, struct buf *error_r)
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
	int ret = ldapu_init(uri, &ld, error_r);
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

int ldapu_connect_simple(const char *uri, const char *dn, const char *password, LDAP **ld_r, struct buf *error_r)
{
	if (password == NULL || password[0] == '\0') {
		buf_append_str(error_r, "an empty password is not accepted");
		return IX_EAUTH;
	}
	LDAP *ld;
	int ret = ldapu_init(uri, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	return ldapu_bind_simple(ld, uri, dn, password, ld_r, error_r);
}

int ldapu_bind_simple(LDAP *ld, const char *uri, const char *dn, const char *password, LDAP **ld_r,
		      struct buf *error_r)
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
