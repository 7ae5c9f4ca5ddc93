/* api_admin.c - the organisation's infrastructure in the REST API (docs/api.md): status and replication, the
 * metrics and their short history, the services' logs, connectors, sync sources and DKIM keys, each
 * the library call the command line makes, as the caller. */
#include "transport/http/api_int.h"
#include "common/control.h"
#include "common/err.h"
#include "common/utf8.h"
#include "directory/replication.h"
#include "directory/sync.h"
#include "transport/http/status_json.h"
#include "transport/mta/dkim_domain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Seconds the API waits for the attendant's answer. */
#define API_ATTENDANT_TIMEOUT_S 5
/* Lines of a log GET /logs/NAME answers with unless ?lines= says, the most it takes, and the most bytes it reads. */
#define API_LOG_LINES_DEFAULT 200
#define API_LOG_LINES_MAX 10000
#define API_LOG_BYTES_MAX (4u << 20)

/* Asks the attendant and answers its JSON (or 503 saying why); into *o_r when o_r is not NULL (then not answered). */
static bool ask_attendant_json(struct call *c, const char *request, json_t **o_r)
{
	struct buf answer = BUF_INIT, err = BUF_INIT;
	*o_r = NULL;
	int ret = control_ask(c->api->cfg, request, API_ATTENDANT_TIMEOUT_S, &answer, &err);
	if (ret == IX_OK)
		*o_r = json_loads(buf_cstr(&answer), 0, NULL);
	if (ret != IX_OK)
		fail(c, 503, "%s", buf_cstr(&err));
	else if (!json_is_object(*o_r))
		fail(c, 503, "the attendant answered %s with no JSON object: see 'interchange logs attendant'",
		     request);
	buf_free(&answer);
	buf_free(&err);
	if (json_is_object(*o_r))
		return true;
	json_decref(*o_r);
	*o_r = NULL;
	return false;
}

/* ---- status, metrics ---- */

/* GET /status: what `interchange status --json` says (any administrative role) */
static void status_get(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_VIEW))
		return;
	struct buf answer = BUF_INIT, err = BUF_INIT;
	bool running = control_ask(c->api->cfg, "status\n", API_ATTENDANT_TIMEOUT_S, &answer, &err) == IX_OK;
	struct repl_peer *peers = NULL;
	size_t npeers = 0;
	buf_reset(&err);
	if (repl_peers(c->api->cfg, &peers, &npeers, NULL, &err) != IX_OK)
		npeers = 0;
	json_t *o = status_json(c->api->cfg, running ? buf_cstr(&answer) : NULL, peers, npeers);
	if (err.len > 0)
		json_object_set_new(o, "replication_error", json_string(buf_cstr(&err)));
	repl_peers_free(&peers, npeers);
	reply(c, 200, o);
	buf_free(&answer);
	buf_free(&err);
}

/* GET /metrics: the counters of the metrics endpoint and the last hour of the mail flow, from the attendant */
static void metrics_get(struct call *c, json_t *in)
{
	(void)in;
	json_t *o;
	if (require_role(c, PROV_ROLE_VIEW) && ask_attendant_json(c, "metrics\n", &o))
		reply(c, 200, o);
}

/* ---- logs ---- */

static bool log_name_ok(const char *name)
{
	size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_");
	return n > 0 && name[n] == '\0';
}

/* GET /logs: the logs of DATA/log (name, bytes, modified) */
static void logs_list(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_ORG))
		return;
	char *dir = config_path(c->api->cfg, "log");
	DIR *d = opendir(dir);
	json_t *items = json_array();
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		size_t len = strlen(e->d_name);
		struct stat st;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".log") == 0 && stat(path, &st) == 0) {
			char *name = xstrndup(e->d_name, len - 4);
			if (log_name_ok(name))
				json_array_append_new(items, json_pack("{s:s, s:I, s:I}", "name", name, "bytes",
								       (json_int_t)st.st_size, "modified",
								       (json_int_t)st.st_mtime));
			free(name);
		}
		free(path);
	}
	if (d != NULL)
		closedir(d);
	free(dir);
	reply_list(c, items);
}

