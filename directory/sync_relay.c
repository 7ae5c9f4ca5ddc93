/* sync_relay.c - the pass-through relay of a sync source (sync_relay.h): slapd's remoteauth overlay binds here, over
 * a socket of this server, and the relay binds at the source over verified TLS, keeping a salted PBKDF2 hash of each
 * password the source took so that a source that cannot be reached does not stop sign-in for a while. */
#include "directory/sync_relay.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/replication.h"

#include <errno.h>
#include <lber.h>
#include <ldap.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
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
	char *name, *uri, *cafile, *path, *ldapi;
	int fd;
	pthread_t thread;
	atomic_int stop;
	atomic_uint lifetime;
	atomic_uint sessions; /* connections being answered */
	pthread_mutex_t lock; /* over the cache and pending */
	struct cached *cache;
	size_t n;
	struct pending *pending;
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
	if (matched && c != NULL) {
		c->hashed = 0;
		OPENSSL_cleanse(c->hash, HASH_LEN);
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
	for (size_t i = 0; i < r->n;) {
		if (c.at - r->cache[i].at > (time_t)lifetime) {
			free(r->cache[i].dn);
			r->cache[i] = r->cache[--r->n];
		} else {
			i++;
		}
	}
	if (!p.cancelled) {
		struct cached *old = find_or_add(r, dn);
		if (!old->hashed) /* once per user and lifetime, not at every sign-in */
			log_info("sync %s: %s can sign in from the cache while the source cannot be reached", r->name,
				 dn);
		memcpy(old->salt, c.salt, SALT_LEN);
		memcpy(old->hash, c.hash, HASH_LEN);
		old->hashed = 1;
		old->at = c.at;
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
	} else if (ret == IX_EUNAVAIL && lifetime > 0 && cached_ok(r, dn, password, lifetime)) {
		log_info("sync %s: the source cannot be reached (%s); %s signed in by the cache of the last %u s",
			 r->name, buf_cstr(&err), dn, lifetime);
		rc = LDAP_SUCCESS;
	} else if (ret == IX_EUNAVAIL) {
		log_warn("sync %s: pass-through sign-in of %s refused: %s", r->name, dn, buf_cstr(&err));
	} else if (lifetime > 0) {
		/* the source no longer takes the password kept (changed, or the account locked there): dropped */
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

static void *listen_loop(void *arg)
{
	struct sync_relay *r = arg;
	while (!atomic_load(&r->stop)) {
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

int sync_relay_start(const char *name, const char *uri, const char *cafile, const char *path,
		     struct sync_relay **relay_r, struct buf *error_r)
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
	r->fd = fd;
	atomic_init(&r->stop, 0);
	atomic_init(&r->lifetime, 0);
	atomic_init(&r->sessions, 0);
	pthread_mutex_init(&r->lock, NULL);
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
	if (seconds == 0) {
		pthread_mutex_lock(&relay->lock);
		for (size_t i = 0; i < relay->n; i++)
			free(relay->cache[i].dn);
		relay->n = 0;
		pthread_mutex_unlock(&relay->lock);
	}
}

void sync_relay_stop(struct sync_relay **relay)
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
	free(r);
}
