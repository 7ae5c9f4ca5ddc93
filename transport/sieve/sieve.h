/* sieve.h - Sieve mail filtering (RFC 5228): a pure parser over a bounded buffer and an interpreter that runs a
 * parsed script over one message and returns the actions to take; delivery carries them out. */
#ifndef IX_SIEVE_H
#define IX_SIEVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Extensions the parser and interpreter know (what `require` accepts), space-separated, as ManageSieve's SIEVE
 * capability announces them. */
#define SIEVE_EXTENSIONS                                                                                        \
	"fileinto reject ereject envelope imap4flags vacation vacation-seconds copy body variables relational " \
	"comparator-i;ascii-numeric subaddress date index editheader mailbox include duplicate encoded-character"

#define SIEVE_DEFAULT_MAX_SCRIPT (64 * 1024) /* bytes of one script */
#define SIEVE_MAX_NESTING 32                 /* blocks and tests within tests */
/* Scripts a mailbox may keep (its out-of-office script not counted), and global scripts the organisation may. */
#define SIEVE_MAX_SCRIPTS 32

/* ---- the parse tree ---- */
enum sieve_arg_type { SIEVE_ARG_STRING, SIEVE_ARG_LIST, SIEVE_ARG_NUMBER, SIEVE_ARG_TAG };

struct sieve_str {
	char *s; /* NUL-terminated; may hold NULs (len counts them) */
	size_t len;
};

struct sieve_arg {
	enum sieve_arg_type type;
	unsigned line;
	uint64_t number;        /* SIEVE_ARG_NUMBER, K/M/G applied */
	char *tag;              /* SIEVE_ARG_TAG: with its colon, lower-cased (":is") */
	struct sieve_str *strs; /* SIEVE_ARG_STRING (one) and SIEVE_ARG_LIST (count) */
	size_t count;
	int tag_param; /* 1: the parameter of the tag before it (":comparator" "i;octet"), set by validation */
};

/* A command or a test: name, arguments, tests (a test list or the test of if/elsif), and a block. */
struct sieve_node {
	char *name; /* lower-cased identifier */
	unsigned line;
	struct sieve_arg *args;
	size_t arg_count;
	struct sieve_node *tests;
	size_t test_count;
	struct sieve_node *block; /* commands of the block when has_block */
	size_t block_count;
	int has_block;
};

struct sieve_script; /* opaque: the commands, the extensions required, the memory */

/* Parses src[0..len) (RFC 5228 section 8 grammar: hash and bracket comments, quoted strings with \" and \\,
 * text: multi-line strings with dot-stuffing, numbers with K, M and G, tags, string lists, tests and test lists,
 * blocks) and checks it: every command and test known, its extension required, its arguments of the right kinds,
 * require only at the top, elsif/else after if. With encoded-character required, "${hex:..}" and "${unicode:..}"
 * in strings are decoded. Pure: no I/O, no globals. max_len 0 means SIEVE_DEFAULT_MAX_SCRIPT; a longer script is
 * refused (IX_ELIMIT). Returns IX_OK with *script_r (free with sieve_free), or IX_EINVAL (IX_ELIMIT) with *script_r
 * NULL and error_r (may be NULL) given "line N: what is wrong". */
int sieve_parse(const char *src, size_t len, size_t max_len, struct sieve_script **script_r, struct buf *error_r);
/* Frees the script; NULL is fine. */
void sieve_free(struct sieve_script *script);
/* The top-level commands; valid while the script lives. */
const struct sieve_node *sieve_commands(const struct sieve_script *script, size_t *count_r);
/* 1 when the script requires extension name ("fileinto"), else 0. */
int sieve_requires(const struct sieve_script *script, const char *name);
/* Appends the script in a canonical form (one command a line, strings quoted, no comments) that parses to the same
 * tree: what the fuzz target checks, and a readable dump for tests. */
void sieve_dump(const struct sieve_script *script, struct buf *out);

/* ---- running a script ---- */
struct sieve_limits {
	unsigned max_actions;   /* actions a run may produce (keep, fileinto, redirect, vacation ...) */
	unsigned max_redirects; /* redirect actions */
	unsigned max_steps;     /* commands, tests and match steps: a bound on run time independent of the clock */
	unsigned max_ms;        /* wall-clock milliseconds of one run */
	unsigned max_include;   /* depth of include */
};
#define SIEVE_DEFAULT_MAX_ACTIONS 32
#define SIEVE_DEFAULT_MAX_REDIRECTS 4
#define SIEVE_DEFAULT_MAX_STEPS 200000
#define SIEVE_DEFAULT_MAX_MS 1000
#define SIEVE_DEFAULT_MAX_INCLUDE 5
void sieve_limits_default(struct sieve_limits *lim_r);

/* What the script can see of the world beyond the message; every callback may be NULL (the default stated). */
struct sieve_env {
	const char *env_from;              /* SMTP MAIL FROM address without brackets; "" for the null sender */
	const char *env_to;                /* the RCPT TO address this delivery is for */
	const char *const *user_addresses; /* the user's own addresses (NULL-terminated; may be NULL) */
	long long now;                     /* Unix time of the run (currentdate, date's comparisons) */
	long long vacation_seconds;        /* vacation's period when the script gives none (0: 7 days) */
	int zone;                          /* the local zone, minutes east of UTC */
	void *ctx;
	/* 1 when folder name exists (mailboxexists; default: only "INBOX"). */
	int (*mailbox_exists)(void *ctx, const char *name);
	/* The text of script name from location ("personal" or "global") for include: 0 with *text_r malloc'ed and
	 * *len_r, or -1 when there is none (default). */
	int (*include)(void *ctx, const char *location, const char *name, char **text_r, size_t *len_r);
	/* Duplicate tracking (duplicate and vacation): 1 when key[0..len) was seen within the last seconds, else 0;
	 * records it as seen now unless just_check. Default: never seen. */
	int (*seen)(void *ctx, const char *key, size_t len, long long seconds, int just_check);
};

