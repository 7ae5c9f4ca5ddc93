/* paths.h - where an installation keeps its programs and files: beside the running `interchange` in a build folder,
 * in the folders `make install` compiled in otherwise (PREFIX, libexecdir, datadir, localstatedir...). */
#ifndef IX_PATHS_H
#define IX_PATHS_H

#include "common/buf.h"

/* The folders and programs of the build configuration (generated into BUILD/gen/paths.c by common/module.mk from
 * the make variables; see the Makefile's "Installation" section). */
extern const char paths_sbindir[];    /* the interchange command */
extern const char paths_libexecdir[]; /* the daemons and slapd modules: LIBEXECDIR/interchange */
extern const char paths_datadir[];    /* the schema and other data: DATADIR/interchange */
extern const char paths_statedir[];   /* the installed default data folder: LOCALSTATEDIR/lib/interchange */
extern const char paths_logdir[];     /* its service logs (config_log_path): LOCALSTATEDIR/log/interchange */
extern const char paths_slapd[];      /* slapd, slapadd and slapcat, and slapd's own module folder */
extern const char paths_slapadd[];
extern const char paths_slapcat[];
extern const char paths_slapd_moduledir[];
extern const char paths_slapd_schemadir[]; /* slapd's schema files (cosine.ldif...) */

/* The folder of the running program (from /proc/self/exe); a new string. */
char *paths_self_dir(void);
/* The full path of name (an ix-* daemon, a slapd module) for this installation: beside the running program when it
 * is there (a build folder keeps everything together), else in paths_libexecdir. Returns a new string, or NULL when
 * neither has it, with the two places looked at described in error_r. */
char *paths_find(const char *name, struct buf *error_r);
/* The data folder used without --data: ./var when the running program is not the installed one (a build folder,
 * `make run`), paths_statedir when it is (it runs from paths_sbindir). */
const char *paths_default_data(void);

#endif
