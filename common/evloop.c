/* evloop.c - epoll event loop: an fd table indexed by fd number, a binary min-heap of timers (O(log n)
 * start/stop), a signalfd for signals, and a before-sleep hook. Modelled on the shape of Redis ae.c. */
#include "common/evloop.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct evloop_fd {
	unsigned events; /* interest; 0 with fn NULL means not registered */
	bool registered;
	evloop_io_fn *fn;
	void *ctx;
};

struct evloop_sig {
	evloop_signal_fn *fn;
	void *ctx;
};

struct evloop {
	int epfd;
	bool stop;
	unsigned long long now_usec;

	struct evloop_fd *fds;
	size_t fds_cap;

	struct evloop_timer **heap;
	size_t heap_len, heap_cap;

	evloop_hook_fn *before_sleep;
	void *before_sleep_ctx;

	int sigfd;
	sigset_t sigmask;
	struct evloop_sig sigs[_NSIG];
};

int evloop_create(struct evloop **loop_r, struct buf *error_r)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "epoll_create1: %s", strerror(errno));
		return IX_EIO;
	}
	struct evloop *loop = xcalloc(1, sizeof(*loop));
	loop->epfd = epfd;
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->now_usec = now_usec();
	*loop_r = loop;
	return 0;
}

void evloop_destroy(struct evloop **loopp)
{
	struct evloop *loop = *loopp;
	if (loop == NULL)
		return;
	for (size_t i = 0; i < loop->heap_len; i++)
		loop->heap[i]->heap_index = 0;
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	close(loop->epfd);
	free(loop->fds);
	free(loop->heap);
	free(loop);
	*loopp = NULL;
}

static uint32_t epoll_bits(unsigned events)
{
	uint32_t e = 0;
	if (events & EVLOOP_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & EVLOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

int evloop_fd_set(struct evloop *loop, int fd, unsigned events, evloop_io_fn *fn, void *ctx)
{
	if (fd < 0 || fd >= EVLOOP_MAX_FD)
		return IX_ELIMIT;
	if ((size_t)fd >= loop->fds_cap) {
		size_t cap = loop->fds_cap ? loop->fds_cap : 64;
		while (cap <= (size_t)fd)
			cap *= 2;
		loop->fds = xrealloc(loop->fds, cap * sizeof(*loop->fds));
		memset(loop->fds + loop->fds_cap, 0, (cap - loop->fds_cap) * sizeof(*loop->fds));
		loop->fds_cap = cap;
	}
	struct evloop_fd *f = &loop->fds[fd];
	struct epoll_event ev = { .events = epoll_bits(events), .data.fd = fd };
	int op = f->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(loop->epfd, op, fd, &ev) < 0) {
		/* the fd was closed without evloop_fd_remove and its number reused, or the reverse */
		if (!(op == EPOLL_CTL_MOD && errno == ENOENT) && !(op == EPOLL_CTL_ADD && errno == EEXIST))
			return IX_EIO;
		op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
		if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
			return IX_EIO;
	}
	f->registered = true;
	f->events = events;
	f->fn = fn;
	f->ctx = ctx;
	return 0;
}

int evloop_fd_events(struct evloop *loop, int fd, unsigned events)
{
	if (fd < 0 || (size_t)fd >= loop->fds_cap || !loop->fds[fd].registered)
		return IX_ENOTFOUND;
	struct evloop_fd *f = &loop->fds[fd];
	if (f->events == events)
		return 0;
	struct epoll_event ev = { .events = epoll_bits(events), .data.fd = fd };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return IX_EIO;
	f->events = events;
	return 0;
}

void evloop_fd_remove(struct evloop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->fds_cap || !loop->fds[fd].registered)
		return;
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&loop->fds[fd], 0, sizeof(loop->fds[fd]));
}

/* ---- timers: binary min-heap on deadline; heap_index is position + 1 ---- */

static void heap_set(struct evloop *loop, size_t i, struct evloop_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i + 1;
}

