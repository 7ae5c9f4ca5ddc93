/* slapd_module.h - what our slapd modules that wrap an overlay's handlers (directory/ixgate.c, directory/ixbrowse.c)
 * share: telling in which of slapd's modules a handler lies. Header-only, since each module is one shared object. */
#ifndef IX_DIRECTORY_SLAPD_MODULE_H
#define IX_DIRECTORY_SLAPD_MODULE_H

#include <dlfcn.h>
#include <string.h>

/* Whether fn lies in the shared object of slapd's module name (its file name starts with it: sssvlv-2.5.so.0). */
static inline int slapd_module_has(void *fn, const char *name)
{
	Dl_info info;
	if (fn == NULL || dladdr(fn, &info) == 0 || info.dli_fname == NULL)
		return 0;
	const char *base = strrchr(info.dli_fname, '/');
	return strncmp(base != NULL ? base + 1 : info.dli_fname, name, strlen(name)) == 0;
}

#endif
