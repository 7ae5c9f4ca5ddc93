/* jwt.c - JWT parsing and checking: base64url, the JOSE header, keys from a JWKS built as OpenSSL EVP_PKEYs, RS256 /
 * ES256 / EdDSA signatures, the registered claims. OpenSSL and jansson errors are translated here only. */
#include "transport/net/jwt.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/util.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>

enum jwt_alg { ALG_RS256 = 1, ALG_ES256, ALG_EDDSA };

struct jwt {
	enum jwt_alg alg;
	char *kid;
	json_t *claims;
	char *signed_part; /* header.payload as sent: what the signature covers */
	size_t signed_len;
	struct buf sig;
};

struct jwks_key {
	char *kid; /* NULL when the key has none */
	enum jwt_alg alg;
	EVP_PKEY *pkey;
};

struct jwks {
	struct jwks_key keys[JWKS_KEYS_MAX];
	size_t count;
};

/* Decodes base64url without padding (RFC 7515 section 2) into out (replaced). Returns IX_OK or IX_EINVAL. */
static int b64url_decode(const char *in, size_t len, size_t max, struct buf *out)
{
	if (len % 4 == 1)
		return IX_EINVAL;
	struct buf std = BUF_INIT;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '+' || c == '/' || c == '=')
			c = '!'; /* the standard alphabet's own characters are not base64url */
		else if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		buf_append_char(&std, c);
	}
	while (std.len % 4 != 0)
		buf_append_char(&std, '=');
	buf_reset(out);
	int ret = base64_decode(buf_cstr(&std), std.len, max, out);
	buf_free(&std);
	return ret < 0 ? IX_EINVAL : IX_OK;
}

static json_t *json_from_b64url(const char *in, size_t len)
{
	struct buf raw = BUF_INIT;
	json_t *j = NULL;
	if (b64url_decode(in, len, JWT_TOKEN_MAX, &raw) == IX_OK)
		j = json_loadb(raw.data, raw.len, JSON_REJECT_DUPLICATES, NULL);
	buf_free(&raw);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int alg_from_name(const char *name)
{
	if (name == NULL)
		return 0;
	if (strcmp(name, "RS256") == 0)
		return ALG_RS256;
	if (strcmp(name, "ES256") == 0)
		return ALG_ES256;
	if (strcmp(name, "EdDSA") == 0)
		return ALG_EDDSA;
	return 0;
}

int jwt_parse(const char *token, size_t len, struct jwt **jwt_r, struct buf *error_r)
{
	*jwt_r = NULL;
	if (len > JWT_TOKEN_MAX) {
		buf_append_str(error_r, "token too long");
		return IX_EINVAL;
	}
	const char *dot1 = memchr(token, '.', len);
	const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
		buf_append_str(error_r, "not a signed JWT (three parts)");
		return IX_EINVAL;
	}
	json_t *header = json_from_b64url(token, (size_t)(dot1 - token));
	if (header == NULL) {
		buf_append_str(error_r, "bad JWT header");
		return IX_EINVAL;
	}
	int alg = alg_from_name(json_string_value(json_object_get(header, "alg")));
	const char *kid = json_string_value(json_object_get(header, "kid"));
	if (alg == 0) {
		buf_append_str(error_r, "JWT algorithm not RS256, ES256 or EdDSA");
		json_decref(header);
		return IX_EINVAL;
	}
	struct jwt *j = xcalloc(1, sizeof(*j));
	j->alg = (enum jwt_alg)alg;
	j->kid = kid != NULL ? xstrdup(kid) : NULL;
	json_decref(header);
	j->claims = json_from_b64url(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (j->claims == NULL || b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), 1024, &j->sig) != IX_OK) {
		buf_append_str(error_r, j->claims == NULL ? "bad JWT payload" : "bad JWT signature encoding");
		jwt_free(&j);
		return IX_EINVAL;
	}
	j->signed_len = (size_t)(dot2 - token);
	j->signed_part = xstrndup(token, j->signed_len);
	*jwt_r = j;
	return IX_OK;
}

void jwt_free(struct jwt **jp)
{
	struct jwt *j = *jp;
	if (j == NULL)
		return;
	free(j->kid);
	json_decref(j->claims);
	free(j->signed_part);
	buf_free(&j->sig);
	free(j);
	*jp = NULL;
}

const char *jwt_kid(const struct jwt *jwt)
{
	return jwt->kid;
}

const char *jwt_claim(const struct jwt *jwt, const char *name)
{
	return json_string_value(json_object_get(jwt->claims, name));
}

