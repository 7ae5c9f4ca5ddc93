/* test_scram.c - unit tests for common/scram.c: the published exchanges of RFC 5802 (SHA-1) and RFC 7677 (SHA-256),
 * RFC 5803 verifiers both ways, what the server refuses (malformed messages, a wrong proof, nonce or channel binding,
 * a "y" downgrade), and a proof matching the second of several verifiers that share a salt. */
#include "tests/unit/test.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/scram.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const struct {
	enum scram_hash hash;
	const char *salt_b64, *client_first, *server_nonce, *server_first, *client_final, *server_final;
} rfc[] = {
	{ SCRAM_SHA_1, "QSXCR+Q6sek8bf92", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j",
	  "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	  "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	  "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=" },
	{ SCRAM_SHA_256, "W22ZaJ0SNY7soEsUEjb6gQ==", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	  "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	  "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	  "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" },
};

static const unsigned char fake[] = "a server secret";

static void verifier_of(enum scram_hash h, const char *salt_b64, const char *password, struct scram_verifier *v)
{
	struct buf salt = BUF_INIT;
	if (base64_decode(salt_b64, strlen(salt_b64), SCRAM_SALT_MAX, &salt) != 0 ||
	    scram_verifier_make(h, password, strlen(password), (unsigned char *)salt.data, salt.len, 4096, v) != 0)
		abort();
	buf_free(&salt);
}

static void published_exchanges(void)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(rfc); i++) {
		struct scram_server s = { 0 };
		struct buf out = BUF_INIT, err = BUF_INIT;
		test_assert(scram_server_first(&s, rfc[i].hash, false, NULL, rfc[i].client_first,
					       strlen(rfc[i].client_first), &err) == 0);
		test_assert_str(scram_server_user(&s), "user");
		test_assert_str(scram_server_authzid(&s), "");
		struct scram_verifier v;
		verifier_of(rfc[i].hash, rfc[i].salt_b64, "pencil", &v);
		test_assert(scram_server_add_verifier(&s, &v) == 1);
		scram_server_challenge_nonce(&s, rfc[i].server_nonce, fake, sizeof(fake), 4096, &out);
		test_assert_str(buf_cstr(&out), rfc[i].server_first);
		buf_reset(&out);
		test_assert(scram_server_final(&s, NULL, rfc[i].client_final, strlen(rfc[i].client_final), &out,
					       &err) == 0);
		test_assert_str(buf_cstr(&out), rfc[i].server_final);
		test_assert(scram_server_matched(&s) == 0);
		/* the wrong password's verifier does not match the same proof */
		struct scram_verifier w;
		verifier_of(rfc[i].hash, rfc[i].salt_b64, "pencils", &w);
		test_assert(scram_server_first(&s, rfc[i].hash, false, NULL, rfc[i].client_first,
					       strlen(rfc[i].client_first), &err) == 0);
		scram_server_add_verifier(&s, &w);
		buf_reset(&out);
		scram_server_challenge_nonce(&s, rfc[i].server_nonce, fake, sizeof(fake), 4096, &out);
		buf_reset(&out);
		test_assert(scram_server_final(&s, NULL, rfc[i].client_final, strlen(rfc[i].client_final), &out,
					       &err) == IX_EAUTH);
		test_assert(out.len == 0);
		scram_server_reset(&s);
		buf_free(&out);
		buf_free(&err);
	}
}

static void verifiers_round_trip(void)
{
	struct scram_verifier v, back;
	verifier_of(SCRAM_SHA_256, rfc[1].salt_b64, "pencil", &v);
	struct buf b = BUF_INIT;
	scram_verifier_format(&v, &b);
	test_assert(strncmp(buf_cstr(&b), "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$", 44) == 0);
	test_assert(scram_verifier_parse(b.data, b.len, &back) == 0);
	test_assert(memcmp(&v, &back, sizeof(v)) == 0);
	test_assert(scram_verifier_matches(&back, "pencil", 6));
	test_assert(!scram_verifier_matches(&back, "pencil ", 7));
	static const char *const bad[] = {
		"SCRAM-SHA-256",
		"SCRAM-SHA-512$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
		"SCRAM-SHA-256$100:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",  /* too few iterations */
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA", /* keys of the wrong length */
		"SCRAM-SHA-256$4096:!!$AAAA:AAAA",
		"SCRAM-SHA-256$x:W22Z$AAAA:AAAA",
		"SCRAM-SHA-256-PLUS$4096:W22Z$A:A",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++)
		test_assert(scram_verifier_parse(bad[i], strlen(bad[i]), &back) == IX_EINVAL);
	/* a truncated copy of a good one */
	test_assert(scram_verifier_parse(b.data, b.len - 4, &back) == IX_EINVAL);
	buf_free(&b);
	enum scram_hash h;
	bool plus;
	test_assert(scram_mechanism("scram-sha-256-plus", &h, &plus) == 0 && h == SCRAM_SHA_256 && plus);
	test_assert(scram_mechanism("SCRAM-SHA-1", &h, &plus) == 0 && h == SCRAM_SHA_1 && !plus);
	test_assert(scram_mechanism("SCRAM-SHA-256-PLUSX", &h, &plus) == IX_EINVAL);
	test_assert(scram_mechanism("SCRAM-SHA-2", &h, &plus) == IX_EINVAL);
}