/* A log line as a JSON string: bytes that are no UTF-8 become U+FFFD. */
static json_t *line_json(const char *s, size_t len)
{
	if (utf8_valid(s, len))
		return json_stringn(s, len);
	struct buf clean = BUF_INIT;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			utf8_append(&clean, 0xFFFD);
			i++;
		} else {
			buf_append(&clean, s + i, n);
			i += n;
		}
	}
	json_t *j = json_stringn(clean.data != NULL ? clean.data : "", clean.len);
	buf_free(&clean);
	return j;
}

/* GET /logs/NAME?lines=N&q=TEXT: the last lines of a service's log (Organisation Admins: logs name every address and
 * client), those holding q when it is given */
static void log_get(struct call *c, json_t *in)
{
	(void)in;
	const char *name = c->seg[1];
	size_t lines;
	if (!require_role(c, PROV_ROLE_ORG) ||
	    !query_size(c, "lines", API_LOG_LINES_DEFAULT, API_LOG_LINES_MAX, &lines))
		return;
	if (!log_name_ok(name)) {
		fail(c, 404, "there is no log %s: GET /api/v1/logs lists them", name);
		return;
	}
	char *path = xasprintf("%s/log/%s.log", c->api->cfg->data_dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0) {
		fail(c, 404, "there is no log %s (%s): GET /api/v1/logs lists them", name, strerror(errno));
		return;
	}
	struct stat st;
	off_t from = file_tail_offset(fd, lines), end = fstat(fd, &st) == 0 ? st.st_size : from;
	if (end - from > (off_t)API_LOG_BYTES_MAX)
		from = end - (off_t)API_LOG_BYTES_MAX;
	size_t want = (size_t)(end - from);
	char *data = xmalloc(want + 1);
	ssize_t got = want > 0 ? pread(fd, data, want, from) : 0;
	close(fd);
	const char *q = http_request_query(c->req, "q");
	json_t *out = json_array();
	for (size_t i = 0, start = 0; got > 0 && i <= (size_t)got; i++) {
		if (i < (size_t)got && data[i] != '\n')
			continue;
		if (i > start) {
			data[i < (size_t)got ? i : (size_t)got] = '\0';
			if (q == NULL || strcasestr(data + start, q) != NULL)
				json_array_append_new(out, line_json(data + start, i - start));
		}
		start = i + 1;
	}
	free(data);
	reply(c, 200,
	      json_pack("{s:s, s:o, s:I}", "name", name, "lines", out, "total", (json_int_t)json_array_size(out)));
}

/* ---- connectors ---- */

static json_t *connector_json(const struct prov_connector *c)
{
	json_t *spaces = json_array();
	for (size_t i = 0; i < c->space_count; i++)
		json_array_append_new(spaces, json_string(c->spaces[i]));
	return json_pack("{s:s, s:I, s:s, s:o}", "name", c->name, "cost", (json_int_t)c->cost, "smarthost",
			 c->smarthost != NULL ? c->smarthost : "", "address_spaces", spaces);
}

/* GET /connectors, GET /connectors/NAME (any administrative role) */
static void connectors_get(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_VIEW))
		return;
	const char *name = c->nseg == 2 ? c->seg[1] : NULL;
	struct prov_connector *list;
	size_t n;
	struct buf err = BUF_INIT;
	int ret = prov_connector_list(c->prov, &list, &n, &err);
	json_t *items = json_array();
	for (size_t i = 0; ret == IX_OK && i < n; i++) {
		if (name == NULL || strcasecmp(name, list[i].name) == 0)
			json_array_append_new(items, connector_json(&list[i]));
	}
	prov_connectors_free(&list, n);
	if (ret != IX_OK) {
		json_decref(items);
		fail_with(c, ret, &err);
	} else if (name == NULL) {
		reply_list(c, items);
	} else if (json_array_size(items) == 0) {
		json_decref(items);
		fail(c, 404, "there is no connector named %s: GET /api/v1/connectors lists them", name);
	} else {
		reply(c, 200, json_incref(json_array_get(items, 0)));
		json_decref(items);
	}
	buf_free(&err);
}

