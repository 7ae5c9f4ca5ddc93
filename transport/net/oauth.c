/* oauth.c - the key sets of OAuth issuers (files read again when they change, URLs fetched over HTTPS and again on
 * an unknown key id) and the check of a bearer token against them. */
#include "transport/net/oauth.h"
#include "transport/net/jwt.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* One key set as last loaded from its source. */
struct keyset {
	struct keyset *next;
	char *source;
	struct jwks *keys; /* NULL until loaded once */
	uint64_t fetched;  /* when (seconds since the epoch) */
	struct stat st;    /* a file's identity when it was read */
};

struct oauth_keys {
	pthread_mutex_t lock;
	struct keyset *sets;
};

struct oauth_keys *oauth_keys_create(void)
{
	struct oauth_keys *k = xcalloc(1, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

void oauth_keys_destroy(struct oauth_keys **kp)
{
	struct oauth_keys *k = *kp;
	if (k == NULL)
		return;
	while (k->sets != NULL) {
		struct keyset *ks = k->sets;
		k->sets = ks->next;
		jwks_free(&ks->keys);
		free(ks->source);
		free(ks);
	}
	pthread_mutex_destroy(&k->lock);
	free(k);
	*kp = NULL;
}

static bool is_url(const char *source)
{
	return strncasecmp(source, "https://", 8) == 0;
}

/* ---- HTTPS ---- */

static int connect_timeout(const char *host, const char *port, struct buf *error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *res = NULL;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		buf_printf(error_r, "cannot resolve %s: %s", host, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = OAUTH_FETCH_TIMEOUT_SECONDS };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* Linux: bounds connect() too */
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0)
		buf_printf(error_r, "cannot connect to %s port %s", host, port);
	freeaddrinfo(res);
	return fd;
}

static int tls_error(struct buf *error_r, const char *what)
{
	unsigned long e = ERR_get_error();
	char text[256];
	ERR_error_string_n(e, text, sizeof(text));
	buf_printf(error_r, "%s: %s", what, e != 0 ? text : "connection closed");
	ERR_clear_error();
	return IX_EUNAVAIL;
}

/* The body of an HTTP/1.0 response (the whole of resp) when its status is 200. */
static int http_body(const struct buf *resp, struct buf *body_r, struct buf *error_r)
{
	const char *r = buf_cstr(resp);
	const char *end = strstr(r, "\r\n\r\n");
	if (strncmp(r, "HTTP/1.", 7) != 0 || end == NULL || resp->len < 12) {
		buf_append_str(error_r, "not an HTTP response");
		return IX_EUNAVAIL;
	}
	if (strncmp(r + 8, " 200", 4) != 0) {
		const char *eol = strstr(r, "\r\n");
		buf_printf(error_r, "server said %.*s", (int)(eol - r), r);
		return IX_EUNAVAIL;
	}
	buf_append(body_r, end + 4, resp->len - (size_t)(end + 4 - r));
	return IX_OK;
}

int oauth_https_get(const char *url, const char *ca_file, const char *addr, size_t max, struct buf *body_r,
		    struct buf *error_r)
{
	if (!is_url(url)) {
		buf_printf(error_r, "not an https:// URL: %s", url);
		return IX_EINVAL;
	}
	const char *hp = url + 8, *slash = strchr(hp, '/');
	const char *path = slash != NULL ? slash : "/";
	char *hostport = slash != NULL ? xstrndup(hp, (size_t)(slash - hp)) : xstrdup(hp);
	char *host = hostport, *port = NULL;
	if (host[0] == '[') { /* [IPv6]:port */
		char *close_br = strchr(host, ']');
		if (close_br != NULL) {
			*close_br = '\0';
			host++;
			if (close_br[1] == ':')
				port = close_br + 2;
		}
	} else if ((port = strrchr(host, ':')) != NULL) {
		*port++ = '\0';
	}
	if (host[0] == '\0' || strpbrk(path, " \r\n") != NULL) {
		buf_printf(error_r, "bad URL: %s", url);
		free(hostport);
		return IX_EINVAL;
	}
	int ret = IX_EUNAVAIL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	int fd = connect_timeout(addr != NULL ? addr : host, port != NULL && *port != '\0' ? port : "443", error_r);
	struct buf resp = BUF_INIT;
	if (fd < 0 || ctx == NULL)
		goto out;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_default_verify_paths(ctx);
	if (ca_file != NULL && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		tls_error(error_r, ca_file);
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	if (ssl == NULL || !SSL_set_fd(ssl, fd) || !SSL_set1_host(ssl, host)) {
		tls_error(error_r, "TLS setup");
		goto out;
	}
	SSL_set_tlsext_host_name(ssl, host);
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK)
			buf_printf(error_r, "certificate of %s: %s", host, X509_verify_cert_error_string(v));
		else
			tls_error(error_r, "TLS handshake");
		goto out;
	}
	char *req = xasprintf("GET %s HTTP/1.0\r\nHost: %.*s\r\nAccept: application/json\r\n"
			      "User-Agent: interchange\r\nConnection: close\r\n\r\n",
			      path, (int)(slash != NULL ? (size_t)(slash - hp) : strlen(hp)), hp);
	int w = SSL_write(ssl, req, (int)strlen(req));
	free(req);
	if (w <= 0) {
		tls_error(error_r, "sending the request");
		goto out;
	}
	char chunk[8192];
	for (;;) {
		int n = SSL_read(ssl, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		if (resp.len + (size_t)n > max + 8192) {
			buf_printf(error_r, "%s: more than %zu bytes", url, max);
			ret = IX_ELIMIT;
			goto out;
		}
		buf_append(&resp, chunk, (size_t)n);
	}
	ret = http_body(&resp, body_r, error_r);
	if (ret == IX_OK && body_r->len > max) {
		buf_printf(error_r, "%s: more than %zu bytes", url, max);
		ret = IX_ELIMIT;
	}
out:
	buf_free(&resp);
	if (ssl != NULL)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	free(hostport);
	return ret;
}

/* ---- key sets ---- */

static int jwks_read_file(const char *path, struct stat *st_r, struct buf *out, struct buf *error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st_r) < 0) {
		buf_printf(error_r, "cannot read %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return IX_EUNAVAIL;
	}
	if (st_r->st_size > JWKS_DOC_MAX) {
		close(fd);
		buf_printf(error_r, "%s: larger than %d bytes", path, JWKS_DOC_MAX);
		return IX_ELIMIT;
	}
	buf_read_fd(out, fd, JWKS_DOC_MAX);
	close(fd);
	return IX_OK;
}

