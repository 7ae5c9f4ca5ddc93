/* dayrec.c - reports' records: tab-separated lines in a file a UTC day, written with one append each. */
#include "transport/mta/dayrec.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Copies text into out without tabs and line ends (they separate fields and lines). */
static void field(struct buf *out, const char *text)
{
	for (; *text != '\0'; text++)
		buf_append_char(out, *text == '\t' || *text == '\r' || *text == '\n' ? ' ' : *text);
}

int dayrec_append(const struct config *cfg, const char *folder, long long when, const char *const *fields, size_t n)
{
	time_t t = (time_t)when;
	struct tm tm;
	gmtime_r(&t, &tm);
	char day[32];
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	char *dir = config_path(cfg, folder);
	char *path = xasprintf("%s/%s", dir, day);
	(void)mkdir(dir, 0700);
	struct buf line = BUF_INIT;
	buf_printf(&line, "%lld\t", when);
	for (size_t i = 0; i < n; i++) {
		field(&line, fields[i]);
		buf_append_char(&line, i + 1 < n ? '\t' : '\n');
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	int ret = fd >= 0 && write(fd, line.data, line.len) == (ssize_t)line.len ? IX_OK : IX_EIO;
	if (fd >= 0)
		close(fd);
	buf_free(&line);
	free(path);
	free(dir);
	return ret;
}

bool dayrec_split(const char *line, long long *time_r, char *const *out, const size_t *sizes, size_t n)
{
	char *end;
	*time_r = strtoll(line, &end, 10);
	if (end == line || *end != '\t')
		return false;
	const char *p = end + 1;
	for (size_t i = 0; i < n; i++) {
		const char *tab = strchr(p, '\t');
		size_t len = tab != NULL ? (size_t)(tab - p) : strlen(p);
		if (len >= sizes[i] || (tab == NULL) != (i + 1 == n))
			return false;
		memcpy(out[i], p, len);
		out[i][len] = '\0';
		p += len + 1;
	}
	return true;
}
