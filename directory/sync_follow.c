/* sync_follow.c - the consumer side of RFC 4533 (refreshAndPersist) for sync sources: one thread per source keeps
 * a session open, applies the refresh and then each change as it arrives, keeps the cookie so that a restart
 * resumes where it stopped, and reconnects with backoff when the source goes away. */
#include "directory/sync_follow.h"
#include "directory/sync_int.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/ldap_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define COOKIE_MAX 4096

struct follower {
	const struct config *cfg;
	char *name, *entry_uuid; /* the source's name and the entryUUID of its entry here */
	pthread_t thread;
	atomic_int stop;
	int marked; /* still wanted, during sync_followers_update */
	pthread_mutex_t lock;
	struct sync_follow_status st; /* under lock */
	struct berval cookie;         /* the thread's */
};

struct sync_followers {
	const struct config *cfg;
	unsigned expire_interval;
	pthread_t thread; /* the keeper */
	atomic_int stop;
	atomic_size_t removed;
	pthread_mutex_t lock; /* over f and n, which only the keeper changes */
	struct follower **f;
	size_t n;
	struct sync_auth auth; /* the keeper's; its relays' figures read by sync_followers_status */
};

static void set_status(struct follower *f, const char *state, const char *error)
{
	pthread_mutex_lock(&f->lock);
	if (strcmp(f->st.state, state) != 0) {
		snprintf(f->st.state, sizeof(f->st.state), "%s", state);
		f->st.since = time(NULL);
	}
	if (error != NULL)
		snprintf(f->st.last_error, sizeof(f->st.last_error), "%s", error);
	pthread_mutex_unlock(&f->lock);
}

/* The counts of a, after sync_apply_finish; whole: the source was just read whole. */
static void note_counts(struct follower *f, struct sync_apply *a, int whole)
{
	const struct sync_result *r = sync_apply_result(a);
	pthread_mutex_lock(&f->lock);
	f->st.users = r->users;
	f->st.disabled = r->disabled;
	f->st.lists = r->lists;
	f->st.contacts = r->contacts;
	f->st.conflicts = r->conflicts;
	f->st.errors = r->errors;
	if (whole)
		f->st.last_run = time(NULL);
	pthread_mutex_unlock(&f->lock);
}

static void note_applied(struct follower *f, int n)
{
	pthread_mutex_lock(&f->lock);
	f->st.changes += (unsigned long long)n;
	f->st.last_applied = time(NULL);
	pthread_mutex_unlock(&f->lock);
}

/* ---- the cookie, kept in DATA/sync/NAME.cookie ---- */

/* The file starts with a line naming the source entry it belongs to ("source ENTRYUUID"): a cookie a follower
 * wrote just after `sync del` is not taken by the next source of the same name. */
static char *cookie_header(const struct follower *f)
{
	return xasprintf("source %s\n", f->entry_uuid);
}

static void cookie_load(struct follower *f)
{
	char *path = sync_file_path(f->cfg, f->name, ".cookie"), *data = NULL, *head = cookie_header(f);
	size_t len = 0, hlen = strlen(head);
	ber_memfree(f->cookie.bv_val);
	f->cookie.bv_val = NULL;
	f->cookie.bv_len = 0;
	if (read_file(path, COOKIE_MAX, &data, &len) == 0 && len > hlen && memcmp(data, head, hlen) == 0) {
		struct berval b = { (ber_len_t)(len - hlen), data + hlen };
		ber_dupbv(&f->cookie, &b);
	}
	free(head);
	free(data);
	free(path);
}

static void cookie_save(struct follower *f)
{
	if (f->cookie.bv_val == NULL)
		return;
	char *path = sync_file_path(f->cfg, f->name, ".cookie"), *head = cookie_header(f);
	struct iovec parts[] = { { head, strlen(head) }, { f->cookie.bv_val, f->cookie.bv_len } };
	if (write_file_atomic_parts(path, parts, 2, 0600) < 0)
		log_warn("sync %s: cannot write %s: %s", f->name, path, strerror(errno));
	free(head);
	free(path);
}

