/* track.c - searching the message tracking log (track_log writes it, transport/mta/queue.h): every event of the
 * messages that match an address or a Message-ID, for `interchange track` and GET /api/v1/track. */
#include "transport/mta/queue.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TRACK_FIELDS 8

/* Splits a log line into its tab-separated fields (in place); returns how many (at most max). */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	while (n < max) {
		f[n++] = line;
		char *t = strchr(line, '\t');
		if (t == NULL)
			break;
		*t = '\0';
		line = t + 1;
	}
	return n;
}

static bool matches(const char *field, const char *query)
{
	if (strcasecmp(field, query) == 0)
		return true;
	/* Message-IDs with or without their angle brackets */
	size_t fl = strlen(field), ql = strlen(query);
	return fl == ql + 2 && field[0] == '<' && strncasecmp(field + 1, query, ql) == 0;
}

static bool event_of(char *line, struct track_event *e)
{
	char *f[TRACK_FIELDS];
	if (split_fields(line, f, TRACK_FIELDS) < TRACK_FIELDS)
		return false;
	*e = (struct track_event){ f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7] };
	return true;
}

size_t track_search(const char *data_dir, const char *query, void (*fn)(const struct track_event *e, void *ctx),
		    void *ctx)
{
	/* the previous log (rotated) and the current one, oldest first */
	char *path = xasprintf("%s/" TRACK_LOG_FILE, data_dir),
	     *old_path = xasprintf("%s/" TRACK_LOG_FILE ".1", data_dir);
	char *data = NULL, *cur = NULL;
	size_t len = 0, cur_len = 0;
	if (read_file(old_path, TRACK_LOG_MAX, &data, &len) < 0) {
		data = xstrdup("");
		len = 0;
	}
	if (read_file(path, TRACK_LOG_MAX, &cur, &cur_len) == 0) {
		data = xrealloc(data, len + cur_len + 1);
		memcpy(data + len, cur, cur_len + 1);
		len += cur_len;
		free(cur);
	}
	free(old_path);
	free(path);
	char **ids = xcalloc(TRACK_IDS_MAX, sizeof(*ids));
	size_t nids = 0, shown = 0;
	struct track_event e;
	/* pass 1: the queue ids of matching events */
	char *copy = xstrndup(data, len), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (!event_of(line, &e) ||
		    !(matches(e.msgid, query) || matches(e.sender, query) || matches(e.rcpt, query)))
			continue;
		bool seen = false;
		for (size_t i = 0; i < nids && !seen; i++)
			seen = strcmp(ids[i], e.qid) == 0;
		if (!seen && nids < TRACK_IDS_MAX)
			ids[nids++] = xstrdup(e.qid);
	}
	free(copy);
	/* pass 2: every event of those messages */
	for (char *line = strtok_r(data, "\n", &save); nids > 0 && line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (!event_of(line, &e))
			continue;
		bool want = false;
		for (size_t i = 0; i < nids && !want; i++)
			want = strcmp(ids[i], e.qid) == 0;
		if (want) {
			fn(&e, ctx);
			shown++;
		}
	}
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	free(data);
	return shown;
}
