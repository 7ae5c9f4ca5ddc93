/* orphan.c - finds and stops the processes an attendant killed without a stop left running (see orphan.h). */
#include "attendant/orphan.h"
#include "attendant/attendant.h"
#include "common/util.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int orphan_alive(pid_t pid)
{
	char path[64], *text = NULL;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if (read_file(path, 64 * 1024, &text, NULL) < 0)
		return 0;
	const char *state = strstr(text, "\nState:");
	int alive = 1;
	if (state != NULL) {
		const char *end = strchr(state + 1, '\n');
		const char *z = strchr(state + 8, 'Z');
		alive = !(z != NULL && (end == NULL || z < end));
	}
	free(text);
	return alive;
}

/* The hexadecimal signal mask of field (e.g. "\nSigPnd:") in a /proc/PID/status text, or 0. */
static unsigned long long status_mask(const char *text, const char *field)
{
	const char *at = strstr(text, field);
	return at != NULL ? strtoull(at + strlen(field), NULL, 16) : 0;
}

int orphan_exiting(pid_t pid)
{
	char path[64], *text = NULL;
	if (pid <= 0 || !orphan_alive(pid))
		return 1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if (read_file(path, 64 * 1024, &text, NULL) < 0)
		return 1;
	unsigned long long kill_bit = 1ULL << (SIGKILL - 1);
	int exiting = ((status_mask(text, "\nSigPnd:") | status_mask(text, "\nShdPnd:")) & kill_bit) != 0;
	free(text);
	return exiting;
}

/* The arguments of pid as one NUL-separated block (malloc'd, *len_r bytes), or NULL. */
static char *cmdline(pid_t pid, size_t *len_r)
{
	char path[64], *text = NULL;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	if (read_file(path, 64 * 1024, &text, len_r) < 0)
		return NULL;
	return text;
}

/* True when the NUL-separated args hold flag immediately followed by a path naming the same folder as want. */
static int has_path_arg(const char *args, size_t len, const char *flag, const char *want)
{
	char *real_want = realpath(want, NULL);
	int found = 0;
	for (size_t i = 0; i < len && !found;) {
		const char *arg = args + i;
		size_t n = strnlen(arg, len - i);
		if (i + n + 1 < len && strcmp(arg, flag) == 0) {
			const char *value = arg + n + 1;
			char *real = realpath(value, NULL);
			found = strcmp(value, want) == 0 ||
				(real != NULL && real_want != NULL && strcmp(real, real_want) == 0);
			free(real);
		}
		i += n + 1;
	}
	free(real_want);
	return found;
}

static void add(struct orphan *out, size_t max, size_t *n, pid_t pid, const char *name)
{
	if (*n >= max)
		return;
	out[*n].pid = pid;
	snprintf(out[*n].name, sizeof(out[*n].name), "%s", name);
	(*n)++;
}

/* The service whose program is exe (a path beside our own binary), or NULL. */
static const char *service_of(const char *exe, const char *bindir)
{
	size_t blen = strlen(bindir);
	if (strncmp(exe, bindir, blen) != 0 || exe[blen] != '/')
		return NULL;
	for (size_t i = 0; attendant_services[i].name != NULL; i++) {
		if (strcmp(exe + blen + 1, attendant_services[i].program) == 0)
			return attendant_services[i].name;
	}
	return NULL;
}

long orphan_read_pid(const struct config *cfg, const char *rel)
{
	char *path = config_path(cfg, rel), *text = NULL;
	long pid = 0;
	if (read_file(path, 64, &text, NULL) == 0)
		pid = strtol(text, NULL, 10);
	free(text);
	free(path);
	return pid;
}

size_t orphan_find(const struct config *cfg, struct orphan *out, size_t max)
{
	size_t n = 0, len = 0;
	long slapd = orphan_read_pid(cfg, SLAPD_PIDFILE);
	if (slapd > 1 && orphan_alive((pid_t)slapd)) {
		char *args = cmdline((pid_t)slapd, &len), *confdir = config_path(cfg, "directory/slapd.d");
		if (args != NULL && has_path_arg(args, len, "-F", confdir))
			add(out, max, &n, (pid_t)slapd, "slapd");
		free(args);
		free(confdir);
	}
	char self[PATH_MAX];
	ssize_t slen = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (slen <= 0)
		return n;
	self[slen] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return n;
	*slash = '\0';
	DIR *d = opendir("/proc");
	if (d == NULL)
		return n;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		char path[64], exe[PATH_MAX];
		snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
		ssize_t elen = readlink(path, exe, sizeof(exe) - 1);
		if (elen <= 0 || pid == getpid())
			continue;
		exe[elen] = '\0';
		const char *name = service_of(exe, self);
		if (name == NULL || !orphan_alive(pid))
			continue;
		char *args = cmdline(pid, &len);
		if (args != NULL && has_path_arg(args, len, "--data", cfg->data_dir))
			add(out, max, &n, pid, name);
		free(args);
	}
	closedir(d);
	return n;
}

/* Waits until none of orphans is alive or the deadline passes; returns how many are left. */
static size_t wait_gone(const struct orphan *orphans, size_t n, unsigned long long deadline)
{
	for (;;) {
		size_t left = 0;
		for (size_t i = 0; i < n; i++)
			left += orphan_alive(orphans[i].pid) ? 1 : 0;
		if (left == 0 || now_usec() > deadline)
			return left;
		usleep(10000);
	}
}

size_t orphan_stop(const struct orphan *orphans, size_t n)
{
	/* the services first: they may still be closing sessions against slapd */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			if ((strcmp(orphans[i].name, "slapd") == 0) == pass)
				kill(orphans[i].pid, SIGTERM);
		}
	}
	if (wait_gone(orphans, n, now_usec() + ORPHAN_STOP_GRACE_MS * 1000ULL) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (orphan_alive(orphans[i].pid))
			kill(orphans[i].pid, SIGKILL);
	}
	return wait_gone(orphans, n, now_usec() + ORPHAN_KILL_WAIT_MS * 1000ULL);
}
