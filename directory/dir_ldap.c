/* dir_ldap.c - the library's connections: ldap_util's EXTERNAL connect, plus the options a long-lived
 * replica connection needs that ldap.conf or LDAP* variables must not change (no client-side limits). */
#include "directory/dir_private.h"

#include <ldap.h>
#include "common/err.h"
#include "directory/ldap_util.h"

void *dir_ldap_connect(const char *uri, struct buf *error_r)
{
	LDAP *ld = NULL;
	struct buf error = BUF_INIT;
	if (ldapu_connect_external(uri, &ld, &error) != IX_OK) {
		if (error_r != NULL)
			buf_append_str(error_r, buf_cstr(&error));
		buf_free(&error);
		return NULL;
	}
	buf_free(&error);
	int zero = 0, deref = LDAP_DEREF_NEVER;
	ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
	ldap_set_option(ld, LDAP_OPT_SIZELIMIT, &zero);
	ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &zero);
	ldap_set_option(ld, LDAP_OPT_DEREF, &deref);
	return ld;
}
