/* fuzz_sasl.c - fuzz target for the SASL messages we parse ourselves: strict base64 (a decoded string encodes back
 * to the same text), whole PLAIN / LOGIN exchanges through Cyrus with our check function, and OAUTHBEARER / XOAUTH2
 * messages (ours) with a token check that knows one token. The first byte picks the mechanism and whether the
 * connection is secure; the rest is lines (initial response, then steps). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "transport/net/sasl.h"
#include "common/util.h"
#include "common/base64.h"

#define FUZZ_SASL_USER "alice@example.com"
#define FUZZ_SASL_PASS "secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *ctx, const char *user, const char *pass, size_t passlen)
{
	(void)ctx;
	if (strlen(user) > IX_SASL_USER_MAX || passlen > IX_SASL_PASS_MAX)
		abort();
	return strcmp(user, FUZZ_SASL_USER) == 0 && passlen == strlen(FUZZ_SASL_PASS) &&
			       memcmp(pass, FUZZ_SASL_PASS, passlen) == 0
		       ? 0
		       : IX_EAUTH;
}

/* The token "good" is alice's; any other is refused with a status. The authzid reaching here is within limits. */
static int token_check(void *ctx, const char *authzid, const char *token, char **user_r, struct buf *status_r,
		       struct buf *error_r)
{
	(void)ctx;
	if (strlen(authzid) > IX_SASL_USER_MAX)
		abort();
	if (strcmp(token, "good") == 0) {
		*user_r = xstrdup(FUZZ_SASL_USER);
		return 0;
	}
	buf_append_str(status_r, "{\"status\":\"invalid_token\"}");
	buf_append_str(error_r, "bad token");
	return IX_EAUTH;
}

static bool token_enabled(void *ctx)
{
	(void)ctx;
	return true;
}

static const struct ix_sasl_verifiers verifiers = { .token_enabled = token_enabled, .token = token_check };

static void base64_roundtrip(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, again = BUF_INIT;
	if (base64_decode((const char *)data, size, IX_SASL_RESPONSE_MAX, &out) == 0) {
		if (out.len > IX_SASL_RESPONSE_MAX)
			abort();
		base64_encode(out.data, out.len, &again);
		if (again.len != size || memcmp(again.data, data, size) != 0)
			abort();
	}
	buf_free(&out);
	buf_free(&again);
}

static void exchange(uint8_t mode, const uint8_t *data, size_t size)
{
	static int initialised;
	struct buf err = BUF_INIT, challenge = BUF_INIT;
	if (!initialised) {
		if (ix_sasl_init("fuzz", &err) != 0)
			abort();
		initialised = 1;
	}
	struct ix_sasl *s;
	if (ix_sasl_create("imap", "mail.example.com", (mode & 2) == 0, check, NULL, &s, &err) != 0)
		abort();
	/* lines separated by \n; line 0 is the initial response unless mode says none */
	char *text = xstrndup((const char *)data, size);
	size_t lens[IX_SASL_STEPS_MAX + 4];
	const char *lines[IX_SASL_STEPS_MAX + 4];
	size_t count = 0;
	const char *p = text, *end = text + strlen(text);
	while (p <= end && count < IX_SASL_STEPS_MAX + 4) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		lines[count] = p;
		lens[count++] = len;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	const char *mech = (mode & 1) != 0 ? "LOGIN" : "PLAIN";
	if ((mode & 4) != 0)
		mech = (mode & 8) != 0 ? "plain" : "CRAM-MD5";
	if ((mode & 32) != 0) { /* bearer tokens */
		ix_sasl_set_verifiers(s, &verifiers);
		mech = (mode & 64) != 0 ? "XOAUTH2" : "OAUTHBEARER";
	}
	size_t next = 0;
	char *initial = NULL;
	if ((mode & 16) != 0 && count > 0) {
		initial = xstrndup(lines[0], lens[0]);
		next = 1;
	}
	int ret = ix_sasl_start(s, mech, initial, initial != NULL ? lens[0] : 0, &challenge, &err);
	while (ret == IX_SASL_CONTINUE && next < count) {
		buf_reset(&challenge);
		buf_reset(&err);
		ret = ix_sasl_step(s, lines[next], lens[next], &challenge, &err);
		next++;
	}
	if (ret == IX_SASL_DONE) {
		const char *user = ix_sasl_user(s);
		if (user == NULL || strcmp(user, FUZZ_SASL_USER) != 0)
			abort();
	} else if (ix_sasl_user(s) != NULL) {
		abort();
	}
	free(initial);
	free(text);
	ix_sasl_destroy(&s);
	if (s != NULL)
		abort();
	buf_free(&err);
	buf_free(&challenge);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (size <= IX_SASL_LINE_MAX)
		base64_roundtrip(data + 1, size - 1);
	exchange(data[0], data + 1, size - 1);
	return 0;
}
