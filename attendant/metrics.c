/* metrics.c - HTTP/1.0 endpoint for Prometheus scrapes, on the attendant's event loop. One request per
 * connection; bounded lines, header count and time. */
#include "attendant/metrics.h"
#include "transport/net/conn.h"
#include "common/err.h"
#include "common/evloop.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

struct scrape {
	struct metrics_server *server;
	struct conn *conn;
	struct scrape *next, **prevp;
	enum metrics_request req;
	int head;
	int lines;
	int done;
};

struct metrics_server {
	struct evloop *loop;
	struct listener *listener;
	metrics_render_fn *render;
	void *ctx;
	struct scrape *scrapes;
};

enum metrics_request metrics_parse_request_line(const char *line, size_t len, int *head_r)
{
	*head_r = 0;
	const char *sp1 = memchr(line, ' ', len);
	if (sp1 == NULL)
		return METRICS_REQ_BAD;
	const char *path = sp1 + 1;
	const char *sp2 = memchr(path, ' ', len - (size_t)(path - line));
	if (sp2 == NULL || sp2 == path)
		return METRICS_REQ_BAD;
	size_t mlen = (size_t)(sp1 - line), plen = (size_t)(sp2 - path), vlen = len - (size_t)(sp2 + 1 - line);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
		return METRICS_REQ_BAD;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c >= 0x7f)
			return METRICS_REQ_BAD;
	}
	int get = mlen == 3 && memcmp(line, "GET", 3) == 0;
	int head = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
	if (!get && !head)
		return METRICS_REQ_BAD_METHOD;
	*head_r = head;
	/* the query string is ignored: Prometheus may add parameters */
	const char *q = memchr(path, '?', plen);
	if (q != NULL)
		plen = (size_t)(q - path);
	if (plen == 8 && memcmp(path, "/metrics", 8) == 0)
		return METRICS_REQ_METRICS;
	if (plen == 1 && path[0] == '/')
		return METRICS_REQ_ROOT;
	return METRICS_REQ_NOT_FOUND;
}

static void scrape_free(struct scrape *s)
{
	*s->prevp = s->next;
	if (s->next != NULL)
		s->next->prevp = s->prevp;
	listener_release(s->server->listener);
	conn_destroy(&s->conn);
	free(s);
}

static void respond(struct scrape *s)
{
	struct buf body = BUF_INIT;
	const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8";
	switch (s->req) {
	case METRICS_REQ_METRICS: s->server->render(s->server->ctx, &body); break;
	case METRICS_REQ_ROOT:
		type = "text/html; charset=utf-8";
		buf_append_str(&body, "<html><body><a href=\"/metrics\">Interchange metrics</a></body></html>\n");
		break;
	case METRICS_REQ_NOT_FOUND:
		status = "404 Not Found";
		buf_append_str(&body, "not found: try /metrics\n");
		break;
	case METRICS_REQ_BAD_METHOD:
		status = "405 Method Not Allowed";
		buf_append_str(&body, "GET only\n");
		break;
	case METRICS_REQ_BAD:
		status = "400 Bad Request";
		buf_append_str(&body, "bad request\n");
		break;
	}
	conn_printf(s->conn, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
		    status, type, body.len, s->req == METRICS_REQ_BAD_METHOD ? "Allow: GET, HEAD\r\n" : "");
	if (!s->head)
		conn_write(s->conn, body.data != NULL ? body.data : "", body.len);
	buf_free(&body);
	s->done = 1;
	conn_close_after_flush(s->conn);
}

static void on_scrape_event(struct conn *c, enum conn_event ev, void *ctx)
{
	struct scrape *s = ctx;
	if (ev != CONN_EVENT_INPUT) {
		if (ev == CONN_EVENT_TIMEOUT && !s->done) {
			s->req = METRICS_REQ_BAD;
			respond(s);
			return;
		}
		if (ev == CONN_EVENT_EOF || ev == CONN_EVENT_ERROR || ev == CONN_EVENT_CLOSED ||
		    ev == CONN_EVENT_TIMEOUT)
			scrape_free(s);
		return;
	}
	while (!s->done) {
		const char *line;
		size_t len;
		int r = conn_read_line(c, METRICS_MAX_LINE, CONN_LINE_BARE_LF, &line, &len);
		if (r == CONN_LINE_MORE)
			return;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (r == CONN_LINE_TOO_LONG || ++s->lines > METRICS_MAX_HEADERS) {
			s->req = METRICS_REQ_BAD;
			respond(s);
			return;
		}
		if (s->lines == 1) {
			s->req = metrics_parse_request_line(line, len, &s->head);
			if (s->req == METRICS_REQ_BAD) {
				respond(s);
				return;
			}
		} else if (len == 0) {
			respond(s);
			return;
		}
	}
}

static void on_accept(struct listener *l, int fd, void *ctx)
{
	(void)l;
	struct metrics_server *m = ctx;
	struct scrape *s = xcalloc(1, sizeof(*s));
	s->server = m;
	s->next = m->scrapes;
	if (s->next != NULL)
		s->next->prevp = &s->next;
	s->prevp = &m->scrapes;
	m->scrapes = s;
	s->conn = conn_create(m->loop, fd, on_scrape_event, s);
	conn_set_idle_timeout(s->conn, METRICS_TIMEOUT_MS);
	conn_set_input_max(s->conn, METRICS_MAX_LINE * 2);
}

int metrics_server_create(struct evloop *loop, unsigned port, metrics_render_fn *render, void *ctx,
			  struct metrics_server **server_r, struct buf *error_r)
{
	struct metrics_server *m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->render = render;
	m->ctx = ctx;
	int ret = listener_create(loop, "127.0.0.1", port, METRICS_MAX_CONNS, on_accept, m, &m->listener, error_r);
	if (ret != IX_OK) {
		free(m);
		return ret;
	}
	*server_r = m;
	return IX_OK;
}

void metrics_server_destroy(struct metrics_server **server)
{
	struct metrics_server *m = *server;
	if (m == NULL)
		return;
	while (m->scrapes != NULL)
		scrape_free(m->scrapes);
	listener_destroy(&m->listener);
	free(m);
	*server = NULL;
}
