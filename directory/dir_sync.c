/* dir_sync.c - opening the replica and the thread that feeds it: an RFC 4533 refreshAndPersist session with
 * libldap's ldap_sync_* API, reconnecting with backoff and resuming from the cookie. */
#include "directory/dir_private.h"

#include <errno.h>
#include <ldap.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define DIR_BACKOFF_MIN_MS 100
#define DIR_BACKOFF_MAX_MS 1000

/* What the session synchronizes: recipients and the configuration the services need. */
#define DIR_SYNC_FILTER                                                                           \
	"(|(objectClass=ixRecipient)(objectClass=ixDistributionList)(objectClass=ixPublicFolder)" \
	"(objectClass=ixServer)(objectClass=ixAcceptedDomain)(objectClass=ixRecipientPolicy)"     \
	"(objectClass=ixConnector)(objectClass=ixOAuthIssuer)(objectClass=ixKerberos)"            \
	"(objectClass=ixSieveGlobal))"

/* Dynamic lists (ixMemberURL): slapd's dynlist computes their members when the list is read, so the sync
 * session carries them as of when the list itself last changed. After recipients change, the replica reads the
 * dynamic lists again, at most this often (the session wakes at least once a second to do so). */
#define DIR_DYNAMIC_REFRESH_USEC 1000000ULL
#define DIR_DYNAMIC_FILTER "(&(objectClass=ixDistributionList)(ixMemberURL=*))"
#define DIR_DYNAMIC_TIMEOUT_SEC 10

/* syncInfoValue tags (RFC 4533 2.5): the choice that ended the refresh. */
#define DIR_TAG_REFRESH_PRESENT 0xa2

static unsigned long long wall_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

static struct dir *dir_alloc(const char *suffix)
{
	/* The replica's lock shards are cache-line aligned, so struct dir is too. */
	size_t size = (sizeof(struct dir) + 63) & ~(size_t)63;
	struct dir *dir = aligned_alloc(_Alignof(struct dir), size);
	if (dir == NULL)
		fatal("out of memory for the directory replica");
	memset(dir, 0, size);
	dir_replica_init(&dir->rep);
	dir->suffix = xstrdup(suffix);
	pthread_mutex_init(&dir->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&dir->cond, &attr);
	pthread_condattr_destroy(&attr);
	dir->sync_fd = -1;
	dir_bind_pool_init(&dir->pool);
	return dir;
}

struct dir *dir_create_offline(const char *suffix)
{
	struct dir *dir = dir_alloc(suffix);
	dir->ready = true;
	return dir;
}

int dir_open(const char *ldapi_uri, const char *suffix, struct dir **dir_r, struct buf *error_r)
{
	*dir_r = NULL;
	LDAPURLDesc *lud = NULL;
	if (ldapi_uri == NULL || ldap_url_parse(ldapi_uri, &lud) != LDAP_URL_SUCCESS) {
		if (error_r != NULL)
			buf_printf(error_r, "not an LDAP URL: %s", ldapi_uri != NULL ? ldapi_uri : "(none)");
		return IX_EINVAL;
	}
	ldap_free_urldesc(lud);
	LDAPDN ldn = NULL;
	if (suffix == NULL || *suffix == '\0' || strlen(suffix) > DIR_DN_MAX ||
	    ldap_str2dn(suffix, &ldn, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS) {
		if (error_r != NULL)
			buf_printf(error_r, "not a directory suffix (a DN such as dc=example,dc=com): %s",
				   suffix != NULL ? suffix : "(none)");
		return IX_EINVAL;
	}
	ldap_dnfree(ldn);

	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);

	struct dir *dir = dir_alloc(suffix);
	dir->uri = xstrdup(ldapi_uri);
	int rc = pthread_create(&dir->thread, NULL, dir_sync_thread, dir);
	if (rc != 0) {
		if (error_r != NULL)
			buf_printf(error_r, "cannot start the directory replica thread: %s", strerror(rc));
		dir_destroy(&dir);
		return IX_EIO;
	}
	dir->thread_started = true;
	*dir_r = dir;
	return IX_OK;
}

