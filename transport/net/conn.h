/* conn.h - a non-blocking buffered connection over the event loop: bounded input, line and byte reads,
 * buffered output, plaintext or TLS (implicit or STARTTLS), idle timeout; and a TCP listener with a cap. */
#ifndef IX_CONN_H
#define IX_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/evloop.h"
#include "transport/net/tls.h"
#include "common/util.h"

/* Default and largest input buffer per connection: reading stops while this much is buffered and unread. */
#define CONN_INPUT_MAX_DEFAULT (64 * 1024)
#define CONN_INPUT_MAX_LIMIT (16 * 1024 * 1024)
/* The input buffer starts this small and doubles up to the maximum as needed. */
#define CONN_INPUT_INITIAL 4096
/* Output that a protocol should stop producing at and wait for (see conn_output_len); not enforced. */
#define CONN_OUTPUT_SOFT_MAX (256 * 1024)
/* Printable peer address ("192.0.2.1", "2001:db8::1", "local"), NUL included. */
#define CONN_ADDR_MAX 64

struct conn;

enum conn_event {
	CONN_EVENT_INPUT, /* input arrived (or conn_kick): read it with conn_read_line / conn_read_bytes */
	/* the TLS handshake finished (implicit TLS or after conn_start_tls), or the client answered
	 * conn_request_peer_cert */
	CONN_EVENT_TLS_READY,
	CONN_EVENT_CONNECTED, /* conn_connect: the TCP connection is up */
	/* No input and no output progress for the idle timeout. The connection still works so that the owner can
	 * say why it leaves (write, then conn_close_after_flush) or it destroys it. The timer runs again, so a
	 * peer that does not even read the goodbye gets another TIMEOUT. */
	CONN_EVENT_TIMEOUT,
	/* The following end the connection: it no longer reads or writes, and the owner destroys it (from the
	 * callback is fine). EOF comes after every INPUT for the bytes before it. */
	CONN_EVENT_EOF,    /* the peer closed its side */
	CONN_EVENT_ERROR,  /* I/O or TLS failure: conn_error() says what */
	CONN_EVENT_CLOSED, /* conn_close_after_flush finished sending */
};

/* The one callback of a connection. It is never called from inside a conn_* call the owner makes; only from
 * the event loop. The owner may call any conn_* function from it, including conn_destroy. */
typedef void conn_event_fn(struct conn *c, enum conn_event ev, void *ctx);

/* Wraps fd (a connected socket; a socketpair or pipe-like fd works too) and takes ownership of it: it is
 * made non-blocking and closed by conn_destroy. Reading starts at once. Never fails (allocation is fatal);
 * an fd the loop cannot watch reports CONN_EVENT_ERROR from the loop. */
struct conn *conn_create(struct evloop *loop, int fd, conn_event_fn *fn, void *ctx);
/* Starts a non-blocking TCP connection to a numeric IPv4 or IPv6 address (outbound SMTP). Returns at once;
 * CONNECTED or ERROR ("connect to 192.0.2.1 port 25: Connection refused") follows from the loop. Output may
 * be queued before it is up. Never fails (a bad address is reported as ERROR). */
struct conn *conn_connect(struct evloop *loop, const char *ip, unsigned port, conn_event_fn *fn, void *ctx);
/* Closes at once (TLS close_notify is attempted, never waited for), frees, sets *c to NULL. Unsent output is
 * dropped. Safe from the conn's own callback (the memory is released when the callback returns). */
void conn_destroy(struct conn **c);

/* Input buffer limit (CONN_INPUT_INITIAL..CONN_INPUT_MAX_LIMIT; clamped). Lines longer than this can never
 * be read whole, so it must exceed every line limit the protocol uses. */
void conn_set_input_max(struct conn *c, size_t max);
/* Idle timeout in milliseconds (0: none). Restarted by write progress and by input progress: the owner reading
 * a line end, or CONN_IDLE_PROGRESS_BYTES of input since the last restart. Bytes that merely arrive do not
 * restart it, so a slow-loris peer trickling an unfinished line is timed out like a silent one. */
