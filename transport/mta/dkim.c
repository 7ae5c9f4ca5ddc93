/* dkim.c - DKIM signing (RFC 6376, relaxed/relaxed) with OpenSSL: canonicalization, the hashes and the Ed25519 (RFC
 * 8463) and RSA-SHA256 signatures, keys parsed once and kept; which domain and keys sign a message leaving the
 * organisation. (Debian's libopendkim 2.11.0~beta2 signs Ed25519 too but leaks each Ed25519 key it loads: README.) */
#include "transport/mta/dkim.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/mta/dsn.h"
#include "transport/mta/mta.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Keys parsed from their PEM text, kept for the next messages (a new key's text is a new entry). */
#define DKIM_KEY_CACHE 16

struct dkim_signer {
	pthread_mutex_t lock;
	struct {
		char *pem; /* the key's form (enum key_form), then its text */
		EVP_PKEY *key;
	} keys[DKIM_KEY_CACHE];
	size_t next; /* the entry replaced next when all are taken */
};

/* The header fields signed when present (RFC 6376 5.4.1's list); From once more than it occurs (8.15). */
static const char *const signed_fields[] = { "from",
					     "sender",
					     "reply-to",
					     "subject",
					     "date",
					     "message-id",
					     "to",
					     "cc",
					     "mime-version",
					     "content-type",
					     "content-transfer-encoding",
					     "in-reply-to",
					     "references",
					     "list-id",
					     "list-unsubscribe",
					     "list-post" };

int dkim_signer_create(struct dkim_signer **s_r, struct buf *error_r)
{
	(void)error_r;
	struct dkim_signer *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	*s_r = s;
	return IX_OK;
}

void dkim_signer_destroy(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;
	if (s == NULL)
		return;
	for (size_t i = 0; i < DKIM_KEY_CACHE; i++) {
		free(s->keys[i].pem);
		EVP_PKEY_free(s->keys[i].key);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

/* The keys the cache tells apart: a private key's PEM text, a public key's p= value (RFC 6376 3.6.1). */
enum key_form { KEY_PRIVATE = 'P', KEY_RSA_PUBLIC = 'R', KEY_ED25519_PUBLIC = 'E' };

static EVP_PKEY *key_parse(enum key_form form, const char *text)
{
	EVP_PKEY *key = NULL;
	if (form == KEY_PRIVATE) {
		BIO *bio = BIO_new_mem_buf(text, -1);
		key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		return key;
	}
	struct buf raw = BUF_INIT;
	if (base64_decode(text, strlen(text), 8192, &raw) == IX_OK) {
		const unsigned char *der = (const unsigned char *)raw.data;
		key = form == KEY_ED25519_PUBLIC ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, raw.len)
						 : d2i_PUBKEY(NULL, &der, (long)raw.len);
	}
	buf_free(&raw);
	return key;
}

/* The parsed key of text in form (a reference the caller frees with EVP_PKEY_free), from the cache or parsed now
 * (OpenSSL 3's decoders take a tenth of a millisecond a key); NULL when it is no such key. */
static EVP_PKEY *key_get(struct dkim_signer *s, enum key_form form, const char *text)
{
	EVP_PKEY *key = NULL;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < DKIM_KEY_CACHE && key == NULL; i++) {
		if (s->keys[i].pem != NULL && s->keys[i].pem[0] == (char)form &&
		    strcmp(s->keys[i].pem + 1, text) == 0 && EVP_PKEY_up_ref(s->keys[i].key) == 1)
			key = s->keys[i].key;
	}
	pthread_mutex_unlock(&s->lock);
	if (key != NULL)
		return key;
	key = key_parse(form, text);
	if (key == NULL || EVP_PKEY_up_ref(key) != 1)
		return key;
	pthread_mutex_lock(&s->lock);
	size_t i = s->next;
	s->next = (s->next + 1) % DKIM_KEY_CACHE;
	free(s->keys[i].pem);
	EVP_PKEY_free(s->keys[i].key);
	s->keys[i].pem = xasprintf("%c%s", (char)form, text);
	s->keys[i].key = key; /* the cache's reference */
	pthread_mutex_unlock(&s->lock);
	return key;
}

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

void dkim_canon_header(struct buf *out, const char *name, size_t nlen, const char *val, size_t vlen)
{
	while (nlen > 0 && wsp(name[nlen - 1]))
		nlen--;
	for (size_t i = 0; i < nlen; i++)
		buf_append_char(out, (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]));
	buf_append_char(out, ':');
	bool space = false, any = false;
	for (size_t i = 0; i < vlen; i++) {
		char c = val[i];
		if (c == '\r' || c == '\n')
			continue;
		if (wsp(c)) {
			space = any;
			continue;
		}
		if (space)
			buf_append_char(out, ' ');
		space = false;
		any = true;
		buf_append_char(out, c);
	}
	buf_append_str(out, "\r\n");
}

