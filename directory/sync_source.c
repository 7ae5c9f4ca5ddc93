/* sync_source.c - sync sources as entries of our directory (ou=Directory Sync,ou=Configuration): add, list, show,
 * delete, their passwords (kept by the server that runs them, DATA/sync/NAME.secret, 0600) and the connection. */
#include "directory/sync_int.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/ldap_util.h"
#include "directory/replication.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECRET_MAX 4096
#define TEXT_OF_(x) #x
#define TEXT_OF(x) TEXT_OF_(x)
#define GRACE_DEFAULT_TEXT TEXT_OF(SYNC_GRACE_DAYS_DEFAULT)
#define POLL_DEFAULT_TEXT TEXT_OF(SYNC_POLL_SECONDS_DEFAULT)

const char *const sync_attr_names[SA_COUNT] = {
	[SA_LOGIN] = "uid",
	[SA_GIVEN] = "givenName",
	[SA_SURNAME] = "sn",
	[SA_CN] = "cn",
	[SA_DISPLAY] = "displayName",
	[SA_MAIL] = "mail",
	[SA_ADDRESSES] = "ixProxyAddresses",
	[SA_ANCHOR] = "ixSyncAnchor",
	[SA_TITLE] = "title",
	[SA_PHONE] = "telephoneNumber",
	[SA_PRINCIPAL] = "ixUserPrincipalName",
};

/* The defaults of type ldap (RFC 4519/2798 names; the anchor is RFC 4530's entryUUID); NULL: not read. */
static const char *const ldap_defaults[SA_COUNT] = {
	[SA_LOGIN] = "uid",           [SA_GIVEN] = "givenName",
	[SA_SURNAME] = "sn",          [SA_CN] = "cn",
	[SA_DISPLAY] = "displayName", [SA_MAIL] = "mail",
	[SA_ADDRESSES] = NULL,        [SA_ANCHOR] = "entryUUID",
	[SA_TITLE] = "title",         [SA_PHONE] = "telephoneNumber",
	[SA_PRINCIPAL] = NULL,
};

/* The defaults of type ad (Active Directory's names; the anchor is objectGUID, read as binary). */
static const char *const ad_defaults[SA_COUNT] = {
	[SA_LOGIN] = "sAMAccountName",
	[SA_GIVEN] = "givenName",
	[SA_SURNAME] = "sn",
	[SA_CN] = "cn",
	[SA_DISPLAY] = "displayName",
	[SA_MAIL] = "mail",
	[SA_ADDRESSES] = "proxyAddresses",
	[SA_ANCHOR] = "objectGUID",
	[SA_TITLE] = "title",
	[SA_PHONE] = "telephoneNumber",
	[SA_PRINCIPAL] = "userPrincipalName",
};

static const char *const source_attrs[] = { "cn",
					    "ixSyncType",
					    "ixSyncUri",
					    "ixSyncBindDn",
					    "ixSyncBase",
					    "ixSyncFilter",
					    "ixSyncGroupsBase",
					    "ixSyncMap",
					    "ixSyncServer",
					    "ixSyncState",
					    "ixSyncLastChange",
					    "ixSyncLastRun",
					    "ixSyncCount",
					    "ixSyncProblem",
					    "ixSyncGraceDays",
					    "ixSyncPollSeconds",
					    "ixSyncAuth",
					    NULL };

char *sync_source_dn(const struct config *cfg, const char *name)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "cn=");
	ldapu_escape_dn(&b, name, strlen(name));
	buf_printf(&b, "," SYNC_SOURCES_OU ",%s", cfg->suffix);
	return buf_steal(&b);
}

char *sync_file_path(const struct config *cfg, const char *name, const char *suffix)
{
	char *rel = xasprintf("sync/%s%s", name, suffix);
	char *path = config_path(cfg, rel);
	free(rel);
	return path;
}

void sync_time(time_t t, char out[16])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y%m%d%H%M%SZ", &tm);
}