#define CONN_IDLE_PROGRESS_BYTES 4096

void conn_set_idle_timeout(struct conn *c, unsigned msecs);

/* ---- input ---- */

/* Line endings: CRLF only by default (a bare LF is then line content, for the protocol parser to refuse);
 * with CONN_LINE_BARE_LF a lone LF also ends a line. */
#define CONN_LINE_BARE_LF 1u

enum conn_line_result {
	CONN_LINE_OK = 1,
	CONN_LINE_MORE = 0,      /* no complete line yet */
	CONN_LINE_TOO_LONG = -1, /* content longer than max: it is being skipped through its line ending */
};
/* Reads one line of at most max content bytes (terminator excluded). OK: line_r and len_r hold the content,
 * not NUL-terminated, may contain NULs; valid until control returns to the loop or conn_start_tls.
 * TOO_LONG is returned once per overlong line; the rest of it is dropped as it arrives and reading resumes
 * after its end (without another INPUT event if the end was already buffered). */
int conn_read_line(struct conn *c, size_t max, unsigned flags, const char **line_r, size_t *len_r);
/* Reads up to max raw bytes (DATA, BDAT chunks, IMAP literals). Returns how many (0: nothing buffered);
 * *data_r valid as for conn_read_line. */
size_t conn_read_bytes(struct conn *c, size_t max, const char **data_r);
/* Looks at everything buffered without consuming it (returns its length; *data_r valid as above). */
size_t conn_input_peek(const struct conn *c, const char **data_r);
/* Consumes n bytes (n <= conn_input_len) after a peek: incremental parsers take what they used. */
void conn_input_consume(struct conn *c, size_t n);
/* Bytes buffered and not yet read. */
size_t conn_input_len(const struct conn *c);
/* Pauses input (no reads, no INPUT events: while a command waits on something) or resumes it; resuming with
 * input buffered delivers an INPUT event from the loop. */
void conn_pause_input(struct conn *c, bool paused);
/* Asks for an INPUT event from the loop even without new data (to re-run a parser after a state change). */
void conn_kick(struct conn *c);

/* ---- output ---- */

/* Queues bytes. They are sent when the current callback returns, or on the next loop round when queued
 * from elsewhere (the before-sleep hook, a timer): batches of pipelined replies leave in one write. */
void conn_write(struct conn *c, const void *data, size_t len);
void conn_write_str(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...) IX_PRINTF(2, 3);
/* Bytes queued and not yet accepted by the kernel (or TLS). Producers should wait above CONN_OUTPUT_SOFT_MAX
 * (conn_pause_input) until it drains. */
size_t conn_output_len(const struct conn *c);
/* Stops reading, sends what is queued (then TLS close_notify), and reports CONN_EVENT_CLOSED. */
void conn_close_after_flush(struct conn *c);

/* ---- TLS ---- */

/* Starts TLS on this connection with ctx (server or client per the context; host: SNI / name to verify for a
 * client, NULL for a server). Every byte of input buffered so far is discarded (STARTTLS command injection,
 * CVE-2011-0411): *discarded_r (may be NULL) says how many, so the caller can log it. Output already queued
 * (the "220 Ready to start TLS" reply) is sent in plaintext first, then the handshake runs; input is not
 * read as plaintext in between. CONN_EVENT_TLS_READY follows, or CONN_EVENT_ERROR. Returns 0, or IX_EINVAL
 * if TLS is already on. For implicit TLS, call it right after conn_create. */
int conn_start_tls(struct conn *c, struct tls_ctx *ctx, const char *host, size_t *discarded_r);
/* True once the handshake is finished. */
bool conn_is_tls(const struct conn *c);
/* The peer's certificate fingerprint (tls_peer_fingerprint) into hex (TLS_FINGERPRINT_HEX + 1 bytes); false when
 * TLS is not up or the peer sent no certificate. */
