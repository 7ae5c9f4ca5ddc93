/* evloop.h - one small epoll event loop per process: fd readiness callbacks, monotonic timers, signals, wake-ups
 * from other threads (evloop_async), and a before-sleep hook run once per round before every wait. */
#ifndef IX_EVLOOP_H
#define IX_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"

/* Most fds a loop will watch: registrations above this fd number fail with IX_ELIMIT. */
#define EVLOOP_MAX_FD (1 << 20)
/* Most events handled per wakeup. */
#define EVLOOP_MAX_EVENTS 256

/* Interest and readiness bits. Errors and hang-ups are reported as whatever the fd is interested in, so
 * the callback's read or write sees the error. */
#define EVLOOP_READ 1u
#define EVLOOP_WRITE 2u

struct evloop;
struct evloop_timer;

/* Called when fd is ready; events is a subset of the interest (EVLOOP_READ | EVLOOP_WRITE). Spurious
 * wakeups are possible (the fd may have been closed and reused during the same round), so callbacks must use
 * non-blocking I/O and tolerate EAGAIN. The callback may change or remove any registration, start or stop
 * any timer, or stop the loop. */
typedef void evloop_io_fn(struct evloop *loop, int fd, unsigned events, void *ctx);
/* Called when a timer is due. A one-shot timer is already stopped (it may be restarted from here); a
 * periodic one is already rescheduled (it may be stopped from here). */
typedef void evloop_timer_fn(struct evloop *loop, struct evloop_timer *timer, void *ctx);
/* Before-sleep hook, and the callback for a caught signal. */
typedef void evloop_hook_fn(struct evloop *loop, void *ctx);
typedef void evloop_signal_fn(struct evloop *loop, int signo, void *ctx);

/* A timer lives in the caller's memory (usually embedded in a connection or session), so starting and
 * stopping never allocate. Zero it (or use EVLOOP_TIMER_INIT) before first use. Fields are private. */
struct evloop_timer {
	unsigned long long deadline_usec;
	unsigned long long interval_usec; /* 0 for one-shot */
	size_t heap_index;                /* position in the loop's heap + 1; 0 when not pending */
	evloop_timer_fn *fn;
	void *ctx;
};
/* an initializer, not a block: clang-format would brace it as one */
/* clang-format off */
#define EVLOOP_TIMER_INIT { 0, 0, 0, NULL, NULL }
/* clang-format on */

/* Creates a loop (epoll instance). Returns 0, or IX_EIO with a message in error_r (which may be NULL). */
int evloop_create(struct evloop **loop_r, struct buf *error_r);
/* Frees the loop and sets *loop to NULL. Registered fds are not closed; pending timers are simply forgotten
 * (their structs stay the caller's); blocked signals stay blocked. NULL is ignored. */
void evloop_destroy(struct evloop **loop);

/* Registers fd with an interest mask (may be 0: registered but quiet) and a callback, or replaces the
 * interest, callback and context of an fd already registered. Returns 0, IX_ELIMIT (fd too large) or IX_EIO
 * (epoll_ctl failed; errno kept). */
int evloop_fd_set(struct evloop *loop, int fd, unsigned events, evloop_io_fn *fn, void *ctx);
/* Changes only the interest mask of a registered fd. Returns 0, IX_ENOTFOUND or IX_EIO. */
int evloop_fd_events(struct evloop *loop, int fd, unsigned events);
/* Unregisters fd (before closing it). Unknown fds are ignored. No callback for fd runs after this. */
void evloop_fd_remove(struct evloop *loop, int fd);

/* Starts (or restarts) a timer due after msecs milliseconds; periodic when interval_msecs > 0 (the first
 * firing is still after msecs). The struct must stay valid until the timer fires (one-shot) or is stopped. */
void evloop_timer_start(struct evloop *loop, struct evloop_timer *timer, unsigned long msecs,
			unsigned long interval_msecs, evloop_timer_fn *fn, void *ctx);
/* Stops a timer; stopping a timer that is not pending does nothing. */
void evloop_timer_stop(struct evloop *loop, struct evloop_timer *timer);
bool evloop_timer_pending(const struct evloop_timer *timer);

/* Sets the hook run before every wait (NULL removes it). It may queue replies: writes made from the hook
 * are flushed by their owners' write interest on this same round. */
void evloop_set_before_sleep(struct evloop *loop, evloop_hook_fn *fn, void *ctx);

/* Catches signo through a signalfd: the signal is blocked for the calling thread and fn runs from the loop.
 * fn NULL stops watching (the signal stays blocked). Returns 0, or IX_EINVAL / IX_EIO with a message in
 * error_r (may be NULL). Block the signal before starting threads so that no other thread receives it; a forked
 * child inherits the blocked mask, so unblock (sigprocmask SIG_SETMASK) before exec. */
int evloop_signal(struct evloop *loop, int signo, evloop_signal_fn *fn, void *ctx, struct buf *error_r);

/* A wakeup other threads can send (a worker pool handing back finished blocking work): evloop_async_send
 * from any thread makes fn run once on the loop's thread; sends that arrive before it runs coalesce. */
struct evloop_async;
/* Returns 0 or IX_EIO (eventfd failed) with error_r (may be NULL). Free with evloop_async_destroy. */
int evloop_async_create(struct evloop *loop, evloop_hook_fn *fn, void *ctx, struct evloop_async **async_r,
			struct buf *error_r);
/* Unregisters and frees; sets *async to NULL. No thread may send on it any more. */
void evloop_async_destroy(struct evloop_async **async);
/* Thread-safe and async-signal-safe. */
void evloop_async_send(struct evloop_async *async);

/* Makes evloop_run return after the current round. Safe from any callback. */
void evloop_stop(struct evloop *loop);
/* Runs until evloop_stop. Returns 0, or IX_EIO if epoll_wait fails for a reason other than EINTR. */
int evloop_run(struct evloop *loop);
/* Runs one round: the before-sleep hook, one wait of at most timeout_msecs (-1: until an event or timer),
 * then the due callbacks. Returns the number of callbacks run, or IX_EIO. For tests and nested drivers. */
int evloop_run_once(struct evloop *loop, int timeout_msecs);
/* Monotonic time in microseconds as of the start of the current round (cheap; no system call). */
unsigned long long evloop_now_usec(const struct evloop *loop);

#endif
