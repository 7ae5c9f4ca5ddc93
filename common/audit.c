/* audit.c - the audit log of a data folder: one appended line per change (audit.h), and reading it back filtered by
 * time and identity. */
#include "common/audit.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_FIELDS 6

static void field(struct buf *line, const char *value, bool last)
{
	size_t n = 0;
	for (const char *p = value != NULL ? value : ""; *p != '\0' && n < AUDIT_FIELD_MAX; p++, n++)
		buf_append_char(line, *p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p);
	buf_append_char(line, last ? '\n' : '\t');
}

int audit_record(const char *data_dir, const struct audit_entry *e, struct buf *error_r)
{
	char *path = xasprintf("%s/%s", data_dir, AUDIT_FILE);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		buf_printf(error_r, "cannot write the audit log %s: %s", path, strerror(errno));
		free(path);
		return IX_EIO;
	}
	struct stat st, dir;
	char *folder = xasprintf("%s/log", data_dir);
	if (geteuid() == 0 && fstat(fd, &st) == 0 && st.st_uid == 0 && stat(folder, &dir) == 0 && dir.st_uid != 0 &&
	    fchown(fd, dir.st_uid, dir.st_gid) < 0)
		buf_printf(error_r, "cannot give %s to the service user: %s", path, strerror(errno));
	free(folder);
	time_t when = e->when != 0 ? e->when : time(NULL);
	struct tm tm;
	char stamp[32];
	gmtime_r(&when, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct buf line = BUF_INIT;
	field(&line, stamp, false);
	field(&line, e->who, false);
	field(&line, e->via, false);
	field(&line, e->action, false);
	field(&line, e->target, false);
	field(&line, e->result, true);
	int ret = IX_OK;
	if (write_full(fd, line.data, line.len) < 0) {
		buf_printf(error_r, "cannot write the audit log %s: %s", path, strerror(errno));
		ret = IX_EIO;
	}
	close(fd);
	buf_free(&line);
	free(path);
	return ret;
}

bool audit_parse_time(const char *date, time_t *when_r)
{
	struct tm tm = { 0 };
	const char *end = strptime(date, "%Y-%m-%d", &tm);
	if (end == NULL)
		return false;
	if (*end == 'T' || *end == ' ') {
		const char *t = strptime(end + 1, "%H:%M", &tm);
		if (t == NULL)
			return false;
		end = t;
		if (*end == ':' && (end = strptime(end + 1, "%S", &tm)) == NULL)
			return false;
		if (*end == 'Z')
			end++;
	}
	if (*end != '\0')
		return false;
	*when_r = timegm(&tm);
	return true;
}

bool audit_rotate(const char *data_dir, long long max_bytes, int keep)
{
	char *path = xasprintf("%s/%s", data_dir, AUDIT_FILE);
	struct stat st;
	bool rotate = stat(path, &st) == 0 && (long long)st.st_size > max_bytes;
	if (rotate)
		file_shift(path, keep);
	free(path);
	return rotate;
}

/* audit_read of one file; false when fn stopped. */
static bool read_one(const char *path, time_t since, const char *who,
		     bool (*fn)(const struct audit_entry *e, void *ctx), void *ctx, int *ret_r, struct buf *error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			buf_printf(error_r, "cannot read the audit log %s: %s", path, strerror(errno));
			*ret_r = IX_EIO;
		}
		return true;
	}
	struct stat st;
	off_t from = fstat(fd, &st) == 0 && st.st_size > AUDIT_READ_MAX ? st.st_size - AUDIT_READ_MAX : 0;
	struct buf data = BUF_INIT;
	char chunk[65536];
	ssize_t n;
	if (lseek(fd, from, SEEK_SET) < 0)
		from = 0;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && data.len < AUDIT_READ_MAX)
		buf_append(&data, chunk, (size_t)n);
	close(fd);
	char *text = buf_steal(&data), *line = text, *next;
	bool go_on = true;
	if (from > 0 && (line = strchr(text, '\n')) != NULL) /* skip the line cut in the middle */
		line++;
	for (; go_on && line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next == NULL)
			break; /* a line being written */
		*next++ = '\0';
		char *f[AUDIT_FIELDS];
		size_t k = 0;
		for (char *p = line; k < AUDIT_FIELDS; k++) {
			f[k] = p;
			p = strchr(p, '\t');
			if (p == NULL)
				break;
			*p++ = '\0';
		}
		if (k != AUDIT_FIELDS - 1)
			continue;
		struct audit_entry e = { 0, f[1], f[2], f[3], f[4], f[5] };
		if (!audit_parse_time(f[0], &e.when) || e.when < since)
			continue;
		if (who != NULL && (strncasecmp(e.who, who, strlen(who)) != 0 ||
				    (e.who[strlen(who)] != '\0' && e.who[strlen(who)] != ' ')))
			continue;
		go_on = fn(&e, ctx);
	}
	free(text);
	return go_on;
}

int audit_read(const char *data_dir, time_t since, const char *who, bool (*fn)(const struct audit_entry *e, void *ctx),
	       void *ctx, struct buf *error_r)
{
	int ret = IX_OK;
	bool go_on = true;
	for (int k = AUDIT_KEEP; k >= 0 && go_on && ret == IX_OK; k--) {
		char *path = k == 0 ? xasprintf("%s/%s", data_dir, AUDIT_FILE)
				    : xasprintf("%s/%s.%d", data_dir, AUDIT_FILE, k);
		struct stat st;
		if (k == 0 || (stat(path, &st) == 0 && st.st_mtime >= since))
			go_on = read_one(path, since, who, fn, ctx, &ret, error_r);
		free(path);
	}
	return ret;
}