static void cookie_drop(struct follower *f)
{
	char *path = sync_file_path(f->cfg, f->name, ".cookie");
	unlink(path);
	free(path);
	ber_memfree(f->cookie.bv_val);
	f->cookie.bv_val = NULL;
	f->cookie.bv_len = 0;
}

static void cookie_set(struct follower *f, const struct berval *c)
{
	if (c->bv_val == NULL || c->bv_len == 0 || c->bv_len > COOKIE_MAX)
		return;
	ber_memfree(f->cookie.bv_val);
	ber_dupbv(&f->cookie, (struct berval *)c);
}

/* The string form of a 16-byte UUID (RFC 4122, lower case, as entryUUID's values); "" when it is not 16 bytes. */
static void uuid_str(const struct berval *u, char out[37])
{
	out[0] = '\0';
	if (u->bv_len != 16)
		return;
	const unsigned char *b = (const unsigned char *)u->bv_val;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---- one session ---- */

enum session_end { END_LOST, END_AGAIN, END_STOPPED };

struct session {
	struct follower *f;
	struct sync_apply *a;
	LDAP *ld;
	int msgid;
	int refreshing, had_cookie;
	enum sync_gone mode;
	struct buf *error_r;
};

/* The Sync State control of an entry: its state, entryUUID and cookie. 0 when it is there and well formed. */
static int entry_state(struct session *s, LDAPMessage *msg, int *state_r, char uuid[37])
{
	LDAPControl **ctrls = NULL;
	int ret = -1;
	if (ldap_get_entry_controls(s->ld, msg, &ctrls) != LDAP_SUCCESS || ctrls == NULL)
		return -1;
	LDAPControl *c = ldap_control_find(LDAP_CONTROL_SYNC_STATE, ctrls, NULL);
	BerElement *ber = c != NULL ? ber_init(&c->ldctl_value) : NULL;
	struct berval u = { 0, NULL }, cookie = { 0, NULL };
	ber_len_t len;
	ber_int_t state = -1;
	if (ber != NULL && ber_scanf(ber, "{em", &state, &u) != LBER_ERROR) {
		if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE && ber_scanf(ber, "m", &cookie) != LBER_ERROR)
			cookie_set(s->f, &cookie);
		uuid_str(&u, uuid);
		*state_r = state;
		ret = uuid[0] != '\0' ? 0 : -1;
	}
	if (ber != NULL)
		ber_free(ber, 1);
	ldap_controls_free(ctrls);
	return ret;
}

static void refresh_done(struct session *s)
{
	struct buf err = BUF_INIT;
	if (sync_apply_refresh_done(s->a, s->mode, &err) != IX_OK) {
		log_warn("sync %s: the refresh could not be applied: %s", s->f->name, buf_cstr(&err));
	} else {
		sync_apply_finish(s->a, "live", s->mode == SYNC_GONE_UNSEEN);
		note_counts(s->f, s->a, s->mode == SYNC_GONE_UNSEEN);
		cookie_save(s->f);
		log_info("sync %s: refreshed (%s), following changes", s->f->name,
			 s->mode == SYNC_GONE_UNSEEN ? "everything read" : "changes since the last session");
	}
	buf_free(&err);
	s->refreshing = 0;
	set_status(s->f, "live", "");
}