void sync_now(char out[16])
{
	sync_time(time(NULL), out);
}

int sync_sources_here(struct prov *p, const struct config *cfg, LDAPMessage **res_r, struct buf *error_r)
{
	struct buf f = BUF_INIT;
	buf_append_str(&f, "(&(objectClass=ixDirectorySource)(ixSyncServer=");
	ldapu_escape_filter(&f, cfg->server_dn, strlen(cfg->server_dn));
	buf_append_str(&f, "))");
	char *base = xasprintf(SYNC_SOURCES_OU ",%s", cfg->suffix);
	const char *attrs[] = { "cn", "entryUUID", "ixSyncGraceDays", "ixSyncAuth", "ixSyncUri", NULL };
	int ret = ldapu_search(prov_ldap(p), base, LDAP_SCOPE_ONELEVEL, f.data, attrs, res_r, error_r);
	free(base);
	buf_free(&f);
	return ret == IX_ENOTFOUND ? IX_OK : ret; /* no source was ever added */
}

/* Whether text is a whole number from min to max, then in *v_r. */
static int number_in(const char *text, long min, long max, long *v_r)
{
	char *end = NULL;
	long v = strtol(text, &end, 10);
	if (text[0] == '\0' || *end != '\0' || v < min || v > max)
		return 0;
	*v_r = v;
	return 1;
}

/* Index of our attribute named name (case-insensitive), or -1. */
static int attr_index(const char *name, size_t len)
{
	for (int i = 0; i < SA_COUNT; i++) {
		if (strlen(sync_attr_names[i]) == len && strncasecmp(sync_attr_names[i], name, len) == 0)
			return i;
	}
	return -1;
}

static int check_map(const char *m, struct buf *error_r)
{
	const char *eq = strchr(m, '=');
	if (eq == NULL || attr_index(m, (size_t)(eq - m)) < 0) {
		buf_printf(error_r,
			   "\"%s\" is not a mapping: give OURATTR=THEIRATTR (THEIRATTR empty: not read) with "
			   "OURATTR one of",
			   m);
		for (int i = 0; i < SA_COUNT; i++)
			buf_printf(error_r, "%s %s", i ? "," : "", sync_attr_names[i]);
		return IX_EINVAL;
	}
	for (const char *c = eq + 1; *c != '\0'; c++) {
		int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			 *c == '-' || *c == ';' || *c == '.';
		if (!ok) {
			buf_printf(error_r, "\"%s\" is not an attribute name of the source", eq + 1);
			return IX_EINVAL;
		}
	}
	return IX_OK;
}

/* Creates ou=Directory Sync under ou=Configuration when it is missing (directories made before sync sources). */
static int ensure_container(LDAP *ld, const struct config *cfg, struct buf *error_r)
{
	char *dn = xasprintf(SYNC_SOURCES_OU ",%s", cfg->suffix);
	int ret = ldapu_ensure_ou(ld, dn, "Directory Sync", "cannot create the folder of sync sources", error_r);
	free(dn);
	return ret;
}

static int write_secret(const struct config *cfg, const struct sync_source *s, struct buf *error_r)
{
	char *dir = config_path(cfg, "sync");
	int ret = IX_OK;
	if (mkdir_p(dir, 0700) < 0 || chmod(dir, 0700) < 0) {
		buf_printf(error_r, "cannot create %s: %s", dir, strerror(errno));
		ret = IX_EIO;
	}
	char *path = sync_file_path(cfg, s->name, ".secret");
	if (ret == IX_OK && write_file_atomic(path, s->password, strlen(s->password), 0600) < 0) {
		buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
		ret = IX_EIO;
	}
	free(path);
	if (ret == IX_OK && s->ca_file != NULL) {
		path = sync_file_path(cfg, s->name, "-ca.pem");
		if (file_copy(s->ca_file, path, 0644, 1024 * 1024) < 0) {
			buf_printf(error_r, "cannot copy the CA certificates %s to %s: %s", s->ca_file, path,
				   strerror(errno));
			ret = IX_EIO;
		}
		free(path);
	}
	free(dir);
	return ret;
}

