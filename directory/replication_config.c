/* replication_config.c - slapd's cn=config kept in step with the ixServer entries: the olcSyncrepl values, reading
 * and rewriting olcServerID/olcSyncrepl/olcMultiProvider, and the administrator's right to manage cn=config. */
#include "directory/replication.h"
#include "common/err.h"
#include "common/log.h"
#include "directory/ldap_util.h"
#include "directory/replication_int.h"
#include "directory/slapd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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
	static const char *const keys[] = {
		"provider", "credentials", "starttls", "tls_cacert", "syncdata", "logbase"
	};
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

void repl_live_free(struct repl_live *c)
{
	free(c->db_dn);
	ldapu_values_free(&c->server_ids);
	ldapu_values_free(&c->syncrepl);
	free(c->multiprovider);
	memset(c, 0, sizeof(*c));
}

int repl_live_read(LDAP *ld, const char *suffix, struct repl_live *c, struct buf *error_r)
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
		repl_live_free(c);
		return ret;
	}
	LDAPMessage *e = ldap_first_entry(ld, res);
	if (e == NULL) {
		buf_printf(error_r, "cn=config has no database for %s", suffix);
		ldap_msgfree(res);
		repl_live_free(c);
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

char *repl_live_password(const struct repl_live *c)
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
	LDAP *ld = NULL;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	struct repl_live live = { 0 };
	ret = repl_live_read(ld, cfg->suffix, &live, error_r);
	if (ret == IX_OK) {
		*password_r = repl_live_password(&live);
		if (*password_r == NULL) {
			buf_printf(error_r, "this server replicates from no other server, so it does not hold the "
					    "administrator password: give it with --admin-password");
			ret = IX_ENOTFOUND;
		}
	}
	repl_live_free(&live);
	ldap_unbind_ext(ld, NULL, NULL);
	return ret;
}

int repl_apply_config(LDAP *ld, const struct repl_live *live, unsigned my_sid, const char *my_dn,
		      const struct repl_server *servers, size_t count, const char *admin_dn, const char *password,
		      const char *suffix, const char *cafile, int force, int *changed_r, struct buf *error_r)
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
		if (repl_same_dn(s->dn, my_dn) || s->sid == 0 || s->uri == NULL || s->sid == my_sid)
			continue;
		char *v = repl_syncrepl_value(s->sid, s->uri, admin_dn, password, suffix, cafile);
		if (v == NULL) {
			buf_printf(error_r,
				   "the URI of %s or the password holds a quote or backslash, which cn=config "
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
	int same = nlive == nwant && !force;
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
	LDAP *ld;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	struct repl_server *servers = NULL;
	size_t count = 0;
	struct repl_live live = { 0 };
	char *password = NULL;
	ret = repl_servers_read(ld, cfg->suffix, &servers, &count, error_r);
	if (ret != IX_OK)
		goto out;
	const struct repl_server *me = NULL;
	size_t peers = 0;
	int peers_changed = 0;
	for (size_t i = 0; i < count; i++) {
		if (repl_same_dn(servers[i].dn, cfg->server_dn))
			me = &servers[i];
		else if (servers[i].sid != 0 && servers[i].uri != NULL)
			peers++;
	}
	if (me != NULL) {
		/* TLS between servers is anchored in the directory: publish ours, trust the published ones */
		struct buf err = BUF_INIT;
		if (repl_publish_cert(ld, cfg, me, &err) != IX_OK ||
		    repl_write_peers(cfg, servers, count, &peers_changed, &err) != IX_OK)
			log_warn("replication: %s", buf_cstr(&err));
		buf_free(&err);
	}
	if (me == NULL || me->sid == 0)
		goto out; /* a single server, or one that has not joined anything: nothing to replicate */
	if ((ret = repl_live_read(ld, cfg->suffix, &live, error_r)) != IX_OK)
		goto out;
	password = repl_live_password(&live);
	if (password == NULL && me->handover != NULL)
		password = xstrdup(me->handover);
	if (password == NULL) {
		if (peers > 0) {
			buf_printf(error_r,
				   "this server has no replication password yet: nothing to bind to the %zu other "
				   "servers with (join it again, or let a joining server leave one)",
				   peers);
			ret = IX_EAUTH;
		}
		goto out;
	}
	char *cafile = config_path(cfg, REPL_PEERS_FILE);
	/* slapd's consumers read the trusted certificates once, when they start: a new set restarts them */
	ret = repl_apply_config(ld, &live, me->sid, cfg->server_dn, servers, count, cfg->admin_dn, password,
				cfg->suffix, cafile, peers_changed, &changed, error_r);
	free(cafile);
	if (ret == IX_OK && me->handover != NULL && peers > 0) {
		/* the password now lives in cn=config (0600, never replicated): take it out of the directory */
		LDAPMod m = { .mod_op = LDAP_MOD_DELETE,
			      .mod_type = (char *)"ixReplicationHandover",
			      .mod_values = NULL };
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
	repl_live_free(&live);
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
		buf_printf(&ldif,
			   "dn: olcDatabase={0}config,cn=config\nchangetype: modify\nadd: olcAccess\n"
			   "olcAccess: {0}to * by dn.exact=\"%s\" %s manage by * break\n",
			   cfg->admin_dn, marker);
		char *lpath = config_path(cfg, "directory/config-access.ldif");
		char *confdir = config_path(cfg, "directory/slapd.d");
		if (write_file_atomic(lpath, ldif.data, ldif.len, 0600) < 0) {
			buf_printf(error_r, "cannot write %s: %s", lpath, strerror(errno));
			ret = IX_EIO;
		} else {
			char *const argv[] = {
				(char *)SLAPMODIFY_BIN, (char *)"-q", (char *)"-n0", (char *)"-F", confdir,
				(char *)"-l",           lpath,        NULL
			};
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
