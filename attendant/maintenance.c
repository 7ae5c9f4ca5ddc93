/* maintenance.c - scheduled housekeeping run by the attendant (see maintenance.h). Settings come from this
 * server's directory entry (retention days, quiet hour, default quotas); the store is opened for each run and
 * closed after, so the attendant holds no LMDB handle across the services it forks. */
#include "attendant/maintenance.h"
#include "directory/dir.h"
#include "common/err.h"
#include "common/log.h"
#include "common/settings.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

void maintenance_init(struct maintenance *m)
{
	memset(m, 0, sizeof(*m));
	m->check_problems = -1;
}

void maintenance_free(struct maintenance *m)
{
	free(m->warned_guid);
	free(m->warned_at);
	memset(m, 0, sizeof(*m));
}

/* This server's settings, from the attendant's replica (defaults without one). */
static void load_settings(const struct config *cfg, struct dir *dir, struct settings *st)
{
	if (dir == NULL || dir_server_settings(dir, cfg->server_dn, st) != IX_OK)
		settings_load(st, NULL, 0);
}

static struct store *open_store(const struct config *cfg, struct maintenance *m)
{
	struct store *st = NULL;
	char *path = config_path(cfg, "store");
	struct buf err = BUF_INIT;
	if (store_open(path, NULL, &st, &err) != IX_OK) {
		snprintf(m->last_error, sizeof(m->last_error), "cannot open the store: %s", buf_cstr(&err));
		log_error("maintenance: %s", m->last_error);
		st = NULL;
	}
	buf_free(&err);
	free(path);
	return st;
}

static void purge(struct maintenance *m, const struct config *cfg, const struct settings *set, time_t now)
{
	struct store *st = open_store(cfg, m);
	if (st == NULL)
		return;
	size_t count = 0;
	struct buf err = BUF_INIT;
	int64_t older = (int64_t)now - (int64_t)set->v[SET_STORE_RETENTION_DAYS] * 86400;
	if (store_retention_purge(st, NULL, older, &count, &err) != IX_OK) {
		snprintf(m->last_error, sizeof(m->last_error), "retention purge: %s", buf_cstr(&err));
		log_error("maintenance: %s", m->last_error);
	} else if (count > 0) {
		log_info("maintenance: purged %zu deleted items past %llu days of retention", count,
			 set->v[SET_STORE_RETENTION_DAYS]);
	}
	m->purged_total += count;
	m->last_purge = now;
	buf_free(&err);
	store_close(&st);
}

void maintenance_quota_message(const char *domain, const char *to_name, const char *to_addr, unsigned long long used,
			       unsigned long long limit, time_t now, struct buf *out)
{
	char date[64];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	unsigned pct = limit > 0 ? (unsigned)(used * 100 / limit) : 0;
	buf_printf(out,
		   "From: System Attendant <postmaster@%s>\r\nTo: %s <%s>\r\nSubject: Your mailbox is almost full\r\n"
		   "Date: %s\r\nMessage-ID: <quota.%lld.%s@%s>\r\nMIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=utf-8\r\nAuto-Submitted: auto-generated\r\n\r\n"
		   "Your mailbox uses %llu KB of its %llu KB limit (%u%%).\r\n\r\n"
		   "When it is full, new mail is refused. Delete messages you no longer need, or empty\r\n"
		   "Deleted Items and Junk, to make room.\r\n",
		   domain, to_name, to_addr, date, (long long)now, to_addr, domain, used / 1024, limit / 1024, pct);
}

struct guid_lookup {
	const char *guid;
	char *name, *addr;
	long long quota_bytes;
};

static void find_guid(void *ctx, const struct dir_recipient *r)
{
	struct guid_lookup *g = ctx;
	if (g->name == NULL && r->mailbox_guid != NULL && strcasecmp(r->mailbox_guid, g->guid) == 0 &&
	    r->primary_address != NULL) {
		g->name = xstrdup(r->display_name != NULL ? r->display_name : r->primary_address);
		g->addr = xstrdup(r->primary_address);
		g->quota_bytes = r->quota_bytes;
	}
}

bool maintenance_import_running(const struct config *cfg, const char *guid)
{
	char rel[64];
	snprintf(rel, sizeof(rel), MAINT_IMPORT_LOCK, guid);
	char *path = config_path(cfg, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) != 0;
	close(fd);
	return held;
}