/* A Sync Info message (intermediate response). */
static void sync_info(struct session *s, LDAPMessage *msg)
{
	char *oid = NULL;
	struct berval *data = NULL;
	if (ldap_parse_intermediate(s->ld, msg, &oid, &data, NULL, 0) != LDAP_SUCCESS || oid == NULL ||
	    strcmp(oid, LDAP_SYNC_INFO) != 0 || data == NULL) {
		ldap_memfree(oid);
		ber_bvfree(data);
		return;
	}
	BerElement *ber = ber_init(data);
	ber_len_t len;
	ber_tag_t tag = ber != NULL ? ber_peek_tag(ber, &len) : LBER_ERROR;
	struct berval cookie = { 0, NULL };
	if (tag == LDAP_TAG_SYNC_NEW_COOKIE) {
		if (ber_scanf(ber, "m", &cookie) != LBER_ERROR)
			cookie_set(s->f, &cookie);
	} else if (tag == LDAP_TAG_SYNC_REFRESH_DELETE || tag == LDAP_TAG_SYNC_REFRESH_PRESENT) {
		ber_int_t done = 1;
		if (ber_scanf(ber, "{") != LBER_ERROR) {
			if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE &&
			    ber_scanf(ber, "m", &cookie) != LBER_ERROR)
				cookie_set(s->f, &cookie);
			if (ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDONE)
				ber_scanf(ber, "b", &done);
		}
		/* after a cookie, a present phase names every entry still there: the others are gone */
		if (tag == LDAP_TAG_SYNC_REFRESH_PRESENT && s->had_cookie)
			s->mode = SYNC_GONE_NOT_PRESENT;
		if (done && s->refreshing)
			refresh_done(s);
	} else if (tag == LDAP_TAG_SYNC_ID_SET) {
		ber_int_t deletes = 0;
		BerVarray uuids = NULL;
		if (ber_scanf(ber, "{") != LBER_ERROR) {
			if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE &&
			    ber_scanf(ber, "m", &cookie) != LBER_ERROR)
				cookie_set(s->f, &cookie);
			if (ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDELETES)
				ber_scanf(ber, "b", &deletes);
			if (ber_scanf(ber, "[W]}", &uuids) == LBER_ERROR)
				uuids = NULL;
		}
		for (size_t i = 0; uuids != NULL && uuids[i].bv_val != NULL; i++) {
			char u[37];
			uuid_str(&uuids[i], u);
			if (u[0] == '\0')
				continue;
			if (deletes)
				sync_apply_delete(s->a, sync_apply_uuid_anchor(s->a) ? u : NULL, NULL);
			else
				sync_apply_present(s->a, u);
		}
		if (deletes && !sync_apply_uuid_anchor(s->a) && uuids != NULL)
			s->mode = SYNC_GONE_UNSEEN; /* not matched by anchor: only a full read tells */
		ber_bvarray_free(uuids);
	}
	if (ber != NULL)
		ber_free(ber, 1);
	ldap_memfree(oid);
	ber_bvfree(data);
}

static void search_entry(struct session *s, LDAPMessage *msg)
{
	int state = -1;
	char uuid[37];
	if (entry_state(s, msg, &state, uuid) != 0)
		return;
	char *dn = ldap_get_dn(s->ld, msg);
	switch (state) {
	case LDAP_SYNC_PRESENT: sync_apply_present(s->a, uuid); break;
	case LDAP_SYNC_ADD:
	case LDAP_SYNC_MODIFY:
		if (s->refreshing)
			sync_apply_collect(s->a, msg, uuid);
		else
			sync_apply_change(s->a, msg, uuid);
		break;
	case LDAP_SYNC_DELETE: sync_apply_delete(s->a, sync_apply_uuid_anchor(s->a) ? uuid : NULL, dn); break;
	default: break;
	}
	ldap_memfree(dn);
}

/* The end of the search: the source ended the session, or asks for a refresh from nothing. */
static enum session_end search_result(struct session *s, LDAPMessage *msg)
{
	int err = LDAP_OTHER;
	char *text = NULL;
	ldap_parse_result(s->ld, msg, &err, NULL, &text, NULL, NULL, 0);
	enum session_end end = END_LOST;
	if (err == LDAP_SYNC_REFRESH_REQUIRED) {
		log_info("sync %s: the source asks for a refresh of everything", s->f->name);
		cookie_drop(s->f);
		end = END_AGAIN;
	} else {
		buf_printf(s->error_r, "the source ended the session: %s%s%s", ldap_err2string(err),
			   text != NULL && *text ? " - " : "", text != NULL ? text : "");
	}
	ldap_memfree(text);
	return end;
}

