/* util.c - allocation, fatal/panic, number parsing and small durable file helpers. */
#include "common/util.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

static IX_NORETURN void out_of_memory(size_t n)
{
	fatal("out of memory allocating %zu bytes", n);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		out_of_memory(n);
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (p == NULL)
		out_of_memory(count * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		out_of_memory(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		out_of_memory(strlen(fmt));
	va_end(ap);
	return s;
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatal_dependency(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_FATAL, fmt, ap);
	va_end(ap);
	exit(IX_EXIT_DEPENDENCY);
}

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_PANIC, fmt, ap);
	va_end(ap);
	abort();
}

int parse_uint(const char *s, unsigned long long max, unsigned long long *value_r)
{
	unsigned long long v = 0;
	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*value_r = v;
	return 0;
}

/* An address as 16 bytes: IPv4 as its mapped IPv6 form (::ffff:a.b.c.d). Returns 0 or -1. */
static int ip_parse(const char *text, unsigned char a[16])
{
	struct in_addr v4;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		memcpy(a, mapped, sizeof(mapped));
		memcpy(a + 12, &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, text, a) == 1 ? 0 : -1;
}

int ip_in_cidr(const char *pattern, const char *addr)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(pattern, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - pattern) : strlen(pattern);
	unsigned char net[16], a[16];
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, pattern, hlen);
	host[hlen] = '\0';
	if (ip_parse(host, net) < 0)
		return -1;
	bool v4 = strchr(host, ':') == NULL;
	unsigned long long prefix = v4 ? 32 : 128;
	if (slash != NULL && parse_uint(slash + 1, prefix, &prefix) < 0)
		return -1;
	if (v4)
		prefix += 96; /* an IPv4 prefix counts within the mapped form */
	if (ip_parse(addr, a) < 0)
		return 0;
	size_t bytes = (size_t)prefix / 8;
	unsigned bits = (unsigned)prefix % 8;
	if (memcmp(net, a, bytes) != 0)
		return 0;
	if (bits == 0)
		return 1;
	unsigned mask = (0xffu << (8 - bits)) & 0xffu;
	return (net[bytes] & mask) == (a[bytes] & mask);
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void file_shift(const char *path, int keep)
{
	for (int k = keep; k >= 1; k--) {
		char *from = k == 1 ? xstrdup(path) : xasprintf("%s.%d", path, k - 1);
		char *to = xasprintf("%s.%d", path, k);
		(void)rename(from, to);
		free(from);
		free(to);
	}
}

off_t file_tail_offset(int fd, unsigned long n)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	off_t end = st.st_size, pos = end;
	if (n == 0)
		return end;
	unsigned long found = 0;
	char chunk[8192];
	/* walk back in chunks counting newlines (the last byte's newline ends the last line) */
	while (pos > 0) {
		size_t want = pos > (off_t)sizeof(chunk) ? sizeof(chunk) : (size_t)pos;
		pos -= (off_t)want;
		ssize_t got = pread(fd, chunk, want, pos);
		if (got <= 0)
			break;
		for (ssize_t i = got - 1; i >= 0; i--) {
			if (chunk[i] == '\n' && (pos + i != end - 1) && ++found == n)
				return pos + i + 1;
		}
	}
	return 0;
}

int read_file(const char *path, size_t max, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* room for max + 1 bytes, so that a file longer than max is seen as such */
	size_t limit = max + 1, cap = limit < 4096 ? limit : 4096, len = 0;
	char *data = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= limit)
				break;
			cap = cap > limit / 2 ? limit : cap * 2;
			data = xrealloc(data, cap + 1);
		}
		ssize_t n = read(fd, data + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(data);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > max) {
		free(data);
		errno = EFBIG;
		return -1;
	}
	data[len] = '\0';
	*data_r = data;
	if (len_r != NULL)
		*len_r = len;
	return 0;
}

int fsync_parent(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	close(fd);
	return ret;
}

int write_file_atomic(const char *path, const void *data, size_t len, int mode)
{
	struct iovec part = { (void *)data, len };
	return write_file_atomic_parts(path, &part, 1, mode);
}

int write_file_atomic_parts(const char *path, const struct iovec *parts, size_t n, int mode)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		goto fail;
	int bad = 0;
	for (size_t i = 0; i < n && !bad; i++)
		bad = write_full(fd, parts[i].iov_base, parts[i].iov_len) < 0;
	if (bad || fsync(fd) < 0) {
		close(fd);
		goto fail_unlink;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		goto fail_unlink;
	free(tmp);
	return fsync_parent(path);
fail_unlink : {
	int e = errno;
	unlink(tmp);
	errno = e;
}
fail:
	free(tmp);
	return -1;
}

int file_copy(const char *from, const char *to, int mode, unsigned long long max)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	char *tmp = xasprintf("%s.tmp.%ld", to, (long)getpid());
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int ret = -1, err = 0;
	if (out < 0) {
		err = errno;
		goto done;
	}
	char chunk[65536];
	unsigned long long total = 0;
	for (;;) {
		ssize_t n = read(in, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0) {
			ret = 0;
			break;
		}
		total += (unsigned long long)n;
		if (total > max) {
			err = EFBIG;
			break;
		}
		if (write_full(out, chunk, (size_t)n) < 0) {
			err = errno;
			break;
		}
	}
	if (ret == 0 && (fsync(out) < 0 || close(out) < 0 || rename(tmp, to) < 0 || fsync_parent(to) < 0)) {
		err = errno;
		ret = -1;
		out = -1;
	} else if (ret == 0) {
		out = -1;
	}
	if (out >= 0)
		close(out);
	if (ret < 0)
		unlink(tmp);
done:
	close(in);
	free(tmp);
	if (ret < 0)
		errno = err;
	return ret;
}

int folder_empty_or_missing(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT;
	struct dirent *e;
	int empty = 1;
	while (empty && (e = readdir(d)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int remove_tree(const char *path)
{
	return nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS);
}

int file_changed(const char *path, struct stat *seen)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	int diff = st.st_ino != seen->st_ino || st.st_dev != seen->st_dev || st.st_size != seen->st_size ||
		   st.st_mtim.tv_sec != seen->st_mtim.tv_sec || st.st_mtim.tv_nsec != seen->st_mtim.tv_nsec;
	*seen = st;
	return diff;
}

int mkdir_p(const char *path, int mode)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int ret = mkdir(p, (mode_t)mode);
	free(p);
	if (ret < 0 && errno != EEXIST)
		return -1;
	return 0;
}

unsigned long long now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

struct timespec time_after_msecs(clockid_t clock, unsigned msecs)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	ts.tv_sec += msecs / 1000;
	ts.tv_nsec += (long)(msecs % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}
