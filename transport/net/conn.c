/* conn.c - buffered non-blocking connections (plaintext or TLS) and listeners over the event loop.
 * Level-triggered: interest is recomputed after every dispatch from the connection's state. */
#include "transport/net/conn.h"
#include "transport/net/tcp.h"
#include "common/scram.h"
#include "common/err.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* Kernel backlog of a listener. */
#define LISTENER_BACKLOG 511
/* Pause before accepting again after running out of descriptors or memory. */
#define LISTENER_RETRY_MSECS 100
/* Room for "TLSv1.3 " plus a cipher suite name. */
#define CONN_TLS_INFO_MAX 96

enum conn_tls_state {
	CONN_TLS_OFF,
	CONN_TLS_WAIT_FLUSH, /* STARTTLS accepted: sending the plaintext reply before the handshake */
	CONN_TLS_HANDSHAKE,
	CONN_TLS_ON,
};

struct conn {
	struct evloop *loop;
	int fd;
	conn_event_fn *fn;
	void *ctx;

	/* input: bytes in[in_start..in_end) are unread; in_cap grows up to in_max */
	char *in;
	size_t in_start, in_end, in_cap, in_max;
	size_t line_scanned; /* bytes from in_start already searched for a line end */
	bool skipping;       /* dropping the rest of an overlong line */

	struct buf out;
	size_t out_start;
	size_t plain_left; /* in CONN_TLS_WAIT_FLUSH: queued bytes that predate conn_start_tls */

	enum conn_tls_state tls_state;
	SSL *ssl;
	bool hs_want_write, read_want_write, write_want_read;
	bool cert_wait;     /* conn_request_peer_cert: reading (even paused) until the client's answer is in */
	bool cert_answered; /* set by tls_request_peer_cert's callback, from inside SSL_read */
	char tls_info[CONN_TLS_INFO_MAX];

	bool eof_seen, ended, paused, closing, kicked, free_pending;
	bool connecting; /* conn_connect: waiting for the socket to become writable */
	bool tcp;        /* a TCP socket: TCP_NODELAY is on, TCP_QUICKACK applies */
	unsigned busy;

	unsigned idle_msecs;
	struct evloop_timer idle_timer;
	size_t idle_progress; /* bytes the owner took since the idle timer last restarted, no line end among them */
	struct evloop_timer kick_timer;

	char peer[CONN_ADDR_MAX];
	unsigned peer_port;
	bool loopback;
	struct buf error;
};

static void conn_process(struct conn *c, unsigned events);
static void update_interest(struct conn *c);

static void conn_io(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)loop;
	(void)fd;
	conn_process(ctx, events);
}

static void conn_kick_fired(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	struct conn *c = ctx;
	c->kicked = true;
	conn_process(c, 0);
}

static void schedule_kick(struct conn *c)
{
	if (!evloop_timer_pending(&c->kick_timer))
		evloop_timer_start(c->loop, &c->kick_timer, 0, 0, conn_kick_fired, c);
}

static void peer_set(struct conn *c, const struct sockaddr_storage *ssp)
{
	const struct sockaddr_storage ss = *ssp;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, c->peer, sizeof(c->peer));
		c->peer_port = ntohs(sin->sin_port);
		c->loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
		c->peer_port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			struct in_addr a4;
			memcpy(&a4, sin6->sin6_addr.s6_addr + 12, 4);
			inet_ntop(AF_INET, &a4, c->peer, sizeof(c->peer));
			c->loopback = (ntohl(a4.s_addr) >> 24) == 127;
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, c->peer, sizeof(c->peer));
			c->loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		}
	}
}

static void peer_lookup(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	snprintf(c->peer, sizeof(c->peer), "local");
	c->loopback = true;
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
		peer_set(c, &ss);
}

/* Numeric address and port to a socket address. Returns its length, or 0 when ip is not numeric. */
static socklen_t sockaddr_make(const char *ip, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (port > 65535)
		return 0;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return sizeof(*sin6);
	}
	return 0;
}

