/* sync_relay.c - the pass-through relay of a sync source (sync_relay.h): slapd's remoteauth overlay binds here, over
 * a socket of this server, and the relay binds at the source over verified TLS, keeping a salted PBKDF2 hash of each
 * password the source took so that a source that cannot be reached does not stop sign-in for a while. */
#include "directory/sync_relay.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/replication.h"

#include <errno.h>
#include <inttypes.h>
#include <lber.h>
#include <ldap.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SALT_LEN 16
#define HASH_LEN 32
/* a request larger than this is no bind of a user */
#define REQUEST_MAX 65536
/* the cache file: its first line, then a line per hash ("AT SALT HASH DN", AT in seconds since 1970, SALT and HASH
 * in hex, the DN to the end of the line) */
#define CACHE_MAGIC "interchange pass-through cache 1"
#define CACHE_FILE_MAX (16 * 1024 * 1024)

/* A DN the source took a password for (hashed; hashed 0 once the source refused that password). */
struct cached {
	char *dn;
	int hashed;
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	time_t at; /* when the source last took the password */
};

/* A success whose hash is being computed (remember): the session thread owns dn and password until it is done. A
 * refusal of the same password for dn meanwhile (changed at the source) cancels it; a wrong guess does not. */
struct pending {
	const char *dn, *password;
	int cancelled;
	struct pending *next;
};

struct sync_relay {
	char *name, *uri, *cafile, *path, *ldapi, *cache_file, *origin;
	int fd;
	pthread_t thread;
	atomic_int stop;
	atomic_uint lifetime;
	atomic_uint sessions; /* connections being answered */
	pthread_mutex_t lock; /* over the cache and pending */
	struct cached *cache;
	size_t n;
	struct pending *pending;
	int dirty;      /* the cache changed since the file was written (with lock) */
	time_t written; /* when the file was last written (the listener's, then the stopper's) */
	atomic_ullong accepted, refused, cached, unreachable;
};

static void derive(const char *password, const unsigned char *salt, unsigned char *out)
{
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, SALT_LEN, SYNC_RELAY_PBKDF2_ITERATIONS,
			      EVP_sha256(), HASH_LEN, out) != 1)
		RAND_bytes(out, HASH_LEN); /* matches nothing */
}

/* The cache entry of dn, or NULL; with r->lock held. */
static struct cached *find(struct sync_relay *r, const char *dn)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->cache[i].dn, dn) == 0)
			return &r->cache[i];
	return NULL;
}

/* The cache entry of dn, made (without a hash) when there is none; with r->lock held. */
static struct cached *find_or_add(struct sync_relay *r, const char *dn)
{
	struct cached *c = find(r, dn);
	if (c != NULL)
		return c;
	r->cache = xrealloc(r->cache, (r->n + 1) * sizeof(*r->cache));
	c = &r->cache[r->n++];
	*c = (struct cached){ .dn = xstrdup(dn), .at = time(NULL) };
	return c;
}

/* Drops the entries taken longer than lifetime seconds before now (or after now: the clock went back; all of them
 * when lifetime is 0); with r->lock held. */
static void drop_expired(struct sync_relay *r, time_t now, unsigned lifetime)
{
	for (size_t i = 0; i < r->n;) {
		if (lifetime == 0 || now - r->cache[i].at > (time_t)lifetime || r->cache[i].at > now) {
			r->dirty |= r->cache[i].hashed;
			free(r->cache[i].dn);
			r->cache[i] = r->cache[r->n - 1];
			OPENSSL_cleanse(&r->cache[--r->n], sizeof(r->cache[0]));
		} else {
			i++;
		}
	}
}

/* The source refused password for dn: a hash of an earlier success with that password still being computed is not
 * kept, and when matched (the password kept was refused) the hash kept is dropped. */
static void refused(struct sync_relay *r, const char *dn, const char *password, int matched)
{
	size_t len = strlen(password);
	pthread_mutex_lock(&r->lock);
	for (struct pending *p = r->pending; p != NULL; p = p->next)
		if (strcmp(p->dn, dn) == 0 && strlen(p->password) == len &&
		    CRYPTO_memcmp(p->password, password, len) == 0)
			p->cancelled = 1;
	struct cached *c = find(r, dn);
	if (matched && c != NULL && c->hashed) {
		c->hashed = 0;
		OPENSSL_cleanse(c->hash, HASH_LEN);
		r->dirty = 1;
	}
	pthread_mutex_unlock(&r->lock);
}

