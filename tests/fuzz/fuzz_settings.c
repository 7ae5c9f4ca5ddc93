/* fuzz_settings.c - fuzz target for the per-server settings parser: every input line is a "NAME=VALUE" value as
 * stored in the directory; loaded values must stay inside each setting's range and every setting's own parser
 * must accept only in-range numbers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/settings.h"
#include "common/util.h"

#define FUZZ_SETTINGS_MAX_VALUES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	const char *values[FUZZ_SETTINGS_MAX_VALUES];
	size_t count = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL && count < FUZZ_SETTINGS_MAX_VALUES;
	     line = strtok_r(NULL, "\n", &save))
		values[count++] = line;
	struct settings s;
	settings_load(&s, values, count);
	for (int i = 0; i < SET_COUNT; i++) {
		const struct setting_def *d = setting_def(i);
		if (s.v[i] < d->min || s.v[i] > d->max)
			abort();
		if (!s.set[i] && s.v[i] != d->def)
			abort();
		if (setting_find(d->name) != i)
			abort();
	}
	/* every value through every setting's parser */
	for (size_t k = 0; k < count; k++) {
		const char *eq = strchr(values[k], '=');
		const char *value = eq != NULL ? eq + 1 : values[k];
		for (int i = 0; i < SET_COUNT; i++) {
			const struct setting_def *d = setting_def(i);
			unsigned long long v;
			if (setting_parse(i, value, &v) == 0 && (v < d->min || v > d->max))
				abort();
		}
		(void)setting_find(values[k]);
	}
	free(text);
	return 0;
}