/* POST /connectors {"name", "address_spaces": [...], "smarthost", "cost"}: the directory decides who may */
static void connector_add(struct call *c, json_t *in)
{
	struct prov_connector pc = { 0 };
	json_t *cost = json_object_get(in, "cost");
	if (!opt_string(c, in, "name", &pc.name) || !opt_string(c, in, "smarthost", &pc.smarthost))
		return;
	if (!string_array(json_object_get(in, "address_spaces"), &pc.spaces, &pc.space_count) ||
	    (cost != NULL && (!json_is_integer(cost) || json_integer_value(cost) < 0))) {
		free(pc.spaces);
		fail(c, 400,
		     "give {\"name\": NAME, \"address_spaces\": [\"example.org\", \"*.example.org\" or \"*\"], "
		     "\"smarthost\": \"HOST[:PORT]\", \"cost\": N}");
		return;
	}
	pc.cost = cost != NULL ? (unsigned long long)json_integer_value(cost) : 0;
	struct buf err = BUF_INIT;
	int ret = prov_connector_add(c->prov, &pc, &err);
	done(c, ret, &err, 201, connector_json(&pc));
	free(pc.spaces);
	buf_free(&err);
}

/* DELETE /connectors/NAME */
static void connector_del(struct call *c, json_t *in)
{
	(void)in;
	struct buf err = BUF_INIT;
	int ret = prov_connector_del(c->prov, c->seg[1], &err);
	done(c, ret, &err, 200, json_pack("{s:s}", "deleted", c->seg[1]));
	buf_free(&err);
}

/* ---- sync sources ---- */

/* Gathers sync_source_facts into a JSON array of objects, one a source ("counts" as an object of numbers). */
static void sync_fact_json(void *ctx, const char *source, const char *key, const char *const *values)
{
	json_t *items = ctx, *last = json_array_get(items, json_array_size(items) - 1);
	if (last == NULL || strcmp(json_string_value(json_object_get(last, "name")), source) != 0) {
		last = json_pack("{s:s}", "name", source);
		json_array_append_new(items, last);
	}
	if (strcmp(key, "counts") == 0) {
		json_t *counts = json_object();
		for (size_t i = 0; values[i] != NULL; i++) {
			const char *eq = strchr(values[i], '=');
			unsigned long long n;
			if (eq != NULL && parse_uint(eq + 1, (unsigned long long)1 << 62, &n) == 0) {
				char *k = xstrndup(values[i], (size_t)(eq - values[i]));
				json_object_set_new(counts, k, json_integer((json_int_t)n));
				free(k);
			}
		}
		json_object_set_new(last, key, counts);
	} else if (strcmp(key, "maps") == 0 || strcmp(key, "problems") == 0) {
		json_t *a = json_array();
		for (size_t i = 0; values[i] != NULL; i++)
			json_array_append_new(a, line_json(values[i], strlen(values[i])));
		json_object_set_new(last, key, a);
	} else {
		json_object_set_new(last, key, line_json(values[0], strlen(values[0])));
	}
}

/* GET /sync, GET /sync/NAME: the sources, never a password (any administrative role) */
static void sync_get(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_VIEW))
		return;
	const char *name = c->nseg == 2 ? c->seg[1] : NULL;
	json_t *items = json_array();
	struct buf err = BUF_INIT;
	int ret = sync_source_facts(c->prov, c->api->cfg, name, sync_fact_json, items, &err);
	if (ret != IX_OK) {
		json_decref(items);
		fail_with(c, ret, &err);
	} else if (name == NULL) {
		reply_list(c, items);
	} else {
		reply(c, 200, json_incref(json_array_get(items, 0)));
		json_decref(items);
	}
	buf_free(&err);
}

/* POST /sync {"name", "type", "uri", "bind_dn", "password", "base", "filter", "groups_base", "grace_days",
 * "poll_seconds", "auth", "maps"} (Organisation Admins: the password goes into this server's data folder) */
