/* fuzz_conn_lines.c - fuzz target for the connection line reader every protocol uses (conn_read_line over a
 * socket, with its overlong-line skipping): lines and TOO_LONG events must not depend on how the bytes arrive.
 * Byte 0 picks the line mode and the line limit, byte 1 the chunk size; the rest is the peer's byte stream. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "transport/net/conn.h"
#include "common/evloop.h"

#define FUZZ_CONN_INPUT_MAX (48 * 1024) /* stays below a socketpair's buffer: every write completes */
#define FUZZ_CONN_ROUNDS_MAX 64         /* loop rounds to wait for input or EOF after a write */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reader {
	size_t max;
	unsigned flags;
	struct buf log;
	size_t taken;
	int eof;
};

static void on_event(struct conn *c, enum conn_event ev, void *ctx)
{
	struct reader *r = ctx;
	if (ev != CONN_EVENT_INPUT) {
		r->eof = 1;
		return;
	}
	for (;;) {
		const char *line;
		size_t len;
		int ret = conn_read_line(c, r->max, r->flags, &line, &len);
		if (ret == CONN_LINE_MORE)
			break;
		if (ret == CONN_LINE_TOO_LONG) {
			buf_append_str(&r->log, "T\n");
			continue;
		}
		if (len > r->max)
			abort();
		if ((r->flags & CONN_LINE_BARE_LF) != 0 && memchr(line, '\n', len) != NULL)
			abort();
		buf_printf(&r->log, "L%zu:", len);
		buf_append(&r->log, line, len);
		buf_append_char(&r->log, '\n');
		r->taken += len;
	}
}

static char *run(const uint8_t *data, size_t size, size_t max, unsigned flags, size_t chunk)
{
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
		abort();
	struct evloop *loop;
	struct buf err = BUF_INIT;
	if (evloop_create(&loop, &err) != 0)
		abort();
	struct reader r = { .max = max, .flags = flags, .log = BUF_INIT };
	struct conn *c = conn_create(loop, fds[0], on_event, &r);
	conn_set_input_max(c, max + 2 > CONN_INPUT_INITIAL ? max + 2 : CONN_INPUT_INITIAL);
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (write(fds[1], data + off, n) != (ssize_t)n)
			abort();
		for (int i = 0; i < FUZZ_CONN_ROUNDS_MAX; i++)
			if (evloop_run_once(loop, 0) <= 0)
				break;
	}
	close(fds[1]);
	for (int i = 0; i < FUZZ_CONN_ROUNDS_MAX && !r.eof; i++)
		evloop_run_once(loop, 10);
	if (!r.eof)
		abort();
	conn_destroy(&c);
	evloop_destroy(&loop);
	buf_free(&err);
	if (r.taken > size)
		abort();
	buf_append(&r.log, "", 0);
	return buf_steal(&r.log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size - 2 > FUZZ_CONN_INPUT_MAX)
		return 0;
	unsigned flags = (data[0] & 1) != 0 ? CONN_LINE_BARE_LF : 0;
	size_t max = (size_t)(data[0] >> 1) * 37 + 1; /* 1 .. 4700: below and above the initial buffer */
	size_t chunk = (size_t)data[1] % 64 + 1;
	char *whole = run(data + 2, size - 2, max, flags, size);
	char *parts = run(data + 2, size - 2, max, flags, chunk);
	if (strcmp(whole, parts) != 0)
		abort();
	free(whole);
	free(parts);
	return 0;
}
