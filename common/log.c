/* log.c - timestamped log lines to stderr or a reopenable file. One write(2) per line, so lines from several
 * processes sharing a file do not interleave. */
#include "common/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_name = "interchange";
static enum log_level log_min = LOG_LEVEL_INFO;
static int log_fd = 2;
static char *log_path;
static int log_level_set;

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal", "panic" };

void log_set_name(const char *name)
{
	log_name = name;
}

void log_set_level(enum log_level level)
{
	log_min = level;
	log_level_set = 1;
}

int log_to_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	return js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	free(log_path);
	log_path = xstrdup(path);
	return 0;
}

int log_reopen(void)
{
	if (log_path == NULL)
		return 0;
	char *path = xstrdup(log_path);
	int ret = log_open(path);
	free(path);
	return ret;
}

/* log_vwrite with the line stamped when (now when NULL). */
static void log_vwrite_at(enum log_level level, const struct timeval *when, const char *fmt, va_list ap)
	IX_PRINTF(3, 0);
static void log_vwrite_at(enum log_level level, const struct timeval *when, const char *fmt, va_list ap)
{
	if (!log_level_set && getenv("IX_DEBUG") != NULL)
		log_set_level(LOG_LEVEL_DEBUG);
	if (level < log_min)
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	if (when != NULL)
		tv = *when;
	else
		gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
			 log_name, (long)getpid(), level_names[level]);
	if (n < 0)
		return;
	size_t len = (size_t)n;
	if (len < sizeof(line)) {
		int m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
		if (m > 0)
			len += (size_t)m;
	}
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2; /* long messages are cut, never overrun */
	for (size_t i = (size_t)n; i < len; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	line[len++] = '\n';
	(void)write_full(log_fd, line, len);
}

void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	log_vwrite_at(level, NULL, fmt, ap);
}

void log_warn_at(const struct timeval *when, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite_at(LOG_LEVEL_WARN, when, fmt, ap);
	va_end(ap);
}

#define LOG_FN(fn, level)                   \
	void fn(const char *fmt, ...)       \
	{                                   \
		va_list ap;                 \
		va_start(ap, fmt);          \
		log_vwrite(level, fmt, ap); \
		va_end(ap);                 \
	}
LOG_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_error, LOG_LEVEL_ERROR)
