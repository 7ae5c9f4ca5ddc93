/* http_server.c - the HTTP(S) server over libmicrohttpd (see http_server.h): our own listening sockets handed to
 * one libmicrohttpd daemon per listener, the body gathered under a limit, the route table, and TLS reloads. */
#include "transport/http/http_server.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One listener: its socket (ours: it outlives each libmicrohttpd daemon that serves it) and the daemon. */
struct side {
	struct http_server *srv;
	bool tls;
	int fd;
	unsigned port;
	struct MHD_Daemon *mhd;
	char *cert, *key; /* the PEM texts the daemon was started with (libmicrohttpd keeps pointers to them) */
};

struct http_server {
	struct http_server_config cfg;
	char *listen, *cert_path, *key_path;
	struct side plain, tls;
};

/* Per request: the body gathered so far. */
struct req_state {
	struct buf body;
	bool refused;
};

void http_response_header(struct http_response *resp, const char *name, const char *value)
{
	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return;
	buf_append_str(&resp->headers, name);
	buf_append_char(&resp->headers, '\0');
	buf_append_str(&resp->headers, value);
	buf_append_char(&resp->headers, '\0');
}

void http_response_error(struct http_response *resp, unsigned status, const char *message)
{
	resp->status = status;
	resp->content_type = "text/plain; charset=utf-8";
	buf_reset(&resp->body);
	buf_printf(&resp->body, "%u %s\n", status, message);
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void http_percent_encode(struct buf *out, const char *s, bool keep_slash)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p) != NULL || (keep_slash && *p == '/'))
			buf_append_char(out, (char)*p);
		else
			buf_printf(out, "%%%02X", *p);
	}
}

void http_response_to_https(const struct http_request *req, struct http_response *resp, unsigned https_port,
			    const char *default_host, const char *message)
{
	struct buf loc = BUF_INIT;
	buf_printf(&loc, "https://%s:%u", req->host[0] != '\0' ? req->host : default_host, https_port);
	http_percent_encode(&loc, req->path, true);
	http_response_header(resp, "Location", buf_cstr(&loc));
	buf_free(&loc);
	buf_reset(&resp->body);
	http_response_error(resp, 301, message);
}

bool http_token_valid(const char *p)
{
	size_t n = 0;
	for (; p[n] != '\0'; n++) {
		char c = p[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_') ||
		    n >= 255)
			return false;
	}
	return n > 0;
}

/* Sends resp on c; frees nothing of resp. */
static enum MHD_Result send_response(struct MHD_Connection *c, struct http_response *resp)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		resp->body.len, resp->body.data != NULL ? resp->body.data : (char *)"", MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				resp->content_type != NULL ? resp->content_type : "text/plain; charset=utf-8");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	for (size_t off = 0; off < resp->headers.len;) {
		const char *name = resp->headers.data + off;
		const char *value = name + strlen(name) + 1;
		MHD_add_response_header(r, name, value);
		off = (size_t)(value + strlen(value) + 1 - resp->headers.data);
	}
	enum MHD_Result ret = MHD_queue_response(c, resp->status != 0 ? resp->status : MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *message)
{
	struct http_response resp = { 0 };
	http_response_error(&resp, status, message);
	enum MHD_Result ret = send_response(c, &resp);
	buf_free(&resp.body);
	return ret;
}

/* The Host header's name: the port and IPv6 brackets dropped, lower-case. */
static void host_name(const char *host, struct buf *out)
{
	if (host == NULL)
		return;
	const char *end;
	if (host[0] == '[') {
		host++;
		end = strchr(host, ']');
	} else {
		end = strchr(host, ':');
	}
	size_t n = end != NULL ? (size_t)(end - host) : strlen(host);
	for (size_t i = 0; i < n && i < 255; i++) {
		char ch = host[i];
		buf_append_char(out, (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch));
	}
}

static void peer_text(struct MHD_Connection *c, char *out, size_t len)
{
	snprintf(out, len, "?");
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)len);
}

