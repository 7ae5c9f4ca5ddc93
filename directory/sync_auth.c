/* sync_auth.c - pass-through sign-in for synced users (sync add --auth passthrough): slapd's remoteauth overlay on
 * our directory sends the bind of a synced user without a password of its own, as its DN at the source, to the
 * relay of the user's source (sync_relay.c), which binds at the source and keeps the short cache of successes. */
#include "directory/sync_int.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/ldap_util.h"
#include "common/settings.h"
#include "directory/sync_relay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAIN_DB "olcDatabase={1}mdb,cn=config"
/* Overlays run from the highest index down: remoteauth goes first in the list, so that it runs last, after ppolicy
 * (a lock here refuses a bind the source takes) and the access log (failed binds logged) have set their hooks. */
#define OVERLAY_NEW_DN "olcOverlay={0}remoteauth," MAIN_DB
/* remoteauth takes a user's domain from this attribute: a synced user's source entry, which a mapping per
 * pass-through source sends to that source's relay; a user of a source without one (--auth local) has no realm and
 * is checked here. */
#define DOMAIN_ATTR "ixSyncedFrom"
/* the settings of earlier versions (one source, the default domain for every user), removed when found */
static const char *const old_attrs[] = { "olcRemoteAuthDefaultDomain", "olcRemoteAuthDefaultRealm" };

/* The relay of the source name (its entry's entryUUID uuid) at uri in *slot: started, or replaced when the source
 * changed (the old relay's cache file removed). Returns IX_OK or the relay's error. */
static int relay_for(const struct config *cfg, const char *name, const char *uuid, const char *uri,
		     struct sync_relay **slot, struct buf *error_r)
{
	char *ca = sync_file_path(cfg, name, "-ca.pem");
	const char *cafile = access(ca, R_OK) == 0 ? ca : NULL;
	int ret = IX_OK;
	if (*slot == NULL || !sync_relay_is(*slot, name, uri, cafile)) {
		sync_relay_stop(slot, 0);
		char *path = sync_file_path(cfg, name, ".auth"), *cache = sync_file_path(cfg, name, SYNC_CACHE_SUFFIX);
		/* the cache file of an earlier run is taken only by the same source entry at the same URI */
		char *origin = xasprintf("%s %s", uuid, uri);
		ret = sync_relay_start(name, uri, cafile, path, cache, origin, slot, error_r);
		free(origin);
		free(cache);
		free(path);
	}
	free(ca);
	return ret;
}

/* Starts, replaces and stops a->relays to match the pass-through sources here; the mappings remoteauth needs (the
 * source entry's DN quoted, as it holds spaces, then the relay's URI) in *maps_r, and as slapd says them back
 * (unquoted) in *said_r. A relay that cannot start leaves its source out (its users cannot sign in) and the others
 * as they are, its error added to relay_err. Returns IX_OK, or the error of reading the sources (nothing changed). */
static int relays_update(struct prov *p, const struct config *cfg, struct sync_auth *a, char ***maps_r, size_t *nmaps,
			 char ***said_r, struct buf *relay_err, struct buf *error_r)
{
	LDAP *ours = prov_ldap(p);
	LDAPMessage *sources = NULL;
	int ret = sync_sources_here(p, cfg, &sources, error_r);
	if (ret != IX_OK)
		return ret;
	struct settings st;
	prov_own_settings(p, &st);
	struct sync_relay **kept = NULL;
	size_t nkept = 0, nsaid = 0;
	for (LDAPMessage *e = ldapu_first_entry(ours, sources); e != NULL; e = ldap_next_entry(ours, e)) {
		char *auth = ldapu_get_first(ours, e, "ixSyncAuth");
		char *uri = ldapu_get_first(ours, e, "ixSyncUri"), *name = ldapu_get_first(ours, e, "cn");
		char *uuid = ldapu_get_first(ours, e, "entryUUID");
		if (auth != NULL && strcasecmp(auth, "passthrough") == 0 && uri != NULL && name != NULL &&
		    uuid != NULL) {
			struct sync_relay *r = NULL;
			pthread_mutex_lock(&a->lock);
			for (size_t i = 0; i < a->n && r == NULL; i++) {
				if (a->relays[i] != NULL && sync_relay_is_for(a->relays[i], name)) {
					r = a->relays[i];
					a->relays[i] = NULL;
				}
			}
			pthread_mutex_unlock(&a->lock);
			struct buf err = BUF_INIT;
			if (relay_for(cfg, name, uuid, uri, &r, &err) != IX_OK) {
				buf_printf(relay_err, "%s%s", relay_err->len > 0 ? "; " : "", buf_cstr(&err));
			} else {
				sync_relay_set_lifetime(r, (unsigned)st.v[SET_SYNC_PASSTHROUGH_CACHE_SECONDS]);
				kept = xrealloc(kept, (nkept + 1) * sizeof(*kept));
				kept[nkept++] = r;
				char *sdn = sync_source_dn(cfg, name);
				char *map = xasprintf("\"%s\" %s", sdn, sync_relay_uri(r));
				char *said = xasprintf("%s %s", sdn, sync_relay_uri(r));
				ldapu_values_push(maps_r, nmaps, map);
				ldapu_values_push(said_r, &nsaid, said);
				free(map);
				free(said);
				free(sdn);
			}
			buf_free(&err);
		}
		free(auth);
		free(uri);
		free(name);
		free(uuid);
	}
	ldap_msgfree(sources);
	pthread_mutex_lock(&a->lock);
	struct sync_relay **gone = a->relays;
	size_t ngone = a->n;
	a->relays = kept;
	a->n = nkept;
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; i < ngone; i++) /* sources gone, or no longer pass-through: their caches too */
		sync_relay_stop(&gone[i], 0);
	free(gone);
	return ret;
}

