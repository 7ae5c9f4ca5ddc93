/* imapd_auth.c - the worker pool, login throttling, the directory-backed user table and settings shared by
 * imapd and pop3d (see imapd_auth.h). */
#include "imapd_auth.h"
#include "dir.h"
#include "err.h"
#include "log.h"
#include "settings.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

/* ---- worker pool ---- */

struct pool_job {
	struct pool_job *next;
	imapd_job_fn *run, *done;
	void *arg;
};

struct imapd_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool_job *todo, *todo_tail;
	struct pool_job *done, *done_tail;
	bool stop;
	pthread_t *threads;
	unsigned nthreads;
	struct evloop_async *async;
};

static void *pool_thread(void *arg)
{
	struct imapd_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->todo == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->todo == NULL)
			break;
		struct pool_job *j = p->todo;
		p->todo = j->next;
		if (p->todo == NULL)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->run(j->arg);
		pthread_mutex_lock(&p->mu);
		j->next = NULL;
		if (p->done_tail != NULL)
			p->done_tail->next = j;
		else
			p->done = j;
		p->done_tail = j;
		pthread_mutex_unlock(&p->mu);
		evloop_async_send(p->async);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void pool_on_async(struct evloop *loop, void *ctx)
{
	(void)loop;
	struct imapd_pool *p = ctx;
	pthread_mutex_lock(&p->mu);
	struct pool_job *j = p->done;
	p->done = p->done_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	while (j != NULL) {
		struct pool_job *next = j->next;
		j->done(j->arg);
		free(j);
		j = next;
	}
}

int imapd_pool_create(struct evloop *loop, unsigned threads, struct imapd_pool **pool_r, struct buf *error_r)
{
	struct imapd_pool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (evloop_async_create(loop, pool_on_async, p, &p->async, error_r) != 0) {
		free(p);
		return IX_EIO;
	}
	if (threads == 0)
		threads = 1;
	p->threads = xcalloc(threads, sizeof(*p->threads));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_thread, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		if (error_r != NULL)
			buf_append_str(error_r, "cannot start worker threads");
		imapd_pool_destroy(&p);
		return IX_EIO;
	}
	*pool_r = p;
	return 0;
}

void imapd_pool_destroy(struct imapd_pool **pool)
{
	struct imapd_pool *p = *pool;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (struct pool_job *j = p->todo, *n; j != NULL; j = n) {
		n = j->next;
		free(j);
	}
	for (struct pool_job *j = p->done, *n; j != NULL; j = n) {
		n = j->next;
		free(j);
	}
	evloop_async_destroy(&p->async);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
	*pool = NULL;
}

void imapd_pool_submit(struct imapd_pool *p, imapd_job_fn *run, imapd_job_fn *done, void *arg)
{
	struct pool_job *j = xcalloc(1, sizeof(*j));
	j->run = run;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->mu);
	if (p->todo_tail != NULL)
		p->todo_tail->next = j;
	else
		p->todo = j;
	p->todo_tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* ---- throttling ---- */

#define THROTTLE_ADDR_MAX 64

struct throttle_slot {
	char addr[THROTTLE_ADDR_MAX];
	uint64_t window_start;
	unsigned failures;
};

struct imapd_throttle {
	unsigned max_failures;
	struct throttle_slot slots[IMAPD_THROTTLE_SLOTS];
};

struct imapd_throttle *imapd_throttle_create(unsigned max_failures)
{
	struct imapd_throttle *t = xcalloc(1, sizeof(*t));
	t->max_failures = max_failures;
	return t;
}

void imapd_throttle_destroy(struct imapd_throttle **t)
{
	free(*t);
	*t = NULL;
}

static uint32_t addr_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The slot for addr: its own, else (create) a free or expired one among a few probes, else the oldest probed. */
static struct throttle_slot *throttle_slot(struct imapd_throttle *t, const char *addr, uint64_t now, bool create)
{
	uint32_t h = addr_hash(addr);
	struct throttle_slot *victim = NULL;
	for (unsigned i = 0; i < 8; i++) {
		struct throttle_slot *sl = &t->slots[(h + i) % IMAPD_THROTTLE_SLOTS];
		if (sl->addr[0] != '\0' && strncmp(sl->addr, addr, THROTTLE_ADDR_MAX - 1) == 0)
			return sl;
		if (victim == NULL || sl->addr[0] == '\0' || sl->window_start < victim->window_start)
			if (victim == NULL || victim->addr[0] != '\0')
				victim = sl;
	}
	if (!create)
		return NULL;
	snprintf(victim->addr, sizeof(victim->addr), "%s", addr);
	victim->window_start = now;
	victim->failures = 0;
	return victim;
}

