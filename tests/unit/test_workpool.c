/* test_workpool.c - unit tests for common/workpool: every job runs on a worker and its done function on the loop's
 * thread; jobs without done; destroy runs what is queued and reports what finished; destroy with a grace period
 * gives up on a thread that does not finish. */
#include "tests/unit/test.h"
#include "common/workpool.h"
#include "common/err.h"
#include "common/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#define NJOBS 200

struct counts {
	pthread_t loop_thread;
	atomic_uint ran;
	unsigned done, done_off_loop, ran_on_loop;
	struct evloop *loop;
};

struct job {
	struct counts *c;
	unsigned value, result;
};

static void job_run(void *arg)
{
	struct job *j = arg;
	if (pthread_equal(pthread_self(), j->c->loop_thread))
		j->c->ran_on_loop++;
	j->result = j->value * 2;
	atomic_fetch_add(&j->c->ran, 1);
}

static void job_done(void *arg)
{
	struct job *j = arg;
	struct counts *c = j->c;
	if (!pthread_equal(pthread_self(), c->loop_thread) || j->result != j->value * 2)
		c->done_off_loop++;
	if (++c->done == NJOBS)
		evloop_stop(c->loop);
}

/* Queues NJOBS jobs; every_done: one in so many has a done function. */
static void submit_jobs(struct workpool *p, struct counts *c, unsigned every_done)
{
	static struct job jobs[NJOBS];
	for (unsigned i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){ .c = c, .value = i };
		workpool_submit(p, job_run, i % every_done == 0 ? job_done : NULL, &jobs[i]);
	}
}

static void jobs_come_back_on_the_loop(void)
{
	struct evloop *loop;
	struct buf err = BUF_INIT;
	test_assert(evloop_create(&loop, &err) == 0);
	struct counts c = { .loop_thread = pthread_self(), .loop = loop };
	struct workpool *p = NULL;
	test_assert(workpool_create(loop, 4, &p, &err) == 0);
	submit_jobs(p, &c, 1);
	test_assert(evloop_run(loop) == 0);
	test_assert(c.done == NJOBS);
	test_assert(c.done_off_loop == 0);
	test_assert(c.ran_on_loop == 0);
	test_assert(workpool_destroy(&p, 0) == 0);
	test_assert(p == NULL);
	evloop_destroy(&loop);
	buf_free(&err);
}

/* destroy runs what is still queued and calls the done functions of what finished, on the caller's thread */
static void destroy_drains(void)
{
	struct evloop *loop;
	struct buf err = BUF_INIT;
	test_assert(evloop_create(&loop, &err) == 0);
	struct counts c = { .loop_thread = pthread_self(), .loop = loop };
	struct workpool *p = NULL;
	test_assert(workpool_create(loop, 2, &p, &err) == 0);
	submit_jobs(p, &c, 2);
	test_assert(workpool_destroy(&p, 0) == 0);
	test_assert(atomic_load(&c.ran) == NJOBS);
	test_assert(c.done == NJOBS / 2);
	test_assert(c.done_off_loop == 0);
	evloop_destroy(&loop);
	buf_free(&err);
}

static atomic_bool release_slow;

static void slow_run(void *arg)
{
	(void)arg;
	while (!atomic_load(&release_slow))
		usleep(1000);
}

/* a job that does not finish within the grace period: destroy says so instead of waiting */
static void destroy_grace(void)
{
	struct evloop *loop;
	struct buf err = BUF_INIT;
	test_assert(evloop_create(&loop, &err) == 0);
	struct workpool *p = NULL;
	test_assert(workpool_create(loop, 1, &p, &err) == 0);
	workpool_submit(p, slow_run, NULL, NULL);
	test_assert(workpool_destroy(&p, 50) == IX_EAGAIN);
	test_assert(p != NULL);
	atomic_store(&release_slow, true);
	test_assert(workpool_destroy(&p, 0) == 0);
	test_assert(p == NULL);
	evloop_destroy(&loop);
	buf_free(&err);
}

TEST_MAIN("workpool", TEST_CASE(jobs_come_back_on_the_loop), TEST_CASE(destroy_drains), TEST_CASE(destroy_grace))