/* Whether the NULL-terminated arrays have the same strings (case-insensitive, in any order). */
static int same_values(char **x, char **y)
{
	size_t nx = 0, ny = 0;
	while (x != NULL && x[nx] != NULL)
		nx++;
	while (y != NULL && y[ny] != NULL)
		ny++;
	if (nx != ny)
		return 0;
	for (size_t i = 0; i < nx; i++) {
		int found = 0;
		for (size_t j = 0; j < ny && !found; j++)
			found = strcasecmp(x[i], y[j]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

int sync_auth_apply(struct prov *p, const struct config *cfg, struct sync_auth *a, struct buf *error_r)
{
	char **maps = NULL, **said = NULL;
	size_t nmaps = 0;
	struct buf relay_err = BUF_INIT;
	int ret = relays_update(p, cfg, a, &maps, &nmaps, &said, &relay_err, error_r);
	if (ret != IX_OK || (nmaps == 0 && a->active == 0)) { /* nothing to sign in, and the overlay known idle */
		ldapu_values_free(&maps);
		ldapu_values_free(&said);
		buf_free(&relay_err);
		return ret;
	}
	LDAP *ld = NULL;
	ret = ldapu_connect_local(cfg, &ld, error_r);
	LDAPMessage *res = NULL;
	const char *attrs[] = { "olcRemoteAuthMapping", "olcRemoteAuthDomainAttribute",
				"olcRemoteAuthTLS",     old_attrs[0],
				old_attrs[1],           NULL };
	if (ret == IX_OK) {
		ret = ldapu_search(ld, MAIN_DB, LDAP_SCOPE_ONELEVEL, "(objectClass=olcRemoteAuthCfg)", attrs, &res,
				   error_r);
	}
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(ld, res) : NULL;
	char *dn = e != NULL ? ldap_get_dn(ld, e) : NULL;
	char **have_maps = e != NULL ? ldapu_get_values(ld, e, "olcRemoteAuthMapping", NULL) : NULL;
	char *have_attr = e != NULL ? ldapu_get_first(ld, e, "olcRemoteAuthDomainAttribute") : NULL;
	char *have_tls = e != NULL ? ldapu_get_first(ld, e, "olcRemoteAuthTLS") : NULL;
	LDAPMod **mods = NULL;
	size_t n = 0;
	for (size_t i = 0; e != NULL && i < sizeof(old_attrs) / sizeof(old_attrs[0]); i++) {
		char *old = ldapu_get_first(ld, e, old_attrs[i]);
		if (old != NULL)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, old_attrs[i], NULL);
		free(old);
	}
	/* remoteauth binds to the relays on this machine, which speak TLS to the sources themselves */
	const char *tls = "starttls=no";
	if (ret == IX_OK && e == NULL && nmaps > 0) {
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
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", oc);
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcOverlay", ldapu_values1("{0}remoteauth"));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcRemoteAuthTLS", ldapu_values1(tls));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcRemoteAuthDNAttribute", ldapu_values1("ixSyncRemoteDn"));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcRemoteAuthDomainAttribute", ldapu_values1(DOMAIN_ATTR));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcRemoteAuthMapping", maps);
		maps = NULL;
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcRemoteAuthStore", ldapu_values1("FALSE"));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "olcRemoteAuthRetryCount", ldapu_values1("1"));
		if (ret == IX_OK) {
			rc = ldap_add_ext_s(ld, OVERLAY_NEW_DN, mods, NULL, NULL);
			if (rc != LDAP_SUCCESS)
				ret = ldapu_fail(ld, rc, "cannot add slapd's remoteauth overlay", error_r);
		}
	} else if (ret == IX_OK && e != NULL) {
		if (!same_values(said, have_maps)) {
			/* no mapping left: no user has a realm, so every bind is checked here again */
			ldapu_mod_add(&mods, &n, nmaps > 0 ? LDAP_MOD_REPLACE : LDAP_MOD_DELETE, "olcRemoteAuthMapping",
				      maps);
			maps = NULL;
		}
		if (have_attr == NULL || strcasecmp(have_attr, DOMAIN_ATTR) != 0)
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "olcRemoteAuthDomainAttribute",
				      ldapu_values1(DOMAIN_ATTR));
		if (have_tls == NULL || strcmp(have_tls, tls) != 0)
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "olcRemoteAuthTLS", ldapu_values1(tls));
		if (n > 0)
			ret = ldapu_modify(ld, dn, mods, error_r);
	}
	if (ret == IX_OK)
		a->active = nmaps > 0;
	ldapu_mods_free(mods);
	ldapu_values_free(&maps);
	ldapu_values_free(&said);
	ldapu_values_free(&have_maps);
	ldap_memfree(dn);
	ldap_msgfree(res);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(have_attr);
	free(have_tls);
	if (ret == IX_OK && relay_err.len > 0) {
		buf_append_str(error_r, buf_cstr(&relay_err));
		ret = IX_EIO;
	}
	buf_free(&relay_err);
	return ret;
}

int sync_auth_stats(struct sync_auth *a, const char *name, struct sync_relay_stats *st_r)
{
	int found = 0;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n && !found; i++) {
		if (a->relays[i] != NULL && sync_relay_is_for(a->relays[i], name)) {
			sync_relay_stats(a->relays[i], st_r);
			found = 1;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return found;
}

void sync_auth_stop(struct sync_auth *a)
{
	pthread_mutex_lock(&a->lock);
	struct sync_relay **relays = a->relays;
	size_t n = a->n;
	a->relays = NULL;
	a->n = 0;
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; i < n; i++) /* the attendant stops: the caches are kept for its next start */
		sync_relay_stop(&relays[i], 1);
	free(relays);
}
