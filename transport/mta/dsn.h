/* dsn.h - delivery status notifications (RFC 3464 multipart/report with message/delivery-status, RFC 3461
 * options) and the small pure message-header helpers the SMTP server and the MTA share. */
#ifndef IX_DSN_H
#define IX_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"

/* Most of the original message a failure report returns (RET=FULL); longer ones are cut to their headers. */
#define DSN_RETURN_MAX (1u << 20)
/* Longest header field value the helpers copy out. */
#define DSN_HEADER_VALUE_MAX 998
/* Header block bytes the helpers look at. */
#define DSN_HEADER_SCAN_MAX (1u << 20)

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

struct dsn_rcpt {
	const char *addr;  /* final recipient */
	const char *orcpt; /* original recipient, NULL or "" when none */
	enum dsn_action action;
	const char *status;     /* "5.1.1"; NULL: derived from diagnostic, else 5.0.0 / 4.0.0 / 2.0.0 */
	const char *diagnostic; /* the SMTP reply or a sentence, NULL */
	const char *remote_mta; /* NULL */
};

struct dsn_report {
	const char *reporting_mta; /* our host name */
	const char *to;            /* the original sender, who gets the report */
	const char *envid;         /* "" or NULL when none */
	bool headers_only;         /* RET=HDRS (or the message is too large to return) */
	long long arrival;         /* wall clock seconds when the original arrived */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *original; /* the original message */
	size_t original_len;
};

/* Appends a complete RFC 5322 message (From: MAILER-DAEMON@reporting_mta, a human-readable part, the
 * message/delivery-status part, and the returned message or its headers) to out. The envelope sender of a
 * report is always the null path. */
void dsn_build(const struct dsn_report *r, struct buf *out);
/* Extracts an RFC 3463 enhanced status code ("5.1.1") from an SMTP reply ("550 5.1.1 no such user"); falls
 * back to class.0.0 from the reply code, or def. out needs 16 bytes. */
void dsn_status_from_reply(const char *reply, const char *def, char *out);

/* Pure header helpers over a message (CRLF or LF line ends), looking only at its header block (bounded by
 * DSN_HEADER_SCAN_MAX). */
/* Copies the unfolded value of the first field called name (case-insensitive), whitespace trimmed, control
 * bytes replaced by spaces, into out (truncated to out_size - 1). Returns true when the field exists. */
bool dsn_header_value(const char *msg, size_t len, const char *name, char *out, size_t out_size);
/* Walks the header fields in order: calls fn with each field's name and raw (folded) value, the value running to
 * the end of the field, its line end included (so name to val + vlen is the whole field); stops when fn returns
 * false. */
typedef bool dsn_field_fn(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen);
void dsn_each_field(const char *msg, size_t len, dsn_field_fn *fn, void *ctx);
/* Counts the Received: fields (loop detection). */
unsigned dsn_count_received(const char *msg, size_t len);
/* Length of the header block including the empty line that ends it (len when there is no body). */
size_t dsn_header_length(const char *msg, size_t len);
/* Appends to out "Return-Path: <sender>" (sender "" for the null path) and then msg without the Return-Path fields
 * of its header block: the final delivery writes the one true Return-Path (RFC 5321 4.4). */
void dsn_with_return_path(const char *msg, size_t len, const char *sender, struct buf *out);
/* Appends msg to out with field (a complete field, CRLF included) inserted after the trace fields the message starts
 * with (Return-Path, Received), so our own Received line stays the first. */
void dsn_header_insert(const char *msg, size_t len, const char *field, struct buf *out);

#endif