void sync_secret_remove(const struct config *cfg, const char *name)
{
	char *path = sync_file_path(cfg, name, ".secret");
	unlink(path);
	free(path);
	path = sync_file_path(cfg, name, "-ca.pem");
	unlink(path);
	free(path);
	path = sync_file_path(cfg, name, ".cookie");
	unlink(path);
	free(path);
	path = sync_file_path(cfg, name, SYNC_CACHE_SUFFIX);
	unlink(path);
	free(path);
}

int sync_source_add(struct prov *p, const struct config *cfg, const struct sync_source *s, struct buf *error_r)
{
	const char *type = s->type != NULL ? s->type : "ldap";
	if (!prov_login_valid(s->name)) {
		buf_printf(error_r, "\"%s\" is not a source name: use 1-%d letters, digits, '.', '-' or '_'", s->name,
			   SYNC_MAX_NAME);
		return IX_EINVAL;
	}
	if (strcmp(type, "ldap") != 0 && strcmp(type, "ad") != 0) {
		buf_printf(error_r, "\"%s\" is not a type of source: use --type ldap or --type ad", type);
		return IX_EINVAL;
	}
	LDAPURLDesc *url = NULL;
	if (ldap_url_parse(s->uri, &url) != LDAP_URL_SUCCESS) {
		buf_printf(error_r, "\"%s\" is not an LDAP URI (ldap://HOST:PORT/ or ldaps://HOST:PORT/)", s->uri);
		return IX_EINVAL;
	}
	ldap_free_urldesc(url);
	LDAPDN parsed = NULL;
	const char *dns[] = { s->bind_dn, s->base, s->groups_base };
	for (size_t i = 0; i < 3; i++) {
		if (dns[i] != NULL && ldap_str2dn(dns[i], &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
			buf_printf(error_r, "\"%s\" is not a DN", dns[i]);
			return IX_EINVAL;
		}
		ldap_dnfree(parsed);
		parsed = NULL;
	}
	if (s->password == NULL || s->password[0] == '\0' || strlen(s->password) > SECRET_MAX) {
		buf_printf(error_r, "the password of the source must be 1-%d characters", SECRET_MAX);
		return IX_EINVAL;
	}
	for (size_t i = 0; i < s->map_count; i++) {
		if (check_map(s->maps[i], error_r) != IX_OK)
			return IX_EINVAL;
	}
	long poll = SYNC_POLL_SECONDS_DEFAULT, grace = SYNC_GRACE_DAYS_DEFAULT;
	if (s->poll_seconds != NULL && !number_in(s->poll_seconds, 1, SYNC_POLL_SECONDS_MAX, &poll)) {
		buf_printf(error_r, "--poll-seconds takes a number of seconds from 1 to %d", SYNC_POLL_SECONDS_MAX);
		return IX_EINVAL;
	}
	if (s->grace_days != NULL && !number_in(s->grace_days, 0, SYNC_GRACE_DAYS_MAX, &grace)) {
		buf_printf(error_r, "--grace-days takes a number of days from 0 to %d", SYNC_GRACE_DAYS_MAX);
		return IX_EINVAL;
	}
	const char *auth = s->auth != NULL ? s->auth : "local";
	if (strcmp(auth, "local") != 0 && strcmp(auth, "passthrough") != 0) {
		buf_printf(error_r, "--auth takes local (passwords kept here) or passthrough (a bind to the source)");
		return IX_EINVAL;
	}
	LDAP *ld = prov_ldap(p);
	int ret = ensure_container(ld, cfg, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = sync_source_dn(cfg, s->name);
	if (ldapu_entry_matches(ld, dn, "(objectClass=*)")) {
		buf_printf(error_r, "a sync source named %s exists already (see 'interchange sync list')", s->name);
		free(dn);
		return IX_EEXIST;
	}
	ret = write_secret(cfg, s, error_r);
	if (ret != IX_OK) {
		free(dn);
		return ret;
	}
	LDAPMod **mods = NULL;
	size_t n = 0;
	char **oc = NULL;
	size_t noc = 0;
	ldapu_values_push(&oc, &noc, "ixDirectorySource");
	ldapu_values_push(&oc, &noc, "ixDirectorySourceSettings");
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", oc);
	char *grace_text = xasprintf("%ld", grace);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncGraceDays", ldapu_values1(grace_text));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncAuth", ldapu_values1(auth));
	free(grace_text);
	if (s->poll_seconds != NULL) {
		char *poll_text = xasprintf("%ld", poll);
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncPollSeconds", ldapu_values1(poll_text));
		free(poll_text);
	}
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1(s->name));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncType", ldapu_values1(type));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncUri", ldapu_values1(s->uri));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncBindDn", ldapu_values1(s->bind_dn));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncBase", ldapu_values1(s->base));
	if (s->filter != NULL)
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncFilter", ldapu_values1(s->filter));
	if (s->groups_base != NULL)
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncGroupsBase", ldapu_values1(s->groups_base));
	if (s->map_count > 0) {
		char **maps = NULL;
		size_t nm = 0;
		for (size_t i = 0; i < s->map_count; i++)
			ldapu_values_push(&maps, &nm, s->maps[i]);
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncMap", maps);
	}
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncServer", ldapu_values1(cfg->server_dn));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncState", ldapu_values1("never run"));
	int rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
	ldapu_mods_free(mods);
	free(dn);
	if (rc != LDAP_SUCCESS) {
		sync_secret_remove(cfg, s->name);
		return ldapu_fail(ld, rc, "cannot add the sync source", error_r);
	}
	return IX_OK;
}

