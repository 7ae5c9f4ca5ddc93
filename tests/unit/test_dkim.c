/* test_dkim.c - unit tests for DKIM keys, records and selectors, and signing through libopendkim (the independent
 * verification with dkimpy is tests/e2e/test_dkim.py). */
#include "tests/unit/test.h"
#include "common/err.h"
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

TEST_MAIN("dkim", TEST_CASE(keys_and_records), TEST_CASE(selectors), TEST_CASE(signing))