/* Sends the search with the Sync Request control (refreshAndPersist, the cookie when there is one). */
static int start_search(struct session *s)
{
	char *base = NULL, *filter = NULL;
	char **attrs = NULL;
	int ret = sync_apply_scope(s->a, &base, &filter, &attrs, s->error_r);
	if (ret != IX_OK)
		return ret;
	BerElement *ber = ber_alloc_t(LBER_USE_DER);
	if (s->had_cookie)
		ber_printf(ber, "{eOb}", (ber_int_t)LDAP_SYNC_REFRESH_AND_PERSIST, &s->f->cookie, 0);
	else
		ber_printf(ber, "{eb}", (ber_int_t)LDAP_SYNC_REFRESH_AND_PERSIST, 0);
	LDAPControl ctrl = { .ldctl_oid = LDAP_CONTROL_SYNC, .ldctl_iscritical = 1 };
	LDAPControl *ctrls[] = { &ctrl, NULL };
	int rc = ber_flatten2(ber, &ctrl.ldctl_value, 0) < 0 ? LDAP_ENCODING_ERROR : LDAP_SUCCESS;
	if (rc == LDAP_SUCCESS)
		rc = ldap_search_ext(s->ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, ctrls, NULL, NULL,
				     LDAP_NO_LIMIT, &s->msgid);
	if (rc != LDAP_SUCCESS)
		ret = ldapu_fail(s->ld, rc, "the source refused the sync search", s->error_r);
	ber_free(ber, 1);
	free(base);
	free(filter);
	ldapu_values_free(&attrs);
	return ret;
}

/* Waits seconds, or less when asked to stop; returns whether to stop. */
static int pause_for(struct follower *f, unsigned seconds)
{
	for (unsigned i = 0; i < seconds * 10 && !atomic_load(&f->stop); i++)
		usleep(100000);
	return atomic_load(&f->stop);
}

/* A source without RFC 4533 (type ad): a whole read when no uSNChanged is kept ("usn=N" in the cookie file), then
 * every poll interval what changed since. Returns when the source fails or at stop. */
static enum session_end poll_session(struct follower *f, struct sync_apply *a, struct buf *error_r)
{
	cookie_load(f);
	unsigned long long usn = 0;
	if (f->cookie.bv_val != NULL && strncmp(f->cookie.bv_val, "usn=", 4) == 0)
		usn = strtoull(f->cookie.bv_val + 4, NULL, 10);
	if (usn == 0) {
		set_status(f, "refreshing", NULL);
		if (sync_apply_read_all(a, error_r) != IX_OK)
			return END_LOST;
		note_counts(f, a, 1);
		log_info("sync %s: refreshed (everything read), asking for changes every %ld s", f->name,
			 sync_apply_poll_seconds(a));
	} else {
		log_info("sync %s: asking for changes after uSNChanged %llu every %ld s", f->name, usn,
			 sync_apply_poll_seconds(a));
	}
	for (;;) {
		if (sync_apply_usn(a) > usn) {
			usn = sync_apply_usn(a);
			char text[32];
			struct berval c = { (ber_len_t)snprintf(text, sizeof(text), "usn=%llu", usn), text };
			cookie_set(f, &c);
		}
		if (sync_apply_pending(a) > 0)
			note_applied(f, sync_apply_pending(a));
		sync_apply_finish(a, "live", 0);
		note_counts(f, a, 0);
		cookie_save(f);
		set_status(f, "live", "");
		if (pause_for(f, (unsigned)sync_apply_poll_seconds(a)))
			return END_STOPPED;
		if (sync_apply_changes_since(a, usn, error_r) != IX_OK)
			return END_LOST;
	}
}

