/* throttle.h - counts failures (failed logins) per key (a client address, later an address and an account) in a
 * window of time and says when a key has too many: a fixed-size table that keeps working when full (the oldest
 * entry makes room). Thread-safe. */
#ifndef IX_THROTTLE_H
#define IX_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

/* Length of the window in which the failures of a key are counted (from its first failure). */
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
/* Frees; sets *t to NULL. NULL is ignored. */
void throttle_destroy(struct throttle **t);
/* The failures of key in its current window (0: none, or the window is over). */
unsigned throttle_failures(struct throttle *t, const char *key, uint64_t now_secs);
/* True when key has reached the allowed failures in its current window (the attempt must be refused unchecked). */
bool throttle_blocked(struct throttle *t, const char *key, uint64_t now_secs);
/* Counts one failure for key (its window starts now if it had none). Returns its failures in the window. */
unsigned throttle_fail(struct throttle *t, const char *key, uint64_t now_secs);

#endif
