/* dkim_key.c - the DKIM keys: made and read with OpenSSL, their DNS records, their files and the selectors that name
 * them (what `interchange domain dkim` needs, apart from the signing). */
#include "transport/mta/dkim.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dkim_alg_name(enum dkim_alg alg)
{
	return alg == DKIM_ALG_ED25519 ? "ed25519" : "rsa";
}

int dkim_key_generate(enum dkim_alg alg, struct buf *pem_r, struct buf *error_r)
{
	EVP_PKEY *key = alg == DKIM_ALG_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
						: EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_BITS);
	BIO *bio = BIO_new(BIO_s_mem());
	int ret = IX_EIO;
	if (key != NULL && bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		buf_append(pem_r, p, (size_t)n);
		ret = IX_OK;
	} else {
		buf_printf(error_r, "cannot make a %s key", dkim_alg_name(alg));
	}
	BIO_free(bio);
	EVP_PKEY_free(key);
	return ret;
}

static EVP_PKEY *key_read(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	return key;
}

int dkim_key_record(const char *pem, struct buf *record_r, enum dkim_alg *alg_r, struct buf *error_r)
{
	EVP_PKEY *key = key_read(pem);
	int id = key != NULL ? EVP_PKEY_get_base_id(key) : 0;
	int ret = IX_EINVAL;
	if (id == EVP_PKEY_ED25519) {
		unsigned char raw[32];
		size_t n = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(key, raw, &n) == 1) {
			buf_append_str(record_r, "v=DKIM1; k=ed25519; p=");
			base64_encode(raw, n, record_r);
			ret = IX_OK;
		}
	} else if (id == EVP_PKEY_RSA) {
		unsigned char *der = NULL;
		int n = i2d_PUBKEY(key, &der);
		if (n > 0) {
			buf_append_str(record_r, "v=DKIM1; k=rsa; p=");
			base64_encode(der, (size_t)n, record_r);
			ret = IX_OK;
		}
		OPENSSL_free(der);
	}
	if (ret == IX_OK && alg_r != NULL)
		*alg_r = id == EVP_PKEY_ED25519 ? DKIM_ALG_ED25519 : DKIM_ALG_RSA;
	if (ret != IX_OK)
		buf_append_str(error_r, "not an Ed25519 or RSA private key");
	EVP_PKEY_free(key);
	return ret;
}

char *dkim_key_path(const struct config *cfg, const char *domain, const char *selector)
{
	char *rel = xasprintf("%s/%s/%s.pem", DKIM_DIR, domain, selector);
	char *path = config_path(cfg, rel);
	free(rel);
	return path;
}

int dkim_selector_parse(const char *value, size_t len, enum dkim_alg *alg_r, char *sel, size_t sel_size)
{
	const char *colon = memchr(value, ':', len);
	if (colon == NULL)
		return IX_EINVAL;
	size_t alen = (size_t)(colon - value), slen = len - alen - 1;
	if (alen == 7 && strncmp(value, "ed25519", 7) == 0)
		*alg_r = DKIM_ALG_ED25519;
	else if (alen == 3 && strncmp(value, "rsa", 3) == 0)
		*alg_r = DKIM_ALG_RSA;
	else
		return IX_EINVAL;
	if (slen == 0 || slen >= sel_size || colon[1] == '.' || colon[slen] == '.')
		return IX_EINVAL;
	for (size_t i = 0; i < slen; i++) {
		char c = colon[1 + i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  (c == '.' && colon[i] != '.');
		if (!ok)
			return IX_EINVAL;
		sel[i] = c;
	}
	sel[slen] = '\0';
	return IX_OK;
}
