/* smtpd_probe.c - test helper for the SMTP end-to-end tests: lists a mailbox folder's messages straight from
 * the store (UID, size, Subject and Message-ID), so tests can check exactly what was delivered. */
#include "transport/mta/dsn.h"
#include "common/err.h"
#include "store/store.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: smtpd_probe STORE_DIR GUID [FOLDER]\n");
		return 2;
	}
	struct store *st;
	struct buf err = BUF_INIT;
	if (store_open(argv[1], NULL, &st, &err) != 0) {
		fprintf(stderr, "smtpd_probe: %s\n", buf_cstr(&err));
		return 1;
	}
	const char *folder = argc == 4 ? argv[3] : NULL;
	struct store_msg *list = NULL;
	size_t n = 0;
	int rc = store_msg_list(st, argv[2], folder, NULL, &list, &n, &err);
	if (rc == IX_ENOTFOUND)
		rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct buf hdr = BUF_INIT;
		char subject[DSN_HEADER_VALUE_MAX + 1], msgid[DSN_HEADER_VALUE_MAX + 1];
		if (store_fetch_header(st, argv[2], folder, list[i].uid, &hdr, &err) != 0)
			break;
		dsn_header_value(buf_cstr(&hdr), hdr.len, "Subject", subject, sizeof(subject));
		dsn_header_value(buf_cstr(&hdr), hdr.len, "Message-ID", msgid, sizeof(msgid));
		printf("%u\t%llu\t%s\t%s\n", list[i].uid, (unsigned long long)list[i].size, msgid, subject);
		buf_free(&hdr);
	}
	store_msg_list_free(&list, n);
	store_close(&st);
	if (rc != 0)
		fprintf(stderr, "smtpd_probe: %s\n", buf_cstr(&err));
	buf_free(&err);
	return rc != 0;
}
