/* replication.c - joining a server to an organisation and keeping slapd's multi-provider replication in step with
 * the ixServer entries (directory-first). Design and traps: docs/multi-server.md. */
#include "directory/replication.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "common/log.h"
#include "directory/slapd.h"

#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How often join polls the local copy while the contents arrive. */
#define REPL_POLL_MS 50
/* A contextCSN value: 20231127022601.123456Z#000000#001#000000 (the server ID is the third field). */
#define REPL_MAX_CSN 64
#define REPL_MAX_CSNS 64
/* How long join waits for the first server to take the replication password hand-over. */
#define REPL_HANDOVER_WAIT_MS 5000
/* Attempts at a free server ID when joins race. */
#define REPL_ID_ATTEMPTS 8
/* How long join waits for its entry to reach each other server before checking its ID there. */
#define REPL_ID_CHECK_MS 10000

static atomic_int servers_changed;

static const char *const server_attrs[] = { "cn", "ixServerId", "ixLdapUri", "ixReplicationHandover",
					     "userCertificate;binary", "objectClass", NULL };

/* ---- small LDAP helpers ---- */

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
	int rc = ldap_initialize(&ld, uri);
	if (rc != LDAP_SUCCESS) {
		buf_printf(error_r, "cannot use directory address %s: %s", uri, ldap_err2string(rc));
		return IX_EINVAL;
	}
	int version = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	struct timeval tv = { 5, 0 };
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (cafile != NULL)
		ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cafile);
	ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	/* the password never crosses the network in clear: StartTLS, the peer's certificate checked, or nothing */
	rc = ldap_start_tls_s(ld, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		char *diag = NULL;
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
		buf_printf(error_r, "cannot start TLS with %s: %s%s%s (is its certificate trusted%s%s?)", uri,
			   ldap_err2string(rc), diag != NULL && diag[0] ? ", " : "", diag != NULL ? diag : "",
			   cafile != NULL ? " by " : "", cafile != NULL ? cafile : "");
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

static int repl_connect(const struct repl_join *j, const char *dn, const char *password, LDAP **ld_r,
			struct buf *error_r)
{
	return repl_connect_tls(j->uri, dn, password, j->cafile, ld_r, error_r);
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
		if (cert != NULL && cert[0] != NULL && cert[0]->bv_len > 0 && cert[0]->bv_len <= REPL_MAX_CERT) {
			s[n].cert = xmalloc(cert[0]->bv_len);
			memcpy(s[n].cert, cert[0]->bv_val, cert[0]->bv_len);
			s[n].cert_len = cert[0]->bv_len;
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
		free((*servers)[i].cert);
	}
	free(*servers);
	*servers = NULL;
}

/* ---- certificates: each server publishes its own; every server trusts the published set ---- */

/* This server's certificate (<data>/tls/cert.pem) in DER; the caller frees. Returns IX_OK or IX_EIO. */
static int own_cert_der(const struct config *cfg, unsigned char **der_r, size_t *len_r, struct buf *error_r)
{
	char *path = config_path(cfg, "tls/cert.pem");
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	int ret = IX_EIO;
	unsigned char *der = NULL;
	int n = x != NULL ? i2d_X509(x, &der) : -1;
	if (n > 0 && (size_t)n <= REPL_MAX_CERT) {
		*der_r = xmalloc((size_t)n);
		memcpy(*der_r, der, (size_t)n);
		*len_r = (size_t)n;
		ret = IX_OK;
	} else {
		buf_printf(error_r, "cannot read this server's certificate %s", path);
	}
	OPENSSL_free(der);
	X509_free(x);
	free(path);
	return ret;
}

/* Writes <data>/REPL_PEERS_FILE: the certificates the servers publish in the directory, as PEM, when it differs.
 * Returns IX_OK or IX_EIO. */
static int write_peers(const struct config *cfg, const struct repl_server *servers, size_t count, struct buf *error_r)
{
	BIO *mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < count; i++) {
		const unsigned char *p = servers[i].cert;
		X509 *x = p != NULL ? d2i_X509(NULL, &p, (long)servers[i].cert_len) : NULL;
		if (x == NULL) {
			if (servers[i].cert != NULL)
				log_warn("replication: the certificate published by %s is not valid DER: ignored",
					 servers[i].name);
			continue;
		}
		PEM_write_bio_X509(mem, x);
		X509_free(x);
	}
	char *pem = NULL;
	long plen = BIO_get_mem_data(mem, &pem);
	char *path = config_path(cfg, REPL_PEERS_FILE), *old = NULL;
	size_t olen = 0;
	int ret = IX_OK;
	int same = read_file(path, 4 * 1024 * 1024, &old, &olen) == 0 && olen == (size_t)plen &&
		   (plen == 0 || memcmp(old, pem, (size_t)plen) == 0);
	if (!same && write_file_atomic(path, pem, (size_t)plen, 0644) < 0) {
		buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
		ret = IX_EIO;
	}
	free(old);
	free(path);
	BIO_free(mem);
	return ret;
}

/* Publishes this server's certificate in its entry (objectClass pkiUser, userCertificate;binary) when the entry
 * lacks it or holds another one (after a renewal). */
static int publish_cert(LDAP *ld, const struct config *cfg, const struct repl_server *me, struct buf *error_r)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int ret = own_cert_der(cfg, &der, &len, error_r);
	if (ret != IX_OK)
		return ret;
	if (me->cert == NULL || me->cert_len != len || memcmp(me->cert, der, len) != 0) {
		struct berval bv = { (ber_len_t)len, (char *)der }, *bvals[] = { &bv, NULL };
		char *oc[] = { (char *)"pkiUser", NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
		LDAPMod m2 = { .mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, .mod_type = (char *)"userCertificate;binary",
			       .mod_bvalues = bvals };
		LDAPMod *mods[] = { &m1, &m2, NULL };
		ret = ldapu_modify(ld, me->dn, me->pki ? mods + 1 : mods, error_r);
	}
	free(der);
	return ret;
}

/* ---- olcSyncrepl values ---- */

char *repl_syncrepl_value(unsigned sid, const char *uri, const char *admin_dn, const char *password, const char *suffix,
			  const char *cafile)
{
	const char *parts[] = { uri, admin_dn, password, suffix, cafile != NULL ? cafile : "" };
	for (size_t i = 0; i < IX_ARRAY_LEN(parts); i++) {
		if (strpbrk(parts[i], "\"\\\r\n") != NULL)
			return NULL;
	}
	if (strpbrk(uri, " \t") != NULL)
		return NULL;
	/* off the loopback listener the admin password goes only through TLS, to a peer whose certificate the
	 * directory vouches for (cafile: the attendant writes it from the servers' entries) */
	struct buf tls = BUF_INIT;
	if (!repl_uri_is_local(uri) && strncasecmp(uri, "ldaps://", 8) != 0)
		buf_append_str(&tls, " starttls=critical tls_reqcert=demand");
	if (!repl_uri_is_local(uri) && cafile != NULL)
		buf_printf(&tls, " tls_cacert=\"%s\"", cafile);
	/* retry every REPL_RETRY_S forever: a provider that is down is caught up with when it returns. Delta-syncrepl:
	 * the consumer replays the provider's access log (the changed attributes of each write), so writes to
	 * different attributes of one entry on two servers merge instead of the newer entry replacing the older */
	char *v = xasprintf("rid=%03u provider=%s bindmethod=simple binddn=\"%s\" credentials=\"%s\" searchbase=\"%s\" "
			    "type=refreshAndPersist retry=\"%u +\" timeout=1 network-timeout=3 logbase=\"%s\" "
			    "logfilter=\"%s\" syncdata=accesslog%s",
			    sid, uri, admin_dn, password, suffix, REPL_RETRY_S, SLAPD_ACCESSLOG_SUFFIX, REPL_LOG_FILTER,
			    buf_cstr(&tls));
	buf_free(&tls);
	return v;
}

