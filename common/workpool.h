/* workpool.h - a pool of threads for blocking work (password checks by LDAP bind, synced store writes, deliveries)
 * whose results come back on the event loop's thread: one pool for every daemon. */
#ifndef IX_WORKPOOL_H
#define IX_WORKPOOL_H

#include "common/buf.h"
#include "common/evloop.h"

struct workpool;
/* run: called on a worker thread; done (may be NULL): then called on the loop's thread with the same arg. */
typedef void workpool_fn(void *arg);

/* Creates a pool of threads (0: one) that hands finished jobs back to loop. Returns 0 or IX_EIO with error_r (may
 * be NULL). */
int workpool_create(struct evloop *loop, unsigned threads, struct workpool **pool_r, struct buf *error_r);
/* Queues a job (never fails; the job node is allocated). Jobs start in the order queued, on any thread; done calls
 * come back on the loop, in the order the jobs finished. */
void workpool_submit(struct workpool *pool, workpool_fn *run, workpool_fn *done, void *arg);
/* Lets the queued jobs run to the end and joins the threads, waiting at most grace_msecs (0: without limit); then
 * calls the done functions of every finished job (on the calling thread: destroy the pool while what those
 * functions touch still exists), frees and sets *pool to NULL. Returns 0, or IX_EAGAIN when a thread was still
 * running after grace_msecs: the pool is then left as it is (its threads still use it) and the caller should exit
 * the process. NULL is ignored. */
int workpool_destroy(struct workpool **pool, unsigned grace_msecs);

#endif
