/* smtp_parse.h - pure SMTP parsing over bounded buffers: command lines, MAIL/RCPT paths and ESMTP parameters
 * (RFC 5321, 6531, 1870, 6152, 3030, 3461, 4954), and the DATA-phase end detector and dot-unstuffer. */
#ifndef IX_SMTP_PARSE_H
#define IX_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"

/* Command line limits. RFC 5321 4.5.3.1.4 gives 512 octets with CRLF; every ESMTP parameter we support may add
 * its own length (RFC 5321 4.5.3.1.4 allows that), so content up to SMTP_COMMAND_MAX is accepted. AUTH lines
 * (command and responses) may be SMTP_AUTH_LINE_MAX long (RFC 4954). A line reader should use the latter. */
#define SMTP_COMMAND_BASE 510
#define SMTP_COMMAND_MAX 2048
#define SMTP_AUTH_LINE_MAX 12288
/* Address limits (RFC 5321 4.5.3.1). With SMTPUTF8 the same number of characters may take up to four octets
 * each, so we allow 4x octets for the local part and twice for the path; the domain stays 255 octets. */
#define SMTP_LOCAL_MAX 64
#define SMTP_LOCAL_MAX_UTF8 256
#define SMTP_DOMAIN_MAX 255
#define SMTP_LABEL_MAX 63
#define SMTP_PATH_MAX 256
#define SMTP_PATH_MAX_UTF8 512
/* DSN (RFC 3461 4.4, 4.2): ENVID 100 characters, ORCPT 500 characters after xtext decoding. */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
/* ORCPT address type ("rfc822", "utf-8"). */
#define SMTP_ADDR_TYPE_MAX 16
/* Most ESMTP parameters on one MAIL or RCPT. */
#define SMTP_PARAMS_MAX 16
/* A text line in DATA, CRLF included (RFC 5321 4.5.3.1.6). */
#define SMTP_TEXT_LINE_MAX 1000
/* Largest SIZE= or BDAT size we parse (bigger numbers are a syntax error, not a wrap-around). */
#define SMTP_NUMBER_MAX 999999999999999ULL

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BURL, /* RFC 4468 */
	SMTP_VERB_COUNT
};

/* The verb's name in upper case ("" for UNKNOWN). */
const char *smtp_verb_name(enum smtp_verb verb);

struct smtp_command {
	enum smtp_verb verb;
	const char *arg; /* points into the line, after the verb and its space; trailing spaces removed */
	size_t arg_len;  /* 0 when there is no argument */
};

/* Errors from these parsers are complete SMTP replies without CRLF (static strings, e.g. "501 5.5.4 ...");
 * the functions return 0 or IX_EINVAL (IX_ELIMIT for lengths) and set *error_r. */

/* Splits a command line (without CRLF) into verb and argument. Refuses NUL and other control bytes, lines over
 * SMTP_COMMAND_MAX (SMTP_AUTH_LINE_MAX for AUTH), unknown verbs (verb UNKNOWN is still set, with an error),
 * arguments on DATA/RSET/QUIT/STARTTLS, and missing arguments for HELO/EHLO/MAIL/RCPT/BDAT/AUTH/VRFY/EXPN. */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd_r, const char **error_r);

struct smtp_mailbox {
	char local[SMTP_LOCAL_MAX_UTF8 + 1]; /* as sent: a quoted local part keeps its quotes and escapes */
	size_t local_len;
	char domain[SMTP_DOMAIN_MAX + 1]; /* a name, or an address literal with its brackets; "" for <Postmaster> */
	size_t domain_len;
	bool local_quoted;
	bool domain_literal;
	bool utf8; /* non-ASCII octets somewhere */
};

struct smtp_path {
	bool null;       /* "<>" */
	bool postmaster; /* "<Postmaster>" without a domain (RCPT only) */
	struct smtp_mailbox mbox;
};

/* Path flags. */
#define SMTP_PATH_ALLOW_NULL 1u       /* <> (reverse-path) */
#define SMTP_PATH_ALLOW_POSTMASTER 2u /* <Postmaster> (forward-path) */
#define SMTP_PATH_UTF8 4u             /* RFC 6531 UTF-8 local parts and domains */
#define SMTP_PATH_NO_BRACKETS 8u      /* parse a bare mailbox (xtext-decoded AUTH= or ORCPT values) */

/* Parses a path at the start of s: "<" [source route ":"] mailbox ">" (source routes are dropped). Sets
 * *consumed_r to the bytes used. Errors say "bad address syntax" (the caller picks 5.1.3 or 5.1.7). */
int smtp_parse_path(const char *s, size_t len, unsigned flags, struct smtp_path *path_r, size_t *consumed_r,
		    const char **error_r);
