/* addrgen.h - e-mail address generation from recipient policy templates, as the attendant applies them.
 * Pure functions: folding of names to the ASCII an address local part can carry, template expansion, and the
 * numbered variants used to resolve collisions (john.smith, john.smith2, john.smith3...). */
#ifndef IX_ADDRGEN_H
#define IX_ADDRGEN_H

#include "common/buf.h"

/* Longest generated local part (RFC 5321 allows 64 octets). */
#define ADDRGEN_MAX_LOCAL 64

/* Appends the UTF-8 string in, lower-cased and folded to ASCII, to out: Latin letters lose their accents
 * (é->e, ß->ss, æ->ae, ł->l), letters, digits, '-' and '_' are kept, '.' is kept between other characters,
 * everything else (spaces, apostrophes, scripts without an ASCII form, invalid UTF-8) is dropped. */
void addrgen_fold(const char *in, struct buf *out);

struct addrgen_vars {
	const char *given;    /* %g; NULL or "" when absent */
	const char *surname;  /* %s */
	const char *nickname; /* %m */
};

/* Expands a template such as "SMTP:%g.%s@example.com" into an address in out (without the SMTP: prefix).
 * %g given name, %s surname, %i initial of the given name, %m nickname, %% a percent sign; each folded.
 * Dots are collapsed and trimmed in the local part. Returns IX_OK, or IX_EINVAL when the template is malformed
 * or the local part comes out empty or longer than ADDRGEN_MAX_LOCAL (error_r says which). */
int addrgen_expand(const char *tmpl, const struct addrgen_vars *vars, struct buf *out, struct buf *error_r);

/* Writes the n-th variant of address (n >= 2: the number goes before the '@') into out. */
void addrgen_variant(const char *address, unsigned n, struct buf *out);

#endif
