/* fuzz_autodiscover.c - fuzz target for the Outlook Autodiscover request reader: any body either gives no address
 * or an address that clientconf_address accepts, and the answer written for it is one well-formed document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/http/clientconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf address = BUF_INIT, out = BUF_INIT;
	if (clientconf_autodiscover_request((const char *)data, size, &address)) {
		if (address.len > CLIENTCONF_ADDRESS_MAX || !clientconf_address(buf_cstr(&address), NULL))
			abort();
		struct clientconf cc = { .hostname = "mail.example.com", .domain = "example.com", .imaps = 993 };
		clientconf_autodiscover(&cc, buf_cstr(&address), &out);
		if (strstr(buf_cstr(&out), "</Autodiscover>\n") == NULL || strchr(buf_cstr(&address), '<') != NULL)
			abort();
	}
	buf_free(&address);
	buf_free(&out);
	return 0;
}
