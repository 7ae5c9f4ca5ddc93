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
		char *pem;
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

/* The parsed key of pem (a reference the caller frees with EVP_PKEY_free), from the cache or parsed now; NULL when
 * it is no private key. */
static EVP_PKEY *key_get(struct dkim_signer *s, const char *pem)
{
	EVP_PKEY *key = NULL;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < DKIM_KEY_CACHE && key == NULL; i++) {
		if (s->keys[i].pem != NULL && strcmp(s->keys[i].pem, pem) == 0 && EVP_PKEY_up_ref(s->keys[i].key) == 1)
			key = s->keys[i].key;
	}
	pthread_mutex_unlock(&s->lock);
	if (key != NULL)
		return key;
	BIO *bio = BIO_new_mem_buf(pem, -1);
	key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (key == NULL || EVP_PKEY_up_ref(key) != 1)
		return key;
	pthread_mutex_lock(&s->lock);
	size_t i = s->next;
	s->next = (s->next + 1) % DKIM_KEY_CACHE;
	free(s->keys[i].pem);
	EVP_PKEY_free(s->keys[i].key);
	s->keys[i].pem = xstrdup(pem);
	s->keys[i].key = key; /* the cache's reference */
	pthread_mutex_unlock(&s->lock);
	return key;
}

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Appends the relaxed canonical form (RFC 6376 3.4.2) of a header field: lower-case name, the value unfolded, runs of
 * whitespace made one space, none at its ends, then CRLF. */
static void canon_header(struct buf *out, const char *name, size_t nlen, const char *val, size_t vlen)
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

/* The SHA-256 of the body in relaxed canonical form (RFC 6376 3.4.4): whitespace runs made one space, none at line
 * ends, no empty lines at the end, CRLF line ends; an empty body is empty. */
static void body_hash(const char *body, size_t len, unsigned char out[32])
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

static bool named(const struct field *f, const char *name)
{
	return f->nlen == strlen(name) && strncasecmp(f->name, name, f->nlen) == 0;
}

