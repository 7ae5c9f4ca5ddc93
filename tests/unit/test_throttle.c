/* test_throttle.c - unit tests for common/throttle: blocking after the allowed failures, the window, keys kept
 * apart, and a full table that keeps counting (the oldest entry makes room). Time is passed in, never waited on. */
#include "tests/unit/test.h"
#include "common/throttle.h"

#include <stdio.h>

static void blocks_after_max(void)
{
	struct throttle *t = throttle_create(64, 3);
	test_assert(!throttle_blocked(t, "192.0.2.1", 1000));
	test_assert(throttle_fail(t, "192.0.2.1", 1000) == 1);
	test_assert(throttle_fail(t, "192.0.2.1", 1001) == 2);
	test_assert(!throttle_blocked(t, "192.0.2.1", 1002));
	test_assert(throttle_fail(t, "192.0.2.1", 1002) == 3);
	test_assert(throttle_blocked(t, "192.0.2.1", 1003));
	test_assert(throttle_failures(t, "192.0.2.1", 1003) == 3);
	/* another key is not affected */
	test_assert(!throttle_blocked(t, "192.0.2.2", 1003));
	test_assert(throttle_failures(t, "192.0.2.2", 1003) == 0);
	/* a key that extends another is another key */
	test_assert(!throttle_blocked(t, "192.0.2.10", 1003));
	throttle_destroy(&t);
	test_assert(t == NULL);
}

static void window_ends(void)
{
	struct throttle *t = throttle_create(64, 2);
	test_assert(throttle_fail(t, "a", 100) == 1);
	test_assert(throttle_fail(t, "a", 130) == 2);
	test_assert(throttle_blocked(t, "a", 100 + THROTTLE_WINDOW_SECS - 1));
	/* the window runs from the first failure */
	test_assert(!throttle_blocked(t, "a", 100 + THROTTLE_WINDOW_SECS));
	test_assert(throttle_fail(t, "a", 100 + THROTTLE_WINDOW_SECS) == 1);
	throttle_destroy(&t);
}

static void set_max(void)
{
	struct throttle *t = throttle_create(64, 0);
	for (int i = 0; i < 50; i++)
		throttle_fail(t, "a", 10);
	test_assert(!throttle_blocked(t, "a", 10)); /* 0: never */
	throttle_set_max(t, 50);
	test_assert(throttle_blocked(t, "a", 10));
	throttle_set_max(t, 51);
	test_assert(!throttle_blocked(t, "a", 10));
	throttle_destroy(&t);
}

/* Far more keys than the table holds: the newest keys are still counted and blocked. */
static void full_table_keeps_counting(void)
{
	struct throttle *t = throttle_create(256, 3);
	char key[32];
	uint64_t now = 5000;
	for (unsigned i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		throttle_fail(t, key, now);
	}
	for (unsigned k = 0; k < 3; k++)
		test_assert(throttle_fail(t, "198.51.100.7", now + 1) == k + 1);
	test_assert(throttle_blocked(t, "198.51.100.7", now + 2));
	/* expired entries give way before running ones: a blocked key survives a flood of new keys once the flood's
	 * own entries are older than its window */
	uint64_t later = now + THROTTLE_WINDOW_SECS + 5;
	for (unsigned k = 0; k < 3; k++)
		test_assert(throttle_fail(t, "203.0.113.9", later) == k + 1);
	for (unsigned i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "172.16.%u.%u", i >> 8, i & 255);
		throttle_fail(t, key, later + 1);
	}
	test_assert(throttle_blocked(t, "203.0.113.9", later + 2));
	throttle_destroy(&t);
}

static void long_keys(void)
{
	struct throttle *t = throttle_create(64, 1);
	char a[THROTTLE_KEY_MAX + 50], b[THROTTLE_KEY_MAX + 50];
	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 2] = 'y'; /* differs past THROTTLE_KEY_MAX: the same key */
	test_assert(throttle_fail(t, a, 1) == 1);
	test_assert(throttle_blocked(t, b, 2) && throttle_failures(t, b, 2) == 1);
	throttle_destroy(&t);
}

/* The login guard: a pair blocks alone, the address and the account past their own ceilings, in a set window. */
static void guard_pair_address_account(void)
{
	struct throttle_guard *g = throttle_guard_create(256);
	struct throttle_limits l = { .pair_max = 2, .address_max = 5, .account_max = 4, .window_secs = 10 };
	throttle_guard_set(g, &l);
	test_assert(throttle_guard_fail(g, "192.0.2.1", "Amy", 100) == 1);
	test_assert(throttle_guard_fail(g, "192.0.2.1", "amy", 100) == 2); /* accounts compare case-insensitively */
	test_assert(throttle_guard_check(g, "192.0.2.1", "AMY", 101) == THROTTLE_PAIR);
	test_assert(throttle_guard_check(g, "192.0.2.1", "rory", 101) == THROTTLE_FREE);
	test_assert(throttle_guard_check(g, "192.0.2.1", NULL, 101) == THROTTLE_FREE);
	test_assert(throttle_guard_check(g, "192.0.2.2", "amy", 101) == THROTTLE_FREE);
	/* amy from two more addresses: 4 of the account in all */
	throttle_guard_fail(g, "192.0.2.3", "amy", 102);
	throttle_guard_fail(g, "192.0.2.4", "amy", 102);
	test_assert(throttle_guard_check(g, "192.0.2.5", "amy", 103) == THROTTLE_ACCOUNT);
	/* five failures from 192.0.2.1 (two of amy, three unknown) block every account from it */
	for (int i = 0; i < 3; i++)
		throttle_guard_fail(g, "192.0.2.1", NULL, 104);
	test_assert(throttle_guard_check(g, "192.0.2.1", "rory", 104) == THROTTLE_ADDRESS);
	test_assert(throttle_guard_check(g, "192.0.2.1", NULL, 104) == THROTTLE_ADDRESS);
	/* all of it ends with the window (10 s from each key's first failure) */
	test_assert(throttle_guard_check(g, "192.0.2.1", "amy", 115) == THROTTLE_FREE);
	test_assert(throttle_guard_check(g, "192.0.2.5", "amy", 115) == THROTTLE_FREE);
	throttle_guard_destroy(&g);
	test_assert(g == NULL);
}

TEST_MAIN("throttle", TEST_CASE(blocks_after_max), TEST_CASE(window_ends), TEST_CASE(set_max),
	  TEST_CASE(full_table_keeps_counting), TEST_CASE(long_keys), TEST_CASE(guard_pair_address_account))
