/* replication_certs.c - TLS between servers anchored in the directory: each server publishes its own certificate
 * in its entry, and every server trusts the published set (<data>/tls/peers.pem). */
#include "directory/replication.h"
#include "common/err.h"
#include "common/log.h"
#include "directory/ldap_util.h"
#include "directory/replication_int.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The certificate in the PEM file at path (relative to the data folder) in DER. IX_ENOTFOUND when the file does not
 * exist, IX_EIO when it cannot be read as a certificate. */
static int read_cert(const struct config *cfg, const char *file, unsigned char **der_r, size_t *len_r,
		     struct buf *error_r)
{
	char *path = config_path(cfg, file);
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	int ret = bio == NULL && errno == ENOENT ? IX_ENOTFOUND : IX_EIO;
	unsigned char *der = NULL;
	int n = x != NULL ? i2d_X509(x, &der) : -1;
	if (n > 0 && (size_t)n <= REPL_MAX_CERT) {
		*der_r = xmalloc((size_t)n);
		memcpy(*der_r, der, (size_t)n);
		*len_r = (size_t)n;
		ret = IX_OK;
	} else if (ret == IX_EIO) {
		buf_printf(error_r, "cannot read the certificate %s", path);
	}
	ERR_clear_error();
	OPENSSL_free(der);
	X509_free(x);
	free(path);
	return ret;
}

int repl_own_cert(const struct config *cfg, unsigned char **der_r, size_t *len_r, struct buf *error_r)
{
	return read_cert(cfg, "tls/cert.pem", der_r, len_r, error_r);
}

int repl_write_peers(const struct config *cfg, const struct repl_server *servers, size_t count, int *changed_r,
		     struct buf *error_r)
{
	BIO *mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < count; i++) {
		for (size_t k = 0; k < servers[i].ncerts; k++) {
			const unsigned char *p = servers[i].cert[k];
			X509 *x = d2i_X509(NULL, &p, (long)servers[i].cert_len[k]);
			if (x == NULL) {
				log_warn("replication: a certificate published by %s is not valid DER: ignored",
					 servers[i].name);
				continue;
			}
			PEM_write_bio_X509(mem, x);
			X509_free(x);
		}
	}
	char *pem = NULL;
	long plen = BIO_get_mem_data(mem, &pem);
	char *path = config_path(cfg, REPL_PEERS_FILE), *old = NULL;
	size_t olen = 0;
	int ret = IX_OK;
	int same = read_file(path, 4 * 1024 * 1024, &old, &olen) == 0 && olen == (size_t)plen &&
		   (plen == 0 || memcmp(old, pem, (size_t)plen) == 0);
	if (changed_r != NULL)
		*changed_r = !same;
	if (!same && write_file_atomic(path, pem, (size_t)plen, 0644) < 0) {
		buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
		ret = IX_EIO;
	}
	free(old);
	free(path);
	BIO_free(mem);
	return ret;
}

/* The certificates this server should publish: tls/cert.pem and, during a renewal, REPL_NEXT_CERT_FILE. */
struct own_certs {
	unsigned char *der[2];
	size_t len[2], n;
};

static void own_certs_free(struct own_certs *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->der[i]);
	o->n = 0;
}

static int own_certs_read(const struct config *cfg, struct own_certs *o, struct buf *error_r)
{
	o->n = 0;
	int ret = repl_own_cert(cfg, &o->der[0], &o->len[0], error_r);
	if (ret != IX_OK)
		return ret;
	o->n = 1;
	ret = read_cert(cfg, REPL_NEXT_CERT_FILE, &o->der[1], &o->len[1], error_r);
	if (ret == IX_OK)
		o->n = 2;
	else if (ret != IX_ENOTFOUND)
		own_certs_free(o);
	return ret == IX_ENOTFOUND ? IX_OK : ret;
}

