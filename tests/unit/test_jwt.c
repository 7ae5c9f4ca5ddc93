/* test_jwt.c - unit tests for transport/net/jwt (Ed25519 and P-256 tokens minted by Python's cryptography, checked
 * at chosen times: claims, skew, tampering, unknown keys, refused algorithms) and the OAUTHBEARER / XOAUTH2 exchanges
 * of transport/net/sasl (RFC 7628 messages, the authzid, the JSON status of a refusal, malformed messages). */
#include "tests/unit/test.h"
#include "transport/net/jwt.h"
#include "transport/net/sasl.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char jwks_doc[] =
	"{\"keys\": [{\"kty\": \"OKP\", \"kid\": \"ed\", \"crv\": \"Ed25519\", \"x\": "
	"\"CRNBf9_j3u2SwYGkd4wcntLtARquDu_3VKFFpV-KfNQ\"}, {\"kty\": \"EC\", \"kid\": \"ec\", \"crv\": \"P-256\", "
	"\"x\": \"Gt1xx-SArvfF2jUjEQy4zi2rdF3fIw3R6xHRhRGVd8I\", \"y\": \"sT3Y2-b1HgFbxU3YQmOW-YK0ImB4hjFwk0iktI-3kzo\"},"
	"{\"kty\": \"RSA\", \"kid\": \"small\", \"n\": \"AQAB\", \"e\": \"AQAB\"}, {\"kty\": \"oct\", \"k\": \"AAAA\"}]}";
/* iss https://idp.test, aud mail, email alice@example.com, iat = nbf = 1000000000, exp 2000000000 */
static const char ed_token[] =
	"eyJhbGciOiAiRWREU0EiLCAidHlwIjogIkpXVCIsICJraWQiOiAiZWQifQ.eyJpc3MiOiAiaHR0cHM6Ly9pZHAudGVzdCIsICJhdWQiOiAibWF"
	"pbCIsICJlbWFpbCI6ICJhbGljZUBleGFtcGxlLmNvbSIsICJwcmVmZXJyZWRfdXNlcm5hbWUiOiAiYWxpY2UiLCAiaWF0IjogMTAwMDAwMDAwMC"
	"wgIm5iZiI6IDEwMDAwMDAwMDAsICJleHAiOiAyMDAwMDAwMDAwfQ.hyXv20dPh5VPEalpV07jyeghPPaKFKDz48fCYxOY3UxrP8nY9tpb1Zm_W"
	"C_Q6la70XB6VNk8d3T3BFxfFhr5CQ";
static const char ec_token[] =
	"eyJhbGciOiAiRVMyNTYiLCAidHlwIjogIkpXVCIsICJraWQiOiAiZWMifQ.eyJpc3MiOiAiaHR0cHM6Ly9pZHAudGVzdCIsICJhdWQiOiAibWF"
	"pbCIsICJlbWFpbCI6ICJhbGljZUBleGFtcGxlLmNvbSIsICJwcmVmZXJyZWRfdXNlcm5hbWUiOiAiYWxpY2UiLCAiaWF0IjogMTAwMDAwMDAwMC"
	"wgIm5iZiI6IDEwMDAwMDAwMDAsICJleHAiOiAyMDAwMDAwMDAwfQ.sn2JxBUk9zYGjJ8C8pXzipCCXfJFiK2QgfRT948B5pdVBUJe-Yr-ValoV"
	"2kyqUt93i6NixQUE4syV4LRiyE14w";
/* the same with aud ["other", "mail"] */
static const char ec_aud_list_token[] =
	"eyJhbGciOiAiRVMyNTYiLCAidHlwIjogIkpXVCIsICJraWQiOiAiZWMifQ.eyJpc3MiOiAiaHR0cHM6Ly9pZHAudGVzdCIsICJhdWQiOiBbIm9"
	"0aGVyIiwgIm1haWwiXSwgImVtYWlsIjogImFsaWNlQGV4YW1wbGUuY29tIiwgInByZWZlcnJlZF91c2VybmFtZSI6ICJhbGljZSIsICJpYXQiOi"
	"AxMDAwMDAwMDAwLCAibmJmIjogMTAwMDAwMDAwMCwgImV4cCI6IDIwMDAwMDAwMDB9.5iQ4ABFWLU48hIaoz5l3bMjh166TMmxQzyVWru6bMiBV"
	"PFdO283AFsu79DFby1yvYV7x9Rj5ecwyTHvuwoM0Og";

