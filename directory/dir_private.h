/* dir_private.h - the directory library's insides: immutable refcounted entries, the hash maps and the replica
 * they form. Private to directory/dir_*.c and the unit tests (which fill a replica directly, with no slapd). */
#ifndef IX_DIR_PRIVATE_H
#define IX_DIR_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "directory/dir.h"

/* The attributes the replica keeps (everything else in an entry is ignored). */
enum dir_attr {
	DA_OBJECTCLASS,
	DA_UID,
	DA_CN,
	DA_SN,
	DA_GIVENNAME,
	DA_DISPLAYNAME,
	DA_MAIL,
	DA_PROXY,
	DA_NICKNAME,
	DA_HOMESERVER,
	DA_GUID,
	DA_HIDE,
	DA_QUOTA_BYTES,
	DA_QUOTA_MESSAGES,
	DA_QUOTA_WARN,
	DA_FORWARD_TO,
	DA_DELIVER_AND_REDIRECT,
	DA_ACCEPT_FROM,
	DA_REJECT_FROM,
	DA_REQUIRE_AUTH,
	DA_MAX_RECEIVE,
	DA_MEMBERS_ONLY,
	DA_SEND_AS,
	DA_SEND_ON_BEHALF,
	DA_FULL_ACCESS,
	DA_TARGET,
	DA_MEMBER,
	DA_MEMBER_URL,
	DA_FOLDER_PATH,
	DA_HOSTNAME,
	DA_SERVER_ROLE,
	DA_LDAP_PORT,
	DA_SMTP_PORT,
	DA_SUBMISSION_PORT,
	DA_SUBMISSIONS_PORT,
	DA_IMAP_PORT,
	DA_IMAPS_PORT,
	DA_POP3_PORT,
	DA_POP3S_PORT,
	DA_SIEVE_PORT,
	DA_METRICS_PORT,
	DA_DOMAIN_TYPE,
	DA_DKIM_SELECTOR,
	DA_ADDRESS_TEMPLATE,
	DA_NICKNAME_TEMPLATE,
	DA_POLICY_PRIORITY,
	DA_POLICY_FILTER,
	DA_ADDRESS_SPACE,
	DA_SMART_HOST,
	DA_CONNECTOR_COST,
	DA_SERVER_SETTING,
	DA_ALLOW_SENDER_FROM,
	DA_SERVER_CERT, /* userCertificate;binary of servers, kept as the lower-case hex SHA-256 of the DER */
	DA_OAUTH_KEYS,
	DA_OAUTH_AUDIENCE,
	DA_OAUTH_CLAIM,
	DA_KERBEROS_REALM,
	DA_USER_PRINCIPAL,
	DA_SIEVE_SCRIPT,
	DA_COUNT
};
/* The LDAP name of an attribute; the NULL-terminated list of all names (the sync session requests these). */
const char *dir_attr_name(enum dir_attr attr);
const char *const *dir_attr_names(void);
/* The attribute with that name (case-insensitive), or -1. */
int dir_attr_lookup(const char *name);
/* True for DN-valued attributes (normalized copies are kept; deletes and renames are applied to them). */
bool dir_attr_is_dn(enum dir_attr attr);
/* The DN-valued attributes are numbered 0..DIR_DN_ATTRS-1 among themselves (struct dir_entry's nref). */
#define DIR_DN_ATTRS 8
static inline int dir_dn_index(enum dir_attr attr)
{
	switch (attr) {
	case DA_HOMESERVER: return 0;
	case DA_FORWARD_TO: return 1;
	case DA_ACCEPT_FROM: return 2;
	case DA_REJECT_FROM: return 3;
	case DA_SEND_AS: return 4;
	case DA_SEND_ON_BEHALF: return 5;
	case DA_MEMBER: return 6;
	case DA_FULL_ACCESS: return 7;
	default: return -1;
	}
}

/* What an entry is, from its object classes. The first four equal enum dir_type. */
enum dir_kind {
	DIR_KIND_OTHER = 0,
	DIR_KIND_USER = DIR_TYPE_USER,
	DIR_KIND_CONTACT = DIR_TYPE_CONTACT,
	DIR_KIND_LIST = DIR_TYPE_LIST,
	DIR_KIND_FOLDER = DIR_TYPE_FOLDER,
	DIR_KIND_SERVER,
	DIR_KIND_DOMAIN,
	DIR_KIND_POLICY,
	DIR_KIND_CONNECTOR,
	DIR_KIND_OAUTH_ISSUER,
	DIR_KIND_KERBEROS,
	DIR_KIND_SIEVE_GLOBAL,
};

struct dir_chunk;

/* One directory entry as the replica holds it. Immutable once built, except refs and mark; freed when the
 * last reference goes (the replica holds one while the entry is indexed, each snapshot one more). */