/* ---- keys ---- */

static BIGNUM *bn_member(json_t *key, const char *name)
{
	struct buf raw = BUF_INIT;
	const char *v = json_string_value(json_object_get(key, name));
	BIGNUM *bn = NULL;
	if (v != NULL && b64url_decode(v, strlen(v), 2048, &raw) == IX_OK && raw.len > 0)
		bn = BN_bin2bn((const unsigned char *)raw.data, (int)raw.len, NULL);
	buf_free(&raw);
	return bn;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rsa_key(json_t *key)
{
	BIGNUM *n = bn_member(key, "n"), *e = bn_member(key, "e");
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (n != NULL && e != NULL && BN_num_bits(n) >= 2048 && bld != NULL &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pkey = pkey_fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *p256_key(json_t *key)
{
	const char *crv = json_string_value(json_object_get(key, "crv"));
	const char *x = json_string_value(json_object_get(key, "x")), *y = json_string_value(json_object_get(key, "y"));
	if (crv == NULL || strcmp(crv, "P-256") != 0 || x == NULL || y == NULL)
		return NULL;
	struct buf bx = BUF_INIT, by = BUF_INIT;
	EVP_PKEY *pkey = NULL;
	if (b64url_decode(x, strlen(x), 64, &bx) == IX_OK && b64url_decode(y, strlen(y), 64, &by) == IX_OK &&
	    bx.len == 32 && by.len == 32) {
		unsigned char point[65];
		point[0] = 0x04; /* uncompressed */
		memcpy(point + 1, bx.data, 32);
		memcpy(point + 33, by.data, 32);
		OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
		if (bld != NULL && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
			pkey = pkey_fromdata("EC", bld);
		OSSL_PARAM_BLD_free(bld);
	}
	buf_free(&bx);
	buf_free(&by);
	return pkey;
}

static EVP_PKEY *ed25519_key(json_t *key)
{
	const char *crv = json_string_value(json_object_get(key, "crv"));
	const char *x = json_string_value(json_object_get(key, "x"));
	if (crv == NULL || strcmp(crv, "Ed25519") != 0 || x == NULL)
		return NULL;
	struct buf bx = BUF_INIT;
	EVP_PKEY *pkey = NULL;
	if (b64url_decode(x, strlen(x), 64, &bx) == IX_OK && bx.len == 32)
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, (const unsigned char *)bx.data, 32);
	buf_free(&bx);
	return pkey;
}

int jwks_parse(const char *doc, size_t len, struct jwks **keys_r, struct buf *error_r)
{
	*keys_r = NULL;
	if (len > JWKS_DOC_MAX) {
		buf_append_str(error_r, "key set too large");
		return IX_ELIMIT;
	}
	json_error_t jerr;
	json_t *root = json_loadb(doc, len, 0, &jerr);
	json_t *arr = root != NULL ? json_object_get(root, "keys") : NULL;
	if (!json_is_array(arr)) {
		buf_printf(error_r, "not a JSON Web Key Set: %s", root == NULL ? jerr.text : "no \"keys\" array");
		json_decref(root);
		return IX_EINVAL;
	}
	struct jwks *ks = xcalloc(1, sizeof(*ks));
	size_t i;
	json_t *key;
	json_array_foreach(arr, i, key)
	{
		if (ks->count == JWKS_KEYS_MAX)
			break;
		const char *kty = json_string_value(json_object_get(key, "kty"));
		const char *use = json_string_value(json_object_get(key, "use"));
		if (kty == NULL || (use != NULL && strcmp(use, "sig") != 0))
			continue;
		struct jwks_key *k = &ks->keys[ks->count];
		if (strcmp(kty, "RSA") == 0) {
			k->alg = ALG_RS256;
			k->pkey = rsa_key(key);
		} else if (strcmp(kty, "EC") == 0) {
			k->alg = ALG_ES256;
			k->pkey = p256_key(key);
		} else if (strcmp(kty, "OKP") == 0) {
			k->alg = ALG_EDDSA;
			k->pkey = ed25519_key(key);
		}
		if (k->pkey == NULL)
			continue;
		const char *kid = json_string_value(json_object_get(key, "kid"));
		k->kid = kid != NULL ? xstrdup(kid) : NULL;
		ks->count++;
	}
	json_decref(root);
	*keys_r = ks;
	return IX_OK;
}

void jwks_free(struct jwks **kp)
{
	struct jwks *ks = *kp;
	if (ks == NULL)
		return;
	for (size_t i = 0; i < ks->count; i++) {
		free(ks->keys[i].kid);
		EVP_PKEY_free(ks->keys[i].pkey);
	}
	free(ks);
	*kp = NULL;
}

size_t jwks_count(const struct jwks *keys)
{
	return keys->count;
}

/* ---- signatures ---- */

/* ES256's signature is r || s, 32 bytes each (RFC 7518 section 3.4); OpenSSL wants DER. */
static int es256_der(const struct buf *sig, unsigned char **der_r, int *len_r)
{
	if (sig->len != 64)
		return IX_EAUTH;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn((const unsigned char *)sig->data, 32, NULL);
	BIGNUM *s = BN_bin2bn((const unsigned char *)sig->data + 32, 32, NULL);
	if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return IX_EAUTH;
	}
	*der_r = NULL;
	*len_r = i2d_ECDSA_SIG(es, der_r);
	ECDSA_SIG_free(es);
	return *len_r > 0 ? IX_OK : IX_EAUTH;
}

static bool signature_ok(const struct jwt *jwt, EVP_PKEY *pkey)
{
	const unsigned char *sig = (const unsigned char *)jwt->sig.data;
	size_t siglen = jwt->sig.len;
	unsigned char *der = NULL;
	if (jwt->alg == ALG_ES256) {
		int dlen;
		if (es256_der(&jwt->sig, &der, &dlen) != IX_OK)
			return false;
		sig = der;
		siglen = (size_t)dlen;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md != NULL &&
		  EVP_DigestVerifyInit(md, NULL, jwt->alg == ALG_EDDSA ? NULL : EVP_sha256(), NULL, pkey) == 1 &&
		  EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt->signed_part, jwt->signed_len) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return ok;
}

int jwt_verify_signature(const struct jwt *jwt, const struct jwks *keys, struct buf *error_r)
{
	bool tried = false;
	for (size_t i = 0; i < keys->count; i++) {
		const struct jwks_key *k = &keys->keys[i];
		if (jwt->kid != NULL && (k->kid == NULL || strcmp(k->kid, jwt->kid) != 0))
			continue;
		if (k->alg != jwt->alg) {
			if (jwt->kid != NULL) {
				buf_printf(error_r, "key %s does not fit the token's algorithm", jwt->kid);
				return IX_EAUTH;
			}
			continue;
		}
		tried = true;
		if (signature_ok(jwt, k->pkey))
			return IX_OK;
	}
	if (!tried) {
		buf_printf(error_r, "no key with id %s", jwt->kid != NULL ? jwt->kid : "(none) of the token's type");
		return IX_ENOTFOUND;
	}
	buf_append_str(error_r, "bad signature");
	return IX_EAUTH;
}

/* ---- claims ---- */

static bool number_claim(const struct jwt *jwt, const char *name, uint64_t *v_r)
{
	json_t *v = json_object_get(jwt->claims, name);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*v_r = (uint64_t)json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) >= 0) {
		*v_r = (uint64_t)json_real_value(v);
		return true;
	}
	return false;
}