/* Value of key=VALUE or key="VALUE" in a syncrepl value (keys are matched at word starts). */
static char *syncrepl_field(const char *value, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = value; *p != '\0'; p++) {
		if ((p == value || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '}') && strncasecmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			const char *v = p + klen + 1;
			if (*v == '"') {
				const char *end = strchr(v + 1, '"');
				return end != NULL ? xstrndup(v + 1, (size_t)(end - v - 1)) : NULL;
			}
			return xstrndup(v, strcspn(v, " \t"));
		}
	}
	return NULL;
}

char *repl_syncrepl_credentials(const char *value)
{
	return syncrepl_field(value, "credentials");
}

char *repl_syncrepl_provider(const char *value)
{
	return syncrepl_field(value, "provider");
}

static unsigned syncrepl_rid(const char *value)
{
	char *rid = syncrepl_field(value, "rid");
	unsigned long long v = 0;
	if (rid == NULL || parse_uint(rid, 999, &v) < 0)
		v = 0;
	free(rid);
	return (unsigned)v;
}

int repl_syncrepl_same(const char *live, const char *want)
{
	if (syncrepl_rid(live) != syncrepl_rid(want))
		return 0;
	/* an absent option is slapd's default, which our values never rely on: "no" stands for it */
	static const char *const keys[] = { "provider", "credentials", "starttls", "tls_cacert", "syncdata", "logbase" };
	int same = 1;
	for (size_t i = 0; i < IX_ARRAY_LEN(keys) && same; i++) {
		char *x = syncrepl_field(live, keys[i]), *y = syncrepl_field(want, keys[i]);
		const char *xv = x != NULL ? x : "no", *yv = y != NULL ? y : "no";
		/* the password and the URI are compared exactly, the option words and the DN without case */
		same = i < 2 ? strcmp(xv, yv) == 0 : strcasecmp(xv, yv) == 0;
		free(x);
		free(y);
	}
	return same;
}

/* ---- cn=config ---- */

struct live_config {
	char *db_dn;        /* the mdb database holding suffix */
	char **server_ids;  /* olcServerID values */
	char **syncrepl;    /* olcSyncrepl values */
	char *multiprovider;
};

static void live_config_free(struct live_config *c)
{
	free(c->db_dn);
	ldapu_values_free(&c->server_ids);
	ldapu_values_free(&c->syncrepl);
	free(c->multiprovider);
	memset(c, 0, sizeof(*c));
}

static int live_config_read(LDAP *ld, const char *suffix, struct live_config *c, struct buf *error_r)
{
	memset(c, 0, sizeof(*c));
	static const char *const gattrs[] = { "olcServerID", NULL };
	LDAPMessage *res;
	int ret = ldapu_search(ld, "cn=config", LDAP_SCOPE_BASE, "(objectClass=*)", gattrs, &res, error_r);
	if (ret != IX_OK)
		return ret;
	c->server_ids = ldapu_get_values(ld, ldap_first_entry(ld, res), "olcServerID", NULL);
	ldap_msgfree(res);
	static const char *const dattrs[] = { "olcSuffix", "olcSyncrepl", "olcMultiProvider", NULL };
	struct buf filter = BUF_INIT;
	buf_append_str(&filter, "(olcSuffix=");
	ldapu_escape_filter(&filter, suffix, strlen(suffix));
	buf_append_char(&filter, ')');
	ret = ldapu_search(ld, "cn=config", LDAP_SCOPE_ONELEVEL, buf_cstr(&filter), dattrs, &res, error_r);
	buf_free(&filter);
	if (ret != IX_OK) {
		live_config_free(c);
		return ret;
	}
	LDAPMessage *e = ldap_first_entry(ld, res);
	if (e == NULL) {
		buf_printf(error_r, "cn=config has no database for %s", suffix);
		ldap_msgfree(res);
		live_config_free(c);
		return IX_ENOTFOUND;
	}
	char *dn = ldap_get_dn(ld, e);
	c->db_dn = xstrdup(dn != NULL ? dn : "");
	ldap_memfree(dn);
	c->syncrepl = ldapu_get_values(ld, e, "olcSyncrepl", NULL);
	c->multiprovider = ldapu_get_first(ld, e, "olcMultiProvider");
	ldap_msgfree(res);
	return IX_OK;
}

/* The password the consumers bind with, from the first olcSyncrepl that has one. */
static char *live_config_password(const struct live_config *c)
{
	for (char **v = c->syncrepl; v != NULL && *v != NULL; v++) {
		char *pw = repl_syncrepl_credentials(*v);
		if (pw != NULL && pw[0] != '\0')
			return pw;
		free(pw);
	}
	return NULL;
}

int repl_admin_password(const struct config *cfg, char **password_r, struct buf *error_r)
{
	*password_r = NULL;
	char *ldapi = config_ldapi_uri(cfg);
	LDAP *ld = NULL;
	int ret = ldapu_connect_external(ldapi, &ld, error_r);
	free(ldapi);
	if (ret != IX_OK)
		return ret;
	struct live_config live = { 0 };
	ret = live_config_read(ld, cfg->suffix, &live, error_r);
	if (ret == IX_OK) {
		*password_r = live_config_password(&live);
		if (*password_r == NULL) {
			buf_printf(error_r, "this server replicates from no other server, so it does not hold the "
					    "administrator password: give it with --admin-password");
			ret = IX_ENOTFOUND;
		}
	}
	live_config_free(&live);
	ldap_unbind_ext(ld, NULL, NULL);
	return ret;
}