bool imapd_throttle_blocked(struct imapd_throttle *t, const char *addr, uint64_t now_secs)
{
	if (t->max_failures == 0)
		return false;
	struct throttle_slot *sl = throttle_slot(t, addr, now_secs, false);
	if (sl == NULL || now_secs >= sl->window_start + IMAPD_THROTTLE_WINDOW_SECS)
		return false;
	return sl->failures >= t->max_failures;
}

unsigned imapd_throttle_fail(struct imapd_throttle *t, const char *addr, uint64_t now_secs)
{
	struct throttle_slot *sl = throttle_slot(t, addr, now_secs, true);
	if (now_secs >= sl->window_start + IMAPD_THROTTLE_WINDOW_SECS) {
		sl->window_start = now_secs;
		sl->failures = 0;
	}
	return ++sl->failures;
}

/* ---- users from the directory ---- */

void imapd_user_free(struct imapd_user *u)
{
	free(u->login);
	free(u->guid);
	free(u->dn);
	free(u->address);
	memset(u, 0, sizeof(*u));
}

static int dir_check_password(void *ctx, const char *user, const char *pass, size_t passlen)
{
	if (memchr(pass, '\0', passlen) != NULL)
		return IX_EAUTH;
	struct buf err = BUF_INIT;
	int ret = dir_authenticate(ctx, user, pass, &err);
	if (ret != IX_OK && ret != IX_EAUTH)
		log_warn("password check for %s: %s", user, buf_cstr(&err));
	buf_free(&err);
	return ret == IX_OK ? 0 : ret == IX_EAUTH ? IX_EAUTH : IX_EUNAVAIL;
}

static int dir_user_lookup(void *ctx, const char *name, struct imapd_user *u_r)
{
	struct dir_recipient r;
	memset(u_r, 0, sizeof(*u_r));
	int ret = strchr(name, '@') != NULL ? dir_resolve(ctx, name, &r) : dir_lookup_login(ctx, name, &r);
	if (ret != IX_OK)
		return IX_ENOTFOUND;
	if (r.type != DIR_TYPE_USER || r.mailbox_guid == NULL || r.login == NULL) {
		dir_recipient_release(&r);
		return IX_ENOTFOUND;
	}
	u_r->login = xstrdup(r.login);
	u_r->guid = xstrdup(r.mailbox_guid);
	u_r->dn = xstrdup(r.dn);
	u_r->address = xstrdup(r.primary_address != NULL ? r.primary_address : "");
	u_r->quota_bytes = r.quota_bytes > 0 ? (uint64_t)r.quota_bytes : 0;
	u_r->quota_messages = r.quota_messages > 0 ? (uint64_t)r.quota_messages : 0;
	dir_recipient_release(&r);
	return 0;
}

struct groups_ctx {
	const char *dn;
	struct buf *out;
};

static void groups_visit(void *ctx, const struct dir_recipient *r)
{
	struct groups_ctx *g = ctx;
	if (r->type != DIR_TYPE_LIST || r->display_name == NULL)
		return;
	for (size_t i = 0; i < r->member_count; i++)
		if (strcasecmp(r->members[i], g->dn) == 0) {
			buf_append(g->out, r->display_name, strlen(r->display_name) + 1);
			return;
		}
}

static void dir_groups(void *ctx, const char *dn, struct buf *ids_r)
{
	struct groups_ctx g = { dn, ids_r };
	dir_foreach_recipient(ctx, groups_visit, &g);
}

static void folders_visit(void *ctx, const struct dir_recipient *r)
{
	if (r->type == DIR_TYPE_FOLDER && r->folder_path != NULL && r->folder_path[0] != '\0')
		buf_append(ctx, r->folder_path, strlen(r->folder_path) + 1);
}

static void dir_public_folders(void *ctx, struct buf *paths_r)
{
	dir_foreach_recipient(ctx, folders_visit, paths_r);
}

void imapd_userdb_dir(struct dir *dir, struct imapd_userdb *db_r)
{
	db_r->check_password = dir_check_password;
	db_r->lookup = dir_user_lookup;
	db_r->groups = dir_groups;
	db_r->public_folders = dir_public_folders;
	db_r->ctx = dir;
}

void imapd_settings_get(struct dir *dir, struct imapd_settings *s_r)
{
	(void)dir; /* the server's ixServerSetting values are not in struct dir_server yet: defaults */
	struct settings s;
	settings_load(&s, NULL, 0);
	s_r->imap_idle_timeout_secs = (unsigned)s.v[SET_IMAP_IDLE_TIMEOUT];
	s_r->imap_max_connections = (unsigned)s.v[SET_IMAP_MAX_CONNECTIONS];
	s_r->pop3_idle_timeout_secs = (unsigned)s.v[SET_POP3_IDLE_TIMEOUT];
	s_r->auth_max_failures = (unsigned)s.v[SET_AUTH_MAX_FAILURES];
	s_r->max_message_size = s.v[SET_SMTP_MAX_MESSAGE_SIZE];
}

unsigned long imapd_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}
