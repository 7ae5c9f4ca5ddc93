/* test_dkim.c - unit tests for DKIM keys, records and selectors, signing, and ARC sealing and verifying (the
 * independent verification with dkimpy is tests/e2e/test_dkim.py and test_arc.py). */
#include "tests/unit/test.h"
#include "common/err.h"
#include "transport/mta/arc.h"
#include "transport/mta/dkim.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static void keys_and_records(void)
{
	struct buf pem = BUF_INIT, rec = BUF_INIT, err = BUF_INIT;
	enum dkim_alg alg;
	test_assert(dkim_key_generate(DKIM_ALG_ED25519, &pem, &err) == IX_OK);
	test_assert(strncmp(buf_cstr(&pem), "-----BEGIN PRIVATE KEY-----", 27) == 0);
	test_assert(dkim_key_record(buf_cstr(&pem), &rec, &alg, &err) == IX_OK && alg == DKIM_ALG_ED25519);
	/* 32 raw bytes: 44 base64 characters */
	test_assert(strncmp(buf_cstr(&rec), "v=DKIM1; k=ed25519; p=", 22) == 0 && rec.len == 22 + 44);
	buf_reset(&pem);
	buf_reset(&rec);
	test_assert(dkim_key_generate(DKIM_ALG_RSA, &pem, &err) == IX_OK);
	test_assert(dkim_key_record(buf_cstr(&pem), &rec, &alg, &err) == IX_OK && alg == DKIM_ALG_RSA);
	/* SubjectPublicKeyInfo of a 2048-bit key: 294 bytes, 392 base64 characters */
	test_assert(strncmp(buf_cstr(&rec), "v=DKIM1; k=rsa; p=MIIBIjAN", 26) == 0 && rec.len == 18 + 392);
	buf_reset(&rec);
	test_assert(dkim_key_record("not a key", &rec, NULL, &err) == IX_EINVAL && rec.len == 0);
	buf_free(&pem);
	buf_free(&rec);
	buf_free(&err);
}

