/* fuzz_metrics.c - fuzz target for the metrics endpoint's HTTP request-line parser (the one thing the attendant
 * parses from anyone who can reach the metrics port): any bytes must classify without crashing or reading past. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attendant/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int head = -1;
	enum metrics_request r = metrics_parse_request_line((const char *)data, size, &head);
	if (r < METRICS_REQ_METRICS || r > METRICS_REQ_BAD)
		abort();
	/* every prefix too: the parser must not look past len */
	for (size_t n = 0; n < size && n < 64; n++) {
		r = metrics_parse_request_line((const char *)data, n, &head);
		if (r < METRICS_REQ_METRICS || r > METRICS_REQ_BAD)
			abort();
	}
	return 0;
}