static int first(struct scram_server *s, bool plus, const struct scram_cbind *cb, const char *msg)
{
	struct buf err = BUF_INIT;
	int ret = scram_server_first(s, SCRAM_SHA_256, plus, cb, msg, strlen(msg), &err);
	if (ret != 0 && err.len == 0)
		ret = 1; /* a refusal must say why */
	buf_free(&err);
	return ret;
}

static void malformed_first_messages(void)
{
	struct scram_server s = { 0 };
	struct scram_cbind cb = { .exporter_len = 32, .endpoint_len = 32 };
	static const char *const bad[] = {
		"",
		"n",
		"n,",
		"x,,n=user,r=abc",
		"n,,m=ext,n=user,r=abc",
		"n,,n=,r=abc",
		"n,,n=us=2Xer,r=abc",
		"n,,n=user",
		"n,,n=user,r=",
		"n,,n=user,x=abc",
		"n,b=x,n=user,r=abc",
		"n,a=,n=user,r=abc",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++)
		test_assert(first(&s, false, NULL, bad[i]) == IX_EINVAL);
	test_assert(first(&s, false, NULL, "n,a=boss,n=us=2Cer=3D,r=abc,x=ext") == 0);
	test_assert_str(scram_server_user(&s), "us,er=");
	test_assert_str(scram_server_authzid(&s), "boss");
	/* the flag must fit the mechanism; "y" where we could bind is a downgrade */
	test_assert(first(&s, true, &cb, "n,,n=user,r=abc") == IX_EINVAL);
	test_assert(first(&s, false, &cb, "p=tls-exporter,,n=user,r=abc") == IX_EINVAL);
	test_assert(first(&s, true, &cb, "p=tls-unique,,n=user,r=abc") == IX_EINVAL);
	test_assert(first(&s, true, NULL, "p=tls-exporter,,n=user,r=abc") == IX_EINVAL);
	test_assert(first(&s, false, &cb, "y,,n=user,r=abc") == IX_EAUTH);
	test_assert(first(&s, false, NULL, "y,,n=user,r=abc") == 0);
	test_assert(first(&s, true, &cb, "p=tls-server-end-point,,n=user,r=abc") == 0);
	/* a type the TLS layer names itself */
	test_assert(first(&s, true, &cb, "p=ldap,,n=user,r=abc") == IX_EINVAL);
	strcpy(cb.other_name, "ldap");
	cb.other_len = 53;
	test_assert(first(&s, true, &cb, "p=ldap,,n=user,r=abc") == 0);
	scram_server_reset(&s);
}

/* The client's side of the final message, by the RFC's formulas: "c=..,r=..,p=.." for password. */
static void client_final(enum scram_hash h, const char *password, const char *client_first_bare,
			 const char *server_first, const char *cbind_input, size_t cbind_len, struct buf *out)
{
	const EVP_MD *md = h == SCRAM_SHA_1 ? EVP_sha1() : EVP_sha256();
	size_t hl = scram_hash_len(h);
	const char *r = strstr(server_first, "r="), *sp = strstr(server_first, ",s="),
		   *ip = strstr(server_first, ",i=");
	struct buf salt = BUF_INIT, am = BUF_INIT;
	if (base64_decode(sp + 3, (size_t)(ip - sp - 3), SCRAM_SALT_MAX, &salt) != 0)
		abort();
	unsigned char salted[32], ck[32], sk[32], sig[32];
	unsigned n;
	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), (unsigned char *)salt.data, (int)salt.len, atoi(ip + 3), md,
			  (int)hl, salted);
	HMAC(md, salted, (int)hl, (const unsigned char *)"Client Key", 10, ck, &n);
	EVP_Digest(ck, hl, sk, NULL, md, NULL);
	buf_append_str(out, "c=");
	base64_encode(cbind_input, cbind_len, out);
	buf_printf(out, ",r=%.*s", (int)(sp - r - 2), r + 2);
	buf_printf(&am, "%s,%s,%s", client_first_bare, server_first, buf_cstr(out));
	HMAC(md, sk, (int)hl, (unsigned char *)am.data, am.len, sig, &n);
	for (size_t i = 0; i < hl; i++)
		ck[i] ^= sig[i];
	buf_append_str(out, ",p=");
	base64_encode(ck, hl, out);
	buf_free(&salt);
	buf_free(&am);
}