struct conn *conn_create(struct evloop *loop, int fd, conn_event_fn *fn, void *ctx)
{
	/* a peer that goes away must be an EPIPE for us (OpenSSL writes with write(2)), not a killed daemon */
	static bool sigpipe_ignored;
	if (!sigpipe_ignored) {
		struct sigaction sa;
		if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
			signal(SIGPIPE, SIG_IGN);
		sigpipe_ignored = true;
	}
	struct conn *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->fd = fd;
	c->fn = fn;
	c->ctx = ctx;
	c->in_max = CONN_INPUT_MAX_DEFAULT;
	buf_init(&c->out);
	buf_init(&c->error);
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	c->tcp = tcp_nodelay(fd); /* output leaves a whole batch per send (see flush): nothing for Nagle to merge */
	peer_lookup(c);
	if (evloop_fd_set(loop, fd, EVLOOP_READ, conn_io, c) < 0) {
		buf_printf(&c->error, "cannot watch fd %d: %s", fd, strerror(errno));
		schedule_kick(c); /* reported from the loop */
	}
	return c;
}

struct conn *conn_connect(struct evloop *loop, const char *ip, unsigned port, conn_event_fn *fn, void *ctx)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_make(ip, port, &ss);
	int fd = len > 0 ? socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
	int err = len == 0 ? EINVAL : fd < 0 ? errno : 0;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		err = errno;
	if (fd < 0) {
		/* no socket: a placeholder fd that reports the error from the loop like any other */
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	struct conn *c = conn_create(loop, fd, fn, ctx);
	c->connecting = true;
	if (len > 0)
		peer_set(c, &ss);
	else {
		snprintf(c->peer, sizeof(c->peer), "%.*s", CONN_ADDR_MAX - 1, ip);
		c->loopback = false;
	}
	c->peer_port = port;
	(void)evloop_fd_events(loop, c->fd, EVLOOP_WRITE);
	if (err != 0 && c->error.len == 0) {
		buf_printf(&c->error, "connect to %s port %u: %s", c->peer, port, strerror(err));
		schedule_kick(c);
	}
	return c;
}

static void conn_teardown(struct conn *c)
{
	evloop_timer_stop(c->loop, &c->idle_timer);
	evloop_timer_stop(c->loop, &c->kick_timer);
	if (c->fd >= 0) {
		evloop_fd_remove(c->loop, c->fd);
		if (c->ssl != NULL && c->tls_state == CONN_TLS_ON && !c->ended) {
			(void)SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		close(c->fd);
		c->fd = -1;
	}
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	c->ended = true;
}

static void conn_free(struct conn *c)
{
	free(c->in);
	buf_free(&c->out);
	buf_free(&c->error);
	free(c);
}

void conn_destroy(struct conn **cp)
{
	struct conn *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	conn_teardown(c);
	if (c->busy > 0)
		c->free_pending = true;
	else
		conn_free(c);
}

void conn_set_input_max(struct conn *c, size_t max)
{
	if (max < CONN_INPUT_INITIAL)
		max = CONN_INPUT_INITIAL;
	if (max > CONN_INPUT_MAX_LIMIT)
		max = CONN_INPUT_MAX_LIMIT;
	if (max < c->in_cap)
		max = c->in_cap;
	c->in_max = max;
}

static void idle_fired(struct evloop *loop, struct evloop_timer *t, void *ctx);

static void idle_restart(struct conn *c)
{
	c->idle_progress = 0;
	if (c->idle_msecs > 0 && !c->ended)
		evloop_timer_start(c->loop, &c->idle_timer, c->idle_msecs, 0, idle_fired, c);
}

void conn_set_idle_timeout(struct conn *c, unsigned msecs)
{
	c->idle_msecs = msecs;
	if (msecs == 0)
		evloop_timer_stop(c->loop, &c->idle_timer);
	else
		idle_restart(c);
}

/* ---- events to the owner ---- */

static bool is_terminal(enum conn_event ev)
{
	return ev == CONN_EVENT_EOF || ev == CONN_EVENT_ERROR || ev == CONN_EVENT_CLOSED;
}

/* Calls the owner. Returns false when the conn must not be touched further in this dispatch. */
static bool emit(struct conn *c, enum conn_event ev)
{
	if (c->ended)
		return false;
	if (is_terminal(ev)) {
		c->ended = true;
		evloop_timer_stop(c->loop, &c->idle_timer);
		evloop_timer_stop(c->loop, &c->kick_timer);
		if (c->fd >= 0)
			(void)evloop_fd_events(c->loop, c->fd, 0);
	}
	c->fn(c, ev, c->ctx);
	return !c->free_pending && !c->ended;
}

static bool fail(struct conn *c, const char *fmt, ...) IX_PRINTF(2, 3);
static bool fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_reset(&c->error);
	buf_vprintf(&c->error, fmt, ap);
	va_end(ap);
	emit(c, CONN_EVENT_ERROR);
	return false;
}

