/* monitor.c - collects and renders the monitoring facts (see monitor.h). */
#include "attendant/monitor.h"
#include "directory/dir.h"
#include "common/err.h"
#include "common/settings.h"
#include "transport/mta/queue.h"

#include <dirent.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>

/* Disk actually used by the files under path (st_blocks: LMDB files are sparse, their size says little). */
static unsigned long long disk_usage(const char *path, unsigned depth)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	unsigned long long total = (unsigned long long)st.st_blocks * 512ULL;
	if (!S_ISDIR(st.st_mode) || depth > 8)
		return total;
	DIR *d = opendir(path);
	if (d == NULL)
		return total;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *sub = xasprintf("%s/%s", path, e->d_name);
		total += disk_usage(sub, depth + 1);
		free(sub);
	}
	closedir(d);
	return total;
}

static void certificate_expiry(const struct config *cfg, struct monitor_facts *f)
{
	f->cert_days_left = -1;
	f->cert_not_after[0] = '\0';
	char *path = config_path(cfg, "tls/cert.pem");
	FILE *fp = fopen(path, "r");
	free(path);
	if (fp == NULL)
		return;
	X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL)
		return;
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
		time_t t = timegm(&tm);
		f->cert_days_left = ((long long)t - (long long)time(NULL)) / 86400;
		strftime(f->cert_not_after, sizeof(f->cert_not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	X509_free(x);
}

void monitor_collect(const struct config *cfg, struct dir *dir, struct monitor_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->replica_last_change_age = -1;
	f->maint_check_problems = -1;
	if (dir != NULL) {
		struct dir_status ds;
		dir_status(dir, &ds);
		f->replica_ready = ds.ready;
		f->replica_connected = ds.connected;
		f->replica_entries = ds.entries;
		f->replica_recipients = ds.recipients;
		f->replica_changes = ds.changes;
		f->replica_reconnects = ds.reconnects;
		if (ds.last_change_usec > 0) {
			struct timeval tv;
			gettimeofday(&tv, NULL);
			unsigned long long now = (unsigned long long)tv.tv_sec * 1000000ULL +
						 (unsigned long long)tv.tv_usec;
			f->replica_last_change_age = now > ds.last_change_usec
							     ? (long long)((now - ds.last_change_usec) / 1000000)
							     : 0;
		}
	}
	char *store = config_path(cfg, "store");
	f->store_bytes = disk_usage(store, 0);
	free(store);
	struct settings set;
	if (dir == NULL || cfg->server_dn == NULL || dir_server_settings(dir, cfg->server_dn, &set) != IX_OK)
		settings_load(&set, NULL, 0);
	f->disk_warn_free = set.v[SET_STORE_DISK_WARN_FREE];
	struct statvfs vfs;
	if (statvfs(cfg->data_dir, &vfs) == 0) {
		f->disk_free = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
		f->disk_total = (unsigned long long)vfs.f_blocks * vfs.f_frsize;
	}
	certificate_expiry(cfg, f);
	struct queue_stats qs;
	struct buf err = BUF_INIT;
	char *qdir = config_path(cfg, "queue");
	if (queue_stats(qdir, (long long)time(NULL), &qs, &err) == 0) {
		f->queue_active = qs.active;
		f->queue_deferred = qs.deferred;
		f->queue_oldest_age = qs.oldest_age;
	}
	free(qdir);
	buf_free(&err);
}

static void warn(struct monitor_facts *f, const char *fmt, ...) IX_PRINTF(2, 3);
static void warn(struct monitor_facts *f, const char *fmt, ...)
{
	if (f->warning_count == IX_ARRAY_LEN(f->warnings))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->warnings[f->warning_count++], sizeof(f->warnings[0]), fmt, ap);
	va_end(ap);
}