static bool method_matches(const char *route_method, const char *method)
{
	return route_method == NULL || strcmp(route_method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* The whole request has arrived: find its route and answer. */
static enum MHD_Result dispatch(struct side *side, struct MHD_Connection *c, const char *url, const char *method,
				struct req_state *st)
{
	const struct http_server_config *cfg = &side->srv->cfg;
	struct buf host = BUF_INIT, allow = BUF_INIT;
	char peer[INET6_ADDRSTRLEN + 1];
	host_name(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST), &host);
	peer_text(c, peer, sizeof(peer));
	struct http_request req = {
		.method = method,
		.path = url,
		.host = buf_cstr(&host),
		.peer = peer,
		.tls = side->tls,
		.body = buf_cstr(&st->body),
		.body_len = st->body.len,
		.conn = c,
	};
	struct http_response resp = { .status = MHD_HTTP_OK };
	const struct http_route *found = NULL;
	unsigned on = side->tls ? HTTP_ON_TLS : HTTP_ON_PLAIN;
	for (size_t i = 0; i < cfg->route_count && found == NULL; i++) {
		const struct http_route *r = &cfg->routes[i];
		bool path_ok = r->prefix ? strncmp(url, r->path, strlen(r->path)) == 0 : strcmp(url, r->path) == 0;
		if (!(r->on & on) || !path_ok)
			continue;
		if (method_matches(r->method, method))
			found = r;
		else if (strstr(buf_cstr(&allow), r->method) == NULL)
			buf_printf(&allow, "%s%s%s", allow.len ? ", " : "", r->method,
				   strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
	}
	if (found != NULL) {
		found->fn(&req, &resp, cfg->ctx);
	} else if (allow.len > 0) {
		http_response_error(&resp, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
		http_response_header(&resp, MHD_HTTP_HEADER_ALLOW, buf_cstr(&allow));
	} else {
		http_response_error(&resp, MHD_HTTP_NOT_FOUND, "Not Found");
	}
	log_info("%s %s %s%s -> %u (%s, host %s)", peer, method, url, side->tls ? " (TLS)" : "", resp.status,
		 found != NULL ? "routed" : "no route", host.len ? buf_cstr(&host) : "-");
	enum MHD_Result ret = send_response(c, &resp);
	buf_free(&resp.body);
	buf_free(&resp.headers);
	buf_free(&host);
	buf_free(&allow);
	return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				 const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct side *side = cls;
	struct req_state *st = *con_cls;
	if (st == NULL) {
		/* the headers are in: refuse a declared body over the limit before reading any of it */
		st = xcalloc(1, sizeof(*st));
		*con_cls = st;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long n;
		if (cl != NULL && (parse_uint(cl, HTTP_MAX_BODY, &n) < 0)) {
			st->refused = true;
			return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large");
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (st->refused)
			return MHD_YES;
		if (st->body.len + n > HTTP_MAX_BODY) {
			/* a chunked body past the limit: answer now, or drop the connection if that is too late */
			st->refused = true;
			buf_free(&st->body);
			return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large");
		}
		buf_append(&st->body, upload_data, n);
		return MHD_YES;
	}
	if (st->refused)
		return MHD_YES;
	return dispatch(side, c, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct req_state *st = *con_cls;
	if (st != NULL) {
		buf_free(&st->body);
		free(st);
		*con_cls = NULL;
	}
}

IX_PRINTF(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct side *side = cls;
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	text[strcspn(text, "\n")] = '\0';
	log_warn("http%s: %s", side->tls ? "s" : "", text);
}

/* Starts a libmicrohttpd daemon on side->fd, with cert and key (PEM texts, which must outlive the daemon: the caller
 * keeps them) when side is TLS. */
static int side_start(struct side *side, char *cert, char *key, struct MHD_Daemon **mhd_r, struct buf *error_r)
{
	struct MHD_OptionItem opts[16];
	size_t n = 0;
#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){ (o), (intptr_t)(v), (p) }
	/* the logger first, or libmicrohttpd reports option errors on stderr */
	OPT(MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, side);
	/* each daemon gets its own descriptor of our socket: libmicrohttpd closes it at the stop (or when it cannot
	 * start), and gives it back at a quiesce, while ours stays open the whole time */
	int fd = fcntl(side->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		buf_printf(error_r, "cannot duplicate the listening socket: %s", strerror(errno));
		return IX_EIO;
	}
	OPT(MHD_OPTION_LISTEN_SOCKET, fd, NULL);
	OPT(MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNS, NULL);
	OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_MAX_CONNS_PER_IP, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_SECONDS, NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_MAX_HEADER_BYTES, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, side);
	if (side->tls) {
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, cert);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, key);
		OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG | (side->tls ? MHD_USE_TLS : 0);
	struct MHD_Daemon *mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_access, side, MHD_OPTION_ARRAY, opts,
						  MHD_OPTION_END);
	if (mhd == NULL) {
		buf_printf(error_r, "the %s server did not start on port %u%s", side->tls ? "HTTPS" : "HTTP",
			   side->port, side->tls ? " (see the log)" : "");
		return IX_EIO;
	}
	*mhd_r = mhd;
	return IX_OK;
}

static int read_pem(const char *path, const char *what, char **text_r, struct buf *error_r)
{
	size_t len;
	if (read_file(path, 1024 * 1024, text_r, &len) < 0) {
		buf_printf(error_r, "cannot read the %s %s: %s", what, path, strerror(errno));
		return IX_EIO;
	}
	return IX_OK;
}

/* Reads the certificate and key files and checks them as libmicrohttpd will load them (GnuTLS: PEM, a chain with
 * the leaf first, a key that matches), so that a refused pair never stops a listener. */
static int read_pair(const struct http_server *srv, char **cert_r, char **key_r, struct buf *error_r)
{
	if (read_pem(srv->cert_path, "certificate", cert_r, error_r) != IX_OK)
		return IX_EIO;
	if (read_pem(srv->key_path, "key", key_r, error_r) != IX_OK) {
		free(*cert_r);
		return IX_EIO;
	}
	gnutls_certificate_credentials_t cred;
	int rc = gnutls_certificate_allocate_credentials(&cred);
	if (rc >= 0) {
		gnutls_datum_t c = { (unsigned char *)*cert_r, (unsigned)strlen(*cert_r) };
		gnutls_datum_t k = { (unsigned char *)*key_r, (unsigned)strlen(*key_r) };
		rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
		gnutls_certificate_free_credentials(cred);
	}
	if (rc < 0) {
		buf_printf(error_r, "the certificate %s and key %s cannot be used together: %s", srv->cert_path,
			   srv->key_path, gnutls_strerror(rc));
		free(*cert_r);
		free(*key_r);
		return IX_EINVAL;
	}
	return IX_OK;
}

static int side_open(struct http_server *srv, struct side *side, bool tls, unsigned port, struct buf *error_r)
{
	side->srv = srv;
	side->tls = tls;
	if (port == 0)
		return IX_OK;
	int ret = listener_socket(srv->listen, port, &side->fd, error_r);
	if (ret != IX_OK)
		return ret;
	side->port = port;
	if (tls && (ret = read_pair(srv, &side->cert, &side->key, error_r)) != IX_OK)
		return ret;
	return side_start(side, side->cert, side->key, &side->mhd, error_r);
}

static void side_close(struct side *side)
{
	if (side->mhd != NULL)
		MHD_stop_daemon(side->mhd);
	side->mhd = NULL;
	if (side->fd >= 0)
		close(side->fd);
	side->fd = -1;
	free(side->cert);
	free(side->key);
	side->cert = side->key = NULL;
}

int http_server_start(const struct http_server_config *cfg, struct http_server **srv_r, struct buf *error_r)
{
	if (cfg->https_port != 0 && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		buf_printf(error_r, "this libmicrohttpd was built without TLS");
		return IX_EINVAL;
	}
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = *cfg;
	srv->listen = cfg->listen != NULL ? xstrdup(cfg->listen) : NULL;
	srv->cert_path = cfg->cert_path != NULL ? xstrdup(cfg->cert_path) : NULL;
	srv->key_path = cfg->key_path != NULL ? xstrdup(cfg->key_path) : NULL;
	srv->cfg.listen = srv->listen;
	srv->cfg.cert_path = srv->cert_path;
	srv->cfg.key_path = srv->key_path;
	srv->plain.fd = srv->tls.fd = -1;
	int ret = side_open(srv, &srv->plain, false, cfg->http_port, error_r);
	if (ret == IX_OK)
		ret = side_open(srv, &srv->tls, true, cfg->https_port, error_r);
	if (ret != IX_OK) {
		http_server_stop(&srv);
		return ret;
	}
	*srv_r = srv;
	return IX_OK;
}

int http_server_reload_tls(struct http_server *srv, struct buf *error_r)
{
	struct side *side = &srv->tls;
	if (side->mhd == NULL)
		return IX_OK;
	char *cert, *key;
	int checked = read_pair(srv, &cert, &key, error_r);
	if (checked != IX_OK)
		return checked;
	/* a second daemon on the same socket, then the old one stops accepting: no connection is refused meanwhile */
	struct MHD_Daemon *fresh = NULL;
	int ret = side_start(side, cert, key, &fresh, error_r);
	if (ret != IX_OK) {
		free(cert);
		free(key);
		return ret;
	}
	struct MHD_Daemon *old = side->mhd;
	char *old_cert = side->cert, *old_key = side->key;
	side->mhd = fresh;
	side->cert = cert;
	side->key = key;
	int given_back = MHD_quiesce_daemon(old);
	if (given_back >= 0)
		close(given_back);
	/* requests under way on the old daemon get a moment to finish */
	for (int waited = 0; waited < HTTP_RELOAD_GRACE_MS; waited += 50) {
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(old, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (info == NULL || info->num_connections == 0)
			break;
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	}
	MHD_stop_daemon(old);
	free(old_cert);
	free(old_key);
	return IX_OK;
}

unsigned http_server_port(const struct http_server *srv, bool tls)
{
	return tls ? srv->tls.port : srv->plain.port;
}

void http_server_stop(struct http_server **srvp)
{
	struct http_server *srv = *srvp;
	if (srv == NULL)
		return;
	side_close(&srv->plain);
	side_close(&srv->tls);
	free(srv->listen);
	free(srv->cert_path);
	free(srv->key_path);
	free(srv);
	*srvp = NULL;
}