static void idle_fired(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	struct conn *c = ctx;
	c->busy++;
	idle_restart(c);
	emit(c, CONN_EVENT_TIMEOUT);
	c->busy--;
	if (c->free_pending) {
		if (c->busy == 0)
			conn_free(c);
		return;
	}
	update_interest(c); /* the owner may have written a goodbye */
}

static const char *ssl_reason(struct buf *tmp)
{
	tls_append_errors(tmp);
	if (tmp->len == 0)
		buf_append_str(tmp, errno != 0 ? strerror(errno) : "connection closed");
	return buf_cstr(tmp);
}

/* ---- output ---- */

static size_t out_len(const struct conn *c)
{
	return c->out.len - c->out_start;
}

static void out_consumed(struct conn *c, size_t n)
{
	c->out_start += n;
	if (c->out_start == c->out.len) {
		buf_reset(&c->out);
		c->out_start = 0;
	} else if (c->out_start > 65536 && c->out_start > c->out.len / 2) {
		buf_consume(&c->out, c->out_start);
		c->out_start = 0;
	}
}

/* Sends queued output. Returns false if the connection failed (already reported). */
static bool flush(struct conn *c)
{
	bool progress = false;
	while (out_len(c) > 0) {
		const char *p = c->out.data + c->out_start;
		size_t len = out_len(c);
		if (c->tls_state == CONN_TLS_WAIT_FLUSH) {
			if (c->plain_left == 0)
				break; /* what was written after conn_start_tls waits for TLS */
			if (len > c->plain_left)
				len = c->plain_left;
		}
		if (c->tls_state == CONN_TLS_ON) {
			c->write_want_read = false;
			ERR_clear_error();
			int n = SSL_write(c->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
			if (n > 0) {
				out_consumed(c, (size_t)n);
				progress = true;
				continue;
			}
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE)
				break;
			if (e == SSL_ERROR_WANT_READ) {
				c->write_want_read = true;
				break;
			}
			struct buf tmp = BUF_INIT;
			fail(c, "TLS write failed: %s", ssl_reason(&tmp));
			buf_free(&tmp);
			return false;
		}
		if (c->tls_state == CONN_TLS_HANDSHAKE)
			break; /* written during the handshake: waits for TLS */
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(c->fd, p, len);
		if (n > 0) {
			out_consumed(c, (size_t)n);
			if (c->tls_state == CONN_TLS_WAIT_FLUSH)
				c->plain_left -= (size_t)n;
			progress = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return fail(c, "write failed: %s", n < 0 ? strerror(errno) : "no progress");
	}
	if (progress)
		idle_restart(c);
	return true;
}

void conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->ended || c->closing)
		return;
	buf_append(&c->out, data, len);
	if (c->busy == 0)
		update_interest(c); /* flushed when writable; inside a dispatch, when the callback returns */
}

