/* proxy.c - the IMAP/POP3/ManageSieve proxy to a user's home server: log in at the backend (greeting, STARTTLS off loopback,
 * SASL EXTERNAL for the user with this server's certificate), then pipe bytes both ways with back-pressure until either side closes. */
#include "transport/login/proxy.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/login/proxy_parse.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The tags the proxy uses at an IMAP backend. */
#define TAG_STARTTLS "P0"
#define TAG_LOGIN "P1"
/* How much of a backend's unexpected line goes into the log. */
#define LOG_LINE_MAX 200

enum proxy_state {
	P_CONNECTING, /* TCP connect under way */
	P_GREETING,   /* waiting for the greeting */
	P_STARTTLS,   /* STARTTLS / STLS sent */
	P_TLS,        /* TLS handshake with the backend */
	P_LOGIN,      /* login sent */
	P_PIPE,       /* logged in: bytes are copied both ways */
	P_CLOSING,    /* the backend is gone; the client's output is being flushed */
	P_DONE,       /* finished: the owner destroys us */
};

struct proxy {
	struct evloop *loop;
	struct conn *client, *backend;
	proxy_fn *fn;
	void *ctx;
	enum proxy_proto proto;
	enum proxy_state st;
	struct proxy_backend be;
	char *user;
	struct tls_ctx *tls;
	bool need_tls;
	bool tls_done; /* ManageSieve: TLS is up, the backend sends its capabilities again before the login */
	unsigned idle_ms, login_ms;
	struct evloop_timer timer;   /* the login deadline, then the back-pressure poll */
	bool up_paused, down_paused; /* client input / backend input stopped because the other side is full */
	unsigned long long up, down; /* bytes client -> backend, backend -> client while piping */
	unsigned long long start_usec;
	const char *end_reason;
	struct buf why;   /* a failure found inside proxy_start, reported from the loop */
	struct buf reply; /* the backend's login answer handed to the callback */
};

/* ---- backends ---- */

const char *proxy_proto_name(enum proxy_proto proto)
{
	return proto == PROXY_POP3 ? "POP3" : proto == PROXY_SIEVE ? "ManageSieve" : "IMAP";
}

int proxy_backend_resolve(const char *host, unsigned port, struct proxy_backend *b_r, struct buf *error_r)
{
	memset(b_r, 0, sizeof(*b_r));
	if (host == NULL || host[0] == '\0' || strlen(host) > PROXY_HOST_MAX || port == 0 || port > 65535) {
		buf_printf(error_r, "the home server has no usable host name or port (%s port %u)",
			   host != NULL ? host : "(none)", port);
		return IX_EINVAL;
	}
	struct addrinfo hints = { 0 }, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		buf_printf(error_r, "cannot resolve the home server %s: %s", host, gai_strerror(rc));
		return IX_ENOTFOUND;
	}
	const struct addrinfo *pick = NULL;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && (pick == NULL || pick->ai_family != AF_INET))
			pick = ai;
		else if (ai->ai_family == AF_INET6 && pick == NULL)
			pick = ai;
	}
	int ret = IX_ENOTFOUND;
	if (pick != NULL) {
		const void *addr = pick->ai_family == AF_INET
					   ? (const void *)&((const struct sockaddr_in *)pick->ai_addr)->sin_addr
					   : (const void *)&((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
		if (inet_ntop(pick->ai_family, addr, b_r->ip, sizeof(b_r->ip)) != NULL)
			ret = 0;
	}
	freeaddrinfo(res);
	if (ret != 0) {
		buf_printf(error_r, "the home server %s has no IPv4 or IPv6 address", host);
		return ret;
	}
	snprintf(b_r->host, sizeof(b_r->host), "%s", host);
	b_r->port = port;
	b_r->tls = true;
	return 0;
}

/* ---- the end ---- */

/* Reports a finished result; p must not be touched afterwards (the owner may have destroyed it). */
static void finish(struct proxy *p, enum proxy_result result, const char *reply)
{
	p->st = P_DONE;
	evloop_timer_stop(p->loop, &p->timer);
	p->fn(p, result, reply, p->ctx);
}

static void unavailable(struct proxy *p, const char *fmt, ...) IX_PRINTF(2, 3);
static void unavailable(struct proxy *p, const char *fmt, ...)
{
	struct buf why = BUF_INIT;
	buf_printf(&why, "%s (%s port %u): ", p->be.host, p->be.ip, p->be.port);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&why, fmt, ap);
	va_end(ap);
	buf_reset(&p->reply);
	buf_append(&p->reply, why.data, why.len);
	buf_free(&why);
	finish(p, PROXY_UNAVAILABLE, buf_cstr(&p->reply));
}

