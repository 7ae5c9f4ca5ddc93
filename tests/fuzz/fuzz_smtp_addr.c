/* fuzz_smtp_addr.c - fuzz target for SMTP paths: the first byte picks the flags, the rest is the path. A parsed
 * address printed and bracketed must parse again to the same text (source routes are dropped). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/smtp/smtp_parse.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned flags = data[0] &
			 (SMTP_PATH_ALLOW_NULL | SMTP_PATH_ALLOW_POSTMASTER | SMTP_PATH_UTF8 | SMTP_PATH_NO_BRACKETS);
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	struct smtp_path p;
	size_t used;
	const char *err = NULL;
	if (smtp_parse_path(s, len, flags, &p, &used, &err) < 0) {
		if (err == NULL || strncmp(err, "553", 3) != 0)
			abort();
		return 0;
	}
	if (used > len || p.mbox.local_len > SMTP_LOCAL_MAX_UTF8 || p.mbox.domain_len > SMTP_DOMAIN_MAX)
		abort();
	if (!(flags & SMTP_PATH_UTF8) && (p.mbox.utf8 || p.mbox.local_len > SMTP_LOCAL_MAX))
		abort();
	char out[SMTP_PATH_MAX_UTF8 + 1];
	size_t n = smtp_path_string(&p, out, sizeof(out));
	if (n != strlen(out))
		abort();
	if (p.null || p.postmaster)
		return 0;
	char again[SMTP_PATH_MAX_UTF8 + 3];
	again[0] = '<';
	memcpy(again + 1, out, n);
	again[n + 1] = '>';
	struct smtp_path q;
	size_t used2;
	if (smtp_parse_path(again, n + 2, flags & ~SMTP_PATH_NO_BRACKETS, &q, &used2, &err) < 0 || used2 != n + 2)
		abort();
	char out2[SMTP_PATH_MAX_UTF8 + 1];
	if (smtp_path_string(&q, out2, sizeof(out2)) != n || memcmp(out, out2, n) != 0)
		abort();
	return 0;
}