void conn_write_str(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
	if (c->ended || c->closing)
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (c->busy == 0)
		update_interest(c);
}

size_t conn_output_len(const struct conn *c)
{
	return out_len(c);
}

void conn_close_after_flush(struct conn *c)
{
	if (c->ended)
		return;
	c->closing = true;
	schedule_kick(c);
}

/* ---- input ---- */

static size_t in_len(const struct conn *c)
{
	return c->in_end - c->in_start;
}

static void in_consumed(struct conn *c, size_t n)
{
	c->in_start += n;
	c->line_scanned = 0;
	if (c->in_start == c->in_end)
		c->in_start = c->in_end = 0;
}

static void idle_restart(struct conn *c);

/* The owner takes n bytes of input. The idle timer restarts only on progress: a line end among them, or
 * CONN_IDLE_PROGRESS_BYTES taken since the last restart (binary literals, BDAT). Bytes merely arriving do not
 * count, so a slow-loris peer that trickles a line a byte at a time is still closed by the idle timeout. */
static void owner_consumed(struct conn *c, size_t n)
{
	if (n == 0)
		return;
	bool line_end = memchr(c->in + c->in_start, '\n', n) != NULL;
	in_consumed(c, n);
	c->idle_progress += n;
	if (line_end || c->idle_progress >= CONN_IDLE_PROGRESS_BYTES)
		idle_restart(c);
}

/* Makes room at the end of the input buffer (moving unread bytes: only called between callbacks). Returns
 * the free space; 0 when in_max bytes are unread. */
static size_t in_room(struct conn *c)
{
	if (c->in == NULL) {
		c->in_cap = c->in_max < CONN_INPUT_INITIAL ? c->in_max : CONN_INPUT_INITIAL;
		c->in = xmalloc(c->in_cap);
	}
	if (c->in_end == c->in_cap && c->in_start > 0) {
		memmove(c->in, c->in + c->in_start, in_len(c));
		c->in_end -= c->in_start;
		c->in_start = 0;
	}
	if (c->in_end == c->in_cap && c->in_cap < c->in_max) {
		size_t cap = c->in_cap * 2 > c->in_max ? c->in_max : c->in_cap * 2;
		c->in = xrealloc(c->in, cap);
		c->in_cap = cap;
	}
	return c->in_cap - c->in_end;
}

/* Reads what the socket (or TLS) has, up to the buffer limit. Returns bytes read, or -1 after a failure
 * (reported). Sets eof_seen at end of stream. */