/* Connects, refreshes and follows until the connection is lost, a refresh from nothing is needed, or stop. */
static enum session_end session(struct follower *f, struct buf *error_r)
{
	struct prov *p = NULL;
	struct session s = { .f = f, .error_r = error_r, .refreshing = 1 };
	enum session_end end = END_LOST;
	set_status(f, "connecting", NULL);
	if (prov_open(f->cfg, &p, error_r) != IX_OK)
		return END_LOST;
	if (sync_apply_open(p, f->cfg, f->name, &s.a, error_r) != IX_OK) {
		prov_close(&p);
		return END_LOST;
	}
	s.ld = sync_apply_source(s.a);
	if (sync_apply_polls(s.a)) {
		end = poll_session(f, s.a, error_r);
		goto out;
	}
	/* a cookie names changes by entryUUID: with another anchor every session starts from nothing */
	if (sync_apply_uuid_anchor(s.a))
		cookie_load(f);
	else
		cookie_drop(f);
	s.had_cookie = f->cookie.bv_val != NULL;
	s.mode = s.had_cookie ? SYNC_GONE_LISTED : SYNC_GONE_UNSEEN;
	if (start_search(&s) != IX_OK)
		goto out;
	set_status(f, "refreshing", NULL);
	while (!atomic_load(&f->stop)) {
		int pending = !s.refreshing && sync_apply_pending(s.a) > 0;
		struct timeval tv = { 0, pending ? 0 : SYNC_FOLLOW_POLL_MS * 1000 };
		LDAPMessage *msg = NULL;
		int type = ldap_result(s.ld, s.msgid, LDAP_MSG_ONE, &tv, &msg);
		if (type == 0) {
			if (pending) { /* nothing more for now: the batch is done */
				note_applied(f, sync_apply_pending(s.a));
				sync_apply_finish(s.a, "live", 0);
				note_counts(f, s.a, 0);
				cookie_save(f);
			}
			continue;
		}
		if (type < 0) {
			int err = LDAP_SERVER_DOWN;
			ldap_get_option(s.ld, LDAP_OPT_RESULT_CODE, &err);
			buf_printf(error_r, "the connection to the source was lost: %s", ldap_err2string(err));
			break;
		}
		if (type == LDAP_RES_SEARCH_ENTRY) {
			search_entry(&s, msg);
		} else if (type == LDAP_RES_INTERMEDIATE) {
			sync_info(&s, msg);
		} else if (type == LDAP_RES_SEARCH_RESULT) {
			end = search_result(&s, msg);
			ldap_msgfree(msg);
			break;
		}
		ldap_msgfree(msg);
	}
	if (atomic_load(&f->stop))
		end = END_STOPPED;
	if (!s.refreshing && sync_apply_pending(s.a) > 0) {
		note_applied(f, sync_apply_pending(s.a));
		sync_apply_finish(s.a, "live", 0);
		cookie_save(f);
	}
out:
	if (end == END_LOST) {
		char *state = xasprintf("reconnecting: %s", buf_cstr(error_r));
		LDAPMod **mods = NULL;
		size_t n = 0;
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncState", ldapu_values1(state));
		struct buf why = BUF_INIT;
		char *dn = sync_source_dn(f->cfg, f->name);
		ldapu_modify(prov_ldap(p), dn, mods, &why);
		free(dn);
		buf_free(&why);
		ldapu_mods_free(mods);
		free(state);
	}
	sync_apply_close(&s.a);
	prov_close(&p);
	return end;
}

