/* managesieve_exec.h - ManageSieve (RFC 5804): what the sessions write (strings, responses, the capability list) and
 * the commands on a mailbox's Sieve scripts in the store (HAVESPACE, PUTSCRIPT, LISTSCRIPTS ...), answered whole. */
#ifndef IX_MANAGESIEVE_EXEC_H
#define IX_MANAGESIEVE_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "transport/managesieve/managesieve_parse.h"
#include "transport/sieve/sieve.h"

struct store;

/* Scripts of one mailbox a client may keep (the out-of-office script, kept by `user oof`, is not counted). */
#define MS_MAX_SCRIPTS SIEVE_MAX_SCRIPTS

/* ---- what the server writes (pure) ---- */

/* Appends s[0..len) as a string: quoted ("..." with \ before " and \) when it is at most MS_MAX_QUOTED bytes without
 * NUL, CR or LF, else a literal {N}CRLF followed by the bytes. */
void ms_append_string(struct buf *out, const char *s, size_t len);
/* Appends one response line: status ("OK", "NO", "BYE"), the response code in parentheses when code is not NULL
 * (given whole: "QUOTA/MAXSIZE", "TAG \"x\""), then text as a string, then CRLF. */
void ms_append_response(struct buf *out, const char *status, const char *code, const char *text);

/* What the capability list says (RFC 5804 1.7). */
struct ms_caps {
	const char *sasl;  /* the mechanisms offered now, separated by spaces ("": none) */
	bool starttls;     /* TLS can start (offered, not active yet) */
	const char *owner; /* the logged-in user, or NULL */
};
/* Appends the capability lines (IMPLEMENTATION, SASL, SIEVE, STARTTLS, MAXREDIRECTS, UNAUTHENTICATE, OWNER,
 * VERSION), without the closing OK. */
void ms_append_capabilities(struct buf *out, const struct ms_caps *caps);

/* ---- the script commands ---- */

/* A script command with its arguments (their values: quoted strings unescaped), owned by the caller. */
struct ms_request {
	enum ms_verb verb; /* HAVESPACE, PUTSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT,
			    * CHECKSCRIPT */
	const char *name, *name2; /* the script name(s) (NUL-terminated; name2: RENAMESCRIPT's new name) */
	size_t name_len;          /* bytes of name (a NUL inside makes it invalid) */
	size_t name2_len;
	const char *script; /* PUTSCRIPT, CHECKSCRIPT */
	size_t script_len;
	uint32_t size; /* HAVESPACE */
};

/* Carries out req on mailbox guid's scripts and appends the whole answer (data lines and the OK/NO line) to out.
 * A script is checked by the Sieve parser (a NO says its error, "line N: what") and limited to
 * SIEVE_DEFAULT_MAX_SCRIPT bytes and MS_MAX_SCRIPTS scripts (NO (QUOTA/MAXSIZE), NO (QUOTA/MAXSCRIPTS)); the
 * out-of-office script (SIEVE_OOF_NAME) is not the client's: it is never listed, and named in any command it does not
 * exist (NONEXISTENT) or cannot be written. Blocking (store reads and synced writes): call it on a worker. Returns 0,
 * or an IX_* code when the store failed (out then holds NO (TRYLATER) and error_r says why, for the log). */
int ms_exec(struct store *st, const char *guid, const struct ms_request *req, struct buf *out, struct buf *error_r);

#endif
