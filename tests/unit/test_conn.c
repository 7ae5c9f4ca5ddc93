/* test_conn.c - unit tests for transport/conn: line splitting byte by byte, overlong lines, raw bytes, EOF,
 * close after flush, idle timeout, a real loopback TLS client and server, STARTTLS injection, the listener cap. */
#include "test.h"
#include "conn.h"
#include "err.h"
#include "tls.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Rounds of the loop a test may take before it gives up (each round waits at most ROUND_MSECS). */
#define MAX_ROUNDS 400
#define ROUND_MSECS 25

/* One side of a test connection: lines seen (joined with '|'), events seen, and an optional behaviour. */
struct peer {
	struct conn *conn;
	struct buf lines;
	size_t max_line;
	unsigned line_flags;
	int too_long, eof, error, timeout, closed, tls_ready;
	size_t discarded;
	struct tls_ctx *starttls_ctx; /* server: answer "STARTTLS" with 220 and start TLS */
	bool client_starttls;         /* client: after "220 go", start TLS */
	struct tls_ctx *client_ctx;
	bool echo;                    /* echo every line back as "> line" */
	bool pause_after_line;
	struct buf raw;               /* raw byte mode when raw_want > 0 */
	size_t raw_want;
};

static void peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->lines);
	buf_init(&p->raw);
	p->max_line = 100;
}

static void peer_free(struct peer *p)
{
	conn_destroy(&p->conn);
	buf_free(&p->lines);
	buf_free(&p->raw);
}

static void on_event(struct conn *c, enum conn_event ev, void *ctx)
{
	struct peer *p = ctx;
	switch (ev) {
	case CONN_EVENT_INPUT:
		break;
	case CONN_EVENT_TLS_READY:
		p->tls_ready++;
		return;
	case CONN_EVENT_EOF:
		p->eof++;
		return;
	case CONN_EVENT_ERROR:
		p->error++;
		return;
	case CONN_EVENT_TIMEOUT:
		p->timeout++;
		return;
	case CONN_EVENT_CLOSED:
		p->closed++;
		conn_destroy(&p->conn); /* destroying from the callback is allowed */
		return;
	}
	while (p->raw_want > 0) {
		const char *data;
		size_t n = conn_read_bytes(c, p->raw_want, &data);
		if (n == 0)
			return;
		buf_append(&p->raw, data, n);
		p->raw_want -= n;
	}
	for (;;) {
		const char *line;
		size_t len;
		int r = conn_read_line(c, p->max_line, p->line_flags, &line, &len);
		if (r == CONN_LINE_MORE)
			return;
		if (r == CONN_LINE_TOO_LONG) {
			p->too_long++;
			buf_append_str(&p->lines, "<long>|");
			continue;
		}
		buf_append(&p->lines, line, len);
		buf_append_char(&p->lines, '|');
		if (p->echo) {
			conn_write_str(c, "> ");
			conn_write(c, line, len);
			conn_write_str(c, "\r\n");
		}
		if (p->starttls_ctx != NULL && len == 8 && memcmp(line, "STARTTLS", 8) == 0) {
			conn_write_str(c, "220 go\r\n");
			if (conn_start_tls(c, p->starttls_ctx, NULL, &p->discarded) != 0)
				p->error++;
			return;
		}
		if (p->client_starttls && len == 6 && memcmp(line, "220 go", 6) == 0) {
			if (conn_start_tls(c, p->client_ctx, "localhost", &p->discarded) != 0)
				p->error++;
			return;
		}
		if (p->pause_after_line) {
			conn_pause_input(c, true);
			return;
		}
	}
}

static int run_until(struct evloop *loop, const int *flag, int want)
{
	for (int i = 0; i < MAX_ROUNDS && *flag < want; i++) {
		if (evloop_run_once(loop, ROUND_MSECS) < 0)
			return -1;
	}
	return *flag >= want ? 0 : -1;
}

