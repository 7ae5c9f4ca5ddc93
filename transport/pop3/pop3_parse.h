/* pop3_parse.h - POP3 command line parser (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH with initial
 * response, RFC 6856 UTF8). Pure: the caller keeps its own bounded input buffer and feeds it; no I/O, no globals. */
#ifndef IX_POP3_PARSE_H
#define IX_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define POP3_MAX_LINE 255u        /* RFC 2449: a command line, CRLF included */
#define POP3_MAX_VERB 4u          /* keyword length */
#define POP3_MAX_ARG 40u          /* RFC 2449: one argument (PASS and AUTH's initial response excepted) */
#define POP3_MAX_ARGS 2u          /* TOP msg n, APOP name digest, AUTH mechanism initial-response */
#define POP3_MAX_SASL_LINE 16384u /* one base64 line of an AUTH exchange (RFC 5034 lifts the 255 limit) */

enum pop3_verb {
	POP3_USER,
	POP3_PASS,
	POP3_APOP,
	POP3_QUIT,
	POP3_STAT,
	POP3_LIST,
	POP3_RETR,
	POP3_DELE,
	POP3_NOOP,
	POP3_RSET,
	POP3_TOP,
	POP3_UIDL,
	POP3_CAPA,
	POP3_STLS,
	POP3_AUTH,
	POP3_UTF8, /* RFC 6856 */
};

enum pop3_parse_result {
	POP3_PARSE_NEED_MORE = 0, /* no complete line yet: keep the unconsumed bytes, add more, call again */
	POP3_PARSE_DONE,          /* *cmd_r holds a command */
	POP3_PARSE_ERROR,         /* error_r holds a message for "-ERR" */
};

struct pop3_arg {
	const char *str; /* points into the caller's buffer: valid while those bytes are; not NUL-terminated */
	size_t len;
};

struct pop3_command {
	enum pop3_verb verb;
	struct pop3_arg args[POP3_MAX_ARGS]; /* PASS: the rest of the line, spaces included */
	size_t arg_count;
	bool has_msg;   /* LIST/UIDL with an argument, RETR, DELE, TOP */
	uint32_t msg;   /* message number, 1..4294967295 (the caller checks it against the maildrop) */
	uint32_t lines; /* TOP */
};

struct pop3_parser {
	bool skipping; /* inside an overlong line that was already reported */
};

void pop3_parser_init(struct pop3_parser *p);

/* Parses the first command line in data[0..len). *consumed_r bytes are used up in every case (0 with NEED_MORE
 * unless an overlong line is being skipped). A line longer than POP3_MAX_LINE is reported once as ERROR and the
 * rest of it skipped. Lines end with CRLF or LF. Returns the result; on DONE the command's argument strings point
 * into data. Feeding the same bytes in any chunking (keeping unconsumed bytes) gives the same results. */
enum pop3_parse_result pop3_parse_command(struct pop3_parser *p, const void *data, size_t len, size_t *consumed_r,
					  struct pop3_command *cmd_r, struct buf *error_r);

/* Parses one client line of an AUTH exchange: base64 (checked), "=" for an empty response, or "*" to cancel.
 * Same contract as pop3_parse_command with POP3_MAX_SASL_LINE; on DONE *line_r and *len_r are the line without
 * CRLF and *cancel_r says whether it was "*". */
enum pop3_parse_result pop3_parse_sasl_line(struct pop3_parser *p, const void *data, size_t len, size_t *consumed_r,
					    const char **line_r, size_t *len_r, bool *cancel_r, struct buf *error_r);

/* Parses a decimal number (no sign, no leading zeros, wrap checked) <= max. Returns 0 or IX_EINVAL. */
int pop3_parse_number(const char *s, size_t len, uint32_t max, uint32_t *value_r);
/* The verb's name in upper case. */
const char *pop3_verb_name(enum pop3_verb verb);

#endif