/* Keeps the hash of a password the source took (computed outside the lock: PBKDF2 is slow by design), unless the
 * source refused the same password for dn meanwhile; drops the entries past the lifetime. */
static void remember(struct sync_relay *r, const char *dn, const char *password, unsigned lifetime)
{
	struct cached c = { .at = time(NULL) };
	if (RAND_bytes(c.salt, SALT_LEN) != 1)
		return;
	struct pending p = { dn, password, 0, NULL };
	pthread_mutex_lock(&r->lock);
	p.next = r->pending;
	r->pending = &p;
	pthread_mutex_unlock(&r->lock);
	derive(password, c.salt, c.hash);
	pthread_mutex_lock(&r->lock);
	for (struct pending **pp = &r->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == &p) {
			*pp = p.next;
			break;
		}
	}
	drop_expired(r, c.at, lifetime);
	if (!p.cancelled) {
		struct cached *old = find_or_add(r, dn);
		if (!old->hashed) /* once per user and lifetime, not at every sign-in */
			log_info("sync %s: %s can sign in from the cache while the source cannot be reached", r->name,
				 dn);
		memcpy(old->salt, c.salt, SALT_LEN);
		memcpy(old->hash, c.hash, HASH_LEN);
		old->hashed = 1;
		old->at = c.at;
		r->dirty = 1;
	}
	pthread_mutex_unlock(&r->lock);
	OPENSSL_cleanse(c.hash, HASH_LEN);
}

/* Whether password is the one the source last took for dn, within lifetime seconds. */
static int cached_ok(struct sync_relay *r, const char *dn, const char *password, unsigned lifetime)
{
	unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	pthread_mutex_lock(&r->lock);
	struct cached *c = find(r, dn);
	int fresh = c != NULL && c->hashed && time(NULL) - c->at <= (time_t)lifetime;
	if (fresh) {
		memcpy(salt, c->salt, SALT_LEN);
		memcpy(want, c->hash, HASH_LEN);
	}
	pthread_mutex_unlock(&r->lock);
	if (!fresh)
		return 0;
	derive(password, salt, got);
	int ok = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
	OPENSSL_cleanse(got, HASH_LEN);
	OPENSSL_cleanse(want, HASH_LEN);
	return ok;
}

/* The answer to a bind of dn with password: LDAP_SUCCESS or LDAP_INVALID_CREDENTIALS; *keep_r 1 when the source took
 * the password and the cache should keep it (remember, after the answer is sent: PBKDF2 takes a while). */
static int check(struct sync_relay *r, const char *dn, const char *password, int *keep_r)
{
	if (dn[0] == '\0' || password[0] == '\0')
		return LDAP_INVALID_CREDENTIALS;
	unsigned lifetime = atomic_load(&r->lifetime);
	struct buf err = BUF_INIT;
	LDAP *ld = NULL;
	int ret = repl_connect_tls(r->uri, dn, password, r->cafile, &ld, &err);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	int rc = LDAP_INVALID_CREDENTIALS;
	if (ret == IX_OK) {
		rc = LDAP_SUCCESS;
		*keep_r = lifetime > 0;
		atomic_fetch_add(&r->accepted, 1);
	} else if (ret == IX_EUNAVAIL && lifetime > 0 && cached_ok(r, dn, password, lifetime)) {
		log_info("sync %s: the source cannot be reached (%s); %s signed in by the cache of the last %u s",
			 r->name, buf_cstr(&err), dn, lifetime);
		rc = LDAP_SUCCESS;
		atomic_fetch_add(&r->cached, 1);
	} else if (ret == IX_EUNAVAIL) {
		log_warn("sync %s: pass-through sign-in of %s refused: %s", r->name, dn, buf_cstr(&err));
		atomic_fetch_add(&r->unreachable, 1);
	} else {
		atomic_fetch_add(&r->refused, 1);
		/* the source no longer takes the password kept (changed, or the account locked there): dropped */
		if (lifetime > 0)
			refused(r, dn, password, cached_ok(r, dn, password, lifetime));
	}
	buf_free(&err);
	return rc;
}