struct dir_entry {
	atomic_uint refs;
	unsigned mark;   /* sync thread only: session generation that last saw it */
	unsigned loaded; /* session generation whose message carried this content (0: none) */
	/* Recipients: the snapshot readers get, prepared when the entry is built so that a resolution copies one
	 * contiguous block (entry_, server_ and home_server_host are set per lookup). */
	struct dir_recipient tmpl;
	enum dir_kind kind;
	unsigned char uuid[16]; /* entryUUID (binary, as the sync protocol sends it) */
	const char *dn;         /* as slapd gave it */
	const char *ndn;        /* normalized: RFC 4514 form, ASCII lower case */
	size_t ndn_len;
	const char **vals[DA_COUNT]; /* raw values as stored, NULL-terminated (NULL when absent) */
	uint32_t nvals[DA_COUNT];
	const char **nref[DIR_DN_ATTRS]; /* DN attributes (by dir_dn_index): normalized copies, parallel to vals */
	const char **addrs;              /* SMTP addresses (proxy without prefix, then mail), deduplicated */
	const char **addr_keys;          /* the same lower-cased: the address map's keys */
	size_t *addr_key_lens;
	size_t naddrs;
	const char *primary;
	uint64_t home_hash; /* dir_hash of the normalized ixHomeServer, so resolving does not rehash it */
	size_t home_len;
	const char *login_key;     /* users: lower-cased uid */
	const char *domain_key;    /* accepted domains: lower-cased cn */
	const char *principal_key; /* users: lower-cased ixUserPrincipalName */
	bool hidden, deliver_and_redirect, require_auth, members_only;
	long long quota_bytes, quota_messages, quota_warn_bytes, max_receive_size;
	struct dir_chunk *mem;
};

/* Builds an entry: collect (attribute, value) pairs, then finish. */
struct dir_builder_val {
	int attr;
	char *value;
};
struct dir_builder {
	char *dn;
	unsigned char uuid[16];
	struct dir_builder_val *vals;
	size_t count, cap;
};
void dir_builder_init(struct dir_builder *b, const char *dn, const unsigned char uuid[16]);
/* Adds a value of the named attribute (unknown names are ignored). */
void dir_builder_add(struct dir_builder *b, const char *attr_name, const char *value, size_t len);
void dir_builder_add_id(struct dir_builder *b, enum dir_attr attr, const char *value, size_t len);
/* Copies every raw value of e into b (dn and uuid too): the start of a modified copy. */
void dir_builder_from_entry(struct dir_builder *b, const struct dir_entry *e);
/* Removes the values of a DN attribute whose normalized form is ndn; with new_dn not NULL, replaces them. */
void dir_builder_replace_ref(struct dir_builder *b, const char *ndn, const char *new_dn);
/* Builds the entry (refs 1) and empties b. */
struct dir_entry *dir_builder_finish(struct dir_builder *b);
void dir_builder_free(struct dir_builder *b);

struct dir_entry *dir_entry_ref(struct dir_entry *e);
/* True when the entry and all it points to fit the one block sized for it (tests check the sizing). */
bool dir_entry_one_block(const struct dir_entry *e);
void dir_entry_unref(struct dir_entry *e);

/* Normalizes a DN for comparison: parsed and written back in RFC 4514 form (so spacing and escaping
 * variants compare equal), then ASCII lower-cased (our naming attributes are case-insensitive). A DN libldap
 * cannot parse is lower-cased as it is. Appends to out. */
void dir_dn_normalize(const char *dn, struct buf *out);
/* Writes the lookup key of an address (ASCII lower case) into key (size DIR_ADDRESS_MAX + 1). Returns its
 * length, or 0 when the address is empty, too long, has no '@' or contains a control character. */
size_t dir_address_key(const char *address, size_t len, char *key);
/* Splits a proxy address value: "SMTP:a@b" (primary), "smtp:a@b" (secondary) or a bare "a@b" (secondary) give
 * the address; another type ("X400:...") gives false. */
bool dir_proxy_smtp(const char *value, const char **address_r, bool *primary_r);

/* An open-addressing hash map from byte-string keys (owned by the values) to entries. A slot is one cache line
 * and holds a copy of keys up to DIR_SLOT_INLINE bytes, so a lookup compares without following key. */
#define DIR_SLOT_INLINE 36
struct dir_slot {
	uint64_t hash;
	const char *key; /* NULL: empty slot */
	struct dir_entry *val;
	uint32_t len;
	char inl[DIR_SLOT_INLINE];
};
_Static_assert(sizeof(struct dir_slot) == 64, "a slot is one cache line");
struct dir_map {
	struct dir_slot *slots;
	size_t cap, count;
};
uint64_t dir_hash(const void *key, size_t len);
void dir_map_init(struct dir_map *m);
void dir_map_free(struct dir_map *m);
struct dir_entry *dir_map_get(const struct dir_map *m, const void *key, size_t len);
/* The same with the key's dir_hash() already known. */
struct dir_entry *dir_map_get_hashed(const struct dir_map *m, uint64_t hash, const void *key, size_t len);
/* Inserts key -> val unless key is present; returns the entry already there (unchanged) or NULL. */
struct dir_entry *dir_map_add(struct dir_map *m, const void *key, size_t len, struct dir_entry *val);
/* Removes key if it maps to val (any value when val is NULL). Returns true when removed. */
bool dir_map_del(struct dir_map *m, const void *key, size_t len, const struct dir_entry *val);

