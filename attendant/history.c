/* history.c - the mail flow's short history from the tracking log (see history.h). */
#include "attendant/history.h"
#include "common/util.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "transport/mta/queue.h"

void history_init(struct history *h)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->partial);
}

void history_free(struct history *h)
{
	buf_free(&h->partial);
}

static size_t slot_of(const char *qid, size_t len)
{
	unsigned long hash = 5381;
	for (size_t i = 0; i < len; i++)
		hash = hash * 33 + (unsigned char)qid[i];
	return hash % HISTORY_PENDING;
}

/* "YYYY-MM-DDTHH:MM:SSZ" as seconds since the epoch; -1 when it is not one. */
static long long stamp_time(const char *s, size_t len)
{
	struct tm tm = { 0 };
	char copy[32];
	if (len >= sizeof(copy))
		return -1;
	memcpy(copy, s, len);
	copy[len] = '\0';
	const char *end = strptime(copy, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return end != NULL && *end == '\0' ? (long long)timegm(&tm) : -1;
}

void history_feed(struct history *h, const char *line, size_t len)
{
	const char *f[3];
	size_t flen[3], n = 0;
	const char *p = line, *end = line + len;
	while (n < 3 && p <= end) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		f[n] = p;
		flen[n++] = (size_t)((tab != NULL ? tab : end) - p);
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	if (n < 3 || flen[2] == 0 || flen[2] > QUEUE_ID_MAX)
		return;
	long long when = stamp_time(f[0], flen[0]);
	struct history_pending *slot = &h->pending[slot_of(f[2], flen[2])];
#define IS(word) (flen[1] == strlen(word) && memcmp(f[1], word, flen[1]) == 0)
	if (IS("received")) {
		h->cur.received++;
		h->received_total++;
		memcpy(slot->qid, f[2], flen[2]);
		slot->qid[flen[2]] = '\0';
		slot->received = when;
	} else if (IS("delivered") || IS("relayed")) {
		h->cur.delivered++;
		h->delivered_total++;
		if (when >= 0 && slot->received >= 0 && strlen(slot->qid) == flen[2] &&
		    memcmp(slot->qid, f[2], flen[2]) == 0) {
			unsigned long long lat = when > slot->received ? (unsigned long long)(when - slot->received)
								       : 0;
			h->cur.latency_count++;
			h->cur.latency_sum += lat;
			if (lat > h->cur.latency_max)
				h->cur.latency_max = lat;
		}
	} else if (IS("deferred")) {
		h->cur.deferred++;
		h->deferred_total++;
	} else if (IS("bounced") || IS("failed")) {
		h->cur.bounced++;
		h->bounced_total++;
	}
#undef IS
}

void history_read_log(struct history *h, const char *data_dir)
{
	char *path = xasprintf("%s/" TRACK_LOG_FILE, data_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0) {
		if (st.st_ino != h->ino || st.st_size < h->offset) { /* rotated: a new log from its start */
			h->ino = st.st_ino;
			h->offset = 0;
			buf_reset(&h->partial);
		}
		size_t want = (size_t)(st.st_size - h->offset);
		if (want > HISTORY_READ_MAX)
			want = HISTORY_READ_MAX;
		char *data = xmalloc(want + 1);
		ssize_t got = want > 0 ? pread(fd, data, want, h->offset) : 0;
		if (got > 0) {
			h->offset += got;
			buf_append(&h->partial, data, (size_t)got);
			size_t start = 0;
			for (size_t i = 0; i < h->partial.len; i++) {
				if (h->partial.data[i] == '\n') {
					history_feed(h, h->partial.data + start, i - start);
					start = i + 1;
				}
			}
			memmove(h->partial.data, h->partial.data + start, h->partial.len - start);
			h->partial.len -= start;
			if (h->partial.len > HISTORY_READ_MAX) /* no line is that long: not a tracking log */
				buf_reset(&h->partial);
		}
		free(data);
	}
	close(fd);
}

void history_sample(struct history *h, long long now, unsigned long long active, unsigned long long queued)
{
	h->cur.time = now;
	h->cur.active = active;
	h->cur.queued = queued;
	size_t at = (h->head + h->count) % HISTORY_SAMPLES;
	h->ring[at] = h->cur;
	if (h->count < HISTORY_SAMPLES)
		h->count++;
	else
		h->head = (h->head + 1) % HISTORY_SAMPLES;
	memset(&h->cur, 0, sizeof(h->cur));
	h->cur.active = active;
	h->cur.queued = queued;
}

static json_t *sample_json(const struct history_sample *s, long long seconds)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:i, s:f, s:I}", "time", (json_int_t)s->time, "seconds",
			 (json_int_t)seconds, "queue_active", (json_int_t)s->active, "queue", (json_int_t)s->queued,
			 "received", (int)s->received, "delivered", (int)s->delivered, "deferred", (int)s->deferred,
			 "bounced", (int)s->bounced, "latency_avg",
			 s->latency_count > 0 ? (double)s->latency_sum / s->latency_count : 0.0, "latency_max",
			 (json_int_t)s->latency_max);
}

void history_json(const struct history *h, long long now, struct buf *out)
{
	json_t *samples = json_array();
	for (size_t i = 0; i < h->count; i++)
		json_array_append_new(samples,
				      sample_json(&h->ring[(h->head + i) % HISTORY_SAMPLES], HISTORY_INTERVAL_S));
	struct history_sample cur = h->cur;
	cur.time = now;
	long long since = h->count > 0 ? now - h->ring[(h->head + h->count - 1) % HISTORY_SAMPLES].time
				       : HISTORY_INTERVAL_S;
	json_array_append_new(samples, sample_json(&cur, since > 0 ? since : 1));
	json_t *o = json_pack("{s:i, s:{s:I, s:I, s:I, s:I}, s:o}", "interval_seconds", HISTORY_INTERVAL_S, "totals",
			      "received", (json_int_t)h->received_total, "delivered", (json_int_t)h->delivered_total,
			      "deferred", (json_int_t)h->deferred_total, "bounced", (json_int_t)h->bounced_total,
			      "samples", samples);
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text != NULL)
		buf_append_str(out, text);
	free(text);
	json_decref(o);
}
