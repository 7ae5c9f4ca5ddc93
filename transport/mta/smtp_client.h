/* smtp_client.h - the outbound SMTP client of the MTA: blocking I/O with timeouts, run on worker threads.
 * EHLO (HELO fallback), opportunistic STARTTLS, PIPELINING, SIZE, 8BITMIME; one connection carries many
 * messages (RSET between them) so the MTA can reuse it for a destination. */
#ifndef IX_SMTP_CLIENT_H
#define IX_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "transport/net/tls.h"

/* Longest reply line and whole (multi-line) reply we read. */
#define SMTP_CLIENT_LINE_MAX 4096
#define SMTP_CLIENT_REPLY_MAX 65536
/* Default timeouts (RFC 5321 4.5.3.2 suggests minutes; a queue runner prefers to retry sooner). */
#define SMTP_CLIENT_CONNECT_MS 10000
#define SMTP_CLIENT_COMMAND_MS 60000
#define SMTP_CLIENT_DATA_MS 180000

struct smtp_client;

/* Resolves host (a name or numeric address) and connects to the first address that answers, then reads the
 * greeting, sends EHLO helo (HELO if refused) and STARTTLS when offered and tls is not NULL (then EHLO again).
 * Returns 0 with *c_r, or IX_EUNAVAIL (no connection / no greeting: try later) or IX_EINVAL (the greeting or
 * EHLO was refused with 5xx) with the reason in error_r (for a reply, the reply itself). */
int smtp_client_open(const char *host, unsigned port, const char *helo, struct tls_ctx *tls, unsigned timeout_ms,
		     struct smtp_client **c_r, struct buf *error_r);
/* How the TLS of a connection must be (RFC 7672 DANE; otherwise opportunistic, RFC 7435). */
enum smtp_tls_mode {
	SMTP_TLS_OPPORTUNISTIC = 0, /* STARTTLS when offered, any certificate */
	SMTP_TLS_DANE,              /* STARTTLS required, the certificate checked against the TLSA records */
	SMTP_TLS_VERIFY, /* MTA-STS enforce (RFC 8461 4.2): STARTTLS required, the context given must verify */
};
struct smtp_tls_policy {
	enum smtp_tls_mode mode;
	/* SMTP_TLS_DANE: the DNSSEC-validated TLSA records' data (usage, selector, matching type, association data);
	 * DANE-TA (2) and DANE-EE (3) are used, the PKIX usages (0, 1) are unusable for SMTP (RFC 7672 3.1.3). When no
	 * record is usable, TLS is still required, unauthenticated. */
	const unsigned char *const *tlsa;
	const size_t *tlsa_len;
	size_t ntlsa;
	/* The addresses to connect to (text, tried in order), from the caller's DNS; NULL: host resolved by the
	 * system (a name of /etc/hosts or an address). */
	const char *const *addrs;
	size_t naddrs;
	/* When not NULL: set to the result-type of a TLS negotiation that failed (RFC 8460 4.3:
	 * "starttls-not-supported", "tlsa-invalid", "certificate-host-mismatch", "certificate-expired",
	 * "certificate-not-trusted", "validation-failure"), for TLS reports; left alone otherwise. */
	const char **result_r;
};
/* Makes ctx (a client context) able to check certificates against TLSA records. Once, before any connection from
 * it. Returns IX_OK or IX_EIO with error_r. */
int smtp_client_dane_enable(struct tls_ctx *ctx, struct buf *error_r);
/* smtp_client_open with a policy (NULL: opportunistic, the system resolving host). Under SMTP_TLS_DANE and
 * SMTP_TLS_VERIFY a server without STARTTLS, a failed handshake or a certificate that matches no usable TLSA record
 * (DANE) or does not verify for host (VERIFY) is IX_EUNAVAIL with the reason (the message waits). */
int smtp_client_open_policy(const char *host, unsigned port, const char *helo, struct tls_ctx *tls,
			    const struct smtp_tls_policy *policy, unsigned timeout_ms, struct smtp_client **c_r,
			    struct buf *error_r);
/* What the connection's TLS was, for the records of a delivery: "no TLS", "TLS opportunistic, not verified", "TLS,
 * verified" (a verifying context: the organisation's servers),
 * "TLS DANE, verified (DANE-EE)", "TLS DANE, verified (DANE-TA)", "TLS MTA-STS, verified" or "TLS DANE, no usable TLSA record, not
 * verified". Static text. */
const char *smtp_client_tls_outcome(const struct smtp_client *c);
/* QUIT (best effort), close, free; sets *c to NULL. NULL is ignored. */
void smtp_client_close(struct smtp_client **c);
bool smtp_client_is_tls(const struct smtp_client *c);
/* False when an idle connection is over: the peer closed it, reset it or said something unasked (its 421 when it
 * stops). A cached connection is checked so before it carries another message. Never blocks. */
bool smtp_client_alive(const struct smtp_client *c);
/* The extensions the server announced. */
bool smtp_client_has(const struct smtp_client *c, const char *keyword);
/* "host[ip]" of the peer. */
const char *smtp_client_peer(const struct smtp_client *c);

/* One message. Outputs: codes[i] is the final reply code for recipient i (250: accepted and the message taken,
 * 4xx / 5xx refused) and replies[i] its reply text (malloc'd; the caller frees each with free()). */
struct smtp_client_msg {
	const char *sender; /* "" for <> */
	const char *const *rcpts;
	const unsigned *notify; /* per recipient SMTP_NOTIFY_* or 0; sent only when the server has DSN; may be NULL */
	const char *envid;      /* DSN ENVID (xtext-safe characters only) or NULL */
	const char *data;       /* the message with CRLF line ends, not dot-stuffed */
	size_t len;
	bool eightbit; /* send BODY=8BITMIME when offered */
	size_t nrcpts;
	int *codes;     /* nrcpts entries, filled */
	char **replies; /* nrcpts entries, filled */
	/* What needs SMTPUTF8 (smtp_client_utf8_need): declared on MAIL when the server offers it; when it does not,
	 * nothing is sent and every recipient gets "553 5.6.7 ..." saying why (RFC 6531 3.2). */
	unsigned utf8;
};

/* What in a message needs the SMTPUTF8 extension (RFC 6531): a non-ASCII address in the envelope, or 8-bit bytes
 * in the header block (UTF-8 header fields, RFC 6532). */
#define SMTP_UTF8_ENVELOPE 1u
#define SMTP_UTF8_HEADER 2u
/* Returns the SMTP_UTF8_* bits of sender, rcpts[0..n) and the message data[0..len) (its header block is read). */
unsigned smtp_client_utf8_need(const char *sender, const char *const *rcpts, size_t n, const char *data, size_t len);

/* Sends one transaction (pipelined when offered). Returns 0 when the exchange completed (look at codes: some
 * recipients may have been refused), or IX_EUNAVAIL when the connection broke (every recipient gets 421 and
 * the connection must be closed). */
int smtp_client_send(struct smtp_client *c, struct smtp_client_msg *m, struct buf *error_r);

#endif