static void *follow(void *arg)
{
	struct follower *f = arg;
	unsigned backoff = 0;
	while (!atomic_load(&f->stop)) {
		struct buf err = BUF_INIT;
		enum session_end end = session(f, &err);
		if (end == END_STOPPED) {
			buf_free(&err);
			break;
		}
		if (end == END_AGAIN) {
			backoff = 0;
			buf_free(&err);
			continue;
		}
		/* a session that went live starts the waits again from 1 s */
		int was_live = strcmp(f->st.state, "live") == 0;
		backoff = was_live || backoff == 0 ? 1 : backoff * 2;
		if (backoff > SYNC_FOLLOW_BACKOFF_MAX_S)
			backoff = SYNC_FOLLOW_BACKOFF_MAX_S;
		log_warn("sync %s: %s; trying again in %u s", f->name, buf_cstr(&err), backoff);
		pthread_mutex_lock(&f->lock);
		f->st.reconnects++;
		pthread_mutex_unlock(&f->lock);
		set_status(f, "reconnecting", buf_cstr(&err));
		buf_free(&err);
		if (pause_for(f, backoff))
			break;
	}
	return NULL;
}

/* ---- the set ---- */

static struct follower *follower_start(const struct config *cfg, const char *name, const char *entry_uuid)
{
	struct follower *f = xcalloc(1, sizeof(*f));
	f->cfg = cfg;
	f->name = xstrdup(name);
	f->entry_uuid = xstrdup(entry_uuid != NULL ? entry_uuid : "");
	snprintf(f->st.name, sizeof(f->st.name), "%s", name);
	snprintf(f->st.state, sizeof(f->st.state), "starting");
	f->st.since = time(NULL);
	atomic_init(&f->stop, 0);
	pthread_mutex_init(&f->lock, NULL);
	if (pthread_create(&f->thread, NULL, follow, f) != 0)
		fatal("cannot start a thread for the sync source %s", name);
	log_info("sync %s: following the source's changes", name);
	return f;
}

static void follower_join(struct follower *f)
{
	pthread_join(f->thread, NULL);
	pthread_mutex_destroy(&f->lock);
	ber_memfree(f->cookie.bv_val);
	free(f->name);
	free(f->entry_uuid);
	free(f);
}

/* Starts or stops followers to match the sources run here (on the keeper's thread). */
static int followers_update(struct sync_followers *fs, struct prov *p, struct buf *error_r)
{
	LDAP *ld = prov_ldap(p);
	LDAPMessage *res = NULL;
	int ret = sync_sources_here(p, fs->cfg, &res, error_r);
	if (ret != IX_OK)
		return ret;
	for (size_t i = 0; i < fs->n; i++)
		fs->f[i]->marked = 0;
	for (LDAPMessage *e = ldapu_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
		char *name = ldapu_get_first(ld, e, "cn"), *uuid = ldapu_get_first(ld, e, "entryUUID");
		int found = 0;
		for (size_t i = 0; name != NULL && i < fs->n && !found; i++) {
			struct follower *fo = fs->f[i];
			if (strcmp(fo->name, name) == 0 && strcmp(fo->entry_uuid, uuid != NULL ? uuid : "") == 0)
				found = fo->marked = 1;
		}
		if (name != NULL && !found) {
			struct follower *fo = follower_start(fs->cfg, name, uuid);
			fo->marked = 1;
			pthread_mutex_lock(&fs->lock);
			fs->f = xrealloc(fs->f, (fs->n + 1) * sizeof(*fs->f));
			fs->f[fs->n++] = fo;
			pthread_mutex_unlock(&fs->lock);
		}
		free(name);
		free(uuid);
	}
	ldap_msgfree(res);
	for (size_t i = 0; i < fs->n;) {
		struct follower *fo = fs->f[i];
		if (fo->marked) {
			i++;
			continue;
		}
		log_info("sync %s: the source was deleted or replaced; no longer following it", fo->name);
		pthread_mutex_lock(&fs->lock);
		fs->f[i] = fs->f[--fs->n];
		pthread_mutex_unlock(&fs->lock);
		atomic_store(&fo->stop, 1);
		follower_join(fo);
	}
	return IX_OK;
}