bool conn_peer_fingerprint(const struct conn *c, char *hex);
/* Server side, TLS up: asks the client for its certificate now (tls_request_peer_cert: TLS 1.3 post-handshake
 * authentication, only when the client offered it). Returns IX_OK: the request goes out, and CONN_EVENT_TLS_READY
 * follows once the client has answered (conn_peer_fingerprint then says with which certificate, if any), or
 * CONN_EVENT_ERROR; until then the connection reads even while paused (input is buffered, INPUT waits for the
 * resume as usual, EOF does not) and conn_peer_fingerprint is false. IX_EINVAL: not possible (no TLS, TLS 1.2, not offered, a
 * request under way); nothing changed. */
int conn_request_peer_cert(struct conn *c);
/* The connection's channel binding data (tls_channel_bindings); false when TLS is not up or there is none. */
bool conn_channel_bindings(const struct conn *c, struct scram_cbind *cb_r);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once TLS is up, else "" (static or conn-owned). */
const char *conn_tls_info(const struct conn *c);

/* ---- peer, state ---- */

/* The peer's address as text; "local" for a non-IP socket. Valid while c lives. */
const char *conn_peer(const struct conn *c);
unsigned conn_peer_port(const struct conn *c);
/* True for 127.0.0.0/8, ::1, IPv4-mapped loopback and local (Unix) sockets. */
bool conn_peer_is_loopback(const struct conn *c);
/* What went wrong, after CONN_EVENT_ERROR (or ""). Valid while c lives. */
const char *conn_error(const struct conn *c);
int conn_fd(const struct conn *c);

/* ---- listener ---- */

struct listener;
/* A new connection: fd is non-blocking and close-on-exec, and now the callback's. When that connection
 * ends, call listener_release so the count of live connections goes down. */
typedef void listener_accept_fn(struct listener *l, int fd, void *ctx);

/* Listens on addr ("127.0.0.1", "::1", "0.0.0.0", "::"; NULL means any IPv6+IPv4) and port (0: an ephemeral
 * port, see listener_port) with SO_REUSEADDR. While max_conns connections are live (0: no cap), accepting
 * pauses and new peers wait in the kernel backlog. Returns 0 or IX_EIO / IX_EINVAL with error_r. */
int listener_create(struct evloop *loop, const char *addr, unsigned port, unsigned max_conns, listener_accept_fn *fn,
		    void *ctx, struct listener **l_r, struct buf *error_r);
/* The listening socket alone, bound and listening as listener_create's (non-blocking, close-on-exec), for a server
 * that accepts on its own (transport/http/). Returns IX_OK with *fd_r (the caller's), or IX_EIO / IX_EINVAL. */
int listener_socket(const char *addr, unsigned port, int *fd_r, struct buf *error_r);
/* Closes the socket and frees; live connections are unaffected. Sets *l to NULL. */
void listener_destroy(struct listener **l);
unsigned listener_port(const struct listener *l);
unsigned listener_active(const struct listener *l);
/* One connection from this listener has ended. */
void listener_release(struct listener *l);
/* Changes the cap (a live setting). Connections already past a lowered cap are left alone; new ones wait (or
 * get the busy reply) until the count is under it again. */
void listener_set_max_conns(struct listener *l, unsigned max_conns);
/* Overload behaviour: with a busy reply set (e.g. "421 4.3.2 Too busy, try again later\r\n", "* BYE ...",
 * "-ERR [SYS/TEMP] ..."), a peer arriving while max_conns connections are live is accepted, sent reply (one
 * non-blocking write, best effort) and closed at once, instead of waiting unanswered in the backlog. reply is
 * copied (at most LISTENER_BUSY_REPLY_MAX bytes); NULL restores the default (pause accepting). Not for implicit
 * TLS ports, where plaintext would be garbage to the client. */
#define LISTENER_BUSY_REPLY_MAX 256
void listener_set_busy_reply(struct listener *l, const char *reply);
/* Peers turned away with the busy reply since the listener was created. */
unsigned long listener_turned_away(const struct listener *l);

#endif
