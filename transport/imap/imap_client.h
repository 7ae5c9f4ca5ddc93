/* imap_client.h - a small blocking IMAP client: the commands that copy mailboxes (user move: X-IX-IMPORT to another
 * server of the organisation; import imap: reading another organisation's server) and submission's BURL (URLFETCH
 * at a user's home server). */
#ifndef IX_IMAP_CLIENT_H
#define IX_IMAP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct ssl_st;
struct tls_ctx;
struct tls_peers;

struct imc {
	int fd;
	struct ssl_st *ssl;
	struct tls_peers *peers; /* owned when set (user move's STARTTLS) */
	struct buf in;
	unsigned tag;
	uint64_t bytes_out, bytes_in;
	size_t literal_max; /* largest literal accepted in a response (0: 64 KiB) */
	bool loopback;      /* connected to an address of this machine */
};

/* One response as read: text is the response up to its first literal (without "* " and the CRLF; the literal's
 * "{n}" left out), lit that literal (empty when none), raw/raw_len the whole response with its literals inline and
 * its final CRLF, as a server sends it. All owned by the client, valid during the callback. */
struct imc_resp {
	const char *text;
	const struct buf *lit;
	const char *raw;
	size_t raw_len;
};

typedef void imc_untagged_fn(void *ctx, const struct imc_resp *r);

/* Connects to host:port over TCP (timeouts of timeout_ms on every read and write) and sets c->loopback. Nothing is
 * read. 0 or IX_EUNAVAIL with error_r. c is initialized here; imc_close frees it whatever the result. */
int imc_connect_tcp(struct imc *c, const char *host, unsigned port, unsigned timeout_ms, struct buf *error_r);
/* TLS handshake over the connection, verifying as ctx says, host as SNI and the name checked. 0 or IX_EUNAVAIL with
 * the reason (a refused certificate in words) in error_r. */
int imc_tls(struct imc *c, struct tls_ctx *ctx, const char *host, struct buf *error_r);
/* Reads the greeting: 0 for "* OK" (its text in greeting_r, which may be NULL), else IX_EUNAVAIL with error_r. */
int imc_greeting(struct imc *c, struct buf *greeting_r, struct buf *error_r);
/* Sends "tag " + cmd + CRLF and reads up to the tagged answer; untagged responses go to fn (may be NULL). A
 * continuation request ("+ ...") is answered with cont + CRLF when cont is set, else the command is cancelled with
 * "*". 0 on OK, IX_EINVAL on NO/BAD (the answer in error_r), IX_EUNAVAIL when the connection was lost or timed out. cmd is emptied. */
int imc_cmd_cont(struct imc *c, struct buf *cmd, const char *cont, imc_untagged_fn *fn, void *ctx, struct buf *error_r);
int imc_cmd(struct imc *c, struct buf *cmd, imc_untagged_fn *fn, void *ctx, struct buf *error_r);
/* LOGOUT when connected, then frees everything; c is left closed (fd -1). */
void imc_close(struct imc *c);

/* Appends data to a command as a LITERAL+ ({n+}). */
void imc_add_lit(struct buf *cmd, const char *data, size_t len);
/* Appends s as an IMAP string: quoted when it is short printable ASCII, else a LITERAL+. */
void imc_add_string(struct buf *cmd, const char *s, size_t len);

#endif
