/* managesieve_parse.h - ManageSieve command parser (RFC 5804): an atom, strings as quoted strings or literals
 * ({N+} and {N}), HAVESPACE's number. Pure: the caller keeps its own bounded input buffer and feeds it; no I/O. */
#ifndef IX_MANAGESIEVE_PARSE_H
#define IX_MANAGESIEVE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MS_MAX_LINE 8192u              /* a command without its literals' contents, CRLFs included */
#define MS_MAX_QUOTED 1024u            /* one quoted string (names, mechanisms) */
#define MS_MAX_LITERAL (1024u * 1024u) /* one literal (a script: the Sieve size limit is checked after) */
#define MS_MAX_ARGS 2u

enum ms_verb {
	MS_CAPABILITY,
	MS_STARTTLS,
	MS_AUTHENTICATE,
	MS_LOGOUT,
	MS_HAVESPACE,
	MS_PUTSCRIPT,
	MS_LISTSCRIPTS,
	MS_SETACTIVE,
	MS_GETSCRIPT,
	MS_DELETESCRIPT,
	MS_RENAMESCRIPT,
	MS_CHECKSCRIPT,
	MS_NOOP,
	MS_UNAUTHENTICATE,
};

enum ms_parse_result {
	MS_PARSE_NEED_MORE = 0, /* the command is not complete: keep the bytes, add more, call again */
	MS_PARSE_DONE,          /* *cmd_r holds a command */
	MS_PARSE_ERROR,         /* error_r holds a message for "NO"; *consumed_r skips the bad command */
	MS_PARSE_FATAL,         /* error_r holds a message for "BYE": the stream cannot be resynchronised */
};

struct ms_arg {
	const char *str; /* points into the caller's buffer: valid while those bytes are; not NUL-terminated */
	size_t len;
	bool quoted; /* a quoted string: str still holds its backslash escapes (ms_arg_value removes them) */
};

struct ms_command {
	enum ms_verb verb;
	struct ms_arg args[MS_MAX_ARGS];
	size_t arg_count;
	uint32_t size; /* HAVESPACE: the script size asked about */
};

/* Parses the first command in data[0..len). On DONE and ERROR *consumed_r is the length of the whole command (its
 * literals included); on NEED_MORE and FATAL it is 0. A command whose line exceeds MS_MAX_LINE or a literal over
 * MS_MAX_LITERAL is FATAL. Lines end with CRLF or LF. Feeding the same bytes in any chunking (keeping unconsumed
 * bytes) gives the same results. */
enum ms_parse_result ms_parse_command(const void *data, size_t len, size_t *consumed_r, struct ms_command *cmd_r,
				      struct buf *error_r);

/* Parses one client response of an AUTHENTICATE exchange: a string then CRLF (RFC 5804 2.1). Same contract as
 * ms_parse_command; on DONE *arg_r is the string (base64, or "*" to cancel: the caller decodes with ms_arg_value). */
enum ms_parse_result ms_parse_sasl_response(const void *data, size_t len, size_t *consumed_r, struct ms_arg *arg_r,
					    struct buf *error_r);

/* Appends the argument's value to out, with a quoted string's escapes removed. */
void ms_arg_value(const struct ms_arg *arg, struct buf *out);
/* The verb's name in upper case. */
const char *ms_verb_name(enum ms_verb verb);

#endif