/* Reads source name's entry: IX_OK with *res_r and *e_r; IX_ENOTFOUND with a sentence when there is none. */
static int read_source_entry(LDAP *ld, const struct config *cfg, const char *name, LDAPMessage **res_r,
			     LDAPMessage **e_r, struct buf *error_r)
{
	*res_r = NULL;
	*e_r = NULL;
	if (!prov_login_valid(name)) {
		buf_printf(error_r, "\"%s\" is not a source name", name);
		return IX_EINVAL;
	}
	char *dn = sync_source_dn(cfg, name);
	int ret = ldapu_search(ld, dn, LDAP_SCOPE_BASE, "(objectClass=ixDirectorySource)", source_attrs, res_r,
			       error_r);
	free(dn);
	*e_r = ldapu_first_entry(ld, *res_r);
	if (ret == IX_ENOTFOUND || (ret == IX_OK && *e_r == NULL)) {
		buf_printf(error_r, "there is no sync source named %s (see 'interchange sync list')", name);
		ret = IX_ENOTFOUND;
	}
	if (ret != IX_OK) {
		ldap_msgfree(*res_r);
		*res_r = NULL;
	}
	return ret;
}

int sync_conf_load(struct prov *p, const struct config *cfg, const char *name, struct sync_conf *c, struct buf *error_r)
{
	memset(c, 0, sizeof(*c));
	LDAP *ld = prov_ldap(p);
	LDAPMessage *res = NULL, *e = NULL;
	int ret = read_source_entry(ld, cfg, name, &res, &e, error_r);
	if (ret != IX_OK)
		return ret;
	c->dn = sync_source_dn(cfg, name);
	c->name = ldapu_get_first(ld, e, "cn");
	c->type = ldapu_get_first(ld, e, "ixSyncType");
	c->uri = ldapu_get_first(ld, e, "ixSyncUri");
	c->bind_dn = ldapu_get_first(ld, e, "ixSyncBindDn");
	c->base = ldapu_get_first(ld, e, "ixSyncBase");
	c->filter = ldapu_get_first(ld, e, "ixSyncFilter");
	c->groups_base = ldapu_get_first(ld, e, "ixSyncGroupsBase");
	c->server_dn = ldapu_get_first(ld, e, "ixSyncServer");
	char *grace = ldapu_get_first(ld, e, "ixSyncGraceDays"), *poll = ldapu_get_first(ld, e, "ixSyncPollSeconds");
	c->grace_days = grace != NULL ? strtol(grace, NULL, 10) : SYNC_GRACE_DAYS_DEFAULT;
	c->poll_seconds = poll != NULL ? strtol(poll, NULL, 10) : SYNC_POLL_SECONDS_DEFAULT;
	free(grace);
	free(poll);
	const char *const *defaults = c->type != NULL && strcmp(c->type, "ad") == 0 ? ad_defaults : ldap_defaults;
	for (int i = 0; i < SA_COUNT; i++)
		c->their[i] = defaults[i] != NULL ? xstrdup(defaults[i]) : NULL;
	char **maps = ldapu_get_values(ld, e, "ixSyncMap", NULL);
	for (size_t i = 0; maps[i] != NULL; i++) {
		const char *eq = strchr(maps[i], '=');
		int a = eq != NULL ? attr_index(maps[i], (size_t)(eq - maps[i])) : -1;
		if (a < 0)
			continue;
		free(c->their[a]);
		c->their[a] = eq[1] != '\0' ? xstrdup(eq + 1) : NULL;
	}
	ldapu_values_free(&maps);
	ldap_msgfree(res);
	if (c->uri == NULL || c->base == NULL || c->their[SA_LOGIN] == NULL || c->their[SA_ANCHOR] == NULL) {
		buf_printf(error_r, "the sync source %s lacks its URI, its base, or a mapping of uid or ixSyncAnchor",
			   name);
		sync_conf_free(c);
		return IX_EINVAL;
	}
	return IX_OK;
}