/* Answers one connection from slapd: simple binds, until an unbind or the end. */
static void *session(void *arg)
{
	struct sync_relay *r = ((void **)arg)[0];
	int fd = (int)(intptr_t)((void **)arg)[1];
	free(arg);
	/* slapd's remoteauth sends its bind at once and unbinds after the answer: a connection that says nothing for
	 * this long is ended, so that sync_relay_stop never waits on one */
	struct timeval idle = { .tv_sec = SYNC_RELAY_IDLE_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
	Sockbuf *sb = ber_sockbuf_alloc();
	if (sb == NULL) {
		close(fd);
		atomic_fetch_sub(&r->sessions, 1);
		return NULL;
	}
	ber_sockbuf_add_io(sb, &ber_sockbuf_io_fd, LBER_SBIOD_LEVEL_PROVIDER, &fd);
	ber_len_t max = REQUEST_MAX;
	ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_MAX_INCOMING, &max);
	for (;;) {
		BerElement *in = ber_alloc_t(LBER_USE_DER);
		ber_len_t len;
		ber_int_t msgid = 0, version = 0;
		ber_tag_t method = 0;
		struct berval name = { 0 }, cred = { 0 };
		/* ber_get_next takes the message's own SEQUENCE tag and length: its message ID comes next */
		if (in == NULL || ber_get_next(sb, &len, in) != LDAP_TAG_MESSAGE ||
		    ber_get_int(in, &msgid) == LBER_ERROR || ber_peek_tag(in, &len) != LDAP_REQ_BIND ||
		    ber_scanf(in, "{imtm}", &version, &name, &method, &cred) == LBER_ERROR ||
		    method != LDAP_AUTH_SIMPLE) {
			ber_free(in, 1); /* an unbind, the end, or anything but a simple bind: done */
			break;
		}
		/* a NUL inside the name or the password would cut it short: such a bind is refused */
		int whole = memchr(name.bv_val, 0, name.bv_len) == NULL && memchr(cred.bv_val, 0, cred.bv_len) == NULL;
		char *dn = xstrndup(name.bv_val, name.bv_len);
		char *pw = xstrndup(cred.bv_val, cred.bv_len);
		OPENSSL_cleanse(cred.bv_val, cred.bv_len);
		ber_free(in, 1);
		int keep = 0;
		int rc = whole ? check(r, dn, pw, &keep) : LDAP_INVALID_CREDENTIALS;
		BerElement *out = ber_alloc_t(LBER_USE_DER);
		int sent = out != NULL && ber_printf(out, "{it{ess}}", msgid, LDAP_RES_BIND, rc, "", "") != -1 &&
			   ber_flush2(sb, out, LBER_FLUSH_FREE_ALWAYS) == 0;
		unsigned lifetime = atomic_load(&r->lifetime);
		if (keep && lifetime > 0)
			remember(r, dn, pw, lifetime);
		OPENSSL_cleanse(pw, strlen(pw));
		free(pw);
		free(dn);
		if (!sent)
			break;
	}
	ber_sockbuf_free(sb); /* closes fd */
	atomic_fetch_sub(&r->sessions, 1);
	return NULL;
}

/* Writes the hashes kept to the cache file (mode 0600, atomically) when they changed and the last write is at least
 * SYNC_RELAY_WRITE_S old, or now when force; an empty cache removes the file. Only the listener calls it, then the
 * stopper once the listener is gone. */
