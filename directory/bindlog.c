/* bindlog.c - the follower of cn=accesslog that logs failed LDAP binds: libldap's ldap_sync_* API on its own thread,
 * a cap on lines per second with the rest counted, resumption after the last record seen. */
#include "directory/bindlog.h"
#include "directory/ldap_util.h"
#include "directory/slapd.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <ldap.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

/* A generalizedTime with microseconds as the access log writes reqStart: 20261207072055.511266Z. */
#define BINDLOG_TIME_MAX 32
#define BINDLOG_RETRY_MS 1000

struct bindlog {
	const struct config *cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	int fd;                       /* the session's socket while one runs (shut down to stop it), else -1 */
	char since[BINDLOG_TIME_MAX]; /* reqStart of the last record seen ("" at first: from the start time) */
	char start[BINDLOG_TIME_MAX]; /* the time the follower started, as reqStart */
	time_t second;                /* the wall-clock second being counted */
	unsigned logged, suppressed;  /* lines in that second, failures not logged in it */
};

static bool stopping(struct bindlog *bl)
{
	pthread_mutex_lock(&bl->lock);
	bool s = bl->stop;
	pthread_mutex_unlock(&bl->lock);
	return s;
}

/* Says how many failures the cap held back once their second is over. now is the log's own clock
 * (gettimeofday): time(2) reads a coarser clock that can still say the previous second when gettimeofday has
 * moved on, which would count a line in one second and stamp it in the next. */
static void flush_second(struct bindlog *bl, const struct timeval *now)
{
	if (now->tv_sec <= bl->second)
		return;
	if (bl->suppressed > 0)
		log_warn("%u more failed LDAP binds in one second were not logged one by one (at most %d a second)",
			 bl->suppressed, BINDLOG_MAX_PER_SECOND);
	bl->second = now->tv_sec;
	bl->logged = bl->suppressed = 0;
}

