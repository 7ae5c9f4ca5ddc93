/* fuzz_imap_sort.c - fuzz target for SORT and THREAD's pure parts: the base subject of the input (a key at most
 * 18 times as long), its Message-IDs, and both threading algorithms over messages made of its lines (Message-ID,
 * References, Subject, three lines each), whose answers must list every message once in balanced parentheses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transport/imap/imap_sort.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_MSGS 64

static void check_threads(const struct buf *out, size_t n)
{
	unsigned seen[FUZZ_MAX_MSGS + 1] = { 0 };
	long depth = 0;
	const char *s = buf_cstr(out);
	for (size_t i = 0; i < out->len; i++) {
		if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && --depth < 0)
			abort();
		else if (s[i] >= '0' && s[i] <= '9') {
			unsigned long id = strtoul(s + i, NULL, 10);
			if (id == 0 || id > n || seen[id]++)
				abort();
			while (i + 1 < out->len && s[i + 1] >= '0' && s[i + 1] <= '9')
				i++;
		}
	}
	if (depth != 0)
		abort();
	for (size_t id = 1; id <= n; id++)
		if (seen[id] != 1)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf base = BUF_INIT, ids = BUF_INIT, out = BUF_INIT;
	imap_base_subject(s, size, &base);
	/* its i;unicode-casemap key: NFKD grows UTF-8 at most 11-fold (UAX #15), a titlecase by at most half; text
	 * that is not UTF-8 gains one byte */
	if (base.len > 18 * size + 1)
		abort();
	imap_msgid_parse(s, size, 4, &ids);
	char *copy = malloc(size + 1);
	memcpy(copy, s, size);
	copy[size] = '\0';
	char *lines[3 * FUZZ_MAX_MSGS];
	size_t nl = 0;
	for (char *p = copy, *nlp; nl < 3 * FUZZ_MAX_MSGS; p = nlp + 1) {
		lines[nl++] = p;
		if ((nlp = strchr(p, '\n')) == NULL)
			break;
		*nlp = '\0';
	}
	size_t n = nl / 3;
	struct imap_thread_msg msgs[FUZZ_MAX_MSGS];
	struct buf subjects[FUZZ_MAX_MSGS];
	for (size_t i = 0; i < n; i++) {
		buf_init(&subjects[i]);
		msgs[i].id = (uint32_t)i + 1;
		msgs[i].date = (int64_t)(lines[3 * i][0] & 3);
		msgs[i].message_id = lines[3 * i];
		msgs[i].references = lines[3 * i + 1];
		msgs[i].in_reply_to = lines[3 * i + 1];
		msgs[i].reply = imap_base_subject(lines[3 * i + 2], strlen(lines[3 * i + 2]), &subjects[i]);
		msgs[i].subject = buf_cstr(&subjects[i]);
	}
	imap_thread_references(msgs, n, &out);
	check_threads(&out, n);
	buf_reset(&out);
	imap_thread_refs(msgs, n, &out);
	check_threads(&out, n);
	buf_reset(&out);
	imap_thread_orderedsubject(msgs, n, &out);
	check_threads(&out, n);
	for (size_t i = 0; i < n; i++)
		buf_free(&subjects[i]);
	free(copy);
	buf_free(&base);
	buf_free(&ids);
	buf_free(&out);
	return 0;
}
