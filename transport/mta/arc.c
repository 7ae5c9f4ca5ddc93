/* arc.c - ARC (RFC 8617) over dkim.c's canonicalization and signatures: the chain of a message collected into sets,
 * verified (the latest message signature, every seal), and a new set sealed with a domain's RSA key. */
#include "transport/mta/arc.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/mta/authres.h"
#include "transport/mta/dsn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { AAR, AMS, AS, KINDS };
static const char *const kind_names[KINDS] = { "ARC-Authentication-Results", "ARC-Message-Signature", "ARC-Seal" };

struct arc_field {
	const char *name, *val;
	size_t nlen, vlen;
};

/* The sets of a message: set[i][kind] for i = 1..n (name NULL: absent). */
struct chain {
	struct arc_field set[ARC_INSTANCES_MAX + 1][KINDS];
	unsigned n;
	char why[160]; /* a structure that is broken (duplicate, bad instance), else empty */
};

static bool collect(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct chain *c = ctx;
	int kind = -1;
	for (int k = 0; k < KINDS; k++) {
		if (nlen == strlen(kind_names[k]) && strncasecmp(name, kind_names[k], nlen) == 0)
			kind = k;
	}
	if (kind < 0)
		return true;
	struct buf i = BUF_INIT;
	unsigned long long inst = 0;
	if (!dkim_tag(val, vlen, "i", &i) || parse_uint(buf_cstr(&i), ARC_INSTANCES_MAX, &inst) < 0 || inst == 0) {
		snprintf(c->why, sizeof(c->why), "an %s with i=%.20s, not 1 to %d", kind_names[kind], buf_cstr(&i),
			 ARC_INSTANCES_MAX);
	} else if (c->set[inst][kind].name != NULL) {
		snprintf(c->why, sizeof(c->why), "two %s with i=%llu", kind_names[kind], inst);
	} else {
		c->set[inst][kind] = (struct arc_field){ name, val, nlen, vlen };
		if (inst > c->n)
			c->n = (unsigned)inst;
	}
	buf_free(&i);
	return c->why[0] == '\0';
}

static void chain_collect(const char *msg, size_t len, struct chain *c)
{
	memset(c, 0, sizeof(*c));
	dsn_each_field(msg, dsn_header_length(msg, len), collect, c);
}

static bool tag_is(const struct arc_field *f, const char *tag, const char *value)
{
	struct buf v = BUF_INIT;
	bool is = dkim_tag(f->val, f->vlen, tag, &v) && strcasecmp(buf_cstr(&v), value) == 0;
	buf_free(&v);
	return is;
}

/* Appends the canonical form of f with its b= tag's value removed (the signature's own field, RFC 6376 3.7). */
static void canon_without_b(const struct arc_field *f, struct buf *data)
{
	struct buf v = BUF_INIT;
	for (size_t i = 0; i < f->vlen;) {
		const char *semi = memchr(f->val + i, ';', f->vlen - i);
		size_t end = semi != NULL ? (size_t)(semi - f->val) : f->vlen, s = i;
		while (s < end && strchr(" \t\r\n", f->val[s]) != NULL)
			s++;
		size_t e = s + 1;
		while (e < end && strchr(" \t\r\n", f->val[e]) != NULL)
			e++;
		if (s < end && (f->val[s] == 'b' || f->val[s] == 'B') && e < end && f->val[e] == '=')
			buf_append(&v, f->val + i, e + 1 - i);
		else
			buf_append(&v, f->val + i, end - i);
		if (semi != NULL)
			buf_append_char(&v, ';');
		i = end + 1;
	}
	dkim_canon_header(data, f->name, f->nlen, v.data, v.len);
	buf_free(&v);
}

/* Verifies the signature of f (its a=, d=, s=, b=) over data. Returns IX_OK, IX_EAGAIN (no key now) or IX_EINVAL,
 * why in why_r. */