/* 1 when the entry s publishes exactly the certificates o (in any order). */
static int publishes(const struct repl_server *s, const struct own_certs *o)
{
	if (s->ncerts != o->n)
		return 0;
	for (size_t i = 0; i < o->n; i++) {
		int found = 0;
		for (size_t k = 0; k < s->ncerts && !found; k++)
			found = s->cert_len[k] == o->len[i] && memcmp(s->cert[k], o->der[i], o->len[i]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

static int publish(LDAP *ld, const struct repl_server *me, const struct own_certs *o, struct buf *error_r)
{
	if (publishes(me, o))
		return IX_OK;
	struct berval bv[2], *bvals[3] = { NULL, NULL, NULL };
	for (size_t i = 0; i < o->n; i++) {
		bv[i] = (struct berval){ (ber_len_t)o->len[i], (char *)o->der[i] };
		bvals[i] = &bv[i];
	}
	char *oc[] = { (char *)"pkiUser", NULL };
	LDAPMod m1 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
	LDAPMod m2 = { .mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES,
		       .mod_type = (char *)"userCertificate;binary",
		       .mod_bvalues = bvals };
	LDAPMod *mods[] = { &m1, &m2, NULL };
	return ldapu_modify(ld, me->dn, me->pki ? mods + 1 : mods, error_r);
}

int repl_publish_cert(LDAP *ld, const struct config *cfg, const struct repl_server *me, struct buf *error_r)
{
	struct own_certs o;
	int ret = own_certs_read(cfg, &o, error_r);
	if (ret == IX_OK)
		ret = publish(ld, me, &o, error_r);
	own_certs_free(&o);
	return ret;
}

/* Waits until the server entry dn on peer publishes o (polling, at most timeout_ms). */
static int wait_published(LDAP *peer, const struct config *cfg, const char *dn, const struct own_certs *o,
			  unsigned timeout_ms)
{
	for (unsigned long long until = now_usec() + timeout_ms * 1000ULL;;) {
		struct repl_server *servers = NULL;
		size_t count = 0;
		struct buf err = BUF_INIT;
		int there = 0;
		if (repl_servers_read(peer, cfg->suffix, &servers, &count, &err) == IX_OK) {
			for (size_t i = 0; i < count; i++)
				there = there || (repl_same_dn(servers[i].dn, dn) && publishes(&servers[i], o));
		}
		repl_servers_free(&servers, count);
		buf_free(&err);
		if (there)
			return IX_OK;
		if (now_usec() > until)
			return IX_EUNAVAIL;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int repl_publish_own_certs(const struct config *cfg, unsigned timeout_ms, struct buf *error_r)
{
	LDAP *ld = NULL;
	struct repl_server *servers = NULL;
	size_t count = 0;
	struct repl_live live = { 0 };
	struct own_certs o = { .n = 0 };
	char *password = NULL;
	int ret = ldapu_connect_local(cfg, &ld, error_r);
	if (ret == IX_OK)
		ret = repl_servers_read(ld, cfg->suffix, &servers, &count, error_r);
	if (ret == IX_OK)
		ret = repl_live_read(ld, cfg->suffix, &live, error_r);
	if (ret == IX_OK)
		ret = own_certs_read(cfg, &o, error_r);
	const struct repl_server *me = NULL;
	for (size_t i = 0; ret == IX_OK && i < count; i++)
		me = repl_same_dn(servers[i].dn, cfg->server_dn) ? &servers[i] : me;
	if (ret == IX_OK && me == NULL) {
		buf_printf(error_r, "this server's entry %s is not in the directory", cfg->server_dn);
		ret = IX_ENOTFOUND;
	}
	if (ret == IX_OK)
		ret = publish(ld, me, &o, error_r);
	password = ret == IX_OK ? repl_live_password(&live) : NULL;
	for (size_t i = 0; ret == IX_OK && i < count; i++) {
		const struct repl_server *s = &servers[i];
		if (s == me || s->uri == NULL || s->sid == 0)
			continue;
		LDAP *peer = NULL;
		if (password == NULL) {
			buf_printf(error_r, "no replication password here to reach %s", s->name);
			ret = IX_ENOTFOUND;
		} else if ((ret = repl_peer_connect(cfg, s->uri, cfg->admin_dn, password, &peer, error_r)) != IX_OK) {
			buf_printf(error_r, " (reaching %s)", s->name);
		} else {
			ret = wait_published(peer, cfg, cfg->server_dn, &o, timeout_ms);
			if (ret != IX_OK)
				buf_printf(error_r, "%s did not receive the certificates within %u s", s->name,
					   timeout_ms / 1000);
			ldap_unbind_ext_s(peer, NULL, NULL);
		}
	}
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	own_certs_free(&o);
	repl_live_free(&live);
	repl_servers_free(&servers, count);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}
