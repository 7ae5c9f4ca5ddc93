/* sync_relay.h - the pass-through relay of a sync source with --auth passthrough: a socket of this server where
 * slapd's remoteauth overlay sends the binds of the source's users, answered by a bind at the source (docs/sync.md). */
#ifndef IX_SYNC_RELAY_H
#define IX_SYNC_RELAY_H

#include "common/buf.h"

/* PBKDF2-HMAC-SHA256 iterations of the hash kept of a password the source took */
#define SYNC_RELAY_PBKDF2_ITERATIONS 100000
/* a connection silent this long is closed */
#define SYNC_RELAY_IDLE_S 30
/* how soon the relay's listener notices it is asked to stop */
#define SYNC_RELAY_POLL_MS 200
/* the cache file is written at most once in this many seconds (changes in between wait for the next write) */
#define SYNC_RELAY_WRITE_S 1

/* Each connection (slapd's remoteauth, one per bind) is answered in a thread of its own: a simple bind of DN with a
 * password is tried at the source uri (repl_connect_tls: StartTLS with the certificate checked against cafile, or
 * the system's CAs, off this machine). The source takes it: success, and a hash of the password (16 random bytes of
 * salt, PBKDF2) is kept with the time, in memory and in the relay's cache file. The source refuses it (a wrong
 * password, a locked or expired account): invalid credentials, and when it is the password kept for that DN, the
 * hash is dropped (a password changed or an account locked at the source stops working here at once, also through a
 * later outage; someone else's wrong guess does not empty the cache of a user). The source cannot be reached:
 * success when the password matches the hash kept for the DN within the lifetime (sync_relay_set_lifetime), invalid
 * credentials otherwise. Failures are never kept. The password itself is wiped as soon as it is checked. The cache
 * file (mode 0600) holds the hashes, salts, times and DNs, never a password: written atomically (a temporary file,
 * fsync, rename) by the listener within SYNC_RELAY_WRITE_S of a change, removed when the cache is empty, and read at
 * the start, so that a restart of the attendant during an outage of the source keeps its users signing in. */
struct sync_relay;

/* What a relay answered since it started, and the hashes it keeps. */
struct sync_relay_stats {
	unsigned long long accepted;    /* the source took the password */
	unsigned long long refused;     /* the source refused it */
	unsigned long long cached;      /* the source could not be reached: signed in by the cache */
	unsigned long long unreachable; /* the source could not be reached and the cache did not match: refused */
	size_t entries;                 /* users with a hash kept */
};

/* Listens on the socket path (mode 0600; an old socket there is replaced) for the source name at uri, with cafile
 * (NULL: the system's CAs; copied). The cache is read from cache_file when its first line names the same origin (a
 * line saying which source it is for: another source of the same name, or this one at another URI, starts empty);
 * the entries past the lifetime go at the first sync_relay_set_lifetime. The cache lifetime starts at 0 (nothing
 * signs in from the cache). Returns IX_OK, IX_EINVAL (a path too long for a socket) or IX_EIO with error_r. */
int sync_relay_start(const char *name, const char *uri, const char *cafile, const char *path, const char *cache_file,
		     const char *origin, struct sync_relay **relay_r, struct buf *error_r);
/* The ldapi:// URI of the relay's socket (owned by the relay), for remoteauth's mapping. */
const char *sync_relay_uri(const struct sync_relay *relay);
/* 1 when the relay is source name's. */
int sync_relay_is_for(const struct sync_relay *relay, const char *name);
/* 1 when the relay is the one for source name at uri with cafile. */
int sync_relay_is(const struct sync_relay *relay, const char *name, const char *uri, const char *cafile);
/* How long (seconds) a password the source took signs in while the source cannot be reached; the hashes older than
 * that are dropped (0: all of them). A change is logged. */
void sync_relay_set_lifetime(struct sync_relay *relay, unsigned seconds);
/* The relay's figures, in *st_r. */
void sync_relay_stats(struct sync_relay *relay, struct sync_relay_stats *st_r);
/* Stops listening, removes the socket, waits for the binds under way, writes the cache file when keep_cache (the
 * attendant stops) or removes it (the source is gone or changed), wipes the cache from memory and frees *relay
 * (NULL: nothing). */
void sync_relay_stop(struct sync_relay **relay, int keep_cache);

#endif
