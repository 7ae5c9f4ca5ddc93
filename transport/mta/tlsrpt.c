/* tlsrpt.c - the TLS reporting records (RFC 8460) ix-mta writes and the attendant's report reads: one tab-separated
 * line a session. */
#include "transport/mta/tlsrpt.h"
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

int tlsrpt_record(const struct config *cfg, const struct tlsrpt_session *s)
{
	time_t t = (time_t)s->time;
	struct tm tm;
	gmtime_r(&t, &tm);
	char day[32];
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	char *dir = config_path(cfg, TLSRPT_DIR);
	char *path = xasprintf("%s/%s", dir, day);
	(void)mkdir(dir, 0700);
	struct buf line = BUF_INIT;
	buf_printf(&line, "%lld\t", s->time);
	const char *fields[] = { s->domain, s->policy_type, s->mx_host, s->ip, s->result, s->policy };
	for (size_t i = 0; i < IX_ARRAY_LEN(fields); i++) {
		field(&line, fields[i]);
		buf_append_char(&line, i + 1 < IX_ARRAY_LEN(fields) ? '\t' : '\n');
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

bool tlsrpt_parse(const char *line, struct tlsrpt_session *s_r)
{
	memset(s_r, 0, sizeof(*s_r));
	struct {
		char *out;
		size_t size;
	} f[] = { { s_r->domain, sizeof(s_r->domain) },   { s_r->policy_type, sizeof(s_r->policy_type) },
		  { s_r->mx_host, sizeof(s_r->mx_host) }, { s_r->ip, sizeof(s_r->ip) },
		  { s_r->result, sizeof(s_r->result) },   { s_r->policy, sizeof(s_r->policy) } };
	char *end;
	s_r->time = strtoll(line, &end, 10);
	if (end == line || *end != '\t')
		return false;
	const char *p = end + 1;
	for (size_t i = 0; i < IX_ARRAY_LEN(f); i++) {
		const char *tab = strchr(p, '\t');
		size_t len = tab != NULL ? (size_t)(tab - p) : strlen(p);
		if (len >= f[i].size || (tab == NULL) != (i + 1 == IX_ARRAY_LEN(f)))
			return false;
		memcpy(f[i].out, p, len);
		f[i].out[len] = '\0';
		p += len + 1;
	}
	return s_r->domain[0] != '\0' && s_r->result[0] != '\0';
}

void tlsrpt_peer_ip(const char *peer, char *ip, size_t size)
{
	const char *lb = strchr(peer, '['), *rb = lb != NULL ? strchr(lb, ']') : NULL;
	if (rb == NULL || size == 0 || (size_t)(rb - lb - 1) >= size) {
		if (size > 0)
			ip[0] = '\0';
		return;
	}
	memcpy(ip, lb + 1, (size_t)(rb - lb - 1));
	ip[rb - lb - 1] = '\0';
}
