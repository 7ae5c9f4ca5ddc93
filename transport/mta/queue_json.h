/* queue_json.h - a queued message as JSON (jansson), written in one place for `interchange queue list --json` and
 * GET /api/v1/queue, /queue/ID. */
#ifndef IX_QUEUE_JSON_H
#define IX_QUEUE_JSON_H

#include "transport/mta/queue.h"

#include <jansson.h>
#include <stdbool.h>

/* Most bytes of a queued message a full answer carries (the rest is left out and said so). */
#define QUEUE_JSON_BODY_MAX (256 * 1024)

/* {"id", "age" (seconds at now), "sender", "message_id", "size", "recipients": [{"address", "state", "attempts",
 * "next_try", "last_error"}]}; full adds "submitted_by", "message" (up to QUEUE_JSON_BODY_MAX bytes of it, null when
 * it is no UTF-8 text) and "message_truncated". A new reference. */
json_t *queue_msg_json(const struct queue_msg *m, long long now, bool full);

#endif
