/* dayrec.h - the records reports are made from (TLS reports, DMARC aggregate reports): one tab-separated line an
 * event, in a file a UTC day under a folder of the data folder; the attendant's reports take each day's file
 * (attendant/report_mail.h) and remove it. */
#ifndef IX_DAYREC_H
#define IX_DAYREC_H

#include <stdbool.h>
#include <stddef.h>
#include "common/config.h"

/* Appends the time and the n fields (tabs and line ends in them become spaces) as one line to DATA/folder/YYYY-MM-DD
 * (time's UTC day; the folder made when missing), with one write on an O_APPEND descriptor (lines of several
 * threads and processes never mix). Returns IX_OK or IX_EIO. */
int dayrec_append(const struct config *cfg, const char *folder, long long time, const char *const *fields, size_t n);
/* Splits one line (without its line end) into its time and exactly n fields, each copied into out[i] (sizes[i]
 * bytes). Returns false when it is malformed (no time, another number of fields, a field too long). */
bool dayrec_split(const char *line, long long *time_r, char *const *out, const size_t *sizes, size_t n);

#endif