static void heap_up(struct evloop *loop, size_t i)
{
	struct evloop_timer *t = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->deadline_usec <= t->deadline_usec)
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct evloop *loop, size_t i)
{
	struct evloop_timer *t = loop->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= loop->heap_len)
			break;
		if (child + 1 < loop->heap_len &&
		    loop->heap[child + 1]->deadline_usec < loop->heap[child]->deadline_usec)
			child++;
		if (t->deadline_usec <= loop->heap[child]->deadline_usec)
			break;
		heap_set(loop, i, loop->heap[child]);
		i = child;
	}
	heap_set(loop, i, t);
}

void evloop_timer_stop(struct evloop *loop, struct evloop_timer *t)
{
	if (t->heap_index == 0)
		return;
	size_t i = t->heap_index - 1;
	if (i >= loop->heap_len || loop->heap[i] != t)
		panic("evloop_timer_stop: timer not in this loop");
	t->heap_index = 0;
	loop->heap_len--;
	if (i == loop->heap_len)
		return;
	heap_set(loop, i, loop->heap[loop->heap_len]);
	heap_up(loop, i);
	heap_down(loop, loop->heap[i]->heap_index - 1);
}

static void timer_insert(struct evloop *loop, struct evloop_timer *t)
{
	if (loop->heap_len == loop->heap_cap) {
		loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		loop->heap = xrealloc(loop->heap, loop->heap_cap * sizeof(*loop->heap));
	}
	loop->heap_len++;
	heap_set(loop, loop->heap_len - 1, t);
	heap_up(loop, loop->heap_len - 1);
}

void evloop_timer_start(struct evloop *loop, struct evloop_timer *t, unsigned long msecs, unsigned long interval_msecs,
			evloop_timer_fn *fn, void *ctx)
{
	evloop_timer_stop(loop, t);
	t->deadline_usec = now_usec() + (unsigned long long)msecs * 1000ULL;
	t->interval_usec = (unsigned long long)interval_msecs * 1000ULL;
	t->fn = fn;
	t->ctx = ctx;
	timer_insert(loop, t);
}

bool evloop_timer_pending(const struct evloop_timer *t)
{
	return t->heap_index != 0;
}

static int run_timers(struct evloop *loop)
{
	int ran = 0;
	/* Timers due by the round's clock; a timer started from a callback gets a later deadline (or the same
	 * microsecond at worst, and the clock is re-read before each firing), so this terminates. */
	unsigned long long now = loop->now_usec;
	while (loop->heap_len > 0 && loop->heap[0]->deadline_usec <= now && !loop->stop) {
		struct evloop_timer *t = loop->heap[0];
		evloop_timer_stop(loop, t);
		if (t->interval_usec > 0) {
			t->deadline_usec += t->interval_usec;
			if (t->deadline_usec <= now)
				t->deadline_usec = now + t->interval_usec; /* fell behind: do not fire in a burst */
			timer_insert(loop, t);
		}
		t->fn(loop, t, t->ctx);
		ran++;
	}
	return ran;
}

/* ---- signals ---- */

static void signal_ready(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)events;
	(void)ctx;
	struct signalfd_siginfo si[8];
	for (;;) {
		ssize_t n = read(fd, si, sizeof(si));
		if (n <= 0)
			return;
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
			unsigned signo = si[i].ssi_signo;
			if (signo < _NSIG && loop->sigs[signo].fn != NULL)
				loop->sigs[signo].fn(loop, (int)signo, loop->sigs[signo].ctx);
		}
	}
}

int evloop_signal(struct evloop *loop, int signo, evloop_signal_fn *fn, void *ctx, struct buf *error_r)
{
	if (signo <= 0 || signo >= _NSIG) {
		if (error_r != NULL)
			buf_printf(error_r, "bad signal number %d", signo);
		return IX_EINVAL;
	}
	loop->sigs[signo].fn = fn;
	loop->sigs[signo].ctx = ctx;
	if (fn == NULL)
		return 0;
	sigaddset(&loop->sigmask, signo);
	pthread_sigmask(SIG_BLOCK, &loop->sigmask, NULL);
	int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "signalfd: %s", strerror(errno));
		return IX_EIO;
	}
	if (loop->sigfd < 0) {
		loop->sigfd = fd;
		if (evloop_fd_set(loop, fd, EVLOOP_READ, signal_ready, NULL) < 0) {
			if (error_r != NULL)
				buf_printf(error_r, "epoll_ctl(signalfd): %s", strerror(errno));
			return IX_EIO;
		}
	}
	return 0;
}

