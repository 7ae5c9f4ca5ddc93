/* secrets.c - SCRAM verifiers and app passwords as the directory stores them (see secrets.h): bindings, salts kept
 * across changes, the app password value's fields. */
#include "directory/secrets.h"
#include "common/base64.h"
#include "common/err.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

void secrets_binding(const char *value, size_t len, struct buf *out)
{
	unsigned char md[32];
	if (EVP_Digest(value, len, md, NULL, EVP_sha256(), NULL) != 1)
		panic("SHA-256 failed");
	base64_encode(md, sizeof(md), out);
}

bool secrets_binding_matches(const char *binding, const char *const *values)
{
	bool match = false;
	for (size_t i = 0; binding != NULL && values != NULL && values[i] != NULL; i++) {
		struct buf b = BUF_INIT;
		secrets_binding(values[i], strlen(values[i]), &b);
		match |= strcmp(buf_cstr(&b), binding) == 0;
		buf_free(&b);
	}
	return match;
}

bool secrets_lock_holds(const char *locked, long duration, time_t now)
{
	if (strcmp(locked, "000001010000Z") == 0 || duration <= 0)
		return true;
	struct tm tm = { 0 };
	if (strptime(locked, "%Y%m%d%H%M%S", &tm) == NULL)
		return true;
	return now < timegm(&tm) + duration;
}

void secrets_salts_add(struct secrets_salts *salts, const struct scram_verifier *v)
{
	if (salts->have[v->hash])
		return;
	salts->have[v->hash] = true;
	memcpy(salts->salt[v->hash], v->salt, v->salt_len);
	salts->len[v->hash] = v->salt_len;
}

void secrets_salts_take(struct secrets_salts *salts, const char *const *values)
{
	for (size_t i = 0; values != NULL && values[i] != NULL; i++) {
		struct scram_verifier v;
		if (scram_verifier_parse(values[i], strlen(values[i]), &v) == 0)
			secrets_salts_add(salts, &v);
	}
}

int secrets_make(const char *password, size_t len, struct secrets_salts *salts, unsigned iterations,
		 struct scram_verifier v_r[SCRAM_HASHES])
{
	for (int h = 0; h < SCRAM_HASHES; h++) {
		if (!salts->have[h]) {
			if (scram_salt_new(salts->salt[h]) != 0)
				return IX_EUNAVAIL;
			salts->len[h] = SCRAM_SALT_LEN;
			salts->have[h] = true;
		}
		int ret = scram_verifier_make((enum scram_hash)h, password, len, salts->salt[h], salts->len[h],
					      iterations, &v_r[h]);
		if (ret != 0)
			return ret;
	}
	return 0;
}

bool secrets_app_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SECRETS_APP_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool secrets_app_password_shaped(const char *password, size_t len)
{
	if (password == NULL || len != SECRETS_APP_PASSWORD_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = password[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

int secrets_random_password(char *out, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t n = 0; n < len;) {
		unsigned char r;
		if (RAND_bytes(&r, 1) != 1)
			return IX_EUNAVAIL;
		if (r < 248) /* 4 x 62: every character equally likely */
			out[n++] = alphabet[r % 62];
	}
	out[len] = '\0';
	return 0;
}

/* The next space-separated field of [*p, end) into [*f_r, *e_r); false when none is left. */
static bool next_field(const char **p, const char *end, const char **f_r, const char **e_r)
{
	while (*p < end && **p == ' ')
		(*p)++;
	if (*p >= end)
		return false;
	*f_r = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*e_r = *p;
	return true;
}

int secrets_app_parse(const char *value, size_t len, struct secrets_app *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	const char *p = value, *end = value + len, *f, *e;
	if (!next_field(&p, end, &f, &e) || (size_t)(e - f) > SECRETS_APP_NAME_MAX)
		return IX_EINVAL;
	memcpy(a_r->name, f, (size_t)(e - f));
	if (!secrets_app_name_valid(a_r->name))
		return IX_EINVAL;
	if (!next_field(&p, end, &f, &e) || (size_t)(e - f) >= sizeof(a_r->created))
		return IX_EINVAL;
	memcpy(a_r->created, f, (size_t)(e - f));
	while (next_field(&p, end, &f, &e)) {
		if (a_r->nv == SCRAM_HASHES || scram_verifier_parse(f, (size_t)(e - f), &a_r->v[a_r->nv]) != 0)
			return IX_EINVAL;
		a_r->nv++;
	}
	return a_r->nv > 0 ? 0 : IX_EINVAL;
}

void secrets_app_format(const struct secrets_app *a, struct buf *out)
{
	buf_printf(out, "%s %s", a->name, a->created);
	for (size_t i = 0; i < a->nv; i++) {
		buf_append_char(out, ' ');
		scram_verifier_format(&a->v[i], out);
	}
}