void dir_destroy(struct dir **dirp)
{
	struct dir *dir = *dirp;
	if (dir == NULL)
		return;
	*dirp = NULL;
	pthread_mutex_lock(&dir->lock);
	dir->stop = true;
	if (dir->sync_fd >= 0)
		shutdown(dir->sync_fd, SHUT_RDWR);
	pthread_cond_broadcast(&dir->cond);
	pthread_mutex_unlock(&dir->lock);
	if (dir->thread_started)
		pthread_join(dir->thread, NULL);
	dir_bind_pool_free(&dir->pool);
	dir_replica_free(&dir->rep);
	pthread_cond_destroy(&dir->cond);
	pthread_mutex_destroy(&dir->lock);
	free(dir->cookie);
	free(dir->uri);
	free(dir->suffix);
	free(dir);
}

static void deadline_after(struct timespec *ts, long msecs)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += msecs / 1000;
	ts->tv_nsec += (msecs % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int dir_wait_ready(struct dir *dir, int timeout_msecs)
{
	struct timespec deadline;
	if (timeout_msecs >= 0)
		deadline_after(&deadline, timeout_msecs);
	pthread_mutex_lock(&dir->lock);
	while (!dir->ready && !dir->stop) {
		if (timeout_msecs < 0)
			pthread_cond_wait(&dir->cond, &dir->lock);
		else if (pthread_cond_timedwait(&dir->cond, &dir->lock, &deadline) == ETIMEDOUT)
			break;
	}
	bool ready = dir->ready;
	pthread_mutex_unlock(&dir->lock);
	return ready ? IX_OK : IX_EUNAVAIL;
}

void dir_set_change_hook(struct dir *dir, dir_change_fn *fn, void *ctx)
{
	pthread_mutex_lock(&dir->lock);
	dir->hook = fn;
	dir->hook_ctx = ctx;
	/* Wait for a call of the previous hook in progress, unless we are that call. */
	bool in_hook = dir->thread_started && pthread_equal(pthread_self(), dir->thread);
	while (dir->hook_running && !in_hook)
		pthread_cond_wait(&dir->cond, &dir->lock);
	pthread_mutex_unlock(&dir->lock);
}

void dir_status(struct dir *dir, struct dir_status *status_r)
{
	memset(status_r, 0, sizeof(*status_r));
	pthread_mutex_lock(&dir->lock);
	status_r->ready = dir->ready;
	status_r->connected = dir->connected;
	status_r->changes = dir->changes;
	status_r->last_change_usec = dir->last_change_usec;
	status_r->reconnects = dir->reconnects;
	pthread_mutex_unlock(&dir->lock);
	dir_read_lock(&dir->rep);
	status_r->entries = dir->rep.by_dn.count;
	status_r->recipients = dir->rep.recipients;
	dir_read_unlock(&dir->rep);
}

/* Counts a change and calls the hook (outside every lock). */
static void report(struct dir *dir, enum dir_change_kind kind, const struct dir_entry *e)
{
	pthread_mutex_lock(&dir->lock);
	dir->changes++;
	dir->last_change_usec = wall_usec();
	dir_change_fn *hook = dir->hook;
	void *ctx = dir->hook_ctx;
	dir->hook_running = hook != NULL;
	pthread_mutex_unlock(&dir->lock);
	if (hook != NULL) {
		enum dir_type type = e->kind >= DIR_KIND_USER && e->kind <= DIR_KIND_FOLDER ? (enum dir_type)e->kind
											    : 0;
		hook(ctx, kind, type, e->dn);
		pthread_mutex_lock(&dir->lock);
		dir->hook_running = false;
		pthread_cond_broadcast(&dir->cond);
		pthread_mutex_unlock(&dir->lock);
	}
}

void dir_apply_put(struct dir *dir, struct dir_entry *e)
{
	dir->dyn_dirty = true;
	/* The replica owns e after the put; only this (the one writing) thread could free it, so it stays valid. */
	enum dir_change_kind kind = dir_replica_put(&dir->rep, e);
	report(dir, kind, e);
}

void dir_apply_del(struct dir *dir, const unsigned char uuid[16])
{
	struct dir_entry *e = dir_replica_del_uuid(&dir->rep, uuid);
	if (e == NULL)
		return;
	dir->dyn_dirty = true;
	report(dir, DIR_CHANGE_DELETE, e);
	dir_entry_unref(e);
}

/* --- the session --- */

static bool stopping(struct dir *dir)
{
	pthread_mutex_lock(&dir->lock);
	bool stop = dir->stop;
	pthread_mutex_unlock(&dir->lock);
	return stop;
}

static void on_swept(void *ctx, struct dir_entry *e)
{
	report(ctx, DIR_CHANGE_DELETE, e);
}

static void refresh_done(struct dir *dir)
{
	if (dir->sweep_at_done) {
		size_t n = dir_replica_sweep(&dir->rep, dir->session_mark, on_swept, dir);
		if (n > 0)
			log_info("directory: dropped %zu entries deleted while the replica was away", n);
	}
	dir->sweep_at_done = false;
	pthread_mutex_lock(&dir->lock);
	dir->ready = true;
	pthread_cond_broadcast(&dir->cond);
	pthread_mutex_unlock(&dir->lock);
}

static struct dir_entry *entry_from_message(LDAP *ld, LDAPMessage *msg, const unsigned char uuid[16])
{
	char *dn = ldap_get_dn(ld, msg);
	if (dn == NULL)
		return NULL;
	struct dir_builder b;
	dir_builder_init(&b, dn, uuid);
	ldap_memfree(dn);
	BerElement *ber = NULL;
	for (char *attr = ldap_first_attribute(ld, msg, &ber); attr != NULL; attr = ldap_next_attribute(ld, msg, ber)) {
		int id = dir_attr_lookup(attr);
		if (id >= 0) {
			struct berval **vals = ldap_get_values_len(ld, msg, attr);
			for (size_t i = 0; vals != NULL && vals[i] != NULL; i++) {
				if (id == DA_SERVER_CERT) {
					/* a certificate is kept as its fingerprint: binary DER is not a string */
					char hex[DIR_CERT_SHA256_HEX + 1];
					dir_cert_fingerprint(vals[i]->bv_val, vals[i]->bv_len, hex);
					dir_builder_add_id(&b, DA_SERVER_CERT, hex, strlen(hex));
					continue;
				}
				dir_builder_add_id(&b, (enum dir_attr)id, vals[i]->bv_val, vals[i]->bv_len);
			}
			ldap_value_free_len(vals);
		}
		ldap_memfree(attr);
	}
	if (ber != NULL)
		ber_free(ber, 0);
	return dir_builder_finish(&b);
}

static int on_entry(ldap_sync_t *ls, LDAPMessage *msg, struct berval *uuid, ldap_sync_refresh_t phase)
{
	struct dir *dir = ls->ls_private;
	if (uuid == NULL || uuid->bv_len != 16)
		return LDAP_SUCCESS;
	const unsigned char *id = (const unsigned char *)uuid->bv_val;
	switch (phase) {
	case LDAP_SYNC_CAPI_PRESENT:
		dir->sweep_at_done = true;
		dir_replica_mark(&dir->rep, id, dir->session_mark);
		break;
	case LDAP_SYNC_CAPI_ADD:
	case LDAP_SYNC_CAPI_MODIFY: {
		struct dir_entry *e = entry_from_message(ls->ls_ld, msg, id);
		if (e != NULL) {
			e->mark = e->loaded = dir->session_mark;
			dir_apply_put(dir, e);
		}
		break;
	}
	case LDAP_SYNC_CAPI_DELETE: dir_apply_del(dir, id); break;
	default: break;
	}
	return LDAP_SUCCESS;
}

/* Whether a refreshDone syncInfo message was a refreshPresent (present phase: sweep what was not seen). */
static bool is_refresh_present(LDAP *ld, LDAPMessage *msg)
{
	char *oid = NULL;
	struct berval *data = NULL;
	bool present = false;
	if (ldap_parse_intermediate(ld, msg, &oid, &data, NULL, 0) == LDAP_SUCCESS && data != NULL && data->bv_len > 0)
		present = (unsigned char)data->bv_val[0] == DIR_TAG_REFRESH_PRESENT;
	if (oid != NULL)
		ldap_memfree(oid);
	if (data != NULL)
		ber_bvfree(data);
	return present;
}

static int on_intermediate(ldap_sync_t *ls, LDAPMessage *msg, BerVarray uuids, ldap_sync_refresh_t phase)
{
	struct dir *dir = ls->ls_private;
	switch (phase) {
	case LDAP_SYNC_CAPI_PRESENTS_IDSET:
		dir->sweep_at_done = true;
		for (size_t i = 0; uuids != NULL && uuids[i].bv_val != NULL; i++) {
			if (uuids[i].bv_len == 16)
				dir_replica_mark(&dir->rep, (const unsigned char *)uuids[i].bv_val, dir->session_mark);
		}
		break;
	case LDAP_SYNC_CAPI_DELETES_IDSET:
		for (size_t i = 0; uuids != NULL && uuids[i].bv_val != NULL; i++) {
			if (uuids[i].bv_len == 16)
				dir_apply_del(dir, (const unsigned char *)uuids[i].bv_val);
		}
		break;
	case LDAP_SYNC_CAPI_PRESENTS: dir->sweep_at_done = true; break;
	case LDAP_SYNC_CAPI_DONE:
		if (is_refresh_present(ls->ls_ld, msg))
			dir->sweep_at_done = true;
		refresh_done(dir);
		break;
	default: break;
	}
	return LDAP_SUCCESS;
}

/* Parses an entryUUID in its string form (8-4-4-4-12 hex digits) into 16 bytes. */
static bool parse_uuid(const char *s, size_t len, unsigned char uuid[16])
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '-')
			continue;
		int v = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
			: s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
			: s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
						     : -1;
		if (v < 0 || n >= 32)
			return false;
		if (n % 2 == 0)
			uuid[n / 2] = (unsigned char)(v << 4);
		else
			uuid[n / 2] |= (unsigned char)v;
		n++;
	}
	return n == 32;
}