static int check_sig(struct dkim_signer *s, const struct arc_field *f, const char *data, size_t len, arc_key_fn *key_fn,
		     void *ctx, struct buf *why_r)
{
	struct buf a = BUF_INIT, d = BUF_INIT, sel = BUF_INIT, b = BUF_INIT, sig = BUF_INIT, key = BUF_INIT;
	int ret = IX_EINVAL;
	if (!dkim_tag(f->val, f->vlen, "a", &a) || !dkim_tag(f->val, f->vlen, "d", &d) ||
	    !dkim_tag(f->val, f->vlen, "s", &sel) || !dkim_tag(f->val, f->vlen, "b", &b)) {
		buf_append_str(why_r, "a tag of a=, b=, d=, s= is missing");
	} else if (base64_decode(b.data, b.len, DKIM_SIG_MAX, &sig) != IX_OK) {
		buf_append_str(why_r, "b= is not base64");
	} else {
		char name[600];
		snprintf(name, sizeof(name), "%s._domainkey.%s", buf_cstr(&sel), buf_cstr(&d));
		int kr = key_fn(ctx, name, &key);
		if (kr == IX_EAGAIN) {
			buf_printf(why_r, "the key %.300s cannot be had now", name);
			ret = IX_EAGAIN;
		} else if (kr != IX_OK) {
			buf_printf(why_r, "no key %.300s", name);
		} else {
			ret = dkim_verify_data(s, buf_cstr(&key), buf_cstr(&a), data, len,
					       (const unsigned char *)sig.data, sig.len, why_r);
		}
	}
	buf_free(&a);
	buf_free(&d);
	buf_free(&sel);
	buf_free(&b);
	buf_free(&sig);
	buf_free(&key);
	return ret;
}

/* The latest set's ARC-Message-Signature over msg (RFC 8617 5.2 step 4). */
static int check_ams(struct dkim_signer *s, const char *msg, size_t len, const struct arc_field *f, arc_key_fn *key_fn,
		     void *ctx, struct buf *why_r)
{
	struct buf c = BUF_INIT, h = BUF_INIT, bh = BUF_INIT, l = BUF_INIT, data = BUF_INIT, want = BUF_INIT;
	int ret = IX_EINVAL;
	if (dkim_tag(f->val, f->vlen, "c", &c) && strcasecmp(buf_cstr(&c), "relaxed/relaxed") != 0) {
		buf_printf(why_r, "canonicalization c=%.40s is not supported", buf_cstr(&c));
	} else if (dkim_tag(f->val, f->vlen, "l", &l)) {
		buf_append_str(why_r, "a body length limit l= is not supported");
	} else if (!dkim_tag(f->val, f->vlen, "h", &h) || !dkim_tag(f->val, f->vlen, "bh", &bh)) {
		buf_append_str(why_r, "the message signature has no h= or bh=");
	} else if (strcasestr(buf_cstr(&h), "arc-seal") != NULL) {
		buf_append_str(why_r, "the message signature covers an ARC-Seal");
	} else {
		size_t hlen = dsn_header_length(msg, len);
		unsigned char hash[32];
		dkim_body_hash(msg + hlen, len - hlen, hash);
		base64_encode(hash, sizeof(hash), &want);
		if (strcmp(buf_cstr(&want), buf_cstr(&bh)) != 0) {
			buf_append_str(why_r, "body hash did not verify");
		} else {
			dkim_canon_fields(msg, len, h.data, h.len, &data);
			canon_without_b(f, &data);
			ret = check_sig(s, f, data.data, data.len - 2, key_fn, ctx, why_r);
		}
	}
	buf_free(&c);
	buf_free(&h);
	buf_free(&bh);
	buf_free(&l);
	buf_free(&data);
	buf_free(&want);
	return ret;
}

/* Appends the ARC-Seal signing data of set k (RFC 8617 5.1.1): the sets first..k in order, each its
 * ARC-Authentication-Results, ARC-Message-Signature and ARC-Seal, the last without b= and without its CRLF. */
static void seal_data(const struct chain *c, unsigned first, unsigned k, struct buf *data)
{
	for (unsigned i = first; i <= k; i++) {
		for (int kind = 0; kind < KINDS; kind++) {
			const struct arc_field *f = &c->set[i][kind];
			if (i == k && kind == AS)
				canon_without_b(f, data);
			else
				dkim_canon_header(data, f->name, f->nlen, f->val, f->vlen);
		}
	}
	data->len -= 2;
}

/* Puts "PREFIX: " before why. */
static void why_prefix(struct buf *why, const char *prefix)
{
	struct buf w = BUF_INIT;
	buf_printf(&w, "%s: %s", prefix, buf_cstr(why));
	buf_reset(why);
	buf_append(why, w.data, w.len);
	buf_free(&w);
}

