/* imapd_auth.c - the worker pool, login throttling, the directory-backed user table and settings shared by
 * imapd and pop3d (see imapd_auth.h). */
#include "transport/login/imapd_auth.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/login/proxy.h"
#include "common/util.h"

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
	evloop_async_destroy(&p->async);
	for (struct pool_job *j = p->done, *n; j != NULL; j = n) {
		n = j->next;
		j->done(j->arg);
		free(j);
	}
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

void imapd_throttle_set_max(struct imapd_throttle *t, unsigned max_failures)
{
	t->max_failures = max_failures;
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

/* ---- users ---- */

void imapd_user_free(struct imapd_user *u)
{
	free(u->login);
	free(u->guid);
	free(u->dn);
	free(u->address);
	free(u->home_dn);
	memset(u, 0, sizeof(*u));
}

void imapd_password_wipe(char **pass_r, size_t *len_r)
{
	if (*pass_r != NULL) {
		memset(*pass_r, 0, *len_r);
		free(*pass_r);
	}
	*pass_r = NULL;
	*len_r = 0;
}

void imapd_password_keep(char **pass_r, size_t *len_r, const char *pass, size_t len)
{
	imapd_password_wipe(pass_r, len_r);
	*pass_r = xmalloc(len + 1);
	memcpy(*pass_r, pass, len);
	(*pass_r)[len] = '\0';
	*len_r = len;
}

int imapd_user_backend(const struct imapd_userdb *db, const char *here_dn, const struct imapd_user *u, bool pop3,
		       struct proxy_backend *b_r, struct buf *error_r)
{
	if (here_dn == NULL || u->home_dn == NULL || db->server == NULL || strcasecmp(u->home_dn, here_dn) == 0)
		return 0;
	char *host = NULL;
	unsigned port = 0;
	if (db->server(db->ctx, u->home_dn, pop3, &host, &port) != 0) {
		buf_printf(error_r, "the home server %s of %s is unknown here or has no %s port", u->home_dn, u->login,
			   pop3 ? "POP3" : "IMAP");
		return IX_ENOTFOUND;
	}
	int ret = proxy_backend_resolve(host, port, b_r, error_r);
	free(host);
	return ret == 0 ? 1 : ret;
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