static int same_dn(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* Writes olcServerID = my_sid and one olcSyncrepl per other server with an ID and URI (plus olcMultiProvider)
 * when the live configuration differs, compared by (rid, provider, credentials): slapd stores the values in its
 * own canonical form, so a textual comparison would rewrite (and restart every consumer) each time. */
static int apply_config(LDAP *ld, const struct live_config *live, unsigned my_sid, const char *my_dn,
			const struct repl_server *servers, size_t count, const char *admin_dn, const char *password,
			const char *suffix, const char *cafile, int *changed_r, struct buf *error_r)
{
	char sidtext[16];
	snprintf(sidtext, sizeof(sidtext), "%u", my_sid);
	int sid_ok = live->server_ids != NULL && live->server_ids[0] != NULL && live->server_ids[1] == NULL &&
		     strcmp(live->server_ids[0], sidtext) == 0;
	char **want = xcalloc(count + 1, sizeof(*want));
	size_t nwant = 0;
	int ret = IX_OK;
	for (size_t i = 0; i < count; i++) {
		const struct repl_server *s = &servers[i];
		if (same_dn(s->dn, my_dn) || s->sid == 0 || s->uri == NULL || s->sid == my_sid)
			continue;
		char *v = repl_syncrepl_value(s->sid, s->uri, admin_dn, password, suffix, cafile);
		if (v == NULL) {
			buf_printf(error_r, "the URI of %s or the password holds a quote or backslash, which cn=config "
					    "cannot carry",
				   s->name);
			ret = IX_EINVAL;
			goto out;
		}
		want[nwant++] = v;
	}
	size_t nlive = 0;
	for (char **v = live->syncrepl; v != NULL && *v != NULL; v++)
		nlive++;
	int same = nlive == nwant;
	for (size_t i = 0; same && i < nwant; i++) {
		int found = 0;
		for (size_t k = 0; k < nlive && !found; k++)
			found = repl_syncrepl_same(live->syncrepl[k], want[i]);
		same = found;
	}
	int mp_ok = nwant == 0 || (live->multiprovider != NULL && strcasecmp(live->multiprovider, "TRUE") == 0);
	if (!sid_ok) {
		char *sidv[] = { sidtext, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcServerID", .mod_values = sidv };
		LDAPMod *mods[] = { &m, NULL };
		if ((ret = ldapu_modify(ld, "cn=config", mods, error_r)) != IX_OK)
			goto out;
		*changed_r = 1;
	}
	if (!same || !mp_ok) {
		/* the serverID must exist before a multi-provider consumer starts; replace restarts the consumers,
		 * which resume from the contextCSN, so nothing is fetched twice */
		char *tv[] = { (char *)"TRUE", NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcSyncrepl", .mod_values = want };
		LDAPMod m2 = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcMultiProvider", .mod_values = tv };
		LDAPMod *mods[] = { &m1, nwant > 0 ? &m2 : NULL, NULL };
		if (!same || nwant == 0)
			ret = ldapu_modify(ld, live->db_dn, mods, error_r);
		else
			ret = ldapu_modify(ld, live->db_dn, mods + 1, error_r);
		if (ret != IX_OK)
			goto out;
		*changed_r = 1;
	}
out:
	for (size_t i = 0; i < nwant; i++)
		free(want[i]);
	free(want);
	return ret;
}

int repl_sync_config(const struct config *cfg, int *changed_r, struct buf *error_r)
{
	int changed = 0;
	if (changed_r != NULL)
		*changed_r = 0;
	char *uri = config_ldapi_uri(cfg);
	LDAP *ld;
	int ret = ldapu_connect_external(uri, &ld, error_r);
	free(uri);
	if (ret != IX_OK)
		return ret;
	struct repl_server *servers = NULL;
	size_t count = 0;
	struct live_config live = { 0 };
	char *password = NULL;
	ret = repl_servers_read(ld, cfg->suffix, &servers, &count, error_r);
	if (ret != IX_OK)
		goto out;
	const struct repl_server *me = NULL;
	size_t peers = 0;
	for (size_t i = 0; i < count; i++) {
		if (same_dn(servers[i].dn, cfg->server_dn))
			me = &servers[i];
		else if (servers[i].sid != 0 && servers[i].uri != NULL)
			peers++;
	}
	if (me != NULL) {
		/* TLS between servers is anchored in the directory: publish ours, trust the published ones */
		struct buf err = BUF_INIT;
		if (publish_cert(ld, cfg, me, &err) != IX_OK || write_peers(cfg, servers, count, &err) != IX_OK)
			log_warn("replication: %s", buf_cstr(&err));
		buf_free(&err);
	}
	if (me == NULL || me->sid == 0)
		goto out; /* a single server, or one that has not joined anything: nothing to replicate */
	if ((ret = live_config_read(ld, cfg->suffix, &live, error_r)) != IX_OK)
		goto out;
	password = live_config_password(&live);
	if (password == NULL && me->handover != NULL)
		password = xstrdup(me->handover);
	if (password == NULL) {
		if (peers > 0) {
			buf_printf(error_r, "this server has no replication password yet: nothing to bind to the %zu other "
					    "servers with (join it again, or let a joining server leave one)",
				   peers);
			ret = IX_EAUTH;
		}
		goto out;
	}
	char *cafile = config_path(cfg, REPL_PEERS_FILE);
	ret = apply_config(ld, &live, me->sid, cfg->server_dn, servers, count, cfg->admin_dn, password, cfg->suffix,
			   cafile, &changed, error_r);
	free(cafile);
	if (ret == IX_OK && me->handover != NULL && peers > 0) {
		/* the password now lives in cn=config (0600, never replicated): take it out of the directory */
		LDAPMod m = { .mod_op = LDAP_MOD_DELETE, .mod_type = (char *)"ixReplicationHandover", .mod_values = NULL };
		LDAPMod *mods[] = { &m, NULL };
		struct buf err = BUF_INIT;
		if (ldapu_modify(ld, cfg->server_dn, mods, &err) != IX_OK)
			log_warn("replication: %s", buf_cstr(&err));
		buf_free(&err);
	}
out:
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	live_config_free(&live);
	repl_servers_free(&servers, count);
	ldap_unbind_ext_s(ld, NULL, NULL);
	if (changed_r != NULL)
		*changed_r = changed;
	return ret;
}

/* ---- cn=config access for the administrator over ldapi ---- */

int repl_prepare_config(const struct config *cfg, struct buf *error_r)
{
	static const char marker[] = "sockurl.regex=\"^ldapi://\"";
	char *path = config_path(cfg, "directory/slapd.d/cn=config/olcDatabase={0}config.ldif");
	char *text = NULL;
	size_t len = 0;
	int ret = IX_OK;
	if (read_file(path, 1024 * 1024, &text, &len) < 0) {
		buf_printf(error_r, "cannot read %s: %s", path, strerror(errno));
		free(path);
		return IX_EIO;
	}
	/* LDIF folds long lines: a newline followed by one space continues the line */
	size_t w = 0;
	for (size_t r = 0; r < len; r++) {
		if (text[r] == '\n' && r + 1 < len && text[r + 1] == ' ') {
			r++;
			continue;
		}
		text[w++] = text[r];
	}
	text[w] = '\0';
	if (strstr(text, marker) == NULL) {
		struct buf ldif = BUF_INIT, out = BUF_INIT;
		buf_printf(&ldif, "dn: olcDatabase={0}config,cn=config\nchangetype: modify\nadd: olcAccess\n"
				  "olcAccess: {0}to * by dn.exact=\"%s\" %s manage by * break\n",
			   cfg->admin_dn, marker);
		char *lpath = config_path(cfg, "directory/config-access.ldif");
		char *confdir = config_path(cfg, "directory/slapd.d");
		if (write_file_atomic(lpath, ldif.data, ldif.len, 0600) < 0) {
			buf_printf(error_r, "cannot write %s: %s", lpath, strerror(errno));
			ret = IX_EIO;
		} else {
			char *const argv[] = { (char *)SLAPMODIFY_BIN, (char *)"-q", (char *)"-n0", (char *)"-F", confdir,
					       (char *)"-l", lpath, NULL };
			int rc = slapd_run_tool(argv, &out);
			if (rc != 0) {
				buf_printf(error_r, "slapmodify -n0 failed (%d): %s", rc, buf_cstr(&out));
				ret = IX_EIO;
			}
			unlink(lpath);
		}
		buf_free(&ldif);
		buf_free(&out);
		free(lpath);
		free(confdir);
	}
	free(text);
	free(path);
	return ret;
}

/* ---- schema additions at runtime ---- */

extern const char schema_interchange_ldif[];

/* The OID of a definition "( OID NAME ..." (after an optional {n} ordering prefix), as a new string or NULL. */
static char *definition_oid(const char *def)
{
	const char *p = def;
	if (*p == '{')
		p += strcspn(p, "}") + (p[strcspn(p, "}")] == '}');
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

static int has_oid(char **values, const char *oid)
{
	for (char **v = values; v != NULL && *v != NULL; v++) {
		char *o = definition_oid(*v);
		int same = o != NULL && strcmp(o, oid) == 0;
		free(o);
		if (same)
			return 1;
	}
	return 0;
}

int repl_schema_upgrade(const struct config *cfg, unsigned *added_r, struct buf *error_r)
{
	if (added_r != NULL)
		*added_r = 0;
	char *uri = config_ldapi_uri(cfg);
	LDAP *ld;
	int ret = ldapu_connect_external(uri, &ld, error_r);
	free(uri);
	if (ret != IX_OK)
		return ret;
	static const char *const attrs[] = { "olcAttributeTypes", "olcObjectClasses", NULL };
	LDAPMessage *res;
	ret = ldapu_search(ld, "cn=schema,cn=config", LDAP_SCOPE_ONELEVEL, "(cn=*interchange)", attrs, &res, error_r);
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
	char **live[2] = { ldapu_get_values(ld, e, "olcAttributeTypes", NULL), ldapu_get_values(ld, e, "olcObjectClasses", NULL) };
	ldap_msgfree(res);
	static const char *const kinds[2] = { "olcAttributeTypes: ", "olcObjectClasses: " };
	unsigned added = 0;
	/* attribute types first: the classes name them */
	for (int k = 0; k < 2 && ret == IX_OK; k++) {
		size_t klen = strlen(kinds[k]);
		for (const char *line = schema_interchange_ldif; *line != '\0' && ret == IX_OK;) {
			size_t len = strcspn(line, "\n");
			if (len > klen && strncmp(line, kinds[k], klen) == 0) {
				char *def = xstrndup(line + klen, len - klen);
				char *oid = definition_oid(def);
				if (oid != NULL && !has_oid(live[k], oid)) {
					char *vals[] = { def, NULL };
					char *type = xstrndup(kinds[k], klen - 2); /* without ": " */
					LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = type, .mod_values = vals };
					LDAPMod *mods[] = { &m, NULL };
					ret = ldapu_modify(ld, dn != NULL ? dn : "", mods, error_r);
					free(type);
					if (ret == IX_OK)
						added++;
				}
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
	if (added_r != NULL)
		*added_r = added;
	return ret;
}

/* ---- directories made before TLS and the administrator entry ---- */

int repl_secure_directory(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	char *uri = config_ldapi_uri(cfg);
	LDAP *ld;
	int ret = ldapu_connect_external(uri, &ld, error_r);
	free(uri);
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
		char *cert = config_path(cfg, "tls/cert.pem"), *key = config_path(cfg, "tls/key.pem");
		char *cv[] = { cert, NULL }, *kv[] = { key, NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcTLSCertificateFile", .mod_values = cv };
		LDAPMod m2 = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"olcTLSCertificateKeyFile", .mod_values = kv };
		LDAPMod *mods[] = { &m1, &m2, NULL };
		ret = ldapu_modify(ld, "cn=config", mods, error_r);
		free(cert);
		free(key);
		if (ret != IX_OK)
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
	if (acl[0] != NULL && strncmp(acl[0], "{0}to attrs=userPassword", 24) == 0 && strstr(acl[0], "tls_ssf") == NULL) {
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
		char *oc[] = { (char *)"organizationalRole", (char *)"simpleSecurityObject", NULL }, *cnv[] = { cn, NULL },
		     *pv[] = { rootpw, NULL };
		LDAPMod a1 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
		LDAPMod a2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"cn", .mod_values = cnv };
		LDAPMod a3 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"userPassword", .mod_values = pv };
		LDAPMod *amods[] = { &a1, &a2, &a3, NULL };
		int rc = ldap_add_ext_s(ld, cfg->admin_dn, amods, NULL, NULL);
		free(cn);
		if (rc != LDAP_SUCCESS && rc != LDAP_ALREADY_EXISTS) {
			buf_printf(error_r, "cannot add the administrator's entry %s: %s", cfg->admin_dn, ldap_err2string(rc));
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

int repl_delta_upgrade(const struct config *cfg, unsigned *changes_r, struct buf *error_r)
{
	*changes_r = 0;
	char *uri = config_ldapi_uri(cfg);
	LDAP *ld;
	int ret = ldapu_connect_external(uri, &ld, error_r);
	free(uri);
	if (ret != IX_OK)
		return ret;
	/* the layout slapd_create_config makes: databases {-1}frontend, {0}config, {1}mdb (the directory, with
	 * overlays {0}-{4}) and, since delta-syncrepl, {2}mdb for cn=accesslog */
	static const char *const attrs[] = { "olcSuffix", NULL };
	LDAPMessage *res = NULL;
	if ((ret = ldapu_search(ld, "cn=config", LDAP_SCOPE_SUBTREE, "(|(objectClass=olcDatabaseConfig)(objectClass=olcOverlayConfig))",
			  attrs, &res, error_r)) != IX_OK)
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
			main_ok = suffix != NULL && same_dn(suffix, cfg->suffix);
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
		buf_printf(error_r, "this directory's configuration is not the one interchange init makes (databases or "
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
	char *mv[] = { (char *)SLAPD_ACCESSLOG_MODULE, NULL };
	LDAPMod m = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"olcModuleLoad", .mod_values = mv };
	LDAPMod *mods[] = { &m, NULL };
	int rc = ldap_modify_ext_s(ld, "cn=module{0},cn=config", mods, NULL, NULL);
	if (rc != LDAP_SUCCESS && rc != LDAP_TYPE_OR_VALUE_EXISTS) {
		buf_printf(error_r, "cannot load slapd's %s module: %s", SLAPD_ACCESSLOG_MODULE, ldap_err2string(rc));
		ret = ldapu_err(rc);
		goto out;
	}
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

/* ---- the attendant's side ---- */

int repl_note_change(const struct config *cfg, const char *dn)
{
	if (dn == NULL)
		return 0;
	char *tail = xasprintf(",ou=Servers,ou=Configuration,%s", cfg->suffix);
	size_t dl = strlen(dn), tl = strlen(tail);
	int hit = dl > tl && strcasecmp(dn + dl - tl, tail) == 0;
	free(tail);
	if (hit)
		atomic_store(&servers_changed, 1);
	return hit;
}

void repl_attendant_sync(const struct config *cfg, int force)
{
	static char last_error[256];
	static int schema_checked;
	if (!atomic_exchange(&servers_changed, 0) && !force)
		return;
	struct buf err = BUF_INIT;
	if (!schema_checked) {
		unsigned added = 0;
		if (repl_schema_upgrade(cfg, &added, &err) == IX_OK) {
			schema_checked = 1;
			if (added > 0)
				log_info("replication: added %u schema definitions this directory lacked", added);
		} else {
			log_warn("schema check: %s", buf_cstr(&err));
		}
		buf_reset(&err);
		unsigned changes = 0;
		if (repl_secure_directory(cfg, &changes, &err) != IX_OK)
			log_warn("securing the directory: %s", buf_cstr(&err));
		else if (changes > 0)
			log_info("directory: %u changes for TLS off the loopback listener (see docs/multi-server.md)", changes);
		buf_reset(&err);
		changes = 0;
		if (repl_delta_upgrade(cfg, &changes, &err) != IX_OK)
			log_warn("replication: %s", buf_cstr(&err));
		else if (changes > 0)
			log_info("replication: added the access log (cn=accesslog) that delta-syncrepl replays");
		buf_reset(&err);
	}
	int changed = 0;
	int ret = repl_sync_config(cfg, &changed, &err);
	if (ret != IX_OK) {
		/* the periodic sweep would repeat the same warning every time: say it once */
		if (strncmp(last_error, buf_cstr(&err), sizeof(last_error) - 1) != 0)
			log_warn("replication: %s", buf_cstr(&err));
		snprintf(last_error, sizeof(last_error), "%s", buf_cstr(&err));
	} else {
		last_error[0] = '\0';
		if (changed)
			log_info("replication: slapd's providers follow the servers in the directory now");
	}
	buf_free(&err);
}

/* ---- contextCSN ---- */

static int read_csns(LDAP *ld, const char *suffix, char ***csns_r, struct buf *error_r)
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

/* The server ID field of a CSN (third '#'-separated field), or -1. */
static long csn_sid(const char *csn)
{
	const char *p = strchr(csn, '#');
	p = p != NULL ? strchr(p + 1, '#') : NULL;
	if (p == NULL)
		return -1;
	return strtol(p + 1, NULL, 16);
}

/* 1 when, for every server ID in want, have holds a CSN at least as new. */
static int csns_cover(char **have, char **want)
{
	for (char **w = want; *w != NULL; w++) {
		int ok = 0;
		for (char **h = have; *h != NULL && !ok; h++)
			ok = csn_sid(*h) == csn_sid(*w) && strcmp(*h, *w) >= 0;
		if (!ok)
			return 0;
	}
	return 1;
}

/* ---- join ---- */

static int is_loopback_uri(const char *uri)
{
	LDAPURLDesc *d = NULL;
	if (ldap_url_parse(uri, &d) != LDAP_SUCCESS)
		return 0;
	int lo = d->lud_host == NULL || d->lud_host[0] == '\0' || strncmp(d->lud_host, "127.", 4) == 0 ||
		 strcmp(d->lud_host, "localhost") == 0 || strcmp(d->lud_host, "::1") == 0;
	ldap_free_urldesc(d);
	return lo;
}

static char *suffix_to_domain(const char *suffix)
{
	struct buf b = BUF_INIT;
	const char *p = suffix;
	while (*p != '\0') {
		if (strncasecmp(p, "dc=", 3) != 0) {
			buf_free(&b);
			return NULL;
		}
		p += 3;
		size_t n = strcspn(p, ",");
		if (b.len > 0)
			buf_append_char(&b, '.');
		buf_append(&b, p, n);
		p += n;
		if (*p == ',')
			p++;
	}
	return buf_steal(&b);
}

int repl_join_prepare(const struct repl_join *j, struct config *cfg_r, struct buf *error_r)
{
	memset(cfg_r, 0, sizeof(*cfg_r));
	if (strlen(j->uri) > REPL_MAX_URI || strlen(j->password) > REPL_MAX_PASSWORD) {
		buf_append_str(error_r, "the URI or the password is too long");
		return IX_EINVAL;
	}
	if (strpbrk(j->password, "\"\\") != NULL) {
		buf_append_str(error_r, "a replication password cannot hold \" or \\ (slapd's cn=config quoting cannot "
					"carry them): change the administrator password first");
		return IX_EINVAL;
	}
	/* the rootDSE names the suffix; it is readable before any bind */
	LDAP *ld = NULL;
	int rc = ldap_initialize(&ld, j->uri);
	if (rc != LDAP_SUCCESS) {
		buf_printf(error_r, "\"%s\" is not an LDAP URI: %s", j->uri, ldap_err2string(rc));
		return IX_EINVAL;
	}
	int version = LDAP_VERSION3;
	struct timeval tv = { 5, 0 };
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	static const char *const rattrs[] = { "namingContexts", NULL };
	LDAPMessage *res;
	int ret = ldapu_search(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", rattrs, &res, error_r);
	if (ret != IX_OK) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		buf_printf(error_r, " (is an Interchange directory listening at %s?)", j->uri);
		return IX_EUNAVAIL;
	}
	char **ctx = ldapu_get_values(ld, ldap_first_entry(ld, res), "namingContexts", NULL);
	ldap_msgfree(res);
	ldap_unbind_ext_s(ld, NULL, NULL);
	ld = NULL;
	if (ctx[0] == NULL) {
		buf_printf(error_r, "the directory at %s names no suffix", j->uri);
		ldapu_values_free(&ctx);
		return IX_EINVAL;
	}
	char *suffix = xstrdup(ctx[0]);
	ldapu_values_free(&ctx);
	char *admin_dn = xasprintf("cn=admin,%s", suffix);
	char *org = NULL, *domain = NULL;
	struct repl_server *servers = NULL;
	size_t count = 0;
	ret = repl_connect(j, admin_dn, j->password, &ld, error_r);
	if (ret == IX_EAUTH)
		buf_printf(error_r, " (binding as %s at %s)", admin_dn, j->uri);
	if (ret != IX_OK)
		goto out;
	static const char *const oattrs[] = { "o", NULL };
	if ((ret = ldapu_search(ld, suffix, LDAP_SCOPE_BASE, "(objectClass=*)", oattrs, &res, error_r)) != IX_OK)
		goto out;
	org = ldapu_get_first(ld, ldap_first_entry(ld, res), "o");
	ldap_msgfree(res);
	/* the accepted domain that the suffix was made from, else the first authoritative one */
	char *dbase = xasprintf("ou=Accepted Domains,ou=Configuration,%s", suffix);
	static const char *const dattrs[] = { "cn", "ixDomainType", NULL };
	ret = ldapu_search(ld, dbase, LDAP_SCOPE_ONELEVEL, "(objectClass=ixAcceptedDomain)", dattrs, &res, error_r);
	free(dbase);
	if (ret != IX_OK)
		goto out;
	char *from_suffix = suffix_to_domain(suffix);
	for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
		char *cn = ldapu_get_first(ld, e, "cn");
		if (cn != NULL && from_suffix != NULL && strcasecmp(cn, from_suffix) == 0) {
			free(domain);
			domain = cn;
			break;
		}
		if (domain == NULL)
			domain = cn;
		else
			free(cn);
	}
	ldap_msgfree(res);
	if (domain == NULL)
		domain = from_suffix, from_suffix = NULL;
	free(from_suffix);
	if (domain == NULL || !config_domain_valid(domain)) {
		buf_printf(error_r, "the organisation at %s has no accepted domain", j->uri);
		ret = IX_EINVAL;
		goto out;
	}
	if ((ret = repl_servers_read(ld, suffix, &servers, &count, error_r)) != IX_OK)
		goto out;

	char host_buf[256];
	const char *hostname = j->hostname;
	if (hostname == NULL) {
		if (gethostname(host_buf, sizeof(host_buf) - 1) < 0)
			snprintf(host_buf, sizeof(host_buf), "mail");
		host_buf[sizeof(host_buf) - 1] = '\0';
		hostname = host_buf;
	}
	config_init_defaults(cfg_r, j->data_dir, domain);
	free(cfg_r->suffix);
	cfg_r->suffix = xstrdup(suffix);
	free(cfg_r->admin_dn);
	cfg_r->admin_dn = xstrdup(admin_dn);
	cfg_r->org = xstrdup(org != NULL ? org : domain);
	cfg_r->hostname = strchr(hostname, '.') != NULL ? xstrdup(hostname) : xasprintf("%s.%s", hostname, domain);
	memcpy(cfg_r->ports, j->ports, sizeof(cfg_r->ports));
	cfg_r->server_dn = xasprintf("cn=%s,ou=Servers,ou=Configuration,%s", cfg_r->hostname, suffix);
	if (j->user != NULL)
		cfg_r->user = xstrdup(j->user);
	if (j->listen != NULL) {
		free(cfg_r->listen);
		cfg_r->listen = xstrdup(j->listen);
	}
	if (!config_domain_valid(cfg_r->hostname)) {
		buf_printf(error_r, "\"%s\" is not a valid host name: give one with --hostname", cfg_r->hostname);
		ret = IX_EINVAL;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		if (strcasecmp(servers[i].name, cfg_r->hostname) == 0) {
			buf_printf(error_r, "the organisation already has a server named %s: give this one another "
					    "--hostname",
				   cfg_r->hostname);
			ret = IX_EEXIST;
			goto out;
		}
	}
out:
	if (ret != IX_OK)
		config_free(cfg_r);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	repl_servers_free(&servers, count);
	free(suffix);
	free(admin_dn);
	free(org);
	free(domain);
	return ret;
}

static char *my_uri(const struct repl_join *j, const struct config *cfg)
{
	if (j->my_uri != NULL)
		return xstrdup(j->my_uri);
	/* a directory listening on one address is reached there; on every address, by name (or on loopback) */
	const char *l = cfg->listen;
	if (l != NULL && l[0] != '\0' && strcmp(l, "0.0.0.0") != 0 && strcmp(l, "::") != 0 && strcmp(l, "127.0.0.1") != 0)
		return strchr(l, ':') != NULL ? xasprintf("ldap://[%s]:%u/", l, cfg->ports[PORT_LDAP])
					      : xasprintf("ldap://%s:%u/", l, cfg->ports[PORT_LDAP]);
	if (is_loopback_uri(j->uri))
		return xasprintf("ldap://127.0.0.1:%u/", cfg->ports[PORT_LDAP]);
	return xasprintf("ldap://%s:%u/", cfg->hostname, cfg->ports[PORT_LDAP]);
}

static void add_mod(LDAPMod **mods, size_t *n, LDAPMod *store, char ***vals, const char *type, const char *v1,
		    const char *v2)
{
	size_t k = *n;
	vals[k] = xcalloc(3, sizeof(char *));
	vals[k][0] = xstrdup(v1);
	vals[k][1] = v2 != NULL ? xstrdup(v2) : NULL;
	store[k] = (LDAPMod){ .mod_op = LDAP_MOD_ADD, .mod_type = (char *)type, .mod_values = vals[k] };
	mods[k] = &store[k];
	mods[k + 1] = NULL;
	*n = k + 1;
}

/* Adds this server's entry on the remote with server ID sid. */
static int add_own_entry(LDAP *ld, const struct config *cfg, unsigned sid, const char *uri, struct buf *error_r)
{
	static const char *const port_attrs[PORT_COUNT] = { "ixLdapPort", "ixSmtpPort", "ixSubmissionPort",
							    "ixImapPort", "ixImapsPort", "ixPop3Port",
							    "ixPop3sPort", "ixMetricsPort" };
	enum { MAXM = 8 + PORT_COUNT };
	LDAPMod store[MAXM], *mods[MAXM + 2];
	char **vals[MAXM] = { 0 };
	size_t n = 0;
	char sidtext[16], ports[PORT_COUNT][16];
	snprintf(sidtext, sizeof(sidtext), "%u", sid);
	vals[n] = xcalloc(4, sizeof(char *));
	vals[n][0] = xstrdup("ixServer");
	vals[n][1] = xstrdup("ixReplicaServer");
	vals[n][2] = xstrdup("pkiUser");
	store[n] = (LDAPMod){ .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = vals[n] };
	mods[n] = &store[n];
	n++;
	add_mod(mods, &n, store, vals, "cn", cfg->hostname, NULL);
	add_mod(mods, &n, store, vals, "ixHostName", cfg->hostname, NULL);
	vals[n] = xcalloc(4, sizeof(char *));
	vals[n][0] = xstrdup("directory");
	vals[n][1] = xstrdup("mailbox");
	vals[n][2] = xstrdup("transport");
	store[n] = (LDAPMod){ .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"ixServerRole", .mod_values = vals[n] };
	mods[n] = &store[n];
	n++;
	for (int p = 0; p < PORT_COUNT; p++) {
		snprintf(ports[p], sizeof(ports[p]), "%u", cfg->ports[p]);
		add_mod(mods, &n, store, vals, port_attrs[p], ports[p], NULL);
	}
	add_mod(mods, &n, store, vals, "ixServerId", sidtext, NULL);
	add_mod(mods, &n, store, vals, "ixLdapUri", uri, NULL);
	unsigned char *der = NULL;
	size_t dlen = 0;
	if (own_cert_der(cfg, &der, &dlen, error_r) != IX_OK) {
		for (size_t i = 0; i < n; i++)
			ldapu_values_free(&vals[i]);
		return IX_EIO;
	}
	struct berval cbv = { (ber_len_t)dlen, (char *)der }, *cvals[] = { &cbv, NULL };
	LDAPMod cm = { .mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES, .mod_type = (char *)"userCertificate;binary",
		       .mod_bvalues = cvals };
	mods[n] = &cm;
	mods[n + 1] = NULL;
	int rc = ldap_add_ext_s(ld, cfg->server_dn, mods, NULL, NULL);
	free(der);
	int ret = IX_OK;
	if (rc != LDAP_SUCCESS) {
		buf_printf(error_r, "cannot add this server's entry %s: %s", cfg->server_dn, ldap_err2string(rc));
		ret = ldapu_err(rc);
	}
	for (size_t i = 0; i < n; i++) {
		char ***v = &vals[i];
		ldapu_values_free(v);
	}
	return ret;
}

static void say(const struct repl_join *j, const char *fmt, ...) IX_PRINTF(2, 3);
static void say(const struct repl_join *j, const char *fmt, ...)
{
	if (j->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* Looks for another server entry holding ID sid on ld (and notes the highest ID there in *max_r). */
static int find_clash(LDAP *ld, const struct config *cfg, unsigned sid, int *clash_r, unsigned *max_r,
		      struct buf *error_r)
{
	char *base = xasprintf("ou=Servers,ou=Configuration,%s", cfg->suffix);
	static const char *const attrs[] = { "ixServerId", NULL };
	LDAPMessage *res;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(ixServerId=*)", attrs, &res, error_r);
	free(base);
	if (ret != IX_OK)
		return ret;
	for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
		char *v = ldapu_get_first(ld, e, "ixServerId"), *dn = ldap_get_dn(ld, e);
		unsigned long long id = 0;
		if (v != NULL && parse_uint(v, REPL_MAX_SERVER_ID, &id) == 0) {
			if (id > *max_r)
				*max_r = (unsigned)id;
			if (id == sid && !same_dn(dn, cfg->server_dn))
				*clash_r = 1;
		}
		free(v);
		ldap_memfree(dn);
	}
	ldap_msgfree(res);
	return IX_OK;
}

/* Once this server's entry with ID sid is on the remote: waits until it has reached every other server (up to
 * REPL_ID_CHECK_MS each) and looks there too for another entry with the same ID, which a join through another
 * server at the same time may have written before replication showed either joiner the other. Of two such
 * joiners, the one that checks later always sees the earlier one's entry (it is on every server by then), so
 * "whoever sees a clash steps aside" leaves at most one holder of an ID. *max_r: the highest ID seen anywhere. */
static int check_sid_everywhere(const struct repl_join *j, const struct config *cfg, LDAP *remote,
				const struct repl_server *servers, size_t count, unsigned sid, int *clash_r,
				unsigned *max_r, struct buf *error_r)
{
	*clash_r = 0;
	*max_r = sid;
	int ret = find_clash(remote, cfg, sid, clash_r, max_r, error_r);
	static const char *const attrs[] = { "1.1", NULL };
	for (size_t i = 0; i < count && ret == IX_OK && !*clash_r; i++) {
		const struct repl_server *s = &servers[i];
		if (s->uri == NULL || s->sid == 0 || same_dn(s->dn, cfg->server_dn))
			continue;
		LDAP *ld = NULL;
		struct buf err = BUF_INIT;
		if (repl_peer_connect(cfg, s->uri, cfg->admin_dn, j->password, &ld, &err) != IX_OK) {
			say(j, "  note: cannot check server IDs on %s: %s\n", s->name, buf_cstr(&err));
			buf_free(&err);
			continue;
		}
		int arrived = 0;
		for (unsigned long long until = now_usec() + REPL_ID_CHECK_MS * 1000ULL; !arrived && now_usec() < until;) {
			LDAPMessage *res;
			buf_reset(&err);
			if (ldapu_search(ld, cfg->server_dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, &err) == IX_OK) {
				arrived = ldap_count_entries(ld, res) == 1;
				ldap_msgfree(res);
			}
			if (!arrived) {
				struct timespec ts = { 0, 10 * 1000 * 1000 };
				nanosleep(&ts, NULL);
			}
		}
		if (!arrived)
			say(j, "  note: this server's entry has not reached %s yet; its server IDs are checked as they are\n",
			    s->name);
		buf_reset(&err);
		/* a server that goes away meanwhile (another joiner stops its slapd when its join is done) is one we
		 * cannot check, as one we cannot reach: noted, not fatal */
		if (find_clash(ld, cfg, sid, clash_r, max_r, &err) != IX_OK)
			say(j, "  note: cannot check server IDs on %s: %s\n", s->name, buf_cstr(&err));
		buf_free(&err);
		ldap_unbind_ext_s(ld, NULL, NULL);
	}
	return ret;
}

int repl_join_finish(const struct repl_join *j, const struct config *cfg, struct buf *error_r)
{
	LDAP *remote = NULL, *local = NULL;
	struct repl_server *servers = NULL;
	size_t count = 0;
	char *uri = my_uri(j, cfg);
	char **remote_csns = NULL, **local_csns = NULL;
	struct live_config live = { 0 };
	pid_t pid = -1;
	int added = 0, log_fd = -1;
	int ret = repl_connect(j, cfg->admin_dn, j->password, &remote, error_r);
	if (ret != IX_OK)
		goto out;
	if ((ret = repl_servers_read(remote, cfg->suffix, &servers, &count, error_r)) != IX_OK)
		goto out;
	unsigned max = 0;
	size_t unnumbered = 0, origin = 0;
	for (size_t i = 0; i < count; i++) {
		if (servers[i].sid > max)
			max = servers[i].sid;
		if (servers[i].sid == 0) {
			unnumbered++;
			origin = i;
		}
	}
	/* the first server of an organisation was made by a plain init: it gets the next ID, the URI we reached it
	 * by, and the password, which its attendant moves into its own cn=config (it has no other way to learn it) */
	int number_origin = unnumbered == 1 && max == 0;
	if (unnumbered > 0 && !number_origin)
		log_warn("join: %zu servers have no replication identity and are left out", unnumbered);
	/* an organisation of one server: that server has no provider, so it holds the replication password only if a
	 * join left it one and no provider was removed since (a join that failed after the hand-over removes its
	 * entry, and the password went with the provider): every join to it hands the password over again */
	int hand_over = number_origin || (count == 1 && servers[0].sid != 0);
	if (hand_over && !number_origin)
		origin = 0;
	unsigned my_sid = max + (number_origin ? 2 : 1);
	/* the certificates the servers publish are the ones this server trusts from now on (joins through a
	 * non-local URI already trusted the remote's through j->cafile) */
	if ((ret = write_peers(cfg, servers, count, error_r)) != IX_OK)
		goto out;
	for (int attempt = 0;; attempt++) {
		if (my_sid > REPL_MAX_SERVER_ID) {
			buf_printf(error_r, "the organisation has no free server ID left (at most %d)", REPL_MAX_SERVER_ID);
			ret = IX_ELIMIT;
			goto out;
		}
		if ((ret = add_own_entry(remote, cfg, my_sid, uri, error_r)) != IX_OK)
			goto out;
		added = 1;
		int clash = 0;
		unsigned seen_max = 0;
		ret = check_sid_everywhere(j, cfg, remote, servers, count, my_sid, &clash, &seen_max, error_r);
		if (ret != IX_OK)
			goto out;
		if (!clash)
			break;
		/* another join took the same ID at the same time: step aside and take a later one (a random
		 * distance, so that two joiners stepping aside together do not meet again) */
		ldap_delete_ext_s(remote, cfg->server_dn, NULL, NULL);
		added = 0;
		if (attempt + 1 >= REPL_ID_ATTEMPTS) {
			buf_append_str(error_r, "could not allocate a server ID: other joins keep taking them");
			ret = IX_EAGAIN;
			goto out;
		}
		unsigned char r = 0;
		if (RAND_bytes(&r, 1) != 1)
			r = (unsigned char)getpid();
		unsigned next = (seen_max > my_sid ? seen_max : my_sid) + 1 + r % 4;
		say(j, "  server ID %u was taken by a join at the same time: trying %u\n", my_sid, next);
		my_sid = next;
	}
	say(j, "  this server: %s, server ID %u, reached at %s\n", cfg->hostname, my_sid, uri);
	if (number_origin) {
		struct repl_server *o = &servers[origin];
		char sidtext[16];
		snprintf(sidtext, sizeof(sidtext), "%u", max + 1);
		char *oc[] = { (char *)"ixReplicaServer", NULL }, *sv[] = { sidtext, NULL },
		     *uv[] = { (char *)j->uri, NULL }, *hv[] = { (char *)j->password, NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
		LDAPMod m2 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"ixServerId", .mod_values = sv };
		LDAPMod m3 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"ixLdapUri", .mod_values = uv };
		LDAPMod m4 = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"ixReplicationHandover", .mod_values = hv };
		LDAPMod *mods[] = { &m1, &m2, &m3, &m4, NULL };
		if ((ret = ldapu_modify(remote, o->dn, mods, error_r)) != IX_OK)
			goto out;
		o->sid = max + 1;
		free(o->uri);
		o->uri = xstrdup(j->uri);
		say(j, "  first server: %s gets server ID %u, reached at %s\n", o->name, o->sid, o->uri);
	} else if (hand_over) {
		char *hv[] = { (char *)j->password, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"ixReplicationHandover", .mod_values = hv };
		LDAPMod *mods[] = { &m, NULL };
		if ((ret = ldapu_modify(remote, servers[origin].dn, mods, error_r)) != IX_OK)
			goto out;
	}
	/* what the remote holds now, our own entry included: join returns once all of it is here */
	if ((ret = read_csns(remote, cfg->suffix, &remote_csns, error_r)) != IX_OK)
		goto out;

	char *logpath = config_path(cfg, "log/slapd.log");
	log_fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	free(logpath);
	pid = slapd_spawn(cfg, log_fd, -1, error_r);
	if (pid < 0) {
		ret = IX_EIO;
		goto out;
	}
	int status = 0;
	if ((ret = slapd_wait_ready(cfg, pid, SLAPD_READY_TIMEOUT_MS, &status, error_r)) != IX_OK) {
		pid = -1;
		goto out;
	}
	char *ldapi = config_ldapi_uri(cfg);
	ret = ldapu_connect_external(ldapi, &local, error_r);
	free(ldapi);
	if (ret != IX_OK)
		goto out;
	if ((ret = live_config_read(local, cfg->suffix, &live, error_r)) != IX_OK)
		goto out;
	int changed = 0;
	char *cafile = config_path(cfg, REPL_PEERS_FILE);
	ret = apply_config(local, &live, my_sid, cfg->server_dn, servers, count, cfg->admin_dn, j->password,
			   cfg->suffix, cafile, &changed, error_r);
	free(cafile);
	if (ret != IX_OK)
		goto out;
	say(j, "  replicating from every other server; waiting for the directory contents\n");
	unsigned timeout = j->timeout_ms != 0 ? j->timeout_ms : REPL_JOIN_TIMEOUT_MS;
	unsigned long long start = now_usec(), deadline = start + (unsigned long long)timeout * 1000;
	for (;;) {
		struct buf err = BUF_INIT;
		ldapu_values_free(&local_csns);
		int r = read_csns(local, cfg->suffix, &local_csns, &err);
		buf_free(&err);
		if (r == IX_OK && remote_csns[0] != NULL && csns_cover(local_csns, remote_csns))
			break;
		if (now_usec() > deadline) {
			buf_printf(error_r, "the directory contents did not arrive within %u s (see %s/log/slapd.log)",
				   timeout / 1000, cfg->data_dir);
			ret = IX_EUNAVAIL;
			goto out;
		}
		struct timespec ts = { 0, REPL_POLL_MS * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	say(j, "  directory contents arrived in %.1f s\n", (double)(now_usec() - start) / 1e6);
	if (hand_over) {
		/* the first server's attendant takes the hand-over within milliseconds when it runs this version */
		const char *odn = servers[origin].dn;
		static const char *const hattrs[] = { "ixReplicationHandover", NULL };
		int taken = 0;
		for (unsigned long long until = now_usec() + REPL_HANDOVER_WAIT_MS * 1000ULL; !taken && now_usec() < until;) {
			LDAPMessage *res;
			struct buf err = BUF_INIT;
			if (ldapu_search(remote, odn, LDAP_SCOPE_BASE, "(objectClass=*)", hattrs, &res, &err) == IX_OK) {
				char *h = ldapu_get_first(remote, ldap_first_entry(remote, res), "ixReplicationHandover");
				taken = h == NULL;
				free(h);
				ldap_msgfree(res);
			}
			buf_free(&err);
			if (!taken) {
				struct timespec ts = { 0, REPL_POLL_MS * 1000 * 1000 };
				nanosleep(&ts, NULL);
			}
		}
		if (taken)
			say(j, "  %s replicates from this server too\n", servers[origin].name);
		else
			say(j, "  note: %s has not taken up replication yet; it does when its attendant (this version) "
			       "runs, and changes made here reach it then\n",
			    servers[origin].name);
	}
	ret = IX_OK;
out:
	if (local != NULL)
		ldap_unbind_ext_s(local, NULL, NULL);
	if (pid > 0)
		slapd_stop(pid, SLAPD_STOP_TIMEOUT_MS);
	if (log_fd >= 0)
		close(log_fd);
	if (ret != IX_OK && added && remote != NULL)
		ldap_delete_ext_s(remote, cfg->server_dn, NULL, NULL);
	if (remote != NULL)
		ldap_unbind_ext_s(remote, NULL, NULL);
	ldapu_values_free(&remote_csns);
	ldapu_values_free(&local_csns);
	live_config_free(&live);
	repl_servers_free(&servers, count);
	free(uri);
	return ret;
}

/* ---- status ---- */

static void print_csns(struct buf *out, char **csns)
{
	if (csns == NULL || csns[0] == NULL) {
		buf_append_str(out, "      contextCSN: none\n");
		return;
	}
	for (char **c = csns; *c != NULL; c++)
		buf_printf(out, "      contextCSN: %s\n", *c);
}

/* Compares two contextCSN sets per server ID: "in step", or what differs. */
static void compare_csns(struct buf *out, char **here, char **there)
{
	int same = 1;
	struct buf d = BUF_INIT;
	for (char **t = there; *t != NULL; t++) {
		const char *h = NULL;
		for (char **p = here; *p != NULL; p++) {
			if (csn_sid(*p) == csn_sid(*t))
				h = *p;
		}
		int cmp = h == NULL ? -1 : strcmp(h, *t);
		if (cmp != 0) {
			same = 0;
			buf_printf(&d, "%s changes of server ID %ld", cmp < 0 ? "behind on" : "ahead on", csn_sid(*t));
			buf_append_str(&d, "; ");
		}
	}
	for (char **p = here; *p != NULL; p++) {
		int found = 0;
		for (char **t = there; *t != NULL && !found; t++)
			found = csn_sid(*p) == csn_sid(*t);
		if (!found) {
			same = 0;
			buf_printf(&d, "it lacks the changes of server ID %ld; ", csn_sid(*p));
		}
	}
	if (same)
		buf_append_str(out, "in step");
	else {
		d.len -= 2;
		d.data[d.len] = '\0';
		buf_printf(out, "differs: this server is %s", buf_cstr(&d));
	}
	buf_free(&d);
}

/* What this server knows about replication: the servers, its live cn=config, its contextCSN and password. */
struct repl_view {
	LDAP *ld;
	struct repl_server *servers;
	size_t count;
	struct live_config live;
	char **here;
	char *password;
};

static void view_close(struct repl_view *v)
{
	if (v->password != NULL) {
		explicit_bzero(v->password, strlen(v->password));
		free(v->password);
	}
	ldapu_values_free(&v->here);
	live_config_free(&v->live);
	repl_servers_free(&v->servers, v->count);
	if (v->ld != NULL)
		ldap_unbind_ext_s(v->ld, NULL, NULL);
	memset(v, 0, sizeof(*v));
}

static int view_open(const struct config *cfg, struct repl_view *v, struct buf *error_r)
{
	memset(v, 0, sizeof(*v));
	char *uri = config_ldapi_uri(cfg);
	int ret = ldapu_connect_external(uri, &v->ld, error_r);
	free(uri);
	if (ret == IX_OK)
		ret = repl_servers_read(v->ld, cfg->suffix, &v->servers, &v->count, error_r);
	if (ret == IX_OK)
		ret = live_config_read(v->ld, cfg->suffix, &v->live, error_r);
	if (ret == IX_OK)
		ret = read_csns(v->ld, cfg->suffix, &v->here, error_r);
	if (ret == IX_OK)
		v->password = live_config_password(&v->live);
	if (ret != IX_OK)
		view_close(v);
	return ret;
}

static int view_consumes(const struct repl_view *v, const struct repl_server *s)
{
	int consumer = 0;
	for (char **p = v->live.syncrepl; p != NULL && *p != NULL && !consumer; p++) {
		char *prov = repl_syncrepl_provider(*p);
		consumer = prov != NULL && s->uri != NULL && strcmp(prov, s->uri) == 0;
		free(prov);
	}
	return consumer;
}

/* The state of server s seen from here: "in step", "differs: ...", "unreachable (...)" or "unknown (...)" into
 * state (one line, no newline); its contextCSN values into there_r (may be NULL). */
static void peer_state(const struct config *cfg, const struct repl_view *v, const struct repl_server *s,
		       struct buf *state, char ***there_r)
{
	char **there = NULL;
	if (s->uri == NULL || v->password == NULL) {
		buf_append_str(state, "unknown (no URI or no replication password here)");
	} else {
		LDAP *peer;
		struct buf err = BUF_INIT;
		if (repl_peer_connect(cfg, s->uri, cfg->admin_dn, v->password, &peer, &err) != IX_OK) {
			buf_printf(state, "unreachable (%s)", buf_cstr(&err));
		} else {
			if (read_csns(peer, cfg->suffix, &there, &err) == IX_OK)
				compare_csns(state, v->here, there);
			else
				buf_printf(state, "unknown (%s)", buf_cstr(&err));
			ldap_unbind_ext_s(peer, NULL, NULL);
		}
		buf_free(&err);
	}
	if (there_r != NULL)
		*there_r = there;
	else
		ldapu_values_free(&there);
}

int repl_status(const struct config *cfg, struct buf *out, struct buf *error_r)
{
	struct repl_view v;
	int ret = view_open(cfg, &v, error_r);
	if (ret != IX_OK)
		return ret;
	buf_printf(out, "Replication of %s seen from %s (server ID %s, multi-provider %s)\n", cfg->suffix,
		   cfg->hostname != NULL ? cfg->hostname : "this server",
		   v.live.server_ids != NULL && v.live.server_ids[0] != NULL ? v.live.server_ids[0] : "none",
		   v.live.multiprovider != NULL ? v.live.multiprovider : "FALSE");
	for (size_t i = 0; i < v.count; i++) {
		const struct repl_server *s = &v.servers[i];
		int me = same_dn(s->dn, cfg->server_dn);
		buf_printf(out, "  %s  id %u  %s%s\n", s->name, s->sid, s->uri != NULL ? s->uri : "(no URI)",
			   me ? "  (this server)" : "");
		if (me) {
			print_csns(out, v.here);
			continue;
		}
		buf_printf(out, "    replicating from it: %s\n", view_consumes(&v, s) ? "yes" : "no");
		struct buf state = BUF_INIT;
		char **there = NULL;
		peer_state(cfg, &v, s, &state, &there);
		if (there != NULL)
			print_csns(out, there);
		buf_printf(out, "    state: %s\n", buf_cstr(&state));
		ldapu_values_free(&there);
		buf_free(&state);
	}
	view_close(&v);
	return IX_OK;
}

int repl_peers(const struct config *cfg, struct repl_peer **peers_r, size_t *count_r, bool *single_r,
	       struct buf *error_r)
{
	*peers_r = NULL;
	*count_r = 0;
	struct repl_view v;
	int ret = view_open(cfg, &v, error_r);
	if (ret != IX_OK)
		return ret;
	if (single_r != NULL)
		*single_r = v.live.server_ids == NULL || v.live.server_ids[0] == NULL || v.count < 2;
	struct repl_peer *p = xcalloc(v.count + 1, sizeof(*p));
	size_t n = 0;
	for (size_t i = 0; i < v.count; i++) {
		const struct repl_server *s = &v.servers[i];
		struct repl_peer *x = &p[n++];
		x->name = xstrdup(s->name);
		x->id = s->sid;
		x->self = same_dn(s->dn, cfg->server_dn);
		if (x->self)
			continue;
		struct buf state = BUF_INIT;
		if (s->sid == 0)
			buf_append_str(&state, "not replicating (no server ID)");
		else
			peer_state(cfg, &v, s, &state, NULL);
		x->in_step = strcmp(buf_cstr(&state), "in step") == 0;
		x->replicating = s->sid != 0 && view_consumes(&v, s);
		x->state = buf_steal(&state);
	}
	view_close(&v);
	*peers_r = p;
	*count_r = n;
	return IX_OK;
}

void repl_peers_free(struct repl_peer **peers, size_t count)
{
	for (size_t i = 0; *peers != NULL && i < count; i++) {
		free((*peers)[i].name);
		free((*peers)[i].state);
	}
	free(*peers);
	*peers = NULL;
}

int repl_server_states(const struct config *cfg, struct buf *out, struct buf *error_r)
{
	struct repl_peer *p;
	size_t n;
	bool single;
	int ret = repl_peers(cfg, &p, &n, &single, error_r);
	if (ret != IX_OK)
		return ret;
	buf_printf(out, "%-24s %-6s %s\n", "REPLICATION", "ID", "STATE (seen from this server)");
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "%-24s %-6u ", p[i].name, p[i].id);
		if (p[i].self)
			buf_append_str(out, single ? "this server; replicates with no other\n" : "this server\n");
		else if (p[i].id == 0)
			buf_printf(out, "%s\n", p[i].state);
		else
			buf_printf(out, "%s; %s\n", p[i].state, p[i].replicating ? "replicating from it" : "NOT replicating from it");
	}
	repl_peers_free(&p, n);
	return IX_OK;
}