/* True when both entries list the same member values, in the same order. */
static bool same_members(const struct dir_entry *a, const struct dir_entry *b)
{
	int d = dir_dn_index(DA_MEMBER);
	if (a->nvals[DA_MEMBER] != b->nvals[DA_MEMBER])
		return false;
	for (size_t i = 0; i < a->nvals[DA_MEMBER]; i++) {
		if (strcmp(a->nref[d][i], b->nref[d][i]) != 0)
			return false;
	}
	return true;
}

/* Reads every dynamic list again (with the members dynlist computes now) and applies those whose members
 * changed. On failure the lists stay as they were and are read again later. */
static void refresh_dynamic_lists(struct dir *dir)
{
	if (dir->dyn_ld == NULL) {
		struct buf error = BUF_INIT;
		dir->dyn_ld = dir_ldap_connect(dir->uri, &error);
		buf_free(&error);
		if (dir->dyn_ld == NULL) {
			dir->dyn_dirty = true;
			return;
		}
	}
	LDAP *ld = dir->dyn_ld;
	const char *const *names = dir_attr_names();
	char *attrs[DA_COUNT + 2];
	for (size_t i = 0; i < DA_COUNT; i++)
		attrs[i] = (char *)names[i];
	attrs[DA_COUNT] = "entryUUID";
	attrs[DA_COUNT + 1] = NULL;
	struct timeval tv = { DIR_DYNAMIC_TIMEOUT_SEC, 0 };
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, dir->suffix, LDAP_SCOPE_SUBTREE, DIR_DYNAMIC_FILTER, attrs, 0, NULL, NULL, &tv,
				   0, &res);
	if (rc != LDAP_SUCCESS) {
		log_warn("directory: cannot read dynamic lists: %s", ldap_err2string(rc));
		ldap_msgfree(res);
		ldap_unbind_ext_s(ld, NULL, NULL);
		dir->dyn_ld = NULL;
		dir->dyn_dirty = true;
		return;
	}
	for (LDAPMessage *m = ldap_first_entry(ld, res); m != NULL; m = ldap_next_entry(ld, m)) {
		struct berval **ids = ldap_get_values_len(ld, m, "entryUUID");
		unsigned char uuid[16];
		bool ok = ids != NULL && ids[0] != NULL && parse_uuid(ids[0]->bv_val, ids[0]->bv_len, uuid);
		ldap_value_free_len(ids);
		if (!ok)
			continue;
		struct dir_entry *e = entry_from_message(ld, m, uuid);
		if (e == NULL)
			continue;
		dir_read_lock(&dir->rep);
		struct dir_entry *old = dir_map_get(&dir->rep.by_uuid, uuid, sizeof(uuid));
		bool same = old != NULL && same_members(old, e);
		dir_read_unlock(&dir->rep);
		if (old == NULL || same) {
			/* Unknown to the replica (the session will bring it) or unchanged. */
			dir_entry_unref(e);
			continue;
		}
		e->mark = e->loaded = dir->session_mark;
		dir_apply_put(dir, e);
	}
	ldap_msgfree(res);
	/* Applying the lists themselves marked the replica dirty; that is not a recipient change. */
	dir->dyn_dirty = false;
}

