/* dir_ldap.c - the library's one boundary with libldap connections: connect with explicit options (so that
 * ldap.conf and LDAP* variables cannot change them) and bind with SASL EXTERNAL over ldapi. */
#include "dir_private.h"

#include <ldap.h>
#include <sys/time.h>

/* Seconds to wait for a connection to open. */
#define DIR_CONNECT_TIMEOUT_SEC 3

void *dir_ldap_connect(const char *uri, bool external, struct buf *error_r)
{
	LDAP *ld = NULL;
	int rc = ldap_initialize(&ld, uri);
	if (rc != LDAP_SUCCESS) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot use LDAP URI %s: %s", uri, ldap_err2string(rc));
		return NULL;
	}
	int version = LDAP_VERSION3, zero = 0, deref = LDAP_DEREF_NEVER;
	struct timeval tv = { DIR_CONNECT_TIMEOUT_SEC, 0 };
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
	ldap_set_option(ld, LDAP_OPT_SIZELIMIT, &zero);
	ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &zero);
	ldap_set_option(ld, LDAP_OPT_DEREF, &deref);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	if (!external)
		return ld;
	struct berval cred = { 0, "" };
	rc = ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot bind to %s with SASL EXTERNAL: %s", uri, ldap_err2string(rc));
		ldap_unbind_ext(ld, NULL, NULL);
		return NULL;
	}
	return ld;
}