static void sync_add(struct call *c, json_t *in)
{
	if (!require_role(c, PROV_ROLE_ORG))
		return;
	struct sync_source s = { 0 };
	static const char *const keys[] = { "name", "type",   "uri",         "bind_dn", "password",
					    "base", "filter", "groups_base", "auth" };
	const char **fields[] = { &s.name, &s.type,   &s.uri,         &s.bind_dn, &s.password,
				  &s.base, &s.filter, &s.groups_base, &s.auth };
	for (size_t i = 0; i < IX_ARRAY_LEN(keys); i++) {
		if (!opt_string(c, in, keys[i], fields[i]))
			return;
	}
	char grace[24] = "", poll[24] = "";
	json_t *g = json_object_get(in, "grace_days"), *pl = json_object_get(in, "poll_seconds");
	if ((g != NULL && !json_is_integer(g)) || (pl != NULL && !json_is_integer(pl))) {
		fail(c, 400, "\"grace_days\" and \"poll_seconds\" are whole numbers");
		return;
	}
	if (g != NULL) {
		snprintf(grace, sizeof(grace), "%lld", (long long)json_integer_value(g));
		s.grace_days = grace;
	}
	if (pl != NULL) {
		snprintf(poll, sizeof(poll), "%lld", (long long)json_integer_value(pl));
		s.poll_seconds = poll;
	}
	const char **maps = NULL;
	if (!string_array(json_object_get(in, "maps"), &maps, &s.map_count)) {
		fail(c, 400, "\"maps\" is an array of \"OURATTR=THEIRATTR\"");
		return;
	}
	s.maps = maps;
	if (s.name == NULL || s.uri == NULL || s.bind_dn == NULL || s.password == NULL || s.base == NULL) {
		free(maps);
		fail(c, 400, "a sync source needs \"name\", \"uri\", \"bind_dn\", \"password\" and \"base\"");
		return;
	}
	struct buf err = BUF_INIT;
	int ret = sync_source_add(c->prov, c->api->cfg, &s, &err);
	free(maps);
	if (ret == IX_OK) {
		buf_reset(&err);
		json_t *items = json_array();
		ret = sync_source_facts(c->prov, c->api->cfg, s.name, sync_fact_json, items, &err);
		done(c, ret, &err, 201, json_incref(json_array_get(items, 0)));
		json_decref(items);
	} else {
		fail_with(c, ret, &err);
	}
	buf_free(&err);
}

/* DELETE /sync/NAME?keep=true (Organisation Admins) */
static void sync_del(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_ORG))
		return;
	const char *keep = http_request_query(c->req, "keep");
	struct buf err = BUF_INIT;
	int ret = sync_source_del(c->prov, c->api->cfg, c->seg[1], keep != NULL && strcmp(keep, "true") == 0, &err);
	done(c, ret, &err, 200, json_pack("{s:s}", "deleted", c->seg[1]));
	buf_free(&err);
}

/* POST /sync/NAME/run: a full reconcile now (Organisation Admins) */
static void sync_run_now(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_ORG))
		return;
	struct sync_result r;
	struct buf err = BUF_INIT;
	int ret = sync_run(c->prov, c->api->cfg, c->seg[1], NULL, NULL, &r, &err);
	done(c, ret, &err, 200,
	     json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "source", c->seg[1], "added",
		       (json_int_t)r.added, "changed", (json_int_t)r.changed, "renamed", (json_int_t)r.renamed,
		       "deleted", (json_int_t)r.deleted, "users", (json_int_t)r.users, "disabled",
		       (json_int_t)r.disabled, "lists", (json_int_t)r.lists, "conflicts", (json_int_t)r.conflicts,
		       "errors", (json_int_t)r.errors));
	buf_free(&err);
}

/* ---- DKIM keys ---- */

/* Appends to items the keys of domain named by selectors (one a line) with their records; false (answered) when they
 * cannot be read. */
static bool dkim_keys_json(struct call *c, const char *domain, const char *selectors, json_t *items)
{
	struct dkim_domain_key *keys;
	size_t n;
	struct buf err = BUF_INIT;
	int ret = dkim_domain_read(c->api->cfg, domain, selectors, &keys, &n, &err);
	for (size_t i = 0; ret == IX_OK && i < n; i++) {
		const struct dkim_domain_key *k = &keys[i];
		struct buf zone = BUF_INIT;
		dkim_domain_zone(&zone, domain, k, 1);
		if (zone.len > 0)
			zone.data[--zone.len] = '\0'; /* the line's newline */
		char *name = xasprintf("%s._domainkey.%s", k->selector, domain);
		json_array_append_new(items,
				      json_pack("{s:s, s:s, s:s, s:b, s:s, s:s?, s:s}", "domain", domain, "selector",
						k->selector, "algorithm", dkim_alg_name(k->alg), "this_server", k->here,
						"dns_name", name, "txt", k->record, "zone_line", buf_cstr(&zone)));
		free(name);
		buf_free(&zone);
	}
	dkim_domain_keys_free(&keys, n);
	if (ret != IX_OK)
		fail_with(c, ret, &err);
	buf_free(&err);
	return ret == IX_OK;
}