void arc_verify(struct dkim_signer *s, const char *msg, size_t len, arc_key_fn *key_fn, void *ctx,
		struct arc_verdict *v_r)
{
	memset(v_r, 0, sizeof(*v_r));
	struct chain *c = xcalloc(1, sizeof(*c));
	struct buf why = BUF_INIT, data = BUF_INIT;
	chain_collect(msg, len, c);
	v_r->instances = c->n;
	v_r->result = c->n == 0 && c->why[0] == '\0' ? ARC_NONE : ARC_FAIL;
	if (c->why[0] != '\0')
		buf_append_str(&why, c->why);
	for (unsigned i = 1; why.len == 0 && i <= c->n; i++) {
		if (c->set[i][AAR].name == NULL || c->set[i][AMS].name == NULL || c->set[i][AS].name == NULL)
			buf_printf(&why, "set i=%u is incomplete", i);
		else if (!tag_is(&c->set[i][AS], "cv", i == 1 ? "none" : "pass"))
			buf_printf(&why, "the seal i=%u says cv=%s", i,
				   tag_is(&c->set[i][AS], "cv", "fail") ? "fail" : "something else than it must");
	}
	int ret = IX_OK;
	if (why.len == 0 && c->n > 0) {
		ret = check_ams(s, msg, len, &c->set[c->n][AMS], key_fn, ctx, &why);
		if (ret != IX_OK)
			why_prefix(&why, "message signature");
	}
	for (unsigned k = c->n; why.len == 0 && k >= 1; k--) {
		buf_reset(&data);
		seal_data(c, 1, k, &data);
		ret = check_sig(s, &c->set[k][AS], data.data, data.len, key_fn, ctx, &why);
		if (ret != IX_OK) {
			char prefix[32];
			snprintf(prefix, sizeof(prefix), "seal i=%u", k);
			why_prefix(&why, prefix);
		}
	}
	if (why.len > 0) {
		v_r->result = ret == IX_EAGAIN ? ARC_TEMPERROR : ARC_FAIL;
		snprintf(v_r->why, sizeof(v_r->why), "%s", buf_cstr(&why));
	} else if (c->n > 0) {
		v_r->result = ARC_PASS;
		for (unsigned i = 1; i <= c->n; i++) {
			struct buf d = BUF_INIT;
			dkim_tag(c->set[i][AS].val, c->set[i][AS].vlen, "d", &d);
			buf_printf(&v_r->sealers, "%s%s", i > 1 ? ", " : "", buf_cstr(&d));
			if (i == c->n)
				snprintf(v_r->sealer, sizeof(v_r->sealer), "%s", buf_cstr(&d));
			buf_free(&d);
		}
	}
	buf_free(&why);
	buf_free(&data);
	free(c);
}

void arc_verdict_free(struct arc_verdict *v)
{
	buf_free(&v->sealers);
}

void arc_result_write(const struct arc_verdict *v, const char *client_ip, struct buf *out)
{
	switch (v->result) {
	case ARC_NONE: buf_append_str(out, "arc=none"); return;
	case ARC_PASS: buf_printf(out, "arc=pass (i=%u, sealed by %s)", v->instances, buf_cstr(&v->sealers)); break;
	case ARC_FAIL:
	case ARC_TEMPERROR:
		buf_printf(out, "arc=%s (", v->result == ARC_FAIL ? "fail" : "temperror");
		for (const char *p = v->why; *p != '\0'; p++) /* a comment: no parenthesis of its own */
			buf_append_char(out, *p == '(' || *p == ')' ? '\'' : *p);
		buf_append_char(out, ')');
		break;
	}
	buf_printf(out, " smtp.remote-ip=%s", client_ip);
}

bool arc_trusted(const char *list, const char *domain)
{
	size_t dlen = strlen(domain);
	for (const char *p = list; dlen > 0 && *p != '\0';) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e != '\0' && *e != ',' && *e != ' ')
			e++;
		if ((size_t)(e - p) == dlen && strncasecmp(p, domain, dlen) == 0)
			return true;
		p = e;
	}
	return false;
}