#define NOW 1500000000ULL

static int check(const char *token, const struct jwks *keys, const char *iss, const char *aud, uint64_t now)
{
	struct jwt *jwt = NULL;
	struct buf err = BUF_INIT;
	int ret = jwt_parse(token, strlen(token), &jwt, &err);
	if (ret == IX_OK)
		ret = jwt_verify_signature(jwt, keys, &err);
	if (ret == IX_OK)
		ret = jwt_check_claims(jwt, iss, aud, now, 60, &err);
	jwt_free(&jwt);
	buf_free(&err);
	return ret;
}

static void jwt_good_tokens_and_claims(void)
{
	struct jwks *keys = NULL;
	struct buf err = BUF_INIT;
	test_assert(jwks_parse(jwks_doc, strlen(jwks_doc), &keys, &err) == IX_OK);
	test_assert(jwks_count(keys) == 2); /* the 17-bit RSA key and the symmetric one are not taken */
	test_assert(check(ed_token, keys, "https://idp.test", "mail", NOW) == IX_OK);
	test_assert(check(ec_token, keys, "https://idp.test", "mail", NOW) == IX_OK);
	test_assert(check(ec_aud_list_token, keys, "https://idp.test", "mail", NOW) == IX_OK);
	test_assert(check(ec_aud_list_token, keys, "https://idp.test", "mai", NOW) == IX_EAUTH);
	struct jwt *jwt = NULL;
	test_assert(jwt_parse(ed_token, strlen(ed_token), &jwt, &err) == IX_OK);
	test_assert_str(jwt_kid(jwt), "ed");
	test_assert_str(jwt_claim(jwt, "email"), "alice@example.com");
	test_assert(jwt_claim(jwt, "exp") == NULL); /* a number, not a string */
	test_assert(jwt_claim(jwt, "upn") == NULL);
	jwt_free(&jwt);
	/* time: exp and nbf with 60 s of skew */
	test_assert(check(ed_token, keys, "https://idp.test", "mail", 2000000000ULL + 59) == IX_OK);
	test_assert(check(ed_token, keys, "https://idp.test", "mail", 2000000000ULL + 60) == IX_EAUTH);
	test_assert(check(ed_token, keys, "https://idp.test", "mail", 1000000000ULL - 60) == IX_OK);
	test_assert(check(ed_token, keys, "https://idp.test", "mail", 1000000000ULL - 61) == IX_EAUTH);
	/* issuer and audience compared exactly */
	test_assert(check(ed_token, keys, "https://idp.test/", "mail", NOW) == IX_EAUTH);
	test_assert(check(ed_token, keys, "https://idp.test", "Mail", NOW) == IX_EAUTH);
	jwks_free(&keys);
	buf_free(&err);
}

static void jwt_bad_tokens(void)
{
	struct jwks *keys = NULL, *only_ed = NULL;
	struct buf err = BUF_INIT;
	test_assert(jwks_parse(jwks_doc, strlen(jwks_doc), &keys, &err) == IX_OK);
	const char *ed_only = "{\"keys\":[{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\","
			      "\"x\":\"CRNBf9_j3u2SwYGkd4wcntLtARquDu_3VKFFpV-KfNQ\"}]}";
	test_assert(jwks_parse(ed_only, strlen(ed_only), &only_ed, &err) == IX_OK);
	/* a key id the set does not hold: ENOTFOUND (the caller may fetch the set again) */
	struct jwt *jwt = NULL;
	test_assert(jwt_parse(ec_token, strlen(ec_token), &jwt, &err) == IX_OK);
	test_assert(jwt_verify_signature(jwt, only_ed, &err) == IX_ENOTFOUND);
	jwt_free(&jwt);
	/* a changed payload, a changed signature */
	char *t = xstrdup(ed_token);
	char *payload = strchr(t, '.') + 1;
	payload[10] = payload[10] == 'A' ? 'B' : 'A';
	test_assert(check(t, keys, "https://idp.test", "mail", NOW) != IX_OK);
	free(t);
	t = xstrdup(ec_token);
	char *sig = strrchr(t, '.') + 1;
	sig[5] = sig[5] == 'A' ? 'B' : 'A';
	test_assert(check(t, keys, "https://idp.test", "mail", NOW) == IX_EAUTH);
	free(t);
	/* header alg ES256 with the Ed25519 key's kid: the key does not fit */
	const char *hdr = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVkIn0"; /* {"alg":"ES256","kid":"ed"} */
	t = xasprintf("%s%s", hdr, strchr(ed_token, '.'));
	test_assert(check(t, keys, "https://idp.test", "mail", NOW) == IX_EAUTH);
	free(t);
	/* alg none and HS256 are refused when parsing; so are malformed tokens */
	const char *none = "eyJhbGciOiJub25lIn0"; /* {"alg":"none"} */
	t = xasprintf("%s%s", none, strchr(ed_token, '.'));
	test_assert(jwt_parse(t, strlen(t), &jwt, &err) == IX_EINVAL);
	free(t);
	const char *hs = "eyJhbGciOiJIUzI1NiJ9"; /* {"alg":"HS256"} */
	t = xasprintf("%s%s", hs, strchr(ed_token, '.'));
	test_assert(jwt_parse(t, strlen(t), &jwt, &err) == IX_EINVAL);
	free(t);
	test_assert(jwt_parse("a.b", 3, &jwt, &err) == IX_EINVAL);
	test_assert(jwt_parse("a.b.c.d", 7, &jwt, &err) == IX_EINVAL);
	test_assert(jwt_parse("!!.??.**", 8, &jwt, &err) == IX_EINVAL);
	test_assert(jwt == NULL);
	jwks_free(&keys);
	jwks_free(&only_ed);
	struct jwks *none_keys = NULL;
	test_assert(jwks_parse("{\"keys\":7}", 10, &none_keys, &err) == IX_EINVAL && none_keys == NULL);
	test_assert(jwks_parse("not json", 8, &none_keys, &err) == IX_EINVAL && none_keys == NULL);
	buf_free(&err);
}