static void run_rounds(struct evloop *loop, int n)
{
	for (int i = 0; i < n; i++)
		(void)evloop_run_once(loop, 5);
}

static void lines_byte_by_byte(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	int sv[2];
	test_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct peer p;
	peer_init(&p);
	p.conn = conn_create(loop, sv[0], on_event, &p);
	test_assert(conn_peer_is_loopback(p.conn));
	test_assert_str(conn_peer(p.conn), "local");
	static const char input[] = "HELO a\r\nbare\nlf\r\n\r\nx\ry\r\nlast\r\n";
	for (size_t i = 0; i < sizeof(input) - 1; i++) {
		test_assert(write(sv[1], input + i, 1) == 1);
		test_assert(evloop_run_once(loop, 1000) >= 1);
	}
	/* strict CRLF: the bare LF stays in the line; a bare CR is content too */
	test_assert_str(buf_cstr(&p.lines), "HELO a|bare\nlf||x\ry|last|");
	test_assert(conn_input_len(p.conn) == 0);
	/* bare LF accepted when the caller says so */
	buf_reset(&p.lines);
	p.line_flags = CONN_LINE_BARE_LF;
	test_assert(write(sv[1], "a\nb\r\nc", 6) == 6);
	test_assert(evloop_run_once(loop, 1000) >= 1);
	test_assert_str(buf_cstr(&p.lines), "a|b|");
	test_assert(conn_input_len(p.conn) == 1);
	/* EOF comes after the input before it */
	test_assert(write(sv[1], "\n", 1) == 1);
	close(sv[1]);
	test_assert(run_until(loop, &p.eof, 1) == 0);
	test_assert_str(buf_cstr(&p.lines), "a|b|c|");
	peer_free(&p);
	evloop_destroy(&loop);
}

static void overlong_lines_are_skipped(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	int sv[2];
	test_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct peer p;
	peer_init(&p);
	p.max_line = 10;
	p.conn = conn_create(loop, sv[0], on_event, &p);
	/* exactly 10 is fine; 11 with its end buffered; then a long one arriving in pieces */
	test_assert(write(sv[1], "0123456789\r\n0123456789a\r\nok\r\n", 29) == 29);
	test_assert(evloop_run_once(loop, 1000) >= 1);
	test_assert_str(buf_cstr(&p.lines), "0123456789|<long>|ok|");
	buf_reset(&p.lines);
	for (int i = 0; i < 50; i++) {
		test_assert(write(sv[1], "abcdefgh", 8) == 8);
		test_assert(evloop_run_once(loop, 1000) >= 1);
	}
	test_assert(write(sv[1], "tail\r\nnext\r\n", 12) == 12);
	test_assert(evloop_run_once(loop, 1000) >= 1);
	test_assert_str(buf_cstr(&p.lines), "<long>|next|");
	test_assert(p.too_long == 2);
	/* a line longer than the whole input buffer is refused too */
	p.max_line = 1 << 20;
	buf_reset(&p.lines);
	char *big = xmalloc(CONN_INPUT_MAX_DEFAULT + 100);
	memset(big, 'x', CONN_INPUT_MAX_DEFAULT + 100);
	size_t off = 0;
	while (off < CONN_INPUT_MAX_DEFAULT + 100) {
		ssize_t n = write(sv[1], big + off, CONN_INPUT_MAX_DEFAULT + 100 - off);
		if (n > 0)
			off += (size_t)n;
		test_assert(evloop_run_once(loop, 100) >= 0);
	}
	test_assert(write(sv[1], "\r\nafter\r\n", 9) == 9);
	run_rounds(loop, 5);
	test_assert_str(buf_cstr(&p.lines), "<long>|after|");
	free(big);
	close(sv[1]);
	peer_free(&p);
	evloop_destroy(&loop);
}

