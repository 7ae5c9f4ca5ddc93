/* fuzz_jwt.c - fuzz target for the bearer tokens and key sets we parse (transport/net/jwt.c): the first byte picks
 * a token (checked against a fixed key set of an Ed25519 and a P-256 key) or a key set (parsed, then a fixed token
 * checked against it); the rest is the text. A made-up token never verifies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "transport/net/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char keys_doc[] =
	"{\"keys\":[{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"x\":\"CRNBf9_j3u2SwYGkd4wcntLtARquDu_3VKFFpV-KfNQ\"},"
	"{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":\"Gt1xx-SArvfF2jUjEQy4zi2rdF3fIw3R6xHRhRGVd8I\","
	"\"y\":\"sT3Y2-b1HgFbxU3YQmOW-YK0ImB4hjFwk0iktI-3kzo\"}]}";
/* tokens of tests/unit/test_jwt.c, signed with those keys */
static const char token_ed[] =
	"eyJhbGciOiAiRWREU0EiLCAidHlwIjogIkpXVCIsICJraWQiOiAiZWQifQ.eyJpc3MiOiAiaHR0cHM6Ly9pZHAudGVzdCIsICJhdWQiOiAibWF"
	"pbCIsICJlbWFpbCI6ICJhbGljZUBleGFtcGxlLmNvbSIsICJwcmVmZXJyZWRfdXNlcm5hbWUiOiAiYWxpY2UiLCAiaWF0IjogMTAwMDAwMDAwMC"
	"wgIm5iZiI6IDEwMDAwMDAwMDAsICJleHAiOiAyMDAwMDAwMDAwfQ.hyXv20dPh5VPEalpV07jyeghPPaKFKDz48fCYxOY3UxrP8nY9tpb1Zm_W"
	"C_Q6la70XB6VNk8d3T3BFxfFhr5CQ";
static const char token_ec[] =
	"eyJhbGciOiAiRVMyNTYiLCAidHlwIjogIkpXVCIsICJraWQiOiAiZWMifQ.eyJpc3MiOiAiaHR0cHM6Ly9pZHAudGVzdCIsICJhdWQiOiAibWF"
	"pbCIsICJlbWFpbCI6ICJhbGljZUBleGFtcGxlLmNvbSIsICJwcmVmZXJyZWRfdXNlcm5hbWUiOiAiYWxpY2UiLCAiaWF0IjogMTAwMDAwMDAwMC"
	"wgIm5iZiI6IDEwMDAwMDAwMDAsICJleHAiOiAyMDAwMDAwMDAwfQ.sn2JxBUk9zYGjJ8C8pXzipCCXfJFiK2QgfRT948B5pdVBUJe-Yr-ValoV"
	"2kyqUt93i6NixQUE4syV4LRiyE14w";

static int same(const char *text, size_t len, const char *token)
{
	return len == strlen(token) && memcmp(text, token, len) == 0;
}

static int check(const char *token, size_t len, const struct jwks *keys)
{
	struct jwt *jwt = NULL;
	struct buf err = BUF_INIT;
	int ret = jwt_parse(token, len, &jwt, &err);
	if (ret == IX_OK) {
		(void)jwt_kid(jwt);
		(void)jwt_claim(jwt, "email");
		ret = jwt_verify_signature(jwt, keys, &err);
		if (ret == IX_OK)
			ret = jwt_check_claims(jwt, "https://idp.test", "mail", 1500000000ULL, 60, &err);
	} else if (jwt != NULL) {
		abort();
	}
	jwt_free(&jwt);
	buf_free(&err);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct buf err = BUF_INIT;
	struct jwks *keys = NULL;
	const char *text = (const char *)data + 1;
	if ((data[0] & 1) == 0) {
		if (jwks_parse(keys_doc, strlen(keys_doc), &keys, &err) != IX_OK)
			abort();
		/* only the real tokens verify: anything else the fuzzer makes is refused */
		int ret = check(text, size - 1, keys);
		if (ret == IX_OK && !same(text, size - 1, token_ed) && !same(text, size - 1, token_ec))
			abort();
	} else if (jwks_parse(text, size - 1, &keys, &err) == IX_OK) {
		if (jwks_count(keys) > JWKS_KEYS_MAX)
			abort();
		check(token_ed, strlen(token_ed), keys);
	} else if (keys != NULL) {
		abort();
	}
	jwks_free(&keys);
	buf_free(&err);
	return 0;
}
