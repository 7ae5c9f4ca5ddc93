/* throttle.c - failure counting per key in an open-addressed table of fixed size (see throttle.h). */
#include "common/throttle.h"
#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
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
	unsigned window;
	unsigned capacity;
	struct throttle_slot *slots;
};

struct throttle *throttle_create(unsigned capacity, unsigned max_failures)
{
	struct throttle *t = xcalloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	t->capacity = capacity < THROTTLE_PROBES ? THROTTLE_PROBES : capacity;
	t->max_failures = max_failures;
	t->window = THROTTLE_WINDOW_SECS;
	t->slots = xcalloc(t->capacity, sizeof(*t->slots));
	return t;
}

void throttle_set_max(struct throttle *t, unsigned max_failures)
{
	pthread_mutex_lock(&t->mu);
	t->max_failures = max_failures;
	pthread_mutex_unlock(&t->mu);
}

void throttle_set_window(struct throttle *t, unsigned window_secs)
{
	pthread_mutex_lock(&t->mu);
	t->window = window_secs > 0 ? window_secs : 1;
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
	if (sl == NULL || now >= sl->window_start + t->window)
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
	if (now_secs >= sl->window_start + t->window) {
		sl->window_start = now_secs;
		sl->failures = 0;
	}
	unsigned n = ++sl->failures;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* ---- the login guard ---- */

struct throttle_guard {
	struct throttle *pair, *address, *account;
};

struct throttle_guard *throttle_guard_create(unsigned capacity)
{
	struct throttle_guard *g = xcalloc(1, sizeof(*g));
	g->pair = throttle_create(capacity, 0);
	g->address = throttle_create(capacity, 0);
	g->account = throttle_create(capacity, 0);
	struct settings s;
	settings_load(&s, NULL, 0);
	struct throttle_limits l;
	throttle_limits_from_settings(&s, &l);
	throttle_guard_set(g, &l);
	return g;
}

void throttle_guard_destroy(struct throttle_guard **gp)
{
	struct throttle_guard *g = *gp;
	if (g == NULL)
		return;
	throttle_destroy(&g->pair);
	throttle_destroy(&g->address);
	throttle_destroy(&g->account);
	free(g);
	*gp = NULL;
}

void throttle_guard_set(struct throttle_guard *g, const struct throttle_limits *l)
{
	throttle_set_max(g->pair, l->pair_max);
	throttle_set_max(g->address, l->address_max);
	throttle_set_max(g->account, l->account_max);
	throttle_set_window(g->pair, l->window_secs);
	throttle_set_window(g->address, l->window_secs);
	throttle_set_window(g->account, l->window_secs);
}

void throttle_limits_from_settings(const struct settings *s, struct throttle_limits *l_r)
{
	l_r->pair_max = (unsigned)s->v[SET_AUTH_MAX_FAILURES];
	l_r->address_max = (unsigned)s->v[SET_AUTH_MAX_ADDRESS_FAILURES];
	l_r->account_max = (unsigned)s->v[SET_AUTH_MAX_ACCOUNT_FAILURES];
	l_r->window_secs = (unsigned)s->v[SET_AUTH_FAILURE_WINDOW_SECONDS];
}

/* The keys of an attempt: the account folded to lower case, and the pair "address account". */
static void guard_keys(const char *address, const char *account, char *acct_r, char *pair_r)
{
	size_t i = 0;
	for (; account != NULL && account[i] != '\0' && i < THROTTLE_KEY_MAX; i++)
		acct_r[i] = (char)((account[i] >= 'A' && account[i] <= 'Z') ? account[i] + 32 : account[i]);
	acct_r[i] = '\0';
	snprintf(pair_r, THROTTLE_KEY_MAX + 1, "%s %s", address, acct_r);
}

enum throttle_block throttle_guard_check(struct throttle_guard *g, const char *address, const char *account,
					 uint64_t now_secs)
{
	if (throttle_blocked(g->address, address, now_secs))
		return THROTTLE_ADDRESS;
	if (account == NULL || account[0] == '\0')
		return THROTTLE_FREE;
	char acct[THROTTLE_KEY_MAX + 1], pair[THROTTLE_KEY_MAX + 1];
	guard_keys(address, account, acct, pair);
	if (throttle_blocked(g->pair, pair, now_secs))
		return THROTTLE_PAIR;
	if (throttle_blocked(g->account, acct, now_secs))
		return THROTTLE_ACCOUNT;
	return THROTTLE_FREE;
}

unsigned throttle_guard_fail(struct throttle_guard *g, const char *address, const char *account, uint64_t now_secs)
{
	unsigned n = throttle_fail(g->address, address, now_secs);
	if (account == NULL || account[0] == '\0')
		return n;
	char acct[THROTTLE_KEY_MAX + 1], pair[THROTTLE_KEY_MAX + 1];
	guard_keys(address, account, acct, pair);
	throttle_fail(g->account, acct, now_secs);
	return throttle_fail(g->pair, pair, now_secs);
}

const char *throttle_block_text(enum throttle_block b)
{
	switch (b) {
	case THROTTLE_PAIR: return "this account from this address";
	case THROTTLE_ADDRESS: return "this address";
	case THROTTLE_ACCOUNT: return "this account";
	case THROTTLE_FREE: break;
	}
	return "";
}