/* ---- the SASL exchanges, with a verifier that knows one token ---- */

struct verifier_log {
	int calls;
	char authzid[64];
};

static bool token_enabled(void *ctx)
{
	(void)ctx;
	return true;
}

static int token_check(void *ctx, const char *authzid, const char *token, char **user_r, struct buf *status_r,
		       struct buf *error_r)
{
	struct verifier_log *vl = ctx;
	vl->calls++;
	snprintf(vl->authzid, sizeof(vl->authzid), "%s", authzid);
	if (strcmp(token, "good") == 0) {
		*user_r = xstrdup("alice");
		return 0;
	}
	if (strcmp(token, "down") == 0) {
		buf_append_str(error_r, "keys unavailable");
		return IX_EUNAVAIL;
	}
	buf_append_str(status_r, "{\"status\":\"invalid_token\"}");
	buf_append_str(error_r, "bad token");
	return IX_EAUTH;
}

static int no_password(void *ctx, const char *user, const char *pass, size_t passlen)
{
	(void)ctx;
	(void)user;
	(void)pass;
	(void)passlen;
	return IX_EAUTH;
}

static int start(struct ix_sasl *s, const char *mech, const char *msg, size_t len, struct buf *ch)
{
	struct buf b = BUF_INIT, err = BUF_INIT;
	base64_encode(msg, len, &b);
	buf_reset(ch);
	int r = ix_sasl_start(s, mech, buf_cstr(&b), b.len, ch, &err);
	buf_free(&b);
	buf_free(&err);
	return r;
}

#define MSG(s) s, sizeof(s) - 1