/* Loads ks from its source again; on failure its previous keys stay. */
static int keyset_load(struct keyset *ks, uint64_t now, struct buf *error_r)
{
	struct buf doc = BUF_INIT;
	struct stat st;
	memset(&st, 0, sizeof(st));
	int ret = is_url(ks->source) ? oauth_https_get(ks->source, NULL, NULL, JWKS_DOC_MAX, &doc, error_r)
				     : jwks_read_file(ks->source, &st, &doc, error_r);
	struct jwks *keys = NULL;
	if (ret == IX_OK)
		ret = jwks_parse(doc.data != NULL ? doc.data : "", doc.len, &keys, error_r);
	buf_free(&doc);
	ks->fetched = now; /* a failure is not tried again at once either */
	if (ret != IX_OK) {
		log_warn("oauth: keys from %s: %s", ks->source, buf_cstr(error_r));
		return ks->keys != NULL ? IX_OK : IX_EUNAVAIL;
	}
	jwks_free(&ks->keys);
	ks->keys = keys;
	ks->st = st;
	log_info("oauth: %zu keys loaded from %s", jwks_count(keys), ks->source);
	return IX_OK;
}

/* Whether ks should be loaded again before use: never loaded, too old, or (a file) changed on disk. */
static bool keyset_stale(const struct keyset *ks, uint64_t now)
{
	if (ks->keys == NULL)
		return ks->fetched == 0 || now > ks->fetched; /* a failing source is tried at most once a second */
	if (now >= ks->fetched + OAUTH_KEYS_TTL_SECONDS)
		return true;
	if (is_url(ks->source))
		return false;
	struct stat st;
	if (stat(ks->source, &st) < 0)
		return false; /* gone: keep what was read */
	return st.st_ino != ks->st.st_ino || st.st_dev != ks->st.st_dev || st.st_size != ks->st.st_size ||
	       st.st_mtim.tv_sec != ks->st.st_mtim.tv_sec || st.st_mtim.tv_nsec != ks->st.st_mtim.tv_nsec;
}