void dkim_body_hash(const char *body, size_t len, unsigned char out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	struct buf line = BUF_INIT;
	size_t empty = 0; /* empty lines held back: written only if more text follows */
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(body + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - body) : len;
		buf_reset(&line);
		bool space = false;
		for (size_t k = i; k < end; k++) {
			char c = body[k];
			if (c == '\r' && k + 1 == end)
				break;
			if (wsp(c)) {
				space = true;
				continue;
			}
			if (space)
				buf_append_char(&line, ' ');
			space = false;
			buf_append_char(&line, c);
		}
		i = nl != NULL ? end + 1 : len;
		if (line.len == 0) {
			empty++;
			continue;
		}
		for (; empty > 0; empty--)
			EVP_DigestUpdate(md, "\r\n", 2);
		EVP_DigestUpdate(md, line.data, line.len);
		EVP_DigestUpdate(md, "\r\n", 2);
	}
	buf_free(&line);
	EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
}

struct field {
	const char *name, *val;
	size_t nlen, vlen;
};

struct fields {
	struct field *v;
	size_t n;
};

static bool collect(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct fields *f = ctx;
	f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
	f->v[f->n++] = (struct field){ name, val, nlen, vlen };
	return true;
}

static bool named(const struct field *f, const char *name, size_t len)
{
	return f->nlen == len && strncasecmp(f->name, name, len) == 0;
}

void dkim_canon_fields(const char *msg, size_t len, const char *h, size_t hlen, struct buf *data)
{
	struct fields f = { NULL, 0 };
	dsn_each_field(msg, dsn_header_length(msg, len), collect, &f);
	bool *taken = xcalloc(f.n + 1, sizeof(*taken));
	for (size_t i = 0; i < hlen;) {
		while (i < hlen && (h[i] == ':' || h[i] == ' ' || h[i] == '\t' || h[i] == '\r' || h[i] == '\n'))
			i++;
		size_t s = i;
		while (i < hlen && h[i] != ':' && h[i] != ' ' && h[i] != '\t' && h[i] != '\r' && h[i] != '\n')
			i++;
		if (i == s)
			break;
		for (size_t k = f.n; k-- > 0;) { /* the next instance from the bottom up (RFC 6376 5.4.2) */
			if (!taken[k] && named(&f.v[k], h + s, i - s)) {
				taken[k] = true;
				dkim_canon_header(data, f.v[k].name, f.v[k].nlen, f.v[k].val, f.v[k].vlen);
				break;
			}
		}
	}
	free(taken);
	free(f.v);
}

bool dkim_tag(const char *list, size_t len, const char *name, struct buf *out)
{
	size_t nlen = strlen(name);
	for (size_t i = 0; i < len;) {
		const char *semi = memchr(list + i, ';', len - i);
		size_t end = semi != NULL ? (size_t)(semi - list) : len, s = i;
		while (s < end && (wsp(list[s]) || list[s] == '\r' || list[s] == '\n'))
			s++;
		const char *eq = memchr(list + s, '=', end - s);
		size_t ne = eq != NULL ? (size_t)(eq - list) : s;
		while (ne > s && (wsp(list[ne - 1]) || list[ne - 1] == '\r' || list[ne - 1] == '\n'))
			ne--;
		if (eq != NULL && ne - s == nlen && strncasecmp(list + s, name, nlen) == 0) {
			for (const char *c = eq + 1; c < list + end; c++) {
				if (!wsp(*c) && *c != '\r' && *c != '\n')
					buf_append_char(out, *c);
			}
			return true;
		}
		i = end + 1;
	}
	return false;
}