static void cache_save(struct sync_relay *r, int force)
{
	time_t now = time(NULL);
	struct buf b = BUF_INIT;
	size_t kept = 0;
	pthread_mutex_lock(&r->lock);
	if (!r->dirty || (!force && now - r->written < SYNC_RELAY_WRITE_S && now >= r->written)) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	r->dirty = 0;
	buf_printf(&b, "%s %s\n", CACHE_MAGIC, r->origin);
	for (size_t i = 0; i < r->n; i++) {
		const struct cached *c = &r->cache[i];
		if (!c->hashed || strchr(c->dn, '\n') != NULL)
			continue;
		buf_printf(&b, "%" PRId64 " ", (int64_t)c->at);
		for (size_t k = 0; k < SALT_LEN; k++)
			buf_printf(&b, "%02x", c->salt[k]);
		buf_append_char(&b, ' ');
		for (size_t k = 0; k < HASH_LEN; k++)
			buf_printf(&b, "%02x", c->hash[k]);
		buf_printf(&b, " %s\n", c->dn);
		kept++;
	}
	pthread_mutex_unlock(&r->lock);
	r->written = now;
	if (kept == 0 ? unlink(r->cache_file) < 0 && errno != ENOENT
		      : write_file_atomic(r->cache_file, b.data, b.len, 0600) < 0)
		log_warn("sync %s: cannot write the pass-through cache %s: %s", r->name, r->cache_file,
			 strerror(errno));
	OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
}

/* Whether text holds exactly len bytes in hex (2 * len digits), then in out. */
static int unhex(const char *text, unsigned char *out, size_t len)
{
	if (strlen(text) != 2 * len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned v;
		if (sscanf(text + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", text[2 * i]) ||
		    !strchr("0123456789abcdef", text[2 * i + 1]))
			return 0;
		out[i] = (unsigned char)v;
	}
	return 1;
}

/* Reads the cache file of an earlier run when it is this source's (its first line names the same origin): the
 * hashes taken in the past; the lifetime drops the old ones (sync_relay_set_lifetime). A line that does not read is
 * skipped. */
static void cache_load(struct sync_relay *r)
{
	char *data = NULL;
	size_t len = 0;
	if (read_file(r->cache_file, CACHE_FILE_MAX, &data, &len) != 0)
		return;
	char *head = xasprintf("%s %s\n", CACHE_MAGIC, r->origin);
	size_t hlen = strlen(head);
	time_t now = time(NULL);
	if (len > hlen && memcmp(data, head, hlen) == 0 && memchr(data, 0, len) == NULL) {
		char *save = NULL;
		for (char *line = strtok_r(data + hlen, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char salt[2 * SALT_LEN + 2], hash[2 * HASH_LEN + 2];
			int64_t at = 0;
			int dn = 0;
			struct cached c = { 0 };
			if (sscanf(line, "%" SCNd64 " %33s %65s %n", &at, salt, hash, &dn) != 3 || dn == 0 ||
			    line[dn] == '\0' || at > (int64_t)now || !unhex(salt, c.salt, SALT_LEN) ||
			    !unhex(hash, c.hash, HASH_LEN))
				continue;
			pthread_mutex_lock(&r->lock);
			struct cached *e = find_or_add(r, line + dn);
			memcpy(e->salt, c.salt, SALT_LEN);
			memcpy(e->hash, c.hash, HASH_LEN);
			e->hashed = 1;
			e->at = (time_t)at;
			pthread_mutex_unlock(&r->lock);
			OPENSSL_cleanse(&c, sizeof(c));
			OPENSSL_cleanse(hash, sizeof(hash));
		}
	}
	OPENSSL_cleanse(data, len);
	free(data);
	free(head);
}

static void *listen_loop(void *arg)
{
	struct sync_relay *r = arg;
	while (!atomic_load(&r->stop)) {
		cache_save(r, 0);
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
		if (poll(&pfd, 1, SYNC_RELAY_POLL_MS) <= 0)
			continue;
		int c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		void **arg2 = xcalloc(2, sizeof(void *));
		arg2[0] = r;
		arg2[1] = (void *)(intptr_t)c;
		pthread_t t;
		atomic_fetch_add(&r->sessions, 1);
		if (pthread_create(&t, NULL, session, arg2) != 0) {
			atomic_fetch_sub(&r->sessions, 1);
			close(c);
			free(arg2);
		} else {
			pthread_detach(t);
		}
	}
	return NULL;
}

/* ldapi://PATH with the path's bytes other than letters, digits and -._~ written as %XX (RFC 3986). */
static char *ldapi_uri(const char *path)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "ldapi://");
	for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    strchr("-._~", *s))
			buf_printf(&b, "%c", *s);
		else
			buf_printf(&b, "%%%02X", *s);
	}
	char *u = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return u;
}

