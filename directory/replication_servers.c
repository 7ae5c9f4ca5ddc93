/* replication_servers.c - the servers of an organisation as replication sees them: reading them from a directory,
 * connecting to them (StartTLS off the loopback listener), and their contextCSN. */
#include "directory/replication.h"
#include "common/err.h"
#include "common/log.h"
#include "directory/ldap_util.h"
#include "directory/replication_int.h"

#include <ldap.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const server_attrs[] = {
	"cn", "ixServerId", "ixLdapUri", "ixReplicationHandover", "userCertificate;binary", "objectClass", NULL
};

/* ---- connecting to a server ---- */

int repl_uri_is_local(const char *uri)
{
	if (strncasecmp(uri, "ldapi://", 8) == 0)
		return 1;
	LDAPURLDesc *d = NULL;
	if (ldap_url_parse(uri, &d) != LDAP_SUCCESS)
		return 0;
	const char *h = d->lud_host;
	int local = strcasecmp(d->lud_scheme, "ldap") == 0 &&
		    (h == NULL || h[0] == '\0' || strcmp(h, "127.0.0.1") == 0 || strcmp(h, "::1") == 0 ||
		     strcasecmp(h, "localhost") == 0);
	ldap_free_urldesc(d);
	return local;
}

int repl_connect_tls(const char *uri, const char *dn, const char *password, const char *cafile, void *ld_rp,
		     struct buf *error_r)
{
	LDAP **ld_r = ld_rp;
	if (repl_uri_is_local(uri) || strncasecmp(uri, "ldaps://", 8) == 0)
		return ldapu_connect_simple(uri, dn, password, ld_r, error_r);
	if (password == NULL || password[0] == '\0') {
		buf_append_str(error_r, "an empty password is not accepted");
		return IX_EAUTH;
	}
	LDAP *ld = NULL;
	int ret = ldapu_open(uri, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	int demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (cafile != NULL)
		ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cafile);
	ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	/* the password never crosses the network in clear: StartTLS, the peer's certificate checked, or nothing */
	int rc = ldap_start_tls_s(ld, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		char *diag = NULL;
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
		if (rc == LDAP_CONNECT_ERROR && cafile != NULL)
			buf_printf(error_r,
				   "the certificate of %s was refused: it is not one %s holds, or it does not name "
				   "the host as the URI does",
				   uri, cafile);
		else if (rc == LDAP_CONNECT_ERROR)
			buf_printf(error_r,
				   "the certificate of %s was refused: the system's CAs do not vouch for it; give "
				   "--ca FILE, a copy of that server's DATA/tls/cert.pem",
				   uri);
		else
			buf_printf(error_r, "cannot start TLS with %s: %s%s%s", uri, ldap_err2string(rc),
				   diag != NULL && diag[0] ? ", " : "", diag != NULL ? diag : "");
		ldap_memfree(diag);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ? IX_EUNAVAIL : IX_EAUTH;
	}
	return ldapu_bind_simple(ld, uri, dn, password, ld_r, error_r);
}

int repl_peer_connect(const struct config *cfg, const char *uri, const char *dn, const char *password, void *ld_r,
		      struct buf *error_r)
{
	char *ca = config_path(cfg, REPL_PEERS_FILE);
	int ret = repl_connect_tls(uri, dn, password, ca, ld_r, error_r);
	free(ca);
	return ret;
}

/* ---- servers ---- */

