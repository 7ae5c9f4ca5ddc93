/* slapd_plugin.h - what our Cyrus SASL server plugins for slapd share (directory/ixplain.c, directory/ixscram.c,
 * transport/net/ixoauth.c): the DN slapd mapped the authentication identity to, a connection to slapd's own ldapi
 * socket, a finished exchange, the plugin table handed to Cyrus. */
#ifndef IX_SLAPD_PLUGIN_H
#define IX_SLAPD_PLUGIN_H

#include <ldap.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* slapd's private property holding the DN it mapped the authentication identity to (servers/slapd/sasl.c) */
#define SLAPD_PLUGIN_AUTHC_DN_PROP "*slapAuthcDN"

/* The DN slapd mapped the authentication identity to (after canon_user), from the connection's properties, or NULL
 * when it found no entry. */
static inline const char *slapd_plugin_authc_dn(sasl_server_params_t *params)
{
	const struct propval *pv = params->utils->prop_get(params->propctx);
	for (; pv != NULL && pv->name != NULL; pv++) {
		if (strcmp(pv->name, SLAPD_PLUGIN_AUTHC_DN_PROP) == 0)
			return pv->values != NULL && pv->values[0] != NULL && pv->values[0][0] != '\0' ? pv->values[0]
												       : NULL;
	}
	return NULL;
}

/* How long a plugin waits for slapd: a request stuck behind every busy slapd thread fails instead of hanging. */
#define SLAPD_PLUGIN_TIMEOUT_S 10

/* A new connection to slapd's own ldapi socket (IX_LDAPI_URI in its environment), LDAPv3 with SLAPD_PLUGIN_TIMEOUT_S
 * timeouts, bound with SASL EXTERNAL when self (slapd maps its own uid to the administrator), else not bound yet;
 * NULL when it cannot be made. The caller unbinds it. */
static inline LDAP *slapd_plugin_ldapi(bool self)
{
	const char *uri = getenv("IX_LDAPI_URI");
	LDAP *ld = NULL;
	if (uri == NULL || ldap_initialize(&ld, uri) != LDAP_SUCCESS)
		return NULL;
	int version = LDAP_VERSION3;
	struct timeval tv = { .tv_sec = SLAPD_PLUGIN_TIMEOUT_S };
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	struct berval cred = { 0, (char *)"" }; /* an empty credential, not NULL (docs/slapd-facts.md) */
	if (self && ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &cred, NULL, NULL, NULL) != LDAP_SUCCESS) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		return NULL;
	}
	return ld;
}

/* Marks the exchange done, without a security layer (TLS or ldapi is the layer). */
static inline void slapd_plugin_done(sasl_out_params_t *oparams)
{
	oparams->doneflag = 1;
	oparams->mech_ssf = 0;
	oparams->maxoutbuf = 0;
	oparams->encode_context = NULL;
	oparams->encode = NULL;
	oparams->decode_context = NULL;
	oparams->decode = NULL;
	oparams->param_version = 0;
}

/* The body of sasl_server_plug_init: hands Cyrus the count plugins. */
static inline int slapd_plugin_init(int maxversion, int *out_version, sasl_server_plug_t **pluglist, int *plugcount,
				    sasl_server_plug_t *plugins, int count)
{
	if (maxversion < SASL_SERVER_PLUG_VERSION)
		return SASL_BADVERS;
	*out_version = SASL_SERVER_PLUG_VERSION;
	*pluglist = plugins;
	*plugcount = count;
	return SASL_OK;
}

#endif
