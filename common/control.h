/* control.h - the attendant's control socket (DATA/run/attendant.sock) seen from a client: one request line, the
 * answer read until the attendant closes. `interchange status` and ix-httpd's GET /api/v1/status ask it. */
#ifndef IX_CONTROL_H
#define IX_CONTROL_H

#include "common/buf.h"
#include "common/config.h"

/* The socket under the data folder, and the longest answer read. */
#define CONTROL_SOCK "run/attendant.sock"
#define CONTROL_ANSWER_MAX (1024 * 1024)

/* Sends request (one line ending in "\n") and appends the answer to answer_r, waiting at most timeout_s seconds for
 * each read. Returns IX_OK, or IX_EUNAVAIL when the attendant does not answer (not running), with error_r. */
int control_ask(const struct config *cfg, const char *request, int timeout_s, struct buf *answer_r,
		struct buf *error_r);

#endif
