/* replication_certs.c - TLS between servers anchored in the directory: each server publishes its own certificate
 * in its entry, and every server trusts the published set (<data>/tls/peers.pem). */
#include "directory/replication.h"
#include "common/err.h"
#include "common/log.h"
#include "directory/ldap_util.h"
#include "directory/replication_int.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

int repl_own_cert(const struct config *cfg, unsigned char **der_r, size_t *len_r, struct buf *error_r)
{
	char *path = config_path(cfg, "tls/cert.pem");
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	int ret = IX_EIO;
	unsigned char *der = NULL;
	int n = x != NULL ? i2d_X509(x, &der) : -1;
	if (n > 0 && (size_t)n <= REPL_MAX_CERT) {
		*der_r = xmalloc((size_t)n);
		memcpy(*der_r, der, (size_t)n);
		*len_r = (size_t)n;
		ret = IX_OK;
	} else {
		buf_printf(error_r, "cannot read this server's certificate %s", path);
	}
	OPENSSL_free(der);
	X509_free(x);
	free(path);
	return ret;
}

int repl_write_peers(const struct config *cfg, const struct repl_server *servers, size_t count, struct buf *error_r)
{
	BIO *mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < count; i++) {
		const unsigned char *p = servers[i].cert;
		X509 *x = p != NULL ? d2i_X509(NULL, &p, (long)servers[i].cert_len) : NULL;
		if (x == NULL) {
			if (servers[i].cert != NULL)
				log_warn("replication: the certificate published by %s is not valid DER: ignored",
					 servers[i].name);
			continue;
		}
		PEM_write_bio_X509(mem, x);
		X509_free(x);
	}
	char *pem = NULL;
	long plen = BIO_get_mem_data(mem, &pem);
	char *path = config_path(cfg, REPL_PEERS_FILE), *old = NULL;
	size_t olen = 0;
	int ret = IX_OK;
	int same = read_file(path, 4 * 1024 * 1024, &old, &olen) == 0 && olen == (size_t)plen &&
		   (plen == 0 || memcmp(old, pem, (size_t)plen) == 0);
	if (!same && write_file_atomic(path, pem, (size_t)plen, 0644) < 0) {
		buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
		ret = IX_EIO;
	}
	free(old);
	free(path);
	BIO_free(mem);
	return ret;
}

int repl_publish_cert(LDAP *ld, const struct config *cfg, const struct repl_server *me, struct buf *error_r)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int ret = repl_own_cert(cfg, &der, &len, error_r);
	if (ret != IX_OK)
		return ret;
	if (me->cert == NULL || me->cert_len != len || memcmp(me->cert, der, len) != 0) {
		struct berval bv = { (ber_len_t)len, (char *)der }, *bvals[] = { &bv, NULL };
		char *oc[] = { (char *)"pkiUser", NULL };
		LDAPMod m1 = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
		LDAPMod m2 = { .mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, .mod_type = (char *)"userCertificate;binary",
			       .mod_bvalues = bvals };
		LDAPMod *mods[] = { &m1, &m2, NULL };
		ret = ldapu_modify(ld, me->dn, me->pki ? mods + 1 : mods, error_r);
	}
	free(der);
	return ret;
}
