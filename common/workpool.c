/* workpool.c - worker threads over a job queue; finished jobs go back to the event loop through an evloop_async
 * (see workpool.h). */
#include "common/workpool.h"
#include "common/err.h"
#include "common/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct pool_job {
	struct pool_job *next;
	workpool_fn *run, *done;
	void *arg;
};

struct job_list {
	struct pool_job *head, *tail;
};

struct workpool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job_list todo, done;
	bool stop;
	pthread_t *threads;
	unsigned nthreads, joined; /* joined: threads 0..joined-1 are gone (a destroy may give up half-way) */
	struct evloop_async *async;
};

static void list_push(struct job_list *l, struct pool_job *j)
{
	j->next = NULL;
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

/* Calls the done functions of a detached list of finished jobs and frees them. */
static void run_done(struct pool_job *j)
{
	while (j != NULL) {
		struct pool_job *next = j->next;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
		j = next;
	}
}

static void *pool_thread(void *arg)
{
	struct workpool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->todo.head == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		struct pool_job *j = p->todo.head;
		if (j == NULL)
			break;
		p->todo.head = j->next;
		if (p->todo.head == NULL)
			p->todo.tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->run(j->arg);
		pthread_mutex_lock(&p->mu);
		if (j->done == NULL) {
			free(j);
			continue;
		}
		list_push(&p->done, j);
		evloop_async_send(p->async);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void pool_on_async(struct evloop *loop, void *ctx)
{
	(void)loop;
	struct workpool *p = ctx;
	pthread_mutex_lock(&p->mu);
	struct pool_job *j = p->done.head;
	p->done.head = p->done.tail = NULL;
	pthread_mutex_unlock(&p->mu);
	run_done(j);
}

static void pool_free(struct workpool *p)
{
	evloop_async_destroy(&p->async);
	run_done(p->done.head);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
}

int workpool_create(struct evloop *loop, unsigned threads, struct workpool **pool_r, struct buf *error_r)
{
	struct workpool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (evloop_async_create(loop, pool_on_async, p, &p->async, error_r) != 0) {
		pool_free(p);
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
		pool_free(p);
		return IX_EIO;
	}
	*pool_r = p;
	return 0;
}

void workpool_submit(struct workpool *p, workpool_fn *run, workpool_fn *done, void *arg)
{
	struct pool_job *j = xcalloc(1, sizeof(*j));
	j->run = run;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->mu);
	list_push(&p->todo, j);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int workpool_destroy(struct workpool **pool, unsigned grace_msecs)
{
	struct workpool *p = *pool;
	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	struct timespec until = time_after_msecs(CLOCK_REALTIME, grace_msecs);
	for (; p->joined < p->nthreads; p->joined++) {
		if (grace_msecs == 0)
			pthread_join(p->threads[p->joined], NULL);
		else if (pthread_timedjoin_np(p->threads[p->joined], NULL, &until) != 0)
			return IX_EAGAIN;
	}
	pool_free(p);
	*pool = NULL;
	return 0;
}
