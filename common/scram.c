/* scram.c - SCRAM verifiers and the server side of an exchange over OpenSSL's PBKDF2, HMAC and digests; pure
 * functions of their input (random numbers aside), no I/O. */
#include "common/scram.h"
#include "common/base64.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* bytes of random in our half of the nonce (base64: 32 characters) */
#define SERVER_NONCE_BYTES 24

static const EVP_MD *md_of(enum scram_hash h)
{
	return h == SCRAM_SHA_1 ? EVP_sha1() : EVP_sha256();
}

const char *scram_hash_name(enum scram_hash h)
{
	return h == SCRAM_SHA_1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

size_t scram_hash_len(enum scram_hash h)
{
	return h == SCRAM_SHA_1 ? 20 : 32;
}

int scram_mechanism(const char *mech, enum scram_hash *h_r, bool *plus_r)
{
	for (int h = 0; h < SCRAM_HASHES; h++) {
		const char *name = scram_hash_name((enum scram_hash)h);
		size_t n = strlen(name);
		if (strncasecmp(mech, name, n) != 0)
			continue;
		if (mech[n] == '\0' || strcasecmp(mech + n, "-PLUS") == 0) {
			*h_r = (enum scram_hash)h;
			*plus_r = mech[n] != '\0';
			return 0;
		}
	}
	return IX_EINVAL;
}

int scram_salt_new(unsigned char salt[SCRAM_SALT_LEN])
{
	return RAND_bytes(salt, SCRAM_SALT_LEN) == 1 ? 0 : IX_EUNAVAIL;
}

static void hmac(enum scram_hash h, const unsigned char *key, size_t keylen, const void *data, size_t len,
		 unsigned char *out)
{
	unsigned outlen = 0;
	if (HMAC(md_of(h), key, (int)keylen, data, len, out, &outlen) == NULL)
		panic("HMAC failed");
}

static void digest(enum scram_hash h, const unsigned char *data, size_t len, unsigned char *out)
{
	if (EVP_Digest(data, len, out, NULL, md_of(h), NULL) != 1)
		panic("digest failed");
}

/* SaltedPassword's two children: ClientKey and ServerKey. */
static void derive_keys(enum scram_hash h, const char *password, size_t len, const unsigned char *salt, size_t salt_len,
			unsigned iterations, unsigned char *client_key, unsigned char *server_key)
{
	size_t hl = scram_hash_len(h);
	unsigned char salted[SCRAM_KEY_MAX];
	if (PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len, (int)iterations, md_of(h), (int)hl, salted) != 1)
		panic("PBKDF2 failed");
	hmac(h, salted, hl, "Client Key", 10, client_key);
	hmac(h, salted, hl, "Server Key", 10, server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
}

int scram_verifier_make(enum scram_hash h, const char *password, size_t len, const unsigned char *salt, size_t salt_len,
			unsigned iterations, struct scram_verifier *v_r)
{
	if (iterations < SCRAM_ITERATIONS_MIN || iterations > SCRAM_ITERATIONS_MAX || salt_len == 0 ||
	    salt_len > SCRAM_SALT_MAX)
		return IX_EINVAL;
	memset(v_r, 0, sizeof(*v_r));
	v_r->hash = h;
	v_r->iterations = iterations;
	memcpy(v_r->salt, salt, salt_len);
	v_r->salt_len = salt_len;
	unsigned char client_key[SCRAM_KEY_MAX];
	derive_keys(h, password, len, salt, salt_len, iterations, client_key, v_r->server_key);
	digest(h, client_key, scram_hash_len(h), v_r->stored_key);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return 0;
}

void scram_verifier_format(const struct scram_verifier *v, struct buf *out)
{
	buf_printf(out, "%s$%u:", scram_hash_name(v->hash), v->iterations);
	base64_encode(v->salt, v->salt_len, out);
	buf_append_char(out, '$');
	base64_encode(v->stored_key, scram_hash_len(v->hash), out);
	buf_append_char(out, ':');
	base64_encode(v->server_key, scram_hash_len(v->hash), out);
}

/* Decodes the base64 field [p, end) into exactly want bytes (want 0: 1..max bytes, length in *got_r). */
static int decode_field(const char *p, const char *end, unsigned char *dst, size_t want, size_t max, size_t *got_r)
{
	struct buf b = BUF_INIT;
	int ret = base64_decode(p, (size_t)(end - p), max, &b);
	if (ret == 0 && (b.len == 0 || (want != 0 && b.len != want)))
		ret = IX_EINVAL;
	if (ret == 0) {
		memcpy(dst, b.data, b.len);
		if (got_r != NULL)
			*got_r = b.len;
	}
	buf_free(&b);
	return ret == 0 ? 0 : IX_EINVAL;
}

int scram_verifier_parse(const char *s, size_t len, struct scram_verifier *v_r)
{
	memset(v_r, 0, sizeof(*v_r));
	const char *end = s + len, *dollar = memchr(s, '$', len);
	if (dollar == NULL)
		return IX_EINVAL;
	char name[24];
	size_t nlen = (size_t)(dollar - s);
	if (nlen >= sizeof(name))
		return IX_EINVAL;
	memcpy(name, s, nlen);
	name[nlen] = '\0';
	bool plus;
	if (scram_mechanism(name, &v_r->hash, &plus) != 0 || plus)
		return IX_EINVAL;
	size_t hl = scram_hash_len(v_r->hash);
	/* iterations ':' salt '$' StoredKey ':' ServerKey */
	const char *p = dollar + 1, *colon = memchr(p, ':', (size_t)(end - p));
	if (colon == NULL || colon == p || colon - p > 9)
		return IX_EINVAL;
	unsigned long it = 0;
	for (const char *q = p; q < colon; q++) {
		if (*q < '0' || *q > '9')
			return IX_EINVAL;
		it = it * 10 + (unsigned long)(*q - '0');
	}
	if (it < SCRAM_ITERATIONS_MIN || it > SCRAM_ITERATIONS_MAX)
		return IX_EINVAL;
	v_r->iterations = (unsigned)it;
	p = colon + 1;
	const char *d2 = memchr(p, '$', (size_t)(end - p));
	if (d2 == NULL || decode_field(p, d2, v_r->salt, 0, SCRAM_SALT_MAX, &v_r->salt_len) != 0)
		return IX_EINVAL;
	p = d2 + 1;
	const char *c2 = memchr(p, ':', (size_t)(end - p));
	if (c2 == NULL || decode_field(p, c2, v_r->stored_key, hl, hl, NULL) != 0 ||
	    decode_field(c2 + 1, end, v_r->server_key, hl, hl, NULL) != 0)
		return IX_EINVAL;
	return 0;
}

bool scram_verifier_matches(const struct scram_verifier *v, const char *password, size_t len)
{
	struct scram_verifier w;
	if (scram_verifier_make(v->hash, password, len, v->salt, v->salt_len, v->iterations, &w) != 0)
		return false;
	bool same = CRYPTO_memcmp(w.stored_key, v->stored_key, scram_hash_len(v->hash)) == 0;
	OPENSSL_cleanse(&w, sizeof(w));
	return same;
}

/* ---- the server side ---- */

void scram_server_reset(struct scram_server *s)
{
	buf_free(&s->auth_message);
	OPENSSL_cleanse(s, sizeof(*s));
	s->matched = -1;
}

const char *scram_server_user(const struct scram_server *s)
{
	return s->user;
}

const char *scram_server_authzid(const struct scram_server *s)
{
	return s->authzid;
}

int scram_server_matched(const struct scram_server *s)
{
	return s->matched;
}

/* RFC 5802 saslname: "=2C" is ',', "=3D" is '=', any other '=' is an error; no NUL, no ','. [p, end) into out
 * (max bytes and a NUL). Returns 0 or IX_EINVAL. */
static int unescape_name(const char *p, const char *end, char *out, size_t max)
{
	size_t n = 0;
	while (p < end) {
		char c = *p++;
		if (c == '=') {
			if (end - p < 2)
				return IX_EINVAL;
			if (p[0] == '2' && p[1] == 'C')
				c = ',';
			else if (p[0] == '3' && p[1] == 'D')
				c = '=';
			else
				return IX_EINVAL;
			p += 2;
		} else if (c == '\0' || c == ',') {
			return IX_EINVAL;
		}
		if (n >= max)
			return IX_EINVAL;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/* The channel binding data for a cb-name, or NULL when this connection has none of that type. */
static const unsigned char *cbind_data(const struct scram_cbind *cb, const char *name, size_t *len_r)
{
	if (cb == NULL)
		return NULL;
	if (strcmp(name, "tls-exporter") == 0 && cb->exporter_len > 0) {
		*len_r = cb->exporter_len;
		return cb->exporter;
	}
	if (strcmp(name, "tls-server-end-point") == 0 && cb->endpoint_len > 0) {
		*len_r = cb->endpoint_len;
		return cb->endpoint;
	}
	if (cb->other_len > 0 && strcmp(name, cb->other_name) == 0) {
		*len_r = cb->other_len;
		return cb->other;
	}
	return NULL;
}

static int fail(struct buf *error_r, int ret, const char *why)
{
	buf_append_str(error_r, why);
	return ret;
}

int scram_server_first(struct scram_server *s, enum scram_hash h, bool plus, const struct scram_cbind *cbind,
		       const char *in, size_t len, struct buf *error_r)
{
	scram_server_reset(s);
	s->hash = h;
	s->plus = plus;
	s->cbind_known = cbind != NULL && (cbind->exporter_len > 0 || cbind->endpoint_len > 0 || cbind->other_len > 0);
	if (memchr(in, '\0', len) != NULL)
		return fail(error_r, IX_EINVAL, "NUL in the client's first message");
	const char *end = in + len, *p = in;
	/* gs2-cbind-flag "," [authzid] "," */
	const char *comma = memchr(p, ',', len);
	if (comma == NULL)
		return fail(error_r, IX_EINVAL, "malformed gs2 header");
	if (comma - p == 1 && (p[0] == 'n' || p[0] == 'y')) {
		if (plus)
			return fail(error_r, IX_EINVAL, "a -PLUS mechanism without channel binding");
		if (p[0] == 'y' && s->cbind_known)
			return fail(error_r, IX_EAUTH, "the client thinks we cannot bind the channel (a downgrade?)");
	} else if (comma - p > 2 && p[0] == 'p' && p[1] == '=') {
		size_t n = (size_t)(comma - p - 2);
		if (!plus)
			return fail(error_r, IX_EINVAL, "channel binding asked for with a mechanism without -PLUS");
		if (n >= sizeof(s->cb_name))
			return fail(error_r, IX_EINVAL, "unsupported channel binding type");
		memcpy(s->cb_name, p + 2, n);
		s->cb_name[n] = '\0';
		size_t dl;
		if (cbind_data(cbind, s->cb_name, &dl) == NULL)
			return fail(error_r, IX_EINVAL, "unsupported channel binding type");
	} else {
		return fail(error_r, IX_EINVAL, "malformed gs2 header");
	}
	p = comma + 1;
	comma = memchr(p, ',', (size_t)(end - p));
	if (comma == NULL)
		return fail(error_r, IX_EINVAL, "malformed gs2 header");
	if (comma > p) {
		if (comma - p < 3 || p[0] != 'a' || p[1] != '=' ||
		    unescape_name(p + 2, comma, s->authzid, SCRAM_USER_MAX) != 0)
			return fail(error_r, IX_EINVAL, "malformed authorisation identity");
	}
	p = comma + 1;
	s->gs2_len = (size_t)(p - in);
	if (s->gs2_len >= sizeof(s->gs2))
		return fail(error_r, IX_EINVAL, "gs2 header too long");
	memcpy(s->gs2, in, s->gs2_len);
	const char *bare = p;
	/* "n=" saslname ",r=" nonce ["," extensions]; a mandatory extension (m=) is one we do not know */
	if (end - p < 2 || p[0] != 'n' || p[1] != '=')
		return fail(error_r, IX_EINVAL, p[0] == 'm' ? "unsupported mandatory extension" : "user name expected");
	comma = memchr(p, ',', (size_t)(end - p));
	if (comma == NULL || comma == p + 2 || unescape_name(p + 2, comma, s->user, SCRAM_USER_MAX) != 0)
		return fail(error_r, IX_EINVAL, "malformed user name");
	p = comma + 1;
	if (end - p < 3 || p[0] != 'r' || p[1] != '=')
		return fail(error_r, IX_EINVAL, "nonce expected");
	p += 2;
	const char *nend = memchr(p, ',', (size_t)(end - p));
	if (nend == NULL)
		nend = end;
	size_t nlen = (size_t)(nend - p);
	if (nlen == 0 || nlen > SCRAM_NONCE_MAX)
		return fail(error_r, IX_EINVAL, "bad nonce length");
	for (const char *q = p; q < nend; q++) {
		if (*q < 0x21 || *q > 0x7e)
			return fail(error_r, IX_EINVAL, "bad nonce character");
	}
	memcpy(s->nonce, p, nlen);
	s->client_nonce_len = nlen;
	buf_append(&s->auth_message, bare, (size_t)(end - bare));
	s->state = 1;
	return 0;
}

size_t scram_server_add_verifier(struct scram_server *s, const struct scram_verifier *v)
{
	if (v->hash != s->hash || s->nverifiers >= SCRAM_VERIFIERS_MAX)
		return s->nverifiers;
	if (s->nverifiers > 0) {
		const struct scram_verifier *first = &s->verifiers[0];
		if (first->iterations != v->iterations || first->salt_len != v->salt_len ||
		    memcmp(first->salt, v->salt, v->salt_len) != 0)
			return s->nverifiers;
	}
	s->verifiers[s->nverifiers++] = *v;
	return s->nverifiers;
}

int scram_server_challenge(struct scram_server *s, const unsigned char *fake_secret, size_t fake_len,
			   unsigned fake_iterations, struct buf *out)
{
	unsigned char rnd[SERVER_NONCE_BYTES];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return IX_EUNAVAIL;
	struct buf nonce = BUF_INIT;
	base64_encode(rnd, sizeof(rnd), &nonce);
	scram_server_challenge_nonce(s, buf_cstr(&nonce), fake_secret, fake_len, fake_iterations, out);
	buf_free(&nonce);
	return 0;
}

void scram_server_challenge_nonce(struct scram_server *s, const char *server_nonce, const unsigned char *fake_secret,
				  size_t fake_len, unsigned fake_iterations, struct buf *out)
{
	size_t snl = strlen(server_nonce);
	if (s->state != 1 || snl == 0 || snl > SCRAM_NONCE_MAX)
		panic("scram_server_challenge out of order or with a bad nonce");
	memcpy(s->nonce + s->client_nonce_len, server_nonce, snl);
	s->nonce[s->client_nonce_len + snl] = '\0';
	const unsigned char *salt;
	size_t salt_len;
	unsigned iterations;
	unsigned char fake[SCRAM_KEY_MAX];
	if (s->nverifiers > 0) {
		salt = s->verifiers[0].salt;
		salt_len = s->verifiers[0].salt_len;
		iterations = s->verifiers[0].iterations;
	} else {
		/* the same salt for a name every time, as a real user's would be */
		hmac(SCRAM_SHA_256, fake_secret, fake_len, s->user, strlen(s->user), fake);
		salt = fake;
		salt_len = SCRAM_SALT_LEN;
		iterations = fake_iterations;
	}
	size_t start = out->len;
	buf_printf(out, "r=%s,s=", s->nonce);
	base64_encode(salt, salt_len, out);
	buf_printf(out, ",i=%u", iterations);
	buf_append_char(&s->auth_message, ',');
	buf_append(&s->auth_message, out->data + start, out->len - start);
	s->state = 2;
}

int scram_server_final(struct scram_server *s, const struct scram_cbind *cbind, const char *in, size_t len,
		       struct buf *out, struct buf *error_r)
{
	if (s->state != 2)
		panic("scram_server_final out of order");
	s->state = 3;
	if (memchr(in, '\0', len) != NULL)
		return fail(error_r, IX_EINVAL, "NUL in the client's final message");
	const char *end = in + len;
	/* "c=" base64 ",r=" nonce ["," extensions] ",p=" base64; the proof is last */
	const char *proof = NULL;
	for (const char *q = end; q > in; q--) {
		if (q[-1] == ',' && end - q > 2 && q[0] == 'p' && q[1] == '=') {
			proof = q;
			break;
		}
	}
	if (end - in < 2 || in[0] != 'c' || in[1] != '=' || proof == NULL)
		return fail(error_r, IX_EINVAL, "malformed final message");
	const char *comma = memchr(in, ',', len);
	struct buf cb = BUF_INIT;
	if (base64_decode(in + 2, (size_t)(comma - in - 2), sizeof(s->gs2) + SCRAM_CBIND_MAX, &cb) != 0) {
		buf_free(&cb);
		return fail(error_r, IX_EINVAL, "malformed channel binding");
	}
	/* what c= must hold: the gs2 header, then the channel's binding data under -PLUS */
	size_t dlen = 0;
	const unsigned char *data = s->cb_name[0] != '\0' ? cbind_data(cbind, s->cb_name, &dlen) : NULL;
	bool cb_ok = cb.len == s->gs2_len + dlen && memcmp(cb.data, s->gs2, s->gs2_len) == 0 &&
		     (dlen == 0 || CRYPTO_memcmp(cb.data + s->gs2_len, data, dlen) == 0);
	buf_free(&cb);
	if (!cb_ok || (s->cb_name[0] != '\0' && data == NULL))
		return fail(error_r, IX_EAUTH, "wrong channel binding");
	const char *r = comma + 1;
	size_t nonce_len = strlen(s->nonce);
	if (end - r < 2 || r[0] != 'r' || r[1] != '=' || (size_t)(end - r - 2) <= nonce_len ||
	    memcmp(r + 2, s->nonce, nonce_len) != 0 || (r[2 + nonce_len] != ','))
		return fail(error_r, IX_EAUTH, "wrong nonce");
	size_t hl = scram_hash_len(s->hash);
	unsigned char client_proof[SCRAM_KEY_MAX];
	size_t got = 0;
	if (decode_field(proof + 2, end, client_proof, hl, hl, &got) != 0)
		return fail(error_r, IX_EINVAL, "malformed proof");
	buf_append_char(&s->auth_message, ',');
	buf_append(&s->auth_message, in, (size_t)(proof - 1 - in));
	const struct buf *am = &s->auth_message;
	for (size_t i = 0; i < s->nverifiers; i++) {
		const struct scram_verifier *v = &s->verifiers[i];
		unsigned char sig[SCRAM_KEY_MAX], key[SCRAM_KEY_MAX], stored[SCRAM_KEY_MAX];
		hmac(s->hash, v->stored_key, hl, am->data, am->len, sig);
		for (size_t k = 0; k < hl; k++)
			key[k] = client_proof[k] ^ sig[k];
		digest(s->hash, key, hl, stored);
		OPENSSL_cleanse(key, sizeof(key));
		if (CRYPTO_memcmp(stored, v->stored_key, hl) != 0)
			continue;
		hmac(s->hash, v->server_key, hl, am->data, am->len, sig);
		buf_append_str(out, "v=");
		base64_encode(sig, hl, out);
		s->matched = (int)i;
		return 0;
	}
	return fail(error_r, IX_EAUTH, "wrong proof");
}