void sync_conf_free(struct sync_conf *c)
{
	char **fields[] = { &c->dn,   &c->name,   &c->type,        &c->uri,      &c->bind_dn,
			    &c->base, &c->filter, &c->groups_base, &c->server_dn };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
	for (int i = 0; i < SA_COUNT; i++) {
		free(c->their[i]);
		c->their[i] = NULL;
	}
}

int sync_connect(const struct config *cfg, const struct sync_conf *c, LDAP **ld_r, struct buf *error_r)
{
	if (c->server_dn == NULL || strcasecmp(c->server_dn, cfg->server_dn) != 0) {
		buf_printf(error_r, "the sync source %s is run by %s, which keeps its password: run it there", c->name,
			   c->server_dn != NULL ? c->server_dn : "no server");
		return IX_EINVAL;
	}
	char *path = sync_file_path(cfg, c->name, ".secret"), *password = NULL;
	size_t len = 0;
	if (read_file(path, SECRET_MAX, &password, &len) < 0) {
		buf_printf(error_r,
			   "cannot read the password of the sync source %s (%s): %s; give it again with 'interchange "
			   "sync del %s --keep' and 'sync add'",
			   c->name, path, strerror(errno), c->name);
		free(path);
		return IX_EIO;
	}
	free(path);
	char *ca = sync_file_path(cfg, c->name, "-ca.pem");
	struct stat st;
	struct buf why = BUF_INIT;
	int ret = repl_connect_tls(c->uri, c->bind_dn, password, stat(ca, &st) == 0 ? ca : NULL, ld_r, &why);
	explicit_bzero(password, len);
	free(password);
	free(ca);
	if (ret != IX_OK)
		buf_printf(error_r, "cannot read the source %s at %s: %s", c->name, c->uri, buf_cstr(&why));
	buf_free(&why);
	return ret;
}