static void *keep(void *arg)
{
	struct sync_followers *fs = arg;
	struct prov *p = NULL;
	char last_error[256] = "";
	time_t expired_at = time(NULL); /* the first removal after one interval: the directory settles first */
	while (!atomic_load(&fs->stop)) {
		struct buf err = BUF_INIT;
		int ret = p != NULL ? IX_OK : prov_open(fs->cfg, &p, &err);
		if (ret == IX_OK)
			ret = followers_update(fs, p, &err);
		if (ret == IX_OK)
			ret = sync_auth_apply(p, fs->cfg, &fs->auth, &err);
		time_t now = time(NULL);
		if (ret == IX_OK && now - expired_at >= (time_t)fs->expire_interval) {
			size_t removed = 0;
			expired_at = now;
			ret = sync_expire(p, fs->cfg, now, &removed, &err);
			atomic_fetch_add(&fs->removed, removed);
		}
		if (ret != IX_OK && strcmp(last_error, buf_cstr(&err)) != 0)
			log_warn("sync sources: %s", buf_cstr(&err));
		snprintf(last_error, sizeof(last_error), "%s", ret != IX_OK ? buf_cstr(&err) : "");
		if (ret != IX_OK)
			prov_close(&p); /* connect again next time (slapd restarted) */
		buf_free(&err);
		for (int i = 0; i < SYNC_FOLLOW_CHECK_MS / 100 && !atomic_load(&fs->stop); i++)
			usleep(100000);
	}
	prov_close(&p);
	sync_auth_stop(&fs->auth);
	return NULL;
}

void sync_followers_start(const struct config *cfg, unsigned expire_interval, struct sync_followers **set_r)
{
	struct sync_followers *fs = xcalloc(1, sizeof(*fs));
	fs->cfg = cfg;
	fs->expire_interval = expire_interval;
	fs->auth = (struct sync_auth)SYNC_AUTH_INIT;
	atomic_init(&fs->stop, 0);
	atomic_init(&fs->removed, 0);
	pthread_mutex_init(&fs->lock, NULL);
	if (pthread_create(&fs->thread, NULL, keep, fs) != 0)
		fatal("cannot start the thread that keeps the sync sources followed");
	*set_r = fs;
}

void sync_followers_stop(struct sync_followers **set)
{
	struct sync_followers *fs = *set;
	if (fs == NULL)
		return;
	*set = NULL;
	atomic_store(&fs->stop, 1);
	pthread_join(fs->thread, NULL);
	for (size_t i = 0; i < fs->n; i++)
		atomic_store(&fs->f[i]->stop, 1);
	for (size_t i = 0; i < fs->n; i++)
		follower_join(fs->f[i]);
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->auth.lock);
	free(fs->f);
	free(fs);
}

size_t sync_followers_removed(struct sync_followers *set)
{
	return set != NULL ? atomic_load(&set->removed) : 0;
}

size_t sync_followers_status(struct sync_followers *set, struct sync_follow_status *out, size_t max)
{
	size_t n = 0;
	if (set == NULL)
		return 0;
	pthread_mutex_lock(&set->lock);
	for (size_t i = 0; i < set->n && n < max; i++) {
		pthread_mutex_lock(&set->f[i]->lock);
		out[n] = set->f[i]->st;
		pthread_mutex_unlock(&set->f[i]->lock);
		struct sync_relay_stats rs;
		out[n].passthrough = sync_auth_stats(&set->auth, out[n].name, &rs);
		if (out[n].passthrough) {
			out[n].pt_accepted = rs.accepted;
			out[n].pt_refused = rs.refused;
			out[n].pt_cached = rs.cached;
			out[n].pt_unreachable = rs.unreachable;
			out[n].pt_entries = rs.entries;
		}
		n++;
	}
	pthread_mutex_unlock(&set->lock);
	return n;
}