struct dkim_list {
	struct call *c;
	json_t *items;
	bool ok;
};

static void dkim_domain_json(void *ctx, const char *domain, const char *type, const char *const *selectors)
{
	(void)type;
	struct dkim_list *l = ctx;
	struct buf all = BUF_INIT;
	for (size_t i = 0; selectors[i] != NULL; i++)
		buf_printf(&all, "%s%s", i ? "\n" : "", selectors[i]);
	if (l->ok)
		l->ok = dkim_keys_json(l->c, domain, buf_cstr(&all), l->items);
	buf_free(&all);
}

/* GET /dkim: every domain's keys; GET /dkim/DOMAIN: one domain's (any administrative role) */
static void dkim_get(struct call *c, json_t *in)
{
	(void)in;
	if (!require_role(c, PROV_ROLE_VIEW))
		return;
	struct dkim_list l = { c, json_array(), true };
	struct buf err = BUF_INIT, sels = BUF_INIT;
	int ret = IX_OK;
	if (c->nseg == 1) {
		ret = prov_domain_each(c->prov, dkim_domain_json, &l, &err);
	} else {
		ret = prov_domain_dkim_get(c->prov, c->seg[1], &sels, &err);
		if (ret == IX_OK)
			l.ok = dkim_keys_json(c, c->seg[1], buf_cstr(&sels), l.items);
	}
	if (ret != IX_OK)
		fail_with(c, ret, &err);
	else if (l.ok)
		reply_list(c, json_incref(l.items));
	json_decref(l.items);
	buf_free(&err);
	buf_free(&sels);
}

/* POST /dkim/DOMAIN {"rotate": bool}: this server's keys made when it has none, or new ones (Organisation Admins) */
static void dkim_make(struct call *c, json_t *in)
{
	if (!require_role(c, PROV_ROLE_ORG))
		return;
	json_t *rotate = json_object_get(in, "rotate");
	if (rotate != NULL && !json_is_boolean(rotate)) {
		fail(c, 400, "\"rotate\" is true or false");
		return;
	}
	const char *domain = c->seg[1];
	struct buf mine = BUF_INIT, others = BUF_INIT, err = BUF_INIT;
	bool made, replaced;
	int ret = dkim_domain_ensure(c->api->cfg, c->prov, domain, json_is_true(rotate), &made, &replaced, &mine,
				     &others, &err);
	json_t *keys = json_array();
	if (ret != IX_OK)
		fail_with(c, ret, &err);
	else if (dkim_keys_json(c, domain, buf_cstr(&mine), keys))
		reply(c, made ? 201 : 200,
		      json_pack("{s:s, s:b, s:b, s:O}", "domain", domain, "made", made, "replaced", replaced, "keys",
				keys));
	json_decref(keys);
	buf_free(&mine);
	buf_free(&others);
	buf_free(&err);
}

const struct api_route api_admin_routes[] = {
	{ "status", 1, NULL, "GET", status_get },
	{ "metrics", 1, NULL, "GET", metrics_get },
	{ "logs", 1, NULL, "GET", logs_list },
	{ "logs", 2, NULL, "GET", log_get },
	{ "connectors", 1, NULL, "GET", connectors_get },
	{ "connectors", 1, NULL, "POST", connector_add },
	{ "connectors", 2, NULL, "GET", connectors_get },
	{ "connectors", 2, NULL, "DELETE", connector_del },
	{ "sync", 1, NULL, "GET", sync_get },
	{ "sync", 1, NULL, "POST", sync_add },
	{ "sync", 2, NULL, "GET", sync_get },
	{ "sync", 2, NULL, "DELETE", sync_del },
	{ "sync", 3, "run", "POST", sync_run_now },
	{ "dkim", 1, NULL, "GET", dkim_get },
	{ "dkim", 2, NULL, "GET", dkim_get },
	{ "dkim", 2, NULL, "POST", dkim_make },
};
const size_t api_admin_route_count = IX_ARRAY_LEN(api_admin_routes);