static void maybe_refresh_dynamic_lists(struct dir *dir)
{
	unsigned long long now = now_usec();
	if (!dir->dyn_dirty || now - dir->dyn_last_usec < DIR_DYNAMIC_REFRESH_USEC)
		return;
	dir->dyn_dirty = false;
	dir->dyn_last_usec = now;
	refresh_dynamic_lists(dir);
}

struct session {
	bool ended, refresh_required;
};

static int on_result(ldap_sync_t *ls, LDAPMessage *msg, int refresh_deletes)
{
	struct dir *dir = ls->ls_private;
	struct session *s = dir->session_;
	int err = LDAP_OTHER;
	ldap_parse_result(ls->ls_ld, msg, &err, NULL, NULL, NULL, NULL, 0);
	s->ended = true;
	if (err == LDAP_SYNC_REFRESH_REQUIRED) {
		s->refresh_required = true;
		return LDAP_SUCCESS;
	}
	/* The server ended the search after a refresh (it should not in refreshAndPersist): take the refresh. */
	if (refresh_deletes == 0)
		dir->sweep_at_done = true;
	refresh_done(dir);
	return LDAP_SUCCESS;
}

/* Runs one session on ld (which it consumes). Returns true when it reached the persist phase. */
static bool run_session(struct dir *dir, LDAP *ld, struct session *s)
{
	ldap_sync_t ls;
	ldap_sync_initialize(&ls);
	/* ldap_sync_destroy frees these with ldap_memfree, so they must come from libldap's allocator. */
	ls.ls_base = ldap_strdup(dir->suffix);
	ls.ls_scope = LDAP_SCOPE_SUBTREE;
	ls.ls_filter = ldap_strdup(DIR_SYNC_FILTER);
	const char *const *names = dir_attr_names();
	ls.ls_attrs = ldap_memcalloc(DA_COUNT + 1, sizeof(char *));
	for (size_t i = 0; i < DA_COUNT; i++)
		ls.ls_attrs[i] = ldap_strdup(names[i]);
	ls.ls_timeout = 1; /* seconds: wake up to read dynamic lists again when due */
	ls.ls_search_entry = on_entry;
	ls.ls_intermediate = on_intermediate;
	ls.ls_search_result = on_result;
	ls.ls_private = dir;
	ls.ls_ld = ld;
	if (dir->cookie != NULL) {
		ls.ls_cookie.bv_val = ldap_memalloc(dir->cookie_len + 1);
		memcpy(ls.ls_cookie.bv_val, dir->cookie, dir->cookie_len + 1);
		ls.ls_cookie.bv_len = dir->cookie_len;
	}
	dir->session_mark++;
	dir->sweep_at_done = dir->cookie == NULL;

	int fd = -1;
	ldap_get_option(ld, LDAP_OPT_DESC, &fd);
	pthread_mutex_lock(&dir->lock);
	bool go = !dir->stop;
	if (go) {
		dir->sync_fd = fd;
		dir->connected = true;
	}
	pthread_mutex_unlock(&dir->lock);

	bool persisted = false;
	int rc = LDAP_OTHER;
	if (go)
		rc = ldap_sync_init_refresh_and_persist(&ls);
	if (go && rc == LDAP_SUCCESS && !s->ended) {
		persisted = true;
		while (!s->ended && !stopping(dir)) {
			rc = ldap_sync_poll(&ls); /* 0 also after a quiet second */
			if (rc != LDAP_SUCCESS)
				break;
			maybe_refresh_dynamic_lists(dir);
		}
	}
	if (go && !stopping(dir) && !s->refresh_required)
		log_warn("directory: sync session with %s ended (%s); reconnecting", dir->uri,
			 rc == -1 ? "connection lost" : ldap_err2string(rc));

	if (ls.ls_cookie.bv_val != NULL) {
		free(dir->cookie);
		dir->cookie = xstrndup(ls.ls_cookie.bv_val, ls.ls_cookie.bv_len);
		dir->cookie_len = ls.ls_cookie.bv_len;
	}
	pthread_mutex_lock(&dir->lock);
	dir->sync_fd = -1;
	dir->connected = false;
	pthread_mutex_unlock(&dir->lock);
	ldap_sync_destroy(&ls, 0); /* unbinds ld */
	if (dir->dyn_ld != NULL) {
		ldap_unbind_ext_s(dir->dyn_ld, NULL, NULL);
		dir->dyn_ld = NULL;
	}
	return persisted;
}