static void sasl_bearer_exchanges(void)
{
	struct buf err = BUF_INIT, ch = BUF_INIT, mechs = BUF_INIT;
	test_assert(ix_sasl_init("interchange-test", &err) == 0);
	struct verifier_log vl = { 0 };
	struct ix_sasl_verifiers v = { .token_enabled = token_enabled, .token = token_check, .ctx = &vl };
	ix_sasl_offered(true, IX_SASL_SCRAM_NONE, NULL, &mechs);
	test_assert_str(buf_cstr(&mechs), " PLAIN LOGIN");
	buf_reset(&mechs);
	ix_sasl_offered(true, IX_SASL_SCRAM_NONE, &v, &mechs);
	test_assert_str(buf_cstr(&mechs), " PLAIN LOGIN OAUTHBEARER XOAUTH2");
	buf_reset(&mechs);
	ix_sasl_offered(true, IX_SASL_SCRAM_PLUS, &v, &mechs);
	test_assert_str(
		buf_cstr(&mechs),
		" SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN OAUTHBEARER XOAUTH2");
	buf_reset(&mechs);
	ix_sasl_offered(false, IX_SASL_SCRAM_PLUS, &v, &mechs);
	test_assert_str(buf_cstr(&mechs), ""); /* a bearer token is a secret: never in clear */

	struct ix_sasl *s;
	test_assert(ix_sasl_create("imap", "mail.example.com", true, no_password, NULL, &s, &err) == 0);
	/* without verifiers the mechanism is unknown */
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\001auth=Bearer good\x01\x01"), &ch) == IX_EINVAL);
	ix_sasl_set_verifiers(s, &v);
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\001auth=Bearer good\x01\x01"), &ch) == IX_SASL_DONE);
	test_assert_str(ix_sasl_user(s), "alice");
	test_assert_str(vl.authzid, "");
	/* the authzid with RFC 7628's escapes, other pairs before auth, the scheme in any case */
	test_assert(start(s, "oauthbearer",
			  MSG("n,a=a=2Cb=3Dc@example.com,\x01host=mail\x01port=143\001auth=bearer good\x01\x01"),
			  &ch) == IX_SASL_DONE);
	test_assert_str(vl.authzid, "a,b=c@example.com");
	test_assert(start(s, "XOAUTH2", MSG("user=alice@example.com\001auth=Bearer good\x01\x01"), &ch) ==
		    IX_SASL_DONE);
	test_assert_str(vl.authzid, "alice@example.com");
	/* refused: the JSON status as a challenge, then the client's dummy response ends it */
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\001auth=Bearer bad\x01\x01"), &ch) == IX_SASL_CONTINUE);
	struct buf dec = BUF_INIT;
	test_assert(base64_decode(ch.data, ch.len, 1024, &dec) == IX_OK);
	test_assert_str(buf_cstr(&dec), "{\"status\":\"invalid_token\"}");
	test_assert(ix_sasl_user(s) == NULL);
	buf_reset(&ch);
	test_assert(ix_sasl_step(s, "AQ==", 4, &ch, &err) == IX_EAUTH);
	test_assert(ix_sasl_step(s, "AQ==", 4, &ch, &err) == IX_EINVAL); /* over */
	/* no initial response: an empty challenge, then the message */
	buf_reset(&ch);
	test_assert(ix_sasl_start(s, "OAUTHBEARER", NULL, 0, &ch, &err) == IX_SASL_CONTINUE && ch.len == 0);
	struct buf b = BUF_INIT;
	base64_encode(MSG("n,,\001auth=Bearer good\x01\x01"), &b);
	test_assert(ix_sasl_step(s, b.data, b.len, &ch, &err) == IX_SASL_DONE);
	buf_free(&b);
	/* the issuer's keys cannot be had */
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\001auth=Bearer down\x01\x01"), &ch) == IX_EUNAVAIL);
	/* malformed: no gs2 header, channel binding asked for, no auth, no closing separator, not Bearer, a NUL */
	int calls = vl.calls;
	test_assert(start(s, "OAUTHBEARER", MSG("\001auth=Bearer good\x01\x01"), &ch) == IX_EINVAL);
	test_assert(start(s, "OAUTHBEARER", MSG("p=tls-unique,,\001auth=Bearer good\x01\x01"), &ch) == IX_EINVAL);
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\x01host=x\x01\x01"), &ch) == IX_EINVAL);
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\001auth=Bearer good\x01"), &ch) == IX_EINVAL);
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\001auth=Basic good\x01\x01"), &ch) == IX_EINVAL);
	test_assert(start(s, "OAUTHBEARER", MSG("n,a=x=41,\001auth=Bearer good\x01\x01"), &ch) == IX_EINVAL);
	test_assert(start(s, "XOAUTH2", MSG("user=a\0b\001auth=Bearer good\x01\x01"), &ch) == IX_EINVAL);
	test_assert(start(s, "XOAUTH2", MSG("user=alice\001auth=Bearer \x01\x01"), &ch) == IX_EINVAL);
	test_assert(vl.calls == calls); /* none reached the verifier */
	/* never without TLS */
	ix_sasl_set_secure(s, false);
	test_assert(start(s, "OAUTHBEARER", MSG("n,,\001auth=Bearer good\x01\x01"), &ch) == IX_EPERM);
	ix_sasl_destroy(&s);
	ix_sasl_done();
	buf_free(&dec);
	buf_free(&err);
	buf_free(&ch);
	buf_free(&mechs);
}

TEST_MAIN("jwt", TEST_CASE(jwt_good_tokens_and_claims), TEST_CASE(jwt_bad_tokens), TEST_CASE(sasl_bearer_exchanges))