/* Writes "local@domain" ("" for the null path, "Postmaster" alone) into out; returns its length. out must
 * hold SMTP_PATH_MAX_UTF8 + 1 bytes. */
size_t smtp_path_string(const struct smtp_path *path, char *out, size_t out_size);

/* Extensions this server advertised, so their parameters are accepted. */
#define SMTP_EXT_SIZE 1u
#define SMTP_EXT_8BITMIME 2u
#define SMTP_EXT_BINARYMIME 4u
#define SMTP_EXT_SMTPUTF8 8u
#define SMTP_EXT_DSN 16u
#define SMTP_EXT_AUTH 32u
#define SMTP_EXT_ALL 63u

enum smtp_body { SMTP_BODY_DEFAULT = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_DEFAULT = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail {
	struct smtp_path from;
	bool has_size;
	unsigned long long size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext-decoded */
	size_t envid_len;
	bool has_auth; /* AUTH= given; auth_null for AUTH=<> */
	bool auth_null;
	struct smtp_mailbox auth;
};

#define SMTP_NOTIFY_NEVER 1u
#define SMTP_NOTIFY_SUCCESS 2u
#define SMTP_NOTIFY_FAILURE 4u
#define SMTP_NOTIFY_DELAY 8u

struct smtp_rcpt {
	struct smtp_path to;
	unsigned notify; /* 0 when not given */
	char orcpt_type[SMTP_ADDR_TYPE_MAX + 1];
	char orcpt[SMTP_ORCPT_MAX + 1]; /* xtext-decoded original recipient, "" when not given */
	size_t orcpt_len;
};

/* Parses the argument of MAIL ("FROM:<path> params"); exts: SMTP_EXT_* advertised. */
int smtp_parse_mail(const char *arg, size_t len, unsigned exts, struct smtp_mail *mail_r, const char **error_r);
/* Parses the argument of RCPT ("TO:<path> params"); utf8: the transaction's MAIL had SMTPUTF8. */
int smtp_parse_rcpt(const char *arg, size_t len, unsigned exts, bool utf8, struct smtp_rcpt *rcpt_r,
		    const char **error_r);
/* BDAT argument: "size [LAST]". */
int smtp_parse_bdat(const char *arg, size_t len, unsigned long long *size_r, bool *last_r, const char **error_r);
/* AUTH argument: "mechanism [initial-response]"; pointers into arg; *ir_r NULL when there is none. */
int smtp_parse_auth(const char *arg, size_t len, char *mech, size_t mech_size, const char **ir_r, size_t *ir_len_r,
		    const char **error_r);

/* xtext (RFC 3461 4): decodes into out (out_size includes room for a NUL). Returns the decoded length, or -1
 * for bad syntax or when it does not fit. */
long smtp_xtext_decode(const char *in, size_t len, char *out, size_t out_size);

/* ---- DATA phase ---- */

/* Bare LF policy inside DATA. Ends of data are only ever CRLF "." CRLF; a bare LF never starts a line for
 * the end marker or for dot-unstuffing (the SMTP smuggling class). */
enum smtp_bare_lf { SMTP_BARE_LF_KEEP = 0, SMTP_BARE_LF_NORMALIZE, SMTP_BARE_LF_REJECT };

struct smtp_data {
	/* settings (set before the first call) */
	enum smtp_bare_lf bare_lf;
	unsigned long long max_size; /* 0: no limit; output stops growing past it, counting goes on */
	/* results */
	unsigned long long size; /* message bytes after unstuffing (what SIZE limits) */
	unsigned long bare_lf_count, bare_cr_count;
	size_t longest_line; /* longest line seen, CRLF included */
	bool too_big;        /* size passed max_size: reply 552 after the end */
	bool rejected;       /* bare LF with SMTP_BARE_LF_REJECT: reply 550 after the end */
	/* private */
	int state;
	size_t line_len;
};

enum smtp_data_result { SMTP_DATA_MORE = 0, SMTP_DATA_END = 1 };

/* Zeroes d and applies the settings. */
void smtp_data_init(struct smtp_data *d, enum smtp_bare_lf bare_lf, unsigned long long max_size);
/* Feeds in[0..len): unstuffed message bytes (CRLF line ends kept) are appended to out, unless the message
 * is already too big or rejected. Returns SMTP_DATA_END when CRLF.CRLF completed, with *consumed_r the bytes
 * used (what follows is the next pipelined command); otherwise SMTP_DATA_MORE with all bytes consumed. The
 * message starts right after "DATA" CRLF, so a first line of "." ends an empty message. */
int smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out, size_t *consumed_r);

#endif
