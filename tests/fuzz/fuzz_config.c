/* fuzz_config.c - fuzz target for the bootstrap configuration file parser (<data>/interchange.conf): any bytes as
 * the file load or fail cleanly; a loaded configuration saved and loaded again gives the same fields. The files
 * live in one temporary folder per process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/err.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_dir;

static void remove_dir(void)
{
	if (fuzz_dir == NULL)
		return;
	char *path = xasprintf("%s/%s", fuzz_dir, CONFIG_FILE_NAME);
	unlink(path);
	free(path);
	rmdir(fuzz_dir);
	free(fuzz_dir);
	fuzz_dir = NULL;
}

static int same(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_dir == NULL) {
		char tmpl[] = "/tmp/ix-fuzz-config-XXXXXX";
		if (mkdtemp(tmpl) == NULL)
			abort();
		fuzz_dir = xstrdup(tmpl);
		atexit(remove_dir);
	}
	if (size > CONFIG_MAX_BYTES + 16)
		return 0;
	char *path = xasprintf("%s/%s", fuzz_dir, CONFIG_FILE_NAME);
	FILE *f = fopen(path, "w");
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	struct config cfg, again;
	struct buf err = BUF_INIT;
	int ret = config_load(fuzz_dir, &cfg, &err);
	if (ret == IX_OK) {
		if (cfg.domain == NULL || cfg.suffix == NULL || cfg.admin_dn == NULL || cfg.listen == NULL)
			abort();
		/* values holding a line break or NUL cannot exist: lines are split on \n and the file read as text */
		if (config_save(&cfg, &err) != IX_OK)
			abort();
		buf_reset(&err);
		if (config_load(fuzz_dir, &again, &err) != IX_OK)
			abort();
		if (!same(cfg.domain, again.domain) || !same(cfg.org, again.org) ||
		    !same(cfg.hostname, again.hostname) || !same(cfg.suffix, again.suffix) ||
		    !same(cfg.admin_dn, again.admin_dn) || !same(cfg.server_dn, again.server_dn) ||
		    !same(cfg.listen, again.listen) || !same(cfg.user, again.user) ||
		    cfg.anonymous_read != again.anonymous_read ||
		    memcmp(cfg.ports, again.ports, sizeof(cfg.ports)) != 0)
			abort();
		config_free(&again);
		config_free(&cfg);
	} else if (ret != IX_EINVAL && ret != IX_EIO) {
		abort();
	}
	buf_free(&err);
	free(path);
	return 0;
}