static void selectors(void)
{
	enum dkim_alg alg;
	char sel[64];
	const char *v = "ed25519:ix20261207-e";
	test_assert(dkim_selector_parse(v, strlen(v), &alg, sel, sizeof(sel)) == IX_OK);
	test_assert(alg == DKIM_ALG_ED25519 && strcmp(sel, "ix20261207-e") == 0);
	v = "rsa:a.b";
	test_assert(dkim_selector_parse(v, strlen(v), &alg, sel, sizeof(sel)) == IX_OK && alg == DKIM_ALG_RSA);
	const char *bad[] = { "rsa", "dsa:x", "rsa:", "rsa:.x", "rsa:x.", "rsa:a..b", "rsa:a/b", "rsa:a b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		test_assert(dkim_selector_parse(bad[i], strlen(bad[i]), &alg, sel, sizeof(sel)) == IX_EINVAL);
	test_assert(dkim_selector_parse("rsa:abcdef", 10, &alg, sel, 4) == IX_EINVAL); /* does not fit */
	struct config cfg = { .data_dir = (char *)"/d" };
	char *p = dkim_key_path(&cfg, "example.com", "s1");
	test_assert(strcmp(p, "/d/dkim/example.com/s1.pem") == 0);
	free(p);
}

static void signing(void)
{
	struct buf ed = BUF_INIT, rsa = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
	test_assert(dkim_key_generate(DKIM_ALG_ED25519, &ed, &err) == IX_OK);
	test_assert(dkim_key_generate(DKIM_ALG_RSA, &rsa, &err) == IX_OK);
	struct dkim_signer *s;
	test_assert(dkim_signer_create(&s, &err) == IX_OK);
	const struct dkim_key keys[] = { { "example.com", "e1", buf_cstr(&ed), DKIM_ALG_ED25519 },
					 { "example.com", "r1", buf_cstr(&rsa), DKIM_ALG_RSA } };
	static const char msg[] = "From: A <a@example.com>\r\nTo: b@remote.test\r\nSubject: hi\r\n\r\nbody\r\n";
	test_assert(dkim_sign_message(s, keys, 2, msg, strlen(msg), &out, &err) == IX_OK);
	const char *o = buf_cstr(&out);
	const char *second = strstr(o + 1, "DKIM-Signature: ");
	test_assert(strncmp(o, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;", 72) == 0);
	test_assert(second != NULL &&
		    strncmp(second, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;", 53) == 0);
	test_assert(strstr(o, "s=e1;") != NULL && strstr(o, "s=r1;") != NULL);
	test_assert(strstr(o, "h=from:from:subject:to;") != NULL); /* From signed once more than it occurs */
	/* every line ends in CRLF, continuation lines are folded */
	for (size_t i = 0; i < out.len; i++)
		test_assert(o[i] != '\n' || (i > 0 && o[i - 1] == '\r'));
	test_assert(out.len > 2 && o[out.len - 1] == '\n' && strstr(o, "\r\n\t") != NULL);
	/* a key the library cannot use */
	buf_reset(&out);
	const struct dkim_key broken = { "example.com", "x", "-----BEGIN PRIVATE KEY-----\nAAAA\n", DKIM_ALG_RSA };
	test_assert(dkim_sign_message(s, &broken, 1, msg, strlen(msg), &out, &err) == IX_EINVAL && out.len == 0);
	test_assert(strstr(buf_cstr(&err), "selector x") != NULL);
	dkim_signer_destroy(&s);
	test_assert(s == NULL);
	buf_free(&ed);
	buf_free(&rsa);
	buf_free(&out);
	buf_free(&err);
}

/* arc.c's key lookup in the tests: the record of r1._domainkey.example.com, none else. */
static int test_key(void *ctx, const char *name, struct buf *txt_r)
{
	if (strcmp(name, "r1._domainkey.example.com") != 0)
		return IX_ENOTFOUND;
	buf_append_str(txt_r, ctx);
	return IX_OK;
}

/* Sealed by us, verified by us; each part of the chain changed after sealing breaks it. (dkimpy, an independent
 * implementation, seals and verifies against us in tests/e2e/test_arc.py.) */
static void arc_chain(void)
{
	struct buf rsa = BUF_INIT, rec = BUF_INIT, sealed = BUF_INIT, twice = BUF_INIT, err = BUF_INIT, t = BUF_INIT;
	test_assert(dkim_key_generate(DKIM_ALG_RSA, &rsa, &err) == IX_OK);
	test_assert(dkim_key_record(buf_cstr(&rsa), &rec, NULL, &err) == IX_OK);
	struct dkim_signer *s;
	test_assert(dkim_signer_create(&s, &err) == IX_OK);
	const struct dkim_key k = { "example.com", "r1", buf_cstr(&rsa), DKIM_ALG_RSA };
	static const char msg[] = "Authentication-Results: example.com;\r\n\tspf=pass smtp.mailfrom=a@x.test;\r\n\t"
				  "arc=none\r\nFrom: a@x.test\r\nSubject: hi\r\n\r\nbody\r\n";
	struct arc_verdict v;
	arc_verify(s, msg, strlen(msg), test_key, (void *)buf_cstr(&rec), &v);
	test_assert(v.result == ARC_NONE && v.instances == 0);
	arc_verdict_free(&v);
	/* not ours to seal: no results of our authserv-id */
	test_assert(arc_seal(s, &k, "other.test", msg, strlen(msg), &sealed, &err) == IX_ENOTFOUND && sealed.len == 0);
	test_assert(arc_seal(s, &k, "example.com", msg, strlen(msg), &sealed, &err) == IX_OK);
	test_assert(strncmp(buf_cstr(&sealed), "ARC-Seal: i=1; cv=none; a=rsa-sha256; d=example.com; s=r1;", 58) == 0);
	test_assert(strstr(buf_cstr(&sealed), "ARC-Authentication-Results: i=1; example.com;\r\n\tspf=pass") != NULL);
	buf_append_str(&sealed, msg);
	arc_verify(s, sealed.data, sealed.len, test_key, (void *)buf_cstr(&rec), &v);
	test_assert(v.result == ARC_PASS && v.instances == 1 && strcmp(v.sealer, "example.com") == 0);
	struct buf ar = BUF_INIT;
	arc_result_write(&v, "192.0.2.1", &ar);
	test_assert(strcmp(buf_cstr(&ar), "arc=pass (i=1, sealed by example.com) smtp.remote-ip=192.0.2.1") == 0);
	arc_verdict_free(&v);
	/* sealed again on top of a passing chain: i=2, cv=pass */
	static const char pass[] = "Authentication-Results: example.com; arc=pass\r\n";
	buf_append_str(&t, pass);
	buf_append(&t, sealed.data, sealed.len);
	test_assert(arc_seal(s, &k, "example.com", t.data, t.len, &twice, &err) == IX_OK);
	test_assert(strncmp(buf_cstr(&twice), "ARC-Seal: i=2; cv=pass;", 23) == 0);
	buf_append(&twice, t.data, t.len);
	arc_verify(s, twice.data, twice.len, test_key, (void *)buf_cstr(&rec), &v);
	test_assert(v.result == ARC_PASS && v.instances == 2 &&
		    strcmp(buf_cstr(&v.sealers), "example.com, example.com") == 0);
	arc_verdict_free(&v);
	/* a changed body, a changed older seal, a missing key */
	struct buf bad = BUF_INIT;
	buf_append(&bad, twice.data, twice.len - 6);
	buf_append_str(&bad, "BODY\r\n");
	arc_verify(s, bad.data, bad.len, test_key, (void *)buf_cstr(&rec), &v);
	test_assert(v.result == ARC_FAIL && strstr(v.why, "body hash did not verify") != NULL);
	arc_verdict_free(&v);
	buf_reset(&bad);
	buf_append(&bad, twice.data, twice.len);
	char *cv = strstr(bad.data, "i=1; cv=none");
	test_assert(cv != NULL);
	memcpy(cv + 8, "NONE", 4); /* relaxed canonicalization keeps the case of values */
	arc_verify(s, bad.data, bad.len, test_key, (void *)buf_cstr(&rec), &v);
	test_assert(v.result == ARC_FAIL && strstr(v.why, "seal i=2") != NULL);
	arc_verdict_free(&v);
	arc_verify(s, twice.data, twice.len, test_key, (void *)"v=DKIM1; k=rsa; p=", &v);
	test_assert(v.result == ARC_FAIL && strstr(v.why, "revoked") != NULL);
	arc_verdict_free(&v);
	/* the trusted sealers setting */
	test_assert(arc_trusted("a.test, list.test", "LIST.test") && arc_trusted("list.test", "list.test"));
	test_assert(!arc_trusted("a.test,list.test", "test") && !arc_trusted("", "list.test") && !arc_trusted("x", ""));
	dkim_signer_destroy(&s);
	buf_free(&bad);
	buf_free(&ar);
	buf_free(&rsa);
	buf_free(&rec);
	buf_free(&sealed);
	buf_free(&twice);
	buf_free(&t);
	buf_free(&err);
}

TEST_MAIN("dkim", TEST_CASE(keys_and_records), TEST_CASE(selectors), TEST_CASE(signing), TEST_CASE(arc_chain))
