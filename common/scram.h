/* scram.h - SCRAM (RFC 5802, RFC 7677) without I/O: verifiers in RFC 5803's form, and the server side of one
 * exchange with channel binding (tls-exporter, RFC 9266; tls-server-end-point, RFC 5929). Shared by our daemons'
 * SASL (transport/net/sasl.c) and slapd's SCRAM plugin (directory/ixscram.c). */
#ifndef IX_SCRAM_H
#define IX_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

enum scram_hash {
	SCRAM_SHA_1 = 0,
	SCRAM_SHA_256 = 1,
};
#define SCRAM_HASHES 2

/* Longest digest (SHA-256), salt we make and read, iteration counts we accept (RFC 5802 wants at least 4096; the
 * upper bound keeps a stored value from costing a login minutes; Cyrus's clients stop at 65536). */
#define SCRAM_KEY_MAX 32
#define SCRAM_SALT_LEN 16
#define SCRAM_SALT_MAX 64
#define SCRAM_ITERATIONS_MIN 4096
#define SCRAM_ITERATIONS_MAX 65536
#define SCRAM_ITERATIONS_DEFAULT 10000
/* Longest user name and client nonce taken from a client; longest channel binding data. */
#define SCRAM_USER_MAX 255
#define SCRAM_NONCE_MAX 256
#define SCRAM_CBIND_MAX 64
/* Most verifiers one exchange tries (a user's password and app passwords sharing the user's salt). */
#define SCRAM_VERIFIERS_MAX 32

/* One stored verifier: what the server keeps instead of a password. */
struct scram_verifier {
	enum scram_hash hash;
	unsigned iterations;
	unsigned char salt[SCRAM_SALT_MAX];
	size_t salt_len;
	unsigned char stored_key[SCRAM_KEY_MAX];
	unsigned char server_key[SCRAM_KEY_MAX];
};

/* "SCRAM-SHA-1" or "SCRAM-SHA-256". */
const char *scram_hash_name(enum scram_hash h);
/* The digest length of h (20 or 32). */
size_t scram_hash_len(enum scram_hash h);
/* The hash a mechanism name uses ("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", any case); *plus_r: the -PLUS form.
 * Returns 0 or IX_EINVAL for any other name. */
int scram_mechanism(const char *mech, enum scram_hash *h_r, bool *plus_r);

/* Fills salt with SCRAM_SALT_LEN random bytes. Returns 0, or IX_EUNAVAIL when no random numbers are to be had. */
int scram_salt_new(unsigned char salt[SCRAM_SALT_LEN]);
/* Computes the verifier of password (len bytes, taken as given: callers pass UTF-8) with salt and iterations
 * (SCRAM_ITERATIONS_MIN..MAX). Returns 0 or IX_EINVAL (iterations or salt out of range). */
int scram_verifier_make(enum scram_hash h, const char *password, size_t len, const unsigned char *salt, size_t salt_len,
			unsigned iterations, struct scram_verifier *v_r);
/* Appends v in RFC 5803's form: "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64). */
void scram_verifier_format(const struct scram_verifier *v, struct buf *out);
/* Parses RFC 5803's form (len bytes). Returns 0 or IX_EINVAL. */
int scram_verifier_parse(const char *s, size_t len, struct scram_verifier *v_r);
/* Whether password is the one v was made from (a PBKDF2 at v's cost, compared in constant time). */
bool scram_verifier_matches(const struct scram_verifier *v, const char *password, size_t len);

/* Channel binding data of a TLS connection; a name without data is not offered. */
struct scram_cbind {
	unsigned char exporter[SCRAM_CBIND_MAX]; /* "tls-exporter" (RFC 9266) */
	size_t exporter_len;
	unsigned char endpoint[SCRAM_CBIND_MAX]; /* "tls-server-end-point" (RFC 5929) */
	size_t endpoint_len;
	char other_name[32]; /* a type the TLS layer names itself (slapd's "ldap"), with its data as given */
	unsigned char other[SCRAM_CBIND_MAX];
	size_t other_len;
};

/* The server side of one exchange. Callers zero it (or scram_server_reset), then: scram_server_first with the
 * client's first message; look up the verifiers of scram_server_user (and the authorisation identity); then
 * scram_server_challenge; then scram_server_final with the client's final message. */
struct scram_server {
	enum scram_hash hash;
	bool plus;        /* the -PLUS mechanism was chosen */
	bool cbind_known; /* the server could have bound the channel (y-flag downgrade check) */
	int state;        /* 0 fresh, 1 first parsed, 2 challenged, 3 done */
	char cb_name[32]; /* from the gs2 header, "" without p= */
	char gs2[300];    /* the gs2 header as sent, with its final comma */
	size_t gs2_len;
	char user[SCRAM_USER_MAX + 1];
	char authzid[SCRAM_USER_MAX + 1];
	char nonce[2 * SCRAM_NONCE_MAX + 1]; /* client nonce, then ours */
	size_t client_nonce_len;
	struct buf auth_message; /* client-first-bare "," server-first "," client-final-without-proof */
	struct scram_verifier verifiers[SCRAM_VERIFIERS_MAX];
	size_t nverifiers;
	int matched; /* index of the verifier the proof matched, after success */
};

/* Clears s for a new exchange (frees what it held). */
void scram_server_reset(struct scram_server *s);
/* Parses the client-first-message (in, len) for mechanism h (plus: the -PLUS name was chosen). cbind: this
 * connection's channel binding data (NULL outside TLS); with plus the client's cb-name must be one it holds.
 * Returns 0 (scram_server_user says who), IX_EINVAL (malformed, or a channel binding flag that does not fit the
 * mechanism) or IX_EAUTH (a client that says "y" although we could bind: a downgrade), with error_r. */
int scram_server_first(struct scram_server *s, enum scram_hash h, bool plus, const struct scram_cbind *cbind,
		       const char *in, size_t len, struct buf *error_r);
/* The user name the client sent (unescaped), and its authorisation identity ("" when none). */
const char *scram_server_user(const struct scram_server *s);
const char *scram_server_authzid(const struct scram_server *s);
/* Adds a verifier the proof may match (those of another hash are skipped). The first added sets the salt and
 * iteration count sent; later ones count only when they share both. Returns the number kept. */
size_t scram_server_add_verifier(struct scram_server *s, const struct scram_verifier *v);
/* Appends the server-first-message to out. Without a verifier it sends a salt made from the user name and
 * fake_secret with fake_iterations (the same for every exchange of that name, so an unknown user looks like a
 * known one), and the final step fails. Returns 0 or IX_EUNAVAIL (no random numbers). */
int scram_server_challenge(struct scram_server *s, const unsigned char *fake_secret, size_t fake_len,
			   unsigned fake_iterations, struct buf *out);
/* The same with our half of the nonce given (printable, no ','): for tests against published exchanges. */
void scram_server_challenge_nonce(struct scram_server *s, const char *server_nonce, const unsigned char *fake_secret,
				  size_t fake_len, unsigned fake_iterations, struct buf *out);
/* Checks the client-final-message against the channel binding (cbind as given to scram_server_first) and the
 * verifiers. Returns 0 (out gets the server-final-message; scram_server_matched says which verifier), IX_EINVAL
 * (malformed), IX_EAUTH (wrong proof, wrong nonce, wrong channel binding) with error_r. */
int scram_server_final(struct scram_server *s, const struct scram_cbind *cbind, const char *in, size_t len,
		       struct buf *out, struct buf *error_r);
/* Index (in the order added) of the verifier the proof matched after a successful scram_server_final. */
int scram_server_matched(const struct scram_server *s);

#endif
