/* sieve_int.h - what the Sieve library's files share and nobody else sees: the script's memory (an arena freed at
 * once), the script itself and the command table's checks. */
#ifndef IX_SIEVE_INT_H
#define IX_SIEVE_INT_H

#include "common/buf.h"
#include "transport/sieve/sieve.h"

struct sieve_chunk {
	struct sieve_chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct sieve_script {
	struct sieve_chunk *mem;
	struct sieve_node *cmds;
	size_t count;
	char **requires; /* extension names, lower-cased */
	size_t require_count;
};

/* size bytes from the script's arena, zeroed; never NULL (panics when memory is out). */
void *sieve_alloc(struct sieve_script *s, size_t size);
char *sieve_strdup(struct sieve_script *s, const char *p, size_t len);

/* Checks the parsed tree (commands, tests, arguments, require) and decodes encoded-character: IX_OK or IX_EINVAL
 * with error_r "line N: ...". */
int sieve_check(struct sieve_script *s, struct buf *error_r);

/* The argument of tag (":comparator") of node n: the tag itself when it takes no parameter, its parameter
 * otherwise; NULL when absent. */
const struct sieve_arg *sieve_tag(const struct sieve_node *n, const char *tag);
/* The i-th positional argument of n (tags and their parameters skipped); NULL past the end. */
const struct sieve_arg *sieve_pos(const struct sieve_node *n, size_t i);

#endif
