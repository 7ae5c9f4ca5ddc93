/* monitor.h - the facts `interchange status` and the metrics endpoint report: services, directory replica,
 * store size, free disk, certificate expiry, and the warnings drawn from them. Collected by the attendant,
 * rendered three ways (JSON members, text lines, Prometheus text exposition format 0.0.4). */
#ifndef IX_MONITOR_H
#define IX_MONITOR_H

#include "common/buf.h"
#include "common/config.h"

struct dir;

/* Warn when free disk falls below this share (or below the store.disk_warn_free setting), and when the certificate
 * expires within. */
#define MONITOR_DISK_LOW_PERCENT 10
#define MONITOR_CERT_WARN_DAYS 30
/* Warn when the queue holds this many deferred messages, or its oldest message is this old. */
#define MONITOR_QUEUE_WARN_DEFERRED 100
#define MONITOR_QUEUE_WARN_AGE_S 3600
#define MONITOR_MAX_SERVICES 16
#define MONITOR_MAX_SYNC 16

/* A sync source this server follows (docs/sync.md). */
struct monitor_sync {
	char name[64];
	char state[32];                                     /* connecting, refreshing, live, reconnecting */
	long long state_age, last_change_age, last_run_age; /* seconds; -1: none yet */
	unsigned long long changes;
	unsigned reconnects;
	size_t users, disabled, lists, contacts, conflicts, errors;
	char last_error[160];
	/* pass-through sign-in (0: the source has none here): since the attendant started, passwords the source took,
	 * refused, signed in by the cache while it could not be reached, refused then; users with a hash kept */
	int passthrough;
	unsigned long long pt_accepted, pt_refused, pt_cached, pt_unreachable;
	size_t pt_entries;
};

struct monitor_service {
	const char *name;
	const char *state; /* running, backoff, waiting (for slapd), stopped... */
	long pid;          /* 0 unless running */
	long uptime;       /* seconds, 0 unless running */
	unsigned restarts;
	const char *last_exit;     /* "" or how it last ended */
	unsigned failures;         /* its own failures in a row (the restart delay doubles with each) */
	unsigned dependency_exits; /* exits because the directory was not available (not failures) */
	long next_try;             /* in backoff: seconds until the next start; otherwise -1 */
};

struct monitor_facts {
	struct monitor_service services[MONITOR_MAX_SERVICES];
	size_t service_count;
	int replica_ready, replica_connected;
	unsigned long long replica_entries, replica_recipients, replica_changes, replica_reconnects;
	long long replica_last_change_age;               /* seconds since the replica applied a change; -1 if none */
	unsigned long long store_bytes;                  /* disk used by the store folder */
	unsigned long long queue_active, queue_deferred; /* messages in the mail queue */
	long long queue_oldest_age;                      /* seconds; 0 when empty */
	unsigned long long quota_warned;                 /* mailboxes past their quota warning level */
	unsigned long long disk_free, disk_total;        /* of the data folder's file system */
	unsigned long long disk_warn_free;               /* the store.disk_warn_free setting */
	long long cert_days_left;                        /* -1 when the certificate cannot be read */
	char cert_not_after[32];                         /* ISO 8601, or "" */
	/* maintenance */
	long long maint_last_purge, maint_last_check; /* seconds since the epoch; 0: not yet */
	unsigned long long maint_purged;
	unsigned maint_quota_warnings;
	int maint_check_problems; /* -1: no check yet */
	struct monitor_sync sync[MONITOR_MAX_SYNC];
	size_t sync_count;
	char warnings[8][160];
	size_t warning_count;
};

/* Fills everything but the services (which the attendant adds) and then the warnings. dir may be NULL. */
void monitor_collect(const struct config *cfg, struct dir *dir, struct monitor_facts *f);
/* Adds warnings about failed services and the resources (call after the services are filled in). */
void monitor_warnings(struct monitor_facts *f);

/* JSON object members (no braces): "services": [...], "directory": {...}, "store": {...}, "disk": {...},
 * "certificate": {...}, "sync": [...], "warnings": [...] */
void monitor_json(const struct monitor_facts *f, struct buf *out);
/* Human-readable lines for `interchange status`. */
void monitor_text(const struct monitor_facts *f, struct buf *out);
/* Prometheus text format. */
void monitor_prometheus(const struct monitor_facts *f, struct buf *out);
/* Appends s as a JSON string (quoted, escaped). */
void monitor_json_string(struct buf *out, const char *s);

#endif
