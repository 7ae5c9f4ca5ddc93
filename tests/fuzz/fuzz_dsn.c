/* fuzz_dsn.c - fuzz target for what the SMTP server and MTA parse from untrusted bytes: message headers (the
 * DSN helpers, loop counting), the DSN builder over an arbitrary original message, and queue files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/mta/dsn.h"
#include "transport/mta/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char v[64];
	if (dsn_header_value(s, size, "Message-ID", v, sizeof(v)) && strlen(v) >= sizeof(v))
		abort();
	(void)dsn_count_received(s, size);
	if (dsn_header_length(s, size) > size)
		abort();
	struct dsn_rcpt r = { "a@b", "c@d", DSN_FAILED, NULL, size > 0 ? "550 5.1.1 x" : "", NULL };
	struct dsn_report rep = { "mx.example", "x@y", "", size & 1, 0, &r, 1, s, size };
	struct buf out = BUF_INIT;
	dsn_build(&rep, &out);
	buf_free(&out);
	struct queue_msg m;
	struct buf err = BUF_INIT;
	if (queue_parse(s, size, true, &m, &err) == 0) {
		/* what parses serializes back to an image that parses the same */
		struct buf img = BUF_INIT;
		struct queue_msg m2;
		queue_serialize(&m, &img);
		if (queue_parse(img.data, img.len, true, &m2, &err) != 0 || m2.nrcpts != m.nrcpts ||
		    m2.body.len != m.body.len)
			abort();
		queue_msg_free(&m2);
		buf_free(&img);
	}
	queue_msg_free(&m);
	buf_free(&err);
	return 0;
}