int repl_servers_read(void *ldp, const char *suffix, struct repl_server **servers_r, size_t *count_r,
		      struct buf *error_r)
{
	LDAP *ld = ldp;
	char *base = xasprintf("ou=Servers,ou=Configuration,%s", suffix);
	LDAPMessage *res;
	*servers_r = NULL;
	*count_r = 0;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixServer)", server_attrs, &res, error_r);
	free(base);
	if (ret != IX_OK)
		return ret;
	size_t n = 0, cap = (size_t)ldap_count_entries(ld, res);
	if (cap > REPL_MAX_SERVERS)
		cap = REPL_MAX_SERVERS;
	struct repl_server *s = xcalloc(cap + 1, sizeof(*s));
	for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL && n < cap; e = ldap_next_entry(ld, e)) {
		char *dn = ldap_get_dn(ld, e);
		s[n].dn = xstrdup(dn != NULL ? dn : "");
		ldap_memfree(dn);
		s[n].name = ldapu_get_first(ld, e, "cn");
		s[n].uri = ldapu_get_first(ld, e, "ixLdapUri");
		s[n].handover = ldapu_get_first(ld, e, "ixReplicationHandover");
		struct berval **cert = ldap_get_values_len(ld, e, "userCertificate;binary");
		for (size_t k = 0; cert != NULL && cert[k] != NULL && s[n].ncerts < REPL_MAX_CERTS; k++) {
			if (cert[k]->bv_len == 0 || cert[k]->bv_len > REPL_MAX_CERT)
				continue;
			s[n].cert[s[n].ncerts] = xmalloc(cert[k]->bv_len);
			memcpy(s[n].cert[s[n].ncerts], cert[k]->bv_val, cert[k]->bv_len);
			s[n].cert_len[s[n].ncerts++] = cert[k]->bv_len;
		}
		if (cert != NULL)
			ldap_value_free_len(cert);
		struct berval **oc = ldap_get_values_len(ld, e, "objectClass");
		for (size_t k = 0; oc != NULL && oc[k] != NULL; k++)
			s[n].pki = s[n].pki || (oc[k]->bv_len == 7 && strncasecmp(oc[k]->bv_val, "pkiUser", 7) == 0);
		if (oc != NULL)
			ldap_value_free_len(oc);
		char *sid = ldapu_get_first(ld, e, "ixServerId");
		unsigned long long v;
		if (sid != NULL && parse_uint(sid, REPL_MAX_SERVER_ID, &v) == 0)
			s[n].sid = (unsigned)v;
		free(sid);
		if (s[n].name == NULL)
			s[n].name = xstrdup(s[n].dn);
		n++;
	}
	ldap_msgfree(res);
	*servers_r = s;
	*count_r = n;
	return IX_OK;
}

void repl_servers_free(struct repl_server **servers, size_t count)
{
	if (*servers == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*servers)[i].dn);
		free((*servers)[i].name);
		free((*servers)[i].uri);
		free((*servers)[i].handover);
		for (size_t k = 0; k < (*servers)[i].ncerts; k++)
			free((*servers)[i].cert[k]);
	}
	free(*servers);
	*servers = NULL;
}

int repl_server_dn(const struct config *cfg, const char *dn)
{
	if (dn == NULL)
		return 0;
	char *tail = xasprintf(",ou=Servers,ou=Configuration,%s", cfg->suffix);
	size_t dl = strlen(dn), tl = strlen(tail);
	int hit = dl > tl && strcasecmp(dn + dl - tl, tail) == 0;
	free(tail);
	return hit;
}

int repl_same_dn(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* ---- contextCSN ---- */

int repl_read_csns(LDAP *ld, const char *suffix, char ***csns_r, struct buf *error_r)
{
	static const char *const attrs[] = { "contextCSN", NULL };
	LDAPMessage *res;
	int ret = ldapu_search(ld, suffix, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, error_r);
	if (ret != IX_OK) {
		*csns_r = xcalloc(1, sizeof(char *));
		return ret;
	}
	*csns_r = ldapu_get_values(ld, ldap_first_entry(ld, res), "contextCSN", NULL);
	ldap_msgfree(res);
	return IX_OK;
}

long repl_csn_sid(const char *csn)
{
	const char *p = strchr(csn, '#');
	p = p != NULL ? strchr(p + 1, '#') : NULL;
	if (p == NULL)
		return -1;
	return strtol(p + 1, NULL, 16);
}

int repl_csns_cover(char **have, char **want)
{
	for (char **w = want; *w != NULL; w++) {
		int ok = 0;
		for (char **h = have; *h != NULL && !ok; h++)
			ok = repl_csn_sid(*h) == repl_csn_sid(*w) && strcmp(*h, *w) >= 0;
		if (!ok)
			return 0;
	}
	return 1;
}