/* The piped session is over: one log line with what went through. */
static void ended(struct proxy *p, const char *reason)
{
	unsigned long long secs = (evloop_now_usec(p->loop) - p->start_usec) / 1000000u;
	log_info(
		"proxy %s from %s to %s (%s port %u%s) ended (%s) after %llu s: %llu bytes from the client, %llu bytes "
		"to the client",
		p->user, conn_peer(p->client), p->be.host, p->be.ip, p->be.port, p->need_tls ? ", TLS" : "",
		p->end_reason != NULL ? p->end_reason : reason, secs, p->up, p->down);
	finish(p, PROXY_ENDED, "");
}

/* Stops talking to the backend and lets the client's queued output go out; CLOSED (or a second TIMEOUT) ends it. */
static void close_pipe(struct proxy *p, const char *reason)
{
	if (p->end_reason == NULL)
		p->end_reason = reason;
	conn_destroy(&p->backend);
	evloop_timer_stop(p->loop, &p->timer);
	p->st = P_CLOSING;
	conn_close_after_flush(p->client);
}

/* ---- the pipe ---- */

static void drain_poll(struct evloop *loop, struct evloop_timer *timer, void *ctx);

/* Copies what from has buffered to to, while to has less than PROXY_PIPE_MAX queued; above that, from's input is
 * paused until to has drained to half (drain_poll). */
static void pump(struct proxy *p, struct conn *from, struct conn *to, unsigned long long *count, bool *paused)
{
	for (;;) {
		size_t queued = conn_output_len(to);
		if (queued >= PROXY_PIPE_MAX) {
			if (!*paused) {
				*paused = true;
				conn_pause_input(from, true);
				if (!evloop_timer_pending(&p->timer))
					evloop_timer_start(p->loop, &p->timer, PROXY_DRAIN_POLL_MS, 0, drain_poll, p);
			}
			return;
		}
		const char *data;
		size_t n = conn_read_bytes(from, PROXY_PIPE_MAX - queued, &data);
		if (n == 0)
			return;
		conn_write(to, data, n);
		*count += n;
	}
}

static void drain_poll(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)timer;
	struct proxy *p = ctx;
	if (p->st != P_PIPE)
		return;
	if (p->up_paused && conn_output_len(p->backend) <= PROXY_PIPE_MAX / 2) {
		p->up_paused = false;
		conn_pause_input(p->client, false); /* buffered input is delivered as INPUT from the loop */
	}
	if (p->down_paused && conn_output_len(p->client) <= PROXY_PIPE_MAX / 2) {
		p->down_paused = false;
		conn_pause_input(p->backend, false);
	}
	if (p->up_paused || p->down_paused)
		evloop_timer_start(loop, &p->timer, PROXY_DRAIN_POLL_MS, 0, drain_poll, p);
}

static void logged_in(struct proxy *p, const char *reply, size_t len)
{
	buf_reset(&p->reply);
	buf_append(&p->reply, reply, len);
	evloop_timer_stop(p->loop, &p->timer);
	p->st = P_PIPE;
	p->start_usec = evloop_now_usec(p->loop);
	conn_set_idle_timeout(p->backend, 0); /* the client connection's idle timeout covers the pipe */
	conn_set_idle_timeout(p->client, p->idle_ms);
	p->fn(p, PROXY_LOGGED_IN, buf_cstr(&p->reply), p->ctx);
	conn_pause_input(p->client, false); /* commands the client pipelined after its login go through now */
}

/* ---- logging in at the backend ---- */

/* SASL EXTERNAL (RFC 4422 appendix A) with the user as authorisation identity, in the initial response: the
 * backend takes it from a server of the organisation only, known by the client certificate TLS presented. */
