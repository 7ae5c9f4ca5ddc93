/* replication_status.c - replication seen from this server for `interchange replication` and `server list`: every
 * server, whether we replicate from it, and its contextCSN compared with ours. */
#include "directory/replication.h"
#include "common/err.h"
#include "common/log.h"
#include "directory/ldap_util.h"
#include "directory/replication_int.h"

#include <stdlib.h>
#include <string.h>

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
			if (repl_csn_sid(*p) == repl_csn_sid(*t))
				h = *p;
		}
		int cmp = h == NULL ? -1 : strcmp(h, *t);
		if (cmp != 0) {
			same = 0;
			buf_printf(&d, "%s changes of server ID %ld", cmp < 0 ? "behind on" : "ahead on",
				   repl_csn_sid(*t));
			buf_append_str(&d, "; ");
		}
	}
	for (char **p = here; *p != NULL; p++) {
		int found = 0;
		for (char **t = there; *t != NULL && !found; t++)
			found = repl_csn_sid(*p) == repl_csn_sid(*t);
		if (!found) {
			same = 0;
			buf_printf(&d, "it lacks the changes of server ID %ld; ", repl_csn_sid(*p));
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
	struct repl_live live;
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
	repl_live_free(&v->live);
	repl_servers_free(&v->servers, v->count);
	if (v->ld != NULL)
		ldap_unbind_ext_s(v->ld, NULL, NULL);
	memset(v, 0, sizeof(*v));
}

static int view_open(const struct config *cfg, struct repl_view *v, struct buf *error_r)
{
	memset(v, 0, sizeof(*v));
	int ret = ldapu_connect_local(cfg, &v->ld, error_r);
	if (ret == IX_OK)
		ret = repl_servers_read(v->ld, cfg->suffix, &v->servers, &v->count, error_r);
	if (ret == IX_OK)
		ret = repl_live_read(v->ld, cfg->suffix, &v->live, error_r);
	if (ret == IX_OK)
		ret = repl_read_csns(v->ld, cfg->suffix, &v->here, error_r);
	if (ret == IX_OK)
		v->password = repl_live_password(&v->live);
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
			if (repl_read_csns(peer, cfg->suffix, &there, &err) == IX_OK)
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
		int me = repl_same_dn(s->dn, cfg->server_dn);
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
		x->self = repl_same_dn(s->dn, cfg->server_dn);
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
			buf_printf(out, "%s; %s\n", p[i].state,
				   p[i].replicating ? "replicating from it" : "NOT replicating from it");
	}
	repl_peers_free(&p, n);
	return IX_OK;
}
