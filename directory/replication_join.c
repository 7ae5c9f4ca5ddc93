/* replication_join.c - `interchange init --join`'s library half: reading the organisation from one of its servers,
 * taking a server ID, adding this server's entry and waiting for the directory contents to arrive. */
#include "directory/replication.h"
#include "common/err.h"
#include "common/log.h"
#include "directory/ldap_util.h"
#include "directory/replication_int.h"
#include "directory/slapd.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* How often join polls the local copy while the contents arrive. */
#define REPL_POLL_MS 50
/* How long join waits for the first server to take the replication password hand-over. */
#define REPL_HANDOVER_WAIT_MS 5000
/* Attempts at a free server ID when joins race. */
#define REPL_ID_ATTEMPTS 8
/* How long join waits for its entry to reach each other server before checking its ID there. */
#define REPL_ID_CHECK_MS 10000

static int repl_connect(const struct repl_join *j, const char *dn, const char *password, LDAP **ld_r,
			struct buf *error_r)
{
	return repl_connect_tls(j->uri, dn, password, j->cafile, ld_r, error_r);
}

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
	int ret = ldapu_open(j->uri, &ld, error_r);
	if (ret != IX_OK)
		return ret;
	static const char *const rattrs[] = { "namingContexts", NULL };
	LDAPMessage *res;
	ret = ldapu_search(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", rattrs, &res, error_r);
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
			buf_printf(error_r,
				   "the organisation already has a server named %s: give this one another "
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
	if (l != NULL && l[0] != '\0' && strcmp(l, "0.0.0.0") != 0 && strcmp(l, "::") != 0 &&
	    strcmp(l, "127.0.0.1") != 0)
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
		if (slapd_port_attr(p) != NULL)
			add_mod(mods, &n, store, vals, slapd_port_attr(p), ports[p], NULL);
	}
	add_mod(mods, &n, store, vals, "ixServerId", sidtext, NULL);
	add_mod(mods, &n, store, vals, "ixLdapUri", uri, NULL);
	unsigned char *der = NULL;
	size_t dlen = 0;
	if (repl_own_cert(cfg, &der, &dlen, error_r) != IX_OK) {
		for (size_t i = 0; i < n; i++)
			ldapu_values_free(&vals[i]);
		return IX_EIO;
	}
	struct berval cbv = { (ber_len_t)dlen, (char *)der }, *cvals[] = { &cbv, NULL };
	LDAPMod cm = { .mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES,
		       .mod_type = (char *)"userCertificate;binary",
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
			if (id == sid && !repl_same_dn(dn, cfg->server_dn))
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
		if (s->uri == NULL || s->sid == 0 || repl_same_dn(s->dn, cfg->server_dn))
			continue;
		LDAP *ld = NULL;
		struct buf err = BUF_INIT;
		if (repl_peer_connect(cfg, s->uri, cfg->admin_dn, j->password, &ld, &err) != IX_OK) {
			say(j, "  note: cannot check server IDs on %s: %s\n", s->name, buf_cstr(&err));
			buf_free(&err);
			continue;
		}
		int arrived = 0;
		for (unsigned long long until = now_usec() + REPL_ID_CHECK_MS * 1000ULL;
		     !arrived && now_usec() < until;) {
			LDAPMessage *res;
			buf_reset(&err);
			if (ldapu_search(ld, cfg->server_dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, &err) ==
			    IX_OK) {
				arrived = ldap_count_entries(ld, res) == 1;
				ldap_msgfree(res);
			}
			if (!arrived) {
				struct timespec ts = { 0, 10 * 1000 * 1000 };
				nanosleep(&ts, NULL);
			}
		}
		if (!arrived)
			say(j,
			    "  note: this server's entry has not reached %s yet; its server IDs are checked as they are\n",
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
	struct repl_live live = { 0 };
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
	if ((ret = repl_write_peers(cfg, servers, count, NULL, error_r)) != IX_OK)
		goto out;
	for (int attempt = 0;; attempt++) {
		if (my_sid > REPL_MAX_SERVER_ID) {
			buf_printf(error_r, "the organisation has no free server ID left (at most %d)",
				   REPL_MAX_SERVER_ID);
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
		LDAPMod m4 = { .mod_op = LDAP_MOD_REPLACE,
			       .mod_type = (char *)"ixReplicationHandover",
			       .mod_values = hv };
		LDAPMod *mods[] = { &m1, &m2, &m3, &m4, NULL };
		if ((ret = ldapu_modify(remote, o->dn, mods, error_r)) != IX_OK)
			goto out;
		o->sid = max + 1;
		free(o->uri);
		o->uri = xstrdup(j->uri);
		say(j, "  first server: %s gets server ID %u, reached at %s\n", o->name, o->sid, o->uri);
	} else if (hand_over) {
		char *hv[] = { (char *)j->password, NULL };
		LDAPMod m = { .mod_op = LDAP_MOD_REPLACE,
			      .mod_type = (char *)"ixReplicationHandover",
			      .mod_values = hv };
		LDAPMod *mods[] = { &m, NULL };
		if ((ret = ldapu_modify(remote, servers[origin].dn, mods, error_r)) != IX_OK)
			goto out;
	}
	/* what the remote holds now, our own entry included: join returns once all of it is here */
	if ((ret = repl_read_csns(remote, cfg->suffix, &remote_csns, error_r)) != IX_OK)
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
	ret = ldapu_connect_local(cfg, &local, error_r);
	if (ret != IX_OK)
		goto out;
	if ((ret = repl_live_read(local, cfg->suffix, &live, error_r)) != IX_OK)
		goto out;
	int changed = 0;
	char *cafile = config_path(cfg, REPL_PEERS_FILE);
	ret = repl_apply_config(local, &live, my_sid, cfg->server_dn, servers, count, cfg->admin_dn, j->password,
				cfg->suffix, cafile, 0, &changed, error_r);
	free(cafile);
	if (ret != IX_OK)
		goto out;
	say(j, "  replicating from every other server; waiting for the directory contents\n");
	unsigned timeout = j->timeout_ms != 0 ? j->timeout_ms : REPL_JOIN_TIMEOUT_MS;
	unsigned long long start = now_usec(), deadline = start + (unsigned long long)timeout * 1000;
	for (;;) {
		struct buf err = BUF_INIT;
		ldapu_values_free(&local_csns);
		int r = repl_read_csns(local, cfg->suffix, &local_csns, &err);
		buf_free(&err);
		if (r == IX_OK && remote_csns[0] != NULL && repl_csns_cover(local_csns, remote_csns))
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
		for (unsigned long long until = now_usec() + REPL_HANDOVER_WAIT_MS * 1000ULL;
		     !taken && now_usec() < until;) {
			LDAPMessage *res;
			struct buf err = BUF_INIT;
			if (ldapu_search(remote, odn, LDAP_SCOPE_BASE, "(objectClass=*)", hattrs, &res, &err) ==
			    IX_OK) {
				char *h = ldapu_get_first(remote, ldap_first_entry(remote, res),
							  "ixReplicationHandover");
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
			say(j,
			    "  note: %s has not taken up replication yet; it does when its attendant (this version) "
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
	repl_live_free(&live);
	repl_servers_free(&servers, count);
	free(uri);
	return ret;
}