static ssize_t fill(struct conn *c)
{
	ssize_t total = 0;
	c->read_want_write = false;
	while (!c->eof_seen) {
		size_t room = in_room(c);
		if (room == 0)
			break;
		char *p = c->in + c->in_end;
		if (c->tls_state == CONN_TLS_ON) {
			ERR_clear_error();
			errno = 0;
			int n = SSL_read(c->ssl, p, room > INT_MAX ? INT_MAX : (int)room);
			if (n > 0) {
				c->in_end += (size_t)n;
				total += n;
				continue;
			}
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				break;
			if (e == SSL_ERROR_WANT_WRITE) {
				c->read_want_write = true;
				break;
			}
			if (e == SSL_ERROR_ZERO_RETURN) {
				c->eof_seen = true;
				break;
			}
			if (e == SSL_ERROR_SYSCALL && errno == 0) {
				c->eof_seen = true;
				break;
			}
			struct buf tmp = BUF_INIT;
			fail(c, "TLS read failed: %s", ssl_reason(&tmp));
			buf_free(&tmp);
			return -1;
		}
		ssize_t n = read(c->fd, p, room);
		if (n > 0) {
			c->in_end += (size_t)n;
			total += n;
			continue;
		}
		if (n == 0) {
			c->eof_seen = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		fail(c, "read failed: %s", strerror(errno));
		return -1;
	}
	return total;
}

int conn_read_line(struct conn *c, size_t max, unsigned flags, const char **line_r, size_t *len_r)
{
	if (c->skipping) {
		const char *nl = in_len(c) > 0 ? memchr(c->in + c->in_start, '\n', in_len(c)) : NULL;
		if (nl == NULL) {
			owner_consumed(c, in_len(c));
			return CONN_LINE_MORE;
		}
		owner_consumed(c, (size_t)(nl - (c->in + c->in_start)) + 1);
		c->skipping = false;
	}
	size_t len = in_len(c);
	if (len == 0)
		return CONN_LINE_MORE;
	const char *data = c->in + c->in_start;
	/* a terminator must start within max + 2 bytes (content, CR, LF) */
	size_t limit = max > SIZE_MAX - 2 ? SIZE_MAX : max + 2;
	size_t scan_end = len < limit ? len : limit;
	size_t pos = c->line_scanned;
	while (pos < scan_end) {
		const char *nl = memchr(data + pos, '\n', scan_end - pos);
		if (nl == NULL)
			break;
		size_t idx = (size_t)(nl - data), content;
		if (idx > 0 && data[idx - 1] == '\r')
			content = idx - 1;
		else if (flags & CONN_LINE_BARE_LF)
			content = idx;
		else {
			pos = idx + 1; /* a bare LF is content */
			continue;
		}
		owner_consumed(c, idx + 1);
		if (content > max)
			return CONN_LINE_TOO_LONG;
		*line_r = data;
		*len_r = content;
		return CONN_LINE_OK;
	}
	/* remember how far we looked, minus a CR that may pair with an LF still to come */
	c->line_scanned = scan_end > 0 ? scan_end - 1 : 0;
	if (len >= limit || len >= c->in_max) {
		/* drop what we looked at; the rest of the line goes as it is found */
		owner_consumed(c, len >= limit ? limit : len);
		c->skipping = true;
		return CONN_LINE_TOO_LONG;
	}
	return CONN_LINE_MORE;
}

size_t conn_read_bytes(struct conn *c, size_t max, const char **data_r)
{
	size_t n = in_len(c);
	if (n > max)
		n = max;
	if (n == 0)
		return 0;
	*data_r = c->in + c->in_start;
	owner_consumed(c, n);
	return n;
}

size_t conn_input_peek(const struct conn *c, const char **data_r)
{
	*data_r = c->in != NULL ? c->in + c->in_start : "";
	return in_len(c);
}

void conn_input_consume(struct conn *c, size_t n)
{
	if (n > in_len(c))
		panic("conn_input_consume: %zu > %zu", n, in_len(c));
	owner_consumed(c, n);
}

size_t conn_input_len(const struct conn *c)
{
	return in_len(c);
}

void conn_pause_input(struct conn *c, bool paused)
{
	if (c->paused == paused)
		return;
	c->paused = paused;
	if (!paused && !c->ended && (in_len(c) > 0 || c->eof_seen))
		schedule_kick(c);
	else if (c->busy == 0)
		update_interest(c);
}

void conn_kick(struct conn *c)
{
	if (!c->ended)
		schedule_kick(c);
}

/* ---- TLS ---- */

int conn_start_tls(struct conn *c, struct tls_ctx *ctx, const char *host, size_t *discarded_r)
{
	if (c->tls_state != CONN_TLS_OFF || c->ended)
		return IX_EINVAL;
	size_t discarded = in_len(c);
	in_consumed(c, discarded);
	c->skipping = false;
	if (discarded_r != NULL)
		*discarded_r = discarded;
	c->ssl = tls_ssl_new(ctx, host);
	if (SSL_set_fd(c->ssl, c->fd) != 1)
		fatal("SSL_set_fd failed");
	c->plain_left = out_len(c);
	c->tls_state = CONN_TLS_WAIT_FLUSH;
	schedule_kick(c);
	return 0;
}

int conn_request_peer_cert(struct conn *c)
{
	if (c->tls_state != CONN_TLS_ON || c->ended || c->cert_wait ||
	    !tls_request_peer_cert(c->ssl, &c->cert_answered))
		return IX_EINVAL;
	c->cert_wait = true;
	schedule_kick(c); /* the next SSL_read sends the request */
	return IX_OK;
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls_state == CONN_TLS_ON;
}

bool conn_peer_fingerprint(const struct conn *c, char *hex)
{
	return c->tls_state == CONN_TLS_ON && !c->cert_wait && tls_peer_fingerprint(c->ssl, hex);
}

bool conn_channel_bindings(const struct conn *c, struct scram_cbind *cb_r)
{
	return c->tls_state == CONN_TLS_ON && tls_channel_bindings(c->ssl, cb_r);
}

const char *conn_tls_info(const struct conn *c)
{
	return c->tls_state == CONN_TLS_ON ? c->tls_info : "";
}

/* Returns true when the handshake is done and reported; false while it goes on or after a failure. */
static bool handshake(struct conn *c)
{
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->tls_state = CONN_TLS_ON;
		c->hs_want_write = false;
		snprintf(c->tls_info, sizeof(c->tls_info), "%s %s", SSL_get_version(c->ssl),
			 SSL_get_cipher_name(c->ssl));
		idle_restart(c);
		return emit(c, CONN_EVENT_TLS_READY);
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		c->hs_want_write = false;
		return false;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		c->hs_want_write = true;
		return false;
	}
	struct buf tmp = BUF_INIT;
	fail(c, "TLS handshake failed: %s", ssl_reason(&tmp));
	buf_free(&tmp);
	return false;
}