void monitor_warnings(struct monitor_facts *f)
{
	for (size_t i = 0; i < f->service_count; i++) {
		const struct monitor_service *s = &f->services[i];
		if (strcmp(s->state, "backoff") == 0)
			warn(f, "%s is restarting in %lds (%u failures in a row; last: %s)", s->name, s->next_try,
			     s->failures, s->last_exit[0] ? s->last_exit : "unknown");
		else if (strcmp(s->state, "waiting") == 0)
			warn(f, "%s waits for the directory (slapd) to start it again (last: %s)", s->name,
			     s->last_exit[0] ? s->last_exit : "unknown");
		else if (strcmp(s->state, "running") != 0)
			warn(f, "%s is %s", f->services[i].name, f->services[i].state);
	}
	if (f->disk_total > 0 &&
	    (f->disk_free < f->disk_warn_free || f->disk_free * 100 / f->disk_total < MONITOR_DISK_LOW_PERCENT))
		warn(f, "disk low: %llu MiB free of %llu MiB (mail is refused with 451 once it is full)",
		     f->disk_free >> 20, f->disk_total >> 20);
	if (f->cert_days_left < 0)
		warn(f, "the TLS certificate cannot be read");
	else if (f->cert_days_left < MONITOR_CERT_WARN_DAYS)
		warn(f, "the TLS certificate expires in %lld days (%s)", f->cert_days_left, f->cert_not_after);
	if (!f->replica_connected)
		warn(f, "the attendant's directory replica is not connected");
	if (f->queue_deferred >= MONITOR_QUEUE_WARN_DEFERRED || f->queue_oldest_age >= MONITOR_QUEUE_WARN_AGE_S)
		warn(f,
		     "the mail queue is backing up: %llu deferred, the oldest %lld minutes old (see interchange queue)",
		     f->queue_deferred, f->queue_oldest_age / 60);
	if (f->quota_warned > 0)
		warn(f, "%llu mailboxes are over their quota warning level", f->quota_warned);
	if (f->maint_check_problems > 0)
		warn(f, "the last store check found %d problems: run 'interchange store check --repair'",
		     f->maint_check_problems);
	for (size_t i = 0; i < f->sync_count; i++) {
		const struct monitor_sync *s = &f->sync[i];
		if (strcmp(s->state, "reconnecting") == 0)
			warn(f, "sync source %s cannot be read (%s); trying again", s->name, s->last_error);
		if (s->conflicts + s->errors > 0)
			warn(f, "sync source %s: %zu conflicts, %zu errors (see 'interchange sync show %s')", s->name,
			     s->conflicts, s->errors, s->name);
	}
}

void monitor_json_string(struct buf *out, const char *s)
{
	buf_append_char(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(out, "\\%c", *p);
		else if (*p < 0x20)
			buf_printf(out, "\\u%04x", *p);
		else
			buf_append_char(out, (char)*p);
	}
	buf_append_char(out, '"');
}