int dkim_sign_data(struct dkim_signer *s, const struct dkim_key *k, const char *data, size_t len, unsigned char *sig,
		   size_t *siglen_r, struct buf *error_r)
{
	EVP_PKEY *key = key_get(s, KEY_PRIVATE, k->pem);
	int id = key != NULL ? EVP_PKEY_get_base_id(key) : 0;
	if (id != (k->alg == DKIM_ALG_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA)) {
		buf_printf(error_r, "the key of DKIM selector %s (%s) is not an %s private key", k->selector, k->domain,
			   k->alg == DKIM_ALG_ED25519 ? "Ed25519" : "RSA");
		EVP_PKEY_free(key);
		return IX_EINVAL;
	}
	unsigned char digest[32];
	*siglen_r = DKIM_SIG_MAX;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok;
	if (k->alg == DKIM_ALG_ED25519) {
		/* RFC 8463 3: Ed25519 (PureEdDSA) over the SHA-256 of the data */
		ok = EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestSign(md, sig, siglen_r, digest, sizeof(digest)) == 1;
	} else {
		ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		     EVP_DigestSign(md, sig, siglen_r, (const unsigned char *)data, len) == 1;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	if (!ok) {
		buf_printf(error_r, "DKIM signing for %s (selector %s, %s) failed", k->domain, k->selector,
			   dkim_alg_name(k->alg));
		return IX_EINVAL;
	}
	return IX_OK;
}

int dkim_verify_data(struct dkim_signer *s, const char *record, const char *alg, const char *data, size_t len,
		     const unsigned char *sig, size_t siglen, struct buf *why_r)
{
	struct buf k = BUF_INIT, p = BUF_INIT;
	size_t rlen = strlen(record);
	bool ed = strcmp(alg, "ed25519-sha256") == 0;
	int ret = IX_EINVAL;
	size_t before = why_r->len;
	EVP_PKEY *key = NULL;
	if (!dkim_tag(record, rlen, "k", &k))
		buf_append_str(&k, "rsa");
	if (!ed && strcmp(alg, "rsa-sha256") != 0) {
		buf_printf(why_r, "algorithm %s is not supported", alg);
	} else if (strcmp(buf_cstr(&k), ed ? "ed25519" : "rsa") != 0) {
		buf_printf(why_r, "the key is k=%s, not for %s", buf_cstr(&k), alg);
	} else if (!dkim_tag(record, rlen, "p", &p) || p.len == 0) {
		buf_append_str(why_r, "the key is revoked (empty p=)");
	} else {
		key = key_get(s, ed ? KEY_ED25519_PUBLIC : KEY_RSA_PUBLIC, buf_cstr(&p));
		if (key == NULL || (!ed && EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA))
			buf_append_str(why_r, "the key record holds no usable public key");
	}
	if (why_r->len == before && key != NULL) {
		unsigned char digest[32];
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		bool ok = ed ? EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL) == 1 &&
					  EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
					  EVP_DigestVerify(md, sig, siglen, digest, sizeof(digest)) == 1
			     : EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
					  EVP_DigestVerify(md, sig, siglen, (const unsigned char *)data, len) == 1;
		EVP_MD_CTX_free(md);
		if (ok)
			ret = IX_OK;
		else
			buf_append_str(why_r, "signature did not verify");
	}
	EVP_PKEY_free(key);
	buf_free(&k);
	buf_free(&p);
	return ret;
}

void dkim_append_field(struct buf *out, const char *name, const char *value, const unsigned char *sig, size_t siglen)
{
	/* folded between tags and within b= (whitespace there is not signed) */
	buf_printf(out, "%s: ", name);
	size_t col = strlen(name) + 2;
	for (const char *p = value; *p != '\0'; p++) {
		if (p[0] == ' ' && p > value && p[-1] == ';' && col > 60) {
			buf_append_str(out, "\r\n\t");
			col = 8;
			continue;
		}
		buf_append_char(out, *p);
		col++;
	}
	struct buf b64 = BUF_INIT;
	base64_encode(sig, siglen, &b64);
	for (size_t i = 0; i < b64.len; i += 64) {
		buf_append_str(out, "\r\n\t ");
		buf_append(out, b64.data + i, b64.len - i < 64 ? b64.len - i : 64);
	}
	buf_append_str(out, "\r\n");
	buf_free(&b64);
}

int dkim_sign_field(struct dkim_signer *s, const struct dkim_key *k, const char *field, const char *lead,
		    const char *msg, size_t len, struct buf *fields_r, struct buf *error_r)
{
	size_t hlen = dsn_header_length(msg, len);
	struct fields f = { NULL, 0 };
	dsn_each_field(msg, hlen, collect, &f);
	unsigned char bh[32];
	dkim_body_hash(msg + hlen, len - hlen, bh);
	/* the signed fields, each instance (bottom-up, RFC 6376 5.4.2), and From once more than it occurs (8.15) */
	struct buf h = BUF_INIT, data = BUF_INIT, value = BUF_INIT;
	for (size_t n = 0; n < IX_ARRAY_LEN(signed_fields); n++) {
		for (size_t i = 0; i < f.n; i++) {
			if (named(&f.v[i], signed_fields[n], strlen(signed_fields[n])))
				buf_printf(&h, "%s%s", h.len ? ":" : "", signed_fields[n]);
		}
		if (n == 0)
			buf_printf(&h, "%sfrom", h.len ? ":" : ""); /* an absent instance: adds nothing to the hash */
	}
	free(f.v);
	dkim_canon_fields(msg, len, h.data, h.len, &data);
	buf_printf(&value, "%s; a=%s; c=relaxed/relaxed; d=%s; s=%s; t=%lld; h=%s; bh=", lead,
		   k->alg == DKIM_ALG_ED25519 ? "ed25519-sha256" : "rsa-sha256", k->domain, k->selector,
		   (long long)time(NULL), buf_cstr(&h));
	base64_encode(bh, sizeof(bh), &value);
	buf_append_str(&value, "; b=");
	/* the signature field itself, b= empty, without its CRLF, closes the data (RFC 6376 3.7) */
	dkim_canon_header(&data, field, strlen(field), value.data, value.len);
	data.len -= 2;
	unsigned char sig[DKIM_SIG_MAX];
	size_t siglen;
	int ret = dkim_sign_data(s, k, data.data, data.len, sig, &siglen, error_r);
	if (ret == IX_OK)
		dkim_append_field(fields_r, field, buf_cstr(&value), sig, siglen);
	buf_free(&h);
	buf_free(&data);
	buf_free(&value);
	return ret;
}

