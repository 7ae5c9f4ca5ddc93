/* dns_probe.c - the end-to-end tests' view into the DNS module: asks one question through dns.h with a given server
 * and trust anchor and prints the status, whether it was validated, and the records (tests/e2e/test_dns.py). */
#include "common/err.h"
#include "common/util.h"
#include "transport/mta/dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK: return "ok";
	case DNS_NODATA: return "nodata";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_TEMP: return "temp";
	case DNS_BOGUS: return "bogus";
	}
	return "?";
}

/* One record of type as text: an address, a name, TXT's joined strings, TLSA's fields in hex. */
static void print_record(int type, const unsigned char *rd, size_t len)
{
	char text[DNS_NAME_MAX];
	struct buf b = BUF_INIT;
	if ((type == DNS_T_A && len == 4) || (type == DNS_T_AAAA && len == 16)) {
		inet_ntop(type == DNS_T_A ? AF_INET : AF_INET6, rd, text, sizeof(text));
		printf("record %s\n", text);
	} else if (type == DNS_T_TXT) {
		dns_txt_join(rd, len, &b);
		printf("record %s\n", buf_cstr(&b));
	} else if (type == DNS_T_TLSA && len > 3) {
		printf("record %u %u %u ", rd[0], rd[1], rd[2]);
		for (size_t i = 3; i < len; i++)
			printf("%02x", rd[i]);
		printf("\n");
	} else {
		printf("record (%zu bytes)\n", len);
	}
	buf_free(&b);
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: dns_probe SERVER|'' ANCHOR|'' A|AAAA|MX|TXT|TLSA NAME [TIMEOUT_MS]\n");
		return 2;
	}
	static const struct {
		const char *name;
		int type;
	} types[] = { { "A", DNS_T_A },
		      { "AAAA", DNS_T_AAAA },
		      { "MX", DNS_T_MX },
		      { "TXT", DNS_T_TXT },
		      { "TLSA", DNS_T_TLSA } };
	int type = -1;
	for (size_t i = 0; i < IX_ARRAY_LEN(types); i++) {
		if (strcmp(argv[3], types[i].name) == 0)
			type = types[i].type;
	}
	if (type < 0) {
		fprintf(stderr, "dns_probe: unknown type %s\n", argv[3]);
		return 2;
	}
	struct dns *d = dns_create();
	struct buf err = BUF_INIT;
	if (dns_configure(d, argv[1], argv[2], &err) != IX_OK) {
		printf("configure %s\n", buf_cstr(&err));
		dns_destroy(&d);
		buf_free(&err);
		return 1;
	}
	if (argc == 6)
		dns_set_timeout(d, (unsigned)atoi(argv[5]));
	if (type == DNS_T_MX) {
		char *hosts[16];
		bool temp, secure;
		size_t n = dns_mx(d, argv[4], hosts, IX_ARRAY_LEN(hosts), &temp, &secure, NULL);
		printf("mx %zu%s%s\n", n, temp ? " temp" : "", secure ? " secure" : "");
		for (size_t i = 0; i < n; i++) {
			printf("host %s\n", hosts[i]);
			free(hosts[i]);
		}
	} else {
		struct dns_answer a;
		dns_query(d, argv[4], type, &a);
		printf("status %s%s%s%s\n", status_name(a.status), a.secure ? " secure" : "", a.why[0] ? " " : "",
		       a.why);
		for (size_t i = 0; i < a.n; i++)
			print_record(type, a.rdata[i], a.rdlen[i]);
		dns_answer_free(&a);
	}
	dns_destroy(&d);
	buf_free(&err);
	return 0;
}