static bool audience_has(const struct jwt *jwt, const char *audience)
{
	json_t *aud = json_object_get(jwt->claims, "aud");
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), audience) == 0;
	size_t i;
	json_t *v;
	json_array_foreach(aud, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), audience) == 0)
			return true;
	}
	return false;
}

int jwt_check_claims(const struct jwt *jwt, const char *issuer, const char *audience, uint64_t now, unsigned skew,
		     struct buf *error_r)
{
	const char *iss = jwt_claim(jwt, "iss");
	if (iss == NULL || strcmp(iss, issuer) != 0) {
		buf_append_str(error_r, "issuer does not match");
		return IX_EAUTH;
	}
	if (!audience_has(jwt, audience)) {
		buf_append_str(error_r, "audience does not match");
		return IX_EAUTH;
	}
	uint64_t exp, nbf;
	if (!number_claim(jwt, "exp", &exp)) {
		buf_append_str(error_r, "no expiry (exp)");
		return IX_EAUTH;
	}
	if (exp + skew <= now) {
		buf_append_str(error_r, "expired");
		return IX_EAUTH;
	}
	if ((number_claim(jwt, "nbf", &nbf) && nbf > now + skew) ||
	    (number_claim(jwt, "iat", &nbf) && nbf > now + skew)) {
		buf_append_str(error_r, "not valid yet");
		return IX_EAUTH;
	}
	return IX_OK;
}
