/* fuzz_uint.c - fuzz target for parse_uint (decimal numbers from the network and configuration). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	unsigned long long v;
	if (parse_uint(s, 4294967295ULL, &v) == 0 && v > 4294967295ULL)
		abort();
	free(s);
	return 0;
}