static void send_login(struct proxy *p)
{
	struct buf cmd = BUF_INIT;
	buf_append_str(&cmd, p->proto == PROXY_IMAP    ? TAG_LOGIN " AUTHENTICATE EXTERNAL "
			     : p->proto == PROXY_SIEVE ? "AUTHENTICATE \"EXTERNAL\" \""
						       : "AUTH EXTERNAL ");
	base64_encode(p->user, strlen(p->user), &cmd);
	buf_append_str(&cmd, p->proto == PROXY_SIEVE ? "\"\r\n" : "\r\n");
	conn_write(p->backend, cmd.data, cmd.len);
	buf_free(&cmd);
	p->st = P_LOGIN;
}

/* What a login line handler did. */
enum line_result {
	LINE_MORE = 1,      /* read the next line */
	LINE_STOP = 0,      /* stop reading lines: TLS starts, or the login succeeded (p->st is P_PIPE) */
	LINE_FINISHED = -1, /* the proxy reported a finished result: p must not be touched */
};

static enum line_result start_tls(struct proxy *p)
{
	p->st = P_TLS;
	if (conn_start_tls(p->backend, p->tls, p->be.host, NULL) == 0)
		return LINE_STOP;
	unavailable(p, "TLS could not start");
	return LINE_FINISHED;
}

/* The backend's answer to the login (status: PROXY_STATUS_NONE when it is no answer to our command): signed in
 * with resp the response to relay, refused with resp the reason, or anything else: unavailable. line is logged. */
static enum line_result login_answered(struct proxy *p, enum proxy_status status, const char *resp, size_t resp_len,
				       const char *line, size_t len)
{
	if (status == PROXY_STATUS_OK) {
		logged_in(p, resp, resp_len);
		return LINE_STOP;
	}
	if (status == PROXY_STATUS_NO) {
		buf_reset(&p->reply);
		buf_append(&p->reply, resp, resp_len);
		finish(p, PROXY_REFUSED, buf_cstr(&p->reply));
		return LINE_FINISHED;
	}
	unavailable(p, "login answered %.*s", (int)(len > LOG_LINE_MAX ? LOG_LINE_MAX : len), line);
	return LINE_FINISHED;
}

/* One IMAP line during the login. */
static enum line_result imap_line(struct proxy *p, const char *line, size_t len)
{
	struct proxy_imap_reply r;
	if (!proxy_imap_reply_parse(line, len, &r)) {
		unavailable(p, "not an IMAP response: %.*s", (int)(len > LOG_LINE_MAX ? LOG_LINE_MAX : len), line);
		return LINE_FINISHED;
	}
	bool ours = r.kind == PROXY_IMAP_TAGGED &&
		    r.tag_len == strlen(p->st == P_STARTTLS ? TAG_STARTTLS : TAG_LOGIN) &&
		    memcmp(r.tag, p->st == P_STARTTLS ? TAG_STARTTLS : TAG_LOGIN, r.tag_len) == 0;
	switch (p->st) {
	case P_GREETING:
		if (r.kind != PROXY_IMAP_UNTAGGED || r.status != PROXY_STATUS_OK) {
			unavailable(p, "greeting %.*s", (int)(len > LOG_LINE_MAX ? LOG_LINE_MAX : len), line);
			return LINE_FINISHED;
		}
		if (!p->need_tls) {
			send_login(p);
			return LINE_MORE;
		}
		if (r.code != NULL && proxy_imap_has_capability(r.code, r.code_len, "IMAP4rev1") &&
		    !proxy_imap_has_capability(r.code, r.code_len, "STARTTLS")) {
			unavailable(p, "it offers no STARTTLS, which a server off loopback must");
			return LINE_FINISHED;
		}
		conn_write_str(p->backend, TAG_STARTTLS " STARTTLS\r\n");
		p->st = P_STARTTLS;
		return LINE_MORE;
	case P_STARTTLS:
		if (r.kind == PROXY_IMAP_UNTAGGED)
			return LINE_MORE;
		if (ours && r.status == PROXY_STATUS_OK) {
			return start_tls(p);
		}
		unavailable(p, "STARTTLS refused: %.*s", (int)(len > LOG_LINE_MAX ? LOG_LINE_MAX : len), line);
		return LINE_FINISHED;
	case P_LOGIN:
		if (r.kind == PROXY_IMAP_UNTAGGED)
			return LINE_MORE;
		return login_answered(p, ours ? r.status : PROXY_STATUS_NONE, r.resp, r.resp_len, line, len);
	default: return LINE_STOP;
	}
}

