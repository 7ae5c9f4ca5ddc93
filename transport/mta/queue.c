/* queue.c - the durable mail queue's file format, files and ids, and the message tracking log
 * (see queue.h and docs/smtp-mta.md). */
#include "transport/mta/queue.h"
#include "common/err.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Temp files of interrupted writes older than this are removed by queue_list. */
#define QUEUE_TMP_MAX_AGE 60

void queue_msg_init(struct queue_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->sender = xstrdup("");
	m->envid = xstrdup("");
	m->msgid = xstrdup("");
	m->auth = xstrdup("");
	buf_init(&m->body);
}

void queue_msg_free(struct queue_msg *m)
{
	free(m->sender);
	free(m->envid);
	free(m->msgid);
	free(m->auth);
	for (size_t i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].orcpt);
		free(m->rcpts[i].last_error);
	}
	free(m->rcpts);
	buf_free(&m->body);
	memset(m, 0, sizeof(*m));
}

void queue_set_field(char **field, const char *s)
{
	if (s == NULL)
		s = "";
	size_t n = strnlen(s, QUEUE_FIELD_MAX);
	char *v = xstrndup(s, n);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 32 || v[i] == 127)
			v[i] = ' ';
	}
	free(*field);
	*field = v;
}

struct queue_rcpt *queue_msg_add_rcpt(struct queue_msg *m, const char *addr, const char *orcpt, unsigned notify)
{
	m->rcpts = xrealloc(m->rcpts, (m->nrcpts + 1) * sizeof(*m->rcpts));
	struct queue_rcpt *r = &m->rcpts[m->nrcpts++];
	memset(r, 0, sizeof(*r));
	queue_set_field(&r->addr, addr);
	queue_set_field(&r->orcpt, orcpt);
	queue_set_field(&r->last_error, "");
	r->notify = notify;
	return r;
}

void queue_new_id(char *id)
{
	static atomic_uint counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long usec = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
	unsigned c = atomic_fetch_add(&counter, 1);
	snprintf(id, QUEUE_ID_MAX + 1, "%014llx%06x%04x", usec & 0xffffffffffffffULL, (unsigned)getpid() & 0xffffff,
		 c & 0xffff);
}

bool queue_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (n >= QUEUE_ID_MAX || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return n > 0;
}

/* ---- format ----
 * IXQ 1\n
 * id ID\n created N\n sender S\n envid S\n ret N\n msgid S\n auth S\n
 * rcpt STATE\tATTEMPTS\tNEXT\tNOTIFY\tDELAYED\tADDR\tORCPT\tERROR\n   (one per recipient)
 * body N\n then N bytes. Field values never hold control bytes (queue_set_field). */

/* Everything before the body's bytes. */
static void serialize_head(const struct queue_msg *m, size_t body_len, struct buf *out)
{
	buf_printf(out, "%s\nid %s\ncreated %lld\nsender %s\nenvid %s\nret %d\nmsgid %s\nauth %s\n", QUEUE_FILE_MAGIC,
		   m->id, m->created, m->sender, m->envid, m->ret, m->msgid, m->auth);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct queue_rcpt *r = &m->rcpts[i];
		buf_printf(out, "rcpt %d\t%u\t%lld\t%u\t%d\t%s\t%s\t%s\n", r->state, r->attempts, r->next_try,
			   r->notify, r->delay_notified ? 1 : 0, r->addr, r->orcpt, r->last_error);
	}
	buf_printf(out, "body %zu\n", body_len);
}

void queue_serialize(const struct queue_msg *m, struct buf *out)
{
	serialize_head(m, m->body.len, out);
	buf_append(out, m->body.data != NULL ? m->body.data : "", m->body.len);
}

static int corrupt(struct buf *error_r, const char *what)
{
	if (error_r != NULL)
		buf_printf(error_r, "queue file is damaged: %s", what);
	return IX_ECORRUPT;
}

/* Copies [s, s+n) as a field, refusing control bytes and overlong values. */
static int take_field(const char *s, size_t n, char **out)
{
	if (n > QUEUE_FIELD_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 32 || s[i] == 127)
			return -1;
	}
	free(*out);
	*out = xstrndup(s, n);
	return 0;
}

static int take_number(const char *s, size_t n, unsigned long long max, unsigned long long *v)
{
	char tmp[24];
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return parse_uint(tmp, max, v);
}