void monitor_json(const struct monitor_facts *f, struct buf *out)
{
	buf_append_str(out, "\"services\": [");
	for (size_t i = 0; i < f->service_count; i++) {
		const struct monitor_service *s = &f->services[i];
		buf_printf(out, "%s{\"name\": ", i ? ", " : "");
		monitor_json_string(out, s->name);
		buf_append_str(out, ", \"state\": ");
		monitor_json_string(out, s->state);
		buf_printf(out, ", \"pid\": %ld, \"uptime\": %ld, \"restarts\": %u, \"last_exit\": ", s->pid, s->uptime,
			   s->restarts);
		monitor_json_string(out, s->last_exit);
		buf_printf(out, ", \"failures\": %u, \"dependency_exits\": %u, \"next_try\": %ld}", s->failures,
			   s->dependency_exits, s->next_try);
	}
	buf_printf(out,
		   "], \"directory\": {\"replica_ready\": %s, \"replica_connected\": %s, \"entries\": %llu, "
		   "\"recipients\": %llu, \"changes\": %llu, \"reconnects\": %llu, \"last_change_age\": %lld}",
		   f->replica_ready ? "true" : "false", f->replica_connected ? "true" : "false", f->replica_entries,
		   f->replica_recipients, f->replica_changes, f->replica_reconnects, f->replica_last_change_age);
	buf_printf(out,
		   ", \"store\": {\"bytes\": %llu, \"quota_warned\": %llu}, \"disk\": {\"free_bytes\": %llu, "
		   "\"total_bytes\": %llu}",
		   f->store_bytes, f->quota_warned, f->disk_free, f->disk_total);
	buf_printf(out, ", \"queue\": {\"active\": %llu, \"deferred\": %llu, \"oldest_age\": %lld}", f->queue_active,
		   f->queue_deferred, f->queue_oldest_age);
	buf_printf(out,
		   ", \"maintenance\": {\"last_purge\": %lld, \"last_check\": %lld, \"purged\": %llu, "
		   "\"quota_warnings\": %u, \"check_problems\": %d}",
		   f->maint_last_purge, f->maint_last_check, f->maint_purged, f->maint_quota_warnings,
		   f->maint_check_problems);
	buf_printf(out, ", \"certificate\": {\"not_after\": ");
	monitor_json_string(out, f->cert_not_after);
	buf_printf(out, ", \"days_left\": %lld}, \"sync\": [", f->cert_days_left);
	for (size_t i = 0; i < f->sync_count; i++) {
		const struct monitor_sync *s = &f->sync[i];
		buf_append_str(out, i ? ", {\"name\": " : "{\"name\": ");
		monitor_json_string(out, s->name);
		buf_append_str(out, ", \"state\": ");
		monitor_json_string(out, s->state);
		buf_printf(
			out,
			", \"state_age\": %lld, \"last_change_age\": %lld, \"last_run_age\": %lld, \"changes\": %llu, "
			"\"reconnects\": %u, \"users\": %zu, \"disabled\": %zu, \"lists\": %zu, \"contacts\": %zu, "
			"\"conflicts\": %zu, \"errors\": %zu, \"last_error\": ",
			s->state_age, s->last_change_age, s->last_run_age, s->changes, s->reconnects, s->users,
			s->disabled, s->lists, s->contacts, s->conflicts, s->errors);
		monitor_json_string(out, s->last_error);
		if (s->passthrough)
			buf_printf(out,
				   ", \"passthrough\": {\"accepted\": %llu, \"refused\": %llu, \"cached\": %llu, "
				   "\"unreachable\": %llu, \"cache_entries\": %zu}",
				   s->pt_accepted, s->pt_refused, s->pt_cached, s->pt_unreachable, s->pt_entries);
		else
			buf_append_str(out, ", \"passthrough\": null");
		buf_append_char(out, '}');
	}
	buf_append_str(out, "], \"warnings\": [");
	for (size_t i = 0; i < f->warning_count; i++) {
		if (i)
			buf_append_str(out, ", ");
		monitor_json_string(out, f->warnings[i]);
	}
	buf_append_char(out, ']');
}

