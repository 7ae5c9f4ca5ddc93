/* fuzz_proxy.c - fuzz target for the proxy's backend response parsers: every line of the input (split at LF) is
 * parsed as an IMAP, a POP3 and a ManageSieve response and searched for capabilities; every pointer handed back must lie
 * inside the line, and a split line must satisfy the grammar's own invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/login/proxy_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *line, size_t len, const char *p, size_t n)
{
	if (p == NULL)
		return;
	if (p < line || p > line + len || n > (size_t)(line + len - p))
		abort();
}

static void one_line(const char *line, size_t len)
{
	struct proxy_imap_reply r;
	if (proxy_imap_reply_parse(line, len, &r)) {
		inside(line, len, r.tag, r.tag_len);
		inside(line, len, r.resp, r.resp_len);
		inside(line, len, r.code, r.code_len);
		if (r.kind == PROXY_IMAP_TAGGED &&
		    (r.tag_len == 0 || r.tag_len > PROXY_TAG_MAX ||
		     (r.status != PROXY_STATUS_OK && r.status != PROXY_STATUS_NO && r.status != PROXY_STATUS_BAD)))
			abort();
		if (memchr(line, '\0', len) != NULL || len > PROXY_LINE_MAX)
			abort();
		if (r.code != NULL)
			(void)proxy_imap_has_capability(r.code, r.code_len, "STARTTLS");
	}
	(void)proxy_imap_has_capability(line, len, "IMAP4rev1");
	enum proxy_status st;
	const char *text;
	size_t tlen;
	if (proxy_pop3_reply_parse(line, len, &st, &text, &tlen)) {
		inside(line, len, text, tlen);
		if (st != PROXY_STATUS_OK && st != PROXY_STATUS_NO && st != PROXY_STATUS_NONE)
			abort();
	}
	if (proxy_sieve_reply_parse(line, len, &st, &text, &tlen)) {
		inside(line, len, text, tlen);
		if (st == PROXY_STATUS_NONE ? line[0] != '"' : st == PROXY_STATUS_BAD || st == PROXY_STATUS_PREAUTH)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	/* each line in its own allocation, so that a read past its length is caught */
	const char *p = (const char *)data, *end = p + size;
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *copy = malloc(len + 1);
		if (copy == NULL)
			return 0;
		memcpy(copy, p, len);
		one_line(copy, len);
		free(copy);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 0;
}