static int parse_rcpt(struct queue_msg *m, const char *s, size_t n)
{
	const char *f[8];
	size_t fl[8];
	size_t k = 0;
	const char *p = s, *end = s + n;
	while (k < 8) {
		const char *t = k < 7 ? memchr(p, '\t', (size_t)(end - p)) : NULL;
		if (t == NULL)
			t = end;
		f[k] = p;
		fl[k] = (size_t)(t - p);
		k++;
		if (t == end)
			break;
		p = t + 1;
	}
	if (k != 8 || m->nrcpts >= QUEUE_RCPTS_MAX)
		return -1;
	unsigned long long state, attempts, next, notify, delayed;
	if (take_number(f[0], fl[0], 2, &state) < 0 || take_number(f[1], fl[1], 1000000, &attempts) < 0 ||
	    take_number(f[2], fl[2], 1ULL << 40, &next) < 0 || take_number(f[3], fl[3], 15, &notify) < 0 ||
	    take_number(f[4], fl[4], 1, &delayed) < 0 || fl[5] == 0)
		return -1;
	struct queue_rcpt *r = queue_msg_add_rcpt(m, "", "", (unsigned)notify);
	r->state = (int)state;
	r->attempts = (unsigned)attempts;
	r->next_try = (long long)next;
	r->delay_notified = delayed != 0;
	if (take_field(f[5], fl[5], &r->addr) < 0 || take_field(f[6], fl[6], &r->orcpt) < 0 ||
	    take_field(f[7], fl[7], &r->last_error) < 0)
		return -1;
	return 0;
}

int queue_parse(const char *data, size_t len, bool with_body, struct queue_msg *m, struct buf *error_r)
{
	queue_msg_init(m);
	size_t pos = 0;
	bool first = true, have_id = false;
	for (;;) {
		if (pos >= len || pos > QUEUE_HEADER_MAX)
			goto bad_end;
		const char *line = data + pos;
		const char *nl = memchr(line, '\n', len - pos);
		if (nl == NULL)
			goto bad_end;
		size_t n = (size_t)(nl - line);
		pos += n + 1;
		if (first) {
			if (n != strlen(QUEUE_FILE_MAGIC) || memcmp(line, QUEUE_FILE_MAGIC, n) != 0) {
				queue_msg_free(m);
				return corrupt(error_r, "not a queue file");
			}
			first = false;
			continue;
		}
		const char *sp = memchr(line, ' ', n);
		if (sp == NULL)
			goto bad_line;
		size_t kl = (size_t)(sp - line), vl = n - kl - 1;
		const char *v = sp + 1;
		unsigned long long num;
#define KEY(k) (kl == sizeof(k) - 1 && memcmp(line, k, kl) == 0)
		if (KEY("id")) {
			if (vl == 0 || vl > QUEUE_ID_MAX)
				goto bad_line;
			memcpy(m->id, v, vl);
			m->id[vl] = '\0';
			if (!queue_id_valid(m->id))
				goto bad_line;
			have_id = true;
		} else if (KEY("created")) {
			if (take_number(v, vl, 1ULL << 40, &num) < 0)
				goto bad_line;
			m->created = (long long)num;
		} else if (KEY("sender")) {
			if (take_field(v, vl, &m->sender) < 0)
				goto bad_line;
		} else if (KEY("envid")) {
			if (take_field(v, vl, &m->envid) < 0)
				goto bad_line;
		} else if (KEY("ret")) {
			if (take_number(v, vl, 2, &num) < 0)
				goto bad_line;
			m->ret = (int)num;
		} else if (KEY("msgid")) {
			if (take_field(v, vl, &m->msgid) < 0)
				goto bad_line;
		} else if (KEY("auth")) {
			if (take_field(v, vl, &m->auth) < 0)
				goto bad_line;
		} else if (KEY("rcpt")) {
			if (parse_rcpt(m, v, vl) < 0)
				goto bad_line;
		} else if (KEY("body")) {
			if (take_number(v, vl, QUEUE_BODY_MAX, &num) < 0 || num != len - pos)
				goto bad_line;
			break;
		} else {
			goto bad_line;
		}
#undef KEY
	}
	if (!have_id || m->nrcpts == 0) {
		queue_msg_free(m);
		return corrupt(error_r, "no id or no recipients");
	}
	if (with_body)
		buf_append(&m->body, data + pos, len - pos);
	return 0;
bad_line:
	queue_msg_free(m);
	return corrupt(error_r, "bad envelope line");
bad_end:
	queue_msg_free(m);
	return corrupt(error_r, "truncated");
}

/* ---- files ---- */

int queue_dir_ensure(const char *qdir, struct buf *error_r)
{
	if (mkdir_p(qdir, 0700) < 0) {
		buf_printf(error_r, "cannot create the queue folder %s: %s", qdir, strerror(errno));
		return IX_EIO;
	}
	return 0;
}

int queue_write(const char *qdir, const struct queue_msg *m, struct buf *error_r)
{
	return queue_write_body(qdir, m, m->body.data != NULL ? m->body.data : "", m->body.len, error_r);
}