static void duration(long s, char *out, size_t len)
{
	if (s < 60)
		snprintf(out, len, "%lds", s);
	else if (s < 3600)
		snprintf(out, len, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

void monitor_text(const struct monitor_facts *f, struct buf *out)
{
	buf_printf(out, "  %-12s %-9s %-8s %-9s %s\n", "SERVICE", "STATE", "PID", "UPTIME", "RESTARTS");
	for (size_t i = 0; i < f->service_count; i++) {
		const struct monitor_service *s = &f->services[i];
		char up[32] = "-";
		if (s->pid > 0)
			duration(s->uptime, up, sizeof(up));
		char next[48] = "";
		if (s->next_try >= 0)
			snprintf(next, sizeof(next), "  next try in %lds", s->next_try);
		buf_printf(out, "  %-12s %-9s %-8ld %-9s %u%s%s%s\n", s->name, s->state, s->pid, up, s->restarts, next,
			   s->last_exit[0] ? "  last: " : "", s->last_exit);
	}
	buf_printf(out, "  replica    %s, %llu recipients, %llu changes, %llu reconnects\n",
		   f->replica_connected ? "connected" : "disconnected", f->replica_recipients, f->replica_changes,
		   f->replica_reconnects);
	buf_printf(out, "  store      %.1f MiB on disk; %.1f GiB free of %.1f GiB\n",
		   (double)f->store_bytes / 1048576.0, (double)f->disk_free / 1073741824.0,
		   (double)f->disk_total / 1073741824.0);
	buf_printf(out, "  queue      %llu active, %llu deferred%s", f->queue_active, f->queue_deferred,
		   f->queue_active + f->queue_deferred > 0 ? "" : "\n");
	if (f->queue_active + f->queue_deferred > 0)
		buf_printf(out, ", oldest %llds\n", f->queue_oldest_age);
	if (f->cert_days_left >= 0)
		buf_printf(out, "  tls        certificate valid until %s (%lld days)\n", f->cert_not_after,
			   f->cert_days_left);
	for (size_t i = 0; i < f->sync_count; i++) {
		const struct monitor_sync *s = &f->sync[i];
		char age[32] = "none yet";
		if (s->last_change_age >= 0) {
			duration((long)s->last_change_age, age, sizeof(age));
			strcat(age, " ago");
		}
		buf_printf(
			out,
			"  sync       %s: %s, %zu users (%zu disabled), %zu lists, %zu contacts; %llu changes applied, "
			"the last %s; %zu conflicts, %zu errors\n",
			s->name, s->state, s->users, s->disabled, s->lists, s->contacts, s->changes, age, s->conflicts,
			s->errors);
	}
	for (size_t i = 0; i < f->warning_count; i++)
		buf_printf(out, "  WARNING    %s\n", f->warnings[i]);
}

void monitor_prometheus(const struct monitor_facts *f, struct buf *out)
{
	buf_append_str(out, "# HELP interchange_service_up Whether the service is running (1) or not (0).\n"
			    "# TYPE interchange_service_up gauge\n");
	for (size_t i = 0; i < f->service_count; i++)
		buf_printf(out, "interchange_service_up{service=\"%s\",state=\"%s\"} %d\n", f->services[i].name,
			   f->services[i].state, strcmp(f->services[i].state, "running") == 0);
	static const struct {
		const char *name, *type, *help;
		size_t off; /* of the value in struct monitor_service */
		int is_long;
	} per_service[] = {
		{ "interchange_service_restarts_total", "counter", "Restarts since the attendant started.",
		  offsetof(struct monitor_service, restarts), 0 },
		{ "interchange_service_failures", "gauge",
		  "Failures of the service in a row (the restart delay doubles with each; a run as long as the ceiling "
		  "ends the row).",
		  offsetof(struct monitor_service, failures), 0 },
		{ "interchange_service_dependency_exits_total", "counter",
		  "Exits because the directory was not available (not failures).",
		  offsetof(struct monitor_service, dependency_exits), 0 },
		{ "interchange_service_next_try_seconds", "gauge",
		  "Seconds until a service in backoff is started again (-1: not waiting).",
		  offsetof(struct monitor_service, next_try), 1 },
		{ "interchange_service_uptime_seconds", "gauge", "Seconds since the service started.",
		  offsetof(struct monitor_service, uptime), 1 },
	};
	for (size_t m = 0; m < IX_ARRAY_LEN(per_service); m++) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", per_service[m].name, per_service[m].help,
			   per_service[m].name, per_service[m].type);
		for (size_t i = 0; i < f->service_count; i++) {
			const char *field = (const char *)&f->services[i] + per_service[m].off;
			long long v;
			if (per_service[m].is_long) {
				long l;
				memcpy(&l, field, sizeof(l));
				v = l;
			} else {
				unsigned u;
				memcpy(&u, field, sizeof(u));
				v = u;
			}
			buf_printf(out, "%s{service=\"%s\"} %lld\n", per_service[m].name, f->services[i].name, v);
		}
	}
	buf_printf(out,
		   "# HELP interchange_replica_connected Whether the directory replica's sync session is up.\n"
		   "# TYPE interchange_replica_connected gauge\ninterchange_replica_connected %d\n"
		   "# HELP interchange_replica_recipients Recipients held by the replica.\n"
		   "# TYPE interchange_replica_recipients gauge\ninterchange_replica_recipients %llu\n"
		   "# HELP interchange_replica_changes_total Directory changes applied by the replica.\n"
		   "# TYPE interchange_replica_changes_total counter\ninterchange_replica_changes_total %llu\n"
		   "# HELP interchange_store_bytes Disk used by the information store.\n"
		   "# TYPE interchange_store_bytes gauge\ninterchange_store_bytes %llu\n"
		   "# HELP interchange_disk_free_bytes Free space on the data folder's file system.\n"
		   "# TYPE interchange_disk_free_bytes gauge\ninterchange_disk_free_bytes %llu\n"
		   "# HELP interchange_certificate_days_left Days until the TLS certificate expires.\n"
		   "# TYPE interchange_certificate_days_left gauge\ninterchange_certificate_days_left %lld\n"
		   "# HELP interchange_queue_messages Messages in the mail queue, by state.\n"
		   "# TYPE interchange_queue_messages gauge\ninterchange_queue_messages{state=\"active\"} %llu\n"
		   "interchange_queue_messages{state=\"deferred\"} %llu\n"
		   "# HELP interchange_queue_oldest_seconds Age of the oldest queued message.\n"
		   "# TYPE interchange_queue_oldest_seconds gauge\ninterchange_queue_oldest_seconds %lld\n"
		   "# HELP interchange_quota_warned_mailboxes Mailboxes past their quota warning level.\n"
		   "# TYPE interchange_quota_warned_mailboxes gauge\ninterchange_quota_warned_mailboxes %llu\n"
		   "# HELP interchange_warnings Current warnings (see interchange status).\n"
		   "# TYPE interchange_warnings gauge\ninterchange_warnings %zu\n",
		   f->replica_connected, f->replica_recipients, f->replica_changes, f->store_bytes, f->disk_free,
		   f->cert_days_left, f->queue_active, f->queue_deferred, f->queue_oldest_age, f->quota_warned,
		   f->warning_count);
	if (f->sync_count == 0)
		return;
	static const struct {
		const char *name, *type, *help;
	} per_sync[] = {
		{ "interchange_sync_up", "gauge", "Whether the sync source's session is live (1) or not (0)." },
		{ "interchange_sync_changes_total", "counter", "Changes from the sync source applied since start." },
		{ "interchange_sync_reconnects_total", "counter", "Sessions with the sync source lost since start." },
		{ "interchange_sync_last_change_seconds", "gauge", "Seconds since a change was applied (-1: none)." },
		{ "interchange_sync_recipients", "gauge", "Recipients from the sync source, by kind." },
		{ "interchange_sync_conflicts", "gauge", "Conflicts the sync source has (see interchange sync show)." },
		{ "interchange_sync_errors", "gauge", "Errors of the sync source (see interchange sync show)." },
	};
	for (size_t m = 0; m < IX_ARRAY_LEN(per_sync); m++) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", per_sync[m].name, per_sync[m].help, per_sync[m].name,
			   per_sync[m].type);
		for (size_t i = 0; i < f->sync_count; i++) {
			const struct monitor_sync *s = &f->sync[i];
			const char *n = per_sync[m].name;
			if (m == 4) {
				buf_printf(
					out,
					"%s{source=\"%s\",kind=\"users\"} %zu\n%s{source=\"%s\",kind=\"disabled\"} %zu\n"
					"%s{source=\"%s\",kind=\"lists\"} %zu\n%s{source=\"%s\",kind=\"contacts\"} %zu\n",
					n, s->name, s->users, n, s->name, s->disabled, n, s->name, s->lists, n, s->name,
					s->contacts);
				continue;
			}
			long long v = m == 0   ? strcmp(s->state, "live") == 0
				      : m == 1 ? (long long)s->changes
				      : m == 2 ? (long long)s->reconnects
				      : m == 3 ? s->last_change_age
				      : m == 5 ? (long long)s->conflicts
					       : (long long)s->errors;
			buf_printf(out, "%s{source=\"%s\"} %lld\n", n, s->name, v);
		}
	}
	buf_append_str(out,
		       "# HELP interchange_sync_passthrough_signins_total Pass-through sign-ins since start, by "
		       "result: accepted or refused by the source, cached (signed in by the cache while the source "
		       "could not be reached), unreachable (refused then).\n"
		       "# TYPE interchange_sync_passthrough_signins_total counter\n");
	for (size_t i = 0; i < f->sync_count; i++) {
		const struct monitor_sync *s = &f->sync[i];
		const char *n = "interchange_sync_passthrough_signins_total";
		if (s->passthrough)
			buf_printf(out,
				   "%s{source=\"%s\",result=\"accepted\"} %llu\n%s{source=\"%s\",result=\"refused\"} "
				   "%llu\n%s{source=\"%s\",result=\"cached\"} %llu\n"
				   "%s{source=\"%s\",result=\"unreachable\"} %llu\n",
				   n, s->name, s->pt_accepted, n, s->name, s->pt_refused, n, s->name, s->pt_cached, n,
				   s->name, s->pt_unreachable);
	}
	buf_append_str(out, "# HELP interchange_sync_passthrough_cache_entries Users of the pass-through source with a "
			    "hash kept in the cache of successes.\n"
			    "# TYPE interchange_sync_passthrough_cache_entries gauge\n");
	for (size_t i = 0; i < f->sync_count; i++) {
		if (f->sync[i].passthrough)
			buf_printf(out, "interchange_sync_passthrough_cache_entries{source=\"%s\"} %zu\n",
				   f->sync[i].name, f->sync[i].pt_entries);
	}
}