/* ---- list, show, del ---- */

static const char *first_or(char **vals, const char *dflt)
{
	return vals != NULL && vals[0] != NULL ? vals[0] : dflt;
}

/* The value of NAME=N in an ixSyncCount array, "0" when absent. */
static const char *count_of(char **counts, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; counts != NULL && counts[i] != NULL; i++) {
		if (strncmp(counts[i], name, len) == 0 && counts[i][len] == '=')
			return counts[i] + len + 1;
	}
	return "0";
}

int sync_source_list(struct prov *p, const struct config *cfg, struct buf *out, struct buf *error_r)
{
	LDAP *ld = prov_ldap(p);
	char *base = xasprintf(SYNC_SOURCES_OU ",%s", cfg->suffix);
	LDAPMessage *res = NULL;
	int ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixDirectorySource)", source_attrs, &res,
			       error_r);
	free(base);
	if (ret == IX_ENOTFOUND || (ret == IX_OK && ldap_count_entries(ld, res) <= 0)) {
		buf_append_str(out, "No sync sources: add one with 'interchange sync add'.\n");
		ldap_msgfree(res);
		return IX_OK;
	}
	if (ret != IX_OK)
		return ret;
	buf_printf(out, "%-16s  %-5s  %-6s  %-6s  %-9s  %-14s  %s\n", "NAME", "TYPE", "USERS", "LISTS", "CONFLICTS",
		   "STATE", "URI");
	for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
		char **name = ldapu_get_values(ld, e, "cn", NULL), **type = ldapu_get_values(ld, e, "ixSyncType", NULL),
		     **uri = ldapu_get_values(ld, e, "ixSyncUri", NULL),
		     **state = ldapu_get_values(ld, e, "ixSyncState", NULL),
		     **counts = ldapu_get_values(ld, e, "ixSyncCount", NULL);
		buf_printf(out, "%-16s  %-5s  %-6s  %-6s  %-9s  %-14.40s  %s\n", first_or(name, "?"),
			   first_or(type, "?"), count_of(counts, "users"), count_of(counts, "lists"),
			   count_of(counts, "conflicts"), first_or(state, "never run"), first_or(uri, "?"));
		ldapu_values_free(&name);
		ldapu_values_free(&type);
		ldapu_values_free(&uri);
		ldapu_values_free(&state);
		ldapu_values_free(&counts);
	}
	ldap_msgfree(res);
	return IX_OK;
}

/* A source's one-valued settings and state: their key in sync_source_facts, label in `sync show`, attribute, and what
 * an absent one means. */
static const struct {
	const char *key, *label, *attr, *dflt;
} rows[] = {
	{ "type", "Type", "ixSyncType", "ldap" },
	{ "uri", "URI", "ixSyncUri", "-" },
	{ "bind_dn", "Bind DN", "ixSyncBindDn", "-" },
	{ "base", "Users under", "ixSyncBase", "-" },
	{ "filter", "Filter", "ixSyncFilter", "(default)" },
	{ "groups_base", "Groups under", "ixSyncGroupsBase", "(the users' base)" },
	{ "server", "Run by", "ixSyncServer", "-" },
	{ "grace_days", "Grace days", "ixSyncGraceDays", GRACE_DEFAULT_TEXT },
	{ "poll_seconds", "Poll every (s)", "ixSyncPollSeconds", POLL_DEFAULT_TEXT },
	{ "auth", "Sign-in", "ixSyncAuth", "local" },
	{ "state", "State", "ixSyncState", "never run" },
	{ "last_run", "Last run", "ixSyncLastRun", "never" },
	{ "last_change", "Last change seen", "ixSyncLastChange", "none" },
};

/* The many-valued ones: key and attribute. */
static const struct {
	const char *key, *attr;
} lists[] = { { "maps", "ixSyncMap" }, { "counts", "ixSyncCount" }, { "problems", "ixSyncProblem" } };