/* ---- dispatch ---- */

static void update_interest(struct conn *c)
{
	if (c->ended || c->fd < 0)
		return;
	bool r = false, w = false;
	if (c->connecting) {
		(void)evloop_fd_events(c->loop, c->fd, EVLOOP_WRITE);
		return;
	}
	switch (c->tls_state) {
	case CONN_TLS_HANDSHAKE:
		r = !c->hs_want_write;
		w = c->hs_want_write;
		break;
	case CONN_TLS_WAIT_FLUSH: w = c->plain_left > 0; break;
	case CONN_TLS_OFF:
	case CONN_TLS_ON:
		r = !c->eof_seen && (!c->paused || c->cert_wait) && !c->closing && in_len(c) < c->in_max;
		w = out_len(c) > 0 || c->read_want_write;
		if (c->write_want_read)
			r = true;
		break;
	}
	if (evloop_fd_events(c->loop, c->fd, (r ? EVLOOP_READ : 0) | (w ? EVLOOP_WRITE : 0)) < 0 && c->error.len == 0) {
		buf_printf(&c->error, "cannot watch fd: %s", strerror(errno));
		schedule_kick(c); /* reported from the loop */
	}
}

/* One dispatch: handshake, output, input, owner events. Returns early once the conn has ended. */
static void conn_step(struct conn *c, unsigned events)
{
	if (c->ended)
		return;
	if (c->error.len > 0 && !c->ended) {
		emit(c, CONN_EVENT_ERROR); /* set up failed in conn_create */
		return;
	}
	if (c->connecting) {
		if (!(events & EVLOOP_WRITE))
			return;
		int err = 0;
		socklen_t elen = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err != 0) {
			fail(c, "connect to %s port %u: %s", c->peer, c->peer_port, strerror(err));
			return;
		}
		c->connecting = false;
		idle_restart(c);
		if (!emit(c, CONN_EVENT_CONNECTED))
			return;
	}
	if (c->tls_state == CONN_TLS_HANDSHAKE) {
		if (!handshake(c))
			return;
		c->kicked = true; /* TLS data may have come with the last handshake flight */
	}
	if (!flush(c))
		return;
	if (c->tls_state == CONN_TLS_WAIT_FLUSH) {
		if (c->plain_left > 0)
			return;
		c->tls_state = CONN_TLS_HANDSHAKE;
		if (!handshake(c))
			return;
		c->kicked = true; /* TLS data may have come with the last handshake flight */
	}
	bool want_read = (events & EVLOOP_READ) || c->kicked || (c->read_want_write && (events & EVLOOP_WRITE)) ||
			 (c->tls_state == CONN_TLS_ON && (events & EVLOOP_WRITE) && SSL_pending(c->ssl) > 0);
	bool took_input = false;
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t got = 0;
		if (want_read && (!c->paused || c->cert_wait) && !c->closing) {
			got = fill(c);
			if (got < 0)
				return;
			took_input |= got > 0;
		}
		if (c->cert_wait && c->cert_answered) {
			c->cert_wait = false;
			if (!emit(c, CONN_EVENT_TLS_READY))
				return;
		}
		if ((got > 0 || c->kicked) && !c->paused && !c->closing && in_len(c) > 0) {
			c->kicked = false;
			if (!emit(c, CONN_EVENT_INPUT))
				return;
		}
		c->kicked = false;
		/* TLS may hold decrypted records our buffer had no room for: the socket will not wake us for them */
		if (c->tls_state == CONN_TLS_ON && !c->paused && !c->closing && !c->eof_seen &&
		    SSL_pending(c->ssl) > 0 && in_len(c) < c->in_max && got > 0) {
			want_read = true;
			continue;
		}
		break;
	}
	/* The owner still waits for the rest of what the peer is sending and has no reply to carry our ACK: send it
	 * now, or a peer under Nagle holds its next small write (the literal's CRLF, the end of DATA) for our
	 * delayed-ACK timer. A paused owner is answering; its reply carries the ACK. */
	if (took_input && c->tcp && out_len(c) == 0 && !c->paused && !c->closing && !c->eof_seen)
		tcp_quickack(c->fd);
	if (!flush(c))
		return;
	if (c->closing && out_len(c) == 0) {
		if (c->tls_state == CONN_TLS_ON) {
			(void)SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		emit(c, CONN_EVENT_CLOSED);
		return;
	}
	if (c->eof_seen && (!c->paused || c->cert_wait) && !c->closing)
		emit(c, CONN_EVENT_EOF);
}