static struct keyset *keyset_get(struct oauth_keys *k, const char *source)
{
	for (struct keyset *ks = k->sets; ks != NULL; ks = ks->next) {
		if (strcmp(ks->source, source) == 0)
			return ks;
	}
	struct keyset *ks = xcalloc(1, sizeof(*ks));
	ks->source = xstrdup(source);
	ks->next = k->sets;
	k->sets = ks;
	return ks;
}

/* The signature check, with the issuer's keys loaded or refreshed as needed (under the cache's lock). */
static int signature_check(struct oauth_keys *k, const char *source, const struct jwt *jwt, uint64_t now,
			   struct buf *error_r)
{
	pthread_mutex_lock(&k->lock);
	struct keyset *ks = keyset_get(k, source);
	int ret = IX_OK;
	if (keyset_stale(ks, now))
		ret = keyset_load(ks, now, error_r);
	if (ret == IX_OK && ks->keys == NULL)
		ret = IX_EUNAVAIL;
	if (ret == IX_OK) {
		buf_reset(error_r);
		ret = jwt_verify_signature(jwt, ks->keys, error_r);
		/* an unknown key id: the issuer may have rotated its keys */
		if (ret == IX_ENOTFOUND && is_url(source) && now >= ks->fetched + OAUTH_REFETCH_MIN_SECONDS) {
			buf_reset(error_r);
			keyset_load(ks, now, error_r);
			buf_reset(error_r);
			ret = jwt_verify_signature(jwt, ks->keys, error_r);
		}
	} else if (error_r->len == 0) {
		buf_printf(error_r, "no keys from %s", source);
	}
	pthread_mutex_unlock(&k->lock);
	return ret == IX_ENOTFOUND ? IX_EAUTH : ret;
}

int oauth_verify(struct oauth_keys *keys, const struct oauth_issuer *issuers, size_t count, const char *token,
		 size_t len, uint64_t now, char **subject_r, int *issuer_r, struct buf *error_r)
{
	*subject_r = NULL;
	*issuer_r = -1;
	struct jwt *jwt = NULL;
	if (jwt_parse(token, len, &jwt, error_r) != IX_OK)
		return IX_EAUTH;
	const char *iss = jwt_claim(jwt, "iss");
	size_t i = 0;
	while (i < count && (iss == NULL || strcmp(iss, issuers[i].issuer) != 0))
		i++;
	if (i == count) {
		buf_printf(error_r, "issuer %s is not configured", iss != NULL ? iss : "(none)");
		jwt_free(&jwt);
		return IX_EAUTH;
	}
	*issuer_r = (int)i;
	const struct oauth_issuer *is = &issuers[i];
	int ret = signature_check(keys, is->jwks, jwt, now, error_r);
	if (ret == IX_OK)
		ret = jwt_check_claims(jwt, is->issuer, is->audience, now, OAUTH_SKEW_SECONDS, error_r);
	const char *claim = is->claim != NULL && is->claim[0] != '\0' ? is->claim : OAUTH_DEFAULT_CLAIM;
	const char *subject = ret == IX_OK ? jwt_claim(jwt, claim) : NULL;
	if (ret == IX_OK && (subject == NULL || subject[0] == '\0')) {
		buf_printf(error_r, "no %s claim", claim);
		ret = IX_EAUTH;
	}
	if (ret == IX_OK)
		*subject_r = xstrdup(subject);
	jwt_free(&jwt);
	return ret;
}

void oauth_status_json(const char *issuer, struct buf *out)
{
	buf_append_str(out, "{\"status\":\"invalid_token\"");
	if (issuer != NULL && strpbrk(issuer, "\"\\") == NULL) {
		size_t n = strlen(issuer);
		while (n > 0 && issuer[n - 1] == '/')
			n--;
		buf_printf(out, ",\"openid-configuration\":\"%.*s/.well-known/openid-configuration\"", (int)n, issuer);
	}
	buf_append_str(out, ",\"scope\":\"openid email\"}");
}