/* The replica: every entry by entryUUID and normalized DN; recipients by address and users by login;
 * accepted domains by name. A reader takes its thread's shard of the lock shared; the one writer (the sync
 * thread, or a test) takes every shard exclusive for each change, so a reader sees every change whole or not
 * at all, and readers on different cores do not share a lock's cache line. */
#define DIR_LOCK_SHARDS 16
struct dir_lock_shard {
	_Alignas(64) pthread_rwlock_t lock;
};
struct dir_replica {
	struct dir_lock_shard shards[DIR_LOCK_SHARDS];
	struct dir_map by_uuid, by_dn, by_addr, by_login, by_domain, by_principal;
	struct dir_map by_signin; /* sign-in configuration (OAuth issuers, the Kerberos entry) by normalized DN */
	size_t recipients;
};
void dir_replica_init(struct dir_replica *rep);
/* Shared (readers; never nested) and exclusive (the writer) locking of the replica. */
void dir_read_lock(struct dir_replica *rep);
void dir_read_unlock(struct dir_replica *rep);
void dir_write_lock(struct dir_replica *rep);
void dir_write_unlock(struct dir_replica *rep);
void dir_replica_free(struct dir_replica *rep);
/* Adds e (taking over the caller's reference) or replaces the entry with the same uuid. An entry with the same
 * DN but another uuid is dropped (it was deleted meanwhile). A renamed entry's references in other entries are
 * renamed too. Returns DIR_CHANGE_ADD or DIR_CHANGE_MODIFY. */
enum dir_change_kind dir_replica_put(struct dir_replica *rep, struct dir_entry *e);
/* Removes the entry with that uuid and every reference to its DN in other entries (member, ixForwardTo,
 * ixAcceptFrom, ixRejectFrom, ixSendAs, ixSendOnBehalf): what refint does in slapd and a sync consumer never
 * sees. Returns a reference to the removed entry (caller unrefs) or NULL when unknown. */
struct dir_entry *dir_replica_del_uuid(struct dir_replica *rep, const unsigned char uuid[16]);
/* Marks the entry with that uuid as seen in session mark. Returns false when unknown. */
bool dir_replica_mark(struct dir_replica *rep, const unsigned char uuid[16], unsigned mark);
/* Removes (as dir_replica_del_uuid) every entry whose mark differs; calls fn for each. Returns how many. */
size_t dir_replica_sweep(struct dir_replica *rep, unsigned mark, void (*fn)(void *ctx, struct dir_entry *e), void *ctx);

/* struct dir itself: the replica, the sync thread's state and the bind pool. */
struct dir_bind_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void *lds[DIR_BIND_POOL_SIZE]; /* LDAP * */
	bool busy[DIR_BIND_POOL_SIZE];
	bool as_user[DIR_BIND_POOL_SIZE]; /* rebound by a user's bind: EXTERNAL again before reading secrets */
};

struct dir {
	struct dir_replica rep;
	char *uri, *suffix;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* ready, stop */
	pthread_t thread;
	bool thread_started, stop, ready, connected;
	int sync_fd; /* the sync session's socket while it is up, for dir_destroy to shut down */
	dir_change_fn *hook;
	void *hook_ctx;
	bool hook_running; /* the sync thread is inside the hook */
	unsigned long long changes, last_change_usec, reconnects;
	/* sync thread only */
	char *cookie;
	size_t cookie_len;
	unsigned session_mark;
	bool sweep_at_done;
	void *session_; /* the running session's flags (struct session in dir_sync.c) */
	bool dyn_dirty; /* a recipient changed since dynamic lists were last read */
	unsigned long long dyn_last_usec;
	void *dyn_ld; /* LDAP *: the connection dynamic lists are read on */
	struct dir_bind_pool pool;
};

/* A dir with no thread and no connection: for tests that fill dir->rep directly. Free with dir_destroy. */
struct dir *dir_create_offline(const char *suffix);
/* Applies a change made by the sync thread to the replica and reports it (counters, hook). */
void dir_apply_put(struct dir *dir, struct dir_entry *e);
void dir_apply_del(struct dir *dir, const unsigned char uuid[16]);

/* Sync thread (dir_sync.c) and bind pool (dir_auth.c). */
void *dir_sync_thread(void *arg);
void dir_bind_pool_init(struct dir_bind_pool *pool);
void dir_bind_pool_free(struct dir_bind_pool *pool);

/* Connects to uri and binds with SASL EXTERNAL (ldap_util), then sets no client-side size or time limit and
 * restart on EINTR (ldap.conf cannot change them). Returns the LDAP * (as void *) or NULL with a message. */
void *dir_ldap_connect(const char *uri, struct buf *error_r);

#endif