static void conn_process(struct conn *c, unsigned events)
{
	c->busy++;
	conn_step(c, events);
	c->busy--;
	if (c->free_pending) {
		if (c->busy == 0)
			conn_free(c);
		return;
	}
	update_interest(c);
}

/* ---- peer, state ---- */

const char *conn_peer(const struct conn *c)
{
	return c->peer;
}

unsigned conn_peer_port(const struct conn *c)
{
	return c->peer_port;
}

bool conn_peer_is_loopback(const struct conn *c)
{
	return c->loopback;
}

const char *conn_error(const struct conn *c)
{
	return buf_cstr(&c->error);
}

int conn_fd(const struct conn *c)
{
	return c->fd;
}

/* ---- listener ---- */

struct listener {
	struct evloop *loop;
	int fd;
	unsigned port;
	unsigned max_conns, active;
	bool backoff;
	listener_accept_fn *fn;
	void *ctx;
	struct evloop_timer retry;
	char *busy_reply; /* NULL: pause accepting when full */
	size_t busy_len;
	unsigned long turned_away;
};

static bool listener_full(const struct listener *l)
{
	return l->max_conns != 0 && l->active >= l->max_conns;
}

static void listener_update(struct listener *l)
{
	bool on = !l->backoff && (!listener_full(l) || l->busy_reply != NULL);
	(void)evloop_fd_events(l->loop, l->fd, on ? EVLOOP_READ : 0);
}

static void listener_retry(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	struct listener *l = ctx;
	l->backoff = false;
	listener_update(l);
}

