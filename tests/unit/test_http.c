/* test_http.c - the HTTP(S) server library over real sockets on 127.0.0.1: routing (404, 405 with Allow, HEAD),
 * request bodies and their limit, the Host header, token names, and a certificate reloaded without a restart. */
#include "tests/unit/test.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/http/clientconf.h"
#include "transport/http/http_server.h"
#include "transport/net/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void echo(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)ctx;
	const char *q = http_request_query(req, "q");
	buf_printf(&resp->body, "%s %s host=%s tls=%d q=%s body=%zu:%s", req->method, req->path, req->host, req->tls,
		   q != NULL ? q : "-", req->body_len, req->body);
	http_response_header(resp, "X-Test", "yes");
	http_response_header(resp, "X-Bad", "a\r\nInjected: 1");
}

static void created(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	resp->status = 201;
	resp->content_type = "application/json";
	buf_append_str(&resp->body, "{}");
}

static const struct http_route routes[] = {
	{ "GET", "/echo", false, HTTP_ON_BOTH, echo },
	{ "POST", "/echo", false, HTTP_ON_PLAIN, echo },
	{ "GET", "/files/", true, HTTP_ON_PLAIN, echo },
	{ "PUT", "/tls-only", false, HTTP_ON_TLS, created },
};

static int connect_port(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { 10, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends raw (one request, Connection: close) and returns the whole answer (caller frees), or NULL. */
static char *exchange(unsigned port, const char *raw, size_t len)
{
	int fd = connect_port(port);
	if (fd < 0)
		return NULL;
	if (write_full(fd, raw, len) < 0) {
		close(fd);
		return NULL;
	}
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	close(fd);
	return buf_steal(&b);
}

static char *request(unsigned port, const char *req)
{
	return exchange(port, req, strlen(req));
}

static char tmpdir[64];
static char cert_path[128], key_path[128];

static struct http_server *start(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ix-test-http-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return NULL;
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
	struct buf err = BUF_INIT;
	if (tls_make_self_signed("one.example.com", NULL, cert_path, key_path, 30, &err) != IX_OK)
		return NULL;
	struct http_server_config cfg = { .listen = "127.0.0.1",
					  .http_port = 0,
					  .https_port = 0,
					  .cert_path = cert_path,
					  .key_path = key_path,
					  .routes = routes,
					  .route_count = IX_ARRAY_LEN(routes) };
	/* port 0 means "none" to the library: pick free ports by binding first */
	for (int i = 0; i < 2; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t l = sizeof(sa);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || getsockname(fd, (struct sockaddr *)&sa, &l) < 0)
			return NULL;
		close(fd);
		*(i == 0 ? &cfg.http_port : &cfg.https_port) = ntohs(sa.sin_port);
	}
	struct http_server *srv = NULL;
	if (http_server_start(&cfg, &srv, &err) != IX_OK) {
		fprintf(stderr, "http_server_start: %s\n", buf_cstr(&err));
		srv = NULL;
	}
	buf_free(&err);
	return srv;
}

static void finish(struct http_server **srv)
{
	http_server_stop(srv);
	unlink(cert_path);
	unlink(key_path);
	rmdir(tmpdir);
}

static void http_routes(void)
{
	struct http_server *srv = start();
	test_assert(srv != NULL);
	unsigned port = http_server_port(srv, false);
	char *r = request(port,
			  "GET /echo?q=a%20b HTTP/1.1\r\nHost: Mail.Example.COM:8080\r\nConnection: close\r\n\r\n");
	test_assert(r != NULL && strncmp(r, "HTTP/1.1 200", 12) == 0);
	test_assert(strstr(r, "GET /echo host=mail.example.com tls=0 q=a b body=0:") != NULL);
	test_assert(strstr(r, "X-Test: yes") != NULL && strstr(r, "Injected") == NULL);
	test_assert(strstr(r, "X-Content-Type-Options: nosniff") != NULL);
	free(r);
	/* HEAD takes a GET route and gets no body */
	r = request(port, "HEAD /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	test_assert(r != NULL && strncmp(r, "HTTP/1.1 200", 12) == 0 && strstr(r, "GET /echo") == NULL);
	free(r);
	/* a prefix route; an unknown path; a known path with another method */
	r = request(port, "GET /files/a/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	test_assert(r != NULL && strstr(r, "GET /files/a/b host=x") != NULL);
	free(r);
	r = request(port, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	test_assert(r != NULL && strncmp(r, "HTTP/1.1 404", 12) == 0);
	free(r);
	r = request(port, "DELETE /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	test_assert(r != NULL && strncmp(r, "HTTP/1.1 405", 12) == 0 && strstr(r, "Allow: GET, HEAD, POST") != NULL);
	free(r);
	/* a route on the TLS listener only does not answer on the plain one */
	r = request(port, "PUT /tls-only HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	test_assert(r != NULL && strncmp(r, "HTTP/1.1 404", 12) == 0);
	free(r);
	/* no Host header at all (HTTP/1.0) */
	r = request(port, "GET /echo HTTP/1.0\r\n\r\n");
	test_assert(r != NULL && strstr(r, "host= tls=0") != NULL);
	free(r);
	finish(&srv);
}

static void http_bodies(void)
{
	struct http_server *srv = start();
	test_assert(srv != NULL);
	unsigned port = http_server_port(srv, false);
	char *r = request(port,
			  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
	test_assert(r != NULL && strstr(r, "POST /echo host=x tls=0 q=- body=5:hello") != NULL);
	free(r);
	/* chunked */
	r = request(port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
			  "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
	test_assert(r != NULL && strstr(r, "body=5:abcde") != NULL);
	free(r);
	/* a declared body over the limit is refused before it is read */
	char big[160];
	snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		 HTTP_MAX_BODY + 1);
	r = request(port, big);
	test_assert(r != NULL && strncmp(r, "HTTP/1.1 413", 12) == 0);
	free(r);
	/* a chunked body that grows past the limit */
	struct buf huge = BUF_INIT;
	buf_append_str(&huge,
		       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	char *chunk = xmalloc(65536);
	memset(chunk, 'x', 65536);
	for (int i = 0; i < HTTP_MAX_BODY / 65536 + 2; i++) {
		buf_append_str(&huge, "10000\r\n");
		buf_append(&huge, chunk, 65536);
		buf_append_str(&huge, "\r\n");
	}
	buf_append_str(&huge, "0\r\n\r\n");
	free(chunk);
	r = exchange(port, huge.data, huge.len);
	test_assert(r == NULL || r[0] == '\0' || strncmp(r, "HTTP/1.1 413", 12) == 0);
	test_assert(r == NULL || strstr(r, "body=") == NULL);
	free(r);
	buf_free(&huge);
	/* headers over the limit never reach a handler */
	struct buf hdrs = BUF_INIT;
	buf_append_str(&hdrs, "GET /echo HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < HTTP_MAX_HEADER_BYTES / 64 + 10; i++)
		buf_printf(&hdrs, "X-Filler-%d: %050d\r\n", i, i);
	buf_append_str(&hdrs, "Connection: close\r\n\r\n");
	r = exchange(port, hdrs.data, hdrs.len);
	test_assert(r == NULL || strstr(r, "GET /echo host") == NULL);
	free(r);
	buf_free(&hdrs);
	finish(&srv);
}

/* The SHA-256 of the certificate the TLS port presents, or "" when the handshake fails. */
static void presented(unsigned port, char hex[TLS_FINGERPRINT_HEX + 1])
{
	hex[0] = '\0';
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	int fd = connect_port(port);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "one.example.com");
	if (fd >= 0 && SSL_connect(ssl) == 1) {
		tls_peer_fingerprint(ssl, hex);
		static const char req[] =
			"PUT /tls-only HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		char answer[512] = "";
		SSL_write(ssl, req, (int)strlen(req));
		int n = SSL_read(ssl, answer, sizeof(answer) - 1);
		if (n <= 0 || strncmp(answer, "HTTP/1.1 201", 12) != 0)
			hex[0] = '\0';
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
}

static void https_reload(void)
{
	struct http_server *srv = start();
	test_assert(srv != NULL);
	unsigned port = http_server_port(srv, true);
	char before[TLS_FINGERPRINT_HEX + 1], after[TLS_FINGERPRINT_HEX + 1];
	presented(port, before);
	test_assert(before[0] != '\0');
	/* a broken key: refused, the old certificate stays */
	test_assert(write_file_atomic(key_path, "junk", 4, 0600) == 0);
	struct buf err = BUF_INIT;
	test_assert(http_server_reload_tls(srv, &err) != IX_OK && err.len > 0);
	presented(port, after);
	test_assert_str(after, before);
	/* a new pair: served from the next connection on, by the same socket */
	buf_reset(&err);
	test_assert(tls_make_self_signed("two.example.com", NULL, cert_path, key_path, 30, &err) == IX_OK);
	test_assert(http_server_reload_tls(srv, &err) == IX_OK);
	presented(port, after);
	test_assert(after[0] != '\0' && strcmp(after, before) != 0);
	buf_free(&err);
	finish(&srv);
}

static void http_tokens(void)
{
	test_assert(http_token_valid("abc-DEF_123"));
	test_assert(!http_token_valid(""));
	test_assert(!http_token_valid("../etc"));
	test_assert(!http_token_valid("a/b"));
	test_assert(!http_token_valid("a.b"));
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	test_assert(!http_token_valid(longname));
	longname[255] = '\0';
	test_assert(http_token_valid(longname));
}

static void clientconf_addresses(void)
{
	const char *domain = NULL;
	test_assert(clientconf_address("alice@example.com", &domain) && strcmp(domain, "example.com") == 0);
	test_assert(clientconf_address("o'brien+tag@sub.example.com", &domain) &&
		    strcmp(domain, "sub.example.com") == 0);
	test_assert(!clientconf_address("@example.com", NULL));
	test_assert(!clientconf_address("alice", NULL));
	test_assert(!clientconf_address("alice@", NULL));
	test_assert(!clientconf_address("a b@example.com", NULL));
	test_assert(!clientconf_address("a<b@example.com", NULL));
	test_assert(!clientconf_address("a&b@example.com", NULL));
	test_assert(!clientconf_address("alice@exa_mple.com", NULL));
	char big[300];
	memset(big, 'a', sizeof(big));
	strcpy(big + 250, "@example.com");
	test_assert(!clientconf_address(big, NULL));
}

static void clientconf_autodiscover_parse(void)
{
	struct buf a = BUF_INIT;
	static const char outlook[] =
		"<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
		"autodiscover/outlook/requestschema/2006\"><Request><EMailAddress> bob@example.com\r\n</EMailAddress>"
		"<AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>";
	test_assert(clientconf_autodiscover_request(outlook, strlen(outlook), &a));
	test_assert_str(buf_cstr(&a), "bob@example.com");
	static const char prefixed[] = "<a:Autodiscover><a:Request><a:EMailAddress>c@example.org</a:EMailAddress>";
	test_assert(clientconf_autodiscover_request(prefixed, strlen(prefixed), &a));
	test_assert_str(buf_cstr(&a), "c@example.org");
	static const char *const bad[] = {
		"<Autodiscover><Request></Request></Autodiscover>",
		"<EMailAddress/>",
		"<EMailAddress>unterminated@example.com",
		"<EMailAddress>not an address</EMailAddress>",
		"<EMailAddressX>a@example.com</EMailAddressX>",
		"<EMailAddress>a&amp;b@example.com</EMailAddress>",
		"",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++)
		test_assert(!clientconf_autodiscover_request(bad[i], strlen(bad[i]), &a));
	buf_free(&a);
}

static void clientconf_documents(void)
{
	const char *const mx[] = { "mx1.example.com", "mx2.example.com", NULL };
	struct clientconf cc = { .hostname = "mail.example.com",
				 .domain = "example.com",
				 .org = "Example & Co",
				 .imap = 143,
				 .imaps = 993,
				 .submission = 587,
				 .mx = mx };
	struct buf out = BUF_INIT;
	clientconf_thunderbird(&cc, &out);
	test_assert(strstr(buf_cstr(&out), "<displayName>Example &amp; Co</displayName>") != NULL);
	test_assert(strstr(buf_cstr(&out), "<port>993</port>\n      <socketType>SSL</socketType>") != NULL);
	test_assert(strstr(buf_cstr(&out), "<port>143</port>\n      <socketType>STARTTLS</socketType>") != NULL);
	test_assert(strstr(buf_cstr(&out), "pop3") == NULL); /* a port 0 is not offered */
	buf_reset(&out);
	clientconf_autodiscover(&cc, "o'brien@example.com", &out);
	test_assert(strstr(buf_cstr(&out), "<LoginName>o&apos;brien@example.com</LoginName>") != NULL);
	test_assert(strstr(buf_cstr(&out), "<Type>POP3</Type>") == NULL);
	test_assert(strstr(buf_cstr(&out), "<Port>587</Port>") != NULL &&
		    strstr(buf_cstr(&out), "<Encryption>TLS</Encryption>") != NULL);
	buf_reset(&out);
	clientconf_mobileconfig(&cc, "alice@example.com", &out);
	test_assert(strstr(buf_cstr(&out), "<string>com.example.mail.mail.") != NULL);
	struct buf again = BUF_INIT;
	clientconf_mobileconfig(&cc, "alice@example.com", &again);
	test_assert_str(buf_cstr(&again), buf_cstr(&out));
	buf_reset(&again);
	clientconf_mobileconfig(&cc, "bob@example.com", &again);
	test_assert(strcmp(buf_cstr(&again), buf_cstr(&out)) != 0);
	buf_free(&again);
	/* the MTA-STS id follows the policy's text */
	char id1[17], id2[17];
	buf_reset(&out);
	clientconf_mta_sts(&cc, &out, id1);
	test_assert_str(buf_cstr(&out), "version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\n"
					"max_age: 604800\n");
	test_assert(strlen(id1) == 16);
	const char *const one[] = { "mx1.example.com", NULL };
	cc.mx = one;
	buf_reset(&out);
	clientconf_mta_sts(&cc, &out, id2);
	test_assert(strcmp(id1, id2) != 0);
	buf_reset(&out);
	clientconf_autodiscover_error(603, "<no>", &out);
	test_assert(strstr(buf_cstr(&out), "<ErrorCode>603</ErrorCode>\n      <Message>&lt;no&gt;</Message>") != NULL);
	buf_free(&out);
}

TEST_MAIN("http", TEST_CASE(http_routes), TEST_CASE(http_bodies), TEST_CASE(https_reload), TEST_CASE(http_tokens),
	  TEST_CASE(clientconf_addresses), TEST_CASE(clientconf_autodiscover_parse), TEST_CASE(clientconf_documents))