static void quota_warnings(struct maintenance *m, const struct config *cfg, struct dir *dir, const struct settings *set,
			   time_t now)
{
	m->last_quota = now;
	if (dir == NULL)
		return;
	struct store *st = open_store(cfg, m);
	if (st == NULL)
		return;
	struct buf list = BUF_INIT, err = BUF_INIT;
	if (store_quota_warned(st, &list, &err) != IX_OK) {
		log_error("maintenance: quota warnings: %s", buf_cstr(&err));
		goto out;
	}
	m->quota_warned_now = 0;
	for (size_t i = 0; i < list.len; i++)
		m->quota_warned_now += list.data[i] == '\n';
	if (list.len == 0)
		goto out;
	for (char *save = NULL, *guid = strtok_r(list.data, "\n", &save); guid != NULL;
	     guid = strtok_r(NULL, "\n", &save)) {
		size_t i;
		for (i = 0; i < m->warned_count; i++)
			if (strcasecmp(m->warned_guid[i], guid) == 0)
				break;
		if (i < m->warned_count && now - m->warned_at[i] < MAINT_QUOTA_REPEAT_S)
			continue;
		if (maintenance_import_running(cfg, guid))
			continue; /* the import's own messages: warned once it ends */
		struct guid_lookup g = { guid, NULL, NULL, 0 };
		dir_foreach_recipient(dir, find_guid, &g);
		if (g.addr == NULL)
			continue; /* no user owns it (any more): not ours to warn */
		struct store_quota_use use;
		unsigned long long limit = g.quota_bytes > 0 ? (unsigned long long)g.quota_bytes
							     : set->v[SET_STORE_QUOTA_BYTES];
		if (store_quota_get(st, guid, &use, &err) == IX_OK) {
			struct buf msg = BUF_INIT;
			maintenance_quota_message(cfg->domain, g.name, g.addr, use.bytes, limit, now, &msg);
			struct store_target t = { .guid = guid };
			struct store_append req = { .data = msg.data, .len = msg.len, .targets = &t, .ntargets = 1 };
			if (store_append(st, &req, &err) == IX_OK) {
				log_info("maintenance: warned %s that the mailbox is almost full", g.addr);
				m->quota_warnings_sent++;
				if (i == m->warned_count && m->warned_count < MAINT_MAX_WARNED) {
					m->warned_guid = xrealloc(m->warned_guid,
								  (m->warned_count + 1) * sizeof(*m->warned_guid));
					m->warned_at = xrealloc(m->warned_at,
								(m->warned_count + 1) * sizeof(*m->warned_at));
					snprintf(m->warned_guid[i], sizeof(m->warned_guid[i]), "%s", guid);
					m->warned_count++;
				}
				if (i < m->warned_count)
					m->warned_at[i] = now;
			} else {
				log_warn("maintenance: could not warn %s: %s", g.addr, buf_cstr(&err));
			}
			buf_free(&msg);
		}
		buf_reset(&err);
		free(g.name);
		free(g.addr);
	}
out:
	buf_free(&list);
	buf_free(&err);
	store_close(&st);
}

static void check(struct maintenance *m, const struct config *cfg, time_t now)
{
	m->last_check = now;
	struct store *st = open_store(cfg, m);
	if (st == NULL)
		return;
	struct buf report = BUF_INIT, err = BUF_INIT;
	unsigned problems = 0;
	if (store_check(st, 0, &report, &problems, &err) != IX_OK) {
		log_error("maintenance: store check failed: %s", buf_cstr(&err));
	} else {
		m->check_problems = (int)problems;
		if (problems > 0)
			log_warn("maintenance: store check found %u problems: run 'interchange store check --repair'",
				 problems);
		else
			log_info("maintenance: store check clean");
	}
	buf_free(&report);
	buf_free(&err);
	store_close(&st);
}

struct owned {
	char (*guids)[33];
	size_t n;
	const char *server_dn; /* this server: a mailbox homed elsewhere counts as owned here only until moved */
	char (*moved)[33];     /* mailboxes homed on another server */
	size_t nmoved;
};

static void collect_guid(void *ctx, const struct dir_recipient *r)
{
	struct owned *o = ctx;
	if (r->mailbox_guid == NULL)
		return;
	if (r->home_server_dn != NULL && o->server_dn != NULL && strcasecmp(r->home_server_dn, o->server_dn) != 0) {
		o->moved = xrealloc(o->moved, (o->nmoved + 1) * sizeof(*o->moved));
		snprintf(o->moved[o->nmoved++], sizeof(o->moved[0]), "%s", r->mailbox_guid);
		return;
	}
	o->guids = xrealloc(o->guids, (o->n + 1) * sizeof(*o->guids));
	snprintf(o->guids[o->n++], sizeof(o->guids[0]), "%s", r->mailbox_guid);
}

/* A mailbox stays while a user homed here owns it, or one homed elsewhere whose copy here was not left frozen by
 * `interchange user move` nor marked incomplete by one that failed here (a home server changed by hand: its mail
 * here must not be lost). */
