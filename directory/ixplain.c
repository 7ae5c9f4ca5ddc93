/* ixplain.c - a Cyrus SASL server plugin that gives slapd the PLAIN mechanism (RFC 4616) for the passwords we store
 * hashed, so that clients bind with a login or an e-mail address (docs/directory.md, "Binds by login or address").
 *
 * Cyrus's own PLAIN checks the password against the userPassword slapd hands it as an auxiliary property, and slapd
 * never hands out hashed values: every PLAIN bind failed ("user not found"). This plugin canonicalizes the
 * authentication identity as Cyrus's does (slapd maps it to an entry with olcAuthzRegexp and leaves the DN in the
 * property *slapAuthcDN), then checks the password with a simple bind of that DN over slapd's own ldapi socket
 * (IX_LDAPI_URI in slapd's environment), so the ACL on userPassword and the password policy (failure counts,
 * lockout) apply exactly as to a simple bind. slapd offers it only where a layer below protects the password
 * (olcSaslSecProps noplain: inside TLS, over ldapi).
 *
 * Loaded by libsasl2 inside slapd (SASL_PATH), never linked into our programs. */
#include <ldap.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include "directory/slapd_plugin.h"
#include <stdlib.h>
#include <string.h>

int sasl_server_plug_init(const sasl_utils_t *utils, int maxversion, int *out_version, sasl_server_plug_t **pluglist,
			  int *plugcount);

static int plain_new(void *glob_context, sasl_server_params_t *params, const char *challenge, unsigned challen,
		     void **conn_context)
{
	(void)glob_context;
	(void)params;
	(void)challenge;
	(void)challen;
	*conn_context = NULL;
	return SASL_OK;
}

/* SASL_OK when password is dn's, SASL_BADAUTH when it is not (or dn names no entry), SASL_FAIL when slapd cannot
 * be asked. */
static int check_password(sasl_server_params_t *params, const char *dn, const char *password, size_t len)
{
	LDAP *ld = slapd_plugin_ldapi(false);
	if (ld == NULL) {
		params->utils->seterror(params->utils->conn, 0, "cannot reach slapd at IX_LDAPI_URI");
		return SASL_FAIL;
	}
	struct berval cred = { .bv_len = len, .bv_val = (char *)password };
	int rc = ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	ldap_unbind_ext_s(ld, NULL, NULL);
	if (rc == LDAP_SUCCESS)
		return SASL_OK;
	if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INVALID_DN_SYNTAX) {
		params->utils->seterror(params->utils->conn, 0, "wrong name or password");
		return SASL_BADAUTH;
	}
	params->utils->seterror(params->utils->conn, 0, "password check: %s", ldap_err2string(rc));
	return SASL_FAIL;
}

static int plain_step(void *conn_context, sasl_server_params_t *params, const char *in, unsigned inlen,
		      const char **out, unsigned *outlen, sasl_out_params_t *oparams)
{
	(void)conn_context;
	*out = NULL;
	*outlen = 0;
	/* authzid NUL authcid NUL passwd (RFC 4616 section 2) */
	const char *authzid = in, *end = in + inlen;
	const char *nul = memchr(authzid, '\0', inlen);
	const char *authcid = nul != NULL ? nul + 1 : NULL;
	nul = authcid != NULL ? memchr(authcid, '\0', (size_t)(end - authcid)) : NULL;
	const char *password = nul != NULL ? nul + 1 : NULL;
	if (password == NULL || authcid[0] == '\0' || memchr(password, '\0', (size_t)(end - password)) != NULL) {
		params->utils->seterror(params->utils->conn, 0, "malformed PLAIN message");
		return SASL_BADPROT;
	}
	size_t passlen = (size_t)(end - password);
	/* an empty password would be an unauthenticated simple bind, which succeeds */
	if (passlen == 0) {
		params->utils->seterror(params->utils->conn, 0, "wrong name or password");
		return SASL_BADAUTH;
	}
	int ret;
	if (authzid[0] == '\0') {
		ret = params->canon_user(params->utils->conn, authcid, 0, SASL_CU_AUTHID | SASL_CU_AUTHZID, oparams);
	} else {
		ret = params->canon_user(params->utils->conn, authcid, 0, SASL_CU_AUTHID, oparams);
		if (ret == SASL_OK)
			ret = params->canon_user(params->utils->conn, authzid, 0, SASL_CU_AUTHZID, oparams);
	}
	if (ret != SASL_OK)
		return ret;
	const char *dn = slapd_plugin_authc_dn(params);
	if (dn == NULL) {
		params->utils->seterror(params->utils->conn, 0, "wrong name or password");
		return SASL_BADAUTH;
	}
	ret = check_password(params, dn, password, passlen);
	if (ret != SASL_OK)
		return ret;
	slapd_plugin_done(oparams);
	return SASL_OK;
}

static sasl_server_plug_t plugins[] = { {
	.mech_name = "PLAIN",
	.max_ssf = 0,
	.security_flags = SASL_SEC_NOANONYMOUS | SASL_SEC_PASS_CREDENTIALS,
	.features = SASL_FEAT_WANT_CLIENT_FIRST | SASL_FEAT_ALLOWS_PROXY,
	.mech_new = plain_new,
	.mech_step = plain_step,
} };

int sasl_server_plug_init(const sasl_utils_t *utils, int maxversion, int *out_version, sasl_server_plug_t **pluglist,
			  int *plugcount)
{
	(void)utils;
	return slapd_plugin_init(maxversion, out_version, pluglist, plugcount, plugins, 1);
}
