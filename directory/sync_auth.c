/* sync_auth.c - pass-through sign-in for synced users (sync add --auth passthrough): slapd's remoteauth overlay on
 * our directory sends the bind of a synced user without a password of its own, as its DN at the source, to the
 * source's relay (sync_relay.c), which binds at the source and keeps the short cache of successes. */
#include "directory/sync_int.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/ldap_util.h"
#include "common/settings.h"
#include "directory/sync_relay.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAIN_DB "olcDatabase={1}mdb,cn=config"
/* Overlays run from the highest index down: remoteauth goes first in the list, so that it runs last, after ppolicy
 * (a lock here refuses a bind the source takes) and the access log (failed binds logged) have set their hooks. */
#define OVERLAY_NEW_DN "olcOverlay={0}remoteauth," MAIN_DB
/* remoteauth takes a user's domain from an attribute, else the default; no user has this one, so every user gets
 * the default domain, which is set only while a source signs its users in */
#define DOMAIN_ATTR "ixSyncAuth"
#define DOMAIN "interchange-sync"

/* The relay of the source name at uri is *relay: started, or replaced when the source changed. Returns IX_OK or the
 * relay's error. */
static int relay_for(const struct config *cfg, const char *name, const char *uri, struct sync_relay **relay,
		     struct buf *error_r)
{
	char *ca = sync_file_path(cfg, name, "-ca.pem");
	const char *cafile = access(ca, R_OK) == 0 ? ca : NULL;
	int ret = IX_OK;
	if (*relay == NULL || !sync_relay_is(*relay, name, uri, cafile)) {
		sync_relay_stop(relay);
		char *path = sync_file_path(cfg, name, ".auth");
		ret = sync_relay_start(name, uri, cafile, path, relay, error_r);
		free(path);
	}
	free(ca);
	return ret;
}

int sync_auth_apply(struct prov *p, const struct config *cfg, int *active, struct sync_relay **relay,
		    struct buf *error_r)
{
	LDAP *ours = prov_ldap(p);
	LDAPMessage *sources = NULL;
	int ret = sync_sources_here(p, cfg, &sources, error_r);
	if (ret != IX_OK)
		return ret;
	char *uri = NULL, *name = NULL;
	for (LDAPMessage *e = ldapu_first_entry(ours, sources); e != NULL && uri == NULL;
	     e = ldap_next_entry(ours, e)) {
		char *auth = ldapu_get_first(ours, e, "ixSyncAuth");
		if (auth != NULL && strcasecmp(auth, "passthrough") == 0) {
			uri = ldapu_get_first(ours, e, "ixSyncUri");
			name = ldapu_get_first(ours, e, "cn");
		}
		free(auth);
	}
	ldap_msgfree(sources);
	const char *realm = NULL;
	if (uri != NULL && name != NULL) {
		ret = relay_for(cfg, name, uri, relay, error_r);
		if (ret != IX_OK) {
			free(uri);
			free(name);
			return ret;
		}
		struct settings st;
		prov_own_settings(p, &st);
		sync_relay_set_lifetime(*relay, (unsigned)st.v[SET_SYNC_PASSTHROUGH_CACHE_SECONDS]);
		realm = sync_relay_uri(*relay);
	} else {
		sync_relay_stop(relay);
	}
	free(uri);
	free(name);
	/* remoteauth binds to the relay on this machine, which speaks TLS to the source itself */
	const char *tls = realm != NULL ? "starttls=no" : NULL;
	if (tls == NULL && *active == 0) /* nothing to sign in, and the overlay is known to be idle */
		return IX_OK;
	LDAP *ld = NULL;
	ret = ldapu_connect_local(cfg, &ld, error_r);
	LDAPMessage *res = NULL;
	const char *attrs[] = { "olcRemoteAuthDefaultRealm", "olcRemoteAuthTLS", "olcRemoteAuthDefaultDomain", NULL };
	if (ret == IX_OK) {
		ret = ldapu_search(ld, MAIN_DB, LDAP_SCOPE_ONELEVEL, "(objectClass=olcRemoteAuthCfg)", attrs, &res,
				   error_r);
	}
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(ld, res) : NULL;
	char *dn = e != NULL ? ldap_get_dn(ld, e) : NULL;
	char *have_realm = e != NULL ? ldapu_get_first(ld, e, "olcRemoteAuthDefaultRealm") : NULL;
	char *have_tls = e != NULL ? ldapu_get_first(ld, e, "olcRemoteAuthTLS") : NULL;
	char *have_domain = e != NULL ? ldapu_get_first(ld, e, "olcRemoteAuthDefaultDomain") : NULL;
	LDAPMod **mods = NULL;
	size_t n = 0;
	if (ret == IX_OK && tls == NULL && have_domain != NULL) {
		/* no source signs in: no user has a domain, so every bind is checked here again */
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "olcRemoteAuthDefaultDomain", NULL);
		ret = ldapu_modify(ld, dn, mods, error_r);
	} else if (ret == IX_OK && tls != NULL && e == NULL) {
		LDAPMod **m = NULL;
		size_t nm = 0;
		char *vals[] = { "remoteauth", NULL };
		LDAPMod load = { .mod_op = LDAP_MOD_ADD, .mod_type = "olcModuleLoad", .mod_values = vals };
		LDAPMod *loads[] = { &load, NULL };
		int rc = ldap_modify_ext_s(ld, "cn=module{0},cn=config", loads, NULL, NULL);
		if (rc != LDAP_SUCCESS && rc != LDAP_TYPE_OR_VALUE_EXISTS)
			ret = ldapu_fail(ld, rc, "cannot load slapd's remoteauth module", error_r);
		char **oc = NULL;
		size_t noc = 0;
		ldapu_values_push(&oc, &noc, "olcOverlayConfig");
		ldapu_values_push(&oc, &noc, "olcRemoteAuthCfg");
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "objectClass", oc);
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcOverlay", ldapu_values1("{0}remoteauth"));
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcRemoteAuthTLS", ldapu_values1(tls));
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcRemoteAuthDNAttribute", ldapu_values1("ixSyncRemoteDn"));
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcRemoteAuthDomainAttribute", ldapu_values1(DOMAIN_ATTR));
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcRemoteAuthDefaultDomain", ldapu_values1(DOMAIN));
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcRemoteAuthDefaultRealm", ldapu_values1(realm));
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcRemoteAuthStore", ldapu_values1("FALSE"));
		ldapu_mod_add(&m, &nm, LDAP_MOD_ADD, "olcRemoteAuthRetryCount", ldapu_values1("1"));
		if (ret == IX_OK) {
			rc = ldap_add_ext_s(ld, OVERLAY_NEW_DN, m, NULL, NULL);
			if (rc != LDAP_SUCCESS)
				ret = ldapu_fail(ld, rc, "cannot add slapd's remoteauth overlay", error_r);
		}
		ldapu_mods_free(m);
	} else if (ret == IX_OK && tls != NULL &&
		   (have_domain == NULL || have_realm == NULL || strcmp(have_realm, realm) != 0 || have_tls == NULL ||
		    strcmp(have_tls, tls) != 0)) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "olcRemoteAuthDefaultRealm", ldapu_values1(realm));
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "olcRemoteAuthTLS", ldapu_values1(tls));
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "olcRemoteAuthDefaultDomain", ldapu_values1(DOMAIN));
		ret = ldapu_modify(ld, dn, mods, error_r);
	}
	if (ret == IX_OK)
		*active = tls != NULL;
	ldapu_mods_free(mods);
	ldap_memfree(dn);
	ldap_msgfree(res);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(have_realm);
	free(have_tls);
	free(have_domain);
	return ret;
}
