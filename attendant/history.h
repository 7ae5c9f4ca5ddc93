/* history.h - the short history of the mail flow the console draws (GET /api/v1/metrics): the attendant reads the
 * message tracking log as it grows and keeps, per interval, the queue's length, the messages delivered, deferred and
 * bounced, and their latency from reception to delivery, in a ring of the last hour. Kept in the attendant's memory
 * (a restart starts it empty), served on the control socket ("metrics"). */
#ifndef IX_HISTORY_H
#define IX_HISTORY_H

#include "common/buf.h"

#include <stddef.h>
#include <sys/types.h>

/* One sample per interval, the last hour of them. */
#define HISTORY_INTERVAL_S 10
#define HISTORY_SAMPLES 360
/* Messages received whose delivery is awaited for their latency (a table by queue id; a collision forgets one). */
#define HISTORY_PENDING 4096
/* The tracking log read per call at most (the rest next time). */
#define HISTORY_READ_MAX (4u << 20)

struct history_sample {
	long long time;                    /* the end of the interval (seconds since the epoch) */
	unsigned long long active, queued; /* messages in the queue at its end: due now, all */
	unsigned delivered, deferred, bounced, received;
	unsigned latency_count;         /* deliveries whose reception was seen */
	unsigned long long latency_sum; /* seconds from reception to delivery, summed */
	unsigned long long latency_max; /* the longest */
};

struct history_pending {
	char qid[33];
	long long received;
};

struct history {
	struct history_sample ring[HISTORY_SAMPLES];
	size_t head, count; /* the oldest sample, how many */
	struct history_sample cur;
	struct history_pending pending[HISTORY_PENDING];
	unsigned long long delivered_total, deferred_total, bounced_total, received_total;
	off_t offset; /* read so far of the tracking log */
	ino_t ino;
	struct buf partial; /* a line not yet ended */
};

void history_init(struct history *h);
void history_free(struct history *h);
/* Counts one line of the tracking log (TIME TAB EVENT TAB QUEUE-ID ...; no newline): received, delivered or
 * relayed (with its latency when its reception was seen), deferred, bounced or failed. Pure. */
void history_feed(struct history *h, const char *line, size_t len);
/* Feeds what the tracking log of data_dir gained since the last call (from its start after a rotation). */
void history_read_log(struct history *h, const char *data_dir);
/* Ends the interval at now with the queue's counts: it goes into the ring (the oldest leaves a full ring). */
void history_sample(struct history *h, long long now, unsigned long long active, unsigned long long queued);
/* Appends the JSON object {"interval_seconds", "totals": {...}, "samples": [...]} (oldest first, the interval in
 * progress last, its time now; each with the "seconds" it spans) for the API. */
void history_json(const struct history *h, long long now, struct buf *out);

#endif
