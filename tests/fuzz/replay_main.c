/* replay_main.c - runs a fuzz target over its seed corpus without libFuzzer, so every build (and make asan)
 * replays the corpus. The program replay_NAME reads tests/fuzz/corpus/NAME/ (or the folders given). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_dir(const char *dir, unsigned *count)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		printf("FAIL fuzz corpus %s: cannot open\n", dir);
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		char *data;
		size_t len;
		if (read_file(path, 16 * 1024 * 1024, &data, &len) != 0) {
			printf("FAIL fuzz corpus %s: cannot read\n",
			       path); /* an input skipped is an input not replayed */
			free(path);
			closedir(d);
			return -1;
		}
		/* hand the target an exact-size copy so ASan sees reads past the end */
		uint8_t *copy = xmalloc(len);
		memcpy(copy, data, len);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
		free(data);
		(*count)++;
		free(path);
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	const char *name = strncmp(base, "replay_", 7) == 0 ? base + 7 : base;
	unsigned count = 0;
	int ret = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			ret |= replay_dir(argv[i], &count);
	} else {
		char *dir = xasprintf("tests/fuzz/corpus/%s", name);
		ret = replay_dir(dir, &count);
		free(dir);
	}
	if (ret == 0 && count == 0) {
		printf("FAIL fuzz_replay.%s: the corpus has no input\n", name); /* nothing replayed is no pass */
		ret = -1;
	}
	if (ret == 0)
		printf("PASS fuzz_replay.%s (%u inputs)\n", name, count);
	return ret ? 1 : 0;
}
