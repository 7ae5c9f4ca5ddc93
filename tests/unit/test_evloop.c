/* test_evloop.c - unit tests for common/evloop: pipes, one-shot and periodic timers, stop, signals.
 * No test asserts timings beyond ordering; waits are short and bounded. */
#include "tests/unit/test.h"
#include "common/evloop.h"
#include "common/err.h"
#include "common/util.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pipe_ctx {
	int reads;
	char got[64];
	size_t got_len;
	int writes;
};

static void on_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct pipe_ctx *p = ctx;
	(void)loop;
	if (!(events & EVLOOP_READ))
		return;
	ssize_t n = read(fd, p->got + p->got_len, sizeof(p->got) - p->got_len);
	if (n > 0)
		p->got_len += (size_t)n;
	p->reads++;
}

static void pipe_read_write(void)
{
	struct evloop *loop;
	struct buf err = BUF_INIT;
	test_assert(evloop_create(&loop, &err) == 0);
	int fds[2];
	test_assert(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
	struct pipe_ctx p = { 0 };
	test_assert(evloop_fd_set(loop, fds[0], EVLOOP_READ, on_read, &p) == 0);
	/* nothing to read: a bounded wait returns with no callback */
	test_assert(evloop_run_once(loop, 10) == 0);
	test_assert(write(fds[1], "hello", 5) == 5);
	test_assert(evloop_run_once(loop, 1000) == 1);
	test_assert(p.reads == 1 && p.got_len == 5 && memcmp(p.got, "hello", 5) == 0);
	/* interest 0: data waits */
	test_assert(evloop_fd_events(loop, fds[0], 0) == 0);
	test_assert(write(fds[1], "x", 1) == 1);
	test_assert(evloop_run_once(loop, 10) == 0);
	test_assert(evloop_fd_events(loop, fds[0], EVLOOP_READ) == 0);
	test_assert(evloop_run_once(loop, 1000) == 1);
	test_assert(p.got_len == 6);
	evloop_fd_remove(loop, fds[0]);
	test_assert(evloop_fd_events(loop, fds[0], EVLOOP_READ) == IX_ENOTFOUND);
	test_assert(write(fds[1], "y", 1) == 1);
	test_assert(evloop_run_once(loop, 10) == 0);
	close(fds[0]);
	close(fds[1]);
	evloop_destroy(&loop);
	test_assert(loop == NULL);
	buf_free(&err);
}

static void on_writable(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct pipe_ctx *p = ctx;
	if (events & EVLOOP_WRITE) {
		p->writes++;
		evloop_fd_remove(loop, fd);
	}
}

static void fd_reuse_after_close(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	int fds[2];
	test_assert(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
	struct pipe_ctx p = { 0 };
	test_assert(evloop_fd_set(loop, fds[1], EVLOOP_WRITE, on_writable, &p) == 0);
	test_assert(evloop_run_once(loop, 1000) == 1 && p.writes == 1);
	/* closed without remove, number reused: registration still works */
	test_assert(evloop_fd_set(loop, fds[0], EVLOOP_READ, on_read, &p) == 0);
	close(fds[0]);
	close(fds[1]);
	test_assert(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
	test_assert(evloop_fd_set(loop, fds[0], EVLOOP_READ, on_read, &p) == 0);
	test_assert(write(fds[1], "z", 1) == 1);
	test_assert(evloop_run_once(loop, 1000) == 1 && p.got_len == 1);
	close(fds[0]);
	close(fds[1]);
	evloop_destroy(&loop);
}

struct timer_ctx {
	int fired[8];
	int order[16];
	int norder;
	struct evloop_timer *stop_other;
};

static void on_timer(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	struct timer_ctx *tc = ctx;
	(void)loop;
	(void)t;
	(void)tc;
}

struct tagged {
	struct evloop_timer t;
	int id;
	struct timer_ctx *tc;
};

static void on_tagged(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	struct tagged *tg = ctx;
	(void)t;
	tg->tc->fired[tg->id]++;
	if (tg->tc->norder < 16)
		tg->tc->order[tg->tc->norder++] = tg->id;
	if (tg->tc->stop_other != NULL && tg->id == 0)
		evloop_timer_stop(loop, tg->tc->stop_other);
}

static void timers_fire_in_order(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct timer_ctx tc = { 0 };
	struct tagged tg[4];
	static const unsigned long delays[4] = { 30, 10, 20, 5 };
	for (int i = 0; i < 4; i++) {
		memset(&tg[i], 0, sizeof(tg[i]));
		tg[i].id = i;
		tg[i].tc = &tc;
		evloop_timer_start(loop, &tg[i].t, delays[i], 0, on_tagged, &tg[i]);
		test_assert(evloop_timer_pending(&tg[i].t));
	}
	/* stopping one that is pending removes it from the middle of the heap */
	evloop_timer_stop(loop, &tg[2].t);
	test_assert(!evloop_timer_pending(&tg[2].t));
	evloop_timer_stop(loop, &tg[2].t);
	for (int round = 0; round < 100 && tc.norder < 3; round++)
		test_assert(evloop_run_once(loop, -1) >= 0);
	test_assert(tc.norder == 3);
	test_assert(tc.order[0] == 3 && tc.order[1] == 1 && tc.order[2] == 0);
	test_assert(tc.fired[2] == 0);
	for (int i = 0; i < 4; i++)
		test_assert(!evloop_timer_pending(&tg[i].t));
	(void)on_timer;
	evloop_destroy(&loop);
}

static void many_timers_heap(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	enum { N = 200 };
	struct evloop_timer *ts = xcalloc(N, sizeof(*ts));
	int count = 0;
	/* pseudo-random deadlines 0..3 ms, every third one stopped again */
	unsigned seed = 12345;
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		evloop_timer_start(loop, &ts[i], (seed >> 16) % 4, 0, on_timer, &count);
	}
	for (int i = 0; i < N; i += 3)
		evloop_timer_stop(loop, &ts[i]);
	int pending = 0;
	for (int i = 0; i < N; i++)
		pending += evloop_timer_pending(&ts[i]);
	test_assert(pending == N - (N + 2) / 3);
	int ran = 0;
	for (int round = 0; round < 100 && ran < pending; round++) {
		int r = evloop_run_once(loop, -1);
		test_assert(r >= 0);
		ran += r;
	}
	test_assert(ran == pending);
	for (int i = 0; i < N; i++)
		test_assert(!evloop_timer_pending(&ts[i]));
	free(ts);
	evloop_destroy(&loop);
}

struct periodic_ctx {
	int count;
	struct evloop_timer t;
};

static void on_periodic(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	struct periodic_ctx *pc = ctx;
	test_assert(evloop_timer_pending(t));
	if (++pc->count == 3) {
		evloop_timer_stop(loop, t);
		evloop_stop(loop);
	}
}

static void periodic_timer_and_stop(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct periodic_ctx pc = { 0 };
	evloop_timer_start(loop, &pc.t, 1, 2, on_periodic, &pc);
	test_assert(evloop_run(loop) == 0);
	test_assert(pc.count == 3);
	test_assert(!evloop_timer_pending(&pc.t));
	evloop_destroy(&loop);
}

struct hook_ctx {
	int hooks;
	int signals;
};

static void on_hook(struct evloop *loop, void *ctx)
{
	(void)loop;
	((struct hook_ctx *)ctx)->hooks++;
}

static void on_signal(struct evloop *loop, int signo, void *ctx)
{
	struct hook_ctx *hc = ctx;
	if (signo == SIGUSR1)
		hc->signals++;
	evloop_stop(loop);
}

static void signal_and_before_sleep(void)
{
	struct evloop *loop;
	struct buf err = BUF_INIT;
	test_assert(evloop_create(&loop, &err) == 0);
	struct hook_ctx hc = { 0 };
	evloop_set_before_sleep(loop, on_hook, &hc);
	test_assert(evloop_signal(loop, SIGUSR1, on_signal, &hc, &err) == 0);
	test_assert(kill(getpid(), SIGUSR1) == 0);
	test_assert(evloop_run(loop) == 0);
	test_assert(hc.signals == 1);
	test_assert(hc.hooks == 1); /* the signal was pending: the first wait returned it */
	evloop_set_before_sleep(loop, NULL, NULL);
	int before = hc.hooks;
	test_assert(evloop_run_once(loop, 0) == 0);
	test_assert(hc.hooks == before);
	test_assert(evloop_signal(loop, SIGUSR1, NULL, NULL, &err) == 0);
	evloop_destroy(&loop);
	buf_free(&err);
}

struct async_ctx {
	struct evloop_async *async;
	int runs;
};

static void on_async(struct evloop *loop, void *ctx)
{
	struct async_ctx *ac = ctx;
	ac->runs++;
	evloop_stop(loop);
}

static void *sender(void *arg)
{
	struct async_ctx *ac = arg;
	for (int i = 0; i < 100; i++)
		evloop_async_send(ac->async);
	return NULL;
}

static void async_from_thread(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct async_ctx ac = { 0 };
	test_assert(evloop_async_create(loop, on_async, &ac, &ac.async, NULL) == 0);
	pthread_t t;
	test_assert(pthread_create(&t, NULL, sender, &ac) == 0);
	test_assert(evloop_run(loop) == 0);
	test_assert(ac.runs == 1); /* on_async stopped the loop at its first run */
	pthread_join(t, NULL);
	/* every send happened-before the join; what is left coalesces into at most one more run */
	(void)evloop_run_once(loop, 0);
	test_assert(ac.runs >= 1 && ac.runs <= 2);
	test_assert(evloop_run_once(loop, 0) == 0);
	evloop_async_destroy(&ac.async);
	test_assert(ac.async == NULL);
	evloop_destroy(&loop);
}

TEST_MAIN("evloop", TEST_CASE(pipe_read_write), TEST_CASE(fd_reuse_after_close), TEST_CASE(timers_fire_in_order),
	  TEST_CASE(many_timers_heap), TEST_CASE(periodic_timer_and_stop), TEST_CASE(signal_and_before_sleep),
	  TEST_CASE(async_from_thread))
