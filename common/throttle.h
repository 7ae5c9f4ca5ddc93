/* throttle.h - counts failures (failed logins) per key in a window of time and says when a key has too many: a
 * fixed-size table that keeps working when full (the oldest entry makes room); and the login guard every service
 * shares, three such tables keyed by (address, account), by address and by account. Thread-safe. */
#ifndef IX_THROTTLE_H
#define IX_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>
#include "common/settings.h"

/* Length of the window in which the failures of a key are counted (from its first failure), unless set. */
#define THROTTLE_WINDOW_SECS 60
/* Bytes of a key that count (longer keys are compared on their first THROTTLE_KEY_MAX bytes). */
#define THROTTLE_KEY_MAX 320

struct throttle;
/* capacity: keys tracked at once (memory stays bounded whatever the number of attackers; past it the entry whose
 * window started first among a few candidates is reused, an expired one first). max_failures: failures per key per
 * window after which the key is blocked (0: never). */
struct throttle *throttle_create(unsigned capacity, unsigned max_failures);
/* Changes the failures allowed per key per window (from the server's settings). */
void throttle_set_max(struct throttle *t, unsigned max_failures);
/* Changes the length of the window (seconds, at least 1; windows already running keep their start). */
void throttle_set_window(struct throttle *t, unsigned window_secs);
/* Frees; sets *t to NULL. NULL is ignored. */
void throttle_destroy(struct throttle **t);
/* The failures of key in its current window (0: none, or the window is over). */
unsigned throttle_failures(struct throttle *t, const char *key, uint64_t now_secs);
/* True when key has reached the allowed failures in its current window (the attempt must be refused unchecked). */
bool throttle_blocked(struct throttle *t, const char *key, uint64_t now_secs);
/* Counts one failure for key (its window starts now if it had none). Returns its failures in the window. */
unsigned throttle_fail(struct throttle *t, const char *key, uint64_t now_secs);

/* ---- the login guard ---- */

/* Failed logins allowed per window before attempts are refused unchecked ("temporarily blocked"); 0: no limit. */
struct throttle_limits {
	unsigned pair_max;    /* of one account from one client address (auth.max_failures) */
	unsigned address_max; /* from one client address, all accounts together (auth.max_address_failures) */
	unsigned account_max; /* of one account, from all addresses together (auth.max_account_failures) */
	unsigned window_secs; /* the window, from a key's first failure (auth.failure_window_seconds) */
};

/* What blocks an attempt. */
enum throttle_block {
	THROTTLE_FREE,    /* nothing: check the password */
	THROTTLE_PAIR,    /* this account from this address */
	THROTTLE_ADDRESS, /* this address */
	THROTTLE_ACCOUNT, /* this account */
};

struct throttle_guard;
/* capacity: keys each table tracks at once. The limits start as the settings' defaults. */
struct throttle_guard *throttle_guard_create(unsigned capacity);
/* Frees; sets *g to NULL. NULL is ignored. */
void throttle_guard_destroy(struct throttle_guard **g);
/* New limits. */
void throttle_guard_set(struct throttle_guard *g, const struct throttle_limits *l);
/* The limits the server's settings give (auth.*). */
void throttle_limits_from_settings(const struct settings *s, struct throttle_limits *l_r);
/* Whether an attempt for account (a login or an address as the client typed it, compared case-insensitively; NULL
 * or "": not known yet, the address alone is looked at) from address is blocked now. */
enum throttle_block throttle_guard_check(struct throttle_guard *g, const char *address, const char *account,
					 uint64_t now_secs);
/* Counts a failed login of account (NULL or "": unknown, counted against the address only) from address. Returns
 * the failures of the pair (of the address when account is unknown) in its window. */
unsigned throttle_guard_fail(struct throttle_guard *g, const char *address, const char *account, uint64_t now_secs);
/* Words for a log line: "this account from this address", ... ("" for THROTTLE_FREE). */
const char *throttle_block_text(enum throttle_block b);

#endif
