/* test_authres.c - unit tests for the Authentication-Results fields that claim our authserv-id (found and removed);
 * the checks themselves, against a real DNS server and signer, are tests/e2e/test_authres.py. */
#include "tests/unit/test.h"
#include "transport/mta/authres.h"

#include <string.h>

static const char msg[] =
	"Received: from x by y\r\n"
	"Authentication-Results: example.com; spf=pass\r\n"
	"Authentication-Results: (a comment (nested)) EXAMPLE.com;\r\n\tdkim=pass header.d=bank.test\r\n"
	"Authentication-Results: example.com.evil.test; spf=pass\r\n"
	"Authentication-Results: mx.other.test; dkim=pass\r\n"
	"authentication-results:example.com (no result)\r\n"
	"Subject: Authentication-Results: example.com; in a subject\r\n"
	"\r\n"
	"Authentication-Results: example.com; in the body\r\n";

static void claims_found_and_removed(void)
{
	test_assert(authres_claims("example.com", msg, strlen(msg)));
	test_assert(!authres_claims("example.org", msg, strlen(msg)));
	struct buf out = BUF_INIT;
	authres_strip("example.com", msg, strlen(msg), &out);
	test_assert(strcmp(buf_cstr(&out), "Received: from x by y\r\n"
					   "Authentication-Results: example.com.evil.test; spf=pass\r\n"
					   "Authentication-Results: mx.other.test; dkim=pass\r\n"
					   "Subject: Authentication-Results: example.com; in a subject\r\n"
					   "\r\n"
					   "Authentication-Results: example.com; in the body\r\n") == 0);
	buf_reset(&out);
	/* nothing to remove: the message as it is */
	authres_strip("example.org", msg, strlen(msg), &out);
	test_assert(out.len == strlen(msg) && memcmp(out.data, msg, out.len) == 0);
	buf_free(&out);
}

/* A relayed message's quarantine, as the accepting server of the organisation wrote it. */
static void quarantine_relayed(void)
{
	static const char q[] = "Authentication-Results: example.com;\r\n\tspf=fail smtp.mailfrom=x@quar.test;\r\n"
				"\tdkim=none;\r\n\tdmarc=fail (p=quarantine, quarantined) header.from=quar.test\r\n"
				"Subject: s\r\n\r\n";
	static const char other[] = "Authentication-Results: mx.other.test; dmarc=fail (p=quarantine, quarantined)\r\n"
				    "Subject: s\r\n\r\ndmarc=fail (p=quarantine, quarantined)\r\n";
	static const char none[] = "Authentication-Results: example.com; dmarc=fail (p=none, delivered)\r\n\r\n";
	test_assert(authres_quarantined("example.com", q, strlen(q)));
	test_assert(!authres_quarantined("example.com", other, strlen(other))); /* another's word, or a body */
	test_assert(!authres_quarantined("example.com", none, strlen(none)));
}

TEST_MAIN("authres", TEST_CASE(claims_found_and_removed), TEST_CASE(quarantine_relayed))