/* "20261207072055.810615Z" as "2026-12-07 07:20:55 UTC" (the text itself when it is not such a time). */
static void human_time(const char *gt, char *out, size_t size)
{
	if (strlen(gt) >= 14 && strspn(gt, "0123456789") >= 14)
		snprintf(out, size, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s UTC", gt, gt + 4, gt + 6, gt + 8, gt + 10, gt + 12);
	else
		snprintf(out, size, "%s", gt);
}

/* The time of a pwdFailureTime addition among the record's reqMod values ("pwdFailureTime:+ TIME"), or NULL. */
static const char *failure_time(struct berval **mods)
{
	static const char prefix[] = "pwdFailureTime:+ ";
	for (size_t i = 0; mods != NULL && mods[i] != NULL; i++) {
		if (mods[i]->bv_len > sizeof(prefix) - 1 &&
		    strncasecmp(mods[i]->bv_val, prefix, sizeof(prefix) - 1) == 0)
			return mods[i]->bv_val + sizeof(prefix) - 1;
	}
	return NULL;
}

static int on_entry(ldap_sync_t *ls, LDAPMessage *msg, struct berval *uuid, ldap_sync_refresh_t phase)
{
	(void)uuid;
	struct bindlog *bl = ls->ls_private;
	if (phase == LDAP_SYNC_CAPI_DELETE)
		return LDAP_SUCCESS; /* a purged record */
	struct berval **start = ldap_get_values_len(ls->ls_ld, msg, "reqStart");
	struct berval **dn = ldap_get_values_len(ls->ls_ld, msg, "reqDN");
	struct berval **mods = ldap_get_values_len(ls->ls_ld, msg, "reqMod");
	const char *when = failure_time(mods);
	/* the record the last session ended with comes again when the next one resumes from it */
	if (start != NULL && start[0] != NULL && dn != NULL && dn[0] != NULL && when != NULL &&
	    start[0]->bv_len < BINDLOG_TIME_MAX && strcmp(start[0]->bv_val, bl->since) != 0) {
		if (strcmp(start[0]->bv_val, bl->since) > 0)
			snprintf(bl->since, sizeof(bl->since), "%s", start[0]->bv_val);
		/* the line is stamped with the time it was counted at, so that no line counted in one second
		 * shows in the next, whose own cap is then still whole */
		struct timeval now;
		gettimeofday(&now, NULL);
		flush_second(bl, &now);
		if (bl->logged < BINDLOG_MAX_PER_SECOND) {
			char human[64];
			human_time(when, human, sizeof(human));
			log_warn_at(&now, "failed LDAP bind as %.*s at %s", (int)dn[0]->bv_len, dn[0]->bv_val, human);
			bl->logged++;
		} else {
			bl->suppressed++;
		}
	}
	ldap_value_free_len(start);
	ldap_value_free_len(dn);
	ldap_value_free_len(mods);
	return LDAP_SUCCESS;
}

/* Runs one session on ld (which it consumes) until it breaks or the follower stops. */
static void run_session(struct bindlog *bl, LDAP *ld)
{
	ldap_sync_t ls;
	ldap_sync_initialize(&ls);
	/* ldap_sync_destroy frees these with ldap_memfree, so they come from libldap's allocator */
	ls.ls_base = ldap_strdup(SLAPD_ACCESSLOG_SUFFIX);
	ls.ls_scope = LDAP_SCOPE_ONELEVEL;
	char filter[160];
	snprintf(filter, sizeof(filter), "(&(objectClass=auditModify)(reqStart>=%s)(reqMod=pwdFailureTime:+*))",
		 bl->since[0] != '\0' ? bl->since : bl->start);
	ls.ls_filter = ldap_strdup(filter);
	static const char *const attrs[] = { "reqStart", "reqDN", "reqMod" };
	ls.ls_attrs = ldap_memcalloc(IX_ARRAY_LEN(attrs) + 1, sizeof(char *));
	for (size_t i = 0; i < IX_ARRAY_LEN(attrs); i++)
		ls.ls_attrs[i] = ldap_strdup(attrs[i]);
	ls.ls_timeout = 1; /* seconds: wake up to end the counted second and to see a stop */
	ls.ls_search_entry = on_entry;
	ls.ls_private = bl;
	ls.ls_ld = ld;
	int fd = -1;
	ldap_get_option(ld, LDAP_OPT_DESC, &fd);
	pthread_mutex_lock(&bl->lock);
	bool go = !bl->stop;
	if (go)
		bl->fd = fd;
	pthread_mutex_unlock(&bl->lock);
	int rc = go ? ldap_sync_init_refresh_and_persist(&ls) : LDAP_SUCCESS;
	while (go && rc == LDAP_SUCCESS && !stopping(bl)) {
		rc = ldap_sync_poll(&ls); /* 0 also after a quiet second */
		struct timeval now;
		gettimeofday(&now, NULL);
		flush_second(bl, &now);
	}
	if (go && !stopping(bl))
		log_warn("following failed LDAP binds in cn=accesslog: %s; trying again",
			 rc == -1 ? "connection lost" : ldap_err2string(rc));
	pthread_mutex_lock(&bl->lock);
	bl->fd = -1;
	pthread_mutex_unlock(&bl->lock);
	ldap_sync_destroy(&ls, 0); /* unbinds ld */
}

static void *bindlog_thread(void *arg)
{
	struct bindlog *bl = arg;
	struct buf err = BUF_INIT;
	while (!stopping(bl)) {
		LDAP *ld;
		buf_reset(&err);
		if (ldapu_connect_local(bl->cfg, &ld, &err) == IX_OK)
			run_session(bl, ld);
		pthread_mutex_lock(&bl->lock);
		struct timespec deadline = time_after_msecs(CLOCK_REALTIME, BINDLOG_RETRY_MS);
		while (!bl->stop && pthread_cond_timedwait(&bl->cond, &bl->lock, &deadline) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&bl->lock);
	}
	buf_free(&err);
	return NULL;
}

int bindlog_start(const struct config *cfg, struct bindlog **bl_r, struct buf *error_r)
{
	struct bindlog *bl = xcalloc(1, sizeof(*bl));
	bl->cfg = cfg;
	bl->fd = -1;
	struct timeval now;
	gettimeofday(&now, NULL);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(bl->start, sizeof(bl->start), "%Y%m%d%H%M%S.000000Z", &tm);
	bl->second = now.tv_sec;
	pthread_mutex_init(&bl->lock, NULL);
	pthread_cond_init(&bl->cond, NULL);
	int rc = pthread_create(&bl->thread, NULL, bindlog_thread, bl);
	if (rc != 0) {
		buf_printf(error_r, "cannot start the thread that logs failed LDAP binds: %s", strerror(rc));
		pthread_cond_destroy(&bl->cond);
		pthread_mutex_destroy(&bl->lock);
		free(bl);
		return IX_EIO;
	}
	*bl_r = bl;
	return IX_OK;
}

void bindlog_stop(struct bindlog **blp)
{
	struct bindlog *bl = *blp;
	if (bl == NULL)
		return;
	pthread_mutex_lock(&bl->lock);
	bl->stop = true;
	if (bl->fd >= 0)
		shutdown(bl->fd, SHUT_RDWR); /* ends a poll under way at once */
	pthread_cond_signal(&bl->cond);
	pthread_mutex_unlock(&bl->lock);
	pthread_join(bl->thread, NULL);
	pthread_cond_destroy(&bl->cond);
	pthread_mutex_destroy(&bl->lock);
	free(bl);
	*blp = NULL;
}