int queue_write_body(const char *qdir, const struct queue_msg *m, const char *body, size_t len, struct buf *error_r)
{
	if (!queue_id_valid(m->id)) {
		buf_printf(error_r, "bad queue id");
		return IX_EINVAL;
	}
	struct buf img = BUF_INIT;
	serialize_head(m, len, &img);
	struct iovec parts[2] = { { img.data, img.len }, { (void *)body, len } };
	char *path = xasprintf("%s/%s", qdir, m->id);
	int ret = 0;
	if (write_file_atomic_parts(path, parts, 2, 0600) < 0) {
		buf_printf(error_r, "cannot write %s: %s", path,
			   errno == ENOSPC || errno == EDQUOT ? "disk full (no space left on the device)"
							      : strerror(errno));
		ret = IX_EIO;
	}
	free(path);
	buf_free(&img);
	return ret;
}

/* The queue's lock (qdir/.lock, never listed: ids do not start with a dot): shared by write-backs of messages
 * already queued, exclusive for removals. flock belongs to the open file, so each holder opens its own. Returns
 * the fd to give to queue_unlock, or -1 (then the caller goes on unlocked: the lock only closes a race). */
static int queue_lock(const char *qdir, int how)
{
	char *path = xasprintf("%s/.lock", qdir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd >= 0 && flock(fd, how) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void queue_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int queue_update(const char *qdir, const struct queue_msg *m, struct buf *error_r)
{
	if (!queue_id_valid(m->id)) {
		buf_printf(error_r, "bad queue id");
		return IX_EINVAL;
	}
	int lock = queue_lock(qdir, LOCK_SH);
	char *path = xasprintf("%s/%s", qdir, m->id);
	int ret = access(path, F_OK) == 0 ? queue_write(qdir, m, error_r) : IX_ENOTFOUND;
	free(path);
	queue_unlock(lock);
	return ret;
}

int queue_read(const char *qdir, const char *id, bool with_body, struct queue_msg *m, struct buf *error_r)
{
	if (!queue_id_valid(id)) {
		queue_msg_init(m);
		buf_printf(error_r, "'%s' is not a queue id", id);
		return IX_EINVAL;
	}
	char *path = xasprintf("%s/%s", qdir, id);
	char *data;
	size_t len;
	int ret = 0;
	if (read_file(path, QUEUE_HEADER_MAX + QUEUE_BODY_MAX, &data, &len) < 0) {
		ret = errno == ENOENT ? IX_ENOTFOUND : IX_EIO;
		buf_printf(error_r, "cannot read %s: %s", path, strerror(errno));
		free(path);
		queue_msg_init(m);
		return ret;
	}
	free(path);
	ret = queue_parse(data, len, with_body, m, error_r);
	free(data);
	return ret;
}

const char *queue_rcpt_state_name(const struct queue_rcpt *r, long long now)
{
	if (r->state == QUEUE_RCPT_DONE)
		return "done";
	if (r->state == QUEUE_RCPT_FAILED)
		return "failed";
	return r->next_try <= now ? "active" : "deferred";
}

int queue_request_flush(const char *qdir, struct buf *error_r)
{
	char *path = xasprintf("%s/" QUEUE_FLUSH_FILE, qdir);
	int ret = 0;
	if (write_file_atomic(path, "", 0, 0600) < 0) {
		buf_printf(error_r, "cannot ask for a flush (%s: %s): is the data folder writable?", path,
			   strerror(errno));
		ret = IX_EIO;
	}
	free(path);
	return ret;
}

int queue_remove(const char *qdir, const char *id, struct buf *error_r)
{
	if (!queue_id_valid(id)) {
		buf_printf(error_r, "'%s' is not a queue id", id);
		return IX_EINVAL;
	}
	char *path = xasprintf("%s/%s", qdir, id);
	int ret = 0;
	int lock = queue_lock(qdir, LOCK_EX);
	if (unlink(path) < 0) {
		ret = errno == ENOENT ? IX_ENOTFOUND : IX_EIO;
		buf_printf(error_r, "cannot remove %s: %s", path, strerror(errno));
	} else {
		int fd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	queue_unlock(lock);
	free(path);
	return ret;
}

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int queue_list(const char *qdir, char ***ids_r, size_t *count_r, struct buf *error_r)
{
	*ids_r = NULL;
	*count_r = 0;
	DIR *d = opendir(qdir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		buf_printf(error_r, "cannot list %s: %s", qdir, strerror(errno));
		return IX_EIO;
	}
	char **ids = NULL;
	size_t n = 0, cap = 0;
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (strchr(e->d_name, '.') != NULL) {
			/* a temp file: an interrupted write of a message never acknowledged */
			struct stat st;
			if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && now - st.st_mtime > QUEUE_TMP_MAX_AGE)
				unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (!queue_id_valid(e->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			ids = xrealloc(ids, cap * sizeof(*ids));
		}
		ids[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), cmp_ids);
	*ids_r = ids;
	*count_r = n;
	return 0;
}

void queue_ids_free(char ***ids, size_t count)
{
	if (*ids == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*ids)[i]);
	free(*ids);
	*ids = NULL;
}

long long queue_backoff(unsigned attempts, long long first, long long max)
{
	long long d = first < 1 ? 1 : first;
	for (unsigned i = 1; i < attempts && d < max; i++)
		d *= 2;
	return d > max ? max : d;
}

/* ---- tracking log ---- */

static pthread_mutex_t track_lock = PTHREAD_MUTEX_INITIALIZER;
static int track_fd = -1;
static long long track_checked; /* wall clock second of the last rotation check */

/* Once a second: rotates a log grown past TRACK_LOG_ROTATE_BYTES to NAME.1, and follows a rotation another
 * process made (the name then points at another file). Called with track_lock held. */
static void track_check(const char *path)
{
	long long now = (long long)time(NULL);
	if (track_fd >= 0 && now == track_checked)
		return;
	track_checked = now;
	struct stat fs, ps;
	if (track_fd >= 0 && fstat(track_fd, &fs) == 0) {
		bool moved = stat(path, &ps) != 0 || ps.st_ino != fs.st_ino || ps.st_dev != fs.st_dev;
		if (!moved && fs.st_size > (off_t)TRACK_LOG_ROTATE_BYTES) {
			/* the lock on the file itself keeps two processes from rotating twice */
			flock(track_fd, LOCK_EX);
			if (stat(path, &ps) == 0 && ps.st_ino == fs.st_ino && ps.st_dev == fs.st_dev) {
				char *old = xasprintf("%s.1", path);
				(void)rename(path, old);
				free(old);
			}
			flock(track_fd, LOCK_UN);
			moved = true;
		}
		if (!moved)
			return;
		close(track_fd);
		track_fd = -1;
	}
	track_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void track_field(struct buf *b, const char *s)
{
	buf_append_char(b, '\t');
	if (s == NULL || *s == '\0') {
		buf_append_char(b, '-');
		return;
	}
	for (size_t i = 0; i < QUEUE_FIELD_MAX && s[i] != '\0'; i++)
		buf_append_char(b, ((unsigned char)s[i] < 32 || s[i] == 127) ? ' ' : s[i]);
}

void track_log(const char *data_dir, const char *event, const char *qid, const char *msgid, const char *sender,
	       const char *rcpt, const char *server, const char *detail)
{
	struct buf line = BUF_INIT;
	char date[40];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_append_str(&line, date);
	track_field(&line, event);
	track_field(&line, qid);
	track_field(&line, msgid);
	track_field(&line, sender != NULL && *sender == '\0' ? "<>" : sender);
	track_field(&line, rcpt);
	track_field(&line, server);
	track_field(&line, detail);
	buf_append_char(&line, '\n');
	char *path = xasprintf("%s/" TRACK_LOG_FILE, data_dir);
	pthread_mutex_lock(&track_lock);
	track_check(path);
	if (track_fd >= 0)
		(void)write_full(track_fd, line.data, line.len);
	pthread_mutex_unlock(&track_lock);
	free(path);
	buf_free(&line);
}

int queue_stats(const char *qdir, long long now, struct queue_stats *stats_r, struct buf *error_r)
{
	memset(stats_r, 0, sizeof(*stats_r));
	char **ids;
	size_t n;
	int ret = queue_list(qdir, &ids, &n, error_r);
	if (ret != 0)
		return ret;
	struct buf err = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (i >= QUEUE_STATS_MAX_READ) {
			stats_r->deferred += n - i;
			break;
		}
		struct queue_msg m;
		buf_reset(&err);
		if (queue_read(qdir, ids[i], false, &m, &err) != 0) {
			queue_msg_free(&m);
			continue; /* delivered meanwhile */
		}
		bool active = false;
		for (size_t k = 0; k < m.nrcpts; k++)
			active |= m.rcpts[k].state == QUEUE_RCPT_PENDING && m.rcpts[k].next_try <= now;
		if (active)
			stats_r->active++;
		else
			stats_r->deferred++;
		if (now - m.created > stats_r->oldest_age)
			stats_r->oldest_age = now - m.created;
		queue_msg_free(&m);
	}
	buf_free(&err);
	queue_ids_free(&ids, n);
	return 0;
}
