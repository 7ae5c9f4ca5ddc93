/* throttle.c - failure counting per key in an open-addressed table of fixed size (see throttle.h). */
#include "common/throttle.h"
#include "common/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Slots looked at for a key: its own is among them, else the one it takes. */
#define THROTTLE_PROBES 8

struct throttle_slot {
	char *key; /* NULL: free */
	uint64_t window_start;
	unsigned failures;
};

struct throttle {
	pthread_mutex_t mu;
	unsigned max_failures;
	unsigned capacity;
	struct throttle_slot *slots;
};

struct throttle *throttle_create(unsigned capacity, unsigned max_failures)
{
	struct throttle *t = xcalloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	t->capacity = capacity < THROTTLE_PROBES ? THROTTLE_PROBES : capacity;
	t->max_failures = max_failures;
	t->slots = xcalloc(t->capacity, sizeof(*t->slots));
	return t;
}

void throttle_set_max(struct throttle *t, unsigned max_failures)
{
	pthread_mutex_lock(&t->mu);
	t->max_failures = max_failures;
	pthread_mutex_unlock(&t->mu);
}

void throttle_destroy(struct throttle **tp)
{
	struct throttle *t = *tp;
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->capacity; i++)
		free(t->slots[i].key);
	free(t->slots);
	pthread_mutex_destroy(&t->mu);
	free(t);
	*tp = NULL;
}

static uint32_t key_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* The slot of key, or (create) the one it takes: a free one among the probes, else the one whose window started
 * first (an expired window is always older than a running one). Under t->mu. */
static struct throttle_slot *slot_of(struct throttle *t, const char *key, uint64_t now, bool create)
{
	size_t len = strnlen(key, THROTTLE_KEY_MAX);
	uint32_t h = key_hash(key, len);
	struct throttle_slot *victim = NULL;
	for (unsigned i = 0; i < THROTTLE_PROBES; i++) {
		struct throttle_slot *sl = &t->slots[(h + i) % t->capacity];
		if (sl->key != NULL && strlen(sl->key) == len && memcmp(sl->key, key, len) == 0)
			return sl;
		if (victim != NULL && victim->key == NULL)
			continue;
		if (victim == NULL || sl->key == NULL || sl->window_start < victim->window_start)
			victim = sl;
	}
	if (!create)
		return NULL;
	free(victim->key);
	victim->key = xstrndup(key, len);
	victim->window_start = now;
	victim->failures = 0;
	return victim;
}

static unsigned failures_locked(struct throttle *t, const char *key, uint64_t now)
{
	struct throttle_slot *sl = slot_of(t, key, now, false);
	if (sl == NULL || now >= sl->window_start + THROTTLE_WINDOW_SECS)
		return 0;
	return sl->failures;
}

unsigned throttle_failures(struct throttle *t, const char *key, uint64_t now_secs)
{
	pthread_mutex_lock(&t->mu);
	unsigned n = failures_locked(t, key, now_secs);
	pthread_mutex_unlock(&t->mu);
	return n;
}

bool throttle_blocked(struct throttle *t, const char *key, uint64_t now_secs)
{
	pthread_mutex_lock(&t->mu);
	bool blocked = t->max_failures > 0 && failures_locked(t, key, now_secs) >= t->max_failures;
	pthread_mutex_unlock(&t->mu);
	return blocked;
}

unsigned throttle_fail(struct throttle *t, const char *key, uint64_t now_secs)
{
	pthread_mutex_lock(&t->mu);
	struct throttle_slot *sl = slot_of(t, key, now_secs, true);
	if (now_secs >= sl->window_start + THROTTLE_WINDOW_SECS) {
		sl->window_start = now_secs;
		sl->failures = 0;
	}
	unsigned n = ++sl->failures;
	pthread_mutex_unlock(&t->mu);
	return n;
}