static void several_verifiers_and_channel_binding(void)
{
	struct scram_cbind cb = { .exporter_len = 32, .endpoint_len = 32 };
	memset(cb.exporter, 0xe1, 32);
	memset(cb.endpoint, 0xe2, 32);
	const char *cf = "p=tls-exporter,,n=amy,r=clientnonce123";
	const char *pw[] = { "main-password", "app-password-1", "app-password-2" };
	unsigned char salt[SCRAM_SALT_LEN];
	test_assert(scram_salt_new(salt) == 0);
	for (int wrong = 0; wrong < 3; wrong++) {
		struct scram_server s = { 0 };
		struct buf out = BUF_INIT, err = BUF_INIT, fin = BUF_INIT;
		test_assert(first(&s, true, &cb, cf) == 0);
		for (size_t i = 0; i < 3; i++) {
			struct scram_verifier v;
			test_assert(scram_verifier_make(SCRAM_SHA_256, pw[i], strlen(pw[i]), salt, sizeof(salt), 4096,
							&v) == 0);
			test_assert(scram_server_add_verifier(&s, &v) == i + 1);
		}
		/* another salt, or another hash: not kept */
		struct scram_verifier other;
		test_assert(scram_verifier_make(SCRAM_SHA_256, "x", 1, salt, 8, 4096, &other) == 0);
		test_assert(scram_server_add_verifier(&s, &other) == 3);
		test_assert(scram_verifier_make(SCRAM_SHA_1, "x", 1, salt, sizeof(salt), 4096, &other) == 0);
		test_assert(scram_server_add_verifier(&s, &other) == 3);
		test_assert(scram_server_challenge(&s, fake, sizeof(fake), 4096, &out) == 0);
		/* the gs2 header and the channel's data; wrong == 1: another channel's, 2: the header alone */
		struct buf cbi = BUF_INIT;
		buf_append_str(&cbi, "p=tls-exporter,,");
		if (wrong != 2)
			buf_append(&cbi, wrong == 1 ? cb.endpoint : cb.exporter, 32);
		client_final(SCRAM_SHA_256, pw[2], cf + 16, buf_cstr(&out), cbi.data, cbi.len, &fin);
		buf_reset(&out);
		int ret = scram_server_final(&s, &cb, fin.data, fin.len, &out, &err);
		if (wrong == 0) {
			test_assert(ret == 0 && scram_server_matched(&s) == 2);
			test_assert(strncmp(buf_cstr(&out), "v=", 2) == 0);
		} else {
			test_assert(ret == IX_EAUTH && strstr(buf_cstr(&err), "channel binding") != NULL);
		}
		scram_server_reset(&s);
		buf_free(&cbi);
		buf_free(&out);
		buf_free(&err);
		buf_free(&fin);
	}
}

static void unknown_user_and_bad_finals(void)
{
	struct scram_server s = { 0 };
	struct buf out = BUF_INIT, err = BUF_INIT, again = BUF_INIT;
	/* no verifier: a salt that stays the same for the name, and a final that fails */
	test_assert(first(&s, false, NULL, "n,,n=nobody,r=abc") == 0);
	test_assert(scram_server_challenge(&s, fake, sizeof(fake), 10000, &out) == 0);
	test_assert(strstr(buf_cstr(&out), ",i=10000") != NULL);
	test_assert(first(&s, false, NULL, "n,,n=nobody,r=abc") == 0);
	test_assert(scram_server_challenge(&s, fake, sizeof(fake), 10000, &again) == 0);
	test_assert_str(strstr(buf_cstr(&out), ",s="), strstr(buf_cstr(&again), ",s="));
	buf_reset(&out);
	client_final(SCRAM_SHA_256, "guess", "n=nobody,r=abc", buf_cstr(&again), "n,,", 3, &out);
	struct buf fin = BUF_INIT;
	test_assert(scram_server_final(&s, NULL, out.data, out.len, &fin, &err) == IX_EAUTH);
	static const char *const bad[] = {
		"", "c=biws", "c=biws,r=abc", "p=abc", "c=!!,r=abc,p=AAAA", "c=biws,r=abc,p=AAAA"
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		test_assert(first(&s, false, NULL, "n,,n=nobody,r=abc") == 0);
		buf_reset(&again);
		test_assert(scram_server_challenge(&s, fake, sizeof(fake), 4096, &again) == 0);
		buf_reset(&err);
		int ret = scram_server_final(&s, NULL, bad[i], strlen(bad[i]), &fin, &err);
		test_assert(ret == IX_EINVAL || ret == IX_EAUTH);
		test_assert(fin.len == 0);
	}
	scram_server_reset(&s);
	buf_free(&out);
	buf_free(&err);
	buf_free(&again);
	buf_free(&fin);
}

TEST_MAIN("scram", TEST_CASE(published_exchanges), TEST_CASE(verifiers_round_trip), TEST_CASE(malformed_first_messages),
	  TEST_CASE(several_verifiers_and_channel_binding), TEST_CASE(unknown_user_and_bad_finals))
