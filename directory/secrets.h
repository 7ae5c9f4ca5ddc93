/* secrets.h - the stored forms of what sits beside a user's password hash: SCRAM verifiers, tied to the userPassword
 * value they were made with, and app passwords (docs/directory.md, "SCRAM and app passwords"). No I/O. */
#ifndef IX_SECRETS_H
#define IX_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "common/scram.h"

/* Longest app password name; the generated password's length. */
#define SECRETS_APP_NAME_MAX 64
#define SECRETS_APP_PASSWORD_LEN 24

/* The salts a user's verifiers keep across changes, one per hash (have[h] false: none yet, a new one is made).
 * Every verifier of a user shares them, so one SCRAM exchange (one salt sent) can match the password or any app
 * password. */
struct secrets_salts {
	bool have[SCRAM_HASHES];
	unsigned char salt[SCRAM_HASHES][SCRAM_SALT_MAX];
	size_t len[SCRAM_HASHES];
};

/* Appends the ixScramBinding of a userPassword value: its SHA-256 in base64. */
void secrets_binding(const char *value, size_t len, struct buf *out);
/* Whether binding (NULL: none) is the ixScramBinding of one of the userPassword values (NULL-terminated). */
bool secrets_binding_matches(const char *binding, const char *const *values);
/* Whether slapd's lockout of an account locked at `locked` (pwdAccountLockedTime, generalized time) still holds at
 * now: for ever at 000001010000Z (an administrator's lock) or when unreadable, else for duration seconds (the
 * policy's pwdLockoutDuration; 0 or less: for ever). slapd keeps the attribute after the lock has expired, until
 * the next good bind. */
bool secrets_lock_holds(const char *locked, long duration, time_t now);
/* Takes v's salt into salts when salts has none for v's hash yet. */
void secrets_salts_add(struct secrets_salts *salts, const struct scram_verifier *v);
/* The same for verifier values in RFC 5803 form (others are skipped). */
void secrets_salts_take(struct secrets_salts *salts, const char *const *values);
/* Makes password's verifier for every hash with salts (completing it with new salts) and iterations. Returns 0,
 * IX_EINVAL (iterations out of range) or IX_EUNAVAIL (no random numbers). */
int secrets_make(const char *password, size_t len, struct secrets_salts *salts, unsigned iterations,
		 struct scram_verifier v_r[SCRAM_HASHES]);

/* Whether name suits an app password: 1 to SECRETS_APP_NAME_MAX of A-Z a-z 0-9 . _ - */
bool secrets_app_name_valid(const char *name);
/* Whether password (len bytes) has the shape of the app passwords we make: SECRETS_APP_PASSWORD_LEN letters and
 * digits. */
bool secrets_app_password_shaped(const char *password, size_t len);
/* Fills out with len random letters and digits (every one equally likely) and a NUL. Returns 0 or IX_EUNAVAIL. */
int secrets_random_password(char *out, size_t len);

/* An app password as stored (ixAppPassword): "NAME CREATED VERIFIER..." separated by spaces; CREATED is a UTC
 * time YYYYMMDDHHMMSSZ. */
struct secrets_app {
	char name[SECRETS_APP_NAME_MAX + 1];
	char created[16];
	struct scram_verifier v[SCRAM_HASHES];
	size_t nv;
};
/* Parses a stored value (len bytes). Returns 0 or IX_EINVAL. */
int secrets_app_parse(const char *value, size_t len, struct secrets_app *a_r);
/* Appends the stored value of a. */
void secrets_app_format(const struct secrets_app *a, struct buf *out);

#endif