enum sieve_action_type {
	SIEVE_KEEP,     /* file into INBOX (the implicit keep too) */
	SIEVE_FILEINTO, /* folder */
	SIEVE_REDIRECT, /* address */
	SIEVE_DISCARD,
	SIEVE_REJECT, /* text: refuse with a message to the sender (RFC 5429 reject: an MDN; ereject: at SMTP) */
	SIEVE_EREJECT,
	SIEVE_VACATION, /* an auto-reply to address: subject, from, text (mime: text is a MIME entity) */
};

struct sieve_action {
	enum sieve_action_type type;
	char *folder;  /* FILEINTO */
	char *address; /* REDIRECT: where to; VACATION: to whom the reply goes (the envelope sender) */
	char *flags;   /* KEEP, FILEINTO: IMAP flags to set, space-separated ("" for none) */
	int create;    /* FILEINTO :create */
	char *text;    /* REJECT, EREJECT: the reason; VACATION: the body */
	char *subject; /* VACATION: the Subject of the reply */
	char *from;    /* VACATION: the From of the reply (NULL: the recipient) */
	int mime;      /* VACATION :mime */
	unsigned line; /* the command that produced it (0: the implicit keep) */
};

struct sieve_result {
	struct sieve_action *actions;
	size_t count;
	/* The message's header block after addheader/deleteheader (CRLF lines and the blank line), or NULL when the
	 * script did not edit the header: delivery stores this header with the original body. */
	char *header;
	size_t header_len;
	size_t body_off; /* where the original body starts in the message */
	unsigned steps;  /* work done (for the benchmark and the logs) */
};

/* Runs script over the message msg[0..len) for env (lim NULL: the defaults). Returns IX_OK with result_r filled
 * (the implicit keep included when nothing cancelled it), or an error (IX_EINVAL: a run-time error such as a bad
 * variable use or a missing include; IX_ELIMIT: a limit reached) with error_r given "line N: why" and result_r
 * holding the single action the RFC asks for on failure: keep. A vacation action is produced only when RFC 5230
 * and RFC 3834 allow a reply (not to a null sender, the user's own addresses, mailing lists, bulk or auto-submitted
 * mail, and only when one of the user's addresses is in To, Cc, Bcc or their Resent- forms) and env->seen did not
 * see the sender within :days/:seconds. Free the result with sieve_result_free. */
int sieve_run(const struct sieve_script *script, const char *msg, size_t len, const struct sieve_env *env,
	      const struct sieve_limits *lim, struct sieve_result *result_r, struct buf *error_r);
void sieve_result_free(struct sieve_result *result);

/* ---- pieces shared with delivery and ManageSieve ---- */
/* 1 when the message's header block (header[0..len)) marks automatic or list mail that no auto-reply may answer
 * (RFC 3834 Auto-Submitted other than "no", Precedence bulk/list/junk, List-Id and other List- fields), else 0. */
int sieve_header_is_auto(const char *header, size_t len);
/* Matches text[0..len) against a :matches pattern (* and ?, backslash escapes) with the comparator
 * ("i;octet" or "i;ascii-casemap"); captures (may be NULL) gets up to ncap wildcard matches as offsets pairs into
 * text. Returns 1 on a match, 0 on none. steps counts work (may be NULL). */
int sieve_glob(const char *pat, size_t plen, const char *text, size_t len, int casemap, size_t (*captures)[2],
	       size_t ncap, unsigned *steps);

/* ---- out of office (docs/sieve.md) ---- */
/* The script that holds a user's out-of-office rule, beside the user's own scripts; delivery runs it too. */
#define SIEVE_OOF_NAME "out-of-office"
#define SIEVE_OOF_MARK "interchange out-of-office"
enum { SIEVE_OOF_NONE, SIEVE_OOF_KNOWN, SIEVE_OOF_ALL };
struct sieve_oof {
	const char *internal, *external; /* the texts for senders inside (the organisation's domains) and outside */
	const char *subject;             /* NULL: "Out of office" */
	const char *from, *until;        /* "YYYY-MM-DD" (UTC, both days included), or NULL */
	int audience;                    /* SIEVE_OOF_*: who outside gets the external text */
	const char *const *domains;      /* the organisation's domains (NULL-terminated) */
	const char *const *known;        /* SIEVE_OOF_KNOWN: the senders outside that count as known */
};
/* SIEVE_OOF_* for "none", "known", "all"; -1 otherwise. */
int sieve_oof_audience(const char *name);
/* Appends the out-of-office script for o: a first comment line with the settings, then one vacation rule (handles
 * oof-internal and oof-external, the period of sieve.vacation_days) inside the period. */
void sieve_oof_script(const struct sieve_oof *o, struct buf *out);
/* Appends the settings line of an out-of-office script ("external-audience=all from=- until=-"): 0, or -1 when
 * script is not one. */
int sieve_oof_describe(const char *script, size_t len, struct buf *out);
/* The settings of an out-of-office script read back (sieve_oof_read): new strings (sieve_oof_settings_free), external
 * NULL when the audience outside gets none, from and until "" when unset. */
struct sieve_oof_settings {
	char *internal, *external, *subject;
	char from[11], until[11];
	int audience; /* SIEVE_OOF_* */
};
/* Reads the settings of a script sieve_oof_script made into *o_r: 0, or -1 when script is not one. */
int sieve_oof_read(const char *script, size_t len, struct sieve_oof_settings *o_r);
void sieve_oof_settings_free(struct sieve_oof_settings *o);

#endif