/* One POP3 line during the login. */
static enum line_result pop3_line(struct proxy *p, const char *line, size_t len)
{
	enum proxy_status status;
	const char *text;
	size_t tlen;
	int shown = (int)(len > LOG_LINE_MAX ? LOG_LINE_MAX : len);
	if (!proxy_pop3_reply_parse(line, len, &status, &text, &tlen)) {
		unavailable(p, "not a POP3 response: %.*s", shown, line);
		return LINE_FINISHED;
	}
	switch (p->st) {
	case P_GREETING:
		if (status != PROXY_STATUS_OK) {
			unavailable(p, "greeting %.*s", shown, line);
			return LINE_FINISHED;
		}
		if (!p->need_tls) {
			send_login(p);
			return LINE_MORE;
		}
		conn_write_str(p->backend, "STLS\r\n");
		p->st = P_STARTTLS;
		return LINE_MORE;
	case P_STARTTLS:
		if (status == PROXY_STATUS_OK) {
			return start_tls(p);
		}
		unavailable(p, "STLS refused: %.*s", shown, line);
		return LINE_FINISHED;
	case P_LOGIN: return login_answered(p, status, line, len, line, len);
	default: return LINE_STOP;
	}
}

/* One ManageSieve line during the login: the greeting is the capability list closed by OK, and so is what the
 * backend says again once TLS is up (RFC 5804 2.2). */
static enum line_result sieve_line(struct proxy *p, const char *line, size_t len)
{
	enum proxy_status status;
	const char *text;
	size_t tlen;
	int shown = (int)(len > LOG_LINE_MAX ? LOG_LINE_MAX : len);
	if (!proxy_sieve_reply_parse(line, len, &status, &text, &tlen)) {
		unavailable(p, "not a ManageSieve response: %.*s", shown, line);
		return LINE_FINISHED;
	}
	if (status == PROXY_STATUS_NONE && p->st == P_GREETING)
		return LINE_MORE; /* a capability */
	switch (p->st) {
	case P_GREETING:
		if (status != PROXY_STATUS_OK) {
			unavailable(p, "greeting %.*s", shown, line);
			return LINE_FINISHED;
		}
		if (!p->need_tls || p->tls_done) {
			send_login(p);
			return LINE_MORE;
		}
		conn_write_str(p->backend, "STARTTLS\r\n");
		p->st = P_STARTTLS;
		return LINE_MORE;
	case P_STARTTLS:
		if (status == PROXY_STATUS_OK)
			return start_tls(p);
		unavailable(p, "STARTTLS refused: %.*s", shown, line);
		return LINE_FINISHED;
	case P_LOGIN: return login_answered(p, status, line, len, line, len);
	default: return LINE_STOP;
	}
}

static void backend_lines(struct proxy *p)
{
	while (p->st == P_GREETING || p->st == P_STARTTLS || p->st == P_LOGIN) {
		const char *line;
		size_t len;
		int r = conn_read_line(p->backend, PROXY_LINE_MAX, 0, &line, &len);
		if (r == CONN_LINE_MORE)
			return;
		if (r == CONN_LINE_TOO_LONG) {
			unavailable(p, "an answer longer than %d bytes", PROXY_LINE_MAX);
			return;
		}
		enum line_result lr = p->proto == PROXY_IMAP   ? imap_line(p, line, len)
				      : p->proto == PROXY_POP3 ? pop3_line(p, line, len)
							       : sieve_line(p, line, len);
		if (lr == LINE_FINISHED)
			return;
		if (lr == LINE_STOP)
			break;
	}
	if (p->st == P_PIPE)
		pump(p, p->backend, p->client, &p->down, &p->down_paused);
}

static void login_timeout(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	struct proxy *p = ctx;
	if (p->st == P_PIPE || p->st == P_CLOSING || p->st == P_DONE)
		return;
	if (p->why.len > 0)
		unavailable(p, "%s", buf_cstr(&p->why));
	else
		unavailable(p, "no answer to the login within %u ms", p->login_ms);
}