/* ---- cross-thread wakeups ---- */

struct evloop_async {
	struct evloop *loop;
	int fd;
	evloop_hook_fn *fn;
	void *ctx;
};

static void async_ready(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)events;
	struct evloop_async *a = ctx;
	uint64_t count;
	if (read(fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
		a->fn(loop, a->ctx);
}

int evloop_async_create(struct evloop *loop, evloop_hook_fn *fn, void *ctx, struct evloop_async **async_r,
			struct buf *error_r)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "eventfd: %s", strerror(errno));
		return IX_EIO;
	}
	struct evloop_async *a = xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->fd = fd;
	a->fn = fn;
	a->ctx = ctx;
	if (evloop_fd_set(loop, fd, EVLOOP_READ, async_ready, a) < 0) {
		if (error_r != NULL)
			buf_printf(error_r, "epoll_ctl(eventfd): %s", strerror(errno));
		close(fd);
		free(a);
		return IX_EIO;
	}
	*async_r = a;
	return 0;
}

void evloop_async_destroy(struct evloop_async **ap)
{
	struct evloop_async *a = *ap;
	if (a == NULL)
		return;
	evloop_fd_remove(a->loop, a->fd);
	close(a->fd);
	free(a);
	*ap = NULL;
}

void evloop_async_send(struct evloop_async *a)
{
	uint64_t one = 1;
	ssize_t n;
	do
		n = write(a->fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* EAGAIN means the counter is saturated: a wakeup is pending anyway */
}

/* ---- running ---- */

void evloop_set_before_sleep(struct evloop *loop, evloop_hook_fn *fn, void *ctx)
{
	loop->before_sleep = fn;
	loop->before_sleep_ctx = ctx;
}

void evloop_stop(struct evloop *loop)
{
	loop->stop = true;
}

unsigned long long evloop_now_usec(const struct evloop *loop)
{
	return loop->now_usec;
}

int evloop_run_once(struct evloop *loop, int timeout_msecs)
{
	if (loop->before_sleep != NULL)
		loop->before_sleep(loop, loop->before_sleep_ctx);
	int timeout = timeout_msecs;
	if (loop->stop) {
		timeout = 0;
	} else if (loop->heap_len > 0) {
		unsigned long long now = now_usec(), due = loop->heap[0]->deadline_usec;
		/* round up so that we wake at or after the deadline, never just before it */
		unsigned long long wait = due > now ? (due - now + 999) / 1000 : 0;
		if (wait > 0x7fffffff)
			wait = 0x7fffffff;
		if (timeout < 0 || (unsigned long long)timeout > wait)
			timeout = (int)wait;
	}
	struct epoll_event events[EVLOOP_MAX_EVENTS];
	int n = epoll_wait(loop->epfd, events, EVLOOP_MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno != EINTR)
			return IX_EIO;
		n = 0;
	}
	loop->now_usec = now_usec();
	int ran = 0;
	for (int i = 0; i < n; i++) {
		int fd = events[i].data.fd;
		if (fd < 0 || (size_t)fd >= loop->fds_cap)
			continue;
		struct evloop_fd *f = &loop->fds[fd];
		unsigned ready = 0;
		uint32_t e = events[i].events;
		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			ready |= EVLOOP_READ;
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			ready |= EVLOOP_WRITE;
		ready &= f->events; /* an earlier callback of this round may have changed the interest */
		if (ready == 0 || f->fn == NULL)
			continue;
		f->fn(loop, fd, ready, f->ctx);
		ran++;
	}
	ran += run_timers(loop);
	return ran;
}

int evloop_run(struct evloop *loop)
{
	loop->stop = false;
	while (!loop->stop) {
		int ret = evloop_run_once(loop, -1);
		if (ret < 0)
			return ret;
	}
	return 0;
}
