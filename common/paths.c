/* paths.c - finding an installation's programs and files (see paths.h); the folders themselves are generated. */
#include "common/paths.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *paths_self_dir(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	return slash != NULL ? xstrndup(exe, slash == exe ? 1 : (size_t)(slash - exe)) : xstrdup(".");
}

char *paths_find(const char *name, struct buf *error_r)
{
	char *dir = paths_self_dir();
	char *beside = xasprintf("%s/%s", dir, name), *installed = xasprintf("%s/%s", paths_libexecdir, name);
	char *found = NULL;
	if (access(beside, F_OK) == 0)
		found = beside, beside = NULL;
	else if (access(installed, F_OK) == 0)
		found = installed, installed = NULL;
	else
		buf_printf(error_r, "%s is missing: it is neither beside the interchange program (%s) nor in %s", name,
			   dir, paths_libexecdir);
	free(dir);
	free(beside);
	free(installed);
	return found;
}

const char *paths_default_data(void)
{
	char *dir = paths_self_dir();
	int installed = strcmp(dir, paths_sbindir) == 0;
	free(dir);
	return installed ? paths_statedir : "var";
}
