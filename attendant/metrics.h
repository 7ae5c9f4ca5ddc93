/* metrics.h - the attendant's Prometheus endpoint: a tiny HTTP/1.0 server on 127.0.0.1 at the metrics port
 * (init --metrics-port; ports.metrics in status --json) answering GET /metrics with the monitoring facts. */
#ifndef IX_METRICS_H
#define IX_METRICS_H

#include <stddef.h>
#include "common/buf.h"

struct evloop;
struct metrics_server;

/* Longest request line and header line read, most header lines, most simultaneous scrapes. */
#define METRICS_MAX_LINE 2048
#define METRICS_MAX_HEADERS 64
#define METRICS_MAX_CONNS 32
#define METRICS_TIMEOUT_MS 5000

/* Fills out with the exposition text (called for each scrape). */
typedef void metrics_render_fn(void *ctx, struct buf *out);

/* Listens on 127.0.0.1:port. Returns IX_OK or an error with error_r. */
int metrics_server_create(struct evloop *loop, unsigned port, metrics_render_fn *render, void *ctx,
			  struct metrics_server **server_r, struct buf *error_r);
/* Closes the listener and every open scrape; sets *server to NULL. */
void metrics_server_destroy(struct metrics_server **server);

enum metrics_request {
	METRICS_REQ_METRICS, /* GET or HEAD /metrics */
	METRICS_REQ_ROOT,    /* GET / : a short page pointing to /metrics */
	METRICS_REQ_NOT_FOUND,
	METRICS_REQ_BAD_METHOD,
	METRICS_REQ_BAD,
};
/* Pure: classifies an HTTP request line ("GET /metrics HTTP/1.1"); *head_r is 1 for HEAD. */
enum metrics_request metrics_parse_request_line(const char *line, size_t len, int *head_r);

#endif