int arc_seal(struct dkim_signer *s, const struct dkim_key *k, const char *authserv_id, const char *msg, size_t len,
	     struct buf *fields_r, struct buf *error_r)
{
	const char *ar;
	size_t arlen;
	if (!authres_own(authserv_id, msg, len, &ar, &arlen))
		return IX_ENOTFOUND;
	struct chain *c = xcalloc(1, sizeof(*c));
	chain_collect(msg, len, c);
	if (c->n >= ARC_INSTANCES_MAX) {
		free(c);
		return IX_ELIMIT;
	}
	unsigned i = c->n + 1;
	/* cv: what we found on the way in (RFC 8617 5.1.1), none only for the first set */
	struct buf arc = BUF_INIT;
	bool found = dkim_tag(ar, arlen, "arc", &arc);
	const char *cv = c->n == 0 ? "none" : found && strncasecmp(buf_cstr(&arc), "pass", 4) == 0 ? "pass" : "fail";
	buf_free(&arc);
	while (arlen > 0 && strchr(" \t\r\n", *ar) != NULL) {
		ar++;
		arlen--;
	}
	while (arlen > 0 && (ar[arlen - 1] == '\r' || ar[arlen - 1] == '\n'))
		arlen--;
	struct buf aar = BUF_INIT, ams = BUF_INIT, value = BUF_INIT, data = BUF_INIT, lead = BUF_INIT;
	buf_printf(&aar, " i=%u; ", i);
	buf_append(&aar, ar, arlen);
	buf_append_str(&aar, "\r\n");
	buf_printf(&lead, "i=%u", i);
	int ret = dkim_sign_field(s, k, kind_names[AMS], buf_cstr(&lead), msg, len, &ams, error_r);
	if (ret == IX_OK) {
		size_t nlen = strlen(kind_names[AMS]);
		buf_printf(&value, " i=%u; cv=%s; a=rsa-sha256; d=%s; s=%s; t=%lld; b=", i, cv, k->domain, k->selector,
			   (long long)time(NULL));
		c->set[i][AAR] = (struct arc_field){ kind_names[AAR], aar.data, strlen(kind_names[AAR]), aar.len };
		c->set[i][AMS] = (struct arc_field){ ams.data, ams.data + nlen + 1, nlen, ams.len - nlen - 1 };
		c->set[i][AS] = (struct arc_field){ kind_names[AS], value.data, strlen(kind_names[AS]), value.len };
		/* a failed chain is not carried on: the seal covers its own set only */
		seal_data(c, strcmp(cv, "fail") == 0 ? i : 1, i, &data);
		unsigned char sig[DKIM_SIG_MAX];
		size_t siglen;
		ret = dkim_sign_data(s, k, data.data, data.len, sig, &siglen, error_r);
		if (ret == IX_OK) {
			dkim_append_field(fields_r, kind_names[AS], buf_cstr(&value) + 1, sig, siglen);
			buf_append(fields_r, ams.data, ams.len);
			buf_printf(fields_r, "%s:", kind_names[AAR]);
			buf_append(fields_r, aar.data, aar.len);
		}
	}
	buf_free(&aar);
	buf_free(&ams);
	buf_free(&value);
	buf_free(&data);
	buf_free(&lead);
	free(c);
	return ret;
}

int arc_seal_outgoing(struct dkim_signer *s, struct dir *dir, const struct config *cfg, const char *msg, size_t len,
		      struct buf *fields_r, struct buf *error_r)
{
	const char *ar;
	size_t arlen;
	if (!authres_own(cfg->domain, msg, len, &ar, &arlen))
		return IX_ENOTFOUND; /* not mail from outside that we checked: DKIM signing is its business */
	struct dkim_keyset ks;
	int ret = dkim_keyset_load(dir, cfg, cfg->domain, &ks, error_r);
	const struct dkim_key *rsa = NULL;
	for (size_t i = 0; ret == IX_OK && i < ks.n && rsa == NULL; i++)
		rsa = ks.keys[i].alg == DKIM_ALG_RSA ? &ks.keys[i] : NULL;
	if (ret == IX_OK && rsa == NULL) {
		buf_printf(error_r, "no RSA key of %s is on this server to seal with", ks.domain);
		ret = IX_EIO;
	}
	if (ret == IX_OK)
		ret = arc_seal(s, rsa, cfg->domain, msg, len, fields_r, error_r);
	dkim_keyset_free(&ks);
	return ret;
}