static void sleep_unless_stopped(struct dir *dir, long msecs)
{
	struct timespec deadline;
	deadline_after(&deadline, msecs);
	pthread_mutex_lock(&dir->lock);
	while (!dir->stop && pthread_cond_timedwait(&dir->cond, &dir->lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&dir->lock);
}

void *dir_sync_thread(void *arg)
{
	struct dir *dir = arg;
	long backoff = DIR_BACKOFF_MIN_MS;
	bool first = true, warned = false;
	while (!stopping(dir)) {
		struct buf error = BUF_INIT;
		LDAP *ld = dir_ldap_connect(dir->uri, &error);
		if (ld != NULL) {
			warned = false;
			if (!first) {
				pthread_mutex_lock(&dir->lock);
				dir->reconnects++;
				pthread_mutex_unlock(&dir->lock);
			}
			first = false;
			struct session s = { false, false };
			dir->session_ = &s;
			if (run_session(dir, ld, &s))
				backoff = DIR_BACKOFF_MIN_MS;
			dir->session_ = NULL;
			if (s.refresh_required) {
				/* The cookie is too old for the server: start over with a full refresh (and sweep). */
				free(dir->cookie);
				dir->cookie = NULL;
				dir->cookie_len = 0;
				buf_free(&error);
				continue;
			}
		} else if (!warned) {
			log_warn("directory: %s; retrying", buf_cstr(&error));
			warned = true;
		}
		buf_free(&error);
		sleep_unless_stopped(dir, backoff);
		backoff = backoff * 2 > DIR_BACKOFF_MAX_MS ? DIR_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}
