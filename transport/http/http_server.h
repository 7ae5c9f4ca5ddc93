/* http_server.h - Interchange's embedded HTTP and HTTPS server over GNU libmicrohttpd (Debian's libmicrohttpd12):
 * one plain and one TLS listener, a table of routes, bounded requests, and a certificate that reloads in place. */
#ifndef IX_HTTP_SERVER_H
#define IX_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Limits of every request, the same on both listeners. A request over them is answered by the library (413 for a
 * body, 431 for headers, which libmicrohttpd sends) and never reaches a handler. */
#define HTTP_MAX_BODY (1024 * 1024)       /* a request body (Content-Length or chunked) */
#define HTTP_MAX_HEADER_BYTES (32 * 1024) /* the request line and headers together (the connection's memory) */
#define HTTP_MAX_CONNS 512                /* connections open at once, per listener */
#define HTTP_MAX_CONNS_PER_IP 64          /* connections open at once from one address, per listener */
#define HTTP_TIMEOUT_SECONDS 30           /* a connection idle this long is closed */
#define HTTP_THREADS 2                    /* threads per listener that run the handlers */
#define HTTP_RELOAD_GRACE_MS 3000         /* how long requests under the old certificate may finish at a reload */
/* TLS: 1.2 and 1.3 only, the GnuTLS priority string. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

/* A request as a handler sees it. Every pointer is valid during the handler's call only. */
struct http_request {
	const char *method; /* "GET", "HEAD", "POST"... */
	const char *path;   /* the URL's path, percent-decoded, without the query */
	const char *host;   /* the Host header without its port, lower-case; "" when absent */
	const char *peer;   /* the client's address as text */
	bool tls;           /* arrived on the HTTPS listener */
	const char *body;   /* the request body (NUL-terminated; body_len excludes the NUL), "" when none */
	size_t body_len;
	void *conn; /* private */
};
/* A request header (case-insensitive name) or query argument (decoded), or NULL. Valid during the handler's call. */
const char *http_request_header(const struct http_request *req, const char *name);
const char *http_request_query(const struct http_request *req, const char *name);

/* What a handler fills in: status (default 200), content type (default text/plain; charset=utf-8), the body and
 * extra headers. The library owns and frees it; for HEAD it sends the headers and no body. */
struct http_response {
	unsigned status;
	const char *content_type; /* a static string or one that outlives the call */
	struct buf body;
	struct buf headers; /* private: use http_response_header */
};
/* Adds a header (name and value are copied). A name or value with CR or LF is refused (not added). */
void http_response_header(struct http_response *resp, const char *name, const char *value);
/* Sets status and a short plain-text body ("404 Not Found: /x"). */
void http_response_error(struct http_response *resp, unsigned status, const char *message);

/* A handler runs on one of the listener's threads: it may run for several requests at once and must keep ctx
 * thread-safe. It must not block for long (a directory replica lookup is fine, a network round trip is not). */
typedef void http_handler_fn(const struct http_request *req, struct http_response *resp, void *ctx);

/* Where a route answers. */
#define HTTP_ON_PLAIN 1u
#define HTTP_ON_TLS 2u
#define HTTP_ON_BOTH (HTTP_ON_PLAIN | HTTP_ON_TLS)

/* A route: the first in the table whose listener, method and path match takes the request. method NULL takes any
 * method (the handler answers 405 itself); path is exact, or with prefix true every path that starts with it. A
 * request no route takes gets 404, a path that matches with another method 405 with an Allow header. */
struct http_route {
	const char *method;
	const char *path;
	bool prefix;
	unsigned on; /* HTTP_ON_* */
	http_handler_fn *fn;
};

struct http_server_config {
	const char *listen;               /* a numeric address ("127.0.0.1", "::", "0.0.0.0"); NULL: every address */
	unsigned http_port;               /* 0: no plain listener */
	unsigned https_port;              /* 0: no TLS listener */
	const char *cert_path, *key_path; /* PEM: the certificate chain (leaf first) and its key; for https_port */
	const struct http_route *routes;  /* copied by reference: the table outlives the server */
	size_t route_count;
	void *ctx; /* given to every handler */
};

struct http_server;
/* Binds both listeners and starts serving them on the library's threads. Returns IX_OK with *srv_r, or IX_EIO (a
 * port cannot be bound, a file cannot be read) / IX_EINVAL (bad address, a certificate or key GnuTLS refuses, or
 * a libmicrohttpd without TLS) with the reason in error_r; nothing is left open then. */
int http_server_start(const struct http_server_config *cfg, struct http_server **srv_r, struct buf *error_r);
/* Reads the certificate and key files again and serves new TLS connections with them: the listening socket stays
 * open (no connection is refused meanwhile) and requests already under way get HTTP_RELOAD_GRACE_MS to finish
 * (the call waits that long at most). On failure the old certificate stays in use. Call it from one thread at a
 * time (not from a handler). Returns IX_OK, or IX_EIO / IX_EINVAL with error_r. */
int http_server_reload_tls(struct http_server *srv, struct buf *error_r);
/* The port each listener is bound to (0 when there is none). */
unsigned http_server_port(const struct http_server *srv, bool tls);
/* Closes the listeners and every connection, waits for the handlers to return, frees; sets *srv to NULL. */
void http_server_stop(struct http_server **srv);

/* Answers 301 to the request's path (percent-encoded where needed) on https://HOST:https_port, HOST the request's
 * Host header, else default_host; message is the body's sentence. For what is served over TLS only. */
void http_response_to_https(const struct http_request *req, struct http_response *resp, unsigned https_port,
			    const char *default_host, const char *message);
/* Appends s percent-encoded except for RFC 3986's unreserved characters and, when keep_slash, '/'. */
void http_percent_encode(struct buf *out, const char *s, bool keep_slash);

/* Pure: true when p is a safe relative file name under a served folder: 1-255 bytes of letters, digits, '-' and
 * '_' (base64url, what ACME tokens are made of), so that it can never leave the folder. */
bool http_token_valid(const char *p);

#endif