static void raw_bytes_and_pause(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	int sv[2];
	test_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct peer p;
	peer_init(&p);
	p.raw_want = 7;
	p.conn = conn_create(loop, sv[0], on_event, &p);
	test_assert(write(sv[1], "abc", 3) == 3);
	test_assert(evloop_run_once(loop, 1000) >= 1);
	test_assert(write(sv[1], "d\0fgLINE1\r\nLINE2\r\n", 18) == 18);
	p.pause_after_line = true;
	test_assert(evloop_run_once(loop, 1000) >= 1);
	test_assert(p.raw.len == 7 && memcmp(p.raw.data, "abcd\0fg", 7) == 0);
	test_assert_str(buf_cstr(&p.lines), "LINE1|");
	run_rounds(loop, 3);
	test_assert_str(buf_cstr(&p.lines), "LINE1|");
	p.pause_after_line = false;
	conn_pause_input(p.conn, false);
	test_assert(evloop_run_once(loop, 1000) >= 1);
	test_assert_str(buf_cstr(&p.lines), "LINE1|LINE2|");
	close(sv[1]);
	peer_free(&p);
	evloop_destroy(&loop);
}

static void output_close_after_flush(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	int sv[2];
	test_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct peer p;
	peer_init(&p);
	p.conn = conn_create(loop, sv[0], on_event, &p);
	/* more than a socket buffer holds, so it drains over several rounds while we read the other end */
	size_t total = 1024 * 1024, got = 0;
	char *chunk = xmalloc(4096);
	memset(chunk, 'z', 4096);
	for (size_t i = 0; i < total / 4096; i++)
		conn_write(p.conn, chunk, 4096);
	conn_printf(p.conn, "%s\r\n", "END");
	conn_close_after_flush(p.conn);
	conn_write_str(p.conn, "ignored after close");
	test_assert(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	bool eof = false;
	for (int i = 0; i < MAX_ROUNDS && !eof; i++) {
		(void)evloop_run_once(loop, 10);
		for (;;) {
			ssize_t n = read(sv[1], chunk, 4096);
			if (n > 0) {
				got += (size_t)n;
				continue;
			}
			if (n == 0)
				eof = true;
			break;
		}
	}
	test_assert(eof);
	test_assert(got == total + 5);
	test_assert(p.closed == 1 && p.conn == NULL);
	free(chunk);
	close(sv[1]);
	peer_free(&p);
	evloop_destroy(&loop);
}

static void idle_timeout_fires(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	int sv[2];
	test_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct peer p;
	peer_init(&p);
	p.conn = conn_create(loop, sv[0], on_event, &p);
	conn_set_idle_timeout(p.conn, 20);
	test_assert(run_until(loop, &p.timeout, 1) == 0);
	test_assert(p.eof == 0 && p.error == 0);
	/* after the end, further input is not reported */
	test_assert(write(sv[1], "x\r\n", 3) == 3);
	run_rounds(loop, 2);
	test_assert(p.lines.len == 0);
	close(sv[1]);
	peer_free(&p);
	evloop_destroy(&loop);
}

/* ---- TLS over real loopback TCP ---- */

static char tls_dir[] = "/tmp/ix-conn-XXXXXX";
static struct tls_ctx *server_ctx, *client_ctx;

struct accept_ctx {
	struct evloop *loop;
	struct peer *server;
	bool implicit_tls;
	int accepted;
	int fds[4];
};

static void on_accept(struct listener *l, int fd, void *ctx)
{
	struct accept_ctx *a = ctx;
	(void)l;
	if (a->server == NULL || a->server->conn != NULL) {
		a->fds[a->accepted++ % 4] = fd;
		return;
	}
	a->accepted++;
	a->server->conn = conn_create(a->loop, fd, on_event, a->server);
	if (a->implicit_tls)
		(void)conn_start_tls(a->server->conn, server_ctx, NULL, NULL);
}

static int connect_to(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tls_setup(void)
{
	if (mkdtemp(tls_dir) == NULL)
		return -1;
	char *cert = xasprintf("%s/cert.pem", tls_dir), *key = xasprintf("%s/key.pem", tls_dir);
	struct buf err = BUF_INIT;
	int ret = tls_make_self_signed("localhost", cert, key, 2, &err);
	if (ret == 0)
		ret = tls_server_ctx_create(cert, key, &server_ctx, &err);
	if (ret == 0)
		ret = tls_client_ctx_create(true, cert, &client_ctx, &err);
	if (ret != 0)
		fprintf(stderr, "tls setup: %s\n", buf_cstr(&err));
	free(cert);
	free(key);
	buf_free(&err);
	return ret;
}

static void implicit_tls_loopback(void)
{
	test_assert(tls_setup() == 0);
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct peer server, client;
	peer_init(&server);
	peer_init(&client);
	server.echo = true;
	struct accept_ctx a = { .loop = loop, .server = &server, .implicit_tls = true };
	struct listener *l;
	struct buf err = BUF_INIT;
	test_assert(listener_create(loop, "127.0.0.1", 0, 0, on_accept, &a, &l, &err) == 0);
	test_assert(listener_port(l) > 0);
	int fd = connect_to(listener_port(l));
	test_assert(fd >= 0);
	client.conn = conn_create(loop, fd, on_event, &client);
	test_assert(!conn_is_tls(client.conn));
	test_assert(conn_start_tls(client.conn, client_ctx, "localhost", NULL) == 0);
	test_assert(conn_start_tls(client.conn, client_ctx, "localhost", NULL) == IX_EINVAL);
	/* written before the handshake ends: sent over TLS once it is up */
	conn_write_str(client.conn, "hello\r\nworld\r\n");
	test_assert(run_until(loop, &client.tls_ready, 1) == 0);
	test_assert(run_until(loop, &server.tls_ready, 1) == 0);
	test_assert(conn_is_tls(server.conn) && conn_is_tls(client.conn));
	test_assert(strncmp(conn_tls_info(server.conn), "TLSv1.", 6) == 0);
	test_assert(conn_peer_is_loopback(server.conn));
	test_assert_str(conn_peer(server.conn), "127.0.0.1");
	for (int i = 0; i < MAX_ROUNDS && strcmp(buf_cstr(&client.lines), "> hello|> world|") != 0; i++)
		(void)evloop_run_once(loop, ROUND_MSECS);
	test_assert_str(buf_cstr(&server.lines), "hello|world|");
	test_assert_str(buf_cstr(&client.lines), "> hello|> world|");
	/* a big transfer through TLS, more than the input buffer */
	server.echo = false;
	server.raw_want = 300000;
	char *blob = xmalloc(300000);
	for (size_t i = 0; i < 300000; i++)
		blob[i] = (char)(i * 7);
	conn_write(client.conn, blob, 300000);
	for (int i = 0; i < MAX_ROUNDS && server.raw_want > 0; i++)
		(void)evloop_run_once(loop, ROUND_MSECS);
	test_assert(server.raw.len == 300000 && memcmp(server.raw.data, blob, 300000) == 0);
	free(blob);
	/* the client closes: the server sees EOF */
	conn_close_after_flush(client.conn);
	test_assert(run_until(loop, &server.eof, 1) == 0);
	test_assert(server.error == 0 && client.error == 0);
	listener_release(l);
	test_assert(listener_active(l) == 0);
	listener_destroy(&l);
	peer_free(&server);
	peer_free(&client);
	evloop_destroy(&loop);
	buf_free(&err);
}

static void starttls_discards_injected_input(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct peer server, client;
	peer_init(&server);
	peer_init(&client);
	server.starttls_ctx = server_ctx;
	client.client_starttls = true;
	client.client_ctx = client_ctx;
	struct accept_ctx a = { .loop = loop, .server = &server };
	struct listener *l;
	struct buf err = BUF_INIT;
	test_assert(listener_create(loop, "127.0.0.1", 0, 0, on_accept, &a, &l, &err) == 0);
	int fd = connect_to(listener_port(l));
	test_assert(fd >= 0);
	/* the injection: a command pipelined behind STARTTLS in the same plaintext packet */
	test_assert(write(fd, "STARTTLS\r\nRSET\r\n", 16) == 16);
	client.conn = conn_create(loop, fd, on_event, &client);
	test_assert(run_until(loop, &server.tls_ready, 1) == 0);
	test_assert(run_until(loop, &client.tls_ready, 1) == 0);
	test_assert(server.discarded == 6);
	test_assert(client.discarded == 0);
	conn_write_str(client.conn, "NOOP\r\n");
	for (int i = 0; i < MAX_ROUNDS && strcmp(buf_cstr(&server.lines), "STARTTLS|NOOP|") != 0; i++)
		(void)evloop_run_once(loop, ROUND_MSECS);
	test_assert_str(buf_cstr(&server.lines), "STARTTLS|NOOP|");
	test_assert_str(buf_cstr(&client.lines), "220 go|");
	test_assert(server.error == 0 && client.error == 0);
	listener_destroy(&l);
	peer_free(&server);
	peer_free(&client);
	evloop_destroy(&loop);
	buf_free(&err);
}

static void tls_handshake_failure_reported(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct peer server;
	peer_init(&server);
	struct accept_ctx a = { .loop = loop, .server = &server, .implicit_tls = true };
	struct listener *l;
	struct buf err = BUF_INIT;
	test_assert(listener_create(loop, "127.0.0.1", 0, 0, on_accept, &a, &l, &err) == 0);
	int fd = connect_to(listener_port(l));
	test_assert(fd >= 0);
	test_assert(write(fd, "EHLO plaintext\r\n", 16) == 16);
	test_assert(run_until(loop, &server.error, 1) == 0);
	test_assert(strstr(conn_error(server.conn), "handshake") != NULL);
	close(fd);
	listener_destroy(&l);
	peer_free(&server);
	evloop_destroy(&loop);
	buf_free(&err);
}

static void listener_caps_connections(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct accept_ctx a = { .loop = loop };
	struct listener *l;
	struct buf err = BUF_INIT;
	test_assert(listener_create(loop, "127.0.0.1", 0, 1, on_accept, &a, &l, &err) == 0);
	test_assert(listener_create(loop, "not-an-ip", 0, 1, on_accept, &a, &l, &err) == IX_EINVAL);
	int c1 = connect_to(listener_port(l)), c2 = connect_to(listener_port(l));
	test_assert(c1 >= 0 && c2 >= 0);
	run_rounds(loop, 5);
	test_assert(a.accepted == 1 && listener_active(l) == 1);
	listener_release(l);
	run_rounds(loop, 5);
	test_assert(a.accepted == 2);
	for (int i = 0; i < a.accepted; i++)
		close(a.fds[i]);
	close(c1);
	close(c2);
	listener_destroy(&l);
	test_assert(l == NULL);
	evloop_destroy(&loop);
	buf_free(&err);
	tls_ctx_destroy(&server_ctx);
	tls_ctx_destroy(&client_ctx);
	char *cmd = xasprintf("rm -rf '%s'", tls_dir);
	test_assert(system(cmd) == 0);
	free(cmd);
}

TEST_MAIN("conn", TEST_CASE(lines_byte_by_byte), TEST_CASE(overlong_lines_are_skipped),
	  TEST_CASE(raw_bytes_and_pause), TEST_CASE(output_close_after_flush), TEST_CASE(idle_timeout_fires),
	  TEST_CASE(implicit_tls_loopback), TEST_CASE(starttls_discards_injected_input),
	  TEST_CASE(tls_handshake_failure_reported), TEST_CASE(listener_caps_connections))