static void listener_ready(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)events;
	struct listener *l = ctx;
	while (!listener_full(l) || l->busy_reply != NULL) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn("accept on port %u: %s; pausing", l->port, strerror(errno));
				l->backoff = true;
				evloop_timer_start(loop, &l->retry, LISTENER_RETRY_MSECS, 0, listener_retry, l);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_warn("accept on port %u: %s", l->port, strerror(errno));
			}
			break;
		}
		if (listener_full(l)) {
			/* over the cap: a temporary-failure greeting, then closed (best effort, never blocks) */
			(void)send(cfd, l->busy_reply, l->busy_len, MSG_DONTWAIT | MSG_NOSIGNAL);
			close(cfd);
			if (l->turned_away++ == 0)
				log_warn("port %u: %u connections live, turning new ones away", l->port, l->active);
			continue;
		}
		l->active++;
		l->fn(l, cfd, l->ctx);
	}
	listener_update(l);
}

int listener_socket(const char *addr, unsigned port, int *fd_r, struct buf *error_r)
{
	struct sockaddr_storage ss;
	const char *a = addr != NULL ? addr : "::";
	socklen_t sslen = sockaddr_make(a, port, &ss);
	if (sslen == 0) {
		buf_printf(error_r, "not a numeric IP address or bad port: %.64s port %u", a, port);
		return IX_EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		buf_printf(error_r, "socket: %s", strerror(errno));
		return IX_EIO;
	}
	int one = 1, zero = 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6 && addr == NULL)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, LISTENER_BACKLOG) < 0) {
		buf_printf(error_r, "cannot listen on %s port %u: %s", a, port, strerror(errno));
		close(fd);
		return IX_EIO;
	}
	*fd_r = fd;
	return IX_OK;
}

int listener_create(struct evloop *loop, const char *addr, unsigned port, unsigned max_conns, listener_accept_fn *fn,
		    void *ctx, struct listener **l_r, struct buf *error_r)
{
	int fd, ret = listener_socket(addr, port, &fd, error_r);
	if (ret != IX_OK)
		return ret;
	struct sockaddr_storage bound = { 0 };
	socklen_t blen = sizeof(bound);
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
		port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
							: ((struct sockaddr_in6 *)&bound)->sin6_port);
	struct listener *l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->fd = fd;
	l->port = port;
	l->max_conns = max_conns;
	l->fn = fn;
	l->ctx = ctx;
	if (evloop_fd_set(loop, fd, EVLOOP_READ, listener_ready, l) < 0) {
		buf_printf(error_r, "cannot watch listener: %s", strerror(errno));
		close(fd);
		free(l);
		return IX_EIO;
	}
	*l_r = l;
	return 0;
}

void listener_destroy(struct listener **lp)
{
	struct listener *l = *lp;
	if (l == NULL)
		return;
	evloop_timer_stop(l->loop, &l->retry);
	evloop_fd_remove(l->loop, l->fd);
	close(l->fd);
	free(l->busy_reply);
	free(l);
	*lp = NULL;
}

unsigned listener_port(const struct listener *l)
{
	return l->port;
}

unsigned listener_active(const struct listener *l)
{
	return l->active;
}

void listener_release(struct listener *l)
{
	if (l->active > 0)
		l->active--;
	listener_update(l);
}

void listener_set_busy_reply(struct listener *l, const char *reply)
{
	free(l->busy_reply);
	l->busy_reply = NULL;
	l->busy_len = 0;
	if (reply != NULL) {
		l->busy_len = strnlen(reply, LISTENER_BUSY_REPLY_MAX);
		l->busy_reply = xstrndup(reply, l->busy_len);
	}
	listener_update(l);
}

void listener_set_max_conns(struct listener *l, unsigned max_conns)
{
	l->max_conns = max_conns;
	listener_update(l);
}

unsigned long listener_turned_away(const struct listener *l)
{
	return l->turned_away;
}
