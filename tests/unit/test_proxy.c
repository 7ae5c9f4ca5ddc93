/* test_proxy.c - unit tests for the IMAP/POP3 proxy: the backend response parsers (tables, every prefix of a line),
 * and whole proxied sessions in one event loop against a scripted backend on a real 127.0.0.1 socket: the login
 * (the SASL PLAIN response checked), megabytes piped both ways through the bounded buffers, a refusal, a backend
 * that never answers (the login deadline), a closed port, and a backend off loopback without a TLS context. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "transport/net/conn.h"
#include "common/err.h"
#include "common/evloop.h"
#include "transport/login/proxy.h"
#include "transport/login/proxy_parse.h"
#include "transport/net/tls.h"
#include "common/util.h"
#include "common/base64.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- parsers ---- */

static void imap_replies(void)
{
	static const struct {
		const char *line;
		bool ok;
		enum proxy_imap_kind kind;
		enum proxy_status status;
		const char *tag, *resp, *code;
	} cases[] = {
		{ "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready", true, PROXY_IMAP_UNTAGGED, PROXY_STATUS_OK, NULL,
		  "OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "CAPABILITY IMAP4rev1 STARTTLS" },
		{ "* PREAUTH hi", true, PROXY_IMAP_UNTAGGED, PROXY_STATUS_PREAUTH, NULL, "PREAUTH hi", NULL },
		{ "* BYE", true, PROXY_IMAP_UNTAGGED, PROXY_STATUS_BYE, NULL, "BYE", NULL },
		{ "* CAPABILITY IMAP4rev1 IDLE", true, PROXY_IMAP_UNTAGGED, PROXY_STATUS_NONE, NULL,
		  "CAPABILITY IMAP4rev1 IDLE", NULL },
		{ "P1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in", true, PROXY_IMAP_TAGGED, PROXY_STATUS_OK, "P1",
		  "OK [CAPABILITY IMAP4rev1 IDLE] Logged in", "CAPABILITY IMAP4rev1 IDLE" },
		{ "P1 no [AUTHENTICATIONFAILED] x", true, PROXY_IMAP_TAGGED, PROXY_STATUS_NO, "P1",
		  "no [AUTHENTICATIONFAILED] x", "AUTHENTICATIONFAILED" },
		{ "a.b] BAD", true, PROXY_IMAP_TAGGED, PROXY_STATUS_BAD, "a.b]", "BAD", NULL },
		{ "+ ", true, PROXY_IMAP_CONTINUE, PROXY_STATUS_NONE, NULL, "", NULL },
		{ "+", true, PROXY_IMAP_CONTINUE, PROXY_STATUS_NONE, NULL, "", NULL },
		{ "+ aGk=", true, PROXY_IMAP_CONTINUE, PROXY_STATUS_NONE, NULL, "aGk=", NULL },
		{ "+x", false, 0, 0, NULL, NULL, NULL },
		{ "", false, 0, 0, NULL, NULL, NULL },
		{ "*", false, 0, 0, NULL, NULL, NULL },
		{ "* ", false, 0, 0, NULL, NULL, NULL },
		{ "P1", false, 0, 0, NULL, NULL, NULL },
		{ "P1 ", false, 0, 0, NULL, NULL, NULL },
		{ "P1 PREAUTH x", false, 0, 0, NULL, NULL, NULL },
		{ "P1 OKAY", false, 0, 0, NULL, NULL, NULL },
		{ "P{1 OK", false, 0, 0, NULL, NULL, NULL },
		{ "* OK [CAPABILITY IMAP4rev1", false, 0, 0, NULL, NULL, NULL },
		{ "* OK \r x", false, 0, 0, NULL, NULL, NULL },
		{ " P1 OK", false, 0, 0, NULL, NULL, NULL },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		struct proxy_imap_reply r;
		bool ok = proxy_imap_reply_parse(cases[i].line, strlen(cases[i].line), &r);
		if (ok != cases[i].ok)
			fprintf(stderr, "case %zu: %s\n", i, cases[i].line);
		test_assert(ok == cases[i].ok);
		if (!ok)
			continue;
		test_assert(r.kind == cases[i].kind && r.status == cases[i].status);
		test_assert((r.tag == NULL) == (cases[i].tag == NULL));
		if (r.tag != NULL)
			test_assert(r.tag_len == strlen(cases[i].tag) && memcmp(r.tag, cases[i].tag, r.tag_len) == 0);
		test_assert(r.resp_len == strlen(cases[i].resp) && memcmp(r.resp, cases[i].resp, r.resp_len) == 0);
		test_assert((r.code == NULL) == (cases[i].code == NULL));
		if (r.code != NULL)
			test_assert(r.code_len == strlen(cases[i].code) &&
				    memcmp(r.code, cases[i].code, r.code_len) == 0);
	}
	/* a NUL inside, and a line over the limit */
	struct proxy_imap_reply r;
	test_assert(!proxy_imap_reply_parse("* OK a\0b", 8, &r));
	char *big = xmalloc(PROXY_LINE_MAX + 2);
	memset(big, 'x', PROXY_LINE_MAX + 1);
	memcpy(big, "* OK ", 5);
	test_assert(proxy_imap_reply_parse(big, PROXY_LINE_MAX, &r));
	test_assert(!proxy_imap_reply_parse(big, PROXY_LINE_MAX + 1, &r));
	/* a tag longer than PROXY_TAG_MAX */
	memset(big, 'T', PROXY_TAG_MAX + 1);
	memcpy(big + PROXY_TAG_MAX + 1, " OK", 3);
	test_assert(!proxy_imap_reply_parse(big, PROXY_TAG_MAX + 4, &r));
	test_assert(proxy_imap_reply_parse(big + 1, PROXY_TAG_MAX + 3, &r));
	free(big);
}

/* Every prefix of every line parses without reading past its length (ASan checks the reads). */
static void imap_prefixes(void)
{
	static const char *const lines[] = { "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "P1 NO [X] y", "+ abc" };
	for (size_t i = 0; i < IX_ARRAY_LEN(lines); i++) {
		size_t len = strlen(lines[i]);
		for (size_t n = 0; n <= len; n++) {
			char *copy = xmalloc(n + 1);
			memcpy(copy, lines[i], n);
			struct proxy_imap_reply r;
			enum proxy_status st;
			const char *t;
			size_t tl;
			(void)proxy_imap_reply_parse(copy, n, &r);
			(void)proxy_pop3_reply_parse(copy, n, &st, &t, &tl);
			(void)proxy_imap_has_capability(copy, n, "STARTTLS");
			free(copy);
		}
	}
}

static void capabilities(void)
{
	const char *c = "CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN  SASL-IR";
	test_assert(proxy_imap_has_capability(c, strlen(c), "starttls"));
	test_assert(proxy_imap_has_capability(c, strlen(c), "SASL-IR"));
	test_assert(proxy_imap_has_capability(c, strlen(c), "AUTH=PLAIN"));
	test_assert(!proxy_imap_has_capability(c, strlen(c), "AUTH"));
	test_assert(!proxy_imap_has_capability(c, strlen(c), "STARTTL"));
	test_assert(!proxy_imap_has_capability(c, strlen(c), "IDLE"));
	test_assert(!proxy_imap_has_capability("ALERT", 5, "ALERT"));
	test_assert(!proxy_imap_has_capability("CAPABILITYX STARTTLS", 20, "STARTTLS"));
	test_assert(!proxy_imap_has_capability("CAPABILITY", 10, "CAPABILITY"));
}

static void pop3_replies(void)
{
	static const struct {
		const char *line;
		bool ok;
		enum proxy_status status;
		const char *text;
	} cases[] = {
		{ "+OK Logged in; 2 messages.", true, PROXY_STATUS_OK, "Logged in; 2 messages." },
		{ "+OK", true, PROXY_STATUS_OK, "" },
		{ "-ERR [AUTH] Authentication failed.", true, PROXY_STATUS_NO, "[AUTH] Authentication failed." },
		{ "-ERR", true, PROXY_STATUS_NO, "" },
		{ "+ ", true, PROXY_STATUS_NONE, "" },
		{ "+", true, PROXY_STATUS_NONE, "" },
		{ "+OKAY", false, 0, NULL },
		{ "-ERROR", false, 0, NULL },
		{ "+x", false, 0, NULL },
		{ "ok", false, 0, NULL },
		{ "", false, 0, NULL },
		{ "+OK a\nb", false, 0, NULL },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		enum proxy_status st;
		const char *t;
		size_t tl;
		bool ok = proxy_pop3_reply_parse(cases[i].line, strlen(cases[i].line), &st, &t, &tl);
		test_assert(ok == cases[i].ok);
		if (ok)
			test_assert(st == cases[i].status && tl == strlen(cases[i].text) &&
				    memcmp(t, cases[i].text, tl) == 0);
	}
}

static void sieve_replies(void)
{
	static const struct {
		const char *line;
		bool ok;
		enum proxy_status status;
		const char *text;
	} cases[] = {
		{ "OK \"Logged in.\"", true, PROXY_STATUS_OK, "\"Logged in.\"" },
		{ "ok", true, PROXY_STATUS_OK, "" },
		{ "NO (QUOTA/MAXSIZE) \"Too big\"", true, PROXY_STATUS_NO, "(QUOTA/MAXSIZE) \"Too big\"" },
		{ "BYE \"Server shutting down.\"", true, PROXY_STATUS_BYE, "\"Server shutting down.\"" },
		{ "\"SASL\" \"PLAIN\"", true, PROXY_STATUS_NONE, "" },
		{ "OKAY", false, 0, NULL },
		{ "NOPE", false, 0, NULL },
		{ "{5}", false, 0, NULL },
		{ "", false, 0, NULL },
		{ "OK a\rb", false, 0, NULL },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++) {
		enum proxy_status st;
		const char *t;
		size_t tl;
		bool ok = proxy_sieve_reply_parse(cases[i].line, strlen(cases[i].line), &st, &t, &tl);
		test_assert(ok == cases[i].ok);
		if (ok)
			test_assert(st == cases[i].status && tl == strlen(cases[i].text) &&
				    memcmp(t, cases[i].text, tl) == 0);
	}
}

static void backends(void)
{
	test_assert(tls_ip_is_loopback("127.0.0.1"));
	test_assert(tls_ip_is_loopback("127.45.0.9"));
	test_assert(tls_ip_is_loopback("::1"));
	test_assert(tls_ip_is_loopback("::ffff:127.0.0.1"));
	test_assert(!tls_ip_is_loopback("192.0.2.1"));
	test_assert(!tls_ip_is_loopback("2001:db8::1"));
	test_assert(!tls_ip_is_loopback("localhost"));
	struct proxy_backend b;
	struct buf err = BUF_INIT;
	test_assert(proxy_backend_resolve("127.0.0.1", 1143, &b, &err) == 0);
	test_assert_str(b.ip, "127.0.0.1");
	test_assert_str(b.host, "127.0.0.1");
	test_assert(b.port == 1143 && b.tls); /* on loopback too: the EXTERNAL sign-in presents our certificate */
	test_assert(proxy_backend_resolve("", 1143, &b, &err) == IX_EINVAL);
	test_assert(proxy_backend_resolve("127.0.0.1", 0, &b, &err) == IX_EINVAL);
	buf_reset(&err);
	test_assert(proxy_backend_resolve("no-such-host.invalid", 1143, &b, &err) == IX_ENOTFOUND);
	test_assert(err.len > 0);
	buf_free(&err);
}

/* ---- whole sessions against a scripted backend ---- */

#define BIG_DOWN (3u * 1024 * 1024) /* backend -> client: larger than every buffer on the way */
#define BIG_UP (2u * 1024 * 1024)   /* client -> backend */

enum script { SCRIPT_ACCEPT, SCRIPT_REFUSE, SCRIPT_SILENT };

/* TLS between the proxy and the scripted backend (NULL: none). */
struct world_tls {
	struct tls_ctx *client, *server;
	const char *host; /* the name the proxy checks in the backend's certificate */
};

struct world {
	struct evloop *loop;
	struct listener *lst;
	enum script script;
	enum proxy_proto proto;
	struct conn *backend; /* the scripted backend's side */
	bool backend_logged_in;
	size_t backend_got; /* bytes the backend received after the login */
	size_t backend_sent;
	char login_line[512];
	struct conn *front; /* the client connection as the session on A owns it */
	struct proxy *proxy;
	int client_fd; /* the mail client's end (non-blocking) */
	size_t client_got, client_sent;
	int results[4];
	char reply[256];
	bool client_eof;
	const struct world_tls *tls;
};

static void backend_pump(struct world *w)
{
	static char chunk[16384];
	memset(chunk, 'd', sizeof(chunk));
	while (w->backend_sent < BIG_DOWN && conn_output_len(w->backend) < 65536) {
		size_t n = BIG_DOWN - w->backend_sent < sizeof(chunk) ? BIG_DOWN - w->backend_sent : sizeof(chunk);
		conn_write(w->backend, chunk, n);
		w->backend_sent += n;
	}
}

static void backend_event(struct conn *c, enum conn_event ev, void *ctx)
{
	struct world *w = ctx;
	if (ev == CONN_EVENT_INPUT && !w->backend_logged_in) {
		const char *line;
		size_t len;
		while (conn_read_line(c, 500, 0, &line, &len) == CONN_LINE_OK) {
			if (len == 11 && memcmp(line, "P0 STARTTLS", 11) == 0 && w->tls != NULL) {
				conn_write_str(c, "P0 OK Begin TLS negotiation now.\r\n");
				conn_start_tls(c, w->tls->server, NULL, NULL);
				return;
			}
			snprintf(w->login_line, sizeof(w->login_line), "%.*s", (int)len, line);
			if (w->script == SCRIPT_REFUSE) {
				conn_write_str(c, w->proto == PROXY_IMAP ? "P1 NO [AUTHENTICATIONFAILED] Nope.\r\n"
									 : "-ERR [AUTH] Nope.\r\n");
				return;
			}
			conn_write_str(c, w->proto == PROXY_IMAP
						  ? "* CAPABILITY IMAP4rev1\r\nP1 OK [CAPABILITY IMAP4rev1 "
						    "IDLE] Logged in\r\n"
						  : "+OK Logged in; 0 messages.\r\n");
			w->backend_logged_in = true;
			backend_pump(w);
			break;
		}
	}
	if (ev == CONN_EVENT_INPUT && w->backend_logged_in) {
		const char *d;
		size_t n;
		while ((n = conn_read_bytes(c, 65536, &d)) > 0)
			w->backend_got += n;
		if (w->backend_got >= BIG_UP && w->backend_sent >= BIG_DOWN && conn_output_len(c) == 0)
			conn_close_after_flush(c);
	}
	if (ev == CONN_EVENT_EOF || ev == CONN_EVENT_ERROR || ev == CONN_EVENT_CLOSED)
		conn_destroy(&w->backend);
}

static void backend_drain_check(struct world *w)
{
	if (w->backend != NULL && w->backend_logged_in && w->backend_sent < BIG_DOWN)
		backend_pump(w);
	if (w->backend != NULL && w->backend_got >= BIG_UP && w->backend_sent >= BIG_DOWN &&
	    conn_output_len(w->backend) == 0)
		conn_close_after_flush(w->backend);
}

static void on_accept(struct listener *l, int fd, void *ctx)
{
	struct world *w = ctx;
	listener_release(l);
	w->backend = conn_create(w->loop, fd, backend_event, w);
	if (w->script != SCRIPT_SILENT)
		conn_write_str(w->backend, w->proto == PROXY_POP3 ? "+OK test\r\n"
					   : w->tls != NULL ? "* OK [CAPABILITY IMAP4rev1 STARTTLS SASL-IR] test\r\n"
							    : "* OK [CAPABILITY IMAP4rev1 SASL-IR] test\r\n");
}

static void proxy_result(struct proxy *p, enum proxy_result r, const char *reply, void *ctx)
{
	(void)p;
	struct world *w = ctx;
	w->results[r]++;
	snprintf(w->reply, sizeof(w->reply), "%s", reply);
	if (r == PROXY_LOGGED_IN)
		return;
	proxy_destroy(&w->proxy);
	conn_destroy(&w->front);
}

static void front_event(struct conn *c, enum conn_event ev, void *ctx)
{
	(void)c;
	struct world *w = ctx;
	if (w->proxy != NULL)
		proxy_client_event(w->proxy, ev);
}

static void world_run(struct world *w, enum script script, enum proxy_proto proto, const char *ip, unsigned port,
		      unsigned login_ms, const struct world_tls *tls)
{
	memset(w, 0, sizeof(*w));
	w->tls = tls;
	w->script = script;
	w->proto = proto;
	struct buf err = BUF_INIT;
	if (evloop_create(&w->loop, &err) != 0)
		abort();
	if (port == 0) {
		if (listener_create(w->loop, "127.0.0.1", 0, 0, on_accept, w, &w->lst, &err) != 0)
			abort();
		port = listener_port(w->lst);
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	w->client_fd = sv[1];
	fcntl(w->client_fd, F_SETFL, O_NONBLOCK);
	w->front = conn_create(w->loop, sv[0], front_event, w);
	conn_pause_input(w->front, true); /* as the session leaves it during the login */
	struct proxy_backend b = { 0 };
	snprintf(b.host, sizeof(b.host), "%s", tls != NULL ? tls->host : "backend.test");
	snprintf(b.ip, sizeof(b.ip), "%s", ip);
	b.port = port;
	b.tls = tls != NULL || !tls_ip_is_loopback(ip);
	struct proxy_login l = { 0 };
	l.proto = proto;
	l.backend = &b;
	l.user = "hana";
	l.idle_timeout_msecs = 10000;
	l.login_timeout_msecs = login_ms;
	l.tls = tls != NULL ? tls->client : NULL;
	w->proxy = proxy_start(w->loop, w->front, &l, proxy_result, w);
	test_assert(w->results[PROXY_LOGGED_IN] + w->results[PROXY_UNAVAILABLE] == 0); /* never from inside */
	static char buf[65536];
	memset(buf, 'u', sizeof(buf));
	for (unsigned rounds = 0; rounds < 200000; rounds++) {
		evloop_run_once(w->loop, 5);
		backend_drain_check(w);
		if (w->results[PROXY_LOGGED_IN] > 0 && w->client_sent < BIG_UP) {
			size_t n = BIG_UP - w->client_sent < sizeof(buf) ? BIG_UP - w->client_sent : sizeof(buf);
			ssize_t k = write(w->client_fd, buf, n);
			if (k > 0)
				w->client_sent += (size_t)k;
		}
		ssize_t k;
		while ((k = read(w->client_fd, buf, sizeof(buf))) > 0)
			w->client_got += (size_t)k;
		if (k == 0)
			w->client_eof = true;
		if (w->proxy == NULL && w->backend == NULL && (w->client_eof || w->front == NULL))
			break;
	}
	close(w->client_fd);
	conn_destroy(&w->backend);
	proxy_destroy(&w->proxy);
	conn_destroy(&w->front);
	listener_destroy(&w->lst);
	evloop_destroy(&w->loop);
	buf_free(&err);
}

static bool external_ok(const char *b64)
{
	struct buf out = BUF_INIT;
	bool ok = base64_decode(b64, strlen(b64), 64, &out) == IX_OK && out.len == 4 &&
		  memcmp(out.data, "hana", 4) == 0;
	buf_free(&out);
	return ok;
}

static void imap_session_piped(void)
{
	struct world w;
	world_run(&w, SCRIPT_ACCEPT, PROXY_IMAP, "127.0.0.1", 0, 0, NULL);
	test_assert(strncmp(w.login_line, "P1 AUTHENTICATE EXTERNAL ", 25) == 0);
	test_assert(external_ok(w.login_line + 25));
	test_assert(w.results[PROXY_LOGGED_IN] == 1 && w.results[PROXY_ENDED] == 1);
	test_assert(w.results[PROXY_UNAVAILABLE] == 0 && w.results[PROXY_REFUSED] == 0);
	test_assert(w.backend_got == BIG_UP);
	test_assert(w.client_got == BIG_DOWN);
	test_assert(w.client_eof);
}

static void pop3_session_piped(void)
{
	struct world w;
	world_run(&w, SCRIPT_ACCEPT, PROXY_POP3, "127.0.0.1", 0, 0, NULL);
	test_assert(strncmp(w.login_line, "AUTH EXTERNAL ", 14) == 0);
	test_assert(external_ok(w.login_line + 14));
	test_assert(w.results[PROXY_LOGGED_IN] == 1 && w.results[PROXY_ENDED] == 1);
	test_assert(w.backend_got == BIG_UP && w.client_got == BIG_DOWN);
}

static void refused_and_unavailable(void)
{
	struct world w;
	world_run(&w, SCRIPT_REFUSE, PROXY_IMAP, "127.0.0.1", 0, 0, NULL);
	test_assert(w.results[PROXY_REFUSED] == 1 && w.results[PROXY_LOGGED_IN] == 0);
	test_assert_str(w.reply, "NO [AUTHENTICATIONFAILED] Nope.");
	world_run(&w, SCRIPT_REFUSE, PROXY_POP3, "127.0.0.1", 0, 0, NULL);
	test_assert(w.results[PROXY_REFUSED] == 1);
	test_assert_str(w.reply, "-ERR [AUTH] Nope.");
	/* a backend that accepts and never says a word: the login deadline */
	world_run(&w, SCRIPT_SILENT, PROXY_IMAP, "127.0.0.1", 0, 150, NULL);
	test_assert(w.results[PROXY_UNAVAILABLE] == 1);
	test_assert(strstr(w.reply, "no answer to the login within 150 ms") != NULL);
	/* a closed port: a free port found by binding and closing */
	struct buf err = BUF_INIT;
	struct evloop *loop;
	struct listener *l;
	test_assert(evloop_create(&loop, &err) == 0);
	test_assert(listener_create(loop, "127.0.0.1", 0, 0, on_accept, NULL, &l, &err) == 0);
	unsigned port = listener_port(l);
	listener_destroy(&l);
	evloop_destroy(&loop);
	buf_free(&err);
	world_run(&w, SCRIPT_ACCEPT, PROXY_POP3, "127.0.0.1", port, 0, NULL);
	test_assert(w.results[PROXY_UNAVAILABLE] == 1);
	/* off loopback without a TLS client context: refused before any connection, reported from the loop */
	world_run(&w, SCRIPT_ACCEPT, PROXY_IMAP, "192.0.2.1", 143, 0, NULL);
	test_assert(w.results[PROXY_UNAVAILABLE] == 1);
	test_assert(strstr(w.reply, "needs TLS") != NULL);
}

/* A backend off loopback gets STARTTLS and its certificate verified against DATA/tls/peers.pem. */
static void tls_to_the_backend(void)
{
	char dir[] = "/tmp/ix-proxy-tls-XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	char *tlsdir = xasprintf("%s/tls", dir), *cert = xasprintf("%s/cert.pem", dir),
	     *key = xasprintf("%s/key.pem", dir), *pinned = xasprintf("%s/%s", dir, TLS_PEERS_FILE);
	test_assert(mkdir(tlsdir, 0700) == 0);
	struct buf err = BUF_INIT;
	test_assert(tls_make_self_signed("backend.test", NULL, cert, key, 2, &err) == 0);
	struct tls_ctx *server = NULL;
	test_assert(tls_server_ctx_create(cert, key, &server, &err) == 0);
	struct tls_peers *trust = tls_peers_create(dir, false);

	/* no trust file yet: no context (never the system store), so no login leaves for the backend */
	struct world w;
	struct world_tls t = { tls_peers_ctx(trust), server, "backend.test" };
	test_assert(t.client == NULL && tls_peers_ctx(trust) == NULL);
	world_run(&w, SCRIPT_ACCEPT, PROXY_IMAP, "127.0.0.1", 0, 0, &t);
	test_assert(w.results[PROXY_UNAVAILABLE] == 1 && w.login_line[0] == '\0');

	/* the attendant writes the servers' certificates: the next login uses them */
	test_assert(rename(cert, pinned) == 0);
	t.client = tls_peers_ctx(trust);
	test_assert(t.client != NULL);
	world_run(&w, SCRIPT_ACCEPT, PROXY_IMAP, "127.0.0.1", 0, 0, &t);
	test_assert(w.results[PROXY_LOGGED_IN] == 1 && w.results[PROXY_ENDED] == 1);
	test_assert(strncmp(w.login_line, "P1 AUTHENTICATE EXTERNAL ", 25) == 0 && external_ok(w.login_line + 25));
	test_assert(w.backend_got == BIG_UP && w.client_got == BIG_DOWN);
	/* the certificate names another host */
	t.host = "other.test";
	world_run(&w, SCRIPT_ACCEPT, PROXY_IMAP, "127.0.0.1", 0, 0, &t);
	test_assert(w.results[PROXY_UNAVAILABLE] == 1 && w.results[PROXY_LOGGED_IN] == 0);
	test_assert(w.login_line[0] == '\0'); /* the login never left */

	tls_ctx_destroy(&server);
	tls_peers_destroy(&trust);
	unlink(pinned);
	unlink(key);
	rmdir(tlsdir);
	rmdir(dir);
	free(tlsdir);
	free(cert);
	free(key);
	free(pinned);
	buf_free(&err);
}

TEST_MAIN("proxy", TEST_CASE(imap_replies), TEST_CASE(imap_prefixes), TEST_CASE(capabilities), TEST_CASE(pop3_replies),
	  TEST_CASE(sieve_replies), TEST_CASE(backends), TEST_CASE(imap_session_piped), TEST_CASE(pop3_session_piped),
	  TEST_CASE(refused_and_unavailable), TEST_CASE(tls_to_the_backend))