static int owned_by_someone(const struct owned *o, struct store *st, const char *guid)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcasecmp(o->guids[i], guid) == 0)
			return 1;
	for (size_t i = 0; i < o->nmoved; i++) {
		if (strcasecmp(o->moved[i], guid) == 0) {
			int frozen = 0, incomplete = 0;
			if (store_mailbox_frozen(st, guid, &frozen, NULL, NULL) != IX_OK ||
			    store_mailbox_marked(st, guid, STORE_MARK_INCOMPLETE, &incomplete, NULL) != IX_OK)
				return 1;
			return !frozen && !incomplete;
		}
	}
	return 0;
}

/* Mailboxes whose user was deleted: noted the first time they are seen without an owner, removed once the grace
 * period has passed. Never acts on a replica that is not complete (a missing user is then no evidence). */
static void orphans(struct maintenance *m, const struct config *cfg, struct dir *dir, const struct settings *set,
		    time_t now)
{
	m->last_orphans = now;
	struct dir_status ds;
	if (dir == NULL)
		return;
	dir_status(dir, &ds);
	if (!ds.ready || !ds.connected)
		return;
	struct owned o = { .server_dn = cfg->server_dn };
	dir_foreach_recipient(dir, collect_guid, &o);
	struct store *st = open_store(cfg, m);
	if (st == NULL) {
		free(o.guids);
		free(o.moved);
		return;
	}
	struct buf list = BUF_INIT, err = BUF_INIT, keep = BUF_INIT;
	char *path = config_path(cfg, MAINT_ORPHANS_FILE), *old = NULL;
	if (read_file(path, 16 * 1024 * 1024, &old, NULL) < 0)
		old = NULL;
	if (store_mailboxes(st, &list, &err) == IX_OK && list.len > 0) {
		for (char *save = NULL, *guid = strtok_r(list.data, "\n", &save); guid != NULL;
		     guid = strtok_r(NULL, "\n", &save)) {
			if (strcmp(guid, STORE_PUBLIC_GUID) == 0 || owned_by_someone(&o, st, guid))
				continue;
			long long since = (long long)now;
			const char *seen = old != NULL ? strstr(old, guid) : NULL;
			if (seen != NULL && seen[32] == ' ')
				since = strtoll(seen + 33, NULL, 10);
			if (now - since >= (long long)set->v[SET_MAINT_ORPHAN_GRACE_DAYS] * 86400) {
				buf_reset(&err);
				if (store_mailbox_delete(st, guid, &err) == IX_OK) {
					m->orphans_removed++;
					log_info(
						"maintenance: removed mailbox %s, whose user was deleted or moved away more than %llu days ago",
						guid, set->v[SET_MAINT_ORPHAN_GRACE_DAYS]);
				} else {
					log_warn("maintenance: could not remove mailbox %s: %s", guid, buf_cstr(&err));
					buf_printf(&keep, "%s %lld\n", guid, since);
				}
			} else {
				buf_printf(&keep, "%s %lld\n", guid, since);
			}
		}
	}
	if (write_file_atomic(path, keep.data != NULL ? keep.data : "", keep.len, 0640) < 0)
		log_warn("maintenance: cannot write %s", path);
	free(path);
	free(old);
	free(o.guids);
	free(o.moved);
	buf_free(&list);
	buf_free(&err);
	buf_free(&keep);
	store_close(&st);
}

void maintenance_tick(struct maintenance *m, const struct config *cfg, struct dir *dir, time_t now)
{
	struct settings set;
	int loaded = 0;
	if (now - m->last_purge >= MAINT_PURGE_INTERVAL_S) {
		load_settings(cfg, dir, &set);
		loaded = 1;
		purge(m, cfg, &set, now);
	}
	if (now - m->last_quota >= MAINT_QUOTA_INTERVAL_S) {
		if (!loaded)
			load_settings(cfg, dir, &set);
		loaded = 1;
		quota_warnings(m, cfg, dir, &set, now);
	}
	if (now - m->last_orphans >= MAINT_ORPHAN_INTERVAL_S) {
		if (!loaded)
			load_settings(cfg, dir, &set);
		loaded = 1;
		orphans(m, cfg, dir, &set, now);
	}
	struct tm tm;
	gmtime_r(&now, &tm);
	if (now - m->last_check >= 23 * 3600) {
		if (!loaded)
			load_settings(cfg, dir, &set);
		if ((unsigned long long)tm.tm_hour == set.v[SET_MAINT_CHECK_HOUR])
			check(m, cfg, now);
	}
}

void maintenance_run_all(struct maintenance *m, const struct config *cfg, struct dir *dir, time_t now)
{
	struct settings set;
	load_settings(cfg, dir, &set);
	purge(m, cfg, &set, now);
	quota_warnings(m, cfg, dir, &set, now);
	orphans(m, cfg, dir, &set, now);
	check(m, cfg, now);
}