static void backend_event(struct conn *c, enum conn_event ev, void *ctx)
{
	(void)c;
	struct proxy *p = ctx;
	switch (ev) {
	case CONN_EVENT_CONNECTED:
		if (p->st == P_CONNECTING)
			p->st = P_GREETING;
		break;
	case CONN_EVENT_INPUT:
		if (p->st == P_PIPE)
			pump(p, p->backend, p->client, &p->down, &p->down_paused);
		else
			backend_lines(p);
		break;
	case CONN_EVENT_TLS_READY:
		if (p->st == P_TLS && p->proto == PROXY_SIEVE) {
			p->tls_done = true;
			p->st = P_GREETING;
			backend_lines(p);
		} else if (p->st == P_TLS) {
			send_login(p);
		}
		break;
	case CONN_EVENT_TIMEOUT: break;
	case CONN_EVENT_EOF:
	case CONN_EVENT_ERROR:
	case CONN_EVENT_CLOSED:
		if (p->st == P_PIPE) {
			close_pipe(p, ev == CONN_EVENT_EOF ? "the server closed" : "server connection failed");
		} else if (p->st != P_CLOSING && p->st != P_DONE) {
			const char *err = conn_error(p->backend);
			unavailable(p, "%s",
				    ev == CONN_EVENT_ERROR && err[0] != '\0' ? err : "it closed the connection");
		}
		break;
	}
}

/* ---- the session's side ---- */

void proxy_client_event(struct proxy *p, enum conn_event ev)
{
	switch (ev) {
	case CONN_EVENT_INPUT:
		if (p->st == P_PIPE)
			pump(p, p->client, p->backend, &p->up, &p->up_paused);
		break;
	case CONN_EVENT_TIMEOUT:
		if (p->st == P_PIPE)
			close_pipe(p, "idle");
		else if (p->st == P_CLOSING)
			ended(p, "idle");
		break; /* during the login the login deadline comes first */
	case CONN_EVENT_TLS_READY:
	case CONN_EVENT_CONNECTED: break;
	case CONN_EVENT_EOF:
	case CONN_EVENT_ERROR:
	case CONN_EVENT_CLOSED:
		if (p->st == P_PIPE || p->st == P_CLOSING) {
			ended(p, ev == CONN_EVENT_EOF      ? "the client closed"
				 : ev == CONN_EVENT_CLOSED ? "closed"
							   : "client connection failed");
		} else if (p->st != P_DONE) {
			log_info("proxy %s from %s to %s: the client left during the login", p->user,
				 conn_peer(p->client), p->be.host);
			finish(p, PROXY_ENDED, "");
		}
		break;
	}
}

bool proxy_piping(const struct proxy *p)
{
	return p->st == P_PIPE || p->st == P_CLOSING;
}

struct proxy *proxy_start(struct evloop *loop, struct conn *client, const struct proxy_login *login, proxy_fn *fn,
			  void *ctx)
{
	struct proxy *p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->client = client;
	p->fn = fn;
	p->ctx = ctx;
	p->proto = login->proto;
	p->be = *login->backend;
	p->user = xstrdup(login->user);
	p->tls = login->tls;
	p->idle_ms = login->idle_timeout_msecs;
	p->login_ms = login->login_timeout_msecs != 0 ? login->login_timeout_msecs : PROXY_LOGIN_TIMEOUT_MS;
	p->need_tls = p->be.tls;
	p->st = P_CONNECTING;
	if (p->need_tls && p->tls == NULL) {
		/* reported from the loop, never from inside this call */
		buf_append_str(&p->why, "it needs TLS (not on loopback) and no TLS client context is available");
		evloop_timer_start(loop, &p->timer, 0, 0, login_timeout, p);
		return p;
	}
	p->backend = conn_connect(loop, p->be.ip, p->be.port, backend_event, p);
	evloop_timer_start(loop, &p->timer, p->login_ms, 0, login_timeout, p);
	return p;
}

void proxy_destroy(struct proxy **pp)
{
	struct proxy *p = *pp;
	if (p == NULL)
		return;
	evloop_timer_stop(p->loop, &p->timer);
	conn_destroy(&p->backend);
	free(p->user);
	buf_free(&p->why);
	buf_free(&p->reply);
	free(p);
	*pp = NULL;
}
