/* tls_peers.c - the client TLS context for the organisation's other servers, trusting the published certificates
 * (DATA/tls/peers.pem) and made again when they, or this server's own certificate, change. */
#include "transport/net/tls_peers.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct tls_peers {
	char *path, *cert, *key; /* cert and key NULL: no client certificate */
	struct tls_ctx *ctx;
	struct tls_ctx **retired; /* contexts of earlier files: kept until destroy, another thread may still use one */
	size_t nretired;
	bool loaded;             /* ctx reflects the files as stat'ed below */
	struct stat st, cert_st; /* st_ino 0: the file did not exist */
};

bool tls_ip_is_loopback(const char *ip)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, ip, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

struct tls_peers *tls_peers_create(const char *data_dir, bool client_cert)
{
	struct tls_peers *t = xcalloc(1, sizeof(*t));
	t->path = xasprintf("%s/%s", data_dir, TLS_PEERS_FILE);
	if (client_cert) {
		t->cert = xasprintf("%s/tls/cert.pem", data_dir);
		t->key = xasprintf("%s/tls/key.pem", data_dir);
	}
	return t;
}

static void stat_or_zero(const char *path, struct stat *st)
{
	if (path == NULL || stat(path, st) != 0)
		memset(st, 0, sizeof(*st));
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

struct tls_ctx *tls_peers_ctx(struct tls_peers *t)
{
	struct stat st, cst;
	stat_or_zero(t->path, &st);
	stat_or_zero(t->cert, &cst);
	if (t->loaded && same_file(&st, &t->st) && same_file(&cst, &t->cert_st))
		return t->ctx;
	if (t->ctx != NULL) {
		t->retired = xrealloc(t->retired, (t->nretired + 1) * sizeof(*t->retired));
		t->retired[t->nretired++] = t->ctx;
		t->ctx = NULL;
	}
	struct buf err = BUF_INIT;
	if (st.st_ino == 0)
		buf_printf(&err, "%s does not exist yet: the attendant writes it from the directory", t->path);
	else if (tls_client_ctx_create(true, t->path, &t->ctx, &err) == 0 && t->cert != NULL &&
		 tls_ctx_use_client_cert(t->ctx, t->cert, t->key, &err) != 0)
		tls_ctx_destroy(&t->ctx);
	if (t->ctx == NULL)
		log_error("TLS to the other servers: %s", buf_cstr(&err));
	buf_free(&err);
	t->st = st;
	t->cert_st = cst;
	t->loaded = true;
	return t->ctx;
}

void tls_peers_destroy(struct tls_peers **tp)
{
	struct tls_peers *t = *tp;
	if (t == NULL)
		return;
	tls_ctx_destroy(&t->ctx);
	for (size_t i = 0; i < t->nretired; i++)
		tls_ctx_destroy(&t->retired[i]);
	free(t->retired);
	free(t->path);
	free(t->cert);
	free(t->key);
	free(t);
	*tp = NULL;
}