int sync_relay_start(const char *name, const char *uri, const char *cafile, const char *path, const char *cache_file,
		     const char *origin, struct sync_relay **relay_r, struct buf *error_r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		buf_printf(error_r, "the pass-through socket path %s is too long for a socket", path);
		return IX_EINVAL;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	mode_t old = umask(0177);
	int bound = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	umask(old);
	if (!bound || listen(fd, 64) != 0) {
		buf_printf(error_r, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return IX_EIO;
	}
	struct sync_relay *r = xcalloc(1, sizeof(*r));
	r->name = xstrdup(name);
	r->uri = xstrdup(uri);
	r->cafile = cafile != NULL ? xstrdup(cafile) : NULL;
	r->path = xstrdup(path);
	r->ldapi = ldapi_uri(path);
	r->cache_file = xstrdup(cache_file);
	r->origin = xstrdup(origin);
	r->fd = fd;
	atomic_init(&r->stop, 0);
	atomic_init(&r->lifetime, 0);
	atomic_init(&r->sessions, 0);
	atomic_init(&r->accepted, 0);
	atomic_init(&r->refused, 0);
	atomic_init(&r->cached, 0);
	atomic_init(&r->unreachable, 0);
	pthread_mutex_init(&r->lock, NULL);
	cache_load(r);
	if (pthread_create(&r->thread, NULL, listen_loop, r) != 0)
		fatal("cannot start the pass-through relay of sync source %s", name);
	*relay_r = r;
	return IX_OK;
}

const char *sync_relay_uri(const struct sync_relay *relay)
{
	return relay->ldapi;
}

int sync_relay_is_for(const struct sync_relay *relay, const char *name)
{
	return strcmp(relay->name, name) == 0;
}

int sync_relay_is(const struct sync_relay *relay, const char *name, const char *uri, const char *cafile)
{
	return strcmp(relay->name, name) == 0 && strcmp(relay->uri, uri) == 0 &&
	       (relay->cafile == NULL) == (cafile == NULL) && (cafile == NULL || strcmp(relay->cafile, cafile) == 0);
}

void sync_relay_set_lifetime(struct sync_relay *relay, unsigned seconds)
{
	if (atomic_exchange(&relay->lifetime, seconds) != seconds)
		log_info("sync %s: pass-through sign-in keeps what the source took for %u s", relay->name, seconds);
	pthread_mutex_lock(&relay->lock);
	drop_expired(relay, time(NULL), seconds);
	pthread_mutex_unlock(&relay->lock);
}

void sync_relay_stats(struct sync_relay *relay, struct sync_relay_stats *st_r)
{
	st_r->accepted = atomic_load(&relay->accepted);
	st_r->refused = atomic_load(&relay->refused);
	st_r->cached = atomic_load(&relay->cached);
	st_r->unreachable = atomic_load(&relay->unreachable);
	st_r->entries = 0;
	pthread_mutex_lock(&relay->lock);
	for (size_t i = 0; i < relay->n; i++)
		st_r->entries += relay->cache[i].hashed != 0;
	pthread_mutex_unlock(&relay->lock);
}

void sync_relay_stop(struct sync_relay **relay, int keep_cache)
{
	struct sync_relay *r = *relay;
	if (r == NULL)
		return;
	*relay = NULL;
	atomic_store(&r->stop, 1);
	pthread_join(r->thread, NULL);
	close(r->fd);
	unlink(r->path);
	while (atomic_load(&r->sessions) > 0) /* each ends with its bind at the source */
		usleep(10000);
	if (keep_cache)
		cache_save(r, 1);
	else
		unlink(r->cache_file);
	for (size_t i = 0; i < r->n; i++)
		free(r->cache[i].dn);
	OPENSSL_cleanse(r->cache, r->n * sizeof(*r->cache));
	free(r->cache);
	pthread_mutex_destroy(&r->lock);
	free(r->name);
	free(r->uri);
	free(r->cafile);
	free(r->path);
	free(r->ldapi);
	free(r->cache_file);
	free(r->origin);
	free(r);
}