/* Signs msg with one key: appends its DKIM-Signature field to fields_r. */
static int sign_one(struct dkim_signer *s, const struct dkim_key *k, const char *msg, size_t len, struct buf *fields_r,
		    struct buf *error_r)
{
	EVP_PKEY *key = key_get(s, k->pem);
	int id = key != NULL ? EVP_PKEY_get_base_id(key) : 0;
	if (id != (k->alg == DKIM_ALG_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA)) {
		buf_printf(error_r, "the key of DKIM selector %s (%s) is not an %s private key", k->selector, k->domain,
			   k->alg == DKIM_ALG_ED25519 ? "Ed25519" : "RSA");
		EVP_PKEY_free(key);
		return IX_EINVAL;
	}
	size_t hlen = dsn_header_length(msg, len);
	struct fields f = { NULL, 0 };
	dsn_each_field(msg, hlen, collect, &f);
	unsigned char bh[32];
	body_hash(msg + hlen, len - hlen, bh);
	/* the signed fields, each instance bottom-up (RFC 6376 5.4.2), and From once more */
	struct buf h = BUF_INIT, data = BUF_INIT, value = BUF_INIT;
	for (size_t n = 0; n < IX_ARRAY_LEN(signed_fields); n++) {
		size_t seen = 0;
		for (size_t i = f.n; i-- > 0;) {
			if (!named(&f.v[i], signed_fields[n]))
				continue;
			buf_printf(&h, "%s%s", h.len ? ":" : "", signed_fields[n]);
			canon_header(&data, f.v[i].name, f.v[i].nlen, f.v[i].val, f.v[i].vlen);
			seen++;
		}
		if (n == 0)
			buf_printf(&h, "%sfrom", h.len ? ":" : ""); /* an absent instance: adds nothing to the hash */
		(void)seen;
	}
	buf_printf(&value, "v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s; t=%lld; h=%s; bh=",
		   k->alg == DKIM_ALG_ED25519 ? "ed25519-sha256" : "rsa-sha256", k->domain, k->selector,
		   (long long)time(NULL), buf_cstr(&h));
	base64_encode(bh, sizeof(bh), &value);
	buf_append_str(&value, "; b=");
	/* the signature field itself, b= empty, without its CRLF, closes the data (RFC 6376 3.7) */
	canon_header(&data, "DKIM-Signature", 14, value.data, value.len);
	data.len -= 2;
	unsigned char sig[512], digest[32];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok;
	if (k->alg == DKIM_ALG_ED25519) {
		/* RFC 8463 3: Ed25519 (PureEdDSA) over the SHA-256 of the data */
		ok = EVP_Digest(data.data, data.len, digest, NULL, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestSign(md, sig, &siglen, digest, sizeof(digest)) == 1;
	} else {
		ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		     EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data.data, data.len) == 1;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	int ret = IX_OK;
	if (ok) {
		/* folded between tags and within b= (whitespace there is not signed) */
		buf_append_str(fields_r, "DKIM-Signature: ");
		size_t col = 16;
		for (const char *p = buf_cstr(&value); *p != '\0'; p++) {
			if (p[0] == ' ' && p > value.data && p[-1] == ';' && col > 60) {
				buf_append_str(fields_r, "\r\n\t");
				col = 8;
				continue;
			}
			buf_append_char(fields_r, *p);
			col++;
		}
		struct buf b64 = BUF_INIT;
		base64_encode(sig, siglen, &b64);
		for (size_t i = 0; i < b64.len; i += 64) {
			buf_append_str(fields_r, "\r\n\t ");
			buf_append(fields_r, b64.data + i, b64.len - i < 64 ? b64.len - i : 64);
		}
		buf_append_str(fields_r, "\r\n");
		buf_free(&b64);
	} else {
		buf_printf(error_r, "DKIM signing for %s (selector %s, %s) failed", k->domain, k->selector,
			   dkim_alg_name(k->alg));
		ret = IX_EINVAL;
	}
	free(f.v);
	buf_free(&h);
	buf_free(&data);
	buf_free(&value);
	return ret;
}

int dkim_sign_message(struct dkim_signer *s, const struct dkim_key *keys, size_t n, const char *msg, size_t len,
		      struct buf *fields_r, struct buf *error_r)
{
	for (size_t i = 0; i < n; i++) {
		int ret = sign_one(s, &keys[i], msg, len, fields_r, error_r);
		if (ret != IX_OK)
			return ret;
	}
	return IX_OK;
}

int dkim_sign_outgoing(struct dkim_signer *s, struct dir *dir, const struct config *cfg, const char *msg, size_t len,
		       struct buf *fields_r, struct buf *error_r)
{
	char domain[256];
	if (!mta_header_from_domain(msg, len, domain, sizeof(domain)))
		return IX_ENOTFOUND;
	/* the From's domain, else its nearest parent among ours (MAILER-DAEMON@host.example.com signs as example.com) */
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
	struct dkim_key keys[DKIM_KEYS_MAX];
	char selectors[DKIM_KEYS_MAX][128];
	char *pems[DKIM_KEYS_MAX] = { 0 };
	size_t n = 0;
	int ret = IX_OK;
	for (char *save = NULL, *line = strtok_r(sels.data, "\n", &save); line != NULL && n < DKIM_KEYS_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		if (dkim_selector_parse(line, strlen(line), &keys[n].alg, selectors[n], sizeof(selectors[n])) !=
		    IX_OK) {
			buf_printf(error_r, "%s has a DKIM selector that is not ALGORITHM:SELECTOR: %s", d, line);
			ret = IX_EINVAL;
			break;
		}
		char *path = dkim_key_path(cfg, d, selectors[n]);
		size_t klen;
		bool here = read_file(path, DKIM_KEY_FILE_MAX, &pems[n], &klen) == 0;
		free(path);
		if (!here) /* another server's key: each server signs with its own */
			continue;
		keys[n].domain = d;
		keys[n].selector = selectors[n];
		keys[n].pem = pems[n];
		n++;
	}
	if (ret == IX_OK && n == 0) {
		buf_printf(error_r,
			   "none of the DKIM keys of %s is on this server ('interchange domain dkim %s' here makes "
			   "its own)",
			   d, d);
		ret = IX_EIO;
	}
	if (ret == IX_OK)
		ret = dkim_sign_message(s, keys, n, msg, len, fields_r, error_r);
	for (size_t i = 0; i < DKIM_KEYS_MAX; i++)
		free(pems[i]);
	buf_free(&sels);
	return ret;
}