int sync_source_facts(struct prov *p, const struct config *cfg, const char *name, sync_fact_fn *fn, void *ctx,
		      struct buf *error_r)
{
	LDAP *ld = prov_ldap(p);
	LDAPMessage *res = NULL, *e = NULL;
	int ret;
	if (name != NULL) {
		ret = read_source_entry(ld, cfg, name, &res, &e, error_r);
	} else {
		char *base = xasprintf(SYNC_SOURCES_OU ",%s", cfg->suffix);
		ret = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixDirectorySource)", source_attrs, &res,
				   error_r);
		free(base);
		if (ret == IX_ENOTFOUND) {
			buf_reset(error_r);
			ret = IX_OK;
		}
		e = ldapu_first_entry(ld, res);
	}
	for (; ret == IX_OK && e != NULL; e = ldap_next_entry(ld, e)) {
		char **cn = ldapu_get_values(ld, e, "cn", NULL);
		const char *source = first_or(cn, "?");
		for (size_t i = 0; i < IX_ARRAY_LEN(rows); i++) {
			char **v = ldapu_get_values(ld, e, rows[i].attr, NULL);
			const char *one[] = { first_or(v, rows[i].dflt), NULL };
			fn(ctx, source, rows[i].key, one);
			ldapu_values_free(&v);
		}
		for (size_t i = 0; i < IX_ARRAY_LEN(lists); i++) {
			char **v = ldapu_get_values(ld, e, lists[i].attr, NULL);
			fn(ctx, source, lists[i].key, (const char *const *)v);
			ldapu_values_free(&v);
		}
		ldapu_values_free(&cn);
		if (name != NULL)
			break;
	}
	ldap_msgfree(res);
	return ret;
}

int sync_source_show(struct prov *p, const struct config *cfg, const char *name, struct buf *out, struct buf *error_r)
{
	LDAP *ld = prov_ldap(p);
	LDAPMessage *res = NULL, *e = NULL;
	int ret = read_source_entry(ld, cfg, name, &res, &e, error_r);
	if (ret != IX_OK)
		return ret;
	buf_printf(out, "Sync source %s\n", name);
	char *type = ldapu_get_first(ld, e, "ixSyncType");
	int polls = type != NULL && strcmp(type, "ad") == 0; /* only sources without RFC 4533 are polled */
	free(type);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (!polls && strcmp(rows[i].attr, "ixSyncPollSeconds") == 0)
			continue;
		char **v = ldapu_get_values(ld, e, rows[i].attr, NULL);
		buf_printf(out, "  %-17s %s\n", rows[i].label, first_or(v, rows[i].dflt));
		ldapu_values_free(&v);
	}
	char **maps = ldapu_get_values(ld, e, "ixSyncMap", NULL);
	for (size_t i = 0; maps[i] != NULL; i++)
		buf_printf(out, "  %-17s %s\n", i == 0 ? "Mapping" : "", maps[i]);
	ldapu_values_free(&maps);
	char **counts = ldapu_get_values(ld, e, "ixSyncCount", NULL);
	buf_printf(out, "  %-17s %s (%s disabled: deleted at the source)\n", "Users", count_of(counts, "users"),
		   count_of(counts, "disabled"));
	static const char *const names[] = { "lists", "contacts", "errors", "conflicts" };
	static const char *const labels[] = { "Lists", "Contacts", "Errors", "Conflicts" };
	for (size_t i = 0; i < 4; i++)
		buf_printf(out, "  %-17s %s\n", labels[i], count_of(counts, names[i]));
	ldapu_values_free(&counts);
	char **problems = ldapu_get_values(ld, e, "ixSyncProblem", NULL);
	for (size_t i = 0; problems[i] != NULL; i++)
		buf_printf(out, "    %s\n", problems[i]);
	ldapu_values_free(&problems);
	ldap_msgfree(res);
	return IX_OK;
}