int dkim_sign_message(struct dkim_signer *s, const struct dkim_key *keys, size_t n, const char *msg, size_t len,
		      struct buf *fields_r, struct buf *error_r)
{
	for (size_t i = 0; i < n; i++) {
		int ret = dkim_sign_field(s, &keys[i], "DKIM-Signature", "v=1", msg, len, fields_r, error_r);
		if (ret != IX_OK)
			return ret;
	}
	return IX_OK;
}

void dkim_keyset_free(struct dkim_keyset *ks)
{
	for (size_t i = 0; i < DKIM_KEYS_MAX; i++)
		free(ks->pems[i]);
	memset(ks, 0, sizeof(*ks));
}

int dkim_keyset_load(struct dir *dir, const struct config *cfg, const char *domain, struct dkim_keyset *ks_r,
		     struct buf *error_r)
{
	memset(ks_r, 0, sizeof(*ks_r));
	/* the domain, else its nearest parent among ours (MAILER-DAEMON@host.example.com signs as example.com) */
	struct buf sels = BUF_INIT;
	const char *d = domain;
	while (d != NULL && !(dir_domain_dkim(dir, d, &sels) == IX_OK && sels.len > 0)) {
		d = strchr(d, '.');
		d = d != NULL && strchr(d + 1, '.') != NULL ? d + 1 : NULL;
	}
	if (d == NULL) {
		buf_free(&sels);
		return IX_ENOTFOUND;
	}
	snprintf(ks_r->domain, sizeof(ks_r->domain), "%s", d);
	int ret = IX_OK;
	size_t n = 0;
	for (char *save = NULL, *line = strtok_r(sels.data, "\n", &save); line != NULL && n < DKIM_KEYS_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		struct dkim_key *k = &ks_r->keys[n];
		if (dkim_selector_parse(line, strlen(line), &k->alg, ks_r->selectors[n], sizeof(ks_r->selectors[n])) !=
		    IX_OK) {
			buf_printf(error_r, "%s has a DKIM selector that is not ALGORITHM:SELECTOR: %s", d, line);
			ret = IX_EINVAL;
			break;
		}
		char *path = dkim_key_path(cfg, d, ks_r->selectors[n]);
		size_t klen;
		bool here = read_file(path, DKIM_KEY_FILE_MAX, &ks_r->pems[n], &klen) == 0;
		free(path);
		if (!here) /* another server's key: each server signs with its own */
			continue;
		k->domain = ks_r->domain;
		k->selector = ks_r->selectors[n];
		k->pem = ks_r->pems[n];
		n++;
	}
	ks_r->n = n;
	if (ret == IX_OK && n == 0) {
		buf_printf(error_r,
			   "none of the DKIM keys of %s is on this server ('interchange domain dkim %s' here makes "
			   "its own)",
			   d, d);
		ret = IX_EIO;
	}
	buf_free(&sels);
	return ret;
}

int dkim_sign_outgoing(struct dkim_signer *s, struct dir *dir, const struct config *cfg, const char *msg, size_t len,
		       struct buf *fields_r, struct buf *error_r)
{
	char domain[256];
	if (!mta_header_from_domain(msg, len, domain, sizeof(domain)))
		return IX_ENOTFOUND;
	struct dkim_keyset ks;
	int ret = dkim_keyset_load(dir, cfg, domain, &ks, error_r);
	if (ret == IX_OK)
		ret = dkim_sign_message(s, ks.keys, ks.n, msg, len, fields_r, error_r);
	dkim_keyset_free(&ks);
	return ret;
}
