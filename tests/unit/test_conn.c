/* test_conn.c - unit tests for transport/conn: line splitting byte by byte, overlong lines, raw bytes, EOF,
 * close after flush, idle timeout, a real loopback TLS client and server, STARTTLS injection, a client certificate
 * asked for after the handshake, the listener cap;
 * and transport/smtp_session over real sockets: a pipelined script, and python3 smtplib (STARTTLS, AUTH). */
#include "tests/unit/test.h"
#include "transport/net/conn.h"
#include "transport/net/sasl.h"
#include "transport/smtp/smtp_session.h"
#include "common/err.h"
#include "transport/net/tls.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

/* Rounds of the loop a test may take before it gives up (each round waits at most ROUND_MSECS). */
#define MAX_ROUNDS 400
#define ROUND_MSECS 25

/* One side of a test connection: lines seen (joined with '|'), events seen, and an optional behaviour. */
struct peer {
	struct conn *conn;
	struct buf lines;
	size_t max_line;
	unsigned line_flags;
	int too_long, eof, error, timeout, closed, tls_ready, connected;
	size_t discarded;
	struct tls_ctx *starttls_ctx; /* server: answer "STARTTLS" with 220 and start TLS */
	bool client_starttls;         /* client: after "220 go", start TLS */
	struct tls_ctx *client_ctx;
	bool echo; /* echo every line back as "> line" */
	bool pause_after_line;
	struct buf raw; /* raw byte mode when raw_want > 0 */
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
	case CONN_EVENT_INPUT: break;
	case CONN_EVENT_TLS_READY: p->tls_ready++; return;
	case CONN_EVENT_CONNECTED: p->connected++; return;
	case CONN_EVENT_EOF: p->eof++; return;
	case CONN_EVENT_ERROR: p->error++; return;
	case CONN_EVENT_TIMEOUT:
		p->timeout++;
		conn_write_str(c, "421 idle\r\n");
		conn_close_after_flush(c);
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
	/* the goodbye is sent, then the connection closes; later input is not read */
	test_assert(write(sv[1], "x\r\n", 3) == 3);
	test_assert(run_until(loop, &p.closed, 1) == 0);
	test_assert(p.lines.len == 0 && p.timeout == 1);
	char bye[32];
	test_assert(read(sv[1], bye, sizeof(bye)) == 10 && memcmp(bye, "421 idle\r\n", 10) == 0);
	test_assert(read(sv[1], bye, sizeof(bye)) <= 0); /* EOF, or a reset since "x" was never read */
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
	int ret = tls_make_self_signed("localhost", NULL, cert, key, 2, &err);
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

/* A loop, a server peer on a loopback listener that starts implicit TLS, and a client peer connected to it (TLS
 * not started yet). */
struct tls_pair {
	struct evloop *loop;
	struct peer server, client;
	struct accept_ctx a;
	struct listener *l;
};

static void tls_pair_open(struct tls_pair *t)
{
	test_assert(evloop_create(&t->loop, NULL) == 0);
	peer_init(&t->server);
	peer_init(&t->client);
	t->a = (struct accept_ctx){ .loop = t->loop, .server = &t->server, .implicit_tls = true };
	struct buf err = BUF_INIT;
	test_assert(listener_create(t->loop, "127.0.0.1", 0, 0, on_accept, &t->a, &t->l, &err) == 0);
	buf_free(&err);
	t->client.conn = conn_connect(t->loop, "127.0.0.1", listener_port(t->l), on_event, &t->client);
}

static void tls_pair_close(struct tls_pair *t)
{
	listener_destroy(&t->l);
	peer_free(&t->server);
	peer_free(&t->client);
	evloop_destroy(&t->loop);
}

static void tls_verify_rejects_wrong_name(void)
{
	struct tls_pair t;
	tls_pair_open(&t);
	/* the certificate names localhost; a verifying client asked for another name refuses it */
	test_assert(conn_start_tls(t.client.conn, client_ctx, "other.example", NULL) == 0);
	test_assert(run_until(t.loop, &t.client.error, 1) == 0);
	test_assert(strstr(conn_error(t.client.conn), "certificate verify failed") != NULL);
	test_assert(t.client.tls_ready == 0);
	tls_pair_close(&t);
}

/* The SHA-256 `tls_cert_describe` gives for the certificate in path, into hex. */
static void file_fingerprint(const char *path, char hex[TLS_FINGERPRINT_HEX + 1])
{
	char *pem = NULL;
	size_t len = 0;
	struct buf out = BUF_INIT, err = BUF_INIT;
	test_assert(read_file(path, TLS_PEM_MAX, &pem, &len) == 0);
	test_assert(tls_cert_describe(pem, len, &out, &err) == IX_OK);
	const char *at = strstr(buf_cstr(&out), "SHA-256:");
	test_assert(at != NULL);
	at += strspn(at + 8, " ") + 8;
	test_assert(strlen(at) >= TLS_FINGERPRINT_HEX);
	memcpy(hex, at, TLS_FINGERPRINT_HEX);
	hex[TLS_FINGERPRINT_HEX] = '\0';
	free(pem);
	buf_free(&out);
	buf_free(&err);
}

/* One client with cctx against implicit TLS: no certificate is asked for in the handshake; then the server asks
 * (conn_request_peer_cert, input paused as a session waiting to answer is) and gets want_fp ("": none) when
 * request_ok, or is refused at once. The connection carries lines both ways afterwards. */
static void peer_cert_case(struct tls_ctx *cctx, bool request_ok, const char *want_fp)
{
	struct tls_pair t;
	tls_pair_open(&t);
	struct peer *server = &t.server, *client = &t.client;
	server->echo = true;
	test_assert(conn_start_tls(client->conn, cctx, "localhost", NULL) == 0);
	test_assert(run_until(t.loop, &client->tls_ready, 1) == 0);
	test_assert(run_until(t.loop, &server->tls_ready, 1) == 0);
	char fp[TLS_FINGERPRINT_HEX + 1];
	test_assert(!conn_peer_fingerprint(server->conn, fp)); /* none in the handshake, whatever the client holds */
	test_assert(conn_request_peer_cert(client->conn) == IX_EINVAL); /* a client asks no one */
	conn_pause_input(server->conn, true);
	test_assert(conn_request_peer_cert(server->conn) == (request_ok ? IX_OK : IX_EINVAL));
	conn_write_str(client->conn, "during\r\n"); /* application data may cross the request */
	if (request_ok) {
		test_assert(conn_request_peer_cert(server->conn) == IX_EINVAL); /* one under way */
		test_assert(run_until(t.loop, &server->tls_ready, 2) == 0);
	}
	test_assert(conn_peer_fingerprint(server->conn, fp) == (want_fp[0] != '\0'));
	if (want_fp[0] != '\0')
		test_assert_str(fp, want_fp);
	conn_pause_input(server->conn, false);
	conn_write_str(client->conn, "after\r\n");
	for (int i = 0; i < MAX_ROUNDS && strcmp(buf_cstr(&client->lines), "> during|> after|") != 0; i++)
		(void)evloop_run_once(t.loop, ROUND_MSECS);
	test_assert_str(buf_cstr(&client->lines), "> during|> after|");
	test_assert(server->error == 0 && client->error == 0 && client->tls_ready == 1);
	tls_pair_close(&t);
}

static void peer_cert_after_handshake(void)
{
	char *cert = xasprintf("%s/cert.pem", tls_dir);
	char *ccert = xasprintf("%s/client.pem", tls_dir), *ckey = xasprintf("%s/client.key", tls_dir);
	struct buf err = BUF_INIT;
	test_assert(tls_make_self_signed("peer.example", NULL, ccert, ckey, 2, &err) == 0);
	char want[TLS_FINGERPRINT_HEX + 1];
	file_fingerprint(ccert, want);
	/* a server of ours: its certificate, post-handshake authentication offered */
	struct tls_ctx *ours = NULL, *no_cert = NULL;
	test_assert(tls_client_ctx_create(true, cert, &ours, &err) == 0);
	test_assert(tls_ctx_use_client_cert(ours, ccert, ckey, &err) == 0);
	peer_cert_case(ours, true, want);
	/* offered, but no certificate to give: it answers with none and keeps its connection */
	test_assert(tls_client_ctx_create(true, cert, &no_cert, &err) == 0);
	SSL_CTX_set_post_handshake_auth(tls_ctx_ssl(no_cert), 1);
	peer_cert_case(no_cert, true, "");
	/* an ordinary client does not offer it: never asked */
	peer_cert_case(client_ctx, false, "");
	/* nor over TLS 1.2, where only a renegotiation (off) could ask */
	test_assert(SSL_CTX_set_max_proto_version(tls_ctx_ssl(ours), TLS1_2_VERSION) == 1);
	peer_cert_case(ours, false, "");
	tls_ctx_destroy(&ours);
	tls_ctx_destroy(&no_cert);
	free(cert);
	free(ccert);
	free(ckey);
	buf_free(&err);
}

static void outbound_connect(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct peer server, client;
	peer_init(&server);
	peer_init(&client);
	server.echo = true;
	struct accept_ctx a = { .loop = loop, .server = &server };
	struct listener *l;
	struct buf err = BUF_INIT;
	test_assert(listener_create(loop, "::1", 0, 0, on_accept, &a, &l, &err) == 0 ||
		    listener_create(loop, "127.0.0.1", 0, 0, on_accept, &a, &l, &err) == 0);
	client.conn = conn_connect(loop, "::1", listener_port(l), on_event, &client);
	conn_write_str(client.conn, "queued before connect\r\n");
	for (int i = 0; i < MAX_ROUNDS && client.connected + client.error == 0; i++)
		(void)evloop_run_once(loop, ROUND_MSECS);
	if (client.error > 0) {
		/* no IPv6 loopback here: try IPv4 */
		conn_destroy(&client.conn);
		listener_destroy(&l);
		test_assert(listener_create(loop, "127.0.0.1", 0, 0, on_accept, &a, &l, &err) == 0);
		client.error = 0;
		client.conn = conn_connect(loop, "127.0.0.1", listener_port(l), on_event, &client);
		conn_write_str(client.conn, "queued before connect\r\n");
		test_assert(run_until(loop, &client.connected, 1) == 0);
	}
	test_assert(client.connected == 1 && conn_peer_is_loopback(client.conn));
	test_assert(conn_peer_port(client.conn) == listener_port(l));
	for (int i = 0; i < MAX_ROUNDS && client.lines.len == 0; i++)
		(void)evloop_run_once(loop, ROUND_MSECS);
	test_assert_str(buf_cstr(&client.lines), "> queued before connect|");
	/* refused, and not an address at all: both reported from the loop */
	unsigned port = listener_port(l);
	listener_destroy(&l);
	peer_free(&server);
	struct peer refused, bad;
	peer_init(&refused);
	peer_init(&bad);
	refused.conn = conn_connect(loop, "127.0.0.1", port, on_event, &refused);
	bad.conn = conn_connect(loop, "mx.example.com", 25, on_event, &bad);
	test_assert(refused.error == 0 && bad.error == 0);
	test_assert(run_until(loop, &refused.error, 1) == 0);
	test_assert(run_until(loop, &bad.error, 1) == 0);
	test_assert(strstr(conn_error(refused.conn), "refused") != NULL);
	test_assert(strstr(conn_error(bad.conn), "mx.example.com") != NULL);
	test_assert(refused.connected == 0 && bad.connected == 0);
	peer_free(&refused);
	peer_free(&bad);
	peer_free(&client);
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
}

/* ---- SMTP sessions ---- */

struct delivered {
	struct buf sender;
	struct buf rcpts;
	struct buf body; /* without our Received: line */
	bool chunked;
};

struct backend_ctx {
	struct evloop *loop;
	struct listener *listener;
	struct smtp_config config;
	struct smtp_session *session;
	struct smtp_session *pending; /* delivery completed from the before-sleep hook */
	bool async;
	int closed;
	struct delivered msgs[4];
	int nmsgs;
	int auth_calls;
	/* config.filter: the stages asked (C H M R D), the session waiting for the answer and the answer */
	struct buf stages;
	struct smtp_session *filtering;
	const char *filter_reply;
};

static enum smtp_rcpt_verdict be_rcpt(void *ctx, const struct smtp_session_info *info, const struct smtp_rcpt *rcpt,
				      const char **reason_r)
{
	(void)ctx;
	(void)info;
	(void)reason_r;
	char addr[SMTP_PATH_MAX_UTF8 + 1];
	smtp_path_string(&rcpt->to, addr, sizeof(addr));
	if (strcmp(addr, "alice@example.com") == 0 || strcmp(addr, "bob@example.com") == 0 || rcpt->to.postmaster)
		return SMTP_RCPT_ACCEPT;
	if (strcmp(addr, "full@example.com") == 0)
		return SMTP_RCPT_FULL;
	if (strcmp(addr, "outside@example.net") == 0)
		return SMTP_RCPT_DENIED;
	return SMTP_RCPT_UNKNOWN;
}

static int be_check(void *ctx, const char *user, const char *pass, size_t passlen)
{
	struct backend_ctx *b = ctx;
	b->auth_calls++;
	return strcmp(user, "bob") == 0 && passlen == 6 && memcmp(pass, "hunter", 6) == 0 ? 0 : IX_EAUTH;
}

static void be_deliver(void *ctx, struct smtp_session *s, const struct smtp_session_info *info,
		       const struct smtp_envelope *env)
{
	struct backend_ctx *b = ctx;
	(void)info;
	if (b->nmsgs < 4) {
		struct delivered *d = &b->msgs[b->nmsgs++];
		char addr[SMTP_PATH_MAX_UTF8 + 1];
		smtp_path_string(&env->mail->from, addr, sizeof(addr));
		buf_append_str(&d->sender, addr);
		for (size_t i = 0; i < env->rcpt_count; i++) {
			smtp_path_string(&env->rcpts[i].to, addr, sizeof(addr));
			buf_printf(&d->rcpts, "%s;", addr);
		}
		const char *body = env->message;
		size_t blen = env->message_len;
		/* skip our Received: line (it is folded once) */
		const char *end = memmem(body, blen, "\r\n\tby ", 6);
		end = end != NULL ? memmem(end + 2, blen - (size_t)(end + 2 - body), "\r\n", 2) : NULL;
		if (blen >= 15 && strncmp(body, "Received: from ", 15) == 0 && end != NULL)
			buf_append(&d->body, end + 2, blen - (size_t)(end + 2 - body));
		d->chunked = env->chunked;
	}
	if (b->async)
		b->pending = s; /* made durable by the before-sleep hook, like group commit */
	else
		smtp_session_delivered(s, NULL);
}

static void be_closed(void *ctx, struct smtp_session *s)
{
	struct backend_ctx *b = ctx;
	smtp_session_destroy(&s);
	b->session = NULL;
	b->closed++;
	listener_release(b->listener);
}

static const struct smtp_backend test_backend = { be_rcpt, be_check, be_deliver, be_closed, NULL, NULL };

static void group_commit_hook(struct evloop *loop, void *ctx)
{
	(void)loop;
	struct backend_ctx *b = ctx;
	if (b->pending != NULL) {
		struct smtp_session *s = b->pending;
		b->pending = NULL;
		smtp_session_delivered(s, NULL);
	}
}

static void smtp_accept(struct listener *l, int fd, void *ctx)
{
	struct backend_ctx *b = ctx;
	(void)l;
	b->session = smtp_session_create(b->loop, fd, &b->config, &test_backend, b);
}

static void backend_free(struct backend_ctx *b)
{
	for (int i = 0; i < 4; i++) {
		buf_free(&b->msgs[i].sender);
		buf_free(&b->msgs[i].rcpts);
		buf_free(&b->msgs[i].body);
	}
}

/* The final reply codes in a transcript (continuation lines skipped), space-separated. */
static void reply_codes(const char *transcript, struct buf *codes)
{
	const char *p = transcript;
	while (*p != '\0') {
		const char *eol = strstr(p, "\r\n");
		if (eol == NULL)
			break;
		if (eol - p >= 4 && p[3] == ' ')
			buf_printf(codes, "%s%.3s", codes->len > 0 ? " " : "", p);
		else if (eol - p == 3)
			buf_printf(codes, "%s%.3s", codes->len > 0 ? " " : "", p);
		p = eol + 2;
	}
}

/* Writes script to the session on fd at once, runs the loop until the session closed (*closed), and reads what the
 * server answered into transcript and its reply codes into codes; closes fd. */
static void send_script(struct evloop *loop, const int *closed, int fd, const char *script, size_t len,
			struct buf *transcript, struct buf *codes)
{
	test_assert(write(fd, script, len) == (ssize_t)len);
	test_assert(run_until(loop, closed, 1) == 0);
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(transcript, chunk, (size_t)n);
	close(fd);
	reply_codes(buf_cstr(transcript), codes);
}

static void smtp_pipelined_script(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct backend_ctx b;
	memset(&b, 0, sizeof(b));
	b.loop = loop;
	b.async = true;
	b.config.hostname = "mx.example.com";
	b.config.max_size = 1000;
	evloop_set_before_sleep(loop, group_commit_hook, &b);
	struct buf err = BUF_INIT;
	test_assert(listener_create(loop, "127.0.0.1", 0, 10, smtp_accept, &b, &b.listener, &err) == 0);
	int fd = connect_to(listener_port(b.listener));
	test_assert(fd >= 0);
	static const char script[] = "EHLO client.example\r\n"
				     "MAIL FROM:<a@example.org> SIZE=100\r\n"
				     "RCPT TO:<alice@example.com>\r\n"
				     "RCPT TO:<nobody@example.com>\r\n"
				     "RCPT TO:<full@example.com>\r\n"
				     "RCPT TO:<outside@example.net>\r\n"
				     "RCPT TO:<Postmaster>\r\n"
				     "DATA\r\n"
				     "Subject: hi\r\n\r\n..dotted\r\nbody\r\n.\r\n"
				     "MAIL FROM:<> BODY=BINARYMIME\r\n"
				     "RCPT TO:<bob@example.com>\r\n"
				     "BDAT 5\r\nhelloBDAT 8 LAST\r\n world\r\n"
				     "MAIL FROM:<big@example.org> SIZE=5000\r\n"
				     "MAIL FROM:<x@example.org>\r\n"
				     "DATA\r\n"
				     "RCPT TO:<alice@example.com>\r\n"
				     "DATA\r\n"
				     "x\nfake\r\n.\r\n"
				     "STARTTLS\r\n"
				     "FOO\r\n"
				     "RSET\r\n"
				     "MAIL FROM:<bad@@example.org>\r\n"
				     "QUIT\r\n";
	struct buf transcript = BUF_INIT, codes = BUF_INIT;
	send_script(loop, &b.closed, fd, script, sizeof(script) - 1, &transcript, &codes);
	if (strcmp(buf_cstr(&codes), "220 250 250 250 550 452 550 250 354 250 250 250 250 250 552 250 554 250 "
				     "354 250 502 500 250 553 221") != 0)
		fprintf(stderr, "transcript:\n%s\ncodes: %s\n", buf_cstr(&transcript), buf_cstr(&codes));
	test_assert_str(buf_cstr(&codes), "220 250 250 250 550 452 550 250 354 250 250 250 250 250 552 250 554 250 "
					  "354 250 502 500 250 553 221");
	test_assert(strstr(buf_cstr(&transcript), "250-PIPELINING\r\n") != NULL);
	test_assert(strstr(buf_cstr(&transcript), "250-SIZE 1000\r\n") != NULL);
	test_assert(strstr(buf_cstr(&transcript), "250 CHUNKING\r\n") != NULL);
	test_assert(strstr(buf_cstr(&transcript), "STARTTLS\r\n") == NULL); /* no TLS configured */
	test_assert(strstr(buf_cstr(&transcript), "250-AUTH PLAIN LOGIN\r\n") == NULL);
	test_assert(b.nmsgs == 3);
	test_assert_str(buf_cstr(&b.msgs[0].sender), "a@example.org");
	test_assert_str(buf_cstr(&b.msgs[0].rcpts), "alice@example.com;Postmaster;");
	test_assert_str(buf_cstr(&b.msgs[0].body), "Subject: hi\r\n\r\n.dotted\r\nbody\r\n");
	test_assert(!b.msgs[0].chunked);
	test_assert_str(buf_cstr(&b.msgs[1].sender), "");
	test_assert_str(buf_cstr(&b.msgs[1].body), "hello world\r\n");
	test_assert(b.msgs[1].chunked);
	/* bare LF kept by default policy */
	test_assert_str(buf_cstr(&b.msgs[2].body), "x\nfake\r\n");
	test_assert(b.closed == 1 && b.session == NULL);
	listener_destroy(&b.listener);
	backend_free(&b);
	buf_free(&transcript);
	buf_free(&codes);
	buf_free(&err);
	evloop_destroy(&loop);
}

/* A filter as a backend's mail filters: refuses the HELO name bad.example, the sender spam@example.org and the
 * recipient bob@example.com; answers from the before-sleep hook (as a worker's job comes back later). */
static bool be_filter(void *ctx, struct smtp_session *s, enum smtp_filter_stage stage,
		      const struct smtp_session_info *info, const struct smtp_rcpt *rcpt)
{
	struct backend_ctx *b = ctx;
	static const char letters[] = { [SMTP_FILTER_CONNECT] = 'C',
					[SMTP_FILTER_HELO] = 'H',
					[SMTP_FILTER_MAIL] = 'M',
					[SMTP_FILTER_RCPT] = 'R',
					[SMTP_FILTER_DATA] = 'D' };
	buf_append_char(&b->stages, letters[stage]);
	char addr[SMTP_PATH_MAX_UTF8 + 1] = "";
	if (stage == SMTP_FILTER_MAIL)
		smtp_path_string(&info->mail->from, addr, sizeof(addr));
	if (stage == SMTP_FILTER_RCPT)
		smtp_path_string(&rcpt->to, addr, sizeof(addr));
	b->filter_reply = stage == SMTP_FILTER_HELO && strcmp(info->helo, "bad.example") == 0 ? "550 5.7.1 Not you"
			  : strcmp(addr, "spam@example.org") == 0                             ? "553 5.7.1 No"
			  : strcmp(addr, "bob@example.com") == 0                              ? "550 5.7.1 Not for Bob"
											      : NULL;
	b->filtering = s;
	return true;
}

static void filter_hook(struct evloop *loop, void *ctx)
{
	struct backend_ctx *b = ctx;
	if (b->filtering != NULL) {
		struct smtp_session *s = b->filtering;
		b->filtering = NULL;
		smtp_session_filter_done(s, b->filter_reply);
	}
	group_commit_hook(loop, ctx);
}

/* config.filter: every stage waits for the filters' answer, pipelined commands after it; a refused HELO, MAIL or
 * recipient is that command's refusal alone. */
static void smtp_filter_stages(void)
{
	struct evloop *loop;
	test_assert(evloop_create(&loop, NULL) == 0);
	struct backend_ctx b;
	memset(&b, 0, sizeof(b));
	b.loop = loop;
	b.async = true;
	b.config.hostname = "mx.example.com";
	b.config.filter = be_filter;
	evloop_set_before_sleep(loop, filter_hook, &b);
	struct buf err = BUF_INIT;
	test_assert(listener_create(loop, "127.0.0.1", 0, 10, smtp_accept, &b, &b.listener, &err) == 0);
	int fd = connect_to(listener_port(b.listener));
	test_assert(fd >= 0);
	static const char script[] = "EHLO bad.example\r\n"
				     "MAIL FROM:<a@example.org>\r\n"
				     "EHLO client.example\r\n"
				     "MAIL FROM:<spam@example.org>\r\n"
				     "MAIL FROM:<a@example.org>\r\n"
				     "RCPT TO:<alice@example.com>\r\n"
				     "RCPT TO:<bob@example.com>\r\n"
				     "DATA\r\n"
				     "Subject: hi\r\n\r\nbody\r\n.\r\n"
				     "QUIT\r\n";
	struct buf transcript = BUF_INIT, codes = BUF_INIT;
	send_script(loop, &b.closed, fd, script, sizeof(script) - 1, &transcript, &codes);
	test_assert_str(buf_cstr(&codes), "220 550 503 250 553 250 250 550 354 250 221");
	test_assert(strstr(buf_cstr(&transcript), "550 5.7.1 Not you\r\n") != NULL);
	test_assert(strstr(buf_cstr(&transcript), "550 5.7.1 Not for Bob\r\n") != NULL);
	test_assert_str(buf_cstr(&b.stages), "CHHMMRRD"); /* MAIL before a greeting is not asked */
	test_assert(b.nmsgs == 1);
	test_assert_str(buf_cstr(&b.msgs[0].rcpts), "alice@example.com;");
	listener_destroy(&b.listener);
	backend_free(&b);
	buf_free(&b.stages);
	buf_free(&transcript);
	buf_free(&codes);
	buf_free(&err);
	evloop_destroy(&loop);
}

/* Runs one connection: sends script (may be empty), waits for the session to end, returns the reply codes. */
static int run_script(const struct smtp_config *config, const char *script, struct buf *codes, struct backend_ctx *b)
{
	struct evloop *loop;
	if (evloop_create(&loop, NULL) < 0)
		return -1;
	memset(b, 0, sizeof(*b));
	b->loop = loop;
	b->config = *config;
	struct buf err = BUF_INIT, transcript = BUF_INIT;
	int ret = listener_create(loop, "127.0.0.1", 0, 10, smtp_accept, b, &b->listener, &err);
	int fd = ret == 0 ? connect_to(listener_port(b->listener)) : -1;
	if (fd >= 0 && write(fd, script, strlen(script)) == (ssize_t)strlen(script) &&
	    run_until(loop, &b->closed, 1) == 0) {
		char chunk[4096];
		ssize_t n;
		while ((n = read(fd, chunk, sizeof(chunk))) > 0)
			buf_append(&transcript, chunk, (size_t)n);
		reply_codes(buf_cstr(&transcript), codes);
	} else {
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	listener_destroy(&b->listener);
	backend_free(b);
	buf_free(&err);
	buf_free(&transcript);
	evloop_destroy(&loop);
	return ret;
}

static void smtp_limits(void)
{
	struct smtp_config config = { .hostname = "mx.example.com", .max_errors = 3, .max_recipients = 2 };
	struct backend_ctx b;
	struct buf codes = BUF_INIT;
	test_assert(
		run_script(&config,
			   "EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\n"
			   "RCPT TO:<bob@example.com>\r\nRCPT TO:<alice@example.com>\r\nFOO\r\nBAR\r\nBAZ\r\nNOOP\r\n",
			   &codes, &b) == 0);
	test_assert_str(buf_cstr(&codes), "220 250 250 250 250 452 500 500 500 421");
	/* idle: the goodbye says why */
	buf_reset(&codes);
	config.idle_timeout_msecs = 30;
	test_assert(run_script(&config, "", &codes, &b) == 0);
	test_assert_str(buf_cstr(&codes), "220 421");
	/* submission: MAIL needs AUTH; AUTH PLAIN with an initial response; a second AUTH is refused */
	buf_reset(&codes);
	config.idle_timeout_msecs = 0;
	config.submission = true;
	config.auth = true;
	test_assert(run_script(&config,
			       "EHLO x\r\nMAIL FROM:<a@b.c>\r\nAUTH PLAIN AGJvYgBodW50ZXI=\r\nAUTH PLAIN\r\n"
			       "MAIL FROM:<a@b.c>\r\nQUIT\r\n",
			       &codes, &b) == 0);
	test_assert_str(buf_cstr(&codes), "220 250 530 235 503 250 221");
	/* AUTH LOGIN step by step after a cancelled exchange */
	buf_reset(&codes);
	test_assert(run_script(&config, "EHLO x\r\nAUTH LOGIN\r\n*\r\nAUTH LOGIN\r\nYm9i\r\naHVudGVy\r\nQUIT\r\n",
			       &codes, &b) == 0);
	test_assert_str(buf_cstr(&codes), "220 250 334 501 334 334 235 221");
	buf_free(&codes);
	ix_sasl_done();
}

static const char py_client[] =
	"import smtplib, ssl, sys\n"
	"port = int(sys.argv[1])\n"
	"ctx = ssl.create_default_context()\n"
	"ctx.check_hostname = False\n"
	"ctx.verify_mode = ssl.CERT_NONE\n"
	"s = smtplib.SMTP('127.0.0.1', port, timeout=10)\n"
	"code, _ = s.ehlo('py.example')\n"
	"assert code == 250\n"
	"for e in ('starttls', 'pipelining', 'chunking', 'smtputf8', '8bitmime', 'size', 'dsn', 'enhancedstatuscodes'):\n"
	"    assert s.has_extn(e), e\n"
	"s.starttls(context=ctx)\n"
	"s.ehlo('py.example')\n"
	"assert s.has_extn('auth') and not s.has_extn('starttls')\n"
	"try:\n"
	"    s.login('bob', 'wrong')\n"
	"    sys.exit(2)\n"
	"except smtplib.SMTPAuthenticationError:\n"
	"    pass\n"
	"s.login('bob', 'hunter')\n"
	"refused = s.sendmail('bob@example.com', ['alice@example.com', 'nobody@example.com'],\n"
	"                     b'Subject: py\\r\\n\\r\\nhello from python\\r\\n.leading dot\\r\\n')\n"
	"assert list(refused) == ['nobody@example.com'], refused\n"
	"try:\n"
	"    s.sendmail('bob@example.com', ['nobody@example.com'], b'x')\n"
	"    sys.exit(3)\n"
	"except smtplib.SMTPRecipientsRefused:\n"
	"    pass\n"
	"s.quit()\n"
	"print('PY-OK', flush=True)\n";

static const char py_injection[] = "import socket, ssl, sys\n"
				   "port = int(sys.argv[1])\n"
				   "ctx = ssl.create_default_context()\n"
				   "ctx.check_hostname = False\n"
				   "ctx.verify_mode = ssl.CERT_NONE\n"
				   "s = socket.create_connection(('127.0.0.1', port), timeout=10)\n"
				   "def reply(read):\n"
				   "    buf = b''\n"
				   "    while not buf.endswith(b'\\r\\n') or buf.split(b'\\r\\n')[-2][3:4] == b'-':\n"
				   "        data = read(4096)\n"
				   "        assert data, buf\n"
				   "        buf += data\n"
				   "    return buf\n"
				   "assert reply(s.recv).startswith(b'220 ')\n"
				   "s.sendall(b'EHLO x\\r\\n')\n"
				   "assert b'STARTTLS' in reply(s.recv)\n"
				   "s.sendall(b'STARTTLS\\r\\nMAIL FROM:<evil@example.org>\\r\\n')\n"
				   "assert reply(s.recv) == b'220 2.0.0 Ready to start TLS\\r\\n'\n"
				   "t = ctx.wrap_socket(s)\n"
				   "t.sendall(b'NOOP\\r\\n')\n"
				   "r = reply(t.recv)\n"
				   "assert r == b'250 2.0.0 Ok\\r\\n', r\n"
				   "t.sendall(b'MAIL FROM:<a@example.org>\\r\\n')\n"
				   "r = reply(t.recv)\n"
				   "assert r.startswith(b'503 5.5.1 Send EHLO first'), r\n"
				   "t.sendall(b'QUIT\\r\\n')\n"
				   "assert reply(t.recv).startswith(b'221 ')\n"
				   "print('PY-INJECTION-OK', flush=True)\n";

/* Runs a python3 client script against a session listener until it exits; returns its exit status. */
static int run_python(struct backend_ctx *b, const char *script)
{
	struct evloop *loop;
	if (evloop_create(&loop, NULL) < 0)
		return -1;
	b->loop = loop;
	struct buf err = BUF_INIT;
	if (listener_create(loop, "127.0.0.1", 0, 10, smtp_accept, b, &b->listener, &err) < 0) {
		evloop_destroy(&loop);
		buf_free(&err);
		return -1;
	}
	char port[16];
	snprintf(port, sizeof(port), "%u", listener_port(b->listener));
	pid_t pid = fork();
	if (pid == 0) {
		execlp("python3", "python3", "-c", script, port, (char *)NULL);
		_exit(127);
	}
	int status = -1;
	for (int i = 0; pid > 0 && i < 2000; i++) {
		(void)evloop_run_once(loop, 10);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	if (pid > 0 && status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	run_until(loop, &b->closed, 1);
	listener_destroy(&b->listener);
	evloop_destroy(&loop);
	buf_free(&err);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void smtp_starttls_injection(void)
{
	struct backend_ctx b;
	memset(&b, 0, sizeof(b));
	b.config.hostname = "mx.example.com";
	b.config.tls = server_ctx;
	test_assert(run_python(&b, py_injection) == 0);
	test_assert(b.closed == 1 && b.nmsgs == 0);
	backend_free(&b);
}

static void smtp_python_smtplib(void)
{
	struct backend_ctx b;
	memset(&b, 0, sizeof(b));
	b.config.hostname = "mx.example.com";
	b.config.tls = server_ctx;
	b.config.auth = true;
	b.config.submission = true;
	test_assert(run_python(&b, py_client) == 0);
	test_assert(b.closed == 1);
	test_assert(b.auth_calls == 3); /* smtplib tries PLAIN then LOGIN with the wrong password */
	test_assert(b.nmsgs == 1);
	test_assert_str(buf_cstr(&b.msgs[0].sender), "bob@example.com");
	test_assert_str(buf_cstr(&b.msgs[0].rcpts), "alice@example.com;");
	test_assert_str(buf_cstr(&b.msgs[0].body), "Subject: py\r\n\r\nhello from python\r\n.leading dot\r\n");
	backend_free(&b);
	ix_sasl_done();
}

static void cleanup_tls(void)
{
	tls_ctx_destroy(&server_ctx);
	tls_ctx_destroy(&client_ctx);
	char *cmd = xasprintf("rm -rf '%s'", tls_dir);
	test_assert(system(cmd) == 0);
	free(cmd);
}

TEST_MAIN("conn", TEST_CASE(lines_byte_by_byte), TEST_CASE(overlong_lines_are_skipped), TEST_CASE(raw_bytes_and_pause),
	  TEST_CASE(output_close_after_flush), TEST_CASE(idle_timeout_fires), TEST_CASE(implicit_tls_loopback),
	  TEST_CASE(starttls_discards_injected_input), TEST_CASE(tls_handshake_failure_reported),
	  TEST_CASE(tls_verify_rejects_wrong_name), TEST_CASE(peer_cert_after_handshake), TEST_CASE(outbound_connect),
	  TEST_CASE(listener_caps_connections), TEST_CASE(smtp_pipelined_script), TEST_CASE(smtp_filter_stages),
	  TEST_CASE(smtp_limits), TEST_CASE(smtp_starttls_injection), TEST_CASE(smtp_python_smtplib),
	  TEST_CASE(cleanup_tls))
